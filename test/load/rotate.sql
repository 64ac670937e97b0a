\set n random(1, :nagents)
SELECT 1 FROM load_agents a, agentmesh.lm_rotate_credentials(a.agent_id) WHERE a.n = :n;

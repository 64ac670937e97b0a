\set n random(1, :nagents)
SELECT agentmesh.lm_verify_credential(a.tok) FROM load_agents a WHERE a.n = :n;

-- (2) extension: lm_heartbeat(agent_id, token) under a policy with
-- heartbeat_requires_token = true, called as in (1).
\set i random(1, :n)
SELECT (agentmesh.lm_heartbeat(m.agent_id, m.token)).next_heartbeat_before FROM bench.map m WHERE m.i = :i;

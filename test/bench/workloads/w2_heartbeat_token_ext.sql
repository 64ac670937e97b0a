-- (2) extension: lm_heartbeat(agent_id, token) under a policy with
-- heartbeat_requires_token = true.
\set i random(1, :n)
SELECT h.* FROM bench.map m, LATERAL agentmesh.lm_heartbeat(m.agent_id, m.token) h WHERE m.i = :i;

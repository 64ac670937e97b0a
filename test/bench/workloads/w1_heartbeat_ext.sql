-- (1) extension: lm_heartbeat(agent_id), no token, heartbeats not audited.
-- bench.map (integer -> agent id) is read by both sides in the same way.
\set i random(1, :n)
SELECT * FROM agentmesh.lm_heartbeat((SELECT m.agent_id FROM bench.map m WHERE m.i = :i));

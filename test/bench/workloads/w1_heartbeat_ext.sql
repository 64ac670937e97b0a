-- (1) extension: lm_heartbeat(agent_id), no token, heartbeats not audited,
-- called as an expression and returning next_heartbeat_before (a
-- heartbeat client needs the confirmation, not the row; (1r) measures the
-- call that returns the whole row).
-- bench.map (integer -> agent id) is read by both sides in the same way.
\set i random(1, :n)
SELECT (agentmesh.lm_heartbeat((SELECT m.agent_id FROM bench.map m WHERE m.i = :i))).next_heartbeat_before;

-- (1r) baseline: the same as (1): plain UPDATE by primary key on a copy of agentmesh.agents
-- (LIKE ... INCLUDING ALL: same columns and indexes, no triggers).
\set i random(1, :n)
UPDATE bench.agents_plain SET last_heartbeat = now(), heartbeat_count = heartbeat_count + 1
 WHERE agent_id = (SELECT m.agent_id FROM bench.map m WHERE m.i = :i);

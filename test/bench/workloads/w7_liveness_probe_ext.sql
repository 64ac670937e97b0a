-- (7) design probe, not the extension: heartbeats kept in a narrow side table
-- (agent_id PK, last_heartbeat indexed for the maintenance pass,
-- heartbeat_count), no trigger.  The index on last_heartbeat makes every
-- update non-HOT; the row is narrow, so the cost is the two index inserts.
\set i random(1, :n)
UPDATE bench.liveness SET last_heartbeat = now(), heartbeat_count = heartbeat_count + 1
 WHERE agent_id = (SELECT m.agent_id FROM bench.map m WHERE m.i = :i);

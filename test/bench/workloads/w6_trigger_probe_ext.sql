-- (6) design probe, not the extension: the baseline UPDATE on a copy of the
-- table that has one no-op C BEFORE UPDATE row trigger (the built-in
-- suppress_redundant_updates_trigger).  Any BEFORE ROW trigger makes the
-- executor lock the old row version first (GetTupleForTrigger), which costs
-- a heap_lock_tuple and an extra WAL record per update.
\set i random(1, :n)
UPDATE bench.agents_trig SET last_heartbeat = now(), heartbeat_count = heartbeat_count + 1
 WHERE agent_id = (SELECT m.agent_id FROM bench.map m WHERE m.i = :i);

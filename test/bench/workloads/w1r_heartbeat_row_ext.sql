-- (1r) extension: lm_heartbeat(agent_id) called in FROM, the whole agent row
-- returned to the client (21 columns).  A function in FROM is a function
-- scan, which puts its row into a tuplestore before projecting it; the
-- columns are then formatted as text.  Same durable work as (1).
\set i random(1, :n)
SELECT * FROM agentmesh.lm_heartbeat((SELECT m.agent_id FROM bench.map m WHERE m.i = :i));

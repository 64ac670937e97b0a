-- Benchmark data, part 2 (after the agents were loaded through the lm_*
-- functions into agentmesh.* and bench.map): the baseline's plain tables,
-- identical in shape to the extension's tables, with the same rows.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench.agents_plain, bench.credentials_plain, bench.audit_plain;
DROP SEQUENCE IF EXISTS bench.audit_plain_seq;
-- The workloads 3-5 send no heartbeats for several minutes; with the default
-- 5-minute heartbeat_interval the running worker would then record a
-- heartbeat_missed event for every one of the 100 000 agents in the middle of
-- a measurement (an artificial fleet-wide outage).  A 1-hour interval keeps
-- the fleet "alive" for the whole run; the worker still runs its passes.
UPDATE agentmesh.policies SET heartbeat_interval = '1 hour' WHERE name = 'default';
-- same columns, defaults, constraints and indexes; no triggers, no FKs
CREATE TABLE bench.agents_plain (LIKE agentmesh.agents INCLUDING ALL);
CREATE TABLE bench.credentials_plain (LIKE agentmesh.credentials INCLUDING ALL);
CREATE TABLE bench.audit_plain (LIKE agentmesh.audit_events INCLUDING ALL);
CREATE SEQUENCE bench.audit_plain_seq;
ALTER TABLE bench.audit_plain ALTER event_id SET DEFAULT nextval('bench.audit_plain_seq');
INSERT INTO bench.agents_plain SELECT * FROM agentmesh.agents;
INSERT INTO bench.credentials_plain SELECT * FROM agentmesh.credentials;
INSERT INTO bench.audit_plain SELECT * FROM agentmesh.audit_events;
SELECT setval('bench.audit_plain_seq', (SELECT max(event_id) FROM bench.audit_plain));
-- Design probes (workloads 6 and 7; plain SQL, not the extension)
DROP TABLE IF EXISTS bench.agents_trig, bench.liveness;
CREATE TABLE bench.agents_trig (LIKE agentmesh.agents INCLUDING ALL);
INSERT INTO bench.agents_trig SELECT * FROM agentmesh.agents;
CREATE TRIGGER noop_before BEFORE UPDATE ON bench.agents_trig
    FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
CREATE TABLE bench.liveness (agent_id text PRIMARY KEY, last_heartbeat timestamptz,
                             heartbeat_count int8 NOT NULL DEFAULT 0);
INSERT INTO bench.liveness SELECT agent_id, now() - random() * interval '5 minutes', 0 FROM agentmesh.agents;
CREATE INDEX liveness_last_heartbeat_idx ON bench.liveness (last_heartbeat);
-- Rewrite both sides so that they start with the same physical shape (the
-- extension's tables carry dead versions from request/approve/activate, whose
-- free space would otherwise give its heartbeats more room for HOT updates).
VACUUM (FULL, ANALYZE) agentmesh.agents, agentmesh.credentials, agentmesh.audit_events,
    bench.agents_plain, bench.credentials_plain, bench.audit_plain, bench.map,
    bench.agents_trig, bench.liveness;

--
-- future_as_of: a maintenance pass or rotation check "as of" more than five
-- minutes past the wall clock changes nothing and fails with 22023, unless
-- the caller says allow_future => true.  In 1.0 a one-year typo,
-- lm_run_maintenance('<next year>'), decommissioned agents under an
-- auto_decommission policy that heartbeated a minute ago.
--
CREATE EXTENSION agentmesh_lifecycle;

\i test/fingerprint.sql

INSERT INTO agentmesh.policies (name, require_approval, auto_decommission)
	VALUES ('reaper', false, true);
SELECT agent_id AS a1 FROM agentmesh.lm_request('a1', 'o@example.com', policy => 'reaper') \gset
SELECT token AS t1 FROM agentmesh.lm_activate(:'a1') \gset
SELECT state FROM agentmesh.lm_heartbeat(:'a1', :'t1');
SELECT pg_temp.fp() AS fp0 \gset

\set VERBOSITY default
\set SHOW_CONTEXT never

-- the typo: one year ahead, and just over the five minutes
SELECT * FROM agentmesh.lm_run_maintenance(now() + interval '1 year');
SELECT * FROM agentmesh.lm_run_maintenance(clock_timestamp() + interval '5 minutes 30 seconds', 10);
SELECT * FROM agentmesh.lm_check_and_rotate(now() + interval '1 year');
SELECT * FROM agentmesh.lm_run_maintenance(now() + interval '1 year', allow_future => false);
-- allow_future is not optional when given
SELECT * FROM agentmesh.lm_run_maintenance(now() + interval '1 year', allow_future => NULL);
SELECT * FROM agentmesh.lm_check_and_rotate(now(), NULL);
-- the refusal names no value; nothing changed
SELECT pg_temp.fp() = :'fp0' AS unchanged;
SELECT state FROM agentmesh.lm_get(:'a1');
SELECT count(*) AS credentials FROM agentmesh.credentials WHERE agent_id = :'a1';

-- the past, now and a few minutes ahead (clock skew between hosts) are fine
SELECT orphaned, decommissioned FROM agentmesh.lm_run_maintenance(now() - interval '1 day');
SELECT orphaned, decommissioned FROM agentmesh.lm_run_maintenance(clock_timestamp() + interval '4 minutes');
SELECT count(*) AS actions FROM agentmesh.lm_check_and_rotate(clock_timestamp() + interval '4 minutes');
SELECT state FROM agentmesh.lm_get(:'a1');

-- lm_detect_orphans only reads: "who would be orphaned then" stays allowed
SELECT agent_id = :'a1' AS found, reason_code
  FROM agentmesh.lm_detect_orphans(now() + interval '1 year');
SELECT state FROM agentmesh.lm_get(:'a1');

-- on purpose: the simulated year passes and the agent is decommissioned
SELECT orphaned, decommissioned
  FROM agentmesh.lm_run_maintenance(now() + interval '1 year', allow_future => true);
SELECT state FROM agentmesh.lm_get(:'a1');
SELECT count(*) AS actions
  FROM agentmesh.lm_check_and_rotate(now() + interval '1 year', allow_future => true);


SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;

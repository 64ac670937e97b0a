--
-- core_audit: one audit row per committed transition, with the right type,
-- states, actor and db_user; plain-SQL updates audited; audit rows immutable
-- (also in replica mode); tampering found by lm_verify_audit(); one hash
-- recomputed in plain SQL with pgcrypto; independent of TimeZone/DateStyle.
--
CREATE EXTENSION agentmesh_lifecycle;
-- lm_heartbeat() returns agentmesh.heartbeat_result; the row it updated, for the checks below
CREATE FUNCTION pg_temp.hb(a text, t text DEFAULT NULL)
	RETURNS TABLE (state text, heartbeat_count int8, last_heartbeat timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM agentmesh.lm_heartbeat(a, t);
	RETURN QUERY SELECT g.state::text, g.heartbeat_count, g.last_heartbeat
		FROM agentmesh.agents g WHERE g.agent_id = a;
END $$;
CREATE EXTENSION pgcrypto;
\set VERBOSITY terse
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, MDY';

-- a policy change is audited too (in the policy's own chain)
INSERT INTO agentmesh.policies (name, audit_heartbeats) VALUES ('audit-test', true);

-- actor: the argument, or the session user when NULL; db_user: session user
SELECT agent_id AS a FROM agentmesh.lm_request('audited', 'o@example.com', actor => 'alice@example.com') \gset
SELECT state FROM agentmesh.lm_approve(:'a');
SELECT state FROM agentmesh.lm_activate(:'a', 'carol@example.com');
SELECT state FROM agentmesh.lm_suspend(:'a', 'incident 42', 'dave@example.com');
SELECT state FROM agentmesh.lm_resume(:'a', NULL);
SELECT owner FROM agentmesh.lm_change_owner(:'a', 'erin@example.com', 'frank@example.com');
-- a rolled-back transition leaves no row
BEGIN;
SELECT state FROM agentmesh.lm_suspend(:'a', 'oops', 'gina@example.com');
ROLLBACK;
-- a failed one neither
\set VERBOSITY sqlstate
SELECT state FROM agentmesh.lm_resume(:'a', 'gina@example.com');
-- heartbeats are not audited under the default policy
SELECT heartbeat_count FROM pg_temp.hb(:'a');
-- plain SQL: checked against the table and audited with the session user as actor
UPDATE agentmesh.agents SET state = 'suspended' WHERE agent_id = :'a';
UPDATE agentmesh.agents SET state = 'pending_approval' WHERE agent_id = :'a';
\set VERBOSITY terse
UPDATE agentmesh.agents SET purpose = 'changed by sql' WHERE agent_id = :'a';
UPDATE agentmesh.agents SET owner = 'hank@example.com' WHERE agent_id = :'a';
SELECT state FROM agentmesh.lm_decommission(:'a', 'end', 'ivan@example.com');

SELECT seq, event_type, previous_state, new_state,
	   CASE WHEN actor = session_user THEN '(session user)' ELSE actor END AS actor,
	   db_user = session_user AS db_user_is_session_user,
	   (CASE WHEN details->>'team' = session_user THEN jsonb_set(details, '{team}', '"(session user)"') ELSE details END) - 'new_credential' - 'old_credential' AS details
  FROM agentmesh.audit_events WHERE agent_id = :'a' ORDER BY seq;
SELECT audit_seq = (SELECT max(seq) FROM agentmesh.audit_events WHERE agent_id = :'a') AS head_seq_ok,
	   audit_head = (SELECT hash FROM agentmesh.audit_events WHERE agent_id = :'a' ORDER BY seq DESC LIMIT 1) AS head_hash_ok
  FROM agentmesh.agents WHERE agent_id = :'a';
-- each event chains to the previous one
SELECT count(*) AS links, count(*) FILTER (WHERE e.prev_hash = p.hash) AS good_links
  FROM agentmesh.audit_events e JOIN agentmesh.audit_events p
	ON p.agent_id = e.agent_id AND p.seq = e.seq - 1
 WHERE e.agent_id = :'a';
SELECT intact, events_checked, problem FROM agentmesh.lm_verify_audit(:'a');

-- audit rows are immutable: UPDATE, DELETE, TRUNCATE refused with 55000 ...
SELECT count(*) AS n_events FROM agentmesh.audit_events \gset
\set VERBOSITY default
UPDATE agentmesh.audit_events SET actor = 'mallory' WHERE agent_id = :'a' AND seq = 1;
\set VERBOSITY terse
DELETE FROM agentmesh.audit_events WHERE agent_id = :'a' AND seq = 1;
TRUNCATE agentmesh.audit_events;
-- ... also in replica mode
SET session_replication_role = replica;
UPDATE agentmesh.audit_events SET actor = 'mallory' WHERE agent_id = :'a' AND seq = 1;
DELETE FROM agentmesh.audit_events WHERE agent_id = :'a' AND seq = 1;
TRUNCATE agentmesh.audit_events;
TRUNCATE agentmesh.agents, agentmesh.credentials, agentmesh.audit_events, agentmesh.policies CASCADE;
DELETE FROM agentmesh.agents WHERE agent_id = :'a';
RESET session_replication_role;
SELECT count(*) = :n_events AS nothing_removed FROM agentmesh.audit_events;

-- The hash of every event recomputed in plain SQL with pgcrypto
\i test/audit_hash.sql
-- one event (the first, with a NULL prev_hash and NULL previous_state)
SELECT pg_temp.recompute(e) = e.hash AS first_event_hash_matches
  FROM agentmesh.audit_events e WHERE agent_id = :'a' AND seq = 1;
-- one in the middle
SELECT pg_temp.recompute(e) = e.hash AS suspend_event_hash_matches
  FROM agentmesh.audit_events e WHERE agent_id = :'a' AND event_type = 'suspended'
 ORDER BY seq LIMIT 1;
-- and all of them, policy events too
SELECT count(*) AS events, count(*) FILTER (WHERE pg_temp.recompute(e) = e.hash) AS matching
  FROM agentmesh.audit_events e;

-- The same answers under another TimeZone and DateStyle.
CREATE TEMP TABLE utc_results AS
SELECT e.event_id, pg_temp.recompute(e) AS h, (agentmesh.lm_verify_audit(e.agent_id)).intact
  FROM agentmesh.audit_events e WHERE e.agent_id IS NOT NULL;
SET TimeZone = 'Asia/Kolkata';
SET DateStyle = 'SQL, DMY';
SELECT count(*) AS events,
	   count(*) FILTER (WHERE pg_temp.recompute(e) = e.hash AND pg_temp.recompute(e) = u.h) AS same_hash,
	   bool_and(u.intact) AS intact_in_utc,
	   bool_and((agentmesh.lm_verify_audit(e.agent_id)).intact) AS intact_in_kolkata
  FROM agentmesh.audit_events e JOIN utc_results u USING (event_id);
SELECT intact, problem FROM agentmesh.lm_verify_audit();
-- a transition made under these settings verifies under UTC too
SELECT agent_id AS k FROM agentmesh.lm_request('kolkata', 'o@example.com', actor => 'ravi@example.com') \gset
SELECT state FROM agentmesh.lm_approve(:'k');
RESET TimeZone;
RESET DateStyle;
SET TimeZone = 'UTC';
SELECT intact, problem FROM agentmesh.lm_verify_audit(:'k');
SELECT count(*) FILTER (WHERE pg_temp.recompute(e) <> e.hash) AS mismatching
  FROM agentmesh.audit_events e WHERE agent_id = :'k';

-- Tamper: a superuser disables the trigger and changes one field.
SELECT agent_id AS v FROM agentmesh.lm_request('victim', 'o@example.com') \gset
SELECT state FROM agentmesh.lm_approve(:'v', 'approver@example.com');
SELECT state FROM agentmesh.lm_activate(:'v');
SELECT state FROM agentmesh.lm_suspend(:'v', 'x');
SELECT event_id AS tampered FROM agentmesh.audit_events WHERE agent_id = :'v' AND seq = 2 \gset
ALTER TABLE agentmesh.audit_events DISABLE TRIGGER audit_events_immutable;
UPDATE agentmesh.audit_events SET actor = 'someone-else@example.com' WHERE event_id = :tampered;
ALTER TABLE agentmesh.audit_events ENABLE ALWAYS TRIGGER audit_events_immutable;
SELECT intact, broken_event_id = :tampered AS reports_that_event,
	   broken_agent_id = :'v' AS reports_that_agent, broken_seq, problem
  FROM agentmesh.lm_verify_audit(:'v');
SELECT intact, broken_event_id = :tampered AS reports_that_event, problem
  FROM agentmesh.lm_verify_audit();
-- the other chains are unaffected
SELECT intact FROM agentmesh.lm_verify_audit(:'a');
-- a changed timestamp is found too
ALTER TABLE agentmesh.audit_events DISABLE TRIGGER audit_events_immutable;
UPDATE agentmesh.audit_events SET actor = 'approver@example.com' WHERE event_id = :tampered;
ALTER TABLE agentmesh.audit_events ENABLE ALWAYS TRIGGER audit_events_immutable;
SELECT intact AS intact_when_restored FROM agentmesh.lm_verify_audit(:'v');
ALTER TABLE agentmesh.audit_events DISABLE TRIGGER audit_events_immutable;
UPDATE agentmesh.audit_events SET occurred_at = occurred_at - interval '1 microsecond' WHERE event_id = :tampered;
ALTER TABLE agentmesh.audit_events ENABLE ALWAYS TRIGGER audit_events_immutable;
SELECT intact, broken_event_id = :tampered AS reports_that_event, problem
  FROM agentmesh.lm_verify_audit(:'v');

-- Delete the last event of a chain: reported as a chain head mismatch.
SELECT agent_id AS w FROM agentmesh.lm_request('truncated', 'o@example.com') \gset
SELECT state FROM agentmesh.lm_reject(:'w');
SELECT state FROM agentmesh.lm_get(:'w');
ALTER TABLE agentmesh.audit_events DISABLE TRIGGER audit_events_immutable;
DELETE FROM agentmesh.audit_events WHERE agent_id = :'w' AND seq = 2;
ALTER TABLE agentmesh.audit_events ENABLE ALWAYS TRIGGER audit_events_immutable;
SELECT intact, broken_agent_id = :'w' AS reports_that_agent, broken_seq, problem
  FROM agentmesh.lm_verify_audit(:'w');
-- deleting from the middle is a sequence gap
ALTER TABLE agentmesh.audit_events DISABLE TRIGGER audit_events_immutable;
DELETE FROM agentmesh.audit_events WHERE agent_id = :'a' AND seq = 3;
ALTER TABLE agentmesh.audit_events ENABLE ALWAYS TRIGGER audit_events_immutable;
SELECT intact, broken_agent_id = :'a' AS reports_that_agent, broken_seq, problem
  FROM agentmesh.lm_verify_audit(:'a');
-- the trigger is back on, in ALWAYS mode
SELECT tgname, tgenabled FROM pg_trigger
 WHERE tgrelid = 'agentmesh.audit_events'::regclass AND NOT tgisinternal ORDER BY 1;

SET client_min_messages = warning;
DROP FUNCTION pg_temp.recompute(agentmesh.audit_events);
DROP EXTENSION pgcrypto;
SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;
RESET client_min_messages;

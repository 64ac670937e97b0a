--
-- core_policies: policies are rows of agentmesh.policies, created and changed
-- with plain INSERT/UPDATE.  Every change is a policy_changed event in the
-- policy's own hash chain (operation and changed columns in the details; an
-- UPDATE that changes nothing writes nothing); renames, DELETE and TRUNCATE
-- are refused; values are checked (22023); require_approval and
-- require_owner shape lm_request; unknown policy 42704; lm_verify_audit()
-- covers the policy chains.
--
CREATE EXTENSION agentmesh_lifecycle;
\set VERBOSITY terse

\i test/fingerprint.sql

-- The policy events, without timestamps or hashes.
CREATE FUNCTION pg_temp.policy_events(p text)
RETURNS TABLE (seq int8, event_type agentmesh.lifecycle_event_type, no_agent bool,
			   previous_state agentmesh.lifecycle_state, new_state agentmesh.lifecycle_state,
			   actor text, db_user_ok bool, first_link bool, details jsonb)
LANGUAGE sql AS $$
	SELECT e.seq, e.event_type, e.agent_id IS NULL, e.previous_state, e.new_state,
		   CASE WHEN e.actor = session_user THEN '(session user)' ELSE e.actor END,
		   e.db_user = session_user, e.prev_hash IS NULL, e.details
	  FROM agentmesh.audit_events e WHERE e.policy = p ORDER BY e.seq
$$;

-- the default policy: the reference's defaults, and no event yet
SELECT name, require_approval, require_owner, require_distinct_approver,
	   heartbeat_interval, orphan_threshold, max_inactive_days, max_credential_ttl,
	   rotation_overlap, auto_rotate, revoke_on_decommission, heartbeat_requires_token,
	   audit_heartbeats, auto_decommission, audit_seq, audit_head IS NULL AS no_head
  FROM agentmesh.policies;
SELECT count(*) AS events FROM agentmesh.audit_events;

-- INSERT: one policy_changed event, operation insert, actor = session user
INSERT INTO agentmesh.policies (name, require_approval, require_owner, max_credential_ttl, rotation_overlap)
VALUES ('no-approval', false, false, '1 hour', '2 minutes');
SELECT * FROM pg_temp.policy_events('no-approval');

-- UPDATE: the changed columns, in table order
UPDATE agentmesh.policies SET audit_heartbeats = true, orphan_threshold = '2 hours'
 WHERE name = 'no-approval';
-- UPDATEs that change nothing write no event and leave the row as it was
SELECT updated_at AS upd0, audit_seq AS seq0 FROM agentmesh.policies WHERE name = 'no-approval' \gset
UPDATE agentmesh.policies SET orphan_threshold = '2 hours' WHERE name = 'no-approval';
UPDATE agentmesh.policies SET orphan_threshold = '120 minutes' WHERE name = 'no-approval';
UPDATE agentmesh.policies SET require_approval = require_approval;
-- bookkeeping columns are not the caller's to set: ignored, no event
UPDATE agentmesh.policies SET updated_at = now() - interval '1 day', audit_seq = 42,
	   created_at = now() - interval '1 year' WHERE name = 'no-approval';
SELECT updated_at = :'upd0' AS updated_at_kept, audit_seq = :seq0 AS seq_kept
  FROM agentmesh.policies WHERE name = 'no-approval';
-- one statement changing two rows: one event each
UPDATE agentmesh.policies SET auto_decommission = true;
UPDATE agentmesh.policies SET auto_decommission = false, max_inactive_days = 30 WHERE name = 'default';
SELECT * FROM pg_temp.policy_events('no-approval');
SELECT * FROM pg_temp.policy_events('default');
-- the chain head is kept in the policy row
SELECT p.name, p.audit_seq,
	   p.audit_head = (SELECT e.hash FROM agentmesh.audit_events e
					   WHERE e.policy = p.name ORDER BY e.seq DESC LIMIT 1) AS head_is_last_hash
  FROM agentmesh.policies p ORDER BY p.name;
-- each event chains to the previous one of its policy
SELECT count(*) AS links, count(*) FILTER (WHERE e.prev_hash = p.hash) AS good_links
  FROM agentmesh.audit_events e JOIN agentmesh.audit_events p
	ON p.policy = e.policy AND p.seq = e.seq - 1;
-- a rolled-back change leaves no event
BEGIN;
INSERT INTO agentmesh.policies (name) VALUES ('rolled-back');
UPDATE agentmesh.policies SET auto_rotate = false WHERE name = 'default';
ROLLBACK;
SELECT count(*) AS rolled_back_events FROM agentmesh.audit_events
 WHERE policy = 'rolled-back' OR (policy = 'default' AND details->'columns' ? 'auto_rotate');

SELECT pg_temp.fp() AS fp0 \gset
\set VERBOSITY sqlstate

-- renames are refused (55000), also of the default policy
UPDATE agentmesh.policies SET name = 'renamed' WHERE name = 'no-approval';
UPDATE agentmesh.policies SET name = 'renamed' WHERE name = 'default';
-- DELETE refused (55000), also in replica mode
DELETE FROM agentmesh.policies WHERE name = 'no-approval';
DELETE FROM agentmesh.policies;
SET session_replication_role = replica;
DELETE FROM agentmesh.policies WHERE name = 'no-approval';
UPDATE agentmesh.policies SET name = 'renamed' WHERE name = 'no-approval';
RESET session_replication_role;
-- TRUNCATE refused by the trigger (55000), with or without CASCADE
TRUNCATE agentmesh.policies;
TRUNCATE agentmesh.policies CASCADE;
SELECT pg_temp.fp() = :'fp0' AS unchanged;
\set VERBOSITY terse
UPDATE agentmesh.policies SET name = 'renamed' WHERE name = 'no-approval';
DELETE FROM agentmesh.policies WHERE name = 'no-approval';
\set VERBOSITY sqlstate

-- nonsense values: 22023, on INSERT and on UPDATE, nothing changed
INSERT INTO agentmesh.policies (name, heartbeat_interval) VALUES ('p1', '0');
INSERT INTO agentmesh.policies (name, heartbeat_interval) VALUES ('p1', '-1 second');
INSERT INTO agentmesh.policies (name, orphan_threshold) VALUES ('p1', '0');
INSERT INTO agentmesh.policies (name, orphan_threshold) VALUES ('p1', '-1 hour');
INSERT INTO agentmesh.policies (name, max_credential_ttl) VALUES ('p1', '0');
INSERT INTO agentmesh.policies (name, max_credential_ttl, rotation_overlap) VALUES ('p1', '-1 hour', '0');
INSERT INTO agentmesh.policies (name, max_credential_ttl) VALUES ('p1', '366 days 00:00:01');
INSERT INTO agentmesh.policies (name, max_credential_ttl) VALUES ('p1', '13 months');
INSERT INTO agentmesh.policies (name, rotation_overlap) VALUES ('p1', '-1 second');
INSERT INTO agentmesh.policies (name, max_credential_ttl, rotation_overlap) VALUES ('p1', '1 hour', '1 hour');
INSERT INTO agentmesh.policies (name, max_credential_ttl, rotation_overlap) VALUES ('p1', '1 hour', '61 minutes');
INSERT INTO agentmesh.policies (name, max_inactive_days) VALUES ('p1', 0);
INSERT INTO agentmesh.policies (name, max_inactive_days) VALUES ('p1', -1);
INSERT INTO agentmesh.policies (name, max_inactive_days) VALUES ('p1', 36501);
UPDATE agentmesh.policies SET heartbeat_interval = '0' WHERE name = 'no-approval';
UPDATE agentmesh.policies SET orphan_threshold = '-5 minutes' WHERE name = 'no-approval';
UPDATE agentmesh.policies SET rotation_overlap = '1 hour' WHERE name = 'no-approval';
UPDATE agentmesh.policies SET max_credential_ttl = '2 minutes' WHERE name = 'no-approval';
UPDATE agentmesh.policies SET max_credential_ttl = '400 days' WHERE name = 'default';
UPDATE agentmesh.policies SET max_inactive_days = 36501 WHERE name = 'default';
-- bad names: 22023
INSERT INTO agentmesh.policies (name) VALUES ('');
INSERT INTO agentmesh.policies (name) VALUES ('Upper');
INSERT INTO agentmesh.policies (name) VALUES ('1abc');
INSERT INTO agentmesh.policies (name) VALUES ('_abc');
INSERT INTO agentmesh.policies (name) VALUES ('a b');
INSERT INTO agentmesh.policies (name) VALUES ('a/b');
INSERT INTO agentmesh.policies (name) VALUES ('naïve');
INSERT INTO agentmesh.policies (name) VALUES (E'a\nb');
INSERT INTO agentmesh.policies (name) VALUES (repeat('p', 64));
-- a duplicate name is the primary key's error
INSERT INTO agentmesh.policies (name) VALUES ('default');
SELECT pg_temp.fp() = :'fp0' AS unchanged;
-- the message names the column and the policy
\set VERBOSITY default
INSERT INTO agentmesh.policies (name, max_credential_ttl, rotation_overlap) VALUES ('p1', '1 hour', '1 hour');
UPDATE agentmesh.policies SET max_inactive_days = 0 WHERE name = 'default';
INSERT INTO agentmesh.policies (name) VALUES ('Upper');
\set VERBOSITY terse

-- values exactly at the limits are accepted
INSERT INTO agentmesh.policies (name, max_credential_ttl, rotation_overlap, max_inactive_days,
								heartbeat_interval, orphan_threshold)
VALUES ('limits-high', '366 days', '365 days 23:59:59.999999', 36500, '1 microsecond', '1 microsecond');
INSERT INTO agentmesh.policies (name, max_credential_ttl, rotation_overlap, max_inactive_days)
VALUES (repeat('p', 63), '1 microsecond', '0', 1);
INSERT INTO agentmesh.policies (name) VALUES ('a.b-c_d9');
SELECT name, max_credential_ttl, rotation_overlap, max_inactive_days, heartbeat_interval, orphan_threshold
  FROM agentmesh.policies WHERE name IN ('limits-high', repeat('p', 63), 'a.b-c_d9') ORDER BY name;

-- require_approval = false: requests start provisioned, with events requested + provisioned
SELECT agent_id AS n1, state AS n1_state
  FROM agentmesh.lm_request('ci-runner', 'platform@example.com', actor => 'alice@example.com',
							policy => 'no-approval') \gset
SELECT :'n1_state' AS state_returned;
SELECT state, policy, owner, requested_by FROM agentmesh.lm_get(:'n1');
SELECT seq, event_type, previous_state, new_state, actor,
       CASE WHEN details->>'team' = session_user THEN jsonb_set(details, '{team}', '"(session user)"') ELSE details END AS details
  FROM agentmesh.lm_audit_trail(:'n1') ORDER BY seq;
SELECT state FROM agentmesh.lm_activate(:'n1');
-- under the default policy a request waits for approval
SELECT agent_id AS d1, state FROM agentmesh.lm_request('waits', 'o@example.com') \gset
SELECT :'state' AS default_policy_state;

-- require_owner = false: a NULL owner is allowed ...
SELECT agent_id AS n2, state AS n2_state, owner IS NULL AS no_owner
  FROM agentmesh.lm_request('ownerless', NULL, policy => 'no-approval') \gset
SELECT :'n2_state' AS state, :'no_owner' AS owner_is_null;
SELECT event_type, CASE WHEN details->>'team' = session_user THEN jsonb_set(details, '{team}', '"(session user)"') ELSE details END AS details
  FROM agentmesh.lm_audit_trail(:'n2') ORDER BY seq;
-- ... and lm_detect_orphans() reports it (no_owner) once it is provisioned
SELECT agent_id = :'n2' AS is_n2, name, owner IS NULL AS owner_null, state, reason_code, reason,
	   days_silent IS NULL AS no_days
  FROM agentmesh.lm_detect_orphans() ORDER BY name, reason_code;
-- an ownerless request still pending approval is not reported until approved
INSERT INTO agentmesh.policies (name, require_owner) VALUES ('owner-optional', false);
SELECT agent_id AS n3 FROM agentmesh.lm_request('ownerless-pending', NULL, policy => 'owner-optional') \gset
SELECT count(*) AS reported FROM agentmesh.lm_detect_orphans() WHERE agent_id = :'n3';
SELECT state FROM agentmesh.lm_approve(:'n3');
SELECT reason_code FROM agentmesh.lm_detect_orphans() WHERE agent_id = :'n3';
-- giving it an owner ends the report
SELECT owner FROM agentmesh.lm_change_owner(:'n3', 'found@example.com');
SELECT count(*) AS reported FROM agentmesh.lm_detect_orphans() WHERE agent_id = :'n3';

SELECT pg_temp.fp() AS fp1 \gset
\set VERBOSITY sqlstate
-- a blank owner is refused under any policy (22023)
SELECT agentmesh.lm_request('blank-owner', '', policy => 'no-approval');
SELECT agentmesh.lm_request('blank-owner', '   ', policy => 'no-approval');
SELECT agentmesh.lm_request('blank-owner', E'\t', policy => 'owner-optional');
-- a NULL owner under a policy that requires one (22023)
SELECT agentmesh.lm_request('no-owner', NULL);
SELECT agentmesh.lm_request('no-owner', NULL, policy => 'limits-high');
-- an unknown policy (42704); names are case-sensitive
SELECT agentmesh.lm_request('n', 'o@example.com', policy => 'no-such-policy');
SELECT agentmesh.lm_request('n', 'o@example.com', policy => 'Default');
SELECT agentmesh.lm_request('n', NULL, policy => 'no-such-policy');
SELECT pg_temp.fp() = :'fp1' AS unchanged;
\set VERBOSITY terse
SELECT agentmesh.lm_request('no-owner', NULL, policy => 'default');
SELECT agentmesh.lm_request('n', 'o@example.com', policy => 'no-such-policy');

-- a policy change applies to later requests only
UPDATE agentmesh.policies SET require_approval = true WHERE name = 'no-approval';
SELECT state FROM agentmesh.lm_request('after-change', 'o@example.com', policy => 'no-approval');
SELECT state FROM agentmesh.lm_get(:'n1');

-- lm_verify_audit() covers the policy chains: every event counted ...
SELECT intact, events_checked = (SELECT count(*) FROM agentmesh.audit_events) AS all_checked,
	   broken_policy, problem
  FROM agentmesh.lm_verify_audit();
-- ... while lm_verify_audit(agent) checks that agent's chain only
SELECT intact, events_checked = (SELECT count(*) FROM agentmesh.audit_events WHERE agent_id = :'n1') AS own_chain
  FROM agentmesh.lm_verify_audit(:'n1');
-- a tampered policy event (trigger disabled by a superuser) is found
SELECT details AS orig_details FROM agentmesh.audit_events WHERE policy = 'no-approval' AND seq = 2 \gset
ALTER TABLE agentmesh.audit_events DISABLE TRIGGER audit_events_immutable;
UPDATE agentmesh.audit_events SET details = '{"operation": "update", "columns": []}'
 WHERE policy = 'no-approval' AND seq = 2;
SELECT intact, broken_agent_id, broken_policy, broken_seq, problem FROM agentmesh.lm_verify_audit();
UPDATE agentmesh.audit_events SET details = :'orig_details' WHERE policy = 'no-approval' AND seq = 2;
ALTER TABLE agentmesh.audit_events ENABLE ALWAYS TRIGGER audit_events_immutable;
SELECT intact FROM agentmesh.lm_verify_audit();
-- a policy's chain head altered behind the trigger's back is found
ALTER TABLE agentmesh.policies DISABLE TRIGGER policies_guard;
UPDATE agentmesh.policies SET audit_seq = audit_seq - 1 WHERE name = 'default';
SELECT intact, broken_agent_id, broken_policy, broken_seq, problem FROM agentmesh.lm_verify_audit();
UPDATE agentmesh.policies SET audit_seq = audit_seq + 1 WHERE name = 'default';
ALTER TABLE agentmesh.policies ENABLE ALWAYS TRIGGER policies_guard;
SELECT intact FROM agentmesh.lm_verify_audit();

-- NULL policy values are refused (22004 or the NOT NULL constraint's 23502),
-- never crash the server, and change nothing (kept last: see BUG P1)
SELECT pg_temp.fp() AS fp2 \gset
CREATE FUNCTION pg_temp.null_refused(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
	RETURN CASE WHEN SQLSTATE IN ('22004', '23502') THEN 'refused as NULL' ELSE 'refused with ' || SQLSTATE END;
END $$;
SELECT c, pg_temp.null_refused(CASE WHEN c = 'name' THEN 'INSERT INTO agentmesh.policies (name) VALUES (NULL)'
		   ELSE format('INSERT INTO agentmesh.policies (name, %I) VALUES (%L, NULL)', c, 'null-' || c) END) AS on_insert,
	   pg_temp.null_refused(format('UPDATE agentmesh.policies SET %I = NULL WHERE name = %L', c, 'default')) AS on_update
  FROM unnest(ARRAY['name', 'require_approval', 'heartbeat_interval', 'orphan_threshold',
					'max_inactive_days', 'max_credential_ttl', 'rotation_overlap']) AS c;
SELECT pg_temp.fp() = :'fp2' AS unchanged;
SELECT intact FROM agentmesh.lm_verify_audit();

DROP FUNCTION pg_temp.policy_events(text);
SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;

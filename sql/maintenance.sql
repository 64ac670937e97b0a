--
-- maintenance: lm_run_maintenance() at fixed times relative to the
-- activation time: missed heartbeats once per silence, orphaning with its
-- audit rows, rotation, expiry recorded once with auto_rotate off,
-- auto_decommission, seals that verify (also recomputed in plain SQL).
-- Nothing time-, id- or hash-valued is printed.
--
CREATE EXTENSION agentmesh_lifecycle;
\set VERBOSITY terse

INSERT INTO agentmesh.policies (name, require_approval, heartbeat_interval, orphan_threshold,
		max_credential_ttl, rotation_overlap, auto_rotate, auto_decommission, max_inactive_days,
		require_owner)
VALUES ('p_rot',     false, '5 minutes', '30 days', '24 hours', '1 hour', true,  false, 90, true),
	   ('p_norot',   false, '5 minutes', '30 days', '24 hours', '1 hour', false, false, 90, true),
	   ('p_orph',    false, '5 minutes', '1 hour',  '24 hours', '1 hour', true,  true,  2,  true),
	   ('p_noowner', false, '5 minutes', '30 days', '24 hours', '1 hour', true,  false, 90, false);

SELECT (agentmesh.lm_request('rot', 'alice', policy => 'p_rot')).agent_id AS a \gset
SELECT (agentmesh.lm_request('norot', 'alice', policy => 'p_norot')).agent_id AS b \gset
SELECT (agentmesh.lm_request('orph', 'alice', policy => 'p_orph')).agent_id AS c \gset
SELECT (agentmesh.lm_request('noowner', NULL, policy => 'p_noowner')).agent_id AS d \gset
SELECT count(*) AS activated FROM (
	SELECT agentmesh.lm_activate(x) FROM unnest(ARRAY[:'a', :'b', :'c', :'d']) x) s;
SELECT max(activated_at) AS t0 FROM agentmesh.agents \gset

-- no maintenance worker runs here (agentmesh_lifecycle.enabled = off)
SELECT count(*) AS workers FROM agentmesh.worker_status WHERE datname = current_database();

-- bad input
SELECT * FROM agentmesh.lm_run_maintenance(NULL);
SELECT * FROM agentmesh.lm_run_maintenance(now(), 0);
SELECT * FROM agentmesh.lm_run_maintenance('infinity');

-- PUBLIC may not run a pass
CREATE ROLE regress_mt_nobody;
SET ROLE regress_mt_nobody;
SELECT * FROM agentmesh.lm_run_maintenance();
RESET ROLE;
DROP ROLE regress_mt_nobody;

-- t0 + 1 min: the agent without an owner is orphaned at once
SELECT orphaned, decommissioned, heartbeats_missed, rotated, issued, expired
  FROM agentmesh.lm_run_maintenance(:'t0'::timestamptz + interval '1 minute', allow_future => true);
-- t0 + 10 min: three active agents silent past heartbeat_interval (batches of one)
SELECT orphaned, decommissioned, heartbeats_missed, rotated, issued, expired
  FROM agentmesh.lm_run_maintenance(:'t0'::timestamptz + interval '10 minutes', 1, allow_future => true);
-- t0 + 20 min: still the same silences: nothing new
SELECT orphaned, decommissioned, heartbeats_missed, rotated, issued, expired
  FROM agentmesh.lm_run_maintenance(:'t0'::timestamptz + interval '20 minutes', allow_future => true);
-- a heartbeat ends one silence; the next miss is recorded again
SELECT (agentmesh.lm_heartbeat(:'a')).state AS heartbeat;
SELECT orphaned, decommissioned, heartbeats_missed, rotated, issued, expired
  FROM agentmesh.lm_run_maintenance(:'t0'::timestamptz + interval '30 minutes', allow_future => true);
-- t0 + 2 h: the p_orph agent never sent a heartbeat within orphan_threshold
SELECT orphaned, decommissioned, heartbeats_missed, rotated, issued, expired
  FROM agentmesh.lm_run_maintenance(:'t0'::timestamptz + interval '2 hours', allow_future => true);
-- t0 + 23.5 h: inside the rotation overlap of p_rot's credential
SELECT orphaned, decommissioned, heartbeats_missed, rotated, issued, expired
  FROM agentmesh.lm_run_maintenance(:'t0'::timestamptz + interval '23 hours 30 minutes', allow_future => true);
-- t0 + 25 h: p_norot's credential expired: recorded once, not rotated
SELECT orphaned, decommissioned, heartbeats_missed, rotated, issued, expired
  FROM agentmesh.lm_run_maintenance(:'t0'::timestamptz + interval '25 hours', allow_future => true);
SELECT orphaned, decommissioned, heartbeats_missed, rotated, issued, expired
  FROM agentmesh.lm_run_maintenance(:'t0'::timestamptz + interval '26 hours', allow_future => true);
-- t0 + 3 days: the orphan is silent past max_inactive_days (auto_decommission);
-- p_rot's second credential has expired and is rotated
SELECT orphaned, decommissioned, heartbeats_missed, rotated, issued, expired
  FROM agentmesh.lm_run_maintenance(:'t0'::timestamptz + interval '3 days', allow_future => true);

SELECT name, state FROM agentmesh.agents ORDER BY name COLLATE "C";

-- the audit rows the passes wrote
SELECT a.name, e.seq, e.event_type, e.actor, e.previous_state, e.new_state,
	   e.details->>'reason_codes' AS reason_codes,
	   e.details ? 'reason' AS has_reason,
	   e.details->>'policy_rule' AS rule
  FROM agentmesh.audit_events e JOIN agentmesh.agents a USING (agent_id)
 WHERE e.actor = 'agentmesh-maintenance'
 ORDER BY a.name COLLATE "C", e.seq;
SELECT e.details->>'reason' LIKE 'auto_decommission: orphaned and silent for 3 days%' AS reason_ok
  FROM agentmesh.audit_events e
 WHERE e.agent_id = :'c' AND e.event_type = 'decommission_started';
SELECT count(*) AS usable_credentials_of_decommissioned
  FROM agentmesh.credentials WHERE agent_id = :'c' AND revoked_at IS NULL;
SELECT count(*) AS credentials_of_rotated FROM agentmesh.credentials WHERE agent_id = :'a';

-- seals: at least one, chained, and every one recomputed in plain SQL
SELECT orphaned, decommissioned, heartbeats_missed, rotated, issued, expired
  FROM agentmesh.lm_run_maintenance();
SELECT count(*) > 0 AS have_seals FROM agentmesh.audit_seals;
SELECT bool_and(s.seal_hash = sha256(
		COALESCE(s.prev_seal_hash, ''::bytea)
		|| int8send(s.xmin_from::text::int8) || int8send(s.xmin_to::text::int8)
		|| COALESCE((SELECT string_agg(int8send(e.event_id) || e.hash, ''::bytea ORDER BY e.event_id)
					   FROM agentmesh.audit_events e
					  WHERE e.xact_id >= s.xmin_from AND e.xact_id < s.xmin_to), ''::bytea)))
		AS seals_recomputed,
	   bool_and(s.prev_seal_hash IS NOT DISTINCT FROM
				(SELECT p.seal_hash FROM agentmesh.audit_seals p
				  WHERE p.seal_id < s.seal_id ORDER BY p.seal_id DESC LIMIT 1)) AS chained
  FROM agentmesh.audit_seals s;
-- every event of a sealed range is counted
SELECT (SELECT sum(event_count) FROM agentmesh.audit_seals) =
	   (SELECT count(*) FROM agentmesh.audit_events
		 WHERE xact_id < (SELECT max(xmin_to) FROM agentmesh.audit_seals)) AS complete;
SELECT intact, problem FROM agentmesh.lm_verify_audit();

-- seals are immutable; a tampered seal is reported
UPDATE agentmesh.audit_seals SET event_count = event_count + 1;
DELETE FROM agentmesh.audit_seals;
TRUNCATE agentmesh.audit_seals;
BEGIN;
ALTER TABLE agentmesh.audit_seals DISABLE TRIGGER audit_seals_immutable;
UPDATE agentmesh.audit_seals SET seal_hash = sha256('x') WHERE seal_id = (SELECT min(seal_id) FROM agentmesh.audit_seals);
SELECT intact, problem ~ '^audit seal [0-9]+: seal_hash does not match' AS seal_problem
  FROM agentmesh.lm_verify_audit();
ROLLBACK;
SELECT intact FROM agentmesh.lm_verify_audit();

SET client_min_messages = warning;
SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;
RESET client_min_messages;

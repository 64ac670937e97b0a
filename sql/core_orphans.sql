--
-- core_orphans: lm_detect_orphans() at fixed as_of times relative to captured
-- times (silent, never_heartbeat measured from activation, no_owner,
-- inactive; orphaned and decommissioned agents are not candidates; read-only);
-- lm_mark_orphaned() only from active; lm_reclaim() revokes the old
-- credentials and issues a new one; lm_heartbeat() states, zombie warning,
-- heartbeat_requires_token and audit_heartbeats.
-- Each statement is its own transaction, stamped with its now(); no
-- timestamp, id or token is printed.
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
\set VERBOSITY terse

\i test/fingerprint.sql
-- lm_detect_orphans() as of a time, without ids
CREATE FUNCTION pg_temp.orphans(as_of timestamptz)
RETURNS TABLE (name text, state agentmesh.lifecycle_state, reason_code text, reason text, days numeric)
LANGUAGE sql AS $$
	SELECT o.name, o.state, o.reason_code, o.reason, round(o.days_silent::numeric, 1)
	  FROM agentmesh.lm_detect_orphans(as_of) o ORDER BY o.name, o.reason_code
$$;

INSERT INTO agentmesh.policies (name, require_approval, require_owner)
VALUES ('no-approval', false, false);

-- silent: active, heartbeat, then nothing
SELECT agent_id AS s FROM agentmesh.lm_request('silent-bot', 'sam@example.com') \gset
SELECT state FROM agentmesh.lm_approve(:'s');
SELECT token AS tok_s FROM agentmesh.lm_activate(:'s') \gset
SELECT heartbeat_count FROM pg_temp.hb(:'s');
-- never_heartbeat: requested long before activation (created_at moved back by
-- a superuser, which is audited as attributes_changed), activated, then silent
SELECT agent_id AS n FROM agentmesh.lm_request('never-bot', 'nora@example.com') \gset
SELECT state FROM agentmesh.lm_approve(:'n');
UPDATE agentmesh.agents SET created_at = created_at - interval '30 days' WHERE agent_id = :'n';
SELECT state FROM agentmesh.lm_activate(:'n');
-- no_owner: provisioned without an owner
SELECT agent_id AS o, state FROM agentmesh.lm_request('ownerless-bot', NULL, policy => 'no-approval') \gset
-- pending approval (only ever inactive), suspended (only ever inactive)
SELECT agent_id AS p FROM agentmesh.lm_request('pending-bot', 'pat@example.com') \gset
SELECT agent_id AS u FROM agentmesh.lm_request('suspended-bot', 'uma@example.com') \gset
SELECT state FROM agentmesh.lm_approve(:'u');
SELECT state FROM agentmesh.lm_activate(:'u');
SELECT state FROM agentmesh.lm_suspend(:'u', 'maintenance');
-- orphaned and decommissioned: never candidates
SELECT agent_id AS x FROM agentmesh.lm_request('orphan-bot', 'xavier@example.com') \gset
SELECT state FROM agentmesh.lm_approve(:'x');
SELECT token AS tok_x, credential_id AS cred_x FROM agentmesh.lm_activate(:'x') \gset
SELECT state FROM agentmesh.lm_mark_orphaned(:'x', 'ops@example.com');
SELECT agent_id AS d FROM agentmesh.lm_request('retired-bot', 'dora@example.com') \gset
SELECT state FROM agentmesh.lm_approve(:'d');
SELECT state FROM agentmesh.lm_activate(:'d');
SELECT state FROM agentmesh.lm_decommission(:'d', 'done');

-- all of the above happened before t0
SELECT now() AS t0 \gset
SELECT bool_and(updated_at <= :'t0' AND created_at <= :'t0') AS all_before_t0,
	   bool_and(last_heartbeat IS NULL OR last_heartbeat <= :'t0') AS heartbeats_before_t0
  FROM agentmesh.agents;
SELECT created_at < activated_at - interval '29 days' AS requested_long_before_activation
  FROM agentmesh.agents WHERE agent_id = :'n';
SELECT pg_temp.fp() AS fp0 \gset

-- now: only the agent without an owner
SELECT * FROM pg_temp.orphans(:'t0');
-- 23 hours later: still only that one (never-bot was created 30 days ago, but
-- activated less than orphan_threshold ago)
SELECT * FROM pg_temp.orphans(:'t0'::timestamptz + interval '23 hours');
-- 25 hours later: silent and never_heartbeat too
SELECT * FROM pg_temp.orphans(:'t0'::timestamptz + interval '25 hours');
-- 91 days later: every candidate is also inactive (max_inactive_days 90),
-- pending and suspended agents included; orphan-bot and retired-bot never appear
SELECT * FROM pg_temp.orphans(:'t0'::timestamptz + interval '91 days');
-- the ids are the agents'
SELECT count(*) FILTER (WHERE agent_id = :'s' AND reason_code = 'silent') AS s_silent,
	   count(*) FILTER (WHERE agent_id = :'n' AND reason_code = 'never_heartbeat') AS n_never,
	   count(*) FILTER (WHERE agent_id = :'o' AND reason_code = 'no_owner') AS o_no_owner,
	   count(*) FILTER (WHERE agent_id IN (:'x', :'d')) AS x_or_d
  FROM agentmesh.lm_detect_orphans(:'t0'::timestamptz + interval '91 days');
-- a lower max_inactive_days is reported in the reason
UPDATE agentmesh.policies SET max_inactive_days = 7 WHERE name = 'no-approval';
SELECT reason_code, reason FROM agentmesh.lm_detect_orphans(:'t0'::timestamptz + interval '8 days')
 WHERE agent_id = :'o' ORDER BY reason_code;
UPDATE agentmesh.policies SET max_inactive_days = 90 WHERE name = 'no-approval';
SELECT pg_temp.fp() AS fp0 \gset
-- detection is read-only
SELECT count(*) > 0 AS found FROM agentmesh.lm_detect_orphans(:'t0'::timestamptz + interval '1000 days');
SELECT pg_temp.fp() = :'fp0' AS unchanged;
-- a heartbeat ends the silence
SELECT heartbeat_count FROM pg_temp.hb(:'s');
SELECT last_heartbeat AS hb_s FROM agentmesh.agents WHERE agent_id = :'s' \gset
SELECT count(*) AS silent_after_heartbeat FROM agentmesh.lm_detect_orphans(:'hb_s'::timestamptz + interval '23 hours')
 WHERE agent_id = :'s';
SELECT reason_code, round(days_silent::numeric, 1) AS days
  FROM agentmesh.lm_detect_orphans(:'hb_s'::timestamptz + interval '36 hours') WHERE agent_id = :'s';
\set VERBOSITY sqlstate
SELECT count(*) FROM agentmesh.lm_detect_orphans(NULL);
SELECT count(*) FROM agentmesh.lm_detect_orphans('infinity');
\set VERBOSITY terse

-- in real time: a one-second threshold, default as_of (now); after a second
-- without a heartbeat, then after a second since the last heartbeat
INSERT INTO agentmesh.policies (name, require_approval, orphan_threshold)
VALUES ('one-second', false, '1 second');
SELECT agent_id AS r FROM agentmesh.lm_request('realtime-bot', 'rita@example.com', policy => 'one-second') \gset
SELECT state FROM agentmesh.lm_activate(:'r');
SELECT pg_sleep(1.2);
SELECT reason_code FROM agentmesh.lm_detect_orphans() WHERE agent_id = :'r';
SELECT heartbeat_count FROM pg_temp.hb(:'r');
SELECT pg_sleep(1.2);
SELECT reason_code FROM agentmesh.lm_detect_orphans() WHERE agent_id = :'r';

-- lm_mark_orphaned: only from active; anything else is 55000 and changes nothing
SELECT pg_temp.fp() AS fp1 \gset
\set VERBOSITY sqlstate
SELECT agentmesh.lm_mark_orphaned(:'p');
SELECT agentmesh.lm_mark_orphaned(:'o');
SELECT agentmesh.lm_mark_orphaned(:'u');
SELECT agentmesh.lm_mark_orphaned(:'x');
SELECT agentmesh.lm_mark_orphaned(:'d');
SELECT agentmesh.lm_mark_orphaned('agent:unknown');
SELECT agentmesh.lm_mark_orphaned(NULL);
SELECT pg_temp.fp() = :'fp1' AS unchanged;
\set VERBOSITY terse
SELECT state FROM agentmesh.lm_mark_orphaned(:'r', 'ops@example.com');
SELECT seq, event_type, previous_state, new_state, actor
  FROM agentmesh.lm_audit_trail(:'r') ORDER BY seq DESC LIMIT 1;
SELECT count(*) AS orphan_not_reported FROM agentmesh.lm_detect_orphans() WHERE agent_id = :'r';

-- lm_reclaim: orphaned -> active with the new owner, old credentials revoked,
-- a new credential whose token verifies
SELECT agentmesh.lm_verify_credential(:'tok_x') IS NULL AS orphan_token_refused;
SELECT count(*) AS events_before FROM agentmesh.audit_events WHERE agent_id = :'x' \gset
SELECT state AS x_state, token AS tok_x2, credential_id AS cred_x2
  FROM agentmesh.lm_reclaim(:'x', 'yuri@example.com', 'ops@example.com') \gset
SELECT :'x_state' AS state, :'cred_x2' <> :'cred_x' AS new_credential,
	   :'tok_x2' ~ '^amk_[0-9a-f]{72}$' AS token_format_ok,
	   agentmesh.lm_verify_credential(:'tok_x2') = :'x' AS new_token_verifies,
	   agentmesh.lm_verify_credential(:'tok_x') IS NULL AS old_token_refused;
SELECT state, owner, credential_id = :'cred_x2' AS current_is_new FROM agentmesh.lm_get(:'x');
SELECT credential_id = :'cred_x2' AS is_new, revoked_at IS NOT NULL AS revoked, revoke_reason
  FROM agentmesh.credentials WHERE agent_id = :'x' ORDER BY is_new;
SELECT seq - :events_before AS n, event_type, previous_state, new_state, actor,
	   details - 'old_credential' - 'new_credential' AS details,
	   details->>'old_credential' = :'cred_x' AS old_cred_named,
	   details->>'new_credential' = :'cred_x2' AS new_cred_named
  FROM agentmesh.lm_audit_trail(:'x') WHERE seq > :events_before ORDER BY seq;
-- reclaim only from orphaned; bad new owner
SELECT pg_temp.fp() AS fp2 \gset
\set VERBOSITY sqlstate
SELECT agentmesh.lm_reclaim(:'x', 'zed@example.com');
SELECT agentmesh.lm_reclaim(:'u', 'zed@example.com');
SELECT agentmesh.lm_reclaim(:'d', 'zed@example.com');
SELECT agentmesh.lm_reclaim(:'r', NULL);
SELECT agentmesh.lm_reclaim(:'r', '  ');
SELECT agentmesh.lm_reclaim('agent:unknown', 'zed@example.com');
SELECT pg_temp.fp() = :'fp2' AS unchanged;
\set VERBOSITY terse

-- heartbeats: accepted for active, suspended and orphaned agents
SELECT state, heartbeat_count FROM pg_temp.hb(:'u');
SELECT state, heartbeat_count FROM pg_temp.hb(:'r');
SELECT state, heartbeat_count FROM pg_temp.hb(:'x');
-- refused (55000) for pending_approval, provisioned and decommissioned ones,
-- changing nothing
SELECT pg_temp.fp() AS fp3 \gset
\set VERBOSITY sqlstate
SELECT agentmesh.lm_heartbeat(:'p');
SELECT agentmesh.lm_heartbeat(:'o');
SELECT agentmesh.lm_heartbeat(:'d');
SELECT agentmesh.lm_heartbeat('agent:unknown');
SELECT agentmesh.lm_heartbeat(NULL);
SELECT pg_temp.fp() = :'fp3' AS unchanged;
-- a decommissioned (here: rejected) agent's heartbeat is a zombie: a WARNING
-- precedes the error (an agent with a known id, so that the message is stable)
\set VERBOSITY terse
INSERT INTO agentmesh.agents (agent_id, name, owner, state)
VALUES ('agent:zombie', 'zombie', 'zoe@example.com', 'pending_approval');
SELECT state FROM agentmesh.lm_reject('agent:zombie', 'not needed');
SELECT pg_temp.fp() AS fp4 \gset
SELECT agentmesh.lm_heartbeat('agent:zombie');
\set VERBOSITY default
-- a wrong token is refused (42501) before the state is looked at, so it
-- learns nothing about the agent, zombie or not
SELECT agentmesh.lm_heartbeat('agent:zombie', 'amk_not_a_token');
\set VERBOSITY terse
-- a pending agent's refused heartbeat is no zombie: no warning
INSERT INTO agentmesh.agents (agent_id, name, owner, state)
VALUES ('agent:early', 'early', 'eve@example.com', 'pending_approval');
SELECT pg_temp.fp() AS fp4 \gset
SELECT agentmesh.lm_heartbeat('agent:early');
SELECT pg_temp.fp() = :'fp4' AS unchanged;

-- heartbeat_requires_token: no token, a wrong one or another agent's is
-- 42501 and changes nothing; the agent's own token is accepted
INSERT INTO agentmesh.policies (name, require_approval, heartbeat_requires_token)
VALUES ('token-hb', false, true);
SELECT agent_id AS k FROM agentmesh.lm_request('token-bot', 'kim@example.com', policy => 'token-hb') \gset
SELECT token AS tok_k FROM agentmesh.lm_activate(:'k') \gset
SELECT agent_id AS k2 FROM agentmesh.lm_request('other-token-bot', 'kim@example.com', policy => 'token-hb') \gset
SELECT token AS tok_k2 FROM agentmesh.lm_activate(:'k2') \gset
SELECT pg_temp.fp() AS fp5 \gset
\set VERBOSITY sqlstate
SELECT agentmesh.lm_heartbeat(:'k');
SELECT agentmesh.lm_heartbeat(:'k', NULL);
SELECT agentmesh.lm_heartbeat(:'k', '');
SELECT agentmesh.lm_heartbeat(:'k', 'amk_' || repeat('0', 72));
SELECT agentmesh.lm_heartbeat(:'k', :'tok_k2');
SELECT agentmesh.lm_heartbeat(:'k', :'tok_s');
SELECT pg_temp.fp() = :'fp5' AS unchanged;
\set VERBOSITY terse
SELECT state, heartbeat_count, last_heartbeat IS NOT NULL AS has_heartbeat
  FROM pg_temp.hb(:'k', :'tok_k');
SELECT heartbeat_count FROM pg_temp.hb(:'k2', :'tok_k2');
-- a revoked token no longer carries a heartbeat
SELECT credential_id IS NULL AS no_credential FROM agentmesh.lm_revoke_credentials(:'k', 'leaked');
\set VERBOSITY sqlstate
SELECT agentmesh.lm_heartbeat(:'k', :'tok_k');
\set VERBOSITY terse
-- the default policy does not ask for a token
SELECT heartbeat_count FROM pg_temp.hb(:'s', NULL);

-- audit_heartbeats: one heartbeat event per heartbeat; the default policy writes none
INSERT INTO agentmesh.policies (name, require_approval, audit_heartbeats)
VALUES ('audited-hb', false, true);
SELECT agent_id AS h FROM agentmesh.lm_request('audited-bot', 'hal@example.com', policy => 'audited-hb') \gset
SELECT state FROM agentmesh.lm_activate(:'h');
SELECT count(*) AS h_events FROM agentmesh.audit_events WHERE agent_id = :'h' \gset
SELECT count(*) AS s_events FROM agentmesh.audit_events WHERE agent_id = :'s' \gset
SELECT heartbeat_count FROM pg_temp.hb(:'h');
SELECT heartbeat_count FROM pg_temp.hb(:'h');
SELECT heartbeat_count FROM pg_temp.hb(:'h');
SELECT heartbeat_count FROM pg_temp.hb(:'s');
SELECT heartbeat_count FROM pg_temp.hb(:'s');
SELECT seq - :h_events AS n, event_type, previous_state, new_state,
	   CASE WHEN actor = session_user THEN '(session user)' ELSE actor END AS actor,
	   db_user = session_user AS db_user_ok, details
  FROM agentmesh.lm_audit_trail(:'h') WHERE seq > :h_events ORDER BY seq;
SELECT count(*) - :s_events AS default_policy_new_events
  FROM agentmesh.audit_events WHERE agent_id = :'s';
-- an audited heartbeat of a suspended agent is recorded too; a refused one is not
SELECT state FROM agentmesh.lm_suspend(:'h', 'check');
SELECT state, heartbeat_count FROM pg_temp.hb(:'h');
SELECT event_type FROM agentmesh.lm_audit_trail(:'h') ORDER BY seq DESC LIMIT 2;
SELECT state FROM agentmesh.lm_decommission(:'h', 'done');
SELECT count(*) AS h_events FROM agentmesh.audit_events WHERE agent_id = :'h' \gset
\set VERBOSITY sqlstate
SELECT agentmesh.lm_heartbeat(:'h');
\set VERBOSITY terse
SELECT count(*) = :h_events AS no_event_for_refused FROM agentmesh.audit_events WHERE agent_id = :'h';

SELECT intact, problem FROM agentmesh.lm_verify_audit();

DROP FUNCTION pg_temp.orphans(timestamptz);
SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;

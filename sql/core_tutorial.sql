--
-- core_tutorial: the whole lifecycle flow end to end
-- request, approve, activate, heartbeat, rotate, detect orphans, mark
-- orphaned, reclaim, decommission, audit trail.  No timestamps, ids, tokens
-- or hashes are printed: they are captured with \gset and compared.
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

-- request
SELECT agent_id AS a, created_at AS a_created
  FROM agentmesh.lm_request('invoice-bot', 'alice@example.com', 'pays invoices',
                            actor => 'alice@example.com',
                            tags => '{"team": "payments"}') \gset
SELECT :'a' ~ '^agent:[0-9a-f]{32}$' AS id_has_128_random_bits,
       state, name, owner, purpose, agent_type, policy, tags, heartbeat_count,
       credential_id IS NULL AS no_credential, requested_by
  FROM agentmesh.lm_get(:'a');

-- approve
SELECT state FROM agentmesh.lm_approve(:'a', 'bob@example.com');

-- activate: returns the credential grant with the token (shown once)
SELECT agent_id AS g_agent, state AS g_state, credential_id AS cred1, token AS tok1,
       credential_expires_at - credential_issued_at AS g_ttl
  FROM agentmesh.lm_activate(:'a', 'bob@example.com') \gset
SELECT :'g_agent' = :'a' AS same_agent, :'g_state' AS state,
       :'cred1' ~ '^cred:' AS cred_id_ok, :'g_ttl' AS ttl,
       :'tok1' ~ '^amk_[0-9a-f]{72}$' AS token_format_ok;
SELECT agentmesh.lm_verify_credential(:'tok1') = :'a' AS token_verifies;
SELECT state, credential_id = :'cred1' AS current_cred, activated_at IS NOT NULL AS activated
  FROM agentmesh.lm_get(:'a');

-- heartbeat
SELECT state, heartbeat_count, last_heartbeat IS NOT NULL AS has_heartbeat
  FROM pg_temp.hb(:'a');
SELECT heartbeat_count FROM pg_temp.hb(:'a', :'tok1');

-- rotate: new credential, old one still verifies inside the overlap
SELECT credential_id AS cred2, token AS tok2
  FROM agentmesh.lm_rotate_credentials(:'a') \gset
SELECT :'cred2' <> :'cred1' AS new_credential,
       agentmesh.lm_verify_credential(:'tok2') = :'a' AS new_verifies,
       agentmesh.lm_verify_credential(:'tok1') = :'a' AS old_verifies_in_overlap;

-- detect orphans: nothing now; silent a little more than a day later
SELECT last_heartbeat AS hb FROM agentmesh.agents WHERE agent_id = :'a' \gset
SELECT count(*) AS orphans_now FROM agentmesh.lm_detect_orphans(:'hb'::timestamptz + interval '1 hour');
SELECT agent_id = :'a' AS same_agent, name, owner, state, reason_code,
       round(days_silent::numeric, 2) AS days_silent
  FROM agentmesh.lm_detect_orphans(:'hb'::timestamptz + interval '36 hours');

-- mark orphaned
SELECT state FROM agentmesh.lm_mark_orphaned(:'a', 'ops@example.com');
SELECT agentmesh.lm_verify_credential(:'tok2') IS NULL AS orphan_token_refused;

-- reclaim: new owner, fresh credential, old ones revoked
SELECT state, token AS tok3, credential_id AS cred3
  FROM agentmesh.lm_reclaim(:'a', 'carol@example.com', 'ops@example.com') \gset
SELECT :'state' AS state_after_reclaim;
SELECT owner, state FROM agentmesh.lm_get(:'a');
SELECT agentmesh.lm_verify_credential(:'tok3') = :'a' AS new_verifies,
       agentmesh.lm_verify_credential(:'tok2') IS NULL AS old_revoked,
       agentmesh.lm_verify_credential(:'tok1') IS NULL AS older_revoked;
SELECT credential_id = :'cred3' AS current, revoked_at IS NOT NULL AS revoked, revoke_reason
  FROM agentmesh.credentials WHERE agent_id = :'a' ORDER BY issued_at, revoked_at IS NULL, credential_id = :'cred3';

-- decommission: one transaction, credentials revoked, tombstone kept
SELECT state, credential_id IS NULL AS no_credential,
       decommissioned_at IS NOT NULL AS decommissioned_at_set
  FROM agentmesh.lm_decommission(:'a', 'project ended', 'carol@example.com');
SELECT agentmesh.lm_verify_credential(:'tok3') IS NULL AS token_dead;
SELECT count(*) AS usable_credentials FROM agentmesh.credentials
 WHERE agent_id = :'a' AND revoked_at IS NULL AND expires_at > now();

-- the audit trail, in order
SELECT seq, event_type, previous_state, new_state,
       CASE WHEN actor = session_user THEN '(session user)' ELSE actor END AS actor,
       db_user = session_user AS db_user_ok
  FROM agentmesh.lm_audit_trail(:'a') ORDER BY seq;
-- (the requested event names the team: here the session user)
SELECT CASE WHEN details->>'team' = session_user THEN jsonb_set(details, '{team}', '"(session user)"') ELSE details END AS details
  FROM agentmesh.lm_audit_trail(:'a')
 WHERE event_type IN ('requested', 'decommission_started', 'decommissioned', 'owner_changed')
 ORDER BY seq;
SELECT intact, events_checked > 0 AS checked, problem FROM agentmesh.lm_verify_audit(:'a');
SELECT intact, problem FROM agentmesh.lm_verify_audit();
SELECT agentmesh.lm_summary();

SET client_min_messages = warning;
SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;
RESET client_min_messages;

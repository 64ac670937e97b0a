-- scripts/demo.sql: the agentmesh_lifecycle tutorial, end to end.
--
-- Run by scripts/demo.sh against a throwaway cluster in which
--   CREATE EXTENSION agentmesh_lifecycle; CREATE EXTENSION pgcrypto;
-- have already been executed.  By hand:
--   psql -X -v ON_ERROR_STOP=1 -f scripts/demo.sql
--
-- The agent id and tokens are carried between steps with \gset.  Agent ids,
-- credential ids and timestamps differ on every run; the token is printed
-- exactly once, the way a real caller would see it.

\set QUIET on
\pset null '(null)'
\x auto

\echo
\echo '=== 1. An owner requests a new agent identity ==='
SELECT agent_id, name AS agent_name, owner AS agent_owner, state AS agent_state
  FROM agentmesh.lm_request(
         name    => 'invoice-bot',
         owner   => 'alice@example.com',
         purpose => 'reconcile supplier invoices',
         actor   => 'alice@example.com',
         tags    => '{"team": "finance"}') \gset
\echo 'requested agent' :agent_id 'named' :agent_name 'owned by' :agent_owner '- state:' :agent_state

\echo
\echo '=== 2. An approver approves it ==='
SELECT agent_id, state
  FROM agentmesh.lm_approve(:'agent_id', actor => 'bob@example.com');

\echo
\echo '=== 3. Activation issues the first credential ==='
-- The token is returned once and never stored (only its SHA-256 is); keep it
-- in a psql variable for the next steps.
SELECT credential_id AS first_credential_id, token AS first_token
  FROM agentmesh.lm_activate(:'agent_id', actor => 'alice@example.com') \gset
SELECT state, credential_id,
       :'first_token' <> '' AS token_returned,
       credential_expires_at > credential_issued_at AS expires_after_issue
  FROM agentmesh.lm_get(:'agent_id');
\echo 'token (shown once - store it now, it cannot be retrieved again):'
\echo '    ' :first_token

\echo
\echo '=== 4. The agent sends a heartbeat, authenticating with its token ==='
SELECT state, last_heartbeat_at IS NOT NULL AS heartbeat_recorded,
       next_heartbeat_before - last_heartbeat_at AS next_within,
       credential_id IS NOT NULL AS credential_named
  FROM agentmesh.lm_heartbeat(:'agent_id', :'first_token');

\echo
\echo '=== 5. Credentials are rotated ==='
SELECT credential_id AS second_credential_id, token AS second_token
  FROM agentmesh.lm_rotate_credentials(:'agent_id', actor => 'alice@example.com') \gset
SELECT :'second_credential_id' <> :'first_credential_id' AS new_credential_id,
       :'second_token' <> :'first_token' AS new_token;

\echo
\echo '=== 6. Which agent does each token belong to? ==='
\echo '(the old token stays valid for the policy''s rotation_overlap - 5 minutes by default - so that'
\echo ' a running agent can switch over; after that it no longer verifies)'
SELECT 'old token' AS token,
       agentmesh.lm_verify_credential(:'first_token') = :'agent_id' AS verifies_as_agent
UNION ALL
SELECT 'new token',
       agentmesh.lm_verify_credential(:'second_token') = :'agent_id'
UNION ALL
SELECT 'made-up token',
       agentmesh.lm_verify_credential('not-a-real-token') IS NOT NULL;

\echo
\echo '=== 7. Orphan detection: pretend it is two days later and the agent has gone silent ==='
SELECT name, owner, state, reason_code, reason, round(days_silent) AS days_silent
  FROM agentmesh.lm_detect_orphans(as_of => now() + interval '2 days')
 WHERE agent_id = :'agent_id';

\echo
\echo '=== 8. An administrator marks it orphaned ==='
SELECT agent_id, state
  FROM agentmesh.lm_mark_orphaned(:'agent_id', actor => 'carol@example.com');

\echo
\echo '=== 9. ... and a new owner reclaims it, which issues a fresh credential ==='
SELECT credential_id AS third_credential_id, token AS third_token
  FROM agentmesh.lm_reclaim(:'agent_id', new_owner => 'dave@example.com',
                            actor => 'carol@example.com') \gset
SELECT :'third_credential_id' <> :'second_credential_id' AS new_credential_id,
       agentmesh.lm_verify_credential(:'third_token') = :'agent_id' AS new_token_verifies;
SELECT name, owner, state FROM agentmesh.lm_get(:'agent_id');

\echo
\echo '=== 10. The agent is decommissioned ==='
SELECT agent_id, state
  FROM agentmesh.lm_decommission(:'agent_id', reason => 'project finished',
                                 actor => 'dave@example.com');
\echo 'none of its tokens verifies any more:'
SELECT agentmesh.lm_verify_credential(:'first_token') IS NULL
   AND agentmesh.lm_verify_credential(:'second_token') IS NULL
   AND agentmesh.lm_verify_credential(:'third_token') IS NULL AS all_tokens_rejected;

\echo
\echo '=== 11. The audit trail of this agent (append-only, hash-chained) ==='
\x off
SELECT seq, event_type, actor, previous_state, new_state
  FROM agentmesh.lm_audit_trail(:'agent_id')
 ORDER BY seq;

\echo
\echo '=== 12. Verify the hash chain of every audited subject ==='
\x auto
SELECT * FROM agentmesh.lm_verify_audit();

\echo
\echo '=== 13. ... and independently of the extension: every event hash recomputed in plain SQL (pgcrypto) ==='
-- pg_temp.recompute(e): the canonical encoding (version 1) hashed by pgcrypto
\ir ../test/audit_hash.sql
SELECT count(*) AS events, bool_and(pg_temp.recompute(e) = e.hash) AS every_hash_matches
  FROM agentmesh.audit_events e;

\echo
\echo '=== 14. Audit rows cannot be changed, not even by the superuser running this demo ==='
\echo 'two attempts that must be refused; each line shows the refusal the extension gave:'
-- pg_temp.expect_refusal(sql): runs sql and reports the error it raised
-- (SQLSTATE and message) as an expected refusal; "NOT REFUSED" would be a bug
CREATE FUNCTION pg_temp.expect_refusal(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'NOT REFUSED: ' || q;
EXCEPTION WHEN OTHERS THEN
	RETURN 'refused as expected (' || SQLSTATE || '): ' || SQLERRM;
END $$;
SELECT attempt, pg_temp.expect_refusal(sql) AS result
  FROM (VALUES
	('UPDATE an audit row', format('UPDATE agentmesh.audit_events SET actor = %L WHERE agent_id = %L', 'mallory', :'agent_id')),
	('DELETE audit rows', format('DELETE FROM agentmesh.audit_events WHERE agent_id = %L', :'agent_id'))) t(attempt, sql);

\echo
\echo '=== 15. The maintenance pass (what the background worker runs every minute) ==='
\echo 'a second agent is activated and then never heard from; two days later:'
SELECT agent_id AS silent_id FROM agentmesh.lm_request('report-bot', 'erin@example.com',
       actor => 'erin@example.com') \gset
SELECT state FROM agentmesh.lm_approve(:'silent_id', actor => 'bob@example.com') \gset
SELECT credential_id AS silent_credential FROM agentmesh.lm_activate(:'silent_id') \gset
SELECT orphaned, heartbeats_missed, rotated, seals
  FROM agentmesh.lm_run_maintenance(as_of => now() + interval '2 days', allow_future => true);
SELECT name, state FROM agentmesh.lm_get(:'silent_id');
SELECT seq, event_type, actor, reason_codes
  FROM agentmesh.audit_log WHERE agent_id = :'silent_id' AND seq > 3 ORDER BY seq;

\echo
\echo '=== 16. Summary of all agents ==='
-- unaligned, tuples only: print the JSON as is rather than inside a table
\pset format unaligned
\pset tuples_only on
SELECT jsonb_pretty(agentmesh.lm_summary());
\pset tuples_only off
\pset format aligned

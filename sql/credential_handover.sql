--
-- credential_handover (issue 12): self-renewal, the maintenance pass's
-- rotation with a sealed hand-over, claim exactly once, the predecessor kept
-- until its successor is first used, rotate_after, last_used_at written at
-- most once per interval, and the inactive rule using last use.
--
CREATE EXTENSION agentmesh_lifecycle;
\set VERBOSITY terse
CREATE ROLE regress_h4_agent NOLOGIN IN ROLE agentmesh_agent;

-- a summary of every row the extension keeps, to show a refusal changed nothing
CREATE FUNCTION pg_temp.fp() RETURNS text LANGUAGE sql AS $$
	SELECT md5(concat_ws('|',
		(SELECT string_agg(a::text, ',' ORDER BY agent_id) FROM agentmesh.agents a),
		(SELECT string_agg(c::text, ',' ORDER BY credential_id) FROM agentmesh.credentials c),
		(SELECT string_agg(h::text, ',' ORDER BY predecessor_id) FROM agentmesh.credential_handovers h),
		(SELECT count(*) FROM agentmesh.audit_events)))
$$;
-- how many credentials of an agent verify right now
CREATE FUNCTION pg_temp.live(a text) RETURNS bigint LANGUAGE sql AS $$
	SELECT count(*) FROM agentmesh.credentials
	 WHERE agent_id = a AND revoked_at IS NULL
	   AND issued_at <= clock_timestamp() AND clock_timestamp() < expires_at
$$;

INSERT INTO agentmesh.policies (name, require_approval, rotation_overlap, max_credential_ttl)
VALUES ('ho', false, '1 hour', '1 day');

----------------------------------------------------------------------
-- Renewal
----------------------------------------------------------------------
SELECT agent_id AS a FROM agentmesh.lm_request('renew-bot', 'o@example.com', policy => 'ho') \gset
SELECT credential_id AS a_c0, token AS a_t0 FROM agentmesh.lm_activate(:'a') \gset
SELECT agent_id AS b FROM agentmesh.lm_request('other-bot', 'o@example.com', policy => 'ho') \gset
SELECT credential_id AS b_c0, token AS b_t0 FROM agentmesh.lm_activate(:'b') \gset

-- good: the agent role renews with its own token; both tokens verify
SET ROLE regress_h4_agent;
SELECT agent_id = :'a' AS own_agent, state, credential_id <> :'a_c0' AS new_credential,
	   credential_expires_at - credential_issued_at AS ttl, token <> :'a_t0' AS new_token
  FROM agentmesh.lm_renew(:'a_t0');
RESET ROLE;
SELECT credential_id AS a_c1 FROM agentmesh.agents WHERE agent_id = :'a' \gset
SELECT agentmesh.lm_verify_credential(:'a_t0') = :'a' AS old_verifies_in_overlap,
	   pg_temp.live(:'a') AS live;
-- audited as a rotation by the agent itself, with the session user
SELECT event_type, actor = :'a' AS actor_is_agent, db_user = session_user AS db_user_is_session,
	   details->>'self_renewed' AS self_renewed,
	   details->>'old_credential' = :'a_c0' AS old_ok, details->>'new_credential' = :'a_c1' AS new_ok,
	   details->>'presented_credential' = :'a_c0' AS presented_ok
  FROM agentmesh.audit_events WHERE agent_id = :'a' ORDER BY seq DESC LIMIT 1;

-- renewing again with the old token ends the oldest: still at most two verify
SET ROLE regress_h4_agent;
SELECT token AS a_t2, credential_id AS a_c2 FROM agentmesh.lm_renew(:'a_t0') \gset
RESET ROLE;
SELECT pg_temp.live(:'a') AS live, agentmesh.lm_verify_credential(:'a_t0') IS NULL AS oldest_ended;

-- other agent's token: it renews that agent, never this one
SET ROLE regress_h4_agent;
SELECT agent_id = :'b' AS renews_its_own_agent FROM agentmesh.lm_renew(:'b_t0');
RESET ROLE;

-- refused, one message, nothing changed: malformed, unknown, NULL
SELECT pg_temp.fp() AS before \gset
SET ROLE regress_h4_agent;
SELECT agentmesh.lm_renew('amk_nonsense');
SELECT agentmesh.lm_renew('amk_' || repeat('0', 64) || '00000000');
SELECT agentmesh.lm_renew(NULL);
-- the oldest, superseded past its end
SELECT agentmesh.lm_renew(:'a_t0');
RESET ROLE;
-- expired (set directly as superuser)
UPDATE agentmesh.credentials SET expires_at = issued_at WHERE credential_id = :'a_c2';
SELECT pg_temp.fp() AS before \gset
SET ROLE regress_h4_agent;
SELECT agentmesh.lm_renew(:'a_t2');
RESET ROLE;
SELECT pg_temp.fp() = :'before' AS nothing_changed;
-- revoked
SELECT state FROM agentmesh.lm_revoke_credentials(:'b', 'test');
SELECT credential_id AS b_c1, token AS b_t1 FROM agentmesh.lm_rotate_credentials(:'b') \gset
SELECT pg_temp.fp() AS before \gset
SET ROLE regress_h4_agent;
SELECT agentmesh.lm_renew(:'b_t0');
RESET ROLE;
-- suspended agent: the same message, nothing changed; after resume it renews
SELECT state FROM agentmesh.lm_suspend(:'b', 'test');
SELECT pg_temp.fp() AS before \gset
SET ROLE regress_h4_agent;
SELECT agentmesh.lm_renew(:'b_t1');
SELECT agentmesh.lm_claim_credential(:'b_t1');
RESET ROLE;
SELECT pg_temp.fp() = :'before' AS nothing_changed;
SELECT state FROM agentmesh.lm_resume(:'b');
SET ROLE regress_h4_agent;
SELECT state FROM agentmesh.lm_renew(:'b_t1');
RESET ROLE;
-- a decommissioned agent's token renews nothing
SELECT state FROM agentmesh.lm_decommission(:'b', 'test');
SET ROLE regress_h4_agent;
SELECT agentmesh.lm_renew(:'b_t1');
RESET ROLE;

----------------------------------------------------------------------
-- The pass's rotation with a sealed hand-over, and claims
----------------------------------------------------------------------
-- overlap 0: without a hand-over the predecessor would stop at once
INSERT INTO agentmesh.policies (name, require_approval, rotation_overlap, max_credential_ttl,
								rotate_after)
VALUES ('ho0', false, '0', '1 hour', 0.0001);
SELECT agent_id AS c FROM agentmesh.lm_request('claim-bot', 'o@example.com', policy => 'ho0') \gset
SELECT credential_id AS c_c0, token AS c_t0 FROM agentmesh.lm_activate(:'c') \gset
-- every issue reserves a successor sealed under the new token
SELECT count(*) AS reserved, bool_and(promoted_at IS NULL) AS not_yet_a_credential
  FROM agentmesh.credential_handovers WHERE agent_id = :'c' AND predecessor_id = :'c_c0';
-- nothing to claim before the pass rotated
SET ROLE regress_h4_agent;
SELECT agentmesh.lm_claim_credential(:'c_t0');
RESET ROLE;

-- rotate_after (0.0001 of an hour) passes; the pass rotates, with no token in hand
SELECT pg_sleep(0.5);
SELECT action, detail FROM agentmesh.lm_check_and_rotate() WHERE agent_id = :'c';
SELECT credential_id AS c_c1 FROM agentmesh.agents WHERE agent_id = :'c' \gset
SELECT :'c_c1' <> :'c_c0' AS rotated,
	   (SELECT successor_id = :'c_c1' AND promoted_at IS NOT NULL
		  FROM agentmesh.credential_handovers WHERE predecessor_id = :'c_c0') AS sealed_successor_waiting;
-- the predecessor keeps verifying (overlap 0 notwithstanding) until the successor is used
SELECT agentmesh.lm_verify_credential(:'c_t0') = :'c' AS predecessor_verifies, pg_temp.live(:'c') AS live;
SELECT action FROM agentmesh.lm_check_and_rotate() WHERE agent_id = :'c';
-- the heartbeat tells the agent that a successor waits, and when its token expires
SELECT successor_waiting, credential_id = :'c_c0' AS presented,
	   credential_expires_at > now() AS token_live
  FROM agentmesh.lm_heartbeat(:'c', :'c_t0');

-- what the tables hold now, before the claim: searched for the successor below
CREATE TEMP TABLE at_rest AS
SELECT 'agents' AS t, a::text AS row FROM agentmesh.agents a
UNION ALL SELECT 'credentials', c::text FROM agentmesh.credentials c
UNION ALL SELECT 'handovers', h::text FROM agentmesh.credential_handovers h
UNION ALL SELECT 'audit', e::text FROM agentmesh.audit_events e;

-- wrong tokens: another agent's, never issued, the successor id as text
SELECT pg_temp.fp() AS before \gset
SET ROLE regress_h4_agent;
SELECT agentmesh.lm_claim_credential(:'a_t2');
SELECT agentmesh.lm_claim_credential('amk_' || repeat('0', 64) || '00000000');
SELECT agentmesh.lm_claim_credential(:'c_c1');
SELECT agentmesh.lm_claim_credential(NULL);
RESET ROLE;
SELECT pg_temp.fp() = :'before' AS nothing_changed;

-- once: the successor, with the id the pass gave it
SET ROLE regress_h4_agent;
SELECT credential_id AS got_c1, token AS c_t1, state, agent_id = :'c' AS own_agent
  FROM agentmesh.lm_claim_credential(:'c_t0') \gset
RESET ROLE;
SELECT :'got_c1' = :'c_c1' AS claimed_the_promoted_one, :'state' AS state, :'own_agent' AS own_agent;
SELECT agentmesh.lm_verify_credential(:'c_t1') = :'c' AS successor_verifies,
	   agentmesh.lm_verify_credential(:'c_t0') IS NULL AS predecessor_ended_at_first_use,
	   pg_temp.live(:'c') AS live;
-- nothing waits for the claimed successor yet
SELECT successor_waiting, credential_id = :'c_c1' AS presented
  FROM agentmesh.lm_heartbeat(:'c', :'c_t1');
-- the sealed copy is gone; the successor has its own successor reserved
SELECT count(*) FILTER (WHERE predecessor_id = :'c_c0') AS sealed_copies_left,
	   count(*) FILTER (WHERE predecessor_id = :'c_c1' AND promoted_at IS NULL) AS next_reserved
  FROM agentmesh.credential_handovers WHERE agent_id = :'c';
-- twice: refused
SET ROLE regress_h4_agent;
SELECT agentmesh.lm_claim_credential(:'c_t0');
RESET ROLE;

-- unrecoverable at rest: before the claim no row held the successor token,
-- its random part, or its hex; its SHA-256 was kept only as the hash to
-- check it against (credentials.token_hash, handovers.successor_hash)
SELECT count(*) FILTER (WHERE strpos(row, :'c_t1') > 0) AS rows_with_token,
	   count(*) FILTER (WHERE strpos(row, substr(:'c_t1', 5, 64)) > 0) AS rows_with_random_part,
	   count(*) FILTER (WHERE strpos(row, encode(convert_to(:'c_t1', 'UTF8'), 'hex')) > 0) AS rows_with_token_hex,
	   count(*) FILTER (WHERE strpos(row, encode(sha256(convert_to(:'c_t1', 'UTF8')), 'hex')) > 0) AS rows_with_hash
  FROM at_rest;

-- claim after expiry: the pass rotates again, then the token expires
SELECT pg_sleep(0.5);
SELECT action FROM agentmesh.lm_check_and_rotate() WHERE agent_id = :'c';
UPDATE agentmesh.credentials SET expires_at = issued_at WHERE credential_id = :'c_c1';
SELECT pg_temp.fp() AS before \gset
SET ROLE regress_h4_agent;
SELECT agentmesh.lm_claim_credential(:'c_t1');
RESET ROLE;
SELECT pg_temp.fp() = :'before' AS nothing_changed;

-- a revocation drops every sealed copy of the agent
SELECT state FROM agentmesh.lm_revoke_credentials(:'c', 'test');
SELECT count(*) AS handovers_after_revoke FROM agentmesh.credential_handovers WHERE agent_id = :'c';

-- the pass's audit: every rotation is there
SELECT event_type, actor, count(*) FROM agentmesh.audit_events
 WHERE agent_id = :'c' AND event_type = 'credential_rotated' GROUP BY 1, 2;

----------------------------------------------------------------------
-- rotate_after: validated (22023, nothing changed) and scheduling
----------------------------------------------------------------------
SELECT pg_temp.fp() AS before \gset
UPDATE agentmesh.policies SET rotate_after = 0 WHERE name = 'ho';
UPDATE agentmesh.policies SET rotate_after = 1.5 WHERE name = 'ho';
UPDATE agentmesh.policies SET rotate_after = 'NaN' WHERE name = 'ho';
UPDATE agentmesh.policies SET rotate_after = -0.5 WHERE name = 'ho';
UPDATE agentmesh.policies SET rotate_after = NULL WHERE name = 'ho';
SELECT pg_temp.fp() = :'before' AS nothing_changed,
	   (SELECT rotate_after FROM agentmesh.policies WHERE name = 'ho') AS rotate_after;
UPDATE agentmesh.policies SET rotate_after = 0.75 WHERE name = 'ho';
SELECT details FROM agentmesh.audit_events WHERE policy = 'ho' ORDER BY seq DESC LIMIT 1;
-- rotate_after 0.75 of a day's credential: rotated after 18 hours, not before
SELECT agent_id AS d FROM agentmesh.lm_request('sched-bot', 'o@example.com', policy => 'ho') \gset
BEGIN;
SELECT credential_issued_at AS d0 FROM agentmesh.lm_activate(:'d') \gset
SELECT action, detail FROM agentmesh.lm_check_and_rotate(:'d0'::timestamptz + interval '17 hours', allow_future => true)
 WHERE agent_id = :'d';
SELECT action, detail FROM agentmesh.lm_check_and_rotate(:'d0'::timestamptz + interval '18 hours', allow_future => true)
 WHERE agent_id = :'d';
ROLLBACK;

----------------------------------------------------------------------
-- last_used_at: at most one write per credential per interval
----------------------------------------------------------------------
SELECT agent_id AS e FROM agentmesh.lm_request('used-bot', 'o@example.com', policy => 'ho') \gset
SELECT credential_id AS e_c0, token AS e_t0 FROM agentmesh.lm_activate(:'e') \gset
SELECT last_used_at IS NULL AS never_used FROM agentmesh.credentials WHERE credential_id = :'e_c0';
-- a verification writes nothing itself: it queues the use, which the next
-- maintenance pass writes (the worker's, here lm_run_maintenance())
SELECT agentmesh.lm_verify_credential(:'e_t0') = :'e' AS verifies;
SELECT last_used_at IS NULL AS not_written_by_the_verification
  FROM agentmesh.credentials WHERE credential_id = :'e_c0';
SELECT seals >= 0 AS pass FROM agentmesh.lm_run_maintenance();
SELECT c.last_used_at IS NOT NULL AS cred_used, a.last_used_at = c.last_used_at AS agent_used,
	   c.xmin AS x1, a.xmin AS ax1
  FROM agentmesh.credentials c JOIN agentmesh.agents a USING (agent_id)
 WHERE c.credential_id = :'e_c0' \gset
SELECT :'cred_used' AS cred_used, :'agent_used' AS agent_used;
-- many verifications, in one statement and in several, within the interval,
-- then a pass: the rows are not written again
SELECT count(*) FILTER (WHERE v = :'e') AS verified
  FROM (SELECT agentmesh.lm_verify_credential(:'e_t0') AS v FROM generate_series(1, 500)) s;
SELECT agentmesh.lm_verify_credential(:'e_t0') IS NOT NULL AS v1;
SELECT agentmesh.lm_verify_credential(:'e_t0') IS NOT NULL AS v2;
BEGIN;
SELECT count(agentmesh.lm_verify_credential(:'e_t0')) FROM generate_series(1, 100);
COMMIT;
SELECT seals >= 0 AS pass FROM agentmesh.lm_run_maintenance();
SELECT c.xmin = :'x1' AS cred_row_written_once, a.xmin = :'ax1' AS agent_row_written_once
  FROM agentmesh.credentials c JOIN agentmesh.agents a USING (agent_id)
 WHERE c.credential_id = :'e_c0';
-- a use older than the interval is recorded again
UPDATE agentmesh.credentials SET last_used_at = last_used_at - interval '61 seconds'
 WHERE credential_id = :'e_c0';
SELECT xmin AS x2 FROM agentmesh.credentials WHERE credential_id = :'e_c0' \gset
SELECT count(agentmesh.lm_verify_credential(:'e_t0')) AS verified FROM generate_series(1, 50);
SELECT seals >= 0 AS pass FROM agentmesh.lm_run_maintenance();
SELECT xmin <> :'x2' AS written_after_interval, now() - last_used_at < interval '1 minute' AS fresh
  FROM agentmesh.credentials WHERE credential_id = :'e_c0';
-- a read-only transaction verifies and writes nothing
UPDATE agentmesh.credentials SET last_used_at = last_used_at - interval '61 seconds'
 WHERE credential_id = :'e_c0';
SELECT xmin AS x3 FROM agentmesh.credentials WHERE credential_id = :'e_c0' \gset
BEGIN READ ONLY;
SELECT agentmesh.lm_verify_credential(:'e_t0') = :'e' AS verifies_read_only;
COMMIT;
SELECT xmin = :'x3' AS nothing_written FROM agentmesh.credentials WHERE credential_id = :'e_c0';
-- a token heartbeat queues its use too: it pays no second row update
SELECT agent_id AS f FROM agentmesh.lm_request('beat-bot', 'o@example.com', policy => 'ho') \gset
SELECT credential_id AS f_c0, token AS f_t0 FROM agentmesh.lm_activate(:'f') \gset
SELECT state FROM agentmesh.lm_heartbeat(:'f', :'f_t0');
SELECT last_used_at IS NULL AS queued FROM agentmesh.credentials WHERE credential_id = :'f_c0';
SELECT seals >= 0 AS pass FROM agentmesh.lm_run_maintenance();
SELECT last_used_at IS NOT NULL AS written_by_the_pass
  FROM agentmesh.credentials WHERE credential_id = :'f_c0';

-- the inactive rule counts last use: used-bot was used 10 days after
-- now (set directly), renew-bot not at all since activation
UPDATE agentmesh.agents SET last_used_at = now() + interval '10 days' WHERE agent_id = :'e';
SELECT a.name, o.reason_code
  FROM agentmesh.lm_detect_orphans(now() + interval '95 days') o JOIN agentmesh.agents a USING (agent_id)
 WHERE a.agent_id IN (:'a', :'e') AND o.reason_code = 'inactive' ORDER BY 1;

DROP ROLE regress_h4_agent;
SET client_min_messages = warning;
SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;
RESET client_min_messages;

--
-- hardening: holes found by trying 1.0 as an attacker would, each shown
-- closed.  Every refusal has its SQLSTATE and changes nothing (fingerprint);
-- no refused value is echoed.
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

\i test/fingerprint.sql

INSERT INTO agentmesh.policies (name, require_approval, heartbeat_requires_token)
	VALUES ('tokened', false, true);
INSERT INTO agentmesh.policies (name, require_approval, max_credential_ttl, rotation_overlap)
	VALUES ('short', false, '2 seconds', '0');
SELECT agent_id AS a1 FROM agentmesh.lm_request('a1', 'o@example.com', policy => 'tokened') \gset
SELECT agent_id AS a2 FROM agentmesh.lm_request('a2', 'o@example.com', policy => 'tokened') \gset
SELECT agent_id AS d1 FROM agentmesh.lm_request('d1', 'o@example.com') \gset
SELECT state FROM agentmesh.lm_approve(:'d1');
SELECT token AS t1 FROM agentmesh.lm_activate(:'a1') \gset
SELECT token AS t2 FROM agentmesh.lm_activate(:'a2') \gset
SELECT token AS td FROM agentmesh.lm_activate(:'d1') \gset
SELECT pg_temp.fp() AS fp0 \gset

\set VERBOSITY default
\set SHOW_CONTEXT never

-- Writes in a read-only transaction: 25006, the heartbeat included (it
-- updates its row without the executor, which would otherwise check this).
BEGIN READ ONLY;
SELECT agentmesh.lm_heartbeat(:'d1');
ROLLBACK;
BEGIN READ ONLY;
SELECT agentmesh.lm_request('ro', 'o@example.com');
ROLLBACK;
BEGIN READ ONLY;
SELECT agentmesh.lm_run_maintenance();
ROLLBACK;
SET default_transaction_read_only = on;
SELECT agentmesh.lm_suspend(:'d1');
SELECT agentmesh.lm_rotate_credentials(:'d1');
RESET default_transaction_read_only;
-- reads still work there
BEGIN READ ONLY;
SELECT agentmesh.lm_verify_credential(:'td') = :'d1' AS verifies;
SELECT state FROM agentmesh.lm_get(:'d1');
ROLLBACK;
SELECT pg_temp.fp() = :'fp0' AS unchanged;

-- A token given to lm_heartbeat must be a live credential of that agent,
-- under every policy ('default' needs no token at all): one message for a
-- wrong token, another agent's, a malformed one, and for an unknown agent.
SELECT agentmesh.lm_heartbeat(:'d1', 'amk_0000000000000000000000000000000000000000000000000000000000000000deadbeef');
SELECT agentmesh.lm_heartbeat(:'d1', :'t1');
SELECT agentmesh.lm_heartbeat(:'d1', 'not a token');
SELECT agentmesh.lm_heartbeat('agent:nosuch', :'t1');
SELECT agentmesh.lm_heartbeat(:'a1', :'t2');
-- a token policy without a token: refused before the state is looked at, so
-- that a suspended agent looks like any other
SELECT state FROM agentmesh.lm_suspend(:'a2');
SELECT pg_temp.fp() AS fp1 \gset
SELECT agentmesh.lm_heartbeat(:'a2');
SELECT agentmesh.lm_heartbeat(:'a1');
SELECT pg_temp.fp() = :'fp1' AS unchanged;
-- the right token works, under both policies
SELECT heartbeat_count FROM pg_temp.hb(:'a1', :'t1');
SELECT heartbeat_count FROM pg_temp.hb(:'d1', :'td');
SELECT heartbeat_count FROM pg_temp.hb(:'d1');

-- A transaction held open cannot use a token past its expiry: checks use
-- the wall clock, not the transaction's start.
SELECT agent_id AS s1 FROM agentmesh.lm_request('s1', 'o@example.com', policy => 'short') \gset
SELECT token AS ts FROM agentmesh.lm_activate(:'s1') \gset
BEGIN;
SELECT agentmesh.lm_verify_credential(:'ts') = :'s1' AS verifies_now;
SELECT pg_sleep(2.5);
SELECT agentmesh.lm_verify_credential(:'ts') IS NULL AS expired_inside_the_transaction;
SELECT agentmesh.lm_heartbeat(:'s1', :'ts');
ROLLBACK;

SELECT pg_temp.fp() AS fp2 \gset
-- Refused characters in names, owners and actors: C1 controls, the bidi
-- marks, line and paragraph separators, zero-width characters, the BOM.
SELECT agentmesh.lm_request(U&'a\0085b', 'o@example.com');
SELECT agentmesh.lm_request(U&'a\009Bb', 'o@example.com');
SELECT agentmesh.lm_request(U&'a\200Eb', 'o@example.com');
SELECT agentmesh.lm_request(U&'a\200Fb', 'o@example.com');
SELECT agentmesh.lm_request(U&'a\061Cb', 'o@example.com');
SELECT agentmesh.lm_request('n', U&'o\2028@example.com');
SELECT agentmesh.lm_request('n', U&'o\2029@example.com');
SELECT agentmesh.lm_request('n', U&'o\200B@example.com');
SELECT agentmesh.lm_request('n', U&'o\200D@example.com');
SELECT agentmesh.lm_request('n', U&'o\2060@example.com');
SELECT agentmesh.lm_request('n', 'o@example.com', actor => U&'\FEFFalice');
SELECT agentmesh.lm_change_owner(:'d1', U&'x\202E@example.com');
-- tag names and values refuse control and bidi characters too
SELECT agentmesh.lm_request('n', 'o@example.com', tags => '{"k": "a\u001bb"}');
SELECT agentmesh.lm_request('n', 'o@example.com', tags => '{"k": "\u202egnp"}');
SELECT agentmesh.lm_request('n', 'o@example.com', tags => '{"a\nb": "v"}');
SELECT agentmesh.lm_request('n', 'o@example.com', tags => '{"k": "a\u2066b"}');
SELECT pg_temp.fp() = :'fp2' AS unchanged;
-- ordinary non-ASCII text is fine
SELECT agent_id AS u1 FROM agentmesh.lm_request('Zoë-機械', 'søren@example.com',
	tags => '{"équipe": "paiements"}') \gset
SELECT name, owner, tags FROM agentmesh.lm_get(:'u1');
SELECT pg_temp.fp() AS fp2 \gset

-- No refused value is echoed: an unknown policy, an invalid policy name,
-- an agent_id that is really a token.
SELECT agentmesh.lm_request('n', 'o@example.com', policy => 'no-such-policy-secret');
INSERT INTO agentmesh.policies (name) VALUES (E'Bad\nName secret');
SELECT agentmesh.lm_get(:'td');
SELECT agentmesh.lm_heartbeat(:'td');
SELECT agentmesh.lm_revoke_credentials(:'td', 'oops');

-- Policy durations are plain durations: months (counted as 30 days by the
-- interval comparisons) and mixed signs are refused.
UPDATE agentmesh.policies SET max_credential_ttl = '12 mons 6 days' WHERE name = 'default';
UPDATE agentmesh.policies SET max_credential_ttl = '1 mon -29 days' WHERE name = 'default';
UPDATE agentmesh.policies SET max_credential_ttl = '1 day -23 hours' WHERE name = 'default';
UPDATE agentmesh.policies SET rotation_overlap = '1 mon' WHERE name = 'default';
UPDATE agentmesh.policies SET heartbeat_interval = '1 year' WHERE name = 'default';
INSERT INTO agentmesh.policies (name, orphan_threshold) VALUES ('monthly', '1 mon');
SELECT pg_temp.fp() = :'fp2' AS unchanged;
-- the same lengths written in days are accepted
UPDATE agentmesh.policies SET max_credential_ttl = '366 days', rotation_overlap = '1 day 12:00'
	WHERE name = 'default' RETURNING max_credential_ttl, rotation_overlap;

SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;

--
-- core_bad_input: every class of bad input gets its SQLSTATE and changes
-- nothing.  Limits (src/agentmesh.h, docs/errors.md "Limits"): name 200 characters,
-- other text 1000, ids 100, tags 4096 bytes and 64 keys.
--
CREATE EXTENSION agentmesh_lifecycle;

\i test/fingerprint.sql

-- One agent in each of a few states to aim at.
SELECT agent_id AS pend FROM agentmesh.lm_request('pend', 'o@example.com') \gset
SELECT agent_id AS act FROM agentmesh.lm_request('act', 'o@example.com') \gset
SELECT state FROM agentmesh.lm_approve(:'act');
SELECT state FROM agentmesh.lm_activate(:'act');
SELECT pg_temp.fp() AS fp0 \gset

\set VERBOSITY sqlstate

-- NULL where a value is required: 22004
SELECT agentmesh.lm_request(NULL, 'o@example.com');
SELECT agentmesh.lm_request('n', 'o@example.com', NULL);
SELECT agentmesh.lm_request('n', 'o@example.com', 'p', NULL);
SELECT agentmesh.lm_request('n', 'o@example.com', tags => NULL);
SELECT agentmesh.lm_request('n', 'o@example.com', policy => NULL);
SELECT agentmesh.lm_approve(NULL);
SELECT agentmesh.lm_reject(NULL);
SELECT agentmesh.lm_activate(NULL);
SELECT agentmesh.lm_heartbeat(NULL);
SELECT agentmesh.lm_suspend(NULL);
SELECT agentmesh.lm_resume(NULL);
SELECT agentmesh.lm_decommission(NULL);
SELECT agentmesh.lm_change_owner(NULL, 'x@example.com');
SELECT agentmesh.lm_change_owner(:'act', NULL);
SELECT agentmesh.lm_rotate_credentials(NULL);
SELECT agentmesh.lm_revoke_credentials(NULL, 'leak');
SELECT agentmesh.lm_revoke_credentials(:'act', NULL);
SELECT agentmesh.lm_mark_orphaned(NULL);
SELECT agentmesh.lm_reclaim(NULL, 'x@example.com');
SELECT agentmesh.lm_reclaim(:'act', NULL);
SELECT agentmesh.lm_check_and_rotate(NULL);
SELECT * FROM agentmesh.lm_detect_orphans(NULL);
SELECT agentmesh.lm_get(NULL);
SELECT * FROM agentmesh.lm_list_by_state(NULL);
SELECT * FROM agentmesh.lm_list_by_owner(NULL);
SELECT * FROM agentmesh.lm_audit_trail(NULL);
-- a NULL token is not an error: it just does not verify
SELECT agentmesh.lm_verify_credential(NULL) IS NULL AS null_token_not_verified;
SELECT pg_temp.fp() = :'fp0' AS unchanged;

-- owner NULL under a policy that requires an owner; blank owner always: 22023
SELECT agentmesh.lm_request('n', NULL);
SELECT agentmesh.lm_request('n', '');
SELECT agentmesh.lm_request('n', '   ');
SELECT agentmesh.lm_request('n', E'\t \n');
-- empty or whitespace-only name / other required text: 22023
SELECT agentmesh.lm_request('', 'o@example.com');
SELECT agentmesh.lm_request('   ', 'o@example.com');
SELECT agentmesh.lm_request('n', 'o@example.com', agent_type => ' ');
SELECT agentmesh.lm_request('n', 'o@example.com', actor => '');
SELECT agentmesh.lm_request('n', 'o@example.com', policy => '');
SELECT agentmesh.lm_approve('');
SELECT agentmesh.lm_approve(:'pend', ' ');
SELECT agentmesh.lm_change_owner(:'act', '');
SELECT agentmesh.lm_change_owner(:'act', '  ');
SELECT agentmesh.lm_revoke_credentials(:'act', '');
SELECT agentmesh.lm_reclaim(:'act', ' ');
SELECT * FROM agentmesh.lm_list_by_owner('');
SELECT pg_temp.fp() = :'fp0' AS unchanged;

-- over-long text: 22023
SELECT agentmesh.lm_request(repeat('n', 201), 'o@example.com');
SELECT agentmesh.lm_request(repeat('é', 201), 'o@example.com');
SELECT agentmesh.lm_request('n', repeat('o', 1001));
SELECT agentmesh.lm_request('n', 'o@example.com', repeat('p', 1001));
SELECT agentmesh.lm_request('n', 'o@example.com', agent_type => repeat('t', 201));
SELECT agentmesh.lm_request('n', 'o@example.com', actor => repeat('a', 1001));
SELECT agentmesh.lm_request('n', 'o@example.com', policy => repeat('p', 64));
SELECT agentmesh.lm_approve(repeat('x', 101));
SELECT agentmesh.lm_get(repeat('x', 101));
SELECT agentmesh.lm_suspend(:'act', repeat('r', 1001));
SELECT agentmesh.lm_change_owner(:'act', repeat('o', 1001));
SELECT agentmesh.lm_revoke_credentials(:'act', repeat('r', 1001));
SELECT pg_temp.fp() = :'fp0' AS unchanged;

-- control characters and Unicode bidirectional controls: 22023
SELECT agentmesh.lm_request(E'bad\nname', 'o@example.com');
SELECT agentmesh.lm_request(E'bad\tname', 'o@example.com');
SELECT agentmesh.lm_request(E'bad\x01name', 'o@example.com');
SELECT agentmesh.lm_request(E'bad\x7fname', 'o@example.com');
SELECT agentmesh.lm_request(E'bad\x1bname', 'o@example.com');
SELECT agentmesh.lm_request(E'evil\u202Egnp.exe', 'o@example.com');
SELECT agentmesh.lm_request(E'evil\u2066x\u2069', 'o@example.com');
SELECT agentmesh.lm_request(E'evil\u202Ax', 'o@example.com');
SELECT agentmesh.lm_request('n', E'o\r@example.com');
SELECT agentmesh.lm_request('n', E'o\u202E@example.com');
SELECT agentmesh.lm_request('n', 'o@example.com', E'purpose\x01');
SELECT agentmesh.lm_request('n', 'o@example.com', actor => E'al\nice');
SELECT agentmesh.lm_suspend(:'act', E'reason\x02');
SELECT agentmesh.lm_change_owner(:'act', E'x\u2067y');
SELECT pg_temp.fp() = :'fp0' AS unchanged;

-- tags that are not a flat object of string values, or too big: 22023
SELECT agentmesh.lm_request('n', 'o@example.com', tags => '[]');
SELECT agentmesh.lm_request('n', 'o@example.com', tags => '"team"');
SELECT agentmesh.lm_request('n', 'o@example.com', tags => '42');
SELECT agentmesh.lm_request('n', 'o@example.com', tags => 'null');
SELECT agentmesh.lm_request('n', 'o@example.com', tags => '{"a": 1}');
SELECT agentmesh.lm_request('n', 'o@example.com', tags => '{"a": true}');
SELECT agentmesh.lm_request('n', 'o@example.com', tags => '{"a": null}');
SELECT agentmesh.lm_request('n', 'o@example.com', tags => '{"a": ["x"]}');
SELECT agentmesh.lm_request('n', 'o@example.com', tags => '{"a": {"b": "c"}}');
SELECT agentmesh.lm_request('n', 'o@example.com', tags => '{"": "x"}');
SELECT agentmesh.lm_request('n', 'o@example.com',
	tags => (SELECT jsonb_object_agg('k' || i, 'v') FROM generate_series(1, 65) i));
SELECT agentmesh.lm_request('n', 'o@example.com', tags => jsonb_build_object('k', repeat('v', 4100)));
SELECT pg_temp.fp() = :'fp0' AS unchanged;

-- unknown agent / unknown policy: 42704
SELECT agentmesh.lm_approve('agent:does-not-exist');
SELECT agentmesh.lm_reject('agent:does-not-exist');
SELECT agentmesh.lm_activate('agent:does-not-exist');
SELECT agentmesh.lm_heartbeat('agent:does-not-exist');
SELECT agentmesh.lm_suspend('agent:does-not-exist');
SELECT agentmesh.lm_resume('agent:does-not-exist');
SELECT agentmesh.lm_decommission('agent:does-not-exist');
SELECT agentmesh.lm_change_owner('agent:does-not-exist', 'x@example.com');
SELECT agentmesh.lm_rotate_credentials('agent:does-not-exist');
SELECT agentmesh.lm_revoke_credentials('agent:does-not-exist', 'leak');
SELECT agentmesh.lm_mark_orphaned('agent:does-not-exist');
SELECT agentmesh.lm_reclaim('agent:does-not-exist', 'x@example.com');
SELECT * FROM agentmesh.lm_audit_trail('agent:does-not-exist');
SELECT * FROM agentmesh.lm_verify_audit('agent:does-not-exist');
SELECT agentmesh.lm_request('n', 'o@example.com', policy => 'no-such-policy');
SELECT pg_temp.fp() = :'fp0' AS unchanged;

-- wrong state: 55000
SELECT agentmesh.lm_activate(:'pend');
SELECT agentmesh.lm_approve(:'act');
SELECT agentmesh.lm_resume(:'act');
SELECT agentmesh.lm_heartbeat(:'pend');
SELECT pg_temp.fp() = :'fp0' AS unchanged;

-- finite times only: 22023
SELECT agentmesh.lm_check_and_rotate('infinity');
SELECT * FROM agentmesh.lm_detect_orphans('-infinity');
SELECT pg_temp.fp() = :'fp0' AS unchanged;

-- bad policy values via INSERT / UPDATE of agentmesh.policies: 22023
INSERT INTO agentmesh.policies (name, heartbeat_interval) VALUES ('p1', '0');
INSERT INTO agentmesh.policies (name, heartbeat_interval) VALUES ('p1', '-5 minutes');
INSERT INTO agentmesh.policies (name, orphan_threshold) VALUES ('p1', '0');
INSERT INTO agentmesh.policies (name, max_inactive_days) VALUES ('p1', 0);
INSERT INTO agentmesh.policies (name, max_inactive_days) VALUES ('p1', 36501);
INSERT INTO agentmesh.policies (name, max_credential_ttl) VALUES ('p1', '0');
INSERT INTO agentmesh.policies (name, max_credential_ttl) VALUES ('p1', '367 days');
INSERT INTO agentmesh.policies (name, rotation_overlap) VALUES ('p1', '-1 minute');
INSERT INTO agentmesh.policies (name, max_credential_ttl, rotation_overlap) VALUES ('p1', '1 hour', '1 hour');
INSERT INTO agentmesh.policies (name, max_credential_ttl, rotation_overlap) VALUES ('p1', '1 hour', '2 hours');
INSERT INTO agentmesh.policies (name) VALUES ('Bad Name');
INSERT INTO agentmesh.policies (name) VALUES ('');
INSERT INTO agentmesh.policies (name) VALUES ('1abc');
INSERT INTO agentmesh.policies (name) VALUES (repeat('p', 64));
UPDATE agentmesh.policies SET max_credential_ttl = '0' WHERE name = 'default';
UPDATE agentmesh.policies SET rotation_overlap = '24 hours' WHERE name = 'default';
UPDATE agentmesh.policies SET heartbeat_interval = '-1 second' WHERE name = 'default';
UPDATE agentmesh.policies SET max_inactive_days = -1 WHERE name = 'default';
SELECT pg_temp.fp() = :'fp0' AS unchanged;

-- the wrong-state error names the agent, its state and the operation, and
-- its hint lists what is allowed (an agent with a known id, inserted as
-- superuser, so that the message is stable)
\set VERBOSITY default
INSERT INTO agentmesh.agents (agent_id, name, owner, state)
VALUES ('agent:fixed', 'fixed', 'o@example.com', 'pending_approval');
SELECT pg_temp.fp() AS fp1 \gset
SELECT agentmesh.lm_activate('agent:fixed');
SELECT agentmesh.lm_heartbeat('agent:fixed');
SELECT state FROM agentmesh.lm_reject('agent:fixed', 'no');
SELECT pg_temp.fp() AS fp1 \gset
SELECT agentmesh.lm_approve('agent:fixed');
SELECT agentmesh.lm_approve('agent:nope');
SELECT pg_temp.fp() = :'fp1' AS unchanged;
\set VERBOSITY sqlstate

-- values exactly at the limits are accepted
SELECT length(name) AS name_len, length(owner) AS owner_len, length(purpose) AS purpose_len,
	   (SELECT count(*) FROM jsonb_object_keys(tags)) AS tag_keys
  FROM agentmesh.lm_request(repeat('é', 200), repeat('o', 1000), repeat('p', 1000),
	   tags => (SELECT jsonb_object_agg('k' || i, 'v') FROM generate_series(1, 64) i));
-- newlines and tabs are allowed in free text (purpose, reason)
SELECT purpose FROM agentmesh.lm_request('multi', 'o@example.com', E'line 1\n\tline 2');

SELECT intact FROM agentmesh.lm_verify_audit();

SET client_min_messages = warning;
SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;
RESET client_min_messages;

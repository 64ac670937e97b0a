--
-- policy_chain: an INSERT into agentmesh.policies cannot set the policy's
-- audit chain (audit_seq, audit_head): 22023 with nothing written, for an
-- agentmesh_admin whatever the values, and for the extension owner unless
-- the row is a sane restored one (audit_seq > 0 and a 32-byte head).  The
-- restore of an untouched 'default' replaces the installed row only when
-- its settings are the installed ones.
--
CREATE EXTENSION agentmesh_lifecycle;
\set VERBOSITY sqlstate

\i test/fingerprint.sql

CREATE ROLE policy_chain_admin NOLOGIN IN ROLE agentmesh_admin;
SELECT pg_temp.fp() AS fp0 \gset

-- an agentmesh_admin: any chain field set is refused
SET ROLE policy_chain_admin;
INSERT INTO agentmesh.policies (name, audit_seq) VALUES ('p', -5);
INSERT INTO agentmesh.policies (name, audit_seq) VALUES ('p', 3);
INSERT INTO agentmesh.policies (name, audit_head) VALUES ('p', sha256('forged'));
INSERT INTO agentmesh.policies (name, audit_seq, audit_head) VALUES ('p', 1, sha256('forged'));
INSERT INTO agentmesh.policies (name, audit_seq, audit_head)
	VALUES ('default', 1, sha256('forged'));
RESET ROLE;
SELECT pg_temp.fp() = :'fp0' AS unchanged;

-- the extension owner: a restored row must look like one
INSERT INTO agentmesh.policies (name, audit_seq) VALUES ('p', -5);
INSERT INTO agentmesh.policies (name, audit_seq) VALUES ('p', 3);
INSERT INTO agentmesh.policies (name, audit_head) VALUES ('p', sha256('forged'));
INSERT INTO agentmesh.policies (name, audit_seq, audit_head) VALUES ('p', 1, '\x0102');
INSERT INTO agentmesh.policies (name, audit_seq, audit_head) VALUES ('p', 0, sha256('x'));
SELECT pg_temp.fp() = :'fp0' AS unchanged;

-- a second 'default' with other settings is not a restore: duplicate key, nothing written
INSERT INTO agentmesh.policies (name, require_approval) VALUES ('default', false);
SELECT pg_temp.fp() = :'fp0' AS unchanged;
SELECT count(*) AS default_events FROM agentmesh.audit_events WHERE policy = 'default';

-- what a restore of the untouched 'default' does (the extension owner, the
-- installed settings): the dumped row replaces the installed one, no event
INSERT INTO agentmesh.policies (name, created_at, updated_at)
	VALUES ('default', '2001-02-03+00', '2001-02-03+00');
SELECT created_at = '2001-02-03+00' AS taken_over, audit_seq, audit_head IS NULL AS no_head
  FROM agentmesh.policies WHERE name = 'default';
SELECT count(*) AS default_events FROM agentmesh.audit_events WHERE policy = 'default';

-- a new policy without chain fields starts its chain: one event, chain intact
SET ROLE policy_chain_admin;
INSERT INTO agentmesh.policies (name) VALUES ('p');
RESET ROLE;
SELECT audit_seq, length(audit_head) AS head_len FROM agentmesh.policies WHERE name = 'p';
SELECT intact FROM agentmesh.lm_verify_audit();

-- once 'default' has a chain of its own, a restored 'default' is refused (23505)
UPDATE agentmesh.policies SET max_inactive_days = 30 WHERE name = 'default';
SELECT pg_temp.fp() AS fp1 \gset
INSERT INTO agentmesh.policies (name, audit_seq, audit_head)
	VALUES ('default', 7, sha256('restored'));
INSERT INTO agentmesh.policies (name) VALUES ('default');
SELECT pg_temp.fp() = :'fp1' AS unchanged;
SELECT intact FROM agentmesh.lm_verify_audit();

-- the agents trigger checks the policy of an agent (no foreign key): 23503
SELECT agent_id AS a1 FROM agentmesh.lm_request('chain-bot', 'alice', actor => 'alice') \gset
SELECT pg_temp.fp() AS fp2 \gset
UPDATE agentmesh.agents SET policy = 'no-such-policy' WHERE agent_id = :'a1';
INSERT INTO agentmesh.agents (agent_id, name, owner, state, policy)
	VALUES ('agent:x', 'x', 'alice', 'pending_approval', 'no-such-policy');
SELECT pg_temp.fp() = :'fp2' AS unchanged;

-- and lm_verify_audit() reports a reference that no foreign key holds
SET session_replication_role = replica;
ALTER TABLE agentmesh.agents DISABLE TRIGGER agents_guard;
UPDATE agentmesh.agents SET policy = 'no-such-policy' WHERE agent_id = :'a1';
ALTER TABLE agentmesh.agents ENABLE ALWAYS TRIGGER agents_guard;
RESET session_replication_role;
SELECT intact, broken_agent_id = :'a1' AS that_agent, problem FROM agentmesh.lm_verify_audit();

RESET ROLE;
DROP ROLE policy_chain_admin;
SET agentmesh_lifecycle.allow_drop = on;
DROP EXTENSION agentmesh_lifecycle;

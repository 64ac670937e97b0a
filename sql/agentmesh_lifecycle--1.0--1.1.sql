/* agentmesh_lifecycle 1.0 -> 1.1 — upgrade script
 *
 * Every schema change of 1.1 is made twice: in agentmesh_lifecycle--1.1.sql
 * (a fresh install) and here, in the same order where order shows in the
 * catalog (column order, enum label order).  test/t/030_upgrade.pl compares a
 * catalog description of both, object by object, so a change made in only
 * one of the two scripts fails the test command.
 *
 * The same rules as the install script apply: every name schema-qualified,
 * operators inside SQL bodies written as OPERATOR(pg_catalog.x).
 */

\echo Use "ALTER EXTENSION agentmesh_lifecycle UPDATE TO '1.1'" to load this file. \quit

/* ---- 1.1: restore and drop guard ---- */

/*
 * References are checked by agents_guard instead of foreign keys: a
 * parallel pg_restore may load agents before policies, and credentials
 * before agents (see check_policy_exists in src/audit.c).
 */
ALTER TABLE agentmesh.agents DROP CONSTRAINT agents_policy_fkey;
ALTER TABLE agentmesh.credentials DROP CONSTRAINT credentials_agent_id_fkey;

/*
 * The drop guard: DROP EXTENSION agentmesh_lifecycle and DROP SCHEMA
 * agentmesh are refused while the audit trail holds events, unless a
 * superuser set agentmesh_lifecycle.allow_drop (src/drop_guard.c).  ENABLE
 * ALWAYS, so that session_replication_role = replica does not switch it off.
 */
CREATE FUNCTION agentmesh.drop_guard() RETURNS event_trigger
	LANGUAGE c AS 'MODULE_PATHNAME', 'agentmesh_drop_guard';
REVOKE ALL ON FUNCTION agentmesh.drop_guard() FROM PUBLIC;
CREATE EVENT TRIGGER agentmesh_lifecycle_drop_guard ON ddl_command_start
	WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
	EXECUTE FUNCTION agentmesh.drop_guard();
ALTER EVENT TRIGGER agentmesh_lifecycle_drop_guard ENABLE ALWAYS;
COMMENT ON EVENT TRIGGER agentmesh_lifecycle_drop_guard IS 'Refuses to drop agentmesh_lifecycle while audit rows exist, unless agentmesh_lifecycle.allow_drop is on.';

/* ---- 1.1: maintenance as_of in the future needs allow_future (issue 10) ---- */

/*
 * A pass "as of" a later time acts on agents that are alive now; 1.1 refuses
 * an as_of more than 5 minutes ahead of the wall clock unless the caller says
 * allow_future => true.  A new argument means a new signature: drop and
 * re-create, with the grants of the install script.
 */
DROP FUNCTION agentmesh.lm_check_and_rotate(pg_catalog.timestamptz);
CREATE FUNCTION agentmesh.lm_check_and_rotate(as_of pg_catalog.timestamptz DEFAULT pg_catalog.now(),
		allow_future pg_catalog.bool DEFAULT false)
	RETURNS TABLE (agent_id pg_catalog.text, action pg_catalog.text, detail pg_catalog.text)
	LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_check_and_rotate';
REVOKE ALL ON FUNCTION agentmesh.lm_check_and_rotate(pg_catalog.timestamptz, pg_catalog.bool) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentmesh.lm_check_and_rotate(pg_catalog.timestamptz, pg_catalog.bool)
	TO agentmesh_admin;

DROP FUNCTION agentmesh.lm_run_maintenance(pg_catalog.timestamptz, pg_catalog.int4);
CREATE FUNCTION agentmesh.lm_run_maintenance(
		as_of pg_catalog.timestamptz DEFAULT pg_catalog.now(),
		batch_size pg_catalog.int4 DEFAULT 1000,
		allow_future pg_catalog.bool DEFAULT false,
		OUT orphaned pg_catalog.int8, OUT decommissioned pg_catalog.int8,
		OUT heartbeats_missed pg_catalog.int8, OUT rotated pg_catalog.int8,
		OUT issued pg_catalog.int8, OUT expired pg_catalog.int8,
		OUT seals pg_catalog.int8)
	RETURNS record LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_run_maintenance';
REVOKE ALL ON FUNCTION agentmesh.lm_run_maintenance(pg_catalog.timestamptz, pg_catalog.int4, pg_catalog.bool)
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentmesh.lm_run_maintenance(pg_catalog.timestamptz, pg_catalog.int4, pg_catalog.bool)
	TO agentmesh_admin;
/* ---- audit completeness, Merkle tree, checkpoints and proofs (issue 11) ---- */

/*
 * Every problem lm_verify_audit() finds, one row each (src/audit.c); the
 * summary function keeps its columns and reports the first of them.
 */
CREATE FUNCTION agentmesh.lm_verify_audit_problems(agent_id pg_catalog.text DEFAULT NULL)
	RETURNS TABLE (problem_class pg_catalog.text, subject pg_catalog.text,
				   first_event pg_catalog.int8, detail pg_catalog.text)
	LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'lm_verify_audit_problems';
COMMENT ON FUNCTION agentmesh.lm_verify_audit_problems(pg_catalog.text) IS 'lm_verify_audit_problems(agent_id DEFAULT NULL): every problem of the audit trail, one row each: chains, heads, references, seals and the Merkle tree (docs/audit.md).';

/*
 * The name of this audit log in its checkpoints: random at install, kept by
 * pg_dump.  A restore into a fresh install adds the dumped row to the new
 * one; the earliest created row is the origin.
 */
CREATE TABLE agentmesh.audit_log_origin (
	origin pg_catalog.text PRIMARY KEY,
	created_at pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE agentmesh.audit_log_origin IS 'The origin line of this audit log''s checkpoints: random at install, kept by dump and restore; the earliest row counts.';
COMMENT ON COLUMN agentmesh.audit_log_origin.origin IS 'The checkpoints'' origin line: a host-like name with a random part, made at install.';
COMMENT ON COLUMN agentmesh.audit_log_origin.created_at IS 'When the row was made; after a restore the earliest row is the origin.';
INSERT INTO agentmesh.audit_log_origin (origin)
	VALUES ('agentmesh-lifecycle.invalid/audit/' OPERATOR(pg_catalog.||)
			pg_catalog.replace(pg_catalog.gen_random_uuid()::pg_catalog.text, '-', ''));

/*
 * The RFC 6962 Merkle tree over the sealed events (src/merkle.c,
 * src/seals.c): every complete subtree (level, idx); level 0 holds the leaf
 * hashes SHA-256(0x00 || event hash) with their event_id.
 */
CREATE TABLE agentmesh.audit_tree (
	level pg_catalog.int4 NOT NULL,
	idx pg_catalog.int8 NOT NULL,
	hash pg_catalog.bytea NOT NULL
		CONSTRAINT audit_tree_hash_check
		CHECK (pg_catalog.length(hash) OPERATOR(pg_catalog.=) 32),
	event_id pg_catalog.int8,
	CONSTRAINT audit_tree_pkey PRIMARY KEY (level, idx)
);
COMMENT ON TABLE agentmesh.audit_tree IS 'RFC 6962 Merkle tree over the sealed audit events: the hash of every complete subtree; level 0 = leaves, with their event_id.';
COMMENT ON COLUMN agentmesh.audit_tree.level IS 'Height of the subtree: 0 for a leaf, k for a complete subtree of 2^k leaves.';
COMMENT ON COLUMN agentmesh.audit_tree.idx IS 'Position of the subtree at its level: it covers leaves idx * 2^level to (idx + 1) * 2^level - 1.';
COMMENT ON COLUMN agentmesh.audit_tree.hash IS 'SHA-256 leaf hash (0x00 || event hash) at level 0, node hash (0x01 || left || right) above.';
COMMENT ON COLUMN agentmesh.audit_tree.event_id IS 'The sealed event of a leaf (level 0); NULL above.';
CREATE UNIQUE INDEX audit_tree_event_id_key ON agentmesh.audit_tree (event_id)
	WHERE event_id IS NOT NULL;

/* each seal's tree size and root hash */
CREATE TABLE agentmesh.audit_checkpoints (
	seal_id pg_catalog.int8 PRIMARY KEY,
	tree_size pg_catalog.int8 NOT NULL
		CONSTRAINT audit_checkpoints_tree_size_check
		CHECK (tree_size OPERATOR(pg_catalog.>) 0),
	root_hash pg_catalog.bytea NOT NULL
		CONSTRAINT audit_checkpoints_root_hash_check
		CHECK (pg_catalog.length(root_hash) OPERATOR(pg_catalog.=) 32),
	CONSTRAINT audit_checkpoints_tree_size_key UNIQUE (tree_size)
);
COMMENT ON TABLE agentmesh.audit_checkpoints IS 'The Merkle tree size and root hash after each audit seal.';
COMMENT ON COLUMN agentmesh.audit_checkpoints.seal_id IS 'The audit seal that extended the tree to this size.';
COMMENT ON COLUMN agentmesh.audit_checkpoints.tree_size IS 'Number of sealed events (leaves) after the seal.';
COMMENT ON COLUMN agentmesh.audit_checkpoints.root_hash IS 'RFC 6962 root hash of the tree of that size.';

SELECT pg_catalog.pg_extension_config_dump('agentmesh.audit_log_origin', '');
SELECT pg_catalog.pg_extension_config_dump('agentmesh.audit_tree', '');
SELECT pg_catalog.pg_extension_config_dump('agentmesh.audit_checkpoints', '');

/* immutable like the seals, also in replica mode */
CREATE TRIGGER audit_log_origin_immutable BEFORE UPDATE OR DELETE ON agentmesh.audit_log_origin
	FOR EACH ROW EXECUTE FUNCTION agentmesh.audit_immutable();
CREATE TRIGGER audit_log_origin_no_truncate BEFORE TRUNCATE ON agentmesh.audit_log_origin
	FOR EACH STATEMENT EXECUTE FUNCTION agentmesh.audit_immutable();
CREATE TRIGGER audit_tree_immutable BEFORE UPDATE OR DELETE ON agentmesh.audit_tree
	FOR EACH ROW EXECUTE FUNCTION agentmesh.audit_immutable();
CREATE TRIGGER audit_tree_no_truncate BEFORE TRUNCATE ON agentmesh.audit_tree
	FOR EACH STATEMENT EXECUTE FUNCTION agentmesh.audit_immutable();
CREATE TRIGGER audit_checkpoints_immutable BEFORE UPDATE OR DELETE ON agentmesh.audit_checkpoints
	FOR EACH ROW EXECUTE FUNCTION agentmesh.audit_immutable();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON agentmesh.audit_checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION agentmesh.audit_immutable();
ALTER TABLE agentmesh.audit_log_origin ENABLE ALWAYS TRIGGER audit_log_origin_immutable;
ALTER TABLE agentmesh.audit_log_origin ENABLE ALWAYS TRIGGER audit_log_origin_no_truncate;
ALTER TABLE agentmesh.audit_tree ENABLE ALWAYS TRIGGER audit_tree_immutable;
ALTER TABLE agentmesh.audit_tree ENABLE ALWAYS TRIGGER audit_tree_no_truncate;
ALTER TABLE agentmesh.audit_checkpoints ENABLE ALWAYS TRIGGER audit_checkpoints_immutable;
ALTER TABLE agentmesh.audit_checkpoints ENABLE ALWAYS TRIGGER audit_checkpoints_no_truncate;

CREATE FUNCTION agentmesh.lm_audit_checkpoint(OUT origin pg_catalog.text,
		OUT tree_size pg_catalog.int8, OUT root_hash pg_catalog.bytea,
		OUT seal_id pg_catalog.int8, OUT checkpoint pg_catalog.text)
	RETURNS record LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'lm_audit_checkpoint';
COMMENT ON FUNCTION agentmesh.lm_audit_checkpoint() IS 'The audit log''s current checkpoint: origin, tree size, root hash, its seal, and the C2SP checkpoint text.';
CREATE FUNCTION agentmesh.lm_audit_consistency_proof(old_size pg_catalog.int8,
		new_size pg_catalog.int8 DEFAULT NULL,
		OUT old_size pg_catalog.int8, OUT new_size pg_catalog.int8,
		OUT proof pg_catalog.bytea[])
	RETURNS record LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'lm_audit_consistency_proof';
COMMENT ON FUNCTION agentmesh.lm_audit_consistency_proof(pg_catalog.int8, pg_catalog.int8) IS 'lm_audit_consistency_proof(old_size, new_size DEFAULT NULL): RFC 9162 consistency proof between two sizes of the audit tree (new_size NULL: the current size).';
CREATE FUNCTION agentmesh.lm_audit_inclusion_proof(event_id pg_catalog.int8,
		tree_size pg_catalog.int8 DEFAULT NULL,
		OUT event_id pg_catalog.int8, OUT leaf_index pg_catalog.int8,
		OUT tree_size pg_catalog.int8, OUT leaf_hash pg_catalog.bytea,
		OUT proof pg_catalog.bytea[])
	RETURNS record LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'lm_audit_inclusion_proof';
COMMENT ON FUNCTION agentmesh.lm_audit_inclusion_proof(pg_catalog.int8, pg_catalog.int8) IS 'lm_audit_inclusion_proof(event_id, tree_size DEFAULT NULL): RFC 9162 inclusion proof of a sealed audit event in the audit tree (tree_size NULL: the current size).';

REVOKE ALL ON agentmesh.audit_log_origin, agentmesh.audit_tree, agentmesh.audit_checkpoints FROM PUBLIC;
REVOKE ALL ON FUNCTION agentmesh.lm_verify_audit_problems(pg_catalog.text),
	agentmesh.lm_audit_checkpoint(),
	agentmesh.lm_audit_consistency_proof(pg_catalog.int8, pg_catalog.int8),
	agentmesh.lm_audit_inclusion_proof(pg_catalog.int8, pg_catalog.int8) FROM PUBLIC;
GRANT SELECT ON agentmesh.audit_log_origin, agentmesh.audit_tree, agentmesh.audit_checkpoints
	TO agentmesh_admin, agentmesh_auditor;
GRANT EXECUTE ON FUNCTION agentmesh.lm_verify_audit_problems(pg_catalog.text),
	agentmesh.lm_audit_checkpoint(),
	agentmesh.lm_audit_consistency_proof(pg_catalog.int8, pg_catalog.int8),
	agentmesh.lm_audit_inclusion_proof(pg_catalog.int8, pg_catalog.int8)
	TO agentmesh_admin, agentmesh_auditor;

/*
 * The tree and checkpoints of the seals written by 1.0, built by the same
 * code that extends the tree at every seal; the function exists only for
 * this statement.
 */
CREATE FUNCTION agentmesh.audit_tree_build() RETURNS pg_catalog.void
	LANGUAGE c AS 'MODULE_PATHNAME', 'am_audit_tree_build';
SELECT agentmesh.audit_tree_build();
DROP FUNCTION agentmesh.audit_tree_build();
-- ---- credentials that reach their agents (issue 12): changed definitions ----

ALTER TABLE agentmesh.policies ADD COLUMN rotate_after pg_catalog.float8 NOT NULL DEFAULT 0.5
	CONSTRAINT policies_rotate_after_check
	CHECK (rotate_after OPERATOR(pg_catalog.>) 0::pg_catalog.float8
		   AND rotate_after OPERATOR(pg_catalog.<=) 1::pg_catalog.float8);
ALTER TABLE agentmesh.agents ADD COLUMN last_used_at pg_catalog.timestamptz;
ALTER TABLE agentmesh.credentials ADD COLUMN last_used_at pg_catalog.timestamptz;
/* verification now records the last use (at most once a minute) */
ALTER FUNCTION agentmesh.lm_verify_credential(pg_catalog.text) VOLATILE;

-- ---- credentials that reach their agents (issue 12) ----

COMMENT ON COLUMN agentmesh.policies.rotate_after IS 'Fraction of a credential''s lifetime after which the maintenance pass rotates it (0 < x <= 1; 0.5 = half-life); it rotates at the latest rotation_overlap before expiry.';
COMMENT ON COLUMN agentmesh.agents.last_used_at IS 'Last successful verification, renewal or claim with any of the agent''s credentials; written at most once a minute per credential, never on a standby.';
COMMENT ON COLUMN agentmesh.credentials.last_used_at IS 'Last successful use of this credential (verification, token heartbeat, renewal, claim); written at most once a minute, never on a standby.';

/*
 * Sealed hand-overs (docs/credentials.md#hand-over).  Whenever a token is
 * issued (activation, rotation, reclaim, renewal, claim) its successor is
 * generated at once, while the token is still in memory, and stored here
 * sealed under a key derived from that token; the database keeps only the
 * seal and the successor's SHA-256.  The maintenance pass later makes the
 * successor a credential (promoted_at) without ever seeing a token, and
 * lm_claim_credential(predecessor token) opens the seal exactly once.
 */
CREATE TABLE agentmesh.credential_handovers (
	predecessor_id pg_catalog.text PRIMARY KEY,
	agent_id pg_catalog.text NOT NULL,
	successor_id pg_catalog.text NOT NULL UNIQUE,
	successor_hash pg_catalog.bytea NOT NULL
		CONSTRAINT credential_handovers_successor_hash_check
		CHECK (pg_catalog.length(successor_hash) OPERATOR(pg_catalog.=) 32),
	sealed pg_catalog.bytea NOT NULL
		CONSTRAINT credential_handovers_sealed_check
		CHECK (pg_catalog.length(sealed) OPERATOR(pg_catalog.=) 108),
	created_at pg_catalog.timestamptz NOT NULL,
	promoted_at pg_catalog.timestamptz
);
COMMENT ON TABLE agentmesh.credential_handovers IS 'Successor tokens sealed under their predecessor''s token (HKDF/HMAC-SHA-256 encrypt-then-MAC); only the predecessor token opens them.';
COMMENT ON COLUMN agentmesh.credential_handovers.predecessor_id IS 'The credential whose token opens the seal.';
COMMENT ON COLUMN agentmesh.credential_handovers.agent_id IS 'The agent of both credentials.';
COMMENT ON COLUMN agentmesh.credential_handovers.successor_id IS 'The credential id the successor has (or will have once the pass promotes it).';
COMMENT ON COLUMN agentmesh.credential_handovers.successor_hash IS 'SHA-256 of the successor token, as credentials.token_hash.';
COMMENT ON COLUMN agentmesh.credential_handovers.sealed IS 'Successor token encrypted and authenticated under keys derived from the predecessor token (76 bytes ciphertext, 32 bytes tag).';
COMMENT ON COLUMN agentmesh.credential_handovers.created_at IS 'When the successor was generated (when the predecessor was issued).';
COMMENT ON COLUMN agentmesh.credential_handovers.promoted_at IS 'When the maintenance pass made the successor a credential; NULL while it is only reserved.';
CREATE INDEX credential_handovers_agent_idx ON agentmesh.credential_handovers (agent_id);
SELECT pg_catalog.pg_extension_config_dump('agentmesh.credential_handovers', '');
REVOKE ALL ON agentmesh.credential_handovers FROM PUBLIC;
GRANT SELECT ON agentmesh.credential_handovers TO agentmesh_admin, agentmesh_auditor;

CREATE FUNCTION agentmesh.lm_renew(token pg_catalog.text)
	RETURNS agentmesh.credential_grant LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_renew';
COMMENT ON FUNCTION agentmesh.lm_renew(pg_catalog.text) IS 'lm_renew(token): self-renewal, a live token of an active agent gets its successor (the presented token stays valid for the rotation overlap).';
CREATE FUNCTION agentmesh.lm_claim_credential(token pg_catalog.text)
	RETURNS agentmesh.credential_grant LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_claim_credential';
COMMENT ON FUNCTION agentmesh.lm_claim_credential(pg_catalog.text) IS 'lm_claim_credential(token): returns, exactly once, the successor the maintenance pass sealed under the presented token, and erases the sealed copy.';
REVOKE ALL ON FUNCTION agentmesh.lm_renew(pg_catalog.text),
	agentmesh.lm_claim_credential(pg_catalog.text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentmesh.lm_renew(pg_catalog.text),
	agentmesh.lm_claim_credential(pg_catalog.text) TO agentmesh_admin, agentmesh_agent;

/* ---- authorization: teams, scoped reads, policies, heartbeat result (issue 10) ---- */

/*
 * Teams.  Every agent belongs to a team, a PostgreSQL role: lm_request()
 * makes the session user's (or a role it is a member of) the team, and
 * only admins move an agent with lm_change_team(), audited as team_changed.
 * Requesters act on and see the agents of their teams only (docs/roles.md).
 */
ALTER TYPE agentmesh.lifecycle_event_type ADD VALUE 'team_changed';
ALTER TABLE agentmesh.agents ADD COLUMN team pg_catalog.name;
COMMENT ON COLUMN agentmesh.agents.team IS 'The team owning the agent: a role; requesters that are members of it manage the agent (NULL: admins only).';
CREATE INDEX agents_team_idx ON agentmesh.agents (team);
COMMENT ON INDEX agentmesh.agents_team_idx IS 'Agents by team: the row-security predicate and team reads.';

/*
 * The team of an agent made by 1.0: the login that requested it (the
 * db_user of its requested event, the first event of its chain) when that
 * role still exists, else NULL (admins, approvers and auditors see it, admins
 * manage it; docs/upgrades.md).  Set with the agents trigger off: the
 * team_changed label added above cannot be used before this transaction
 * commits, and the assignment is derived from the chain itself.
 */
ALTER TABLE agentmesh.agents DISABLE TRIGGER agents_guard;
UPDATE agentmesh.agents a SET team = e.db_user::pg_catalog.name
  FROM agentmesh.audit_events e
 WHERE e.agent_id OPERATOR(pg_catalog.=) a.agent_id
   AND e.event_type OPERATOR(pg_catalog.=) 'requested'::agentmesh.lifecycle_event_type
   AND e.seq OPERATOR(pg_catalog.=) 1
   AND EXISTS (SELECT FROM pg_catalog.pg_roles r
				WHERE r.rolname OPERATOR(pg_catalog.=) e.db_user::pg_catalog.name);
ALTER TABLE agentmesh.agents ENABLE ALWAYS TRIGGER agents_guard;

/*
 * Policies that cannot be shopped for: who may request under a policy, and
 * who approves under it (checked by src/authz.c, validated by src/policy.c).
 */
ALTER TABLE agentmesh.policies ADD COLUMN allowed_roles pg_catalog.name[];
ALTER TABLE agentmesh.policies ADD COLUMN approver_role pg_catalog.name;
COMMENT ON COLUMN agentmesh.policies.allowed_roles IS 'Roles whose members may request agents under the policy; NULL: everyone if it requires approval, admins only if not.';
COMMENT ON COLUMN agentmesh.policies.approver_role IS 'Role whose members approve and reject requests under the policy; NULL: admins and agentmesh_approver members.';

/*
 * Row-level security: a plain SELECT on agents and credentials shows a
 * requester the rows of its teams only, by the rule every lm_* function
 * applies (agentmesh.team_visible).  Admins, approvers and auditors see
 * every row.  The lm_* functions read the tables as the extension owner and
 * apply the same predicate themselves.
 */
CREATE FUNCTION agentmesh.team_visible(team pg_catalog.name)
	RETURNS pg_catalog.bool LANGUAGE c STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'agentmesh_team_visible';
COMMENT ON FUNCTION agentmesh.team_visible(pg_catalog.name) IS 'team_visible(team): row-security predicate: may the session user see an agent of this team (admin, approver, auditor, or member of the team)?';
REVOKE ALL ON FUNCTION agentmesh.team_visible(pg_catalog.name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentmesh.team_visible(pg_catalog.name)
	TO agentmesh_admin, agentmesh_approver, agentmesh_requester, agentmesh_auditor;

ALTER TABLE agentmesh.agents ENABLE ROW LEVEL SECURITY;
ALTER TABLE agentmesh.credentials ENABLE ROW LEVEL SECURITY;
CREATE POLICY agents_team_read ON agentmesh.agents FOR SELECT
	USING (agentmesh.team_visible(team));
CREATE POLICY credentials_team_read ON agentmesh.credentials FOR SELECT
	USING (agentmesh.team_visible((SELECT a.team FROM agentmesh.agents a
		WHERE a.agent_id OPERATOR(pg_catalog.=) credentials.agent_id)));
COMMENT ON POLICY agents_team_read ON agentmesh.agents IS 'A plain SELECT shows the agents the session user may see (agentmesh.team_visible).';
COMMENT ON POLICY credentials_team_read ON agentmesh.credentials IS 'A plain SELECT shows the credentials of the agents the session user may see.';
GRANT SELECT ON agentmesh.credentials TO agentmesh_requester;

/* lm_change_team(agent_id, team, actor): admins move an agent to another team. */
CREATE FUNCTION agentmesh.lm_change_team(agent_id pg_catalog.text, team pg_catalog.text,
		actor pg_catalog.text DEFAULT NULL)
	RETURNS agentmesh.agents LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_change_team';
COMMENT ON FUNCTION agentmesh.lm_change_team(pg_catalog.text, pg_catalog.text, pg_catalog.text) IS 'lm_change_team(agent_id, team, actor DEFAULT session_user): moves an agent to another team (a role); admins only; audited as team_changed.';
REVOKE ALL ON FUNCTION agentmesh.lm_change_team(pg_catalog.text, pg_catalog.text, pg_catalog.text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentmesh.lm_change_team(pg_catalog.text, pg_catalog.text, pg_catalog.text)
	TO agentmesh_admin;

/* A team manages its own agents: suspend, decommission and revoke too. */
GRANT EXECUTE ON FUNCTION
	agentmesh.lm_suspend(pg_catalog.text, pg_catalog.text, pg_catalog.text),
	agentmesh.lm_decommission(pg_catalog.text, pg_catalog.text, pg_catalog.text),
	agentmesh.lm_revoke_credentials(pg_catalog.text, pg_catalog.text, pg_catalog.text)
	TO agentmesh_requester;

/* lm_request gains its last parameter, team */
DROP FUNCTION agentmesh.lm_request(pg_catalog.text, pg_catalog.text, pg_catalog.text,
	pg_catalog.text, pg_catalog.text, pg_catalog.jsonb, pg_catalog.text);
CREATE FUNCTION agentmesh.lm_request(name pg_catalog.text, owner pg_catalog.text,
		purpose pg_catalog.text DEFAULT '', agent_type pg_catalog.text DEFAULT 'autonomous',
		actor pg_catalog.text DEFAULT NULL, tags pg_catalog.jsonb DEFAULT '{}',
		policy pg_catalog.text DEFAULT 'default', team pg_catalog.text DEFAULT NULL)
	RETURNS agentmesh.agents LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_request';
REVOKE ALL ON FUNCTION agentmesh.lm_request(pg_catalog.text, pg_catalog.text, pg_catalog.text,
	pg_catalog.text, pg_catalog.text, pg_catalog.jsonb, pg_catalog.text, pg_catalog.text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentmesh.lm_request(pg_catalog.text, pg_catalog.text, pg_catalog.text,
	pg_catalog.text, pg_catalog.text, pg_catalog.jsonb, pg_catalog.text, pg_catalog.text)
	TO agentmesh_admin, agentmesh_requester;

/* lm_heartbeat returns agentmesh.heartbeat_result instead of the agent's row */
DROP FUNCTION agentmesh.lm_heartbeat(pg_catalog.text, pg_catalog.text);

/*
 * What a heartbeat returns: what the agent may know about itself, not its
 * row (owner, tags and team are not an agent login's to read).  The
 * credential fields are those of the token presented (NULL without one).
 * Built in one place, heartbeat_result() in src/lifecycle.c.
 */
CREATE TYPE agentmesh.heartbeat_result AS (
	agent_id pg_catalog.text,
	state agentmesh.lifecycle_state,
	last_heartbeat_at pg_catalog.timestamptz,
	next_heartbeat_before pg_catalog.timestamptz,
	credential_id pg_catalog.text,
	credential_expires_at pg_catalog.timestamptz,
	successor_waiting pg_catalog.bool
);
COMMENT ON TYPE agentmesh.heartbeat_result IS 'Result of lm_heartbeat(): the agent''s state, its heartbeat deadline, the credential presented and whether its successor waits.';
COMMENT ON COLUMN agentmesh.heartbeat_result.agent_id IS 'The agent that heartbeated.';
COMMENT ON COLUMN agentmesh.heartbeat_result.state IS 'The agent''s state after the heartbeat.';
COMMENT ON COLUMN agentmesh.heartbeat_result.last_heartbeat_at IS 'The heartbeat time recorded.';
COMMENT ON COLUMN agentmesh.heartbeat_result.next_heartbeat_before IS 'The next heartbeat is due before this time (the policy''s heartbeat_interval later); after it the pass counts a missed heartbeat.';
COMMENT ON COLUMN agentmesh.heartbeat_result.credential_id IS 'The credential of the token presented; NULL without a token.';
COMMENT ON COLUMN agentmesh.heartbeat_result.credential_expires_at IS 'When that credential expires; NULL without a token.';
COMMENT ON COLUMN agentmesh.heartbeat_result.successor_waiting IS 'The maintenance pass rotated that credential: a successor sealed under the token waits for lm_claim_credential(token); NULL without a token.';
REVOKE ALL ON TYPE agentmesh.heartbeat_result FROM PUBLIC;
GRANT USAGE ON TYPE agentmesh.heartbeat_result
	TO agentmesh_admin, agentmesh_approver, agentmesh_requester, agentmesh_agent, agentmesh_auditor;

CREATE FUNCTION agentmesh.lm_heartbeat(agent_id pg_catalog.text, token pg_catalog.text DEFAULT NULL)
	RETURNS agentmesh.heartbeat_result LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_heartbeat';
REVOKE ALL ON FUNCTION agentmesh.lm_heartbeat(pg_catalog.text, pg_catalog.text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentmesh.lm_heartbeat(pg_catalog.text, pg_catalog.text)
	TO agentmesh_admin, agentmesh_agent;

/* ---- integrations (issue 13) ---- */

/* lm_transitions().events is text[] from 1.1 on: drivers read it as a list. */
DROP FUNCTION agentmesh.lm_transitions();
CREATE FUNCTION agentmesh.lm_transitions()
	RETURNS TABLE (operation pg_catalog.text, from_state agentmesh.lifecycle_state,
				   to_state agentmesh.lifecycle_state, events pg_catalog.text[])
	LANGUAGE c IMMUTABLE AS 'MODULE_PATHNAME', 'lm_transitions';
REVOKE ALL ON FUNCTION agentmesh.lm_transitions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentmesh.lm_transitions()
	TO agentmesh_admin, agentmesh_approver, agentmesh_requester, agentmesh_auditor;

/*
 * Runs of CALL agentmesh.run_maintenance(), the procedure for schedulers
 * such as pg_cron: one row per run, its counts updated in the transaction
 * of each batch (so they are what committed), its error if it failed.  The
 * procedure keeps the last 1000 runs.  Not audit data: not dumped.
 */
CREATE SEQUENCE agentmesh.maintenance_runs_run_id_seq;
CREATE TABLE agentmesh.maintenance_runs (
	run_id pg_catalog.int8 PRIMARY KEY
		DEFAULT pg_catalog.nextval('agentmesh.maintenance_runs_run_id_seq'::pg_catalog.regclass),
	started_at pg_catalog.timestamptz NOT NULL,
	finished_at pg_catalog.timestamptz,
	pid pg_catalog.int4 NOT NULL,
	db_user pg_catalog.text NOT NULL,
	batch_size pg_catalog.int4 NOT NULL,
	batches pg_catalog.int8 NOT NULL DEFAULT 0,
	orphaned pg_catalog.int8 NOT NULL DEFAULT 0,
	decommissioned pg_catalog.int8 NOT NULL DEFAULT 0,
	heartbeats_missed pg_catalog.int8 NOT NULL DEFAULT 0,
	rotated pg_catalog.int8 NOT NULL DEFAULT 0,
	issued pg_catalog.int8 NOT NULL DEFAULT 0,
	expired pg_catalog.int8 NOT NULL DEFAULT 0,
	seals pg_catalog.int8 NOT NULL DEFAULT 0,
	error pg_catalog.text
);
ALTER SEQUENCE agentmesh.maintenance_runs_run_id_seq OWNED BY agentmesh.maintenance_runs.run_id;

CREATE PROCEDURE agentmesh.run_maintenance(batch_size pg_catalog.int4 DEFAULT 1000)
	LANGUAGE c AS 'MODULE_PATHNAME', 'am_run_maintenance_proc';

/*
 * worker_status: the workers from shared memory, and, for this database,
 * the last run_maintenance() runs (state 'scheduled', or 'running pass'
 * while one runs), so that a pg_cron setup shows its last pass too.
 */
CREATE OR REPLACE VIEW agentmesh.worker_status AS
	SELECT datid, datname, pid, state, passes, last_pass_start, last_pass_duration,
		   orphaned, decommissioned, heartbeats_missed, rotated, issued, expired,
		   seals, errors, last_error, last_error_at
	  FROM agentmesh.lm_worker_status()
	UNION ALL
	SELECT d.oid, d.datname, cur.pid,
		   CASE WHEN cur.pid IS NOT NULL THEN 'running pass' ELSE 'scheduled' END,
		   (SELECT pg_catalog.count(*) FROM agentmesh.maintenance_runs r
			 WHERE r.finished_at IS NOT NULL AND r.error IS NULL),
		   ok.started_at, ok.finished_at OPERATOR(pg_catalog.-) ok.started_at,
		   ok.orphaned, ok.decommissioned, ok.heartbeats_missed, ok.rotated, ok.issued,
		   ok.expired, ok.seals,
		   (SELECT pg_catalog.count(*) FROM agentmesh.maintenance_runs r WHERE r.error IS NOT NULL),
		   bad.error, bad.finished_at
	  FROM pg_catalog.pg_database d
	  LEFT JOIN LATERAL (SELECT r.* FROM agentmesh.maintenance_runs r
						  WHERE r.finished_at IS NOT NULL AND r.error IS NULL
						  ORDER BY r.run_id DESC LIMIT 1) ok ON true
	  LEFT JOIN LATERAL (SELECT r.* FROM agentmesh.maintenance_runs r
						  WHERE r.error IS NOT NULL
						  ORDER BY r.run_id DESC LIMIT 1) bad ON true
	  LEFT JOIN LATERAL (SELECT r.pid FROM agentmesh.maintenance_runs r
						  WHERE r.finished_at IS NULL
							AND EXISTS (SELECT FROM pg_catalog.pg_stat_activity s
										 WHERE s.pid OPERATOR(pg_catalog.=) r.pid
										   AND s.backend_start OPERATOR(pg_catalog.<=) r.started_at)
						  ORDER BY r.run_id DESC LIMIT 1) cur ON true
	 WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()
	   AND EXISTS (SELECT FROM agentmesh.maintenance_runs);

REVOKE ALL ON agentmesh.maintenance_runs FROM PUBLIC;
REVOKE ALL ON SEQUENCE agentmesh.maintenance_runs_run_id_seq FROM PUBLIC;
REVOKE ALL ON PROCEDURE agentmesh.run_maintenance(pg_catalog.int4) FROM PUBLIC;
GRANT SELECT ON agentmesh.maintenance_runs TO agentmesh_admin, agentmesh_auditor;
GRANT EXECUTE ON PROCEDURE agentmesh.run_maintenance(pg_catalog.int4) TO agentmesh_admin;

/*
 * Views for BI tools, monitoring and schedulers.  security_invoker: a view
 * reads the tables with the caller's privileges (and row-security policies),
 * so it never shows more than the tables would.  The extension's typed
 * details (numbers, lists) are read in both forms: rows written by 1.0
 * store them as strings, and their hashes cover that form.
 */

/*
 * One row per audit event, typed: text event type and states, the agent's
 * name and owner at the time of the event (from the events of its own
 * chain: requested, owner_changed, attributes_changed), the main details as
 * columns, hashes as hex, the transaction id as bigint.
 */
CREATE VIEW agentmesh.audit_log WITH (security_invoker = true) AS
SELECT e.event_id,
	   e.occurred_at,
	   e.event_type::pg_catalog.text AS event_type,
	   e.agent_id,
	   e.policy,
	   e.seq,
	   (COALESCE(
			(SELECT pg_catalog.jsonb_extract_path(b.details, 'new', 'name')
			   FROM agentmesh.audit_events b
			  WHERE b.agent_id OPERATOR(pg_catalog.=) e.agent_id
				AND b.seq OPERATOR(pg_catalog.<=) e.seq
				AND b.event_type OPERATOR(pg_catalog.=) 'attributes_changed'
				AND pg_catalog.jsonb_extract_path(b.details, 'new', 'name') IS NOT NULL
			  ORDER BY b.seq DESC LIMIT 1),
			(SELECT pg_catalog.jsonb_extract_path(b.details, 'name')
			   FROM agentmesh.audit_events b
			  WHERE b.agent_id OPERATOR(pg_catalog.=) e.agent_id
				AND b.seq OPERATOR(pg_catalog.<=) e.seq
				AND b.event_type OPERATOR(pg_catalog.=) 'requested'
				AND pg_catalog.jsonb_extract_path(b.details, 'name') IS NOT NULL
			  ORDER BY b.seq DESC LIMIT 1),
			(SELECT pg_catalog.jsonb_extract_path(f.details, 'old', 'name')
			   FROM agentmesh.audit_events f
			  WHERE f.agent_id OPERATOR(pg_catalog.=) e.agent_id
				AND f.seq OPERATOR(pg_catalog.>) e.seq
				AND f.event_type OPERATOR(pg_catalog.=) 'attributes_changed'
				AND pg_catalog.jsonb_extract_path(f.details, 'old', 'name') IS NOT NULL
			  ORDER BY f.seq LIMIT 1),
			pg_catalog.to_jsonb(a.name))
		OPERATOR(pg_catalog.#>>) '{}'::pg_catalog.text[]) AS agent_name,
	   (COALESCE(
			(SELECT CASE b.event_type WHEN 'requested' THEN pg_catalog.jsonb_extract_path(b.details, 'owner')
					ELSE pg_catalog.jsonb_extract_path(b.details, 'new_owner') END
			   FROM agentmesh.audit_events b
			  WHERE b.agent_id OPERATOR(pg_catalog.=) e.agent_id
				AND b.seq OPERATOR(pg_catalog.<=) e.seq
				AND (b.event_type OPERATOR(pg_catalog.=) 'owner_changed'
					 OR (b.event_type OPERATOR(pg_catalog.=) 'requested'
						 AND b.details OPERATOR(pg_catalog.?) 'owner'))
			  ORDER BY b.seq DESC LIMIT 1),
			(SELECT pg_catalog.jsonb_extract_path(f.details, 'old_owner')
			   FROM agentmesh.audit_events f
			  WHERE f.agent_id OPERATOR(pg_catalog.=) e.agent_id
				AND f.seq OPERATOR(pg_catalog.>) e.seq
				AND f.event_type OPERATOR(pg_catalog.=) 'owner_changed'
			  ORDER BY f.seq LIMIT 1),
			pg_catalog.to_jsonb(a.owner))
		OPERATOR(pg_catalog.#>>) '{}'::pg_catalog.text[]) AS owner,
	   /*
		* event_type compared as text: the update script adds team_changed in
		* its own transaction, where the new label cannot be used as a value.
		*/
	   (COALESCE(
			(SELECT CASE b.event_type::pg_catalog.text WHEN 'requested'
						THEN pg_catalog.jsonb_extract_path(b.details, 'team')
					ELSE pg_catalog.jsonb_extract_path(b.details, 'new_team') END
			   FROM agentmesh.audit_events b
			  WHERE b.agent_id OPERATOR(pg_catalog.=) e.agent_id
				AND b.seq OPERATOR(pg_catalog.<=) e.seq
				AND (b.event_type::pg_catalog.text OPERATOR(pg_catalog.=) 'team_changed'
					 OR (b.event_type::pg_catalog.text OPERATOR(pg_catalog.=) 'requested'
						 AND b.details OPERATOR(pg_catalog.?) 'team'))
			  ORDER BY b.seq DESC LIMIT 1),
			(SELECT pg_catalog.jsonb_extract_path(f.details, 'old_team')
			   FROM agentmesh.audit_events f
			  WHERE f.agent_id OPERATOR(pg_catalog.=) e.agent_id
				AND f.seq OPERATOR(pg_catalog.>) e.seq
				AND f.event_type::pg_catalog.text OPERATOR(pg_catalog.=) 'team_changed'
			  ORDER BY f.seq LIMIT 1),
			pg_catalog.to_jsonb(a.team))
		OPERATOR(pg_catalog.#>>) '{}'::pg_catalog.text[]) AS team,
	   e.actor,
	   e.db_user,
	   e.previous_state::pg_catalog.text AS previous_state,
	   e.new_state::pg_catalog.text AS new_state,
	   pg_catalog.jsonb_extract_path_text(e.details, 'reason') AS reason,
	   CASE pg_catalog.jsonb_typeof(pg_catalog.jsonb_extract_path(e.details, 'reason_codes'))
			WHEN 'array' THEN ARRAY(SELECT pg_catalog.jsonb_array_elements_text(
								pg_catalog.jsonb_extract_path(e.details, 'reason_codes')))
			WHEN 'string' THEN pg_catalog.regexp_split_to_array(
								pg_catalog.jsonb_extract_path_text(e.details, 'reason_codes'), '\s*,\s*')
	   END AS reason_codes,
	   CASE WHEN pg_catalog.jsonb_extract_path_text(e.details, 'silent_seconds')
				 OPERATOR(pg_catalog.~) '^-?[0-9]+(\.[0-9]+)?$'
			THEN pg_catalog.jsonb_extract_path_text(e.details, 'silent_seconds')::pg_catalog.numeric
	   END AS silent_seconds,
	   pg_catalog.jsonb_extract_path_text(e.details, 'old_owner') AS old_owner,
	   pg_catalog.jsonb_extract_path_text(e.details, 'new_owner') AS new_owner,
	   COALESCE(pg_catalog.jsonb_extract_path_text(e.details, 'new_credential'),
						   pg_catalog.jsonb_extract_path_text(e.details, 'credential_id')) AS credential_id,
	   pg_catalog.jsonb_extract_path_text(e.details, 'old_credential') AS old_credential_id,
	   CASE WHEN pg_catalog.jsonb_extract_path_text(e.details, 'credentials_revoked')
				 OPERATOR(pg_catalog.~) '^[0-9]+$'
			THEN pg_catalog.jsonb_extract_path_text(e.details, 'credentials_revoked')::pg_catalog.int8
	   END AS credentials_revoked,
	   pg_catalog.jsonb_extract_path_text(e.details, 'policy_rule') AS policy_rule,
	   CASE pg_catalog.jsonb_typeof(pg_catalog.jsonb_extract_path(e.details, 'columns'))
			WHEN 'array' THEN ARRAY(SELECT pg_catalog.jsonb_array_elements_text(
								pg_catalog.jsonb_extract_path(e.details, 'columns')))
	   END AS changed_columns,
	   pg_catalog.jsonb_extract_path(e.details, 'old') AS old_values,
	   pg_catalog.jsonb_extract_path(e.details, 'new') AS new_values,
	   e.details,
	   pg_catalog.encode(e.prev_hash, 'hex') AS prev_hash,
	   pg_catalog.encode(e.hash, 'hex') AS hash,
	   e.xact_id::pg_catalog.text::pg_catalog.int8 AS xact_id,
	   e.xact_id::pg_catalog.text OPERATOR(pg_catalog.||) ':'
		   OPERATOR(pg_catalog.||) e.event_id::pg_catalog.text AS event_cursor
  FROM agentmesh.audit_events e
  LEFT JOIN agentmesh.agents a ON a.agent_id OPERATOR(pg_catalog.=) e.agent_id;

/*
 * One row per agent: what an operator or a BI tool asks first.  Orphan
 * reasons come from lm_detect_orphans(), where the rules are written once.
 */
CREATE VIEW agentmesh.fleet WITH (security_invoker = true) AS
SELECT a.agent_id,
	   a.name,
	   a.state::pg_catalog.text AS state,
	   a.owner,
	   a.team,
	   a.policy,
	   a.agent_type,
	   a.purpose,
	   a.tags,
	   a.created_at,
	   a.activated_at,
	   a.decommissioned_at,
	   a.credential_id,
	   a.credential_expires_at,
	   pg_catalog.round(pg_catalog.date_part('epoch', a.credential_expires_at
			OPERATOR(pg_catalog.-) pg_catalog.now())::pg_catalog.numeric, 3) AS credential_expires_in_seconds,
	   a.last_heartbeat,
	   pg_catalog.round(pg_catalog.date_part('epoch', pg_catalog.now()
			OPERATOR(pg_catalog.-) a.last_heartbeat)::pg_catalog.numeric, 3) AS seconds_since_heartbeat,
	   a.last_used_at,
	   pg_catalog.round(pg_catalog.date_part('epoch', pg_catalog.now()
			OPERATOR(pg_catalog.-) a.last_used_at)::pg_catalog.numeric, 3) AS seconds_since_last_use,
	   a.heartbeat_count,
	   COALESCE(o.reasons, '{}'::pg_catalog.text[]) AS orphan_reasons
  FROM agentmesh.agents a
  LEFT JOIN (SELECT d.agent_id,
					pg_catalog.array_agg(d.reason_code ORDER BY d.reason_code) AS reasons
			   FROM agentmesh.lm_detect_orphans() d
			  GROUP BY d.agent_id) o ON o.agent_id OPERATOR(pg_catalog.=) a.agent_id;

/*
 * Gauges, one row per (metric, label): every state and orphan reason
 * appears, with 0 when nothing is in it, so that a monitoring query needs no
 * enum tricks.  value is double precision; ages are NULL before the first
 * pass or seal.  test/prometheus/queries.yaml maps them for
 * prometheus-postgres-exporter.
 */
CREATE VIEW agentmesh.fleet_metrics WITH (security_invoker = true) AS
SELECT 'agents'::pg_catalog.text AS metric, s.state::pg_catalog.text AS label,
	   (SELECT pg_catalog.count(*) FROM agentmesh.agents a
		 WHERE a.state OPERATOR(pg_catalog.=) s.state)::pg_catalog.float8 AS value
  FROM pg_catalog.unnest(pg_catalog.enum_range(NULL::agentmesh.lifecycle_state)) s(state)
UNION ALL
SELECT 'orphan_candidates', r.code,
	   (SELECT pg_catalog.count(DISTINCT d.agent_id) FROM agentmesh.lm_detect_orphans() d
		 WHERE d.reason_code OPERATOR(pg_catalog.=) r.code)::pg_catalog.float8
  FROM (VALUES ('silent'), ('never_heartbeat'), ('no_owner'), ('inactive')) r(code)
UNION ALL
SELECT 'credentials_expiring', w.label,
	   (SELECT pg_catalog.count(*) FROM agentmesh.agents a
		 WHERE a.state OPERATOR(pg_catalog.=) 'active'
		   AND a.credential_expires_at OPERATOR(pg_catalog.>) pg_catalog.now()
		   AND a.credential_expires_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) w.win))::pg_catalog.float8
  FROM (VALUES ('1h', '1 hour'::pg_catalog.interval), ('24h', '24 hours'::pg_catalog.interval)) w(label, win)
UNION ALL
SELECT 'credentials_expired', '',
	   (SELECT pg_catalog.count(*) FROM agentmesh.agents a
		 WHERE a.state OPERATOR(pg_catalog.=) 'active'
		   AND a.credential_expires_at OPERATOR(pg_catalog.<=) pg_catalog.now())::pg_catalog.float8
UNION ALL
SELECT 'last_pass_age_seconds', '',
	   (SELECT pg_catalog.date_part('epoch', pg_catalog.now() OPERATOR(pg_catalog.-)
				pg_catalog.max(w.last_pass_start OPERATOR(pg_catalog.+) w.last_pass_duration))
		  FROM agentmesh.worker_status w)
UNION ALL
SELECT 'last_seal_age_seconds', '',
	   (SELECT pg_catalog.date_part('epoch', pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.max(s.sealed_at))
		  FROM agentmesh.audit_seals s)
UNION ALL
SELECT 'worker_errors', '',
	   (SELECT COALESCE(pg_catalog.sum(w.errors), 0) FROM agentmesh.worker_status w)::pg_catalog.float8;

REVOKE ALL ON agentmesh.audit_log, agentmesh.fleet, agentmesh.fleet_metrics FROM PUBLIC;
GRANT SELECT ON agentmesh.audit_log, agentmesh.fleet, agentmesh.fleet_metrics
	TO agentmesh_admin, agentmesh_auditor;

/*
 * The durable event feed.  Event ids are assigned at insert and
 * transactions commit out of id order, so "events after id N" skips events
 * that commit late.  lm_events() returns only events of transactions below
 * the current snapshot's xmin (every one of them has ended, so no event can
 * still appear below it), in (xact_id, event_id) order, after the cursor
 * (xact_id:event_id) of the last event the caller got: none is skipped,
 * none returned twice.  Each row's event_cursor is the cursor to pass next.
 */
CREATE FUNCTION agentmesh.lm_events(after pg_catalog.text DEFAULT NULL,
		max_rows pg_catalog.int4 DEFAULT 1000)
	RETURNS SETOF agentmesh.audit_log
	LANGUAGE plpgsql STABLE
	SET search_path = pg_catalog, pg_temp
AS $lm_events$
DECLARE
	cx pg_catalog.xid8 := '0';
	ce pg_catalog.int8 := 0;
	horizon pg_catalog.xid8 := pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot());
BEGIN
	IF max_rows IS NULL THEN
		RAISE EXCEPTION 'max_rows must not be null' USING ERRCODE = '22004';
	END IF;
	IF max_rows OPERATOR(pg_catalog.<) 1 OR max_rows OPERATOR(pg_catalog.>) 100000 THEN
		RAISE EXCEPTION 'max_rows must be between 1 and 100000' USING ERRCODE = '22023';
	END IF;
	IF after IS NOT NULL THEN
		/* digits:digits within xid8 and int8 (CASE: no cast of a non-number) */
		IF (CASE WHEN after OPERATOR(pg_catalog.~) '^[0-9]{1,20}:[0-9]{1,19}$'
				 THEN pg_catalog.split_part(after, ':', 1)::pg_catalog.numeric
						  OPERATOR(pg_catalog.>) 18446744073709551615
					  OR pg_catalog.split_part(after, ':', 2)::pg_catalog.numeric
						  OPERATOR(pg_catalog.>) 9223372036854775807
				 ELSE true END) THEN
			RAISE EXCEPTION 'invalid event cursor'
				USING ERRCODE = '22023',
					  HINT = 'Pass NULL or the event_cursor of the last row lm_events() returned.';
		END IF;
		cx := pg_catalog.split_part(after, ':', 1)::pg_catalog.xid8;
		ce := pg_catalog.split_part(after, ':', 2)::pg_catalog.int8;
	END IF;
	RETURN QUERY
		SELECT l.*
		  FROM agentmesh.audit_log l
		 WHERE l.event_id OPERATOR(pg_catalog.=) ANY (ARRAY(
				SELECT e.event_id FROM agentmesh.audit_events e
				 WHERE e.xact_id OPERATOR(pg_catalog.>=) cx
				   AND e.xact_id OPERATOR(pg_catalog.<) horizon
				   AND (e.xact_id OPERATOR(pg_catalog.>) cx OR e.event_id OPERATOR(pg_catalog.>) ce)
				 ORDER BY e.xact_id, e.event_id
				 LIMIT max_rows))
		 ORDER BY l.xact_id, l.event_id;
END
$lm_events$;

REVOKE ALL ON FUNCTION agentmesh.lm_events(pg_catalog.text, pg_catalog.int4) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentmesh.lm_events(pg_catalog.text, pg_catalog.int4)
	TO agentmesh_admin, agentmesh_auditor;

/* ---- catalog comments (issue 13) ----
 *
 * Every object the extension creates has a comment, so that \d+, \df+ and
 * BI catalogs describe themselves; sql/catalog_comments.sql fails on any
 * member, column or role without one.  Kept in one block, identical in the
 * install and the update script, so fresh and updated catalogs match.
 */
COMMENT ON SCHEMA agentmesh IS 'agentmesh_lifecycle: lifecycle of AI-agent identities';

COMMENT ON TYPE agentmesh.lifecycle_state IS 'Lifecycle state of an agent: pending_approval, provisioned, active, suspended, rotating_credentials, decommissioning, decommissioned, orphaned.';
COMMENT ON TYPE agentmesh.lifecycle_event_type IS 'Type of an audit event; the details keys of each type are listed in docs/audit.md.';
COMMENT ON TYPE agentmesh.credential_grant IS 'Result of lm_activate, lm_rotate_credentials and lm_reclaim: the agent and its new credential, with the token (returned once, never stored). Use SELECT * FROM agentmesh.lm_activate(...).';
COMMENT ON COLUMN agentmesh.credential_grant.agent_id IS 'The agent the credential was issued to.';
COMMENT ON COLUMN agentmesh.credential_grant.state IS 'The agent''s state after the operation.';
COMMENT ON COLUMN agentmesh.credential_grant.credential_id IS 'Id of the new credential (cred:<hex>); not secret.';
COMMENT ON COLUMN agentmesh.credential_grant.credential_issued_at IS 'When the credential was issued.';
COMMENT ON COLUMN agentmesh.credential_grant.credential_expires_at IS 'When the credential expires (issued_at + the policy''s max_credential_ttl).';
COMMENT ON COLUMN agentmesh.credential_grant.token IS 'The secret token (amk_...). Returned only here, only once; only its SHA-256 is stored.';

COMMENT ON TABLE agentmesh.policies IS 'Named lifecycle policies; row ''default'' always exists. Changes are audited.';
COMMENT ON COLUMN agentmesh.policies.name IS 'Policy name (lower-case letters, digits, _ . -); agents refer to it for life, so it cannot be renamed or deleted.';
COMMENT ON COLUMN agentmesh.policies.require_approval IS 'Requests start in pending_approval and need lm_approve (else they are provisioned at once).';
COMMENT ON COLUMN agentmesh.policies.require_owner IS 'A request needs an owner.';
COMMENT ON COLUMN agentmesh.policies.require_distinct_approver IS 'The actor who requested an agent cannot approve it.';
COMMENT ON COLUMN agentmesh.policies.heartbeat_interval IS 'Expected heartbeat period; silence longer than this records heartbeat_missed.';
COMMENT ON COLUMN agentmesh.policies.orphan_threshold IS 'Silence after which an active agent is an orphan candidate.';
COMMENT ON COLUMN agentmesh.policies.max_inactive_days IS 'Days without heartbeat or change after which an agent is reported inactive (1 to 36500).';
COMMENT ON COLUMN agentmesh.policies.max_credential_ttl IS 'Lifetime of an issued credential (positive, at most 366 days).';
COMMENT ON COLUMN agentmesh.policies.rotation_overlap IS 'How long the previous credential stays valid after a rotation; also the pre-expiry rotation window.';
COMMENT ON COLUMN agentmesh.policies.auto_rotate IS 'The maintenance pass rotates expiring credentials.';
COMMENT ON COLUMN agentmesh.policies.revoke_on_decommission IS 'Decommissioning revokes the agent''s credentials.';
COMMENT ON COLUMN agentmesh.policies.heartbeat_requires_token IS 'Heartbeats must carry a live token of the agent.';
COMMENT ON COLUMN agentmesh.policies.audit_heartbeats IS 'Write a heartbeat audit event for every heartbeat.';
COMMENT ON COLUMN agentmesh.policies.auto_decommission IS 'The maintenance pass decommissions orphans inactive past max_inactive_days.';
COMMENT ON COLUMN agentmesh.policies.created_at IS 'When the policy was created.';
COMMENT ON COLUMN agentmesh.policies.updated_at IS 'When the policy was last changed.';
COMMENT ON COLUMN agentmesh.policies.audit_seq IS 'Sequence number of the policy''s last audit event (its hash chain head); set by the trigger.';
COMMENT ON COLUMN agentmesh.policies.audit_head IS 'SHA-256 of the policy''s last audit event (its hash chain head); set by the trigger.';

COMMENT ON TABLE agentmesh.agents IS 'One row per agent identity; never deleted (decommissioned rows are tombstones).';
COMMENT ON COLUMN agentmesh.agents.agent_id IS 'Agent id: agent: followed by 128 random bits in hex.';
COMMENT ON COLUMN agentmesh.agents.name IS 'Display name given at request.';
COMMENT ON COLUMN agentmesh.agents.owner IS 'Accountable person or team; NULL only under a policy without require_owner.';
COMMENT ON COLUMN agentmesh.agents.purpose IS 'Free-text purpose given at request.';
COMMENT ON COLUMN agentmesh.agents.agent_type IS 'Kind of agent (default autonomous); free text.';
COMMENT ON COLUMN agentmesh.agents.state IS 'Current lifecycle state; changes only along lm_transitions().';
COMMENT ON COLUMN agentmesh.agents.policy IS 'Name of the policy (agentmesh.policies) that governs the agent.';
COMMENT ON COLUMN agentmesh.agents.credential_id IS 'Id of the newest credential, or NULL before activation.';
COMMENT ON COLUMN agentmesh.agents.credential_issued_at IS 'When the newest credential was issued.';
COMMENT ON COLUMN agentmesh.agents.credential_expires_at IS 'When the newest credential expires.';
COMMENT ON COLUMN agentmesh.agents.last_heartbeat IS 'Time of the last heartbeat, or NULL if none was ever sent.';
COMMENT ON COLUMN agentmesh.agents.heartbeat_count IS 'Number of heartbeats received.';
COMMENT ON COLUMN agentmesh.agents.created_at IS 'When the agent was requested.';
COMMENT ON COLUMN agentmesh.agents.updated_at IS 'When the row last changed other than by a heartbeat.';
COMMENT ON COLUMN agentmesh.agents.activated_at IS 'When the agent was first activated.';
COMMENT ON COLUMN agentmesh.agents.decommissioned_at IS 'When the agent was decommissioned or rejected.';
COMMENT ON COLUMN agentmesh.agents.tags IS 'Caller-defined labels (a flat jsonb object).';
COMMENT ON COLUMN agentmesh.agents.requested_by IS 'Actor who requested the agent (checked by require_distinct_approver).';
COMMENT ON COLUMN agentmesh.agents.heartbeat_missed_at IS 'When the maintenance pass last recorded a missed heartbeat; cleared by the next heartbeat.';
COMMENT ON COLUMN agentmesh.agents.audit_seq IS 'Sequence number of the agent''s last audit event (its hash chain head); set by the trigger.';
COMMENT ON COLUMN agentmesh.agents.audit_head IS 'SHA-256 of the agent''s last audit event (its hash chain head); set by the trigger.';

COMMENT ON TABLE agentmesh.credentials IS 'Issued credentials; token_hash is SHA-256 of the token, which is never stored.';
COMMENT ON COLUMN agentmesh.credentials.credential_id IS 'Credential id: cred: followed by random hex; not secret.';
COMMENT ON COLUMN agentmesh.credentials.agent_id IS 'The agent the credential belongs to.';
COMMENT ON COLUMN agentmesh.credentials.token_hash IS 'SHA-256 of the token (32 bytes); the token itself is never stored.';
COMMENT ON COLUMN agentmesh.credentials.issued_at IS 'When the credential was issued.';
COMMENT ON COLUMN agentmesh.credentials.expires_at IS 'When the credential stops verifying.';
COMMENT ON COLUMN agentmesh.credentials.superseded_at IS 'When a rotation replaced it; it verifies until the end of the rotation overlap.';
COMMENT ON COLUMN agentmesh.credentials.revoked_at IS 'When it was revoked, or NULL.';
COMMENT ON COLUMN agentmesh.credentials.revoke_reason IS 'Why it was revoked (operator text, or decommissioned / reclaimed / rotated).';
COMMENT ON COLUMN agentmesh.credentials.expired_recorded IS 'A credential_expired event was written for it (at most once).';

COMMENT ON SEQUENCE agentmesh.audit_events_event_id_seq IS 'Assigns audit_events.event_id at insert: ids are unique but do not follow commit order (see lm_events).';
COMMENT ON TABLE agentmesh.audit_events IS 'Immutable, hash-chained audit trail written by triggers in the transaction of each change.';
COMMENT ON COLUMN agentmesh.audit_events.event_id IS 'Unique id, assigned at insert (not in commit order).';
COMMENT ON COLUMN agentmesh.audit_events.agent_id IS 'The agent the event is about, or NULL for a policy event.';
COMMENT ON COLUMN agentmesh.audit_events.policy IS 'The policy the event is about (policy_changed), or NULL for an agent event.';
COMMENT ON COLUMN agentmesh.audit_events.seq IS 'Position in the subject''s hash chain: 1, 2, ... per agent or policy.';
COMMENT ON COLUMN agentmesh.audit_events.event_type IS 'What happened.';
COMMENT ON COLUMN agentmesh.audit_events.occurred_at IS 'Transaction time of the change.';
COMMENT ON COLUMN agentmesh.audit_events.actor IS 'The person or system the caller said it acted for (a claim), or session_user.';
COMMENT ON COLUMN agentmesh.audit_events.db_user IS 'The authenticated session_user that made the change.';
COMMENT ON COLUMN agentmesh.audit_events.previous_state IS 'State before the event, or NULL if the state did not change.';
COMMENT ON COLUMN agentmesh.audit_events.new_state IS 'State after the event, or NULL if the state did not change.';
COMMENT ON COLUMN agentmesh.audit_events.details IS 'Event-specific data; keys per event type in docs/audit.md. Never holds a token.';
COMMENT ON COLUMN agentmesh.audit_events.prev_hash IS 'Hash of the previous event of the same subject, or NULL for the first.';
COMMENT ON COLUMN agentmesh.audit_events.hash IS 'SHA-256 of the canonical encoding of this event and prev_hash (docs/audit.md).';
COMMENT ON COLUMN agentmesh.audit_events.xact_id IS 'Id of the inserting transaction; seals and lm_events read events by it.';

COMMENT ON SEQUENCE agentmesh.audit_seals_seal_id_seq IS 'Assigns audit_seals.seal_id.';
COMMENT ON TABLE agentmesh.audit_seals IS 'Chained SHA-256 seals over ranges of finished transactions'' audit events; written by the maintenance pass.';
COMMENT ON COLUMN agentmesh.audit_seals.seal_id IS 'Seal number, in chain order.';
COMMENT ON COLUMN agentmesh.audit_seals.sealed_at IS 'When the seal was written.';
COMMENT ON COLUMN agentmesh.audit_seals.xmin_from IS 'First transaction id of the sealed range (inclusive).';
COMMENT ON COLUMN agentmesh.audit_seals.xmin_to IS 'End of the sealed range (exclusive): the sealing snapshot''s xmin.';
COMMENT ON COLUMN agentmesh.audit_seals.event_count IS 'Number of events sealed.';
COMMENT ON COLUMN agentmesh.audit_seals.first_event_id IS 'Smallest event_id sealed.';
COMMENT ON COLUMN agentmesh.audit_seals.last_event_id IS 'Largest event_id sealed.';
COMMENT ON COLUMN agentmesh.audit_seals.prev_seal_hash IS 'seal_hash of the previous seal, or NULL for the first; unique, so the chain cannot fork.';
COMMENT ON COLUMN agentmesh.audit_seals.seal_hash IS 'SHA-256 over the range and the sealed events'' ids and hashes, chained to prev_seal_hash (docs/audit.md).';

COMMENT ON VIEW agentmesh.worker_status IS 'Per database: the maintenance worker, its last pass and its last error.';
COMMENT ON COLUMN agentmesh.worker_status.datid IS 'OID of the database.';
COMMENT ON COLUMN agentmesh.worker_status.datname IS 'Name of the database.';
COMMENT ON COLUMN agentmesh.worker_status.pid IS 'Process id of the database''s worker, or NULL when none runs.';
COMMENT ON COLUMN agentmesh.worker_status.state IS 'What the worker is doing: starting, probing, idle, running, stopped, ...';
COMMENT ON COLUMN agentmesh.worker_status.passes IS 'Maintenance passes completed since the server started.';
COMMENT ON COLUMN agentmesh.worker_status.last_pass_start IS 'When the last completed pass started.';
COMMENT ON COLUMN agentmesh.worker_status.last_pass_duration IS 'How long the last completed pass took.';
COMMENT ON COLUMN agentmesh.worker_status.orphaned IS 'Agents the last pass marked orphaned.';
COMMENT ON COLUMN agentmesh.worker_status.decommissioned IS 'Agents the last pass decommissioned.';
COMMENT ON COLUMN agentmesh.worker_status.heartbeats_missed IS 'Missed heartbeats the last pass recorded.';
COMMENT ON COLUMN agentmesh.worker_status.rotated IS 'Credentials the last pass rotated.';
COMMENT ON COLUMN agentmesh.worker_status.issued IS 'Credentials the last pass issued to agents without one.';
COMMENT ON COLUMN agentmesh.worker_status.expired IS 'Credential expiries the last pass recorded.';
COMMENT ON COLUMN agentmesh.worker_status.seals IS 'Audit seals the last pass wrote (0 or 1).';
COMMENT ON COLUMN agentmesh.worker_status.errors IS 'Passes that failed since the server started.';
COMMENT ON COLUMN agentmesh.worker_status.last_error IS 'Message of the last failed pass.';
COMMENT ON COLUMN agentmesh.worker_status.last_error_at IS 'When the last pass failed.';

COMMENT ON FUNCTION agentmesh.agents_guard() IS 'Trigger on agents: checks every change against the transition table, writes its audit events, keeps audit rows immutable. Not callable.';
COMMENT ON FUNCTION agentmesh.policies_guard() IS 'Trigger on policies: validates values, refuses renames and deletes, writes policy_changed events. Not callable.';
COMMENT ON FUNCTION agentmesh.audit_immutable() IS 'Trigger refusing UPDATE, DELETE and TRUNCATE of audit rows (55000). Not callable.';
COMMENT ON FUNCTION agentmesh.drop_guard() IS 'Event trigger function refusing DROP EXTENSION/SCHEMA while audit rows exist, unless agentmesh_lifecycle.allow_drop is on.';

COMMENT ON FUNCTION agentmesh.lm_request(pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.jsonb, pg_catalog.text, pg_catalog.text) IS 'lm_request(name, owner, purpose DEFAULT '''', agent_type DEFAULT ''autonomous'', actor DEFAULT session_user, tags DEFAULT ''{}'', policy DEFAULT ''default'', team DEFAULT NULL): requests a new agent for a team (a role the session user is a member of; NULL: the session user) under a policy it may use; returns its row, in pending_approval (or provisioned when the policy needs no approval).';
COMMENT ON FUNCTION agentmesh.lm_approve(pg_catalog.text, pg_catalog.text) IS 'lm_approve(agent_id, actor DEFAULT session_user): pending_approval -> provisioned; returns the agent row.';
COMMENT ON FUNCTION agentmesh.lm_reject(pg_catalog.text, pg_catalog.text, pg_catalog.text) IS 'lm_reject(agent_id, reason DEFAULT '''', actor DEFAULT session_user): pending_approval -> decommissioned; returns the agent row.';
COMMENT ON FUNCTION agentmesh.lm_activate(pg_catalog.text, pg_catalog.text) IS 'lm_activate(agent_id, actor DEFAULT session_user): provisioned -> active with a first credential. Returns credential_grant: SELECT * FROM agentmesh.lm_activate($1).';
COMMENT ON FUNCTION agentmesh.lm_heartbeat(pg_catalog.text, pg_catalog.text) IS 'lm_heartbeat(agent_id, token DEFAULT NULL): records a heartbeat of an active, suspended or orphaned agent (token checked if given; an agent login must give one under every policy); returns heartbeat_result: SELECT * FROM agentmesh.lm_heartbeat($1, $2).';
COMMENT ON FUNCTION agentmesh.lm_suspend(pg_catalog.text, pg_catalog.text, pg_catalog.text) IS 'lm_suspend(agent_id, reason DEFAULT '''', actor DEFAULT session_user): active -> suspended; returns the agent row.';
COMMENT ON FUNCTION agentmesh.lm_resume(pg_catalog.text, pg_catalog.text) IS 'lm_resume(agent_id, actor DEFAULT session_user): suspended -> active; returns the agent row.';
COMMENT ON FUNCTION agentmesh.lm_decommission(pg_catalog.text, pg_catalog.text, pg_catalog.text) IS 'lm_decommission(agent_id, reason DEFAULT '''', actor DEFAULT session_user): any live state -> decommissioned (credentials revoked per policy); returns the agent row.';
COMMENT ON FUNCTION agentmesh.lm_change_owner(pg_catalog.text, pg_catalog.text, pg_catalog.text) IS 'lm_change_owner(agent_id, new_owner, actor DEFAULT session_user): sets a new owner; returns the agent row.';
COMMENT ON FUNCTION agentmesh.lm_rotate_credentials(pg_catalog.text, pg_catalog.text) IS 'lm_rotate_credentials(agent_id, actor DEFAULT session_user): issues a new credential, the previous one valid for rotation_overlap. Returns credential_grant: SELECT * FROM agentmesh.lm_rotate_credentials($1).';
COMMENT ON FUNCTION agentmesh.lm_revoke_credentials(pg_catalog.text, pg_catalog.text, pg_catalog.text) IS 'lm_revoke_credentials(agent_id, reason, actor DEFAULT session_user): revokes every credential of the agent at once; returns the agent row.';
COMMENT ON FUNCTION agentmesh.lm_verify_credential(pg_catalog.text) IS 'lm_verify_credential(token): the agent id the token belongs to if it is live and the agent active, else NULL; never raises, writes nothing.';
COMMENT ON FUNCTION agentmesh.lm_check_and_rotate(pg_catalog.timestamptz, pg_catalog.bool) IS 'lm_check_and_rotate(as_of DEFAULT now(), allow_future DEFAULT false): applies the rotation policy to every active agent (an as_of more than 5 minutes ahead needs allow_future => true); returns (agent_id, action issued/rotated/expired/ok, detail).';
COMMENT ON FUNCTION agentmesh.lm_detect_orphans(pg_catalog.timestamptz) IS 'lm_detect_orphans(as_of DEFAULT now()): read-only; one row per orphan reason (silent, never_heartbeat, no_owner, inactive) of each live agent.';
COMMENT ON FUNCTION agentmesh.lm_mark_orphaned(pg_catalog.text, pg_catalog.text) IS 'lm_mark_orphaned(agent_id, actor DEFAULT session_user): active -> orphaned; returns the agent row.';
COMMENT ON FUNCTION agentmesh.lm_reclaim(pg_catalog.text, pg_catalog.text, pg_catalog.text) IS 'lm_reclaim(agent_id, new_owner, actor DEFAULT session_user): orphaned -> active with a new owner and credential, old credentials revoked. Returns credential_grant: SELECT * FROM agentmesh.lm_reclaim($1, $2).';
COMMENT ON FUNCTION agentmesh.lm_get(pg_catalog.text) IS 'lm_get(agent_id): the agent row, or NULL. SELECT * FROM agentmesh.lm_get($1).';
COMMENT ON FUNCTION agentmesh.lm_list_by_state(agentmesh.lifecycle_state) IS 'lm_list_by_state(state): the agents in that state.';
COMMENT ON FUNCTION agentmesh.lm_list_by_owner(pg_catalog.text) IS 'lm_list_by_owner(owner): the agents of that owner.';
COMMENT ON FUNCTION agentmesh.lm_audit_trail(pg_catalog.text) IS 'lm_audit_trail(agent_id): the agent''s audit events in chain order.';
COMMENT ON FUNCTION agentmesh.lm_summary() IS 'lm_summary(): jsonb with total_agents, by_state and by_owner counts. For monitoring use agentmesh.fleet_metrics.';
COMMENT ON FUNCTION agentmesh.lm_verify_audit(pg_catalog.text) IS 'lm_verify_audit(agent_id DEFAULT NULL): recomputes the hash chains (and, without an agent, the seals); returns (intact, events_checked, broken_event_id, broken_agent_id, broken_policy, broken_seq, problem): SELECT * FROM agentmesh.lm_verify_audit().';
COMMENT ON FUNCTION agentmesh.lm_transitions() IS 'lm_transitions(): the transition table the code enforces, one row per (operation, from_state) with to_state and the events (text[]) it writes.';
COMMENT ON FUNCTION agentmesh.lm_run_maintenance(pg_catalog.timestamptz, pg_catalog.int4, pg_catalog.bool) IS 'lm_run_maintenance(as_of DEFAULT now(), batch_size DEFAULT 1000, allow_future DEFAULT false): one maintenance pass (an as_of more than 5 minutes ahead needs allow_future => true) in the caller''s transaction; returns its counts: SELECT * FROM agentmesh.lm_run_maintenance(). Schedulers use CALL agentmesh.run_maintenance().';
COMMENT ON FUNCTION agentmesh.lm_worker_status() IS 'lm_worker_status(): the workers'' shared-memory state and recorded run_maintenance runs; read it through the view agentmesh.worker_status.';

COMMENT ON ROLE agentmesh_admin IS 'agentmesh_lifecycle group role: every operation, policy changes, reads of everything (docs/roles.md).';
COMMENT ON ROLE agentmesh_approver IS 'agentmesh_lifecycle group role: approves or rejects requested agents, reads agents and policies.';
COMMENT ON ROLE agentmesh_requester IS 'agentmesh_lifecycle group role: requests, activates and rotates agents, verifies credentials.';
COMMENT ON ROLE agentmesh_agent IS 'agentmesh_lifecycle group role for agents themselves: heartbeats and credential verification only.';
COMMENT ON ROLE agentmesh_auditor IS 'agentmesh_lifecycle group role: read-only access to agents, credentials (hashes), the audit trail, seals and the views.';

COMMENT ON SEQUENCE agentmesh.maintenance_runs_run_id_seq IS 'Assigns maintenance_runs.run_id.';
COMMENT ON TABLE agentmesh.maintenance_runs IS 'Runs of CALL agentmesh.run_maintenance() (pg_cron and other schedulers); the last 1000 are kept. worker_status shows the last one.';
COMMENT ON COLUMN agentmesh.maintenance_runs.run_id IS 'Run number.';
COMMENT ON COLUMN agentmesh.maintenance_runs.started_at IS 'When the run started; also the as_of time of its pass.';
COMMENT ON COLUMN agentmesh.maintenance_runs.finished_at IS 'When it ended (successfully or not); NULL while it runs or if its backend died.';
COMMENT ON COLUMN agentmesh.maintenance_runs.pid IS 'Process id of the backend that ran it.';
COMMENT ON COLUMN agentmesh.maintenance_runs.db_user IS 'session_user of the caller (pg_cron: the job''s username).';
COMMENT ON COLUMN agentmesh.maintenance_runs.batch_size IS 'Agents per batch (one transaction each).';
COMMENT ON COLUMN agentmesh.maintenance_runs.batches IS 'Batches committed.';
COMMENT ON COLUMN agentmesh.maintenance_runs.orphaned IS 'Agents marked orphaned, in committed batches.';
COMMENT ON COLUMN agentmesh.maintenance_runs.decommissioned IS 'Agents decommissioned, in committed batches.';
COMMENT ON COLUMN agentmesh.maintenance_runs.heartbeats_missed IS 'Missed heartbeats recorded, in committed batches.';
COMMENT ON COLUMN agentmesh.maintenance_runs.rotated IS 'Credentials rotated, in committed batches.';
COMMENT ON COLUMN agentmesh.maintenance_runs.issued IS 'Credentials issued, in committed batches.';
COMMENT ON COLUMN agentmesh.maintenance_runs.expired IS 'Credential expiries recorded, in committed batches.';
COMMENT ON COLUMN agentmesh.maintenance_runs.seals IS 'Audit seals written (0 or 1).';
COMMENT ON COLUMN agentmesh.maintenance_runs.error IS 'Message of the error that ended the run, or NULL.';
COMMENT ON PROCEDURE agentmesh.run_maintenance(pg_catalog.int4) IS 'run_maintenance(batch_size DEFAULT 1000): CALL it (outside a transaction block) from pg_cron or another scheduler; one maintenance pass, committing after every batch, recorded in maintenance_runs and shown by worker_status.';

COMMENT ON VIEW agentmesh.audit_log IS 'The audit trail for BI tools: one row per event, typed (text states, text[] lists, numbers, hex hashes, bigint xact_id), with the agent''s name and owner at the time of the event. security_invoker: shows what the caller may read of audit_events.';
COMMENT ON COLUMN agentmesh.audit_log.event_id IS 'Unique event id (insert order, not commit order).';
COMMENT ON COLUMN agentmesh.audit_log.occurred_at IS 'Transaction time of the change.';
COMMENT ON COLUMN agentmesh.audit_log.event_type IS 'What happened (lifecycle_event_type as text).';
COMMENT ON COLUMN agentmesh.audit_log.agent_id IS 'The agent, or NULL for a policy event.';
COMMENT ON COLUMN agentmesh.audit_log.policy IS 'The policy of a policy_changed event, else NULL.';
COMMENT ON COLUMN agentmesh.audit_log.seq IS 'Position in the subject''s hash chain.';
COMMENT ON COLUMN agentmesh.audit_log.agent_name IS 'The agent''s name at the time of the event.';
COMMENT ON COLUMN agentmesh.audit_log.owner IS 'The agent''s owner at the time of the event.';
COMMENT ON COLUMN agentmesh.audit_log.team IS 'The agent''s team (a role) at the time of the event; for agents from before 1.1, the team the update gave them.';
COMMENT ON COLUMN agentmesh.audit_log.actor IS 'Who the caller said it acted for (a claim).';
COMMENT ON COLUMN agentmesh.audit_log.db_user IS 'The authenticated session_user (through a pooler: the pooler''s server login unless it forwards users).';
COMMENT ON COLUMN agentmesh.audit_log.previous_state IS 'State before, or NULL if unchanged.';
COMMENT ON COLUMN agentmesh.audit_log.new_state IS 'State after, or NULL if unchanged.';
COMMENT ON COLUMN agentmesh.audit_log.reason IS 'details.reason: the operator''s or the maintenance pass''s reason.';
COMMENT ON COLUMN agentmesh.audit_log.reason_codes IS 'details.reason_codes of orphan_detected, as text[] (silent, never_heartbeat, no_owner).';
COMMENT ON COLUMN agentmesh.audit_log.silent_seconds IS 'details.silent_seconds of heartbeat_missed.';
COMMENT ON COLUMN agentmesh.audit_log.old_owner IS 'details.old_owner of owner_changed.';
COMMENT ON COLUMN agentmesh.audit_log.new_owner IS 'details.new_owner of owner_changed.';
COMMENT ON COLUMN agentmesh.audit_log.credential_id IS 'The credential issued (new_credential) or expired (credential_id).';
COMMENT ON COLUMN agentmesh.audit_log.old_credential_id IS 'The credential a rotation or reclaim replaced.';
COMMENT ON COLUMN agentmesh.audit_log.credentials_revoked IS 'Credentials revoked by the event.';
COMMENT ON COLUMN agentmesh.audit_log.policy_rule IS 'Policy rule that made the maintenance pass act (auto_decommission).';
COMMENT ON COLUMN agentmesh.audit_log.changed_columns IS 'Columns changed (attributes_changed, policy_changed).';
COMMENT ON COLUMN agentmesh.audit_log.old_values IS 'Old values of the changed columns (1.1 events).';
COMMENT ON COLUMN agentmesh.audit_log.new_values IS 'New values of the changed columns (1.1 events; a new policy: all of them).';
COMMENT ON COLUMN agentmesh.audit_log.details IS 'All details as jsonb; keys per event type in docs/audit.md.';
COMMENT ON COLUMN agentmesh.audit_log.prev_hash IS 'Previous event''s hash in the chain, hex.';
COMMENT ON COLUMN agentmesh.audit_log.hash IS 'The event''s SHA-256, hex.';
COMMENT ON COLUMN agentmesh.audit_log.xact_id IS 'Inserting transaction id (xid8) as bigint.';
COMMENT ON COLUMN agentmesh.audit_log.event_cursor IS 'Position in the event feed (xact_id:event_id); pass the last one to lm_events().';

COMMENT ON VIEW agentmesh.fleet IS 'One row per agent: state, owner, policy, credential expiry, seconds since the last heartbeat, current orphan reasons. security_invoker.';
COMMENT ON COLUMN agentmesh.fleet.agent_id IS 'Agent id.';
COMMENT ON COLUMN agentmesh.fleet.name IS 'Display name.';
COMMENT ON COLUMN agentmesh.fleet.state IS 'Current state, as text.';
COMMENT ON COLUMN agentmesh.fleet.owner IS 'Current owner.';
COMMENT ON COLUMN agentmesh.fleet.team IS 'Current team (a role); NULL: managed by admins only.';
COMMENT ON COLUMN agentmesh.fleet.policy IS 'Policy name.';
COMMENT ON COLUMN agentmesh.fleet.agent_type IS 'Kind of agent.';
COMMENT ON COLUMN agentmesh.fleet.purpose IS 'Purpose given at request.';
COMMENT ON COLUMN agentmesh.fleet.tags IS 'Caller-defined labels.';
COMMENT ON COLUMN agentmesh.fleet.created_at IS 'When requested.';
COMMENT ON COLUMN agentmesh.fleet.activated_at IS 'When first activated.';
COMMENT ON COLUMN agentmesh.fleet.decommissioned_at IS 'When decommissioned.';
COMMENT ON COLUMN agentmesh.fleet.credential_id IS 'Newest credential.';
COMMENT ON COLUMN agentmesh.fleet.credential_expires_at IS 'When the newest credential expires.';
COMMENT ON COLUMN agentmesh.fleet.credential_expires_in_seconds IS 'Seconds until it expires (negative: expired).';
COMMENT ON COLUMN agentmesh.fleet.last_heartbeat IS 'Last heartbeat, or NULL.';
COMMENT ON COLUMN agentmesh.fleet.seconds_since_heartbeat IS 'Seconds since the last heartbeat, or NULL if none.';
COMMENT ON COLUMN agentmesh.fleet.last_used_at IS 'Last successful use of any of the agent''s credentials (verification, renewal, claim); NULL if never.';
COMMENT ON COLUMN agentmesh.fleet.seconds_since_last_use IS 'Seconds since last_used_at; NULL if never used.';
COMMENT ON COLUMN agentmesh.fleet.heartbeat_count IS 'Heartbeats received.';
COMMENT ON COLUMN agentmesh.fleet.orphan_reasons IS 'Orphan reasons that hold now (lm_detect_orphans), empty if none.';

COMMENT ON VIEW agentmesh.fleet_metrics IS 'Gauges for monitoring, one row per (metric, label), zeros included: agents by state, orphan candidates by reason, credentials expiring in 1h/24h, expired, age of the last pass and seal, worker errors.';
COMMENT ON COLUMN agentmesh.fleet_metrics.metric IS 'Metric name: agents, orphan_candidates, credentials_expiring, credentials_expired, last_pass_age_seconds, last_seal_age_seconds, worker_errors.';
COMMENT ON COLUMN agentmesh.fleet_metrics.label IS 'The state, reason or window the value is for; empty for single-valued metrics.';
COMMENT ON COLUMN agentmesh.fleet_metrics.value IS 'The gauge value; NULL for an age before the first pass or seal.';

COMMENT ON FUNCTION agentmesh.lm_events(pg_catalog.text, pg_catalog.int4) IS 'lm_events(after DEFAULT NULL, max_rows DEFAULT 1000): audit_log rows after the cursor, in commit-safe order, never skipping or repeating one; pass the last row''s event_cursor next time. SELECT * FROM agentmesh.lm_events($1).';

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
COMMENT ON FUNCTION agentmesh.lm_renew(pg_catalog.text) IS 'Self-renewal: a live token of an active agent gets its successor (the presented token stays valid for the rotation overlap).';
CREATE FUNCTION agentmesh.lm_claim_credential(token pg_catalog.text)
	RETURNS agentmesh.credential_grant LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_claim_credential';
COMMENT ON FUNCTION agentmesh.lm_claim_credential(pg_catalog.text) IS 'Returns, exactly once, the successor the maintenance pass sealed under the presented token, and erases the sealed copy.';
REVOKE ALL ON FUNCTION agentmesh.lm_renew(pg_catalog.text),
	agentmesh.lm_claim_credential(pg_catalog.text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentmesh.lm_renew(pg_catalog.text),
	agentmesh.lm_claim_credential(pg_catalog.text) TO agentmesh_admin, agentmesh_agent;

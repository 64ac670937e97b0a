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
COMMENT ON FUNCTION agentmesh.lm_verify_audit_problems(pg_catalog.text) IS 'Every problem of the audit trail, one row each: chains, heads, references, seals and the Merkle tree (docs/audit.md).';

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
COMMENT ON FUNCTION agentmesh.lm_audit_consistency_proof(pg_catalog.int8, pg_catalog.int8) IS 'RFC 9162 consistency proof between two sizes of the audit tree (new_size NULL: the current size).';
CREATE FUNCTION agentmesh.lm_audit_inclusion_proof(event_id pg_catalog.int8,
		tree_size pg_catalog.int8 DEFAULT NULL,
		OUT event_id pg_catalog.int8, OUT leaf_index pg_catalog.int8,
		OUT tree_size pg_catalog.int8, OUT leaf_hash pg_catalog.bytea,
		OUT proof pg_catalog.bytea[])
	RETURNS record LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'lm_audit_inclusion_proof';
COMMENT ON FUNCTION agentmesh.lm_audit_inclusion_proof(pg_catalog.int8, pg_catalog.int8) IS 'RFC 9162 inclusion proof of a sealed audit event in the audit tree (tree_size NULL: the current size).';

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

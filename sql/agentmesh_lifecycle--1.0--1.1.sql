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

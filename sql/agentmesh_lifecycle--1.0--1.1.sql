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

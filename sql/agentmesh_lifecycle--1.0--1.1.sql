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
COMMENT ON FUNCTION agentmesh.team_visible(pg_catalog.name) IS 'Row-security predicate: may the session user see an agent of this team (admin, approver, auditor, or member of the team)?';
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
COMMENT ON FUNCTION agentmesh.lm_change_team(pg_catalog.text, pg_catalog.text, pg_catalog.text) IS 'Move an agent to another team (a role); admins only; audited as team_changed.';
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
COMMENT ON FUNCTION agentmesh.lm_request(pg_catalog.text, pg_catalog.text, pg_catalog.text,
	pg_catalog.text, pg_catalog.text, pg_catalog.jsonb, pg_catalog.text, pg_catalog.text) IS 'Request a new agent identity for a team (a role the session user is a member of; NULL: the session user) under a policy it may use.';

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
	credential_expires_at pg_catalog.timestamptz
);
COMMENT ON TYPE agentmesh.heartbeat_result IS 'Result of lm_heartbeat(): the agent''s state, its heartbeat deadline and the credential presented.';
REVOKE ALL ON TYPE agentmesh.heartbeat_result FROM PUBLIC;
GRANT USAGE ON TYPE agentmesh.heartbeat_result
	TO agentmesh_admin, agentmesh_approver, agentmesh_requester, agentmesh_agent, agentmesh_auditor;

CREATE FUNCTION agentmesh.lm_heartbeat(agent_id pg_catalog.text, token pg_catalog.text DEFAULT NULL)
	RETURNS agentmesh.heartbeat_result LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'lm_heartbeat';
COMMENT ON FUNCTION agentmesh.lm_heartbeat(pg_catalog.text, pg_catalog.text) IS 'Record a heartbeat; an agent login proves who it is with its token, under every policy.';
REVOKE ALL ON FUNCTION agentmesh.lm_heartbeat(pg_catalog.text, pg_catalog.text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION agentmesh.lm_heartbeat(pg_catalog.text, pg_catalog.text)
	TO agentmesh_admin, agentmesh_agent;

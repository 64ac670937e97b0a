/*-------------------------------------------------------------------------
 *
 * authz.c
 *		Authorization decisions: who the caller is (admin, approver,
 *		auditor, requester), which agents it may see and manage, which
 *		policies it may use and approve under.
 *
 * EXECUTE on an lm_* function says which operations a role may call at all
 * (docs/roles.md); this file says on which agents.  Every decision is about
 * the session user, the login that authenticated (the same identity the
 * audit rows record as db_user), not the current user: SET ROLE to a
 * narrower role does not narrow what a login may do, and a SECURITY DEFINER
 * wrapper does not widen it.
 *
 * Teams are PostgreSQL roles.  Membership is pg_has_role(session_user,
 * team, 'MEMBER'): is_member_of_role(), which recurses through granted
 * roles whatever their INHERIT setting and holds for a superuser, answered
 * from the backend's role-membership cache (invalidated when pg_auth_members
 * changes), so a check costs no catalog scan once warm.
 *
 * The lowest layer with validate.c and spi_util.c: it reads no table of
 * the extension, only the role catalogs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/catalog.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "agentmesh.h"

/* Is user a member of the named role?  False when there is no such role. */
bool
am_member_of(Oid user, const char *role)
{
	Oid			roleid;

	if (role == NULL)
		return false;
	roleid = get_role_oid(role, true);
	return OidIsValid(roleid) && is_member_of_role(user, roleid);
}

/*
 * The last caller looked up, kept until a role or a membership changes:
 * the heartbeat and the row-security predicate ask on every call and every
 * row.  The syscache callbacks fire for changes committed by any backend
 * and for this backend's own, at once.
 */
static AmCaller cached_caller;
static bool cached_valid = false;
static bool callbacks_registered = false;

static void
caller_cache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	cached_valid = false;
}

/* The session user's standing. */
void
am_caller(AmCaller *c)
{
	Oid			user = GetSessionUserId();

	if (!callbacks_registered)
	{
		CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, caller_cache_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, caller_cache_callback, (Datum) 0);
		callbacks_registered = true;
	}
	if (cached_valid && cached_caller.user == user)
	{
		*c = cached_caller;
		return;
	}
	c->user = user;
	c->admin = am_member_of(user, AM_ADMIN_ROLE);
	c->approver = am_member_of(user, "agentmesh_approver");
	c->auditor = am_member_of(user, "agentmesh_auditor");
	c->requester = am_member_of(user, "agentmesh_requester");
	c->sees_all = c->admin || c->approver || c->auditor;
	cached_caller = *c;
	cached_valid = true;
}

/* The name of the session user (audit rows, team defaults). */
char *
am_caller_name(const AmCaller *c)
{
	return GetUserNameFromId(c->user, false);
}

/*
 * May the caller see an agent of this team?  Admins, approvers and
 * auditors see every agent; anyone else the agents of the teams it is a
 * member of.  An agent without a team (team NULL) is seen only by the
 * former.
 */
bool
am_may_see(const AmCaller *c, const char *team)
{
	return c->sees_all || am_member_of(c->user, team);
}

/*
 * May the caller manage (activate, rotate, revoke, suspend, decommission,
 * heartbeat without a token) an agent of this team?  Admins, and members of
 * agentmesh_requester who are members of the team.
 */
bool
am_may_manage(const AmCaller *c, const char *team)
{
	return c->admin || (c->requester && am_member_of(c->user, team));
}

/*
 * What each operation on an existing agent needs (docs/roles.md, "Teams"):
 * a team manages its agents' credentials and can stop them; resuming,
 * reclaiming, marking orphaned and moving accountability (owner, team)
 * override an incident response or the maintenance pass, and stay with
 * admins; approving belongs to the policy's approvers.
 */
AmNeed
am_op_need(AmOp op)
{
	switch (op)
	{
		case AM_OP_ACTIVATE:
		case AM_OP_ROTATE:
		case AM_OP_REVOKE:
		case AM_OP_SUSPEND:
		case AM_OP_DECOMMISSION:
		case AM_OP_HEARTBEAT:
			return AM_NEED_MANAGE;
		case AM_OP_APPROVE:
		case AM_OP_REJECT:
			return AM_NEED_APPROVE;
		default:
			return AM_NEED_ADMIN;
	}
}

/*
 * 42501 unless the caller may do an operation that needs this on an agent
 * of this team (one it sees: an invisible agent was already reported as
 * unknown).  AM_NEED_APPROVE is decided against the policy, am_may_approve().
 */
void
am_require_op(const AmCaller *c, AmNeed need, const char *opname,
			  const char *agent_id, const char *team)
{
	bool		ok;

	switch (need)
	{
		case AM_NEED_MANAGE:
			ok = am_may_manage(c, team);
			break;
		case AM_NEED_ADMIN:
			ok = c->admin;
			break;
		default:
			ok = true;
			break;
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s agent \"%s\"", opname, agent_id),
				 need == AM_NEED_ADMIN ?
				 errdetail("Only members of agentmesh_admin may do this.") :
				 errdetail("Only admins and requesters of the agent's team may do this.")));
}

/* 42501 unless the caller is an admin. */
void
am_require_admin(const AmCaller *c, const char *funcname)
{
	if (!c->admin)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for %s", funcname),
				 errdetail("Only members of agentmesh_admin may call it.")));
}

/*
 * The team of a new agent: the session user when team is NULL, otherwise a
 * role the session user is a member of.  42704 for no such role, 42501 for
 * a role the caller is not a member of; neither echoes the name.
 */
char *
am_resolve_team(const AmCaller *c, const char *team)
{
	char	   *name;

	if (team == NULL)
		return am_caller_name(c);
	name = am_existing_role(team);
	if (!is_member_of_role(c->user, get_role_oid(name, false)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to request an agent for the requested team"),
				 errhint("A team is a role the session user is a member of.")));
	return name;
}

/*
 * An existing role's name that may be a team (lm_request, lm_change_team):
 * 42704 for no such role, 22023 for a role that is shared by every
 * requester or predefined; none of them echoes the name.
 */
char *
am_existing_role(const char *team)
{
	static const char *const shared_roles[] = {
		AM_ADMIN_ROLE, "agentmesh_approver", "agentmesh_requester",
		"agentmesh_agent", "agentmesh_auditor"
	};
	int			i;

	if (!OidIsValid(get_role_oid(team, true)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the requested team does not exist"),
				 errhint("A team is a PostgreSQL role.")));

	/*
	 * Not a role that every requester (or every login) shares: an agent of
	 * team agentmesh_requester would be every team's agent.
	 */
	for (i = 0; i < lengthof(shared_roles); i++)
		if (strcmp(team, shared_roles[i]) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the requested team is one of the extension's roles"),
					 errhint("A team is a role of its own, granted to the team's logins.")));
	if (IsReservedName(team))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the requested team is a predefined role"),
				 errhint("A team is a role of its own, granted to the team's logins.")));
	return pstrdup(team);
}

/*
 * Is the caller a member of one of the roles of a name[] (NULL or an
 * array)?  Roles that no longer exist match no one.
 */
static bool
member_of_any(const AmCaller *c, Datum roles)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	deconstruct_array(DatumGetArrayTypeP(roles), NAMEOID, NAMEDATALEN, false,
					  TYPALIGN_CHAR, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
		if (!nulls[i] && am_member_of(c->user, NameStr(*DatumGetName(elems[i]))))
			return true;
	return false;
}

/*
 * May the caller request an agent under a policy?  Admins may use every
 * policy.  Anyone else: a policy with allowed_roles only if a member of one
 * of them; a policy without (NULL) only if it requires approval, so that a
 * requester cannot skip the approval by naming a policy that has none.
 */
void
am_check_policy_use(const AmCaller *c, const AmPolicyAccess *acc, bool require_approval)
{
	bool		ok;

	if (c->admin)
		return;
	if (acc->has_allowed_roles)
		ok = member_of_any(c, acc->allowed_roles);
	else
		ok = require_approval;
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to use the requested policy"),
				 errdetail(require_approval ?
						   "The policy's allowed_roles do not include the session user." :
						   "A policy without approval is for the roles in its allowed_roles only."),
				 errhint("Use a policy that your roles may use, such as \"default\".")));
}

/*
 * May the caller approve or reject under a policy?  Its approver_role's
 * members, or, without one, admins and members of agentmesh_approver.
 */
bool
am_may_approve(const AmCaller *c, const AmPolicyAccess *acc)
{
	if (acc->approver_role != NULL)
		return am_member_of(c->user, acc->approver_role);
	return c->admin || c->approver;
}

/*
 * agentmesh.team_visible(team name) — the row-level security predicate of
 * agentmesh.agents and agentmesh.credentials: may the session user see an
 * agent of this team?  The same rule as every lm_* function (am_may_see).
 */
PG_FUNCTION_INFO_V1(agentmesh_team_visible);
Datum
agentmesh_team_visible(PG_FUNCTION_ARGS)
{
	AmCaller	c;

	am_caller(&c);
	PG_RETURN_BOOL(am_may_see(&c, PG_ARGISNULL(0) ? NULL : NameStr(*PG_GETARG_NAME(0))));
}

/*-------------------------------------------------------------------------
 *
 * lifecycle.c
 *		The SQL-callable lifecycle operations (agentmesh.lm_*).
 *
 * Each operation is one transaction step: validate the arguments, lock the
 * agent row (always before any credential row), check the transition table,
 * do the credential work, then one UPDATE of the agent row, during which the
 * agents trigger (audit.c) writes the audit events.  Nothing here writes an
 * audit row itself.
 *
 * Who may call which operation on which agent is decided in authz.c and
 * checked here when the row is locked: an agent the caller may not see is
 * never locked and is reported exactly as an unknown id (docs/roles.md).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "agentmesh.h"

/* ----------------------------------------------------------------
 * Policies
 * ----------------------------------------------------------------
 */
pg_noreturn static void
policy_not_found(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("the requested policy does not exist"),
			 errhint("Policies are rows of agentmesh.policies.")));
}

static void
load_policy_or_error(const char *name, AmPolicy *pol)
{
	if (!am_load_policy(name, pol))
		policy_not_found();
}

/* ----------------------------------------------------------------
 * Locking and updating one agent
 * ----------------------------------------------------------------
 */
typedef struct AmAgent
{
	char	   *agent_id;
	AmState		state;
	char	   *policy;
	char	   *owner;
	char	   *requested_by;
	char	   *credential_id;
	char	   *team;
} AmAgent;

pg_noreturn static void agent_not_found(const char *agent_id);

/*
 * $2: lock only a row the caller may see (lm_* calls), or any (the
 * maintenance pass).  A row that does not qualify is never locked, so that
 * a caller cannot even wait on another team's agent.
 */
static AmPlan lock_plan = {
	"SELECT state::text, policy, owner, requested_by, credential_id, team::text"
	"  FROM agentmesh.agents WHERE agent_id = $1"
	"   AND (NOT $2 OR agentmesh.team_visible(team)) FOR UPDATE",
	2, {TEXTOID, BOOLOID}
};

/*
 * Each statement that names a 1.1 column or function has a twin for the
 * 1.0 schema (see am_schema_is_1_1): no team, and with scoping only
 * those who see every agent see any.
 */
static AmPlan lock_plan_10 = {
	"SELECT state::text, policy, owner, requested_by, credential_id, NULL::text"
	"  FROM agentmesh.agents WHERE agent_id = $1"
	"   AND (NOT $2 OR $3) FOR UPDATE",
	3, {TEXTOID, BOOLOID, BOOLOID}
};

#define SCHEMA_PLAN(p) (am_schema_is_1_1() ? &(p) : &(p##_10))

static void
agent_not_found(const char *agent_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("agent \"%s\" does not exist", agent_id)));
}

/*
 * Lock the agent row (inside am_connect); 42704 when there is none, or,
 * with scoped, none the session user may see.
 */
static void
lock_agent(const char *agent_id, AmAgent *a, bool scoped)
{
	Datum		args[3];
	AmCaller	c;

	args[0] = CStringGetTextDatum(agent_id);
	args[1] = BoolGetDatum(scoped);
	am_caller(&c);
	args[2] = BoolGetDatum(c.sees_all);
	am_exec(SCHEMA_PLAN(lock_plan), args, NULL, false, 1);
	if (SPI_processed == 0)
		agent_not_found(agent_id);
	a->agent_id = pstrdup(agent_id);
	a->state = am_state_from_name(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	a->policy = am_getcol_text(2);
	a->owner = am_getcol_text(3);
	a->requested_by = am_getcol_text(4);
	a->credential_id = am_getcol_text(5);
	a->team = am_getcol_text(6);
}

/* Unscoped: the maintenance pass, and the shared paths it calls. */
static void
lock_agent_for(AmOp op, const char *agent_id, AmAgent *a)
{
	lock_agent(agent_id, a, false);
	if (!am_op_allowed(op, a->state))
		am_report_wrong_state(op, agent_id, a->state);
}

/*
 * The lock step of every lm_* call on an existing agent: lock the row if the
 * caller may see it (else 42704, as for an unknown id), check that it may do
 * this operation on it (authz.c; 42501), then the state (55000).  Every
 * check comes before anything is changed.
 */
static void
lock_agent_as(const AmCaller *c, AmOp op, const char *agent_id, AmAgent *a)
{
	/*
	 * (The place for "revocation wins", issue 10: an admin's revoke, suspend
	 * or decommission bounding the wait for this lock.)
	 */
	lock_agent(agent_id, a, true);
	am_require_op(c, am_op_need(op), am_transition(op)->name, agent_id, a->team);
	if (!am_op_allowed(op, a->state))
		am_report_wrong_state(op, agent_id, a->state);
}

/*
 * The one UPDATE every operation makes.  $3/$5 say whether the owner and the
 * credential columns change.
 */
static AmPlan apply_plan = {
	"UPDATE agentmesh.agents a SET state = $2::agentmesh.lifecycle_state,"
	" owner = CASE WHEN $3 THEN $4 ELSE a.owner END,"
	" credential_id = CASE WHEN $5 THEN $6 ELSE a.credential_id END,"
	" credential_issued_at = CASE WHEN $5 THEN $7 ELSE a.credential_issued_at END,"
	" credential_expires_at = CASE WHEN $5 THEN $8 ELSE a.credential_expires_at END,"
	" team = CASE WHEN $9 THEN $10::name ELSE a.team END"
	" WHERE a.agent_id = $1 RETURNING a",
	10, {TEXTOID, TEXTOID, BOOLOID, TEXTOID, BOOLOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	BOOLOID, TEXTOID}
};
static AmPlan apply_plan_10 = {
	"UPDATE agentmesh.agents a SET state = $2::agentmesh.lifecycle_state,"
	" owner = CASE WHEN $3 THEN $4 ELSE a.owner END,"
	" credential_id = CASE WHEN $5 THEN $6 ELSE a.credential_id END,"
	" credential_issued_at = CASE WHEN $5 THEN $7 ELSE a.credential_issued_at END,"
	" credential_expires_at = CASE WHEN $5 THEN $8 ELSE a.credential_expires_at END"
	" WHERE a.agent_id = $1 AND $9 IS NOT NULL AND ($10 IS NULL OR true) RETURNING a",
	10, {TEXTOID, TEXTOID, BOOLOID, TEXTOID, BOOLOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	BOOLOID, TEXTOID}
};

typedef struct AmChange
{
	bool		set_owner;
	const char *owner;
	bool		set_credential;
	const AmGrant *grant;		/* NULL with set_credential: clear them */
	bool		set_team;
	const char *team;
} AmChange;

/* Apply op to a locked agent; returns the new row, copied out of SPI. */
static Datum
apply_op(AmOp op, AmAgent *a, const char *actor, Jsonb *details, const AmChange *chg)
{
	const AmTransition *t = am_transition(op);
	int			to = t->to == AM_STATE_NONE ? (int) a->state : t->to;
	Datum		v[10];
	bool		n[10];
	bool		isnull;
	Datum		row;

	memset(n, 0, sizeof(n));
	v[0] = CStringGetTextDatum(a->agent_id);
	v[1] = CStringGetTextDatum(am_state_names[to]);
	v[2] = BoolGetDatum(chg && chg->set_owner);
	v[3] = am_text_datum(chg ? chg->owner : NULL);
	n[3] = !(chg && chg->owner);
	v[4] = BoolGetDatum(chg && chg->set_credential);
	n[5] = n[6] = n[7] = true;
	if (chg && chg->grant)
	{
		v[5] = CStringGetTextDatum(chg->grant->credential_id);
		v[6] = TimestampTzGetDatum(chg->grant->issued_at);
		v[7] = TimestampTzGetDatum(chg->grant->expires_at);
		n[5] = n[6] = n[7] = false;
	}
	v[8] = BoolGetDatum(chg && chg->set_team);
	v[9] = am_text_datum(chg ? chg->team : NULL);
	n[9] = !(chg && chg->team);

	am_set_audit_context(op, actor, details);
	am_exec(SCHEMA_PLAN(apply_plan), v, n, false, 0);
	am_clear_audit_context();
	if (SPI_processed != 1)
		elog(ERROR, "agent \"%s\" vanished while locked", a->agent_id);
	row = am_getcol(1, &isnull);
	a->state = (AmState) to;
	return SPI_datumTransfer(row, false, -1);
}

/* ----------------------------------------------------------------
 * Operations
 * ----------------------------------------------------------------
 */
static AmPlan insert_agent_plan = {
	"INSERT INTO agentmesh.agents (agent_id, name, owner, purpose, agent_type, state, policy,"
	" tags, team)"
	" VALUES ($1, $2, $3, $4, $5, $6::agentmesh.lifecycle_state, $7, $8, $9::name)"
	" RETURNING agents",
	9, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID}
};
static AmPlan insert_agent_plan_10 = {
	"INSERT INTO agentmesh.agents (agent_id, name, owner, purpose, agent_type, state, policy, tags)"
	" SELECT $1, $2, $3, $4, $5, $6::agentmesh.lifecycle_state, $7, $8 WHERE $9 IS NOT NULL"
	" RETURNING agents",
	9, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID}
};

PG_FUNCTION_INFO_V1(lm_request);
Datum
lm_request(PG_FUNCTION_ARGS)
{
	char	   *name = am_arg_text(fcinfo, 0, "name", true, AM_MAX_NAME_LEN, false);
	char	   *owner = am_arg_text(fcinfo, 1, "owner", false, AM_MAX_TEXT_LEN, false);
	char	   *purpose = am_arg_text(fcinfo, 2, "purpose", true, AM_MAX_TEXT_LEN, true);
	char	   *agent_type = am_arg_text(fcinfo, 3, "agent_type", true, AM_MAX_NAME_LEN, false);
	char	   *actor = am_actor(fcinfo, 4);
	Jsonb	   *tags = am_tags_arg(fcinfo, 5);
	char	   *policy = am_arg_text(fcinfo, 6, "policy", true, 63, false);
	/* (the 1.0 schema's lm_request has no team argument) */
	char	   *team = PG_NARGS() > 7 ?
		am_arg_text(fcinfo, 7, "team", false, NAMEDATALEN - 1, false) : NULL;
	AmCaller	caller;
	AmPolicy	pol;
	AmPolicyAccess acc;
	AmOp		op;
	char	   *agent_id;
	Datum		v[9];
	bool		n[9] = {false, false, false, false, false, false, false, false, false};
	AmPriv		priv;
	Datum		row;
	bool		isnull;

	am_require_writable("lm_request()");
	am_caller(&caller);
	load_policy_or_error(policy, &pol);
	if (!am_load_policy_access(policy, &acc))
		policy_not_found();
	am_check_policy_use(&caller, &acc, pol.require_approval);
	team = am_resolve_team(&caller, team);
	if (owner == NULL && pol.require_owner)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("owner is required by policy \"%s\"", policy),
				 errhint("Name the person or team accountable for the agent.")));
	op = pol.require_approval ? AM_OP_REQUEST : AM_OP_REQUEST_UNAPPROVED;
	agent_id = am_random_id("agent:", 16);

	v[0] = CStringGetTextDatum(agent_id);
	v[1] = CStringGetTextDatum(name);
	v[2] = am_text_datum(owner);
	n[2] = owner == NULL;
	v[3] = CStringGetTextDatum(purpose);
	v[4] = CStringGetTextDatum(agent_type);
	v[5] = CStringGetTextDatum(am_state_names[am_transition(op)->to]);
	v[6] = CStringGetTextDatum(policy);
	v[7] = JsonbPGetDatum(tags);
	v[8] = CStringGetTextDatum(team);

	am_connect(&priv);
	{
		/* the team goes into the chain from the first event on (1.1) */
		const char *k[3] = {"name", "owner", "team"};
		const char *dv[3] = {name, owner, team};

		am_set_audit_context(op, actor, am_jsonb_build(am_schema_is_1_1() ? 3 : 2, k, dv));
	}
	am_exec(SCHEMA_PLAN(insert_agent_plan), v, n, false, 0);
	am_clear_audit_context();
	row = SPI_datumTransfer(am_getcol(1, &isnull), false, -1);
	am_finish(&priv);
	PG_RETURN_DATUM(row);
}

/*
 * Lock an agent and apply an operation that changes no owner or credential
 * (inside am_connect).  Shared with the maintenance pass.
 */
Datum
am_transition_agent(AmOp op, const char *agent_id, const char *actor, Jsonb *details)
{
	AmAgent		a;

	lock_agent_for(op, agent_id, &a);
	return apply_op(op, &a, actor, details, NULL);
}

/*
 * 42501 unless the caller may approve or reject under the agent's policy
 * (its approver_role, or admins and approvers).
 */
static void
check_approver(const AmCaller *c, const AmAgent *a, AmPolicyAccess *acc)
{
	if (!am_load_policy_access(a->policy, acc))
		elog(ERROR, "policy of agent \"%s\" is missing", a->agent_id);
	if (!am_may_approve(c, acc))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to approve or reject agent \"%s\"", a->agent_id),
				 errdetail("The agent's policy names the role whose members decide on its requests."),
				 errhint("Ask a member of the policy's approver_role.")));
}

/* Operations that only move the state: lock, check, update. */
static Datum
simple_transition(FunctionCallInfo fcinfo, AmOp op, int reason_arg, int actor_arg)
{
	AmNeed		need = am_op_need(op);
	char	   *agent_id = am_agent_id_arg(fcinfo);
	char	   *reason = reason_arg >= 0 ?
		am_arg_text(fcinfo, reason_arg, "reason", false, AM_MAX_TEXT_LEN, true) : NULL;
	char	   *actor = am_actor(fcinfo, actor_arg);
	char	   *funcname = psprintf("lm_%s()", am_transition(op)->name);
	AmCaller	caller;
	AmAgent		a;
	AmPolicyAccess acc;
	AmPriv		priv;
	Datum		row;

	am_require_writable(funcname);
	am_caller(&caller);
	if (need == AM_NEED_ADMIN)
		am_require_admin(&caller, funcname);
	am_connect(&priv);
	am_revocation_lock(op, agent_id);	/* suspend, decommission: revocation wins */
	lock_agent_as(&caller, op, agent_id, &a);
	if (need == AM_NEED_APPROVE)
		check_approver(&caller, &a, &acc);
	row = apply_op(op, &a, actor,
				   reason_arg >= 0 ? am_details1("reason", reason ? reason : "") : NULL, NULL);
	am_finish(&priv);
	PG_RETURN_DATUM(row);
}

/* A space character: ASCII, and in UTF-8 the Unicode space separators. */
static bool
is_space_char(const char *p, int len)
{
	pg_wchar	c;

	if (len == 1)
		return *p == ' ';
	if (GetDatabaseEncoding() != PG_UTF8)
		return false;
	c = utf8_to_unicode((const unsigned char *) p);
	return c == 0x00A0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
		c == 0x202F || c == 0x205F || c == 0x3000;
}

/*
 * A claimed actor trimmed of leading and trailing spaces (no-break and
 * other Unicode spaces too) and case-folded, so that "alice ", " Alice"
 * and "ALICE" all compare equal to "alice" (require_distinct_approver).
 */
static char *
actor_key(const char *s)
{
	const char *start = NULL;
	const char *end = s;
	const char *p = s;

	while (*p)
	{
		int			len = pg_mblen(p);

		if (!is_space_char(p, len))
		{
			if (start == NULL)
				start = p;
			end = p + len;
		}
		p += len;
	}
	if (start == NULL)
		return pstrdup("");
	return str_tolower(start, end - start, DEFAULT_COLLATION_OID);
}

static AmPlan requester_plan = {
	"SELECT db_user, actor FROM agentmesh.audit_events"
	" WHERE agent_id = $1 AND event_type = 'requested' ORDER BY seq LIMIT 1",
	1, {TEXTOID}
};

/*
 * require_distinct_approver: the approver is neither the login that made
 * the request (the session user its "requested" audit event records) nor
 * the actor it claimed, compared trimmed and case-folded.  Either match is
 * 42501; nothing in the message echoes either name.
 */
static void
check_distinct_approver(const AmCaller *c, const AmAgent *a, const char *actor)
{
	Datum		arg = CStringGetTextDatum(a->agent_id);
	char	   *req_user = NULL;
	char	   *req_actor = a->requested_by;
	bool		same;

	am_exec(&requester_plan, &arg, NULL, true, 1);
	if (SPI_processed == 1)
	{
		req_user = am_getcol_text(1);
		req_actor = am_getcol_text(2);
	}
	same = (req_user != NULL && strcmp(req_user, am_caller_name(c)) == 0) ||
		(req_actor != NULL && strcmp(actor_key(req_actor), actor_key(actor)) == 0);
	if (same)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the requester of agent \"%s\" cannot approve it", a->agent_id),
				 errdetail("Policy \"%s\" requires the approver to differ from the requester, by login and by actor.", a->policy),
				 errhint("Ask another approver.")));
}

PG_FUNCTION_INFO_V1(lm_approve);
Datum
lm_approve(PG_FUNCTION_ARGS)
{
	char	   *agent_id = am_agent_id_arg(fcinfo);
	char	   *actor = am_actor(fcinfo, 1);
	AmCaller	caller;
	AmAgent		a;
	AmPolicy	pol;
	AmPolicyAccess acc;
	AmPriv		priv;
	Datum		row;

	am_require_writable("lm_approve()");
	am_caller(&caller);
	am_connect(&priv);
	lock_agent_as(&caller, AM_OP_APPROVE, agent_id, &a);
	check_approver(&caller, &a, &acc);
	load_policy_or_error(a.policy, &pol);
	if (pol.require_distinct_approver)
		check_distinct_approver(&caller, &a, actor);
	row = apply_op(AM_OP_APPROVE, &a, actor, NULL, NULL);
	am_finish(&priv);
	PG_RETURN_DATUM(row);
}

PG_FUNCTION_INFO_V1(lm_reject);
Datum
lm_reject(PG_FUNCTION_ARGS)
{
	return simple_transition(fcinfo, AM_OP_REJECT, 1, 2);
}

PG_FUNCTION_INFO_V1(lm_suspend);
Datum
lm_suspend(PG_FUNCTION_ARGS)
{
	return simple_transition(fcinfo, AM_OP_SUSPEND, 1, 2);
}

PG_FUNCTION_INFO_V1(lm_resume);
Datum
lm_resume(PG_FUNCTION_ARGS)
{
	return simple_transition(fcinfo, AM_OP_RESUME, -1, 1);
}

PG_FUNCTION_INFO_V1(lm_decommission);
Datum
lm_decommission(PG_FUNCTION_ARGS)
{
	/* the agents trigger revokes the credentials, so plain SQL does too */
	return simple_transition(fcinfo, AM_OP_DECOMMISSION, 1, 2);
}

PG_FUNCTION_INFO_V1(lm_mark_orphaned);
Datum
lm_mark_orphaned(PG_FUNCTION_ARGS)
{
	return simple_transition(fcinfo, AM_OP_MARK_ORPHANED, -1, 1);
}

PG_FUNCTION_INFO_V1(lm_change_owner);
Datum
lm_change_owner(PG_FUNCTION_ARGS)
{
	char	   *agent_id = am_agent_id_arg(fcinfo);
	char	   *new_owner = am_arg_text(fcinfo, 1, "new_owner", true, AM_MAX_TEXT_LEN, false);
	char	   *actor = am_actor(fcinfo, 2);
	AmCaller	caller;
	AmAgent		a;
	AmPriv		priv;
	AmChange	chg = {true, new_owner, false, NULL, false, NULL};
	Datum		row;

	am_require_writable("lm_change_owner()");
	am_caller(&caller);
	am_require_admin(&caller, "lm_change_owner()");
	am_connect(&priv);
	lock_agent_as(&caller, AM_OP_CHANGE_OWNER, agent_id, &a);
	row = apply_op(AM_OP_CHANGE_OWNER, &a, actor, NULL, &chg);
	am_finish(&priv);
	PG_RETURN_DATUM(row);
}

/* lm_change_team(agent_id, team, actor): admins move an agent to another team. */
PG_FUNCTION_INFO_V1(lm_change_team);
Datum
lm_change_team(PG_FUNCTION_ARGS)
{
	char	   *agent_id = am_agent_id_arg(fcinfo);
	char	   *team = am_arg_text(fcinfo, 1, "team", true, NAMEDATALEN - 1, false);
	char	   *actor = am_actor(fcinfo, 2);
	AmCaller	caller;
	AmAgent		a;
	AmPriv		priv;
	AmChange	chg = {false, NULL, false, NULL, true, NULL};
	Datum		row;

	am_require_writable("lm_change_team()");
	am_caller(&caller);
	am_require_admin(&caller, "lm_change_team()");
	chg.team = am_existing_role(team);
	am_connect(&priv);
	lock_agent_as(&caller, AM_OP_CHANGE_TEAM, agent_id, &a);
	row = apply_op(AM_OP_CHANGE_TEAM, &a, actor, NULL, &chg);
	am_finish(&priv);
	PG_RETURN_DATUM(row);
}

/*
 * Issue a credential to a locked agent and apply op (activate, rotate or
 * reclaim) with it.  Used by the maintenance pass too.
 */
static Datum
issue_and_apply(const AmCaller *c, AmOp op, const char *agent_id,
				const char *actor, const char *new_owner,
				TimestampTz now, AmGrant *grant, AmState *state_out)
{
	AmAgent		a;
	AmPolicy	pol;
	AmChange	chg = {new_owner != NULL, new_owner, true, grant, false, NULL};
	Datum		row;
	const char *k[3] = {"old_credential", "new_credential", "reclaimed"};
	const char *v[3];

	if (c)
		lock_agent_as(c, op, agent_id, &a);
	else
		lock_agent_for(op, agent_id, &a);
	load_policy_or_error(a.policy, &pol);
	if (op == AM_OP_RECLAIM)
		am_revoke_all_credentials(agent_id, "reclaimed", now);
	am_issue_credential(agent_id, &pol.max_credential_ttl, &pol.rotation_overlap, now, grant);
	v[0] = a.credential_id;
	v[1] = grant->credential_id;
	v[2] = "true";
	row = apply_op(op, &a, actor, am_jsonb_build(op == AM_OP_RECLAIM ? 3 : 2, k, v), &chg);
	*state_out = a.state;
	return row;
}

/* The maintenance pass's entry: no caller to check. */
Datum
am_issue_and_apply(AmOp op, const char *agent_id, const char *actor, const char *new_owner,
				   TimestampTz now, AmGrant *grant, AmState *state_out)
{
	return issue_and_apply(NULL, op, agent_id, actor, new_owner, now, grant, state_out);
}

static Datum
issuing_op(FunctionCallInfo fcinfo, AmOp op, const char *new_owner, int actor_arg)
{
	AmNeed		need = am_op_need(op);
	char	   *agent_id = am_agent_id_arg(fcinfo);
	char	   *actor = am_actor(fcinfo, actor_arg);
	char	   *funcname = psprintf("lm_%s()", am_transition(op)->name);
	AmCaller	caller;
	AmGrant		grant;
	AmState		state;
	AmPriv		priv;

	am_require_writable(funcname);
	am_caller(&caller);
	if (need == AM_NEED_ADMIN)
		am_require_admin(&caller, funcname);
	am_connect(&priv);
	(void) issue_and_apply(&caller, op, agent_id, actor, new_owner,
						   GetCurrentTransactionStartTimestamp(), &grant, &state);
	am_finish(&priv);
	return am_grant_result(fcinfo, agent_id, state, &grant);
}

PG_FUNCTION_INFO_V1(lm_activate);
Datum
lm_activate(PG_FUNCTION_ARGS)
{
	return issuing_op(fcinfo, AM_OP_ACTIVATE, NULL, 1);
}

PG_FUNCTION_INFO_V1(lm_rotate_credentials);
Datum
lm_rotate_credentials(PG_FUNCTION_ARGS)
{
	return issuing_op(fcinfo, AM_OP_ROTATE, NULL, 1);
}

PG_FUNCTION_INFO_V1(lm_reclaim);
Datum
lm_reclaim(PG_FUNCTION_ARGS)
{
	char	   *new_owner = am_arg_text(fcinfo, 1, "new_owner", true, AM_MAX_TEXT_LEN, false);

	return issuing_op(fcinfo, AM_OP_RECLAIM, new_owner, 2);
}

PG_FUNCTION_INFO_V1(lm_revoke_credentials);
Datum
lm_revoke_credentials(PG_FUNCTION_ARGS)
{
	char	   *agent_id = am_agent_id_arg(fcinfo);
	char	   *reason = am_arg_text(fcinfo, 1, "reason", true, AM_MAX_TEXT_LEN, false);
	char	   *actor = am_actor(fcinfo, 2);
	AmCaller	caller;
	AmAgent		a;
	AmPriv		priv;
	AmChange	chg = {false, NULL, true, NULL, false, NULL};
	Datum		row;
	int			n;

	am_require_writable("lm_revoke_credentials()");
	am_caller(&caller);
	am_connect(&priv);
	am_revocation_lock(AM_OP_REVOKE, agent_id);	/* revocation wins */
	lock_agent_as(&caller, AM_OP_REVOKE, agent_id, &a);
	n = am_revoke_all_credentials(agent_id, reason, GetCurrentTransactionStartTimestamp());
	row = apply_op(AM_OP_REVOKE, &a, actor,
				   am_details2("reason", reason, "credentials_revoked", psprintf("%d", n)),
				   &chg);
	am_finish(&priv);
	PG_RETURN_DATUM(row);
}

/*
 * lm_heartbeat(agent_id, token) — the hot path: the agent row is found and
 * updated directly (agent_row.c), the policy's flags come from the backend's
 * policy cache (policy.c), and nothing else happens unless the policy asks
 * for a token or an audit row.
 */
/*
 * One message for every refused heartbeat token (wrong, expired, revoked,
 * another agent's, missing where the policy needs one, or for an agent that
 * does not exist), naming neither the agent nor the token.
 */
pg_noreturn static void
heartbeat_token_refused(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("heartbeat refused: no live credential of this agent was presented"),
			 errhint("Pass the agent's current token as the second argument of lm_heartbeat().")));
}

/*
 * The one place that builds agentmesh.heartbeat_result, so that a field
 * added to the type is added here only.  It holds what the agent may know
 * about itself and nothing of its row's descriptive columns (owner, tags,
 * team): an agent login may not read agentmesh.agents.  The credential
 * fields are those of the token presented (NULL without one).
 */
typedef struct AmHeartbeatResult
{
	const char *agent_id;
	Datum		state;			/* lifecycle_state enum value */
	TimestampTz last_heartbeat_at;
	TimestampTz next_heartbeat_before;
	const char *credential_id;	/* NULL: no token */
	TimestampTz credential_expires_at;
	bool		successor_waiting;	/* a sealed successor waits (issue 12) */
} AmHeartbeatResult;

#define AM_HEARTBEAT_RESULT_NATTS 7

/* What a call site of lm_heartbeat() looks up once (fn_extra). */
typedef struct AmHeartbeatSite
{
	TupleDesc	desc;			/* heartbeat_result, blessed */
	bool		legacy;			/* declared to return agentmesh.agents (1.0) */
} AmHeartbeatSite;

static AmHeartbeatSite *
heartbeat_site(FunctionCallInfo fcinfo)
{
	AmHeartbeatSite *site = (AmHeartbeatSite *) fcinfo->flinfo->fn_extra;
	Oid			typid;
	TupleDesc	desc;

	if (site == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		if (get_call_result_type(fcinfo, &typid, &desc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "return type must be a row type");
		site = palloc0(sizeof(AmHeartbeatSite));
		site->legacy = typid == am_type_oid("agents");
		if (!site->legacy)
		{
			if (desc->natts != AM_HEARTBEAT_RESULT_NATTS)
				elog(ERROR, "agentmesh.heartbeat_result has %d attributes, expected %d",
					 desc->natts, AM_HEARTBEAT_RESULT_NATTS);
			site->desc = BlessTupleDesc(CreateTupleDescCopy(desc));
		}
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = site;
	}
	return site;
}

static Datum
heartbeat_result(AmHeartbeatSite *site, const AmHeartbeatResult *r)
{
	TupleDesc	desc = site->desc;
	Datum		v[AM_HEARTBEAT_RESULT_NATTS];
	bool		n[AM_HEARTBEAT_RESULT_NATTS];

	memset(n, 0, sizeof(n));
	v[0] = CStringGetTextDatum(r->agent_id);
	v[1] = r->state;
	v[2] = TimestampTzGetDatum(r->last_heartbeat_at);
	n[2] = TIMESTAMP_NOT_FINITE(r->last_heartbeat_at);
	v[3] = TimestampTzGetDatum(r->next_heartbeat_before);
	n[3] = n[2];
	v[4] = am_text_datum(r->credential_id);
	n[4] = r->credential_id == NULL;
	v[5] = TimestampTzGetDatum(r->credential_expires_at);
	n[5] = n[4];
	v[6] = BoolGetDatum(r->successor_waiting);
	n[6] = n[4];
	return HeapTupleGetDatum(heap_form_tuple(desc, v, n));
}

/*
 * lm_heartbeat(agent_id, token) -> heartbeat_result.
 *
 * Who may heartbeat: anyone presenting a live credential of the agent (an
 * agent login proves who it is with its token, under every policy); an
 * admin or a requester of the agent's team without a token, unless the
 * policy requires one.  Every refusal of that kind, and an unknown or
 * invisible agent for anyone but an admin, is the same 42501, decided
 * before anything that depends on the agent's state.
 */
PG_FUNCTION_INFO_V1(lm_heartbeat);
Datum
lm_heartbeat(PG_FUNCTION_ARGS)
{
	char	   *agent_id = am_agent_id_arg(fcinfo);
	char	   *token = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	AmPriv		priv;
	AmPolicy	pol;
	AmAgentRow	row;
	AmCaller	caller;
	AmState		state;
	AmHeartbeatResult res;
	AmHeartbeatSite *site = heartbeat_site(fcinfo);
	Datum		legacy_row = (Datum) 0;
	bool		found;
	bool		isnull;
	bool		admin = false;

	am_require_writable("lm_heartbeat()");
	memset(&res, 0, sizeof(res));
	res.agent_id = agent_id;
	if (token == NULL)
	{
		/*
		 * Without a token only a manager of the agent may heartbeat: a
		 * caller that can be none (an agent login) is refused before the
		 * row is even looked up.
		 */
		am_caller(&caller);
		admin = caller.admin;
		if (!caller.admin && !caller.requester)
			heartbeat_token_refused();
	}
	am_connect(&priv);
	if (token != NULL)
	{
		AmTokenInfo pre;

		/*
		 * A token that is not this agent's is refused before the row lock
		 * too: waiting for a row another session holds would tell a caller
		 * without the agent's token that the agent exists.
		 */
		if (!am_token_lookup(token, GetCurrentTimestamp(), &pre) ||
			strcmp(pre.agent_id, agent_id) != 0)
			heartbeat_token_refused();
	}
	found = am_agent_row_lock(&row, agent_id);

	/*
	 * A token, when given, must be a live credential of this agent, under
	 * every policy, and it is checked before anything that depends on the
	 * agent's existence or state, so that a wrong token learns nothing.  It
	 * is checked after the row lock, in a snapshot taken after it (READ
	 * COMMITTED), so that a revocation that committed while this call waited
	 * for the row is seen; and against the wall clock, so that a
	 * transaction held open cannot use a token past its expiry.
	 */
	if (token != NULL)
	{
		char	   *owner_of_token;
		AmTokenStatus tst;

		/* one lookup: the token, its last use, a successor waiting for it */
		PushActiveSnapshot(GetTransactionSnapshot());
		owner_of_token = am_token_agent_status(token, GetCurrentTimestamp(), &tst);
		PopActiveSnapshot();
		if (!found || owner_of_token == NULL || strcmp(owner_of_token, agent_id) != 0)
		{
			if (found)
				am_agent_row_close(&row);
			heartbeat_token_refused();
		}
		/* the result is built after SPI_finish(): copy it out of SPI's memory */
		res.credential_id = strcpy(SPI_palloc(strlen(tst.credential_id) + 1), tst.credential_id);
		res.credential_expires_at = tst.expires_at;
		res.successor_waiting = tst.successor_waiting;
	}
	else if (!admin)
	{
		char	   *team = NULL;

		/* (no team before the 1.1 update: admins only) */
		if (found && SPI_fnumber(RelationGetDescr(row.rel), "team") > 0)
		{
			Datum		t = am_agent_row_col(&row, "team", &isnull);

			if (!isnull)
				team = NameStr(*DatumGetName(t));
		}
		if (!found || !am_may_manage(&caller, team))
		{
			if (found)
				am_agent_row_close(&row);
			heartbeat_token_refused();
		}
	}
	else if (!found)
		agent_not_found(agent_id);
	if (!am_load_policy(TextDatumGetCString(am_agent_row_col(&row, "policy", &isnull)), &pol))
		elog(ERROR, "policy of agent \"%s\" is missing", agent_id);
	if (token == NULL && pol.heartbeat_requires_token)
	{
		am_agent_row_close(&row);
		heartbeat_token_refused();
	}
	res.state = am_agent_row_col(&row, "state", &isnull);
	state = am_state_from_datum(res.state);
	if (!am_op_allowed(AM_OP_HEARTBEAT, state))
	{
		am_agent_row_close(&row);
		if (state == AM_DECOMMISSIONED)
			ereport(WARNING,
					(errmsg("heartbeat from decommissioned agent \"%s\"", agent_id),
					 errdetail("A process still runs under an identity that was retired (a zombie agent)."),
					 errhint("Find and stop the process; its credentials are no longer accepted.")));
		am_report_wrong_state(AM_OP_HEARTBEAT, agent_id, state);
	}
	/* the agents trigger writes a heartbeat event only when the policy asks */
	am_set_audit_context(AM_OP_HEARTBEAT,
						 pol.audit_heartbeats ? GetUserNameFromId(GetSessionUserId(), false) : NULL,
						 NULL);
	am_set_audit_heartbeat(pol.audit_heartbeats);
	if (!am_agent_row_heartbeat(&row, &res.last_heartbeat_at,
								site->legacy ? &legacy_row : NULL))
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("heartbeat of agent \"%s\" was not recorded", agent_id),
				 errdetail("A BEFORE UPDATE trigger on agentmesh.agents skipped the row.")));
	am_clear_audit_context();
	if (site->legacy)
	{
		/* the 1.0 schema's lm_heartbeat returns the agent's row */
		legacy_row = SPI_datumTransfer(legacy_row, false, -1);
		am_finish(&priv);
		PG_RETURN_DATUM(legacy_row);
	}
	am_finish(&priv);
	if (!TIMESTAMP_NOT_FINITE(res.last_heartbeat_at))
		res.next_heartbeat_before =
			DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
													TimestampTzGetDatum(res.last_heartbeat_at),
													IntervalPGetDatum(&pol.heartbeat_interval)));
	PG_RETURN_DATUM(heartbeat_result(site, &res));
}

/* ----------------------------------------------------------------
 * Reads
 * ----------------------------------------------------------------
 */
/*
 * Every read is scoped to the agents the session user may see: $2 says it
 * sees all (admins, approvers, auditors), else agentmesh.team_visible(),
 * the predicate of the tables' row-level security, decides per row.
 */
#define AM_VISIBLE "($2 OR agentmesh.team_visible(a.team))"

static AmPlan get_plan = {
	"SELECT a FROM agentmesh.agents a WHERE a.agent_id = $1 AND " AM_VISIBLE,
	2, {TEXTOID, BOOLOID}
};
static AmPlan get_plan_10 = {
	"SELECT a FROM agentmesh.agents a WHERE a.agent_id = $1 AND $2", 2, {TEXTOID, BOOLOID}
};
static AmPlan by_state_plan_10 = {
	"SELECT a FROM agentmesh.agents a WHERE a.state = $1::text::agentmesh.lifecycle_state"
	" AND $2 ORDER BY a.created_at, a.agent_id", 2, {TEXTOID, BOOLOID}
};
static AmPlan by_owner_plan_10 = {
	"SELECT a FROM agentmesh.agents a WHERE a.owner = $1 AND $2"
	" ORDER BY a.created_at, a.agent_id",
	2, {TEXTOID, BOOLOID}
};
static AmPlan by_state_plan = {
	"SELECT a FROM agentmesh.agents a WHERE a.state = $1::text::agentmesh.lifecycle_state"
	" AND " AM_VISIBLE " ORDER BY a.created_at, a.agent_id", 2, {TEXTOID, BOOLOID}
};
static AmPlan by_owner_plan = {
	"SELECT a FROM agentmesh.agents a WHERE a.owner = $1 AND " AM_VISIBLE
	" ORDER BY a.created_at, a.agent_id",
	2, {TEXTOID, BOOLOID}
};
static AmPlan summary_plan = {
	"WITH v AS (SELECT a.state, a.owner FROM agentmesh.agents a"
	"  WHERE $1 OR agentmesh.team_visible(a.team))"
	" SELECT jsonb_build_object("
	" 'total_agents', (SELECT count(*) FROM v),"
	" 'by_state', (SELECT COALESCE(jsonb_object_agg(s, n), '{}') FROM"
	"   (SELECT state::text AS s, count(*) AS n FROM v GROUP BY state) x),"
	" 'by_owner', (SELECT COALESCE(jsonb_object_agg(o, n), '{}') FROM"
	"   (SELECT COALESCE(owner, '') AS o, count(*) AS n FROM v GROUP BY 1) y))",
	1, {BOOLOID}
};
static AmPlan summary_plan_10 = {
	"WITH v AS (SELECT a.state, a.owner FROM agentmesh.agents a WHERE $1)"
	" SELECT jsonb_build_object("
	" 'total_agents', (SELECT count(*) FROM v),"
	" 'by_state', (SELECT COALESCE(jsonb_object_agg(s, n), '{}') FROM"
	"   (SELECT state::text AS s, count(*) AS n FROM v GROUP BY state) x),"
	" 'by_owner', (SELECT COALESCE(jsonb_object_agg(o, n), '{}') FROM"
	"   (SELECT COALESCE(owner, '') AS o, count(*) AS n FROM v GROUP BY 1) y))",
	1, {BOOLOID}
};

PG_FUNCTION_INFO_V1(lm_get);
Datum
lm_get(PG_FUNCTION_ARGS)
{
	char	   *agent_id = am_agent_id_arg(fcinfo);
	Datum		args[2];
	AmCaller	caller;
	AmPriv		priv;
	Datum		row = (Datum) 0;
	bool		isnull = true;

	am_caller(&caller);
	args[0] = CStringGetTextDatum(agent_id);
	args[1] = BoolGetDatum(caller.sees_all);
	am_connect(&priv);
	am_exec(SCHEMA_PLAN(get_plan), args, NULL, true, 1);
	if (SPI_processed == 1)
		row = SPI_datumTransfer(am_getcol(1, &isnull), false, -1);
	am_finish(&priv);
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(row);
}

/* rows fetched from the cursor at a time */
#define AM_LIST_BATCH 256

/*
 * Stream the agents of a list query into the result: the query runs as a
 * cursor, fetched a batch at a time into the function's tuplestore, which
 * keeps work_mem in memory and spills the rest to a temporary file.  So
 * neither an SPI result nor the tuplestore holds the whole fleet in memory.
 */
static Datum
list_agents(FunctionCallInfo fcinfo, AmPlan *plan, Datum arg)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AmCaller	caller;
	AmPriv		priv;
	Datum		args[2];
	Portal		portal;

	am_caller(&caller);
	InitMaterializedSRF(fcinfo, MAT_SRF_BLESS);
	args[0] = arg;
	args[1] = BoolGetDatum(caller.sees_all);
	am_connect(&priv);
	portal = SPI_cursor_open(NULL, am_prepare(plan), args, NULL, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, AM_LIST_BATCH);
		if (SPI_processed == 0)
			break;
		am_put_composite_rows(rsinfo);
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	am_finish(&priv);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(lm_list_by_state);
Datum
lm_list_by_state(PG_FUNCTION_ARGS)
{
	Oid			typout;
	bool		isvarlena;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("state must not be null")));
	getTypeOutputInfo(get_fn_expr_argtype(fcinfo->flinfo, 0), &typout, &isvarlena);
	return list_agents(fcinfo, SCHEMA_PLAN(by_state_plan),
					   CStringGetTextDatum(OidOutputFunctionCall(typout, PG_GETARG_DATUM(0))));
}

PG_FUNCTION_INFO_V1(lm_list_by_owner);
Datum
lm_list_by_owner(PG_FUNCTION_ARGS)
{
	char	   *owner = am_arg_text(fcinfo, 0, "owner", true, AM_MAX_TEXT_LEN, false);

	return list_agents(fcinfo, SCHEMA_PLAN(by_owner_plan), CStringGetTextDatum(owner));
}

PG_FUNCTION_INFO_V1(lm_summary);
Datum
lm_summary(PG_FUNCTION_ARGS)
{
	AmCaller	caller;
	AmPriv		priv;
	bool		isnull;
	Datum		arg;
	Datum		res;

	am_caller(&caller);
	arg = BoolGetDatum(caller.sees_all);
	am_connect(&priv);
	am_exec(SCHEMA_PLAN(summary_plan), &arg, NULL, true, 1);
	res = SPI_datumTransfer(am_getcol(1, &isnull), false, -1);
	am_finish(&priv);
	PG_RETURN_DATUM(res);
}

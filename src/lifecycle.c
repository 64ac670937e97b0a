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
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "agentmesh.h"

/* ----------------------------------------------------------------
 * Policies
 * ----------------------------------------------------------------
 */
static void
load_policy_or_error(const char *name, AmPolicy *pol)
{
	if (!am_load_policy(name, pol))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the requested policy does not exist"),
				 errhint("Policies are rows of agentmesh.policies.")));
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
} AmAgent;

pg_noreturn static void agent_not_found(const char *agent_id);

static AmPlan lock_plan = {
	"SELECT state::text, policy, owner, requested_by, credential_id"
	"  FROM agentmesh.agents WHERE agent_id = $1 FOR UPDATE",
	1, {TEXTOID}
};

static void
agent_not_found(const char *agent_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("agent \"%s\" does not exist", agent_id)));
}

/* Lock the agent row (inside am_connect); 42704 when there is none. */
static void
lock_agent(const char *agent_id, AmAgent *a)
{
	Datum		arg = CStringGetTextDatum(agent_id);

	am_exec(&lock_plan, &arg, NULL, false, 1);
	if (SPI_processed == 0)
		agent_not_found(agent_id);
	a->agent_id = pstrdup(agent_id);
	a->state = am_state_from_name(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	a->policy = am_getcol_text(2);
	a->owner = am_getcol_text(3);
	a->requested_by = am_getcol_text(4);
	a->credential_id = am_getcol_text(5);
}

static void
lock_agent_for(AmOp op, const char *agent_id, AmAgent *a)
{
	lock_agent(agent_id, a);
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
	" credential_expires_at = CASE WHEN $5 THEN $8 ELSE a.credential_expires_at END"
	" WHERE a.agent_id = $1 RETURNING a",
	8, {TEXTOID, TEXTOID, BOOLOID, TEXTOID, BOOLOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}
};

typedef struct AmChange
{
	bool		set_owner;
	const char *owner;
	bool		set_credential;
	const AmGrant *grant;		/* NULL with set_credential: clear them */
} AmChange;

/* Apply op to a locked agent; returns the new row, copied out of SPI. */
static Datum
apply_op(AmOp op, AmAgent *a, const char *actor, Jsonb *details, const AmChange *chg)
{
	const AmTransition *t = am_transition(op);
	int			to = t->to == AM_STATE_NONE ? (int) a->state : t->to;
	Datum		v[8];
	bool		n[8];
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

	am_set_audit_context(op, actor, details);
	am_exec(&apply_plan, v, n, false, 0);
	am_clear_audit_context();
	if (SPI_processed != 1)
		elog(ERROR, "agent \"%s\" vanished while locked", a->agent_id);
	row = am_getcol(1, &isnull);
	a->state = (AmState) to;
	return SPI_datumTransfer(row, false, -1);
}

/* Build a credential_grant row. */
static Datum
grant_result(FunctionCallInfo fcinfo, const char *agent_id, AmState state, const AmGrant *g)
{
	TupleDesc	desc;
	Datum		v[6];
	bool		n[6] = {false, false, false, false, false, false};
	Oid			state_in;
	Oid			ioparam;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);
	getTypeInputInfo(TupleDescAttr(desc, 1)->atttypid, &state_in, &ioparam);
	v[0] = CStringGetTextDatum(agent_id);
	v[1] = OidFunctionCall3(state_in, CStringGetDatum(am_state_names[state]),
							ObjectIdGetDatum(ioparam), Int32GetDatum(-1));
	v[2] = CStringGetTextDatum(g->credential_id);
	v[3] = TimestampTzGetDatum(g->issued_at);
	v[4] = TimestampTzGetDatum(g->expires_at);
	v[5] = CStringGetTextDatum(g->token);
	return HeapTupleGetDatum(heap_form_tuple(desc, v, n));
}

/* ----------------------------------------------------------------
 * Operations
 * ----------------------------------------------------------------
 */
static AmPlan insert_agent_plan = {
	"INSERT INTO agentmesh.agents (agent_id, name, owner, purpose, agent_type, state, policy, tags)"
	" VALUES ($1, $2, $3, $4, $5, $6::agentmesh.lifecycle_state, $7, $8) RETURNING agents",
	8, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID}
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
	AmPolicy	pol;
	AmOp		op;
	char	   *agent_id;
	Datum		v[8];
	bool		n[8] = {false, false, false, false, false, false, false, false};
	AmPriv		priv;
	Datum		row;
	bool		isnull;

	am_require_writable("lm_request()");
	load_policy_or_error(policy, &pol);
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

	am_connect(&priv);
	am_set_audit_context(op, actor,
						 am_details2("name", name, "owner", owner));
	am_exec(&insert_agent_plan, v, n, false, 0);
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

/* Operations that only move the state: lock, check, update. */
static Datum
simple_transition(FunctionCallInfo fcinfo, AmOp op, int reason_arg, int actor_arg)
{
	char	   *agent_id = am_agent_id_arg(fcinfo);
	char	   *reason = reason_arg >= 0 ?
		am_arg_text(fcinfo, reason_arg, "reason", false, AM_MAX_TEXT_LEN, true) : NULL;
	char	   *actor = am_actor(fcinfo, actor_arg);
	AmPriv		priv;
	Datum		row;

	am_require_writable(psprintf("lm_%s()", am_transition(op)->name));
	am_connect(&priv);
	am_revocation_lock(op, agent_id);	/* suspend, decommission: revocation wins */
	row = am_transition_agent(op, agent_id, actor,
							  reason_arg >= 0 ? am_details1("reason", reason ? reason : "") : NULL);
	am_finish(&priv);
	PG_RETURN_DATUM(row);
}

PG_FUNCTION_INFO_V1(lm_approve);
Datum
lm_approve(PG_FUNCTION_ARGS)
{
	char	   *agent_id = am_agent_id_arg(fcinfo);
	char	   *actor = am_actor(fcinfo, 1);
	AmAgent		a;
	AmPolicy	pol;
	AmPriv		priv;
	Datum		row;

	am_require_writable("lm_approve()");
	am_connect(&priv);
	lock_agent_for(AM_OP_APPROVE, agent_id, &a);
	load_policy_or_error(a.policy, &pol);
	if (pol.require_distinct_approver && a.requested_by &&
		pg_strcasecmp(a.requested_by, actor) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("actor \"%s\" requested agent \"%s\" and cannot approve it", actor, agent_id),
				 errdetail("Policy \"%s\" requires the approver to differ from the requester.", a.policy),
				 errhint("Ask another approver.")));
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
	AmAgent		a;
	AmPriv		priv;
	AmChange	chg = {true, new_owner, false, NULL};
	Datum		row;

	am_require_writable("lm_change_owner()");
	am_connect(&priv);
	lock_agent_for(AM_OP_CHANGE_OWNER, agent_id, &a);
	row = apply_op(AM_OP_CHANGE_OWNER, &a, actor, NULL, &chg);
	am_finish(&priv);
	PG_RETURN_DATUM(row);
}

/*
 * Issue a credential to a locked agent and apply op (activate, rotate or
 * reclaim) with it.  Used by the maintenance pass too.
 */
Datum
am_issue_and_apply(AmOp op, const char *agent_id, const char *actor, const char *new_owner,
				   TimestampTz now, AmGrant *grant, AmState *state_out)
{
	AmAgent		a;
	AmPolicy	pol;
	AmChange	chg = {new_owner != NULL, new_owner, true, grant};
	Datum		row;
	const char *k[3] = {"old_credential", "new_credential", "reclaimed"};
	const char *v[3];

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

static Datum
issuing_op(FunctionCallInfo fcinfo, AmOp op, const char *new_owner, int actor_arg)
{
	char	   *agent_id = am_agent_id_arg(fcinfo);
	char	   *actor = am_actor(fcinfo, actor_arg);
	AmGrant		grant;
	AmState		state;
	AmPriv		priv;

	am_require_writable(psprintf("lm_%s()", am_transition(op)->name));
	am_connect(&priv);
	(void) am_issue_and_apply(op, agent_id, actor, new_owner,
							  GetCurrentTransactionStartTimestamp(), &grant, &state);
	am_finish(&priv);
	return grant_result(fcinfo, agent_id, state, &grant);
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
	AmAgent		a;
	AmPriv		priv;
	AmChange	chg = {false, NULL, true, NULL};
	Datum		row;
	int			n;

	am_require_writable("lm_revoke_credentials()");
	am_connect(&priv);
	am_revocation_lock(AM_OP_REVOKE, agent_id);	/* revocation wins */
	lock_agent_for(AM_OP_REVOKE, agent_id, &a);
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

PG_FUNCTION_INFO_V1(lm_heartbeat);
Datum
lm_heartbeat(PG_FUNCTION_ARGS)
{
	char	   *agent_id = am_agent_id_arg(fcinfo);
	char	   *token = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	AmPriv		priv;
	AmPolicy	pol;
	AmAgentRow	row;
	AmState		state;
	bool		found;
	bool		isnull;
	Datum		result;

	am_require_writable("lm_heartbeat()");
	am_connect(&priv);
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

		PushActiveSnapshot(GetTransactionSnapshot());
		owner_of_token = am_token_agent(token, GetCurrentTimestamp(), false);
		PopActiveSnapshot();
		if (!found || owner_of_token == NULL || strcmp(owner_of_token, agent_id) != 0)
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
	state = am_state_from_datum(am_agent_row_col(&row, "state", &isnull));
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
	if (!am_agent_row_heartbeat(&row, &result))
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("heartbeat of agent \"%s\" was not recorded", agent_id),
				 errdetail("A BEFORE UPDATE trigger on agentmesh.agents skipped the row.")));
	am_clear_audit_context();
	result = SPI_datumTransfer(result, false, -1);
	am_finish(&priv);
	PG_RETURN_DATUM(result);
}

/* ----------------------------------------------------------------
 * Reads
 * ----------------------------------------------------------------
 */
static AmPlan get_plan = {
	"SELECT a FROM agentmesh.agents a WHERE a.agent_id = $1", 1, {TEXTOID}
};
static AmPlan by_state_plan = {
	"SELECT a FROM agentmesh.agents a WHERE a.state = $1::text::agentmesh.lifecycle_state"
	" ORDER BY a.created_at, a.agent_id", 1, {TEXTOID}
};
static AmPlan by_owner_plan = {
	"SELECT a FROM agentmesh.agents a WHERE a.owner = $1 ORDER BY a.created_at, a.agent_id",
	1, {TEXTOID}
};
static AmPlan summary_plan = {
	"SELECT jsonb_build_object("
	" 'total_agents', (SELECT count(*) FROM agentmesh.agents),"
	" 'by_state', (SELECT COALESCE(jsonb_object_agg(s, n), '{}') FROM"
	"   (SELECT state::text AS s, count(*) AS n FROM agentmesh.agents GROUP BY state) x),"
	" 'by_owner', (SELECT COALESCE(jsonb_object_agg(o, n), '{}') FROM"
	"   (SELECT COALESCE(owner, '') AS o, count(*) AS n FROM agentmesh.agents GROUP BY 1) y))",
	0, {InvalidOid}
};

PG_FUNCTION_INFO_V1(lm_get);
Datum
lm_get(PG_FUNCTION_ARGS)
{
	char	   *agent_id = am_agent_id_arg(fcinfo);
	Datum		arg = CStringGetTextDatum(agent_id);
	AmPriv		priv;
	Datum		row = (Datum) 0;
	bool		isnull = true;

	am_connect(&priv);
	am_exec(&get_plan, &arg, NULL, true, 1);
	if (SPI_processed == 1)
		row = SPI_datumTransfer(am_getcol(1, &isnull), false, -1);
	am_finish(&priv);
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(row);
}

static Datum
list_agents(FunctionCallInfo fcinfo, AmPlan *plan, Datum arg)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AmPriv		priv;

	InitMaterializedSRF(fcinfo, MAT_SRF_BLESS);
	am_connect(&priv);
	am_exec(plan, &arg, NULL, true, 0);
	am_put_composite_rows(rsinfo);
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
	return list_agents(fcinfo, &by_state_plan,
					   CStringGetTextDatum(OidOutputFunctionCall(typout, PG_GETARG_DATUM(0))));
}

PG_FUNCTION_INFO_V1(lm_list_by_owner);
Datum
lm_list_by_owner(PG_FUNCTION_ARGS)
{
	char	   *owner = am_arg_text(fcinfo, 0, "owner", true, AM_MAX_TEXT_LEN, false);

	return list_agents(fcinfo, &by_owner_plan, CStringGetTextDatum(owner));
}

PG_FUNCTION_INFO_V1(lm_summary);
Datum
lm_summary(PG_FUNCTION_ARGS)
{
	AmPriv		priv;
	bool		isnull;
	Datum		res;

	am_connect(&priv);
	am_exec(&summary_plan, NULL, NULL, true, 1);
	res = SPI_datumTransfer(am_getcol(1, &isnull), false, -1);
	am_finish(&priv);
	PG_RETURN_DATUM(res);
}

/*-------------------------------------------------------------------------
 *
 * orphans.c
 *		Detection of silent, ownerless and inactive agents and of expiring
 *		credentials, as of a given time.  The same rules serve the SQL
 *		functions and the maintenance pass.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "agentmesh.h"

/*
 * The four reasons of the Python reference, with its defects fixed: "never
 * sent a heartbeat" counts from activation, not creation; inactivity counts
 * from the last heartbeat, administrative change or use of a credential
 * (last_used_at); one row per reason.
 * Orphaned and decommissioned agents are not candidates.
 *
 * The rules are written once, here, as a LATERAL VALUES list over agent "a"
 * and its policy "p" as of $1; lm_detect_orphans() reports them and the
 * maintenance pass (am_orphan_batch_plan) acts on them.
 */
#define ORPHAN_REASONS_AT(last_activity) \
	"(VALUES" \
	"    ('silent', " AM_SILENT_HIT "," \
	"     format('No heartbeat for %s days (threshold: %s)'," \
	"            round((extract(epoch FROM $1 - a.last_heartbeat) / 86400)::numeric, 1)," \
	"            p.orphan_threshold)," \
	"     extract(epoch FROM $1 - a.last_heartbeat)::float8 / 86400)," \
	"    ('never_heartbeat', " AM_NEVER_HIT "," \
	"     format('Active but never sent a heartbeat since activation %s days ago (threshold: %s)'," \
	"            round((extract(epoch FROM $1 - COALESCE(a.activated_at, a.created_at)) / 86400)::numeric, 1)," \
	"            p.orphan_threshold)," \
	"     extract(epoch FROM $1 - COALESCE(a.activated_at, a.created_at))::float8 / 86400)," \
	"    ('no_owner', " AM_NO_OWNER_HIT "," \
	"     'No owner assigned', NULL::float8)," \
	"    ('inactive', " AM_INACTIVE_HIT_AT(last_activity) "," \
	"     format('Inactive for %s days (max: %s)'," \
	"            floor(extract(epoch FROM $1 - " last_activity ") / 86400)," \
	"            p.max_inactive_days)," \
	"     extract(epoch FROM $1 - " last_activity ")::float8 / 86400)" \
	"  ) AS r(code, hit, reason, days)"

#define DETECT_SQL(last_activity) \
	"SELECT a.agent_id, a.name, a.owner, a.state, r.code, r.reason, r.days" \
	"  FROM agentmesh.agents a JOIN agentmesh.policies p ON p.name = a.policy," \
	"  LATERAL " ORPHAN_REASONS_AT(last_activity) \
	" WHERE a.state NOT IN ('orphaned', 'decommissioned') AND r.hit" \
	" ORDER BY a.created_at, a.agent_id, r.code"
static AmPlan detect_plan = {DETECT_SQL(AM_LAST_ACTIVITY), 1, {TIMESTAMPTZOID}};
/* on the 1.0 schema, before ALTER EXTENSION UPDATE: no last_used_at */
static AmPlan detect_plan_10 = {DETECT_SQL(AM_LAST_ACTIVITY_10), 1, {TIMESTAMPTZOID}};

/*
 * Lock the agents among $2 (candidates of the maintenance pass) that are
 * still to be marked orphaned as of $1.  Rows locked by a client are
 * skipped, never waited for; a row changed by a client after the candidate
 * scan is evaluated again here, under the lock, so an agent that has just
 * sent a heartbeat is not returned.
 */
AmPlan		am_orphan_batch_plan = {
	"SELECT a.agent_id, o.codes, o.reasons"
	"  FROM agentmesh.agents a JOIN agentmesh.policies p ON p.name = a.policy,"
	"  LATERAL (SELECT string_agg(r.code, ', ' ORDER BY r.code) AS codes,"
	"                  string_agg(r.reason, '; ' ORDER BY r.code) AS reasons"
	/* the inactive reason is not acted on here: its 1.0 form serves both schemas */
	"             FROM " ORPHAN_REASONS_AT(AM_LAST_ACTIVITY_10)
	"            WHERE r.hit AND r.code IN ('silent', 'never_heartbeat', 'no_owner')) o"
	" WHERE a.agent_id = ANY ($2) AND a.state = 'active' AND o.codes IS NOT NULL"
	" ORDER BY a.agent_id"
	"   FOR UPDATE OF a SKIP LOCKED",
	2, {TIMESTAMPTZOID, TEXTARRAYOID}
};

PG_FUNCTION_INFO_V1(lm_detect_orphans);
Datum
lm_detect_orphans(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		as_of;
	AmPriv		priv;
	uint64		i;

	/* Read-only: a later as_of only answers "who would be orphaned then". */
	as_of = TimestampTzGetDatum(am_as_of_arg(fcinfo, 0, -1));

	InitMaterializedSRF(fcinfo, 0);
	am_connect(&priv);
	am_exec(am_schema_is_1_1() ? &detect_plan : &detect_plan_10, &as_of, NULL, true, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		Datum		values[7];
		bool		nulls[7];
		int			c;

		for (c = 0; c < 7; c++)
			values[c] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
									  c + 1, &nulls[c]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	am_finish(&priv);
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * Credential expiry and rotation
 * ----------------------------------------------------------------
 */
static AmPlan rotation_candidates_plan = {
	"SELECT agent_id FROM agentmesh.agents WHERE state = 'active' ORDER BY agent_id",
	0, {InvalidOid}
};
#define ROTATION_STATE_SQL(due, awaiting) \
	"SELECT a.credential_id, a.credential_expires_at, p.auto_rotate, p.rotation_overlap," \
	"       COALESCE(c.expired_recorded, false), $2 - a.credential_expires_at," \
	"       " due ", " awaiting \
	"  FROM agentmesh.agents a JOIN agentmesh.policies p ON p.name = a.policy" \
	"  LEFT JOIN agentmesh.credentials c ON c.credential_id = a.credential_id" \
	" WHERE a.agent_id = $1 AND a.state = 'active'" \
	"   FOR UPDATE OF a SKIP LOCKED"
static AmPlan rotation_state_plan = {
	ROTATION_STATE_SQL("COALESCE(" AM_ROTATE_DUE("$2") ", false)",
					   "EXISTS (SELECT FROM agentmesh.credential_handovers h"
					   "         WHERE h.successor_id = a.credential_id AND h.promoted_at IS NOT NULL)"),
	2, {TEXTOID, TIMESTAMPTZOID}
};
/* on the 1.0 schema: no rotate_after, no hand-overs */
static AmPlan rotation_state_plan_10 = {
	ROTATION_STATE_SQL("false", "false"), 2, {TEXTOID, TIMESTAMPTZOID}
};
static AmPlan mark_expired_plan = {
	"UPDATE agentmesh.credentials SET expired_recorded = true WHERE credential_id = $1",
	1, {TEXTOID}
};


/*
 * A rotation by the pass: the agent's reserved successor, sealed under the
 * current token, becomes its credential (credentials.c), so that the agent
 * claims it with the token it holds; a plain rotation when there is none.
 */
static void
rotate_with_handover(const char *agent_id, TimestampTz as_of)
{
	AmGrant		grant;
	AmState		st;

	am_set_handover_rotation(true);
	PG_TRY();
	{
		am_issue_and_apply(AM_OP_ROTATE, agent_id, AM_MAINT_ACTOR, NULL, as_of, &grant, &st);
	}
	PG_FINALLY();
	{
		am_set_handover_rotation(false);
	}
	PG_END_TRY();
	if (grant.token)
		explicit_bzero(grant.token, AM_TOKEN_LEN);
}

/*
 * Apply the rotation policy to one active agent as of a time (inside
 * am_connect).  Locked rows are skipped, never waited for.  *detail gets a
 * sentence for the caller.  Shared with the maintenance pass.
 */
AmRotateAction
am_rotate_if_needed(const char *agent_id, TimestampTz as_of, char **detail)
{
	Datum		v[2];
	bool		isnull;
	char	   *cred;
	TimestampTz expires;
	bool		auto_rotate;
	Interval   *overlap;
	bool		recorded;
	Interval   *past;
	AmGrant		grant;
	AmState		st;
	bool		due;

	v[0] = CStringGetTextDatum(agent_id);
	v[1] = TimestampTzGetDatum(as_of);
	am_exec(am_schema_is_1_1() ? &rotation_state_plan : &rotation_state_plan_10, v, NULL, false, 1);
	if (SPI_processed == 0)
		return AM_RA_SKIPPED;
	cred = am_getcol_text(1);
	expires = DatumGetTimestampTz(am_getcol(2, &isnull));
	auto_rotate = DatumGetBool(am_getcol(3, &isnull));
	overlap = DatumGetIntervalP(SPI_datumTransfer(am_getcol(4, &isnull), false, 16));
	recorded = DatumGetBool(am_getcol(5, &isnull));
	{
		Datum		d = am_getcol(6, &isnull);

		/* NULL when the agent has no credential */
		past = isnull ? NULL : DatumGetIntervalP(SPI_datumTransfer(d, false, 16));
	}

	if (cred == NULL)
	{
		am_issue_and_apply(AM_OP_ROTATE, agent_id, AM_MAINT_ACTOR, NULL, as_of, &grant, &st);
		*detail = "No credential found, issued new one";
		return AM_RA_ISSUED;
	}
	/*
	 * A successor the agent has not claimed yet is not rotated on schedule
	 * again: that would end the predecessor the agent holds (at most two
	 * verify) and strand it.  It is still rotated inside its overlap.
	 */
	due = DatumGetBool(am_getcol(7, &isnull)) && !DatumGetBool(am_getcol(8, &isnull));
	if (expires <= as_of)
	{
		if (auto_rotate)
		{
			/* the token expired: nobody can claim a successor sealed under it */
			am_issue_and_apply(AM_OP_ROTATE, agent_id, AM_MAINT_ACTOR, NULL, as_of, &grant, &st);
			*detail = "Credential expired, auto-rotated";
			return AM_RA_ROTATED;
		}
		if (!recorded)
		{
			Datum		c = CStringGetTextDatum(cred);
			const char *k = "credential_id";

			am_transition_agent(AM_OP_EXPIRE, agent_id, AM_MAINT_ACTOR,
								am_jsonb_build(1, &k, (const char *const *) &cred));
			am_exec(&mark_expired_plan, &c, NULL, false, 0);
			*detail = "Credential expired (auto_rotate is off)";
			return AM_RA_EXPIRED;
		}
		*detail = "Credential expired (auto_rotate is off)";
		return AM_RA_EXPIRED_BEFORE;
	}
	if (auto_rotate && past != NULL &&
		DatumGetBool(DirectFunctionCall2(interval_ge, IntervalPGetDatum(past),
										 DirectFunctionCall1(interval_um,
															 IntervalPGetDatum(overlap)))))
	{
		rotate_with_handover(agent_id, as_of);
		*detail = "Pre-expiry rotation (inside the rotation overlap)";
		return AM_RA_ROTATED;
	}
	if (auto_rotate && due)
	{
		rotate_with_handover(agent_id, as_of);
		*detail = "Scheduled rotation (rotate_after of the lifetime reached)";
		return AM_RA_ROTATED;
	}
	*detail = "Credential valid";
	return AM_RA_OK;
}

PG_FUNCTION_INFO_V1(lm_check_and_rotate);
Datum
lm_check_and_rotate(PG_FUNCTION_ARGS)
{
	static const char *const action_names[] = {NULL, "issued", "rotated", "expired", "ok", "expired"};
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz as_of;
	AmPriv		priv;
	SPITupleTable *candidates;
	uint64		ncand;
	uint64		i;

	as_of = am_as_of_arg(fcinfo, 0, 1);
	am_require_writable("lm_check_and_rotate()");

	InitMaterializedSRF(fcinfo, 0);
	am_connect(&priv);
	am_exec(&rotation_candidates_plan, NULL, NULL, false, 0);
	candidates = SPI_tuptable;
	ncand = SPI_processed;
	for (i = 0; i < ncand; i++)
	{
		char	   *agent_id = SPI_getvalue(candidates->vals[i], candidates->tupdesc, 1);
		char	   *detail = NULL;
		AmRotateAction act = am_rotate_if_needed(agent_id, as_of, &detail);
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		if (act == AM_RA_SKIPPED)
			continue;
		values[0] = CStringGetTextDatum(agent_id);
		values[1] = CStringGetTextDatum(action_names[act]);
		values[2] = CStringGetTextDatum(detail);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	am_finish(&priv);
	return (Datum) 0;
}

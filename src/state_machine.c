/*-------------------------------------------------------------------------
 *
 * state_machine.c
 *		The lifecycle transition table and the checks made against it.
 *
 * The table is keyed by operation and from-state (not only by target state,
 * as the Python reference is, which let "resume" activate an unapproved
 * agent).  It is the only copy: the lm_* functions, the agents trigger that
 * checks plain-SQL updates, and agentmesh.lm_transitions() all read it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "agentmesh.h"

#define S(st)	(1U << (st))
#define ALL_LIVE_STATES	(S(AM_PENDING_APPROVAL) | S(AM_PROVISIONED) | S(AM_ACTIVE) | \
						 S(AM_SUSPENDED) | S(AM_ORPHANED))

const char *const am_state_names[AM_NUM_STATES] = {
	"pending_approval", "provisioned", "active", "suspended",
	"rotating_credentials", "decommissioning", "decommissioned", "orphaned"
};

const char *const am_event_names[AM_NUM_EVENTS] = {
	"requested", "approved", "rejected", "provisioned", "activated",
	"credential_rotated", "credential_expired", "heartbeat", "heartbeat_missed",
	"suspended", "resumed", "orphan_detected", "decommission_started",
	"decommissioned", "owner_changed", "credential_revoked",
	"attributes_changed", "policy_changed", "team_changed"
};

/*
 * The transition table, indexed by AmOp.  Request ops have an empty
 * from_mask: they apply to a row that does not exist yet.  to = NONE means
 * the operation leaves the state alone.  sql_inferable says whether a plain
 * "UPDATE agents SET state = ..." between the two states is taken to be this
 * operation; reclaim is not, because it needs a new owner and credential.
 */
static const AmTransition transitions[AM_NUM_OPS] = {
	{AM_OP_REQUEST, "request", 0, AM_PENDING_APPROVAL,
	{AM_EV_REQUESTED, AM_EV_NONE}, false},
	{AM_OP_REQUEST_UNAPPROVED, "request", 0, AM_PROVISIONED,
	{AM_EV_REQUESTED, AM_EV_PROVISIONED}, false},
	{AM_OP_APPROVE, "approve", S(AM_PENDING_APPROVAL), AM_PROVISIONED,
	{AM_EV_APPROVED, AM_EV_NONE}, true},
	{AM_OP_REJECT, "reject", S(AM_PENDING_APPROVAL), AM_DECOMMISSIONED,
	{AM_EV_REJECTED, AM_EV_NONE}, true},
	{AM_OP_ACTIVATE, "activate", S(AM_PROVISIONED), AM_ACTIVE,
	{AM_EV_ACTIVATED, AM_EV_NONE}, true},
	{AM_OP_SUSPEND, "suspend", S(AM_ACTIVE), AM_SUSPENDED,
	{AM_EV_SUSPENDED, AM_EV_NONE}, true},
	{AM_OP_RESUME, "resume", S(AM_SUSPENDED), AM_ACTIVE,
	{AM_EV_RESUMED, AM_EV_NONE}, true},
	{AM_OP_MARK_ORPHANED, "mark_orphaned", S(AM_ACTIVE), AM_ORPHANED,
	{AM_EV_ORPHAN_DETECTED, AM_EV_NONE}, true},
	{AM_OP_RECLAIM, "reclaim", S(AM_ORPHANED), AM_ACTIVE,
	{AM_EV_OWNER_CHANGED, AM_EV_RESUMED}, false},
	{AM_OP_DECOMMISSION, "decommission",
		S(AM_PROVISIONED) | S(AM_ACTIVE) | S(AM_SUSPENDED) | S(AM_ORPHANED),
		AM_DECOMMISSIONED,
	{AM_EV_DECOMMISSION_STARTED, AM_EV_DECOMMISSIONED}, true},
	{AM_OP_HEARTBEAT, "heartbeat",
		S(AM_ACTIVE) | S(AM_SUSPENDED) | S(AM_ORPHANED), AM_STATE_NONE,
	{AM_EV_HEARTBEAT, AM_EV_NONE}, false},
	{AM_OP_CHANGE_OWNER, "change_owner",
		S(AM_PENDING_APPROVAL) | S(AM_PROVISIONED) | S(AM_ACTIVE) | S(AM_SUSPENDED),
		AM_STATE_NONE,
	{AM_EV_OWNER_CHANGED, AM_EV_NONE}, false},
	{AM_OP_ROTATE, "rotate_credentials", S(AM_ACTIVE), AM_STATE_NONE,
	{AM_EV_CREDENTIAL_ROTATED, AM_EV_NONE}, false},
	{AM_OP_REVOKE, "revoke_credentials",
		S(AM_PROVISIONED) | S(AM_ACTIVE) | S(AM_SUSPENDED) | S(AM_ORPHANED),
		AM_STATE_NONE,
	{AM_EV_CREDENTIAL_REVOKED, AM_EV_NONE}, false},
	{AM_OP_EXPIRE, "expire_credential",
		S(AM_ACTIVE) | S(AM_SUSPENDED) | S(AM_ORPHANED), AM_STATE_NONE,
	{AM_EV_CREDENTIAL_EXPIRED, AM_EV_NONE}, false},
	{AM_OP_HEARTBEAT_MISSED, "record_missed_heartbeat", S(AM_ACTIVE), AM_STATE_NONE,
	{AM_EV_HEARTBEAT_MISSED, AM_EV_NONE}, false},
	{AM_OP_UPDATE, "update", ALL_LIVE_STATES, AM_STATE_NONE,
	{AM_EV_ATTRIBUTES_CHANGED, AM_EV_NONE}, false},
	/* an admin moves an agent to another team (lm_change_team) */
	{AM_OP_CHANGE_TEAM, "change_team", ALL_LIVE_STATES, AM_STATE_NONE,
	{AM_EV_TEAM_CHANGED, AM_EV_NONE}, false},
};

const AmTransition *
am_transition(AmOp op)
{
	Assert(op >= 0 && op < AM_NUM_OPS);
	Assert(transitions[op].op == op);
	return &transitions[op];
}

bool
am_op_allowed(AmOp op, AmState from)
{
	return (am_transition(op)->from_mask & S(from)) != 0;
}

/*
 * The operation a plain UPDATE from one state to another stands for, or NULL
 * when the table has no such edge.
 */
const AmTransition *
am_transition_for_states(AmState from, AmState to)
{
	int			i;

	for (i = 0; i < AM_NUM_OPS; i++)
	{
		const AmTransition *t = &transitions[i];

		if (t->sql_inferable && t->to == (int) to && (t->from_mask & S(from)))
			return t;
	}
	return NULL;
}

AmState
am_state_from_name(const char *name)
{
	int			i;

	for (i = 0; i < AM_NUM_STATES; i++)
		if (strcmp(am_state_names[i], name) == 0)
			return (AmState) i;
	elog(ERROR, "unrecognized lifecycle state \"%s\"", name);
	return AM_PENDING_APPROVAL;	/* keep compiler quiet */
}

/* Map a lifecycle_state enum value (its pg_enum OID) to AmState. */
AmState
am_state_from_datum(Datum enumval)
{
	HeapTuple	tup;
	AmState		st;

	tup = SearchSysCache1(ENUMOID, enumval);
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for enum value %u", DatumGetObjectId(enumval));
	st = am_state_from_name(NameStr(((Form_pg_enum) GETSTRUCT(tup))->enumlabel));
	ReleaseSysCache(tup);
	return st;
}

/* Comma-separated names of the operations allowed from a state. */
static char *
allowed_ops(AmState from)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < AM_NUM_OPS; i++)
	{
		const AmTransition *t = &transitions[i];

		/* internal operations are not something to suggest to a user */
		if (t->op == AM_OP_EXPIRE || t->op == AM_OP_HEARTBEAT_MISSED ||
			t->op == AM_OP_UPDATE)
			continue;
		if (t->from_mask & S(from))
			appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", t->name);
	}
	return buf.len > 0 ? buf.data : NULL;
}

static char *
required_states(AmOp op)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < AM_NUM_STATES; i++)
		if (am_transition(op)->from_mask & S(i))
			appendStringInfo(&buf, "%s%s", buf.len > 0 ? " or " : "", am_state_names[i]);
	return buf.data;
}

void
am_report_wrong_state(AmOp op, const char *agent_id, AmState from)
{
	const char *opname = am_transition(op)->name;
	char	   *allowed = allowed_ops(from);

	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("operation %s is not allowed on agent \"%s\" in state %s",
					opname, agent_id, am_state_names[from]),
			 errdetail("Operation %s requires state %s.", opname, required_states(op)),
			 allowed ? errhint("Operations allowed from state %s: %s.",
							   am_state_names[from], allowed)
			 : errhint("State %s is final; no operation is allowed.",
					   am_state_names[from])));
}

/*
 * lm_transitions() — the table as rows, one per (operation, from-state), so
 * that users and the documentation read the same table the code enforces.
 */
PG_FUNCTION_INFO_V1(lm_transitions);
Datum
lm_transitions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			state_type = am_type_oid("lifecycle_state");
	Oid			event_type = am_type_oid("lifecycle_event_type");
	Oid			state_in;
	Oid			event_in;
	Oid			state_ioparam;
	Oid			event_ioparam;
	int			i;
	int			s;
	bool		events_as_text;

	InitMaterializedSRF(fcinfo, 0);

	/*
	 * Version 1.1 declares events as text[], which every driver reads as a
	 * list; 1.0 declared lifecycle_event_type[].  The library serves both
	 * until ALTER EXTENSION UPDATE, so the declared column type decides.
	 */
	events_as_text = TupleDescAttr(rsinfo->setDesc, 3)->atttypid == TEXTARRAYOID;
	getTypeInputInfo(state_type, &state_in, &state_ioparam);
	getTypeInputInfo(event_type, &event_in, &event_ioparam);

	for (i = 0; i < AM_NUM_OPS; i++)
	{
		const AmTransition *t = &transitions[i];
		int			e;
		bool		known = true;

		/*
		 * An operation whose event the installed enum lacks (the 1.0 schema,
		 * before ALTER EXTENSION UPDATE: team_changed) cannot happen there.
		 */
		for (e = 0; e < AM_MAX_OP_EVENTS && t->events[e] != AM_EV_NONE; e++)
			if (!SearchSysCacheExists2(ENUMTYPOIDNAME, ObjectIdGetDatum(event_type),
									   CStringGetDatum(am_event_names[t->events[e]])))
				known = false;
		if (!known)
			continue;

		for (s = -1; s < AM_NUM_STATES; s++)
		{
			Datum		values[4];
			bool		nulls[4] = {false, false, false, false};
			Datum		evs[AM_MAX_OP_EVENTS];
			int			nev = 0;
			int			to;

			if (s == -1 ? t->from_mask != 0 : (t->from_mask & S(s)) == 0)
				continue;
			to = t->to == AM_STATE_NONE ? s : t->to;

			values[0] = CStringGetTextDatum(t->name);
			if (s == -1)
				nulls[1] = true;
			else
				values[1] = OidFunctionCall3(state_in, CStringGetDatum(am_state_names[s]),
											 ObjectIdGetDatum(state_ioparam), Int32GetDatum(-1));
			values[2] = OidFunctionCall3(state_in, CStringGetDatum(am_state_names[to]),
										 ObjectIdGetDatum(state_ioparam), Int32GetDatum(-1));
			while (nev < AM_MAX_OP_EVENTS && t->events[nev] != AM_EV_NONE)
			{
				if (events_as_text)
					evs[nev] = CStringGetTextDatum(am_event_names[t->events[nev]]);
				else
					evs[nev] = OidFunctionCall3(event_in,
												CStringGetDatum(am_event_names[t->events[nev]]),
												ObjectIdGetDatum(event_ioparam), Int32GetDatum(-1));
				nev++;
			}
			if (events_as_text)
				values[3] = PointerGetDatum(construct_array(evs, nev, TEXTOID, -1, false,
															TYPALIGN_INT));
			else
				values[3] = PointerGetDatum(construct_array(evs, nev, event_type, 4, true,
															TYPALIGN_INT));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

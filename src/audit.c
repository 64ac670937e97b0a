/*-------------------------------------------------------------------------
 *
 * audit.c
 *		Audit triggers, the canonical event encoding and its hash chain,
 *		and chain verification.
 *
 * Every change to an agent or a policy goes through a BEFORE ROW trigger
 * here, in the transaction of the change.  The trigger checks the change
 * against the transition table, writes the audit rows and advances the
 * subject's chain head, which lives in the very row being changed: that row
 * is already locked by the UPDATE, so chaining needs no lock of its own.
 *
 * An lm_* function tells the trigger what it is doing through a
 * backend-local context (not a GUC, which a user could set); a change made
 * with plain SQL has no context, is mapped to an operation by its states,
 * and is recorded with the session user as actor.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/json.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "agentmesh.h"

#define AM_CANONICAL_VERSION 1

static AmAuditContext audit_ctx;

/* ----------------------------------------------------------------
 * Context handed from lm_* functions to the trigger
 * ----------------------------------------------------------------
 */
void
am_set_audit_context(AmOp op, const char *actor, Jsonb *details)
{
	audit_ctx.active = true;
	audit_ctx.op = op;
	audit_ctx.actor = actor;
	audit_ctx.details = details;
	audit_ctx.audit_heartbeat = false;
}

void
am_set_audit_heartbeat(bool on)
{
	audit_ctx.audit_heartbeat = on;
}

void
am_clear_audit_context(void)
{
	memset(&audit_ctx, 0, sizeof(audit_ctx));
}

/* An error between set and clear must not leave the context to a later statement. */
static void
audit_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_COMMIT || event == XACT_EVENT_PREPARE)
		am_clear_audit_context();
}

static void
audit_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		am_clear_audit_context();
}

void
am_register_xact_callbacks(void)
{
	RegisterXactCallback(audit_xact_callback, NULL);
	RegisterSubXactCallback(audit_subxact_callback, NULL);
}

/* ----------------------------------------------------------------
 * Canonical encoding, version 1
 *
 *	 byte	 version (1)
 *	 text	 agent_id, policy
 *	 int64	 seq
 *	 text	 event_type
 *	 int64	 occurred_at, microseconds since 1970-01-01 00:00 UTC
 *	 text	 actor, db_user, previous_state, new_state
 *	 text	 details (jsonb's canonical text form)
 *	 bytes	 prev_hash
 *
 * text and bytes are a big-endian int32 length and the UTF-8 bytes (length
 * -1 for NULL); integers are big-endian.  Nothing depends on TimeZone or
 * DateStyle.  hash = SHA-256 of the encoding.  docs/audit.md shows the same
 * encoding in plain SQL, and the tests check one against the other.
 * ----------------------------------------------------------------
 */
typedef struct AmEventRec
{
	const char *agent_id;
	const char *policy;
	int64		seq;
	const char *event_type;
	TimestampTz occurred_at;
	const char *actor;
	const char *db_user;
	const char *previous_state;
	const char *new_state;
	Jsonb	   *details;
	const uint8 *prev_hash;		/* NULL or 32 bytes */
} AmEventRec;

static void
put_int32(StringInfo buf, int32 v)
{
	uint32		n = pg_hton32((uint32) v);

	appendBinaryStringInfo(buf, (char *) &n, 4);
}

static void
put_int64(StringInfo buf, int64 v)
{
	uint64		n = pg_hton64((uint64) v);

	appendBinaryStringInfo(buf, (char *) &n, 8);
}

static void
put_text(StringInfo buf, const char *s)
{
	char	   *u;
	int			len;

	if (s == NULL)
	{
		put_int32(buf, -1);
		return;
	}
	u = pg_server_to_any(s, strlen(s), PG_UTF8);
	len = strlen(u);
	put_int32(buf, len);
	appendBinaryStringInfo(buf, u, len);
}

static void
event_hash(const AmEventRec *ev, uint8 *out)
{
	StringInfoData buf;
	pg_cryptohash_ctx *ctx;
	char	   *details;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, AM_CANONICAL_VERSION);
	put_text(&buf, ev->agent_id);
	put_text(&buf, ev->policy);
	put_int64(&buf, ev->seq);
	put_text(&buf, ev->event_type);
	put_int64(&buf, ev->occurred_at +
			  (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY);
	put_text(&buf, ev->actor);
	put_text(&buf, ev->db_user);
	put_text(&buf, ev->previous_state);
	put_text(&buf, ev->new_state);
	details = JsonbToCString(NULL, &ev->details->root, VARSIZE(ev->details));
	put_text(&buf, details);
	if (ev->prev_hash == NULL)
		put_int32(&buf, -1);
	else
	{
		put_int32(&buf, PG_SHA256_DIGEST_LENGTH);
		appendBinaryStringInfo(&buf, (const char *) ev->prev_hash, PG_SHA256_DIGEST_LENGTH);
	}

	ctx = pg_cryptohash_create(PG_SHA256);
	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (uint8 *) buf.data, buf.len) < 0 ||
		pg_cryptohash_final(ctx, out, PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "could not compute SHA-256 of an audit event: %s",
			 pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	pfree(buf.data);
}

/* ----------------------------------------------------------------
 * Appending to a chain
 * ----------------------------------------------------------------
 */
typedef struct AmChain
{
	int64		seq;
	bool		has_head;
	uint8		head[PG_SHA256_DIGEST_LENGTH];
} AmChain;

static AmPlan insert_event_plan = {
	"INSERT INTO agentmesh.audit_events (agent_id, policy, seq, event_type, occurred_at,"
	" actor, db_user, previous_state, new_state, details, prev_hash, hash)"
	" VALUES ($1, $2, $3, $4::agentmesh.lifecycle_event_type, $5, $6, $7,"
	" $8::agentmesh.lifecycle_state, $9::agentmesh.lifecycle_state, $10, $11, $12)",
	12, {TEXTOID, TEXTOID, INT8OID, TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID,
	TEXTOID, TEXTOID, JSONBOID, BYTEAOID, BYTEAOID}
};

/* Must be called inside am_connect()/am_finish(). */
static void
append_event(AmChain *chain, const char *agent_id, const char *policy, AmEvent ev,
			 const char *actor, int prev_state, int new_state, Jsonb *details)
{
	AmEventRec rec;
	uint8		hash[PG_SHA256_DIGEST_LENGTH];
	Datum		values[12];
	bool		nulls[12];

	memset(nulls, 0, sizeof(nulls));
	rec.agent_id = agent_id;
	rec.policy = policy;
	rec.seq = chain->seq + 1;
	rec.event_type = am_event_names[ev];
	rec.occurred_at = GetCurrentTransactionStartTimestamp();
	rec.actor = actor;
	rec.db_user = GetUserNameFromId(GetSessionUserId(), false);
	rec.previous_state = prev_state == AM_STATE_NONE ? NULL : am_state_names[prev_state];
	rec.new_state = new_state == AM_STATE_NONE ? NULL : am_state_names[new_state];
	rec.details = details;
	rec.prev_hash = chain->has_head ? chain->head : NULL;
	event_hash(&rec, hash);

	values[0] = am_text_datum(rec.agent_id);
	nulls[0] = rec.agent_id == NULL;
	values[1] = am_text_datum(rec.policy);
	nulls[1] = rec.policy == NULL;
	values[2] = Int64GetDatum(rec.seq);
	values[3] = CStringGetTextDatum(rec.event_type);
	values[4] = TimestampTzGetDatum(rec.occurred_at);
	values[5] = CStringGetTextDatum(rec.actor);
	values[6] = CStringGetTextDatum(rec.db_user);
	values[7] = am_text_datum(rec.previous_state);
	nulls[7] = rec.previous_state == NULL;
	values[8] = am_text_datum(rec.new_state);
	nulls[8] = rec.new_state == NULL;
	values[9] = JsonbPGetDatum(details);
	values[10] = rec.prev_hash ? PointerGetDatum(am_bytea(rec.prev_hash, PG_SHA256_DIGEST_LENGTH)) : (Datum) 0;
	nulls[10] = rec.prev_hash == NULL;
	values[11] = PointerGetDatum(am_bytea(hash, PG_SHA256_DIGEST_LENGTH));

	if (am_exec(&insert_event_plan, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert audit event");
	am_notify_event();			/* a hint to listeners, sent at commit */

	chain->seq = rec.seq;
	chain->has_head = true;
	memcpy(chain->head, hash, PG_SHA256_DIGEST_LENGTH);
}

/* ----------------------------------------------------------------
 * Tuple helpers
 * ----------------------------------------------------------------
 */
static char *
col_text(HeapTuple tup, TupleDesc desc, const char *name)
{
	bool		isnull;
	Datum		d = am_col(tup, desc, name, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* A name column (agents.team) as a C string; NULL if null. */
static char *
col_name(HeapTuple tup, TupleDesc desc, const char *name)
{
	bool		isnull;
	Datum		d = am_col(tup, desc, name, &isnull);

	return isnull ? NULL : pstrdup(NameStr(*DatumGetName(d)));
}

static void
read_chain(HeapTuple tup, TupleDesc desc, AmChain *chain)
{
	bool		isnull;
	Datum		d;

	chain->seq = DatumGetInt64(am_col(tup, desc, "audit_seq", &isnull));
	d = am_col(tup, desc, "audit_head", &isnull);
	chain->has_head = !isnull;
	if (!isnull)
	{
		bytea	   *b = DatumGetByteaPP(d);

		if (VARSIZE_ANY_EXHDR(b) != PG_SHA256_DIGEST_LENGTH)
			elog(ERROR, "audit chain head has the wrong length");
		memcpy(chain->head, VARDATA_ANY(b), PG_SHA256_DIGEST_LENGTH);
	}
}

/* Do two versions of a column differ? */
static bool
col_changed(HeapTuple a, HeapTuple b, TupleDesc desc, const char *name)
{
	int			n = am_attnum(desc, name);
	Form_pg_attribute att = TupleDescAttr(desc, n - 1);
	bool		na;
	bool		nb;
	Datum		da = heap_getattr(a, n, desc, &na);
	Datum		db = heap_getattr(b, n, desc, &nb);

	if (na || nb)
		return na != nb;
	return !datumIsEqual(da, db, att->attbyval, att->attlen);
}

/*
 * Append the value of column "name" as JSON, typed (from 1.1 on details
 * carry numbers as numbers): booleans, integers, jsonb and text as
 * themselves, intervals as seconds (policies refuse months, so that is
 * exact).  Independent of DateStyle and IntervalStyle, so the stored
 * details mean the same whatever session wrote them.
 */
static void
append_json_col(StringInfo buf, HeapTuple tup, TupleDesc desc, const char *name)
{
	int			n = am_attnum(desc, name);
	Form_pg_attribute att = TupleDescAttr(desc, n - 1);
	bool		isnull;
	Datum		d = heap_getattr(tup, n, desc, &isnull);

	escape_json(buf, name);
	appendStringInfoString(buf, ": ");
	if (isnull)
		appendStringInfoString(buf, "null");
	else if (att->atttypid == BOOLOID)
		appendStringInfoString(buf, DatumGetBool(d) ? "true" : "false");
	else if (att->atttypid == INT4OID)
		appendStringInfo(buf, "%d", DatumGetInt32(d));
	else if (att->atttypid == INT8OID)
		appendStringInfo(buf, INT64_FORMAT, DatumGetInt64(d));
	else if (att->atttypid == FLOAT8OID && !isnan(DatumGetFloat8(d)) && !isinf(DatumGetFloat8(d)))
	{
		/* rotate_after; a number in JSON (NaN and infinities stay strings) */
		appendStringInfoString(buf, float8out_internal(DatumGetFloat8(d)));
	}
	else if (att->atttypid == INTERVALOID)
	{
		Interval   *iv = DatumGetIntervalP(d);
		int64		usec = iv->time + ((int64) iv->day + (int64) iv->month * DAYS_PER_MONTH) * USECS_PER_DAY;

		appendStringInfo(buf, INT64_FORMAT, usec / USECS_PER_SEC);
		if (usec % USECS_PER_SEC != 0)
			appendStringInfo(buf, ".%06d", (int) ((usec < 0 ? -usec : usec) % USECS_PER_SEC));
	}
	else if (att->atttypid == JSONBOID)
		appendStringInfoString(buf, JsonbToCString(NULL, &DatumGetJsonbP(d)->root, VARSIZE_ANY(DatumGetPointer(d))));
	else if (type_is_array(att->atttypid))
	{
		/* a list is a JSON array (policies.allowed_roles), as in other details */
		text	   *js = DatumGetTextPP(DirectFunctionCall1(array_to_json, d));

		appendStringInfoString(buf, text_to_cstring(js));
	}
	else
	{
		Oid			out;
		bool		varlena;

		getTypeOutputInfo(att->atttypid, &out, &varlena);
		escape_json(buf, OidOutputFunctionCall(out, d));
	}
}

/*
 * Append the members "old": {...}, "new": {...} with the changed columns'
 * values (only "new", with every column, when oldtup is NULL).
 */
static void
append_old_new(StringInfo buf, HeapTuple oldtup, HeapTuple newtup, TupleDesc desc,
			   const char *const *cols, int ncols)
{
	int			side;

	/* an insert has new values only */
	for (side = oldtup ? 0 : 1; side < 2; side++)
	{
		bool		first = true;
		int			i;

		appendStringInfoString(buf, side == 0 ? ", \"old\": {" : ", \"new\": {");
		for (i = 0; i < ncols; i++)
		{
			/* a schema still at 1.0 lacks the columns 1.1 added */
			if (SPI_fnumber(desc, cols[i]) <= 0)
				continue;
			if (oldtup && !col_changed(oldtup, newtup, desc, cols[i]))
				continue;
			if (!first)
				appendStringInfoString(buf, ", ");
			append_json_col(buf, side == 0 ? oldtup : newtup, desc, cols[i]);
			first = false;
		}
		appendStringInfoChar(buf, '}');
	}
}

static Jsonb *
jsonb_from_cstring(const char *s)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s)));
}

static Jsonb *
empty_details(void)
{
	return jsonb_from_cstring("{}");
}

static bool
is_extension_owner_or_superuser(void)
{
	return superuser() || GetUserId() == am_extension_owner();
}

/* ----------------------------------------------------------------
 * agents trigger
 * ----------------------------------------------------------------
 */

/*
 * An agent's policy must exist.  This is checked here rather than by a
 * foreign key: pg_dump orders the data of an extension's tables by their
 * foreign keys, but records no such dependency for a parallel pg_restore
 * (-j), which may then load agents before policies (and credentials before
 * agents) and fail.  Policies are never deleted, renamed or truncated
 * (policies_guard), so a check at insert and at a change of policy keeps
 * every reference valid; lm_verify_audit() checks all of them.
 */
static void
check_policy_exists(HeapTuple tup, TupleDesc desc)
{
	AmPolicy	pol;
	char	   *pname = col_text(tup, desc, "policy");

	if (pname == NULL || !am_load_policy(pname, &pol))
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("the agent's policy does not exist"),
				 errdetail("The policy of an agent must be a row of agentmesh.policies.")));
}
static const char *const heartbeat_columns[] = {
	"last_heartbeat", "heartbeat_count", "heartbeat_missed_at"
};

/* descriptive columns whose old and new values attributes_changed records */
static const char *const valued_columns[] = {
	"name", "purpose", "agent_type", "policy", "tags", "requested_by"
};

static const char *const descriptive_columns[] = {
	"name", "purpose", "agent_type", "policy", "tags", "credential_id",
	"credential_issued_at", "credential_expires_at", "requested_by",
	"created_at", "activated_at", "decommissioned_at", "updated_at"
};

PG_FUNCTION_INFO_V1(agentmesh_agents_guard);
Datum
agentmesh_agents_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	oldtup = NULL;
	HeapTuple	newtup;
	AmAuditContext ctx = audit_ctx;
	AmOp		op;
	const AmTransition *t;
	AmState		from = (AmState) AM_STATE_NONE;
	AmState		to;
	char	   *agent_id;
	const char *actor;
	AmChain		chain;
	AmPriv		priv;
	int			i;
	int			ncols = 0;
	int			cols[8];
	Datum		vals[8];
	bool		nulls[8];
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int			revoked = -1;
	StringInfoData changed;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		elog(ERROR, "agents_guard must be a BEFORE ROW trigger");
	desc = td->tg_relation->rd_att;

	if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("agents cannot be deleted"),
				 errdetail("Agent rows are kept as tombstones so that their identifiers are never reused and their audit trail stays attached."),
				 errhint("Use lm_decommission() to retire an agent.")));

	/* the context is for exactly one row change */
	am_clear_audit_context();

	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		oldtup = td->tg_trigtuple;
		newtup = td->tg_newtuple;

		/* Fast path: an lm_heartbeat() that is not audited changes nothing else. */
		if (ctx.active && ctx.op == AM_OP_HEARTBEAT && !ctx.audit_heartbeat)
			return PointerGetDatum(newtup);
	}
	else
		newtup = td->tg_trigtuple;

	initStringInfo(&changed);
	agent_id = col_text(newtup, desc, "agent_id");
	actor = ctx.active ? ctx.actor : GetUserNameFromId(GetSessionUserId(), false);
	{
		bool		isnull;

		to = am_state_from_datum(am_col(newtup, desc, "state", &isnull));
	}

	if (oldtup == NULL)
	{
		/* INSERT: a request, or a row being restored by pg_restore */
		AmChain		restored;

		read_chain(newtup, desc, &restored);
		if (!ctx.active && restored.seq > 0)
		{
			if (!is_extension_owner_or_superuser())
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("permission denied to insert an agent with an audit chain"),
						 errdetail("Only the extension owner restores agents from a dump.")));
			if (!restored.has_head)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("restored agent \"%s\" has an invalid audit chain head", agent_id),
						 errdetail("A restored agent needs audit_seq > 0 and a 32-byte audit_head.")));

			/*
			 * Stored as it is, its policy unchecked: a parallel pg_restore
			 * may load agents before policies (see check_policy_exists).
			 */
			return PointerGetDatum(newtup);
		}
		check_policy_exists(newtup, desc);
		if (ctx.active)
			op = ctx.op;
		else if (to == AM_PENDING_APPROVAL)
			op = AM_OP_REQUEST;
		else if (to == AM_PROVISIONED)
		{
			AmPolicy	pol;
			char	   *pname = col_text(newtup, desc, "policy");

			if (am_load_policy(pname, &pol) && pol.require_approval)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("new agent \"%s\" must start in state pending_approval", agent_id),
						 errdetail("Policy \"%s\" requires approval.", pname)));
			op = AM_OP_REQUEST_UNAPPROVED;
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("new agent \"%s\" cannot start in state %s", agent_id, am_state_names[to]),
					 errhint("New agents start in state pending_approval, or provisioned when their policy needs no approval.")));
		t = am_transition(op);
		if (t->to != (int) to)
			elog(ERROR, "request must create the agent in state %s", am_state_names[t->to]);
		chain.seq = 0;
		chain.has_head = false;
	}
	else
	{
		char	   *old_id = col_text(oldtup, desc, "agent_id");
		bool		isnull;

		from = am_state_from_datum(am_col(oldtup, desc, "state", &isnull));
		if (strcmp(old_id, agent_id) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("agent_id of agent \"%s\" cannot be changed", old_id)));
		read_chain(oldtup, desc, &chain);
		if (col_changed(oldtup, newtup, desc, "policy"))
			check_policy_exists(newtup, desc);

		if (ctx.active)
			op = ctx.op;
		else if (to != from)
		{
			t = am_transition_for_states(from, to);
			if (t == NULL)
			{
				if (from == AM_DECOMMISSIONED)
					am_report_wrong_state(AM_OP_UPDATE, agent_id, from);
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("invalid transition of agent \"%s\" from %s to %s",
								agent_id, am_state_names[from], am_state_names[to]),
						 errhint("Use the agentmesh.lm_* functions; agentmesh.lm_transitions() lists the allowed transitions.")));
			}
			op = t->op;
		}
		else
		{
			bool		only_heartbeat = true;

			for (i = 0; i < lengthof(descriptive_columns); i++)
				if (col_changed(oldtup, newtup, desc, descriptive_columns[i]))
				{
					appendStringInfo(&changed, "%s\"%s\"", changed.len ? ", " : "",
									 descriptive_columns[i]);
					only_heartbeat = false;
				}
			if (SPI_fnumber(desc, "team") > 0 &&	/* 1.1 */
				col_changed(oldtup, newtup, desc, "team"))
				op = AM_OP_CHANGE_TEAM;
			else if (col_changed(oldtup, newtup, desc, "owner"))
				op = AM_OP_CHANGE_OWNER;
			else if (!only_heartbeat)
				op = AM_OP_UPDATE;
			else
			{
				/* liveness columns only, or nothing: no event, chain untouched */
				for (i = 0; i < lengthof(heartbeat_columns); i++)
					if (col_changed(oldtup, newtup, desc, heartbeat_columns[i]) &&
						from == AM_DECOMMISSIONED)
						am_report_wrong_state(AM_OP_HEARTBEAT, agent_id, from);
				op = AM_OP_HEARTBEAT;
				ctx.audit_heartbeat = false;
				goto keep_chain;
			}
		}
		if (!am_op_allowed(op, from))
			am_report_wrong_state(op, agent_id, from);
	}

	t = am_transition(op);
	if ((t->to == AM_STATE_NONE ? (int) from : t->to) != (int) to)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("operation %s cannot change the state of agent \"%s\"", t->name, agent_id)));

	/* Write the events, each chained to the previous one. */
	am_connect(&priv);
	if (to == AM_DECOMMISSIONED && from != (AmState) AM_STATE_NONE)
	{
		AmPolicy	pol;
		char	   *pname = col_text(newtup, desc, "policy");

		if (am_load_policy(pname, &pol) && pol.revoke_on_decommission)
			revoked = am_revoke_all_credentials(agent_id, "decommissioned", now);
	}
	for (i = 0; i < AM_MAX_OP_EVENTS && t->events[i] != AM_EV_NONE; i++)
	{
		AmEvent		ev = t->events[i];
		int			ev_from = from;
		int			ev_to = (t->to == AM_STATE_NONE) ? AM_STATE_NONE : t->to;
		Jsonb	   *details;

		/* a decommission passes through decommissioning within the transaction */
		if (op == AM_OP_DECOMMISSION)
		{
			ev_from = i == 0 ? from : AM_DECOMMISSIONING;
			ev_to = i == 0 ? AM_DECOMMISSIONING : AM_DECOMMISSIONED;
		}
		if (op == AM_OP_RECLAIM && ev == AM_EV_OWNER_CHANGED)
			ev_from = ev_to = AM_STATE_NONE;
		if (t->to == AM_STATE_NONE)
			ev_from = AM_STATE_NONE;
		if (op == AM_OP_REQUEST_UNAPPROVED)
		{
			ev_from = i == 0 ? AM_STATE_NONE : AM_PENDING_APPROVAL;
			ev_to = i == 0 ? AM_PENDING_APPROVAL : AM_PROVISIONED;
		}

		if (ev == AM_EV_OWNER_CHANGED)
			details = am_details2("old_owner", oldtup ? col_text(oldtup, desc, "owner") : NULL,
								  "new_owner", col_text(newtup, desc, "owner"));
		else if (ev == AM_EV_TEAM_CHANGED)
			details = am_details2("old_team", oldtup ? col_name(oldtup, desc, "team") : NULL,
								  "new_team", col_name(newtup, desc, "team"));
		else if (ev == AM_EV_DECOMMISSIONED)
			details = jsonb_from_cstring(psprintf("{\"credentials_revoked\": %d}",
												  revoked < 0 ? 0 : revoked));
		else if (ev == AM_EV_ATTRIBUTES_CHANGED)
		{
			StringInfoData js;

			/* the old and new values of the descriptive text columns */
			initStringInfo(&js);
			appendStringInfo(&js, "{\"columns\": [%s]", changed.data);
			append_old_new(&js, oldtup, newtup, desc, valued_columns, lengthof(valued_columns));
			appendStringInfoChar(&js, '}');
			details = jsonb_from_cstring(js.data);
		}
		else if (ctx.active && ctx.details)
			details = ctx.details;
		else if (!ctx.active)
			details = jsonb_from_cstring("{\"source\": \"sql\"}");
		else
			details = empty_details();

		append_event(&chain, agent_id, NULL, ev, actor, ev_from, ev_to, details);
	}
	am_finish(&priv);

	/* Derived columns, set here so that plain SQL gets them too. */
	cols[ncols] = am_attnum(desc, "audit_seq");
	vals[ncols] = Int64GetDatum(chain.seq);
	nulls[ncols++] = false;
	cols[ncols] = am_attnum(desc, "audit_head");
	vals[ncols] = chain.has_head ? PointerGetDatum(am_bytea(chain.head, PG_SHA256_DIGEST_LENGTH)) : (Datum) 0;
	nulls[ncols++] = !chain.has_head;
	if (op != AM_OP_HEARTBEAT)
	{
		cols[ncols] = am_attnum(desc, "updated_at");
		vals[ncols] = TimestampTzGetDatum(now);
		nulls[ncols++] = false;
	}
	if (oldtup == NULL)
	{
		cols[ncols] = am_attnum(desc, "created_at");
		vals[ncols] = TimestampTzGetDatum(now);
		nulls[ncols++] = false;
		cols[ncols] = am_attnum(desc, "requested_by");
		vals[ncols] = CStringGetTextDatum(actor);
		nulls[ncols++] = false;
	}
	if (to == AM_ACTIVE && from != AM_ACTIVE)
	{
		cols[ncols] = am_attnum(desc, "activated_at");
		vals[ncols] = TimestampTzGetDatum(now);
		nulls[ncols++] = false;
	}
	if (to == AM_DECOMMISSIONED && from != AM_DECOMMISSIONED)
	{
		cols[ncols] = am_attnum(desc, "decommissioned_at");
		vals[ncols] = TimestampTzGetDatum(now);
		nulls[ncols++] = false;
		if (revoked >= 0)
		{
			cols[ncols] = am_attnum(desc, "credential_id");
			nulls[ncols++] = true;
			cols[ncols] = am_attnum(desc, "credential_expires_at");
			nulls[ncols++] = true;
		}
	}
	Assert(ncols <= lengthof(cols));
	return PointerGetDatum(heap_modify_tuple_by_cols(newtup, desc, ncols, cols, vals, nulls));

keep_chain:
	/* plain-SQL liveness update: keep the chain head as it was */
	cols[0] = am_attnum(desc, "audit_seq");
	vals[0] = Int64GetDatum(chain.seq);
	nulls[0] = false;
	cols[1] = am_attnum(desc, "audit_head");
	vals[1] = chain.has_head ? PointerGetDatum(am_bytea(chain.head, PG_SHA256_DIGEST_LENGTH)) : (Datum) 0;
	nulls[1] = !chain.has_head;
	return PointerGetDatum(heap_modify_tuple_by_cols(newtup, desc, 2, cols, vals, nulls));
}

/* ----------------------------------------------------------------
 * policies trigger
 * ----------------------------------------------------------------
 */
static bool restoring_policy = false;

/*
 * The chain fields of an inserted policy.  A new policy starts with no
 * chain (audit_seq 0, no head) and the trigger writes its first event;
 * only a restore by the extension owner (or a superuser) brings a row that
 * already carries its chain, and that chain must at least look like one.
 * Anything else would be stored as the head of a chain that can never
 * verify, so it is refused before anything is written.  Returns whether the
 * row carries a chain (a restored row).
 */
static bool
check_inserted_policy_chain(HeapTuple tup, TupleDesc desc, const char *name)
{
	bool		seq_null;
	bool		head_null;
	int64		seq = DatumGetInt64(am_col(tup, desc, "audit_seq", &seq_null));
	Datum		head = am_col(tup, desc, "audit_head", &head_null);

	if (seq_null || (seq == 0 && head_null))
		return false;
	if (!is_extension_owner_or_superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit chain of policy \"%s\" cannot be set", name),
				 errdetail("audit_seq and audit_head are maintained by the audit trigger."),
				 errhint("Insert the policy without audit_seq and audit_head; only a restore by the extension owner carries them.")));
	if (seq <= 0 || head_null ||
		VARSIZE_ANY_EXHDR(DatumGetByteaPP(head)) != PG_SHA256_DIGEST_LENGTH)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("restored policy \"%s\" has an invalid audit chain head", name),
				 errdetail("A restored policy needs audit_seq > 0 and a 32-byte audit_head."),
				 errhint("Insert the policy without audit_seq and audit_head to start a new chain.")));
	return true;
}

/*
 * Replace the installed 'default' with a dumped one, if the installed row
 * is still untouched (no chain: never changed since CREATE EXTENSION).  A
 * dumped 'default' without a chain must also have the installed settings,
 * so that only its timestamps are taken over; a changed one carries its
 * chain and replaces everything.  Returns false, changing nothing, when
 * this is not such a restore: the INSERT then proceeds and fails on the
 * duplicate key as any second 'default' would.
 */
static bool
replace_installed_default(Relation rel, HeapTuple newtup, TupleDesc desc, bool carries_chain)
{
	/*
	 * Every policy column the installed table has (a 1.0 table lacks the
	 * 1.1 ones), then the timestamps and the chain.
	 */
	StringInfoData cols;
	StringInfoData vals;
	AmPlan		upd = {NULL, 2, {am_type_oid("policies"), BOOLOID}};
	int			i;
	Datum		args[2];
	AmPriv		priv;
	volatile uint64 replaced = 0;

	initStringInfo(&cols);
	initStringInfo(&vals);
	for (i = 0; i < AM_NUM_POLICY_COLUMNS; i++)
		if (SPI_fnumber(desc, am_policy_columns[i]) > 0)
		{
			appendStringInfo(&cols, "%s, ", am_policy_columns[i]);
			appendStringInfo(&vals, "r.%s, ", am_policy_columns[i]);
		}
	upd.sql = psprintf("UPDATE agentmesh.policies p SET (%screated_at, updated_at, audit_seq, audit_head) ="
					   " (%sr.created_at, r.updated_at, r.audit_seq, r.audit_head)"
					   " FROM (SELECT ($1::agentmesh.policies).*) r"
					   " WHERE p.name = 'default' AND p.audit_seq = 0 AND p.audit_head IS NULL"
	/* every setting equal: the rows but for their timestamps and chain */
					   "   AND ($2 OR to_jsonb(p) - ARRAY['created_at', 'updated_at', 'audit_seq', 'audit_head']"
					   "            = to_jsonb(r) - ARRAY['created_at', 'updated_at', 'audit_seq', 'audit_head'])",
					   cols.data, vals.data);

	args[0] = heap_copy_tuple_as_datum(newtup, desc);
	args[1] = BoolGetDatum(carries_chain);
	am_connect(&priv);
	restoring_policy = true;
	PG_TRY();
	{
		am_exec(&upd, args, NULL, false, 0);
		replaced = SPI_processed;
	}
	PG_FINALLY();
	{
		restoring_policy = false;
	}
	PG_END_TRY();
	if (upd.plan)
		SPI_freeplan(upd.plan);
	am_finish(&priv);
	if (replaced > 0)
		am_policy_changed(RelationGetRelid(rel));
	return replaced > 0;
}

PG_FUNCTION_INFO_V1(agentmesh_policies_guard);
Datum
agentmesh_policies_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	oldtup = NULL;
	HeapTuple	newtup;
	char	   *name;
	AmChain		chain;
	AmPriv		priv;
	StringInfoData js;
	int			i;
	int			cols[4];
	Datum		vals[4];
	bool		nulls[4] = {false, false, false, false};
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		elog(ERROR, "policies_guard must be a BEFORE ROW trigger");
	desc = td->tg_relation->rd_att;

	if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("policies cannot be deleted"),
				 errdetail("Agents refer to their policy for their whole life, and a policy's audit trail stays attached to its name."),
				 errhint("Stop using the policy for new agents instead.")));

	if (restoring_policy)
		return PointerGetDatum(td->tg_newtuple);

	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		oldtup = td->tg_trigtuple;
		newtup = td->tg_newtuple;
	}
	else
		newtup = td->tg_trigtuple;
	name = col_text(newtup, desc, "name");
	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("policy name must not be null")));

	if (oldtup == NULL)
	{
		bool		carries_chain = check_inserted_policy_chain(newtup, desc, name);

		/*
		 * The install script created 'default'.  A dumped 'default' being
		 * restored replaces it while it is still the untouched installed
		 * row; a dumped row that carries its chain is otherwise stored as it
		 * is.  Nothing here writes an audit event: the dump carries them.
		 */
		if (strcmp(name, "default") == 0 && is_extension_owner_or_superuser() &&
			replace_installed_default(td->tg_relation, newtup, desc, carries_chain))
			return PointerGetDatum(NULL);
		if (carries_chain)
			return PointerGetDatum(newtup);
		chain.seq = 0;
		chain.has_head = false;
		am_validate_policy(newtup, desc, name);
		initStringInfo(&js);
		appendStringInfoString(&js, "{\"operation\": \"insert\"");
		append_old_new(&js, NULL, newtup, desc, am_policy_columns, AM_NUM_POLICY_COLUMNS);
		appendStringInfoChar(&js, '}');
	}
	else
	{
		char	   *old_name = col_text(oldtup, desc, "name");
		volatile bool any = false;

		if (strcmp(old_name, name) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("policy \"%s\" cannot be renamed", old_name),
					 errhint("Create a policy with the new name instead.")));
		read_chain(oldtup, desc, &chain);
		am_validate_policy(newtup, desc, name);
		initStringInfo(&js);
		appendStringInfoString(&js, "{\"operation\": \"update\", \"columns\": [");
		for (i = 0; i < AM_NUM_POLICY_COLUMNS; i++)
			if (SPI_fnumber(desc, am_policy_columns[i]) > 0 &&	/* 1.0 tables lack some */
				col_changed(oldtup, newtup, desc, am_policy_columns[i]))
			{
				appendStringInfo(&js, "%s\"%s\"", any ? ", " : "", am_policy_columns[i]);
				any = true;
			}
		appendStringInfoChar(&js, ']');
		if (any)
			append_old_new(&js, oldtup, newtup, desc, am_policy_columns, AM_NUM_POLICY_COLUMNS);
		appendStringInfoChar(&js, '}');
		if (!any)
		{
			/* nothing that matters changed: keep the row and the chain as they were */
			return PointerGetDatum(oldtup);
		}
	}

	am_policy_changed(RelationGetRelid(td->tg_relation));
	am_connect(&priv);
	append_event(&chain, NULL, name, AM_EV_POLICY_CHANGED,
				 GetUserNameFromId(GetSessionUserId(), false),
				 AM_STATE_NONE, AM_STATE_NONE, jsonb_from_cstring(js.data));
	am_finish(&priv);

	cols[0] = am_attnum(desc, "audit_seq");
	vals[0] = Int64GetDatum(chain.seq);
	cols[1] = am_attnum(desc, "audit_head");
	vals[1] = PointerGetDatum(am_bytea(chain.head, PG_SHA256_DIGEST_LENGTH));
	cols[2] = am_attnum(desc, "updated_at");
	vals[2] = TimestampTzGetDatum(now);
	cols[3] = am_attnum(desc, "created_at");
	vals[3] = oldtup ? am_col(oldtup, desc, "created_at", &nulls[3]) : TimestampTzGetDatum(now);
	return PointerGetDatum(heap_modify_tuple_by_cols(newtup, desc, 4, cols, vals, nulls));
}

/* ----------------------------------------------------------------
 * Immutability: audit rows are never updated or deleted, and none of the
 * extension's tables is truncated.  ENABLE ALWAYS, so replica mode does
 * not switch this off.
 * ----------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(agentmesh_audit_immutable);
Datum
agentmesh_audit_immutable(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	const char *rel;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "audit_immutable must be called as a trigger");
	rel = RelationGetRelationName(td->tg_relation);

	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table agentmesh.%s cannot be truncated", rel),
				 strcmp(rel, "audit_events") == 0 ?
				 errdetail("Audit rows are immutable.") :
				 errdetail("Its rows are referenced by the immutable audit trail.")));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("audit rows are immutable"),
			 errdetail("%s on agentmesh.%s is not allowed.",
					   TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? "UPDATE" : "DELETE", rel)));
	PG_RETURN_NULL();
}

/* ----------------------------------------------------------------
 * lm_audit_trail(agent_id): the agent's events in chain order
 * ----------------------------------------------------------------
 */
static AmPlan agent_exists_plan = {
	"SELECT 1 FROM agentmesh.agents WHERE agent_id = $1", 1, {TEXTOID}
};
static AmPlan trail_plan = {
	"SELECT e FROM agentmesh.audit_events e WHERE e.agent_id = $1 ORDER BY e.seq",
	1, {TEXTOID}
};

PG_FUNCTION_INFO_V1(lm_audit_trail);
Datum
lm_audit_trail(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *agent_id = am_agent_id_arg(fcinfo);
	Datum		arg = CStringGetTextDatum(agent_id);
	AmPriv		priv;

	InitMaterializedSRF(fcinfo, MAT_SRF_BLESS);
	am_connect(&priv);
	am_exec(&agent_exists_plan, &arg, NULL, true, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("agent \"%s\" does not exist", agent_id)));
	am_exec(&trail_plan, &arg, NULL, true, 0);
	am_put_composite_rows(rsinfo);
	am_finish(&priv);
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * Verification: lm_verify_audit(agent_id DEFAULT NULL) and
 * lm_verify_audit_problems(agent_id DEFAULT NULL)
 *
 * One pass finds every problem, each reported once with its class, its
 * subject and the first event it breaks:
 *	 - every event in event_id order, which is each chain's order (a chain
 *	   grows under its subject's row lock), against its subject's chain so
 *	   far, kept in a hash table; each hash recomputed (chain_sequence,
 *	   chain_link, event_hash), going on after a problem from the stored
 *	   values so that one broken event does not hide the next;
 *	 - every agent and policy: exactly audit_seq events ending at its
 *	   audit_head (head_mismatch);
 *	 - references no foreign key holds (agent_policy_missing,
 *	   credential_orphan, event_orphan: events of a subject that does not
 *	   exist);
 *	 - every seal and the Merkle tree (seals.c: seal_range, seal_link,
 *	   seal_events, seal_hash, checkpoint_*, tree_*).
 * With an agent_id only that agent's chain and head are checked.
 * lm_verify_audit() summarizes: intact, and the first problem as before.
 * ----------------------------------------------------------------
 */
static AmPlan verify_events_plan = {
	"SELECT event_id, agent_id, policy, seq, event_type::text, occurred_at, actor, db_user,"
	" previous_state::text, new_state::text, details, prev_hash, hash"
	" FROM agentmesh.audit_events"
	" WHERE $1::text IS NULL OR agent_id = $1"
	" ORDER BY event_id",
	1, {TEXTOID}
};
/* every subject's head, in the order problems are reported */
static AmPlan verify_subjects_plan = {
	"SELECT agent_id, policy, audit_seq, audit_head FROM ("
	"   SELECT a.agent_id, NULL::text AS policy, a.audit_seq, a.audit_head"
	"     FROM agentmesh.agents a WHERE $1::text IS NULL OR a.agent_id = $1"
	"   UNION ALL"
	"   SELECT NULL, p.name, p.audit_seq, p.audit_head"
	"     FROM agentmesh.policies p WHERE $1::text IS NULL"
	" ) s ORDER BY agent_id, policy",
	1, {TEXTOID}
};

/*
 * References that no foreign key holds (see check_policy_exists): after a
 * restore that lost a table's rows, the events, agents or credentials left
 * behind must not verify as intact.
 */
static AmPlan verify_refs_plan = {
	"SELECT event_id, agent_id, policy, problem, cls FROM ("
	"   SELECT 1 AS o, NULL::int8 AS event_id, a.agent_id, NULL::text AS policy,"
	"          'agent refers to a policy that does not exist' AS problem,"
	"          'agent_policy_missing' AS cls"
	"     FROM agentmesh.agents a"
	"    WHERE NOT EXISTS (SELECT FROM agentmesh.policies p WHERE p.name = a.policy)"
	"   UNION ALL"
	"   SELECT 2, NULL, c.agent_id, NULL, 'credential of an agent that does not exist',"
	"          'credential_orphan'"
	"     FROM agentmesh.credentials c"
	"    WHERE NOT EXISTS (SELECT FROM agentmesh.agents a WHERE a.agent_id = c.agent_id)"
	"    GROUP BY c.agent_id"
	" ) s ORDER BY o, event_id, agent_id, policy",
	0, {InvalidOid}
};

typedef struct Problem
{
	char	   *cls;
	char	   *subject;
	int64		first_event;	/* -1: none */
	char	   *detail;
	char	   *summary;		/* lm_verify_audit()'s problem text */
	char	   *agent_id;
	char	   *policy;
	bool		has_seq;
	int64		seq;
} Problem;

typedef struct ProblemList
{
	MemoryContext cxt;			/* outlives SPI */
	List	   *items;
	int64		checked;
	/* set before a report from the chain walk or the heads */
	const char *agent_id;
	const char *policy;
	bool		has_seq;
	int64		seq;
} ProblemList;

static void
collect_problem(void *arg, const char *problem_class, const char *subject,
				int64 first_event, const char *detail)
{
	ProblemList *pl = (ProblemList *) arg;
	MemoryContext old = MemoryContextSwitchTo(pl->cxt);
	Problem    *p = palloc0(sizeof(Problem));

	p->cls = pstrdup(problem_class);
	p->subject = pstrdup(subject);
	p->first_event = first_event;
	p->detail = pstrdup(detail);
	if (strncmp(subject, "seal ", 5) == 0)
		p->summary = psprintf("audit %s: %s", subject, detail);
	else
		p->summary = p->detail;
	p->agent_id = pl->agent_id ? pstrdup(pl->agent_id) : NULL;
	p->policy = pl->policy ? pstrdup(pl->policy) : NULL;
	p->has_seq = pl->has_seq;
	p->seq = pl->seq;
	pl->items = lappend(pl->items, p);
	MemoryContextSwitchTo(old);
	pl->agent_id = NULL;
	pl->policy = NULL;
	pl->has_seq = false;
}

static char *
subject_name(const char *agent_id, const char *policy)
{
	if (agent_id)
		return psprintf("agent %s", agent_id);
	return psprintf("policy %s", policy ? policy : "(null)");
}

static char *
nullable_text(HeapTuple tup, TupleDesc desc, int colno)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, colno, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static bool
same_subject(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool
hash_equals(bytea *stored, const uint8 *h)
{
	return stored != NULL && VARSIZE_ANY_EXHDR(stored) == PG_SHA256_DIGEST_LENGTH &&
		memcmp(VARDATA_ANY(stored), h, PG_SHA256_DIGEST_LENGTH) == 0;
}

/*
 * What the walk saw of each subject's chain, keyed by a SHA-256 of the
 * subject (no length limit: a superuser may have inserted any id).  The
 * heads and the events whose subject does not exist are found by looking
 * the subjects' rows up here, instead of one index probe per event.
 */
typedef struct SubjectKey
{
	uint8		d[PG_SHA256_DIGEST_LENGTH];
} SubjectKey;

typedef struct SubjectEntry
{
	SubjectKey	key;
	char	   *agent_id;
	char	   *policy;
	int64		first_event;
	int64		last_event;
	int64		last_seq;
	bool		has_last_hash;
	uint8		last_hash[PG_SHA256_DIGEST_LENGTH];
	bool		seen;			/* its agent or policy row exists */
} SubjectEntry;

static void
subject_key(const char *agent_id, const char *policy, SubjectKey *key)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	const char *s = agent_id ? agent_id : (policy ? policy : "");
	char		kind = agent_id ? 'a' : 'p';

	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) &kind, 1) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) s, strlen(s)) < 0 ||
		pg_cryptohash_final(ctx, key->d, PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "could not compute SHA-256: %s", pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
}

static int
entry_by_first_event(const ListCell *a, const ListCell *b)
{
	int64		x = ((SubjectEntry *) lfirst(a))->first_event;
	int64		y = ((SubjectEntry *) lfirst(b))->first_event;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/* Every check; inside am_connect. */
static void
verify_all(const char *only, ProblemList *pl)
{
	Datum		arg = only ? CStringGetTextDatum(only) : (Datum) 0;
	bool		argnull = (only == NULL);
	Portal		portal;
	int64		expect_seq = 0;
	uint8		prev[PG_SHA256_DIGEST_LENGTH];
	bool		have_prev = false;
	MemoryContext walk = AllocSetContextCreate(CurrentMemoryContext, "audit walk",
											   ALLOCSET_DEFAULT_SIZES);
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext, "audit walk row",
												 ALLOCSET_DEFAULT_SIZES);
	MemoryContext outer;
	uint64		i;
	HASHCTL		hctl;
	HTAB	   *subjects;
	SubjectEntry *cur = NULL;
	HASH_SEQ_STATUS hseq;
	SubjectEntry *ent;
	List	   *orphans = NIL;
	ListCell   *lc;

	memset(&hctl, 0, sizeof(hctl));
	hctl.keysize = sizeof(SubjectKey);
	hctl.entrysize = sizeof(SubjectEntry);
	hctl.hcxt = CurrentMemoryContext;
	subjects = hash_create("audit subjects", 1024, &hctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	portal = SPI_cursor_open(NULL, am_prepare(&verify_events_plan), &arg,
							 argnull ? "n" : " ", true);
	for (;;)
	{
		SPITupleTable *tt;
		uint64		n;

		SPI_cursor_fetch(portal, true, 1000);
		tt = SPI_tuptable;
		n = SPI_processed;
		if (n == 0)
			break;
		for (i = 0; i < n; i++)
		{
			HeapTuple	tup = tt->vals[i];
			TupleDesc	desc = tt->tupdesc;
			AmEventRec	rec;
			bool		isnull;
			bytea	   *stored;
			bytea	   *stored_prev;
			uint8		h[PG_SHA256_DIGEST_LENGTH];
			int64		event_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			const char *cls = NULL;
			char	   *problem = NULL;

			MemoryContextReset(rowcxt);
			outer = MemoryContextSwitchTo(rowcxt);
			rec.agent_id = nullable_text(tup, desc, 2);
			rec.policy = nullable_text(tup, desc, 3);
			rec.seq = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
			rec.event_type = nullable_text(tup, desc, 5);
			rec.occurred_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 6, &isnull));
			rec.actor = nullable_text(tup, desc, 7);
			rec.db_user = nullable_text(tup, desc, 8);
			rec.previous_state = nullable_text(tup, desc, 9);
			rec.new_state = nullable_text(tup, desc, 10);
			rec.details = DatumGetJsonbP(SPI_getbinval(tup, desc, 11, &isnull));
			{
				Datum		d = SPI_getbinval(tup, desc, 12, &isnull);

				stored_prev = isnull ? NULL : DatumGetByteaPP(d);
			}
			stored = DatumGetByteaPP(SPI_getbinval(tup, desc, 13, &isnull));

			/* this event's subject and how far its chain got */
			if (cur == NULL || !same_subject(cur->agent_id, rec.agent_id) ||
				!same_subject(cur->policy, rec.policy))
			{
				SubjectKey	key;
				bool		found;

				subject_key(rec.agent_id, rec.policy, &key);
				cur = hash_search(subjects, &key, HASH_ENTER, &found);
				if (!found)
				{
					MemoryContext old = MemoryContextSwitchTo(walk);

					cur->agent_id = rec.agent_id ? pstrdup(rec.agent_id) : NULL;
					cur->policy = rec.policy ? pstrdup(rec.policy) : NULL;
					MemoryContextSwitchTo(old);
					cur->first_event = event_id;
					cur->last_seq = 0;
					cur->has_last_hash = false;
					cur->seen = false;
				}
			}
			expect_seq = cur->last_seq + 1;
			have_prev = cur->has_last_hash;
			if (have_prev)
				memcpy(prev, cur->last_hash, PG_SHA256_DIGEST_LENGTH);

			rec.prev_hash = have_prev ? prev : NULL;
			if (rec.seq != expect_seq)
			{
				cls = "chain_sequence";
				problem = psprintf("sequence number %lld where %lld was expected (events missing or inserted)",
								   (long long) rec.seq, (long long) expect_seq);
			}
			else if ((stored_prev == NULL) != !have_prev ||
					 (stored_prev && !hash_equals(stored_prev, prev)))
			{
				cls = "chain_link";
				problem = "prev_hash does not match the hash of the previous event";
			}
			else
			{
				event_hash(&rec, h);
				if (!hash_equals(stored, h))
				{
					cls = "event_hash";
					problem = "stored hash does not match the event's contents";
				}
			}
			if (cls)
			{
				pl->agent_id = rec.agent_id;
				pl->policy = rec.policy;
				pl->has_seq = true;
				pl->seq = rec.seq;
				collect_problem(pl, cls, subject_name(rec.agent_id, rec.policy), event_id, problem);
			}
			/* go on from what is stored */
			if (VARSIZE_ANY_EXHDR(stored) == PG_SHA256_DIGEST_LENGTH)
			{
				memcpy(prev, VARDATA_ANY(stored), PG_SHA256_DIGEST_LENGTH);
				have_prev = true;
			}
			else
				have_prev = false;
			expect_seq = rec.seq + 1;
			cur->last_event = event_id;
			cur->last_seq = rec.seq;
			cur->has_last_hash = have_prev;
			if (have_prev)
				memcpy(cur->last_hash, prev, PG_SHA256_DIGEST_LENGTH);
			pl->checked++;
			MemoryContextSwitchTo(outer);
		}
		SPI_freetuptable(tt);
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(rowcxt);
	/* walk holds the subjects' names, which the lookups below still report */

	/* every agent and policy: exactly audit_seq events, ending at audit_head */
	portal = SPI_cursor_open(NULL, am_prepare(&verify_subjects_plan), &arg,
							 argnull ? "n" : " ", true);
	for (;;)
	{
		SPITupleTable *tt;
		uint64		n;

		SPI_cursor_fetch(portal, true, 10000);
		tt = SPI_tuptable;
		n = SPI_processed;
		if (n == 0)
			break;
		for (i = 0; i < n; i++)
		{
			HeapTuple	tup = tt->vals[i];
			TupleDesc	desc = tt->tupdesc;
			bool		isnull;
			bool		headnull;
			char	   *a = nullable_text(tup, desc, 1);
			char	   *p = nullable_text(tup, desc, 2);
			int64		seq = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
			Datum		hd = SPI_getbinval(tup, desc, 4, &headnull);
			SubjectKey	key;
			bool		ok;

			subject_key(a, p, &key);
			ent = hash_search(subjects, &key, HASH_FIND, NULL);
			if (ent == NULL)
				ok = seq == 0 && headnull;
			else
			{
				ent->seen = true;
				ok = seq == ent->last_seq && !headnull && ent->has_last_hash &&
					hash_equals(DatumGetByteaPP(hd), ent->last_hash);
			}
			if (!ok)
			{
				pl->agent_id = a;
				pl->policy = p;
				pl->has_seq = true;
				pl->seq = seq;
				collect_problem(pl, "head_mismatch", subject_name(a, p),
								ent ? ent->last_event : -1,
								"chain head stored with the subject does not match its last event (events deleted from the end, or the head altered)");
			}
		}
		SPI_freetuptable(tt);
	}
	SPI_cursor_close(portal);

	if (only != NULL)
		return;

	/* events of a subject that does not exist: one row per subject, by its first event */
	hash_seq_init(&hseq, subjects);
	while ((ent = hash_seq_search(&hseq)) != NULL)
		if (!ent->seen)
			orphans = lappend(orphans, ent);
	list_sort(orphans, entry_by_first_event);
	foreach(lc, orphans)
	{
		ent = (SubjectEntry *) lfirst(lc);
		pl->agent_id = ent->agent_id;
		pl->policy = ent->policy;
		collect_problem(pl, "event_orphan", subject_name(ent->agent_id, ent->policy),
						ent->first_event, "audit event of a subject that does not exist");
	}


	am_exec(&verify_refs_plan, NULL, NULL, true, 0);
	{
		SPITupleTable *tt = SPI_tuptable;
		uint64		n = SPI_processed;

		for (i = 0; i < n; i++)
		{
			HeapTuple	tup = tt->vals[i];
			TupleDesc	desc = tt->tupdesc;
			bool		isnull;
			Datum		ev = SPI_getbinval(tup, desc, 1, &isnull);
			char	   *a = nullable_text(tup, desc, 2);
			char	   *p = nullable_text(tup, desc, 3);

			pl->agent_id = a;
			pl->policy = p;
			collect_problem(pl, nullable_text(tup, desc, 5), subject_name(a, p),
							isnull ? -1 : DatumGetInt64(ev), nullable_text(tup, desc, 4));
		}
	}
	/* seals and the tree cover every subject, so only a full check includes them */
	(void) am_verify_seals(collect_problem, pl);
}

PG_FUNCTION_INFO_V1(lm_verify_audit);
Datum
lm_verify_audit(PG_FUNCTION_ARGS)
{
	char	   *only = PG_ARGISNULL(0) ? NULL :
		am_agent_id_arg_opt(fcinfo, false);
	ProblemList pl;
	AmPriv		priv;
	TupleDesc	rdesc;
	Datum		values[7];
	bool		nulls[7];
	Problem    *p = NULL;

	memset(&pl, 0, sizeof(pl));
	pl.cxt = CurrentMemoryContext;
	if (get_call_result_type(fcinfo, NULL, &rdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	am_connect(&priv);
	if (only)
	{
		Datum		arg = CStringGetTextDatum(only);

		am_exec(&agent_exists_plan, &arg, NULL, true, 1);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("agent \"%s\" does not exist", only)));
	}
	verify_all(only, &pl);
	am_finish(&priv);

	if (pl.items != NIL)
		p = (Problem *) linitial(pl.items);
	memset(nulls, 0, sizeof(nulls));
	values[0] = BoolGetDatum(p == NULL);
	values[1] = Int64GetDatum(pl.checked);
	values[2] = Int64GetDatum(p ? p->first_event : 0);
	nulls[2] = p == NULL || p->first_event < 0;
	values[3] = am_text_datum(p ? p->agent_id : NULL);
	nulls[3] = p == NULL || p->agent_id == NULL;
	values[4] = am_text_datum(p ? p->policy : NULL);
	nulls[4] = p == NULL || p->policy == NULL;
	values[5] = Int64GetDatum(p ? p->seq : 0);
	nulls[5] = p == NULL || !p->has_seq;
	values[6] = am_text_datum(p ? p->summary : NULL);
	nulls[6] = p == NULL;
	rdesc = BlessTupleDesc(rdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(rdesc, values, nulls)));
}

PG_FUNCTION_INFO_V1(lm_verify_audit_problems);
Datum
lm_verify_audit_problems(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *only = PG_ARGISNULL(0) ? NULL :
		am_agent_id_arg_opt(fcinfo, false);
	ProblemList pl;
	AmPriv		priv;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	memset(&pl, 0, sizeof(pl));
	pl.cxt = CurrentMemoryContext;
	am_connect(&priv);
	if (only)
	{
		Datum		arg = CStringGetTextDatum(only);

		am_exec(&agent_exists_plan, &arg, NULL, true, 1);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("agent \"%s\" does not exist", only)));
	}
	verify_all(only, &pl);
	am_finish(&priv);

	foreach(lc, pl.items)
	{
		Problem    *p = (Problem *) lfirst(lc);
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = CStringGetTextDatum(p->cls);
		values[1] = CStringGetTextDatum(p->subject);
		values[2] = Int64GetDatum(p->first_event);
		nulls[2] = p->first_event < 0;
		values[3] = CStringGetTextDatum(p->detail);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

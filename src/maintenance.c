/*-------------------------------------------------------------------------
 *
 * maintenance.c
 *		The maintenance pass (agentmesh.lm_run_maintenance).
 *
 * A pass is a sequence of phases; each phase walks the agents in agent_id
 * order, one batch at a time, keyset-paginated so that every agent is
 * considered at most once per phase and the pass always ends:
 *
 *	 orphan			 active agents silent past orphan_threshold, never
 *					 heartbeating that long after activation, or ownerless
 *					 -> mark_orphaned (the rules live in orphans.c)
 *	 decommission	 orphaned agents silent past max_inactive_days whose
 *					 policy has auto_decommission -> decommission
 *	 heartbeat		 active agents silent past heartbeat_interval, once per
 *					 silence -> heartbeat_missed event
 *	 credentials	 rotate / issue / record expiry (am_rotate_if_needed)
 *	 seal			 one audit seal over the newly finished transactions (seals.c)
 *
 * am_pass_step() does one batch and must run inside a transaction.  The
 * background worker (worker.c) gives every batch its own transaction, so a
 * pass holds row locks only for one batch; lm_run_maintenance() called from
 * SQL runs every batch in the caller's transaction.  Rows are taken with
 * FOR UPDATE SKIP LOCKED: a pass never waits for a client's row lock, and
 * a row changed by a client after the scan is re-evaluated under the lock,
 * so no action is applied twice or on stale data.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "agentmesh.h"

typedef enum AmPhase
{
	PH_ORPHAN = 0,
	PH_DECOMMISSION,
	PH_HEARTBEAT,
	PH_CREDENTIALS,
	PH_SEAL,
	PH_DONE
} AmPhase;

static const char *const phase_names[] = {
	"orphans", "auto_decommission", "missed heartbeats", "credentials", "seal", "done"
};

const char *const am_count_names[AM_NUM_COUNTS] = {
	"orphaned", "decommissioned", "heartbeats_missed", "rotated", "issued",
	"expired", "seals"
};

/* ----------------------------------------------------------------
 * Plans
 * ----------------------------------------------------------------
 */

/*
 * Silence is measured from the last heartbeat, or from activation for an
 * agent that never sent one; administrative changes (updated_at) do not
 * end it, or orphaning itself would restart the clock.
 */
#define SILENCE_START "COALESCE(a.last_heartbeat, a.activated_at, a.created_at)"

/* orphaned agents silent past max_inactive_days whose policy retires them */
#define DECOMMISSION_HIT \
	"(p.auto_decommission" \
	" AND $1 - " SILENCE_START " > make_interval(days => p.max_inactive_days))"

/*
 * Once per silence: heartbeat_missed_at records when a miss was recorded,
 * and a later heartbeat (last_heartbeat after it) starts a new silence.
 */
#define HEARTBEAT_MISSED_HIT \
	"(a.state = 'active' AND $1 - " SILENCE_START " > p.heartbeat_interval" \
	" AND (a.heartbeat_missed_at IS NULL OR a.heartbeat_missed_at < " SILENCE_START "))"

/*
 * The candidates of a whole pass, found by one scan of the agents with
 * cheap predicates and no lock, so that a pass costs one scan plus work in
 * proportion to what it does, whatever the size of the fleet (an index on
 * last_heartbeat would cost every heartbeat its HOT update).  Each phase
 * then locks its candidates in batches and checks its rule again under the
 * lock.  An active agent is a decommission candidate too: the orphan phase
 * may orphan it first, in the same pass.
 */
#define CANDIDATES_SQL(rotation_hit) \
	"SELECT a.agent_id, " AM_ORPHAN_HIT "," \
	"       a.state IN ('active', 'orphaned') AND " DECOMMISSION_HIT "," \
	"       " HEARTBEAT_MISSED_HIT ", " rotation_hit \
	"  FROM agentmesh.agents a JOIN agentmesh.policies p ON p.name = a.policy" \
	" WHERE a.state IN ('active', 'orphaned')" \
	"   AND (" AM_ORPHAN_HIT " OR " DECOMMISSION_HIT \
	"        OR " HEARTBEAT_MISSED_HIT " OR " rotation_hit ")"
static AmPlan candidates_plan = {CANDIDATES_SQL(AM_ROTATION_HIT), 1, {TIMESTAMPTZOID}};
/* the same on the 1.0 schema (no rotate_after yet) */
static AmPlan candidates_plan_10 = {CANDIDATES_SQL(AM_ROTATION_HIT_10), 1, {TIMESTAMPTZOID}};

static AmPlan decommission_batch_plan = {
	"SELECT a.agent_id,"
	"       floor(extract(epoch FROM $1 - " SILENCE_START ") / 86400)::int8,"
	"       p.max_inactive_days"
	"  FROM agentmesh.agents a JOIN agentmesh.policies p ON p.name = a.policy"
	" WHERE a.agent_id = ANY ($2) AND a.state = 'orphaned' AND " DECOMMISSION_HIT
	" ORDER BY a.agent_id"
	"   FOR UPDATE OF a SKIP LOCKED",
	2, {TIMESTAMPTZOID, TEXTARRAYOID}
};

static AmPlan heartbeat_batch_plan = {
	"SELECT a.agent_id,"
	"       floor(extract(epoch FROM $1 - " SILENCE_START "))::int8,"
	"       floor(extract(epoch FROM p.heartbeat_interval))::int8"
	"  FROM agentmesh.agents a JOIN agentmesh.policies p ON p.name = a.policy"
	" WHERE a.agent_id = ANY ($2) AND " HEARTBEAT_MISSED_HIT
	" ORDER BY a.agent_id"
	"   FOR UPDATE OF a SKIP LOCKED",
	2, {TIMESTAMPTZOID, TEXTARRAYOID}
};

static AmPlan heartbeat_missed_plan = {
	"UPDATE agentmesh.agents SET heartbeat_missed_at = now() WHERE agent_id = $1",
	1, {TEXTOID}
};

/* ----------------------------------------------------------------
 * The pass
 * ----------------------------------------------------------------
 */
/*
 * Start a pass.  The candidate lists live in ctx, which must outlive the
 * batch transactions of the pass (the worker resets it after each pass).
 */
void
am_pass_init(AmPass *pass, TimestampTz as_of, int batch_size, MemoryContext ctx)
{
	memset(pass, 0, sizeof(*pass));
	pass->as_of = as_of;
	pass->batch_size = batch_size;
	pass->phase = PH_ORPHAN;
	pass->ctx = ctx;
}

const char *
am_pass_phase_name(const AmPass *pass)
{
	return phase_names[pass->phase];
}

static char *
row_text(SPITupleTable *tt, uint64 i, int col)
{
	return SPI_getvalue(tt->vals[i], tt->tupdesc, col);
}

/* One scan for the candidates of every phase (inside am_connect). */
static void
find_candidates(AmPass *pass)
{
	Datum		v = TimestampTzGetDatum(pass->as_of);
	SPITupleTable *tt;
	uint64		n;
	uint64		i;
	int			ph;

	am_exec(am_schema_is_1_1() ? &candidates_plan : &candidates_plan_10, &v, NULL, true, 0);
	tt = SPI_tuptable;
	n = SPI_processed;
	for (ph = 0; ph < AM_CAND_PHASES; ph++)
		pass->cand[ph] = MemoryContextAlloc(pass->ctx, sizeof(char *) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		char	   *id = NULL;

		for (ph = 0; ph < AM_CAND_PHASES; ph++)
		{
			bool		isnull;

			if (!DatumGetBool(SPI_getbinval(tt->vals[i], tt->tupdesc, ph + 2, &isnull)) || isnull)
				continue;
			if (id == NULL)
				id = MemoryContextStrdup(pass->ctx, row_text(tt, i, 1));
			pass->cand[ph][pass->ncand[ph]++] = id;
		}
	}
	pass->found = true;
	SPI_freetuptable(tt);
}

/*
 * The next batch of the current phase's candidates as a text[] (NULL when
 * the phase has none left), and move on.
 */
static Datum
next_batch(AmPass *pass, int *count)
{
	int			ph = pass->phase;
	int			n = Min(pass->batch_size, pass->ncand[ph] - pass->pos);
	Datum	   *elems;
	int			i;

	*count = n;
	if (n <= 0)
		return (Datum) 0;
	elems = palloc(sizeof(Datum) * n);
	for (i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(pass->cand[ph][pass->pos + i]);
	pass->pos += n;
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* After a batch: the phase ends when its candidates are used up. */
static void
advance(AmPass *pass)
{
	if (pass->pos >= pass->ncand[pass->phase])
	{
		pass->phase++;
		pass->pos = 0;
	}
}

/* What a phase does to one locked agent, row i of tt; true when it acted. */
typedef bool (*AmAgentAction) (SPITupleTable *tt, uint64 i);

/*
 * Lock the next batch of the current phase's candidates with the phase's
 * plan ($1 as_of, $2 the candidate ids), which checks the phase's rule again
 * under the lock, and act on each locked agent.  Each agent's work has its
 * own SPI connection, so that what it allocates (result tables, details,
 * tokens) is released before the next agent: a batch's memory does not grow
 * with batch_size, which matters because a worker's malloc keeps its peak.
 */
static void
locked_batch(AmPass *pass, AmPlan *plan, AmAgentAction act, AmCount counter)
{
	int			count;
	Datum		v[2];
	SPITupleTable *tt;
	uint64		i;

	v[1] = next_batch(pass, &count);
	if (count > 0)
	{
		v[0] = TimestampTzGetDatum(pass->as_of);
		am_exec(plan, v, NULL, false, 0);
		tt = SPI_tuptable;
		for (i = 0; i < SPI_processed; i++)
		{
			AmPriv		priv;
			bool		acted;

			am_connect(&priv);
			acted = act(tt, i);
			am_finish(&priv);
			if (acted)
				pass->counts[counter]++;
		}
	}
	advance(pass);
}

static bool
mark_orphaned(SPITupleTable *tt, uint64 i)
{
	am_transition_agent(AM_OP_MARK_ORPHANED, row_text(tt, i, 1), AM_MAINT_ACTOR,
						am_details2("reason_codes", row_text(tt, i, 2),
									"reason", row_text(tt, i, 3)));
	return true;
}

static bool
auto_decommission(SPITupleTable *tt, uint64 i)
{
	char	   *reason = psprintf("auto_decommission: orphaned and silent for %s days (max_inactive_days: %s)",
								  row_text(tt, i, 2), row_text(tt, i, 3));

	am_transition_agent(AM_OP_DECOMMISSION, row_text(tt, i, 1), AM_MAINT_ACTOR,
						am_details2("reason", reason, "policy_rule", "auto_decommission"));
	return true;
}

static bool
record_missed_heartbeat(SPITupleTable *tt, uint64 i)
{
	Datum		id = CStringGetTextDatum(row_text(tt, i, 1));

	/* the row is locked; the agents trigger writes the event */
	am_set_audit_context(AM_OP_HEARTBEAT_MISSED, AM_MAINT_ACTOR,
						 am_details2("silent_seconds", row_text(tt, i, 2),
									 "heartbeat_interval_seconds", row_text(tt, i, 3)));
	am_exec(&heartbeat_missed_plan, &id, NULL, false, 0);
	am_clear_audit_context();
	return SPI_processed == 1;
}

static void
credentials_batch(AmPass *pass)
{
	int			n = Min(pass->batch_size, pass->ncand[PH_CREDENTIALS] - pass->pos);
	int			i;

	/* first, the credential uses verifications queued (credentials.c) */
	if (pass->pos == 0)
		(void) am_flush_uses();

	/* am_rotate_if_needed locks each agent (SKIP LOCKED) and decides */
	for (i = 0; i < n; i++)
	{
		AmPriv		priv;
		char	   *detail;
		AmRotateAction action;

		am_connect(&priv);		/* per agent, as in locked_batch() */
		action = am_rotate_if_needed(pass->cand[PH_CREDENTIALS][pass->pos + i],
									 pass->as_of, &detail);
		am_finish(&priv);
		switch (action)
		{
			case AM_RA_ROTATED:
				pass->counts[AM_CNT_ROTATED]++;
				break;
			case AM_RA_ISSUED:
				pass->counts[AM_CNT_ISSUED]++;
				break;
			case AM_RA_EXPIRED:
				pass->counts[AM_CNT_EXPIRED]++;
				break;
			default:
				break;
		}
	}
	pass->pos += Max(n, 0);
	advance(pass);
}

/*
 * Do one batch of the pass (inside a transaction); false when the pass is
 * complete.  Memory is released per batch, and per agent within a batch
 * (locked_batch()), so a pass over any number of agents runs in bounded
 * memory even inside one SQL call.
 */
bool
am_pass_step(AmPass *pass)
{
	MemoryContext batch_ctx;
	MemoryContext old;
	AmPriv		priv;

	if (pass->phase >= PH_DONE)
		return false;

	batch_ctx = AllocSetContextCreate(CurrentMemoryContext,
									  "agentmesh maintenance batch",
									  ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(batch_ctx);
	am_connect(&priv);
	if (!pass->found)
		find_candidates(pass);
	switch ((AmPhase) pass->phase)
	{
		case PH_ORPHAN:
			locked_batch(pass, &am_orphan_batch_plan, mark_orphaned, AM_CNT_ORPHANED);
			break;
		case PH_DECOMMISSION:
			locked_batch(pass, &decommission_batch_plan, auto_decommission,
						 AM_CNT_DECOMMISSIONED);
			break;
		case PH_HEARTBEAT:
			locked_batch(pass, &heartbeat_batch_plan, record_missed_heartbeat,
						 AM_CNT_HEARTBEATS_MISSED);
			break;
		case PH_CREDENTIALS:
			credentials_batch(pass);
			break;
		case PH_SEAL:
			pass->counts[AM_CNT_SEALS] += am_write_seal();
			pass->phase++;
			break;
		case PH_DONE:
			break;
	}
	am_finish(&priv);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(batch_ctx);
	return pass->phase < PH_DONE;
}

/*
 * lm_run_maintenance(as_of, batch_size, allow_future): one whole pass in the caller's
 * transaction (the worker instead commits after every batch).  The result
 * is one row with a count per action.
 */
PG_FUNCTION_INFO_V1(lm_run_maintenance);
Datum
lm_run_maintenance(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	TimestampTz as_of;
	int32		batch_size;
	AmPass		pass;
	Datum		values[AM_NUM_COUNTS];
	bool		nulls[AM_NUM_COUNTS];
	int			i;

	as_of = am_as_of_arg(fcinfo, 0, 2);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("batch_size must not be null")));
	batch_size = PG_GETARG_INT32(1);
	if (batch_size < 1 || batch_size > 1000000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be between 1 and 1000000")));
	am_require_writable("lm_run_maintenance()");
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	am_pass_init(&pass, as_of, batch_size, CurrentMemoryContext);
	while (am_pass_step(&pass))
		CHECK_FOR_INTERRUPTS();

	for (i = 0; i < AM_NUM_COUNTS; i++)
	{
		values[i] = Int64GetDatum(pass.counts[i]);
		nulls[i] = false;
	}
	desc = BlessTupleDesc(desc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

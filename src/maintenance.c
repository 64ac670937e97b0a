/*-------------------------------------------------------------------------
 *
 * maintenance.c
 *		The maintenance pass (agentmesh.lm_run_maintenance) and audit seals.
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
 *	 seal			 one audit seal over the newly finished transactions
 *
 * am_pass_step() does one batch and must run inside a transaction.  The
 * background worker (worker.c) gives every batch its own transaction, so a
 * pass holds row locks only for one batch; lm_run_maintenance() called from
 * SQL runs every batch in the caller's transaction.  Rows are taken with
 * FOR UPDATE SKIP LOCKED: a pass never waits for a client's row lock, and
 * a row changed by a client after the scan is re-evaluated under the lock,
 * so no action is applied twice or on stale data.
 *
 * Seals.  A seal covers every audit event whose inserting transaction id
 * (audit_events.xact_id) lies in [previous seal's xmin_to, snapshot xmin).
 * Every transaction below the snapshot's xmin has ended, so no event can
 * later appear inside a sealed range.  The seal hash is
 *
 *	 SHA-256( prev_seal_hash (absent for the first seal)
 *			  || int8(xmin_from) || int8(xmin_to)
 *			  || for each event in event_id order: int8(event_id) || hash )
 *
 * with big-endian int8s, which plain SQL recomputes as
 * sha256(prev || int8send(..) || ... || string_agg(int8send(event_id) || hash)).
 * A seal is written only when its range holds events, and it is logged at
 * LOG level when its transaction commits, so that it can be anchored
 * outside the database.
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
static AmPlan candidates_plan = {
	"SELECT a.agent_id, " AM_ORPHAN_HIT ","
	"       a.state IN ('active', 'orphaned') AND " DECOMMISSION_HIT ","
	"       " HEARTBEAT_MISSED_HIT ", " AM_ROTATION_HIT
	"  FROM agentmesh.agents a JOIN agentmesh.policies p ON p.name = a.policy"
	" WHERE a.state IN ('active', 'orphaned')"
	"   AND (" AM_ORPHAN_HIT " OR " DECOMMISSION_HIT
	"        OR " HEARTBEAT_MISSED_HIT " OR " AM_ROTATION_HIT ")",
	1, {TIMESTAMPTZOID}
};

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

static AmPlan last_seal_plan = {
	"SELECT xmin_to, seal_hash FROM agentmesh.audit_seals ORDER BY seal_id DESC LIMIT 1",
	0, {InvalidOid}
};

static AmPlan snapshot_xmin_plan = {
	"SELECT pg_snapshot_xmin(pg_current_snapshot())",
	0, {InvalidOid}
};

static AmPlan seal_events_plan = {
	"SELECT event_id, hash FROM agentmesh.audit_events"
	" WHERE xact_id >= $1 AND xact_id < $2 ORDER BY event_id",
	2, {XID8OID, XID8OID}
};

static AmPlan insert_seal_plan = {
	"INSERT INTO agentmesh.audit_seals (xmin_from, xmin_to, event_count,"
	" first_event_id, last_event_id, prev_seal_hash, seal_hash)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seal_id",
	7, {XID8OID, XID8OID, INT8OID, INT8OID, INT8OID, BYTEAOID, BYTEAOID}
};

static AmPlan seals_plan = {
	"SELECT seal_id, xmin_from, xmin_to, event_count, first_event_id,"
	" last_event_id, prev_seal_hash, seal_hash"
	" FROM agentmesh.audit_seals ORDER BY seal_id",
	0, {InvalidOid}
};

/* ----------------------------------------------------------------
 * Seals
 * ----------------------------------------------------------------
 */

/* The seal log line, emitted when (and only if) the sealing transaction commits. */
static char *pending_seal_log = NULL;
static SubTransactionId pending_seal_subid = InvalidSubTransactionId;
static bool seal_callbacks_registered = false;

static void
seal_xact_callback(XactEvent event, void *arg)
{
	if (pending_seal_log == NULL)
		return;
	if (event == XACT_EVENT_COMMIT)
		ereport(LOG,
				(errmsg("%s", pending_seal_log),
				 errhidestmt(true), errhidecontext(true)));
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PREPARE)
	{
		pfree(pending_seal_log);
		pending_seal_log = NULL;
	}
}

static void
seal_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	/* a seal written in an aborted subtransaction (or below it) is gone */
	if (event == SUBXACT_EVENT_ABORT_SUB && pending_seal_log != NULL &&
		mySubid <= pending_seal_subid)
	{
		pfree(pending_seal_log);
		pending_seal_log = NULL;
	}
}

static void
put_int64(pg_cryptohash_ctx *ctx, int64 v)
{
	uint64		n = pg_hton64((uint64) v);

	if (pg_cryptohash_update(ctx, (uint8 *) &n, sizeof(n)) < 0)
		elog(ERROR, "could not compute SHA-256 of an audit seal: %s",
			 pg_cryptohash_error(ctx));
}

static void
put_bytes(pg_cryptohash_ctx *ctx, const uint8 *b, size_t len)
{
	if (pg_cryptohash_update(ctx, b, len) < 0)
		elog(ERROR, "could not compute SHA-256 of an audit seal: %s",
			 pg_cryptohash_error(ctx));
}

typedef struct SealSum
{
	int64		count;
	int64		first;
	int64		last;
	uint8		hash[PG_SHA256_DIGEST_LENGTH];
	bool		malformed;		/* an event hash of the wrong length */
} SealSum;

/*
 * Hash the events of [from, to) chained to prev (NULL for the first seal),
 * streaming them with a cursor.  Inside am_connect.
 */
static void
seal_sum(FullTransactionId from, FullTransactionId to, const uint8 *prev, SealSum *sum)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	Datum		args[2];
	Portal		portal;

	memset(sum, 0, sizeof(*sum));
	if (pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not compute SHA-256 of an audit seal: %s",
			 pg_cryptohash_error(ctx));
	if (prev)
		put_bytes(ctx, prev, PG_SHA256_DIGEST_LENGTH);
	put_int64(ctx, (int64) U64FromFullTransactionId(from));
	put_int64(ctx, (int64) U64FromFullTransactionId(to));

	args[0] = FullTransactionIdGetDatum(from);
	args[1] = FullTransactionIdGetDatum(to);
	portal = SPI_cursor_open(NULL, am_prepare(&seal_events_plan), args, NULL, true);
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			int64		event_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
															   SPI_tuptable->tupdesc, 1, &isnull));
			bytea	   *h = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[i],
														  SPI_tuptable->tupdesc, 2, &isnull));

			if (VARSIZE_ANY_EXHDR(h) != PG_SHA256_DIGEST_LENGTH)
				sum->malformed = true;
			put_int64(ctx, event_id);
			put_bytes(ctx, (uint8 *) VARDATA_ANY(h), VARSIZE_ANY_EXHDR(h));
			if (sum->count == 0)
				sum->first = event_id;
			sum->last = event_id;
			sum->count++;
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	if (pg_cryptohash_final(ctx, sum->hash, PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "could not compute SHA-256 of an audit seal: %s",
			 pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
}

static char *
hash_hex(const uint8 *h)
{
	char	   *out = palloc(PG_SHA256_DIGEST_LENGTH * 2 + 1);

	hex_encode((const char *) h, PG_SHA256_DIGEST_LENGTH, out);
	out[PG_SHA256_DIGEST_LENGTH * 2] = '\0';
	return out;
}

/*
 * Write one seal if there are newly finished events; returns 1 if it did.
 * Inside am_connect.  Two sealers at once would fork the chain, so the
 * seals table is locked in a self-conflicting mode; if another pass holds
 * it, this pass writes no seal rather than wait (the next one will).
 */
static int
write_seal(void)
{
	Oid			nsp = get_namespace_oid(AM_SCHEMA, false);
	Oid			relid = get_relname_relid("audit_seals", nsp);
	FullTransactionId from = FullTransactionIdFromU64(0);
	FullTransactionId to;
	bool		have_prev = false;
	uint8		prev[PG_SHA256_DIGEST_LENGTH];
	bool		isnull;
	SealSum		sum;
	Datum		v[7];
	bool		n[7];
	int64		seal_id;

	if (!OidIsValid(relid))
		elog(ERROR, "table %s.audit_seals does not exist", AM_SCHEMA);
	if (!ConditionalLockRelationOid(relid, ShareRowExclusiveLock))
		return 0;

	am_exec(&last_seal_plan, NULL, NULL, false, 1);
	if (SPI_processed == 1)
	{
		bytea	   *h;

		from = DatumGetFullTransactionId(am_getcol(1, &isnull));
		h = DatumGetByteaPP(am_getcol(2, &isnull));
		if (VARSIZE_ANY_EXHDR(h) != PG_SHA256_DIGEST_LENGTH)
			elog(ERROR, "last audit seal has a hash of the wrong length");
		memcpy(prev, VARDATA_ANY(h), PG_SHA256_DIGEST_LENGTH);
		have_prev = true;
	}
	/*
	 * The bound must come from the snapshot that the event scan below uses
	 * (read-only SPI runs on the active snapshot).  A fresh snapshot here
	 * would have a newer xmin than the scan's, and an event committed in
	 * between would fall inside the sealed range without being sealed.
	 */
	am_exec(&snapshot_xmin_plan, NULL, NULL, true, 1);
	to = DatumGetFullTransactionId(am_getcol(1, &isnull));
	if (!FullTransactionIdPrecedes(from, to))
		return 0;

	seal_sum(from, to, have_prev ? prev : NULL, &sum);
	if (sum.count == 0)
		return 0;				/* nothing new: the next seal will cover this range */

	memset(n, 0, sizeof(n));
	v[0] = FullTransactionIdGetDatum(from);
	v[1] = FullTransactionIdGetDatum(to);
	v[2] = Int64GetDatum(sum.count);
	v[3] = Int64GetDatum(sum.first);
	v[4] = Int64GetDatum(sum.last);
	v[5] = have_prev ? PointerGetDatum(am_bytea(prev, PG_SHA256_DIGEST_LENGTH)) : (Datum) 0;
	n[5] = !have_prev;
	v[6] = PointerGetDatum(am_bytea(sum.hash, PG_SHA256_DIGEST_LENGTH));
	am_exec(&insert_seal_plan, v, n, false, 0);
	seal_id = DatumGetInt64(am_getcol(1, &isnull));

	if (!seal_callbacks_registered)
	{
		RegisterXactCallback(seal_xact_callback, NULL);
		RegisterSubXactCallback(seal_subxact_callback, NULL);
		seal_callbacks_registered = true;
	}
	if (pending_seal_log)
		pfree(pending_seal_log);
	pending_seal_log = MemoryContextStrdup(TopMemoryContext,
										   psprintf("agentmesh_lifecycle: audit seal %lld of database \"%s\": %lld events (event_id %lld to %lld, xact_id %llu to %llu), seal_hash %s",
													(long long) seal_id,
													get_database_name(MyDatabaseId),
													(long long) sum.count,
													(long long) sum.first,
													(long long) sum.last,
													(unsigned long long) U64FromFullTransactionId(from),
													(unsigned long long) U64FromFullTransactionId(to),
													hash_hex(sum.hash)));
	pending_seal_subid = GetCurrentSubTransactionId();
	return 1;
}

/*
 * Check every seal: chained to its predecessor, ranges contiguous from 0,
 * and count, first/last event and hash recomputed from the events.  Inside
 * am_connect.  Returns NULL, or the first problem (allocated in the
 * caller's context, outside SPI).  Called by lm_verify_audit() (audit.c).
 */
char *
am_verify_seals(int64 *seals_checked)
{
	Portal		portal;
	FullTransactionId expect_from = FullTransactionIdFromU64(0);
	uint8		prev[PG_SHA256_DIGEST_LENGTH];
	bool		have_prev = false;
	char	   *problem = NULL;
	int64		checked = 0;

	portal = SPI_cursor_open(NULL, am_prepare(&seals_plan), NULL, NULL, true);
	while (problem == NULL)
	{
		SPITupleTable *seals;
		uint64		nseals;
		uint64		i;

		SPI_cursor_fetch(portal, true, 100);
		seals = SPI_tuptable;
		nseals = SPI_processed;
		if (nseals == 0)
			break;
		for (i = 0; i < nseals && problem == NULL; i++)
		{
			HeapTuple	tup = seals->vals[i];
			TupleDesc	desc = seals->tupdesc;
			bool		isnull;
			bool		prev_null;
			int64		seal_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			FullTransactionId from = DatumGetFullTransactionId(SPI_getbinval(tup, desc, 2, &isnull));
			FullTransactionId to = DatumGetFullTransactionId(SPI_getbinval(tup, desc, 3, &isnull));
			int64		count = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
			int64		first = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
			int64		last = DatumGetInt64(SPI_getbinval(tup, desc, 6, &isnull));
			Datum		pd = SPI_getbinval(tup, desc, 7, &prev_null);
			bytea	   *stored = DatumGetByteaPP(SPI_getbinval(tup, desc, 8, &isnull));
			bytea	   *stored_prev = prev_null ? NULL : DatumGetByteaPP(pd);
			SealSum		sum;

			if (!FullTransactionIdEquals(from, expect_from) ||
				!FullTransactionIdPrecedes(from, to))
				problem = psprintf("audit seal %lld: its transaction range does not continue the previous seal's",
								   (long long) seal_id);
			else if ((stored_prev == NULL) != !have_prev ||
					 (stored_prev &&
					  (VARSIZE_ANY_EXHDR(stored_prev) != PG_SHA256_DIGEST_LENGTH ||
					   memcmp(VARDATA_ANY(stored_prev), prev, PG_SHA256_DIGEST_LENGTH) != 0)))
				problem = psprintf("audit seal %lld: prev_seal_hash does not match the previous seal's hash",
								   (long long) seal_id);
			else
			{
				seal_sum(from, to, have_prev ? prev : NULL, &sum);
				if (sum.count != count || sum.first != first || sum.last != last)
					problem = psprintf("audit seal %lld: sealed %lld events (event_id %lld to %lld) but its range now holds %lld (events deleted or inserted)",
									   (long long) seal_id, (long long) count,
									   (long long) first, (long long) last,
									   (long long) sum.count);
				else if (sum.malformed ||
						 VARSIZE_ANY_EXHDR(stored) != PG_SHA256_DIGEST_LENGTH ||
						 memcmp(VARDATA_ANY(stored), sum.hash, PG_SHA256_DIGEST_LENGTH) != 0)
					problem = psprintf("audit seal %lld: seal_hash does not match the events in its range (events altered)",
									   (long long) seal_id);
			}
			if (problem == NULL)
			{
				memcpy(prev, VARDATA_ANY(stored), PG_SHA256_DIGEST_LENGTH);
				have_prev = true;
				expect_from = to;
				checked++;
			}
		}
		SPI_freetuptable(seals);
	}
	SPI_cursor_close(portal);
	if (seals_checked)
		*seals_checked = checked;
	if (problem == NULL)
		return NULL;
	/* SPI_palloc: outlives am_finish() */
	return strcpy(SPI_palloc(strlen(problem) + 1), problem);
}

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

	am_exec(&candidates_plan, &v, NULL, true, 0);
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
			pass->counts[AM_CNT_SEALS] += write_seal();
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
 * lm_run_maintenance(as_of, batch_size): one whole pass in the caller's
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

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("as_of must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("batch_size must not be null")));
	as_of = PG_GETARG_TIMESTAMPTZ(0);
	batch_size = PG_GETARG_INT32(1);
	if (TIMESTAMP_NOT_FINITE(as_of))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of must be a finite timestamp")));
	if (batch_size < 1 || batch_size > 1000000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be between 1 and 1000000")));
	am_prevent_on_standby("lm_run_maintenance()");
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

/*-------------------------------------------------------------------------
 *
 * seals.c
 *		Audit seals: writing one over the newly finished transactions, and
 *		checking the chain of all of them.
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
 *
 * The maintenance pass (maintenance.c) writes seals; lm_verify_audit()
 * (audit.c) checks them.  Nothing here calls either.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/xid8.h"

#include "agentmesh.h"

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
int
am_write_seal(void)
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
										   psprintf("agentmesh_lifecycle: audit seal %lld of database %s: %lld events (event_id %lld to %lld, xact_id %llu to %llu), seal_hash %s",
													(long long) seal_id,
													am_log_quote(get_database_name(MyDatabaseId)),
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


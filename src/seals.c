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
#include "funcapi.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/xid8.h"

#include "agentmesh.h"

static AmPlan last_seal_plan = {
	"SELECT s.xmin_to, s.seal_hash, s.seal_id, c.tree_size"
	" FROM agentmesh.audit_seals s LEFT JOIN agentmesh.audit_checkpoints c ON c.seal_id = s.seal_id"
	" ORDER BY s.seal_id DESC LIMIT 1",
	0, {InvalidOid}
};

/* the same, for a schema of version 1.0 (no tree yet; see has_tree()) */
static AmPlan last_seal_v10_plan = {
	"SELECT s.xmin_to, s.seal_hash, s.seal_id, NULL::int8"
	" FROM agentmesh.audit_seals s ORDER BY s.seal_id DESC LIMIT 1",
	0, {InvalidOid}
};

/*
 * Does the schema have the Merkle tree?  The library of 1.1 also runs on a
 * schema still at 1.0 (installed, ALTER EXTENSION UPDATE not run yet): it
 * then seals and verifies as 1.0 did, and the update builds the tree for
 * those seals (am_audit_tree_build()).
 */
static bool
has_tree(void)
{
	Oid			nsp = get_namespace_oid(AM_SCHEMA, false);

	return OidIsValid(get_relname_relid("audit_checkpoints", nsp));
}

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

/*
 * The Merkle tree's writer: the frontier, and the completed subtrees not
 * yet inserted (level 0 carries its event_id).
 */
#define TREE_BATCH 8192

typedef struct TreeWriter
{
	AmMerkleFrontier f;
	bool		store;			/* insert the completed subtrees (else only the frontier) */
	int64		event_id;		/* of the leaf being appended */
	int			nleaves;
	Datum		leaf_idx[TREE_BATCH];
	Datum		leaf_hash[TREE_BATCH];
	Datum		leaf_event[TREE_BATCH];
	int			nnodes;
	Datum		node_level[TREE_BATCH];
	Datum		node_idx[TREE_BATCH];
	Datum		node_hash[TREE_BATCH];
} TreeWriter;

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
static void tree_add_leaf(TreeWriter *tw, int64 event_id, const uint8 *event_hash, size_t len);

static void
seal_sum(FullTransactionId from, FullTransactionId to, const uint8 *prev, SealSum *sum,
		 TreeWriter *tw)
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

		SPITupleTable *tt;
		uint64		nrows;

		SPI_cursor_fetch(portal, true, 10000);
		/* the tree writer's inserts replace SPI_tuptable: keep this batch's */
		tt = SPI_tuptable;
		nrows = SPI_processed;
		if (nrows == 0)
			break;
		for (i = 0; i < nrows; i++)
		{
			bool		isnull;
			int64		event_id = DatumGetInt64(SPI_getbinval(tt->vals[i],
															   tt->tupdesc, 1, &isnull));
			bytea	   *h = DatumGetByteaPP(SPI_getbinval(tt->vals[i],
														  tt->tupdesc, 2, &isnull));

			if (VARSIZE_ANY_EXHDR(h) != PG_SHA256_DIGEST_LENGTH)
				sum->malformed = true;
			if (tw)
				tree_add_leaf(tw, event_id, (uint8 *) VARDATA_ANY(h), VARSIZE_ANY_EXHDR(h));
			put_int64(ctx, event_id);
			put_bytes(ctx, (uint8 *) VARDATA_ANY(h), VARSIZE_ANY_EXHDR(h));
			if (sum->count == 0)
				sum->first = event_id;
			sum->last = event_id;
			sum->count++;
		}
		SPI_freetuptable(tt);
	}
	SPI_cursor_close(portal);
	if (pg_cryptohash_final(ctx, sum->hash, PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "could not compute SHA-256 of an audit seal: %s",
			 pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
}

/* ----------------------------------------------------------------
 * The Merkle tree (merkle.c) over the sealed events, stored in
 * agentmesh.audit_tree: every complete subtree as (level, idx, hash), the
 * leaves (level 0) with their event_id.  Leaf i is the i-th sealed event in
 * seal order, then event_id order; its hash is SHA-256(0x00 || event hash).
 * Each seal's tree size and root are in agentmesh.audit_checkpoints.
 * ----------------------------------------------------------------
 */
static AmPlan tree_node_plan = {
	"SELECT hash FROM agentmesh.audit_tree WHERE level = $1 AND idx = $2",
	2, {INT4OID, INT8OID}
};

static AmPlan insert_leaves_plan = {
	"INSERT INTO agentmesh.audit_tree (level, idx, hash, event_id)"
	" SELECT 0, u.i, u.h, u.e FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.int8[]),"
	" pg_catalog.unnest($2::pg_catalog.bytea[]), pg_catalog.unnest($3::pg_catalog.int8[])) AS u(i, h, e)",
	3, {INT8ARRAYOID, BYTEAARRAYOID, INT8ARRAYOID}
};

static AmPlan insert_nodes_plan = {
	"INSERT INTO agentmesh.audit_tree (level, idx, hash)"
	" SELECT u.l, u.i, u.h FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.int4[]),"
	" pg_catalog.unnest($2::pg_catalog.int8[]), pg_catalog.unnest($3::pg_catalog.bytea[])) AS u(l, i, h)",
	3, {INT4ARRAYOID, INT8ARRAYOID, BYTEAARRAYOID}
};

static AmPlan insert_checkpoint_plan = {
	"INSERT INTO agentmesh.audit_checkpoints (seal_id, tree_size, root_hash) VALUES ($1, $2, $3)",
	3, {INT8OID, INT8OID, BYTEAOID}
};

static AmPlan current_checkpoint_plan = {
	"SELECT seal_id, tree_size, root_hash FROM agentmesh.audit_checkpoints"
	" ORDER BY tree_size DESC LIMIT 1",
	0, {InvalidOid}
};

static AmPlan origin_plan = {
	"SELECT origin FROM agentmesh.audit_log_origin ORDER BY created_at, origin LIMIT 1",
	0, {InvalidOid}
};

static AmPlan leaf_of_event_plan = {
	"SELECT idx, hash FROM agentmesh.audit_tree WHERE event_id = $1 AND level = 0",
	1, {INT8OID}
};

static AmPlan event_exists_plan = {
	"SELECT 1 FROM agentmesh.audit_events WHERE event_id = $1",
	1, {INT8OID}
};

/* AmMerkleGetNode over agentmesh.audit_tree; inside am_connect */
static void
stored_node(void *arg, int level, int64 index, uint8 *out)
{
	Datum		v[2];
	bool		isnull;
	bytea	   *h;
	SPITupleTable *saved = SPI_tuptable;
	uint64		saved_n = SPI_processed;

	v[0] = Int32GetDatum(level);
	v[1] = Int64GetDatum(index);
	am_exec(&tree_node_plan, v, NULL, true, 1);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the audit tree lacks its node at level %d, index " INT64_FORMAT, level, index),
				 errdetail("Rows of agentmesh.audit_tree were deleted."),
				 errhint("Run agentmesh.lm_verify_audit_problems() and compare with a witness's checkpoint.")));
	h = DatumGetByteaPP(am_getcol(1, &isnull));
	if (VARSIZE_ANY_EXHDR(h) != AM_HASH_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the audit tree's node at level %d, index " INT64_FORMAT " has the wrong length",
						level, index)));
	memcpy(out, VARDATA_ANY(h), AM_HASH_LEN);
	SPI_freetuptable(SPI_tuptable);
	SPI_tuptable = saved;
	SPI_processed = saved_n;
}

static void
tree_flush(TreeWriter *tw)
{
	Datum		v[3];

	if (tw->nleaves > 0)
	{
		v[0] = PointerGetDatum(construct_array(tw->leaf_idx, tw->nleaves, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		v[1] = PointerGetDatum(construct_array(tw->leaf_hash, tw->nleaves, BYTEAOID, -1, false, TYPALIGN_INT));
		v[2] = PointerGetDatum(construct_array(tw->leaf_event, tw->nleaves, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		am_exec(&insert_leaves_plan, v, NULL, false, 0);
		tw->nleaves = 0;
	}
	if (tw->nnodes > 0)
	{
		v[0] = PointerGetDatum(construct_array(tw->node_level, tw->nnodes, INT4OID, 4, true, TYPALIGN_INT));
		v[1] = PointerGetDatum(construct_array(tw->node_idx, tw->nnodes, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		v[2] = PointerGetDatum(construct_array(tw->node_hash, tw->nnodes, BYTEAOID, -1, false, TYPALIGN_INT));
		am_exec(&insert_nodes_plan, v, NULL, false, 0);
		tw->nnodes = 0;
	}
}

static void
tree_emit(void *arg, int level, int64 index, const uint8 *hash)
{
	TreeWriter *tw = (TreeWriter *) arg;

	if (level == 0)
	{
		tw->leaf_idx[tw->nleaves] = Int64GetDatum(index);
		tw->leaf_hash[tw->nleaves] = PointerGetDatum(am_bytea(hash, AM_HASH_LEN));
		tw->leaf_event[tw->nleaves] = Int64GetDatum(tw->event_id);
		tw->nleaves++;
	}
	else
	{
		tw->node_level[tw->nnodes] = Int32GetDatum(level);
		tw->node_idx[tw->nnodes] = Int64GetDatum(index);
		tw->node_hash[tw->nnodes] = PointerGetDatum(am_bytea(hash, AM_HASH_LEN));
		tw->nnodes++;
	}
	if (tw->nleaves == TREE_BATCH || tw->nnodes == TREE_BATCH)
		tree_flush(tw);
}

static void
tree_add_leaf(TreeWriter *tw, int64 event_id, const uint8 *event_hash, size_t len)
{
	uint8		leaf[AM_HASH_LEN];

	am_merkle_leaf_hash(event_hash, len, leaf);
	tw->event_id = event_id;
	am_merkle_append(&tw->f, leaf, tw->store ? tree_emit : NULL, tw);
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
	int64		tree_size = 0;
	TreeWriter *tw = NULL;
	bool		tree;
	uint8		root[AM_HASH_LEN];

	if (!OidIsValid(relid))
		elog(ERROR, "table %s.audit_seals does not exist", AM_SCHEMA);
	if (!ConditionalLockRelationOid(relid, ShareRowExclusiveLock))
		return 0;

	tree = has_tree();
	am_exec(tree ? &last_seal_plan : &last_seal_v10_plan, NULL, NULL, false, 1);
	if (SPI_processed == 1)
	{
		bytea	   *h;

		from = DatumGetFullTransactionId(am_getcol(1, &isnull));
		h = DatumGetByteaPP(am_getcol(2, &isnull));
		if (VARSIZE_ANY_EXHDR(h) != PG_SHA256_DIGEST_LENGTH)
			elog(ERROR, "last audit seal has a hash of the wrong length");
		memcpy(prev, VARDATA_ANY(h), PG_SHA256_DIGEST_LENGTH);
		have_prev = true;
		tree_size = DatumGetInt64(am_getcol(4, &isnull));
		if (isnull && tree)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("audit seal " INT64_FORMAT " has no checkpoint",
							DatumGetInt64(am_getcol(3, &isnull))),
					 errdetail("Its row of agentmesh.audit_checkpoints was deleted; the audit tree cannot be extended."),
					 errhint("Run agentmesh.lm_verify_audit_problems() and compare with a witness's checkpoint.")));
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

	if (tree)
	{
		tw = palloc0(sizeof(TreeWriter));
		tw->store = true;
		am_merkle_frontier_load(&tw->f, tree_size, stored_node, NULL);
	}
	seal_sum(from, to, have_prev ? prev : NULL, &sum, tw);
	if (sum.count == 0)
		return 0;				/* nothing new: the next seal will cover this range */
	if (tree)
	{
		tree_flush(tw);
		am_merkle_frontier_root(&tw->f, root);
	}

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
	if (tree)
	{
		v[0] = Int64GetDatum(seal_id);
		v[1] = Int64GetDatum(tw->f.size);
		v[2] = PointerGetDatum(am_bytea(root, AM_HASH_LEN));
		am_exec(&insert_checkpoint_plan, v, NULL, false, 0);
	}
	else
		memset(root, 0, sizeof(root));

	if (!seal_callbacks_registered)
	{
		RegisterXactCallback(seal_xact_callback, NULL);
		RegisterSubXactCallback(seal_subxact_callback, NULL);
		seal_callbacks_registered = true;
	}
	if (pending_seal_log)
		pfree(pending_seal_log);
	pending_seal_log = MemoryContextStrdup(TopMemoryContext,
										   psprintf("agentmesh_lifecycle: audit seal %lld of database %s: %lld events (event_id %lld to %lld, xact_id %llu to %llu), seal_hash %s, tree_size %lld, root_hash %s",
													(long long) seal_id,
													am_log_quote(get_database_name(MyDatabaseId)),
													(long long) sum.count,
													(long long) sum.first,
													(long long) sum.last,
													(unsigned long long) U64FromFullTransactionId(from),
													(unsigned long long) U64FromFullTransactionId(to),
													hash_hex(sum.hash),
													(long long) (tw ? tw->f.size : 0),
													hash_hex(root)));
	pending_seal_subid = GetCurrentSubTransactionId();
	return 1;
}

/*
 * Check every seal: chained to its predecessor, ranges contiguous from 0,
 * and count, first/last event and hash recomputed from the events; and the
 * Merkle tree: each seal's checkpoint (tree size, root) recomputed from the
 * events, the stored frontier of the last one, the number of stored leaves.
 * Every problem goes to report(); checking goes on after one, with the
 * stored values, so that one damaged seal does not hide the next.  Inside
 * am_connect.  Returns the number of seals checked.  Called by
 * lm_verify_audit() (audit.c).
 */
static AmPlan verify_seals_plan = {
	"SELECT s.seal_id, s.xmin_from, s.xmin_to, s.event_count, s.first_event_id,"
	" s.last_event_id, s.prev_seal_hash, s.seal_hash, c.tree_size, c.root_hash"
	" FROM agentmesh.audit_seals s LEFT JOIN agentmesh.audit_checkpoints c ON c.seal_id = s.seal_id"
	" ORDER BY s.seal_id",
	0, {InvalidOid}
};

static AmPlan verify_seals_v10_plan = {
	"SELECT s.seal_id, s.xmin_from, s.xmin_to, s.event_count, s.first_event_id,"
	" s.last_event_id, s.prev_seal_hash, s.seal_hash, NULL::int8, NULL::bytea"
	" FROM agentmesh.audit_seals s ORDER BY s.seal_id",
	0, {InvalidOid}
};

static AmPlan orphan_checkpoints_plan = {
	"SELECT c.seal_id FROM agentmesh.audit_checkpoints c"
	" WHERE NOT EXISTS (SELECT FROM agentmesh.audit_seals s WHERE s.seal_id = c.seal_id)"
	" ORDER BY c.seal_id",
	0, {InvalidOid}
};

static AmPlan leaf_count_plan = {
	"SELECT pg_catalog.count(*) FROM agentmesh.audit_tree WHERE level = 0",
	0, {InvalidOid}
};

static bool
same_hash(bytea *stored, const uint8 *h)
{
	return stored != NULL && VARSIZE_ANY_EXHDR(stored) == AM_HASH_LEN &&
		memcmp(VARDATA_ANY(stored), h, AM_HASH_LEN) == 0;
}

static char *
seal_subject(int64 seal_id)
{
	return psprintf("seal " INT64_FORMAT, seal_id);
}

int64
am_verify_seals(AmProblemFn report, void *arg)
{
	Portal		portal;
	FullTransactionId expect_from = FullTransactionIdFromU64(0);
	uint8		prev[PG_SHA256_DIGEST_LENGTH];
	bool		have_prev = false;
	int64		checked = 0;
	bool		tree_diverged = false;
	TreeWriter *tw = palloc0(sizeof(TreeWriter));
	bool		isnull;
	uint64		i;
	bool		tree = has_tree();

	tw->store = false;
	portal = SPI_cursor_open(NULL, am_prepare(tree ? &verify_seals_plan : &verify_seals_v10_plan),
							 NULL, NULL, true);
	for (;;)
	{
		SPITupleTable *seals;
		uint64		nseals;

		SPI_cursor_fetch(portal, true, 100);
		seals = SPI_tuptable;
		nseals = SPI_processed;
		if (nseals == 0)
			break;
		for (i = 0; i < nseals; i++)
		{
			HeapTuple	tup = seals->vals[i];
			TupleDesc	desc = seals->tupdesc;
			bool		prev_null;
			bool		cp_null;
			int64		seal_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			FullTransactionId from = DatumGetFullTransactionId(SPI_getbinval(tup, desc, 2, &isnull));
			FullTransactionId to = DatumGetFullTransactionId(SPI_getbinval(tup, desc, 3, &isnull));
			int64		count = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
			int64		first = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
			int64		last = DatumGetInt64(SPI_getbinval(tup, desc, 6, &isnull));
			Datum		pd = SPI_getbinval(tup, desc, 7, &prev_null);
			bytea	   *stored = DatumGetByteaPP(SPI_getbinval(tup, desc, 8, &isnull));
			bytea	   *stored_prev = prev_null ? NULL : DatumGetByteaPP(pd);
			Datum		tsd = SPI_getbinval(tup, desc, 9, &cp_null);
			Datum		rd = SPI_getbinval(tup, desc, 10, &isnull);
			SealSum		sum;
			bool		ok = true;

			if (!FullTransactionIdEquals(from, expect_from) ||
				!FullTransactionIdPrecedes(from, to))
			{
				report(arg, "seal_range", seal_subject(seal_id), first,
					   "its transaction range does not continue the previous seal's (a seal deleted, or its range altered)");
				ok = false;
			}
			if ((stored_prev == NULL) != !have_prev ||
				(stored_prev && !same_hash(stored_prev, prev)))
			{
				report(arg, "seal_link", seal_subject(seal_id), first,
					   "prev_seal_hash does not match the previous seal's hash");
				ok = false;
			}
			seal_sum(from, to, have_prev ? prev : NULL, &sum, tw);
			if (sum.count != count || sum.first != first || sum.last != last)
			{
				report(arg, "seal_events", seal_subject(seal_id),
					   sum.count > 0 && sum.first < first ? sum.first : first,
					   psprintf("sealed %lld events (event_id %lld to %lld) but its range now holds %lld (events deleted or inserted)",
								(long long) count, (long long) first,
								(long long) last, (long long) sum.count));
				ok = false;
			}
			else if (sum.malformed || !same_hash(stored, sum.hash))
			{
				report(arg, "seal_hash", seal_subject(seal_id), first,
					   "seal_hash does not match the events in its range (events altered)");
				ok = false;
			}
			/* a 1.0 schema has no checkpoints */
			if (tree && cp_null)
				report(arg, "checkpoint_missing", seal_subject(seal_id), first,
					   "the seal has no row in agentmesh.audit_checkpoints");
			else if (tree && !tree_diverged)
			{
				uint8		root[AM_HASH_LEN];

				am_merkle_frontier_root(&tw->f, root);
				if (DatumGetInt64(tsd) != tw->f.size || isnull ||
					!same_hash(DatumGetByteaPP(rd), root))
				{
					report(arg, "checkpoint_mismatch", seal_subject(seal_id), first,
						   psprintf("its checkpoint (tree size %lld) does not match the tree of the sealed events (size %lld); later checkpoints are not compared",
									(long long) DatumGetInt64(tsd), (long long) tw->f.size));
					tree_diverged = true;
				}
			}
			if (ok)
				checked++;
			/* go on from what is stored */
			if (VARSIZE_ANY_EXHDR(stored) == PG_SHA256_DIGEST_LENGTH)
			{
				memcpy(prev, VARDATA_ANY(stored), PG_SHA256_DIGEST_LENGTH);
				have_prev = true;
			}
			expect_from = to;
		}
		SPI_freetuptable(seals);
	}
	SPI_cursor_close(portal);

	if (!tree)
		return checked;
	am_exec(&orphan_checkpoints_plan, NULL, NULL, true, 0);
	for (i = 0; i < SPI_processed; i++)
		report(arg, "checkpoint_orphan",
			   seal_subject(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
														SPI_tuptable->tupdesc, 1, &isnull))),
			   -1, "a checkpoint of a seal that does not exist");

	/* the stored tree: as many leaves as sealed events, and the frontier of the events */
	if (!tree_diverged)
	{
		int64		leaves;
		int			level;
		int64		start = 0;

		am_exec(&leaf_count_plan, NULL, NULL, true, 1);
		leaves = DatumGetInt64(am_getcol(1, &isnull));
		if (leaves != tw->f.size)
			report(arg, "tree_leaves", "audit tree", -1,
				   psprintf("the tree stores %lld leaves for %lld sealed events",
							(long long) leaves, (long long) tw->f.size));
		for (level = AM_MERKLE_LEVELS - 1; level >= 0; level--)
		{
			Datum		v[2];

			if (!(tw->f.size & ((int64) 1 << level)))
				continue;
			v[0] = Int32GetDatum(level);
			v[1] = Int64GetDatum(start >> level);
			am_exec(&tree_node_plan, v, NULL, true, 1);
			if (SPI_processed != 1 ||
				!same_hash(DatumGetByteaPP(am_getcol(1, &isnull)), tw->f.nodes[level]))
				report(arg, "tree_node", "audit tree", -1,
					   psprintf("the stored subtree at level %d, index %lld does not match the sealed events",
								level, (long long) (start >> level)));
			start += (int64) 1 << level;
		}
	}
	return checked;
}

/* ----------------------------------------------------------------
 * Checkpoints and proofs
 * ----------------------------------------------------------------
 */

typedef struct Checkpoint
{
	char	   *origin;
	bool		has_seal;
	int64		seal_id;
	int64		size;
	uint8		root[AM_HASH_LEN];
} Checkpoint;

/* The latest checkpoint, its root recomputed from the stored tree.  Inside am_connect. */
static void
current_checkpoint(Checkpoint *cp)
{
	bool		isnull;

	memset(cp, 0, sizeof(*cp));
	am_exec(&origin_plan, NULL, NULL, true, 1);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the audit log has no origin"),
				 errdetail("agentmesh.audit_log_origin is empty.")));
	cp->origin = am_getcol_text(1);
	am_exec(&current_checkpoint_plan, NULL, NULL, true, 1);
	if (SPI_processed == 1)
	{
		bytea	   *stored;

		cp->has_seal = true;
		cp->seal_id = DatumGetInt64(am_getcol(1, &isnull));
		cp->size = DatumGetInt64(am_getcol(2, &isnull));
		stored = DatumGetByteaPP(am_getcol(3, &isnull));
		am_merkle_root(stored_node, NULL, cp->size, cp->root);
		if (!same_hash(stored, cp->root))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the audit tree does not match the root of its latest checkpoint"),
					 errdetail("Rows of agentmesh.audit_tree or agentmesh.audit_checkpoints were altered."),
					 errhint("Run agentmesh.lm_verify_audit_problems().")));
	}
	else
		am_merkle_root(stored_node, NULL, 0, cp->root);
}

/*
 * lm_audit_checkpoint(): origin, tree_size, root_hash, seal_id and the
 * checkpoint as the body of a C2SP signed note:
 *	 <origin>\n<tree size in decimal>\n<base64 root hash>\n
 */
PG_FUNCTION_INFO_V1(lm_audit_checkpoint);
Datum
lm_audit_checkpoint(PG_FUNCTION_ARGS)
{
	AmPriv		priv;
	Checkpoint	cp;
	TupleDesc	rdesc;
	Datum		values[5];
	bool		nulls[5];
	char		b64[64];
	int			len;
	MemoryContext upper = CurrentMemoryContext;

	if (get_call_result_type(fcinfo, NULL, &rdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	am_connect(&priv);
	current_checkpoint(&cp);
	{
		MemoryContext old = MemoryContextSwitchTo(upper);

		cp.origin = pstrdup(cp.origin);
		MemoryContextSwitchTo(old);
	}
	am_finish(&priv);

	len = am_b64_encode(cp.root, AM_HASH_LEN, b64, sizeof(b64));
	if (len < 0)
		elog(ERROR, "could not encode the root hash");
	b64[len] = '\0';
	memset(nulls, 0, sizeof(nulls));
	values[0] = CStringGetTextDatum(cp.origin);
	values[1] = Int64GetDatum(cp.size);
	values[2] = PointerGetDatum(am_bytea(cp.root, AM_HASH_LEN));
	values[3] = Int64GetDatum(cp.seal_id);
	nulls[3] = !cp.has_seal;
	values[4] = CStringGetTextDatum(psprintf("%s\n" INT64_FORMAT "\n%s\n", cp.origin, cp.size, b64));
	rdesc = BlessTupleDesc(rdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(rdesc, values, nulls)));
}

static Datum
proof_array(uint8 (*hashes)[AM_HASH_LEN], int n)
{
	Datum	   *d = palloc(sizeof(Datum) * (n + 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = PointerGetDatum(am_bytea(hashes[i], AM_HASH_LEN));
	return PointerGetDatum(construct_array(d, n, BYTEAOID, -1, false, TYPALIGN_INT));
}

/* a size argument: NULL means the current tree size; 22023 outside 0..current */
static int64
size_arg(FunctionCallInfo fcinfo, int argno, const char *name, int64 current)
{
	int64		v;

	if (PG_ARGISNULL(argno))
		return current;
	v = PG_GETARG_INT64(argno);
	if (v < 0 || v > current)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between 0 and the current tree size", name),
				 errdetail("The audit tree holds " INT64_FORMAT " sealed events.", current)));
	return v;
}

/* lm_audit_consistency_proof(old_size, new_size DEFAULT NULL) */
PG_FUNCTION_INFO_V1(lm_audit_consistency_proof);
Datum
lm_audit_consistency_proof(PG_FUNCTION_ARGS)
{
	AmPriv		priv;
	Checkpoint	cp;
	TupleDesc	rdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	int64		old_size;
	int64		new_size;
	int			n;
	uint8		(*proof)[AM_HASH_LEN] = palloc(AM_MERKLE_MAX_PROOF * AM_HASH_LEN);

	if (get_call_result_type(fcinfo, NULL, &rdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("old_size must not be null")));
	am_connect(&priv);
	current_checkpoint(&cp);
	new_size = size_arg(fcinfo, 1, "new_size", cp.size);
	old_size = size_arg(fcinfo, 0, "old_size", cp.size);
	if (old_size > new_size)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("old_size must not be greater than new_size")));
	n = am_merkle_consistency_proof(stored_node, NULL, old_size, new_size, proof);
	am_finish(&priv);

	values[0] = Int64GetDatum(old_size);
	values[1] = Int64GetDatum(new_size);
	values[2] = proof_array(proof, n);
	rdesc = BlessTupleDesc(rdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(rdesc, values, nulls)));
}

/* lm_audit_inclusion_proof(event_id, tree_size DEFAULT NULL) */
PG_FUNCTION_INFO_V1(lm_audit_inclusion_proof);
Datum
lm_audit_inclusion_proof(PG_FUNCTION_ARGS)
{
	AmPriv		priv;
	Checkpoint	cp;
	TupleDesc	rdesc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	int64		event_id;
	int64		tree_size;
	int64		leaf;
	bool		isnull;
	uint8		leaf_hash[AM_HASH_LEN];
	int			n;
	uint8		(*proof)[AM_HASH_LEN] = palloc(AM_MERKLE_MAX_PROOF * AM_HASH_LEN);

	if (get_call_result_type(fcinfo, NULL, &rdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("event_id must not be null")));
	event_id = PG_GETARG_INT64(0);
	am_connect(&priv);
	current_checkpoint(&cp);
	tree_size = size_arg(fcinfo, 1, "tree_size", cp.size);
	{
		Datum		v = Int64GetDatum(event_id);

		am_exec(&leaf_of_event_plan, &v, NULL, true, 1);
		if (SPI_processed == 0)
		{
			am_exec(&event_exists_plan, &v, NULL, true, 1);
			if (SPI_processed == 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_OBJECT),
						 errmsg("audit event " INT64_FORMAT " does not exist", event_id)));
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("audit event " INT64_FORMAT " is not sealed yet", event_id),
					 errdetail("Only sealed events are leaves of the audit tree."),
					 errhint("The next maintenance pass seals it (agentmesh.lm_run_maintenance()).")));
		}
		leaf = DatumGetInt64(am_getcol(1, &isnull));
		{
			bytea	   *h = DatumGetByteaPP(am_getcol(2, &isnull));

			if (VARSIZE_ANY_EXHDR(h) != AM_HASH_LEN)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("the audit tree's leaf " INT64_FORMAT " has the wrong length", leaf)));
			memcpy(leaf_hash, VARDATA_ANY(h), AM_HASH_LEN);
		}
	}
	if (leaf >= tree_size)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit event " INT64_FORMAT " is not in the tree of size " INT64_FORMAT,
						event_id, tree_size),
				 errdetail("It is leaf " INT64_FORMAT "; tree_size must be above that.", leaf)));
	n = am_merkle_inclusion_proof(stored_node, NULL, leaf, tree_size, proof);
	am_finish(&priv);

	values[0] = Int64GetDatum(event_id);
	values[1] = Int64GetDatum(leaf);
	values[2] = Int64GetDatum(tree_size);
	values[3] = PointerGetDatum(am_bytea(leaf_hash, AM_HASH_LEN));
	values[4] = proof_array(proof, n);
	rdesc = BlessTupleDesc(rdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(rdesc, values, nulls)));
}

/*
 * am_audit_tree_build(): the tree and checkpoints of the seals written
 * before there was a tree (version 1.0).  Called once by the 1.0 -> 1.1
 * update script through a function it creates and drops again; it is not
 * part of the extension's SQL API.
 */
static AmPlan build_seals_plan = {
	"SELECT seal_id, xmin_from, xmin_to FROM agentmesh.audit_seals ORDER BY seal_id",
	0, {InvalidOid}
};

PG_FUNCTION_INFO_V1(am_audit_tree_build);
Datum
am_audit_tree_build(PG_FUNCTION_ARGS)
{
	AmPriv		priv;
	TreeWriter *tw = palloc0(sizeof(TreeWriter));
	SPITupleTable *seals;
	uint64		nseals;
	uint64		i;
	bool		isnull;

	if (!superuser() && GetUserId() != am_extension_owner())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only the extension owner builds the audit tree")));
	am_connect(&priv);
	am_exec(&leaf_count_plan, NULL, NULL, true, 1);
	if (DatumGetInt64(am_getcol(1, &isnull)) != 0)
		elog(ERROR, "the audit tree is not empty");
	tw->store = true;
	am_exec(&build_seals_plan, NULL, NULL, true, 0);
	seals = SPI_tuptable;
	nseals = SPI_processed;
	for (i = 0; i < nseals; i++)
	{
		int64		seal_id = DatumGetInt64(SPI_getbinval(seals->vals[i], seals->tupdesc, 1, &isnull));
		FullTransactionId from = DatumGetFullTransactionId(SPI_getbinval(seals->vals[i], seals->tupdesc, 2, &isnull));
		FullTransactionId to = DatumGetFullTransactionId(SPI_getbinval(seals->vals[i], seals->tupdesc, 3, &isnull));
		SealSum		sum;
		uint8		root[AM_HASH_LEN];
		Datum		v[3];

		seal_sum(from, to, NULL, &sum, tw);
		tree_flush(tw);
		am_merkle_frontier_root(&tw->f, root);
		v[0] = Int64GetDatum(seal_id);
		v[1] = Int64GetDatum(tw->f.size);
		v[2] = PointerGetDatum(am_bytea(root, AM_HASH_LEN));
		if (sum.count > 0)
			am_exec(&insert_checkpoint_plan, v, NULL, false, 0);
	}
	am_finish(&priv);
	PG_RETURN_VOID();
}

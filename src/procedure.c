/*-------------------------------------------------------------------------
 *
 * procedure.c
 *		CALL agentmesh.run_maintenance(batch_size): the maintenance pass for
 *		schedulers such as pg_cron, one transaction per batch.
 *
 * The background worker (worker.c) commits after every batch so that a pass
 * holds row locks for one batch only; lm_run_maintenance() runs the whole
 * pass in its caller's transaction.  A scheduler that runs SQL needs the
 * worker's behaviour from a statement: a procedure called with CALL outside
 * a transaction block may commit (SPI_connect_ext(SPI_OPT_NONATOMIC) and
 * SPI_commit()), so this one does, after each batch.
 *
 * Each run is a row of agentmesh.maintenance_runs, inserted and committed
 * before the first batch (so a running pass is visible), its counts updated
 * in the transaction of each batch (so they count what committed), its
 * error recorded in a transaction of its own before the error is raised
 * again for the scheduler to see.  agentmesh.worker_status shows the last
 * run, so a pg_cron setup has the freshness the worker has.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "agentmesh.h"

/* runs kept in agentmesh.maintenance_runs */
#define AM_RUNS_KEPT	1000

static AmPlan run_insert_plan = {
	"INSERT INTO agentmesh.maintenance_runs (started_at, pid, db_user, batch_size)"
	" VALUES ($1, $2, $3, $4) RETURNING run_id",
	4, {TIMESTAMPTZOID, INT4OID, TEXTOID, INT4OID}
};

static AmPlan run_prune_plan = {
	"DELETE FROM agentmesh.maintenance_runs WHERE run_id <= $1",
	1, {INT8OID}
};

static AmPlan run_update_plan = {
	"UPDATE agentmesh.maintenance_runs SET batches = batches + 1,"
	" orphaned = $2, decommissioned = $3, heartbeats_missed = $4, rotated = $5,"
	" issued = $6, expired = $7, seals = $8,"
	" finished_at = CASE WHEN $9 THEN clock_timestamp() END, error = $10"
	" WHERE run_id = $1",
	10, {INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID,
	BOOLOID, TEXTOID}
};

static int64
insert_run(TimestampTz start, int32 batch_size)
{
	AmPriv		priv;
	Datum		v[4];
	bool		isnull;
	int64		run_id;

	am_connect(&priv);
	v[0] = TimestampTzGetDatum(start);
	v[1] = Int32GetDatum(MyProcPid);
	v[2] = CStringGetTextDatum(GetUserNameFromId(GetSessionUserId(), false));
	v[3] = Int32GetDatum(batch_size);
	am_exec(&run_insert_plan, v, NULL, false, 0);
	run_id = DatumGetInt64(am_getcol(1, &isnull));
	v[0] = Int64GetDatum(run_id - AM_RUNS_KEPT);
	am_exec(&run_prune_plan, v, NULL, false, 0);
	am_finish(&priv);
	return run_id;
}

static void
update_run(int64 run_id, const AmPass *pass, bool finished, const char *error)
{
	AmPriv		priv;
	Datum		v[10];
	bool		nulls[10] = {false};
	int			i;

	am_connect(&priv);
	v[0] = Int64GetDatum(run_id);
	for (i = 0; i < AM_NUM_COUNTS; i++)
		v[1 + i] = Int64GetDatum(pass->counts[i]);
	v[8] = BoolGetDatum(finished);
	if (error)
		v[9] = CStringGetTextDatum(error);
	else
		nulls[9] = true;
	am_exec(&run_update_plan, v, nulls, false, 0);
	am_finish(&priv);
}

PG_FUNCTION_INFO_V1(am_run_maintenance_proc);
Datum
am_run_maintenance_proc(PG_FUNCTION_ARGS)
{
	bool		nonatomic;
	int32		batch_size;
	TimestampTz start;
	MemoryContext ctx;
	AmPass		pass;
	int64		run_id;
	volatile bool more = true;

	nonatomic = fcinfo->context && IsA(fcinfo->context, CallContext) &&
		!castNode(CallContext, fcinfo->context)->atomic;
	if (!nonatomic)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
				 errmsg("agentmesh.run_maintenance() must be called with CALL outside a transaction block"),
				 errdetail("It commits after every batch."),
				 errhint("Inside a transaction, use SELECT * FROM agentmesh.lm_run_maintenance().")));
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("batch_size must not be null")));
	batch_size = PG_GETARG_INT32(0);
	if (batch_size < 1 || batch_size > 1000000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be between 1 and 1000000")));
	am_require_writable("run_maintenance()");

	/* the pass's state survives the commits: keep it outside them */
	ctx = AllocSetContextCreate(TopMemoryContext, "agentmesh_lifecycle run_maintenance",
								ALLOCSET_DEFAULT_SIZES);
	if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect_ext failed");

	start = GetCurrentTimestamp();
	run_id = insert_run(start, batch_size);
	SPI_commit();

	MemoryContextSwitchTo(ctx);
	am_pass_init(&pass, start, batch_size, ctx);
	while (more)
	{
		ResourceOwner owner = CurrentResourceOwner;
		ErrorData  *volatile edata = NULL;

		CHECK_FOR_INTERRUPTS();

		/*
		 * The batch runs in a subtransaction, so that after an error the
		 * run's row can still record it before the error is raised again.
		 */
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(ctx);
		PG_TRY();
		{
			PushActiveSnapshot(GetTransactionSnapshot());
			more = am_pass_step(&pass);
			PopActiveSnapshot();
			ReleaseCurrentSubTransaction();
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(ctx);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
		}
		PG_END_TRY();
		MemoryContextSwitchTo(ctx);
		CurrentResourceOwner = owner;

		update_run(run_id, &pass, edata != NULL || !more, edata ? edata->message : NULL);
		SPI_commit();
		MemoryContextSwitchTo(ctx);
		if (edata)
		{
			/* freed with the transaction the error aborts */
			MemoryContextSetParent(ctx, TopTransactionContext);
			ReThrowError(edata);
		}
	}
	SPI_finish();
	MemoryContextDelete(ctx);
	PG_RETURN_VOID();
}

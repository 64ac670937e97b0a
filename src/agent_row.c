/*-------------------------------------------------------------------------
 *
 * agent_row.c
 *		One agent row, found by primary key, locked and updated without the
 *		planner or an executor start-up: the heartbeat's hot path.
 *
 * An UPDATE run through SPI spends about as long starting and shutting down
 * the executor as it spends on the row.  Here the row is read through
 * agents_pkey, locked as the executor locks a row that a BEFORE trigger is
 * about to see, and updated through ExecSimpleRelationUpdate(), the routine
 * logical replication applies changes with: BEFORE and AFTER row triggers
 * (so the agents trigger still checks and audits the change), constraints
 * and index entries are handled as for an UPDATE statement.
 *
 * Concurrency follows UPDATE.  The starting point is the version visible to
 * a fresh snapshot taken as SPI takes one for each statement.  Under READ
 * COMMITTED a newer committed version is followed and locked, and the caller
 * checks that one; under REPEATABLE READ and SERIALIZABLE a concurrent
 * change is a serialization failure, as it is for UPDATE.
 *
 * Written against the PostgreSQL 15 executor API.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "common/int.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "agentmesh.h"

/*
 * Find the agent's row and lock it; false if there is no such agent.  On
 * true the row stays open for am_agent_row_heartbeat() or
 * am_agent_row_close(), and row->slot holds the locked version.
 */
bool
am_agent_row_lock(AmAgentRow *row, const char *agent_id)
{
	Oid			nsp = get_namespace_oid(AM_SCHEMA, false);
	TupleDesc	desc;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	ItemPointerData tid;
	bool		found;

	row->rel = table_open(am_relid(nsp, "agents"), RowExclusiveLock);
	desc = RelationGetDescr(row->rel);

	/* a statement of our own: see what came before it, as SPI would */
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());

	row->estate = CreateExecutorState();
	am_init_update_range_table(row->estate, row->rel, RowExclusiveLock);
	row->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(row->rri, row->rel, 1, NULL, 0);
	/* AFTER triggers (RI checks) find it here instead of opening the table again */
	row->estate->es_opened_result_relations = list_make1(row->rri);
	row->estate->es_snapshot = GetActiveSnapshot();
	row->estate->es_output_cid = GetCurrentCommandId(true);
	ExecOpenIndices(row->rri, false);
	am_epq_init(&row->epq, row->estate);
	row->slot = table_slot_create(row->rel, &row->estate->es_tupleTable);

	ScanKeyInit(&key, am_attnum(desc, "agent_id"), BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(agent_id));
	scan = systable_beginscan(row->rel, am_primary_key_index(row->rel), true,
							  GetActiveSnapshot(), 1, &key);
	tup = systable_getnext(scan);
	found = HeapTupleIsValid(tup);
	if (found)
		tid = tup->t_self;
	systable_endscan(scan);

	if (found)
	{
		TM_FailureData tmfd;
		TM_Result	res;

		/* the lock mode of an UPDATE that leaves the key alone */
		res = table_tuple_lock(row->rel, &tid, GetActiveSnapshot(), row->slot,
							   row->estate->es_output_cid, LockTupleNoKeyExclusive,
							   LockWaitBlock,
							   IsolationUsesXactSnapshot() ? 0 : TUPLE_LOCK_FLAG_FIND_LAST_VERSION,
							   &tmfd);
		switch (res)
		{
			case TM_Ok:
				break;
			case TM_Updated:
			case TM_Deleted:
				if (IsolationUsesXactSnapshot())
					ereport(ERROR,
							(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
							 errmsg("could not serialize access due to concurrent update")));
				/* agents are never deleted; treat it as gone */
				found = false;
				break;
			default:
				elog(ERROR, "unexpected result %d locking agent \"%s\"", (int) res, agent_id);
		}
	}
	if (!found)
		am_agent_row_close(row);
	return found;
}

/* A column of the locked row version. */
Datum
am_agent_row_col(AmAgentRow *row, const char *name, bool *isnull)
{
	return slot_getattr(row->slot, am_attnum(row->slot->tts_tupleDescriptor, name), isnull);
}

/*
 * Record a heartbeat on the locked row: last_heartbeat = now(),
 * heartbeat_count + 1, through the row triggers, and close the row.  On
 * true, *at is the last_heartbeat stored, and *row_out, if asked for, the
 * new row as a composite datum of type agentmesh.agents (the 1.0 result of
 * lm_heartbeat); false when a BEFORE trigger skipped the row.  The 1.1
 * heartbeat does not ask for the row: its result holds only what the agent
 * may read (lifecycle.c), and not building the composite keeps the hot path
 * short.
 */
bool
am_agent_row_heartbeat(AmAgentRow *row, TimestampTz *at, Datum *row_out)
{
	TupleDesc	desc = RelationGetDescr(row->rel);
	TupleTableSlot *newslot = table_slot_create(row->rel, &row->estate->es_tupleTable);
	int			hb = am_attnum(desc, "last_heartbeat") - 1;
	int			cnt = am_attnum(desc, "heartbeat_count") - 1;
	int64		count;
	bool		stored;

	/* the columns set here, declared to triggers as the updated ones */
	am_set_updated_cols(row->estate,
						bms_add_member(bms_make_singleton(hb + 1 - FirstLowInvalidHeapAttributeNumber),
									   cnt + 1 - FirstLowInvalidHeapAttributeNumber));
	slot_getallattrs(row->slot);
	ExecClearTuple(newslot);
	memcpy(newslot->tts_values, row->slot->tts_values, desc->natts * sizeof(Datum));
	memcpy(newslot->tts_isnull, row->slot->tts_isnull, desc->natts * sizeof(bool));
	if (pg_add_s64_overflow(DatumGetInt64(row->slot->tts_values[cnt]), 1, &count))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("bigint out of range")));
	newslot->tts_values[cnt] = Int64GetDatum(count);
	newslot->tts_values[hb] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	newslot->tts_isnull[hb] = false;
	ExecStoreVirtualTuple(newslot);

	AfterTriggerBeginQuery();
	ExecSimpleRelationUpdate(row->rri, row->estate, &row->epq, row->slot, newslot);
	AfterTriggerEndQuery(row->estate);

	/*
	 * ExecSimpleRelationUpdate() does not say whether a trigger skipped the
	 * row; a stored row version has its own new TID in the slot.
	 */
	stored = ItemPointerIsValid(&newslot->tts_tid) &&
		!ItemPointerEquals(&newslot->tts_tid, &row->slot->tts_tid);
	if (stored)
	{
		bool		isnull;
		Datum		d = slot_getattr(newslot, hb + 1, &isnull);

		/* what was stored: a trigger may have changed it */
		*at = isnull ? DT_NOBEGIN : DatumGetTimestampTz(d);
		if (row_out)
			*row_out = ExecFetchSlotHeapTupleDatum(newslot);
	}
	am_agent_row_close(row);
	return stored;
}

/* Release what am_agent_row_lock() opened; the row lock stays until commit. */
void
am_agent_row_close(AmAgentRow *row)
{
	EvalPlanQualEnd(&row->epq);
	/* the indexes, and any relation an AFTER trigger opened */
	ExecCloseResultRelations(row->estate);
	ExecResetTupleTable(row->estate->es_tupleTable, false);
	FreeExecutorState(row->estate);
	PopActiveSnapshot();
	table_close(row->rel, NoLock);
}

/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The launcher and the per-database maintenance workers.
 *
 * With shared_preload_libraries = 'agentmesh_lifecycle' the postmaster
 * starts one static launcher (after recovery: none on a hot standby, one
 * after promotion).  The launcher connects to no database; it reads
 * pg_database and keeps, in shared memory, one slot per connectable
 * database, keyed by database OID.  A database's slot has at most one
 * worker, registered by the launcher only (the slot's generation number,
 * handed to the worker, makes a stale registration exit at once), so no
 * database ever has two.
 *
 * The launcher cannot read another database's pg_extension, so it starts a
 * worker for every database; the worker connects, and if the extension is
 * absent it exits at once, leaving the slot marked "no extension".  Such a
 * database is probed again only when something may have changed: CREATE
 * EXTENSION or DROP EXTENSION committed there (an object-access hook in
 * every backend notices and wakes the launcher at commit), CREATE DATABASE
 * (a copy may carry the extension), a launcher restart, and every
 * AM_REPROBE_SECS as a safety net.
 *
 * A worker with the extension runs a maintenance pass (maintenance.c)
 * every agentmesh_lifecycle.naptime, one transaction per batch, and
 * otherwise sleeps on its latch.  It exits when the extension is dropped
 * (woken at the DROP's commit), when its database leaves the allow-list or
 * the workers are disabled, and on SIGTERM.  An error in a pass is logged,
 * recorded in the slot and the next pass runs normally; a worker that dies
 * is started again by the launcher about a second later.
 *
 * DROP DATABASE (without FORCE) fails if another session stays connected,
 * and so does ALTER DATABASE RENAME / SET TABLESPACE and CREATE DATABASE
 * from it as a template.  A ProcessUtility hook therefore stops the
 * database's worker before those commands run (they wait up to 5 s for
 * other sessions to leave) and keeps it stopped for AM_PAUSE_SECS.
 *
 * The status of each worker lives in its slot and is shown by the view
 * agentmesh.worker_status.  Shared memory, not a table: recording a failed
 * pass must not depend on the failed transaction, it costs no WAL or bloat,
 * and a standby, where no worker runs, shows no stale primary rows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "agentmesh.h"

#define AM_EXTENSION_NAME	"agentmesh_lifecycle"
#define AM_MAX_DATABASES	256
#define AM_ERRLEN			256
#define AM_LAUNCHER_NAP_MS	1000	/* launcher's look at pg_database */
#define AM_RESTART_SECS		1	/* restart of a worker that died */
#define AM_START_RETRY_SECS 5	/* no free background worker slot: first retry */
#define AM_START_RETRY_MAX_SECS 300 /* ... doubling up to this */
#define AM_REPROBE_SECS		300 /* safety-net probe of databases without it */
#define AM_PAUSE_SECS		10	/* no worker after DROP/RENAME DATABASE */

typedef enum AmSlotState
{
	SLOT_FREE = 0,
	SLOT_IDLE,					/* no process; (re)start at next_start */
	SLOT_STARTING,				/* registered, not yet attached */
	SLOT_RUNNING,				/* attached; pid valid */
	SLOT_NO_EXTENSION			/* probed: the extension is not installed */
} AmSlotState;

typedef struct AmWorkerSlot
{
	Oid			dboid;
	NameData	datname;
	AmSlotState state;
	bool		in_pass;
	pid_t		pid;
	Latch	   *latch;
	uint32		generation;
	TimestampTz next_start;
	TimestampTz paused_until;
	int			start_failures;	/* in a row, for lack of a worker slot */
	/* status of the last pass */
	int64		passes;
	TimestampTz last_pass_start;
	int64		last_pass_usecs;
	int64		counts[AM_NUM_COUNTS];
	int64		errors;
	TimestampTz last_error_at;
	char		last_error[AM_ERRLEN];
} AmWorkerSlot;

typedef struct AmShared
{
	LWLock	   *lock;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	uint32		next_generation;
	AmWorkerSlot slots[AM_MAX_DATABASES];
} AmShared;

static AmShared *am_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static object_access_hook_type prev_object_access_hook = NULL;

/* set by the object-access hook, acted on at commit */
static bool extension_changed = false;
static bool xact_callback_registered = false;

PGDLLEXPORT void am_launcher_main(Datum main_arg);
PGDLLEXPORT void am_worker_main(Datum main_arg);

/* ----------------------------------------------------------------
 * Shared memory
 * ----------------------------------------------------------------
 */
static void
am_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(AmShared)));
	RequestNamedLWLockTranche("agentmesh_lifecycle", 1);
}

static void
am_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	am_shared = ShmemInitStruct("agentmesh_lifecycle workers", sizeof(AmShared), &found);
	if (!found)
	{
		memset(am_shared, 0, sizeof(AmShared));
		am_shared->lock = &(GetNamedLWLockTranche("agentmesh_lifecycle"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

static AmWorkerSlot *
find_slot(Oid dboid)
{
	int			i;

	for (i = 0; i < AM_MAX_DATABASES; i++)
		if (am_shared->slots[i].state != SLOT_FREE && am_shared->slots[i].dboid == dboid)
			return &am_shared->slots[i];
	return NULL;
}

static TimestampTz
after_secs(TimestampTz t, int secs)
{
	return TimestampTzPlusMilliseconds(t, (int64) secs * 1000);
}

/* ----------------------------------------------------------------
 * Notifications from ordinary backends
 * ----------------------------------------------------------------
 */

/*
 * Something about this database changed (extension created or dropped):
 * probe it now and wake its worker, which rechecks the extension.
 */
static void
notify_database(Oid dboid)
{
	AmWorkerSlot *slot;

	if (am_shared == NULL)
		return;
	LWLockAcquire(am_shared->lock, LW_EXCLUSIVE);
	slot = find_slot(dboid);
	if (slot)
	{
		if (slot->state == SLOT_NO_EXTENSION || slot->state == SLOT_IDLE)
		{
			slot->state = SLOT_IDLE;
			slot->next_start = GetCurrentTimestamp();
		}
		if (slot->latch)
			SetLatch(slot->latch);
	}
	if (am_shared->launcher_latch)
		SetLatch(am_shared->launcher_latch);
	LWLockRelease(am_shared->lock);
}

static void
am_xact_callback(XactEvent event, void *arg)
{
	if (!extension_changed)
		return;
	if (event == XACT_EVENT_COMMIT)
		notify_database(MyDatabaseId);
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PREPARE)
		extension_changed = false;
}

static void
am_object_access(ObjectAccessType access, Oid classId, Oid objectId,
				 int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (classId == ExtensionRelationId &&
		(access == OAT_POST_CREATE || access == OAT_DROP))
	{
		/* any extension: cheaper than finding out which one it is */
		if (!xact_callback_registered)
		{
			RegisterXactCallback(am_xact_callback, NULL);
			xact_callback_registered = true;
		}
		extension_changed = true;
	}
}

/*
 * Stop the worker of a database that a command needs to itself, and keep
 * it stopped for AM_PAUSE_SECS.  Only for the database's owner (or a
 * superuser), so that nobody else can switch maintenance off this way.
 */
static void
pause_database_worker(const char *dbname)
{
	Oid			dboid;
	AmWorkerSlot *slot;
	pid_t		pid = 0;

	if (am_shared == NULL || dbname == NULL)
		return;
	dboid = get_database_oid(dbname, true);
	if (!OidIsValid(dboid))
		return;
	if (!superuser() && !am_database_ownercheck(dboid, GetUserId()))
		return;
	LWLockAcquire(am_shared->lock, LW_EXCLUSIVE);
	slot = find_slot(dboid);
	if (slot)
	{
		slot->paused_until = after_secs(GetCurrentTimestamp(), AM_PAUSE_SECS);
		pid = slot->pid;
	}
	LWLockRelease(am_shared->lock);
	if (pid != 0)
		kill(pid, SIGTERM);
}

static void
am_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				   ProcessUtilityContext context, ParamListInfo params,
				   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	bool		createdb = false;

	if (IsA(parsetree, DropdbStmt))
		pause_database_worker(((DropdbStmt *) parsetree)->dbname);
	else if (IsA(parsetree, RenameStmt) &&
			 ((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
		pause_database_worker(((RenameStmt *) parsetree)->subname);
	else if (IsA(parsetree, AlterDatabaseStmt) || IsA(parsetree, CreatedbStmt))
	{
		List	   *options;
		ListCell   *lc;

		if (IsA(parsetree, AlterDatabaseStmt))
			options = ((AlterDatabaseStmt *) parsetree)->options;
		else
		{
			options = ((CreatedbStmt *) parsetree)->options;
			createdb = true;
		}
		foreach(lc, options)
		{
			DefElem    *d = (DefElem *) lfirst(lc);

			if (!createdb && strcmp(d->defname, "tablespace") == 0)
				pause_database_worker(((AlterDatabaseStmt *) parsetree)->dbname);
			if (createdb && strcmp(d->defname, "template") == 0 && d->arg != NULL)
				pause_database_worker(defGetString(d));
		}
	}

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);

	/* a copied database may carry the extension: let the launcher look now */
	if (createdb && am_shared != NULL && am_shared->launcher_latch != NULL)
		SetLatch(am_shared->launcher_latch);
}

/* ----------------------------------------------------------------
 * Registration (from _PG_init, only when preloaded)
 * ----------------------------------------------------------------
 */
void
am_worker_init(void)
{
	BackgroundWorker bgw;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = am_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = am_shmem_startup;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = am_process_utility;
	prev_object_access_hook = object_access_hook;
	object_access_hook = am_object_access;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 1;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "agentmesh_lifecycle");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "am_launcher_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "agentmesh_lifecycle launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "agentmesh_lifecycle launcher");
	RegisterBackgroundWorker(&bgw);
}

/* ----------------------------------------------------------------
 * Launcher
 * ----------------------------------------------------------------
 */
typedef struct AmDatabase
{
	Oid			oid;
	NameData	name;
} AmDatabase;

/*
 * SIGTERM: set by the handler, acted on between batches and while waiting.
 * The standard handler (die) would end the worker with "FATAL: terminating
 * background worker", at every DROP DATABASE (the ProcessUtility hook stops
 * the worker) and at every shutdown, paging whoever alerts on FATAL for
 * something that is not a failure.  A batch is short, so the worker still
 * leaves within DROP DATABASE's 5 s wait.
 */
static volatile sig_atomic_t got_sigterm = false;

static void
worker_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	got_sigterm = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

static BackgroundWorkerHandle *handles[AM_MAX_DATABASES];

/* the launcher said that worker slots ran out, and none has started since */
static bool no_room_reported = false;

/* Is a database in agentmesh_lifecycle.databases (empty: all)? */
static bool
database_allowed(const char *dbname)
{
	char	   *raw;
	List	   *names;
	ListCell   *lc;
	bool		found = false;

	if (am_databases == NULL || am_databases[0] == '\0')
		return true;
	raw = pstrdup(am_databases);
	if (!SplitIdentifierString(raw, ',', &names))
	{
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid list syntax in parameter \"agentmesh_lifecycle.databases\""),
				 errdetail("No maintenance worker runs until the list is fixed.")));
		return false;
	}
	foreach(lc, names)
		if (strcmp((char *) lfirst(lc), dbname) == 0)
			found = true;
	list_free(names);
	pfree(raw);
	return found;
}

/* The databases that should have a worker (or a probe), read from pg_database. */
static int
scan_databases(AmDatabase *dbs, MemoryContext ctx)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	int			n = 0;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (!db->datallowconn || db->datistemplate || database_is_invalid_form(db))
			continue;
		if (!database_allowed(NameStr(db->datname)))
			continue;
		if (n >= AM_MAX_DATABASES)
		{
			ereport(LOG,
					(errmsg("agentmesh_lifecycle serves at most %d databases; database %s gets no maintenance worker",
							AM_MAX_DATABASES, am_log_quote(NameStr(db->datname)))));
			continue;
		}
		dbs[n].oid = db->oid;
		dbs[n].name = db->datname;
		n++;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	MemoryContextSwitchTo(ctx);
	return n;
}

static bool
start_worker(int idx, AmWorkerSlot *slot)
{
	BackgroundWorker bgw;
	BackgroundWorkerHandle *handle;

	slot->generation = ++am_shared->next_generation;
	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;	/* the launcher restarts it */
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "agentmesh_lifecycle");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "am_worker_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "agentmesh_lifecycle worker for database %s",
			 am_log_quote(NameStr(slot->datname)));
	snprintf(bgw.bgw_type, BGW_MAXLEN, "agentmesh_lifecycle worker");
	bgw.bgw_main_arg = Int32GetDatum(idx);
	memcpy(bgw.bgw_extra, &slot->generation, sizeof(uint32));
	bgw.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&bgw, &handle))
		return false;
	handles[idx] = handle;
	slot->state = SLOT_STARTING;
	return true;
}

/*
 * One look at the world: create slots for new databases, free the slots of
 * vanished or excluded ones (stopping their worker), notice workers that
 * failed to start, and start the workers that are due.
 */
static void
launcher_reconcile(MemoryContext ctx)
{
	AmDatabase *dbs = palloc(sizeof(AmDatabase) * AM_MAX_DATABASES);
	int			ndbs = am_enabled ? scan_databases(dbs, ctx) : 0;
	TimestampTz now = GetCurrentTimestamp();
	int			i;
	int			j;

	LWLockAcquire(am_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < AM_MAX_DATABASES; i++)
	{
		AmWorkerSlot *slot = &am_shared->slots[i];
		bool		wanted = false;

		if (slot->state == SLOT_FREE)
			continue;
		for (j = 0; j < ndbs && !wanted; j++)
			wanted = dbs[j].oid == slot->dboid;

		/* a registered worker that never attached (e.g. its database went away) */
		if (slot->state == SLOT_STARTING)
		{
			pid_t		pid;

			if (handles[i] == NULL ||
				GetBackgroundWorkerPid(handles[i], &pid) == BGWH_STOPPED)
			{
				slot->state = SLOT_IDLE;
				slot->next_start = after_secs(now, AM_RESTART_SECS);
			}
		}
		if (slot->state != SLOT_STARTING && handles[i] != NULL)
		{
			pfree(handles[i]);
			handles[i] = NULL;
		}

		if (!wanted)
		{
			if (slot->pid != 0)
				kill(slot->pid, SIGTERM);
			else if (slot->state != SLOT_STARTING)
				memset(slot, 0, sizeof(*slot));
		}
	}

	for (j = 0; j < ndbs; j++)
	{
		AmWorkerSlot *slot = find_slot(dbs[j].oid);

		if (slot == NULL)
		{
			for (i = 0; i < AM_MAX_DATABASES; i++)
				if (am_shared->slots[i].state == SLOT_FREE)
					break;
			if (i == AM_MAX_DATABASES)
				break;
			slot = &am_shared->slots[i];
			memset(slot, 0, sizeof(*slot));
			slot->dboid = dbs[j].oid;
			slot->state = SLOT_IDLE;
			slot->next_start = now;
		}
		slot->datname = dbs[j].name;	/* follows a rename */
	}

	for (i = 0; i < AM_MAX_DATABASES; i++)
	{
		AmWorkerSlot *slot = &am_shared->slots[i];

		if ((slot->state != SLOT_IDLE && slot->state != SLOT_NO_EXTENSION) ||
			slot->next_start > now || slot->paused_until > now)
			continue;
		for (j = 0; j < ndbs; j++)
			if (dbs[j].oid == slot->dboid)
				break;
		if (j == ndbs)
			continue;
		if (!start_worker(i, slot))
		{
			/*
			 * No free background worker slot.  Say so once, not at every
			 * retry (probes of databases without the extension need a slot
			 * too), and back off per database: 5 s, doubling up to 5 min.
			 */
			slot->next_start = after_secs(now, Min(AM_START_RETRY_SECS << Min(slot->start_failures, 6),
												   AM_START_RETRY_MAX_SECS));
			slot->start_failures++;
			if (!no_room_reported)
				ereport(LOG,
						(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
						 errmsg("could not start an agentmesh_lifecycle worker for database %s: no free background worker slot",
								am_log_quote(NameStr(slot->datname))),
						 errdetail("Starts are retried with a growing delay (up to %d s); this message is not repeated until a worker has started again.",
								   AM_START_RETRY_MAX_SECS),
						 errhint("Raise max_worker_processes: each database needs a background worker, for a moment when it only has to be probed for the extension.")));
			no_room_reported = true;
		}
		else
		{
			if (no_room_reported)
				ereport(LOG,
						(errmsg("agentmesh_lifecycle workers can be started again")));
			no_room_reported = false;
			slot->start_failures = 0;
		}
	}
	LWLockRelease(am_shared->lock);
	pfree(dbs);
}

static void
launcher_exit(int code, Datum arg)
{
	if (am_shared == NULL)
		return;
	LWLockReleaseAll();
	LWLockAcquire(am_shared->lock, LW_EXCLUSIVE);
	if (am_shared->launcher_pid == MyProcPid)
	{
		am_shared->launcher_pid = 0;
		am_shared->launcher_latch = NULL;
	}
	LWLockRelease(am_shared->lock);
}

void
am_launcher_main(Datum main_arg)
{
	MemoryContext ctx;
	int			i;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	/* a stop request is not a failure: leave at LOG, not FATAL (see worker_sigterm) */
	pqsignal(SIGTERM, worker_sigterm);
	BackgroundWorkerUnblockSignals();
	/* shared catalogs only: never in the way of DROP DATABASE */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("agentmesh_lifecycle launcher");

	if (am_shared == NULL)
		elog(ERROR, "agentmesh_lifecycle shared memory is not initialized");

	LWLockAcquire(am_shared->lock, LW_EXCLUSIVE);
	am_shared->launcher_pid = MyProcPid;
	am_shared->launcher_latch = MyLatch;
	/*
	 * After a launcher restart (not a crash: that resets shared memory),
	 * registrations of the previous launcher cannot be followed: retry them;
	 * a worker of an old generation that attaches later exits.  Probe the
	 * databases without the extension again too.
	 */
	for (i = 0; i < AM_MAX_DATABASES; i++)
	{
		AmWorkerSlot *slot = &am_shared->slots[i];

		if (slot->state == SLOT_STARTING || slot->state == SLOT_NO_EXTENSION)
		{
			slot->state = SLOT_IDLE;
			slot->generation = 0;
			slot->next_start = 0;
		}
	}
	LWLockRelease(am_shared->lock);
	before_shmem_exit(launcher_exit, (Datum) 0);

	ctx = AllocSetContextCreate(TopMemoryContext, "agentmesh_lifecycle launcher",
								ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(ctx);
	ereport(LOG,
			(errmsg("agentmesh_lifecycle launcher started")));

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (got_sigterm)
		{
			ereport(LOG,
					(errmsg("agentmesh_lifecycle launcher stopping on request")));
			proc_exit(0);
		}
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		launcher_reconcile(ctx);
		MemoryContextReset(ctx);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 AM_LAUNCHER_NAP_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ----------------------------------------------------------------
 * Per-database worker
 * ----------------------------------------------------------------
 */
static int	my_slot = -1;
static uint32 my_generation = 0;
static NameData my_datname;

pg_noreturn static void
worker_exit_on_sigterm(void)
{
	ereport(LOG,
			(errmsg("agentmesh_lifecycle worker for database %s stopping on request",
					am_log_quote(NameStr(my_datname)))));
	proc_exit(0);
}

static AmWorkerSlot *
my_slot_locked(void)
{
	AmWorkerSlot *slot = &am_shared->slots[my_slot];

	if (slot->generation != my_generation || slot->dboid != MyDatabaseId)
		return NULL;
	return slot;
}

/* The slot tells the launcher how this worker ended. */
static void
worker_exit(int code, Datum arg)
{
	AmWorkerSlot *slot;

	if (am_shared == NULL || my_slot < 0)
		return;
	LWLockReleaseAll();
	LWLockAcquire(am_shared->lock, LW_EXCLUSIVE);
	slot = my_slot_locked();
	if (slot && slot->pid == MyProcPid)
	{
		slot->pid = 0;
		slot->latch = NULL;
		slot->in_pass = false;
		if (slot->state == SLOT_RUNNING)
		{
			slot->state = SLOT_IDLE;
			slot->next_start = after_secs(GetCurrentTimestamp(), AM_RESTART_SECS);
		}
	}
	if (am_shared->launcher_latch)
		SetLatch(am_shared->launcher_latch);
	LWLockRelease(am_shared->lock);
}

/* Leave without being restarted soon: the database has no extension. */
static void
worker_exit_no_extension(void)
{
	AmWorkerSlot *slot;

	LWLockAcquire(am_shared->lock, LW_EXCLUSIVE);
	slot = my_slot_locked();
	if (slot)
	{
		slot->state = SLOT_NO_EXTENSION;
		slot->next_start = after_secs(GetCurrentTimestamp(), AM_REPROBE_SECS);
	}
	LWLockRelease(am_shared->lock);
	proc_exit(0);
}

static bool
extension_present(void)
{
	bool		present;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	present = OidIsValid(get_extension_oid(AM_EXTENSION_NAME, true));
	CommitTransactionCommand();
	return present;
}

static void
record_pass(const AmPass *pass, TimestampTz start, bool ok, const char *error)
{
	AmWorkerSlot *slot;
	TimestampTz end = GetCurrentTimestamp();

	LWLockAcquire(am_shared->lock, LW_EXCLUSIVE);
	slot = my_slot_locked();
	if (slot)
	{
		slot->in_pass = false;
		if (ok)
		{
			slot->passes++;
			slot->last_pass_start = start;
			slot->last_pass_usecs = end - start;
			memcpy(slot->counts, pass->counts, sizeof(slot->counts));
		}
		else
		{
			slot->errors++;
			slot->last_error_at = end;
			strlcpy(slot->last_error, error ? error : "unknown error", AM_ERRLEN);
		}
	}
	LWLockRelease(am_shared->lock);
}

/*
 * One pass, one transaction per batch.  An ERROR is logged and recorded,
 * its transaction rolled back, and the worker carries on; the batches
 * committed before it stay done.
 */
static void
run_pass(MemoryContext ctx)
{
	AmPass		pass;
	TimestampTz start = GetCurrentTimestamp();
	char		activity[128];

	am_pass_init(&pass, start, am_batch_size, ctx);
	LWLockAcquire(am_shared->lock, LW_EXCLUSIVE);
	if (my_slot_locked())
		my_slot_locked()->in_pass = true;
	LWLockRelease(am_shared->lock);

	PG_TRY();
	{
		bool		more = true;

		while (more && !got_sigterm)
		{
			CHECK_FOR_INTERRUPTS();
			snprintf(activity, sizeof(activity), "agentmesh_lifecycle maintenance pass: %s",
					 am_pass_phase_name(&pass));
			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			pgstat_report_activity(STATE_RUNNING, activity);
			more = am_pass_step(&pass);
			PopActiveSnapshot();
			CommitTransactionCommand();
			MemoryContextSwitchTo(ctx);
		}
		/* a pass cut short by SIGTERM is neither a pass nor an error */
		if (!more)
			record_pass(&pass, start, true, NULL);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(ctx);
		edata = CopyErrorData();
		EmitErrorReport();
		AbortCurrentTransaction();
		FlushErrorState();
		MemoryContextSwitchTo(ctx);
		record_pass(&pass, start, false, edata->message);
		FreeErrorData(edata);
		RESUME_INTERRUPTS();
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	pgstat_report_stat(true);
}

void
am_worker_main(Datum main_arg)
{
	AmWorkerSlot *slot;
	Oid			dboid = InvalidOid;
	MemoryContext ctx;
	TimestampTz last_start = 0;

	my_slot = DatumGetInt32(main_arg);
	memcpy(&my_generation, MyBgworkerEntry->bgw_extra, sizeof(uint32));

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, worker_sigterm);
	BackgroundWorkerUnblockSignals();

	if (am_shared == NULL || my_slot < 0 || my_slot >= AM_MAX_DATABASES)
		proc_exit(0);
	LWLockAcquire(am_shared->lock, LW_SHARED);
	slot = &am_shared->slots[my_slot];
	if (slot->generation == my_generation && slot->state == SLOT_STARTING)
		dboid = slot->dboid;
	LWLockRelease(am_shared->lock);
	if (!OidIsValid(dboid))
		proc_exit(0);			/* superseded registration */

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	/* attach: from here on this is the database's only worker */
	LWLockAcquire(am_shared->lock, LW_EXCLUSIVE);
	slot = my_slot_locked();
	if (slot == NULL || slot->state != SLOT_STARTING ||
		slot->paused_until > GetCurrentTimestamp())
	{
		if (slot)
		{
			slot->state = SLOT_IDLE;
			slot->next_start = slot->paused_until;
		}
		LWLockRelease(am_shared->lock);
		proc_exit(0);
	}
	slot->pid = MyProcPid;
	slot->latch = MyLatch;
	slot->state = SLOT_RUNNING;
	my_datname = slot->datname;
	LWLockRelease(am_shared->lock);
	before_shmem_exit(worker_exit, (Datum) 0);

	pgstat_report_appname("agentmesh_lifecycle worker");
	/* belt and braces: rows are taken with SKIP LOCKED, but never hang on a table lock */
	SetConfigOption("lock_timeout", "10s", PGC_SUSET, PGC_S_OVERRIDE);

	ctx = AllocSetContextCreate(TopMemoryContext, "agentmesh_lifecycle worker",
								ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(ctx);

	for (;;)
	{
		TimestampTz now;
		TimestampTz next;
		long		wait_ms;

		CHECK_FOR_INTERRUPTS();
		if (got_sigterm)
			worker_exit_on_sigterm();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!am_enabled || !database_allowed(NameStr(my_datname)))
			proc_exit(0);		/* the launcher decides about a restart */
		if (!extension_present())
			worker_exit_no_extension();
		MemoryContextSwitchTo(ctx);

		now = GetCurrentTimestamp();
		next = after_secs(last_start, am_naptime);
		if (last_start == 0 || now >= next)
		{
			last_start = now;
			run_pass(ctx);
			MemoryContextReset(ctx);
			continue;			/* recheck the extension before sleeping */
		}
		wait_ms = (long) ((next - now + 999) / 1000);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ----------------------------------------------------------------
 * agentmesh.lm_worker_status()
 * ----------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(lm_worker_status);
Datum
lm_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AmWorkerSlot *copy;
	int			n = 0;
	int			i;
	TimestampTz now = GetCurrentTimestamp();

	InitMaterializedSRF(fcinfo, 0);
	if (am_shared == NULL)
		return (Datum) 0;		/* not preloaded: no workers */

	copy = palloc(sizeof(AmWorkerSlot) * AM_MAX_DATABASES);
	LWLockAcquire(am_shared->lock, LW_SHARED);
	for (i = 0; i < AM_MAX_DATABASES; i++)
		if (am_shared->slots[i].state != SLOT_FREE)
			copy[n++] = am_shared->slots[i];
	LWLockRelease(am_shared->lock);

	for (i = 0; i < n; i++)
	{
		AmWorkerSlot *s = &copy[i];
		Datum		v[17];
		bool		nulls[17];
		const char *state;
		int			c;

		memset(nulls, 0, sizeof(nulls));
		switch (s->state)
		{
			case SLOT_STARTING:
				state = "starting";
				break;
			case SLOT_RUNNING:
				state = s->in_pass ? "running pass" : "waiting";
				break;
			case SLOT_NO_EXTENSION:
				state = "no extension";
				break;
			default:
				state = s->paused_until > now ? "paused" : "stopped";
				break;
		}
		v[0] = ObjectIdGetDatum(s->dboid);
		v[1] = NameGetDatum(&s->datname);
		v[2] = Int32GetDatum((int32) s->pid);
		nulls[2] = s->pid == 0;
		v[3] = CStringGetTextDatum(state);
		v[4] = Int64GetDatum(s->passes);
		v[5] = TimestampTzGetDatum(s->last_pass_start);
		nulls[5] = s->passes == 0;
		{
			Interval   *iv = palloc0(sizeof(Interval));

			iv->time = s->last_pass_usecs;
			v[6] = IntervalPGetDatum(iv);
			nulls[6] = s->passes == 0;
		}
		for (c = 0; c < AM_NUM_COUNTS; c++)
		{
			v[7 + c] = Int64GetDatum(s->counts[c]);
			nulls[7 + c] = s->passes == 0;
		}
		v[14] = Int64GetDatum(s->errors);
		v[15] = CStringGetTextDatum(s->last_error);
		nulls[15] = s->errors == 0;
		v[16] = TimestampTzGetDatum(s->last_error_at);
		nulls[16] = s->errors == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
	}
	return (Datum) 0;
}

/*-------------------------------------------------------------------------
 *
 * revocation.c
 *		Revocation wins: the agent-row lock of an administrator's revoking
 *		operation (lm_revoke_credentials, lm_suspend, lm_decommission) is
 *		never held up longer than agentmesh_lifecycle.revocation_wait.
 *
 * Without this, any session that holds the agent's row (an agent login
 * idling in "BEGIN; SELECT agentmesh.lm_heartbeat(...);", a requester with
 * an open rotation) makes the revocation wait as long as it likes, while the
 * token it means to stop keeps verifying.
 *
 * How the row is taken.  The same "SELECT ... FOR UPDATE" that lifecycle.c
 * locks the row with runs first here, in an internal subtransaction, with
 * lock_timeout set to the bound for that statement only (a GUC nest level of
 * its own, unwound before the subtransaction ends; a caller's own
 * lock_timeout does not shorten it, its statement_timeout still applies).  The wait is an ordinary
 * lock-manager wait: the revocation queues fairly behind the holder, wakes
 * the moment the row is released, and shows up in pg_locks and
 * pg_blocking_pids() like any other waiter (the isolation tester relies on
 * that).  A NOWAIT retry loop would do none of these.  When the lock is
 * granted the subtransaction is released into the caller's transaction, so
 * the lock stays until commit, and lifecycle.c's own FOR UPDATE finds the
 * row already locked by this transaction and goes on at once.
 *
 * Who holds the row.  When lock_timeout fires, the holders are read from the
 * row itself, as pgrowlocks does: the xmax of the version a fresh snapshot
 * sees is the transaction that updated or locked it, or a multixact whose
 * members are.  Every member still in progress is mapped to its top-level
 * transaction (a holder may have locked the row in a savepoint) and that to
 * its backend with BackendXidGetPid().  pg_blocking_pids() cannot be used:
 * it answers for a process that is waiting, and the revoking backend asks
 * only once it has stopped waiting.  A process found so is then judged by
 * the role it logged in as (PGPROC.roleId, which SET ROLE and SET SESSION
 * AUTHORIZATION do not change): a superuser or member of agentmesh_admin is
 * an administrator, and so is a process without a login role (a background
 * worker such as the maintenance worker); a prepared transaction has no
 * process at all.  None of these is ever terminated: the call fails with
 * 55P03 naming them.  Every other holder is terminated with
 * pg_terminate_backend(), run as the extension owner like every table access
 * (spi_util.c), so the server's own permission checks apply: a superuser
 * owner, the normal install, may terminate any non-superuser session; an
 * owner that is neither superuser nor a member of pg_signal_backend may not,
 * and the call fails with 55P03 and a hint saying so.  The revocation then
 * waits, in short lock waits, for the terminated sessions to exit (which
 * releases the row: their transactions roll back) for at most one more
 * bound, terminating whoever else took the row in between; if the row is
 * still not free then, 55P03.
 *
 * There is no sleeping loop: every wait is a lock wait, which sleeps on the
 * process latch and serves interrupts (cancel, statement_timeout,
 * termination) itself; the loop checks for interrupts between its rounds.
 * A holder that commits just as it is found may still be terminated, as
 * with any pg_terminate_backend() by process id; its work is committed.
 *
 * Only a caller whose session user is an administrator gets this: for
 * anyone else (and for every other operation) the row is locked as before
 * and the wait is the ordinary one, governed by lock_timeout.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/multixact.h"
#include "access/stratnum.h"
#include "access/subtrans.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "agentmesh.h"

#define MAX_HOLDERS			64
/* lock waits while terminated sessions exit: short, to catch newcomers */
#define EXIT_POLL_MS		100

typedef enum HolderKind
{
	HK_OTHER,					/* terminated past the bound */
	HK_ADMIN,					/* a superuser's or agentmesh_admin member's session */
	HK_SYSTEM,					/* a process without a login role: a worker */
	HK_PREPARED					/* a prepared transaction: no process */
} HolderKind;

typedef struct Holder
{
	int			pid;			/* 0: a prepared transaction */
	HolderKind	kind;
	bool		admin;			/* never terminated (any kind but HK_OTHER) */
} Holder;

/* the same lock lifecycle.c takes (lock_agent) */
static AmPlan revocation_lock_plan = {
	"SELECT 1 FROM agentmesh.agents WHERE agent_id = $1 FOR UPDATE",
	1, {TEXTOID}
};

static AmPlan terminate_plan = {
	"SELECT pg_catalog.pg_terminate_backend($1)", 1, {INT4OID}
};

/*
 * Lock the row within timeout_ms (at least 1); true when locked or when
 * there is no such row (lifecycle.c reports that), false when lock_timeout
 * passed.  Any other error is raised as it came.
 *
 * The statement runs in an internal subtransaction, as a PL/pgSQL block
 * with an EXCEPTION clause runs its body, so that a lock timeout can be
 * caught and the transaction goes on: on abort the subtransaction's
 * resource owner releases what the statement held (buffer pins, relation
 * locks, the waiting lock), and the memory context and resource owner of
 * the caller are restored explicitly.  The SPI connection made before
 * (am_connect) survives the subtransaction's end, and so do the user id
 * and the search path set with it.
 */
static bool
try_lock(Datum agent_id, int timeout_ms)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool locked = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		int			level = NewGUCNestLevel();
		char		value[32];

		snprintf(value, sizeof(value), "%d", Max(timeout_ms, 1));
		(void) set_config_option("lock_timeout", value, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		am_exec(&revocation_lock_plan, &agent_id, NULL, false, 1);
		SPI_freetuptable(SPI_tuptable);
		AtEOXact_GUC(true, level);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		locked = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		/* also unwinds the lock_timeout nest level */
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			ReThrowError(edata);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return locked;
}

/* Record the backend of an in-progress xid among the holders. */
static void
add_holder(TransactionId xid, Holder *h, int *n)
{
	TransactionId top;
	int			pid;
	int			i;
	PGPROC	   *proc;

	if (!TransactionIdIsValid(xid) || TransactionIdIsCurrentTransactionId(xid) ||
		!TransactionIdIsInProgress(xid))
		return;
	/* a lock taken in a savepoint belongs to the subtransaction's xid */
	top = SubTransGetTopmostTransaction(xid);
	pid = BackendXidGetPid(top);
	for (i = 0; i < *n; i++)
		if (h[i].pid == pid)
			return;
	if (*n >= MAX_HOLDERS)
		return;
	h[*n].pid = pid;
	/* no process (prepared), or none with a login role (a worker): never terminated */
	proc = pid != 0 ? BackendPidGetProc(pid) : NULL;
	if (proc == NULL)
		h[*n].kind = HK_PREPARED;
	else if (!OidIsValid(proc->roleId))
		h[*n].kind = HK_SYSTEM;
	else if (am_member_of(proc->roleId, AM_ADMIN_ROLE))	/* superusers are */
		h[*n].kind = HK_ADMIN;
	else
		h[*n].kind = HK_OTHER;
	h[*n].admin = h[*n].kind != HK_OTHER;
	(*n)++;
}

/*
 * The processes whose transactions hold the agent's row now: the xmax of
 * the version a fresh snapshot sees, or the members of that multixact,
 * read under a share lock on the buffer as pgrowlocks does.  Returns how
 * many; none when the row is free again (or gone).
 */
static int
row_holders(const char *agent_id, Holder *h)
{
	Oid			nsp = get_namespace_oid(AM_SCHEMA, false);
	Relation	rel = table_open(am_relid(nsp, "agents"), AccessShareLock);
	Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	ItemPointerData tid;
	bool		found = false;
	TransactionId xmax = InvalidTransactionId;
	uint16		infomask = HEAP_XMAX_INVALID;
	int			n = 0;

	ScanKeyInit(&key, am_attnum(RelationGetDescr(rel), "agent_id"),
				BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(agent_id));
	scan = systable_beginscan(rel, am_relid(nsp, "agents_pkey"), true, snap, 1, &key);
	if ((tup = systable_getnext(scan)) != NULL)
	{
		tid = tup->t_self;
		found = true;
	}
	systable_endscan(scan);

	if (found)
	{
		/* the version stays: it is visible to the registered snapshot */
		Buffer		buf = ReadBuffer(rel, ItemPointerGetBlockNumber(&tid));
		Page		page;
		ItemId		lp;

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		lp = PageGetItemId(page, ItemPointerGetOffsetNumber(&tid));
		if (ItemIdIsNormal(lp))
		{
			HeapTupleHeader hdr = (HeapTupleHeader) PageGetItem(page, lp);

			xmax = HeapTupleHeaderGetRawXmax(hdr);
			infomask = hdr->t_infomask;
		}
		UnlockReleaseBuffer(buf);
	}
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);

	if (!(infomask & HEAP_XMAX_INVALID) && TransactionIdIsValid(xmax))
	{
		if (infomask & HEAP_XMAX_IS_MULTI)
		{
			MultiXactMember *members;
			int			nm = GetMultiXactIdMembers(xmax, &members, false,
												   HEAP_XMAX_IS_LOCKED_ONLY(infomask));
			int			i;

			for (i = 0; i < nm; i++)
				add_holder(members[i].xid, h, &n);
			if (nm > 0)
				pfree(members);
		}
		else
			add_holder(xmax, h, &n);
	}
	return n;
}

static char *
pid_list(const Holder *h, int n, bool admins)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < n; i++)
	{
		if (h[i].admin != admins)
			continue;
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		if (h[i].kind == HK_PREPARED)
			appendStringInfoString(&buf, "a prepared transaction");
		else
			appendStringInfo(&buf, "process %d%s", h[i].pid,
							 h[i].kind == HK_ADMIN ? " (an administrator's session)" :
							 h[i].kind == HK_SYSTEM ? " (a background process)" : "");
	}
	return buf.data;
}

pg_noreturn static void
held_up(AmOp op, const char *agent_id, const char *detail, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
			 errmsg("lm_%s() of agent \"%s\" was held up longer than agentmesh_lifecycle.revocation_wait",
					am_transition(op)->name, agent_id),
			 errdetail_internal("%s", detail),
			 errhint("%s", hint)));
}

/*
 * Before lifecycle.c locks the agent row for op: when op revokes (revoke
 * credentials, suspend, decommission) and the session user is an
 * administrator, lock the row within agentmesh_lifecycle.revocation_wait,
 * terminating non-administrator sessions that hold it past that bound.
 * Call inside am_connect().  Does nothing for any other op or caller.
 */
void
am_revocation_lock(AmOp op, const char *agent_id)
{
	Datum		arg;
	int			terminated[MAX_HOLDERS];	/* signalled already */
	int			nterminated = 0;
	TimestampTz give_up;
	Oid			owner;
	bool		last_try = false;
	AmCaller	caller;

	if (op != AM_OP_REVOKE && op != AM_OP_SUSPEND && op != AM_OP_DECOMMISSION)
		return;
	am_caller(&caller);
	if (!caller.admin)
		return;

	arg = CStringGetTextDatum(agent_id);
	if (try_lock(arg, am_revocation_wait))
		return;

	/* the bound has passed: the holders' exit gets one bound more */
	give_up = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), am_revocation_wait);
	owner = am_extension_owner();
	for (;;)
	{
		Holder		now[MAX_HOLDERS];
		int			n;
		int			i;
		long		left;

		CHECK_FOR_INTERRUPTS();
		n = row_holders(agent_id, now);
		for (i = 0; i < n; i++)
			if (now[i].admin)
				held_up(op, agent_id,
						psprintf(_("The agent's row is held by %s, which is never terminated."),
								 pid_list(now, n, true)),
						_("End that transaction (a prepared one with ROLLBACK PREPARED or COMMIT PREPARED, see pg_prepared_xacts), or terminate its session with pg_terminate_backend(), and retry."));
		if (n > 0 && !superuser_arg(owner) &&
			!has_privs_of_role(owner, ROLE_PG_SIGNAL_BACKEND))
			held_up(op, agent_id,
					psprintf(_("The agent's row is held by %s."), pid_list(now, n, false)),
					psprintf(_("The extension owner, %s, may not terminate sessions: make it a member of pg_signal_backend, or end that transaction and retry."),
							 GetUserNameFromId(owner, false)));
		for (i = 0; i < n; i++)
		{
			Datum		pid = Int32GetDatum(now[i].pid);
			int			j;

			for (j = 0; j < nterminated; j++)
				if (terminated[j] == now[i].pid)
					break;
			if (j < nterminated)
				continue;
			/* the server log says who was terminated, and why */
			ereport(LOG,
					(errmsg("terminating process %d, which held agent %s past agentmesh_lifecycle.revocation_wait (%d ms) of %s",
							now[i].pid, am_log_quote(agent_id), am_revocation_wait,
							am_transition(op)->name)));
			am_exec(&terminate_plan, &pid, NULL, false, 1);
			SPI_freetuptable(SPI_tuptable);
			if (nterminated < MAX_HOLDERS)
				terminated[nterminated++] = now[i].pid;
		}

		left = (long) ((give_up - GetCurrentTimestamp()) / 1000);
		/* nobody holds it at the end: one last try, not an error */
		if (left <= 0 && n == 0 && !last_try)
		{
			last_try = true;
			left = EXIT_POLL_MS;
		}
		if (left <= 0)
			held_up(op, agent_id,
					psprintf(_("The agent's row was still held %d ms after its holders were terminated%s%s."),
							 am_revocation_wait, n > 0 ? ", by " : "",
							 n > 0 ? pid_list(now, n, false) : ""),
					_("Retry the operation."));
		if (try_lock(arg, (int) Min(left, EXIT_POLL_MS)))
			return;
	}
}

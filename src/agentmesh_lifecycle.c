/*-------------------------------------------------------------------------
 *
 * agentmesh_lifecycle.c
 *		Module load: GUCs, transaction callbacks, worker registration.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "agentmesh.h"

PG_MODULE_MAGIC;

/* GUCs (docs/worker.md, "Settings") */
int			am_naptime = 60;
bool		am_enabled = true;
int			am_batch_size = 1000;
char	   *am_databases = NULL;
bool		am_allow_drop = false;
int			am_revocation_wait = 5000;

void		_PG_init(void);

void
_PG_init(void)
{
	am_register_xact_callbacks();
	am_events_init();
	am_policy_cache_init();

	DefineCustomIntVariable("agentmesh_lifecycle.naptime",
							"Seconds between two maintenance passes of each database.",
							NULL, &am_naptime, 60, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomBoolVariable("agentmesh_lifecycle.enabled",
							 "Whether the maintenance workers run passes.",
							 NULL, &am_enabled, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("agentmesh_lifecycle.batch_size",
							"Agents handled per transaction by a maintenance pass.",
							NULL, &am_batch_size, 1000, 1, 1000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("agentmesh_lifecycle.databases",
							   "Comma-separated databases the workers may serve; empty means every database with the extension.",
							   NULL, &am_databases, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	/*
	 * PGC_SUSET: a value set before the library was loaded (a placeholder)
	 * is kept at load only if a superuser set it, so SET before the first
	 * call of the extension works for a superuser and for no one else.
	 */
	DefineCustomBoolVariable("agentmesh_lifecycle.allow_drop",
							 "Allows dropping the extension, or schema agentmesh, while audit rows exist.",
							 "Only for the session that sets it; take a pg_dump first.",
							 &am_allow_drop, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	/*
	 * PGC_USERSET: it bounds only the calling session's own revocations,
	 * and only an administrator's revocation terminates anyone, so a
	 * non-administrator gains nothing by setting it; administrators (not
	 * superusers) can set it per session, and a superuser per role,
	 * database or server.  Lowering it is what terminates holders sooner.
	 */
	DefineCustomIntVariable("agentmesh_lifecycle.revocation_wait",
							"Longest wait of an administrator's revoke, suspend or decommission for a session holding the agent's row.",
							"Past it, holders that are not administrators' sessions are terminated.",
							&am_revocation_wait, 5000, 1, 3600000,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	MarkGUCPrefixReserved("agentmesh_lifecycle");

	/*
	 * The launcher, its shared memory and hooks exist only when preloaded
	 * (not in pg_upgrade's server); otherwise the SQL API, including
	 * lm_run_maintenance(), works without them.
	 */
	if (process_shared_preload_libraries_in_progress && !IsBinaryUpgrade)
	{
		am_worker_init();
		am_last_used_init();	/* issue 12: the queue of credential uses */
	}
}

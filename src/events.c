/*-------------------------------------------------------------------------
 *
 * events.c
 *		The NOTIFY hint sent when a transaction that wrote audit events
 *		commits.
 *
 * Every audit event queues NOTIFY agentmesh_events with an empty payload.
 * PostgreSQL delivers notifications only at commit (none for a rollback)
 * and folds identical ones of a transaction into one, so a listener gets at
 * most one notification per transaction, whatever it changed, and the
 * payload carries nothing (no id, name, owner or token): it is a wake-up
 * hint.  What changed is read with agentmesh.lm_events(), whose cursor is
 * durable; the delivery semantics are in docs/integrations.md.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/async.h"
#include "utils/guc.h"

#include "agentmesh.h"

bool		am_notify = true;

void
am_events_init(void)
{
	DefineCustomBoolVariable("agentmesh_lifecycle.notify",
							 "Sends NOTIFY agentmesh_events when a transaction that wrote audit events commits.",
							 "A hint for listeners; agentmesh.lm_events() is the durable feed.",
							 &am_notify, true, PGC_SUSET, 0, NULL, NULL, NULL);
}

/* Called for every audit event written; the hint goes out at commit. */
void
am_notify_event(void)
{
	if (am_notify)
		Async_Notify(AM_EVENTS_CHANNEL, "");
}

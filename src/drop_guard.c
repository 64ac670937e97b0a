/*-------------------------------------------------------------------------
 *
 * drop_guard.c
 *		The event trigger that refuses DROP EXTENSION agentmesh_lifecycle
 *		and DROP SCHEMA agentmesh while the audit trail holds events.
 *
 * Dropping the extension deletes its tables, and with them the whole audit
 * trail, in one statement that no row trigger sees.  The trigger fires at
 * ddl_command_start, before anything is dropped, and refuses unless the
 * superuser-only setting agentmesh_lifecycle.allow_drop is on in the
 * session.  Event triggers fire without shared_preload_libraries: calling
 * this function loads the library, which defines the setting and takes over
 * a value a superuser set before the load.  DROP DATABASE fires no event
 * trigger and is not affected.
 *
 * It uses only spi_util.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/event_trigger.h"
#include "nodes/parsenodes.h"
#include "nodes/value.h"

#include "agentmesh.h"

#define AM_EXTENSION_NAME	"agentmesh_lifecycle"

static AmPlan any_event_plan = {
	"SELECT 1 FROM agentmesh.audit_events LIMIT 1", 0, {InvalidOid}
};

/* Does the DROP statement name our extension (or our schema)? */
static bool
drop_names_us(DropStmt *stmt)
{
	const char *ours;
	ListCell   *lc;

	if (stmt->removeType == OBJECT_EXTENSION)
		ours = AM_EXTENSION_NAME;
	else if (stmt->removeType == OBJECT_SCHEMA)
		ours = AM_SCHEMA;
	else
		return false;
	foreach(lc, stmt->objects)
	{
		Node	   *obj = (Node *) lfirst(lc);

		if (IsA(obj, String) && strcmp(strVal(obj), ours) == 0)
			return true;
	}
	return false;
}

PG_FUNCTION_INFO_V1(agentmesh_drop_guard);
Datum
agentmesh_drop_guard(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	DropStmt   *stmt;
	AmPriv		priv;
	bool		has_events;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "drop_guard must be called as an event trigger");
	trigdata = (EventTriggerData *) fcinfo->context;
	if (!IsA(trigdata->parsetree, DropStmt))
		PG_RETURN_VOID();
	stmt = (DropStmt *) trigdata->parsetree;
	if (!drop_names_us(stmt) || am_allow_drop)
		PG_RETURN_VOID();

	/* read as the extension owner: the dropping role may lack SELECT */
	am_connect(&priv);
	am_exec(&any_event_plan, NULL, NULL, true, 1);
	has_events = SPI_processed > 0;
	am_finish(&priv);
	if (!has_events)
		PG_RETURN_VOID();

	if (stmt->removeType == OBJECT_EXTENSION)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"%s\" cannot be dropped while its audit trail holds events",
						AM_EXTENSION_NAME),
				 errdetail("Dropping it would delete every audit event and seal, with the agents, credentials and policies."),
				 errhint("Take a pg_dump of the database first; then a superuser can run SET agentmesh_lifecycle.allow_drop = on and drop it in that session.")));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("schema \"%s\" cannot be dropped while the audit trail holds events",
					AM_SCHEMA),
			 errdetail("Dropping it would delete every audit event and seal, with the agents, credentials and policies."),
			 errhint("Take a pg_dump of the database first; then a superuser can run SET agentmesh_lifecycle.allow_drop = on and drop it in that session.")));
	PG_RETURN_VOID();
}

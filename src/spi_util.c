/*-------------------------------------------------------------------------
 *
 * spi_util.c
 *		How every module talks to the extension's tables: SPI under the
 *		extension owner's identity and a fixed search_path, with plans
 *		prepared once per backend.
 *
 * The lm_* functions are SECURITY INVOKER: EXECUTE on them is the
 * authorization, and roles hold no write privilege on the tables.  Table
 * access is done as the owner of schema agentmesh (the role that created the
 * extension), switched with SECURITY_LOCAL_USERID_CHANGE as pg_cron does;
 * session_user, which the audit rows record, is unaffected.
 *
 * Queries run with search_path = pg_catalog only, so that objects a caller
 * placed ahead of pg_catalog (a hostile "=" operator, say) are never used.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "miscadmin.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "agentmesh.h"

Oid
am_extension_owner(void)
{
	Oid			nsp = get_namespace_oid(AM_SCHEMA, true);
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"%s\" does not exist", AM_SCHEMA),
				 errhint("Run CREATE EXTENSION agentmesh_lifecycle in this database.")));
	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

/* The relation of that name in schema agentmesh (nsp). */
Oid
am_relid(Oid nsp, const char *relname)
{
	Oid			relid = get_relname_relid(relname, nsp);

	if (!OidIsValid(relid))
		elog(ERROR, "relation %s.%s does not exist", AM_SCHEMA, relname);
	return relid;
}

/*
 * Connect to SPI as the extension owner.  An error before am_finish() needs
 * no cleanup here: transaction abort restores the user id and pops the
 * search path.
 */
void
am_connect(AmPriv *priv)
{
	Oid			owner = am_extension_owner();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	GetUserIdAndSecContext(&priv->saved_uid, &priv->saved_secctx);
	SetUserIdAndSecContext(owner, priv->saved_secctx | SECURITY_LOCAL_USERID_CHANGE);
	priv->search_path_level = am_push_catalog_search_path();
}

void
am_finish(AmPriv *priv)
{
	am_pop_catalog_search_path(priv->search_path_level);
	SetUserIdAndSecContext(priv->saved_uid, priv->saved_secctx);
	SPI_finish();
}

/*
 * Prepare a statement once and keep its plan for the life of the backend;
 * the plan cache re-plans it when the tables change, including after
 * DROP/CREATE EXTENSION.
 */
SPIPlanPtr
am_prepare(AmPlan *p)
{
	if (p->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(p->sql, p->nargs, p->argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", p->sql,
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		p->plan = plan;
	}
	return p->plan;
}

/* Execute a kept statement. */
int
am_exec(AmPlan *p, const Datum *values, const bool *isnull, bool read_only, long count)
{
	char		nulls[16];
	int			i;
	int			rc;

	for (i = 0; i < p->nargs; i++)
		nulls[i] = (isnull && isnull[i]) ? 'n' : ' ';
	rc = SPI_execute_plan(am_prepare(p), (Datum *) values, nulls, read_only, count);
	if (rc < 0)
		elog(ERROR, "SPI_execute_plan failed for \"%s\": %s", p->sql,
			 SPI_result_code_string(rc));
	return rc;
}

/*
 * Put the composite in column 1 of every row of the last SPI result into a
 * materialized SRF's tuplestore (lm_list_*, lm_audit_trail).
 */
void
am_put_composite_rows(ReturnSetInfo *rsinfo)
{
	uint64		i;

	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		HeapTupleHeader td;
		HeapTupleData tup;

		td = DatumGetHeapTupleHeader(SPI_getbinval(SPI_tuptable->vals[i],
												   SPI_tuptable->tupdesc, 1, &isnull));
		tup.t_len = HeapTupleHeaderGetDatumLength(td);
		ItemPointerSetInvalid(&tup.t_self);
		tup.t_tableOid = InvalidOid;
		tup.t_data = td;
		tuplestore_puttuple(rsinfo->setResult, &tup);
	}
}

/* A bytea holding len bytes (hashes). */
bytea *
am_bytea(const uint8 *data, int len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), data, len);
	return b;
}

/* OID of a type in schema agentmesh. */
Oid
am_type_oid(const char *typname)
{
	Oid			nsp = get_namespace_oid(AM_SCHEMA, false);
	Oid			typid;

	typid = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
							CStringGetDatum(typname), ObjectIdGetDatum(nsp));
	if (!OidIsValid(typid))
		elog(ERROR, "type %s.%s does not exist", AM_SCHEMA, typname);
	return typid;
}

Datum
am_text_datum(const char *s)
{
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/* Column accessors for row 0 of the last SPI result (1-based columns). */
Datum
am_getcol(int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, isnull);
}

/* Text value of a column, palloc'd in the caller's (upper) context; NULL if null. */
char *
am_getcol_text(int col)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);
	char	   *copy;

	if (v == NULL)
		return NULL;
	copy = SPI_palloc(strlen(v) + 1);
	strcpy(copy, v);
	return copy;
}

/*
 * A transaction that ran a writing lm_* function must not be prepared
 * (PREPARE TRANSACTION): a prepared transaction keeps its agent-row locks
 * with no session behind it, which no revocation can terminate
 * (revocation.c), so any login could hold up a revocation for ever.  The
 * flag is set by am_require_writable(), which every writing function calls
 * first, and cleared at the end of every transaction.
 */
static bool prepare_guard_registered = false;
static bool xact_changed_agents = false;

static void
refuse_prepare(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (xact_changed_agents)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that called a writing agentmesh function"),
						 errdetail("A prepared transaction would hold agent rows beyond the reach of revocation."),
						 errhint("Commit or roll back the transaction instead.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			xact_changed_agents = false;
			break;
		default:
			break;
	}
}

/*
 * Writes are refused with 25006 on a hot standby and in a read-only
 * transaction, before any work is done.  The heartbeat updates its row
 * without the executor, which would otherwise make this check for it.
 */
void
am_require_writable(const char *funcname)
{
	if (!prepare_guard_registered)
	{
		RegisterXactCallback(refuse_prepare, NULL);
		prepare_guard_registered = true;
	}
	xact_changed_agents = true;
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot execute %s on a standby server", funcname),
				 errdetail("This server is a hot standby; lifecycle changes are made on the primary."),
				 errhint("Connect to the primary to change agents; reads such as lm_get() and lm_verify_credential() work here.")));
	if (XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot execute %s in a read-only transaction", funcname)));
}

/*
 * Is the database on the 1.1 schema?  The library also serves a database
 * still on 1.0, from the moment the new version is installed until ALTER
 * EXTENSION ... UPDATE: no teams, no hand-overs, no last_used_at, no audit
 * tree there, and the 1.1 objects are not used.  agents.team is the last
 * of them the update script adds (two syscache lookups).
 */
bool
am_schema_is_1_1(void)
{
	Oid			nsp = get_namespace_oid(AM_SCHEMA, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid("agents", nsp) : InvalidOid;

	return OidIsValid(relid) && get_attnum(relid, "team") != InvalidAttrNumber;
}

/* Attribute number of a column by name; the column must exist. */
int
am_attnum(TupleDesc desc, const char *name)
{
	int			n = SPI_fnumber(desc, name);

	if (n <= 0)
		elog(ERROR, "column \"%s\" is missing from the table", name);
	return n;
}

/* A column of a tuple by name. */
Datum
am_col(HeapTuple tup, TupleDesc desc, const char *name, bool *isnull)
{
	return heap_getattr(tup, am_attnum(desc, name), desc, isnull);
}

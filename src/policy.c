/*-------------------------------------------------------------------------
 *
 * policy.c
 *		Reading lifecycle policies, through a per-backend cache, and
 *		validating their settings.
 *
 * Policies change rarely and are read on every heartbeat, so each backend
 * keeps the ones it has read.  The policies trigger (audit.c) sends a
 * relcache invalidation for agentmesh.policies with every change; it
 * reaches every backend at commit (and this one at once, and again if the
 * change is rolled back), and the callback here forgets the whole cache.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "access/htup_details.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "agentmesh.h"

typedef struct PolicyEntry
{
	char		name[NAMEDATALEN * 2];	/* hash key; names are at most 63 bytes */
	AmPolicy	policy;
} PolicyEntry;

/*
 * The settings of a policy (the first AM_NUM_POLICY_SETTINGS: all
 * required), then who may use it and approve under it (NULL allowed); the
 * trigger lists the changed ones.
 */
const char *const am_policy_columns[AM_NUM_POLICY_COLUMNS] = {
	"require_approval", "require_owner", "require_distinct_approver",
	"heartbeat_interval", "orphan_threshold", "max_inactive_days",
	"max_credential_ttl", "rotation_overlap", "auto_rotate",
	"revoke_on_decommission", "heartbeat_requires_token", "audit_heartbeats",
	"auto_decommission", "rotate_after",
	"allowed_roles", "approver_role"
};

static HTAB *policy_cache = NULL;

static AmPlan policy_plan = {
	"SELECT require_approval, require_owner, require_distinct_approver,"
	" revoke_on_decommission, heartbeat_requires_token, audit_heartbeats, auto_rotate,"
	" max_credential_ttl, rotation_overlap, heartbeat_interval"
	" FROM agentmesh.policies WHERE name = $1",
	1, {TEXTOID}
};

/* agentmesh.policies, whose invalidations empty the cache */
static Oid	policies_relid = InvalidOid;

/*
 * An invalidation of agentmesh.policies, or of every relation, empties the
 * cache.  (DROP EXTENSION invalidates the table too, so a re-created
 * extension starts with an empty cache and a new relid.)
 */
static void
policy_cache_callback(Datum arg, Oid relid)
{
	if (policy_cache == NULL)
		return;
	if (OidIsValid(relid) && relid != policies_relid)
		return;
	hash_destroy(policy_cache);
	policy_cache = NULL;
}

void
am_policy_cache_init(void)
{
	CacheRegisterRelcacheCallback(policy_cache_callback, (Datum) 0);
}

/* Tell every backend, at commit, that a policy changed. */
void
am_policy_changed(Oid policies_relid)
{
	CacheInvalidateRelcacheByRelid(policies_relid);
}

static bool
read_policy(const char *name, AmPolicy *pol)
{
	AmPriv		priv;
	Datum		arg = CStringGetTextDatum(name);
	bool		found;
	bool		isnull;

	am_connect(&priv);
	am_exec(&policy_plan, &arg, NULL, true, 1);
	found = SPI_processed == 1;
	if (found)
	{
		pol->require_approval = DatumGetBool(am_getcol(1, &isnull));
		pol->require_owner = DatumGetBool(am_getcol(2, &isnull));
		pol->require_distinct_approver = DatumGetBool(am_getcol(3, &isnull));
		pol->revoke_on_decommission = DatumGetBool(am_getcol(4, &isnull));
		pol->heartbeat_requires_token = DatumGetBool(am_getcol(5, &isnull));
		pol->audit_heartbeats = DatumGetBool(am_getcol(6, &isnull));
		pol->auto_rotate = DatumGetBool(am_getcol(7, &isnull));
		pol->max_credential_ttl = *DatumGetIntervalP(am_getcol(8, &isnull));
		pol->rotation_overlap = *DatumGetIntervalP(am_getcol(9, &isnull));
		pol->heartbeat_interval = *DatumGetIntervalP(am_getcol(10, &isnull));
	}
	am_finish(&priv);
	return found;
}

/* Load a policy; false when there is none of that name. */
bool
am_load_policy(const char *name, AmPolicy *pol)
{
	PolicyEntry *entry;
	bool		found;

	if (strlen(name) >= NAMEDATALEN * 2)
		return false;
	if (policy_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = NAMEDATALEN * 2;
		ctl.entrysize = sizeof(PolicyEntry);
		ctl.hcxt = CacheMemoryContext;
		policy_cache = hash_create("agentmesh policy cache", 16, &ctl,
								   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		policies_relid = get_relname_relid("policies",
										   get_namespace_oid(AM_SCHEMA, false));
	}
	entry = hash_search(policy_cache, name, HASH_FIND, NULL);
	if (entry)
	{
		*pol = entry->policy;
		return true;
	}
	/* a missing policy is not cached: it may be created in a moment */
	if (!read_policy(name, pol))
		return false;
	/* reading may have run the invalidation callback */
	if (policy_cache != NULL)
	{
		entry = hash_search(policy_cache, name, HASH_ENTER, &found);
		entry->policy = *pol;
	}
	return true;
}

static AmPlan access_plan = {
	"SELECT allowed_roles, approver_role FROM agentmesh.policies WHERE name = $1",
	1, {TEXTOID}
};

/*
 * Who may use a policy and approve under it; false when there is no such
 * policy.  Read from the table each time (requests and approvals are not
 * the hot path), into the caller's memory context.
 */
bool
am_load_policy_access(const char *name, AmPolicyAccess *acc)
{
	AmPriv		priv;
	Datum		arg = CStringGetTextDatum(name);
	bool		found;
	bool		isnull;
	Datum		d;

	memset(acc, 0, sizeof(*acc));
	if (!am_schema_is_1_1())
	{
		AmPolicy	pol;

		/* the 1.0 schema: no access columns, everyone as with NULL */
		return am_load_policy(name, &pol);
	}
	am_connect(&priv);
	am_exec(&access_plan, &arg, NULL, true, 1);
	found = SPI_processed == 1;
	if (found)
	{
		d = am_getcol(1, &isnull);
		acc->has_allowed_roles = !isnull;
		if (!isnull)
			acc->allowed_roles = SPI_datumTransfer(d, false, -1);
		acc->approver_role = am_getcol_text(2);
	}
	am_finish(&priv);
	return found;
}

/* ----------------------------------------------------------------
 * Validation
 * ----------------------------------------------------------------
 */
static bool
interval_positive(Datum iv)
{
	Interval	zero;

	memset(&zero, 0, sizeof(zero));
	return DatumGetBool(DirectFunctionCall2(interval_gt, iv, IntervalPGetDatum(&zero)));
}

/*
 * A duration that means the same length of time on every date: no months
 * or years (which the interval comparisons count as 30 and 360 days, so that
 * '12 mons 6 days' passed a 366-day limit and issued 371-day credentials),
 * and days and time of one sign (so that '1 day -23 hours' is refused rather
 * than meaning one hour, or none across a daylight-saving change).
 */
static bool
interval_is_duration(Datum iv)
{
	Interval   *i = DatumGetIntervalP(iv);

	return i->month == 0 &&
		!((i->day > 0 && i->time < 0) || (i->day < 0 && i->time > 0));
}

/* A role named in a policy must exist; 42704, without echoing the name. */
static void
require_role(const char *role, const char *column, const char *name)
{
	if (!OidIsValid(get_role_oid(role, true)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("a role in %s of policy \"%s\" does not exist", column, name),
				 errhint("Create the role first; %s names existing roles.", column)));
}

/*
 * allowed_roles: NULL (see am_check_policy_use) or a one-dimensional array
 * of existing roles without NULLs; empty means admins only.
 * approver_role: NULL or an existing role.  22023 for a malformed array.
 */
static void
validate_policy_roles(HeapTuple tup, TupleDesc desc, const char *name)
{
	bool		isnull;
	Datum		d;

	/* the 1.0 schema has neither */
	if (SPI_fnumber(desc, "allowed_roles") <= 0)
		return;
	d = am_col(tup, desc, "allowed_roles", &isnull);

	if (!isnull)
	{
		ArrayType  *arr = DatumGetArrayTypeP(d);
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;

		if (ARR_NDIM(arr) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for allowed_roles in policy \"%s\"", name),
					 errdetail("The value must be a one-dimensional array of role names.")));
		deconstruct_array(arr, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR,
						  &elems, &nulls, &n);
		for (i = 0; i < n; i++)
		{
			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for allowed_roles in policy \"%s\"", name),
						 errdetail("The value must not contain NULL.")));
			require_role(NameStr(*DatumGetName(elems[i])), "allowed_roles", name);
		}
	}
	d = am_col(tup, desc, "approver_role", &isnull);
	if (!isnull)
		require_role(NameStr(*DatumGetName(d)), "approver_role", name);
}

static const char *const duration_columns[] = {
	"heartbeat_interval", "orphan_threshold", "max_credential_ttl", "rotation_overlap"
};

/*
 * Reject nonsense with 22023 (and a missing setting with 22004) before the
 * CHECK constraints, which remain as a backstop, would report it as a bare
 * 23514.  Called by the policies trigger on every INSERT and UPDATE.
 */
void
am_validate_policy(HeapTuple tup, TupleDesc desc, const char *name)
{
	bool		isnull;
	Datum		ttl;
	Datum		overlap;
	Interval	limit;
	int32		days;
	const char *bad = NULL;
	const char *why = NULL;
	int			i;

	/* every setting is required; say so before comparing anything */
	for (i = 0; i < AM_NUM_POLICY_SETTINGS; i++)
	{
		/* a 1.0 table, before ALTER EXTENSION UPDATE, lacks the 1.1 settings */
		if (SPI_fnumber(desc, am_policy_columns[i]) <= 0)
			continue;
		(void) am_col(tup, desc, am_policy_columns[i], &isnull);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s of policy \"%s\" must not be null", am_policy_columns[i], name)));
	}
	ttl = am_col(tup, desc, "max_credential_ttl", &isnull);
	overlap = am_col(tup, desc, "rotation_overlap", &isnull);

	if ((strlen(name) == 0 || strlen(name) > 63 ||
					strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_.-") != strlen(name) ||
					!(name[0] >= 'a' && name[0] <= 'z')))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid policy name"),
				 errhint("Policy names are 1 to 63 characters: a lower-case letter, then lower-case letters, digits, \"_\", \".\" or \"-\".")));

	for (i = 0; i < lengthof(duration_columns) && bad == NULL; i++)
		if (!interval_is_duration(am_col(tup, desc, duration_columns[i], &isnull)))
			bad = duration_columns[i],
				why = "must be a plain duration: days, hours, minutes and seconds of one sign, no months or years";
	if (bad)
		;
	else if (!interval_positive(am_col(tup, desc, "heartbeat_interval", &isnull)))
		bad = "heartbeat_interval", why = "must be positive";
	else if (!interval_positive(am_col(tup, desc, "orphan_threshold", &isnull)))
		bad = "orphan_threshold", why = "must be positive";
	else if (!interval_positive(ttl))
		bad = "max_credential_ttl", why = "must be positive";
	else
	{
		memset(&limit, 0, sizeof(limit));
		limit.day = 366;
		if (DatumGetBool(DirectFunctionCall2(interval_gt, ttl, IntervalPGetDatum(&limit))))
			bad = "max_credential_ttl", why = "must not exceed 366 days";
		else if (interval_positive(DirectFunctionCall1(interval_um, overlap)))
			bad = "rotation_overlap", why = "must not be negative";
		else if (!DatumGetBool(DirectFunctionCall2(interval_lt, overlap, ttl)))
			bad = "rotation_overlap", why = "must be shorter than max_credential_ttl";
	}
	days = DatumGetInt32(am_col(tup, desc, "max_inactive_days", &isnull));
	if (bad == NULL && (days <= 0 || days > 36500))
		bad = "max_inactive_days", why = "must be between 1 and 36500";
	/* issue 12: a fraction of the lifetime; NaN fails both comparisons */
	if (bad == NULL && SPI_fnumber(desc, "rotate_after") > 0)
	{
		float8		ra = DatumGetFloat8(am_col(tup, desc, "rotate_after", &isnull));

		if (!(ra > 0.0 && ra <= 1.0))
			bad = "rotate_after", why = "must be a fraction of the credential lifetime, above 0 and at most 1";
	}
	if (bad)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for %s in policy \"%s\"", bad, name),
				 errdetail("The value %s.", why)));
	validate_policy_roles(tup, desc, name);
}

/*-------------------------------------------------------------------------
 *
 * compat.h
 *		Every difference between the PostgreSQL major versions the extension
 *		builds against (15, 16, 17, 18), in one place.
 *
 * The rest of the code is written against the names defined here and never
 * tests PG_VERSION_NUM itself.  Each block names the release that changed
 * the API.  15 and 18 are built and tested by the test command; the 16 and
 * 17 branches follow the same release notes and headers but are not built
 * here (Debian 12 has neither's server headers).
 *
 *-------------------------------------------------------------------------
 */
#ifndef AGENTMESH_COMPAT_H
#define AGENTMESH_COMPAT_H

#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_database.h"
#include "executor/executor.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/relcache.h"

#if PG_VERSION_NUM < 150000
#error "agentmesh_lifecycle needs PostgreSQL 15 or later"
#endif

/*
 * 18 replaced the pg_attribute_noreturn() suffix by a pg_noreturn prefix.
 * A GCC attribute may stand in front of a declaration too, so the older
 * macro serves as the prefix there.
 */
#if PG_VERSION_NUM < 180000
#define pg_noreturn pg_attribute_noreturn()
#endif

/*
 * 16 moved permission checking out of RangeTblEntry into RTEPermissionInfo
 * (and with it the updated columns that column-specific triggers read);
 * 18 added the unpruned relations to ExecInitRangeTable().  A one-relation
 * range table for an UPDATE of rel, as logical replication's apply worker
 * builds it.
 */
static inline void
am_init_update_range_table(EState *estate, Relation rel, LOCKMODE lockmode)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);

	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = lockmode;
#if PG_VERSION_NUM >= 160000
	{
		RTEPermissionInfo *perminfo = makeNode(RTEPermissionInfo);

		perminfo->relid = RelationGetRelid(rel);
		perminfo->requiredPerms = ACL_UPDATE;
		rte->perminfoindex = 1;
#if PG_VERSION_NUM >= 180000
		ExecInitRangeTable(estate, list_make1(rte), list_make1(perminfo),
						   bms_make_singleton(1));
#else
		ExecInitRangeTable(estate, list_make1(rte), list_make1(perminfo));
#endif
	}
#else
	ExecInitRangeTable(estate, list_make1(rte));
#endif
}

/* The columns an UPDATE through that range table declares to triggers. */
static inline void
am_set_updated_cols(EState *estate, Bitmapset *cols)
{
#if PG_VERSION_NUM >= 160000
	((RTEPermissionInfo *) linitial(estate->es_rteperminfos))->updatedCols = cols;
#else
	exec_rt_fetch(1, estate)->updatedCols = cols;
#endif
}

/* 16 added the result relations to EvalPlanQualInit(). */
static inline void
am_epq_init(EPQState *epq, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	EvalPlanQualInit(epq, estate, NULL, NIL, -1, NIL);
#else
	EvalPlanQualInit(epq, estate, NULL, NIL, -1);
#endif
}

/* 18 added deferrable_ok; our primary keys are never deferrable. */
static inline Oid
am_primary_key_index(Relation rel)
{
#if PG_VERSION_NUM >= 180000
	return RelationGetPrimaryKeyIndex(rel, false);
#else
	return RelationGetPrimaryKeyIndex(rel);
#endif
}

/* 16 folded the per-class owner checks into object_ownercheck(). */
static inline bool
am_database_ownercheck(Oid dboid, Oid roleid)
{
#if PG_VERSION_NUM >= 160000
	return object_ownercheck(DatabaseRelationId, dboid, roleid);
#else
	return pg_database_ownercheck(dboid, roleid);
#endif
}

/*
 * search_path = pg_catalog, pg_temp for the queries the extension runs, so
 * that nothing a caller put on its path (a hostile "=" operator, a table
 * shadowing ours) is ever used; pg_temp last, so that a temporary object
 * cannot shadow a catalog one.  17 removed the override search path stack;
 * there the setting is made in a GUC nest level of its own, as a function
 * with SET search_path does, which transaction and subtransaction abort
 * unwind too.  The returned level is passed back to the pop.
 */
static inline int
am_push_catalog_search_path(void)
{
#if PG_VERSION_NUM >= 170000
	int			level = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	return level;
#else
	static OverrideSearchPath catalog_only_path = {NIL, true, false, 0};

	PushOverrideSearchPath(&catalog_only_path);
	return 0;
#endif
}

static inline void
am_pop_catalog_search_path(int level)
{
#if PG_VERSION_NUM >= 170000
	AtEOXact_GUC(true, level);
#else
	PopOverrideSearchPath();
#endif
}

/*
 * pg_b64_encode() takes its input as const uint8 * from 18 on (const char *
 * before).  The checkpoint's root line (seals.c, issue 11).
 */
#include "common/base64.h"

static inline int
am_b64_encode(const uint8 *src, int len, char *dst, int dstlen)
{
#if PG_VERSION_NUM >= 180000
	return pg_b64_encode(src, len, dst, dstlen);
#else
	return pg_b64_encode((const char *) src, len, dst, dstlen);
#endif
}

#endif							/* AGENTMESH_COMPAT_H */

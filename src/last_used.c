/*-------------------------------------------------------------------------
 *
 * last_used.c
 *		The shared queue of credential uses that verifications record for
 *		the maintenance pass to write (docs/credentials.md#last-used).
 *
 * A verification outside a writing transaction must not write: that would
 * make a read-only call commit with a WAL flush, and with many credentials
 * each verified about once a minute nearly every verification would pay
 * one.  It puts the use into this hash instead (one entry per credential,
 * the latest time kept), and the next maintenance pass of its database
 * drains the entries and writes them in its own transaction.  Only when the
 * library is preloaded; without shared memory the caller writes directly.
 * When the hash is full a use is dropped: the next use after the pass
 * records it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"

#include "agentmesh.h"

#define AM_USE_SLOTS	16384

typedef struct AmUseKey
{
	Oid			dbid;
	char		credential_id[AM_USE_ID_LEN];
} AmUseKey;

typedef struct AmUseEntry
{
	AmUseKey	key;
	AmUse		use;
} AmUseEntry;

static LWLock *use_lock = NULL;
static HTAB *use_hash = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
use_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(hash_estimate_size(AM_USE_SLOTS, sizeof(AmUseEntry)));
	RequestNamedLWLockTranche("agentmesh_lifecycle last used", 1);
}

static void
use_shmem_startup(void)
{
	HASHCTL		ctl;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(AmUseKey);
	ctl.entrysize = sizeof(AmUseEntry);
	use_hash = ShmemInitHash("agentmesh_lifecycle last used", AM_USE_SLOTS, AM_USE_SLOTS,
							 &ctl, HASH_ELEM | HASH_BLOBS);
	use_lock = &(GetNamedLWLockTranche("agentmesh_lifecycle last used"))->lock;
	LWLockRelease(AddinShmemInitLock);
}

/* From _PG_init, only when preloaded. */
void
am_last_used_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = use_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = use_shmem_startup;
}

/*
 * Queue a use for this database's next pass; false when there is no queue
 * (not preloaded), so that the caller writes it itself.  A full queue drops
 * the use and still returns true.
 */
bool
am_queue_use(const AmUse *use)
{
	AmUseKey	key;
	AmUseEntry *e;
	bool		found;

	if (use_hash == NULL || strlen(use->credential_id) >= AM_USE_ID_LEN ||
		strlen(use->agent_id) >= AM_USE_ID_LEN)
		return use_hash != NULL;
	/*
	 * A full queue drops the use without taking the lock at all (the next
	 * use after the pass records it): with more stale credentials than
	 * slots, as in a large fleet between passes, every verification would
	 * otherwise queue up on the one lock.  The entry count is read unlocked,
	 * as a hint; a use dropped or queued on a stale count is harmless.
	 */
	if (hash_get_num_entries(use_hash) >= AM_USE_SLOTS)
		return true;
	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	strlcpy(key.credential_id, use->credential_id, AM_USE_ID_LEN);
	/* already queued by another backend: a shared lock suffices to see it */
	LWLockAcquire(use_lock, LW_SHARED);
	e = hash_search(use_hash, &key, HASH_FIND, &found);
	found = e != NULL && e->use.first >= use->first &&
		use->at - e->use.at < AM_LAST_USED_INTERVAL_SECS * USECS_PER_SEC;
	LWLockRelease(use_lock);
	if (found)
		return true;

	LWLockAcquire(use_lock, LW_EXCLUSIVE);
	/*
	 * A shared hash takes more entries than it was sized for while the
	 * server has spare shared memory; the queue stays at its size.
	 */
	if (hash_get_num_entries(use_hash) >= AM_USE_SLOTS)
		e = hash_search(use_hash, &key, HASH_FIND, &found);
	else
		e = hash_search(use_hash, &key, HASH_ENTER_NULL, &found);
	if (e != NULL)
	{
		if (!found)
			e->use = *use;
		else
		{
			if (use->at > e->use.at)
				e->use.at = use->at;
			e->use.first = e->use.first || use->first;
		}
	}
	LWLockRelease(use_lock);
	return true;
}

/*
 * Take this database's queued uses: a palloc'd array of *n entries, removed
 * from the queue.
 */
AmUse *
am_take_uses(int *n)
{
	HASH_SEQ_STATUS seq;
	AmUseEntry *e;
	AmUse	   *out;
	int			cnt = 0;

	*n = 0;
	if (use_hash == NULL)
		return NULL;
	out = palloc(sizeof(AmUse) * AM_USE_SLOTS);
	LWLockAcquire(use_lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, use_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (e->key.dbid != MyDatabaseId)
			continue;
		if (cnt >= AM_USE_SLOTS)
		{
			hash_seq_term(&seq);
			break;
		}
		out[cnt++] = e->use;
		/* removing the element just returned is allowed during a scan */
		hash_search(use_hash, &e->key, HASH_REMOVE, NULL);
	}
	LWLockRelease(use_lock);
	*n = cnt;
	return out;
}

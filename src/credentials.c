/*-------------------------------------------------------------------------
 *
 * credentials.c
 *		Token generation, hashing, verification, issue, rotation and
 *		revocation.
 *
 * A token is "amk_" + 64 hex digits (256 bits from pg_strong_random) + 8 hex
 * digits of CRC-32C over what precedes them.  The prefix makes leaked tokens
 * recognisable to secret scanners; the checksum lets malformed tokens be
 * turned away without touching a table.  Only SHA-256(token) is stored.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "funcapi.h"
#include "port/pg_crc32c.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "agentmesh.h"

#define TOKEN_PREFIX		AM_TOKEN_PREFIX
#define TOKEN_PREFIX_LEN	4
#define TOKEN_RANDOM_BYTES	32
#define TOKEN_BODY_LEN		(TOKEN_RANDOM_BYTES * 2)
#define TOKEN_LEN			(TOKEN_PREFIX_LEN + TOKEN_BODY_LEN + 8)
#define CRED_ID_BYTES		16

StaticAssertDecl(TOKEN_LEN == AM_TOKEN_LEN, "AM_TOKEN_LEN must match the token format");

static const char hexdigits[] = "0123456789abcdef";

static void
to_hex(const uint8 *in, int len, char *out)
{
	int			i;

	for (i = 0; i < len; i++)
	{
		out[2 * i] = hexdigits[in[i] >> 4];
		out[2 * i + 1] = hexdigits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

/* prefix + hex of n random bytes, palloc'd */
char *
am_random_id(const char *prefix, int nbytes)
{
	uint8		rnd[64];
	size_t		plen = strlen(prefix);
	char	   *id = palloc(plen + 2 * nbytes + 1);

	Assert(nbytes <= (int) sizeof(rnd));
	if (!pg_strong_random(rnd, nbytes))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes")));
	memcpy(id, prefix, plen);
	to_hex(rnd, nbytes, id + plen);
	return id;
}

static pg_crc32c
token_crc(const char *token)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, token, TOKEN_PREFIX_LEN + TOKEN_BODY_LEN);
	FIN_CRC32C(crc);
	return crc;
}

static char *
new_token(void)
{
	char	   *tok = am_random_id(TOKEN_PREFIX, TOKEN_RANDOM_BYTES);
	char	   *full = palloc(TOKEN_LEN + 1);

	memcpy(full, tok, TOKEN_PREFIX_LEN + TOKEN_BODY_LEN);
	snprintf(full + TOKEN_PREFIX_LEN + TOKEN_BODY_LEN, 9, "%08x", token_crc(tok));
	/* the random part is a secret: do not leave a copy in freed memory */
	explicit_bzero(tok, TOKEN_PREFIX_LEN + TOKEN_BODY_LEN);
	pfree(tok);
	return full;
}

static void
sha256(const char *data, size_t len, uint8 *out)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_cryptohash_final(ctx, out, PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "could not compute SHA-256: %s", pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
}

/*
 * SHA-256 of a well-formed token; false (and nothing computed) for anything
 * that is not one.  Never reports the token.
 */
bool
am_token_hash(const char *token, uint8 *hash_out)
{
	char		crc[9];
	int			i;

	if (token == NULL || strlen(token) != TOKEN_LEN ||
		memcmp(token, TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0)
		return false;
	for (i = TOKEN_PREFIX_LEN; i < TOKEN_LEN; i++)
		if (!((token[i] >= '0' && token[i] <= '9') || (token[i] >= 'a' && token[i] <= 'f')))
			return false;
	snprintf(crc, sizeof(crc), "%08x", token_crc(token));
	if (memcmp(crc, token + TOKEN_PREFIX_LEN + TOKEN_BODY_LEN, 8) != 0)
		return false;
	sha256(token, TOKEN_LEN, hash_out);
	return true;
}

/*
 * The previous credential stays valid for the overlap; any older one still in
 * its overlap ends now, so that at most two credentials of an agent verify.
 * With $4 (a rotation that hands a sealed successor over, see below) the
 * previous one keeps its expiry instead, until its successor is first used
 * (am_track_use() then ends it at the overlap).  A credential never ends
 * before it was issued: a rotation whose transaction started before a
 * concurrent one that it waited for, or a maintenance pass run with a future
 * as_of, must not produce an inverted lifetime.
 */
static AmPlan supersede_plan = {
	"UPDATE agentmesh.credentials"
	"   SET expires_at = GREATEST(issued_at, CASE WHEN superseded_at IS NULL"
	"                         THEN CASE WHEN $4 THEN expires_at ELSE LEAST(expires_at, $2 + $3) END"
	"                         ELSE LEAST(expires_at, $2) END),"
	"       superseded_at = COALESCE(superseded_at, $2)"
	" WHERE agent_id = $1 AND revoked_at IS NULL AND expires_at > $2",
	4, {TEXTOID, TIMESTAMPTZOID, INTERVALOID, BOOLOID}
};
static AmPlan insert_cred_plan = {
	"INSERT INTO agentmesh.credentials (credential_id, agent_id, token_hash, issued_at, expires_at)"
	" VALUES ($1, $2, $3, $4, $4 + $5) RETURNING expires_at",
	5, {TEXTOID, TEXTOID, BYTEAOID, TIMESTAMPTZOID, INTERVALOID}
};

/* ----------------------------------------------------------------
 * Sealed hand-overs (docs/credentials.md#hand-over)
 *
 * The pass that rotates a credential never holds a token, and the database
 * keeps only hashes, so a token sealed at rotation time could only be
 * sealed under something the database knows.  Instead, every token that
 * exists in memory (at issue, and when a claim opens one) gets its
 * successor generated at once and sealed under it (handover.c); the pass
 * later promotes that reserved successor to a credential, using only its
 * stored hash.
 * ----------------------------------------------------------------
 */
static AmPlan drop_handovers_plan = {
	"DELETE FROM agentmesh.credential_handovers WHERE agent_id = $1 AND predecessor_id <> $2",
	2, {TEXTOID, TEXTOID}
};
static AmPlan reserve_plan = {
	"INSERT INTO agentmesh.credential_handovers"
	" (predecessor_id, agent_id, successor_id, successor_hash, sealed, created_at)"
	" VALUES ($1, $2, $3, $4, $5, $6)",
	6, {TEXTOID, TEXTOID, TEXTOID, BYTEAOID, BYTEAOID, TIMESTAMPTZOID}
};
/* the reserved successor of the agent's current, live credential */
static AmPlan reserved_plan = {
	"SELECT h.predecessor_id, h.successor_id, h.successor_hash"
	"  FROM agentmesh.agents a"
	"  JOIN agentmesh.credentials c ON c.credential_id = a.credential_id AND c.agent_id = a.agent_id"
	"  JOIN agentmesh.credential_handovers h ON h.predecessor_id = c.credential_id"
	" WHERE a.agent_id = $1 AND h.agent_id = $1 AND h.promoted_at IS NULL"
	"   AND c.revoked_at IS NULL AND c.expires_at > $2",
	2, {TEXTOID, TIMESTAMPTZOID}
};
static AmPlan promote_plan = {
	"UPDATE agentmesh.credential_handovers SET promoted_at = $2 WHERE predecessor_id = $1",
	2, {TEXTOID, TIMESTAMPTZOID}
};

/* set by the maintenance pass around a rotation: promote instead of issuing */
static bool handover_rotation = false;

void
am_set_handover_rotation(bool on)
{
	handover_rotation = on;
}

/*
 * Generate the successor of credential cred_id, whose token is in memory,
 * and store it sealed under that token (inside am_connect).
 */
static void
reserve_successor(const char *agent_id, const char *cred_id, const char *token, TimestampTz now)
{
	char	   *succ_id = am_random_id("cred:", CRED_ID_BYTES);
	char	   *succ = new_token();
	uint8		h[PG_SHA256_DIGEST_LENGTH];
	uint8		sealed[AM_HANDOVER_SEALED_LEN];
	Datum		v[6];

	sha256(succ, TOKEN_LEN, h);
	am_handover_seal(token, agent_id, cred_id, succ_id, succ, sealed);
	explicit_bzero(succ, TOKEN_LEN);
	v[0] = CStringGetTextDatum(cred_id);
	v[1] = CStringGetTextDatum(agent_id);
	v[2] = CStringGetTextDatum(succ_id);
	v[3] = PointerGetDatum(am_bytea(h, PG_SHA256_DIGEST_LENGTH));
	v[4] = PointerGetDatum(am_bytea(sealed, AM_HANDOVER_SEALED_LEN));
	v[5] = TimestampTzGetDatum(now);
	am_exec(&reserve_plan, v, NULL, false, 0);
}

static void
insert_credential(const char *cred_id, Datum agent, const uint8 *hash, TimestampTz now,
				  Interval *ttl, AmGrant *grant)
{
	Datum		iv[5];
	bool		isnull;

	iv[0] = CStringGetTextDatum(cred_id);
	iv[1] = agent;
	iv[2] = PointerGetDatum(am_bytea(hash, PG_SHA256_DIGEST_LENGTH));
	iv[3] = TimestampTzGetDatum(now);
	iv[4] = IntervalPGetDatum(ttl);
	if (am_exec(&insert_cred_plan, iv, NULL, false, 0) != SPI_OK_INSERT_RETURNING ||
		SPI_processed != 1)
		elog(ERROR, "could not store credential");
	grant->issued_at = now;
	grant->expires_at = DatumGetTimestampTz(am_getcol(1, &isnull));
}

/*
 * The maintenance pass's rotation with a hand-over: promote the reserved
 * successor of the current credential.  False when there is none (the
 * current credential came from a pass, or from 1.0): then a plain rotation.
 */
static bool
promote_successor(const char *agent_id, Interval *ttl, Interval *overlap,
				  TimestampTz now, AmGrant *grant)
{
	Datum		v[4];
	char	   *pred;
	char	   *succ;
	uint8		hash[PG_SHA256_DIGEST_LENGTH];
	bytea	   *hb;
	bool		isnull;

	v[0] = CStringGetTextDatum(agent_id);
	v[1] = TimestampTzGetDatum(now);
	am_exec(&reserved_plan, v, NULL, false, 1);
	if (SPI_processed != 1)
		return false;
	pred = am_getcol_text(1);
	succ = am_getcol_text(2);
	hb = DatumGetByteaPP(am_getcol(3, &isnull));
	memcpy(hash, VARDATA_ANY(hb), PG_SHA256_DIGEST_LENGTH);

	v[2] = IntervalPGetDatum(overlap);
	v[3] = BoolGetDatum(true);
	am_exec(&supersede_plan, v, NULL, false, 0);
	v[1] = CStringGetTextDatum(pred);
	am_exec(&drop_handovers_plan, v, NULL, false, 0);

	grant->credential_id = SPI_palloc(strlen(succ) + 1);
	strcpy(grant->credential_id, succ);
	grant->token = NULL;		/* only the predecessor's holder can open it */
	insert_credential(succ, v[0], hash, now, ttl, grant);
	v[0] = CStringGetTextDatum(pred);
	v[1] = TimestampTzGetDatum(now);
	am_exec(&promote_plan, v, NULL, false, 0);
	return true;
}

/*
 * Issue a credential for an agent whose row the caller has locked.  Call
 * inside am_connect().  The token is returned in the grant and exists
 * nowhere else; its successor is reserved, sealed under it.  Inside a
 * hand-over rotation (am_set_handover_rotation) the reserved successor of
 * the current credential is promoted instead, when there is one, and
 * grant->token is NULL.
 */
void
am_issue_credential(const char *agent_id, Interval *ttl, Interval *overlap,
					TimestampTz now, AmGrant *grant)
{
	Datum		sv[4];
	uint8		h[PG_SHA256_DIGEST_LENGTH];
	char	   *id;
	char	   *token;
	bool		promote = handover_rotation;

	bool		v11 = am_schema_is_1_1();

	handover_rotation = false;
	if (promote && v11 && promote_successor(agent_id, ttl, overlap, now, grant))
		return;

	sv[0] = CStringGetTextDatum(agent_id);
	sv[1] = TimestampTzGetDatum(now);
	sv[2] = IntervalPGetDatum(overlap);
	sv[3] = BoolGetDatum(false);
	am_exec(&supersede_plan, sv, NULL, false, 0);

	/* the grant outlives SPI: copy it to the caller's context */
	id = am_random_id("cred:", CRED_ID_BYTES);
	token = new_token();
	grant->credential_id = SPI_palloc(strlen(id) + 1);
	strcpy(grant->credential_id, id);
	grant->token = SPI_palloc(TOKEN_LEN + 1);
	memcpy(grant->token, token, TOKEN_LEN + 1);
	explicit_bzero(token, TOKEN_LEN);

	/* an earlier reservation belongs to a superseded credential */
	sv[1] = CStringGetTextDatum(grant->credential_id);
	if (v11)
		am_exec(&drop_handovers_plan, sv, NULL, false, 0);

	sha256(grant->token, TOKEN_LEN, h);
	insert_credential(grant->credential_id, sv[0], h, now, ttl, grant);
	if (v11)
		reserve_successor(agent_id, grant->credential_id, grant->token, now);
}

static AmPlan revoke_plan = {
	"UPDATE agentmesh.credentials SET revoked_at = $2, revoke_reason = $3"
	" WHERE agent_id = $1 AND revoked_at IS NULL AND expires_at > $2",
	3, {TEXTOID, TIMESTAMPTZOID, TEXTOID}
};

/* Revoke every usable credential of a locked agent; returns how many. */
int
am_revoke_all_credentials(const char *agent_id, const char *reason, TimestampTz now)
{
	Datum		v[3];
	int			n;

	v[0] = CStringGetTextDatum(agent_id);
	v[1] = TimestampTzGetDatum(now);
	v[2] = CStringGetTextDatum(reason);
	am_exec(&revoke_plan, v, NULL, false, 0);
	n = (int) SPI_processed;
	/* no successor of a revoked credential may be claimed or promoted */
	v[1] = CStringGetTextDatum("");
	if (am_schema_is_1_1())
		am_exec(&drop_handovers_plan, v, NULL, false, 0);
	return n;
}

/*
 * What a token is, when it is well formed, known, unrevoked and inside
 * [issued_at, expires_at) at as_of; false otherwise.
 *
 * This is the hot path of every credential check, so it reads the unique
 * index on token_hash directly, under the caller's snapshot, instead of
 * planning and executing a query through SPI: the same index lookup a
 * query would make, without the executor around it.
 */
bool
am_token_lookup(const char *token, TimestampTz as_of, AmTokenInfo *info)
{
	uint8		h[PG_SHA256_DIGEST_LENGTH];
	Relation	rel;
	TupleDesc	desc;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;
	Oid			nsp;

	if (!am_token_hash(token, h))
		return false;

	nsp = get_namespace_oid(AM_SCHEMA, false);
	rel = table_open(am_relid(nsp, "credentials"), AccessShareLock);
	desc = RelationGetDescr(rel);
	ScanKeyInit(&key, am_attnum(desc, "token_hash"), BTEqualStrategyNumber, F_BYTEAEQ,
				PointerGetDatum(am_bytea(h, PG_SHA256_DIGEST_LENGTH)));
	scan = systable_beginscan(rel, am_relid(nsp, "credentials_token_hash_key"), true,
							  GetActiveSnapshot(), 1, &key);
	if ((tup = systable_getnext(scan)) != NULL)
	{
		bool		revoked_null;
		bool		isnull;
		TimestampTz issued;
		TimestampTz expires;

		(void) am_col(tup, desc, "revoked_at", &revoked_null);
		issued = DatumGetTimestampTz(am_col(tup, desc, "issued_at", &isnull));
		expires = DatumGetTimestampTz(am_col(tup, desc, "expires_at", &isnull));
		if (revoked_null && issued <= as_of && as_of < expires)
		{
			int			lucol = SPI_fnumber(desc, "last_used_at");
			Datum		lu = (Datum) 0;

			/* absent from a 1.0 table: then nothing is tracked */
			info->trackable = lucol > 0;
			info->last_used_null = true;
			if (info->trackable)
				lu = heap_getattr(tup, lucol, desc, &info->last_used_null);

			info->agent_id = TextDatumGetCString(am_col(tup, desc, "agent_id", &isnull));
			info->credential_id = TextDatumGetCString(am_col(tup, desc, "credential_id", &isnull));
			info->issued_at = issued;
			info->expires_at = expires;
			info->last_used_at = info->last_used_null ? 0 : DatumGetTimestampTz(lu);
			found = true;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/* ----------------------------------------------------------------
 * Last use (docs/credentials.md#last-used)
 *
 * A use writes only when the stored last_used_at is missing or at least
 * AM_LAST_USED_INTERVAL_SECS old, so a credential's row is written at most
 * once per interval however often it is used, and a verification that
 * does not write adds no WAL record.  Never on a hot standby or in a
 * read-only transaction (verification stays read-only there).  The agent
 * row is locked first, with SKIP LOCKED: a verification never waits, and
 * when the row is busy the next use records it.
 * ----------------------------------------------------------------
 */
static AmPlan use_lock_agent_plan = {
	"SELECT 1 FROM agentmesh.agents WHERE agent_id = $1 FOR NO KEY UPDATE SKIP LOCKED",
	1, {TEXTOID}
};
static AmPlan use_cred_plan = {
	"UPDATE agentmesh.credentials SET last_used_at = $2"
	" WHERE credential_id = $1"
	"   AND (last_used_at IS NULL OR last_used_at <= $2 - make_interval(secs => $3))",
	3, {TEXTOID, TIMESTAMPTZOID, FLOAT8OID}
};
static AmPlan use_agent_plan = {
	"UPDATE agentmesh.agents SET last_used_at = $2"
	" WHERE agent_id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
	2, {TEXTOID, TIMESTAMPTZOID}
};

/*
 * The first use of a successor ends its predecessors at the overlap:
 * rotation_overlap after they were superseded, or now if that is past; a
 * predecessor that a hand-over rotation kept valid until this moment (see
 * supersede_plan) ends here.  Only rows that change are written.
 */
static AmPlan first_use_plan = {
	"UPDATE agentmesh.credentials c"
	"   SET expires_at = GREATEST(c.issued_at, GREATEST(c.superseded_at + p.rotation_overlap, $3))"
	"  FROM agentmesh.agents a JOIN agentmesh.policies p ON p.name = a.policy"
	" WHERE a.agent_id = $1 AND c.agent_id = $1 AND c.credential_id <> $2"
	"   AND c.superseded_at IS NOT NULL AND c.revoked_at IS NULL AND c.issued_at < $4"
	"   AND c.expires_at > GREATEST(c.superseded_at + p.rotation_overlap, $3)",
	4, {TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}
};

/* the last write of this backend, so that one statement's many uses write once */
static char memo_cred[64];
static TimestampTz memo_xact_start;

/* Write one use (inside a transaction that may write). */
static void
write_use(const AmUse *use, bool agent_row)
{
	AmPriv		priv;
	Datum		v[4];

	am_connect(&priv);
	v[0] = CStringGetTextDatum(use->agent_id);
	if (agent_row)
	{
		am_exec(&use_lock_agent_plan, v, NULL, false, 1);
		if (SPI_processed != 1)
		{
			am_finish(&priv);
			return;
		}
	}
	v[0] = CStringGetTextDatum(use->credential_id);
	v[1] = TimestampTzGetDatum(use->at);
	v[2] = Float8GetDatum((double) AM_LAST_USED_INTERVAL_SECS);
	am_exec(&use_cred_plan, v, NULL, false, 0);
	if (SPI_processed == 1)
	{
		v[0] = CStringGetTextDatum(use->agent_id);
		if (agent_row)
			am_exec(&use_agent_plan, v, NULL, false, 0);
		if (use->first)
		{
			v[1] = CStringGetTextDatum(use->credential_id);
			v[2] = TimestampTzGetDatum(use->at);
			v[3] = TimestampTzGetDatum(use->issued_at);
			am_exec(&first_use_plan, v, NULL, false, 0);
		}
	}
	am_finish(&priv);
}

/*
 * Record a successful use of info's credential at now, and with agent_row
 * the agent's too.  Without agent_row the caller must hold the agent's row
 * lock (the token heartbeat: it is about to update that row itself, and
 * its last_heartbeat is the agent's last use).
 *
 * The use is queued for the maintenance pass (last_used.c), which writes
 * it in its own transaction: a verification never turns a read-only call
 * into a commit that waits for a WAL flush, and a token heartbeat pays no
 * second row update.  Without the preloaded queue the caller writes it,
 * unless read-only.  (A claim writes its successor's first use at once:
 * am_claim_successor.)
 */
void
am_track_use(const AmTokenInfo *info, TimestampTz now, bool agent_row)
{
	AmUse		use;

	if (!info->trackable)
		return;
	if (!info->last_used_null &&
		now - info->last_used_at < AM_LAST_USED_INTERVAL_SECS * USECS_PER_SEC)
		return;
	if (RecoveryInProgress() || IsInParallelMode())
		return;
	if (strcmp(memo_cred, info->credential_id) == 0 &&
		memo_xact_start == GetCurrentTransactionStartTimestamp())
		return;
	strlcpy(memo_cred, info->credential_id, sizeof(memo_cred));
	memo_xact_start = GetCurrentTransactionStartTimestamp();

	memset(&use, 0, sizeof(use));
	strlcpy(use.credential_id, info->credential_id, AM_USE_ID_LEN);
	strlcpy(use.agent_id, info->agent_id, AM_USE_ID_LEN);
	use.at = now;
	use.issued_at = info->issued_at;
	use.first = info->last_used_null;

	if (am_queue_use(&use))
		return;
	if (XactReadOnly)
		return;
	write_use(&use, agent_row);
}

/*
 * The maintenance pass: write the uses queued for this database (inside a
 * transaction); returns how many were taken.
 */
int
am_flush_uses(void)
{
	int			n;
	int			i;
	AmUse	   *uses = am_take_uses(&n);

	if (n > 0 && am_schema_is_1_1())
		for (i = 0; i < n; i++)
			write_use(&uses[i], true);
	if (uses)
		pfree(uses);
	return n;
}

/* Is the agent's state active?  (Primary-key lookup, caller's snapshot.) */
static bool
agent_is_active(Oid nsp, const char *agent_id)
{
	Relation	rel = table_open(am_relid(nsp, "agents"), AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		active = false;

	/* systable scans take heap attribute numbers */
	ScanKeyInit(&key, am_attnum(RelationGetDescr(rel), "agent_id"),
				BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(agent_id));
	scan = systable_beginscan(rel, am_relid(nsp, "agents_pkey"), true,
							  GetActiveSnapshot(), 1, &key);
	if ((tup = systable_getnext(scan)) != NULL)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		Datum		st = am_col(tup, desc, "state", &isnull);

		active = !isnull && am_state_from_datum(st) == AM_ACTIVE;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return active;
}

/*
 * The agent a token belongs to, when it is live at as_of (and its agent
 * active, if asked); else NULL.  Records the credential's last use (not
 * the agent row's: see am_track_use), so a caller that asks for no active
 * check must hold the agent's row lock, as the token heartbeat does.
 */
char *
am_token_agent(const char *token, TimestampTz as_of, bool require_active)
{
	AmTokenInfo info;

	if (!am_token_lookup(token, as_of, &info))
		return NULL;
	if (require_active && !agent_is_active(get_namespace_oid(AM_SCHEMA, false), info.agent_id))
		return NULL;
	am_track_use(&info, as_of, false);
	return info.agent_id;
}

/* the hand-over row of a credential, through its primary key */
static bool
handover_of(const char *pred_id, bool *promoted, char **succ_id)
{
	Oid			nsp = get_namespace_oid(AM_SCHEMA, false);
	Relation	rel = table_open(am_relid(nsp, "credential_handovers"), AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	ScanKeyInit(&key, am_attnum(desc, "predecessor_id"), BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(pred_id));
	scan = systable_beginscan(rel, am_relid(nsp, "credential_handovers_pkey"), true,
							  GetActiveSnapshot(), 1, &key);
	if ((tup = systable_getnext(scan)) != NULL)
	{
		bool		isnull;

		(void) am_col(tup, desc, "promoted_at", &isnull);
		*promoted = !isnull;
		*succ_id = TextDatumGetCString(am_col(tup, desc, "successor_id", &isnull));
		found = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * For the token heartbeat, in one lookup: as am_token_agent(token, as_of,
 * false) (the caller holds the agent's row lock; the credential's use is
 * recorded), and *st filled with the presented token's credential, its
 * expiry, and whether a successor sealed under it waits to be claimed.
 */
char *
am_token_agent_status(const char *token, TimestampTz as_of, AmTokenStatus *st)
{
	AmTokenInfo info;
	bool		promoted = false;
	char	   *succ = NULL;

	memset(st, 0, sizeof(*st));
	if (!am_token_lookup(token, as_of, &info))
		return NULL;
	am_track_use(&info, as_of, false);
	st->credential_id = info.credential_id;
	st->expires_at = info.expires_at;
	if (info.trackable && handover_of(info.credential_id, &promoted, &succ) && promoted)
	{
		st->successor_waiting = true;
		st->successor_id = succ;
	}
	return info.agent_id;
}

/* ----------------------------------------------------------------
 * Claiming a sealed successor
 * ----------------------------------------------------------------
 */
static AmPlan take_handover_plan = {
	"DELETE FROM agentmesh.credential_handovers"
	" WHERE predecessor_id = $1 AND agent_id = $2 AND promoted_at IS NOT NULL"
	" RETURNING successor_id, sealed",
	2, {TEXTOID, TEXTOID}
};
static AmPlan successor_plan = {
	"SELECT issued_at, expires_at, token_hash FROM agentmesh.credentials"
	" WHERE credential_id = $1 AND agent_id = $2 AND revoked_at IS NULL"
	"   AND issued_at <= $3 AND expires_at > $3",
	3, {TEXTOID, TEXTOID, TIMESTAMPTZOID}
};

/*
 * The successor sealed under pred_token, the live token of credential
 * pred_id of a locked, active agent (inside am_connect): true with the
 * grant (token in the caller's context), the sealed copy erased, the
 * successor's first use recorded (which ends the predecessor at the
 * overlap) and the successor's own successor reserved under it.  False
 * when there is nothing to claim; the caller reports that as it reports
 * a bad token.
 */
bool
am_claim_successor(const char *agent_id, const char *pred_id, const char *pred_token,
				   TimestampTz now, AmGrant *grant)
{
	Datum		v[3];
	char	   *succ_id;
	bytea	   *sealed;
	char		succ[TOKEN_LEN + 1];
	uint8		h[PG_SHA256_DIGEST_LENGTH];
	bytea	   *stored;
	bool		isnull;
	AmUse		used;

	v[0] = CStringGetTextDatum(pred_id);
	v[1] = CStringGetTextDatum(agent_id);
	am_exec(&take_handover_plan, v, NULL, false, 0);
	if (SPI_processed != 1)
		return false;
	succ_id = am_getcol_text(1);
	sealed = DatumGetByteaPP(am_getcol(2, &isnull));
	if (!am_handover_open(pred_token, agent_id, pred_id, succ_id,
						  (const uint8 *) VARDATA_ANY(sealed), VARSIZE_ANY_EXHDR(sealed), succ))
		return false;

	v[0] = CStringGetTextDatum(succ_id);
	v[2] = TimestampTzGetDatum(now);
	am_exec(&successor_plan, v, NULL, false, 1);
	sha256(succ, TOKEN_LEN, h);
	stored = SPI_processed == 1 ? DatumGetByteaPP(am_getcol(3, &isnull)) : NULL;
	if (stored == NULL || VARSIZE_ANY_EXHDR(stored) != PG_SHA256_DIGEST_LENGTH ||
		memcmp(VARDATA_ANY(stored), h, PG_SHA256_DIGEST_LENGTH) != 0)
	{
		explicit_bzero(succ, sizeof(succ));
		return false;
	}
	grant->issued_at = DatumGetTimestampTz(am_getcol(1, &isnull));
	grant->expires_at = DatumGetTimestampTz(am_getcol(2, &isnull));
	grant->credential_id = SPI_palloc(strlen(succ_id) + 1);
	strcpy(grant->credential_id, succ_id);
	grant->token = SPI_palloc(TOKEN_LEN + 1);
	memcpy(grant->token, succ, TOKEN_LEN + 1);
	explicit_bzero(succ, sizeof(succ));

	/*
	 * The claim is the successor's first use, written now (not queued): it
	 * ends the predecessor at its overlap in this same transaction.
	 */
	memset(&used, 0, sizeof(used));
	strlcpy(used.credential_id, grant->credential_id, AM_USE_ID_LEN);
	strlcpy(used.agent_id, agent_id, AM_USE_ID_LEN);
	used.at = now;
	used.issued_at = grant->issued_at;
	used.first = true;
	write_use(&used, true);

	reserve_successor(agent_id, grant->credential_id, grant->token, now);
	return true;
}

/*
 * The credential_grant row a call returns (lm_activate, lm_rotate_credentials,
 * lm_reclaim, lm_renew, lm_claim_credential): the agent, its state, the grant.
 */
Datum
am_grant_result(FunctionCallInfo fcinfo, const char *agent_id, AmState state, const AmGrant *g)
{
	TupleDesc	desc;
	Datum		v[6];
	bool		n[6] = {false, false, false, false, false, false};
	Oid			state_in;
	Oid			ioparam;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);
	getTypeInputInfo(TupleDescAttr(desc, 1)->atttypid, &state_in, &ioparam);
	v[0] = CStringGetTextDatum(agent_id);
	v[1] = OidFunctionCall3(state_in, CStringGetDatum(am_state_names[state]),
							ObjectIdGetDatum(ioparam), Int32GetDatum(-1));
	v[2] = CStringGetTextDatum(g->credential_id);
	v[3] = TimestampTzGetDatum(g->issued_at);
	v[4] = TimestampTzGetDatum(g->expires_at);
	v[5] = CStringGetTextDatum(g->token);
	return HeapTupleGetDatum(heap_form_tuple(desc, v, n));
}

/*
 * lm_verify_credential(token) — agent id or NULL.  Never raises for a bad
 * token (an error would put the statement, and so the token, in the server
 * log).  It records the last use at most once a minute per credential
 * (am_track_use) and writes nothing on a hot standby, where it also runs.
 */
PG_FUNCTION_INFO_V1(lm_verify_credential);
Datum
lm_verify_credential(PG_FUNCTION_ARGS)
{
	text	   *t;
	char	   *token;
	AmTokenInfo info;
	bool		ok;
	TimestampTz now;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	t = PG_GETARG_TEXT_PP(0);
	if (VARSIZE_ANY_EXHDR(t) != TOKEN_LEN)
		PG_RETURN_NULL();
	token = text_to_cstring(t);

	/*
	 * The wall clock: a transaction held open must not stretch a token's
	 * life.  And a fresh snapshot under REPEATABLE READ and SERIALIZABLE,
	 * whose transaction snapshot would keep showing a token that a
	 * revocation committed since has stopped (READ COMMITTED takes one per
	 * statement anyway): from the moment a revocation commits, no token of
	 * the agent verifies.
	 */
	now = GetCurrentTimestamp();
	if (IsolationUsesXactSnapshot())
		PushActiveSnapshot(GetLatestSnapshot());
	ok = am_token_lookup(token, now, &info) &&
		agent_is_active(get_namespace_oid(AM_SCHEMA, false), info.agent_id);
	if (IsolationUsesXactSnapshot())
		PopActiveSnapshot();
	explicit_bzero(token, TOKEN_LEN);
	if (!ok)
		PG_RETURN_NULL();
	am_track_use(&info, now, true);
	PG_RETURN_TEXT_P(cstring_to_text(info.agent_id));
}

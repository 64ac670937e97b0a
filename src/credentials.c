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
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
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
 * A credential never ends before it was issued: a rotation whose transaction
 * started before a concurrent one that it waited for, or a maintenance pass
 * run with a future as_of, must not produce an inverted lifetime.
 */
static AmPlan supersede_plan = {
	"UPDATE agentmesh.credentials"
	"   SET expires_at = GREATEST(issued_at, CASE WHEN superseded_at IS NULL"
	"                         THEN LEAST(expires_at, $2 + $3) ELSE LEAST(expires_at, $2) END),"
	"       superseded_at = COALESCE(superseded_at, $2)"
	" WHERE agent_id = $1 AND revoked_at IS NULL AND expires_at > $2",
	3, {TEXTOID, TIMESTAMPTZOID, INTERVALOID}
};
static AmPlan insert_cred_plan = {
	"INSERT INTO agentmesh.credentials (credential_id, agent_id, token_hash, issued_at, expires_at)"
	" VALUES ($1, $2, $3, $4, $4 + $5) RETURNING expires_at",
	5, {TEXTOID, TEXTOID, BYTEAOID, TIMESTAMPTZOID, INTERVALOID}
};

/*
 * Issue a credential for an agent whose row the caller has locked.  Call
 * inside am_connect().  The token is returned in the grant and exists
 * nowhere else.
 */
void
am_issue_credential(const char *agent_id, Interval *ttl, Interval *overlap,
					TimestampTz now, AmGrant *grant)
{
	Datum		sv[3];
	Datum		iv[5];
	uint8		h[PG_SHA256_DIGEST_LENGTH];
	bool		isnull;
	char	   *id;
	char	   *token;

	sv[0] = CStringGetTextDatum(agent_id);
	sv[1] = TimestampTzGetDatum(now);
	sv[2] = IntervalPGetDatum(overlap);
	am_exec(&supersede_plan, sv, NULL, false, 0);

	/* the grant outlives SPI: copy it to the caller's context */
	id = am_random_id("cred:", CRED_ID_BYTES);
	token = new_token();
	grant->credential_id = SPI_palloc(strlen(id) + 1);
	strcpy(grant->credential_id, id);
	grant->token = SPI_palloc(TOKEN_LEN + 1);
	memcpy(grant->token, token, TOKEN_LEN + 1);
	explicit_bzero(token, TOKEN_LEN);

	sha256(grant->token, TOKEN_LEN, h);
	iv[0] = CStringGetTextDatum(grant->credential_id);
	iv[1] = sv[0];
	iv[2] = PointerGetDatum(am_bytea(h, PG_SHA256_DIGEST_LENGTH));
	iv[3] = TimestampTzGetDatum(now);
	iv[4] = IntervalPGetDatum(ttl);
	if (am_exec(&insert_cred_plan, iv, NULL, false, 0) != SPI_OK_INSERT_RETURNING ||
		SPI_processed != 1)
		elog(ERROR, "could not store credential");
	grant->issued_at = now;
	grant->expires_at = DatumGetTimestampTz(am_getcol(1, &isnull));
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

	v[0] = CStringGetTextDatum(agent_id);
	v[1] = TimestampTzGetDatum(now);
	v[2] = CStringGetTextDatum(reason);
	am_exec(&revoke_plan, v, NULL, false, 0);
	return (int) SPI_processed;
}

/* Is the agent's state active?  (Primary-key lookup, caller's snapshot.) */
static bool
agent_is_active(Oid nsp, Datum agent_id)
{
	Relation	rel = table_open(am_relid(nsp, "agents"), AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		active = false;

	/* systable scans take heap attribute numbers */
	ScanKeyInit(&key, am_attnum(RelationGetDescr(rel), "agent_id"),
				BTEqualStrategyNumber, F_TEXTEQ, agent_id);
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
 * The agent a token belongs to, when the token is well formed, known,
 * unrevoked and inside [issued_at, expires_at) at as_of (and its agent
 * active, if asked); else NULL.
 *
 * This is the hot path of every credential check, so it reads the unique
 * index on token_hash directly (and the agents primary key when asked),
 * under the caller's snapshot, instead of planning and executing a query
 * through SPI: the same two index lookups a query would make, without the
 * executor around them.
 */
static char *
token_lookup(const char *token, TimestampTz as_of, bool require_active,
			 char **credential_id, TimestampTz *expires_at)
{
	uint8		h[PG_SHA256_DIGEST_LENGTH];
	Relation	rel;
	TupleDesc	desc;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Datum		agent = (Datum) 0;
	bool		found = false;
	Oid			nsp;

	if (!am_token_hash(token, h))
		return NULL;

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
			agent = datumCopy(am_col(tup, desc, "agent_id", &isnull),
							  false, -1);
			found = true;
			if (credential_id)
				*credential_id = TextDatumGetCString(am_col(tup, desc, "credential_id", &isnull));
			if (expires_at)
				*expires_at = expires;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (!found || (require_active && !agent_is_active(nsp, agent)))
		return NULL;
	return TextDatumGetCString(agent);
}

char *
am_token_agent(const char *token, TimestampTz as_of, bool require_active)
{
	return token_lookup(token, as_of, require_active, NULL, NULL);
}

/*
 * The same check for lm_heartbeat(), which also reports the credential
 * the token is (issue 10: the heartbeat result names it).
 */
char *
am_token_credential(const char *token, TimestampTz as_of,
					char **credential_id, TimestampTz *expires_at)
{
	return token_lookup(token, as_of, false, credential_id, expires_at);
}

/*
 * lm_verify_credential(token) — agent id or NULL.  Never raises for a bad
 * token (an error would put the statement, and so the token, in the server
 * log) and writes nothing, so it also runs on a hot standby.
 */
PG_FUNCTION_INFO_V1(lm_verify_credential);
Datum
lm_verify_credential(PG_FUNCTION_ARGS)
{
	text	   *t;
	char	   *token;
	char	   *agent;

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
	if (IsolationUsesXactSnapshot())
		PushActiveSnapshot(GetLatestSnapshot());
	agent = am_token_agent(token, GetCurrentTimestamp(), true);
	if (IsolationUsesXactSnapshot())
		PopActiveSnapshot();
	explicit_bzero(token, TOKEN_LEN);
	if (agent == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(agent));
}

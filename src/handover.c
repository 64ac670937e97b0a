/*-------------------------------------------------------------------------
 *
 * handover.c
 *		Sealing a successor token under its predecessor token, and opening
 *		the seal again.  Pure computation: no table, no SPI.
 *
 * The construction (docs/credentials.md#the-construction), with H =
 * HMAC-SHA-256 from PostgreSQL's src/common and "|" a 0x00 byte (the
 * identifiers never contain one, so the encoding is injective):
 *
 *	 PRK   = H(key = "agentmesh handover v1", msg = predecessor token)
 *	 info  = agent_id | predecessor_id | successor_id
 *	 K_enc = H(PRK, "enc" | info | 0x01)				(HKDF-Expand, one block)
 *	 K_mac = H(PRK, "mac" | info | 0x01)
 *	 S_i   = H(K_enc, uint32be(i)), i = 0, 1, 2		(counter-mode keystream)
 *	 C	   = successor token XOR S_0 S_1 S_2 (first 76 bytes)
 *	 T	   = H(K_mac, "agentmesh handover v1" | info | C)
 *	 sealed = C || T									(108 bytes)
 *
 * PRK is HKDF-Extract (RFC 5869) with the version string as salt and the
 * token as input key material.  The token is deliberately the *message* of
 * the first HMAC, not its key: HMAC replaces a key longer than the 64-byte
 * block by its SHA-256, and a 76-byte token's SHA-256 is exactly the
 * token_hash stored in agentmesh.credentials, so H(key = token, ...) would
 * be computable by anyone who can read that table.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hmac.h"
#include "common/sha2.h"

#include "agentmesh.h"

#define HANDOVER_VERSION	"agentmesh handover v1"
#define HMAC_LEN			PG_SHA256_DIGEST_LENGTH

/* HMAC-SHA-256 over the concatenation of nparts byte strings */
static void
hmac_parts(const uint8 *key, size_t keylen, int nparts,
		   const uint8 *const *parts, const size_t *lens, uint8 *out)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	int			i;

	if (ctx == NULL)
		elog(ERROR, "out of memory computing HMAC-SHA-256");
	if (pg_hmac_init(ctx, key, keylen) < 0)
		elog(ERROR, "could not compute HMAC-SHA-256: %s", pg_hmac_error(ctx));
	for (i = 0; i < nparts; i++)
		if (pg_hmac_update(ctx, parts[i], lens[i]) < 0)
			elog(ERROR, "could not compute HMAC-SHA-256: %s", pg_hmac_error(ctx));
	if (pg_hmac_final(ctx, out, HMAC_LEN) < 0)
		elog(ERROR, "could not compute HMAC-SHA-256: %s", pg_hmac_error(ctx));
	pg_hmac_free(ctx);
}

/* info = agent_id 0x00 predecessor_id 0x00 successor_id, palloc'd */
static uint8 *
make_info(const char *agent_id, const char *pred_id, const char *succ_id, size_t *len)
{
	size_t		la = strlen(agent_id);
	size_t		lp = strlen(pred_id);
	size_t		ls = strlen(succ_id);
	uint8	   *info = palloc(la + lp + ls + 2);

	memcpy(info, agent_id, la);
	info[la] = 0;
	memcpy(info + la + 1, pred_id, lp);
	info[la + 1 + lp] = 0;
	memcpy(info + la + lp + 2, succ_id, ls);
	*len = la + lp + ls + 2;
	return info;
}

/* K_enc and K_mac from the predecessor token and info */
static void
derive_keys(const char *pred_token, const uint8 *info, size_t infolen,
			uint8 *k_enc, uint8 *k_mac)
{
	uint8		prk[HMAC_LEN];
	static const uint8 zero = 0;
	static const uint8 one = 1;
	const uint8 *parts[5];
	size_t		lens[5];

	parts[0] = (const uint8 *) pred_token;
	lens[0] = AM_TOKEN_LEN;
	hmac_parts((const uint8 *) HANDOVER_VERSION, strlen(HANDOVER_VERSION), 1, parts, lens, prk);

	parts[0] = (const uint8 *) "enc";
	lens[0] = 3;
	parts[1] = &zero;
	lens[1] = 1;
	parts[2] = info;
	lens[2] = infolen;
	parts[3] = &one;
	lens[3] = 1;
	hmac_parts(prk, HMAC_LEN, 4, parts, lens, k_enc);
	parts[0] = (const uint8 *) "mac";
	hmac_parts(prk, HMAC_LEN, 4, parts, lens, k_mac);
	explicit_bzero(prk, sizeof(prk));
}

/* XOR AM_TOKEN_LEN bytes of in with the counter-mode keystream of k_enc */
static void
keystream_xor(const uint8 *k_enc, const uint8 *in, uint8 *out)
{
	uint8		block[HMAC_LEN];
	uint32		i;
	int			pos = 0;

	for (i = 0; pos < AM_TOKEN_LEN; i++)
	{
		uint8		ctr[4];
		const uint8 *parts[1] = {ctr};
		size_t		lens[1] = {4};
		int			j;

		ctr[0] = (uint8) (i >> 24);
		ctr[1] = (uint8) (i >> 16);
		ctr[2] = (uint8) (i >> 8);
		ctr[3] = (uint8) i;
		hmac_parts(k_enc, HMAC_LEN, 1, parts, lens, block);
		for (j = 0; j < HMAC_LEN && pos < AM_TOKEN_LEN; j++, pos++)
			out[pos] = in[pos] ^ block[j];
	}
	explicit_bzero(block, sizeof(block));
}

static void
compute_tag(const uint8 *k_mac, const uint8 *info, size_t infolen, const uint8 *ct, uint8 *tag)
{
	static const uint8 zero = 0;
	const uint8 *parts[4];
	size_t		lens[4];

	parts[0] = (const uint8 *) HANDOVER_VERSION;
	lens[0] = strlen(HANDOVER_VERSION);
	parts[1] = &zero;
	lens[1] = 1;
	parts[2] = info;
	lens[2] = infolen;
	parts[3] = ct;
	lens[3] = AM_TOKEN_LEN;
	/* info and ct are of fixed format, so this encoding is injective too */
	hmac_parts(k_mac, HMAC_LEN, 4, parts, lens, tag);
}

/*
 * Seal succ_token (AM_TOKEN_LEN bytes) under pred_token into out
 * (AM_HANDOVER_SEALED_LEN bytes).
 */
void
am_handover_seal(const char *pred_token, const char *agent_id, const char *pred_id,
				 const char *succ_id, const char *succ_token, uint8 *out)
{
	uint8		k_enc[HMAC_LEN];
	uint8		k_mac[HMAC_LEN];
	size_t		infolen;
	uint8	   *info = make_info(agent_id, pred_id, succ_id, &infolen);

	derive_keys(pred_token, info, infolen, k_enc, k_mac);
	keystream_xor(k_enc, (const uint8 *) succ_token, out);
	compute_tag(k_mac, info, infolen, out, out + AM_TOKEN_LEN);
	explicit_bzero(k_enc, sizeof(k_enc));
	explicit_bzero(k_mac, sizeof(k_mac));
	pfree(info);
}

/*
 * Open a seal: true and the successor token in succ_out (AM_TOKEN_LEN + 1
 * bytes, NUL-terminated) when the tag verifies under pred_token and these
 * identifiers; false, and nothing decrypted, otherwise.
 */
bool
am_handover_open(const char *pred_token, const char *agent_id, const char *pred_id,
				 const char *succ_id, const uint8 *sealed, size_t sealed_len, char *succ_out)
{
	uint8		k_enc[HMAC_LEN];
	uint8		k_mac[HMAC_LEN];
	uint8		tag[HMAC_LEN];
	size_t		infolen;
	uint8	   *info;
	uint8		diff = 0;
	int			i;

	if (sealed_len != AM_HANDOVER_SEALED_LEN)
		return false;
	info = make_info(agent_id, pred_id, succ_id, &infolen);
	derive_keys(pred_token, info, infolen, k_enc, k_mac);
	compute_tag(k_mac, info, infolen, sealed, tag);
	/* constant time: the comparison must not tell how much of the tag matched */
	for (i = 0; i < HMAC_LEN; i++)
		diff |= tag[i] ^ sealed[AM_TOKEN_LEN + i];
	if (diff == 0)
	{
		keystream_xor(k_enc, sealed, (uint8 *) succ_out);
		succ_out[AM_TOKEN_LEN] = '\0';
	}
	explicit_bzero(k_enc, sizeof(k_enc));
	explicit_bzero(k_mac, sizeof(k_mac));
	pfree(info);
	return diff == 0;
}

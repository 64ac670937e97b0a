/*-------------------------------------------------------------------------
 *
 * merkle.c
 *		RFC 6962 (RFC 9162 section 2.1) Merkle tree hashing: leaf and node
 *		hashes, extending a tree leaf by leaf, and the root, inclusion
 *		proof and consistency proof of any tree size from the stored hashes
 *		of complete subtrees.
 *
 *	 leaf hash = SHA-256(0x00 || leaf data)
 *	 node hash = SHA-256(0x01 || left || right)
 *	 MTH({})   = SHA-256("")
 *	 MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n
 *
 * A complete subtree is named by (level, index): the 2^level leaves from
 * index * 2^level on; level 0 is the leaf hashes themselves.  Appending a
 * leaf completes at most one subtree per level, and every hash the tree of
 * any size needs is a combination of complete subtrees, so a store of those
 * (agentmesh.audit_tree, written by seals.c) answers every root and proof.
 * The functions here are pure: they get stored hashes through a callback and
 * report completed subtrees through another.  The lowest layer: nothing else
 * of the extension is called from here.
 *
 * Test-only SQL entry points (am_merkle_test_*) build a tree in memory over
 * given leaf data; they are not part of the extension's SQL API and are
 * bound to SQL only by test/merkle_vectors (see sql/merkle_vectors.sql).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "agentmesh.h"

static void
sha256_parts(const uint8 *prefix, size_t plen, const uint8 *a, size_t alen,
			 const uint8 *b, size_t blen, uint8 *out)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (pg_cryptohash_init(ctx) < 0 ||
		(plen > 0 && pg_cryptohash_update(ctx, prefix, plen) < 0) ||
		(alen > 0 && pg_cryptohash_update(ctx, a, alen) < 0) ||
		(blen > 0 && pg_cryptohash_update(ctx, b, blen) < 0) ||
		pg_cryptohash_final(ctx, out, PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "could not compute SHA-256 of a Merkle tree node: %s",
			 pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
}

void
am_merkle_leaf_hash(const uint8 *data, size_t len, uint8 *out)
{
	static const uint8 zero = 0x00;

	sha256_parts(&zero, 1, data, len, NULL, 0, out);
}

void
am_merkle_node_hash(const uint8 *left, const uint8 *right, uint8 *out)
{
	static const uint8 one = 0x01;

	sha256_parts(&one, 1, left, AM_HASH_LEN, right, AM_HASH_LEN, out);
}

/* largest power of two strictly below n (n >= 2) */
static int64
split_point(int64 n)
{
	int64		k = 1;

	while (k * 2 < n)
		k *= 2;
	return k;
}

static int
log2_exact(int64 k)
{
	int			l = 0;

	while (((int64) 1 << l) < k)
		l++;
	return l;
}

/*
 * MTH of leaves [a, b) of the tree.  Every range asked for by the
 * recursions below starts at a multiple of the power of two it splits at,
 * so its left part is always a complete subtree.
 */
void
am_merkle_range_hash(AmMerkleGetNode get, void *arg, int64 a, int64 b, uint8 *out)
{
	int64		n = b - a;
	int64		k;
	uint8		l[AM_HASH_LEN];
	uint8		r[AM_HASH_LEN];

	Assert(n >= 1);
	if ((n & (n - 1)) == 0 && a % n == 0)
	{
		get(arg, log2_exact(n), a / n, out);
		return;
	}
	k = split_point(n);
	am_merkle_range_hash(get, arg, a, a + k, l);
	am_merkle_range_hash(get, arg, a + k, b, r);
	am_merkle_node_hash(l, r, out);
}

/* The root of the tree of the first n leaves. */
void
am_merkle_root(AmMerkleGetNode get, void *arg, int64 n, uint8 *out)
{
	if (n == 0)
		sha256_parts(NULL, 0, NULL, 0, NULL, 0, out);
	else
		am_merkle_range_hash(get, arg, 0, n, out);
}

/* PATH(m, D[a:b]) of RFC 6962 2.1.1, the hash nearest the leaf first. */
static int
path(AmMerkleGetNode get, void *arg, int64 m, int64 a, int64 b, uint8 (*out)[AM_HASH_LEN])
{
	int64		k;
	int			len;

	if (b - a == 1)
		return 0;
	k = split_point(b - a);
	if (m < a + k)
	{
		len = path(get, arg, m, a, a + k, out);
		am_merkle_range_hash(get, arg, a + k, b, out[len]);
	}
	else
	{
		len = path(get, arg, m, a + k, b, out);
		am_merkle_range_hash(get, arg, a, a + k, out[len]);
	}
	return len + 1;
}

/*
 * The inclusion proof of leaf m (0-based) in the tree of n leaves, m < n;
 * out has room for AM_MERKLE_MAX_PROOF hashes.  Returns the number of hashes.
 */
int
am_merkle_inclusion_proof(AmMerkleGetNode get, void *arg, int64 m, int64 n,
						  uint8 (*out)[AM_HASH_LEN])
{
	Assert(m >= 0 && m < n);
	return path(get, arg, m, 0, n, out);
}

/* SUBPROOF(m, D[a:b], flag) of RFC 6962 2.1.2; m counts from a. */
static int
subproof(AmMerkleGetNode get, void *arg, int64 m, int64 a, int64 b, bool flag,
		 uint8 (*out)[AM_HASH_LEN])
{
	int64		k;
	int			len;

	if (m == b - a)
	{
		if (flag)
			return 0;
		am_merkle_range_hash(get, arg, a, b, out[0]);
		return 1;
	}
	k = split_point(b - a);
	if (m <= k)
	{
		len = subproof(get, arg, m, a, a + k, flag, out);
		am_merkle_range_hash(get, arg, a + k, b, out[len]);
	}
	else
	{
		len = subproof(get, arg, m - k, a + k, b, false, out);
		am_merkle_range_hash(get, arg, a, a + k, out[len]);
	}
	return len + 1;
}

/*
 * The consistency proof between the trees of m and n leaves, 0 <= m <= n:
 * empty when m is 0 or n (nothing to prove).
 */
int
am_merkle_consistency_proof(AmMerkleGetNode get, void *arg, int64 m, int64 n,
							uint8 (*out)[AM_HASH_LEN])
{
	Assert(m >= 0 && m <= n);
	if (m == 0 || m == n)
		return 0;
	return subproof(get, arg, m, 0, n, true, out);
}

/*
 * Appending.  The frontier holds the complete subtrees of the current size
 * (one per set bit of size: level l's hash in nodes[l]).  A new leaf is
 * level 0's complete subtree; while a subtree of the same level is on the
 * frontier, the two merge into their parent.  Each completed subtree is
 * reported to emit (to be stored), leaf first.
 */
void
am_merkle_append(AmMerkleFrontier *f, const uint8 *leaf_hash, AmMerkleEmit emit, void *arg)
{
	uint8		cur[AM_HASH_LEN];
	int64		index = f->size;
	int			level = 0;

	memcpy(cur, leaf_hash, AM_HASH_LEN);
	if (emit)
		emit(arg, 0, index, cur);
	while (f->size & ((int64) 1 << level))
	{
		am_merkle_node_hash(f->nodes[level], cur, cur);
		level++;
		index >>= 1;
		if (emit)
			emit(arg, level, index, cur);
	}
	memcpy(f->nodes[level], cur, AM_HASH_LEN);
	f->size++;
}

/* The root of the frontier's tree: its subtrees combined from the right. */
void
am_merkle_frontier_root(const AmMerkleFrontier *f, uint8 *out)
{
	bool		have = false;
	int			level;

	for (level = 0; level < AM_MERKLE_LEVELS; level++)
	{
		if (!(f->size & ((int64) 1 << level)))
			continue;
		if (!have)
			memcpy(out, f->nodes[level], AM_HASH_LEN);
		else
			am_merkle_node_hash(f->nodes[level], out, out);
		have = true;
	}
	if (!have)
		sha256_parts(NULL, 0, NULL, 0, NULL, 0, out);
}

/*
 * Load the frontier of a tree of size leaves from stored complete subtrees:
 * the subtree of each set bit, from the highest.
 */
void
am_merkle_frontier_load(AmMerkleFrontier *f, int64 size, AmMerkleGetNode get, void *arg)
{
	int64		start = 0;
	int			level;

	memset(f, 0, sizeof(*f));
	f->size = size;
	for (level = AM_MERKLE_LEVELS - 1; level >= 0; level--)
	{
		if (!(size & ((int64) 1 << level)))
			continue;
		get(arg, level, start >> level, f->nodes[level]);
		start += (int64) 1 << level;
	}
}

/* ----------------------------------------------------------------
 * Test-only entry points: a tree in memory over the given leaf data,
 * stored through the same append and read through the same callbacks as
 * the real one.
 * ----------------------------------------------------------------
 */
typedef struct MemTree
{
	int64		nleaves;
	uint8	  **levels;			/* levels[l][i * AM_HASH_LEN] */
} MemTree;

static void
mem_emit(void *arg, int level, int64 index, const uint8 *hash)
{
	MemTree    *t = (MemTree *) arg;

	memcpy(t->levels[level] + index * AM_HASH_LEN, hash, AM_HASH_LEN);
}

static void
mem_get(void *arg, int level, int64 index, uint8 *out)
{
	MemTree    *t = (MemTree *) arg;

	if (level >= AM_MERKLE_LEVELS || (index + 1) << level > t->nleaves)
		elog(ERROR, "Merkle tree node (%d, " INT64_FORMAT ") is not complete", level, index);
	memcpy(out, t->levels[level] + index * AM_HASH_LEN, AM_HASH_LEN);
}

static void
mem_tree(ArrayType *leaves, MemTree *t, AmMerkleFrontier *f)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	deconstruct_array(leaves, BYTEAOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	t->nleaves = n;
	t->levels = palloc0(sizeof(uint8 *) * AM_MERKLE_LEVELS);
	for (i = 0; i < AM_MERKLE_LEVELS; i++)
		t->levels[i] = palloc0(((int64) n >> i) * AM_HASH_LEN + 1);
	memset(f, 0, sizeof(*f));
	for (i = 0; i < n; i++)
	{
		bytea	   *b;
		uint8		leaf[AM_HASH_LEN];

		if (nulls[i])
			elog(ERROR, "leaf data must not be null");
		b = DatumGetByteaPP(elems[i]);
		am_merkle_leaf_hash((uint8 *) VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b), leaf);
		am_merkle_append(f, leaf, mem_emit, t);
	}
}

static Datum
proof_datum(uint8 (*hashes)[AM_HASH_LEN], int n)
{
	Datum	   *d = palloc(sizeof(Datum) * (n + 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = PointerGetDatum(am_bytea(hashes[i], AM_HASH_LEN));
	return PointerGetDatum(construct_array(d, n, BYTEAOID, -1, false, TYPALIGN_INT));
}

/* am_merkle_test_root(leaves bytea[], size int8): MTH of the first size leaves */
PG_FUNCTION_INFO_V1(am_merkle_test_root);
Datum
am_merkle_test_root(PG_FUNCTION_ARGS)
{
	MemTree		t;
	AmMerkleFrontier f;
	int64		size = PG_GETARG_INT64(1);
	uint8		root[AM_HASH_LEN];
	uint8		froot[AM_HASH_LEN];

	mem_tree(PG_GETARG_ARRAYTYPE_P(0), &t, &f);
	if (size < 0 || size > t.nleaves)
		elog(ERROR, "size out of range");
	am_merkle_root(mem_get, &t, size, root);
	/* the frontier of that size, loaded from the stored subtrees, agrees */
	am_merkle_frontier_load(&f, size, mem_get, &t);
	am_merkle_frontier_root(&f, froot);
	if (memcmp(root, froot, AM_HASH_LEN) != 0)
		elog(ERROR, "frontier root differs from the stored-subtree root");
	PG_RETURN_BYTEA_P(am_bytea(root, AM_HASH_LEN));
}

/* am_merkle_test_inclusion(leaves bytea[], leaf int8, size int8) */
PG_FUNCTION_INFO_V1(am_merkle_test_inclusion);
Datum
am_merkle_test_inclusion(PG_FUNCTION_ARGS)
{
	MemTree		t;
	AmMerkleFrontier f;
	int64		m = PG_GETARG_INT64(1);
	int64		n = PG_GETARG_INT64(2);
	uint8		proof[AM_MERKLE_MAX_PROOF][AM_HASH_LEN];

	mem_tree(PG_GETARG_ARRAYTYPE_P(0), &t, &f);
	if (n < 1 || n > t.nleaves || m < 0 || m >= n)
		elog(ERROR, "index or size out of range");
	PG_RETURN_DATUM(proof_datum(proof, am_merkle_inclusion_proof(mem_get, &t, m, n, proof)));
}

/* am_merkle_test_consistency(leaves bytea[], old_size int8, new_size int8) */
PG_FUNCTION_INFO_V1(am_merkle_test_consistency);
Datum
am_merkle_test_consistency(PG_FUNCTION_ARGS)
{
	MemTree		t;
	AmMerkleFrontier f;
	int64		m = PG_GETARG_INT64(1);
	int64		n = PG_GETARG_INT64(2);
	uint8		proof[AM_MERKLE_MAX_PROOF][AM_HASH_LEN];

	mem_tree(PG_GETARG_ARRAYTYPE_P(0), &t, &f);
	if (n > t.nleaves || m < 0 || m > n)
		elog(ERROR, "size out of range");
	PG_RETURN_DATUM(proof_datum(proof, am_merkle_consistency_proof(mem_get, &t, m, n, proof)));
}

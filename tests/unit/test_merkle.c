/*
 * test_merkle.c — RFC 9162 tree hashing, proofs and verification.
 *
 * Three kinds of check:
 *  - the published RFC 6962 vectors in $HT_SHARED/conformance/
 *    merkle_rfc6962_sha256.json (skipped, saying so, when absent): every
 *    root and proof reproduced and verified, and the corruption probes of
 *    transparency-dev/merkle's own tests rejected;
 *  - a model test against a naive, obviously-RFC implementation written
 *    here (recursive MTH, PATH and SUBPROOF over a memo table) for random
 *    trees up to 300 leaves, with SM3 and SHA-256;
 *  - the node numbering and frontier, and O(log n) callback calls on
 *    trees far too large to build.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "huitong/merkle.h"

typedef uint8_t hash_t[HT_HASH_BYTES];

/* ---- a node store filled by the frontier ---------------------------- */

/*
 * Node hashes in completion order, as the journal stores them. The
 * callback serves node (level, index) from slot ht_merkle_node_seq() and
 * asserts that the node is complete within `limit` leaves: a proof for
 * the tree of size N must never read a node outside the first N leaves.
 */
struct store {
	hash_t *nodes;
	uint64_t leaves;   /* appended */
	uint64_t limit;    /* the tree size the current proof is about */
	unsigned calls;    /* callback calls since last reset */
	enum ht_err fail;  /* when set, the callback returns it */
};

static enum ht_err store_node(void *ctx, unsigned level, uint64_t index,
			      uint8_t out[HT_HASH_BYTES])
{
	struct store *s = ctx;
	s->calls++;
	if (s->fail)
		return s->fail;
	assert_true(level < 64);
	assert_true(((index + 1) << level) <= s->limit);
	assert_true(s->limit <= s->leaves);
	memcpy(out, s->nodes[ht_merkle_node_seq(level, index)], HT_HASH_BYTES);
	return HT_OK;
}

/* ---- the naive model ------------------------------------------------ */

/* MTH(D[lo:hi]) for every range, computed once (RFC 9162 §2.1.1). */
struct model {
	struct ht_hasher *h;
	size_t n;
	hash_t *leaf;  /* leaf hashes */
	hash_t *memo;  /* (n+1) x (n+1) */
	bool *have;
};

static uint64_t largest_pow2_below(uint64_t n)
{
	uint64_t k = 1;
	while (k * 2 < n)
		k *= 2;
	return k;
}

static const uint8_t *mth(struct model *m, size_t lo, size_t hi)
{
	size_t at = lo * (m->n + 1) + hi;
	if (m->have[at])
		return m->memo[at];
	if (hi == lo) {
		assert_int_equal(ht_hash3(m->h, NULL, 0, NULL, 0, NULL, 0,
					  m->memo[at]),
				 HT_OK);
	} else if (hi - lo == 1) {
		memcpy(m->memo[at], m->leaf[lo], HT_HASH_BYTES);
	} else {
		size_t k = largest_pow2_below(hi - lo);
		hash_t l, r;
		memcpy(l, mth(m, lo, lo + k), HT_HASH_BYTES);
		memcpy(r, mth(m, lo + k, hi), HT_HASH_BYTES);
		assert_int_equal(ht_hash3(m->h, "\x01", 1, l, HT_HASH_BYTES,
					  r, HT_HASH_BYTES, m->memo[at]),
				 HT_OK);
	}
	m->have[at] = true;
	return m->memo[at];
}

/* PATH(idx, D[lo:hi]) of RFC 9162 §2.1.3.1, appended to out. */
static void naive_path(struct model *m, size_t idx, size_t lo, size_t hi,
		       hash_t *out, size_t *count)
{
	if (hi - lo <= 1)
		return;
	size_t k = largest_pow2_below(hi - lo);
	if (idx < k) {
		naive_path(m, idx, lo, lo + k, out, count);
		memcpy(out[(*count)++], mth(m, lo + k, hi), HT_HASH_BYTES);
	} else {
		naive_path(m, idx - k, lo + k, hi, out, count);
		memcpy(out[(*count)++], mth(m, lo, lo + k), HT_HASH_BYTES);
	}
}

/* SUBPROOF(old, D[lo:hi], b) of RFC 9162 §2.1.4.1. */
static void naive_subproof(struct model *m, size_t old, size_t lo, size_t hi,
			   bool b, hash_t *out, size_t *count)
{
	if (old == hi - lo) {
		if (!b)
			memcpy(out[(*count)++], mth(m, lo, hi), HT_HASH_BYTES);
		return;
	}
	size_t k = largest_pow2_below(hi - lo);
	if (old <= k) {
		naive_subproof(m, old, lo, lo + k, b, out, count);
		memcpy(out[(*count)++], mth(m, lo + k, hi), HT_HASH_BYTES);
	} else {
		naive_subproof(m, old - k, lo + k, hi, false, out, count);
		memcpy(out[(*count)++], mth(m, lo, lo + k), HT_HASH_BYTES);
	}
}

static void naive_consistency(struct model *m, size_t old, size_t new_size,
			      hash_t *out, size_t *count)
{
	*count = 0;
	if (old == 0 || old == new_size)
		return;
	naive_subproof(m, old, 0, new_size, true, out, count);
}

static void model_init(struct model *m, struct ht_hasher *h, size_t n)
{
	m->h = h;
	m->n = n;
	m->leaf = calloc(n + 1, sizeof *m->leaf);
	m->memo = calloc((n + 1) * (n + 1), sizeof *m->memo);
	m->have = calloc((n + 1) * (n + 1), sizeof *m->have);
	assert_non_null(m->leaf);
	assert_non_null(m->memo);
	assert_non_null(m->have);
}

static void model_free(struct model *m)
{
	free(m->leaf);
	free(m->memo);
	free(m->have);
}

/*
 * Append the model's leaves to a frontier and a store, checking that
 * every append emits exactly the nodes it completes, numbered by
 * ht_merkle_node_seq in order, with the naive subtree hashes, and that
 * the frontier root equals the naive root at every size.
 */
static void build_store(struct model *m, struct store *s)
{
	struct ht_merkle_frontier f;
	hash_t out[65], root;
	unsigned n_out;
	memset(s, 0, sizeof *s);
	s->nodes = calloc(ht_merkle_node_count(m->n) + 1, sizeof *s->nodes);
	assert_non_null(s->nodes);
	ht_merkle_frontier_init(&f, 0);
	assert_int_equal(ht_merkle_frontier_root(&f, m->h, root), HT_OK);
	assert_memory_equal(root, mth(m, 0, 0), HT_HASH_BYTES);
	for (uint64_t L = 0; L < m->n; L++) {
		assert_int_equal(ht_merkle_frontier_append(&f, m->h, m->leaf[L],
							   out, &n_out),
				 HT_OK);
		assert_int_equal(n_out, 1 + __builtin_ctzll(L + 1));
		for (unsigned k = 0; k < n_out; k++) {
			uint64_t j = ((L + 1) >> k) - 1;
			uint64_t seq = ht_merkle_node_count(L) + k;
			assert_int_equal(ht_merkle_node_seq(k, j), seq);
			assert_memory_equal(out[k],
					    mth(m, j << k, (j + 1) << k),
					    HT_HASH_BYTES);
			memcpy(s->nodes[seq], out[k], HT_HASH_BYTES);
		}
		assert_int_equal(ht_merkle_node_count(L + 1),
				 ht_merkle_node_count(L) + n_out);
		assert_int_equal(f.size, L + 1);
		assert_int_equal(ht_merkle_frontier_root(&f, m->h, root),
				 HT_OK);
		assert_memory_equal(root, mth(m, 0, L + 1), HT_HASH_BYTES);
	}
	s->leaves = m->n;
}

/* ---- conformance vectors -------------------------------------------- */

static json_t *vectors; /* NULL when the shared folder is absent */

static int load_vectors(void **state)
{
	(void)state;
	const char *shared = getenv("HT_SHARED");
	char path[4096];
	json_error_t jerr;
	snprintf(path, sizeof path, "%s/conformance/merkle_rfc6962_sha256.json",
		 shared ? shared : "../shared");
	vectors = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!vectors)
		fprintf(stderr,
			"test_merkle: %s absent or unreadable (%s): "
			"conformance tests are skipped (set HT_SHARED)\n",
			path, jerr.text);
	return 0;
}

static int free_vectors(void **state)
{
	(void)state;
	json_decref(vectors);
	vectors = NULL;
	return 0;
}

#define NEED_VECTORS()                                                     \
	do {                                                               \
		if (!vectors) {                                            \
			fprintf(stderr, "  skipped: no conformance data\n"); \
			skip();                                            \
		}                                                          \
	} while (0)

static void hex32(json_t *v, uint8_t out[HT_HASH_BYTES])
{
	size_t n;
	const char *s = json_string_value(v);
	assert_non_null(s);
	assert_int_equal(ht_hex_decode(s, strlen(s), out, HT_HASH_BYTES, &n),
			 HT_OK);
	assert_int_equal(n, HT_HASH_BYTES);
}

static uint64_t juint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	assert_true(json_is_integer(v));
	assert_true(json_integer_value(v) >= 0);
	return (uint64_t)json_integer_value(v);
}

static size_t jproof(json_t *o, hash_t *out)
{
	json_t *a = json_object_get(o, "proof");
	assert_true(json_is_array(a));
	assert_true(json_array_size(a) <= HT_PROOF_HASHES_MAX);
	for (size_t i = 0; i < json_array_size(a); i++)
		hex32(json_array_get(a, i), out[i]);
	return json_array_size(a);
}

/* The vectors' leaves, hashed into a model and a store (SHA-256). */
static void vector_tree(struct ht_hasher *h, struct model *m,
			struct store *s)
{
	json_t *leaves = json_object_get(vectors, "leaves_hex");
	assert_true(json_is_array(leaves));
	model_init(m, h, json_array_size(leaves));
	for (size_t i = 0; i < json_array_size(leaves); i++) {
		uint8_t data[256];
		size_t n;
		const char *x = json_string_value(json_array_get(leaves, i));
		assert_non_null(x);
		assert_int_equal(ht_hex_decode(x, strlen(x), data, sizeof data,
					       &n),
				 HT_OK);
		assert_int_equal(ht_merkle_leaf_hash(h, data, n, m->leaf[i]),
				 HT_OK);
	}
	build_store(m, s);
}

static void test_vector_roots(void **state)
{
	(void)state;
	NEED_VECTORS();
	struct ht_hasher *h;
	struct model m;
	struct store s;
	assert_int_equal(ht_hasher_create(HT_HASH_SHA256, &h), HT_OK);
	vector_tree(h, &m, &s);
	json_t *roots = json_object_get(vectors, "roots_by_size");
	assert_true(json_object_size(roots) >= 9);
	const char *key;
	json_t *val;
	json_object_foreach(roots, key, val) {
		uint64_t n;
		hash_t want, got;
		assert_int_equal(ht_u64_parse(key, strlen(key), &n), HT_OK);
		assert_true(n <= s.leaves);
		hex32(val, want);
		s.limit = n;
		assert_int_equal(ht_merkle_root(h, n, store_node, &s, got),
				 HT_OK);
		assert_memory_equal(got, want, HT_HASH_BYTES);
		assert_memory_equal(mth(&m, 0, n), want, HT_HASH_BYTES);
	}
	model_free(&m);
	free(s.nodes);
	ht_hasher_destroy(h);
}

static bool incl_ok(struct ht_hasher *h, uint64_t index, uint64_t size,
		    const uint8_t *leaf, const hash_t *p, size_t n,
		    const uint8_t *root)
{
	enum ht_err err =
		ht_merkle_verify_inclusion(h, index, size, leaf, p, n, root);
	assert_true(err == HT_OK || err == HT_ERR_VERIFY);
	return err == HT_OK;
}

/* transparency-dev/merkle's corruptInclusionProof probes: all fail. */
static void inclusion_probes(struct ht_hasher *h, uint64_t index,
			     uint64_t size, const uint8_t *leaf,
			     const hash_t *proof, size_t n, const uint8_t *root)
{
	hash_t p[HT_PROOF_HASHES_MAX + 2], wrong;
	memset(wrong, 0x5a, sizeof wrong);
	memcpy(p, proof, n * HT_HASH_BYTES);
	assert_false(incl_ok(h, index - 1, size, leaf, p, n, root));
	assert_false(incl_ok(h, index + 1, size, leaf, p, n, root));
	assert_false(incl_ok(h, index ^ 2, size, leaf, p, n, root));
	assert_false(incl_ok(h, index, size * 2, leaf, p, n, root));
	assert_false(incl_ok(h, index, size / 2, leaf, p, n, root));
	assert_false(incl_ok(h, index, size, wrong, p, n, root));
	assert_false(incl_ok(h, index, size, leaf, p, n, wrong));
	/* garbage at the end, at the front */
	memcpy(p[n], root, HT_HASH_BYTES);
	assert_false(incl_ok(h, index, size, leaf, p, n + 1, root));
	memcpy(p[n], wrong, HT_HASH_BYTES);
	assert_false(incl_ok(h, index, size, leaf, p, n + 1, root));
	memcpy(p[0], root, HT_HASH_BYTES);
	memcpy(p + 1, proof, n * HT_HASH_BYTES);
	assert_false(incl_ok(h, index, size, leaf, p, n + 1, root));
	memcpy(p, proof, n * HT_HASH_BYTES);
	/* truncated, and each hash with one byte flipped */
	if (n > 0)
		assert_false(incl_ok(h, index, size, leaf, p, n - 1, root));
	for (size_t i = 0; i < n; i++) {
		for (size_t b = 0; b < HT_HASH_BYTES; b += 31) {
			p[i][b] ^= 0x01;
			assert_false(incl_ok(h, index, size, leaf, p, n, root));
			p[i][b] ^= 0x01;
		}
	}
	assert_true(incl_ok(h, index, size, leaf, p, n, root));
}

static void test_vector_inclusion(void **state)
{
	(void)state;
	NEED_VECTORS();
	struct ht_hasher *h;
	struct model m;
	struct store s;
	assert_int_equal(ht_hasher_create(HT_HASH_SHA256, &h), HT_OK);
	vector_tree(h, &m, &s);
	json_t *cases = json_object_get(vectors, "inclusion");
	assert_true(json_array_size(cases) >= 5);
	for (size_t c = 0; c < json_array_size(cases); c++) {
		json_t *v = json_array_get(cases, c);
		hash_t leaf, root, want[HT_PROOF_HASHES_MAX],
			got[HT_PROOF_HASHES_MAX];
		uint64_t index = juint(v, "leaf_index"),
			 size = juint(v, "tree_size");
		size_t n = jproof(v, want), got_n;
		hex32(json_object_get(v, "leaf_hash"), leaf);
		hex32(json_object_get(v, "root"), root);
		assert_true(size <= s.leaves);
		assert_memory_equal(m.leaf[index], leaf, HT_HASH_BYTES);
		s.limit = size;
		assert_int_equal(ht_merkle_inclusion_proof(h, index, size,
							   store_node, &s, got,
							   &got_n),
				 HT_OK);
		assert_int_equal(got_n, n);
		assert_int_equal(ht_merkle_inclusion_proof_count(index, size), n);
		assert_memory_equal(got, want, n * HT_HASH_BYTES);
		assert_true(incl_ok(h, index, size, leaf, want, n, root));
		inclusion_probes(h, index, size, leaf, want, n, root);
	}
	model_free(&m);
	free(s.nodes);
	ht_hasher_destroy(h);
}

static bool cons_ok(struct ht_hasher *h, uint64_t a, uint64_t b,
		    const uint8_t *ra, const uint8_t *rb, const hash_t *p,
		    size_t n)
{
	enum ht_err err = ht_merkle_verify_consistency(h, a, b, ra, rb, p, n);
	assert_true(err == HT_OK || err == HT_ERR_VERIFY);
	return err == HT_OK;
}

/* transparency-dev/merkle's corruptConsistencyProof probes; a probe that
 * is identical to the genuine claim (swapped equal roots, an "empty"
 * proof that already is empty) is not a corruption and is left out. */
static void consistency_probes(struct ht_hasher *h, uint64_t a, uint64_t b,
			       const uint8_t *ra, const uint8_t *rb,
			       const hash_t *proof, size_t n)
{
	hash_t p[HT_PROOF_HASHES_MAX + 2], wrong;
	memset(wrong, 0xa5, sizeof wrong);
	memcpy(p, proof, n * HT_HASH_BYTES);
	assert_false(cons_ok(h, a - 1, b, ra, rb, p, n));
	assert_false(cons_ok(h, a + 1, b, ra, rb, p, n));
	assert_false(cons_ok(h, a ^ 2, b, ra, rb, p, n));
	assert_false(cons_ok(h, a, b * 2, ra, rb, p, n));
	assert_false(cons_ok(h, a, b / 2, ra, rb, p, n));
	assert_false(cons_ok(h, a, b, wrong, rb, p, n));
	assert_false(cons_ok(h, a, b, ra, wrong, p, n));
	if (memcmp(ra, rb, HT_HASH_BYTES))
		assert_false(cons_ok(h, a, b, rb, ra, p, n));
	if (n > 0) {
		assert_false(cons_ok(h, a, b, ra, rb, p, 0));
		assert_false(cons_ok(h, a, b, ra, rb, p, n - 1));
	}
	const uint8_t *junk[3] = {wrong, ra, rb};
	for (int j = 0; j < 3; j++) {
		memcpy(p[n], junk[j], HT_HASH_BYTES);
		assert_false(cons_ok(h, a, b, ra, rb, p, n + 1));
		memcpy(p[0], junk[j], HT_HASH_BYTES);
		memcpy(p + 1, proof, n * HT_HASH_BYTES);
		assert_false(cons_ok(h, a, b, ra, rb, p, n + 1));
		memcpy(p, proof, n * HT_HASH_BYTES);
	}
	for (size_t i = 0; i < n; i++) {
		p[i][7] ^= 0x80;
		assert_false(cons_ok(h, a, b, ra, rb, p, n));
		p[i][7] ^= 0x80;
	}
	assert_true(cons_ok(h, a, b, ra, rb, p, n));
}

static void test_vector_consistency(void **state)
{
	(void)state;
	NEED_VECTORS();
	struct ht_hasher *h;
	struct model m;
	struct store s;
	assert_int_equal(ht_hasher_create(HT_HASH_SHA256, &h), HT_OK);
	vector_tree(h, &m, &s);
	json_t *cases = json_object_get(vectors, "consistency");
	assert_true(json_array_size(cases) >= 5);
	for (size_t c = 0; c < json_array_size(cases); c++) {
		json_t *v = json_array_get(cases, c);
		hash_t r1, r2, want[HT_PROOF_HASHES_MAX],
			got[HT_PROOF_HASHES_MAX];
		uint64_t a = juint(v, "size1"), b = juint(v, "size2");
		size_t n = jproof(v, want), got_n;
		hex32(json_object_get(v, "root1"), r1);
		hex32(json_object_get(v, "root2"), r2);
		assert_true(a <= b && b <= s.leaves);
		s.limit = b;
		assert_int_equal(ht_merkle_consistency_proof(h, a, b,
							     store_node, &s,
							     got, &got_n),
				 HT_OK);
		assert_int_equal(got_n, n);
		assert_int_equal(ht_merkle_consistency_proof_count(a, b), n);
		assert_memory_equal(got, want, n * HT_HASH_BYTES);
		assert_memory_equal(mth(&m, 0, a), r1, HT_HASH_BYTES);
		assert_memory_equal(mth(&m, 0, b), r2, HT_HASH_BYTES);
		assert_true(cons_ok(h, a, b, r1, r2, want, n));
		consistency_probes(h, a, b, r1, r2, want, n);
	}
	model_free(&m);
	free(s.nodes);
	ht_hasher_destroy(h);
}

/* ---- model test over random trees ----------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
	/* splitmix64: reproducible, seeded below */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static unsigned bit_length(uint64_t n)
{
	return n ? 64 - (unsigned)__builtin_clzll(n) : 0;
}

/* A proof for (index, size) accepted for another claim must be that
 * claim's own proof: the verifier's answer is exactly "equal to the
 * naive proof". */
static void check_inclusion(struct model *m, struct store *s, uint64_t index,
			    uint64_t size)
{
	hash_t got[HT_PROOF_HASHES_MAX + 1], want[HT_PROOF_HASHES_MAX];
	size_t n, want_n = 0;
	s->limit = size;
	s->calls = 0;
	assert_int_equal(ht_merkle_inclusion_proof(m->h, index, size,
						   store_node, s, got, &n),
			 HT_OK);
	assert_true(s->calls <= 2 * bit_length(size) + 1);
	naive_path(m, index, 0, size, want, &want_n);
	assert_int_equal(n, want_n);
	assert_int_equal(ht_merkle_inclusion_proof_count(index, size), n);
	assert_memory_equal(got, want, n * HT_HASH_BYTES);
	const uint8_t *root = mth(m, 0, size), *leaf = m->leaf[index];
	assert_true(incl_ok(m->h, index, size, leaf, got, n, root));

	/* another leaf of the same tree, another tree size with its true
	 * root: accepted exactly when the proofs coincide */
	uint64_t i2 = rng() % size, s2 = 1 + rng() % m->n;
	if (i2 != index)
		assert_false(incl_ok(m->h, i2, size, m->leaf[i2], got, n,
				     root));
	if (index < s2 && s2 != size) {
		hash_t p2[HT_PROOF_HASHES_MAX];
		size_t n2 = 0;
		naive_path(m, index, 0, s2, p2, &n2);
		bool same = n2 == n && !memcmp(p2, got, n * HT_HASH_BYTES);
		assert_int_equal(incl_ok(m->h, index, s2, leaf, got, n,
					 mth(m, 0, s2)),
				 same);
	}
	if (n > 0) {
		size_t i = rng() % n, b = rng() % HT_HASH_BYTES;
		got[i][b] ^= (uint8_t)(1u << (rng() % 8));
		assert_false(incl_ok(m->h, index, size, leaf, got, n, root));
		got[i][b] = want[i][b];
		assert_false(incl_ok(m->h, index, size, leaf, got, n - 1,
				     root));
	}
	memcpy(got[n], root, HT_HASH_BYTES);
	assert_false(incl_ok(m->h, index, size, leaf, got, n + 1, root));
}

static void check_consistency(struct model *m, struct store *s, uint64_t a,
			      uint64_t b)
{
	hash_t got[HT_PROOF_HASHES_MAX + 1], want[HT_PROOF_HASHES_MAX];
	size_t n, want_n;
	s->limit = b;
	s->calls = 0;
	assert_int_equal(ht_merkle_consistency_proof(m->h, a, b, store_node, s,
						     got, &n),
			 HT_OK);
	assert_true(s->calls <= 2 * bit_length(b) + 2);
	naive_consistency(m, a, b, want, &want_n);
	assert_int_equal(n, want_n);
	assert_int_equal(ht_merkle_consistency_proof_count(a, b), n);
	assert_memory_equal(got, want, n * HT_HASH_BYTES);
	const uint8_t *ra = mth(m, 0, a), *rb = mth(m, 0, b);
	assert_true(cons_ok(m->h, a, b, ra, rb, got, n));

	/* other sizes with their true roots: accepted exactly when the
	 * proofs coincide */
	uint64_t a2 = rng() % (b + 1);
	if (a2 != a) {
		hash_t p2[HT_PROOF_HASHES_MAX];
		size_t n2;
		naive_consistency(m, a2, b, p2, &n2);
		bool same = n2 == n && !memcmp(p2, got, n * HT_HASH_BYTES);
		assert_int_equal(cons_ok(m->h, a2, b, mth(m, 0, a2), rb, got,
					 n),
				 same);
	}
	if (a < b && a > 0) {
		size_t i = rng() % n, x = rng() % HT_HASH_BYTES;
		got[i][x] ^= (uint8_t)(1u << (rng() % 8));
		assert_false(cons_ok(m->h, a, b, ra, rb, got, n));
		got[i][x] = want[i][x];
		assert_false(cons_ok(m->h, a, b, ra, rb, got, n - 1));
		assert_false(cons_ok(m->h, a, b, rb, ra, got, n));
	}
	memcpy(got[n], rb, HT_HASH_BYTES);
	assert_false(cons_ok(m->h, a, b, ra, rb, got, n + 1));
}

/* Range proofs: verify against the naive root, hold the inclusion proof's
 * hashes for one leaf, and fail for a flipped hash, a missing or extra
 * hash, a shifted range or a wrong size. */
static void check_range(struct model *m, struct store *s, uint64_t first,
			uint64_t count, uint64_t size)
{
	hash_t got[HT_PROOF_HASHES_MAX + 1];
	size_t n = 0;
	s->limit = size;
	assert_int_equal(ht_merkle_range_proof(m->h, first, count, size,
					       store_node, s, got, &n),
			 HT_OK);
	assert_true(n <= 2 * (size_t)bit_length(size));
	const uint8_t *root = mth(m, 0, size);
	const uint8_t(*leaves)[HT_HASH_BYTES] =
		(const uint8_t(*)[HT_HASH_BYTES])m->leaf + first;
	assert_int_equal(ht_merkle_verify_range(m->h, first, count, size,
						leaves, (const uint8_t(*)[HT_HASH_BYTES])got,
						n, root),
			 HT_OK);
	if (count == 1) {
		hash_t want[HT_PROOF_HASHES_MAX];
		size_t want_n = 0;
		naive_path(m, first, 0, size, want, &want_n);
		assert_int_equal(n, want_n);
		for (size_t i = 0; i < n; i++) {
			bool found = false;
			for (size_t j = 0; j < n && !found; j++)
				found = !memcmp(got[j], want[i], HT_HASH_BYTES);
			assert_true(found);
		}
	}
	const uint8_t(*g)[HT_HASH_BYTES] = (const uint8_t(*)[HT_HASH_BYTES])got;
	if (first + count < size)
		assert_int_not_equal(ht_merkle_verify_range(m->h, first + 1,
							    count, size, leaves,
							    g, n, root),
				     HT_OK);
	if (n > 0) {
		size_t i = rng() % n, b = rng() % HT_HASH_BYTES;
		got[i][b] ^= 1;
		assert_int_not_equal(ht_merkle_verify_range(m->h, first, count,
							    size, leaves, g, n,
							    root),
				     HT_OK);
		got[i][b] ^= 1;
		assert_int_not_equal(ht_merkle_verify_range(m->h, first, count,
							    size, leaves, g,
							    n - 1, root),
				     HT_OK);
	}
	memcpy(got[n], root, HT_HASH_BYTES);
	assert_int_not_equal(ht_merkle_verify_range(m->h, first, count, size,
						    leaves, g, n + 1, root),
			     HT_OK);
	/* the true root of another size (with this root it could verify:
	 * trees of sizes 3 and 4 share the walk for leaf 0) */
	if (size < m->n && ht_merkle_verify_range(m->h, first, count, size + 1,
						  leaves, g, n,
						  mth(m, 0, size + 1)) == HT_OK)
		fail_msg("range %llu+%llu of %llu accepted for size + 1 (n %zu)",
			 (unsigned long long)first, (unsigned long long)count,
			 (unsigned long long)size, n);
}

static void model_run(enum ht_hash_alg alg, size_t n_leaves)
{
	enum { FULL = 48, SAMPLES = 1500 };
	struct ht_hasher *h;
	struct model m;
	struct store s;
	assert_int_equal(ht_hasher_create(alg, &h), HT_OK);
	model_init(&m, h, n_leaves);
	for (size_t i = 0; i < n_leaves; i++) {
		/* distinct leaves (the index first, then random bytes): with
		 * two equal leaves a proof may honestly verify for both */
		uint8_t data[40];
		size_t len = 4 + rng() % (sizeof data - 4);
		memcpy(data, &(uint32_t){(uint32_t)i}, 4);
		for (size_t j = 4; j < len; j++)
			data[j] = (uint8_t)rng();
		assert_int_equal(ht_merkle_leaf_hash(h, data, len, m.leaf[i]),
				 HT_OK);
	}
	build_store(&m, &s);

	/* every root, every pair in the small trees, samples in the big */
	for (uint64_t size = 0; size <= n_leaves; size++) {
		hash_t root;
		s.limit = size;
		s.calls = 0;
		assert_int_equal(ht_merkle_root(h, size, store_node, &s, root),
				 HT_OK);
		assert_int_equal(s.calls, __builtin_popcountll(size));
		assert_memory_equal(root, mth(&m, 0, size), HT_HASH_BYTES);
	}
	for (uint64_t size = 1; size <= FULL && size <= n_leaves; size++)
		for (uint64_t i = 0; i < size; i++)
			check_inclusion(&m, &s, i, size);
	for (uint64_t b = 0; b <= FULL && b <= n_leaves; b++)
		for (uint64_t a = 0; a <= b; a++)
			check_consistency(&m, &s, a, b);
	for (uint64_t size = 1; size <= 24 && size <= n_leaves; size++)
		for (uint64_t a = 0; a < size; a++)
			for (uint64_t c = 1; a + c <= size; c++)
				check_range(&m, &s, a, c, size);
	for (int k = 0; k < SAMPLES; k++) {
		uint64_t size = 1 + rng() % n_leaves;
		uint64_t a = rng() % size;
		check_range(&m, &s, a, 1 + rng() % (size - a), size);
		check_inclusion(&m, &s, rng() % size, size);
		check_consistency(&m, &s, rng() % (size + 1), size);
	}
	model_free(&m);
	free(s.nodes);
	ht_hasher_destroy(h);
}

static void test_model_sha256(void **state)
{
	(void)state;
	rng_state = 1;
	model_run(HT_HASH_SHA256, 300);
	model_run(HT_HASH_SHA256, 1 + rng() % 300);
}

static void test_model_sm3(void **state)
{
	(void)state;
	rng_state = 2;
	model_run(HT_HASH_SM3, 257);
	model_run(HT_HASH_SM3, 1 + rng() % 300);
}

/* ---- numbering, frontier reload, errors, huge trees ----------------- */

static void test_node_numbering(void **state)
{
	(void)state;
	/* the header's example: leaf 3 completes (0,3), (1,1), (2,0) */
	assert_int_equal(ht_merkle_node_seq(0, 0), 0);
	assert_int_equal(ht_merkle_node_seq(0, 1), 1);
	assert_int_equal(ht_merkle_node_seq(1, 0), 2);
	assert_int_equal(ht_merkle_node_seq(0, 2), 3);
	assert_int_equal(ht_merkle_node_seq(0, 3), 4);
	assert_int_equal(ht_merkle_node_seq(1, 1), 5);
	assert_int_equal(ht_merkle_node_seq(2, 0), 6);
	assert_int_equal(ht_merkle_node_count(0), 0);
	assert_int_equal(ht_merkle_node_count(4), 7);
	assert_int_equal(ht_merkle_node_count(5), 8);
	/* the last node of a tree of 2^k leaves is its root: count - 1 */
	for (unsigned k = 0; k < 63; k++)
		assert_int_equal(ht_merkle_node_seq(k, 0),
				 ht_merkle_node_count((uint64_t)1 << k) - 1);
	/* the numbers are a bijection onto [0, count) in leaf order */
	uint64_t next = 0;
	for (uint64_t L = 0; L < 5000; L++)
		for (unsigned k = 0; k <= (unsigned)__builtin_ctzll(L + 1); k++)
			assert_int_equal(ht_merkle_node_seq(k, ((L + 1) >> k) - 1),
					 next++);
	assert_int_equal(next, ht_merkle_node_count(5000));
}

/* A frontier loaded from stored nodes continues exactly like the one
 * that appended every leaf. */
static void test_frontier_load(void **state)
{
	(void)state;
	struct ht_hasher *h;
	struct model m;
	struct store s;
	rng_state = 3;
	assert_int_equal(ht_hasher_create(HT_HASH_SM3, &h), HT_OK);
	model_init(&m, h, 100);
	for (size_t i = 0; i < 100; i++) {
		uint8_t b = (uint8_t)i;
		assert_int_equal(ht_merkle_leaf_hash(h, &b, 1, m.leaf[i]), HT_OK);
	}
	build_store(&m, &s);
	for (uint64_t size = 0; size <= 100; size += 1 + rng() % 7) {
		struct ht_merkle_frontier f;
		hash_t out[65], root;
		unsigned n_out;
		s.limit = size;
		s.calls = 0;
		assert_int_equal(ht_merkle_frontier_load(&f, size, store_node,
							 &s),
				 HT_OK);
		assert_int_equal(s.calls, __builtin_popcountll(size));
		for (uint64_t L = size; L < 100; L++) {
			assert_int_equal(ht_merkle_frontier_append(&f, h,
								   m.leaf[L],
								   out, &n_out),
					 HT_OK);
			assert_memory_equal(out[n_out - 1],
					    s.nodes[ht_merkle_node_count(L) +
						    n_out - 1],
					    HT_HASH_BYTES);
		}
		assert_int_equal(ht_merkle_frontier_root(&f, h, root), HT_OK);
		assert_memory_equal(root, mth(&m, 0, 100), HT_HASH_BYTES);
	}
	model_free(&m);
	free(s.nodes);
	ht_hasher_destroy(h);
}

/* Callback errors come back unchanged; bad sizes are argument errors. */
static void test_errors(void **state)
{
	(void)state;
	struct ht_hasher *h;
	struct model m;
	struct store s;
	hash_t root, proof[HT_PROOF_HASHES_MAX];
	size_t n;
	struct ht_merkle_frontier f;
	assert_int_equal(ht_hasher_create(HT_HASH_SHA256, &h), HT_OK);
	model_init(&m, h, 100);
	for (size_t i = 0; i < 100; i++) {
		uint8_t b = (uint8_t)i;
		assert_int_equal(ht_merkle_leaf_hash(h, &b, 1, m.leaf[i]), HT_OK);
	}
	build_store(&m, &s);
	s.limit = 100;
	s.fail = HT_ERR_IO;
	assert_int_equal(ht_merkle_root(h, 77, store_node, &s, root),
			 HT_ERR_IO);
	assert_int_equal(ht_merkle_inclusion_proof(h, 5, 77, store_node, &s,
						   proof, &n),
			 HT_ERR_IO);
	assert_int_equal(ht_merkle_consistency_proof(h, 5, 77, store_node, &s,
						     proof, &n),
			 HT_ERR_IO);
	assert_int_equal(ht_merkle_frontier_load(&f, 77, store_node, &s),
			 HT_ERR_IO);
	s.fail = HT_OK;
	/* argument errors */
	assert_int_equal(ht_merkle_inclusion_proof(h, 77, 77, store_node, &s,
						   proof, &n),
			 HT_ERR_INVALID);
	assert_int_equal(ht_merkle_consistency_proof(h, 78, 77, store_node, &s,
						     proof, &n),
			 HT_ERR_INVALID);
	assert_int_equal(ht_merkle_consistency_proof(h, 77, 77, store_node, &s,
						     proof, &n),
			 HT_OK);
	assert_int_equal(n, 0);
	/* size 0 and the empty tree */
	assert_int_equal(ht_merkle_root(h, 0, store_node, &s, root), HT_OK);
	assert_memory_equal(root, mth(&m, 0, 0), HT_HASH_BYTES);
	assert_true(cons_ok(h, 0, 77, root, mth(&m, 0, 77), proof, 0));
	assert_false(cons_ok(h, 0, 77, mth(&m, 0, 1), mth(&m, 0, 77), proof,
			     0));
	model_free(&m);
	free(s.nodes);
	ht_hasher_destroy(h);
}

/*
 * Trees of ~2^62 leaves cannot be built, but one can be described: every
 * leaf is c_0 except leaf x, which is d_0. Then every complete subtree of
 * level k is c_k = H(c_{k-1}, c_{k-1}) except the one holding x, d_k,
 * built along x's path. The callback serves those in O(1), so proofs and
 * roots of the real tree these leaves make can be computed through it and
 * checked by the independent RFC 9162 verification, in O(log n) calls.
 */
struct fake {
	hash_t c[64], d[64];
	uint64_t x;
	unsigned calls;
};

static enum ht_err fake_node(void *ctx, unsigned level, uint64_t index,
			     uint8_t out[HT_HASH_BYTES])
{
	struct fake *f = ctx;
	f->calls++;
	assert_true(level < 64);
	memcpy(out, index == f->x >> level ? f->d[level] : f->c[level],
	       HT_HASH_BYTES);
	return HT_OK;
}

static void fake_init(struct fake *f, struct ht_hasher *h, uint64_t x)
{
	f->x = x;
	f->calls = 0;
	assert_int_equal(ht_merkle_leaf_hash(h, "", 0, f->c[0]), HT_OK);
	assert_int_equal(ht_merkle_leaf_hash(h, "x", 1, f->d[0]), HT_OK);
	for (unsigned k = 1; k < 64; k++) {
		bool right = x >> (k - 1) & 1;
		assert_int_equal(ht_merkle_node_hash(h, f->c[k - 1],
						     f->c[k - 1], f->c[k]),
				 HT_OK);
		assert_int_equal(ht_merkle_node_hash(h,
						     right ? f->c[k - 1]
							   : f->d[k - 1],
						     right ? f->d[k - 1]
							   : f->c[k - 1],
						     f->d[k]),
				 HT_OK);
	}
}

static void test_huge_trees(void **state)
{
	(void)state;
	struct ht_hasher *h;
	struct fake f;
	hash_t proof[HT_PROOF_HASHES_MAX], r1, r2;
	size_t n;
	assert_int_equal(ht_hasher_create(HT_HASH_SHA256, &h), HT_OK);
	const uint64_t sizes[] = {
		((uint64_t)1 << 62) + ((uint64_t)1 << 40) + 7,
		((uint64_t)1 << 62) - 1,
		((uint64_t)1 << 33) + 1,
		((uint64_t)1 << 63) - 1,
	};
	rng_state = 4;
	for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
		uint64_t size = sizes[t];
		for (int k = 0; k < 20; k++) {
			fake_init(&f, h, k == 0 ? size - 1 : rng() % size);
			uint64_t old = k == 1 ? 1 : 1 + rng() % (size - 1);
			assert_int_equal(ht_merkle_root(h, size, fake_node, &f,
							r2),
					 HT_OK);
			assert_int_equal(f.calls, __builtin_popcountll(size));
			f.calls = 0;
			assert_int_equal(ht_merkle_inclusion_proof(
						 h, f.x, size, fake_node, &f,
						 proof, &n),
					 HT_OK);
			assert_true(f.calls <= 2 * 64 + 1);
			assert_int_equal(n, ht_merkle_inclusion_proof_count(
						    f.x, size));
			assert_true(incl_ok(h, f.x, size, f.d[0], proof, n, r2));
			assert_false(incl_ok(h, f.x ^ 1, size, f.d[0], proof,
					     n, r2));
			assert_false(incl_ok(h, f.x, size, f.c[0], proof, n,
					     r2));

			assert_int_equal(ht_merkle_root(h, old, fake_node, &f,
							r1),
					 HT_OK);
			f.calls = 0;
			assert_int_equal(ht_merkle_consistency_proof(
						 h, old, size, fake_node, &f,
						 proof, &n),
					 HT_OK);
			assert_true(f.calls <= 2 * 64 + 2);
			assert_true(n <= HT_PROOF_HASHES_MAX);
			assert_true(cons_ok(h, old, size, r1, r2, proof, n));
			assert_false(cons_ok(h, old, size, r2, r1, proof, n));
			if (n > 0) {
				proof[n - 1][0] ^= 1;
				assert_false(cons_ok(h, old, size, r1, r2,
						     proof, n));
			}
		}
	}
	ht_hasher_destroy(h);
}

/* Proofs longer than HT_PROOF_HASHES_MAX are refused outright. */
static void test_proof_too_long(void **state)
{
	(void)state;
	struct ht_hasher *h;
	static hash_t p[HT_PROOF_HASHES_MAX + 1];
	hash_t x = {0};
	assert_int_equal(ht_hasher_create(HT_HASH_SM3, &h), HT_OK);
	assert_false(incl_ok(h, 0, UINT64_MAX, x, p, HT_PROOF_HASHES_MAX + 1,
			     x));
	assert_false(cons_ok(h, 3, UINT64_MAX, x, x, p,
			     HT_PROOF_HASHES_MAX + 1));
	ht_hasher_destroy(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector_roots),
		cmocka_unit_test(test_vector_inclusion),
		cmocka_unit_test(test_vector_consistency),
		cmocka_unit_test(test_node_numbering),
		cmocka_unit_test(test_frontier_load),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_model_sha256),
		cmocka_unit_test(test_model_sm3),
		cmocka_unit_test(test_huge_trees),
		cmocka_unit_test(test_proof_too_long),
	};
	return cmocka_run_group_tests(tests, load_vectors, free_vectors);
}

/*
 * merkle.c — RFC 9162 Merkle tree hashing, proofs and their verification,
 * the completion-order node numbering and the incremental frontier.
 *
 * Owner: journal. Pure functions over hashes: it owns no storage and no
 * hasher (callers pass both). Proof generation reads node hashes through
 * the caller's callback, which only ever serves COMPLETE subtrees; the
 * incomplete subtrees on a tree's right edge are composed here from
 * complete ones, so a proof costs O(log n) callback calls. It must never
 * accept a proof longer than HT_PROOF_HASHES_MAX or loop on outside input
 * without a bound.
 */
#include "huitong/merkle.h"

#include <string.h>

/* Largest power of two strictly below n (n >= 2). */
static uint64_t split_point(uint64_t n)
{
	HT_ASSERT(n >= 2);
	return (uint64_t)1 << (63 - __builtin_clzll(n - 1));
}

/* ---- node numbering ------------------------------------------------- */

uint64_t ht_merkle_node_seq(unsigned level, uint64_t index)
{
	HT_ASSERT(level < 64);
	/* The last leaf L of the subtree; trees stay below 2^63 leaves so
	 * 2L - popcount(L) + level fits in 64 bits. */
	unsigned __int128 last = ((unsigned __int128)index + 1) << level;
	HT_ASSERT(last <= ((uint64_t)1 << 63));
	uint64_t l = (uint64_t)last - 1;
	return 2 * l - (uint64_t)__builtin_popcountll(l) + level;
}

uint64_t ht_merkle_node_count(uint64_t n)
{
	HT_ASSERT(n <= ((uint64_t)1 << 63));
	return 2 * n - (uint64_t)__builtin_popcountll(n);
}

/* ---- hashing -------------------------------------------------------- */

static const uint8_t leaf_prefix = 0x00, node_prefix = 0x01;

enum ht_err ht_merkle_leaf_hash(struct ht_hasher *h, const void *data,
				size_t len, uint8_t out[HT_HASH_BYTES])
{
	return ht_hash3(h, &leaf_prefix, 1, data, len, NULL, 0, out);
}

enum ht_err ht_merkle_node_hash(struct ht_hasher *h,
				const uint8_t left[HT_HASH_BYTES],
				const uint8_t right[HT_HASH_BYTES],
				uint8_t out[HT_HASH_BYTES])
{
	return ht_hash3(h, &node_prefix, 1, left, HT_HASH_BYTES, right,
			HT_HASH_BYTES, out);
}

static enum ht_err empty_hash(struct ht_hasher *h, uint8_t out[HT_HASH_BYTES])
{
	return ht_hash3(h, NULL, 0, NULL, 0, NULL, 0, out);
}

/*
 * MTH(D[lo:hi]) for a range that starts on a multiple of the largest
 * power of two not above its width (every range RFC 9162's recursion
 * produces does). The range splits into the complete subtrees of the
 * binary digits of its width, largest first; RFC 9162 hashes them right
 * to left. popcount(hi - lo) callback calls.
 */
static enum ht_err range_hash(struct ht_hasher *h, uint64_t lo, uint64_t hi,
			      ht_merkle_node_fn node, void *ctx,
			      uint8_t out[HT_HASH_BYTES])
{
	HT_ASSERT(lo < hi);
	uint64_t width = hi - lo;
	unsigned top = 63 - (unsigned)__builtin_clzll(width);
	HT_ASSERT((lo & (((uint64_t)1 << top) - 1)) == 0);
	uint8_t piece[HT_HASH_BYTES];
	bool have = false;
	for (unsigned k = 0; k <= top; k++) {
		if (!(width >> k & 1))
			continue;
		/* the pieces above level k come first */
		uint64_t above = k == 63 ? 0 : width >> (k + 1) << (k + 1);
		enum ht_err err = node(ctx, k, (lo + above) >> k,
				       have ? piece : out);
		if (err)
			return err;
		if (have) {
			err = ht_merkle_node_hash(h, piece, out, out);
			if (err)
				return err;
		}
		have = true;
	}
	HT_ASSERT(have);
	return HT_OK;
}

enum ht_err ht_merkle_root(struct ht_hasher *h, uint64_t n,
			   ht_merkle_node_fn node, void *ctx,
			   uint8_t out[HT_HASH_BYTES])
{
	HT_ASSERT(h != NULL);
	if (n == 0)
		return empty_hash(h, out);
	HT_ASSERT(node != NULL);
	return range_hash(h, 0, n, node, ctx, out);
}

/* ---- proof generation ----------------------------------------------- */

struct range {
	uint64_t lo, hi;
};

/*
 * The subtree ranges of a proof, in RFC 9162 order (deepest first), are
 * found top-down and so collected in reverse; at most one per level plus
 * the consistency proof's own subtree.
 */
#define PATH_RANGES_MAX 65

/* PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, as ranges, top-down. */
static size_t inclusion_ranges(uint64_t index, uint64_t size,
			       struct range r[PATH_RANGES_MAX])
{
	uint64_t lo = 0, hi = size;
	size_t n = 0;
	HT_ASSERT(index < size);
	while (hi - lo > 1) {
		uint64_t k = split_point(hi - lo);
		HT_ASSERT(n < PATH_RANGES_MAX);
		if (index - lo < k) {
			r[n++] = (struct range){lo + k, hi};
			hi = lo + k;
		} else {
			r[n++] = (struct range){lo, lo + k};
			lo += k;
		}
	}
	return n;
}

/* PROOF(old, D[0:new]) of RFC 9162 §2.1.4.1 (SUBPROOF with b = true), as
 * ranges, top-down; 0 < old < new. */
static size_t consistency_ranges(uint64_t old_size, uint64_t new_size,
				 struct range r[PATH_RANGES_MAX])
{
	uint64_t lo = 0, hi = new_size;
	bool whole = true; /* b: the old tree is D[lo:old] of the recursion */
	size_t n = 0;
	HT_ASSERT(0 < old_size && old_size < new_size);
	while (old_size != hi) {
		uint64_t k = split_point(hi - lo);
		HT_ASSERT(n < PATH_RANGES_MAX);
		if (old_size - lo <= k) {
			r[n++] = (struct range){lo + k, hi};
			hi = lo + k;
		} else {
			r[n++] = (struct range){lo, lo + k};
			lo += k;
			whole = false;
		}
	}
	if (!whole) {
		HT_ASSERT(n < PATH_RANGES_MAX);
		r[n++] = (struct range){lo, hi};
	}
	return n;
}

/* Hash the ranges into proof in reverse (deepest first). */
static enum ht_err ranges_hash(struct ht_hasher *h, const struct range *r,
			       size_t n, ht_merkle_node_fn node, void *ctx,
			       uint8_t proof[][HT_HASH_BYTES], size_t *count)
{
	HT_ASSERT(n <= HT_PROOF_HASHES_MAX);
	for (size_t i = 0; i < n; i++) {
		const struct range *x = &r[n - 1 - i];
		enum ht_err err = range_hash(h, x->lo, x->hi, node, ctx,
					     proof[i]);
		if (err)
			return err;
	}
	*count = n;
	return HT_OK;
}

size_t ht_merkle_inclusion_proof_count(uint64_t index, uint64_t size)
{
	struct range r[PATH_RANGES_MAX];
	if (index >= size)
		return 0;
	return inclusion_ranges(index, size, r);
}

size_t ht_merkle_consistency_proof_count(uint64_t old_size, uint64_t new_size)
{
	struct range r[PATH_RANGES_MAX];
	if (old_size == 0 || old_size >= new_size)
		return 0;
	return consistency_ranges(old_size, new_size, r);
}

enum ht_err ht_merkle_inclusion_proof(struct ht_hasher *h, uint64_t index,
				      uint64_t size, ht_merkle_node_fn node,
				      void *ctx,
				      uint8_t proof[][HT_HASH_BYTES],
				      size_t *count)
{
	struct range r[PATH_RANGES_MAX];
	HT_ASSERT(h != NULL && node != NULL);
	if (index >= size)
		return HT_ERR_INVALID;
	size_t n = inclusion_ranges(index, size, r);
	return ranges_hash(h, r, n, node, ctx, proof, count);
}

enum ht_err ht_merkle_consistency_proof(struct ht_hasher *h, uint64_t old_size,
					uint64_t new_size,
					ht_merkle_node_fn node, void *ctx,
					uint8_t proof[][HT_HASH_BYTES],
					size_t *count)
{
	struct range r[PATH_RANGES_MAX];
	HT_ASSERT(h != NULL && node != NULL);
	if (old_size > new_size)
		return HT_ERR_INVALID;
	if (old_size == 0 || old_size == new_size) {
		*count = 0;
		return HT_OK;
	}
	size_t n = consistency_ranges(old_size, new_size, r);
	return ranges_hash(h, r, n, node, ctx, proof, count);
}

/* ---- verification --------------------------------------------------- */

static bool hash_equal(const uint8_t a[HT_HASH_BYTES],
		       const uint8_t b[HT_HASH_BYTES])
{
	return memcmp(a, b, HT_HASH_BYTES) == 0;
}

enum ht_err ht_merkle_verify_inclusion(struct ht_hasher *h, uint64_t index,
				       uint64_t size,
				       const uint8_t leaf_hash[HT_HASH_BYTES],
				       const uint8_t proof[][HT_HASH_BYTES],
				       size_t count,
				       const uint8_t root[HT_HASH_BYTES])
{
	HT_ASSERT(h != NULL);
	if (index >= size || count > HT_PROOF_HASHES_MAX)
		return HT_ERR_VERIFY;
	uint64_t fn = index, sn = size - 1;
	uint8_t r[HT_HASH_BYTES];
	memcpy(r, leaf_hash, HT_HASH_BYTES);
	for (size_t i = 0; i < count; i++) {
		enum ht_err err;
		if (sn == 0)
			return HT_ERR_VERIFY;
		if ((fn & 1) || fn == sn) {
			err = ht_merkle_node_hash(h, proof[i], r, r);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			err = ht_merkle_node_hash(h, r, proof[i], r);
		}
		if (err)
			return err;
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && hash_equal(r, root) ? HT_OK : HT_ERR_VERIFY;
}

/* The RFC 9162 §2.1.4.2 walk for 0 < old_size < new_size over the path
 * (old root prepended when old_size is a power of two). */
static enum ht_err consistency_walk(struct ht_hasher *h, uint64_t old_size,
				    uint64_t new_size,
				    const uint8_t *first,
				    const uint8_t proof[][HT_HASH_BYTES],
				    size_t count, uint8_t fr[HT_HASH_BYTES],
				    uint8_t sr[HT_HASH_BYTES])
{
	uint64_t fn = old_size - 1, sn = new_size - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	memcpy(fr, first, HT_HASH_BYTES);
	memcpy(sr, first, HT_HASH_BYTES);
	for (size_t i = 0; i < count; i++) {
		enum ht_err err = HT_OK;
		if (sn == 0)
			return HT_ERR_VERIFY;
		if ((fn & 1) || fn == sn) {
			err = ht_merkle_node_hash(h, proof[i], fr, fr);
			if (!err)
				err = ht_merkle_node_hash(h, proof[i], sr, sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			err = ht_merkle_node_hash(h, sr, proof[i], sr);
		}
		if (err)
			return err;
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 ? HT_OK : HT_ERR_VERIFY;
}

enum ht_err ht_merkle_verify_consistency(struct ht_hasher *h, uint64_t old_size,
					 uint64_t new_size,
					 const uint8_t old_root[HT_HASH_BYTES],
					 const uint8_t new_root[HT_HASH_BYTES],
					 const uint8_t proof[][HT_HASH_BYTES],
					 size_t count)
{
	uint8_t fr[HT_HASH_BYTES], sr[HT_HASH_BYTES];
	HT_ASSERT(h != NULL);
	if (old_size > new_size || count > HT_PROOF_HASHES_MAX)
		return HT_ERR_VERIFY;
	if (old_size == new_size) /* same tree: no proof, same root */
		return count == 0 && hash_equal(old_root, new_root)
			       ? HT_OK
			       : HT_ERR_VERIFY;
	if (old_size == 0) { /* the empty tree is a prefix of any tree */
		enum ht_err err = empty_hash(h, fr);
		if (err)
			return err;
		return count == 0 && hash_equal(old_root, fr) ? HT_OK
							      : HT_ERR_VERIFY;
	}
	if (count == 0)
		return HT_ERR_VERIFY;
	/* When old_size is a power of two the old tree is a node of the new
	 * one and the proof omits it: the walk starts from old_root. */
	bool pow2 = (old_size & (old_size - 1)) == 0;
	const uint8_t *first = pow2 ? old_root : proof[0];
	const uint8_t(*rest)[HT_HASH_BYTES] = pow2 ? proof : proof + 1;
	enum ht_err err = consistency_walk(h, old_size, new_size, first, rest,
					   pow2 ? count : count - 1, fr, sr);
	if (err)
		return err;
	return hash_equal(fr, old_root) && hash_equal(sr, new_root)
		       ? HT_OK
		       : HT_ERR_VERIFY;
}

/* ---- frontier ------------------------------------------------------- */

void ht_merkle_frontier_init(struct ht_merkle_frontier *f, uint64_t size)
{
	HT_ASSERT(f != NULL);
	memset(f, 0, sizeof *f);
	f->size = size;
}

enum ht_err ht_merkle_frontier_load(struct ht_merkle_frontier *f,
				    uint64_t size, ht_merkle_node_fn node,
				    void *ctx)
{
	HT_ASSERT(f != NULL);
	ht_merkle_frontier_init(f, size);
	for (unsigned k = 0; k < 64; k++) {
		if (!(size >> k & 1))
			continue;
		HT_ASSERT(node != NULL);
		enum ht_err err = node(ctx, k, (size >> k) - 1, f->hash[k]);
		if (err)
			return err;
	}
	return HT_OK;
}

enum ht_err ht_merkle_frontier_append(struct ht_merkle_frontier *f,
				      struct ht_hasher *h,
				      const uint8_t leaf_hash[HT_HASH_BYTES],
				      uint8_t out_nodes[][HT_HASH_BYTES],
				      unsigned *n_out)
{
	HT_ASSERT(f != NULL && h != NULL);
	if (f->size >= ((uint64_t)1 << 63))
		return HT_ERR_LIMIT;
	unsigned n = 0;
	memcpy(out_nodes[n++], leaf_hash, HT_HASH_BYTES);
	/* Each set low bit of size is a pending left sibling this leaf's
	 * subtree now completes. */
	unsigned k = 0;
	while (f->size >> k & 1) {
		enum ht_err err = ht_merkle_node_hash(h, f->hash[k],
						      out_nodes[n - 1],
						      out_nodes[n]);
		if (err)
			return err;
		n++;
		k++;
	}
	HT_ASSERT(n == 1 + (unsigned)__builtin_ctzll(f->size + 1));
	memcpy(f->hash[k], out_nodes[n - 1], HT_HASH_BYTES);
	f->size++;
	*n_out = n;
	return HT_OK;
}

enum ht_err ht_merkle_frontier_root(const struct ht_merkle_frontier *f,
				    struct ht_hasher *h,
				    uint8_t out[HT_HASH_BYTES])
{
	HT_ASSERT(f != NULL && h != NULL);
	if (f->size == 0)
		return empty_hash(h, out);
	bool have = false;
	for (unsigned k = 0; k < 64; k++) {
		if (!(f->size >> k & 1))
			continue;
		enum ht_err err = have ? ht_merkle_node_hash(h, f->hash[k],
							     out, out)
				       : HT_OK;
		if (err)
			return err;
		if (!have)
			memcpy(out, f->hash[k], HT_HASH_BYTES);
		have = true;
	}
	return HT_OK;
}

/* ---- range proofs ---------------------------------------------------- */

/*
 * The walk both sides share: RFC 9162's tree of [lo, hi) splits at the
 * largest power of two below its width. A subtree wholly inside the range
 * is the verifier's to compute; one wholly outside it is a proof hash; one
 * that straddles an edge of the range is split again. Depth <= 64.
 */
struct range_walk {
	struct ht_hasher *h;
	uint64_t first, end;             /* the range [first, end) */
	/* prover */
	ht_merkle_node_fn node;
	void *ctx;
	uint8_t (*proof)[HT_HASH_BYTES];
	size_t n;
	/* verifier */
	const uint8_t (*leaves)[HT_HASH_BYTES];
	const uint8_t (*given)[HT_HASH_BYTES];
	size_t given_n, used;
};

static bool outside(const struct range_walk *w, uint64_t lo, uint64_t hi)
{
	return hi <= w->first || lo >= w->end;
}

static enum ht_err range_prove(struct range_walk *w, uint64_t lo, uint64_t hi)
{
	if (lo >= w->first && hi <= w->end)
		return HT_OK;
	uint64_t k = split_point(hi - lo);
	uint64_t half[2][2] = {{lo, lo + k}, {lo + k, hi}};
	for (int i = 0; i < 2; i++) {
		enum ht_err err;
		if (outside(w, half[i][0], half[i][1])) {
			HT_ASSERT(w->n < HT_PROOF_HASHES_MAX);
			err = range_hash(w->h, half[i][0], half[i][1], w->node,
					 w->ctx, w->proof[w->n++]);
		} else {
			err = range_prove(w, half[i][0], half[i][1]);
		}
		if (err)
			return err;
	}
	return HT_OK;
}

enum ht_err ht_merkle_range_proof(struct ht_hasher *h, uint64_t first,
				  uint64_t count, uint64_t size,
				  ht_merkle_node_fn node, void *ctx,
				  uint8_t proof[][HT_HASH_BYTES],
				  size_t *n_out)
{
	HT_ASSERT(h && node && proof && n_out);
	*n_out = 0;
	if (count == 0 || first >= size || count > size - first)
		return HT_ERR_INVALID;
	struct range_walk w = {.h = h, .first = first, .end = first + count,
			       .node = node, .ctx = ctx, .proof = proof};
	enum ht_err err = range_prove(&w, 0, size);
	if (!err)
		*n_out = w.n;
	return err;
}

/* MTH of leaves [lo, hi) of the range, from their leaf hashes. */
static enum ht_err range_mth(struct range_walk *w, uint64_t lo, uint64_t hi,
			     uint8_t out[HT_HASH_BYTES])
{
	if (hi - lo == 1) {
		memcpy(out, w->leaves[lo - w->first], HT_HASH_BYTES);
		return HT_OK;
	}
	uint64_t k = split_point(hi - lo);
	uint8_t left[HT_HASH_BYTES], right[HT_HASH_BYTES];
	enum ht_err err = range_mth(w, lo, lo + k, left);
	if (!err)
		err = range_mth(w, lo + k, hi, right);
	return err ? err : ht_merkle_node_hash(w->h, left, right, out);
}

static enum ht_err range_root(struct range_walk *w, uint64_t lo, uint64_t hi,
			      uint8_t out[HT_HASH_BYTES])
{
	if (lo >= w->first && hi <= w->end)
		return range_mth(w, lo, hi, out);
	uint64_t k = split_point(hi - lo);
	uint64_t half[2][2] = {{lo, lo + k}, {lo + k, hi}};
	uint8_t sub[2][HT_HASH_BYTES];
	for (int i = 0; i < 2; i++) {
		if (outside(w, half[i][0], half[i][1])) {
			if (w->used >= w->given_n)
				return HT_ERR_VERIFY;
			memcpy(sub[i], w->given[w->used++], HT_HASH_BYTES);
		} else {
			enum ht_err err = range_root(w, half[i][0], half[i][1],
						     sub[i]);
			if (err)
				return err;
		}
	}
	return ht_merkle_node_hash(w->h, sub[0], sub[1], out);
}

enum ht_err ht_merkle_verify_range(struct ht_hasher *h, uint64_t first,
				   uint64_t count, uint64_t size,
				   const uint8_t leaf_hashes[][HT_HASH_BYTES],
				   const uint8_t proof[][HT_HASH_BYTES],
				   size_t n, const uint8_t root[HT_HASH_BYTES])
{
	HT_ASSERT(h && root);
	if (count == 0 || first >= size || count > size - first ||
	    !leaf_hashes || (n && !proof) || n > HT_PROOF_HASHES_MAX)
		return HT_ERR_VERIFY;
	struct range_walk w = {.h = h, .first = first, .end = first + count,
			       .leaves = leaf_hashes, .given = proof,
			       .given_n = n};
	uint8_t got[HT_HASH_BYTES];
	enum ht_err err = range_root(&w, 0, size, got);
	if (err)
		return err == HT_ERR_CRYPTO || err == HT_ERR_NOMEM ? err
								   : HT_ERR_VERIFY;
	if (w.used != n || memcmp(got, root, HT_HASH_BYTES))
		return HT_ERR_VERIFY;
	return HT_OK;
}

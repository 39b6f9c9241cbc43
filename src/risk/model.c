/*
 * model.c — huitong's gradient-boosted tree model: the file format's
 * encoder and checking loader, and the flat tree walker that scores a
 * payment (model.h, docs/risk-model.md).
 *
 * Owner: risk. A model file is outside input (it is copied between
 * machines and may be corrupt or hostile), so the loader reads nothing it
 * has not bounds-checked and accepts a tree only when every child index
 * points forward inside its tree, every node but the root has exactly one
 * parent, no path is deeper than HT_MODEL_DEPTH_MAX and every float is
 * finite. Once those hold, the walker needs no checks at all: it can only
 * move forward through a tree's nodes and stops at a leaf. This file must
 * never link XGBoost (the core library stays free of it) and the walker
 * must never allocate, recurse or fail.
 *
 * Layout (little-endian; docs/risk-model.md has the full table):
 *   magic[8] u32 format u32 objective u64 file_bytes u8 vlen version[vlen]
 *   body: f32 base_margin u32 features u32 trees
 *         features x (u8 len, name[len])
 *         trees x (u32 nodes, nodes x {u16 feature, u8 flags, u8 zero,
 *                                      u32 left, u32 right, f32 value})
 *   sm3[32] over every byte before it
 */
#include "huitong/model.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "huitong/crypto.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_VECTOR_WALK 1
#endif

#define HEADER_FIXED_BYTES (HT_MODEL_MAGIC_BYTES + 4 + 4 + 8 + 1)
#define BODY_FIXED_BYTES (4 + 4 + 4)
#define NODE_BYTES 16
#define CHECKSUM_BYTES HT_HASH_BYTES
#define NODE_FLAG_DEFAULT_LEFT 0x01u
/* "sm3:" and 16 hex digits: the version given to a spec without one. */
#define DERIVED_VERSION_PREFIX "sm3:"
#define DERIVED_VERSION_HEX 16

_Static_assert(CHECKSUM_BYTES == 32, "the checksum is SM3");
_Static_assert(sizeof(float) == 4, "IEEE single floats");

/*
 * A node as the walker sees it: 8 bytes, so a 300-tree depth-6 model
 * (~38,000 nodes) takes 300 KiB and stays in a core's L2 cache. Each tree
 * is laid out breadth-first with siblings side by side: the left child is
 * this node's index + delta and the right child the one after it, so a
 * step is arithmetic, not a branch. A leaf has delta 0 and no split bit:
 * walking past it stays on it, so the walker takes a fixed number of
 * steps per tree (its depth) with no test for leaves at all.
 */
struct wnode {
	float value;    /* split: threshold (left when x < value); leaf: value */
	uint16_t info;  /* feature | NAN_LEFT | SPLIT */
	uint16_t delta; /* left child's index minus this node's; leaf: 0 */
};
_Static_assert(sizeof(struct wnode) == 8, "walker nodes pack");
#define INFO_FEATURE_MASK 0x03ffu
#define INFO_NAN_LEFT_SHIFT 14
#define INFO_SPLIT_SHIFT 15
_Static_assert(HT_MODEL_FEATURES_MAX - 1 <= INFO_FEATURE_MASK,
	       "a feature index fits the info bits");
_Static_assert(HT_MODEL_NODES_MAX - 1 <= UINT16_MAX,
	       "a child is less than 2^16 nodes ahead");

/* Trees walked side by side: independent chains of loads that the CPU
 * overlaps (the walk of one tree is a chain of dependent loads). */
#define WALK_GROUP 8
/* Trees the vector walker takes at once: two vectors of 16 lanes, so
 * that one vector's gathers wait while the other's run. */
#define VWALK_LANES 16
#define VWALK_GROUP (2 * VWALK_LANES)

struct ht_model {
	struct wnode *nodes;  /* every tree's nodes, tree after tree */
	uint32_t *roots;      /* tree_count absolute root indices */
	uint8_t *depths;      /* tree_count depths */
	uint8_t *group_depths; /* the deepest of each WALK_GROUP trees */
	uint8_t *vgroup_depths; /* the deepest of each VWALK_GROUP trees */
	bool vector;           /* walk with margin_avx512 */
	size_t node_count;
	uint32_t tree_count;
	uint32_t feature_count;
	float base_margin;
	unsigned depth_max;
	char **names;         /* feature_count names, each NUL-terminated */
	char version[HT_MODEL_NAME_BYTES_MAX + 1];
	uint8_t checksum[CHECKSUM_BYTES];
};


/* ---- scoring ---------------------------------------------------------- */

/* One step down from node i: to its left child, the right child after
 * it, or, for a leaf, i itself. Right when x >= threshold (false for a
 * NaN), or when x is NaN and the split sends NaN right: the same as
 * XGBoost's "left when x < threshold, missing takes the default". A
 * leaf's feature bits are 0, a column that exists; its split bit 0 keeps
 * it in place. */
static inline uint32_t step(const struct wnode *nodes, uint32_t i,
			    const float *x)
{
	const struct wnode *n = &nodes[i];
	uint32_t info = n->info;
	float v = x[info & INFO_FEATURE_MASK];
	uint32_t nan = v != v;
	uint32_t right = ((uint32_t)(v >= n->value) |
			  (nan & ~(info >> INFO_NAN_LEFT_SHIFT))) &
			 (info >> INFO_SPLIT_SHIFT);
	return i + n->delta + right;
}

/* Add the leaves of trees t.. to sum, WALK_GROUP trees side by side. */
static float margin_from(const struct ht_model *m, const float *x,
			 uint32_t t, float sum)
{
	/* XGBoost's CPU predictor starts each row's float at the base
	 * margin and adds the trees' leaves in tree order; so do we, in the
	 * same float arithmetic, so the sums agree to the last bit. Trees
	 * are walked WALK_GROUP at a time, each for the group's deepest
	 * depth (a finished walk stays on its leaf), and their leaves added
	 * in order. */
	const struct wnode *nodes = m->nodes;
	HT_ASSERT(t % WALK_GROUP == 0 || t == m->tree_count);
	for (; t + WALK_GROUP <= m->tree_count; t += WALK_GROUP) {
		uint32_t i[WALK_GROUP];
		for (int g = 0; g < WALK_GROUP; g++)
			i[g] = m->roots[t + g];
		/* Unrolled, so i[] lives in registers, not on the stack. */
		for (unsigned d = m->group_depths[t / WALK_GROUP]; d > 0; d--)
#pragma GCC unroll 8
			for (int g = 0; g < WALK_GROUP; g++)
				i[g] = step(nodes, i[g], x);
		for (int g = 0; g < WALK_GROUP; g++)
			sum += nodes[i[g]].value;
	}
	for (; t < m->tree_count; t++) {
		uint32_t i = m->roots[t];
		for (unsigned d = m->depths[t]; d > 0; d--)
			i = step(nodes, i, x);
		sum += nodes[i].value;
	}
	return sum;
}

#ifdef HAVE_VECTOR_WALK
/*
 * The same walk, 16 trees to a vector with AVX-512: a step gathers the
 * 16 nodes' thresholds and info words (the node's second half: info,
 * then delta above it) and the 16 features they test, and moves each
 * lane exactly as step() does. Only the walk is vectorised: the leaves
 * are still added one at a time in tree order, so the margin is the
 * same float, bit for bit (tests/unit/test_model.c checks it against the
 * portable walker).
 */
__attribute__((target("avx512f"))) static inline __m512i
vstep(const struct wnode *nodes, __m512i i, const float *x)
{
	const __m512i feature_mask = _mm512_set1_epi32(INFO_FEATURE_MASK);
	const __m512i nan_left = _mm512_set1_epi32(1 << INFO_NAN_LEFT_SHIFT);
	const __m512i split = _mm512_set1_epi32(1 << INFO_SPLIT_SHIFT);
	__m512i info = _mm512_i32gather_epi32(i, (const char *)nodes + 4, 8);
	__m512 value = _mm512_i32gather_ps(i, (const char *)nodes, 8);
	__m512 v = _mm512_i32gather_ps(_mm512_and_si512(info, feature_mask),
				       x, 4);
	__mmask16 ge = _mm512_cmp_ps_mask(v, value, _CMP_GE_OQ);
	__mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
	__mmask16 left = _mm512_test_epi32_mask(info, nan_left);
	__mmask16 right = (__mmask16)((ge | (nan & ~left)) &
				      _mm512_test_epi32_mask(info, split));
	i = _mm512_add_epi32(i, _mm512_srli_epi32(info, 16));
	return _mm512_mask_add_epi32(i, right, i, _mm512_set1_epi32(1));
}

__attribute__((target("avx512f"))) static float
margin_avx512(const struct ht_model *m, const float *x)
{
	const struct wnode *nodes = m->nodes;
	float sum = m->base_margin;
	uint32_t t = 0;
	for (; t + VWALK_GROUP <= m->tree_count; t += VWALK_GROUP) {
		__m512i a = _mm512_loadu_si512(m->roots + t);
		__m512i b = _mm512_loadu_si512(m->roots + t + VWALK_LANES);
		for (unsigned d = m->vgroup_depths[t / VWALK_GROUP]; d > 0; d--) {
			a = vstep(nodes, a, x);
			b = vstep(nodes, b, x);
		}
		float leaf[VWALK_GROUP];
		_mm512_storeu_ps(leaf, _mm512_i32gather_ps(a, (const char *)nodes, 8));
		_mm512_storeu_ps(leaf + VWALK_LANES,
				 _mm512_i32gather_ps(b, (const char *)nodes, 8));
		for (int g = 0; g < VWALK_GROUP; g++)
			sum += leaf[g];
	}
	return margin_from(m, x, t, sum);
}
#endif

static float margin_f(const struct ht_model *m, const float *x)
{
#ifdef HAVE_VECTOR_WALK
	if (m->vector)
		return margin_avx512(m, x);
#endif
	return margin_from(m, x, 0, m->base_margin);
}

double ht_model_margin(const struct ht_model *m, const float *x)
{
	return margin_f(m, x);
}

double ht_model_margin_portable(const struct ht_model *m, const float *x)
{
	return margin_from(m, x, 0, m->base_margin);
}

bool ht_model_vector(const struct ht_model *m)
{
	return m->vector;
}

double ht_model_score(const struct ht_model *m, const float *x)
{
	/* XGBoost's logistic transform, in float: 1 / (1 + e^-margin). An
	 * overflowing expf gives +inf and a score of exactly 0. */
	float p = 1.0f / (1.0f + expf(-margin_f(m, x)));
	HT_ASSERT(p >= 0.0f);
	HT_ASSERT(p <= 1.0f);
	return p;
}

/* ---- accessors -------------------------------------------------------- */

size_t ht_model_feature_count(const struct ht_model *m)
{
	return m->feature_count;
}

const char *ht_model_feature_name(const struct ht_model *m, size_t i)
{
	return i < m->feature_count ? m->names[i] : NULL;
}

const char *ht_model_version(const struct ht_model *m)
{
	return m->version;
}

size_t ht_model_tree_count(const struct ht_model *m)
{
	return m->tree_count;
}

unsigned ht_model_depth_max(const struct ht_model *m)
{
	return m->depth_max;
}

double ht_model_base_margin(const struct ht_model *m)
{
	return m->base_margin;
}

void ht_model_checksum(const struct ht_model *m, uint8_t out[32])
{
	memcpy(out, m->checksum, CHECKSUM_BYTES);
}

enum ht_err ht_model_bind(const struct ht_model *m, const char *const *names,
			  size_t name_count, uint32_t *map, char *err,
			  size_t err_size)
{
	if (name_count && !names)
		return ht_fail(err, err_size, HT_ERR_INVALID, "no feature names");
	if (name_count > UINT32_MAX)
		return ht_fail(err, err_size, HT_ERR_LIMIT,
			    "%zu catalogue features is too many", name_count);
	for (size_t j = 0; j < name_count; j++)
		if (!names[j])
			return ht_fail(err, err_size, HT_ERR_INVALID,
				    "catalogue feature %zu has no name", j);
	/* Quadratic, at most 1024 x catalogue string compares, once per
	 * model load: not worth a hash table. */
	for (uint32_t i = 0; i < m->feature_count; i++) {
		size_t j = 0;
		while (j < name_count && strcmp(names[j], m->names[i]))
			j++;
		if (j == name_count)
			return ht_fail(err, err_size, HT_ERR_NOT_FOUND,
				    "model column %u '%s' is not in the feature "
				    "catalogue", i, m->names[i]);
		map[i] = (uint32_t)j;
	}
	return HT_OK;
}

void ht_model_gather(const struct ht_model *m, const uint32_t *map,
		     const float *values, float *x)
{
	for (uint32_t i = 0; i < m->feature_count; i++)
		x[i] = values[map[i]];
}

void ht_model_destroy(struct ht_model *m)
{
	if (!m)
		return;
	if (m->names)
		for (uint32_t i = 0; i < m->feature_count; i++)
			free(m->names[i]);
	free(m->names);
	free(m->nodes);
	free(m->roots);
	free(m->depths);
	free(m->group_depths);
	free(m->vgroup_depths);
	free(m);
}

/* ---- reading ---------------------------------------------------------- */

struct reader {
	const uint8_t *p;
	size_t left;
};

static bool get_bytes(struct reader *r, void *out, size_t n)
{
	if (r->left < n)
		return false;
	memcpy(out, r->p, n);
	r->p += n;
	r->left -= n;
	return true;
}

static bool get_u8(struct reader *r, uint8_t *v)
{
	return get_bytes(r, v, 1);
}

static bool get_le(struct reader *r, unsigned bytes, uint64_t *v)
{
	uint8_t b[8];
	if (!get_bytes(r, b, bytes))
		return false;
	uint64_t x = 0;
	for (unsigned i = bytes; i-- > 0;)
		x = x << 8 | b[i];
	*v = x;
	return true;
}

static bool get_u16(struct reader *r, uint16_t *v)
{
	uint64_t x;
	if (!get_le(r, 2, &x))
		return false;
	*v = (uint16_t)x;
	return true;
}

static bool get_u32(struct reader *r, uint32_t *v)
{
	uint64_t x;
	if (!get_le(r, 4, &x))
		return false;
	*v = (uint32_t)x;
	return true;
}

static bool get_f32(struct reader *r, float *v)
{
	uint32_t bits;
	if (!get_u32(r, &bits))
		return false;
	memcpy(v, &bits, sizeof *v);
	return true;
}

/* Names and versions: printable ASCII; names also without space, quote,
 * backslash or comma, so they sit in JSON, CSV headers and rule files
 * without escaping. */
static bool text_ok(const char *s, size_t len, bool is_name)
{
	if (len < 1 || len > HT_MODEL_NAME_BYTES_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
			return false;
		if (is_name && (c == ' ' || c == ','))
			return false;
	}
	return true;
}

bool ht_model_name_valid(const char *name)
{
	return name && text_ok(name, strnlen(name, HT_MODEL_NAME_BYTES_MAX + 1),
			       true);
}

/* Read a u8 length and that many bytes of text into out (which holds
 * HT_MODEL_NAME_BYTES_MAX + 1 bytes, NUL added). False when the bytes run
 * out; *ok says whether the text obeys text_ok. */
static bool get_text(struct reader *r, char *out, bool is_name, bool *ok)
{
	uint8_t len;
	if (!get_u8(r, &len))
		return false;
	if (len > HT_MODEL_NAME_BYTES_MAX) {
		*ok = false; /* never copied: out holds only the maximum */
		return true;
	}
	if (!get_bytes(r, out, len))
		return false;
	out[len] = '\0';
	*ok = text_ok(out, len, is_name);
	return true;
}

/* The fixed header: magic, format, objective, declared length. */
static enum ht_err check_header(struct reader *r, size_t len, char *err,
				size_t err_size)
{
	uint8_t magic[HT_MODEL_MAGIC_BYTES];
	if (len < sizeof magic &&
	    (len == 0 || !memcmp(r->p, HT_MODEL_MAGIC, len)))
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "truncated: %zu bytes end inside the magic", len);
	if (!get_bytes(r, magic, sizeof magic) ||
	    memcmp(magic, HT_MODEL_MAGIC, sizeof magic))
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "not a huitong model file (bad magic)");
	uint32_t format, objective;
	uint64_t declared;
	if (!get_u32(r, &format) || !get_u32(r, &objective) ||
	    !get_le(r, 8, &declared))
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "truncated: %zu bytes end inside the header", len);
	if (format != HT_MODEL_FORMAT_VERSION)
		return ht_fail(err, err_size, HT_ERR_UNSUPPORTED,
			    "model format version %u (this build reads %u)",
			    format, HT_MODEL_FORMAT_VERSION);
	if (objective != HT_MODEL_OBJECTIVE_BINARY_LOGISTIC)
		return ht_fail(err, err_size, HT_ERR_UNSUPPORTED,
			    "objective %u (this build scores only %u, "
			    "binary:logistic)", objective,
			    HT_MODEL_OBJECTIVE_BINARY_LOGISTIC);
	if (declared > len)
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "truncated: the header says %llu bytes, the file "
			    "has %zu", (unsigned long long)declared, len);
	if (declared < len)
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "%zu bytes of trailing data after the %llu the "
			    "header declares", len - (size_t)declared,
			    (unsigned long long)declared);
	if (len < HEADER_FIXED_BYTES + BODY_FIXED_BYTES + CHECKSUM_BYTES)
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "truncated: %zu bytes is shorter than any model",
			    len);
	return HT_OK;
}

static enum ht_err check_checksum(const uint8_t *buf, size_t len,
				  uint8_t out[CHECKSUM_BYTES], char *err,
				  size_t err_size)
{
	uint8_t sum[CHECKSUM_BYTES];
	enum ht_err e = ht_hash(HT_HASH_SM3, buf, len - CHECKSUM_BYTES, sum);
	if (e)
		return ht_fail(err, err_size, e, "SM3: %s", ht_strerror(e));
	if (memcmp(sum, buf + len - CHECKSUM_BYTES, CHECKSUM_BYTES))
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "checksum mismatch: the file is corrupted");
	memcpy(out, sum, CHECKSUM_BYTES);
	return HT_OK;
}

/* Version, base margin and the two counts. */
static enum ht_err read_counts(struct reader *r, struct ht_model *m,
			       char *err, size_t err_size)
{
	bool ok = false;
	if (!get_text(r, m->version, false, &ok))
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "truncated inside the version string");
	if (!ok)
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "the version string is empty, longer than %u bytes "
			    "or not printable ASCII", HT_MODEL_NAME_BYTES_MAX);
	if (!get_f32(r, &m->base_margin) || !get_u32(r, &m->feature_count) ||
	    !get_u32(r, &m->tree_count))
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "truncated before the feature and tree counts");
	if (!isfinite(m->base_margin))
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "the base margin is not finite");
	if (m->feature_count == 0)
		return ht_fail(err, err_size, HT_ERR_CORRUPT, "no features");
	if (m->feature_count > HT_MODEL_FEATURES_MAX)
		return ht_fail(err, err_size, HT_ERR_LIMIT,
			    "%u features (at most %u)", m->feature_count,
			    HT_MODEL_FEATURES_MAX);
	if (m->tree_count == 0)
		return ht_fail(err, err_size, HT_ERR_CORRUPT, "no trees");
	if (m->tree_count > HT_MODEL_TREES_MAX)
		return ht_fail(err, err_size, HT_ERR_LIMIT, "%u trees (at most %u)",
			    m->tree_count, HT_MODEL_TREES_MAX);
	return HT_OK;
}

static enum ht_err read_names(struct reader *r, struct ht_model *m,
			      char *err, size_t err_size)
{
	m->names = calloc(m->feature_count, sizeof *m->names);
	if (!m->names)
		return HT_ERR_NOMEM;
	char name[HT_MODEL_NAME_BYTES_MAX + 1];
	for (uint32_t i = 0; i < m->feature_count; i++) {
		bool ok = false;
		if (!get_text(r, name, true, &ok))
			return ht_fail(err, err_size, HT_ERR_CORRUPT,
				    "truncated inside feature name %u", i);
		if (!ok)
			return ht_fail(err, err_size, HT_ERR_CORRUPT,
				    "feature name %u is empty, longer than %u "
				    "bytes or has characters outside printable "
				    "ASCII without space , \" \\", i,
				    HT_MODEL_NAME_BYTES_MAX);
		/* At most 1024 names: the quadratic check is ~0.5M compares. */
		for (uint32_t j = 0; j < i; j++)
			if (!strcmp(m->names[j], name))
				return ht_fail(err, err_size, HT_ERR_CORRUPT,
					    "feature name '%s' appears twice "
					    "(columns %u and %u)", name, j, i);
		m->names[i] = strdup(name);
		if (!m->names[i])
			return HT_ERR_NOMEM;
	}
	return HT_OK;
}

/* First pass over the trees: check each node count and that the nodes
 * fill the body exactly; total them so one array holds every node. */
static enum ht_err count_nodes(struct reader r, const struct ht_model *m,
			       size_t *total, uint32_t *largest, char *err,
			       size_t err_size)
{
	size_t sum = 0;
	*largest = 0;
	for (uint32_t t = 0; t < m->tree_count; t++) {
		uint32_t n;
		if (!get_u32(&r, &n))
			return ht_fail(err, err_size, HT_ERR_CORRUPT,
				    "truncated: tree %u of %u is missing", t,
				    m->tree_count);
		if (n == 0)
			return ht_fail(err, err_size, HT_ERR_CORRUPT,
				    "tree %u has no nodes", t);
		if (n > HT_MODEL_NODES_MAX)
			return ht_fail(err, err_size, HT_ERR_LIMIT,
				    "tree %u has %u nodes (at most %u)", t, n,
				    HT_MODEL_NODES_MAX);
		if (r.left / NODE_BYTES < n)
			return ht_fail(err, err_size, HT_ERR_CORRUPT,
				    "truncated inside tree %u (%u nodes)", t, n);
		r.p += (size_t)n * NODE_BYTES;
		r.left -= (size_t)n * NODE_BYTES;
		sum += n;
		if (n > *largest)
			*largest = n;
	}
	if (r.left)
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "%zu unexpected bytes after the last tree", r.left);
	*total = sum;
	return HT_OK;
}

/* A node as the file holds it (children local to the tree). */
struct fnode {
	uint32_t left, right;
	uint16_t feature;
	uint8_t flags, zero;
	float value;
};

/* Scratch for reading trees, allocated once per load for the largest
 * tree: a tree's nodes in file order, depth + 1 of each (0 = no parent
 * seen yet), and the queue of the breadth-first relayout. */
struct scratch {
	struct fnode *nodes;
	uint8_t *depth1;
	uint32_t *queue;
	uint32_t cap;
};

static void decode_node(struct reader *r, struct fnode *f)
{
	bool ok = get_u16(r, &f->feature) && get_u8(r, &f->flags) &&
		  get_u8(r, &f->zero) && get_u32(r, &f->left) &&
		  get_u32(r, &f->right) && get_f32(r, &f->value);
	HT_ASSERT(ok); /* count_nodes checked the bytes are there */
}

/*
 * Check split node i of an n-node tree and mark its children. Parents
 * precede children, so by the time node i is checked its depth1 entry is
 * final.
 */
static enum ht_err check_split(uint32_t t, uint32_t i, uint32_t n,
			       const struct fnode *f, uint32_t features,
			       uint8_t *depth1, char *err, size_t err_size)
{
	const uint32_t child[2] = {f->left, f->right};
	const char *side[2] = {"left", "right"};
	if (f->feature >= features)
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "tree %u node %u: feature %u out of range (the "
			    "model has %u)", t, i, f->feature, features);
	if (f->left == f->right)
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "tree %u node %u: both children are node %u", t, i,
			    f->left);
	for (int k = 0; k < 2; k++) {
		if (child[k] <= i || child[k] >= n)
			return ht_fail(err, err_size, HT_ERR_CORRUPT,
				    "tree %u node %u: %s child %u is out of "
				    "range or does not point forward (must be "
				    "> %u and < %u; a backward link would be a "
				    "cycle)", t, i, side[k], child[k], i, n);
		if (depth1[child[k]])
			return ht_fail(err, err_size, HT_ERR_CORRUPT,
				    "tree %u node %u has two parents", t,
				    child[k]);
		if (depth1[i] > HT_MODEL_DEPTH_MAX)
			return ht_fail(err, err_size, HT_ERR_LIMIT,
				    "tree %u is deeper than %u", t,
				    HT_MODEL_DEPTH_MAX);
		depth1[child[k]] = (uint8_t)(depth1[i] + 1);
	}
	return HT_OK;
}

/* Check node i of tree t (n nodes); *depth rises to a leaf's depth. */
static enum ht_err check_node(uint32_t t, uint32_t i, uint32_t n,
			      const struct fnode *f, uint32_t features,
			      uint8_t *depth1, unsigned *depth, char *err,
			      size_t err_size)
{
	bool leaf = f->left == 0;
	if (!depth1[i])
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "tree %u node %u is not reachable from the root",
			    t, i);
	if ((f->flags & ~NODE_FLAG_DEFAULT_LEFT) || f->zero)
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "tree %u node %u: unknown flag bits", t, i);
	if (!isfinite(f->value))
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "tree %u node %u: %s is not finite", t, i,
			    leaf ? "leaf value" : "threshold");
	if (leaf && (f->right || f->feature || f->flags))
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "tree %u node %u: a leaf (left 0) with a right "
			    "child, feature or default direction", t, i);
	if (!leaf)
		return check_split(t, i, n, f, features, depth1, err,
				   err_size);
	if (depth1[i] - 1u > *depth)
		*depth = depth1[i] - 1u;
	return HT_OK;
}

/*
 * Lay a checked tree out for the walker at out (absolute index base):
 * breadth-first from the root, the two children of a split side by
 * side. Every node has exactly one parent, so all n are placed.
 */
static void relayout(const struct fnode *f, uint32_t n, uint32_t *queue,
		     struct wnode *out)
{
	uint32_t tail = 1;
	queue[0] = 0;
	for (uint32_t k = 0; k < tail; k++) {
		const struct fnode *src = &f[queue[k]];
		struct wnode *w = &out[k];
		w->value = src->value;
		w->info = 0;
		w->delta = 0; /* a leaf stays on itself */
		if (src->left == 0)
			continue;
		HT_ASSERT(tail + 2 <= n);
		HT_ASSERT(tail - k <= UINT16_MAX);
		w->info = (uint16_t)(src->feature |
				     1u << INFO_SPLIT_SHIFT);
		if (src->flags & NODE_FLAG_DEFAULT_LEFT)
			w->info |= 1u << INFO_NAN_LEFT_SHIFT;
		w->delta = (uint16_t)(tail - k);
		queue[tail++] = src->left;
		queue[tail++] = src->right;
	}
	HT_ASSERT(tail == n);
}

/* Read and check tree t, then lay it out at m->nodes[base]; *count gets
 * its node count. */
static enum ht_err read_tree(struct reader *r, struct ht_model *m,
			     uint32_t t, uint32_t base, uint32_t *count,
			     struct scratch *s, char *err, size_t err_size)
{
	uint32_t n = 0;
	bool ok = get_u32(r, &n);
	HT_ASSERT(ok);
	HT_ASSERT(n >= 1 && n <= s->cap);
	*count = n;
	memset(s->depth1, 0, n);
	s->depth1[0] = 1;
	unsigned depth = 0;
	for (uint32_t i = 0; i < n; i++) {
		decode_node(r, &s->nodes[i]);
		enum ht_err e = check_node(t, i, n, &s->nodes[i],
					   m->feature_count, s->depth1, &depth,
					   err, err_size);
		if (e)
			return e;
	}
	HT_ASSERT(depth <= HT_MODEL_DEPTH_MAX);
	relayout(s->nodes, n, s->queue, m->nodes + base);
	m->depths[t] = (uint8_t)depth;
	if (depth > m->depth_max)
		m->depth_max = depth;
	return HT_OK;
}

#ifdef HAVE_VECTOR_WALK
/* Does this CPU have AVX-512 (and the OS save its registers)? */
static bool walker_vector_ok(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f");
}
#endif

static void group_depths(struct ht_model *m)
{
	for (uint32_t t = 0; t < m->tree_count; t++) {
		uint8_t *g = &m->group_depths[t / WALK_GROUP];
		uint8_t *v = &m->vgroup_depths[t / VWALK_GROUP];
		if (t % WALK_GROUP == 0 || m->depths[t] > *g)
			*g = m->depths[t];
		if (t % VWALK_GROUP == 0 || m->depths[t] > *v)
			*v = m->depths[t];
	}
#ifdef HAVE_VECTOR_WALK
	/* Gather indices are signed 32-bit: a model file's nodes are far
	 * fewer (HT_MODEL_FILE_BYTES_MAX / NODE_BYTES). */
	_Static_assert(HT_MODEL_FILE_BYTES_MAX / NODE_BYTES < INT32_MAX,
		       "node indices fit a gather's");
	m->vector = walker_vector_ok();
#endif
}

static void scratch_free(struct scratch *s)
{
	free(s->nodes);
	free(s->depth1);
	free(s->queue);
}

static enum ht_err read_trees(struct reader *r, struct ht_model *m,
			      char *err, size_t err_size)
{
	size_t total = 0;
	struct scratch s = {0};
	enum ht_err e = count_nodes(*r, m, &total, &s.cap, err, err_size);
	if (e)
		return e;
	HT_ASSERT(total <= UINT32_MAX);
	HT_ASSERT(s.cap >= 1 && s.cap <= HT_MODEL_NODES_MAX);
	m->nodes = malloc(total * sizeof *m->nodes);
	m->roots = malloc(m->tree_count * sizeof *m->roots);
	m->depths = malloc(m->tree_count);
	m->group_depths = malloc(m->tree_count / WALK_GROUP + 1);
	m->vgroup_depths = malloc(m->tree_count / VWALK_GROUP + 1);
	s.nodes = malloc(s.cap * sizeof *s.nodes);
	s.depth1 = malloc(s.cap);
	s.queue = malloc(s.cap * sizeof *s.queue);
	if (!m->nodes || !m->roots || !m->depths || !m->group_depths ||
	    !m->vgroup_depths ||
	    !s.nodes || !s.depth1 || !s.queue) {
		scratch_free(&s);
		return HT_ERR_NOMEM;
	}
	m->node_count = total;
	uint32_t base = 0;
	for (uint32_t t = 0; t < m->tree_count && !e; t++) {
		uint32_t n = 0;
		m->roots[t] = base;
		e = read_tree(r, m, t, base, &n, &s, err, err_size);
		base += n;
	}
	scratch_free(&s);
	HT_ASSERT(e || base == total);
	if (!e)
		group_depths(m);
	return e;
}

enum ht_err ht_model_load_buffer(const void *buf, size_t len,
				 struct ht_model **out, char *err,
				 size_t err_size)
{
	if (err && err_size)
		err[0] = '\0';
	if (!out || (!buf && len))
		return ht_fail(err, err_size, HT_ERR_INVALID, "no model given");
	if (len > HT_MODEL_FILE_BYTES_MAX)
		return ht_fail(err, err_size, HT_ERR_LIMIT,
			    "%zu bytes is larger than any model (at most %u)",
			    len, HT_MODEL_FILE_BYTES_MAX);
	struct reader r = {buf, len};
	enum ht_err e = check_header(&r, len, err, err_size);
	if (e)
		return e;
	struct ht_model *m = calloc(1, sizeof *m);
	if (!m)
		return ht_fail(err, err_size, HT_ERR_NOMEM, "out of memory");
	/* The checksum before the structure: a flipped bit reads as
	 * corruption, not as whatever structural fault it happens to cause. */
	e = check_checksum(buf, len, m->checksum, err, err_size);
	r.left -= CHECKSUM_BYTES; /* the body ends where the checksum starts */
	if (!e)
		e = read_counts(&r, m, err, err_size);
	if (!e)
		e = read_names(&r, m, err, err_size);
	if (!e)
		e = read_trees(&r, m, err, err_size);
	if (e == HT_ERR_NOMEM)
		ht_fail(err, err_size, e, "out of memory");
	if (e) {
		ht_model_destroy(m);
		return e;
	}
	HT_ASSERT(m->node_count >= m->tree_count);
	HT_ASSERT(m->depth_max <= HT_MODEL_DEPTH_MAX);
	*out = m;
	return HT_OK;
}

/* Read a whole file of at most HT_MODEL_FILE_BYTES_MAX bytes. */
static enum ht_err read_file(const char *path, uint8_t **buf, size_t *len,
			     char *err, size_t err_size)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return ht_fail(err, err_size, HT_ERR_IO, "%s: %s", path,
			    strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
		fclose(f);
		return ht_fail(err, err_size, HT_ERR_IO, "%s: not a regular file",
			    path);
	}
	if ((uint64_t)st.st_size > HT_MODEL_FILE_BYTES_MAX) {
		fclose(f);
		return ht_fail(err, err_size, HT_ERR_LIMIT,
			    "%s: %lld bytes is larger than any model (at most "
			    "%u)", path, (long long)st.st_size,
			    HT_MODEL_FILE_BYTES_MAX);
	}
	size_t size = (size_t)st.st_size;
	*buf = malloc(size ? size : 1);
	if (!*buf) {
		fclose(f);
		return ht_fail(err, err_size, HT_ERR_NOMEM, "out of memory");
	}
	*len = fread(*buf, 1, size, f);
	bool bad = ferror(f) || *len != size;
	fclose(f);
	if (bad) {
		free(*buf);
		return ht_fail(err, err_size, HT_ERR_IO, "%s: read failed", path);
	}
	return HT_OK;
}

enum ht_err ht_model_load(const char *path, struct ht_model **out, char *err,
			  size_t err_size)
{
	if (!path || !out)
		return ht_fail(err, err_size, HT_ERR_INVALID, "no model path");
	uint8_t *buf = NULL;
	size_t len = 0;
	enum ht_err e = read_file(path, &buf, &len, err, err_size);
	if (e)
		return e;
	e = ht_model_load_buffer(buf, len, out, err, err_size);
	free(buf);
	if (e && err && err_size) {
		/* Prefix the path so the message stands alone. */
		char why[512];
		snprintf(why, sizeof why, "%s", err);
		snprintf(err, err_size, "%s: %s", path, why);
	}
	return e;
}

/* ---- writing ---------------------------------------------------------- */

struct writer {
	uint8_t *p;
	uint8_t *end;
};

static void put_bytes(struct writer *w, const void *src, size_t n)
{
	HT_ASSERT((size_t)(w->end - w->p) >= n);
	memcpy(w->p, src, n);
	w->p += n;
}

static void put_le(struct writer *w, uint64_t v, unsigned bytes)
{
	uint8_t b[8];
	for (unsigned i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put_bytes(w, b, bytes);
}

static void put_f32(struct writer *w, float v)
{
	uint32_t bits;
	memcpy(&bits, &v, sizeof bits);
	put_le(w, bits, 4);
}

static void put_text(struct writer *w, const char *s)
{
	size_t len = strlen(s);
	HT_ASSERT(len <= HT_MODEL_NAME_BYTES_MAX);
	put_le(w, len, 1);
	put_bytes(w, s, len);
}

/* Check what the format cannot even represent; the rest is left to the
 * loader, which reads the encoding back. Sets *body_bytes. */
static enum ht_err spec_size(const struct ht_model_spec *s, size_t *body_bytes,
			     char *err, size_t err_size)
{
	if (s->feature_count > HT_MODEL_FEATURES_MAX ||
	    s->tree_count > HT_MODEL_TREES_MAX)
		return ht_fail(err, err_size, HT_ERR_LIMIT,
			    "%zu features and %zu trees (at most %u and %u)",
			    s->feature_count, s->tree_count,
			    HT_MODEL_FEATURES_MAX, HT_MODEL_TREES_MAX);
	if ((s->feature_count && !s->feature_names) ||
	    (s->tree_count && !s->trees))
		return ht_fail(err, err_size, HT_ERR_INVALID, "incomplete spec");
	if (s->version && !text_ok(s->version, strlen(s->version), false))
		return ht_fail(err, err_size, HT_ERR_INVALID,
			    "version '%s': 1 to %u printable ASCII characters "
			    "without \" or \\", s->version,
			    HT_MODEL_NAME_BYTES_MAX);
	size_t n = BODY_FIXED_BYTES;
	for (size_t i = 0; i < s->feature_count; i++) {
		const char *name = s->feature_names[i];
		if (!name || !text_ok(name, strlen(name), true))
			return ht_fail(err, err_size, HT_ERR_INVALID,
				    "feature name %zu: 1 to %u printable ASCII "
				    "characters without space , \" \\", i,
				    HT_MODEL_NAME_BYTES_MAX);
		n += 1 + strlen(name);
	}
	for (size_t t = 0; t < s->tree_count; t++) {
		if (s->trees[t].node_count > HT_MODEL_NODES_MAX ||
		    (s->trees[t].node_count && !s->trees[t].nodes))
			return ht_fail(err, err_size, HT_ERR_LIMIT,
				    "tree %zu has %zu nodes (at most %u)", t,
				    s->trees[t].node_count, HT_MODEL_NODES_MAX);
		n += 4 + s->trees[t].node_count * NODE_BYTES;
		if (n > HT_MODEL_FILE_BYTES_MAX)
			return ht_fail(err, err_size, HT_ERR_LIMIT,
				    "the model is larger than %u bytes",
				    HT_MODEL_FILE_BYTES_MAX);
	}
	*body_bytes = n;
	return HT_OK;
}

static void put_body(struct writer *w, const struct ht_model_spec *s)
{
	put_f32(w, s->base_margin);
	put_le(w, s->feature_count, 4);
	put_le(w, s->tree_count, 4);
	for (size_t i = 0; i < s->feature_count; i++)
		put_text(w, s->feature_names[i]);
	for (size_t t = 0; t < s->tree_count; t++) {
		const struct ht_model_tree *tree = &s->trees[t];
		put_le(w, tree->node_count, 4);
		for (size_t i = 0; i < tree->node_count; i++) {
			const struct ht_model_node *n = &tree->nodes[i];
			put_le(w, n->feature, 2);
			put_le(w, n->default_left ? NODE_FLAG_DEFAULT_LEFT : 0, 1);
			put_le(w, 0, 1);
			put_le(w, n->left, 4);
			put_le(w, n->right, 4);
			put_f32(w, n->value);
		}
	}
}

/* "sm3:" and the first 16 hex digits of SM3(body). */
static enum ht_err derive_version(const uint8_t *body, size_t len,
				  char out[HT_MODEL_NAME_BYTES_MAX + 1])
{
	uint8_t sum[HT_HASH_BYTES];
	enum ht_err e = ht_hash(HT_HASH_SM3, body, len, sum);
	if (e)
		return e;
	char hex[2 * HT_HASH_BYTES + 1];
	ht_hex_encode(sum, HT_HASH_BYTES, hex);
	snprintf(out, HT_MODEL_NAME_BYTES_MAX + 1, "%s%.*s",
		 DERIVED_VERSION_PREFIX, DERIVED_VERSION_HEX, hex);
	return HT_OK;
}

enum ht_err ht_model_encode(const struct ht_model_spec *spec, uint8_t **out,
			    size_t *out_len, char *err, size_t err_size)
{
	if (!spec || !out || !out_len)
		return ht_fail(err, err_size, HT_ERR_INVALID, "no spec");
	size_t body = 0;
	enum ht_err e = spec_size(spec, &body, err, err_size);
	if (e)
		return e;
	size_t vlen = spec->version ? strlen(spec->version)
				    : strlen(DERIVED_VERSION_PREFIX) +
					      DERIVED_VERSION_HEX;
	size_t len = HEADER_FIXED_BYTES + vlen + body + CHECKSUM_BYTES;
	uint8_t *buf = calloc(1, len);
	if (!buf)
		return ht_fail(err, err_size, HT_ERR_NOMEM, "out of memory");
	/* The body first, at its final place, so a derived version can
	 * hash it. */
	uint8_t *body_at = buf + HEADER_FIXED_BYTES + vlen;
	struct writer w = {body_at, body_at + body};
	put_body(&w, spec);
	HT_ASSERT(w.p == body_at + body);
	char version[HT_MODEL_NAME_BYTES_MAX + 1];
	if (spec->version)
		snprintf(version, sizeof version, "%s", spec->version);
	else
		e = derive_version(body_at, body, version);
	HT_ASSERT(e || strlen(version) == vlen);
	w = (struct writer){buf, body_at};
	if (!e) {
		put_bytes(&w, HT_MODEL_MAGIC, HT_MODEL_MAGIC_BYTES);
		put_le(&w, HT_MODEL_FORMAT_VERSION, 4);
		put_le(&w, HT_MODEL_OBJECTIVE_BINARY_LOGISTIC, 4);
		put_le(&w, len, 8);
		put_text(&w, version);
		HT_ASSERT(w.p == body_at);
		e = ht_hash(HT_HASH_SM3, buf, len - CHECKSUM_BYTES,
			    buf + len - CHECKSUM_BYTES);
	}
	if (e) {
		free(buf);
		return ht_fail(err, err_size, e, "SM3: %s", ht_strerror(e));
	}
	/* Read it back: whatever we write, we can load. */
	struct ht_model *m;
	e = ht_model_load_buffer(buf, len, &m, err, err_size);
	if (e) {
		free(buf);
		return e;
	}
	ht_model_destroy(m);
	*out = buf;
	*out_len = len;
	return HT_OK;
}

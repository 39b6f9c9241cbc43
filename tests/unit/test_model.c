/*
 * test_model.c — huitong's model format and tree walker (model.h): a
 * hand-built model scores as computed by hand, missing values follow each
 * split's default direction, the walker agrees with an obviously-correct
 * recursive walker on random models, columns map onto a catalogue by
 * name, and every kind of corrupt file is refused with a clear error
 * (bad magic, truncation, trailing bytes, checksum, format version,
 * children out of range or backward, two parents, unreachable nodes,
 * NaN and infinite floats, too many trees, features or nodes, too deep,
 * duplicate names) — plus random corruption that must never crash.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "huitong/crypto.h"
#include "huitong/model.h"

/* ---- the hand-built model ---------------------------------------------
 *
 * features: amount (0), hour (1); base margin 0.25
 * tree 0:  0: amount < 100 ? 1 : 2      (missing -> right)
 *          1: leaf 0.5
 *          2: hour < 6 ? 3 : 4          (missing -> left)
 *          3: leaf -1
 *          4: leaf 2
 * tree 1:  0: leaf 0.125
 */
static const char *const tiny_names[] = {"amount", "hour"};
static const struct ht_model_node tiny_t0[] = {
	{.left = 1, .right = 2, .feature = 0, .default_left = false,
	 .value = 100.0f},
	{.value = 0.5f},
	{.left = 3, .right = 4, .feature = 1, .default_left = true,
	 .value = 6.0f},
	{.value = -1.0f},
	{.value = 2.0f},
};
static const struct ht_model_node tiny_t1[] = {{.value = 0.125f}};
static const struct ht_model_tree tiny_trees[] = {{tiny_t0, 5}, {tiny_t1, 1}};
#define TINY_VERSION "tiny-1"

static struct ht_model_spec tiny_spec(void)
{
	return (struct ht_model_spec){
		.version = TINY_VERSION,
		.feature_names = tiny_names,
		.feature_count = 2,
		.base_margin = 0.25f,
		.trees = tiny_trees,
		.tree_count = 2,
	};
}

static uint8_t *tiny_file(size_t *len)
{
	struct ht_model_spec s = tiny_spec();
	uint8_t *buf = NULL;
	char err[256];
	assert_int_equal(ht_model_encode(&s, &buf, len, err, sizeof err),
			 HT_OK);
	return buf;
}

/* Offsets in the tiny file (layout in docs/risk-model.md). */
#define OFF_FORMAT 8
#define OFF_VERSION_LEN 24
#define OFF_BODY (OFF_VERSION_LEN + 1 + sizeof TINY_VERSION - 1)
#define OFF_BASE OFF_BODY
#define OFF_FEATURES (OFF_BODY + 4)
#define OFF_TREES (OFF_BODY + 8)
#define OFF_NAMES (OFF_BODY + 12)
#define OFF_TREE0 (OFF_NAMES + 1 + 6 + 1 + 4)
#define OFF_NODE(i) (OFF_TREE0 + 4 + 16 * (i))
#define OFF_TREE1 OFF_NODE(5)

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void putf(uint8_t *p, float f)
{
	uint32_t v;
	memcpy(&v, &f, 4);
	put32(p, v);
}

/* Recompute the checksum after an edit, so the structural check runs. */
static void resum(uint8_t *buf, size_t len)
{
	assert_int_equal(ht_hash(HT_HASH_SM3, buf, len - 32, buf + len - 32),
			 HT_OK);
}

static double sigmoidf_ref(float m)
{
	return 1.0f / (1.0f + expf(-m));
}

static void test_tiny_scores_by_hand(void **state)
{
	(void)state;
	size_t len;
	uint8_t *buf = tiny_file(&len);
	struct ht_model *m;
	char err[256];
	assert_int_equal(ht_model_load_buffer(buf, len, &m, err, sizeof err),
			 HT_OK);
	free(buf);
	const struct {
		float x[2];
		float margin;
	} cases[] = {
		{{50, 3}, 0.25f + 0.5f + 0.125f},
		{{50, 10}, 0.25f + 0.5f + 0.125f},
		{{150, 3}, 0.25f - 1.0f + 0.125f},
		{{150, 10}, 0.25f + 2.0f + 0.125f},
		{{100, 6}, 0.25f + 2.0f + 0.125f},  /* equal goes right */
		{{99.99999f, 5.99999f}, 0.25f + 0.5f + 0.125f},
		{{150, 5.99999f}, 0.25f - 1.0f + 0.125f},
		{{-INFINITY, 0}, 0.25f + 0.5f + 0.125f},
		{{INFINITY, INFINITY}, 0.25f + 2.0f + 0.125f},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_true(ht_model_margin(m, cases[i].x) ==
			    (double)cases[i].margin);
		assert_true(ht_model_score(m, cases[i].x) ==
			    sigmoidf_ref(cases[i].margin));
	}
	/* 0.875 by hand: 1 / (1 + e^-0.875) = 0.70579... */
	float x[2] = {50, 3};
	assert_true(fabs(ht_model_score(m, x) - 0.7057850) < 1e-6);
	assert_int_equal(ht_model_feature_count(m), 2);
	assert_string_equal(ht_model_feature_name(m, 0), "amount");
	assert_string_equal(ht_model_feature_name(m, 1), "hour");
	assert_null(ht_model_feature_name(m, 2));
	assert_string_equal(ht_model_version(m), TINY_VERSION);
	assert_int_equal(ht_model_tree_count(m), 2);
	assert_int_equal(ht_model_depth_max(m), 2);
	assert_true(ht_model_base_margin(m) == 0.25);
	ht_model_destroy(m);
	ht_model_destroy(NULL);
}

/* The tiny model's exact bytes, as written independently from the
 * format table of docs/risk-model.md (a Python encoder with hashlib's
 * SM3): pins the layout, so a change to it cannot go unnoticed. */
static const char tiny_hex[] =
	"48544742540d0a1a0100000001000000bf000000000000000674696e792d3100"
	"00803e020000000200000006616d6f756e7404686f7572050000000000000001"
	"000000020000000000c8420000000000000000000000000000003f0100010003"
	"000000040000000000c040000000000000000000000000000080bf0000000000"
	"0000000000000000000040010000000000000000000000000000000000003e19"
	"99ab62ee458b9018d060fe5a1f8105d7ebe52e9c08982d6356b2c9cc3031de";

static void test_layout_is_exact(void **state)
{
	(void)state;
	size_t len;
	uint8_t *buf = tiny_file(&len);
	uint8_t want[sizeof tiny_hex / 2];
	size_t want_len;
	assert_int_equal(ht_hex_decode(tiny_hex, strlen(tiny_hex), want,
				       sizeof want, &want_len), HT_OK);
	assert_int_equal(len, want_len);
	assert_memory_equal(buf, want, len);
	free(buf);
}

static void test_missing_default_directions(void **state)
{
	(void)state;
	size_t len;
	uint8_t *buf = tiny_file(&len);
	struct ht_model *m;
	assert_int_equal(ht_model_load_buffer(buf, len, &m, NULL, 0), HT_OK);
	free(buf);
	/* amount missing -> right (default_left false), then by hour. */
	float a[2] = {NAN, 3};
	assert_true(ht_model_margin(m, a) == (double)(0.25f - 1.0f + 0.125f));
	float b[2] = {NAN, 10};
	assert_true(ht_model_margin(m, b) == (double)(0.25f + 2.0f + 0.125f));
	/* hour missing -> left (default_left true). */
	float c[2] = {150, NAN};
	assert_true(ht_model_margin(m, c) == (double)(0.25f - 1.0f + 0.125f));
	/* amount present and small: hour never read. */
	float d[2] = {1, NAN};
	assert_true(ht_model_margin(m, d) == (double)(0.25f + 0.5f + 0.125f));
	float e[2] = {NAN, NAN};
	assert_true(ht_model_margin(m, e) == (double)(0.25f - 1.0f + 0.125f));
	/* A negative NaN is missing too. */
	float f[2] = {-NAN, -NAN};
	assert_true(ht_model_margin(m, f) == (double)(0.25f - 1.0f + 0.125f));
	ht_model_destroy(m);
}

/* ---- random models against a recursive reference ---------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

static float rnd_float(void)
{
	return (float)(rnd() % 20001) / 1000.0f - 10.0f;
}

/* A random tree of depth <= depth, breadth-first into nodes. */
static size_t random_tree(struct ht_model_node *nodes, size_t cap,
			  unsigned depth, unsigned features)
{
	unsigned level[1024];
	size_t n = 1;
	level[0] = 0;
	for (size_t i = 0; i < n; i++) {
		memset(&nodes[i], 0, sizeof nodes[i]);
		bool split = level[i] < depth && n + 2 <= cap &&
			     (i == 0 || rnd() % 4);
		if (!split) {
			nodes[i].value = rnd_float() / 10.0f;
			continue;
		}
		nodes[i].left = (uint32_t)n;
		nodes[i].right = (uint32_t)n + 1;
		nodes[i].feature = (uint16_t)(rnd() % features);
		nodes[i].default_left = rnd() % 2;
		nodes[i].value = rnd_float();
		level[n] = level[n + 1] = level[i] + 1;
		n += 2;
	}
	return n;
}

static float ref_leaf(const struct ht_model_node *t, uint32_t i,
		      const float *x)
{
	if (t[i].left == 0)
		return t[i].value;
	float v = x[t[i].feature];
	bool left = isnan(v) ? t[i].default_left : v < t[i].value;
	return ref_leaf(t, left ? t[i].left : t[i].right, x);
}

static void test_random_models_match_reference(void **state)
{
	(void)state;
	/* 50 trees: one block of 32 for the vector walker (where the CPU
	 * has AVX-512), then groups of 8 and single trees for the rest */
	enum { TREES = 50, CAP = 127, FEATURES = 7, ROWS = 2000 };
	static struct ht_model_node nodes[TREES][CAP];
	struct ht_model_tree trees[TREES];
	const char *names[FEATURES] = {"f0", "f1", "f2", "f3", "f4", "f5",
				       "f6"};
	for (int round = 0; round < 5; round++) {
		for (int t = 0; t < TREES; t++)
			trees[t] = (struct ht_model_tree){
				nodes[t], random_tree(nodes[t], CAP, 6, FEATURES)};
		struct ht_model_spec s = {NULL, names, FEATURES, rnd_float(),
					  trees, TREES};
		uint8_t *buf;
		size_t len;
		char err[256];
		assert_int_equal(ht_model_encode(&s, &buf, &len, err, sizeof err),
				 HT_OK);
		struct ht_model *m;
		assert_int_equal(ht_model_load_buffer(buf, len, &m, err,
						      sizeof err), HT_OK);
		free(buf);
		assert_memory_equal(ht_model_version(m), "sm3:", 4);
		assert_int_equal(strlen(ht_model_version(m)), 20);
		for (int r = 0; r < ROWS; r++) {
			float x[FEATURES];
			for (int j = 0; j < FEATURES; j++)
				x[j] = rnd() % 5 == 0 ? NAN : rnd_float();
			float sum = s.base_margin;
			for (int t = 0; t < TREES; t++)
				sum += ref_leaf(nodes[t], 0, x);
			assert_true(ht_model_margin(m, x) == (double)sum);
			assert_true(ht_model_margin_portable(m, x) ==
				    (double)sum);
		}
		ht_model_destroy(m);
	}
}

static void test_encode_is_deterministic(void **state)
{
	(void)state;
	struct ht_model_spec s = tiny_spec();
	s.version = NULL;
	uint8_t *a, *b;
	size_t alen, blen;
	assert_int_equal(ht_model_encode(&s, &a, &alen, NULL, 0), HT_OK);
	assert_int_equal(ht_model_encode(&s, &b, &blen, NULL, 0), HT_OK);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	/* A different leaf gives a different derived version. */
	struct ht_model_node t1[] = {{.value = 0.25f}};
	struct ht_model_tree trees[] = {{tiny_t0, 5}, {t1, 1}};
	s.trees = trees;
	uint8_t *c;
	size_t clen;
	assert_int_equal(ht_model_encode(&s, &c, &clen, NULL, 0), HT_OK);
	struct ht_model *ma, *mc;
	assert_int_equal(ht_model_load_buffer(a, alen, &ma, NULL, 0), HT_OK);
	assert_int_equal(ht_model_load_buffer(c, clen, &mc, NULL, 0), HT_OK);
	assert_string_not_equal(ht_model_version(ma), ht_model_version(mc));
	ht_model_destroy(ma);
	ht_model_destroy(mc);
	free(a);
	free(b);
	free(c);
}

static void test_bind_by_name(void **state)
{
	(void)state;
	size_t len;
	uint8_t *buf = tiny_file(&len);
	struct ht_model *m;
	assert_int_equal(ht_model_load_buffer(buf, len, &m, NULL, 0), HT_OK);
	free(buf);
	const char *const catalogue[] = {"hour", "device_new", "amount"};
	uint32_t map[2];
	char err[256];
	assert_int_equal(ht_model_bind(m, catalogue, 3, map, err, sizeof err),
			 HT_OK);
	assert_int_equal(map[0], 2);
	assert_int_equal(map[1], 0);
	float values[3] = {10, 1, 150}, x[2];
	ht_model_gather(m, map, values, x);
	assert_true(x[0] == 150 && x[1] == 10);
	assert_true(ht_model_margin(m, x) == (double)(0.25f + 2.0f + 0.125f));
	const char *const short_cat[] = {"amount", "device_new"};
	assert_int_equal(ht_model_bind(m, short_cat, 2, map, err, sizeof err),
			 HT_ERR_NOT_FOUND);
	assert_non_null(strstr(err, "'hour'"));
	const char *const null_cat[] = {"amount", NULL};
	assert_int_equal(ht_model_bind(m, null_cat, 2, map, err, sizeof err),
			 HT_ERR_INVALID);
	ht_model_destroy(m);
}

/* ---- corrupt files ---------------------------------------------------- */

/* Load buf and expect code with msg in the error text. */
static void expect_error(const uint8_t *buf, size_t len, enum ht_err code,
			 const char *msg)
{
	struct ht_model *m = NULL;
	char err[256] = "";
	enum ht_err e = ht_model_load_buffer(buf, len, &m, err, sizeof err);
	if (e != code || !strstr(err, msg))
		print_error("got %s '%s', want %s '%s'\n", ht_strerror(e), err,
			    ht_strerror(code), msg);
	assert_int_equal(e, code);
	assert_non_null(strstr(err, msg));
	assert_null(m);
}

static void test_corrupt_framing(void **state)
{
	(void)state;
	size_t len;
	uint8_t *buf = tiny_file(&len);
	uint8_t *copy = malloc(len + 8);
	expect_error(buf, 0, HT_ERR_CORRUPT, "truncated");
	expect_error(buf, 5, HT_ERR_CORRUPT, "truncated");
	expect_error(buf, 20, HT_ERR_CORRUPT, "truncated");
	expect_error(buf, len - 1, HT_ERR_CORRUPT, "truncated");
	expect_error(buf, len / 2, HT_ERR_CORRUPT, "truncated");
	expect_error((const uint8_t *)"hello, world, not a model at all", 32,
		     HT_ERR_CORRUPT, "bad magic");
	memcpy(copy, buf, len);
	copy[0] ^= 0x20;
	expect_error(copy, len, HT_ERR_CORRUPT, "bad magic");
	memcpy(copy, buf, len);
	memset(copy + len, 0, 8);
	expect_error(copy, len + 8, HT_ERR_CORRUPT, "trailing");
	/* One flipped bit in a leaf value. */
	memcpy(copy, buf, len);
	copy[OFF_NODE(1) + 12] ^= 0x01;
	expect_error(copy, len, HT_ERR_CORRUPT, "checksum mismatch");
	memcpy(copy, buf, len);
	copy[len - 1] ^= 0x80;
	expect_error(copy, len, HT_ERR_CORRUPT, "checksum mismatch");
	memcpy(copy, buf, len);
	put32(copy + OFF_FORMAT, 2);
	resum(copy, len);
	expect_error(copy, len, HT_ERR_UNSUPPORTED, "format version 2");
	memcpy(copy, buf, len);
	put32(copy + OFF_FORMAT + 4, 7);
	resum(copy, len);
	expect_error(copy, len, HT_ERR_UNSUPPORTED, "objective 7");
	free(copy);
	free(buf);
}

/* Copy the tiny file, apply edit at off (4 bytes), fix the checksum and
 * expect the error. */
static void edit32(uint32_t off, uint32_t v, enum ht_err code,
		   const char *msg)
{
	size_t len;
	uint8_t *buf = tiny_file(&len);
	put32(buf + off, v);
	resum(buf, len);
	expect_error(buf, len, code, msg);
	free(buf);
}

static void editf(uint32_t off, float v, const char *msg)
{
	size_t len;
	uint8_t *buf = tiny_file(&len);
	putf(buf + off, v);
	resum(buf, len);
	expect_error(buf, len, HT_ERR_CORRUPT, msg);
	free(buf);
}

static void test_corrupt_structure(void **state)
{
	(void)state;
	/* Children out of range, backward (a cycle), self, shared. */
	edit32(OFF_NODE(0) + 4, 5, HT_ERR_CORRUPT, "left child 5 is out of range");
	edit32(OFF_NODE(0) + 8, 0xffffffffu, HT_ERR_CORRUPT,
	       "right child 4294967295 is out of range");
	edit32(OFF_NODE(2) + 4, 0, HT_ERR_CORRUPT, "tree 0 node 2: a leaf");
	edit32(OFF_NODE(2) + 4, 1, HT_ERR_CORRUPT, "does not point forward");
	edit32(OFF_NODE(2) + 8, 2, HT_ERR_CORRUPT, "does not point forward");
	edit32(OFF_NODE(2) + 4, 4, HT_ERR_CORRUPT, "both children are node 4");
	edit32(OFF_NODE(0) + 8, 3, HT_ERR_CORRUPT, "not reachable");
	/* Leaf 1 turned into a split onto node 3, which node 2 also names. */
	{
		size_t len;
		uint8_t *buf = tiny_file(&len);
		put32(buf + OFF_NODE(1) + 4, 3);
		put32(buf + OFF_NODE(1) + 8, 4);
		resum(buf, len);
		expect_error(buf, len, HT_ERR_CORRUPT, "two parents");
		free(buf);
	}
	/* Feature index and flags. */
	edit32(OFF_NODE(0), 2, HT_ERR_CORRUPT, "feature 2 out of range");
	edit32(OFF_NODE(0), 0x00020000u, HT_ERR_CORRUPT, "unknown flag bits");
	edit32(OFF_NODE(0), 0x01000000u, HT_ERR_CORRUPT, "unknown flag bits");
	/* Floats. */
	editf(OFF_NODE(0) + 12, NAN, "tree 0 node 0: threshold is not finite");
	editf(OFF_NODE(3) + 12, INFINITY, "leaf value is not finite");
	editf(OFF_TREE1 + 4 + 12, -INFINITY, "tree 1 node 0: leaf value");
	editf(OFF_BASE, NAN, "base margin is not finite");
	/* Counts. */
	edit32(OFF_TREES, 10001, HT_ERR_LIMIT, "10001 trees (at most 10000)");
	edit32(OFF_TREES, 3, HT_ERR_CORRUPT, "tree 2 of 3 is missing");
	edit32(OFF_TREES, 1, HT_ERR_CORRUPT, "unexpected bytes after");
	edit32(OFF_TREES, 0, HT_ERR_CORRUPT, "no trees");
	edit32(OFF_FEATURES, 1025, HT_ERR_LIMIT, "1025 features");
	edit32(OFF_FEATURES, 0, HT_ERR_CORRUPT, "no features");
	edit32(OFF_TREE0, 65537, HT_ERR_LIMIT, "65537 nodes");
	edit32(OFF_TREE0, 0, HT_ERR_CORRUPT, "tree 0 has no nodes");
	edit32(OFF_TREE1, 2, HT_ERR_CORRUPT, "truncated inside tree 1");
}

static void test_corrupt_text(void **state)
{
	(void)state;
	size_t len;
	uint8_t *buf = tiny_file(&len);
	/* A wrong name length: "amou", then a length byte 'n' (110) that is
	 * over the limit. */
	uint8_t *copy = malloc(len);
	memcpy(copy, buf, len);
	copy[OFF_NAMES] = 4;
	resum(copy, len);
	struct ht_model *m = NULL;
	char err[256];
	assert_int_equal(ht_model_load_buffer(copy, len, &m, err, sizeof err),
			 HT_ERR_CORRUPT);
	assert_non_null(strstr(err, "feature name 1"));
	assert_null(m);
	/* A control character in a name. */
	memcpy(copy, buf, len);
	copy[OFF_NAMES + 2] = '\n';
	resum(copy, len);
	expect_error(copy, len, HT_ERR_CORRUPT, "feature name 0");
	/* A space in the version string is fine, a quote is not. */
	memcpy(copy, buf, len);
	copy[OFF_VERSION_LEN + 1] = '"';
	resum(copy, len);
	expect_error(copy, len, HT_ERR_CORRUPT, "version string");
	memcpy(copy, buf, len);
	copy[OFF_VERSION_LEN] = 200;
	resum(copy, len);
	expect_error(copy, len, HT_ERR_CORRUPT, "version string");
	free(copy);
	free(buf);
	/* Duplicate names are refused (by encode, which loads it back). */
	const char *const dup[] = {"amount", "amount"};
	struct ht_model_spec s = tiny_spec();
	s.feature_names = dup;
	uint8_t *out;
	size_t out_len;
	assert_int_equal(ht_model_encode(&s, &out, &out_len, err, sizeof err),
			 HT_ERR_CORRUPT);
	assert_non_null(strstr(err, "appears twice"));
	const char *const bad[] = {"amount", "two words"};
	s.feature_names = bad;
	assert_int_equal(ht_model_encode(&s, &out, &out_len, err, sizeof err),
			 HT_ERR_INVALID);
}

static void test_too_deep(void **state)
{
	(void)state;
	/* A chain: node 2k splits into leaf 2k+1 and node 2k+2. */
	enum { DEPTH = HT_MODEL_DEPTH_MAX + 1 };
	struct ht_model_node chain[2 * DEPTH + 1];
	memset(chain, 0, sizeof chain);
	for (uint32_t k = 0; k < DEPTH; k++)
		chain[2 * k] = (struct ht_model_node){2 * k + 1, 2 * k + 2, 0,
						      false, (float)k};
	struct ht_model_tree trees[] = {{chain, 2 * DEPTH + 1}};
	const char *names[] = {"x"};
	struct ht_model_spec s = {"deep", names, 1, 0.0f, trees, 1};
	uint8_t *out;
	size_t len;
	char err[256];
	assert_int_equal(ht_model_encode(&s, &out, &len, err, sizeof err),
			 HT_ERR_LIMIT);
	assert_non_null(strstr(err, "deeper than 64"));
	/* Exactly 64 deep loads, and walks to the bottom. */
	trees[0].node_count = 2 * HT_MODEL_DEPTH_MAX + 1;
	chain[2 * HT_MODEL_DEPTH_MAX] = (struct ht_model_node){.value = 42};
	assert_int_equal(ht_model_encode(&s, &out, &len, err, sizeof err),
			 HT_OK);
	struct ht_model *m;
	assert_int_equal(ht_model_load_buffer(out, len, &m, err, sizeof err),
			 HT_OK);
	assert_int_equal(ht_model_depth_max(m), HT_MODEL_DEPTH_MAX);
	float x = 1e9f;
	assert_true(ht_model_margin(m, &x) == 42.0);
	ht_model_destroy(m);
	free(out);
}

static void test_load_file(void **state)
{
	(void)state;
	char path[] = "/tmp/test_model_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t len;
	uint8_t *buf = tiny_file(&len);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
	struct ht_model *m;
	char err[512];
	assert_int_equal(ht_model_load(path, &m, err, sizeof err), HT_OK);
	uint8_t sum[32];
	ht_model_checksum(m, sum);
	assert_memory_equal(sum, buf + len - 32, 32);
	ht_model_destroy(m);
	/* Truncated on disk: the error names the file. */
	assert_int_equal(truncate(path, (off_t)len - 3), 0);
	assert_int_equal(ht_model_load(path, &m, err, sizeof err),
			 HT_ERR_CORRUPT);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "truncated"));
	unlink(path);
	assert_int_equal(ht_model_load(path, &m, err, sizeof err), HT_ERR_IO);
	assert_non_null(strstr(err, "No such file"));
	assert_int_equal(ht_model_load("/tmp", &m, err, sizeof err),
			 HT_ERR_IO);
	free(buf);
}

/* Random bytes changed, checksum fixed: never a crash, an error names
 * something, and whatever loads scores to a finite probability. */
static void test_random_corruption(void **state)
{
	(void)state;
	size_t len;
	uint8_t *buf = tiny_file(&len);
	uint8_t *copy = malloc(len);
	int loaded = 0;
	for (int i = 0; i < 20000; i++) {
		memcpy(copy, buf, len);
		int edits = 1 + (int)(rnd() % 3);
		for (int k = 0; k < edits; k++)
			copy[rnd() % (len - 32)] = (uint8_t)rnd();
		resum(copy, len);
		struct ht_model *m = NULL;
		char err[256] = "";
		enum ht_err e = ht_model_load_buffer(copy, len, &m, err,
						     sizeof err);
		if (e) {
			assert_null(m);
			assert_true(strlen(err) > 0);
			continue;
		}
		loaded++;
		float x[2] = {(float)(rnd() % 200), NAN};
		double p = ht_model_score(m, x);
		assert_true(p >= 0.0 && p <= 1.0);
		ht_model_destroy(m);
	}
	assert_true(loaded > 0); /* thresholds and leaves may change */
	free(copy);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tiny_scores_by_hand),
		cmocka_unit_test(test_layout_is_exact),
		cmocka_unit_test(test_missing_default_directions),
		cmocka_unit_test(test_random_models_match_reference),
		cmocka_unit_test(test_encode_is_deterministic),
		cmocka_unit_test(test_bind_by_name),
		cmocka_unit_test(test_corrupt_framing),
		cmocka_unit_test(test_corrupt_structure),
		cmocka_unit_test(test_corrupt_text),
		cmocka_unit_test(test_too_deep),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_random_corruption),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

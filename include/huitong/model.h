/*
 * model.h — huitong's gradient-boosted tree model: its file format, the
 * loader that checks every byte of it, and the tree walker that scores a
 * payment in process (docs/risk-model.md).
 *
 * Owner: risk. A model is a binary-logistic ensemble of regression trees
 * (XGBoost's `binary:logistic` with the `gbtree` booster): the margin is
 * the base margin plus one leaf value per tree, and the score is the
 * sigmoid of the margin. Models are trained by XGBoost (train.h, a
 * separate library) and converted to this format; nothing here links
 * XGBoost, allocates or fails while scoring, or trusts a model file
 * before checking it.
 *
 * A loaded model is immutable: any number of threads may score with it at
 * once. It is freed by ht_model_destroy.
 *
 * Scoring follows XGBoost's CPU predictor exactly: at a split, go left
 * when x[feature] < threshold (a float comparison), follow the node's
 * default direction when x[feature] is NaN (missing); add the leaves of
 * the trees in order to a float that starts at the base margin; the
 * probability is 1 / (1 + expf(-margin)) in float.
 */
#ifndef HUITONG_MODEL_H
#define HUITONG_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "huitong/common.h"

/* Trees in one model. 10,000 rounds is far past where boosting on
 * payments stops improving (hundreds); it bounds load time and memory. */
#define HT_MODEL_TREES_MAX 10000u

/* Nodes in one tree: 2^16 holds a complete tree of depth 15. */
#define HT_MODEL_NODES_MAX 65536u

/* Depth of a tree (the root is depth 0). Also bounds the walker's steps
 * through one tree. XGBoost's depthwise trees are at most max_depth deep;
 * lossguide trees can be deeper, 64 is far beyond any useful tree. */
#define HT_MODEL_DEPTH_MAX 64u

/* Feature columns of one model. */
#define HT_MODEL_FEATURES_MAX 1024u

/* Bytes of a feature name or of the version string, NUL excluded. */
#define HT_MODEL_NAME_BYTES_MAX 64u

/* Bytes of a whole model file: bounds what a loader reads into memory.
 * A 300-tree depth-6 model is about 0.6 MiB. */
#define HT_MODEL_FILE_BYTES_MAX (256u * 1024 * 1024)

_Static_assert(HT_MODEL_FEATURES_MAX <= 65536, "feature index is 16 bits");
_Static_assert(HT_MODEL_NAME_BYTES_MAX < 256, "name length is one byte");

/* The file's first eight bytes and the format version this code reads. */
#define HT_MODEL_MAGIC "HTGBT\r\n\x1a"
#define HT_MODEL_MAGIC_BYTES 8
#define HT_MODEL_FORMAT_VERSION 1u

/* Objective codes in the header. Only binary:logistic exists. */
#define HT_MODEL_OBJECTIVE_BINARY_LOGISTIC 1u

struct ht_model;

/*
 * Load and check a model file (format in docs/risk-model.md). Every count,
 * index, depth, float and the SM3 checksum are checked before anything is
 * used: a bad file gives an error, never a crash and never a model that
 * scores garbage. On failure err (if err_size > 0) holds one line naming
 * what is wrong and where ("tree 3 node 7: left child 2 does not point
 * forward"), and *out is untouched. The caller frees *out with
 * ht_model_destroy.
 *
 * Errors: HT_ERR_INVALID (NULL path, buffer or out), HT_ERR_IO (cannot
 * read path, or not a regular file), HT_ERR_CORRUPT (bad magic,
 * truncated, checksum mismatch, any structural fault), HT_ERR_LIMIT (a
 * count above the limits above), HT_ERR_UNSUPPORTED (another format
 * version or objective), HT_ERR_NOMEM, HT_ERR_CRYPTO (SM3 unavailable).
 */
enum ht_err ht_model_load(const char *path, struct ht_model **out, char *err,
			  size_t err_size);

/* The same from len bytes at buf (nothing of buf is kept: it may be
 * freed as soon as this returns). */
enum ht_err ht_model_load_buffer(const void *buf, size_t len,
				 struct ht_model **out, char *err,
				 size_t err_size);

/* Free a model. Accepts NULL. */
void ht_model_destroy(struct ht_model *m);

/*
 * The margin (log-odds) of one row: x holds ht_model_feature_count(m)
 * floats in the model's column order, NaN for a missing value. The sum is
 * kept in float exactly as XGBoost's CPU predictor keeps it; the result
 * is that float, widened. No allocation, no recursion, no failure.
 */
double ht_model_margin(const struct ht_model *m, const float *x);

/* The same margin from the portable walker, which uses no vector
 * instructions: ht_model_margin walks 16 trees to a vector where the CPU
 * has AVX-512 (x86-64), and tests check the two agree bit for bit. */
double ht_model_margin_portable(const struct ht_model *m, const float *x);

/* Does ht_model_margin use the vector walker on this machine? */
bool ht_model_vector(const struct ht_model *m);

/* The probability of the positive class (fraud) of one row: the sigmoid
 * of ht_model_margin, computed in float as XGBoost does, in [0, 1]. */
double ht_model_score(const struct ht_model *m, const float *x);

/* Number of feature columns the model reads. */
size_t ht_model_feature_count(const struct ht_model *m);

/* Name of column i (i < ht_model_feature_count), NUL-terminated, valid
 * until ht_model_destroy; NULL when i is out of range. */
const char *ht_model_feature_name(const struct ht_model *m, size_t i);

/* The model's version string, valid until ht_model_destroy. */
const char *ht_model_version(const struct ht_model *m);

/* Number of trees, and the deepest tree's depth (root = 0). */
size_t ht_model_tree_count(const struct ht_model *m);
unsigned ht_model_depth_max(const struct ht_model *m);

/* The base margin every score starts from. */
double ht_model_base_margin(const struct ht_model *m);

/* The SM3 checksum stored at the end of the file the model came from. */
void ht_model_checksum(const struct ht_model *m, uint8_t out[32]);

/* True when name may be a feature name in a model file: 1 to
 * HT_MODEL_NAME_BYTES_MAX printable ASCII characters without space, comma,
 * quote or backslash (so it sits in JSON, CSV headers and rule files as
 * it is). */
bool ht_model_name_valid(const char *name);

/*
 * Map the model's columns onto a caller's feature catalogue: names[0..
 * name_count) are the caller's feature names in the caller's order; on
 * success map[i] (map holds ht_model_feature_count(m) entries) is the
 * catalogue index of model column i. Catalogue features the model does
 * not use are fine; a model column the catalogue lacks is an error
 * (HT_ERR_NOT_FOUND, err names the column). HT_ERR_INVALID for a NULL
 * name in the catalogue.
 */
enum ht_err ht_model_bind(const struct ht_model *m, const char *const *names,
			  size_t name_count, uint32_t *map, char *err,
			  size_t err_size);

/* Gather one row for the model from a catalogue-ordered row: x[i] =
 * values[map[i]] for each model column, map as ht_model_bind made it. */
void ht_model_gather(const struct ht_model *m, const uint32_t *map,
		     const float *values, float *x);

/*
 * Building a model file. A tree is a flat array of nodes whose root is
 * node 0. A split has left and right children with indices greater than
 * its own (so no path can loop) and below the tree's node count; a leaf
 * has left == right == 0 (0 is the root, never a child).
 */
struct ht_model_node {
	uint32_t left;      /* split: index of the child for x < value; leaf: 0 */
	uint32_t right;     /* split: index of the child for x >= value; leaf: 0 */
	uint16_t feature;   /* split: column index; leaf: 0 */
	bool default_left;  /* split: a NaN goes left (else right); leaf: false */
	float value;        /* split: threshold; leaf: value added to margin */
};

struct ht_model_tree {
	const struct ht_model_node *nodes;
	size_t node_count;
};

struct ht_model_spec {
	/* NULL: "sm3:" and the first 16 hex digits of the SM3 of the file's
	 * body (everything after the version field but the checksum), so
	 * the same trees always get the same version. */
	const char *version;
	const char *const *feature_names; /* feature_count names, unique */
	size_t feature_count;
	float base_margin;
	const struct ht_model_tree *trees;
	size_t tree_count;
};

/*
 * Encode spec as a model file: *out (malloc'd, the caller frees it) gets
 * *out_len bytes, checksum included. The result is loaded back with
 * ht_model_load_buffer before it is returned, so an encoded model is
 * always one the loader accepts; a spec it would refuse gives the
 * loader's error (HT_ERR_CORRUPT, HT_ERR_LIMIT) and its message.
 * Errors also: HT_ERR_INVALID (a name or version with characters the
 * format forbids), HT_ERR_NOMEM, HT_ERR_CRYPTO.
 */
enum ht_err ht_model_encode(const struct ht_model_spec *spec, uint8_t **out,
			    size_t *out_len, char *err, size_t err_size);

#endif

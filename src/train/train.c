/*
 * train.c — train the fraud model with XGBoost's C API and convert the
 * booster to huitong's own model format (train.h, docs/risk-model.md).
 *
 * Owner: risk. This file is the only caller of XGBoost and is built into
 * huitong_train, never into the core: scoring uses model.c's walker. It
 * owns one training run at a time (a DMatrix and a booster, freed before
 * it returns) and must never write a model that scores differently from
 * XGBoost: every conversion is checked against XGBoost's predictions
 * before the file is written.
 *
 * Conversion reads XGBoost's JSON model (XGBoosterSaveModelToBuffer,
 * format "json") with jansson: per tree the parallel arrays
 * left_children, right_children, split_indices, split_conditions (a
 * leaf's value for a leaf) and default_left, and the learner's
 * base_score, a probability turned into a margin as XGBoost does. Trees
 * are renumbered breadth-first from the root, so children always follow
 * their parent and deleted (pruned) nodes disappear.
 */
#include "huitong/train.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <xgboost/c_api.h>

/* Training rows compared with XGBoost after conversion (evenly spread). */
#define CHECK_ROWS_MAX 100000u
/* The largest |ours - XGBoost's| probability accepted. */
#define CHECK_DIFF_MAX 1e-6
/* XGBoost's JSON model read back: ~10 KB per depth-6 tree. */
#define XGB_JSON_BYTES_MAX ((size_t)1 << 31)


/* An XGBoost call failed: its own message, prefixed by what we did. */
static enum ht_err xgb_fail(char *err, size_t err_size, const char *what)
{
	const char *why = XGBGetLastError();
	return ht_fail(err, err_size, HT_ERR_CORRUPT, "XGBoost %s: %s", what,
		    why && *why ? why : "failed");
}

void ht_train_params_default(struct ht_train_params *p)
{
	memset(p, 0, sizeof *p);
	p->rounds = 300;
	p->max_depth = 6;
	p->eta = 0.1;
	p->subsample = 0.8;
	p->colsample_bytree = 0.8;
	p->min_child_weight = 1.0;
	p->scale_pos_weight = 1.0;
	p->max_bin = 256;
	p->seed = 0;
	p->nthread = 1;
	p->eval_every = 10;
}

/* ---- arguments -------------------------------------------------------- */

static bool unit_interval(double v)
{
	return v > 0.0 && v <= 1.0;
}

enum ht_err ht_train_params_check(const struct ht_train_params *p, char *err,
				  size_t err_size)
{
	if (!p)
		return ht_fail(err, err_size, HT_ERR_INVALID, "no parameters");
	if (p->rounds < 1 || p->rounds > HT_MODEL_TREES_MAX)
		return ht_fail(err, err_size, HT_ERR_INVALID,
			    "rounds %u: 1 to %u", p->rounds, HT_MODEL_TREES_MAX);
	if (p->max_depth < 1 || p->max_depth > HT_TRAIN_DEPTH_MAX)
		return ht_fail(err, err_size, HT_ERR_INVALID, "depth %u: 1 to %u",
			    p->max_depth, HT_TRAIN_DEPTH_MAX);
	if (!unit_interval(p->eta) || !unit_interval(p->subsample) ||
	    !unit_interval(p->colsample_bytree))
		return ht_fail(err, err_size, HT_ERR_INVALID,
			    "eta, subsample and colsample must be in (0, 1]");
	if (!(p->min_child_weight >= 0.0 && p->min_child_weight <= 1e9) ||
	    !(p->scale_pos_weight >= 0.0 && p->scale_pos_weight <= 1e9))
		return ht_fail(err, err_size, HT_ERR_INVALID,
			    "min_child_weight and scale_pos_weight must be in "
			    "[0, 1e9]");
	if (p->max_bin < 2 || p->max_bin > 65536)
		return ht_fail(err, err_size, HT_ERR_INVALID,
			    "max_bin %u: 2 to 65536", p->max_bin);
	if (p->nthread < 1 || p->nthread > HT_TRAIN_THREADS_MAX)
		return ht_fail(err, err_size, HT_ERR_INVALID,
			    "nthread %u: 1 to %u", p->nthread,
			    HT_TRAIN_THREADS_MAX);
	return HT_OK;
}

static enum ht_err check_shape(const float *X, size_t rows, size_t cols,
			       char *err, size_t err_size)
{
	if (!X || rows == 0 || cols == 0)
		return ht_fail(err, err_size, HT_ERR_INVALID, "an empty matrix");
	if (rows > HT_TRAIN_ROWS_MAX || cols > HT_MODEL_FEATURES_MAX ||
	    rows > HT_TRAIN_CELLS_MAX / cols)
		return ht_fail(err, err_size, HT_ERR_LIMIT,
			    "%zu rows x %zu columns (at most %u rows, %u "
			    "columns, %zu cells)", rows, cols, HT_TRAIN_ROWS_MAX,
			    HT_MODEL_FEATURES_MAX, HT_TRAIN_CELLS_MAX);
	for (size_t i = 0; i < rows * cols; i++)
		if (isinf(X[i]))
			return ht_fail(err, err_size, HT_ERR_INVALID,
				    "row %zu column %zu is infinite (use NaN "
				    "for a missing value)", i / cols, i % cols);
	return HT_OK;
}

/* Every name valid for a model file and none twice. */
static enum ht_err check_names(const char *const *names, size_t cols,
			       char *err, size_t err_size)
{
	for (size_t i = 0; i < cols; i++) {
		if (!ht_model_name_valid(names[i]))
			return ht_fail(err, err_size, HT_ERR_INVALID,
				    "column %zu: a feature name is 1 to %u "
				    "printable ASCII characters without space , "
				    "\" \\", i, HT_MODEL_NAME_BYTES_MAX);
		for (size_t j = 0; j < i; j++) /* <= 1024 columns */
			if (!strcmp(names[i], names[j]))
				return ht_fail(err, err_size, HT_ERR_INVALID,
					    "column name '%s' appears twice",
					    names[i]);
	}
	return HT_OK;
}

/* Labels are 0 or 1 and both occur; *positives counts the 1s. */
static enum ht_err check_labels(const float *y, size_t rows,
				size_t *positives, char *err, size_t err_size)
{
	size_t pos = 0;
	for (size_t i = 0; i < rows; i++) {
		if (y[i] != 0.0f && y[i] != 1.0f)
			return ht_fail(err, err_size, HT_ERR_INVALID,
				    "label of row %zu is %g, not 0 or 1", i,
				    (double)y[i]);
		pos += y[i] == 1.0f;
	}
	if (pos == 0 || pos == rows)
		return ht_fail(err, err_size, HT_ERR_INVALID,
			    "every label is %d: nothing to learn", pos ? 1 : 0);
	*positives = pos;
	return HT_OK;
}

/* ---- XGBoost ---------------------------------------------------------- */

static enum ht_err make_matrix(const float *X, size_t rows, size_t cols,
			       unsigned nthread, DMatrixHandle *out, char *err,
			       size_t err_size)
{
	if (XGDMatrixCreateFromMat_omp(X, rows, cols, NAN, out, (int)nthread))
		return xgb_fail(err, err_size, "matrix");
	return HT_OK;
}

static enum ht_err set_param(BoosterHandle b, const char *name,
			     const char *value, char *err, size_t err_size)
{
	if (XGBoosterSetParam(b, name, value)) {
		char what[96];
		snprintf(what, sizeof what, "parameter %s=%s", name, value);
		return xgb_fail(err, err_size, what);
	}
	return HT_OK;
}

/*
 * The booster's parameters. `hist` because it is deterministic for a
 * given seed and thread count (and measured identical across 1 and 2
 * threads) and ~10x faster than `exact`; base_score pinned so a newer
 * XGBoost's automatic intercept cannot change a model silently.
 */
static enum ht_err configure(BoosterHandle b, const struct ht_train_params *p,
			     double spw, char *err, size_t err_size)
{
	char v[8][32];
	snprintf(v[0], sizeof v[0], "%u", p->max_depth);
	snprintf(v[1], sizeof v[1], "%.17g", p->eta);
	snprintf(v[2], sizeof v[2], "%.17g", p->subsample);
	snprintf(v[3], sizeof v[3], "%.17g", p->colsample_bytree);
	snprintf(v[4], sizeof v[4], "%.17g", p->min_child_weight);
	snprintf(v[5], sizeof v[5], "%.17g", spw);
	snprintf(v[6], sizeof v[6], "%u", p->max_bin);
	snprintf(v[7], sizeof v[7], "%u", p->seed);
	char nthread[16];
	snprintf(nthread, sizeof nthread, "%u", p->nthread);
	const char *kv[][2] = {
		{"booster", "gbtree"},       {"objective", "binary:logistic"},
		{"tree_method", "hist"},     {"base_score", "0.5"},
		{"max_depth", v[0]},         {"eta", v[1]},
		{"subsample", v[2]},         {"colsample_bytree", v[3]},
		{"min_child_weight", v[4]},  {"scale_pos_weight", v[5]},
		{"max_bin", v[6]},           {"seed", v[7]},
		{"nthread", nthread},        {"verbosity", "1"},
	};
	for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
		enum ht_err e = set_param(b, kv[i][0], kv[i][1], err, err_size);
		if (e)
			return e;
	}
	return HT_OK;
}

/* "[9]\ttrain-logloss:0.1\ttrain-aucpr:0.9" -> the two numbers. */
static void parse_eval(const char *s, double *logloss, double *aucpr)
{
	const char *l = strstr(s, "train-logloss:");
	const char *a = strstr(s, "train-aucpr:");
	*logloss = l ? strtod(l + strlen("train-logloss:"), NULL) : NAN;
	*aucpr = a ? strtod(a + strlen("train-aucpr:"), NULL) : NAN;
}

static enum ht_err boost(BoosterHandle b, DMatrixHandle d,
			 const struct ht_train_params *p, char *err,
			 size_t err_size)
{
	bool eval = p->progress && p->eval_every;
	if (eval && (set_param(b, "eval_metric", "logloss", err, err_size) ||
		     set_param(b, "eval_metric", "aucpr", err, err_size)))
		return HT_ERR_CORRUPT;
	for (unsigned i = 0; i < p->rounds; i++) {
		if (XGBoosterUpdateOneIter(b, (int)i, d))
			return xgb_fail(err, err_size, "training round");
		if (!eval || ((i + 1) % p->eval_every && i + 1 != p->rounds))
			continue;
		const char *names[] = {"train"};
		const char *out = NULL;
		if (XGBoosterEvalOneIter(b, (int)i, &d, names, 1, &out))
			return xgb_fail(err, err_size, "evaluation");
		struct ht_train_progress pr = {.round = i + 1,
					       .rounds = p->rounds};
		parse_eval(out ? out : "", &pr.logloss, &pr.aucpr);
		p->progress(p->progress_ctx, &pr);
	}
	return HT_OK;
}

/* Predictions (probabilities) of b on d; the pointer is XGBoost's,
 * valid until the next call on b. */
static enum ht_err predict(BoosterHandle b, DMatrixHandle d, size_t rows,
			   const float **out, char *err, size_t err_size)
{
	static const char config[] =
		"{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
		"\"iteration_end\": 0, \"strict_shape\": false}";
	const bst_ulong *shape = NULL;
	bst_ulong dim = 0;
	if (XGBoosterPredictFromDMatrix(b, d, config, &shape, &dim, out))
		return xgb_fail(err, err_size, "prediction");
	if (dim != 1 || !shape || shape[0] != rows)
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "XGBoost predicted an unexpected shape");
	return HT_OK;
}

/* ---- conversion ------------------------------------------------------- */

/* The converted trees: nodes of every tree in one array. */
struct conv {
	struct ht_model_tree *trees;
	struct ht_model_node *nodes;
	size_t tree_count;
	float base_margin;
};

static void conv_free(struct conv *c)
{
	free(c->trees);
	free(c->nodes);
	memset(c, 0, sizeof *c);
}

static bool json_int_at(json_t *a, size_t i, long long *v)
{
	json_t *x = json_array_get(a, i);
	if (json_is_boolean(x)) { /* default_left is a bool in later XGBoost */
		*v = json_is_true(x);
		return true;
	}
	if (!json_is_integer(x))
		return false;
	*v = json_integer_value(x);
	return true;
}

/* A number XGBoost writes either as a JSON number or as a string. */
static bool json_num(json_t *x, double *v)
{
	if (json_is_number(x)) {
		*v = json_number_value(x);
		return true;
	}
	if (!json_is_string(x))
		return false;
	char *end;
	errno = 0;
	*v = strtod(json_string_value(x), &end);
	return !errno && end != json_string_value(x) && !*end;
}

/*
 * XGBoost writes each float as the shortest decimal that reads back as
 * that float; jansson gives the double nearest that decimal, and rounding
 * it to float is a second rounding that could, very rarely, land on the
 * wrong neighbour when the double lies next to the midpoint between two
 * floats (a threshold one ulp off would send a row equal to it the other
 * way). Near a midpoint, the right float is the one whose own shortest
 * decimal reads as exactly this double.
 */
static bool float_exact(double d, float *out)
{
	float f = (float)d;
	if (!isfinite(f))
		return false;
	*out = f;
	if ((double)f == d)
		return true;
	float other = nextafterf(f, d > (double)f ? INFINITY : -INFINITY);
	double mid = ((double)f + (double)other) / 2; /* exact in double */
	if (fabs(d - mid) > 4 * fabs(nextafter(d, INFINITY) - d))
		return true;
	const float cand[2] = {f, other};
	for (int k = 0; k < 2; k++) {
		char buf[32];
		for (int digits = 1; digits <= 9; digits++) {
			snprintf(buf, sizeof buf, "%.*g", digits,
				 (double)cand[k]);
			if (strtof(buf, NULL) == cand[k])
				break;
		}
		if (strtod(buf, NULL) == d) {
			*out = cand[k];
			return true;
		}
	}
	return false;
}

/* A float XGBoost wrote as a JSON number (or as a string). */
static bool json_float(json_t *x, float *v)
{
	if (json_is_string(x)) {
		char *end;
		errno = 0;
		*v = strtof(json_string_value(x), &end);
		return !errno && end != json_string_value(x) && !*end &&
		       isfinite(*v);
	}
	return json_is_number(x) && float_exact(json_number_value(x), v);
}

/* The parallel arrays of one XGBoost tree. */
struct xtree {
	json_t *left, *right, *feature, *cond, *dleft;
	size_t n;
};

static enum ht_err xtree_get(json_t *tree, size_t t, struct xtree *x,
			     char *err, size_t err_size)
{
	x->left = json_object_get(tree, "left_children");
	x->right = json_object_get(tree, "right_children");
	x->feature = json_object_get(tree, "split_indices");
	x->cond = json_object_get(tree, "split_conditions");
	x->dleft = json_object_get(tree, "default_left");
	x->n = json_array_size(x->left);
	json_t *types = json_object_get(tree, "split_type");
	json_t *cats = json_object_get(tree, "categories_nodes");
	if (x->n < 1 || x->n > HT_MODEL_NODES_MAX ||
	    json_array_size(x->right) != x->n ||
	    json_array_size(x->feature) != x->n ||
	    json_array_size(x->cond) != x->n ||
	    json_array_size(x->dleft) != x->n)
		return ht_fail(err, err_size, HT_ERR_UNSUPPORTED,
			    "XGBoost tree %zu: missing or uneven node arrays "
			    "(or more than %u nodes)", t, HT_MODEL_NODES_MAX);
	for (size_t i = 0; i < json_array_size(types); i++) {
		long long v;
		if (!json_int_at(types, i, &v) || v != 0)
			return ht_fail(err, err_size, HT_ERR_UNSUPPORTED,
				    "XGBoost tree %zu: a categorical split", t);
	}
	if (json_array_size(cats))
		return ht_fail(err, err_size, HT_ERR_UNSUPPORTED,
			    "XGBoost tree %zu: categorical splits", t);
	return HT_OK;
}

/*
 * Convert XGBoost node o, placed at new index k, whose children (if any)
 * go to *tail and *tail + 1. seen marks nodes already placed, so a
 * malformed tree cannot loop; queue[k] is old node o.
 */
static enum ht_err convert_node(const struct xtree *x, size_t t, size_t cols,
				uint32_t o, uint32_t k, uint32_t *queue,
				uint32_t *tail, uint8_t *seen,
				struct ht_model_node *out, char *err,
				size_t err_size)
{
	long long l, r, f, d;
	float value;
	if (!json_int_at(x->left, o, &l) || !json_int_at(x->right, o, &r) ||
	    !json_int_at(x->feature, o, &f) || !json_int_at(x->dleft, o, &d) ||
	    !json_float(json_array_get(x->cond, o), &value))
		return ht_fail(err, err_size, HT_ERR_UNSUPPORTED,
			    "XGBoost tree %zu node %u: not numbers, or a float "
			    "that does not read back exactly", t, o);
	memset(&out[k], 0, sizeof out[k]);
	out[k].value = value;
	if (l == -1 && r == -1)
		return HT_OK; /* a leaf: its value is split_conditions[o] */
	if (l < 0 || r < 0 || (size_t)l >= x->n || (size_t)r >= x->n ||
	    l == r || seen[l] || seen[r] || f < 0 || (size_t)f >= cols)
		return ht_fail(err, err_size, HT_ERR_UNSUPPORTED,
			    "XGBoost tree %zu node %u: children %lld, %lld or "
			    "feature %lld out of range", t, o, l, r, f);
	seen[l] = seen[r] = 1;
	out[k].left = *tail;
	out[k].right = *tail + 1;
	out[k].feature = (uint16_t)f;
	out[k].default_left = d != 0;
	queue[(*tail)++] = (uint32_t)l;
	queue[(*tail)++] = (uint32_t)r;
	return HT_OK;
}

/* Renumber one tree breadth-first into out; *count gets its size. */
static enum ht_err convert_tree(json_t *tree, size_t t, size_t cols,
				struct ht_model_node *out, size_t *count,
				char *err, size_t err_size)
{
	struct xtree x;
	enum ht_err e = xtree_get(tree, t, &x, err, err_size);
	if (e)
		return e;
	uint32_t *queue = malloc(x.n * sizeof *queue);
	uint8_t *seen = calloc(x.n, 1);
	if (!queue || !seen) {
		free(queue);
		free(seen);
		return ht_fail(err, err_size, HT_ERR_NOMEM, "out of memory");
	}
	uint32_t head = 0, tail = 1;
	queue[0] = 0;
	seen[0] = 1;
	while (head < tail && !e) {
		HT_ASSERT(tail <= x.n);
		e = convert_node(&x, t, cols, queue[head], head, queue, &tail,
				 seen, out, err, err_size);
		head++;
	}
	free(queue);
	free(seen);
	*count = tail;
	return e;
}

/* The learner's objective, booster and base score. */
static enum ht_err convert_learner(json_t *learner, struct conv *c,
				   char *err, size_t err_size)
{
	json_t *obj = json_object_get(json_object_get(learner, "objective"),
				      "name");
	json_t *gb = json_object_get(learner, "gradient_booster");
	json_t *param = json_object_get(learner, "learner_model_param");
	json_t *npt = json_object_get(
		json_object_get(json_object_get(gb, "model"),
				"gbtree_model_param"),
		"num_parallel_tree");
	double parallel;
	float base;
	if (!json_is_string(obj) ||
	    strcmp(json_string_value(obj), "binary:logistic") ||
	    !json_is_string(json_object_get(gb, "name")) ||
	    strcmp(json_string_value(json_object_get(gb, "name")), "gbtree"))
		return ht_fail(err, err_size, HT_ERR_UNSUPPORTED,
			    "XGBoost model is not a binary:logistic gbtree");
	if (!json_num(npt, &parallel) || parallel != 1.0)
		return ht_fail(err, err_size, HT_ERR_UNSUPPORTED,
			    "XGBoost model has parallel trees (a forest)");
	if (!json_float(json_object_get(param, "base_score"), &base) ||
	    !(base > 0.0f && base < 1.0f))
		return ht_fail(err, err_size, HT_ERR_UNSUPPORTED,
			    "XGBoost model has no base_score in (0, 1)");
	/* XGBoost's ProbToMargin for the logistic objective, in float; + 0
	 * turns its -0 for 0.5 into +0, which sums identically. */
	c->base_margin = -logf(1.0f / base - 1.0f) + 0.0f;
	return HT_OK;
}

static enum ht_err convert_trees(json_t *model, size_t cols, struct conv *c,
				 char *err, size_t err_size)
{
	json_t *trees = json_object_get(model, "trees");
	json_t *info = json_object_get(model, "tree_info");
	size_t n = json_array_size(trees), total = 0;
	if (n < 1 || n > HT_MODEL_TREES_MAX || json_array_size(info) != n)
		return ht_fail(err, err_size, HT_ERR_UNSUPPORTED,
			    "XGBoost model has %zu trees (1 to %u)", n,
			    HT_MODEL_TREES_MAX);
	for (size_t t = 0; t < n; t++) {
		long long group;
		if (!json_int_at(info, t, &group) || group != 0)
			return ht_fail(err, err_size, HT_ERR_UNSUPPORTED,
				    "XGBoost tree %zu is not for class 0", t);
		total += json_array_size(json_object_get(
			json_array_get(trees, t), "left_children"));
	}
	c->trees = calloc(n, sizeof *c->trees);
	c->nodes = calloc(total ? total : 1, sizeof *c->nodes);
	if (!c->trees || !c->nodes)
		return ht_fail(err, err_size, HT_ERR_NOMEM, "out of memory");
	size_t at = 0;
	for (size_t t = 0; t < n; t++) {
		size_t count = 0;
		enum ht_err e = convert_tree(json_array_get(trees, t), t, cols,
					     c->nodes + at, &count, err,
					     err_size);
		if (e)
			return e;
		c->trees[t] = (struct ht_model_tree){c->nodes + at, count};
		at += count;
		HT_ASSERT(at <= total);
	}
	c->tree_count = n;
	return HT_OK;
}

static enum ht_err convert(const char *json, size_t len, size_t cols,
			   struct conv *c, char *err, size_t err_size)
{
	json_error_t jerr;
	json_t *root = json_loadb(json, len, 0, &jerr);
	if (!root)
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "XGBoost's JSON model: %s (line %d)", jerr.text,
			    jerr.line);
	json_t *learner = json_object_get(root, "learner");
	enum ht_err e = convert_learner(learner, c, err, err_size);
	json_t *model = json_object_get(
		json_object_get(learner, "gradient_booster"), "model");
	if (!e)
		e = convert_trees(model, cols, c, err, err_size);
	json_decref(root);
	return e;
}

/* ---- output ----------------------------------------------------------- */

/* Write len bytes to path through a synced temporary file and a rename,
 * so path holds the old file or the whole new one, never a part. */
static enum ht_err write_atomic(const char *path, const void *buf, size_t len,
				char *err, size_t err_size)
{
	char tmp[4096];
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path,
			     (long)getpid()) >= sizeof tmp)
		return ht_fail(err, err_size, HT_ERR_INVALID, "path too long");
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return ht_fail(err, err_size, HT_ERR_IO, "%s: %s", tmp,
			    strerror(errno));
	const uint8_t *p = buf;
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, p + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	bool ok = done == len && fsync(fd) == 0;
	int saved = errno;
	ok = close(fd) == 0 && ok;
	if (ok && rename(tmp, path) == 0)
		return HT_OK;
	saved = ok ? errno : saved;
	unlink(tmp);
	return ht_fail(err, err_size, HT_ERR_IO, "%s: %s", path, strerror(saved));
}

/* Our walker against XGBoost's predictions on evenly spread training
 * rows; fails above CHECK_DIFF_MAX. */
static enum ht_err self_check(const uint8_t *file, size_t file_len,
			      const float *X, size_t rows, size_t cols,
			      const float *xgb, struct ht_train_progress *pr,
			      char *err, size_t err_size)
{
	struct ht_model *m;
	enum ht_err e = ht_model_load_buffer(file, file_len, &m, err, err_size);
	if (e)
		return e;
	HT_ASSERT(ht_model_feature_count(m) == cols);
	size_t step = rows > CHECK_ROWS_MAX ? rows / CHECK_ROWS_MAX : 1;
	size_t worst = 0, checked = 0;
	double diff_max = 0.0;
	for (size_t i = 0; i < rows; i += step, checked++) {
		double d = fabs(ht_model_score(m, X + i * cols) - xgb[i]);
		if (!(d <= diff_max)) { /* NaN counts as worst */
			diff_max = d;
			worst = i;
		}
	}
	ht_model_destroy(m);
	pr->checked = true;
	pr->check_rows = checked;
	pr->check_diff_max = diff_max;
	if (!(diff_max <= CHECK_DIFF_MAX))
		return ht_fail(err, err_size, HT_ERR_CORRUPT,
			    "the converted model disagrees with XGBoost by %g "
			    "on training row %zu", diff_max, worst);
	return HT_OK;
}

/* Save XGBoost's JSON model (valid until the next call on b) and convert
 * it into a huitong model file (*file, malloc'd). */
static enum ht_err export_model(BoosterHandle b, size_t cols,
				const char *const *names,
				const struct ht_train_params *p,
				uint8_t **file, size_t *file_len, char *err,
				size_t err_size)
{
	bst_ulong len = 0;
	const char *json = NULL;
	if (XGBoosterSaveModelToBuffer(b, "{\"format\": \"json\"}", &len,
				       &json))
		return xgb_fail(err, err_size, "saving the model");
	if (len > XGB_JSON_BYTES_MAX)
		return ht_fail(err, err_size, HT_ERR_LIMIT,
			    "XGBoost's model is %llu bytes of JSON",
			    (unsigned long long)len);
	enum ht_err e = HT_OK;
	if (p->xgb_model_path)
		e = write_atomic(p->xgb_model_path, json, len, err, err_size);
	struct conv c = {0};
	if (!e)
		e = convert(json, len, cols, &c, err, err_size);
	if (!e) {
		struct ht_model_spec spec = {
			.version = p->version,
			.feature_names = names,
			.feature_count = cols,
			.base_margin = c.base_margin,
			.trees = c.trees,
			.tree_count = c.tree_count,
		};
		e = ht_model_encode(&spec, file, file_len, err, err_size);
	}
	conv_free(&c);
	return e;
}

/* ---- entry points ----------------------------------------------------- */

/* Train on d, convert, check against XGBoost and write out_path. */
static enum ht_err train_on(DMatrixHandle d, const float *X, size_t rows,
			    size_t cols, const char *const *names,
			    const struct ht_train_params *p, double spw,
			    const char *out_path, char *err, size_t err_size)
{
	BoosterHandle b = NULL;
	if (XGBoosterCreate(&d, 1, &b))
		return xgb_fail(err, err_size, "booster");
	enum ht_err e = configure(b, p, spw, err, err_size);
	if (!e)
		e = boost(b, d, p, err, err_size);
	uint8_t *file = NULL;
	size_t file_len = 0;
	if (!e)
		e = export_model(b, cols, names, p, &file, &file_len, err,
				 err_size);
	const float *xgb = NULL;
	if (!e)
		e = predict(b, d, rows, &xgb, err, err_size);
	struct ht_train_progress pr = {.round = p->rounds,
				       .rounds = p->rounds,
				       .logloss = NAN,
				       .aucpr = NAN};
	if (!e)
		e = self_check(file, file_len, X, rows, cols, xgb, &pr, err,
			       err_size);
	if (!e && p->progress)
		p->progress(p->progress_ctx, &pr);
	if (!e)
		e = write_atomic(out_path, file, file_len, err, err_size);
	free(file);
	XGBoosterFree(b);
	return e;
}

enum ht_err ht_train(const float *X, const float *y, size_t rows, size_t cols,
		     const char *const *names,
		     const struct ht_train_params *p, const char *out_path,
		     char *err, size_t err_size)
{
	struct ht_train_params defaults;
	if (!p) {
		ht_train_params_default(&defaults);
		p = &defaults;
	}
	if (!y || !names || !out_path)
		return ht_fail(err, err_size, HT_ERR_INVALID,
			    "missing labels, names or output path");
	size_t positives = 0;
	enum ht_err e = ht_train_params_check(p, err, err_size);
	if (!e)
		e = check_shape(X, rows, cols, err, err_size);
	if (!e)
		e = check_names(names, cols, err, err_size);
	if (!e)
		e = check_labels(y, rows, &positives, err, err_size);
	if (e)
		return e;
	double spw = p->scale_pos_weight;
	if (spw == 0.0)
		spw = (double)(rows - positives) / (double)positives;
	DMatrixHandle d = NULL;
	e = make_matrix(X, rows, cols, p->nthread, &d, err, err_size);
	if (e)
		return e;
	if (XGDMatrixSetFloatInfo(d, "label", y, rows))
		e = xgb_fail(err, err_size, "labels");
	if (!e)
		e = train_on(d, X, rows, cols, names, p, spw, out_path, err,
			     err_size);
	XGDMatrixFree(d);
	return e;
}

static enum ht_err read_all(const char *path, char **buf, size_t *len,
			    char *err, size_t err_size)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return ht_fail(err, err_size, HT_ERR_IO, "%s: %s", path,
			    strerror(errno));
	size_t cap = 1 << 16, n = 0;
	char *b = malloc(cap);
	while (b) {
		n += fread(b + n, 1, cap - n, f);
		if (n < cap || cap >= XGB_JSON_BYTES_MAX)
			break;
		char *bigger = realloc(b, cap * 2);
		if (!bigger) {
			free(b);
			b = NULL;
			break;
		}
		b = bigger;
		cap *= 2;
	}
	bool bad = ferror(f) || (b && n == cap);
	fclose(f);
	if (!b)
		return ht_fail(err, err_size, HT_ERR_NOMEM, "out of memory");
	if (bad) {
		free(b);
		return ht_fail(err, err_size, HT_ERR_IO, "%s: read failed or "
			    "larger than %zu bytes", path, XGB_JSON_BYTES_MAX);
	}
	*buf = b;
	*len = n;
	return HT_OK;
}

enum ht_err ht_train_predict_xgb(const char *xgb_model_path, const float *X,
				 size_t rows, size_t cols, float *out,
				 char *err, size_t err_size)
{
	if (!xgb_model_path || !out)
		return ht_fail(err, err_size, HT_ERR_INVALID, "no model or output");
	enum ht_err e = check_shape(X, rows, cols, err, err_size);
	char *json = NULL;
	size_t len = 0;
	if (!e)
		e = read_all(xgb_model_path, &json, &len, err, err_size);
	if (e)
		return e;
	BoosterHandle b = NULL;
	DMatrixHandle d = NULL;
	const float *pred = NULL;
	if (XGBoosterCreate(NULL, 0, &b) ||
	    XGBoosterLoadModelFromBuffer(b, json, len))
		e = xgb_fail(err, err_size, "loading the model");
	if (!e)
		e = set_param(b, "nthread", "1", err, err_size);
	if (!e)
		e = make_matrix(X, rows, cols, 1, &d, err, err_size);
	if (!e)
		e = predict(b, d, rows, &pred, err, err_size);
	if (!e)
		memcpy(out, pred, rows * sizeof *out);
	if (d)
		XGDMatrixFree(d);
	if (b)
		XGBoosterFree(b);
	free(json);
	return e;
}

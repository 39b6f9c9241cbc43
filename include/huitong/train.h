/*
 * train.h — training huitong's fraud model with XGBoost and converting it
 * to huitong's own model format (model.h, docs/risk-model.md).
 *
 * Owner: risk. This is the one place huitong calls XGBoost, and it lives
 * in its own library (huitong_train) so the core and the scoring path
 * never link it. Training is reproducible: the same matrix, labels and
 * parameters give a byte-identical model file (fixed seed, fixed thread
 * count, the deterministic `hist` tree method).
 */
#ifndef HUITONG_TRAIN_H
#define HUITONG_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "huitong/common.h"
#include "huitong/model.h"

/* Rows of one training matrix: bounds memory (XGBoost keeps its own copy,
 * ~8 bytes per present value, beside ours). */
#define HT_TRAIN_ROWS_MAX (100u * 1000 * 1000)
/* Cells (rows x columns) of one training matrix: 4 GiB of floats. */
#define HT_TRAIN_CELLS_MAX ((size_t)1 << 30)
/* Deepest tree training may grow (XGBoost's depthwise max_depth). */
#define HT_TRAIN_DEPTH_MAX 16u
/* Threads XGBoost may use. */
#define HT_TRAIN_THREADS_MAX 64u

_Static_assert(HT_TRAIN_DEPTH_MAX < HT_MODEL_DEPTH_MAX,
	       "a trained tree always loads");

/* Training progress, handed to ht_train_params.progress: every
 * eval_every rounds, then once more after the conversion check. */
struct ht_train_progress {
	unsigned round;    /* rounds done, 1..rounds */
	unsigned rounds;   /* rounds asked for */
	double logloss;    /* on the training matrix */
	double aucpr;      /* area under the precision-recall curve, same */
	/* The final call only (checked true): rows on which the converted
	 * model was compared with XGBoost, and the largest |difference|
	 * between the two probabilities. */
	bool checked;
	size_t check_rows;
	double check_diff_max;
};

typedef void ht_train_progress_fn(void *ctx,
				  const struct ht_train_progress *p);

struct ht_train_params {
	unsigned rounds;           /* boosting rounds = trees; 300 */
	unsigned max_depth;        /* 6; 1..HT_TRAIN_DEPTH_MAX */
	double eta;                /* learning rate; 0.1; (0, 1] */
	double subsample;          /* rows sampled per tree; 0.8; (0, 1] */
	double colsample_bytree;   /* columns sampled per tree; 0.8; (0, 1] */
	double min_child_weight;   /* minimum hessian in a leaf; 1 */
	/* Weight of positive (fraud) rows; 1 keeps scores calibrated
	 * probabilities. 0 means negatives / positives, the usual balance
	 * for a rare class, which ranks as well but inflates scores. */
	double scale_pos_weight;
	unsigned max_bin;          /* histogram bins per feature; 256 */
	uint32_t seed;             /* XGBoost's random seed; 0 */
	unsigned nthread;          /* XGBoost threads; 1 (fixed, reproducible) */
	/* Evaluate logloss and AUC-PR every this many rounds (and after the
	 * last) and call progress; 0 or progress NULL: never. 10. */
	unsigned eval_every;
	ht_train_progress_fn *progress;
	void *progress_ctx;
	/* The model's version string; NULL derives one from the content
	 * ("sm3:" and 16 hex digits), see ht_model_spec. */
	const char *version;
	/* When not NULL, XGBoost's own model (its JSON format) is saved here
	 * too, for ht_train_predict_xgb and for inspection. */
	const char *xgb_model_path;
};

/* Fill p with the defaults written above. */
void ht_train_params_default(struct ht_train_params *p);

/* HT_OK when every parameter is within the ranges written above, else
 * HT_ERR_INVALID and err names the first one out of range. ht_train
 * checks too; this lets a caller refuse bad options before reading data. */
enum ht_err ht_train_params_check(const struct ht_train_params *p, char *err,
				  size_t err_size);

/*
 * Train a binary-logistic gradient-boosted tree model and write it to
 * out_path in huitong's format (written to a temporary file, synced and
 * renamed, so out_path is either the old file or the whole new one).
 *
 * X is row-major, rows x cols floats, NaN for a missing value; y holds
 * rows labels, each 0 (legitimate) or 1 (fraud); names gives the cols
 * column names the model records (model.h's rules for names). p NULL
 * means the defaults.
 *
 * Before writing, the converted model is checked against XGBoost's own
 * predictions on (up to 100,000 evenly spread) training rows: any
 * difference above 1e-6 fails the call, so a written model always scores
 * as XGBoost does.
 *
 * Errors (err gets one line): HT_ERR_INVALID (bad arguments or labels),
 * HT_ERR_LIMIT (a bound above exceeded), HT_ERR_UNSUPPORTED (XGBoost
 * produced a model this format cannot hold), HT_ERR_CORRUPT (XGBoost
 * failed, or its model disagrees with the conversion), HT_ERR_IO,
 * HT_ERR_NOMEM, HT_ERR_CRYPTO.
 */
enum ht_err ht_train(const float *X, const float *y, size_t rows, size_t cols,
		     const char *const *names,
		     const struct ht_train_params *p, const char *out_path,
		     char *err, size_t err_size);

/*
 * Predict with XGBoost itself: load the model ht_train saved at
 * xgb_model_path (ht_train_params.xgb_model_path) and write the
 * probability of each of rows rows of X (row-major, cols columns, NaN
 * missing) into out (rows floats). For tests that compare huitong's
 * walker with XGBoost. Errors: HT_ERR_INVALID, HT_ERR_LIMIT,
 * HT_ERR_CORRUPT (XGBoost failed; err says why).
 */
enum ht_err ht_train_predict_xgb(const char *xgb_model_path, const float *X,
				 size_t rows, size_t cols, float *out,
				 char *err, size_t err_size);

#endif

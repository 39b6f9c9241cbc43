/*
 * test_train.c — training with XGBoost and the conversion to huitong's
 * model format (train.h): on a synthetic data set (a nonlinear rule plus
 * noise, fixed seed, missing values) the trained model, scored by
 * huitong's own walker, agrees with XGBoost's own predictions on 10,000
 * held-out rows within 1e-6 (the largest difference is printed); the
 * same inputs train a byte-identical file; the model has learned the rule;
 * bad inputs are refused before any training.
 *
 * HT_TEST_TRAIN_ROUNDS overrides the rounds (100 by default, to keep the
 * test to a few seconds; docs/risk-model.md records a 300-round run).
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

#include "huitong/model.h"
#include "huitong/train.h"

#define COLS 20
#define TRAIN_ROWS 20000
#define TEST_ROWS 10000

static uint64_t rng_state;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

static double uniform(void)
{
	return (rnd() + 0.5) / 4294967296.0; /* (0, 1) */
}

/*
 * Columns: 0-9 uniform, 10-14 roughly normal, 15 an hour 0-23, 16 a count
 * 0-49, 17 a 0/1 flag, 18-19 heavy-tailed amounts. Columns 3, 7, 12 and
 * 18 are missing (NaN) 10% of the time. The label follows a nonlinear
 * rule with interactions, and missing column 3 itself carries signal.
 */
static void make_rows(float *X, float *y, size_t rows)
{
	for (size_t r = 0; r < rows; r++) {
		float *x = X + r * COLS;
		for (int j = 0; j < 10; j++)
			x[j] = (float)uniform();
		for (int j = 10; j < 15; j++)
			x[j] = (float)(uniform() + uniform() + uniform() - 1.5);
		x[15] = (float)(rnd() % 24);
		x[16] = (float)(rnd() % 50);
		x[17] = (float)(rnd() % 2);
		x[18] = (float)exp(4.0 * uniform() + 2.0);
		x[19] = (float)exp(6.0 * uniform());
		double logit = -2.0;
		logit += (x[0] > 0.7f && x[1] < 0.3f) ? 3.0 : 0.0;
		logit += 2.0 * sin(6.0 * x[2]);
		logit += 4.0 * x[10] * x[11];
		logit += (x[15] < 6 && x[17] > 0) ? 2.0 : 0.0;
		logit += x[16] > 40 ? 1.5 : 0.0;
		logit += log(x[18]) > 5.0 ? 1.0 : 0.0;
		if (rnd() % 10 == 0) {
			x[3] = NAN;
			logit += 1.0;
		}
		if (rnd() % 10 == 0)
			x[7] = NAN;
		if (rnd() % 10 == 0)
			x[12] = NAN;
		if (rnd() % 10 == 0)
			x[18] = NAN;
		y[r] = uniform() < 1.0 / (1.0 + exp(-logit)) ? 1.0f : 0.0f;
	}
}

static const char *const names[COLS] = {
	"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9",
	"n0", "n1", "n2", "n3", "n4", "hour", "count", "flag", "amount_a",
	"amount_b"};

struct data {
	float *X, *y, *tX, *ty;
	char dir[64];
	char model[128], model2[128], xgb[128];
};

static int setup(void **state)
{
	struct data *d = calloc(1, sizeof *d);
	d->X = malloc(sizeof(float) * TRAIN_ROWS * COLS);
	d->y = malloc(sizeof(float) * TRAIN_ROWS);
	d->tX = malloc(sizeof(float) * TEST_ROWS * COLS);
	d->ty = malloc(sizeof(float) * TEST_ROWS);
	rng_state = 0x853c49e6748fea9bull;
	make_rows(d->X, d->y, TRAIN_ROWS);
	make_rows(d->tX, d->ty, TEST_ROWS);
	snprintf(d->dir, sizeof d->dir, "/tmp/test_train_XXXXXX");
	if (!mkdtemp(d->dir))
		return -1;
	snprintf(d->model, sizeof d->model, "%s/a.htm", d->dir);
	snprintf(d->model2, sizeof d->model2, "%s/b.htm", d->dir);
	snprintf(d->xgb, sizeof d->xgb, "%s/a.xgb.json", d->dir);
	*state = d;
	return 0;
}

static int teardown(void **state)
{
	struct data *d = *state;
	unlink(d->model);
	unlink(d->model2);
	unlink(d->xgb);
	rmdir(d->dir);
	free(d->X);
	free(d->y);
	free(d->tX);
	free(d->ty);
	free(d);
	return 0;
}

struct seen {
	int calls;
	bool checked;
	double check_diff_max;
	size_t check_rows;
	double aucpr_last;
};

static void on_progress(void *ctx, const struct ht_train_progress *p)
{
	struct seen *s = ctx;
	s->calls++;
	if (p->checked) {
		s->checked = true;
		s->check_diff_max = p->check_diff_max;
		s->check_rows = p->check_rows;
	} else {
		s->aucpr_last = p->aucpr;
	}
}

static void params(struct ht_train_params *p, struct seen *s)
{
	ht_train_params_default(p);
	const char *env = getenv("HT_TEST_TRAIN_ROUNDS");
	p->rounds = env ? (unsigned)atoi(env) : 100;
	p->seed = 7;
	p->progress = on_progress;
	p->progress_ctx = s;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc((size_t)n);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Area under the ROC curve by ranks (ties are rare with float scores). */
struct scored {
	double score;
	float label;
};

static int by_score(const void *a, const void *b)
{
	double x = ((const struct scored *)a)->score;
	double y = ((const struct scored *)b)->score;
	return (x > y) - (x < y);
}

static double auc(const double *score, const float *y, size_t n)
{
	struct scored *s = malloc(n * sizeof *s);
	for (size_t i = 0; i < n; i++)
		s[i] = (struct scored){score[i], y[i]};
	qsort(s, n, sizeof *s, by_score);
	double pos = 0, rank_sum = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i].label > 0) {
			pos++;
			rank_sum += (double)(i + 1);
		}
	free(s);
	return (rank_sum - pos * (pos + 1) / 2) / (pos * ((double)n - pos));
}

static void test_train_agrees_with_xgboost(void **state)
{
	struct data *d = *state;
	struct ht_train_params p;
	struct seen s = {0};
	params(&p, &s);
	p.xgb_model_path = d->xgb;
	char err[512] = "";
	uint64_t t0 = ht_now_monotonic_ns();
	enum ht_err e = ht_train(d->X, d->y, TRAIN_ROWS, COLS, names, &p,
				 d->model, err, sizeof err);
	if (e)
		print_error("ht_train: %s\n", err);
	assert_int_equal(e, HT_OK);
	printf("trained %u rounds on %d x %d in %.2f s; training-set check: "
	       "%zu rows, max |diff| %.3g; train AUC-PR %.4f\n", p.rounds,
	       TRAIN_ROWS, COLS, (ht_now_monotonic_ns() - t0) / 1e9,
	       s.check_rows, s.check_diff_max, s.aucpr_last);
	assert_true(s.checked);
	assert_int_equal(s.check_rows, TRAIN_ROWS);
	assert_true(s.calls >= (int)(p.rounds / p.eval_every));

	struct ht_model *m;
	assert_int_equal(ht_model_load(d->model, &m, err, sizeof err), HT_OK);
	assert_int_equal(ht_model_tree_count(m), p.rounds);
	assert_int_equal(ht_model_feature_count(m), COLS);
	assert_string_equal(ht_model_feature_name(m, 15), "hour");
	assert_true(ht_model_depth_max(m) <= p.max_depth);
	assert_memory_equal(ht_model_version(m), "sm3:", 4);

	float *xgb = malloc(sizeof(float) * TEST_ROWS);
	double *ours = malloc(sizeof(double) * TEST_ROWS);
	assert_int_equal(ht_train_predict_xgb(d->xgb, d->tX, TEST_ROWS, COLS,
					      xgb, err, sizeof err), HT_OK);
	double diff_max = 0;
	size_t equal = 0;
	for (size_t i = 0; i < TEST_ROWS; i++) {
		ours[i] = ht_model_score(m, d->tX + i * COLS);
		/* the vector walker (where the CPU has one) is the portable
		 * one, bit for bit */
		assert_true(ht_model_margin(m, d->tX + i * COLS) ==
			    ht_model_margin_portable(m, d->tX + i * COLS));
		double diff = fabs(ours[i] - (double)xgb[i]);
		diff_max = diff > diff_max ? diff : diff_max;
		equal += ours[i] == (double)xgb[i];
	}
	double a = auc(ours, d->ty, TEST_ROWS);
	printf("huitong vs XGBoost on %d held-out rows: max |diff| %.3g, "
	       "%zu bit-identical; held-out ROC AUC %.4f\n", TEST_ROWS,
	       diff_max, equal, a);
	assert_true(diff_max <= 1e-6);
	assert_true(a > 0.75); /* it learned the rule, not noise */
	free(xgb);
	free(ours);
	ht_model_destroy(m);
}

static void test_train_is_reproducible(void **state)
{
	struct data *d = *state;
	struct ht_train_params p;
	struct seen s = {0};
	params(&p, &s);
	p.progress = NULL; /* no evaluation: must not change the trees */
	char err[512] = "";
	assert_int_equal(ht_train(d->X, d->y, TRAIN_ROWS, COLS, names, &p,
				  d->model2, err, sizeof err), HT_OK);
	size_t alen, blen;
	uint8_t *a = slurp(d->model, &alen);
	uint8_t *b = slurp(d->model2, &blen);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	printf("two trainings: byte-identical %zu-byte model files\n", alen);
	free(a);
	free(b);
}

static void test_train_refuses_bad_input(void **state)
{
	struct data *d = *state;
	struct ht_train_params p;
	ht_train_params_default(&p);
	char err[512];
	const char *out = d->model2;
	float y[4] = {0, 1, 0, 1}, X[4 * 2] = {1, 2, 3, 4, 5, 6, 7, 8};
	const char *n2[] = {"a", "b"};
	y[2] = 0.5f;
	assert_int_equal(ht_train(X, y, 4, 2, n2, &p, out, err, sizeof err),
			 HT_ERR_INVALID);
	assert_non_null(strstr(err, "label of row 2"));
	float zeros[4] = {0};
	assert_int_equal(ht_train(X, zeros, 4, 2, n2, &p, out, err,
				  sizeof err), HT_ERR_INVALID);
	assert_non_null(strstr(err, "nothing to learn"));
	y[2] = 0;
	X[5] = INFINITY;
	assert_int_equal(ht_train(X, y, 4, 2, n2, &p, out, err, sizeof err),
			 HT_ERR_INVALID);
	assert_non_null(strstr(err, "row 2 column 1 is infinite"));
	X[5] = 6;
	const char *dup[] = {"a", "a"}, *space[] = {"a", "b c"};
	assert_int_equal(ht_train(X, y, 4, 2, dup, &p, out, err, sizeof err),
			 HT_ERR_INVALID);
	assert_non_null(strstr(err, "twice"));
	assert_int_equal(ht_train(X, y, 4, 2, space, &p, out, err, sizeof err),
			 HT_ERR_INVALID);
	p.max_depth = 0;
	assert_int_equal(ht_train(X, y, 4, 2, n2, &p, out, err, sizeof err),
			 HT_ERR_INVALID);
	ht_train_params_default(&p);
	p.eta = 0;
	assert_int_equal(ht_train(X, y, 4, 2, n2, &p, out, err, sizeof err),
			 HT_ERR_INVALID);
	assert_int_equal(ht_train(X, y, 4, 0, n2, &p, out, err, sizeof err),
			 HT_ERR_INVALID);
	assert_int_equal(ht_train(X, y, 4, HT_MODEL_FEATURES_MAX + 1, n2, NULL,
				  out, err, sizeof err), HT_ERR_LIMIT);
	/* An unwritable output: XGBoost trains, the write fails cleanly. */
	ht_train_params_default(&p);
	p.rounds = 2;
	assert_int_equal(ht_train(X, y, 4, 2, n2, &p, "/nonexistent/dir/m",
				  err, sizeof err), HT_ERR_IO);
	assert_int_equal(ht_train_predict_xgb("/nonexistent.json", X, 4, 2,
					      zeros, err, sizeof err),
			 HT_ERR_IO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_train_agrees_with_xgboost),
		cmocka_unit_test(test_train_is_reproducible),
		cmocka_unit_test(test_train_refuses_bad_input),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

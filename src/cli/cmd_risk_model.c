/*
 * cmd_risk_model.c — `huitong risk train`: train the fraud model with
 * XGBoost and write it in huitong's model format (docs/risk-model.md).
 *
 * Owner: risk. For now the input is the matrix form: a CSV whose header
 * names the feature columns and ends with a `label` column (0 legitimate,
 * 1 fraud), one row per payment, an empty cell or NaN/nan/NA for a
 * missing value. Training from payments and labels through the feature
 * engine (--in PAYMENTS --labels LABELS) is added when that engine
 * exists. The CSV is outside input, so every line, cell, column and row
 * count is bounded and every error names its line and column. Progress
 * (round, training logloss and AUC-PR) goes to stderr, the summary of the
 * written model to stdout.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli_util.h"
#include "commands.h"
#include "huitong/jsonl.h"
#include "huitong/model.h"
#include "huitong/train.h"

#define CMD "risk train"

/* One CSV line: 1025 columns of long floats fit in far less. */
#define CSV_LINE_BYTES_MAX (1u << 20)

static const char train_usage[] =
	"usage: huitong risk train --matrix FILE.csv --out MODEL [options]\n"
	"\n"
	"Train the gradient-boosted fraud model with XGBoost (binary:logistic,\n"
	"tree_method hist) and write it in huitong's model format, checked\n"
	"against XGBoost's own predictions before it is written. Same input\n"
	"and options give a byte-identical file.\n"
	"\n"
	"  --matrix FILE.csv    the training matrix (- for stdin): a header of\n"
	"                       feature names ending with a `label` column, then\n"
	"                       one row per payment; label 0 or 1; an empty cell\n"
	"                       or NaN/nan/NA is a missing value\n"
	"  --out MODEL          the model file to write (replaced atomically)\n"
	"  --rounds N           boosting rounds = trees (300)\n"
	"  --depth D            maximum tree depth (6)\n"
	"  --eta E              learning rate (0.1)\n"
	"  --subsample F        rows sampled per tree (0.8)\n"
	"  --colsample F        columns sampled per tree (0.8)\n"
	"  --scale-pos-weight W weight of fraud rows, or `auto` for\n"
	"                       legitimate/fraud (1: calibrated probabilities)\n"
	"  --seed S             random seed (0)\n"
	"  --threads T          XGBoost threads (1); the file is reproducible\n"
	"                       for a given thread count\n"
	"  --model-version V    version string (default: sm3: and 16 hex digits\n"
	"                       of the model's content)\n"
	"  --xgb-model PATH     also save XGBoost's own JSON model\n";

struct matrix {
	float *X, *y;
	size_t rows, cols, cap_rows;
	char **names;
	size_t positives;
};

static void matrix_free(struct matrix *m)
{
	if (m->names)
		for (size_t j = 0; j < m->cols; j++)
			free(m->names[j]);
	free(m->names);
	free(m->X);
	free(m->y);
}

/* The header: feature names, then `label`. */
static int parse_header(const char *line, uint64_t no, struct matrix *m)
{
	size_t n = 1;
	for (const char *p = line; *p; p++)
		n += *p == ',';
	if (n < 2 || n > HT_MODEL_FEATURES_MAX + 1)
		return ht_cli_fail(CMD, "line %llu: %zu columns; want 1 to %u "
			       "features and a label", (unsigned long long)no,
			       n, HT_MODEL_FEATURES_MAX);
	m->names = calloc(n, sizeof *m->names);
	if (!m->names)
		return ht_cli_fail(CMD, "out of memory");
	const char *p = line;
	for (size_t j = 0; j < n; j++) {
		size_t len = strcspn(p, ",");
		char *name = strndup(p, len);
		if (!name)
			return ht_cli_fail(CMD, "out of memory");
		p += len + 1;
		if (j + 1 == n) {
			int rc = strcmp(name, "label")
				? ht_cli_fail(CMD, "line %llu: the last column "
					      "is '%s', not 'label'",
					      (unsigned long long)no, name)
				: 0;
			free(name);
			return rc;
		}
		m->names[m->cols++] = name;
		if (!ht_model_name_valid(name))
			return ht_cli_fail(CMD, "line %llu column %zu: a feature "
				       "name is 1 to %u printable characters "
				       "without space , \" \\",
				       (unsigned long long)no, j + 1,
				       HT_MODEL_NAME_BYTES_MAX);
	}
	return 0;
}

/* One cell: a float, or missing. */
static bool parse_cell(const char *s, float *out)
{
	if (!*s || !strcmp(s, "NaN") || !strcmp(s, "nan") ||
	    !strcmp(s, "NA")) {
		*out = NAN;
		return true;
	}
	char *end;
	float v = strtof(s, &end);
	if (*end || !isfinite(v))
		return false;
	*out = v;
	return true;
}

static bool grow(struct matrix *m)
{
	if (m->rows < m->cap_rows)
		return true;
	size_t cap = m->cap_rows ? 2 * m->cap_rows : 4096;
	if (cap > HT_TRAIN_ROWS_MAX)
		cap = HT_TRAIN_ROWS_MAX;
	float *X = realloc(m->X, cap * m->cols * sizeof *X);
	if (X)
		m->X = X;
	float *y = realloc(m->y, cap * sizeof *y);
	if (y)
		m->y = y;
	if (!X || !y)
		return false;
	m->cap_rows = cap;
	return true;
}

/* One data row: cols features then the label, comma-separated. */
static int parse_row(const char *line, uint64_t no, struct matrix *m)
{
	if (m->rows >= HT_TRAIN_ROWS_MAX ||
	    m->rows >= HT_TRAIN_CELLS_MAX / m->cols)
		return ht_cli_fail(CMD, "line %llu: more rows than the limit "
			       "(%u rows, %zu cells)", (unsigned long long)no,
			       HT_TRAIN_ROWS_MAX, HT_TRAIN_CELLS_MAX);
	if (!grow(m))
		return ht_cli_fail(CMD, "out of memory at %zu rows", m->rows);
	float *x = m->X + m->rows * m->cols;
	const char *p = line;
	char cell[64];
	for (size_t j = 0; j <= m->cols; j++) {
		size_t n = strcspn(p, ",");
		bool last = p[n] != ',';
		if (n >= sizeof cell || last != (j == m->cols))
			return ht_cli_fail(CMD, "line %llu column %zu: %s",
				       (unsigned long long)no, j + 1,
				       n >= sizeof cell ? "cell too long"
				       : last ? "too few columns"
					      : "too many columns");
		memcpy(cell, p, n);
		cell[n] = '\0';
		float v;
		if (!parse_cell(cell, &v) ||
		    (j == m->cols && v != 0.0f && v != 1.0f))
			return ht_cli_fail(CMD, "line %llu column %zu: '%s' is "
				       "not %s", (unsigned long long)no, j + 1,
				       cell, j == m->cols ? "a label 0 or 1"
							  : "a finite number");
		if (j < m->cols)
			x[j] = v;
		else
			m->y[m->rows] = v;
		p += n + 1;
	}
	m->positives += m->y[m->rows] == 1.0f;
	m->rows++;
	return 0;
}

static int read_matrix(FILE *in, struct matrix *m)
{
	struct ht_line_reader *lr;
	if (ht_line_reader_create(in, CSV_LINE_BYTES_MAX, &lr))
		return ht_cli_fail(CMD, "out of memory");
	int rc = 0;
	while (!rc) {
		const char *line;
		size_t len;
		uint64_t no;
		enum ht_err e = ht_line_reader_next(lr, &line, &len, &no);
		if (e == HT_ERR_NOT_FOUND)
			break;
		if (e == HT_ERR_LIMIT)
			rc = ht_cli_fail(CMD, "line %llu: longer than %u bytes",
					 (unsigned long long)no,
					 CSV_LINE_BYTES_MAX);
		else if (e)
			rc = ht_cli_fail(CMD, "read failed: %s",
					 ht_strerror(e));
		else if (!m->names)
			rc = parse_header(line, no, m);
		else if (len)
			rc = parse_row(line, no, m);
	}
	ht_line_reader_destroy(lr);
	if (!rc && !m->rows)
		rc = ht_cli_fail(CMD, "no data rows");
	return rc;
}

static void on_progress(void *ctx, const struct ht_train_progress *p)
{
	(void)ctx;
	if (p->checked)
		fprintf(stderr, "huitong " CMD ": checked against XGBoost on %zu "
			"training rows: max |diff| %.3g\n", p->check_rows,
			p->check_diff_max);
	else
		fprintf(stderr, "huitong " CMD ": round %u/%u  train logloss "
			"%.5f  aucpr %.5f\n", p->round, p->rounds, p->logloss,
			p->aucpr);
}

static bool opt_double(const char *opt, const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);
	if (!*s || *end || !isfinite(v)) {
		ht_cli_fail(CMD, "%s: expected a number, got '%s'", opt, s);
		return false;
	}
	*out = v;
	return true;
}

static bool opt_unsigned(const char *opt, const char *s, uint64_t max,
			 unsigned *out)
{
	uint64_t v;
	if (!ht_cli_u64(CMD, opt, s, &v))
		return false;
	if (v > max) {
		ht_cli_fail(CMD, "%s: at most %llu", opt,
			    (unsigned long long)max);
		return false;
	}
	*out = (unsigned)v;
	return true;
}

/* One option into p (or the paths); false after printing an error. */
static bool parse_opt(int c, const char *arg, struct ht_train_params *p,
		      const char **matrix, const char **out)
{
	unsigned seed;
	switch (c) {
	case 'm': *matrix = arg; return true;
	case 'o': *out = arg; return true;
	case 'r': return opt_unsigned("--rounds", arg, HT_MODEL_TREES_MAX,
				      &p->rounds);
	case 'd': return opt_unsigned("--depth", arg, HT_TRAIN_DEPTH_MAX,
				      &p->max_depth);
	case 'e': return opt_double("--eta", arg, &p->eta);
	case 's': return opt_double("--subsample", arg, &p->subsample);
	case 'c': return opt_double("--colsample", arg, &p->colsample_bytree);
	case 'w':
		if (!strcmp(arg, "auto")) {
			p->scale_pos_weight = 0;
			return true;
		}
		return opt_double("--scale-pos-weight", arg,
				  &p->scale_pos_weight);
	case 'S':
		if (!opt_unsigned("--seed", arg, UINT32_MAX, &seed))
			return false;
		p->seed = seed;
		return true;
	case 't': return opt_unsigned("--threads", arg, HT_TRAIN_THREADS_MAX,
				      &p->nthread);
	case 'v': p->version = arg; return true;
	case 'x': p->xgb_model_path = arg; return true;
	}
	ht_cli_fail(CMD, "unknown option (see huitong risk train --help)");
	return false;
}

static int train(const struct matrix *m, const struct ht_train_params *p,
		 const char *out)
{
	char err[512];
	fprintf(stderr, "huitong " CMD ": %zu rows x %zu features, %zu fraud "
		"(%.3f%%); %u rounds of depth %u\n", m->rows, m->cols,
		m->positives, 100.0 * (double)m->positives / (double)m->rows,
		p->rounds, p->max_depth);
	if (ht_train(m->X, m->y, m->rows, m->cols,
		     (const char *const *)m->names, p, out, err, sizeof err))
		return ht_cli_fail(CMD, "%s", err);
	struct ht_model *model;
	if (ht_model_load(out, &model, err, sizeof err))
		return ht_cli_fail(CMD, "reading back: %s", err);
	json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "model",
			      out, "version", ht_model_version(model), "trees",
			      (json_int_t)ht_model_tree_count(model),
			      "depth_max",
			      (json_int_t)ht_model_depth_max(model),
			      "features",
			      (json_int_t)ht_model_feature_count(model),
			      "rows", (json_int_t)m->rows, "fraud",
			      (json_int_t)m->positives);
	ht_model_destroy(model);
	if (!j || json_dumpf(j, stdout, JSON_COMPACT) || puts("") == EOF) {
		json_decref(j);
		return ht_cli_fail(CMD, "cannot write the summary");
	}
	json_decref(j);
	return 0;
}

int ht_cmd_risk_train(int argc, char **argv)
{
	static const struct option opts[] = {
		{"matrix", required_argument, NULL, 'm'},
		{"out", required_argument, NULL, 'o'},
		{"rounds", required_argument, NULL, 'r'},
		{"depth", required_argument, NULL, 'd'},
		{"eta", required_argument, NULL, 'e'},
		{"subsample", required_argument, NULL, 's'},
		{"colsample", required_argument, NULL, 'c'},
		{"scale-pos-weight", required_argument, NULL, 'w'},
		{"seed", required_argument, NULL, 'S'},
		{"threads", required_argument, NULL, 't'},
		{"model-version", required_argument, NULL, 'v'},
		{"xgb-model", required_argument, NULL, 'x'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0}};
	struct ht_train_params p;
	ht_train_params_default(&p);
	p.progress = on_progress;
	const char *matrix = NULL, *out = NULL;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(train_usage, stdout);
			return 0;
		}
		if (c == '?' || !parse_opt(c, optarg, &p, &matrix, &out)) {
			fputs(train_usage, stderr);
			return 2;
		}
	}
	if (optind < argc || !matrix || !out) {
		fputs(train_usage, stderr);
		return ht_cli_fail(CMD, "--matrix FILE.csv and --out MODEL are "
				   "required");
	}
	char err[256];
	if (ht_train_params_check(&p, err, sizeof err))
		return ht_cli_fail(CMD, "%s", err);
	FILE *in = strcmp(matrix, "-") ? fopen(matrix, "r") : stdin;
	if (!in)
		return ht_cli_fail(CMD, "%s: cannot open", matrix);
	struct matrix m = {0};
	int rc = read_matrix(in, &m);
	if (in != stdin)
		fclose(in);
	if (!rc)
		rc = train(&m, &p, out);
	matrix_free(&m);
	return rc;
}

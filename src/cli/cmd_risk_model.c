/*
 * cmd_risk_model.c — `huitong risk train`: train the fraud model with
 * XGBoost and write it in huitong's model format (docs/risk-model.md).
 *
 * Owner: risk. The input is either payments and their labels (--in
 * PAYMENTS --labels LABELS: each payment's features computed in file
 * order against the ones before it, exactly as `risk score` and the live
 * path compute them, risk.h), or the matrix form: a CSV whose header
 * names the feature columns and ends with a `label` column (0 legitimate,
 * 1 fraud), one row per payment, an empty cell or NaN/nan/NA for a
 * missing value. Both are outside input, so every line, cell, column and row
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
#include "huitong/risk.h"
#include "huitong/train.h"
#include "risk_cli.h"

#define CMD "risk train"

/* One CSV line: 1025 columns of long floats fit in far less. */
#define CSV_LINE_BYTES_MAX (1u << 20)

static const char train_usage[] =
	"usage: huitong risk train --in PAYMENTS.jsonl --labels LABELS.jsonl\n"
	"                          --out MODEL [options]\n"
	"       huitong risk train --matrix FILE.csv --out MODEL [options]\n"
	"\n"
	"Train the gradient-boosted fraud model with XGBoost (binary:logistic,\n"
	"tree_method hist) and write it in huitong's model format, checked\n"
	"against XGBoost's own predictions before it is written. Same input\n"
	"and options give a byte-identical file.\n"
	"\n"
	"  --in PAYMENTS.jsonl  interchange payments in time order (as `huitong\n"
	"                       sim` writes them); each row is the payment's\n"
	"                       features against the ones before it, as `risk\n"
	"                       score` computes them\n"
	"  --labels LABELS.jsonl their ground truth, one line per payment in the\n"
	"                       same order\n"
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
	"  --xgb-model PATH     also save XGBoost's own JSON model\n"
	"  --state-mb N         memory for the features state with --in (as\n"
	"                       `risk score`: default twice the input's size)\n"
	"  --quiet              no progress on stderr\n";

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

/* --in/--labels: the feature catalogue as columns, one row per payment. */
static int read_payments(FILE *pin, const char *pname, FILE *lin,
			 const char *lname, size_t state_bytes, struct matrix *m)
{
	struct ht_line_reader *pr = NULL, *lr = NULL;
	struct ht_risk_engine *e = NULL;
	struct ht_risk_engine_config cfg = {0};
	cfg.state.bytes_max = state_bytes;
	cfg.state.hash_seed = HT_CLI_RISK_HASH_SEED;
	char err[256];
	int rc = 2;
	m->cols = HT_FEATURE__COUNT;
	m->names = calloc(m->cols, sizeof *m->names);
	for (size_t j = 0; m->names && j < m->cols; j++)
		if (!(m->names[j] = strdup(ht_feature_name((enum ht_feature)j))))
			goto nomem;
	if (!m->names || ht_line_reader_create(pin, HT_PAYMENT_LINE_BYTES_MAX, &pr) ||
	    ht_line_reader_create(lin, HT_PAYMENT_LINE_BYTES_MAX, &lr))
		goto nomem;
	enum ht_err ee = ht_risk_engine_open(&cfg, &e, err, sizeof err);
	if (ee) {
		ht_cli_fail(CMD, "%s", err[0] ? err : ht_strerror(ee));
		goto out;
	}
	for (;;) {
		const char *pl, *ll;
		size_t plen, llen;
		uint64_t pno, lno;
		enum ht_err pe = ht_line_reader_next(pr, &pl, &plen, &pno);
		enum ht_err le = ht_line_reader_next(lr, &ll, &llen, &lno);
		if (pe == HT_ERR_NOT_FOUND && le == HT_ERR_NOT_FOUND)
			break;
		if (pe || le) {
			bool p_side = pe != HT_OK;
			enum ht_err x = p_side ? pe : le;
			ht_cli_fail(CMD, "%s:%llu: %s", p_side ? pname : lname,
				    (unsigned long long)(p_side ? pno : lno),
				    x == HT_ERR_NOT_FOUND
					    ? "ends before the other file"
					    : ht_strerror(x));
			goto out;
		}
		struct ht_payment p;
		struct ht_label l;
		if (ht_payment_parse(pl, plen, &p, err, sizeof err)) {
			ht_cli_fail(CMD, "%s:%llu: %s", pname,
				    (unsigned long long)pno, err);
			goto out;
		}
		if (ht_label_parse(ll, llen, &l, err, sizeof err)) {
			ht_cli_fail(CMD, "%s:%llu: %s", lname,
				    (unsigned long long)lno, err);
			goto out;
		}
		if (strcmp(p.id, l.id)) {
			ht_cli_fail(CMD, "line %llu: payment %s, label of %s (the"
					 " labels must follow the payments)",
				    (unsigned long long)pno, p.id, l.id);
			goto out;
		}
		if (m->rows >= HT_TRAIN_CELLS_MAX / m->cols) {
			ht_cli_fail(CMD, "more payments than the limit (%zu"
					 " cells)", HT_TRAIN_CELLS_MAX);
			goto out;
		}
		if (!grow(m))
			goto nomem;
		ht_risk_engine_features(e, &p, m->X + m->rows * m->cols);
		ht_risk_engine_record(e, &p);
		m->y[m->rows++] = l.fraud ? 1.0f : 0.0f;
		m->positives += l.fraud;
	}
	rc = 0;
	goto out;
nomem:
	ht_cli_fail(CMD, "out of memory");
out:
	ht_risk_engine_close(e);
	ht_line_reader_destroy(pr);
	ht_line_reader_destroy(lr);
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
struct inputs {
	const char *matrix, *in, *labels, *out, *state_mb;
};

static bool parse_opt(int c, const char *arg, struct ht_train_params *p,
		      struct inputs *io)
{
	unsigned seed;
	switch (c) {
	case 'm': io->matrix = arg; return true;
	case 'i': io->in = arg; return true;
	case 'l': io->labels = arg; return true;
	case 'M': io->state_mb = arg; return true;
	case 'o': io->out = arg; return true;
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
	if (p->progress)
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
		{"in", required_argument, NULL, 'i'},
		{"labels", required_argument, NULL, 'l'},
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
		{"quiet", no_argument, NULL, 'q'},
		{"state-mb", required_argument, NULL, 'M'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0}};
	struct ht_train_params p;
	ht_train_params_default(&p);
	p.progress = on_progress;
	struct inputs io = {0};
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(train_usage, stdout);
			return 0;
		}
		if (c == 'q') {
			p.progress = NULL;
			continue;
		}
		if (c == '?' || !parse_opt(c, optarg, &p, &io)) {
			fputs(train_usage, stderr);
			return 2;
		}
	}
	bool by_payments = io.in || io.labels;
	if (optind < argc || !io.out ||
	    (by_payments ? !io.in || !io.labels || io.matrix : !io.matrix)) {
		fputs(train_usage, stderr);
		return ht_cli_fail(CMD, "give --in and --labels, or --matrix, and"
				   " --out MODEL");
	}
	char err[256];
	if (ht_train_params_check(&p, err, sizeof err))
		return ht_cli_fail(CMD, "%s", err);
	const char *first = by_payments ? io.in : io.matrix;
	FILE *in = strcmp(first, "-") ? fopen(first, "r") : stdin;
	if (!in)
		return ht_cli_fail(CMD, "%s: cannot open", first);
	FILE *lin = NULL;
	if (by_payments && !(lin = fopen(io.labels, "r"))) {
		if (in != stdin)
			fclose(in);
		return ht_cli_fail(CMD, "%s: cannot open", io.labels);
	}
	struct matrix m = {0};
	size_t state_bytes = 0;
	if (by_payments)
		state_bytes = ht_cli_state_bytes(CMD, strcmp(io.in, "-") ? io.in
									  : NULL,
						 io.state_mb);
	int rc = by_payments && !state_bytes ? 2
		 : by_payments ? read_payments(in, io.in, lin, io.labels,
					       state_bytes, &m)
			       : read_matrix(in, &m);
	if (in != stdin)
		fclose(in);
	if (lin)
		fclose(lin);
	if (!rc && !m.rows)
		rc = ht_cli_fail(CMD, "no rows to train on");
	if (!rc)
		rc = train(&m, &p, io.out);
	matrix_free(&m);
	return rc;
}

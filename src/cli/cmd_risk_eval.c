/*
 * cmd_risk_eval.c — `huitong risk eval --scores S --labels L`: precision,
 * recall and AUC-PR of risk scores against the simulator's labels,
 * overall and per fraud type (riskeval.h, docs/risk.md).
 *
 * Owner: risk. Both files are read line by line in step: the scores of
 * `huitong risk score` come in the payments' order, as do the labels of
 * `huitong sim`, so the i-th score must name the i-th label's id (a
 * mismatch is an error naming the line). Memory is 8 bytes per payment.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "huitong/jsonl.h"
#include "huitong/riskeval.h"

#define CMD "risk eval"
/* A score line: {"id":…,"score":…,"decision":…,"reasons":[…]}. */
#define SCORE_LINE_BYTES_MAX 65536
#define EVAL_PAYMENTS_MAX (1ull << 31)

static const char usage[] =
	"usage: huitong risk eval --scores SCORES.jsonl --labels LABELS.jsonl"
	" [--json]\n"
	"\n"
	"Compare the scores of `huitong risk score` with the ground truth of\n"
	"`huitong sim` (the same payments, in the same order) and print:\n"
	"  AUC-PR (average precision) of the score, overall and per fraud type;\n"
	"  at the decisions in the file: recall of block and of block-or-review,\n"
	"  precision of block, and the share of legitimate payments blocked and\n"
	"  held for review.\n"
	"\n"
	"  --json   one JSON object instead of the table\n"
	"\n"
	"Exit 0, or 2 with a message naming the file and line on bad input.\n";

struct score_line {
	char id[HT_PAYMENT_ID_BYTES];
	float score;
	enum ht_decision decision;
};

static bool parse_score(const char *line, size_t len, struct score_line *out,
			char *err, size_t err_size)
{
	json_error_t je;
	json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	bool ok = false;
	if (!root) {
		snprintf(err, err_size, "not JSON: %s (column %d)", je.text,
			 je.column);
		return false;
	}
	json_t *id = json_object_get(root, "id");
	json_t *score = json_object_get(root, "score");
	json_t *dec = json_object_get(root, "decision");
	if (!json_is_string(id) || json_string_length(id) == 0 ||
	    json_string_length(id) >= sizeof out->id)
		snprintf(err, err_size, "id: not a string of 1..%d bytes",
			 HT_PAYMENT_ID_BYTES - 1);
	else if (!json_is_number(score) || !(json_number_value(score) >= 0) ||
		 json_number_value(score) > 1)
		snprintf(err, err_size, "score: not a number in [0, 1]");
	else if (!json_is_string(dec) ||
		 ht_decision_parse(json_string_value(dec), json_string_length(dec),
				   &out->decision))
		snprintf(err, err_size,
			 "decision: not one of allow, review, block");
	else {
		memcpy(out->id, json_string_value(id), json_string_length(id) + 1);
		out->score = (float)json_number_value(score);
		ok = true;
	}
	json_decref(root);
	return ok;
}

static FILE *open_in(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		ht_cli_fail(CMD, "%s: %s", path, strerror(errno));
	return f;
}

static void print_num(FILE *out, const char *fmt, double v)
{
	if (isnan(v))
		fputs("—", out);
	else
		fprintf(out, fmt, v);
}

static void json_num(const char *key, double v, bool comma)
{
	if (isnan(v))
		printf("\"%s\":null%s", key, comma ? "," : "");
	else
		printf("\"%s\":%.6f%s", key, v, comma ? "," : "");
}

static void json_figures(const struct ht_eval_figures *f)
{
	printf("{\"positives\":%llu,", (unsigned long long)f->positives);
	json_num("auc_pr", f->auc_pr, true);
	json_num("recall_block", f->recall_block, true);
	json_num("recall_flagged", f->recall_flagged, false);
	printf("}");
}

static void print_json(const struct ht_eval_report *r)
{
	printf("{\"payments\":%llu,\"legit\":%llu,\"all\":",
	       (unsigned long long)r->payments, (unsigned long long)r->legit);
	json_figures(&r->all);
	printf(",");
	json_num("precision_block", r->precision_block, true);
	json_num("precision_flagged", r->precision_flagged, true);
	json_num("legit_blocked", r->legit_blocked, true);
	json_num("legit_reviewed", r->legit_reviewed, true);
	printf("\"types\":{");
	for (unsigned t = 1; t < HT_FRAUD__COUNT; t++) {
		printf("%s\"%s\":", t > 1 ? "," : "", ht_fraud_type_name(t));
		json_figures(&r->type[t]);
	}
	printf("}}\n");
}

static void print_row(const char *name, const struct ht_eval_figures *f)
{
	printf("  %-18s %10llu  ", name, (unsigned long long)f->positives);
	print_num(stdout, "%7.4f", f->auc_pr);
	printf("  ");
	print_num(stdout, "%7.4f", f->recall_block);
	printf("  ");
	print_num(stdout, "%7.4f", f->recall_flagged);
	printf("\n");
}

static void print_text(const struct ht_eval_report *r)
{
	printf("payments %llu, legitimate %llu, fraud %llu\n\n",
	       (unsigned long long)r->payments, (unsigned long long)r->legit,
	       (unsigned long long)r->all.positives);
	printf("  %-18s %10s  %7s  %7s  %7s\n", "fraud type", "payments",
	       "AUC-PR", "rec.blk", "rec.flg");
	print_row("all fraud", &r->all);
	for (unsigned t = 1; t < HT_FRAUD__COUNT; t++)
		print_row(ht_fraud_type_name(t), &r->type[t]);
	printf("\nat the file's decisions:\n  precision of block     ");
	print_num(stdout, "%.4f", r->precision_block);
	printf("\n  precision of flagged   ");
	print_num(stdout, "%.4f", r->precision_flagged);
	printf("\n  legitimate blocked     ");
	print_num(stdout, "%.4f%%", r->legit_blocked * 100);
	printf("\n  legitimate reviewed    ");
	print_num(stdout, "%.4f%%", r->legit_reviewed * 100);
	printf("\n(rec.blk: share of the fraud blocked; rec.flg: blocked or held"
	       " for review)\n");
}

/* Read both files in step into items. Returns the exit code (0 ok). */
static int read_all(FILE *sf, const char *spath, FILE *lf, const char *lpath,
		    struct ht_eval_item **items_out, size_t *n_out)
{
	struct ht_line_reader *sr = NULL, *lr = NULL;
	struct ht_eval_item *items = NULL;
	size_t n = 0, cap = 0;
	int rc = 2;
	if (ht_line_reader_create(sf, SCORE_LINE_BYTES_MAX, &sr) ||
	    ht_line_reader_create(lf, HT_PAYMENT_LINE_BYTES_MAX, &lr)) {
		ht_cli_fail(CMD, "out of memory");
		goto out;
	}
	for (;;) {
		const char *sl, *ll;
		size_t slen, llen;
		uint64_t sno, lno;
		char err[256];
		enum ht_err se = ht_line_reader_next(sr, &sl, &slen, &sno);
		enum ht_err le = ht_line_reader_next(lr, &ll, &llen, &lno);
		if (se == HT_ERR_NOT_FOUND && le == HT_ERR_NOT_FOUND)
			break;
		if (se == HT_ERR_NOT_FOUND || le == HT_ERR_NOT_FOUND) {
			ht_cli_fail(CMD, "%s has more lines than %s (line %llu)",
				    se ? lpath : spath, se ? spath : lpath,
				    (unsigned long long)(se ? lno : sno));
			goto out;
		}
		if (se || le) {
			ht_cli_fail(CMD, "%s:%llu: %s", se ? spath : lpath,
				    (unsigned long long)(se ? sno : lno),
				    ht_strerror(se ? se : le));
			goto out;
		}
		struct score_line s;
		struct ht_label l;
		if (!parse_score(sl, slen, &s, err, sizeof err)) {
			ht_cli_fail(CMD, "%s:%llu: %s", spath,
				    (unsigned long long)sno, err);
			goto out;
		}
		if (ht_label_parse(ll, llen, &l, err, sizeof err)) {
			ht_cli_fail(CMD, "%s:%llu: %s", lpath,
				    (unsigned long long)lno, err);
			goto out;
		}
		if (strcmp(s.id, l.id)) {
			ht_cli_fail(CMD, "line %llu: the score is of %s, the label"
					 " of %s (both files must follow the"
					 " payments' order)",
				    (unsigned long long)sno, s.id, l.id);
			goto out;
		}
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 1 << 16;
			struct ht_eval_item *g;
			if (ncap > EVAL_PAYMENTS_MAX ||
			    !(g = realloc(items, ncap * sizeof *items))) {
				ht_cli_fail(CMD, "out of memory at %zu payments",
					    n);
				goto out;
			}
			items = g;
			cap = ncap;
		}
		items[n++] = (struct ht_eval_item){
			.score = s.score, .fraud = l.fraud,
			.type = (uint8_t)l.type, .decision = (uint8_t)s.decision};
	}
	*items_out = items;
	*n_out = n;
	items = NULL;
	rc = 0;
out:
	free(items);
	ht_line_reader_destroy(sr);
	ht_line_reader_destroy(lr);
	return rc;
}

int ht_cmd_risk_eval(int argc, char **argv)
{
	static const struct option opts[] = {
		{"scores", required_argument, NULL, 's'},
		{"labels", required_argument, NULL, 'l'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *spath = NULL, *lpath = NULL;
	bool json = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's': spath = optarg; break;
		case 'l': lpath = optarg; break;
		case 'j': json = true; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (!spath || !lpath || optind != argc) {
		fputs(usage, stderr);
		return 2;
	}
	FILE *sf = open_in(spath), *lf = sf ? open_in(lpath) : NULL;
	if (!sf || !lf) {
		if (sf)
			fclose(sf);
		return 2;
	}
	struct ht_eval_item *items = NULL;
	size_t n = 0;
	int rc = read_all(sf, spath, lf, lpath, &items, &n);
	fclose(sf);
	fclose(lf);
	if (rc)
		return rc;
	struct ht_eval_report r;
	enum ht_err err = ht_eval_compute(items, n, &r);
	free(items);
	if (err)
		return ht_cli_fail(CMD, "%s", ht_strerror(err));
	if (json)
		print_json(&r);
	else
		print_text(&r);
	return 0;
}

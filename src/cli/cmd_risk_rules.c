/*
 * cmd_risk_rules.c — `huitong risk check RULES` (validate a rule file) and
 * `huitong risk test RULES EVENTS.jsonl` (what each rule would do to each
 * payment); the language is in docs/risk-rules.md.
 *
 * Owner: risk. Both read outside input: the rule file is bounded by
 * HT_RULES_FILE_BYTES_MAX, a payment line by HT_PAYMENT_LINE_BYTES_MAX, a
 * --features file by HT_RULES_SCHEMA_NAMES_MAX names. Payments are read
 * with the interchange parser and their features computed in file order
 * against the ones before (features.h), as `risk score` does. Exit codes:
 * 0 ok, 1 a negative answer
 * (rule file invalid, a payment line malformed), 2 usage or I/O errors.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "risk_cli.h"
#include "huitong/jsonl.h"
#include "huitong/payment.h"
#include "huitong/risk.h"
#include "huitong/rules.h"

/* The schema the rule tools check against: the feature catalogue
 * (features.h) and the payment's string attributes. */
static const struct ht_rule_schema *risk_rules_schema(void)
{
	return ht_risk_rule_schema();
}

static const char check_usage[] =
	"usage: huitong risk check RULES [--features FILE]\n"
	"\n"
	"Parse and compile the rule file RULES (docs/risk-rules.md) and print\n"
	"\"ok: N rules (M shadow), version V\", or every error as\n"
	"RULES:LINE:COLUMN: message on stderr. Feature names are checked\n"
	"against the built-in catalogue, or against FILE: one feature a line,\n"
	"\"number NAME\" or \"string NAME\", '#' starts a comment.\n"
	"Exit 0 valid, 1 invalid, 2 usage error or unreadable file.\n";

static const char test_usage[] =
	"usage: huitong risk test RULES EVENTS.jsonl|-\n"
	"\n"
	"Evaluate the rule file RULES on each payment of EVENTS (interchange\n"
	"JSONL, DESIGN.md) and print one line per payment:\n"
	"  {\"id\":\"t-1\",\"action\":\"review\",\"score\":40,\"fired\":[{\"rule\":\n"
	"   \"new_device_burst\",\"reason\":\"new_device_burst\",\"action\":\n"
	"   \"review\",\"score\":40,\"shadow\":false}]}\n"
	"(\"participant\" in a fired entry names a participant section's rule;\n"
	"\"errors\" counts rules stopped by a division by zero or a NaN), then\n"
	"how often each rule fired, on stderr. Each payment's features are\n"
	"computed against the payments before it in the file, as `risk score`\n"
	"and the live path compute them (docs/risk-features.md): the file\n"
	"should be in time order. Participant sections apply by\n"
	"payer_participant. A malformed line\n"
	"prints {\"line\":N,\"error\":\"...\"} and the run goes on.\n"
	"Exit 0 ok, 1 rule file invalid or some line malformed, 2 usage or I/O\n"
	"error.\n";

/* ---- files ---- */

/* Read at most max bytes of path (one more tells the caller it is too
 * big) into a new buffer. Prints the problem and returns false. */
static bool read_file(const char *cmd, const char *path, size_t max,
		      char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		ht_cli_fail(cmd, "cannot open %s", path);
		return false;
	}
	char *buf = malloc(max + 2);
	size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
	bool ok = buf && !ferror(f);
	fclose(f);
	if (!ok) {
		free(buf);
		ht_cli_fail(cmd, "cannot read %s", path);
		return false;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return true;
}

static void print_diag(const char *path, const struct ht_rules_diag *d)
{
	for (size_t i = 0; i < d->count; i++) {
		const struct ht_rules_error *e = &d->errors[i];
		if (e->line)
			fprintf(stderr, "%s:%u:%u: %s\n", path, e->line, e->column,
				e->message);
		else
			fprintf(stderr, "%s: %s\n", path, e->message);
	}
	if (d->truncated)
		fprintf(stderr, "%s: more errors; stopped after %u\n", path,
			HT_RULES_DIAG_MAX);
}

int ht_cli_load_rules(const char *cmd, const char *path,
		      const struct ht_rule_schema *schema,
		      struct ht_ruleset **out)
{
	char *text;
	size_t len;
	if (!read_file(cmd, path, HT_RULES_FILE_BYTES_MAX, &text, &len))
		return 2;
	struct ht_rules_diag diag;
	enum ht_err err = ht_rules_parse(text, len, schema, out, &diag);
	free(text);
	if (err == HT_ERR_INVALID || err == HT_ERR_LIMIT) {
		print_diag(path, &diag);
		return 1;
	}
	if (err)
		return ht_cli_fail(cmd, "%s: %s", path, ht_strerror(err));
	return -1;
}

/* ---- --features FILE ---- */

struct features {
	struct ht_rule_schema schema;
	char *text;              /* the file; names point into it */
	const char **num, **str; /* HT_RULES_SCHEMA_NAMES_MAX each */
};

/* One line "number NAME" or "string NAME" (comments and blanks already
 * stripped) into f. Returns false with a message. */
static bool feature_line(struct features *f, char *line, const char *path,
			 unsigned no)
{
	char *save = NULL;
	char *kind = strtok_r(line, " \t\r", &save);
	char *name = kind ? strtok_r(NULL, " \t\r", &save) : NULL;
	if (!kind)
		return true;
	bool num = !strcmp(kind, "number");
	if ((!num && strcmp(kind, "string")) || !name ||
	    strtok_r(NULL, " \t\r", &save)) {
		fprintf(stderr, "%s:%u: expected \"number NAME\" or \"string"
			" NAME\"\n", path, no);
		return false;
	}
	if (f->schema.num_count + f->schema.str_count ==
	    HT_RULES_SCHEMA_NAMES_MAX) {
		fprintf(stderr, "%s:%u: more than %u names\n", path, no,
			HT_RULES_SCHEMA_NAMES_MAX);
		return false;
	}
	if (num)
		f->num[f->schema.num_count++] = name;
	else
		f->str[f->schema.str_count++] = name;
	return true;
}

static bool load_features(const char *path, struct features *f)
{
	size_t len;
	memset(f, 0, sizeof *f);
	if (!read_file("risk check", path, HT_RULES_FILE_BYTES_MAX, &f->text,
		       &len))
		return false;
	f->num = calloc(HT_RULES_SCHEMA_NAMES_MAX, sizeof *f->num);
	f->str = calloc(HT_RULES_SCHEMA_NAMES_MAX, sizeof *f->str);
	if (!f->num || !f->str || len > HT_RULES_FILE_BYTES_MAX ||
	    strlen(f->text) != len) {
		ht_cli_fail("risk check", "%s: too large, binary, or out of"
			    " memory", path);
		return false;
	}
	f->schema.num_names = f->num;
	f->schema.str_names = f->str;
	unsigned no = 0;
	/* strsep keeps empty lines, so line numbers stay right. */
	for (char *rest = f->text, *line; (line = strsep(&rest, "\n"));) {
		no++;
		line[strcspn(line, "#")] = '\0';
		if (!feature_line(f, line, path, no))
			return false;
	}
	/* Let the parser check the names (syntax, repeats, reserved words)
	 * now, so their problems are the catalogue's, not the rule file's. */
	struct ht_ruleset *rs = NULL;
	struct ht_rules_diag d;
	enum ht_err err = ht_rules_parse("version 0", 9, &f->schema, &rs, &d);
	ht_rules_release(rs);
	if (err)
		fprintf(stderr, "%s: %s\n", path,
			d.count ? d.errors[0].message : ht_strerror(err));
	return !err;
}

static void free_features(struct features *f)
{
	free(f->text);
	free(f->num);
	free(f->str);
}

/* ---- risk check ---- */

int ht_cmd_risk_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{"features", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0}};
	const char *features = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': features = optarg; break;
		case 'h': fputs(check_usage, stdout); return 0;
		default: fputs(check_usage, stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		fputs(check_usage, stderr);
		return 2;
	}
	struct features f = {0};
	const struct ht_rule_schema *schema = risk_rules_schema();
	if (features) {
		if (!load_features(features, &f)) {
			free_features(&f);
			return 2;
		}
		schema = &f.schema;
	}
	struct ht_ruleset *rs = NULL;
	int rc = ht_cli_load_rules("risk check", argv[optind], schema, &rs);
	if (rc < 0) {
		printf("ok: %zu rules (%zu shadow), version %u\n",
		       ht_rules_count(rs), ht_rules_shadow_count(rs),
		       ht_rules_version(rs));
		rc = 0;
	}
	ht_rules_release(rs);
	free_features(&f);
	return rc;
}

/* ---- risk test: the run ---- */

struct test_run {
	struct ht_ruleset *rs;
	struct ht_risk_state *state;
	float f[HT_FEATURE__COUNT];
	double num[HT_FEATURE__COUNT];
	struct ht_rule_hit *hits;
	size_t *fired;     /* per rule */
	size_t payments, malformed, errors;
};

static json_t *fired_json(const struct ht_rule_hit *h)
{
	json_t *f = json_pack("{s:s,s:s,s:s,s:i,s:b}", "rule", h->rule->name,
			      "reason", h->rule->reason, "action",
			      ht_rule_action_name(h->rule->action), "score",
			      (json_int_t)h->rule->score, "shadow",
			      h->rule->shadow);
	if (f && h->rule->participant)
		json_object_set_new(f, "participant",
				    json_string(h->rule->participant));
	return f;
}

/* Evaluate one payment against the history before it, record it, and
 * print its line. */
static bool test_one(struct test_run *t, const struct ht_payment *p)
{
	const char *str[HT_FEATURE_STR__COUNT];
	ht_features_compute(t->state, p, t->f);
	ht_features_update(t->state, p);
	for (size_t i = 0; i < HT_FEATURE__COUNT; i++)
		t->num[i] = t->f[i];
	ht_feature_strings(p, str);
	struct ht_rule_input in = {t->num, str, p->payer_participant};
	struct ht_rule_outcome out;
	enum ht_err err = ht_rules_eval(t->rs, &in, t->hits,
					ht_rules_count(t->rs), &out);
	HT_ASSERT(err == HT_OK);
	HT_ASSERT(out.hit_count == out.fired_count);
	json_t *line = json_pack("{s:s,s:s,s:i,s:[]}", "id", p->id, "action",
				 ht_rule_action_name(out.action), "score",
				 (json_int_t)out.score, "fired");
	json_t *list = line ? json_object_get(line, "fired") : NULL;
	for (size_t i = 0; list && i < out.hit_count; i++) {
		t->fired[t->hits[i].index]++;
		json_array_append_new(list, fired_json(&t->hits[i]));
	}
	if (line && out.error_count)
		json_object_set_new(line, "errors",
				    json_integer((json_int_t)out.error_count));
	t->payments++;
	t->errors += out.error_count;
	bool ok = line && json_dumpf(line, stdout, JSON_COMPACT |
				     JSON_PRESERVE_ORDER) == 0 &&
		  putchar('\n') != EOF;
	json_decref(line);
	return ok;
}

static bool test_malformed(struct test_run *t, uint64_t no, const char *msg)
{
	t->malformed++;
	json_t *line = json_pack("{s:I,s:s}", "line", (json_int_t)no, "error",
				 msg);
	bool ok = line && json_dumpf(line, stdout, JSON_COMPACT |
				     JSON_PRESERVE_ORDER) == 0 &&
		  putchar('\n') != EOF;
	json_decref(line);
	return ok;
}

static void test_summary(const struct test_run *t)
{
	struct ht_rules_stats st;
	ht_rules_stats(t->rs, &st);
	fprintf(stderr, "risk test: %zu payments, %zu malformed lines, rules"
		" version %u\n", t->payments, t->malformed,
		ht_rules_version(t->rs));
	for (size_t i = 0; i < ht_rules_count(t->rs); i++) {
		const struct ht_rule_info *r;
		HT_ASSERT(ht_rules_rule(t->rs, i, &r) == HT_OK);
		fprintf(stderr, "  %s%s%s: %s%s, fired on %zu of %zu"
			" payments\n", r->participant ? r->participant : "",
			r->participant ? "/" : "", r->name,
			ht_rule_action_name(r->action),
			r->shadow ? " (shadow)" : "", t->fired[i], t->payments);
	}
	if (t->errors)
		fprintf(stderr, "  %zu rule evaluations stopped by runtime"
			" errors (division by zero %llu, NaN/infinity %llu)\n",
			t->errors, (unsigned long long)st.div_zero,
			(unsigned long long)st.nonfinite);
}

static int test_lines(struct test_run *t, FILE *in)
{
	struct ht_line_reader *lr;
	if (ht_line_reader_create(in, HT_PAYMENT_LINE_BYTES_MAX, &lr))
		return ht_cli_fail("risk test", "out of memory");
	int rc = 0;
	for (;;) {
		const char *line;
		size_t len;
		uint64_t no;
		char msg[256];
		struct ht_payment p;
		bool ok = true;
		enum ht_err err = ht_line_reader_next(lr, &line, &len, &no);
		if (err == HT_ERR_NOT_FOUND)
			break;
		if (err == HT_ERR_IO) {
			rc = ht_cli_fail("risk test", "cannot read payments");
			break;
		}
		if (err == HT_ERR_LIMIT)
			ok = test_malformed(t, no, "line too long");
		else if (len == 0)
			continue;
		else if (ht_payment_parse(line, len, &p, msg, sizeof msg))
			ok = test_malformed(t, no, msg);
		else
			ok = test_one(t, &p);
		if (!ok) {
			rc = ht_cli_fail("risk test", "cannot write output");
			break;
		}
	}
	ht_line_reader_destroy(lr);
	if (fflush(stdout))
		rc = ht_cli_fail("risk test", "cannot write output");
	return rc;
}

static int test_run(struct test_run *t, const char *events)
{
	size_t n = ht_rules_count(t->rs);
	t->hits = calloc(n + 1, sizeof *t->hits);
	t->fired = calloc(n + 1, sizeof *t->fired);
	if (!t->hits || !t->fired)
		return ht_cli_fail("risk test", "out of memory");
	struct ht_risk_config cfg = {.hash_seed = HT_CLI_RISK_HASH_SEED};
	cfg.bytes_max = ht_cli_state_bytes("risk test",
					   strcmp(events, "-") ? events : NULL,
					   NULL);
	if (ht_risk_state_open(&cfg, &t->state))
		return ht_cli_fail("risk test", "cannot allocate the features"
				   " state (%zu bytes)", cfg.bytes_max);
	FILE *in = strcmp(events, "-") ? fopen(events, "rb") : stdin;
	if (!in)
		return ht_cli_fail("risk test", "cannot open %s", events);
	int rc = test_lines(t, in);
	if (in != stdin)
		fclose(in);
	if (rc)
		return rc;
	test_summary(t);
	return t->malformed ? 1 : 0;
}

int ht_cmd_risk_test(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(test_usage, stdout);
			return 0;
		}
		fputs(test_usage, stderr);
		return 2;
	}
	if (optind != argc - 2) {
		fputs(test_usage, stderr);
		return 2;
	}
	struct test_run t = {0};
	int rc = ht_cli_load_rules("risk test", argv[optind], risk_rules_schema(),
			    &t.rs);
	if (rc < 0)
		rc = test_run(&t, argv[optind + 1]);
	ht_rules_release(t.rs);
	ht_risk_state_close(t.state);
	free(t.hits);
	free(t.fired);
	return rc;
}

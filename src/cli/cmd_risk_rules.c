/*
 * cmd_risk_rules.c — `huitong risk check RULES` (validate a rule file) and
 * `huitong risk test RULES EVENTS.jsonl` (what each rule would do to each
 * payment); the language is in docs/risk-rules.md.
 *
 * Owner: risk. Both read outside input: the rule file is bounded by
 * HT_RULES_FILE_BYTES_MAX, a payment line by HT_PAYMENT_LINE_BYTES_MAX, a
 * --features file by HT_RULES_SCHEMA_NAMES_MAX names. The payment reader
 * here is deliberately minimal (the fields the provisional schema can fill
 * from one line); the risk engine's full interchange parser replaces it
 * when the two are integrated. Exit codes: 0 ok, 1 a negative answer
 * (rule file invalid, a payment line malformed), 2 usage or I/O errors.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "huitong/jsonl.h"
#include "huitong/payment.h"
#include "huitong/rules.h"

/*
 * The schema the rule tools check against. Until the feature catalogue
 * (include/huitong/features.h) lands it is the provisional list of
 * rules_schema.c; switching to the catalogue is a change to this function
 * only.
 */
static const struct ht_rule_schema *risk_rules_schema(void)
{
	return ht_rules_schema_provisional();
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
	"how often each rule fired, on stderr. Rules see one payment at a time:\n"
	"amount, hour (UTC hour of ts) and the string attributes (payer, payee,\n"
	"payer_participant, payee_participant, device, ip, channel, currency)\n"
	"come from the line; every other feature (the windowed counts and\n"
	"sums, ages, first-seen times, ratios, amount.under_line) is 0 here.\n"
	"Participant sections apply by payer_participant. A malformed line\n"
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

/* Parse the rule file at path. Returns the exit code on failure (1 when
 * the file is invalid, 2 when it cannot be read), -1 with *out on
 * success. */
static int load_rules(const char *cmd, const char *path,
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
	int rc = load_rules("risk check", argv[optind], schema, &rs);
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

/* ---- risk test: one payment ---- */

/* String attributes a payment line gives, by their schema names. */
static const char *const payment_strings[] = {
	"payer", "payee", "payer_participant", "payee_participant",
	"device", "ip", "channel", "currency",
};
/* payment_strings[ATTR_PAYER_PARTICIPANT] selects participant sections. */
#define ATTR_PAYER_PARTICIPANT 2
#define PAYMENT_STRINGS (sizeof payment_strings / sizeof payment_strings[0])

/* Bytes of each string attribute, NUL included: the largest of
 * payment.h's field sizes. */
#define ATTR_BYTES HT_PAYMENT_REF_BYTES

struct test_payment {
	char id[HT_PAYMENT_ID_BYTES];
	double amount;
	double hour;
	char attr[PAYMENT_STRINGS][ATTR_BYTES];
};

/* Where the schema wants what a line gives; SIZE_MAX: not in the schema. */
struct test_map {
	size_t amount, hour;
	size_t attr[PAYMENT_STRINGS];
};

static void map_schema(const struct ht_rule_schema *s, struct test_map *m)
{
	enum ht_rule_type t;
	if (ht_rule_schema_find(s, "amount", &t, &m->amount) ||
	    t != HT_RULE_TYPE_NUMBER)
		m->amount = SIZE_MAX;
	if (ht_rule_schema_find(s, "hour", &t, &m->hour) ||
	    t != HT_RULE_TYPE_NUMBER)
		m->hour = SIZE_MAX;
	for (size_t i = 0; i < PAYMENT_STRINGS; i++)
		if (ht_rule_schema_find(s, payment_strings[i], &t, &m->attr[i]) ||
		    t != HT_RULE_TYPE_STRING)
			m->attr[i] = SIZE_MAX;
}

/* A string member of o into dst (size bytes); absent or null gives "". */
static const char *get_string(json_t *o, const char *key, char *dst,
			      size_t size, bool required)
{
	json_t *v = json_object_get(o, key);
	dst[0] = '\0';
	if (!v || json_is_null(v))
		return required ? "missing" : NULL;
	if (!json_is_string(v))
		return "not a string";
	size_t n = json_string_length(v);
	if (n >= size)
		return "too long";
	memcpy(dst, json_string_value(v), n + 1);
	if (strlen(dst) != n)
		return "holds a NUL";
	return NULL;
}

/* amount: a decimal string or a JSON integer of minor units, 1..2^53 (so
 * it is exact as the double rules compare). */
static const char *get_amount(json_t *o, double *out)
{
	json_t *v = json_object_get(o, "amount");
	uint64_t a = 0;
	if (json_is_integer(v) && json_integer_value(v) > 0)
		a = (uint64_t)json_integer_value(v);
	else if (json_is_string(v) &&
		 ht_u64_parse(json_string_value(v), json_string_length(v), &a))
		a = 0;
	if (a == 0 || a > (1ull << 53))
		return "must be a positive integer of minor units up to 2^53";
	*out = (double)a;
	return NULL;
}

/* The hour of "YYYY-MM-DDTHH:MM:SS[.fff]Z" (or "+00:00" for "Z"). */
static const char *get_hour(json_t *o, double *out)
{
	char ts[40];
	const char *err = get_string(o, "ts", ts, sizeof ts, true);
	if (err)
		return err;
	size_t n = strlen(ts);
	bool utc = (n >= 20 && ts[n - 1] == 'Z') ||
		   (n >= 25 && !strcmp(ts + n - 6, "+00:00"));
	if (!utc || ts[4] != '-' || ts[7] != '-' || ts[10] != 'T' ||
	    ts[13] != ':' || ts[16] != ':' || ts[11] < '0' || ts[11] > '2' ||
	    ts[12] < '0' || ts[12] > '9' || (ts[11] - '0') * 10 + ts[12] - '0' > 23)
		return "expected YYYY-MM-DDTHH:MM:SS[.fff]Z";
	*out = (ts[11] - '0') * 10 + (ts[12] - '0');
	return NULL;
}

/* Parse one line; false with the problem in msg. */
static bool parse_payment(const char *line, size_t len, struct test_payment *p,
			  char *msg, size_t msg_size)
{
	json_error_t jerr;
	json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *field = NULL, *err = NULL;
	if (!o || !json_is_object(o)) {
		snprintf(msg, msg_size, "not a JSON object%s%.100s",
			 o ? "" : ": ", o ? "" : jerr.text);
		json_decref(o);
		return false;
	}
	if ((err = get_string(o, "id", p->id, sizeof p->id, true)))
		field = "id";
	else if ((err = get_hour(o, &p->hour)))
		field = "ts";
	else if ((err = get_amount(o, &p->amount)))
		field = "amount";
	for (size_t i = 0; !err && i < PAYMENT_STRINGS; i++)
		err = get_string(o, (field = payment_strings[i]), p->attr[i],
				 ATTR_BYTES, false);
	json_decref(o);
	if (err)
		snprintf(msg, msg_size, "%s: %s", field, err);
	return !err;
}

/* ---- risk test: the run ---- */

struct test_run {
	struct ht_ruleset *rs;
	struct test_map map;
	size_t num_count, str_count;
	double *num;
	const char **str;
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

/* Evaluate one payment and print its line. */
static bool test_one(struct test_run *t, const struct test_payment *p)
{
	if (t->map.amount != SIZE_MAX)
		t->num[t->map.amount] = p->amount;
	if (t->map.hour != SIZE_MAX)
		t->num[t->map.hour] = p->hour;
	for (size_t i = 0; i < PAYMENT_STRINGS; i++)
		if (t->map.attr[i] != SIZE_MAX)
			t->str[t->map.attr[i]] = p->attr[i];
	struct ht_rule_input in = {t->num, t->str, p->attr[ATTR_PAYER_PARTICIPANT]};
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
		char msg[160];
		struct test_payment p;
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
		else if (!parse_payment(line, len, &p, msg, sizeof msg))
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
	const struct ht_rule_schema *s = risk_rules_schema();
	size_t n = ht_rules_count(t->rs);
	t->num = calloc(s->num_count + 1, sizeof *t->num);
	t->str = calloc(s->str_count + 1, sizeof *t->str);
	t->hits = calloc(n + 1, sizeof *t->hits);
	t->fired = calloc(n + 1, sizeof *t->fired);
	if (!t->num || !t->str || !t->hits || !t->fired)
		return ht_cli_fail("risk test", "out of memory");
	map_schema(s, &t->map);
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
	int rc = load_rules("risk test", argv[optind], risk_rules_schema(),
			    &t.rs);
	if (rc < 0)
		rc = test_run(&t, argv[optind + 1]);
	ht_rules_release(t.rs);
	free(t.num);
	free(t.str);
	free(t.hits);
	free(t.fired);
	return rc;
}

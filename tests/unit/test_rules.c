/*
 * test_rules.c — the risk rule language (rules.h): every construct parsed
 * and evaluated, operator precedence and short-circuit, shadow rules not
 * enforced, participant scopes, the strictest action and the score cap,
 * runtime errors (division by zero, NaN, infinity) that stop a rule and
 * are counted, errors with their exact line:column for bad files (syntax,
 * type, unknown names, duplicates, huge numbers, nesting, limits),
 * random expressions against a tiny reference evaluator, and hot reload
 * under concurrent acquires from several threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "huitong/risk.h"
#include "huitong/rules.h"

/* ---- helpers ---- */

#define NUM_MAX HT_FEATURE__COUNT
#define STR_MAX HT_FEATURE_STR__COUNT

/* One payment's features over the feature catalogue (ht_risk_rule_schema). */
struct feats {
	double num[NUM_MAX];
	const char *str[STR_MAX];
	const char *participant;
};

static const struct ht_rule_schema *schema(void)
{
	return ht_risk_rule_schema();
}

static void set_num(struct feats *f, const char *name, double v)
{
	enum ht_rule_type t;
	size_t i;
	assert_int_equal(ht_rule_schema_find(schema(), name, &t, &i), HT_OK);
	assert_int_equal(t, HT_RULE_TYPE_NUMBER);
	assert_true(i < NUM_MAX);
	f->num[i] = v;
}

static void set_str(struct feats *f, const char *name, const char *v)
{
	enum ht_rule_type t;
	size_t i;
	assert_int_equal(ht_rule_schema_find(schema(), name, &t, &i), HT_OK);
	assert_int_equal(t, HT_RULE_TYPE_STRING);
	assert_true(i < STR_MAX);
	f->str[i] = v;
}

static struct ht_ruleset *parse_ok(const char *text)
{
	struct ht_ruleset *rs = NULL;
	struct ht_rules_diag d;
	enum ht_err err = ht_rules_parse(text, strlen(text), schema(), &rs, &d);
	if (err)
		fail_msg("parse failed (%s): %u:%u: %s\n%s", ht_strerror(err),
			 d.count ? d.errors[0].line : 0,
			 d.count ? d.errors[0].column : 0,
			 d.count ? d.errors[0].message : "", text);
	assert_non_null(rs);
	return rs;
}

static struct ht_rule_outcome eval(const struct ht_ruleset *rs,
				   const struct feats *f,
				   struct ht_rule_hit *hits, size_t cap)
{
	struct ht_rule_input in = {f->num, f->str, f->participant};
	struct ht_rule_outcome out;
	assert_int_equal(ht_rules_eval(rs, &in, hits, cap, &out), HT_OK);
	return out;
}

/* Does `rule r: COND => block` fire on f? -1: it met a runtime error. */
static int fires(const char *cond, const struct feats *f)
{
	char text[4096];
	snprintf(text, sizeof text, "version 1\nrule r: %s => block", cond);
	struct ht_ruleset *rs = parse_ok(text);
	struct ht_rule_outcome o = eval(rs, f, NULL, 0);
	ht_rules_release(rs);
	if (o.error_count)
		return -1;
	return (int)o.fired_count;
}

static void check_fires(const char *cond, const struct feats *f, int want)
{
	int got = fires(cond, f);
	if (got != want)
		fail_msg("'%s': got %d, want %d", cond, got, want);
}

/* Parse must fail with its first error at line:col, containing msg. */
static void check_error(const char *text, size_t len, enum ht_err code,
			unsigned line, unsigned col, const char *msg)
{
	struct ht_ruleset *rs = (struct ht_ruleset *)1;
	struct ht_rules_diag d;
	enum ht_err err = ht_rules_parse(text, len, schema(), &rs, &d);
	assert_null(rs);
	if (err != code || d.count == 0 || d.errors[0].line != line ||
	    d.errors[0].column != col || !strstr(d.errors[0].message, msg))
		fail_msg("%.200s\n got %s %u:%u '%s', want %s %u:%u '%s'", text,
			 ht_strerror(err), d.count ? d.errors[0].line : 0,
			 d.count ? d.errors[0].column : 0,
			 d.count ? d.errors[0].message : "", ht_strerror(code),
			 line, col, msg);
}

static void check_err(const char *text, unsigned line, unsigned col,
		      const char *msg)
{
	check_error(text, strlen(text), HT_ERR_INVALID, line, col, msg);
}

/* ---- parsing a whole file ---- */

static const char sample[] =
	"# comment\n"
	"version 7\n"
	"list high_risk_mcc = [\"6051\", \"7995\"]\n"
	"rule new_device_burst: device.first_seen < 10m and payer.count_1h > 5"
	" => review score 40 reason \"new_device_burst\"\n"
	"shadow rule big_night: amount > 50000 and hour >= 0 and hour < 5 =>"
	" block score 80\n"
	"participant bankA {\n"
	"  rule local_limit: amount > 1000000 => block reason \"bank_a_limit\""
	" score 90\n"
	"  rule big_night: amount > 1 => allow\n"
	"}\n"
	"participant \"bank-0.b\" {\n"
	"}\n"
	"rule mcc: payee in high_risk_mcc => review\n";

static void test_sample_file(void **state)
{
	(void)state;
	struct ht_ruleset *rs = parse_ok(sample);
	assert_int_equal(ht_rules_version(rs), 7);
	assert_int_equal(ht_rules_count(rs), 5);
	assert_int_equal(ht_rules_shadow_count(rs), 1);
	assert_int_equal(ht_rules_section_count(rs), 2);
	static const struct {
		const char *name, *reason, *participant;
		enum ht_rule_action action;
		unsigned score, line;
		bool shadow;
	} want[] = {
		{"new_device_burst", "new_device_burst", NULL, HT_RULE_REVIEW,
		 40, 4, false},
		{"big_night", "big_night", NULL, HT_RULE_BLOCK, 80, 5, true},
		{"mcc", "mcc", NULL, HT_RULE_REVIEW, 0, 12, false},
		{"local_limit", "bank_a_limit", "bankA", HT_RULE_BLOCK, 90, 7,
		 false},
		{"big_night", "big_night", "bankA", HT_RULE_ALLOW, 0, 8, false},
	};
	for (size_t i = 0; i < 5; i++) {
		const struct ht_rule_info *r;
		assert_int_equal(ht_rules_rule(rs, i, &r), HT_OK);
		assert_string_equal(r->name, want[i].name);
		assert_string_equal(r->reason, want[i].reason);
		if (want[i].participant)
			assert_string_equal(r->participant, want[i].participant);
		else
			assert_null(r->participant);
		assert_int_equal(r->action, want[i].action);
		assert_int_equal(r->score, want[i].score);
		assert_int_equal(r->line, want[i].line);
		assert_int_equal(r->shadow, want[i].shadow);
	}
	const struct ht_rule_info *r;
	assert_int_equal(ht_rules_rule(rs, 5, &r), HT_ERR_NOT_FOUND);
	ht_rules_release(rs);
}

static void test_empty_and_minimal(void **state)
{
	(void)state;
	struct ht_ruleset *rs = parse_ok("version 0");
	assert_int_equal(ht_rules_count(rs), 0);
	struct feats f = {0};
	struct ht_rule_outcome o = eval(rs, &f, NULL, 0);
	assert_int_equal(o.action, HT_RULE_ALLOW);
	assert_int_equal(o.score, 0);
	ht_rules_release(rs);
	rs = parse_ok("version 4294967295 # max\r\n\r\n");
	assert_int_equal(ht_rules_version(rs), 4294967295u);
	ht_rules_release(rs);
	/* Rules may span lines. */
	rs = parse_ok("version 1\nrule a:\n  amount > 1\n  and hour < 3\n"
		      "  => review\n  score 10\n");
	assert_int_equal(ht_rules_count(rs), 1);
	ht_rules_release(rs);
	ht_rules_release(NULL);
}

/* ---- expressions ---- */

static void test_arithmetic_and_precedence(void **state)
{
	(void)state;
	struct feats f = {0};
	set_num(&f, "amount", 10);
	static const char *const yes[] = {
		"1 + 2 * 3 == 7", "(1 + 2) * 3 == 9", "10 - 4 - 3 == 3",
		"12 / 2 / 3 == 2", "7 % 4 == 3", "-7 % 4 == -3", "-2 * 3 == -6",
		"- -2 == 2", "2 - -2 == 4", "-(amount) == -10",
		"amount * 2 + 1 == 21", "1 + amount / 4 == 3.5",
		"10s == 10", "10m == 600", "2h == 7200", "7d == 604800",
		"1.5h == 5400", "1_000_000 == 1000000", "0.25 * 4 == 1",
		"2 * 3 > 5", "not 1 > 2", "not not 1 < 2",
		/* and binds tighter than or; not tighter than and */
		"true or false and false", "not false or false",
		"not (false or true) or true", "false and false or true",
		"amount >= 10 and amount <= 10", "amount != 11",
		"9007199254740992 > 0", "-9007199254740992 < 0",
		"true", "(((((amount))))) == 10",
	};
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
		check_fires(yes[i], &f, 1);
	static const char *const no[] = {
		"true and false", "not true or false", "false or false",
		"not (1 < 2)", "amount > 10", "amount < 10", "10 - (4 - 3) == 3",
		"false", "not true and true",
	};
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		check_fires(no[i], &f, 0);
}

static void test_comparisons_swapped(void **state)
{
	(void)state;
	struct feats f = {0};
	set_num(&f, "payer.count_1h", 6);
	/* constant on the left is the fused form with the operator turned */
	check_fires("5 < payer.count_1h", &f, 1);
	check_fires("6 <= payer.count_1h", &f, 1);
	check_fires("7 > payer.count_1h", &f, 1);
	check_fires("6 >= payer.count_1h", &f, 1);
	check_fires("6 == payer.count_1h", &f, 1);
	check_fires("5 != payer.count_1h", &f, 1);
	check_fires("6 < payer.count_1h", &f, 0);
	check_fires("payer.count_1h > 6", &f, 0);
	check_fires("payer.count_1h >= 6", &f, 1);
}

static void test_strings_and_lists(void **state)
{
	(void)state;
	struct feats f = {0};
	set_str(&f, "channel", "qr");
	set_str(&f, "payer", "bankA:c1");
	set_str(&f, "payee", "bankA:c1");
	set_num(&f, "hour", 3);
	set_num(&f, "amount", 500);
	check_fires("channel == \"qr\"", &f, 1);
	check_fires("\"qr\" == channel", &f, 1);
	check_fires("channel != \"qr\"", &f, 0);
	check_fires("payer == payee", &f, 1);
	check_fires("payer != payee", &f, 0);
	check_fires("device == \"\"", &f, 1); /* NULL reads as "" */
	check_fires("channel in [\"p2p\", \"qr\"]", &f, 1);
	check_fires("channel in [\"p2p\", \"card\",]", &f, 0);
	check_fires("channel not in [\"p2p\", \"card\"]", &f, 1);
	check_fires("not channel in [\"qr\"]", &f, 0);
	check_fires("hour in [0, 1, 2, 3, 4]", &f, 1);
	check_fires("hour in [4, 3, 3, 2]", &f, 1);
	check_fires("hour + 1 in [4]", &f, 1);
	check_fires("-hour in [-3]", &f, 1);
	check_fires("amount in [1m, 500s]", &f, 1);
	check_fires("hour in []", &f, 0);
	check_fires("channel not in []", &f, 1);
	check_fires("\"a\\\"b\\\\\" == \"a\\\"b\\\\\"", &f, 1);
	check_fires("\"中文\" != channel", &f, 1);

	struct ht_ruleset *rs = parse_ok(
		"version 1\n"
		"list blocked = [\"d-9\", \"d-1\", \"d-5\", \"d-9\"]\n"
		"list nothing = []\n"
		"list hours = [22, 23, 0]\n"
		"rule dev: device in blocked => block\n"
		"rule none: device in nothing or hour in nothing => block\n"
		"rule night: hour in hours and device not in blocked => review\n");
	struct ht_rule_hit hits[4];
	set_str(&f, "device", "d-9");
	struct ht_rule_outcome o = eval(rs, &f, hits, 4);
	assert_int_equal(o.fired_count, 1);
	assert_string_equal(hits[0].rule->name, "dev");
	set_str(&f, "device", "d-2");
	set_num(&f, "hour", 23);
	o = eval(rs, &f, hits, 4);
	assert_int_equal(o.fired_count, 1);
	assert_string_equal(hits[0].rule->name, "night");
	ht_rules_release(rs);
}

static void test_big_list(void **state)
{
	(void)state;
	size_t n = 20000, size = n * 12 + 64;
	char *text = malloc(size);
	assert_non_null(text);
	size_t len = (size_t)snprintf(text, size, "version 1\nlist l = [");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, size - len, "\"d%zu\",",
					(i * 7919) % n);
	len += (size_t)snprintf(text + len, size - len,
				"]\nrule r: device in l => block\n");
	struct ht_ruleset *rs = parse_ok(text);
	struct feats f = {0};
	char dev[16];
	for (size_t i = 0; i < n; i += 997) {
		snprintf(dev, sizeof dev, "d%zu", i);
		set_str(&f, "device", dev);
		assert_int_equal(eval(rs, &f, NULL, 0).fired_count, 1);
	}
	set_str(&f, "device", "d20000");
	assert_int_equal(eval(rs, &f, NULL, 0).fired_count, 0);
	ht_rules_release(rs);
	free(text);
}

/* ---- runtime errors and short-circuit ---- */

static void test_short_circuit(void **state)
{
	(void)state;
	struct feats f = {0};
	set_num(&f, "payer.count_1h", 8);
	set_num(&f, "amount", 0);
	/* The guard keeps the division from running. */
	check_fires("amount == 0 or payer.count_1h / amount > 1", &f, 1);
	check_fires("amount != 0 and payer.count_1h / amount > 1", &f, 0);
	check_fires("not (amount != 0 and payer.count_1h % amount > 1)", &f, 1);
	check_fires("false and 1 / 0 > 1", &f, 0);
	check_fires("true or 1 / 0 > 1", &f, 1);
	/* Without a guard the rule stops and does not fire either way. */
	check_fires("payer.count_1h / amount > 1", &f, -1);
	check_fires("not (payer.count_1h / amount > 1)", &f, -1);
	check_fires("payer.count_1h % amount < 1", &f, -1);
	check_fires("1 / 0 > 1 or true", &f, -1);
	check_fires("(1 / 0) in [1, 2]", &f, -1);
	set_num(&f, "amount", 4);
	check_fires("payer.count_1h / amount == 2", &f, 1);
}

static void test_runtime_errors_counted(void **state)
{
	(void)state;
	struct ht_ruleset *rs = parse_ok(
		"version 1\n"
		"rule ratio: payer.sum_1h / payer.count_1h > 100 => block score 50\n"
		"rule nan: not (payer.amount_ratio > 3) => review score 10\n"
		"rule inf: payer.sum_24h * 9007199254740992 > 1 => block\n"
		"rule inlist: payer.amount_ratio in [1, 2] => block\n"
		"rule fine: true => allow score 1\n");
	struct feats f = {0};
	set_num(&f, "payer.sum_1h", 5000);
	set_num(&f, "payer.amount_ratio", NAN);
	set_num(&f, "payer.sum_24h", 1e300);
	struct ht_rule_hit hits[8];
	struct ht_rule_outcome o = eval(rs, &f, hits, 8);
	assert_int_equal(o.error_count, 4);
	assert_int_equal(o.fired_count, 1);
	assert_string_equal(hits[0].rule->name, "fine");
	assert_int_equal(o.action, HT_RULE_ALLOW);
	assert_int_equal(o.score, 1);
	struct ht_rules_stats st;
	ht_rules_stats(rs, &st);
	assert_int_equal(st.div_zero, 1);
	assert_int_equal(st.nonfinite, 3);
	set_num(&f, "payer.amount_ratio", INFINITY);
	o = eval(rs, &f, hits, 8);
	assert_int_equal(o.error_count, 4);
	set_num(&f, "payer.amount_ratio", -INFINITY);
	set_num(&f, "payer.count_1h", 10);
	set_num(&f, "payer.sum_24h", 0);
	o = eval(rs, &f, hits, 8);
	assert_int_equal(o.error_count, 2); /* nan, inlist */
	assert_int_equal(o.fired_count, 2); /* ratio 500, fine */
	assert_int_equal(o.action, HT_RULE_BLOCK);
	ht_rules_stats(rs, &st);
	assert_int_equal(st.div_zero, 2);
	assert_int_equal(st.nonfinite, 3 + 3 + 2);
	ht_rules_release(rs);
}

/* ---- actions, shadow, scopes ---- */

static void test_strictest_action_and_cap(void **state)
{
	(void)state;
	struct ht_ruleset *rs = parse_ok(
		"version 1\n"
		"rule a: amount > 1 => review score 40\n"
		"rule b: amount > 2 => block score 30\n"
		"rule c: amount > 3 => allow score 50\n"
		"shadow rule d: amount > 0 => block score 100\n");
	struct feats f = {0};
	struct ht_rule_hit hits[4];
	set_num(&f, "amount", 1.5);
	struct ht_rule_outcome o = eval(rs, &f, hits, 4);
	assert_int_equal(o.action, HT_RULE_REVIEW);
	assert_int_equal(o.score, 40);
	assert_int_equal(o.shadow_action, HT_RULE_BLOCK);
	assert_int_equal(o.shadow_score, 100);
	assert_int_equal(o.fired_count, 2);
	assert_true(hits[1].rule->shadow);
	set_num(&f, "amount", 10);
	o = eval(rs, &f, hits, 4);
	assert_int_equal(o.action, HT_RULE_BLOCK);
	assert_int_equal(o.score, 100); /* 120 capped */
	assert_int_equal(o.fired_count, 4);
	/* Hits are bounded by the caller's array; all are counted. */
	o = eval(rs, &f, hits, 1);
	assert_int_equal(o.hit_count, 1);
	assert_int_equal(o.fired_count, 4);
	assert_string_equal(hits[0].rule->name, "a");
	assert_int_equal(hits[0].index, 0);
	ht_rules_release(rs);
}

static void test_shadow_only(void **state)
{
	(void)state;
	struct ht_ruleset *rs = parse_ok(
		"version 2\n"
		"shadow rule s1: amount > 0 => block score 90\n"
		"shadow rule s2: amount > 0 => review score 20\n");
	struct feats f = {0};
	set_num(&f, "amount", 1);
	struct ht_rule_hit hits[2];
	struct ht_rule_outcome o = eval(rs, &f, hits, 2);
	assert_int_equal(o.action, HT_RULE_ALLOW);
	assert_int_equal(o.score, 0);
	assert_int_equal(o.fired_count, 2);
	assert_int_equal(o.shadow_action, HT_RULE_BLOCK);
	assert_int_equal(o.shadow_score, 100);
	assert_string_equal(ht_rule_action_name(o.shadow_action), "block");
	ht_rules_release(rs);
}

static void test_participant_scope(void **state)
{
	(void)state;
	struct ht_ruleset *rs = parse_ok(
		"version 3\n"
		"participant zbank {\n"
		"  rule big: amount > 10 => block score 70\n"
		"}\n"
		"rule big: amount > 100 => review score 20\n"
		"participant bankA {\n"
		"  rule big: amount > 10 => review score 30 reason \"a_big\"\n"
		"  shadow rule sh: amount > 0 => block\n"
		"}\n");
	assert_int_equal(ht_rules_section_count(rs), 2);
	struct feats f = {0};
	struct ht_rule_hit hits[8];
	set_num(&f, "amount", 50);
	/* no participant, or one without a section: global rules only */
	struct ht_rule_outcome o = eval(rs, &f, hits, 8);
	assert_int_equal(o.fired_count, 0);
	f.participant = "bankC";
	assert_int_equal(eval(rs, &f, hits, 8).fired_count, 0);
	f.participant = "bankA";
	o = eval(rs, &f, hits, 8);
	assert_int_equal(o.fired_count, 2);
	assert_int_equal(o.action, HT_RULE_REVIEW);
	assert_int_equal(o.score, 30);
	assert_string_equal(hits[0].rule->reason, "a_big");
	assert_string_equal(hits[0].rule->participant, "bankA");
	assert_true(hits[1].rule->shadow);
	f.participant = "zbank";
	o = eval(rs, &f, hits, 8);
	assert_int_equal(o.action, HT_RULE_BLOCK);
	assert_int_equal(o.score, 70);
	/* global rules first, then the section's */
	set_num(&f, "amount", 500);
	o = eval(rs, &f, hits, 8);
	assert_int_equal(o.fired_count, 2);
	assert_null(hits[0].rule->participant);
	assert_string_equal(hits[1].rule->participant, "zbank");
	assert_int_equal(o.score, 90);
	f.participant = "banka"; /* ids are exact and case-sensitive */
	assert_int_equal(eval(rs, &f, hits, 8).fired_count, 1);
	ht_rules_release(rs);
}

/* ---- errors ---- */

static void test_errors_syntax(void **state)
{
	(void)state;
	check_err("version 1\nrule a: amount > 5 review", 2, 20,
		  "expected '=>' after condition");
	check_err("version 1\nrule a amount > 5 => block", 2, 8,
		  "expected ':' after the rule name, got 'amount'");
	check_err("version 1\nrule a: amount > => block", 2, 18,
		  "expected a value, got '=>'");
	check_err("version 1\nrule a: (amount > 5 => block", 2, 21,
		  "expected ')'");
	check_err("version 1\nrule a: amount > 1 && hour < 2 => block", 2, 20,
		  "unexpected '&'");
	check_err("version 1\nrule a: ! amount > 1 => block", 2, 9,
		  "write 'not'");
	check_err("version 1\nrule a: amount > 1 => deny", 2, 23,
		  "expected allow, review or block after '=>', got 'deny'");
	check_err("version 1\nrule a: amount > 1 => block score 101", 2, 35,
		  "score must be an integer 0..100");
	check_err("version 1\nrule a: amount > 1 => block score 1.5", 2, 35,
		  "score must be an integer");
	check_err("version 1\nrule a: amount > 1 => block score 5 score 6", 2,
		  37, "score given twice");
	check_err("version 1\nrule a: amount > 1 => block reason \"Bad Code\"",
		  2, 36, "snake_case");
	check_err("version 1\nrule BadName: amount > 1 => block", 2, 6,
		  "a rule name in snake_case");
	check_err("version 1\nrule a: channel == \"qr => block", 2, 20,
		  "unterminated string");
	check_err("version 1\nrule a: channel == \"\\n\" => block", 2, 20,
		  "unknown escape");
	check_err("version 1\nrule a: amount > 10x => block", 2, 18,
		  "malformed number");
	check_err("version 1\nrule a: amount > 10ms => block", 2, 18,
		  "malformed number");
	check_err("version 1\nrule a: amount > 1__0 => block", 2, 18,
		  "'_' in a number");
	check_err("version 1\nrule a: amount > 1 < 2 => block", 2, 20,
		  "comparisons do not chain");
	check_err("version 1\nrule a: amount not 5 => block", 2, 20,
		  "expected 'in' after 'not'");
	check_err("version 1\nrule a: amount in 5 => block", 2, 19,
		  "expected '[' or a list name after 'in'");
	check_err("version 1\nrule a: [1] == 1 => block", 2, 9,
		  "a list can only follow 'in'");
	check_err("version 1\n}\n", 2, 1, "'}' without a participant section");
	check_err("version 1\nbogus\n", 2, 1, "expected 'rule', 'shadow rule',"
		  " 'list' or 'participant', got 'bogus'");
	check_err("version 1\nshadow a: true => block\n", 2, 8,
		  "expected 'rule' after 'shadow'");
	check_err("version 1\nrule a: \x01 => block\n", 2, 9,
		  "unexpected byte 0x01");
	/* Columns count characters, not bytes. */
	check_err("version 1\nrule a: \"中文\" + 1 > 2 => block", 2, 14,
		  "'+' needs numbers, not a string");
}

static void test_errors_version(void **state)
{
	(void)state;
	check_err("", 1, 1, "expected 'version N' as the first statement");
	check_err("# only a comment\n\n", 3, 1, "expected 'version N'");
	check_err("rule a: true => block\n", 1, 1, "expected 'version N'");
	check_err("version 1\nversion 2\n", 2, 1,
		  "'version' must be the first statement");
	check_err("version -1\n", 1, 9, "expected a version number, got '-'");
	check_err("version 4294967296\n", 1, 9, "version must be an integer");
	check_err("version 1.5\n", 1, 9, "version must be an integer");
}

static void test_errors_types(void **state)
{
	(void)state;
	check_err("version 1\nrule b: amount > \"x\" => block", 2, 16,
		  "cannot compare a number with a string");
	check_err("version 1\nrule b: channel < \"x\" => block", 2, 17,
		  "'<' needs numbers, not a string");
	check_err("version 1\nrule b: amount => block", 2, 9,
		  "condition must be true/false, not a number");
	check_err("version 1\nrule b: channel => block", 2, 9,
		  "condition must be true/false, not a string");
	check_err("version 1\nrule b: amount and true => block", 2, 9,
		  "'and' needs true/false, not a number");
	check_err("version 1\nrule b: true or hour => block", 2, 17,
		  "'or' needs true/false, not a number");
	check_err("version 1\nrule b: not amount => block", 2, 9,
		  "'not' needs true/false, not a number");
	check_err("version 1\nrule b: -channel == 1 => block", 2, 9,
		  "unary '-' needs a number, not a string");
	check_err("version 1\nrule b: channel + 1 > 2 => block", 2, 17,
		  "'+' needs numbers, not a string");
	check_err("version 1\nrule b: (1 > 2) == true => block", 2, 17,
		  "'==' needs numbers or strings, not true/false");
	check_err("version 1\nrule b: channel in [1, 2] => block", 2, 20,
		  "cannot look for a string in a list of numbers");
	check_err("version 1\nrule b: (1 < 2) in [1] => block", 2, 17,
		  "'in' needs a number or a string on its left");
	check_err("version 1\nrule b: hour in [1, \"2\"] => block", 2, 21,
		  "a list holds numbers or strings, not both");
	check_err("version 1\nlist l = [\"a\"]\nrule b: hour in l => block", 3,
		  17, "cannot look for a number in a list of strings");
}

static void test_errors_names(void **state)
{
	(void)state;
	check_err("version 1\nrule c: payer.count_1hr > 3 => block", 2, 9,
		  "unknown feature 'payer.count_1hr' (did you mean"
		  " 'payer.count_1h'?)");
	check_err("version 1\nrule c: zzzzzzzzzzzz > 3 => block", 2, 9,
		  "unknown feature 'zzzzzzzzzzzz'");
	check_err("version 1\nrule c: amont > 3 => block", 2, 9,
		  "(did you mean 'amount'?)");
	check_err("version 1\nlist blocked = []\nrule c: device in blockd =>"
		  " block", 3, 19, "unknown list 'blockd' (did you mean"
		  " 'blocked'?)");
	check_err("version 1\nrule c: device in nolist => block", 2, 19,
		  "unknown list 'nolist'");
	check_err("version 1\nrule a: true => block\nrule a: false => block",
		  3, 6, "duplicate rule name 'a' (first at line 2)");
	check_err("version 1\nparticipant p {\n rule a: true => block\n"
		  " rule a: true => block\n}", 4, 7, "duplicate rule name 'a'");
	check_err("version 1\nlist l = []\nlist l = [1]", 3, 6,
		  "list 'l' is already defined at line 2");
	check_err("version 1\nparticipant p {\n}\nparticipant \"p\" {\n}", 4,
		  13, "participant 'p' already has a section at line 2");
	check_err("version 1\nparticipant \"a b\" {\n}", 2, 13,
		  "expected a participant id");
	check_err("version 1\nparticipant p {\n rule a: true => block\n", 4, 1,
		  "missing '}' to close the section opened at line 2");
	check_err("version 1\nparticipant p {\nlist l = []\n}", 3, 1,
		  "missing '}'");
	check_err("version 1\nparticipant p {\n list l = []\n}", 3, 2,
		  "lists are defined outside participant sections");
	check_err("version 1\nparticipant p {\n participant q {\n}\n}", 3, 2,
		  "participant sections do not nest");
	char longname[200];
	snprintf(longname, sizeof longname, "version 1\nrule a: %065d > 1 =>"
		 " block", 0);
	memset(longname + 18, 'x', 65);
	check_error(longname, strlen(longname), HT_ERR_LIMIT, 2, 9,
		    "name longer than 64 bytes");
}

static void test_errors_numbers_and_limits(void **state)
{
	(void)state;
	check_error("version 1\nrule d: amount > 99999999999999999999 => block",
		    strlen("version 1\nrule d: amount > 99999999999999999999 =>"
			   " block"), HT_ERR_LIMIT, 2, 18, "number out of range");
	const char *big = "version 1\nrule d: amount > 9007199254740993 => block";
	check_error(big, strlen(big), HT_ERR_LIMIT, 2, 18, "out of range");
	big = "version 1\nrule d: amount > 104249991375d => block";
	check_error(big, strlen(big), HT_ERR_LIMIT, 2, 18, "out of range");
	big = "version 1\nrule d: amount > 1000000000000000000000000000000000000"
	      "0000000000000000000 => block";
	check_error(big, strlen(big), HT_ERR_LIMIT, 2, 18, "out of range");
	struct ht_ruleset *rs = parse_ok(
		"version 1\nrule d: amount < 9007199254740992 => block");
	ht_rules_release(rs);

	/* nesting: 64 levels parse, 65 do not */
	char text[512];
	int n = snprintf(text, sizeof text, "version 1\nrule e: ");
	for (int i = 0; i < 63; i++)
		text[n++] = '(';
	n += snprintf(text + n, sizeof text - (size_t)n, "true");
	for (int i = 0; i < 63; i++)
		text[n++] = ')';
	snprintf(text + n, sizeof text - (size_t)n, " => block");
	rs = parse_ok(text);
	ht_rules_release(rs);
	n = snprintf(text, sizeof text, "version 1\nrule e: ");
	for (int i = 0; i < 64; i++)
		text[n++] = '(';
	snprintf(text + n, sizeof text - (size_t)n, "true");
	check_error(text, strlen(text), HT_ERR_LIMIT, 2, 73,
		    "expression nested deeper than 64 levels");
	n = snprintf(text, sizeof text, "version 1\nrule e: ");
	for (int i = 0; i < 70; i++)
		n += snprintf(text + n, sizeof text - (size_t)n, "not ");
	snprintf(text + n, sizeof text - (size_t)n, "true => block");
	check_error(text, strlen(text), HT_ERR_LIMIT, 2, 261, "nested deeper");
	n = snprintf(text, sizeof text, "version 1\nrule e: ");
	for (int i = 0; i < 70; i++)
		text[n++] = '-';
	snprintf(text + n, sizeof text - (size_t)n, "1 > 0 => block");
	check_error(text, strlen(text), HT_ERR_LIMIT, 2, 72, "nested deeper");
}

static void test_errors_big_inputs(void **state)
{
	(void)state;
	/* a file over 1 MiB */
	size_t size = HT_RULES_FILE_BYTES_MAX + 1;
	char *text = malloc(size + 64);
	assert_non_null(text);
	memset(text, '#', size);
	memcpy(text, "version 1\n", 10);
	check_error(text, size, HT_ERR_LIMIT, 1, 1, "file larger than 1048576");
	/* 10,001 rules */
	size_t len = (size_t)snprintf(text, size, "version 1\n");
	for (unsigned i = 0; i <= HT_RULES_RULES_MAX; i++)
		len += (size_t)snprintf(text + len, size - len,
					"rule r%u: true => allow\n", i);
	check_error(text, len, HT_ERR_LIMIT, 10002, 1, "more than 10000 rules");
	/* 10,000 rules are fine */
	len = (size_t)snprintf(text, size, "version 1\n");
	for (unsigned i = 0; i < HT_RULES_RULES_MAX; i++)
		len += (size_t)snprintf(text + len, size - len,
					"rule r%u: true => allow\n", i);
	struct ht_ruleset *rs = NULL;
	assert_int_equal(ht_rules_parse(text, len, schema(), &rs, NULL), HT_OK);
	assert_int_equal(ht_rules_count(rs), HT_RULES_RULES_MAX);
	ht_rules_release(rs);
	/* a list of 100,001 items */
	len = (size_t)snprintf(text, size, "version 1\nlist l = [");
	for (unsigned i = 0; i <= HT_RULES_LIST_ITEMS_MAX; i++)
		len += (size_t)snprintf(text + len, size - len, "%u,", i % 10);
	len += (size_t)snprintf(text + len, size - len, "]\n");
	check_error(text, len, HT_ERR_LIMIT, 2, 11 + 2 * 100000,
		    "list longer than 100000 items");
	/* NUL bytes are just bad characters */
	memcpy(text, "version 1\nrule a: \0 => block", 28);
	check_error(text, 28, HT_ERR_INVALID, 2, 9, "unexpected byte 0x00");
	free(text);
}

static void test_errors_many(void **state)
{
	(void)state;
	/* recovery: each bad statement reported, good ones still checked */
	const char *text =
		"version 1\n"
		"rule a: amount > 5 review\n"
		"rule b: amount > 1 => block\n"
		"rule c: payer.cnt > 3 => block\n"
		"  rule d: hour > => block\n"
		"participant x {\n"
		"  rule e: amount + \"s\" > 1 => block\n"
		"  rule f: true => block\n"
		"}\n"
		"rule g: true => block score 500\n";
	struct ht_ruleset *rs = NULL;
	struct ht_rules_diag d;
	assert_int_equal(ht_rules_parse(text, strlen(text), schema(), &rs, &d),
			 HT_ERR_INVALID);
	assert_null(rs);
	assert_int_equal(d.count, 5);
	unsigned lines[] = {2, 4, 5, 7, 10};
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(d.errors[i].line, lines[i]);
	assert_false(d.truncated);
	/* more errors than the diag holds: truncated, parse stops */
	char many[4096];
	size_t len = (size_t)snprintf(many, sizeof many, "version 1\n");
	for (int i = 0; i < 40; i++)
		len += (size_t)snprintf(many + len, sizeof many - len,
					"rule r%d: nope > 1 => block\n", i);
	assert_int_equal(ht_rules_parse(many, len, schema(), &rs, &d),
			 HT_ERR_INVALID);
	assert_int_equal(d.count, HT_RULES_DIAG_MAX);
	assert_true(d.truncated);
	/* a limit among syntax errors makes the call's answer LIMIT */
	text = "version 1\nrule a: nope > 1 => block\n"
	       "rule b: amount > 1e99 => block\n"
	       "rule c: amount > 99999999999999999 => block\n";
	assert_int_equal(ht_rules_parse(text, strlen(text), schema(), &rs, &d),
			 HT_ERR_LIMIT);
	assert_int_equal(d.count, 3);
}

static void test_bad_arguments_and_schema(void **state)
{
	(void)state;
	struct ht_ruleset *rs = NULL;
	assert_int_equal(ht_rules_parse("version 1", 9, NULL, &rs, NULL),
			 HT_ERR_INVALID);
	assert_int_equal(ht_rules_parse(NULL, 1, schema(), &rs, NULL),
			 HT_ERR_INVALID);
	assert_int_equal(ht_rules_parse("version 1", 9, schema(), NULL, NULL),
			 HT_ERR_INVALID);
	static const char *const dup[] = {"a", "b", "a"};
	static const char *const bad1[] = {"a..b"};
	static const char *const bad2[] = {"and"};
	static const char *const bad3[] = {"1a"};
	static const char *const ok[] = {"x", "y.z_1", "_q.w"};
	static const char *const clash[] = {"x"};
	struct ht_rule_schema s = {3, dup, 0, NULL};
	struct ht_rules_diag d;
	assert_int_equal(ht_rules_parse("version 1", 9, &s, &rs, &d),
			 HT_ERR_INVALID);
	assert_true(strstr(d.errors[0].message, "schema") != NULL);
	s = (struct ht_rule_schema){1, bad1, 0, NULL};
	assert_int_equal(ht_rules_parse("version 1", 9, &s, &rs, NULL),
			 HT_ERR_INVALID);
	s = (struct ht_rule_schema){1, bad2, 0, NULL};
	assert_int_equal(ht_rules_parse("version 1", 9, &s, &rs, NULL),
			 HT_ERR_INVALID);
	s = (struct ht_rule_schema){0, NULL, 1, bad3};
	assert_int_equal(ht_rules_parse("version 1", 9, &s, &rs, NULL),
			 HT_ERR_INVALID);
	s = (struct ht_rule_schema){3, ok, 1, clash};
	assert_int_equal(ht_rules_parse("version 1", 9, &s, &rs, NULL),
			 HT_ERR_INVALID);
	/* A caller's own schema: indices as given. */
	s = (struct ht_rule_schema){3, ok, 0, NULL};
	const char *text = "version 1\nrule a: _q.w - y.z_1 == x => block";
	assert_int_equal(ht_rules_parse(text, strlen(text), &s, &rs, NULL),
			 HT_OK);
	double num[3] = {2, 5, 7};
	struct ht_rule_input in = {num, NULL, NULL};
	struct ht_rule_outcome o;
	assert_int_equal(ht_rules_eval(rs, &in, NULL, 0, &o), HT_OK);
	assert_int_equal(o.fired_count, 1);
	assert_int_equal(ht_rules_eval(NULL, &in, NULL, 0, &o), HT_ERR_INVALID);
	assert_int_equal(ht_rules_eval(rs, &in, NULL, 1, &o), HT_ERR_INVALID);
	ht_rules_release(rs);
	enum ht_rule_type t;
	size_t i;
	assert_int_equal(ht_rule_schema_find(schema(), "nope", &t, &i),
			 HT_ERR_NOT_FOUND);
	assert_int_equal(ht_rule_schema_find(schema(), "device", &t, &i), HT_OK);
	assert_int_equal(t, HT_RULE_TYPE_STRING);
}

/* ---- random expressions against a reference evaluator ---- */

/*
 * A random boolean expression over four numeric features, printed with
 * every operator parenthesised, and evaluated here directly: -1 when a
 * division by zero or a non-finite comparison stops it (only on the path
 * actually taken, as the rule language's short-circuit says).
 */
struct gen {
	uint64_t seed;
	char *out;
	size_t len, size;
	const double *v;
};

static uint64_t rnd(struct gen *g)
{
	g->seed ^= g->seed << 13;
	g->seed ^= g->seed >> 7;
	g->seed ^= g->seed << 17;
	return g->seed;
}

static void put(struct gen *g, const char *s)
{
	size_t n = strlen(s);
	assert_true(g->len + n < g->size);
	memcpy(g->out + g->len, s, n + 1);
	g->len += n;
}

static const char *const feat_names[] = {"amount", "hour", "payer.count_1h",
					 "payer.sum_1h"};

/* A numeric expression; *err set on a division by zero. */
static double gen_num(struct gen *g, int depth, bool *err, bool live)
{
	uint64_t r = rnd(g) % (depth > 0 ? 9 : 4);
	char buf[32];
	if (r < 2) {
		int k = (int)(rnd(g) % 7) - 2;
		snprintf(buf, sizeof buf, "%d", k);
		put(g, k < 0 ? "(" : "");
		put(g, buf);
		put(g, k < 0 ? ")" : "");
		return k;
	}
	if (r < 4) {
		size_t i = rnd(g) % 4;
		put(g, feat_names[i]);
		return g->v[i];
	}
	static const char ops[] = "+-*/%";
	char op = ops[r - 4];
	put(g, "(");
	double a = gen_num(g, depth - 1, err, live);
	snprintf(buf, sizeof buf, " %c ", op);
	put(g, buf);
	double b = gen_num(g, depth - 1, err, live);
	put(g, ")");
	switch (op) {
	case '+': return a + b;
	case '-': return a - b;
	case '*': return a * b;
	case '/':
		if (b == 0 && live)
			*err = true;
		return b == 0 ? 0 : a / b;
	default:
		if (b == 0 && live)
			*err = true;
		return b == 0 ? 0 : fmod(a, b);
	}
}

/* 1, 0, or -1 for a runtime error; live: this part is evaluated. */
static int gen_bool(struct gen *g, int depth, bool live)
{
	uint64_t r = rnd(g) % (depth > 0 ? 6 : 2);
	if (r < 2) {
		static const char *const cmps[] = {" < ", " <= ", " > ", " >= ",
						   " == ", " != "};
		size_t c = rnd(g) % 6;
		bool err = false;
		put(g, "(");
		double a = gen_num(g, 2, &err, live);
		put(g, cmps[c]);
		double b = gen_num(g, 2, &err, live && !err);
		put(g, ")");
		if (err)
			return -1;
		bool v = c == 0 ? a < b : c == 1 ? a <= b : c == 2 ? a > b
		       : c == 3 ? a >= b : c == 4 ? a == b : a != b;
		return v;
	}
	if (r == 2) {
		put(g, "(not ");
		int v = gen_bool(g, depth - 1, live);
		put(g, ")");
		return v < 0 ? v : !v;
	}
	bool is_and = r == 3 || r == 5;
	put(g, "(");
	int a = gen_bool(g, depth - 1, live);
	put(g, is_and ? " and " : " or ");
	bool skip = a < 0 || (is_and ? a == 0 : a == 1);
	int b = gen_bool(g, depth - 1, live && !skip);
	put(g, ")");
	if (a < 0)
		return -1;
	if (skip)
		return a;
	return b;
}

static void test_random_expressions(void **state)
{
	(void)state;
	char text[16384];
	struct gen g = {.seed = 0x9e3779b97f4a7c15ull};
	struct feats f = {0};
	double v[4];
	int seen[3] = {0};
	for (int round = 0; round < 3000; round++) {
		for (size_t i = 0; i < 4; i++) {
			v[i] = (double)((int)(rnd(&g) % 7) - 2);
			set_num(&f, feat_names[i], v[i]);
		}
		g.v = v;
		g.out = text;
		g.size = sizeof text;
		g.len = 0;
		put(&g, "version 1\nrule r: ");
		int want = gen_bool(&g, 4, true);
		put(&g, " => block");
		struct ht_ruleset *rs = parse_ok(text);
		struct ht_rule_outcome o = eval(rs, &f, NULL, 0);
		int got = o.error_count ? -1 : (int)o.fired_count;
		if (got != want)
			fail_msg("%s\n v = %g %g %g %g: got %d, want %d", text,
				 v[0], v[1], v[2], v[3], got, want);
		seen[want + 1]++;
		ht_rules_release(rs);
	}
	/* every outcome was exercised */
	assert_true(seen[0] > 50 && seen[1] > 50 && seen[2] > 50);
}

/* ---- hot reload ---- */

/* Rule set number v: its version is v and its one rule scores v % 100,
 * so a reader can tell a torn or freed rule set from a whole one. */
static size_t ruleset_text(char *buf, size_t size, unsigned v)
{
	return (size_t)snprintf(buf, size,
				"version %u\nrule r: amount >= 0 => review score"
				" %u\nrule pad: channel in [\"a\", \"b\", \"c%u\"]"
				" => block\n", v, v % 100, v);
}

struct reader {
	struct ht_rules_holder *h;
	atomic_bool *stop;
	unsigned long evaluations;
	bool failed;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct feats f = {0};
	set_num(&f, "amount", 1);
	uint32_t last = 0;
	while (!atomic_load(r->stop)) {
		struct ht_ruleset *rs = ht_rules_holder_acquire(r->h);
		if (!rs) {
			r->failed = true;
			break;
		}
		uint32_t v = ht_rules_version(rs);
		struct ht_rule_input in = {f.num, f.str, NULL};
		struct ht_rule_outcome o;
		struct ht_rule_hit hits[2];
		if (ht_rules_eval(rs, &in, hits, 2, &o) != HT_OK ||
		    o.fired_count != 1 || o.score != v % 100 || v < last ||
		    strcmp(hits[0].rule->name, "r"))
			r->failed = true;
		last = v;
		ht_rules_release(rs);
		r->evaluations++;
	}
	return NULL;
}

static void test_holder_threads(void **state)
{
	(void)state;
	char text[256];
	struct ht_rules_holder *h;
	ruleset_text(text, sizeof text, 1);
	struct ht_ruleset *rs = parse_ok(text);
	assert_int_equal(ht_rules_holder_create(rs, &h), HT_OK);
	enum { READERS = 4, RELOADS = 2000 };
	atomic_bool stop = false;
	struct reader readers[READERS];
	pthread_t tid[READERS];
	for (int i = 0; i < READERS; i++) {
		readers[i] = (struct reader){h, &stop, 0, false};
		assert_int_equal(pthread_create(&tid[i], NULL, reader_main,
						&readers[i]), 0);
	}
	/* A reader keeps one rule set across many replaces. */
	struct ht_ruleset *kept = ht_rules_holder_acquire(h);
	assert_int_equal(ht_rules_version(kept), 1);
	for (unsigned v = 2; v <= RELOADS; v++) {
		size_t len = ruleset_text(text, sizeof text, v);
		assert_int_equal(ht_rules_holder_reload(h, text, len, schema(),
							NULL), HT_OK);
		if (v % 100 == 0) {
			/* a bad file leaves the rule set in force */
			struct ht_rules_diag d;
			assert_int_equal(ht_rules_holder_reload(h, "version 9\nrule"
								" x: nope => block", 31,
								schema(), &d),
					 HT_ERR_INVALID);
			struct ht_ruleset *cur = ht_rules_holder_acquire(h);
			assert_int_equal(ht_rules_version(cur), v);
			ht_rules_release(cur);
		}
	}
	atomic_store(&stop, true);
	unsigned long total = 0;
	for (int i = 0; i < READERS; i++) {
		assert_int_equal(pthread_join(tid[i], NULL), 0);
		assert_false(readers[i].failed);
		total += readers[i].evaluations;
	}
	assert_true(total > 0);
	assert_int_equal(ht_rules_version(kept), 1);
	struct feats f = {0};
	assert_int_equal(eval(kept, &f, NULL, 0).score, 1);
	ht_rules_release(kept);
	struct ht_ruleset *cur = ht_rules_holder_acquire(h);
	assert_int_equal(ht_rules_version(cur), RELOADS);
	/* The holder may go while a user still holds the rule set. */
	ht_rules_holder_destroy(h);
	assert_int_equal(ht_rules_version(cur), RELOADS);
	ht_rules_release(cur);

	/* An empty holder, and replacing with nothing. */
	assert_int_equal(ht_rules_holder_create(NULL, &h), HT_OK);
	assert_null(ht_rules_holder_acquire(h));
	ht_rules_holder_replace(h, parse_ok("version 5"));
	cur = ht_rules_holder_acquire(h);
	assert_int_equal(ht_rules_version(cur), 5);
	ht_rules_release(cur);
	ht_rules_holder_replace(h, NULL);
	assert_null(ht_rules_holder_acquire(h));
	ht_rules_holder_destroy(h);
	ht_rules_holder_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sample_file),
		cmocka_unit_test(test_empty_and_minimal),
		cmocka_unit_test(test_arithmetic_and_precedence),
		cmocka_unit_test(test_comparisons_swapped),
		cmocka_unit_test(test_strings_and_lists),
		cmocka_unit_test(test_big_list),
		cmocka_unit_test(test_short_circuit),
		cmocka_unit_test(test_runtime_errors_counted),
		cmocka_unit_test(test_strictest_action_and_cap),
		cmocka_unit_test(test_shadow_only),
		cmocka_unit_test(test_participant_scope),
		cmocka_unit_test(test_errors_syntax),
		cmocka_unit_test(test_errors_version),
		cmocka_unit_test(test_errors_types),
		cmocka_unit_test(test_errors_names),
		cmocka_unit_test(test_errors_numbers_and_limits),
		cmocka_unit_test(test_errors_big_inputs),
		cmocka_unit_test(test_errors_many),
		cmocka_unit_test(test_bad_arguments_and_schema),
		cmocka_unit_test(test_random_expressions),
		cmocka_unit_test(test_holder_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

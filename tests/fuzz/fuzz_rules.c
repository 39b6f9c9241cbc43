/*
 * fuzz_rules.c — rule files are outside input (operators write them, the
 * API will accept uploads): any bytes through ht_rules_parse with the
 * feature catalogue (ht_risk_rule_schema). Checked: the parser answers HT_OK, HT_ERR_INVALID or
 * HT_ERR_LIMIT and never aborts; a failure leaves no rule set and lists at
 * least one error, each at a line and column inside the input; a success
 * has no errors, its rules are described consistently, and evaluating it
 * on feature values taken from the input (NaN, infinities, zeros and
 * negatives included), with each of its participant sections, gives an
 * outcome within its bounds (action and score, hits within the caller's
 * array, fired and stopped rules within the rule count).
 *
 * Owner: risk. Corpus: tests/fuzz/corpus/fuzz_rules (valid files using
 * every construct, and files with each kind of error).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "huitong/risk.h"
#include "huitong/rules.h"

#define CHECK(e) ((e) ? (void)0 : abort())

#define NUM_MAX HT_FEATURE__COUNT
#define STR_MAX HT_FEATURE_STR__COUNT
#define HITS 8

/* Feature values a few bytes of input pick. */
static double pick_num(uint8_t b)
{
	static const double values[] = {0, 1, -1, 5, 600, 50000, 1e15, -1e300,
					1e300, 0.5};
	switch (b % 13) {
	case 10: return NAN;
	case 11: return INFINITY;
	case 12: return -INFINITY;
	default: return values[b % 13];
	}
}

static const char *pick_str(uint8_t b)
{
	static const char *const values[] = {"", "qr", "bankA", "d-9",
					     "6051", NULL};
	return values[b % 6];
}

/* Count lines of data[0..size) to bound an error's position. */
static unsigned lines_in(const uint8_t *data, size_t size)
{
	unsigned n = 1;
	for (size_t i = 0; i < size; i++)
		n += data[i] == '\n';
	return n;
}

static void check_rules(const struct ht_ruleset *rs)
{
	size_t n = ht_rules_count(rs), shadow = 0;
	for (size_t i = 0; i < n; i++) {
		const struct ht_rule_info *r;
		CHECK(ht_rules_rule(rs, i, &r) == HT_OK);
		CHECK(r->name && r->reason && r->name[0] && r->reason[0]);
		CHECK(r->action <= HT_RULE_BLOCK);
		CHECK(r->score <= HT_RULES_SCORE_MAX);
		shadow += r->shadow;
	}
	CHECK(shadow == ht_rules_shadow_count(rs));
	CHECK(n <= HT_RULES_RULES_MAX);
}

static void eval_once(const struct ht_ruleset *rs,
		      const struct ht_rule_input *in)
{
	struct ht_rule_hit hits[HITS];
	struct ht_rule_outcome o;
	CHECK(ht_rules_eval(rs, in, hits, HITS, &o) == HT_OK);
	CHECK(o.action <= o.shadow_action && o.shadow_action <= HT_RULE_BLOCK);
	CHECK(o.score <= o.shadow_score &&
	      o.shadow_score <= HT_RULES_SCORE_MAX);
	CHECK(o.hit_count <= HITS && o.hit_count <= o.fired_count);
	CHECK(o.fired_count + o.error_count <= ht_rules_count(rs));
	for (size_t i = 0; i < o.hit_count; i++) {
		const struct ht_rule_info *r;
		CHECK(ht_rules_rule(rs, hits[i].index, &r) == HT_OK);
		CHECK(r == hits[i].rule);
		CHECK(!r->participant ||
		      (in->participant && !strcmp(r->participant,
						  in->participant)));
	}
}

static void evaluate(const struct ht_ruleset *rs, const uint8_t *data,
		     size_t size)
{
	const struct ht_rule_schema *s = ht_risk_rule_schema();
	CHECK(s->num_count <= NUM_MAX && s->str_count <= STR_MAX);
	double num[NUM_MAX];
	const char *str[STR_MAX];
	for (size_t round = 0; round < 4; round++) {
		for (size_t i = 0; i < NUM_MAX; i++)
			num[i] = pick_num(size ? data[(i * 7 + round * 31) % size]
					       : 0);
		for (size_t i = 0; i < STR_MAX; i++)
			str[i] = pick_str(size ? data[(i * 5 + round) % size] : 0);
		struct ht_rule_input in = {num, str, NULL};
		eval_once(rs, &in);
		/* every participant section, at most a few */
		const char *last = NULL;
		for (size_t i = 0, seen = 0; i < ht_rules_count(rs) && seen < 4;
		     i++) {
			const struct ht_rule_info *r;
			CHECK(ht_rules_rule(rs, i, &r) == HT_OK);
			if (!r->participant || r->participant == last)
				continue;
			last = r->participant;
			in.participant = r->participant;
			eval_once(rs, &in);
			seen++;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ht_ruleset *rs = (struct ht_ruleset *)1;
	struct ht_rules_diag d;
	enum ht_err err = ht_rules_parse((const char *)data, size,
					 ht_risk_rule_schema(), &rs, &d);
	CHECK(err == HT_OK || err == HT_ERR_INVALID || err == HT_ERR_LIMIT);
	CHECK(d.count <= HT_RULES_DIAG_MAX);
	if (err) {
		CHECK(rs == NULL);
		CHECK(d.count > 0);
		unsigned lines = lines_in(data, size);
		for (size_t i = 0; i < d.count; i++) {
			CHECK(d.errors[i].line >= 1 && d.errors[i].line <= lines);
			CHECK(d.errors[i].column >= 1);
			CHECK(d.errors[i].column <= size + 1);
			CHECK(memchr(d.errors[i].message, '\0',
				     sizeof d.errors[i].message));
		}
		return 0;
	}
	CHECK(rs != NULL && d.count == 0);
	check_rules(rs);
	evaluate(rs, data, size);
	ht_rules_release(rs);
	return 0;
}

/*
 * test_riskeval.c — ht_eval_compute: average precision as sklearn defines
 * it (ties as one step), recall and precision at the decisions, per-type
 * populations, and refusal of bad items.
 *
 * Owner: risk.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "huitong/riskeval.h"

#define F(s, t, d) {(float)(s), (t) != HT_FRAUD_NONE, (t), (d)}
#define A HT_DECISION_ALLOW
#define R HT_DECISION_REVIEW
#define B HT_DECISION_BLOCK
#define N HT_FRAUD_NONE
#define ATO HT_FRAUD_ACCOUNT_TAKEOVER
#define CT HT_FRAUD_CARD_TESTING

static void near(double got, double want)
{
	if (fabs(got - want) > 1e-9)
		fail_msg("got %.12f, want %.12f", got, want);
}

static void test_average_precision(void **state)
{
	(void)state;
	/* F L F L by descending score: AP = .5 * 1 + .5 * 2/3 */
	struct ht_eval_item it[] = {F(0.6, N, A), F(0.9, ATO, B), F(0.7, CT, R),
				    F(0.8, N, B)};
	struct ht_eval_report r;
	assert_int_equal(ht_eval_compute(it, 4, &r), HT_OK);
	near(r.all.auc_pr, 0.5 + 0.5 * 2.0 / 3.0);
	assert_int_equal(r.all.positives, 2);
	near(r.all.recall_block, 0.5);
	near(r.all.recall_flagged, 1.0);
	near(r.precision_block, 0.5);
	near(r.precision_flagged, 2.0 / 3.0);
	near(r.legit_blocked, 0.5);
	near(r.legit_reviewed, 0.0);
	assert_int_equal(r.legit, 2);
	/* per type: ATO first of its population: AP 1; card testing below
	 * one legit: AP 1/2 */
	near(r.type[ATO].auc_pr, 1.0);
	near(r.type[CT].auc_pr, 0.5);
	assert_true(isnan(r.type[HT_FRAUD_MULE].auc_pr));
	assert_int_equal(r.type[HT_FRAUD_MULE].positives, 0);
}

static void test_ties_are_one_step(void **state)
{
	(void)state;
	struct ht_eval_item it[] = {F(0.9, ATO, A), F(0.9, N, A), F(0.1, ATO, A)};
	struct ht_eval_report r;
	assert_int_equal(ht_eval_compute(it, 3, &r), HT_OK);
	near(r.all.auc_pr, 0.5 * 0.5 + 0.5 * 2.0 / 3.0);
	assert_true(isnan(r.precision_block)); /* nothing blocked */
}

static void test_perfect_and_empty(void **state)
{
	(void)state;
	struct ht_eval_item it[] = {F(1, CT, B), F(0.99, CT, B), F(0, N, A)};
	struct ht_eval_report r;
	assert_int_equal(ht_eval_compute(it, 3, &r), HT_OK);
	near(r.all.auc_pr, 1.0);
	near(r.legit_blocked, 0.0);
	assert_int_equal(ht_eval_compute(NULL, 0, &r), HT_OK);
	assert_true(isnan(r.all.auc_pr));
	assert_int_equal(r.payments, 0);
}

static void test_bad_items(void **state)
{
	(void)state;
	struct ht_eval_report r;
	struct ht_eval_item bad[] = {
		{1.5f, 0, N, A}, {-0.1f, 0, N, A}, {NAN, 0, N, A},
		{0.5f, 1, N, A}, {0.5f, 0, ATO, A}, {0.5f, 1, HT_FRAUD__COUNT, A},
		{0.5f, 0, N, HT_DECISION__COUNT}};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(ht_eval_compute(&bad[i], 1, &r), HT_ERR_INVALID);
	assert_int_equal(ht_eval_compute(NULL, 1, &r), HT_ERR_INVALID);
}

static void test_decision_names(void **state)
{
	(void)state;
	enum ht_decision d;
	for (unsigned i = 0; i < HT_DECISION__COUNT; i++) {
		const char *s = ht_decision_name(i);
		assert_non_null(s);
		assert_int_equal(ht_decision_parse(s, strlen(s), &d), HT_OK);
		assert_int_equal(d, i);
	}
	assert_null(ht_decision_name(HT_DECISION__COUNT));
	assert_int_equal(ht_decision_parse("blocked", 7, &d), HT_ERR_INVALID);
	assert_int_equal(ht_decision_parse("bloc", 4, &d), HT_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_average_precision),
		cmocka_unit_test(test_ties_are_one_step),
		cmocka_unit_test(test_perfect_and_empty),
		cmocka_unit_test(test_bad_items),
		cmocka_unit_test(test_decision_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

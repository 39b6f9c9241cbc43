/*
 * test_liquidity.c — positions and net debit caps (liquidity.h): members
 * set up with their two owned accounts (idempotent); funding and defunding
 * through the ledger (a defund never draws on the cap; an exact retry
 * answers exists); the cap checked against debits posted and pending
 * minus credits; suspension in force at the next check; everything
 * durable across a reopen of hub and switch.db.
 *
 * Owner: switch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "huitong/ledger.h"
#include "huitong/liquidity.h"

static char dir[64];

static void open_both(struct ht_hub **hub, struct ht_liq **l)
{
	char err[256];
	assert_int_equal(ht_hub_open(dir, &(struct ht_hub_open_options){0}, hub),
			 HT_OK);
	assert_int_equal(ht_liq_open(dir, *hub, l, err, sizeof err), HT_OK);
}

static void commit(struct ht_hub *hub)
{
	struct ht_sth head;
	assert_int_equal(ht_hub_commit(hub, &head), HT_OK);
}

/* A payment A -> B prepared as the switch will: pending, position to
 * position. */
static uint16_t prepare(struct ht_hub *hub, ht_u128 id, uint64_t amount)
{
	struct ht_transfer t = {
		.id = id, .amount = amount, .ledger = 156, .code = 9201,
		.flags = HT_TRANSFER_PENDING,
		.debit_account_id = ht_liq_account_id("bankA", 156, HT_LIQ_POSITION),
		.credit_account_id = ht_liq_account_id("bankB", 156, HT_LIQ_POSITION)};
	uint16_t r = 0xffff;
	assert_int_equal(ht_hub_create_transfers(hub, &t, 1, &r), HT_OK);
	return r;
}

static void test_liquidity(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/ht-liq-XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(ht_hub_init(dir, &(struct ht_hub_init_options){0}), HT_OK);
	struct ht_hub *hub;
	struct ht_liq *l;
	open_both(&hub, &l);
	/* ids: tagged, distinct per kind, currency and participant */
	ht_u128 pa = ht_liq_account_id("bankA", 156, HT_LIQ_POSITION);
	assert_true(pa != ht_liq_account_id("bankA", 156, HT_LIQ_SETTLEMENT));
	assert_true(pa != ht_liq_account_id("bankA", 840, HT_LIQ_POSITION));
	assert_true(pa != ht_liq_account_id("bankB", 156, HT_LIQ_POSITION));
	assert_int_equal((uint64_t)(pa >> 96), 0x48545357u);
	/* set up, twice: idempotent */
	assert_int_equal(ht_liq_setup(l, "bankA", 156), HT_OK);
	assert_int_equal(ht_liq_setup(l, "bankB", 156), HT_OK);
	assert_int_equal(ht_liq_setup(l, "bankA", 156), HT_OK);
	assert_int_equal(ht_liq_setup(l, "bank A", 156), HT_ERR_INVALID);
	assert_int_equal(ht_liq_setup(l, "bankA", 1000), HT_ERR_INVALID);
	commit(hub);
	assert_string_equal(ht_hub_account_owner(hub, pa), "bankA");
	/* without a cap nothing may be prepared */
	assert_int_equal(ht_liq_check(l, "bankA", 156, 1), HT_LIQ_CAP_EXCEEDED);
	assert_int_equal(ht_liq_check(l, "bankC", 156, 1), HT_LIQ_NOT_MEMBER);
	assert_int_equal(ht_liq_set_cap(l, "bankC", 156, 5), HT_ERR_NOT_FOUND);
	assert_int_equal(ht_liq_set_cap(l, "bankA", 156, 10000), HT_OK);
	assert_int_equal(ht_liq_check(l, "bankA", 156, 10000), HT_LIQ_OK);
	assert_int_equal(ht_liq_check(l, "bankA", 156, 10001), HT_LIQ_CAP_EXCEEDED);
	/* prepared payments count against the cap */
	assert_int_equal(prepare(hub, 1, 6000), HT_R_OK);
	struct ht_liq_position p;
	assert_int_equal(ht_liq_position(l, "bankA", 156, &p), HT_OK);
	assert_int_equal(p.net_debit, 6000);
	assert_int_equal(p.reserved, 6000);
	assert_int_equal(p.headroom, 4000);
	assert_int_equal(ht_liq_check(l, "bankA", 156, 4001), HT_LIQ_CAP_EXCEEDED);
	/* funding raises the headroom; B received nothing posted yet */
	uint16_t r;
	assert_int_equal(ht_liq_fund(l, "bankA", 156, 100, 3000, false, &r), HT_OK);
	assert_int_equal(r, HT_R_OK);
	assert_int_equal(ht_liq_check(l, "bankA", 156, 7000), HT_LIQ_OK);
	/* a defund may not draw on the cap: A is a net debtor */
	assert_int_equal(ht_liq_fund(l, "bankA", 156, 101, 1, true, &r), HT_OK);
	assert_int_equal(r, HT_R_EXCEEDS_CREDITS);
	/* B funds and takes part of it back; the retry answers exists */
	assert_int_equal(ht_liq_fund(l, "bankB", 156, 200, 500, false, &r), HT_OK);
	assert_int_equal(ht_liq_fund(l, "bankB", 156, 201, 400, true, &r), HT_OK);
	assert_int_equal(r, HT_R_OK);
	assert_int_equal(ht_liq_fund(l, "bankB", 156, 201, 400, true, &r), HT_OK);
	assert_int_equal(r, HT_R_EXISTS);
	assert_int_equal(ht_liq_fund(l, "bankB", 156, 202, 101, true, &r), HT_OK);
	assert_int_equal(r, HT_R_EXCEEDS_CREDITS);
	assert_int_equal(ht_liq_position(l, "bankB", 156, &p), HT_OK);
	assert_int_equal(p.net_debit, -100);
	/* suspension: in force at once, for every currency */
	assert_int_equal(ht_liq_set_suspended(l, "bankA", true), HT_OK);
	assert_int_equal(ht_liq_check(l, "bankA", 156, 1), HT_LIQ_SUSPENDED);
	assert_int_equal(ht_liq_set_suspended(l, "bankZ", true), HT_ERR_NOT_FOUND);
	commit(hub);
	ht_liq_close(l);
	ht_hub_close(hub);
	/* durable */
	open_both(&hub, &l);
	assert_int_equal(ht_liq_position(l, "bankA", 156, &p), HT_OK);
	assert_int_equal(p.net_debit, 3000);
	assert_int_equal(p.cap, 10000);
	assert_true(p.suspended);
	assert_int_equal(ht_liq_set_suspended(l, "bankA", false), HT_OK);
	assert_int_equal(ht_liq_check(l, "bankA", 156, 7000), HT_LIQ_OK);
	assert_int_equal(ht_liq_check(l, "bankA", 156, 7001), HT_LIQ_CAP_EXCEEDED);
	assert_string_equal(ht_liq_verdict_name(HT_LIQ_CAP_EXCEEDED),
			    "net_debit_cap_exceeded");
	ht_liq_close(l);
	ht_hub_close(hub);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_liquidity)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

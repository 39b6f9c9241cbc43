/*
 * test_ledger.c — the ledger engine through its public API with a test
 * clock: every result code (a coverage table checked by the last test),
 * linked chains and their undo, two-phase transfers and expiry, balancing,
 * limits, closing, overflow, burned ids, timestamps, changes, replay
 * equivalence against live application and an independent model,
 * failure injection, and the full invariant check.
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
#include "ledger/ledger_internal.h" /* failure injection only */

#define T0 1700000000000000000ull /* 2023-11-14, ns */
#define S 1000000000ull

/* ---- fixture ---------------------------------------------------------- */

struct test_clock {
	uint64_t now;
};

static uint64_t test_now(void *ctx)
{
	return ((struct test_clock *)ctx)->now;
}

struct fx {
	struct test_clock clock;
	struct ht_ledger *l;
};

static struct ht_ledger *new_ledger(struct test_clock *c)
{
	struct ht_clock clock = {test_now, c};
	struct ht_ledger *l = NULL;
	assert_int_equal(ht_ledger_create(&clock, &l), HT_OK);
	assert_non_null(l);
	return l;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->clock.now = T0;
	f->l = new_ledger(&f->clock);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	assert_int_equal(ht_ledger_check(f->l), HT_OK);
	ht_ledger_destroy(f->l);
	free(f);
	return 0;
}

/* ---- result coverage -------------------------------------------------- */

static bool seen[HT_R__MAX];

static void note(const uint16_t *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		assert_true(r[i] < HT_R__MAX);
		assert_non_null(ht_result_name(r[i]));
		seen[r[i]] = true;
	}
}

static void expect_code(uint16_t got, uint16_t want, int line)
{
	if (got != want)
		fail_msg("line %d: got %s, want %s", line,
			 ht_result_name(got), ht_result_name(want));
}
#define EXPECT(got, want) expect_code((got), (want), __LINE__)

static void expect_codes(const uint16_t *got, const uint16_t *want, size_t n,
			 int line)
{
	for (size_t i = 0; i < n; i++)
		if (got[i] != want[i])
			fail_msg("line %d: event %zu: got %s, want %s", line, i,
				 ht_result_name(got[i]),
				 ht_result_name(want[i]));
}
#define EXPECT_ALL(got, ...)                                              \
	do {                                                                \
		const uint16_t want_[] = {__VA_ARGS__};                     \
		expect_codes((got), want_, sizeof want_ / sizeof want_[0], \
			     __LINE__);                                     \
	} while (0)

/* ---- builders --------------------------------------------------------- */

static struct ht_account acct(ht_u128 id, uint16_t flags)
{
	struct ht_account a;
	memset(&a, 0, sizeof a);
	a.id = id;
	a.ledger = 156;
	a.code = 10;
	a.flags = flags;
	return a;
}

static struct ht_transfer xfer(ht_u128 id, ht_u128 dr, ht_u128 cr,
			       uint64_t amount)
{
	struct ht_transfer t;
	memset(&t, 0, sizeof t);
	t.id = id;
	t.debit_account_id = dr;
	t.credit_account_id = cr;
	t.amount = amount;
	t.ledger = 156;
	t.code = 1;
	return t;
}

static struct ht_transfer pend(ht_u128 id, ht_u128 dr, ht_u128 cr,
			       uint64_t amount, uint32_t timeout_s)
{
	struct ht_transfer t = xfer(id, dr, cr, amount);
	t.flags = HT_TRANSFER_PENDING;
	t.timeout_s = timeout_s;
	return t;
}

static struct ht_transfer resolve(ht_u128 id, ht_u128 pending_id,
				  uint16_t flag, uint64_t amount)
{
	struct ht_transfer t;
	memset(&t, 0, sizeof t);
	t.id = id;
	t.pending_id = pending_id;
	t.flags = flag;
	t.amount = amount;
	return t;
}

static struct ht_transfer with_flags(struct ht_transfer t, uint16_t flags)
{
	t.flags |= flags;
	return t;
}

static struct ht_account with_ud(struct ht_account a, const char *ud)
{
	a.user_data_len = (uint8_t)strlen(ud);
	memcpy(a.user_data, ud, a.user_data_len);
	return a;
}

static struct ht_transfer xfer_ud(struct ht_transfer t, const char *ud)
{
	t.user_data_len = (uint8_t)strlen(ud);
	memcpy(t.user_data, ud, t.user_data_len);
	return t;
}

/* ---- calls ------------------------------------------------------------ */

static void accounts_n(struct ht_ledger *l, const struct ht_account *a,
		       size_t n, uint16_t *r)
{
	assert_int_equal(ht_ledger_create_accounts(l, a, n, r), HT_OK);
	note(r, n);
}

static uint16_t account1(struct ht_ledger *l, struct ht_account a)
{
	uint16_t r;
	accounts_n(l, &a, 1, &r);
	return r;
}

static void transfers_n(struct ht_ledger *l, const struct ht_transfer *t,
			size_t n, uint16_t *r)
{
	assert_int_equal(ht_ledger_create_transfers(l, t, n, r), HT_OK);
	note(r, n);
	assert_int_equal(ht_ledger_check(l), HT_OK);
}

static uint16_t transfer1(struct ht_ledger *l, struct ht_transfer t)
{
	uint16_t r;
	transfers_n(l, &t, 1, &r);
	return r;
}

/* Accounts 1..n on ledger 156 with the given flags for each. */
static void make_accounts(struct ht_ledger *l, size_t n, const uint16_t *flags)
{
	for (size_t i = 0; i < n; i++)
		EXPECT(account1(l, acct(i + 1, flags ? flags[i] : 0)), HT_R_OK);
}

static const struct ht_account *A(struct ht_ledger *l, ht_u128 id)
{
	const struct ht_account *a = ht_ledger_account_get(l, id);
	assert_non_null(a);
	return a;
}

static void expect_balance(struct ht_ledger *l, ht_u128 id, uint64_t dp,
			   uint64_t dpo, uint64_t cp, uint64_t cpo, int line)
{
	const struct ht_account *a = A(l, id);
	if (a->debits_pending != dp || a->debits_posted != dpo ||
	    a->credits_pending != cp || a->credits_posted != cpo)
		fail_msg("line %d: account %llu: %llu/%llu/%llu/%llu, want "
			 "%llu/%llu/%llu/%llu",
			 line, (unsigned long long)id,
			 (unsigned long long)a->debits_pending,
			 (unsigned long long)a->debits_posted,
			 (unsigned long long)a->credits_pending,
			 (unsigned long long)a->credits_posted,
			 (unsigned long long)dp, (unsigned long long)dpo,
			 (unsigned long long)cp, (unsigned long long)cpo);
}
#define BAL(l, id, dp, dpo, cp, cpo) \
	expect_balance((l), (id), (dp), (dpo), (cp), (cpo), __LINE__)

static struct ht_ledger_changes changes(struct ht_ledger *l)
{
	struct ht_ledger_changes c;
	ht_ledger_changes(l, &c);
	return c;
}

/* ---- accounts --------------------------------------------------------- */

static void test_accounts(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	EXPECT(account1(l, with_ud(acct(1, 0), "alice")), HT_R_OK);
	const struct ht_account *a = A(l, 1);
	assert_int_equal(a->ledger, 156);
	assert_int_equal(a->code, 10);
	assert_int_equal(a->timestamp, T0);
	assert_int_equal(a->user_data_len, 5);
	assert_memory_equal(a->user_data, "alice", 5);
	BAL(l, 1, 0, 0, 0, 0);

	/* Idempotency, first differing field in order flags, user_data,
	 * ledger, code. */
	EXPECT(account1(l, with_ud(acct(1, 0), "alice")), HT_R_EXISTS);
	struct ht_account x = with_ud(acct(1, HT_ACCOUNT_HISTORY), "bob");
	x.ledger = 157;
	EXPECT(account1(l, x), HT_R_EXISTS_WITH_DIFFERENT_FLAGS);
	x.flags = 0;
	EXPECT(account1(l, x), HT_R_EXISTS_WITH_DIFFERENT_USER_DATA);
	x = with_ud(acct(1, 0), "alicE");
	EXPECT(account1(l, x), HT_R_EXISTS_WITH_DIFFERENT_USER_DATA);
	x = with_ud(acct(1, 0), "alice");
	x.ledger = 157;
	x.code = 11;
	EXPECT(account1(l, x), HT_R_EXISTS_WITH_DIFFERENT_LEDGER);
	x.ledger = 156;
	EXPECT(account1(l, x), HT_R_EXISTS_WITH_DIFFERENT_CODE);
	/* Input balances and timestamp are ignored. */
	x = with_ud(acct(1, 0), "alice");
	x.debits_posted = 5;
	x.timestamp = 77;
	EXPECT(account1(l, x), HT_R_EXISTS);
	/* linked is ignored when comparing flags (an `exists` breaks the
	 * chain like any failure). */
	struct ht_account two[2] = {with_ud(acct(1, HT_ACCOUNT_LINKED), "alice"),
				    acct(2, 0)};
	uint16_t r[2];
	accounts_n(l, two, 2, r);
	EXPECT_ALL(r, HT_R_EXISTS, HT_R_LINKED_EVENT_FAILED);
	assert_null(ht_ledger_account_get(l, 2));

	/* Field validation, in order. */
	x = acct(0, 0);
	x.ledger = 0;
	EXPECT(account1(l, x), HT_R_ID_MUST_NOT_BE_ZERO);
	EXPECT(account1(l, acct(HT_U128_MAX, 0)), HT_R_ID_MUST_NOT_BE_INT_MAX);
	x = acct(3, HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS |
			    HT_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS);
	x.ledger = 0;
	EXPECT(account1(l, x), HT_R_FLAGS_ARE_MUTUALLY_EXCLUSIVE);
	x = acct(3, 0);
	x.ledger = 0;
	x.code = 0;
	EXPECT(account1(l, x), HT_R_LEDGER_MUST_NOT_BE_ZERO);
	x.ledger = 1;
	EXPECT(account1(l, x), HT_R_CODE_MUST_NOT_BE_ZERO);
	/* Failed account creates do not burn the id. */
	EXPECT(account1(l, acct(3, HT_ACCOUNT_CLOSED)), HT_R_OK);
	assert_int_equal(A(l, 3)->flags, HT_ACCOUNT_CLOSED);
	assert_int_equal(ht_ledger_account_count(l), 2);
	assert_int_equal(ht_ledger_last_timestamp(l), A(l, 3)->timestamp);
	assert_true(A(l, 3)->timestamp > A(l, 1)->timestamp);
}

static int count_until_3(void *ctx, const struct ht_account *a)
{
	ht_u128 *ids = ctx;
	ids[(size_t)ids[0] + 1] = a->id;
	ids[0]++;
	return a->id == 3;
}

static void test_accounts_each_in_creation_order(void **state)
{
	struct fx *f = *state;
	const ht_u128 order[] = {5, 3, 9, 1};
	for (size_t i = 0; i < 4; i++)
		EXPECT(account1(f->l, acct(order[i], 0)), HT_R_OK);
	ht_u128 ids[8] = {0};
	ht_ledger_accounts_each(f->l, count_until_3, ids);
	assert_true(ids[0] == 2);
	assert_true(ids[1] == 5 && ids[2] == 3);
}

/* ---- transfers: validation --------------------------------------------- */

static void test_transfer_validation(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	make_accounts(l, 2, NULL);
	struct ht_transfer t;
	ht_u128 id = 100;

	t = xfer(0, 0, 2, 0);
	EXPECT(transfer1(l, t), HT_R_ID_MUST_NOT_BE_ZERO);
	t = xfer(HT_U128_MAX, 1, 2, 10);
	EXPECT(transfer1(l, t), HT_R_ID_MUST_NOT_BE_INT_MAX);
	static const uint16_t exclusive[] = {
		HT_TRANSFER_PENDING | HT_TRANSFER_POST_PENDING,
		HT_TRANSFER_PENDING | HT_TRANSFER_VOID_PENDING,
		HT_TRANSFER_POST_PENDING | HT_TRANSFER_VOID_PENDING,
		HT_TRANSFER_BALANCING_DEBIT | HT_TRANSFER_POST_PENDING,
		HT_TRANSFER_BALANCING_CREDIT | HT_TRANSFER_VOID_PENDING,
		HT_TRANSFER_CLOSING_DEBIT | HT_TRANSFER_POST_PENDING,
		HT_TRANSFER_CLOSING_CREDIT | HT_TRANSFER_VOID_PENDING,
	};
	for (size_t i = 0; i < sizeof exclusive / sizeof exclusive[0]; i++) {
		t = with_flags(xfer(id++, 0, 0, 0), exclusive[i]);
		EXPECT(transfer1(l, t), HT_R_FLAGS_ARE_MUTUALLY_EXCLUSIVE);
	}
	t = with_flags(xfer(id++, 0, 2, 10), HT_TRANSFER_CLOSING_DEBIT);
	EXPECT(transfer1(l, t), HT_R_CLOSING_TRANSFER_MUST_BE_PENDING);
	t = with_flags(xfer(id++, 1, 2, 10), HT_TRANSFER_CLOSING_CREDIT);
	EXPECT(transfer1(l, t), HT_R_CLOSING_TRANSFER_MUST_BE_PENDING);

	/* Ordinary and pending: each check, later fields also wrong. */
	t = xfer(id++, 0, 0, 0);
	EXPECT(transfer1(l, t), HT_R_DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO);
	t = xfer(id++, HT_U128_MAX, 0, 0);
	EXPECT(transfer1(l, t), HT_R_DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX);
	t = xfer(id++, 1, 0, 0);
	EXPECT(transfer1(l, t), HT_R_CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO);
	t = xfer(id++, 1, HT_U128_MAX, 0);
	EXPECT(transfer1(l, t), HT_R_CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX);
	t = xfer(id++, 1, 1, 0);
	t.pending_id = 5;
	EXPECT(transfer1(l, t), HT_R_ACCOUNTS_MUST_BE_DIFFERENT);
	t = xfer(id++, 1, 2, 0);
	t.pending_id = 5;
	t.timeout_s = 1;
	EXPECT(transfer1(l, t), HT_R_PENDING_ID_MUST_BE_ZERO);
	t = xfer(id++, 1, 2, 0);
	t.timeout_s = 1;
	EXPECT(transfer1(l, t), HT_R_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER);
	t = xfer(id++, 1, 2, 0);
	t.ledger = 0;
	EXPECT(transfer1(l, t), HT_R_AMOUNT_MUST_NOT_BE_ZERO);
	t = pend(id++, 1, 2, 0, 5); /* a pending transfer may time out */
	EXPECT(transfer1(l, t), HT_R_AMOUNT_MUST_NOT_BE_ZERO);
	t = xfer(id++, 1, 2, 10);
	t.ledger = 0;
	t.code = 0;
	EXPECT(transfer1(l, t), HT_R_LEDGER_MUST_NOT_BE_ZERO);
	t = xfer(id++, 1, 2, 10);
	t.code = 0;
	EXPECT(transfer1(l, t), HT_R_CODE_MUST_NOT_BE_ZERO);

}

static void test_transfer_validation_post_void(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	make_accounts(l, 2, NULL);
	struct ht_transfer t;
	ht_u128 id = 200;

	/* Post and void. */
	t = resolve(id++, 0, HT_TRANSFER_POST_PENDING, 0);
	t.timeout_s = 3;
	EXPECT(transfer1(l, t), HT_R_PENDING_ID_MUST_NOT_BE_ZERO);
	t = resolve(id++, HT_U128_MAX, HT_TRANSFER_VOID_PENDING, 0);
	EXPECT(transfer1(l, t), HT_R_PENDING_ID_MUST_NOT_BE_INT_MAX);
	t = resolve(id, id, HT_TRANSFER_POST_PENDING, 0);
	id++;
	EXPECT(transfer1(l, t), HT_R_PENDING_ID_MUST_BE_DIFFERENT);
	t = resolve(id++, 7, HT_TRANSFER_VOID_PENDING, 0);
	t.timeout_s = 3;
	EXPECT(transfer1(l, t), HT_R_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER);

	/* Every failure above burned its id (ids 200..id-1). */
	for (ht_u128 k = 200; k < id; k++)
		EXPECT(transfer1(l, xfer(k, 1, 2, 1)), HT_R_ID_ALREADY_FAILED);
	assert_int_equal(ht_ledger_transfer_count(l), 0);
	BAL(l, 1, 0, 0, 0, 0);
}

/* ---- transfers: accounts, exists --------------------------------------- */

static void test_transfer_accounts(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	make_accounts(l, 2, NULL);
	struct ht_account b = acct(3, 0), c = acct(4, 0);
	b.ledger = c.ledger = 157;
	EXPECT(account1(l, b), HT_R_OK);
	EXPECT(account1(l, c), HT_R_OK);

	EXPECT(transfer1(l, xfer_ud(xfer(10, 1, 2, 100), "rent")), HT_R_OK);
	BAL(l, 1, 0, 100, 0, 0);
	BAL(l, 2, 0, 0, 0, 100);
	const struct ht_transfer *t = ht_ledger_transfer_get(l, 10);
	assert_non_null(t);
	assert_true(t->debit_account_id == 1 && t->credit_account_id == 2);
	assert_int_equal(t->amount, 100);
	assert_int_equal(t->user_data_len, 4);
	assert_int_equal(t->timestamp, ht_ledger_last_timestamp(l));
	assert_int_equal(ht_ledger_pending_state(l, 10), HT_PENDING_NONE);

	EXPECT(transfer1(l, xfer(11, 99, 98, 1)), HT_R_DEBIT_ACCOUNT_NOT_FOUND);
	EXPECT(transfer1(l, xfer(12, 1, 98, 1)), HT_R_CREDIT_ACCOUNT_NOT_FOUND);
	EXPECT(transfer1(l, xfer(13, 1, 3, 1)),
	       HT_R_ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER);
	EXPECT(transfer1(l, xfer(14, 3, 4, 1)),
	       HT_R_TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS);
	struct ht_transfer ok = xfer(15, 3, 4, 1);
	ok.ledger = 157;
	EXPECT(transfer1(l, ok), HT_R_OK);
	assert_int_equal(ht_ledger_transfer_count(l), 2);
	assert_null(ht_ledger_transfer_get(l, 11));
}

static void test_transfer_exists(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	make_accounts(l, 3, NULL);
	struct ht_transfer t = xfer_ud(xfer(10, 1, 2, 100), "abc");
	EXPECT(transfer1(l, t), HT_R_OK);
	uint64_t last = ht_ledger_last_timestamp(l);
	EXPECT(transfer1(l, t), HT_R_EXISTS);
	struct ht_transfer x = t;
	x.timestamp = 12345; /* ignored on input */
	EXPECT(transfer1(l, x), HT_R_EXISTS);

	x = with_flags(t, HT_TRANSFER_PENDING);
	x.amount = 7;
	EXPECT(transfer1(l, x), HT_R_EXISTS_WITH_DIFFERENT_FLAGS);
	x = t;
	x.debit_account_id = 3;
	x.credit_account_id = 3;
	x.debit_account_id = 2;
	EXPECT(transfer1(l, x), HT_R_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID);
	x = t;
	x.credit_account_id = 3;
	x.amount = 1;
	EXPECT(transfer1(l, x), HT_R_EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID);
	x = t;
	x.amount = 1;
	x.code = 2;
	EXPECT(transfer1(l, x), HT_R_EXISTS_WITH_DIFFERENT_AMOUNT);
	x = t;
	x.ledger = 157;
	x.code = 2;
	EXPECT(transfer1(l, x), HT_R_EXISTS_WITH_DIFFERENT_LEDGER);
	x = xfer_ud(t, "abd");
	x.code = 2;
	EXPECT(transfer1(l, x), HT_R_EXISTS_WITH_DIFFERENT_CODE);
	EXPECT(transfer1(l, xfer_ud(t, "abd")),
	       HT_R_EXISTS_WITH_DIFFERENT_USER_DATA);
	EXPECT(transfer1(l, xfer_ud(t, "ab")),
	       HT_R_EXISTS_WITH_DIFFERENT_USER_DATA);
	/* Nothing above changed anything, not even the clock of the engine. */
	assert_int_equal(ht_ledger_last_timestamp(l), last);
	BAL(l, 1, 0, 100, 0, 0);

}

static void test_transfer_exists_post(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	struct ht_transfer x;
	make_accounts(l, 3, NULL);

	/* timeout and pending_id are only settable on pending/post/void. */
	EXPECT(transfer1(l, pend(20, 1, 2, 50, 60)), HT_R_OK);
	EXPECT(transfer1(l, pend(20, 1, 2, 50, 60)), HT_R_EXISTS);
	EXPECT(transfer1(l, pend(20, 1, 2, 50, 61)),
	       HT_R_EXISTS_WITH_DIFFERENT_TIMEOUT);
	EXPECT(transfer1(l, pend(21, 1, 2, 50, 0)), HT_R_OK);
	struct ht_transfer post = resolve(30, 20, HT_TRANSFER_POST_PENDING, 0);
	EXPECT(transfer1(l, post), HT_R_OK);
	x = post;
	x.pending_id = 21;
	EXPECT(transfer1(l, x), HT_R_EXISTS_WITH_DIFFERENT_PENDING_ID);
	/* 0 means "inherited" on a post: it matches what was stored. */
	EXPECT(transfer1(l, post), HT_R_EXISTS);
	x = post;
	x.debit_account_id = 1;
	x.credit_account_id = 2;
	x.ledger = 156;
	x.code = 1;
	x.amount = 50;
	EXPECT(transfer1(l, x), HT_R_EXISTS);
	x.amount = 49;
	EXPECT(transfer1(l, x), HT_R_EXISTS_WITH_DIFFERENT_AMOUNT);
	x.amount = 0;
	x.debit_account_id = 2;
	EXPECT(transfer1(l, x), HT_R_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID);
	x.debit_account_id = 0;
	x.credit_account_id = 1;
	EXPECT(transfer1(l, x), HT_R_EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID);
	x.credit_account_id = 0;
	x.ledger = 9;
	EXPECT(transfer1(l, x), HT_R_EXISTS_WITH_DIFFERENT_LEDGER);
	x.ledger = 0;
	x.code = 9;
	EXPECT(transfer1(l, x), HT_R_EXISTS_WITH_DIFFERENT_CODE);
	/* The stored post carries the pending transfer's fields. */
	const struct ht_transfer *s = ht_ledger_transfer_get(l, 30);
	assert_non_null(s);
	assert_true(s->debit_account_id == 1 && s->credit_account_id == 2);
	assert_int_equal(s->ledger, 156);
	assert_int_equal(s->code, 1);
	assert_int_equal(s->amount, 50);
	assert_true(s->pending_id == 20);
}

/* ---- burned ids -------------------------------------------------------- */

static void collect(struct ht_ledger *l, struct ht_event *ev, size_t *nev)
{
	struct ht_ledger_changes c = changes(l);
	assert_non_null(c.events);
	memcpy(ev + *nev, c.events, c.events_count * sizeof *ev);
	*nev += c.events_count;
	ht_ledger_changes_reset(l);
}

/* Refusal events among the changes; *last (may be NULL) gets the last. */
static size_t refusals(struct ht_ledger *l, struct ht_event *last)
{
	struct ht_ledger_changes c = changes(l);
	size_t n = 0;
	for (size_t i = 0; i < c.events_count; i++) {
		if (c.events[i].kind != HT_EVENT_REFUSAL)
			continue;
		n++;
		if (last)
			*last = c.events[i];
	}
	return n;
}

static void test_burned_ids(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	const uint16_t flags[] = {HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS, 0};
	make_accounts(l, 2, flags);
	ht_ledger_changes_reset(l);
	EXPECT(transfer1(l, xfer(10, 1, 2, 100)), HT_R_EXCEEDS_CREDITS);
	/* The refusal is an event of its own: the only one, a journal leaf. */
	struct ht_ledger_changes c = changes(l);
	assert_int_equal(c.events_count, 1);
	assert_int_equal(c.events[0].kind, HT_EVENT_REFUSAL);
	assert_true(c.events[0].u.refusal.id == 10);
	assert_int_equal(c.events[0].u.refusal.result, HT_R_EXCEEDS_CREDITS);
	assert_int_equal(c.events[0].u.refusal.timestamp,
			 ht_ledger_last_timestamp(l));
	assert_int_equal(ht_event_timestamp(&c.events[0]),
			 ht_ledger_last_timestamp(l));
	assert_int_equal(c.dirty_count, 0);
	EXPECT(transfer1(l, xfer(11, 2, 1, 500)), HT_R_OK);
	/* A declined payment never succeeds on a blind retry. */
	EXPECT(transfer1(l, xfer(10, 1, 2, 100)), HT_R_ID_ALREADY_FAILED);
	EXPECT(transfer1(l, xfer(10, 1, 2, 0)), HT_R_AMOUNT_MUST_NOT_BE_ZERO);
	assert_null(ht_ledger_transfer_get(l, 10));
	assert_int_equal(ht_ledger_pending_state(l, 10), HT_PENDING_NONE);
	/* id_already_failed is not itself recorded again. */
	assert_int_equal(refusals(l, NULL), 1);

	/* Invalid ids are never recorded. */
	EXPECT(transfer1(l, xfer(0, 1, 2, 0)), HT_R_ID_MUST_NOT_BE_ZERO);
	EXPECT(transfer1(l, xfer(HT_U128_MAX, 1, 2, 0)),
	       HT_R_ID_MUST_NOT_BE_INT_MAX);
	assert_int_equal(refusals(l, NULL), 1);
	/* Validation failures burn; exists does not. */
	EXPECT(transfer1(l, xfer(12, 1, 2, 0)), HT_R_AMOUNT_MUST_NOT_BE_ZERO);
	EXPECT(transfer1(l, xfer(12, 1, 2, 5)), HT_R_ID_ALREADY_FAILED);
	EXPECT(transfer1(l, xfer(11, 2, 1, 400)),
	       HT_R_EXISTS_WITH_DIFFERENT_AMOUNT);
	EXPECT(transfer1(l, xfer(11, 2, 1, 500)), HT_R_EXISTS);
	/* Pending not found burns too (a transient failure in TigerBeetle). */
	EXPECT(transfer1(l, resolve(16, 77, HT_TRANSFER_POST_PENDING, 0)),
	       HT_R_PENDING_TRANSFER_NOT_FOUND);
	EXPECT(transfer1(l, resolve(16, 77, HT_TRANSFER_POST_PENDING, 0)),
	       HT_R_ID_ALREADY_FAILED);

	/* In a chain only the member failing with its own code burns. */
	struct ht_transfer chain[2] = {
		with_flags(xfer(13, 1, 2, 10), HT_TRANSFER_LINKED),
		xfer(14, 1, 2, 1000000)};
	uint16_t r[2];
	transfers_n(l, chain, 2, r);
	EXPECT_ALL(r, HT_R_LINKED_EVENT_FAILED, HT_R_EXCEEDS_CREDITS);
	EXPECT(transfer1(l, xfer(14, 1, 2, 1)), HT_R_ID_ALREADY_FAILED);
	struct ht_transfer open = with_flags(xfer(15, 1, 2, 1),
					     HT_TRANSFER_LINKED);
	EXPECT(transfer1(l, open), HT_R_LINKED_EVENT_CHAIN_OPEN);
	EXPECT(transfer1(l, xfer(15, 1, 2, 1)), HT_R_OK);
	EXPECT(transfer1(l, xfer(13, 1, 2, 10)), HT_R_OK);
	struct ht_event last;
	assert_int_equal(refusals(l, &last), 4);
	assert_true(last.u.refusal.id == 14);
	assert_int_equal(last.u.refusal.result, HT_R_EXCEEDS_CREDITS);
}

/* A request's events are in input order: a refusal sits between the
 * transfers before and after it, each input emitting at most one event. */
static void test_refusals_in_input_order(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	const uint16_t flags[] = {HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS, 0};
	make_accounts(l, 2, flags);
	EXPECT(transfer1(l, xfer(1, 2, 1, 100)), HT_R_OK);
	EXPECT(transfer1(l, pend(2, 2, 1, 1, 1)), HT_R_OK);
	ht_ledger_changes_reset(l);
	f->clock.now += 2 * S; /* pending 2 is due: an expiry comes first */
	struct ht_transfer t[6] = {
		xfer(10, 1, 2, 10),                       /* ok */
		xfer(11, 1, 2, 1000),                     /* exceeds: burns */
		xfer(10, 1, 2, 10),                       /* exists: nothing */
		with_flags(xfer(12, 1, 2, 1), HT_TRANSFER_LINKED),
		xfer(13, 1, 2, 0),                        /* breaks the chain */
		xfer(14, 2, 1, 5)};                       /* ok */
	uint16_t r[6];
	transfers_n(l, t, 6, r);
	EXPECT_ALL(r, HT_R_OK, HT_R_EXCEEDS_CREDITS, HT_R_EXISTS,
		   HT_R_LINKED_EVENT_FAILED, HT_R_AMOUNT_MUST_NOT_BE_ZERO,
		   HT_R_OK);
	struct ht_ledger_changes c = changes(l);
	assert_int_equal(c.events_count, 5);
	assert_int_equal(c.events[0].kind, HT_EVENT_EXPIRY);
	assert_true(c.events[0].u.expiry.pending_id == 2);
	assert_int_equal(c.events[1].kind, HT_EVENT_TRANSFER);
	assert_true(c.events[1].u.transfer.id == 10);
	assert_int_equal(c.events[2].kind, HT_EVENT_REFUSAL);
	assert_true(c.events[2].u.refusal.id == 11);
	assert_int_equal(c.events[3].kind, HT_EVENT_REFUSAL);
	assert_true(c.events[3].u.refusal.id == 13);
	assert_int_equal(c.events[3].u.refusal.result,
			 HT_R_AMOUNT_MUST_NOT_BE_ZERO);
	assert_int_equal(c.events[4].kind, HT_EVENT_TRANSFER);
	assert_true(c.events[4].u.transfer.id == 14);
	for (size_t i = 1; i < c.events_count; i++)
		assert_true(ht_event_timestamp(&c.events[i]) >
			    ht_event_timestamp(&c.events[i - 1]));
	assert_int_equal(ht_event_timestamp(&c.events[4]),
			 ht_ledger_last_timestamp(l));
}

static void test_burned_ids_survive_replay(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	const uint16_t flags[] = {HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS, 0};

	/* After a replay-restore the ids are still burned. */
	struct ht_event ev[64];
	size_t nev = 0;
	make_accounts(l, 2, flags);
	EXPECT(transfer1(l, xfer(10, 1, 2, 100)), HT_R_EXCEEDS_CREDITS);
	EXPECT(transfer1(l, xfer(11, 2, 1, 500)), HT_R_OK);
	EXPECT(transfer1(l, xfer(12, 1, 2, 0)), HT_R_AMOUNT_MUST_NOT_BE_ZERO);
	collect(l, ev, &nev);
	assert_int_equal(nev, 5); /* 2 accounts, 2 refusals, 1 transfer */
	assert_int_equal(ev[2].kind, HT_EVENT_REFUSAL);
	assert_int_equal(ev[3].kind, HT_EVENT_TRANSFER);
	assert_int_equal(ev[4].kind, HT_EVENT_REFUSAL);
	uint64_t last = ht_ledger_last_timestamp(l);

	struct test_clock c2 = {T0};
	struct ht_ledger *r2 = new_ledger(&c2);
	for (size_t i = 0; i < nev; i++)
		assert_int_equal(ht_ledger_replay(r2, &ev[i]), HT_OK);
	assert_int_equal(ht_ledger_last_timestamp(r2), last);
	assert_int_equal(changes(r2).events_count, 0);
	EXPECT(transfer1(r2, xfer(10, 1, 2, 1)), HT_R_ID_ALREADY_FAILED);
	EXPECT(transfer1(r2, xfer(12, 1, 2, 1)), HT_R_ID_ALREADY_FAILED);
	EXPECT(transfer1(r2, xfer(11, 2, 1, 500)), HT_R_EXISTS);
	EXPECT(transfer1(r2, xfer(17, 1, 2, 1)), HT_R_OK);
	/* Replay keeps changes empty. */
	ht_ledger_destroy(r2);
}

/* The hub's verdicts (ht_ledger_create_transfers_screened): a verdict
 * applies only to a transfer that would commit, burns its id like any
 * refusal, breaks its chain, survives replay; a verdict that does not
 * burn is refused before anything happens. */
static void test_screened(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	const uint16_t flags[] = {HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS, 0,
				  0};
	make_accounts(l, 3, flags);
	EXPECT(transfer1(l, xfer(1, 2, 1, 100)), HT_R_OK);
	struct ht_transfer t[6] = {
		xfer(10, 1, 3, 10),                                 /* refused */
		xfer(11, 1, 3, 10),                                 /* as asked */
		xfer(12, 1, 3, 1000),                 /* the ledger's own code */
		xfer(1, 2, 1, 100),                   /* a retry stays exists */
		with_flags(xfer(13, 1, 3, 5), HT_TRANSFER_LINKED),
		xfer(14, 1, 3, 5),                  /* breaks the chain above */
	};
	const uint16_t refuse[6] = {HT_R_RISK_BLOCKED, 0, HT_R_RISK_BLOCKED,
				    HT_R_RISK_BLOCKED, 0, HT_R_RISK_BLOCKED};
	/* the switch's codes burn the same way (payments.c) */
	const uint16_t policy[2] = {HT_R_NET_DEBIT_CAP_EXCEEDED,
				    HT_R_PARTICIPANT_SUSPENDED};
	struct ht_transfer pt[2] = {xfer(20, 1, 3, 1), xfer(21, 1, 3, 1)};
	uint16_t pr[2];
	assert_int_equal(ht_ledger_create_transfers_screened(l, pt, 2, policy,
							     pr), HT_OK);
	note(pr, 2);
	EXPECT_ALL(pr, HT_R_NET_DEBIT_CAP_EXCEEDED, HT_R_PARTICIPANT_SUSPENDED);
	EXPECT(transfer1(l, xfer(20, 1, 3, 1)), HT_R_ID_ALREADY_FAILED);
	uint16_t r[6];
	size_t ev0 = changes(l).events_count;
	assert_int_equal(ht_ledger_create_transfers_screened(l, t, 6, refuse, r),
			 HT_OK);
	note(r, 6);
	EXPECT_ALL(r, HT_R_RISK_BLOCKED, HT_R_OK, HT_R_EXCEEDS_CREDITS,
		   HT_R_EXISTS, HT_R_LINKED_EVENT_FAILED, HT_R_RISK_BLOCKED);
	BAL(l, 1, 0, 10, 0, 100);
	struct ht_ledger_changes c = changes(l);
	assert_int_equal(c.events_count - ev0, 4); /* 3 refusals, 1 transfer */
	assert_int_equal(c.events[ev0].kind, HT_EVENT_REFUSAL);
	assert_int_equal(c.events[ev0].u.refusal.result, HT_R_RISK_BLOCKED);
	assert_int_equal(c.events[ev0 + 3].u.refusal.id, 14);
	EXPECT(transfer1(l, xfer(10, 1, 3, 10)), HT_R_ID_ALREADY_FAILED);
	EXPECT(transfer1(l, xfer(13, 1, 3, 5)), HT_R_OK); /* not burned */

	/* replayed, the refusal burns the id again */
	struct test_clock c2 = {T0};
	struct ht_ledger *r2 = new_ledger(&c2);
	c = changes(l);
	for (size_t i = 0; i < c.events_count; i++)
		assert_int_equal(ht_ledger_replay(r2, &c.events[i]), HT_OK);
	EXPECT(transfer1(r2, xfer(14, 1, 3, 5)), HT_R_ID_ALREADY_FAILED);
	ht_ledger_destroy(r2);

	/* a verdict that does not burn is a caller's error */
	const uint16_t bad[1] = {HT_R_EXISTS};
	size_t before = changes(l).events_count;
	assert_int_equal(ht_ledger_create_transfers_screened(l, t + 1, 1, bad, r),
			 HT_ERR_INVALID);
	assert_int_equal(changes(l).events_count, before);
	assert_true(ht_ledger_transfer_id_used(l, 10));
	assert_true(ht_ledger_transfer_id_used(l, 11));
	assert_false(ht_ledger_transfer_id_used(l, 99));
}

/* ---- linked chains ----------------------------------------------------- */

static void test_chain_all_ok(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	make_accounts(l, 3, NULL);
	struct ht_transfer t[3] = {
		with_flags(xfer(10, 1, 3, 30), HT_TRANSFER_LINKED),
		with_flags(xfer(11, 3, 2, 10), HT_TRANSFER_LINKED),
		xfer(12, 2, 1, 5)};
	uint16_t r[3];
	transfers_n(l, t, 3, r);
	EXPECT_ALL(r, HT_R_OK, HT_R_OK, HT_R_OK);
	BAL(l, 1, 0, 30, 0, 5);
	BAL(l, 2, 0, 5, 0, 10);
	BAL(l, 3, 0, 10, 0, 30);
	/* The stored linked flag is kept as given. */
	assert_int_equal(ht_ledger_transfer_get(l, 10)->flags,
			 HT_TRANSFER_LINKED);
}

static void test_chain_failure_undoes(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	const uint16_t flags[] = {HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
				  HT_ACCOUNT_HISTORY, 0};
	make_accounts(l, 3, flags);
	EXPECT(transfer1(l, xfer(1, 3, 1, 100)), HT_R_OK);
	EXPECT(transfer1(l, pend(2, 2, 3, 50, 0)), HT_R_OK);
	struct ht_ledger_changes c = changes(l);
	size_t events = c.events_count, dirty = c.dirty_count,
	       history = c.history_count;
	uint64_t last = ht_ledger_last_timestamp(l);

	/* A chain of every kind of effect, broken by its last member. */
	struct ht_transfer t[5] = {
		with_flags(xfer(10, 2, 3, 10), HT_TRANSFER_LINKED),
		with_flags(resolve(11, 2, HT_TRANSFER_POST_PENDING, 20),
			   HT_TRANSFER_LINKED),
		with_flags(pend(12, 3, 2, 5, 9),
			   HT_TRANSFER_LINKED | HT_TRANSFER_CLOSING_DEBIT),
		with_flags(xfer(13, 1, 2, 1000), HT_TRANSFER_LINKED),
		xfer(14, 3, 1, 1)};
	uint16_t r[5];
	transfers_n(l, t, 5, r);
	EXPECT_ALL(r, HT_R_LINKED_EVENT_FAILED, HT_R_LINKED_EVENT_FAILED,
		   HT_R_LINKED_EVENT_FAILED, HT_R_EXCEEDS_CREDITS,
		   HT_R_LINKED_EVENT_FAILED);
	BAL(l, 1, 0, 0, 0, 100);
	BAL(l, 2, 50, 0, 0, 0);
	BAL(l, 3, 0, 100, 50, 0);
	assert_int_equal(A(l, 3)->flags, 0);
	assert_int_equal(ht_ledger_pending_state(l, 2), HT_PENDING_OPEN);
	for (ht_u128 id = 10; id <= 14; id++)
		assert_null(ht_ledger_transfer_get(l, id));
	assert_int_equal(ht_ledger_transfer_count(l), 2);
	c = changes(l);
	/* Nothing of the chain is left but the breaking member's refusal. */
	assert_int_equal(c.events_count, events + 1);
	assert_int_equal(c.dirty_count, dirty);
	assert_int_equal(c.history_count, history);
	assert_int_equal(refusals(l, NULL), 1);
	assert_int_equal(c.events[events].kind, HT_EVENT_REFUSAL);
	assert_true(c.events[events].u.refusal.id == 13);
	/* Only the burn took a timestamp. */
	assert_int_equal(c.events[events].u.refusal.timestamp, last + 1);
	assert_int_equal(ht_ledger_last_timestamp(l), last + 1);

	/* The undone members were not burned and can be retried. */
	struct ht_transfer again[3] = {t[0], t[1], xfer(14, 3, 1, 1)};
	again[1].flags &= (uint16_t)~HT_TRANSFER_LINKED;
	uint16_t r3[3];
	transfers_n(l, again, 3, r3);
	EXPECT_ALL(r3, HT_R_OK, HT_R_OK, HT_R_OK);
	BAL(l, 2, 0, 30, 0, 0);
	assert_int_equal(ht_ledger_pending_state(l, 2), HT_PENDING_POSTED);
}

static void test_chains_in_one_batch(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	make_accounts(l, 2, NULL);
	struct ht_transfer t[6] = {
		with_flags(xfer(10, 1, 2, 1), HT_TRANSFER_LINKED),
		xfer(11, 1, 2, 2),
		with_flags(xfer(12, 1, 2, 4), HT_TRANSFER_LINKED),
		xfer(13, 1, 9, 8),
		xfer(14, 1, 2, 16),
		/* a duplicate within a chain breaks it */
		with_flags(xfer(15, 1, 2, 32), HT_TRANSFER_LINKED),
	};
	uint16_t r[6];
	transfers_n(l, t, 5, r);
	EXPECT_ALL(r, HT_R_OK, HT_R_OK, HT_R_LINKED_EVENT_FAILED,
		   HT_R_CREDIT_ACCOUNT_NOT_FOUND, HT_R_OK);
	BAL(l, 1, 0, 19, 0, 0);
	struct ht_transfer d[2] = {t[5], xfer(15, 1, 2, 32)};
	transfers_n(l, d, 2, r);
	EXPECT_ALL(r, HT_R_LINKED_EVENT_FAILED, HT_R_EXISTS);
	assert_null(ht_ledger_transfer_get(l, 15));
	EXPECT(transfer1(l, xfer(15, 1, 2, 32)), HT_R_OK);

	/* Account chains undo account creation. */
	struct ht_account a[3] = {acct(50, HT_ACCOUNT_LINKED),
				  acct(51, HT_ACCOUNT_LINKED), acct(52, 0)};
	a[2].ledger = 0;
	uint16_t ra[3];
	accounts_n(l, a, 3, ra);
	EXPECT_ALL(ra, HT_R_LINKED_EVENT_FAILED, HT_R_LINKED_EVENT_FAILED,
		   HT_R_LEDGER_MUST_NOT_BE_ZERO);
	assert_null(ht_ledger_account_get(l, 50));
	assert_null(ht_ledger_account_get(l, 51));
	assert_int_equal(ht_ledger_account_count(l), 2);
	a[2].ledger = 156;
	accounts_n(l, a, 3, ra);
	EXPECT_ALL(ra, HT_R_OK, HT_R_OK, HT_R_OK);
}

static void test_chain_open(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	make_accounts(l, 2, NULL);
	uint16_t r[3];
	struct ht_transfer one = with_flags(xfer(10, 1, 2, 1), HT_TRANSFER_LINKED);
	transfers_n(l, &one, 1, r);
	EXPECT_ALL(r, HT_R_LINKED_EVENT_CHAIN_OPEN);
	struct ht_transfer two[2] = {
		with_flags(xfer(11, 1, 2, 1), HT_TRANSFER_LINKED),
		with_flags(xfer(12, 1, 2, 1), HT_TRANSFER_LINKED)};
	transfers_n(l, two, 2, r);
	EXPECT_ALL(r, HT_R_LINKED_EVENT_FAILED, HT_R_LINKED_EVENT_CHAIN_OPEN);
	struct ht_transfer mix[2] = {xfer(13, 1, 2, 1),
				     with_flags(xfer(14, 1, 2, 1),
						HT_TRANSFER_LINKED)};
	transfers_n(l, mix, 2, r);
	EXPECT_ALL(r, HT_R_OK, HT_R_LINKED_EVENT_CHAIN_OPEN);
	/* A member that failed keeps its own code; the last is open. */
	struct ht_transfer broken[3] = {
		with_flags(xfer(15, 1, 2, 1), HT_TRANSFER_LINKED),
		with_flags(xfer(16, 1, 2, 0), HT_TRANSFER_LINKED),
		with_flags(xfer(17, 1, 2, 1), HT_TRANSFER_LINKED)};
	transfers_n(l, broken, 3, r);
	EXPECT_ALL(r, HT_R_LINKED_EVENT_FAILED, HT_R_AMOUNT_MUST_NOT_BE_ZERO,
		   HT_R_LINKED_EVENT_CHAIN_OPEN);
	BAL(l, 1, 0, 1, 0, 0);
	struct ht_account a = acct(20, HT_ACCOUNT_LINKED);
	EXPECT(account1(l, a), HT_R_LINKED_EVENT_CHAIN_OPEN);
	assert_null(ht_ledger_account_get(l, 20));
}

/* ---- two-phase --------------------------------------------------------- */

static void test_two_phase(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	make_accounts(l, 3, NULL);

	/* Full post (amount 0 = all). */
	EXPECT(transfer1(l, pend(10, 1, 2, 100, 0)), HT_R_OK);
	BAL(l, 1, 100, 0, 0, 0);
	BAL(l, 2, 0, 0, 100, 0);
	assert_int_equal(ht_ledger_pending_state(l, 10), HT_PENDING_OPEN);
	EXPECT(transfer1(l, resolve(11, 10, HT_TRANSFER_POST_PENDING, 0)),
	       HT_R_OK);
	BAL(l, 1, 0, 100, 0, 0);
	BAL(l, 2, 0, 0, 0, 100);
	assert_int_equal(ht_ledger_pending_state(l, 10), HT_PENDING_POSTED);
	assert_int_equal(ht_ledger_pending_state(l, 11), HT_PENDING_NONE);
	EXPECT(transfer1(l, resolve(12, 10, HT_TRANSFER_POST_PENDING, 0)),
	       HT_R_PENDING_TRANSFER_ALREADY_POSTED);
	EXPECT(transfer1(l, resolve(13, 10, HT_TRANSFER_VOID_PENDING, 0)),
	       HT_R_PENDING_TRANSFER_ALREADY_POSTED);

	/* Partial post releases the rest. */
	EXPECT(transfer1(l, pend(20, 1, 2, 100, 0)), HT_R_OK);
	EXPECT(transfer1(l, resolve(21, 20, HT_TRANSFER_POST_PENDING, 60)),
	       HT_R_OK);
	BAL(l, 1, 0, 160, 0, 0);
	BAL(l, 2, 0, 0, 0, 160);
	assert_int_equal(ht_ledger_transfer_get(l, 21)->amount, 60);

	/* Void. */
	EXPECT(transfer1(l, pend(30, 1, 2, 100, 0)), HT_R_OK);
	EXPECT(transfer1(l, resolve(31, 30, HT_TRANSFER_VOID_PENDING, 50)),
	       HT_R_PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT);
	EXPECT(transfer1(l, resolve(32, 30, HT_TRANSFER_VOID_PENDING, 101)),
	       HT_R_EXCEEDS_PENDING_TRANSFER_AMOUNT);
	EXPECT(transfer1(l, resolve(33, 30, HT_TRANSFER_VOID_PENDING, 100)),
	       HT_R_OK);
	BAL(l, 1, 0, 160, 0, 0);
	assert_int_equal(ht_ledger_transfer_get(l, 33)->amount, 100);
	assert_int_equal(ht_ledger_pending_state(l, 30), HT_PENDING_VOIDED);
	EXPECT(transfer1(l, resolve(34, 30, HT_TRANSFER_VOID_PENDING, 0)),
	       HT_R_PENDING_TRANSFER_ALREADY_VOIDED);
	EXPECT(transfer1(l, resolve(35, 30, HT_TRANSFER_POST_PENDING, 0)),
	       HT_R_PENDING_TRANSFER_ALREADY_VOIDED);

}

static void test_two_phase_checks(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	make_accounts(l, 3, NULL);
	EXPECT(transfer1(l, xfer(21, 1, 2, 5)), HT_R_OK);

	/* Checks against the pending transfer, in order. */
	EXPECT(transfer1(l, pend(40, 1, 2, 100, 0)), HT_R_OK);
	EXPECT(transfer1(l, resolve(41, 99, HT_TRANSFER_POST_PENDING, 0)),
	       HT_R_PENDING_TRANSFER_NOT_FOUND);
	EXPECT(transfer1(l, resolve(42, 21, HT_TRANSFER_POST_PENDING, 0)),
	       HT_R_PENDING_TRANSFER_NOT_PENDING);
	struct ht_transfer x = resolve(43, 40, HT_TRANSFER_POST_PENDING, 500);
	x.debit_account_id = 2;
	x.credit_account_id = 1;
	EXPECT(transfer1(l, x),
	       HT_R_PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID);
	x = resolve(44, 40, HT_TRANSFER_POST_PENDING, 500);
	x.debit_account_id = 1;
	x.credit_account_id = 3;
	x.ledger = 9;
	EXPECT(transfer1(l, x),
	       HT_R_PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID);
	x = resolve(45, 40, HT_TRANSFER_POST_PENDING, 500);
	x.ledger = 9;
	x.code = 9;
	EXPECT(transfer1(l, x), HT_R_PENDING_TRANSFER_HAS_DIFFERENT_LEDGER);
	x = resolve(46, 40, HT_TRANSFER_POST_PENDING, 500);
	x.code = 9;
	EXPECT(transfer1(l, x), HT_R_PENDING_TRANSFER_HAS_DIFFERENT_CODE);
	x = resolve(47, 40, HT_TRANSFER_POST_PENDING, 101);
	EXPECT(transfer1(l, x), HT_R_EXCEEDS_PENDING_TRANSFER_AMOUNT);
	x = resolve(48, 40, HT_TRANSFER_POST_PENDING, 100);
	x.debit_account_id = 1;
	x.credit_account_id = 2;
	x.ledger = 156;
	x.code = 1;
	x = xfer_ud(x, "own user data");
	EXPECT(transfer1(l, x), HT_R_OK);
	const struct ht_transfer *s = ht_ledger_transfer_get(l, 48);
	assert_int_equal(s->user_data_len, 13);
	assert_int_equal(s->flags, HT_TRANSFER_POST_PENDING);
	assert_int_equal(s->timeout_s, 0);
}

static void test_expiry(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	make_accounts(l, 2, NULL);
	EXPECT(transfer1(l, pend(10, 1, 2, 100, 10)), HT_R_OK);
	uint64_t created = ht_ledger_transfer_get(l, 10)->timestamp;
	ht_ledger_changes_reset(l);

	f->clock.now = created + 10 * S - 1;
	assert_int_equal(ht_ledger_expire(l), HT_OK);
	assert_int_equal(changes(l).events_count, 0);
	assert_int_equal(ht_ledger_pending_state(l, 10), HT_PENDING_OPEN);

	f->clock.now = created + 10 * S;
	assert_int_equal(ht_ledger_expire(l), HT_OK);
	struct ht_ledger_changes c = changes(l);
	assert_int_equal(c.events_count, 1);
	assert_int_equal(c.events[0].kind, HT_EVENT_EXPIRY);
	assert_true(c.events[0].u.expiry.pending_id == 10);
	assert_int_equal(c.events[0].u.expiry.timestamp, created + 10 * S);
	assert_int_equal(c.dirty_count, 2);
	BAL(l, 1, 0, 0, 0, 0);
	BAL(l, 2, 0, 0, 0, 0);
	assert_int_equal(ht_ledger_pending_state(l, 10), HT_PENDING_EXPIRED);
	EXPECT(transfer1(l, resolve(11, 10, HT_TRANSFER_POST_PENDING, 0)),
	       HT_R_PENDING_TRANSFER_EXPIRED);
	EXPECT(transfer1(l, resolve(12, 10, HT_TRANSFER_VOID_PENDING, 0)),
	       HT_R_PENDING_TRANSFER_EXPIRED);
	assert_int_equal(ht_ledger_expire(l), HT_OK);
	/* No second expiry; the two refused resolves burned their ids. */
	assert_int_equal(changes(l).events_count, 3);
	assert_int_equal(refusals(l, NULL), 2);

	/* Oldest first; a resolved one is skipped; each expiry gets its own
	 * timestamp; expiry runs at the start of a create call. */
	struct ht_transfer p[4] = {pend(20, 1, 2, 1, 5), pend(21, 1, 2, 2, 3),
				   pend(22, 1, 2, 4, 4), pend(23, 1, 2, 8, 1)};
	uint16_t r[4];
	transfers_n(l, p, 4, r);
	EXPECT(transfer1(l, resolve(24, 23, HT_TRANSFER_VOID_PENDING, 0)),
	       HT_R_OK);
	ht_ledger_changes_reset(l);
	f->clock.now += 20 * S;
	EXPECT(transfer1(l, xfer(25, 2, 1, 3)), HT_R_OK);
	c = changes(l);
	assert_int_equal(c.events_count, 4);
	assert_true(c.events[0].u.expiry.pending_id == 21);
	assert_true(c.events[1].u.expiry.pending_id == 22);
	assert_true(c.events[2].u.expiry.pending_id == 20);
	assert_int_equal(c.events[3].kind, HT_EVENT_TRANSFER);
	for (size_t i = 1; i < 4; i++)
		assert_true(ht_event_timestamp(&c.events[i]) >
			    ht_event_timestamp(&c.events[i - 1]));
	BAL(l, 1, 0, 0, 0, 3);
}

/* A transfer expires for a post whose own timestamp is at or past its
 * expiry even before the expiry event (the batch ran the clock ahead). */
static void test_expired_within_batch(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	make_accounts(l, 2, NULL);
	struct ht_transfer p[2] = {pend(10, 1, 2, 100, 1), pend(11, 1, 2, 7, 1)};
	uint16_t r[11];
	transfers_n(l, p, 2, r);
	uint64_t expires = ht_ledger_transfer_get(l, 10)->timestamp + S;
	assert_int_equal(ht_ledger_transfer_get(l, 11)->timestamp + S,
			 expires + 1);
	/* Nine transfers at expires-10 .. expires-2, then a post of 11 at
	 * expires-1 (in time) and a post of 10 at exactly its expiry. */
	f->clock.now = expires - 10;
	struct ht_transfer t[11];
	for (int i = 0; i < 9; i++)
		t[i] = xfer(20 + i, 1, 2, 1);
	t[9] = resolve(30, 11, HT_TRANSFER_POST_PENDING, 0);
	t[10] = resolve(31, 10, HT_TRANSFER_POST_PENDING, 0);
	transfers_n(l, t, 11, r);
	EXPECT(r[8], HT_R_OK);
	EXPECT(r[9], HT_R_OK);
	EXPECT(r[10], HT_R_PENDING_TRANSFER_EXPIRED);
	assert_int_equal(ht_ledger_transfer_get(l, 30)->timestamp, expires - 1);
	assert_int_equal(ht_ledger_pending_state(l, 10), HT_PENDING_OPEN);
	BAL(l, 1, 100, 16, 0, 0);
	f->clock.now = expires;
	assert_int_equal(ht_ledger_expire(l), HT_OK);
	assert_int_equal(ht_ledger_pending_state(l, 10), HT_PENDING_EXPIRED);
	BAL(l, 1, 0, 16, 0, 0);
}

/* Equal expiry times expire in creation order. */
static void test_expiry_ties(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	make_accounts(l, 2, NULL);
	f->clock.now = T0 + S;
	EXPECT(transfer1(l, pend(10, 1, 2, 1, 2)), HT_R_OK);
	f->clock.now = T0 + 2 * S;
	EXPECT(transfer1(l, pend(11, 1, 2, 2, 1)), HT_R_OK);
	f->clock.now = T0 + 3 * S - 1;
	EXPECT(transfer1(l, pend(12, 1, 2, 4, 0)), HT_R_OK);
	EXPECT(transfer1(l, pend(13, 1, 2, 8, 1)), HT_R_OK); /* T0+4S */
	ht_ledger_changes_reset(l);
	f->clock.now = T0 + 10 * S;
	assert_int_equal(ht_ledger_expire(l), HT_OK);
	struct ht_ledger_changes c = changes(l);
	assert_int_equal(c.events_count, 3);
	assert_true(c.events[0].u.expiry.pending_id == 10);
	assert_true(c.events[1].u.expiry.pending_id == 11);
	assert_true(c.events[2].u.expiry.pending_id == 13);
	BAL(l, 1, 4, 0, 0, 0);
}

/* ---- balancing and limits ---------------------------------------------- */

static void test_balancing(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	const uint16_t flags[] = {HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS, 0,
				  0, HT_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS,
				  0, 0, 0};
	make_accounts(l, 7, flags);
	EXPECT(transfer1(l, xfer(10, 3, 1, 100)), HT_R_OK);
	EXPECT(transfer1(l, xfer(11, 1, 3, 30)), HT_R_OK);
	EXPECT(transfer1(l, pend(12, 1, 3, 20, 0)), HT_R_OK);
	struct ht_transfer b = with_flags(xfer(13, 1, 2, 1000),
					  HT_TRANSFER_BALANCING_DEBIT);
	EXPECT(transfer1(l, b), HT_R_OK);
	assert_int_equal(ht_ledger_transfer_get(l, 13)->amount, 50);
	BAL(l, 1, 20, 80, 0, 100);
	/* Retried with any amount >= the clamped one it is the same. */
	EXPECT(transfer1(l, b), HT_R_EXISTS);
	b.amount = 50;
	EXPECT(transfer1(l, b), HT_R_EXISTS);
	b.amount = 49;
	EXPECT(transfer1(l, b), HT_R_EXISTS_WITH_DIFFERENT_AMOUNT);
	EXPECT(transfer1(l, with_flags(xfer(14, 1, 2, 1),
				       HT_TRANSFER_BALANCING_DEBIT)),
	       HT_R_EXCEEDS_CREDITS);
	/* Less than the room: unchanged. */
	EXPECT(transfer1(l, resolve(15, 12, HT_TRANSFER_VOID_PENDING, 0)),
	       HT_R_OK);
	EXPECT(transfer1(l, with_flags(xfer(16, 1, 2, 7),
				       HT_TRANSFER_BALANCING_DEBIT)),
	       HT_R_OK);
	assert_int_equal(ht_ledger_transfer_get(l, 16)->amount, 7);

	/* balancing_credit on a credits_must_not_exceed_debits account. */
	EXPECT(transfer1(l, xfer(20, 4, 2, 70)), HT_R_OK);
	struct ht_transfer c = with_flags(pend(21, 2, 4, 1000, 0),
					  HT_TRANSFER_BALANCING_CREDIT);
	EXPECT(transfer1(l, c), HT_R_OK);
	assert_int_equal(ht_ledger_transfer_get(l, 21)->amount, 70);
	BAL(l, 4, 0, 70, 70, 0);
	EXPECT(transfer1(l, with_flags(xfer(22, 2, 4, 1),
				       HT_TRANSFER_BALANCING_CREDIT)),
	       HT_R_EXCEEDS_DEBITS);
	/* Without limit flags balancing clamps the same way; both flags
	 * clamp by both accounts. */
	EXPECT(transfer1(l, xfer(30, 6, 5, 9)), HT_R_OK);
	EXPECT(transfer1(l, xfer(29, 7, 6, 4)), HT_R_OK);
	struct ht_transfer both = with_flags(
		xfer(31, 5, 6, 1000),
		HT_TRANSFER_BALANCING_DEBIT | HT_TRANSFER_BALANCING_CREDIT);
	EXPECT(transfer1(l, both), HT_R_OK);
	assert_int_equal(ht_ledger_transfer_get(l, 31)->amount, 5);
}

static void test_limits(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	const uint16_t flags[] = {HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS, 0,
				  HT_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS, 0};
	make_accounts(l, 4, flags);
	EXPECT(transfer1(l, xfer(10, 1, 2, 1)), HT_R_EXCEEDS_CREDITS);
	EXPECT(transfer1(l, xfer(11, 2, 1, 100)), HT_R_OK);
	EXPECT(transfer1(l, pend(12, 1, 2, 60, 0)), HT_R_OK);
	EXPECT(transfer1(l, xfer(13, 1, 2, 41)), HT_R_EXCEEDS_CREDITS);
	EXPECT(transfer1(l, xfer(14, 1, 2, 40)), HT_R_OK);
	EXPECT(transfer1(l, resolve(15, 12, HT_TRANSFER_VOID_PENDING, 0)),
	       HT_R_OK);
	EXPECT(transfer1(l, xfer(16, 1, 2, 60)), HT_R_OK);
	BAL(l, 1, 0, 100, 0, 100);

	EXPECT(transfer1(l, xfer(20, 4, 3, 1)), HT_R_EXCEEDS_DEBITS);
	EXPECT(transfer1(l, xfer(21, 3, 4, 100)), HT_R_OK);
	EXPECT(transfer1(l, pend(22, 4, 3, 70, 0)), HT_R_OK);
	EXPECT(transfer1(l, xfer(23, 4, 3, 31)), HT_R_EXCEEDS_DEBITS);
	EXPECT(transfer1(l, xfer(24, 4, 3, 30)), HT_R_OK);
	/* Posting a reservation never crosses a limit. */
	EXPECT(transfer1(l, resolve(25, 22, HT_TRANSFER_POST_PENDING, 0)),
	       HT_R_OK);
	BAL(l, 3, 0, 100, 0, 100);
	/* exceeds_credits is checked before exceeds_debits. */
	EXPECT(transfer1(l, xfer(26, 1, 3, 1)), HT_R_EXCEEDS_CREDITS);
}

/* ---- closing ----------------------------------------------------------- */

static void test_closing(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	make_accounts(l, 3, NULL);
	EXPECT(account1(l, acct(5, HT_ACCOUNT_CLOSED)), HT_R_OK);
	EXPECT(transfer1(l, xfer(1, 5, 2, 1)), HT_R_DEBIT_ACCOUNT_CLOSED);
	EXPECT(transfer1(l, xfer(2, 2, 5, 1)), HT_R_CREDIT_ACCOUNT_CLOSED);

	EXPECT(transfer1(l, pend(10, 1, 2, 10, 0)), HT_R_OK);
	ht_ledger_changes_reset(l);
	struct ht_transfer close = with_flags(pend(11, 1, 3, 1, 0),
					      HT_TRANSFER_CLOSING_DEBIT);
	EXPECT(transfer1(l, close), HT_R_OK);
	assert_true(A(l, 1)->flags & HT_ACCOUNT_CLOSED);
	struct ht_ledger_changes c = changes(l);
	assert_int_equal(c.dirty_count, 2);
	assert_true(c.dirty_accounts[0]->id == 1);
	assert_true(c.dirty_accounts[0]->flags & HT_ACCOUNT_CLOSED);
	/* The account event keeps the flags at creation; a retried create
	 * with those flags is `exists`. */
	EXPECT(account1(l, acct(1, 0)), HT_R_EXISTS);
	EXPECT(transfer1(l, xfer(12, 1, 2, 1)), HT_R_DEBIT_ACCOUNT_CLOSED);
	EXPECT(transfer1(l, xfer(13, 2, 1, 1)), HT_R_CREDIT_ACCOUNT_CLOSED);
	EXPECT(transfer1(l, pend(14, 2, 1, 1, 0)), HT_R_CREDIT_ACCOUNT_CLOSED);
	/* Releasing a reservation is always allowed. */
	EXPECT(transfer1(l, resolve(15, 10, HT_TRANSFER_VOID_PENDING, 0)),
	       HT_R_OK);
	/* Voiding the closing transfer reopens. */
	EXPECT(transfer1(l, resolve(16, 11, HT_TRANSFER_VOID_PENDING, 0)),
	       HT_R_OK);
	assert_false(A(l, 1)->flags & HT_ACCOUNT_CLOSED);
	EXPECT(transfer1(l, xfer(17, 1, 2, 1)), HT_R_OK);

	/* closing_credit, reopened by expiry. */
	struct ht_transfer cc = with_flags(pend(20, 2, 3, 1, 1),
					   HT_TRANSFER_CLOSING_CREDIT);
	EXPECT(transfer1(l, cc), HT_R_OK);
	assert_true(A(l, 3)->flags & HT_ACCOUNT_CLOSED);
	EXPECT(transfer1(l, xfer(21, 1, 3, 1)), HT_R_CREDIT_ACCOUNT_CLOSED);
	f->clock.now += 2 * S;
	assert_int_equal(ht_ledger_expire(l), HT_OK);
	assert_false(A(l, 3)->flags & HT_ACCOUNT_CLOSED);
	EXPECT(transfer1(l, xfer(22, 1, 3, 1)), HT_R_OK);

	/* Posting a closing transfer keeps the account closed for good. */
	struct ht_transfer cd = with_flags(
		pend(30, 2, 1, 4, 0),
		HT_TRANSFER_CLOSING_DEBIT | HT_TRANSFER_CLOSING_CREDIT);
	EXPECT(transfer1(l, cd), HT_R_OK);
	assert_true(A(l, 1)->flags & HT_ACCOUNT_CLOSED);
	assert_true(A(l, 2)->flags & HT_ACCOUNT_CLOSED);
	EXPECT(transfer1(l, resolve(31, 30, HT_TRANSFER_POST_PENDING, 0)),
	       HT_R_OK);
	assert_true(A(l, 1)->flags & HT_ACCOUNT_CLOSED);
	assert_true(A(l, 2)->flags & HT_ACCOUNT_CLOSED);
	EXPECT(transfer1(l, xfer(32, 2, 3, 1)), HT_R_DEBIT_ACCOUNT_CLOSED);
}

/* ---- overflow ---------------------------------------------------------- */

static void test_overflow(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	make_accounts(l, 16, NULL);
	const uint64_t big = UINT64_MAX - 5, half = UINT64_MAX / 2 + 1;
	EXPECT(transfer1(l, xfer(10, 1, 2, big)), HT_R_OK);
	EXPECT(transfer1(l, xfer(11, 1, 3, 10)), HT_R_OVERFLOWS_DEBITS_POSTED);
	/* Where both sides overflow, the debit side is named first. */
	EXPECT(transfer1(l, xfer(14, 1, 2, 10)), HT_R_OVERFLOWS_DEBITS_POSTED);
	EXPECT(transfer1(l, xfer(12, 4, 2, 10)), HT_R_OVERFLOWS_CREDITS_POSTED);
	EXPECT(transfer1(l, xfer(13, 4, 2, 5)), HT_R_OK);
	BAL(l, 2, 0, 0, 0, UINT64_MAX);

	EXPECT(transfer1(l, pend(20, 5, 6, big, 0)), HT_R_OK);
	EXPECT(transfer1(l, pend(21, 5, 7, 10, 0)),
	       HT_R_OVERFLOWS_DEBITS_PENDING);
	EXPECT(transfer1(l, pend(22, 8, 6, 10, 0)),
	       HT_R_OVERFLOWS_CREDITS_PENDING);
	EXPECT(transfer1(l, pend(23, 5, 6, 10, 0)),
	       HT_R_OVERFLOWS_DEBITS_PENDING);

	EXPECT(transfer1(l, pend(30, 9, 10, half, 0)), HT_R_OK);
	EXPECT(transfer1(l, xfer(31, 9, 11, half)), HT_R_OVERFLOWS_DEBITS);
	EXPECT(transfer1(l, xfer(32, 12, 10, half)), HT_R_OVERFLOWS_CREDITS);
	EXPECT(transfer1(l, pend(37, 10, 9, half, 0)), HT_R_OK);
	EXPECT(transfer1(l, xfer(38, 9, 10, half)), HT_R_OVERFLOWS_DEBITS);
	/* A pending transfer is also checked against the posted side it
	 * could reach. */
	EXPECT(transfer1(l, pend(33, 1, 13, 10, 0)),
	       HT_R_OVERFLOWS_DEBITS_POSTED);
	EXPECT(transfer1(l, pend(34, 14, 2, 1, 0)),
	       HT_R_OVERFLOWS_CREDITS_POSTED);

	f->clock.now = UINT64_MAX - 10 * S;
	EXPECT(transfer1(l, pend(40, 15, 16, 1, 9)), HT_R_OK);
	EXPECT(transfer1(l, pend(41, 15, 16, 1, 11)), HT_R_OVERFLOWS_TIMEOUT);
	EXPECT(transfer1(l, pend(42, 15, 16, 1, UINT32_MAX)),
	       HT_R_OVERFLOWS_TIMEOUT);
}

/* ---- timestamps -------------------------------------------------------- */

static void test_timestamps(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	struct ht_account a[2] = {acct(1, 0), acct(2, 0)};
	uint16_t r[2];
	accounts_n(l, a, 2, r);
	assert_int_equal(A(l, 1)->timestamp, T0);
	assert_int_equal(A(l, 2)->timestamp, T0 + 1);
	f->clock.now = T0 - 5 * S; /* the clock goes backwards */
	EXPECT(transfer1(l, xfer(10, 1, 2, 1)), HT_R_OK);
	assert_int_equal(ht_ledger_transfer_get(l, 10)->timestamp, T0 + 2);
	EXPECT(transfer1(l, xfer(11, 1, 2, 0)), HT_R_AMOUNT_MUST_NOT_BE_ZERO);
	struct ht_event refusal;
	assert_int_equal(refusals(l, &refusal), 1);
	assert_int_equal(refusal.u.refusal.timestamp, T0 + 3);
	f->clock.now = T0 + S;
	EXPECT(transfer1(l, xfer(12, 1, 2, 1)), HT_R_OK);
	assert_int_equal(ht_ledger_transfer_get(l, 12)->timestamp, T0 + S);
	assert_int_equal(ht_ledger_last_timestamp(l), T0 + S);
	/* Events in changes are in strictly increasing timestamp order. */
	struct ht_ledger_changes c = changes(l);
	for (size_t i = 1; i < c.events_count; i++)
		assert_true(ht_event_timestamp(&c.events[i]) >
			    ht_event_timestamp(&c.events[i - 1]));
}

/* ---- changes ----------------------------------------------------------- */

static void test_changes(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	const uint16_t flags[] = {HT_ACCOUNT_HISTORY, 0, 0};
	make_accounts(l, 3, flags);
	struct ht_ledger_changes c = changes(l);
	assert_int_equal(c.events_count, 3);
	assert_int_equal(c.events[0].kind, HT_EVENT_ACCOUNT);
	assert_true(c.events[2].u.account.id == 3);
	assert_int_equal(c.dirty_count, 0);
	assert_int_equal(c.history_count, 0);

	struct ht_transfer t[3] = {xfer(10, 1, 2, 10), xfer(11, 2, 3, 5),
				   xfer(12, 3, 1, 7)};
	uint16_t r[3];
	transfers_n(l, t, 3, r);
	EXPECT(transfer1(l, xfer(13, 2, 3, 1)), HT_R_OK);
	EXPECT(transfer1(l, xfer(14, 2, 3, 0)), HT_R_AMOUNT_MUST_NOT_BE_ZERO);
	c = changes(l);
	assert_int_equal(c.events_count, 8);
	assert_int_equal(c.events[3].kind, HT_EVENT_TRANSFER);
	assert_true(c.events[6].u.transfer.id == 13);
	assert_int_equal(c.events[7].kind, HT_EVENT_REFUSAL);
	assert_true(c.events[7].u.refusal.id == 14);
	assert_int_equal(c.dirty_count, 3);
	for (size_t i = 0; i < 3; i++)
		assert_ptr_equal(c.dirty_accounts[i],
				 ht_ledger_account_get(l, c.dirty_accounts[i]->id));
	assert_true(c.dirty_accounts[0]->id == 1 &&
		    c.dirty_accounts[1]->id == 2 &&
		    c.dirty_accounts[2]->id == 3);
	assert_int_equal(c.history_count, 2);
	assert_true(c.history[0].account_id == 1);
	assert_int_equal(c.history[0].debits_posted, 10);
	assert_int_equal(c.history[0].credits_posted, 0);
	assert_int_equal(c.history[0].timestamp,
			 ht_ledger_transfer_get(l, 10)->timestamp);
	assert_int_equal(c.history[1].debits_posted, 10);
	assert_int_equal(c.history[1].credits_posted, 7);
	assert_int_equal(c.history[1].timestamp,
			 ht_ledger_transfer_get(l, 12)->timestamp);

	ht_ledger_changes_reset(l);
	c = changes(l);
	assert_int_equal(c.events_count + c.dirty_count + c.history_count, 0);
	EXPECT(transfer1(l, pend(15, 2, 1, 3, 1)), HT_R_OK);
	f->clock.now += 2 * S;
	assert_int_equal(ht_ledger_expire(l), HT_OK);
	c = changes(l);
	assert_int_equal(c.events_count, 2);
	assert_int_equal(c.dirty_count, 2);
	assert_true(c.dirty_accounts[0]->id == 2);
	assert_int_equal(c.history_count, 2);
	assert_int_equal(c.history[0].credits_pending, 3);
	assert_int_equal(c.history[1].credits_pending, 0);
	assert_int_equal(c.history[1].timestamp,
			 ht_event_timestamp(&c.events[1]));
}

/* Dirty pointers stay right when the accounts array grows. */
static void test_changes_survive_growth(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	make_accounts(l, 2, NULL);
	EXPECT(transfer1(l, xfer(10, 1, 2, 10)), HT_R_OK);
	static struct ht_account many[HT_BATCH_EVENTS_MAX];
	for (size_t k = 0; k < 4; k++) {
		for (size_t i = 0; i < HT_BATCH_EVENTS_MAX; i++)
			many[i] = acct(1000 + k * HT_BATCH_EVENTS_MAX + i, 0);
		static uint16_t r[HT_BATCH_EVENTS_MAX];
		accounts_n(l, many, HT_BATCH_EVENTS_MAX, r);
	}
	struct ht_ledger_changes c = changes(l);
	assert_int_equal(c.dirty_count, 2);
	assert_ptr_equal(c.dirty_accounts[0], ht_ledger_account_get(l, 1));
	assert_int_equal(c.dirty_accounts[1]->credits_posted, 10);
}

/* ---- replay ------------------------------------------------------------ */

/* Deterministic pseudo-random numbers (xorshift64*). */
static uint64_t rng_state;
static uint64_t rnd(uint64_t n)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (rng_state * 0x2545f4914f6cdd1dull) % n;
}

#define R_ACCOUNTS 24
#define R_IDS_MAX 6000

struct gen {
	ht_u128 next_id;
	ht_u128 pending[R_IDS_MAX];
	size_t pending_count;
	struct ht_transfer sent[R_IDS_MAX];
	size_t sent_count;
};

static struct ht_transfer random_transfer(struct gen *g)
{
	ht_u128 dr = rnd(R_ACCOUNTS) + 1, cr = rnd(R_ACCOUNTS) + 1;
	struct ht_transfer t = xfer(g->next_id++, dr, cr, rnd(400) + 1);
	unsigned kind = (unsigned)rnd(20);
	if (kind < 3 && g->sent_count) {
		t = g->sent[rnd(g->sent_count)];            /* retry */
	} else if (kind < 7) {
		t.flags = HT_TRANSFER_PENDING;
		t.timeout_s = (uint32_t)rnd(6);
		if (rnd(12) == 0)
			t.flags |= rnd(2) ? HT_TRANSFER_CLOSING_DEBIT
					  : HT_TRANSFER_CLOSING_CREDIT;
	} else if (kind < 11 && g->pending_count) {
		ht_u128 p = g->pending[rnd(g->pending_count)];
		t = resolve(t.id, p, rnd(2) ? HT_TRANSFER_POST_PENDING
					    : HT_TRANSFER_VOID_PENDING,
			    rnd(3) ? 0 : rnd(300));
	} else if (kind == 11) {
		t.flags = rnd(2) ? HT_TRANSFER_BALANCING_DEBIT
				 : HT_TRANSFER_BALANCING_CREDIT;
	} else if (kind == 12) {
		t.amount = rnd(5) ? t.amount : 0;
		t.ledger = rnd(2) ? 156 : 157;
	} else if (kind == 13) {
		t.amount = UINT64_MAX - rnd(1000);
	}
	if (rnd(6) == 0)
		t.flags |= HT_TRANSFER_LINKED;
	else
		t.flags &= (uint16_t)~HT_TRANSFER_LINKED;
	if (rnd(8) == 0)
		t = xfer_ud(t, "ud");
	return t;
}

static void record_sent(struct gen *g, const struct ht_transfer *t,
			const uint16_t *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (g->sent_count < R_IDS_MAX)
			g->sent[g->sent_count++] = t[i];
		if (r[i] == HT_R_OK && (t[i].flags & HT_TRANSFER_PENDING) &&
		    g->pending_count < R_IDS_MAX)
			g->pending[g->pending_count++] = t[i].id;
	}
}

static void random_accounts(struct ht_ledger *l, ht_u128 first)
{
	struct ht_account a[R_ACCOUNTS];
	static const uint16_t choice[] = {
		0, 0, HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
		HT_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS, HT_ACCOUNT_HISTORY,
		HT_ACCOUNT_HISTORY | HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS};
	for (size_t i = 0; i < R_ACCOUNTS; i++) {
		a[i] = acct(first + i, choice[rnd(6)]);
		a[i].ledger = i % 8 == 7 ? 157 : 156;
	}
	uint16_t r[R_ACCOUNTS];
	accounts_n(l, a, R_ACCOUNTS, r);
}

/* One random call (a transfer batch, or a bare expiry) on both engines
 * when b is given; results must agree. */
static void random_step(struct ht_ledger *a, struct ht_ledger *b,
			struct test_clock *ca, struct test_clock *cb,
			struct gen *g)
{
	uint64_t step = rnd(5) == 0 ? (uint64_t)-(int64_t)S : rnd(3 * S);
	ca->now += step;
	if (cb)
		cb->now = ca->now;
	if (rnd(10) == 0) {
		assert_int_equal(ht_ledger_expire(a), HT_OK);
		if (b)
			assert_int_equal(ht_ledger_expire(b), HT_OK);
		return;
	}
	struct ht_transfer t[48];
	uint16_t ra[48], rb[48];
	size_t n = rnd(48) + 1;
	for (size_t i = 0; i < n; i++)
		t[i] = random_transfer(g);
	transfers_n(a, t, n, ra);
	if (b) {
		transfers_n(b, t, n, rb);
		assert_memory_equal(ra, rb, n * sizeof *ra);
	}
	record_sent(g, t, ra, n);
}

struct log {
	struct ht_event *events;
	size_t events_count, events_cap;
	size_t refusals_count;
};

static void log_take(struct log *lg, struct ht_ledger *l)
{
	struct ht_ledger_changes c = changes(l);
	if (lg->events_count + c.events_count > lg->events_cap) {
		lg->events_cap = (lg->events_count + c.events_count) * 2;
		lg->events = realloc(lg->events,
				     lg->events_cap * sizeof *lg->events);
		assert_non_null(lg->events);
	}
	if (c.events_count)
		memcpy(lg->events + lg->events_count, c.events,
		       c.events_count * sizeof *c.events);
	lg->events_count += c.events_count;
	for (size_t i = 0; i < c.events_count; i++)
		lg->refusals_count += c.events[i].kind == HT_EVENT_REFUSAL;
	ht_ledger_changes_reset(l);
}

/* An independent model of the effects, from the events alone. */
struct model_account {
	ht_u128 id;
	uint64_t dp, dpo, cp, cpo;
};

static struct model_account *model_find(struct model_account *m, size_t n,
					ht_u128 id)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].id == id)
			return &m[i];
	fail_msg("model: no account");
	return NULL;
}

static const struct ht_transfer *event_transfer(const struct log *lg,
						ht_u128 id)
{
	for (size_t i = 0; i < lg->events_count; i++)
		if (lg->events[i].kind == HT_EVENT_TRANSFER &&
		    lg->events[i].u.transfer.id == id)
			return &lg->events[i].u.transfer;
	fail_msg("model: no pending transfer");
	return NULL;
}

static void model_transfer(struct model_account *m, size_t n,
			   const struct log *lg, const struct ht_transfer *t)
{
	struct model_account *dr = model_find(m, n, t->debit_account_id);
	struct model_account *cr = model_find(m, n, t->credit_account_id);
	if (t->flags & (HT_TRANSFER_POST_PENDING | HT_TRANSFER_VOID_PENDING)) {
		const struct ht_transfer *p = event_transfer(lg, t->pending_id);
		dr->dp -= p->amount;
		cr->cp -= p->amount;
		if (t->flags & HT_TRANSFER_VOID_PENDING)
			return;
		dr->dpo += t->amount;
		cr->cpo += t->amount;
	} else if (t->flags & HT_TRANSFER_PENDING) {
		dr->dp += t->amount;
		cr->cp += t->amount;
	} else {
		dr->dpo += t->amount;
		cr->cpo += t->amount;
	}
}

static void model_check(struct ht_ledger *l, const struct log *lg)
{
	size_t n = 0;
	struct model_account *m = calloc(ht_ledger_account_count(l),
					 sizeof *m);
	for (size_t i = 0; i < lg->events_count; i++) {
		const struct ht_event *e = &lg->events[i];
		if (e->kind == HT_EVENT_ACCOUNT) {
			m[n++].id = e->u.account.id;
		} else if (e->kind == HT_EVENT_TRANSFER) {
			model_transfer(m, n, lg, &e->u.transfer);
		} else if (e->kind == HT_EVENT_REFUSAL) {
			continue; /* burns an id, moves no money */
		} else {
			const struct ht_transfer *p =
				event_transfer(lg, e->u.expiry.pending_id);
			model_find(m, n, p->debit_account_id)->dp -= p->amount;
			model_find(m, n, p->credit_account_id)->cp -= p->amount;
		}
	}
	assert_int_equal(n, ht_ledger_account_count(l));
	for (size_t i = 0; i < n; i++)
		BAL(l, m[i].id, m[i].dp, m[i].dpo, m[i].cp, m[i].cpo);
	free(m);
}

static void compare_engines(struct ht_ledger *a, struct ht_ledger *b,
			    const struct gen *g)
{
	assert_int_equal(ht_ledger_account_count(a), ht_ledger_account_count(b));
	assert_int_equal(ht_ledger_transfer_count(a),
			 ht_ledger_transfer_count(b));
	assert_int_equal(ht_ledger_last_timestamp(a),
			 ht_ledger_last_timestamp(b));
	for (ht_u128 id = 1; id <= 2 * R_ACCOUNTS; id++) {
		const struct ht_account *x = ht_ledger_account_get(a, id);
		const struct ht_account *y = ht_ledger_account_get(b, id);
		assert_true((x == NULL) == (y == NULL));
		if (x)
			assert_memory_equal(x, y, sizeof *x);
	}
	for (ht_u128 id = 1; id < g->next_id; id++) {
		const struct ht_transfer *x = ht_ledger_transfer_get(a, id);
		const struct ht_transfer *y = ht_ledger_transfer_get(b, id);
		assert_true((x == NULL) == (y == NULL));
		if (x)
			assert_memory_equal(x, y, sizeof *x);
		assert_int_equal(ht_ledger_pending_state(a, id),
				 ht_ledger_pending_state(b, id));
	}
}

static void assert_same_changes(struct ht_ledger *a, struct ht_ledger *b)
{
	struct ht_ledger_changes x = changes(a), y = changes(b);
	assert_int_equal(x.events_count, y.events_count);
	for (size_t i = 0; i < x.events_count; i++) {
		uint8_t ba[HT_LEAF_BYTES_MAX], bb[HT_LEAF_BYTES_MAX];
		size_t la, lb;
		assert_int_equal(ht_event_encode(&x.events[i], ba, &la), HT_OK);
		assert_int_equal(ht_event_encode(&y.events[i], bb, &lb), HT_OK);
		assert_int_equal(la, lb);
		assert_memory_equal(ba, bb, la);
	}
	assert_int_equal(x.dirty_count, y.dirty_count);
	for (size_t i = 0; i < x.dirty_count; i++)
		assert_memory_equal(x.dirty_accounts[i], y.dirty_accounts[i],
				    sizeof *x.dirty_accounts[i]);
	assert_int_equal(x.history_count, y.history_count);
	assert_memory_equal(x.history, y.history,
			    x.history_count * sizeof *x.history);
}

static void test_replay_equivalence(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	static struct gen g;
	memset(&g, 0, sizeof g);
	g.next_id = 1000;
	rng_state = 0x9e3779b97f4a7c15ull;
	struct log lg = {0};
	random_accounts(l, 1);
	for (int round = 0; round < 150; round++) {
		random_step(l, NULL, &f->clock, NULL, &g);
		if (round == 40)
			random_accounts(l, R_ACCOUNTS + 1);
		if (rnd(3) == 0)
			log_take(&lg, l);
	}
	log_take(&lg, l);
	model_check(l, &lg);

	/* Replay everything into a fresh engine (its clock is irrelevant). */
	struct test_clock c2 = {1};
	struct ht_ledger *r = new_ledger(&c2);
	for (size_t i = 0; i < lg.events_count; i++)
		assert_int_equal(ht_ledger_replay(r, &lg.events[i]), HT_OK);
	assert_int_equal(ht_ledger_check(r), HT_OK);
	struct ht_ledger_changes c = changes(r);
	assert_int_equal(c.events_count + c.dirty_count + c.history_count, 0);
	compare_engines(l, r, &g);
	assert_true(lg.refusals_count > 20);
	assert_true(g.pending_count > 20);

	/* Both continue identically: same results, events and changes
	 * (burned ids, pending states and the expiry heap all agree). */
	for (int round = 0; round < 60; round++) {
		random_step(l, r, &f->clock, &c2, &g);
		assert_same_changes(l, r);
	}
	compare_engines(l, r, &g);
	ht_ledger_destroy(r);
	free(lg.events);
}

static void replay_expect(struct ht_ledger *l, const struct ht_event *e,
			  enum ht_err want)
{
	assert_int_equal(ht_ledger_replay(l, e), want);
}

static struct ht_event ev_account(ht_u128 id, uint64_t ts)
{
	struct ht_event e;
	memset(&e, 0, sizeof e);
	e.kind = HT_EVENT_ACCOUNT;
	e.u.account = acct(id, 0);
	e.u.account.timestamp = ts;
	return e;
}

static struct ht_event ev_transfer(struct ht_transfer t, uint64_t ts)
{
	struct ht_event e;
	memset(&e, 0, sizeof e);
	e.kind = HT_EVENT_TRANSFER;
	e.u.transfer = t;
	e.u.transfer.timestamp = ts;
	return e;
}

static void test_replay_rejects_impossible(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	struct ht_event e = ev_account(1, 100);
	replay_expect(l, &e, HT_OK);
	e = ev_account(2, 100);
	replay_expect(l, &e, HT_ERR_CORRUPT); /* timestamp not increasing */
	e = ev_account(1, 101);
	replay_expect(l, &e, HT_ERR_CORRUPT); /* duplicate */
	e = ev_account(2, 102);
	e.u.account.debits_posted = 1;
	replay_expect(l, &e, HT_ERR_CORRUPT); /* non-zero balance */
	e = ev_account(2, 103);
	replay_expect(l, &e, HT_OK);
	e = ev_transfer(xfer(10, 1, 9, 5), 110);
	replay_expect(l, &e, HT_ERR_CORRUPT); /* unknown account */
	e = ev_transfer(xfer(10, 1, 2, 5), 111);
	replay_expect(l, &e, HT_OK);
	e = ev_transfer(xfer(10, 1, 2, 5), 112);
	replay_expect(l, &e, HT_ERR_CORRUPT); /* exists */
	e = ev_transfer(xfer(11, 1, 2, UINT64_MAX), 113);
	replay_expect(l, &e, HT_ERR_CORRUPT); /* overflow */
	struct ht_transfer post = resolve(12, 10, HT_TRANSFER_POST_PENDING, 5);
	post.debit_account_id = 1;
	post.credit_account_id = 2;
	post.ledger = 156;
	post.code = 1;
	e = ev_transfer(post, 114);
	replay_expect(l, &e, HT_ERR_CORRUPT); /* not a pending transfer */
	e = ev_transfer(pend(13, 1, 2, 7, 1), 115);
	replay_expect(l, &e, HT_OK);
	post.pending_id = 13;
	post.amount = 0;
	e = ev_transfer(post, 116);
	replay_expect(l, &e, HT_ERR_CORRUPT); /* stored amount 0 */
	post.amount = 8;
	e = ev_transfer(post, 117);
	replay_expect(l, &e, HT_ERR_CORRUPT); /* more than reserved */
	struct ht_event x;
	memset(&x, 0, sizeof x);
	x.kind = HT_EVENT_EXPIRY;
	x.u.expiry.pending_id = 13;
	x.u.expiry.timestamp = 118;
	replay_expect(l, &x, HT_ERR_CORRUPT); /* not due yet */
	x.u.expiry.pending_id = 10;
	x.u.expiry.timestamp = 115 + S;
	replay_expect(l, &x, HT_ERR_CORRUPT); /* not pending */
	x.u.expiry.pending_id = 13;
	replay_expect(l, &x, HT_OK);
	x.u.expiry.timestamp = 116 + S;
	replay_expect(l, &x, HT_ERR_CORRUPT); /* expired twice */
	e = ev_transfer(xfer(14, 1, 2, 3), 117 + S);
	e.u.transfer.flags = 0x100;
	replay_expect(l, &e, HT_ERR_CORRUPT); /* unknown flag */
	x.kind = (enum ht_event_kind)7;
	x.u.expiry.timestamp = 118 + S;
	replay_expect(l, &x, HT_ERR_CORRUPT);
	/* Balancing amounts must be what the state allows. */
	struct ht_transfer bal = with_flags(xfer(15, 1, 2, 4),
					    HT_TRANSFER_BALANCING_DEBIT);
	e = ev_transfer(bal, 119 + S);
	replay_expect(l, &e, HT_ERR_CORRUPT); /* account 1 has no credits */
	e = ev_transfer(xfer(16, 2, 1, 10), 120 + S);
	replay_expect(l, &e, HT_OK);
	bal.amount = 6;
	e = ev_transfer(bal, 121 + S);
	replay_expect(l, &e, HT_ERR_CORRUPT); /* room is 10 - 5, not 6 */
	bal.amount = 5;
	e = ev_transfer(bal, 122 + S);
	replay_expect(l, &e, HT_OK);

}

static struct ht_event ev_refusal(ht_u128 id, uint16_t result, uint64_t ts)
{
	struct ht_event e;
	memset(&e, 0, sizeof e);
	e.kind = HT_EVENT_REFUSAL;
	e.u.refusal.id = id;
	e.u.refusal.result = result;
	e.u.refusal.timestamp = ts;
	return e;
}

/* A refusal replays as live application burns: only a burning result,
 * only a free, valid id, only after the previous event; a failing one
 * changes nothing. */
static void test_replay_refusal_rejects(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	struct ht_event e = ev_account(1, 100);
	replay_expect(l, &e, HT_OK);
	e = ev_account(2, 101);
	replay_expect(l, &e, HT_OK);
	e = ev_transfer(xfer(10, 1, 2, 5), 111);
	replay_expect(l, &e, HT_OK);

	e = ev_refusal(10, HT_R_EXCEEDS_CREDITS, 150);
	replay_expect(l, &e, HT_ERR_CORRUPT); /* a committed transfer's id */
	static const uint16_t not_burning[] = {
		HT_R_OK, HT_R_LINKED_EVENT_FAILED, HT_R_LINKED_EVENT_CHAIN_OPEN,
		HT_R_ID_MUST_NOT_BE_ZERO, HT_R_ID_MUST_NOT_BE_INT_MAX,
		HT_R_ID_ALREADY_FAILED, HT_R_EXISTS_WITH_DIFFERENT_FLAGS,
		HT_R_EXISTS, 3, 99, 127, HT_R__MAX, 0xffff};
	for (size_t i = 0; i < sizeof not_burning / sizeof *not_burning; i++) {
		e = ev_refusal(20, not_burning[i], 150);
		replay_expect(l, &e, HT_ERR_CORRUPT);
	}
	e = ev_refusal(0, HT_R_EXCEEDS_CREDITS, 150);
	replay_expect(l, &e, HT_ERR_CORRUPT);
	e = ev_refusal(HT_U128_MAX, HT_R_EXCEEDS_CREDITS, 150);
	replay_expect(l, &e, HT_ERR_CORRUPT);
	e = ev_refusal(20, HT_R_EXCEEDS_CREDITS, 0);
	replay_expect(l, &e, HT_ERR_CORRUPT);
	e = ev_refusal(20, HT_R_EXCEEDS_CREDITS, 111); /* not after event 3 */
	replay_expect(l, &e, HT_ERR_CORRUPT);
	assert_int_equal(ht_ledger_last_timestamp(l), 111);
	e = ev_refusal(20, HT_R_EXCEEDS_CREDITS, 150);
	replay_expect(l, &e, HT_OK);
	assert_int_equal(ht_ledger_last_timestamp(l), 150);
	e = ev_refusal(20, HT_R_EXCEEDS_CREDITS, 151);
	replay_expect(l, &e, HT_ERR_CORRUPT); /* already burned */
	e = ev_transfer(xfer(20, 1, 2, 1), 200 + S);
	replay_expect(l, &e, HT_ERR_CORRUPT); /* a burned id */
	/* Every code that burns live replays. */
	uint64_t ts = 300 + S;
	ht_u128 id = 100;
	for (int r = 0; r < HT_R__MAX; r++) {
		if (!ht_result_name(r) || r == HT_R_OK ||
		    r == HT_R_LINKED_EVENT_FAILED ||
		    r == HT_R_LINKED_EVENT_CHAIN_OPEN ||
		    r == HT_R_ID_MUST_NOT_BE_ZERO ||
		    r == HT_R_ID_MUST_NOT_BE_INT_MAX ||
		    (r >= HT_R_ID_ALREADY_FAILED && r <= HT_R_EXISTS))
			continue;
		e = ev_refusal(id++, (uint16_t)r, ts++);
		replay_expect(l, &e, HT_OK);
	}
	assert_int_equal(changes(l).events_count, 0);
	assert_int_equal(ht_ledger_check(l), HT_OK);
	EXPECT(transfer1(l, xfer(20, 1, 2, 1)), HT_R_ID_ALREADY_FAILED);
	EXPECT(transfer1(l, xfer(100, 1, 2, 1)), HT_R_ID_ALREADY_FAILED);
}

/* ---- the engine's own guards ------------------------------------------- */

static void test_check_detects_corruption(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	make_accounts(l, 2, NULL);
	EXPECT(transfer1(l, pend(10, 1, 2, 5, 0)), HT_R_OK);
	EXPECT(transfer1(l, xfer(11, 1, 2, 5)), HT_R_OK);
	assert_int_equal(ht_ledger_check(l), HT_OK);
	struct ht_account *a = (struct ht_account *)A(l, 1);
	a->debits_posted++;
	assert_int_equal(ht_ledger_check(l), HT_ERR_CORRUPT);
	a->debits_posted--;
	a->debits_pending--;
	assert_int_equal(ht_ledger_check(l), HT_ERR_CORRUPT);
	a->debits_pending++;
	struct ht_account *b = (struct ht_account *)A(l, 2);
	b->flags |= HT_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS;
	assert_int_equal(ht_ledger_check(l), HT_ERR_CORRUPT);
	b->flags = 0;
	assert_int_equal(ht_ledger_check(l), HT_OK);
}

static void test_api_errors(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	make_accounts(l, 2, NULL);
	static struct ht_transfer big[HT_BATCH_EVENTS_MAX + 1];
	static uint16_t r[HT_BATCH_EVENTS_MAX + 1];
	assert_int_equal(ht_ledger_create_transfers(l, big,
						    HT_BATCH_EVENTS_MAX + 1, r),
			 HT_ERR_LIMIT);
	assert_int_equal(ht_ledger_create_transfers(l, NULL, 0, NULL), HT_OK);
	assert_int_equal(ht_ledger_create_transfers(l, NULL, 1, r),
			 HT_ERR_INVALID);
	struct ht_transfer t = xfer(10, 1, 2, 1);
	t.flags = 0x100;
	assert_int_equal(ht_ledger_create_transfers(l, &t, 1, r),
			 HT_ERR_INVALID);
	t = xfer(10, 1, 2, 1);
	t.user_data_len = HT_USER_DATA_BYTES_MAX + 1;
	assert_int_equal(ht_ledger_create_transfers(l, &t, 1, r),
			 HT_ERR_INVALID);
	struct ht_account a = acct(3, 0x20);
	assert_int_equal(ht_ledger_create_accounts(l, &a, 1, r), HT_ERR_INVALID);
	assert_int_equal(ht_ledger_transfer_count(l), 0);
	assert_null(ht_ledger_account_get(l, 3));

	ht_ledger_poison(l);
	t = xfer(10, 1, 2, 1);
	assert_int_equal(ht_ledger_create_transfers(l, &t, 1, r),
			 HT_ERR_POISONED);
	assert_int_equal(ht_ledger_create_accounts(l, &a, 1, r),
			 HT_ERR_POISONED);
	assert_int_equal(ht_ledger_expire(l), HT_ERR_POISONED);
	struct ht_event e = ev_account(9, T0 * 2);
	assert_int_equal(ht_ledger_replay(l, &e), HT_ERR_POISONED);
	e = ev_refusal(5, HT_R_EXCEEDS_CREDITS, T0 * 2);
	assert_int_equal(ht_ledger_replay(l, &e), HT_ERR_POISONED);
	assert_int_equal(ht_ledger_transfer_count(l), 0);
	/* Reads still work. */
	assert_non_null(ht_ledger_account_get(l, 1));
	ht_ledger_destroy(NULL);
}

/* Same clock and input, same everything. */
static void test_deterministic(void **state)
{
	struct fx *f = *state;
	struct test_clock c2 = {T0};
	struct ht_ledger *b = new_ledger(&c2);
	static struct gen g;
	memset(&g, 0, sizeof g);
	g.next_id = 1000;
	rng_state = 12345;
	random_accounts(f->l, 1);
	rng_state = 12345;
	random_accounts(b, 1);
	assert_same_changes(f->l, b);
	for (int round = 0; round < 40; round++) {
		random_step(f->l, b, &f->clock, &c2, &g);
		assert_same_changes(f->l, b);
	}
	ht_ledger_destroy(b);
}

/* ---- failure injection ------------------------------------------------- */

struct snapshot {
	size_t accounts, transfers, events, dirty, history;
	uint64_t last;
	struct ht_account acct[8];
};

static struct snapshot take(struct ht_ledger *l)
{
	struct snapshot s;
	memset(&s, 0, sizeof s);
	s.accounts = ht_ledger_account_count(l);
	s.transfers = ht_ledger_transfer_count(l);
	struct ht_ledger_changes c = changes(l);
	s.events = c.events_count;
	s.dirty = c.dirty_count;
	s.history = c.history_count;
	s.last = ht_ledger_last_timestamp(l);
	for (ht_u128 id = 1; id <= 8; id++)
		s.acct[id - 1] = *A(l, id);
	return s;
}

static struct ht_transfer nomem_batch[600];

static size_t build_nomem_batch(void)
{
	size_t n = 0;
	for (size_t i = 0; i < 600; i++) {
		ht_u128 id = 5000 + i;
		switch (i % 6) {
		case 0:
			nomem_batch[n++] = pend(id, 1 + i % 7, 8, 3, 2);
			break;
		case 1:
			nomem_batch[n++] = resolve(id, id - 1,
						   HT_TRANSFER_POST_PENDING, 0);
			break;
		case 2:
			nomem_batch[n++] = xfer(id, 2, 3, 0); /* burns */
			break;
		case 3:
			nomem_batch[n++] = with_flags(xfer(id, 4, 5, 1),
						      HT_TRANSFER_LINKED);
			break;
		default:
			nomem_batch[n++] = xfer(id, 5, 6, 2);
		}
	}
	return n;
}

static void test_nomem_leaves_state_unchanged(void **state)
{
	struct fx *f = *state;
	struct ht_ledger *l = f->l;
	const uint16_t flags[8] = {0, 0, 0, 0, HT_ACCOUNT_HISTORY};
	make_accounts(l, 8, flags);
	EXPECT(transfer1(l, pend(1, 1, 2, 10, 1)), HT_R_OK);
	EXPECT(transfer1(l, pend(2, 3, 2, 10, 1)), HT_R_OK);
	f->clock.now += 5 * S; /* both expire in the next call */
	size_t n = build_nomem_batch();

	/* The same call on an engine without injection, for reference. */
	struct test_clock c2 = f->clock;
	struct ht_ledger *ref = new_ledger(&c2);
	c2.now = T0;
	make_accounts(ref, 8, flags);
	EXPECT(transfer1(ref, pend(1, 1, 2, 10, 1)), HT_R_OK);
	EXPECT(transfer1(ref, pend(2, 3, 2, 10, 1)), HT_R_OK);
	c2.now = f->clock.now;
	static uint16_t want[600], got[600];
	transfers_n(ref, nomem_batch, n, want);

	int failures = 0;
	for (long k = 0;; k++) {
		assert_true(k < 1000);
		struct snapshot before = take(l);
		ht_ledger_test_fail_alloc_after(l, k);
		enum ht_err err = ht_ledger_create_transfers(l, nomem_batch, n,
							     got);
		ht_ledger_test_fail_alloc_after(l, -1);
		if (err == HT_OK)
			break;
		assert_int_equal(err, HT_ERR_NOMEM);
		failures++;
		struct snapshot after = take(l);
		assert_memory_equal(&before, &after, sizeof before);
		assert_int_equal(ht_ledger_check(l), HT_OK);
	}
	assert_true(failures > 3);
	note(got, n);
	assert_memory_equal(got, want, n * sizeof *got);
	assert_same_changes(l, ref);
	ht_ledger_destroy(ref);

	/* Accounts and replay fail cleanly too. */
	static struct ht_account a[300];
	for (size_t i = 0; i < 300; i++)
		a[i] = acct(100 + i, 0);
	for (long k = 0;; k++) {
		size_t count = ht_ledger_account_count(l);
		ht_ledger_test_fail_alloc_after(l, k);
		enum ht_err err = ht_ledger_create_accounts(l, a, 300, got);
		ht_ledger_test_fail_alloc_after(l, -1);
		if (err == HT_OK)
			break;
		assert_int_equal(err, HT_ERR_NOMEM);
		assert_int_equal(ht_ledger_account_count(l), count);
		assert_null(ht_ledger_account_get(l, 100));
	}
	assert_int_equal(ht_ledger_account_count(l), 308);
	struct test_clock c3 = {1};
	struct ht_ledger *r = new_ledger(&c3);
	struct ht_event e = ev_account(1, 10);
	ht_ledger_test_fail_alloc_after(r, 0);
	assert_int_equal(ht_ledger_replay(r, &e), HT_ERR_NOMEM);
	assert_null(ht_ledger_account_get(r, 1));
	ht_ledger_test_fail_alloc_after(r, -1);
	assert_int_equal(ht_ledger_replay(r, &e), HT_OK);
	ht_ledger_destroy(r);
}

/* ---- coverage ---------------------------------------------------------- */

/* Runs last: every defined result code was produced by some test. */
static void test_every_result_code_seen(void **state)
{
	(void)state;
	int missing = 0;
	for (int r = 0; r < HT_R__MAX; r++) {
		if (!ht_result_name(r) || seen[r])
			continue;
		fprintf(stderr, "result never produced: %s\n",
			ht_result_name(r));
		missing++;
	}
	assert_int_equal(missing, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_accounts),
		T(test_accounts_each_in_creation_order),
		T(test_transfer_validation),
		T(test_transfer_validation_post_void),
		T(test_transfer_accounts),
		T(test_transfer_exists),
		T(test_transfer_exists_post),
		T(test_burned_ids),
		T(test_refusals_in_input_order),
		T(test_burned_ids_survive_replay),
		T(test_screened),
		T(test_chain_all_ok),
		T(test_chain_failure_undoes),
		T(test_chains_in_one_batch),
		T(test_chain_open),
		T(test_two_phase),
		T(test_two_phase_checks),
		T(test_expiry),
		T(test_expired_within_batch),
		T(test_expiry_ties),
		T(test_balancing),
		T(test_limits),
		T(test_closing),
		T(test_overflow),
		T(test_timestamps),
		T(test_changes),
		T(test_changes_survive_growth),
		T(test_replay_equivalence),
		T(test_replay_rejects_impossible),
		T(test_replay_refusal_rejects),
		T(test_check_detects_corruption),
		T(test_api_errors),
		T(test_deterministic),
		T(test_nomem_leaves_state_unchanged),
		cmocka_unit_test(test_every_result_code_seen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

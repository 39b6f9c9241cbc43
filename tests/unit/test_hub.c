/*
 * test_hub.c — the hub over a real store in a temporary directory: account
 * owners (durable with their accounts, never without), refusal events as
 * journal leaves and the leaf-index bookkeeping hub.h promises the server,
 * range proofs of the last commit served from memory
 * (ht_hub_prove_range_recent) against the same proofs from the store, and
 * risk decisions stored with their leaves (one block per commit, and the
 * rows of schema 3 still read).
 *
 * Owner: core. Each test makes its own store (huitong init) and removes it.
 * HT_SEED sets the seed of the random ranges (default fixed; printed).
 */
#include <ftw.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "huitong/hub.h"
#include "huitong/merkle.h"
#include "store/risk_block.h"

#define T0 1700000000000000000ull /* ns */
#define S 1000000000ull

/* ---- fixture ------------------------------------------------------------ */

struct fx {
	char dir[64];
	uint64_t now;
	struct ht_clock clock;
	struct ht_hub *hub;
};

/* Every event gets its own timestamp anyway; the clock only has to move
 * for expiry. */
static uint64_t test_now(void *ctx)
{
	return *(uint64_t *)ctx;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static struct ht_hub *hub_open(struct fx *f, bool readonly)
{
	struct ht_hub_open_options o = {.clock = &f->clock,
					.readonly = readonly};
	struct ht_hub *hub = NULL;
	assert_int_equal(ht_hub_open(f->dir, &o, &hub), HT_OK);
	return hub;
}

static void reopen(struct fx *f)
{
	ht_hub_close(f->hub);
	f->hub = hub_open(f, false);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	assert_non_null(f);
	snprintf(f->dir, sizeof f->dir, "/tmp/ht-test-hub-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->now = T0;
	f->clock = (struct ht_clock){test_now, &f->now};
	struct ht_hub_init_options io = {0};
	assert_int_equal(ht_hub_init(f->dir, &io), HT_OK);
	f->hub = hub_open(f, false);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	ht_hub_close(f->hub);
	nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static struct ht_account account(ht_u128 id, uint32_t ledger)
{
	struct ht_account a;
	memset(&a, 0, sizeof a);
	a.id = id;
	a.ledger = ledger;
	a.code = 1;
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

static void commit(struct fx *f, struct ht_sth *head)
{
	assert_int_equal(ht_hub_commit(f->hub, head), HT_OK);
}

static void expect_owner(struct ht_hub *hub, ht_u128 id, const char *want)
{
	const char *got = ht_hub_account_owner(hub, id);
	if (!want) {
		if (got)
			fail_msg("account %u: owner %s, expected none",
				 (unsigned)id, got);
		return;
	}
	if (!got)
		fail_msg("account %u: no owner, expected %s", (unsigned)id, want);
	assert_string_equal(got, want);
}

static size_t events_count(struct ht_hub *hub)
{
	struct ht_ledger_changes c;
	ht_ledger_changes(ht_hub_ledger(hub), &c);
	return c.events_count;
}

/* ---- owners ------------------------------------------------------------- */

static void test_owner_valid(void **state)
{
	(void)state;
	assert_true(ht_owner_valid("bank-a", 6));
	assert_true(ht_owner_valid("A.b_c-9", 7));
	char long_id[HT_OWNER_BYTES_MAX + 2];
	memset(long_id, 'x', sizeof long_id);
	assert_true(ht_owner_valid(long_id, HT_OWNER_BYTES_MAX));
	assert_false(ht_owner_valid(long_id, HT_OWNER_BYTES_MAX + 1));
	assert_false(ht_owner_valid("", 0));
	assert_false(ht_owner_valid(NULL, 3));
	assert_false(ht_owner_valid("bank a", 6));
	assert_false(ht_owner_valid("bank/a", 6));
	assert_false(ht_owner_valid("bank\0a", 6));
	assert_false(ht_owner_valid("b\xc3\xa9", 3));
}

static void test_owners_survive_reopen(void **state)
{
	struct fx *f = *state;
	struct ht_account a[4] = {account(1, 156), account(2, 156), account(3, 0),
				  account(1, 156)};
	uint16_t r[4];
	assert_int_equal(ht_hub_create_accounts_owned(f->hub, a, 4, "bank-a",
						      r),
			 HT_OK);
	assert_int_equal(r[0], HT_R_OK);
	assert_int_equal(r[1], HT_R_OK);
	assert_int_equal(r[2], HT_R_LEDGER_MUST_NOT_BE_ZERO);
	assert_int_equal(r[3], HT_R_EXISTS);
	/* Another participant: an existing id keeps its first owner. */
	struct ht_account b[2] = {account(1, 156), account(4, 156)};
	assert_int_equal(ht_hub_create_accounts_owned(f->hub, b, 2, "bank-b",
						      r),
			 HT_OK);
	assert_int_equal(r[0], HT_R_EXISTS);
	assert_int_equal(r[1], HT_R_OK);
	struct ht_account c = account(5, 156);
	assert_int_equal(ht_hub_create_accounts(f->hub, &c, 1, r), HT_OK);
	assert_int_equal(r[0], HT_R_OK);
	/* A bad owner refuses the whole call. */
	struct ht_account d = account(6, 156);
	assert_int_equal(ht_hub_create_accounts_owned(f->hub, &d, 1, "bank a",
						      r),
			 HT_ERR_INVALID);
	assert_int_equal(ht_hub_create_accounts_owned(f->hub, &d, 1, "", r),
			 HT_ERR_INVALID);
	assert_null(ht_ledger_account_get(ht_hub_ledger(f->hub), 6));
	/* Visible at once, like the account itself. */
	expect_owner(f->hub, 1, "bank-a");
	expect_owner(f->hub, 2, "bank-a");
	expect_owner(f->hub, 3, NULL);
	expect_owner(f->hub, 4, "bank-b");
	expect_owner(f->hub, 5, NULL);
	expect_owner(f->hub, 6, NULL);
	/* Interned: one copy per participant. */
	assert_ptr_equal(ht_hub_account_owner(f->hub, 1),
			 ht_hub_account_owner(f->hub, 2));
	commit(f, NULL);

	for (int round = 0; round < 2; round++) {
		reopen(f);
		expect_owner(f->hub, 1, "bank-a");
		expect_owner(f->hub, 2, "bank-a");
		expect_owner(f->hub, 3, NULL);
		expect_owner(f->hub, 4, "bank-b");
		expect_owner(f->hub, 5, NULL);
		expect_owner(f->hub, 99, NULL);
	}
	/* A reader answers from the store. */
	struct ht_hub *ro = hub_open(f, true);
	expect_owner(ro, 1, "bank-a");
	expect_owner(ro, 4, "bank-b");
	expect_owner(ro, 5, NULL);
	expect_owner(ro, 99, NULL);
	ht_hub_close(ro);
	char problem[256];
	assert_int_equal(ht_hub_verify(f->dir, problem, sizeof problem, NULL,
				       NULL),
			 HT_OK);
}

static void test_uncommitted_owners_vanish(void **state)
{
	struct fx *f = *state;
	struct ht_account a[2] = {account(1, 156), account(2, 156)};
	uint16_t r[2];
	assert_int_equal(ht_hub_create_accounts_owned(f->hub, a, 2, "bank-a",
						      r),
			 HT_OK);
	commit(f, NULL);
	struct ht_account b[2] = {account(3, 156), account(4, 156)};
	assert_int_equal(ht_hub_create_accounts_owned(f->hub, b, 2, "bank-b",
						      r),
			 HT_OK);
	expect_owner(f->hub, 3, "bank-b");
	/* A crash: close without commit. */
	reopen(f);
	assert_null(ht_ledger_account_get(ht_hub_ledger(f->hub), 3));
	expect_owner(f->hub, 3, NULL);
	expect_owner(f->hub, 4, NULL);
	expect_owner(f->hub, 1, "bank-a");
	/* The ids are free again, for anyone. */
	struct ht_account c[2] = {account(4, 156), account(3, 156)};
	assert_int_equal(ht_hub_create_accounts_owned(f->hub, c, 2, "bank-c",
						      r),
			 HT_OK);
	assert_int_equal(r[0], HT_R_OK);
	assert_int_equal(r[1], HT_R_OK);
	commit(f, NULL);
	reopen(f);
	expect_owner(f->hub, 3, "bank-c");
	expect_owner(f->hub, 4, "bank-c");
	expect_owner(f->hub, 2, "bank-a");
}

/* ---- refusals and leaf indexes ---------------------------------------- */

/* events[k] of the changes became leaf first + k, byte for byte. */
static void expect_leaves(struct ht_hub *hub, const struct ht_event *ev,
			  size_t n, uint64_t first)
{
	for (size_t k = 0; k < n; k++) {
		uint8_t want[HT_LEAF_BYTES_MAX], got[HT_LEAF_BYTES_MAX];
		size_t want_len, got_len;
		assert_int_equal(ht_event_encode(&ev[k], want, &want_len), HT_OK);
		assert_int_equal(ht_hub_leaf(hub, first + k, got, &got_len),
				 HT_OK);
		assert_int_equal(got_len, want_len);
		assert_memory_equal(got, want, want_len);
	}
}

/* Accounts 1 (debits must not exceed credits) and 2, uncommitted. */
static void two_accounts(struct fx *f)
{
	struct ht_account a[2] = {account(1, 156), account(2, 156)};
	a[0].flags = HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS;
	uint16_t r[2];
	assert_int_equal(ht_hub_create_accounts(f->hub, a, 2, r), HT_OK);
}

static void test_refusal_leaves(void **state)
{
	struct fx *f = *state;
	uint16_t r[8];
	two_accounts(f);
	struct ht_transfer fund[2] = {xfer(10, 2, 1, 100), xfer(11, 2, 1, 1)};
	fund[1].flags = HT_TRANSFER_PENDING;
	fund[1].timeout_s = 1;
	assert_int_equal(ht_hub_create_transfers(f->hub, fund, 2, r), HT_OK);
	struct ht_sth h0;
	commit(f, &h0);
	f->now += 2 * S; /* pending 11 is due: the next call expires it first */

	/* Two requests in one group commit. */
	struct ht_transfer t1[4] = {xfer(20, 1, 2, 10), xfer(21, 1, 2, 1000),
				    xfer(20, 1, 2, 10), xfer(22, 1, 2, 0)};
	size_t before1 = events_count(f->hub);
	assert_int_equal(ht_hub_create_transfers(f->hub, t1, 4, r), HT_OK);
	assert_int_equal(r[0], HT_R_OK);
	assert_int_equal(r[1], HT_R_EXCEEDS_CREDITS);
	assert_int_equal(r[2], HT_R_EXISTS);
	assert_int_equal(r[3], HT_R_AMOUNT_MUST_NOT_BE_ZERO);
	size_t after1 = events_count(f->hub);
	assert_int_equal(before1, 0);
	assert_int_equal(after1, 4); /* expiry, ok, refusal, refusal */
	struct ht_transfer t2[2] = {xfer(30, 1, 2, 5), xfer(21, 1, 2, 1)};
	t2[0].flags = HT_TRANSFER_LINKED;
	assert_int_equal(ht_hub_create_transfers(f->hub, t2, 2, r), HT_OK);
	assert_int_equal(r[0], HT_R_LINKED_EVENT_FAILED);
	assert_int_equal(r[1], HT_R_ID_ALREADY_FAILED);
	assert_int_equal(events_count(f->hub), after1); /* nothing emitted */
	struct ht_transfer t3 = xfer(31, 1, 2, 5000);
	assert_int_equal(ht_hub_create_transfers(f->hub, &t3, 1, r), HT_OK);
	assert_int_equal(events_count(f->hub), after1 + 1);

	struct ht_ledger_changes c;
	ht_ledger_changes(ht_hub_ledger(f->hub), &c);
	struct ht_event ev[8];
	assert_true(c.events_count <= 8);
	memcpy(ev, c.events, c.events_count * sizeof *ev);
	size_t n = c.events_count;
	assert_int_equal(ev[0].kind, HT_EVENT_EXPIRY);
	assert_int_equal(ev[1].kind, HT_EVENT_TRANSFER);
	assert_int_equal(ev[2].kind, HT_EVENT_REFUSAL);
	assert_int_equal(ev[2].u.refusal.result, HT_R_EXCEEDS_CREDITS);
	assert_int_equal(ev[3].kind, HT_EVENT_REFUSAL);
	assert_true(ev[3].u.refusal.id == 22);
	assert_int_equal(ev[4].kind, HT_EVENT_REFUSAL);
	assert_true(ev[4].u.refusal.id == 31);
	struct ht_sth h1;
	commit(f, &h1);
	assert_int_equal(h1.tree_size, h0.tree_size + n);
	expect_leaves(f->hub, ev, n, h0.tree_size);

	/* The burned ids come back from the journal alone. */
	reopen(f);
	struct ht_transfer again[3] = {xfer(21, 2, 1, 1), xfer(22, 2, 1, 1),
				       xfer(31, 2, 1, 1)};
	assert_int_equal(ht_hub_create_transfers(f->hub, again, 3, r), HT_OK);
	for (int i = 0; i < 3; i++)
		assert_int_equal(r[i], HT_R_ID_ALREADY_FAILED);
	assert_int_equal(events_count(f->hub), 0);
	char problem[256];
	assert_int_equal(ht_hub_verify(f->dir, problem, sizeof problem, NULL,
				       NULL),
			 HT_OK);
}

/* ---- risk decisions ------------------------------------------------------- */

/* The decision the test notes for transfer id: varied fields. */
static struct ht_risk_row decision_of(ht_u128 id)
{
	struct ht_risk_row r;
	memset(&r, 0, sizeof r);
	r.id = id;
	r.debit_account_id = 1;
	r.credit_account_id = 2;
	r.time_ms = 1700000000000 + (int64_t)id;
	r.score = (double)(id % 97) / 97.0;
	r.decision = (uint8_t)(id % 3);
	r.has_rules = id % 4 != 0;
	r.rules_version = (uint32_t)id % 7;
	snprintf(r.reasons, sizeof r.reasons, id % 3 ? "[\"r%u\"]" : "[]",
		 (unsigned)(id % 5));
	snprintf(r.model_version, sizeof r.model_version, "%s",
		 id % 11 ? "m-1" : "");
	return r;
}

static void expect_decision(struct ht_hub *hub, ht_u128 id)
{
	struct ht_risk_row want = decision_of(id), got;
	assert_int_equal(ht_hub_risk_get(hub, id, &got), HT_OK);
	assert_true(got.id == id);
	assert_true(got.debit_account_id == want.debit_account_id);
	assert_true(got.credit_account_id == want.credit_account_id);
	assert_true(got.time_ms == want.time_ms);
	assert_true(got.score == want.score);
	assert_int_equal(got.decision, want.decision);
	assert_int_equal(got.has_rules, want.has_rules);
	assert_int_equal(got.rules_version, want.rules_version);
	assert_string_equal(got.reasons, want.reasons);
	assert_string_equal(got.model_version, want.model_version);
}

/* Transfers first..first+n-1 (every third refused: too large), each with
 * its decision noted on its event, committed. */
static void decide_and_commit(struct fx *f, ht_u128 first, size_t n)
{
	struct ht_transfer t[64];
	uint16_t r[64];
	assert_true(n <= 64);
	for (size_t i = 0; i < n; i++)
		t[i] = xfer(first + i, 1, 2, i % 3 == 2 ? 1000000 : 1);
	assert_int_equal(events_count(f->hub), 0);
	assert_int_equal(ht_hub_create_transfers(f->hub, t, n, r), HT_OK);
	assert_int_equal(events_count(f->hub), n);
	for (size_t i = 0; i < n; i++) {
		struct ht_risk_row d = decision_of(first + i);
		assert_int_equal(ht_hub_risk_note(f->hub, i, &d), HT_OK);
	}
	struct ht_risk_row again = decision_of(first);
	assert_int_equal(ht_hub_risk_note(f->hub, 0, &again), HT_ERR_INVALID);
	struct ht_sth h;
	commit(f, &h);
}

struct each_ctx {
	ht_u128 ids[256];
	size_t n;
};

static int collect(void *ctx, const struct ht_risk_row *row)
{
	struct each_ctx *c = ctx;
	assert_true(c->n < 256);
	c->ids[c->n++] = row->id;
	return 0;
}

static void test_risk_decisions(void **state)
{
	struct fx *f = *state;
	uint16_t r[2];
	two_accounts(f);
	struct ht_transfer fund = xfer(5, 2, 1, 1000);
	assert_int_equal(ht_hub_create_transfers(f->hub, &fund, 1, r), HT_OK);
	struct ht_sth h;
	commit(f, &h);

	/* A row as schema 3 stored it, for transfer 7: still read. */
	struct ht_transfer old = xfer(7, 1, 2, 1);
	assert_int_equal(ht_hub_create_transfers(f->hub, &old, 1, r), HT_OK);
	commit(f, &h);
	char path[128];
	snprintf(path, sizeof path, "%s/huitong.db", f->dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	char sql[512];
	snprintf(sql, sizeof sql,
		 "INSERT INTO risk_decision VALUES (%llu,"
		 " x'00000000000000000000000000000007',"
		 " x'00000000000000000000000000000001',"
		 " x'00000000000000000000000000000002', 1, 0.5, '[\"v3\"]',"
		 " NULL, 'm-0', 42)",
		 (unsigned long long)(h.tree_size - 1));
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	decide_and_commit(f, 100, 40);
	decide_and_commit(f, 200, 1);
	decide_and_commit(f, 300, 64);
	reopen(f);
	for (ht_u128 id = 100; id < 140; id++)
		expect_decision(f->hub, id);
	expect_decision(f->hub, 200);
	for (ht_u128 id = 300; id < 364; id++)
		expect_decision(f->hub, id);
	struct ht_risk_row row;
	assert_int_equal(ht_hub_risk_get(f->hub, 5, &row), HT_ERR_NOT_FOUND);
	assert_int_equal(ht_hub_risk_get(f->hub, 999, &row), HT_ERR_NOT_FOUND);
	assert_int_equal(ht_hub_risk_get(f->hub, 7, &row), HT_OK);
	assert_string_equal(row.reasons, "[\"v3\"]");
	assert_true(row.time_ms == 42);

	/* Reviews (decision 1) in leaf order, the schema-3 row first. */
	struct each_ctx c = {.n = 0};
	assert_int_equal(ht_hub_risk_each(f->hub, 1 /* review */, collect,
					  &c), HT_OK);
	size_t k = 0;
	assert_true(c.ids[k++] == 7);
	for (ht_u128 id = 100; id < 364; id++)
		if ((id < 140 || id == 200 || id >= 300) && id % 3 == 1)
			assert_true(c.ids[k++] == id);
	assert_int_equal(c.n, k);
	c.n = 0;
	assert_int_equal(ht_hub_risk_each(f->hub, -1, collect, &c), HT_OK);
	assert_int_equal(c.n, 1 + 40 + 1 + 64);
}

/* A block read back is checked: every truncation and a bad decision or
 * text offset is corrupt, never read past. */
static void test_risk_block_checks(void **state)
{
	(void)state;
	struct ht_store_risk_row rows[3];
	memset(rows, 0, sizeof rows);
	for (int i = 0; i < 3; i++) {
		rows[i].leaf = 10 + (uint64_t)i;
		rows[i].reasons = i == 1 ? "[\"x\"]" : "[]";
		rows[i].reasons_len = strlen(rows[i].reasons);
		rows[i].model_version = "m";
		rows[i].model_len = 1;
	}
	uint8_t b[512];
	size_t max = risk_block_bytes_max(rows, 3);
	assert_true(max <= sizeof b);
	size_t len = risk_block_encode(rows, 3, b);
	assert_true(len < max); /* "[]" and "m" stored once */
	uint32_t count, sb;
	assert_int_equal(risk_block_header(b, len, &count, &sb), HT_OK);
	assert_int_equal(count, 3);
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(risk_block_header(b, cut, &count, &sb),
				 HT_ERR_CORRUPT);
	struct ht_risk_row out;
	assert_int_equal(risk_block_header(b, len, &count, &sb), HT_OK);
	assert_int_equal(risk_block_row(b, count, sb, 1, &out), HT_OK);
	assert_string_equal(out.reasons, "[\"x\"]");
	assert_string_equal(out.model_version, "m");
	uint8_t *rec = b + RISK_BLOCK_HEADER_BYTES + RISK_BLOCK_RECORD_BYTES;
	rec[76] = 3; /* decision */
	assert_int_equal(risk_block_row(b, count, sb, 1, &out), HT_ERR_CORRUPT);
	rec[76] = 0;
	rec[80] = (uint8_t)sb; /* reasons past the strings */
	assert_int_equal(risk_block_row(b, count, sb, 1, &out), HT_ERR_CORRUPT);
}

/* ---- range proofs of the last commit ------------------------------------ */

static uint64_t rng_state;

static uint64_t rnd(uint64_t n)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (z ^ (z >> 31)) % n;
}

/* Leaf hashes of [first, first + count), from the stored leaves. */
static uint8_t (*leaf_hashes(struct ht_hub *hub, struct ht_hasher *h,
			     uint64_t first, uint64_t count))[HT_HASH_BYTES]
{
	uint8_t (*out)[HT_HASH_BYTES] = malloc(count * HT_HASH_BYTES);
	assert_non_null(out);
	for (uint64_t i = 0; i < count; i++) {
		uint8_t d[HT_LEAF_BYTES_MAX];
		size_t len;
		assert_int_equal(ht_hub_leaf(hub, first + i, d, &len), HT_OK);
		assert_int_equal(ht_merkle_leaf_hash(h, d, len, out[i]), HT_OK);
	}
	return out;
}

/* Recent and stored proofs agree and verify against the head's root. */
static void check_range(struct ht_hub *hub, struct ht_hasher *h,
			const struct ht_sth *head, uint64_t first,
			uint64_t count)
{
	uint8_t p1[HT_PROOF_HASHES_MAX][HT_HASH_BYTES];
	uint8_t p2[HT_PROOF_HASHES_MAX][HT_HASH_BYTES];
	size_t n1 = 0, n2 = 0;
	assert_int_equal(ht_hub_prove_range_recent(hub, first, count, p1, &n1),
			 HT_OK);
	assert_int_equal(ht_hub_prove_range(hub, first, count, head->tree_size,
					    p2, &n2),
			 HT_OK);
	assert_int_equal(n1, n2);
	assert_memory_equal(p1, p2, n1 * HT_HASH_BYTES);
	uint8_t (*lh)[HT_HASH_BYTES] = leaf_hashes(hub, h, first, count);
	assert_int_equal(ht_merkle_verify_range(h, first, count,
						head->tree_size,
						(const uint8_t (*)[HT_HASH_BYTES])lh,
						(const uint8_t (*)[HT_HASH_BYTES])p1,
						n1, head->root),
			 HT_OK);
	if (n1) { /* a wrong hash does not verify */
		p1[n1 / 2][0] ^= 1;
		assert_int_equal(ht_merkle_verify_range(h, first, count,
							head->tree_size,
							(const uint8_t (*)[HT_HASH_BYTES])lh,
							(const uint8_t (*)[HT_HASH_BYTES])p1,
							n1, head->root),
				 HT_ERR_VERIFY);
	}
	free(lh);
}

static void expect_invalid(struct ht_hub *hub, uint64_t first, uint64_t count)
{
	uint8_t p[HT_PROOF_HASHES_MAX][HT_HASH_BYTES];
	size_t n = 7;
	assert_int_equal(ht_hub_prove_range_recent(hub, first, count, p, &n),
			 HT_ERR_INVALID);
	assert_int_equal(n, 0);
}

/* Append n transfers (every 7th refused) in requests of random size. */
static void append_events(struct fx *f, size_t n, ht_u128 *next_id)
{
	static struct ht_transfer t[HT_BATCH_EVENTS_MAX];
	static uint16_t r[HT_BATCH_EVENTS_MAX];
	while (n > 0) {
		size_t k = 1 + rnd(n < 300 ? n : 300);
		for (size_t i = 0; i < k; i++) {
			ht_u128 id = (*next_id)++;
			t[i] = xfer(id, 1 + id % 2, 2 - id % 2,
				    id % 7 == 0 ? 0 : 1);
		}
		assert_int_equal(ht_hub_create_transfers(f->hub, t, k, r), HT_OK);
		n -= k;
	}
}

static void test_prove_range_recent(void **state)
{
	struct fx *f = *state;
	const char *seed_s = getenv("HT_SEED");
	rng_state = seed_s ? strtoull(seed_s, NULL, 10) : 20260301;
	printf("test_prove_range_recent: HT_SEED=%" PRIu64 "\n", rng_state);
	struct ht_hasher *h;
	struct ht_sth head;
	assert_int_equal(ht_hub_head(f->hub, &head), HT_OK);
	assert_int_equal(ht_hasher_create(head.hash, &h), HT_OK);
	expect_invalid(f->hub, 0, 1); /* no commit yet */
	struct ht_account a[2] = {account(1, 156), account(2, 156)};
	uint16_t r[2];
	assert_int_equal(ht_hub_create_accounts(f->hub, a, 2, r), HT_OK);
	commit(f, &head);
	check_range(f->hub, h, &head, 0, 2);
	check_range(f->hub, h, &head, 1, 1);

	/* Sizes around powers of two and the hashing thread's threshold. */
	static const size_t sizes[] = {1, 1, 2, 3, 5, 14, 16, 17, 31, 64, 100,
				       255, 256, 257, 1000, 1, 4096, 3, 2047};
	ht_u128 next_id = 100;
	for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
		uint64_t prev = head.tree_size;
		append_events(f, sizes[s], &next_id);
		commit(f, &head);
		assert_int_equal(head.tree_size, prev + sizes[s]);
		uint64_t size = sizes[s];
		check_range(f->hub, h, &head, prev, size); /* the whole commit */
		check_range(f->hub, h, &head, prev + size - 1, 1);
		for (int i = 0; i < 24; i++) {
			uint64_t first = prev + rnd(size);
			uint64_t count = 1 + rnd(head.tree_size - first);
			check_range(f->hub, h, &head, first, count);
		}
		/* Outside the last commit, or empty. */
		if (prev > 0)
			expect_invalid(f->hub, prev - 1, 1);
		expect_invalid(f->hub, prev, size + 1);
		expect_invalid(f->hub, head.tree_size, 1);
		expect_invalid(f->hub, prev, 0);
		expect_invalid(f->hub, prev + 1, UINT64_MAX);
	}
	/* A commit with nothing to commit keeps the last one's. */
	commit(f, &head);
	check_range(f->hub, h, &head, head.tree_size - 1, 1);
	/* The store serves any older tree too. */
	uint8_t p[HT_PROOF_HASHES_MAX][HT_HASH_BYTES];
	size_t n;
	assert_int_equal(ht_hub_prove_range(f->hub, 3, 5, 100, p, &n), HT_OK);
	assert_int_equal(ht_hub_prove_range(f->hub, 3, 5, head.tree_size + 1,
					    p, &n),
			 HT_ERR_INVALID);
	assert_int_equal(ht_hub_prove_range(f->hub, 99, 2, 100, p, &n),
			 HT_ERR_INVALID);
	/* Nothing to serve from memory after a reopen, nor for a reader. */
	reopen(f);
	expect_invalid(f->hub, head.tree_size - 1, 1);
	struct ht_hub *ro = hub_open(f, true);
	expect_invalid(ro, head.tree_size - 1, 1);
	assert_int_equal(ht_hub_prove_range(ro, 3, 5, head.tree_size, p, &n),
			 HT_OK);
	ht_hub_close(ro);
	ht_hasher_destroy(h);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * S + (uint64_t)ts.tv_nsec;
}

/* The server's case: a group commit of 64 requests, one receipt each. */
static void test_receipts_of_a_group_commit(void **state)
{
	struct fx *f = *state;
	struct ht_account a[2] = {account(1, 156), account(2, 156)};
	uint16_t r[HT_BATCH_EVENTS_MAX];
	assert_int_equal(ht_hub_create_accounts(f->hub, a, 2, r), HT_OK);
	ht_u128 next_id = 100;
	rng_state = 7;
	append_events(f, 100000, &next_id); /* a tree of some size first */
	struct ht_sth head;
	commit(f, &head);
	enum { REQUESTS = 64 };
	uint64_t first[REQUESTS], count[REQUESTS];
	static struct ht_transfer t[128];
	for (int q = 0; q < REQUESTS; q++) {
		size_t k = 1 + rnd(128);
		for (size_t i = 0; i < k; i++) {
			ht_u128 id = next_id++;
			t[i] = xfer(id, 1 + id % 2, 2 - id % 2,
				    id % 7 == 0 ? 0 : 1);
		}
		uint64_t before = events_count(f->hub);
		assert_int_equal(ht_hub_create_transfers(f->hub, t, k, r), HT_OK);
		first[q] = head.tree_size + before;
		count[q] = events_count(f->hub) - before;
		assert_int_equal(count[q], k); /* each ok or refused */
	}
	struct ht_sth h2;
	commit(f, &h2);
	static uint8_t proofs[REQUESTS][HT_PROOF_HASHES_MAX][HT_HASH_BYTES];
	size_t n[REQUESTS];
	/* Touch the output first: its page faults (~10 us each here) would
	 * cost more than the proofs. A server reuses its buffers. */
	memset(proofs, 0, sizeof proofs);
	uint64_t t0 = mono_ns();
	for (int q = 0; q < REQUESTS; q++)
		assert_int_equal(ht_hub_prove_range_recent(f->hub, first[q],
							   count[q], proofs[q],
							   &n[q]),
				 HT_OK);
	uint64_t dt = mono_ns() - t0;
	printf("test_receipts_of_a_group_commit: %d range proofs of a %" PRIu64
	       "-leaf commit (tree of %" PRIu64 " leaves) from memory in %.1f"
	       " us (%.2f us each)\n",
	       REQUESTS, h2.tree_size - head.tree_size, h2.tree_size,
	       (double)dt / 1e3, (double)dt / 1e3 / REQUESTS);
	struct ht_hasher *h;
	assert_int_equal(ht_hasher_create(h2.hash, &h), HT_OK);
	for (int q = 0; q < REQUESTS; q++) {
		uint8_t (*lh)[HT_HASH_BYTES] =
			leaf_hashes(f->hub, h, first[q], count[q]);
		assert_int_equal(ht_merkle_verify_range(h, first[q], count[q],
							h2.tree_size,
							(const uint8_t (*)[HT_HASH_BYTES])lh,
							(const uint8_t (*)[HT_HASH_BYTES])proofs[q],
							n[q], h2.root),
				 HT_OK);
		free(lh);
	}
	ht_hasher_destroy(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_owner_valid),
		cmocka_unit_test_setup_teardown(test_owners_survive_reopen,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_uncommitted_owners_vanish,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusal_leaves, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_risk_decisions, setup,
						teardown),
		cmocka_unit_test(test_risk_block_checks),
		cmocka_unit_test_setup_teardown(test_prove_range_recent, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_receipts_of_a_group_commit,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * fuzz_jsonl.c — any bytes through ht_jsonl_parse. A rejected line must
 * come with a message and an empty request, and its error line must be
 * valid JSON. An accepted one goes through the writers, whose output must
 * be valid JSON, and, for create batches, must parse back to the same
 * events (parse → write → parse).
 */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "huitong/jsonl.h"

#define CHECK(e) ((e) ? (void)0 : abort())

/* The buffer holds one line of valid JSON with an object at the top. */
static void check_json(const struct ht_buf *b)
{
	json_error_t je;
	json_t *j = json_loadb(b->data, b->len, 0, &je);
	CHECK(j != NULL);
	CHECK(json_is_object(j));
	CHECK(memchr(b->data, '\n', b->len) == NULL);
	json_decref(j);
}

/* Result codes to hand the results writer, cycled over the events. */
static const uint16_t some_results[] = {
	HT_R_OK, HT_R_LINKED_EVENT_FAILED, HT_R_EXISTS, HT_R_EXCEEDS_CREDITS,
	HT_R_PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID,
};

static void check_results(enum ht_op op, const ht_u128 *ids, size_t n)
{
	uint16_t *res = calloc(n ? n : 1, sizeof *res);
	CHECK(res != NULL);
	for (size_t i = 0; i < n; i++)
		res[i] = some_results[i % (sizeof some_results / sizeof some_results[0])];
	struct ht_buf b = { 0 };
	CHECK(ht_jsonl_write_results(&b, op, ids, res, n) == HT_OK);
	check_json(&b);
	ht_buf_free(&b);
	free(res);
}

static void round_trip_accounts(const struct ht_request *r)
{
	struct ht_buf b = { 0 };
	struct ht_request r2;
	char err[256];
	CHECK(ht_jsonl_write_accounts(&b, HT_OP_CREATE_ACCOUNTS, r->accounts,
				      r->count) == HT_OK);
	check_json(&b);
	CHECK(ht_jsonl_parse(b.data, b.len, &r2, err, sizeof err) == HT_OK);
	CHECK(r2.op == HT_OP_CREATE_ACCOUNTS && r2.count == r->count);
	CHECK(!r->count || !memcmp(r->accounts, r2.accounts,
				   r->count * sizeof *r->accounts));
	ht_request_free(&r2);
	ht_buf_free(&b);
	ht_u128 *ids = calloc(r->count ? r->count : 1, sizeof *ids);
	CHECK(ids != NULL);
	for (size_t i = 0; i < r->count; i++)
		ids[i] = r->accounts[i].id;
	check_results(r->op, ids, r->count);
	free(ids);
}

static void round_trip_transfers(const struct ht_request *r)
{
	struct ht_buf b = { 0 };
	struct ht_request r2;
	char err[256];
	CHECK(ht_jsonl_write_transfers(&b, HT_OP_CREATE_TRANSFERS, r->transfers,
				       r->count) == HT_OK);
	check_json(&b);
	CHECK(ht_jsonl_parse(b.data, b.len, &r2, err, sizeof err) == HT_OK);
	CHECK(r2.op == HT_OP_CREATE_TRANSFERS && r2.count == r->count);
	CHECK(!r->count || !memcmp(r->transfers, r2.transfers,
				   r->count * sizeof *r->transfers));
	ht_request_free(&r2);
	ht_buf_free(&b);
	ht_u128 *ids = calloc(r->count ? r->count : 1, sizeof *ids);
	CHECK(ids != NULL);
	for (size_t i = 0; i < r->count; i++)
		ids[i] = r->transfers[i].id;
	check_results(r->op, ids, r->count);
	free(ids);
}

/* Answer a query with one made-up row of each kind built from the filter. */
static void write_query(const struct ht_request *r)
{
	const struct ht_account_filter *f = &r->filter;
	CHECK(f->limit >= 1 && f->limit <= HT_QUERY_LIMIT_MAX);
	struct ht_balance x = { .account_id = f->account_id,
				.timestamp = f->timestamp_max,
				.debits_pending = f->timestamp_min };
	struct ht_transfer t = { .id = f->account_id, .amount = f->timestamp_min,
				 .timestamp = f->timestamp_max,
				 .ledger = f->limit };
	struct ht_buf b = { 0 };
	CHECK(ht_jsonl_write_balances(&b, r->op, &x, 1) == HT_OK);
	check_json(&b);
	b.len = 0;
	CHECK(ht_jsonl_write_transfers(&b, r->op, &t, 1) == HT_OK);
	check_json(&b);
	ht_buf_free(&b);
}

static void write_lookup(const struct ht_request *r)
{
	check_results(r->op, r->ids, r->count);
	struct ht_account a = { 0 };
	if (r->count)
		a.id = r->ids[r->count - 1];
	struct ht_buf b = { 0 };
	CHECK(ht_jsonl_write_accounts(&b, r->op, &a, r->count ? 1 : 0) == HT_OK);
	check_json(&b);
	ht_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ht_request r;
	char err[256];
	enum ht_err e = ht_jsonl_parse((const char *)data, size, &r, err,
				       sizeof err);
	if (e != HT_OK) {
		CHECK(e == HT_ERR_INVALID || e == HT_ERR_LIMIT ||
		      e == HT_ERR_NOMEM);
		CHECK(err[0] != '\0');
		CHECK(r.count == 0 && !r.accounts && !r.transfers && !r.ids);
		struct ht_buf b = { 0 };
		CHECK(ht_jsonl_write_error(&b, err, size) == HT_OK);
		check_json(&b);
		ht_buf_free(&b);
		return 0;
	}
	CHECK(ht_op_name(r.op) != NULL);
	switch (r.op) {
	case HT_OP_CREATE_ACCOUNTS:
		CHECK(r.count <= HT_BATCH_EVENTS_MAX);
		round_trip_accounts(&r);
		break;
	case HT_OP_CREATE_TRANSFERS:
		CHECK(r.count <= HT_BATCH_EVENTS_MAX);
		round_trip_transfers(&r);
		break;
	case HT_OP_LOOKUP_ACCOUNTS:
	case HT_OP_LOOKUP_TRANSFERS:
		CHECK(r.count <= HT_LOOKUP_IDS_MAX);
		write_lookup(&r);
		break;
	case HT_OP_GET_ACCOUNT_TRANSFERS:
	case HT_OP_GET_ACCOUNT_BALANCES:
		CHECK(r.count == 0);
		write_query(&r);
		break;
	}
	ht_request_free(&r);
	return 0;
}

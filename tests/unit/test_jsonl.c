/*
 * test_jsonl.c — the ledger JSONL codec: every accepted form of every op,
 * every malformed input we know of (each must give a clear error naming
 * where), round trips parse → write → parse, the exact output shapes, the
 * writer's speed and the bounded line reader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <cmocka.h>
#include <jansson.h>

#include "huitong/jsonl.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

/* ---- helpers ------------------------------------------------------------ */

static char errbuf[512];

static struct ht_request parse_ok(const char *line)
{
	struct ht_request r;
	enum ht_err e = ht_jsonl_parse(line, strlen(line), &r, errbuf,
				       sizeof errbuf);
	if (e != HT_OK)
		fail_msg("expected ok for %s, got %s: %s", line, ht_strerror(e),
			 errbuf);
	return r;
}

/* line must fail with code and a message containing want. */
static void parse_bad_n(const char *line, size_t len, enum ht_err code,
			const char *want)
{
	struct ht_request r;
	memset(&r, 0x5a, sizeof r);
	enum ht_err e = ht_jsonl_parse(line, len, &r, errbuf, sizeof errbuf);
	if (e != code)
		fail_msg("%.200s: expected %s, got %s (%s)", line,
			 ht_strerror(code), ht_strerror(e), errbuf);
	if (!strstr(errbuf, want))
		fail_msg("%.200s: message \"%s\" lacks \"%s\"", line, errbuf,
			 want);
	/* *r is left empty. */
	assert_int_equal(r.count, 0);
	assert_null(r.accounts);
	assert_null(r.transfers);
	assert_null(r.ids);
}

static void parse_bad(const char *line, enum ht_err code, const char *want)
{
	parse_bad_n(line, strlen(line), code, want);
}

/* One transfer with the given JSON for its amount (and valid rest). */
static void transfer_amount_bad(const char *amount, const char *want)
{
	char line[512];
	snprintf(line, sizeof line,
		 "{\"op\":\"create_transfers\",\"transfers\":[{\"id\":\"1\"},"
		 "{\"id\":\"7\",\"amount\":%s}]}",
		 amount);
	parse_bad(line, HT_ERR_INVALID, want);
}

static ht_u128 u128_from(const char *s)
{
	ht_u128 v;
	assert_int_equal(ht_u128_parse(s, strlen(s), &v), HT_OK);
	return v;
}

/* ---- valid requests -------------------------------------------------------- */

static void test_create_accounts_design_example(void **state)
{
	(void)state;
	struct ht_request r = parse_ok(
		"{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\",\"ledger\":156,"
		"\"code\":10,\"flags\":[\"debits_must_not_exceed_credits\"]}]}");
	assert_int_equal(r.op, HT_OP_CREATE_ACCOUNTS);
	assert_int_equal(r.count, 1);
	assert_non_null(r.accounts);
	assert_true(r.accounts[0].id == 1);
	assert_int_equal(r.accounts[0].ledger, 156);
	assert_int_equal(r.accounts[0].code, 10);
	assert_int_equal(r.accounts[0].flags,
			 HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS);
	assert_int_equal(r.accounts[0].user_data_len, 0);
	ht_request_free(&r);
	assert_null(r.accounts);
	assert_int_equal(r.count, 0);
}

static void test_create_accounts_every_field(void **state)
{
	(void)state;
	struct ht_request r = parse_ok(
		"{\"accounts\":[{\"id\":\"340282366920938463463374607431768211454\","
		"\"ledger\":\"4294967295\",\"code\":\"65535\",\"flags\":[\"linked\","
		"\"debits_must_not_exceed_credits\",\"credits_must_not_exceed_debits\","
		"\"history\",\"closed\"],\"user_data\":\"merchant \\\"77\\\" \\u6c47\","
		"\"debits_pending\":\"5\",\"debits_posted\":6,\"credits_pending\":\"7\","
		"\"credits_posted\":8,\"timestamp\":\"1700000000000000000\"},"
		"{\"id\":\"2\",\"ledger\":0,\"code\":0,\"flags\":[]}],"
		"\"op\":\"create_accounts\"}");
	assert_int_equal(r.count, 2);
	const struct ht_account *a = &r.accounts[0];
	assert_true(a->id == HT_U128_MAX - 1);
	assert_int_equal(a->ledger, 4294967295u);
	assert_int_equal(a->code, 65535);
	assert_int_equal(a->flags, HT_ACCOUNT_FLAGS_ALL);
	assert_int_equal(a->user_data_len, 17);
	assert_memory_equal(a->user_data, "merchant \"77\" \xe6\xb1\x87", 17);
	/* Read-only fields of a lookup are accepted and ignored. */
	assert_true(a->debits_pending == 0 && a->debits_posted == 0);
	assert_true(a->credits_pending == 0 && a->credits_posted == 0);
	assert_true(a->timestamp == 0);
	/* Missing numeric fields default to 0 (the engine then answers
	 * ledger_must_not_be_zero and so on). */
	assert_true(r.accounts[1].id == 2);
	assert_int_equal(r.accounts[1].ledger, 0);
	assert_int_equal(r.accounts[1].flags, 0);
	ht_request_free(&r);
}

static void test_create_transfers_every_field(void **state)
{
	(void)state;
	struct ht_request r = parse_ok(
		"{\"op\":\"create_transfers\",\"transfers\":[{\"id\":\"7\","
		"\"debit_account_id\":\"1\",\"credit_account_id\":\"2\","
		"\"amount\":\"500\",\"ledger\":156,\"code\":1,\"flags\":[\"linked\"]},"
		"{\"id\":\"8\",\"debit_account_id\":\"1\",\"credit_account_id\":\"2\","
		"\"amount\":18446744073709551615,\"pending_id\":\"9\",\"ledger\":156,"
		"\"code\":2,\"flags\":[\"pending\",\"post_pending_transfer\","
		"\"void_pending_transfer\",\"balancing_debit\",\"balancing_credit\","
		"\"closing_debit\",\"closing_credit\",\"linked\"],\"timeout_s\":4294967295,"
		"\"user_data\":\"\",\"timestamp\":\"99\"},"
		"{\"id\":\"9\",\"amount\":0,\"timeout_s\":\"60\"}]}");
	assert_int_equal(r.op, HT_OP_CREATE_TRANSFERS);
	assert_int_equal(r.count, 3);
	const struct ht_transfer *t = r.transfers;
	assert_true(t[0].id == 7 && t[0].debit_account_id == 1 &&
		    t[0].credit_account_id == 2);
	assert_true(t[0].amount == 500);
	assert_int_equal(t[0].ledger, 156);
	assert_int_equal(t[0].code, 1);
	assert_int_equal(t[0].flags, HT_TRANSFER_LINKED);
	assert_true(t[0].pending_id == 0);
	assert_true(t[1].amount == UINT64_MAX);
	assert_true(t[1].pending_id == 9);
	assert_int_equal(t[1].flags, HT_TRANSFER_FLAGS_ALL);
	assert_int_equal(t[1].timeout_s, 4294967295u);
	assert_true(t[1].timestamp == 0); /* ignored on input */
	assert_true(t[2].amount == 0);
	assert_int_equal(t[2].timeout_s, 60);
	ht_request_free(&r);
}

static void test_lookups(void **state)
{
	(void)state;
	struct ht_request r = parse_ok("{\"op\":\"lookup_accounts\",\"ids\":[\"1\",\"2\"]}");
	assert_int_equal(r.op, HT_OP_LOOKUP_ACCOUNTS);
	assert_int_equal(r.count, 2);
	assert_true(r.ids[0] == 1 && r.ids[1] == 2);
	ht_request_free(&r);
	r = parse_ok("{\"op\":\"lookup_transfers\",\"ids\":[\"7\","
		     "\"340282366920938463463374607431768211455\",\"0\",\"007\"]}");
	assert_int_equal(r.op, HT_OP_LOOKUP_TRANSFERS);
	assert_int_equal(r.count, 4);
	assert_true(r.ids[1] == HT_U128_MAX);
	assert_true(r.ids[2] == 0);
	assert_true(r.ids[3] == 7);
	ht_request_free(&r);
}

static void test_empty_batches(void **state)
{
	(void)state;
	const char *lines[] = {
		"{\"op\":\"create_accounts\",\"accounts\":[]}",
		"{\"op\":\"create_transfers\",\"transfers\":[]}",
		"{\"op\":\"lookup_accounts\",\"ids\":[]}",
		"{\"op\":\"lookup_transfers\",\"ids\":[]}",
	};
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		struct ht_request r = parse_ok(lines[i]);
		assert_int_equal(r.count, 0);
		assert_int_equal(r.op, (int)i + 1);
		ht_request_free(&r);
	}
}

/* Decimal, one 128-bit division per digit: slow and obviously right. */
static void ref_u128_format(ht_u128 v, char out[HT_U128_DEC_SIZE])
{
	char tmp[HT_U128_DEC_SIZE];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + (unsigned)(v % 10));
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
}

static void test_ids_zero_and_max_parse(void **state)
{
	(void)state;
	/* 0 and 2^128-1 parse; the engine rejects them as ids. */
	struct ht_request r = parse_ok(
		"{\"op\":\"create_transfers\",\"transfers\":[{\"id\":\"0\","
		"\"debit_account_id\":\"340282366920938463463374607431768211455\","
		"\"credit_account_id\":\"0\",\"pending_id\":"
		"\"0000000000000000000000000000000000000000000001\"}]}");
	assert_true(r.transfers[0].id == 0);
	assert_true(r.transfers[0].debit_account_id == HT_U128_MAX);
	assert_true(r.transfers[0].pending_id == 1);
	ht_request_free(&r);
}

static void test_filters(void **state)
{
	(void)state;
	struct ht_request r = parse_ok(
		"{\"op\":\"get_account_transfers\",\"account_id\":\"1\","
		"\"timestamp_min\":\"0\",\"timestamp_max\":\"0\",\"limit\":100,"
		"\"debits\":true,\"credits\":true,\"reversed\":false}");
	assert_int_equal(r.op, HT_OP_GET_ACCOUNT_TRANSFERS);
	assert_int_equal(r.count, 0);
	assert_true(r.filter.account_id == 1);
	assert_int_equal(r.filter.limit, 100);
	assert_int_equal(r.filter.flags, HT_FILTER_DEBITS | HT_FILTER_CREDITS);
	ht_request_free(&r);

	/* Defaults: no bounds, limit HT_QUERY_LIMIT_MAX, no flags. */
	r = parse_ok("{\"op\":\"get_account_balances\",\"account_id\":\"5\"}");
	assert_int_equal(r.op, HT_OP_GET_ACCOUNT_BALANCES);
	assert_true(r.filter.account_id == 5);
	assert_true(r.filter.timestamp_min == 0 && r.filter.timestamp_max == 0);
	assert_int_equal(r.filter.limit, HT_QUERY_LIMIT_MAX);
	assert_int_equal(r.filter.flags, 0);
	ht_request_free(&r);

	r = parse_ok("{\"op\":\"get_account_balances\",\"account_id\":\"5\","
		     "\"timestamp_min\":17,\"timestamp_max\":\"18446744073709551615\","
		     "\"limit\":\"8190\",\"reversed\":true,\"credits\":true}");
	assert_true(r.filter.timestamp_min == 17);
	assert_true(r.filter.timestamp_max == UINT64_MAX);
	assert_int_equal(r.filter.limit, 8190);
	assert_int_equal(r.filter.flags, HT_FILTER_REVERSED | HT_FILTER_CREDITS);
	ht_request_free(&r);
}

static void test_whitespace_and_order(void **state)
{
	(void)state;
	struct ht_request r = parse_ok(
		" \t{ \"ids\" : [ \"3\" ] , \"op\" : \"lookup_accounts\" }\r\n ");
	assert_int_equal(r.count, 1);
	assert_true(r.ids[0] == 3);
	ht_request_free(&r);
}

/* ---- malformed requests ----------------------------------------------------- */

static void test_bad_json(void **state)
{
	(void)state;
	parse_bad("", HT_ERR_INVALID, "empty line");
	parse_bad("  \t ", HT_ERR_INVALID, "empty line");
	parse_bad("{", HT_ERR_INVALID, "invalid JSON");
	parse_bad("not json", HT_ERR_INVALID, "invalid JSON");
	parse_bad("{\"op\":\"lookup_accounts\",\"ids\":[]} x", HT_ERR_INVALID,
		  "invalid JSON");
	parse_bad("{\"op\":\"lookup_accounts\",\"ids\":[],}", HT_ERR_INVALID,
		  "invalid JSON");
	parse_bad("{\"op\":\"lookup_accounts\",\"op\":\"lookup_accounts\",\"ids\":[]}",
		  HT_ERR_INVALID, "duplicate");
	parse_bad("{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\",\"id\":\"2\"}]}",
		  HT_ERR_INVALID, "duplicate");
	parse_bad("[]", HT_ERR_INVALID, "request must be a JSON object");
	parse_bad("\"op\"", HT_ERR_INVALID, "invalid JSON");
	parse_bad("{\"op\":\"lookup_accounts\",\"ids\":[\"\\u0000\"]}",
		  HT_ERR_INVALID, "\\u0000 is not allowed");
	parse_bad("{\"op\":\"lookup_accounts\",\"ids\":[\"1\xff\"]}",
		  HT_ERR_INVALID, "invalid JSON");
	parse_bad("{\"op\":\"lookup_accounts\",\"ids\":[\"1\x01\"]}",
		  HT_ERR_INVALID, "invalid JSON");
	parse_bad("{\"op\":\"lookup_accounts\",\"ids\":[\"\\ud800\"]}",
		  HT_ERR_INVALID, "invalid JSON");
	/* A NUL byte anywhere, with the position. */
	static const char nul[] = "{\"op\":\"lookup_accounts\",\0\"ids\":[]}";
	parse_bad_n(nul, sizeof nul - 1, HT_ERR_INVALID, "NUL byte (byte 25)");
	/* A big integer as a key is still invalid JSON. */
	parse_bad("{\"op\":\"lookup_accounts\",99999999999999999999:1}",
		  HT_ERR_INVALID, "object key must be a string");
	/* jansson's position is mapped back past rewritten big integers. */
	parse_bad("[99999999999999999999,99999999999999999999 x]",
		  HT_ERR_INVALID, "(byte 44)");
	parse_bad("[1,1 x]", HT_ERR_INVALID, "(byte 6)");
}

static void test_bad_op_and_shape(void **state)
{
	(void)state;
	parse_bad("{}", HT_ERR_INVALID, "op: missing");
	parse_bad("{\"ids\":[]}", HT_ERR_INVALID, "op: missing");
	parse_bad("{\"op\":1,\"ids\":[]}", HT_ERR_INVALID, "op: must be a string");
	parse_bad("{\"op\":\"drop_tables\"}", HT_ERR_INVALID,
		  "op: unknown op \"drop_tables\"");
	parse_bad("{\"op\":\"Create_accounts\",\"accounts\":[]}", HT_ERR_INVALID,
		  "op: unknown op \"Create_accounts\"");
	parse_bad("{\"op\":\"create_accounts\"}", HT_ERR_INVALID,
		  "accounts: missing");
	parse_bad("{\"op\":\"create_accounts\",\"accounts\":{}}", HT_ERR_INVALID,
		  "accounts: must be an array");
	parse_bad("{\"op\":\"create_accounts\",\"transfers\":[]}", HT_ERR_INVALID,
		  "unknown field \"transfers\" for op create_accounts");
	parse_bad("{\"op\":\"lookup_accounts\",\"ids\":[],\"limit\":3}",
		  HT_ERR_INVALID, "unknown field \"limit\" for op lookup_accounts");
	parse_bad("{\"op\":\"lookup_transfers\",\"ids\":\"7\"}", HT_ERR_INVALID,
		  "ids: must be an array");
	parse_bad("{\"op\":\"create_transfers\",\"transfers\":[{\"id\":\"1\"},3]}",
		  HT_ERR_INVALID, "transfers[1]: must be an object");
	parse_bad("{\"op\":\"create_transfers\",\"transfers\":[{\"amount\":\"1\"}]}",
		  HT_ERR_INVALID, "transfers[0].id: missing");
	parse_bad("{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\"},{\"ledger\":1}]}",
		  HT_ERR_INVALID, "accounts[1].id: missing");
	parse_bad("{\"op\":\"create_transfers\",\"transfers\":[{\"id\":\"1\",\"amout\":\"5\"}]}",
		  HT_ERR_INVALID, "transfers[0]: unknown field \"amout\"");
	/* A lookup-only field is not accepted on a transfer. */
	parse_bad("{\"op\":\"create_transfers\",\"transfers\":[{\"id\":\"1\",\"debits_posted\":\"5\"}]}",
		  HT_ERR_INVALID, "transfers[0]: unknown field \"debits_posted\"");
	/* Long or odd unknown names are quoted safely and cut. */
	parse_bad("{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\",\"a\\\"b\\n"
		  "cccccccccccccccccccccccccccccccccccccccccccccc\":1}]}",
		  HT_ERR_INVALID, "unknown field \"a\\\"b\\x0acccccccccccccccccccccccccccccccccccc...\"");
}

static void test_bad_ids(void **state)
{
	(void)state;
	const struct {
		const char *json;
		const char *want;
	} cases[] = {
		{ "\"340282366920938463463374607431768211456\"", "ids[1]: not a decimal u128 (exceeds 2^128-1)" },
		{ "\"99999999999999999999999999999999999999999999\"", "ids[1]: not a decimal u128 (exceeds 2^128-1)" },
		{ "\"-1\"", "ids[1]: not a decimal u128 (negative)" },
		{ "\"\"", "ids[1]: not a decimal u128: \"\"" },
		{ "\"1e3\"", "ids[1]: not a decimal u128: \"1e3\"" },
		{ "\" 1\"", "ids[1]: not a decimal u128: \" 1\"" },
		{ "\"1 \"", "ids[1]: not a decimal u128: \"1 \"" },
		{ "\"+1\"", "ids[1]: not a decimal u128: \"+1\"" },
		{ "\"0x10\"", "ids[1]: not a decimal u128: \"0x10\"" },
		{ "\"1.0\"", "ids[1]: not a decimal u128: \"1.0\"" },
		{ "\"abc\"", "ids[1]: not a decimal u128: \"abc\"" },
		{ "7", "ids[1]: must be a decimal string" },
		{ "99999999999999999999", "ids[1]: must be a decimal string" },
		{ "-1", "ids[1]: must be a decimal string" },
		{ "1.5", "ids[1]: must be a decimal string" },
		{ "null", "ids[1]: must be a decimal string" },
		{ "true", "ids[1]: must be a decimal string" },
		{ "[]", "ids[1]: must be a decimal string" },
		{ "{}", "ids[1]: must be a decimal string" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char line[256];
		snprintf(line, sizeof line,
			 "{\"op\":\"lookup_accounts\",\"ids\":[\"1\",%s]}",
			 cases[i].json);
		parse_bad(line, HT_ERR_INVALID, cases[i].want);
	}
	parse_bad("{\"op\":\"create_transfers\",\"transfers\":[{\"id\":\"1\","
		  "\"debit_account_id\":1}]}",
		  HT_ERR_INVALID, "transfers[0].debit_account_id: must be a decimal string");
	parse_bad("{\"op\":\"create_transfers\",\"transfers\":[{\"id\":\"1\","
		  "\"credit_account_id\":\"x\"}]}",
		  HT_ERR_INVALID, "transfers[0].credit_account_id: not a decimal u128");
	parse_bad("{\"op\":\"create_transfers\",\"transfers\":[{\"id\":\"1\","
		  "\"pending_id\":\"-0\"}]}",
		  HT_ERR_INVALID, "transfers[0].pending_id: not a decimal u128 (negative)");
	parse_bad("{\"op\":\"get_account_transfers\",\"account_id\":1}",
		  HT_ERR_INVALID, "account_id: must be a decimal string");
}

static void test_amounts(void **state)
{
	(void)state;
	const struct {
		const char *json;
		uint64_t want;
	} good[] = {
		{ "0", 0 },
		{ "\"0\"", 0 },
		{ "1", 1 },
		{ "9223372036854775807", INT64_MAX },
		{ "9223372036854775808", (uint64_t)INT64_MAX + 1 },
		{ "18446744073709551615", UINT64_MAX },
		{ "\"18446744073709551615\"", UINT64_MAX },
		{ "\"00000000000000000000000000000042\"", 42 },
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		char line[256];
		snprintf(line, sizeof line,
			 "{\"op\":\"create_transfers\",\"transfers\":[{\"id\":\"1\","
			 "\"amount\":%s}]}",
			 good[i].json);
		struct ht_request r = parse_ok(line);
		assert_true(r.transfers[0].amount == good[i].want);
		ht_request_free(&r);
	}
	transfer_amount_bad("\"18446744073709551616\"",
			    "transfers[1].amount: not a decimal u64 (exceeds 2^64-1)");
	transfer_amount_bad("18446744073709551616",
			    "transfers[1].amount: not a decimal u64 (exceeds 2^64-1)");
	transfer_amount_bad("123456789012345678901234567890123456789012345",
			    "transfers[1].amount: not a decimal u64 (exceeds 2^64-1)");
	transfer_amount_bad("-1", "transfers[1].amount: not a decimal u64 (negative)");
	transfer_amount_bad("\"-1\"", "transfers[1].amount: not a decimal u64 (negative)");
	transfer_amount_bad("-9223372036854775809",
			    "transfers[1].amount: not a decimal u64 (negative)");
	transfer_amount_bad("1.5", "transfers[1].amount: not a decimal u64 (fraction or exponent)");
	transfer_amount_bad("1e3", "transfers[1].amount: not a decimal u64 (fraction or exponent)");
	transfer_amount_bad("1.0", "transfers[1].amount: not a decimal u64 (fraction or exponent)");
	transfer_amount_bad("\"1e3\"", "transfers[1].amount: not a decimal u64: \"1e3\"");
	transfer_amount_bad("\"12.50\"", "transfers[1].amount: not a decimal u64: \"12.50\"");
	transfer_amount_bad("\"abc\"", "transfers[1].amount: not a decimal u64: \"abc\"");
	transfer_amount_bad("\"\"", "transfers[1].amount: not a decimal u64: \"\"");
	transfer_amount_bad("\" 5\"", "transfers[1].amount: not a decimal u64: \" 5\"");
	transfer_amount_bad("true", "transfers[1].amount: must be a decimal string or a non-negative integer");
	transfer_amount_bad("null", "transfers[1].amount: must be a decimal string or a non-negative integer");
	transfer_amount_bad("[5]", "transfers[1].amount: must be a decimal string or a non-negative integer");
	transfer_amount_bad("{\"v\":5}", "transfers[1].amount: must be a decimal string or a non-negative integer");
	/* Invalid JSON numbers stay invalid JSON even when long. */
	transfer_amount_bad("018446744073709551615", "invalid JSON");
	transfer_amount_bad("+5", "invalid JSON");
	transfer_amount_bad("-", "invalid JSON");
}

static void test_small_numbers(void **state)
{
	(void)state;
	const struct {
		const char *fields;
		const char *want;
	} bad[] = {
		{ "\"ledger\":4294967296", "accounts[0].ledger: not a decimal u32 (exceeds 4294967295)" },
		{ "\"ledger\":\"4294967296\"", "accounts[0].ledger: not a decimal u32 (exceeds 4294967295)" },
		{ "\"ledger\":18446744073709551616", "accounts[0].ledger: not a decimal u32 (exceeds 4294967295)" },
		{ "\"ledger\":-156", "accounts[0].ledger: not a decimal u32 (negative)" },
		{ "\"ledger\":156.0", "accounts[0].ledger: not a decimal u32 (fraction or exponent)" },
		{ "\"ledger\":\"CNY\"", "accounts[0].ledger: not a decimal u32: \"CNY\"" },
		{ "\"ledger\":null", "accounts[0].ledger: must be a decimal string or a non-negative integer" },
		{ "\"code\":65536", "accounts[0].code: not a decimal u16 (exceeds 65535)" },
		{ "\"code\":\"70000\"", "accounts[0].code: not a decimal u16 (exceeds 65535)" },
		{ "\"code\":false", "accounts[0].code: must be a decimal string or a non-negative integer" },
		{ "\"timestamp\":-1", "accounts[0].timestamp: not a decimal u64 (negative)" },
		{ "\"debits_posted\":\"x\"", "accounts[0].debits_posted: not a decimal u64: \"x\"" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char line[256];
		snprintf(line, sizeof line,
			 "{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\",%s}]}",
			 bad[i].fields);
		parse_bad(line, HT_ERR_INVALID, bad[i].want);
	}
	parse_bad("{\"op\":\"create_transfers\",\"transfers\":[{\"id\":\"1\","
		  "\"timeout_s\":4294967296}]}",
		  HT_ERR_INVALID, "transfers[0].timeout_s: not a decimal u32 (exceeds 4294967295)");
	parse_bad("{\"op\":\"create_transfers\",\"transfers\":[{\"id\":\"1\","
		  "\"timeout_s\":-5}]}",
		  HT_ERR_INVALID, "transfers[0].timeout_s: not a decimal u32 (negative)");
}

static void test_flags(void **state)
{
	(void)state;
	struct ht_request r = parse_ok(
		"{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\","
		"\"flags\":[\"history\",\"history\"]}]}");
	assert_int_equal(r.accounts[0].flags, HT_ACCOUNT_HISTORY);
	ht_request_free(&r);
	parse_bad("{\"op\":\"create_transfers\",\"transfers\":[{\"id\":\"1\"},{\"id\":\"2\"},"
		  "{\"id\":\"3\"},{\"id\":\"4\",\"flags\":[\"linked\",\"nope\"]}]}",
		  HT_ERR_INVALID, "transfers[3].flags[1]: unknown flag \"nope\"");
	/* Account flags are not transfer flags and the other way round. */
	parse_bad("{\"op\":\"create_transfers\",\"transfers\":[{\"id\":\"1\",\"flags\":[\"history\"]}]}",
		  HT_ERR_INVALID, "transfers[0].flags[0]: unknown flag \"history\"");
	parse_bad("{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\",\"flags\":[\"pending\"]}]}",
		  HT_ERR_INVALID, "accounts[0].flags[0]: unknown flag \"pending\"");
	parse_bad("{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\",\"flags\":[\"HISTORY\"]}]}",
		  HT_ERR_INVALID, "unknown flag \"HISTORY\"");
	parse_bad("{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\",\"flags\":[\"\"]}]}",
		  HT_ERR_INVALID, "accounts[0].flags[0]: unknown flag \"\"");
	parse_bad("{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\",\"flags\":8}]}",
		  HT_ERR_INVALID, "accounts[0].flags: must be an array of flag names");
	parse_bad("{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\",\"flags\":\"history\"}]}",
		  HT_ERR_INVALID, "accounts[0].flags: must be an array of flag names");
	parse_bad("{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\",\"flags\":[8]}]}",
		  HT_ERR_INVALID, "accounts[0].flags[0]: must be a flag name (a string)");
	parse_bad("{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\",\"flags\":[99999999999999999999]}]}",
		  HT_ERR_INVALID, "accounts[0].flags[0]: must be a flag name (a string)");
}

static void test_user_data(void **state)
{
	(void)state;
	struct ht_request r = parse_ok(
		"{\"op\":\"create_transfers\",\"transfers\":[{\"id\":\"1\","
		"\"user_data\":\"0123456789abcdef0123456789abcdef\"},{\"id\":\"2\","
		"\"user_data\":\"\\t\\u0001\\\\\\/\\ud83d\\ude00\"}]}");
	assert_int_equal(r.transfers[0].user_data_len, 32);
	assert_memory_equal(r.transfers[0].user_data,
			    "0123456789abcdef0123456789abcdef", 32);
	assert_int_equal(r.transfers[1].user_data_len, 8);
	assert_memory_equal(r.transfers[1].user_data,
			    "\t\x01\\/\xf0\x9f\x98\x80", 8);
	ht_request_free(&r);
	parse_bad("{\"op\":\"create_transfers\",\"transfers\":[{\"id\":\"1\","
		  "\"user_data\":\"0123456789abcdef0123456789abcdefX\"}]}",
		  HT_ERR_LIMIT, "transfers[0].user_data: 33 bytes, longer than 32");
	/* The limit is in bytes of UTF-8: 11 three-byte characters. */
	parse_bad("{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\",\"user_data\":"
		  "\"汇汇汇汇汇汇汇汇汇汇汇\"}]}",
		  HT_ERR_LIMIT, "accounts[0].user_data: 33 bytes, longer than 32");
	parse_bad("{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\",\"user_data\":5}]}",
		  HT_ERR_INVALID, "accounts[0].user_data: must be a string");
	parse_bad("{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\",\"user_data\":null}]}",
		  HT_ERR_INVALID, "accounts[0].user_data: must be a string");
	parse_bad("{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\",\"user_data\":"
		  "99999999999999999999}]}",
		  HT_ERR_INVALID, "accounts[0].user_data: must be a string");
}

static void test_bad_filters(void **state)
{
	(void)state;
	parse_bad("{\"op\":\"get_account_transfers\"}", HT_ERR_INVALID,
		  "account_id: missing");
	parse_bad("{\"op\":\"get_account_transfers\",\"account_id\":\"1\",\"limit\":0}",
		  HT_ERR_INVALID, "limit: must be at least 1");
	parse_bad("{\"op\":\"get_account_transfers\",\"account_id\":\"1\",\"limit\":8191}",
		  HT_ERR_LIMIT, "limit: 8191, more than the limit of 8190");
	parse_bad("{\"op\":\"get_account_transfers\",\"account_id\":\"1\",\"limit\":-1}",
		  HT_ERR_INVALID, "limit: not a decimal u32 (negative)");
	parse_bad("{\"op\":\"get_account_transfers\",\"account_id\":\"1\",\"debits\":1}",
		  HT_ERR_INVALID, "debits: must be true or false");
	parse_bad("{\"op\":\"get_account_balances\",\"account_id\":\"1\",\"reversed\":\"true\"}",
		  HT_ERR_INVALID, "reversed: must be true or false");
	parse_bad("{\"op\":\"get_account_balances\",\"account_id\":\"1\",\"timestamp_min\":-3}",
		  HT_ERR_INVALID, "timestamp_min: not a decimal u64 (negative)");
	parse_bad("{\"op\":\"get_account_balances\",\"account_id\":\"1\",\"ids\":[]}",
		  HT_ERR_INVALID, "unknown field \"ids\"");
}

/* A create/lookup line with n entries of item, built on the heap. */
static char *repeat_line(const char *head, const char *item, size_t n,
			 size_t *len)
{
	struct ht_buf b = { 0 };
	assert_int_equal(ht_buf_append(&b, head, strlen(head)), HT_OK);
	for (size_t i = 0; i < n; i++) {
		if (i)
			assert_int_equal(ht_buf_append(&b, ",", 1), HT_OK);
		assert_int_equal(ht_buf_append(&b, item, strlen(item)), HT_OK);
	}
	assert_int_equal(ht_buf_append(&b, "]}", 2), HT_OK);
	*len = b.len;
	return b.data;
}

static void test_batch_limits(void **state)
{
	(void)state;
	struct ht_request r;
	size_t len;
	const char *transfer = "{\"id\":\"340282366920938463463374607431768211454\","
		"\"debit_account_id\":\"1\",\"credit_account_id\":\"2\","
		"\"amount\":\"18446744073709551615\",\"pending_id\":\"3\","
		"\"ledger\":156,\"code\":1,\"flags\":[\"pending\",\"linked\"],"
		"\"timeout_s\":3600,\"user_data\":\"0123456789abcdef0123456789abcdef\"}";
	char *line = repeat_line("{\"op\":\"create_transfers\",\"transfers\":[",
				 transfer, HT_BATCH_EVENTS_MAX, &len);
	assert_true(len < HT_JSONL_LINE_BYTES_MAX);
	assert_int_equal(ht_jsonl_parse(line, len, &r, errbuf, sizeof errbuf), HT_OK);
	assert_int_equal(r.count, HT_BATCH_EVENTS_MAX);
	assert_true(r.transfers[HT_BATCH_EVENTS_MAX - 1].amount == UINT64_MAX);
	ht_request_free(&r);
	free(line);

	line = repeat_line("{\"op\":\"create_transfers\",\"transfers\":[",
			   "{\"id\":\"1\"}", HT_BATCH_EVENTS_MAX + 1, &len);
	parse_bad_n(line, len, HT_ERR_LIMIT,
		    "transfers: 8191 events, more than the limit of 8190");
	free(line);
	line = repeat_line("{\"op\":\"create_accounts\",\"accounts\":[",
			   "{\"id\":\"1\"}", HT_BATCH_EVENTS_MAX + 1, &len);
	parse_bad_n(line, len, HT_ERR_LIMIT,
		    "accounts: 8191 events, more than the limit of 8190");
	free(line);

	line = repeat_line("{\"op\":\"lookup_accounts\",\"ids\":[",
			   "\"340282366920938463463374607431768211455\"",
			   HT_LOOKUP_IDS_MAX, &len);
	assert_int_equal(ht_jsonl_parse(line, len, &r, errbuf, sizeof errbuf), HT_OK);
	assert_int_equal(r.count, HT_LOOKUP_IDS_MAX);
	ht_request_free(&r);
	free(line);
	line = repeat_line("{\"op\":\"lookup_transfers\",\"ids\":[", "\"1\"",
			   HT_LOOKUP_IDS_MAX + 1, &len);
	parse_bad_n(line, len, HT_ERR_LIMIT, "ids: 8191 ids, more than the limit of 8190");
	free(line);
}

/* A transfer's optional "risk" object (jsonl.h, struct ht_transfer_risk):
 * kept beside the transfer, bounded and checked, the array absent when no
 * transfer has one; a full batch with one on every transfer parses. */
static void test_risk_object(void **state)
{
	(void)state;
	struct ht_request r = parse_ok(
		"{\"op\":\"create_transfers\",\"transfers\":[{\"id\":\"1\"},"
		"{\"id\":\"2\",\"risk\":{\"channel\":\"qr\",\"device\":\"d-9\","
		"\"ip\":\"10.1.2.3\"}},{\"id\":\"3\",\"risk\":{\"device\":null}},"
		"{\"id\":\"4\",\"risk\":{}}]}");
	assert_non_null(r.risk);
	assert_false(r.risk[0].given);
	assert_true(r.risk[1].given && r.risk[1].channel_given);
	assert_int_equal(r.risk[1].channel, HT_CHANNEL_QR);
	assert_string_equal(r.risk[1].device, "d-9");
	assert_string_equal(r.risk[1].ip, "10.1.2.3");
	assert_true(r.risk[2].given && !r.risk[2].channel_given);
	assert_string_equal(r.risk[2].device, "");
	assert_true(r.risk[3].given);
	ht_request_free(&r);
	r = parse_ok("{\"op\":\"create_transfers\",\"transfers\":[{\"id\":\"1\"}]}");
	assert_null(r.risk);
	ht_request_free(&r);

	const char *pre = "{\"op\":\"create_transfers\",\"transfers\":[{\"id\":\"1\","
			  "\"risk\":";
	static const struct {
		const char *risk;
		enum ht_err code;
		const char *want;
	} bad[] = {
		{"[]", HT_ERR_INVALID, "transfers[0].risk: must be an object"},
		{"{\"channel\":\"fax\"}", HT_ERR_INVALID,
		 "transfers[0].risk.channel: unknown channel \"fax\""},
		{"{\"channel\":3}", HT_ERR_INVALID,
		 "risk.channel: must be a channel name"},
		{"{\"device\":\"\"}", HT_ERR_INVALID, "risk.device: must not be empty"},
		{"{\"ip\":7}", HT_ERR_INVALID, "risk.ip: must be a string or null"},
		{"{\"ip\":\"a\\tb\"}", HT_ERR_INVALID,
		 "risk.ip: control character at byte 1"},
		{"{\"device\":\"0123456789012345678901234567890123456789012345678901234567890123x\"}",
		 HT_ERR_LIMIT, "risk.device: 65 bytes, longer than 64"},
		{"{\"imei\":\"1\"}", HT_ERR_INVALID,
		 "transfers[0].risk: unknown field \"imei\" (channel, device, ip)"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char line[512];
		snprintf(line, sizeof line, "%s%s}]}", pre, bad[i].risk);
		parse_bad(line, bad[i].code, bad[i].want);
	}
	parse_bad("{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\","
		  "\"risk\":{}}]}", HT_ERR_INVALID, "unknown field \"risk\"");

	size_t len;
	const char *transfer = "{\"id\":\"340282366920938463463374607431768211454\","
		"\"debit_account_id\":\"1\",\"credit_account_id\":\"2\","
		"\"amount\":\"18446744073709551615\",\"pending_id\":\"3\","
		"\"ledger\":156,\"code\":1,\"flags\":[\"pending\",\"linked\"],"
		"\"timeout_s\":3600,\"user_data\":\"0123456789abcdef0123456789abcdef\","
		"\"timestamp\":\"1\",\"risk\":{\"channel\":\"qr\",\"device\":\"d-9\","
		"\"ip\":\"10.1.2.3\"}}";
	char *line = repeat_line("{\"op\":\"create_transfers\",\"transfers\":[",
				 transfer, HT_BATCH_EVENTS_MAX, &len);
	assert_true(len < HT_JSONL_LINE_BYTES_MAX);
	assert_int_equal(ht_jsonl_parse(line, len, &r, errbuf, sizeof errbuf), HT_OK);
	assert_int_equal(r.count, HT_BATCH_EVENTS_MAX);
	assert_string_equal(r.risk[HT_BATCH_EVENTS_MAX - 1].ip, "10.1.2.3");
	ht_request_free(&r);
	free(line);
}

static void test_depth_and_size_limits(void **state)
{
	(void)state;
	/* 8 deep is fine for the pre-scan (the field is then wrong)... */
	parse_bad("{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\","
		  "\"user_data\":[[[[[1]]]]]}]}",
		  HT_ERR_INVALID, "accounts[0].user_data: must be a string");
	/* ...9 deep is not. */
	parse_bad("{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\","
		  "\"user_data\":[[[[[[1]]]]]]}]}",
		  HT_ERR_LIMIT, "JSON nested deeper than 8 levels");
	/* Brackets inside strings do not count, nor do escaped quotes end
	 * strings. */
	struct ht_request r = parse_ok(
		"{\"op\":\"create_accounts\",\"accounts\":[{\"id\":\"1\","
		"\"user_data\":\"[[[[[[[[[[\\\"{{{{{{{{{\"}]}");
	assert_int_equal(r.accounts[0].user_data_len, 20);
	ht_request_free(&r);

	/* A million '[' fail fast in the pre-scan, before jansson. */
	size_t n = 1000000;
	char *deep = malloc(n);
	assert_non_null(deep);
	memset(deep, '[', n);
	uint64_t t0 = ht_now_monotonic_ns();
	parse_bad_n(deep, n, HT_ERR_LIMIT, "JSON nested deeper than 8 levels (byte 9)");
	memset(deep, '{', n);
	parse_bad_n(deep, n, HT_ERR_LIMIT, "nested deeper");
	assert_true(ht_now_monotonic_ns() - t0 < 500000000ull);
	free(deep);

	/* Many values in few levels: refused before jansson builds them. */
	size_t len;
	char *line = repeat_line("{\"op\":\"lookup_accounts\",\"ids\":[", "{}",
				 100000, &len);
	parse_bad_n(line, len, HT_ERR_LIMIT, "JSON objects and arrays");
	free(line);
	line = repeat_line("{\"op\":\"lookup_accounts\",\"ids\":[", "1", 400000,
			   &len);
	parse_bad_n(line, len, HT_ERR_LIMIT, "JSON values");
	free(line);

	/* A line over HT_JSONL_LINE_BYTES_MAX is refused unread. */
	size_t big = HT_JSONL_LINE_BYTES_MAX + 1;
	char *huge = malloc(big);
	assert_non_null(huge);
	memset(huge, ' ', big);
	huge[0] = '{';
	huge[big - 1] = '}';
	parse_bad_n(huge, big, HT_ERR_LIMIT, "longer than the limit of 4194304");
	free(huge);
}

static void test_err_buffer(void **state)
{
	(void)state;
	struct ht_request r;
	const char *line = "{\"op\":\"nope\"}";
	char small[8];
	memset(small, 'x', sizeof small);
	assert_int_equal(ht_jsonl_parse(line, strlen(line), &r, small, sizeof small),
			 HT_ERR_INVALID);
	assert_string_equal(small, "op: unk");
	assert_int_equal(ht_jsonl_parse(line, strlen(line), &r, NULL, 0),
			 HT_ERR_INVALID);
	assert_int_equal(ht_jsonl_parse(line, strlen(line), &r, small, 0),
			 HT_ERR_INVALID);
	assert_int_equal(ht_jsonl_parse(NULL, 0, &r, small, sizeof small),
			 HT_ERR_INVALID);
	/* A success clears the message. */
	line = "{\"op\":\"lookup_accounts\",\"ids\":[]}";
	assert_int_equal(ht_jsonl_parse(line, strlen(line), &r, small, sizeof small),
			 HT_OK);
	assert_string_equal(small, "");
	ht_request_free(&r);
	ht_request_free(NULL);
}

/* ---- writers ------------------------------------------------------------- */

static void test_op_names(void **state)
{
	(void)state;
	assert_string_equal(ht_op_name(HT_OP_CREATE_ACCOUNTS), "create_accounts");
	assert_string_equal(ht_op_name(HT_OP_CREATE_TRANSFERS), "create_transfers");
	assert_string_equal(ht_op_name(HT_OP_LOOKUP_ACCOUNTS), "lookup_accounts");
	assert_string_equal(ht_op_name(HT_OP_LOOKUP_TRANSFERS), "lookup_transfers");
	assert_string_equal(ht_op_name(HT_OP_GET_ACCOUNT_TRANSFERS), "get_account_transfers");
	assert_string_equal(ht_op_name(HT_OP_GET_ACCOUNT_BALANCES), "get_account_balances");
	assert_null(ht_op_name((enum ht_op)0));
	assert_null(ht_op_name((enum ht_op)7));
	assert_null(ht_op_name((enum ht_op)-1));
}

static void test_buf(void **state)
{
	(void)state;
	struct ht_buf b = { 0 };
	assert_int_equal(ht_buf_append(&b, "", 0), HT_OK);
	assert_string_equal(b.data, "");
	for (int i = 0; i < 1000; i++)
		assert_int_equal(ht_buf_printf(&b, "%d,", i), HT_OK);
	assert_int_equal(b.len, 3890);
	assert_true(b.cap > b.len);
	assert_int_equal(memcmp(b.data + b.len - 4, "999,", 4), 0);
	assert_int_equal(b.data[b.len], '\0');
	ht_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	ht_buf_free(NULL);
}

static void test_write_results(void **state)
{
	(void)state;
	struct ht_buf b = { 0 };
	ht_u128 ids[3] = { 7, 0, HT_U128_MAX };
	uint16_t res[3] = { HT_R_OK, HT_R_EXCEEDS_CREDITS, HT_R_ID_MUST_NOT_BE_INT_MAX };
	assert_int_equal(ht_jsonl_write_results(&b, HT_OP_CREATE_TRANSFERS, ids, res, 3), HT_OK);
	assert_string_equal(b.data,
		"{\"op\":\"create_transfers\",\"results\":["
		"{\"index\":0,\"id\":\"7\",\"result\":\"ok\"},"
		"{\"index\":1,\"id\":\"0\",\"result\":\"exceeds_credits\"},"
		"{\"index\":2,\"id\":\"340282366920938463463374607431768211455\","
		"\"result\":\"id_must_not_be_int_max\"}]}");
	b.len = 0;
	assert_int_equal(ht_jsonl_write_results(&b, HT_OP_CREATE_ACCOUNTS, NULL, NULL, 0), HT_OK);
	assert_string_equal(b.data, "{\"op\":\"create_accounts\",\"results\":[]}");
	/* Errors leave the buffer as it was. */
	size_t before = b.len;
	res[1] = 3; /* no such result */
	assert_int_equal(ht_jsonl_write_results(&b, HT_OP_CREATE_TRANSFERS, ids, res, 3),
			 HT_ERR_INVALID);
	assert_int_equal(b.len, before);
	assert_string_equal(b.data, "{\"op\":\"create_accounts\",\"results\":[]}");
	assert_int_equal(ht_jsonl_write_results(&b, (enum ht_op)0, ids, res, 1),
			 HT_ERR_INVALID);
	assert_int_equal(ht_jsonl_write_results(&b, HT_OP_CREATE_ACCOUNTS, NULL, res, 1),
			 HT_ERR_INVALID);
	assert_int_equal(b.len, before);
	ht_buf_free(&b);
}

static void test_write_u128_formatting(void **state)
{
	(void)state;
	/* Around every boundary of the 10^19 split. */
	const char *vals[] = {
		"0", "9", "10", "18446744073709551615", "18446744073709551616",
		"9999999999999999999", "10000000000000000000",
		"10000000000000000000000000000000000000",
		"184467440737095516150000000000000000000",
		"184467440737095516160000000000000000000",
		"100000000000000000000000000000000000001",
		"340282366920938463463374607431768211455",
		"340282366920938463463374607431768211454",
		"99999999999999999999999999999999999999",
		"100000000000000000010000000000000000000",
	};
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		struct ht_buf b = { 0 };
		ht_u128 id = u128_from(vals[i]);
		uint16_t res = 0;
		assert_int_equal(ht_jsonl_write_results(&b, HT_OP_CREATE_ACCOUNTS, &id, &res, 1), HT_OK);
		char want[200];
		snprintf(want, sizeof want,
			 "{\"op\":\"create_accounts\",\"results\":[{\"index\":0,"
			 "\"id\":\"%s\",\"result\":\"ok\"}]}",
			 vals[i]);
		assert_string_equal(b.data, want);
		ht_buf_free(&b);
	}
	/* And random values against a digit-at-a-time reference, which
	 * ht_u128_format must match too. */
	uint64_t s = 88172645463325252ull;
	for (int i = 0; i < 20000; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		uint64_t hi = s;
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		ht_u128 v = (ht_u128)(hi >> (i % 64)) << 64 | s;
		if (i % 3 == 0)
			v >>= (unsigned)(i % 128);
		char want[HT_U128_DEC_SIZE], got[HT_U128_DEC_SIZE];
		ref_u128_format(v, want);
		assert_string_equal(ht_u128_format(v, got), want);
		struct ht_buf b = { 0 };
		struct ht_balance x = { .account_id = v };
		assert_int_equal(ht_jsonl_write_balances(&b, HT_OP_GET_ACCOUNT_BALANCES, &x, 1), HT_OK);
		const char *p = strstr(b.data, "\"account_id\":\"");
		assert_non_null(p);
		p += strlen("\"account_id\":\"");
		assert_int_equal(strncmp(p, want, strlen(want)), 0);
		assert_int_equal(p[strlen(want)], '"');
		ht_buf_free(&b);
	}
}

static void test_write_accounts_shape(void **state)
{
	(void)state;
	struct ht_account a[2] = { 0 };
	a[0].id = 1;
	a[0].ledger = 156;
	a[0].code = 10;
	a[0].flags = HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS | HT_ACCOUNT_HISTORY;
	a[0].debits_pending = 1;
	a[0].debits_posted = 2;
	a[0].credits_pending = 3;
	a[0].credits_posted = UINT64_MAX;
	a[0].timestamp = 1700000000000000001ull;
	memcpy(a[0].user_data, "m\"7", 3);
	a[0].user_data_len = 3;
	a[1].id = 2;
	struct ht_buf b = { 0 };
	assert_int_equal(ht_jsonl_write_accounts(&b, HT_OP_LOOKUP_ACCOUNTS, a, 2), HT_OK);
	assert_string_equal(b.data,
		"{\"op\":\"lookup_accounts\",\"accounts\":["
		"{\"id\":\"1\",\"ledger\":156,\"code\":10,\"flags\":["
		"\"debits_must_not_exceed_credits\",\"history\"],\"user_data\":\"m\\\"7\","
		"\"debits_pending\":\"1\",\"debits_posted\":\"2\",\"credits_pending\":\"3\","
		"\"credits_posted\":\"18446744073709551615\",\"timestamp\":\"1700000000000000001\"},"
		"{\"id\":\"2\",\"ledger\":0,\"code\":0,\"flags\":[],\"user_data\":\"\","
		"\"debits_pending\":\"0\",\"debits_posted\":\"0\",\"credits_pending\":\"0\","
		"\"credits_posted\":\"0\",\"timestamp\":\"0\"}]}");
	assert_null(strchr(b.data, '\n'));
	/* Bits without a name and oversized user_data are refused. */
	size_t before = b.len;
	a[1].flags = 1u << 5;
	assert_int_equal(ht_jsonl_write_accounts(&b, HT_OP_LOOKUP_ACCOUNTS, a, 2), HT_ERR_INVALID);
	a[1].flags = 0;
	a[1].user_data_len = HT_USER_DATA_BYTES_MAX + 1;
	assert_int_equal(ht_jsonl_write_accounts(&b, HT_OP_LOOKUP_ACCOUNTS, a, 2), HT_ERR_INVALID);
	assert_int_equal(b.len, before);
	ht_buf_free(&b);
}

static void test_write_transfers_shape(void **state)
{
	(void)state;
	struct ht_transfer t = { 0 };
	t.id = 7;
	t.debit_account_id = 1;
	t.credit_account_id = 2;
	t.pending_id = 6;
	t.amount = 500;
	t.timestamp = 9;
	t.ledger = 156;
	t.timeout_s = 60;
	t.code = 1;
	t.flags = HT_TRANSFER_POST_PENDING | HT_TRANSFER_LINKED | HT_TRANSFER_CLOSING_CREDIT;
	struct ht_buf b = { 0 };
	assert_int_equal(ht_jsonl_write_transfers(&b, HT_OP_GET_ACCOUNT_TRANSFERS, &t, 1), HT_OK);
	assert_string_equal(b.data,
		"{\"op\":\"get_account_transfers\",\"transfers\":["
		"{\"id\":\"7\",\"debit_account_id\":\"1\",\"credit_account_id\":\"2\","
		"\"amount\":\"500\",\"pending_id\":\"6\",\"ledger\":156,\"code\":1,"
		"\"flags\":[\"linked\",\"post_pending_transfer\",\"closing_credit\"],"
		"\"timeout_s\":60,\"user_data\":\"\",\"timestamp\":\"9\"}]}");
	b.len = 0;
	assert_int_equal(ht_jsonl_write_transfers(&b, HT_OP_LOOKUP_TRANSFERS, NULL, 0), HT_OK);
	assert_string_equal(b.data, "{\"op\":\"lookup_transfers\",\"transfers\":[]}");
	t.flags = 1u << 8;
	assert_int_equal(ht_jsonl_write_transfers(&b, HT_OP_LOOKUP_TRANSFERS, &t, 1), HT_ERR_INVALID);
	assert_string_equal(b.data, "{\"op\":\"lookup_transfers\",\"transfers\":[]}");
	ht_buf_free(&b);
}

static void test_write_balances_shape(void **state)
{
	(void)state;
	struct ht_balance x[2] = {
		{ .account_id = 1, .timestamp = 5, .debits_pending = 1,
		  .debits_posted = 2, .credits_pending = 3, .credits_posted = 4 },
		{ .account_id = 1, .timestamp = 6 },
	};
	struct ht_buf b = { 0 };
	assert_int_equal(ht_jsonl_write_balances(&b, HT_OP_GET_ACCOUNT_BALANCES, x, 2), HT_OK);
	assert_string_equal(b.data,
		"{\"op\":\"get_account_balances\",\"balances\":["
		"{\"account_id\":\"1\",\"timestamp\":\"5\",\"debits_pending\":\"1\","
		"\"debits_posted\":\"2\",\"credits_pending\":\"3\",\"credits_posted\":\"4\"},"
		"{\"account_id\":\"1\",\"timestamp\":\"6\",\"debits_pending\":\"0\","
		"\"debits_posted\":\"0\",\"credits_pending\":\"0\",\"credits_posted\":\"0\"}]}");
	ht_buf_free(&b);
}

static void test_write_error(void **state)
{
	(void)state;
	struct ht_buf b = { 0 };
	assert_int_equal(ht_jsonl_write_error(&b, "op: unknown op \"x\"", 12), HT_OK);
	assert_string_equal(b.data, "{\"error\":\"op: unknown op \\\"x\\\"\",\"line\":12}");
	b.len = 0;
	/* Control characters escaped, valid UTF-8 kept, bad bytes \u00XX. */
	assert_int_equal(ht_jsonl_write_error(&b, "a\\b\n\t\r\x01\x1f\x7f 汇 \xff\xc3(\xed\xa0\x80",
					      UINT64_MAX), HT_OK);
	assert_string_equal(b.data,
		"{\"error\":\"a\\\\b\\n\\t\\r\\u0001\\u001f\x7f 汇 \\u00ff\\u00c3("
		"\\u00ed\\u00a0\\u0080\",\"line\":18446744073709551615}");
	/* jansson reads it back (with a line number it can hold). */
	b.len = 0;
	assert_int_equal(ht_jsonl_write_error(&b, "a\\b\n\x01\x7f 汇 \xff\xc3(", 5), HT_OK);
	json_error_t je;
	json_t *j = json_loadb(b.data, b.len, 0, &je);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "error")),
			    "a\\b\n\x01\x7f 汇 \xc3\xbf\xc3\x83(");
	assert_int_equal(json_integer_value(json_object_get(j, "line")), 5);
	json_decref(j);
	size_t before = b.len;
	assert_int_equal(ht_jsonl_write_error(&b, NULL, 1), HT_ERR_INVALID);
	assert_int_equal(b.len, before);
	ht_buf_free(&b);
}

/* ---- round trips ----------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static ht_u128 rnd_u128(void)
{
	switch (rnd() % 4) {
	case 0: return rnd() % 10;
	case 1: return HT_U128_MAX - rnd() % 3;
	case 2: return rnd();
	default: return (ht_u128)rnd() << 64 | rnd();
	}
}

static uint64_t rnd_u64(void)
{
	return rnd() % 3 ? rnd() >> (rnd() % 64) : UINT64_MAX;
}

/* Random valid UTF-8 of at most 32 bytes: ASCII (with quotes, backslashes,
 * controls), and 2-, 3- and 4-byte characters. */
static uint8_t rnd_user_data(char *out)
{
	static const char *const pieces[] = {
		"a", "\"", "\\", "\n", "\x01", "\x1f", "/", "\x7f", "é", "汇", "😀", " ",
	};
	size_t n = 0, want = rnd() % 33;
	while (n < want) {
		const char *p = pieces[rnd() % (sizeof pieces / sizeof pieces[0])];
		size_t k = strlen(p);
		if (n + k > HT_USER_DATA_BYTES_MAX)
			break;
		memcpy(out + n, p, k);
		n += k;
	}
	return (uint8_t)n;
}

static void test_round_trip_accounts(void **state)
{
	(void)state;
	enum { N = 500 };
	struct ht_account *a = calloc(N, sizeof *a);
	assert_non_null(a);
	for (size_t i = 0; i < N; i++) {
		a[i].id = rnd_u128();
		a[i].ledger = (uint32_t)rnd();
		a[i].code = (uint16_t)rnd();
		a[i].flags = (uint16_t)(rnd() & HT_ACCOUNT_FLAGS_ALL);
		a[i].user_data_len = rnd_user_data(a[i].user_data);
		a[i].debits_posted = rnd_u64();
		a[i].timestamp = rnd_u64();
	}
	struct ht_buf b = { 0 };
	assert_int_equal(ht_jsonl_write_accounts(&b, HT_OP_CREATE_ACCOUNTS, a, N), HT_OK);
	struct ht_request r;
	assert_int_equal(ht_jsonl_parse(b.data, b.len, &r, errbuf, sizeof errbuf), HT_OK);
	assert_int_equal(r.op, HT_OP_CREATE_ACCOUNTS);
	assert_int_equal(r.count, N);
	for (size_t i = 0; i < N; i++) {
		const struct ht_account *x = &r.accounts[i];
		assert_true(x->id == a[i].id);
		assert_int_equal(x->ledger, a[i].ledger);
		assert_int_equal(x->code, a[i].code);
		assert_int_equal(x->flags, a[i].flags);
		assert_int_equal(x->user_data_len, a[i].user_data_len);
		assert_memory_equal(x->user_data, a[i].user_data, a[i].user_data_len);
		assert_true(x->debits_posted == 0 && x->timestamp == 0);
	}
	/* parse -> write -> parse gives the same line again. */
	struct ht_buf b2 = { 0 };
	assert_int_equal(ht_jsonl_write_accounts(&b2, HT_OP_CREATE_ACCOUNTS, r.accounts, r.count), HT_OK);
	struct ht_request r2;
	assert_int_equal(ht_jsonl_parse(b2.data, b2.len, &r2, errbuf, sizeof errbuf), HT_OK);
	assert_int_equal(memcmp(r.accounts, r2.accounts, N * sizeof *r.accounts), 0);
	ht_request_free(&r);
	ht_request_free(&r2);
	ht_buf_free(&b);
	ht_buf_free(&b2);
	free(a);
}

static void test_round_trip_transfers(void **state)
{
	(void)state;
	enum { N = 500 };
	struct ht_transfer *t = calloc(N, sizeof *t);
	assert_non_null(t);
	for (size_t i = 0; i < N; i++) {
		t[i].id = rnd_u128();
		t[i].debit_account_id = rnd_u128();
		t[i].credit_account_id = rnd_u128();
		t[i].pending_id = rnd_u128();
		t[i].amount = rnd_u64();
		t[i].ledger = (uint32_t)rnd();
		t[i].timeout_s = (uint32_t)rnd();
		t[i].code = (uint16_t)rnd();
		t[i].flags = (uint16_t)(rnd() & HT_TRANSFER_FLAGS_ALL);
		t[i].user_data_len = rnd_user_data(t[i].user_data);
	}
	struct ht_buf b = { 0 };
	assert_int_equal(ht_jsonl_write_transfers(&b, HT_OP_CREATE_TRANSFERS, t, N), HT_OK);
	struct ht_request r;
	assert_int_equal(ht_jsonl_parse(b.data, b.len, &r, errbuf, sizeof errbuf), HT_OK);
	assert_int_equal(r.count, N);
	assert_int_equal(memcmp(r.transfers, t, N * sizeof *t), 0);
	ht_request_free(&r);
	ht_buf_free(&b);

	/* A hand-written line survives parse -> write -> parse. */
	const char *line = "{\"op\":\"create_transfers\",\"transfers\":[{\"id\":\"7\","
		"\"debit_account_id\":\"1\",\"credit_account_id\":\"2\",\"amount\":500,"
		"\"ledger\":156,\"code\":1,\"flags\":[\"linked\",\"pending\"],"
		"\"timeout_s\":\"30\",\"user_data\":\"x\\u00e9\"}]}";
	r = parse_ok(line);
	assert_int_equal(ht_jsonl_write_transfers(&b, HT_OP_CREATE_TRANSFERS, r.transfers, r.count), HT_OK);
	struct ht_request r2 = parse_ok(b.data);
	assert_int_equal(memcmp(r.transfers, r2.transfers, sizeof *r.transfers), 0);
	ht_request_free(&r);
	ht_request_free(&r2);
	ht_buf_free(&b);
	free(t);
}

static void test_write_invalid_utf8_user_data(void **state)
{
	(void)state;
	struct ht_transfer t = { .id = 1 };
	memcpy(t.user_data, "\xe9t\xc3\x28\xf0\x9f\x98", 7);
	t.user_data_len = 7;
	struct ht_buf b = { 0 };
	assert_int_equal(ht_jsonl_write_transfers(&b, HT_OP_CREATE_TRANSFERS, &t, 1), HT_OK);
	assert_non_null(strstr(b.data, "\"user_data\":\"\\u00e9t\\u00c3(\\u00f0\\u009f\\u0098\""));
	/* Still a valid request: the bytes come back as those code points. */
	struct ht_request r = parse_ok(b.data);
	assert_int_equal(r.transfers[0].user_data_len, 12);
	assert_memory_equal(r.transfers[0].user_data, "\xc3\xa9t\xc3\x83(\xc3\xb0\xc2\x9f\xc2\x98", 12);
	ht_request_free(&r);
	ht_buf_free(&b);
}

/* ---- speed ----------------------------------------------------------------- */

static void test_write_results_speed(void **state)
{
	(void)state;
	enum { N = HT_BATCH_EVENTS_MAX };
	ht_u128 *ids = malloc(N * sizeof *ids);
	uint16_t *res = malloc(N * sizeof *res);
	assert_non_null(ids);
	assert_non_null(res);
	for (size_t i = 0; i < N; i++) {
		ids[i] = HT_U128_MAX - i * 1000003u; /* 39-digit ids: the worst case */
		res[i] = i % 7 ? HT_R_OK : HT_R_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID;
	}
	struct ht_buf b = { 0 };
	uint64_t best = UINT64_MAX;
	for (int round = 0; round < 7; round++) {
		b.len = 0;
		uint64_t t0 = ht_now_monotonic_ns();
		assert_int_equal(ht_jsonl_write_results(&b, HT_OP_CREATE_TRANSFERS, ids, res, N), HT_OK);
		uint64_t dt = ht_now_monotonic_ns() - t0;
		if (dt < best)
			best = dt;
	}
	/* Well under a millisecond in a normal build; sanitizers are slower. */
	uint64_t max_ns = UNDER_SANITIZER ? 20000000u : 1000000u;
	print_message("write_results: %d results (%zu bytes) in %.3f ms\n", N,
		      b.len, (double)best / 1e6);
	assert_true(best < max_ns);
	json_error_t je;
	json_t *j = json_loadb(b.data, b.len, 0, &je);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "results")), N);
	json_decref(j);
	ht_buf_free(&b);
	free(ids);
	free(res);
}

/* ---- line reader ------------------------------------------------------------ */

struct expect {
	enum ht_err err;
	const char *line; /* NULL for HT_ERR_LIMIT */
	size_t len;
	uint64_t line_no;
};

static void read_expect(const char *data, size_t size, size_t max_bytes,
			const struct expect *want, size_t n)
{
	FILE *f = fmemopen((void *)data, size, "r");
	assert_non_null(f);
	struct ht_line_reader *r;
	assert_int_equal(ht_line_reader_create(f, max_bytes, &r), HT_OK);
	for (size_t i = 0; i < n; i++) {
		const char *line = NULL;
		size_t len = 99;
		uint64_t no = 0;
		enum ht_err e = ht_line_reader_next(r, &line, &len, &no);
		if (e != want[i].err)
			fail_msg("read %zu: expected %s, got %s", i,
				 ht_strerror(want[i].err), ht_strerror(e));
		assert_int_equal(no, want[i].line_no);
		if (e == HT_OK) {
			assert_int_equal(len, want[i].len);
			assert_memory_equal(line, want[i].line, len);
			assert_int_equal(line[len], '\0');
		}
	}
	ht_line_reader_destroy(r);
	fclose(f);
}

static void test_line_reader_basic(void **state)
{
	(void)state;
	static const char data[] = "a\nbc\r\n\n\r\nx\0y\nlast";
	const struct expect want[] = {
		{ HT_OK, "a", 1, 1 },
		{ HT_OK, "bc", 2, 2 },
		{ HT_OK, "", 0, 3 },
		{ HT_OK, "", 0, 4 },
		{ HT_OK, "x\0y", 3, 5 },
		{ HT_OK, "last", 4, 6 },
		{ HT_ERR_NOT_FOUND, NULL, 0, 6 },
		{ HT_ERR_NOT_FOUND, NULL, 0, 6 },
	};
	read_expect(data, sizeof data - 1, 16, want, 8);

	/* A final newline does not make an extra empty line; "\r\r" loses
	 * only one '\r'. */
	static const char data2[] = "a\r\r\n\n";
	const struct expect want2[] = {
		{ HT_OK, "a\r", 2, 1 },
		{ HT_OK, "", 0, 2 },
		{ HT_ERR_NOT_FOUND, NULL, 0, 2 },
	};
	read_expect(data2, sizeof data2 - 1, 16, want2, 3);
}

static void test_line_reader_limits(void **state)
{
	(void)state;
	/* max_bytes 4: "abcd" fits, "abcd\r\n" fits, "abcde" does not and
	 * is skipped to its newline, also when it is the last line. */
	static const char data[] = "abcd\nabcd\r\nabcde\nabcd\r\r\nok\nabcdefghijklmnop";
	const struct expect want[] = {
		{ HT_OK, "abcd", 4, 1 },
		{ HT_OK, "abcd", 4, 2 },
		{ HT_ERR_LIMIT, NULL, 0, 3 },
		{ HT_ERR_LIMIT, NULL, 0, 4 },
		{ HT_OK, "ok", 2, 5 },
		{ HT_ERR_LIMIT, NULL, 0, 6 },
		{ HT_ERR_NOT_FOUND, NULL, 0, 6 },
	};
	read_expect(data, sizeof data - 1, 4, want, 7);

	/* max_bytes 0: only empty lines. */
	static const char data0[] = "\n\r\nx\n";
	const struct expect want0[] = {
		{ HT_OK, "", 0, 1 },
		{ HT_OK, "", 0, 2 },
		{ HT_ERR_LIMIT, NULL, 0, 3 },
		{ HT_ERR_NOT_FOUND, NULL, 0, 3 },
	};
	read_expect(data0, sizeof data0 - 1, 0, want0, 4);

	struct ht_line_reader *r;
	assert_int_equal(ht_line_reader_create(NULL, 10, &r), HT_ERR_INVALID);
	assert_int_equal(ht_line_reader_create(stdin, SIZE_MAX, &r), HT_ERR_INVALID);
	ht_line_reader_destroy(NULL);
}

static void test_line_reader_io_error(void **state)
{
	(void)state;
	FILE *f = fopen("/dev/null", "w");
	assert_non_null(f);
	struct ht_line_reader *r;
	assert_int_equal(ht_line_reader_create(f, 16, &r), HT_OK);
	const char *line;
	size_t len;
	uint64_t no;
	assert_int_equal(ht_line_reader_next(r, &line, &len, &no), HT_ERR_IO);
	assert_int_equal(no, 1);
	assert_int_equal(ht_line_reader_next(r, &line, &len, &no), HT_ERR_IO);
	ht_line_reader_destroy(r);
	fclose(f);
}

/* Bytes the allocator has handed out (0 when a sanitizer replaces it). */
static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

static void test_line_reader_10mb_line(void **state)
{
	(void)state;
	FILE *f = tmpfile();
	assert_non_null(f);
	const char *ok1 = "{\"op\":\"lookup_accounts\",\"ids\":[\"1\"]}\n";
	fputs(ok1, f);
	/* A 10 MB JSON-looking line. */
	char chunk[4096];
	memset(chunk, '1', sizeof chunk);
	fputs("{\"op\":\"lookup_accounts\",\"ids\":[\"", f);
	for (size_t i = 0; i < (10u << 20) / sizeof chunk; i++)
		assert_int_equal(fwrite(chunk, 1, sizeof chunk, f), sizeof chunk);
	fputs("\"]}\n", f);
	fputs(ok1, f);
	fputs("{\"op\":\"nope\"}", f);
	rewind(f);

	size_t heap0 = heap_in_use();
	struct ht_line_reader *r;
	assert_int_equal(ht_line_reader_create(f, HT_JSONL_LINE_BYTES_MAX, &r), HT_OK);
	const char *line, *first;
	size_t len;
	uint64_t no;
	struct ht_request req;
	assert_int_equal(ht_line_reader_next(r, &first, &len, &no), HT_OK);
	assert_int_equal(no, 1);
	assert_int_equal(ht_jsonl_parse(first, len, &req, errbuf, sizeof errbuf), HT_OK);
	ht_request_free(&req);
	assert_int_equal(ht_line_reader_next(r, &line, &len, &no), HT_ERR_LIMIT);
	assert_int_equal(no, 2);
	/* The reader did not grow to hold the line. */
	size_t heap1 = heap_in_use();
	if (heap0 && heap1)
		assert_true(heap1 - heap0 < HT_JSONL_LINE_BYTES_MAX + (1u << 20));
	assert_int_equal(ht_line_reader_next(r, &line, &len, &no), HT_OK);
	assert_int_equal(no, 3);
	assert_ptr_equal(line, first);
	assert_int_equal(len, strlen(ok1) - 1);
	assert_int_equal(ht_line_reader_next(r, &line, &len, &no), HT_OK);
	assert_int_equal(no, 4);
	assert_int_equal(ht_jsonl_parse(line, len, &req, errbuf, sizeof errbuf),
			 HT_ERR_INVALID);
	assert_string_equal(errbuf, "op: unknown op \"nope\"");
	assert_int_equal(ht_line_reader_next(r, &line, &len, &no), HT_ERR_NOT_FOUND);
	ht_line_reader_destroy(r);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_accounts_design_example),
		cmocka_unit_test(test_create_accounts_every_field),
		cmocka_unit_test(test_create_transfers_every_field),
		cmocka_unit_test(test_lookups),
		cmocka_unit_test(test_empty_batches),
		cmocka_unit_test(test_ids_zero_and_max_parse),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_whitespace_and_order),
		cmocka_unit_test(test_bad_json),
		cmocka_unit_test(test_bad_op_and_shape),
		cmocka_unit_test(test_bad_ids),
		cmocka_unit_test(test_amounts),
		cmocka_unit_test(test_small_numbers),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_user_data),
		cmocka_unit_test(test_bad_filters),
		cmocka_unit_test(test_batch_limits),
		cmocka_unit_test(test_risk_object),
		cmocka_unit_test(test_depth_and_size_limits),
		cmocka_unit_test(test_err_buffer),
		cmocka_unit_test(test_op_names),
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_write_results),
		cmocka_unit_test(test_write_u128_formatting),
		cmocka_unit_test(test_write_accounts_shape),
		cmocka_unit_test(test_write_transfers_shape),
		cmocka_unit_test(test_write_balances_shape),
		cmocka_unit_test(test_write_error),
		cmocka_unit_test(test_round_trip_accounts),
		cmocka_unit_test(test_round_trip_transfers),
		cmocka_unit_test(test_write_invalid_utf8_user_data),
		cmocka_unit_test(test_write_results_speed),
		cmocka_unit_test(test_line_reader_basic),
		cmocka_unit_test(test_line_reader_limits),
		cmocka_unit_test(test_line_reader_io_error),
		cmocka_unit_test(test_line_reader_10mb_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

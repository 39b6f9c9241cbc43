/*
 * test_sim.c — the interchange codec (payment.h) and the simulator
 * (sim.h). Codec: the exact written form, every accepted form of ts and
 * amount, round trips, and a refusal with a message naming the field for
 * each kind of malformed line (missing field, bad ts, bad amount, unknown
 * channel, strings too long, not an object, deep nesting, duplicate keys,
 * NUL bytes, over-long lines). Simulator: same seed → same bytes,
 * different seed → different bytes, a shorter run is a prefix of a longer
 * one, time order, one label per payment with the same id, consistent
 * participants, every fraud type present at the default rate and the rate
 * itself about right, and bad options refused.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "huitong/payment.h"
#include "huitong/sim.h"

#define DESIGN_LINE                                                           \
	"{\"id\":\"t-000001\",\"ts\":\"2026-03-01T08:00:00.120Z\","          \
	"\"payer\":\"bankA:c1001\",\"payee\":\"bankB:m77\","                  \
	"\"payer_participant\":\"bankA\",\"payee_participant\":\"bankB\","    \
	"\"amount\":\"12345\",\"currency\":\"CNY\",\"channel\":\"qr\","       \
	"\"device\":\"d-9\",\"ip\":\"10.1.2.3\"}"

/* 2026-03-01T08:00:00.120Z */
#define DESIGN_TS_MS 1772352000120LL

static struct ht_payment design_payment(void)
{
	struct ht_payment p;
	memset(&p, 0, sizeof p);
	strcpy(p.id, "t-000001");
	p.ts_ms = DESIGN_TS_MS;
	strcpy(p.payer, "bankA:c1001");
	strcpy(p.payee, "bankB:m77");
	strcpy(p.payer_participant, "bankA");
	strcpy(p.payee_participant, "bankB");
	p.amount = 12345;
	strcpy(p.currency, "CNY");
	p.channel = HT_CHANNEL_QR;
	strcpy(p.device, "d-9");
	strcpy(p.ip, "10.1.2.3");
	return p;
}

static void assert_same_payment(const struct ht_payment *a,
				const struct ht_payment *b)
{
	assert_string_equal(a->id, b->id);
	assert_int_equal(a->ts_ms, b->ts_ms);
	assert_string_equal(a->payer, b->payer);
	assert_string_equal(a->payee, b->payee);
	assert_string_equal(a->payer_participant, b->payer_participant);
	assert_string_equal(a->payee_participant, b->payee_participant);
	assert_true(a->amount == b->amount);
	assert_string_equal(a->currency, b->currency);
	assert_int_equal(a->channel, b->channel);
	assert_string_equal(a->device, b->device);
	assert_string_equal(a->ip, b->ip);
}

static enum ht_err parse(const char *line, struct ht_payment *p, char *err,
			 size_t err_size)
{
	return ht_payment_parse(line, strlen(line), p, err, err_size);
}

struct bad {
	const char *line;
	enum ht_err err;
	const char *msg; /* a substring of the message */
};

/* DESIGN_LINE with key's value replaced by value (NULL removes the key). */
static char *with(const char *key, const char *value)
{
	static char out[8192];
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\":", key);
	const char *at = strstr(DESIGN_LINE, pat);
	assert_non_null(at);
	const char *v = at + strlen(pat), *end = v;
	if (*end == '"')
		end = strchr(end + 1, '"') + 1;
	size_t head = (size_t)(at - DESIGN_LINE);
	if (value) {
		snprintf(out, sizeof out, "%.*s%s%s", (int)(v - DESIGN_LINE),
			 DESIGN_LINE, value, end);
	} else {
		if (*end == ',')
			end++;
		else if (head && DESIGN_LINE[head - 1] == ',')
			head--;
		snprintf(out, sizeof out, "%.*s%s", (int)head, DESIGN_LINE, end);
	}
	return out;
}

/* ---- codec --------------------------------------------------------------- */

static void test_format_exact_and_round_trip(void **state)
{
	(void)state;
	struct ht_payment p = design_payment(), q;
	char buf[HT_PAYMENT_FORMAT_BYTES_MAX + 1];
	size_t n = ht_payment_format(&p, buf, sizeof buf);
	assert_int_equal(n, strlen(DESIGN_LINE));
	assert_string_equal(buf, DESIGN_LINE);
	char err[256];
	assert_int_equal(parse(buf, &q, err, sizeof err), HT_OK);
	assert_same_payment(&p, &q);
	/* Exactly enough room (line and NUL), then one byte less. */
	assert_int_equal(ht_payment_format(&p, buf, n + 1), n);
	assert_int_equal(ht_payment_format(&p, buf, n), 0);
}

static void test_parse_accepted_forms(void **state)
{
	(void)state;
	struct ht_payment p;
	char err[256];
	/* Integer amount, no fraction, +00:00, no device, null ip, unknown
	 * nested fields, escapes and UTF-8. */
	const char *line =
		"{\"extra\":{\"a\":[1,{\"b\":null}]},\"id\":\"x\\\"y\","
		"\"ts\":\"2024-02-29T23:59:59+00:00\",\"payer\":\"\xe9\x93\xb6:c1\","
		"\"payee\":\"b\\\\c\",\"payer_participant\":\"p\","
		"\"payee_participant\":\"q\",\"amount\":9223372036854775807,"
		"\"currency\":\"EUR\",\"channel\":\"cash_out\",\"ip\":null}";
	assert_int_equal(parse(line, &p, err, sizeof err), HT_OK);
	assert_string_equal(p.id, "x\"y");
	assert_string_equal(p.payee, "b\\c");
	assert_string_equal(p.payer, "\xe9\x93\xb6:c1");
	assert_true(p.amount == 9223372036854775807ull);
	assert_int_equal(p.channel, HT_CHANNEL_CASH_OUT);
	assert_string_equal(p.device, "");
	assert_string_equal(p.ip, "");
	int64_t ts;
	assert_int_equal(ht_payment_ts_parse("2024-02-29T23:59:59.000Z", 24, &ts),
			 HT_OK);
	assert_int_equal(p.ts_ms, ts);
	/* What we write of it reads back the same. */
	char buf[HT_PAYMENT_FORMAT_BYTES_MAX + 1];
	struct ht_payment q;
	size_t n = ht_payment_format(&p, buf, sizeof buf);
	assert_true(n > 0);
	assert_int_equal(ht_payment_parse(buf, n, &q, err, sizeof err), HT_OK);
	assert_same_payment(&p, &q);
	/* The largest u64 as a string. */
	const char *big =
		"{\"id\":\"t\",\"ts\":\"2026-03-01T08:00:00.120Z\",\"payer\":\"a\","
		"\"payee\":\"b\",\"payer_participant\":\"a\",\"payee_participant\":"
		"\"b\",\"amount\":\"18446744073709551615\",\"currency\":\"CNY\","
		"\"channel\":\"bill\"}";
	assert_int_equal(parse(big, &p, err, sizeof err), HT_OK);
	assert_true(p.amount == UINT64_MAX);
	/* Integers on both sides of the fast scanner's 18 digits, and
	 * whitespace everywhere JSON allows it. */
	char *line2 = with("amount", "999999999999999999");
	assert_int_equal(parse(line2, &p, err, sizeof err), HT_OK);
	assert_true(p.amount == 999999999999999999ull);
	line2 = with("amount", "1000000000000000000");
	assert_int_equal(parse(line2, &p, err, sizeof err), HT_OK);
	assert_true(p.amount == 1000000000000000000ull);
	line2 = with("amount", "9223372036854775808");
	assert_int_equal(parse(line2, &p, err, sizeof err), HT_ERR_INVALID);
	assert_non_null(strstr(err, "invalid JSON"));
	const char *spaced =
		" \t{ \"id\" : \"t\" ,\r\n\"ts\":\"2026-03-01T08:00:00.120Z\","
		"\"payer\":\"a\",\"payee\":\"b\",\"payer_participant\":\"a\","
		"\"payee_participant\":\"b\",\"amount\" : 7 ,\"currency\":\"CNY\","
		"\"channel\":\"card\"} \n";
	assert_int_equal(parse(spaced, &p, err, sizeof err), HT_OK);
	assert_true(p.amount == 7);
	assert_int_equal(p.ts_ms, DESIGN_TS_MS);
}

static void expect_bad(const char *line, size_t len, enum ht_err want,
		       const char *msg)
{
	struct ht_payment p;
	char err[256] = "";
	enum ht_err got = ht_payment_parse(line, len, &p, err, sizeof err);
	if (got != want || !strstr(err, msg))
		fail_msg("line %.120s: got %d '%s', want %d '%s'", line, got, err,
			 want, msg);
}

static void test_parse_missing_fields(void **state)
{
	(void)state;
	static const char *const keys[] = {"id", "ts", "payer", "payee",
					   "payer_participant", "payee_participant",
					   "amount", "currency", "channel"};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		char msg[64];
		snprintf(msg, sizeof msg, "%s: missing", keys[i]);
		char *line = with(keys[i], NULL);
		expect_bad(line, strlen(line), HT_ERR_INVALID, msg);
	}
	/* device and ip are optional. */
	struct ht_payment p;
	char *line = with("device", NULL);
	assert_int_equal(parse(line, &p, NULL, 0), HT_OK);
	assert_string_equal(p.device, "");
}

static void test_parse_bad_values(void **state)
{
	(void)state;
	static const struct {
		const char *key, *value, *msg;
		enum ht_err err;
	} cases[] = {
		{"ts", "\"2026-02-29T08:00:00.000Z\"", "ts: '2026-02-29", HT_ERR_INVALID},
		{"ts", "\"2026-03-01 08:00:00Z\"", "ts:", HT_ERR_INVALID},
		{"ts", "\"2026-03-01T24:00:00Z\"", "ts:", HT_ERR_INVALID},
		{"ts", "\"2026-03-01T08:00:60Z\"", "ts:", HT_ERR_INVALID},
		{"ts", "\"2026-03-01T08:00:00.12Z\"", "ts:", HT_ERR_INVALID},
		{"ts", "\"2026-03-01T08:00:00.1234Z\"", "ts:", HT_ERR_INVALID},
		{"ts", "\"2026-03-01T08:00:00+08:00\"", "ts:", HT_ERR_INVALID},
		{"ts", "\"2026-03-01T08:00:00\"", "ts:", HT_ERR_INVALID},
		{"ts", "\"1969-12-31T23:59:59Z\"", "ts:", HT_ERR_INVALID},
		{"ts", "\"2026-3-1T08:00:00Z\"", "ts:", HT_ERR_INVALID},
		{"ts", "1772352000120", "ts: expected a string", HT_ERR_INVALID},
		{"amount", "\"0\"", "amount: must be > 0", HT_ERR_INVALID},
		{"amount", "0", "amount: must be > 0", HT_ERR_INVALID},
		{"amount", "-5", "amount: must be > 0", HT_ERR_INVALID},
		{"amount", "\"-5\"", "amount: '-5'", HT_ERR_INVALID},
		{"amount", "\"1.5\"", "amount: '1.5'", HT_ERR_INVALID},
		{"amount", "1.5", "amount: expected", HT_ERR_INVALID},
		{"amount", "\"\"", "amount: ''", HT_ERR_INVALID},
		{"amount", "\" 12\"", "amount:", HT_ERR_INVALID},
		{"amount", "\"18446744073709551616\"", "above 2^64-1", HT_ERR_INVALID},
		{"amount", "true", "amount: expected", HT_ERR_INVALID},
		{"channel", "\"wire\"", "channel: 'wire' is unknown", HT_ERR_INVALID},
		{"channel", "\"QR\"", "channel: 'QR' is unknown", HT_ERR_INVALID},
		{"channel", "5", "channel: expected a string", HT_ERR_INVALID},
		{"currency", "\"cny\"", "currency: 'cny'", HT_ERR_INVALID},
		{"currency", "\"CNYX\"", "currency:", HT_ERR_INVALID},
		{"id", "\"\"", "id: empty", HT_ERR_INVALID},
		{"payer", "5", "payer: expected a string", HT_ERR_INVALID},
		{"payer", "\"a\\nb\"", "payer: control character", HT_ERR_INVALID},
		{"device", "[]", "device: expected a string", HT_ERR_INVALID},
		{"id", "\"" "0123456789012345678901234567890123456789012345678901234567890123"
		       "4\"", "id: longer than 64", HT_ERR_LIMIT},
		{"payee", "\"" "0123456789012345678901234567890123456789012345678901234567890123"
			  "4\"", "payee: longer than 64", HT_ERR_LIMIT},
		{"payer_participant", "\"01234567890123456789012345678901234567890123456789"
				      "0123456\"",
		 "payer_participant: longer than 56", HT_ERR_LIMIT},
		{"ip", "\"" "0123456789012345678901234567890123456789012345678901234567890123"
		       "4\"", "ip: longer than 64", HT_ERR_LIMIT},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *line = with(cases[i].key, cases[i].value);
		expect_bad(line, strlen(line), cases[i].err, cases[i].msg);
	}
	/* The longest strings that fit are accepted. */
	char *line = with("id", "\"0123456789012345678901234567890123456789"
				"012345678901234567890123\"");
	struct ht_payment p;
	assert_int_equal(parse(line, &p, NULL, 0), HT_OK);
	assert_int_equal(strlen(p.id), 64);
}

static void test_parse_bad_lines(void **state)
{
	(void)state;
	static const struct bad cases[] = {
		{"[]", HT_ERR_INVALID, "expected a JSON object"},
		{"\"x\"", HT_ERR_INVALID, "expected a JSON object"},
		{"1", HT_ERR_INVALID, "expected a JSON object"},
		{"null", HT_ERR_INVALID, "expected a JSON object"},
		{"", HT_ERR_INVALID, "invalid JSON"},
		{"{", HT_ERR_INVALID, "invalid JSON"},
		{DESIGN_LINE "x", HT_ERR_INVALID, "invalid JSON"},
		{"{\"id\":\"a\",\"id\":\"b\"}", HT_ERR_INVALID, "invalid JSON"},
		{"{\"x\":[[[[[[[[[1]]]]]]]]]}", HT_ERR_LIMIT, "nested deeper than 8"},
		{"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", HT_ERR_LIMIT, "nested deeper"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		expect_bad(cases[i].line, strlen(cases[i].line), cases[i].err,
			   cases[i].msg);
	/* Brackets inside strings do not count. */
	struct ht_payment p;
	char *line = with("device", "\"[[[[[[[[[[[[[[[[[[[[\"");
	assert_int_equal(parse(line, &p, NULL, 0), HT_OK);
	/* A NUL byte, and a line over the limit (even a valid one). */
	char nul[] = DESIGN_LINE;
	nul[10] = '\0';
	expect_bad(nul, sizeof nul - 1, HT_ERR_INVALID, "NUL byte");
	size_t big = HT_PAYMENT_LINE_BYTES_MAX + 1;
	char *long_line = malloc(big + 1);
	assert_non_null(long_line);
	memset(long_line, ' ', big);
	memcpy(long_line, DESIGN_LINE, strlen(DESIGN_LINE));
	long_line[big] = '\0';
	expect_bad(long_line, big, HT_ERR_LIMIT, "longer than 4096");
	assert_int_equal(ht_payment_parse(long_line, big - 1, &p, NULL, 0), HT_OK);
	free(long_line);
	/* No room for a message is fine. */
	assert_int_equal(ht_payment_parse("[]", 2, &p, NULL, 0), HT_ERR_INVALID);
}

static void test_format_refuses_invalid(void **state)
{
	(void)state;
	char buf[HT_PAYMENT_FORMAT_BYTES_MAX + 1];
	struct ht_payment p = design_payment();
	p.amount = 0;
	assert_int_equal(ht_payment_format(&p, buf, sizeof buf), 0);
	p = design_payment();
	p.channel = HT_CHANNEL__COUNT;
	assert_int_equal(ht_payment_format(&p, buf, sizeof buf), 0);
	p = design_payment();
	p.ts_ms = -1;
	assert_int_equal(ht_payment_format(&p, buf, sizeof buf), 0);
	p.ts_ms = HT_PAYMENT_TS_MS_MAX + 1;
	assert_int_equal(ht_payment_format(&p, buf, sizeof buf), 0);
	p = design_payment();
	p.id[0] = '\0';
	assert_int_equal(ht_payment_format(&p, buf, sizeof buf), 0);
	p = design_payment();
	memset(p.payer, 'a', sizeof p.payer); /* not NUL-terminated */
	assert_int_equal(ht_payment_format(&p, buf, sizeof buf), 0);
	p = design_payment();
	strcpy(p.currency, "cn");
	assert_int_equal(ht_payment_format(&p, buf, sizeof buf), 0);
	p = design_payment();
	strcpy(p.device, "a\tb");
	assert_int_equal(ht_payment_format(&p, buf, sizeof buf), 0);
	p = design_payment();
	strcpy(p.ip, "\xff");
	assert_int_equal(ht_payment_format(&p, buf, sizeof buf), 0);
	/* The largest payment fits HT_PAYMENT_FORMAT_BYTES_MAX. */
	p = design_payment();
	memset(p.id, '"', sizeof p.id - 1);
	memset(p.payer, '\\', sizeof p.payer - 1);
	memset(p.payee, '"', sizeof p.payee - 1);
	memset(p.device, '"', sizeof p.device - 1);
	memset(p.ip, '"', sizeof p.ip - 1);
	memset(p.payer_participant, '"', sizeof p.payer_participant - 1);
	memset(p.payee_participant, '"', sizeof p.payee_participant - 1);
	p.amount = UINT64_MAX;
	p.channel = HT_CHANNEL_CASH_OUT;
	size_t n = ht_payment_format(&p, buf, sizeof buf);
	assert_true(n > 0 && n <= HT_PAYMENT_FORMAT_BYTES_MAX);
	struct ht_payment q;
	assert_int_equal(ht_payment_parse(buf, n, &q, NULL, 0), HT_OK);
	assert_same_payment(&p, &q);
}

static void test_timestamps(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int64_t ms;
	} ok[] = {
		{"1970-01-01T00:00:00.000Z", 0},
		{"2026-03-01T08:00:00.120Z", DESIGN_TS_MS},
		{"2000-02-29T12:00:00.000Z", 951825600000LL},
		{"9999-12-31T23:59:59.999Z", HT_PAYMENT_TS_MS_MAX},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		int64_t ms;
		char out[HT_PAYMENT_TS_BYTES];
		assert_int_equal(ht_payment_ts_parse(ok[i].s, strlen(ok[i].s), &ms),
				 HT_OK);
		assert_int_equal(ms, ok[i].ms);
		assert_int_equal(ht_payment_ts_format(ms, out), 24);
		assert_string_equal(out, ok[i].s);
	}
	static const char *const bad[] = {
		"2100-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z",
		"2026-00-01T00:00:00Z", "2026-03-00T00:00:00Z", "2026-03-01T00:00:00z",
		"2026-03-01T00:00:00.000", "2026-03-01T00:00:00.000Z ", "+2026-03-01T00:00:00Z",
		"2026-03-01T00:00:00-00:00", "2026-03-01T00:00:00.0a0Z", "",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int64_t ms;
		if (ht_payment_ts_parse(bad[i], strlen(bad[i]), &ms) != HT_ERR_INVALID)
			fail_msg("accepted '%s'", bad[i]);
	}
	char out[HT_PAYMENT_TS_BYTES];
	assert_int_equal(ht_payment_ts_format(-1, out), 0);
	assert_int_equal(ht_payment_ts_format(HT_PAYMENT_TS_MS_MAX + 1, out), 0);
	/* A sweep over the whole range round-trips. */
	for (int64_t ms = 0; ms < HT_PAYMENT_TS_MS_MAX; ms += 9876543210987LL + 7) {
		int64_t back;
		assert_int_equal(ht_payment_ts_format(ms, out), 24);
		assert_int_equal(ht_payment_ts_parse(out, 24, &back), HT_OK);
		assert_int_equal(back, ms);
	}
}

static void test_names(void **state)
{
	(void)state;
	for (int c = 0; c < HT_CHANNEL__COUNT; c++) {
		const char *n = ht_channel_name((enum ht_channel)c);
		enum ht_channel back;
		assert_non_null(n);
		assert_int_equal(ht_channel_parse(n, strlen(n), &back), HT_OK);
		assert_int_equal(back, c);
	}
	assert_null(ht_channel_name(HT_CHANNEL__COUNT));
	assert_string_equal(ht_channel_name(HT_CHANNEL_CASH_IN), "cash_in");
	enum ht_channel ch;
	assert_int_equal(ht_channel_parse("qrx", 2, &ch), HT_OK); /* "qr" */
	assert_int_equal(ht_channel_parse("q", 1, &ch), HT_ERR_INVALID);
	for (int t = 0; t < HT_FRAUD__COUNT; t++) {
		const char *n = ht_fraud_type_name((enum ht_fraud_type)t);
		enum ht_fraud_type back;
		assert_non_null(n);
		assert_int_equal(ht_fraud_type_parse(n, strlen(n), &back), HT_OK);
		assert_int_equal(back, t);
	}
	assert_null(ht_fraud_type_name(HT_FRAUD__COUNT));
	assert_string_equal(ht_fraud_type_name(HT_FRAUD_APP_SCAM), "app_scam");
	enum ht_fraud_type ft;
	assert_int_equal(ht_fraud_type_parse("scam", 4, &ft), HT_ERR_INVALID);
}

static void test_labels(void **state)
{
	(void)state;
	char buf[HT_LABEL_FORMAT_BYTES_MAX + 1], err[256];
	struct ht_label l = {.id = "t-000001", .fraud = false, .type = HT_FRAUD_NONE};
	size_t n = ht_label_format(&l, buf, sizeof buf);
	assert_string_equal(buf, "{\"id\":\"t-000001\",\"fraud\":false,\"type\":\"none\"}");
	assert_int_equal(n, strlen(buf));
	for (int t = 1; t < HT_FRAUD__COUNT; t++) {
		struct ht_label a = {.id = "t-9", .fraud = true,
				     .type = (enum ht_fraud_type)t}, b;
		n = ht_label_format(&a, buf, sizeof buf);
		assert_true(n > 0);
		assert_int_equal(ht_label_parse(buf, n, &b, err, sizeof err), HT_OK);
		assert_string_equal(b.id, "t-9");
		assert_true(b.fraud);
		assert_int_equal(b.type, t);
	}
	l.fraud = true; /* contradicts "none" */
	assert_int_equal(ht_label_format(&l, buf, sizeof buf), 0);
	static const struct bad bad[] = {
		{"{\"id\":\"t\",\"fraud\":true,\"type\":\"none\"}", HT_ERR_INVALID, "contradicts"},
		{"{\"id\":\"t\",\"fraud\":false,\"type\":\"mule\"}", HT_ERR_INVALID, "contradicts"},
		{"{\"id\":\"t\",\"fraud\":\"false\",\"type\":\"none\"}", HT_ERR_INVALID, "fraud: expected"},
		{"{\"id\":\"t\",\"type\":\"none\"}", HT_ERR_INVALID, "fraud: missing"},
		{"{\"id\":\"t\",\"fraud\":false}", HT_ERR_INVALID, "type: missing"},
		{"{\"id\":\"t\",\"fraud\":true,\"type\":\"phishing\"}", HT_ERR_INVALID, "type: 'phishing' is unknown"},
		{"{\"fraud\":true,\"type\":\"mule\"}", HT_ERR_INVALID, "id: missing"},
		{"[1]", HT_ERR_INVALID, "expected a JSON object"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct ht_label x;
		err[0] = '\0';
		enum ht_err e = ht_label_parse(bad[i].line, strlen(bad[i].line), &x,
					       err, sizeof err);
		if (e != bad[i].err || !strstr(err, bad[i].msg))
			fail_msg("%s: got %d '%s'", bad[i].line, e, err);
	}
	/* Unknown keys are ignored. */
	struct ht_label x;
	const char *extra = "{\"type\":\"mule\",\"note\":[1],\"fraud\":true,\"id\":\"q\"}";
	assert_int_equal(ht_label_parse(extra, strlen(extra), &x, NULL, 0), HT_OK);
	assert_int_equal(x.type, HT_FRAUD_MULE);
}

/* ---- simulator ------------------------------------------------------------- */

struct run {
	char *pay, *lab;
	size_t pay_len, lab_len;
	struct ht_sim_stats st;
};

static void run_sim(uint64_t seed, uint32_t parties, uint32_t days,
		    double rate, struct run *r)
{
	struct ht_sim_options o;
	ht_sim_options_default(&o);
	o.seed = seed;
	o.parties = parties;
	o.days = days;
	o.fraud_rate = rate;
	struct ht_sim *s;
	assert_int_equal(ht_sim_create(&o, &s), HT_OK);
	FILE *pf = open_memstream(&r->pay, &r->pay_len);
	FILE *lf = open_memstream(&r->lab, &r->lab_len);
	assert_non_null(pf);
	assert_non_null(lf);
	assert_int_equal(ht_sim_write(s, pf, lf, NULL, NULL), HT_OK);
	ht_sim_stats(s, &r->st);
	assert_int_equal(fclose(pf), 0);
	assert_int_equal(fclose(lf), 0);
	ht_sim_destroy(s);
}

static void free_run(struct run *r)
{
	free(r->pay);
	free(r->lab);
}

static void test_sim_deterministic(void **state)
{
	(void)state;
	struct run a, b, c, d;
	run_sim(42, 500, 3, 0.02, &a);
	run_sim(42, 500, 3, 0.02, &b);
	run_sim(43, 500, 3, 0.02, &c);
	assert_true(a.st.payments > 1000);
	assert_int_equal(a.pay_len, b.pay_len);
	assert_int_equal(a.lab_len, b.lab_len);
	assert_memory_equal(a.pay, b.pay, a.pay_len);
	assert_memory_equal(a.lab, b.lab, a.lab_len);
	assert_true(a.pay_len != c.pay_len ||
		    memcmp(a.pay, c.pay, a.pay_len) != 0);
	/* A shorter run is a prefix of a longer one. */
	run_sim(42, 500, 5, 0.02, &d);
	assert_true(d.pay_len > a.pay_len && d.lab_len > a.lab_len);
	assert_memory_equal(a.pay, d.pay, a.pay_len);
	assert_memory_equal(a.lab, d.lab, a.lab_len);
	free_run(&a);
	free_run(&b);
	free_run(&c);
	free_run(&d);
}

/* The participant prefix of a party reference ("bankA:c1" → "bankA"). */
static void assert_prefix(const char *party, const char *participant)
{
	size_t n = strlen(participant);
	assert_true(!strncmp(party, participant, n) && party[n] == ':');
}

static void check_payment(const struct ht_payment *p, const struct ht_label *l,
			  uint64_t index, int64_t *last_ts)
{
	char want_id[32];
	snprintf(want_id, sizeof want_id, "t-%09llu", (unsigned long long)index);
	assert_string_equal(p->id, want_id);
	assert_string_equal(l->id, p->id);
	assert_true(p->ts_ms >= *last_ts);
	*last_ts = p->ts_ms;
	assert_true(p->amount > 0);
	assert_string_equal(p->currency, "CNY");
	assert_prefix(p->payer, p->payer_participant);
	assert_prefix(p->payee, p->payee_participant);
	assert_string_not_equal(p->payer, p->payee);
	assert_int_equal(l->fraud, l->type != HT_FRAUD_NONE);
	/* The written line reads back as the same payment. */
	char buf[HT_PAYMENT_FORMAT_BYTES_MAX + 1];
	struct ht_payment q;
	size_t n = ht_payment_format(p, buf, sizeof buf);
	assert_true(n > 0);
	assert_int_equal(ht_payment_parse(buf, n, &q, NULL, 0), HT_OK);
	assert_same_payment(p, &q);
}

static void test_sim_properties(void **state)
{
	(void)state;
	struct ht_sim_options o;
	ht_sim_options_default(&o);
	o.seed = 7;
	o.parties = 1000;
	o.days = 4;
	struct ht_sim *s;
	assert_int_equal(ht_sim_create(&o, &s), HT_OK);
	struct ht_payment p;
	struct ht_label l;
	int64_t last = 0;
	uint64_t n = 0, by_channel[HT_CHANNEL__COUNT] = {0};
	enum ht_err err;
	while ((err = ht_sim_next(s, &p, &l)) == HT_OK) {
		check_payment(&p, &l, ++n, &last);
		assert_true(p.ts_ms >= o.start_ms);
		assert_true(p.ts_ms < o.start_ms + 4 * 86400000LL);
		by_channel[p.channel]++;
	}
	assert_int_equal(err, HT_ERR_NOT_FOUND);
	assert_int_equal(ht_sim_next(s, &p, &l), HT_ERR_NOT_FOUND);
	struct ht_sim_stats st;
	ht_sim_stats(s, &st);
	assert_true(st.payments == n);
	assert_int_equal(st.days_generated, 4);
	uint64_t sum = 0;
	for (int t = 0; t < HT_FRAUD__COUNT; t++)
		sum += st.by_type[t];
	assert_true(sum == n);
	/* About 2.9 payments per party per day, every channel used. */
	assert_true(n > 1000 * 4 * 2 && n < 1000 * 4 * 4);
	for (int c = 0; c < HT_CHANNEL__COUNT; c++)
		if (by_channel[c] == 0)
			fail_msg("no payment by %s", ht_channel_name((enum ht_channel)c));
	ht_sim_destroy(s);
}

static void test_sim_fraud_mix(void **state)
{
	(void)state;
	struct run r;
	run_sim(11, 5000, 7, 0.005, &r);
	uint64_t fraud = r.st.payments - r.st.by_type[HT_FRAUD_NONE];
	for (int t = 1; t < HT_FRAUD__COUNT; t++)
		if (r.st.by_type[t] == 0)
			fail_msg("no %s in %llu payments",
				 ht_fraud_type_name((enum ht_fraud_type)t),
				 (unsigned long long)r.st.payments);
	double share = (double)fraud / (double)r.st.payments;
	if (share < 0.004 || share > 0.006)
		fail_msg("fraud share %.4f, want about 0.005", share);
	/* Labels: one line per payment, same ids in the same order. */
	size_t lines = 0;
	for (size_t i = 0; i < r.lab_len; i++)
		lines += r.lab[i] == '\n';
	assert_true(lines == r.st.payments);
	const char *p = r.pay, *l = r.lab;
	for (size_t i = 0; i < lines; i++) {
		const char *pe = strchr(p, '\n'), *le = strchr(l, '\n');
		struct ht_payment x;
		struct ht_label y;
		assert_int_equal(ht_payment_parse(p, (size_t)(pe - p), &x, NULL, 0), HT_OK);
		assert_int_equal(ht_label_parse(l, (size_t)(le - l), &y, NULL, 0), HT_OK);
		assert_string_equal(x.id, y.id);
		p = pe + 1;
		l = le + 1;
	}
	free_run(&r);
	/* No fraud at rate 0. */
	run_sim(11, 300, 3, 0, &r);
	assert_true(r.st.payments > 0);
	assert_true(r.st.by_type[HT_FRAUD_NONE] == r.st.payments);
	free_run(&r);
}

static void test_sim_bad_options(void **state)
{
	(void)state;
	struct ht_sim_options o;
	struct ht_sim *s = (struct ht_sim *)&o;
	ht_sim_options_default(&o);
	o.parties = HT_SIM_PARTIES_MIN - 1;
	assert_int_equal(ht_sim_create(&o, &s), HT_ERR_LIMIT);
	assert_null(s);
	o.parties = HT_SIM_PARTIES_MAX + 1;
	assert_int_equal(ht_sim_create(&o, &s), HT_ERR_LIMIT);
	ht_sim_options_default(&o);
	o.days = 0;
	assert_int_equal(ht_sim_create(&o, &s), HT_ERR_LIMIT);
	o.days = HT_SIM_DAYS_MAX + 1;
	assert_int_equal(ht_sim_create(&o, &s), HT_ERR_LIMIT);
	ht_sim_options_default(&o);
	o.start_ms += 1;
	assert_int_equal(ht_sim_create(&o, &s), HT_ERR_INVALID);
	ht_sim_options_default(&o);
	assert_int_equal(ht_sim_date_parse("9999-12-31", &o.start_ms), HT_OK);
	o.days = 2;
	assert_int_equal(ht_sim_create(&o, &s), HT_ERR_INVALID);
	ht_sim_options_default(&o);
	o.fraud_rate = NAN;
	assert_int_equal(ht_sim_create(&o, &s), HT_ERR_INVALID);
	o.fraud_rate = -0.001;
	assert_int_equal(ht_sim_create(&o, &s), HT_ERR_INVALID);
	o.fraud_rate = 0.51;
	assert_int_equal(ht_sim_create(&o, &s), HT_ERR_INVALID);
	ht_sim_destroy(NULL);
	int64_t ms;
	assert_int_equal(ht_sim_date_parse("2026-03-01", &ms), HT_OK);
	assert_int_equal(ms, DESIGN_TS_MS - 8 * 3600000LL - 120);
	assert_int_equal(ht_sim_date_parse("2026-02-30", &ms), HT_ERR_INVALID);
	assert_int_equal(ht_sim_date_parse("2026-03-1", &ms), HT_ERR_INVALID);
	assert_int_equal(ht_sim_date_parse("2026-03-01T", &ms), HT_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_exact_and_round_trip),
		cmocka_unit_test(test_parse_accepted_forms),
		cmocka_unit_test(test_parse_missing_fields),
		cmocka_unit_test(test_parse_bad_values),
		cmocka_unit_test(test_parse_bad_lines),
		cmocka_unit_test(test_format_refuses_invalid),
		cmocka_unit_test(test_timestamps),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_labels),
		cmocka_unit_test(test_sim_deterministic),
		cmocka_unit_test(test_sim_properties),
		cmocka_unit_test(test_sim_fraud_mix),
		cmocka_unit_test(test_sim_bad_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

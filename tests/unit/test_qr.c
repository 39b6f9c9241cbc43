/*
 * test_qr.c — the QR module (qr.h): the EMVCo MPM payloads and CPM codes
 * of $HT_SHARED/conformance/ (emv_mpm.tsv, emv_cpm.md; read from there,
 * never copied; those tests skip, saying so, when the folder is absent),
 * every error code on hand-made faults, make -> parse round trips with
 * multi-byte names, the makers' refusals, and the images. Decoding the
 * PNG back with zbar is tests/integration/qr.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "huitong/qr.h"

/* ---- conformance files -------------------------------------------------- */

static char *mpm_tsv, *cpm_md; /* whole files, NULL when absent */

static char *read_shared(const char *name)
{
	const char *shared = getenv("HT_SHARED");
	char path[4096];
	snprintf(path, sizeof path, "%s/conformance/%s",
		 shared ? shared : "../shared", name);
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "test_qr: %s absent: its conformance tests are "
				"skipped (set HT_SHARED)\n", path);
		return NULL;
	}
	char *buf = malloc(1 << 20);
	assert_non_null(buf);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static int load(void **state)
{
	(void)state;
	mpm_tsv = read_shared("emv_mpm.tsv");
	cpm_md = read_shared("emv_cpm.md");
	return 0;
}

static int unload(void **state)
{
	(void)state;
	free(mpm_tsv);
	free(cpm_md);
	return 0;
}

#define NEED(v)                                                          \
	do {                                                             \
		if (!(v)) {                                              \
			fprintf(stderr, "  skipped: no conformance data\n"); \
			skip();                                          \
		}                                                        \
	} while (0)

struct row {
	char id[16], valid[8], complete[8], missing[32];
	const char *payload;
	size_t payload_len;
};

/* The next data row of the TSV at *p (NUL-terminated lines are not
 * assumed: the payload is a span). false at the end. */
static bool next_row(const char **p, struct row *r)
{
	while (**p) {
		const char *line = *p, *eol = strchr(line, '\n');
		if (!eol)
			eol = line + strlen(line);
		*p = *eol ? eol + 1 : eol;
		if (line[0] == '#' || line == eol)
			continue;
		const char *col[6];
		size_t len[6], n = 0;
		for (const char *c = line; n < 6; n++) {
			const char *tab = memchr(c, '\t', (size_t)(eol - c));
			col[n] = c;
			len[n] = (size_t)((n < 5 && tab ? tab : eol) - c);
			c = n < 5 && tab ? tab + 1 : eol;
		}
		snprintf(r->id, sizeof r->id, "%.*s", (int)len[0], col[0]);
		snprintf(r->valid, sizeof r->valid, "%.*s", (int)len[1], col[1]);
		snprintf(r->complete, sizeof r->complete, "%.*s", (int)len[2], col[2]);
		snprintf(r->missing, sizeof r->missing, "%.*s", (int)len[3], col[3]);
		r->payload = col[5];
		r->payload_len = len[5];
		while (r->payload_len && r->payload[r->payload_len - 1] == '\r')
			r->payload_len--;
		return true;
	}
	return false;
}

/* The missing list as the TSV writes it: "52,59,60". */
static void missing_text(const struct ht_qr_mpm *m, char *out, size_t size)
{
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < m->missing_count; i++) {
		if (m->missing[i] == HT_QR_MISSING_ACCOUNT)
			n += (size_t)snprintf(out + n, size - n, "%s02-51", i ? "," : "");
		else
			n += (size_t)snprintf(out + n, size - n, "%s%02u",
					      i ? "," : "", m->missing[i]);
	}
}

/* Why each invalid row of emv_mpm.tsv must be refused (its source says
 * what is wrong; the code is ours). */
static enum ht_qr_error neg_reason(const char *id)
{
	static const struct {
		const char *id;
		enum ht_qr_error e;
	} reasons[] = {
		{"NEG-01", HT_QR_CRC_MISMATCH},  /* CRC "XXXX" */
		{"NEG-02", HT_QR_TRUNCATED},     /* "6304" and no value */
		{"NEG-03", HT_QR_TRUNCATED},     /* ends in "63" */
		{"NEG-04", HT_QR_MISSING_CRC},   /* no 63 at all */
		{"NEG-05", HT_QR_TRUNCATED},     /* "000" */
		{"NEG-06", HT_QR_DUPLICATE_TAG}, /* 53 twice */
		{"NEG-07", HT_QR_BAD_TAG},       /* ID "AA" */
		{"NEG-08", HT_QR_CRC_MISMATCH},  /* value changed, CRC kept */
		{"NEG-09", HT_QR_CRC_MISMATCH},  /* CRC "M2B3" */
	};
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (!strcmp(reasons[i].id, id))
			return reasons[i].e;
	fail_msg("no expected reason for %s: add it here", id);
	return HT_QR_OK;
}

static void test_mpm_conformance(void **state)
{
	(void)state;
	NEED(mpm_tsv);
	struct ht_qr_mpm m;
	struct row r;
	size_t rows = 0, invalid = 0;
	for (const char *p = mpm_tsv; next_row(&p, &r); rows++) {
		ht_qr_mpm_parse(r.payload, r.payload_len, &m);
		bool want_valid = !strcmp(r.valid, "true");
		if (m.valid != want_valid)
			fail_msg("%s: valid %d, expected %d (error %s at %zu)",
				 r.id, m.valid, want_valid,
				 ht_qr_error_name(m.error), m.error_offset);
		if (!want_valid) {
			invalid++;
			if (m.error != neg_reason(r.id))
				fail_msg("%s: refused for %s, expected %s", r.id,
					 ht_qr_error_name(m.error),
					 ht_qr_error_name(neg_reason(r.id)));
			assert_false(m.complete);
			continue;
		}
		char missing[64];
		missing_text(&m, missing, sizeof missing);
		if (m.complete != !strcmp(r.complete, "true") ||
		    strcmp(missing, r.missing))
			fail_msg("%s: complete %d missing '%s', expected %s '%s'",
				 r.id, m.complete, missing, r.complete, r.missing);
	}
	assert_int_equal(rows, 46);
	assert_int_equal(invalid, 9);
}

/* ---- hand-made faults ------------------------------------------------- */

/* p with its CRC (re)computed: p ends in "6304" and gets 4 hex digits. */
static const char *with_crc(const char *p)
{
	static char buf[HT_QR_MPM_BYTES_MAX + 8];
	size_t n = strlen(p);
	assert_true(n + 5 <= sizeof buf);
	memcpy(buf, p, n);
	snprintf(buf + n, 5, "%04X", ht_qr_crc16(p, n));
	return buf;
}

static enum ht_qr_error parse_str(const char *p, struct ht_qr_mpm *m)
{
	return ht_qr_mpm_parse(p, strlen(p), m);
}

#define BASE "000201010211" "26180007cn.test0103m77" "52045812" "5303156" \
	     "5802CN" "5904Shop" "6007BEIJING"

static void test_mpm_crc(void **state)
{
	(void)state;
	assert_int_equal(ht_qr_crc16("123456789", 9), 0x29b1);
	assert_int_equal(ht_qr_crc16("", 0), 0xffff);
	struct ht_qr_mpm m;
	const char *ok = with_crc(BASE "6304");
	assert_int_equal(parse_str(ok, &m), HT_QR_OK);
	assert_true(m.valid && m.complete);
	char lower[256];
	snprintf(lower, sizeof lower, "%s", ok);
	for (char *c = lower + strlen(lower) - 4; *c; c++)
		*c = (char)(*c >= 'A' && *c <= 'F' ? *c - 'A' + 'a' : *c);
	assert_int_equal(parse_str(lower, &m), HT_QR_OK); /* either case */
	char flipped[256];
	snprintf(flipped, sizeof flipped, "%s", ok);
	flipped[strstr(flipped, "Shop") - flipped] ^= 1; /* one bit of a value */
	assert_int_equal(parse_str(flipped, &m), HT_QR_CRC_MISMATCH);
	assert_int_equal(m.error_id, 63);
	assert_int_equal(parse_str(BASE, &m), HT_QR_MISSING_CRC);
	assert_int_equal(parse_str(BASE "630312A", &m), HT_QR_BAD_LENGTH);
}

static void test_mpm_structure(void **state)
{
	(void)state;
	struct ht_qr_mpm m;
	assert_int_equal(ht_qr_mpm_parse("", 0, &m), HT_QR_TRUNCATED);
	assert_int_equal(parse_str("0002", &m), HT_QR_TRUNCATED);
	assert_int_equal(parse_str("00020", &m), HT_QR_TRUNCATED);
	assert_int_equal(parse_str("0A0201", &m), HT_QR_BAD_TAG);
	assert_int_equal(parse_str("000A01", &m), HT_QR_BAD_LENGTH);
	assert_int_equal(parse_str("0000", &m), HT_QR_BAD_LENGTH);
	assert_int_equal(m.error_id, 0);
	/* 00 first, 63 last */
	assert_int_equal(parse_str(with_crc("52045812000201" "6304"), &m),
			 HT_QR_BAD_TAG);
	char after[256];
	snprintf(after, sizeof after, "%s5802CN", with_crc(BASE "6304"));
	assert_int_equal(parse_str(after, &m), HT_QR_BAD_TAG);
	/* duplicates at the top and inside a template */
	assert_int_equal(parse_str(with_crc(BASE "5802CN6304"), &m),
			 HT_QR_DUPLICATE_TAG);
	assert_int_equal(m.error_id, 58);
	assert_int_equal(parse_str(with_crc("000201" "62120102ab0102cd" "6304"), &m),
			 HT_QR_DUPLICATE_TAG);
	assert_int_equal(m.error_id, 62);
	assert_int_equal(m.error_sub_id, 1);
	/* a sub-field running past its template; a remainder too short */
	assert_int_equal(parse_str(with_crc("000201" "62080105abcdefgh" "6304"), &m),
			 HT_QR_BAD_LENGTH);
	assert_int_equal(parse_str(with_crc("000201" "62090103abc01" "6304"), &m),
			 HT_QR_BAD_LENGTH);
	assert_int_equal(parse_str(with_crc("000201" "6204ab01" "6304"), &m),
			 HT_QR_BAD_TAG);
	assert_int_equal(parse_str(with_crc("000201" "6203abc" "6304"), &m),
			 HT_QR_BAD_LENGTH);
	/* bad UTF-8 in a value */
	assert_int_equal(parse_str(with_crc("000201" "5902\xc3\x28" "6304"), &m),
			 HT_QR_BAD_VALUE);
	/* the size limits */
	char big[HT_QR_MPM_BYTES_MAX + 2];
	memset(big, '0', sizeof big);
	assert_int_equal(ht_qr_mpm_parse(big, sizeof big, &m), HT_QR_BAD_LENGTH);
	char many[700] = "000201";
	for (int i = 0; i < 6; i++) /* 6 x 99 characters: past 512 */
		snprintf(many + strlen(many), sizeof many - strlen(many),
			 "%02d99%099d", 65 + i, 0);
	assert_int_equal(parse_str(many, &m), HT_QR_BAD_LENGTH);
}

static void test_mpm_values(void **state)
{
	(void)state;
	static const struct {
		const char *objects;
		bool valid;
	} cases[] = {
		{"5406123.45", true}, {"540210", true}, {"54139999999999.99", true},
		{"54041.2.", false}, {"5403.12", false}, {"54031.", false},
		{"54041,00", false}, {"54141234567890.123", false},
		{"0102 1", false}, {"010213", false}, {"010212", true},
		{"5302CN", false}, {"5503001", false}, {"550203", true},
		{"550204", false}, {"57052.500", true}, {"570612.500", false},
		{"5602x1", false}, {"641100021a0101b", false},
		{"64110002Z10101b", false}, {"64120002zh0102ab", true},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char p[256];
		snprintf(p, sizeof p, "000201%s6304", cases[i].objects);
		struct ht_qr_mpm m;
		parse_str(with_crc(p), &m);
		if (m.valid != cases[i].valid)
			fail_msg("%s: valid %d (%s), expected %d",
				 cases[i].objects, m.valid,
				 ht_qr_error_name(m.error), cases[i].valid);
		if (!cases[i].valid && m.error != HT_QR_BAD_VALUE &&
		    m.error != HT_QR_BAD_LENGTH)
			fail_msg("%s: %s", cases[i].objects,
				 ht_qr_error_name(m.error));
	}
	/* country must be upper-case letters */
	struct ht_qr_mpm m;
	assert_int_equal(parse_str(with_crc("0002015802cn6304"), &m),
			 HT_QR_BAD_VALUE);
	assert_int_equal(m.error_id, 58);
	/* a value missing entirely: valid, not complete */
	assert_int_equal(parse_str(with_crc("0002016304"), &m), HT_QR_OK);
	assert_false(m.complete);
	char missing[64];
	missing_text(&m, missing, sizeof missing);
	assert_string_equal(missing, "52,53,58,59,60,02-51");
}

static void test_mpm_utf8_lengths(void **state)
{
	(void)state;
	struct ht_qr_mpm m;
	/* 4 characters, 12 bytes: the length says 04 */
	const char *p = with_crc("000201" "5904最佳运输" "6304");
	assert_int_equal(parse_str(p, &m), HT_QR_OK);
	const struct ht_qr_field *f = ht_qr_mpm_get(&m, 59);
	assert_non_null(f);
	assert_int_equal(f->length, 4);
	assert_int_equal(f->size, 12);
	assert_memory_equal(m.payload + f->offset, "最佳运输", 12);
	/* a byte count where a character count belongs is refused */
	assert_int_equal(parse_str(with_crc("000201" "5912最佳运输" "6304"), &m),
			 HT_QR_MISSING_CRC); /* "6304" and the CRC read as name */
	/* an emoji (4 bytes) in a template's sub-field */
	assert_int_equal(parse_str(with_crc("000201" "64120002ZH0102\xf0\x9f\x98\x80" "x" "6304"), &m),
			 HT_QR_OK);
	f = ht_qr_mpm_sub(&m, ht_qr_mpm_get(&m, 64), 1);
	assert_non_null(f);
	assert_int_equal(f->size, 5);
}

/* ---- the maker -------------------------------------------------------- */

static json_t *spec_of(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		fail_msg("bad test JSON: %s: %s", jerr.text, text);
	return j;
}

/* make(spec) -> parse -> fields must equal spec (the SPEC shape) and the
 * code must be valid and complete. */
static void round_trip(json_t *spec, char *out)
{
	char err[256] = "";
	size_t len;
	if (ht_qr_mpm_make(spec, out, HT_QR_MPM_BYTES_MAX + 1, &len, err,
			   sizeof err))
		fail_msg("make refused: %s", err);
	assert_int_equal(strlen(out), len);
	struct ht_qr_mpm m;
	assert_int_equal(ht_qr_mpm_parse(out, len, &m), HT_QR_OK);
	assert_true(m.complete);
	json_t *j;
	assert_int_equal(ht_qr_mpm_to_json(&m, &j), HT_OK);
	json_t *fields = json_object_get(j, "fields");
	json_t *want = json_deep_copy(spec);
	json_object_del(want, "payload_format_indicator");
	if (!json_equal(fields, want)) {
		char *a = json_dumps(fields, JSON_SORT_KEYS);
		char *b = json_dumps(want, JSON_SORT_KEYS);
		fail_msg("round trip differs:\n got %s\nwant %s", a, b);
	}
	json_decref(want);
	json_decref(j);
}

static void test_mpm_make(void **state)
{
	(void)state;
	char out[HT_QR_MPM_BYTES_MAX + 1];
	json_t *spec = spec_of(
		"{\"point_of_initiation\":\"12\","
		"\"merchant_account\":{\"26\":{\"00\":\"cn.huitong\",\"01\":\"bankB:m77\"}},"
		"\"mcc\":\"5812\",\"currency\":\"156\",\"amount\":\"23.72\","
		"\"country\":\"CN\",\"merchant_name\":\"最佳运输 Best Transport\","
		"\"merchant_city\":\"北京\",\"postal_code\":\"100000\","
		"\"additional\":{\"05\":\"order-1\",\"01\":\"bill 7\"},"
		"\"alt_language\":{\"00\":\"ZH\",\"01\":\"最佳运输\",\"02\":\"北京\"}}");
	round_trip(spec, out);
	/* ascending IDs, sub-IDs sorted, lengths in characters */
	assert_non_null(strstr(out, "26270010cn.huitong0109bankB:m77"));
	assert_non_null(strstr(out, "5919最佳运输 Best Transport6002北京"));
	assert_non_null(strstr(out, "62210106bill 70507order-1"));
	assert_memory_equal(out, "000201010212", 12);
	assert_memory_equal(out + strlen(out) - 8, "6304", 4);
	json_decref(spec);

	/* primitives 02-25, unreserved templates, fees */
	spec = spec_of(
		"{\"merchant_account\":{\"15\":\"31310000123\",\"02\":\"4000123412341234\"},"
		"\"mcc\":\"4111\",\"currency\":\"840\",\"tip\":\"02\",\"fee_fixed\":\"1.00\","
		"\"country\":\"US\",\"merchant_name\":\"A\",\"merchant_city\":\"B\","
		"\"unreserved\":{\"91\":{\"00\":\"com.example\",\"01\":\"x\"}}}");
	round_trip(spec, out);
	json_decref(spec);
}

static void test_mpm_make_refusals(void **state)
{
	(void)state;
	static const struct {
		const char *spec, *message;
	} cases[] = {
		{"[]", "must be a JSON object"},
		{"{\"mcc\":\"5812\"}", "merchant_account: required"},
		{"{\"merchant_account\":{\"26\":{\"00\":\"x\"}},\"mcc\":\"58\","
		 "\"currency\":\"156\",\"country\":\"CN\",\"merchant_name\":\"a\","
		 "\"merchant_city\":\"b\"}", "mcc: '58' is not a valid value"},
		{"{\"merchant_account\":{\"26\":{\"00\":\"x\"}},\"mcc\":\"5812\","
		 "\"currency\":\"156\",\"country\":\"CN\",\"merchant_name\":\"a\","
		 "\"merchant_city\":\"b\",\"amount\":\"1,00\"}", "amount: '1,00'"},
		{"{\"merchant_account\":{\"26\":{\"00\":\"x\"}},\"mcc\":\"5812\","
		 "\"currency\":\"156\",\"country\":\"CN\",\"merchant_name\":\"a\","
		 "\"merchant_city\":\"b\",\"colour\":\"red\"}", "unknown field 'colour'"},
		{"{\"merchant_account\":{\"52\":\"x\"}}", "merchant_account.52: ID must be 02..51"},
		{"{\"merchant_account\":{\"26\":\"x\"}}", "merchant_account.26: expected an object"},
		{"{\"merchant_account\":{\"26\":{\"0\":\"x\"}}}", "merchant_account.26.0: sub-ID must be two digits"},
		{"{\"merchant_account\":{\"02\":{\"00\":\"x\"}}}", "merchant_account.02: expected a string"},
		{"{\"merchant_account\":{\"26\":{\"00\":\"\"}}}", "merchant_account.26.00: 0 characters"},
		{"{\"merchant_name\":\"a\\nb\"}", "merchant_name: contains a control character"},
		{"{\"amount\":12}", "amount: expected a string"},
		{"{\"rfu\":{\"65\":\"00\"}}", "rfu: IDs 65-79 are reserved"},
		{"{\"payload_format_indicator\":\"02\"}", "payload_format_indicator: must be \"01\""},
		{"{\"alt_language\":{\"00\":\"ZH\"}}", "alt_language: needs 00"},
		{"{\"merchant_account\":{\"26\":{\"00\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
		 "\"01\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}},\"mcc\":\"5812\","
		 "\"currency\":\"156\",\"country\":\"CN\",\"merchant_name\":\"a\","
		 "\"merchant_city\":\"b\"}", "template 26: 114 characters (at most 99)"},
	};
	char out[HT_QR_MPM_BYTES_MAX + 1], err[256];
	size_t len;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *spec = spec_of(cases[i].spec);
		err[0] = '\0';
		enum ht_err e = ht_qr_mpm_make(spec, out, sizeof out, &len, err,
					       sizeof err);
		if (e != HT_ERR_INVALID || !strstr(err, cases[i].message))
			fail_msg("%s: %s '%s', expected '%s'", cases[i].spec,
				 ht_strerror(e), err, cases[i].message);
		json_decref(spec);
	}
	/* over 512 characters in all */
	json_t *spec = spec_of("{\"merchant_account\":{},\"mcc\":\"5812\","
			       "\"currency\":\"156\",\"country\":\"CN\","
			       "\"merchant_name\":\"a\",\"merchant_city\":\"b\"}");
	json_t *acct = json_object_get(spec, "merchant_account");
	for (int id = 2; id <= 7; id++) {
		char key[12], v[100];
		snprintf(key, sizeof key, "%02d", id);
		memset(v, 'x', 99);
		v[99] = '\0';
		json_object_set_new(acct, key, json_string(v));
	}
	assert_int_equal(ht_qr_mpm_make(spec, out, sizeof out, &len, err,
					sizeof err), HT_ERR_LIMIT);
	assert_non_null(strstr(err, "at most 512"));
	/* a buffer too small for the code */
	json_object_clear(acct);
	json_object_set_new(acct, "02", json_string("x"));
	assert_int_equal(ht_qr_mpm_make(spec, out, 20, &len, err, sizeof err),
			 HT_ERR_LIMIT);
	json_decref(spec);
}

/* Every complete conformance payload: parse -> fields -> make -> parse
 * gives the same fields (objects in ascending order; RFU ones dropped,
 * the maker writes none). */
static void test_mpm_conformance_round_trip(void **state)
{
	(void)state;
	NEED(mpm_tsv);
	struct row r;
	size_t n = 0;
	for (const char *p = mpm_tsv; next_row(&p, &r);) {
		if (strcmp(r.complete, "true"))
			continue;
		struct ht_qr_mpm m;
		assert_int_equal(ht_qr_mpm_parse(r.payload, r.payload_len, &m),
				 HT_QR_OK);
		json_t *j;
		assert_int_equal(ht_qr_mpm_to_json(&m, &j), HT_OK);
		json_t *fields = json_deep_copy(json_object_get(j, "fields"));
		json_object_del(fields, "rfu");
		char out[HT_QR_MPM_BYTES_MAX + 1];
		round_trip(fields, out);
		json_decref(fields);
		json_decref(j);
		n++;
	}
	assert_int_equal(n, 19);
}

static void test_mpm_json(void **state)
{
	(void)state;
	struct ht_qr_mpm m;
	parse_str(with_crc(BASE "5802CN6304"), &m);
	json_t *j;
	assert_int_equal(ht_qr_mpm_to_json(&m, &j), HT_OK);
	assert_false(json_is_true(json_object_get(j, "valid")));
	assert_string_equal(json_string_value(json_object_get(j, "error")),
			    "duplicate_tag");
	assert_string_equal(json_string_value(json_object_get(j, "error_tag")), "58");
	assert_int_equal(json_integer_value(json_object_get(j, "error_at")),
			 strlen(BASE));
	assert_null(json_object_get(j, "fields"));
	json_decref(j);
	/* error_at counts characters, not bytes */
	parse_str(with_crc("000201" "5904最佳运输" "5802cn" "6304"), &m);
	assert_int_equal(ht_qr_mpm_to_json(&m, &j), HT_OK);
	assert_int_equal(json_integer_value(json_object_get(j, "error_at")), 18);
	assert_string_equal(json_string_value(json_object_get(j, "error")), "bad_value");
	json_decref(j);
}

/* ---- consumer-presented mode ------------------------------------------ */

static void upper_hex(const uint8_t *v, size_t n, char *out)
{
	ht_hex_encode(v, n, out);
	for (; *out; out++)
		*out = (char)(*out >= 'a' ? *out - 'a' + 'A' : *out);
}

static void test_cpm_conformance(void **state)
{
	(void)state;
	NEED(cpm_md);
	size_t vectors = 0;
	/* each base64 line ("hQVDUFY...") is followed by its hex */
	for (const char *p = strstr(cpm_md, "\nhQVDUFY"); p;
	     p = strstr(p + 1, "\nhQVDUFY")) {
		const char *b64 = p + 1, *eol = strchr(b64, '\n');
		assert_non_null(eol);
		const char *hex = eol + 1, *hex_end = strchr(hex, '\n');
		assert_non_null(hex_end);
		struct ht_qr_cpm c;
		if (ht_qr_cpm_parse(b64, (size_t)(eol - b64), &c))
			fail_msg("vector %zu: %s at %zu", vectors,
				 ht_qr_error_name(c.error), c.error_offset);
		assert_true(c.valid && c.complete);
		char got[2 * HT_QR_CPM_BYTES_MAX + 1];
		upper_hex(c.data, c.size, got);
		assert_int_equal(strlen(got), (size_t)(hex_end - hex));
		assert_memory_equal(got, hex, strlen(got));
		assert_int_equal(c.tlv[0].tag, 0x85);
		json_t *j;
		assert_int_equal(ht_qr_cpm_to_json(&c, &j), HT_OK);
		json_decref(j);
		vectors++;
	}
	assert_int_equal(vectors, 3);
	/* the negatives: hex in backquotes after "hex" */
	static const enum ht_qr_error want[] = {HT_QR_DUPLICATE_TAG,
						HT_QR_TRUNCATED};
	size_t negatives = 0;
	for (const char *p = strstr(cpm_md, "hex `"); p;
	     p = strstr(p + 1, "hex `"), negatives++) {
		const char *h = p + 5, *end = strchr(h, '`');
		uint8_t bytes[64];
		size_t n;
		assert_int_equal(ht_hex_decode(h, (size_t)(end - h), bytes,
					       sizeof bytes, &n), HT_OK);
		struct ht_qr_cpm c;
		assert_true(negatives < 2);
		assert_int_equal(ht_qr_cpm_parse_bytes(bytes, n, &c),
				 want[negatives]);
		assert_false(c.valid);
	}
	assert_int_equal(negatives, 2);
}

/* The CPM-1 vector's fields, by hand (no shared data needed). */
static void test_cpm_decode(void **state)
{
	(void)state;
	struct ht_qr_cpm c;
	const char *b64 = "hQVDUFYwMWEaTwegAAAAVVVVVw8SNFZ4kBI0WNGRIgESNF8=";
	assert_int_equal(ht_qr_cpm_parse(b64, strlen(b64), &c), HT_QR_OK);
	assert_int_equal(c.count, 4);
	assert_int_equal(c.tlv[1].tag, 0x61);
	assert_true(c.tlv[1].constructed);
	assert_int_equal(c.tlv[1].end, 4);
	assert_int_equal(c.tlv[3].tag, 0x57);
	assert_int_equal(c.tlv[3].depth, 1);
	json_t *j;
	assert_int_equal(ht_qr_cpm_to_json(&c, &j), HT_OK);
	json_t *t2 = json_object_get(json_array_get(json_object_get(
		json_array_get(json_object_get(j, "objects"), 1), "objects"), 1),
		"track2");
	assert_string_equal(json_string_value(json_object_get(t2, "pan")),
			    "1234567890123458");
	assert_string_equal(json_string_value(json_object_get(t2, "expiry")), "1912");
	assert_string_equal(json_string_value(json_object_get(t2, "service_code")), "201");
	json_decref(j);
	/* base64 faults */
	assert_int_equal(ht_qr_cpm_parse("hQVDUFY", 7, &c), HT_QR_BAD_VALUE);
	assert_int_equal(ht_qr_cpm_parse("hQVD UFY", 8, &c), HT_QR_BAD_VALUE);
	assert_int_equal(c.error_offset, 4);
	assert_int_equal(ht_qr_cpm_parse("hQ=VDUFY", 8, &c), HT_QR_BAD_VALUE);
	assert_int_equal(ht_qr_cpm_parse("", 0, &c), HT_QR_TRUNCATED);
}

static void test_cpm_structure(void **state)
{
	(void)state;
	static const struct {
		const char *hex;
		enum ht_qr_error e;
	} cases[] = {
		{"85054350563031", HT_QR_OK},
		{"8505435056303261024F00", HT_QR_BAD_VALUE},        /* CPV02 */
		{"6100", HT_QR_BAD_TAG},                            /* 85 not first */
		{"850543505630315A0112", HT_QR_BAD_TAG},            /* 5A at the top */
		{"85054350563031620062 00", HT_QR_DUPLICATE_TAG},
		{"8505435056303161004F", HT_QR_TRUNCATED},
		{"85054350563031610161", HT_QR_BAD_LENGTH},         /* tag cut inside 61 */
		{"850543505630316103500541", HT_QR_BAD_LENGTH},     /* value past 61 */
		{"8505435056303161809F", HT_QR_BAD_LENGTH},         /* indefinite */
		{"85054350563031618300000000", HT_QR_BAD_LENGTH},
		{"85054350563031610400", HT_QR_TRUNCATED},          /* 61 past the end */
		{"850543505630316103008000", HT_QR_BAD_TAG},        /* padding 00 */
		{"85054350563031 6105 9FFFFF0100", HT_QR_BAD_TAG},  /* 4-byte tag */
		{"85054350563031 6104 9F810100", HT_QR_OK},         /* 3-byte tag */
		{"8505435056303161066304630263 00", HT_QR_BAD_TAG}, /* too deep */
		{"850543505630316106 4F0412345678", HT_QR_BAD_VALUE}, /* AID 4 bytes */
		{"85054350563031610A4F05A0000000015A0112", HT_QR_OK},
		{"85054350563031610A4F05A0000000015A011A", HT_QR_BAD_VALUE},
		{"85054350563031610A4F05A0000000015A01F1", HT_QR_BAD_VALUE},
		{"85054350563031610B4F05A000000001570212D3", HT_QR_BAD_VALUE},
		{"85054350563031 6205 5F2D03656E 7A", HT_QR_BAD_LENGTH}, /* past 62 */
		{"85054350563031 6208 5F2D03656E7A", HT_QR_TRUNCATED},
		{"8505435056303162065F2D03656E7A", HT_QR_BAD_VALUE},
		{"8505435056303162075F2D04656E7A68", HT_QR_OK},
		{"85054350563031618103" "9F1000", HT_QR_OK},
		{"8505435056303161820003" "9F1000", HT_QR_OK},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char hex[128];
		size_t k = 0;
		for (const char *s = cases[i].hex; *s; s++)
			if (*s != ' ')
				hex[k++] = *s;
		uint8_t b[64];
		size_t n;
		assert_int_equal(ht_hex_decode(hex, k, b, sizeof b, &n), HT_OK);
		struct ht_qr_cpm c;
		enum ht_qr_error e = ht_qr_cpm_parse_bytes(b, n, &c);
		if (e != cases[i].e)
			fail_msg("%s: %s, expected %s", cases[i].hex,
				 ht_qr_error_name(e), ht_qr_error_name(cases[i].e));
	}
}

static void test_cpm_make(void **state)
{
	(void)state;
	char out[HT_QR_CPM_TEXT_MAX + 1], err[256];
	size_t len;
	struct ht_qr_cpm_spec s = {.aid_hex = "A000000333010102",
				   .label = "UnionPay", .pan = "6212345678901234",
				   .name = "ZHANG/SAN", .language = "zhen"};
	assert_int_equal(ht_qr_cpm_make(&s, out, sizeof out, &len, err,
					sizeof err), HT_OK);
	assert_int_equal(strlen(out), len);
	assert_memory_equal(out, "hQVDUFYwMW", 10);
	struct ht_qr_cpm c;
	assert_int_equal(ht_qr_cpm_parse(out, len, &c), HT_QR_OK);
	assert_true(c.complete);
	json_t *j;
	assert_int_equal(ht_qr_cpm_to_json(&c, &j), HT_OK);
	char *text = json_dumps(j, JSON_COMPACT);
	assert_non_null(strstr(text, "\"digits\":\"6212345678901234\""));
	assert_non_null(strstr(text, "\"text\":\"ZHANG/SAN\""));
	assert_non_null(strstr(text, "\"text\":\"zhen\""));
	free(text);
	json_decref(j);
	/* odd number of digits: F padding; a track 2 instead of a PAN */
	s = (struct ht_qr_cpm_spec){.aid_hex = "A0000000555555",
				    .track2 = "1234567890123458D191220112345"};
	assert_int_equal(ht_qr_cpm_make(&s, out, sizeof out, &len, err,
					sizeof err), HT_OK);
	assert_string_equal(out, "hQVDUFYwMWEaTwegAAAAVVVVVw8SNFZ4kBI0WNGRIgESNF8=");
	/* refusals name the field */
	static const struct {
		struct ht_qr_cpm_spec s;
		const char *message;
	} bad[] = {
		{{.pan = "621234567890"}, "aid"},
		{{.aid_hex = "A0000003", .pan = "621234567890"}, "aid"},
		{{.aid_hex = "A000000333"}, "give exactly one"},
		{{.aid_hex = "A000000333", .pan = "1", .track2 = "1D2512201"}, "give exactly one"},
		{{.aid_hex = "A000000333", .pan = "62123456789x"}, "pan"},
		{{.aid_hex = "A000000333", .pan = "62123456789"}, "pan"},
		{{.aid_hex = "A000000333", .track2 = "1234D25"}, "track2"},
		{{.aid_hex = "A000000333", .pan = "621234567890", .name = "Z"}, "name"},
		{{.aid_hex = "A000000333", .pan = "621234567890", .label = "\x01"}, "label"},
		{{.aid_hex = "A000000333", .pan = "621234567890", .language = "zh-"}, "language"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		enum ht_err e = ht_qr_cpm_make(&bad[i].s, out, sizeof out, &len,
					       err, sizeof err);
		if (e != HT_ERR_INVALID || strncmp(err, bad[i].message,
						   strlen(bad[i].message)))
			fail_msg("case %zu: %s '%s', expected '%s'", i,
				 ht_strerror(e), err, bad[i].message);
	}
	s = (struct ht_qr_cpm_spec){.aid_hex = "A000000333", .pan = "621234567890"};
	assert_int_equal(ht_qr_cpm_make(&s, out, 8, &len, err, sizeof err),
			 HT_ERR_LIMIT);
}

/* ---- images ----------------------------------------------------------- */

static void test_images(void **state)
{
	(void)state;
	const char *p = with_crc(BASE "6304");
	struct ht_qr_image *img;
	assert_int_equal(ht_qr_image_encode(p, strlen(p), NULL, &img), HT_OK);
	unsigned w = ht_qr_image_width(img);
	assert_true(w >= 21 && (w - 17) % 4 == 0);
	/* the finder pattern's corner */
	assert_true(ht_qr_image_dark(img, 0, 0));
	assert_true(ht_qr_image_dark(img, w - 1, 0));
	assert_false(ht_qr_image_dark(img, 7, 7));
	FILE *f = tmpfile();
	assert_non_null(f);
	struct ht_qr_image_options o = {.module_px = 2, .quiet_modules = 4};
	assert_int_equal(ht_qr_image_write_png(img, &o, f), HT_OK);
	rewind(f);
	unsigned char sig[8];
	assert_int_equal(fread(sig, 1, 8, f), 8);
	assert_memory_equal(sig, "\x89PNG\r\n\x1a\n", 8);
	fclose(f);
	f = tmpfile();
	assert_int_equal(ht_qr_image_write_svg(img, NULL, f), HT_OK);
	long n = ftell(f);
	rewind(f);
	char *svg = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(svg, 1, (size_t)n, f), (size_t)n);
	char view[64];
	snprintf(view, sizeof view, "viewBox=\"0 0 %u %u\"", w + 8, w + 8);
	assert_non_null(strstr(svg, view));
	assert_non_null(strstr(svg, "M4 4h7v1h-7z")); /* finder's top row */
	free(svg);
	fclose(f);
	o.module_px = 65;
	f = tmpfile();
	assert_int_equal(ht_qr_image_write_png(img, &o, f), HT_ERR_INVALID);
	fclose(f);
	ht_qr_image_free(img);
	ht_qr_image_free(NULL);
	/* higher error correction: a bigger symbol for the same text */
	struct ht_qr_image_options h = {.ec = HT_QR_EC_H};
	assert_int_equal(ht_qr_image_encode(p, strlen(p), &h, &img), HT_OK);
	assert_true(ht_qr_image_width(img) > w);
	ht_qr_image_free(img);
	assert_int_equal(ht_qr_image_encode("", 0, NULL, &img), HT_ERR_INVALID);
	char big[8000];
	memset(big, 'x', sizeof big);
	assert_int_equal(ht_qr_image_encode(big, sizeof big, NULL, &img),
			 HT_ERR_LIMIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mpm_conformance),
		cmocka_unit_test(test_mpm_crc),
		cmocka_unit_test(test_mpm_structure),
		cmocka_unit_test(test_mpm_values),
		cmocka_unit_test(test_mpm_utf8_lengths),
		cmocka_unit_test(test_mpm_make),
		cmocka_unit_test(test_mpm_make_refusals),
		cmocka_unit_test(test_mpm_conformance_round_trip),
		cmocka_unit_test(test_mpm_json),
		cmocka_unit_test(test_cpm_conformance),
		cmocka_unit_test(test_cpm_decode),
		cmocka_unit_test(test_cpm_structure),
		cmocka_unit_test(test_cpm_make),
		cmocka_unit_test(test_images),
	};
	return cmocka_run_group_tests(tests, load, unload);
}

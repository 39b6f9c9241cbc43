/*
 * test_blocklist.c — the shared block list (blocklist.h): keyed hashes
 * (HMAC-SM3 with the domain and kind, checked against OpenSSL computing
 * HMAC-SM3 separately), the key file (made once, 0600, never replaced,
 * corrupt ones refused), and the list: add, first report stands,
 * contains, remove, re-add, durable across reopen, bad entries refused,
 * many entries (the index grows); the hot-path hasher equals
 * ht_block_hash; a batch add in one transaction; the engine blocks a
 * payment whose payer, payee or device is listed, with its reasons.
 *
 * Owner: risk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "huitong/blocklist.h"
#include "huitong/risk.h"

static char dir[] = "/tmp/ht-blocklist-XXXXXX";

static void rm_dir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void fresh(void)
{
	strcpy(dir, "/tmp/ht-blocklist-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static void test_hash(void **state)
{
	(void)state;
	uint8_t key[HT_BLOCK_KEY_BYTES], a[32], b[32], want[32];
	for (size_t i = 0; i < sizeof key; i++)
		key[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(ht_block_hash(key, HT_BLOCK_PHONE, "+8613800000000", 14, a),
			 HT_OK);
	/* the same with OpenSSL's HMAC over "huitong-block-v1" || 3 || value */
	uint8_t msg[64];
	memcpy(msg, "huitong-block-v1", 16);
	msg[16] = 3;
	memcpy(msg + 17, "+8613800000000", 14);
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	assert_non_null(mac);
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
	OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string("digest", "SM3", 0),
			  OSSL_PARAM_construct_end()};
	size_t len = 0;
	assert_true(EVP_MAC_init(ctx, key, sizeof key, p));
	assert_true(EVP_MAC_update(ctx, msg, 31));
	assert_true(EVP_MAC_final(ctx, want, &len, sizeof want));
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	assert_int_equal(len, 32);
	assert_memory_equal(a, want, 32);
	/* kind and value both count */
	assert_int_equal(ht_block_hash(key, HT_BLOCK_DEVICE, "+8613800000000", 14, b),
			 HT_OK);
	assert_memory_not_equal(a, b, 32);
	assert_int_equal(ht_block_hash(key, HT_BLOCK_PHONE, "+8613800000001", 14, b),
			 HT_OK);
	assert_memory_not_equal(a, b, 32);
	key[0] ^= 1;
	assert_int_equal(ht_block_hash(key, HT_BLOCK_PHONE, "+8613800000000", 14, b),
			 HT_OK);
	assert_memory_not_equal(a, b, 32);
	/* bad input */
	char big[HT_BLOCK_VALUE_BYTES_MAX + 1];
	memset(big, 'x', sizeof big);
	assert_int_equal(ht_block_hash(key, HT_BLOCK_PHONE, big, sizeof big, b),
			 HT_ERR_LIMIT);
	assert_int_equal(ht_block_hash(key, HT_BLOCK_PHONE, big, 0, b), HT_ERR_INVALID);
	assert_int_equal(ht_block_hash(key, 9, "x", 1, b), HT_ERR_INVALID);
	enum ht_block_kind k;
	assert_int_equal(ht_block_kind_parse("device", 6, &k), HT_OK);
	assert_int_equal(k, HT_BLOCK_DEVICE);
	assert_int_equal(ht_block_kind_parse("dev", 3, &k), HT_ERR_INVALID);
	assert_null(ht_block_kind_name(0));
}

static void test_key_file(void **state)
{
	(void)state;
	fresh();
	uint8_t k1[32], k2[32];
	assert_int_equal(ht_block_key_load(dir, false, k1), HT_ERR_NOT_FOUND);
	assert_int_equal(ht_block_key_load(dir, true, k1), HT_OK);
	assert_int_equal(ht_block_key_load(dir, true, k2), HT_OK);
	assert_memory_equal(k1, k2, 32); /* never replaced */
	char path[256];
	snprintf(path, sizeof path, "%s/risk.key", dir);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	FILE *f = fopen(path, "w");
	fputs("not a key\n", f);
	fclose(f);
	assert_int_equal(ht_block_key_load(dir, true, k2), HT_ERR_CORRUPT);
	rm_dir();
}

static struct ht_block_entry entry(enum ht_block_kind k, uint32_t n,
				   const char *who)
{
	struct ht_block_entry e = {.kind = k, .added_ns = 1000 + n};
	uint8_t key[32] = {1};
	char v[32];
	snprintf(v, sizeof v, "bankA:c%u", n);
	assert_int_equal(ht_block_hash(key, k, v, strlen(v), e.hash), HT_OK);
	strcpy(e.reporter, who);
	strcpy(e.reason, "mule");
	return e;
}

static void test_list(void **state)
{
	(void)state;
	fresh();
	struct ht_blocklist *bl;
	assert_int_equal(ht_blocklist_open(dir, &bl), HT_OK);
	struct ht_block_entry a = entry(HT_BLOCK_ACCOUNT, 1, "bankA"), got;
	assert_false(ht_blocklist_contains(bl, a.kind, a.hash));
	assert_int_equal(ht_blocklist_add(bl, &a), HT_OK);
	assert_true(ht_blocklist_contains(bl, a.kind, a.hash));
	assert_false(ht_blocklist_contains(bl, HT_BLOCK_DEVICE, a.hash));
	/* the first report stands */
	struct ht_block_entry again = a;
	strcpy(again.reporter, "bankB");
	assert_int_equal(ht_blocklist_add(bl, &again), HT_ERR_EXISTS);
	assert_int_equal(ht_blocklist_get(bl, a.kind, a.hash, &got), HT_OK);
	assert_string_equal(got.reporter, "bankA");
	/* bad entries */
	struct ht_block_entry bad = entry(HT_BLOCK_PHONE, 2, "");
	assert_int_equal(ht_blocklist_add(bl, &bad), HT_ERR_INVALID);
	bad = entry(HT_BLOCK_PHONE, 2, "bank\nA");
	assert_int_equal(ht_blocklist_add(bl, &bad), HT_ERR_INVALID);
	bad = entry(HT_BLOCK_PHONE, 2, "bankA");
	bad.kind = 7;
	assert_int_equal(ht_blocklist_add(bl, &bad), HT_ERR_INVALID);
	/* many: the index grows; then remove every third */
	for (uint32_t i = 10; i < 5000; i++) {
		struct ht_block_entry e = entry(HT_BLOCK_DEVICE, i, "bankC");
		assert_int_equal(ht_blocklist_add(bl, &e), HT_OK);
	}
	assert_int_equal(ht_blocklist_count(bl), 4991);
	for (uint32_t i = 10; i < 5000; i += 3) {
		struct ht_block_entry e = entry(HT_BLOCK_DEVICE, i, "bankC");
		assert_int_equal(ht_blocklist_remove(bl, e.kind, e.hash), HT_OK);
		assert_int_equal(ht_blocklist_remove(bl, e.kind, e.hash),
				 HT_ERR_NOT_FOUND);
	}
	size_t live = ht_blocklist_count(bl);
	ht_blocklist_close(bl);
	/* durable: reopen and find the same */
	assert_int_equal(ht_blocklist_open(dir, &bl), HT_OK);
	assert_int_equal(ht_blocklist_count(bl), live);
	assert_true(ht_blocklist_contains(bl, a.kind, a.hash));
	for (uint32_t i = 10; i < 5000; i++) {
		struct ht_block_entry e = entry(HT_BLOCK_DEVICE, i, "bankC");
		assert_int_equal(ht_blocklist_contains(bl, e.kind, e.hash),
				 (i - 10) % 3 != 0);
	}
	/* a removed entry may be reported again */
	struct ht_block_entry e = entry(HT_BLOCK_DEVICE, 10, "bankD");
	assert_int_equal(ht_blocklist_add(bl, &e), HT_OK);
	assert_int_equal(ht_blocklist_get(bl, e.kind, e.hash, &got), HT_OK);
	assert_string_equal(got.reporter, "bankD");
	ht_blocklist_close(bl);
	rm_dir();
}

static void test_hasher(void **state)
{
	(void)state;
	uint8_t key[HT_BLOCK_KEY_BYTES], a[32], b[32];
	for (size_t i = 0; i < sizeof key; i++)
		key[i] = (uint8_t)(i * 13 + 5);
	struct ht_block_hasher *h;
	assert_int_equal(ht_block_hasher_new(key, &h), HT_OK);
	char v[HT_BLOCK_VALUE_BYTES_MAX + 2];
	for (size_t len = 1; len <= HT_BLOCK_VALUE_BYTES_MAX; len++) {
		for (size_t i = 0; i < len; i++)
			v[i] = (char)('a' + (i * 7 + len) % 26);
		for (int k = HT_BLOCK_ACCOUNT; k <= HT_BLOCK_PHONE; k++) {
			assert_int_equal(ht_block_hash(key, k, v, len, a), HT_OK);
			assert_int_equal(ht_block_hasher_hash(h, k, v, len, b), HT_OK);
			assert_memory_equal(a, b, 32);
		}
	}
	assert_int_equal(ht_block_hasher_hash(h, HT_BLOCK_DEVICE, v,
					      HT_BLOCK_VALUE_BYTES_MAX + 1, b),
			 HT_ERR_LIMIT);
	assert_int_equal(ht_block_hasher_hash(h, HT_BLOCK_DEVICE, v, 0, b),
			 HT_ERR_INVALID);
	assert_int_equal(ht_block_hasher_hash(h, 9, v, 3, b), HT_ERR_INVALID);
	ht_block_hasher_free(h);
}

static void test_add_many(void **state)
{
	(void)state;
	fresh();
	struct ht_blocklist *bl;
	assert_int_equal(ht_blocklist_open(dir, &bl), HT_OK);
	struct ht_block_entry first = entry(HT_BLOCK_ACCOUNT, 1, "bankA");
	assert_int_equal(ht_blocklist_add(bl, &first), HT_OK);
	struct ht_block_entry e[5] = {
		entry(HT_BLOCK_ACCOUNT, 2, "bankB"),
		entry(HT_BLOCK_ACCOUNT, 1, "bankB"),   /* already listed */
		entry(HT_BLOCK_DEVICE, 3, ""),         /* no reporter */
		entry(HT_BLOCK_ACCOUNT, 2, "bankB"),   /* twice in the batch */
		entry(HT_BLOCK_PHONE, 4, "bankB"),
	};
	enum ht_err r[5];
	assert_int_equal(ht_blocklist_add_many(bl, e, 5, r), HT_OK);
	assert_int_equal(r[0], HT_OK);
	assert_int_equal(r[1], HT_ERR_EXISTS);
	assert_int_equal(r[2], HT_ERR_INVALID);
	assert_int_equal(r[3], HT_ERR_EXISTS);
	assert_int_equal(r[4], HT_OK);
	assert_int_equal(ht_blocklist_count(bl), 3);
	/* a batch of 200 with repeats (beyond the in-batch scan) */
	struct ht_block_entry *m = calloc(200, sizeof *m);
	enum ht_err *mr = calloc(200, sizeof *mr);
	assert_non_null(m);
	assert_non_null(mr);
	for (uint32_t i = 0; i < 200; i++)
		m[i] = entry(HT_BLOCK_DEVICE, 100 + i % 150, "bankC");
	assert_int_equal(ht_blocklist_add_many(bl, m, 200, mr), HT_OK);
	size_t ok = 0;
	for (size_t i = 0; i < 200; i++) {
		assert_true(mr[i] == HT_OK || mr[i] == HT_ERR_EXISTS);
		assert_int_equal(mr[i] == HT_OK, i < 150);
		ok += mr[i] == HT_OK;
	}
	assert_int_equal(ok, 150);
	assert_int_equal(ht_blocklist_count(bl), 153);
	ht_blocklist_close(bl);
	assert_int_equal(ht_blocklist_open(dir, &bl), HT_OK);
	assert_int_equal(ht_blocklist_count(bl), 153);
	assert_true(ht_blocklist_contains(bl, e[4].kind, e[4].hash));
	ht_blocklist_close(bl);
	free(m);
	free(mr);
	rm_dir();
}

static struct ht_payment payment(const char *payer, const char *payee,
				 const char *device)
{
	struct ht_payment p = {.ts_ms = 1767225600000, .amount = 12345,
			       .channel = HT_CHANNEL_P2P};
	snprintf(p.id, sizeof p.id, "t-1");
	snprintf(p.payer, sizeof p.payer, "%s", payer);
	snprintf(p.payee, sizeof p.payee, "%s", payee);
	snprintf(p.payer_participant, sizeof p.payer_participant, "bankA");
	snprintf(p.payee_participant, sizeof p.payee_participant, "bankB");
	snprintf(p.currency, sizeof p.currency, "CNY");
	snprintf(p.device, sizeof p.device, "%s", device);
	return p;
}

static void report(struct ht_blocklist *bl, const uint8_t *key,
		   enum ht_block_kind k, const char *value)
{
	struct ht_block_entry e = {.kind = k, .added_ns = 1};
	assert_int_equal(ht_block_hash(key, k, value, strlen(value), e.hash), HT_OK);
	strcpy(e.reporter, "bankA");
	assert_int_equal(ht_blocklist_add(bl, &e), HT_OK);
}

static void test_engine(void **state)
{
	(void)state;
	fresh();
	uint8_t key[HT_BLOCK_KEY_BYTES];
	assert_int_equal(ht_block_key_load(dir, true, key), HT_OK);
	struct ht_blocklist *bl;
	assert_int_equal(ht_blocklist_open(dir, &bl), HT_OK);
	struct ht_rules_holder *rules;
	assert_int_equal(ht_rules_holder_create(NULL, &rules), HT_OK);
	struct ht_rules_diag diag;
	const char *text = "version 1\nrule big: amount > 10000 => review"
			   " score 50 reason \"big\"\n";
	assert_int_equal(ht_rules_holder_reload(rules, text, strlen(text),
						ht_risk_rule_schema(), &diag),
			 HT_OK);
	struct ht_risk_engine_config cfg = {
		.rules = rules, .state = {.bytes_max = 16u << 20},
		.blocklist = bl, .blocklist_key = key};
	struct ht_risk_engine *e;
	char err[256];
	assert_int_equal(ht_risk_engine_open(&cfg, &e, err, sizeof err), HT_OK);
	struct ht_risk_decision d;
	struct ht_payment p = payment("bankA:c1", "bankB:m7", "d-1");
	/* an empty list stops nothing */
	assert_int_equal(ht_risk_engine_decide(e, &p, &d), HT_OK);
	assert_int_equal(d.decision, HT_DECISION_ALLOW);
	report(bl, key, HT_BLOCK_ACCOUNT, "bankB:mule");
	report(bl, key, HT_BLOCK_DEVICE, "d-bad");
	report(bl, key, HT_BLOCK_PHONE, "bankA:c1"); /* another kind: no match */
	for (int round = 0; round < 2; round++) { /* the second from the cache */
		assert_int_equal(ht_risk_engine_decide(e, &p, &d), HT_OK);
		assert_int_equal(d.decision, HT_DECISION_ALLOW);
		assert_int_equal(d.reason_count, 0);
		struct ht_payment q = payment("bankA:c1", "bankB:mule", "d-1");
		assert_int_equal(ht_risk_engine_decide(e, &q, &d), HT_OK);
		assert_int_equal(d.decision, HT_DECISION_BLOCK);
		assert_int_equal(d.reason_count, 1);
		assert_string_equal(d.reasons[0], HT_RISK_REASON_BLOCKED_PAYEE);
		q = payment("bankB:mule", "bankA:c2", "d-bad");
		q.amount = 2000000; /* 20,000 yuan: the rule fires too; listed first */
		assert_int_equal(ht_risk_engine_decide(e, &q, &d), HT_OK);
		assert_int_equal(d.decision, HT_DECISION_BLOCK);
		assert_int_equal(d.reason_count, 3);
		assert_string_equal(d.reasons[0], HT_RISK_REASON_BLOCKED_PAYER);
		assert_string_equal(d.reasons[1], HT_RISK_REASON_BLOCKED_DEVICE);
		assert_string_equal(d.reasons[2], "big");
		assert_int_equal(d.shadow_decision, HT_DECISION_BLOCK);
	}
	/* removed: the next decision lets it through */
	uint8_t h[32];
	assert_int_equal(ht_block_hash(key, HT_BLOCK_ACCOUNT, "bankB:mule", 10, h),
			 HT_OK);
	assert_int_equal(ht_blocklist_remove(bl, HT_BLOCK_ACCOUNT, h), HT_OK);
	struct ht_payment q = payment("bankA:c1", "bankB:mule", "d-1");
	assert_int_equal(ht_risk_engine_decide(e, &q, &d), HT_OK);
	assert_int_equal(d.decision, HT_DECISION_ALLOW);
	/* a block list without a key is refused */
	cfg.blocklist_key = NULL;
	struct ht_risk_engine *e2 = NULL;
	assert_int_equal(ht_risk_engine_open(&cfg, &e2, err, sizeof err),
			 HT_ERR_INVALID);
	assert_null(e2);
	ht_risk_engine_close(e);
	ht_rules_holder_destroy(rules);
	ht_blocklist_close(bl);
	rm_dir();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash),
		cmocka_unit_test(test_key_file),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_hasher),
		cmocka_unit_test(test_add_many),
		cmocka_unit_test(test_engine),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

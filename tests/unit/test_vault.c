/*
 * test_vault.c — the payment token vault (vault.h): Luhn; token ranges;
 * 100,000 issued tokens all Luhn-valid, unique, as long as their numbers,
 * inside their participant's range and never equal to a vaulted number;
 * the vault's files hold no clear number (every digit run checked); domain
 * controls and who may detokenise, every attempt recorded; lifecycle; key
 * rotation re-seals everything; a tampered sealed number is refused.
 *
 * Owner: switch.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "huitong/vault.h"

#define TOKENS 100000

static char dir[64];

static void fresh(void)
{
	snprintf(dir, sizeof dir, "/tmp/ht-vault-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static void rm_dir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static struct ht_vault *open_vault(void)
{
	struct ht_vault *v;
	char err[256];
	assert_int_equal(ht_vault_open(dir, &v, err, sizeof err), HT_OK);
	return v;
}

static void test_luhn(void **state)
{
	(void)state;
	assert_true(ht_luhn_valid("79927398713", 11));
	assert_false(ht_luhn_valid("79927398710", 11));
	assert_int_equal(ht_luhn_digit("7992739871", 10), '3');
	assert_true(ht_luhn_valid("4111111111111111", 16));
	assert_int_equal(ht_luhn_digit("411111111111111", 15), '1');
	assert_false(ht_luhn_valid("41111x1111111111", 16));
}

static void test_ranges(void **state)
{
	(void)state;
	fresh();
	struct ht_vault *v = open_vault();
	assert_int_equal(ht_vault_range_add(v, "bankA", "990001"), HT_OK);
	assert_int_equal(ht_vault_range_add(v, "bankB", "9900012"), HT_ERR_EXISTS);
	assert_int_equal(ht_vault_range_add(v, "bankB", "99000"), HT_ERR_INVALID);
	assert_int_equal(ht_vault_range_add(v, "bankB", "990001"), HT_ERR_EXISTS);
	assert_int_equal(ht_vault_range_add(v, "bankB", "99000a"), HT_ERR_INVALID);
	assert_int_equal(ht_vault_range_add(v, "bank B", "990002"), HT_ERR_INVALID);
	assert_int_equal(ht_vault_range_add(v, "bankB", "990002"), HT_OK);
	char tok[HT_TOKEN_DIGITS_MAX + 1];
	/* no range for bankC; a number inside a token range; bad numbers */
	assert_int_equal(ht_vault_issue(v, "bankC", "6222020000000001", NULL, 1, tok),
			 HT_ERR_NOT_FOUND);
	assert_int_equal(ht_vault_issue(v, "bankA", "9900021234567890", NULL, 1, tok),
			 HT_ERR_INVALID);
	assert_int_equal(ht_vault_issue(v, "bankA", "62220200000", NULL, 1, tok),
			 HT_ERR_INVALID);
	assert_int_equal(ht_vault_issue(v, "bankA", "62220200000000000001", NULL, 1,
					tok), HT_ERR_INVALID);
	/* a 12-digit number leaves 5 random digits after a 6-digit range */
	assert_int_equal(ht_vault_issue(v, "bankA", "622202000001", NULL, 1, tok),
			 HT_OK);
	assert_int_equal(strlen(tok), 12);
	ht_vault_close(v);
	/* ranges survive a reopen */
	v = open_vault();
	assert_int_equal(ht_vault_range_add(v, "bankC", "9900021"), HT_ERR_EXISTS);
	ht_vault_close(v);
	rm_dir();
}

/* ---- 100,000 tokens ---------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

#define SLOT 20

/* Is s[0..len) one of the sorted numbers? */
static bool is_number(const char (*nums)[SLOT], size_t n, const char *s,
		      size_t len)
{
	char key[SLOT] = {0};
	memcpy(key, s, len);
	return bsearch(key, nums, n, SLOT, cmp_str) != NULL;
}

/* Scan every file of dir for a digit run containing a number. */
static size_t clear_numbers_in_files(const char (*nums)[SLOT], size_t n)
{
	size_t found = 0;
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[sizeof dir + sizeof e->d_name + 2];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		FILE *f = fopen(path, "rb");
		assert_non_null(f);
		fseek(f, 0, SEEK_END);
		long size = ftell(f);
		fseek(f, 0, SEEK_SET);
		char *buf = malloc((size_t)size + 1);
		assert_non_null(buf);
		assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
		fclose(f);
		for (long i = 0; i < size;) {
			long j = i;
			while (j < size && buf[j] >= '0' && buf[j] <= '9')
				j++;
			for (long a = i; j - i >= 16 && a + 16 <= j; a++)
				for (long len = 16; len <= 19 && a + len <= j; len += 3)
					found += is_number(nums, n, buf + a,
							   (size_t)len);
			i = j > i ? j : i + 1;
		}
		free(buf);
	}
	closedir(d);
	return found;
}

static void test_many(void **state)
{
	(void)state;
	fresh();
	struct ht_vault *v = open_vault();
	assert_int_equal(ht_vault_range_add(v, "bankA", "990001"), HT_OK);
	assert_int_equal(ht_vault_range_add(v, "bankB", "99000200"), HT_OK);
	char (*nums)[SLOT] = calloc(TOKENS, SLOT);
	char (*toks)[SLOT] = calloc(TOKENS, SLOT);
	assert_non_null(nums);
	assert_non_null(toks);
	assert_int_equal(ht_vault_batch_begin(v), HT_OK);
	for (size_t i = 0; i < TOKENS; i++) {
		/* real-looking numbers: UnionPay 62 (16 digits) and 19-digit
		 * account numbers, distinct */
		if (i % 2)
			snprintf(nums[i], SLOT, "6222%011zu", i);
		else
			snprintf(nums[i], SLOT, "621700%012zu", i);
		size_t nl = strlen(nums[i]);
		nums[i][nl] = ht_luhn_digit(nums[i], nl);
		nums[i][nl + 1] = '\0';
		const char *who = i % 3 ? "bankA" : "bankB";
		assert_int_equal(ht_vault_issue(v, who, nums[i], NULL, 1000, toks[i]),
				 HT_OK);
		size_t tl = strlen(toks[i]);
		assert_int_equal(tl, strlen(nums[i]));
		assert_true(ht_luhn_valid(toks[i], tl));
		assert_memory_equal(toks[i], i % 3 ? "990001" : "99000200",
				    i % 3 ? 6 : 8);
	}
	assert_int_equal(ht_vault_batch_commit(v), HT_OK);
	/* a few come back as their numbers, to the issuer only */
	for (size_t i = 0; i < TOKENS; i += 997) {
		char num[HT_TOKEN_DIGITS_MAX + 1];
		enum ht_token_refusal why;
		struct ht_token_use u = {.requester = i % 3 ? "bankA" : "bankB",
					 .channel = HT_CHANNEL_QR, .amount = 100,
					 .now_ms = 2000};
		assert_int_equal(ht_vault_detokenize(v, toks[i], &u, num, &why), HT_OK);
		assert_int_equal(why, HT_TOKEN_OK);
		assert_string_equal(num, nums[i]);
		u.requester = "bankZ";
		assert_int_equal(ht_vault_detokenize(v, toks[i], &u, num, &why), HT_OK);
		assert_int_equal(why, HT_TOKEN_FORBIDDEN);
		assert_string_equal(num, "");
	}
	ht_vault_close(v);
	/* unique, and none equal to a number */
	qsort(nums, TOKENS, SLOT, cmp_str);
	qsort(toks, TOKENS, SLOT, cmp_str);
	for (size_t i = 1; i < TOKENS; i++)
		assert_true(strcmp(toks[i - 1], toks[i]) < 0);
	for (size_t i = 0; i < TOKENS; i++)
		assert_false(is_number((const char(*)[SLOT])nums, TOKENS, toks[i],
				       strlen(toks[i])));
	/* the vault's files (db, WAL, keys) hold no clear number */
	assert_int_equal(clear_numbers_in_files((const char(*)[SLOT])nums, TOKENS),
			 0);
	free(nums);
	free(toks);
	rm_dir();
}

/* ---- domains, lifecycle, log, rotation ---------------------------------------------- */

static int count_log(void *ctx, const char *token, const char *requester,
		     int64_t time_ms, const char *result)
{
	(void)token;
	(void)requester;
	(void)time_ms;
	(void)result;
	(*(int *)ctx)++;
	return 0;
}

static enum ht_token_refusal try(struct ht_vault *v, const char *tok,
				 const char *who, enum ht_channel ch,
				 const char *merchant, uint64_t amount,
				 int64_t now)
{
	char num[HT_TOKEN_DIGITS_MAX + 1];
	enum ht_token_refusal why;
	struct ht_token_use u = {.requester = who, .channel = ch,
				 .merchant = merchant, .amount = amount,
				 .now_ms = now};
	assert_int_equal(ht_vault_detokenize(v, tok, &u, num, &why), HT_OK);
	return why;
}

static void test_domain(void **state)
{
	(void)state;
	fresh();
	struct ht_vault *v = open_vault();
	assert_int_equal(ht_vault_range_add(v, "bankA", "990001"), HT_OK);
	struct ht_token_domain d = {.channels = 1u << HT_CHANNEL_QR,
				    .expires_ms = 10000, .max_amount = 5000,
				    .max_uses = 2};
	snprintf(d.merchant, sizeof d.merchant, "bankB:m77");
	char tok[HT_TOKEN_DIGITS_MAX + 1];
	assert_int_equal(ht_vault_issue(v, "bankA", "6222021234567890123", &d,
					1000, tok), HT_OK);
	assert_int_equal(try(v, tok, "bankA", HT_CHANNEL_CARD, "bankB:m77", 10, 2000),
			 HT_TOKEN_CHANNEL);
	assert_int_equal(try(v, tok, "bankA", HT_CHANNEL_QR, "bankB:m78", 10, 2000),
			 HT_TOKEN_MERCHANT);
	assert_int_equal(try(v, tok, "bankA", HT_CHANNEL_QR, NULL, 10, 2000),
			 HT_TOKEN_MERCHANT);
	assert_int_equal(try(v, tok, "bankA", HT_CHANNEL_QR, "bankB:m77", 5001, 2000),
			 HT_TOKEN_AMOUNT);
	assert_int_equal(try(v, tok, "bankA", HT_CHANNEL_QR, "bankB:m77", 5000, 10000),
			 HT_TOKEN_EXPIRED);
	assert_int_equal(try(v, tok, "bankB", HT_CHANNEL_QR, "bankB:m77", 10, 2000),
			 HT_TOKEN_FORBIDDEN);
	assert_int_equal(try(v, "9900019999999999995", "bankA", HT_CHANNEL_QR,
			     "bankB:m77", 10, 2000), HT_TOKEN_NOT_FOUND);
	/* the router may; two uses, then none */
	char num[HT_TOKEN_DIGITS_MAX + 1];
	enum ht_token_refusal why;
	struct ht_token_use router = {.requester = "hub", .router = true,
				      .channel = HT_CHANNEL_QR,
				      .merchant = "bankB:m77", .amount = 5000,
				      .now_ms = 2000};
	assert_int_equal(ht_vault_detokenize(v, tok, &router, num, &why), HT_OK);
	assert_int_equal(why, HT_TOKEN_OK);
	assert_string_equal(num, "6222021234567890123");
	assert_int_equal(try(v, tok, "bankA", HT_CHANNEL_QR, "bankB:m77", 1, 2000),
			 HT_TOKEN_OK);
	assert_int_equal(try(v, tok, "bankA", HT_CHANNEL_QR, "bankB:m77", 1, 2000),
			 HT_TOKEN_USES);
	struct ht_token_info info;
	assert_int_equal(ht_vault_get(v, tok, &info), HT_OK);
	assert_int_equal(info.uses, 2);
	assert_string_equal(info.participant, "bankA");
	/* every attempt recorded: 10 so far, refusals included */
	int n = 0;
	assert_int_equal(ht_vault_log_each(v, NULL, count_log, &n), HT_OK);
	assert_int_equal(n, 10);
	/* lifecycle */
	char t2[HT_TOKEN_DIGITS_MAX + 1];
	assert_int_equal(ht_vault_issue(v, "bankA", "6222021234567890", NULL, 1, t2),
			 HT_OK);
	assert_int_equal(ht_vault_set_state(v, t2, "bankB", false, HT_TOKEN_SUSPENDED),
			 HT_ERR_FORBIDDEN);
	assert_int_equal(ht_vault_set_state(v, t2, "bankA", false, HT_TOKEN_ACTIVE),
			 HT_ERR_INVALID);
	assert_int_equal(ht_vault_set_state(v, t2, "bankA", false, HT_TOKEN_SUSPENDED),
			 HT_OK);
	assert_int_equal(try(v, t2, "bankA", HT_CHANNEL_P2P, NULL, 1, 5),
			 HT_TOKEN_SUSPENDED_R);
	assert_int_equal(ht_vault_set_state(v, t2, "bankA", false, HT_TOKEN_ACTIVE),
			 HT_OK);
	assert_int_equal(try(v, t2, "bankA", HT_CHANNEL_P2P, NULL, 1, 5), HT_TOKEN_OK);
	/* rotation: every number re-sealed under version 2, still opens */
	size_t resealed;
	assert_int_equal(ht_vault_rotate_key(v, &resealed), HT_OK);
	assert_int_equal(resealed, 2);
	assert_int_equal(ht_vault_get(v, t2, &info), HT_OK);
	assert_int_equal(info.key_version, 2);
	ht_vault_close(v);
	v = open_vault(); /* the new key survived */
	assert_int_equal(try(v, t2, "bankA", HT_CHANNEL_P2P, NULL, 1, 5), HT_TOKEN_OK);
	assert_int_equal(ht_vault_set_state(v, t2, "bankA", false, HT_TOKEN_DELETED),
			 HT_OK);
	assert_int_equal(try(v, t2, "bankA", HT_CHANNEL_P2P, NULL, 1, 5),
			 HT_TOKEN_DELETED_R);
	assert_int_equal(ht_vault_set_state(v, t2, "bankA", false, HT_TOKEN_ACTIVE),
			 HT_ERR_INVALID);
	ht_vault_close(v);
	char path[128];
	/* a key file that is not one refuses to open */
	snprintf(path, sizeof path, "%s/vault.keys", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("index 00\n", f);
	fclose(f);
	struct ht_vault *bad;
	char err[256];
	assert_int_equal(ht_vault_open(dir, &bad, err, sizeof err), HT_ERR_CORRUPT);
	assert_non_null(strstr(err, "vault.keys"));
	rm_dir();
}

static void test_tampered(void **state)
{
	(void)state;
	fresh();
	struct ht_vault *v = open_vault();
	assert_int_equal(ht_vault_range_add(v, "bankA", "990001"), HT_OK);
	char tok[HT_TOKEN_DIGITS_MAX + 1], num[HT_TOKEN_DIGITS_MAX + 1];
	assert_int_equal(ht_vault_issue(v, "bankA", "6222021234567890", NULL, 1, tok),
			 HT_OK);
	ht_vault_close(v);
	char path[128], sql[256];
	snprintf(path, sizeof path, "%s/vault.db", dir);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(sql, sizeof sql, "UPDATE tokens SET sealed = CAST(zeroblob(44) AS"
		 " BLOB) WHERE token = '%s'", tok);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	v = open_vault();
	enum ht_token_refusal why;
	struct ht_token_use u = {.requester = "bankA", .now_ms = 5};
	assert_int_equal(ht_vault_detokenize(v, tok, &u, num, &why), HT_ERR_CORRUPT);
	assert_string_equal(num, "");
	ht_vault_close(v);
	rm_dir();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_luhn),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_domain),
		cmocka_unit_test(test_tampered),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

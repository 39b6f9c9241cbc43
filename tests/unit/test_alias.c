/*
 * test_alias.c — the alias directory (alias.h): values of each kind
 * normalised or refused (E.164, e-mail, GB 11643 national ids with their
 * check character, merchant ids); register, lookup by the exact value,
 * first registration stands, only the owner updates or removes; durable
 * across reopen; 100,000 aliases in a batch; no alias in clear in the
 * directory's files.
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

#include "huitong/alias.h"

static char dir[64];

static struct ht_alias_dir *open_dir(void)
{
	struct ht_alias_dir *d;
	char err[256];
	assert_int_equal(ht_alias_open(dir, &d, err, sizeof err), HT_OK);
	return d;
}

#define S(x) x, strlen(x)

static void test_normalise(void **state)
{
	(void)state;
	char out[HT_ALIAS_VALUE_MAX + 1];
	const char *why;
	assert_int_equal(ht_alias_normalise(HT_ALIAS_MOBILE, S("+8613800138000"),
					    out, &why), HT_OK);
	assert_string_equal(out, "+8613800138000");
	assert_int_equal(ht_alias_normalise(HT_ALIAS_MOBILE, S("13800138000"), out,
					    &why), HT_ERR_INVALID);
	assert_non_null(strstr(why, "E.164"));
	assert_int_equal(ht_alias_normalise(HT_ALIAS_MOBILE, S("+86 138"), out, &why),
			 HT_ERR_INVALID);
	assert_int_equal(ht_alias_normalise(HT_ALIAS_EMAIL, S("Zhang.San@Example.CN"),
					    out, &why), HT_OK);
	assert_string_equal(out, "zhang.san@example.cn");
	assert_int_equal(ht_alias_normalise(HT_ALIAS_EMAIL, S("a@b@c"), out, &why),
			 HT_ERR_INVALID);
	assert_int_equal(ht_alias_normalise(HT_ALIAS_EMAIL, S("@example.cn"), out,
					    &why), HT_ERR_INVALID);
	/* GB 11643 example: 11010519491231002X */
	assert_int_equal(ht_alias_normalise(HT_ALIAS_NATIONAL_ID,
					    S("11010519491231002x"), out, &why),
			 HT_OK);
	assert_string_equal(out, "11010519491231002X");
	assert_int_equal(ht_alias_normalise(HT_ALIAS_NATIONAL_ID,
					    S("110105194912310021"), out, &why),
			 HT_ERR_INVALID);
	assert_non_null(strstr(why, "check"));
	assert_int_equal(ht_alias_normalise(HT_ALIAS_MERCHANT_ID, S("bankB:m77"),
					    out, &why), HT_OK);
	assert_int_equal(ht_alias_normalise(HT_ALIAS_MERCHANT_ID, S("m 77"), out,
					    &why), HT_ERR_INVALID);
	assert_int_equal(ht_alias_normalise(7, S("x"), out, &why), HT_ERR_INVALID);
	enum ht_alias_kind k;
	assert_int_equal(ht_alias_kind_parse(S("national_id"), &k), HT_OK);
	assert_int_equal(k, HT_ALIAS_NATIONAL_ID);
	assert_int_equal(ht_alias_kind_parse(S("phone"), &k), HT_ERR_INVALID);
}

static void test_directory(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/ht-alias-XXXXXX");
	assert_non_null(mkdtemp(dir));
	struct ht_alias_dir *d = open_dir();
	struct ht_alias_target t;
	assert_int_equal(ht_alias_register(d, HT_ALIAS_MOBILE, S("+8613800138000"),
					   "bankA", "9900011234567890", 5), HT_OK);
	assert_int_equal(ht_alias_register(d, HT_ALIAS_EMAIL,
					   S("Zhang.San@Example.CN"), "bankA",
					   "acct-1", 6), HT_OK);
	/* the first registration stands, whoever tries again */
	assert_int_equal(ht_alias_register(d, HT_ALIAS_MOBILE, S("+8613800138000"),
					   "bankB", "x", 7), HT_ERR_EXISTS);
	assert_int_equal(ht_alias_register(d, HT_ALIAS_MOBILE, S("+8613800138001"),
					   "bank B", "x", 7), HT_ERR_INVALID);
	assert_int_equal(ht_alias_register(d, HT_ALIAS_MOBILE, S("138"), "bankB",
					   "x", 7), HT_ERR_INVALID);
	/* lookups need the exact (normalised) value */
	assert_int_equal(ht_alias_lookup(d, HT_ALIAS_EMAIL, S("zhang.san@example.cn"),
					 &t), HT_OK);
	assert_string_equal(t.participant, "bankA");
	assert_string_equal(t.account, "acct-1");
	assert_int_equal(ht_alias_lookup(d, HT_ALIAS_EMAIL, S("zhang.si@example.cn"),
					 &t), HT_ERR_NOT_FOUND);
	assert_int_equal(ht_alias_lookup(d, HT_ALIAS_MERCHANT_ID,
					 S("zhang.san@example.cn"), &t),
			 HT_ERR_NOT_FOUND); /* another kind */
	assert_int_equal(ht_alias_lookup(d, HT_ALIAS_MOBILE, S("not a number"), &t),
			 HT_ERR_NOT_FOUND);
	/* only the owner updates and removes */
	assert_int_equal(ht_alias_update(d, HT_ALIAS_MOBILE, S("+8613800138000"),
					 "bankB", "y", 8), HT_ERR_FORBIDDEN);
	assert_int_equal(ht_alias_update(d, HT_ALIAS_MOBILE, S("+8613800138000"),
					 "bankA", "9900019999999999", 8), HT_OK);
	assert_int_equal(ht_alias_remove(d, HT_ALIAS_EMAIL, S("zhang.san@example.cn"),
					 "bankB"), HT_ERR_FORBIDDEN);
	assert_int_equal(ht_alias_remove(d, HT_ALIAS_EMAIL, S("zhang.san@example.cn"),
					 "bankA"), HT_OK);
	assert_int_equal(ht_alias_remove(d, HT_ALIAS_EMAIL, S("zhang.san@example.cn"),
					 "bankA"), HT_ERR_NOT_FOUND);
	/* a removed alias may be registered again, by anyone */
	assert_int_equal(ht_alias_register(d, HT_ALIAS_EMAIL,
					   S("zhang.san@example.cn"), "bankB",
					   "acct-9", 9), HT_OK);
	/* many, in one transaction */
	assert_int_equal(ht_alias_batch_begin(d), HT_OK);
	for (int i = 0; i < 100000; i++) {
		char v[32];
		snprintf(v, sizeof v, "+86139%08d", i);
		assert_int_equal(ht_alias_register(d, HT_ALIAS_MOBILE, S(v),
						   i % 2 ? "bankA" : "bankC",
						   "acct", 10), HT_OK);
	}
	assert_int_equal(ht_alias_batch_commit(d), HT_OK);
	assert_int_equal(ht_alias_count(d), 100002);
	ht_alias_close(d);
	/* durable */
	d = open_dir();
	assert_int_equal(ht_alias_count(d), 100002);
	assert_int_equal(ht_alias_lookup(d, HT_ALIAS_MOBILE, S("+8613800138000"), &t),
			 HT_OK);
	assert_string_equal(t.account, "9900019999999999");
	assert_int_equal(t.updated_ms, 8);
	assert_int_equal(ht_alias_lookup(d, HT_ALIAS_MOBILE, S("+8613900012345"), &t),
			 HT_OK);
	assert_string_equal(t.participant, "bankA");
	assert_int_equal(ht_alias_lookup(d, HT_ALIAS_EMAIL, S("zhang.san@example.cn"),
					 &t), HT_OK);
	assert_string_equal(t.participant, "bankB");
	ht_alias_close(d);
	/* no alias in clear in the files */
	char cmd[256];
	snprintf(cmd, sizeof cmd, "grep -rqaE '8613800138000|zhang.san|"
		 "8613900012345' %s", dir);
	assert_int_not_equal(system(cmd), 0);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalise),
		cmocka_unit_test(test_directory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

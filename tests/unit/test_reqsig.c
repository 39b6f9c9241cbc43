/*
 * test_reqsig.c — the Huitong-Signature header and the nonce cache.
 *
 *  - round trips (sign → parse → verify) with SM2, Ed25519 and ECDSA
 *    P-256 keys, verified also with public-only keys;
 *  - the signed string recomputed here independently (bare OpenSSL EVP for
 *    the body digest and the signature check, SM2 with and without the
 *    distinguishing ID);
 *  - every parse error, every verify failure, the ±300 s window edges;
 *  - the nonce cache: replay, eviction exactly after the window, refusal
 *    when full of live nonces, and a model test against a list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "huitong/reqsig.h"

#define TS 1767225600ull /* 2026-01-01T00:00:00Z */
#define NONCE "n0nce_0123456789-abc"
#define BODY "{\"op\":\"create_transfers\",\"transfers\":[]}"
#define PATH "/v1/transfers?dry_run=1"
#define HDR_SIZE (HT_REQSIG_HEADER_BYTES_MAX + 1)

static const enum ht_sign_alg algs[] = { HT_SIGN_SM2, HT_SIGN_ED25519,
					 HT_SIGN_ECDSA_P256 };

static struct ht_key *public_of(const struct ht_key *k)
{
	char *pem;
	size_t len;
	struct ht_key *pub;
	assert_int_equal(ht_key_public_pem(k, &pem, &len), HT_OK);
	assert_int_equal(ht_key_from_pem(pem, len, NULL, &pub), HT_OK);
	free(pem);
	return pub;
}

/* Sign BODY as POST PATH with ts and NONCE, parse the header into *s. */
static void sign_parse(const struct ht_key *k, const char *key_id,
		       struct ht_reqsig *s)
{
	char hdr[HDR_SIZE];
	size_t len;
	assert_int_equal(ht_reqsig_sign(k, key_id, "POST", PATH, BODY,
					strlen(BODY), TS, NONCE, hdr,
					sizeof hdr, &len),
			 HT_OK);
	assert_int_equal(strlen(hdr), len);
	assert_int_equal(ht_reqsig_parse(hdr, len, s), HT_REQSIG_OK);
}

static enum ht_reqsig_result verify(const struct ht_reqsig *s,
				    const struct ht_key *k, const char *method,
				    const char *path, const char *body,
				    uint64_t now)
{
	enum ht_reqsig_result r = HT_REQSIG_OK;
	assert_int_equal(ht_reqsig_verify(s, k, method, path, body,
					  body ? strlen(body) : 0, now,
					  HT_REQSIG_WINDOW_S, &r),
			 HT_OK);
	return r;
}

/* ---- round trips ---------------------------------------------------- */

static void round_trip(enum ht_sign_alg alg)
{
	struct ht_key *k;
	assert_int_equal(ht_key_generate(alg, NULL, &k), HT_OK);
	struct ht_key *pub = public_of(k);
	struct ht_reqsig s;
	sign_parse(k, "bankA:k1", &s);
	assert_string_equal(s.key_id, "bankA:k1");
	assert_int_equal(s.alg, alg);
	assert_int_equal(s.ts, TS);
	assert_string_equal(s.nonce, NONCE);
	assert_int_equal(verify(&s, k, "POST", PATH, BODY, TS), HT_REQSIG_OK);
	assert_int_equal(verify(&s, pub, "POST", PATH, BODY, TS), HT_REQSIG_OK);

	/* A random nonce: valid, 22 characters, fresh each time. */
	char h1[HDR_SIZE], h2[HDR_SIZE];
	struct ht_reqsig s1, s2;
	assert_int_equal(ht_reqsig_sign(k, "bankA:k1", "DELETE", "/v1/x", NULL,
					0, TS, NULL, h1, sizeof h1, NULL),
			 HT_OK);
	assert_int_equal(ht_reqsig_sign(k, "bankA:k1", "DELETE", "/v1/x", NULL,
					0, TS, NULL, h2, sizeof h2, NULL),
			 HT_OK);
	assert_int_equal(ht_reqsig_parse(h1, strlen(h1), &s1), HT_REQSIG_OK);
	assert_int_equal(ht_reqsig_parse(h2, strlen(h2), &s2), HT_REQSIG_OK);
	assert_int_equal(strlen(s1.nonce), 22);
	assert_string_not_equal(s1.nonce, s2.nonce);
	assert_int_equal(verify(&s1, pub, "DELETE", "/v1/x", NULL, TS),
			 HT_REQSIG_OK);
	assert_int_equal(verify(&s1, pub, "DELETE", "/v1/x", "", TS),
			 HT_REQSIG_OK);
	ht_key_destroy(pub);
	ht_key_destroy(k);
}

static void test_round_trip_sm2(void **state)
{
	(void)state;
	round_trip(HT_SIGN_SM2);
}

static void test_round_trip_ed25519(void **state)
{
	(void)state;
	round_trip(HT_SIGN_ED25519);
}

static void test_round_trip_ecdsa_p256(void **state)
{
	(void)state;
	round_trip(HT_SIGN_ECDSA_P256);
}

/* ---- the signed string, recomputed independently -------------------- */

static void evp_hex_digest(const char *md, const void *data, size_t len,
			   char hex[65])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	assert_int_equal(EVP_Digest(data, len, d, &n, EVP_get_digestbyname(md),
				    NULL),
			 1);
	assert_int_equal(n, 32);
	for (unsigned i = 0; i < n; i++)
		sprintf(hex + 2 * i, "%02x", d[i]);
}

/* Verify with bare EVP: md NULL for Ed25519; id set only when non-NULL. */
static int evp_verify(EVP_PKEY *pkey, const char *md, const char *id,
		      const char *msg, const uint8_t *sig, size_t sig_len)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	assert_non_null(m);
	assert_int_equal(EVP_DigestVerifyInit_ex(m, &pctx, md, NULL, NULL,
						 pkey, NULL),
			 1);
	if (id)
		assert_int_equal(EVP_PKEY_CTX_set1_id(pctx, id,
						      (int)strlen(id)),
				 1);
	int rc = EVP_DigestVerify(m, sig, sig_len, (const uint8_t *)msg,
				  strlen(msg));
	EVP_MD_CTX_free(m);
	ERR_clear_error();
	return rc;
}

static EVP_PKEY *evp_public(const struct ht_key *k)
{
	char *pem;
	size_t len;
	assert_int_equal(ht_key_public_pem(k, &pem, &len), HT_OK);
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	assert_non_null(pkey);
	BIO_free(bio);
	free(pem);
	return pkey;
}

static void signed_string_is(enum ht_sign_alg alg, const char *alg_name,
			     const char *md, const char *body)
{
	struct ht_key *k;
	assert_int_equal(ht_key_generate(alg, NULL, &k), HT_OK);
	char hdr[HDR_SIZE];
	assert_int_equal(ht_reqsig_sign(k, "bank.B_2:key-7", "PUT", PATH, body,
					strlen(body), TS, NONCE, hdr,
					sizeof hdr, NULL),
			 HT_OK);
	struct ht_reqsig s;
	assert_int_equal(ht_reqsig_parse(hdr, strlen(hdr), &s), HT_REQSIG_OK);

	char hex[65], msg[1024];
	evp_hex_digest(md ? md : "SHA256", body, strlen(body), hex);
	snprintf(msg, sizeof msg,
		 "HT-REQ-V1\nPUT\n" PATH "\nbank.B_2:key-7\n%s\n%llu\n" NONCE
		 "\n%s",
		 alg_name, (unsigned long long)TS, hex);
	EVP_PKEY *pkey = evp_public(k);
	const char *sig_md = alg == HT_SIGN_ED25519 ? NULL : md;
	if (alg == HT_SIGN_SM2) {
		/* The signature carries the default distinguishing ID; bare
		 * OpenSSL without one (an empty ID) must refuse it. */
		assert_int_equal(evp_verify(pkey, "SM3", HT_SM2_DEFAULT_ID, msg,
					    s.sig, s.sig_len),
				 1);
		assert_int_not_equal(evp_verify(pkey, "SM3", NULL, msg, s.sig,
						s.sig_len),
				     1);
	} else {
		assert_int_equal(evp_verify(pkey, sig_md, NULL, msg, s.sig,
					    s.sig_len),
				 1);
	}
	/* One byte more in the string (a trailing newline) must fail. */
	strcat(msg, "\n");
	assert_int_not_equal(evp_verify(pkey, sig_md,
					alg == HT_SIGN_SM2 ? HT_SM2_DEFAULT_ID
							   : NULL,
					msg, s.sig, s.sig_len),
			     1);
	EVP_PKEY_free(pkey);
	ht_key_destroy(k);
}

static void test_signed_string(void **state)
{
	(void)state;
	signed_string_is(HT_SIGN_SM2, "sm2", "SM3", BODY);
	signed_string_is(HT_SIGN_ED25519, "ed25519", NULL, BODY);
	signed_string_is(HT_SIGN_ECDSA_P256, "ecdsa-p256", "SHA256", BODY);
	signed_string_is(HT_SIGN_SM2, "sm2", "SM3", "");
	signed_string_is(HT_SIGN_ECDSA_P256, "ecdsa-p256", "SHA256", "");
}

/* H("") by its published value, so the empty-body rule does not rest on
 * the digest code above either. */
static void test_empty_body_digest(void **state)
{
	(void)state;
	char hex[65];
	evp_hex_digest("SM3", "", 0, hex);
	assert_string_equal(hex, "1ab21d8355cfa17f8e61194831e81a8f"
				 "22bec8c728fefb747ed035eb5082aa2b");
	evp_hex_digest("SHA256", "", 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb924"
				 "27ae41e4649b934ca495991b7852b855");
	struct ht_key *k;
	assert_int_equal(ht_key_generate(HT_SIGN_ED25519, NULL, &k), HT_OK);
	char hdr[HDR_SIZE];
	assert_int_equal(ht_reqsig_sign(k, "k", "POST", "/", NULL, 0, TS,
					NONCE, hdr, sizeof hdr, NULL),
			 HT_OK);
	struct ht_reqsig s;
	assert_int_equal(ht_reqsig_parse(hdr, strlen(hdr), &s), HT_REQSIG_OK);
	char msg[256];
	snprintf(msg, sizeof msg,
		 "HT-REQ-V1\nPOST\n/\nk\ned25519\n%llu\n" NONCE "\n"
		 "e3b0c44298fc1c149afbf4c8996fb924"
		 "27ae41e4649b934ca495991b7852b855",
		 (unsigned long long)TS);
	EVP_PKEY *pkey = evp_public(k);
	assert_int_equal(evp_verify(pkey, NULL, NULL, msg, s.sig, s.sig_len),
			 1);
	EVP_PKEY_free(pkey);
	ht_key_destroy(k);
}

/* An SM2 key with a custom ID signs with it; a verifier holding the key
 * with the default ID refuses. */
static void test_sm2_custom_id(void **state)
{
	(void)state;
	struct ht_key *k, *pub_default, *pub_custom;
	assert_int_equal(ht_key_generate(HT_SIGN_SM2, "bankA@huitong", &k),
			 HT_OK);
	char *pem;
	size_t len;
	assert_int_equal(ht_key_public_pem(k, &pem, &len), HT_OK);
	assert_int_equal(ht_key_from_pem(pem, len, NULL, &pub_default), HT_OK);
	assert_int_equal(ht_key_from_pem(pem, len, "bankA@huitong",
					 &pub_custom),
			 HT_OK);
	free(pem);
	struct ht_reqsig s;
	sign_parse(k, "bankA", &s);
	assert_int_equal(verify(&s, pub_custom, "POST", PATH, BODY, TS),
			 HT_REQSIG_OK);
	assert_int_equal(verify(&s, pub_default, "POST", PATH, BODY, TS),
			 HT_REQSIG_BAD_SIGNATURE);
	ht_key_destroy(pub_default);
	ht_key_destroy(pub_custom);
	ht_key_destroy(k);
}

/* ---- parse ------------------------------------------------------------ */

#define K "key=\"bankA:k1\""
#define A "alg=\"ed25519\""
#define T "ts=\"1767225600\""
#define N "nonce=\"" NONCE "\""
#define S "sig=\"AAAA\""
#define ALL K ", " A ", " T ", " N ", " S

struct parse_case {
	const char *header;
	enum ht_reqsig_result want;
};

static const struct parse_case parse_cases[] = {
	{ "v1 " ALL, HT_REQSIG_OK },
	{ "v1 " S "," N "," T "," A "," K, HT_REQSIG_OK },
	{ "\t v1\t" K " ,\t" A ",  " T ", " N ", " S " \t", HT_REQSIG_OK },
	{ "v1 " K ", " A ", " T ", " N ", sig=\"AA\"", HT_REQSIG_OK },
	{ "", HT_REQSIG_MALFORMED_HEADER },
	{ "   ", HT_REQSIG_MALFORMED_HEADER },
	{ "v1", HT_REQSIG_MISSING_PARAMETER },
	{ "v1   ", HT_REQSIG_MISSING_PARAMETER },
	{ "v1," ALL, HT_REQSIG_MALFORMED_HEADER },
	{ "V1 " ALL, HT_REQSIG_MALFORMED_HEADER },
	{ "Signature " ALL, HT_REQSIG_MALFORMED_HEADER },
	{ "v " ALL, HT_REQSIG_MALFORMED_HEADER },
	{ "v2 " ALL, HT_REQSIG_UNSUPPORTED_VERSION },
	{ "v10 " ALL, HT_REQSIG_UNSUPPORTED_VERSION },
	{ "v1 " ALL ",", HT_REQSIG_MALFORMED_HEADER },
	{ "v1 " ALL ", ", HT_REQSIG_MALFORMED_HEADER },
	{ "v1 ," ALL, HT_REQSIG_MALFORMED_HEADER },
	{ "v1 " K ",, " A ", " T ", " N ", " S, HT_REQSIG_MALFORMED_HEADER },
	{ "v1 " K " " A ", " T ", " N ", " S, HT_REQSIG_MALFORMED_HEADER },
	{ "v1 " K "; " A ", " T ", " N ", " S, HT_REQSIG_MALFORMED_HEADER },
	{ "v1 key=bankA, " A ", " T ", " N ", " S, HT_REQSIG_MALFORMED_HEADER },
	{ "v1 key = \"bankA\", " A ", " T ", " N ", " S,
	  HT_REQSIG_MALFORMED_HEADER },
	/* A missing closing quote makes the value run to the next quote. */
	{ "v1 key=\"bankA, " A ", " T ", " N ", " S, HT_REQSIG_BAD_KEY_ID },
	{ "v1 key=\"bankA", HT_REQSIG_MALFORMED_HEADER },
	{ "v1 key=\"bankA\"x, " A, HT_REQSIG_MALFORMED_HEADER },
	{ "v1 key=\"bank\\\"A\", " A ", " T ", " N ", " S,
	  HT_REQSIG_MALFORMED_HEADER },
	{ "v1 Key=\"bankA\", " A ", " T ", " N ", " S,
	  HT_REQSIG_MALFORMED_HEADER },
	{ "v1 =\"x\", " ALL, HT_REQSIG_MALFORMED_HEADER },
	{ "v1 abcdefghijklmnopq=\"x\", " ALL, HT_REQSIG_MALFORMED_HEADER },
	{ "v1 " ALL ", realm=\"x\"", HT_REQSIG_UNKNOWN_PARAMETER },
	{ "v1 abcdefghijklmnop=\"x\", " ALL, HT_REQSIG_UNKNOWN_PARAMETER },
	{ "v1 keyid=\"k\", " ALL, HT_REQSIG_UNKNOWN_PARAMETER },
	{ "v1 " ALL ", " K, HT_REQSIG_DUPLICATE_PARAMETER },
	{ "v1 " ALL ", " S, HT_REQSIG_DUPLICATE_PARAMETER },
	{ "v1 " ALL ", ts=\"x\"", HT_REQSIG_DUPLICATE_PARAMETER },
	{ "v1 " A ", " T ", " N ", " S, HT_REQSIG_MISSING_PARAMETER },
	{ "v1 " K ", " T ", " N ", " S, HT_REQSIG_MISSING_PARAMETER },
	{ "v1 " K ", " A ", " N ", " S, HT_REQSIG_MISSING_PARAMETER },
	{ "v1 " K ", " A ", " T ", " S, HT_REQSIG_MISSING_PARAMETER },
	{ "v1 " K ", " A ", " T ", " N, HT_REQSIG_MISSING_PARAMETER },
	{ "v1 key=\"\", " A ", " T ", " N ", " S, HT_REQSIG_BAD_KEY_ID },
	{ "v1 key=\"bank A\", " A ", " T ", " N ", " S, HT_REQSIG_BAD_KEY_ID },
	{ "v1 key=\"bank/A\", " A ", " T ", " N ", " S, HT_REQSIG_BAD_KEY_ID },
	{ "v1 key=\"0123456789012345678901234567890123456789012345678901234567"
	  "890123X\", " A ", " T ", " N ", " S,
	  HT_REQSIG_BAD_KEY_ID },
	{ "v1 key=\"0123456789012345678901234567890123456789012345678901234567"
	  "890123\", " A ", " T ", " N ", " S,
	  HT_REQSIG_OK },
	{ "v1 " K ", alg=\"\", " T ", " N ", " S, HT_REQSIG_BAD_ALG },
	{ "v1 " K ", alg=\"SM2\", " T ", " N ", " S, HT_REQSIG_BAD_ALG },
	{ "v1 " K ", alg=\"rsa\", " T ", " N ", " S, HT_REQSIG_BAD_ALG },
	{ "v1 " K ", alg=\"ecdsa-p256x\", " T ", " N ", " S,
	  HT_REQSIG_BAD_ALG },
	{ "v1 " K ", alg=\"sm3\", " T ", " N ", " S, HT_REQSIG_BAD_ALG },
	{ "v1 " K ", alg=\"sm2\", " T ", " N ", " S, HT_REQSIG_OK },
	{ "v1 " K ", alg=\"ecdsa-p256\", " T ", " N ", " S, HT_REQSIG_OK },
	{ "v1 " K ", " A ", ts=\"\", " N ", " S, HT_REQSIG_BAD_TIMESTAMP },
	{ "v1 " K ", " A ", ts=\"-1\", " N ", " S, HT_REQSIG_BAD_TIMESTAMP },
	{ "v1 " K ", " A ", ts=\"+1\", " N ", " S, HT_REQSIG_BAD_TIMESTAMP },
	{ "v1 " K ", " A ", ts=\"01767225600\", " N ", " S,
	  HT_REQSIG_BAD_TIMESTAMP },
	{ "v1 " K ", " A ", ts=\"1767225600.5\", " N ", " S,
	  HT_REQSIG_BAD_TIMESTAMP },
	{ "v1 " K ", " A ", ts=\"1000000000000\", " N ", " S,
	  HT_REQSIG_BAD_TIMESTAMP },
	{ "v1 " K ", " A ", ts=\"999999999999\", " N ", " S, HT_REQSIG_OK },
	{ "v1 " K ", " A ", ts=\"0\", " N ", " S, HT_REQSIG_OK },
	{ "v1 " K ", " A ", " T ", nonce=\"\", " S, HT_REQSIG_BAD_NONCE },
	{ "v1 " K ", " A ", " T ", nonce=\"0123456789abcde\", " S,
	  HT_REQSIG_BAD_NONCE },
	{ "v1 " K ", " A ", " T ", nonce=\"0123456789abcdef\", " S,
	  HT_REQSIG_OK },
	{ "v1 " K ", " A ", " T ", nonce=\"0123456789abcde.\", " S,
	  HT_REQSIG_BAD_NONCE },
	{ "v1 " K ", " A ", " T ", nonce=\"0123456789abcde=\", " S,
	  HT_REQSIG_BAD_NONCE },
	{ "v1 " K ", " A ", " T ", nonce=\"0123456789012345678901234567890123"
	  "456789012345678901234567890123\", " S,
	  HT_REQSIG_OK },
	{ "v1 " K ", " A ", " T ", nonce=\"0123456789012345678901234567890123"
	  "4567890123456789012345678901234\", " S,
	  HT_REQSIG_BAD_NONCE },
	{ "v1 " K ", " A ", " T ", " N ", sig=\"\"",
	  HT_REQSIG_BAD_SIGNATURE_ENCODING },
	{ "v1 " K ", " A ", " T ", " N ", sig=\"A\"",
	  HT_REQSIG_BAD_SIGNATURE_ENCODING },
	{ "v1 " K ", " A ", " T ", " N ", sig=\"AB\"",
	  HT_REQSIG_BAD_SIGNATURE_ENCODING },
	{ "v1 " K ", " A ", " T ", " N ", sig=\"AAA=\"",
	  HT_REQSIG_BAD_SIGNATURE_ENCODING },
	{ "v1 " K ", " A ", " T ", " N ", sig=\"AA+/\"",
	  HT_REQSIG_BAD_SIGNATURE_ENCODING },
	{ "v1 " K ", " A ", " T ", " N ", sig=\"AA AA\"",
	  HT_REQSIG_BAD_SIGNATURE_ENCODING },
	{ "v1 " K ", " A ", " T ", " N ", sig=\"-_-_\"", HT_REQSIG_OK },
	/* The first problem from the left decides. */
	{ "v1 key=\"\", alg=\"x\", " T ", " N ", " S, HT_REQSIG_BAD_KEY_ID },
	{ "v1 realm=\"x\", key=\"\"", HT_REQSIG_UNKNOWN_PARAMETER },
	{ "v1 " A ", " A ", key=\"\"", HT_REQSIG_DUPLICATE_PARAMETER },
	{ "v1 alg=\"x\", key=\"", HT_REQSIG_BAD_ALG },
	{ "v1 " A ", nonce=\"short\"", HT_REQSIG_BAD_NONCE },
};

static void test_parse_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0];
	     i++) {
		const struct parse_case *c = &parse_cases[i];
		struct ht_reqsig s;
		memset(&s, 0x5a, sizeof s);
		enum ht_reqsig_result r =
			ht_reqsig_parse(c->header, strlen(c->header), &s);
		if (r != c->want)
			fail_msg("case %zu <%s>: got %s, want %s", i, c->header,
				 ht_reqsig_result_name(r),
				 ht_reqsig_result_name(c->want));
		if (r != HT_REQSIG_OK) {
			struct ht_reqsig zero;
			memset(&zero, 0, sizeof zero);
			assert_memory_equal(&s, &zero, sizeof s);
		}
	}
}

static void test_parse_values(void **state)
{
	(void)state;
	const char *h = "v1 sig=\"-_8\", " N ", ts=\"42\", alg=\"sm2\", "
			"key=\"a.b_c:d-E9\"";
	struct ht_reqsig s;
	assert_int_equal(ht_reqsig_parse(h, strlen(h), &s), HT_REQSIG_OK);
	assert_string_equal(s.key_id, "a.b_c:d-E9");
	assert_int_equal(s.alg, HT_SIGN_SM2);
	assert_int_equal(s.ts, 42);
	assert_string_equal(s.nonce, NONCE);
	/* "-_8" = 111110 111111 111100 → 0xfb 0xff */
	assert_int_equal(s.sig_len, 2);
	assert_int_equal(s.sig[0], 0xfb);
	assert_int_equal(s.sig[1], 0xff);

	/* Only len bytes are read; a NUL inside is malformed. */
	char buf[600];
	snprintf(buf, sizeof buf, "v1 %sGARBAGE", ALL);
	assert_int_equal(ht_reqsig_parse(buf, strlen(buf) - 7, &s),
			 HT_REQSIG_OK);
	buf[10] = '\0';
	assert_int_equal(ht_reqsig_parse(buf, strlen(buf + 11) + 11, &s),
			 HT_REQSIG_MALFORMED_HEADER);
	assert_int_equal(ht_reqsig_parse(NULL, 0, &s),
			 HT_REQSIG_MALFORMED_HEADER);
}

static void test_parse_limits(void **state)
{
	(void)state;
	char buf[HT_REQSIG_HEADER_BYTES_MAX + 2];
	struct ht_reqsig s;
	/* A valid header padded with trailing OWS to exactly the limit. */
	int n = snprintf(buf, sizeof buf, "v1 %s", ALL);
	memset(buf + n, ' ', sizeof buf - (size_t)n);
	assert_int_equal(ht_reqsig_parse(buf, HT_REQSIG_HEADER_BYTES_MAX, &s),
			 HT_REQSIG_OK);
	assert_int_equal(ht_reqsig_parse(buf, HT_REQSIG_HEADER_BYTES_MAX + 1,
					 &s),
			 HT_REQSIG_HEADER_TOO_LONG);

	/* The longest signature: 160 bytes (214 characters); 161 is not. */
	char sig[HT_REQSIG_SIG_CHARS_MAX + 2];
	memset(sig, 'A', sizeof sig);
	sig[HT_REQSIG_SIG_CHARS_MAX] = '\0';
	snprintf(buf, sizeof buf, "v1 " K ", " A ", " T ", " N ", sig=\"%s\"",
		 sig);
	assert_int_equal(ht_reqsig_parse(buf, strlen(buf), &s), HT_REQSIG_OK);
	assert_int_equal(s.sig_len, HT_SIG_BYTES_MAX);
	sig[HT_REQSIG_SIG_CHARS_MAX] = 'A';
	sig[HT_REQSIG_SIG_CHARS_MAX + 1] = '\0';
	snprintf(buf, sizeof buf, "v1 " K ", " A ", " T ", " N ", sig=\"%s\"",
		 sig);
	assert_int_equal(ht_reqsig_parse(buf, strlen(buf), &s),
			 HT_REQSIG_BAD_SIGNATURE_ENCODING);
}

static void test_format(void **state)
{
	(void)state;
	const char *h = "\tv1 " S ",  " N ",\t" T ", " A ", " K "  ";
	struct ht_reqsig s, s2;
	assert_int_equal(ht_reqsig_parse(h, strlen(h), &s), HT_REQSIG_OK);
	char out[HDR_SIZE];
	size_t len;
	assert_int_equal(ht_reqsig_format(&s, out, sizeof out, &len), HT_OK);
	assert_string_equal(out, "v1 " ALL);
	assert_int_equal(len, strlen(out));
	assert_int_equal(ht_reqsig_parse(out, len, &s2), HT_REQSIG_OK);
	assert_memory_equal(&s, &s2, sizeof s);
	/* Too small a buffer: HT_ERR_LIMIT and an empty string. */
	assert_int_equal(ht_reqsig_format(&s, out, len, NULL), HT_ERR_LIMIT);
	assert_string_equal(out, "");
	assert_int_equal(ht_reqsig_format(&s, out, len + 1, NULL), HT_OK);
	/* Invalid fields are refused. */
	s2 = s;
	s2.nonce[3] = '!';
	assert_int_equal(ht_reqsig_format(&s2, out, sizeof out, NULL),
			 HT_ERR_INVALID);
	s2 = s;
	s2.sig_len = 0;
	assert_int_equal(ht_reqsig_format(&s2, out, sizeof out, NULL),
			 HT_ERR_INVALID);
	s2 = s;
	s2.ts = 1000000000000ull;
	assert_int_equal(ht_reqsig_format(&s2, out, sizeof out, NULL),
			 HT_ERR_INVALID);
}

/* ---- verify failures -------------------------------------------------- */

static void tamper(enum ht_sign_alg alg)
{
	struct ht_key *k, *other;
	assert_int_equal(ht_key_generate(alg, NULL, &k), HT_OK);
	assert_int_equal(ht_key_generate(alg, NULL, &other), HT_OK);
	struct ht_key *pub = public_of(k);
	struct ht_reqsig s, t;
	sign_parse(k, "bankA:k1", &s);
	assert_int_equal(verify(&s, pub, "POST", PATH, BODY, TS), HT_REQSIG_OK);

	assert_int_equal(verify(&s, pub, "PUT", PATH, BODY, TS),
			 HT_REQSIG_BAD_SIGNATURE);
	assert_int_equal(verify(&s, pub, "POST", "/v1/transfers?dry_run=0",
				BODY, TS),
			 HT_REQSIG_BAD_SIGNATURE);
	assert_int_equal(verify(&s, pub, "POST", "/v1/transfers", BODY, TS),
			 HT_REQSIG_BAD_SIGNATURE);
	assert_int_equal(verify(&s, pub, "POST", PATH, BODY " ", TS),
			 HT_REQSIG_BAD_SIGNATURE);
	assert_int_equal(verify(&s, pub, "POST", PATH, NULL, TS),
			 HT_REQSIG_BAD_SIGNATURE);
	t = s;
	t.ts = TS + 1;
	assert_int_equal(verify(&t, pub, "POST", PATH, BODY, TS),
			 HT_REQSIG_BAD_SIGNATURE);
	t = s;
	t.nonce[0] ^= 1;
	assert_int_equal(verify(&t, pub, "POST", PATH, BODY, TS),
			 HT_REQSIG_BAD_SIGNATURE);
	t = s;
	strcpy(t.key_id, "bankA:k2");
	assert_int_equal(verify(&t, pub, "POST", PATH, BODY, TS),
			 HT_REQSIG_BAD_SIGNATURE);
	t = s;
	t.sig[t.sig_len / 2] ^= 0x01;
	assert_int_equal(verify(&t, pub, "POST", PATH, BODY, TS),
			 HT_REQSIG_BAD_SIGNATURE);
	t = s;
	t.sig_len--;
	assert_int_equal(verify(&t, pub, "POST", PATH, BODY, TS),
			 HT_REQSIG_BAD_SIGNATURE);
	assert_int_equal(verify(&s, other, "POST", PATH, BODY, TS),
			 HT_REQSIG_BAD_SIGNATURE);

	/* alg: against the key it is a mismatch; against a key of the
	 * claimed alg the signature does not verify. */
	t = s;
	t.alg = alg == HT_SIGN_SM2 ? HT_SIGN_ECDSA_P256 : HT_SIGN_SM2;
	assert_int_equal(verify(&t, pub, "POST", PATH, BODY, TS),
			 HT_REQSIG_ALG_MISMATCH);
	struct ht_key *k2;
	assert_int_equal(ht_key_generate(t.alg, NULL, &k2), HT_OK);
	assert_int_equal(verify(&t, k2, "POST", PATH, BODY, TS),
			 HT_REQSIG_BAD_SIGNATURE);
	ht_key_destroy(k2);

	/* Request lines that cannot be signed. */
	assert_int_equal(verify(&s, pub, "post", PATH, BODY, TS),
			 HT_REQSIG_BAD_REQUEST_LINE);
	assert_int_equal(verify(&s, pub, "", PATH, BODY, TS),
			 HT_REQSIG_BAD_REQUEST_LINE);
	assert_int_equal(verify(&s, pub, "POST", "", BODY, TS),
			 HT_REQSIG_BAD_REQUEST_LINE);
	assert_int_equal(verify(&s, pub, "POST", "/v1/a b", BODY, TS),
			 HT_REQSIG_BAD_REQUEST_LINE);
	assert_int_equal(verify(&s, pub, "POST", "/v1\nbankA:k1", BODY, TS),
			 HT_REQSIG_BAD_REQUEST_LINE);
	assert_int_equal(verify(&s, pub, NULL, PATH, BODY, TS),
			 HT_REQSIG_BAD_REQUEST_LINE);
	ht_key_destroy(pub);
	ht_key_destroy(other);
	ht_key_destroy(k);
}

static void test_tamper_sm2(void **state)
{
	(void)state;
	tamper(HT_SIGN_SM2);
}

static void test_tamper_ed25519(void **state)
{
	(void)state;
	tamper(HT_SIGN_ED25519);
}

static void test_tamper_ecdsa_p256(void **state)
{
	(void)state;
	tamper(HT_SIGN_ECDSA_P256);
}

static void test_timestamp_window(void **state)
{
	(void)state;
	for (size_t a = 0; a < sizeof algs / sizeof algs[0]; a++) {
		struct ht_key *k;
		assert_int_equal(ht_key_generate(algs[a], NULL, &k), HT_OK);
		struct ht_reqsig s;
		sign_parse(k, "bankA", &s);
		assert_int_equal(verify(&s, k, "POST", PATH, BODY, TS + 299),
				 HT_REQSIG_OK);
		assert_int_equal(verify(&s, k, "POST", PATH, BODY, TS - 299),
				 HT_REQSIG_OK);
		assert_int_equal(verify(&s, k, "POST", PATH, BODY, TS + 300),
				 HT_REQSIG_OK);
		assert_int_equal(verify(&s, k, "POST", PATH, BODY, TS - 300),
				 HT_REQSIG_OK);
		assert_int_equal(verify(&s, k, "POST", PATH, BODY, TS + 301),
				 HT_REQSIG_STALE_TIMESTAMP);
		assert_int_equal(verify(&s, k, "POST", PATH, BODY, TS - 301),
				 HT_REQSIG_STALE_TIMESTAMP);
		assert_int_equal(verify(&s, k, "POST", PATH, BODY, 0),
				 HT_REQSIG_STALE_TIMESTAMP);
		assert_int_equal(verify(&s, k, "POST", PATH, BODY, UINT64_MAX),
				 HT_REQSIG_STALE_TIMESTAMP);
		/* Stale is refused before the signature is checked. */
		struct ht_reqsig t = s;
		t.sig[0] ^= 0xff;
		assert_int_equal(verify(&t, k, "POST", PATH, BODY, TS + 301),
				 HT_REQSIG_STALE_TIMESTAMP);
		enum ht_reqsig_result r;
		assert_int_equal(ht_reqsig_verify(&s, k, "POST", PATH, BODY,
						  strlen(BODY), TS + 10, 9, &r),
				 HT_OK);
		assert_int_equal(r, HT_REQSIG_STALE_TIMESTAMP);
		assert_int_equal(ht_reqsig_verify(&s, k, "POST", PATH, BODY,
						  strlen(BODY), TS,
						  HT_REQSIG_WINDOW_S_MAX + 1,
						  &r),
				 HT_ERR_INVALID);
		assert_int_equal(r, HT_REQSIG_BAD_SIGNATURE);
		ht_key_destroy(k);
	}
}

static void test_sign_errors(void **state)
{
	(void)state;
	struct ht_key *k;
	assert_int_equal(ht_key_generate(HT_SIGN_ED25519, NULL, &k), HT_OK);
	struct ht_key *pub = public_of(k);
	char hdr[HDR_SIZE];
	size_t n;
#define SIGN(key, id, m, p, ts, nonce, size)                                  \
	ht_reqsig_sign(key, id, m, p, BODY, strlen(BODY), ts, nonce, hdr,   \
		       size, NULL)
	assert_int_equal(SIGN(k, "", "POST", "/", TS, NONCE, sizeof hdr),
			 HT_ERR_INVALID);
	assert_string_equal(hdr, "");
	assert_int_equal(SIGN(k, NULL, "POST", "/", TS, NONCE, sizeof hdr),
			 HT_ERR_INVALID);
	assert_int_equal(SIGN(k, "a b", "POST", "/", TS, NONCE, sizeof hdr),
			 HT_ERR_INVALID);
	assert_int_equal(SIGN(k, "k", "Post", "/", TS, NONCE, sizeof hdr),
			 HT_ERR_INVALID);
	assert_int_equal(SIGN(k, "k", "POST", "/ x", TS, NONCE, sizeof hdr),
			 HT_ERR_INVALID);
	assert_int_equal(SIGN(k, "k", "POST", "/", 1000000000000ull, NONCE,
			      sizeof hdr),
			 HT_ERR_INVALID);
	assert_int_equal(SIGN(k, "k", "POST", "/", TS, "short", sizeof hdr),
			 HT_ERR_INVALID);
	assert_int_equal(SIGN(pub, "k", "POST", "/", TS, NONCE, sizeof hdr),
			 HT_ERR_INVALID);
	assert_int_equal(SIGN(k, "k", "POST", "/", TS, NONCE, 50),
			 HT_ERR_LIMIT);
	assert_string_equal(hdr, "");
	assert_int_equal(ht_reqsig_sign(k, "k", "POST", "/", NULL, 5, TS, NONCE,
					hdr, sizeof hdr, NULL),
			 HT_ERR_INVALID);
	assert_int_equal(ht_reqsig_sign(k, "k", "POST", "/", NULL, 0, TS, NONCE,
					hdr, sizeof hdr, &n),
			 HT_OK);
	assert_int_equal(n, strlen(hdr));
#undef SIGN
	ht_key_destroy(pub);
	ht_key_destroy(k);
}

static void test_result_names(void **state)
{
	(void)state;
	for (int i = 0; i < HT_REQSIG__COUNT; i++) {
		const char *a = ht_reqsig_result_name((enum ht_reqsig_result)i);
		assert_string_not_equal(a, "unknown");
		for (const char *p = a; *p; p++)
			assert_true((*p >= 'a' && *p <= 'z') || *p == '_');
		for (int j = 0; j < i; j++) {
			enum ht_reqsig_result rj = (enum ht_reqsig_result)j;
			assert_string_not_equal(a, ht_reqsig_result_name(rj));
		}
	}
	assert_string_equal(ht_reqsig_result_name(HT_REQSIG__COUNT), "unknown");
	assert_string_equal(ht_reqsig_result_name(HT_REQSIG_REPLAYED_NONCE),
			    "replayed_nonce");
}

/* ---- the nonce cache ---------------------------------------------------- */

static enum ht_reqsig_result add(struct ht_nonce_cache *c, const char *key,
				 const char *nonce, uint64_t ts, uint64_t now)
{
	enum ht_reqsig_result r = HT_REQSIG_OK;
	assert_int_equal(ht_nonce_cache_check_and_add(c, key, nonce, ts, now,
						      &r),
			 HT_OK);
	return r;
}

static void test_cache_replay(void **state)
{
	(void)state;
	struct ht_nonce_cache *c;
	assert_int_equal(ht_nonce_cache_create(16, HT_REQSIG_WINDOW_S, &c),
			 HT_OK);
	assert_int_equal(add(c, "bankA", NONCE, TS, TS), HT_REQSIG_OK);
	assert_int_equal(add(c, "bankA", NONCE, TS, TS),
			 HT_REQSIG_REPLAYED_NONCE);
	/* The replay is caught whatever ts it claims within the window. */
	assert_int_equal(add(c, "bankA", NONCE, TS + 100, TS + 50),
			 HT_REQSIG_REPLAYED_NONCE);
	/* Same nonce, another key: a different pair. So is a split that
	 * concatenates to the same bytes. */
	assert_int_equal(add(c, "bankB", NONCE, TS, TS), HT_REQSIG_OK);
	assert_int_equal(add(c, "bank", "A" NONCE, TS, TS), HT_REQSIG_OK);
	assert_int_equal(add(c, "bankA", "n0nce_0123456789-abd", TS, TS),
			 HT_REQSIG_OK);
	assert_int_equal(ht_nonce_cache_count(c), 4);
	/* Input checks. */
	assert_int_equal(add(c, "", NONCE, TS, TS), HT_REQSIG_BAD_KEY_ID);
	assert_int_equal(add(c, NULL, NONCE, TS, TS), HT_REQSIG_BAD_KEY_ID);
	assert_int_equal(add(c, "bankA", "short", TS, TS), HT_REQSIG_BAD_NONCE);
	assert_int_equal(add(c, "bankA", NULL, TS, TS), HT_REQSIG_BAD_NONCE);
	/* The cache's clock is now TS + 50 (the latest now seen). */
	assert_int_equal(add(c, "bankA", "0123456789abcdef", TS + 351,
			     TS + 50),
			 HT_REQSIG_STALE_TIMESTAMP);
	assert_int_equal(add(c, "bankA", "0123456789abcdef", TS - 251,
			     TS + 50),
			 HT_REQSIG_STALE_TIMESTAMP);
	assert_int_equal(add(c, "bankA", "0123456789abcdef", TS - 250,
			     TS + 50),
			 HT_REQSIG_OK);
	assert_int_equal(ht_nonce_cache_count(c), 5);
	ht_nonce_cache_destroy(c);
	ht_nonce_cache_destroy(NULL);
}

static void test_cache_eviction(void **state)
{
	(void)state;
	struct ht_nonce_cache *c;
	assert_int_equal(ht_nonce_cache_create(16, HT_REQSIG_WINDOW_S, &c),
			 HT_OK);
	/* A nonce whose ts lies 300 s in the future lives 600 s. */
	assert_int_equal(add(c, "k", "future-nonce-0000", TS + 300, TS),
			 HT_REQSIG_OK);
	assert_int_equal(add(c, "k", "past-nonce-000000", TS - 300, TS),
			 HT_REQSIG_OK);
	assert_int_equal(add(c, "k", NONCE, TS, TS), HT_REQSIG_OK);
	assert_int_equal(ht_nonce_cache_count(c), 3);
	/* At ts + 300 a request with ts still verifies: kept. */
	assert_int_equal(add(c, "k", NONCE, TS, TS + 300),
			 HT_REQSIG_REPLAYED_NONCE);
	assert_int_equal(ht_nonce_cache_count(c), 2); /* the past one left */
	/* At ts + 301 it is stale, for the cache and for verify alike. */
	assert_int_equal(add(c, "k", NONCE, TS, TS + 301),
			 HT_REQSIG_STALE_TIMESTAMP);
	assert_int_equal(ht_nonce_cache_count(c), 1);
	assert_int_equal(add(c, "k", "future-nonce-0000", TS + 300, TS + 600),
			 HT_REQSIG_REPLAYED_NONCE);
	assert_int_equal(add(c, "k", "x-nonce-00000000", TS + 600, TS + 601),
			 HT_REQSIG_OK);
	assert_int_equal(ht_nonce_cache_count(c), 1);
	/* A clock that goes back does not resurrect or evict anything; the
	 * cache keeps its own clock at the latest time seen. */
	assert_int_equal(add(c, "k", "x-nonce-00000000", TS + 600, TS),
			 HT_REQSIG_REPLAYED_NONCE);
	assert_int_equal(add(c, "k", "y-nonce-00000000", TS, TS),
			 HT_REQSIG_STALE_TIMESTAMP);
	/* A jump far ahead empties the cache. */
	assert_int_equal(add(c, "k", "y-nonce-00000000", TS + 100000,
			     TS + 100000),
			 HT_REQSIG_OK);
	assert_int_equal(ht_nonce_cache_count(c), 1);
	ht_nonce_cache_destroy(c);
}

static void test_cache_full(void **state)
{
	(void)state;
	struct ht_nonce_cache *c;
	assert_int_equal(ht_nonce_cache_create(4, 10, &c), HT_OK);
	char nonce[32];
	for (int i = 0; i < 4; i++) {
		snprintf(nonce, sizeof nonce, "nonce-%010d", i);
		assert_int_equal(add(c, "k", nonce, 100 + (uint64_t)i, 100),
				 HT_REQSIG_OK);
	}
	/* Full of live entries: refuse the new one, forget nothing. */
	assert_int_equal(add(c, "k", "nonce-new-000000", 100, 100),
			 HT_REQSIG_NONCE_CACHE_FULL);
	assert_int_equal(add(c, "k", "nonce-0000000000", 100, 105),
			 HT_REQSIG_REPLAYED_NONCE);
	assert_int_equal(add(c, "k", "nonce-0000000003", 103, 110),
			 HT_REQSIG_REPLAYED_NONCE);
	assert_int_equal(add(c, "k", "nonce-new-000000", 110, 110),
			 HT_REQSIG_NONCE_CACHE_FULL);
	assert_int_equal(ht_nonce_cache_count(c), 4);
	/* At 111 the entry with ts 100 has died: room for one. */
	assert_int_equal(add(c, "k", "nonce-new-000000", 110, 111),
			 HT_REQSIG_OK);
	assert_int_equal(add(c, "k", "nonce-new-000001", 110, 111),
			 HT_REQSIG_NONCE_CACHE_FULL);
	assert_int_equal(add(c, "k", "nonce-0000000001", 101, 111),
			 HT_REQSIG_REPLAYED_NONCE);
	assert_int_equal(ht_nonce_cache_count(c), 4);
	ht_nonce_cache_destroy(c);

	/* Arguments. */
	assert_int_equal(ht_nonce_cache_create(0, 300, &c), HT_ERR_INVALID);
	assert_null(c);
	assert_int_equal(ht_nonce_cache_create(4, 0, &c), HT_ERR_INVALID);
	assert_int_equal(ht_nonce_cache_create(4, HT_REQSIG_WINDOW_S_MAX + 1,
					       &c),
			 HT_ERR_INVALID);
	assert_int_equal(ht_nonce_cache_create(HT_NONCE_CACHE_CAPACITY_MAX + 1,
					       300, &c),
			 HT_ERR_LIMIT);
	assert_int_equal(ht_nonce_cache_create(HT_NONCE_CACHE_CAPACITY_DEFAULT,
					       HT_REQSIG_WINDOW_S, &c),
			 HT_OK);
	assert_int_equal(add(c, "k", NONCE, TS, TS), HT_REQSIG_OK);
	ht_nonce_cache_destroy(c);
}

/*
 * Model test: random operations on a small cache and on a plain list of
 * (key, nonce, ts) that applies the documented rules literally. Results
 * and counts must agree at every step.
 */
struct model_entry {
	int key, nonce;
	uint64_t ts;
};

static void test_cache_model(void **state)
{
	(void)state;
	enum { CAP = 64, WINDOW = 5, STEPS = 20000 };
	struct ht_nonce_cache *c;
	assert_int_equal(ht_nonce_cache_create(CAP, WINDOW, &c), HT_OK);
	struct model_entry m[CAP];
	size_t count = 0;
	uint64_t clock = 1000;
	srand(7);
	for (int step = 0; step < STEPS; step++) {
		uint64_t now = clock;
		int dice = rand() % 100;
		if (dice < 15)
			now = clock + (uint64_t)(rand() % 3);
		else if (dice < 17)
			now = clock + (uint64_t)(rand() % 20);
		else if (dice < 20)
			now = clock - (uint64_t)(rand() % 4);
		uint64_t ts = now + (uint64_t)(rand() % (2 * WINDOW + 5)) -
			      WINDOW - 2;
		int key = rand() % 3, nonce = rand() % 200;
		char ks[8], ns[32];
		snprintf(ks, sizeof ks, "k%d", key);
		snprintf(ns, sizeof ns, "nonce-%010d", nonce);

		/* The model. */
		if (now > clock)
			clock = now;
		size_t live = 0;
		for (size_t i = 0; i < count; i++)
			if (clock <= m[i].ts + WINDOW)
				m[live++] = m[i];
		count = live;
		enum ht_reqsig_result want = HT_REQSIG_OK;
		if ((ts < clock && clock - ts > WINDOW) ||
		    (ts > clock && ts - clock > WINDOW))
			want = HT_REQSIG_STALE_TIMESTAMP;
		for (size_t i = 0; want == HT_REQSIG_OK && i < count; i++)
			if (m[i].key == key && m[i].nonce == nonce)
				want = HT_REQSIG_REPLAYED_NONCE;
		if (want == HT_REQSIG_OK && count == CAP)
			want = HT_REQSIG_NONCE_CACHE_FULL;
		if (want == HT_REQSIG_OK)
			m[count++] = (struct model_entry){ key, nonce, ts };

		enum ht_reqsig_result got = add(c, ks, ns, ts, now);
		if (got != want)
			fail_msg("step %d: got %s, want %s", step,
				 ht_reqsig_result_name(got),
				 ht_reqsig_result_name(want));
		assert_int_equal(ht_nonce_cache_count(c), count);
	}
	ht_nonce_cache_destroy(c);
}

/* The whole path the server will take: parse, verify, then the cache. */
static void test_replay_through_cache(void **state)
{
	(void)state;
	struct ht_key *k;
	assert_int_equal(ht_key_generate(HT_SIGN_ECDSA_P256, NULL, &k), HT_OK);
	struct ht_nonce_cache *c;
	assert_int_equal(ht_nonce_cache_create(128, HT_REQSIG_WINDOW_S, &c),
			 HT_OK);
	char hdr[HDR_SIZE];
	assert_int_equal(ht_reqsig_sign(k, "bankA", "POST", PATH, BODY,
					strlen(BODY), TS, NULL, hdr,
					sizeof hdr, NULL),
			 HT_OK);
	for (int attempt = 0; attempt < 2; attempt++) {
		struct ht_reqsig s;
		assert_int_equal(ht_reqsig_parse(hdr, strlen(hdr), &s),
				 HT_REQSIG_OK);
		assert_int_equal(verify(&s, k, "POST", PATH, BODY, TS + 5),
				 HT_REQSIG_OK);
		assert_int_equal(add(c, s.key_id, s.nonce, s.ts, TS + 5),
				 attempt == 0 ? HT_REQSIG_OK
					      : HT_REQSIG_REPLAYED_NONCE);
	}
	ht_nonce_cache_destroy(c);
	ht_key_destroy(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_sm2),
		cmocka_unit_test(test_round_trip_ed25519),
		cmocka_unit_test(test_round_trip_ecdsa_p256),
		cmocka_unit_test(test_signed_string),
		cmocka_unit_test(test_empty_body_digest),
		cmocka_unit_test(test_sm2_custom_id),
		cmocka_unit_test(test_parse_cases),
		cmocka_unit_test(test_parse_values),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_tamper_sm2),
		cmocka_unit_test(test_tamper_ed25519),
		cmocka_unit_test(test_tamper_ecdsa_p256),
		cmocka_unit_test(test_timestamp_window),
		cmocka_unit_test(test_sign_errors),
		cmocka_unit_test(test_result_names),
		cmocka_unit_test(test_cache_replay),
		cmocka_unit_test(test_cache_eviction),
		cmocka_unit_test(test_cache_full),
		cmocka_unit_test(test_cache_model),
		cmocka_unit_test(test_replay_through_cache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

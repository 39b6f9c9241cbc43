/*
 * fuzz_reqsig_header.c — any bytes through ht_reqsig_parse.
 *
 * A refused header must come with a parse verdict (never a verify or cache
 * one) and a zeroed struct. An accepted one must format to a canonical
 * header within the limit that parses back to the same struct and formats
 * to the same text (parse → format → parse → format); it must not verify
 * under a key of its alg (its signature was not made by that key), and
 * its (key_id, nonce) must go into the nonce cache once and then be a
 * replay (or be refused both times when the cache is full).
 */
#include <stdlib.h>
#include <string.h>

#include "huitong/reqsig.h"

#define CHECK(e) ((e) ? (void)0 : abort())

static struct ht_key *keys[4];       /* by enum ht_sign_alg */
static struct ht_nonce_cache *cache; /* small, so it also fills up */

static void init_once(void)
{
	if (cache)
		return;
	CHECK(ht_key_generate(HT_SIGN_SM2, NULL, &keys[HT_SIGN_SM2]) == HT_OK);
	CHECK(ht_key_generate(HT_SIGN_ED25519, NULL, &keys[HT_SIGN_ED25519]) ==
	      HT_OK);
	CHECK(ht_key_generate(HT_SIGN_ECDSA_P256, NULL,
			      &keys[HT_SIGN_ECDSA_P256]) == HT_OK);
	CHECK(ht_nonce_cache_create(64, HT_REQSIG_WINDOW_S, &cache) == HT_OK);
}

static bool is_parse_result(enum ht_reqsig_result r)
{
	return r >= HT_REQSIG_HEADER_TOO_LONG &&
	       r <= HT_REQSIG_BAD_SIGNATURE_ENCODING;
}

static void check_accepted(const struct ht_reqsig *s)
{
	char out[HT_REQSIG_HEADER_BYTES_MAX + 1], out2[sizeof out];
	size_t len, len2;
	struct ht_reqsig s2;
	CHECK(ht_reqsig_format(s, out, sizeof out, &len) == HT_OK);
	CHECK(len == strlen(out) && len <= HT_REQSIG_HEADER_BYTES_MAX);
	CHECK(ht_reqsig_parse(out, len, &s2) == HT_REQSIG_OK);
	CHECK(memcmp(s, &s2, sizeof s2) == 0);
	CHECK(ht_reqsig_format(&s2, out2, sizeof out2, &len2) == HT_OK);
	CHECK(len == len2 && memcmp(out, out2, len) == 0);

	enum ht_reqsig_result r = HT_REQSIG_OK;
	CHECK(ht_reqsig_verify(s, keys[s->alg], "POST", "/v1/transfers", "{}",
			       2, s->ts, HT_REQSIG_WINDOW_S, &r) == HT_OK);
	CHECK(r == HT_REQSIG_BAD_SIGNATURE);

	enum ht_reqsig_result first, second;
	CHECK(ht_nonce_cache_check_and_add(cache, s->key_id, s->nonce, s->ts,
					   s->ts, &first) == HT_OK);
	CHECK(ht_nonce_cache_check_and_add(cache, s->key_id, s->nonce, s->ts,
					   s->ts, &second) == HT_OK);
	/* The cache's clock never goes back, so an old ts may be stale. */
	if (first == HT_REQSIG_OK)
		CHECK(second == HT_REQSIG_REPLAYED_NONCE);
	else
		CHECK(first == second &&
		      (first == HT_REQSIG_REPLAYED_NONCE ||
		       first == HT_REQSIG_NONCE_CACHE_FULL ||
		       first == HT_REQSIG_STALE_TIMESTAMP));
	CHECK(ht_nonce_cache_count(cache) <= 64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_once();
	struct ht_reqsig s;
	enum ht_reqsig_result r = ht_reqsig_parse((const char *)data, size, &s);
	if (r != HT_REQSIG_OK) {
		static const struct ht_reqsig zero;
		CHECK(is_parse_result(r));
		CHECK(strcmp(ht_reqsig_result_name(r), "unknown") != 0);
		CHECK(memcmp(&s, &zero, sizeof s) == 0);
		CHECK(size > HT_REQSIG_HEADER_BYTES_MAX ||
		      r != HT_REQSIG_HEADER_TOO_LONG);
		return 0;
	}
	CHECK(size <= HT_REQSIG_HEADER_BYTES_MAX);
	check_accepted(&s);
	return 0;
}

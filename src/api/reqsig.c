/*
 * reqsig.c — the Huitong-Signature header: a strict parser, the canonical
 * writer, signing and verifying of the signed string, and the nonce cache
 * that refuses replays within the timestamp window.
 *
 * Owner: api. It owns the header grammar, the signed-string layout and the
 * cache's memory, nothing else. Every byte of a header is outside input:
 * each loop is bounded by the header length (itself capped at
 * HT_REQSIG_HEADER_BYTES_MAX) and every copy by a limit in reqsig.h. It
 * must never implement a primitive (hashes, signatures and randomness are
 * crypto.h's; base64url is an encoding, written here to be strict), and
 * the cache must never forget a live nonce to make room.
 */
#include "huitong/reqsig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first line of every signed string: names the layout and version. */
#define SIGNED_PREFIX "HT-REQ-V1"

/* Longest parameter name we tokenise; longer ones are malformed. */
#define PARAM_NAME_BYTES_MAX 16

/* Longest alg value ("ecdsa-p256") plus one for a NUL. */
#define ALG_NAME_BYTES_MAX 10

/* Largest ts: 12 decimal digits. */
#define TS_MAX 999999999999ull

/* The longest signed string: nine fields and eight newlines. */
#define SIGNED_BYTES_MAX                                                     \
	(sizeof SIGNED_PREFIX - 1 + HT_REQSIG_METHOD_BYTES_MAX +            \
	 HT_REQSIG_PATH_BYTES_MAX + HT_REQSIG_KEY_ID_BYTES_MAX +            \
	 ALG_NAME_BYTES_MAX + HT_REQSIG_TS_DIGITS_MAX +                      \
	 HT_REQSIG_NONCE_BYTES_MAX + 2 * HT_HASH_BYTES + 8)

_Static_assert(TS_MAX + HT_REQSIG_WINDOW_S_MAX > TS_MAX,
	       "ts + window never overflows");

/* ---- result names ---------------------------------------------------- */

static const char *const result_names[HT_REQSIG__COUNT] = {
	[HT_REQSIG_OK] = "ok",
	[HT_REQSIG_HEADER_TOO_LONG] = "header_too_long",
	[HT_REQSIG_MALFORMED_HEADER] = "malformed_header",
	[HT_REQSIG_UNSUPPORTED_VERSION] = "unsupported_version",
	[HT_REQSIG_UNKNOWN_PARAMETER] = "unknown_parameter",
	[HT_REQSIG_DUPLICATE_PARAMETER] = "duplicate_parameter",
	[HT_REQSIG_MISSING_PARAMETER] = "missing_parameter",
	[HT_REQSIG_BAD_KEY_ID] = "bad_key_id",
	[HT_REQSIG_BAD_ALG] = "bad_alg",
	[HT_REQSIG_BAD_TIMESTAMP] = "bad_timestamp",
	[HT_REQSIG_BAD_NONCE] = "bad_nonce",
	[HT_REQSIG_BAD_SIGNATURE_ENCODING] = "bad_signature_encoding",
	[HT_REQSIG_BAD_REQUEST_LINE] = "bad_request_line",
	[HT_REQSIG_ALG_MISMATCH] = "alg_mismatch",
	[HT_REQSIG_STALE_TIMESTAMP] = "stale_timestamp",
	[HT_REQSIG_BAD_SIGNATURE] = "bad_signature",
	[HT_REQSIG_REPLAYED_NONCE] = "replayed_nonce",
	[HT_REQSIG_NONCE_CACHE_FULL] = "nonce_cache_full",
};

const char *ht_reqsig_result_name(enum ht_reqsig_result r)
{
	if ((unsigned)r >= HT_REQSIG__COUNT || !result_names[r])
		return "unknown";
	return result_names[r];
}

/* ---- field syntax ----------------------------------------------------- */

static bool is_alnum(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9');
}

/* [A-Za-z0-9._:-]{1,64} */
static bool valid_key_id(const char *s, size_t len)
{
	if (len == 0 || len > HT_REQSIG_KEY_ID_BYTES_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' &&
		    s[i] != ':' && s[i] != '-')
			return false;
	return true;
}

/* [A-Za-z0-9_-]{16,64} */
static bool valid_nonce(const char *s, size_t len)
{
	if (len < HT_REQSIG_NONCE_BYTES_MIN || len > HT_REQSIG_NONCE_BYTES_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

/* A NUL-terminated string of at most max bytes that passes check. The
 * length is found with strnlen so an unterminated buffer is not overread
 * beyond max + 1 bytes. */
static bool valid_cstr(const char *s, size_t max,
		       bool (*check)(const char *, size_t))
{
	if (!s)
		return false;
	size_t n = strnlen(s, max + 1);
	return n <= max && check(s, n);
}

/* [A-Z]{1,16}: HTTP methods are case-sensitive, so they are signed as
 * sent and only the uppercase ones are signable. */
static bool valid_method(const char *s, size_t len)
{
	if (len == 0 || len > HT_REQSIG_METHOD_BYTES_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return false;
	return true;
}

/* 1..8192 bytes of 0x21..0x7e: never a '\n', so it cannot shift the
 * fields after it in the signed string. */
static bool valid_path(const char *s, size_t len)
{
	if (len == 0 || len > HT_REQSIG_PATH_BYTES_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return false;
	return true;
}

/* 1..12 digits, no leading zero (so the text is the value's only form). */
static bool parse_ts(const char *s, size_t len, uint64_t *out)
{
	if (len == 0 || len > HT_REQSIG_TS_DIGITS_MAX)
		return false;
	if (len > 1 && s[0] == '0')
		return false;
	return ht_u64_parse(s, len, out) == HT_OK;
}

/* ---- base64url (RFC 4648 §5), unpadded, canonical ------------------- */

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Encode n bytes into out (which holds (4n+2)/3 + 1 bytes); NUL-ends it
 * and returns the length. */
static size_t b64url_encode(const uint8_t *in, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = b64url[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = b64url[v & 63];
	}
	out[o] = '\0';
	return o;
}

/* Decode s[0..len) into out[0..out_size). Refuses padding, characters
 * outside the alphabet, a length of 1 mod 4 and non-zero unused bits in
 * the last character, so each byte string has exactly one encoding. */
static bool b64url_decode(const char *s, size_t len, uint8_t *out,
			  size_t out_size, size_t *out_len)
{
	size_t bytes = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
	if (len % 4 == 1 || bytes > out_size)
		return false;
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value(s[i]);
		if (v < 0)
			return false;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)
		return false;
	*out_len = o;
	return true;
}

/* ---- parse ------------------------------------------------------------ */

enum param {
	P_KEY = 0,
	P_ALG,
	P_TS,
	P_NONCE,
	P_SIG,
	P__COUNT
};

static const char *const param_names[P__COUNT] = {
	[P_KEY] = "key", [P_ALG] = "alg", [P_TS] = "ts",
	[P_NONCE] = "nonce", [P_SIG] = "sig",
};

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static size_t skip_ows(const char *h, size_t i, size_t len)
{
	while (i < len && is_ows(h[i]))
		i++;
	return i;
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '_';
}

/* Characters allowed inside a quoted value: printable ASCII but the quote
 * and the backslash (no escapes: none of our values needs one). */
static bool is_value_char(char c)
{
	return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
}

/* Store one parameter's value into out, or say what is wrong with it. */
static enum ht_reqsig_result set_param(enum param p, const char *v,
				       size_t n, struct ht_reqsig *out)
{
	char alg[ALG_NAME_BYTES_MAX + 1];
	switch (p) {
	case P_KEY:
		if (!valid_key_id(v, n))
			return HT_REQSIG_BAD_KEY_ID;
		memcpy(out->key_id, v, n);
		out->key_id[n] = '\0';
		return HT_REQSIG_OK;
	case P_ALG:
		if (n == 0 || n > ALG_NAME_BYTES_MAX)
			return HT_REQSIG_BAD_ALG;
		memcpy(alg, v, n);
		alg[n] = '\0';
		return ht_sign_alg_parse(alg, &out->alg) == HT_OK
			       ? HT_REQSIG_OK
			       : HT_REQSIG_BAD_ALG;
	case P_TS:
		return parse_ts(v, n, &out->ts) ? HT_REQSIG_OK
						: HT_REQSIG_BAD_TIMESTAMP;
	case P_NONCE:
		if (!valid_nonce(v, n))
			return HT_REQSIG_BAD_NONCE;
		memcpy(out->nonce, v, n);
		out->nonce[n] = '\0';
		return HT_REQSIG_OK;
	case P_SIG:
		if (n == 0 || n > HT_REQSIG_SIG_CHARS_MAX ||
		    !b64url_decode(v, n, out->sig, sizeof out->sig,
				   &out->sig_len))
			return HT_REQSIG_BAD_SIGNATURE_ENCODING;
		return HT_REQSIG_OK;
	case P__COUNT:
		break;
	}
	HT_ASSERT(!"unreachable parameter");
	return HT_REQSIG_MALFORMED_HEADER;
}

/* The scheme word at h[*i..): "v1" (then *i moves past it), another
 * "v<digits>", or something else. */
static enum ht_reqsig_result parse_scheme(const char *h, size_t len,
					  size_t *i)
{
	size_t start = *i, end = start;
	while (end < len && !is_ows(h[end]))
		end++;
	size_t n = end - start;
	if (n == 2 && h[start] == 'v' && h[start + 1] == '1') {
		*i = end;
		return HT_REQSIG_OK;
	}
	if (n < 2 || h[start] != 'v')
		return HT_REQSIG_MALFORMED_HEADER;
	for (size_t k = start + 1; k < end; k++)
		if (h[k] < '0' || h[k] > '9')
			return HT_REQSIG_MALFORMED_HEADER;
	return HT_REQSIG_UNSUPPORTED_VERSION;
}

/* One `name="value"` at h[*i..); on success *i is just past the closing
 * quote and the value is stored in out (seen marks it). */
static enum ht_reqsig_result parse_param(const char *h, size_t len, size_t *i,
					 unsigned *seen, struct ht_reqsig *out)
{
	size_t name = *i;
	while (*i < len && is_name_char(h[*i]) &&
	       *i - name < PARAM_NAME_BYTES_MAX)
		(*i)++;
	size_t name_len = *i - name;
	if (name_len == 0 || *i + 1 >= len || h[*i] != '=' || h[*i + 1] != '"')
		return HT_REQSIG_MALFORMED_HEADER;
	size_t value = *i + 2;
	size_t end = value;
	while (end < len && is_value_char(h[end]))
		end++;
	if (end >= len || h[end] != '"')
		return HT_REQSIG_MALFORMED_HEADER;
	*i = end + 1;
	for (unsigned p = 0; p < P__COUNT; p++) {
		if (strlen(param_names[p]) != name_len ||
		    memcmp(param_names[p], h + name, name_len) != 0)
			continue;
		if (*seen & (1u << p))
			return HT_REQSIG_DUPLICATE_PARAMETER;
		*seen |= 1u << p;
		return set_param((enum param)p, h + value, end - value, out);
	}
	return HT_REQSIG_UNKNOWN_PARAMETER;
}

/* The parameter list after the scheme; h[i] is the first byte after it. */
static enum ht_reqsig_result parse_params(const char *h, size_t len, size_t i,
					  struct ht_reqsig *out)
{
	unsigned seen = 0;
	size_t after = skip_ows(h, i, len);
	if (after == len)
		return HT_REQSIG_MISSING_PARAMETER;
	if (after == i)
		return HT_REQSIG_MALFORMED_HEADER; /* "v1" glued to more */
	i = after;
	/* Each round consumes at least 4 bytes (`n=""`), so len bounds it. */
	for (;;) {
		enum ht_reqsig_result r = parse_param(h, len, &i, &seen, out);
		if (r != HT_REQSIG_OK)
			return r;
		i = skip_ows(h, i, len);
		if (i == len)
			break;
		if (h[i] != ',')
			return HT_REQSIG_MALFORMED_HEADER;
		i = skip_ows(h, i + 1, len);
	}
	return seen == (1u << P__COUNT) - 1 ? HT_REQSIG_OK
					    : HT_REQSIG_MISSING_PARAMETER;
}

enum ht_reqsig_result ht_reqsig_parse(const char *header, size_t len,
				      struct ht_reqsig *out)
{
	HT_ASSERT(out != NULL);
	HT_ASSERT(header != NULL || len == 0);
	memset(out, 0, sizeof *out);
	if (len > HT_REQSIG_HEADER_BYTES_MAX)
		return HT_REQSIG_HEADER_TOO_LONG;
	size_t i = skip_ows(header, 0, len);
	if (i == len)
		return HT_REQSIG_MALFORMED_HEADER;
	enum ht_reqsig_result r = parse_scheme(header, len, &i);
	if (r == HT_REQSIG_OK)
		r = parse_params(header, len, i, out);
	if (r != HT_REQSIG_OK) {
		memset(out, 0, sizeof *out);
		return r;
	}
	HT_ASSERT(out->sig_len > 0 && out->sig_len <= HT_SIG_BYTES_MAX);
	HT_ASSERT(out->ts <= TS_MAX);
	return HT_REQSIG_OK;
}

/* ---- format ----------------------------------------------------------- */

static bool valid_reqsig(const struct ht_reqsig *s)
{
	return valid_cstr(s->key_id, HT_REQSIG_KEY_ID_BYTES_MAX,
			  valid_key_id) &&
	       valid_cstr(s->nonce, HT_REQSIG_NONCE_BYTES_MAX, valid_nonce) &&
	       (s->alg == HT_SIGN_SM2 || s->alg == HT_SIGN_ED25519 ||
		s->alg == HT_SIGN_ECDSA_P256) &&
	       s->ts <= TS_MAX && s->sig_len > 0 &&
	       s->sig_len <= HT_SIG_BYTES_MAX;
}

enum ht_err ht_reqsig_format(const struct ht_reqsig *s, char *out,
			     size_t size, size_t *out_len)
{
	HT_ASSERT(s != NULL);
	HT_ASSERT(out != NULL || size == 0);
	if (size > 0)
		out[0] = '\0';
	if (!valid_reqsig(s))
		return HT_ERR_INVALID;
	char sig[HT_REQSIG_SIG_CHARS_MAX + 1];
	b64url_encode(s->sig, s->sig_len, sig);
	int n = snprintf(out, size,
			 "v1 key=\"%s\", alg=\"%s\", ts=\"%llu\", "
			 "nonce=\"%s\", sig=\"%s\"",
			 s->key_id, ht_sign_alg_name(s->alg),
			 (unsigned long long)s->ts, s->nonce, sig);
	HT_ASSERT(n > 0 && n <= HT_REQSIG_HEADER_BYTES_MAX);
	if ((size_t)n >= size) {
		if (size > 0)
			out[0] = '\0';
		return HT_ERR_LIMIT;
	}
	if (out_len)
		*out_len = (size_t)n;
	return HT_OK;
}

/* ---- the signed string ------------------------------------------------ */

/*
 * Write "HT-REQ-V1\nMETHOD\npath\nkey_id\nalg\nts\nnonce\nhex(H(body))"
 * into buf (SIGNED_BYTES_MAX bytes) and return its length through *len.
 * Every field has been validated, none contains '\n'.
 */
static enum ht_err signed_string(const struct ht_reqsig *s, const char *method,
				 const char *path, const void *body,
				 size_t body_len, char *buf, size_t *len)
{
	uint8_t digest[HT_HASH_BYTES];
	char hex[2 * HT_HASH_BYTES + 1];
	enum ht_hash_alg h =
		s->alg == HT_SIGN_SM2 ? HT_HASH_SM3 : HT_HASH_SHA256;
	enum ht_err err = ht_hash(h, body, body_len, digest);
	if (err)
		return err;
	ht_hex_encode(digest, sizeof digest, hex);
	int n = snprintf(buf, SIGNED_BYTES_MAX + 1,
			 SIGNED_PREFIX "\n%s\n%s\n%s\n%s\n%llu\n%s\n%s", method,
			 path, s->key_id, ht_sign_alg_name(s->alg),
			 (unsigned long long)s->ts, s->nonce, hex);
	HT_ASSERT(n > 0 && (size_t)n <= SIGNED_BYTES_MAX);
	*len = (size_t)n;
	return HT_OK;
}

static bool valid_request_line(const char *method, const char *path)
{
	return valid_cstr(method, HT_REQSIG_METHOD_BYTES_MAX, valid_method) &&
	       valid_cstr(path, HT_REQSIG_PATH_BYTES_MAX, valid_path);
}

/* A fresh nonce: HT_REQSIG_NONCE_RANDOM_BYTES random bytes in base64url. */
static enum ht_err random_nonce(char out[HT_REQSIG_NONCE_BYTES_MAX + 1])
{
	uint8_t raw[HT_REQSIG_NONCE_RANDOM_BYTES];
	enum ht_err err = ht_random(raw, sizeof raw);
	if (err)
		return err;
	size_t n = b64url_encode(raw, sizeof raw, out);
	HT_ASSERT(valid_nonce(out, n));
	return HT_OK;
}

enum ht_err ht_reqsig_sign(const struct ht_key *key, const char *key_id,
			   const char *method, const char *path,
			   const void *body, size_t body_len, uint64_t ts,
			   const char *nonce, char *header_out,
			   size_t header_size, size_t *header_len)
{
	HT_ASSERT(key != NULL);
	HT_ASSERT(header_out != NULL || header_size == 0);
	if (header_size > 0)
		header_out[0] = '\0';
	if (!valid_cstr(key_id, HT_REQSIG_KEY_ID_BYTES_MAX, valid_key_id) ||
	    !valid_request_line(method, path) || ts > TS_MAX ||
	    (body_len && !body) ||
	    (nonce && !valid_cstr(nonce, HT_REQSIG_NONCE_BYTES_MAX,
				  valid_nonce)))
		return HT_ERR_INVALID;
	struct ht_reqsig s = { .alg = ht_key_alg(key), .ts = ts };
	strcpy(s.key_id, key_id); /* length checked above */
	enum ht_err err = HT_OK;
	if (nonce)
		strcpy(s.nonce, nonce);
	else
		err = random_nonce(s.nonce);
	char msg[SIGNED_BYTES_MAX + 1];
	size_t msg_len = 0;
	if (!err)
		err = signed_string(&s, method, path, body, body_len, msg,
				    &msg_len);
	if (!err)
		err = ht_sign(key, msg, msg_len, s.sig, &s.sig_len);
	if (!err)
		err = ht_reqsig_format(&s, header_out, header_size, header_len);
	return err;
}

/* ---- verify ------------------------------------------------------------ */

static uint64_t abs_diff(uint64_t a, uint64_t b)
{
	return a > b ? a - b : b - a;
}

enum ht_err ht_reqsig_verify(const struct ht_reqsig *s,
			     const struct ht_key *pub, const char *method,
			     const char *path, const void *body,
			     size_t body_len, uint64_t now_s, uint32_t window_s,
			     enum ht_reqsig_result *result)
{
	HT_ASSERT(s != NULL);
	HT_ASSERT(pub != NULL);
	HT_ASSERT(result != NULL);
	*result = HT_REQSIG_BAD_SIGNATURE;
	if (window_s > HT_REQSIG_WINDOW_S_MAX || !valid_reqsig(s) ||
	    (body_len && !body))
		return HT_ERR_INVALID;
	if (!valid_request_line(method, path)) {
		*result = HT_REQSIG_BAD_REQUEST_LINE;
		return HT_OK;
	}
	if (s->alg != ht_key_alg(pub)) {
		*result = HT_REQSIG_ALG_MISMATCH;
		return HT_OK;
	}
	if (abs_diff(now_s, s->ts) > window_s) {
		*result = HT_REQSIG_STALE_TIMESTAMP;
		return HT_OK;
	}
	char msg[SIGNED_BYTES_MAX + 1];
	size_t msg_len;
	enum ht_err err = signed_string(s, method, path, body, body_len, msg,
					&msg_len);
	if (err)
		return err;
	err = ht_verify(pub, msg, msg_len, s->sig, s->sig_len);
	if (err == HT_ERR_VERIFY)
		return HT_OK; /* *result is bad_signature */
	if (err)
		return err;
	*result = HT_REQSIG_OK;
	return HT_OK;
}

/* ---- the nonce cache ---------------------------------------------------- */

/*
 * Layout: a pool of entries, a chained hash table over their fingerprints
 * and a timer wheel. Links are 1-based entry numbers, 0 meaning "none", so
 * calloc'd (lazily zeroed) memory is an empty table.
 *
 * Wheel invariant: after the clock has advanced to c->now_s, every entry
 * has expiry = ts + window in [now_s, now_s + 2 * window] (check_and_add
 * admits only ts within now_s ± window), and those 2 * window + 1 values
 * fall into distinct wheel slots. So slot (e mod slots) holds exactly the
 * entries expiring at e, and advancing the clock from a to b frees the
 * slots of a .. b-1 and nothing live.
 */
struct nonce_entry {
	uint64_t fp;         /* keyed fingerprint of (key_id, nonce) */
	uint32_t hash_next;  /* next entry in the same hash chain */
	uint32_t wheel_next; /* next entry in the same wheel slot / free list */
};

#define SALT_BYTES 16

struct ht_nonce_cache {
	struct ht_hasher *hasher; /* SHA-256: internal, so the fastest */
	uint8_t salt[SALT_BYTES];
	uint32_t window_s;
	uint32_t capacity;
	uint32_t count;      /* live entries */
	uint32_t used;       /* entries ever handed out from the pool */
	uint32_t free_head;  /* recycled entries, linked by wheel_next */
	uint32_t hash_mask;  /* hash chains: hash_mask + 1, a power of two */
	uint32_t *hash_heads;
	uint32_t wheel_slots; /* 2 * window + 1 */
	uint32_t *wheel;
	uint64_t now_s;      /* the cache's clock: the largest now_s seen */
	struct nonce_entry *entries;
};

enum ht_err ht_nonce_cache_create(size_t capacity, uint32_t window_s,
				  struct ht_nonce_cache **out)
{
	HT_ASSERT(out != NULL);
	*out = NULL;
	if (capacity == 0 || window_s == 0 || window_s > HT_REQSIG_WINDOW_S_MAX)
		return HT_ERR_INVALID;
	if (capacity > HT_NONCE_CACHE_CAPACITY_MAX)
		return HT_ERR_LIMIT;
	struct ht_nonce_cache *c = calloc(1, sizeof *c);
	if (!c)
		return HT_ERR_NOMEM;
	c->capacity = (uint32_t)capacity;
	c->window_s = window_s;
	c->wheel_slots = 2 * window_s + 1;
	size_t chains = 1;
	while (chains < capacity)
		chains *= 2;
	c->hash_mask = (uint32_t)(chains - 1);
	c->hash_heads = calloc(chains, sizeof *c->hash_heads);
	c->wheel = calloc(c->wheel_slots, sizeof *c->wheel);
	c->entries = malloc(capacity * sizeof *c->entries);
	enum ht_err err = HT_OK;
	if (!c->hash_heads || !c->wheel || !c->entries)
		err = HT_ERR_NOMEM;
	if (!err)
		err = ht_random(c->salt, sizeof c->salt);
	if (!err)
		err = ht_hasher_create(HT_HASH_SHA256, &c->hasher);
	if (err) {
		ht_nonce_cache_destroy(c);
		return err;
	}
	*out = c;
	return HT_OK;
}

void ht_nonce_cache_destroy(struct ht_nonce_cache *c)
{
	if (!c)
		return;
	ht_hasher_destroy(c->hasher);
	free(c->hash_heads);
	free(c->wheel);
	free(c->entries);
	free(c);
}

size_t ht_nonce_cache_count(const struct ht_nonce_cache *c)
{
	HT_ASSERT(c != NULL);
	return c->count;
}

static struct nonce_entry *entry_at(struct ht_nonce_cache *c, uint32_t n)
{
	HT_ASSERT(n >= 1 && n <= c->used);
	return &c->entries[n - 1];
}

/* Unlink entry n from its hash chain; it must be there. */
static void hash_remove(struct ht_nonce_cache *c, uint32_t n)
{
	uint32_t *link = &c->hash_heads[entry_at(c, n)->fp & c->hash_mask];
	while (*link != n) {
		HT_ASSERT(*link != 0);
		link = &entry_at(c, *link)->hash_next;
	}
	*link = entry_at(c, n)->hash_next;
}

/* Free every entry in one wheel slot: they have all expired. */
static void wheel_evict_slot(struct ht_nonce_cache *c, uint32_t slot)
{
	uint32_t n = c->wheel[slot];
	c->wheel[slot] = 0;
	while (n != 0) {
		struct nonce_entry *e = entry_at(c, n);
		uint32_t next = e->wheel_next;
		hash_remove(c, n);
		e->wheel_next = c->free_head;
		c->free_head = n;
		HT_ASSERT(c->count > 0);
		c->count--;
		n = next;
	}
}

/* Move the cache's clock to now_s (never back), evicting what died. */
static void advance_clock(struct ht_nonce_cache *c, uint64_t now_s)
{
	if (now_s <= c->now_s)
		return;
	if (now_s - c->now_s >= c->wheel_slots) {
		for (uint32_t s = 0; s < c->wheel_slots; s++)
			wheel_evict_slot(c, s);
		HT_ASSERT(c->count == 0);
	} else {
		for (uint64_t t = c->now_s; t < now_s; t++)
			wheel_evict_slot(c, (uint32_t)(t % c->wheel_slots));
	}
	c->now_s = now_s;
}

/* The keyed fingerprint of (key_id, nonce). A space separates them: it is
 * in neither alphabet, so different pairs never hash the same bytes. */
static enum ht_err fingerprint(struct ht_nonce_cache *c, const char *key_id,
			       size_t key_len, const char *nonce,
			       size_t nonce_len, uint64_t *fp)
{
	char buf[HT_REQSIG_KEY_ID_BYTES_MAX + 1 + HT_REQSIG_NONCE_BYTES_MAX];
	memcpy(buf, key_id, key_len);
	buf[key_len] = ' ';
	memcpy(buf + key_len + 1, nonce, nonce_len);
	uint8_t d[HT_HASH_BYTES];
	enum ht_err err = ht_hash3(c->hasher, c->salt, sizeof c->salt, buf,
				   key_len + 1 + nonce_len, NULL, 0, d);
	if (err)
		return err;
	memcpy(fp, d, sizeof *fp);
	return HT_OK;
}

static bool cache_contains(struct ht_nonce_cache *c, uint64_t fp)
{
	/* Chains are bounded by the entries in use. */
	for (uint32_t n = c->hash_heads[fp & c->hash_mask]; n != 0;
	     n = entry_at(c, n)->hash_next)
		if (entry_at(c, n)->fp == fp)
			return true;
	return false;
}

static void cache_insert(struct ht_nonce_cache *c, uint64_t fp, uint64_t ts)
{
	HT_ASSERT(c->count < c->capacity);
	uint32_t n;
	if (c->free_head != 0) {
		n = c->free_head;
		c->free_head = entry_at(c, n)->wheel_next;
	} else {
		HT_ASSERT(c->used < c->capacity);
		n = ++c->used;
	}
	struct nonce_entry *e = entry_at(c, n);
	uint32_t slot = (uint32_t)((ts + c->window_s) % c->wheel_slots);
	e->fp = fp;
	e->hash_next = c->hash_heads[fp & c->hash_mask];
	c->hash_heads[fp & c->hash_mask] = n;
	e->wheel_next = c->wheel[slot];
	c->wheel[slot] = n;
	c->count++;
}

enum ht_err ht_nonce_cache_check_and_add(struct ht_nonce_cache *c,
					 const char *key_id, const char *nonce,
					 uint64_t ts, uint64_t now_s,
					 enum ht_reqsig_result *result)
{
	HT_ASSERT(c != NULL);
	HT_ASSERT(result != NULL);
	*result = HT_REQSIG_NONCE_CACHE_FULL; /* a refusal until decided */
	size_t key_len =
		key_id ? strnlen(key_id, HT_REQSIG_KEY_ID_BYTES_MAX + 1) : 0;
	size_t nonce_len =
		nonce ? strnlen(nonce, HT_REQSIG_NONCE_BYTES_MAX + 1) : 0;
	if (!key_id || !valid_key_id(key_id, key_len)) {
		*result = HT_REQSIG_BAD_KEY_ID;
		return HT_OK;
	}
	if (!nonce || !valid_nonce(nonce, nonce_len)) {
		*result = HT_REQSIG_BAD_NONCE;
		return HT_OK;
	}
	advance_clock(c, now_s);
	/* Outside the window of the cache's own clock an entry would not
	 * fit the wheel; the request is stale by that clock anyway. */
	if (ts > TS_MAX || abs_diff(c->now_s, ts) > c->window_s) {
		*result = HT_REQSIG_STALE_TIMESTAMP;
		return HT_OK;
	}
	uint64_t fp;
	enum ht_err err =
		fingerprint(c, key_id, key_len, nonce, nonce_len, &fp);
	if (err)
		return err;
	if (cache_contains(c, fp)) {
		*result = HT_REQSIG_REPLAYED_NONCE;
		return HT_OK;
	}
	/* Full of live entries: refuse. Evicting a live entry to make room
	 * would let its request be replayed until its ts goes stale. */
	if (c->count == c->capacity)
		return HT_OK; /* *result is nonce_cache_full */
	cache_insert(c, fp, ts);
	*result = HT_REQSIG_OK;
	return HT_OK;
}

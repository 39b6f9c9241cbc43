/*
 * reqsig.h — request signatures for the HTTPS API: the Huitong-Signature
 * header (parse, format, sign, verify) and the nonce cache that refuses
 * replays.
 *
 * Owner: api. Every mutating request carries
 *
 *   Huitong-Signature: v1 key="<key_id>", alg="sm2|ed25519|ecdsa-p256",
 *                      ts="<unix seconds>", nonce="<nonce>", sig="<base64url>"
 *
 * made with the participant's key over the signed string
 *
 *   "HT-REQ-V1" \n METHOD \n path \n key_id \n alg \n ts \n nonce
 *   \n hex(H(body))
 *
 * ('\n' separated, no trailing newline; H = SM3 for sm2, SHA-256 otherwise;
 * an empty body is hashed as H("")). The hub refuses a header it cannot
 * parse, a signature that does not verify under the key named by key_id,
 * a ts more than HT_REQSIG_WINDOW_S from its clock and a (key_id, nonce)
 * it has already seen within the window. docs/internals/reqsig.md gives
 * the grammar and the reasons.
 *
 * This module handles outside input: every length is bounded by the
 * limits below, and a bad header is a result code, never a crash. It
 * never implements a primitive: hashing, signing and randomness go through
 * crypto.h. It does not look keys up; the caller maps key_id to a key.
 */
#ifndef HUITONG_REQSIG_H
#define HUITONG_REQSIG_H

#include "huitong/crypto.h"

/* ---- limits (candidates for limits.h) -------------------------------- */

/* The HTTP header that carries the signature; the functions below handle
 * its value only (what follows "Huitong-Signature:"). */
#define HT_REQSIG_HEADER_NAME "Huitong-Signature"

/* Bytes of the header value. A full header with the longest key_id and
 * nonce and a 72-byte DER signature is about 330 bytes; 1024 leaves room
 * and keeps one header far below any HTTP library's header limit. */
#define HT_REQSIG_HEADER_BYTES_MAX 1024

/* key_id: 1..64 characters of [A-Za-z0-9._:-]. Long enough for
 * "<participant>:<key serial>" names, short enough to sit in one line. */
#define HT_REQSIG_KEY_ID_BYTES_MAX 64

/* nonce: 16..64 characters of [A-Za-z0-9_-] (the base64url alphabet).
 * 16 base64url characters carry 96 bits, so honest random nonces never
 * collide; 64 lets clients use a UUID or a hex SHA-256. */
#define HT_REQSIG_NONCE_BYTES_MIN 16
#define HT_REQSIG_NONCE_BYTES_MAX 64

/* Random bytes of a nonce ht_reqsig_sign makes itself: 128 bits, 22
 * base64url characters. */
#define HT_REQSIG_NONCE_RANDOM_BYTES 16

/* ts: unix seconds, 1..12 decimal digits without leading zeros (up to the
 * year 33658). Twelve digits keep ts + any window far from overflow. */
#define HT_REQSIG_TS_DIGITS_MAX 12

/* The accepted clock difference between client and hub, either way. */
#define HT_REQSIG_WINDOW_S 300

/* Largest window a caller may ask for (verify and nonce cache): the cache
 * keeps a timer wheel of 2 * window + 1 slots. */
#define HT_REQSIG_WINDOW_S_MAX 3600

/* HTTP method: 1..16 uppercase ASCII letters, compared as sent. */
#define HT_REQSIG_METHOD_BYTES_MAX 16

/* Request target (path and query) as sent: 1..8192 visible ASCII bytes
 * (0x21..0x7e), so it can never carry the '\n' that separates the fields
 * of the signed string. */
#define HT_REQSIG_PATH_BYTES_MAX 8192

/* base64url characters of a signature: HT_SIG_BYTES_MAX bytes unpadded. */
#define HT_REQSIG_SIG_CHARS_MAX ((HT_SIG_BYTES_MAX * 4 + 2) / 3)

/* Default capacity of the nonce cache, in (key_id, nonce) entries. A
 * nonce is remembered while a request carrying it could still pass the
 * timestamp check: about window + 1 = 301 s for a client with an accurate
 * clock. At the API target of 10,000 signed requests/s that is ~3.0 M live
 * entries; 2^22 = 4.19 M leaves ~40% headroom. Each entry costs 20 bytes
 * (16-byte slot + 4-byte hash head), so at most ~80 MiB, touched only as
 * it fills. */
#define HT_NONCE_CACHE_CAPACITY_DEFAULT (1u << 22)

/* Entries are indexed by 32-bit numbers; 2^26 entries is 1.25 GiB. */
#define HT_NONCE_CACHE_CAPACITY_MAX (1u << 26)

_Static_assert(HT_REQSIG_WINDOW_S <= HT_REQSIG_WINDOW_S_MAX,
	       "the default window is an allowed window");
_Static_assert(HT_REQSIG_NONCE_BYTES_MIN <= HT_REQSIG_NONCE_BYTES_MAX,
	       "nonce bounds are ordered");
_Static_assert((HT_REQSIG_NONCE_RANDOM_BYTES * 4 + 2) / 3 >=
		       HT_REQSIG_NONCE_BYTES_MIN,
	       "generated nonces are long enough");
_Static_assert(HT_NONCE_CACHE_CAPACITY_DEFAULT <= HT_NONCE_CACHE_CAPACITY_MAX,
	       "the default cache capacity is allowed");
_Static_assert(HT_REQSIG_HEADER_BYTES_MAX >=
		       48 + HT_REQSIG_KEY_ID_BYTES_MAX + 10 +
			       HT_REQSIG_TS_DIGITS_MAX +
			       HT_REQSIG_NONCE_BYTES_MAX +
			       HT_REQSIG_SIG_CHARS_MAX,
	       "the longest canonical header fits the header limit");

/* ---- results ---------------------------------------------------------- */

/*
 * The verdict on a signed request. These are outcomes, not errors: the
 * functions that can also fail internally return enum ht_err and hand the
 * verdict back through an out parameter. Names (ht_reqsig_result_name)
 * are snake_case and stable; the API puts them in its error bodies.
 */
enum ht_reqsig_result {
	HT_REQSIG_OK = 0,
	/* parse */
	HT_REQSIG_HEADER_TOO_LONG,      /* > HT_REQSIG_HEADER_BYTES_MAX bytes */
	HT_REQSIG_MALFORMED_HEADER,     /* does not follow the grammar */
	HT_REQSIG_UNSUPPORTED_VERSION,  /* scheme is not "v1" */
	HT_REQSIG_UNKNOWN_PARAMETER,    /* a well-formed name we do not know */
	HT_REQSIG_DUPLICATE_PARAMETER,  /* a parameter given twice */
	HT_REQSIG_MISSING_PARAMETER,    /* one of the five is absent */
	HT_REQSIG_BAD_KEY_ID,           /* length or characters */
	HT_REQSIG_BAD_ALG,              /* not sm2, ed25519, ecdsa-p256 */
	HT_REQSIG_BAD_TIMESTAMP,        /* not 1..12 digits, or a leading 0 */
	HT_REQSIG_BAD_NONCE,            /* length or characters */
	HT_REQSIG_BAD_SIGNATURE_ENCODING, /* not canonical unpadded base64url
					   * of 1..HT_SIG_BYTES_MAX bytes */
	/* verify */
	HT_REQSIG_BAD_REQUEST_LINE,     /* method or path cannot be signed */
	HT_REQSIG_ALG_MISMATCH,         /* alg differs from the key's */
	HT_REQSIG_STALE_TIMESTAMP,      /* ts outside now ± window */
	HT_REQSIG_BAD_SIGNATURE,        /* does not verify under the key */
	/* nonce cache */
	HT_REQSIG_REPLAYED_NONCE,       /* (key_id, nonce) seen within window */
	HT_REQSIG_NONCE_CACHE_FULL,     /* capacity reached with live nonces */
	HT_REQSIG__COUNT
};

/* Static snake_case name of a result ("ok", "bad_nonce", …); never NULL
 * ("unknown" for a value outside the enum). */
const char *ht_reqsig_result_name(enum ht_reqsig_result r);

/* ---- the parsed header ------------------------------------------------ */

/*
 * A parsed Huitong-Signature header. Self-contained (no pointers into the
 * header text): strings are NUL-terminated copies, the signature decoded.
 */
struct ht_reqsig {
	char key_id[HT_REQSIG_KEY_ID_BYTES_MAX + 1];
	enum ht_sign_alg alg;
	uint64_t ts;
	char nonce[HT_REQSIG_NONCE_BYTES_MAX + 1];
	uint8_t sig[HT_SIG_BYTES_MAX];
	size_t sig_len;
};

/*
 * Parse the value of a Huitong-Signature header, header[0..len) (need not
 * be NUL-terminated; a NUL byte inside is malformed). Grammar:
 *
 *   value = OWS "v1" 1*SP param *( OWS "," OWS param ) OWS
 *   param = name "=" DQUOTE *vchar-but-dquote-and-backslash DQUOTE
 *   name  = 1*16 ( a-z / 0-9 / "-" / "_" )
 *
 * with the parameters key, alg, ts, nonce and sig in any order, each
 * exactly once. A different first word is unsupported_version (when it
 * looks like "v<digits>") or malformed_header. The first problem from the
 * left decides the result; a missing parameter is reported only when
 * everything present is valid. On HT_REQSIG_OK *out is filled; on any
 * other result *out is zeroed.
 */
enum ht_reqsig_result ht_reqsig_parse(const char *header, size_t len,
				      struct ht_reqsig *out);

/*
 * Write the canonical header value of s (parameters in the order key,
 * alg, ts, nonce, sig, separated by ", ") into out[0..size), NUL-terminated;
 * *out_len (may be NULL) gets its length without the NUL. Parsing the
 * result gives s back. Errors: HT_ERR_INVALID when a field of s is not
 * valid, HT_ERR_LIMIT when size is too small (out is then "").
 */
enum ht_err ht_reqsig_format(const struct ht_reqsig *s, char *out,
			     size_t size, size_t *out_len);

/*
 * Sign a request with key (a private key) and write the header value into
 * header_out[0..header_size), NUL-terminated, length in *header_len (may
 * be NULL). method: 1..16 uppercase letters; path: the request target as
 * it will be sent (path and query); body may be NULL when body_len is 0;
 * ts: unix seconds (at most 12 digits); nonce: NULL to draw a fresh random
 * one (recommended), else a valid nonce string. The alg written is the
 * key's. HT_REQSIG_HEADER_BYTES_MAX + 1 bytes always suffice.
 * Errors: HT_ERR_INVALID (bad key_id, method, path, ts or nonce, or a
 * public-only key), HT_ERR_LIMIT (header_size too small), HT_ERR_CRYPTO.
 */
enum ht_err ht_reqsig_sign(const struct ht_key *key, const char *key_id,
			   const char *method, const char *path,
			   const void *body, size_t body_len, uint64_t ts,
			   const char *nonce, char *header_out,
			   size_t header_size, size_t *header_len);

/*
 * Check a parsed header against the request it came with and the public
 * key registered for s->key_id (the caller looks it up; SM2 keys carry
 * their distinguishing ID). In order, cheapest first: method/path
 * (bad_request_line), s->alg against the key (alg_mismatch), |now_s - ts|
 * <= window_s (stale_timestamp), then the signature (bad_signature).
 * It does NOT consult the nonce cache: call ht_nonce_cache_check_and_add
 * after a verdict of ok, so that only authenticated requests can occupy
 * the cache. window_s: 0..HT_REQSIG_WINDOW_S_MAX (normally
 * HT_REQSIG_WINDOW_S, and the same window as the cache's).
 * Returns HT_OK with the verdict in *result; errors: HT_ERR_INVALID
 * (window_s out of range), HT_ERR_CRYPTO (OpenSSL could not run; *result
 * is then bad_signature, so a caller that ignores the error still refuses).
 */
enum ht_err ht_reqsig_verify(const struct ht_reqsig *s,
			     const struct ht_key *pub, const char *method,
			     const char *path, const void *body,
			     size_t body_len, uint64_t now_s, uint32_t window_s,
			     enum ht_reqsig_result *result);

/* ---- the nonce cache --------------------------------------------------- */

/*
 * Remembers every (key_id, nonce) accepted within the window, in fixed
 * memory. An entry lives until now_s > ts + window_s: from then on any
 * request carrying its ts is stale, so the nonce cannot be replayed. Dead
 * entries are evicted as the clock advances (a timer wheel, O(1) per
 * entry). When every slot holds a live entry the cache refuses new nonces
 * (nonce_cache_full) instead of forgetting one, since forgetting a live
 * nonce would let that request be replayed.
 *
 * Entries are 64-bit keyed fingerprints of (key_id, nonce) (SHA-256 with a
 * random per-cache salt): two different pairs share one with probability
 * ~ entries / 2^64, and a shared fingerprint can only refuse an honest
 * request as a replay, never accept a replay.
 *
 * Memory only: a restarted hub has forgotten every nonce (see
 * docs/internals/reqsig.md, "Restart"). Not thread-safe: one caller at a
 * time (a lock, or one cache per shard of key_ids).
 */
struct ht_nonce_cache;

/*
 * Create a cache for capacity entries (1..HT_NONCE_CACHE_CAPACITY_MAX,
 * usually HT_NONCE_CACHE_CAPACITY_DEFAULT) and window_s (1..
 * HT_REQSIG_WINDOW_S_MAX, the same window verify uses). Memory is
 * reserved up front and touched as entries arrive. Free with
 * ht_nonce_cache_destroy. Errors: HT_ERR_INVALID (capacity 0, window out
 * of range), HT_ERR_LIMIT (capacity too large), HT_ERR_NOMEM,
 * HT_ERR_CRYPTO (no randomness for the salt).
 */
enum ht_err ht_nonce_cache_create(size_t capacity, uint32_t window_s,
				  struct ht_nonce_cache **out);

/* Free the cache; accepts NULL. */
void ht_nonce_cache_destroy(struct ht_nonce_cache *c);

/*
 * Record (key_id, nonce) seen with timestamp ts at time now_s, after its
 * request verified. Verdicts: ok (new; now remembered), replayed_nonce
 * (remembered and live), nonce_cache_full (new, but every slot is live;
 * nothing is forgotten), stale_timestamp (ts outside the window of the
 * cache's clock, which is max(now_s, every earlier now_s): such a request
 * must not be accepted since the cache could not remember it correctly),
 * bad_key_id, bad_nonce. Dead entries are evicted first. Returns HT_OK
 * with the verdict in *result; errors: HT_ERR_CRYPTO (fingerprint hash
 * failed; *result is then nonce_cache_full, a refusal).
 */
enum ht_err ht_nonce_cache_check_and_add(struct ht_nonce_cache *c,
					 const char *key_id, const char *nonce,
					 uint64_t ts, uint64_t now_s,
					 enum ht_reqsig_result *result);

/* Entries held (live as of the latest now_s seen). */
size_t ht_nonce_cache_count(const struct ht_nonce_cache *c);

#endif

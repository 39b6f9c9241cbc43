/*
 * common.h — the few things every huitong module shares: the error enum,
 * 128-bit integers, and the release-mode assertion.
 *
 * Owner: core. This header must never include another huitong header except
 * limits.h; every other header includes it.
 */
#ifndef HUITONG_COMMON_H
#define HUITONG_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "huitong/limits.h"

#define HT_VERSION "0.1.0"

/* Unsigned 128-bit integer (GCC/Clang extension; both compilers we build with). */
typedef unsigned __int128 ht_u128;

#define HT_U128_MAX (~(ht_u128)0)

/*
 * Every fallible function returns one of these (0 = ok) and hands results
 * back through out parameters. Business outcomes (a transfer that exceeds
 * credits) are NOT errors: they are result codes in a result slot.
 */
enum ht_err {
	HT_OK = 0,
	HT_ERR_NOMEM,        /* allocation failed */
	HT_ERR_IO,           /* read/write/fsync failed; the store is poisoned */
	HT_ERR_CORRUPT,      /* stored data fails a check */
	HT_ERR_INVALID,      /* bad argument or malformed input */
	HT_ERR_NOT_FOUND,    /* asked-for object does not exist */
	HT_ERR_EXISTS,       /* e.g. init on an already initialised data dir */
	HT_ERR_LOCKED,       /* another writer holds the store's lease */
	HT_ERR_CRYPTO,       /* OpenSSL call failed */
	HT_ERR_VERIFY,       /* a signature or proof does not verify */
	HT_ERR_LIMIT,        /* input exceeds a limit in limits.h */
	HT_ERR_POISONED,     /* an earlier failure left the object unusable: reopen */
	HT_ERR_UNSUPPORTED,  /* valid request this build cannot serve */
	HT_ERR_FORBIDDEN,    /* the caller may not do this to this object */
	HT_ERR__COUNT
};

/* Static English name of an error; never NULL. */
const char *ht_strerror(enum ht_err err);

/*
 * HT_ASSERT stays on in release builds. Use it for invariants that protect
 * money and for programmer errors, never for user input or outages.
 */
void ht_assert_fail(const char *expr, const char *file, int line)
	__attribute__((noreturn));
#define HT_ASSERT(e) \
	((e) ? (void)0 : ht_assert_fail(#e, __FILE__, __LINE__))

/*
 * Parse a decimal unsigned 128-bit integer from s[0..len). Accepts only
 * ASCII digits (no sign, no spaces, no leading '+'), 1..39 digits, leading
 * zeros allowed. Returns HT_ERR_INVALID for non-digits or empty input and
 * HT_ERR_LIMIT when the value exceeds 2^128-1.
 */
enum ht_err ht_u128_parse(const char *s, size_t len, ht_u128 *out);

/* Same for u64: HT_ERR_LIMIT above 2^64-1. */
enum ht_err ht_u64_parse(const char *s, size_t len, uint64_t *out);

/*
 * Format v as decimal into buf (which must hold HT_U128_DEC_SIZE bytes,
 * NUL included). Returns buf.
 */
#define HT_U128_DEC_SIZE 40
char *ht_u128_format(ht_u128 v, char buf[HT_U128_DEC_SIZE]);

/* Decimal v into dst without a NUL: at most 20 bytes for a u64, 39 for a
 * u128 (HT_U128_DEC_SIZE - 1). Returns the number of digits written.
 * Two digits per 64-bit division, one 128-bit division at most. */
size_t ht_u64_dec(char *dst, uint64_t v);
size_t ht_u128_dec(char *dst, ht_u128 v);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void ht_hex_encode(const uint8_t *in, size_t n, char *out);
/* Decode exactly 2n hex chars (either case). HT_ERR_INVALID otherwise. */
enum ht_err ht_hex_decode(const char *in, size_t in_len, uint8_t *out,
			  size_t out_size, size_t *out_len);

/*
 * Length of the valid UTF-8 sequence at s[0..n) (1..4; n >= 1), or 0 when
 * the bytes there are not one: a bad lead byte, a bad or missing
 * continuation, an overlong form, a surrogate, a code point above
 * U+10FFFF.
 */
size_t ht_utf8_seq_len(const unsigned char *s, size_t n);

/*
 * Write a printf-formatted message into err (err_size bytes, NUL
 * terminated, truncated to fit; nothing when err is NULL or err_size 0)
 * and return code: the one-line error reporting of functions that take
 * (char *err, size_t err_size).
 */
enum ht_err ht_fail(char *err, size_t err_size, enum ht_err code,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Monotonic and wall clocks in nanoseconds. */
uint64_t ht_now_monotonic_ns(void);
uint64_t ht_now_wall_ns(void);
/* The wall clock in Unix milliseconds (ht_now_wall_ns / 10^6). */
int64_t ht_now_wall_ms(void);

#endif

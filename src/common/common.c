/*
 * common.c — errors, u128 parsing and formatting, hex, clocks, assertions.
 *
 * Owner: core. Everything here is small and dependency-free; it handles
 * outside input (ids and amounts as decimal text), so every loop is
 * bounded by the input length.
 */
#include "huitong/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const err_names[HT_ERR__COUNT] = {
	[HT_OK] = "ok",
	[HT_ERR_NOMEM] = "out of memory",
	[HT_ERR_IO] = "input/output error",
	[HT_ERR_CORRUPT] = "stored data is corrupt",
	[HT_ERR_INVALID] = "invalid argument or input",
	[HT_ERR_NOT_FOUND] = "not found",
	[HT_ERR_EXISTS] = "already exists",
	[HT_ERR_LOCKED] = "locked by another writer",
	[HT_ERR_CRYPTO] = "cryptographic operation failed",
	[HT_ERR_VERIFY] = "verification failed",
	[HT_ERR_LIMIT] = "limit exceeded",
	[HT_ERR_POISONED] = "unusable after an earlier failure; reopen",
	[HT_ERR_UNSUPPORTED] = "not supported",
	[HT_ERR_FORBIDDEN] = "not permitted for this caller",
};

const char *ht_strerror(enum ht_err err)
{
	if ((unsigned)err >= HT_ERR__COUNT || !err_names[err])
		return "unknown error";
	return err_names[err];
}

void ht_assert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "huitong: assertion failed: %s (%s:%d)\n", expr, file,
		line);
	fflush(stderr);
	abort();
}

enum ht_err ht_u128_parse(const char *s, size_t len, ht_u128 *out)
{
	if (len == 0)
		return HT_ERR_INVALID;
	ht_u128 v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return HT_ERR_INVALID;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (HT_U128_MAX - d) / 10)
			return HT_ERR_LIMIT;
		v = v * 10 + d;
	}
	*out = v;
	return HT_OK;
}

enum ht_err ht_u64_parse(const char *s, size_t len, uint64_t *out)
{
	ht_u128 v;
	enum ht_err err = ht_u128_parse(s, len, &v);
	if (err)
		return err;
	if (v > UINT64_MAX)
		return HT_ERR_LIMIT;
	*out = (uint64_t)v;
	return HT_OK;
}

static const char digit_pairs[] =
	"00010203040506070809101112131415161718192021222324"
	"25262728293031323334353637383940414243444546474849"
	"50515253545556575859606162636465666768697071727374"
	"75767778798081828384858687888990919293949596979899";

/* Decimal v in at most 20 bytes; two digits per division. */
size_t ht_u64_dec(char *dst, uint64_t v)
{
	char tmp[20];
	char *p = tmp + sizeof tmp;
	while (v >= 100) {
		unsigned k = (unsigned)(v % 100) * 2;
		v /= 100;
		p -= 2;
		p[0] = digit_pairs[k];
		p[1] = digit_pairs[k + 1];
	}
	if (v >= 10) {
		p -= 2;
		p[0] = digit_pairs[v * 2];
		p[1] = digit_pairs[v * 2 + 1];
	} else {
		*--p = (char)('0' + v);
	}
	size_t n = (size_t)(tmp + sizeof tmp - p);
	memcpy(dst, p, n);
	return n;
}

/* Exactly 19 digits, zero-padded (v < 10^19). */
static size_t fmt_u64_pad19(char *dst, uint64_t v)
{
	for (int i = 17; i >= 1; i -= 2) {
		unsigned k = (unsigned)(v % 100) * 2;
		v /= 100;
		dst[i] = digit_pairs[k];
		dst[i + 1] = digit_pairs[k + 1];
	}
	HT_ASSERT(v < 10);
	dst[0] = (char)('0' + v);
	return 19;
}

/*
 * Decimal u128 in at most 39 bytes. One 128-bit division by 10^19 splits
 * it into 64-bit parts (dividing 128-bit once per digit costs ~1 us for a
 * 39-digit id: a millisecond over a batch of long ids); the high part is
 * below 4 * 10^19, so at most three subtractions split it again.
 */
size_t ht_u128_dec(char *dst, ht_u128 v)
{
	const uint64_t e19 = 10000000000000000000ull;
	if (v <= UINT64_MAX)
		return ht_u64_dec(dst, (uint64_t)v);
	ht_u128 q = v / e19;
	uint64_t lo = (uint64_t)(v - q * e19);
	unsigned top = 0;
	while (q >= e19) {
		q -= e19;
		top++;
	}
	size_t n = 0;
	if (top) {
		dst[n++] = (char)('0' + top);
		n += fmt_u64_pad19(dst + n, (uint64_t)q);
	} else {
		n += ht_u64_dec(dst + n, (uint64_t)q);
	}
	return n + fmt_u64_pad19(dst + n, lo);
}

char *ht_u128_format(ht_u128 v, char buf[HT_U128_DEC_SIZE])
{
	size_t n = ht_u128_dec(buf, v);
	HT_ASSERT(n < HT_U128_DEC_SIZE);
	buf[n] = '\0';
	return buf;
}

void ht_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum ht_err ht_hex_decode(const char *in, size_t in_len, uint8_t *out,
			  size_t out_size, size_t *out_len)
{
	if (in_len % 2)
		return HT_ERR_INVALID;
	if (in_len / 2 > out_size)
		return HT_ERR_LIMIT;
	for (size_t i = 0; i < in_len / 2; i++) {
		int hi = hex_value(in[2 * i]), lo = hex_value(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return HT_ERR_INVALID;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*out_len = in_len / 2;
	return HT_OK;
}

uint64_t ht_now_monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t ht_now_wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

size_t ht_utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	uint32_t cp, min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2, cp = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3, cp = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

enum ht_err ht_fail(char *err, size_t err_size, enum ht_err code,
		    const char *fmt, ...)
{
	if (err && err_size) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, err_size, fmt, ap);
		va_end(ap);
	}
	return code;
}

int64_t ht_now_wall_ms(void)
{
	return (int64_t)(ht_now_wall_ns() / 1000000u);
}

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

char *ht_u128_format(ht_u128 v, char buf[HT_U128_DEC_SIZE])
{
	char tmp[HT_U128_DEC_SIZE];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + (unsigned)(v % 10));
		v /= 10;
	} while (v && n < HT_U128_DEC_SIZE - 1);
	for (size_t i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
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

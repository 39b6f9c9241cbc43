/*
 * cpm.c — EMVCo consumer-presented mode: the payer's app shows base64 of
 * BER-TLV data (payload format indicator 85 "CPV01", application
 * templates 61, common data 62) and the merchant's acquirer scans it.
 * Decoded and checked here, made here for the payment flow (qr.h,
 * docs/qr.md).
 *
 * Owner: switch. The decoded bytes live in the out structure and every
 * object is an offset into them; no allocation while parsing. Depth,
 * object count and sizes are bounded by the limits in qr.h. This file
 * never detokenises or routes: a token is only read and checked for form.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <string.h>

#include "qr_internal.h"

static enum ht_qr_error fail(struct ht_qr_cpm *c, enum ht_qr_error e,
			     size_t offset, uint32_t tag)
{
	c->error = e;
	c->error_offset = offset;
	c->error_tag = tag;
	return e;
}

/* ---- BER-TLV structure -------------------------------------------------- */

/* The tag at data[*at..end) into *tag; *at moves past it. A tag is 1..3
 * bytes: more bytes follow when the low 5 bits of the first are all set,
 * and while bit 8 of the last is. 00 and FF (padding) are refused. */
static enum ht_qr_error read_tag(const uint8_t *d, size_t *at, size_t end,
				 uint32_t *tag, bool *constructed)
{
	if (d[*at] == 0x00 || d[*at] == 0xff)
		return HT_QR_BAD_TAG;
	uint32_t t = d[*at];
	*constructed = (d[*at] & 0x20) != 0;
	bool more = (d[(*at)++] & 0x1f) == 0x1f;
	for (unsigned n = 1; more; n++) {
		if (n >= HT_QR_CPM_TAG_BYTES_MAX)
			return HT_QR_BAD_TAG;
		if (*at >= end)
			return HT_QR_TRUNCATED;
		more = (d[*at] & 0x80) != 0;
		t = t << 8 | d[(*at)++];
	}
	*tag = t;
	return HT_QR_OK;
}

/* The length at data[*at..end): short form, or 0x81 / 0x82 followed by
 * one or two bytes. The indefinite form (0x80) and longer ones refused. */
static enum ht_qr_error read_length(const uint8_t *d, size_t *at, size_t end,
				    size_t *len)
{
	if (*at >= end)
		return HT_QR_TRUNCATED;
	uint8_t b = d[(*at)++];
	if (b < 0x80) {
		*len = b;
		return HT_QR_OK;
	}
	if (b != 0x81 && b != 0x82)
		return HT_QR_BAD_LENGTH;
	size_t n = b & 0x7f, v = 0;
	if (end - *at < n)
		return HT_QR_TRUNCATED;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | d[(*at)++];
	*len = v;
	return HT_QR_OK;
}

/* Whether tag stands already among the siblings starting at index first. */
static bool sibling_has(const struct ht_qr_cpm *c, size_t first, uint32_t tag)
{
	for (size_t i = first; i < c->count; i = c->tlv[i].end)
		if (c->tlv[i].tag == tag)
			return true;
	return false;
}

/* Where an object may stand: no tag twice among its siblings but 61 at
 * the top level; the first top-level object is 85, and the top level
 * holds only 85, 61 and 62. */
static enum ht_qr_error placement(const struct ht_qr_cpm *c, size_t first,
				  unsigned depth, uint32_t tag)
{
	if (!(depth == 0 && tag == 0x61) && sibling_has(c, first, tag))
		return HT_QR_DUPLICATE_TAG;
	if (depth == 0 && (c->count == 0) != (tag == 0x85))
		return HT_QR_BAD_TAG;
	if (depth == 0 && tag != 0x85 && tag != 0x61 && tag != 0x62)
		return HT_QR_BAD_TAG;
	return HT_QR_OK;
}

/* The objects in data[at..end) at this depth, templates recursively. A
 * value past end is truncation at the top level and a bad length inside
 * a template (its own length disagrees with its content). */
static enum ht_qr_error parse_level(struct ht_qr_cpm *c, size_t at,
				    size_t end, unsigned depth)
{
	size_t first = c->count;
	enum ht_qr_error cut = depth ? HT_QR_BAD_LENGTH : HT_QR_TRUNCATED;
	while (at < end) {
		size_t start = at, len;
		uint32_t tag = 0;
		bool constructed;
		enum ht_qr_error e = read_tag(c->data, &at, end, &tag, &constructed);
		if (!e)
			e = read_length(c->data, &at, end, &len);
		if (!e && len > end - at)
			e = HT_QR_TRUNCATED;
		if (e)
			return fail(c, e == HT_QR_TRUNCATED ? cut : e, start, tag);
		if ((e = placement(c, first, depth, tag)))
			return fail(c, e, start, tag);
		if (constructed && depth + 1 >= HT_QR_CPM_DEPTH_MAX)
			return fail(c, HT_QR_BAD_TAG, start, tag);
		if (c->count >= HT_QR_CPM_OBJECTS_MAX) /* 2 bytes each: never */
			return fail(c, HT_QR_BAD_LENGTH, start, tag);
		size_t index = c->count++;
		c->tlv[index] = (struct ht_qr_tlv){
			.tag = tag, .offset = (uint16_t)at, .size = (uint16_t)len,
			.depth = (uint8_t)depth, .constructed = constructed};
		if (constructed && (e = parse_level(c, at, at + len, depth + 1)))
			return e;
		c->tlv[index].end = (uint16_t)c->count;
		at += len;
	}
	return HT_QR_OK;
}

/* ---- values ------------------------------------------------------------- */

static bool printable(const uint8_t *v, size_t n, size_t min, size_t max)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] < 0x20 || v[i] > 0x7e)
			return false;
	return n >= min && n <= max;
}

/* Nibble i of v (high first). */
static unsigned nibble(const uint8_t *v, size_t i)
{
	return i % 2 ? v[i / 2] & 0x0f : v[i / 2] >> 4;
}

/* Digits (BCD) with F only as padding at the very end; with sep, exactly
 * one D (track 2's separator) with at least 7 digits after it (expiry
 * YYMM and service code). */
static bool bcd_ok(const uint8_t *v, size_t n, bool sep)
{
	size_t nibbles = 2 * n, digits = 0, after = 0;
	bool seen_d = false;
	if (nibbles && nibble(v, nibbles - 1) == 0xf)
		nibbles--;
	for (size_t i = 0; i < nibbles; i++) {
		unsigned x = nibble(v, i);
		if (x == 0xd && sep && !seen_d && digits > 0) {
			seen_d = true;
			continue;
		}
		if (x > 9)
			return false;
		digits++;
		after += seen_d;
	}
	return digits > 0 && (!sep || (seen_d && after >= 7));
}

static bool letters(const uint8_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z')))
			return false;
	return n >= 2 && n <= 8 && n % 2 == 0;
}

bool ht_qr_cpm_value_ok(uint32_t tag, const uint8_t *v, size_t n)
{
	switch (tag) {
	case 0x85: return n == 5 && !memcmp(v, "CPV01", 5);
	case 0x4f: return n >= 5 && n <= 16;
	case 0x5a: return n <= 10 && bcd_ok(v, n, false);
	case 0x57: return n <= 19 && bcd_ok(v, n, true);
	case 0x50: return printable(v, n, 1, 16);
	case 0x5f20: return printable(v, n, 2, 26);
	case 0x5f2d: return letters(v, n);
	default: return true;
	}
}

/* Formats of the known primitives; then what a complete code carries. */
static enum ht_qr_error check_values(struct ht_qr_cpm *c)
{
	bool app = false, token = false;
	unsigned missing = 0; /* set only when every value passed */
	for (size_t i = 0; i < c->count; i++) {
		const struct ht_qr_tlv *t = &c->tlv[i];
		if (!t->constructed &&
		    !ht_qr_cpm_value_ok(t->tag, c->data + t->offset, t->size))
			return fail(c, HT_QR_BAD_VALUE, t->offset, t->tag);
		token |= t->tag == 0x5a || t->tag == 0x57;
		if (t->tag != 0x61 || t->depth != 0)
			continue;
		app = true;
		bool aid = false;
		for (size_t j = i + 1; j < t->end; j = c->tlv[j].end)
			aid |= c->tlv[j].tag == 0x4f;
		if (!aid)
			missing |= HT_QR_CPM_MISSING_AID;
	}
	if (!app)
		missing |= HT_QR_CPM_MISSING_APP;
	if (!token)
		missing |= HT_QR_CPM_MISSING_TOKEN;
	c->missing = missing;
	return HT_QR_OK;
}

/* Clear the verdict and check the input's size: 1..max. */
static enum ht_qr_error start(struct ht_qr_cpm *c, const void *in,
			      size_t len, size_t max)
{
	HT_ASSERT(c != NULL);
	HT_ASSERT(in != NULL || len == 0);
	c->valid = c->complete = false;
	c->missing = 0;
	c->count = 0;
	fail(c, HT_QR_OK, 0, 0);
	if (len > max)
		return fail(c, HT_QR_BAD_LENGTH, 0, 0);
	if (len == 0)
		return fail(c, HT_QR_TRUNCATED, 0, 0);
	return HT_QR_OK;
}

enum ht_qr_error ht_qr_cpm_parse_bytes(const uint8_t *data, size_t size,
				       struct ht_qr_cpm *out)
{
	enum ht_qr_error e = start(out, data, size, HT_QR_CPM_BYTES_MAX);
	if (e)
		return e;
	if (data != out->data)
		memmove(out->data, data, size);
	out->size = size;
	if ((e = parse_level(out, 0, size, 0)) || (e = check_values(out)))
		return e;
	out->valid = true;
	out->complete = out->missing == 0;
	return HT_QR_OK;
}

/* ---- base64 ------------------------------------------------------------- */

static bool b64_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	       (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
}

/* Padded base64 of text[0..len) checked character by character (OpenSSL's
 * decoder skips whitespace; a scanned code has none), then decoded by
 * OpenSSL. *bad is where it goes wrong. */
static bool b64_decode(const char *text, size_t len, uint8_t *out,
		       size_t *out_len, size_t *bad)
{
	size_t pad = len >= 1 && text[len - 1] == '=';
	pad += pad && len >= 2 && text[len - 2] == '=';
	for (size_t i = 0; i < len - pad; i++)
		if (!b64_char(text[i])) {
			*bad = i;
			return false;
		}
	*bad = len;
	if (len % 4 || len == 0)
		return false;
	int n = EVP_DecodeBlock(out, (const unsigned char *)text, (int)len);
	if (n < 0 || (size_t)n < pad)
		return false;
	*out_len = (size_t)n - pad;
	return true;
}

enum ht_qr_error ht_qr_cpm_parse(const char *text, size_t len,
				 struct ht_qr_cpm *out)
{
	enum ht_qr_error e = start(out, text, len, HT_QR_CPM_TEXT_MAX);
	if (e)
		return e;
	/* EVP_DecodeBlock writes 3 bytes per 4 characters, padding too */
	_Static_assert(HT_QR_CPM_TEXT_MAX / 4 * 3 <= HT_QR_CPM_BYTES_MAX,
		       "decoded text fits data[]");
	size_t n, bad;
	if (!b64_decode(text, len, out->data, &n, &bad))
		return fail(out, HT_QR_BAD_VALUE, bad, 0);
	return ht_qr_cpm_parse_bytes(out->data, n, out);
}

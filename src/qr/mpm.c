/*
 * mpm.c — the EMVCo merchant-presented mode parser: CRC-16/CCITT-FALSE,
 * the ID-length-value structure with lengths in characters, templates
 * one level down, the value formats, and what a complete code must carry
 * (qr.h; docs/qr.md).
 *
 * Owner: switch. Fields are offsets into the caller's payload; nothing is
 * allocated or copied. Every loop is bounded by the payload, which is
 * bounded by HT_QR_MPM_BYTES_MAX before anything is read. This file must
 * never judge what a code means for a payment; it says what is in it.
 */
#include <pthread.h>
#include <string.h>

#include "qr_internal.h"

/* ---- CRC-16/CCITT-FALSE ------------------------------------------------- */

/* crc_table[i]: the CRC register after shifting byte i through poly
 * 0x1021 from zero (generated, MSB first). */
static const uint16_t crc_table[256] = {
	0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
	0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef,
	0x1231, 0x0210, 0x3273, 0x2252, 0x52b5, 0x4294, 0x72f7, 0x62d6,
	0x9339, 0x8318, 0xb37b, 0xa35a, 0xd3bd, 0xc39c, 0xf3ff, 0xe3de,
	0x2462, 0x3443, 0x0420, 0x1401, 0x64e6, 0x74c7, 0x44a4, 0x5485,
	0xa56a, 0xb54b, 0x8528, 0x9509, 0xe5ee, 0xf5cf, 0xc5ac, 0xd58d,
	0x3653, 0x2672, 0x1611, 0x0630, 0x76d7, 0x66f6, 0x5695, 0x46b4,
	0xb75b, 0xa77a, 0x9719, 0x8738, 0xf7df, 0xe7fe, 0xd79d, 0xc7bc,
	0x48c4, 0x58e5, 0x6886, 0x78a7, 0x0840, 0x1861, 0x2802, 0x3823,
	0xc9cc, 0xd9ed, 0xe98e, 0xf9af, 0x8948, 0x9969, 0xa90a, 0xb92b,
	0x5af5, 0x4ad4, 0x7ab7, 0x6a96, 0x1a71, 0x0a50, 0x3a33, 0x2a12,
	0xdbfd, 0xcbdc, 0xfbbf, 0xeb9e, 0x9b79, 0x8b58, 0xbb3b, 0xab1a,
	0x6ca6, 0x7c87, 0x4ce4, 0x5cc5, 0x2c22, 0x3c03, 0x0c60, 0x1c41,
	0xedae, 0xfd8f, 0xcdec, 0xddcd, 0xad2a, 0xbd0b, 0x8d68, 0x9d49,
	0x7e97, 0x6eb6, 0x5ed5, 0x4ef4, 0x3e13, 0x2e32, 0x1e51, 0x0e70,
	0xff9f, 0xefbe, 0xdfdd, 0xcffc, 0xbf1b, 0xaf3a, 0x9f59, 0x8f78,
	0x9188, 0x81a9, 0xb1ca, 0xa1eb, 0xd10c, 0xc12d, 0xf14e, 0xe16f,
	0x1080, 0x00a1, 0x30c2, 0x20e3, 0x5004, 0x4025, 0x7046, 0x6067,
	0x83b9, 0x9398, 0xa3fb, 0xb3da, 0xc33d, 0xd31c, 0xe37f, 0xf35e,
	0x02b1, 0x1290, 0x22f3, 0x32d2, 0x4235, 0x5214, 0x6277, 0x7256,
	0xb5ea, 0xa5cb, 0x95a8, 0x8589, 0xf56e, 0xe54f, 0xd52c, 0xc50d,
	0x34e2, 0x24c3, 0x14a0, 0x0481, 0x7466, 0x6447, 0x5424, 0x4405,
	0xa7db, 0xb7fa, 0x8799, 0x97b8, 0xe75f, 0xf77e, 0xc71d, 0xd73c,
	0x26d3, 0x36f2, 0x0691, 0x16b0, 0x6657, 0x7676, 0x4615, 0x5634,
	0xd94c, 0xc96d, 0xf90e, 0xe92f, 0x99c8, 0x89e9, 0xb98a, 0xa9ab,
	0x5844, 0x4865, 0x7806, 0x6827, 0x18c0, 0x08e1, 0x3882, 0x28a3,
	0xcb7d, 0xdb5c, 0xeb3f, 0xfb1e, 0x8bf9, 0x9bd8, 0xabbb, 0xbb9a,
	0x4a75, 0x5a54, 0x6a37, 0x7a16, 0x0af1, 0x1ad0, 0x2ab3, 0x3a92,
	0xfd2e, 0xed0f, 0xdd6c, 0xcd4d, 0xbdaa, 0xad8b, 0x9de8, 0x8dc9,
	0x7c26, 0x6c07, 0x5c64, 0x4c45, 0x3ca2, 0x2c83, 0x1ce0, 0x0cc1,
	0xef1f, 0xff3e, 0xcf5d, 0xdf7c, 0xaf9b, 0xbfba, 0x8fd9, 0x9ff8,
	0x6e17, 0x7e36, 0x4e55, 0x5e74, 0x2e93, 0x3eb2, 0x0ed1, 0x1ef0,
};

/* Slice-by-8: crc_slice[k][i] is the register after byte i and then k
 * zero bytes, so eight bytes take eight independent lookups instead of a
 * chain of eight dependent ones (the CRC was most of a parse's time).
 * Filled once from crc_table. */
static uint16_t crc_slice[8][256];
static pthread_once_t crc_slice_once = PTHREAD_ONCE_INIT;

static void crc_slice_init(void)
{
	for (size_t i = 0; i < 256; i++) {
		crc_slice[0][i] = crc_table[i];
		for (size_t k = 1; k < 8; k++) {
			uint16_t prev = crc_slice[k - 1][i];
			crc_slice[k][i] = (uint16_t)(prev << 8) ^ crc_table[prev >> 8];
		}
	}
}

uint16_t ht_qr_crc16(const void *data, size_t n)
{
	const uint8_t *p = data;
	uint16_t crc = 0xffff;
	pthread_once(&crc_slice_once, crc_slice_init);
	const uint16_t (*t)[256] = crc_slice;
	for (; n >= 8; n -= 8, p += 8) {
		unsigned x = crc ^ ((unsigned)p[0] << 8 | p[1]);
		crc = t[7][x >> 8] ^ t[6][x & 0xff] ^ t[5][p[2]] ^ t[4][p[3]] ^
		      t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
	}
	for (; n > 0; n--, p++)
		crc = (uint16_t)(crc << 8) ^ crc_table[(crc >> 8) ^ *p];
	return crc;
}

const char *ht_qr_error_name(enum ht_qr_error e)
{
	static const char *const names[HT_QR__COUNT] = {
		[HT_QR_OK] = "ok",
		[HT_QR_CRC_MISMATCH] = "crc_mismatch",
		[HT_QR_MISSING_CRC] = "missing_crc",
		[HT_QR_TRUNCATED] = "truncated",
		[HT_QR_BAD_LENGTH] = "bad_length",
		[HT_QR_BAD_TAG] = "bad_tag",
		[HT_QR_DUPLICATE_TAG] = "duplicate_tag",
		[HT_QR_BAD_VALUE] = "bad_value",
	};
	return (unsigned)e < HT_QR__COUNT ? names[e] : "unknown";
}

/* ---- values ------------------------------------------------------------- */

static bool all_digits(const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] < '0' || v[i] > '9')
			return false;
	return n > 0;
}

static bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static bool is_letter(char c) { return is_upper(c) || (c >= 'a' && c <= 'z'); }

/* An amount: digits, optionally one '.' with digits on both sides, at
 * most max characters ("23.72", "10", "999.123"). */
static bool amount_ok(const char *v, size_t n, size_t max)
{
	if (n == 0 || n > max)
		return false;
	const char *dot = memchr(v, '.', n);
	if (!dot)
		return all_digits(v, n);
	size_t left = (size_t)(dot - v);
	return all_digits(v, left) && all_digits(dot + 1, n - left - 1);
}

bool ht_qr_mpm_value_ok(int id, int sub, const char *v, size_t n)
{
	if (sub >= 0)
		return id != 64 || sub != 0 ||
		       (n == 2 && is_letter(v[0]) && is_letter(v[1]));
	switch (id) {
	case 0: /* payload format indicator */
		return n == 2 && v[0] == '0' && v[1] == '1';
	case 1: /* point of initiation: 11 static, 12 dynamic */
		return n == 2 && v[0] == '1' && (v[1] == '1' || v[1] == '2');
	case 52: /* merchant category code, ISO 18245 */
		return n == 4 && all_digits(v, n);
	case 53: /* transaction currency, ISO 4217 numeric */
		return n == 3 && all_digits(v, n);
	case 54: /* transaction amount */
	case 56: /* convenience fee, fixed */
		return amount_ok(v, n, 13);
	case 55: /* tip or convenience indicator: 01, 02, 03 */
		return n == 2 && v[0] == '0' && v[1] >= '1' && v[1] <= '3';
	case 57: /* convenience fee, percentage */
		return amount_ok(v, n, 5);
	case 58: /* country, ISO 3166-1 alpha-2 */
		return n == 2 && is_upper(v[0]) && is_upper(v[1]);
	default:
		return true;
	}
}

size_t ht_qr_utf8_chars(const char *s, size_t n)
{
	size_t chars = 0;
	for (size_t i = 0; i < n; i++)
		chars += ((unsigned char)s[i] & 0xc0) != 0x80;
	return chars;
}

/* ---- structure ---------------------------------------------------------- */

bool ht_qr_mpm_is_template(int id)
{
	return (id >= 26 && id <= 51) || id == 62 || id == 64 ||
	       (id >= 80 && id <= 99);
}

static enum ht_qr_error fail(struct ht_qr_mpm *m, enum ht_qr_error e,
			     size_t offset, int id, int sub)
{
	m->error = e;
	m->error_offset = offset;
	m->error_id = id;
	m->error_sub_id = sub;
	return e;
}

/* The ID and length digits at p[0..4) (the caller checked 4 bytes are
 * there). HT_QR_BAD_TAG or HT_QR_BAD_LENGTH when they are not digits or
 * the length is 0. */
static enum ht_qr_error read_header(const uint8_t *p, int *id, unsigned *len)
{
	unsigned d0 = p[0] - (unsigned)'0', d1 = p[1] - (unsigned)'0';
	unsigned d2 = p[2] - (unsigned)'0', d3 = p[3] - (unsigned)'0';
	if (d0 > 9 || d1 > 9)
		return HT_QR_BAD_TAG;
	*id = (int)(d0 * 10 + d1);
	if (d2 > 9 || d3 > 9 || d2 * 10 + d3 == 0)
		return HT_QR_BAD_LENGTH;
	*len = d2 * 10 + d3;
	return HT_QR_OK;
}

/* Whether p[0..n) is all ASCII: one pass of word-wide ORs, so that most
 * payloads (ASCII throughout) never decode a character. */
static bool all_ascii(const uint8_t *p, size_t n)
{
	uint64_t high = 0, w;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		high |= w;
	}
	for (; i < n; i++)
		high |= p[i];
	return (high & 0x8080808080808080ull) == 0;
}

/* Bytes of the first chars characters at p[0..avail) into *bytes.
 * HT_QR_TRUNCATED when fewer are there, HT_QR_BAD_VALUE when the bytes
 * are not UTF-8. In an ASCII payload a character is a byte. */
static enum ht_qr_error walk_chars(const uint8_t *p, size_t avail,
				   unsigned chars, bool ascii, size_t *bytes)
{
	if (ascii) {
		*bytes = chars;
		return avail >= chars ? HT_QR_OK : HT_QR_TRUNCATED;
	}
	size_t at = 0;
	for (unsigned i = 0; i < chars; i++) {
		if (at >= avail)
			return HT_QR_TRUNCATED;
		size_t n = p[at] < 0x80 ? 1 : ht_utf8_seq_len(p + at, avail - at);
		if (n == 0)
			return HT_QR_BAD_VALUE;
		at += n;
	}
	*bytes = at;
	return HT_QR_OK;
}

/* Append a field; false when the array is full (cannot happen within
 * HT_QR_MPM_CHARS_MAX, see qr.h, but the parser does not rely on it). */
static bool add_field(struct ht_qr_mpm *m, int id, unsigned len, size_t at,
		      size_t size)
{
	if (m->field_count >= HT_QR_MPM_FIELDS_MAX)
		return false;
	m->fields[m->field_count++] = (struct ht_qr_field){
		.offset = (uint16_t)at, .size = (uint16_t)size,
		.id = (uint8_t)id, .length = (uint8_t)len};
	return true;
}

/* The sub-fields of template t, which must fill its value exactly: a
 * sub-field running past it is a bad length (the template's or its own),
 * as is a remainder too short for a header. Duplicate sub-IDs refused. */
static enum ht_qr_error parse_template(struct ht_qr_mpm *m, uint8_t t)
{
	const uint8_t *p = (const uint8_t *)m->payload;
	struct ht_qr_field *f = &m->fields[t];
	size_t at = f->offset, end = at + f->size;
	uint64_t seen[2] = {0, 0}; /* sub-IDs read, one bit each */
	f->first_child = m->field_count;
	while (at < end) {
		int sub;
		unsigned len;
		size_t bytes;
		if (end - at < 4)
			return fail(m, HT_QR_BAD_LENGTH, at, f->id, -1);
		enum ht_qr_error e = read_header(p + at, &sub, &len);
		if (e)
			return fail(m, e, at, f->id, e == HT_QR_BAD_TAG ? -1 : sub);
		uint64_t bit = 1ull << (sub % 64);
		if (seen[sub / 64] & bit)
			return fail(m, HT_QR_DUPLICATE_TAG, at, f->id, sub);
		seen[sub / 64] |= bit;
		if (walk_chars(p + at + 4, end - at - 4, len, m->ascii, &bytes))
			return fail(m, HT_QR_BAD_LENGTH, at, f->id, sub);
		if (!add_field(m, sub, len, at + 4, bytes))
			return fail(m, HT_QR_BAD_LENGTH, at, f->id, sub);
		f->child_count++;
		at += 4 + bytes;
	}
	return HT_QR_OK;
}

/* One top-level object at p[at..): its header, value, place and, for a
 * template, sub-fields. *next is where the following one starts. */
static enum ht_qr_error parse_object(struct ht_qr_mpm *m, size_t at,
				     unsigned *chars, size_t *next)
{
	const uint8_t *p = (const uint8_t *)m->payload;
	size_t size = m->payload_size, bytes;
	int id;
	unsigned len;
	if (size - at < 4)
		return fail(m, HT_QR_TRUNCATED, at, -1, -1);
	enum ht_qr_error e = read_header(p + at, &id, &len);
	if (e)
		return fail(m, e, at, e == HT_QR_BAD_TAG ? -1 : id, -1);
	if (m->by_id[id])
		return fail(m, HT_QR_DUPLICATE_TAG, at, id, -1);
	if (id == 0 && m->top_count > 0) /* 00 comes first */
		return fail(m, HT_QR_BAD_TAG, at, id, -1);
	e = walk_chars(p + at + 4, size - at - 4, len, m->ascii, &bytes);
	if (e)
		return fail(m, e, at, id, -1);
	*chars += 4 + len;
	if (*chars > HT_QR_MPM_CHARS_MAX || (id == 63 && len != 4))
		return fail(m, HT_QR_BAD_LENGTH, at, id, -1);
	uint8_t index = m->field_count;
	if (!add_field(m, id, len, at + 4, bytes))
		return fail(m, HT_QR_BAD_LENGTH, at, id, -1);
	m->top[m->top_count++] = index;
	m->by_id[id] = (uint8_t)(index + 1);
	if (ht_qr_mpm_is_template(id) && (e = parse_template(m, index)))
		return e;
	*next = at + 4 + bytes;
	return HT_QR_OK;
}

/* The CRC object's 4 hex digits against the CRC of everything before
 * them. Either case is accepted; EMVCo writes upper case. */
static enum ht_qr_error check_crc(struct ht_qr_mpm *m)
{
	const struct ht_qr_field *f = ht_qr_mpm_get(m, 63);
	if (!f)
		return fail(m, HT_QR_MISSING_CRC, m->payload_size, -1, -1);
	uint8_t want[2];
	size_t n;
	if (ht_hex_decode(m->payload + f->offset, f->size, want, sizeof want,
			  &n) || n != 2 ||
	    ht_qr_crc16(m->payload, f->offset) != (want[0] << 8 | want[1]))
		return fail(m, HT_QR_CRC_MISMATCH, f->offset, 63, -1);
	return HT_QR_OK;
}

/* Every value's format, top level and sub-fields. */
static enum ht_qr_error check_values(struct ht_qr_mpm *m)
{
	for (size_t i = 0; i < m->top_count; i++) {
		const struct ht_qr_field *f = &m->fields[m->top[i]];
		if (!ht_qr_mpm_value_ok(f->id, -1, m->payload + f->offset,
					f->size))
			return fail(m, HT_QR_BAD_VALUE, f->offset, f->id, -1);
		for (size_t c = 0; c < f->child_count; c++) {
			const struct ht_qr_field *s = &m->fields[f->first_child + c];
			if (!ht_qr_mpm_value_ok(f->id, s->id, m->payload + s->offset,
						s->size))
				return fail(m, HT_QR_BAD_VALUE, s->offset, f->id,
					    s->id);
		}
	}
	return HT_QR_OK;
}

/* EMVCo's mandatory objects; the absent ones into missing[]. */
static void check_complete(struct ht_qr_mpm *m)
{
	static const uint8_t mandatory[] = {0, 52, 53, 58, 59, 60, 63};
	for (size_t i = 0; i < sizeof mandatory; i++)
		if (!m->by_id[mandatory[i]])
			m->missing[m->missing_count++] = mandatory[i];
	bool account = false;
	for (size_t i = 0; i < m->top_count && !account; i++)
		account = m->fields[m->top[i]].id >= 2 &&
			  m->fields[m->top[i]].id <= 51;
	if (!account)
		m->missing[m->missing_count++] = HT_QR_MISSING_ACCOUNT;
	m->complete = m->missing_count == 0;
}

enum ht_qr_error ht_qr_mpm_parse(const char *payload, size_t size,
				 struct ht_qr_mpm *out)
{
	HT_ASSERT(out != NULL);
	HT_ASSERT(payload != NULL || size == 0);
	out->payload = payload;
	out->payload_size = size;
	out->ascii = false;
	out->valid = out->complete = false;
	out->missing_count = out->top_count = out->field_count = 0;
	memset(out->by_id, 0, sizeof out->by_id);
	fail(out, HT_QR_OK, 0, -1, -1);
	if (size > HT_QR_MPM_BYTES_MAX)
		return fail(out, HT_QR_BAD_LENGTH, 0, -1, -1);
	if (size == 0)
		return fail(out, HT_QR_TRUNCATED, 0, -1, -1);
	out->ascii = all_ascii((const uint8_t *)payload, size);
	unsigned chars = 0;
	for (size_t at = 0; at < size;) {
		if (out->by_id[63]) /* the CRC comes last */
			return fail(out, HT_QR_BAD_TAG, at, -1, -1);
		enum ht_qr_error e = parse_object(out, at, &chars, &at);
		if (e)
			return e;
	}
	enum ht_qr_error e = check_crc(out);
	if (e || (e = check_values(out)))
		return e;
	out->valid = true;
	check_complete(out);
	return HT_QR_OK;
}

const struct ht_qr_field *ht_qr_mpm_get(const struct ht_qr_mpm *m, int id)
{
	if (id < 0 || id > 99 || !m->by_id[id])
		return NULL;
	return &m->fields[m->by_id[id] - 1];
}

const struct ht_qr_field *ht_qr_mpm_sub(const struct ht_qr_mpm *m,
					const struct ht_qr_field *t,
					int sub_id)
{
	for (size_t i = 0; t && i < t->child_count; i++)
		if (m->fields[t->first_child + i].id == sub_id)
			return &m->fields[t->first_child + i];
	return NULL;
}

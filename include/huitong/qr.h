/*
 * qr.h — EMVCo payment QR codes: merchant-presented (MPM) payloads parsed
 * and made, consumer-presented (CPM) codes decoded and made, and both
 * drawn as PNG or SVG (issue 5, item 4; docs/qr.md; DESIGN.md "QR").
 *
 * Owner: switch. The parsers take outside input (whatever a phone
 * scanned) and are bounded: no allocation, fixed arrays sized by the
 * limits below, every loop bounded by the input, nesting at most
 * HT_QR_CPM_DEPTH_MAX (CPM) or two levels (MPM). A parse never fails as a
 * call: its verdict (valid or not, with one error code naming the first
 * fault) is a result in the out structure. The parsers never route or
 * book anything; what a code means for a payment is the switch's
 * business above them.
 *
 * The image functions (ht_qr_image_*) live in libhuitong-qrimage
 * (libqrencode, libpng), kept out of the core so the parsers link no
 * image library; everything else is in the core.
 */
#ifndef HUITONG_QR_H
#define HUITONG_QR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "huitong/common.h"

struct json_t; /* jansson's */

/* ---- limits ------------------------------------------------------------ */

/* An MPM payload: EMVCo MPM 4.1 caps the code at 512 characters. Bytes
 * are counted separately because a character takes up to 4 in UTF-8. */
#define HT_QR_MPM_CHARS_MAX 512
#define HT_QR_MPM_BYTES_MAX (4 * HT_QR_MPM_CHARS_MAX)
/* Objects kept, top level and sub-fields together. Each takes at least
 * 5 characters (ID, length, one character of value) and a sub-field's
 * characters are its template's too, so 512 characters hold at most
 * 102 top-level objects, and a template its own 4 plus its sub-fields'. */
#define HT_QR_MPM_FIELDS_MAX 128
/* A value's declared length is two decimal digits. */
#define HT_QR_MPM_VALUE_CHARS_MAX 99
/* CPM: the base64 text, and the BER-TLV bytes it carries. EMVCo CPM codes
 * are a few hundred bytes; 1024 characters is ample and keeps the decoded
 * buffer in the out structure. */
#define HT_QR_CPM_TEXT_MAX 1024
#define HT_QR_CPM_BYTES_MAX (HT_QR_CPM_TEXT_MAX / 4 * 3)
/* Each BER-TLV object takes at least two bytes (tag, length). */
#define HT_QR_CPM_OBJECTS_MAX (HT_QR_CPM_BYTES_MAX / 2)
/* Template nesting: 61 > 63 and 62 > 64 are two levels; one to spare. */
#define HT_QR_CPM_DEPTH_MAX 3
/* Tag bytes (EMV uses one or two) and length bytes (0x81 xx, 0x82 xx xx). */
#define HT_QR_CPM_TAG_BYTES_MAX 3

_Static_assert(HT_QR_MPM_FIELDS_MAX * 4 >= HT_QR_MPM_CHARS_MAX,
	       "every 4-character object fits in the field array");
_Static_assert(HT_QR_MPM_BYTES_MAX < 65536, "offsets are 16-bit");
_Static_assert(HT_QR_CPM_OBJECTS_MAX < 65535, "indexes are 16-bit");

/* ---- verdicts ---------------------------------------------------------- */

/* Why a code is not valid (DESIGN.md "QR"). The names are the contract. */
enum ht_qr_error {
	HT_QR_OK = 0,
	HT_QR_CRC_MISMATCH,  /* "crc_mismatch": CRC value is not the CRC */
	HT_QR_MISSING_CRC,   /* "missing_crc": no object 63 */
	HT_QR_TRUNCATED,     /* "truncated": input ends inside an object */
	HT_QR_BAD_LENGTH,    /* "bad_length": length not digits, 0, past its
				template, over a limit */
	HT_QR_BAD_TAG,       /* "bad_tag": ID not digits, bad BER tag, an
				object where it may not stand */
	HT_QR_DUPLICATE_TAG, /* "duplicate_tag": an ID twice in one template */
	HT_QR_BAD_VALUE,     /* "bad_value": a value's format (amount,
				currency, ...), bad UTF-8 or base64 */
	HT_QR__COUNT
};

/* Static snake_case name ("crc_mismatch"; "ok" for HT_QR_OK); never NULL. */
const char *ht_qr_error_name(enum ht_qr_error e);

/* CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final
 * xor) of n bytes: "123456789" gives 0x29B1. */
uint16_t ht_qr_crc16(const void *data, size_t n);

/* ---- merchant-presented mode ------------------------------------------ */

/* ID standing in `missing` for "none of the merchant account IDs 02-51". */
#define HT_QR_MISSING_ACCOUNT 0xff
/* Mandatory objects at most: 00, 52, 53, 58, 59, 60, 63, one of 02-51. */
#define HT_QR_MISSING_MAX 8

/* One data object. Its value is payload[offset .. offset + size) (bytes);
 * `length` is the declared length in characters. A template's sub-fields
 * are fields[first_child .. first_child + child_count). */
struct ht_qr_field {
	uint16_t offset;
	uint16_t size;
	uint8_t id;          /* 0..99 */
	uint8_t length;      /* 1..99 characters */
	uint8_t child_count; /* 0 for a primitive */
	uint8_t first_child;
};

/*
 * The parse of one MPM payload. Borrowed: `payload` points into the
 * caller's buffer, which must outlive every use of the fields.
 */
struct ht_qr_mpm {
	const char *payload;
	size_t payload_size;
	bool ascii;     /* every byte below 0x80: characters are bytes */
	bool valid;     /* structure, UTF-8, CRC and value formats all right */
	bool complete;  /* valid, and every mandatory object present */
	enum ht_qr_error error; /* HT_QR_OK exactly when valid */
	size_t error_offset;    /* byte where the fault was found */
	int error_id;           /* top-level ID it lies in, or -1 */
	int error_sub_id;       /* sub-ID inside that template, or -1 */
	uint8_t missing_count;  /* valid but incomplete: the absent IDs, */
	uint8_t missing[HT_QR_MISSING_MAX]; /* ascending, MISSING_ACCOUNT last */
	uint8_t top_count;      /* top-level objects in payload order: */
	uint8_t top[HT_QR_MPM_FIELDS_MAX];  /* indexes into fields[] */
	uint8_t field_count;
	struct ht_qr_field fields[HT_QR_MPM_FIELDS_MAX];
	uint8_t by_id[100];     /* top-level ID -> field index + 1, 0 absent */
};

/*
 * Parse payload[0..size) (UTF-8). Checks, in this order, stopping at the
 * first fault: the size limits; each object's 2-digit ID, 2-digit length
 * (1..99, counted in characters) and value (valid UTF-8, inside the
 * payload); no ID twice at one level; 00 first and 63 last; templates
 * (26-51, 62, 64, 80-99) made exactly of sub-fields; then that a CRC
 * object exists (4 characters), that it equals the CRC-16/CCITT-FALSE of
 * the UTF-8 bytes before its value ("...6304" included); then the value
 * formats (docs/qr.md). Only a valid payload is judged complete: 00, 52,
 * 53, 58, 59, 60, 63 and one of 02-51 present, the absent ones listed.
 * Returns out->error. Never allocates; out need not be initialised.
 */
enum ht_qr_error ht_qr_mpm_parse(const char *payload, size_t size,
				 struct ht_qr_mpm *out);

/* The top-level object with this ID, or NULL. */
const struct ht_qr_field *ht_qr_mpm_get(const struct ht_qr_mpm *m, int id);
/* The sub-field sub_id of template t, or NULL (also when t is primitive). */
const struct ht_qr_field *ht_qr_mpm_sub(const struct ht_qr_mpm *m,
					const struct ht_qr_field *t,
					int sub_id);
/* True for the IDs EMVCo defines as templates: 26-51, 62, 64, 80-99. */
bool ht_qr_mpm_is_template(int id);

/*
 * The parse as JSON (DESIGN.md "QR"; docs/qr.md): {"mode":"mpm","valid",
 * "complete","missing":["52",...],"error":null|"<name>", on error
 * "error_at" (character offset) and "error_tag" ("53" or "62.05"), and
 * when valid "payload_format_indicator", "crc" and "fields", an object
 * shaped like the maker's SPEC (point_of_initiation, merchant_account,
 * mcc, ...), so that parse -> make gives the object back. "missing" names
 * "02-51" for HT_QR_MISSING_ACCOUNT. *out is a new reference (the caller
 * json_decref's it). HT_ERR_NOMEM.
 */
enum ht_err ht_qr_mpm_to_json(const struct ht_qr_mpm *m, struct json_t **out);

/*
 * Make an MPM payload from a SPEC (a JSON object; docs/qr.md):
 * point_of_initiation, merchant_account (ID 02-25 -> string, 26-51 ->
 * {sub-ID -> string}), mcc, currency, amount, tip, fee_fixed,
 * fee_percentage, country, merchant_name, merchant_city, postal_code,
 * additional (ID 62 sub-IDs), alt_language (ID 64 sub-IDs), unreserved
 * (80-99 -> {sub-ID -> string}); payload_format_indicator may be given and
 * must be "01". merchant_account, mcc, currency, country, merchant_name
 * and merchant_city are required, so every code made is complete.
 * Objects and sub-fields are written in ascending ID order, the CRC last.
 * The result (NUL-terminated, at most HT_QR_MPM_BYTES_MAX bytes) goes to
 * out[0..out_size) and its length to *out_len; it is parsed again before
 * it is returned and must come back valid and complete.
 * HT_ERR_INVALID (a bad or unknown field: err names it), HT_ERR_LIMIT
 * (over 512 characters, or out_size too small; err says which).
 */
enum ht_err ht_qr_mpm_make(const struct json_t *spec, char *out,
			   size_t out_size, size_t *out_len, char *err,
			   size_t err_size);

/* ---- consumer-presented mode ------------------------------------------ */

/* One BER-TLV data object of a CPM code. Value: data[offset .. +size).
 * Objects are kept in document order (pre-order); a template's
 * descendants are the objects from its index + 1 to `end` (exclusive). */
struct ht_qr_tlv {
	uint32_t tag;       /* the tag bytes as a big-endian number: 0x9F26 */
	uint16_t offset;
	uint16_t size;
	uint16_t end;
	uint8_t depth;      /* 0 at the top level */
	bool constructed;
};

/* Missing CPM objects: no application template, an application template
 * without its AID (4F), neither PAN (5A) nor track 2 (57) anywhere. */
enum ht_qr_cpm_missing {
	HT_QR_CPM_MISSING_APP = 1 << 0,   /* "61" */
	HT_QR_CPM_MISSING_AID = 1 << 1,   /* "4F" */
	HT_QR_CPM_MISSING_TOKEN = 1 << 2, /* "57|5A" */
};

/* The decoding of one CPM code; owns a copy of the decoded bytes. */
struct ht_qr_cpm {
	bool valid;
	bool complete;
	enum ht_qr_error error;
	size_t error_offset;  /* byte of the decoded data (text: of the text) */
	uint32_t error_tag;   /* the tag it lies in, 0 when none */
	unsigned missing;     /* enum ht_qr_cpm_missing bits */
	size_t size;
	uint8_t data[HT_QR_CPM_BYTES_MAX];
	size_t count;
	struct ht_qr_tlv tlv[HT_QR_CPM_OBJECTS_MAX];
};

/*
 * Decode a CPM code: text[0..len) is base64 (RFC 4648 §4, padded, no
 * whitespace) of BER-TLV data. Refused: bad base64 (bad_value), over
 * HT_QR_CPM_TEXT_MAX characters (bad_length), then as
 * ht_qr_cpm_parse_bytes. Returns out->error.
 */
enum ht_qr_error ht_qr_cpm_parse(const char *text, size_t len,
				 struct ht_qr_cpm *out);

/*
 * Decode BER-TLV bytes (already base64-decoded). Checks: the first object
 * is 85 "CPV01" (payload format indicator); the top level holds only 85,
 * 61 (application templates, one or more) and 62 (common data, at most
 * once); tags of 1..3 bytes, lengths short or 0x81/0x82 long form (no
 * indefinite form); every value inside its template (bad_length) or the
 * data (truncated); no tag twice in one template (except 61 at the top);
 * nesting at most HT_QR_CPM_DEPTH_MAX; formats of 4F (5..16 bytes), 5A
 * (BCD digits, F padding), 57 (track 2: digits, one D, F padding), 50 and
 * 5F20 (printable ASCII), 5F2D (letters, pairs). Complete when valid with
 * an application template, each with 4F, and a 5A or 57.
 * HT_QR_CPM_BYTES_MAX bytes at most (bad_length). Returns out->error.
 */
enum ht_qr_error ht_qr_cpm_parse_bytes(const uint8_t *data, size_t size,
				       struct ht_qr_cpm *out);

/* Static name of an EMV tag CPM uses ("application_template" for 0x61,
 * "pan", "track2_equivalent", ...), NULL for others. */
const char *ht_qr_cpm_tag_name(uint32_t tag);

/*
 * The decoding as JSON: {"mode":"cpm","valid","complete","missing",
 * "error", on error "error_at" and "error_tag", and when valid "objects":
 * [{"tag":"61","name":"application_template","objects":[...]},
 * {"tag":"4F","name":"adf_name","hex":"A0..."}, ...]} — primitives with
 * "hex", text tags (85, 50, 5F20, 5F2D) also "text", 5A "pan" and 57
 * "track2" ({"pan","expiry","service_code","discretionary"}) decoded.
 * New reference in *out. HT_ERR_NOMEM.
 */
enum ht_err ht_qr_cpm_to_json(const struct ht_qr_cpm *c, struct json_t **out);

/* What a CPM code carries (issue 5: the payer's one-time token). */
struct ht_qr_cpm_spec {
	const char *aid_hex;  /* 4F, 5..16 bytes as hex: required */
	const char *label;    /* 50, 1..16 printable ASCII, or NULL */
	const char *pan;      /* 5A: 12..19 digits (the token), or NULL */
	const char *track2;   /* 57: digits with one 'D', up to 37, or NULL;
				 exactly one of pan and track2 */
	const char *name;     /* 5F20, 2..26 printable ASCII, or NULL */
	const char *language; /* 5F2D in a 62 template: 2..8 lowercase
				 letters, pairs ("zhen"), or NULL */
};

/*
 * Make a CPM code: 85 "CPV01", one 61 with 4F, 50, 5A or 57, 5F20, then
 * 62 with 5F2D when a language is given; base64 (padded) into
 * out[0..out_size), NUL-terminated, length in *out_len. Decoded again
 * before it is returned and must come back valid and complete.
 * HT_ERR_INVALID (err names the field), HT_ERR_LIMIT (out_size).
 */
enum ht_err ht_qr_cpm_make(const struct ht_qr_cpm_spec *spec, char *out,
			   size_t out_size, size_t *out_len, char *err,
			   size_t err_size);

/* ---- images (libhuitong-qrimage) -------------------------------------- */

/* Error correction level; the zero value means M (EMVCo's usual). */
enum ht_qr_ec {
	HT_QR_EC_DEFAULT = 0,
	HT_QR_EC_L, /* ~7% of the symbol may be lost */
	HT_QR_EC_M, /* ~15% */
	HT_QR_EC_Q, /* ~25% */
	HT_QR_EC_H, /* ~30% */
};

/* Image options; a zeroed struct (or NULL) gives the defaults. */
struct ht_qr_image_options {
	enum ht_qr_ec ec;
	unsigned module_px;     /* PNG pixels per module, 0: 8 (at most 64) */
	unsigned quiet_modules; /* quiet zone, 0: 4 (ISO 18004's minimum;
				   at most 64) */
};

/* The module matrix of one QR symbol (libqrencode). */
struct ht_qr_image;

/*
 * Encode text[0..len) (any bytes; libqrencode picks numeric, alphanumeric
 * and byte segments) as the smallest QR version that holds it at the
 * options' level. HT_ERR_LIMIT (too long for version 40), HT_ERR_INVALID
 * (empty, or a bad option), HT_ERR_NOMEM. Free with ht_qr_image_free.
 */
enum ht_err ht_qr_image_encode(const char *text, size_t len,
			       const struct ht_qr_image_options *o,
			       struct ht_qr_image **out);
void ht_qr_image_free(struct ht_qr_image *img); /* NULL is fine */
/* Modules per side (without the quiet zone) and whether (x, y) is dark. */
unsigned ht_qr_image_width(const struct ht_qr_image *img);
bool ht_qr_image_dark(const struct ht_qr_image *img, unsigned x, unsigned y);

/* Write the symbol as an 8-bit greyscale PNG (libpng) or an SVG (one
 * path, one unit per module, crisp edges) with its quiet zone to out.
 * HT_ERR_IO when writing fails. The caller opens and closes out. */
enum ht_err ht_qr_image_write_png(const struct ht_qr_image *img,
				  const struct ht_qr_image_options *o,
				  FILE *out);
enum ht_err ht_qr_image_write_svg(const struct ht_qr_image *img,
				  const struct ht_qr_image_options *o,
				  FILE *out);

#endif

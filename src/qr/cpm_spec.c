/*
 * cpm_spec.c — CPM codes as JSON, and made from a spec (qr.h,
 * docs/qr.md): the payer's one-time token in 5A (or a track 2 in 57) in
 * one application template.
 *
 * Owner: switch. The maker checks every field before writing and decodes
 * what it wrote before handing it out.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "qr_internal.h"

static const struct {
	uint32_t tag;
	const char *name;
	bool text;
} tag_names[] = {
	{0x85, "payload_format_indicator", true},
	{0x61, "application_template", false},
	{0x62, "common_data_template", false},
	{0x63, "application_specific_transparent_template", false},
	{0x64, "common_data_transparent_template", false},
	{0x4f, "adf_name", false},
	{0x50, "application_label", true},
	{0x57, "track2_equivalent", false},
	{0x5a, "pan", false},
	{0x5f20, "cardholder_name", true},
	{0x5f2d, "language_preference", true},
	{0x5f34, "pan_sequence_number", false},
	{0x5f50, "issuer_url", true},
	{0x82, "application_interchange_profile", false},
	{0x9f08, "application_version_number", false},
	{0x9f10, "issuer_application_data", false},
	{0x9f19, "token_requestor_id", false},
	{0x9f24, "payment_account_reference", true},
	{0x9f25, "last_4_digits_of_pan", false},
	{0x9f26, "application_cryptogram", false},
	{0x9f27, "cryptogram_information_data", false},
	{0x9f36, "application_transaction_counter", false},
	{0x9f37, "unpredictable_number", false},
};
#define TAGS (sizeof tag_names / sizeof tag_names[0])

const char *ht_qr_cpm_tag_name(uint32_t tag)
{
	for (size_t i = 0; i < TAGS; i++)
		if (tag_names[i].tag == tag)
			return tag_names[i].name;
	return NULL;
}

static bool tag_is_text(uint32_t tag)
{
	for (size_t i = 0; i < TAGS; i++)
		if (tag_names[i].tag == tag)
			return tag_names[i].text;
	return false;
}

/* ---- decoding -> JSON --------------------------------------------------- */

/* Whether v[0..n) is printable ASCII: text tags without a format rule
 * (85 is checked, 9F24 and 5F50 are not) may hold any bytes, and only
 * text is printed as "text". */
static bool ascii_text(const uint8_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] < 0x20 || v[i] > 0x7e)
			return false;
	return true;
}

static void tag_hex(uint32_t tag, char out[8])
{
	snprintf(out, 8, tag > 0xffff ? "%06X" : tag > 0xff ? "%04X" : "%02X",
		 (unsigned)tag);
}

/* Nibbles of v[0..n) as text, F padding dropped, D kept: "1234D2512..." */
static json_t *nibbles_json(const uint8_t *v, size_t n)
{
	char s[2 * 19 + 1];
	size_t k = 0;
	for (size_t i = 0; i < 2 * n && i < 2 * 19; i++) {
		unsigned x = i % 2 ? v[i / 2] & 0x0f : v[i / 2] >> 4;
		if (x != 0xf)
			s[k++] = "0123456789ABCDEF"[x];
	}
	return json_stringn(s, k);
}

/* Track 2: PAN D YYMM service-code discretionary (already checked). */
static json_t *track2_json(const uint8_t *v, size_t n)
{
	json_t *t = nibbles_json(v, n);
	const char *s = json_string_value(t);
	const char *d = s ? strchr(s, 'D') : NULL;
	json_t *o = d ? json_pack("{s:s%,s:s%,s:s%,s:s}", "pan", s,
				  (size_t)(d - s), "expiry", d + 1, (size_t)4,
				  "service_code", d + 5, (size_t)3,
				  "discretionary", d + 8)
		      : NULL;
	json_decref(t);
	return o;
}

static json_t *object_json(const struct ht_qr_cpm *c, size_t i);

static json_t *level_json(const struct ht_qr_cpm *c, size_t first, size_t end)
{
	json_t *a = json_array();
	for (size_t i = first; a && i < end; i = c->tlv[i].end)
		if (json_array_append_new(a, object_json(c, i))) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *object_json(const struct ht_qr_cpm *c, size_t i)
{
	const struct ht_qr_tlv *t = &c->tlv[i];
	const uint8_t *v = c->data + t->offset;
	char tag[8], hex[2 * HT_QR_CPM_BYTES_MAX + 1];
	tag_hex(t->tag, tag);
	json_t *o = json_pack("{s:s}", "tag", tag);
	const char *name = ht_qr_cpm_tag_name(t->tag);
	int bad = !o || (name && json_object_set_new(o, "name",
						     json_string(name)));
	if (t->constructed)
		return bad || json_object_set_new(o, "objects",
						  level_json(c, i + 1, t->end))
			       ? (json_decref(o), NULL) : o;
	ht_hex_encode(v, t->size, hex);
	for (char *p = hex; *p; p++)
		*p = (char)(*p >= 'a' ? *p - 'a' + 'A' : *p);
	bad = bad || json_object_set_new(o, "hex", json_string(hex));
	if (tag_is_text(t->tag) && ascii_text(v, t->size))
		bad = bad || json_object_set_new(o, "text",
						 json_stringn((const char *)v,
							      t->size));
	if (t->tag == 0x5a)
		bad = bad || json_object_set_new(o, "digits",
						 nibbles_json(v, t->size));
	if (t->tag == 0x57)
		bad = bad || json_object_set_new(o, "track2",
						 track2_json(v, t->size));
	return bad ? (json_decref(o), NULL) : o;
}

static json_t *missing_json(unsigned missing)
{
	json_t *a = json_array();
	if (a && (missing & HT_QR_CPM_MISSING_APP))
		json_array_append_new(a, json_string("61"));
	if (a && (missing & HT_QR_CPM_MISSING_AID))
		json_array_append_new(a, json_string("4F"));
	if (a && (missing & HT_QR_CPM_MISSING_TOKEN))
		json_array_append_new(a, json_string("57|5A"));
	return a;
}

enum ht_err ht_qr_cpm_to_json(const struct ht_qr_cpm *c, json_t **out)
{
	HT_ASSERT(c != NULL && out != NULL);
	HT_ASSERT(c->valid == (c->error == HT_QR_OK));
	json_t *o = json_pack("{s:s,s:b,s:b,s:o}", "mode", "cpm", "valid",
			      c->valid, "complete", c->complete, "missing",
			      missing_json(c->missing));
	int bad = !o;
	if (!bad && c->valid) {
		bad = json_object_set_new(o, "error", json_null()) ||
		      json_object_set_new(o, "objects",
					  level_json(c, 0, c->count));
	} else if (!bad) {
		char tag[8];
		tag_hex(c->error_tag, tag);
		bad = json_object_set_new(o, "error", json_string(
				ht_qr_error_name(c->error))) ||
		      json_object_set_new(o, "error_at",
					  json_integer((json_int_t)c->error_offset)) ||
		      (c->error_tag && json_object_set_new(o, "error_tag",
							   json_string(tag)));
	}
	if (bad) {
		json_decref(o);
		return HT_ERR_NOMEM;
	}
	*out = o;
	return HT_OK;
}

/* ---- spec -> code ------------------------------------------------------- */

struct ber {
	uint8_t b[HT_QR_CPM_BYTES_MAX];
	size_t len;
};

/* Append tag (1..2 bytes), a short-form length and the value. The
 * caller keeps every value under 128 bytes and the total in bounds. */
static void ber_put(struct ber *w, uint32_t tag, const void *v, size_t n)
{
	HT_ASSERT(n < 0x80);
	HT_ASSERT(w->len + 3 + n <= sizeof w->b);
	if (tag > 0xff)
		w->b[w->len++] = (uint8_t)(tag >> 8);
	w->b[w->len++] = (uint8_t)tag;
	w->b[w->len++] = (uint8_t)n;
	memcpy(w->b + w->len, v, n);
	w->len += n;
}

/* Digits (and, for track 2, one 'D' or '=') packed as nibbles, F-padded;
 * false when s has anything else or is too long. */
static bool pack_bcd(const char *s, bool track2, uint8_t *out, size_t max,
		     size_t *n)
{
	size_t len = strlen(s);
	if (len == 0 || (len + 1) / 2 > max)
		return false;
	memset(out, 0xff, (len + 1) / 2);
	for (size_t i = 0; i < len; i++) {
		unsigned x;
		if (s[i] >= '0' && s[i] <= '9')
			x = (unsigned)(s[i] - '0');
		else if (track2 && (s[i] == 'D' || s[i] == 'd' || s[i] == '='))
			x = 0xd;
		else
			return false;
		out[i / 2] = (uint8_t)(i % 2 ? (out[i / 2] & 0xf0) | x
					     : (x << 4) | 0x0f);
	}
	*n = (len + 1) / 2;
	return true;
}

/* v as a value of tag: present and in the form the decoder checks. */
static bool text_ok(uint32_t tag, const char *v)
{
	return ht_qr_cpm_value_ok(tag, (const uint8_t *)v, strlen(v));
}

/* The token: pan (12..19 digits, into 5A) or track2 (into 57), packed. */
static enum ht_err token(const struct ht_qr_cpm_spec *s, struct ber *app,
			 char *err, size_t err_size)
{
	uint8_t bcd[19];
	size_t n = 0;
	if (!s->pan == !s->track2)
		return ht_fail(err, err_size, HT_ERR_INVALID,
			       "give exactly one of pan (the token) and track2");
	if (s->pan && (strlen(s->pan) < 12 || strlen(s->pan) > 19 ||
		       !pack_bcd(s->pan, false, bcd, 10, &n)))
		return ht_fail(err, err_size, HT_ERR_INVALID,
			       "pan: 12..19 digits");
	if (s->track2 && (!pack_bcd(s->track2, true, bcd, 19, &n) ||
			  !ht_qr_cpm_value_ok(0x57, bcd, n)))
		return ht_fail(err, err_size, HT_ERR_INVALID,
			       "track2: PAN digits, D, YYMM, service code, "
			       "discretionary digits; 37 at most");
	ber_put(app, s->pan ? 0x5a : 0x57, bcd, n);
	return HT_OK;
}

/* The application template's content from the spec's fields. */
static enum ht_err app_template(const struct ht_qr_cpm_spec *s, struct ber *app,
				char *err, size_t err_size)
{
	uint8_t aid[16];
	size_t n;
	if (!s->aid_hex || ht_hex_decode(s->aid_hex, strlen(s->aid_hex), aid,
					 sizeof aid, &n) ||
	    !ht_qr_cpm_value_ok(0x4f, aid, n))
		return ht_fail(err, err_size, HT_ERR_INVALID,
			       "aid: expected 5..16 bytes as hex");
	ber_put(app, 0x4f, aid, n);
	if (s->label && !text_ok(0x50, s->label))
		return ht_fail(err, err_size, HT_ERR_INVALID,
			       "label: 1..16 printable ASCII characters");
	if (s->label)
		ber_put(app, 0x50, s->label, strlen(s->label));
	enum ht_err e = token(s, app, err, err_size);
	if (e)
		return e;
	if (s->name && !text_ok(0x5f20, s->name))
		return ht_fail(err, err_size, HT_ERR_INVALID,
			       "name: 2..26 printable ASCII characters");
	if (s->name)
		ber_put(app, 0x5f20, s->name, strlen(s->name));
	return HT_OK;
}

enum ht_err ht_qr_cpm_make(const struct ht_qr_cpm_spec *spec, char *out,
			   size_t out_size, size_t *out_len, char *err,
			   size_t err_size)
{
	HT_ASSERT(spec != NULL && out != NULL && out_len != NULL);
	struct ber app = {.len = 0}, code = {.len = 0};
	enum ht_err e = app_template(spec, &app, err, err_size);
	if (e)
		return e;
	if (spec->language && !text_ok(0x5f2d, spec->language))
		return ht_fail(err, err_size, HT_ERR_INVALID,
			       "language: 2..8 letters, ISO 639-1 pairs (\"zhen\")");
	ber_put(&code, 0x85, "CPV01", 5);
	ber_put(&code, 0x61, app.b, app.len);
	if (spec->language) {
		struct ber common = {.len = 0};
		ber_put(&common, 0x5f2d, spec->language, strlen(spec->language));
		ber_put(&code, 0x62, common.b, common.len);
	}
	size_t need = (code.len + 2) / 3 * 4 + 1;
	if (out_size < need)
		return ht_fail(err, err_size, HT_ERR_LIMIT,
			       "output buffer too small (%zu bytes needed)", need);
	*out_len = (size_t)EVP_EncodeBlock((unsigned char *)out, code.b,
					   (int)code.len);
	struct ht_qr_cpm *check = malloc(sizeof *check);
	if (!check)
		return ht_fail(err, err_size, HT_ERR_NOMEM, "out of memory");
	ht_qr_cpm_parse(out, *out_len, check);
	bool ok = check->valid && check->complete;
	free(check);
	HT_ASSERT(ok);
	return HT_OK;
}

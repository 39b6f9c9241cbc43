/*
 * mpm_spec.c — MPM payloads to and from the SPEC shape (qr.h, docs/qr.md):
 * a parse as JSON, and the maker, which writes a payload from a SPEC.
 * One table names the SPEC keys for both, so what parse prints, make
 * takes back.
 *
 * Owner: switch. The maker checks every value with the parser's rules
 * (qr_internal.h) before writing, and parses what it wrote before handing
 * it out; it never writes an object EMVCo reserves (65-79).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "qr_internal.h"

/* What a SPEC key holds. */
enum kind {
	K_STRING,      /* one primitive */
	K_ACCOUNT,     /* merchant_account: 02-25 strings, 26-51 templates */
	K_SUBS,        /* one template: sub-ID -> string */
	K_TEMPLATES,   /* unreserved: 80-99 -> template */
	K_RFU,         /* 65-79: printed by parse, refused by make */
};

static const struct key {
	const char *name;
	int id;         /* first ID */
	int id_last;    /* last ID the key covers */
	enum kind kind;
	bool required;  /* by the maker */
} keys[] = {
	{"point_of_initiation", 1, 1, K_STRING, false},
	{"merchant_account", 2, 51, K_ACCOUNT, true},
	{"mcc", 52, 52, K_STRING, true},
	{"currency", 53, 53, K_STRING, true},
	{"amount", 54, 54, K_STRING, false},
	{"tip", 55, 55, K_STRING, false},
	{"fee_fixed", 56, 56, K_STRING, false},
	{"fee_percentage", 57, 57, K_STRING, false},
	{"country", 58, 58, K_STRING, true},
	{"merchant_name", 59, 59, K_STRING, true},
	{"merchant_city", 60, 60, K_STRING, true},
	{"postal_code", 61, 61, K_STRING, false},
	{"additional", 62, 62, K_SUBS, false},
	{"alt_language", 64, 64, K_SUBS, false},
	{"rfu", 65, 79, K_RFU, false},
	{"unreserved", 80, 99, K_TEMPLATES, false},
};
#define KEYS (sizeof keys / sizeof keys[0])

static const struct key *key_of_id(int id)
{
	for (size_t i = 0; i < KEYS; i++)
		if (id >= keys[i].id && id <= keys[i].id_last)
			return &keys[i];
	return NULL; /* 00 and 63: not SPEC fields */
}

/* ---- parse -> JSON ------------------------------------------------------ */

static json_t *value_json(const struct ht_qr_mpm *m, const struct ht_qr_field *f)
{
	return json_stringn(m->payload + f->offset, f->size);
}

static json_t *template_json(const struct ht_qr_mpm *m,
			     const struct ht_qr_field *t)
{
	json_t *o = json_object();
	for (size_t i = 0; o && i < t->child_count; i++) {
		const struct ht_qr_field *s = &m->fields[t->first_child + i];
		char id[3] = {(char)('0' + s->id / 10), (char)('0' + s->id % 10), 0};
		if (json_object_set_new(o, id, value_json(m, s))) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

/* Put field f into fields under its SPEC key (a map by ID for keys that
 * cover several IDs). -1 on allocation failure. */
static int put_field(const struct ht_qr_mpm *m, const struct ht_qr_field *f,
		     json_t *fields)
{
	const struct key *k = key_of_id(f->id);
	if (!k)
		return 0;
	json_t *v = f->child_count ? template_json(m, f) : value_json(m, f);
	if (!v)
		return -1;
	if (k->id == k->id_last)
		return json_object_set_new(fields, k->name, v);
	json_t *map = json_object_get(fields, k->name);
	if (!map && (!(map = json_object()) ||
		     json_object_set_new(fields, k->name, map))) {
		json_decref(v);
		return -1;
	}
	char id[3] = {(char)('0' + f->id / 10), (char)('0' + f->id % 10), 0};
	return json_object_set_new(map, id, v);
}

static json_t *missing_json(const struct ht_qr_mpm *m)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < m->missing_count; i++) {
		char id[6] = "02-51";
		if (m->missing[i] != HT_QR_MISSING_ACCOUNT)
			snprintf(id, sizeof id, "%02u", m->missing[i]);
		if (json_array_append_new(a, json_string(id))) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* "error", "error_at" (characters before the fault) and "error_tag". */
static int error_json(const struct ht_qr_mpm *m, json_t *o)
{
	if (m->valid)
		return json_object_set_new(o, "error", json_null());
	char tag[8] = "";
	if (m->error_id >= 0 && m->error_sub_id >= 0)
		snprintf(tag, sizeof tag, "%02d.%02d", m->error_id % 100,
			 m->error_sub_id % 100);
	else if (m->error_id >= 0)
		snprintf(tag, sizeof tag, "%02d", m->error_id % 100);
	size_t at = m->error_offset <= m->payload_size ? m->error_offset
						       : m->payload_size;
	return json_object_set_new(o, "error",
				   json_string(ht_qr_error_name(m->error))) ||
	       json_object_set_new(o, "error_at", json_integer((json_int_t)
			ht_qr_utf8_chars(m->payload, at))) ||
	       (tag[0] && json_object_set_new(o, "error_tag", json_string(tag)));
}

static int valid_json(const struct ht_qr_mpm *m, json_t *o)
{
	const struct ht_qr_field *pfi = ht_qr_mpm_get(m, 0);
	const struct ht_qr_field *crc = ht_qr_mpm_get(m, 63);
	json_t *fields = json_object();
	if ((pfi && json_object_set_new(o, "payload_format_indicator",
					value_json(m, pfi))) ||
	    json_object_set_new(o, "crc", value_json(m, crc)) || !fields ||
	    json_object_set_new(o, "fields", fields))
		return -1;
	for (size_t i = 0; i < m->top_count; i++)
		if (put_field(m, &m->fields[m->top[i]], fields))
			return -1;
	return 0;
}

enum ht_err ht_qr_mpm_to_json(const struct ht_qr_mpm *m, json_t **out)
{
	HT_ASSERT(m != NULL && out != NULL);
	HT_ASSERT(m->valid == (m->error == HT_QR_OK));
	json_t *o = json_object();
	if (!o || json_object_set_new(o, "mode", json_string("mpm")) ||
	    json_object_set_new(o, "valid", json_boolean(m->valid)) ||
	    json_object_set_new(o, "complete", json_boolean(m->complete)) ||
	    json_object_set_new(o, "missing", missing_json(m)) ||
	    error_json(m, o) || (m->valid && valid_json(m, o))) {
		json_decref(o);
		return HT_ERR_NOMEM;
	}
	*out = o;
	return HT_OK;
}

/* ---- SPEC -> payload ---------------------------------------------------- */

/* One object to write: a primitive (v) or a template (subs). */
struct item {
	int id;
	const json_t *v;    /* string, or object of sub-ID -> string */
};

struct maker {
	struct item items[100];
	size_t count;
	char *buf;
	size_t cap, len, chars;
	char *err;
	size_t err_size;
};

/* A 2-digit ID "00".."99" in s, or -1. */
static int parse_id(const char *s)
{
	if (strlen(s) != 2 || s[0] < '0' || s[0] > '9' || s[1] < '0' ||
	    s[1] > '9')
		return -1;
	return (s[0] - '0') * 10 + (s[1] - '0');
}

static bool has_control(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

/* A string value for (id, sub): present, 1..99 characters, no control
 * characters, in the format the parser checks. */
static enum ht_err check_string(struct maker *mk, const json_t *v, int id,
				int sub, const char *path)
{
	if (!json_is_string(v))
		return ht_fail(mk->err, mk->err_size, HT_ERR_INVALID,
			       "%s: expected a string", path);
	const char *s = json_string_value(v);
	size_t n = json_string_length(v), chars = ht_qr_utf8_chars(s, n);
	if (chars == 0 || chars > HT_QR_MPM_VALUE_CHARS_MAX)
		return ht_fail(mk->err, mk->err_size, HT_ERR_INVALID,
			       "%s: %zu characters (1..%d)", path, chars,
			       HT_QR_MPM_VALUE_CHARS_MAX);
	if (has_control(s, n) || strlen(s) != n)
		return ht_fail(mk->err, mk->err_size, HT_ERR_INVALID,
			       "%s: contains a control character", path);
	if (!ht_qr_mpm_value_ok(id, sub, s, n))
		return ht_fail(mk->err, mk->err_size, HT_ERR_INVALID,
			       "%s: '%s' is not a valid value (docs/qr.md)",
			       path, s);
	return HT_OK;
}

/* A template value: an object of 2-digit sub-IDs to strings. */
static enum ht_err check_subs(struct maker *mk, const json_t *v, int id,
			      const char *path)
{
	if (!json_is_object(v) || json_object_size(v) == 0)
		return ht_fail(mk->err, mk->err_size, HT_ERR_INVALID,
			       "%s: expected an object of sub-IDs (\"00\".."
			       "\"99\") to strings", path);
	const char *k;
	json_t *s;
	json_object_foreach((json_t *)v, k, s) {
		char sub_path[96];
		snprintf(sub_path, sizeof sub_path, "%s.%s", path, k);
		int sub = parse_id(k);
		if (sub < 0)
			return ht_fail(mk->err, mk->err_size, HT_ERR_INVALID,
				       "%s: sub-ID must be two digits", sub_path);
		enum ht_err e = check_string(mk, s, id, sub, sub_path);
		if (e)
			return e;
	}
	if (id == 64 && (!json_object_get(v, "00") || !json_object_get(v, "01")))
		return ht_fail(mk->err, mk->err_size, HT_ERR_INVALID,
			       "%s: needs 00 (language) and 01 (merchant name)",
			       path);
	return HT_OK;
}

static enum ht_err add_item(struct maker *mk, int id, const char *path,
			    const json_t *v)
{
	enum ht_err e = ht_qr_mpm_is_template(id) ? check_subs(mk, v, id, path)
						  : check_string(mk, v, id, -1,
								 path);
	if (e)
		return e;
	HT_ASSERT(mk->count < 100);
	mk->items[mk->count++] = (struct item){id, v};
	return HT_OK;
}

/* A key covering several IDs: an object of ID -> value. */
static enum ht_err add_map(struct maker *mk, const struct key *k,
			   const json_t *v)
{
	if (!json_is_object(v) || json_object_size(v) == 0)
		return ht_fail(mk->err, mk->err_size, HT_ERR_INVALID,
			       "%s: expected an object of IDs (\"%02d\"..\"%02d\")",
			       k->name, k->id, k->id_last);
	const char *name;
	json_t *e;
	json_object_foreach((json_t *)v, name, e) {
		int id = parse_id(name);
		if (id < k->id || id > k->id_last)
			return ht_fail(mk->err, mk->err_size, HT_ERR_INVALID,
				       "%s.%s: ID must be %02d..%02d", k->name,
				       name, k->id, k->id_last);
		char path[64];
		snprintf(path, sizeof path, "%s.%s", k->name, name);
		enum ht_err err = add_item(mk, id, path, e);
		if (err)
			return err;
	}
	return HT_OK;
}

/* Every SPEC key into items; unknown keys and missing required ones are
 * refused by name. */
static enum ht_err collect(struct maker *mk, const json_t *spec)
{
	if (!json_is_object(spec))
		return ht_fail(mk->err, mk->err_size, HT_ERR_INVALID,
			       "the SPEC must be a JSON object");
	const char *name;
	json_t *v;
	json_object_foreach((json_t *)spec, name, v) {
		if (!strcmp(name, "payload_format_indicator")) {
			if (!json_is_string(v) || strcmp(json_string_value(v), "01"))
				return ht_fail(mk->err, mk->err_size,
					       HT_ERR_INVALID, "payload_format_"
					       "indicator: must be \"01\"");
			continue;
		}
		const struct key *k = NULL;
		for (size_t i = 0; i < KEYS && !k; i++)
			if (!strcmp(keys[i].name, name))
				k = &keys[i];
		if (!k)
			return ht_fail(mk->err, mk->err_size, HT_ERR_INVALID,
				       "unknown field '%s' (docs/qr.md)", name);
		if (k->kind == K_RFU)
			return ht_fail(mk->err, mk->err_size, HT_ERR_INVALID,
				       "rfu: IDs 65-79 are reserved for EMVCo");
		enum ht_err e = k->id == k->id_last ? add_item(mk, k->id, name, v)
						    : add_map(mk, k, v);
		if (e)
			return e;
	}
	for (size_t i = 0; i < KEYS; i++)
		if (keys[i].required && !json_object_get(spec, keys[i].name))
			return ht_fail(mk->err, mk->err_size, HT_ERR_INVALID,
				       "%s: required", keys[i].name);
	return HT_OK;
}

/* Append "IDLL" + value; the caller checked the value's length. */
static void put(struct maker *mk, int id, const char *v, size_t n,
		size_t chars)
{
	if (mk->len + 4 + n < mk->cap)
		snprintf(mk->buf + mk->len, 5, "%02d%02zu", id, chars);
	if (mk->len + 4 + n < mk->cap)
		memcpy(mk->buf + mk->len + 4, v, n);
	mk->len += 4 + n;
	mk->chars += 4 + chars;
}

static int cmp_item(const void *a, const void *b)
{
	return ((const struct item *)a)->id - ((const struct item *)b)->id;
}

/* A template: its sub-fields in ascending order into a scratch buffer,
 * then as one value. */
static enum ht_err put_template(struct maker *mk, const struct item *it)
{
	char buf[HT_QR_MPM_BYTES_MAX + 1];
	struct maker sub = {.buf = buf, .cap = sizeof buf};
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)it->v, k, v)
		sub.items[sub.count++] = (struct item){parse_id(k), v};
	qsort(sub.items, sub.count, sizeof sub.items[0], cmp_item);
	for (size_t i = 0; i < sub.count; i++) {
		const json_t *s = sub.items[i].v;
		size_t n = json_string_length(s);
		put(&sub, sub.items[i].id, json_string_value(s), n,
		    ht_qr_utf8_chars(json_string_value(s), n));
	}
	if (sub.chars > HT_QR_MPM_VALUE_CHARS_MAX)
		return ht_fail(mk->err, mk->err_size, HT_ERR_INVALID,
			       "template %02d: %zu characters (at most %d)",
			       it->id, sub.chars, HT_QR_MPM_VALUE_CHARS_MAX);
	put(mk, it->id, buf, sub.len, sub.chars);
	return HT_OK;
}

/* Objects in ascending ID order after 00, then 6304 and the CRC. */
static enum ht_err write_payload(struct maker *mk)
{
	qsort(mk->items, mk->count, sizeof mk->items[0], cmp_item);
	put(mk, 0, "01", 2, 2);
	for (size_t i = 0; i < mk->count; i++) {
		const struct item *it = &mk->items[i];
		if (json_is_object(it->v)) {
			enum ht_err e = put_template(mk, it);
			if (e)
				return e;
			continue;
		}
		size_t n = json_string_length(it->v);
		put(mk, it->id, json_string_value(it->v), n,
		    ht_qr_utf8_chars(json_string_value(it->v), n));
	}
	if (mk->chars + 8 > HT_QR_MPM_CHARS_MAX)
		return ht_fail(mk->err, mk->err_size, HT_ERR_LIMIT,
			       "the code would be %zu characters (at most %d)",
			       mk->chars + 8, HT_QR_MPM_CHARS_MAX);
	if (mk->len + 9 > mk->cap)
		return ht_fail(mk->err, mk->err_size, HT_ERR_LIMIT,
			       "output buffer too small (%zu bytes needed)",
			       mk->len + 9);
	memcpy(mk->buf + mk->len, "6304", 4);
	mk->len += 4;
	snprintf(mk->buf + mk->len, 5, "%04X", ht_qr_crc16(mk->buf, mk->len));
	mk->len += 4;
	return HT_OK;
}

enum ht_err ht_qr_mpm_make(const json_t *spec, char *out, size_t out_size,
			   size_t *out_len, char *err, size_t err_size)
{
	HT_ASSERT(out != NULL && out_len != NULL);
	struct maker *mk = calloc(1, sizeof *mk);
	if (!mk)
		return ht_fail(err, err_size, HT_ERR_NOMEM, "out of memory");
	*mk = (struct maker){.buf = out, .cap = out_size, .err = err,
			     .err_size = err_size};
	enum ht_err e = collect(mk, spec);
	if (!e)
		e = write_payload(mk);
	size_t len = mk->len;
	free(mk);
	if (e)
		return e;
	/* read back what was written: it must be what was meant */
	struct ht_qr_mpm *check = malloc(sizeof *check);
	if (!check)
		return ht_fail(err, err_size, HT_ERR_NOMEM, "out of memory");
	ht_qr_mpm_parse(out, len, check);
	bool ok = check->valid && check->complete;
	free(check);
	HT_ASSERT(ok);
	*out_len = len;
	return HT_OK;
}

/*
 * fuzz_qr_mpm.c — merchant-presented QR payloads are outside input (any
 * phone scans any code): any bytes through ht_qr_mpm_parse. Checked: the
 * verdict is consistent (valid exactly when the error is ok, complete
 * only when valid, missing only when valid and incomplete); the error's
 * place lies inside the input; every field lies inside the payload, a
 * template's sub-fields inside its value, and a valid code's every ID is
 * reachable by ht_qr_mpm_get. A valid code prints as JSON; when its
 * fields make a code again (ht_qr_mpm_make; RFU objects dropped), that
 * code parses valid and complete with the same fields.
 *
 * Owner: switch. Corpus: tests/fuzz/corpus/fuzz_qr_mpm (real payloads of
 * several national schemes, made codes with multi-byte names, and one of
 * each fault).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "huitong/qr.h"

#define CHECK(e) ((e) ? (void)0 : abort())

static void check_fields(const struct ht_qr_mpm *m, size_t size)
{
	CHECK(m->field_count <= HT_QR_MPM_FIELDS_MAX);
	CHECK(m->top_count <= m->field_count);
	for (size_t i = 0; i < m->top_count; i++) {
		const struct ht_qr_field *f = &m->fields[m->top[i]];
		CHECK(f->id <= 99 && f->length >= 1 && f->length <= 99);
		CHECK((size_t)f->offset + f->size <= size);
		CHECK(f->size >= f->length && f->size <= 4u * f->length);
		CHECK(ht_qr_mpm_get(m, f->id) == f);
		for (size_t c = 0; c < f->child_count; c++) {
			const struct ht_qr_field *s = &m->fields[f->first_child + c];
			CHECK(s->offset >= f->offset + 4);
			CHECK(s->offset + s->size <= f->offset + f->size);
			CHECK(ht_qr_mpm_sub(m, f, s->id) == s);
		}
	}
}

/* The fields of a valid code, made again: same fields back. */
static void remake(json_t *fields)
{
	json_object_del(fields, "rfu");
	char out[HT_QR_MPM_BYTES_MAX + 1], err[256];
	size_t len;
	enum ht_err e = ht_qr_mpm_make(fields, out, sizeof out, &len, err,
				       sizeof err);
	CHECK(e == HT_OK || e == HT_ERR_INVALID || e == HT_ERR_LIMIT);
	if (e)
		return;
	struct ht_qr_mpm *m = malloc(sizeof *m);
	CHECK(m != NULL);
	CHECK(ht_qr_mpm_parse(out, len, m) == HT_QR_OK);
	CHECK(m->complete);
	json_t *j;
	CHECK(ht_qr_mpm_to_json(m, &j) == HT_OK);
	CHECK(json_equal(json_object_get(j, "fields"), fields));
	json_decref(j);
	free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ht_qr_mpm *m = malloc(sizeof *m);
	CHECK(m != NULL);
	enum ht_qr_error e = ht_qr_mpm_parse((const char *)data, size, m);
	CHECK(e == m->error && (unsigned)e < HT_QR__COUNT);
	CHECK(m->valid == (e == HT_QR_OK));
	CHECK(!m->complete || m->valid);
	CHECK(m->missing_count <= HT_QR_MISSING_MAX);
	CHECK(m->valid || m->missing_count == 0);
	CHECK(m->complete == (m->valid && m->missing_count == 0));
	CHECK(m->error_offset <= size);
	CHECK(m->error_id >= -1 && m->error_id <= 99);
	check_fields(m, size);
	json_t *j;
	CHECK(ht_qr_mpm_to_json(m, &j) == HT_OK);
	CHECK(json_is_object(j));
	if (m->valid) {
		json_t *fields = json_deep_copy(json_object_get(j, "fields"));
		CHECK(fields != NULL);
		remake(fields);
		json_decref(fields);
	}
	json_decref(j);
	free(m);
	return 0;
}

/*
 * fuzz_qr_cpm.c — consumer-presented QR codes are outside input (the
 * acquirer scans what the payer's phone shows). The first byte picks the
 * way in: even, the rest is the text (base64) through ht_qr_cpm_parse;
 * odd, the rest is BER-TLV bytes through ht_qr_cpm_parse_bytes (so the
 * fuzzer reaches the structure without having to learn base64). Checked:
 * the verdict is consistent; every object lies inside the data and inside
 * its template, depths and `end` links are in order; a valid code prints
 * as JSON; base64 of the bytes gives the same decoding as the bytes.
 *
 * Owner: switch. Corpus: tests/fuzz/corpus/fuzz_qr_cpm (the EMVCo and
 * UnionPay examples both ways, and faults).
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "huitong/qr.h"

#define CHECK(e) ((e) ? (void)0 : abort())

static void check_objects(const struct ht_qr_cpm *c)
{
	CHECK(c->count <= HT_QR_CPM_OBJECTS_MAX);
	for (size_t i = 0; i < c->count; i++) {
		const struct ht_qr_tlv *t = &c->tlv[i];
		CHECK(t->offset + t->size <= c->size);
		CHECK(t->end > i && t->end <= c->count);
		CHECK(t->depth < HT_QR_CPM_DEPTH_MAX);
		CHECK(t->constructed || t->end == i + 1);
		for (size_t j = i + 1; j < t->end; j++) {
			CHECK(c->tlv[j].depth > t->depth);
			CHECK(c->tlv[j].offset >= t->offset);
			CHECK(c->tlv[j].offset + c->tlv[j].size <=
			      t->offset + t->size);
		}
	}
}

static void check(const struct ht_qr_cpm *c, enum ht_qr_error e)
{
	CHECK(e == c->error && (unsigned)e < HT_QR__COUNT);
	CHECK(c->valid == (e == HT_QR_OK));
	CHECK(c->complete == (c->valid && c->missing == 0));
	CHECK(c->valid || c->missing == 0);
	if (!c->valid)
		return;
	check_objects(c);
	CHECK(c->count > 0 && c->tlv[0].tag == 0x85);
	json_t *j;
	CHECK(ht_qr_cpm_to_json(c, &j) == HT_OK);
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	struct ht_qr_cpm *c = malloc(sizeof *c);
	CHECK(c != NULL);
	if (data[0] % 2 == 0) {
		check(c, ht_qr_cpm_parse((const char *)data + 1, size - 1, c));
		CHECK(c->error_offset <= size);
		free(c);
		return 0;
	}
	enum ht_qr_error e = ht_qr_cpm_parse_bytes(data + 1, size - 1, c);
	check(c, e);
	if (size - 1 <= HT_QR_CPM_TEXT_MAX / 4 * 3) {
		/* the same bytes as base64 decode the same way */
		char text[HT_QR_CPM_TEXT_MAX + 1];
		int n = EVP_EncodeBlock((unsigned char *)text, data + 1,
					(int)(size - 1));
		struct ht_qr_cpm *d = malloc(sizeof *d);
		CHECK(d != NULL);
		CHECK(ht_qr_cpm_parse(text, (size_t)n, d) == e);
		CHECK(d->count == c->count || !c->valid);
		free(d);
	}
	free(c);
	return 0;
}

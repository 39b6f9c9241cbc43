/*
 * risk_block.c — one commit's risk decisions as one blob (risk_block.h
 * has the layout and the contract).
 *
 * Owner: store. Encodes what the hub hands the commit and decodes what
 * the disk gives back; it must never trust a block it reads: every offset
 * and length is checked against the block and against the row it fills.
 */
#include "risk_block.h"

#include <string.h>

#define MAGIC "HTRB"
#define FORMAT 1u

_Static_assert(RISK_BLOCK_RECORD_BYTES == 96, "record layout below");
_Static_assert(HT_RISK_ROW_REASONS_BYTES <= UINT16_MAX, "reasons_len is u16");
_Static_assert(HT_RISK_ROW_MODEL_BYTES <= UINT16_MAX, "model_len is u16");

static void put_le(uint8_t *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = bytes; i > 0; i--)
		v = v << 8 | p[i - 1];
	return v;
}

uint64_t risk_block_u64(const uint8_t *p)
{
	return get_le(p, 8);
}

static void put_be128(uint8_t *p, ht_u128 v)
{
	for (int i = 15; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static ht_u128 get_be128(const uint8_t *p)
{
	ht_u128 v = 0;
	for (int i = 0; i < 16; i++)
		v = v << 8 | p[i];
	return v;
}

size_t risk_block_bytes_max(const struct ht_store_risk_row *rows, size_t n)
{
	size_t b = RISK_BLOCK_HEADER_BYTES + n * RISK_BLOCK_RECORD_BYTES;
	for (size_t i = 0; i < n; i++)
		b += rows[i].reasons_len + rows[i].model_len;
	return b;
}

/* Text t (len bytes) into the strings area at *used, unless it equals the
 * previous record's text (at *prev_off, *prev_len): its offset. */
static uint32_t put_text(uint8_t *strings, size_t *used, const char *t,
			 size_t len, uint32_t *prev_off, size_t *prev_len)
{
	if (*prev_len == len &&
	    (len == 0 || !memcmp(strings + *prev_off, t, len)))
		return *prev_off;
	HT_ASSERT(*used <= UINT32_MAX - len);
	memcpy(strings + *used, t, len);
	*prev_off = (uint32_t)*used;
	*prev_len = len;
	*used += len;
	return *prev_off;
}

static void put_record(uint8_t *r, const struct ht_store_risk_row *row,
		       uint32_t reasons_off, uint32_t model_off)
{
	uint64_t score;
	memcpy(&score, &row->score, sizeof score);
	memset(r, 0, RISK_BLOCK_RECORD_BYTES);
	put_le(r + 0, row->leaf, 8);
	put_be128(r + 8, row->id);
	put_be128(r + 24, row->debit_account_id);
	put_be128(r + 40, row->credit_account_id);
	put_le(r + 56, score, 8);
	put_le(r + 64, (uint64_t)row->time_ms, 8);
	put_le(r + 72, row->rules_version, 4);
	r[76] = row->decision;
	r[77] = row->has_rules;
	put_le(r + 78, row->reasons_len, 2);
	put_le(r + 80, reasons_off, 4);
	put_le(r + 84, row->model_len, 2);
	put_le(r + 88, model_off, 4);
}

size_t risk_block_encode(const struct ht_store_risk_row *rows, size_t n,
			 uint8_t *out)
{
	HT_ASSERT(n >= 1);
	HT_ASSERT(n <= UINT32_MAX);
	uint8_t *rec = out + RISK_BLOCK_HEADER_BYTES;
	uint8_t *strings = rec + n * RISK_BLOCK_RECORD_BYTES;
	size_t used = 0, reasons_len = SIZE_MAX, model_len = SIZE_MAX;
	uint32_t reasons_off = 0, model_off = 0;
	for (size_t i = 0; i < n; i++) {
		const struct ht_store_risk_row *row = &rows[i];
		HT_ASSERT(i == 0 || row->leaf > rows[i - 1].leaf);
		HT_ASSERT(row->decision <= 2);
		HT_ASSERT(row->reasons_len < HT_RISK_ROW_REASONS_BYTES);
		HT_ASSERT(row->model_len < HT_RISK_ROW_MODEL_BYTES);
		uint32_t ro = put_text(strings, &used, row->reasons,
				       row->reasons_len, &reasons_off,
				       &reasons_len);
		uint32_t mo = put_text(strings, &used, row->model_version,
				       row->model_len, &model_off, &model_len);
		put_record(rec + i * RISK_BLOCK_RECORD_BYTES, row, ro, mo);
	}
	HT_ASSERT(used <= UINT32_MAX);
	memcpy(out, MAGIC, 4);
	put_le(out + 4, FORMAT, 4);
	put_le(out + 8, n, 4);
	put_le(out + 12, used, 4);
	return RISK_BLOCK_HEADER_BYTES + n * RISK_BLOCK_RECORD_BYTES + used;
}

enum ht_err risk_block_header(const uint8_t *b, size_t len, uint32_t *count,
			      uint32_t *strings_bytes)
{
	if (len < RISK_BLOCK_HEADER_BYTES || memcmp(b, MAGIC, 4) ||
	    get_le(b + 4, 4) != FORMAT)
		return HT_ERR_CORRUPT;
	uint64_t n = get_le(b + 8, 4), s = get_le(b + 12, 4);
	if (n == 0 ||
	    RISK_BLOCK_HEADER_BYTES + n * RISK_BLOCK_RECORD_BYTES + s != len)
		return HT_ERR_CORRUPT;
	*count = (uint32_t)n;
	*strings_bytes = (uint32_t)s;
	return HT_OK;
}

enum ht_err risk_block_record(const uint8_t *rec, uint32_t strings_bytes,
			      struct ht_risk_row *out, uint32_t off[2],
			      uint32_t len[2])
{
	memset(out, 0, sizeof *out);
	uint64_t score = get_le(rec + 56, 8);
	out->leaf = get_le(rec + 0, 8);
	out->id = get_be128(rec + 8);
	out->debit_account_id = get_be128(rec + 24);
	out->credit_account_id = get_be128(rec + 40);
	memcpy(&out->score, &score, sizeof out->score);
	out->time_ms = (int64_t)get_le(rec + 64, 8);
	out->rules_version = (uint32_t)get_le(rec + 72, 4);
	out->decision = rec[76];
	out->has_rules = rec[77] != 0;
	len[0] = (uint32_t)get_le(rec + 78, 2);
	off[0] = (uint32_t)get_le(rec + 80, 4);
	len[1] = (uint32_t)get_le(rec + 84, 2);
	off[1] = (uint32_t)get_le(rec + 88, 4);
	if (out->decision > 2 || rec[77] > 1 ||
	    len[0] >= sizeof out->reasons ||
	    len[1] >= sizeof out->model_version)
		return HT_ERR_CORRUPT;
	for (int k = 0; k < 2; k++)
		if (off[k] > strings_bytes || len[k] > strings_bytes - off[k])
			return HT_ERR_CORRUPT;
	return HT_OK;
}

enum ht_err risk_block_row(const uint8_t *b, uint32_t count,
			   uint32_t strings_bytes, uint32_t k,
			   struct ht_risk_row *out)
{
	HT_ASSERT(k < count);
	const uint8_t *rec = b + RISK_BLOCK_HEADER_BYTES +
			     (size_t)k * RISK_BLOCK_RECORD_BYTES;
	const uint8_t *strings = b + RISK_BLOCK_HEADER_BYTES +
				 (size_t)count * RISK_BLOCK_RECORD_BYTES;
	uint32_t off[2], len[2];
	enum ht_err err = risk_block_record(rec, strings_bytes, out, off, len);
	if (err)
		return err;
	memcpy(out->reasons, strings + off[0], len[0]);
	memcpy(out->model_version, strings + off[1], len[1]);
	return HT_OK;
}

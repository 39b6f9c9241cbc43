/*
 * risk_block.h — the on-disk form of one commit's risk decisions (schema
 * 4, table risk_block; docs/internals/store.md): one blob per commit
 * instead of one row per decision, because a row per decision cost the
 * commit ~2 us of CPU per transfer scored (docs/performance.md).
 *
 * Owner: store (private to src/store). Pure encoding and decoding, no I/O:
 * the SQLite store writes the blob in the commit's transaction and reads
 * records back from it (whole, or one at a time through incremental blob
 * I/O). A block is outside input when read back (a file on disk): every
 * offset and length is checked before it is used.
 *
 * Layout, little-endian:
 *   header (RISK_BLOCK_HEADER_BYTES): magic "HTRB", u32 format (1),
 *          u32 count, u32 strings_bytes
 *   count records of RISK_BLOCK_RECORD_BYTES, in strictly increasing leaf
 *   order (so one is found by binary search):
 *     u64 leaf, id[16], debit[16], credit[16] (big-endian, as the store's
 *     other ids), u64 score (the double's bits), i64 time_ms,
 *     u32 rules_version, u8 decision, u8 has_rules, u16 reasons_len,
 *     u32 reasons_off, u16 model_len, u16 zero, u32 model_off, u32 zero
 *   strings: reasons and model versions, each at an offset into this area;
 *          a text equal to the previous record's is stored once
 */
#ifndef HUITONG_STORE_RISK_BLOCK_H
#define HUITONG_STORE_RISK_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "huitong/hub.h"
#include "huitong/store.h"

#define RISK_BLOCK_HEADER_BYTES 16
#define RISK_BLOCK_RECORD_BYTES 96
/* Offset of a record's leaf (the binary search reads only that). */
#define RISK_BLOCK_LEAF_OFFSET 0

/* The most bytes the block of rows[0..n) can take. */
size_t risk_block_bytes_max(const struct ht_store_risk_row *rows, size_t n);

/* Encode rows[0..n) (n >= 1, leaves strictly increasing, asserted) into
 * out (risk_block_bytes_max bytes); returns the bytes used. */
size_t risk_block_encode(const struct ht_store_risk_row *rows, size_t n,
			 uint8_t *out);

/* The header of a block of len bytes: its record count and the size of
 * its strings area. HT_ERR_CORRUPT when the magic, format or sizes do not
 * add up to len. */
enum ht_err risk_block_header(const uint8_t *b, size_t len, uint32_t *count,
			      uint32_t *strings_bytes);

/* A little-endian u64 (a record's leaf, at RISK_BLOCK_LEAF_OFFSET). */
uint64_t risk_block_u64(const uint8_t *p);

/* The fixed fields of record rec (RISK_BLOCK_RECORD_BYTES) into out
 * (cleared first), and where its two texts are in the block's strings
 * area of strings_bytes: [off[k], off[k] + len[k]), reasons (k = 0) then
 * model version (k = 1); the caller copies them into out->reasons and
 * out->model_version, which have room (checked). HT_ERR_CORRUPT for a
 * text outside the area or too long, or a decision out of range. */
enum ht_err risk_block_record(const uint8_t *rec, uint32_t strings_bytes,
			      struct ht_risk_row *out, uint32_t off[2],
			      uint32_t len[2]);

/* Record k of a whole block b whose header said count and strings_bytes
 * (k < count), texts included. Errors: those of risk_block_record. */
enum ht_err risk_block_row(const uint8_t *b, uint32_t count,
			   uint32_t strings_bytes, uint32_t k,
			   struct ht_risk_row *out);

#endif

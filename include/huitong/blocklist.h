/*
 * blocklist.h — joint defence: block lists participants share as keyed
 * hashes, so a mule account, device or phone number reported by one bank
 * is recognised at every other without its raw identifier leaving the
 * bank that knows it (issue 4, item 6; docs/risk.md "Joint defence").
 *
 * Owner: risk. An entry is (kind, HMAC-SM3(key, "huitong-block-v1" ||
 * kind || value)) with who reported it, why and when. The key is the
 * hub's, generated once (DATA/risk.key, mode 0600) and handed to the
 * participants, who hash their identifiers locally (`huitong risk
 * blocklist hash`) and submit only the hash; the hub hashes the payments'
 * identifiers with the same key to look them up. The list is stored in
 * DATA/risk.db (SQLite WAL, synchronous=FULL: an acknowledged entry
 * survives a crash) and held in memory as a hash set for lookups.
 *
 * One writer; lookups may run on the writer's thread only (the risk
 * engine's, the hub thread).
 */
#ifndef HUITONG_BLOCKLIST_H
#define HUITONG_BLOCKLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "huitong/common.h"

#define HT_BLOCK_KEY_BYTES 32
#define HT_BLOCK_HASH_BYTES 32       /* SM3 */
#define HT_BLOCK_VALUE_BYTES_MAX 256 /* an identifier to hash */
#define HT_BLOCK_REPORTER_BYTES_MAX 56 /* a participant id (registry's) */
#define HT_BLOCK_REASON_BYTES_MAX 64
#define HT_BLOCKLIST_ENTRIES_MAX (1u << 24)

enum ht_block_kind {
	HT_BLOCK_ACCOUNT = 1, /* "account": a party reference, bankA:c1001 */
	HT_BLOCK_DEVICE = 2,  /* "device" */
	HT_BLOCK_PHONE = 3,   /* "phone": E.164, +8613800000000 */
};

/* Static name of a kind, NULL when k is not one. */
const char *ht_block_kind_name(enum ht_block_kind k);
/* The kind named s[0..len): HT_OK or HT_ERR_INVALID. */
enum ht_err ht_block_kind_parse(const char *s, size_t len,
				enum ht_block_kind *out);

/*
 * The keyed hash of one identifier: HMAC-SM3(key, "huitong-block-v1" ||
 * u8 kind || value). HT_ERR_INVALID for an unknown kind or an empty value,
 * HT_ERR_LIMIT above HT_BLOCK_VALUE_BYTES_MAX, HT_ERR_CRYPTO.
 */
enum ht_err ht_block_hash(const uint8_t key[HT_BLOCK_KEY_BYTES],
			  enum ht_block_kind kind, const char *value,
			  size_t len, uint8_t out[HT_BLOCK_HASH_BYTES]);

/*
 * A keyed hasher for the hot path: the same hashes as ht_block_hash, with
 * the key's HMAC pads digested once at creation, so one hash costs two
 * or three SM3 compressions and no algorithm fetch. One thread uses a
 * hasher (it keeps its digest contexts).
 */
struct ht_block_hasher;
/* HT_ERR_NOMEM, HT_ERR_CRYPTO. */
enum ht_err ht_block_hasher_new(const uint8_t key[HT_BLOCK_KEY_BYTES],
				struct ht_block_hasher **out);
void ht_block_hasher_free(struct ht_block_hasher *h);
/* As ht_block_hash, under the hasher's key. */
enum ht_err ht_block_hasher_hash(struct ht_block_hasher *h,
				 enum ht_block_kind kind, const char *value,
				 size_t len, uint8_t out[HT_BLOCK_HASH_BYTES]);

/*
 * The hub's block-list key, DATA/risk.key (hex, one line). With create,
 * a missing key is generated (random, written with mode 0600 and fsync'd,
 * never replaced). HT_ERR_NOT_FOUND when it is missing and not to be
 * created, HT_ERR_CORRUPT when the file is not 64 hex digits, HT_ERR_IO.
 */
enum ht_err ht_block_key_load(const char *data_dir, bool create,
			      uint8_t key[HT_BLOCK_KEY_BYTES]);

struct ht_block_entry {
	enum ht_block_kind kind;
	uint8_t hash[HT_BLOCK_HASH_BYTES];
	char reporter[HT_BLOCK_REPORTER_BYTES_MAX + 1];
	char reason[HT_BLOCK_REASON_BYTES_MAX + 1];
	uint64_t added_ns; /* wall clock */
};

struct ht_blocklist;

/* Open (creating if needed) DATA/risk.db and load every entry.
 * HT_ERR_IO, HT_ERR_CORRUPT (a stored row out of bounds), HT_ERR_LIMIT
 * (more than HT_BLOCKLIST_ENTRIES_MAX), HT_ERR_NOMEM. */
enum ht_err ht_blocklist_open(const char *data_dir, struct ht_blocklist **out);
void ht_blocklist_close(struct ht_blocklist *bl);

/*
 * Add e durably (committed before this returns). An entry of the same
 * kind and hash already there is kept as it was (HT_ERR_EXISTS): the
 * first report stands. HT_ERR_INVALID for an unknown kind, an empty or
 * too long reporter or reason with control characters; HT_ERR_LIMIT when
 * the list is full; HT_ERR_IO.
 */
enum ht_err ht_blocklist_add(struct ht_blocklist *bl,
			     const struct ht_block_entry *e);

/*
 * Add n entries durably in one transaction (one fsync): results[i] is
 * what ht_blocklist_add would answer for e[i] (HT_OK, HT_ERR_EXISTS,
 * HT_ERR_INVALID, HT_ERR_LIMIT), an entry given twice being HT_ERR_EXISTS
 * the second time. Returns HT_OK when the transaction committed (whatever
 * the per-entry results), HT_ERR_IO (nothing added), HT_ERR_NOMEM.
 */
enum ht_err ht_blocklist_add_many(struct ht_blocklist *bl,
				  const struct ht_block_entry *e, size_t n,
				  enum ht_err *results);

/* Remove the entry (kind, hash) durably: HT_OK, HT_ERR_NOT_FOUND, HT_ERR_IO.
 * Who may remove is the caller's rule. */
enum ht_err ht_blocklist_remove(struct ht_blocklist *bl, enum ht_block_kind kind,
				const uint8_t hash[HT_BLOCK_HASH_BYTES]);

/* Is (kind, hash) listed? O(1). */
bool ht_blocklist_contains(const struct ht_blocklist *bl, enum ht_block_kind kind,
			   const uint8_t hash[HT_BLOCK_HASH_BYTES]);

/* The entry (kind, hash), into *out: HT_OK or HT_ERR_NOT_FOUND. */
enum ht_err ht_blocklist_get(const struct ht_blocklist *bl,
			     enum ht_block_kind kind,
			     const uint8_t hash[HT_BLOCK_HASH_BYTES],
			     struct ht_block_entry *out);

size_t ht_blocklist_count(const struct ht_blocklist *bl);
/* Entries of one kind (0 for a kind that is not one). */
size_t ht_blocklist_count_kind(const struct ht_blocklist *bl,
			       enum ht_block_kind kind);

/* Every entry in the order they were added; stops at the first non-zero
 * return of fn, which it returns. */
int ht_blocklist_each(const struct ht_blocklist *bl,
		      int (*fn)(void *ctx, const struct ht_block_entry *e),
		      void *ctx);

#endif

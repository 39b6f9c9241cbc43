/*
 * blocklist.c — shared block lists as keyed hashes (blocklist.h).
 *
 * Owner: risk. Entries live in an array in the order they were added
 * (a removed one is marked dead and may be revived by a later add of the
 * same key, so positions never move) with an open-addressing index on
 * (kind, hash) beside it. The hash is an HMAC output, uniformly random,
 * so its first 8 bytes are the index hash as they are. Storage: one
 * SQLite table in DATA/risk.db, each add (of one entry or a batch) and
 * each removal its own transaction with synchronous=FULL.
 */
#include "huitong/blocklist.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "huitong/crypto.h"

#define DOMAIN "huitong-block-v1"

static const char *const kind_names[] = {NULL, "account", "device", "phone"};
#define KINDS (sizeof kind_names / sizeof kind_names[0])

const char *ht_block_kind_name(enum ht_block_kind k)
{
	return (unsigned)k < KINDS ? kind_names[k] : NULL;
}

enum ht_err ht_block_kind_parse(const char *s, size_t len,
				enum ht_block_kind *out)
{
	for (unsigned k = 1; k < KINDS; k++)
		if (strlen(kind_names[k]) == len && !memcmp(kind_names[k], s, len)) {
			*out = (enum ht_block_kind)k;
			return HT_OK;
		}
	return HT_ERR_INVALID;
}

/* ---- the hasher ------------------------------------------------------------------ */

struct ht_block_hasher {
	struct ht_hmac_sm3 *mac;
};

void ht_block_hasher_free(struct ht_block_hasher *h)
{
	if (!h)
		return;
	ht_hmac_sm3_free(h->mac);
	free(h);
}

enum ht_err ht_block_hasher_new(const uint8_t key[HT_BLOCK_KEY_BYTES],
				struct ht_block_hasher **out)
{
	struct ht_block_hasher *h = calloc(1, sizeof *h);
	if (!h)
		return HT_ERR_NOMEM;
	enum ht_err err = ht_hmac_sm3_new(key, HT_BLOCK_KEY_BYTES, &h->mac);
	if (err) {
		free(h);
		return err;
	}
	*out = h;
	return HT_OK;
}

enum ht_err ht_block_hasher_hash(struct ht_block_hasher *h,
				 enum ht_block_kind kind, const char *value,
				 size_t len, uint8_t out[HT_BLOCK_HASH_BYTES])
{
	if (!ht_block_kind_name(kind) || !value || !len)
		return HT_ERR_INVALID;
	if (len > HT_BLOCK_VALUE_BYTES_MAX)
		return HT_ERR_LIMIT;
	uint8_t k = (uint8_t)kind;
	struct ht_iov parts[] = {{DOMAIN, sizeof DOMAIN - 1}, {&k, 1},
				 {value, len}};
	return ht_hmac_sm3(h->mac, parts, 3, out);
}

enum ht_err ht_block_hash(const uint8_t key[HT_BLOCK_KEY_BYTES],
			  enum ht_block_kind kind, const char *value,
			  size_t len, uint8_t out[HT_BLOCK_HASH_BYTES])
{
	/* one-off: a hasher for one hash (the hot path keeps its own) */
	struct ht_block_hasher *h = NULL;
	enum ht_err err = ht_block_hasher_new(key, &h);
	if (!err)
		err = ht_block_hasher_hash(h, kind, value, len, out);
	ht_block_hasher_free(h);
	return err;
}

/* ---- the key file ---------------------------------------------------------- */

_Static_assert(HT_BLOCK_KEY_BYTES == HT_KEY_FILE_BYTES,
	       "the block-list key is a key file's");

enum ht_err ht_block_key_load(const char *data_dir, bool create,
			      uint8_t key[HT_BLOCK_KEY_BYTES])
{
	char path[4096];
	snprintf(path, sizeof path, "%s/risk.key", data_dir);
	return ht_key_file_load(path, create, key);
}

/* ---- the set ------------------------------------------------------------------- */

struct rec {
	struct ht_block_entry e;
	bool dead; /* removed; its key stays so a re-add revives it here */
};

struct ht_blocklist {
	sqlite3 *db;
	struct rec *r;
	size_t n, cap, live;
	size_t live_kind[KINDS];  /* live entries by kind */
	uint32_t *index;          /* record position + 1; 0 empty */
	size_t slots;             /* power of two, at most 2/3 full */
};

static size_t slot_of(const struct ht_blocklist *bl, enum ht_block_kind kind,
		      const uint8_t hash[HT_BLOCK_HASH_BYTES])
{
	uint64_t h;
	memcpy(&h, hash, sizeof h);
	return (size_t)((h ^ (uint64_t)kind * 0x9e3779b97f4a7c15ull) &
			(bl->slots - 1));
}

/* The slot holding (kind, hash), dead or alive (*found), or the empty slot
 * where it would go. */
static size_t find(const struct ht_blocklist *bl, enum ht_block_kind kind,
		   const uint8_t hash[HT_BLOCK_HASH_BYTES], bool *found)
{
	for (size_t i = slot_of(bl, kind, hash);; i = (i + 1) & (bl->slots - 1)) {
		uint32_t v = bl->index[i];
		if (!v) {
			*found = false;
			return i;
		}
		const struct ht_block_entry *e = &bl->r[v - 1].e;
		if (e->kind == kind && !memcmp(e->hash, hash, HT_BLOCK_HASH_BYTES)) {
			*found = true;
			return i;
		}
	}
}

static enum ht_err grow_index(struct ht_blocklist *bl)
{
	size_t slots = bl->slots ? 2 * bl->slots : 1024;
	uint32_t *idx = calloc(slots, sizeof *idx);
	if (!idx)
		return HT_ERR_NOMEM;
	free(bl->index);
	bl->index = idx;
	bl->slots = slots;
	for (size_t k = 0; k < bl->n; k++) {
		bool found;
		size_t i = find(bl, bl->r[k].e.kind, bl->r[k].e.hash, &found);
		bl->index[i] = (uint32_t)(k + 1);
	}
	return HT_OK;
}

/* Append e in memory (not stored). */
static enum ht_err put(struct ht_blocklist *bl, const struct ht_block_entry *e)
{
	bool found;
	if (bl->n >= HT_BLOCKLIST_ENTRIES_MAX)
		return HT_ERR_LIMIT;
	if (3 * (bl->n + 1) > 2 * bl->slots) {
		enum ht_err err = grow_index(bl);
		if (err)
			return err;
	}
	size_t i = find(bl, e->kind, e->hash, &found);
	if (found) {
		struct rec *r = &bl->r[bl->index[i] - 1];
		if (!r->dead)
			return HT_ERR_EXISTS;
		r->e = *e;
		r->dead = false;
		bl->live++;
		bl->live_kind[e->kind]++;
		return HT_OK;
	}
	if (bl->n == bl->cap) {
		size_t cap = bl->cap ? 2 * bl->cap : 256;
		struct rec *g = realloc(bl->r, cap * sizeof *g);
		if (!g)
			return HT_ERR_NOMEM;
		bl->r = g;
		bl->cap = cap;
	}
	bl->r[bl->n] = (struct rec){*e, false};
	bl->index[i] = (uint32_t)(++bl->n);
	bl->live++;
	bl->live_kind[e->kind]++;
	return HT_OK;
}

static bool text_ok(const char *s, size_t max, bool may_be_empty)
{
	size_t n = strnlen(s, max + 1);
	if (n > max || (!n && !may_be_empty))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static enum ht_err exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? HT_OK
								    : HT_ERR_IO;
}

static enum ht_err load(struct ht_blocklist *bl)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(bl->db, "SELECT kind, hash, reporter, reason,"
				       " added_ns FROM blocklist ORDER BY seq",
			       -1, &st, NULL) != SQLITE_OK)
		return HT_ERR_IO;
	enum ht_err err = HT_OK;
	int rc;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ht_block_entry e = {0};
		int kind = sqlite3_column_int(st, 0);
		const void *h = sqlite3_column_blob(st, 1);
		const unsigned char *rep = sqlite3_column_text(st, 2);
		const unsigned char *why = sqlite3_column_text(st, 3);
		if (!ht_block_kind_name((enum ht_block_kind)kind) || !h ||
		    sqlite3_column_bytes(st, 1) != HT_BLOCK_HASH_BYTES || !rep ||
		    !why || strlen((const char *)rep) > HT_BLOCK_REPORTER_BYTES_MAX ||
		    strlen((const char *)why) > HT_BLOCK_REASON_BYTES_MAX) {
			err = HT_ERR_CORRUPT;
			break;
		}
		e.kind = (enum ht_block_kind)kind;
		memcpy(e.hash, h, HT_BLOCK_HASH_BYTES);
		strcpy(e.reporter, (const char *)rep);
		strcpy(e.reason, (const char *)why);
		e.added_ns = (uint64_t)sqlite3_column_int64(st, 4);
		err = put(bl, &e);
		if (err == HT_ERR_EXISTS)
			err = HT_ERR_CORRUPT; /* UNIQUE makes this impossible */
	}
	if (!err && rc != SQLITE_DONE)
		err = HT_ERR_IO;
	sqlite3_finalize(st);
	return err;
}

enum ht_err ht_blocklist_open(const char *data_dir, struct ht_blocklist **out)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/risk.db", data_dir);
	struct ht_blocklist *bl = calloc(1, sizeof *bl);
	if (!bl)
		return HT_ERR_NOMEM;
	enum ht_err err = grow_index(bl);
	if (!err && sqlite3_open_v2(path, &bl->db,
				    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
					    SQLITE_OPEN_NOMUTEX,
				    NULL) != SQLITE_OK)
		err = HT_ERR_IO;
	if (!err)
		err = exec(bl->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
				   " PRAGMA busy_timeout=5000;"
				   " CREATE TABLE IF NOT EXISTS blocklist ("
				   " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
				   " kind INTEGER NOT NULL, hash BLOB NOT NULL,"
				   " reporter TEXT NOT NULL, reason TEXT NOT NULL,"
				   " added_ns INTEGER NOT NULL,"
				   " UNIQUE (kind, hash));");
	if (!err)
		err = load(bl);
	if (err) {
		ht_blocklist_close(bl);
		return err;
	}
	*out = bl;
	return HT_OK;
}

void ht_blocklist_close(struct ht_blocklist *bl)
{
	if (!bl)
		return;
	sqlite3_close(bl->db);
	free(bl->r);
	free(bl->index);
	free(bl);
}

/* What ht_blocklist_add would answer before storing e. */
static enum ht_err add_check(const struct ht_blocklist *bl,
			     const struct ht_block_entry *e)
{
	if (!ht_block_kind_name(e->kind) ||
	    !text_ok(e->reporter, HT_BLOCK_REPORTER_BYTES_MAX, false) ||
	    !text_ok(e->reason, HT_BLOCK_REASON_BYTES_MAX, true))
		return HT_ERR_INVALID;
	if (ht_blocklist_contains(bl, e->kind, e->hash))
		return HT_ERR_EXISTS;
	if (bl->live >= HT_BLOCKLIST_ENTRIES_MAX)
		return HT_ERR_LIMIT;
	return HT_OK;
}

enum ht_err ht_blocklist_add(struct ht_blocklist *bl,
			     const struct ht_block_entry *e)
{
	enum ht_err result;
	enum ht_err err = ht_blocklist_add_many(bl, e, 1, &result);
	return err ? err : result;
}

/* Is e[i] the same key as an earlier accepted one of e[0..i)? */
static bool given_before(const struct ht_block_entry *e, const enum ht_err *r,
			 size_t i)
{
	for (size_t k = 0; k < i; k++)
		if (!r[k] && e[k].kind == e[i].kind &&
		    !memcmp(e[k].hash, e[i].hash, HT_BLOCK_HASH_BYTES))
			return true;
	return false;
}

enum ht_err ht_blocklist_add_many(struct ht_blocklist *bl,
				  const struct ht_block_entry *e, size_t n,
				  enum ht_err *results)
{
	size_t fresh = 0;
	for (size_t i = 0; i < n; i++) {
		results[i] = add_check(bl, &e[i]);
		/* a repeat within the request: quadratic only over small n;
		 * larger requests are checked through the index after put */
		if (!results[i] && n <= 64 && given_before(e, results, i))
			results[i] = HT_ERR_EXISTS;
		if (!results[i] && bl->live + fresh >= HT_BLOCKLIST_ENTRIES_MAX)
			results[i] = HT_ERR_LIMIT;
		fresh += !results[i];
	}
	if (!fresh)
		return HT_OK;
	sqlite3_stmt *st = NULL;
	enum ht_err err = exec(bl->db, "BEGIN IMMEDIATE");
	if (!err && sqlite3_prepare_v2(bl->db, "INSERT OR IGNORE INTO blocklist"
					       " (kind, hash, reporter, reason,"
					       " added_ns) VALUES (?, ?, ?, ?, ?)",
				       -1, &st, NULL) != SQLITE_OK)
		err = HT_ERR_IO;
	for (size_t i = 0; !err && i < n; i++) {
		if (results[i])
			continue;
		sqlite3_bind_int(st, 1, (int)e[i].kind);
		sqlite3_bind_blob(st, 2, e[i].hash, HT_BLOCK_HASH_BYTES,
				  SQLITE_STATIC);
		sqlite3_bind_text(st, 3, e[i].reporter, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, e[i].reason, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)e[i].added_ns);
		if (sqlite3_step(st) != SQLITE_DONE)
			err = HT_ERR_IO;
		else if (!sqlite3_changes(bl->db))
			results[i] = HT_ERR_EXISTS; /* twice in this request */
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (!err)
		err = exec(bl->db, "COMMIT");
	if (err) {
		(void)exec(bl->db, "ROLLBACK");
		return err;
	}
	/* stored: now the memory (it cannot refuse what it holds room for
	 * but for memory; the next open reloads the rows either way) */
	for (size_t i = 0; i < n; i++) {
		if (results[i])
			continue;
		enum ht_err perr = put(bl, &e[i]);
		if (perr == HT_ERR_NOMEM)
			return perr;
		results[i] = perr;
	}
	return HT_OK;
}

enum ht_err ht_blocklist_remove(struct ht_blocklist *bl, enum ht_block_kind kind,
				const uint8_t hash[HT_BLOCK_HASH_BYTES])
{
	bool found;
	size_t i = find(bl, kind, hash, &found);
	if (!found || bl->r[bl->index[i] - 1].dead)
		return HT_ERR_NOT_FOUND;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(bl->db, "DELETE FROM blocklist WHERE kind = ? AND"
				       " hash = ?", -1, &st, NULL) != SQLITE_OK)
		return HT_ERR_IO;
	sqlite3_bind_int(st, 1, (int)kind);
	sqlite3_bind_blob(st, 2, hash, HT_BLOCK_HASH_BYTES, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return HT_ERR_IO;
	bl->r[bl->index[i] - 1].dead = true;
	bl->live--;
	bl->live_kind[kind]--;
	return HT_OK;
}

bool ht_blocklist_contains(const struct ht_blocklist *bl, enum ht_block_kind kind,
			   const uint8_t hash[HT_BLOCK_HASH_BYTES])
{
	bool found;
	size_t i = find(bl, kind, hash, &found);
	return found && !bl->r[bl->index[i] - 1].dead;
}

enum ht_err ht_blocklist_get(const struct ht_blocklist *bl,
			     enum ht_block_kind kind,
			     const uint8_t hash[HT_BLOCK_HASH_BYTES],
			     struct ht_block_entry *out)
{
	bool found;
	size_t i = find(bl, kind, hash, &found);
	if (!found || bl->r[bl->index[i] - 1].dead)
		return HT_ERR_NOT_FOUND;
	*out = bl->r[bl->index[i] - 1].e;
	return HT_OK;
}

size_t ht_blocklist_count(const struct ht_blocklist *bl)
{
	return bl->live;
}

size_t ht_blocklist_count_kind(const struct ht_blocklist *bl,
			       enum ht_block_kind kind)
{
	return ht_block_kind_name(kind) ? bl->live_kind[kind] : 0;
}

int ht_blocklist_each(const struct ht_blocklist *bl,
		      int (*fn)(void *ctx, const struct ht_block_entry *e),
		      void *ctx)
{
	for (size_t k = 0; k < bl->n; k++) {
		if (bl->r[k].dead)
			continue;
		int rc = fn(ctx, &bl->r[k].e);
		if (rc)
			return rc;
	}
	return 0;
}

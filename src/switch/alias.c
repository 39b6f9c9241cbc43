/*
 * alias.c — the alias directory (alias.h).
 *
 * Owner: switch. Entries live in an array (a removed one is marked dead;
 * its slot is reused by a later registration of the same alias) with an
 * open-addressing index on the keyed hash beside it; the hash is an HMAC
 * output, so its first 8 bytes index it as they are. DATA/alias.db holds
 * the same rows; every change is one transaction with synchronous=FULL,
 * or part of the caller's batch.
 */
#include "huitong/alias.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "huitong/crypto.h"
#include "sqltx.h"

#define DOMAIN "huitong-alias-v1"
#define KEY_BYTES HT_KEY_FILE_BYTES

static const char *const kind_names[] = {NULL, "mobile", "email", "national_id",
					 "merchant_id"};
#define KINDS (sizeof kind_names / sizeof kind_names[0])

struct rec {
	uint8_t hash[HT_ALIAS_HASH_BYTES];
	struct ht_alias_target t;
	bool dead;
};

struct ht_alias_dir {
	sqlite3 *db;
	struct ht_hmac_sm3 *mac;
	struct rec *r;
	size_t n, cap, live;
	uint32_t *index; /* record + 1; 0 empty */
	size_t slots;    /* power of two, at most 2/3 full */
	bool batch;
};

const char *ht_alias_kind_name(enum ht_alias_kind k)
{
	return (unsigned)k < KINDS ? kind_names[k] : NULL;
}

enum ht_err ht_alias_kind_parse(const char *s, size_t len,
				enum ht_alias_kind *out)
{
	for (unsigned k = 1; k < KINDS; k++)
		if (strlen(kind_names[k]) == len && !memcmp(kind_names[k], s, len)) {
			*out = (enum ht_alias_kind)k;
			return HT_OK;
		}
	return HT_ERR_INVALID;
}

/* ---- values --------------------------------------------------------------------- */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* GB 11643: the check character of the first 17 digits. */
static char id_check(const char *d)
{
	static const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
	static const char map[] = "10X98765432";
	int sum = 0;
	for (int i = 0; i < 17; i++)
		sum += (d[i] - '0') * w[i];
	return map[sum % 11];
}

enum ht_err ht_alias_normalise(enum ht_alias_kind kind, const char *v,
			       size_t len, char *out, const char **why)
{
	static const char *dummy;
	if (!why)
		why = &dummy;
	*why = "not an alias kind";
	if (!v || !len || len > HT_ALIAS_VALUE_MAX) {
		*why = "empty or longer than 254 bytes";
		return HT_ERR_INVALID;
	}
	switch (kind) {
	case HT_ALIAS_MOBILE:
		*why = "a mobile number in E.164: '+' and 8..15 digits";
		if (len < 9 || len > 16 || v[0] != '+' || v[1] == '0')
			return HT_ERR_INVALID;
		for (size_t i = 1; i < len; i++)
			if (!is_digit(v[i]))
				return HT_ERR_INVALID;
		memcpy(out, v, len);
		break;
	case HT_ALIAS_EMAIL: {
		*why = "an e-mail address: local@domain, printable ASCII";
		const char *at = memchr(v, '@', len);
		if (len < 3 || !at || at == v || at == v + len - 1 ||
		    memchr(at + 1, '@', (size_t)(v + len - at - 1)))
			return HT_ERR_INVALID;
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)v[i];
			if (c <= 0x20 || c >= 0x7f)
				return HT_ERR_INVALID;
			out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		break;
	}
	case HT_ALIAS_NATIONAL_ID:
		*why = "a national id: 17 digits and its check character";
		if (len != 18)
			return HT_ERR_INVALID;
		for (size_t i = 0; i < 17; i++)
			if (!is_digit(v[i]))
				return HT_ERR_INVALID;
		memcpy(out, v, 18);
		if (out[17] == 'x')
			out[17] = 'X';
		if (out[17] != id_check(out)) {
			*why = "a national id whose check character is wrong";
			return HT_ERR_INVALID;
		}
		break;
	case HT_ALIAS_MERCHANT_ID:
		*why = "a merchant id: 1..64 of A-Z a-z 0-9 : . _ -";
		if (len > 64)
			return HT_ERR_INVALID;
		for (size_t i = 0; i < len; i++) {
			char c = v[i];
			if (!is_digit(c) && !(c >= 'a' && c <= 'z') &&
			    !(c >= 'A' && c <= 'Z') && (!c || !strchr(":._-", c)))
				return HT_ERR_INVALID;
		}
		memcpy(out, v, len);
		break;
	default:
		return HT_ERR_INVALID;
	}
	out[len] = '\0';
	*why = NULL;
	return HT_OK;
}

static enum ht_err alias_hash(const struct ht_alias_dir *d,
			      enum ht_alias_kind kind, const char *value,
			      size_t len, uint8_t out[HT_ALIAS_HASH_BYTES])
{
	char norm[HT_ALIAS_VALUE_MAX + 1];
	enum ht_err err = ht_alias_normalise(kind, value, len, norm, NULL);
	if (err)
		return err;
	uint8_t k = (uint8_t)kind;
	struct ht_iov parts[] = {{DOMAIN, sizeof DOMAIN - 1}, {&k, 1},
				 {norm, len}};
	err = ht_hmac_sm3(d->mac, parts, 3, out);
	OPENSSL_cleanse(norm, sizeof norm);
	return err;
}

static bool text_ok(const char *s, size_t max)
{
	size_t n = s ? strnlen(s, max + 1) : 0;
	if (!n || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

/* ---- the index -------------------------------------------------------------------- */

static size_t find(const struct ht_alias_dir *d, const uint8_t *h, bool *found)
{
	uint64_t x;
	memcpy(&x, h, sizeof x);
	for (size_t i = (size_t)x & (d->slots - 1);; i = (i + 1) & (d->slots - 1)) {
		uint32_t v = d->index[i];
		if (!v) {
			*found = false;
			return i;
		}
		if (!memcmp(d->r[v - 1].hash, h, HT_ALIAS_HASH_BYTES)) {
			*found = true;
			return i;
		}
	}
}

static enum ht_err grow(struct ht_alias_dir *d)
{
	size_t slots = d->slots ? 2 * d->slots : 1024;
	uint32_t *idx = calloc(slots, sizeof *idx);
	if (!idx)
		return HT_ERR_NOMEM;
	free(d->index);
	d->index = idx;
	d->slots = slots;
	for (size_t k = 0; k < d->n; k++) {
		bool found;
		d->index[find(d, d->r[k].hash, &found)] = (uint32_t)(k + 1);
	}
	return HT_OK;
}

/* Put (hash, t) in memory: a new record or a dead one revived. */
static enum ht_err put(struct ht_alias_dir *d, const uint8_t *h,
		       const struct ht_alias_target *t)
{
	bool found;
	if (3 * (d->n + 1) > 2 * d->slots) {
		enum ht_err err = grow(d);
		if (err)
			return err;
	}
	size_t i = find(d, h, &found);
	if (found) {
		struct rec *r = &d->r[d->index[i] - 1];
		if (!r->dead)
			return HT_ERR_EXISTS;
		r->t = *t;
		r->dead = false;
		d->live++;
		return HT_OK;
	}
	if (d->n >= HT_ALIAS_ENTRIES_MAX)
		return HT_ERR_LIMIT;
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 1024;
		struct rec *g = realloc(d->r, cap * sizeof *g);
		if (!g)
			return HT_ERR_NOMEM;
		d->r = g;
		d->cap = cap;
	}
	d->r[d->n].dead = false;
	memcpy(d->r[d->n].hash, h, HT_ALIAS_HASH_BYTES);
	d->r[d->n].t = *t;
	d->index[i] = (uint32_t)(++d->n);
	d->live++;
	return HT_OK;
}

static struct rec *live_rec(const struct ht_alias_dir *d, const uint8_t *h)
{
	bool found;
	size_t i = find(d, h, &found);
	struct rec *r = found ? &d->r[d->index[i] - 1] : NULL;
	return r && !r->dead ? r : NULL;
}

/* ---- storage -------------------------------------------------------------------- */


static enum ht_err load(struct ht_alias_dir *d)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(d->db, "SELECT hash, participant, account,"
				      " updated_ms FROM aliases", -1, &st, NULL))
		return HT_ERR_IO;
	enum ht_err err = HT_OK;
	int s;
	while (!err && (s = sqlite3_step(st)) == SQLITE_ROW) {
		struct ht_alias_target t = {0};
		const void *h = sqlite3_column_blob(st, 0);
		const char *p = (const char *)sqlite3_column_text(st, 1);
		const char *a = (const char *)sqlite3_column_text(st, 2);
		if (!h || sqlite3_column_bytes(st, 0) != HT_ALIAS_HASH_BYTES ||
		    !text_ok(p, HT_ALIAS_PARTICIPANT_MAX) ||
		    !text_ok(a, HT_ALIAS_ACCOUNT_MAX)) {
			err = HT_ERR_CORRUPT;
			break;
		}
		snprintf(t.participant, sizeof t.participant, "%s", p);
		snprintf(t.account, sizeof t.account, "%s", a);
		t.updated_ms = sqlite3_column_int64(st, 3);
		err = put(d, h, &t);
		if (err == HT_ERR_EXISTS)
			err = HT_ERR_CORRUPT;
	}
	if (!err && s != SQLITE_DONE)
		err = HT_ERR_IO;
	sqlite3_finalize(st);
	return err;
}

enum ht_err ht_alias_open(const char *data_dir, struct ht_alias_dir **out,
			  char *err, size_t err_size)
{
	if (err_size)
		err[0] = '\0';
	struct ht_alias_dir *d = calloc(1, sizeof *d);
	if (!d)
		return HT_ERR_NOMEM;
	uint8_t key[KEY_BYTES];
	char kpath[4200];
	snprintf(kpath, sizeof kpath, "%s/alias.key", data_dir);
	enum ht_err rc = ht_key_file_load(kpath, true, key);
	if (rc)
		snprintf(err, err_size, "%s/alias.key: %s", data_dir,
			 rc == HT_ERR_CORRUPT ? "not 64 hex digits" : ht_strerror(rc));
	if (!rc)
		rc = ht_hmac_sm3_new(key, KEY_BYTES, &d->mac);
	OPENSSL_cleanse(key, sizeof key);
	if (!rc)
		rc = grow(d);
	char path[4200];
	snprintf(path, sizeof path, "%s/alias.db", data_dir);
	if (!rc && sqlite3_open_v2(path, &d->db,
				   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
					   SQLITE_OPEN_NOMUTEX, NULL))
		rc = HT_ERR_IO;
	if (!rc)
		rc = sqltx_exec(d->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
				 " PRAGMA busy_timeout=5000;"
				 " CREATE TABLE IF NOT EXISTS aliases (hash BLOB"
				 " PRIMARY KEY, kind INTEGER NOT NULL, participant"
				 " TEXT NOT NULL, account TEXT NOT NULL, updated_ms"
				 " INTEGER NOT NULL);");
	if (!rc)
		rc = load(d);
	if (rc && err_size && !err[0])
		snprintf(err, err_size, "%s: %s", path, ht_strerror(rc));
	if (rc) {
		ht_alias_close(d);
		return rc;
	}
	*out = d;
	return HT_OK;
}

void ht_alias_close(struct ht_alias_dir *d)
{
	if (!d)
		return;
	sqlite3_close(d->db);
	ht_hmac_sm3_free(d->mac);
	free(d->r);
	free(d->index);
	free(d);
}

enum ht_err ht_alias_batch_begin(struct ht_alias_dir *d)
{
	return sqltx_batch_begin(d->db, &d->batch);
}

enum ht_err ht_alias_batch_commit(struct ht_alias_dir *d)
{
	return sqltx_batch_commit(d->db, &d->batch);
}

/* One statement with the row's values (sql's parameters: hash, kind,
 * participant, account, updated_ms, in the order the SQL names them). */
static enum ht_err store(struct ht_alias_dir *d, const char *sql,
			 const uint8_t *h, enum ht_alias_kind kind,
			 const struct ht_alias_target *t)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v3(d->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
			       NULL))
		return HT_ERR_IO;
	sqlite3_bind_blob(st, 1, h, HT_ALIAS_HASH_BYTES, SQLITE_STATIC);
	if (t) {
		sqlite3_bind_int(st, 2, (int)kind);
		sqlite3_bind_text(st, 3, t->participant, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, t->account, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, t->updated_ms);
	}
	enum ht_err rc = sqlite3_step(st) == SQLITE_DONE ? HT_OK : HT_ERR_IO;
	sqlite3_finalize(st);
	return rc;
}

/* ---- changes -------------------------------------------------------------------- */

enum ht_err ht_alias_register(struct ht_alias_dir *d, enum ht_alias_kind kind,
			      const char *value, size_t len,
			      const char *participant, const char *account,
			      int64_t now_ms)
{
	uint8_t h[HT_ALIAS_HASH_BYTES];
	if (!text_ok(participant, HT_ALIAS_PARTICIPANT_MAX) ||
	    !text_ok(account, HT_ALIAS_ACCOUNT_MAX))
		return HT_ERR_INVALID;
	enum ht_err rc = alias_hash(d, kind, value, len, h);
	if (rc)
		return rc;
	if (live_rec(d, h))
		return HT_ERR_EXISTS;
	if (d->live >= HT_ALIAS_ENTRIES_MAX)
		return HT_ERR_LIMIT;
	struct ht_alias_target t = {.updated_ms = now_ms};
	snprintf(t.participant, sizeof t.participant, "%s", participant);
	snprintf(t.account, sizeof t.account, "%s", account);
	rc = sqltx_begin(d->db, d->batch);
	if (!rc)
		rc = store(d, "INSERT INTO aliases (hash, kind, participant,"
			      " account, updated_ms) VALUES (?,?,?,?,?)",
			   h, kind, &t);
	rc = sqltx_end(d->db, d->batch, rc);
	/* stored: now memory (only memory can fail; a reopen reloads it) */
	return rc ? rc : put(d, h, &t);
}

/* The live record of kind:value owned by participant. */
static enum ht_err owned(struct ht_alias_dir *d, enum ht_alias_kind kind,
			 const char *value, size_t len, const char *participant,
			 uint8_t *h, struct rec **out)
{
	enum ht_err rc = alias_hash(d, kind, value, len, h);
	if (rc)
		return rc == HT_ERR_INVALID ? HT_ERR_NOT_FOUND : rc;
	*out = live_rec(d, h);
	if (!*out)
		return HT_ERR_NOT_FOUND;
	return participant && !strcmp((*out)->t.participant, participant)
		       ? HT_OK : HT_ERR_FORBIDDEN;
}

enum ht_err ht_alias_update(struct ht_alias_dir *d, enum ht_alias_kind kind,
			    const char *value, size_t len,
			    const char *participant, const char *account,
			    int64_t now_ms)
{
	uint8_t h[HT_ALIAS_HASH_BYTES];
	struct rec *r;
	if (!text_ok(account, HT_ALIAS_ACCOUNT_MAX))
		return HT_ERR_INVALID;
	enum ht_err rc = owned(d, kind, value, len, participant, h, &r);
	if (rc)
		return rc;
	struct ht_alias_target t = r->t;
	snprintf(t.account, sizeof t.account, "%s", account);
	t.updated_ms = now_ms;
	rc = sqltx_begin(d->db, d->batch);
	if (!rc)
		rc = store(d, "UPDATE aliases SET kind = ?2, participant = ?3,"
			      " account = ?4, updated_ms = ?5 WHERE hash = ?1",
			   h, kind, &t);
	rc = sqltx_end(d->db, d->batch, rc);
	if (!rc)
		r->t = t;
	return rc;
}

enum ht_err ht_alias_remove(struct ht_alias_dir *d, enum ht_alias_kind kind,
			    const char *value, size_t len,
			    const char *participant)
{
	uint8_t h[HT_ALIAS_HASH_BYTES];
	struct rec *r;
	enum ht_err rc = owned(d, kind, value, len, participant, h, &r);
	if (rc)
		return rc;
	rc = sqltx_begin(d->db, d->batch);
	if (!rc)
		rc = store(d, "DELETE FROM aliases WHERE hash = ?", h, kind, NULL);
	rc = sqltx_end(d->db, d->batch, rc);
	if (!rc) {
		r->dead = true;
		d->live--;
	}
	return rc;
}

enum ht_err ht_alias_lookup(const struct ht_alias_dir *d,
			    enum ht_alias_kind kind, const char *value,
			    size_t len, struct ht_alias_target *out)
{
	uint8_t h[HT_ALIAS_HASH_BYTES];
	enum ht_err rc = alias_hash(d, kind, value, len, h);
	if (rc)
		return rc == HT_ERR_INVALID ? HT_ERR_NOT_FOUND : rc;
	const struct rec *r = live_rec(d, h);
	if (!r)
		return HT_ERR_NOT_FOUND;
	*out = r->t;
	return HT_OK;
}

size_t ht_alias_count(const struct ht_alias_dir *d)
{
	return d->live;
}

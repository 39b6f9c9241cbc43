/*
 * vault.c — the payment token vault (vault.h).
 *
 * Owner: switch. Tokens, their domains and sealed numbers are rows of
 * DATA/vault.db; the token ranges are also held in memory (few, read at
 * every issue). Keys live in DATA/vault.keys and in memory only while the
 * vault is open (cleansed at close). Every change is one SQLite
 * transaction with synchronous=FULL, or part of the caller's batch.
 */
#include "huitong/vault.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "huitong/crypto.h"
#include "sqltx.h"

#define KEY_BYTES 32
#define MAC_BYTES 32
#define SEALED_MAX (HT_TOKEN_DIGITS_MAX + 28)
#define RANGES_MAX 4096
#define ISSUE_TRIES 64
#define KEY_LINE_MAX 128

struct range {
	char prefix[HT_TOKEN_PREFIX_MAX + 1];
	char participant[HT_VAULT_PARTICIPANT_MAX + 1];
};

struct ht_vault {
	char dir[4096];
	sqlite3 *db;
	uint8_t index_key[KEY_BYTES];
	struct ht_hmac_sm3 *index_mac;  /* HMAC-SM3 under index_key */
	uint8_t keys[HT_VAULT_KEYS_MAX][KEY_BYTES]; /* version v at [v - 1] */
	uint32_t key_count;
	struct range *ranges;
	size_t range_count;
	bool batch;
	sqlite3_stmt *st_get, *st_has_token, *st_has_mac, *st_insert,
		*st_uses, *st_log, *st_state;
};

/* ---- names, Luhn ------------------------------------------------------------------ */

const char *ht_token_state_name(enum ht_token_state s)
{
	switch (s) {
	case HT_TOKEN_ACTIVE: return "active";
	case HT_TOKEN_SUSPENDED: return "suspended";
	case HT_TOKEN_DELETED: return "deleted";
	default: return NULL;
	}
}

const char *ht_token_refusal_name(enum ht_token_refusal r)
{
	static const char *const names[] = {
		"ok", "not_found", "forbidden", "suspended", "deleted",
		"expired", "channel_not_allowed", "merchant_not_allowed",
		"amount_above_maximum", "uses_exhausted"};
	return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "unknown";
}

/* The Luhn sum of digits with the rightmost one doubled when
 * double_last (i.e. when a check digit is still to come). */
static unsigned luhn_sum(const char *d, size_t len, bool double_last)
{
	unsigned sum = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned x = (unsigned)(d[len - 1 - i] - '0');
		if ((i % 2 == 0) == double_last) {
			x *= 2;
			if (x > 9)
				x -= 9;
		}
		sum += x;
	}
	return sum;
}

bool ht_luhn_valid(const char *digits, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (digits[i] < '0' || digits[i] > '9')
			return false;
	return len >= 2 && luhn_sum(digits, len, false) % 10 == 0;
}

char ht_luhn_digit(const char *digits, size_t len)
{
	return (char)('0' + (10 - luhn_sum(digits, len, true) % 10) % 10);
}

static bool all_digits(const char *s, size_t min, size_t max, size_t *len)
{
	size_t n = s ? strnlen(s, max + 1) : 0;
	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	*len = n;
	return true;
}

static bool id_ok(const char *s, size_t max)
{
	size_t n = s ? strnlen(s, max + 1) : 0;
	if (!n || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* ---- the key file ------------------------------------------------------------------- */

static enum ht_err fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return HT_ERR_IO;
	int rc = fsync(fd);
	close(fd);
	return rc ? HT_ERR_IO : HT_OK;
}

/* Write the keys of v to DATA/vault.keys: a temporary file, fsync,
 * rename, fsync of the directory. */
static enum ht_err keys_write(struct ht_vault *v)
{
	char path[4200], tmp[4200];
	snprintf(path, sizeof path, "%s/vault.keys", v->dir);
	snprintf(tmp, sizeof tmp, "%s/.vault.keys.tmp", v->dir);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return HT_ERR_IO;
	char line[KEY_LINE_MAX], hex[2 * KEY_BYTES + 1];
	bool ok = true;
	ht_hex_encode(v->index_key, KEY_BYTES, hex);
	int n = snprintf(line, sizeof line, "index %s\n", hex);
	ok = write(fd, line, (size_t)n) == n;
	for (uint32_t k = 0; ok && k < v->key_count; k++) {
		ht_hex_encode(v->keys[k], KEY_BYTES, hex);
		n = snprintf(line, sizeof line, "%u %s\n", k + 1, hex);
		ok = write(fd, line, (size_t)n) == n;
	}
	OPENSSL_cleanse(line, sizeof line);
	OPENSSL_cleanse(hex, sizeof hex);
	ok = fsync(fd) == 0 && ok;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path)) {
		unlink(tmp);
		return HT_ERR_IO;
	}
	return fsync_dir(v->dir);
}

static enum ht_err keys_read(struct ht_vault *v, char *err, size_t err_size)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/vault.keys", v->dir);
	FILE *f = fopen(path, "r");
	if (!f && errno == ENOENT) {
		/* a fresh vault: an index key and key version 1 */
		enum ht_err rc = ht_random(v->index_key, KEY_BYTES);
		if (!rc)
			rc = ht_random(v->keys[0], KEY_BYTES);
		v->key_count = 1;
		if (!rc)
			rc = keys_write(v);
		if (rc)
			snprintf(err, err_size, "%s: cannot create: %s", path,
				 ht_strerror(rc));
		return rc;
	}
	if (!f) {
		snprintf(err, err_size, "%s: %s", path, strerror(errno));
		return HT_ERR_IO;
	}
	char line[KEY_LINE_MAX];
	unsigned lineno = 0;
	bool index = false;
	enum ht_err rc = HT_OK;
	while (!rc && fgets(line, sizeof line, f)) {
		lineno++;
		char name[16], hex[2 * KEY_BYTES + 2];
		size_t got = 0;
		uint8_t key[KEY_BYTES];
		if (sscanf(line, "%15s %65s", name, hex) != 2 ||
		    strlen(hex) != 2 * KEY_BYTES ||
		    ht_hex_decode(hex, strlen(hex), key, KEY_BYTES, &got) ||
		    got != KEY_BYTES) {
			rc = HT_ERR_CORRUPT;
		} else if (lineno == 1) {
			if (strcmp(name, "index"))
				rc = HT_ERR_CORRUPT;
			memcpy(v->index_key, key, KEY_BYTES);
			index = true;
		} else {
			char want[16];
			snprintf(want, sizeof want, "%u", v->key_count + 1);
			if (strcmp(name, want) || v->key_count >= HT_VAULT_KEYS_MAX)
				rc = HT_ERR_CORRUPT;
			else
				memcpy(v->keys[v->key_count++], key, KEY_BYTES);
		}
		OPENSSL_cleanse(key, sizeof key);
		OPENSSL_cleanse(hex, sizeof hex);
	}
	OPENSSL_cleanse(line, sizeof line);
	bool bad = ferror(f);
	fclose(f);
	if (!rc && (bad || !index || !v->key_count))
		rc = bad ? HT_ERR_IO : HT_ERR_CORRUPT;
	if (rc)
		snprintf(err, err_size, "%s: %s (line %u; want \"index <64 hex>\""
			 " then \"<version> <64 hex>\" lines from 1)", path,
			 rc == HT_ERR_IO ? "read error" : "not a vault key file",
			 lineno);
	return rc;
}

/* ---- open and close ---------------------------------------------------------------- */


static enum ht_err prepare(struct ht_vault *v, sqlite3_stmt **st, const char *sql)
{
	return sqlite3_prepare_v3(v->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
				  NULL) == SQLITE_OK ? HT_OK : HT_ERR_IO;
}

static enum ht_err load_ranges(struct ht_vault *v)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(v->db, "SELECT prefix, participant FROM ranges"
				      " ORDER BY prefix", -1, &st, NULL))
		return HT_ERR_IO;
	enum ht_err rc = HT_OK;
	int s;
	v->range_count = 0;
	while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
		const char *p = (const char *)sqlite3_column_text(st, 0);
		const char *who = (const char *)sqlite3_column_text(st, 1);
		size_t n;
		if (v->range_count >= RANGES_MAX)
			rc = HT_ERR_LIMIT;
		else if (!all_digits(p, HT_TOKEN_PREFIX_MIN, HT_TOKEN_PREFIX_MAX,
				     &n) ||
			 !id_ok(who, HT_VAULT_PARTICIPANT_MAX))
			rc = HT_ERR_CORRUPT;
		else {
			struct range *r = &v->ranges[v->range_count++];
			snprintf(r->prefix, sizeof r->prefix, "%s", p);
			snprintf(r->participant, sizeof r->participant, "%s", who);
		}
	}
	if (!rc && s != SQLITE_DONE)
		rc = HT_ERR_IO;
	sqlite3_finalize(st);
	return rc;
}

enum ht_err ht_vault_open(const char *data_dir, struct ht_vault **out,
			  char *err, size_t err_size)
{
	if (err_size)
		err[0] = '\0';
	struct ht_vault *v = calloc(1, sizeof *v);
	if (!v)
		return HT_ERR_NOMEM;
	snprintf(v->dir, sizeof v->dir, "%s", data_dir);
	v->ranges = calloc(RANGES_MAX, sizeof *v->ranges);
	enum ht_err rc = v->ranges ? keys_read(v, err, err_size) : HT_ERR_NOMEM;
	char path[4200];
	snprintf(path, sizeof path, "%s/vault.db", data_dir);
	if (!rc && sqlite3_open_v2(path, &v->db,
				   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
					   SQLITE_OPEN_NOMUTEX, NULL))
		rc = HT_ERR_IO;
	/* owner only (SQLite gives its -wal and -shm the same mode) */
	if (!rc && chmod(path, 0600))
		rc = HT_ERR_IO;
	if (!rc)
		rc = sqltx_exec(v->db,
			  "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			  " PRAGMA busy_timeout=5000; PRAGMA secure_delete=ON;"
			  " CREATE TABLE IF NOT EXISTS ranges (prefix TEXT PRIMARY"
			  " KEY, participant TEXT NOT NULL);"
			  " CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY"
			  " KEY, participant TEXT NOT NULL, number_mac BLOB,"
			  " key_version INTEGER NOT NULL, sealed BLOB,"
			  " channels INTEGER NOT NULL, merchant TEXT NOT NULL,"
			  " expires_ms INTEGER NOT NULL, max_amount INTEGER NOT"
			  " NULL, max_uses INTEGER NOT NULL, uses INTEGER NOT NULL,"
			  " state INTEGER NOT NULL, created_ms INTEGER NOT NULL);"
			  " CREATE INDEX IF NOT EXISTS tokens_mac ON"
			  " tokens (number_mac);"
			  " CREATE TABLE IF NOT EXISTS detok_log (seq INTEGER"
			  " PRIMARY KEY AUTOINCREMENT, token TEXT NOT NULL,"
			  " requester TEXT NOT NULL, time_ms INTEGER NOT NULL,"
			  " result TEXT NOT NULL);");
	if (!rc)
		rc = ht_hmac_sm3_new(v->index_key, KEY_BYTES, &v->index_mac);
	if (!rc)
		rc = load_ranges(v);
	if (!rc)
		rc = prepare(v, &v->st_get,
			     "SELECT participant, key_version, sealed, channels,"
			     " merchant, expires_ms, max_amount, max_uses, uses,"
			     " state, created_ms FROM tokens WHERE token = ?");
	if (!rc)
		rc = prepare(v, &v->st_has_token,
			     "SELECT 1 FROM tokens WHERE token = ?");
	if (!rc)
		rc = prepare(v, &v->st_has_mac,
			     "SELECT 1 FROM tokens WHERE number_mac = ?");
	if (!rc)
		rc = prepare(v, &v->st_insert,
			     "INSERT INTO tokens (token, participant, number_mac,"
			     " key_version, sealed, channels, merchant,"
			     " expires_ms, max_amount, max_uses, uses, state,"
			     " created_ms) VALUES (?,?,?,?,?,?,?,?,?,?,0,1,?)");
	if (!rc)
		rc = prepare(v, &v->st_uses,
			     "UPDATE tokens SET uses = uses + 1 WHERE token = ?");
	if (!rc)
		rc = prepare(v, &v->st_log,
			     "INSERT INTO detok_log (token, requester, time_ms,"
			     " result) VALUES (?,?,?,?)");
	if (!rc)
		rc = prepare(v, &v->st_state,
			     "UPDATE tokens SET state = ?, sealed = CASE WHEN ? THEN"
			     " NULL ELSE sealed END WHERE token = ?");
	if (rc && err_size && !err[0])
		snprintf(err, err_size, "%s: %s%s%s", path, ht_strerror(rc),
			 v->db ? ": " : "", v->db ? sqlite3_errmsg(v->db) : "");
	if (rc) {
		ht_vault_close(v);
		return rc;
	}
	*out = v;
	return HT_OK;
}

void ht_vault_close(struct ht_vault *v)
{
	if (!v)
		return;
	sqlite3_finalize(v->st_get);
	sqlite3_finalize(v->st_has_token);
	sqlite3_finalize(v->st_has_mac);
	sqlite3_finalize(v->st_insert);
	sqlite3_finalize(v->st_uses);
	sqlite3_finalize(v->st_log);
	sqlite3_finalize(v->st_state);
	sqlite3_close(v->db);
	ht_hmac_sm3_free(v->index_mac);
	OPENSSL_cleanse(v->index_key, sizeof v->index_key);
	OPENSSL_cleanse(v->keys, sizeof v->keys);
	free(v->ranges);
	free(v);
}

/* ---- transactions -------------------------------------------------------------------- */

enum ht_err ht_vault_batch_begin(struct ht_vault *v)
{
	return sqltx_batch_begin(v->db, &v->batch);
}

enum ht_err ht_vault_batch_commit(struct ht_vault *v)
{
	return sqltx_batch_commit(v->db, &v->batch);
}

/* ---- ranges ---------------------------------------------------------------------------- */

/* Is s inside any range (a range's prefix is a prefix of s)? */
static bool in_range(const struct ht_vault *v, const char *s, size_t len)
{
	for (size_t i = 0; i < v->range_count; i++) {
		size_t p = strlen(v->ranges[i].prefix);
		if (p <= len && !memcmp(v->ranges[i].prefix, s, p))
			return true;
	}
	return false;
}

enum ht_err ht_vault_range_add(struct ht_vault *v, const char *participant,
			       const char *prefix)
{
	size_t n;
	if (!all_digits(prefix, HT_TOKEN_PREFIX_MIN, HT_TOKEN_PREFIX_MAX, &n) ||
	    !id_ok(participant, HT_VAULT_PARTICIPANT_MAX))
		return HT_ERR_INVALID;
	for (size_t i = 0; i < v->range_count; i++) {
		size_t p = strlen(v->ranges[i].prefix);
		size_t m = p < n ? p : n;
		if (!memcmp(v->ranges[i].prefix, prefix, m))
			return HT_ERR_EXISTS;
	}
	if (v->range_count >= RANGES_MAX)
		return HT_ERR_LIMIT;
	/* numbers vaulted before the range existed are sealed and cannot be
	 * checked against it; a token equal to one of them is still never
	 * issued (the index MAC check in ht_vault_issue) */
	sqlite3_stmt *st;
	enum ht_err rc = sqltx_begin(v->db, v->batch);
	if (!rc && sqlite3_prepare_v2(v->db, "INSERT INTO ranges (prefix,"
					     " participant) VALUES (?, ?)",
				      -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, participant, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? HT_OK : HT_ERR_IO;
		sqlite3_finalize(st);
	} else if (!rc) {
		rc = HT_ERR_IO;
	}
	rc = sqltx_end(v->db, v->batch, rc);
	if (rc)
		return rc;
	struct range *r = &v->ranges[v->range_count++];
	snprintf(r->prefix, sizeof r->prefix, "%s", prefix);
	snprintf(r->participant, sizeof r->participant, "%s", participant);
	return HT_OK;
}

/* ---- issue ------------------------------------------------------------------------------ */

static enum ht_err number_mac(const struct ht_vault *v, const char *s,
			      size_t len, uint8_t out[MAC_BYTES])
{
	struct ht_iov part = {s, len};
	return ht_hmac_sm3(v->index_mac, &part, 1, out);
}

/* Does the statement (one blob or text parameter) find a row? */
static enum ht_err exists(sqlite3_stmt *st, const void *p, int len, bool blob,
			  bool *out)
{
	if (blob)
		sqlite3_bind_blob(st, 1, p, len, SQLITE_STATIC);
	else
		sqlite3_bind_text(st, 1, p, len, SQLITE_STATIC);
	int s = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	*out = s == SQLITE_ROW;
	return s == SQLITE_ROW || s == SQLITE_DONE ? HT_OK : HT_ERR_IO;
}

/* A uniformly random decimal digit. */
static enum ht_err random_digit(char *out)
{
	for (;;) {
		uint8_t b;
		enum ht_err rc = ht_random(&b, 1);
		if (rc)
			return rc;
		if (b < 250) {
			*out = (char)('0' + b % 10);
			return HT_OK;
		}
	}
}

static bool domain_ok(const struct ht_token_domain *d)
{
	return d->channels < (1u << HT_CHANNEL__COUNT) &&
	       strnlen(d->merchant, sizeof d->merchant) < sizeof d->merchant &&
	       d->expires_ms >= 0 && d->max_amount <= (uint64_t)INT64_MAX;
}

/* The participant's range for a number of len digits: the longest
 * prefix that leaves HT_TOKEN_RANDOM_MIN random digits. */
static const struct range *range_for(const struct ht_vault *v,
				     const char *participant, size_t len)
{
	const struct range *best = NULL;
	for (size_t i = 0; i < v->range_count; i++) {
		const struct range *r = &v->ranges[i];
		size_t p = strlen(r->prefix);
		if (strcmp(r->participant, participant) ||
		    p + HT_TOKEN_RANDOM_MIN + 1 > len)
			continue;
		if (!best || p > strlen(best->prefix))
			best = r;
	}
	return best;
}

enum ht_err ht_vault_issue(struct ht_vault *v, const char *participant,
			   const char *number, const struct ht_token_domain *d,
			   int64_t now_ms, char token[HT_TOKEN_DIGITS_MAX + 1])
{
	static const struct ht_token_domain any;
	size_t len;
	token[0] = '\0';
	if (!d)
		d = &any;
	if (!id_ok(participant, HT_VAULT_PARTICIPANT_MAX) ||
	    !all_digits(number, HT_TOKEN_DIGITS_MIN, HT_TOKEN_DIGITS_MAX, &len) ||
	    !domain_ok(d) || in_range(v, number, len))
		return HT_ERR_INVALID;
	const struct range *r = range_for(v, participant, len);
	if (!r)
		return HT_ERR_NOT_FOUND;
	uint8_t mac[MAC_BYTES], cmac[MAC_BYTES], sealed[SEALED_MAX];
	size_t sealed_len = 0, plen = strlen(r->prefix);
	enum ht_err rc = number_mac(v, number, len, mac);
	char cand[HT_TOKEN_DIGITS_MAX + 1];
	bool found = false;
	for (int t = 0; !rc && !found && t < ISSUE_TRIES; t++) {
		memcpy(cand, r->prefix, plen);
		for (size_t i = plen; !rc && i < len - 1; i++)
			rc = random_digit(&cand[i]);
		if (rc)
			break;
		cand[len - 1] = ht_luhn_digit(cand, len - 1);
		cand[len] = '\0';
		bool taken, real;
		rc = exists(v->st_has_token, cand, (int)len, false, &taken);
		if (!rc && !taken)
			rc = number_mac(v, cand, len, cmac);
		if (!rc && !taken)
			rc = exists(v->st_has_mac, cmac, MAC_BYTES, true, &real);
		found = !rc && !taken && !real && strcmp(cand, number);
	}
	if (!rc && !found)
		rc = HT_ERR_LIMIT;
	if (!rc)
		rc = ht_aead_seal(HT_CIPHER_SM4_CTR_SM3, v->keys[v->key_count - 1],
				  cand, len, number, len, sealed, sizeof sealed,
				  &sealed_len);
	if (!rc)
		rc = sqltx_begin(v->db, v->batch);
	if (!rc) {
		sqlite3_stmt *st = v->st_insert;
		sqlite3_bind_text(st, 1, cand, (int)len, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, participant, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 3, mac, MAC_BYTES, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, (int)v->key_count);
		sqlite3_bind_blob(st, 5, sealed, (int)sealed_len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, d->channels);
		sqlite3_bind_text(st, 7, d->merchant, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 8, d->expires_ms);
		sqlite3_bind_int64(st, 9, (sqlite3_int64)d->max_amount);
		sqlite3_bind_int64(st, 10, d->max_uses);
		sqlite3_bind_int64(st, 11, now_ms);
		rc = sqlite3_step(st) == SQLITE_DONE ? HT_OK : HT_ERR_IO;
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		rc = sqltx_end(v->db, v->batch, rc);
	}
	OPENSSL_cleanse(sealed, sizeof sealed);
	if (!rc)
		memcpy(token, cand, len + 1);
	return rc;
}

/* ---- read, detokenise, lifecycle ------------------------------------------------------- */

struct row {
	struct ht_token_info info;
	uint8_t sealed[SEALED_MAX];
	size_t sealed_len;
};

/* The row of token into *r: HT_OK, HT_ERR_NOT_FOUND, HT_ERR_IO,
 * HT_ERR_CORRUPT. */
static enum ht_err row_get(struct ht_vault *v, const char *token, size_t len,
			   struct row *r)
{
	sqlite3_stmt *st = v->st_get;
	memset(r, 0, sizeof *r);
	sqlite3_bind_text(st, 1, token, (int)len, SQLITE_STATIC);
	int s = sqlite3_step(st);
	enum ht_err rc = s == SQLITE_ROW ? HT_OK
			 : s == SQLITE_DONE ? HT_ERR_NOT_FOUND : HT_ERR_IO;
	if (!rc) {
		struct ht_token_info *i = &r->info;
		const char *who = (const char *)sqlite3_column_text(st, 0);
		const char *m = (const char *)sqlite3_column_text(st, 4);
		int sl = sqlite3_column_bytes(st, 2);
		sqlite3_int64 maxa = sqlite3_column_int64(st, 6);
		memcpy(i->token, token, len);
		i->key_version = (uint32_t)sqlite3_column_int64(st, 1);
		i->domain.channels = (uint32_t)sqlite3_column_int64(st, 3);
		i->domain.expires_ms = sqlite3_column_int64(st, 5);
		i->domain.max_amount = (uint64_t)maxa;
		i->domain.max_uses = (uint32_t)sqlite3_column_int64(st, 7);
		i->uses = (uint32_t)sqlite3_column_int64(st, 8);
		i->state = (enum ht_token_state)sqlite3_column_int(st, 9);
		i->created_ms = sqlite3_column_int64(st, 10);
		if (!id_ok(who, HT_VAULT_PARTICIPANT_MAX) || !m ||
		    strlen(m) > HT_VAULT_MERCHANT_MAX || sl < 0 ||
		    (size_t)sl > sizeof r->sealed || maxa < 0 ||
		    !ht_token_state_name(i->state) || i->key_version < 1 ||
		    i->key_version > v->key_count) {
			rc = HT_ERR_CORRUPT;
		} else {
			snprintf(i->participant, sizeof i->participant, "%s", who);
			snprintf(i->domain.merchant, sizeof i->domain.merchant,
				 "%s", m);
			r->sealed_len = (size_t)sl;
			if (sl)
				memcpy(r->sealed, sqlite3_column_blob(st, 2),
				       (size_t)sl);
		}
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

enum ht_err ht_vault_get(struct ht_vault *v, const char *token,
			 struct ht_token_info *out)
{
	size_t len;
	if (!all_digits(token, HT_TOKEN_DIGITS_MIN, HT_TOKEN_DIGITS_MAX, &len))
		return HT_ERR_NOT_FOUND;
	struct row *r = malloc(sizeof *r);
	if (!r)
		return HT_ERR_NOMEM;
	enum ht_err rc = row_get(v, token, len, r);
	if (!rc)
		*out = r->info;
	free(r);
	return rc;
}

static enum ht_token_refusal judge(const struct ht_token_info *i,
				   const struct ht_token_use *u)
{
	const struct ht_token_domain *d = &i->domain;
	if (!u->router && (!u->requester || strcmp(u->requester, i->participant)))
		return HT_TOKEN_FORBIDDEN;
	if (i->state == HT_TOKEN_DELETED)
		return HT_TOKEN_DELETED_R;
	if (i->state == HT_TOKEN_SUSPENDED)
		return HT_TOKEN_SUSPENDED_R;
	if (d->expires_ms && u->now_ms >= d->expires_ms)
		return HT_TOKEN_EXPIRED;
	if (d->channels && ((unsigned)u->channel >= HT_CHANNEL__COUNT ||
			    !(d->channels & (1u << u->channel))))
		return HT_TOKEN_CHANNEL;
	if (d->merchant[0] && (!u->merchant || strcmp(u->merchant, d->merchant)))
		return HT_TOKEN_MERCHANT;
	if (d->max_amount && u->amount > d->max_amount)
		return HT_TOKEN_AMOUNT;
	if (d->max_uses && i->uses >= d->max_uses)
		return HT_TOKEN_USES;
	return HT_TOKEN_OK;
}

static enum ht_err step_token(sqlite3_stmt *st, const char *token, size_t len)
{
	sqlite3_bind_text(st, 1, token, (int)len, SQLITE_STATIC);
	int s = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return s == SQLITE_DONE ? HT_OK : HT_ERR_IO;
}

static enum ht_err log_attempt(struct ht_vault *v, const char *token,
			       size_t len, const struct ht_token_use *u,
			       enum ht_token_refusal why)
{
	sqlite3_stmt *st = v->st_log;
	char who[HT_VAULT_PARTICIPANT_MAX + 8];
	snprintf(who, sizeof who, "%s%s", u->router ? "router:" : "",
		 u->requester && id_ok(u->requester, HT_VAULT_PARTICIPANT_MAX)
			 ? u->requester : "?");
	sqlite3_bind_text(st, 1, token, (int)len, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, who, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, u->now_ms);
	sqlite3_bind_text(st, 4, ht_token_refusal_name(why), -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return s == SQLITE_DONE ? HT_OK : HT_ERR_IO;
}

enum ht_err ht_vault_detokenize(struct ht_vault *v, const char *token,
				const struct ht_token_use *u,
				char number[HT_TOKEN_DIGITS_MAX + 1],
				enum ht_token_refusal *why)
{
	size_t len;
	number[0] = '\0';
	*why = HT_TOKEN_NOT_FOUND;
	if (!all_digits(token, HT_TOKEN_DIGITS_MIN, HT_TOKEN_DIGITS_MAX, &len))
		return HT_OK; /* not a token: nothing to record it under */
	struct row *r = malloc(sizeof *r);
	if (!r)
		return HT_ERR_NOMEM;
	enum ht_err rc = sqltx_begin(v->db, v->batch);
	enum ht_err got = rc ? rc : row_get(v, token, len, r);
	if (!rc && got && got != HT_ERR_NOT_FOUND)
		rc = got;
	if (!rc && !got)
		*why = judge(&r->info, u);
	size_t n = 0;
	if (!rc && *why == HT_TOKEN_OK) {
		uint8_t plain[HT_TOKEN_DIGITS_MAX + 1];
		rc = ht_aead_open(HT_CIPHER_SM4_CTR_SM3,
				  v->keys[r->info.key_version - 1], token, len,
				  r->sealed, r->sealed_len, plain, sizeof plain, &n);
		if (rc || n != len) {
			rc = HT_ERR_CORRUPT;
		} else {
			memcpy(number, plain, n);
			number[n] = '\0';
		}
		OPENSSL_cleanse(plain, sizeof plain);
		if (!rc)
			rc = step_token(v->st_uses, token, len);
	}
	if (!rc)
		rc = log_attempt(v, token, len, u, *why);
	rc = sqltx_end(v->db, v->batch, rc);
	if (rc) {
		OPENSSL_cleanse(number, HT_TOKEN_DIGITS_MAX + 1);
		number[0] = '\0';
	}
	OPENSSL_cleanse(r, sizeof *r);
	free(r);
	return rc;
}

enum ht_err ht_vault_set_state(struct ht_vault *v, const char *token,
			       const char *requester, bool router,
			       enum ht_token_state state)
{
	size_t len;
	if (!all_digits(token, HT_TOKEN_DIGITS_MIN, HT_TOKEN_DIGITS_MAX, &len))
		return HT_ERR_NOT_FOUND;
	if (!ht_token_state_name(state))
		return HT_ERR_INVALID;
	struct row *r = malloc(sizeof *r);
	if (!r)
		return HT_ERR_NOMEM;
	enum ht_err rc = sqltx_begin(v->db, v->batch);
	if (!rc)
		rc = row_get(v, token, len, r);
	if (!rc && !router && (!requester || strcmp(requester, r->info.participant)))
		rc = HT_ERR_FORBIDDEN;
	enum ht_token_state from = rc ? 0 : r->info.state;
	if (!rc && (from == HT_TOKEN_DELETED ||
		    (state == HT_TOKEN_SUSPENDED && from != HT_TOKEN_ACTIVE) ||
		    (state == HT_TOKEN_ACTIVE && from != HT_TOKEN_SUSPENDED)))
		rc = HT_ERR_INVALID;
	if (!rc) {
		sqlite3_stmt *st = v->st_state;
		sqlite3_bind_int(st, 1, (int)state);
		sqlite3_bind_int(st, 2, state == HT_TOKEN_DELETED);
		sqlite3_bind_text(st, 3, token, (int)len, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? HT_OK : HT_ERR_IO;
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	rc = sqltx_end(v->db, v->batch, rc);
	OPENSSL_cleanse(r, sizeof *r);
	free(r);
	return rc;
}

/* ---- key rotation ---------------------------------------------------------------------- */

enum ht_err ht_vault_rotate_key(struct ht_vault *v, size_t *resealed)
{
	*resealed = 0;
	if (v->batch)
		return HT_ERR_INVALID;
	if (v->key_count >= HT_VAULT_KEYS_MAX)
		return HT_ERR_LIMIT;
	enum ht_err rc = ht_random(v->keys[v->key_count], KEY_BYTES);
	if (rc)
		return rc;
	v->key_count++;
	/* the new key is durable before anything is sealed under it */
	rc = keys_write(v);
	if (rc) {
		v->key_count--;
		return rc;
	}
	sqlite3_stmt *sel = NULL, *upd = NULL;
	rc = sqltx_exec(v->db, "BEGIN IMMEDIATE");
	if (!rc && (sqlite3_prepare_v2(v->db, "SELECT token, key_version, sealed"
					      " FROM tokens WHERE sealed IS NOT"
					      " NULL AND key_version != ?",
				       -1, &sel, NULL) ||
		    sqlite3_prepare_v2(v->db, "UPDATE tokens SET key_version = ?,"
					      " sealed = ? WHERE token = ?",
				       -1, &upd, NULL)))
		rc = HT_ERR_IO;
	if (!rc)
		sqlite3_bind_int(sel, 1, (int)v->key_count);
	int s = SQLITE_DONE;
	while (!rc && (s = sqlite3_step(sel)) == SQLITE_ROW) {
		const char *tok = (const char *)sqlite3_column_text(sel, 0);
		size_t tl = tok ? strlen(tok) : 0;
		sqlite3_int64 ver = sqlite3_column_int64(sel, 1);
		int sl = sqlite3_column_bytes(sel, 2);
		uint8_t plain[SEALED_MAX], out[SEALED_MAX];
		size_t n = 0, on = 0;
		if (!tok || ver < 1 || ver > v->key_count || sl < 28 ||
		    sl > SEALED_MAX)
			rc = HT_ERR_CORRUPT;
		else
			rc = ht_aead_open(HT_CIPHER_SM4_CTR_SM3,
					  v->keys[ver - 1], tok, tl,
					  sqlite3_column_blob(sel, 2), (size_t)sl,
					  plain, sizeof plain, &n);
		if (rc == HT_ERR_VERIFY)
			rc = HT_ERR_CORRUPT;
		if (!rc)
			rc = ht_aead_seal(HT_CIPHER_SM4_CTR_SM3,
					  v->keys[v->key_count - 1], tok, tl, plain,
					  n, out, sizeof out, &on);
		OPENSSL_cleanse(plain, sizeof plain);
		if (!rc) {
			sqlite3_bind_int(upd, 1, (int)v->key_count);
			sqlite3_bind_blob(upd, 2, out, (int)on, SQLITE_STATIC);
			sqlite3_bind_text(upd, 3, tok, (int)tl, SQLITE_TRANSIENT);
			rc = sqlite3_step(upd) == SQLITE_DONE ? HT_OK : HT_ERR_IO;
			sqlite3_reset(upd);
			(*resealed)++;
		}
	}
	if (!rc && s != SQLITE_DONE)
		rc = HT_ERR_IO;
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	rc = sqltx_end(v->db, v->batch, rc);
	if (rc)
		*resealed = 0;
	return rc;
}

/* ---- the detokenisation record ---------------------------------------------------------- */

enum ht_err ht_vault_log_each(struct ht_vault *v, const char *token,
			      int (*fn)(void *ctx, const char *token,
					const char *requester, int64_t time_ms,
					const char *result),
			      void *ctx)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(v->db, token
				   ? "SELECT token, requester, time_ms, result FROM"
				     " detok_log WHERE token = ? ORDER BY seq"
				   : "SELECT token, requester, time_ms, result FROM"
				     " detok_log ORDER BY seq",
			       -1, &st, NULL))
		return HT_ERR_IO;
	if (token)
		sqlite3_bind_text(st, 1, token, -1, SQLITE_STATIC);
	int s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		const char *who = (const char *)sqlite3_column_text(st, 1);
		const char *res = (const char *)sqlite3_column_text(st, 3);
		if (fn(ctx, t ? t : "", who ? who : "", sqlite3_column_int64(st, 2),
		       res ? res : ""))
			break;
	}
	enum ht_err rc = s == SQLITE_ROW || s == SQLITE_DONE ? HT_OK : HT_ERR_IO;
	sqlite3_finalize(st);
	return rc;
}

/*
 * store_sqlite.c — the embedded store: one SQLite database per data
 * directory, WAL with synchronous=FULL, one writer holding DATA/writer.lock.
 *
 * Owner: store. What it owns: the schema and its migrations, the commit
 * transaction, the projections (transfer id index, per-account index)
 * and their watermark. What it must never do: interpret money, reorder or
 * rewrite a committed row, or acknowledge a commit before SQLite's COMMIT
 * returned (with synchronous=FULL that is after the WAL fsync).
 *
 * Why this schema: the commit path only appends (events keyed by leaf
 * index, heads keyed by sequence) plus UPDATEs of changed balances by an
 * integer key. Random 128-bit keys (transfer ids, account+time) live in
 * projections built from the events off the commit path — see DESIGN.md
 * "Keep the commit path append-only" and docs/internals/store.md.
 */
#include "huitong/store.h"
#include "huitong/journal.h"
#include "risk_block.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCHEMA_VERSION 4
/* The oldest schema this build opens (see schema_check). */
#define SCHEMA_VERSION_MIN 2
#define DB_NAME "huitong.db"
#define LOCK_NAME "writer.lock"
/* Events indexed per projection transaction: bounds a catch-up's WAL. */
#define INDEX_CHUNK_EVENTS 65536

enum stmt_id {
	ST_EVENT_INSERT,
	ST_ACCOUNT_INSERT,
	ST_ACCOUNT_UPDATE,
	ST_OWNER_INSERT,
	ST_HISTORY_INSERT,
	ST_HEAD_INSERT,
	ST_NODE_HEAD,
	ST_RISK_INSERT,
	ST__COUNT
};

static const char *const stmt_sql[ST__COUNT] = {
	[ST_EVENT_INSERT] = "INSERT INTO event(leaf, data) VALUES (?1, ?2)",
	[ST_ACCOUNT_INSERT] =
		"INSERT INTO account(slot, id, ledger, code, flags, user_data,"
		" timestamp, debits_pending, debits_posted, credits_pending,"
		" credits_posted) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
	[ST_ACCOUNT_UPDATE] =
		"UPDATE account SET flags=?2, debits_pending=?3,"
		" debits_posted=?4, credits_pending=?5, credits_posted=?6"
		" WHERE slot=?1",
	[ST_OWNER_INSERT] =
		"INSERT INTO account_owner(slot, owner) VALUES (?1, ?2)",
	[ST_HISTORY_INSERT] =
		"INSERT INTO balance_history(account, timestamp,"
		" debits_pending, debits_posted, credits_pending,"
		" credits_posted) VALUES (?1,?2,?3,?4,?5,?6)",
	[ST_HEAD_INSERT] =
		"INSERT INTO head(seq, tree_size, time_ns, root, prev_hash, sig,"
		" node_first, node_count, nodes, leaf_fps)"
		" VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
	[ST_NODE_HEAD] =
		"SELECT seq, node_first FROM head WHERE node_first <= ?1"
		" AND node_count > 0 ORDER BY node_first DESC LIMIT 1",
	[ST_RISK_INSERT] =
		"INSERT INTO risk_block(first_leaf, last_leaf, rows)"
		" VALUES (?1, ?2, ?3)",
};

struct ht_store {
	sqlite3 *db;
	char dir[4096];
	int lock_fd;            /* -1 for readers */
	bool readonly;
	bool poisoned;
	enum ht_hash_alg hash;  /* from meta, stamped on every head read */
	enum ht_sign_alg sign;
	uint32_t schema_version;
	sqlite3_stmt *stmt[ST__COUNT];
	uint8_t *risk_buf;      /* the commit's risk block, reused */
	size_t risk_buf_cap;
};

/* ---- helpers ---------------------------------------------------------- */

static enum ht_err sql_err(struct ht_store *s, int rc, const char *what)
{
	if (rc == SQLITE_NOMEM)
		return HT_ERR_NOMEM;
	fprintf(stderr, "huitong: store: %s: %s\n", what,
		s && s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
	if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB)
		return HT_ERR_CORRUPT;
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return HT_ERR_LOCKED;
	return HT_ERR_IO;
}

static enum ht_err exec(struct ht_store *s, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		fprintf(stderr, "huitong: store: %s\n", msg ? msg : "?");
		sqlite3_free(msg);
		return rc == SQLITE_NOMEM ? HT_ERR_NOMEM : HT_ERR_IO;
	}
	return HT_OK;
}

static void u128_be(ht_u128 v, uint8_t out[16])
{
	for (int i = 15; i >= 0; i--) {
		out[i] = (uint8_t)v;
		v >>= 8;
	}
}

static ht_u128 be_u128(const uint8_t in[16])
{
	ht_u128 v = 0;
	for (int i = 0; i < 16; i++)
		v = v << 8 | in[i];
	return v;
}

/* u64 values are stored bit-for-bit in SQLite's signed 64-bit INTEGER. */
static sqlite3_int64 i64(uint64_t v)
{
	sqlite3_int64 r;
	memcpy(&r, &v, sizeof r);
	return r;
}

static uint64_t col_u64(sqlite3_stmt *st, int col)
{
	sqlite3_int64 v = sqlite3_column_int64(st, col);
	uint64_t r;
	memcpy(&r, &v, sizeof r);
	return r;
}

static bool col_blob(sqlite3_stmt *st, int col, uint8_t *out, size_t size,
		     size_t *len)
{
	int n = sqlite3_column_bytes(st, col);
	const void *p = sqlite3_column_blob(st, col);
	if (n < 0 || (size_t)n > size || (n > 0 && !p))
		return false;
	if (n > 0)
		memcpy(out, p, (size_t)n);
	if (len)
		*len = (size_t)n;
	return true;
}

static enum ht_err prepare(struct ht_store *s, const char *sql,
			   sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
	if (rc != SQLITE_OK)
		return sql_err(s, rc, "prepare");
	return HT_OK;
}

static enum ht_err step_done(struct ht_store *s, sqlite3_stmt *st,
			     const char *what)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return sql_err(s, rc, what);
	return HT_OK;
}

/* ---- schema ------------------------------------------------------------ */

static const char schema_v1[] =
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	/* The journal's leaves: one canonical event encoding per row. */
	"CREATE TABLE event(leaf INTEGER PRIMARY KEY, data BLOB NOT NULL);"
	/* Current balances, keyed by creation order (the engine's index). */
	"CREATE TABLE account(slot INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE,"
	" ledger INTEGER NOT NULL, code INTEGER NOT NULL, flags INTEGER NOT NULL,"
	" user_data BLOB NOT NULL, timestamp INTEGER NOT NULL,"
	" debits_pending INTEGER NOT NULL, debits_posted INTEGER NOT NULL,"
	" credits_pending INTEGER NOT NULL, credits_posted INTEGER NOT NULL);"
	/* Burned transfer ids, append-only by timestamp. */
	"CREATE TABLE failed(timestamp INTEGER PRIMARY KEY, id BLOB NOT NULL,"
	" result INTEGER NOT NULL);"
	/* Snapshots for `history` accounts (few: an index is affordable). */
	"CREATE TABLE balance_history(account BLOB NOT NULL,"
	" timestamp INTEGER NOT NULL, debits_pending INTEGER NOT NULL,"
	" debits_posted INTEGER NOT NULL, credits_pending INTEGER NOT NULL,"
	" credits_posted INTEGER NOT NULL, PRIMARY KEY(account, timestamp))"
	" WITHOUT ROWID;"
	/* Signed tree heads, each with the Merkle nodes its commit completed. */
	"CREATE TABLE head(seq INTEGER PRIMARY KEY, tree_size INTEGER NOT NULL,"
	" time_ns INTEGER NOT NULL, root BLOB NOT NULL, prev_hash BLOB NOT NULL,"
	" sig BLOB NOT NULL, node_first INTEGER NOT NULL,"
	" node_count INTEGER NOT NULL, nodes BLOB NOT NULL,"
	" leaf_fps BLOB NOT NULL);"
	"CREATE INDEX head_node_first ON head(node_first);"
	/* Projections, rebuilt from events; watermark in meta. */
	"CREATE TABLE transfer_index(id BLOB PRIMARY KEY, leaf INTEGER NOT NULL)"
	" WITHOUT ROWID;"
	"CREATE TABLE account_index(account BLOB NOT NULL, timestamp INTEGER NOT NULL,"
	" side INTEGER NOT NULL, leaf INTEGER NOT NULL,"
	" PRIMARY KEY(account, timestamp)) WITHOUT ROWID;"
	"INSERT INTO meta VALUES('index_watermark', '0');";

/* v2: a burned transfer id is a journal event of its own (a refusal,
 * ledger.h), so the `failed` table goes; accounts created through the API
 * record the participant that owns them (not a journal leaf: see
 * docs/internals/store.md). A v1 store cannot be migrated — its refusals
 * are not leaves and the signed heads cannot be rewritten — so only a
 * fresh store runs this, right after v1 (see schema_check). */
static const char schema_v2[] =
	"DROP TABLE failed;"
	"CREATE TABLE account_owner(slot INTEGER PRIMARY KEY,"
	" owner TEXT NOT NULL);";

/* v3: the risk engine's decisions (serve --risk), one row per scored
 * transfer, written by the commit that writes its leaf and keyed by that
 * leaf, so the commit path still only appends; a transfer's decision is
 * found through its leaf: the transfer index for a committed transfer,
 * and a new projection for refusals (a blocked payment is one). The
 * projections' watermark goes back to 0 so the new one covers the
 * refusals already stored (derived data: rebuilt, nothing rewritten). */
static const char schema_v3[] =
	"CREATE TABLE risk_decision(leaf INTEGER PRIMARY KEY, id BLOB NOT NULL,"
	" debit BLOB NOT NULL, credit BLOB NOT NULL, decision INTEGER NOT NULL,"
	" score REAL NOT NULL, reasons TEXT NOT NULL, rules_version INTEGER,"
	" model_version TEXT NOT NULL, time_ms INTEGER NOT NULL);"
	"CREATE TABLE refusal_index(id BLOB PRIMARY KEY, leaf INTEGER NOT NULL)"
	" WITHOUT ROWID;"
	"UPDATE meta SET value = '0' WHERE key = 'index_watermark';";

/* v4: a commit's risk decisions as one blob (src/store/risk_block.h)
 * keyed by the commit's first scored leaf, instead of a row each: the
 * rows cost the commit ~2 us of CPU per transfer scored. Decisions stored
 * by schema 3 stay in risk_decision and are read from there. */
static const char schema_v4[] =
	"CREATE TABLE risk_block(first_leaf INTEGER PRIMARY KEY,"
	" last_leaf INTEGER NOT NULL, rows BLOB NOT NULL);";

/* Migrations, index = version - 1. Append; never edit a shipped one. */
static const char *const migrations[] = {schema_v1, schema_v2, schema_v3,
					 schema_v4};
_Static_assert(sizeof migrations / sizeof migrations[0] == SCHEMA_VERSION,
	       "one migration per schema version");

static enum ht_err meta_get(struct ht_store *s, const char *key, char *out,
			    size_t size)
{
	sqlite3_stmt *st;
	enum ht_err err = prepare(s, "SELECT value FROM meta WHERE key=?1", &st);
	if (err)
		return err;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		snprintf(out, size, "%s", v ? v : "");
		err = HT_OK;
	} else if (rc == SQLITE_DONE) {
		err = HT_ERR_NOT_FOUND;
	} else {
		err = sql_err(s, rc, "meta");
	}
	sqlite3_finalize(st);
	return err;
}

static enum ht_err meta_put(struct ht_store *s, const char *key,
			    const char *value)
{
	sqlite3_stmt *st;
	enum ht_err err = prepare(
		s, "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)", &st);
	if (err)
		return err;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	err = step_done(s, st, "meta put");
	sqlite3_finalize(st);
	return err;
}

/* An existing store this build can open: not newer than it, and not
 * older than the first schema it can read (a v1 store keeps refusals out
 * of the journal, which no migration can put back in). */
static enum ht_err schema_check(uint32_t version)
{
	if (version > SCHEMA_VERSION) {
		fprintf(stderr,
			"huitong: store schema %u is newer than this build (%u)\n",
			version, SCHEMA_VERSION);
		return HT_ERR_UNSUPPORTED;
	}
	if (version < SCHEMA_VERSION_MIN) {
		fprintf(stderr, "huitong: store schema %u predates refusal"
				" events: re-initialise\n", version);
		return HT_ERR_UNSUPPORTED;
	}
	return HT_OK;
}

static enum ht_err migrate(struct ht_store *s)
{
	char buf[32];
	uint32_t version = 0;
	sqlite3_stmt *st;
	enum ht_err err = prepare(s, "SELECT count(*) FROM sqlite_master"
				     " WHERE type='table' AND name='meta'", &st);
	if (err)
		return err;
	bool fresh = sqlite3_step(st) == SQLITE_ROW &&
		     sqlite3_column_int(st, 0) == 0;
	sqlite3_finalize(st);
	if (!fresh && (err = meta_get(s, "schema_version", buf, sizeof buf)))
		return err == HT_ERR_NOT_FOUND ? HT_ERR_CORRUPT : err;
	if (!fresh)
		version = (uint32_t)strtoul(buf, NULL, 10);
	if (!fresh && (err = schema_check(version)))
		return err;
	for (; version < SCHEMA_VERSION; version++) {
		enum ht_err err = exec(s, "BEGIN");
		if (!err)
			err = exec(s, migrations[version]);
		snprintf(buf, sizeof buf, "%u", version + 1);
		if (!err)
			err = meta_put(s, "schema_version", buf);
		if (!err)
			err = exec(s, "COMMIT");
		if (err) {
			exec(s, "ROLLBACK");
			return err;
		}
	}
	return HT_OK;
}

/* ---- open / close ------------------------------------------------------ */

static enum ht_err take_lease(struct ht_store *s)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", s->dir, LOCK_NAME);
	s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0)
		return HT_ERR_IO;
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0)
		return errno == EWOULDBLOCK ? HT_ERR_LOCKED : HT_ERR_IO;
	return HT_OK;
}

static enum ht_err open_db(struct ht_store *s, bool create)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", s->dir, DB_NAME);
	if (!create && access(path, F_OK) != 0)
		return HT_ERR_NOT_FOUND;
	int flags = s->readonly ? SQLITE_OPEN_READONLY
				: SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	int rc = sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		return sql_err(s, rc, "open");
	sqlite3_busy_timeout(s->db, 5000);
	sqlite3_extended_result_codes(s->db, 0);
	if (s->readonly)
		return exec(s, "PRAGMA query_only=1; PRAGMA cache_size=-65536;");
	/* 16 KiB pages: a batch's events, balances and Merkle nodes touch a
	 * quarter as many pages as with 4 KiB (measured +30-60% commits/s,
	 * docs/performance.md). Only takes effect on a new database. */
	if (create) {
		enum ht_err err = exec(s, "PRAGMA page_size=16384;");
		if (err)
			return err;
	}
	/* FULL: the WAL is fsync'd at every COMMIT, so an acknowledged commit
	 * survives power loss. A large autocheckpoint keeps checkpoints (and
	 * their extra fsyncs) rare on the commit path. */
	return exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		       " PRAGMA cache_size=-262144; PRAGMA wal_autocheckpoint=16384;"
		       " PRAGMA foreign_keys=OFF; PRAGMA temp_store=MEMORY;");
}

static enum ht_err prepare_all(struct ht_store *s)
{
	for (int i = 0; i < ST__COUNT; i++) {
		enum ht_err err = prepare(s, stmt_sql[i], &s->stmt[i]);
		if (err)
			return err;
	}
	return HT_OK;
}

static enum ht_err store_alloc(const char *data, bool readonly,
			       struct ht_store **out)
{
	if (!strncmp(data, "postgresql://", 13) ||
	    !strncmp(data, "postgres://", 11)) {
		fprintf(stderr, "huitong: the PostgreSQL store is not built yet;"
				" use a directory\n");
		return HT_ERR_UNSUPPORTED;
	}
	struct ht_store *s = calloc(1, sizeof *s);
	if (!s)
		return HT_ERR_NOMEM;
	if (snprintf(s->dir, sizeof s->dir, "%s", data) >= (int)sizeof s->dir) {
		free(s);
		return HT_ERR_LIMIT;
	}
	s->lock_fd = -1;
	s->readonly = readonly;
	*out = s;
	return HT_OK;
}

enum ht_err ht_store_create(const char *data, const struct ht_store_config *cfg)
{
	struct ht_store *s;
	enum ht_err err = store_alloc(data, false, &s);
	if (err)
		return err;
	if (mkdir(data, 0700) != 0 && errno != EEXIST) {
		free(s);
		return HT_ERR_IO;
	}
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", data, DB_NAME);
	if (access(path, F_OK) == 0) {
		free(s);
		return HT_ERR_EXISTS;
	}
	err = take_lease(s);
	if (!err)
		err = open_db(s, true);
	if (!err)
		err = migrate(s);
	char num[32];
	snprintf(num, sizeof num, "%d", (int)cfg->hash);
	if (!err)
		err = meta_put(s, "hash", ht_hash_alg_name(cfg->hash));
	if (!err)
		err = meta_put(s, "sign", ht_sign_alg_name(cfg->sign));
	if (!err)
		err = meta_put(s, "sm2_id", cfg->sm2_id);
	if (!err)
		err = meta_put(s, "public_key", cfg->public_key_pem);
	ht_store_close(s);
	return err;
}

enum ht_err ht_store_open(const char *data, bool readonly, struct ht_store **out)
{
	struct ht_store *s;
	enum ht_err err = store_alloc(data, readonly, &s);
	if (err)
		return err;
	struct stat stt;
	if (stat(data, &stt) != 0 || !S_ISDIR(stt.st_mode)) {
		free(s);
		return HT_ERR_NOT_FOUND;
	}
	if (!readonly)
		err = take_lease(s);
	if (!err)
		err = open_db(s, false);
	if (!err && !readonly)
		err = migrate(s);
	if (!err && !readonly)
		err = prepare_all(s);
	struct ht_store_config cfg;
	if (!err)
		err = ht_store_get_config(s, &cfg);
	if (!err && readonly) /* a writer checked it in migrate */
		err = schema_check(cfg.schema_version);
	if (err) {
		ht_store_close(s);
		return err;
	}
	s->schema_version = cfg.schema_version;
	s->hash = cfg.hash;
	s->sign = cfg.sign;
	*out = s;
	return HT_OK;
}

void ht_store_close(struct ht_store *s)
{
	if (!s)
		return;
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	free(s->risk_buf);
	if (s->db)
		sqlite3_close(s->db);
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* releases the flock */
	free(s);
}

enum ht_err ht_store_path(const struct ht_store *s, const char *name, char *out,
			  size_t out_size)
{
	if (snprintf(out, out_size, "%s/%s", s->dir, name) >= (int)out_size)
		return HT_ERR_LIMIT;
	return HT_OK;
}

enum ht_err ht_store_get_config(struct ht_store *s, struct ht_store_config *out)
{
	char buf[64];
	memset(out, 0, sizeof *out);
	enum ht_err err = meta_get(s, "schema_version", buf, sizeof buf);
	if (err)
		return err == HT_ERR_NOT_FOUND ? HT_ERR_CORRUPT : err;
	out->schema_version = (uint32_t)strtoul(buf, NULL, 10);
	if ((err = meta_get(s, "hash", buf, sizeof buf)) ||
	    ht_hash_alg_parse(buf, &out->hash))
		return err ? err : HT_ERR_CORRUPT;
	if ((err = meta_get(s, "sign", buf, sizeof buf)) ||
	    ht_sign_alg_parse(buf, &out->sign))
		return err ? err : HT_ERR_CORRUPT;
	if ((err = meta_get(s, "sm2_id", out->sm2_id, sizeof out->sm2_id)))
		return err;
	return meta_get(s, "public_key", out->public_key_pem,
			sizeof out->public_key_pem);
}

/* ---- reads ------------------------------------------------------------- */

enum ht_err ht_store_event_count(struct ht_store *s, uint64_t *out)
{
	sqlite3_stmt *st;
	enum ht_err err = prepare(s, "SELECT max(leaf) FROM event", &st);
	if (err)
		return err;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_type(st, 0) == SQLITE_NULL
			       ? 0
			       : col_u64(st, 0) + 1;
	else
		err = sql_err(s, rc, "event count");
	sqlite3_finalize(st);
	return err;
}

enum ht_err ht_store_events_range(struct ht_store *s, uint64_t from,
				  uint64_t count, ht_store_event_fn fn,
				  void *ctx)
{
	sqlite3_stmt *st;
	enum ht_err err = prepare(s,
				  "SELECT leaf, data FROM event WHERE leaf >= ?1"
				  " ORDER BY leaf LIMIT ?2",
				  &st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, i64(from));
	sqlite3_bind_int64(st, 2, count > INT64_MAX ? -1 : (sqlite3_int64)count);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const uint8_t *data = sqlite3_column_blob(st, 1);
		int n = sqlite3_column_bytes(st, 1);
		if (fn(ctx, col_u64(st, 0), data, (size_t)(n > 0 ? n : 0)))
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		err = sql_err(s, rc, "events");
	sqlite3_finalize(st);
	return err;
}

enum ht_err ht_store_events_each(struct ht_store *s, uint64_t from,
				 ht_store_event_fn fn, void *ctx)
{
	return ht_store_events_range(s, from, UINT64_MAX, fn, ctx);
}

enum ht_err ht_store_event_get(struct ht_store *s, uint64_t leaf, uint8_t *out,
			       size_t *len)
{
	sqlite3_stmt *st;
	enum ht_err err =
		prepare(s, "SELECT data FROM event WHERE leaf = ?1", &st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, i64(leaf));
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		err = col_blob(st, 0, out, HT_LEAF_BYTES_MAX, len)
			      ? HT_OK
			      : HT_ERR_CORRUPT;
	else
		err = rc == SQLITE_DONE ? HT_ERR_NOT_FOUND
					: sql_err(s, rc, "event");
	sqlite3_finalize(st);
	return err;
}

enum ht_err ht_store_owners_each(struct ht_store *s,
				 int (*fn)(void *ctx, uint64_t slot,
					   const char *owner, size_t len),
				 void *ctx)
{
	sqlite3_stmt *st;
	enum ht_err err = prepare(
		s, "SELECT slot, owner FROM account_owner ORDER BY slot", &st);
	if (err)
		return err;
	int rc = SQLITE_DONE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *o = (const char *)sqlite3_column_text(st, 1);
		int n = sqlite3_column_bytes(st, 1);
		if (!o || n < 0) {
			err = HT_ERR_CORRUPT;
			break;
		}
		if (fn(ctx, col_u64(st, 0), o, (size_t)n))
			break;
	}
	if (!err && rc != SQLITE_ROW && rc != SQLITE_DONE)
		err = sql_err(s, rc, "account owners");
	sqlite3_finalize(st);
	return err;
}

enum ht_err ht_store_account_owner(struct ht_store *s, ht_u128 id, char *out,
				   size_t size)
{
	sqlite3_stmt *st;
	uint8_t key[16];
	enum ht_err err = prepare(s,
				  "SELECT o.owner FROM account a JOIN"
				  " account_owner o ON o.slot = a.slot"
				  " WHERE a.id = ?1",
				  &st);
	if (err)
		return err;
	u128_be(id, key);
	sqlite3_bind_blob(st, 1, key, 16, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *o = (const char *)sqlite3_column_text(st, 0);
		int n = sqlite3_column_bytes(st, 0);
		if (!o || n < 0 || (size_t)n >= size)
			err = HT_ERR_CORRUPT;
		else
			memcpy(out, o, (size_t)n + 1);
	} else {
		err = rc == SQLITE_DONE ? HT_ERR_NOT_FOUND
					: sql_err(s, rc, "account owner");
	}
	sqlite3_finalize(st);
	return err;
}

static enum ht_err account_from_row(sqlite3_stmt *st, int c,
				    struct ht_account *a)
{
	uint8_t id[16];
	size_t n, ud;
	memset(a, 0, sizeof *a);
	if (!col_blob(st, c, id, sizeof id, &n) || n != 16)
		return HT_ERR_CORRUPT;
	a->id = be_u128(id);
	a->ledger = (uint32_t)sqlite3_column_int64(st, c + 1);
	a->code = (uint16_t)sqlite3_column_int(st, c + 2);
	a->flags = (uint16_t)sqlite3_column_int(st, c + 3);
	if (!col_blob(st, c + 4, (uint8_t *)a->user_data,
		      sizeof a->user_data, &ud))
		return HT_ERR_CORRUPT;
	a->user_data_len = (uint8_t)ud;
	a->timestamp = col_u64(st, c + 5);
	a->debits_pending = col_u64(st, c + 6);
	a->debits_posted = col_u64(st, c + 7);
	a->credits_pending = col_u64(st, c + 8);
	a->credits_posted = col_u64(st, c + 9);
	return HT_OK;
}

#define ACCOUNT_COLS                                                         \
	"id, ledger, code, flags, user_data, timestamp, debits_pending,"     \
	" debits_posted, credits_pending, credits_posted"

enum ht_err ht_store_accounts_each(struct ht_store *s,
				   int (*fn)(void *ctx, uint64_t slot,
					     const struct ht_account *a),
				   void *ctx)
{
	sqlite3_stmt *st;
	enum ht_err err = prepare(
		s, "SELECT slot, " ACCOUNT_COLS " FROM account ORDER BY slot",
		&st);
	if (err)
		return err;
	int rc = SQLITE_DONE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ht_account a;
		if ((err = account_from_row(st, 1, &a)))
			break;
		if (fn(ctx, col_u64(st, 0), &a))
			break;
	}
	if (!err && rc != SQLITE_ROW && rc != SQLITE_DONE)
		err = sql_err(s, rc, "accounts");
	sqlite3_finalize(st);
	return err;
}

enum ht_err ht_store_account_get(struct ht_store *s, ht_u128 id,
				 struct ht_account *out)
{
	sqlite3_stmt *st;
	uint8_t key[16];
	enum ht_err err = prepare(
		s, "SELECT " ACCOUNT_COLS " FROM account WHERE id = ?1", &st);
	if (err)
		return err;
	u128_be(id, key);
	sqlite3_bind_blob(st, 1, key, 16, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		err = account_from_row(st, 0, out);
	else
		err = rc == SQLITE_DONE ? HT_ERR_NOT_FOUND
					: sql_err(s, rc, "account");
	sqlite3_finalize(st);
	return err;
}

#define HEAD_COLS "seq, tree_size, time_ns, root, prev_hash, sig"

static enum ht_err head_from_row(struct ht_store *s, sqlite3_stmt *st,
				 struct ht_sth *h)
{
	size_t n1, n2;
	memset(h, 0, sizeof *h);
	h->seq = col_u64(st, 0);
	h->tree_size = col_u64(st, 1);
	h->time_ns = col_u64(st, 2);
	if (!col_blob(st, 3, h->root, sizeof h->root, &n1) ||
	    !col_blob(st, 4, h->prev_hash, sizeof h->prev_hash, &n2) ||
	    !col_blob(st, 5, h->sig, sizeof h->sig, &h->sig_len) ||
	    n1 != HT_HASH_BYTES || n2 != HT_HASH_BYTES)
		return HT_ERR_CORRUPT;
	h->hash = s->hash;
	h->sign = s->sign;
	return HT_OK;
}

static enum ht_err head_query(struct ht_store *s, const char *sql, bool bind,
			      uint64_t seq, struct ht_sth *out)
{
	sqlite3_stmt *st;
	enum ht_err err = prepare(s, sql, &st);
	if (err)
		return err;
	if (bind)
		sqlite3_bind_int64(st, 1, i64(seq));
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		err = head_from_row(s, st, out);
	else
		err = rc == SQLITE_DONE ? HT_ERR_NOT_FOUND
					: sql_err(s, rc, "head");
	sqlite3_finalize(st);
	return err;
}

enum ht_err ht_store_head_last(struct ht_store *s, struct ht_sth *out)
{
	return head_query(s,
			  "SELECT " HEAD_COLS
			  " FROM head ORDER BY seq DESC LIMIT 1",
			  false, 0, out);
}

enum ht_err ht_store_head_get(struct ht_store *s, uint64_t seq,
			      struct ht_sth *out)
{
	return head_query(s, "SELECT " HEAD_COLS " FROM head WHERE seq = ?1",
			  true, seq, out);
}

enum ht_err ht_store_heads_each(struct ht_store *s,
				int (*fn)(void *ctx, const struct ht_sth *h,
					  uint64_t node_first,
					  const uint8_t *nodes,
					  size_t node_count,
					  const uint8_t *fps, size_t fp_count),
				void *ctx)
{
	sqlite3_stmt *st;
	enum ht_err err = prepare(s,
				  "SELECT " HEAD_COLS ", node_first, node_count,"
				  " nodes, leaf_fps FROM head ORDER BY seq",
				  &st);
	if (err)
		return err;
	int rc = SQLITE_DONE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ht_sth h;
		if ((err = head_from_row(s, st, &h)))
			break;
		uint64_t count = col_u64(st, 7);
		int bytes = sqlite3_column_bytes(st, 8);
		const uint8_t *nodes = sqlite3_column_blob(st, 8);
		if (bytes < 0 || (uint64_t)bytes != count * HT_HASH_BYTES) {
			/* Report the mismatch as an empty run; the verifier
			 * names the head whose nodes are missing. */
			count = 0;
			nodes = NULL;
		}
		int fp_bytes = sqlite3_column_bytes(st, 9);
		const uint8_t *fps = sqlite3_column_blob(st, 9);
		size_t fp_count = fp_bytes > 0 && fp_bytes % HT_JOURNAL_FP_BYTES == 0
					  ? (size_t)fp_bytes / HT_JOURNAL_FP_BYTES
					  : 0;
		if (fn(ctx, &h, col_u64(st, 6), nodes, (size_t)count,
		       fp_count ? fps : NULL, fp_count))
			break;
	}
	if (!err && rc != SQLITE_ROW && rc != SQLITE_DONE)
		err = sql_err(s, rc, "heads");
	sqlite3_finalize(st);
	return err;
}

enum ht_err ht_store_node_get(struct ht_store *s, uint64_t seq,
			      uint8_t out[HT_HASH_BYTES])
{
	sqlite3_stmt *st = s->stmt[ST_NODE_HEAD];
	bool own = false;
	enum ht_err err = HT_OK;
	if (!st) { /* readers prepare on demand */
		if ((err = prepare(s, stmt_sql[ST_NODE_HEAD], &st)))
			return err;
		own = true;
	}
	sqlite3_bind_int64(st, 1, i64(seq));
	int rc = sqlite3_step(st);
	uint64_t head_seq = 0, first = 0;
	if (rc == SQLITE_ROW) {
		head_seq = col_u64(st, 0);
		first = col_u64(st, 1);
	} else {
		err = rc == SQLITE_DONE ? HT_ERR_NOT_FOUND
					: sql_err(s, rc, "node");
	}
	if (own)
		sqlite3_finalize(st);
	else
		sqlite3_reset(st);
	if (err)
		return err;
	sqlite3_blob *blob;
	rc = sqlite3_blob_open(s->db, "main", "head", "nodes",
			       i64(head_seq), 0, &blob);
	if (rc != SQLITE_OK)
		return sql_err(s, rc, "node blob");
	uint64_t off = (seq - first) * HT_HASH_BYTES;
	if (off + HT_HASH_BYTES > (uint64_t)sqlite3_blob_bytes(blob))
		err = HT_ERR_NOT_FOUND;
	else if ((rc = sqlite3_blob_read(blob, out, HT_HASH_BYTES, (int)off)))
		err = sql_err(s, rc, "node read");
	sqlite3_blob_close(blob);
	return err;
}

/* ---- commit ------------------------------------------------------------ */

static enum ht_err commit_events(struct ht_store *s,
				 const struct ht_store_commit *c)
{
	sqlite3_stmt *st = s->stmt[ST_EVENT_INSERT];
	for (size_t i = 0; i < c->events_count; i++) {
		uint32_t off = c->event_offset[i];
		uint32_t len = c->event_offset[i + 1] - off;
		sqlite3_bind_int64(st, 1, i64(c->first_leaf + i));
		sqlite3_bind_blob(st, 2, c->event_data + off, (int)len,
				  SQLITE_STATIC);
		enum ht_err err = step_done(s, st, "event insert");
		if (err)
			return err;
	}
	return HT_OK;
}

static enum ht_err commit_account(struct ht_store *s,
				  const struct ht_store_account_row *row,
				  bool insert)
{
	const struct ht_account *a = row->account;
	sqlite3_stmt *st = s->stmt[insert ? ST_ACCOUNT_INSERT : ST_ACCOUNT_UPDATE];
	uint8_t id[16];
	sqlite3_bind_int64(st, 1, i64(row->slot));
	if (insert) {
		u128_be(a->id, id);
		sqlite3_bind_blob(st, 2, id, 16, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, a->ledger);
		sqlite3_bind_int(st, 4, a->code);
		sqlite3_bind_int(st, 5, a->flags);
		sqlite3_bind_blob(st, 6, a->user_data, a->user_data_len,
				  SQLITE_STATIC);
		sqlite3_bind_int64(st, 7, i64(a->timestamp));
	} else {
		sqlite3_bind_int(st, 2, a->flags);
	}
	int b = insert ? 8 : 3;
	sqlite3_bind_int64(st, b, i64(a->debits_pending));
	sqlite3_bind_int64(st, b + 1, i64(a->debits_posted));
	sqlite3_bind_int64(st, b + 2, i64(a->credits_pending));
	sqlite3_bind_int64(st, b + 3, i64(a->credits_posted));
	enum ht_err err = step_done(s, st, "account");
	if (!err && !insert && sqlite3_changes(s->db) != 1)
		err = HT_ERR_CORRUPT; /* updating an account never stored */
	return err;
}

static enum ht_err commit_accounts(struct ht_store *s,
				   const struct ht_store_commit *c)
{
	for (size_t i = 0; i < c->accounts_count; i++) {
		enum ht_err err = commit_account(s, &c->accounts[i],
						 c->accounts[i].insert);
		if (err)
			return err;
	}
	return HT_OK;
}

static enum ht_err commit_owners(struct ht_store *s,
				 const struct ht_store_commit *c)
{
	sqlite3_stmt *st = s->stmt[ST_OWNER_INSERT];
	for (size_t i = 0; i < c->owners_count; i++) {
		const struct ht_store_owner_row *o = &c->owners[i];
		size_t len = strlen(o->owner);
		HT_ASSERT(len > 0 && len <= HT_OWNER_BYTES_MAX);
		sqlite3_bind_int64(st, 1, i64(o->slot));
		sqlite3_bind_text(st, 2, o->owner, (int)len, SQLITE_STATIC);
		enum ht_err err = step_done(s, st, "owner insert");
		if (err)
			return err;
	}
	return HT_OK;
}

static enum ht_err commit_history(struct ht_store *s,
				  const struct ht_store_commit *c)
{
	sqlite3_stmt *st = s->stmt[ST_HISTORY_INSERT];
	for (size_t i = 0; i < c->history_count; i++) {
		const struct ht_balance *b = &c->history[i];
		uint8_t id[16];
		u128_be(b->account_id, id);
		sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, i64(b->timestamp));
		sqlite3_bind_int64(st, 3, i64(b->debits_pending));
		sqlite3_bind_int64(st, 4, i64(b->debits_posted));
		sqlite3_bind_int64(st, 5, i64(b->credits_pending));
		sqlite3_bind_int64(st, 6, i64(b->credits_posted));
		enum ht_err err = step_done(s, st, "history insert");
		if (err)
			return err;
	}
	return HT_OK;
}

/* The commit's decisions as one risk block (one row, however many). */
static enum ht_err commit_risk(struct ht_store *s,
			       const struct ht_store_commit *c)
{
	if (!c->risk_count)
		return HT_OK;
	const struct ht_store_risk_row *first = &c->risk[0];
	const struct ht_store_risk_row *last = &c->risk[c->risk_count - 1];
	HT_ASSERT(first->leaf >= c->first_leaf);
	HT_ASSERT(last->leaf < c->first_leaf + c->events_count);
	size_t max = risk_block_bytes_max(c->risk, c->risk_count);
	if (max > INT_MAX)
		return HT_ERR_LIMIT;
	if (max > s->risk_buf_cap) {
		uint8_t *b = realloc(s->risk_buf, max);
		if (!b)
			return HT_ERR_NOMEM;
		s->risk_buf = b;
		s->risk_buf_cap = max;
	}
	size_t len = risk_block_encode(c->risk, c->risk_count, s->risk_buf);
	HT_ASSERT(len <= max);
	sqlite3_stmt *st = s->stmt[ST_RISK_INSERT];
	sqlite3_bind_int64(st, 1, i64(first->leaf));
	sqlite3_bind_int64(st, 2, i64(last->leaf));
	sqlite3_bind_blob(st, 3, s->risk_buf, (int)len, SQLITE_STATIC);
	return step_done(s, st, "risk block insert");
}

static enum ht_err commit_head(struct ht_store *s,
			       const struct ht_store_commit *c)
{
	const struct ht_sth *h = c->head;
	sqlite3_stmt *st = s->stmt[ST_HEAD_INSERT];
	sqlite3_bind_int64(st, 1, i64(h->seq));
	sqlite3_bind_int64(st, 2, i64(h->tree_size));
	sqlite3_bind_int64(st, 3, i64(h->time_ns));
	sqlite3_bind_blob(st, 4, h->root, HT_HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, h->prev_hash, HT_HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_blob(st, 6, h->sig, (int)h->sig_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, i64(c->node_first));
	sqlite3_bind_int64(st, 8, (sqlite3_int64)c->node_count);
	sqlite3_bind_blob(st, 9, c->node_count ? (const void *)c->nodes : "",
			  (int)(c->node_count * HT_HASH_BYTES), SQLITE_STATIC);
	sqlite3_bind_blob(st, 10, c->fps_count ? (const void *)c->fps : "",
			  (int)(c->fps_count * HT_JOURNAL_FP_BYTES),
			  SQLITE_STATIC);
	return step_done(s, st, "head insert");
}

enum ht_err ht_store_commit(struct ht_store *s, struct ht_store_commit *c)
{
	if (s->readonly)
		return HT_ERR_INVALID;
	if (s->poisoned)
		return HT_ERR_POISONED;
	HT_ASSERT(c->events_count == 0 || c->event_offset[0] == 0);
	enum ht_err err = exec(s, "BEGIN IMMEDIATE");
	if (err)
		return err;
	err = commit_events(s, c);
	if (!err)
		err = commit_accounts(s, c);
	if (!err)
		err = commit_owners(s, c);
	if (!err)
		err = commit_history(s, c);
	if (!err)
		err = commit_risk(s, c);
	if (!err && c->finish)
		err = c->finish(c->finish_ctx, c);
	if (!err && c->head) {
		HT_ASSERT(c->head->tree_size == c->first_leaf + c->events_count);
		err = commit_head(s, c);
	}
	if (!err)
		err = exec(s, "COMMIT");
	if (err) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		s->poisoned = true;
	}
	return err;
}

/* ---- projections ------------------------------------------------------- */

/* Decode just what the projections need from an event's canonical bytes
 * (layout in ledger.h): kind, id, debit, credit, timestamp. */
static bool transfer_keys(const uint8_t *d, size_t len, const uint8_t **id,
			  const uint8_t **debit, const uint8_t **credit,
			  uint64_t *ts)
{
	if (len < 94 || d[0] != HT_EVENT_TRANSFER)
		return false;
	*id = d + 1;
	*debit = d + 17;
	*credit = d + 33;
	uint64_t t = 0;
	for (int i = 0; i < 8; i++)
		t = t << 8 | d[85 + i];
	*ts = t;
	return true;
}

/* The id of a refusal event (kind 4: u8 kind, id[16], result u16,
 * timestamp u64). */
static bool refusal_key(const uint8_t *d, size_t len, const uint8_t **id)
{
	if (len != 27 || !d || d[0] != HT_EVENT_REFUSAL)
		return false;
	*id = d + 1;
	return true;
}

static enum ht_err index_chunk(struct ht_store *s, uint64_t from,
			       uint64_t *next, bool *more)
{
	sqlite3_stmt *sel = NULL, *tid = NULL, *acc = NULL, *ref = NULL;
	enum ht_err err = prepare(s,
				  "SELECT leaf, data FROM event WHERE leaf >= ?1"
				  " ORDER BY leaf LIMIT ?2",
				  &sel);
	if (!err)
		err = prepare(s, "INSERT OR REPLACE INTO transfer_index(id, leaf)"
				 " VALUES (?1, ?2)", &tid);
	if (!err)
		err = prepare(s, "INSERT OR REPLACE INTO account_index(account,"
				 " timestamp, side, leaf) VALUES (?1,?2,?3,?4)",
			      &acc);
	if (!err)
		err = prepare(s, "INSERT OR REPLACE INTO refusal_index(id, leaf)"
				 " VALUES (?1, ?2)", &ref);
	uint64_t leaf = from, rows = 0;
	int rc = SQLITE_DONE;
	if (!err) {
		sqlite3_bind_int64(sel, 1, i64(from));
		sqlite3_bind_int64(sel, 2, INDEX_CHUNK_EVENTS);
	}
	while (!err && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
		const uint8_t *id, *dr, *cr;
		uint64_t ts;
		leaf = col_u64(sel, 0);
		rows++;
		const uint8_t *d = sqlite3_column_blob(sel, 1);
		size_t dn = (size_t)sqlite3_column_bytes(sel, 1);
		if (refusal_key(d, dn, &id)) {
			sqlite3_bind_blob(ref, 1, id, 16, SQLITE_STATIC);
			sqlite3_bind_int64(ref, 2, i64(leaf));
			err = step_done(s, ref, "refusal index");
			continue;
		}
		if (!transfer_keys(d, dn, &id, &dr, &cr, &ts))
			continue;
		sqlite3_bind_blob(tid, 1, id, 16, SQLITE_STATIC);
		sqlite3_bind_int64(tid, 2, i64(leaf));
		err = step_done(s, tid, "transfer index");
		for (int side = 1; side <= 2 && !err; side++) {
			sqlite3_bind_blob(acc, 1, side == 1 ? dr : cr, 16,
					  SQLITE_STATIC);
			sqlite3_bind_int64(acc, 2, i64(ts));
			sqlite3_bind_int(acc, 3, side);
			sqlite3_bind_int64(acc, 4, i64(leaf));
			err = step_done(s, acc, "account index");
		}
	}
	if (!err && rc != SQLITE_ROW && rc != SQLITE_DONE)
		err = sql_err(s, rc, "index scan");
	sqlite3_finalize(sel);
	sqlite3_finalize(tid);
	sqlite3_finalize(acc);
	sqlite3_finalize(ref);
	*next = rows ? leaf + 1 : from;
	*more = rows == INDEX_CHUNK_EVENTS;
	return err;
}

static enum ht_err watermark(struct ht_store *s, uint64_t *out)
{
	char buf[32];
	enum ht_err err = meta_get(s, "index_watermark", buf, sizeof buf);
	if (err)
		return err == HT_ERR_NOT_FOUND ? HT_ERR_CORRUPT : err;
	*out = strtoull(buf, NULL, 10);
	return HT_OK;
}

enum ht_err ht_store_index_catch_up(struct ht_store *s)
{
	if (s->readonly || s->poisoned)
		return HT_OK;
	bool more = true;
	while (more) {
		uint64_t from, next;
		enum ht_err err = watermark(s, &from);
		if (err)
			return err;
		if ((err = exec(s, "BEGIN IMMEDIATE")))
			return err;
		err = index_chunk(s, from, &next, &more);
		char buf[32];
		snprintf(buf, sizeof buf, "%llu", (unsigned long long)next);
		if (!err && next != from)
			err = meta_put(s, "index_watermark", buf);
		if (!err)
			err = exec(s, "COMMIT");
		if (err) {
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			return err;
		}
	}
	return HT_OK;
}

struct tail_find {
	uint8_t id[16];
	uint64_t leaf;
	bool found;
	bool refusal;       /* look for a refusal, else a transfer */
};

static int tail_find_fn(void *ctx, uint64_t leaf, const uint8_t *d, size_t n)
{
	struct tail_find *t = ctx;
	const uint8_t *id, *dr, *cr;
	uint64_t ts;
	bool hit = t->refusal ? refusal_key(d, n, &id)
			      : transfer_keys(d, n, &id, &dr, &cr, &ts);
	if (hit && !memcmp(id, t->id, 16)) {
		t->leaf = leaf;
		t->found = true;
		return 1;
	}
	return 0;
}

/* The leaf of id in a projection (transfer_index or refusal_index), or in
 * the tail it has not covered yet. */
static enum ht_err leaf_of_id(struct ht_store *s, ht_u128 id, bool refusal,
			      uint64_t *leaf)
{
	enum ht_err err = ht_store_index_catch_up(s);
	if (err)
		return err;
	sqlite3_stmt *st;
	struct tail_find t = {.found = false, .refusal = refusal};
	u128_be(id, t.id);
	if ((err = prepare(s, refusal ? "SELECT leaf FROM refusal_index WHERE id = ?1"
				      : "SELECT leaf FROM transfer_index WHERE id = ?1",
			   &st)))
		return err;
	sqlite3_bind_blob(st, 1, t.id, 16, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*leaf = col_u64(st, 0);
		sqlite3_finalize(st);
		return HT_OK;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sql_err(s, rc, "transfer index");
	uint64_t from;
	if ((err = watermark(s, &from)))
		return err;
	/* A reader cannot write the projection: scan the unindexed tail. */
	if ((err = ht_store_events_each(s, from, tail_find_fn, &t)))
		return err;
	if (!t.found)
		return HT_ERR_NOT_FOUND;
	*leaf = t.leaf;
	return HT_OK;
}

enum ht_err ht_store_transfer_leaf(struct ht_store *s, ht_u128 id,
				   uint64_t *leaf)
{
	return leaf_of_id(s, id, false, leaf);
}

enum ht_err ht_store_refusal_leaf(struct ht_store *s, ht_u128 id,
				  uint64_t *leaf)
{
	if (s->schema_version < 3)
		return HT_ERR_NOT_FOUND; /* a reader of an older store */
	return leaf_of_id(s, id, true, leaf);
}

/* Columns of a risk_decision row, in the order of risk_row_read. */
#define RISK_COLUMNS                                                          \
	"leaf, id, debit, credit, decision, score, reasons, rules_version,"   \
	" model_version, time_ms"

/* Read the current row of st (RISK_COLUMNS) into out, checking it. */
static enum ht_err risk_row_read(sqlite3_stmt *st, struct ht_risk_row *out)
{
	uint8_t id[16], dr[16], cr[16];
	size_t n[3];
	memset(out, 0, sizeof *out);
	out->leaf = col_u64(st, 0);
	const unsigned char *reasons = sqlite3_column_text(st, 6);
	const unsigned char *model = sqlite3_column_text(st, 8);
	int rlen = sqlite3_column_bytes(st, 6), mlen = sqlite3_column_bytes(st, 8);
	int dec = sqlite3_column_int(st, 4);
	if (!col_blob(st, 1, id, 16, &n[0]) || !col_blob(st, 2, dr, 16, &n[1]) ||
	    !col_blob(st, 3, cr, 16, &n[2]) || n[0] != 16 || n[1] != 16 ||
	    n[2] != 16 || dec < 0 || dec > 2 || !reasons || !model ||
	    rlen < 0 || (size_t)rlen >= sizeof out->reasons || mlen < 0 ||
	    (size_t)mlen >= sizeof out->model_version)
		return HT_ERR_CORRUPT;
	out->id = be_u128(id);
	out->debit_account_id = be_u128(dr);
	out->credit_account_id = be_u128(cr);
	out->decision = (uint8_t)dec;
	out->score = sqlite3_column_double(st, 5);
	memcpy(out->reasons, reasons, (size_t)rlen);
	out->has_rules = sqlite3_column_type(st, 7) != SQLITE_NULL;
	out->rules_version = (uint32_t)sqlite3_column_int64(st, 7);
	memcpy(out->model_version, model, (size_t)mlen);
	out->time_ms = sqlite3_column_int64(st, 9);
	return HT_OK;
}

/* The decision schema 3 stored for leaf (risk_decision), or NOT_FOUND. */
static enum ht_err risk_get_v3(struct ht_store *s, uint64_t leaf,
			       struct ht_risk_row *out)
{
	sqlite3_stmt *st;
	enum ht_err err = prepare(s, "SELECT " RISK_COLUMNS " FROM risk_decision"
				     " WHERE leaf = ?1", &st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, i64(leaf));
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		err = risk_row_read(st, out);
	else
		err = rc == SQLITE_DONE ? HT_ERR_NOT_FOUND
					: sql_err(s, rc, "risk decision");
	sqlite3_finalize(st);
	return err;
}

/* The risk block whose leaves span leaf: its row id (first leaf). */
static enum ht_err risk_block_of(struct ht_store *s, uint64_t leaf,
				 sqlite3_int64 *rowid)
{
	sqlite3_stmt *st;
	enum ht_err err = prepare(s, "SELECT first_leaf, last_leaf FROM"
				     " risk_block WHERE first_leaf <= ?1"
				     " ORDER BY first_leaf DESC LIMIT 1", &st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, i64(leaf));
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && col_u64(st, 1) >= leaf)
		*rowid = sqlite3_column_int64(st, 0);
	else
		err = rc == SQLITE_ROW || rc == SQLITE_DONE
			      ? HT_ERR_NOT_FOUND : sql_err(s, rc, "risk block");
	sqlite3_finalize(st);
	return err;
}

/* n bytes at off of an open blob, which must hold them (CORRUPT if not:
 * the offsets come from the blob itself). */
static enum ht_err blob_read(sqlite3_blob *b, void *out, size_t n, size_t off)
{
	size_t len = (size_t)sqlite3_blob_bytes(b);
	if (off > len || n > len - off)
		return HT_ERR_CORRUPT;
	if (n == 0)
		return HT_OK;
	return sqlite3_blob_read(b, out, (int)n, (int)off) == SQLITE_OK
		       ? HT_OK : HT_ERR_IO;
}

/* Find leaf among the records of block b (binary search by leaf, reading
 * only the records it visits) and read its decision into out. */
static enum ht_err risk_block_find(sqlite3_blob *b, uint64_t leaf,
				   struct ht_risk_row *out)
{
	uint8_t head[RISK_BLOCK_HEADER_BYTES], rec[RISK_BLOCK_RECORD_BYTES];
	uint32_t count, strings_bytes, off[2], len[2];
	enum ht_err err = blob_read(b, head, sizeof head, 0);
	if (!err)
		err = risk_block_header(head, (size_t)sqlite3_blob_bytes(b),
					&count, &strings_bytes);
	uint32_t lo = 0, hi = err ? 0 : count;
	while (!err && lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		err = blob_read(b, rec, 8, RISK_BLOCK_HEADER_BYTES +
				(size_t)mid * RISK_BLOCK_RECORD_BYTES +
				RISK_BLOCK_LEAF_OFFSET);
		if (!err && risk_block_u64(rec) < leaf)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!err && lo == count)
		return HT_ERR_NOT_FOUND;
	size_t strings = RISK_BLOCK_HEADER_BYTES +
			 (size_t)count * RISK_BLOCK_RECORD_BYTES;
	if (!err)
		err = blob_read(b, rec, sizeof rec, RISK_BLOCK_HEADER_BYTES +
				(size_t)lo * RISK_BLOCK_RECORD_BYTES);
	if (!err)
		err = risk_block_record(rec, strings_bytes, out, off, len);
	if (!err && out->leaf != leaf)
		return HT_ERR_NOT_FOUND;
	if (!err)
		err = blob_read(b, out->reasons, len[0], strings + off[0]);
	if (!err)
		err = blob_read(b, out->model_version, len[1], strings + off[1]);
	return err;
}

enum ht_err ht_store_risk_get(struct ht_store *s, uint64_t leaf,
			      struct ht_risk_row *out)
{
	if (s->schema_version < 3)
		return HT_ERR_NOT_FOUND;
	enum ht_err err = risk_get_v3(s, leaf, out);
	if (err != HT_ERR_NOT_FOUND || s->schema_version < 4)
		return err;
	sqlite3_int64 rowid = 0;
	err = risk_block_of(s, leaf, &rowid);
	if (err)
		return err;
	sqlite3_blob *b;
	int rc = sqlite3_blob_open(s->db, "main", "risk_block", "rows", rowid,
				   0, &b);
	if (rc != SQLITE_OK)
		return sql_err(s, rc, "risk block open");
	err = risk_block_find(b, leaf, out);
	sqlite3_blob_close(b);
	return err;
}

typedef int (*risk_fn)(void *ctx, const struct ht_risk_row *r);

/* The decisions of schema 3 (risk_decision), in leaf order; *stop when fn
 * asked to stop. */
static enum ht_err risk_each_v3(struct ht_store *s, int decision, risk_fn fn,
				void *ctx, struct ht_risk_row *row, bool *stop)
{
	sqlite3_stmt *st;
	enum ht_err err = prepare(s, decision < 0
				     ? "SELECT " RISK_COLUMNS " FROM risk_decision"
				       " ORDER BY leaf"
				     : "SELECT " RISK_COLUMNS " FROM risk_decision"
				       " WHERE decision = ?1 ORDER BY leaf", &st);
	if (err)
		return err;
	if (decision >= 0)
		sqlite3_bind_int(st, 1, decision);
	int rc = SQLITE_DONE;
	while (!err && !*stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		err = risk_row_read(st, row);
		*stop = !err && fn(ctx, row);
	}
	if (!err && !*stop && rc != SQLITE_DONE)
		err = sql_err(s, rc, "risk decisions");
	sqlite3_finalize(st);
	return err;
}

/* Every decision of one risk block (len bytes at b) that matches. */
static enum ht_err risk_each_in_block(const uint8_t *b, size_t len,
				      int decision, risk_fn fn, void *ctx,
				      struct ht_risk_row *row, bool *stop)
{
	uint32_t count, strings_bytes;
	enum ht_err err = b ? risk_block_header(b, len, &count, &strings_bytes)
			    : HT_ERR_CORRUPT;
	for (uint32_t k = 0; !err && !*stop && k < count; k++) {
		err = risk_block_row(b, count, strings_bytes, k, row);
		if (!err && k && row->leaf <= risk_block_u64(
			     b + RISK_BLOCK_HEADER_BYTES +
			     (size_t)(k - 1) * RISK_BLOCK_RECORD_BYTES))
			err = HT_ERR_CORRUPT; /* leaves strictly increase */
		if (!err && (decision < 0 || row->decision == decision))
			*stop = fn(ctx, row) != 0;
	}
	return err;
}

/* The decisions of schema 4 (risk_block), in leaf order. */
static enum ht_err risk_each_v4(struct ht_store *s, int decision, risk_fn fn,
				void *ctx, struct ht_risk_row *row, bool *stop)
{
	sqlite3_stmt *st;
	enum ht_err err = prepare(s, "SELECT rows FROM risk_block"
				     " ORDER BY first_leaf", &st);
	if (err)
		return err;
	int rc = SQLITE_DONE;
	while (!err && !*stop && (rc = sqlite3_step(st)) == SQLITE_ROW)
		err = risk_each_in_block(sqlite3_column_blob(st, 0),
					 (size_t)sqlite3_column_bytes(st, 0),
					 decision, fn, ctx, row, stop);
	if (!err && !*stop && rc != SQLITE_DONE)
		err = sql_err(s, rc, "risk blocks");
	sqlite3_finalize(st);
	return err;
}

enum ht_err ht_store_risk_each(struct ht_store *s, int decision,
			       int (*fn)(void *ctx, const struct ht_risk_row *r),
			       void *ctx)
{
	if (s->schema_version < 3)
		return HT_OK;
	struct ht_risk_row *row = malloc(sizeof *row);
	if (!row)
		return HT_ERR_NOMEM;
	bool stop = false;
	enum ht_err err = risk_each_v3(s, decision, fn, ctx, row, &stop);
	if (!err && !stop && s->schema_version >= 4)
		err = risk_each_v4(s, decision, fn, ctx, row, &stop);
	free(row);
	return err;
}

/* Timestamps are u64 stored bit-for-bit in signed INTEGER columns; hub
 * timestamps are ns since 1970 and stay below 2^63 (the year 2262), so a
 * bound at or above 2^63 is clamped: a minimum there matches nothing
 * (returns false), a maximum there means "no bound". */
static bool bind_filter(sqlite3_stmt *st, const struct ht_account_filter *f,
			uint8_t key[16])
{
	if (f->timestamp_min > INT64_MAX)
		return false;
	u128_be(f->account_id, key);
	sqlite3_bind_blob(st, 1, key, 16, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)f->timestamp_min);
	sqlite3_bind_int64(st, 3, f->timestamp_max && f->timestamp_max <= INT64_MAX
					  ? (sqlite3_int64)f->timestamp_max
					  : INT64_MAX);
	sqlite3_bind_int64(st, 4, f->limit);
	return true;
}

struct tail_scan {
	const struct ht_account_filter *f;
	uint8_t key[16];
	bool dr, cr;
	uint64_t *out;
	size_t n, cap; /* cap = room; reversed keeps the newest cap */
};

static int tail_scan_fn(void *ctx, uint64_t leaf, const uint8_t *d, size_t n)
{
	struct tail_scan *t = ctx;
	const uint8_t *id, *dr, *cr;
	uint64_t ts;
	if (!transfer_keys(d, n, &id, &dr, &cr, &ts))
		return 0;
	if (ts < t->f->timestamp_min ||
	    (t->f->timestamp_max && ts > t->f->timestamp_max))
		return 0;
	if (!((t->dr && !memcmp(dr, t->key, 16)) ||
	      (t->cr && !memcmp(cr, t->key, 16))))
		return 0;
	if (t->n < t->cap) {
		t->out[t->n++] = leaf;
		return 0;
	}
	if (!(t->f->flags & HT_FILTER_REVERSED))
		return 1; /* oldest first: full */
	memmove(t->out, t->out + 1, (t->cap - 1) * sizeof *t->out);
	t->out[t->cap - 1] = leaf;
	return 0;
}

/* Timestamps are u64 stored bit-for-bit; hub timestamps are ns since 1970
 * and stay below 2^63 until the year 2262, so signed order is time order. */
static enum ht_err indexed_leaves(struct ht_store *s,
				  const struct ht_account_filter *f, bool dr,
				  bool cr, uint64_t *out, size_t cap,
				  size_t *n_out)
{
	char sql[320];
	snprintf(sql, sizeof sql,
		 "SELECT leaf FROM account_index WHERE account = ?1 AND"
		 " timestamp >= ?2 AND timestamp <= ?3 %s ORDER BY timestamp %s"
		 " LIMIT ?4",
		 dr && cr ? "" : dr ? "AND side = 1" : "AND side = 2",
		 f->flags & HT_FILTER_REVERSED ? "DESC" : "ASC");
	sqlite3_stmt *st;
	uint8_t key[16];
	enum ht_err err = prepare(s, sql, &st);
	if (err)
		return err;
	size_t n = 0;
	if (!bind_filter(st, f, key))
		cap = 0;
	sqlite3_bind_int64(st, 4, (sqlite3_int64)cap);
	int rc = SQLITE_DONE;
	while (n < cap && (rc = sqlite3_step(st)) == SQLITE_ROW)
		out[n++] = col_u64(st, 0);
	if (n < cap && rc != SQLITE_DONE)
		err = sql_err(s, rc, "account transfers");
	sqlite3_finalize(st);
	*n_out = n;
	return err;
}

/*
 * A writer brings the projection up to date first. A reader cannot write
 * it, so it merges the indexed part with a scan of the events past the
 * watermark (all newer than anything indexed).
 */
enum ht_err ht_store_account_leaves(struct ht_store *s,
				    const struct ht_account_filter *f,
				    uint64_t *out, size_t *n_out)
{
	enum ht_err err = ht_store_index_catch_up(s);
	if (err)
		return err;
	struct tail_scan t = {.f = f, .out = out, .cap = f->limit};
	t.dr = f->flags & HT_FILTER_DEBITS;
	t.cr = f->flags & HT_FILTER_CREDITS;
	if (!t.dr && !t.cr)
		t.dr = t.cr = true;
	u128_be(f->account_id, t.key);
	uint64_t from;
	if ((err = watermark(s, &from)))
		return err;
	bool reversed = f->flags & HT_FILTER_REVERSED;
	size_t n = 0;
	if (!reversed) {
		err = indexed_leaves(s, f, t.dr, t.cr, out, f->limit, &n);
		t.n = n;
		if (!err && n < f->limit)
			err = ht_store_events_each(s, from, tail_scan_fn, &t);
		*n_out = err ? 0 : t.n;
		return err;
	}
	/* Newest first: the tail (newest) first, then the index. */
	err = ht_store_events_each(s, from, tail_scan_fn, &t);
	for (size_t i = 0; i < t.n / 2; i++) {
		uint64_t x = out[i];
		out[i] = out[t.n - 1 - i];
		out[t.n - 1 - i] = x;
	}
	if (!err && t.n < f->limit)
		err = indexed_leaves(s, f, t.dr, t.cr, out + t.n,
				     f->limit - t.n, &n);
	*n_out = err ? 0 : t.n + n;
	return err;
}

enum ht_err ht_store_account_balances(struct ht_store *s,
				      const struct ht_account_filter *f,
				      struct ht_balance *out, size_t *n_out)
{
	char sql[320];
	snprintf(sql, sizeof sql,
		 "SELECT timestamp, debits_pending, debits_posted,"
		 " credits_pending, credits_posted FROM balance_history WHERE"
		 " account = ?1 AND timestamp >= ?2 AND timestamp <= ?3"
		 " ORDER BY timestamp %s LIMIT ?4",
		 f->flags & HT_FILTER_REVERSED ? "DESC" : "ASC");
	sqlite3_stmt *st;
	uint8_t key[16];
	enum ht_err err = prepare(s, sql, &st);
	if (err)
		return err;
	size_t n = 0, limit = bind_filter(st, f, key) ? f->limit : 0;
	int rc = SQLITE_DONE;
	while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ht_balance *b = &out[n++];
		b->account_id = f->account_id;
		b->timestamp = col_u64(st, 0);
		b->debits_pending = col_u64(st, 1);
		b->debits_posted = col_u64(st, 2);
		b->credits_pending = col_u64(st, 3);
		b->credits_posted = col_u64(st, 4);
	}
	if (n < limit && rc != SQLITE_DONE)
		err = sql_err(s, rc, "balance history");
	sqlite3_finalize(st);
	*n_out = n;
	return err;
}

enum ht_err ht_store_snapshot_begin(struct ht_store *s)
{
	return exec(s, "BEGIN");
}

void ht_store_snapshot_end(struct ht_store *s)
{
	sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
}

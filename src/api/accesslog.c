/*
 * accesslog.c — the hash-chained access log: DATA/access.db, one writer
 * thread behind a bounded queue, the canonical entry encoding, and the
 * verifier.
 *
 * Owner: api. What it owns: access.db (schema, meta, the entry table),
 * DATA/access.lock, the queue and the writer thread. What it must never
 * do: drop an appended entry without saying so (a write failure poisons
 * the log and every later append and flush reports it), rewrite or delete
 * a written row, let the queue grow past its capacity (appenders wait),
 * or trust a length read from the database (the decoder checks each one
 * against the bytes left and its limit).
 *
 * Why one writer thread: SQLite has one writer per database anyway, and a
 * thread that takes everything queued and commits it in one transaction
 * turns N fsyncs into one, so the cost per entry falls as load rises
 * (group commit, as the hub does for the ledger). Appenders never touch
 * the database; they encode, copy into a ring slot and return.
 */
#include "huitong/accesslog.h"
#include "huitong/store.h"

#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCHEMA_VERSION 1
#define DB_NAME "access.db"
#define LOCK_NAME "access.lock"
#define GENESIS "huitong access log v1"
#define ENTRY_VERSION 1
#define FLAG_PATH_TRUNCATED 0x01u
#define FIXED_BYTES 25 /* version, flags, role, time, status, body, latency */
/* A data directory path, so DIR/access.db fits PATH_SIZE. */
#define DIR_BYTES_MAX 4096
#define PATH_SIZE (DIR_BYTES_MAX + 32)
/* Waiting for another connection's lock (a verifier never blocks the
 * writer in WAL mode; this covers a checkpoint or a manual sqlite3). */
#define BUSY_TIMEOUT_MS 5000

_Static_assert(FIXED_BYTES == 1 + 1 + 1 + 8 + 2 + 8 + 4, "fixed header");
_Static_assert(HT_ACCESS_ENTRY_BYTES_MAX < 65536, "slot length is a u16");
/* The role byte of an entry is the pki enum's value: fixed by the format
 * (docs/internals/accesslog.md), so pki must never renumber them. */
_Static_assert(HT_PKI_ROLE_PARTICIPANT == 1 && HT_PKI_ROLE_OPERATOR == 2 &&
		       HT_PKI_ROLE_REGULATOR == 3,
	       "role codes of the access log format v1");

/* ---- encoding --------------------------------------------------------- */

static uint8_t *put_be(uint8_t *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	return p + bytes;
}

static uint64_t get_be(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

/* The variable fields in encoding order: offset in the struct, limit,
 * bytes of the length prefix. */
static const struct field {
	size_t offset;
	size_t max;
	unsigned len_bytes;
	const char *name;
} fields[] = {
	{offsetof(struct ht_access_entry, participant),
	 HT_ACCESS_PARTICIPANT_BYTES_MAX, 1, "participant"},
	{offsetof(struct ht_access_entry, key_id), HT_ACCESS_KEY_ID_BYTES_MAX,
	 1, "key_id"},
	{offsetof(struct ht_access_entry, cert_serial),
	 HT_ACCESS_SERIAL_CHARS_MAX, 1, "cert_serial"},
	{offsetof(struct ht_access_entry, remote), HT_ACCESS_REMOTE_BYTES_MAX,
	 1, "remote"},
	{offsetof(struct ht_access_entry, method), HT_ACCESS_METHOD_BYTES_MAX,
	 1, "method"},
	{offsetof(struct ht_access_entry, path), HT_ACCESS_PATH_BYTES_MAX, 2,
	 "path"},
	{offsetof(struct ht_access_entry, outcome),
	 HT_ACCESS_OUTCOME_BYTES_MAX, 1, "outcome"},
};
#define FIELDS_COUNT (sizeof fields / sizeof fields[0])
_Static_assert(FIELDS_COUNT == 7,
	       "seven strings: HT_ACCESS_ENTRY_BYTES_MAX counts 6 one-byte and "
	       "1 two-byte length prefixes");

void ht_access_entry_set_path(struct ht_access_entry *e, const char *path,
			      size_t len)
{
	size_t n = 0;
	while (n < len && n < HT_ACCESS_PATH_BYTES_MAX && path[n])
		n++;
	if (n)
		memcpy(e->path, path, n);
	e->path[n] = '\0';
	e->path_truncated = n == HT_ACCESS_PATH_BYTES_MAX && len > n &&
			    path[n] != '\0';
}

const char *ht_access_role_name(enum ht_pki_role role)
{
	return role == 0 ? "" : ht_pki_role_name(role);
}

enum ht_err ht_access_entry_encode(const struct ht_access_entry *e,
				   uint8_t *out, size_t size, size_t *len)
{
	if (size < HT_ACCESS_ENTRY_BYTES_MAX)
		return HT_ERR_LIMIT;
	if ((unsigned)e->role > HT_PKI_ROLE_REGULATOR)
		return HT_ERR_INVALID;
	uint8_t *p = out;
	*p++ = ENTRY_VERSION;
	*p++ = e->path_truncated ? FLAG_PATH_TRUNCATED : 0;
	*p++ = (uint8_t)e->role;
	p = put_be(p, e->time_ns, 8);
	p = put_be(p, e->status, 2);
	p = put_be(p, e->body_bytes, 8);
	p = put_be(p, e->latency_us, 4);
	for (size_t i = 0; i < FIELDS_COUNT; i++) {
		const char *s = (const char *)e + fields[i].offset;
		size_t n = strnlen(s, fields[i].max + 1);
		if (n > fields[i].max) /* not terminated within its array */
			return HT_ERR_INVALID;
		if (i == 5 && e->path_truncated && n != fields[i].max)
			return HT_ERR_INVALID;
		p = put_be(p, n, fields[i].len_bytes);
		memcpy(p, s, n);
		p += n;
	}
	HT_ASSERT((size_t)(p - out) <= HT_ACCESS_ENTRY_BYTES_MAX);
	*len = (size_t)(p - out);
	return HT_OK;
}

static enum ht_err refuse(const char **why, const char *rule)
{
	*why = rule;
	return HT_ERR_CORRUPT;
}

/* The decoder behind ht_access_entry_decode; *why names the first rule
 * broken (for verify's message). */
static enum ht_err decode(const uint8_t *d, size_t len,
			  struct ht_access_entry *e, const char **why)
{
	memset(e, 0, sizeof *e);
	if (len < FIXED_BYTES)
		return refuse(why, "shorter than the fixed fields");
	if (d[0] != ENTRY_VERSION)
		return refuse(why, "unknown encoding version");
	if (d[1] & ~FLAG_PATH_TRUNCATED)
		return refuse(why, "unknown flag bits");
	if (d[2] > HT_PKI_ROLE_REGULATOR)
		return refuse(why, "unknown role");
	e->path_truncated = d[1] & FLAG_PATH_TRUNCATED;
	e->role = (enum ht_pki_role)d[2];
	e->time_ns = get_be(d + 3, 8);
	e->status = (uint16_t)get_be(d + 11, 2);
	e->body_bytes = get_be(d + 13, 8);
	e->latency_us = (uint32_t)get_be(d + 21, 4);
	size_t off = FIXED_BYTES;
	for (size_t i = 0; i < FIELDS_COUNT; i++) {
		unsigned lb = fields[i].len_bytes;
		if (len - off < lb)
			return refuse(why, "ends inside a length");
		size_t n = (size_t)get_be(d + off, lb);
		off += lb;
		if (n > fields[i].max)
			return refuse(why, "a string is over its limit");
		if (len - off < n)
			return refuse(why, "a string runs past the end");
		if (memchr(d + off, 0, n))
			return refuse(why, "a string holds a NUL byte");
		char *s = (char *)e + fields[i].offset;
		memcpy(s, d + off, n);
		s[n] = '\0';
		off += n;
	}
	if (off != len)
		return refuse(why, "trailing bytes");
	if (e->path_truncated && strlen(e->path) != HT_ACCESS_PATH_BYTES_MAX)
		return refuse(why, "truncated flag on a short path");
	return HT_OK;
}

enum ht_err ht_access_entry_decode(const uint8_t *data, size_t len,
				   struct ht_access_entry *out)
{
	const char *why;
	return decode(data, len, out, &why);
}

/* ---- the database, shared by the writer, verify and read ---------------- */

struct db_meta {
	uint32_t schema_version;
	enum ht_hash_alg hash;
	uint64_t head_seq;
	uint8_t head_hash[HT_HASH_BYTES];
};

/* Write a message into buf (size 0: none wanted). */
static void say(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(char *buf, size_t size, const char *fmt, ...)
{
	if (!buf || !size)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

/* say, then return err: "return note(msg, size, HT_ERR_CORRUPT, ...)". */
static enum ht_err note(char *buf, size_t size, enum ht_err err,
			const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static enum ht_err note(char *buf, size_t size, enum ht_err err,
			const char *fmt, ...)
{
	if (buf && size) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(buf, size, fmt, ap);
		va_end(ap);
	}
	return err;
}

static enum ht_err map_rc(int rc)
{
	if (rc == SQLITE_NOMEM)
		return HT_ERR_NOMEM;
	if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB)
		return HT_ERR_CORRUPT;
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return HT_ERR_LOCKED;
	return HT_ERR_IO;
}

/* A fixed query of ours that does not prepare (SQLITE_ERROR: "no such
 * table") means the file is not, or no longer, an access log. */
static enum ht_err schema_rc(int rc)
{
	return rc == SQLITE_ERROR ? HT_ERR_CORRUPT : map_rc(rc);
}

static enum ht_err db_path(const char *data, const char *name, char *out)
{
	if (strnlen(data, DIR_BYTES_MAX + 1) > DIR_BYTES_MAX)
		return HT_ERR_LIMIT;
	snprintf(out, PATH_SIZE, "%s/%s", data, name);
	return HT_OK;
}

/* Run sql; on failure say why in msg. */
static enum ht_err exec(sqlite3 *db, const char *sql, char *msg, size_t size)
{
	char *e = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &e);
	if (rc != SQLITE_OK)
		say(msg, size, "%s", e ? e : sqlite3_errstr(rc));
	sqlite3_free(e);
	return rc == SQLITE_OK ? HT_OK : map_rc(rc);
}

/* Open access.db. readonly: it must exist; else it is created. */
static enum ht_err db_open(const char *data, bool readonly, sqlite3 **out,
			   char *msg, size_t size)
{
	char path[PATH_SIZE];
	enum ht_err err = db_path(data, DB_NAME, path);
	if (err)
		return note(msg, size, err, "data directory path too long");
	if (readonly && access(path, F_OK) != 0)
		return note(msg, size, HT_ERR_NOT_FOUND, "no access log at %s",
			    path);
	int flags = readonly ? SQLITE_OPEN_READONLY
			     : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	int rc = sqlite3_open_v2(path, out, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		say(msg, size, "%s: %s", path,
		    *out ? sqlite3_errmsg(*out) : sqlite3_errstr(rc));
		sqlite3_close(*out);
		*out = NULL;
		return map_rc(rc);
	}
	sqlite3_busy_timeout(*out, BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(*out, 0);
	if (readonly)
		return exec(*out, "PRAGMA query_only=1;", msg, size);
	/* FULL: the WAL is fsync'd at every COMMIT, so a committed batch
	 * survives power loss. */
	return exec(*out,
		    "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		    " PRAGMA wal_autocheckpoint=4096; PRAGMA temp_store=MEMORY;"
		    " PRAGMA journal_size_limit=67108864;",
		    msg, size);
}

/* One meta value as text into out; HT_ERR_CORRUPT when absent. */
static enum ht_err meta_get(sqlite3 *db, const char *key, char *out,
			    size_t out_size, char *msg, size_t size)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key=?1",
				    -1, &st, NULL);
	if (rc != SQLITE_OK)
		return note(msg, size, schema_rc(rc), "meta: %s",
			    sqlite3_errmsg(db));
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	enum ht_err err = HT_OK;
	const unsigned char *v = rc == SQLITE_ROW ? sqlite3_column_text(st, 0)
						  : NULL;
	int n = rc == SQLITE_ROW ? sqlite3_column_bytes(st, 0) : 0;
	if (rc == SQLITE_ROW && v && n >= 0 && (size_t)n < out_size) {
		memcpy(out, v, (size_t)n + 1);
	} else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		say(msg, size, "meta: %s is %s", key,
		    rc == SQLITE_DONE ? "missing" : "malformed");
		err = HT_ERR_CORRUPT;
	} else {
		say(msg, size, "meta: %s", sqlite3_errmsg(db));
		err = map_rc(rc);
	}
	sqlite3_finalize(st);
	return err;
}

static enum ht_err meta_load(sqlite3 *db, struct db_meta *m, char *msg,
			     size_t size)
{
	char buf[2 * HT_HASH_BYTES + 1];
	uint64_t v;
	size_t n;
	enum ht_err err = meta_get(db, "schema_version", buf, sizeof buf, msg,
				   size);
	if (err)
		return err;
	if (ht_u64_parse(buf, strlen(buf), &v) || v == 0)
		return note(msg, size, HT_ERR_CORRUPT,
			    "meta: bad schema_version");
	if (v > SCHEMA_VERSION)
		return note(msg, size, HT_ERR_UNSUPPORTED,
			    "access log schema %" PRIu64
			    " is newer than this build (%d)",
			    v, SCHEMA_VERSION);
	m->schema_version = (uint32_t)v;
	if ((err = meta_get(db, "hash", buf, sizeof buf, msg, size)))
		return err;
	if (ht_hash_alg_parse(buf, &m->hash))
		return note(msg, size, HT_ERR_CORRUPT,
			    "meta: unknown hash '%s'", buf);
	if ((err = meta_get(db, "head_seq", buf, sizeof buf, msg, size)))
		return err;
	if (ht_u64_parse(buf, strlen(buf), &m->head_seq) ||
	    m->head_seq > INT64_MAX)
		return note(msg, size, HT_ERR_CORRUPT, "meta: bad head_seq");
	if ((err = meta_get(db, "head_hash", buf, sizeof buf, msg, size)))
		return err;
	if (strlen(buf) != 2 * HT_HASH_BYTES ||
	    ht_hex_decode(buf, strlen(buf), m->head_hash, HT_HASH_BYTES, &n))
		return note(msg, size, HT_ERR_CORRUPT, "meta: bad head_hash");
	return HT_OK;
}

static enum ht_err genesis(enum ht_hash_alg alg, uint8_t out[HT_HASH_BYTES])
{
	return ht_hash(alg, GENESIS, sizeof GENESIS - 1, out);
}

/* Open read-only, start one read transaction and load meta. */
static enum ht_err reader_begin(const char *data, sqlite3 **db,
				struct db_meta *m, char *msg, size_t size)
{
	enum ht_err err = db_open(data, true, db, msg, size);
	if (!err)
		err = exec(*db, "BEGIN", msg, size);
	if (!err)
		err = meta_load(*db, m, msg, size);
	return err;
}

static void reader_end(sqlite3 *db)
{
	if (!db)
		return;
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
}

/* ---- the writer ---------------------------------------------------------- */

/* One queued entry, already encoded. */
struct slot {
	uint16_t len;
	uint8_t data[HT_ACCESS_ENTRY_BYTES_MAX];
};

enum stmt_id { ST_BEGIN, ST_INSERT, ST_META, ST_COMMIT, ST_ROLLBACK,
	       ST__COUNT };

static const char *const stmt_sql[ST__COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_INSERT] = "INSERT INTO entry(seq, data, hash) VALUES (?1, ?2, ?3)",
	[ST_META] = "UPDATE meta SET value=?2 WHERE key=?1",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
};

struct ht_accesslog {
	/* The database and the chain: the opening thread sets them up, then
	 * only the writer thread touches them until close joins it. */
	sqlite3 *db;
	sqlite3_stmt *stmt[ST__COUNT];
	struct ht_hasher *hasher;
	int lock_fd;
	uint64_t head_seq;
	uint8_t head_hash[HT_HASH_BYTES];

	/* The queue, under mu: slots [done, enq) modulo cap are appended and
	 * not yet durable; the writer reads the ones it took without the lock
	 * (appenders never write a slot before done passes it). */
	pthread_mutex_t mu;
	pthread_cond_t work;     /* the writer waits for entries or stop */
	pthread_cond_t progress; /* appenders wait for room, flushes for done */
	struct slot *slots;
	uint32_t cap;
	uint64_t last_commit_ns;    /* CLOCK_MONOTONIC of the last batch */
	unsigned flushers;          /* threads in ht_accesslog_flush: the
				       writer does not pace for them */
	uint64_t enq, done;      /* entries ever appended / made durable */
	bool writer_idle, stopping, poisoned;
	bool thread_started, sync_ready;
	pthread_t thread;
	struct ht_accesslog_stats st;
};

static enum ht_err writer_fail(struct ht_accesslog *al, int rc,
			       const char *what)
{
	fprintf(stderr, "huitong: access log: %s: %s\n", what,
		sqlite3_errmsg(al->db));
	return map_rc(rc);
}

static enum ht_err run(struct ht_accesslog *al, enum stmt_id id,
		       const char *what)
{
	sqlite3_stmt *st = al->stmt[id];
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? HT_OK : writer_fail(al, rc, what);
}

static enum ht_err insert_entry(struct ht_accesslog *al, uint64_t seq,
				const struct slot *s,
				const uint8_t hash[HT_HASH_BYTES])
{
	sqlite3_stmt *st = al->stmt[ST_INSERT];
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	sqlite3_bind_blob(st, 2, s->data, s->len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, hash, HT_HASH_BYTES, SQLITE_STATIC);
	return run(al, ST_INSERT, "insert");
}

/* Update one existing meta row (a missing one means meta was damaged). */
static enum ht_err meta_set(struct ht_accesslog *al, const char *key,
			    const char *value)
{
	sqlite3_stmt *st = al->stmt[ST_META];
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	enum ht_err err = run(al, ST_META, key);
	if (!err && sqlite3_changes(al->db) != 1) {
		fprintf(stderr, "huitong: access log: meta has no %s row\n",
			key);
		err = HT_ERR_CORRUPT;
	}
	return err;
}

static enum ht_err put_head(struct ht_accesslog *al, uint64_t seq,
			    const uint8_t hash[HT_HASH_BYTES])
{
	char num[24], hex[2 * HT_HASH_BYTES + 1];
	snprintf(num, sizeof num, "%" PRIu64, seq);
	ht_hex_encode(hash, HT_HASH_BYTES, hex);
	enum ht_err err = meta_set(al, "head_seq", num);
	return err ? err : meta_set(al, "head_hash", hex);
}

/* Write entries [first, first + n) of the queue in one transaction, with
 * the new head in meta, and commit (fsync). The chain in memory moves
 * only once the commit returned. */
static enum ht_err write_batch(struct ht_accesslog *al, uint64_t first,
			       uint64_t n, uint64_t *commit_us)
{
	uint8_t hash[HT_HASH_BYTES];
	uint64_t seq = al->head_seq;
	memcpy(hash, al->head_hash, HT_HASH_BYTES);
	enum ht_err err = run(al, ST_BEGIN, "begin");
	for (uint64_t i = 0; !err && i < n; i++) {
		const struct slot *s = &al->slots[(first + i) % al->cap];
		HT_ASSERT(s->len >= FIXED_BYTES);
		HT_ASSERT(s->len <= HT_ACCESS_ENTRY_BYTES_MAX);
		HT_ASSERT(s->data[0] == ENTRY_VERSION);
		err = ht_hash3(al->hasher, hash, HT_HASH_BYTES, s->data,
			       s->len, NULL, 0, hash);
		if (!err)
			err = insert_entry(al, ++seq, s, hash);
	}
	if (!err)
		err = put_head(al, seq, hash);
	uint64_t t0 = ht_now_monotonic_ns();
	if (!err)
		err = run(al, ST_COMMIT, "commit");
	*commit_us = (ht_now_monotonic_ns() - t0) / 1000;
	if (err) {
		sqlite3_step(al->stmt[ST_ROLLBACK]);
		sqlite3_reset(al->stmt[ST_ROLLBACK]);
		return err;
	}
	HT_ASSERT(seq == al->head_seq + n);
	al->head_seq = seq;
	memcpy(al->head_hash, hash, HT_HASH_BYTES);
	return HT_OK;
}

/* Commit at most every PACE_NS while the queue is less than half full
 * and nobody waits for a flush: fewer, larger fsyncs, which leaves the
 * disk to the hub's commits (appenders never wait for the log, so this
 * delays no answer). Called with mu held. */
#define PACE_NS 5000000u
static void pace(struct ht_accesslog *al)
{
	if (!al->last_commit_ns)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t t = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	if (t >= al->last_commit_ns + PACE_NS)
		return;
	uint64_t until = al->last_commit_ns + PACE_NS;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ns = (uint64_t)ts.tv_nsec + (until - t);
	ts.tv_sec += (time_t)(ns / 1000000000u);
	ts.tv_nsec = (long)(ns % 1000000000u);
	while (!al->stopping && !al->flushers &&
	       al->enq - al->done < al->cap / 2 &&
	       pthread_cond_timedwait(&al->work, &al->mu, &ts) == 0)
		;
}

static void *writer_main(void *p)
{
	struct ht_accesslog *al = p;
	pthread_mutex_lock(&al->mu);
	for (;;) {
		while (al->enq == al->done && !al->stopping) {
			al->writer_idle = true;
			pthread_cond_wait(&al->work, &al->mu);
		}
		al->writer_idle = false;
		if (al->enq == al->done)
			break; /* stopping, and everything is written */
		pace(al);
		uint64_t first = al->done, n = al->enq - al->done, us;
		if (n > HT_ACCESSLOG_BATCH_ENTRIES_MAX)
			n = HT_ACCESSLOG_BATCH_ENTRIES_MAX;
		pthread_mutex_unlock(&al->mu);
		enum ht_err err = write_batch(al, first, n, &us);
		pthread_mutex_lock(&al->mu);
		if (err) {
			fprintf(stderr,
				"huitong: access log: a batch of %" PRIu64
				" entries failed (%s); the log is poisoned\n",
				n, ht_strerror(err));
			al->poisoned = true;
			pthread_cond_broadcast(&al->progress);
			break;
		}
		al->done += n;
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		al->last_commit_ns = (uint64_t)now.tv_sec * 1000000000u +
				     (uint64_t)now.tv_nsec;
		al->st.entries_total = al->head_seq;
		al->st.entries_written += n;
		al->st.batches++;
		al->st.commit_latency_us_last = us;
		al->st.batch_entries_last = n;
		pthread_cond_broadcast(&al->progress);
	}
	pthread_mutex_unlock(&al->mu);
	return NULL;
}

/* ---- open ------------------------------------------------------------- */

/* The hash of a new log: the caller's, else the hub store's, else SM3. */
static enum ht_err choose_hash(const char *data, enum ht_hash_alg want,
			       enum ht_hash_alg *out)
{
	struct ht_store *s = NULL;
	struct ht_store_config cfg;
	*out = want ? want : HT_HASH_SM3;
	if (want)
		return HT_OK;
	enum ht_err err = ht_store_open(data, true, &s);
	if (err == HT_ERR_NOT_FOUND)
		return HT_OK;
	if (!err)
		err = ht_store_get_config(s, &cfg);
	if (!err)
		*out = cfg.hash;
	ht_store_close(s);
	return err;
}

/* Create the schema when the database is new, in one transaction. */
static enum ht_err create_schema(struct ht_accesslog *al, const char *data,
				 enum ht_hash_alg want)
{
	char msg[256] = "", sql[512], hex[2 * HT_HASH_BYTES + 1];
	uint8_t h0[HT_HASH_BYTES];
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(al->db, "SELECT count(*) FROM sqlite_master"
				    " WHERE type='table' AND name='meta'",
				    -1, &st, NULL);
	if (rc != SQLITE_OK)
		return writer_fail(al, rc, "schema");
	bool fresh = sqlite3_step(st) == SQLITE_ROW &&
		     sqlite3_column_int(st, 0) == 0;
	sqlite3_finalize(st);
	if (!fresh)
		return HT_OK;
	enum ht_hash_alg alg;
	enum ht_err err = choose_hash(data, want, &alg);
	if (!err)
		err = genesis(alg, h0);
	if (err)
		return err;
	ht_hex_encode(h0, HT_HASH_BYTES, hex);
	snprintf(sql, sizeof sql,
		 "BEGIN IMMEDIATE;"
		 "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
		 "CREATE TABLE entry(seq INTEGER PRIMARY KEY,"
		 " data BLOB NOT NULL, hash BLOB NOT NULL);"
		 "INSERT INTO meta VALUES ('schema_version', '%d'),"
		 " ('hash', '%s'), ('head_seq', '0'), ('head_hash', '%s');"
		 "COMMIT;",
		 SCHEMA_VERSION, ht_hash_alg_name(alg), hex);
	err = exec(al->db, sql, msg, sizeof msg);
	if (err) {
		fprintf(stderr, "huitong: access log: create: %s\n", msg);
		sqlite3_exec(al->db, "ROLLBACK", NULL, NULL, NULL);
	}
	return err;
}

/* The newest row must be the recorded head: a log cut or edited at its
 * end is not extended (that would bury the damage under new entries). */
static enum ht_err check_tail(struct ht_accesslog *al)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(al->db, "SELECT seq, hash FROM entry"
				    " ORDER BY seq DESC LIMIT 1", -1, &st,
				    NULL);
	if (rc != SQLITE_OK)
		return writer_fail(al, rc, "tail");
	uint8_t h0[HT_HASH_BYTES];
	enum ht_err err = HT_OK;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		err = genesis(ht_hasher_alg(al->hasher), h0);
		if (!err && (al->head_seq != 0 ||
			     memcmp(h0, al->head_hash, HT_HASH_BYTES)))
			err = HT_ERR_CORRUPT;
	} else if (rc == SQLITE_ROW) {
		const void *h = sqlite3_column_blob(st, 1);
		if ((uint64_t)sqlite3_column_int64(st, 0) != al->head_seq ||
		    sqlite3_column_bytes(st, 1) != HT_HASH_BYTES || !h ||
		    memcmp(h, al->head_hash, HT_HASH_BYTES))
			err = HT_ERR_CORRUPT;
	} else {
		err = writer_fail(al, rc, "tail");
	}
	sqlite3_finalize(st);
	if (err == HT_ERR_CORRUPT)
		fprintf(stderr, "huitong: access log: the newest entry is not "
				"the recorded head (entry %" PRIu64 "); not "
				"extending it: run huitong audit access-log\n",
			al->head_seq);
	return err;
}

static enum ht_err take_lock(struct ht_accesslog *al, const char *data)
{
	char path[PATH_SIZE];
	enum ht_err err = db_path(data, LOCK_NAME, path);
	if (err)
		return err;
	al->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (al->lock_fd < 0)
		return HT_ERR_IO;
	if (flock(al->lock_fd, LOCK_EX | LOCK_NB) != 0)
		return errno == EWOULDBLOCK ? HT_ERR_LOCKED : HT_ERR_IO;
	return HT_OK;
}

/* Database, meta and chain state of a log being opened for writing. */
static enum ht_err open_db(struct ht_accesslog *al, const char *data,
			   enum ht_hash_alg want)
{
	char msg[256] = "";
	struct db_meta m;
	enum ht_err err = db_open(data, false, &al->db, msg, sizeof msg);
	if (!err)
		err = create_schema(al, data, want);
	if (!err)
		err = meta_load(al->db, &m, msg, sizeof msg);
	if (err) {
		if (msg[0])
			fprintf(stderr, "huitong: access log: %s\n", msg);
		return err;
	}
	if (want && want != m.hash) {
		fprintf(stderr, "huitong: access log: it uses %s, not %s\n",
			ht_hash_alg_name(m.hash), ht_hash_alg_name(want));
		return HT_ERR_INVALID;
	}
	al->head_seq = m.head_seq;
	memcpy(al->head_hash, m.head_hash, HT_HASH_BYTES);
	err = ht_hasher_create(m.hash, &al->hasher);
	for (int i = 0; !err && i < ST__COUNT; i++) {
		int rc = sqlite3_prepare_v2(al->db, stmt_sql[i], -1,
					    &al->stmt[i], NULL);
		if (rc != SQLITE_OK)
			err = writer_fail(al, rc, "prepare");
	}
	return err ? err : check_tail(al);
}

/* Queue, lock and thread. */
static enum ht_err start(struct ht_accesslog *al)
{
	al->slots = malloc((size_t)al->cap * sizeof *al->slots);
	if (!al->slots)
		return HT_ERR_NOMEM;
	if (pthread_mutex_init(&al->mu, NULL))
		return HT_ERR_NOMEM;
	if (pthread_cond_init(&al->work, NULL)) {
		pthread_mutex_destroy(&al->mu);
		return HT_ERR_NOMEM;
	}
	if (pthread_cond_init(&al->progress, NULL)) {
		pthread_cond_destroy(&al->work);
		pthread_mutex_destroy(&al->mu);
		return HT_ERR_NOMEM;
	}
	al->sync_ready = true;
	al->st.entries_total = al->head_seq;
	al->st.queue_capacity = al->cap;
	if (pthread_create(&al->thread, NULL, writer_main, al))
		return HT_ERR_NOMEM;
	al->thread_started = true;
	return HT_OK;
}

/* Free everything; the thread, when started, has been joined. */
static void destroy(struct ht_accesslog *al)
{
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(al->stmt[i]);
	if (al->db)
		sqlite3_close(al->db);
	if (al->lock_fd >= 0)
		close(al->lock_fd); /* releases the flock */
	ht_hasher_destroy(al->hasher);
	if (al->sync_ready) {
		pthread_cond_destroy(&al->progress);
		pthread_cond_destroy(&al->work);
		pthread_mutex_destroy(&al->mu);
	}
	free(al->slots);
	free(al);
}

enum ht_err ht_accesslog_open_opts(const char *data,
				   const struct ht_accesslog_options *opts,
				   struct ht_accesslog **out)
{
	struct ht_accesslog_options o = opts ? *opts
					     : (struct ht_accesslog_options){0};
	struct stat stt;
	if (o.queue_entries > HT_ACCESSLOG_QUEUE_ENTRIES_MAX ||
	    (o.hash && o.hash != HT_HASH_SM3 && o.hash != HT_HASH_SHA256))
		return HT_ERR_INVALID;
	if (strnlen(data, DIR_BYTES_MAX + 1) > DIR_BYTES_MAX)
		return HT_ERR_LIMIT;
	if (stat(data, &stt) != 0 || !S_ISDIR(stt.st_mode))
		return HT_ERR_NOT_FOUND;
	struct ht_accesslog *al = calloc(1, sizeof *al);
	if (!al)
		return HT_ERR_NOMEM;
	al->lock_fd = -1;
	al->cap = o.queue_entries ? o.queue_entries
				  : HT_ACCESSLOG_QUEUE_ENTRIES_MAX;
	enum ht_err err = take_lock(al, data);
	if (!err)
		err = open_db(al, data, o.hash);
	if (!err)
		err = start(al);
	if (err) {
		destroy(al);
		return err;
	}
	*out = al;
	return HT_OK;
}

enum ht_err ht_accesslog_open(const char *data, struct ht_accesslog **out)
{
	return ht_accesslog_open_opts(data, NULL, out);
}

/* ---- append, flush, close, stats ------------------------------------- */

enum ht_err ht_accesslog_append(struct ht_accesslog *al,
				const struct ht_access_entry *e)
{
	uint8_t buf[HT_ACCESS_ENTRY_BYTES_MAX];
	size_t len;
	enum ht_err err = ht_access_entry_encode(e, buf, sizeof buf, &len);
	if (err)
		return err;
	pthread_mutex_lock(&al->mu);
	while (!al->poisoned && !al->stopping && al->enq - al->done == al->cap)
		pthread_cond_wait(&al->progress, &al->mu);
	if (al->poisoned || al->stopping) {
		pthread_mutex_unlock(&al->mu);
		return HT_ERR_POISONED;
	}
	HT_ASSERT(al->enq - al->done < al->cap);
	struct slot *s = &al->slots[al->enq % al->cap];
	s->len = (uint16_t)len;
	memcpy(s->data, buf, len);
	al->enq++;
	if (al->writer_idle) {
		al->writer_idle = false;
		pthread_cond_signal(&al->work);
	}
	pthread_mutex_unlock(&al->mu);
	return HT_OK;
}

enum ht_err ht_accesslog_flush(struct ht_accesslog *al)
{
	pthread_mutex_lock(&al->mu);
	uint64_t target = al->enq;
	al->flushers++;
	pthread_cond_signal(&al->work); /* the writer stops pacing */
	while (al->done < target && !al->poisoned)
		pthread_cond_wait(&al->progress, &al->mu);
	al->flushers--;
	enum ht_err err = al->done >= target ? HT_OK : HT_ERR_POISONED;
	pthread_mutex_unlock(&al->mu);
	return err;
}

void ht_accesslog_close(struct ht_accesslog *al)
{
	if (!al)
		return;
	pthread_mutex_lock(&al->mu);
	al->stopping = true;
	pthread_cond_signal(&al->work);
	pthread_cond_broadcast(&al->progress);
	pthread_mutex_unlock(&al->mu);
	if (al->thread_started) /* it drains the queue before it returns */
		pthread_join(al->thread, NULL);
	if (al->done != al->enq)
		fprintf(stderr,
			"huitong: access log: %" PRIu64
			" entries were not written (the log is poisoned)\n",
			al->enq - al->done);
	destroy(al);
}

void ht_accesslog_stats(struct ht_accesslog *al,
			struct ht_accesslog_stats *out)
{
	pthread_mutex_lock(&al->mu);
	*out = al->st;
	out->queue_depth = al->enq - al->done;
	out->poisoned = al->poisoned;
	pthread_mutex_unlock(&al->mu);
}

/* ---- verify and read ---------------------------------------------------- */

struct walk {
	sqlite3 *db;
	struct ht_hasher *h;
	uint8_t prev[HT_HASH_BYTES];
	uint64_t count; /* entries verified */
	char *msg;
	size_t size;
};

/* Say what is wrong into the walk's message; HT_ERR_CORRUPT. */
static enum ht_err corrupt(struct walk *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static enum ht_err corrupt(struct walk *w, const char *fmt, ...)
{
	if (w->msg && w->size) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(w->msg, w->size, fmt, ap);
		va_end(ap);
	}
	return HT_ERR_CORRUPT;
}

/* The row's data: bounded, decoded and canonical. */
static enum ht_err check_data(struct walk *w, uint64_t seq,
			      const uint8_t *d, int n)
{
	struct ht_access_entry e;
	uint8_t again[HT_ACCESS_ENTRY_BYTES_MAX];
	const char *why;
	size_t len;
	if (n < 0 || n > HT_ACCESS_ENTRY_BYTES_MAX || (n > 0 && !d))
		return corrupt(w, "entry %" PRIu64 ": data is %d bytes, over "
			       "the limit of %d", seq, n,
			       HT_ACCESS_ENTRY_BYTES_MAX);
	if (decode(d, (size_t)n, &e, &why))
		return corrupt(w, "entry %" PRIu64 ": data does not decode: %s",
			       seq, why);
	if (ht_access_entry_encode(&e, again, sizeof again, &len) ||
	    len != (size_t)n || memcmp(again, d, len))
		return corrupt(w, "entry %" PRIu64 ": data is not canonical",
			       seq);
	return HT_OK;
}

/* Check one row against the chain so far. */
static enum ht_err walk_row(struct walk *w, sqlite3_stmt *st)
{
	uint8_t hash[HT_HASH_BYTES];
	sqlite3_int64 seq = sqlite3_column_int64(st, 0);
	uint64_t want = w->count + 1;
	if (seq < 1 || (uint64_t)seq < want)
		return corrupt(w, "an entry has seq %lld; seqs start at 1",
			       (long long)seq);
	if ((uint64_t)seq != want)
		return corrupt(w, "entry %" PRIu64 ": missing (the log goes on "
			       "at entry %lld)", want, (long long)seq);
	const uint8_t *d = sqlite3_column_blob(st, 1);
	int n = sqlite3_column_bytes(st, 1);
	enum ht_err err = check_data(w, want, d, n);
	if (err)
		return err;
	const void *stored = sqlite3_column_blob(st, 2);
	int stored_len = sqlite3_column_bytes(st, 2);
	if (stored_len != HT_HASH_BYTES || !stored)
		return corrupt(w, "entry %" PRIu64 ": hash is %d bytes, not %d",
			       want, stored_len, HT_HASH_BYTES);
	err = ht_hash3(w->h, w->prev, HT_HASH_BYTES, d, (size_t)n, NULL, 0,
		       hash);
	if (err)
		return note(w->msg, w->size, err, "hashing failed");
	if (memcmp(hash, stored, HT_HASH_BYTES))
		return corrupt(w, "entry %" PRIu64 ": hash does not chain",
			       want);
	memcpy(w->prev, hash, HT_HASH_BYTES);
	w->count = want;
	return HT_OK;
}

static enum ht_err walk_all(struct walk *w)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(w->db, "SELECT seq, data, hash FROM entry"
				    " ORDER BY seq", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return note(w->msg, w->size, schema_rc(rc), "entries: %s",
			    sqlite3_errmsg(w->db));
	enum ht_err err = HT_OK;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW)
		err = walk_row(w, st);
	if (!err && rc != SQLITE_DONE) {
		say(w->msg, w->size, "after entry %" PRIu64 ": %s", w->count,
		    sqlite3_errmsg(w->db));
		err = map_rc(rc);
	}
	sqlite3_finalize(st);
	return err;
}

/* The chain's end against the head recorded in meta. */
static enum ht_err check_head(struct walk *w, const struct db_meta *m)
{
	if (w->count < m->head_seq)
		return corrupt(w, "log ends at entry %" PRIu64 " but the last "
			       "recorded head is entry %" PRIu64,
			       w->count, m->head_seq);
	if (w->count > m->head_seq)
		return corrupt(w, "log goes on past the last recorded head "
			       "(entry %" PRIu64 ") to entry %" PRIu64,
			       m->head_seq, w->count);
	if (memcmp(w->prev, m->head_hash, HT_HASH_BYTES))
		return corrupt(w, "entry %" PRIu64 ": hash differs from the "
			       "last recorded head", w->count);
	return HT_OK;
}

enum ht_err ht_accesslog_verify(const char *data, uint64_t *entries,
				char *problem, size_t problem_size)
{
	struct db_meta m;
	sqlite3 *db = NULL;
	struct walk w = {.msg = problem, .size = problem_size};
	say(problem, problem_size, "%s", "");
	*entries = 0;
	enum ht_err err = reader_begin(data, &db, &m, problem, problem_size);
	if (!err && (err = ht_hasher_create(m.hash, &w.h)))
		say(problem, problem_size, "cannot create a hasher");
	if (!err && (err = genesis(m.hash, w.prev)))
		say(problem, problem_size, "hashing failed");
	w.db = db;
	if (!err)
		err = walk_all(&w);
	if (!err)
		err = check_head(&w, &m);
	*entries = w.count;
	ht_hasher_destroy(w.h);
	reader_end(db);
	return err;
}

enum ht_err ht_accesslog_read(const char *data, uint64_t first,
			      uint64_t count, ht_accesslog_entry_fn fn,
			      void *ctx)
{
	struct db_meta m;
	struct ht_access_entry e;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	const char *why;
	char msg[256] = "";
	enum ht_err err = reader_begin(data, &db, &m, msg, sizeof msg);
	int rc = err ? SQLITE_OK
		     : sqlite3_prepare_v2(db, "SELECT seq, data FROM entry"
					  " WHERE seq >= ?1 ORDER BY seq"
					  " LIMIT ?2", -1, &st, NULL);
	if (!err && rc != SQLITE_OK)
		err = map_rc(rc);
	if (!err) {
		sqlite3_bind_int64(st, 1, first > INT64_MAX ? INT64_MAX
						      : (sqlite3_int64)first);
		sqlite3_bind_int64(st, 2, count > INT64_MAX ? INT64_MAX
						      : (sqlite3_int64)count);
	}
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const uint8_t *d = sqlite3_column_blob(st, 1);
		int n = sqlite3_column_bytes(st, 1);
		if (n < 0 || n > HT_ACCESS_ENTRY_BYTES_MAX || (n > 0 && !d) ||
		    decode(d, (size_t)n, &e, &why))
			err = HT_ERR_CORRUPT;
		else if (fn(ctx, (uint64_t)sqlite3_column_int64(st, 0), &e))
			break;
	}
	if (!err && rc != SQLITE_ROW && rc != SQLITE_DONE)
		err = map_rc(rc);
	sqlite3_finalize(st);
	reader_end(db);
	return err;
}

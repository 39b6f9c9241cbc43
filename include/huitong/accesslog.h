/*
 * accesslog.h — the hub's hash-chained access log: one entry per API
 * request, allowed or refused (who, what, when, outcome), in DATA/access.db.
 *
 * Owner: api. This module owns access.db: its schema, the canonical
 * binary encoding of an entry, the hash chain, the single writer thread
 * and the bounded queue in front of it, and the verifier. It never decides
 * what a request may do and never reads the request itself: the server
 * fills a struct ht_access_entry and appends it. It must never drop an
 * appended entry silently, rewrite or delete a written one, or let its
 * queue grow without bound (a full queue makes appenders wait).
 *
 * The chain: entry n (n = 1, 2, ...) is stored as data_n, its canonical
 * encoding, and hash_n = H(hash_{n-1} || data_n), with
 * hash_0 = H("huitong access log v1") and H the log's hash algorithm (SM3
 * unless the hub store says otherwise). Every batch also records its last
 * (seq, hash) in the meta table, so deleting the newest entries is caught.
 * What the chain proves and what it cannot: docs/internals/accesslog.md.
 *
 * Durability: an entry is durable (fsync'd) once the batch that holds it
 * commits; ht_accesslog_flush waits for that. A crash (SIGKILL, power
 * loss) loses the entries appended but not yet committed, and nothing
 * else.
 */
#ifndef HUITONG_ACCESSLOG_H
#define HUITONG_ACCESSLOG_H

#include "huitong/crypto.h"
#include "huitong/pki.h"
#include "huitong/reqsig.h"

/* ---- limits (candidates for limits.h) -------------------------------- */

/* Participant id: a certificate's id (pki.h). */
#define HT_ACCESS_PARTICIPANT_BYTES_MAX 64
/* Request-signing key id (reqsig.h). */
#define HT_ACCESS_KEY_ID_BYTES_MAX 64
/* Client certificate serial: lowercase hex of at most 20 octets (RFC 5280). */
#define HT_ACCESS_SERIAL_CHARS_MAX 40
/* Remote address "ip:port" or "[ipv6]:port": the longest IPv6 text form is
 * 45 characters (INET6_ADDRSTRLEN - 1), plus "[", "]:" and 5 port digits. */
#define HT_ACCESS_REMOTE_BYTES_MAX 53
/* HTTP method (reqsig.h). */
#define HT_ACCESS_METHOD_BYTES_MAX 16
/* Request path (with query) as sent. Paths of the API are short; longer
 * ones are kept to their first 256 bytes and flagged truncated, so one
 * hostile request cannot make a large entry. */
#define HT_ACCESS_PATH_BYTES_MAX 256
/* Outcome code: "ok" or an error code of docs/api.md ("bad_signature"). */
#define HT_ACCESS_OUTCOME_BYTES_MAX 32

/* The largest encoded entry: 25 fixed bytes, 6 one-byte string lengths,
 * one two-byte path length and the strings at their limits (558). */
#define HT_ACCESS_ENTRY_BYTES_MAX                                          \
	(25 + 6 + 2 + HT_ACCESS_PARTICIPANT_BYTES_MAX +                      \
	 HT_ACCESS_KEY_ID_BYTES_MAX + HT_ACCESS_SERIAL_CHARS_MAX +           \
	 HT_ACCESS_REMOTE_BYTES_MAX + HT_ACCESS_METHOD_BYTES_MAX +           \
	 HT_ACCESS_PATH_BYTES_MAX + HT_ACCESS_OUTCOME_BYTES_MAX)

/* Entries queued between appenders and the writer thread. At 50,000
 * requests/s and a few ms per commit a batch holds a few hundred entries;
 * 8192 rides out a slow fsync of ~100 ms before appenders wait. The queue
 * is 8192 slots of HT_ACCESS_ENTRY_BYTES_MAX + 2 bytes (4.6 MB). */
#define HT_ACCESSLOG_QUEUE_ENTRIES_MAX 8192
/* Entries written in one transaction: half the queue, so appenders keep
 * half of it while a batch is being written; bounds one batch's WAL
 * (about 2.5 MB at most). */
#define HT_ACCESSLOG_BATCH_ENTRIES_MAX 4096
/* A verify problem message ("entry 17: hash does not chain"). */
#define HT_ACCESSLOG_PROBLEM_SIZE 160

_Static_assert(HT_ACCESS_PARTICIPANT_BYTES_MAX == HT_PKI_ID_BYTES_MAX,
	       "any participant id fits an entry");
_Static_assert(HT_ACCESS_KEY_ID_BYTES_MAX == HT_REQSIG_KEY_ID_BYTES_MAX,
	       "any key id fits an entry");
_Static_assert(HT_ACCESS_SERIAL_CHARS_MAX + 1 == HT_PKI_SERIAL_HEX_SIZE,
	       "any certificate serial fits an entry");
_Static_assert(HT_ACCESS_METHOD_BYTES_MAX == HT_REQSIG_METHOD_BYTES_MAX,
	       "any signed method fits an entry");
_Static_assert(HT_ACCESS_PATH_BYTES_MAX < 65536, "path length is two bytes");
_Static_assert(HT_ACCESS_REMOTE_BYTES_MAX < 256 &&
		       HT_ACCESS_OUTCOME_BYTES_MAX < 256,
	       "other lengths are one byte");
_Static_assert(HT_ACCESSLOG_BATCH_ENTRIES_MAX <= HT_ACCESSLOG_QUEUE_ENTRIES_MAX,
	       "a batch is taken from the queue");

/* ---- an entry ------------------------------------------------------- */

/*
 * One request. Fixed-size arrays, so the server fills one on the stack.
 * Every string is NUL-terminated within its array and holds any bytes but
 * NUL (recorded as given: a hostile path is logged, not cleaned); "" when
 * absent. A path longer than HT_ACCESS_PATH_BYTES_MAX is stored through
 * ht_access_entry_set_path, which keeps its first 256 bytes and sets
 * path_truncated; path_truncated requires a path of exactly 256 bytes.
 */
struct ht_access_entry {
	uint64_t time_ns;     /* wall clock when the request arrived, ns since
				 the Unix epoch (ht_now_wall_ns) */
	uint64_t body_bytes;  /* request body bytes received */
	uint32_t latency_us;  /* request arrival to answer sent */
	uint16_t status;      /* HTTP status answered */
	enum ht_pki_role role; /* 0 when unauthenticated */
	bool path_truncated;
	char participant[HT_ACCESS_PARTICIPANT_BYTES_MAX + 1];
	char key_id[HT_ACCESS_KEY_ID_BYTES_MAX + 1];
	char cert_serial[HT_ACCESS_SERIAL_CHARS_MAX + 1];
	char remote[HT_ACCESS_REMOTE_BYTES_MAX + 1];
	char method[HT_ACCESS_METHOD_BYTES_MAX + 1];
	char path[HT_ACCESS_PATH_BYTES_MAX + 1];
	char outcome[HT_ACCESS_OUTCOME_BYTES_MAX + 1];
};

/* Copy path[0..len) into e->path: the first HT_ACCESS_PATH_BYTES_MAX
 * bytes, setting e->path_truncated when len is longer. A NUL byte in path
 * ends it there (a C string cannot hold one). */
void ht_access_entry_set_path(struct ht_access_entry *e, const char *path,
			      size_t len);

/* Role name for output: "participant", "operator", "regulator", or ""
 * for 0 (unauthenticated). */
const char *ht_access_role_name(enum ht_pki_role role);

/*
 * The canonical encoding (version 1, docs/internals/accesslog.md). out
 * must hold size >= HT_ACCESS_ENTRY_BYTES_MAX bytes; *len gets the length.
 * Errors: HT_ERR_INVALID when e breaks a rule above (a string not
 * terminated within its array, a role other than 0..3, path_truncated
 * with a shorter path), HT_ERR_LIMIT when size is too small.
 */
enum ht_err ht_access_entry_encode(const struct ht_access_entry *e,
				   uint8_t *out, size_t size, size_t *len);

/*
 * Decode data[0..len) (outside input: every length is checked against the
 * bytes left and its limit before use). Only the exact bytes
 * ht_access_entry_encode makes are accepted: unknown version or flag bits,
 * lengths over a limit or past the end, NUL bytes in strings and trailing
 * bytes are HT_ERR_CORRUPT, and *out is then unspecified.
 */
enum ht_err ht_access_entry_decode(const uint8_t *data, size_t len,
				   struct ht_access_entry *out);

/* ---- the log -------------------------------------------------------- */

struct ht_accesslog;

struct ht_accesslog_options {
	/* Hash of a NEW log; 0 = the hub store's (DATA/huitong.db) when there
	 * is one, else SM3. An existing log keeps the one in its meta table,
	 * and a non-zero hash that differs from it is HT_ERR_INVALID. */
	enum ht_hash_alg hash;
	/* Queue capacity in entries, 0 = HT_ACCESSLOG_QUEUE_ENTRIES_MAX;
	 * 1..HT_ACCESSLOG_QUEUE_ENTRIES_MAX (small values are for tests). */
	uint32_t queue_entries;
};

/*
 * Open DATA/access.db for appending, creating it if absent, and start its
 * one writer thread. Takes DATA/access.lock (one writer per log). The
 * newest entry must match the head recorded in meta, else the log was
 * cut or edited and is not extended (HT_ERR_CORRUPT; run verify).
 * *out is freed by ht_accesslog_close.
 * Errors: HT_ERR_NOT_FOUND (no directory data), HT_ERR_LOCKED (another
 * writer), HT_ERR_CORRUPT, HT_ERR_UNSUPPORTED (newer schema), HT_ERR_LIMIT
 * (path too long), HT_ERR_IO, HT_ERR_NOMEM, HT_ERR_CRYPTO.
 */
enum ht_err ht_accesslog_open(const char *data, struct ht_accesslog **out);

/* ht_accesslog_open with options; opts may be NULL (all defaults).
 * Also HT_ERR_INVALID for options out of range. */
enum ht_err ht_accesslog_open_opts(const char *data,
				   const struct ht_accesslog_options *opts,
				   struct ht_accesslog **out);

/*
 * Append a copy of *e. Thread-safe. Validates and encodes e, puts it in
 * the queue and returns without waiting for the disk; when the queue is
 * full it waits for the writer to make room (never drops, never grows).
 * The chain's order is the order in which appends enter the queue.
 * Must not be called after ht_accesslog_close returned.
 * Errors: HT_ERR_INVALID (as ht_access_entry_encode; nothing queued),
 * HT_ERR_POISONED (a write failed earlier: nothing more is logged; reopen;
 * or ht_accesslog_close has begun).
 */
enum ht_err ht_accesslog_append(struct ht_accesslog *al,
				const struct ht_access_entry *e);

/*
 * Wait until every entry appended before this call is committed and
 * fsync'd. Thread-safe. Errors: HT_ERR_POISONED when a write failed
 * before they were all written.
 */
enum ht_err ht_accesslog_flush(struct ht_accesslog *al);

/* Flush, stop the writer thread, close the database, free al. A failure
 * to flush is reported on stderr (the entries are lost; verify still
 * passes on what was written). Accepts NULL. */
void ht_accesslog_close(struct ht_accesslog *al);

/* For /metrics. A consistent snapshot taken under the queue's lock. */
struct ht_accesslog_stats {
	uint64_t entries_total;       /* durable entries (the head's seq) */
	uint64_t entries_written;     /* of them, written since open */
	uint64_t batches;             /* transactions committed since open */
	uint64_t queue_depth;         /* appended, not yet durable */
	uint64_t queue_capacity;
	uint64_t commit_latency_us_last; /* last COMMIT, its fsync included */
	uint64_t batch_entries_last;
	bool poisoned;
};

/* Fill *out. Thread-safe; never fails. */
void ht_accesslog_stats(struct ht_accesslog *al,
			struct ht_accesslog_stats *out);

/*
 * Verify DATA/access.db in one read transaction (so it runs beside a
 * server that appends, and sees the log as of one commit): every entry
 * decodes canonically, seqs run 1, 2, ... without a gap, each hash chains
 * from the previous one, and the newest entry is the head recorded in
 * meta. *entries gets the number of entries that verified (all of them on
 * HT_OK). problem (may be NULL when problem_size is 0; give
 * HT_ACCESSLOG_PROBLEM_SIZE) gets "" or one line saying what is wrong,
 * e.g. "entry 17: hash does not chain" or "log ends at entry 90 but the
 * last recorded head is entry 120".
 * Errors: HT_ERR_CORRUPT (the log is not intact; problem says why),
 * HT_ERR_NOT_FOUND (no access.db), HT_ERR_UNSUPPORTED (newer schema),
 * HT_ERR_LIMIT (path too long), HT_ERR_IO, HT_ERR_NOMEM, HT_ERR_CRYPTO;
 * problem names the cause for these too when it can.
 */
enum ht_err ht_accesslog_verify(const char *data, uint64_t *entries,
				char *problem, size_t problem_size);

/*
 * Called for each entry read, in seq order; e is valid during the call
 * only. Return non-zero to stop early.
 */
typedef int (*ht_accesslog_entry_fn)(void *ctx, uint64_t seq,
				     const struct ht_access_entry *e);

/*
 * Read at most count entries from seq first on (seq 1 is the oldest), in
 * one read transaction, decoding each (the chain is not checked here:
 * that is ht_accesslog_verify's job). For the CLI's --tail.
 * Errors: HT_ERR_NOT_FOUND (no access.db), HT_ERR_CORRUPT (an entry does
 * not decode), HT_ERR_UNSUPPORTED, HT_ERR_LIMIT, HT_ERR_IO, HT_ERR_NOMEM.
 */
enum ht_err ht_accesslog_read(const char *data, uint64_t first,
			      uint64_t count, ht_accesslog_entry_fn fn,
			      void *ctx);

#endif

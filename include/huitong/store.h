/*
 * store.h — durable storage under the hub: events (journal leaves, refusals
 * included), account balances and owners, balance history, signed heads
 * with their Merkle nodes, and the projections (id and per-account
 * indexes).
 *
 * Owner: store. One implementation today: SQLite in a data directory (WAL,
 * synchronous=FULL). PostgreSQL comes later behind this same interface, so
 * it stays narrow and its SQL portable. The store never interprets money:
 * it writes what the hub hands it in one transaction and reads it back.
 *
 * Leases: a store opened for writing holds an exclusive lock on
 * DATA/writer.lock for its lifetime (one writer per store). Readers take no
 * lock; SQLite's WAL gives them a consistent snapshot per statement.
 *
 * After a failed commit the store is poisoned (HT_ERR_POISONED for every
 * later write); the transaction was rolled back.
 */
#ifndef HUITONG_STORE_H
#define HUITONG_STORE_H

#include "huitong/hub.h"

struct ht_store;

struct ht_store_config {
	enum ht_hash_alg hash;
	enum ht_sign_alg sign;
	char sm2_id[64];
	char public_key_pem[1024];
	uint32_t schema_version;
};

/* Create the schema in a new store (data dir created if absent).
 * HT_ERR_EXISTS if already initialised. */
enum ht_err ht_store_create(const char *data, const struct ht_store_config *cfg);

/* Open. Writer mode takes the lease (HT_ERR_LOCKED when held) and applies
 * pending migrations. HT_ERR_NOT_FOUND when not initialised;
 * HT_ERR_UNSUPPORTED (with a message on stderr) for a schema this build
 * cannot open: a newer one, or schema 1, whose burned ids are not journal
 * events ("store schema 1 predates refusal events: re-initialise"). */
enum ht_err ht_store_open(const char *data, bool readonly, struct ht_store **out);
void ht_store_close(struct ht_store *s); /* accepts NULL */

/* Path of a file inside the data directory (for the hub key). */
enum ht_err ht_store_path(const struct ht_store *s, const char *name,
			  char *out, size_t out_size);

enum ht_err ht_store_get_config(struct ht_store *s, struct ht_store_config *out);

/* Number of committed events (= journal leaves). */
enum ht_err ht_store_event_count(struct ht_store *s, uint64_t *out);

/* Iterate events from leaf index `from`, in order. fn returns non-zero to
 * stop early (HT_OK is still returned). leaf is the stored row key, so a
 * verifier can check the keys are contiguous. data is valid during the
 * call only. */
typedef int (*ht_store_event_fn)(void *ctx, uint64_t leaf, const uint8_t *data,
				 size_t len);
enum ht_err ht_store_events_each(struct ht_store *s, uint64_t from,
				 ht_store_event_fn fn, void *ctx);
/* The same over at most count events from leaf index `from`. */
enum ht_err ht_store_events_range(struct ht_store *s, uint64_t from,
				  uint64_t count, ht_store_event_fn fn,
				  void *ctx);
/* One event's data (out holds HT_LEAF_BYTES_MAX). */
enum ht_err ht_store_event_get(struct ht_store *s, uint64_t leaf, uint8_t *out,
			       size_t *len);

/* Account owners (hub.h, ht_hub_create_accounts_owned) by account slot,
 * in slot order: owner is len bytes plus a NUL, valid during the call, as
 * stored (the reader checks it). fn returns non-zero to stop. */
enum ht_err ht_store_owners_each(struct ht_store *s,
				 int (*fn)(void *ctx, uint64_t slot,
					   const char *owner, size_t len),
				 void *ctx);
/* The owner of account id into out (size bytes, NUL-terminated).
 * HT_ERR_NOT_FOUND: no such account or no owner; HT_ERR_CORRUPT: a stored
 * owner longer than size - 1. */
enum ht_err ht_store_account_owner(struct ht_store *s, ht_u128 id, char *out,
				   size_t size);
/* Accounts with their stored balances, by slot (creation order). */
enum ht_err ht_store_accounts_each(struct ht_store *s,
				   int (*fn)(void *ctx, uint64_t slot,
					     const struct ht_account *a),
				   void *ctx);
enum ht_err ht_store_account_get(struct ht_store *s, ht_u128 id,
				 struct ht_account *out);

/* Heads. */
enum ht_err ht_store_head_last(struct ht_store *s, struct ht_sth *out);
enum ht_err ht_store_head_get(struct ht_store *s, uint64_t seq,
			      struct ht_sth *out);
/* Iterate heads in seq order with their node runs (nodes: node_count
 * hashes numbered from node_first) and their leaves' fingerprints (fps:
 * fp_count of HT_JOURNAL_FP_BYTES each), valid during the call. */
enum ht_err ht_store_heads_each(struct ht_store *s,
				int (*fn)(void *ctx, const struct ht_sth *h,
					  uint64_t node_first,
					  const uint8_t *nodes,
					  size_t node_count,
					  const uint8_t *fps, size_t fp_count),
				void *ctx);
/* Hash of stored node number `seq` (ht_journal_node_seq numbering). */
enum ht_err ht_store_node_get(struct ht_store *s, uint64_t seq,
			      uint8_t out[HT_HASH_BYTES]);

/* One commit: everything is written in one transaction, then fsync'd. */
struct ht_store_account_row {
	uint64_t slot;
	const struct ht_account *account;
	bool insert;     /* created in this commit: INSERT, else UPDATE */
};
/* The owner of an account created in this commit (or earlier in the
 * session: it is written by the commit that makes the account durable). */
struct ht_store_owner_row {
	uint64_t slot;
	const char *owner;    /* NUL-terminated, 1..HT_OWNER_BYTES_MAX bytes */
};
/* A risk decision (hub.h, struct ht_risk_row) written by this commit;
 * leaf is one of this commit's leaves. Strings are len bytes, borrowed. */
struct ht_store_risk_row {
	uint64_t leaf;
	ht_u128 id, debit_account_id, credit_account_id;
	int64_t time_ms;
	double score;
	uint32_t rules_version;
	bool has_rules;
	uint8_t decision;
	const char *reasons;
	size_t reasons_len;
	const char *model_version;
	size_t model_len;
};
struct ht_store_commit {
	uint64_t first_leaf;             /* leaf index of events[0] */
	size_t events_count;
	const uint8_t *event_data;       /* concatenated encodings */
	const uint32_t *event_offset;    /* events_count + 1 offsets */
	size_t accounts_count;
	const struct ht_store_account_row *accounts; /* insert or update */
	size_t owners_count;
	const struct ht_store_owner_row *owners; /* inserted */
	size_t history_count;
	const struct ht_balance *history;
	size_t risk_count;
	const struct ht_store_risk_row *risk;
	const struct ht_sth *head;       /* NULL: journal off (bench only) */
	uint64_t node_first;
	size_t node_count;
	const uint8_t *nodes;            /* node_count * HT_HASH_BYTES */
	const uint8_t *fps;              /* leaf fingerprints, one per event */
	size_t fps_count;
	/* Called inside the transaction after the rows above are written and
	 * before the head is: lets the hub finish hashing and signing in
	 * parallel with the inserts and set head/node_* here. May be NULL.
	 * An error rolls the transaction back. */
	enum ht_err (*finish)(void *ctx, struct ht_store_commit *c);
	void *finish_ctx;
};
enum ht_err ht_store_commit(struct ht_store *s, struct ht_store_commit *c);

/* Projections (maintained off the commit path; see docs/internals/store.md).
 * Both catch up from their watermark first when the store is writable;
 * a read-only store also scans the not-yet-indexed tail. */
enum ht_err ht_store_transfer_leaf(struct ht_store *s, ht_u128 id,
				   uint64_t *leaf);
/* Leaves of an account's transfers matching f, in order (out holds
 * f->limit). */
enum ht_err ht_store_account_leaves(struct ht_store *s,
				    const struct ht_account_filter *f,
				    uint64_t *out, size_t *n_out);
enum ht_err ht_store_account_balances(struct ht_store *s,
				      const struct ht_account_filter *f,
				      struct ht_balance *out, size_t *n_out);
/* The leaf of the refusal that burned transfer id (a projection, like
 * ht_store_transfer_leaf). HT_ERR_NOT_FOUND when none (and always on a
 * store older than schema 3). */
enum ht_err ht_store_refusal_leaf(struct ht_store *s, ht_u128 id,
				  uint64_t *leaf);
/* The risk decision stored with leaf `leaf` (schema 3). HT_ERR_NOT_FOUND
 * when none; HT_ERR_CORRUPT for a row that is not what a commit writes. */
enum ht_err ht_store_risk_get(struct ht_store *s, uint64_t leaf,
			      struct ht_risk_row *out);
/* Every risk decision (decision < 0) or those of one decision, in leaf
 * order; fn returns non-zero to stop. */
enum ht_err ht_store_risk_each(struct ht_store *s, int decision,
			       int (*fn)(void *ctx, const struct ht_risk_row *r),
			       void *ctx);

/* A read snapshot: every read between begin and end sees the store as of
 * one commit, even while the writer goes on (journal verify beside a live
 * hub). Readers only. */
enum ht_err ht_store_snapshot_begin(struct ht_store *s);
void ht_store_snapshot_end(struct ht_store *s);

/* Bring the projections up to date now (writer only). */
enum ht_err ht_store_index_catch_up(struct ht_store *s);

#endif

/*
 * hub.h — one open huitong data store: the ledger engine, its durable
 * store and the signed Merkle journal, wired together with group commit.
 *
 * Owner: core. This is what the CLI, the server, the tests and the
 * benchmarks open. A hub opened for writing is the single writer of its
 * store: it holds the store's lease (a file lock for SQLite) until closed.
 *
 * Flow: ht_hub_create_* apply events to the in-memory engine and return
 * their results at once; ht_hub_commit makes every change since the last
 * commit durable in ONE store transaction (events — refusals included —,
 * balances, account owners, history, journal nodes and a signed tree
 * head) and fsyncs. Results must
 * not be acknowledged to anyone before the commit that follows them has
 * returned HT_OK. If a commit fails the hub is poisoned: close and reopen
 * (reopen replays the store, which holds exactly the acknowledged state).
 */
#ifndef HUITONG_HUB_H
#define HUITONG_HUB_H

#include "huitong/ledger.h"
#include "huitong/crypto.h"

struct ht_hub;

struct ht_hub_init_options {
	enum ht_hash_alg hash;      /* default HT_HASH_SM3 */
	enum ht_sign_alg sign;      /* default HT_SIGN_SM2 */
};

/*
 * Initialise a new data store at `data` (a directory, created if absent;
 * later also a postgresql:// URL): schema, hub signing key (written to
 * DATA/hub-key.pem, mode 0600), configuration and an empty signed head.
 * Errors: HT_ERR_EXISTS (already initialised), HT_ERR_IO, HT_ERR_CRYPTO,
 * HT_ERR_UNSUPPORTED (postgresql:// in this build).
 */
enum ht_err ht_hub_init(const char *data, const struct ht_hub_init_options *opt);

struct ht_hub_open_options {
	const struct ht_clock *clock; /* NULL: wall clock */
	bool readonly;                /* no lease, no writes; lookups and
					 proofs only */
	bool journal_off;             /* BENCHMARK ONLY: skip hashing and
					 signing to measure the journal's
					 cost. The store then fails `journal
					 verify`; never set it on real data. */
};

/*
 * Open an initialised store. Writer mode takes the lease (HT_ERR_LOCKED if
 * another process holds it), replays committed events into the engine and
 * checks the replayed balances against the stored ones (HT_ERR_CORRUPT on
 * any difference). Errors: HT_ERR_NOT_FOUND (not initialised), HT_ERR_IO,
 * HT_ERR_CORRUPT, HT_ERR_LOCKED, HT_ERR_NOMEM.
 */
enum ht_err ht_hub_open(const char *data, const struct ht_hub_open_options *opt,
			struct ht_hub **out);

/* Close; uncommitted changes are dropped (they were never acknowledged).
 * Accepts NULL. */
void ht_hub_close(struct ht_hub *hub);

/* The engine, for lookups. Valid until close. */
struct ht_ledger *ht_hub_ledger(struct ht_hub *hub);

/*
 * Apply a batch to the engine (see ledger.h); durable only after commit.
 * ht_hub_create_accounts is ht_hub_create_accounts_owned with owner NULL.
 * Errors: those of the ledger, HT_ERR_POISONED, HT_ERR_INVALID (readonly).
 *
 * Leaf indexes. Let `before` be ht_ledger_changes(ht_hub_ledger(hub))
 * .events_count just before a create call and `after` just after it; the
 * call appended events[before..after). At the next successful commit,
 * events[k] (every k < events_count, counted from the last commit) becomes
 * journal leaf head.tree_size + k, where head is the head before that
 * commit (ht_hub_head now; with journal_off tree_size still counts the
 * leaves). The appended events are, in this order (ledger.h, "Event
 * order"): the expiries due at the call (HT_EVENT_EXPIRY, oldest first;
 * they belong to no input), then one event per input whose result emits
 * one, in input order — the account or transfer for ok, an
 * HT_EVENT_REFUSAL for a transfer failure that burns its id — and nothing
 * for any other result. So an input's leaf is found by walking its results
 * past the leading expiries, and a request's own leaves are contiguous.
 * ht_hub_expire commits everything pending, other calls' events too.
 */
enum ht_err ht_hub_create_accounts(struct ht_hub *hub,
				   const struct ht_account *in, size_t n,
				   uint16_t *results);
enum ht_err ht_hub_create_transfers(struct ht_hub *hub,
				    const struct ht_transfer *in, size_t n,
				    uint16_t *results);

/* ht_hub_create_transfers with the hub's verdicts (refuse: NULL or n
 * result codes, 0 = apply as asked), as ht_ledger_create_transfers_screened
 * defines them; the server's risk engine refuses with HT_R_RISK_BLOCKED.
 * Errors: those of ht_hub_create_transfers, HT_ERR_INVALID (a verdict that
 * does not burn). */
enum ht_err ht_hub_create_transfers_screened(struct ht_hub *hub,
					     const struct ht_transfer *in,
					     size_t n, const uint16_t *refuse,
					     uint16_t *results);

/* ---- risk decisions (serve --risk) --------------------------------------
 *
 * What the risk engine decided for a scored transfer is stored by the
 * commit that stores the transfer's leaf (its transfer event, or its
 * refusal for a blocked one), in the same store transaction, keyed by that
 * leaf: so a decision is never durable without its payment, nor a scored
 * payment without its decision. It is not part of the leaf (the event
 * encoding is the ledger's contract); like an account's owner it is the
 * hub's record. The hub does not interpret it. */

/* Bytes of a decision's reasons (a JSON array of at most 16 reason codes
 * of at most 64 bytes) and of its model version, NUL included. */
#define HT_RISK_ROW_REASONS_BYTES 1280
#define HT_RISK_ROW_MODEL_BYTES 72

struct ht_risk_row {
	ht_u128 id;                  /* the transfer */
	ht_u128 debit_account_id;    /* as asked: a blocked transfer has no */
	ht_u128 credit_account_id;   /* stored event naming them */
	uint64_t leaf;               /* read: its leaf; note: ignored */
	int64_t time_ms;             /* when it was decided (hub wall clock) */
	double score;                /* 0..1 */
	uint32_t rules_version;      /* when has_rules */
	bool has_rules;
	uint8_t decision;            /* enum ht_decision (riskeval.h) */
	char reasons[HT_RISK_ROW_REASONS_BYTES];     /* JSON array text */
	char model_version[HT_RISK_ROW_MODEL_BYTES]; /* "" without a model */
};

/*
 * Record the decision of the transfer whose event is number event_index
 * of the changes since the last commit (ht_ledger_changes: its leaf will
 * be head.tree_size + event_index); written by the next commit. The event
 * must be a transfer or a refusal of row->id, and come after the event of
 * the previous note since the last commit (decisions are noted in leaf
 * order, one per leaf: the store keeps them sorted by leaf). Errors:
 * HT_ERR_INVALID (no such event, another id, an event not after the
 * previous note's, a decision out of range, texts not NUL-terminated in
 * their arrays), HT_ERR_NOMEM, HT_ERR_POISONED.
 */
enum ht_err ht_hub_risk_note(struct ht_hub *hub, size_t event_index,
			     const struct ht_risk_row *row);

/* The committed decision of transfer id. Errors: HT_ERR_NOT_FOUND (no
 * decision: not scored, or no such transfer), HT_ERR_CORRUPT (the row is
 * not what was written), HT_ERR_IO. */
enum ht_err ht_hub_risk_get(struct ht_hub *hub, ht_u128 id,
			    struct ht_risk_row *out);

/* Every committed decision (decision < 0) or those of one decision, in
 * leaf order; fn returns non-zero to stop. row is valid during the call.
 * Errors: those of the store. */
enum ht_err ht_hub_risk_each(struct ht_hub *hub, int decision,
			     int (*fn)(void *ctx, const struct ht_risk_row *row),
			     void *ctx);

/* Longest participant id (the owner of accounts), in bytes. */
#define HT_OWNER_BYTES_MAX 64

/* True when owner[0..len) is a valid participant id: 1..HT_OWNER_BYTES_MAX
 * bytes of [A-Za-z0-9._-]. */
bool ht_owner_valid(const char *owner, size_t len);

/*
 * Create accounts owned by a participant: owner is its id (NUL-terminated,
 * see ht_owner_valid) or NULL for none. The owner is recorded for every
 * account whose result is ok — not for one that failed or already existed
 * (`exists` keeps the first creator's owner) — and is written by the
 * commit that makes the account durable, in the same store transaction,
 * so an account is never durable without its owner nor an owner without
 * its account. It is not part of the journal leaf (the event encoding is
 * unchanged; docs/internals/store.md). Errors: those of
 * ht_hub_create_accounts; HT_ERR_INVALID, nothing done, for an owner that
 * is not a valid participant id; HT_ERR_NOMEM, nothing done.
 */
enum ht_err ht_hub_create_accounts_owned(struct ht_hub *hub,
					 const struct ht_account *in, size_t n,
					 const char *owner, uint16_t *results);

/*
 * The owner of an account: NULL when there is no such account or it has
 * no owner. A writer answers from memory, uncommitted accounts included
 * (like ht_ledger_account_get); a readonly hub from the store (committed
 * accounts), or NULL when the store cannot be read. The string is owned by
 * the hub and valid until ht_hub_close.
 */
const char *ht_hub_account_owner(struct ht_hub *hub, ht_u128 account_id);

/* Expire every pending transfer that is due and commit the expiries (a
 * server calls this from a timer; `ledger apply` before each lookup, so a
 * lookup never shows a pending transfer past its timeout). */
enum ht_err ht_hub_expire(struct ht_hub *hub);

/* Bring the id and per-account indexes (projections off the commit path)
 * up to date now. Queries do this themselves when needed; `ledger apply`
 * calls it at end of input so later readers find them current. */
enum ht_err ht_hub_index(struct ht_hub *hub);

/* A signed tree head. */
struct ht_sth {
	uint64_t seq;                    /* 0 = the empty head made by init */
	uint64_t tree_size;              /* leaves */
	uint64_t time_ns;
	uint8_t root[HT_HASH_BYTES];
	uint8_t prev_hash[HT_HASH_BYTES]; /* hash of the previous head's
					     signed bytes + signature; zeros
					     for seq 0 */
	uint8_t sig[HT_SIG_BYTES_MAX];
	size_t sig_len;
	enum ht_hash_alg hash;
	enum ht_sign_alg sign;
};

/*
 * Make everything since the last commit durable in one transaction and
 * sign the new head. With nothing to commit it returns HT_OK and leaves
 * the head as it was. head (may be NULL) gets the head after the commit.
 * Errors: HT_ERR_IO / HT_ERR_CRYPTO (the hub is then poisoned),
 * HT_ERR_POISONED.
 */
enum ht_err ht_hub_commit(struct ht_hub *hub, struct ht_sth *head);

/* The latest signed head. */
enum ht_err ht_hub_head(struct ht_hub *hub, struct ht_sth *out);

/* The canonical bytes a head's signature covers (see docs/internals/
 * journal.md); out must hold HT_STH_BYTES_MAX. */
#define HT_STH_BYTES_MAX 128
size_t ht_sth_signed_bytes(const struct ht_sth *h, uint8_t *out);

/* Lookups. Not found ids are skipped; *n_out gets how many were written
 * (out has room for n). */
enum ht_err ht_hub_lookup_accounts(struct ht_hub *hub, const ht_u128 *ids,
				   size_t n, struct ht_account *out,
				   size_t *n_out);
enum ht_err ht_hub_lookup_transfers(struct ht_hub *hub, const ht_u128 *ids,
				    size_t n, struct ht_transfer *out,
				    size_t *n_out);

/* Query over one account's transfers or balance history. */
enum ht_filter_flag {
	HT_FILTER_DEBITS = 1u << 0,   /* transfers where it is debited */
	HT_FILTER_CREDITS = 1u << 1,  /* transfers where it is credited */
	HT_FILTER_REVERSED = 1u << 2, /* newest first */
};
struct ht_account_filter {
	ht_u128 account_id;
	uint64_t timestamp_min;     /* inclusive; 0 = no bound */
	uint64_t timestamp_max;     /* inclusive; 0 = no bound */
	uint32_t limit;             /* 1..HT_QUERY_LIMIT_MAX */
	uint32_t flags;             /* ht_filter_flag; neither DEBITS nor
				       CREDITS means both */
};

/* Transfers of an account (out has room for filter->limit). */
enum ht_err ht_hub_account_transfers(struct ht_hub *hub,
				     const struct ht_account_filter *f,
				     struct ht_transfer *out, size_t *n_out);
/* Balance history of a `history` account (out has room for limit). */
enum ht_err ht_hub_account_balances(struct ht_hub *hub,
				    const struct ht_account_filter *f,
				    struct ht_balance *out, size_t *n_out);

/* Leaf index (0-based) of the event with this transfer id, and its data.
 * HT_ERR_NOT_FOUND when no committed transfer has the id. */
enum ht_err ht_hub_transfer_leaf(struct ht_hub *hub, ht_u128 id,
				 uint64_t *leaf_index);

/* Raw leaf data of leaf `index` (out must hold HT_LEAF_BYTES_MAX). */
enum ht_err ht_hub_leaf(struct ht_hub *hub, uint64_t index, uint8_t *out,
			size_t *len);

/*
 * Range proof (merkle.h, ht_merkle_range_proof) of leaves [first,
 * first + count) against the head made by the LAST successful commit of
 * this hub (the group commit's receipts: one proof per request). Only for
 * leaves that commit appended: count >= 1, first >= the previous head's
 * tree_size and first + count <= the head's tree_size, else
 * HT_ERR_INVALID; HT_ERR_INVALID too when this hub has made no commit
 * with events since it was opened, is readonly or runs with journal_off.
 * Served from memory: the hub keeps the frontier as it was before that
 * commit and every node (all levels) the commit completed, which is all a
 * range inside the commit needs, so no store read is made (any other node
 * would fall back to the store). What it keeps is replaced by the next
 * commit. proof holds HT_PROOF_HASHES_MAX hashes; *n gets how many were
 * written. Errors: HT_ERR_INVALID, HT_ERR_CRYPTO, HT_ERR_POISONED.
 */
enum ht_err ht_hub_prove_range_recent(struct ht_hub *hub, uint64_t first,
				      uint64_t count,
				      uint8_t proof[][HT_HASH_BYTES],
				      size_t *n);
/* The same against the tree of the first `size` leaves, any size <= the
 * head's, from the store (readonly hubs too). Errors: HT_ERR_INVALID (bad
 * range or size), HT_ERR_IO, HT_ERR_CORRUPT, HT_ERR_NOMEM, HT_ERR_CRYPTO. */
enum ht_err ht_hub_prove_range(struct ht_hub *hub, uint64_t first,
			       uint64_t count, uint64_t size,
			       uint8_t proof[][HT_HASH_BYTES], size_t *n);

/* Proofs against the tree of the first `size` leaves (size <= head). */
enum ht_err ht_hub_prove_inclusion(struct ht_hub *hub, uint64_t index,
				   uint64_t size,
				   uint8_t proof[][HT_HASH_BYTES],
				   size_t *count);
enum ht_err ht_hub_prove_consistency(struct ht_hub *hub, uint64_t old_size,
				     uint64_t new_size,
				     uint8_t proof[][HT_HASH_BYTES],
				     size_t *count);
/* Merkle root of the first `size` leaves (size <= head), computed from
 * O(log n) stored nodes. */
enum ht_err ht_hub_root_at(struct ht_hub *hub, uint64_t size,
			   uint8_t out[HT_HASH_BYTES]);

/* Head with sequence number seq. */
enum ht_err ht_hub_head_at(struct ht_hub *hub, uint64_t seq,
			   struct ht_sth *out);

/*
 * Recheck the whole store: every leaf rehashed from its event, every
 * stored node, every head's root, signature and link to its predecessor,
 * the replayed balances against the stored ones. Returns HT_OK when
 * intact, HT_ERR_CORRUPT when not, with a one-line description of the
 * first bad entry in problem ("event 1234: leaf hash differs from stored
 * node", "head 17: bad signature", ...). progress (may be NULL) is called
 * now and then with leaves checked and total.
 */
enum ht_err ht_hub_verify(const char *data, char *problem, size_t problem_size,
			  void (*progress)(void *ctx, uint64_t done,
					   uint64_t total),
			  void *ctx);

#endif

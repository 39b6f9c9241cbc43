/*
 * ledger_internal.h — the engine's state, shared by the files of
 * src/ledger/ (ledger.c: batches, chains, accounts, changes; transfer.c:
 * transfer checks and effects, expiry; replay.c: replay and full checks).
 *
 * Owner: ledger. Nothing outside src/ledger/ may include this header
 * except the ledger's own unit tests (for failure injection). See
 * docs/internals/ledger.md for the data structures and their invariants.
 */
#ifndef HUITONG_LEDGER_INTERNAL_H
#define HUITONG_LEDGER_INTERNAL_H

#include "huitong/ledger.h"
#include "idmap.h"

/* Transfer map values: index + 1 of a transfer, or this bit | index into
 * burned[] for a burned (failed) id. */
#define BURNED_BIT 0x80000000u
/* Largest object count: indices are u32 below BURNED_BIT and value
 * index + 1 must stay below it too. */
#define OBJECTS_MAX ((size_t)BURNED_BIT - 2)
/* xfer_pending[] entry of a transfer that is not pending. */
#define NOT_PENDING UINT32_MAX

#define NS_PER_S 1000000000ull

/* Per-account bookkeeping beside the public struct, same index. */
struct acct_meta {
	uint64_t dirty_epoch;   /* == ht_ledger.dirty_epoch: in dirty list */
	uint32_t ledger_slot;   /* index into ht_ledger.ledgers */
	uint16_t flags_created; /* flags as created (for exists checks) */
	uint16_t unused;
};

/* Running sums of one ledger (currency), u128 so they cannot overflow. */
struct ledger_sums {
	ht_u128 debits_pending;
	ht_u128 debits_posted;
	ht_u128 credits_pending;
	ht_u128 credits_posted;
	uint32_t ledger;
	uint32_t unused;
	uint64_t touch_epoch;   /* == ht_ledger.call_epoch: in touched list */
};

/* Side table entry of one pending transfer. */
struct pending {
	uint64_t expires_at;    /* ns; 0 = never */
	uint32_t xfer;          /* transfer index */
	uint8_t state;          /* enum ht_pending_state */
};

/* Expiry heap item, ordered by (expires_at, slot): oldest first and,
 * for equal times, creation order. */
struct heap_item {
	uint64_t expires_at;
	uint32_t slot;          /* pending slot */
};

/* Undo log entries of a linked chain. */
struct acct_undo {
	uint64_t debits_pending;
	uint64_t debits_posted;
	uint64_t credits_pending;
	uint64_t credits_posted;
	uint32_t index;
	uint16_t flags;
};
struct pending_undo {
	uint32_t slot;
	uint8_t state;
};

/* Lengths saved when a chain opens; undo truncates back to them. */
struct chain_mark {
	size_t accounts, transfers, pendings;
	size_t events, dirty, history;
	uint64_t last_ts;
	uint64_t last_event_ts;
};

struct ht_ledger {
	struct ht_clock clock;
	bool poisoned;
	bool replaying;         /* effects only: no changes, no undo */
	bool in_chain;          /* record undo entries */
	bool heap_stale;        /* rebuild the heap before the next expiry */
	uint64_t now;           /* clock reading of the current call */
	uint64_t last_ts;       /* last timestamp given out or replayed */
	uint64_t last_event_ts; /* last committed event's timestamp */
	uint64_t call_epoch;    /* one per mutating call */

	struct ht_account *accounts;
	struct acct_meta *meta;
	size_t account_count, account_cap, meta_cap;
	struct ht_idmap account_ids;

	struct ht_transfer *transfers;
	uint32_t *xfer_pending;     /* per transfer: pending slot or NOT_PENDING */
	size_t transfer_count, transfer_cap, xfer_pending_cap;
	struct ht_idmap transfer_ids; /* transfers and burned ids */
	ht_u128 *burned;            /* burned ids, in burn order */
	size_t burned_count, burned_cap;

	struct pending *pendings;
	size_t pending_count, pending_cap;
	struct heap_item *heap;
	size_t heap_count, heap_cap;

	struct ledger_sums *ledgers;
	size_t ledger_count, ledger_cap;
	struct ht_idmap ledger_ids;
	uint32_t *touched;          /* ledgers touched by the current call */
	size_t touched_count, touched_cap;

	/* changes since the last reset */
	struct ht_event *events;
	size_t event_count, event_cap;
	uint32_t *dirty_idx;
	const struct ht_account **dirty_ptr;
	size_t dirty_count, dirty_ptr_count, dirty_cap, dirty_ptr_cap;
	const struct ht_account *dirty_base; /* accounts base dirty_ptr uses */
	uint64_t dirty_epoch;
	struct ht_balance *history;
	size_t history_count, history_cap;

	/* linked chain undo */
	struct chain_mark chain;
	struct acct_undo *undo_acct;
	size_t undo_acct_count, undo_acct_cap;
	struct pending_undo *undo_pending;
	size_t undo_pending_count, undo_pending_cap;

	long alloc_budget;          /* failure injection; < 0 = unlimited */
};

/* ---- id look-ups ---- */

static inline ht_u128 ledger_xfer_key(const void *ctx, uint32_t val)
{
	const struct ht_ledger *l = ctx;
	if (val & BURNED_BIT)
		return l->burned[val & ~BURNED_BIT];
	return l->transfers[val - 1].id;
}

static inline ht_u128 ledger_account_key(const void *ctx, uint32_t val)
{
	const struct ht_ledger *l = ctx;
	return l->accounts[val - 1].id;
}

static inline ht_u128 ledger_ledger_key(const void *ctx, uint32_t val)
{
	const struct ht_ledger *l = ctx;
	return l->ledgers[val - 1].ledger;
}

/* Slot of a transfer or burned id (val: 0 absent, BURNED_BIT set for a
 * burned id, else transfer index + 1). */
static inline struct ht_idmap_slot *ledger_xfer_probe(const struct ht_ledger *l,
						      ht_u128 id)
{
	return ht_idmap_probe(&l->transfer_ids, id, ledger_xfer_key, l);
}

/* Index + 1 of a committed transfer, 0 when none (burned ids too). */
static inline uint32_t ledger_xfer_find(const struct ht_ledger *l, ht_u128 id)
{
	uint32_t v = ledger_xfer_probe(l, id)->val;
	return v & BURNED_BIT ? 0 : v;
}

/* Index + 1 of an account, 0 when none. */
static inline uint32_t ledger_account_find(const struct ht_ledger *l,
					   ht_u128 id)
{
	return ht_idmap_probe(&l->account_ids, id, ledger_account_key, l)->val;
}

/* Events looked ahead for prefetching (live batches and replay). */
#define PREFETCH_DISTANCE 8

/* Fetch ahead what a transfer will read: its id's slot in the transfer
 * index (for a post/void also the pending transfer's) and its accounts.
 * The account index is small enough to stay in cache, so its home slot is
 * read now and the account it names (most likely the right one) is
 * prefetched. A wrong guess costs nothing but the prefetch. */
static inline __attribute__((always_inline)) void
ledger_transfer_prefetch(const struct ht_ledger *l, const struct ht_transfer *t)
{
	ht_idmap_prefetch(&l->transfer_ids, t->id);
	if (t->pending_id)
		ht_idmap_prefetch(&l->transfer_ids, t->pending_id);
	const struct ht_idmap *m = &l->account_ids;
	uint32_t dv = m->slots[ht_idmap_hash(m, t->debit_account_id) & m->mask].val;
	uint32_t cv = m->slots[ht_idmap_hash(m, t->credit_account_id) & m->mask].val;
	if (dv)
		__builtin_prefetch(&l->accounts[dv - 1]);
	if (cv)
		__builtin_prefetch(&l->accounts[cv - 1]);
}

/* ---- memory (ledger.c) ---- */

/* Make *cap >= need for an array of elem-byte items (geometric growth).
 * Honors failure injection. */
enum ht_err ledger_array_reserve(struct ht_ledger *l, void *pp, size_t *cap,
				 size_t need, size_t elem);
/* Room for `extra` more transfer/burned ids (rebuilds the index). */
enum ht_err ledger_xfer_ids_reserve(struct ht_ledger *l, size_t extra);
/* Record a burned id (capacity reserved). */
void ledger_burned_insert(struct ht_ledger *l, struct ht_idmap_slot *slot,
			  ht_u128 id);
/* Accounts array growth keeps dirty pointers valid. */
enum ht_err ledger_accounts_reserve(struct ht_ledger *l, size_t extra);
enum ht_err ledger_transfers_reserve(struct ht_ledger *l, size_t extra);

/* ---- shared helpers (ledger.c) ---- */

/* Next timestamp: max(now, last + 1). Does not commit it. */
static inline uint64_t ledger_next_ts(const struct ht_ledger *l)
{
	HT_ASSERT(l->last_ts < UINT64_MAX);
	return l->now > l->last_ts ? l->now : l->last_ts + 1;
}

/* Record that account idx is about to change (undo log in a chain). */
static inline void ledger_acct_save(struct ht_ledger *l, uint32_t idx)
{
	if (!l->in_chain)
		return;
	const struct ht_account *a = &l->accounts[idx];
	struct acct_undo *u = &l->undo_acct[l->undo_acct_count++];
	u->index = idx;
	u->flags = a->flags;
	u->debits_pending = a->debits_pending;
	u->debits_posted = a->debits_posted;
	u->credits_pending = a->credits_pending;
	u->credits_posted = a->credits_posted;
}

/* Record that account idx changed at ts: dirty list (once per reset),
 * history snapshot for `history` accounts, ledger touched. */
void ledger_acct_changed(struct ht_ledger *l, uint32_t idx, uint64_t ts);

/* Append an event to the changes. */
struct ht_event *ledger_event_push(struct ht_ledger *l);

/* Insert a new account (fields from a, balances zero) with timestamp ts;
 * capacity reserved. Returns its index. */
uint32_t ledger_account_insert(struct ht_ledger *l, const struct ht_account *a,
			       uint64_t ts);

/* True when the account flags may be stored. */
bool ledger_account_flags_valid(uint16_t flags);

/* True when a transfer create failing with r burns its id. */
bool ledger_result_burns(uint16_t r);

/* Re-point the published dirty list after the accounts array moved. */
void ledger_dirty_ptrs_sync(struct ht_ledger *l);

/* An event committed at ts: advance the clocks of the engine. */
static inline void ledger_commit_ts(struct ht_ledger *l, uint64_t ts)
{
	HT_ASSERT(l->replaying || ts > l->last_ts);
	l->last_event_ts = ts;
	if (ts > l->last_ts)
		l->last_ts = ts;
}

/* ---- transfers (transfer.c) ---- */

/* Internal result of a replayed transfer whose stored amount is not the
 * amount the engine derives from the state: the store is corrupt. */
#define RESULT_REPLAY_MISMATCH HT_R__MAX

/* Create one transfer at timestamp ts (checks, then effects); returns the
 * enum ht_result. The id probe and capacity are the caller's. refuse (0:
 * none) is the result it gets instead of committing when every check
 * passes (ht_ledger_create_transfers_screened). */
uint16_t ledger_transfer_create(struct ht_ledger *l,
				const struct ht_transfer *t, uint64_t ts,
				uint16_t refuse);

/* ---- expiry heap (expire.c) ---- */
/* Expire the open pending transfer in slot at ts. */
void ledger_pending_expire(struct ht_ledger *l, uint32_t slot, uint64_t ts);
void ledger_heap_push(struct ht_ledger *l, uint64_t expires_at, uint32_t slot);
/* Items due at `now` (an upper bound on expiries). */
size_t ledger_heap_due(const struct ht_ledger *l, uint64_t now);
/* Expire every open pending transfer due at l->now, oldest first. */
void ledger_heap_expire_due(struct ht_ledger *l);
/* Rebuild from the pending table (after replay). Capacity reserved. */
void ledger_heap_rebuild(struct ht_ledger *l);

/* ---- failure injection for tests ---- */

/* Let the next n allocations succeed and fail every one after; n < 0
 * turns injection off. For tests only. */
void ht_ledger_test_fail_alloc_after(struct ht_ledger *l, long n);

#endif

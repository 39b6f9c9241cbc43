/*
 * ledger.h — the double-entry ledger engine: accounts, transfers, linked
 * chains, two-phase transfers, balancing, expiry, result codes.
 *
 * Owner: ledger. The engine is pure in-memory state plus a deterministic
 * state machine. It never touches storage, the network or the wall clock:
 * time comes from struct ht_clock, and every durable effect of a batch is
 * handed out through struct ht_ledger_changes for the hub to commit. The
 * same ordered input with the same clock gives the same state and the same
 * changes (and so the same journal leaves).
 *
 * Semantics follow TigerBeetle's where this header is silent. The order in
 * which checks apply is the order of enum ht_result below and is documented
 * with examples in docs/ledger.md.
 *
 * Threading: one thread at a time (the single writer).
 */
#ifndef HUITONG_LEDGER_H
#define HUITONG_LEDGER_H

#include "huitong/common.h"

/* ---- flags ---------------------------------------------------------- */

enum ht_account_flag {
	HT_ACCOUNT_LINKED = 1u << 0,                          /* "linked" */
	HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS = 1u << 1,  /* "debits_must_not_exceed_credits" */
	HT_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS = 1u << 2,  /* "credits_must_not_exceed_debits" */
	HT_ACCOUNT_HISTORY = 1u << 3,                         /* "history" */
	HT_ACCOUNT_CLOSED = 1u << 4,                          /* "closed" */
};
#define HT_ACCOUNT_FLAGS_ALL 0x1fu

enum ht_transfer_flag {
	HT_TRANSFER_LINKED = 1u << 0,                 /* "linked" */
	HT_TRANSFER_PENDING = 1u << 1,                /* "pending" */
	HT_TRANSFER_POST_PENDING = 1u << 2,           /* "post_pending_transfer" */
	HT_TRANSFER_VOID_PENDING = 1u << 3,           /* "void_pending_transfer" */
	HT_TRANSFER_BALANCING_DEBIT = 1u << 4,        /* "balancing_debit" */
	HT_TRANSFER_BALANCING_CREDIT = 1u << 5,       /* "balancing_credit" */
	HT_TRANSFER_CLOSING_DEBIT = 1u << 6,          /* "closing_debit" */
	HT_TRANSFER_CLOSING_CREDIT = 1u << 7,         /* "closing_credit" */
};
#define HT_TRANSFER_FLAGS_ALL 0xffu

/* Flag names as used in JSON (see comments above). name returns NULL for
 * a bit that is not a single known flag; parse returns HT_ERR_INVALID for
 * an unknown name. */
const char *ht_account_flag_name(uint16_t bit);
enum ht_err ht_account_flag_parse(const char *name, size_t len, uint16_t *bit);
const char *ht_transfer_flag_name(uint16_t bit);
enum ht_err ht_transfer_flag_parse(const char *name, size_t len, uint16_t *bit);

/* ---- objects -------------------------------------------------------- */

struct ht_account {
	ht_u128 id;
	uint64_t debits_pending;
	uint64_t debits_posted;
	uint64_t credits_pending;
	uint64_t credits_posted;
	uint64_t timestamp;          /* hub time of creation, ns; set by engine */
	uint32_t ledger;             /* e.g. 156 = CNY */
	uint16_t code;
	uint16_t flags;              /* enum ht_account_flag */
	uint8_t user_data_len;
	char user_data[HT_USER_DATA_BYTES_MAX]; /* not NUL-terminated */
};

/*
 * A transfer as requested (input) and as committed (stored). For a
 * committed post_pending_transfer/void_pending_transfer the engine fills
 * debit_account_id, credit_account_id, ledger and code from the pending
 * transfer and amount with the amount actually posted (void: the amount
 * released). For a balancing transfer, amount is the clamped amount.
 */
struct ht_transfer {
	ht_u128 id;
	ht_u128 debit_account_id;
	ht_u128 credit_account_id;
	ht_u128 pending_id;          /* post/void: the pending transfer */
	uint64_t amount;             /* minor units (fen) */
	uint64_t timestamp;          /* set by engine; ignored on input */
	uint32_t ledger;
	uint32_t timeout_s;          /* pending only; 0 = never expires */
	uint16_t code;
	uint16_t flags;              /* enum ht_transfer_flag */
	uint8_t user_data_len;
	char user_data[HT_USER_DATA_BYTES_MAX];
};

/* Balance snapshot of a `history` account after a transfer changed it. */
struct ht_balance {
	ht_u128 account_id;
	uint64_t timestamp;          /* the transfer's (or expiry's) timestamp */
	uint64_t debits_pending;
	uint64_t debits_posted;
	uint64_t credits_pending;
	uint64_t credits_posted;
};

/* ---- results -------------------------------------------------------- */

/*
 * One result per event. Values are stable (a refusal event stores one in
 * the journal, HT_EVENT_REFUSAL):
 * append new codes at the end of their group's numbering, never renumber.
 * The checks apply in the order listed for each kind of event.
 */
enum ht_result {
	HT_R_OK = 0,
	/* chain */
	HT_R_LINKED_EVENT_FAILED = 1,
	HT_R_LINKED_EVENT_CHAIN_OPEN = 2,
	/* field validation (accounts and transfers) */
	HT_R_ID_MUST_NOT_BE_ZERO = 10,
	HT_R_ID_MUST_NOT_BE_INT_MAX = 11,
	HT_R_FLAGS_ARE_MUTUALLY_EXCLUSIVE = 12,
	HT_R_DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO = 13,
	HT_R_DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX = 14,
	HT_R_CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO = 15,
	HT_R_CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX = 16,
	HT_R_ACCOUNTS_MUST_BE_DIFFERENT = 17,
	HT_R_PENDING_ID_MUST_BE_ZERO = 18,
	HT_R_PENDING_ID_MUST_NOT_BE_ZERO = 19,
	HT_R_PENDING_ID_MUST_NOT_BE_INT_MAX = 20,
	HT_R_PENDING_ID_MUST_BE_DIFFERENT = 21,
	HT_R_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER = 22,
	HT_R_CLOSING_TRANSFER_MUST_BE_PENDING = 23,
	HT_R_AMOUNT_MUST_NOT_BE_ZERO = 24,
	HT_R_LEDGER_MUST_NOT_BE_ZERO = 25,
	HT_R_CODE_MUST_NOT_BE_ZERO = 26,
	/* idempotency */
	HT_R_ID_ALREADY_FAILED = 40,
	HT_R_EXISTS_WITH_DIFFERENT_FLAGS = 41,
	HT_R_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID = 42,
	HT_R_EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID = 43,
	HT_R_EXISTS_WITH_DIFFERENT_AMOUNT = 44,
	HT_R_EXISTS_WITH_DIFFERENT_PENDING_ID = 45,
	HT_R_EXISTS_WITH_DIFFERENT_TIMEOUT = 46,
	HT_R_EXISTS_WITH_DIFFERENT_LEDGER = 47,
	HT_R_EXISTS_WITH_DIFFERENT_CODE = 48,
	HT_R_EXISTS_WITH_DIFFERENT_USER_DATA = 49,
	HT_R_EXISTS = 50,
	/* post / void */
	HT_R_PENDING_TRANSFER_NOT_FOUND = 60,
	HT_R_PENDING_TRANSFER_NOT_PENDING = 61,
	HT_R_PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID = 62,
	HT_R_PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID = 63,
	HT_R_PENDING_TRANSFER_HAS_DIFFERENT_LEDGER = 64,
	HT_R_PENDING_TRANSFER_HAS_DIFFERENT_CODE = 65,
	HT_R_EXCEEDS_PENDING_TRANSFER_AMOUNT = 66,
	HT_R_PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT = 67,
	HT_R_PENDING_TRANSFER_ALREADY_POSTED = 68,
	HT_R_PENDING_TRANSFER_ALREADY_VOIDED = 69,
	HT_R_PENDING_TRANSFER_EXPIRED = 70,
	/* accounts */
	HT_R_DEBIT_ACCOUNT_NOT_FOUND = 80,
	HT_R_CREDIT_ACCOUNT_NOT_FOUND = 81,
	HT_R_ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER = 82,
	HT_R_TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS = 83,
	HT_R_DEBIT_ACCOUNT_CLOSED = 84,
	HT_R_CREDIT_ACCOUNT_CLOSED = 85,
	/* balances */
	HT_R_OVERFLOWS_DEBITS_PENDING = 90,
	HT_R_OVERFLOWS_CREDITS_PENDING = 91,
	HT_R_OVERFLOWS_DEBITS_POSTED = 92,
	HT_R_OVERFLOWS_CREDITS_POSTED = 93,
	HT_R_OVERFLOWS_DEBITS = 94,
	HT_R_OVERFLOWS_CREDITS = 95,
	HT_R_OVERFLOWS_TIMEOUT = 96,
	HT_R_EXCEEDS_CREDITS = 97,
	HT_R_EXCEEDS_DEBITS = 98,
	/* hub policy: refused by the hub after every ledger check passed */
	HT_R_RISK_BLOCKED = 100,
	/* the switch's liquidity policy (serve, POST /v1/payments) */
	HT_R_NET_DEBIT_CAP_EXCEEDED = 101,
	HT_R_PARTICIPANT_SUSPENDED = 102,
	HT_R__MAX = 128
};

/* snake_case name ("ok", "exceeds_credits", ...); NULL for unknown. */
const char *ht_result_name(int result);

/*
 * Account creation, checks in this order:
 *   linked_event_failed / linked_event_chain_open (see chains)
 *   id_must_not_be_zero, id_must_not_be_int_max,
 *   flags_are_mutually_exclusive (both must_not_exceed flags),
 *   ledger_must_not_be_zero, code_must_not_be_zero,
 *   then if the id exists: exists_with_different_flags, _user_data,
 *   _ledger, _code (first differing field in that order), else exists.
 *   (linked is ignored when comparing flags; input balances and timestamp
 *   are ignored.)
 * Accounts may be created already `closed` (frozen). Failed account
 * creates do not burn the id.
 *
 * Transfer creation, checks in this order:
 *   id_must_not_be_zero, id_must_not_be_int_max,
 *   flags_are_mutually_exclusive: pending with post/void; post with void;
 *     balancing_* with post/void; closing_* with post/void,
 *   closing_transfer_must_be_pending (closing_* without pending),
 *   For an ordinary or pending transfer (not post/void):
 *     debit_account_id_must_not_be_zero/_int_max, credit_..._zero/_int_max,
 *     accounts_must_be_different, pending_id_must_be_zero,
 *     timeout_reserved_for_pending_transfer (timeout_s != 0 without
 *     pending), amount_must_not_be_zero, ledger_must_not_be_zero,
 *     code_must_not_be_zero.
 *   For post/void: pending_id_must_not_be_zero, pending_id_must_not_be_int_max,
 *     pending_id_must_be_different (pending_id == id),
 *     timeout_reserved_for_pending_transfer. Here debit_account_id,
 *     credit_account_id, ledger, code and amount may be 0 ("take the
 *     pending transfer's").
 *   id_already_failed: an earlier create of this id failed with a code
 *     that burns it (below).
 *   exists_with_different_flags, _debit_account_id, _credit_account_id,
 *     _amount, _pending_id, _timeout, _ledger, _code, _user_data, exists:
 *     compared against the committed transfer; a field the request left 0
 *     where 0 means "inherit" (post/void) matches; for balancing
 *     transfers and posts with amount 0 the stored (clamped/actual) amount
 *     matches any requested amount >= it (balancing) or 0 (post);
 *     linked is ignored when comparing flags.
 *   For post/void: pending_transfer_not_found, pending_transfer_not_pending,
 *     pending_transfer_has_different_debit_account_id / _credit_ /
 *     _ledger / _code (only where the request gave a non-zero value),
 *     exceeds_pending_transfer_amount (amount > pending amount),
 *     pending_transfer_has_different_amount (void with 0 < amount <
 *     pending amount), pending_transfer_already_posted,
 *     pending_transfer_already_voided, pending_transfer_expired.
 *   debit_account_not_found, credit_account_not_found,
 *   accounts_must_have_the_same_ledger,
 *   transfer_must_have_the_same_ledger_as_accounts,
 *   debit_account_closed, credit_account_closed (not checked for
 *     void_pending_transfer: releasing a reservation is always allowed),
 *   then balancing clamps the amount: balancing_debit to
 *     max(0, debit.credits_posted - debit.debits_posted - debit.debits_pending),
 *     balancing_credit to
 *     max(0, credit.debits_posted - credit.credits_posted - credit.credits_pending);
 *     a balancing transfer clamped to 0 fails with exceeds_credits
 *     (balancing_debit) or exceeds_debits (balancing_credit),
 *   overflows_debits_pending, overflows_credits_pending,
 *   overflows_debits_posted, overflows_credits_posted,
 *   overflows_debits (debits_pending + debits_posted + amount > 2^64-1),
 *   overflows_credits, overflows_timeout (timestamp + timeout_s*1e9 ns
 *     exceeds 2^64-1),
 *   exceeds_credits (debit account has debits_must_not_exceed_credits and
 *     debits_pending + debits_posted + amount > credits_posted),
 *   exceeds_debits (credit account has credits_must_not_exceed_debits and
 *     credits_pending + credits_posted + amount > debits_posted).
 *
 * Effects: ordinary → posted balances; pending → pending balances,
 * expires at timestamp + timeout_s*1e9 when timeout_s > 0; post → removes
 * the full pending amount from pending balances and adds the posted amount
 * (0 = full) to posted balances; void → removes it from pending balances.
 * closing_debit / closing_credit (pending only) set the closed flag on the
 * debit / credit account when created, and clear it when the pending
 * transfer is voided or expires (posting keeps it closed).
 *
 * Burned ids: a transfer create that fails with any code except
 * linked_event_failed, linked_event_chain_open, id_must_not_be_zero,
 * id_must_not_be_int_max, id_already_failed and exists* burns its id: the
 * engine emits a refusal event (HT_EVENT_REFUSAL: id, result, timestamp)
 * at that moment, so the refusal is a journal leaf like any outcome that
 * changed state, and any later create of that id answers
 * id_already_failed, so a declined payment never succeeds on a blind retry.
 * This includes a chain member that failed with its own code. An id that
 * already belongs to a committed transfer is never burned (a malformed
 * request reusing it answers its field-check code, and an exact retry of
 * the committed transfer keeps answering `exists`: a payment that
 * succeeded must never look declined), and an id burned once is recorded
 * once.
 *
 * Chains: an event with the linked flag is chained to the next one. A
 * chain commits all or none: when one member fails, it gets its own code,
 * every other member gets linked_event_failed, and the effects of the
 * members before it are undone. When the last event of a batch has the
 * linked flag, the chain is open: that event gets linked_event_chain_open
 * and the rest of its chain linked_event_failed.
 *
 * Expiry: at the start of each create call the engine expires every
 * pending transfer whose expiry time is <= now (clock), oldest first; each
 * expiry is an event of its own (HT_EVENT_EXPIRY) with its own timestamp
 * and releases the pending amounts. post/void of an expired transfer
 * answers pending_transfer_expired.
 *
 * Timestamps: every event the engine emits — account, transfer, expiry,
 * refusal — gets ts = max(clock.now_ns, previous ts + 1): strictly
 * increasing. Results that emit no event (exists, linked_event_failed, a
 * failure that does not burn, ...) take no timestamp.
 *
 * Event order: the events of one create call are appended to the changes
 * in timestamp order, which is: first the expiries due at the call's
 * clock reading (oldest first), then for each input event in input order
 * the one event its result emits, if any — an account or transfer event
 * for ok, a refusal event for a result that burns the id. A rolled-back
 * chain member emits nothing; the member that broke the chain emits its
 * refusal after the rollback. No other event is emitted.
 *
 * Invariant checked after every batch (HT_ASSERT, release builds too): for
 * every ledger, Σ debits_pending = Σ credits_pending and Σ debits_posted =
 * Σ credits_posted over its accounts; no account with a must_not_exceed
 * flag crosses its limit.
 */

/* ---- events and changes ---------------------------------------------- */

enum ht_event_kind {
	HT_EVENT_ACCOUNT = 1,   /* account created (balances zero) */
	HT_EVENT_TRANSFER = 2,  /* transfer committed, fields as stored */
	HT_EVENT_EXPIRY = 3,    /* pending transfer expired */
	HT_EVENT_REFUSAL = 4,   /* transfer create refused, its id burned */
};

struct ht_event {
	enum ht_event_kind kind;
	union {
		struct ht_account account;   /* HT_EVENT_ACCOUNT */
		struct ht_transfer transfer; /* HT_EVENT_TRANSFER */
		struct {
			ht_u128 pending_id;
			uint64_t timestamp;
		} expiry;                    /* HT_EVENT_EXPIRY */
		struct {
			ht_u128 id;          /* the burned transfer id */
			uint16_t result;     /* enum ht_result it failed with */
			uint64_t timestamp;
		} refusal;                   /* HT_EVENT_REFUSAL */
	} u;
};

/* Timestamp of any event. */
uint64_t ht_event_timestamp(const struct ht_event *e);

/*
 * Canonical binary encoding of an event: this is the journal leaf data.
 * All integers big-endian, no padding:
 *   account : u8 kind=1, id[16], ledger u32, code u16, flags u16,
 *             timestamp u64, ud_len u8, user_data[ud_len]
 *             (flags are the flags at creation)
 *   transfer: u8 kind=2, id[16], debit[16], credit[16], pending_id[16],
 *             amount u64, ledger u32, code u16, flags u16, timeout_s u32,
 *             timestamp u64, ud_len u8, user_data[ud_len]
 *   expiry  : u8 kind=3, pending_id[16], timestamp u64
 *   refusal : u8 kind=4, id[16], result u16, timestamp u64 (27 bytes)
 * encode writes at most HT_LEAF_BYTES_MAX bytes into buf; HT_ERR_INVALID
 * for an unknown kind or user_data_len > HT_USER_DATA_BYTES_MAX.
 * decode returns HT_ERR_CORRUPT on any malformed input (wrong kind, wrong
 * length, ud_len > HT_USER_DATA_BYTES_MAX) and never reads past len. It
 * checks the layout only: whether the values make sense (a refusal's
 * result burns, ...) is ht_ledger_replay's to check.
 */
enum ht_err ht_event_encode(const struct ht_event *e,
			    uint8_t buf[HT_LEAF_BYTES_MAX], size_t *len);
enum ht_err ht_event_decode(const uint8_t *buf, size_t len,
			    struct ht_event *out);

/*
 * The event a create request's event implies when the ledger stores it as
 * asked, with timestamp ts: for result HT_R_OK the account (account !=
 * NULL) or the transfer itself, ts set; for any other result the refusal
 * of the transfer's id with that result. Exactly one of account and
 * transfer is non-NULL. The API's compact receipts rest on it: the hub
 * sends a leaf's data only when the stored event differs from this (a
 * post that takes the pending amount, a clamped balancing transfer), and
 * the client rebuilds every other leaf from its own request.
 */
void ht_event_implied(const struct ht_account *account,
		      const struct ht_transfer *transfer, uint16_t result,
		      uint64_t ts, struct ht_event *out);

/* Do a and b have the same canonical encoding? Compares the encoded fields
 * only (an account's balances, bytes past user_data_len do not count);
 * as fast as a few compares, no encoding. */
bool ht_event_same(const struct ht_event *a, const struct ht_event *b);

/*
 * Everything durable that happened since the last ht_ledger_changes_reset,
 * across any number of create calls (group commit). Arrays are owned by
 * the engine and valid until the next mutating call.
 */
struct ht_ledger_changes {
	const struct ht_event *events;      /* in timestamp order (refusals
					       included): the next commit's
					       journal leaves, in order */
	size_t events_count;
	const struct ht_account *const *dirty_accounts; /* accounts whose
				balances or flags changed, each once, current
				values; pointers valid until next mutating call */
	size_t dirty_count;
	const struct ht_balance *history;   /* snapshots for `history`
					       accounts, in timestamp order */
	size_t history_count;
};

/* ---- the engine ------------------------------------------------------ */

/* Time source in nanoseconds since the Unix epoch. Tests pass their own. */
struct ht_clock {
	uint64_t (*now_ns)(void *ctx);
	void *ctx;
};
/* The wall clock. */
extern const struct ht_clock ht_clock_wall;

struct ht_ledger;

/* Create an empty engine. clock is copied. Errors: HT_ERR_NOMEM. */
enum ht_err ht_ledger_create(const struct ht_clock *clock,
			     struct ht_ledger **out);
/* destroy accepts NULL. */
void ht_ledger_destroy(struct ht_ledger *l);

/*
 * Create accounts / transfers. results[i] gets the enum ht_result of
 * in[i]. n <= HT_BATCH_EVENTS_MAX (HT_ERR_LIMIT otherwise, nothing done).
 * Returns HT_OK when every event got a result (whatever the results),
 * HT_ERR_NOMEM (state unchanged), HT_ERR_POISONED.
 * (Added by ledger:) HT_ERR_INVALID, nothing done, when in or results is
 * NULL with n > 0, or an event has flag bits outside HT_*_FLAGS_ALL or
 * user_data_len > HT_USER_DATA_BYTES_MAX (C callers only: the JSON layer
 * cannot produce these, and no result code fits them).
 */
enum ht_err ht_ledger_create_accounts(struct ht_ledger *l,
				      const struct ht_account *in, size_t n,
				      uint16_t *results);
enum ht_err ht_ledger_create_transfers(struct ht_ledger *l,
				       const struct ht_transfer *in, size_t n,
				       uint16_t *results);

/*
 * (Added for the risk engine.) ht_ledger_create_transfers with a verdict
 * per event: refuse (NULL: none) holds n result codes, 0 for "apply as
 * asked". An event with refuse[i] != 0 goes through every check above
 * exactly as usual; only when all of them pass, and it would commit, does
 * it get refuse[i] instead, as its own failure: it burns its id (a refusal
 * event, like every burning failure), and in a chain the other members get
 * linked_event_failed. So a transfer the ledger would refuse anyway keeps
 * the ledger's own code, and an `exists` retry stays `exists`. Every
 * non-zero refuse[i] must be a code that burns (HT_R_RISK_BLOCKED is the
 * one the hub uses); anything else is HT_ERR_INVALID, nothing done.
 * Errors: those of ht_ledger_create_transfers.
 */
enum ht_err ht_ledger_create_transfers_screened(struct ht_ledger *l,
						const struct ht_transfer *in,
						size_t n,
						const uint16_t *refuse,
						uint16_t *results);

/* Expire due pending transfers now (also done by every create call). */
enum ht_err ht_ledger_expire(struct ht_ledger *l);

/* Changes since the last reset. */
void ht_ledger_changes(const struct ht_ledger *l,
		       struct ht_ledger_changes *out);
/* Forget the changes (the hub has made them durable). */
void ht_ledger_changes_reset(struct ht_ledger *l);

/*
 * Mark the engine unusable: the hub calls this when a commit of its
 * changes failed, since memory is then ahead of the store. Every later
 * mutating call returns HT_ERR_POISONED; reopen from the store.
 */
void ht_ledger_poison(struct ht_ledger *l);

/*
 * Rebuild state from the store on open: replay every committed event in
 * order (applies its effects to balances, the transfer index and pending
 * state, with no validation and no changes recorded; a refusal event
 * burns its id again). Returns HT_ERR_CORRUPT if an event cannot apply
 * (unknown account, pending transfer missing, timestamps not increasing,
 * overflow).
 * (Added by ledger:) "no validation" means no result codes: an event is
 * checked exactly as live application would check it and any event it
 * would not have committed as stored (a limit crossed, a closed account,
 * a clamped amount that differs, an expiry not yet due, ...) is
 * HT_ERR_CORRUPT; the failing event changes nothing. A refusal event is
 * checked as live application burns: its result must be one that burns
 * (see "Burned ids") and its id must be neither 0, int max, a committed
 * transfer's nor already burned, else HT_ERR_CORRUPT.
 */
enum ht_err ht_ledger_replay(struct ht_ledger *l, const struct ht_event *e);
/*
 * (Added by ledger.) The same as calling ht_ledger_replay on e[0..n) in
 * order, but several times faster on a large state: it looks ahead and
 * prefetches what the coming events will touch. *done gets the number of
 * events replayed; on an error e[*done] is the event that failed and
 * nothing of it was applied. Errors as ht_ledger_replay.
 */
enum ht_err ht_ledger_replay_batch(struct ht_ledger *l,
				   const struct ht_event *e, size_t n,
				   size_t *done);

/* Lookups. Pointers are valid until the next mutating call. NULL when not
 * found. */
const struct ht_account *ht_ledger_account_get(const struct ht_ledger *l,
					       ht_u128 id);
const struct ht_transfer *ht_ledger_transfer_get(const struct ht_ledger *l,
						 ht_u128 id);

/* (Added for the risk engine.) True when id is taken: a committed
 * transfer's, or burned by a refusal. A create of it can then only answer
 * exists* or id_already_failed. */
bool ht_ledger_transfer_id_used(const struct ht_ledger *l, ht_u128 id);

/* Pending state of a pending transfer. */
enum ht_pending_state {
	HT_PENDING_NONE = 0,   /* not a pending transfer */
	HT_PENDING_OPEN,
	HT_PENDING_POSTED,
	HT_PENDING_VOIDED,
	HT_PENDING_EXPIRED,
};
enum ht_pending_state ht_ledger_pending_state(const struct ht_ledger *l,
					      ht_u128 id);

/* (Added for the switch.) Call fn for every open pending transfer, in the
 * order they were created, until it returns non-zero: how the hub finds
 * the payments still awaiting a decision after a restart. */
void ht_ledger_pending_each(const struct ht_ledger *l,
			    int (*fn)(void *ctx, const struct ht_transfer *t),
			    void *ctx);

/* (Added for the switch's settlement.) Call fn for every committed
 * transfer with timestamp > after_ts, oldest first (transfers are kept in
 * timestamp order), until it returns non-zero. */
void ht_ledger_transfers_after(const struct ht_ledger *l, uint64_t after_ts,
			       int (*fn)(void *ctx, const struct ht_transfer *t),
			       void *ctx);

/* Counts and the last timestamp given out. */
size_t ht_ledger_account_count(const struct ht_ledger *l);
size_t ht_ledger_transfer_count(const struct ht_ledger *l);
uint64_t ht_ledger_last_timestamp(const struct ht_ledger *l);

/* Creation-order index (0-based) of an account pointer obtained from this
 * engine (ht_ledger_account_get or changes.dirty_accounts). The store keys
 * its balance rows by it. */
size_t ht_ledger_account_index(const struct ht_ledger *l,
			       const struct ht_account *a);

/* True when the engine's account with the stored row's id sits at `slot`
 * and has the row's ledger, code, flags and four balances: the check that
 * stored balances agree with the replayed events (hub open, journal
 * verify). */
bool ht_ledger_account_matches(const struct ht_ledger *l, size_t slot,
			       const struct ht_account *stored);

/* Iterate over all accounts in creation order; fn returns non-zero to
 * stop. */
void ht_ledger_accounts_each(const struct ht_ledger *l,
			     int (*fn)(void *ctx, const struct ht_account *a),
			     void *ctx);

/* Recheck every invariant from scratch (sums per ledger, limits); HT_OK or
 * HT_ERR_CORRUPT. Cheap enough for tests after every batch, O(accounts).
 * (Added by ledger:) also checks that open pending transfers add up to the
 * pending balances, so O(accounts + pending transfers); HT_ERR_NOMEM if
 * its scratch sums cannot be allocated. */
enum ht_err ht_ledger_check(const struct ht_ledger *l);

#endif

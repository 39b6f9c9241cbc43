/*
 * test_ledger_model.c — model-based test of the ledger engine (ledger.h).
 *
 * This file holds a tiny model of the ledger written from ledger.h alone:
 * plain arrays, a chained hash index from id to array slot, and an undo log
 * for linked chains. Nothing in it is clever; each rule of the header is one
 * if-statement, in the header's order. Random batches of account and
 * transfer creates, valid and invalid, go to the engine and to the model,
 * and everything observable must agree: every result code, every event
 * (refusals of burned ids included, in their place among the others) and
 * history snapshot in ht_ledger_changes, the dirty accounts,
 * the last timestamp, and (every CHECK_EVERY_CALLS calls and at the end)
 * every account, every touched transfer and its pending state, the counts,
 * creation order and ht_ledger_check(). At the end the committed events
 * are replayed into a fresh engine, which must reach the same
 * state and then answer a further stretch of random calls exactly like the
 * live engine.
 *
 * Environment: HT_SEED (default 20260301; printed), HT_OPS (events to run,
 * default 1,000,000), HT_SOAK=1 (HT_SOAK_SEEDS seeds,
 * default 12, of 3,000,000 events each), HT_TRACE=N (print every call from
 * call N on). On a mismatch the seed, call and operation number, the event
 * and both results are printed. See docs/internals/ledger-model-test.md.
 *
 * Where ledger.h is silent or open to two readings, the model takes the
 * reading named in the READ_* constants below; each says what it chooses
 * and why.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "huitong/ledger.h"

/* ---- readings of ledger.h where it is silent ---------------------------- */

/* Only what the engine records takes a timestamp: a committed account or
 * transfer, an expiry, a refusal of a burned id ("every event the engine
 * emits — account, transfer, expiry, refusal — gets ts ...").
 * Rejected events that leave no record (exists, linked_event_failed, ...)
 * take none. With 0, every event of a batch takes one (TigerBeetle). */
static const int READ_TICK_RECORDED_ONLY = 1;
/* A chain's rolled-back members give their timestamps back (they were
 * never emitted), and a failing member's refusal event takes the next one
 * after the rollback. */
static const int READ_ROLLBACK_RESTORES_TS = 1;
/* A post/void whose own timestamp is at or past the pending transfer's
 * expiry answers pending_transfer_expired even before a sweep has expired
 * it (TigerBeetle). The sweep itself uses the raw clock: "expiry time <=
 * now (clock)". */
static const int READ_EXPIRED_BY_EVENT_TS = 1;
/* "(posting keeps it closed)": posting a pending closing transfer is not
 * refused because of the closed flag that very transfer set (TigerBeetle
 * refuses it; the header's remark would then say nothing). */
static const int READ_POST_OWN_CLOSING = 1;
/* An id already burned is not recorded as failed a second time when a
 * later create of it fails a field check (which comes before
 * id_already_failed), and an id of a committed transfer is never burned
 * (ledger.h: a retry of a payment that succeeded must keep answering
 * `exists`). */
static const int READ_BURN_ONCE = 1;
/* overflows_debits_posted / _credits_posted are checked for pending
 * transfers too; overflows_*_pending only for pending ones (TigerBeetle). */
static const int READ_POSTED_OVERFLOW_ALWAYS = 1;
/* exists_with_different_flags compares with the flags the account was
 * created with, not with `closed` set later by a closing transfer: a retry
 * of the original create stays `exists` (TigerBeetle compares current
 * flags; 1 selects that). */
static const int READ_ACCOUNT_EXISTS_CURRENT_FLAGS = 0;

/* ---- small helpers -------------------------------------------------------- */

#define NONE UINT32_MAX
#define NS_PER_S 1000000000ull

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q) {
		fprintf(stderr, "test_ledger_model: out of memory\n");
		abort();
	}
	return q;
}

/* Make room for one more element in a growable array. */
#define GROW(arr, count, cap)                                                \
	do {                                                                 \
		if ((count) == (cap)) {                                      \
			(cap) = (cap) ? (cap) * 2 : 64;                      \
			(arr) = xrealloc((arr), (cap) * sizeof(*(arr)));     \
		}                                                            \
	} while (0)

#define MODEL_ASSERT(e)                                                      \
	do {                                                                 \
		if (!(e)) {                                                  \
			fprintf(stderr, "model assertion failed: %s (%s:%d)\n", \
				#e, __FILE__, __LINE__);                     \
			abort();                                             \
		}                                                            \
	} while (0)

static const char *u128s(ht_u128 v)
{
	static char buf[16][HT_U128_DEC_SIZE + 8];
	static unsigned k;
	char *b = buf[k++ % 16];
	if (v >= HT_U128_MAX - 9) {
		snprintf(b, HT_U128_DEC_SIZE + 8, "MAX-%u", (unsigned)(HT_U128_MAX - v));
		return b;
	}
	return ht_u128_format(v, b);
}

static const char *rname(unsigned r)
{
	const char *n = ht_result_name((int)r);
	return n ? n : "?";
}

/* ---- id index: chained hash over an append-only key array ----------------
 * Entries are removed only last-in first-out (undo of a chain), so the
 * removed entry is always at the head of its bucket. */

struct idmap {
	ht_u128 *keys;
	uint32_t *next;
	uint32_t *heads;
	size_t count;
	size_t cap;
	size_t mask;
};

static size_t id_hash(ht_u128 k, size_t mask)
{
	uint64_t x = (uint64_t)k ^ ((uint64_t)(k >> 64) * 0x9e3779b97f4a7c15ull);
	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 29;
	return (size_t)x & mask;
}

static void idmap_rehash(struct idmap *m, size_t buckets)
{
	free(m->heads);
	m->heads = xrealloc(NULL, buckets * sizeof(*m->heads));
	memset(m->heads, 0xff, buckets * sizeof(*m->heads));
	m->mask = buckets - 1;
	for (size_t i = 0; i < m->count; i++) {
		size_t h = id_hash(m->keys[i], m->mask);
		m->next[i] = m->heads[h];
		m->heads[h] = (uint32_t)i;
	}
}

static uint32_t idmap_find(const struct idmap *m, ht_u128 key)
{
	if (!m->heads)
		return NONE;
	for (uint32_t i = m->heads[id_hash(key, m->mask)]; i != NONE;
	     i = m->next[i])
		if (m->keys[i] == key)
			return i;
	return NONE;
}

static uint32_t idmap_push(struct idmap *m, ht_u128 key)
{
	if (m->count == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 256;
		m->keys = xrealloc(m->keys, m->cap * sizeof(*m->keys));
		m->next = xrealloc(m->next, m->cap * sizeof(*m->next));
	}
	if (!m->heads || m->count * 2 >= m->mask + 1) {
		size_t b = m->heads ? (m->mask + 1) * 2 : 512;
		idmap_rehash(m, b);
	}
	size_t h = id_hash(key, m->mask);
	m->keys[m->count] = key;
	m->next[m->count] = m->heads[h];
	m->heads[h] = (uint32_t)m->count;
	return (uint32_t)m->count++;
}

static void idmap_pop(struct idmap *m)
{
	MODEL_ASSERT(m->count > 0);
	uint32_t i = (uint32_t)--m->count;
	size_t h = id_hash(m->keys[i], m->mask);
	MODEL_ASSERT(m->heads[h] == i);
	m->heads[h] = m->next[i];
}

static void idmap_free(struct idmap *m)
{
	free(m->keys);
	free(m->next);
	free(m->heads);
	memset(m, 0, sizeof(*m));
}

/* ---- the model's state --------------------------------------------------- */

struct m_acct {
	struct ht_account a;       /* current values, as account_get shows */
	uint16_t flags_created;    /* flags at creation (the event's) */
	bool touched;              /* changed since the last changes_reset */
	struct ht_account before;  /* values before the first such change */
	uint64_t dirty_seen;       /* generation stamp for the dirty check */
};

struct m_xfer {
	struct ht_transfer t;      /* as stored */
	enum ht_pending_state state;
	uint64_t expires_at;       /* 0: never */
};

enum undo_kind { U_ACCT_NEW, U_ACCT_SET, U_XFER_NEW, U_XFER_STATE };

struct undo {
	enum undo_kind kind;
	uint32_t idx;
	struct ht_account acct;    /* U_ACCT_SET: old values */
	enum ht_pending_state state; /* U_XFER_STATE: old state */
};

struct model {
	struct idmap acct_ids;     /* accts[i] has id acct_ids.keys[i] */
	struct m_acct *accts;
	size_t accts_cap;
	struct idmap xfer_ids;
	struct m_xfer *xfers;
	size_t xfers_cap;
	struct idmap burned;       /* ids recorded as failed */
	uint64_t last_ts;
	uint64_t now;              /* the clock during the current call */
	uint32_t *timed;           /* transfers that may expire */
	size_t timed_count, timed_cap;
	struct undo *undo;
	size_t undo_count, undo_cap;
	/* What the current call is expected to add to the changes. */
	struct ht_event *ev;
	size_t ev_count, ev_cap;
	struct ht_balance *hist;
	size_t hist_count, hist_cap;
	uint32_t *touched;         /* accounts touched since reset */
	size_t touched_count, touched_cap;
	uint32_t *recheck;         /* transfers to look up at next check */
	size_t recheck_count, recheck_cap;
	uint64_t expiries;
	uint64_t refusals;         /* refusal events emitted (ids burned) */
	uint64_t stat[6];          /* how often the subtle cases came up */
};

/* Cases worth counting, to see that a run reaches them. */
enum {
	ST_ROLLBACK,         /* a chain undone after members had applied */
	ST_CLAMPED,          /* a balancing transfer moved less than asked */
	ST_POST_CLOSING,     /* a closing pending transfer posted */
	ST_EXPIRED_BY_TS,    /* post/void refused as expired before the sweep */
	ST_BURN_AGAIN,       /* a known id failed a field check again */
	ST_TS_PUSHED,        /* an event's ts was pushed past the clock */
};
static const char *const stat_names[] = {
	"chain_rollbacks", "balancing_clamped", "closing_posted",
	"expired_by_event_ts", "known_id_refailed", "ts_past_clock",
};

static size_t m_acct_count(const struct model *m)
{
	return m->acct_ids.count;
}

static size_t m_xfer_count(const struct model *m)
{
	return m->xfer_ids.count;
}

static struct m_acct *m_acct_find(struct model *m, ht_u128 id, uint32_t *idx)
{
	uint32_t i = idmap_find(&m->acct_ids, id);
	if (idx)
		*idx = i;
	return i == NONE ? NULL : &m->accts[i];
}

static struct m_xfer *m_xfer_find(struct model *m, ht_u128 id)
{
	uint32_t i = idmap_find(&m->xfer_ids, id);
	return i == NONE ? NULL : &m->xfers[i];
}

static void m_free(struct model *m)
{
	idmap_free(&m->acct_ids);
	idmap_free(&m->xfer_ids);
	idmap_free(&m->burned);
	free(m->accts);
	free(m->xfers);
	free(m->timed);
	free(m->undo);
	free(m->ev);
	free(m->hist);
	free(m->touched);
	free(m->recheck);
	memset(m, 0, sizeof(*m));
}

/* The timestamp the next recorded event gets: max(now, previous + 1). */
static uint64_t m_next_ts(const struct model *m, uint64_t now)
{
	return now > m->last_ts ? now : m->last_ts + 1;
}

/* An event is recorded with timestamp ts. */
static void m_take_ts(struct model *m, uint64_t ts)
{
	if (ts != m->now)
		m->stat[ST_TS_PUSHED]++;
	if (!READ_TICK_RECORDED_ONLY && ts == m->last_ts)
		return;   /* already taken when the event was reached */
	MODEL_ASSERT(ts > m->last_ts);
	m->last_ts = ts;
}

static uint16_t m_count(struct model *m, int what, uint16_t r)
{
	m->stat[what]++;
	return r;
}

static void m_undo_push(struct model *m, enum undo_kind kind, uint32_t idx)
{
	GROW(m->undo, m->undo_count, m->undo_cap);
	struct undo *u = &m->undo[m->undo_count++];
	u->kind = kind;
	u->idx = idx;
	if (kind == U_ACCT_SET)
		u->acct = m->accts[idx].a;
	if (kind == U_XFER_STATE)
		u->state = m->xfers[idx].state;
}

/* Call before changing an account's balances or flags. */
static void m_acct_save(struct model *m, uint32_t idx)
{
	struct m_acct *a = &m->accts[idx];
	m_undo_push(m, U_ACCT_SET, idx);
	if (!a->touched) {
		a->touched = true;
		a->before = a->a;
		GROW(m->touched, m->touched_count, m->touched_cap);
		m->touched[m->touched_count++] = idx;
	}
}

static void m_xfer_set_state(struct model *m, uint32_t idx,
			     enum ht_pending_state s)
{
	m_undo_push(m, U_XFER_STATE, idx);
	m->xfers[idx].state = s;
	GROW(m->recheck, m->recheck_count, m->recheck_cap);
	m->recheck[m->recheck_count++] = idx;
}

static void m_rollback(struct model *m, size_t undo_mark, size_t ev_mark,
		       size_t hist_mark)
{
	while (m->undo_count > undo_mark) {
		struct undo *u = &m->undo[--m->undo_count];
		switch (u->kind) {
		case U_ACCT_NEW:
			MODEL_ASSERT(u->idx + 1 == m->acct_ids.count);
			idmap_pop(&m->acct_ids);
			break;
		case U_ACCT_SET:
			m->accts[u->idx].a = u->acct;
			break;
		case U_XFER_NEW:
			MODEL_ASSERT(u->idx + 1 == m->xfer_ids.count);
			idmap_pop(&m->xfer_ids);
			break;
		case U_XFER_STATE:
			m->xfers[u->idx].state = u->state;
			break;
		}
	}
	m->ev_count = ev_mark;
	m->hist_count = hist_mark;
}

/* A snapshot for a `history` account after an event changed it. */
static void m_hist(struct model *m, uint32_t idx, uint64_t ts)
{
	const struct ht_account *a = &m->accts[idx].a;
	if (!(a->flags & HT_ACCOUNT_HISTORY))
		return;
	GROW(m->hist, m->hist_count, m->hist_cap);
	struct ht_balance *b = &m->hist[m->hist_count++];
	memset(b, 0, sizeof(*b));
	b->account_id = a->id;
	b->timestamp = ts;
	b->debits_pending = a->debits_pending;
	b->debits_posted = a->debits_posted;
	b->credits_pending = a->credits_pending;
	b->credits_posted = a->credits_posted;
}

static struct ht_event *m_emit(struct model *m, enum ht_event_kind kind)
{
	GROW(m->ev, m->ev_count, m->ev_cap);
	struct ht_event *e = &m->ev[m->ev_count++];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	return e;
}

/* ---- model: accounts ------------------------------------------------------ */

static bool ud_equal(uint8_t alen, const char *a, uint8_t blen, const char *b)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

static uint16_t m_account_exists(const struct ht_account *a,
				 const struct m_acct *e)
{
	uint16_t ef = READ_ACCOUNT_EXISTS_CURRENT_FLAGS ? e->a.flags
							: e->flags_created;
	if ((a->flags & ~HT_ACCOUNT_LINKED) != (ef & ~HT_ACCOUNT_LINKED))
		return HT_R_EXISTS_WITH_DIFFERENT_FLAGS;
	if (!ud_equal(a->user_data_len, a->user_data, e->a.user_data_len,
		      e->a.user_data))
		return HT_R_EXISTS_WITH_DIFFERENT_USER_DATA;
	if (a->ledger != e->a.ledger)
		return HT_R_EXISTS_WITH_DIFFERENT_LEDGER;
	if (a->code != e->a.code)
		return HT_R_EXISTS_WITH_DIFFERENT_CODE;
	return HT_R_EXISTS;
}

static uint16_t m_account_one(struct model *m, const void *in, uint64_t ts)
{
	const struct ht_account *a = in;
	if (a->id == 0)
		return HT_R_ID_MUST_NOT_BE_ZERO;
	if (a->id == HT_U128_MAX)
		return HT_R_ID_MUST_NOT_BE_INT_MAX;
	if ((a->flags & HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS) &&
	    (a->flags & HT_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS))
		return HT_R_FLAGS_ARE_MUTUALLY_EXCLUSIVE;
	if (a->ledger == 0)
		return HT_R_LEDGER_MUST_NOT_BE_ZERO;
	if (a->code == 0)
		return HT_R_CODE_MUST_NOT_BE_ZERO;
	const struct m_acct *e = m_acct_find(m, a->id, NULL);
	if (e)
		return m_account_exists(a, e);

	uint32_t idx = idmap_push(&m->acct_ids, a->id);
	GROW(m->accts, (size_t)idx, m->accts_cap);
	struct m_acct *n = &m->accts[idx];
	memset(n, 0, sizeof(*n));
	n->a.id = a->id;
	n->a.timestamp = ts;
	n->a.ledger = a->ledger;
	n->a.code = a->code;
	n->a.flags = a->flags;
	n->a.user_data_len = a->user_data_len;
	memcpy(n->a.user_data, a->user_data, a->user_data_len);
	n->flags_created = a->flags;
	m_undo_push(m, U_ACCT_NEW, idx);
	m_take_ts(m, ts);
	m_emit(m, HT_EVENT_ACCOUNT)->u.account = n->a;
	return HT_R_OK;
}

/* ---- model: transfers ------------------------------------------------------ */

#define TF_PV (HT_TRANSFER_POST_PENDING | HT_TRANSFER_VOID_PENDING)
#define TF_BAL (HT_TRANSFER_BALANCING_DEBIT | HT_TRANSFER_BALANCING_CREDIT)
#define TF_CLOSING (HT_TRANSFER_CLOSING_DEBIT | HT_TRANSFER_CLOSING_CREDIT)

static uint16_t m_validate_ordinary(const struct ht_transfer *t)
{
	if (t->debit_account_id == 0)
		return HT_R_DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO;
	if (t->debit_account_id == HT_U128_MAX)
		return HT_R_DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX;
	if (t->credit_account_id == 0)
		return HT_R_CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO;
	if (t->credit_account_id == HT_U128_MAX)
		return HT_R_CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX;
	if (t->debit_account_id == t->credit_account_id)
		return HT_R_ACCOUNTS_MUST_BE_DIFFERENT;
	if (t->pending_id != 0)
		return HT_R_PENDING_ID_MUST_BE_ZERO;
	if (t->timeout_s != 0 && !(t->flags & HT_TRANSFER_PENDING))
		return HT_R_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER;
	if (t->amount == 0)
		return HT_R_AMOUNT_MUST_NOT_BE_ZERO;
	if (t->ledger == 0)
		return HT_R_LEDGER_MUST_NOT_BE_ZERO;
	if (t->code == 0)
		return HT_R_CODE_MUST_NOT_BE_ZERO;
	return HT_R_OK;
}

static uint16_t m_validate_post_void(const struct ht_transfer *t)
{
	if (t->pending_id == 0)
		return HT_R_PENDING_ID_MUST_NOT_BE_ZERO;
	if (t->pending_id == HT_U128_MAX)
		return HT_R_PENDING_ID_MUST_NOT_BE_INT_MAX;
	if (t->pending_id == t->id)
		return HT_R_PENDING_ID_MUST_BE_DIFFERENT;
	if (t->timeout_s != 0)
		return HT_R_TIMEOUT_RESERVED_FOR_PENDING_TRANSFER;
	return HT_R_OK;
}

/* The field checks, in the header's order. */
static uint16_t m_validate_transfer(const struct ht_transfer *t)
{
	uint16_t f = t->flags;
	bool pv = (f & TF_PV) != 0;
	if (t->id == 0)
		return HT_R_ID_MUST_NOT_BE_ZERO;
	if (t->id == HT_U128_MAX)
		return HT_R_ID_MUST_NOT_BE_INT_MAX;
	if ((f & HT_TRANSFER_PENDING) && pv)
		return HT_R_FLAGS_ARE_MUTUALLY_EXCLUSIVE;
	if ((f & HT_TRANSFER_POST_PENDING) && (f & HT_TRANSFER_VOID_PENDING))
		return HT_R_FLAGS_ARE_MUTUALLY_EXCLUSIVE;
	if ((f & TF_BAL) && pv)
		return HT_R_FLAGS_ARE_MUTUALLY_EXCLUSIVE;
	if ((f & TF_CLOSING) && pv)
		return HT_R_FLAGS_ARE_MUTUALLY_EXCLUSIVE;
	if ((f & TF_CLOSING) && !(f & HT_TRANSFER_PENDING))
		return HT_R_CLOSING_TRANSFER_MUST_BE_PENDING;
	return pv ? m_validate_post_void(t) : m_validate_ordinary(t);
}

/* Idempotency: compare a request with the committed transfer of its id. */
static uint16_t m_transfer_exists(const struct ht_transfer *t,
				  const struct ht_transfer *e)
{
	bool pv = (t->flags & TF_PV) != 0;
	if ((t->flags & ~HT_TRANSFER_LINKED) != (e->flags & ~HT_TRANSFER_LINKED))
		return HT_R_EXISTS_WITH_DIFFERENT_FLAGS;
	if (!(pv && t->debit_account_id == 0) &&
	    t->debit_account_id != e->debit_account_id)
		return HT_R_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID;
	if (!(pv && t->credit_account_id == 0) &&
	    t->credit_account_id != e->credit_account_id)
		return HT_R_EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID;
	if (t->flags & TF_BAL) {
		if (t->amount < e->amount)
			return HT_R_EXISTS_WITH_DIFFERENT_AMOUNT;
	} else if (!(pv && t->amount == 0) && t->amount != e->amount) {
		return HT_R_EXISTS_WITH_DIFFERENT_AMOUNT;
	}
	if (t->pending_id != e->pending_id)
		return HT_R_EXISTS_WITH_DIFFERENT_PENDING_ID;
	if (t->timeout_s != e->timeout_s)
		return HT_R_EXISTS_WITH_DIFFERENT_TIMEOUT;
	if (!(pv && t->ledger == 0) && t->ledger != e->ledger)
		return HT_R_EXISTS_WITH_DIFFERENT_LEDGER;
	if (!(pv && t->code == 0) && t->code != e->code)
		return HT_R_EXISTS_WITH_DIFFERENT_CODE;
	if (!ud_equal(t->user_data_len, t->user_data, e->user_data_len,
		      e->user_data))
		return HT_R_EXISTS_WITH_DIFFERENT_USER_DATA;
	return HT_R_EXISTS;
}

/* Store a committed transfer, emit its event and the history snapshots. */
static void m_commit_transfer(struct model *m, const struct ht_transfer *s,
			      uint32_t dr, uint32_t cr)
{
	uint32_t idx = idmap_push(&m->xfer_ids, s->id);
	GROW(m->xfers, (size_t)idx, m->xfers_cap);
	struct m_xfer *x = &m->xfers[idx];
	memset(x, 0, sizeof(*x));
	x->t = *s;
	x->state = (s->flags & HT_TRANSFER_PENDING) ? HT_PENDING_OPEN
						    : HT_PENDING_NONE;
	if ((s->flags & HT_TRANSFER_PENDING) && s->timeout_s)
		x->expires_at = s->timestamp + (uint64_t)s->timeout_s * NS_PER_S;
	m_undo_push(m, U_XFER_NEW, idx);
	m_take_ts(m, s->timestamp);
	GROW(m->recheck, m->recheck_count, m->recheck_cap);
	m->recheck[m->recheck_count++] = idx;
	m_emit(m, HT_EVENT_TRANSFER)->u.transfer = *s;
	m_hist(m, dr, s->timestamp);
	m_hist(m, cr, s->timestamp);
}

/* The stored form of a request: every byte we do not set is zero. */
static void m_stored(struct ht_transfer *s, const struct ht_transfer *t,
		     uint64_t ts)
{
	memset(s, 0, sizeof(*s));
	s->id = t->id;
	s->debit_account_id = t->debit_account_id;
	s->credit_account_id = t->credit_account_id;
	s->pending_id = t->pending_id;
	s->amount = t->amount;
	s->timestamp = ts;
	s->ledger = t->ledger;
	s->timeout_s = t->timeout_s;
	s->code = t->code;
	s->flags = t->flags;
	s->user_data_len = t->user_data_len;
	memcpy(s->user_data, t->user_data, t->user_data_len);
}

static bool over(uint64_t a, uint64_t b, uint64_t c)
{
	return (unsigned __int128)a + b + c > UINT64_MAX;
}

/* Balancing clamp, then the overflow and limit checks; amount in/out. */
static uint16_t m_balance_checks(const struct ht_transfer *t,
				 const struct ht_account *dr,
				 const struct ht_account *cr, uint64_t ts,
				 uint64_t *amount)
{
	uint64_t amt = t->amount;
	bool pending = (t->flags & HT_TRANSFER_PENDING) != 0;
	if (t->flags & HT_TRANSFER_BALANCING_DEBIT) {
		unsigned __int128 used = (unsigned __int128)dr->debits_posted +
					 dr->debits_pending;
		uint64_t avail = dr->credits_posted > used
			? (uint64_t)(dr->credits_posted - used) : 0;
		amt = amt < avail ? amt : avail;
		if (amt == 0)
			return HT_R_EXCEEDS_CREDITS;
	}
	if (t->flags & HT_TRANSFER_BALANCING_CREDIT) {
		unsigned __int128 used = (unsigned __int128)cr->credits_posted +
					 cr->credits_pending;
		uint64_t avail = cr->debits_posted > used
			? (uint64_t)(cr->debits_posted - used) : 0;
		amt = amt < avail ? amt : avail;
		if (amt == 0)
			return HT_R_EXCEEDS_DEBITS;
	}
	if (pending && over(dr->debits_pending, amt, 0))
		return HT_R_OVERFLOWS_DEBITS_PENDING;
	if (pending && over(cr->credits_pending, amt, 0))
		return HT_R_OVERFLOWS_CREDITS_PENDING;
	bool posted = READ_POSTED_OVERFLOW_ALWAYS || !pending;
	if (posted && over(dr->debits_posted, amt, 0))
		return HT_R_OVERFLOWS_DEBITS_POSTED;
	if (posted && over(cr->credits_posted, amt, 0))
		return HT_R_OVERFLOWS_CREDITS_POSTED;
	if (over(dr->debits_pending, dr->debits_posted, amt))
		return HT_R_OVERFLOWS_DEBITS;
	if (over(cr->credits_pending, cr->credits_posted, amt))
		return HT_R_OVERFLOWS_CREDITS;
	if (pending && t->timeout_s &&
	    over(ts, (uint64_t)t->timeout_s * NS_PER_S, 0))
		return HT_R_OVERFLOWS_TIMEOUT;
	if ((dr->flags & HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS) &&
	    (unsigned __int128)dr->debits_pending + dr->debits_posted + amt >
		    dr->credits_posted)
		return HT_R_EXCEEDS_CREDITS;
	if ((cr->flags & HT_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS) &&
	    (unsigned __int128)cr->credits_pending + cr->credits_posted + amt >
		    cr->debits_posted)
		return HT_R_EXCEEDS_DEBITS;
	*amount = amt;
	return HT_R_OK;
}

/* An ordinary or pending transfer that passed the field checks and does
 * not exist yet. */
static uint16_t m_transfer_new(struct model *m, const struct ht_transfer *t,
			       uint64_t ts)
{
	uint32_t dri, cri;
	struct m_acct *dr = m_acct_find(m, t->debit_account_id, &dri);
	if (!dr)
		return HT_R_DEBIT_ACCOUNT_NOT_FOUND;
	struct m_acct *cr = m_acct_find(m, t->credit_account_id, &cri);
	if (!cr)
		return HT_R_CREDIT_ACCOUNT_NOT_FOUND;
	if (dr->a.ledger != cr->a.ledger)
		return HT_R_ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER;
	if (t->ledger != dr->a.ledger)
		return HT_R_TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS;
	if (dr->a.flags & HT_ACCOUNT_CLOSED)
		return HT_R_DEBIT_ACCOUNT_CLOSED;
	if (cr->a.flags & HT_ACCOUNT_CLOSED)
		return HT_R_CREDIT_ACCOUNT_CLOSED;
	uint64_t amount = 0;
	uint16_t r = m_balance_checks(t, &dr->a, &cr->a, ts, &amount);
	if (r != HT_R_OK)
		return r;
	if (amount != t->amount)
		m_count(m, ST_CLAMPED, 0);

	m_acct_save(m, dri);
	m_acct_save(m, cri);
	if (t->flags & HT_TRANSFER_PENDING) {
		dr->a.debits_pending += amount;
		cr->a.credits_pending += amount;
	} else {
		dr->a.debits_posted += amount;
		cr->a.credits_posted += amount;
	}
	if (t->flags & HT_TRANSFER_CLOSING_DEBIT)
		dr->a.flags |= HT_ACCOUNT_CLOSED;
	if (t->flags & HT_TRANSFER_CLOSING_CREDIT)
		cr->a.flags |= HT_ACCOUNT_CLOSED;
	struct ht_transfer s;
	m_stored(&s, t, ts);
	s.amount = amount;
	m_commit_transfer(m, &s, dri, cri);
	return HT_R_OK;
}

/* The post/void checks after idempotency, in the header's order. */
static uint16_t m_post_void_checks(const struct ht_transfer *t,
				   const struct m_xfer *p, uint64_t ts)
{
	const struct ht_transfer *pt = &p->t;
	if (!(pt->flags & HT_TRANSFER_PENDING))
		return HT_R_PENDING_TRANSFER_NOT_PENDING;
	if (t->debit_account_id && t->debit_account_id != pt->debit_account_id)
		return HT_R_PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID;
	if (t->credit_account_id &&
	    t->credit_account_id != pt->credit_account_id)
		return HT_R_PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID;
	if (t->ledger && t->ledger != pt->ledger)
		return HT_R_PENDING_TRANSFER_HAS_DIFFERENT_LEDGER;
	if (t->code && t->code != pt->code)
		return HT_R_PENDING_TRANSFER_HAS_DIFFERENT_CODE;
	if (t->amount > pt->amount)
		return HT_R_EXCEEDS_PENDING_TRANSFER_AMOUNT;
	if ((t->flags & HT_TRANSFER_VOID_PENDING) && t->amount != 0 &&
	    t->amount < pt->amount)
		return HT_R_PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT;
	if (p->state == HT_PENDING_POSTED)
		return HT_R_PENDING_TRANSFER_ALREADY_POSTED;
	if (p->state == HT_PENDING_VOIDED)
		return HT_R_PENDING_TRANSFER_ALREADY_VOIDED;
	if (p->state == HT_PENDING_EXPIRED)
		return HT_R_PENDING_TRANSFER_EXPIRED;
	MODEL_ASSERT(p->state == HT_PENDING_OPEN);
	if (READ_EXPIRED_BY_EVENT_TS && p->expires_at && p->expires_at <= ts)
		return HT_R_PENDING_TRANSFER_EXPIRED;
	return HT_R_OK;
}


static uint16_t m_post_void(struct model *m, const struct ht_transfer *t,
			    uint64_t ts)
{
	uint32_t pi = idmap_find(&m->xfer_ids, t->pending_id);
	if (pi == NONE)
		return HT_R_PENDING_TRANSFER_NOT_FOUND;
	uint16_t r = m_post_void_checks(t, &m->xfers[pi], ts);
	if (r == HT_R_PENDING_TRANSFER_EXPIRED &&
	    m->xfers[pi].state == HT_PENDING_OPEN)
		m_count(m, ST_EXPIRED_BY_TS, r);
	if (r != HT_R_OK)
		return r;
	const struct ht_transfer p = m->xfers[pi].t; /* copy: xfers moves */
	bool is_void = (t->flags & HT_TRANSFER_VOID_PENDING) != 0;
	uint32_t dri, cri;
	struct m_acct *dr = m_acct_find(m, p.debit_account_id, &dri);
	struct m_acct *cr = m_acct_find(m, p.credit_account_id, &cri);
	if (!dr)
		return HT_R_DEBIT_ACCOUNT_NOT_FOUND;
	if (!cr)
		return HT_R_CREDIT_ACCOUNT_NOT_FOUND;
	MODEL_ASSERT(dr->a.ledger == cr->a.ledger && p.ledger == dr->a.ledger);
	if (!is_void && (dr->a.flags & HT_ACCOUNT_CLOSED) &&
	    !(READ_POST_OWN_CLOSING && (p.flags & HT_TRANSFER_CLOSING_DEBIT)))
		return HT_R_DEBIT_ACCOUNT_CLOSED;
	if (!is_void && (cr->a.flags & HT_ACCOUNT_CLOSED) &&
	    !(READ_POST_OWN_CLOSING && (p.flags & HT_TRANSFER_CLOSING_CREDIT)))
		return HT_R_CREDIT_ACCOUNT_CLOSED;

	uint64_t amount = is_void ? p.amount : (t->amount ? t->amount : p.amount);
	if (!is_void && (p.flags & TF_CLOSING))
		m_count(m, ST_POST_CLOSING, 0);
	m_acct_save(m, dri);
	m_acct_save(m, cri);
	MODEL_ASSERT(dr->a.debits_pending >= p.amount);
	MODEL_ASSERT(cr->a.credits_pending >= p.amount);
	dr->a.debits_pending -= p.amount;
	cr->a.credits_pending -= p.amount;
	if (!is_void) {
		dr->a.debits_posted += amount;
		cr->a.credits_posted += amount;
	} else {
		if (p.flags & HT_TRANSFER_CLOSING_DEBIT)
			dr->a.flags &= (uint16_t)~HT_ACCOUNT_CLOSED;
		if (p.flags & HT_TRANSFER_CLOSING_CREDIT)
			cr->a.flags &= (uint16_t)~HT_ACCOUNT_CLOSED;
	}
	m_xfer_set_state(m, pi, is_void ? HT_PENDING_VOIDED : HT_PENDING_POSTED);
	struct ht_transfer s;
	m_stored(&s, t, ts);
	s.debit_account_id = p.debit_account_id;
	s.credit_account_id = p.credit_account_id;
	s.ledger = p.ledger;
	s.code = p.code;
	s.amount = amount;
	m_commit_transfer(m, &s, dri, cri);
	return HT_R_OK;
}

/* Codes that do not burn the id. */
static bool m_burns(uint16_t r)
{
	if (r == HT_R_OK || r == HT_R_LINKED_EVENT_FAILED ||
	    r == HT_R_LINKED_EVENT_CHAIN_OPEN || r == HT_R_ID_MUST_NOT_BE_ZERO ||
	    r == HT_R_ID_MUST_NOT_BE_INT_MAX || r == HT_R_ID_ALREADY_FAILED)
		return false;
	return !(r >= HT_R_EXISTS_WITH_DIFFERENT_FLAGS && r <= HT_R_EXISTS);
}

static void m_burn(struct model *m, ht_u128 id, uint64_t ts, uint16_t r)
{
	bool known = idmap_find(&m->burned, id) != NONE;
	bool committed = idmap_find(&m->xfer_ids, id) != NONE;
	if (known || committed)
		m_count(m, ST_BURN_AGAIN, 0);
	if (committed || (known && READ_BURN_ONCE))
		return;
	if (!known)
		idmap_push(&m->burned, id);
	m_take_ts(m, ts);
	struct ht_event *e = m_emit(m, HT_EVENT_REFUSAL);
	e->u.refusal.id = id;
	e->u.refusal.result = r;
	e->u.refusal.timestamp = ts;
	m->refusals++;
}

/* One transfer; a burning failure is recorded by m_batch (after a chain's
 * rollback, so it takes the next timestamp from there). */
static uint16_t m_transfer_one(struct model *m, const void *in, uint64_t ts)
{
	const struct ht_transfer *t = in;
	uint16_t r = m_validate_transfer(t);
	if (r == HT_R_OK && idmap_find(&m->burned, t->id) != NONE)
		r = HT_R_ID_ALREADY_FAILED;
	if (r == HT_R_OK) {
		const struct m_xfer *e = m_xfer_find(m, t->id);
		if (e)
			r = m_transfer_exists(t, &e->t);
		else if (t->flags & TF_PV)
			r = m_post_void(m, t, ts);
		else
			r = m_transfer_new(m, t, ts);
	}
	return r;
}

/* ---- model: batches, chains, expiry ------------------------------------ */

typedef uint16_t (*m_one_fn)(struct model *m, const void *in, uint64_t ts);

_Static_assert(HT_ACCOUNT_LINKED == 1 && HT_TRANSFER_LINKED == 1,
	       "m_batch reads the linked flag as bit 0 of either kind");

/*
 * One batch, with chains: an event with the linked flag is chained to the
 * next; when a member fails it keeps its code, every other member gets
 * linked_event_failed and the effects of earlier members are undone; a
 * linked last event gets linked_event_chain_open.
 */
static void m_batch(struct model *m, const void *in, bool transfers,
		    size_t n, uint16_t *results, uint64_t now, m_one_fn one)
{
	size_t size = transfers ? sizeof(struct ht_transfer)
				: sizeof(struct ht_account);
	size_t chain = SIZE_MAX;
	bool broken = false;
	size_t ev_mark = 0, hist_mark = 0;
	uint64_t ts_mark = 0;
	for (size_t i = 0; i < n; i++) {
		const void *e = (const char *)in + i * size;
		uint16_t flags = transfers
			? ((const struct ht_transfer *)e)->flags
			: ((const struct ht_account *)e)->flags;
		bool linked = (flags & 1u) != 0; /* bit 0 in both */
		uint64_t ts = m_next_ts(m, now);
		if (!READ_TICK_RECORDED_ONLY)
			m_take_ts(m, ts);
		if (chain == SIZE_MAX) {
			m->undo_count = 0;
			if (linked) {
				chain = i;
				broken = false;
				ev_mark = m->ev_count;
				hist_mark = m->hist_count;
				ts_mark = m->last_ts;
			}
		}
		uint16_t r;
		if (linked && i == n - 1)
			r = HT_R_LINKED_EVENT_CHAIN_OPEN;
		else if (broken)
			r = HT_R_LINKED_EVENT_FAILED;
		else
			r = one(m, e, ts);
		if (r != HT_R_OK && chain != SIZE_MAX && !broken) {
			broken = true;
			if (m->ev_count > ev_mark)
				m_count(m, ST_ROLLBACK, 0);
			m_rollback(m, 0, ev_mark, hist_mark);
			if (READ_ROLLBACK_RESTORES_TS)
				m->last_ts = ts_mark;
			for (size_t j = chain; j < i; j++)
				results[j] = HT_R_LINKED_EVENT_FAILED;
		}
		results[i] = r;
		if (transfers && m_burns(r))
			m_burn(m, ((const struct ht_transfer *)e)->id,
			       m_next_ts(m, now), r);
		if (chain != SIZE_MAX &&
		    (!linked || r == HT_R_LINKED_EVENT_CHAIN_OPEN)) {
			chain = SIZE_MAX;
			broken = false;
		}
	}
	m->undo_count = 0;
}

static int cmp_expiry(const void *a, const void *b, void *ctx)
{
	const struct model *m = ctx;
	const struct m_xfer *x = &m->xfers[*(const uint32_t *)a];
	const struct m_xfer *y = &m->xfers[*(const uint32_t *)b];
	if (x->expires_at != y->expires_at)
		return x->expires_at < y->expires_at ? -1 : 1;
	if (x->t.timestamp != y->t.timestamp)
		return x->t.timestamp < y->t.timestamp ? -1 : 1;
	return 0;
}

static void m_expire_one(struct model *m, uint32_t xi, uint64_t ts)
{
	const struct ht_transfer p = m->xfers[xi].t;
	uint32_t dri, cri;
	struct m_acct *dr = m_acct_find(m, p.debit_account_id, &dri);
	struct m_acct *cr = m_acct_find(m, p.credit_account_id, &cri);
	MODEL_ASSERT(dr && cr);
	m_acct_save(m, dri);
	m_acct_save(m, cri);
	MODEL_ASSERT(dr->a.debits_pending >= p.amount);
	MODEL_ASSERT(cr->a.credits_pending >= p.amount);
	dr->a.debits_pending -= p.amount;
	cr->a.credits_pending -= p.amount;
	if (p.flags & HT_TRANSFER_CLOSING_DEBIT)
		dr->a.flags &= (uint16_t)~HT_ACCOUNT_CLOSED;
	if (p.flags & HT_TRANSFER_CLOSING_CREDIT)
		cr->a.flags &= (uint16_t)~HT_ACCOUNT_CLOSED;
	m_xfer_set_state(m, xi, HT_PENDING_EXPIRED);
	m_take_ts(m, ts);
	struct ht_event *e = m_emit(m, HT_EVENT_EXPIRY);
	e->u.expiry.pending_id = p.id;
	e->u.expiry.timestamp = ts;
	m_hist(m, dri, ts);
	m_hist(m, cri, ts);
	m->expiries++;
}

/* Expire every open pending transfer due at now, earliest expiry first
 * (ties: the older transfer first), each an event with its own ts. */
static void m_expire(struct model *m, uint64_t now)
{
	size_t keep = 0, due = 0;
	uint32_t *due_list = xrealloc(NULL, (m->timed_count + 1) * sizeof(uint32_t));
	for (size_t i = 0; i < m->timed_count; i++) {
		uint32_t xi = m->timed[i];
		const struct m_xfer *x = &m->xfers[xi];
		if (x->state != HT_PENDING_OPEN)
			continue;
		if (x->expires_at <= now)
			due_list[due++] = xi;
		else
			m->timed[keep++] = xi;
	}
	m->timed_count = keep;
	qsort_r(due_list, due, sizeof(uint32_t), cmp_expiry, m);
	for (size_t i = 0; i < due; i++)
		m_expire_one(m, due_list[i], m_next_ts(m, now));
	m->undo_count = 0;
	free(due_list);
}

/* After a call: new pending transfers with a timeout may expire later. */
static void m_track_timed(struct model *m, size_t first_xfer)
{
	for (size_t i = first_xfer; i < m_xfer_count(m); i++) {
		if (m->xfers[i].expires_at == 0)
			continue;
		GROW(m->timed, m->timed_count, m->timed_cap);
		m->timed[m->timed_count++] = (uint32_t)i;
	}
}

static void m_begin_call(struct model *m)
{
	m->ev_count = 0;
	m->hist_count = 0;
	m->undo_count = 0;
}

static enum ht_err m_create_accounts(struct model *m,
				     const struct ht_account *in, size_t n,
				     uint16_t *results, uint64_t now)
{
	if (n > HT_BATCH_EVENTS_MAX)
		return HT_ERR_LIMIT;
	m->now = now;
	m_expire(m, now);
	m_batch(m, in, false, n, results, now, m_account_one);
	return HT_OK;
}

static enum ht_err m_create_transfers(struct model *m,
				      const struct ht_transfer *in, size_t n,
				      uint16_t *results, uint64_t now)
{
	if (n > HT_BATCH_EVENTS_MAX)
		return HT_ERR_LIMIT;
	m->now = now;
	m_expire(m, now);
	size_t first = m_xfer_count(m);
	m_batch(m, in, true, n, results, now, m_transfer_one);
	m_track_timed(m, first);
	return HT_OK;
}

/* Forget the touched set, as the engine forgets its changes. */
static void m_changes_reset(struct model *m)
{
	for (size_t i = 0; i < m->touched_count; i++)
		m->accts[m->touched[i]].touched = false;
	m->touched_count = 0;
}

/* The model's own invariants: debits equal credits per ledger. */
static void m_self_check(const struct model *m)
{
	enum { LEDGERS = 64 };
	uint32_t ledger[LEDGERS];
	unsigned __int128 s[LEDGERS][4];
	size_t used = 0;
	memset(s, 0, sizeof(s));
	for (size_t i = 0; i < m_acct_count(m); i++) {
		const struct ht_account *a = &m->accts[i].a;
		size_t k = 0;
		while (k < used && ledger[k] != a->ledger)
			k++;
		if (k == used) {
			MODEL_ASSERT(used < LEDGERS);
			ledger[used++] = a->ledger;
		}
		s[k][0] += a->debits_pending;
		s[k][1] += a->credits_pending;
		s[k][2] += a->debits_posted;
		s[k][3] += a->credits_posted;
		if (a->flags & HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS)
			MODEL_ASSERT((unsigned __int128)a->debits_pending +
				     a->debits_posted <= a->credits_posted);
		if (a->flags & HT_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS)
			MODEL_ASSERT((unsigned __int128)a->credits_pending +
				     a->credits_posted <= a->debits_posted);
	}
	for (size_t k = 0; k < used; k++) {
		MODEL_ASSERT(s[k][0] == s[k][1]);
		MODEL_ASSERT(s[k][2] == s[k][3]);
	}
}

/* ---- printing ------------------------------------------------------------- */

static void print_ud(uint8_t len, const char *ud)
{
	printf(" ud=\"");
	for (uint8_t i = 0; i < len && i < HT_USER_DATA_BYTES_MAX; i++) {
		unsigned char c = (unsigned char)ud[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			putchar(c);
		else
			printf("\\x%02x", c);
	}
	printf("\"");
}

static void print_account(const char *pfx, const struct ht_account *a)
{
	printf("%saccount id=%s ledger=%u code=%u flags=0x%x ts=%" PRIu64
	       " dp=%" PRIu64 " dpo=%" PRIu64 " cp=%" PRIu64 " cpo=%" PRIu64,
	       pfx, u128s(a->id), a->ledger, a->code, a->flags, a->timestamp,
	       a->debits_pending, a->debits_posted, a->credits_pending,
	       a->credits_posted);
	print_ud(a->user_data_len, a->user_data);
	printf("\n");
}

static void print_transfer(const char *pfx, const struct ht_transfer *t)
{
	printf("%stransfer id=%s dr=%s cr=%s pending_id=%s amount=%" PRIu64
	       " ledger=%u code=%u flags=0x%x timeout_s=%u ts=%" PRIu64,
	       pfx, u128s(t->id), u128s(t->debit_account_id),
	       u128s(t->credit_account_id), u128s(t->pending_id), t->amount,
	       t->ledger, t->code, t->flags, t->timeout_s, t->timestamp);
	print_ud(t->user_data_len, t->user_data);
	printf("\n");
}

static void print_event(const char *pfx, const struct ht_event *e)
{
	switch (e->kind) {
	case HT_EVENT_ACCOUNT:
		print_account(pfx, &e->u.account);
		break;
	case HT_EVENT_TRANSFER:
		print_transfer(pfx, &e->u.transfer);
		break;
	case HT_EVENT_EXPIRY:
		printf("%sexpiry pending_id=%s ts=%" PRIu64 "\n", pfx,
		       u128s(e->u.expiry.pending_id), e->u.expiry.timestamp);
		break;
	case HT_EVENT_REFUSAL:
		printf("%srefusal id=%s result=%s ts=%" PRIu64 "\n", pfx,
		       u128s(e->u.refusal.id), rname(e->u.refusal.result),
		       e->u.refusal.timestamp);
		break;
	default:
		printf("%sevent of unknown kind %d\n", pfx, (int)e->kind);
	}
}

/* ---- comparisons ---------------------------------------------------------- */

static bool acct_equal(const struct ht_account *a, const struct ht_account *b)
{
	return a->id == b->id && a->debits_pending == b->debits_pending &&
	       a->debits_posted == b->debits_posted &&
	       a->credits_pending == b->credits_pending &&
	       a->credits_posted == b->credits_posted &&
	       a->timestamp == b->timestamp && a->ledger == b->ledger &&
	       a->code == b->code && a->flags == b->flags &&
	       ud_equal(a->user_data_len, a->user_data, b->user_data_len,
			b->user_data);
}

static bool xfer_equal(const struct ht_transfer *a, const struct ht_transfer *b)
{
	return a->id == b->id && a->debit_account_id == b->debit_account_id &&
	       a->credit_account_id == b->credit_account_id &&
	       a->pending_id == b->pending_id && a->amount == b->amount &&
	       a->timestamp == b->timestamp && a->ledger == b->ledger &&
	       a->timeout_s == b->timeout_s && a->code == b->code &&
	       a->flags == b->flags &&
	       ud_equal(a->user_data_len, a->user_data, b->user_data_len,
			b->user_data);
}

static bool event_equal(const struct ht_event *a, const struct ht_event *b)
{
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case HT_EVENT_ACCOUNT:
		return acct_equal(&a->u.account, &b->u.account);
	case HT_EVENT_TRANSFER:
		return xfer_equal(&a->u.transfer, &b->u.transfer);
	case HT_EVENT_EXPIRY:
		return a->u.expiry.pending_id == b->u.expiry.pending_id &&
		       a->u.expiry.timestamp == b->u.expiry.timestamp;
	case HT_EVENT_REFUSAL:
		return a->u.refusal.id == b->u.refusal.id &&
		       a->u.refusal.result == b->u.refusal.result &&
		       a->u.refusal.timestamp == b->u.refusal.timestamp;
	}
	return false;
}

static uint64_t event_ts(const struct ht_event *e)
{
	switch (e->kind) {
	case HT_EVENT_ACCOUNT:
		return e->u.account.timestamp;
	case HT_EVENT_TRANSFER:
		return e->u.transfer.timestamp;
	case HT_EVENT_EXPIRY:
		return e->u.expiry.timestamp;
	case HT_EVENT_REFUSAL:
		return e->u.refusal.timestamp;
	}
	return 0;
}

static bool balance_equal(const struct ht_balance *a, const struct ht_balance *b)
{
	return a->account_id == b->account_id && a->timestamp == b->timestamp &&
	       a->debits_pending == b->debits_pending &&
	       a->debits_posted == b->debits_posted &&
	       a->credits_pending == b->credits_pending &&
	       a->credits_posted == b->credits_posted;
}

/* Snapshots of one transfer (debit and credit account) share a timestamp;
 * their relative order is not specified, so compare sorted. */
static int cmp_balance(const void *pa, const void *pb)
{
	const struct ht_balance *a = pa, *b = pb;
	if (a->timestamp != b->timestamp)
		return a->timestamp < b->timestamp ? -1 : 1;
	if (a->account_id != b->account_id)
		return a->account_id < b->account_id ? -1 : 1;
	return 0;
}

/* ---- the run -------------------------------------------------------------- */

#define RING 64
#define XREQ_RING 256
#define ENGINES_MAX 2
#define CHECK_EVERY_CALLS 64

struct idring {
	ht_u128 v[RING];
	size_t n;          /* puts so far */
};

struct test_clock {
	uint64_t now_ns;
};

static uint64_t test_clock_now(void *ctx)
{
	return ((struct test_clock *)ctx)->now_ns;
}

enum call_kind { CALL_ACCOUNTS, CALL_TRANSFERS, CALL_EXPIRE };

struct run {
	uint64_t seed;
	uint64_t rng;
	uint64_t ops_target;
	struct test_clock clock;
	struct ht_clock hclock;
	struct model m;
	struct ht_ledger *eng[ENGINES_MAX];
	size_t eng_count;
	size_t seen_events[ENGINES_MAX];
	size_t seen_hist[ENGINES_MAX];
	uint64_t last_ev_ts[ENGINES_MAX];
	uint64_t tail_start_ts;      /* replica's last ts is checked past it */
	uint64_t call_no;
	uint64_t op_no;
	uint64_t calls_to_commit;
	uint64_t trace_from;
	uint64_t dirty_gen;
	bool logging;                /* keep committed events for replay */
	struct ht_event *log;
	size_t log_count, log_cap;
	/* generator memory */
	struct idring acct_tried, acct_made, xfer_made, pend_made, burned_ids;
	struct ht_account acct_req[RING];
	size_t acct_req_n;
	struct ht_transfer xfer_req[XREQ_RING];
	size_t xfer_req_n;
	ht_u128 acct_next, xfer_next;
	unsigned noise;              /* percent of noisy events in this batch */
	/* buffers */
	struct ht_account *abuf;
	struct ht_transfer *xbuf;
	uint16_t mres[HT_BATCH_EVENTS_MAX + 1];
	uint16_t eres[ENGINES_MAX][HT_BATCH_EVENTS_MAX + 1];
	/* statistics */
	uint64_t result_seen[HT_R__MAX];
	uint64_t calls_by_kind[3];
};

static uint64_t rnd(struct run *r)
{
	uint64_t z = (r->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t pick(struct run *r, uint64_t n)
{
	return n ? rnd(r) % n : 0;
}

static bool chance(struct run *r, unsigned percent)
{
	return pick(r, 100) < percent;
}

static void idring_put(struct idring *g, ht_u128 id)
{
	g->v[g->n++ % RING] = id;
}

static bool idring_pick(struct run *r, const struct idring *g, ht_u128 *out)
{
	if (g->n == 0)
		return false;
	*out = g->v[pick(r, g->n < RING ? g->n : RING)];
	return true;
}

/* ---- mismatch reporting --------------------------------------------------- */

static void say(struct run *r, size_t k, const char *fmt, ...)
{
	va_list ap;
	printf("MISMATCH seed=%" PRIu64 " call=%" PRIu64 " op=%" PRIu64
	       " engine=%s clock=%" PRIu64 ": ", r->seed, r->call_no, r->op_no,
	       k == 0 ? "live" : "replayed", r->clock.now_ns);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static void die(struct run *r)
{
	printf("reproduce: HT_SEED=%" PRIu64 " HT_OPS=%" PRIu64
	       " HT_TRACE=%" PRIu64 " test_ledger_model\n",
	       r->seed, r->ops_target, r->call_no > 3 ? r->call_no - 3 : 0);
	fflush(stdout);
	fail_msg("ledger engine and model disagree (seed %" PRIu64 ")", r->seed);
}

static const char *kind_name(enum call_kind kind)
{
	return kind == CALL_ACCOUNTS ? "create_accounts"
	       : kind == CALL_TRANSFERS ? "create_transfers" : "expire";
}

/* Print a batch: each event with the model's and the engine's result. */
static void dump_batch(struct run *r, enum call_kind kind, const void *in,
		       size_t n, const uint16_t *got, bool only_near_bad)
{
	printf("  %s n=%zu clock=%" PRIu64 ":\n", kind_name(kind), n,
	       r->clock.now_ns);
	for (size_t i = 0; i < n; i++) {
		bool near = !only_near_bad || !got;
		for (size_t j = i > 3 ? i - 3 : 0; got && j < n && j <= i + 3; j++)
			if (got[j] != r->mres[j])
				near = true;
		if (!near)
			continue;
		char pfx[160];
		snprintf(pfx, sizeof(pfx), "  [%zu] op=%" PRIu64 " expect=%s got=%s%s ",
			 i, r->op_no + i, rname(r->mres[i]),
			 got ? rname(got[i]) : "-",
			 got && got[i] != r->mres[i] ? " <<<" : "");
		if (kind == CALL_ACCOUNTS)
			print_account(pfx, &((const struct ht_account *)in)[i]);
		else
			print_transfer(pfx, &((const struct ht_transfer *)in)[i]);
	}
}

/* ---- the journal leaf, written out from the header's layout -------------- */

static size_t put_be(uint8_t *p, unsigned __int128 v, size_t bytes)
{
	for (size_t i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	return bytes;
}

static size_t leaf_of(const struct ht_event *e, uint8_t *b)
{
	size_t n = 0;
	b[n++] = (uint8_t)e->kind;
	if (e->kind == HT_EVENT_ACCOUNT) {
		const struct ht_account *a = &e->u.account;
		n += put_be(b + n, a->id, 16);
		n += put_be(b + n, a->ledger, 4);
		n += put_be(b + n, a->code, 2);
		n += put_be(b + n, a->flags, 2);
		n += put_be(b + n, a->timestamp, 8);
		b[n++] = a->user_data_len;
		memcpy(b + n, a->user_data, a->user_data_len);
		return n + a->user_data_len;
	}
	if (e->kind == HT_EVENT_TRANSFER) {
		const struct ht_transfer *t = &e->u.transfer;
		n += put_be(b + n, t->id, 16);
		n += put_be(b + n, t->debit_account_id, 16);
		n += put_be(b + n, t->credit_account_id, 16);
		n += put_be(b + n, t->pending_id, 16);
		n += put_be(b + n, t->amount, 8);
		n += put_be(b + n, t->ledger, 4);
		n += put_be(b + n, t->code, 2);
		n += put_be(b + n, t->flags, 2);
		n += put_be(b + n, t->timeout_s, 4);
		n += put_be(b + n, t->timestamp, 8);
		b[n++] = t->user_data_len;
		memcpy(b + n, t->user_data, t->user_data_len);
		return n + t->user_data_len;
	}
	if (e->kind == HT_EVENT_REFUSAL) {
		n += put_be(b + n, e->u.refusal.id, 16);
		n += put_be(b + n, e->u.refusal.result, 2);
		n += put_be(b + n, e->u.refusal.timestamp, 8);
		return n;
	}
	n += put_be(b + n, e->u.expiry.pending_id, 16);
	n += put_be(b + n, e->u.expiry.timestamp, 8);
	return n;
}

/* ht_event_encode gives the header's bytes; ht_event_decode reads them
 * back to the same event and refuses every shorter prefix. */
static bool leaf_ok(const struct ht_event *e)
{
	uint8_t want[HT_LEAF_BYTES_MAX], got[HT_LEAF_BYTES_MAX];
	size_t want_len = leaf_of(e, want), got_len = 0;
	if (ht_event_encode(e, got, &got_len) != HT_OK || got_len != want_len ||
	    memcmp(got, want, want_len) != 0)
		return false;
	struct ht_event d;
	if (ht_event_decode(got, got_len, &d) != HT_OK || !event_equal(&d, e))
		return false;
	return ht_event_decode(got, got_len - 1, &d) == HT_ERR_CORRUPT;
}

/* ---- the engine aborting ---------------------------------------------------
 * HT_ASSERT aborts the process; say which call did it before dying. */

static struct {
	struct run *r;
	enum call_kind kind;
	const void *in;
	size_t n;
} in_engine;

static void on_abort(int sig)
{
	struct run *r = in_engine.r;
	if (r) {
		in_engine.r = NULL;
		printf("\nENGINE ABORTED seed=%" PRIu64 " call=%" PRIu64
		       " op=%" PRIu64 " clock=%" PRIu64 " during %s; the call "
		       "with the model's expected results:\n", r->seed,
		       r->call_no, r->op_no, r->clock.now_ns,
		       kind_name(in_engine.kind));
		if (in_engine.kind != CALL_EXPIRE)
			dump_batch(r, in_engine.kind, in_engine.in, in_engine.n,
				   NULL, false);
		printf("reproduce: HT_SEED=%" PRIu64 " HT_OPS=%" PRIu64
		       " HT_TRACE=%" PRIu64 " test_ledger_model\n", r->seed,
		       r->ops_target, r->call_no);
		fflush(stdout);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void engine_enter(struct run *r, enum call_kind kind, const void *in,
			 size_t n)
{
	in_engine.kind = kind;
	in_engine.in = in;
	in_engine.n = n;
	in_engine.r = r;
}

static void engine_leave(void)
{
	in_engine.r = NULL;
}

/* ---- checks after each call ----------------------------------------------- */

static void check_events(struct run *r, size_t k,
			 const struct ht_ledger_changes *c)
{
	const struct model *m = &r->m;
	size_t seen = r->seen_events[k];
	bool bad = c->events_count != seen + m->ev_count;
	for (size_t i = 0; !bad && i < m->ev_count; i++)
		bad = !event_equal(&c->events[seen + i], &m->ev[i]);
	if (bad) {
		say(r, k, "events differ (engine has %zu new, model %zu)",
		    c->events_count >= seen ? c->events_count - seen : 0,
		    m->ev_count);
		for (size_t i = 0; i < m->ev_count; i++)
			print_event("  expect ", &m->ev[i]);
		for (size_t i = seen; i < c->events_count; i++)
			print_event("  got    ", &c->events[i]);
		die(r);
		return;
	}
	for (size_t i = seen; i < c->events_count; i++) {
		if (!leaf_ok(&c->events[i])) {
			say(r, k, "event encoding or decoding differs");
			print_event("  ", &c->events[i]);
			die(r);
			return;
		}
		uint64_t ts = event_ts(&c->events[i]);
		if (ts <= r->last_ev_ts[k]) {
			say(r, k, "event timestamp %" PRIu64 " not above %" PRIu64,
			    ts, r->last_ev_ts[k]);
			die(r);
			return;
		}
		r->last_ev_ts[k] = ts;
	}
	r->seen_events[k] = c->events_count;
}

static void print_balance(const char *pfx, const struct ht_balance *b)
{
	printf("%shistory account=%s ts=%" PRIu64 " dp=%" PRIu64 " dpo=%" PRIu64
	       " cp=%" PRIu64 " cpo=%" PRIu64 "\n", pfx, u128s(b->account_id),
	       b->timestamp, b->debits_pending, b->debits_posted,
	       b->credits_pending, b->credits_posted);
}

static void check_history(struct run *r, size_t k,
			  const struct ht_ledger_changes *c)
{
	const struct model *m = &r->m;
	size_t seen = r->seen_hist[k];
	size_t got_n = c->history_count >= seen ? c->history_count - seen : 0;
	bool bad = c->history_count != seen + m->hist_count;
	for (size_t i = seen + 1; i < c->history_count; i++)
		if (c->history[i].timestamp < c->history[i - 1].timestamp)
			bad = true;
	struct ht_balance *a = xrealloc(NULL, (got_n + 1) * sizeof(*a));
	struct ht_balance *b = xrealloc(NULL, (m->hist_count + 1) * sizeof(*b));
	if (got_n)
		memcpy(a, c->history + seen, got_n * sizeof(*a));
	if (m->hist_count)
		memcpy(b, m->hist, m->hist_count * sizeof(*b));
	qsort(a, got_n, sizeof(*a), cmp_balance);
	qsort(b, m->hist_count, sizeof(*b), cmp_balance);
	for (size_t i = 0; !bad && i < got_n; i++)
		bad = !balance_equal(&a[i], &b[i]);
	if (bad) {
		say(r, k, "history snapshots differ (engine %zu new, model %zu)",
		    got_n, m->hist_count);
		for (size_t i = 0; i < m->hist_count; i++)
			print_balance("  expect ", &b[i]);
		for (size_t i = 0; i < got_n; i++)
			print_balance("  got    ", &c->history[seen + i]);
	}
	free(a);
	free(b);
	if (bad) {
		die(r);
		return;
	}
	r->seen_hist[k] = c->history_count;
}

static bool balances_flags_differ(const struct ht_account *a,
				  const struct ht_account *b)
{
	return a->debits_pending != b->debits_pending ||
	       a->debits_posted != b->debits_posted ||
	       a->credits_pending != b->credits_pending ||
	       a->credits_posted != b->credits_posted || a->flags != b->flags;
}

/* Every account whose balances or flags changed since the reset is listed
 * once with its current values; nothing listed is unknown or stale. */
static void check_dirty(struct run *r, size_t k,
			const struct ht_ledger_changes *c)
{
	uint64_t gen = ++r->dirty_gen;
	for (size_t i = 0; i < c->dirty_count; i++) {
		const struct ht_account *a = c->dirty_accounts[i];
		struct m_acct *ma = m_acct_find(&r->m, a->id, NULL);
		if (!ma || ma->dirty_seen == gen || !acct_equal(a, &ma->a)) {
			say(r, k, "dirty account %s: %s", u128s(a->id),
			    !ma ? "unknown to the model"
			    : ma->dirty_seen == gen ? "listed twice"
			    : "values differ");
			print_account("  got    ", a);
			if (ma)
				print_account("  expect ", &ma->a);
			die(r);
			return;
		}
		ma->dirty_seen = gen;
	}
	for (size_t i = 0; i < r->m.touched_count; i++) {
		struct m_acct *ma = &r->m.accts[r->m.touched[i]];
		if (balances_flags_differ(&ma->a, &ma->before) &&
		    ma->dirty_seen != gen) {
			say(r, k, "account %s changed since the last reset but "
			    "is not among the dirty accounts", u128s(ma->a.id));
			print_account("  before ", &ma->before);
			print_account("  now    ", &ma->a);
			die(r);
			return;
		}
	}
}

static void check_changes(struct run *r, size_t k)
{
	struct ht_ledger_changes c;
	ht_ledger_changes(r->eng[k], &c);
	check_events(r, k, &c);
	check_history(r, k, &c);
	check_dirty(r, k, &c);
	bool ts_known = k == 0 || r->m.last_ts > r->tail_start_ts;
	uint64_t last = ht_ledger_last_timestamp(r->eng[k]);
	if (ts_known && last != r->m.last_ts) {
		say(r, k, "last timestamp %" PRIu64 ", model %" PRIu64, last,
		    r->m.last_ts);
		die(r);
	}
}

static void trace_call(struct run *r, enum call_kind kind, const void *in,
		       size_t n)
{
	if (r->call_no < r->trace_from)
		return;
	printf("call %" PRIu64 " op %" PRIu64 " (model's results and "
	       "events):\n", r->call_no, r->op_no);
	if (kind == CALL_EXPIRE)
		printf("  expire clock=%" PRIu64 "\n", r->clock.now_ns);
	else
		dump_batch(r, kind, in, n, NULL, false);
	for (size_t i = 0; i < r->m.ev_count; i++)
		print_event("  => ", &r->m.ev[i]);
	fflush(stdout);
}

static void log_committed(struct run *r)
{
	const struct model *m = &r->m;
	for (size_t i = 0; i < m->ev_count; i++) {
		GROW(r->log, r->log_count, r->log_cap);
		r->log[r->log_count++] = m->ev[i];
	}
}

static void check_call(struct run *r, enum call_kind kind, const void *in,
		       size_t n, enum ht_err mrc, const enum ht_err *erc)
{
	for (size_t k = 0; k < r->eng_count; k++) {
		bool bad = erc[k] != mrc;
		for (size_t i = 0; !bad && mrc == HT_OK && kind != CALL_EXPIRE &&
		     i < n; i++)
			bad = r->eres[k][i] != r->mres[i];
		if (bad) {
			say(r, k, "%s returned %s (model %s) or results differ",
			    kind_name(kind), ht_strerror(erc[k]),
			    ht_strerror(mrc));
			if (kind != CALL_EXPIRE && mrc == HT_OK)
				dump_batch(r, kind, in, n, r->eres[k], n > 64);
			die(r);
			return;
		}
		check_changes(r, k);
	}
	if (mrc == HT_OK && kind != CALL_EXPIRE)
		for (size_t i = 0; i < n; i++)
			r->result_seen[r->mres[i] < HT_R__MAX ? r->mres[i] : 0]++;
	if (r->logging)
		log_committed(r);
	r->calls_by_kind[kind]++;
}

/* ---- full comparison of the state ----------------------------------------- */

struct order_ctx {
	const struct model *m;
	size_t i;
	bool ok;
};

static int order_cb(void *ctx, const struct ht_account *a)
{
	struct order_ctx *o = ctx;
	if (o->i >= m_acct_count(o->m) || o->m->accts[o->i].a.id != a->id) {
		o->ok = false;
		return 1;
	}
	o->i++;
	return 0;
}

static bool check_one_transfer(struct run *r, size_t k, uint32_t xi)
{
	const struct m_xfer *x = &r->m.xfers[xi];
	const struct ht_transfer *t = ht_ledger_transfer_get(r->eng[k], x->t.id);
	enum ht_pending_state s = ht_ledger_pending_state(r->eng[k], x->t.id);
	if (t && xfer_equal(t, &x->t) && s == x->state)
		return true;
	say(r, k, "transfer %s differs (pending state engine %d, model %d)",
	    u128s(x->t.id), (int)s, (int)x->state);
	print_transfer("  expect ", &x->t);
	if (t)
		print_transfer("  got    ", t);
	else
		printf("  got    NULL\n");
	return false;
}

static bool check_accounts(struct run *r, size_t k)
{
	struct ht_ledger *e = r->eng[k];
	for (size_t i = 0; i < m_acct_count(&r->m); i++) {
		const struct ht_account *want = &r->m.accts[i].a;
		const struct ht_account *a = ht_ledger_account_get(e, want->id);
		if (!a || !acct_equal(a, want)) {
			say(r, k, "account %s differs", u128s(want->id));
			print_account("  expect ", want);
			if (a)
				print_account("  got    ", a);
			return false;
		}
	}
	struct order_ctx o = { &r->m, 0, true };
	ht_ledger_accounts_each(e, order_cb, &o);
	if (!o.ok || o.i != m_acct_count(&r->m)) {
		say(r, k, "accounts_each order differs at position %zu", o.i);
		return false;
	}
	return true;
}

/* Ids the model says do not exist must not be found. */
static bool check_absent(struct run *r, size_t k)
{
	size_t na = r->acct_tried.n < RING ? r->acct_tried.n : RING;
	for (size_t i = 0; i < na; i++) {
		ht_u128 id = r->acct_tried.v[i];
		if (!m_acct_find(&r->m, id, NULL) &&
		    ht_ledger_account_get(r->eng[k], id)) {
			say(r, k, "account %s found, model has none", u128s(id));
			return false;
		}
	}
	size_t nb = r->burned_ids.n < RING ? r->burned_ids.n : RING;
	for (size_t i = 0; i < nb; i++) {
		ht_u128 id = r->burned_ids.v[i];
		if (m_xfer_find(&r->m, id))
			continue;
		if (ht_ledger_transfer_get(r->eng[k], id) ||
		    ht_ledger_pending_state(r->eng[k], id) != HT_PENDING_NONE) {
			say(r, k, "failed transfer %s found", u128s(id));
			return false;
		}
	}
	return true;
}

/* Compare everything the lookups show; all transfers or the touched ones. */
static void full_check(struct run *r, size_t k, bool every_transfer)
{
	struct ht_ledger *e = r->eng[k];
	bool ok = true;
	if (ht_ledger_account_count(e) != m_acct_count(&r->m) ||
	    ht_ledger_transfer_count(e) != m_xfer_count(&r->m)) {
		say(r, k, "counts: accounts %zu (model %zu), transfers %zu "
		    "(model %zu)", ht_ledger_account_count(e),
		    m_acct_count(&r->m), ht_ledger_transfer_count(e),
		    m_xfer_count(&r->m));
		ok = false;
	}
	ok = ok && check_accounts(r, k);
	if (every_transfer) {
		for (size_t i = 0; ok && i < m_xfer_count(&r->m); i++)
			ok = check_one_transfer(r, k, (uint32_t)i);
	} else {
		for (size_t i = 0; ok && i < r->m.recheck_count; i++)
			if (r->m.recheck[i] < m_xfer_count(&r->m))
				ok = check_one_transfer(r, k, r->m.recheck[i]);
	}
	ok = ok && check_absent(r, k);
	if (ok && ht_ledger_check(e) != HT_OK) {
		say(r, k, "ht_ledger_check failed");
		ok = false;
	}
	m_self_check(&r->m);
	if (!ok)
		die(r);
}

/* ---- the generator -------------------------------------------------------- */

static void gen_user_data(struct run *r, uint8_t *len, char *ud)
{
	unsigned p = (unsigned)pick(r, 100);
	memset(ud, 0, HT_USER_DATA_BYTES_MAX);
	*len = p < 60 ? 0 : p < 90 ? (uint8_t)(1 + pick(r, 4))
				   : (uint8_t)(1 + pick(r, HT_USER_DATA_BYTES_MAX));
	for (uint8_t i = 0; i < *len; i++)
		ud[i] = p < 90 ? (char)('a' + pick(r, 2)) : (char)pick(r, 256);
}

static ht_u128 gen_account_id(struct run *r)
{
	unsigned p = (unsigned)pick(r, 100);
	ht_u128 id;
	if (p < 3)
		return 0;
	if (p < 5)
		return HT_U128_MAX;
	if (p < 7)
		return HT_U128_MAX - 1 - pick(r, 3);
	if (p < 17 && idring_pick(r, &r->acct_tried, &id))
		return id;
	r->acct_next++;
	if (p < 27)
		return ((ht_u128)rnd(r) << 64) | r->acct_next;
	return r->acct_next;
}

static void mutate_account(struct run *r, struct ht_account *a)
{
	static const uint16_t bits[] = {
		HT_ACCOUNT_LINKED, HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS,
		HT_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS, HT_ACCOUNT_HISTORY,
		HT_ACCOUNT_CLOSED,
	};
	switch (pick(r, 5)) {
	case 0:
		a->flags ^= bits[pick(r, 5)];
		break;
	case 1:
		gen_user_data(r, &a->user_data_len, a->user_data);
		break;
	case 2:
		a->ledger++;
		break;
	case 3:
		a->code++;
		break;
	default:   /* input balances are ignored: still exists */
		a->debits_posted = rnd(r);
		a->credits_pending = rnd(r);
	}
}

static void gen_account(struct run *r, struct ht_account *a)
{
	memset(a, 0, sizeof(*a));
	if (r->acct_req_n && chance(r, 12)) {
		*a = r->acct_req[pick(r, r->acct_req_n < RING ? r->acct_req_n : RING)];
		if (chance(r, 50))
			mutate_account(r, a);
		return;
	}
	bool clean = chance(r, 75);   /* meant to succeed */
	a->id = clean ? ++r->acct_next : gen_account_id(r);
	unsigned p = (unsigned)pick(r, 100);
	if (p < 25)
		a->flags |= HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS;
	else if (p < 40 || (!clean && p >= 95))
		a->flags |= HT_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS;
	if (chance(r, 30))
		a->flags |= HT_ACCOUNT_HISTORY;
	if (chance(r, clean ? 1 : 10))
		a->flags |= HT_ACCOUNT_CLOSED;
	p = (unsigned)pick(r, 100);
	a->ledger = p < 60 ? 1 : p < 90 ? 2 : 3;
	if (!clean && chance(r, 10))
		a->ledger = 0;
	a->code = (uint16_t)(1 + pick(r, 9));
	if (!clean && chance(r, 10))
		a->code = 0;
	gen_user_data(r, &a->user_data_len, a->user_data);
	if (chance(r, 10)) {   /* garbage the engine must ignore */
		a->debits_pending = rnd(r);
		a->credits_posted = rnd(r);
		a->timestamp = rnd(r);
	}
}

/* Linked flags: chains of 2..6, sometimes one left open at the end. */
static void gen_links(struct run *r, bool *linked, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (chance(r, 20)) {
			size_t len = 2 + (size_t)pick(r, 5);
			for (size_t j = 0; j + 1 < len && i < n; j++)
				linked[i++] = true;
			if (i < n)
				linked[i++] = false;
		} else {
			linked[i++] = false;
		}
	}
	if (n && chance(r, 6))
		linked[n - 1] = true;
}

static ht_u128 pick_account_id(struct run *r)
{
	unsigned p = (unsigned)pick(r, 100);
	ht_u128 id;
	if (p < 2)
		return 0;
	if (p < 3)
		return HT_U128_MAX;
	if (p < 7 && idring_pick(r, &r->acct_tried, &id))
		return id;
	if (p < 9)
		return ((ht_u128)1 << 100) + pick(r, 1000);   /* never created */
	if (p < 13 && m_acct_count(&r->m))
		return r->m.accts[pick(r, m_acct_count(&r->m))].a.id;
	if (idring_pick(r, &r->acct_made, &id))
		return id;
	return 1 + pick(r, 8);
}

/* A recent account that is not closed, on `ledger` unless it is 0. */
static ht_u128 pick_open_account(struct run *r, uint32_t ledger, ht_u128 not)
{
	ht_u128 id = 0;
	for (int tries = 0; tries < 12; tries++) {
		if (!idring_pick(r, &r->acct_made, &id))
			return 1;
		const struct m_acct *a = m_acct_find(&r->m, id, NULL);
		if (a && id != not && !(a->a.flags & HT_ACCOUNT_CLOSED) &&
		    (ledger == 0 || a->a.ledger == ledger))
			return id;
	}
	return id;
}

/* Mostly an account on the debit's ledger, so transfers can succeed. */
static ht_u128 pick_credit_id(struct run *r, ht_u128 debit)
{
	const struct m_acct *dr = m_acct_find(&r->m, debit, NULL);
	if (dr && chance(r, 75))
		return pick_open_account(r, dr->a.ledger, debit);
	if (chance(r, 2))
		return debit;
	return pick_account_id(r);
}

static uint64_t near(struct run *r, uint64_t v)
{
	uint64_t d = pick(r, 3);
	if (d == 0)
		return v ? v - 1 : 0;
	return d == 1 ? v : (v == UINT64_MAX ? v : v + 1);
}

static uint64_t gen_amount(struct run *r, const struct ht_transfer *t)
{
	unsigned p = (unsigned)pick(r, 100);
	if (p < 50)
		return 1 + pick(r, 100);
	if (p < 62)
		return 1 + pick(r, 100000);
	if (p < 65)
		return 0;
	if (p < 69)
		return UINT64_MAX - pick(r, 3);
	if (p < 73)
		return near(r, 1ull << 63);
	if (p < 76)
		return rnd(r);
	/* at a limit: what the debit (or credit) account can still take */
	const struct m_acct *dr = m_acct_find(&r->m, t->debit_account_id, NULL);
	const struct m_acct *cr = m_acct_find(&r->m, t->credit_account_id, NULL);
	if (dr && (p < 88 || !cr)) {
		unsigned __int128 used = (unsigned __int128)dr->a.debits_pending +
					 dr->a.debits_posted;
		uint64_t room = dr->a.credits_posted > used
			? (uint64_t)(dr->a.credits_posted - used) : 0;
		return near(r, room);
	}
	if (cr) {
		unsigned __int128 used = (unsigned __int128)cr->a.credits_pending +
					 cr->a.credits_posted;
		uint64_t room = cr->a.debits_posted > used
			? (uint64_t)(cr->a.debits_posted - used) : 0;
		return near(r, room);
	}
	return 1 + pick(r, 10);
}

static ht_u128 gen_transfer_id(struct run *r)
{
	unsigned p = (unsigned)pick(r, 100);
	ht_u128 id;
	if (p < 2)
		return 0;
	if (p < 3)
		return HT_U128_MAX;
	if (p < 5)
		return HT_U128_MAX - 1 - pick(r, 3);
	if (p < 9 && idring_pick(r, &r->xfer_made, &id))
		return id;
	if (p < 12 && idring_pick(r, &r->burned_ids, &id))
		return id;
	r->xfer_next++;
	if (p < 20)
		return ((ht_u128)rnd(r) << 64) | r->xfer_next;
	return r->xfer_next;
}

/* A transfer meant to succeed: open accounts on one ledger, sane fields. */
static void gen_clean(struct run *r, struct ht_transfer *t)
{
	uint16_t f = 0;
	if (chance(r, 35))
		f |= HT_TRANSFER_PENDING;
	if (chance(r, 8))
		f |= (uint16_t)((1 + pick(r, 3)) << 4);   /* balancing_* */
	if (chance(r, 2))
		f |= (uint16_t)(((1 + pick(r, 3)) << 6) | HT_TRANSFER_PENDING);
	t->flags = f;
	t->debit_account_id = pick_open_account(r, 0, 0);
	const struct m_acct *dr = m_acct_find(&r->m, t->debit_account_id, NULL);
	t->ledger = dr ? dr->a.ledger : 1;
	t->credit_account_id = pick_open_account(r, t->ledger,
						 t->debit_account_id);
	t->code = (uint16_t)(1 + pick(r, 4));
	t->amount = chance(r, 80) ? 1 + pick(r, 100) : gen_amount(r, t);
	if (t->amount == 0)
		t->amount = 1;
	unsigned p = (unsigned)pick(r, 100);
	if (f & HT_TRANSFER_PENDING)
		t->timeout_s = p < 40 ? 0 : p < 90 ? (uint32_t)(1 + pick(r, 3))
			     : (uint32_t)(4 + pick(r, 60));
}

static void gen_ordinary(struct run *r, struct ht_transfer *t)
{
	uint16_t f = 0;
	if (chance(r, 35))
		f |= HT_TRANSFER_PENDING;
	if (chance(r, 10))
		f |= (uint16_t)((1 + pick(r, 3)) << 4);   /* balancing_* */
	if (chance(r, 4)) {
		f |= (uint16_t)((1 + pick(r, 3)) << 6);   /* closing_* */
		if (chance(r, 85))
			f |= HT_TRANSFER_PENDING;
	}
	t->flags = f;
	t->debit_account_id = pick_account_id(r);
	t->credit_account_id = pick_credit_id(r, t->debit_account_id);
	const struct m_acct *dr = m_acct_find(&r->m, t->debit_account_id, NULL);
	unsigned p = (unsigned)pick(r, 100);
	if (dr && p < 88)
		t->ledger = dr->a.ledger;
	else
		t->ledger = p < 92 ? 0 : (uint32_t)(1 + pick(r, 3));
	t->code = chance(r, 3) ? 0 : (uint16_t)(1 + pick(r, 4));
	t->amount = gen_amount(r, t);
	p = (unsigned)pick(r, 100);
	if (f & HT_TRANSFER_PENDING)
		t->timeout_s = p < 40 ? 0 : p < 85 ? (uint32_t)(1 + pick(r, 3))
			     : p < 95 ? (uint32_t)(4 + pick(r, 60))
			     : (uint32_t)(4000000000u + pick(r, 294967296u));
	else if (p < 3)
		t->timeout_s = (uint32_t)(1 + pick(r, 10));
	if (chance(r, 3))
		t->pending_id = 1 + pick(r, 1000);
}

/* A field of a post/void: 0 ("inherit"), the pending's value, or another. */
static ht_u128 pv_field(struct run *r, ht_u128 pending_value, ht_u128 other)
{
	unsigned p = (unsigned)pick(r, 100);
	return p < 70 ? 0 : p < 95 ? pending_value : other;
}

static ht_u128 pick_pending_target(struct run *r, const struct ht_transfer *t,
				   const struct ht_transfer *batch, size_t i,
				   const struct ht_transfer **pt)
{
	unsigned p = (unsigned)pick(r, 100);
	ht_u128 id;
	*pt = NULL;
	if (p < 10 && i > 0) {   /* a pending earlier in this batch */
		for (int tries = 0; tries < 6; tries++) {
			const struct ht_transfer *b = &batch[pick(r, i)];
			if (b->flags & HT_TRANSFER_PENDING) {
				*pt = b;
				return b->id;
			}
		}
	}
	if (p < 80 && idring_pick(r, &r->pend_made, &id))
		return id;
	if (p < 86 && idring_pick(r, &r->xfer_made, &id))
		return id;
	if (p < 91)
		return ((ht_u128)7 << 90) + pick(r, 1000);   /* never created */
	if (p < 94)
		return 0;
	if (p < 96)
		return HT_U128_MAX;
	return t->id;
}

static void gen_post_void(struct run *r, struct ht_transfer *t,
			  const struct ht_transfer *batch, size_t i)
{
	t->flags = chance(r, 60) ? HT_TRANSFER_POST_PENDING
				 : HT_TRANSFER_VOID_PENDING;
	if (chance(r, 4))
		t->flags |= (uint16_t)(1u << (1 + pick(r, 7)));
	const struct ht_transfer *pt;
	t->pending_id = pick_pending_target(r, t, batch, i, &pt);
	if (!pt) {
		const struct m_xfer *x = m_xfer_find(&r->m, t->pending_id);
		pt = x ? &x->t : NULL;
	}
	uint64_t pa = pt ? pt->amount : 1 + pick(r, 100);
	unsigned p = (unsigned)pick(r, 100);
	t->amount = p < 35 ? 0 : p < 55 ? pa
		  : p < 75 ? (pa > 1 ? 1 + pick(r, pa - 1) : pa)
		  : p < 85 ? (pa < UINT64_MAX - 11 ? pa + 1 + pick(r, 10) : UINT64_MAX)
		  : 1 + pick(r, 200);
	ht_u128 other = pick_account_id(r);
	t->debit_account_id = pv_field(r, pt ? pt->debit_account_id : 0, other);
	t->credit_account_id = pv_field(r, pt ? pt->credit_account_id : 0, other);
	t->ledger = (uint32_t)pv_field(r, pt ? pt->ledger : 0, 1 + pick(r, 3));
	t->code = (uint16_t)pv_field(r, pt ? pt->code : 0, 1 + pick(r, 4));
	if (chance(r, 4))
		t->timeout_s = (uint32_t)(1 + pick(r, 5));
}

/* Anything at all: every flag combination, fields from anywhere. */
static void gen_wild(struct run *r, struct ht_transfer *t)
{
	ht_u128 id;
	t->flags = (uint16_t)pick(r, 256);
	t->debit_account_id = chance(r, 10) ? 0 : pick_account_id(r);
	t->credit_account_id = chance(r, 10) ? 0 : pick_account_id(r);
	if (chance(r, 50) && idring_pick(r, &r->pend_made, &id))
		t->pending_id = id;
	t->amount = gen_amount(r, t);
	t->ledger = (uint32_t)pick(r, 4);
	t->code = (uint16_t)pick(r, 4);
	t->timeout_s = chance(r, 50) ? 0 : (uint32_t)pick(r, 4);
}

static void mutate_transfer(struct run *r, struct ht_transfer *t)
{
	switch (pick(r, 10)) {
	case 0:
		t->flags ^= (uint16_t)(1u << pick(r, 8));
		break;
	case 1:
		t->debit_account_id = pick_account_id(r);
		break;
	case 2:
		t->credit_account_id = pick_account_id(r);
		break;
	case 3:
		t->amount = chance(r, 50) ? t->amount + 1 : t->amount - 1;
		break;
	case 4:
		t->pending_id = chance(r, 50) ? 0 : t->pending_id + 1;
		break;
	case 5:
		t->timeout_s = t->timeout_s ? 0 : 1;
		break;
	case 6:
		t->ledger = t->ledger ? 0 : 1;
		break;
	case 7:
		t->code++;
		break;
	case 8:
		gen_user_data(r, &t->user_data_len, t->user_data);
		break;
	default:
		t->timestamp = rnd(r);   /* ignored: still exists */
	}
}

/* A post or void meant to succeed: an open pending transfer, fields left
 * 0 or equal, amount 0, equal or (post) partial. */
static void gen_clean_post_void(struct run *r, struct ht_transfer *t)
{
	const struct m_xfer *p = NULL;
	for (int tries = 0; tries < 8 && !p; tries++) {
		ht_u128 id;
		if (!idring_pick(r, &r->pend_made, &id))
			break;
		p = m_xfer_find(&r->m, id);
		if (p && p->state != HT_PENDING_OPEN)
			p = NULL;
	}
	if (!p) {
		gen_clean(r, t);
		return;
	}
	bool post = chance(r, 65);
	t->flags = post ? HT_TRANSFER_POST_PENDING : HT_TRANSFER_VOID_PENDING;
	t->pending_id = p->t.id;
	unsigned q = (unsigned)pick(r, 100);
	t->amount = q < 50 ? 0 : q < 75 || !post || p->t.amount < 2
		? p->t.amount : 1 + pick(r, p->t.amount - 1);
	t->debit_account_id = chance(r, 70) ? 0 : p->t.debit_account_id;
	t->credit_account_id = chance(r, 70) ? 0 : p->t.credit_account_id;
	t->ledger = chance(r, 70) ? 0 : p->t.ledger;
	t->code = chance(r, 70) ? 0 : p->t.code;
}

static void gen_transfer(struct run *r, struct ht_transfer *t,
			 const struct ht_transfer *batch, size_t i)
{
	memset(t, 0, sizeof(*t));
	if (r->xfer_req_n && chance(r, r->noise / 4)) {   /* replay */
		size_t n = r->xfer_req_n < XREQ_RING ? r->xfer_req_n : XREQ_RING;
		*t = r->xfer_req[pick(r, n)];
		if (chance(r, 50))
			mutate_transfer(r, t);
		return;
	}
	unsigned p = (unsigned)pick(r, 100);
	bool clean = p >= r->noise;
	t->id = clean ? ++r->xfer_next : gen_transfer_id(r);
	p = (unsigned)pick(r, 100);
	if (clean && p < 68)
		gen_clean(r, t);
	else if (clean)
		gen_clean_post_void(r, t);
	else if (p < 40)
		gen_ordinary(r, t);
	else if (p < 85)
		gen_post_void(r, t, batch, i);
	else
		gen_wild(r, t);
	gen_user_data(r, &t->user_data_len, t->user_data);
	if (chance(r, 5))
		t->timestamp = rnd(r);
}


static size_t gen_batch_size(struct run *r, size_t small_max)
{
	unsigned p = (unsigned)pick(r, 1000);
	if (p < 5)
		return 0;
	if (p < 930)
		return 1 + (size_t)pick(r, small_max);
	return 51 + (size_t)pick(r, 400);
}

/* The clock: usually forward, sometimes still, sometimes backwards. */
static void step_clock(struct run *r)
{
	uint64_t *now = &r->clock.now_ns;
	unsigned p = (unsigned)pick(r, 100);
	if (p < 10)
		return;
	if (p < 16)
		*now -= pick(r, 2 * NS_PER_S);
	else if (p < 26)
		*now += 1 + pick(r, 50);
	else if (p < 50)
		*now += pick(r, 1000000);
	else if (p < 64)
		*now += (1 + pick(r, 2)) * NS_PER_S;
	else
		*now += pick(r, 3 * NS_PER_S / 2);
}

/* ---- calls ------------------------------------------------------------------ */

static void do_accounts(struct run *r)
{
	size_t n = gen_batch_size(r, chance(r, 90) ? 8 : 60);
	bool linked[HT_BATCH_EVENTS_MAX];
	struct ht_account *in = r->abuf;
	for (size_t i = 0; i < n; i++)
		gen_account(r, &in[i]);
	gen_links(r, linked, n);
	for (size_t i = 0; i < n; i++)
		in[i].flags = (uint16_t)((in[i].flags & ~HT_ACCOUNT_LINKED) |
					 (linked[i] ? HT_ACCOUNT_LINKED : 0));
	m_begin_call(&r->m);
	enum ht_err mrc = m_create_accounts(&r->m, in, n, r->mres,
					    r->clock.now_ns);
	trace_call(r, CALL_ACCOUNTS, in, n);
	enum ht_err erc[ENGINES_MAX];
	engine_enter(r, CALL_ACCOUNTS, in, n);
	for (size_t k = 0; k < r->eng_count; k++)
		erc[k] = ht_ledger_create_accounts(r->eng[k], in, n, r->eres[k]);
	engine_leave();
	check_call(r, CALL_ACCOUNTS, in, n, mrc, erc);
	for (size_t i = 0; i < n; i++) {
		idring_put(&r->acct_tried, in[i].id);
		if (r->mres[i] == HT_R_OK)
			idring_put(&r->acct_made, in[i].id);
		r->acct_req[r->acct_req_n++ % RING] = in[i];
	}
	r->op_no += n;
}

static void do_transfers(struct run *r)
{
	size_t n = gen_batch_size(r, 50);
	bool linked[HT_BATCH_EVENTS_MAX];
	struct ht_transfer *in = r->xbuf;
	static const unsigned noise[] = { 3, 30, 60 };
	r->noise = noise[pick(r, 3)];
	for (size_t i = 0; i < n; i++)
		gen_transfer(r, &in[i], in, i);
	gen_links(r, linked, n);
	for (size_t i = 0; i < n; i++)
		in[i].flags = (uint16_t)((in[i].flags & ~HT_TRANSFER_LINKED) |
					 (linked[i] ? HT_TRANSFER_LINKED : 0));
	m_begin_call(&r->m);
	enum ht_err mrc = m_create_transfers(&r->m, in, n, r->mres,
					     r->clock.now_ns);
	trace_call(r, CALL_TRANSFERS, in, n);
	enum ht_err erc[ENGINES_MAX];
	engine_enter(r, CALL_TRANSFERS, in, n);
	for (size_t k = 0; k < r->eng_count; k++)
		erc[k] = ht_ledger_create_transfers(r->eng[k], in, n, r->eres[k]);
	engine_leave();
	check_call(r, CALL_TRANSFERS, in, n, mrc, erc);
	for (size_t i = 0; i < n; i++) {
		uint16_t res = r->mres[i];
		if (res == HT_R_OK) {
			idring_put(&r->xfer_made, in[i].id);
			if (in[i].flags & HT_TRANSFER_PENDING)
				idring_put(&r->pend_made, in[i].id);
		}
		if (m_burns(res))
			idring_put(&r->burned_ids, in[i].id);
		r->xfer_req[r->xfer_req_n++ % XREQ_RING] = in[i];
	}
	r->op_no += n;
}

static void do_expire(struct run *r)
{
	m_begin_call(&r->m);
	r->m.now = r->clock.now_ns;
	m_expire(&r->m, r->clock.now_ns);
	trace_call(r, CALL_EXPIRE, NULL, 0);
	enum ht_err erc[ENGINES_MAX];
	engine_enter(r, CALL_EXPIRE, NULL, 0);
	for (size_t k = 0; k < r->eng_count; k++)
		erc[k] = ht_ledger_expire(r->eng[k]);
	engine_leave();
	check_call(r, CALL_EXPIRE, NULL, 0, HT_OK, erc);
	r->op_no++;
}

/* A batch over the limit: HT_ERR_LIMIT and nothing done (no expiry). */
static void do_oversize(struct run *r, bool transfers)
{
	size_t n = HT_BATCH_EVENTS_MAX + 1;
	enum ht_err erc[ENGINES_MAX];
	m_begin_call(&r->m);
	for (size_t k = 0; k < r->eng_count; k++)
		erc[k] = transfers
			? ht_ledger_create_transfers(r->eng[k], r->xbuf, n, r->eres[k])
			: ht_ledger_create_accounts(r->eng[k], r->abuf, n, r->eres[k]);
	check_call(r, transfers ? CALL_TRANSFERS : CALL_ACCOUNTS,
		   transfers ? (const void *)r->xbuf : (const void *)r->abuf, n,
		   HT_ERR_LIMIT, erc);
	r->op_no++;
}

static void commit(struct run *r)
{
	for (size_t k = 0; k < r->eng_count; k++) {
		ht_ledger_changes_reset(r->eng[k]);
		r->seen_events[k] = r->seen_hist[k] = 0;
		struct ht_ledger_changes c;
		ht_ledger_changes(r->eng[k], &c);
		if (c.events_count || c.history_count || c.dirty_count) {
			say(r, k, "changes not empty after ht_ledger_changes_reset");
			die(r);
		}
	}
	m_changes_reset(&r->m);
}

static void after_call(struct run *r)
{
	r->call_no++;
	if (--r->calls_to_commit == 0) {
		commit(r);
		r->calls_to_commit = 1 + pick(r, 5);
	}
	size_t accounts = m_acct_count(&r->m);
	if (accounts < 2000 || r->call_no % 8 == 0)
		for (size_t k = 0; k < r->eng_count; k++)
			if (ht_ledger_check(r->eng[k]) != HT_OK) {
				say(r, k, "ht_ledger_check failed");
				die(r);
			}
	if (r->call_no % CHECK_EVERY_CALLS == 0) {
		bool all = r->call_no % (16 * CHECK_EVERY_CALLS) == 0;
		for (size_t k = 0; k < r->eng_count; k++)
			full_check(r, k, all);
		r->m.recheck_count = 0;
	}
}

static void one_call(struct run *r)
{
	step_clock(r);
	unsigned p = (unsigned)pick(r, 1000);
	if (r->call_no < 4 || (p >= 20 && p < 100))
		do_accounts(r);
	else if (p < 18)
		do_expire(r);
	else if (p < 20)
		do_oversize(r, p == 19);
	else
		do_transfers(r);
	after_call(r);
}

/* ---- one seed ----------------------------------------------------------- */

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);
	uint64_t v;
	if (!s || !*s || ht_u64_parse(s, strlen(s), &v) != HT_OK)
		return dflt;
	return v;
}

static struct run *run_new(uint64_t seed, uint64_t ops)
{
	struct run *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	r->seed = seed;
	r->rng = seed;
	r->ops_target = ops;
	/* Odd seeds run near the top of u64 so long timeouts overflow. */
	r->clock.now_ns = (seed & 1 ? 14400000000000000000ull
				    : 1767225600000000000ull) + pick(r, NS_PER_S);
	r->hclock.now_ns = test_clock_now;
	r->hclock.ctx = &r->clock;
	r->calls_to_commit = 1 + pick(r, 5);
	r->trace_from = env_u64("HT_TRACE", UINT64_MAX);
	r->logging = true;
	r->abuf = calloc(HT_BATCH_EVENTS_MAX + 1, sizeof(*r->abuf));
	r->xbuf = calloc(HT_BATCH_EVENTS_MAX + 1, sizeof(*r->xbuf));
	assert_non_null(r->abuf);
	assert_non_null(r->xbuf);
	assert_int_equal(ht_ledger_create(&r->hclock, &r->eng[0]), HT_OK);
	r->eng_count = 1;
	return r;
}

static void run_free(struct run *r)
{
	for (size_t k = 0; k < r->eng_count; k++)
		ht_ledger_destroy(r->eng[k]);
	m_free(&r->m);
	free(r->log);
	free(r->abuf);
	free(r->xbuf);
	free(r);
}

/* Rebuild a fresh engine from the committed events (refusals burn their
 * ids again); it must
 * show the model's state, record no changes, then act like the live one. */
static void replay_check(struct run *r)
{
	struct ht_ledger *e;
	assert_int_equal(ht_ledger_create(&r->hclock, &e), HT_OK);
	r->eng[1] = e;
	r->eng_count = 2;
	for (size_t i = 0; i < r->log_count; i++) {
		enum ht_err err = ht_ledger_replay(e, &r->log[i]);
		if (err != HT_OK) {
			say(r, 1, "ht_ledger_replay of event %zu: %s", i,
			    ht_strerror(err));
			print_event("  ", &r->log[i]);
			die(r);
		}
	}
	struct ht_ledger_changes c;
	ht_ledger_changes(e, &c);
	if (c.events_count || c.history_count || c.dirty_count) {
		say(r, 1, "replay recorded changes");
		die(r);
	}
	full_check(r, 1, true);
	r->last_ev_ts[1] = r->last_ev_ts[0];
}

static void print_stats(struct run *r, double secs)
{
	size_t pending = 0;
	for (size_t i = 0; i < m_xfer_count(&r->m); i++)
		pending += (r->m.xfers[i].t.flags & HT_TRANSFER_PENDING) != 0;
	printf("seed %" PRIu64 ": %" PRIu64 " ops in %" PRIu64 " calls "
	       "(%" PRIu64 " account, %" PRIu64 " transfer, %" PRIu64
	       " expire) in %.1f s; %zu accounts, %zu transfers (%zu pending), "
	       "%" PRIu64 " expiries, %zu events, %" PRIu64 " refusals\n",
	       r->seed, r->op_no, r->call_no, r->calls_by_kind[CALL_ACCOUNTS],
	       r->calls_by_kind[CALL_TRANSFERS], r->calls_by_kind[CALL_EXPIRE],
	       secs, m_acct_count(&r->m), m_xfer_count(&r->m), pending,
	       r->m.expiries, r->log_count, r->m.refusals);
	printf("  results:");
	for (int i = 0; i < HT_R__MAX; i++)
		if (r->result_seen[i])
			printf(" %s=%" PRIu64, rname((unsigned)i), r->result_seen[i]);
	printf("\n  cases:");
	for (size_t i = 0; i < sizeof(stat_names) / sizeof(stat_names[0]); i++)
		printf(" %s=%" PRIu64, stat_names[i], r->m.stat[i]);
	printf("\n  never seen:");
	for (int i = 0; i < HT_R__MAX; i++)
		if (ht_result_name(i) && !r->result_seen[i])
			printf(" %s", rname((unsigned)i));
	printf("\n");
	fflush(stdout);
}

static void run_seed(uint64_t seed, uint64_t ops)
{
	struct run *r = run_new(seed, ops);
	printf("test_ledger_model: HT_SEED=%" PRIu64 " HT_OPS=%" PRIu64 "\n",
	       seed, ops);
	fflush(stdout);
	uint64_t t0 = ht_now_monotonic_ns();
	while (r->op_no < ops)
		one_call(r);
	commit(r);
	for (size_t k = 0; k < r->eng_count; k++)
		full_check(r, k, true);
	r->m.recheck_count = 0;
	double secs = (double)(ht_now_monotonic_ns() - t0) / 1e9;

	/* Replay into a fresh engine, then run both side by side. */
	r->logging = false;
	engine_enter(r, CALL_EXPIRE, NULL, 0);   /* the replay */
	replay_check(r);
	engine_leave();
	r->clock.now_ns += 100 * NS_PER_S;
	r->tail_start_ts = r->m.last_ts;
	uint64_t tail = ops / 100 > 5000 ? ops / 100 : 5000;
	uint64_t end = r->op_no + tail;
	while (r->op_no < end)
		one_call(r);
	commit(r);
	for (size_t k = 0; k < r->eng_count; k++)
		full_check(r, k, true);
	print_stats(r, secs);
	run_free(r);
}

/* ---- tests ------------------------------------------------------------------ */

#define OPS_DEFAULT 1000000u

static void test_model_random(void **state)
{
	(void)state;
	uint64_t seed = env_u64("HT_SEED", 20260301);
	if (env_u64("HT_SOAK", 0)) {
		uint64_t seeds = env_u64("HT_SOAK_SEEDS", 12);
		uint64_t ops = env_u64("HT_OPS", 3000000);
		for (uint64_t s = 0; s < seeds; s++)
			run_seed(seed + s, ops);
		return;
	}
	run_seed(seed, env_u64("HT_OPS", OPS_DEFAULT));
}

static uint64_t fixed_now(void *ctx)
{
	return *(uint64_t *)ctx;
}

/* Replay refuses events that cannot apply. */
static void test_replay_rejects(void **state)
{
	(void)state;
	uint64_t now = 1000;
	struct ht_clock clock = { fixed_now, &now };
	struct ht_ledger *l;
	assert_int_equal(ht_ledger_create(&clock, &l), HT_OK);
	struct ht_event e;
	memset(&e, 0, sizeof(e));
	e.kind = HT_EVENT_ACCOUNT;
	e.u.account.id = 1;
	e.u.account.ledger = 1;
	e.u.account.code = 1;
	e.u.account.timestamp = 10;
	assert_int_equal(ht_ledger_replay(l, &e), HT_OK);
	e.u.account.id = 2;
	e.u.account.timestamp = 10;   /* not increasing */
	assert_int_equal(ht_ledger_replay(l, &e), HT_ERR_CORRUPT);
	ht_ledger_destroy(l);

	assert_int_equal(ht_ledger_create(&clock, &l), HT_OK);
	memset(&e, 0, sizeof(e));
	e.kind = HT_EVENT_TRANSFER;   /* unknown accounts */
	e.u.transfer.id = 5;
	e.u.transfer.debit_account_id = 1;
	e.u.transfer.credit_account_id = 2;
	e.u.transfer.amount = 1;
	e.u.transfer.ledger = 1;
	e.u.transfer.code = 1;
	e.u.transfer.timestamp = 20;
	assert_int_equal(ht_ledger_replay(l, &e), HT_ERR_CORRUPT);
	ht_ledger_destroy(l);

	assert_int_equal(ht_ledger_create(&clock, &l), HT_OK);
	memset(&e, 0, sizeof(e));
	e.kind = HT_EVENT_EXPIRY;   /* pending transfer missing */
	e.u.expiry.pending_id = 9;
	e.u.expiry.timestamp = 30;
	assert_int_equal(ht_ledger_replay(l, &e), HT_ERR_CORRUPT);
	ht_ledger_destroy(l);

	assert_int_equal(ht_ledger_create(&clock, &l), HT_OK);
	memset(&e, 0, sizeof(e));
	e.kind = HT_EVENT_REFUSAL;  /* exists does not burn */
	e.u.refusal.id = 9;
	e.u.refusal.result = HT_R_EXISTS;
	e.u.refusal.timestamp = 40;
	assert_int_equal(ht_ledger_replay(l, &e), HT_ERR_CORRUPT);
	e.u.refusal.result = HT_R_EXCEEDS_CREDITS;
	assert_int_equal(ht_ledger_replay(l, &e), HT_OK);
	e.u.refusal.timestamp = 41;  /* burned once only */
	assert_int_equal(ht_ledger_replay(l, &e), HT_ERR_CORRUPT);
	ht_ledger_destroy(l);
	ht_ledger_destroy(NULL);
}

/* After ht_ledger_poison every mutating call answers HT_ERR_POISONED. */
static void test_poisoned(void **state)
{
	(void)state;
	uint64_t now = 1000;
	struct ht_clock clock = { fixed_now, &now };
	struct ht_ledger *l;
	assert_int_equal(ht_ledger_create(&clock, &l), HT_OK);
	struct ht_account a;
	memset(&a, 0, sizeof(a));
	a.id = 1;
	a.ledger = 1;
	a.code = 1;
	uint16_t res[1];
	assert_int_equal(ht_ledger_create_accounts(l, &a, 1, res), HT_OK);
	assert_int_equal(res[0], HT_R_OK);
	ht_ledger_poison(l);
	a.id = 2;
	assert_int_equal(ht_ledger_create_accounts(l, &a, 1, res),
			 HT_ERR_POISONED);
	struct ht_transfer t;
	memset(&t, 0, sizeof(t));
	t.id = 1;
	assert_int_equal(ht_ledger_create_transfers(l, &t, 1, res),
			 HT_ERR_POISONED);
	assert_int_equal(ht_ledger_expire(l), HT_ERR_POISONED);
	assert_non_null(ht_ledger_account_get(l, 1));
	assert_null(ht_ledger_account_get(l, 2));
	ht_ledger_destroy(l);
}

int main(void)
{
	signal(SIGABRT, on_abort);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay_rejects),
		cmocka_unit_test(test_poisoned),
		cmocka_unit_test(test_model_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

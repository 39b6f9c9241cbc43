/*
 * transfer.c — one transfer: its checks, in the order ledger.h documents,
 * then its effects on balances, pending state, closed flags and changes.
 *
 * Owner: ledger. This is the hot path (millions of calls a second): no
 * allocation (ledger.c reserved everything), one id probe reused for the
 * insert, two account look-ups. Checks never change state and effects
 * never fail, so a failed transfer leaves nothing behind; a linked chain
 * is undone from the undo entries ledger_acct_save records. Replay runs
 * the same checks on stored transfers, so replayed state is live state.
 */
#include "ledger_internal.h"

#include <string.h>

#define F_POST_VOID (HT_TRANSFER_POST_PENDING | HT_TRANSFER_VOID_PENDING)
#define F_BALANCING \
	(HT_TRANSFER_BALANCING_DEBIT | HT_TRANSFER_BALANCING_CREDIT)
#define F_CLOSING (HT_TRANSFER_CLOSING_DEBIT | HT_TRANSFER_CLOSING_CREDIT)

/* What the checks found, for the effects. */
struct plan {
	uint32_t dr, cr;     /* account indices */
	uint32_t p_xfer;     /* post/void: the pending transfer's index */
	uint32_t p_slot;     /* post/void: its pending slot */
	uint64_t amount;     /* the amount to move and store */
};

static inline bool sum_overflows(uint64_t a, uint64_t b)
{
	return (ht_u128)a + b > UINT64_MAX;
}

/* ---- field validation --------------------------------------------- */

static uint16_t check_flags(uint16_t f)
{
	if ((f & HT_TRANSFER_PENDING) && (f & F_POST_VOID))
		return HT_R_FLAGS_ARE_MUTUALLY_EXCLUSIVE;
	if ((f & F_POST_VOID) == F_POST_VOID)
		return HT_R_FLAGS_ARE_MUTUALLY_EXCLUSIVE;
	if ((f & F_BALANCING) && (f & F_POST_VOID))
		return HT_R_FLAGS_ARE_MUTUALLY_EXCLUSIVE;
	if ((f & F_CLOSING) && (f & F_POST_VOID))
		return HT_R_FLAGS_ARE_MUTUALLY_EXCLUSIVE;
	if ((f & F_CLOSING) && !(f & HT_TRANSFER_PENDING))
		return HT_R_CLOSING_TRANSFER_MUST_BE_PENDING;
	return HT_R_OK;
}

static uint16_t check_fields_plain(const struct ht_transfer *t)
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

static uint16_t check_fields_post_void(const struct ht_transfer *t)
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

static uint16_t check_fields(const struct ht_transfer *t)
{
	if (t->id == 0)
		return HT_R_ID_MUST_NOT_BE_ZERO;
	if (t->id == HT_U128_MAX)
		return HT_R_ID_MUST_NOT_BE_INT_MAX;
	uint16_t r = check_flags(t->flags);
	if (r)
		return r;
	if (t->flags & F_POST_VOID)
		return check_fields_post_void(t);
	return check_fields_plain(t);
}

/* ---- idempotency ---------------------------------------------------- */

/* A request field left 0 on a post/void means "the pending transfer's". */
static bool same_or_inherited(ht_u128 req, ht_u128 stored, bool inherit)
{
	return req == stored || (inherit && req == 0);
}

static bool same_amount(const struct ht_transfer *t,
			const struct ht_transfer *e)
{
	if (t->flags & F_BALANCING)
		return t->amount >= e->amount;
	return same_or_inherited(t->amount, e->amount, t->flags & F_POST_VOID);
}

static uint16_t transfer_exists(const struct ht_transfer *t,
				const struct ht_transfer *e)
{
	bool inherit = t->flags & F_POST_VOID;
	if ((t->flags ^ e->flags) & ~HT_TRANSFER_LINKED)
		return HT_R_EXISTS_WITH_DIFFERENT_FLAGS;
	if (!same_or_inherited(t->debit_account_id, e->debit_account_id,
			       inherit))
		return HT_R_EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID;
	if (!same_or_inherited(t->credit_account_id, e->credit_account_id,
			       inherit))
		return HT_R_EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID;
	if (!same_amount(t, e))
		return HT_R_EXISTS_WITH_DIFFERENT_AMOUNT;
	if (t->pending_id != e->pending_id)
		return HT_R_EXISTS_WITH_DIFFERENT_PENDING_ID;
	if (t->timeout_s != e->timeout_s)
		return HT_R_EXISTS_WITH_DIFFERENT_TIMEOUT;
	if (!same_or_inherited(t->ledger, e->ledger, inherit))
		return HT_R_EXISTS_WITH_DIFFERENT_LEDGER;
	if (!same_or_inherited(t->code, e->code, inherit))
		return HT_R_EXISTS_WITH_DIFFERENT_CODE;
	if (t->user_data_len != e->user_data_len ||
	    memcmp(t->user_data, e->user_data, t->user_data_len))
		return HT_R_EXISTS_WITH_DIFFERENT_USER_DATA;
	return HT_R_EXISTS;
}

/* ---- the pending transfer of a post/void ----------------------------- */

static uint16_t pending_state_result(const struct pending *ps, uint64_t ts)
{
	switch (ps->state) {
	case HT_PENDING_OPEN:
		break;
	case HT_PENDING_POSTED:
		return HT_R_PENDING_TRANSFER_ALREADY_POSTED;
	case HT_PENDING_VOIDED:
		return HT_R_PENDING_TRANSFER_ALREADY_VOIDED;
	case HT_PENDING_EXPIRED:
		return HT_R_PENDING_TRANSFER_EXPIRED;
	default:
		HT_ASSERT(!"pending state");
	}
	/* Due but not yet expired (expiry runs at the start of a call): it is
	 * expired for this event all the same. */
	if (ps->expires_at && ps->expires_at <= ts)
		return HT_R_PENDING_TRANSFER_EXPIRED;
	return HT_R_OK;
}

static uint32_t account_index(const struct ht_ledger *l, ht_u128 id)
{
	uint32_t v = ledger_account_find(l, id);
	HT_ASSERT(v != 0);
	return v - 1;
}

static uint16_t check_pending(const struct ht_ledger *l,
			      const struct ht_transfer *t, uint64_t ts,
			      struct plan *pl)
{
	uint32_t v = ledger_xfer_find(l, t->pending_id);
	if (v == 0)
		return HT_R_PENDING_TRANSFER_NOT_FOUND;
	const struct ht_transfer *p = &l->transfers[v - 1];
	if (!(p->flags & HT_TRANSFER_PENDING))
		return HT_R_PENDING_TRANSFER_NOT_PENDING;
	if (t->debit_account_id && t->debit_account_id != p->debit_account_id)
		return HT_R_PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID;
	if (t->credit_account_id &&
	    t->credit_account_id != p->credit_account_id)
		return HT_R_PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID;
	if (t->ledger && t->ledger != p->ledger)
		return HT_R_PENDING_TRANSFER_HAS_DIFFERENT_LEDGER;
	if (t->code && t->code != p->code)
		return HT_R_PENDING_TRANSFER_HAS_DIFFERENT_CODE;
	uint64_t amount = t->amount ? t->amount : p->amount;
	if (amount > p->amount)
		return HT_R_EXCEEDS_PENDING_TRANSFER_AMOUNT;
	if ((t->flags & HT_TRANSFER_VOID_PENDING) && amount < p->amount)
		return HT_R_PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT;
	uint32_t slot = l->xfer_pending[v - 1];
	HT_ASSERT(slot != NOT_PENDING);
	uint16_t r = pending_state_result(&l->pendings[slot], ts);
	if (r)
		return r;
	pl->p_xfer = v - 1;
	pl->p_slot = slot;
	pl->amount = amount;
	pl->dr = account_index(l, p->debit_account_id);
	pl->cr = account_index(l, p->credit_account_id);
	return HT_R_OK;
}

/* ---- accounts and amounts ------------------------------------------- */

static uint16_t check_accounts(const struct ht_ledger *l,
			       const struct ht_transfer *t, struct plan *pl)
{
	uint32_t dv = ledger_account_find(l, t->debit_account_id);
	if (dv == 0)
		return HT_R_DEBIT_ACCOUNT_NOT_FOUND;
	uint32_t cv = ledger_account_find(l, t->credit_account_id);
	if (cv == 0)
		return HT_R_CREDIT_ACCOUNT_NOT_FOUND;
	pl->dr = dv - 1;
	pl->cr = cv - 1;
	return HT_R_OK;
}

static uint16_t check_ledgers_closed(const struct ht_ledger *l,
				     const struct ht_transfer *t,
				     const struct plan *pl)
{
	const struct ht_account *dr = &l->accounts[pl->dr];
	const struct ht_account *cr = &l->accounts[pl->cr];
	const struct ht_transfer *p =
		t->flags & F_POST_VOID ? &l->transfers[pl->p_xfer] : NULL;
	if (dr->ledger != cr->ledger)
		return HT_R_ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER;
	if ((p ? p->ledger : t->ledger) != dr->ledger)
		return HT_R_TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS;
	if (t->flags & HT_TRANSFER_VOID_PENDING)
		return HT_R_OK;
	/* Posting a closing transfer keeps its account closed: the account
	 * it closed itself does not block it. */
	uint16_t closer = p ? p->flags : 0;
	if ((dr->flags & HT_ACCOUNT_CLOSED) &&
	    !(closer & HT_TRANSFER_CLOSING_DEBIT))
		return HT_R_DEBIT_ACCOUNT_CLOSED;
	if ((cr->flags & HT_ACCOUNT_CLOSED) &&
	    !(closer & HT_TRANSFER_CLOSING_CREDIT))
		return HT_R_CREDIT_ACCOUNT_CLOSED;
	return HT_R_OK;
}

/* Balancing: clamp to what keeps the account within its own balance. */
static uint64_t clamp_balancing(const struct ht_transfer *t,
				const struct ht_account *dr,
				const struct ht_account *cr, uint16_t *r)
{
	uint64_t amount = t->amount;
	if (t->flags & HT_TRANSFER_BALANCING_DEBIT) {
		ht_u128 used = (ht_u128)dr->debits_posted + dr->debits_pending;
		ht_u128 room = dr->credits_posted > used ?
				       dr->credits_posted - used : 0;
		if (room < amount)
			amount = (uint64_t)room;
		if (amount == 0) {
			*r = HT_R_EXCEEDS_CREDITS;
			return 0;
		}
	}
	if (t->flags & HT_TRANSFER_BALANCING_CREDIT) {
		ht_u128 used = (ht_u128)cr->credits_posted + cr->credits_pending;
		ht_u128 room = cr->debits_posted > used ?
				       cr->debits_posted - used : 0;
		if (room < amount)
			amount = (uint64_t)room;
		if (amount == 0)
			*r = HT_R_EXCEEDS_DEBITS;
	}
	return amount;
}

static uint16_t check_overflows(const struct ht_transfer *t,
				const struct ht_account *dr,
				const struct ht_account *cr, uint64_t a,
				uint64_t ts)
{
	bool pending = t->flags & HT_TRANSFER_PENDING;
	if (pending && sum_overflows(dr->debits_pending, a))
		return HT_R_OVERFLOWS_DEBITS_PENDING;
	if (pending && sum_overflows(cr->credits_pending, a))
		return HT_R_OVERFLOWS_CREDITS_PENDING;
	if (sum_overflows(dr->debits_posted, a))
		return HT_R_OVERFLOWS_DEBITS_POSTED;
	if (sum_overflows(cr->credits_posted, a))
		return HT_R_OVERFLOWS_CREDITS_POSTED;
	if ((ht_u128)dr->debits_pending + dr->debits_posted + a > UINT64_MAX)
		return HT_R_OVERFLOWS_DEBITS;
	if ((ht_u128)cr->credits_pending + cr->credits_posted + a > UINT64_MAX)
		return HT_R_OVERFLOWS_CREDITS;
	if (pending && t->timeout_s &&
	    (ht_u128)ts + (ht_u128)t->timeout_s * NS_PER_S > UINT64_MAX)
		return HT_R_OVERFLOWS_TIMEOUT;
	return HT_R_OK;
}

static uint16_t check_amounts_plain(const struct ht_ledger *l,
				    const struct ht_transfer *t, uint64_t ts,
				    struct plan *pl)
{
	const struct ht_account *dr = &l->accounts[pl->dr];
	const struct ht_account *cr = &l->accounts[pl->cr];
	uint16_t r = HT_R_OK;
	uint64_t a = clamp_balancing(t, dr, cr, &r);
	if (r)
		return r;
	r = check_overflows(t, dr, cr, a, ts);
	if (r)
		return r;
	if ((dr->flags & HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS) &&
	    (ht_u128)dr->debits_pending + dr->debits_posted + a >
		    dr->credits_posted)
		return HT_R_EXCEEDS_CREDITS;
	if ((cr->flags & HT_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS) &&
	    (ht_u128)cr->credits_pending + cr->credits_posted + a >
		    cr->debits_posted)
		return HT_R_EXCEEDS_DEBITS;
	pl->amount = a;
	return HT_R_OK;
}

/* A post moves at most the reserved amount from pending to posted, and
 * pending + posted never exceeds 2^64-1 (checked when the pending
 * transfer was created), so no column can overflow and no limit can be
 * crossed: nothing to check, only to assert. */
static uint16_t check_amounts_post(const struct ht_ledger *l,
				   const struct plan *pl)
{
	const struct ht_account *dr = &l->accounts[pl->dr];
	const struct ht_account *cr = &l->accounts[pl->cr];
	HT_ASSERT((ht_u128)dr->debits_pending + dr->debits_posted <= UINT64_MAX);
	HT_ASSERT((ht_u128)cr->credits_pending + cr->credits_posted <=
		  UINT64_MAX);
	HT_ASSERT(pl->amount <= l->transfers[pl->p_xfer].amount);
	return HT_R_OK;
}

/* ---- effects ---------------------------------------------------------- */

static uint32_t transfer_store(struct ht_ledger *l, const struct ht_transfer *t,
			       uint64_t ts, const struct plan *pl,
			       struct ht_idmap_slot *slot)
{
	HT_ASSERT(l->transfer_count < l->transfer_cap);
	uint32_t idx = (uint32_t)l->transfer_count++;
	struct ht_transfer *s = &l->transfers[idx];
	memset(s, 0, sizeof *s);
	s->id = t->id;
	const struct ht_transfer *src =
		t->flags & F_POST_VOID ? &l->transfers[pl->p_xfer] : t;
	s->debit_account_id = src->debit_account_id;
	s->credit_account_id = src->credit_account_id;
	s->ledger = src->ledger;
	s->code = src->code;
	s->pending_id = t->pending_id;
	s->amount = pl->amount;
	s->timestamp = ts;
	s->timeout_s = t->timeout_s;
	s->flags = t->flags;
	s->user_data_len = t->user_data_len;
	memcpy(s->user_data, t->user_data, t->user_data_len);
	ht_idmap_fill(&l->transfer_ids, slot, t->id, idx + 1);
	l->xfer_pending[idx] = NOT_PENDING;
	return idx;
}

static void pending_open(struct ht_ledger *l, uint32_t idx, uint64_t ts)
{
	HT_ASSERT(l->pending_count < l->pending_cap);
	const struct ht_transfer *s = &l->transfers[idx];
	uint32_t slot = (uint32_t)l->pending_count++;
	struct pending *ps = &l->pendings[slot];
	ps->expires_at = s->timeout_s ? ts + (uint64_t)s->timeout_s * NS_PER_S
				      : 0;
	ps->xfer = idx;
	ps->state = HT_PENDING_OPEN;
	l->xfer_pending[idx] = slot;
}

static void effect_plain(struct ht_ledger *l, const struct ht_transfer *t,
			 const struct plan *pl)
{
	struct ht_account *dr = &l->accounts[pl->dr];
	struct ht_account *cr = &l->accounts[pl->cr];
	struct ledger_sums *s = &l->ledgers[l->meta[pl->dr].ledger_slot];
	uint64_t a = pl->amount;
	if (t->flags & HT_TRANSFER_PENDING) {
		dr->debits_pending += a;
		cr->credits_pending += a;
		s->debits_pending += a;
		s->credits_pending += a;
		if (t->flags & HT_TRANSFER_CLOSING_DEBIT)
			dr->flags |= HT_ACCOUNT_CLOSED;
		if (t->flags & HT_TRANSFER_CLOSING_CREDIT)
			cr->flags |= HT_ACCOUNT_CLOSED;
	} else {
		dr->debits_posted += a;
		cr->credits_posted += a;
		s->debits_posted += a;
		s->credits_posted += a;
	}
}

static void effect_post_void(struct ht_ledger *l, const struct ht_transfer *t,
			     const struct plan *pl)
{
	struct ht_account *dr = &l->accounts[pl->dr];
	struct ht_account *cr = &l->accounts[pl->cr];
	struct ledger_sums *s = &l->ledgers[l->meta[pl->dr].ledger_slot];
	const struct ht_transfer *p = &l->transfers[pl->p_xfer];
	struct pending *ps = &l->pendings[pl->p_slot];
	if (l->in_chain) {
		struct pending_undo *u =
			&l->undo_pending[l->undo_pending_count++];
		u->slot = pl->p_slot;
		u->state = ps->state;
	}
	HT_ASSERT(dr->debits_pending >= p->amount);
	HT_ASSERT(cr->credits_pending >= p->amount);
	dr->debits_pending -= p->amount;
	cr->credits_pending -= p->amount;
	s->debits_pending -= p->amount;
	s->credits_pending -= p->amount;
	if (t->flags & HT_TRANSFER_POST_PENDING) {
		dr->debits_posted += pl->amount;
		cr->credits_posted += pl->amount;
		s->debits_posted += pl->amount;
		s->credits_posted += pl->amount;
		ps->state = HT_PENDING_POSTED;
		return;
	}
	if (p->flags & HT_TRANSFER_CLOSING_DEBIT)
		dr->flags &= (uint16_t)~HT_ACCOUNT_CLOSED;
	if (p->flags & HT_TRANSFER_CLOSING_CREDIT)
		cr->flags &= (uint16_t)~HT_ACCOUNT_CLOSED;
	ps->state = HT_PENDING_VOIDED;
}

/* Limits hold for every account at all times (ledger.h invariants). */
static inline void assert_limits(const struct ht_account *a)
{
	if (a->flags & HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS)
		HT_ASSERT((ht_u128)a->debits_pending + a->debits_posted <=
			  a->credits_posted);
	if (a->flags & HT_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS)
		HT_ASSERT((ht_u128)a->credits_pending + a->credits_posted <=
			  a->debits_posted);
}

static void transfer_apply(struct ht_ledger *l, const struct ht_transfer *t,
			   uint64_t ts, const struct plan *pl,
			   struct ht_idmap_slot *slot)
{
	HT_ASSERT(l->meta[pl->dr].ledger_slot == l->meta[pl->cr].ledger_slot);
	ledger_acct_save(l, pl->dr);
	ledger_acct_save(l, pl->cr);
	uint32_t idx = transfer_store(l, t, ts, pl, slot);
	if (t->flags & F_POST_VOID) {
		effect_post_void(l, t, pl);
	} else {
		effect_plain(l, t, pl);
		if (t->flags & HT_TRANSFER_PENDING)
			pending_open(l, idx, ts);
	}
	ledger_acct_changed(l, pl->dr, ts);
	ledger_acct_changed(l, pl->cr, ts);
	assert_limits(&l->accounts[pl->dr]);
	assert_limits(&l->accounts[pl->cr]);
	if (!l->replaying) {
		struct ht_event *e = ledger_event_push(l);
		e->kind = HT_EVENT_TRANSFER;
		e->u.transfer = l->transfers[idx];
	}
	ledger_commit_ts(l, ts);
}

uint16_t ledger_transfer_create(struct ht_ledger *l,
				const struct ht_transfer *t, uint64_t ts,
				uint16_t refuse)
{
	uint16_t r = check_fields(t);
	if (r)
		return r;
	struct ht_idmap_slot *slot = ledger_xfer_probe(l, t->id);
	if (slot->val & BURNED_BIT)
		return HT_R_ID_ALREADY_FAILED;
	if (slot->val)
		return transfer_exists(t, &l->transfers[slot->val - 1]);
	struct plan pl = {0};
	bool post_void = t->flags & F_POST_VOID;
	r = post_void ? check_pending(l, t, ts, &pl)
		      : check_accounts(l, t, &pl);
	if (!r)
		r = check_ledgers_closed(l, t, &pl);
	if (!r)
		r = post_void ? check_amounts_post(l, &pl)
			      : check_amounts_plain(l, t, ts, &pl);
	if (r)
		return r;
	/* the hub's verdict comes last: it refuses only what would commit */
	if (refuse)
		return refuse;
	if (l->replaying && pl.amount != t->amount)
		return RESULT_REPLAY_MISMATCH;
	transfer_apply(l, t, ts, &pl, slot);
	return HT_R_OK;
}

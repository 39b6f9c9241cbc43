/*
 * ledger.c — the ledger engine's batches: memory reservation, linked
 * chains and their undo, account creation, burned ids (refusal events),
 * the changes handed to the hub, lookups.
 *
 * Owner: ledger. This file owns every allocation of the engine and the
 * order of a create call: read the clock once, reserve all memory the
 * batch can need (so HT_ERR_NOMEM leaves state unchanged), expire due
 * pending transfers, apply the events one by one, then assert the
 * money-protecting invariants. It must never touch storage, the network
 * or the wall clock (time comes from struct ht_clock only), and must stay
 * deterministic: the same input and clock give the same results, events
 * and changes. Transfer checks and effects live in transfer.c, expiry in
 * expire.c, replay and the full recheck in replay.c.
 */
#include "ledger_internal.h"
#include "vm.h"

#include <stdlib.h>
#include <string.h>

static uint64_t wall_now_ns(void *ctx)
{
	(void)ctx;
	return ht_now_wall_ns();
}

const struct ht_clock ht_clock_wall = {wall_now_ns, NULL};

/* ---- memory ---------------------------------------------------------- */

static bool alloc_allowed(struct ht_ledger *l)
{
	if (l->alloc_budget < 0)
		return true;
	if (l->alloc_budget == 0)
		return false;
	l->alloc_budget--;
	return true;
}

void ht_ledger_test_fail_alloc_after(struct ht_ledger *l, long n)
{
	l->alloc_budget = n;
}

/* pp is the address of the array pointer (any object pointer type):
 * copied with memcpy so no type punning is involved. */
enum ht_err ledger_array_reserve(struct ht_ledger *l, void *pp, size_t *cap,
				 size_t need, size_t elem)
{
	if (need <= *cap)
		return HT_OK;
	size_t c = *cap ? *cap : 16;
	while (c < need) {
		if (c > SIZE_MAX / 2 / elem)
			return HT_ERR_NOMEM;
		c *= 2;
	}
	if (!alloc_allowed(l))
		return HT_ERR_NOMEM;
	void *old;
	memcpy(&old, pp, sizeof old);
	void *p = ht_vm_resize(old, *cap * elem, c * elem);
	if (!p)
		return HT_ERR_NOMEM;
	memcpy(pp, &p, sizeof p);
	*cap = c;
	return HT_OK;
}

#define ARRAY_RESERVE(l, arr, cap, need) \
	ledger_array_reserve((l), &(arr), &(cap), (need), sizeof *(arr))

/* The id indexes grow by rebuilding from the arrays that own the keys:
 * sequential reads, no random key fetches. */
static enum ht_err map_rebuild_begin(struct ht_ledger *l, struct ht_idmap *m,
				     size_t keys)
{
	if (!alloc_allowed(l))
		return HT_ERR_NOMEM;
	return ht_idmap_rebuild_begin(m, keys);
}

static enum ht_err account_ids_reserve(struct ht_ledger *l, size_t extra)
{
	struct ht_idmap *m = &l->account_ids;
	if (!ht_idmap_needs_grow(m, extra))
		return HT_OK;
	enum ht_err err = map_rebuild_begin(l, m, m->count + extra);
	if (err)
		return err;
	for (size_t i = 0; i < l->account_count; i++)
		ht_idmap_insert_new(m, l->accounts[i].id, (uint32_t)i + 1);
	return HT_OK;
}

static enum ht_err ledger_ids_reserve(struct ht_ledger *l, size_t extra)
{
	struct ht_idmap *m = &l->ledger_ids;
	if (!ht_idmap_needs_grow(m, extra))
		return HT_OK;
	enum ht_err err = map_rebuild_begin(l, m, m->count + extra);
	if (err)
		return err;
	for (size_t i = 0; i < l->ledger_count; i++)
		ht_idmap_insert_new(m, l->ledgers[i].ledger, (uint32_t)i + 1);
	return HT_OK;
}

enum ht_err ledger_xfer_ids_reserve(struct ht_ledger *l, size_t extra)
{
	struct ht_idmap *m = &l->transfer_ids;
	enum ht_err err = ARRAY_RESERVE(l, l->burned, l->burned_cap,
					l->burned_count + extra);
	if (err || !ht_idmap_needs_grow(m, extra))
		return err;
	err = map_rebuild_begin(l, m, m->count + extra);
	if (err)
		return err;
	for (size_t i = 0; i < l->transfer_count; i++) {
		if (i + PREFETCH_DISTANCE < l->transfer_count)
			ht_idmap_prefetch(m,
					  l->transfers[i + PREFETCH_DISTANCE].id);
		ht_idmap_insert_new(m, l->transfers[i].id, (uint32_t)i + 1);
	}
	for (size_t i = 0; i < l->burned_count; i++)
		ht_idmap_insert_new(m, l->burned[i], BURNED_BIT | (uint32_t)i);
	return HT_OK;
}

void ledger_burned_insert(struct ht_ledger *l, struct ht_idmap_slot *slot,
			  ht_u128 id)
{
	HT_ASSERT(l->burned_count < l->burned_cap);
	uint32_t i = (uint32_t)l->burned_count++;
	l->burned[i] = id;
	ht_idmap_fill(&l->transfer_ids, slot, id, BURNED_BIT | i);
}

/* dirty_ptr[] holds pointers into accounts[]; after the array moved they
 * are rebuilt from dirty_idx[] (rare: geometric growth). */
static void dirty_ptrs_sync(struct ht_ledger *l)
{
	if (l->dirty_base != l->accounts) {
		l->dirty_ptr_count = 0;
		l->dirty_base = l->accounts;
	}
	if (l->dirty_ptr_count > l->dirty_count)
		l->dirty_ptr_count = l->dirty_count;
	for (size_t k = l->dirty_ptr_count; k < l->dirty_count; k++)
		l->dirty_ptr[k] = &l->accounts[l->dirty_idx[k]];
	l->dirty_ptr_count = l->dirty_count;
}

enum ht_err ledger_accounts_reserve(struct ht_ledger *l, size_t extra)
{
	size_t need = l->account_count + extra;
	if (need > OBJECTS_MAX)
		return HT_ERR_LIMIT;
	enum ht_err err = ARRAY_RESERVE(l, l->accounts, l->account_cap, need);
	if (!err)
		err = ARRAY_RESERVE(l, l->meta, l->meta_cap, need);
	if (!err)
		err = account_ids_reserve(l, extra);
	/* Every account may end up in the dirty list, once. */
	if (!err)
		err = ARRAY_RESERVE(l, l->dirty_idx, l->dirty_cap, need);
	if (!err)
		err = ARRAY_RESERVE(l, l->dirty_ptr, l->dirty_ptr_cap, need);
	/* Each new account may open a new ledger. */
	if (!err)
		err = ARRAY_RESERVE(l, l->ledgers, l->ledger_cap,
				    l->ledger_count + extra);
	if (!err)
		err = ARRAY_RESERVE(l, l->touched, l->touched_cap,
				    l->ledger_count + extra);
	if (!err)
		err = ledger_ids_reserve(l, extra);
	return err;
}

enum ht_err ledger_transfers_reserve(struct ht_ledger *l, size_t extra)
{
	size_t need = l->transfer_count + extra;
	/* Fast path (replay reserves one at a time). */
	if (need <= l->transfer_cap && need <= l->xfer_pending_cap &&
	    l->pending_count + extra <= l->pending_cap &&
	    l->pending_count + extra <= l->heap_cap &&
	    l->burned_count + extra <= l->burned_cap &&
	    !ht_idmap_needs_grow(&l->transfer_ids, extra))
		return HT_OK;
	if (need > OBJECTS_MAX || l->pending_count + extra > OBJECTS_MAX ||
	    l->transfer_ids.count + extra > OBJECTS_MAX)
		return HT_ERR_LIMIT;
	enum ht_err err = ARRAY_RESERVE(l, l->transfers, l->transfer_cap, need);
	if (!err)
		err = ARRAY_RESERVE(l, l->xfer_pending, l->xfer_pending_cap,
				    need);
	if (!err)
		err = ledger_xfer_ids_reserve(l, extra);
	if (!err)
		err = ARRAY_RESERVE(l, l->pendings, l->pending_cap,
				    l->pending_count + extra);
	if (!err)
		err = ARRAY_RESERVE(l, l->heap, l->heap_cap,
				    l->pending_count + extra);
	return err;
}

/* Everything a create call of n events (plus the expiries due now) can
 * need, reserved before any state changes. Each input emits at most one
 * event (its account or transfer, or its refusal), so n + due events. */
static enum ht_err reserve_call(struct ht_ledger *l, size_t n, bool accounts)
{
	enum ht_err err = ARRAY_RESERVE(l, l->heap, l->heap_cap,
					l->pending_count);
	if (err)
		return err;
	if (l->heap_stale)
		ledger_heap_rebuild(l);
	size_t due = ledger_heap_due(l, l->now);
	size_t touched = accounts ? 0 : n;
	err = ARRAY_RESERVE(l, l->events, l->event_cap,
			    l->event_count + n + due);
	if (!err)
		err = ARRAY_RESERVE(l, l->history, l->history_cap,
				    l->history_count + 2 * (touched + due));
	if (!err && accounts)
		err = ledger_accounts_reserve(l, n);
	if (!err && !accounts)
		err = ledger_transfers_reserve(l, n);
	if (!err && !accounts)
		err = ARRAY_RESERVE(l, l->undo_acct, l->undo_acct_cap, 2 * n);
	if (!err && !accounts)
		err = ARRAY_RESERVE(l, l->undo_pending, l->undo_pending_cap, n);
	return err;
}

/* ---- create / destroy ------------------------------------------------ */

enum ht_err ht_ledger_create(const struct ht_clock *clock,
			     struct ht_ledger **out)
{
	if (!clock || !clock->now_ns || !out)
		return HT_ERR_INVALID;
	struct ht_ledger *l = calloc(1, sizeof *l);
	if (!l)
		return HT_ERR_NOMEM;
	l->clock = *clock;
	l->alloc_budget = -1;
	l->dirty_epoch = 1;
	if (ht_idmap_init(&l->account_ids, 0) ||
	    ht_idmap_init(&l->transfer_ids, 0) ||
	    ht_idmap_init(&l->ledger_ids, 0)) {
		ht_ledger_destroy(l);
		return HT_ERR_NOMEM;
	}
	*out = l;
	return HT_OK;
}

#define ARRAY_FREE(arr, cap) ht_vm_free((arr), (cap) * sizeof *(arr))

void ht_ledger_destroy(struct ht_ledger *l)
{
	if (!l)
		return;
	ARRAY_FREE(l->accounts, l->account_cap);
	ARRAY_FREE(l->meta, l->meta_cap);
	ht_idmap_free(&l->account_ids);
	ARRAY_FREE(l->transfers, l->transfer_cap);
	ARRAY_FREE(l->xfer_pending, l->xfer_pending_cap);
	ht_idmap_free(&l->transfer_ids);
	ARRAY_FREE(l->burned, l->burned_cap);
	ARRAY_FREE(l->pendings, l->pending_cap);
	ARRAY_FREE(l->heap, l->heap_cap);
	ARRAY_FREE(l->ledgers, l->ledger_cap);
	ht_idmap_free(&l->ledger_ids);
	ARRAY_FREE(l->touched, l->touched_cap);
	ARRAY_FREE(l->events, l->event_cap);
	ARRAY_FREE(l->dirty_idx, l->dirty_cap);
	ARRAY_FREE(l->dirty_ptr, l->dirty_ptr_cap);
	ARRAY_FREE(l->history, l->history_cap);
	ARRAY_FREE(l->undo_acct, l->undo_acct_cap);
	ARRAY_FREE(l->undo_pending, l->undo_pending_cap);
	free(l);
}

/* ---- shared helpers ---------------------------------------------------- */

void ledger_acct_changed(struct ht_ledger *l, uint32_t idx, uint64_t ts)
{
	if (l->replaying)
		return;
	struct acct_meta *m = &l->meta[idx];
	if (m->dirty_epoch != l->dirty_epoch) {
		m->dirty_epoch = l->dirty_epoch;
		l->dirty_idx[l->dirty_count++] = idx;
	}
	struct ledger_sums *s = &l->ledgers[m->ledger_slot];
	if (s->touch_epoch != l->call_epoch) {
		s->touch_epoch = l->call_epoch;
		l->touched[l->touched_count++] = m->ledger_slot;
	}
	const struct ht_account *a = &l->accounts[idx];
	if (!(a->flags & HT_ACCOUNT_HISTORY))
		return;
	struct ht_balance *b = &l->history[l->history_count++];
	b->account_id = a->id;
	b->timestamp = ts;
	b->debits_pending = a->debits_pending;
	b->debits_posted = a->debits_posted;
	b->credits_pending = a->credits_pending;
	b->credits_posted = a->credits_posted;
}

struct ht_event *ledger_event_push(struct ht_ledger *l)
{
	HT_ASSERT(l->event_count < l->event_cap);
	return &l->events[l->event_count++];
}

bool ledger_account_flags_valid(uint16_t flags)
{
	const uint16_t both = HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS |
			      HT_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS;
	return !(flags & ~HT_ACCOUNT_FLAGS_ALL) && (flags & both) != both;
}

static uint32_t ledger_slot_of(struct ht_ledger *l, uint32_t ledger)
{
	struct ht_idmap_slot *s =
		ht_idmap_probe(&l->ledger_ids, ledger, ledger_ledger_key, l);
	if (s->val)
		return s->val - 1;
	HT_ASSERT(l->ledger_count < l->ledger_cap);
	uint32_t slot = (uint32_t)l->ledger_count++;
	memset(&l->ledgers[slot], 0, sizeof l->ledgers[slot]);
	l->ledgers[slot].ledger = ledger;
	ht_idmap_fill(&l->ledger_ids, s, ledger, slot + 1);
	return slot;
}

uint32_t ledger_account_insert(struct ht_ledger *l, const struct ht_account *a,
			       uint64_t ts)
{
	HT_ASSERT(l->account_count < l->account_cap);
	HT_ASSERT(a->user_data_len <= HT_USER_DATA_BYTES_MAX);
	uint32_t idx = (uint32_t)l->account_count++;
	struct ht_account *s = &l->accounts[idx];
	memset(s, 0, sizeof *s);
	s->id = a->id;
	s->timestamp = ts;
	s->ledger = a->ledger;
	s->code = a->code;
	s->flags = a->flags;
	s->user_data_len = a->user_data_len;
	memcpy(s->user_data, a->user_data, a->user_data_len);
	struct acct_meta *m = &l->meta[idx];
	memset(m, 0, sizeof *m);
	m->ledger_slot = ledger_slot_of(l, a->ledger);
	m->flags_created = a->flags;
	ht_idmap_insert_new(&l->account_ids, a->id, idx + 1);
	return idx;
}

/* ---- linked chains --------------------------------------------------- */

struct chain {
	bool open;
	bool broken;
	size_t start;
};

static void chain_begin(struct ht_ledger *l)
{
	HT_ASSERT(!l->in_chain);
	l->chain = (struct chain_mark){
		.accounts = l->account_count,
		.transfers = l->transfer_count,
		.pendings = l->pending_count,
		.events = l->event_count,
		.dirty = l->dirty_count,
		.history = l->history_count,
		.last_ts = l->last_ts,
		.last_event_ts = l->last_event_ts,
	};
	l->undo_acct_count = 0;
	l->undo_pending_count = 0;
	l->in_chain = true;
}

static void chain_commit(struct ht_ledger *l)
{
	HT_ASSERT(l->in_chain);
	l->in_chain = false;
	l->undo_acct_count = 0;
	l->undo_pending_count = 0;
}

/* Restore balances and flags in reverse order, keeping the running
 * ledger sums in step (modular u128 arithmetic is exact here). */
static void undo_accounts(struct ht_ledger *l)
{
	for (size_t k = l->undo_acct_count; k-- > 0;) {
		const struct acct_undo *u = &l->undo_acct[k];
		struct ht_account *a = &l->accounts[u->index];
		struct ledger_sums *s =
			&l->ledgers[l->meta[u->index].ledger_slot];
		s->debits_pending += (ht_u128)u->debits_pending - a->debits_pending;
		s->debits_posted += (ht_u128)u->debits_posted - a->debits_posted;
		s->credits_pending +=
			(ht_u128)u->credits_pending - a->credits_pending;
		s->credits_posted += (ht_u128)u->credits_posted - a->credits_posted;
		a->debits_pending = u->debits_pending;
		a->debits_posted = u->debits_posted;
		a->credits_pending = u->credits_pending;
		a->credits_posted = u->credits_posted;
		a->flags = u->flags;
	}
	l->undo_acct_count = 0;
}

static void chain_undo(struct ht_ledger *l)
{
	HT_ASSERT(l->in_chain);
	const struct chain_mark *c = &l->chain;
	for (size_t k = l->undo_pending_count; k-- > 0;)
		l->pendings[l->undo_pending[k].slot].state =
			l->undo_pending[k].state;
	l->undo_pending_count = 0;
	undo_accounts(l);
	while (l->transfer_count > c->transfers)
		ht_idmap_remove(&l->transfer_ids,
				l->transfers[--l->transfer_count].id,
				ledger_xfer_key, l);
	l->pending_count = c->pendings;
	for (size_t k = c->dirty; k < l->dirty_count; k++)
		l->meta[l->dirty_idx[k]].dirty_epoch = 0;
	l->dirty_count = c->dirty;
	if (l->dirty_ptr_count > c->dirty)
		l->dirty_ptr_count = c->dirty;
	while (l->account_count > c->accounts)
		ht_idmap_remove(&l->account_ids,
				l->accounts[--l->account_count].id,
				ledger_account_key, l);
	l->event_count = c->events;
	l->history_count = c->history;
	l->last_ts = c->last_ts;
	l->last_event_ts = c->last_event_ts;
	l->in_chain = false;
}

/* Open a chain at event i when it is linked and none is open. */
static void chain_step_begin(struct ht_ledger *l, struct chain *c,
			     bool linked, size_t i)
{
	if (!linked || c->open)
		return;
	c->open = true;
	c->broken = false;
	c->start = i;
	chain_begin(l);
}

/* Record event i's result; on the first failure in a chain, undo the
 * chain and mark its earlier members; close the chain at its end. */
static void chain_step_end(struct ht_ledger *l, struct chain *c,
			   uint16_t *results, size_t i, uint16_t r,
			   bool linked)
{
	results[i] = r;
	if (r != HT_R_OK && c->open && !c->broken) {
		chain_undo(l);
		for (size_t j = c->start; j < i; j++)
			results[j] = HT_R_LINKED_EVENT_FAILED;
		c->broken = true;
	}
	if (c->open && (!linked || r == HT_R_LINKED_EVENT_CHAIN_OPEN)) {
		if (!c->broken)
			chain_commit(l);
		c->open = false;
		c->broken = false;
	}
}

/* The result of the i-th event before it is evaluated, or HT_R__MAX when
 * it must be evaluated. */
static uint16_t chain_preempt(const struct chain *c, bool linked, size_t i,
			      size_t n)
{
	if (linked && i == n - 1)
		return HT_R_LINKED_EVENT_CHAIN_OPEN;
	if (c->broken)
		return HT_R_LINKED_EVENT_FAILED;
	return HT_R__MAX;
}

/* ---- accounts -------------------------------------------------------- */

static uint16_t account_exists(const struct ht_ledger *l,
			       const struct ht_account *a, uint32_t idx)
{
	const struct ht_account *e = &l->accounts[idx];
	uint16_t created = l->meta[idx].flags_created;
	if ((a->flags ^ created) & ~HT_ACCOUNT_LINKED)
		return HT_R_EXISTS_WITH_DIFFERENT_FLAGS;
	if (a->user_data_len != e->user_data_len ||
	    memcmp(a->user_data, e->user_data, a->user_data_len))
		return HT_R_EXISTS_WITH_DIFFERENT_USER_DATA;
	if (a->ledger != e->ledger)
		return HT_R_EXISTS_WITH_DIFFERENT_LEDGER;
	if (a->code != e->code)
		return HT_R_EXISTS_WITH_DIFFERENT_CODE;
	return HT_R_EXISTS;
}

static uint16_t account_create(struct ht_ledger *l, const struct ht_account *a)
{
	if (a->id == 0)
		return HT_R_ID_MUST_NOT_BE_ZERO;
	if (a->id == HT_U128_MAX)
		return HT_R_ID_MUST_NOT_BE_INT_MAX;
	if (!ledger_account_flags_valid(a->flags))
		return HT_R_FLAGS_ARE_MUTUALLY_EXCLUSIVE;
	if (a->ledger == 0)
		return HT_R_LEDGER_MUST_NOT_BE_ZERO;
	if (a->code == 0)
		return HT_R_CODE_MUST_NOT_BE_ZERO;
	uint32_t v = ledger_account_find(l, a->id);
	if (v)
		return account_exists(l, a, v - 1);
	uint64_t ts = ledger_next_ts(l);
	uint32_t idx = ledger_account_insert(l, a, ts);
	struct ht_event *e = ledger_event_push(l);
	memset(e, 0, sizeof *e);
	e->kind = HT_EVENT_ACCOUNT;
	e->u.account = l->accounts[idx];
	ledger_commit_ts(l, ts);
	return HT_R_OK;
}

static void accounts_apply(struct ht_ledger *l, const struct ht_account *in,
			   size_t n, uint16_t *results)
{
	struct chain c = {0};
	for (size_t i = 0; i < n; i++) {
		bool linked = in[i].flags & HT_ACCOUNT_LINKED;
		chain_step_begin(l, &c, linked, i);
		uint16_t r = chain_preempt(&c, linked, i, n);
		if (r == HT_R__MAX)
			r = account_create(l, &in[i]);
		chain_step_end(l, &c, results, i, r, linked);
	}
	HT_ASSERT(!c.open);
	HT_ASSERT(!l->in_chain);
}

/* ---- transfers ------------------------------------------------------- */

bool ledger_result_burns(uint16_t r)
{
	if (r == HT_R_OK || r == HT_R_LINKED_EVENT_FAILED ||
	    r == HT_R_LINKED_EVENT_CHAIN_OPEN)
		return false;
	if (r == HT_R_ID_MUST_NOT_BE_ZERO || r == HT_R_ID_MUST_NOT_BE_INT_MAX)
		return false;
	if (r >= HT_R_ID_ALREADY_FAILED && r <= HT_R_EXISTS)
		return false;
	return ht_result_name(r) != NULL;
}

/* Burn a failed transfer's id: emit its refusal event. A field-validation
 * failure can name an id that is already a committed transfer or already
 * burned: it is taken, so nothing is emitted. Called outside any chain
 * (after a broken chain's rollback), so the refusal is never undone and
 * takes the next timestamp after the rollback. */
static void burn(struct ht_ledger *l, ht_u128 id, uint16_t r)
{
	HT_ASSERT(!l->in_chain);
	HT_ASSERT(ledger_result_burns(r));
	struct ht_idmap_slot *slot = ledger_xfer_probe(l, id);
	if (slot->val)
		return;
	uint64_t ts = ledger_next_ts(l);
	ledger_burned_insert(l, slot, id);
	struct ht_event *e = ledger_event_push(l);
	memset(e, 0, sizeof *e);
	e->kind = HT_EVENT_REFUSAL;
	e->u.refusal.id = id;
	e->u.refusal.result = r;
	e->u.refusal.timestamp = ts;
	ledger_commit_ts(l, ts);
}

static void transfers_apply(struct ht_ledger *l, const struct ht_transfer *in,
			    size_t n, const uint16_t *refuse, uint16_t *results)
{
	struct chain c = {0};
	for (size_t i = 0; i < n; i++) {
		if (i + PREFETCH_DISTANCE < n)
			ledger_transfer_prefetch(l, &in[i + PREFETCH_DISTANCE]);
		bool linked = in[i].flags & HT_TRANSFER_LINKED;
		chain_step_begin(l, &c, linked, i);
		uint16_t r = chain_preempt(&c, linked, i, n);
		if (r == HT_R__MAX)
			r = ledger_transfer_create(l, &in[i],
						   ledger_next_ts(l),
						   refuse ? refuse[i] : 0);
		chain_step_end(l, &c, results, i, r, linked);
		if (ledger_result_burns(r))
			burn(l, in[i].id, r);
	}
	HT_ASSERT(!c.open);
	HT_ASSERT(!l->in_chain);
}

/* ---- one mutating call ------------------------------------------------ */

/* Bad arguments from a C caller (the JSON layer cannot produce them):
 * the whole call is refused before anything happens. */
static enum ht_err precheck_accounts(const struct ht_account *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (in[i].flags & ~HT_ACCOUNT_FLAGS_ALL)
			return HT_ERR_INVALID;
		if (in[i].user_data_len > HT_USER_DATA_BYTES_MAX)
			return HT_ERR_INVALID;
	}
	return HT_OK;
}

static enum ht_err precheck_transfers(const struct ht_transfer *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (in[i].flags & ~HT_TRANSFER_FLAGS_ALL)
			return HT_ERR_INVALID;
		if (in[i].user_data_len > HT_USER_DATA_BYTES_MAX)
			return HT_ERR_INVALID;
	}
	return HT_OK;
}

static enum ht_err call_begin(struct ht_ledger *l, size_t n, bool args_ok)
{
	if (!l)
		return HT_ERR_INVALID;
	if (l->poisoned)
		return HT_ERR_POISONED;
	if (n > HT_BATCH_EVENTS_MAX)
		return HT_ERR_LIMIT;
	if (!args_ok)
		return HT_ERR_INVALID;
	return HT_OK;
}

/* Start the call proper: clock, memory, expiry. */
static enum ht_err call_start(struct ht_ledger *l, size_t n, bool accounts)
{
	HT_ASSERT(!l->in_chain);
	l->now = l->clock.now_ns(l->clock.ctx);
	enum ht_err err = reserve_call(l, n, accounts);
	if (err)
		return err;
	l->call_epoch++;
	l->touched_count = 0;
	ledger_heap_expire_due(l);
	return HT_OK;
}

/* Schedule the call's new pending transfers for expiry, publish dirty
 * pointers and assert the per-ledger sums of every touched ledger. */
static void call_finish(struct ht_ledger *l, size_t pending_start)
{
	for (size_t s = pending_start; s < l->pending_count; s++) {
		const struct pending *p = &l->pendings[s];
		if (p->expires_at && p->state == HT_PENDING_OPEN)
			ledger_heap_push(l, p->expires_at, (uint32_t)s);
	}
	dirty_ptrs_sync(l);
	for (size_t k = 0; k < l->touched_count; k++) {
		const struct ledger_sums *s = &l->ledgers[l->touched[k]];
		HT_ASSERT(s->debits_pending == s->credits_pending);
		HT_ASSERT(s->debits_posted == s->credits_posted);
	}
	l->touched_count = 0;
}

enum ht_err ht_ledger_create_accounts(struct ht_ledger *l,
				      const struct ht_account *in, size_t n,
				      uint16_t *results)
{
	enum ht_err err = call_begin(l, n, n == 0 || (in && results));
	if (!err)
		err = precheck_accounts(in, n);
	if (!err)
		err = call_start(l, n, true);
	if (err)
		return err;
	size_t pending_start = l->pending_count;
	accounts_apply(l, in, n, results);
	call_finish(l, pending_start);
	return HT_OK;
}

enum ht_err ht_ledger_create_transfers(struct ht_ledger *l,
				       const struct ht_transfer *in, size_t n,
				       uint16_t *results)
{
	return ht_ledger_create_transfers_screened(l, in, n, NULL, results);
}

/* Every verdict is 0 or a code that burns. */
static bool refuse_valid(const uint16_t *refuse, size_t n)
{
	for (size_t i = 0; refuse && i < n; i++)
		if (refuse[i] && !ledger_result_burns(refuse[i]))
			return false;
	return true;
}

enum ht_err ht_ledger_create_transfers_screened(struct ht_ledger *l,
						const struct ht_transfer *in,
						size_t n,
						const uint16_t *refuse,
						uint16_t *results)
{
	enum ht_err err = call_begin(l, n, n == 0 || (in && results));
	if (!err)
		err = precheck_transfers(in, n);
	if (!err && !refuse_valid(refuse, n))
		err = HT_ERR_INVALID;
	if (!err)
		err = call_start(l, n, false);
	if (err)
		return err;
	size_t pending_start = l->pending_count;
	transfers_apply(l, in, n, refuse, results);
	call_finish(l, pending_start);
	return HT_OK;
}

enum ht_err ht_ledger_expire(struct ht_ledger *l)
{
	enum ht_err err = call_begin(l, 0, true);
	if (!err)
		err = call_start(l, 0, false);
	if (err)
		return err;
	call_finish(l, l->pending_count);
	return HT_OK;
}

/* ---- changes ---------------------------------------------------------- */

/* Empty arrays are never NULL, so callers may memcpy from them freely. */
static const struct ht_event no_events[1];
static const struct ht_account *const no_accounts[1];
static const struct ht_balance no_history[1];

void ht_ledger_changes(const struct ht_ledger *l, struct ht_ledger_changes *out)
{
	HT_ASSERT(l->dirty_ptr_count == l->dirty_count);
	out->events = l->events ? l->events : no_events;
	out->events_count = l->event_count;
	out->dirty_accounts = l->dirty_ptr ? l->dirty_ptr : no_accounts;
	out->dirty_count = l->dirty_count;
	out->history = l->history ? l->history : no_history;
	out->history_count = l->history_count;
}

void ht_ledger_changes_reset(struct ht_ledger *l)
{
	HT_ASSERT(!l->in_chain);
	l->event_count = 0;
	l->dirty_count = 0;
	l->dirty_ptr_count = 0;
	l->history_count = 0;
	/* A new epoch empties the dirty set without touching every account;
	 * on the (theoretical) wrap, clear the marks for real. */
	if (++l->dirty_epoch == 0) {
		for (size_t i = 0; i < l->account_count; i++)
			l->meta[i].dirty_epoch = 0;
		l->dirty_epoch = 1;
	}
}

void ht_ledger_poison(struct ht_ledger *l)
{
	l->poisoned = true;
}

/* ---- lookups ---------------------------------------------------------- */

bool ht_ledger_transfer_id_used(const struct ht_ledger *l, ht_u128 id)
{
	return ledger_xfer_probe(l, id)->val != 0;
}

const struct ht_account *ht_ledger_account_get(const struct ht_ledger *l,
					       ht_u128 id)
{
	uint32_t v = ledger_account_find(l, id);
	return v ? &l->accounts[v - 1] : NULL;
}

const struct ht_transfer *ht_ledger_transfer_get(const struct ht_ledger *l,
						 ht_u128 id)
{
	uint32_t v = ledger_xfer_find(l, id);
	return v ? &l->transfers[v - 1] : NULL;
}

enum ht_pending_state ht_ledger_pending_state(const struct ht_ledger *l,
					      ht_u128 id)
{
	uint32_t v = ledger_xfer_find(l, id);
	if (v == 0)
		return HT_PENDING_NONE;
	uint32_t slot = l->xfer_pending[v - 1];
	if (slot == NOT_PENDING)
		return HT_PENDING_NONE;
	return (enum ht_pending_state)l->pendings[slot].state;
}

void ht_ledger_pending_each(const struct ht_ledger *l,
			    int (*fn)(void *ctx, const struct ht_transfer *t),
			    void *ctx)
{
	for (size_t s = 0; s < l->pending_count; s++) {
		const struct pending *p = &l->pendings[s];
		if (p->state == HT_PENDING_OPEN &&
		    fn(ctx, &l->transfers[p->xfer]))
			return;
	}
}

void ht_ledger_transfers_after(const struct ht_ledger *l, uint64_t after_ts,
			       int (*fn)(void *ctx, const struct ht_transfer *t),
			       void *ctx)
{
	size_t lo = 0, hi = l->transfer_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l->transfers[mid].timestamp <= after_ts)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < l->transfer_count; i++)
		if (fn(ctx, &l->transfers[i]))
			return;
}

size_t ht_ledger_account_count(const struct ht_ledger *l)
{
	return l->account_count;
}

size_t ht_ledger_transfer_count(const struct ht_ledger *l)
{
	return l->transfer_count;
}

uint64_t ht_ledger_last_timestamp(const struct ht_ledger *l)
{
	return l->last_ts;
}

void ht_ledger_accounts_each(const struct ht_ledger *l,
			     int (*fn)(void *ctx, const struct ht_account *a),
			     void *ctx)
{
	for (size_t i = 0; i < l->account_count; i++)
		if (fn(ctx, &l->accounts[i]))
			return;
}

void ledger_dirty_ptrs_sync(struct ht_ledger *l)
{
	dirty_ptrs_sync(l);
}

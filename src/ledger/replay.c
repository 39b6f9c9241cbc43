/*
 * replay.c — rebuilding the engine from committed events (refusal events
 * burn their ids again), and the full from-scratch invariant check.
 *
 * Owner: ledger. Replay runs the same checks and effects as live
 * application (transfer.c) with recording switched off, so the rebuilt
 * state is the live state by construction; any event that live
 * application could not have produced is HT_ERR_CORRUPT. Replay must be
 * fast (every open replays everything): no per-event allocation beyond
 * geometric growth. Nothing here records changes.
 */
#include "ledger_internal.h"

#include <stdlib.h>
#include <string.h>

static enum ht_err replay_account(struct ht_ledger *l,
				  const struct ht_account *a)
{
	if (a->id == 0 || a->id == HT_U128_MAX)
		return HT_ERR_CORRUPT;
	if (!ledger_account_flags_valid(a->flags))
		return HT_ERR_CORRUPT;
	if (a->ledger == 0 || a->code == 0)
		return HT_ERR_CORRUPT;
	if (a->user_data_len > HT_USER_DATA_BYTES_MAX)
		return HT_ERR_CORRUPT;
	if (a->debits_pending || a->debits_posted || a->credits_pending ||
	    a->credits_posted)
		return HT_ERR_CORRUPT;
	enum ht_err err = ledger_accounts_reserve(l, 1);
	if (err)
		return err;
	if (ledger_account_find(l, a->id))
		return HT_ERR_CORRUPT;
	ledger_account_insert(l, a, a->timestamp);
	l->replaying = true;
	ledger_commit_ts(l, a->timestamp);
	l->replaying = false;
	return HT_OK;
}

static enum ht_err replay_transfer(struct ht_ledger *l,
				   const struct ht_transfer *t)
{
	if (t->flags & ~HT_TRANSFER_FLAGS_ALL)
		return HT_ERR_CORRUPT;
	if (t->user_data_len > HT_USER_DATA_BYTES_MAX)
		return HT_ERR_CORRUPT;
	/* A stored post/void names everything it took from the pending
	 * transfer: 0 ("inherit") cannot have been stored. */
	if ((t->flags & (HT_TRANSFER_POST_PENDING | HT_TRANSFER_VOID_PENDING)) &&
	    (!t->debit_account_id || !t->credit_account_id || !t->ledger ||
	     !t->code || !t->amount))
		return HT_ERR_CORRUPT;
	enum ht_err err = ledger_transfers_reserve(l, 1);
	if (err)
		return err;
	l->replaying = true;
	uint16_t r = ledger_transfer_create(l, t, t->timestamp, 0);
	l->replaying = false;
	l->heap_stale = true;
	return r == HT_R_OK ? HT_OK : HT_ERR_CORRUPT;
}

static enum ht_err replay_expiry(struct ht_ledger *l, ht_u128 pending_id,
				 uint64_t ts)
{
	uint32_t v = ledger_xfer_find(l, pending_id);
	if (v == 0)
		return HT_ERR_CORRUPT;
	uint32_t slot = l->xfer_pending[v - 1];
	if (slot == NOT_PENDING)
		return HT_ERR_CORRUPT;
	const struct pending *ps = &l->pendings[slot];
	if (ps->state != HT_PENDING_OPEN || ps->expires_at == 0 ||
	    ps->expires_at > ts)
		return HT_ERR_CORRUPT;
	l->replaying = true;
	ledger_pending_expire(l, slot, ts);
	l->replaying = false;
	l->heap_stale = true;
	return HT_OK;
}

/* A refusal burns its id again, checked as live application burns: a
 * result that burns, an id that is valid and not taken. */
static enum ht_err replay_refusal(struct ht_ledger *l, ht_u128 id,
				  uint16_t result, uint64_t ts)
{
	if (id == 0 || id == HT_U128_MAX)
		return HT_ERR_CORRUPT;
	if (!ledger_result_burns(result))
		return HT_ERR_CORRUPT;
	enum ht_err err = ledger_xfer_ids_reserve(l, 1);
	if (err)
		return err;
	struct ht_idmap_slot *s = ledger_xfer_probe(l, id);
	if (s->val)
		return HT_ERR_CORRUPT;
	ledger_burned_insert(l, s, id);
	l->replaying = true;
	ledger_commit_ts(l, ts);
	l->replaying = false;
	return HT_OK;
}

enum ht_err ht_ledger_replay(struct ht_ledger *l, const struct ht_event *e)
{
	if (!l || !e)
		return HT_ERR_INVALID;
	if (l->poisoned)
		return HT_ERR_POISONED;
	HT_ASSERT(!l->in_chain);
	uint64_t ts = ht_event_timestamp(e);
	if (ts == 0 || ts <= l->last_event_ts)
		return HT_ERR_CORRUPT;
	enum ht_err err;
	switch (e->kind) {
	case HT_EVENT_ACCOUNT:
		err = replay_account(l, &e->u.account);
		break;
	case HT_EVENT_TRANSFER:
		err = replay_transfer(l, &e->u.transfer);
		break;
	case HT_EVENT_EXPIRY:
		err = replay_expiry(l, e->u.expiry.pending_id, ts);
		break;
	case HT_EVENT_REFUSAL:
		err = replay_refusal(l, e->u.refusal.id, e->u.refusal.result,
				     ts);
		break;
	default:
		err = HT_ERR_CORRUPT;
	}
	ledger_dirty_ptrs_sync(l);
	return err;
}

/* Prefetch what replaying e will touch. Always inlined: GCC deletes calls
 * to a function made only of prefetches. */
static inline __attribute__((always_inline)) void
replay_prefetch(const struct ht_ledger *l, const struct ht_event *e)
{
	if (e->kind == HT_EVENT_TRANSFER)
		ledger_transfer_prefetch(l, &e->u.transfer);
	else if (e->kind == HT_EVENT_EXPIRY)
		ht_idmap_prefetch(&l->transfer_ids, e->u.expiry.pending_id);
	else if (e->kind == HT_EVENT_REFUSAL)
		ht_idmap_prefetch(&l->transfer_ids, e->u.refusal.id);
}

enum ht_err ht_ledger_replay_batch(struct ht_ledger *l,
				   const struct ht_event *e, size_t n,
				   size_t *done)
{
	if (!l || !done || (n && !e))
		return HT_ERR_INVALID;
	*done = 0;
	for (size_t i = 0; i < n; i++) {
		/* The events themselves first, further ahead: they may come
		 * from a large buffer that is not in cache. */
		if (i + 2 * PREFETCH_DISTANCE < n) {
			const char *next = (const char *)&e[i + 2 * PREFETCH_DISTANCE];
			__builtin_prefetch(next);
			__builtin_prefetch(next + 64);
			__builtin_prefetch(next + sizeof *e - 1);
		}
		if (i + PREFETCH_DISTANCE < n)
			replay_prefetch(l, &e[i + PREFETCH_DISTANCE]);
		enum ht_err err = ht_ledger_replay(l, &e[i]);
		if (err)
			return err;
		*done = i + 1;
	}
	return HT_OK;
}

/* ---- full check -------------------------------------------------------- */

struct sums4 {
	ht_u128 dp, dpo, cp, cpo, open_pending;
};

static bool account_within_limits(const struct ht_account *a)
{
	if ((a->flags & HT_ACCOUNT_DEBITS_MUST_NOT_EXCEED_CREDITS) &&
	    (ht_u128)a->debits_pending + a->debits_posted > a->credits_posted)
		return false;
	if ((a->flags & HT_ACCOUNT_CREDITS_MUST_NOT_EXCEED_DEBITS) &&
	    (ht_u128)a->credits_pending + a->credits_posted > a->debits_posted)
		return false;
	return true;
}

/* Sum every account into its ledger; false on an inconsistency. */
static bool sum_accounts(const struct ht_ledger *l, struct sums4 *sums)
{
	for (size_t i = 0; i < l->account_count; i++) {
		const struct ht_account *a = &l->accounts[i];
		uint32_t slot = l->meta[i].ledger_slot;
		if (slot >= l->ledger_count || l->ledgers[slot].ledger != a->ledger)
			return false;
		if (ledger_account_find(l, a->id) != i + 1)
			return false;
		if (!account_within_limits(a))
			return false;
		sums[slot].dp += a->debits_pending;
		sums[slot].dpo += a->debits_posted;
		sums[slot].cp += a->credits_pending;
		sums[slot].cpo += a->credits_posted;
	}
	return true;
}

/* Open pending transfers must add up to the pending balances. */
static bool sum_open_pending(const struct ht_ledger *l, struct sums4 *sums)
{
	for (size_t s = 0; s < l->pending_count; s++) {
		const struct pending *p = &l->pendings[s];
		if (p->xfer >= l->transfer_count || l->xfer_pending[p->xfer] != s)
			return false;
		if (p->state == HT_PENDING_NONE || p->state > HT_PENDING_EXPIRED)
			return false;
		if (p->state != HT_PENDING_OPEN)
			continue;
		const struct ht_transfer *t = &l->transfers[p->xfer];
		uint32_t v = ledger_account_find(l, t->debit_account_id);
		if (v == 0)
			return false;
		sums[l->meta[v - 1].ledger_slot].open_pending += t->amount;
	}
	return true;
}

static bool sums_agree(const struct ledger_sums *run, const struct sums4 *s)
{
	return run->debits_pending == s->dp && run->debits_posted == s->dpo &&
	       run->credits_pending == s->cp && run->credits_posted == s->cpo &&
	       s->dp == s->cp && s->dpo == s->cpo && s->open_pending == s->dp;
}

enum ht_err ht_ledger_check(const struct ht_ledger *l)
{
	if (l->account_ids.count != l->account_count ||
	    l->transfer_ids.count != l->transfer_count + l->burned_count ||
	    l->ledger_ids.count != l->ledger_count)
		return HT_ERR_CORRUPT;
	struct sums4 *sums = calloc(l->ledger_count + 1, sizeof *sums);
	if (!sums)
		return HT_ERR_NOMEM;
	bool ok = sum_accounts(l, sums) && sum_open_pending(l, sums);
	for (size_t k = 0; ok && k < l->ledger_count; k++)
		ok = sums_agree(&l->ledgers[k], &sums[k]);
	free(sums);
	return ok ? HT_OK : HT_ERR_CORRUPT;
}

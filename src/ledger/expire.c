/*
 * expire.c — expiry of pending transfers: a binary min-heap of (expires_at,
 * pending slot) and the expiry event itself.
 *
 * Owner: ledger. The heap is an index, not state: an item whose pending
 * transfer was posted or voided meanwhile is skipped when it surfaces
 * (lazy deletion), and after a replay the heap is rebuilt from the pending
 * table. Items are pushed only when a create call ends, so a linked chain
 * that is undone never leaves an item behind. Nothing here allocates.
 */
#include "ledger_internal.h"

#include <string.h>

static bool item_less(const struct heap_item *a, const struct heap_item *b)
{
	if (a->expires_at != b->expires_at)
		return a->expires_at < b->expires_at;
	return a->slot < b->slot;
}

static void sift_up(struct heap_item *h, size_t i)
{
	struct heap_item x = h[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!item_less(&x, &h[parent]))
			break;
		h[i] = h[parent];
		i = parent;
	}
	h[i] = x;
}

static void sift_down(struct heap_item *h, size_t n, size_t i)
{
	struct heap_item x = h[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && item_less(&h[c + 1], &h[c]))
			c++;
		if (!item_less(&h[c], &x))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = x;
}

void ledger_heap_push(struct ht_ledger *l, uint64_t expires_at, uint32_t slot)
{
	HT_ASSERT(l->heap_count < l->heap_cap);
	HT_ASSERT(expires_at != 0);
	l->heap[l->heap_count] = (struct heap_item){expires_at, slot};
	sift_up(l->heap, l->heap_count++);
}

static struct heap_item heap_pop(struct ht_ledger *l)
{
	HT_ASSERT(l->heap_count > 0);
	struct heap_item top = l->heap[0];
	l->heap[0] = l->heap[--l->heap_count];
	if (l->heap_count)
		sift_down(l->heap, l->heap_count, 0);
	return top;
}

/* Items with expires_at <= now form a subtree at the root. Recursion
 * depth is the heap's height (< 33). */
static size_t due_from(const struct ht_ledger *l, size_t i, uint64_t now)
{
	if (i >= l->heap_count || l->heap[i].expires_at > now)
		return 0;
	return 1 + due_from(l, 2 * i + 1, now) + due_from(l, 2 * i + 2, now);
}

size_t ledger_heap_due(const struct ht_ledger *l, uint64_t now)
{
	HT_ASSERT(!l->heap_stale);
	return due_from(l, 0, now);
}

void ledger_heap_rebuild(struct ht_ledger *l)
{
	HT_ASSERT(l->heap_cap >= l->pending_count);
	size_t n = 0;
	for (size_t s = 0; s < l->pending_count; s++) {
		const struct pending *p = &l->pendings[s];
		if (p->state == HT_PENDING_OPEN && p->expires_at)
			l->heap[n++] = (struct heap_item){p->expires_at,
							  (uint32_t)s};
	}
	l->heap_count = n;
	for (size_t i = n / 2; i-- > 0;)
		sift_down(l->heap, n, i);
	l->heap_stale = false;
}

void ledger_pending_expire(struct ht_ledger *l, uint32_t slot, uint64_t ts)
{
	struct pending *ps = &l->pendings[slot];
	HT_ASSERT(ps->state == HT_PENDING_OPEN);
	HT_ASSERT(ps->expires_at != 0 && ps->expires_at <= ts);
	const struct ht_transfer *p = &l->transfers[ps->xfer];
	uint32_t dv = ledger_account_find(l, p->debit_account_id);
	uint32_t cv = ledger_account_find(l, p->credit_account_id);
	HT_ASSERT(dv != 0 && cv != 0);
	struct ht_account *dr = &l->accounts[dv - 1];
	struct ht_account *cr = &l->accounts[cv - 1];
	struct ledger_sums *s = &l->ledgers[l->meta[dv - 1].ledger_slot];
	HT_ASSERT(dr->debits_pending >= p->amount);
	HT_ASSERT(cr->credits_pending >= p->amount);
	dr->debits_pending -= p->amount;
	cr->credits_pending -= p->amount;
	s->debits_pending -= p->amount;
	s->credits_pending -= p->amount;
	if (p->flags & HT_TRANSFER_CLOSING_DEBIT)
		dr->flags &= (uint16_t)~HT_ACCOUNT_CLOSED;
	if (p->flags & HT_TRANSFER_CLOSING_CREDIT)
		cr->flags &= (uint16_t)~HT_ACCOUNT_CLOSED;
	ps->state = HT_PENDING_EXPIRED;
	ledger_acct_changed(l, dv - 1, ts);
	ledger_acct_changed(l, cv - 1, ts);
	if (!l->replaying) {
		struct ht_event *e = ledger_event_push(l);
		memset(e, 0, sizeof *e);
		e->kind = HT_EVENT_EXPIRY;
		e->u.expiry.pending_id = p->id;
		e->u.expiry.timestamp = ts;
	}
	ledger_commit_ts(l, ts);
}

void ledger_heap_expire_due(struct ht_ledger *l)
{
	HT_ASSERT(!l->in_chain);
	HT_ASSERT(!l->heap_stale);
	while (l->heap_count && l->heap[0].expires_at <= l->now) {
		struct heap_item it = heap_pop(l);
		const struct pending *ps = &l->pendings[it.slot];
		if (ps->state != HT_PENDING_OPEN)
			continue;
		HT_ASSERT(ps->expires_at == it.expires_at);
		ledger_pending_expire(l, it.slot, ledger_next_ts(l));
	}
}

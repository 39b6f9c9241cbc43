/*
 * verify.c — `journal verify`: recheck a whole store from its leaves up.
 *
 * Owner: journal. Reads the store read-only (no lease: it can run beside a
 * live writer) and streams heads and events in lockstep, so memory stays
 * O(accounts + transfers) for the replay, never O(nodes). It trusts
 * nothing stored except the hub's public key: every leaf is rehashed,
 * every stored node compared, every head's root recomputed, its signature
 * and its link to the previous head checked, every event — refusals
 * included — replayed into a fresh engine (which checks it could have
 * happened), the replayed balances compared with the stored ones, and
 * every account owner row checked to name a stored account, every risk
 * decision checked to sit on its transfer's leaf. The first problem found
 * is named.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "huitong/journal.h"
#include "huitong/store.h"

struct verifier {
	struct ht_store *store;
	struct ht_store_config cfg;
	struct ht_key *key;
	struct ht_hasher *hasher;
	struct ht_ledger *ledger;
	struct ht_merkle_frontier f;
	/* the head being checked and its node run */
	const struct ht_sth *head;
	uint64_t node_first;
	const uint8_t *nodes;
	size_t node_count, node_pos;
	const uint8_t *fps;             /* one fingerprint per leaf of the head */
	uint64_t first_leaf;            /* first leaf of the head's commit */
	/* the previous head */
	bool have_prev;
	struct ht_sth prev;
	uint64_t next_seq, next_leaf, last_ts;
	char *problem;
	size_t problem_size;
	void (*progress)(void *, uint64_t, uint64_t);
	void *progress_ctx;
	uint64_t total;
	uint64_t accounts_seen;
	enum ht_err err;
};

static int fail(struct verifier *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct verifier *v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->problem, v->problem_size, fmt, ap);
	va_end(ap);
	if (!v->err)
		v->err = HT_ERR_CORRUPT;
	return 1;
}

#define LLU(x) ((unsigned long long)(x))

/* Compare what a leaf completed with the head's stored run: the leaf's
 * fingerprint (names the exact event), then the stored levels. */
static int check_nodes(struct verifier *v, uint64_t leaf,
		       uint8_t nodes[][HT_HASH_BYTES], unsigned n)
{
	const uint8_t *fp = v->fps + (leaf - v->first_leaf) * HT_JOURNAL_FP_BYTES;
	if (memcmp(fp, nodes[0], HT_JOURNAL_FP_BYTES))
		return fail(v, "event %llu: leaf hash differs from the journal"
			       " (event changed or reordered)", LLU(leaf));
	for (unsigned k = HT_JOURNAL_NODE_LEVEL_MIN; k < n; k++, v->node_pos++) {
		if (v->node_pos >= v->node_count)
			return fail(v, "head %llu: stored Merkle nodes missing",
				    LLU(v->head->seq));
		if (!memcmp(v->nodes + v->node_pos * HT_HASH_BYTES, nodes[k],
			    HT_HASH_BYTES))
			continue;
		return fail(v, "node %llu (level %u, events %llu..%llu) differs"
			       " from the journal",
			    LLU(v->node_first + v->node_pos), k,
			    LLU(leaf + 1 - ((uint64_t)1 << k)), LLU(leaf));
	}
	return 0;
}

static int check_event(void *p, uint64_t leaf, const uint8_t *data, size_t len)
{
	struct verifier *v = p;
	struct ht_event e;
	uint8_t hash[HT_HASH_BYTES], nodes[65][HT_HASH_BYTES];
	unsigned n;
	if (leaf >= v->head->tree_size)
		return 1; /* belongs to the next head */
	if (leaf != v->next_leaf)
		return fail(v, "event %llu: missing (deleted row)",
			    LLU(v->next_leaf));
	if (ht_event_decode(data, len, &e))
		return fail(v, "event %llu: malformed", LLU(leaf));
	uint64_t ts = ht_event_timestamp(&e);
	if (leaf > 0 && ts <= v->last_ts)
		return fail(v, "event %llu: timestamp not after the previous"
			       " event's (reordered or changed)", LLU(leaf));
	v->last_ts = ts;
	if ((v->err = ht_merkle_leaf_hash(v->hasher, data, len, hash)) ||
	    (v->err = ht_merkle_frontier_append(&v->f, v->hasher, hash, nodes,
						&n)))
		return fail(v, "event %llu: hashing failed", LLU(leaf));
	if (check_nodes(v, leaf, nodes, n))
		return 1;
	if (ht_ledger_replay(v->ledger, &e))
		return fail(v, "event %llu: cannot apply to the ledger"
			       " (inconsistent with earlier events)", LLU(leaf));
	v->next_leaf++;
	if (v->progress && v->next_leaf % 1000000 == 0)
		v->progress(v->progress_ctx, v->next_leaf, v->total);
	return 0;
}

static int check_head_fields(struct verifier *v, const struct ht_sth *h,
			     uint64_t node_first, size_t node_count,
			     size_t fp_count)
{
	if (h->seq != v->next_seq)
		return fail(v, "head %llu: missing (found head %llu next)",
			    LLU(v->next_seq), LLU(h->seq));
	if (ht_sth_verify(v->key, h) != HT_OK)
		return fail(v, "head %llu: bad signature", LLU(h->seq));
	uint8_t link[HT_HASH_BYTES] = {0};
	if (v->have_prev && ht_sth_hash(v->hasher, &v->prev, link))
		return fail(v, "head %llu: hashing failed", LLU(h->seq));
	if (memcmp(link, h->prev_hash, HT_HASH_BYTES))
		return fail(v, "head %llu: does not link to head %llu (fork or"
			       " rewritten history)",
			    LLU(h->seq), LLU(h->seq ? h->seq - 1 : 0));
	uint64_t prev_size = v->have_prev ? v->prev.tree_size : 0;
	if (v->have_prev && (h->tree_size <= prev_size ||
			     h->time_ns < v->prev.time_ns))
		return fail(v, "head %llu: tree size or time went backwards",
			    LLU(h->seq));
	if (node_first != ht_journal_node_count(prev_size) ||
	    node_count != ht_journal_node_count(h->tree_size) - node_first)
		return fail(v, "head %llu: stored Merkle node run has the wrong"
			       " range or size", LLU(h->seq));
	if (fp_count != h->tree_size - prev_size)
		return fail(v, "head %llu: stored leaf fingerprints have the"
			       " wrong count", LLU(h->seq));
	return 0;
}

static int check_head(void *p, const struct ht_sth *stored,
		      uint64_t node_first, const uint8_t *nodes,
		      size_t node_count, const uint8_t *fps, size_t fp_count)
{
	struct verifier *v = p;
	struct ht_sth h = *stored;
	if (check_head_fields(v, &h, node_first, node_count, fp_count))
		return 1;
	v->fps = fps;
	v->first_leaf = v->next_leaf;
	v->head = &h;
	v->node_first = node_first;
	v->nodes = nodes;
	v->node_count = node_count;
	v->node_pos = 0;
	if (h.tree_size > v->next_leaf) {
		enum ht_err err = ht_store_events_each(v->store, v->next_leaf,
						       check_event, v);
		if (err && !v->err)
			return fail(v, "reading events: %s", ht_strerror(err));
		if (v->err)
			return 1;
		if (v->next_leaf < h.tree_size)
			return fail(v, "event %llu: missing (deleted row)",
				    LLU(v->next_leaf));
	}
	uint8_t root[HT_HASH_BYTES];
	if (ht_merkle_frontier_root(&v->f, v->hasher, root))
		return fail(v, "head %llu: hashing failed", LLU(h.seq));
	if (memcmp(root, h.root, HT_HASH_BYTES))
		return fail(v, "head %llu: root differs from its leaves",
			    LLU(h.seq));
	v->prev = h;
	v->have_prev = true;
	v->next_seq++;
	return 0;
}

static int compare_account(void *p, uint64_t slot, const struct ht_account *s)
{
	struct verifier *v = p;
	const struct ht_account *m = ht_ledger_account_get(v->ledger, s->id);
	char id[HT_U128_DEC_SIZE];
	v->accounts_seen++;
	if (!m)
		return fail(v, "account %s (slot %llu): no event created it",
			    ht_u128_format(s->id, id), LLU(slot));
	if (!ht_ledger_account_matches(v->ledger, slot, s))
		return fail(v, "account %s: stored balances differ from the"
			       " journal's events", ht_u128_format(s->id, id));
	return 0;
}

/* Owners are not journal leaves (docs/internals/store.md): all that can be
 * checked is that each names a stored account and is a participant id. */
static int check_owner(void *p, uint64_t slot, const char *owner, size_t len)
{
	struct verifier *v = p;
	if (slot >= v->accounts_seen)
		return fail(v, "owner of account slot %llu: no such account",
			    LLU(slot));
	if (!ht_owner_valid(owner, len))
		return fail(v, "owner of account slot %llu: not a participant"
			       " id", LLU(slot));
	return 0;
}

/* Risk decisions (serve --risk) are not journal leaves either: each must
 * sit on a leaf the heads cover, and that leaf must be the transfer or the
 * refusal of the decision's transfer id. */
static int check_risk(void *p, const struct ht_risk_row *r)
{
	struct verifier *v = p;
	uint8_t data[HT_LEAF_BYTES_MAX];
	size_t len = 0;
	struct ht_event e;
	char id[HT_U128_DEC_SIZE];
	ht_u128_format(r->id, id);
	if (r->leaf >= v->next_leaf)
		return fail(v, "risk decision of %s: leaf %llu is not in the"
			       " journal", id, LLU(r->leaf));
	if (ht_store_event_get(v->store, r->leaf, data, &len) ||
	    ht_event_decode(data, len, &e) ||
	    !((e.kind == HT_EVENT_TRANSFER && e.u.transfer.id == r->id) ||
	      (e.kind == HT_EVENT_REFUSAL && e.u.refusal.id == r->id)))
		return fail(v, "risk decision of %s: leaf %llu is not that"
			       " transfer", id, LLU(r->leaf));
	if (!(r->score >= 0 && r->score <= 1))
		return fail(v, "risk decision of %s: score out of 0..1", id);
	return 0;
}

static enum ht_err verifier_open(struct verifier *v, const char *data)
{
	enum ht_err err = ht_store_open(data, true, &v->store);
	if (!err)
		err = ht_store_get_config(v->store, &v->cfg);
	if (!err)
		err = ht_key_from_pem(v->cfg.public_key_pem,
				      strlen(v->cfg.public_key_pem),
				      v->cfg.sm2_id, &v->key);
	if (!err)
		err = ht_hasher_create(v->cfg.hash, &v->hasher);
	if (!err)
		err = ht_ledger_create(&ht_clock_wall, &v->ledger);
	/* One snapshot for everything: a writer may be committing. */
	if (!err)
		err = ht_store_snapshot_begin(v->store);
	if (!err)
		err = ht_store_event_count(v->store, &v->total);
	ht_merkle_frontier_init(&v->f, 0);
	return err;
}

static void verifier_close(struct verifier *v)
{
	ht_ledger_destroy(v->ledger);
	ht_hasher_destroy(v->hasher);
	ht_key_destroy(v->key);
	if (v->store)
		ht_store_snapshot_end(v->store);
	ht_store_close(v->store);
}

static enum ht_err verify_all(struct verifier *v)
{
	enum ht_err err = ht_store_heads_each(v->store, check_head, v);
	if (v->err || err)
		return v->err ? v->err : err;
	if (!v->have_prev)
		return fail(v, "head 0: missing"), v->err;
	if (v->total > v->next_leaf)
		return fail(v, "event %llu: not covered by any signed head",
			    LLU(v->next_leaf)), v->err;
	err = ht_store_accounts_each(v->store, compare_account, v);
	if (!v->err && !err &&
	    v->accounts_seen != ht_ledger_account_count(v->ledger))
		return fail(v, "account rows: %llu stored, %llu in the journal",
			    LLU(v->accounts_seen),
			    LLU(ht_ledger_account_count(v->ledger))), v->err;
	if (!v->err && !err)
		err = ht_store_owners_each(v->store, check_owner, v);
	if (!v->err && !err)
		err = ht_store_risk_each(v->store, -1, check_risk, v);
	if (!v->err && !err && ht_ledger_check(v->ledger))
		return fail(v, "ledger invariants do not hold after replay"),
		       v->err;
	return v->err ? v->err : err;
}

enum ht_err ht_hub_verify(const char *data, char *problem, size_t problem_size,
			  void (*progress)(void *ctx, uint64_t done,
					   uint64_t total),
			  void *ctx)
{
	struct verifier v = {.problem = problem,
			     .problem_size = problem_size,
			     .progress = progress,
			     .progress_ctx = ctx};
	if (problem_size)
		problem[0] = '\0';
	enum ht_err err = verifier_open(&v, data);
	if (!err)
		err = verify_all(&v);
	else
		snprintf(problem, problem_size, "cannot open store: %s",
			 ht_strerror(err));
	verifier_close(&v);
	return err;
}

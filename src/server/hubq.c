/*
 * hubq.c — the hub thread: the only thread that touches the hub. It takes
 * every job waiting (up to a commit's worth), answers the reads against
 * committed state, applies the creates of all connections one after the
 * other, makes them durable in ONE store transaction (ht_hub_commit:
 * one fsync, one signed head), computes each request's receipt from
 * memory and hands the jobs back to their workers.
 *
 * Owner: server. Bounded: the queue holds at most o.queue jobs and
 * HT_SERVER_QUEUE_EVENTS_MAX events (beyond that, hubq_submit refuses and
 * the worker answers 503); a commit takes at most COMMIT_JOBS_MAX jobs
 * and COMMIT_EVENTS_MAX events. Participants' ownership rules are applied
 * here, where the engine's state is: a participant moves money only out of
 * accounts it owns and sees only accounts it owns and transfers touching
 * them. When a commit fails the hub is poisoned: every create of the
 * group is answered 500 (nothing of it was acknowledged) and the server
 * stops, so a restart replays the store.
 */
#include "srv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "huitong/iso20022.h"
#include "huitong/journal.h"

#define COMMIT_JOBS_MAX 256
#define COMMIT_EVENTS_MAX (4u * HT_BATCH_EVENTS_MAX)

static uint64_t job_events(const struct job *j)
{
	if (j->kind == JOB_CREATE_ACCOUNTS || j->kind == JOB_CREATE_TRANSFERS)
		return j->r.count;
	if (j->kind == JOB_PAY_CREATE || j->kind == JOB_PAY_DECIDE)
		return j->pay_n;
	return 1;
}

void job_free(struct job *j)
{
	if (!j)
		return;
	ht_request_free(&j->r);
	ht_buf_free(&j->body);
	free(j->results);
	free(j->leaf);
	free(j->leaf_data);
	free(j->leaf_len);
	free(j->leaf_ts);
	free(j->proof);
	free(j->risk);
	ht_buf_free(&j->risk_reasons);
	free(j->refuse);
	free(j->screened);
	free(j->block);
	free(j->pay);
	free(j->pay_at);
	free(j->liq);
	ht_iso_msg_free(j->iso);
	free(j);
}

enum ht_err hubq_submit(struct server *s, struct job *j)
{
	uint64_t ev = job_events(j);
	pthread_mutex_lock(&s->q_lock);
	enum ht_err err = HT_OK;
	if (s->q_stop || s->hub_failed)
		err = HT_ERR_POISONED;
	else if (s->q_jobs >= s->queue_max ||
		 s->q_events + ev > HT_SERVER_QUEUE_EVENTS_MAX)
		err = HT_ERR_LIMIT;
	if (!err) {
		j->next = NULL;
		if (s->q_tail)
			s->q_tail->next = j;
		else
			s->q_head = j;
		s->q_tail = j;
		s->q_jobs++;
		s->q_events += ev;
		atomic_store(&s->queue_depth, s->q_jobs);
		pthread_cond_signal(&s->q_cond);
	}
	pthread_mutex_unlock(&s->q_lock);
	return err;
}

/* Hand a finished job back to its worker. */
static void answer(struct job *j)
{
	struct worker *w = j->w;
	pthread_mutex_lock(&w->lock);
	j->next = NULL;
	if (w->done_tail)
		w->done_tail->next = j;
	else
		w->done_head = j;
	w->done_tail = j;
	pthread_mutex_unlock(&w->lock);
	event_active(w->wake, EV_READ, 0);
}

static void job_fail(struct job *j, int status, const char *code,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void job_fail(struct job *j, int status, const char *code,
		     const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(j->message, sizeof j->message, fmt, ap);
	va_end(ap);
	j->status = status;
	j->code = code;
}

/* ---- ownership ------------------------------------------------------------------ */

static bool owns(struct server *s, const struct job *j, ht_u128 account)
{
	if (j->all_access)
		return true;
	const char *o = ht_hub_account_owner(s->hub, account);
	return o && !strcmp(o, j->who);
}

bool hubq_owns(struct server *s, const struct job *j, ht_u128 account)
{
	return owns(s, j, account);
}

static bool sees_transfer(struct server *s, const struct job *j,
			  const struct ht_transfer *t)
{
	return owns(s, j, t->debit_account_id) ||
	       owns(s, j, t->credit_account_id);
}

/* A transfer held for risk review is posted only by an operator's
 * decision (POST /v1/risk/reviews/{id}/approve), by no other request of
 * any role: a held payment must not be released around the review. Voids
 * stay open to whoever may void it (the payer withdrawing it). */
static bool held_decided_elsewhere(struct server *s, struct job *j, size_t i)
{
	const struct ht_transfer *t = &j->r.transfers[i];
	char ids[HT_U128_DEC_SIZE];
	if (j->review_route) {
		/* approve / reject: only what was held for review */
		if (riskflow_was_held(s, t->pending_id))
			return true;
		ht_u128_format(t->pending_id, ids);
		job_fail(j, 404, "not_found", s->risk
			 ? "transfer %s is not held for risk review"
			 : "transfer %s is not held: risk control is off", ids);
		return false;
	}
	if (!(t->flags & HT_TRANSFER_POST_PENDING) ||
	    !riskflow_held(s, t->pending_id))
		return true;
	ht_u128_format(t->pending_id, ids);
	job_fail(j, 403, "forbidden",
		 "transfers[%zu]: transfer %s is held for risk review; an"
		 " operator decides it (POST /v1/risk/reviews/%s/approve)",
		 i, ids, ids);
	return false;
}

/* A participant may only debit accounts it owns; for post/void the
 * pending transfer's debit account counts. Unknown accounts and pending
 * transfers are left to the ledger's own result codes. */
static bool authorize_transfers(struct server *s, struct job *j)
{
	if (j->all_access && !s->risk && !j->review_route)
		return true; /* nothing is held without --risk */
	struct ht_ledger *l = ht_hub_ledger(s->hub);
	for (size_t i = 0; i < j->r.count; i++) {
		if (!held_decided_elsewhere(s, j, i))
			return false;
		if (j->all_access)
			continue;
		const struct ht_transfer *t = &j->r.transfers[i];
		ht_u128 debit = t->debit_account_id;
		if (t->flags & (HT_TRANSFER_POST_PENDING | HT_TRANSFER_VOID_PENDING)) {
			const struct ht_transfer *p =
				ht_ledger_transfer_get(l, t->pending_id);
			if (p)
				debit = p->debit_account_id;
		}
		if (!debit || !ht_ledger_account_get(l, debit))
			continue;
		if (!owns(s, j, debit)) {
			char ids[HT_U128_DEC_SIZE];
			job_fail(j, 403, "forbidden",
				 "transfers[%zu]: account %s is not %s's to debit",
				 i, ht_u128_format(debit, ids), j->who);
			return false;
		}
	}
	return true;
}

/* ---- reads ------------------------------------------------------------------------ */

static enum ht_err write_line_end(struct job *j)
{
	return ht_buf_append(&j->body, "\n", 1);
}

/* The object of a one-element lookup line: {"op":…,"accounts":[OBJ]} ->
 * OBJ. */
static enum ht_err keep_object(struct job *j)
{
	char *open = memchr(j->body.data, '[', j->body.len);
	if (!open || j->body.len < 2 || memcmp(j->body.data + j->body.len - 2, "]}", 2))
		return HT_ERR_INVALID;
	size_t start = (size_t)(open - j->body.data) + 1;
	size_t len = j->body.len - 2 - start;
	memmove(j->body.data, j->body.data + start, len);
	j->body.len = len;
	return write_line_end(j);
}

static void read_lookup(struct server *s, struct job *j)
{
	size_t n = 0, kept = 0;
	enum ht_err err;
	if (j->kind == JOB_LOOKUP_ACCOUNTS || j->kind == JOB_GET_ACCOUNT) {
		size_t cnt = j->kind == JOB_GET_ACCOUNT ? 1 : j->r.count;
		const ht_u128 *ids = j->kind == JOB_GET_ACCOUNT ? &j->id : j->r.ids;
		struct ht_account *a = malloc((cnt + 1) * sizeof *a);
		if (!a)
			return job_fail(j, 500, "internal", "out of memory");
		err = ht_hub_lookup_accounts(s->hub, ids, cnt, a, &n);
		for (size_t i = 0; !err && i < n; i++)
			if (owns(s, j, a[i].id))
				a[kept++] = a[i];
		if (!err && j->kind == JOB_GET_ACCOUNT && kept == 0) {
			free(a);
			char b[HT_U128_DEC_SIZE];
			return job_fail(j, 404, "not_found", "no account %s%s",
					ht_u128_format(j->id, b),
					j->all_access ? "" : " of yours");
		}
		if (!err)
			err = ht_jsonl_write_accounts(&j->body,
						      HT_OP_LOOKUP_ACCOUNTS, a,
						      kept);
		free(a);
	} else {
		size_t cnt = j->kind == JOB_GET_TRANSFER ? 1 : j->r.count;
		const ht_u128 *ids = j->kind == JOB_GET_TRANSFER ? &j->id : j->r.ids;
		struct ht_transfer *t = malloc((cnt + 1) * sizeof *t);
		if (!t)
			return job_fail(j, 500, "internal", "out of memory");
		err = ht_hub_lookup_transfers(s->hub, ids, cnt, t, &n);
		for (size_t i = 0; !err && i < n; i++)
			if (sees_transfer(s, j, &t[i]))
				t[kept++] = t[i];
		if (!err && j->kind == JOB_GET_TRANSFER && kept == 0) {
			free(t);
			char b[HT_U128_DEC_SIZE];
			return job_fail(j, 404, "not_found", "no transfer %s%s",
					ht_u128_format(j->id, b),
					j->all_access ? "" : " of yours");
		}
		if (!err)
			err = ht_jsonl_write_transfers(&j->body,
						       HT_OP_LOOKUP_TRANSFERS, t,
						       kept);
		free(t);
	}
	if (!err)
		err = j->kind == JOB_GET_ACCOUNT || j->kind == JOB_GET_TRANSFER
			      ? keep_object(j)
			      : write_line_end(j);
	if (err)
		job_fail(j, 500, "internal", "lookup failed: %s", ht_strerror(err));
}

static void read_query(struct server *s, struct job *j)
{
	if (!owns(s, j, j->r.filter.account_id)) {
		/* another's account answers like one that does not exist: an
		 * empty list, as `ledger apply` prints for an unknown id */
		enum ht_err e = j->kind == JOB_QUERY_TRANSFERS
			? ht_jsonl_write_transfers(&j->body,
						   HT_OP_GET_ACCOUNT_TRANSFERS,
						   NULL, 0)
			: ht_jsonl_write_balances(&j->body,
						  HT_OP_GET_ACCOUNT_BALANCES,
						  NULL, 0);
		if (!e)
			e = write_line_end(j);
		if (e)
			job_fail(j, 500, "internal", "out of memory");
		return;
	}
	size_t limit = j->r.filter.limit ? j->r.filter.limit : 1, n = 0;
	enum ht_err err;
	if (j->kind == JOB_QUERY_TRANSFERS) {
		struct ht_transfer *t = malloc(limit * sizeof *t);
		err = t ? ht_hub_account_transfers(s->hub, &j->r.filter, t, &n)
			: HT_ERR_NOMEM;
		if (!err)
			err = ht_jsonl_write_transfers(
				&j->body, HT_OP_GET_ACCOUNT_TRANSFERS, t, n);
		free(t);
	} else {
		struct ht_balance *bl = malloc(limit * sizeof *bl);
		err = bl ? ht_hub_account_balances(s->hub, &j->r.filter, bl, &n)
			 : HT_ERR_NOMEM;
		if (!err)
			err = ht_jsonl_write_balances(
				&j->body, HT_OP_GET_ACCOUNT_BALANCES, bl, n);
		free(bl);
	}
	if (err == HT_ERR_LIMIT || err == HT_ERR_INVALID)
		return job_fail(j, 400, "invalid_request",
				"bad filter: limit must be 1..8190 and"
				" timestamp_min <= timestamp_max");
	if (!err)
		err = write_line_end(j);
	if (err)
		job_fail(j, 500, "internal", "query failed: %s", ht_strerror(err));
}

static enum ht_err hex_json_array(struct ht_buf *b, const uint8_t (*h)[HT_HASH_BYTES],
				  size_t n)
{
	enum ht_err err = ht_buf_append(b, "[", 1);
	char hex[2 * HT_HASH_BYTES + 1];
	for (size_t i = 0; !err && i < n; i++) {
		ht_hex_encode(h[i], HT_HASH_BYTES, hex);
		err = ht_buf_printf(b, "%s\"%s\"", i ? "," : "", hex);
	}
	return err ? err : ht_buf_append(b, "]", 1);
}

/* The head whose tree_size is `size` (binary search over seq: sizes never
 * decrease). */
static enum ht_err head_with_size(struct server *s, uint64_t size,
				  struct ht_sth *out)
{
	struct ht_sth last;
	enum ht_err err = ht_hub_head(s->hub, &last);
	if (err)
		return err;
	if (size > last.tree_size)
		return HT_ERR_NOT_FOUND;
	uint64_t lo = 0, hi = last.seq;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		struct ht_sth h;
		if ((err = ht_hub_head_at(s->hub, mid, &h)))
			return err;
		if (h.tree_size < size)
			lo = mid + 1;
		else
			hi = mid;
	}
	if ((err = ht_hub_head_at(s->hub, lo, out)))
		return err;
	return out->tree_size == size ? HT_OK : HT_ERR_NOT_FOUND;
}

static void read_receipt(struct server *s, struct job *j)
{
	char ids[HT_U128_DEC_SIZE];
	ht_u128_format(j->id, ids);
	struct ht_transfer t;
	size_t n = 0;
	if (ht_hub_lookup_transfers(s->hub, &j->id, 1, &t, &n) || n == 0 ||
	    !sees_transfer(s, j, &t))
		return job_fail(j, 404, "not_found", "no transfer %s%s", ids,
				j->all_access ? "" : " of yours");
	uint64_t leaf;
	enum ht_err err = ht_hub_transfer_leaf(s->hub, j->id, &leaf);
	if (err)
		return job_fail(j, 404, "not_found", "no transfer %s in the"
				" journal", ids);
	struct ht_sth head;
	err = j->a ? head_with_size(s, j->a, &head) : ht_hub_head(s->hub, &head);
	if (err == HT_ERR_NOT_FOUND)
		return job_fail(j, 404, "not_found",
				"no signed head has tree size %llu",
				(unsigned long long)j->a);
	if (!err && leaf >= head.tree_size)
		return job_fail(j, 400, "invalid_request",
				"transfer %s is leaf %llu, not in the tree of"
				" size %llu", ids, (unsigned long long)leaf,
				(unsigned long long)head.tree_size);
	uint8_t data[HT_LEAF_BYTES_MAX];
	size_t len = 0;
	uint8_t(*proof)[HT_HASH_BYTES] = malloc(HT_PROOF_HASHES_MAX * HT_HASH_BYTES);
	size_t pn = 0;
	if (!proof)
		err = HT_ERR_NOMEM;
	if (!err)
		err = ht_hub_leaf(s->hub, leaf, data, &len);
	if (!err)
		err = ht_hub_prove_inclusion(s->hub, leaf, head.tree_size, proof,
					     &pn);
	char hex[2 * HT_LEAF_BYTES_MAX + 1], headj[1024];
	if (!err) {
		ht_hex_encode(data, len, hex);
		ht_sth_json(&head, headj, sizeof headj);
		err = ht_buf_printf(&j->body,
				    "{\"id\":\"%s\",\"leaf\":%llu,\"data\":\"%s\","
				    "\"head\":%s,\"proof\":",
				    ids, (unsigned long long)leaf, hex, headj);
	}
	if (!err)
		err = hex_json_array(&j->body, (const uint8_t(*)[HT_HASH_BYTES])proof, pn);
	if (!err)
		err = ht_buf_append(&j->body, "}\n", 2);
	free(proof);
	if (err)
		job_fail(j, 500, "internal", "receipt failed: %s",
			 ht_strerror(err));
}

static void read_head(struct server *s, struct job *j)
{
	struct ht_sth h;
	enum ht_err err = j->kind == JOB_HEAD ? ht_hub_head(s->hub, &h)
					      : ht_hub_head_at(s->hub, j->a, &h);
	if (err == HT_ERR_NOT_FOUND)
		return job_fail(j, 404, "not_found", "no head %llu",
				(unsigned long long)j->a);
	char out[1024];
	if (!err) {
		ht_sth_json(&h, out, sizeof out);
		err = ht_buf_printf(&j->body, "%s\n", out);
	}
	if (err)
		job_fail(j, 500, "internal", "head: %s", ht_strerror(err));
}

static void read_consistency(struct server *s, struct job *j)
{
	struct ht_sth h;
	enum ht_err err = ht_hub_head(s->hub, &h);
	if (!err && j->b > h.tree_size)
		return job_fail(j, 400, "invalid_request",
				"new %llu is beyond the head's tree size %llu",
				(unsigned long long)j->b,
				(unsigned long long)h.tree_size);
	uint8_t(*proof)[HT_HASH_BYTES] = malloc(HT_PROOF_HASHES_MAX * HT_HASH_BYTES);
	size_t n = 0;
	if (!err && !proof)
		err = HT_ERR_NOMEM;
	if (!err)
		err = ht_hub_prove_consistency(s->hub, j->a, j->b, proof, &n);
	if (!err)
		err = ht_buf_printf(&j->body, "{\"old_size\":%llu,\"new_size\":%llu,"
					      "\"proof\":",
				    (unsigned long long)j->a,
				    (unsigned long long)j->b);
	if (!err)
		err = hex_json_array(&j->body, (const uint8_t(*)[HT_HASH_BYTES])proof, n);
	if (!err)
		err = ht_buf_append(&j->body, "}\n", 2);
	free(proof);
	if (err)
		job_fail(j, 500, "internal", "consistency: %s", ht_strerror(err));
}

static void do_read(struct server *s, struct job *j)
{
	switch (j->kind) {
	case JOB_LOOKUP_ACCOUNTS:
	case JOB_LOOKUP_TRANSFERS:
	case JOB_GET_ACCOUNT:
	case JOB_GET_TRANSFER:
		read_lookup(s, j);
		break;
	case JOB_QUERY_TRANSFERS:
	case JOB_QUERY_BALANCES:
		read_query(s, j);
		break;
	case JOB_RECEIPT:
		read_receipt(s, j);
		break;
	case JOB_HEAD:
	case JOB_HEAD_AT:
		read_head(s, j);
		break;
	case JOB_CONSISTENCY:
		read_consistency(s, j);
		break;
	case JOB_RISK_GET:
		riskflow_read(s, j);
		break;
	case JOB_RISK_REVIEWS:
		riskflow_reviews(s, j);
		break;
	case JOB_BLOCK_ADD:
		riskflow_block_add(s, j);
		break;
	case JOB_BLOCK_LIST:
		riskflow_block_list(s, j);
		break;
	case JOB_BLOCK_REMOVE:
		riskflow_block_remove(s, j);
		break;
	case JOB_PAY_GET:
	case JOB_PAY_INBOX:
	case JOB_LIQ_GET:
	case JOB_SETTLE_CLOSE:
	case JOB_SETTLE_GET:
		payments_read(s, j);
		break;
	default:
		job_fail(j, 500, "internal", "not a read");
	}
}

/* ---- creates ----------------------------------------------------------------------- */

static ht_u128 event_id(const struct ht_event *e)
{
	switch (e->kind) {
	case HT_EVENT_ACCOUNT:
		return e->u.account.id;
	case HT_EVENT_TRANSFER:
		return e->u.transfer.id;
	case HT_EVENT_REFUSAL:
		return e->u.refusal.id;
	default:
		return 0;
	}
}

/* Leaf k, event i's: its timestamp, and its data only when it is not the
 * event the request implies (leaf_len 0 otherwise). */
static enum ht_err leaf_note(struct job *j, size_t i, const struct ht_event *ev,
			     size_t k)
{
	struct ht_event implied;
	bool accounts = j->kind == JOB_CREATE_ACCOUNTS;
	j->leaf_ts[k] = ht_event_timestamp(ev);
	ht_event_implied(accounts ? &j->r.accounts[i] : NULL,
			 accounts ? NULL : &j->r.transfers[i], j->results[i],
			 j->leaf_ts[k], &implied);
	j->leaf_len[k] = 0;
	/* a payment's transfer is the hub's own making: always sent */
	if (ht_event_same(&implied, ev) && j->kind != JOB_PAY_CREATE &&
	    j->kind != JOB_PAY_DECIDE)
		return HT_OK;
	size_t len = 0;
	enum ht_err err = ht_event_encode(ev, j->leaf_data + k * HT_LEAF_BYTES_MAX,
					  &len);
	j->leaf_len[k] = (uint8_t)len;
	return err;
}

/* Apply one create job; its events are changes.events[ev0..]. Leaves are
 * numbered relative to the commit here (j->first), absolute later. */
static enum ht_err apply_create(struct server *s, struct job *j)
{
	bool pay = j->kind == JOB_PAY_CREATE || j->kind == JOB_PAY_DECIDE;
	if (pay && payments_build(s, j))
		return HT_ERR_NOMEM; /* before any event: the group fails */
	size_t n = j->r.count;
	j->results = malloc((n + 1) * sizeof *j->results);
	j->leaf = malloc((n + 1) * sizeof *j->leaf);
	if (!j->results || !j->leaf) {
		job_fail(j, 500, "internal", "out of memory");
		return HT_OK;
	}
	if (j->kind == JOB_CREATE_TRANSFERS && !authorize_transfers(s, j))
		return HT_OK; /* payments: checked when built */
	struct ht_ledger *l = ht_hub_ledger(s->hub);
	struct ht_ledger_changes ch;
	ht_ledger_changes(l, &ch);
	size_t ev0 = ch.events_count;
	const struct ht_transfer *in = j->r.transfers;
	uint16_t *refuse = NULL;
	enum ht_err err = riskflow_screen(s, j, &in, &refuse);
	if (!err)
		err = payments_liquidity(s, j, in, &refuse);
	if (err) {
		job_fail(j, 500, "internal", "risk engine: %s", ht_strerror(err));
		return HT_OK;
	}
	err = j->kind == JOB_CREATE_ACCOUNTS
		      ? ht_hub_create_accounts_owned(s->hub, j->r.accounts, n,
						     j->who, j->results)
		      : ht_hub_create_transfers_screened(s->hub, in, n, refuse,
							 j->results);
	if (err == HT_ERR_POISONED || err == HT_ERR_NOMEM)
		return err;
	if (!err) {
		riskflow_applied(s, j);
		payments_applied(s, j);
	}
	if (err) {
		job_fail(j, 400, "invalid_request", "the ledger refused the"
			 " batch: %s", ht_strerror(err));
		return HT_OK;
	}
	ht_ledger_changes(l, &ch);
	size_t e = ev0;
	/* expiries the create call made first belong to nobody */
	while (e < ch.events_count && ch.events[e].kind == HT_EVENT_EXPIRY)
		e++;
	size_t first = e, count = ch.events_count - e;
	j->first = first;
	j->count = count;
	/* only the leaves that differ from what their request implies are
	 * encoded (compact receipts); the pages of the rest stay untouched */
	j->leaf_data = malloc((count ? count : 1) * HT_LEAF_BYTES_MAX);
	j->leaf_len = malloc(count ? count : 1);
	j->leaf_ts = malloc((count ? count : 1) * sizeof *j->leaf_ts);
	j->proof = malloc(HT_PROOF_HASHES_MAX * HT_HASH_BYTES);
	if (!j->leaf_data || !j->leaf_len || !j->leaf_ts || !j->proof)
		return HT_ERR_NOMEM; /* the events are applied: cannot refuse */
	/* results to leaves: in input order, each ok or id-burning refusal
	 * is the next event with its id */
	for (size_t i = 0; i < n; i++) {
		ht_u128 id = j->kind == JOB_CREATE_ACCOUNTS ? j->r.accounts[i].id
							    : j->r.transfers[i].id;
		j->leaf[i] = UINT64_MAX;
		if (e < ch.events_count && event_id(&ch.events[e]) == id) {
			const struct ht_event *ev = &ch.events[e];
			bool ok = j->results[i] == HT_R_OK;
			if ((ok && ev->kind != HT_EVENT_REFUSAL) ||
			    (!ok && ev->kind == HT_EVENT_REFUSAL &&
			     ev->u.refusal.result == j->results[i])) {
				size_t k = e - first;
				j->leaf[i] = k; /* relative for now */
				err = leaf_note(j, i, ev, k);
				if (err)
					return err;
				e++;
			}
		}
	}
	HT_ASSERT(e == ch.events_count); /* every event belongs to a result */
	return riskflow_record(s, j);
}

void hubq_answer(struct job *j)
{
	answer(j);
}

/* Answer the reads of *batchp now and take them out of it: they saw the
 * committed state, so they need not wait for this group's commit. A
 * parked one (a long poll of the payments inbox) is taken out unanswered:
 * payments.c answers it later. */
static void answer_reads(struct job **batchp)
{
	struct job **pp = batchp;
	while (*pp) {
		struct job *j = *pp;
		if (job_is_create(j)) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		if (!j->parked)
			answer(j);
	}
}

static void process(struct server *s, struct job **batchp)
{
	bool any_read = false;
	struct job *batch = *batchp;
	for (struct job *j = batch; j; j = j->next)
		if (!job_is_create(j))
			any_read = true;
	if (any_read) {
		/* as `ledger apply` does: nothing past its timeout is shown
		 * pending */
		enum ht_err err = ht_hub_expire(s->hub);
		if (err) {
			s->hub_failed = true;
			atomic_store(&s->stopping, true);
		}
		for (struct job *j = batch; j; j = j->next)
			if (!job_is_create(j)) {
				if (err)
					job_fail(j, 500, "internal",
						 "the store failed: %s",
						 ht_strerror(err));
				else
					do_read(s, j);
			}
		answer_reads(batchp);
		batch = *batchp;
	}
	struct ht_sth before;
	enum ht_err err = ht_hub_head(s->hub, &before);
	struct ht_ledger_changes ch;
	ht_ledger_changes(ht_hub_ledger(s->hub), &ch);
	HT_ASSERT(ch.events_count == 0); /* the last commit took everything */
	uint64_t creates = 0;
	for (struct job *j = batch; !err && j; j = j->next)
		if (job_is_create(j)) {
			creates++;
			if (j->code)
				continue;
			if (j->kind == JOB_LIQ)
				payments_liq_apply(s, j);
			else if (j->kind == JOB_ISO)
				payments_iso_apply(s, j);
			else
				err = apply_create(s, j);
		}
	struct ht_sth head = before;
	if (!err && creates) {
		ht_ledger_changes(ht_hub_ledger(s->hub), &ch);
		uint64_t t0 = srv_now_ns();
		err = ht_hub_commit(s->hub, &head);
		metrics_observe(&s->m.commit_seconds,
				(double)(srv_now_ns() - t0) / 1e9);
		metrics_observe_count(&s->m.commit_events, ch.events_count);
		metrics_observe_count(&s->m.commit_requests, creates);
	}
	if (err) {
		fprintf(stderr, "huitong serve: commit failed: %s; stopping"
				" (nothing of this group was acknowledged;"
				" restart to replay the store)\n",
			ht_strerror(err));
		s->hub_failed = true;
		atomic_store(&s->stopping, true);
	}
	atomic_store(&s->tree_size, head.tree_size);
	for (struct job *j = batch; j; j = j->next) {
		if (!job_is_create(j))
			continue;
		if (j->code)
			continue;
		if (j->kind == JOB_LIQ || j->kind == JOB_ISO) {
			if (err)
				job_fail(j, 500, "internal", "the store failed"
					 " (%s): nothing of this request was"
					 " acknowledged", ht_strerror(err));
			continue;
		}
		if (err) {
			job_fail(j, 500, "internal",
				 "the store failed (%s): nothing of this request"
				 " was acknowledged", ht_strerror(err));
			continue;
		}
		j->head = head;
		for (size_t i = 0; i < j->r.count; i++)
			if (j->leaf[i] != UINT64_MAX)
				j->leaf[i] += before.tree_size + j->first;
		j->first += before.tree_size;
		j->proof_n = 0;
		if (j->count) {
			enum ht_err e = ht_hub_prove_range_recent(
				s->hub, j->first, j->count, j->proof, &j->proof_n);
			if (e) {
				/* committed: answer without a proof rather
				 * than fail; the receipt endpoint can prove it */
				fprintf(stderr, "huitong serve: range proof: %s\n",
					ht_strerror(e));
				j->proof_n = 0;
			}
		}
		j->status = 200;
	}
}

static void *hub_main(void *arg)
{
	struct server *s = arg;
	uint64_t last_expire = srv_now_ns();
	for (;;) {
		pthread_mutex_lock(&s->q_lock);
		while (!s->q_head && !s->q_stop) {
			/* a second, or until the first long poll is due */
			uint64_t wait_ns = 1000000000u;
			uint64_t due = payments_next_due_ns(s);
			if (due) {
				uint64_t now = srv_now_ns();
				wait_ns = due <= now ? 0 : due - now < wait_ns
							       ? due - now : wait_ns;
			}
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			uint64_t ns = (uint64_t)ts.tv_nsec + wait_ns;
			ts.tv_sec += (time_t)(ns / 1000000000u);
			ts.tv_nsec = (long)(ns % 1000000000u);
			if (wait_ns)
				pthread_cond_timedwait(&s->q_cond, &s->q_lock, &ts);
			if (!s->q_head && !s->hub_failed &&
			    srv_now_ns() - last_expire >= 1000000000u)
				break;
			due = payments_next_due_ns(s);
			if (!s->q_head && due && due <= srv_now_ns())
				break;
		}
		if (!s->q_head && s->q_stop) {
			pthread_mutex_unlock(&s->q_lock);
			payments_wake(s, true);
			break;
		}
		struct job *batch = NULL, **tail = &batch;
		size_t jobs = 0;
		uint64_t events = 0;
		while (s->q_head && jobs < COMMIT_JOBS_MAX) {
			uint64_t ev = job_events(s->q_head);
			if (jobs && events + ev > COMMIT_EVENTS_MAX)
				break;
			struct job *j = s->q_head;
			s->q_head = j->next;
			if (!s->q_head)
				s->q_tail = NULL;
			j->next = NULL;
			*tail = j;
			tail = &j->next;
			jobs++;
			events += ev;
			s->q_jobs--;
			s->q_events -= ev;
		}
		atomic_store(&s->queue_depth, s->q_jobs);
		pthread_mutex_unlock(&s->q_lock);
		riskflow_block_poll(s);
		if (!batch && payments_next_due_ns(s) &&
		    payments_next_due_ns(s) <= srv_now_ns() &&
		    srv_now_ns() - last_expire < 1000000000u) {
			payments_wake(s, false); /* a long poll is due */
			continue;
		}
		if (!batch) {
			/* idle a second: expire due pending transfers */
			last_expire = srv_now_ns();
			if (!s->hub_failed && ht_hub_expire(s->hub)) {
				fprintf(stderr, "huitong serve: expiry commit"
						" failed; stopping\n");
				s->hub_failed = true;
				atomic_store(&s->stopping, true);
			}
			continue;
		}
		if (s->hub_failed) {
			for (struct job *j = batch; j; j = j->next)
				job_fail(j, 503, "shutting_down",
					 "the hub stopped after a store failure");
		} else {
			process(s, &batch);
		}
		while (batch) {
			struct job *next = batch->next;
			answer(batch);
			batch = next;
		}
		payments_wake(s, false);
	}
	return NULL;
}

enum ht_err hubq_start(struct server *s)
{
	return pthread_create(&s->hub_thread, NULL, hub_main, s) ? HT_ERR_NOMEM
								 : HT_OK;
}

void hubq_stop(struct server *s)
{
	pthread_mutex_lock(&s->q_lock);
	s->q_stop = true;
	pthread_cond_signal(&s->q_cond);
	pthread_mutex_unlock(&s->q_lock);
	pthread_join(s->hub_thread, NULL);
}

/*
 * riskflow.c — the risk engine in the payment path (`serve --risk`,
 * docs/api.md "Risk"): every transfer that moves money is scored on the hub
 * thread before the ledger applies it, then allowed (applied as asked),
 * held for review (created as a pending transfer an operator posts or
 * voids, or its timeout voids) or blocked (refused with risk_blocked,
 * which burns its id like any refusal).
 *
 * Owner: server. What it owns: the engine (features state, model, the rule
 * holder), the set of transfers held for review, and the copies of a
 * request's transfers that review changes. Threads: everything here runs
 * on the hub thread (the features state has one writer), except the rule
 * reload, which goes through the holder (lock-free for the hub thread).
 * It must never change money itself: it only tells the ledger, through
 * ht_hub_create_transfers_screened, which transfers to refuse, and hands
 * it pending copies of the ones to hold; every ledger check still applies.
 */
#include "srv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "huitong/risk.h"

/* The reason of a review the hub could not hold (HT_SERVER_RISK_HELD_MAX
 * reached): blocked instead. */
#define REASON_HELD_FULL "review_capacity"

/* Transfers held for review: an open-addressing set of ids (0 = empty;
 * ids of committed transfers are never 0), linear probing, deletion by
 * backward shift. At most HT_SERVER_RISK_HELD_MAX ids. */
struct held {
	ht_u128 *slot;
	size_t cap;                  /* power of two, > 2 * count */
	size_t count;
};

struct riskflow {
	struct ht_blocklist *blocklist;      /* DATA/risk.db; hub thread */
	_Atomic size_t block_count;          /* its entries, for other threads */
	uint8_t block_key[HT_BLOCK_KEY_BYTES]; /* DATA/risk.key */
	struct ht_model *model;              /* NULL: rules only */
	struct ht_rules_holder *rules;
	struct ht_risk_engine *engine;
	uint32_t review_timeout_s;
	struct held held;
};

/* ---- the held set ------------------------------------------------------------ */

static size_t held_hash(ht_u128 id, size_t mask)
{
	uint64_t x = (uint64_t)id ^ (uint64_t)(id >> 64);
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return (size_t)x & mask;
}

/* The slot holding id, or the empty one where it would go. */
static size_t held_probe(const struct held *h, ht_u128 id)
{
	size_t mask = h->cap - 1;
	size_t i = held_hash(id, mask);
	while (h->slot[i] && h->slot[i] != id)
		i = (i + 1) & mask;
	return i;
}

static enum ht_err held_grow(struct held *h)
{
	size_t cap = h->cap ? h->cap * 2 : 1024;
	ht_u128 *old = h->slot;
	size_t old_cap = h->cap;
	h->slot = calloc(cap, sizeof *h->slot);
	if (!h->slot) {
		h->slot = old;
		return HT_ERR_NOMEM;
	}
	h->cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i])
			h->slot[held_probe(h, old[i])] = old[i];
	free(old);
	return HT_OK;
}

static bool held_has(const struct held *h, ht_u128 id)
{
	return h->count && id && h->slot[held_probe(h, id)] == id;
}

/* HT_ERR_LIMIT at HT_SERVER_RISK_HELD_MAX, HT_ERR_NOMEM. */
static enum ht_err held_add(struct held *h, ht_u128 id)
{
	HT_ASSERT(id != 0);
	if (held_has(h, id))
		return HT_OK;
	if (h->count >= HT_SERVER_RISK_HELD_MAX)
		return HT_ERR_LIMIT;
	if (2 * (h->count + 1) >= h->cap) {
		enum ht_err err = held_grow(h);
		if (err)
			return err;
	}
	h->slot[held_probe(h, id)] = id;
	h->count++;
	return HT_OK;
}

/* Forget every id that is no longer an open pending transfer (posted,
 * voided or expired): the set is rebuilt from the open ones. */
static enum ht_err held_prune(struct held *h, const struct ht_ledger *l)
{
	ht_u128 *fresh = calloc(h->cap, sizeof *fresh);
	if (!fresh)
		return HT_ERR_NOMEM;
	ht_u128 *old = h->slot;
	h->slot = fresh;
	h->count = 0;
	for (size_t i = 0; i < h->cap; i++) {
		if (!old[i] || ht_ledger_pending_state(l, old[i]) !=
				       HT_PENDING_OPEN)
			continue;
		h->slot[held_probe(h, old[i])] = old[i];
		h->count++;
	}
	free(old);
	return HT_OK;
}

static void held_remove(struct held *h, ht_u128 id)
{
	if (!held_has(h, id))
		return;
	size_t mask = h->cap - 1;
	size_t i = held_probe(h, id);
	h->slot[i] = 0;
	h->count--;
	/* backward shift: move up every entry that probed past the hole */
	for (size_t j = (i + 1) & mask; h->slot[j]; j = (j + 1) & mask) {
		size_t home = held_hash(h->slot[j], mask);
		bool between = i <= j ? (home > i && home <= j)
				      : (home > i || home <= j);
		if (between)
			continue;
		h->slot[i] = h->slot[j];
		h->slot[j] = 0;
		i = j;
	}
}

/* The ids of one request, to find an id given twice: open addressing,
 * at most n ids in 2n..4n slots. */
struct idmap {
	ht_u128 *key;
	uint32_t *val;
	size_t cap;
};

static enum ht_err idmap_init(struct idmap *m, size_t n)
{
	m->cap = 16;
	while (m->cap < 2 * n)
		m->cap *= 2;
	m->key = calloc(m->cap, sizeof *m->key);
	m->val = malloc(m->cap * sizeof *m->val);
	return m->key && m->val ? HT_OK : HT_ERR_NOMEM;
}

static void idmap_free(struct idmap *m)
{
	free(m->key);
	free(m->val);
}

static size_t idmap_slot(const struct idmap *m, ht_u128 id)
{
	size_t i = held_hash(id, m->cap - 1);
	while (m->key[i] && m->key[i] != id)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static bool idmap_get(const struct idmap *m, ht_u128 id, size_t *out)
{
	size_t i = idmap_slot(m, id);
	if (!m->key[i])
		return false;
	*out = m->val[i];
	return true;
}

static enum ht_err idmap_put(struct idmap *m, ht_u128 id, size_t index)
{
	HT_ASSERT(id != 0);
	size_t i = idmap_slot(m, id);
	m->key[i] = id;
	m->val[i] = (uint32_t)index;
	return HT_OK;
}

static int load_held(void *ctx, const struct ht_risk_row *r);

/* ---- open and close ------------------------------------------------------------- */

/* Read the rule file at path (at most HT_RULES_FILE_BYTES_MAX bytes). */
static enum ht_err read_rules_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return HT_ERR_IO;
	char *buf = malloc(HT_RULES_FILE_BYTES_MAX + 1);
	size_t n = buf ? fread(buf, 1, HT_RULES_FILE_BYTES_MAX + 1, f) : 0;
	bool bad = ferror(f);
	fclose(f);
	if (!buf)
		return HT_ERR_NOMEM;
	if (bad || n > HT_RULES_FILE_BYTES_MAX) {
		free(buf);
		return bad ? HT_ERR_IO : HT_ERR_LIMIT;
	}
	*out = buf;
	*len = n;
	return HT_OK;
}

void riskflow_print_diag(const char *path, const struct ht_rules_diag *d)
{
	for (size_t i = 0; i < d->count; i++)
		fprintf(stderr, "huitong serve: %s:%u:%u: %s\n", path,
			d->errors[i].line, d->errors[i].column,
			d->errors[i].message);
	if (d->truncated)
		fprintf(stderr, "huitong serve: %s: more errors not shown\n",
			path);
}

static enum ht_err reload_file(struct server *s, const char *path);

enum ht_err riskflow_reload_file(struct server *s, const char *path)
{
	enum ht_err err = reload_file(s, path);
	atomic_fetch_add(&s->m.risk_reloads[err ? 1 : 0], 1);
	return err;
}

static enum ht_err reload_file(struct server *s, const char *path)
{
	char *text = NULL;
	size_t len = 0;
	enum ht_err err = read_rules_file(path, &text, &len);
	if (err) {
		fprintf(stderr, "huitong serve: cannot read the rules %s: %s\n",
			path, err == HT_ERR_LIMIT ? "larger than 1 MiB"
						  : ht_strerror(err));
		return err;
	}
	struct ht_rules_diag diag;
	err = ht_rules_holder_reload(s->risk->rules, text, len,
				     ht_risk_rule_schema(), &diag);
	free(text);
	if (err)
		riskflow_print_diag(path, &diag);
	return err;
}

static enum ht_err open_model(const struct ht_server_risk_options *o,
			      struct riskflow *rf)
{
	char err[256] = "";
	if (!o->model)
		return HT_OK;
	enum ht_err rc = ht_model_load(o->model, &rf->model, err, sizeof err);
	if (rc)
		fprintf(stderr, "huitong serve: risk model %s: %s\n", o->model,
			err[0] ? err : ht_strerror(rc));
	return rc;
}

enum ht_err riskflow_open(struct server *s)
{
	const struct ht_server_risk_options *o = &s->o.risk;
	if (!o->on)
		return HT_OK;
	if (!o->model && !o->rules) {
		fprintf(stderr, "huitong serve: --risk needs a model or rules\n");
		return HT_ERR_INVALID;
	}
	struct riskflow *rf = calloc(1, sizeof *rf);
	if (!rf)
		return HT_ERR_NOMEM;
	s->risk = rf;
	rf->review_timeout_s = o->review_timeout_s
				       ? o->review_timeout_s
				       : HT_SERVER_RISK_REVIEW_TIMEOUT_S_DEFAULT;
	enum ht_err err = open_model(o, rf);
	if (!err)
		err = ht_rules_holder_create(NULL, &rf->rules);
	if (!err && o->rules)
		err = reload_file(s, o->rules);
	if (!err && (err = ht_block_key_load(s->o.data, true, rf->block_key)))
		fprintf(stderr, "huitong serve: the block-list key %s/risk.key:"
				" %s\n", s->o.data, ht_strerror(err));
	if (!err && (err = ht_blocklist_open(s->o.data, &rf->blocklist)))
		fprintf(stderr, "huitong serve: the block list %s/risk.db: %s\n",
			s->o.data, ht_strerror(err));
	if (!err)
		atomic_store(&rf->block_count, ht_blocklist_count(rf->blocklist));
	if (!err)
		err = held_grow(&rf->held);
	if (!err)
		err = ht_hub_risk_each(s->hub, HT_DECISION_REVIEW, load_held, s);
	if (!err)
		atomic_store(&s->m.risk_held, rf->held.count);
	char msg[256] = "";
	if (!err) {
		struct ht_risk_engine_config cfg = {
			.model = rf->model,
			.rules = rf->rules,
			.block_threshold = o->block_threshold,
			.review_threshold = o->review_threshold,
			.state = {.bytes_max = o->state_bytes,
				  .populate = true},
			.blocklist = rf->blocklist,
			.blocklist_key = rf->block_key,
		};
		err = ht_risk_engine_open(&cfg, &rf->engine, msg, sizeof msg);
		if (err)
			fprintf(stderr, "huitong serve: risk engine: %s\n",
				msg[0] ? msg : ht_strerror(err));
	}
	return err;
}

void riskflow_close(struct server *s)
{
	struct riskflow *rf = s->risk;
	if (!rf)
		return;
	ht_risk_engine_close(rf->engine);
	ht_rules_holder_destroy(rf->rules);
	ht_model_destroy(rf->model);
	ht_blocklist_close(rf->blocklist);
	OPENSSL_cleanse(rf->block_key, sizeof rf->block_key);
	free(rf->held.slot);
	free(rf);
	s->risk = NULL;
}

const char *riskflow_describe(struct server *s, char *buf, size_t size)
{
	struct riskflow *rf = s->risk;
	struct ht_ruleset *rs = ht_rules_holder_acquire(rf->rules);
	snprintf(buf, size, "model %s, rules %s%u (%zu rules, %zu shadow),"
			    " review timeout %u s, %zu block-list entries",
		 rf->model ? ht_model_version(rf->model) : "none",
		 rs ? "version " : "none ", rs ? ht_rules_version(rs) : 0,
		 rs ? ht_rules_count(rs) : 0, rs ? ht_rules_shadow_count(rs) : 0,
		 rf->review_timeout_s, atomic_load(&rf->block_count));
	ht_rules_release(rs);
	return buf;
}

struct ht_rules_holder *riskflow_rules(struct server *s)
{
	return s->risk ? s->risk->rules : NULL;
}

/* ---- one payment ------------------------------------------------------------------ */

/* ISO 4217 alphabetic code of a ledger's numeric one; "XXX" ("no
 * currency") for the rest. */
static const char *currency_of(uint32_t ledger)
{
	static const struct {
		uint32_t code;
		const char *name;
	} table[] = {
		{156, "CNY"}, {344, "HKD"}, {446, "MOP"}, {840, "USD"},
		{978, "EUR"}, {392, "JPY"}, {826, "GBP"},
	};
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (table[i].code == ledger)
			return table[i].name;
	return "XXX";
}

/* The owner of an account as the engine names its participant: "hub"
 * for none (accounts made by `ledger apply`). Owners made through the API
 * are registry ids (at most 56 bytes); a longer one (only a C caller can
 * make it) is cut to fit. */
static const char *owner_of(struct server *s, ht_u128 account)
{
	const char *o = ht_hub_account_owner(s->hub, account);
	return o && *o ? o : "hub";
}

/* s into out[size], cut to fit (as snprintf "%s" cuts), NUL-terminated. */
static void copy_cut(char *out, size_t size, const char *s)
{
	size_t n = strnlen(s, size - 1);
	memcpy(out, s, n);
	out[n] = '\0';
}

/* "<owner>:<account id>", or the account id alone when that does not fit
 * a party reference (64 bytes): ids are unique within the hub either way.
 * Built with memcpy and ht_u128_dec, not snprintf: it runs twice for every
 * transfer scored, on the hub thread. */
static void party_ref(char out[HT_PAYMENT_REF_BYTES], const char *owner,
		      ht_u128 account)
{
	char id[HT_U128_DEC_SIZE];
	size_t id_len = ht_u128_dec(id, account);
	size_t owner_len = strlen(owner);
	char *p = out;
	if (owner_len + 1 + id_len < HT_PAYMENT_REF_BYTES) {
		memcpy(p, owner, owner_len);
		p += owner_len;
		*p++ = ':';
	}
	HT_ASSERT(id_len < HT_PAYMENT_REF_BYTES);
	memcpy(p, id, id_len);
	p[id_len] = '\0';
}

static void payment_of(struct server *s, const struct ht_transfer *t,
		       const struct ht_transfer_risk *tr, int64_t ts_ms,
		       struct ht_payment *p)
{
	memset(p, 0, sizeof *p);
	ht_u128_format(t->id, p->id);
	p->ts_ms = ts_ms;
	const char *dr = owner_of(s, t->debit_account_id);
	const char *cr = owner_of(s, t->credit_account_id);
	party_ref(p->payer, dr, t->debit_account_id);
	party_ref(p->payee, cr, t->credit_account_id);
	copy_cut(p->payer_participant, sizeof p->payer_participant, dr);
	copy_cut(p->payee_participant, sizeof p->payee_participant, cr);
	p->amount = t->amount;
	copy_cut(p->currency, sizeof p->currency, currency_of(t->ledger));
	p->channel = tr && tr->given && tr->channel_given ? tr->channel
							  : HT_CHANNEL_TRANSFER;
	if (tr && tr->given) {
		memcpy(p->device, tr->device, sizeof p->device);
		memcpy(p->ip, tr->ip, sizeof p->ip);
	}
}

/* Does transfer t move money as asked, so that it is scored? Plain and
 * pending transfers (not post/void) with a new id, an amount, and two
 * different accounts that exist: anything else the ledger answers on its
 * own (exists, id_already_failed, a field or account error) and nothing
 * moves, so it joins no history. */
static bool scored(struct server *s, const struct ht_transfer *t)
{
	struct ht_ledger *l = ht_hub_ledger(s->hub);
	if (t->flags & (HT_TRANSFER_POST_PENDING | HT_TRANSFER_VOID_PENDING))
		return false;
	if (t->id == 0 || t->id == HT_U128_MAX || t->amount == 0 ||
	    t->debit_account_id == t->credit_account_id)
		return false;
	if (ht_ledger_transfer_id_used(l, t->id))
		return false;
	return ht_ledger_account_get(l, t->debit_account_id) &&
	       ht_ledger_account_get(l, t->credit_account_id);
}

/* Keep decision d's reasons in the job (the engine's strings live only
 * until its next decision). */
static enum ht_err keep_reasons(struct job *j, struct job_risk *jr,
				const struct ht_risk_decision *d,
				const char *extra)
{
	jr->reasons_off = (uint32_t)j->risk_reasons.len;
	jr->reason_count = 0;
	enum ht_err err = HT_OK;
	for (size_t k = 0; !err && k <= d->reason_count; k++) {
		const char *r = k < d->reason_count ? d->reasons[k] : extra;
		if (!r)
			continue;
		err = ht_buf_append(&j->risk_reasons, r, strlen(r) + 1);
		jr->reason_count++;
	}
	return err;
}

/* Transfer i is held: the ledger gets a pending copy of it (flag added;
 * timeout_s unless it was pending with a timeout of its own). */
static enum ht_err hold(struct job *j, size_t i, uint32_t timeout_s)
{
	if (!j->screened) {
		j->screened = malloc((j->r.count ? j->r.count : 1) *
				     sizeof *j->screened);
		if (!j->screened)
			return HT_ERR_NOMEM;
		memcpy(j->screened, j->r.transfers,
		       j->r.count * sizeof *j->screened);
	}
	struct ht_transfer *t = &j->screened[i];
	if (!((t->flags & HT_TRANSFER_PENDING) && t->timeout_s))
		t->timeout_s = timeout_s;
	t->flags |= HT_TRANSFER_PENDING;
	return HT_OK;
}

/* A job's decisions and shadow hits, added to the metrics once per job
 * rather than with two atomic adds per transfer. */
struct tally {
	uint64_t decisions[HT_DECISION__COUNT];
	uint64_t shadow_hits;
};

/* Decide transfer i of job j and record it in the history. */
static enum ht_err screen_one(struct server *s, struct job *j, size_t i,
			      int64_t ts_ms, uint16_t *refuse,
			      struct tally *tally)
{
	struct riskflow *rf = s->risk;
	struct job_risk *jr = &j->risk[i];
	const struct ht_transfer *t = &j->r.transfers[i];
	struct ht_payment p;
	struct ht_risk_decision d;
	payment_of(s, t, j->r.risk ? &j->r.risk[i] : NULL, ts_ms, &p);
	if (j->kind == JOB_PAY_CREATE)
		payments_party(j, i, &p);
	enum ht_err err = ht_risk_engine_decide(rf->engine, &p, &d);
	if (err)
		return err;
	ht_risk_engine_record(rf->engine, &p);
	const char *extra = NULL;
	enum ht_decision dec = d.decision;
	if (dec == HT_DECISION_REVIEW &&
	    rf->held.count + j->held_new >= HT_SERVER_RISK_HELD_MAX)
		(void)held_prune(&rf->held, ht_hub_ledger(s->hub));
	if (dec == HT_DECISION_REVIEW &&
	    rf->held.count + j->held_new >= HT_SERVER_RISK_HELD_MAX) {
		dec = HT_DECISION_BLOCK; /* cannot hold one more: fail closed */
		extra = REASON_HELD_FULL;
	}
	jr->scored = 1;
	jr->decision = (uint8_t)dec;
	/* in 0..1 whatever the model gave (NaN: 0) */
	jr->score = d.score >= 0 ? (d.score <= 1 ? d.score : 1) : 0;
	jr->rules_version = d.rules_version;
	jr->has_rules = d.has_rules;
	jr->shadow_count = (uint16_t)(d.shadow_count > UINT16_MAX
					      ? UINT16_MAX : d.shadow_count);
	err = keep_reasons(j, jr, &d, extra);
	if (!err && dec == HT_DECISION_BLOCK)
		refuse[i] = HT_R_RISK_BLOCKED;
	if (!err && dec == HT_DECISION_REVIEW) {
		err = hold(j, i, rf->review_timeout_s);
		j->held_new++;
	}
	tally->decisions[dec]++;
	tally->shadow_hits += jr->shadow_count;
	return err;
}

/* Was transfer id held for review (still, or ever)? The set holds the
 * open ones; a resolved one is in the store's decisions. */
static bool was_held(struct server *s, ht_u128 id)
{
	if (held_has(&s->risk->held, id))
		return true;
	struct ht_risk_row *row = malloc(sizeof *row);
	bool held = row && !ht_hub_risk_get(s->hub, id, row) &&
		    row->decision == HT_DECISION_REVIEW;
	free(row);
	return held;
}

/*
 * A create of an id that is taken, or that an earlier event of the same
 * request carries: not scored again (it moves no money of its own: the
 * ledger answers exists*, id_already_failed, or the earlier one's fate),
 * but when that id was held for review the ledger must compare it with
 * the pending form it was stored in, so that an exact retry of a held
 * payment answers `exists` as any retry does. Returns true when it
 * handled event i.
 */
static bool repeat(struct server *s, struct job *j, size_t i,
		   struct idmap *seen, enum ht_err *err)
{
	const struct ht_transfer *t = &j->r.transfers[i];
	size_t k;
	*err = HT_OK;
	if (idmap_get(seen, t->id, &k)) {
		if (j->risk[k].scored && j->risk[k].decision == HT_DECISION_REVIEW)
			*err = hold(j, i, s->risk->review_timeout_s);
		return true;
	}
	*err = idmap_put(seen, t->id, i);
	if (*err)
		return true;
	struct ht_ledger *l = ht_hub_ledger(s->hub);
	if (!ht_ledger_transfer_id_used(l, t->id))
		return false;
	const struct ht_transfer *stored = ht_ledger_transfer_get(l, t->id);
	if (stored && (stored->flags & HT_TRANSFER_PENDING) &&
	    !(t->flags & (HT_TRANSFER_POST_PENDING | HT_TRANSFER_VOID_PENDING)) &&
	    was_held(s, t->id))
		*err = hold(j, i, stored->timeout_s);
	return true;
}

enum ht_err riskflow_screen(struct server *s, struct job *j,
			    const struct ht_transfer **in, uint16_t **refuse)
{
	size_t n = j->r.count;
	*in = j->r.transfers;
	*refuse = NULL;
	if (!s->risk || (j->kind != JOB_CREATE_TRANSFERS &&
			 j->kind != JOB_PAY_CREATE && j->kind != JOB_PAY_DECIDE))
		return HT_OK;
	j->risk = calloc(n ? n : 1, sizeof *j->risk);
	j->refuse = calloc(n ? n : 1, sizeof *j->refuse);
	if (!j->risk || !j->refuse)
		return HT_ERR_NOMEM;
	int64_t ts_ms = (int64_t)(srv_now_ns() / 1000000u);
	j->risk_ts_ms = ts_ms;
	struct idmap seen;
	struct tally tally = {{0}, 0};
	enum ht_err err = idmap_init(&seen, n);
	for (size_t i = 0; !err && i < n; i++) {
		const struct ht_transfer *t = &j->r.transfers[i];
		if (t->id == 0 || t->id == HT_U128_MAX || repeat(s, j, i, &seen, &err))
			continue;
		if (scored(s, t))
			err = screen_one(s, j, i, ts_ms, j->refuse, &tally);
	}
	idmap_free(&seen);
	for (int d = 0; d < HT_DECISION__COUNT; d++)
		if (tally.decisions[d])
			atomic_fetch_add(&s->m.risk_decisions[d],
					 tally.decisions[d]);
	atomic_fetch_add(&s->m.risk_shadow_hits, tally.shadow_hits);
	if (err)
		return err;
	if (j->screened)
		*in = j->screened;
	*refuse = j->refuse;
	return HT_OK;
}

static void riskflow_applied_each(struct riskflow *rf, struct job *j);

void riskflow_applied(struct server *s, struct job *j)
{
	struct riskflow *rf = s->risk;
	if (!rf || !j->risk || !j->results)
		return;
	riskflow_applied_each(rf, j);
	atomic_store(&s->m.risk_held, rf->held.count);
}

/* Remember the reviews j created, forget the held transfers it posted or
 * voided. */
static void riskflow_applied_each(struct riskflow *rf, struct job *j)
{
	for (size_t i = 0; i < j->r.count; i++) {
		const struct ht_transfer *t = &j->r.transfers[i];
		if (j->results[i] != HT_R_OK)
			continue;
		if (t->flags & (HT_TRANSFER_POST_PENDING | HT_TRANSFER_VOID_PENDING))
			held_remove(&rf->held, t->pending_id);
		else if (j->risk[i].scored &&
			 j->risk[i].decision == HT_DECISION_REVIEW &&
			 held_add(&rf->held, t->id))
			/* cannot happen: screen_one kept the count below the
			 * maximum and held_grow's memory was the only other
			 * failure; the transfer is pending either way */
			fprintf(stderr, "huitong serve: cannot remember a"
					" transfer held for review\n");
	}
}

bool riskflow_held(struct server *s, ht_u128 id)
{
	return s->risk && held_has(&s->risk->held, id);
}

bool riskflow_was_held(struct server *s, ht_u128 id)
{
	return s->risk && was_held(s, id);
}

/* ---- stored decisions ------------------------------------------------------------- */

/* The reasons of jr as a JSON array into out (HT_RISK_ROW_REASONS_BYTES):
 * reason codes are snake_case (the rule parser checks them), at most
 * HT_RISK_REASONS_MAX of at most 64 bytes: they always fit; one that
 * would not is left out rather than cut. */
static void reasons_json(const struct job *j, const struct job_risk *jr,
			 char *out)
{
	size_t n = 0, cap = HT_RISK_ROW_REASONS_BYTES;
	const char *r = jr->reason_count ? j->risk_reasons.data + jr->reasons_off
					 : NULL;
	out[n++] = '[';
	for (size_t k = 0; k < jr->reason_count; k++) {
		size_t len = strlen(r);
		bool plain = true;
		for (size_t i = 0; i < len; i++)
			plain &= r[i] != '"' && r[i] != '\\' &&
				 (unsigned char)r[i] >= 0x20;
		if (plain && n + len + 4 < cap) {
			if (n > 1)
				out[n++] = ',';
			out[n++] = '"';
			memcpy(out + n, r, len);
			n += len;
			out[n++] = '"';
		}
		r += len + 1;
	}
	out[n++] = ']';
	out[n] = '\0';
}

enum ht_err riskflow_record(struct server *s, struct job *j)
{
	struct riskflow *rf = s->risk;
	if (!rf || !j->risk)
		return HT_OK;
	struct ht_risk_row *row = malloc(sizeof *row);
	if (!row)
		return HT_ERR_NOMEM;
	/* The row is filled field by field, its texts NUL-terminated (what
	 * ht_hub_risk_note reads), not cleared whole: it is 1.4 KB. */
	copy_cut(row->model_version, sizeof row->model_version,
		 rf->model ? ht_model_version(rf->model) : "");
	enum ht_err err = HT_OK;
	for (size_t i = 0; !err && i < j->r.count; i++) {
		const struct job_risk *jr = &j->risk[i];
		const struct ht_transfer *t = &j->r.transfers[i];
		if (!jr->scored || j->leaf[i] == UINT64_MAX)
			continue; /* no leaf: nothing was stored for it */
		row->id = t->id;
		row->debit_account_id = t->debit_account_id;
		row->credit_account_id = t->credit_account_id;
		row->leaf = 0;
		row->time_ms = j->risk_ts_ms;
		row->score = jr->score;
		row->decision = jr->decision;
		row->has_rules = jr->has_rules;
		row->rules_version = jr->rules_version;
		reasons_json(j, jr, row->reasons);
		err = ht_hub_risk_note(s->hub, j->first + j->leaf[i], row);
	}
	free(row);
	return err;
}

static void read_fail(struct job *j, int status, const char *code,
		      const char *msg, ht_u128 id)
{
	char ids[HT_U128_DEC_SIZE];
	snprintf(j->message, sizeof j->message, "%s %s", msg,
		 ht_u128_format(id, ids));
	j->status = status;
	j->code = code;
}

/* The result of the decision's leaf: ok for a transfer, a refusal's own. */
static const char *leaf_result(struct server *s, uint64_t leaf)
{
	uint8_t data[HT_LEAF_BYTES_MAX];
	size_t len;
	struct ht_event e;
	if (ht_hub_leaf(s->hub, leaf, data, &len) ||
	    ht_event_decode(data, len, &e))
		return NULL;
	if (e.kind == HT_EVENT_TRANSFER)
		return "ok";
	return e.kind == HT_EVENT_REFUSAL ? ht_result_name(e.u.refusal.result)
					  : NULL;
}

static const char *review_state(struct server *s, ht_u128 id)
{
	switch (ht_ledger_pending_state(ht_hub_ledger(s->hub), id)) {
	case HT_PENDING_OPEN: return "pending";
	case HT_PENDING_POSTED: return "posted";
	case HT_PENDING_VOIDED: return "voided";
	case HT_PENDING_EXPIRED: return "expired";
	default: return NULL;
	}
}

/* {"id":…,"decision":…,"score":…,"reasons":[…],"rules_version":N|null,
 *  "model_version":"…"|null,"time_ms":N,"leaf":N,"result":"…"
 *  [,"review":"pending|posted|voided|expired"]} */
enum ht_err riskflow_row_json(struct server *s, const struct ht_risk_row *r,
			      struct ht_buf *b)
{
	char ids[HT_U128_DEC_SIZE], rules[16] = "null";
	const char *res = leaf_result(s, r->leaf);
	const char *st = r->decision == HT_DECISION_REVIEW && res &&
				 !strcmp(res, "ok")
			 ? review_state(s, r->id) : NULL;
	if (r->has_rules)
		snprintf(rules, sizeof rules, "%u", r->rules_version);
	enum ht_err err = ht_buf_printf(
		b, "{\"id\":\"%s\",\"decision\":\"%s\",\"score\":%.6f,"
		   "\"reasons\":%s,\"rules_version\":%s,\"model_version\":",
		ht_u128_format(r->id, ids),
		ht_decision_name((enum ht_decision)r->decision), r->score,
		r->reasons, rules);
	if (!err)
		err = r->model_version[0]
			      ? ht_buf_printf(b, "\"%s\"", r->model_version)
			      : ht_buf_append(b, "null", 4);
	if (!err)
		err = ht_buf_printf(b, ",\"time_ms\":%lld,\"leaf\":%llu,"
				       "\"result\":\"%s\"",
				    (long long)r->time_ms,
				    (unsigned long long)r->leaf,
				    res ? res : "unknown");
	if (!err && st)
		err = ht_buf_printf(b, ",\"review\":\"%s\"", st);
	return err ? err : ht_buf_append(b, "}", 1);
}

void riskflow_read(struct server *s, struct job *j)
{
	struct ht_risk_row *row = malloc(sizeof *row);
	enum ht_err err = row ? ht_hub_risk_get(s->hub, j->id, row)
			      : HT_ERR_NOMEM;
	if (err == HT_ERR_NOT_FOUND ||
	    (!err && !hubq_owns(s, j, row->debit_account_id) &&
	     !hubq_owns(s, j, row->credit_account_id)))
		read_fail(j, 404, "not_found", j->all_access
			  ? "no risk decision for transfer"
			  : "no risk decision of yours for transfer", j->id);
	else if (err)
		read_fail(j, 500, "internal", ht_strerror(err), j->id);
	else if (riskflow_row_json(s, row, &j->body) ||
		 ht_buf_append(&j->body, "\n", 1))
		read_fail(j, 500, "internal", "out of memory for", j->id);
	free(row);
}

/* The reviews still open when the hub starts: held again. */
static int load_held(void *ctx, const struct ht_risk_row *r)
{
	struct server *s = ctx;
	if (ht_ledger_pending_state(ht_hub_ledger(s->hub), r->id) ==
	    HT_PENDING_OPEN &&
	    held_add(&s->risk->held, r->id))
		return 1;
	return 0;
}

/* ---- the reviews waiting for an operator -------------------------------------------- */

static int by_timestamp(const void *a, const void *b)
{
	const struct ht_transfer *x = a, *y = b;
	return x->timestamp < y->timestamp ? -1 : x->timestamp > y->timestamp;
}

/* The open held transfers, oldest first, into *out (count *n). */
static enum ht_err held_open(struct server *s, struct ht_transfer **out,
			     size_t *n)
{
	struct held *h = &s->risk->held;
	struct ht_ledger *l = ht_hub_ledger(s->hub);
	*n = 0;
	*out = malloc((h->count ? h->count : 1) * sizeof **out);
	if (!*out)
		return HT_ERR_NOMEM;
	for (size_t i = 0; i < h->cap; i++) {
		const struct ht_transfer *t;
		if (!h->slot[i] ||
		    ht_ledger_pending_state(l, h->slot[i]) != HT_PENDING_OPEN ||
		    !(t = ht_ledger_transfer_get(l, h->slot[i])))
			continue;
		HT_ASSERT(*n < h->count);
		(*out)[(*n)++] = *t;
	}
	qsort(*out, *n, sizeof **out, by_timestamp);
	return HT_OK;
}

/* {"transfer":{…as a lookup shows it…},"risk":{…as GET …/risk…}} */
static enum ht_err review_json(struct server *s, const struct ht_transfer *t,
			       struct ht_risk_row *row, struct ht_buf *b)
{
	struct ht_buf one = {0};
	enum ht_err err = ht_jsonl_write_transfers(&one, HT_OP_LOOKUP_TRANSFERS,
						   t, 1);
	char *open = err ? NULL : memchr(one.data, '[', one.len);
	if (!err && (!open || one.len < 2))
		err = HT_ERR_INVALID;
	if (!err)
		err = ht_buf_append(b, "{\"transfer\":", 12);
	if (!err)
		err = ht_buf_append(b, open + 1,
				    one.len - 2 - (size_t)(open + 1 - one.data));
	ht_buf_free(&one);
	if (!err)
		err = ht_buf_append(b, ",\"risk\":", 8);
	enum ht_err rerr = err ? err : ht_hub_risk_get(s->hub, t->id, row);
	if (!err)
		err = rerr ? ht_buf_append(b, "null", 4)
			   : riskflow_row_json(s, row, b);
	return err ? err : ht_buf_append(b, "}", 1);
}

void riskflow_reviews(struct server *s, struct job *j)
{
	if (!s->risk) {
		j->status = 404;
		j->code = "not_found";
		snprintf(j->message, sizeof j->message, "risk control is off:"
			 " nothing is held for review (serve --risk)");
		return;
	}
	struct ht_transfer *t = NULL;
	size_t n = 0;
	struct ht_risk_row *row = malloc(sizeof *row);
	enum ht_err err = row ? held_open(s, &t, &n) : HT_ERR_NOMEM;
	size_t limit = j->a && j->a < n ? (size_t)j->a : n;
	if (!err)
		err = ht_buf_printf(&j->body, "{\"count\":%zu,\"reviews\":[", n);
	for (size_t i = 0; !err && i < limit; i++) {
		if (i)
			err = ht_buf_append(&j->body, ",", 1);
		if (!err)
			err = review_json(s, &t[i], row, &j->body);
	}
	if (!err)
		err = ht_buf_append(&j->body, "]}\n", 3);
	if (err) {
		j->status = 500;
		j->code = "internal";
		snprintf(j->message, sizeof j->message, "reviews: %s",
			 ht_strerror(err));
	}
	free(t);
	free(row);
}

/* ---- the shared block list ---------------------------------------------------------- */

static bool risk_on(struct server *s, struct job *j)
{
	if (s->risk)
		return true;
	j->status = 404;
	j->code = "not_found";
	snprintf(j->message, sizeof j->message, "risk control is off: no block"
		 " list in force (serve --risk)");
	return false;
}

static enum ht_err hash_json(struct ht_buf *b, const uint8_t *h)
{
	char hex[2 * HT_BLOCK_HASH_BYTES + 1];
	ht_hex_encode(h, HT_BLOCK_HASH_BYTES, hex);
	return ht_buf_printf(b, "\"%s\"", hex);
}

static const char *block_result_name(enum ht_err r)
{
	switch (r) {
	case HT_OK: return "added";
	case HT_ERR_EXISTS: return "exists";
	case HT_ERR_NOT_FOUND: return "account_not_found";
	case HT_ERR_LIMIT: return "list_full";
	default: return "invalid";
	}
}

void riskflow_block_add(struct server *s, struct job *j)
{
	if (!risk_on(s, j))
		return;
	struct riskflow *rf = s->risk;
	struct ht_block_entry *e = calloc(j->block_n ? j->block_n : 1, sizeof *e);
	enum ht_err *res = calloc(j->block_n ? j->block_n : 1, sizeof *res);
	enum ht_err *pre = calloc(j->block_n ? j->block_n : 1, sizeof *pre);
	enum ht_err err = e && res && pre ? HT_OK : HT_ERR_NOMEM;
	uint64_t now = srv_now_ns();
	/* the entries that can be stored: accounts named by id are hashed
	 * here, by the party reference the engine sees (payment_of) */
	size_t n = 0;
	for (size_t i = 0; !err && i < j->block_n; i++) {
		const struct job_block *b = &j->block[i];
		struct ht_block_entry *x = &e[n];
		x->kind = (enum ht_block_kind)b->kind;
		/* registry ids fit (at most 56 bytes) */
		snprintf(x->reporter, sizeof x->reporter, "%.*s",
			 (int)sizeof x->reporter - 1, j->who);
		snprintf(x->reason, sizeof x->reason, "%s", b->reason);
		x->added_ns = now;
		pre[i] = HT_OK;
		if (!b->by_account) {
			memcpy(x->hash, b->hash, HT_BLOCK_HASH_BYTES);
		} else if (!ht_ledger_account_get(ht_hub_ledger(s->hub),
						  b->account_id)) {
			pre[i] = HT_ERR_NOT_FOUND;
			continue;
		} else {
			char ref[HT_PAYMENT_REF_BYTES];
			party_ref(ref, owner_of(s, b->account_id), b->account_id);
			err = ht_block_hash(rf->block_key, HT_BLOCK_ACCOUNT, ref,
					    strlen(ref), x->hash);
		}
		n++;
	}
	if (!err)
		err = ht_blocklist_add_many(rf->blocklist, e, n, res);
	if (!err)
		err = ht_buf_append(&j->body, "{\"entries\":[", 12);
	for (size_t i = 0, k = 0; !err && i < j->block_n; i++) {
		enum ht_err r = pre[i] ? pre[i] : res[k];
		err = ht_buf_printf(&j->body, "%s{\"index\":%zu,\"kind\":\"%s\","
					      "\"hash\":", i ? "," : "", i,
				    ht_block_kind_name((enum ht_block_kind)
							       j->block[i].kind));
		if (!err)
			err = pre[i] ? ht_buf_append(&j->body, "null", 4)
				     : hash_json(&j->body, e[k].hash);
		if (!err)
			err = ht_buf_printf(&j->body, ",\"result\":\"%s\"}",
					    block_result_name(r));
		if (!pre[i])
			k++;
	}
	atomic_store(&rf->block_count, ht_blocklist_count(rf->blocklist));
	if (!err)
		err = ht_buf_printf(&j->body, "],\"count\":%zu}\n",
				    ht_blocklist_count(rf->blocklist));
	if (err) {
		j->body.len = 0;
		j->status = 500;
		j->code = "internal";
		snprintf(j->message, sizeof j->message, "block list: %s (nothing"
			 " acknowledged)", ht_strerror(err));
	} else if (!s->o.quiet) {
		size_t added = 0;
		for (size_t k = 0; k < n; k++)
			added += !res[k];
		fprintf(stderr, "huitong serve: block list: %zu of %zu entries"
				" added by %s\n", added, j->block_n, j->who);
	}
	free(e);
	free(res);
	free(pre);
}

struct block_list_ctx {
	struct server *s;
	struct job *j;
	size_t shown, total;
	enum ht_err err;
};

static int block_list_one(void *ctx, const struct ht_block_entry *e)
{
	struct block_list_ctx *c = ctx;
	if (!c->j->all_access && strcmp(e->reporter, c->j->who))
		return 0;
	c->total++;
	if (c->shown >= c->j->a)
		return 0;
	struct ht_buf *b = &c->j->body;
	c->err = ht_buf_printf(b, "%s{\"kind\":\"%s\",\"hash\":", c->shown ? ","
								   : "",
			       ht_block_kind_name(e->kind));
	if (!c->err)
		c->err = hash_json(b, e->hash);
	if (!c->err)
		c->err = ht_buf_append(b, ",\"reporter\":", 12);
	if (!c->err)
		c->err = ht_buf_json_string(b, e->reporter, strlen(e->reporter));
	if (!c->err)
		c->err = ht_buf_append(b, ",\"reason\":", 10);
	if (!c->err)
		c->err = ht_buf_json_string(b, e->reason, strlen(e->reason));
	if (!c->err)
		c->err = ht_buf_printf(b, ",\"added_ns\":%llu}",
				       (unsigned long long)e->added_ns);
	c->shown++;
	return c->err ? 1 : 0;
}

void riskflow_block_list(struct server *s, struct job *j)
{
	if (!risk_on(s, j))
		return;
	struct block_list_ctx c = {s, j, 0, 0, HT_OK};
	c.err = ht_buf_append(&j->body, "{\"entries\":[", 12);
	if (!c.err)
		ht_blocklist_each(s->risk->blocklist, block_list_one, &c);
	if (!c.err)
		c.err = ht_buf_printf(&j->body, "],\"count\":%zu}\n", c.total);
	if (c.err) {
		j->status = 500;
		j->code = "internal";
		snprintf(j->message, sizeof j->message, "block list: %s",
			 ht_strerror(c.err));
	}
}

void riskflow_block_remove(struct server *s, struct job *j)
{
	if (!risk_on(s, j))
		return;
	struct ht_blocklist *bl = s->risk->blocklist;
	const struct job_block *b = &j->block[0];
	struct ht_block_entry e;
	char hex[2 * HT_BLOCK_HASH_BYTES + 1];
	ht_hex_encode(b->hash, HT_BLOCK_HASH_BYTES, hex);
	enum ht_err err = ht_blocklist_get(bl, (enum ht_block_kind)b->kind,
					   b->hash, &e);
	if (err == HT_ERR_NOT_FOUND || (!err && !j->all_access &&
					strcmp(e.reporter, j->who))) {
		j->status = 404;
		j->code = "not_found";
		snprintf(j->message, sizeof j->message, "no %s entry %s%s",
			 ht_block_kind_name((enum ht_block_kind)b->kind), hex,
			 j->all_access ? "" : " reported by you");
		return;
	}
	if (!err)
		err = ht_blocklist_remove(bl, e.kind, e.hash);
	atomic_store(&s->risk->block_count, ht_blocklist_count(bl));
	if (!err)
		err = ht_buf_printf(&j->body, "{\"kind\":\"%s\",\"hash\":\"%s\","
					      "\"result\":\"removed\",\"count\":%zu}\n",
				    ht_block_kind_name(e.kind), hex,
				    ht_blocklist_count(bl));
	if (err) {
		j->status = 500;
		j->code = "internal";
		snprintf(j->message, sizeof j->message, "block list: %s",
			 ht_strerror(err));
	} else if (!s->o.quiet) {
		fprintf(stderr, "huitong serve: block list: %s %s removed by %s\n",
			ht_block_kind_name(e.kind), hex, j->who);
	}
}

void riskflow_block_poll(struct server *s)
{
	struct riskflow *rf = s->risk;
	if (!rf || !atomic_exchange(&s->block_reload, false))
		return;
	struct ht_blocklist *fresh;
	enum ht_err err = ht_blocklist_open(s->o.data, &fresh);
	if (err) {
		fprintf(stderr, "huitong serve: SIGHUP: the block list %s/risk.db:"
				" %s; the %zu entries in force stay\n", s->o.data,
			ht_strerror(err), ht_blocklist_count(rf->blocklist));
		return;
	}
	ht_risk_engine_set_blocklist(rf->engine, fresh);
	ht_blocklist_close(rf->blocklist);
	rf->blocklist = fresh;
	atomic_store(&rf->block_count, ht_blocklist_count(fresh));
	fprintf(stderr, "huitong serve: SIGHUP: re-read the block list: %zu"
			" entries\n", ht_blocklist_count(fresh));
}

bool riskflow_blocks(struct server *s, struct ht_payment *p, char *why,
		     size_t why_size)
{
	struct riskflow *rf = s->risk;
	if (!rf)
		return false;
	struct ht_risk_decision d;
	enum ht_err err = ht_risk_engine_decide(rf->engine, p, &d);
	if (err) {
		fprintf(stderr, "huitong serve: risk engine on an ISO 20022"
				" transaction: %s\n", ht_strerror(err));
		return false;
	}
	ht_risk_engine_record(rf->engine, p);
	atomic_fetch_add(&s->m.risk_decisions[d.decision], 1);
	if (d.decision != HT_DECISION_BLOCK)
		return false;
	size_t n = 0;
	n += (size_t)snprintf(why, why_size, "risk: blocked");
	for (size_t k = 0; k < d.reason_count && n < why_size; k++)
		n += (size_t)snprintf(why + n, why_size - n, "%s%s",
				      k ? ", " : " (", d.reasons[k]);
	if (d.reason_count && n < why_size)
		snprintf(why + n, why_size - n, ")");
	return true;
}

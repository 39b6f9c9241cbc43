/*
 * engine.c — the risk engine (risk.h): features, model and rules to one
 * decision per payment.
 *
 * Owner: risk. No allocation per payment: the features, the model's row
 * and the rule hits live in the engine.
 */
#include "huitong/risk.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Hashes of recent identifiers: the keyed hash of a party or device is
 * the same every time, and most payments come from parties seen a moment
 * ago. Two-way set-associative (pairs of slots, the one not used last
 * replaced on a miss). */
#define BCACHE_SLOTS 65536
struct bcache {
	uint64_t tag;                 /* 0: empty */
	uint8_t kind, len;
	bool recent;                  /* the pair's slot used last */
	char value[HT_PAYMENT_REF_BYTES];
	uint8_t hash[HT_BLOCK_HASH_BYTES];
};

struct ht_risk_engine {
	struct ht_risk_state *state;
	const struct ht_blocklist *blocklist;
	struct ht_block_hasher *hasher;
	struct bcache *bcache;        /* BCACHE_SLOTS, with blocklist */
	struct ht_model *model;
	struct ht_rules_holder *rules;
	uint32_t *map;          /* model column -> feature */
	double block, review;
	float f[HT_FEATURE__COUNT];
	double fd[HT_FEATURE__COUNT];
	float *row;             /* the model's row */
	struct ht_ruleset *held; /* the rule set of the last decision */
	struct ht_rule_hit hits[HT_RISK_REASONS_MAX];
};

const struct ht_rule_schema *ht_risk_rule_schema(void)
{
	static struct ht_rule_schema schema;
	static int ready; /* the names are static: a race writes the same */
	if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
		schema.num_count = HT_FEATURE__COUNT;
		schema.num_names = ht_feature_names();
		schema.str_count = HT_FEATURE_STR__COUNT;
		schema.str_names = ht_feature_str_names();
		__atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
	}
	return &schema;
}

enum ht_err ht_risk_engine_open(const struct ht_risk_engine_config *cfg,
				struct ht_risk_engine **out, char *err,
				size_t err_size)
{
	if (err_size)
		err[0] = '\0';
	double block = cfg->block_threshold ? cfg->block_threshold
					    : HT_RISK_BLOCK_THRESHOLD_DEFAULT;
	double review = cfg->review_threshold ? cfg->review_threshold
					      : HT_RISK_REVIEW_THRESHOLD_DEFAULT;
	if (!(block > 0 && block <= 1) || !(review > 0 && review <= block)) {
		snprintf(err, err_size, "thresholds: want 0 < review <= block"
					" <= 1, got review %g, block %g",
			 review, block);
		return HT_ERR_INVALID;
	}
	struct ht_risk_engine *e = calloc(1, sizeof *e);
	if (!e)
		return HT_ERR_NOMEM;
	e->model = cfg->model;
	e->rules = cfg->rules;
	e->block = block;
	e->review = review;
	enum ht_err rc = HT_OK;
	if (e->model) {
		size_t n = ht_model_feature_count(e->model);
		e->map = malloc((n + 1) * sizeof *e->map);
		e->row = malloc((n + 1) * sizeof *e->row);
		if (!e->map || !e->row)
			rc = HT_ERR_NOMEM;
		else
			rc = ht_model_bind(e->model, ht_feature_names(),
					   HT_FEATURE__COUNT, e->map, err,
					   err_size);
	}
	e->blocklist = cfg->blocklist;
	if (!rc && e->blocklist) {
		e->bcache = calloc(BCACHE_SLOTS, sizeof *e->bcache);
		rc = !cfg->blocklist_key ? HT_ERR_INVALID
		     : !e->bcache ? HT_ERR_NOMEM
				  : ht_block_hasher_new(cfg->blocklist_key,
							&e->hasher);
		if (rc)
			snprintf(err, err_size, "block list: %s",
				 !cfg->blocklist_key ? "no key"
						     : ht_strerror(rc));
	}
	if (!rc) {
		rc = ht_risk_state_open(&cfg->state, &e->state);
		if (rc)
			snprintf(err, err_size, "features state: %s",
				 ht_strerror(rc));
	}
	if (rc) {
		ht_risk_engine_close(e);
		return rc;
	}
	*out = e;
	return HT_OK;
}

void ht_risk_engine_close(struct ht_risk_engine *e)
{
	if (!e)
		return;
	if (e->held)
		ht_rules_release(e->held);
	ht_risk_state_close(e->state);
	ht_block_hasher_free(e->hasher);
	free(e->bcache);
	free(e->map);
	free(e->row);
	free(e);
}

static enum ht_decision of_action(enum ht_rule_action a)
{
	return a == HT_RULE_BLOCK ? HT_DECISION_BLOCK
	       : a == HT_RULE_REVIEW ? HT_DECISION_REVIEW
				     : HT_DECISION_ALLOW;
}

static enum ht_decision stricter(enum ht_decision a, enum ht_decision b)
{
	return a > b ? a : b;
}

/* Is (kind, value) on the block list? Through the hash cache. */
static enum ht_err listed(struct ht_risk_engine *e, enum ht_block_kind kind,
			  const char *value, bool *out)
{
	size_t len = strnlen(value, HT_PAYMENT_REF_BYTES);
	*out = false;
	if (!len || len >= HT_PAYMENT_REF_BYTES)
		return HT_OK;
	uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)kind; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)value[i]) * 0x100000001b3ull;
	/* FNV-1a leaves the middle bits of similar strings alike (the last
	 * byte's difference reaches the low and the top bits only): mix */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h |= 1; /* never 0, the empty tag */
	/* two-way: the identifier may be in either slot of its pair; a miss
	 * replaces the one not used last */
	struct bcache *pair = &e->bcache[(h >> 20) & (BCACHE_SLOTS - 2)];
	struct bcache *c = NULL;
	for (int w = 0; w < 2 && !c; w++)
		if (pair[w].tag == h && pair[w].kind == kind &&
		    pair[w].len == len && !memcmp(pair[w].value, value, len))
			c = &pair[w];
	if (!c) {
		c = &pair[pair[0].recent ? 1 : 0];
		enum ht_err rc = ht_block_hasher_hash(e->hasher, kind, value,
						      len, c->hash);
		if (rc) {
			c->tag = 0;
			return rc;
		}
		c->tag = h;
		c->kind = (uint8_t)kind;
		c->len = (uint8_t)len;
		memcpy(c->value, value, len);
	}
	pair[0].recent = c == &pair[0];
	pair[1].recent = c == &pair[1];
	*out = ht_blocklist_contains(e->blocklist, kind, c->hash);
	return HT_OK;
}

/* The block-list reasons of p into reasons (at most 3). */
static enum ht_err blocklist_reasons(struct ht_risk_engine *e,
				     const struct ht_payment *p,
				     const char **reasons, size_t *n)
{
	static const struct {
		enum ht_block_kind kind;
		size_t off;
		const char *reason;
	} checks[] = {
		{HT_BLOCK_ACCOUNT, offsetof(struct ht_payment, payer),
		 HT_RISK_REASON_BLOCKED_PAYER},
		{HT_BLOCK_ACCOUNT, offsetof(struct ht_payment, payee),
		 HT_RISK_REASON_BLOCKED_PAYEE},
		{HT_BLOCK_DEVICE, offsetof(struct ht_payment, device),
		 HT_RISK_REASON_BLOCKED_DEVICE},
	};
	*n = 0;
	if (!e->blocklist || !ht_blocklist_count(e->blocklist))
		return HT_OK;
	for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
		bool hit;
		/* no entry of the kind: nothing to hash */
		if (!ht_blocklist_count_kind(e->blocklist, checks[i].kind))
			continue;
		enum ht_err rc = listed(e, checks[i].kind,
					(const char *)p + checks[i].off, &hit);
		if (rc)
			return rc;
		if (hit)
			reasons[(*n)++] = checks[i].reason;
	}
	return HT_OK;
}

enum ht_err ht_risk_engine_decide(struct ht_risk_engine *e,
				  const struct ht_payment *p,
				  struct ht_risk_decision *out)
{
	memset(out, 0, sizeof *out);
	out->model_score = NAN;
	size_t listed_n;
	enum ht_err lrc = blocklist_reasons(e, p, out->reasons, &listed_n);
	if (lrc)
		return lrc;
	out->reason_count = listed_n;
	ht_features_compute(e->state, p, e->f);
	enum ht_decision model_d = HT_DECISION_ALLOW;
	if (e->model) {
		ht_model_gather(e->model, e->map, e->f, e->row);
		out->model_score = ht_model_score(e->model, e->row);
		out->model_version = ht_model_version(e->model);
		if (out->model_score >= e->block)
			model_d = HT_DECISION_BLOCK;
		else if (out->model_score >= e->review)
			model_d = HT_DECISION_REVIEW;
	}
	out->decision = model_d;
	out->shadow_decision = model_d;
	if (e->held) {
		ht_rules_release(e->held);
		e->held = NULL;
	}
	if (e->rules)
		e->held = ht_rules_holder_acquire(e->rules); /* NULL: none */
	if (e->held) {
		for (size_t i = 0; i < HT_FEATURE__COUNT; i++)
			e->fd[i] = e->f[i];
		const char *str[HT_FEATURE_STR__COUNT];
		ht_feature_strings(p, str);
		struct ht_rule_input in = {e->fd, str, p->payer_participant};
		struct ht_rule_outcome o;
		/* room for the block list's reasons and the model's */
		size_t room = HT_RISK_REASONS_MAX - 1 - listed_n;
		enum ht_err rc = ht_rules_eval(e->held, &in, e->hits, room, &o);
		if (rc)
			return rc;
		out->rule_score = o.score;
		out->rules_version = ht_rules_version(e->held);
		out->has_rules = true;
		out->decision = stricter(out->decision, of_action(o.action));
		out->shadow_decision = stricter(out->shadow_decision,
						of_action(o.shadow_action));
		size_t hits = o.hit_count < room ? o.hit_count : room;
		for (size_t i = 0; i < hits; i++) {
			const struct ht_rule_info *r = e->hits[i].rule;
			if (r->shadow)
				out->shadow_count++;
			else
				out->reasons[out->reason_count++] = r->reason;
		}
	}
	if (model_d != HT_DECISION_ALLOW)
		out->reasons[out->reason_count++] = HT_RISK_REASON_MODEL;
	if (listed_n) {
		out->decision = HT_DECISION_BLOCK;
		out->shadow_decision = HT_DECISION_BLOCK;
	}
	out->score = e->model ? out->model_score : out->rule_score / 100.0;
	return HT_OK;
}

void ht_risk_engine_features(const struct ht_risk_engine *e,
			     const struct ht_payment *p, float *out)
{
	ht_features_compute(e->state, p, out);
}

void ht_risk_engine_set_blocklist(struct ht_risk_engine *e,
				  const struct ht_blocklist *bl)
{
	HT_ASSERT(e->hasher != NULL && bl != NULL);
	e->blocklist = bl;
}

void ht_risk_engine_record(struct ht_risk_engine *e, const struct ht_payment *p)
{
	ht_features_update(e->state, p);
}

void ht_risk_engine_stats(const struct ht_risk_engine *e,
			  struct ht_risk_state_stats *out)
{
	ht_risk_state_stats(e->state, out);
}

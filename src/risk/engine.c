/*
 * engine.c — the risk engine (risk.h): features, model and rules to one
 * decision per payment.
 *
 * Owner: risk. No allocation per payment: the features, the model's row
 * and the rule hits live in the engine.
 */
#include "huitong/risk.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ht_risk_engine {
	struct ht_risk_state *state;
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

enum ht_err ht_risk_engine_decide(struct ht_risk_engine *e,
				  const struct ht_payment *p,
				  struct ht_risk_decision *out)
{
	memset(out, 0, sizeof *out);
	out->model_score = NAN;
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
		enum ht_err rc = ht_rules_eval(e->held, &in, e->hits,
					       HT_RISK_REASONS_MAX - 1, &o);
		if (rc)
			return rc;
		out->rule_score = o.score;
		out->rules_version = ht_rules_version(e->held);
		out->has_rules = true;
		out->decision = stricter(out->decision, of_action(o.action));
		out->shadow_decision = stricter(out->shadow_decision,
						of_action(o.shadow_action));
		size_t hits = o.hit_count < HT_RISK_REASONS_MAX - 1
				      ? o.hit_count : HT_RISK_REASONS_MAX - 1;
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
	out->score = e->model ? out->model_score : out->rule_score / 100.0;
	return HT_OK;
}

void ht_risk_engine_features(const struct ht_risk_engine *e,
			     const struct ht_payment *p, float *out)
{
	ht_features_compute(e->state, p, out);
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

/*
 * risk.h — the risk engine: one decision per payment from the stateful
 * features (features.h), the rules in force (rules.h) and the
 * gradient-boosted model (model.h). Behind `huitong risk score`, `risk
 * train` (features only) and, next, the hub's payment path.
 *
 * Owner: risk. Per payment:
 *
 *   ht_risk_engine_decide(e, &p, &d);  features, model score, rules
 *   ... act on d.decision ...
 *   ht_risk_engine_record(e, &p);      the payment joins the history
 *
 * A payment whose payer, payee or device is on the shared block list
 * (blocklist.h) is blocked. Otherwise the decision is the strictest of the model's (score >= block threshold:
 * block; >= review threshold: review) and the enforced rules' action.
 * Every payment that was scored is recorded, blocked ones included: an
 * attempt is history too (a card tester's blocked tries are what makes
 * the next one suspect), and it keeps the features a payment sees the same
 * offline, in training and live, whatever the decisions were.
 *
 * One thread uses an engine (the features state has one writer); the rule
 * set is taken from a holder, so another thread may reload it meanwhile.
 */
#ifndef HUITONG_RISK_H
#define HUITONG_RISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "huitong/blocklist.h"
#include "huitong/features.h"
#include "huitong/model.h"
#include "huitong/payment.h"
#include "huitong/riskeval.h"
#include "huitong/rules.h"

/* Reasons one decision can carry (rules fired and the model's). */
#define HT_RISK_REASONS_MAX 16
/* Default thresholds on the model's probability (docs/risk.md). */
#define HT_RISK_BLOCK_THRESHOLD_DEFAULT 0.90
#define HT_RISK_REVIEW_THRESHOLD_DEFAULT 0.50
/* The reason a model decision gives. */
#define HT_RISK_REASON_MODEL "model_score"
/* The reasons of a shared block-list hit (blocklist.h): the payer's or the
 * payee's party reference, or the device, is listed. */
#define HT_RISK_REASON_BLOCKED_PAYER "blocklisted_payer"
#define HT_RISK_REASON_BLOCKED_PAYEE "blocklisted_payee"
#define HT_RISK_REASON_BLOCKED_DEVICE "blocklisted_device"

struct ht_risk_engine_config {
	struct ht_model *model;     /* borrowed; NULL: rules only */
	struct ht_rules_holder *rules; /* borrowed; NULL: model only */
	double block_threshold;     /* 0: the default */
	double review_threshold;    /* 0: the default; <= block_threshold */
	struct ht_risk_config state; /* the features state's budget */
	/* The shared block list (borrowed; NULL: none) and the key its
	 * hashes are made with (HT_BLOCK_KEY_BYTES, copied at open). A payment
	 * whose payer or payee (kind account, the party reference) or device
	 * is listed is blocked whatever the model and rules say, with the
	 * HT_RISK_REASON_BLOCKED_* reasons first. The list may change between
	 * decisions (on the engine's thread). */
	const struct ht_blocklist *blocklist;
	const uint8_t *blocklist_key;
};

struct ht_risk_decision {
	enum ht_decision decision;
	double score;        /* the model's probability; without a model the
				rules' score / 100 */
	double model_score;  /* NaN without a model */
	unsigned rule_score; /* enforced rules' score, 0..100 */
	enum ht_decision shadow_decision; /* with shadow rules enforced too */
	size_t reason_count;
	/* snake_case reason codes: fired enforced rules', then the model's;
	 * static or owned by the rule set held until the next decide */
	const char *reasons[HT_RISK_REASONS_MAX];
	size_t shadow_count;  /* shadow rules that fired (logged, not acted on) */
	uint32_t rules_version;   /* when has_rules */
	bool has_rules;           /* a rule set was in force */
	const char *model_version; /* NULL without a model */
};

struct ht_risk_engine;

/*
 * Open an engine over cfg. The model's columns are bound to the feature
 * catalogue here: a model naming a feature huitong does not compute is
 * refused (HT_ERR_NOT_FOUND, err names it). Other errors: HT_ERR_INVALID
 * (thresholds outside (0, 1], review above block), those of
 * ht_risk_state_open, HT_ERR_NOMEM.
 */
enum ht_err ht_risk_engine_open(const struct ht_risk_engine_config *cfg,
				struct ht_risk_engine **out, char *err,
				size_t err_size);
void ht_risk_engine_close(struct ht_risk_engine *e);

/* Decide p against the history recorded so far; changes nothing but the
 * engine's scratch (valid until the next call). */
enum ht_err ht_risk_engine_decide(struct ht_risk_engine *e,
				  const struct ht_payment *p,
				  struct ht_risk_decision *out);

/* The features of p against the history (what decide used), into
 * out[HT_FEATURE__COUNT]; for training. */
void ht_risk_engine_features(const struct ht_risk_engine *e,
			     const struct ht_payment *p, float *out);

/* Consult bl from the next decision on instead of the block list given at
 * open (same key; borrowed). Only for an engine opened with a block list. */
void ht_risk_engine_set_blocklist(struct ht_risk_engine *e,
				  const struct ht_blocklist *bl);

/* Record p in the history. */
void ht_risk_engine_record(struct ht_risk_engine *e, const struct ht_payment *p);

/* The features state's counters (entries, evictions, ...). */
void ht_risk_engine_stats(const struct ht_risk_engine *e,
			  struct ht_risk_state_stats *out);

/* The rule schema of the feature catalogue: numbers are the features,
 * strings the payment's attributes (features.h). Static. */
const struct ht_rule_schema *ht_risk_rule_schema(void);

#endif

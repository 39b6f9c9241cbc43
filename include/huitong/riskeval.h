/*
 * riskeval.h — how good the risk engine's decisions are: precision,
 * recall and the area under the precision-recall curve of scores against
 * the simulator's ground truth, overall and per fraud type. Behind
 * `huitong risk eval` and the figures of docs/risk.md.
 *
 * Owner: risk. Pure computation over an array the caller fills; no I/O.
 */
#ifndef HUITONG_RISKEVAL_H
#define HUITONG_RISKEVAL_H

#include <stddef.h>
#include <stdint.h>

#include "huitong/common.h"
#include "huitong/payment.h"

/* What the engine decided for a payment (DESIGN.md: allow|review|block). */
enum ht_decision {
	HT_DECISION_ALLOW = 0,
	HT_DECISION_REVIEW,
	HT_DECISION_BLOCK,
	HT_DECISION__COUNT
};

/* Static name ("allow", "review", "block"), NULL when d is not one. */
const char *ht_decision_name(enum ht_decision d);
/* The decision named s[0..len): HT_OK or HT_ERR_INVALID. */
enum ht_err ht_decision_parse(const char *s, size_t len, enum ht_decision *out);

/* One scored payment with its truth. */
struct ht_eval_item {
	float score;       /* 0..1, higher is more suspicious */
	uint8_t fraud;     /* 1 when the label says fraud */
	uint8_t type;      /* enum ht_fraud_type */
	uint8_t decision;  /* enum ht_decision */
};

/* Figures for one population of positives (all fraud, or one type)
 * against every legitimate payment. */
struct ht_eval_figures {
	uint64_t positives;
	double auc_pr;          /* average precision (sklearn's definition):
				   sum over thresholds of (R_k - R_k-1) * P_k,
				   tied scores taken together; NaN with no
				   positives */
	double recall_block;    /* positives decided block / positives */
	double recall_flagged;  /* positives decided block or review */
};

struct ht_eval_report {
	uint64_t payments, legit;
	struct ht_eval_figures all;
	struct ht_eval_figures type[HT_FRAUD__COUNT]; /* [0] (none) unused */
	double precision_block;   /* fraud among the blocked (NaN: none) */
	double precision_flagged; /* fraud among blocked or reviewed */
	double legit_blocked;     /* legitimate payments blocked / legit */
	double legit_reviewed;    /* legitimate payments held for review */
};

/*
 * Compute the report over items[0..n). Sorts items in place (by score,
 * descending). HT_ERR_INVALID for a NULL array with n > 0, a score that
 * is not a finite number in [0, 1], an unknown type or decision, or a
 * fraud flag that disagrees with the type; HT_ERR_NOMEM.
 */
enum ht_err ht_eval_compute(struct ht_eval_item *items, size_t n,
			    struct ht_eval_report *out);

#endif

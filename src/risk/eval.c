/*
 * eval.c — precision, recall and average precision of risk scores against
 * ground truth (riskeval.h).
 *
 * Owner: risk. One sort by score, then one pass per population (all
 * fraud, each type) that walks the thresholds from the highest score down,
 * tied scores as one step, as sklearn's average_precision_score does, so
 * figures compare with what a data scientist computes from the same files.
 */
#include "huitong/riskeval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const decision_names[HT_DECISION__COUNT] = {
	"allow", "review", "block"};

const char *ht_decision_name(enum ht_decision d)
{
	return (unsigned)d < HT_DECISION__COUNT ? decision_names[d] : NULL;
}

enum ht_err ht_decision_parse(const char *s, size_t len, enum ht_decision *out)
{
	for (unsigned d = 0; d < HT_DECISION__COUNT; d++)
		if (strlen(decision_names[d]) == len &&
		    !memcmp(decision_names[d], s, len)) {
			*out = (enum ht_decision)d;
			return HT_OK;
		}
	return HT_ERR_INVALID;
}

static int by_score_desc(const void *a, const void *b)
{
	float x = ((const struct ht_eval_item *)a)->score;
	float y = ((const struct ht_eval_item *)b)->score;
	return (x < y) - (x > y);
}

/* Is item i a positive of population `type` (0: any fraud)? Items of other
 * fraud types are left out of a type's population (neither positive nor
 * negative). */
static int role(const struct ht_eval_item *it, unsigned type)
{
	if (!it->fraud)
		return 0;               /* negative */
	if (!type || it->type == type)
		return 1;               /* positive */
	return -1;                      /* not in this population */
}

static void figures(const struct ht_eval_item *items, size_t n, unsigned type,
		    struct ht_eval_figures *f)
{
	uint64_t pos = 0, blocked = 0, flagged = 0;
	for (size_t i = 0; i < n; i++) {
		if (role(&items[i], type) != 1)
			continue;
		pos++;
		blocked += items[i].decision == HT_DECISION_BLOCK;
		flagged += items[i].decision != HT_DECISION_ALLOW;
	}
	f->positives = pos;
	f->recall_block = pos ? (double)blocked / (double)pos : NAN;
	f->recall_flagged = pos ? (double)flagged / (double)pos : NAN;
	if (!pos) {
		f->auc_pr = NAN;
		return;
	}
	double ap = 0, prev_recall = 0;
	uint64_t tp = 0, fp = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		for (; j < n && items[j].score == items[i].score; j++) {
			int r = role(&items[j], type);
			tp += r == 1;
			fp += r == 0;
		}
		i = j;
		double recall = (double)tp / (double)pos;
		if (tp + fp && recall > prev_recall) {
			ap += (recall - prev_recall) * ((double)tp / (double)(tp + fp));
			prev_recall = recall;
		}
	}
	f->auc_pr = ap;
}

enum ht_err ht_eval_compute(struct ht_eval_item *items, size_t n,
			    struct ht_eval_report *out)
{
	if (!out || (!items && n))
		return HT_ERR_INVALID;
	memset(out, 0, sizeof *out);
	uint64_t blocked = 0, blocked_fraud = 0, flagged = 0, flagged_fraud = 0;
	uint64_t legit_blocked = 0, legit_reviewed = 0;
	for (size_t i = 0; i < n; i++) {
		const struct ht_eval_item *it = &items[i];
		if (!isfinite(it->score) || it->score < 0 || it->score > 1 ||
		    it->type >= HT_FRAUD__COUNT ||
		    it->decision >= HT_DECISION__COUNT ||
		    (it->fraud != 0) != (it->type != HT_FRAUD_NONE) ||
		    it->fraud > 1)
			return HT_ERR_INVALID;
		bool b = it->decision == HT_DECISION_BLOCK;
		bool fl = it->decision != HT_DECISION_ALLOW;
		blocked += b;
		flagged += fl;
		blocked_fraud += b && it->fraud;
		flagged_fraud += fl && it->fraud;
		if (!it->fraud) {
			out->legit++;
			legit_blocked += b;
			legit_reviewed += it->decision == HT_DECISION_REVIEW;
		}
	}
	out->payments = n;
	if (n)
		qsort(items, n, sizeof *items, by_score_desc);
	figures(items, n, 0, &out->all);
	for (unsigned t = 1; t < HT_FRAUD__COUNT; t++)
		figures(items, n, t, &out->type[t]);
	out->precision_block = blocked ? (double)blocked_fraud / (double)blocked : NAN;
	out->precision_flagged = flagged ? (double)flagged_fraud / (double)flagged
					 : NAN;
	out->legit_blocked = out->legit ? (double)legit_blocked / (double)out->legit
					: NAN;
	out->legit_reviewed = out->legit ? (double)legit_reviewed / (double)out->legit
					 : NAN;
	return HT_OK;
}

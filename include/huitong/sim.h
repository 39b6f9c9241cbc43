/*
 * sim.h — the payment simulator: a synthetic population (customers,
 * merchants, employers, utilities, cash agents at five participants) with
 * realistic normal behaviour and injected fraud, written as interchange
 * JSONL (payment.h) with one ground-truth label per payment. It feeds the
 * risk engine's training and evaluation and the benchmarks. The model is
 * described in docs/sim.md.
 *
 * Owner: sim. Deterministic: the same options (seed included) give the
 * same payments, byte for byte, on the same build; a run of D days is a
 * prefix of a run of more days with the same seed. Memory is bounded by
 * the population and one day's payments; output is generated day by day
 * in time order.
 */
#ifndef HUITONG_SIM_H
#define HUITONG_SIM_H

#include <stdint.h>
#include <stdio.h>

#include "huitong/common.h"
#include "huitong/payment.h"

/* Parties: at least enough for every kind of party and a mule ring; at
 * most a million, so the population (~200 B each) and one day's payments
 * (~2.9 per party, 80 B each while sorted) stay under 1 GiB. */
#define HT_SIM_PARTIES_MIN 100u
#define HT_SIM_PARTIES_MAX 1000000u
/* Days: ten years. */
#define HT_SIM_DAYS_MAX 3660u
/* Share of fraudulent payments: above a half the "fraud" is the normal. */
#define HT_SIM_FRAUD_RATE_MAX 0.5
/* Raw events one day may hold per party before the run is refused: far
 * above any day the model makes (~2.9 per party), a guard, not a knob. */
#define HT_SIM_DAY_EVENTS_PER_PARTY_MAX 256u

struct ht_sim_options {
	uint64_t seed;       /* any value; different seeds, different worlds */
	uint32_t parties;    /* HT_SIM_PARTIES_MIN..HT_SIM_PARTIES_MAX */
	uint32_t days;       /* 1..HT_SIM_DAYS_MAX */
	int64_t start_ms;    /* midnight UTC of the first day, Unix ms */
	double fraud_rate;   /* 0..HT_SIM_FRAUD_RATE_MAX, share of payments */
};

/* Defaults: seed 1, 10,000 parties, 30 days from 2026-03-01, fraud rate
 * 0.005 (about 860,000 payments). */
void ht_sim_options_default(struct ht_sim_options *o);

struct ht_sim_stats {
	uint64_t payments;                   /* handed out so far */
	uint64_t by_type[HT_FRAUD__COUNT];   /* of those, per label type */
	uint64_t dropped;       /* fraud follow-ups falling after the last day */
	uint32_t days_generated; /* days generated so far, 0..days */
	uint32_t days;
	uint32_t customers, merchants, employers, billers, agents, mules;
};

struct ht_sim;

/*
 * Build the population for o and get ready to hand out payments. The
 * options are copied. Errors: HT_ERR_INVALID (start_ms not a midnight, a
 * fraud rate that is not a number in range, the run ending after year
 * 9999), HT_ERR_LIMIT (parties or days out of range), HT_ERR_NOMEM.
 * Free with ht_sim_destroy.
 */
enum ht_err ht_sim_create(const struct ht_sim_options *o, struct ht_sim **out);

/* Free everything; accepts NULL. */
void ht_sim_destroy(struct ht_sim *s);

/*
 * The next payment in time order (ts never decreases; ids "t-000000001",
 * "t-000000002", … in order) and its label. Returns HT_OK,
 * HT_ERR_NOT_FOUND after the last one (and on every later call),
 * HT_ERR_NOMEM or HT_ERR_LIMIT (a day too big to hold, see
 * HT_SIM_DAY_EVENTS_PER_PARTY_MAX); after an error other than
 * HT_ERR_NOT_FOUND the simulator is unusable.
 */
enum ht_err ht_sim_next(struct ht_sim *s, struct ht_payment *p,
			struct ht_label *l);

/* Counts so far (see struct ht_sim_stats). */
void ht_sim_stats(const struct ht_sim *s, struct ht_sim_stats *out);

/* Called by ht_sim_write every HT_SIM_PROGRESS_EVERY payments and at the
 * end; st is valid during the call only. */
typedef void ht_sim_progress_fn(void *ctx, const struct ht_sim_stats *st);
#define HT_SIM_PROGRESS_EVERY 65536u

/*
 * Write every remaining payment to payments and its label to labels (one
 * line each, "\n"-terminated), buffered in large blocks, then flush both.
 * progress may be NULL. The FILEs are borrowed: closing them (and checking
 * that close) is the caller's. Errors: HT_ERR_IO (a write or flush
 * failed; the files are incomplete), those of ht_sim_next.
 */
enum ht_err ht_sim_write(struct ht_sim *s, FILE *payments, FILE *labels,
			 ht_sim_progress_fn *progress, void *ctx);

/* A date "YYYY-MM-DD" (UTC midnight) as Unix ms. HT_ERR_INVALID when s is
 * not one or names no real day from 1970 to 9999. */
enum ht_err ht_sim_date_parse(const char *s, int64_t *day_ms);

#endif

/*
 * world.c — the simulator's population: customers, merchants, employers,
 * utilities and cash agents spread over five participants, each customer
 * with habits (favourite shops, a circle of friends, bills, an employer,
 * rent, devices, a home network), a few mule accounts in rings; and the
 * distributions every generator draws from (daily rhythms, ticket sizes).
 *
 * Owner: sim. Built once per run from stream 0 of the seed, so the same
 * seed gives the same world whatever the number of days or the fraud rate.
 * Memory is O(parties) (about 200 bytes each) and allocated here only.
 * This file decides who exists and what is typical; behave.c and fraud.c
 * decide what happens each day.
 */
#include "sim_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const sim_participant_names[SIM_PARTICIPANTS] = {
	"bankA", "bankB", "bankC", "payA", "payB",
};

/* Tickets in fen. Shares sum to 1: they are both the share of merchants
 * and (popularity aside) the share of shop payments. */
const struct sim_category_info sim_categories[SIM_CAT__COUNT] = {
	[SIM_CAT_GROCERY] = {"grocery", 5411, 4500, 0.8, SIM_PROF_RETAIL, 0.18, 0.30},
	[SIM_CAT_RESTAURANT] = {"restaurant", 5812, 6000, 0.6, SIM_PROF_MEAL, 0.15, 0.25},
	[SIM_CAT_FAST_FOOD] = {"fast_food", 5814, 2000, 0.5, SIM_PROF_MEAL, 0.17, 0.10},
	[SIM_CAT_CONVENIENCE] = {"convenience", 5499, 1500, 0.7, SIM_PROF_RETAIL, 0.14, 0.10},
	[SIM_CAT_TRANSPORT] = {"transport", 4111, 400, 0.4, SIM_PROF_COMMUTE, 0.10, 0.05},
	[SIM_CAT_FUEL] = {"fuel", 5541, 25000, 0.4, SIM_PROF_RETAIL, 0.04, 0.50},
	[SIM_CAT_PHARMACY] = {"pharmacy", 5912, 6000, 0.7, SIM_PROF_RETAIL, 0.04, 0.35},
	[SIM_CAT_CLOTHING] = {"clothing", 5651, 20000, 0.8, SIM_PROF_RETAIL, 0.05, 0.45},
	[SIM_CAT_ELECTRONICS] = {"electronics", 5732, 80000, 1.0, SIM_PROF_RETAIL, 0.02, 0.60},
	[SIM_CAT_MARKETPLACE] = {"marketplace", 5399, 9000, 1.0, SIM_PROF_ONLINE, 0.08, 0.40},
	[SIM_CAT_DIGITAL] = {"digital", 5816, 3000, 1.0, SIM_PROF_ONLINE, 0.02, 0.50},
	[SIM_CAT_JEWELRY] = {"jewelry", 5944, 200000, 0.9, SIM_PROF_RETAIL, 0.01, 0.70},
};

const struct sim_bill_info sim_bills[SIM_BILL_TYPES] = {
	{"electricity", 20000, 0.5, 0.25, 0.75},
	{"water", 6000, 0.4, 0.20, 0.50},
	{"gas", 8000, 0.5, 0.30, 0.40},
	{"mobile", 8800, 0.4, 0.05, 0.90},
	{"broadband", 10000, 0.3, 0.00, 0.50},
};

/* Hour-of-day weights of each rhythm: few payments at night, lunch and
 * evening peaks; fraud's odd hours are the night. */
static const float hour_weights[SIM_PROF__COUNT][24] = {
	[SIM_PROF_RETAIL] = {1, .6, .3, .2, .2, .6, 2, 4, 6, 8, 10, 11, 12, 11,
			     10, 10, 11, 12, 14, 15, 14, 10, 5, 2},
	[SIM_PROF_MEAL] = {1, .6, .3, .2, .2, 1, 4, 9, 6, 3, 5, 14, 18, 8, 3, 3,
			   5, 13, 18, 12, 6, 4, 3, 2},
	[SIM_PROF_COMMUTE] = {.3, .2, .1, .1, .2, 2, 8, 18, 16, 6, 3, 3, 3, 3, 3,
			      4, 7, 16, 14, 6, 3, 2, 1, .6},
	[SIM_PROF_ONLINE] = {3, 2, 1, .8, .5, .5, 1, 2, 3, 4, 5, 6, 7, 6, 6, 6,
			     6, 7, 8, 10, 12, 13, 11, 7},
	[SIM_PROF_SOCIAL] = {1, .6, .3, .2, .2, .3, 1, 3, 5, 6, 7, 8, 9, 8, 7, 7,
			     7, 8, 9, 10, 10, 8, 5, 2},
	[SIM_PROF_OFFICE] = {.1, .1, .1, .1, .1, .1, .3, 1, 4, 10, 12, 11, 8, 9,
			     10, 10, 8, 5, 2, 1, .5, .3, .2, .1},
	[SIM_PROF_ODD] = {10, 9, 8, 7, 6, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			  0, 0, 0, 0, 6, 9},
};

/* Share of each participant among customers, merchants and the rest
 * (employers and utilities bank with banks). */
static const double customer_split[SIM_PARTICIPANTS] = {0.30, 0.25, 0.15, 0.20, 0.10};
static const double merchant_split[SIM_PARTICIPANTS] = {0.15, 0.15, 0.10, 0.35, 0.25};
static const double bank_split[SIM_PARTICIPANTS] = {0.40, 0.35, 0.25, 0, 0};

/* ---- distributions ------------------------------------------------------- */

double sim_normal(struct sim_rng *r)
{
	/* The loop ends with probability 1 - (1 - pi/4)^64 per call, so the
	 * bound is never met in practice; it only makes the loop finite. */
	for (int i = 0; i < 64; i++) {
		double u = 2 * sim_unit(r) - 1, v = 2 * sim_unit(r) - 1;
		double s = u * u + v * v;
		if (s > 0 && s < 1)
			return u * sqrt(-2 * log(s) / s);
	}
	return 0;
}

uint32_t sim_poisson(struct sim_rng *r, double lambda, uint32_t cap)
{
	if (!(lambda > 0))
		return 0;
	if (lambda > 30)
		lambda = 30;
	double limit = exp(-lambda), p = sim_unit(r);
	uint32_t k = 0;
	while (p > limit && k < cap) {
		p *= sim_unit(r);
		k++;
	}
	return k;
}

int64_t sim_time_of_day(struct sim_rng *r, enum sim_profile prof)
{
	const float *w = hour_weights[prof];
	float total = 0;
	for (int h = 0; h < 24; h++)
		total += w[h];
	float x = (float)sim_unit(r) * total;
	int h = 0;
	while (h < 23 && (x >= w[h] || w[h] == 0)) {
		x -= w[h];
		h++;
	}
	return h * SIM_MS_PER_HOUR + (int64_t)sim_below(r, SIM_MS_PER_HOUR);
}

static unsigned pick_split(struct sim_rng *r, const double split[SIM_PARTICIPANTS])
{
	double x = sim_unit(r);
	for (unsigned i = 0; i + 1 < SIM_PARTICIPANTS; i++) {
		if (x < split[i])
			return i;
		x -= split[i];
	}
	return SIM_PARTICIPANTS - 1;
}

/* Index in cdf[0..n) of a draw (binary search over the cumulative sums). */
static uint32_t pick_cdf(const double *cdf, uint32_t n, struct sim_rng *r)
{
	double x = sim_unit(r) * cdf[n - 1];
	uint32_t lo = 0, hi = n - 1;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (cdf[mid] > x)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* ---- picks --------------------------------------------------------------- */

uint32_t sim_pick_merchant(const struct sim_world *w, struct sim_rng *r)
{
	uint32_t n = w->count[SIM_MERCHANT];
	return w->first[SIM_MERCHANT] + pick_cdf(w->merchant_cdf, n, r);
}

uint32_t sim_pick_in_category(const struct sim_world *w, struct sim_rng *r,
			      enum sim_category c)
{
	uint32_t lo = w->cat_first[c], hi = w->cat_first[c + 1];
	HT_ASSERT(hi > lo); /* every category has a merchant (world_merchants) */
	return w->by_category[lo + sim_below(r, hi - lo)];
}

uint32_t sim_pick_agent(const struct sim_world *w, struct sim_rng *r,
			unsigned p)
{
	/* Agent k belongs to participant k % SIM_PARTICIPANTS. */
	uint32_t n = w->count[SIM_AGENT];
	uint32_t of_p = (n - p + SIM_PARTICIPANTS - 1) / SIM_PARTICIPANTS;
	HT_ASSERT(p < SIM_PARTICIPANTS && of_p > 0);
	return w->first[SIM_AGENT] + p + SIM_PARTICIPANTS * sim_below(r, of_p);
}

uint32_t sim_pick_victim(const struct sim_world *w, struct sim_rng *r)
{
	uint32_t c = 0;
	for (int i = 0; i < 16; i++) {
		c = sim_below(r, w->count[SIM_CUSTOMER]);
		if (!(w->party[c].flags & SIM_F_MULE))
			break;
	}
	return c;
}

uint32_t sim_home_ip(const struct sim_party *c, uint32_t index)
{
	return c->net | (2 + sim_hash32(index ^ 0x5bd1e995u) % 250);
}

uint32_t sim_customer_ip(const struct sim_party *c, uint32_t index,
			 struct sim_rng *r)
{
	if (sim_chance(r, 0.65))
		return sim_home_ip(c, index);
	/* Mobile carrier NAT (100.64.0.0/10): a small pool per customer. */
	uint32_t h = sim_hash32(index ^ 0x2545f491u);
	return 0x64400000u | ((h + sim_below(r, 32)) & 0x3fffffu);
}

/* ---- building ------------------------------------------------------------ */

static void set_ref(struct sim_party *p, char letter, uint32_t number)
{
	int n = snprintf(p->ref, sizeof p->ref, "%s:%c%u",
			 sim_participant_names[p->participant], letter, number);
	HT_ASSERT(n > 0 && (size_t)n < sizeof p->ref);
}

static void layout(const struct ht_sim_options *o, struct sim_world *w)
{
	uint32_t n = o->parties;
	w->count[SIM_BILLER] = n / 1000 > 5 ? n / 1000 : 5;
	w->count[SIM_AGENT] = n / 500 > 5 ? n / 500 : 5;
	w->count[SIM_EMPLOYER] = n / 100 > 3 ? n / 100 : 3;
	w->count[SIM_MERCHANT] = n / 100 * 8 > SIM_CAT__COUNT ? n / 100 * 8
							      : SIM_CAT__COUNT;
	uint32_t rest = w->count[SIM_BILLER] + w->count[SIM_AGENT] +
			w->count[SIM_EMPLOYER] + w->count[SIM_MERCHANT];
	HT_ASSERT(rest + 50 <= n); /* HT_SIM_PARTIES_MIN leaves customers */
	w->count[SIM_CUSTOMER] = n - rest;
	uint32_t at = 0;
	for (unsigned k = 0; k < SIM_KIND__COUNT; k++) {
		w->first[k] = at;
		at += w->count[k];
	}
	HT_ASSERT(at == n);
	w->nparties = n;
}

static void world_merchants(struct sim_world *w, struct sim_rng *r)
{
	uint32_t n = w->count[SIM_MERCHANT], m0 = w->first[SIM_MERCHANT];
	double sum = 0, cum[SIM_CAT__COUNT];
	for (unsigned c = 0; c < SIM_CAT__COUNT; c++)
		cum[c] = (sum += sim_categories[c].share);
	uint32_t per_cat[SIM_CAT__COUNT] = {0};
	for (uint32_t i = 0; i < n; i++) {
		struct sim_party *p = &w->party[m0 + i];
		p->kind = SIM_MERCHANT;
		p->participant = (uint8_t)pick_split(r, merchant_split);
		/* The first of each category makes every category exist. */
		unsigned c = i < SIM_CAT__COUNT ? i : pick_cdf(cum, SIM_CAT__COUNT, r);
		p->category = (uint8_t)c;
		per_cat[c]++;
		/* Popularity: heavy-tailed, so a few shops get most payers. */
		double pop = sim_lognormal(r, 1.0, 1.3);
		w->merchant_cdf[i] = (i ? w->merchant_cdf[i - 1] : 0) + pop;
		p->employer = p->rent_payee = SIM_NONE;
		set_ref(p, 'm', i + 1);
	}
	w->cat_first[0] = 0;
	for (unsigned c = 0; c < SIM_CAT__COUNT; c++)
		w->cat_first[c + 1] = w->cat_first[c] + per_cat[c];
	uint32_t fill[SIM_CAT__COUNT];
	memcpy(fill, w->cat_first, sizeof fill);
	for (uint32_t i = 0; i < n; i++)
		w->by_category[fill[w->party[m0 + i].category]++] = m0 + i;
}

static void world_others(struct sim_world *w, struct sim_rng *r)
{
	double sum = 0;
	for (uint32_t i = 0; i < w->count[SIM_EMPLOYER]; i++) {
		struct sim_party *p = &w->party[w->first[SIM_EMPLOYER] + i];
		p->kind = SIM_EMPLOYER;
		p->participant = (uint8_t)pick_split(r, bank_split);
		if (sim_chance(r, 0.25)) {
			p->flags |= SIM_F_BIWEEKLY;
			p->pay_day = (uint8_t)(sim_chance(r, 0.5) ? 1 : 8);
		} else {
			p->pay_day = (uint8_t)(5 + sim_below(r, 24));
		}
		p->pay_ms = (uint32_t)(9 * SIM_MS_PER_HOUR +
				       sim_below(r, 2 * SIM_MS_PER_HOUR));
		p->device[0] = sim_new_device(w);
		p->ndevices = 1;
		p->net = 0xac100000u | (sim_next(r) & 0xfff00u) | 10;
		/* Sizes fall off like Zipf's law: a few large employers. */
		w->employer_cdf[i] = (sum += 1.0 / pow(i + 1.0, 1.1));
		p->employer = p->rent_payee = SIM_NONE;
		set_ref(p, 'e', i + 1);
	}
	for (uint32_t i = 0; i < w->count[SIM_BILLER]; i++) {
		struct sim_party *p = &w->party[w->first[SIM_BILLER] + i];
		p->kind = SIM_BILLER;
		p->category = (uint8_t)(i % SIM_BILL_TYPES);
		p->participant = (uint8_t)pick_split(r, bank_split);
		p->employer = p->rent_payee = SIM_NONE;
		set_ref(p, 'u', i + 1);
	}
	for (uint32_t i = 0; i < w->count[SIM_AGENT]; i++) {
		struct sim_party *p = &w->party[w->first[SIM_AGENT] + i];
		p->kind = SIM_AGENT;
		p->participant = (uint8_t)(i % SIM_PARTICIPANTS);
		p->employer = p->rent_payee = SIM_NONE;
		set_ref(p, 'a', i + 1);
	}
}

static uint32_t pick_biller(const struct sim_world *w, struct sim_rng *r,
			    unsigned type)
{
	uint32_t n = w->count[SIM_BILLER];
	uint32_t of_t = (n - type + SIM_BILL_TYPES - 1) / SIM_BILL_TYPES;
	return w->first[SIM_BILLER] + type + SIM_BILL_TYPES * sim_below(r, of_t);
}

/* A customer other than c; friends live near each other in index order,
 * which gives circles that overlap like real ones. */
static uint32_t pick_near(const struct sim_world *w, struct sim_rng *r,
			  uint32_t c)
{
	uint32_t n = w->count[SIM_CUSTOMER];
	uint32_t off = 1 + sim_below(r, n - 1 < 200 ? n - 1 : 200);
	return sim_chance(r, 0.5) ? (c + off) % n : (c + n - off) % n;
}

static void customer_habits(struct sim_world *w, struct sim_rng *r,
			    uint32_t i)
{
	struct sim_party *p = &w->party[i];
	p->nfriends = (uint8_t)(3 + sim_below(r, 8));
	p->friends = (uint32_t)w->nlinks;
	for (unsigned k = 0; k < p->nfriends; k++)
		w->links[w->nlinks++] = pick_near(w, r, i);
	p->nfavs = (uint8_t)(4 + sim_below(r, 9));
	p->favs = (uint32_t)w->nlinks;
	for (unsigned k = 0; k < p->nfavs; k++)
		w->links[w->nlinks++] = sim_pick_merchant(w, r);
	for (unsigned t = 0; t < SIM_BILL_TYPES && p->nbills < SIM_BILLS_MAX; t++) {
		if (!sim_chance(r, sim_bills[t].share))
			continue;
		p->biller[p->nbills] = pick_biller(w, r, t);
		p->bill_fen[p->nbills++] = (uint32_t)sim_round(
			sim_lognormal(r, sim_bills[t].median_fen, sim_bills[t].sigma), 1);
	}
	p->bill_day = (uint8_t)(1 + sim_below(r, 28));
}

static void customer_money(struct sim_world *w, struct sim_rng *r, uint32_t i)
{
	struct sim_party *p = &w->party[i];
	p->employer = p->rent_payee = SIM_NONE;
	if (sim_chance(r, 0.72)) {
		uint32_t e = pick_cdf(w->employer_cdf, w->count[SIM_EMPLOYER], r);
		p->employer = w->first[SIM_EMPLOYER] + e;
		double s = sim_lognormal(r, 750000, 0.5);
		p->salary_fen = (uint32_t)sim_round(s < 2e5 ? 2e5 : s > 2e7 ? 2e7 : s, 100);
	}
	if (sim_chance(r, 0.22)) {
		p->rent_payee = pick_near(w, r, i);
		p->rent_fen = (uint32_t)sim_round(sim_lognormal(r, 300000, 0.5), 10000);
		p->rent_day = (uint8_t)(1 + sim_below(r, 28));
	}
}

static void world_customers(struct sim_world *w, struct sim_rng *r)
{
	for (uint32_t i = 0; i < w->count[SIM_CUSTOMER]; i++) {
		struct sim_party *p = &w->party[i];
		p->kind = SIM_CUSTOMER;
		p->participant = (uint8_t)pick_split(r, customer_split);
		double rate = sim_lognormal(r, 2.2, 0.6);
		p->rate = (float)(rate < 0.1 ? 0.1 : rate > 20 ? 20 : rate);
		p->card_pct = (uint8_t)(5 + sim_below(r, 51));
		p->ndevices = (uint8_t)(sim_chance(r, 0.12) ? 2 : 1);
		for (unsigned k = 0; k < p->ndevices; k++)
			p->device[k] = sim_new_device(w);
		/* Home network: 10.x.y.0/24, shared by neighbours now and then. */
		p->net = 0x0a000000u | (sim_next(r) & 0xffff00u);
		customer_habits(w, r, i);
		customer_money(w, r, i);
		set_ref(p, 'c', i + 1);
	}
}

/* About 0.4% of customers are mules, in rings of 3 to 8 sharing a couple
 * of devices and an address range; they rarely pay for anything
 * themselves. */
static void world_mules(struct sim_world *w, struct sim_rng *r)
{
	uint32_t customers = w->count[SIM_CUSTOMER];
	uint32_t want = customers / 250 > 3 ? customers / 250 : 3;
	for (uint32_t tries = 0; w->nmules < want && tries < 64 * want; tries++) {
		uint32_t c = sim_below(r, customers);
		if (w->party[c].flags & SIM_F_MULE)
			continue;
		w->party[c].flags |= SIM_F_MULE;
		w->party[c].rate *= 0.2f;
		w->mules[w->nmules++] = c;
	}
	HT_ASSERT(w->nmules >= 3);
	for (uint32_t at = 0; at < w->nmules; w->nrings++) {
		struct sim_ring *g = &w->rings[w->nrings];
		uint32_t size = 3 + sim_below(r, 6);
		g->first = at;
		g->count = w->nmules - at < size ? w->nmules - at : size;
		g->device[0] = sim_new_device(w);
		g->device[1] = sim_new_device(w);
		g->net = 0xc6120000u | (sim_next(r) & 0x1ff00u); /* 198.18.0.0/15 */
		for (uint32_t k = 0; k < g->count; k++)
			w->party[w->mules[at + k]].ring = w->nrings;
		at += g->count;
	}
}

static enum ht_err world_alloc(struct sim_world *w)
{
	uint32_t n = w->nparties, customers = w->count[SIM_CUSTOMER];
	w->party = calloc(n, sizeof *w->party);
	/* At most 10 friends and 12 favourites each. */
	w->links = malloc((size_t)customers * 22 * sizeof *w->links);
	w->merchant_cdf = malloc(w->count[SIM_MERCHANT] * sizeof(double));
	w->by_category = malloc(w->count[SIM_MERCHANT] * sizeof(uint32_t));
	w->employer_cdf = malloc(w->count[SIM_EMPLOYER] * sizeof(double));
	uint32_t mules_max = customers / 250 > 3 ? customers / 250 : 3;
	w->mules = malloc(mules_max * sizeof *w->mules);
	w->rings = calloc(mules_max, sizeof *w->rings);
	if (!w->party || !w->links || !w->merchant_cdf || !w->by_category ||
	    !w->employer_cdf || !w->mules || !w->rings)
		return HT_ERR_NOMEM;
	return HT_OK;
}

enum ht_err sim_world_create(const struct ht_sim_options *o,
			     struct sim_world *w)
{
	memset(w, 0, sizeof *w);
	layout(o, w);
	enum ht_err err = world_alloc(w);
	if (err) {
		sim_world_destroy(w);
		return err;
	}
	struct sim_rng r;
	sim_rng_seed(&r, o->seed, 0);
	w->next_device = 1;
	world_merchants(w, &r);
	world_others(w, &r);
	world_customers(w, &r);
	world_mules(w, &r);
	HT_ASSERT(w->nlinks <= (size_t)w->count[SIM_CUSTOMER] * 22);
	return HT_OK;
}

void sim_world_destroy(struct sim_world *w)
{
	if (!w)
		return;
	free(w->party);
	free(w->links);
	free(w->merchant_cdf);
	free(w->by_category);
	free(w->employer_cdf);
	free(w->mules);
	free(w->rings);
	memset(w, 0, sizeof *w);
}

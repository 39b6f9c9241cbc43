/*
 * fraud.c — injected fraud with ground truth: account takeover, card
 * testing, authorised push-payment scams, and the mule accounts that move
 * the proceeds on. Each incident is a short story told in payments, each
 * labelled with its kind:
 *
 *   account_takeover  the victim's account from a new device and address:
 *                     a burst of transfers to new payees (mostly mules)
 *                     and purchases at shops that resell easily, often at
 *                     night.
 *   card_testing      a stolen card tried with tiny payments at digital
 *                     shops seconds apart (or several cards at one shop),
 *                     from the fraudster's device, then a large purchase.
 *   app_scam          the victim, deceived, pays a large sum from their own
 *                     phone and home network to a new payee (a mule),
 *                     mostly at an odd hour; sometimes twice or three times.
 *   mule              a mule account passing what it received on within
 *                     minutes to hours: to another mule, to cash at an
 *                     agent, or into goods; from its ring's shared devices.
 *                     Rings work in campaigns (10 days in 28).
 *
 * Owner: sim. Incidents start on the day being generated; their later
 * steps may fall on following days (sim.c carries them). Every loop is
 * bounded by a small constant. This file chooses victims and mules from
 * the world and takes new device numbers from it; it changes nothing
 * else.
 */
#include "sim_internal.h"

/* Incident mix (shares of incidents, not of payments: docs/sim.md gives
 * the resulting payment mix). */
#define SHARE_TAKEOVER 0.35
#define SHARE_CARD_TESTING 0.12
/* the rest: app_scam */

/* Follow-ups never land more than this after their cause (the day buffer
 * sorts on 30-bit offsets, about 12 days). */
#define MULE_DELAY_MS_MAX (36 * SIM_MS_PER_HOUR)

struct incident {
	struct sim_world *w;
	struct sim_rng *r;
	struct sim_buf *b;
	uint32_t day;       /* index of the day the incident starts */
	uint64_t made;
};

static enum ht_err emit(struct incident *x, int64_t ts, uint32_t payer,
			uint32_t payee, uint64_t amount, enum ht_channel ch,
			uint32_t device, uint32_t ip, enum ht_fraud_type type)
{
	x->made++;
	return sim_emit(x->b, ts, payer, payee, amount, ch, device, ip, type);
}

/* Where fraudsters connect from: a hosting range (198.18.0.0/15) or, to
 * look ordinary, a mobile carrier's NAT. */
static uint32_t fraud_ip(struct sim_rng *r)
{
	if (sim_chance(r, 0.6))
		return 0xc6120000u | (uint32_t)(sim_next(r) & 0x1ffffu);
	return 0x64400000u | (uint32_t)(sim_next(r) & 0x3fffffu);
}

/* Rings work in campaigns: active 10 days in every 28, at their own
 * phase, then quiet (as if frozen) until the next. */
#define RING_PERIOD_DAYS 28
#define RING_ACTIVE_DAYS 10

static bool ring_active(const struct sim_world *w, uint32_t m, uint32_t day)
{
	uint32_t phase = sim_hash32(w->party[m].ring + 1) % RING_PERIOD_DAYS;
	return (day + phase) % RING_PERIOD_DAYS < RING_ACTIVE_DAYS;
}

/* A mule other than other_than (there are at least three), from a ring
 * in campaign when one is found in a few tries. */
static uint32_t pick_mule(struct incident *x, uint32_t other_than)
{
	const struct sim_world *w = x->w;
	uint32_t m = other_than;
	for (int i = 0; i < 16; i++) {
		uint32_t c = w->mules[sim_below(x->r, w->nmules)];
		if (c == other_than)
			continue;
		m = c;
		if (ring_active(w, c, x->day))
			return c;
	}
	if (m != other_than)
		return m;
	return w->mules[0] != other_than ? w->mules[0] : w->mules[1];
}

/* Another mule than m, from m's own ring more often than not. */
static uint32_t next_mule(struct incident *x, uint32_t m)
{
	const struct sim_ring *g = &x->w->rings[x->w->party[m].ring];
	if (g->count > 1 && sim_chance(x->r, 0.6)) {
		uint32_t k = sim_below(x->r, g->count - 1);
		uint32_t n = x->w->mules[g->first + k];
		return n != m ? n : x->w->mules[g->first + g->count - 1];
	}
	return pick_mule(x, m);
}

static uint32_t resale_shop(struct incident *x)
{
	return sim_pick_in_category(x->w, x->r, sim_chance(x->r, 0.5)
							? SIM_CAT_ELECTRONICS
							: SIM_CAT_JEWELRY);
}

static int64_t delay(struct sim_rng *r, double median_ms, double sigma,
		     int64_t min_ms, int64_t max_ms)
{
	double d = sim_lognormal(r, median_ms, sigma);
	int64_t v = (int64_t)d;
	return v < min_ms ? min_ms : v > max_ms ? max_ms : v;
}

/*
 * Mule m received amount at t: pass most of it on, from the ring's
 * devices (or, less often, the mule's own phone). depth 0 may forward to
 * a second mule, which then cashes out.
 */
static enum ht_err mule_on(struct incident *x, uint32_t m, uint64_t amount,
			   int64_t t, int depth)
{
	const struct sim_party *p = &x->w->party[m];
	const struct sim_ring *g = &x->w->rings[p->ring];
	if (amount < 50000) /* a test payment: nothing worth moving */
		return HT_OK;
	bool ring = sim_chance(x->r, 0.75);
	uint32_t dev = ring ? g->device[sim_below(x->r, 2)] : p->device[0];
	uint32_t ip = ring ? g->net | (2 + sim_below(x->r, 250))
			   : sim_customer_ip(p, m, x->r);
	t += delay(x->r, 20 * 60000.0, 0.9, 60000, MULE_DELAY_MS_MAX);
	uint64_t out = sim_round((double)amount * (0.90 + 0.08 * sim_unit(x->r)), 100);
	double u = sim_unit(x->r);
	if (depth == 0 && u < 0.45) {
		uint32_t n = next_mule(x, m);
		enum ht_err err = emit(x, t, m, n, out, HT_CHANNEL_TRANSFER, dev,
				       ip, HT_FRAUD_MULE);
		return err ? err : mule_on(x, n, out, t, depth + 1);
	}
	if (u < 0.85) {
		/* Cash at an agent of the mule's bank, in pieces of at most
		 * 20,000 yuan, a few minutes apart. */
		enum ht_err err = HT_OK;
		for (int k = 0; k < 5 && out > 0 && !err; k++) {
			uint64_t piece = out > 2000000 ? 2000000 : out;
			piece = piece / 10000 * 10000;
			if (piece == 0)
				break;
			err = emit(x, t, m, sim_pick_agent(x->w, x->r, p->participant),
				   piece, HT_CHANNEL_CASH_OUT, dev, ip, HT_FRAUD_MULE);
			out -= piece;
			t += delay(x->r, 4 * 60000.0, 0.8, 20000, 3600000);
		}
		return err;
	}
	return emit(x, t, m, resale_shop(x), out, HT_CHANNEL_QR, dev, ip,
		    HT_FRAUD_MULE);
}

/* Start of an incident: at night with probability night, else any time
 * people are about. */
static int64_t start_time(struct incident *x, const struct sim_day *d,
			  double night)
{
	enum sim_profile p = sim_chance(x->r, night) ? SIM_PROF_ODD
						     : SIM_PROF_SOCIAL;
	return d->start_ms + sim_time_of_day(x->r, p);
}

static enum ht_err takeover(struct incident *x, const struct sim_day *d)
{
	uint32_t v = sim_pick_victim(x->w, x->r);
	uint32_t dev = sim_new_device(x->w), ip = fraud_ip(x->r);
	int64_t t = start_time(x, d, 0.6);
	enum ht_err err = HT_OK;
	if (sim_chance(x->r, 0.3)) /* a small test transfer first */
		err = emit(x, t, v, pick_mule(x, v), 100 * (1 + sim_below(x->r, 10)),
			   HT_CHANNEL_TRANSFER, dev, ip, HT_FRAUD_ACCOUNT_TAKEOVER);
	uint32_t n = 2 + sim_below(x->r, 5);
	for (uint32_t k = 0; k < n && !err; k++) {
		t += delay(x->r, 60000, 0.8, 5000, 20 * 60000);
		if (sim_chance(x->r, 0.7)) {
			uint32_t m = pick_mule(x, v);
			uint64_t a = sim_round(sim_lognormal(x->r, 800000, 0.7), 10000);
			err = emit(x, t, v, m, a, HT_CHANNEL_TRANSFER, dev, ip,
				   HT_FRAUD_ACCOUNT_TAKEOVER);
			if (!err)
				err = mule_on(x, m, a, t, 0);
		} else {
			uint64_t a = sim_round(sim_lognormal(x->r, 300000, 0.6), 100);
			err = emit(x, t, v, resale_shop(x), a,
				   sim_chance(x->r, 0.5) ? HT_CHANNEL_QR : HT_CHANNEL_CARD,
				   dev, ip, HT_FRAUD_ACCOUNT_TAKEOVER);
		}
	}
	return err;
}

/* A tiny amount: 0.01, 0.10, 1.00 yuan or anything up to 2 yuan. */
static uint64_t tiny(struct sim_rng *r)
{
	static const uint64_t usual[] = {1, 10, 100};
	return sim_chance(r, 0.6) ? usual[sim_below(r, 3)] : 1 + sim_below(r, 200);
}

static enum ht_err big_purchase(struct incident *x, uint32_t v, int64_t t,
				uint32_t dev, uint32_t ip)
{
	uint32_t shop = sim_chance(x->r, 0.3)
				? sim_pick_in_category(x->w, x->r, SIM_CAT_MARKETPLACE)
				: resale_shop(x);
	uint64_t a = sim_round(sim_lognormal(x->r, 400000, 0.7), 100);
	return emit(x, t, v, shop, a, HT_CHANNEL_CARD, dev, ip,
		    HT_FRAUD_CARD_TESTING);
}

static enum ht_err card_testing(struct incident *x, const struct sim_day *d)
{
	uint32_t dev = sim_new_device(x->w), ip = fraud_ip(x->r);
	int64_t t = start_time(x, d, 0.4);
	uint32_t test_shop = sim_pick_in_category(x->w, x->r, SIM_CAT_DIGITAL);
	/* One card tried many times, or several cards a few times each. */
	uint32_t cards = sim_chance(x->r, 0.7) ? 1 : 3 + sim_below(x->r, 4);
	uint32_t tries = cards == 1 ? 5 + sim_below(x->r, 16) : 0;
	enum ht_err err = HT_OK;
	uint32_t v = 0;
	for (uint32_t c = 0; c < cards && !err; c++) {
		v = sim_pick_victim(x->w, x->r);
		uint32_t n = tries ? tries : 1 + sim_below(x->r, 3);
		for (uint32_t k = 0; k < n && !err; k++) {
			t += 800 + sim_below(x->r, 7200);
			uint32_t shop = cards == 1 && sim_chance(x->r, 0.3)
						? sim_pick_in_category(x->w, x->r, SIM_CAT_DIGITAL)
						: test_shop;
			err = emit(x, t, v, shop, tiny(x->r), HT_CHANNEL_CARD, dev,
				   ip, HT_FRAUD_CARD_TESTING);
		}
		/* A card that worked is spent at once, sometimes twice. */
		if (!err && (cards == 1 || sim_chance(x->r, 0.4))) {
			int64_t at = t + delay(x->r, 90000, 1.0, 10000, 1800000);
			err = big_purchase(x, v, at, dev, ip);
			if (!err && sim_chance(x->r, 0.3))
				err = big_purchase(x, v, at + delay(x->r, 120000, 0.8,
								    15000, 1800000),
						   dev, ip);
		}
	}
	return err;
}

static enum ht_err app_scam(struct incident *x, const struct sim_day *d)
{
	uint32_t v = sim_pick_victim(x->w, x->r);
	const struct sim_party *p = &x->w->party[v];
	uint32_t m = pick_mule(x, v);
	int64_t t = start_time(x, d, 0.65);
	uint32_t n = sim_chance(x->r, 0.7) ? 1 : 2 + sim_below(x->r, 2);
	enum ht_err err = HT_OK;
	for (uint32_t k = 0; k < n && !err; k++) {
		if (k)
			t += delay(x->r, 40 * 60000.0, 1.0, 5 * 60000,
				   6 * SIM_MS_PER_HOUR);
		double a = sim_lognormal(x->r, 1500000, 0.8);
		uint64_t amount = sim_round(a > 1e8 ? 1e8 : a, 10000);
		/* The victim's own phone, from home. */
		err = emit(x, t, v, m, amount, HT_CHANNEL_TRANSFER, p->device[0],
			   sim_home_ip(p, v), HT_FRAUD_APP_SCAM);
		if (!err)
			err = mule_on(x, m, amount, t, 0);
	}
	return err;
}

enum ht_err sim_day_fraud(struct sim_world *w, const struct sim_day *d,
			  struct sim_rng *r, double want, struct sim_buf *b,
			  uint64_t *made)
{
	struct incident x = {.w = w, .r = r, .b = b, .day = d->index};
	enum ht_err err = HT_OK;
	/* Each incident makes at least one payment, so this ends after at
	 * most want incidents. */
	while ((double)x.made < want && !err) {
		double u = sim_unit(r);
		uint64_t before = x.made;
		if (u < SHARE_TAKEOVER)
			err = takeover(&x, d);
		else if (u < SHARE_TAKEOVER + SHARE_CARD_TESTING)
			err = card_testing(&x, d);
		else
			err = app_scam(&x, d);
		HT_ASSERT(err || x.made > before);
	}
	*made = x.made;
	return err;
}

/*
 * behave.c — one day of normal life: every customer's shop payments (QR
 * or card, favourite shops, the daily rhythm of each kind of shop),
 * payments to friends, occasional larger transfers, cash in and out,
 * monthly bills and rent, and payroll from employers (monthly or every
 * other Friday).
 *
 * Owner: sim. Legitimate behaviour only: every event here is labelled
 * "none". Some of it deliberately resembles fraud (a new phone now and
 * then, a large transfer to someone new, late-night spending) so that the
 * risk engine has hard cases to learn from, not a toy. It changes the world
 * only to give customers new devices; it never writes output.
 */
#include "sim_internal.h"

/* Rates per customer per day (shop payments have their own per-customer
 * rate; see world.c). */
#define P2P_PER_DAY 0.22
#define BIG_TRANSFER_PER_DAY 0.015   /* to a friend or family member */
#define NEW_PAYEE_PER_DAY 0.003      /* a one-off large payment to a stranger */
#define CASH_OUT_PER_DAY 0.02
#define CASH_IN_PER_DAY 0.01
#define NEW_PHONE_PER_DAY (1.0 / 400)
/* Per-day caps bound each loop; Poisson tails beyond them are cut. */
#define SHOP_PER_DAY_MAX 60
#define P2P_PER_DAY_MAX 10

/* Red-packet amounts people like to send (fen): 6.66, 8.88, 18.88, 52.0,
 * 66.66, 88.88, 131.4, 200. */
static const uint32_t red_packets[] = {666, 888, 1888, 5200, 6666, 8888, 13140, 20000};

struct cday {
	struct sim_world *w;
	const struct sim_day *d;
	struct sim_rng *r;
	struct sim_buf *b;
	uint32_t c;         /* the customer */
	uint64_t made;
};

static enum ht_err emit(struct cday *x, int64_t tod_ms, uint32_t payer,
			uint32_t payee, uint64_t amount, enum ht_channel ch,
			uint32_t device, uint32_t ip)
{
	x->made++;
	return sim_emit(x->b, x->d->start_ms + tod_ms, payer, payee, amount, ch,
			device, ip, HT_FRAUD_NONE);
}

/* The phone this payment comes from: mostly the first. */
static uint32_t device_now(struct cday *x)
{
	const struct sim_party *c = &x->w->party[x->c];
	return c->ndevices == 2 && sim_chance(x->r, 0.25) ? c->device[1]
							  : c->device[0];
}

static enum ht_err from_customer(struct cday *x, int64_t tod_ms,
				 uint32_t payee, uint64_t amount,
				 enum ht_channel ch)
{
	const struct sim_party *c = &x->w->party[x->c];
	return emit(x, tod_ms, x->c, payee, amount, ch, device_now(x),
		    sim_customer_ip(c, x->c, x->r));
}

/* Prices: most to the jiao, many to the yuan, some exact. */
static uint64_t price(struct sim_rng *r, double fen)
{
	double u = sim_unit(r);
	return sim_round(fen, u < 0.5 ? 10 : u < 0.8 ? 100 : 1);
}

static enum ht_err shop(struct cday *x)
{
	const struct sim_party *c = &x->w->party[x->c];
	uint32_t n = sim_poisson(x->r, c->rate * x->d->activity, SHOP_PER_DAY_MAX);
	enum ht_err err = HT_OK;
	for (uint32_t k = 0; k < n && !err; k++) {
		uint32_t m = sim_chance(x->r, 0.85)
				     ? x->w->links[c->favs + sim_below(x->r, c->nfavs)]
				     : sim_pick_merchant(x->w, x->r);
		const struct sim_category_info *cat =
			&sim_categories[x->w->party[m].category];
		double card = cat->card * c->card_pct / 30.0;
		enum ht_channel ch = sim_chance(x->r, card < 0.95 ? card : 0.95)
					     ? HT_CHANNEL_CARD
					     : HT_CHANNEL_QR;
		uint64_t amount = price(x->r, sim_lognormal(x->r, cat->median_fen,
							    cat->sigma));
		err = from_customer(x, sim_time_of_day(x->r, cat->profile), m,
				    amount, ch);
	}
	return err;
}

static uint32_t random_other_customer(struct cday *x)
{
	uint32_t n = x->w->count[SIM_CUSTOMER];
	uint32_t o = sim_below(x->r, n - 1);
	return o >= x->c ? o + 1 : o;
}

static enum ht_err social(struct cday *x)
{
	const struct sim_party *c = &x->w->party[x->c];
	uint32_t n = sim_poisson(x->r, P2P_PER_DAY * x->d->activity, P2P_PER_DAY_MAX);
	enum ht_err err = HT_OK;
	for (uint32_t k = 0; k < n && !err; k++) {
		uint32_t to = sim_chance(x->r, 0.9)
				      ? x->w->links[c->friends + sim_below(x->r, c->nfriends)]
				      : random_other_customer(x);
		uint64_t amount =
			sim_chance(x->r, 0.12)
				? red_packets[sim_below(x->r, sizeof red_packets /
								   sizeof red_packets[0])]
				: sim_round(sim_lognormal(x->r, 8000, 1.0), 100);
		err = from_customer(x, sim_time_of_day(x->r, SIM_PROF_SOCIAL), to,
				    amount, HT_CHANNEL_P2P);
	}
	if (!err && sim_chance(x->r, BIG_TRANSFER_PER_DAY)) {
		uint32_t to = x->w->links[c->friends + sim_below(x->r, c->nfriends)];
		err = from_customer(x, sim_time_of_day(x->r, SIM_PROF_SOCIAL), to,
				    sim_round(sim_lognormal(x->r, 150000, 0.9), 100),
				    HT_CHANNEL_TRANSFER);
	}
	if (!err && sim_chance(x->r, NEW_PAYEE_PER_DAY))
		err = from_customer(x, sim_time_of_day(x->r, SIM_PROF_OFFICE),
				    random_other_customer(x),
				    sim_round(sim_lognormal(x->r, 300000, 1.0), 100),
				    HT_CHANNEL_TRANSFER);
	return err;
}

static enum ht_err cash(struct cday *x)
{
	const struct sim_party *c = &x->w->party[x->c];
	enum ht_err err = HT_OK;
	if (sim_chance(x->r, CASH_OUT_PER_DAY)) {
		uint32_t a = sim_pick_agent(x->w, x->r, c->participant);
		err = from_customer(x, sim_time_of_day(x->r, SIM_PROF_RETAIL), a,
				    sim_round(sim_lognormal(x->r, 50000, 0.7), 10000),
				    HT_CHANNEL_CASH_OUT);
	}
	if (!err && sim_chance(x->r, CASH_IN_PER_DAY)) {
		/* Deposited at the agent's counter: no device or address of
		 * the customer's. */
		uint32_t a = sim_pick_agent(x->w, x->r, c->participant);
		err = emit(x, sim_time_of_day(x->r, SIM_PROF_RETAIL), a, x->c,
			   sim_round(sim_lognormal(x->r, 100000, 0.8), 10000),
			   HT_CHANNEL_CASH_IN, 0, 0);
	}
	return err;
}

static enum ht_err monthly(struct cday *x)
{
	const struct sim_party *c = &x->w->party[x->c];
	enum ht_err err = HT_OK;
	if (x->d->mday == c->bill_day) {
		for (unsigned k = 0; k < c->nbills && !err; k++) {
			const struct sim_bill_info *bi =
				&sim_bills[x->w->party[c->biller[k]].category];
			double fen = sim_lognormal(x->r, c->bill_fen[k], bi->month_sigma);
			err = from_customer(x, sim_time_of_day(x->r, SIM_PROF_SOCIAL),
					    c->biller[k], sim_round(fen, 1),
					    HT_CHANNEL_BILL);
		}
	}
	if (!err && c->rent_payee != SIM_NONE && x->d->mday == c->rent_day)
		err = from_customer(x, sim_time_of_day(x->r, SIM_PROF_OFFICE),
				    c->rent_payee, c->rent_fen, HT_CHANNEL_TRANSFER);
	return err;
}

/* Payroll: the employer's batch, employees a few seconds to half an hour
 * apart in a stable order. */
static enum ht_err salary(struct cday *x)
{
	const struct sim_party *c = &x->w->party[x->c];
	if (c->employer == SIM_NONE)
		return HT_OK;
	const struct sim_party *e = &x->w->party[c->employer];
	if (!e->pays_today)
		return HT_OK;
	uint64_t amount = c->salary_fen;
	if (e->flags & SIM_F_BIWEEKLY)
		amount = sim_round(amount * 12.0 / 26.0, 100);
	int64_t tod = e->pay_ms + (int64_t)(sim_hash32(x->c) % 1800) * 1000 +
		      sim_below(x->r, 1000);
	return emit(x, tod, c->employer, x->c, amount, HT_CHANNEL_TRANSFER,
		    e->device[0], e->net);
}

/* Now and then a customer gets a new phone (replacing one, or adding a
 * second): a legitimate first-seen device. */
static void new_phone(struct cday *x)
{
	struct sim_party *c = &x->w->party[x->c];
	if (!sim_chance(x->r, NEW_PHONE_PER_DAY))
		return;
	if (c->ndevices == 1 && sim_chance(x->r, 0.3))
		c->ndevices = 2;
	c->device[c->ndevices - 1] = sim_new_device(x->w);
}

static bool is_payday(const struct sim_party *e, const struct sim_day *d)
{
	if (d->wday == 0 || d->wday == 6)
		return false;
	if (e->flags & SIM_F_BIWEEKLY)
		return d->epoch_day % 14 == e->pay_day;
	/* A payday on a weekend moves to the Friday before. */
	return d->mday == e->pay_day ||
	       (d->wday == 5 && (d->mday + 1 == e->pay_day ||
				 d->mday + 2 == e->pay_day));
}

enum ht_err sim_day_normal(struct sim_world *w, const struct sim_day *d,
			   struct sim_rng *r, struct sim_buf *b,
			   uint64_t *made)
{
	for (uint32_t i = 0; i < w->count[SIM_EMPLOYER]; i++) {
		struct sim_party *e = &w->party[w->first[SIM_EMPLOYER] + i];
		e->pays_today = is_payday(e, d);
	}
	struct cday x = {.w = w, .d = d, .r = r, .b = b};
	enum ht_err err = HT_OK;
	for (uint32_t c = 0; c < w->count[SIM_CUSTOMER] && !err; c++) {
		x.c = c;
		new_phone(&x);
		err = shop(&x);
		if (!err)
			err = social(&x);
		if (!err)
			err = cash(&x);
		if (!err)
			err = monthly(&x);
		if (!err)
			err = salary(&x);
	}
	*made = x.made;
	return err;
}

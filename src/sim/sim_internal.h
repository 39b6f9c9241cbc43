/*
 * sim_internal.h — what the simulator's files share: the seeded random
 * generator, the population (world.c), one day's raw events (behave.c,
 * fraud.c) and the event buffer (sim.c).
 *
 * Owner: sim. Nothing here is visible outside src/sim/. Every random
 * choice goes through struct sim_rng (xoshiro256**, seeded by splitmix64):
 * never rand(), never the clock, never an address, so the same seed and
 * options give the same bytes.
 */
#ifndef HUITONG_SIM_INTERNAL_H
#define HUITONG_SIM_INTERNAL_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "huitong/common.h"
#include "huitong/payment.h"
#include "huitong/sim.h"

#define SIM_MS_PER_DAY 86400000LL
#define SIM_MS_PER_HOUR 3600000LL
#define SIM_NONE UINT32_MAX

/* ---- random numbers ---------------------------------------------------- */

struct sim_rng {
	uint64_t s[4];
};

static inline uint64_t sim_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Seed r for one stream of the run: (seed, stream) pairs never share a
 * state, so each day and each purpose draws its own numbers. */
static inline void sim_rng_seed(struct sim_rng *r, uint64_t seed,
				uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ull);
	x = sim_splitmix64(&x) ^ stream;
	for (int i = 0; i < 4; i++)
		r->s[i] = sim_splitmix64(&x);
}

static inline uint64_t sim_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman and Vigna). */
static inline uint64_t sim_next(struct sim_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = sim_rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = sim_rotl(s[3], 45);
	return result;
}

/* Uniform in [0, 1). */
static inline double sim_unit(struct sim_rng *r)
{
	return (double)(sim_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n), n ≥ 1 (Lemire's multiply; the bias is below 2^-32). */
static inline uint32_t sim_below(struct sim_rng *r, uint32_t n)
{
	return (uint32_t)(((sim_next(r) >> 32) * (uint64_t)n) >> 32);
}

static inline bool sim_chance(struct sim_rng *r, double p)
{
	return sim_unit(r) < p;
}

/* Standard normal (Marsaglia's polar method; one of the pair is thrown
 * away so the stream never carries hidden state). */
double sim_normal(struct sim_rng *r);

/* Log-normal with the given median and shape sigma. */
static inline double sim_lognormal(struct sim_rng *r, double median,
				   double sigma)
{
	return median * exp(sigma * sim_normal(r));
}

/* Poisson(lambda) by inversion, capped at cap (bounds every loop). */
uint32_t sim_poisson(struct sim_rng *r, double lambda, uint32_t cap);

/* Mixing hash of an index: stable per-party quirks without a draw. */
static inline uint32_t sim_hash32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	x ^= x >> 16;
	return x;
}

/* ---- time of day -------------------------------------------------------- */

/* Daily rhythms: hour-of-day weights (world.c). */
enum sim_profile {
	SIM_PROF_RETAIL = 0, /* shops: day and evening */
	SIM_PROF_MEAL,       /* breakfast, lunch, dinner peaks */
	SIM_PROF_COMMUTE,    /* morning and evening rush */
	SIM_PROF_ONLINE,     /* evening and late night */
	SIM_PROF_SOCIAL,     /* p2p and bills: day and evening */
	SIM_PROF_OFFICE,     /* office hours */
	SIM_PROF_ODD,        /* fraud's odd hours: 22:00-06:00 */
	SIM_PROF__COUNT
};

/* Milliseconds after midnight drawn from profile p. */
int64_t sim_time_of_day(struct sim_rng *r, enum sim_profile p);

/* ---- the population ------------------------------------------------------ */

enum sim_kind {
	SIM_CUSTOMER = 0, /* "c": a person */
	SIM_MERCHANT,     /* "m": receives from many customers */
	SIM_EMPLOYER,     /* "e": pays salaries */
	SIM_BILLER,       /* "u": a utility, paid monthly */
	SIM_AGENT,        /* "a": a cash agent or ATM network point */
	SIM_KIND__COUNT
};

#define SIM_PARTICIPANTS 5 /* bankA bankB bankC payA payB */
extern const char *const sim_participant_names[SIM_PARTICIPANTS];

/* Merchant categories (MCC-like). */
enum sim_category {
	SIM_CAT_GROCERY = 0,
	SIM_CAT_RESTAURANT,
	SIM_CAT_FAST_FOOD,
	SIM_CAT_CONVENIENCE,
	SIM_CAT_TRANSPORT,
	SIM_CAT_FUEL,
	SIM_CAT_PHARMACY,
	SIM_CAT_CLOTHING,
	SIM_CAT_ELECTRONICS,
	SIM_CAT_MARKETPLACE,
	SIM_CAT_DIGITAL,     /* games, top-ups: where stolen cards are tested */
	SIM_CAT_JEWELRY,     /* jewellery and gift cards: where they are spent */
	SIM_CAT__COUNT
};

struct sim_category_info {
	const char *name;
	unsigned mcc;
	double median_fen;   /* typical ticket */
	double sigma;        /* log-normal shape of the ticket */
	enum sim_profile profile;
	double share;        /* share of merchants */
	double card;         /* share of payments by card (rest QR) */
};
extern const struct sim_category_info sim_categories[SIM_CAT__COUNT];

/* Utility bills. */
#define SIM_BILL_TYPES 5 /* electricity, water, gas, mobile, broadband */
#define SIM_BILLS_MAX 4  /* bills one customer pays */

struct sim_bill_info {
	const char *name;
	double median_fen;   /* typical monthly bill across customers */
	double sigma;        /* spread across customers */
	double month_sigma;  /* one customer's month-to-month variation */
	double share;        /* share of customers who pay it */
};
extern const struct sim_bill_info sim_bills[SIM_BILL_TYPES];

/* Party flags. */
#define SIM_F_MULE 0x01      /* a mule account */
#define SIM_F_BIWEEKLY 0x02  /* employer paying every other Friday */

#define SIM_REF_BYTES 24 /* "bankA:c1000000" and NUL */

/*
 * One party. Fields are shared by kinds where noted; a field a kind does
 * not use is zero (or SIM_NONE for indices).
 */
struct sim_party {
	char ref[SIM_REF_BYTES];  /* "bankA:c1001" */
	uint8_t kind;             /* enum sim_kind */
	uint8_t participant;      /* index in sim_participant_names */
	uint8_t category;         /* merchants: enum sim_category; billers: bill type */
	uint8_t flags;            /* SIM_F_* */
	uint8_t ndevices;         /* customers: 1 or 2 */
	uint8_t nfriends, nfavs, nbills;
	uint8_t card_pct;         /* customers: % of shop payments by card */
	uint8_t bill_day;         /* customers: day of month bills are paid */
	uint8_t rent_day;         /* customers: day of month rent is paid */
	uint8_t pay_day;          /* employers: payday (monthly) or 0..13 phase */
	uint8_t pays_today;       /* employers: set at the start of each day */
	float rate;               /* customers: shop payments per day */
	uint32_t device[2];       /* device numbers ("d-<n>"); 0 none */
	uint32_t net;             /* customers: home /24; others: their IP */
	uint32_t friends, favs;   /* customers: offsets in world.links */
	uint32_t biller[SIM_BILLS_MAX];
	uint32_t bill_fen[SIM_BILLS_MAX]; /* typical monthly amount */
	uint32_t employer;        /* customers: party index or SIM_NONE */
	uint32_t salary_fen;      /* customers: monthly net salary */
	uint32_t rent_payee;      /* customers: landlord or SIM_NONE */
	uint32_t rent_fen;
	uint32_t ring;            /* mules: ring index */
	uint32_t pay_ms;          /* employers: payroll start, ms after midnight */
};

/* A ring of mule accounts run by one fraud operation: shared devices and
 * an address range. Its mules are world.mules[first .. first + count). */
struct sim_ring {
	uint32_t first, count;
	uint32_t device[2];
	uint32_t net;
};

struct sim_world {
	struct sim_party *party;
	uint32_t nparties;
	uint32_t count[SIM_KIND__COUNT];
	uint32_t first[SIM_KIND__COUNT];  /* index of the first party of a kind */
	uint32_t *links;                  /* friends and favourite merchants */
	size_t nlinks;
	double *merchant_cdf;             /* cumulative popularity, per merchant */
	uint32_t *by_category;            /* merchants grouped by category */
	uint32_t cat_first[SIM_CAT__COUNT + 1];
	double *employer_cdf;             /* cumulative size, per employer */
	uint32_t *mules;                  /* party indices, ring by ring */
	uint32_t nmules;
	struct sim_ring *rings;
	uint32_t nrings;
	uint32_t next_device;             /* next unused device number */
};

/* Build the population for o (stream 0 of o->seed). Errors: HT_ERR_NOMEM. */
enum ht_err sim_world_create(const struct ht_sim_options *o,
			     struct sim_world *w);
void sim_world_destroy(struct sim_world *w);

/* A fresh device number. */
static inline uint32_t sim_new_device(struct sim_world *w)
{
	HT_ASSERT(w->next_device < UINT32_MAX);
	return w->next_device++;
}

/* Random merchant by popularity; random merchant of a category. */
uint32_t sim_pick_merchant(const struct sim_world *w, struct sim_rng *r);
uint32_t sim_pick_in_category(const struct sim_world *w, struct sim_rng *r,
			      enum sim_category c);
/* Random cash agent of participant p. */
uint32_t sim_pick_agent(const struct sim_world *w, struct sim_rng *r,
			unsigned p);
/* Random customer that is not a mule. */
uint32_t sim_pick_victim(const struct sim_world *w, struct sim_rng *r);

/* A customer's address at home (stable). */
uint32_t sim_home_ip(const struct sim_party *c, uint32_t index);
/* The address a customer pays from now: home (most) or a mobile
 * carrier's NAT. */
uint32_t sim_customer_ip(const struct sim_party *c, uint32_t index,
			 struct sim_rng *r);

/* ---- events -------------------------------------------------------------- */

/* One payment before it has an id. 40 bytes: a day of a million parties
 * (2.9M events) fits 116 MB. */
struct sim_event {
	int64_t ts_ms;
	uint64_t amount;        /* fen, > 0 */
	uint32_t payer, payee;  /* party indices */
	uint32_t device;        /* device number; 0 none */
	uint32_t ip;            /* IPv4, host order; 0 none */
	uint8_t channel;        /* enum ht_channel */
	uint8_t fraud;          /* enum ht_fraud_type */
};

struct sim_buf {
	struct sim_event *ev;
	size_t len, cap;
	size_t len_max; /* refuse (HT_ERR_LIMIT) beyond this */
};

/* Append one event. Errors: HT_ERR_NOMEM, HT_ERR_LIMIT. */
enum ht_err sim_push(struct sim_buf *b, const struct sim_event *e);

/* The calendar of the day being generated. */
struct sim_day {
	uint32_t index;      /* 0-based day of the run */
	int64_t start_ms;    /* midnight UTC */
	int64_t epoch_day;   /* days since 1970-01-01 */
	unsigned mday;       /* 1..31 */
	unsigned wday;       /* 0 = Sunday .. 6 = Saturday */
	double activity;     /* this day's busyness (weekday, noise) */
};

/* Normal behaviour of every party for day d, appended to b; *made gets
 * the number of events. Errors: those of sim_push. */
enum ht_err sim_day_normal(struct sim_world *w, const struct sim_day *d,
			   struct sim_rng *r, struct sim_buf *b,
			   uint64_t *made);

/* Fraud incidents starting on day d until at least want payments are
 * made (their follow-ups may fall on later days); *made gets the count.
 * Errors: those of sim_push. */
enum ht_err sim_day_fraud(struct sim_world *w, const struct sim_day *d,
			  struct sim_rng *r, double want, struct sim_buf *b,
			  uint64_t *made);

/* Append one event (every generator goes through here). */
static inline enum ht_err sim_emit(struct sim_buf *b, int64_t ts_ms,
				   uint32_t payer, uint32_t payee,
				   uint64_t amount, enum ht_channel channel,
				   uint32_t device, uint32_t ip,
				   enum ht_fraud_type fraud)
{
	struct sim_event e = {
		.ts_ms = ts_ms, .amount = amount, .payer = payer,
		.payee = payee, .device = device, .ip = ip,
		.channel = (uint8_t)channel, .fraud = (uint8_t)fraud,
	};
	HT_ASSERT(amount > 0);
	HT_ASSERT(payer != payee);
	return sim_push(b, &e);
}

/* Round fen to a multiple of unit (at least unit). */
static inline uint64_t sim_round(double fen, uint64_t unit)
{
	if (!(fen >= (double)unit))
		return unit;
	if (fen > 1e15)
		fen = 1e15;
	return (uint64_t)(fen / (double)unit + 0.5) * unit;
}

#endif

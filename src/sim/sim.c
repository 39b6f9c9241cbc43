/*
 * sim.c — the simulator's run: day by day, generate the population's
 * normal payments (behave.c) and enough fraud to meet the fraud rate
 * (fraud.c), sort the day, hand the payments out in time order with ids
 * and labels, and write them as interchange JSONL.
 *
 * Owner: sim. Memory is the world plus one day's events (and a sort
 * buffer of the same size); events an incident schedules after the day
 * being generated stay in the buffer ("carry") until their day comes, and
 * those after the last day are dropped and counted. Each day draws from
 * its own streams of the seed (one for normal life, one for fraud), so a
 * shorter run is a prefix of a longer one and changing the fraud rate
 * leaves normal traffic alone. No clock, no rand(), no output other than
 * the FILEs handed to ht_sim_write.
 */
#include "sim_internal.h"

#include <stdlib.h>
#include <string.h>

/* Initial room for events; the buffer doubles up to len_max. */
#define BUF_EVENTS_MIN 4096u
/* Output is written in blocks of this many bytes. */
#define WRITE_BLOCK_BYTES (1u << 20)
/* The sort works on offsets from the day's midnight, 30 bits of ms. */
#define SORT_BITS 30
#define SORT_RADIX_BITS 10
#define SORT_BUCKETS (1u << SORT_RADIX_BITS)

struct ht_sim {
	struct ht_sim_options o;
	struct sim_world w;
	struct sim_buf buf;
	struct sim_event *tmp;   /* sort scratch, capacity tmp_cap */
	size_t tmp_cap;
	size_t cursor;           /* next event to hand out */
	size_t ready;            /* events before this index are due */
	uint32_t day;            /* next day to generate */
	double fraud_debt;       /* fraud payments owed to the rate */
	uint64_t next_id;
	struct ht_sim_stats st;
	enum ht_err failed;      /* sticky error */
};

/* ---- options --------------------------------------------------------------- */

enum ht_err ht_sim_date_parse(const char *s, int64_t *day_ms)
{
	char ts[32];
	if (!s || strlen(s) != 10)
		return HT_ERR_INVALID;
	memcpy(ts, s, 10);
	memcpy(ts + 10, "T00:00:00Z", 10);
	return ht_payment_ts_parse(ts, 20, day_ms);
}

void ht_sim_options_default(struct ht_sim_options *o)
{
	memset(o, 0, sizeof *o);
	o->seed = 1;
	o->parties = 10000;
	o->days = 30;
	o->fraud_rate = 0.005;
	enum ht_err err = ht_sim_date_parse("2026-03-01", &o->start_ms);
	HT_ASSERT(err == HT_OK);
}

static enum ht_err check_options(const struct ht_sim_options *o)
{
	if (o->parties < HT_SIM_PARTIES_MIN || o->parties > HT_SIM_PARTIES_MAX)
		return HT_ERR_LIMIT;
	if (o->days < 1 || o->days > HT_SIM_DAYS_MAX)
		return HT_ERR_LIMIT;
	if (o->start_ms < 0 || o->start_ms % SIM_MS_PER_DAY != 0)
		return HT_ERR_INVALID;
	if (o->start_ms > HT_PAYMENT_TS_MS_MAX + 1 -
				  (int64_t)o->days * SIM_MS_PER_DAY)
		return HT_ERR_INVALID;
	/* Written so that NaN fails too. */
	if (!(o->fraud_rate >= 0 && o->fraud_rate <= HT_SIM_FRAUD_RATE_MAX))
		return HT_ERR_INVALID;
	return HT_OK;
}

enum ht_err ht_sim_create(const struct ht_sim_options *o, struct ht_sim **out)
{
	*out = NULL;
	enum ht_err err = o ? check_options(o) : HT_ERR_INVALID;
	if (err)
		return err;
	struct ht_sim *s = calloc(1, sizeof *s);
	if (!s)
		return HT_ERR_NOMEM;
	s->o = *o;
	s->buf.len_max = (size_t)o->parties * HT_SIM_DAY_EVENTS_PER_PARTY_MAX;
	s->next_id = 1;
	err = sim_world_create(o, &s->w);
	if (err) {
		free(s);
		return err;
	}
	s->st.days = o->days;
	for (unsigned k = 0; k < SIM_KIND__COUNT; k++) {
		uint32_t n = s->w.count[k];
		switch ((enum sim_kind)k) {
		case SIM_CUSTOMER: s->st.customers = n; break;
		case SIM_MERCHANT: s->st.merchants = n; break;
		case SIM_EMPLOYER: s->st.employers = n; break;
		case SIM_BILLER: s->st.billers = n; break;
		case SIM_AGENT: s->st.agents = n; break;
		case SIM_KIND__COUNT: break;
		}
	}
	s->st.mules = s->w.nmules;
	*out = s;
	return HT_OK;
}

void ht_sim_destroy(struct ht_sim *s)
{
	if (!s)
		return;
	sim_world_destroy(&s->w);
	free(s->buf.ev);
	free(s->tmp);
	free(s);
}

void ht_sim_stats(const struct ht_sim *s, struct ht_sim_stats *out)
{
	*out = s->st;
}

/* ---- the day buffer -------------------------------------------------------- */

enum ht_err sim_push(struct sim_buf *b, const struct sim_event *e)
{
	if (b->len == b->cap) {
		if (b->cap >= b->len_max)
			return HT_ERR_LIMIT;
		size_t cap = b->cap ? b->cap * 2 : BUF_EVENTS_MIN;
		if (cap > b->len_max)
			cap = b->len_max;
		struct sim_event *p = realloc(b->ev, cap * sizeof *p);
		if (!p)
			return HT_ERR_NOMEM;
		b->ev = p;
		b->cap = cap;
	}
	b->ev[b->len++] = *e;
	return HT_OK;
}

/*
 * Stable LSD radix sort of a[0..n) by ts, every ts in [base, base +
 * 2^SORT_BITS). Stable, so events with the same ms keep the order they
 * were generated in: carried ones first, then normal life, then fraud.
 * A pass where every key has the same digit is skipped.
 */
static void sort_day(struct sim_event *a, struct sim_event *tmp, size_t n,
		     int64_t base)
{
	struct sim_event *src = a, *dst = tmp;
	for (unsigned shift = 0; shift < SORT_BITS; shift += SORT_RADIX_BITS) {
		size_t count[SORT_BUCKETS] = {0};
		for (size_t i = 0; i < n; i++) {
			uint64_t key = (uint64_t)(src[i].ts_ms - base);
			HT_ASSERT(key < (1ull << SORT_BITS));
			count[key >> shift & (SORT_BUCKETS - 1)]++;
		}
		size_t sum = 0;
		bool trivial = false;
		for (unsigned k = 0; k < SORT_BUCKETS; k++) {
			size_t c = count[k];
			trivial |= c == n;
			count[k] = sum;
			sum += c;
		}
		if (trivial)
			continue;
		for (size_t i = 0; i < n; i++) {
			uint64_t key = (uint64_t)(src[i].ts_ms - base);
			dst[count[key >> shift & (SORT_BUCKETS - 1)]++] = src[i];
		}
		struct sim_event *t = src;
		src = dst;
		dst = t;
	}
	if (src != a)
		memcpy(a, src, n * sizeof *a);
}

static void make_day(const struct ht_sim *s, struct sim_rng *r,
		     struct sim_day *d)
{
	/* Busier at weekends, a little at random every day. */
	static const double weekday_activity[7] = {1.10, 0.97, 0.97, 0.98,
						   1.00, 1.06, 1.14};
	char ts[HT_PAYMENT_TS_BYTES];
	d->index = s->day;
	d->start_ms = s->o.start_ms + (int64_t)s->day * SIM_MS_PER_DAY;
	d->epoch_day = d->start_ms / SIM_MS_PER_DAY;
	d->wday = (unsigned)((d->epoch_day + 4) % 7); /* 1970-01-01: Thursday */
	size_t n = ht_payment_ts_format(d->start_ms, ts);
	HT_ASSERT(n == HT_PAYMENT_TS_BYTES - 1);
	d->mday = (unsigned)(ts[8] - '0') * 10 + (unsigned)(ts[9] - '0');
	d->activity = weekday_activity[d->wday] * sim_lognormal(r, 1.0, 0.05);
}

static enum ht_err ensure_tmp(struct ht_sim *s, size_t n)
{
	if (n <= s->tmp_cap)
		return HT_OK;
	struct sim_event *p = realloc(s->tmp, s->buf.cap * sizeof *p);
	if (!p)
		return HT_ERR_NOMEM;
	s->tmp = p;
	s->tmp_cap = s->buf.cap;
	return HT_OK;
}

/* Generate day s->day: carry to the front, the day's events after it,
 * sort, and mark what is due before the day ends. */
static enum ht_err generate_day(struct ht_sim *s)
{
	struct sim_buf *b = &s->buf;
	size_t carry = b->len - s->ready;
	if (carry)
		memmove(b->ev, b->ev + s->ready, carry * sizeof *b->ev);
	b->len = carry;
	s->cursor = s->ready = 0;
	struct sim_rng r;
	struct sim_day d;
	sim_rng_seed(&r, s->o.seed, 1 + 2 * (uint64_t)s->day);
	make_day(s, &r, &d);
	uint64_t normal = 0, fraud = 0;
	enum ht_err err = sim_day_normal(&s->w, &d, &r, b, &normal);
	double rate = s->o.fraud_rate;
	double want = s->fraud_debt + (double)normal * rate / (1 - rate);
	sim_rng_seed(&r, s->o.seed, 2 + 2 * (uint64_t)s->day);
	if (!err)
		err = sim_day_fraud(&s->w, &d, &r, want, b, &fraud);
	s->fraud_debt = want - (double)fraud;
	if (!err)
		err = ensure_tmp(s, b->len);
	if (err)
		return err;
	sort_day(b->ev, s->tmp, b->len, d.start_ms);
	int64_t end = d.start_ms + SIM_MS_PER_DAY;
	size_t lo = 0, hi = b->len;
	while (lo < hi) { /* first event at or after the day's end */
		size_t mid = lo + (hi - lo) / 2;
		if (b->ev[mid].ts_ms < end)
			lo = mid + 1;
		else
			hi = mid;
	}
	s->ready = lo;
	s->day++;
	s->st.days_generated = s->day;
	if (s->day == s->o.days) {
		s->st.dropped += b->len - s->ready;
		b->len = s->ready;
	}
	return HT_OK;
}

/* ---- handing out ----------------------------------------------------------- */

static char *put_u32(char *p, uint32_t v)
{
	char tmp[10];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* "t-" and the counter, zero-padded to nine digits (more when needed). */
static void put_id(char *out, uint64_t id)
{
	char tmp[20];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + id % 10);
		id /= 10;
	} while (id);
	while (n < 9)
		tmp[n++] = '0';
	*out++ = 't';
	*out++ = '-';
	while (n)
		*out++ = tmp[--n];
	*out = '\0';
}

static void put_ip(char *out, uint32_t ip)
{
	if (!ip) {
		*out = '\0';
		return;
	}
	for (int k = 3; k >= 0; k--) {
		out = put_u32(out, ip >> (8 * k) & 0xff);
		*out++ = k ? '.' : '\0';
	}
}

static void fill(const struct ht_sim *s, const struct sim_event *e,
		 uint64_t id, struct ht_payment *p, struct ht_label *l)
{
	const struct sim_party *payer = &s->w.party[e->payer];
	const struct sim_party *payee = &s->w.party[e->payee];
	memset(p, 0, sizeof *p);
	put_id(p->id, id);
	p->ts_ms = e->ts_ms;
	memcpy(p->payer, payer->ref, sizeof payer->ref);
	memcpy(p->payee, payee->ref, sizeof payee->ref);
	strcpy(p->payer_participant, sim_participant_names[payer->participant]);
	strcpy(p->payee_participant, sim_participant_names[payee->participant]);
	p->amount = e->amount;
	memcpy(p->currency, "CNY", 4);
	p->channel = (enum ht_channel)e->channel;
	if (e->device) {
		p->device[0] = 'd';
		p->device[1] = '-';
		*put_u32(p->device + 2, e->device) = '\0';
	}
	put_ip(p->ip, e->ip);
	memset(l, 0, sizeof *l);
	memcpy(l->id, p->id, sizeof l->id);
	l->type = (enum ht_fraud_type)e->fraud;
	l->fraud = l->type != HT_FRAUD_NONE;
}

enum ht_err ht_sim_next(struct ht_sim *s, struct ht_payment *p,
			struct ht_label *l)
{
	while (!s->failed && s->cursor == s->ready) {
		if (s->day == s->o.days)
			return HT_ERR_NOT_FOUND;
		s->failed = generate_day(s);
	}
	if (s->failed)
		return s->failed;
	const struct sim_event *e = &s->buf.ev[s->cursor++];
	HT_ASSERT(e->fraud < HT_FRAUD__COUNT);
	fill(s, e, s->next_id++, p, l);
	s->st.payments++;
	s->st.by_type[e->fraud]++;
	return HT_OK;
}

/* ---- writing --------------------------------------------------------------- */

struct out {
	FILE *f;
	char *buf;
	size_t len;
};

static enum ht_err out_flush(struct out *o)
{
	if (o->len && fwrite(o->buf, 1, o->len, o->f) != o->len)
		return HT_ERR_IO;
	o->len = 0;
	return HT_OK;
}

/* Room for one more line of up to max bytes and its newline. */
static enum ht_err out_room(struct out *o, size_t max)
{
	if (o->len + max + 2 <= WRITE_BLOCK_BYTES)
		return HT_OK;
	return out_flush(o);
}

static enum ht_err write_one(struct out *pay, struct out *lab,
			     const struct ht_payment *p,
			     const struct ht_label *l)
{
	enum ht_err err = out_room(pay, HT_PAYMENT_FORMAT_BYTES_MAX);
	if (!err)
		err = out_room(lab, HT_LABEL_FORMAT_BYTES_MAX);
	if (err)
		return err;
	/* Our own payments always format: a 0 here is a bug, not input. */
	size_t n = ht_payment_format(p, pay->buf + pay->len,
				     WRITE_BLOCK_BYTES - pay->len);
	HT_ASSERT(n > 0);
	pay->len += n;
	pay->buf[pay->len++] = '\n';
	n = ht_label_format(l, lab->buf + lab->len, WRITE_BLOCK_BYTES - lab->len);
	HT_ASSERT(n > 0);
	lab->len += n;
	lab->buf[lab->len++] = '\n';
	return HT_OK;
}

static enum ht_err write_all(struct ht_sim *s, struct out *pay,
			     struct out *lab, ht_sim_progress_fn *progress,
			     void *ctx)
{
	struct ht_payment p;
	struct ht_label l;
	enum ht_err err;
	while ((err = ht_sim_next(s, &p, &l)) == HT_OK) {
		if ((err = write_one(pay, lab, &p, &l)))
			return err;
		if (progress && s->st.payments % HT_SIM_PROGRESS_EVERY == 0)
			progress(ctx, &s->st);
	}
	if (err != HT_ERR_NOT_FOUND)
		return err;
	if ((err = out_flush(pay)) || (err = out_flush(lab)))
		return err;
	if (fflush(pay->f) || fflush(lab->f) || ferror(pay->f) || ferror(lab->f))
		return HT_ERR_IO;
	if (progress)
		progress(ctx, &s->st);
	return HT_OK;
}

enum ht_err ht_sim_write(struct ht_sim *s, FILE *payments, FILE *labels,
			 ht_sim_progress_fn *progress, void *ctx)
{
	if (!s || !payments || !labels)
		return HT_ERR_INVALID;
	struct out pay = {payments, malloc(WRITE_BLOCK_BYTES), 0};
	struct out lab = {labels, malloc(WRITE_BLOCK_BYTES), 0};
	enum ht_err err = pay.buf && lab.buf
				  ? write_all(s, &pay, &lab, progress, ctx)
				  : HT_ERR_NOMEM;
	free(pay.buf);
	free(lab.buf);
	return err;
}

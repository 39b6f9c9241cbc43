/*
 * features.c — bench_features: nanoseconds per payment of the feature
 * engine (ht_features_compute + ht_features_update) and the memory its
 * state takes, at the scale of docs/risk-features.md's claim: 10M parties
 * in at most 4 GiB, compute + update at most 2 us on one core.
 *
 * Owner: bench (written with the feature engine). A synthetic population
 * of --parties parties (90% customers, 10% merchants) makes --payments
 * payments over --days days in time order: customers pay merchants (their
 * few favourites mostly, else a skewed choice among all) and each other
 * (a few contacts each), merchants pay customers (payroll); a customer
 * pays from its own phone and home IP mostly, sometimes from another
 * device or address; card and bill payments name no device. Payments are
 * generated in batches outside the timed region; each batch is then
 * computed and recorded, one payment at a time as the hub does, under the
 * clock.
 *
 * The first --warmup percent of the payments fill the state (reported,
 * not in the median); the rest is cut into --runs runs, and the report is
 * the median run's ns per payment, with batch percentiles beside it. Time
 * is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so other processes
 * on a shared machine do not inflate it; wall time is printed beside it.
 * One batch in 16 is also computed alone first (read-only, so harmless)
 * to time compute by itself; those batches stay out of the compute+update
 * figures, since the first pass warmed their cache lines. Memory: the
 * state's own bytes (allocated, virtual), its live entries, and the
 * process's resident set (VmRSS, VmHWM), so untouched pages do not flatter
 * the figure (both read before the last step, a pointer chase that gives
 * this machine's latency for one random read, to compare machines by). A
 * last JSON line is for scripts. It never writes a file.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "huitong/features.h"

#define BATCH 4096
#define RUNS_MAX 100
#define COMPUTE_ONLY_EVERY 16
#define FAVOURITES 5
#define CONTACTS 4

struct opts {
	uint64_t parties;
	uint64_t payments;
	unsigned days;
	unsigned runs;
	unsigned warmup_pct;
	size_t bytes;
	uint64_t seed;
};

static uint64_t rng;

static uint64_t rnd64(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t below(uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rnd64() * n) >> 64);
}

static double uniform(void)
{
	return (double)(rnd64() >> 11) / 9007199254740992.0;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ull;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dull;
	return x ^ (x >> 33);
}

/* "prefix" + decimal n into dst (size 65), NUL-terminated; no printf. */
static void name(char *dst, const char *prefix, uint64_t n)
{
	size_t k = strlen(prefix);
	memcpy(dst, prefix, k);
	char digits[24];
	int d = 0;
	do {
		digits[d++] = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	while (d)
		dst[k++] = digits[--d];
	dst[k] = 0;
}

struct population {
	uint64_t customers, merchants, ips, devices;
};

static uint64_t skewed_merchant(const struct population *pop)
{
	double u = uniform();
	return (uint64_t)((double)pop->merchants * u * u * u);
}

static void party_name(char *dst, bool merchant, uint64_t i)
{
	static const char *const c[] = {"bankA:c", "bankB:c", "bankC:c",
					"bankD:c"};
	static const char *const m[] = {"bankA:m", "bankB:m", "bankC:m",
					"bankD:m"};
	name(dst, merchant ? m[i & 3] : c[i & 3], i);
}

static void make_payment(struct ht_payment *p, const struct population *pop,
			 int64_t ts_ms, uint64_t seq)
{
	memset(p, 0, sizeof *p);
	name(p->id, "t-", seq);
	p->ts_ms = ts_ms;
	memcpy(p->currency, "CNY", 4);
	memcpy(p->payer_participant, "bankA", 6);
	memcpy(p->payee_participant, "bankB", 6);
	/* heavy-tailed amounts: 1 yuan to ~200k, most under 500 */
	double u = uniform();
	p->amount = 100 + (uint64_t)(100.0 * exp(12.2 * u * u * u));
	if (below(100) < 8) {  /* payroll: a merchant pays a customer */
		uint64_t m = below(pop->merchants);
		party_name(p->payer, true, m);
		party_name(p->payee, false, mix(m * 31 + below(50)) %
						    pop->customers);
		p->channel = HT_CHANNEL_TRANSFER;
		return;
	}
	uint64_t c = below(pop->customers);
	party_name(p->payer, false, c);
	uint64_t r = below(100);
	if (r < 70) {
		uint64_t m = below(100) < 60
				     ? mix(c * FAVOURITES + below(FAVOURITES)) %
					       pop->merchants
				     : skewed_merchant(pop);
		party_name(p->payee, true, m);
		p->channel = r < 45 ? HT_CHANNEL_QR
				    : r < 60 ? HT_CHANNEL_CARD : HT_CHANNEL_BILL;
	} else {
		uint64_t friend = mix(c * CONTACTS + below(CONTACTS)) %
				  pop->customers;
		party_name(p->payee, false, friend);
		p->channel = HT_CHANNEL_P2P;
	}
	if (p->channel != HT_CHANNEL_CARD && p->channel != HT_CHANNEL_BILL) {
		uint64_t d = below(100) < 95 ? c : below(pop->devices);
		name(p->device, "dev-", d);
	}
	uint64_t ip = below(100) < 85 ? c % pop->ips : below(pop->ips);
	name(p->ip, "10.", ip);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double percentile(double *v, size_t n, double q)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof *v, cmp_double);
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i];
}

static long status_kib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	char line[256];
	long v = -1;
	size_t k = strlen(key);
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, key, k) && line[k] == ':') {
			v = strtol(line + k + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_features [--parties N] [--payments N] [--days D]\n"
		"                      [--runs R] [--warmup PCT] [--bytes B]\n"
		"                      [--seed S]\n"
		"defaults: 10000000 parties, 20000000 payments over 7 days,\n"
		"50%% warmup, 3 runs, 4 GiB budget (--bytes 0 = default)\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){10000000, 20000000, 7, 3, 50, 0, 1};
	static const struct option lo[] = {
		{"parties", 1, 0, 'p'}, {"payments", 1, 0, 'n'},
		{"days", 1, 0, 'd'},    {"runs", 1, 0, 'r'},
		{"warmup", 1, 0, 'w'},  {"bytes", 1, 0, 'b'},
		{"seed", 1, 0, 's'},    {"help", 0, 0, 'h'},
		{0, 0, 0, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		char *end = NULL;
		unsigned long long v = optarg ? strtoull(optarg, &end, 10) : 0;
		if (optarg && (*end || end == optarg))
			return -1;
		switch (c) {
		case 'p': o->parties = v; break;
		case 'n': o->payments = v; break;
		case 'd': o->days = (unsigned)v; break;
		case 'r': o->runs = (unsigned)v; break;
		case 'w': o->warmup_pct = (unsigned)v; break;
		case 'b': o->bytes = (size_t)v; break;
		case 's': o->seed = v; break;
		default: return -1;
		}
	}
	if (o->parties < 20 || o->parties > 1000000000 || o->payments < 1 ||
	    o->payments > 10000000000ull || o->days < 1 || o->days > 3650 ||
	    o->runs < 1 || o->runs > RUNS_MAX || o->warmup_pct > 90)
		return -1;
	return optind == argc ? 0 : -1;
}

static uint64_t cpu_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

struct timing {
	double *batch_ns;     /* CPU ns per payment of each timed batch */
	size_t batches;
	double total_ns;      /* CPU */
	double wall_ns;
	uint64_t total_n;
	double compute_ns;    /* compute alone, summed */
	uint64_t compute_n;
};

static bool timing_init(struct timing *tm, uint64_t payments)
{
	*tm = (struct timing){0};
	tm->batch_ns = calloc(payments / BATCH + 2, sizeof(double));
	return tm->batch_ns != NULL;
}

static double per_payment(const struct timing *tm)
{
	return tm->total_n ? tm->total_ns / (double)tm->total_n : 0;
}

/* Feed payments [from, to) of the stream; time compute+update per batch. */
static void feed(struct ht_risk_state *s, const struct population *pop,
		 const struct opts *o, uint64_t from, uint64_t to,
		 struct ht_payment *buf, struct timing *tm)
{
	const int64_t start_ms = 1772323200000LL; /* 2026-03-01T00:00Z */
	double step_ms = (double)o->days * 86400000.0 / (double)o->payments;
	float f[HT_FEATURE__COUNT];
	volatile float sink = 0;
	for (uint64_t at = from; at < to; at += BATCH) {
		size_t n = to - at < BATCH ? (size_t)(to - at) : BATCH;
		for (size_t i = 0; i < n; i++)
			make_payment(&buf[i], pop,
				     start_ms + (int64_t)((double)(at + i) *
							  step_ms),
				     at + i);
		bool alone = (at / BATCH) % COMPUTE_ONLY_EVERY == 0;
		if (alone) {
			uint64_t t0 = cpu_ns();
			for (size_t i = 0; i < n; i++) {
				ht_features_compute(s, &buf[i], f);
				sink += f[0];
			}
			tm->compute_ns += (double)(cpu_ns() - t0);
			tm->compute_n += n;
		}
		uint64_t w0 = ht_now_monotonic_ns(), t0 = cpu_ns();
		for (size_t i = 0; i < n; i++) {
			ht_features_compute(s, &buf[i], f);
			sink += f[HT_FEATURE__COUNT - 1];
			ht_features_update(s, &buf[i]);
		}
		double ns = (double)(cpu_ns() - t0);
		double wall = (double)(ht_now_monotonic_ns() - w0);
		if (!alone) {
			tm->batch_ns[tm->batches++] = ns / (double)n;
			tm->total_ns += ns;
			tm->wall_ns += wall;
			tm->total_n += n;
		}
	}
	(void)sink;
}

static void print_state(const struct ht_risk_state *s)
{
	struct ht_risk_state_stats st;
	ht_risk_state_stats(s, &st);
	printf("  %-7s %12s %12s %12s %10s\n", "table", "entries", "capacity",
	       "evictions", "B/entry");
	for (int t = 0; t < HT_RISK_TABLE__COUNT; t++)
		printf("  %-7s %12zu %12zu %12" PRIu64 " %10zu\n",
		       ht_risk_table_name(t), st.entries[t], st.capacity[t],
		       st.evictions[t], ht_risk_entry_bytes(t));
	long rss = status_kib("VmRSS"), hwm = status_kib("VmHWM");
	printf("  state %.1f MiB allocated (%.2f GiB), VmRSS %.1f MiB, "
	       "VmHWM %.1f MiB\n", (double)st.bytes / 1048576.0,
	       (double)st.bytes / 1073741824.0, (double)rss / 1024.0,
	       (double)hwm / 1024.0);
}

/*
 * The machine's latency for one dependent random read in a 256 MiB array
 * (huge pages asked for; a random cyclic walk, Sattolo's shuffle), printed
 * beside the result: a payment's cost is mostly such reads, so it says how
 * this machine's figure compares with another's.
 */
static double chase_ns(void)
{
	const size_t slots = (256u << 20) / 64, steps = 2000000;
	uint64_t *a = NULL;
	if (posix_memalign((void **)&a, 2u << 20, slots * 64))
		return 0;
#ifdef MADV_HUGEPAGE
	(void)madvise(a, slots * 64, MADV_HUGEPAGE);
#endif
	for (size_t i = 0; i < slots; i++)
		a[i * 8] = i;
	for (size_t i = slots - 1; i > 0; i--) {   /* one cycle through all */
		size_t j = below(i);
		uint64_t t = a[i * 8];
		a[i * 8] = a[j * 8];
		a[j * 8] = t;
	}
	uint64_t p = 0, t0 = cpu_ns();
	for (size_t i = 0; i < steps; i++)
		p = a[p * 8];
	double ns = (double)(cpu_ns() - t0) / (double)steps;
	volatile uint64_t sink = p;
	(void)sink;
	free(a);
	return ns;
}

/* The timed runs after the fill, and the report; 0 or 1 (out of memory). */
static int measure(struct ht_risk_state *s, const struct population *pop,
		   const struct opts *o, struct ht_payment *buf, uint64_t warm)
{
	static struct timing run[RUNS_MAX];
	uint64_t per_run = (o->payments - warm) / o->runs;
	double ns[RUNS_MAX], compute_ns = 0, wall_ns = 0;
	uint64_t compute_n = 0, timed_n = 0;
	for (unsigned r = 0; r < o->runs; r++) {
		if (!timing_init(&run[r], per_run))
			return 1;
		uint64_t from = warm + r * per_run;
		feed(s, pop, o, from, from + per_run, buf, &run[r]);
		ns[r] = per_payment(&run[r]);
		compute_ns += run[r].compute_ns;
		compute_n += run[r].compute_n;
		wall_ns += run[r].wall_ns;
		timed_n += run[r].total_n;
	}
	for (unsigned r = 0; r < o->runs; r++)
		printf("run %u:  %.0f ns/payment (batches of %d: median %.0f, "
		       "p99 %.0f)\n", r + 1, ns[r], BATCH,
		       percentile(run[r].batch_ns, run[r].batches, 0.5),
		       percentile(run[r].batch_ns, run[r].batches, 0.99));
	double med = percentile(ns, o->runs, 0.5);
	double comp = compute_n ? compute_ns / (double)compute_n : 0;
	double wall = timed_n ? wall_ns / (double)timed_n : 0;
	struct ht_risk_state_stats st;
	ht_risk_state_stats(s, &st);
	print_state(s);   /* memory first: the probe below allocates */
	long rss = status_kib("VmRSS"), hwm = status_kib("VmHWM");
	double chase = chase_ns();
	printf("result: compute+update %.0f ns/payment CPU (median of %u "
	       "runs; wall %.0f); compute alone %.0f; this machine's random "
	       "read: %.0f ns\n", med, o->runs, wall, comp, chase);
	printf("{\"bench\":\"features\",\"parties\":%" PRIu64
	       ",\"payments\":%" PRIu64 ",\"ns_per_payment\":%.1f,"
	       "\"wall_ns_per_payment\":%.1f,\"compute_ns\":%.1f,"
	       "\"random_read_ns\":%.1f,\"state_bytes\":%zu,"
	       "\"party_entries\":%zu,\"vm_rss_kib\":%ld,"
	       "\"vm_hwm_kib\":%ld}\n",
	       o->parties, o->payments, med, wall, comp, chase, st.bytes,
	       st.entries[HT_RISK_TABLE_PARTY], rss, hwm);
	for (unsigned r = 0; r < o->runs; r++)
		free(run[r].batch_ns);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	if (parse_opts(argc, argv, &o)) {
		usage();
		return 2;
	}
	rng = o.seed * 0x9e3779b97f4a7c15ull | 1;
	struct population pop = {
		.customers = o.parties - o.parties / 10,
		.merchants = o.parties / 10,
		.ips = o.parties / 4,
		.devices = o.parties - o.parties / 10,
	};
	struct ht_risk_config cfg = {.bytes_max = o.bytes, .hash_seed = o.seed};
	struct ht_risk_state *s = NULL;
	enum ht_err err = ht_risk_state_open(&cfg, &s);
	if (err) {
		fprintf(stderr, "bench_features: open: %s\n", ht_strerror(err));
		return 1;
	}
	struct ht_payment *buf = calloc(BATCH, sizeof *buf);
	uint64_t warm = o.payments * o.warmup_pct / 100;
	static struct timing fill;
	if (!buf || (o.payments - warm) / o.runs < 2 * BATCH ||
	    !timing_init(&fill, warm)) {
		fprintf(stderr, "bench_features: out of memory or too few "
				"payments for the runs\n");
		return 1;
	}
	printf("bench_features: %" PRIu64 " parties (%" PRIu64
	       " customers, %" PRIu64 " merchants), %" PRIu64
	       " payments over %u days, %u%% warmup, %u runs\n",
	       o.parties, pop.customers, pop.merchants, o.payments, o.days,
	       o.warmup_pct, o.runs);
	feed(s, &pop, &o, 0, warm, buf, &fill);
	printf("fill:   %" PRIu64 " payments, %.0f ns/payment (the tables "
	       "filling)\n", fill.total_n, per_payment(&fill));
	int rc = measure(s, &pop, &o, buf, warm);
	free(fill.batch_ns);
	free(buf);
	ht_risk_state_close(s);
	return rc;
}

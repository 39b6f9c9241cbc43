/*
 * risk.c — bench_risk: what deciding one payment costs in the risk engine
 * (risk.h): features against the history, a 300-tree model, 50 rules,
 * then recording the payment — the figures behind "scoring latency p99 <=
 * 20 us and >= 200,000 payments/s on one core" (issue 4, docs/risk.md,
 * docs/performance.md "Risk").
 *
 * Owner: bench. The payments come from the simulator in memory
 * (ht_sim_next; --parties, --days, --seed), so the features see the
 * bursts, merchants and fraud of a realistic stream. The rule set is 50
 * rules written here over the feature catalogue (comparisons, and/or,
 * arithmetic, a 1,000-entry payee list, a participant section, shadow
 * rules); the model is --model (the default model `make build` trains: 300
 * trees of depth 6). The thread is pinned to one CPU. Each run opens a
 * fresh engine, runs the first half of the stream unmeasured (a live
 * hub's state is warm: its pages touched, its history there), then decides
 * + records every later payment in order, timing each with the monotonic
 * clock; the report gives per-payment latency
 * percentiles and payments per second for each configuration, side by
 * side in the same run — features only (the baseline), + model, + rules,
 * + both, + both with a shared block list of 10,000 keyed hashes — as
 * the median over --runs runs, and one JSON line per
 * configuration for scripts.
 */
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "huitong/risk.h"
#include "huitong/sim.h"

#define RUNS_MAX 99
#define PAYMENTS_MAX 5000000u
/* Latency histogram: 10 ns buckets up to 1 ms, then one overflow bucket. */
#define HIST_NS 10
#define HIST_BUCKETS 100001

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* 50 rules over the catalogue: 40 global (5 shadow), 10 in a section. */
static char *rule_text(void)
{
	size_t cap = 1 << 16;
	char *s = malloc(cap);
	if (!s)
		return NULL;
	size_t n = 0;
#define PUT(...) (n += (size_t)snprintf(s + n, cap - n, __VA_ARGS__))
	PUT("version 1\nlist watched = [");
	for (int i = 0; i < 1000; i++)
		PUT("%s\"bankB:m%d\"", i ? ", " : "", 100000 + i);
	PUT("]\n");
	static const char *const tmpl[8] = {
		"payer.count_1m > %d and device.new_for_payer == 1",
		"payer.count_1h > %d and payer.distinct_payees_24h > 3",
		"amount > %d * 1000 and pair.new == 1 and (hour < 6 or hour > 23)",
		"payer.amount_ratio > %d and payer.amount_n >= 5",
		"payee.distinct_payers_24h > %d * 10 and payee.age < 3d",
		"ip.distinct_payers_24h > %d and ip.new_for_payer == 1",
		"payer.sum_24h / (payer.count_24h + 1) > %d * 200",
		"amount.under_line == 1 and payer.count_7d > %d"};
	for (int i = 0; i < 40; i++) {
		char cond[256];
		snprintf(cond, sizeof cond, tmpl[i % 8], 2 + i / 8);
		PUT("%srule g%d: %s => %s score %d\n", i % 8 == 7 ? "shadow " : "",
		    i, cond, i % 3 ? "review" : "block", 10 + i % 5);
	}
	PUT("participant bankA {\n");
	for (int i = 0; i < 9; i++)
		PUT("  rule a%d: channel == \"cash_out\" and amount > %d and "
		    "payer.age < 30d => review score 20\n", i, 1000 * (i + 1));
	PUT("  rule a9: payee in watched => block score 90\n}\n");
#undef PUT
	return s;
}

struct cfg {
	const char *model_path;
	uint64_t seed;
	unsigned parties, days, runs, cpu;
};

struct result {
	double pps, p50, p99, p999, max;
};

static double quantile(const uint32_t *h, uint64_t n, double q)
{
	uint64_t want = (uint64_t)ceil(q * (double)n), seen = 0;
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		seen += h[i];
		if (seen >= want && want)
			return (double)(i * HIST_NS) / 1000.0;
	}
	return (double)(HIST_BUCKETS * HIST_NS) / 1000.0;
}

/* The shared block list of the last configuration: BLOCK_ENTRIES keyed
 * hashes, every 100th of them one of the stream's payees (so some
 * payments are blocked), the rest values no payment has. */
#define BLOCK_ENTRIES 10000
struct blockset {
	char dir[64];
	uint8_t key[HT_BLOCK_KEY_BYTES];
	struct ht_blocklist *bl;
};

static int blockset_make(struct blockset *b, const struct ht_payment *pays,
			 size_t n)
{
	snprintf(b->dir, sizeof b->dir, "%s", "/tmp/bench-risk-XXXXXX");
	if (!mkdtemp(b->dir) || ht_block_key_load(b->dir, true, b->key) ||
	    ht_blocklist_open(b->dir, &b->bl))
		return 2;
	struct ht_block_entry *e = calloc(BLOCK_ENTRIES, sizeof *e);
	enum ht_err *res = calloc(BLOCK_ENTRIES, sizeof *res);
	if (!e || !res)
		return 2;
	for (size_t i = 0; i < BLOCK_ENTRIES; i++) {
		char v[HT_PAYMENT_REF_BYTES];
		if (i % 100 == 0)
			snprintf(v, sizeof v, "%s", pays[(i * 7919) % n].payee);
		else
			snprintf(v, sizeof v, "elsewhere:m%zu", i);
		e[i].kind = i % 2 ? HT_BLOCK_DEVICE : HT_BLOCK_ACCOUNT;
		if (i % 100 == 0)
			e[i].kind = HT_BLOCK_ACCOUNT;
		snprintf(e[i].reporter, sizeof e[i].reporter, "bench");
		if (ht_block_hash(b->key, e[i].kind, v, strlen(v), e[i].hash))
			return 2;
	}
	enum ht_err err = ht_blocklist_add_many(b->bl, e, BLOCK_ENTRIES, res);
	free(e);
	free(res);
	return err ? 2 : 0;
}

static void blockset_free(struct blockset *b)
{
	char path[128];
	ht_blocklist_close(b->bl);
	const char *files[] = {"risk.db", "risk.db-wal", "risk.db-shm", "risk.key"};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", b->dir, files[i]);
		unlink(path);
	}
	rmdir(b->dir);
}

static int one_run(const struct ht_payment *pays, size_t n,
		   struct ht_model *model, struct ht_rules_holder *rules,
		   const struct blockset *block, uint32_t *hist,
		   struct result *r)
{
	struct ht_risk_engine_config ec = {.model = model, .rules = rules};
	if (block) {
		ec.blocklist = block->bl;
		ec.blocklist_key = block->key;
	}
	ec.state.bytes_max = (size_t)512 << 20;
	ec.state.hash_seed = 1;
	struct ht_risk_engine *e;
	char err[256];
	if (ht_risk_engine_open(&ec, &e, err, sizeof err)) {
		fprintf(stderr, "bench_risk: %s\n", err);
		return 2;
	}
	memset(hist, 0, HIST_BUCKETS * sizeof *hist);
	uint64_t maxns = 0, blocked = 0;
	/* the first half warms the state (its pages, its history) unmeasured:
	 * a live hub's state is warm */
	size_t warm = n / 2;
	for (size_t i = 0; i < warm; i++) {
		struct ht_risk_decision d;
		if (ht_risk_engine_decide(e, &pays[i], &d)) {
			ht_risk_engine_close(e);
			return 2;
		}
		ht_risk_engine_record(e, &pays[i]);
	}
	uint64_t t_start = now_ns();
	for (size_t i = warm; i < n; i++) {
		struct ht_risk_decision d;
		uint64_t t0 = now_ns();
		if (ht_risk_engine_decide(e, &pays[i], &d)) {
			ht_risk_engine_close(e);
			return 2;
		}
		ht_risk_engine_record(e, &pays[i]);
		uint64_t dt = now_ns() - t0;
		blocked += d.decision == HT_DECISION_BLOCK;
		maxns = dt > maxns ? dt : maxns;
		size_t b = dt / HIST_NS;
		hist[b < HIST_BUCKETS ? b : HIST_BUCKETS - 1]++;
	}
	uint64_t total = now_ns() - t_start;
	ht_risk_engine_close(e);
	r->pps = (double)(n - warm) / ((double)total / 1e9);
	r->p50 = quantile(hist, n - warm, 0.50);
	r->p99 = quantile(hist, n - warm, 0.99);
	r->p999 = quantile(hist, n - warm, 0.999);
	r->max = (double)maxns / 1000.0;
	(void)blocked;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const char usage[] =
	"usage: bench_risk --model MODEL [--parties N] [--days D] [--seed S]\n"
	"                  [--runs R] [--cpu C]\n"
	"Decide + record every payment of a simulated stream, one thread pinned\n"
	"to CPU C (0); features only, + model, + 50 rules, + both, + a shared\n"
	"block list of 10,000 entries; medians of R\n"
	"runs (3). Defaults: 20,000 parties, 7 days (~400,000 payments).\n";

int main(int argc, char **argv)
{
	struct cfg c = {NULL, 7, 20000, 7, 3, 0};
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'},
		{"parties", required_argument, NULL, 'p'},
		{"days", required_argument, NULL, 'd'},
		{"seed", required_argument, NULL, 's'},
		{"runs", required_argument, NULL, 'r'},
		{"cpu", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	int o;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'm': c.model_path = optarg; break;
		case 'p': c.parties = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'd': c.days = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's': c.seed = strtoull(optarg, NULL, 10); break;
		case 'r': c.runs = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'c': c.cpu = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (!c.model_path || c.runs < 1 || c.runs > RUNS_MAX) {
		fputs(usage, stderr);
		return 2;
	}
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(c.cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set))
		fprintf(stderr, "bench_risk: cannot pin to CPU %u (running"
				" unpinned)\n", c.cpu);

	char err[256];
	struct ht_model *model;
	if (ht_model_load(c.model_path, &model, err, sizeof err)) {
		fprintf(stderr, "bench_risk: %s: %s\n", c.model_path, err);
		return 2;
	}
	char *text = rule_text();
	struct ht_ruleset *rs;
	struct ht_rules_diag diag;
	if (!text || ht_rules_parse(text, strlen(text), ht_risk_rule_schema(),
				    &rs, &diag)) {
		fprintf(stderr, "bench_risk: the rule set does not compile: %s"
				" (line %u)\n", diag.count ? diag.errors[0].message : "?",
			diag.count ? diag.errors[0].line : 0);
		return 2;
	}
	free(text);
	struct ht_rules_holder *holder;
	if (ht_rules_holder_create(rs, &holder))
		return 2;

	struct ht_sim_options so;
	ht_sim_options_default(&so);
	so.seed = c.seed;
	so.parties = c.parties;
	so.days = c.days;
	struct ht_sim *sim;
	if (ht_sim_create(&so, &sim))
		return 2;
	size_t cap = 1 << 16, n = 0;
	struct ht_payment *pays = malloc(cap * sizeof *pays);
	struct ht_label lab;
	while (pays && n < PAYMENTS_MAX) {
		if (n == cap) {
			struct ht_payment *g = realloc(pays, 2 * cap * sizeof *pays);
			if (!g)
				break;
			pays = g;
			cap *= 2;
		}
		if (ht_sim_next(sim, &pays[n], &lab))
			break;
		n++;
	}
	ht_sim_destroy(sim);
	uint32_t *hist = malloc(HIST_BUCKETS * sizeof *hist);
	if (!pays || !hist || !n)
		return 2;
	printf("bench_risk: %zu payments (%u parties, %u days, seed %llu), model"
	       " %s (%zu trees), %zu rules, CPU %u, %u runs\n", n, c.parties,
	       c.days, (unsigned long long)c.seed, ht_model_version(model),
	       ht_model_tree_count(model), ht_rules_count(rs), c.cpu, c.runs);
	struct blockset block;
	if (blockset_make(&block, pays, n)) {
		fprintf(stderr, "bench_risk: cannot make the block list\n");
		return 2;
	}
	static const char *const names[5] = {
		"features", "features+model", "features+rules",
		"features+model+rules", "all+blocklist"};
	for (int k = 0; k < 5; k++) {
		double pps[RUNS_MAX], p50[RUNS_MAX], p99[RUNS_MAX], p999[RUNS_MAX],
			mx[RUNS_MAX];
		for (unsigned run = 0; run < c.runs; run++) {
			struct result r;
			if (one_run(pays, n, k & 1 || k == 4 ? model : NULL,
				    k & 2 || k == 4 ? holder : NULL,
				    k == 4 ? &block : NULL, hist, &r))
				return 2;
			pps[run] = r.pps;
			p50[run] = r.p50;
			p99[run] = r.p99;
			p999[run] = r.p999;
			mx[run] = r.max;
		}
		double m_pps = median(pps, c.runs), m50 = median(p50, c.runs),
		       m99 = median(p99, c.runs), m999 = median(p999, c.runs),
		       mmax = median(mx, c.runs);
		printf("  %-22s %9.0f payments/s   p50 %6.2f us   p99 %6.2f us"
		       "   p99.9 %6.2f us   max %7.1f us\n", names[k], m_pps, m50,
		       m99, m999, mmax);
		fprintf(stderr, "{\"config\":\"%s\",\"payments\":%zu,"
			"\"payments_per_s\":%.0f,\"p50_us\":%.2f,\"p99_us\":%.2f,"
			"\"p999_us\":%.2f,\"max_us\":%.1f,\"runs\":%u}\n",
			names[k], n, m_pps, m50, m99, m999, mmax, c.runs);
	}
	blockset_free(&block);
	free(pays);
	free(hist);
	ht_rules_holder_destroy(holder);
	ht_model_destroy(model);
	return 0;
}

/*
 * alias.c — bench_alias: alias lookups per second on one thread (issue 5:
 * "alias lookups >= 100,000/s"), with the keyed hash alone as the baseline
 * in the same run (a lookup is one HMAC-SM3 and one probe: the ratio says
 * what the directory adds to the hash).
 *
 * Owner: bench (written with the alias directory). It registers --aliases
 * mobile numbers (default 1,000,000) in one transaction in a throwaway
 * directory, then for --runs runs (default 3) times --lookups lookups
 * (default 1,000,000; nine in ten hits, in random order) and the same
 * number of bare HMAC-SM3 computations over the same values, and prints
 * the medians and a JSON line. It removes its directory at the end.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "huitong/alias.h"
#include "huitong/crypto.h"

#define RUNS_MAX 100

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	unsigned long aliases = 1000000, lookups = 1000000, runs = 3;
	static const struct option opts[] = {
		{"aliases", required_argument, NULL, 'a'},
		{"lookups", required_argument, NULL, 'l'},
		{"runs", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	int o;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'a': aliases = strtoul(optarg, NULL, 10); break;
		case 'l': lookups = strtoul(optarg, NULL, 10); break;
		case 'r': runs = strtoul(optarg, NULL, 10); break;
		default:
			printf("usage: bench_alias [--aliases N] [--lookups N]"
			       " [--runs R]\n");
			return o == 'h' ? 0 : 2;
		}
	}
	if (!aliases || aliases > 50000000 || !lookups || !runs || runs > RUNS_MAX)
		return 2;
	char dir[] = "/tmp/bench-alias-XXXXXX";
	if (!mkdtemp(dir))
		return 2;
	struct ht_alias_dir *d;
	char err[256];
	if (ht_alias_open(dir, &d, err, sizeof err)) {
		fprintf(stderr, "bench_alias: %s\n", err);
		return 2;
	}
	uint64_t t0 = now_ns();
	ht_alias_batch_begin(d);
	for (unsigned long i = 0; i < aliases; i++) {
		char v[24];
		int n = snprintf(v, sizeof v, "+86139%08lu", i);
		if (ht_alias_register(d, HT_ALIAS_MOBILE, v, (size_t)n,
				      i % 4 ? "bankA" : "bankB", "9900011234567890",
				      1)) {
			fprintf(stderr, "bench_alias: register %lu failed\n", i);
			return 2;
		}
	}
	if (ht_alias_batch_commit(d))
		return 2;
	double reg_s = (double)(now_ns() - t0) / 1e9;
	/* the values to look up: nine in ten registered */
	char (*vals)[24] = malloc(lookups * sizeof *vals);
	size_t *lens = malloc(lookups * sizeof *lens);
	if (!vals || !lens)
		return 2;
	for (unsigned long i = 0; i < lookups; i++) {
		unsigned long k = rnd() % aliases;
		lens[i] = (size_t)snprintf(vals[i], sizeof vals[i], "+86%s%08lu",
					   rnd() % 10 ? "139" : "150", k);
	}
	uint8_t key[32] = {7};
	struct ht_hmac_sm3 *mac;
	if (ht_hmac_sm3_new(key, sizeof key, &mac))
		return 2;
	double lk[RUNS_MAX], hm[RUNS_MAX];
	unsigned long hits = 0;
	for (unsigned long r = 0; r < runs; r++) {
		struct ht_alias_target t;
		hits = 0;
		t0 = now_ns();
		for (unsigned long i = 0; i < lookups; i++)
			hits += !ht_alias_lookup(d, HT_ALIAS_MOBILE, vals[i], lens[i],
						 &t);
		lk[r] = (double)lookups / ((double)(now_ns() - t0) / 1e9);
		uint8_t out[32], acc = 0;
		t0 = now_ns();
		for (unsigned long i = 0; i < lookups; i++) {
			uint8_t kind = HT_ALIAS_MOBILE;
			struct ht_iov p[] = {{"huitong-alias-v1", 16}, {&kind, 1},
					     {vals[i], lens[i]}};
			ht_hmac_sm3(mac, p, 3, out);
			acc ^= out[0];
		}
		hm[r] = (double)lookups / ((double)(now_ns() - t0) / 1e9);
		if (acc == 0x5a && hm[r] < 0)
			puts(""); /* keep the MACs */
	}
	qsort(lk, runs, sizeof *lk, cmp_double);
	qsort(hm, runs, sizeof *hm, cmp_double);
	double mlk = lk[runs / 2], mhm = hm[runs / 2];
	printf("bench_alias: %lu aliases registered in %.1f s (one transaction);"
	       " %lu lookups a run, %lu hits; medians of %lu runs, one thread\n",
	       aliases, reg_s, lookups, hits, runs);
	printf("  HMAC-SM3 alone (baseline)  %10.0f /s\n", mhm);
	printf("  alias lookup               %10.0f /s   (%.2f of the baseline)\n",
	       mlk, mlk / mhm);
	fprintf(stderr, "{\"bench\":\"alias\",\"aliases\":%lu,\"lookups_per_s\":%.0f,"
		"\"hmac_per_s\":%.0f,\"runs\":%lu}\n", aliases, mlk, mhm, runs);
	ht_hmac_sm3_free(mac);
	ht_alias_close(d);
	free(vals);
	free(lens);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) ? 2 : 0;
}

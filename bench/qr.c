/*
 * qr.c — bench_qr: what parsing one QR payload costs (qr.h) — the figure
 * behind "QR parse >= 1,000,000/s on one core" (issue 5; docs/qr.md,
 * docs/performance.md "QR").
 *
 * Owner: bench. The payloads are the rows of
 * $HT_SHARED/conformance/emv_mpm.tsv (37 real codes of nine national
 * schemes and 9 invalid ones; --tsv FILE names another) when present,
 * plus codes made here with ht_qr_mpm_make (static and dynamic, Chinese
 * names, additional data, alternate language): the mix a scanning hub
 * sees. The thread is pinned to one CPU. Each run parses every payload in
 * turn --count times in all, timing the whole loop with the monotonic
 * clock, and in the same run, over the same bytes in the same order, two
 * baselines: CRC-16/CCITT-FALSE alone (the least any validator does) and
 * a memchr scan (what touching the bytes costs). The report gives
 * parses/s and ns per payload for each as the median over --runs runs,
 * the ratios, and one JSON line per measure on stderr for scripts. CPM
 * decoding (base64 + BER-TLV) of made codes is measured beside it, not a
 * target.
 */
#include <getopt.h>
#include <jansson.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "huitong/qr.h"

#define RUNS_MAX 99
#define PAYLOADS_MAX 256

static const char usage[] =
	"usage: bench_qr [--count N] [--runs R] [--cpu C] [--tsv FILE]\n"
	"  --count N  payloads parsed per run (default 5000000)\n"
	"  --runs R   runs; medians reported (default 3)\n"
	"  --cpu C    CPU to pin to (default 0)\n"
	"  --tsv FILE conformance payloads (default $HT_SHARED/conformance/\n"
	"             emv_mpm.tsv, else ../shared/...; made codes only if absent)\n";

struct payload {
	char *text;
	size_t len;
};

static struct payload mpm[PAYLOADS_MAX], cpm[8];
static size_t mpm_count, cpm_count, from_file;

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void add(struct payload *set, size_t *n, size_t max, const char *s,
		size_t len)
{
	if (*n < max && (set[*n].text = strndup(s, len)))
		set[(*n)++].len = len;
}

/* The last column of each data row. */
static void load_tsv(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "bench_qr: %s absent: made codes only\n", path);
		return;
	}
	char line[8192];
	while (fgets(line, sizeof line, f)) {
		char *tab = strrchr(line, '\t');
		if (line[0] == '#' || !tab)
			continue;
		size_t len = strcspn(tab + 1, "\r\n");
		add(mpm, &mpm_count, PAYLOADS_MAX, tab + 1, len);
	}
	fclose(f);
	from_file = mpm_count;
}

static void make_codes(void)
{
	static const char *const specs[] = {
		"{\"point_of_initiation\":\"11\",\"merchant_account\":{\"26\":"
		"{\"00\":\"cn.huitong\",\"01\":\"bankB:m77\"}},\"mcc\":\"5812\","
		"\"currency\":\"156\",\"country\":\"CN\",\"merchant_name\":"
		"\"Huitong Cafe\",\"merchant_city\":\"Beijing\"}",
		"{\"point_of_initiation\":\"12\",\"merchant_account\":{\"26\":"
		"{\"00\":\"cn.huitong\",\"01\":\"bankB:m10077\"},\"15\":"
		"\"6212345678901234\"},\"mcc\":\"5411\",\"currency\":\"156\","
		"\"amount\":\"128.50\",\"country\":\"CN\",\"merchant_name\":"
		"\"汇通超市 Huitong Market\",\"merchant_city\":\"上海\","
		"\"postal_code\":\"200000\",\"additional\":{\"01\":\"INV-2026-0042\","
		"\"05\":\"ref-8831\",\"07\":\"T-17\"},\"alt_language\":{\"00\":\"ZH\","
		"\"01\":\"汇通超市\",\"02\":\"上海\"}}",
		"{\"point_of_initiation\":\"12\",\"merchant_account\":{\"27\":"
		"{\"00\":\"com.example.pay\",\"01\":\"m-000123\",\"02\":\"t-9\"}},"
		"\"mcc\":\"4111\",\"currency\":\"156\",\"amount\":\"3.00\","
		"\"tip\":\"02\",\"country\":\"CN\",\"merchant_name\":\"Metro Line 1\","
		"\"merchant_city\":\"Shenzhen\",\"additional\":{\"08\":\"fare\"}}",
	};
	char out[HT_QR_MPM_BYTES_MAX + 1], err[256];
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		json_t *j = json_loads(specs[i], 0, NULL);
		size_t len;
		if (j && !ht_qr_mpm_make(j, out, sizeof out, &len, err, sizeof err))
			add(mpm, &mpm_count, PAYLOADS_MAX, out, len);
		json_decref(j);
	}
	struct ht_qr_cpm_spec s[] = {
		{.aid_hex = "A000000333010102", .pan = "6212345678901234"},
		{.aid_hex = "A0000000041010", .label = "Mastercard",
		 .track2 = "5413330089010012D2712201000012345", .name = "LI/SI",
		 .language = "zhen"},
	};
	for (size_t i = 0; i < 2; i++) {
		size_t len;
		if (!ht_qr_cpm_make(&s[i], out, sizeof out, &len, err, sizeof err))
			add(cpm, &cpm_count, 8, out, len);
	}
}

enum measure { M_PARSE, M_CRC, M_MEMCHR, M_CPM, M__COUNT };
static const char *const names[M__COUNT] = {
	"mpm_parse", "crc16_only", "memchr_scan", "cpm_decode"};

/* count payloads through measure m; ns elapsed. *sink keeps results live. */
static uint64_t run_once(enum measure m, size_t count, uint64_t *sink)
{
	struct ht_qr_mpm p;
	static struct ht_qr_cpm c;
	const struct payload *set = m == M_CPM ? cpm : mpm;
	size_t n = m == M_CPM ? cpm_count : mpm_count;
	uint64_t t0 = now_ns(), acc = 0;
	for (size_t i = 0, k = 0; i < count; i++, k = k + 1 == n ? 0 : k + 1) {
		const struct payload *x = &set[k];
		switch (m) {
		case M_PARSE: acc += ht_qr_mpm_parse(x->text, x->len, &p); break;
		case M_CRC: acc += ht_qr_crc16(x->text, x->len); break;
		case M_MEMCHR: acc += memchr(x->text, '\n', x->len) != NULL; break;
		default: acc += ht_qr_cpm_parse(x->text, x->len, &c); break;
		}
	}
	uint64_t dt = now_ns() - t0;
	*sink += acc;
	return dt;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	size_t count = 5000000;
	unsigned runs = 3, cpu = 0;
	const char *tsv = NULL;
	static const struct option opts[] = {
		{"count", required_argument, NULL, 'n'},
		{"runs", required_argument, NULL, 'r'},
		{"cpu", required_argument, NULL, 'c'},
		{"tsv", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	int o;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'n': count = strtoull(optarg, NULL, 10); break;
		case 'r': runs = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'c': cpu = (unsigned)strtoul(optarg, NULL, 10); break;
		case 't': tsv = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (count < 1 || runs < 1 || runs > RUNS_MAX) {
		fputs(usage, stderr);
		return 2;
	}
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set))
		fprintf(stderr, "bench_qr: cannot pin to CPU %u (running unpinned)\n",
			cpu);
	char path[4096];
	const char *shared = getenv("HT_SHARED");
	snprintf(path, sizeof path, "%s/conformance/emv_mpm.tsv",
		 shared ? shared : "../shared");
	load_tsv(tsv ? tsv : path);
	make_codes();
	if (mpm_count == 0 || cpm_count == 0) {
		fprintf(stderr, "bench_qr: no payloads\n");
		return 2;
	}
	size_t bytes = 0, valid = 0;
	for (size_t i = 0; i < mpm_count; i++) {
		struct ht_qr_mpm p;
		bytes += mpm[i].len;
		valid += ht_qr_mpm_parse(mpm[i].text, mpm[i].len, &p) == HT_QR_OK;
	}
	printf("bench_qr: %zu MPM payloads (%zu from the conformance file, %zu"
	       " valid), mean %.0f bytes; %zu per run, %u runs, CPU %u\n",
	       mpm_count, from_file, valid, (double)bytes / (double)mpm_count,
	       count, runs, cpu);
	uint64_t sink = 0, ns[M__COUNT][RUNS_MAX], med[M__COUNT];
	for (unsigned r = 0; r < runs; r++) /* measures interleaved per run */
		for (int m = 0; m < M__COUNT; m++)
			ns[m][r] = run_once((enum measure)m, count, &sink);
	for (int m = 0; m < M__COUNT; m++) {
		qsort(ns[m], runs, sizeof ns[m][0], cmp_u64);
		med[m] = ns[m][runs / 2];
		double per_s = (double)count / ((double)med[m] / 1e9);
		printf("  %-12s %12.0f /s  %7.1f ns each\n", names[m], per_s,
		       (double)med[m] / (double)count);
		fprintf(stderr, "{\"measure\":\"%s\",\"count\":%zu,\"runs\":%u,"
				"\"per_s\":%.0f,\"ns_each\":%.1f}\n", names[m],
			count, runs, per_s, (double)med[m] / (double)count);
	}
	double parse_s = (double)count / ((double)med[M_PARSE] / 1e9);
	printf("  parse / crc-only time: %.2fx; parse / memchr time: %.1fx\n",
	       (double)med[M_PARSE] / (double)med[M_CRC],
	       (double)med[M_PARSE] / (double)med[M_MEMCHR]);
	printf("  target >= 1,000,000 parses/s on one core: %s (%.0f)\n",
	       parse_s >= 1e6 ? "met" : "MISSED", parse_s);
	printf("  (checksum %llu)\n", (unsigned long long)sink);
	return 0;
}

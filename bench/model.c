/*
 * model.c — bench_model: nanoseconds per score of huitong's tree walker
 * (model.h), the figure behind "300 trees of depth 6 in <= 5 us per
 * payment" in docs/risk-model.md.
 *
 * Owner: bench (written with the risk model). By default it builds a
 * worst-case model in memory: --trees complete trees of --depth (every
 * path the full depth), random features among --features columns and
 * thresholds drawn from the same distribution as the inputs, so every
 * split is a coin flip the branch predictor cannot learn. --model FILE
 * benchmarks a real model file instead. Each run scores --rows random
 * rows (10% of values missing) once on one thread; the report is the
 * median over --runs runs, with the fastest and slowest beside it, in
 * wall-clock time and in the thread's own CPU time (which a busy shared
 * machine inflates less: time spent descheduled is not counted), and a
 * final JSON line for scripts. It never writes a file.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "huitong/model.h"

#define RUNS_MAX 1000

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

static float uniform(void)
{
	return (float)(rnd() % 1000000) / 1000000.0f;
}

/* A complete tree of the given depth, breadth-first. */
static void full_tree(struct ht_model_node *n, unsigned depth,
		      unsigned features)
{
	size_t splits = ((size_t)1 << depth) - 1;
	size_t total = ((size_t)1 << (depth + 1)) - 1;
	for (size_t i = 0; i < total; i++) {
		memset(&n[i], 0, sizeof n[i]);
		if (i >= splits) {
			n[i].value = (uniform() - 0.5f) / 10.0f;
			continue;
		}
		n[i].left = (uint32_t)(2 * i + 1);
		n[i].right = (uint32_t)(2 * i + 2);
		n[i].feature = (uint16_t)(rnd() % features);
		n[i].default_left = rnd() % 2;
		n[i].value = uniform();
	}
}

static struct ht_model *random_model(unsigned trees, unsigned depth,
				     unsigned features)
{
	size_t per = ((size_t)1 << (depth + 1)) - 1;
	struct ht_model_node *nodes = malloc(trees * per * sizeof *nodes);
	struct ht_model_tree *t = malloc(trees * sizeof *t);
	char(*name)[16] = malloc(features * sizeof *name);
	const char **names = malloc(features * sizeof *names);
	if (!nodes || !t || !name || !names)
		return NULL;
	for (unsigned i = 0; i < trees; i++) {
		full_tree(nodes + i * per, depth, features);
		t[i] = (struct ht_model_tree){nodes + i * per, per};
	}
	for (unsigned j = 0; j < features; j++) {
		snprintf(name[j], sizeof name[j], "f%u", j);
		names[j] = name[j];
	}
	struct ht_model_spec spec = {NULL, names, features, 0.0f, t, trees};
	uint8_t *buf = NULL;
	size_t len = 0;
	char err[256];
	struct ht_model *m = NULL;
	if (ht_model_encode(&spec, &buf, &len, err, sizeof err) ||
	    ht_model_load_buffer(buf, len, &m, err, sizeof err))
		fprintf(stderr, "bench_model: %s\n", err);
	free(buf);
	free(nodes);
	free(t);
	free(name);
	free(names);
	return m;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void usage(FILE *out)
{
	fputs("usage: bench_model [--trees N] [--depth D] [--features F] "
	      "[--rows R] [--runs K]\n"
	      "                   [--model FILE] [--portable]\n"
	      "defaults: 300 complete trees of depth 6 over 64 features, "
	      "16384 rows, 21 runs; --portable: the walker without vector "
	      "instructions\n", out);
}

int main(int argc, char **argv)
{
	unsigned trees = 300, depth = 6, features = 64, rows = 16384, runs = 21;
	const char *path = NULL;
	bool portable = false;
	static const struct option opts[] = {
		{"trees", required_argument, NULL, 't'},
		{"depth", required_argument, NULL, 'd'},
		{"features", required_argument, NULL, 'f'},
		{"rows", required_argument, NULL, 'r'},
		{"runs", required_argument, NULL, 'k'},
		{"model", required_argument, NULL, 'm'},
		{"portable", no_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		unsigned long v = optarg ? strtoul(optarg, NULL, 10) : 0;
		switch (c) {
		case 't': trees = (unsigned)v; break;
		case 'd': depth = (unsigned)v; break;
		case 'f': features = (unsigned)v; break;
		case 'r': rows = (unsigned)v; break;
		case 'k': runs = (unsigned)v; break;
		case 'm': path = optarg; break;
		case 'p': portable = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (trees < 1 || trees > HT_MODEL_TREES_MAX || depth < 1 ||
	    depth > 15 || features < 1 || features > HT_MODEL_FEATURES_MAX ||
	    rows < 1 || rows > (1u << 24) || runs < 1 || runs > RUNS_MAX) {
		usage(stderr);
		return 2;
	}
	struct ht_model *m = NULL;
	char err[512];
	if (path && ht_model_load(path, &m, err, sizeof err)) {
		fprintf(stderr, "bench_model: %s\n", err);
		return 1;
	}
	if (!path)
		m = random_model(trees, depth, features);
	if (!m)
		return 1;
	size_t f = ht_model_feature_count(m);
	float *x = malloc((size_t)rows * f * sizeof *x);
	double *ns = malloc(runs * sizeof *ns);
	double *cpu = malloc(runs * sizeof *cpu);
	if (!x || !ns || !cpu)
		return 1;
	for (size_t i = 0; i < (size_t)rows * f; i++)
		x[i] = rnd() % 10 == 0 ? NAN : uniform();
	volatile double sink = 0;
	for (unsigned k = 0; k < runs; k++) {
		uint64_t t0 = ht_now_monotonic_ns(), c0 = thread_cpu_ns();
		double sum = 0;
		for (unsigned r = 0; r < rows; r++)
			sum += portable
				       ? ht_model_margin_portable(m, x + (size_t)r * f)
				       : ht_model_score(m, x + (size_t)r * f);
		uint64_t t1 = ht_now_monotonic_ns(), c1 = thread_cpu_ns();
		sink += sum;
		ns[k] = (double)(t1 - t0) / rows;
		cpu[k] = (double)(c1 - c0) / rows;
	}
	(void)sink;
	qsort(ns, runs, sizeof *ns, cmp_double);
	qsort(cpu, runs, sizeof *cpu, cmp_double);
	printf("model: %s, %zu trees, depth <= %u, %zu features; %s walker\n",
	       path ? path : "random complete trees", ht_model_tree_count(m),
	       ht_model_depth_max(m), f,
	       portable ? "portable (margin only)"
	       : ht_model_vector(m) ? "AVX-512" : "portable");
	printf("score, wall: median %.0f ns (fastest %.0f, slowest %.0f)\n",
	       ns[runs / 2], ns[0], ns[runs - 1]);
	printf("score, cpu:  median %.0f ns (fastest %.0f, slowest %.0f)\n",
	       cpu[runs / 2], cpu[0], cpu[runs - 1]);
	printf("(%u runs of %u rows, one thread)\n", runs, rows);
	printf("{\"bench\":\"model\",\"trees\":%zu,\"depth\":%u,"
	       "\"features\":%zu,\"rows\":%u,\"runs\":%u,"
	       "\"ns_per_score_median\":%.1f,\"ns_min\":%.1f,\"ns_max\":%.1f,"
	       "\"cpu_ns_per_score_median\":%.1f,\"vector\":%s}\n",
	       ht_model_tree_count(m), ht_model_depth_max(m), f, rows, runs,
	       ns[runs / 2], ns[0], ns[runs - 1], cpu[runs / 2],
	       !portable && ht_model_vector(m) ? "true" : "false");
	free(x);
	free(ns);
	free(cpu);
	ht_model_destroy(m);
	return 0;
}

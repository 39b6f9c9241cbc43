/*
 * cmd_bench.c — `huitong bench ledger` and `huitong bench restart`: the
 * ledger's throughput, commit latency and restart cost, measured through
 * the same hub (engine + store + journal, group commit) the server uses.
 *
 * Owner: cli. The benchmark is a client of the public hub API only: it
 * creates a fresh store, opens it as the single writer, creates accounts
 * and pushes transfers in batches, one durable commit (fsync) per batch.
 * Every result must be ok: a benchmark that silently counts failed
 * transfers would measure nothing, so any other result fails the run.
 * It never touches a store it did not create (DIR must be absent or
 * empty), except `bench restart --open-only`, which only reads.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "commands.h"
#include "huitong/hub.h"

#define BENCH_LEDGER_ID 156     /* CNY */
#define BENCH_ACCOUNT_CODE 10
#define BENCH_TRANSFER_CODE 1
#define BENCH_AMOUNT_MAX 1000
#define BENCH_HOT_PERCENT 80    /* share of transfers crediting account 1 */
#define BENCH_RUNS_MAX 100
#define BENCH_PATH_MAX 4096

enum bench_mode { BENCH_UNIFORM, BENCH_HOT };

struct bench_cfg {
	const char *data;
	uint64_t accounts;
	uint64_t transfers;          /* 0 = default for the batch size */
	uint32_t batch;
	enum bench_mode mode;
	bool journal_off;
	enum ht_hash_alg hash;
	enum ht_sign_alg sign;
	unsigned runs;
	bool json;
	bool remove;                 /* delete each run's store afterwards */
	bool progress;               /* progress line on stderr each second */
	bool open_only;              /* restart: measure open of DIR only */
	uint64_t seed;
};

struct run_result {
	uint64_t transfers;
	uint64_t commits;
	double seconds;
	double transfers_per_s;
	double latency_us_p50;
	double latency_us_p99;
	double latency_us_max;
	double latency_us_mean;
};

/* Input generator: a seeded PRNG and time-ordered ids (ULID-like: 48 bits
 * of milliseconds at the start of the run, then an 80-bit counter), as
 * DESIGN.md recommends to clients. */
struct bench_gen {
	uint64_t rng;
	ht_u128 id_high;
	uint64_t seq;
};

/* Buffers shared by every run, sized once. */
struct bench_bufs {
	struct ht_transfer *transfers;  /* batch */
	struct ht_account *accounts;    /* HT_BATCH_EVENTS_MAX */
	uint16_t *results;              /* HT_BATCH_EVENTS_MAX */
	uint64_t *latency_ns;           /* one per commit */
	size_t latency_cap;
};

/* ---- small helpers --------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	/* splitmix64: fast, good enough to pick accounts and amounts. */
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0; the modulo bias is below 2^-40 here. */
static uint64_t rng_below(uint64_t *s, uint64_t n)
{
	HT_ASSERT(n > 0);
	return rng_next(s) % n;
}

static uint64_t default_transfers(uint32_t batch)
{
	/* About 1000 commits, at most a million transfers: a few seconds for
	 * every batch size on an ordinary disk (each commit is an fsync). */
	uint64_t t = (uint64_t)batch * 1000;
	return t > 1000000 ? 1000000 : t;
}

static bool parse_u64(const char *opt, const char *s, uint64_t min,
		      uint64_t max, uint64_t *out)
{
	uint64_t v;
	if (ht_u64_parse(s, strlen(s), &v) || v < min || v > max) {
		fprintf(stderr,
			"huitong bench: %s wants a whole number in %" PRIu64
			"..%" PRIu64 ", not '%s'\n", opt, min, max, s);
		return false;
	}
	*out = v;
	return true;
}

/* DIR absent (true), or an empty directory (true); anything else false. */
static bool dir_is_fresh(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT;
	struct dirent *e;
	bool empty = true;
	while (empty && (e = readdir(d)))
		empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
	closedir(d);
	return empty;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void remove_tree(const char *path)
{
	if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS))
		fprintf(stderr, "huitong bench: could not remove %s: %s\n",
			path, strerror(errno));
}

static uint64_t tree_bytes_total;

static int add_entry_bytes(const char *path, const struct stat *st, int flag,
			   struct FTW *ftw)
{
	(void)path, (void)ftw;
	if (flag == FTW_F)
		tree_bytes_total += (uint64_t)st->st_size;
	return 0;
}

/* Bytes of the regular files under path (0 if unreadable). */
static uint64_t tree_bytes(const char *path)
{
	tree_bytes_total = 0;
	if (nftw(path, add_entry_bytes, 16, FTW_PHYS))
		return 0;
	return tree_bytes_total;
}

/* VmRSS and VmHWM of this process in KiB (0 when unknown). */
static void read_rss(uint64_t *rss_kib, uint64_t *hwm_kib)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	*rss_kib = 0;
	*hwm_kib = 0;
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, "VmRSS:", 6))
			*rss_kib = strtoull(line + 6, NULL, 10);
		else if (!strncmp(line, "VmHWM:", 6))
			*hwm_kib = strtoull(line + 6, NULL, 10);
	}
	fclose(f);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n), n > 0, p in (0, 1]. */
static uint64_t percentile(const uint64_t *v, size_t n, double p)
{
	HT_ASSERT(n > 0);
	size_t rank = (size_t)(p * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

/* Fails the run loudly unless every result is ok. */
static bool results_all_ok(const char *what, const uint16_t *results,
			   size_t n, uint64_t first_index)
{
	for (size_t i = 0; i < n; i++) {
		if (results[i] == HT_R_OK)
			continue;
		const char *name = ht_result_name(results[i]);
		fprintf(stderr,
			"huitong bench: %s %" PRIu64 " failed with %s (%u); "
			"the benchmark expects every event to succeed\n",
			what, first_index + i, name ? name : "unknown",
			(unsigned)results[i]);
		return false;
	}
	return true;
}

/* ---- the workload ---------------------------------------------------- */

static void gen_init(struct bench_gen *g, uint64_t seed)
{
	uint64_t ms = ht_now_wall_ns() / 1000000u;
	g->rng = seed;
	g->id_high = (ht_u128)(ms & 0xffffffffffffu) << 80;
	g->seq = 1;
}

/* Debit and credit accounts (ids 1..n, distinct). Hot: most transfers
 * credit account 1, the merchant everyone pays. */
static void pick_accounts(struct bench_gen *g, const struct bench_cfg *c,
			  uint64_t *debit, uint64_t *credit)
{
	uint64_t n = c->accounts;
	uint64_t cr;
	if (c->mode == BENCH_HOT && rng_below(&g->rng, 100) < BENCH_HOT_PERCENT)
		cr = 1;
	else
		cr = 1 + rng_below(&g->rng, n);
	uint64_t dr = 1 + rng_below(&g->rng, n - 1);
	if (dr >= cr)
		dr++;
	HT_ASSERT(dr != cr);
	HT_ASSERT(dr >= 1 && dr <= n);
	*debit = dr;
	*credit = cr;
}

static void fill_transfers(struct bench_gen *g, const struct bench_cfg *c,
			   struct ht_transfer *t, size_t k)
{
	memset(t, 0, k * sizeof *t);
	for (size_t i = 0; i < k; i++) {
		uint64_t dr, cr;
		pick_accounts(g, c, &dr, &cr);
		t[i].id = g->id_high | g->seq++;
		t[i].debit_account_id = dr;
		t[i].credit_account_id = cr;
		t[i].amount = 1 + rng_below(&g->rng, BENCH_AMOUNT_MAX);
		t[i].ledger = BENCH_LEDGER_ID;
		t[i].code = BENCH_TRANSFER_CODE;
	}
}

/* Accounts 1..n, no limit flags (every transfer can succeed), committed
 * in full batches. */
static enum ht_err create_accounts(struct ht_hub *hub, uint64_t n,
				   struct bench_bufs *b)
{
	for (uint64_t first = 1; first <= n; first += HT_BATCH_EVENTS_MAX) {
		uint64_t left = n - first + 1;
		size_t k = left < HT_BATCH_EVENTS_MAX ? (size_t)left
						      : HT_BATCH_EVENTS_MAX;
		memset(b->accounts, 0, k * sizeof *b->accounts);
		for (size_t i = 0; i < k; i++) {
			b->accounts[i].id = first + i;
			b->accounts[i].ledger = BENCH_LEDGER_ID;
			b->accounts[i].code = BENCH_ACCOUNT_CODE;
		}
		enum ht_err err = ht_hub_create_accounts(hub, b->accounts, k,
							 b->results);
		if (err)
			return err;
		if (!results_all_ok("account", b->results, k, first))
			return HT_ERR_INVALID;
		err = ht_hub_commit(hub, NULL);
		if (err)
			return err;
	}
	return HT_OK;
}

static void progress_line(uint64_t done, uint64_t total, uint64_t t0_ns,
			  bool last)
{
	double s = (double)(ht_now_monotonic_ns() - t0_ns) / 1e9;
	fprintf(stderr, "%stransfers %" PRIu64 " / %" PRIu64 " (%.0f/s)%s",
		isatty(2) ? "\r" : "", done, total,
		s > 0 ? (double)done / s : 0.0,
		isatty(2) && !last ? "" : "\n");
}

/* The measured phase: c->transfers transfers in batches of c->batch, one
 * create + commit per batch, each timed as a client would wait for it. */
static enum ht_err push_transfers(struct ht_hub *hub, const struct bench_cfg *c,
				  struct bench_gen *g, struct bench_bufs *b,
				  struct run_result *r)
{
	uint64_t t0 = ht_now_monotonic_ns(), next_progress = t0 + 1000000000u;
	uint64_t done = 0;
	size_t commits = 0;
	while (done < c->transfers) {
		uint64_t left = c->transfers - done;
		size_t k = left < c->batch ? (size_t)left : c->batch;
		fill_transfers(g, c, b->transfers, k);
		uint64_t a = ht_now_monotonic_ns();
		enum ht_err err = ht_hub_create_transfers(hub, b->transfers, k,
							  b->results);
		if (!err)
			err = ht_hub_commit(hub, NULL);
		uint64_t z = ht_now_monotonic_ns();
		if (err)
			return err;
		HT_ASSERT(commits < b->latency_cap);
		b->latency_ns[commits++] = z - a;
		if (!results_all_ok("transfer", b->results, k, done))
			return HT_ERR_INVALID;
		done += k;
		if (c->progress && z >= next_progress) {
			progress_line(done, c->transfers, t0, false);
			next_progress = z + 1000000000u;
		}
	}
	if (c->progress)
		progress_line(done, c->transfers, t0, true);
	r->seconds = (double)(ht_now_monotonic_ns() - t0) / 1e9;
	r->transfers = done;
	r->commits = commits;
	return HT_OK;
}

static void summarise_latency(struct bench_bufs *b, struct run_result *r)
{
	size_t n = (size_t)r->commits;
	HT_ASSERT(n > 0);
	qsort(b->latency_ns, n, sizeof *b->latency_ns, cmp_u64);
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += (double)b->latency_ns[i];
	r->latency_us_p50 = (double)percentile(b->latency_ns, n, 0.50) / 1e3;
	r->latency_us_p99 = (double)percentile(b->latency_ns, n, 0.99) / 1e3;
	r->latency_us_max = (double)b->latency_ns[n - 1] / 1e3;
	r->latency_us_mean = sum / (double)n / 1e3;
	r->transfers_per_s = r->seconds > 0 ? (double)r->transfers / r->seconds
					    : 0;
}

static enum ht_err open_hub(const char *dir, bool journal_off,
			    struct ht_hub **hub)
{
	struct ht_hub_open_options o = {
		.clock = NULL,
		.readonly = false,
		.journal_off = journal_off,
	};
	return ht_hub_open(dir, &o, hub);
}

/* One run in a fresh store at dir: init, open, accounts, transfers. */
static int build_and_measure(const struct bench_cfg *c, const char *dir,
			     struct bench_bufs *b, struct run_result *r)
{
	struct ht_hub_init_options io = {
		.hash = c->hash,
		.sign = c->sign,
	};
	struct ht_hub *hub = NULL;
	struct bench_gen g;
	const char *step = "init";
	enum ht_err err = ht_hub_init(dir, &io);
	if (!err) {
		step = "open";
		err = open_hub(dir, c->journal_off, &hub);
	}
	if (!err) {
		step = "creating accounts";
		err = create_accounts(hub, c->accounts, b);
	}
	if (!err) {
		step = "pushing transfers";
		gen_init(&g, c->seed);
		err = push_transfers(hub, c, &g, b, r);
	}
	ht_hub_close(hub);
	if (err) {
		fprintf(stderr, "huitong bench: %s in %s: %s\n", step, dir,
			ht_strerror(err));
		return 2;
	}
	summarise_latency(b, r);
	return 0;
}

/* ---- buffers --------------------------------------------------------- */

static void bufs_free(struct bench_bufs *b)
{
	free(b->transfers);
	free(b->accounts);
	free(b->results);
	free(b->latency_ns);
	memset(b, 0, sizeof *b);
}

static bool bufs_alloc(struct bench_bufs *b, const struct bench_cfg *c)
{
	memset(b, 0, sizeof *b);
	b->latency_cap = (size_t)((c->transfers + c->batch - 1) / c->batch);
	b->transfers = calloc(c->batch, sizeof *b->transfers);
	b->accounts = calloc(HT_BATCH_EVENTS_MAX, sizeof *b->accounts);
	b->results = calloc(HT_BATCH_EVENTS_MAX, sizeof *b->results);
	b->latency_ns = calloc(b->latency_cap ? b->latency_cap : 1,
			       sizeof *b->latency_ns);
	if (b->transfers && b->accounts && b->results && b->latency_ns)
		return true;
	fprintf(stderr, "huitong bench: out of memory\n");
	bufs_free(b);
	return false;
}

/* ---- output ---------------------------------------------------------- */

static double median_of(const struct run_result *r, size_t n, size_t offset)
{
	double v[BENCH_RUNS_MAX];
	HT_ASSERT(n > 0 && n <= BENCH_RUNS_MAX);
	for (size_t i = 0; i < n; i++)
		v[i] = *(const double *)((const char *)&r[i] + offset);
	qsort(v, n, sizeof v[0], cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Each figure's median over the runs, taken separately. */
static void median_result(const struct run_result *r, size_t n,
			  struct run_result *m)
{
	*m = r[0];
	m->seconds = median_of(r, n, offsetof(struct run_result, seconds));
	m->transfers_per_s = median_of(r, n, offsetof(struct run_result,
						      transfers_per_s));
	m->latency_us_p50 = median_of(r, n, offsetof(struct run_result,
						     latency_us_p50));
	m->latency_us_p99 = median_of(r, n, offsetof(struct run_result,
						     latency_us_p99));
	m->latency_us_max = median_of(r, n, offsetof(struct run_result,
						     latency_us_max));
	m->latency_us_mean = median_of(r, n, offsetof(struct run_result,
						      latency_us_mean));
}

static const char *mode_name(enum bench_mode m)
{
	return m == BENCH_HOT ? "hot" : "uniform";
}

static void print_json_result(const char *key, const struct run_result *r,
			      unsigned run)
{
	if (run)
		printf("{\"run\":%u,", run);
	else
		printf("\"%s\":{", key);
	printf("\"transfers\":%" PRIu64 ",\"commits\":%" PRIu64
	       ",\"seconds\":%.3f,\"transfers_per_s\":%.0f,"
	       "\"latency_us_p50\":%.1f,\"latency_us_p99\":%.1f,"
	       "\"latency_us_max\":%.1f,\"latency_us_mean\":%.1f}",
	       r->transfers, r->commits, r->seconds, r->transfers_per_s,
	       r->latency_us_p50, r->latency_us_p99, r->latency_us_max,
	       r->latency_us_mean);
}

static void print_json(const struct bench_cfg *c, const struct run_result *r,
		       const struct run_result *m)
{
	printf("{\"bench\":\"ledger\",\"accounts\":%" PRIu64
	       ",\"transfers\":%" PRIu64 ",\"batch\":%u,\"mode\":\"%s\","
	       "\"journal\":\"%s\",\"hash\":\"%s\",\"sign\":\"%s\","
	       "\"seed\":%" PRIu64 ",\"runs\":[",
	       c->accounts, c->transfers, c->batch, mode_name(c->mode),
	       c->journal_off ? "off" : "on", ht_hash_alg_name(c->hash),
	       ht_sign_alg_name(c->sign), c->seed);
	for (unsigned i = 0; i < c->runs; i++) {
		if (i)
			printf(",");
		print_json_result(NULL, &r[i], i + 1);
	}
	printf("],");
	print_json_result("median", m, 0);
	printf("}\n");
}

static void print_row(const char *label, const struct run_result *r)
{
	printf("%-7s %10" PRIu64 " %8" PRIu64 " %8.3f %12.0f %10.1f %10.1f "
	       "%10.1f\n", label, r->transfers, r->commits, r->seconds,
	       r->transfers_per_s, r->latency_us_p50, r->latency_us_p99,
	       r->latency_us_max);
}

static void print_table(const struct bench_cfg *c, const struct run_result *r,
			const struct run_result *m)
{
	printf("ledger benchmark: %" PRIu64 " accounts, %" PRIu64
	       " transfers in batches of %u, %s, journal %s (%s/%s), "
	       "%u run%s\n", c->accounts, c->transfers, c->batch,
	       mode_name(c->mode), c->journal_off ? "off" : "on",
	       ht_hash_alg_name(c->hash), ht_sign_alg_name(c->sign), c->runs,
	       c->runs == 1 ? "" : "s");
	printf("commit latency = create_transfers + commit (fsync), as a "
	       "client waits for it\n\n");
	printf("%-7s %10s %8s %8s %12s %10s %10s %10s\n", "run", "transfers",
	       "commits", "seconds", "transfers/s", "p50 us", "p99 us",
	       "max us");
	for (unsigned i = 0; i < c->runs; i++) {
		char label[16];
		snprintf(label, sizeof label, "%u", i + 1);
		print_row(label, &r[i]);
	}
	if (c->runs > 1)
		print_row("median", m);
}

/* ---- bench ledger ---------------------------------------------------- */

static void usage_ledger(FILE *out)
{
	fprintf(out,
"usage: huitong bench ledger --data DIR [options]\n"
"\n"
"Creates a fresh store in DIR (which must be absent or empty; with --runs\n"
"R > 1, one store per run in DIR/run-1 .. DIR/run-R), opens it as the\n"
"single writer, creates the accounts, then pushes the transfers in batches:\n"
"one create_transfers and one durable commit (fsync) per batch. Reports\n"
"transfers/s over the transfer phase and the commit latency (create +\n"
"commit, what a client waits for) p50/p99/max in microseconds.\n"
"\n"
"  --data DIR         where the stores go (required)\n"
"  --accounts N       accounts, ids 1..N (default 10000)\n"
"  --transfers T      transfers per run (default min(1000 x batch, 1000000))\n"
"  --batch B          transfers per commit, 1..%d (default %d)\n"
"  --mode M           uniform: random debit and credit accounts;\n"
"                     hot: %d%% of transfers credit account 1 (default uniform)\n"
"  --journal on|off   off skips hashing and signing: only to measure the\n"
"                     journal's cost (default on)\n"
"  --hash sm3|sha256  the store's journal hash (default sm3)\n"
"  --sign sm2|ed25519|ecdsa-p256  its head signature (default sm2)\n"
"  --runs R           repeat with fresh stores, report each and the median\n"
"                     (default 3)\n"
"  --seed S           workload seed (default 42; every run uses the same)\n"
"  --remove           delete each run's store after measuring it\n"
"  --json             one JSON object instead of a table\n",
		HT_BATCH_EVENTS_MAX, HT_BATCH_EVENTS_MAX, BENCH_HOT_PERCENT);
}

static const struct option ledger_options[] = {
	{"data", required_argument, NULL, 'd'},
	{"accounts", required_argument, NULL, 'a'},
	{"transfers", required_argument, NULL, 't'},
	{"batch", required_argument, NULL, 'b'},
	{"mode", required_argument, NULL, 'm'},
	{"journal", required_argument, NULL, 'j'},
	{"runs", required_argument, NULL, 'r'},
	{"seed", required_argument, NULL, 's'},
	{"hash", required_argument, NULL, 'H'},
	{"sign", required_argument, NULL, 'S'},
	{"remove", no_argument, NULL, 'R'},
	{"open-only", no_argument, NULL, 'O'},
	{"json", no_argument, NULL, 'J'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

/* One option into c; false on a bad value (message printed). */
static bool apply_option(int opt, const char *arg, struct bench_cfg *c)
{
	uint64_t v;
	switch (opt) {
	case 'd': c->data = arg; return true;
	case 'a': return parse_u64("--accounts", arg, 2, 100000000,
				   &c->accounts);
	case 't': return parse_u64("--transfers", arg, 1, UINT64_MAX / 2,
				   &c->transfers);
	case 'b':
		if (!parse_u64("--batch", arg, 1, HT_BATCH_EVENTS_MAX, &v))
			return false;
		c->batch = (uint32_t)v;
		return true;
	case 'r':
		if (!parse_u64("--runs", arg, 1, BENCH_RUNS_MAX, &v))
			return false;
		c->runs = (unsigned)v;
		return true;
	case 's': return parse_u64("--seed", arg, 0, UINT64_MAX, &c->seed);
	case 'H':
		if (!ht_hash_alg_parse(arg, &c->hash))
			return true;
		fprintf(stderr, "huitong bench: --hash is sm3 or sha256\n");
		return false;
	case 'S':
		if (!ht_sign_alg_parse(arg, &c->sign))
			return true;
		fprintf(stderr, "huitong bench: --sign is sm2, ed25519 or "
			"ecdsa-p256\n");
		return false;
	case 'R': c->remove = true; return true;
	case 'O': c->open_only = true; return true;
	case 'J': c->json = true; return true;
	case 'm':
		if (!strcmp(arg, "uniform") || !strcmp(arg, "hot")) {
			c->mode = !strcmp(arg, "hot") ? BENCH_HOT : BENCH_UNIFORM;
			return true;
		}
		fprintf(stderr, "huitong bench: --mode is uniform or hot\n");
		return false;
	case 'j':
		if (!strcmp(arg, "on") || !strcmp(arg, "off")) {
			c->journal_off = !strcmp(arg, "off");
			return true;
		}
		fprintf(stderr, "huitong bench: --journal is on or off\n");
		return false;
	}
	return false;
}

/* Parse argv (argv[0] = "ledger" or "restart"). Returns -1 to go on, else
 * the exit code (0 after --help). */
static int parse_options(int argc, char **argv, struct bench_cfg *c,
			 void (*usage)(FILE *))
{
	int opt;
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", ledger_options, NULL)) !=
	       -1) {
		if (opt == 'h') {
			usage(stdout);
			return 0;
		}
		if (opt == '?' || opt == ':') {
			fprintf(stderr, "huitong bench %s: %s '%s' (see --help)\n",
				argv[0], opt == ':' ? "missing value for"
						    : "unknown option",
				argv[optind - 1]);
			return 2;
		}
		if (!apply_option(opt, optarg, c))
			return 2;
	}
	if (optind < argc) {
		fprintf(stderr, "huitong bench %s: unexpected argument '%s'\n",
			argv[0], argv[optind]);
		return 2;
	}
	if (!c->data) {
		fprintf(stderr, "huitong bench %s: --data DIR is required\n",
			argv[0]);
		return 2;
	}
	return -1;
}

static bool run_dir(const struct bench_cfg *c, unsigned run, char *out,
		    size_t size)
{
	int n = c->runs == 1 ? snprintf(out, size, "%s", c->data)
			     : snprintf(out, size, "%s/run-%u", c->data, run);
	if (n < 0 || (size_t)n >= size) {
		fprintf(stderr, "huitong bench: path too long: %s\n", c->data);
		return false;
	}
	return true;
}

static int prepare_data_dir(const struct bench_cfg *c)
{
	if (!dir_is_fresh(c->data)) {
		fprintf(stderr,
			"huitong bench: %s exists and is not empty; the "
			"benchmark only writes to a fresh directory\n",
			c->data);
		return 2;
	}
	/* One run: the store is DIR itself, and init creates it. */
	if (c->runs > 1 && mkdir(c->data, 0700) && errno != EEXIST) {
		fprintf(stderr, "huitong bench: cannot create %s: %s\n",
			c->data, strerror(errno));
		return 2;
	}
	return 0;
}

static int bench_ledger_runs(const struct bench_cfg *c, struct bench_bufs *b,
			     struct run_result *r)
{
	char dir[BENCH_PATH_MAX];
	for (unsigned i = 0; i < c->runs; i++) {
		if (!run_dir(c, i + 1, dir, sizeof dir))
			return 2;
		if (!c->json)
			fprintf(stderr, "run %u/%u in %s ...\n", i + 1,
				c->runs, dir);
		int rc = build_and_measure(c, dir, b, &r[i]);
		if (c->remove)
			remove_tree(dir);
		if (rc)
			return rc;
	}
	if (c->remove && c->runs > 1)
		rmdir(c->data); /* now empty; failure leaves an empty dir */
	return 0;
}

static int bench_ledger(int argc, char **argv)
{
	struct bench_cfg c = {
		.accounts = 10000,
		.batch = HT_BATCH_EVENTS_MAX,
		.mode = BENCH_UNIFORM,
		.hash = HT_HASH_SM3,
		.sign = HT_SIGN_SM2,
		.runs = 3,
		.seed = 42,
	};
	int rc = parse_options(argc, argv, &c, usage_ledger);
	if (rc >= 0)
		return rc;
	if (c.open_only) {
		fprintf(stderr, "huitong bench ledger: --open-only is for "
			"bench restart\n");
		return 2;
	}
	if (!c.transfers)
		c.transfers = default_transfers(c.batch);
	if ((rc = prepare_data_dir(&c)))
		return rc;
	struct bench_bufs b;
	struct run_result r[BENCH_RUNS_MAX], m;
	if (!bufs_alloc(&b, &c))
		return 2;
	memset(r, 0, sizeof r);
	rc = bench_ledger_runs(&c, &b, r);
	bufs_free(&b);
	if (rc)
		return rc;
	median_result(r, c.runs, &m);
	if (c.json)
		print_json(&c, r, &m);
	else
		print_table(&c, r, &m);
	return 0;
}

/* ---- bench restart --------------------------------------------------- */

static void usage_restart(FILE *out)
{
	fprintf(out,
"usage: huitong bench restart --data DIR [options]\n"
"\n"
"Builds a store in DIR (absent or empty) with N accounts and T transfers\n"
"(batches of B, uniform, one commit each; a progress line on stderr every\n"
"second), closes it, then measures a restart in a fresh process: the time\n"
"ht_hub_open takes (replaying every committed event into memory and\n"
"checking the balances) and the process's memory after it (VmRSS, VmHWM).\n"
"The page cache is warm (the store was just written).\n"
"\n"
"  --data DIR         where the store goes (required)\n"
"  --accounts N       accounts (default 1000000)\n"
"  --transfers T      transfers (default 10000000)\n"
"  --batch B          transfers per commit while building (default %d)\n"
"  --journal on|off, --hash H, --sign S\n"
"                     as for bench ledger (default on, sm3, sm2)\n"
"  --seed S           workload seed (default 42)\n"
"  --open-only        skip the build: measure opening the existing store in\n"
"                     DIR (read only: nothing is written to it)\n"
"  --json             one JSON object instead of text\n",
		HT_BATCH_EVENTS_MAX);
}

static void print_restart(const struct bench_cfg *c, double open_s,
			  struct ht_hub *hub, const uint64_t kib[3],
			  uint64_t store_bytes)
{
	struct ht_ledger *l = ht_hub_ledger(hub);
	size_t na = ht_ledger_account_count(l), nt = ht_ledger_transfer_count(l);
	if (c->json) {
		printf("{\"bench\":\"restart\",\"accounts\":%zu,"
		       "\"transfers\":%zu,\"store_bytes\":%" PRIu64
		       ",\"open_seconds\":%.3f,\"rss_kib_before_open\":%"
		       PRIu64 ",\"rss_kib\":%" PRIu64 ",\"hwm_kib\":%"
		       PRIu64 "}\n", na, nt, store_bytes, open_s, kib[0],
		       kib[1], kib[2]);
		return;
	}
	printf("restart of %s: %zu accounts, %zu transfers, store %.1f MiB\n",
	       c->data, na, nt, (double)store_bytes / 1048576.0);
	printf("  ht_hub_open (replay + balance check): %.3f s\n", open_s);
	printf("  VmRSS before open: %.1f MiB\n", (double)kib[0] / 1024.0);
	printf("  VmRSS after open:  %.1f MiB\n", (double)kib[1] / 1024.0);
	printf("  VmHWM after open:  %.1f MiB\n", (double)kib[2] / 1024.0);
}

/* Measure opening an existing store in this (fresh) process. Writer mode,
 * as a restarted server opens it; nothing is committed. */
static int restart_open_only(const struct bench_cfg *c)
{
	uint64_t kib[3], hwm0;
	struct ht_hub *hub = NULL;
	uint64_t store_bytes = tree_bytes(c->data);
	read_rss(&kib[0], &hwm0);
	uint64_t t0 = ht_now_monotonic_ns();
	enum ht_err err = open_hub(c->data, c->journal_off, &hub);
	double open_s = (double)(ht_now_monotonic_ns() - t0) / 1e9;
	if (err) {
		fprintf(stderr, "huitong bench restart: open %s: %s\n",
			c->data, ht_strerror(err));
		return 2;
	}
	read_rss(&kib[1], &kib[2]);
	print_restart(c, open_s, hub, kib, store_bytes);
	ht_hub_close(hub);
	return 0;
}

/* Run `huitong bench restart --open-only` on the store just built, in a
 * new process, so the build's memory does not count. */
static int restart_child(const struct bench_cfg *c)
{
	char *args[10];
	int n = 0;
	args[n++] = "huitong";
	args[n++] = "bench";
	args[n++] = "restart";
	args[n++] = "--open-only";
	args[n++] = "--data";
	args[n++] = (char *)c->data;
	if (c->journal_off) {
		args[n++] = "--journal";
		args[n++] = "off";
	}
	if (c->json)
		args[n++] = "--json";
	HT_ASSERT(n < (int)(sizeof args / sizeof args[0]));
	args[n] = NULL;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("huitong bench restart: fork");
		return 2;
	}
	if (pid == 0) {
		execv("/proc/self/exe", args);
		perror("huitong bench restart: exec /proc/self/exe");
		_exit(2);
	}
	int status;
	if (waitpid(pid, &status, 0) < 0)
		return 2;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}

static int restart_build(struct bench_cfg *c)
{
	struct bench_bufs b;
	struct run_result r;
	int rc = prepare_data_dir(c);
	if (rc)
		return rc;
	if (!bufs_alloc(&b, c))
		return 2;
	memset(&r, 0, sizeof r);
	fprintf(stderr, "building %s: %" PRIu64 " accounts, %" PRIu64
		" transfers ...\n", c->data, c->accounts, c->transfers);
	c->progress = true;
	rc = build_and_measure(c, c->data, &b, &r);
	bufs_free(&b);
	if (rc)
		return rc;
	fprintf(stderr, "built in %.1f s (%.0f transfers/s); restarting ...\n",
		r.seconds, r.transfers_per_s);
	return 0;
}

static int bench_restart(int argc, char **argv)
{
	struct bench_cfg c = {
		.accounts = 1000000,
		.transfers = 10000000,
		.batch = HT_BATCH_EVENTS_MAX,
		.mode = BENCH_UNIFORM,
		.hash = HT_HASH_SM3,
		.sign = HT_SIGN_SM2,
		.runs = 1,
		.seed = 42,
	};
	int rc = parse_options(argc, argv, &c, usage_restart);
	if (rc >= 0)
		return rc;
	if (c.open_only)
		return restart_open_only(&c);
	if ((rc = restart_build(&c)))
		return rc;
	return restart_child(&c);
}

/* ---- dispatch -------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
"usage: huitong bench <benchmark> [options]   (huitong bench <benchmark> --help)\n"
"\n"
"benchmarks:\n"
"  ledger    transfers/s and commit latency through the hub (durable:\n"
"            SQLite WAL synchronous=FULL, journal signed per commit)\n"
"  restart   time and memory to reopen a large store (replay)\n"
"\n"
"bench/run (`make bench`) runs the whole matrix and the PostgreSQL baseline;\n"
"see docs/performance.md.\n");
}

int ht_cmd_bench(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "ledger"))
		return bench_ledger(argc - 1, argv + 1);
	if (!strcmp(argv[1], "restart"))
		return bench_restart(argc - 1, argv + 1);
	fprintf(stderr, "huitong bench: unknown benchmark '%s' (see huitong "
		"bench --help)\n", argv[1]);
	return 2;
}

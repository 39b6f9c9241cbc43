/*
 * api.c — bench_api: huitong's own load generator for the HTTPS API
 * (docs/api.md), the tool behind bench/api_run and the "API" section of
 * docs/performance.md.
 *
 * Owner: bench. N threads, each with its own struct ht_client (one
 * keep-alive mutual-TLS connection, every request signed with the
 * credentials' signing key), send requests back to back for a warmup,
 * then for a measured window, then stop. Mode `transfers` sends
 * create_transfers of --batch transfers through ht_client_create_transfers,
 * so the client checks every receipt (head signature, range proof, every
 * leaf against the request) exactly as a bank's program would; mode `raw`
 * POSTs the same kind of body with ht_client_call to --path and counts any
 * 2xx, which is how the nginx ceiling (`return 204`) is hit with the same
 * TLS and the same request signing.
 *
 * What it reports is what a client saw in the window: completed requests
 * and transfers per second, latency percentiles from a log-linear
 * histogram (bounded memory, < 1% relative error), errors by kind, and the
 * CPU seconds of this process (getrusage) and of the server's processes
 * (/proc/PID/stat) over the same window, so figures say where the CPU
 * went. Every transfer must come back `ok`: any other result, any
 * transport error, any receipt that fails its check is an error, counted
 * and named, and makes the exit status 1. It never hides a failure behind
 * a retry: the client's retries are 0 unless --retries says otherwise.
 *
 * It never touches the store: everything goes over the wire.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "huitong/client.h"
#include "huitong/jsonl.h"
#include "huitong/ledger.h"
#include "huitong/pki.h"

/* ---- limits ---------------------------------------------------------- */

/* One thread and one TLS connection each; the hub's default connection
 * limit is 4096, and 1024 threads is already far past one machine. */
#define BENCH_CONNECTIONS_MAX 1024
#define BENCH_DURATION_S_MAX 3600
/* Setup creates accounts one request of HT_BATCH_EVENTS_MAX at a time. */
#define BENCH_ACCOUNTS_MAX 10000000u
#define BENCH_SERVER_PIDS_MAX 16
#define BENCH_PATH_BYTES_MAX 1024
/* Distinct error kinds remembered per worker ("io", "http_503",
 * "result_exceeds_credits", ...); more distinct kinds fold into "other". */
#define BENCH_ERR_KINDS_MAX 24
#define BENCH_ERR_NAME_BYTES 48
/* After a transport error a worker pauses this long, so a dead server is
 * not hammered in a tight loop (the error is counted either way). */
#define BENCH_ERROR_PAUSE_MS 10

#define BENCH_LEDGER_ID 156     /* CNY, as bench ledger */
#define BENCH_ACCOUNT_CODE 10
#define BENCH_TRANSFER_CODE 1
#define BENCH_AMOUNT_MAX 1000

/* Log-linear latency histogram in nanoseconds: values below 2^SUB are
 * exact, above it each power of two is cut into 2^SUB buckets (relative
 * error < 2^-SUB, under 1%); 64-bit values need (64 - SUB + 1) * 2^SUB
 * buckets, 59 KiB per worker. */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

_Static_assert(HT_BATCH_EVENTS_MAX <= 8190, "setup batches as documented");
_Static_assert(HIST_SUB_BITS >= 4 && HIST_SUB_BITS <= 10,
	       "histogram precision between 6% and 0.1%");

enum bench_mode { MODE_TRANSFERS, MODE_RAW };
enum bench_phase { PHASE_WARMUP, PHASE_MEASURE, PHASE_STOP };

struct bench_cfg {
	const char *url;
	const char *credentials;
	unsigned connections;
	unsigned duration_s;
	unsigned warmup_s;
	unsigned batch;
	uint64_t accounts;
	uint64_t account_base;       /* first account id */
	enum bench_mode mode;
	const char *path;            /* raw mode */
	bool setup;
	bool json;
	bool verify;                 /* receipts checked (default: yes) */
	unsigned retries;
	pid_t server_pids[BENCH_SERVER_PIDS_MAX];
	size_t server_pids_count;
	const char *label;           /* free text copied into the output */
};

struct err_kind {
	char name[BENCH_ERR_NAME_BYTES];
	uint64_t count;
};

/* What a worker saw in the measured window. Merged after the run. */
struct tally {
	uint64_t requests;           /* completed without error */
	uint64_t transfers;          /* transfers answered ok */
	uint64_t errors;
	uint64_t head_seq_min, head_seq_max; /* heads of the answers */
	uint64_t latency_ns_max;
	struct err_kind kinds[BENCH_ERR_KINDS_MAX];
	size_t kinds_count;
	uint64_t hist[HIST_BUCKETS];
};

struct bench;

struct worker {
	pthread_t thread;
	struct bench *b;
	unsigned index;
	struct ht_client *client;
	uint64_t rng;
	struct ht_transfer *transfers; /* --batch */
	uint16_t *results;             /* --batch */
	struct ht_buf body;            /* raw mode */
	struct tally t;
	uint64_t errors_outside;       /* failures in the warmup or after */
	char first_error[HT_CLIENT_ERROR_BYTES + 64];
};

struct bench {
	struct bench_cfg cfg;
	ht_u128 run_id;              /* high 64 bits of every transfer id */
	_Atomic uint64_t next_id;    /* low 64 bits, handed out in batches */
	_Atomic int phase;
	struct worker *workers;
};

/* A snapshot of the CPU time spent so far, for the window's deltas. */
struct cpu_snap {
	double self_s;               /* this process, user + system */
	double server_s;             /* the server's processes */
	double machine_busy_s;       /* all CPUs, busy (not idle/iowait) */
	double machine_total_s;
	uint64_t wall_ns;
};

/* ---- small helpers ----------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *s)
{
	/* splitmix64, as bench ledger: fast and good enough to pick
	 * accounts and amounts. */
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static bool parse_u64(const char *opt, const char *s, uint64_t min,
		      uint64_t max, uint64_t *out)
{
	uint64_t v;
	if (ht_u64_parse(s, strlen(s), &v) || v < min || v > max) {
		fprintf(stderr,
			"bench_api: %s wants a whole number in %" PRIu64
			"..%" PRIu64 ", not '%s'\n", opt, min, max, s);
		return false;
	}
	*out = v;
	return true;
}

static bool parse_uint(const char *opt, const char *s, unsigned min,
		       unsigned max, unsigned *out)
{
	uint64_t v;
	if (!parse_u64(opt, s, min, max, &v))
		return false;
	*out = (unsigned)v;
	return true;
}

/* ---- histogram --------------------------------------------------------- */

static size_t hist_index(uint64_t v)
{
	if (v < HIST_SUB)
		return (size_t)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS */
	uint64_t m = (v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1);
	size_t i = (size_t)(e - HIST_SUB_BITS + 1) * HIST_SUB + (size_t)m;
	HT_ASSERT(i < HIST_BUCKETS);
	return i;
}

/* The middle of bucket i: the value reported for samples in it. */
static double hist_value(size_t i)
{
	if (i < HIST_SUB)
		return (double)i;
	unsigned e = (unsigned)(i / HIST_SUB) + HIST_SUB_BITS - 1;
	uint64_t m = i % HIST_SUB;
	double low = (double)((HIST_SUB + m) << (e - HIST_SUB_BITS));
	double width = (double)(1ull << (e - HIST_SUB_BITS));
	return low + width / 2;
}

/* The q-quantile (0 < q <= 1) of the histogram in ns; 0 when empty. */
static double hist_quantile(const uint64_t *hist, uint64_t count, double q)
{
	if (!count)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)count + 0.5);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		seen += hist[i];
		if (seen >= rank)
			return hist_value(i);
	}
	return hist_value(HIST_BUCKETS - 1);
}

/* ---- CPU accounting ------------------------------------------------------ */

/* utime + stime of a process (all its threads) in seconds; -1 if gone. */
static double proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and ')': fields restart after
	 * the last ')'. Then state (3), ..., utime (14), stime (15). */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	unsigned long long utime = 0, stime = 0;
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		   &utime, &stime) != 2)
		return -1;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* Busy and total CPU seconds of the whole machine (/proc/stat "cpu"). */
static void machine_cpu_s(double *busy, double *total)
{
	unsigned long long v[8] = {0};
	*busy = *total = 0;
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return;
	int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
		       &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 5)
		return;
	unsigned long long all = 0;
	for (int i = 0; i < 8; i++)
		all += v[i];
	double hz = (double)sysconf(_SC_CLK_TCK);
	*total = (double)all / hz;
	*busy = (double)(all - v[3] - v[4]) / hz; /* minus idle, iowait */
}

static void cpu_snapshot(const struct bench_cfg *cfg, struct cpu_snap *s)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	s->self_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	s->server_s = 0;
	for (size_t i = 0; i < cfg->server_pids_count; i++) {
		double v = proc_cpu_s(cfg->server_pids[i]);
		if (v > 0)
			s->server_s += v;
	}
	machine_cpu_s(&s->machine_busy_s, &s->machine_total_s);
	s->wall_ns = now_ns();
}

/* ---- requests ------------------------------------------------------------ */

/* Fill the worker's batch with fresh transfers: unique, time-ordered ids
 * (run id << 64 | a counter shared by all workers, so the store's id
 * index is appended to, as DESIGN.md recommends to clients), debit and
 * credit two distinct accounts of the participant, amounts 1..1000. */
static void fill_batch(struct worker *w)
{
	const struct bench_cfg *cfg = &w->b->cfg;
	uint64_t first = atomic_fetch_add(&w->b->next_id, cfg->batch) + 1;
	for (unsigned i = 0; i < cfg->batch; i++) {
		struct ht_transfer *t = &w->transfers[i];
		uint64_t d = rng_next(&w->rng) % cfg->accounts;
		uint64_t k = 1 + rng_next(&w->rng) % (cfg->accounts - 1);
		memset(t, 0, sizeof *t);
		t->id = w->b->run_id | (ht_u128)(first + i);
		t->debit_account_id = cfg->account_base + d;
		t->credit_account_id = cfg->account_base + (d + k) % cfg->accounts;
		t->amount = 1 + rng_next(&w->rng) % BENCH_AMOUNT_MAX;
		t->ledger = BENCH_LEDGER_ID;
		t->code = BENCH_TRANSFER_CODE;
	}
}

/* What one request came to, tallied only once it is known whether it
 * completed inside the window. */
struct outcome {
	bool ok;                     /* sent, answered, every transfer ok */
	uint64_t transfers_ok;
	uint64_t head_seq;           /* the receipt's head; 0 raw mode */
	uint64_t bad;                /* how many of kind: 1 request, or the
					transfers not ok */
	char kind[BENCH_ERR_NAME_BYTES];
	char msg[HT_CLIENT_ERROR_BYTES];
};

static void outcome_fail(struct outcome *o, const char *kind, uint64_t bad,
			 const char *msg)
{
	o->ok = false;
	o->bad = bad;
	snprintf(o->kind, sizeof o->kind, "%s", kind);
	snprintf(o->msg, sizeof o->msg, "%s", msg);
}

/* One create_transfers, its receipt checked by the client (unless
 * --no-verify): the answer is used only once the client has proven it. */
static void send_transfers(struct worker *w, struct outcome *o)
{
	const struct bench_cfg *cfg = &w->b->cfg;
	struct ht_client_commit commit;
	enum ht_err err = ht_client_create_transfers(
		w->client, w->transfers, cfg->batch, w->results, NULL, &commit);
	if (err) {
		outcome_fail(o, ht_strerror(err), 1, ht_client_error(w->client));
		return;
	}
	o->head_seq = commit.head.seq;
	for (unsigned i = 0; i < cfg->batch; i++) {
		if (w->results[i] == HT_R_OK) {
			o->transfers_ok++;
			continue;
		}
		if (o->ok) {
			const char *name = ht_result_name(w->results[i]);
			char kind[BENCH_ERR_NAME_BYTES];
			snprintf(kind, sizeof kind, "result_%s",
				 name ? name : "unknown");
			outcome_fail(o, kind, 0, "a transfer's result was not ok");
		}
		o->bad++;
	}
}

/* One signed POST of the same kind of body to --path; any 2xx is a
 * success (the nginx ceiling answers 204 to everything). The body is
 * written afresh each time, as the client does for a create. */
static void send_raw(struct worker *w, struct outcome *o)
{
	const struct bench_cfg *cfg = &w->b->cfg;
	struct ht_client_response r;
	w->body.len = 0;
	enum ht_err err = ht_jsonl_write_transfers(
		&w->body, HT_OP_CREATE_TRANSFERS, w->transfers, cfg->batch);
	if (!err)
		err = ht_client_call(w->client, "POST", cfg->path, w->body.data,
				     w->body.len, &r);
	if (err) {
		outcome_fail(o, ht_strerror(err), 1, ht_client_error(w->client));
		return;
	}
	if (r.status >= 200 && r.status < 300) {
		o->transfers_ok = cfg->batch;
	} else {
		char kind[BENCH_ERR_NAME_BYTES];
		snprintf(kind, sizeof kind, "http_%ld", r.status);
		outcome_fail(o, kind, 1, r.code[0] ? r.code : "a non-2xx answer");
	}
	ht_client_response_clear(&r);
}

static void tally_kind(struct tally *t, const char *name, uint64_t n)
{
	size_t i = 0;
	while (i < t->kinds_count && strcmp(t->kinds[i].name, name))
		i++;
	if (i == t->kinds_count) {
		if (t->kinds_count == BENCH_ERR_KINDS_MAX) {
			i = BENCH_ERR_KINDS_MAX - 1;
			name = "other";
		} else {
			t->kinds_count++;
		}
		snprintf(t->kinds[i].name, sizeof t->kinds[i].name, "%s", name);
	}
	t->kinds[i].count += n;
}

/* Count a completed request in the window. */
static void tally(struct worker *w, const struct outcome *o, uint64_t dt_ns)
{
	struct tally *t = &w->t;
	t->transfers += o->transfers_ok;
	if (o->head_seq) {
		if (!t->head_seq_min || o->head_seq < t->head_seq_min)
			t->head_seq_min = o->head_seq;
		if (o->head_seq > t->head_seq_max)
			t->head_seq_max = o->head_seq;
	}
	if (!o->ok) {
		t->errors++;
		tally_kind(t, o->kind, o->bad);
		return;
	}
	t->requests++;
	t->hist[hist_index(dt_ns)]++;
	if (dt_ns > t->latency_ns_max)
		t->latency_ns_max = dt_ns;
}

/* The worker loop: requests back to back until PHASE_STOP. A request is
 * counted when it completes inside the measured window, whenever it
 * started (completions per second of a closed loop: unbiased in a steady
 * state). A failure outside the window is not in the figures but is not
 * hidden either: it is counted apart and its message kept. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;
	struct outcome o;
	while (atomic_load(&b->phase) != PHASE_STOP) {
		fill_batch(w);
		memset(&o, 0, sizeof o);
		o.ok = true;
		uint64_t t0 = now_ns();
		if (b->cfg.mode == MODE_RAW)
			send_raw(w, &o);
		else
			send_transfers(w, &o);
		uint64_t dt = now_ns() - t0;
		if (!o.ok && !w->first_error[0])
			snprintf(w->first_error, sizeof w->first_error,
				 "%s: %s", o.kind, o.msg);
		if (atomic_load(&b->phase) == PHASE_MEASURE)
			tally(w, &o, dt);
		else if (!o.ok)
			w->errors_outside++;
		if (!o.ok && o.bad && !o.transfers_ok)
			sleep_ms(BENCH_ERROR_PAUSE_MS);
	}
	return NULL;
}

/* ---- setup --------------------------------------------------------------- */

/* Create accounts [base, base + accounts) owned by the credentials'
 * participant, HT_BATCH_EVENTS_MAX a request. `exists` is fine (a second
 * setup of the same store); any other result fails the setup. */
static int setup_accounts(const struct bench_cfg *cfg, struct ht_client *c)
{
	struct ht_account *a = calloc(HT_BATCH_EVENTS_MAX, sizeof *a);
	uint16_t *results = calloc(HT_BATCH_EVENTS_MAX, sizeof *results);
	uint64_t created = 0, existed = 0, t0 = now_ns();
	int rc = 0;
	for (uint64_t done = 0; a && results && done < cfg->accounts && !rc;) {
		size_t n = cfg->accounts - done < HT_BATCH_EVENTS_MAX
				   ? (size_t)(cfg->accounts - done)
				   : HT_BATCH_EVENTS_MAX;
		for (size_t i = 0; i < n; i++) {
			memset(&a[i], 0, sizeof a[i]);
			a[i].id = cfg->account_base + done + i;
			a[i].ledger = BENCH_LEDGER_ID;
			a[i].code = BENCH_ACCOUNT_CODE;
		}
		enum ht_err err = ht_client_create_accounts(c, a, n, results,
							    NULL, NULL);
		if (err) {
			fprintf(stderr, "bench_api: setup: %s\n",
				ht_client_error(c));
			rc = 2;
			break;
		}
		for (size_t i = 0; i < n && !rc; i++) {
			if (results[i] == HT_R_OK || results[i] == HT_R_EXISTS) {
				created += results[i] == HT_R_OK;
				existed += results[i] == HT_R_EXISTS;
				continue;
			}
			const char *name = ht_result_name(results[i]);
			fprintf(stderr, "bench_api: setup: account %" PRIu64
				": %s\n", cfg->account_base + done + i,
				name ? name : "unknown result");
			rc = 2;
		}
		done += n;
	}
	if (!a || !results) {
		fprintf(stderr, "bench_api: setup: out of memory\n");
		rc = 2;
	}
	if (!rc)
		fprintf(stderr, "bench_api: setup: accounts %" PRIu64 "..%" PRIu64
			": %" PRIu64 " created, %" PRIu64 " existed (%.1f s)\n",
			cfg->account_base, cfg->account_base + cfg->accounts - 1,
			created, existed, (double)(now_ns() - t0) / 1e9);
	free(a);
	free(results);
	return rc;
}

/* ---- the run ---------------------------------------------------------------- */

static enum ht_err open_client(const struct bench_cfg *cfg,
			       struct ht_client **out)
{
	struct ht_client_options o;
	ht_client_options_init(&o);
	o.url = cfg->url;
	o.credentials_dir = cfg->credentials;
	o.retries = cfg->retries;
	o.verify_receipts = cfg->verify;
	enum ht_err err = ht_client_open(&o, out);
	if (err)
		fprintf(stderr, "bench_api: cannot open a client: %s\n",
			ht_client_open_error());
	return err;
}

static int workers_create(struct bench *b)
{
	const struct bench_cfg *cfg = &b->cfg;
	b->workers = calloc(cfg->connections, sizeof *b->workers);
	if (!b->workers)
		return 2;
	for (unsigned i = 0; i < cfg->connections; i++) {
		struct worker *w = &b->workers[i];
		w->b = b;
		w->index = i;
		w->rng = 0x5eed0000u + i;
		w->transfers = calloc(cfg->batch, sizeof *w->transfers);
		w->results = calloc(cfg->batch, sizeof *w->results);
		if (!w->transfers || !w->results)
			return 2;
		if (open_client(cfg, &w->client))
			return 2;
	}
	return 0;
}

static void workers_destroy(struct bench *b)
{
	for (unsigned i = 0; b->workers && i < b->cfg.connections; i++) {
		struct worker *w = &b->workers[i];
		ht_client_close(w->client);
		free(w->transfers);
		free(w->results);
		ht_buf_free(&w->body);
	}
	free(b->workers);
	b->workers = NULL;
}

/* Start the workers, let them warm up (connections and TLS sessions
 * made, the hub key fetched, caches warm), measure for the duration,
 * stop, and wait for them. *before and *after bracket the window. */
static int run_window(struct bench *b, struct cpu_snap *before,
		      struct cpu_snap *after)
{
	const struct bench_cfg *cfg = &b->cfg;
	unsigned started = 0;
	atomic_store(&b->phase, PHASE_WARMUP);
	for (; started < cfg->connections; started++) {
		struct worker *w = &b->workers[started];
		if (pthread_create(&w->thread, NULL, worker_main, w)) {
			fprintf(stderr, "bench_api: cannot start thread %u\n",
				started);
			break;
		}
	}
	if (started == cfg->connections) {
		sleep_ms(cfg->warmup_s * 1000);
		cpu_snapshot(cfg, before);
		atomic_store(&b->phase, PHASE_MEASURE);
		sleep_ms(cfg->duration_s * 1000);
		atomic_store(&b->phase, PHASE_STOP);
		cpu_snapshot(cfg, after);
	}
	atomic_store(&b->phase, PHASE_STOP);
	for (unsigned i = 0; i < started; i++)
		pthread_join(b->workers[i].thread, NULL);
	return started == cfg->connections ? 0 : 2;
}

/* ---- the report ------------------------------------------------------------- */

struct report {
	struct tally all;
	uint64_t errors_outside;
	const char *first_error;     /* of any worker, in or out of the window */
	double window_s;
	double gen_cpu_s, server_cpu_s, machine_busy_s, machine_total_s;
	double p50_ms, p90_ms, p99_ms, p999_ms, max_ms, mean_ms;
	uint64_t commits;            /* distinct heads seen (transfers mode) */
};

static void report_merge(const struct bench *b, struct report *r)
{
	struct tally *all = &r->all;
	double sum_ms = 0;
	for (unsigned i = 0; i < b->cfg.connections; i++) {
		const struct worker *w = &b->workers[i];
		const struct tally *t = &w->t;
		all->requests += t->requests;
		all->transfers += t->transfers;
		all->errors += t->errors;
		r->errors_outside += w->errors_outside;
		if (t->latency_ns_max > all->latency_ns_max)
			all->latency_ns_max = t->latency_ns_max;
		if (t->head_seq_min &&
		    (!all->head_seq_min || t->head_seq_min < all->head_seq_min))
			all->head_seq_min = t->head_seq_min;
		if (t->head_seq_max > all->head_seq_max)
			all->head_seq_max = t->head_seq_max;
		for (size_t k = 0; k < HIST_BUCKETS; k++) {
			all->hist[k] += t->hist[k];
			sum_ms += (double)t->hist[k] * hist_value(k) / 1e6;
		}
		for (size_t k = 0; k < t->kinds_count; k++)
			tally_kind(all, t->kinds[k].name, t->kinds[k].count);
		if (!r->first_error && w->first_error[0])
			r->first_error = w->first_error;
	}
	uint64_t n = all->requests;
	r->p50_ms = hist_quantile(all->hist, n, 0.50) / 1e6;
	r->p90_ms = hist_quantile(all->hist, n, 0.90) / 1e6;
	r->p99_ms = hist_quantile(all->hist, n, 0.99) / 1e6;
	r->p999_ms = hist_quantile(all->hist, n, 0.999) / 1e6;
	r->max_ms = (double)all->latency_ns_max / 1e6;
	r->mean_ms = n ? sum_ms / (double)n : 0;
	r->commits = all->head_seq_max ? all->head_seq_max - all->head_seq_min + 1
				       : 0;
}

static void report_cpu(struct report *r, const struct cpu_snap *before,
		       const struct cpu_snap *after)
{
	r->window_s = (double)(after->wall_ns - before->wall_ns) / 1e9;
	r->gen_cpu_s = after->self_s - before->self_s;
	r->server_cpu_s = after->server_s - before->server_s;
	r->machine_busy_s = after->machine_busy_s - before->machine_busy_s;
	r->machine_total_s = after->machine_total_s - before->machine_total_s;
}

/* CPU microseconds per request, or 0 without requests. */
static double per_request_us(double cpu_s, uint64_t requests)
{
	return requests ? cpu_s * 1e6 / (double)requests : 0;
}

/* Busy CPU seconds of the machine not spent by the generator or the
 * server: other processes (and kernel work charged to none), which
 * distort the run. Without --server-pid the server is in it. */
static double other_cpu_s(const struct report *r)
{
	double v = r->machine_busy_s - r->gen_cpu_s - r->server_cpu_s;
	return v > 0 ? v : 0;
}

static void print_text(const struct bench_cfg *cfg, const char *sign,
		       const struct report *r)
{
	const struct tally *a = &r->all;
	double w = r->window_s > 0 ? r->window_s : 1;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	printf("bench_api: %s, batch %u, %u connections, %u s (+%u s warmup),"
	       " signing %s%s\n", cfg->mode == MODE_RAW ? "raw" : "transfers",
	       cfg->batch, cfg->connections, cfg->duration_s, cfg->warmup_s,
	       sign, cfg->verify ? "" : ", receipts NOT checked (--no-verify)");
	printf("  requests     %12" PRIu64 "  %12.0f /s\n", a->requests,
	       (double)a->requests / w);
	printf("  transfers    %12" PRIu64 "  %12.0f /s\n", a->transfers,
	       (double)a->transfers / w);
	printf("  latency ms   p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f"
	       "  max %.3f  mean %.3f\n", r->p50_ms, r->p90_ms, r->p99_ms,
	       r->p999_ms, r->max_ms, r->mean_ms);
	if (r->commits)
		printf("  commits      %12" PRIu64 "  %12.0f /s, %.1f requests"
		       " and %.0f transfers a commit\n", r->commits,
		       (double)r->commits / w,
		       (double)a->requests / (double)r->commits,
		       (double)a->transfers / (double)r->commits);
	printf("  errors       %12" PRIu64, a->errors);
	for (size_t k = 0; k < a->kinds_count; k++)
		printf("%s%s %" PRIu64, k ? ", " : "  (", a->kinds[k].name,
		       a->kinds[k].count);
	printf("%s", a->kinds_count ? ")" : "");
	if (r->errors_outside)
		printf("; %" PRIu64 " more outside the window", r->errors_outside);
	printf("\n");
	printf("  cpu s        generator %.2f (%.2f cores, %.0f us/request)",
	       r->gen_cpu_s, r->gen_cpu_s / w,
	       per_request_us(r->gen_cpu_s, a->requests));
	if (cfg->server_pids_count)
		printf(", server %.2f (%.2f cores, %.0f us/request)",
		       r->server_cpu_s, r->server_cpu_s / w,
		       per_request_us(r->server_cpu_s, a->requests));
	printf(", machine busy %.0f%% of %ld cores (%.2f s by other"
	       " processes)\n",
	       r->machine_total_s > 0
		       ? 100 * r->machine_busy_s / r->machine_total_s
		       : 0,
	       cores, other_cpu_s(r));
	if (r->first_error)
		printf("  first error  %s\n", r->first_error);
}

/* A JSON string of s (printable ASCII kept, the rest escaped). */
static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_json(const struct bench_cfg *cfg, const char *sign,
		       const struct report *r)
{
	const struct tally *a = &r->all;
	double w = r->window_s > 0 ? r->window_s : 1;
	printf("{\"label\":");
	json_str(cfg->label ? cfg->label : "");
	printf(",\"mode\":\"%s\",\"sign\":\"%s\",\"verify\":%s,\"batch\":%u,"
	       "\"connections\":%u,\"duration_s\":%u,\"warmup_s\":%u,"
	       "\"window_s\":%.3f,", cfg->mode == MODE_RAW ? "raw" : "transfers",
	       sign, cfg->verify ? "true" : "false", cfg->batch,
	       cfg->connections, cfg->duration_s, cfg->warmup_s, r->window_s);
	printf("\"requests\":%" PRIu64 ",\"transfers\":%" PRIu64
	       ",\"requests_per_s\":%.1f,\"transfers_per_s\":%.1f,",
	       a->requests, a->transfers, (double)a->requests / w,
	       (double)a->transfers / w);
	printf("\"latency_ms_p50\":%.3f,\"latency_ms_p90\":%.3f,"
	       "\"latency_ms_p99\":%.3f,\"latency_ms_p999\":%.3f,"
	       "\"latency_ms_max\":%.3f,\"latency_ms_mean\":%.3f,",
	       r->p50_ms, r->p90_ms, r->p99_ms, r->p999_ms, r->max_ms,
	       r->mean_ms);
	printf("\"commits\":%" PRIu64 ",\"errors\":%" PRIu64
	       ",\"errors_outside\":%" PRIu64 ",\"error_kinds\":{",
	       r->commits, a->errors, r->errors_outside);
	for (size_t k = 0; k < a->kinds_count; k++) {
		printf("%s", k ? "," : "");
		json_str(a->kinds[k].name);
		printf(":%" PRIu64, a->kinds[k].count);
	}
	printf("},\"first_error\":");
	json_str(r->first_error ? r->first_error : "");
	printf(",\"cpu_s_generator\":%.3f,\"cpu_s_server\":%.3f,"
	       "\"cpu_us_per_request_generator\":%.1f,"
	       "\"cpu_us_per_request_server\":%.1f,"
	       "\"cpu_s_other\":%.3f,\"machine_busy_s\":%.3f,"
	       "\"machine_total_s\":%.3f,\"cores\":%ld}\n",
	       r->gen_cpu_s, r->server_cpu_s,
	       per_request_us(r->gen_cpu_s, a->requests),
	       per_request_us(r->server_cpu_s, a->requests), other_cpu_s(r),
	       r->machine_busy_s, r->machine_total_s,
	       sysconf(_SC_NPROCESSORS_ONLN));
}

/* ---- options ---------------------------------------------------------------- */

static const char usage[] =
	"usage: bench_api --url URL --credentials DIR [options]\n"
	"\n"
	"Load generator for huitong's HTTPS API (bench/api_run runs it).\n"
	"  --connections N   threads, one client and connection each (64)\n"
	"  --duration S      measured window in seconds (10); 0 with --setup:\n"
	"                    set up and exit\n"
	"  --warmup S        seconds before the window (2)\n"
	"  --batch N         transfers a request, 1..8190 (1)\n"
	"  --accounts N      accounts the transfers move between (10000)\n"
	"  --account-base ID first account id (1); each participant needs\n"
	"                    its own range: it may debit only its accounts\n"
	"  --mode M          transfers (create_transfers, receipts checked)\n"
	"                    or raw (POST the same body to --path, count 2xx)\n"
	"  --path P          raw mode's request target (/v1/transfers)\n"
	"  --setup           first create the accounts (8190 a request)\n"
	"  --server-pid P[,P...]  also report these processes' CPU\n"
	"  --retries N       client retries (0: every failure is counted)\n"
	"  --no-verify       diagnostics only: do not check receipts\n"
	"  --label TEXT      copied into the JSON\n"
	"  --json            one JSON object instead of text\n"
	"Exit 0: no error; 1: some request failed or a transfer was not ok\n"
	"(the figures are printed still); 2: usage or setup failure.\n";

static bool parse_pids(const char *s, struct bench_cfg *cfg)
{
	char buf[512];
	snprintf(buf, sizeof buf, "%s", s);
	cfg->server_pids_count = 0;
	for (char *save, *p = strtok_r(buf, ",", &save); p;
	     p = strtok_r(NULL, ",", &save)) {
		uint64_t v;
		if (cfg->server_pids_count == BENCH_SERVER_PIDS_MAX ||
		    !parse_u64("--server-pid", p, 1, 1u << 30, &v))
			return false;
		cfg->server_pids[cfg->server_pids_count++] = (pid_t)v;
	}
	return cfg->server_pids_count > 0;
}

static bool parse_mode(const char *s, enum bench_mode *out)
{
	if (!strcmp(s, "transfers"))
		*out = MODE_TRANSFERS;
	else if (!strcmp(s, "raw"))
		*out = MODE_RAW;
	else
		return false;
	return true;
}

/* Options into *cfg; 0 ok, 1 --help printed, 2 a usage error. */
static int parse_options(int argc, char **argv, struct bench_cfg *cfg)
{
	static const struct option opts[] = {
		{"url", required_argument, NULL, 'u'},
		{"credentials", required_argument, NULL, 'c'},
		{"connections", required_argument, NULL, 'n'},
		{"duration", required_argument, NULL, 'd'},
		{"warmup", required_argument, NULL, 'w'},
		{"batch", required_argument, NULL, 'b'},
		{"accounts", required_argument, NULL, 'a'},
		{"account-base", required_argument, NULL, 'A'},
		{"mode", required_argument, NULL, 'm'},
		{"path", required_argument, NULL, 'p'},
		{"setup", no_argument, NULL, 'S'},
		{"server-pid", required_argument, NULL, 'P'},
		{"retries", required_argument, NULL, 'r'},
		{"no-verify", no_argument, NULL, 'V'},
		{"label", required_argument, NULL, 'l'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0}};
	*cfg = (struct bench_cfg){.connections = 64, .duration_s = 10,
				  .warmup_s = 2, .batch = 1, .accounts = 10000,
				  .account_base = 1, .mode = MODE_TRANSFERS,
				  .path = "/v1/transfers", .verify = true};
	int c;
	bool ok = true;
	while (ok && (c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'u': cfg->url = optarg; break;
		case 'c': cfg->credentials = optarg; break;
		case 'n': ok = parse_uint("--connections", optarg, 1,
					  BENCH_CONNECTIONS_MAX,
					  &cfg->connections); break;
		case 'd': ok = parse_uint("--duration", optarg, 0,
					  BENCH_DURATION_S_MAX,
					  &cfg->duration_s); break;
		case 'w': ok = parse_uint("--warmup", optarg, 0,
					  BENCH_DURATION_S_MAX,
					  &cfg->warmup_s); break;
		case 'b': ok = parse_uint("--batch", optarg, 1,
					  HT_BATCH_EVENTS_MAX, &cfg->batch);
			break;
		case 'a': ok = parse_u64("--accounts", optarg, 2,
					 BENCH_ACCOUNTS_MAX, &cfg->accounts);
			break;
		case 'A': ok = parse_u64("--account-base", optarg, 1,
					 UINT64_MAX - BENCH_ACCOUNTS_MAX,
					 &cfg->account_base); break;
		case 'm': ok = parse_mode(optarg, &cfg->mode); break;
		case 'p': cfg->path = optarg; break;
		case 'S': cfg->setup = true; break;
		case 'P': ok = parse_pids(optarg, cfg); break;
		case 'r': ok = parse_uint("--retries", optarg, 0,
					  HT_CLIENT_RETRIES_MAX, &cfg->retries);
			break;
		case 'V': cfg->verify = false; break;
		case 'l': cfg->label = optarg; break;
		case 'j': cfg->json = true; break;
		case 'h': fputs(usage, stdout); return 1;
		default: ok = false; break;
		}
	}
	if (ok && (!cfg->url || !cfg->credentials || optind != argc ||
		   strlen(cfg->path) >= BENCH_PATH_BYTES_MAX ||
		   cfg->path[0] != '/' ||
		   (cfg->duration_s == 0 && !cfg->setup)))
		ok = false;
	if (!ok)
		fputs(usage, stderr);
	return ok ? 0 : 2;
}

/* ---- main ---------------------------------------------------------------------- */

/* The signing algorithm of the credentials, for the report. */
static const char *credentials_sign(const char *dir, char *out, size_t size)
{
	struct ht_pki_credentials k;
	snprintf(out, size, "unknown");
	if (ht_pki_read_credentials(dir, &k))
		return out;
	if (k.signing_key_pem)
		snprintf(out, size, "%s", ht_sign_alg_name(k.signing_alg));
	ht_pki_credentials_clear(&k);
	return out;
}

static int run(struct bench *b, const char *sign)
{
	struct cpu_snap before = {0}, after = {0};
	struct report *r = calloc(1, sizeof *r);
	int rc = r ? workers_create(b) : 2;
	if (!rc)
		rc = run_window(b, &before, &after);
	if (!rc) {
		report_merge(b, r);
		report_cpu(r, &before, &after);
		if (b->cfg.json)
			print_json(&b->cfg, sign, r);
		else
			print_text(&b->cfg, sign, r);
		if (b->cfg.json && r->first_error)
			fprintf(stderr, "bench_api: first error: %s\n",
				r->first_error);
		rc = r->all.errors || r->errors_outside || !r->all.requests;
	}
	workers_destroy(b);
	free(r);
	return rc;
}

int main(int argc, char **argv)
{
	static struct bench b;
	int rc = parse_options(argc, argv, &b.cfg);
	if (rc)
		return rc == 1 ? 0 : 2;
	char sign[32];
	credentials_sign(b.cfg.credentials, sign, sizeof sign);
	if (b.cfg.setup) {
		struct ht_client *c;
		if (open_client(&b.cfg, &c))
			return 2;
		rc = setup_accounts(&b.cfg, c);
		ht_client_close(c);
		if (rc || b.cfg.duration_s == 0)
			return rc;
	}
	/* Transfer ids: the wall clock at the start in the high 64 bits (a
	 * new range for every run against the same store, later runs
	 * after earlier ones), a counter in the low 64. */
	b.run_id = (ht_u128)ht_now_wall_ns() << 64;
	atomic_store(&b.next_id, 0);
	return run(&b, sign);
}

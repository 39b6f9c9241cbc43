/*
 * bench/switch.c — bench_switch: full QR payments through `huitong serve`
 * (issue 5; docs/performance.md "Switch"), the load generator and the
 * simulated participants in one process on the same machine as the hub.
 *
 * The payer's bank (--payer credentials) sends payments in batches over
 * --payer-connections connections: each payment names its payer by the
 * bank's own customer reference and its payee by the merchant's QR payload
 * (--qr), so the hub parses and routes the code, scores the payment
 * (serve --risk), checks the liquidity and reserves the amount. The
 * payee's bank (--payee) runs --acceptors loops: poll its inbox, accept
 * what it finds (one signed decisions request per poll). A payment's
 * latency runs from the moment its batch is sent to the moment its
 * acceptance is answered (committed). Every request is signed by the
 * participant's key (the client does it); every answer is checked for its
 * results.
 *
 *   bench_switch --url URL --payer DIR --payer-id ID --payee DIR --qr QR
 *                [--seconds 10] [--warmup 2] [--batch 16]
 *                [--payer-connections 4] [--acceptors 2]
 *                [--server-pid PID] [--json] [--label NAME]
 *
 * Prints committed payments a second, latency quantiles, the refusals by
 * result, and the CPU of the hub (from /proc, --server-pid) and of this
 * process.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "huitong/client.h"
#include "huitong/common.h"
#include "huitong/crypto.h"
#include "huitong/jsonl.h"
#include "huitong/liquidity.h"

#define TABLE_BITS 22 /* 4 Mi payments in flight or done per run */
#define LAT_MAX (1u << 22)

struct cfg {
	const char *url, *payer, *payer_id, *payee, *qr, *label;
	unsigned seconds, warmup, batch, payer_conns, acceptors;
	long server_pid;
	bool json;
};

/* payment id -> send time, open addressing; keys written once */
struct slot {
	_Atomic uint64_t key_lo;   /* low 64 bits of the id, 0: empty */
	uint64_t key_hi;
	_Atomic uint64_t t0;
};

struct bench {
	struct cfg c;
	struct slot *table;
	_Atomic bool measuring, stop;
	_Atomic uint64_t prepared, refused, committed, decided_other, errors;
	_Atomic uint64_t requests;
	uint32_t *lat_us;          /* measured latencies */
	_Atomic uint64_t lat_n;
	char first_error[256];
	pthread_mutex_t err_lock;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void note_error(struct bench *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void note_error(struct bench *b, const char *fmt, ...)
{
	atomic_fetch_add(&b->errors, 1);
	pthread_mutex_lock(&b->err_lock);
	if (!b->first_error[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(b->first_error, sizeof b->first_error, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&b->err_lock);
}

static struct slot *table_find(struct bench *b, ht_u128 id, bool insert)
{
	uint64_t lo = (uint64_t)id | 1, hi = (uint64_t)(id >> 64);
	size_t mask = ((size_t)1 << TABLE_BITS) - 1;
	for (size_t i = (size_t)(lo >> 7) & mask, k = 0; k <= mask;
	     i = (i + 1) & mask, k++) {
		struct slot *s = &b->table[i];
		uint64_t cur = atomic_load(&s->key_lo);
		if (cur == lo && s->key_hi == hi)
			return s;
		if (cur == 0) {
			if (!insert)
				return NULL;
			uint64_t zero = 0;
			s->key_hi = hi;
			if (atomic_compare_exchange_strong(&s->key_lo, &zero, lo))
				return s;
			if (zero == lo && s->key_hi == hi)
				return s;
		}
	}
	return NULL;
}

static enum ht_err open_client(const char *url, const char *dir,
			       struct ht_client **out)
{
	struct ht_client_options o;
	ht_client_options_init(&o);
	o.url = url;
	o.credentials_dir = dir;
	o.retries = 2;
	o.verify_receipts = false; /* payments answers are checked here */
	enum ht_err err = ht_client_open(&o, out);
	if (err)
		fprintf(stderr, "bench_switch: cannot open a client: %s\n",
			ht_client_open_error());
	return err;
}

struct worker {
	struct bench *b;
	unsigned index;
	pthread_t thread;
	struct ht_client *client;
};

static void *payer_main(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;
	const struct cfg *c = &b->c;
	struct ht_buf body = {0};
	uint64_t seq = 0;
	char cid[64];
	while (!atomic_load(&b->stop)) {
		body.len = 0;
		ht_buf_append(&body, "{\"payments\":[", 13);
		uint64_t t0 = now_ns();
		for (unsigned i = 0; i < c->batch; i++) {
			snprintf(cid, sizeof cid, "%s-%u-%" PRIu64, c->label,
				 w->index, seq++);
			ht_u128 id = ht_liq_payment_id(c->payer_id, cid);
			struct slot *s = table_find(b, id, true);
			if (s)
				atomic_store(&s->t0, t0);
			ht_buf_printf(&body, "%s{\"client_id\":\"%s\",\"payer\":"
					     "{\"account\":\"c%" PRIu64 "\"},"
					     "\"payee\":{\"qr\":\"%s\"},"
					     "\"device\":\"d%" PRIu64 "\"}",
				      i ? "," : "", cid, seq % 100000, c->qr,
				      seq % 100000);
		}
		ht_buf_append(&body, "]}", 2);
		struct ht_client_response r;
		enum ht_err err = ht_client_call(w->client, "POST", "/v1/payments",
						 body.data, body.len, &r);
		atomic_fetch_add(&b->requests, 1);
		if (err || r.status != 200) {
			note_error(b, "payments: %s %ld %s", ht_strerror(err),
				   err ? 0 : r.status, err ? "" : r.body);
		} else {
			json_t *v = json_loadb(r.body, r.body_len, 0, NULL);
			json_t *a = json_object_get(v, "payments");
			size_t i;
			json_t *p;
			json_array_foreach(a, i, p) {
				const char *res = json_string_value(
					json_object_get(p, "result"));
				if (res && !strcmp(res, "ok"))
					atomic_fetch_add(&b->prepared, 1);
				else
					atomic_fetch_add(&b->refused, 1);
			}
			json_decref(v);
		}
		ht_client_response_clear(&r);
	}
	ht_buf_free(&body);
	return NULL;
}

static void *acceptor_main(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;
	struct ht_buf body = {0};
	char ids[HT_U128_DEC_SIZE];
	while (!atomic_load(&b->stop)) {
		struct ht_client_response r;
		enum ht_err err = ht_client_call(w->client, "GET",
						 "/v1/payments/inbox?limit=1000&wait_ms=200",
						 NULL, 0, &r);
		atomic_fetch_add(&b->requests, 1);
		if (err || r.status != 200) {
			note_error(b, "inbox: %s %ld", ht_strerror(err),
				   err ? 0 : r.status);
			ht_client_response_clear(&r);
			usleep(1000);
			continue;
		}
		json_t *v = json_loadb(r.body, r.body_len, 0, NULL);
		ht_client_response_clear(&r);
		json_t *a = json_object_get(v, "payments");
		body.len = 0;
		ht_buf_append(&body, "{\"decisions\":[", 14);
		size_t n = 0, i;
		json_t *p;
		json_array_foreach(a, i, p) {
			const char *id = json_string_value(
				json_object_get(p, "payment_id"));
			ht_u128 v128;
			if (!id || ht_u128_parse(id, strlen(id), &v128))
				continue;
			if ((unsigned)(v128 % b->c.acceptors) != w->index)
				continue; /* another acceptor's */
			ht_buf_printf(&body, "%s{\"payment_id\":\"%s\","
					     "\"decision\":\"accept\"}",
				      n++ ? "," : "", id);
		}
		json_decref(v);
		if (n == 0)
			continue; /* the long poll waited already */
		ht_buf_append(&body, "]}", 2);
		err = ht_client_call(w->client, "POST", "/v1/payments/decisions",
				     body.data, body.len, &r);
		atomic_fetch_add(&b->requests, 1);
		uint64_t t1 = now_ns();
		if (err || r.status != 200) {
			note_error(b, "decisions: %s %ld", ht_strerror(err),
				   err ? 0 : r.status);
			ht_client_response_clear(&r);
			continue;
		}
		v = json_loadb(r.body, r.body_len, 0, NULL);
		ht_client_response_clear(&r);
		a = json_object_get(v, "decisions");
		bool measuring = atomic_load(&b->measuring);
		json_array_foreach(a, i, p) {
			const char *res = json_string_value(json_object_get(p, "result"));
			const char *id = json_string_value(
				json_object_get(p, "payment_id"));
			ht_u128 v128;
			if (!res || strcmp(res, "ok") || !id ||
			    ht_u128_parse(id, strlen(id), &v128)) {
				atomic_fetch_add(&b->decided_other, 1);
				continue;
			}
			if (!measuring)
				continue;
			atomic_fetch_add(&b->committed, 1);
			struct slot *s = table_find(b, v128, false);
			uint64_t t0 = s ? atomic_load(&s->t0) : 0;
			uint64_t k = atomic_fetch_add(&b->lat_n, 1);
			if (t0 && k < LAT_MAX)
				b->lat_us[k] = (uint32_t)((t1 - t0) / 1000);
		}
		json_decref(v);
		(void)ids;
	}
	ht_buf_free(&body);
	return NULL;
}

static double proc_cpu_s(long pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u"
				" %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 +
	       (double)u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static const char usage[] =
	"usage: bench_switch --url URL --payer DIR --payer-id ID --payee DIR\n"
	"                    --qr PAYLOAD [--seconds 10] [--warmup 2]\n"
	"                    [--batch 16] [--payer-connections 4]\n"
	"                    [--acceptors 2] [--server-pid PID] [--json]\n"
	"                    [--label NAME]\n";

static bool uint_opt(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = (unsigned)v;
	return true;
}

int main(int argc, char **argv)
{
	struct bench *b = calloc(1, sizeof *b);
	if (!b)
		return 2;
	struct cfg *c = &b->c;
	*c = (struct cfg){.seconds = 10, .warmup = 2, .batch = 16,
			  .payer_conns = 4, .acceptors = 2, .label = "sw"};
	static const struct option opts[] = {
		{"url", 1, 0, 'u'}, {"payer", 1, 0, 'p'}, {"payer-id", 1, 0, 'i'},
		{"payee", 1, 0, 'e'}, {"qr", 1, 0, 'q'}, {"seconds", 1, 0, 's'},
		{"warmup", 1, 0, 'w'}, {"batch", 1, 0, 'b'},
		{"payer-connections", 1, 0, 'c'}, {"acceptors", 1, 0, 'a'},
		{"server-pid", 1, 0, 'P'}, {"json", 0, 0, 'j'},
		{"label", 1, 0, 'l'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
	int o;
	bool ok = true;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'u': c->url = optarg; break;
		case 'p': c->payer = optarg; break;
		case 'i': c->payer_id = optarg; break;
		case 'e': c->payee = optarg; break;
		case 'q': c->qr = optarg; break;
		case 's': ok = ok && uint_opt(optarg, 1, 3600, &c->seconds); break;
		case 'w': ok = ok && uint_opt(optarg, 0, 600, &c->warmup); break;
		case 'b': ok = ok && uint_opt(optarg, 1, 1024, &c->batch); break;
		case 'c': ok = ok && uint_opt(optarg, 1, 256, &c->payer_conns); break;
		case 'a': ok = ok && uint_opt(optarg, 1, 16, &c->acceptors); break;
		case 'P': c->server_pid = strtol(optarg, NULL, 10); break;
		case 'j': c->json = true; break;
		case 'l': c->label = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default: ok = false;
		}
	}
	if (!ok || !c->url || !c->payer || !c->payer_id || !c->payee || !c->qr) {
		fputs(usage, stderr);
		return 2;
	}
	b->table = calloc((size_t)1 << TABLE_BITS, sizeof *b->table);
	b->lat_us = calloc(LAT_MAX, sizeof *b->lat_us);
	pthread_mutex_init(&b->err_lock, NULL);
	unsigned n = c->payer_conns + c->acceptors;
	struct worker *w = calloc(n, sizeof *w);
	if (!b->table || !b->lat_us || !w)
		return 2;
	for (unsigned i = 0; i < n; i++) {
		bool payer = i < c->payer_conns;
		w[i].b = b;
		w[i].index = payer ? i : i - c->payer_conns;
		if (open_client(c->url, payer ? c->payer : c->payee, &w[i].client))
			return 2;
	}
	for (unsigned i = 0; i < n; i++)
		pthread_create(&w[i].thread, NULL,
			       i < c->payer_conns ? payer_main : acceptor_main, &w[i]);
	sleep(c->warmup);
	double hub0 = c->server_pid ? proc_cpu_s(c->server_pid) : 0;
	double self0 = self_cpu_s();
	uint64_t req0 = atomic_load(&b->requests);
	uint64_t t0 = now_ns();
	atomic_store(&b->measuring, true);
	sleep(c->seconds);
	atomic_store(&b->measuring, false);
	double secs = (double)(now_ns() - t0) / 1e9;
	double hub_cpu = c->server_pid ? proc_cpu_s(c->server_pid) - hub0 : 0;
	double self_cpu = self_cpu_s() - self0;
	uint64_t reqs = atomic_load(&b->requests) - req0;
	atomic_store(&b->stop, true);
	for (unsigned i = 0; i < n; i++) {
		pthread_join(w[i].thread, NULL);
		ht_client_close(w[i].client);
	}
	uint64_t committed = atomic_load(&b->committed);
	uint64_t ln = atomic_load(&b->lat_n);
	if (ln > LAT_MAX)
		ln = LAT_MAX;
	qsort(b->lat_us, ln, sizeof *b->lat_us, cmp_u32);
	double p50 = ln ? b->lat_us[ln / 2] / 1000.0 : 0;
	double p99 = ln ? b->lat_us[(size_t)((double)ln * 0.99)] / 1000.0 : 0;
	double pmax = ln ? b->lat_us[ln - 1] / 1000.0 : 0;
	double rate = (double)committed / secs;
	if (c->json)
		printf("{\"label\":\"%s\",\"batch\":%u,\"payer_connections\":%u,"
		       "\"acceptors\":%u,\"seconds\":%.2f,\"committed\":%" PRIu64
		       ",\"per_s\":%.0f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
		       "\"max_ms\":%.2f,\"refused\":%" PRIu64 ",\"errors\":%" PRIu64
		       ",\"requests_per_s\":%.0f,\"hub_cores\":%.2f,"
		       "\"generator_cores\":%.2f,\"hub_us_per_payment\":%.1f}\n",
		       c->label, c->batch, c->payer_conns, c->acceptors, secs,
		       committed, rate, p50, p99, pmax, atomic_load(&b->refused),
		       atomic_load(&b->errors), (double)reqs / secs,
		       hub_cpu / secs, self_cpu / secs,
		       committed ? hub_cpu * 1e6 / (double)committed : 0);
	else
		printf("%s: %" PRIu64 " payments committed in %.1f s = %.0f/s;"
		       " latency p50 %.2f ms p99 %.2f ms max %.2f ms; %" PRIu64
		       " refused, %" PRIu64 " errors; %.0f requests/s; hub %.2f"
		       " cores (%.1f us a payment), generator and participants"
		       " %.2f cores\n",
		       c->label, committed, secs, rate, p50, p99, pmax,
		       atomic_load(&b->refused), atomic_load(&b->errors),
		       (double)reqs / secs, hub_cpu / secs,
		       committed ? hub_cpu * 1e6 / (double)committed : 0,
		       self_cpu / secs);
	if (b->first_error[0])
		fprintf(stderr, "bench_switch: first error: %s\n", b->first_error);
	return atomic_load(&b->errors) ? 1 : 0;
}

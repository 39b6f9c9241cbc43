/*
 * metrics.c — the server's counters and histograms, and their Prometheus
 * text exposition for GET /metrics.
 *
 * Owner: server. Lock-free: every counter is an atomic that any thread
 * bumps; rendering reads them one by one (a scrape may see a request in
 * a histogram and not yet in its counter, as Prometheus clients allow).
 */
#include "srv.h"

#include <stdio.h>

const double metric_bucket_s[METRIC_BUCKETS] = {
	0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01,
	0.025,  0.05,  0.1,   0.25,  0.5,   1.0,    5.0};

/* Count histograms (events per commit) reuse the buckets scaled: */
static const double count_bucket[METRIC_BUCKETS] = {
	1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 8190, 32760};

static void observe(struct histogram *h, const double *bounds, double v,
		    uint64_t sum_unit)
{
	unsigned i = 0;
	while (i < METRIC_BUCKETS && v > bounds[i])
		i++;
	atomic_fetch_add(&h->bucket[i], 1);
	atomic_fetch_add(&h->count, 1);
	atomic_fetch_add(&h->sum_us, sum_unit);
}

void metrics_observe(struct histogram *h, double value_s)
{
	observe(h, metric_bucket_s, value_s,
		value_s > 0 ? (uint64_t)(value_s * 1e6) : 0);
}

void metrics_observe_count(struct histogram *h, uint64_t n)
{
	observe(h, count_bucket, (double)n, n);
}

static const char *route_label(enum route_id r)
{
	size_t n;
	const struct ht_server_route *t = ht_server_routes(&n);
	return (size_t)r < n ? t[r].path : "unmatched";
}

static const char *route_method(enum route_id r)
{
	size_t n;
	const struct ht_server_route *t = ht_server_routes(&n);
	return (size_t)r < n ? t[r].method : "";
}

static enum ht_err render_hist(struct ht_buf *b, const char *name,
			       const char *labels, const struct histogram *h,
			       const double *bounds, bool seconds)
{
	enum ht_err err = HT_OK;
	uint64_t cum = 0;
	for (unsigned i = 0; !err && i <= METRIC_BUCKETS; i++) {
		cum += atomic_load(&h->bucket[i]);
		char le[32];
		if (i == METRIC_BUCKETS)
			snprintf(le, sizeof le, "+Inf");
		else
			snprintf(le, sizeof le, "%g", bounds[i]);
		err = ht_buf_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", name,
				    labels, *labels ? "," : "", le,
				    (unsigned long long)cum);
	}
	uint64_t sum = atomic_load(&h->sum_us);
	if (!err)
		err = ht_buf_printf(b, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n",
				    name, labels,
				    seconds ? (double)sum / 1e6 : (double)sum,
				    name, labels,
				    (unsigned long long)atomic_load(&h->count));
	return err;
}

/* serve --risk only: without it /metrics is as before. */
static enum ht_err render_risk(struct server *s, struct ht_buf *b)
{
	struct metrics *m = &s->m;
	struct ht_ruleset *rs = ht_rules_holder_acquire(riskflow_rules(s));
	long long version = rs ? (long long)ht_rules_version(rs) : -1;
	ht_rules_release(rs);
	return ht_buf_printf(
		b,
		"# HELP huitong_risk_decisions_total Transfers scored by the"
		" risk engine, by decision.\n"
		"# TYPE huitong_risk_decisions_total counter\n"
		"huitong_risk_decisions_total{decision=\"allow\"} %llu\n"
		"huitong_risk_decisions_total{decision=\"review\"} %llu\n"
		"huitong_risk_decisions_total{decision=\"block\"} %llu\n"
		"# HELP huitong_risk_shadow_hits_total Shadow rules that fired"
		" (logged, never enforced).\n"
		"# TYPE huitong_risk_shadow_hits_total counter\n"
		"huitong_risk_shadow_hits_total %llu\n"
		"# HELP huitong_risk_rules_reloads_total Rule reloads (POST"
		" /v1/risk/rules, SIGHUP), by outcome.\n"
		"# TYPE huitong_risk_rules_reloads_total counter\n"
		"huitong_risk_rules_reloads_total{outcome=\"ok\"} %llu\n"
		"huitong_risk_rules_reloads_total{outcome=\"refused\"} %llu\n"
		"# HELP huitong_risk_rules_version The rule file's version in"
		" force (-1: none).\n"
		"# TYPE huitong_risk_rules_version gauge\n"
		"huitong_risk_rules_version %lld\n"
		"# HELP huitong_risk_held Transfers held for review (pending or"
		" not yet seen resolved).\n"
		"# TYPE huitong_risk_held gauge\n"
		"huitong_risk_held %llu\n",
		(unsigned long long)atomic_load(&m->risk_decisions[HT_DECISION_ALLOW]),
		(unsigned long long)atomic_load(&m->risk_decisions[HT_DECISION_REVIEW]),
		(unsigned long long)atomic_load(&m->risk_decisions[HT_DECISION_BLOCK]),
		(unsigned long long)atomic_load(&m->risk_shadow_hits),
		(unsigned long long)atomic_load(&m->risk_reloads[0]),
		(unsigned long long)atomic_load(&m->risk_reloads[1]), version,
		(unsigned long long)atomic_load(&m->risk_held));
}

enum ht_err metrics_render(struct server *s, struct ht_buf *b)
{
	struct metrics *m = &s->m;
	enum ht_err err = ht_buf_printf(
		b, "# HELP huitong_http_requests_total Requests answered, by"
		   " route and status class.\n"
		   "# TYPE huitong_http_requests_total counter\n");
	static const char *cls[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
	for (int r = 0; !err && r <= R__COUNT; r++)
		for (int c = 0; !err && c < 5; c++) {
			uint64_t v = atomic_load(&m->requests[r][c]);
			if (!v)
				continue;
			err = ht_buf_printf(b,
					    "huitong_http_requests_total{method="
					    "\"%s\",route=\"%s\",status=\"%s\"}"
					    " %llu\n",
					    route_method((enum route_id)r),
					    route_label((enum route_id)r), cls[c],
					    (unsigned long long)v);
		}
	if (!err)
		err = ht_buf_printf(b, "# HELP huitong_http_request_seconds Time"
				       " from a request's arrival to its answer.\n"
				       "# TYPE huitong_http_request_seconds"
				       " histogram\n");
	for (int r = 0; !err && r <= R__COUNT; r++) {
		if (!atomic_load(&m->latency[r].count))
			continue;
		char labels[160];
		snprintf(labels, sizeof labels, "method=\"%s\",route=\"%s\"",
			 route_method((enum route_id)r),
			 route_label((enum route_id)r));
		err = render_hist(b, "huitong_http_request_seconds", labels,
				  &m->latency[r], metric_bucket_s, true);
	}
	if (!err)
		err = ht_buf_printf(b, "# HELP huitong_commit_seconds One group"
				       " commit: store transaction and fsync.\n"
				       "# TYPE huitong_commit_seconds histogram\n");
	if (!err)
		err = render_hist(b, "huitong_commit_seconds", "",
				  &m->commit_seconds, metric_bucket_s, true);
	if (!err)
		err = ht_buf_printf(b, "# HELP huitong_commit_events Events per"
				       " group commit.\n"
				       "# TYPE huitong_commit_events histogram\n");
	if (!err)
		err = render_hist(b, "huitong_commit_events", "",
				  &m->commit_events, count_bucket, false);
	if (!err)
		err = ht_buf_printf(b, "# HELP huitong_commit_requests Requests"
				       " per group commit.\n"
				       "# TYPE huitong_commit_requests histogram\n");
	if (!err)
		err = render_hist(b, "huitong_commit_requests", "",
				  &m->commit_requests, count_bucket, false);
	struct ht_accesslog_stats as = {0};
	if (s->alog)
		ht_accesslog_stats(s->alog, &as);
	if (!err)
		err = ht_buf_printf(
			b,
			"# HELP huitong_queue_depth Requests waiting for the hub"
			" thread.\n# TYPE huitong_queue_depth gauge\n"
			"huitong_queue_depth %llu\n"
			"# HELP huitong_overloaded_total 503 overloaded answers.\n"
			"# TYPE huitong_overloaded_total counter\n"
			"huitong_overloaded_total %llu\n"
			"# HELP huitong_auth_refused_total 401 answers.\n"
			"# TYPE huitong_auth_refused_total counter\n"
			"huitong_auth_refused_total %llu\n"
			"# HELP huitong_connections_open Open connections.\n"
			"# TYPE huitong_connections_open gauge\n"
			"huitong_connections_open %llu\n"
			"# HELP huitong_connections_total Connections accepted.\n"
			"# TYPE huitong_connections_total counter\n"
			"huitong_connections_total %llu\n"
			"# HELP huitong_journal_tree_size Leaves in the journal.\n"
			"# TYPE huitong_journal_tree_size gauge\n"
			"huitong_journal_tree_size %llu\n",
			(unsigned long long)atomic_load(&s->queue_depth),
			(unsigned long long)atomic_load(&m->overloaded),
			(unsigned long long)atomic_load(&m->refused_auth),
			(unsigned long long)atomic_load(&m->connections_open),
			(unsigned long long)atomic_load(&m->connections_total),
			(unsigned long long)atomic_load(&s->tree_size));
	if (!err && s->alog)
		err = ht_buf_printf(
			b,
			"# HELP huitong_access_log_entries_total Durable access"
			" log entries.\n"
			"# TYPE huitong_access_log_entries_total counter\n"
			"huitong_access_log_entries_total %llu\n"
			"# HELP huitong_access_log_queue_depth Entries not yet"
			" durable.\n# TYPE huitong_access_log_queue_depth gauge\n"
			"huitong_access_log_queue_depth %llu\n"
			"# HELP huitong_access_log_fsync_seconds_last The last"
			" access log commit, fsync included.\n"
			"# TYPE huitong_access_log_fsync_seconds_last gauge\n"
			"huitong_access_log_fsync_seconds_last %.6f\n",
			(unsigned long long)as.entries_total,
			(unsigned long long)as.queue_depth,
			(double)as.commit_latency_us_last / 1e6);
	if (!err && s->risk)
		err = render_risk(s, b);
	return err;
}

/*
 * http.c — one request on a worker thread: who is calling (the client
 * certificate, checked once per connection, and the registry, on every
 * request), whether the request is signed, whether the role may, which
 * route, and the body; then either an answer now or a job for the hub
 * thread, answered when it comes back (http_complete).
 *
 * Owner: server. Everything here reads outside input, so everything is
 * bounded: the path (HT_REQSIG_PATH_BYTES_MAX), the query (known keys,
 * digits or true/false only), the body (HT_JSONL_LINE_BYTES_MAX, parsed
 * by jsonl.c's bounded parser), file names under /static (one plain
 * name, no dot first). Every refusal is a JSON {"code","message"} with
 * the status docs/api.md gives, counted in /metrics and written to the
 * access log like every other answer.
 */
#include "srv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>

#include <jansson.h>

#include "huitong/journal.h"
#include "huitong/risk.h"

/* ---- the route table ---------------------------------------------------------- */

#define ROLE_P (1u << HT_PKI_ROLE_PARTICIPANT)
#define ROLE_O (1u << HT_PKI_ROLE_OPERATOR)
#define ROLE_R (1u << HT_PKI_ROLE_REGULATOR)
#define ROLE_ALL (ROLE_P | ROLE_O | ROLE_R)

struct route {
	enum route_id id;
	const char *method;
	const char *path;
	bool sig_required;
	unsigned roles;
	const char *roles_name;
	const char *query[8];   /* allowed query keys */
};

static const struct route routes[] = {
	{R_ACCOUNTS_CREATE, "POST", "/v1/accounts", true, ROLE_P | ROLE_O,
	 "participant,operator", {NULL}},
	{R_TRANSFERS_CREATE, "POST", "/v1/transfers", true, ROLE_P | ROLE_O,
	 "participant,operator", {NULL}},
	{R_ACCOUNTS_LOOKUP, "POST", "/v1/accounts/lookup", true, ROLE_ALL,
	 "all", {NULL}},
	{R_TRANSFERS_LOOKUP, "POST", "/v1/transfers/lookup", true, ROLE_ALL,
	 "all", {NULL}},
	{R_ACCOUNT_GET, "GET", "/v1/accounts/{id}", false, ROLE_ALL, "all",
	 {NULL}},
	{R_TRANSFER_GET, "GET", "/v1/transfers/{id}", false, ROLE_ALL, "all",
	 {NULL}},
	{R_ACCOUNT_TRANSFERS, "GET", "/v1/accounts/{id}/transfers", false,
	 ROLE_ALL, "all",
	 {"limit", "timestamp_min", "timestamp_max", "debits", "credits",
	  "reversed", NULL}},
	{R_ACCOUNT_BALANCES, "GET", "/v1/accounts/{id}/balances", false,
	 ROLE_ALL, "all",
	 {"limit", "timestamp_min", "timestamp_max", "debits", "credits",
	  "reversed", NULL}},
	{R_TRANSFER_RECEIPT, "GET", "/v1/transfers/{id}/receipt", false,
	 ROLE_ALL, "all", {"tree_size", NULL}},
	{R_JOURNAL_HEAD, "GET", "/v1/journal/head", false, ROLE_ALL, "all",
	 {NULL}},
	{R_JOURNAL_HEAD_AT, "GET", "/v1/journal/heads/{seq}", false, ROLE_ALL,
	 "all", {NULL}},
	{R_JOURNAL_CONSISTENCY, "GET", "/v1/journal/consistency", false,
	 ROLE_ALL, "all", {"old", "new", NULL}},
	{R_JOURNAL_KEY, "GET", "/v1/journal/key", false, ROLE_ALL, "all",
	 {NULL}},
	{R_HEALTHZ, "GET", "/healthz", false, ROLE_ALL, "all", {NULL}},
	{R_METRICS, "GET", "/metrics", false, ROLE_O | ROLE_R,
	 "operator,regulator", {NULL}},
	{R_STATIC, "GET", "/static/{name}", false, ROLE_ALL, "all", {NULL}},
	{R_TRANSFER_RISK, "GET", "/v1/transfers/{id}/risk", false, ROLE_ALL,
	 "all", {NULL}},
	{R_RISK_REVIEWS, "GET", "/v1/risk/reviews", false, ROLE_O | ROLE_R,
	 "operator,regulator", {"limit", NULL}},
	{R_RISK_APPROVE, "POST", "/v1/risk/reviews/{id}/approve", true, ROLE_O,
	 "operator", {NULL}},
	{R_RISK_REJECT, "POST", "/v1/risk/reviews/{id}/reject", true, ROLE_O,
	 "operator", {NULL}},
	{R_RISK_RULES, "POST", "/v1/risk/rules", true, ROLE_O, "operator",
	 {NULL}},
	{R_BLOCK_ADD, "POST", "/v1/risk/blocklist", true, ROLE_P | ROLE_O,
	 "participant,operator", {NULL}},
	{R_BLOCK_LIST, "GET", "/v1/risk/blocklist", false, ROLE_ALL, "all",
	 {"limit", NULL}},
	{R_BLOCK_REMOVE, "POST", "/v1/risk/blocklist/remove", true,
	 ROLE_P | ROLE_O, "participant,operator", {NULL}},
	{R_ALIAS_REGISTER, "POST", "/v1/aliases", true, ROLE_P | ROLE_O,
	 "participant,operator", {NULL}},
	{R_ALIAS_LOOKUP, "POST", "/v1/aliases/lookup", true, ROLE_ALL, "all",
	 {NULL}},
	{R_ALIAS_UPDATE, "POST", "/v1/aliases/update", true, ROLE_P | ROLE_O,
	 "participant,operator", {NULL}},
	{R_ALIAS_REMOVE, "POST", "/v1/aliases/remove", true, ROLE_P | ROLE_O,
	 "participant,operator", {NULL}},
	{R_TOKEN_ISSUE, "POST", "/v1/tokens", true, ROLE_P | ROLE_O,
	 "participant,operator", {NULL}},
	{R_TOKEN_GET, "GET", "/v1/tokens/{token}", false, ROLE_ALL, "all",
	 {NULL}},
	{R_TOKEN_DETOKENIZE, "POST", "/v1/tokens/{token}/detokenize", true,
	 ROLE_P | ROLE_O, "participant,operator", {NULL}},
	{R_TOKEN_SUSPEND, "POST", "/v1/tokens/{token}/suspend", true,
	 ROLE_P | ROLE_O, "participant,operator", {NULL}},
	{R_TOKEN_RESUME, "POST", "/v1/tokens/{token}/resume", true,
	 ROLE_P | ROLE_O, "participant,operator", {NULL}},
	{R_TOKEN_DELETE, "POST", "/v1/tokens/{token}/delete", true,
	 ROLE_P | ROLE_O, "participant,operator", {NULL}},
	{R_PAYMENTS_CREATE, "POST", "/v1/payments", true, ROLE_P, "participant",
	 {NULL}},
	{R_PAYMENTS_INBOX, "GET", "/v1/payments/inbox", false, ROLE_P,
	 "participant", {"limit", "wait_ms", NULL}},
	{R_PAYMENTS_DECIDE, "POST", "/v1/payments/decisions", true,
	 ROLE_P | ROLE_O, "participant,operator", {NULL}},
	{R_PAYMENT_GET, "GET", "/v1/payments/{id}", false, ROLE_ALL, "all",
	 {NULL}},
	{R_PAYMENT_ACCEPT, "POST", "/v1/payments/{id}/accept", true,
	 ROLE_P | ROLE_O, "participant,operator", {NULL}},
	{R_PAYMENT_REJECT, "POST", "/v1/payments/{id}/reject", true,
	 ROLE_P | ROLE_O, "participant,operator", {NULL}},
	{R_LIQUIDITY, "POST", "/v1/liquidity", true, ROLE_O, "operator",
	 {NULL}},
	{R_LIQUIDITY_GET, "GET", "/v1/liquidity/{participant}", false, ROLE_ALL,
	 "all", {"currency", NULL}},
	{R_SETTLE_CLOSE, "POST", "/v1/settlement/close", true, ROLE_O,
	 "operator", {NULL}},
	{R_SETTLE_GET, "GET", "/v1/settlement/windows/{id}", false, ROLE_ALL,
	 "all", {"format", NULL}},
	{R_SETTLE_SETTLE, "POST", "/v1/settlement/windows/{id}/settle", true,
	 ROLE_O, "operator", {NULL}},
	{R_ISO_PACS008, "POST", "/v1/iso20022/pacs008", true, ROLE_P,
	 "participant", {NULL}},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])
_Static_assert(N_ROUTES == R__COUNT, "one route per route_id");

const struct ht_server_route *ht_server_routes(size_t *n)
{
	static struct ht_server_route table[N_ROUTES];
	for (size_t i = 0; i < N_ROUTES; i++)
		table[i] = (struct ht_server_route){
			routes[i].method, routes[i].path,
			routes[i].sig_required, routes[i].roles_name};
	*n = N_ROUTES;
	return table;
}

#define SEGMENTS_MAX 8

/* Split a path into at most SEGMENTS_MAX segments. False for an empty
 * segment, "." or "..", or too many. */
static bool split_path(const char *path, const char *seg[SEGMENTS_MAX],
		       size_t len[SEGMENTS_MAX], size_t *n)
{
	*n = 0;
	if (path[0] != '/')
		return false;
	const char *p = path + 1;
	if (!*p)
		return true;
	for (;;) {
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == 0 || *n == SEGMENTS_MAX)
			return false;
		if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		seg[*n] = p;
		len[(*n)++] = l;
		if (!e)
			return true;
		p = e + 1;
	}
}

struct match {
	const struct route *route;
	const char *param;      /* the {…} segment */
	size_t param_len;
};

/* Does the pattern match the segments? Literal routes win over {param}. */
static bool pattern_match(const char *pattern, const char *const seg[],
			  const size_t len[], size_t n, struct match *m,
			  bool *literal)
{
	const char *p = pattern + 1;
	size_t i = 0;
	*literal = true;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (i == n)
			return false;
		if (p[0] == '{') {
			m->param = seg[i];
			m->param_len = len[i];
			*literal = false;
		} else if (l != len[i] || memcmp(p, seg[i], l)) {
			return false;
		}
		i++;
		p = e ? e + 1 : p + l;
	}
	return i == n;
}

/* 0: matched; 404 no route; 405 the path exists with other methods. */
static int route_find(const char *method, const char *path, struct match *out)
{
	const char *seg[SEGMENTS_MAX];
	size_t len[SEGMENTS_MAX], n;
	if (!split_path(path, seg, len, &n))
		return 404;
	bool any_literal = false;
	for (size_t i = 0; i < N_ROUTES; i++) {
		struct match m = {0};
		bool lit;
		if (pattern_match(routes[i].path, seg, len, n, &m, &lit) && lit)
			any_literal = true;
	}
	bool path_seen = false;
	for (size_t i = 0; i < N_ROUTES; i++) {
		struct match m = {0};
		bool lit;
		if (!pattern_match(routes[i].path, seg, len, n, &m, &lit))
			continue;
		if (any_literal && !lit)
			continue;
		path_seen = true;
		if (strcmp(routes[i].method, method))
			continue;
		m.route = &routes[i];
		*out = m;
		return 0;
	}
	return path_seen ? 405 : 404;
}

int srv_route_find(const char *method, const char *path, int *route_id)
{
	struct match m = {0};
	int r = route_find(method, path, &m);
	*route_id = r ? -1 : (int)m.route->id;
	return r;
}

/* ---- answers --------------------------------------------------------------------- */

static const char *method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	}
	return "OTHER";
}

/* JSON string body of s[0..n) (without quotes), escaped. */
static void json_escape(struct evbuffer *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			evbuffer_add(b, e, 2);
		} else if (c < 0x20 || c >= 0x7f) {
			/* messages are ASCII; anything else is shown, not
			 * passed through */
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			evbuffer_add(b, e, 6);
		} else {
			evbuffer_add(b, &s[i], 1);
		}
	}
}

struct answer_info {
	enum route_id route;
	uint64_t t_start_ns;
	const char *who;
	enum ht_pki_role role_id;
	const char *remote;     /* when the request is gone */
	const char *method;
	const char *path;
	const char *key_id;
	const char *serial;
	const char *code;       /* "ok" or the error code */
	uint64_t body_bytes;
};

static void account(struct server *s, struct conn *c,
		    struct evhttp_request *req, int status,
		    const struct answer_info *ai)
{
	uint64_t now = srv_now_ns();
	double lat = (double)(now - ai->t_start_ns) / 1e9;
	unsigned cls = status >= 100 && status < 600 ? (unsigned)status / 100 - 1 : 4;
	atomic_fetch_add(&s->m.requests[ai->route][cls], 1);
	metrics_observe(&s->m.latency[ai->route], lat);
	if (status == 401)
		atomic_fetch_add(&s->m.refused_auth, 1);
	if (!s->alog)
		return;
	struct ht_access_entry e;
	memset(&e, 0, sizeof e);
	e.time_ns = ai->t_start_ns;
	snprintf(e.participant, sizeof e.participant, "%s", ai->who ? ai->who : "");
	e.role = ai->role_id;
	snprintf(e.key_id, sizeof e.key_id, "%s", ai->key_id ? ai->key_id : "");
	snprintf(e.cert_serial, sizeof e.cert_serial, "%s",
		 ai->serial ? ai->serial : "");
	snprintf(e.remote, sizeof e.remote, "%s", c ? c->remote : ai->remote ? ai->remote : "");
	if (req) {
		snprintf(e.method, sizeof e.method, "%s",
			 method_name(evhttp_request_get_command(req)));
		const char *uri = evhttp_request_get_uri(req);
		ht_access_entry_set_path(&e, uri ? uri : "", uri ? strlen(uri) : 0);
	} else {
		snprintf(e.method, sizeof e.method, "%s", ai->method ? ai->method : "");
		ht_access_entry_set_path(&e, ai->path ? ai->path : "",
					 ai->path ? strlen(ai->path) : 0);
	}
	e.status = (uint16_t)status;
	snprintf(e.outcome, sizeof e.outcome, "%s", ai->code ? ai->code : "ok");
	e.body_bytes = ai->body_bytes;
	uint64_t us = (now - ai->t_start_ns) / 1000;
	e.latency_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	if (ht_accesslog_append(s->alog, &e))
		fprintf(stderr, "huitong serve: access log append failed\n");
}

static void send_body(struct server *s, struct conn *c,
		      struct evhttp_request *req, int status,
		      const char *content_type, struct evbuffer *body,
		      const struct answer_info *ai)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", content_type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	if (status == 503)
		evhttp_add_header(h, "Retry-After", "1");
	if (atomic_load(&s->stopping))
		evhttp_add_header(h, "Connection", "close");
	account(s, c, req, status, ai);
	evhttp_send_reply(req, status, NULL, body);
}

static void error_reply(struct server *s, struct conn *c,
			struct evhttp_request *req, int status,
			const char *code, const char *msg,
			struct answer_info *ai)
{
	struct evbuffer *b = evbuffer_new();
	if (!b) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evbuffer_add_printf(b, "{\"code\":\"%s\",\"message\":\"", code);
	json_escape(b, msg, strlen(msg));
	evbuffer_add(b, "\"}\n", 3);
	ai->code = code;
	send_body(s, c, req, status, "application/json", b, ai);
	evbuffer_free(b);
}


/* ---- request handling ---------------------------------------------------------------- */

struct ctx {
	struct worker *w;
	struct server *s;
	struct conn *c;
	struct evhttp_request *req;
	struct answer_info ai;
	const char *method;
	const char *uri;
	struct match m;
	const char *body;
	size_t body_len;
	char key_id[HT_REQSIG_KEY_ID_BYTES_MAX + 1];
	char role_name[16];
};

static void fail(struct ctx *x, int status, const char *code,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void fail(struct ctx *x, int status, const char *code,
		 const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	error_reply(x->s, x->c, x->req, status, code, msg, &x->ai);
}

/* The certificate of the connection, looked at once. */
static void check_certificate(struct server *s, struct evhttp_request *req,
			      struct conn *c)
{
	c->checked = true;
	struct evhttp_connection *evc = evhttp_request_get_connection(req);
	char *addr = NULL;
	ev_uint16_t port = 0;
	if (evc) {
		evhttp_connection_get_peer(evc, &addr, &port);
		snprintf(c->remote, sizeof c->remote, "%s:%u",
			 addr ? addr : "?", (unsigned)port);
	}
	struct bufferevent *bev = evc ? evhttp_connection_get_bufferevent(evc)
				      : NULL;
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	if (!peer) {
		c->no_cert = true;
		return;
	}
	enum ht_pki_result res = HT_PKI_REJECTED;
	if (ht_pki_verify_client_x509(s->ca, peer, HT_PKI_AT_NOW, &res, &c->id)
	    == HT_OK && res == HT_PKI_OK) {
		c->cert_ok = true;
		return;
	}
	c->pki = res;
}

static bool digits_u64(const char *v, uint64_t *out)
{
	if (!v || !*v || strlen(v) > 20)
		return false;
	for (const char *p = v; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return ht_u64_parse(v, strlen(v), out) == HT_OK;
}

/* Query parameters: each known to the route, at most once. */
static bool parse_query(struct ctx *x, struct evkeyvalq *q)
{
	TAILQ_INIT(q);
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(x->req);
	const char *qs = u ? evhttp_uri_get_query(u) : NULL;
	if (!qs || !*qs)
		return true;
	if (evhttp_parse_query_str(qs, q)) {
		fail(x, 400, "invalid_request", "query string cannot be parsed");
		return false;
	}
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, q, next) {
		bool known = false;
		for (size_t i = 0; x->m.route->query[i] && !known; i++)
			known = !strcmp(kv->key, x->m.route->query[i]);
		if (!known) {
			fail(x, 400, "invalid_request",
			     "unknown query parameter '%.64s'", kv->key);
			return false;
		}
		for (struct evkeyval *o = TAILQ_FIRST(q); o != kv;
		     o = TAILQ_NEXT(o, next))
			if (!strcmp(o->key, kv->key)) {
				fail(x, 400, "invalid_request",
				     "query parameter '%s' given twice", kv->key);
				return false;
			}
	}
	return true;
}

static bool id_param(struct ctx *x, ht_u128 *id)
{
	char buf[48];
	if (x->m.param_len == 0 || x->m.param_len >= sizeof buf) {
		fail(x, 400, "invalid_request", "id: not a decimal u128");
		return false;
	}
	memcpy(buf, x->m.param, x->m.param_len);
	buf[x->m.param_len] = '\0';
	for (size_t i = 0; i < x->m.param_len; i++)
		if (buf[i] < '0' || buf[i] > '9') {
			fail(x, 400, "invalid_request", "id: not a decimal u128");
			return false;
		}
	if (ht_u128_parse(buf, x->m.param_len, id)) {
		fail(x, 400, "invalid_request", "id: not a decimal u128");
		return false;
	}
	return true;
}

static struct job *job_new(struct ctx *x, enum job_kind kind)
{
	struct job *j = calloc(1, sizeof *j);
	if (!j) {
		fail(x, 500, "internal", "out of memory");
		return NULL;
	}
	j->kind = kind;
	j->route = x->m.route->id;
	j->w = x->w;
	j->conn = x->c;
	j->req = x->req;
	j->t_start_ns = x->ai.t_start_ns;
	j->body_bytes = x->body_len;
	snprintf(j->method, sizeof j->method, "%s", x->method);
	snprintf(j->path, sizeof j->path, "%.*s",
		 (int)(sizeof j->path - 1), x->uri ? x->uri : "");
	snprintf(j->who, sizeof j->who, "%s", x->c->id.id);
	j->role = x->c->id.role;
	snprintf(j->key_id, sizeof j->key_id, "%s", x->key_id);
	j->all_access = j->role == HT_PKI_ROLE_OPERATOR ||
			j->role == HT_PKI_ROLE_REGULATOR;
	return j;
}

/* The connection is being freed (peer gone, timeout, shutdown): a job
 * in flight must not answer into it. */
static void on_conn_close(struct evhttp_connection *evc, void *arg)
{
	(void)evc;
	struct conn *c = arg;
	if (c->job) {
		c->job->req = NULL;
		c->job->conn = NULL;
		c->job = NULL;
	}
}

static void submit(struct ctx *x, struct job *j)
{
	enum ht_err err = hubq_submit(x->s, j);
	if (err == HT_ERR_LIMIT) {
		atomic_fetch_add(&x->s->m.overloaded, 1);
		job_free(j);
		fail(x, 503, "overloaded",
		     "the commit queue is full; retry after a second");
		return;
	}
	if (err) {
		job_free(j);
		fail(x, 503, "shutting_down", "the hub is stopping");
		return;
	}
	x->c->job = j;
	x->w->in_flight++;
	struct evhttp_connection *evc = evhttp_request_get_connection(x->req);
	if (evc)
		evhttp_connection_set_closecb(evc, on_conn_close, x->c);
}

static void parse_and_submit(struct ctx *x, enum ht_op op, enum job_kind kind)
{
	struct job *j = job_new(x, kind);
	if (!j)
		return;
	char err[256];
	enum ht_jsonl_problem problem = HT_JSONL_BAD_REQUEST;
	enum ht_err e = ht_jsonl_parse_body(x->body, x->body_len, op, &j->r,
					    err, sizeof err, &problem);
	if (e) {
		job_free(j);
		if (e == HT_ERR_NOMEM)
			fail(x, 500, "internal", "out of memory");
		else if (problem == HT_JSONL_TOO_MANY)
			fail(x, 413, "too_many_events", "%s (the limit is %u)",
			     err, HT_BATCH_EVENTS_MAX);
		else if (problem == HT_JSONL_TOO_LARGE)
			fail(x, 413, "payload_too_large", "%s", err);
		else if (problem == HT_JSONL_MALFORMED)
			fail(x, 400, "malformed_json", "%s", err);
		else
			fail(x, 400, "invalid_request", "%s", err);
		return;
	}
	submit(x, j);
}

/* GET /v1/accounts/{id}/transfers|balances: the query becomes the JSONL
 * request `ledger apply` would parse, so both mean exactly the same. The
 * values are checked to be digits or true/false before they are used. */
static void query_submit(struct ctx *x, enum ht_op op, enum job_kind kind)
{
	ht_u128 id;
	if (!id_param(x, &id))
		return;
	struct evkeyvalq q;
	if (!parse_query(x, &q))
		goto out;
	char line[512];
	char ids[HT_U128_DEC_SIZE];
	int n = snprintf(line, sizeof line, "{\"op\":\"%s\",\"account_id\":\"%s\"",
			 ht_op_name(op), ht_u128_format(id, ids));
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, &q, next) {
		uint64_t v;
		if (!strcmp(kv->key, "debits") || !strcmp(kv->key, "credits") ||
		    !strcmp(kv->key, "reversed")) {
			if (strcmp(kv->value, "true") && strcmp(kv->value, "false")) {
				fail(x, 400, "invalid_request",
				     "%s: true or false", kv->key);
				goto out;
			}
			n += snprintf(line + n, sizeof line - (size_t)n,
				      ",\"%s\":%s", kv->key, kv->value);
		} else {
			if (!digits_u64(kv->value, &v)) {
				fail(x, 400, "invalid_request",
				     "%s: not a decimal u64", kv->key);
				goto out;
			}
			if (!strcmp(kv->key, "limit")) {
				n += snprintf(line + n, sizeof line - (size_t)n,
					      ",\"limit\":%llu",
					      (unsigned long long)v);
			} else {
				n += snprintf(line + n, sizeof line - (size_t)n,
					      ",\"%s\":\"%llu\"", kv->key,
					      (unsigned long long)v);
			}
		}
	}
	/* no limit given: the JSONL default, as `ledger apply` */
	snprintf(line + n, sizeof line - (size_t)n, "}");
	struct job *j = job_new(x, kind);
	if (!j)
		goto out;
	char err[256];
	if (ht_jsonl_parse(line, strlen(line), &j->r, err, sizeof err)) {
		job_free(j);
		fail(x, 400, "invalid_request", "%s", err);
		goto out;
	}
	submit(x, j);
out:
	evhttp_clear_headers(&q);
}

/* POST /v1/risk/reviews/{id}/approve|reject with {"id":"<new id>"}: the
 * post (approve) or void (reject) of held transfer {id}, as a create of
 * one transfer, answered like one (results and receipt). */
static void review_submit(struct ctx *x, bool approve)
{
	ht_u128 pending, id;
	if (!id_param(x, &pending))
		return;
	json_error_t je;
	json_t *v = json_loadb(x->body, x->body_len, JSON_REJECT_DUPLICATES, &je);
	const json_t *jid = v ? json_object_get(v, "id") : NULL;
	bool ok = json_is_object(v) && json_object_size(v) == 1 &&
		  json_is_string(jid) && json_string_length(jid) > 0 &&
		  json_string_length(jid) <= 39;
	for (size_t i = 0; ok && i < json_string_length(jid); i++)
		ok = json_string_value(jid)[i] >= '0' &&
		     json_string_value(jid)[i] <= '9';
	ok = ok && !ht_u128_parse(json_string_value(jid),
				  json_string_length(jid), &id);
	json_decref(v);
	if (!v)
		return fail(x, 400, "malformed_json", "invalid JSON: %s (byte %d)",
			    je.text, je.position);
	if (!ok)
		return fail(x, 400, "invalid_request",
			    "body: want {\"id\":\"<new transfer id>\"}, the"
			    " id of the %s transfer (a decimal u128 string)",
			    approve ? "post" : "void");
	struct job *j = job_new(x, JOB_CREATE_TRANSFERS);
	if (!j)
		return;
	j->r.op = HT_OP_CREATE_TRANSFERS;
	j->r.transfers = calloc(1, sizeof *j->r.transfers);
	if (!j->r.transfers) {
		job_free(j);
		return fail(x, 500, "internal", "out of memory");
	}
	j->r.count = 1;
	j->r.transfers[0].id = id;
	j->r.transfers[0].pending_id = pending;
	j->r.transfers[0].flags = approve ? HT_TRANSFER_POST_PENDING
					  : HT_TRANSFER_VOID_PENDING;
	j->review_route = true;
	submit(x, j);
}

/* One block-list entry of a body: {"kind":…, "hash":"<64 hex>" or
 * "account_id":"<id>" (kind account only), "reason":"…"?}; with
 * for_remove only kind and hash. NULL when fine, else what is wrong. */
static const char *block_entry(const json_t *v, bool for_remove,
			       struct job_block *out)
{
	if (!json_is_object(v))
		return "not an object";
	const char *key;
	json_t *m;
	json_object_foreach((json_t *)v, key, m) {
		if (strcmp(key, "kind") && strcmp(key, "hash") &&
		    (for_remove || (strcmp(key, "account_id") &&
				    strcmp(key, "reason"))))
			return "an unknown member (kind, hash, account_id,"
			       " reason)";
	}
	const json_t *kind = json_object_get(v, "kind");
	const json_t *hash = json_object_get(v, "hash");
	const json_t *acct = json_object_get(v, "account_id");
	const json_t *why = json_object_get(v, "reason");
	enum ht_block_kind k;
	if (!json_is_string(kind) ||
	    ht_block_kind_parse(json_string_value(kind),
				json_string_length(kind), &k))
		return "kind: account, device or phone";
	out->kind = (uint8_t)k;
	if (!hash == !acct)
		return for_remove ? "hash: the entry's 64 hex digits"
				  : "give one of hash (64 hex digits) and"
				    " account_id";
	if (hash) {
		size_t got = 0;
		if (!json_is_string(hash) ||
		    json_string_length(hash) != 2 * HT_BLOCK_HASH_BYTES ||
		    ht_hex_decode(json_string_value(hash), json_string_length(hash),
				  out->hash, HT_BLOCK_HASH_BYTES, &got) ||
		    got != HT_BLOCK_HASH_BYTES)
			return "hash: 64 hex digits (HMAC-SM3 under the hub's"
			       " block-list key)";
	} else {
		const char *a = json_is_string(acct) ? json_string_value(acct)
						     : NULL;
		size_t n = a ? json_string_length(acct) : 0;
		bool digits = n > 0 && n <= 39;
		for (size_t i = 0; digits && i < n; i++)
			digits = a[i] >= '0' && a[i] <= '9';
		if (!digits || ht_u128_parse(a, n, &out->account_id))
			return "account_id: a decimal u128 string";
		if (k != HT_BLOCK_ACCOUNT)
			return "account_id: only with kind account";
		out->by_account = true;
	}
	if (why) {
		const char *r = json_is_string(why) ? json_string_value(why)
						    : NULL;
		size_t n = r ? json_string_length(why) : 0;
		bool ok = r && n <= HT_BLOCK_REASON_BYTES_MAX;
		for (size_t i = 0; ok && i < n; i++)
			ok = (unsigned char)r[i] >= 0x20 && r[i] != 0x7f;
		if (!ok)
			return "reason: at most 64 bytes, no control"
			       " characters";
		memcpy(out->reason, r, n + 1);
	}
	return NULL;
}

/* POST /v1/risk/blocklist {"entries":[…]} and
 * POST /v1/risk/blocklist/remove {"kind":…,"hash":…}: checked here, on the
 * worker; stored by the hub thread (riskflow_block_add / _remove). */
static void block_submit(struct ctx *x, bool remove)
{
	if (!x->s->o.risk.on)
		return fail(x, 404, "not_found",
			    "risk control is off: no block list (serve --risk)");
	json_error_t je;
	json_t *v = json_loadb(x->body, x->body_len, JSON_REJECT_DUPLICATES, &je);
	if (!v)
		return fail(x, 400, "malformed_json", "invalid JSON: %s (byte %d)",
			    je.text, je.position);
	const json_t *list = remove ? NULL : json_object_get(v, "entries");
	size_t n = remove ? 1 : json_array_size(list);
	if (!remove && (!json_is_object(v) || json_object_size(v) != 1 ||
			!json_is_array(list) || n == 0)) {
		json_decref(v);
		return fail(x, 400, "invalid_request",
			    "body: want {\"entries\":[{\"kind\":…,\"hash\":…"
			    "|\"account_id\":…,\"reason\":…},…]}");
	}
	if (n > HT_SERVER_BLOCK_ENTRIES_MAX) {
		json_decref(v);
		return fail(x, 413, "too_many_events",
			    "%zu entries; at most %u a request", n,
			    HT_SERVER_BLOCK_ENTRIES_MAX);
	}
	struct job *j = job_new(x, remove ? JOB_BLOCK_REMOVE : JOB_BLOCK_ADD);
	if (!j) {
		json_decref(v);
		return;
	}
	j->block = calloc(n, sizeof *j->block);
	j->block_n = n;
	if (!j->block) {
		json_decref(v);
		job_free(j);
		return fail(x, 500, "internal", "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		const char *why = block_entry(remove ? v : json_array_get(list, i),
					      remove, &j->block[i]);
		if (why) {
			json_decref(v);
			job_free(j);
			if (remove)
				return fail(x, 400, "invalid_request", "%s", why);
			return fail(x, 400, "invalid_request", "entries[%zu]: %s",
				    i, why);
		}
	}
	json_decref(v);
	submit(x, j);
}

static void answer_json(struct ctx *x, int status, struct evbuffer *b);

/* A payments or liquidity route: read and resolved here (payments.c),
 * decided on the hub thread. */
static void payments_submit(struct ctx *x)
{
	struct evkeyvalq q;
	if (!parse_query(x, &q)) {
		evhttp_clear_headers(&q);
		return;
	}
	struct job *j = job_new(x, JOB_PAY_GET);
	int status = 0;
	const char *code = NULL;
	char msg[256];
	if (j && !payments_parse(x->s, j, x->body, x->body_len, x->m.param,
				 x->m.param_len, evhttp_find_header(&q, "limit"),
				 evhttp_find_header(&q, "currency"),
				 evhttp_find_header(&q, "wait_ms"),
				 evhttp_find_header(&q, "format"), &status,
				 &code, msg, sizeof msg)) {
		job_free(j);
		fail(x, status, code, "%s", msg);
	} else if (j) {
		submit(x, j);
	}
	evhttp_clear_headers(&q);
}

/* An alias or token route: handled here, on the worker (switchapi.c). */
static void do_switch(struct ctx *x)
{
	struct sw_request q = {x->m.route->id, x->c->id.id, x->c->id.role,
			       x->m.param, x->m.param_len, x->body, x->body_len};
	struct sw_answer a = {0};
	switchapi_handle(x->s, &q, &a);
	if (a.code) {
		fail(x, a.status, a.code, "%s", a.message);
	} else {
		struct evbuffer *b = evbuffer_new();
		if (!b || evbuffer_add(b, a.body.data, a.body.len))
			fail(x, 500, "internal", "out of memory");
		else
			answer_json(x, a.status, b);
		if (b)
			evbuffer_free(b);
	}
	/* a detokenised number must not linger in freed memory */
	if (a.body.data)
		memset(a.body.data, 0, a.body.cap);
	ht_buf_free(&a.body);
}

/* A rule file refused: 400 with every error's line and column. */
static void rules_refused(struct ctx *x, const struct ht_rules_diag *d,
			  enum ht_err err)
{
	struct evbuffer *b = evbuffer_new();
	if (!b)
		return fail(x, 500, "internal", "out of memory");
	char first[HT_RULES_MESSAGE_BYTES + 32] = "";
	if (d->count)
		snprintf(first, sizeof first, "; the first at %u:%u: %s",
			 d->errors[0].line, d->errors[0].column,
			 d->errors[0].message);
	char msg[HT_RULES_MESSAGE_BYTES + 128];
	snprintf(msg, sizeof msg, "rules: %zu error%s%s (the rules in force"
		 " stay)%s", d->count, d->count == 1 ? "" : "s",
		 d->truncated ? " and more" : "",
		 d->count ? first : err == HT_ERR_LIMIT ? ": over a limit" : "");
	evbuffer_add_printf(b, "{\"code\":\"invalid_request\",\"message\":\"");
	json_escape(b, msg, strlen(msg));
	evbuffer_add_printf(b, "\",\"errors\":[");
	for (size_t i = 0; i < d->count; i++) {
		const struct ht_rules_error *e = &d->errors[i];
		evbuffer_add_printf(b, "%s{\"line\":%u,\"column\":%u,"
				       "\"message\":\"", i ? "," : "", e->line,
				    e->column);
		json_escape(b, e->message, strlen(e->message));
		evbuffer_add(b, "\"}", 2);
	}
	evbuffer_add(b, "]}\n", 3);
	x->ai.code = "invalid_request";
	send_body(x->s, x->c, x->req, 400, "application/json", b, &x->ai);
	evbuffer_free(b);
}

/* POST /v1/risk/rules: the body is a rule file (docs/risk-rules.md),
 * parsed against the feature catalogue here, on the worker thread, and
 * put in force only when it has no error (ht_rules_holder_reload: the hub
 * thread's next decision takes it; none waits). */
static void do_risk_rules(struct ctx *x)
{
	struct ht_rules_holder *h = riskflow_rules(x->s);
	if (!h)
		return fail(x, 404, "not_found",
			    "risk control is off (serve --risk)");
	if (x->body_len > HT_RULES_FILE_BYTES_MAX)
		return fail(x, 413, "payload_too_large",
			    "a rule file of %zu bytes; the limit is %u",
			    x->body_len, HT_RULES_FILE_BYTES_MAX);
	struct ht_rules_diag diag;
	enum ht_err err = ht_rules_holder_reload(h, x->body, x->body_len,
						 ht_risk_rule_schema(), &diag);
	atomic_fetch_add(&x->s->m.risk_reloads[err ? 1 : 0], 1);
	if (err == HT_ERR_NOMEM)
		return fail(x, 500, "internal", "out of memory");
	if (err)
		return rules_refused(x, &diag, err);
	struct ht_ruleset *rs = ht_rules_holder_acquire(h);
	struct evbuffer *b = evbuffer_new();
	if (!b) {
		ht_rules_release(rs);
		return fail(x, 500, "internal", "out of memory");
	}
	evbuffer_add_printf(b, "{\"rules_version\":%u,\"rules\":%zu,"
			       "\"shadow\":%zu,\"sections\":%zu}\n",
			    rs ? ht_rules_version(rs) : 0,
			    rs ? ht_rules_count(rs) : 0,
			    rs ? ht_rules_shadow_count(rs) : 0,
			    rs ? ht_rules_section_count(rs) : 0);
	if (!x->s->o.quiet)
		fprintf(stderr, "huitong serve: risk rules version %u in force"
				" (%zu rules), posted by %s\n",
			rs ? ht_rules_version(rs) : 0, rs ? ht_rules_count(rs) : 0,
			x->c->id.id);
	ht_rules_release(rs);
	answer_json(x, 200, b);
	evbuffer_free(b);
}

static void answer_json(struct ctx *x, int status, struct evbuffer *b)
{
	x->ai.code = "ok";
	send_body(x->s, x->c, x->req, status, "application/json", b, &x->ai);
}

static void do_journal_key(struct ctx *x)
{
	struct evbuffer *b = evbuffer_new();
	if (!b)
		return fail(x, 500, "internal", "out of memory");
	evbuffer_add_printf(b, "{\"sign\":\"%s\",\"public_key\":\"",
			    ht_sign_alg_name(x->s->journal_sign));
	json_escape(b, x->s->journal_pub_pem, strlen(x->s->journal_pub_pem));
	evbuffer_add(b, "\"}\n", 3);
	answer_json(x, 200, b);
	evbuffer_free(b);
}

static void do_healthz(struct ctx *x)
{
	struct evbuffer *b = evbuffer_new();
	if (!b)
		return fail(x, 500, "internal", "out of memory");
	evbuffer_add_printf(b,
			    "{\"status\":\"ok\",\"tree_size\":%llu,"
			    "\"queue_depth\":%llu}\n",
			    (unsigned long long)atomic_load(&x->s->tree_size),
			    (unsigned long long)atomic_load(&x->s->queue_depth));
	answer_json(x, 200, b);
	evbuffer_free(b);
}

static void do_metrics(struct ctx *x)
{
	struct ht_buf buf = {0};
	if (metrics_render(x->s, &buf)) {
		ht_buf_free(&buf);
		return fail(x, 500, "internal", "out of memory");
	}
	struct evbuffer *b = evbuffer_new();
	if (!b) {
		ht_buf_free(&buf);
		return fail(x, 500, "internal", "out of memory");
	}
	evbuffer_add(b, buf.data, buf.len);
	ht_buf_free(&buf);
	x->ai.code = "ok";
	send_body(x->s, x->c, x->req, 200, "text/plain; version=0.0.4", b,
		  &x->ai);
	evbuffer_free(b);
}

#define STATIC_NAME_MAX 128
#define STATIC_FILE_MAX (16u * 1024 * 1024)

static const char *content_type_of(const char *name)
{
	static const struct { const char *ext, *type; } types[] = {
		{".html", "text/html; charset=utf-8"},
		{".js", "text/javascript; charset=utf-8"},
		{".css", "text/css; charset=utf-8"},
		{".json", "application/json"},
		{".yaml", "application/yaml"},
		{".svg", "image/svg+xml"},
		{".png", "image/png"},
		{".txt", "text/plain; charset=utf-8"},
	};
	const char *dot = strrchr(name, '.');
	for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
		if (!strcmp(dot, types[i].ext))
			return types[i].type;
	return "application/octet-stream";
}

/* /static/{name}: one plain file name of [A-Za-z0-9._-], not starting with
 * a dot, opened without following links; nothing else is reachable. */
static void do_static(struct ctx *x)
{
	if (!x->s->o.static_dir)
		return fail(x, 404, "not_found", "no static files are served");
	char name[STATIC_NAME_MAX + 1];
	if (x->m.param_len == 0 || x->m.param_len > STATIC_NAME_MAX ||
	    x->m.param[0] == '.')
		return fail(x, 404, "not_found", "no such file");
	for (size_t i = 0; i < x->m.param_len; i++) {
		char ch = x->m.param[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		      ch == '-'))
			return fail(x, 404, "not_found", "no such file");
		name[i] = ch;
	}
	name[x->m.param_len] = '\0';
	int dfd = open(x->s->o.static_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* O_NONBLOCK: a FIFO or device must not block the worker; fstat
	 * then refuses anything that is not a regular file */
	int fd = dfd < 0 ? -1
			 : openat(dfd, name,
				  O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (dfd >= 0)
		close(dfd);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    st.st_size > STATIC_FILE_MAX) {
		if (fd >= 0)
			close(fd);
		return fail(x, 404, "not_found", "no such file");
	}
	struct evbuffer *b = evbuffer_new();
	if (!b || evbuffer_add_file(b, fd, 0, st.st_size)) {
		if (b)
			evbuffer_free(b);
		else
			close(fd);
		return fail(x, 500, "internal", "cannot read the file");
	}
	x->ai.code = "ok";
	send_body(x->s, x->c, x->req, 200, content_type_of(name), b, &x->ai);
	evbuffer_free(b);
}

static void dispatch(struct ctx *x)
{
	struct job *j;
	struct evkeyvalq q;
	uint64_t v;
	switch (x->m.route->id) {
	case R_ACCOUNTS_CREATE:
		return parse_and_submit(x, HT_OP_CREATE_ACCOUNTS,
					JOB_CREATE_ACCOUNTS);
	case R_TRANSFERS_CREATE:
		return parse_and_submit(x, HT_OP_CREATE_TRANSFERS,
					JOB_CREATE_TRANSFERS);
	case R_ACCOUNTS_LOOKUP:
		return parse_and_submit(x, HT_OP_LOOKUP_ACCOUNTS,
					JOB_LOOKUP_ACCOUNTS);
	case R_TRANSFERS_LOOKUP:
		return parse_and_submit(x, HT_OP_LOOKUP_TRANSFERS,
					JOB_LOOKUP_TRANSFERS);
	case R_ACCOUNT_TRANSFERS:
		return query_submit(x, HT_OP_GET_ACCOUNT_TRANSFERS,
				    JOB_QUERY_TRANSFERS);
	case R_ACCOUNT_BALANCES:
		return query_submit(x, HT_OP_GET_ACCOUNT_BALANCES,
				    JOB_QUERY_BALANCES);
	case R_JOURNAL_KEY:
		return do_journal_key(x);
	case R_HEALTHZ:
		return do_healthz(x);
	case R_METRICS:
		return do_metrics(x);
	case R_STATIC:
		return do_static(x);
	case R_RISK_APPROVE:
	case R_RISK_REJECT:
		return review_submit(x, x->m.route->id == R_RISK_APPROVE);
	case R_RISK_RULES:
		return do_risk_rules(x);
	case R_BLOCK_ADD:
	case R_BLOCK_REMOVE:
		return block_submit(x, x->m.route->id == R_BLOCK_REMOVE);
	case R_ALIAS_REGISTER:
	case R_ALIAS_LOOKUP:
	case R_ALIAS_UPDATE:
	case R_ALIAS_REMOVE:
	case R_TOKEN_ISSUE:
	case R_TOKEN_GET:
	case R_TOKEN_DETOKENIZE:
	case R_TOKEN_SUSPEND:
	case R_TOKEN_RESUME:
	case R_TOKEN_DELETE:
		return do_switch(x);
	case R_PAYMENTS_CREATE:
	case R_PAYMENTS_INBOX:
	case R_PAYMENTS_DECIDE:
	case R_PAYMENT_GET:
	case R_PAYMENT_ACCEPT:
	case R_PAYMENT_REJECT:
	case R_LIQUIDITY:
	case R_LIQUIDITY_GET:
	case R_SETTLE_CLOSE:
	case R_SETTLE_GET:
	case R_SETTLE_SETTLE:
	case R_ISO_PACS008:
		return payments_submit(x);
	default:
		break;
	}
	/* the rest: a path parameter and/or a small query */
	if (!parse_query(x, &q))
		return evhttp_clear_headers(&q);
	ht_u128 id = 0;
	switch (x->m.route->id) {
	case R_ACCOUNT_GET:
	case R_TRANSFER_GET:
	case R_TRANSFER_RECEIPT:
	case R_TRANSFER_RISK:
		if (!id_param(x, &id))
			goto out;
		j = job_new(x, x->m.route->id == R_ACCOUNT_GET ? JOB_GET_ACCOUNT
			       : x->m.route->id == R_TRANSFER_GET ? JOB_GET_TRANSFER
			       : x->m.route->id == R_TRANSFER_RISK ? JOB_RISK_GET
								 : JOB_RECEIPT);
		if (!j)
			goto out;
		j->id = id;
		if (x->m.route->id == R_TRANSFER_RECEIPT) {
			const char *ts = evhttp_find_header(&q, "tree_size");
			if (ts && (!digits_u64(ts, &v) || v == 0)) {
				job_free(j);
				fail(x, 400, "invalid_request",
				     "tree_size: a positive decimal u64");
				goto out;
			}
			j->a = ts ? v : 0;
		}
		submit(x, j);
		break;
	case R_JOURNAL_HEAD:
		if ((j = job_new(x, JOB_HEAD)))
			submit(x, j);
		break;
	case R_BLOCK_LIST: {
		const char *lim = evhttp_find_header(&q, "limit");
		if (lim && (!digits_u64(lim, &v) || v == 0 ||
			    v > HT_BLOCKLIST_ENTRIES_MAX)) {
			fail(x, 400, "invalid_request", "limit: 1..%u",
			     HT_BLOCKLIST_ENTRIES_MAX);
			goto out;
		}
		if ((j = job_new(x, JOB_BLOCK_LIST))) {
			j->a = lim ? v : HT_SERVER_BLOCK_LIST_DEFAULT;
			submit(x, j);
		}
		break;
	}
	case R_RISK_REVIEWS: {
		const char *lim = evhttp_find_header(&q, "limit");
		if (lim && (!digits_u64(lim, &v) || v == 0 ||
			    v > HT_QUERY_LIMIT_MAX)) {
			fail(x, 400, "invalid_request", "limit: 1..%d",
			     HT_QUERY_LIMIT_MAX);
			goto out;
		}
		if ((j = job_new(x, JOB_RISK_REVIEWS))) {
			j->a = lim ? v : HT_SERVER_RISK_REVIEWS_DEFAULT;
			submit(x, j);
		}
		break;
	}
	case R_JOURNAL_HEAD_AT: {
		char buf[24];
		if (x->m.param_len >= sizeof buf) {
			fail(x, 400, "invalid_request", "seq: not a decimal u64");
			goto out;
		}
		memcpy(buf, x->m.param, x->m.param_len);
		buf[x->m.param_len] = '\0';
		if (!digits_u64(buf, &v)) {
			fail(x, 400, "invalid_request", "seq: not a decimal u64");
			goto out;
		}
		if ((j = job_new(x, JOB_HEAD_AT))) {
			j->a = v;
			submit(x, j);
		}
		break;
	}
	case R_JOURNAL_CONSISTENCY: {
		const char *o = evhttp_find_header(&q, "old");
		const char *n = evhttp_find_header(&q, "new");
		uint64_t ov, nv;
		if (!digits_u64(o, &ov) || !digits_u64(n, &nv) || ov > nv) {
			fail(x, 400, "invalid_request",
			     "old and new: tree sizes, old <= new");
			goto out;
		}
		if ((j = job_new(x, JOB_CONSISTENCY))) {
			j->a = ov;
			j->b = nv;
			submit(x, j);
		}
		break;
	}
	default:
		fail(x, 500, "internal", "route without a handler");
	}
out:
	evhttp_clear_headers(&q);
}

void http_handle(struct evhttp_request *req, void *arg)
{
	struct worker *w = arg;
	struct server *s = w->s;
	struct ctx x = {.w = w, .s = s, .req = req};
	x.ai.t_start_ns = srv_now_ns();
	x.ai.route = R_NONE;
	x.c = http_conn_of(s, req);
	if (!x.c) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	x.c->requests++;
	if (!x.c->checked)
		check_certificate(s, req, x.c);
	x.method = method_name(evhttp_request_get_command(req));
	x.uri = evhttp_request_get_uri(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	x.body_len = evbuffer_get_length(in);
	x.ai.body_bytes = x.body_len;

	/* who */
	if (x.c->no_cert)
		return fail(&x, 401, "unauthenticated",
			    "a client certificate issued by the hub is required"
			    " (huitong participant add)");
	if (!x.c->cert_ok)
		return fail(&x, 401, "unauthenticated",
			    "client certificate refused: %s",
			    ht_pki_result_name(x.c->pki));
	x.ai.who = x.c->id.id;
	x.ai.serial = x.c->id.serial_hex;
	snprintf(x.role_name, sizeof x.role_name, "%s",
		 ht_pki_role_name(x.c->id.role));
	x.ai.role_id = x.c->id.role;
	int status;
	const char *code;
	char msg[256];
	if (!auth_certificate(s, &x.c->id, &status, &code, msg, sizeof msg))
		return fail(&x, status, code, "%s", msg);

	/* what */
	if (!x.uri || strlen(x.uri) > HT_REQSIG_PATH_BYTES_MAX)
		return fail(&x, 400, "bad_request", "request target too long");
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u ? evhttp_uri_get_path(u) : NULL;
	if (!path || !*path)
		return fail(&x, 400, "bad_request", "no path");
	int r = route_find(x.method, path, &x.m);
	if (r == 404)
		return fail(&x, 404, "not_found", "no route %s %.200s",
			    x.method, path);
	if (r == 405)
		return fail(&x, 405, "method_not_allowed",
			    "%s is not allowed on %.200s", x.method, path);
	x.ai.route = x.m.route->id;
	const char *qs = evhttp_uri_get_query(u);
	if (qs && *qs && !x.m.route->query[0])
		return fail(&x, 400, "invalid_request",
			    "%s %s takes no query parameters", x.method,
			    x.m.route->path);
	if (x.body_len > HT_JSONL_LINE_BYTES_MAX)
		return fail(&x, 413, "payload_too_large",
			    "body of %zu bytes; the limit is %u", x.body_len,
			    HT_JSONL_LINE_BYTES_MAX);
	if (x.body_len && !strcmp(x.method, "GET"))
		return fail(&x, 400, "bad_request", "a GET takes no body");
	x.body = x.body_len ? (const char *)evbuffer_pullup(in, -1) : "";
	if (!x.body)
		return fail(&x, 500, "internal", "out of memory");

	/* signed? */
	const char *sig = evhttp_find_header(evhttp_request_get_input_headers(req),
					     HT_REQSIG_HEADER_NAME);
	if (!sig && x.m.route->sig_required)
		return fail(&x, 401, "missing_signature",
			    "%s %s needs a " HT_REQSIG_HEADER_NAME " header",
			    x.method, x.m.route->path);
	if (sig) {
		x.ai.key_id = x.key_id; /* the claimed key, refused or not */
		if (!auth_signature(s, &x.c->id, sig, x.method, x.uri, x.body,
				    x.body_len, x.key_id, &status, &code, msg,
				    sizeof msg))
			return fail(&x, status, code, "%s", msg);
	}

	/* may they? */
	if (!(x.m.route->roles & (1u << x.c->id.role)))
		return fail(&x, 403, "forbidden", "the %s role may not %s %s",
			    x.role_name, x.method, x.m.route->path);
	if (atomic_load(&s->stopping))
		return fail(&x, 503, "shutting_down", "the hub is stopping");
	dispatch(&x);
}

/* ---- answers from the hub thread ------------------------------------------------------- */

static void hash_append(struct evbuffer *b, const uint8_t h[HT_HASH_BYTES])
{
	char hex[2 * HT_HASH_BYTES + 1];
	ht_hex_encode(h, HT_HASH_BYTES, hex);
	evbuffer_add(b, hex, 2 * HT_HASH_BYTES);
}

/* Decimal of v into p (at least 20 bytes); returns the end. */
static char *u64_put(char *p, uint64_t v)
{
	char t[20];
	size_t n = 0;
	do
		t[n++] = (char)('0' + v % 10);
	while (v /= 10);
	while (n)
		*p++ = t[--n];
	return p;
}

static char *str_put(char *p, const char *s)
{
	size_t n = strlen(s);
	memcpy(p, s, n);
	return p + n;
}

/* A scored event's decision, after the result's other members:
 * ,"risk":{"decision":"review","score":0.734211,"reasons":["…",…]} */
static void risk_put(struct evbuffer *b, const struct job *j,
		     const struct job_risk *jr)
{
	const char *name = ht_decision_name((enum ht_decision)jr->decision);
	HT_ASSERT(name != NULL);
	evbuffer_add_printf(b, ",\"risk\":{\"decision\":\"%s\",\"score\":%.6f,"
			       "\"reasons\":[", name, jr->score);
	const char *r = jr->reason_count
				? j->risk_reasons.data + jr->reasons_off : NULL;
	for (size_t k = 0; k < jr->reason_count; k++) {
		size_t len = strlen(r);
		evbuffer_add(b, k ? ",\"" : "\"", k ? 2 : 1);
		json_escape(b, r, len);
		evbuffer_add(b, "\"", 1);
		r += len + 1;
	}
	evbuffer_add(b, "]}", 2);
}

/* One result: {"index":i,"id":"…","result":"…"[,"leaf":L,"ts":T
 * [,"data":"hex"]]}. A leaf's data is sent only when the stored event
 * differs from the one the request implies (ht_event_implied): the client
 * rebuilds every other leaf from its own request (docs/api.md). */
static void result_put(struct evbuffer *b, const struct job *j, size_t i)
{
	/* the fixed parts, the id, the result name and one leaf in hex */
	char buf[160 + HT_U128_DEC_SIZE + 2 * HT_LEAF_BYTES_MAX];
	char *p = buf;
	bool accounts = j->r.op == HT_OP_CREATE_ACCOUNTS;
	const struct ht_account *a = accounts ? &j->r.accounts[i] : NULL;
	const struct ht_transfer *t = accounts ? NULL : &j->r.transfers[i];
	const char *res = ht_result_name(j->results[i]);
	HT_ASSERT(res != NULL && strlen(res) < 64);
	if (i)
		*p++ = ',';
	p = str_put(p, "{\"index\":");
	p = u64_put(p, i);
	p = str_put(p, ",\"id\":\"");
	p = ht_u128_format(accounts ? a->id : t->id, p);
	p += strlen(p);
	p = str_put(p, "\",\"result\":\"");
	p = str_put(p, res);
	*p++ = '"';
	if (j->leaf[i] != UINT64_MAX) {
		size_t k = (size_t)(j->leaf[i] - j->first);
		HT_ASSERT(k < j->count);
		const uint8_t *data = j->leaf_data + k * HT_LEAF_BYTES_MAX;
		size_t len = j->leaf_len[k];
		p = str_put(p, ",\"leaf\":");
		p = u64_put(p, j->leaf[i]);
		p = str_put(p, ",\"ts\":");
		p = u64_put(p, j->leaf_ts[k]);
		if (len) {
			p = str_put(p, ",\"data\":\"");
			ht_hex_encode(data, len, p);
			p += 2 * len;
			*p++ = '"';
		}
	}
	HT_ASSERT((size_t)(p - buf) < sizeof buf);
	if (j->risk && j->risk[i].scored) {
		evbuffer_add(b, buf, (size_t)(p - buf));
		risk_put(b, j, &j->risk[i]);
		p = buf;
	}
	*p++ = '}';
	evbuffer_add(b, buf, (size_t)(p - buf));
}

static void create_body(struct job *j, struct evbuffer *b)
{
	evbuffer_add_printf(b, "{\"op\":\"%s\",\"results\":[", ht_op_name(j->r.op));
	for (size_t i = 0; i < j->r.count; i++)
		result_put(b, j, i);
	char head[1024];
	ht_sth_json(&j->head, head, sizeof head);
	evbuffer_add_printf(b, "],\"receipt\":{\"head\":%s,\"first\":%llu,"
			       "\"count\":%llu,\"proof\":[",
			    head, (unsigned long long)j->first,
			    (unsigned long long)j->count);
	for (size_t k = 0; k < j->proof_n; k++) {
		evbuffer_add(b, k ? ",\"" : "\"", k ? 2 : 1);
		hash_append(b, j->proof[k]);
		evbuffer_add(b, "\"", 1);
	}
	evbuffer_add(b, "]}}\n", 4);
}

void http_complete(struct job *j)
{
	struct worker *w = j->w;
	struct server *s = w->s;
	struct answer_info ai = {.route = j->route,
				 .t_start_ns = j->t_start_ns,
				 .who = j->who,
				 .role_id = j->role,
				 .method = j->method,
				 .path = j->path,
				 .key_id = j->key_id,
				 .serial = j->conn ? j->conn->id.serial_hex : "",
				 .body_bytes = j->body_bytes};
	if (!j->req) {
		/* the client went away; the outcome stands (it is in the
		 * journal) and is logged */
		ai.code = "client_gone";
		account(s, NULL, NULL, j->status ? j->status : 500, &ai);
		job_free(j);
		return;
	}
	j->conn->job = NULL;
	if (j->code) {
		error_reply(s, j->conn, j->req, j->status, j->code, j->message,
			    &ai);
		job_free(j);
		return;
	}
	struct evbuffer *b = evbuffer_new();
	if (!b) {
		error_reply(s, j->conn, j->req, 500, "internal", "out of memory",
			    &ai);
		job_free(j);
		return;
	}
	if (j->kind == JOB_CREATE_ACCOUNTS || j->kind == JOB_CREATE_TRANSFERS) {
		create_body(j, b);
	} else if (j->kind == JOB_PAY_CREATE || j->kind == JOB_PAY_DECIDE ||
		   j->kind == JOB_ISO) {
		struct ht_buf pb = {0};
		j->status = j->kind == JOB_ISO ? payments_iso_body(j, &pb)
					       : payments_body(j, &pb);
		if (j->kind == JOB_ISO)
			j->ctype = "application/xml; charset=utf-8";
		if (j->status == 500 || evbuffer_add(b, pb.data, pb.len)) {
			ht_buf_free(&pb);
			evbuffer_free(b);
			error_reply(s, j->conn, j->req, 500, "internal",
				    "out of memory", &ai);
			job_free(j);
			return;
		}
		ht_buf_free(&pb);
	} else
		evbuffer_add(b, j->body.data, j->body.len);
	ai.code = "ok";
	send_body(s, j->conn, j->req, j->status ? j->status : 200,
		  j->ctype ? j->ctype : "application/json", b, &ai);
	evbuffer_free(b);
	job_free(j);
}

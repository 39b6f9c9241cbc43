/*
 * server.h — `huitong serve`: the hub's HTTPS API (docs/api.md).
 *
 * Owner: server. HTTP/1.1 with keep-alive over TLS 1.3 with client
 * certificates, served by libevent's evhttp on OpenSSL bufferevents from a
 * few HTTP worker threads; every ledger operation goes through ONE hub
 * thread that owns the store (single writer) and coalesces the creates of
 * all connections into one group commit, answering each request only
 * after its commit is durable. Authentication (certificates, request
 * signatures, the participant registry), roles and the access log are
 * checked on the worker threads.
 */
#ifndef HUITONG_SERVER_H
#define HUITONG_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "huitong/common.h"

/* Defaults (docs/api.md, "Limits"). */
#define HT_SERVER_LISTEN_DEFAULT "127.0.0.1:8443"
#define HT_SERVER_MAX_CONNECTIONS_DEFAULT 4096
#define HT_SERVER_MAX_CONNECTIONS_MAX 65536
#define HT_SERVER_TIMEOUT_S_DEFAULT 10
#define HT_SERVER_QUEUE_DEFAULT 4096
#define HT_SERVER_THREADS_MAX 64
/* Events waiting for the hub thread, across requests: beyond it 503. */
#define HT_SERVER_QUEUE_EVENTS_MAX (8u * 8190u)
/* Headers of one request, in all (evhttp's limit). */
#define HT_SERVER_HEADERS_BYTES_MAX (16u * 1024)
/* Bodies up to HT_JSONL_LINE_BYTES_MAX are read and, when over the API
 * limit, answered 413 in JSON; evhttp itself refuses anything longer than
 * this before reading it (413 with libevent's own page: see docs/api.md). */
#define HT_SERVER_BODY_HARD_MAX (HT_JSONL_LINE_BYTES_MAX + 1024u * 1024u)

/* Defaults of the risk engine in the payment path (docs/api.md, "Risk"). */
#define HT_SERVER_RISK_REVIEW_TIMEOUT_S_DEFAULT 86400u
/* Transfers held for review at once. A review holds money for up to its
 * timeout; an operator works through them. Beyond this many the hub
 * cannot hold one more and blocks it instead (reason
 * "review_capacity"), so memory stays bounded whatever the traffic. */
#define HT_SERVER_RISK_HELD_MAX (1u << 20)
/* Reviews listed by GET /v1/risk/reviews without a limit (at most 8190). */
#define HT_SERVER_RISK_REVIEWS_DEFAULT 100u
/* Block-list entries one POST /v1/risk/blocklist may carry, and the
 * entries GET /v1/risk/blocklist lists without a limit. */
#define HT_SERVER_BLOCK_ENTRIES_MAX 1000u
#define HT_SERVER_BLOCK_LIST_DEFAULT 1000u

/*
 * The risk engine in the payment path (`serve --risk`): every transfer
 * that moves money is scored on the hub thread before the ledger applies
 * it, and allowed, held for review (created pending) or blocked
 * (refused with risk_blocked). Off (on false): nothing of it runs.
 */
struct ht_server_risk_options {
	bool on;
	const char *model;           /* model file; NULL: rules only */
	const char *rules;           /* rule file; NULL: model only; re-read
					on SIGHUP */
	double block_threshold;      /* 0: HT_RISK_BLOCK_THRESHOLD_DEFAULT */
	double review_threshold;     /* 0: HT_RISK_REVIEW_THRESHOLD_DEFAULT */
	uint32_t review_timeout_s;   /* 0: the default above */
	size_t state_bytes;          /* features state; 0: HT_RISK_BYTES_DEFAULT */
};

struct ht_server_options {
	const char *data;            /* data directory */
	const char *listen;          /* "host:port"; NULL: the default */
	unsigned threads;            /* HTTP worker threads; 0: one per CPU */
	unsigned max_connections;    /* 0: the default */
	unsigned timeout_s;          /* 0: the default */
	unsigned queue;              /* requests waiting for the hub; 0: default */
	const char *static_dir;      /* files served under /static/; NULL: none */
	bool quiet;                  /* no startup banner */
	struct ht_server_risk_options risk;
	/* Called once the server listens (tests, `make run`); may be NULL. */
	void (*ready)(void *ctx, const char *address);
	void *ready_ctx;
};

/*
 * Run the server until SIGTERM or SIGINT, then shut down gracefully: stop
 * accepting, finish and answer every request already read, close, return.
 * Returns HT_OK after a clean shutdown; HT_ERR_LOCKED when another process
 * holds the store; HT_ERR_IO / HT_ERR_INVALID / HT_ERR_CRYPTO when it
 * cannot start (a message on stderr says why); HT_ERR_POISONED when it
 * stopped because a commit failed (nothing unacknowledged was lost:
 * restart it).
 */
enum ht_err ht_server_run(const struct ht_server_options *o);

/* One route of the API, for `huitong serve --routes` and the test that
 * checks docs/openapi.yaml against the server. */
struct ht_server_route {
	const char *method;   /* "GET" / "POST" */
	const char *path;     /* "/v1/accounts/{id}" */
	bool signed_required; /* a Huitong-Signature header is required */
	const char *roles;    /* "all", "operator,regulator", ... */
};
/* The route table; *n gets its length. */
const struct ht_server_route *ht_server_routes(size_t *n);

#endif

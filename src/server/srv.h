/*
 * srv.h — the server's internal structures, shared by its files:
 *
 *   server.c   lifecycle: TLS context, worker threads, listeners,
 *              connection limits, signals and graceful shutdown
 *   http.c     one request on a worker thread: identity, signature, role,
 *              routing, body parsing, answers and errors
 *   hubq.c     the hub thread: the queue, group commit, receipts, reads
 *   auth.c     the participant registry view and the nonce cache
 *   metrics.c  counters and histograms, Prometheus text
 *
 * Owner: server. Threads: N workers (each an event_base with its own
 * evhttp and listener), one hub thread (the only one that touches the
 * hub), the registry poller (main thread) and the access log's writer.
 * A request is owned by its worker; the hub thread only fills the job's
 * answer and hands it back through the worker's completion queue.
 */
#ifndef HUITONG_SRV_H
#define HUITONG_SRV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "huitong/accesslog.h"
#include "huitong/alias.h"
#include "huitong/blocklist.h"
#include "huitong/hub.h"
#include "huitong/jsonl.h"
#include "huitong/pki.h"
#include "huitong/registry.h"
#include "huitong/reqsig.h"
#include "huitong/riskeval.h"
#include "huitong/rules.h"
#include "huitong/server.h"
#include "huitong/vault.h"

struct event_base;
struct event;
struct bufferevent;
struct evhttp;
struct evhttp_request;
struct evhttp_bound_socket;

/* ---- routes ------------------------------------------------------------ */

enum route_id {
	R_ACCOUNTS_CREATE,
	R_TRANSFERS_CREATE,
	R_ACCOUNTS_LOOKUP,
	R_TRANSFERS_LOOKUP,
	R_ACCOUNT_GET,
	R_TRANSFER_GET,
	R_ACCOUNT_TRANSFERS,
	R_ACCOUNT_BALANCES,
	R_TRANSFER_RECEIPT,
	R_JOURNAL_HEAD,
	R_JOURNAL_HEAD_AT,
	R_JOURNAL_CONSISTENCY,
	R_JOURNAL_KEY,
	R_HEALTHZ,
	R_METRICS,
	R_STATIC,
	R_TRANSFER_RISK,
	R_RISK_REVIEWS,
	R_RISK_APPROVE,
	R_RISK_REJECT,
	R_RISK_RULES,
	R_BLOCK_ADD,
	R_BLOCK_LIST,
	R_BLOCK_REMOVE,
	R_ALIAS_REGISTER,
	R_ALIAS_LOOKUP,
	R_ALIAS_UPDATE,
	R_ALIAS_REMOVE,
	R_TOKEN_ISSUE,
	R_TOKEN_GET,
	R_TOKEN_DETOKENIZE,
	R_TOKEN_SUSPEND,
	R_TOKEN_RESUME,
	R_TOKEN_DELETE,
	R_PAYMENTS_CREATE,
	R_PAYMENTS_INBOX,
	R_PAYMENTS_DECIDE,
	R_PAYMENT_GET,
	R_PAYMENT_ACCEPT,
	R_PAYMENT_REJECT,
	R_LIQUIDITY,
	R_LIQUIDITY_GET,
	R_SETTLE_CLOSE,
	R_SETTLE_GET,
	R_SETTLE_SETTLE,
	R_ISO_PACS008,
	R__COUNT,
	R_NONE = R__COUNT, /* metrics slot for requests that matched nothing */
};

/* ---- metrics ----------------------------------------------------------- */

#define METRIC_BUCKETS 14
extern const double metric_bucket_s[METRIC_BUCKETS]; /* upper bounds */

struct histogram {
	_Atomic uint64_t bucket[METRIC_BUCKETS + 1]; /* last: +Inf */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_us;
};

struct metrics {
	/* requests by route and status class (1xx..5xx -> 0..4) */
	_Atomic uint64_t requests[R__COUNT + 1][5];
	struct histogram latency[R__COUNT + 1];
	struct histogram commit_seconds;     /* ht_hub_commit: write + fsync */
	struct histogram commit_events;      /* events per group commit */
	struct histogram commit_requests;    /* requests per group commit */
	_Atomic uint64_t overloaded;         /* 503 overloaded answers */
	_Atomic uint64_t connections_open;
	_Atomic uint64_t connections_total;
	_Atomic uint64_t refused_auth;       /* 401 answers */
	/* risk (serve --risk) */
	_Atomic uint64_t risk_decisions[HT_DECISION__COUNT];
	_Atomic uint64_t risk_shadow_hits;   /* shadow rules that fired */
	_Atomic uint64_t risk_reloads[2];    /* rule reloads: [0] ok, [1] refused */
	_Atomic uint64_t risk_held;          /* held for review now (gauge) */
};

void metrics_observe(struct histogram *h, double value_s);
void metrics_observe_count(struct histogram *h, uint64_t n);
struct server;
/* Append the Prometheus text exposition to b. */
enum ht_err metrics_render(struct server *s, struct ht_buf *b);

/* ---- jobs: the unit of work handed to the hub thread -------------------- */

enum job_kind {
	JOB_CREATE_ACCOUNTS,
	JOB_CREATE_TRANSFERS,
	JOB_LOOKUP_ACCOUNTS,
	JOB_LOOKUP_TRANSFERS,
	JOB_QUERY_TRANSFERS,
	JOB_QUERY_BALANCES,
	JOB_GET_ACCOUNT,
	JOB_GET_TRANSFER,
	JOB_RECEIPT,
	JOB_HEAD,
	JOB_HEAD_AT,
	JOB_CONSISTENCY,
	JOB_HEALTH,
	JOB_RISK_GET,
	JOB_RISK_REVIEWS,
	JOB_BLOCK_ADD,      /* shared block list (riskflow.c) */
	JOB_BLOCK_LIST,
	JOB_BLOCK_REMOVE,
	JOB_PAY_CREATE,     /* payments (payments.c): creates */
	JOB_PAY_DECIDE,
	JOB_PAY_GET,        /* reads */
	JOB_PAY_INBOX,
	JOB_LIQ,            /* operator's liquidity change: a create */
	JOB_LIQ_GET,        /* a position: a read */
	JOB_SETTLE_CLOSE,   /* close the open window: a read (it sees the
			       committed ledger; writes DATA/switch.db) */
	JOB_SETTLE_GET,     /* a window's report: a read */
	JOB_ISO,            /* a pacs.008 to book: a create */
};

/* One payment of POST /v1/payments as the worker resolved it, or one
 * decision on a payment (payments.c; docs/switch.md). */
#define PAY_REF_MAX 32          /* HT_USER_DATA_BYTES_MAX: the reference */
#define PAY_CLIENT_ID_MAX 64
#define PAY_BATCH_MAX 1024      /* payments or decisions in one request */
struct job_payment {
	char client_id[PAY_CLIENT_ID_MAX + 1];
	char payer_p[HT_PKI_ID_BYTES_MAX + 1];
	char payee_p[HT_PKI_ID_BYTES_MAX + 1];
	char payer_ref[PAY_REF_MAX + 1];
	char payee_ref[PAY_REF_MAX + 1];
	ht_u128 id;                 /* the payment: its pending transfer */
	ht_u128 debit, credit;      /* the two position accounts */
	uint64_t amount;
	uint32_t currency;
	uint32_t timeout_s;
	bool pull;                  /* consumer-presented: the payer's
				       participant accepts */
	bool accept;                /* a decision: accept (post) or reject */
	struct ht_transfer_risk risk; /* channel, device, ip for scoring */
	/* refused before the ledger (resolution, authorisation): no transfer */
	const char *code;
	int status;
	char message[160];
	int32_t xfer;               /* its transfer in j->r, -1: none */
	uint8_t state;              /* enum pay_state, after the apply */
	char awaited[HT_PKI_ID_BYTES_MAX + 1]; /* who decides, after it */
};

/* An operator's liquidity request (POST /v1/liquidity) or a position
 * read (GET /v1/liquidity/{participant}). */
struct job_liq {
	char action[12];            /* setup cap fund defund suspend resume */
	char participant[HT_PKI_ID_BYTES_MAX + 1];
	uint32_t currency;
	uint64_t amount;
	ht_u128 id;                 /* fund/defund: the transfer id */
	uint64_t window;            /* settle, report: the window (0: open) */
	char bic[12];               /* bic: the BIC to map */
	bool csv;                   /* report as text/csv */
};

/* One block-list entry a participant submits (POST /v1/risk/blocklist):
 * its keyed hash, or an account of the hub named by id (the hub hashes its
 * party reference). */
struct job_block {
	uint8_t kind;               /* enum ht_block_kind */
	bool by_account;            /* account_id given, not hash */
	uint8_t hash[HT_BLOCK_HASH_BYTES]; /* when !by_account */
	ht_u128 account_id;         /* when by_account */
	char reason[HT_BLOCK_REASON_BYTES_MAX + 1];
};

struct conn;
struct worker;

/* What the risk engine decided for one event of a create (riskflow.c). */
struct job_risk {
	double score;              /* 0..1 */
	uint32_t reasons_off;      /* into job.risk_reasons: reason_count
				      NUL-terminated strings */
	uint32_t rules_version;
	uint16_t shadow_count;     /* shadow rules that fired */
	uint8_t scored;            /* 0: not scored (post/void, a retry, ...) */
	uint8_t decision;          /* enum ht_decision */
	uint8_t reason_count;
	bool has_rules;            /* rules were in force (rules_version) */
};

struct job {
	struct job *next;
	enum job_kind kind;
	enum route_id route;
	struct worker *w;
	struct conn *conn;            /* NULL once the client went away */
	struct evhttp_request *req;   /* likewise; worker thread only */
	uint64_t t_start_ns;
	uint64_t body_bytes;
	char method[8];               /* for the access log if the client */
	char path[HT_ACCESS_PATH_BYTES_MAX + 1]; /* goes away before the answer */

	/* who asks (participant restrictions apply unless all_access) */
	char who[HT_PKI_ID_BYTES_MAX + 1];
	enum ht_pki_role role;
	char key_id[HT_REQSIG_KEY_ID_BYTES_MAX + 1];
	bool all_access;              /* operator or regulator: sees all */

	/* the request */
	struct ht_request r;          /* creates, lookups, queries */
	ht_u128 id;                   /* get / receipt */
	uint64_t a, b;                /* receipt: tree_size (0 latest);
					 head_at: seq; consistency: old, new */

	/* the answer, filled by the hub thread */
	int status;                   /* 0 until answered */
	const char *code;             /* error code, NULL on success */
	char message[256];
	struct ht_buf body;           /* reads: the JSON body */
	uint16_t *results;            /* creates: one per event */
	uint64_t *leaf;               /* creates: leaf index or UINT64_MAX */
	uint64_t first, count;        /* creates: the request's leaves */
	uint64_t *leaf_ts;            /* count: each leaf's timestamp */
	uint8_t *leaf_data;           /* count * HT_LEAF_BYTES_MAX: the leaves
					 whose event is not the one their
					 request implies (compact receipts) */
	uint8_t *leaf_len;            /* count; 0: rebuilt by the client */
	struct ht_sth head;
	uint8_t (*proof)[HT_HASH_BYTES]; /* HT_PROOF_HASHES_MAX */
	size_t proof_n;

	/* risk (serve --risk; creates of transfers): one per event */
	struct job_risk *risk;        /* NULL: nothing scored */
	struct ht_buf risk_reasons;
	uint16_t *refuse;             /* the verdicts handed to the ledger */
	struct ht_transfer *screened; /* the request with held transfers made
					 pending; NULL when none is held */
	size_t held_new;              /* reviews in this job */
	int64_t risk_ts_ms;           /* when they were decided */
	bool review_route;            /* approve/reject: may post a held
					 transfer */

	/* block list (JOB_BLOCK_*): the entries to add (count block_n), or
	 * the one to remove */
	struct job_block *block;
	size_t block_n;

	/* payments (JOB_PAY_*): the payments or decisions, in request order;
	 * pay_single: the body was one object, not a batch */
	struct job_payment *pay;
	size_t pay_n;
	uint32_t *pay_at;             /* transfer i of j->r is pay[pay_at[i]]
					 (payments_build) */
	bool pay_single;
	struct job_liq *liq;          /* JOB_LIQ, JOB_LIQ_GET */
	struct ht_iso_msg *iso;       /* JOB_ISO: the message read */
	const char *ctype;            /* the answer's content type when not
					 application/json */
	bool parked;                  /* a long poll the hub thread holds
					 (payments.c answers it) */
	struct job *park_next;        /* the parked list's link (not next:
					 the job may still be in a batch) */
};

/* Is j a create: applied in order and answered after the group commit. */
static inline bool job_is_create(const struct job *j)
{
	return j->kind == JOB_CREATE_ACCOUNTS || j->kind == JOB_CREATE_TRANSFERS ||
	       j->kind == JOB_PAY_CREATE || j->kind == JOB_PAY_DECIDE ||
	       j->kind == JOB_LIQ || j->kind == JOB_ISO;
}

void job_free(struct job *j);
/* Hand a job the hub thread finished back to its worker (hub thread). */
void hubq_answer(struct job *j);
/* May j's caller see account's data: operator and regulator always, a
 * participant for accounts it owns (hub thread). */
bool hubq_owns(struct server *s, const struct job *j, ht_u128 account);
/* Hand a job to the hub thread. HT_ERR_LIMIT when the queue is full
 * (answer 503 overloaded), HT_ERR_POISONED when the hub has stopped. */
enum ht_err hubq_submit(struct server *s, struct job *j);
/* Start / stop the hub thread. stop waits until every queued job has been
 * answered. */
enum ht_err hubq_start(struct server *s);
void hubq_stop(struct server *s);

/* ---- connections and workers --------------------------------------------- */

struct conn {
	struct worker *w;
	bool checked;                 /* certificate looked at */
	bool cert_ok;
	enum ht_pki_result pki;       /* when !cert_ok */
	bool no_cert;
	struct ht_pki_identity id;
	struct job *job;              /* the request in flight, if any */
	char remote[48];
	struct bufferevent *bev;      /* its bufferevent (for the deadline) */
	struct event *deadline;       /* fires every timeout_s: a connection
					 that finished no request since the
					 last firing (and waits for no job)
					 is shut down: slow clients cannot
					 trickle a request forever */
	uint64_t requests;            /* requests read so far */
	uint64_t requests_seen;       /* at the last firing */
};

struct worker {
	struct server *s;
	unsigned index;
	pthread_t thread;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	int fd;                       /* listening socket (SO_REUSEPORT) */
	struct event *wake;           /* completions or stop arrived */
	pthread_mutex_t lock;
	struct job *done_head, *done_tail; /* completed jobs, under lock */
	unsigned connections;         /* worker thread only */
	unsigned max_connections;
	bool listening;
	bool stopping;
	unsigned in_flight;           /* jobs submitted, not yet answered */
};

/* ---- the server ---------------------------------------------------------- */

struct server {
	struct ht_server_options o;
	struct ht_hub *hub;
	SSL_CTX *ssl_ctx;
	int ssl_conn_index;           /* SSL ex_data index of struct conn */
	struct ht_pki_ca *ca;
	char *server_cert_pem, *server_key_pem;
	size_t server_cert_len, server_key_len;
	struct ht_accesslog *alog;
	char journal_pub_pem[1024];
	enum ht_sign_alg journal_sign;

	/* registry and nonces (auth.c) */
	struct ht_registry *reg;
	struct ht_registry_view *_Atomic view;
	pthread_mutex_t view_lock;
	struct ht_nonce_cache *nonces;
	pthread_mutex_t nonce_lock;
	uint64_t started_s;           /* signatures older than this are
					 refused: the nonce cache starts
					 empty at every start */

	struct worker *workers;
	unsigned n_workers;
	struct metrics m;
	struct riskflow *risk;        /* NULL without --risk (riskflow.c) */
	struct switchsvc *sw;         /* aliases and tokens (switchapi.c) */
	struct paysvc *pay;           /* payments, liquidity (payments.c) */

	/* hub thread (hubq.c) */
	pthread_t hub_thread;
	pthread_mutex_t q_lock;
	pthread_cond_t q_cond;
	struct job *q_head, *q_tail;
	size_t q_jobs, q_events;
	bool q_stop;
	bool hub_failed;              /* a commit failed: stop serving */
	_Atomic uint64_t tree_size;   /* for /healthz */
	_Atomic uint64_t queue_depth;

	_Atomic bool stopping;
	_Atomic bool block_reload;    /* SIGHUP: re-read DATA/risk.db */
	unsigned timeout_s;
	unsigned queue_max;
};

/* ---- riskflow.c ---------------------------------------------------------------- */

struct riskflow;
/* Open the risk engine of o.risk (nothing when it is off): the model, the
 * rules (errors printed as path:line:column), the features state. Errors:
 * HT_ERR_INVALID, HT_ERR_IO, HT_ERR_NOMEM, those of the model loader and
 * the rule parser. Before the hub thread starts. */
enum ht_err riskflow_open(struct server *s);
void riskflow_close(struct server *s); /* accepts s->risk NULL */
/* One line for the banner (buf of size bytes). */
const char *riskflow_describe(struct server *s, char *buf, size_t size);
/* The rule holder in force (NULL without --risk), for reloads. */
struct ht_rules_holder *riskflow_rules(struct server *s);
/* Re-read the rule file at path and put it in force; on any error
 * (printed) the rules in force stay. Any thread. */
enum ht_err riskflow_reload_file(struct server *s, const char *path);
void riskflow_print_diag(const char *path, const struct ht_rules_diag *d);
/*
 * Hub thread, before the ledger applies create job j: score each transfer
 * that moves money (plain and pending ones with a new id between two
 * existing accounts), record it in the history, and fill j->risk. *in
 * gets the transfers to hand the ledger (the request, or a copy with the
 * held ones made pending) and *refuse the verdicts (NULL: none). Nothing
 * happens for other jobs or without --risk. Errors: HT_ERR_NOMEM, those
 * of the engine (the job then fails 500; the ledger was not called).
 */
enum ht_err riskflow_screen(struct server *s, struct job *j,
			    const struct ht_transfer **in, uint16_t **refuse);
/* Hub thread, after the ledger applied j: remember the transfers now held
 * for review, forget the ones a post or void resolved. */
void riskflow_applied(struct server *s, struct job *j);
/* Hub thread: decide payment p outside a transfer job (an ISO 20022
 * transaction, settled at once) and record it in the history: true when
 * the decision is block (why gets the reasons); review lets it through
 * (there is no hold in an instant credit transfer). False without
 * --risk or when the engine fails (printed). */
bool riskflow_blocks(struct server *s, struct ht_payment *p, char *why,
		     size_t why_size);
/* Is id a transfer held for review (hub thread)? */
bool riskflow_held(struct server *s, ht_u128 id);
/* Was id ever held for review: still held, or a stored review decision
 * (hub thread)? False without --risk. */
bool riskflow_was_held(struct server *s, ht_u128 id);
/* GET /v1/risk/reviews (hub thread): the transfers held and still
 * pending, oldest first, at most j->a of them, into j->body. */
void riskflow_reviews(struct server *s, struct job *j);
/* Hub thread, once j's events have their places in the changes (j->first,
 * j->leaf relative to it): note each scored transfer's decision for the
 * commit that stores its leaf (ht_hub_risk_note). Errors: HT_ERR_NOMEM
 * (the events are applied: the group then fails like a failed commit). */
enum ht_err riskflow_record(struct server *s, struct job *j);
/* GET /v1/transfers/{id}/risk (hub thread): the stored decision of j->id
 * into j->body, or j's error. */
void riskflow_read(struct server *s, struct job *j);
/* The shared block list (hub thread): add j's entries durably (reporter:
 * j->who) and answer each one's result; list the entries (a participant
 * sees its own reports, at most j->a); remove j->block[0] (an operator, or
 * the participant that reported it). 404 without --risk. */
void riskflow_block_add(struct server *s, struct job *j);
void riskflow_block_list(struct server *s, struct job *j);
void riskflow_block_remove(struct server *s, struct job *j);
/* ---- aliases and tokens (switchapi.c) ------------------------------------ */

/* One request to an alias or token route, as the worker read it. */
struct sw_request {
	enum route_id route;
	const char *who;              /* the caller's participant id */
	enum ht_pki_role role;
	const char *param;            /* {token}; param_len bytes */
	size_t param_len;
	const char *body;
	size_t body_len;
};
/* Its answer: status; on error code and message; else the JSON body. */
struct sw_answer {
	int status;
	const char *code;
	char message[256];
	struct ht_buf body;
};
/* Open DATA/alias.db and DATA/vault.db (creating them) at start; close. */
enum ht_err switchapi_open(struct server *s);
void switchapi_close(struct server *s);
/* Handle q on the calling worker thread (locks inside). */
void switchapi_handle(struct server *s, const struct sw_request *q,
		      struct sw_answer *a);

/* For the payment flow, on a worker thread (locks inside): where an alias
 * points; a token's issuing participant and state (no detokenisation);
 * under one lock, a token's issuing participant into owner and the
 * router's detokenisation of it for use u (domain and state checked, the
 * use counted and recorded, the number wiped at once): *why says whether
 * it may be used. With issuer non-NULL a token another participant issued
 * is HT_ERR_FORBIDDEN and not tried; a missing one HT_ERR_NOT_FOUND. */
enum ht_err switchapi_alias_resolve(struct server *s, enum ht_alias_kind kind,
				    const char *value, size_t len,
				    struct ht_alias_target *out);
enum ht_err switchapi_token_owner(struct server *s, const char *token,
				  char participant[HT_VAULT_PARTICIPANT_MAX + 1],
				  enum ht_token_state *state);
enum ht_err switchapi_token_route(struct server *s, const char *token,
				  const char *issuer, const struct ht_token_use *u,
				  char owner[HT_VAULT_PARTICIPANT_MAX + 1],
				  enum ht_token_refusal *why);

/* Hub thread, between groups: after SIGHUP (s->block_reload) re-read the
 * block list from DATA/risk.db, so entries `huitong risk blocklist add`
 * wrote beside a running hub take effect; a list that cannot be read
 * leaves the one in force. */
void riskflow_block_poll(struct server *s);
/* Append decision r as the JSON object GET /v1/transfers/{id}/risk
 * answers (hub thread). Errors: HT_ERR_NOMEM. */
enum ht_err riskflow_row_json(struct server *s, const struct ht_risk_row *r,
			      struct ht_buf *b);

/* ---- payments.c: the payment flow and liquidity ---------------------------- */

/* Open DATA/switch.db over the hub and find the payments still awaiting a
 * decision (before the hub thread starts); close. */
enum ht_err payments_open(struct server *s);
void payments_close(struct server *s);
/*
 * Worker thread: read a payments route's request into job j (its kind
 * set): parse the body, resolve payer and payee (aliases, tokens, QR and
 * consumer-presented codes) and fill j->pay or j->liq. False with
 * *status, *code and msg when the request as a whole is refused.
 */
bool payments_parse(struct server *s, struct job *j, const char *body,
		    size_t body_len, const char *param, size_t param_len,
		    const char *query_limit, const char *query_currency,
		    const char *query_wait, const char *query_format,
		    int *status, const char **code, char *msg, size_t size);
/* Hub thread, in apply_create: turn j->pay into the transfers of j->r
 * (creates: pending transfers between positions; decisions: posts and
 * voids, after checking who decides). HT_ERR_NOMEM. */
enum ht_err payments_build(struct server *s, struct job *j);
/* Hub thread, after risk: the liquidity verdict of each payment of j into
 * *refuse (allocated in j->refuse when NULL). HT_ERR_NOMEM. */
enum ht_err payments_liquidity(struct server *s, struct job *j,
			       const struct ht_transfer *in, uint16_t **refuse);
/* Hub thread, after the ledger applied j: each payment's state, the inbox
 * of those awaiting a decision. */
void payments_applied(struct server *s, struct job *j);
/* The party references the risk engine sees for transfer i of a payments
 * job: "<participant>:<reference>". */
void payments_party(const struct job *j, size_t i, struct ht_payment *p);
/* Hub thread: JOB_PAY_GET, JOB_PAY_INBOX, JOB_LIQ_GET into j->body. */
void payments_read(struct server *s, struct job *j);
/* Hub thread: answer the parked long polls of the inbox that now have
 * payments to show, or whose wait is over (all of them when `all`: the
 * hub is stopping); when the next one is due (0: none parked). */
void payments_wake(struct server *s, bool all);
uint64_t payments_next_due_ns(struct server *s);
/* Hub thread, with the creates: apply JOB_LIQ (its ledger events join
 * the group commit) and put its answer in j->body. */
void payments_liq_apply(struct server *s, struct job *j);
/* Hub thread, with the creates: book JOB_ISO's pacs.008. */
void payments_iso_apply(struct server *s, struct job *j);
/* Worker thread: the pacs.002 answering a committed JOB_ISO into b
 * (j->iso's outcomes); HTTP status. */
int payments_iso_body(const struct job *j, struct ht_buf *b);
/* Worker thread: the answer of a committed JOB_PAY_CREATE/DECIDE into b;
 * its HTTP status. */
int payments_body(const struct job *j, struct ht_buf *b);

/* ---- http.c ---------------------------------------------------------------- */

/* The evhttp callback for every request. */
void http_handle(struct evhttp_request *req, void *arg);
/* Answer a job the hub thread finished (worker thread). */
void http_complete(struct job *j);
uint64_t srv_now_ns(void);
/* Route matching, for the fuzzer: 0 and *route_id when method and path
 * match a route, 404 (no such path) or 405 (other methods). */
int srv_route_find(const char *method, const char *path, int *route_id);
/* The connection state of a request (NULL when it has none). */
struct conn *http_conn_of(struct server *s, struct evhttp_request *req);

/* ---- auth.c ------------------------------------------------------------------ */

enum ht_err auth_open(struct server *s);
void auth_close(struct server *s);
/* Reload the registry view if it changed (main thread, once a second). */
void auth_poll(struct server *s);

/* What the registry says of a connection's certificate and a request's
 * signature. On refusal *status, *code and msg are set. */
bool auth_certificate(struct server *s, const struct ht_pki_identity *id,
		      int *status, const char **code, char *msg, size_t size);
bool auth_signature(struct server *s, const struct ht_pki_identity *id,
		    const char *header, const char *method, const char *uri,
		    const void *body, size_t body_len, char *key_id_out,
		    int *status, const char **code, char *msg, size_t size);

#endif

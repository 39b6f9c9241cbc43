/*
 * server.c — `huitong serve`'s lifecycle: the TLS 1.3 context, the HTTP
 * worker threads (one event_base, evhttp and SO_REUSEPORT listener each),
 * the connection limit, signals and the graceful shutdown.
 *
 * Owner: server. Start order: open the hub (takes the store's lease),
 * the access log, the registry (auth.c), the TLS context, the hub thread,
 * then the workers; the main thread then polls the registry once a second
 * and waits for SIGTERM/SIGINT. Stop order is the reverse, and nothing
 * already read is dropped: workers stop accepting, every request in
 * flight is committed and answered, then connections close.
 */
#include "srv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/pem.h>

uint64_t srv_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- TLS ------------------------------------------------------------------- */

/* The handshake asks for a client certificate and accepts whatever comes:
 * http.c judges it (ht_pki_verify_client_x509, the registry) on the first
 * request, so a missing or bad certificate gets a JSON 401 that is logged
 * instead of a bare TLS alert. No request is served without one. */
static int accept_any_cert(int ok, X509_STORE_CTX *ctx)
{
	(void)ok;
	(void)ctx;
	return 1;
}

static void conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad,
			 int idx, long argl, void *argp);

static enum ht_err tls_setup(struct server *s)
{
	enum ht_err err;
	err = HT_ERR_CRYPTO;
	X509 *x = NULL;
	EVP_PKEY *pk = NULL;
	BIO *b = BIO_new_mem_buf(s->server_cert_pem, (int)s->server_cert_len);
	if (b)
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	b = BIO_new_mem_buf(s->server_key_pem, (int)s->server_key_len);
	if (b)
		pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!x || !pk || !ctx)
		goto out;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    SSL_CTX_use_certificate(ctx, x) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, pk) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1 ||
	    SSL_CTX_add_client_CA(ctx, ht_pki_ca_x509(s->ca)) != 1)
		goto out;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_cert);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* required with client certificates, or a client offering to resume
	 * gets an internal_error alert */
	static const unsigned char sid_ctx[] = "huitong";
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	s->ssl_conn_index = SSL_get_ex_new_index(0, s, NULL, NULL,
						 conn_ex_free);
	if (s->ssl_conn_index < 0)
		goto out;
	s->ssl_ctx = ctx;
	ctx = NULL;
	err = HT_OK;
out:
	if (err)
		fprintf(stderr, "huitong serve: TLS setup failed (server.crt /"
				" server.key unusable)\n");
	SSL_CTX_free(ctx);
	X509_free(x);
	EVP_PKEY_free(pk);
	return err;
}

/* ---- connections ----------------------------------------------------------- */

static void listener_update(struct worker *w)
{
	if (!w->bound)
		return;
	struct evconnlistener *l = evhttp_bound_socket_get_listener(w->bound);
	bool want = !w->stopping && w->connections < w->max_connections;
	if (want && !w->listening)
		evconnlistener_enable(l);
	else if (!want && w->listening)
		evconnlistener_disable(l);
	w->listening = want;
}

/* SSL_free of a connection's SSL: the connection is gone. Runs on its
 * worker's thread (bufferevents are freed there). */
static void conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad,
			 int idx, long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	struct server *s = argp;
	struct conn *c = ptr;
	if (!c)
		return;
	struct worker *w = c->w;
	if (c->deadline)
		event_free(c->deadline);
	if (c->job) {
		c->job->conn = NULL;
		c->job->req = NULL;
	}
	free(c);
	w->connections--;
	atomic_fetch_sub(&s->m.connections_open, 1);
	listener_update(w);
}

/* The connection's deadline (see struct conn). evhttp's own timeout is
 * one of inactivity, which a client sending a byte now and then resets. */
static void conn_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	if (!c->job && c->requests == c->requests_seen) {
		evutil_socket_t sock = bufferevent_getfd(c->bev);
		if (sock >= 0)
			shutdown(sock, SHUT_RDWR); /* evhttp then frees it */
	}
	c->requests_seen = c->requests;
	struct timeval tv = {.tv_sec = c->w->s->timeout_s};
	evtimer_add(c->deadline, &tv);
}

static struct bufferevent *new_conn_bev(struct event_base *base, void *arg)
{
	struct worker *w = arg;
	struct server *s = w->s;
	SSL *ssl = SSL_new(s->ssl_ctx);
	struct conn *c = calloc(1, sizeof *c);
	if (!ssl || !c) {
		SSL_free(ssl);
		free(c);
		return NULL;
	}
	c->w = w;
	SSL_set_ex_data(ssl, s->ssl_conn_index, c);
	w->connections++;
	atomic_fetch_add(&s->m.connections_open, 1);
	atomic_fetch_add(&s->m.connections_total, 1);
	listener_update(w);
	struct bufferevent *bev = bufferevent_openssl_socket_new(
		base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		SSL_free(ssl); /* frees c through conn_ex_free */
		return NULL;
	}
	/* a peer that closes without close_notify is normal for HTTP */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	c->bev = bev;
	c->deadline = evtimer_new(base, conn_deadline, c);
	if (c->deadline) {
		struct timeval tv = {.tv_sec = s->timeout_s};
		evtimer_add(c->deadline, &tv);
	}
	return bev;
}

struct conn *http_conn_of(struct server *s, struct evhttp_request *req)
{
	struct evhttp_connection *evc = evhttp_request_get_connection(req);
	if (!evc)
		return NULL;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evc);
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	return ssl ? SSL_get_ex_data(ssl, s->ssl_conn_index) : NULL;
}

/* ---- workers ----------------------------------------------------------------- */

static int listen_socket(const char *listen_addr, char *shown, size_t size)
{
	char host[256];
	const char *colon = strrchr(listen_addr, ':');
	if (!colon || colon == listen_addr ||
	    (size_t)(colon - listen_addr) >= sizeof host)
		return -1;
	memcpy(host, listen_addr, (size_t)(colon - listen_addr));
	host[colon - listen_addr] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535)
		return -1;
	char *h = host;
	if (h[0] == '[') { /* [::1]:8443 */
		size_t l = strlen(h);
		if (l < 2 || h[l - 1] != ']')
			return -1;
		h[l - 1] = '\0';
		h++;
	}
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, h, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		sl = sizeof *v4;
	} else if (inet_pton(AF_INET6, h, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		sl = sizeof *v6;
	} else if (!strcmp(h, "localhost")) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof *v4;
	} else {
		return -1;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	/* accepted sockets inherit it (Linux): an answer's TLS records go out
	 * at once instead of waiting out Nagle against the peer's delayed
	 * ACK (40 ms) */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 1024)) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (shown) {
		/* the real port when 0 was asked for */
		struct sockaddr_storage got;
		socklen_t gl = sizeof got;
		char ip[INET6_ADDRSTRLEN] = "?";
		int p = (int)port;
		if (!getsockname(fd, (struct sockaddr *)&got, &gl)) {
			if (got.ss_family == AF_INET) {
				struct sockaddr_in *g = (struct sockaddr_in *)&got;
				inet_ntop(AF_INET, &g->sin_addr, ip, sizeof ip);
				p = ntohs(g->sin_port);
				snprintf(shown, size, "%s:%d", ip, p);
			} else {
				struct sockaddr_in6 *g = (struct sockaddr_in6 *)&got;
				inet_ntop(AF_INET6, &g->sin6_addr, ip, sizeof ip);
				p = ntohs(g->sin6_port);
				snprintf(shown, size, "[%s]:%d", ip, p);
			}
		}
	}
	return fd;
}

/* Completions or a stop request arrived: answer finished jobs, and when
 * stopping with nothing in flight, end the loop. */
static void worker_wake(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *w = arg;
	pthread_mutex_lock(&w->lock);
	struct job *j = w->done_head;
	w->done_head = w->done_tail = NULL;
	pthread_mutex_unlock(&w->lock);
	while (j) {
		struct job *next = j->next;
		j->next = NULL;
		w->in_flight--;
		http_complete(j);
		j = next;
	}
	if (atomic_load(&w->s->stopping) && !w->stopping) {
		w->stopping = true;
		if (w->bound) { /* closes the listening socket */
			evhttp_del_accept_socket(w->http, w->bound);
			w->bound = NULL;
		}
	}
	if (w->stopping && w->in_flight == 0)
		event_base_loopexit(w->base, NULL);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	event_base_dispatch(w->base);
	return NULL;
}

static enum ht_err worker_setup(struct server *s, struct worker *w,
				const char *listen_addr, char *shown,
				size_t shown_size)
{
	w->s = s;
	w->fd = -1;
	pthread_mutex_init(&w->lock, NULL);
	w->base = event_base_new();
	if (!w->base)
		return HT_ERR_NOMEM;
	w->http = evhttp_new(w->base);
	w->wake = event_new(w->base, -1, 0, worker_wake, w);
	if (!w->http || !w->wake)
		return HT_ERR_NOMEM;
	w->fd = listen_socket(listen_addr, shown, shown_size);
	if (w->fd < 0) {
		fprintf(stderr, "huitong serve: cannot listen on %s: %s\n",
			listen_addr, errno ? strerror(errno) : "bad address");
		return HT_ERR_IO;
	}
	w->bound = evhttp_accept_socket_with_handle(w->http, w->fd);
	if (!w->bound)
		return HT_ERR_IO;
	w->listening = true;
	evhttp_set_bevcb(w->http, new_conn_bev, w);
	evhttp_set_gencb(w->http, http_handle, w);
	evhttp_set_max_headers_size(w->http, HT_SERVER_HEADERS_BYTES_MAX);
	evhttp_set_max_body_size(w->http, HT_SERVER_BODY_HARD_MAX);
	struct timeval tv = {.tv_sec = s->timeout_s};
	evhttp_set_timeout_tv(w->http, &tv);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
						    EVHTTP_REQ_HEAD |
						    EVHTTP_REQ_PUT |
						    EVHTTP_REQ_DELETE |
						    EVHTTP_REQ_PATCH |
						    EVHTTP_REQ_OPTIONS |
						    EVHTTP_REQ_TRACE |
						    EVHTTP_REQ_CONNECT);
	evhttp_set_default_content_type(w->http, "application/json");
	return HT_OK;
}

static void worker_free(struct worker *w)
{
	if (w->http)
		evhttp_free(w->http); /* closes its listener and connections */
	if (w->wake)
		event_free(w->wake);
	if (w->base)
		event_base_free(w->base);
	pthread_mutex_destroy(&w->lock);
}

/* ---- run ----------------------------------------------------------------------- */

static volatile sig_atomic_t got_signal;
static volatile sig_atomic_t got_hup;

static void on_signal(int sig)
{
	got_signal = sig;
}

static void on_hup(int sig)
{
	(void)sig;
	got_hup = 1;
}

/* SIGHUP with --risk: re-read --risk-rules (main thread; the holder lets
 * the hub thread go on meanwhile). A bad file keeps the rules in force. */
static void hup_reload(struct server *s)
{
	got_hup = 0;
	atomic_store(&s->block_reload, true); /* the hub thread re-reads it */
	const char *path = s->o.risk.rules;
	if (!path) {
		fprintf(stderr, "huitong serve: SIGHUP: no --risk-rules to"
				" re-read\n");
		return;
	}
	if (riskflow_reload_file(s, path)) {
		fprintf(stderr, "huitong serve: SIGHUP: %s refused; the rules in"
				" force stay\n", path);
		return;
	}
	char line[512];
	fprintf(stderr, "huitong serve: SIGHUP: re-read %s: %s\n", path,
		riskflow_describe(s, line, sizeof line));
}

enum ht_err ht_server_run(const struct ht_server_options *opt)
{
	struct server *s = calloc(1, sizeof *s);
	if (!s)
		return HT_ERR_NOMEM;
	s->o = *opt;
	const char *listen_addr = opt->listen ? opt->listen
					      : HT_SERVER_LISTEN_DEFAULT;
	s->timeout_s = opt->timeout_s ? opt->timeout_s
				      : HT_SERVER_TIMEOUT_S_DEFAULT;
	s->queue_max = opt->queue ? opt->queue : HT_SERVER_QUEUE_DEFAULT;
	unsigned maxc = opt->max_connections ? opt->max_connections
					     : HT_SERVER_MAX_CONNECTIONS_DEFAULT;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	s->n_workers = opt->threads ? opt->threads
				    : (unsigned)(cpus > 0 ? cpus : 1);
	if (s->n_workers > HT_SERVER_THREADS_MAX)
		s->n_workers = HT_SERVER_THREADS_MAX;
	pthread_mutex_init(&s->q_lock, NULL);
	pthread_cond_init(&s->q_cond, NULL);
	pthread_mutex_init(&s->view_lock, NULL);
	pthread_mutex_init(&s->nonce_lock, NULL);

	/* A peer that vanishes mid-write must not kill the hub. */
	signal(SIGPIPE, SIG_IGN);
	evthread_use_pthreads();

	enum ht_err err = ht_hub_open(opt->data,
				      &(struct ht_hub_open_options){0},
				      &s->hub);
	if (err) {
		if (err == HT_ERR_LOCKED)
			fprintf(stderr, "huitong serve: %s is in use by another"
					" writer\n", opt->data);
		else
			fprintf(stderr, "huitong serve: cannot open %s: %s\n",
				opt->data, ht_strerror(err));
		free(s);
		return err;
	}
	struct ht_sth head;
	if (!ht_hub_head(s->hub, &head))
		atomic_store(&s->tree_size, head.tree_size);
	bool hub_started = false;
	char shown[128] = "";
	err = ht_accesslog_open(opt->data, &s->alog);
	if (err)
		fprintf(stderr, "huitong serve: cannot open the access log: %s\n",
			ht_strerror(err));
	if (!err)
		err = auth_open(s);
	if (!err)
		err = tls_setup(s);
	if (!err)
		err = riskflow_open(s);
	if (!err)
		err = switchapi_open(s);
	if (!err)
		err = payments_open(s);
	if (!err)
		err = hubq_start(s);
	if (!err) {
		hub_started = true;
		s->workers = calloc(s->n_workers, sizeof *s->workers);
		if (!s->workers)
			err = HT_ERR_NOMEM;
	}
	unsigned per = (maxc + s->n_workers - 1) / s->n_workers;
	for (unsigned i = 0; !err && i < s->n_workers; i++) {
		s->workers[i].index = i;
		s->workers[i].max_connections = per ? per : 1;
		err = worker_setup(s, &s->workers[i], listen_addr,
				   i == 0 ? shown : NULL, sizeof shown);
		/* port 0: the others share the port the first one got */
		if (!err && i == 0 && strstr(listen_addr, ":0") &&
		    listen_addr[strlen(listen_addr) - 1] == '0' &&
		    listen_addr[strlen(listen_addr) - 2] == ':')
			listen_addr = shown;
	}
	unsigned started = 0;
	for (unsigned i = 0; !err && i < s->n_workers; i++) {
		if (pthread_create(&s->workers[i].thread, NULL, worker_main,
				   &s->workers[i]))
			err = HT_ERR_NOMEM;
		else
			started++;
	}
	if (!err) {
		struct sigaction sa = {.sa_handler = on_signal};
		sigemptyset(&sa.sa_mask);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		if (s->risk) {
			/* only with --risk: otherwise SIGHUP stays as it was */
			struct sigaction hup = {.sa_handler = on_hup};
			sigemptyset(&hup.sa_mask);
			sigaction(SIGHUP, &hup, NULL);
		}
		if (!opt->quiet)
			fprintf(stderr,
				"huitong serve: listening on https://%s (TLS 1.3,"
				" client certificates required), %u worker"
				" threads, data %s\n",
				shown, s->n_workers, opt->data);
		if (!opt->quiet && s->risk) {
			char line[512];
			fprintf(stderr, "huitong serve: risk control on: %s\n",
				riskflow_describe(s, line, sizeof line));
		}
		if (opt->ready)
			opt->ready(opt->ready_ctx, shown);
		while (!got_signal && !atomic_load(&s->stopping)) {
			struct timespec ts = {0, 200 * 1000 * 1000};
			nanosleep(&ts, NULL);
			static unsigned tick;
			if (++tick % 5 == 0)
				auth_poll(s);
			if (got_hup)
				hup_reload(s);
		}
		if (!opt->quiet)
			fprintf(stderr, "huitong serve: stopping: finishing"
					" requests in flight\n");
	}
	/* Graceful stop: workers stop accepting and leave their loop once
	 * every job they submitted has been answered. */
	atomic_store(&s->stopping, true);
	for (unsigned i = 0; i < started; i++)
		event_active(s->workers[i].wake, EV_READ, 0);
	for (unsigned i = 0; i < started; i++)
		pthread_join(s->workers[i].thread, NULL);
	if (hub_started)
		hubq_stop(s);
	for (unsigned i = 0; s->workers && i < s->n_workers; i++)
		worker_free(&s->workers[i]);
	free(s->workers);
	if (!err && s->hub_failed)
		err = HT_ERR_POISONED;
	if (!err) {
		enum ht_err e = ht_hub_index(s->hub);
		if (e)
			fprintf(stderr, "huitong serve: indexing at exit: %s\n",
				ht_strerror(e));
	}
	payments_close(s);
	ht_hub_close(s->hub);
	riskflow_close(s);
	switchapi_close(s);
	ht_accesslog_close(s->alog);
	auth_close(s);
	SSL_CTX_free(s->ssl_ctx);
	pthread_mutex_destroy(&s->q_lock);
	pthread_cond_destroy(&s->q_cond);
	pthread_mutex_destroy(&s->view_lock);
	pthread_mutex_destroy(&s->nonce_lock);
	if (!opt->quiet && !err)
		fprintf(stderr, "huitong serve: stopped cleanly\n");
	free(s);
	return err;
}

/*
 * client.c — the transport of libhuitong-client: credentials, one libcurl
 * easy handle per client (mutual TLS 1.3, keep-alive), request signatures,
 * bounded answers and the retry loop.
 *
 * Owner: client. Every byte of HTTP and TLS is libcurl's and OpenSSL's;
 * this file only sets them up strictly (only the hub CA is trusted, host
 * names are checked, no proxy, no redirect, https only) and decides what
 * may be sent again. It must never retry an answer the hub gave but 503
 * and 401 replayed_nonce, never reuse a nonce itself, and never hold more than
 * HT_CLIENT_BODY_BYTES_MAX of an answer.
 */
#include "client_internal.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "huitong/reqsig.h"

/* Connecting is bounded on its own: a hub that does not answer the TCP or
 * TLS handshake in this time is down, whatever the request timeout. */
#define CONNECT_TIMEOUT_MS_MAX 10000u
/* An error body is parsed for its code and message up to this size. */
#define ERROR_BODY_BYTES_MAX (64u * 1024)
/* The journal key answer: a PEM public key and its algorithm. */
#define KEY_BODY_BYTES_MAX (16u * 1024)

static _Thread_local char open_err[HT_CLIENT_ERROR_BYTES];

const char *ht_client_open_error(void)
{
	return open_err;
}

void ht_client_options_init(struct ht_client_options *o)
{
	HT_ASSERT(o != NULL);
	memset(o, 0, sizeof *o);
	o->timeout_ms = HT_CLIENT_TIMEOUT_MS_DEFAULT;
	o->retries = HT_CLIENT_RETRIES_DEFAULT;
	o->verify_receipts = true;
}

enum ht_err client_fail(struct ht_client *c, enum ht_err err,
			const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof c->err, fmt, ap);
	va_end(ap);
	return err;
}

const char *ht_client_error(const struct ht_client *c)
{
	return c ? c->err : "no client";
}

enum ht_err client_hasher(struct ht_client *c, enum ht_hash_alg alg,
			  struct ht_hasher **out)
{
	if (alg != HT_HASH_SM3 && alg != HT_HASH_SHA256)
		return HT_ERR_INVALID;
	if (!c->hasher[alg]) {
		enum ht_err err = ht_hasher_create(alg, &c->hasher[alg]);
		if (err)
			return err;
	}
	*out = c->hasher[alg];
	return HT_OK;
}

/* ---- opening ------------------------------------------------------------- */

/*
 * The base URL: "https://" and an authority (host[:port], IPv6 in
 * brackets), at most one trailing '/', no path, query, fragment or user
 * info: request targets are signed as sent, so the hub must see exactly
 * the paths this client signs.
 */
static enum ht_err set_base_url(struct ht_client *c, const char *url)
{
	static const char scheme[] = "https://";
	size_t n = strlen(url);
	if (n > HT_PKI_URL_BYTES_MAX)
		return client_fail(c, HT_ERR_INVALID, "url longer than %u bytes",
				   HT_PKI_URL_BYTES_MAX);
	if (strncmp(url, scheme, sizeof scheme - 1))
		return client_fail(c, HT_ERR_INVALID,
				   "url '%s' does not begin with https://", url);
	if (n > sizeof scheme && url[n - 1] == '/')
		n--;
	if (n == sizeof scheme - 1)
		return client_fail(c, HT_ERR_INVALID, "url '%s' has no host", url);
	for (size_t i = sizeof scheme - 1; i < n; i++) {
		unsigned char ch = (unsigned char)url[i];
		if (ch <= 0x20 || ch >= 0x7f || strchr("/?#@\\", ch))
			return client_fail(c, HT_ERR_INVALID,
					   "url '%s': only https://host[:port]"
					   " (no path, query or user)", url);
	}
	memcpy(c->base_url, url, n);
	c->base_url[n] = '\0';
	return HT_OK;
}

static enum ht_err load_keys(struct ht_client *c)
{
	struct ht_pki_credentials *k = &c->creds;
	if (!k->signing_key_pem || !k->signing_key_id[0])
		return client_fail(c, HT_ERR_INVALID,
				   "the credentials have no request-signing key"
				   " (signing.key and its key id)");
	if (ht_key_from_pem(k->signing_key_pem, k->signing_key_len, NULL,
			    &c->sign_key))
		return client_fail(c, HT_ERR_INVALID,
				   "the request-signing key does not load");
	if (!k->hub_key_pem)
		return HT_OK;
	if (ht_key_from_pem(k->hub_key_pem, k->hub_key_len, NULL, &c->hub_key))
		return client_fail(c, HT_ERR_INVALID,
				   "the hub journal key does not load");
	if (k->hub_sign_alg && ht_key_alg(c->hub_key) != k->hub_sign_alg)
		return client_fail(c, HT_ERR_INVALID,
				   "the hub journal key is %s, the credentials"
				   " say %s", ht_sign_alg_name(ht_key_alg(c->hub_key)),
				   ht_sign_alg_name(k->hub_sign_alg));
	return HT_OK;
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct ht_client *c = ctx;
	size_t n = size * nmemb;
	if (n > HT_CLIENT_BODY_BYTES_MAX - c->rx.len) {
		c->rx_too_big = true;
		return 0;
	}
	if (ht_buf_append(&c->rx, p, n)) {
		c->rx_nomem = true;
		return 0;
	}
	return n;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_global_rc;

static void curl_global(void)
{
	curl_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Set an option or leave the function with the failure. */
#define SET(opt, val)                                                     \
	do {                                                              \
		CURLcode rc_ = curl_easy_setopt(h, opt, val);             \
		if (rc_ != CURLE_OK)                                      \
			return client_fail(c, HT_ERR_IO, "curl: %s: %s",  \
					   #opt, curl_easy_strerror(rc_)); \
	} while (0)

static enum ht_err setup_tls(struct ht_client *c, CURL *h)
{
	struct curl_blob cert = {c->creds.cert_pem, c->creds.cert_len,
				 CURL_BLOB_COPY};
	struct curl_blob key = {c->creds.key_pem, c->creds.key_len,
				CURL_BLOB_COPY};
	struct curl_blob ca = {c->creds.ca_pem, c->creds.ca_len, CURL_BLOB_COPY};
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	/* The hub CA only: no system bundle, no CA directory. */
	SET(CURLOPT_CAINFO, (char *)NULL);
	SET(CURLOPT_CAPATH, (char *)NULL);
	SET(CURLOPT_CAINFO_BLOB, &ca);
	SET(CURLOPT_SSLCERT_BLOB, &cert);
	SET(CURLOPT_SSLCERTTYPE, "PEM");
	SET(CURLOPT_SSLKEY_BLOB, &key);
	SET(CURLOPT_SSLKEYTYPE, "PEM");
	return HT_OK;
}

static enum ht_err setup_curl(struct ht_client *c)
{
	pthread_once(&curl_once, curl_global);
	if (curl_global_rc != CURLE_OK)
		return client_fail(c, HT_ERR_IO, "curl_global_init: %s",
				   curl_easy_strerror(curl_global_rc));
	CURL *h = curl_easy_init();
	if (!h)
		return client_fail(c, HT_ERR_NOMEM, "curl_easy_init failed");
	c->curl = h;
	long connect_ms = c->timeout_ms < CONNECT_TIMEOUT_MS_MAX
				  ? (long)c->timeout_ms
				  : (long)CONNECT_TIMEOUT_MS_MAX;
	SET(CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for timeouts */
	SET(CURLOPT_ERRORBUFFER, c->curl_err);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PROXY, ""); /* never through a proxy from the environment */
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	SET(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_TCP_NODELAY, 1L);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HT_CLIENT_BODY_BYTES_MAX);
	SET(CURLOPT_WRITEFUNCTION, on_data);
	SET(CURLOPT_WRITEDATA, c);
	SET(CURLOPT_USERAGENT, "huitong-client/" HT_VERSION);
	return setup_tls(c, h);
}

static enum ht_err open_checked(const struct ht_client_options *o,
				struct ht_client *c)
{
	if (!o->credentials_dir)
		return client_fail(c, HT_ERR_INVALID, "no credentials directory");
	if (o->timeout_ms > HT_CLIENT_TIMEOUT_MS_MAX)
		return client_fail(c, HT_ERR_INVALID, "timeout over %u ms",
				   HT_CLIENT_TIMEOUT_MS_MAX);
	if (o->retries > HT_CLIENT_RETRIES_MAX)
		return client_fail(c, HT_ERR_INVALID, "more than %d retries",
				   HT_CLIENT_RETRIES_MAX);
	c->timeout_ms = o->timeout_ms ? o->timeout_ms
				      : HT_CLIENT_TIMEOUT_MS_DEFAULT;
	c->retries = o->retries;
	c->verify = o->verify_receipts;
	enum ht_err err = ht_pki_read_credentials(o->credentials_dir, &c->creds);
	if (err)
		return client_fail(c, err, "cannot read the credentials in %s: %s",
				   o->credentials_dir, ht_strerror(err));
	const char *url = o->url ? o->url : c->creds.url;
	if (!url)
		return client_fail(c, HT_ERR_INVALID,
				   "no url: give one, or put it in %s/"
				   "credentials.json", o->credentials_dir);
	if ((err = set_base_url(c, url)) || (err = load_keys(c)))
		return err;
	return setup_curl(c);
}

enum ht_err ht_client_open(const struct ht_client_options *o,
			   struct ht_client **out)
{
	open_err[0] = '\0';
	if (!out || !o) {
		snprintf(open_err, sizeof open_err, "no options");
		return HT_ERR_INVALID;
	}
	*out = NULL;
	struct ht_client *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(open_err, sizeof open_err, "out of memory");
		return HT_ERR_NOMEM;
	}
	enum ht_err err = open_checked(o, c);
	if (err) {
		snprintf(open_err, sizeof open_err, "%s", c->err);
		ht_client_close(c);
		return err;
	}
	*out = c;
	return HT_OK;
}

enum ht_err client_open_offline(const char *hub_key_pem, size_t len,
				struct ht_client **out)
{
	*out = NULL;
	struct ht_client *c = calloc(1, sizeof *c);
	if (!c)
		return HT_ERR_NOMEM;
	c->timeout_ms = HT_CLIENT_TIMEOUT_MS_DEFAULT;
	c->verify = true;
	if (ht_key_from_pem(hub_key_pem, len, NULL, &c->hub_key)) {
		ht_client_close(c);
		return HT_ERR_INVALID;
	}
	*out = c;
	return HT_OK;
}

void ht_client_close(struct ht_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	ht_pki_credentials_clear(&c->creds);
	ht_key_destroy(c->sign_key);
	ht_key_destroy(c->hub_key);
	for (size_t i = 0; i < sizeof c->hasher / sizeof c->hasher[0]; i++)
		ht_hasher_destroy(c->hasher[i]);
	ht_buf_free(&c->rx);
	free(c);
}

/* ---- one request ----------------------------------------------------------- */

void ht_client_response_clear(struct ht_client_response *r)
{
	if (!r)
		return;
	free(r->body);
	memset(r, 0, sizeof *r);
}

/* The outcome of one attempt: curl's code, the status and Retry-After. */
struct attempt {
	CURLcode cc;
	long status;
	long retry_after_s;
};

#undef SET
#define SET(opt, val)                                                     \
	do {                                                              \
		CURLcode rc_ = curl_easy_setopt(h, opt, val);             \
		if (rc_ != CURLE_OK) {                                    \
			err = client_fail(c, HT_ERR_IO, "curl: %s: %s",   \
					  #opt, curl_easy_strerror(rc_)); \
			goto out;                                         \
		}                                                         \
	} while (0)

/* The method: GET and HEAD without a body, POST, or another verb sent as
 * a custom request (with its body when it has one). NOBODY is set last:
 * HTTPGET would clear it. */
static enum ht_err set_method(struct ht_client *c, CURL *h, const char *method,
			      const void *body, size_t len)
{
	enum ht_err err = HT_OK;
	bool head = !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
	bool get = !strcmp(method, "GET");
	SET(CURLOPT_NOBODY, 0L);
	if (get || head || (len == 0 && !post)) {
		SET(CURLOPT_HTTPGET, 1L);
	} else {
		SET(CURLOPT_POST, 1L);
		SET(CURLOPT_POSTFIELDS, body ? (const char *)body : "");
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	SET(CURLOPT_CUSTOMREQUEST, get || post || head ? (const char *)NULL
						       : method);
	if (head)
		SET(CURLOPT_NOBODY, 1L);
out:
	return err;
}

static enum ht_err attempt_once(struct ht_client *c, const char *method,
				const char *path, const void *body, size_t len,
				struct attempt *a)
{
	CURL *h = c->curl;
	char sig[sizeof HT_REQSIG_HEADER_NAME + 2 + HT_REQSIG_HEADER_BYTES_MAX + 1];
	char url[HT_PKI_URL_BYTES_MAX + HT_REQSIG_PATH_BYTES_MAX + 1];
	struct curl_slist *hdrs = NULL, *t;
	size_t prefix = (size_t)snprintf(sig, sizeof sig, "%s: ",
					 HT_REQSIG_HEADER_NAME);
	uint64_t now_s = ht_now_wall_ns() / 1000000000u;
	enum ht_err err = ht_reqsig_sign(c->sign_key, c->creds.signing_key_id,
					 method, path, body, len, now_s, NULL,
					 sig + prefix, sizeof sig - prefix, NULL);
	if (err)
		return client_fail(c, err, "%s %s: cannot sign the request: %s",
				   method, path, ht_strerror(err));
	snprintf(url, sizeof url, "%s%s", c->base_url, path);
	static const char *const fixed[] = {"Content-Type: application/json",
					    "Accept: application/json",
					    "Expect:"};
	for (size_t i = 0; i <= sizeof fixed / sizeof fixed[0]; i++) {
		t = curl_slist_append(hdrs, i ? fixed[i - 1] : sig);
		if (!t) {
			err = client_fail(c, HT_ERR_NOMEM, "out of memory");
			goto out;
		}
		hdrs = t;
	}
	SET(CURLOPT_URL, url);
	SET(CURLOPT_HTTPHEADER, hdrs);
	if ((err = set_method(c, h, method, body, len)))
		goto out;
	c->rx.len = 0;
	c->rx_too_big = c->rx_nomem = false;
	c->curl_err[0] = '\0';
	a->cc = curl_easy_perform(h);
	a->status = 0;
	curl_off_t ra = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
	curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra);
	a->retry_after_s = ra > 0 ? (long)(ra < 86400 ? ra : 86400) : 0;
out:
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
	curl_slist_free_all(hdrs);
	return err;
}

/* Failures where the request may not have reached the hub, or its answer
 * was lost: sending it again is the only way to know. */
static bool retryable(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR: /* includes a reset during the handshake */
		return true;
	default:
		return false;
	}
}

/* Sleep before retry number `retry` (1-based): Retry-After when the hub
 * gave one (capped), else exponential backoff with jitter. */
static void backoff(unsigned retry, long retry_after_s)
{
	uint64_t ms;
	if (retry_after_s > 0) {
		uint64_t s = (uint64_t)retry_after_s;
		ms = (s < HT_CLIENT_RETRY_AFTER_S_MAX ? s
						      : HT_CLIENT_RETRY_AFTER_S_MAX) *
		     1000u;
	} else {
		unsigned shift = retry - 1 < 16 ? retry - 1 : 16;
		ms = (uint64_t)HT_CLIENT_BACKOFF_MS_FIRST << shift;
		if (ms > HT_CLIENT_BACKOFF_MS_MAX)
			ms = HT_CLIENT_BACKOFF_MS_MAX;
		uint32_t r = 0;
		if (ht_random(&r, sizeof r) == HT_OK)
			ms = ms / 2 + r % (ms / 2 + 1);
	}
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Copy the code and message of a JSON error body (status >= 400) into
 * code and msg (each may be NULL). */
static void parse_error_body(long status, const char *body, size_t len,
			     char *code, size_t code_size, char *msg,
			     size_t msg_size)
{
	if (status < 400 || len == 0 || len > ERROR_BODY_BYTES_MAX)
		return;
	json_error_t je;
	json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!v)
		return;
	const json_t *jc = json_object_get(v, "code");
	const json_t *jm = json_object_get(v, "message");
	if (code && json_is_string(jc))
		snprintf(code, code_size, "%s", json_string_value(jc));
	if (msg && json_is_string(jm))
		snprintf(msg, msg_size, "%s", json_string_value(jm));
	json_decref(v);
}

/*
 * A 401 replayed_nonce can only answer a header this client sent twice:
 * libcurl resends a request by itself, same header and all, when a reused
 * keep-alive connection dies before any answer, and the hub may have read
 * the first copy. The request is then signed anew and sent again (safe:
 * the ids make creates idempotent).
 */
static bool replayed_nonce(const struct ht_client *c, long status)
{
	char code[HT_CLIENT_CODE_BYTES] = "";
	if (status != 401)
		return false;
	parse_error_body(status, c->rx.data, c->rx.len, code, sizeof code, NULL,
			 0);
	return !strcmp(code, "replayed_nonce");
}

/* Hand the received body over to r. */
static enum ht_err take_body(struct ht_client *c, long status,
			     struct ht_client_response *r)
{
	r->status = status;
	if (c->rx.data) {
		r->body = c->rx.data;
		r->body_len = c->rx.len;
		memset(&c->rx, 0, sizeof c->rx);
	} else if (!(r->body = calloc(1, 1))) {
		memset(r, 0, sizeof *r);
		return client_fail(c, HT_ERR_NOMEM, "out of memory");
	}
	parse_error_body(r->status, r->body, r->body_len, r->code,
			 sizeof r->code, r->message, sizeof r->message);
	return HT_OK;
}

static bool method_ok(const char *m)
{
	size_t n = strlen(m);
	if (n == 0 || n > HT_REQSIG_METHOD_BYTES_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (m[i] < 'A' || m[i] > 'Z')
			return false;
	return true;
}

static bool path_ok(const char *p)
{
	size_t n = strlen(p);
	if (n == 0 || n > HT_REQSIG_PATH_BYTES_MAX || p[0] != '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e)
			return false;
	return true;
}

enum ht_err ht_client_call(struct ht_client *c, const char *method,
			   const char *path, const void *body, size_t len,
			   struct ht_client_response *r)
{
	HT_ASSERT(c != NULL && r != NULL);
	memset(r, 0, sizeof *r);
	c->err[0] = '\0';
	if (!method || !path || !method_ok(method) || !path_ok(path) ||
	    (len && !body))
		return client_fail(c, HT_ERR_INVALID,
				   "bad request line: method must be 1..16"
				   " uppercase letters, path a visible-ASCII"
				   " target beginning with '/'");
	if (!c->curl)
		return client_fail(c, HT_ERR_IO, "%s %s: offline client", method,
				   path);
	for (unsigned n = 0;; n++) {
		struct attempt a = {0};
		enum ht_err err = attempt_once(c, method, path, body, len, &a);
		if (err)
			return err;
		bool again = a.status == 503 || replayed_nonce(c, a.status);
		if (a.cc == CURLE_OK && (!again || n == c->retries)) {
			r->attempts = n + 1;
			return take_body(c, a.status, r);
		}
		if (c->rx_too_big || a.cc == CURLE_FILESIZE_EXCEEDED)
			return client_fail(c, HT_ERR_LIMIT,
					   "%s %s: answer larger than %u bytes",
					   method, path, HT_CLIENT_BODY_BYTES_MAX);
		if (c->rx_nomem)
			return client_fail(c, HT_ERR_NOMEM, "out of memory");
		if (a.cc != CURLE_OK && (!retryable(a.cc) || n == c->retries))
			return client_fail(c, HT_ERR_IO,
					   "%s %s: no answer after %u attempt%s:"
					   " %s", method, path, n + 1,
					   n ? "s" : "",
					   c->curl_err[0] ? c->curl_err
							  : curl_easy_strerror(a.cc));
		backoff(n + 1, a.cc == CURLE_OK ? a.retry_after_s : 0);
	}
}

enum ht_err client_status_error(struct ht_client *c, const char *what,
				const struct ht_client_response *r)
{
	enum ht_err err = HT_ERR_IO;
	switch (r->status) {
	case 400:
	case 401:
	case 403:
	case 405:
		err = HT_ERR_INVALID;
		break;
	case 404:
		err = HT_ERR_NOT_FOUND;
		break;
	case 413:
		err = HT_ERR_LIMIT;
		break;
	}
	return client_fail(c, err, "%s: %ld %s: %s", what, r->status,
			   r->code[0] ? r->code : "(no error code)",
			   r->message[0] ? r->message : "(no message)");
}

/* ---- the hub journal key ---------------------------------------------------- */

/* {"sign":"sm2","public_key":"PEM"} into c->hub_key. */
static enum ht_err read_key(struct ht_client *c, const char *body, size_t len)
{
	json_error_t je;
	json_t *v = len <= KEY_BODY_BYTES_MAX
			    ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je)
			    : NULL;
	const json_t *sign = json_object_get(v, "sign");
	const json_t *pem = json_object_get(v, "public_key");
	enum ht_sign_alg alg = 0;
	enum ht_err err = HT_ERR_CORRUPT;
	struct ht_key *key = NULL;
	if (json_is_string(sign) && json_is_string(pem) &&
	    ht_sign_alg_parse(json_string_value(sign), &alg) == HT_OK &&
	    ht_key_from_pem(json_string_value(pem), json_string_length(pem),
			    NULL, &key) == HT_OK)
		err = ht_key_alg(key) == alg ? HT_OK : HT_ERR_VERIFY;
	json_decref(v);
	if (err) {
		ht_key_destroy(key);
		return client_fail(c, err, "GET /v1/journal/key: %s",
				   err == HT_ERR_VERIFY
					   ? "the key is not of the algorithm named"
					   : "not {\"sign\":…,\"public_key\":PEM}");
	}
	c->hub_key = key;
	return HT_OK;
}

enum ht_err client_hub_key(struct ht_client *c)
{
	if (c->hub_key)
		return HT_OK;
	struct ht_client_response r;
	enum ht_err err = ht_client_call(c, "GET", "/v1/journal/key", NULL, 0, &r);
	if (!err && r.status != 200)
		err = client_status_error(c, "GET /v1/journal/key", &r);
	if (!err)
		err = read_key(c, r.body, r.body_len);
	ht_client_response_clear(&r);
	return err;
}

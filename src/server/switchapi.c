/*
 * switchapi.c — the alias directory and the token vault over the API
 * (docs/api.md "Aliases and tokens"): POST /v1/aliases, /v1/aliases/lookup,
 * /v1/aliases/update, /v1/aliases/remove; POST /v1/tokens, GET
 * /v1/tokens/{token}, POST /v1/tokens/{token}/detokenize|suspend|resume|
 * delete.
 *
 * Owner: server. What it owns: the open directory and vault (DATA/alias.db,
 * DATA/vault.db) and the locks that make their one-thread contracts hold on
 * the HTTP workers: a read-write lock for the directory (lookups share it),
 * a mutex for the vault. The handlers run on the worker that read the
 * request (neither store is the hub's ledger: the hub thread is not
 * involved); a change waits for its own fsync. It never sees a number or
 * an alias in clear beyond the request being handled, and never logs one:
 * values travel in bodies, not paths, so the access log does not hold them
 * either (token paths hold tokens, which are not secret).
 */
#include "srv.h"
#include "jsonin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "huitong/alias.h"
#include "huitong/vault.h"

struct switchsvc {
	struct ht_alias_dir *aliases;
	pthread_rwlock_t alias_lock;
	struct ht_vault *vault;
	pthread_mutex_t vault_lock;
};

enum ht_err switchapi_open(struct server *s)
{
	struct switchsvc *w = calloc(1, sizeof *w);
	if (!w)
		return HT_ERR_NOMEM;
	char err[512] = "";
	enum ht_err rc = ht_alias_open(s->o.data, &w->aliases, err, sizeof err);
	if (rc) {
		fprintf(stderr, "huitong serve: the alias directory: %s\n",
			err[0] ? err : ht_strerror(rc));
		free(w);
		return rc;
	}
	rc = ht_vault_open(s->o.data, &w->vault, err, sizeof err);
	if (rc) {
		fprintf(stderr, "huitong serve: the token vault: %s\n",
			err[0] ? err : ht_strerror(rc));
		ht_alias_close(w->aliases);
		free(w);
		return rc;
	}
	pthread_rwlock_init(&w->alias_lock, NULL);
	pthread_mutex_init(&w->vault_lock, NULL);
	s->sw = w;
	return HT_OK;
}

void switchapi_close(struct server *s)
{
	struct switchsvc *w = s->sw;
	if (!w)
		return;
	ht_alias_close(w->aliases);
	ht_vault_close(w->vault);
	pthread_rwlock_destroy(&w->alias_lock);
	pthread_mutex_destroy(&w->vault_lock);
	free(w);
	s->sw = NULL;
}

/* ---- answers ------------------------------------------------------------------------ */

static void sw_fail(struct sw_answer *a, int status, const char *code,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void sw_fail(struct sw_answer *a, int status, const char *code,
		    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(a->message, sizeof a->message, fmt, ap);
	va_end(ap);
	a->status = status;
	a->code = code;
}

/* The body as a JSON object whose members are all among allowed; NULL
 * (and a 400 in a) otherwise. */
static json_t *body_object(const struct sw_request *q, const char *const *allowed,
			   struct sw_answer *a)
{
	json_error_t je;
	json_t *v = json_loadb(q->body, q->body_len, JSON_REJECT_DUPLICATES, &je);
	if (!v) {
		sw_fail(a, 400, "malformed_json", "invalid JSON: %s (byte %d)",
			je.text, je.position);
		return NULL;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		sw_fail(a, 400, "invalid_request", "body: want a JSON object");
		return NULL;
	}
	const char *key = srv_json_unknown(v, allowed);
	if (key) {
		sw_fail(a, 400, "invalid_request", "%s: not a member of this"
			" request", key);
		json_decref(v);
		return NULL;
	}
	return v;
}

/* Member name of v as a string of 1..max bytes, or NULL with a 400. */
static const char *str_member(json_t *v, const char *name, size_t max,
			      bool required, struct sw_answer *a)
{
	json_t *m = json_object_get(v, name);
	if (!m && !required)
		return NULL;
	if (!srv_json_str_ok(m, max)) {
		if (!a->status)
			sw_fail(a, 400, "invalid_request", "%s: a string of 1..%zu"
				" bytes%s", name, max, required ? " (required)" : "");
		return NULL;
	}
	return json_string_value(m);
}

static bool u64_member(json_t *v, const char *name, uint64_t max, uint64_t *out,
		       struct sw_answer *a)
{
	json_t *m = json_object_get(v, name);
	*out = 0;
	if (!m)
		return true;
	if (!json_is_integer(m) || json_integer_value(m) < 0 ||
	    (uint64_t)json_integer_value(m) > max) {
		sw_fail(a, 400, "invalid_request", "%s: an integer 0..%llu", name,
			(unsigned long long)max);
		return false;
	}
	*out = (uint64_t)json_integer_value(m);
	return true;
}

/* ---- aliases ------------------------------------------------------------------------- */

static void alias_change(struct switchsvc *w, const struct sw_request *q,
			 struct sw_answer *a)
{
	static const char *const with_account[] = {"kind", "value", "account", NULL};
	static const char *const without[] = {"kind", "value", NULL};
	bool needs_account = q->route != R_ALIAS_REMOVE && q->route != R_ALIAS_LOOKUP;
	json_t *v = body_object(q, needs_account ? with_account : without, a);
	if (!v)
		return;
	const char *kind_s = str_member(v, "kind", 16, true, a);
	const char *value = str_member(v, "value", HT_ALIAS_VALUE_MAX, true, a);
	const char *account = needs_account
				      ? str_member(v, "account", HT_ALIAS_ACCOUNT_MAX,
						   true, a) : NULL;
	enum ht_alias_kind kind = 0;
	char norm[HT_ALIAS_VALUE_MAX + 1];
	const char *why = NULL;
	if (!a->status && ht_alias_kind_parse(kind_s, strlen(kind_s), &kind))
		sw_fail(a, 400, "invalid_request", "kind: mobile, email,"
			" national_id or merchant_id");
	if (!a->status)
		kind_s = ht_alias_kind_name(kind); /* static: outlives v */
	if (!a->status &&
	    ht_alias_normalise(kind, value, strlen(value), norm, &why))
		sw_fail(a, 400, "invalid_request", "value: want %s", why);
	if (a->status) {
		json_decref(v);
		return;
	}
	size_t len = strlen(value);
	enum ht_err rc;
	if (q->route == R_ALIAS_LOOKUP) {
		struct ht_alias_target t;
		pthread_rwlock_rdlock(&w->alias_lock);
		rc = ht_alias_lookup(w->aliases, kind, value, len, &t);
		pthread_rwlock_unlock(&w->alias_lock);
		if (rc == HT_ERR_NOT_FOUND)
			sw_fail(a, 404, "not_found", "no such %s alias", kind_s);
		else if (rc)
			sw_fail(a, 500, "internal", "lookup: %s", ht_strerror(rc));
		else if (ht_buf_append(&a->body, "{\"participant\":", 15) ||
			 ht_buf_json_string(&a->body, t.participant,
					    strlen(t.participant)) ||
			 ht_buf_append(&a->body, ",\"account\":", 11) ||
			 ht_buf_json_string(&a->body, t.account, strlen(t.account)) ||
			 ht_buf_printf(&a->body, ",\"updated_ms\":%lld}\n",
				       (long long)t.updated_ms))
			sw_fail(a, 500, "internal", "out of memory");
		json_decref(v);
		return;
	}
	pthread_rwlock_wrlock(&w->alias_lock);
	rc = q->route == R_ALIAS_REGISTER
		     ? ht_alias_register(w->aliases, kind, value, len, q->who,
					 account, ht_now_wall_ms())
	     : q->route == R_ALIAS_UPDATE
		     ? ht_alias_update(w->aliases, kind, value, len, q->who,
				       account, ht_now_wall_ms())
		     : ht_alias_remove(w->aliases, kind, value, len, q->who);
	pthread_rwlock_unlock(&w->alias_lock);
	json_decref(v);
	switch (rc) {
	case HT_OK:
		if (ht_buf_printf(&a->body, "{\"result\":\"ok\",\"kind\":\"%s\"}\n",
				  kind_s))
			sw_fail(a, 500, "internal", "out of memory");
		return;
	case HT_ERR_EXISTS:
		return sw_fail(a, 409, "exists", "this %s alias is registered"
			       " already (its owner may update it)", kind_s);
	case HT_ERR_NOT_FOUND:
	case HT_ERR_FORBIDDEN: /* another's: as missing, nothing told */
		return sw_fail(a, 404, "not_found", "no such %s alias of yours",
			       kind_s);
	case HT_ERR_INVALID:
		return sw_fail(a, 400, "invalid_request", "account: printable"
			       " ASCII without spaces");
	case HT_ERR_LIMIT:
		return sw_fail(a, 503, "overloaded", "the alias directory is full");
	default:
		return sw_fail(a, 500, "internal", "alias directory: %s",
			       ht_strerror(rc));
	}
}

/* ---- tokens --------------------------------------------------------------------------- */

static bool token_param(const struct sw_request *q, char *out,
			struct sw_answer *a)
{
	bool ok = q->param_len >= HT_TOKEN_DIGITS_MIN &&
		  q->param_len <= HT_TOKEN_DIGITS_MAX;
	for (size_t i = 0; ok && i < q->param_len; i++)
		ok = q->param[i] >= '0' && q->param[i] <= '9';
	if (!ok) {
		sw_fail(a, 400, "invalid_request", "token: %d..%d digits",
			HT_TOKEN_DIGITS_MIN, HT_TOKEN_DIGITS_MAX);
		return false;
	}
	memcpy(out, q->param, q->param_len);
	out[q->param_len] = '\0';
	return true;
}

static void token_issue(struct switchsvc *w, const struct sw_request *q,
			struct sw_answer *a)
{
	static const char *const allowed[] = {"number", "channels", "merchant",
					      "expires_ms", "max_amount",
					      "max_uses", NULL};
	json_t *v = body_object(q, allowed, a);
	if (!v)
		return;
	struct ht_token_domain d = {0};
	uint64_t exp = 0, amt = 0, uses = 0;
	const char *number = str_member(v, "number", HT_TOKEN_DIGITS_MAX, true, a);
	const char *merchant = str_member(v, "merchant", HT_VAULT_MERCHANT_MAX,
					  false, a);
	json_t *ch = json_object_get(v, "channels");
	if (!a->status && ch && !json_is_array(ch))
		sw_fail(a, 400, "invalid_request", "channels: an array of channel"
			" names");
	size_t i;
	json_t *c;
	json_array_foreach(ch, i, c) {
		enum ht_channel k;
		if (a->status)
			break;
		if (!json_is_string(c) ||
		    ht_channel_parse(json_string_value(c), json_string_length(c), &k))
			sw_fail(a, 400, "invalid_request", "channels[%zu]: one of p2p,"
				" qr, card, transfer, cash_in, cash_out, bill", i);
		else
			d.channels |= 1u << k;
	}
	if (!a->status && u64_member(v, "expires_ms", INT64_MAX, &exp, a) &&
	    u64_member(v, "max_amount", INT64_MAX, &amt, a) &&
	    u64_member(v, "max_uses", UINT32_MAX, &uses, a)) {
		d.expires_ms = (int64_t)exp;
		d.max_amount = amt;
		d.max_uses = (uint32_t)uses;
		snprintf(d.merchant, sizeof d.merchant, "%s", merchant ? merchant : "");
	}
	if (a->status) {
		json_decref(v);
		return;
	}
	char tok[HT_TOKEN_DIGITS_MAX + 1];
	pthread_mutex_lock(&w->vault_lock);
	enum ht_err rc = ht_vault_issue(w->vault, q->who, number, &d, ht_now_wall_ms(), tok);
	pthread_mutex_unlock(&w->vault_lock);
	json_decref(v);
	if (rc == HT_ERR_NOT_FOUND)
		sw_fail(a, 422, "no_token_range", "%s has no token range for a"
			" number of this length (the operator gives ranges:"
			" huitong token range-add)", q->who);
	else if (rc == HT_ERR_INVALID)
		sw_fail(a, 400, "invalid_request", "number: %d..%d digits, not"
			" inside a token range", HT_TOKEN_DIGITS_MIN,
			HT_TOKEN_DIGITS_MAX);
	else if (rc == HT_ERR_LIMIT)
		sw_fail(a, 503, "overloaded", "the token range is nearly full");
	else if (rc)
		sw_fail(a, 500, "internal", "token vault: %s", ht_strerror(rc));
	else if (ht_buf_printf(&a->body, "{\"token\":\"%s\"}\n", tok))
		sw_fail(a, 500, "internal", "out of memory");
}

static void token_detokenize(struct switchsvc *w, const struct sw_request *q,
			     const char *tok, struct sw_answer *a)
{
	static const char *const allowed[] = {"channel", "merchant", "amount", NULL};
	json_t *v = body_object(q, allowed, a);
	if (!v)
		return;
	const char *chs = str_member(v, "channel", 16, true, a);
	const char *merchant = str_member(v, "merchant", HT_VAULT_MERCHANT_MAX,
					  false, a);
	uint64_t amount = 0;
	enum ht_channel ch = HT_CHANNEL_TRANSFER;
	if (!a->status && ht_channel_parse(chs, strlen(chs), &ch))
		sw_fail(a, 400, "invalid_request", "channel: one of p2p, qr, card,"
			" transfer, cash_in, cash_out, bill");
	if (!a->status)
		u64_member(v, "amount", UINT64_MAX, &amount, a);
	if (a->status) {
		json_decref(v);
		return;
	}
	/* the operator acts as the hub's router */
	struct ht_token_use u = {.requester = q->who,
				 .router = q->role == HT_PKI_ROLE_OPERATOR,
				 .channel = ch, .merchant = merchant,
				 .amount = amount, .now_ms = ht_now_wall_ms()};
	char num[HT_TOKEN_DIGITS_MAX + 1];
	enum ht_token_refusal why;
	pthread_mutex_lock(&w->vault_lock);
	enum ht_err rc = ht_vault_detokenize(w->vault, tok, &u, num, &why);
	pthread_mutex_unlock(&w->vault_lock);
	json_decref(v);
	if (rc)
		sw_fail(a, 500, "internal", "token vault: %s", ht_strerror(rc));
	else if (why == HT_TOKEN_NOT_FOUND || why == HT_TOKEN_FORBIDDEN)
		/* another's token: as missing (the attempt is recorded as
		 * forbidden) */
		sw_fail(a, 404, "not_found", "no token %s of yours", tok);
	else if (why)
		sw_fail(a, 422, ht_token_refusal_name(why), "token %s: %s", tok,
			ht_token_refusal_name(why));
	else if (ht_buf_printf(&a->body, "{\"token\":\"%s\",\"number\":\"%s\"}\n",
			       tok, num))
		sw_fail(a, 500, "internal", "out of memory");
	memset(num, 0, sizeof num);
}

static void token_info(struct switchsvc *w, const struct sw_request *q,
		       const char *tok, struct sw_answer *a)
{
	struct ht_token_info t;
	pthread_mutex_lock(&w->vault_lock);
	enum ht_err rc = ht_vault_get(w->vault, tok, &t);
	pthread_mutex_unlock(&w->vault_lock);
	bool all = q->role == HT_PKI_ROLE_OPERATOR ||
		   q->role == HT_PKI_ROLE_REGULATOR;
	if (rc == HT_ERR_NOT_FOUND || (!rc && !all && strcmp(t.participant, q->who)))
		return sw_fail(a, 404, "not_found", "no token %s%s", tok,
			       all ? "" : " of yours");
	if (rc)
		return sw_fail(a, 500, "internal", "token vault: %s",
			       ht_strerror(rc));
	enum ht_err e = ht_buf_printf(&a->body, "{\"token\":\"%s\",\"participant\":",
				      t.token);
	if (!e)
		e = ht_buf_json_string(&a->body, t.participant, strlen(t.participant));
	if (!e)
		e = ht_buf_printf(&a->body, ",\"state\":\"%s\",\"channels\":[",
				  ht_token_state_name(t.state));
	for (int c = 0, n = 0; !e && c < HT_CHANNEL__COUNT; c++)
		if (t.domain.channels & (1u << c))
			e = ht_buf_printf(&a->body, "%s\"%s\"", n++ ? "," : "",
					  ht_channel_name((enum ht_channel)c));
	if (!e)
		e = ht_buf_append(&a->body, "],\"merchant\":", 13);
	if (!e)
		e = ht_buf_json_string(&a->body, t.domain.merchant,
				       strlen(t.domain.merchant));
	if (!e)
		e = ht_buf_printf(&a->body, ",\"expires_ms\":%lld,\"max_amount\":%llu,"
					    "\"max_uses\":%u,\"uses\":%u,"
					    "\"created_ms\":%lld}\n",
				  (long long)t.domain.expires_ms,
				  (unsigned long long)t.domain.max_amount,
				  t.domain.max_uses, t.uses, (long long)t.created_ms);
	if (e)
		sw_fail(a, 500, "internal", "out of memory");
}

static void token_state(struct switchsvc *w, const struct sw_request *q,
			const char *tok, struct sw_answer *a)
{
	if (q->body_len && !(q->body_len == 2 && !memcmp(q->body, "{}", 2)))
		return sw_fail(a, 400, "invalid_request", "body: empty or {}");
	enum ht_token_state st = q->route == R_TOKEN_SUSPEND ? HT_TOKEN_SUSPENDED
				 : q->route == R_TOKEN_RESUME ? HT_TOKEN_ACTIVE
							       : HT_TOKEN_DELETED;
	pthread_mutex_lock(&w->vault_lock);
	enum ht_err rc = ht_vault_set_state(w->vault, tok, q->who,
					    q->role == HT_PKI_ROLE_OPERATOR, st);
	pthread_mutex_unlock(&w->vault_lock);
	if (rc == HT_ERR_NOT_FOUND || rc == HT_ERR_FORBIDDEN)
		sw_fail(a, 404, "not_found", "no token %s of yours", tok);
	else if (rc == HT_ERR_INVALID)
		sw_fail(a, 409, "invalid_state", "token %s cannot become %s from"
			" its state", tok, ht_token_state_name(st));
	else if (rc)
		sw_fail(a, 500, "internal", "token vault: %s", ht_strerror(rc));
	else if (ht_buf_printf(&a->body, "{\"token\":\"%s\",\"state\":\"%s\"}\n",
			       tok, ht_token_state_name(st)))
		sw_fail(a, 500, "internal", "out of memory");
}

void switchapi_handle(struct server *s, const struct sw_request *q,
		      struct sw_answer *a)
{
	struct switchsvc *w = s->sw;
	char tok[HT_TOKEN_DIGITS_MAX + 1];
	a->status = 0;
	if (!w)
		return sw_fail(a, 503, "shutting_down", "the switch is not open");
	switch (q->route) {
	case R_ALIAS_REGISTER:
	case R_ALIAS_LOOKUP:
	case R_ALIAS_UPDATE:
	case R_ALIAS_REMOVE:
		alias_change(w, q, a);
		break;
	case R_TOKEN_ISSUE:
		token_issue(w, q, a);
		break;
	case R_TOKEN_GET:
		if (token_param(q, tok, a))
			token_info(w, q, tok, a);
		break;
	case R_TOKEN_DETOKENIZE:
		if (token_param(q, tok, a))
			token_detokenize(w, q, tok, a);
		break;
	case R_TOKEN_SUSPEND:
	case R_TOKEN_RESUME:
	case R_TOKEN_DELETE:
		if (token_param(q, tok, a))
			token_state(w, q, tok, a);
		break;
	default:
		sw_fail(a, 500, "internal", "not a switch route");
	}
	if (!a->status)
		a->status = 200;
}

/* ---- for the payment flow (payments.c) -------------------------------------------- */

enum ht_err switchapi_alias_resolve(struct server *s, enum ht_alias_kind kind,
				    const char *value, size_t len,
				    struct ht_alias_target *out)
{
	struct switchsvc *w = s->sw;
	if (!w)
		return HT_ERR_NOT_FOUND;
	pthread_rwlock_rdlock(&w->alias_lock);
	enum ht_err rc = ht_alias_lookup(w->aliases, kind, value, len, out);
	pthread_rwlock_unlock(&w->alias_lock);
	return rc;
}

enum ht_err switchapi_token_owner(struct server *s, const char *token,
				  char participant[HT_VAULT_PARTICIPANT_MAX + 1],
				  enum ht_token_state *state)
{
	struct switchsvc *w = s->sw;
	struct ht_token_info t;
	if (!w)
		return HT_ERR_NOT_FOUND;
	pthread_mutex_lock(&w->vault_lock);
	enum ht_err rc = ht_vault_get(w->vault, token, &t);
	pthread_mutex_unlock(&w->vault_lock);
	if (!rc) {
		memcpy(participant, t.participant, sizeof t.participant);
		*state = t.state;
	}
	return rc;
}

enum ht_err switchapi_token_route(struct server *s, const char *token,
				  const char *issuer, const struct ht_token_use *u,
				  char owner[HT_VAULT_PARTICIPANT_MAX + 1],
				  enum ht_token_refusal *why)
{
	struct switchsvc *w = s->sw;
	char num[HT_TOKEN_DIGITS_MAX + 1];
	struct ht_token_info t;
	if (!w)
		return HT_ERR_NOT_FOUND;
	pthread_mutex_lock(&w->vault_lock);
	enum ht_err rc = ht_vault_get(w->vault, token, &t);
	if (!rc && issuer && strcmp(t.participant, issuer))
		rc = HT_ERR_FORBIDDEN; /* not tried: nothing to record */
	if (!rc)
		rc = ht_vault_detokenize(w->vault, token, u, num, why);
	pthread_mutex_unlock(&w->vault_lock);
	memset(num, 0, sizeof num); /* routing needs the participant only */
	if (!rc)
		memcpy(owner, t.participant, sizeof t.participant);
	return rc;
}

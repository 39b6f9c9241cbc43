/*
 * payments.c — the switch's payment flow and the operator's liquidity API
 * (issue 5, items 1 and 5; docs/switch.md, docs/api.md "Payments"):
 *
 *   POST /v1/payments                 pay: resolve, risk, liquidity, prepare
 *   GET  /v1/payments/inbox           the payments awaiting my decision
 *   POST /v1/payments/{id}/accept     commit (post the reservation)
 *   POST /v1/payments/{id}/reject     void it
 *   POST /v1/payments/decisions       many decisions in one request
 *   GET  /v1/payments/{id}            status
 *   POST /v1/liquidity                operator: setup cap fund defund
 *                                     suspend resume
 *   GET  /v1/liquidity/{participant}  a position
 *
 * Owner: server. A payment IS a pending transfer between the payer's and
 * the payee's participants' position accounts (liquidity.h), with its
 * state in the ledger: open (awaiting acceptance), posted (committed),
 * voided (rejected), expired (the timeout voided it). Every change of
 * state is a journal leaf, refusals included (risk_blocked,
 * net_debit_cap_exceeded, participant_suspended burn the id). The
 * payment's id is derived from (caller, client_id), so a retry with the
 * same client id is the same transfer: the ledger answers `exists` and
 * nothing moves twice. The transfer's user_data holds the reference the
 * deciding participant needs (the payee's merchant or account reference,
 * or for a consumer-presented code the payer's token); code 9201 marks a
 * payment the payee's participant accepts, 9202 one the payer's does.
 *
 * Threads: resolution (aliases, tokens, QR codes: switchapi.c's locks)
 * runs on the worker that read the request; the liquidity check, the
 * prepare, the decisions and the inbox run on the hub thread, so a check
 * and the reservation it allows are never separated by another payment.
 */
#include "srv.h"
#include "jsonin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "huitong/crypto.h"
#include "huitong/iso20022.h"
#include "huitong/journal.h"
#include "huitong/liquidity.h"
#include "huitong/qr.h"

#define TIMEOUT_DEFAULT_S 30
#define TIMEOUT_MAX_S 3600
#define INBOX_DEFAULT 100
#define INBOX_MAX 1000
#define INBOX_WAIT_MAX_MS 30000
#define HUB_GUI "cn.huitong" /* our merchant account template's 00 */

enum pay_state {
	PAY_NONE = 0,
	PAY_AWAITING,   /* "awaiting_acceptance" */
	PAY_HELD,       /* "held_for_review": the operator decides */
	PAY_COMMITTED,  /* "committed" */
	PAY_REJECTED,   /* "rejected" */
	PAY_EXPIRED,    /* "expired": the timeout voided it */
	PAY_REFUSED,    /* "refused": never reserved */
};

static const char *state_name(enum pay_state st)
{
	switch (st) {
	case PAY_AWAITING: return "awaiting_acceptance";
	case PAY_HELD: return "held_for_review";
	case PAY_COMMITTED: return "committed";
	case PAY_REJECTED: return "rejected";
	case PAY_EXPIRED: return "expired";
	case PAY_REFUSED: return "refused";
	default: return "unknown";
	}
}

/* One payment awaiting a decision: the inbox, hub thread only. Closed
 * ones are dropped when the inbox is read. */
struct inbox_item {
	ht_u128 id;
	char awaited[HT_PKI_ID_BYTES_MAX + 1];
};

struct paysvc {
	struct ht_liq *liq;
	struct inbox_item *items;
	size_t n, cap;
	struct job *parked;         /* long polls waiting, oldest first */
	bool fresh;                 /* payments entered the inbox since the
				       parked ones were last looked at */
};

/* src into dst[size], cut to fit (callers checked the lengths that
 * matter), NUL-terminated. */
static void set_str(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static bool is_payment(const struct ht_transfer *t)
{
	return t && (t->flags & HT_TRANSFER_PENDING) &&
	       (t->code == HT_LIQ_CODE_PAYMENT ||
		t->code == HT_LIQ_CODE_PAYMENT_PULL);
}

static const char *owner_of(struct server *s, ht_u128 account)
{
	const char *o = ht_hub_account_owner(s->hub, account);
	return o ? o : "";
}

/* Who decides payment t: the payee's participant, or for a pull the
 * payer's. */
static const char *awaited_of(struct server *s, const struct ht_transfer *t)
{
	return owner_of(s, t->code == HT_LIQ_CODE_PAYMENT_PULL
				   ? t->debit_account_id
				   : t->credit_account_id);
}

static enum ht_err inbox_add(struct paysvc *p, ht_u128 id, const char *awaited)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 1024;
		struct inbox_item *it = realloc(p->items, cap * sizeof *it);
		if (!it)
			return HT_ERR_NOMEM;
		p->items = it;
		p->cap = cap;
	}
	struct inbox_item *it = &p->items[p->n++];
	it->id = id;
	set_str(it->awaited, sizeof it->awaited, awaited);
	return HT_OK;
}

struct rebuild {
	struct server *s;
	enum ht_err err;
};

static int rebuild_one(void *ctx, const struct ht_transfer *t)
{
	struct rebuild *r = ctx;
	if (!is_payment(t))
		return 0;
	r->err = inbox_add(r->s->pay, t->id, awaited_of(r->s, t));
	return r->err != HT_OK;
}

enum ht_err payments_open(struct server *s)
{
	struct paysvc *p = calloc(1, sizeof *p);
	if (!p)
		return HT_ERR_NOMEM;
	char err[512] = "";
	enum ht_err rc = ht_liq_open(s->o.data, s->hub, &p->liq, err, sizeof err);
	if (rc) {
		fprintf(stderr, "huitong serve: DATA/switch.db: %s\n",
			err[0] ? err : ht_strerror(rc));
		free(p);
		return rc;
	}
	s->pay = p;
	struct rebuild r = {s, HT_OK};
	ht_ledger_pending_each(ht_hub_ledger(s->hub), rebuild_one, &r);
	if (r.err)
		payments_close(s);
	return r.err;
}

void payments_close(struct server *s)
{
	struct paysvc *p = s->pay;
	if (!p)
		return;
	ht_liq_close(p->liq);
	free(p->items);
	free(p);
	s->pay = NULL;
}

/* ---- the worker: reading and resolving ---------------------------------------------- */

struct rd {
	struct server *s;
	struct job *j;
	int *status;
	const char **code;
	char *msg;
	size_t size;
};

static bool refuse_req(struct rd *r, int status, const char *code,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static bool refuse_req(struct rd *r, int status, const char *code,
		       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->msg, r->size, fmt, ap);
	va_end(ap);
	*r->status = status;
	*r->code = code;
	return false;
}

/* One payment refused before the ledger. */
static void refuse_item(struct job_payment *p, int status, const char *code,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void refuse_item(struct job_payment *p, int status, const char *code,
			const char *fmt, ...)
{
	if (p->code)
		return; /* the first reason stands */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->message, sizeof p->message, fmt, ap);
	va_end(ap);
	p->status = status;
	p->code = code;
}

/* A string member of 1..max bytes without NUL: its value, NULL when
 * absent; *bad when present but not such a string. */
static const char *str_of(json_t *o, const char *name, size_t max, bool *bad)
{
	json_t *m = json_object_get(o, name);
	if (!m)
		return NULL;
	if (!srv_json_str_ok(m, max)) {
		*bad = true;
		return NULL;
	}
	return json_string_value(m);
}

/* An amount: a decimal string or a non-negative JSON integer. */
static bool amount_of(json_t *m, uint64_t *out)
{
	if (json_is_integer(m) && json_integer_value(m) > 0) {
		*out = (uint64_t)json_integer_value(m);
		return true;
	}
	if (!json_is_string(m))
		return false;
	const char *v = json_string_value(m);
	size_t n = json_string_length(m);
	if (n == 0 || n > 20)
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i] < '0' || v[i] > '9')
			return false;
	return ht_u64_parse(v, n, out) == HT_OK && *out > 0;
}

/* A reference a participant gave: printable ASCII without spaces or
 * quotes, 1..PAY_REF_MAX bytes. */
static bool ref_ok(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n > PAY_REF_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i] <= ' ' || v[i] > '~' || v[i] == '"' || v[i] == '\\')
			return false;
	return true;
}

static bool client_id_ok(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n > PAY_CLIENT_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.' || c == ':'))
			return false;
	}
	return true;
}

/* "participant:reference" of our merchant account template into p's
 * payee, from a valid merchant-presented payload. */
static void payee_from_qr(struct job_payment *p, const char *payload,
			  uint64_t *qr_amount, uint32_t *qr_currency)
{
	struct ht_qr_mpm m;
	if (ht_qr_mpm_parse(payload, strlen(payload), &m) != HT_QR_OK)
		return refuse_item(p, 422, "invalid_code", "payee.qr: %s",
				   ht_qr_error_name(m.error));
	const struct ht_qr_field *acct = NULL;
	for (int id = 26; id <= 51 && !acct; id++) {
		const struct ht_qr_field *t = ht_qr_mpm_get(&m, id);
		const struct ht_qr_field *gui = t ? ht_qr_mpm_sub(&m, t, 0) : NULL;
		if (gui && gui->size == strlen(HUB_GUI) &&
		    !memcmp(payload + gui->offset, HUB_GUI, gui->size))
			acct = ht_qr_mpm_sub(&m, t, 1);
	}
	if (!acct)
		return refuse_item(p, 422, "unroutable", "payee.qr: no merchant"
				   " account of template 26-51 with 00 = \""
				   HUB_GUI "\" and 01 = participant:reference");
	char v[128];
	if (acct->size >= sizeof v)
		return refuse_item(p, 422, "unroutable", "payee.qr: merchant"
				   " account too long");
	memcpy(v, payload + acct->offset, acct->size);
	v[acct->size] = '\0';
	char *colon = strchr(v, ':');
	if (!colon || colon == v || !ht_owner_valid(v, (size_t)(colon - v)) ||
	    (size_t)(colon - v) > HT_LIQ_PARTICIPANT_MAX || !ref_ok(colon + 1))
		return refuse_item(p, 422, "unroutable", "payee.qr: merchant"
				   " account '%.64s' is not participant:reference"
				   " (reference 1..%d printable bytes)", v,
				   PAY_REF_MAX);
	*colon = '\0';
	set_str(p->payee_p, sizeof p->payee_p, v);
	set_str(p->payee_ref, sizeof p->payee_ref, colon + 1);
	const struct ht_qr_field *f = ht_qr_mpm_get(&m, 54);
	if (f) {
		char a[32];
		/* "12.50": minor units with the decimals given (at most 2) */
		size_t n = f->size < sizeof a ? f->size : sizeof a - 1;
		memcpy(a, payload + f->offset, n);
		a[n] = '\0';
		uint64_t whole = 0, frac = 0;
		int fd = 0;
		bool dot = false, ok = n > 0;
		for (size_t i = 0; i < n && ok; i++) {
			if (a[i] == '.' && !dot) {
				dot = true;
			} else if (a[i] >= '0' && a[i] <= '9') {
				if (dot) {
					ok = ++fd <= 2;
					frac = frac * 10 + (uint64_t)(a[i] - '0');
				} else {
					ok = whole < UINT64_MAX / 1000;
					whole = whole * 10 + (uint64_t)(a[i] - '0');
				}
			} else {
				ok = false;
			}
		}
		while (ok && fd++ < 2)
			frac *= 10;
		if (!ok)
			return refuse_item(p, 422, "invalid_code", "payee.qr: an"
					   " amount (54) with more than 2"
					   " decimals");
		*qr_amount = whole * 100 + frac;
	}
	f = ht_qr_mpm_get(&m, 53);
	if (f && f->size == 3) {
		const char *c = payload + f->offset;
		*qr_currency = (uint32_t)((c[0] - '0') * 100 + (c[1] - '0') * 10 +
					  (c[2] - '0'));
	}
}

/* The payment token a consumer-presented code carries (5A, or 57 up to
 * its separator) into tok; false when none fits. */
static bool token_from_cpm(const struct ht_qr_cpm *c,
			   char tok[HT_TOKEN_DIGITS_MAX + 1])
{
	for (size_t i = 0; i < c->count; i++) {
		const struct ht_qr_tlv *t = &c->tlv[i];
		if (t->tag != 0x5A && t->tag != 0x57)
			continue;
		size_t n = 0;
		for (size_t k = 0; k < 2u * t->size; k++) {
			uint8_t b = c->data[t->offset + k / 2];
			unsigned d = k % 2 ? b & 0xf : b >> 4;
			if (d > 9)
				break; /* F padding, or track 2's D */
			if (n == HT_TOKEN_DIGITS_MAX)
				return false;
			tok[n++] = (char)('0' + d);
		}
		tok[n] = '\0';
		return n >= HT_TOKEN_DIGITS_MIN;
	}
	return false;
}

/* {"kind":"mobile","value":"+86…"} into target. */
static void alias_of(struct rd *r, struct job_payment *p, json_t *a,
		     const char *side, struct ht_alias_target *target)
{
	static const char *const allowed[] = {"kind", "value", NULL};
	bool bad = !json_is_object(a) || srv_json_unknown(a, allowed);
	const char *kind_s = bad ? NULL : str_of(a, "kind", 16, &bad);
	const char *value = bad ? NULL : str_of(a, "value", HT_ALIAS_VALUE_MAX,
						&bad);
	enum ht_alias_kind kind;
	if (bad || !kind_s || !value ||
	    ht_alias_kind_parse(kind_s, strlen(kind_s), &kind))
		return refuse_item(p, 400, "invalid_request", "%s.alias: want"
				   " {\"kind\":mobile|email|national_id|"
				   "merchant_id,\"value\":\"…\"}", side);
	enum ht_err rc = switchapi_alias_resolve(r->s, kind, value,
						 strlen(value), target);
	if (rc == HT_ERR_NOT_FOUND)
		return refuse_item(p, 404, "alias_not_found", "%s.alias: no %s"
				   " alias with that value", side, kind_s);
	if (rc)
		return refuse_item(p, 500, "internal", "%s.alias: %s", side,
				   ht_strerror(rc));
	if (!ref_ok(target->account))
		return refuse_item(p, 422, "reference_too_long", "%s.alias: its"
				   " account reference is longer than %d bytes",
				   side, PAY_REF_MAX);
}

/* Exactly one of the forms in allowed, an object: its name, or NULL with
 * the item refused. */
static const char *one_form(struct job_payment *p, json_t *o, const char *side,
			    const char *const *allowed, const char *want)
{
	if (!json_is_object(o) || json_object_size(o) != 1 ||
	    srv_json_unknown(o, allowed)) {
		refuse_item(p, 400, "invalid_request", "%s: want an object with"
			    " one of %s", side, want);
		return NULL;
	}
	return json_object_iter_key(json_object_iter(o));
}

static void resolve_payee(struct rd *r, struct job_payment *p, json_t *o,
			  uint64_t *qr_amount, uint32_t *qr_currency)
{
	static const char *const forms[] = {"qr", "alias", "token", "account",
					    NULL};
	const char *form = one_form(p, o, "payee", forms,
				    "qr, alias, token, account");
	if (!form)
		return;
	json_t *v = json_object_get(o, form);
	bool bad = false;
	if (!strcmp(form, "alias")) {
		struct ht_alias_target t;
		alias_of(r, p, v, "payee", &t);
		if (p->code)
			return;
		set_str(p->payee_p, sizeof p->payee_p, t.participant);
		set_str(p->payee_ref, sizeof p->payee_ref, t.account);
		p->risk.channel = HT_CHANNEL_P2P;
		return;
	}
	const char *sv = json_is_string(v) ? str_of(o, form, 4096, &bad) : NULL;
	if (!sv)
		return refuse_item(p, 400, "invalid_request", "payee.%s: a"
				   " non-empty string", form);
	if (!strcmp(form, "qr")) {
		payee_from_qr(p, sv, qr_amount, qr_currency);
		p->risk.channel = HT_CHANNEL_QR;
	} else if (!strcmp(form, "token")) {
		enum ht_token_state st;
		char owner[HT_VAULT_PARTICIPANT_MAX + 1];
		if (strlen(sv) > HT_TOKEN_DIGITS_MAX ||
		    switchapi_token_owner(r->s, sv, owner, &st))
			return refuse_item(p, 404, "token_not_found",
					   "payee.token: no such token");
		if (st != HT_TOKEN_ACTIVE)
			return refuse_item(p, 422, "token_refused", "payee.token:"
					   " %s", ht_token_state_name(st));
		set_str(p->payee_p, sizeof p->payee_p, owner);
		set_str(p->payee_ref, sizeof p->payee_ref, sv);
		p->risk.channel = HT_CHANNEL_TRANSFER;
	} else { /* account: the caller's own customer or merchant */
		if (!ref_ok(sv))
			return refuse_item(p, 400, "invalid_request", "payee."
					   "account: 1..%d printable bytes",
					   PAY_REF_MAX);
		set_str(p->payee_p, sizeof p->payee_p, r->j->who);
		set_str(p->payee_ref, sizeof p->payee_ref, sv);
		p->risk.channel = HT_CHANNEL_QR;
	}
}

static void resolve_payer(struct rd *r, struct job_payment *p, json_t *o)
{
	static const char *const forms[] = {"account", "token", "alias", "cpm",
					    NULL};
	const char *form = one_form(p, o, "payer", forms,
				    "account, token, alias, cpm");
	if (!form)
		return;
	json_t *v = json_object_get(o, form);
	bool bad = false;
	const char *who = r->j->who;
	if (!strcmp(form, "alias")) {
		struct ht_alias_target t;
		alias_of(r, p, v, "payer", &t);
		if (p->code)
			return;
		if (strcmp(t.participant, who))
			return refuse_item(p, 403, "forbidden", "payer.alias: not"
					   " a customer of %s (a participant"
					   " pays only from its own)", who);
		set_str(p->payer_p, sizeof p->payer_p, who);
		set_str(p->payer_ref, sizeof p->payer_ref, t.account);
		return;
	}
	const char *sv = json_is_string(v) ? str_of(o, form, 4096, &bad) : NULL;
	if (!sv)
		return refuse_item(p, 400, "invalid_request", "payer.%s: a"
				   " non-empty string", form);
	if (!strcmp(form, "account")) {
		if (!ref_ok(sv))
			return refuse_item(p, 400, "invalid_request", "payer."
					   "account: 1..%d printable bytes",
					   PAY_REF_MAX);
		set_str(p->payer_p, sizeof p->payer_p, who);
		set_str(p->payer_ref, sizeof p->payer_ref, sv);
		return;
	}
	char tok[HT_TOKEN_DIGITS_MAX + 1];
	if (!strcmp(form, "cpm")) {
		struct ht_qr_cpm *c = malloc(sizeof *c);
		if (!c)
			return refuse_item(p, 500, "internal", "out of memory");
		enum ht_qr_error e = ht_qr_cpm_parse(sv, strlen(sv), c);
		bool got = !e && token_from_cpm(c, tok);
		free(c);
		if (e)
			return refuse_item(p, 422, "invalid_code", "payer.cpm:"
					   " %s", ht_qr_error_name(e));
		if (!got)
			return refuse_item(p, 422, "invalid_code", "payer.cpm: no"
					   " payment token (5A or 57)");
		p->pull = true;
		p->risk.channel = HT_CHANNEL_QR;
	} else {
		if (strlen(sv) > HT_TOKEN_DIGITS_MAX)
			return refuse_item(p, 404, "token_not_found",
					   "payer.token: no such token");
		snprintf(tok, sizeof tok, "%s", sv);
	}
	/* the router's detokenisation: the domain decides (merchant: the
	 * payee as participant:reference); a credit payment's token must be
	 * the caller's own */
	char merchant[HT_PKI_ID_BYTES_MAX + PAY_REF_MAX + 2];
	snprintf(merchant, sizeof merchant, "%s:%s", p->payee_p, p->payee_ref);
	struct ht_token_use u = {.requester = who, .router = true,
				 .channel = p->risk.channel, .merchant = merchant,
				 .amount = p->amount, .now_ms = ht_now_wall_ms()};
	enum ht_token_refusal why = HT_TOKEN_OK;
	char owner[HT_VAULT_PARTICIPANT_MAX + 1];
	enum ht_err rc = switchapi_token_route(r->s, tok, p->pull ? NULL : who,
					       &u, owner, &why);
	if (rc == HT_ERR_NOT_FOUND)
		return refuse_item(p, 404, "token_not_found", "payer: no such"
				   " token");
	if (rc == HT_ERR_FORBIDDEN)
		return refuse_item(p, 404, "token_not_found", "payer.token: no"
				   " token of yours");
	if (rc)
		return refuse_item(p, 500, "internal", "token vault: %s",
				   ht_strerror(rc));
	if (why)
		return refuse_item(p, 422, "token_refused", "payer token: %s",
				   ht_token_refusal_name(why));
	set_str(p->payer_p, sizeof p->payer_p, owner);
	set_str(p->payer_ref, sizeof p->payer_ref, tok);
}

/* One payment object of the body into p. A fault of the object as such
 * (members, types) refuses only this payment in a batch. */
static void read_payment(struct rd *r, struct job_payment *p, json_t *o)
{
	static const char *const allowed[] = {
		"client_id", "payer", "payee", "amount", "currency", "timeout_s",
		"channel", "device", "ip", NULL};
	p->xfer = -1;
	p->timeout_s = TIMEOUT_DEFAULT_S;
	p->risk.given = true;
	if (!json_is_object(o))
		return refuse_item(p, 400, "invalid_request", "a payment is a"
				   " JSON object");
	const char *unk = srv_json_unknown(o, allowed);
	if (unk)
		return refuse_item(p, 400, "invalid_request", "%.64s: not a"
				   " member of a payment", unk);
	bool bad = false;
	const char *cid = str_of(o, "client_id", PAY_CLIENT_ID_MAX, &bad);
	if (!cid || !client_id_ok(cid))
		return refuse_item(p, 400, "invalid_request", "client_id: 1..%d"
				   " of [A-Za-z0-9._:-] (required)",
				   PAY_CLIENT_ID_MAX);
	set_str(p->client_id, sizeof p->client_id, cid);
	json_t *m = json_object_get(o, "amount");
	if (m && !amount_of(m, &p->amount))
		return refuse_item(p, 400, "invalid_request", "amount: minor"
				   " units, 1..2^64-1, a decimal string or"
				   " integer");
	m = json_object_get(o, "currency");
	if (m && (!json_is_integer(m) || json_integer_value(m) < 1 ||
		  json_integer_value(m) > 999))
		return refuse_item(p, 400, "invalid_request", "currency: ISO"
				   " 4217 numeric, 1..999");
	p->currency = m ? (uint32_t)json_integer_value(m) : 0;
	m = json_object_get(o, "timeout_s");
	if (m && (!json_is_integer(m) || json_integer_value(m) < 1 ||
		  json_integer_value(m) > TIMEOUT_MAX_S))
		return refuse_item(p, 400, "invalid_request", "timeout_s:"
				   " 1..%d seconds for the payee to decide",
				   TIMEOUT_MAX_S);
	if (m)
		p->timeout_s = (uint32_t)json_integer_value(m);
	const char *dev = str_of(o, "device", HT_PAYMENT_REF_BYTES - 1, &bad);
	const char *ip = str_of(o, "ip", HT_PAYMENT_REF_BYTES - 1, &bad);
	const char *ch = str_of(o, "channel", 16, &bad);
	if (bad)
		return refuse_item(p, 400, "invalid_request", "device, ip,"
				   " channel: strings of 1..%d bytes",
				   HT_PAYMENT_REF_BYTES - 1);
	if (dev)
		set_str(p->risk.device, sizeof p->risk.device, dev);
	if (ip)
		set_str(p->risk.ip, sizeof p->risk.ip, ip);
	json_t *payer = json_object_get(o, "payer");
	json_t *payee = json_object_get(o, "payee");
	if (!payer || !payee)
		return refuse_item(p, 400, "invalid_request", "payer and payee"
				   " are required");
	uint64_t qr_amount = 0;
	uint32_t qr_currency = 0;
	resolve_payee(r, p, payee, &qr_amount, &qr_currency);
	if (p->code)
		return;
	if (ch) {
		enum ht_channel c;
		if (ht_channel_parse(ch, strlen(ch), &c))
			return refuse_item(p, 400, "invalid_request", "channel:"
					   " p2p, qr, card, transfer, cash_in,"
					   " cash_out or bill");
		p->risk.channel = c;
	}
	p->risk.channel_given = true;
	if (qr_amount && p->amount && qr_amount != p->amount)
		return refuse_item(p, 422, "amount_mismatch", "amount %llu is"
				   " not the QR code's %llu",
				   (unsigned long long)p->amount,
				   (unsigned long long)qr_amount);
	if (!p->amount)
		p->amount = qr_amount;
	if (qr_currency && p->currency && qr_currency != p->currency)
		return refuse_item(p, 422, "currency_mismatch", "currency %u is"
				   " not the QR code's %u", p->currency,
				   qr_currency);
	if (!p->currency)
		p->currency = qr_currency;
	if (!p->amount || !p->currency)
		return refuse_item(p, 400, "invalid_request", "amount and"
				   " currency are required (unless the QR code"
				   " carries them)");
	resolve_payer(r, p, payer);
	if (p->code)
		return;
	const char *who = r->j->who;
	if (p->pull ? strcmp(p->payee_p, who) : strcmp(p->payer_p, who))
		return refuse_item(p, 403, "forbidden", p->pull
				   ? "a consumer-presented code is submitted by"
				     " the payee's participant (%s is not %s)"
				   : "a payment is submitted by the payer's"
				     " participant (%s is not %s)",
				   who, p->pull ? p->payee_p : p->payer_p);
	if (!strcmp(p->payer_p, p->payee_p))
		return refuse_item(p, 422, "on_us", "payer and payee are both"
				   " at %s: an on-us payment is booked in its"
				   " own books, not through the hub",
				   p->payer_p);
	p->id = ht_liq_payment_id(who, p->client_id);
	p->debit = ht_liq_account_id(p->payer_p, p->currency, HT_LIQ_POSITION);
	p->credit = ht_liq_account_id(p->payee_p, p->currency, HT_LIQ_POSITION);
}

/* {"payment_id":"…","decision":"accept|reject"} */
static void read_decision(struct job_payment *p, json_t *o)
{
	static const char *const allowed[] = {"payment_id", "decision", NULL};
	p->xfer = -1;
	bool bad = !json_is_object(o) || srv_json_unknown(o, allowed);
	const char *id = bad ? NULL : str_of(o, "payment_id", 39, &bad);
	const char *d = bad ? NULL : str_of(o, "decision", 6, &bad);
	if (!id || !d || ht_u128_parse(id, strlen(id), &p->id) ||
	    (strcmp(d, "accept") && strcmp(d, "reject")))
		return refuse_item(p, 400, "invalid_request", "want"
				   " {\"payment_id\":\"<decimal u128>\","
				   "\"decision\":\"accept|reject\"}");
	p->accept = !strcmp(d, "accept");
}

static bool param_id(struct rd *r, const char *param, size_t len, ht_u128 *id)
{
	char buf[48];
	bool ok = len > 0 && len < sizeof buf;
	for (size_t i = 0; ok && i < len; i++)
		ok = param[i] >= '0' && param[i] <= '9';
	if (ok) {
		memcpy(buf, param, len);
		buf[len] = '\0';
		ok = ht_u128_parse(buf, len, id) == HT_OK;
	}
	return ok || refuse_req(r, 400, "invalid_request",
				"id: not a decimal u128");
}

/* The body's items: an array member `list` (a batch) or the object
 * itself (one). */
static bool items_of(struct rd *r, json_t *v, const char *list,
		     json_t **items, bool *single)
{
	json_t *a = json_is_object(v) ? json_object_get(v, list) : NULL;
	*single = a == NULL;
	if (!json_is_object(v))
		return refuse_req(r, 400, "invalid_request", "body: want a JSON"
				  " object");
	if (a && (json_object_size(v) != 1 || !json_is_array(a) ||
		  json_array_size(a) == 0 || json_array_size(a) > PAY_BATCH_MAX))
		return refuse_req(r, 400, "invalid_request", "%s: an array of"
				  " 1..%d, the body's only member", list,
				  PAY_BATCH_MAX);
	*items = a ? a : v;
	return true;
}

static bool liq_body(struct rd *r, json_t *v, struct job_liq *q)
{
	static const char *const allowed[] = {"action", "participant",
					      "currency", "amount", "id", "bic",
					      NULL};
	if (!json_is_object(v) || srv_json_unknown(v, allowed))
		return refuse_req(r, 400, "invalid_request", "want {\"action\","
				  "\"participant\",\"currency\",\"amount\","
				  "\"id\"}");
	bool bad = false;
	const char *act = str_of(v, "action", 8, &bad);
	const char *part = str_of(v, "participant", HT_LIQ_PARTICIPANT_MAX, &bad);
	static const char *const acts[] = {"setup", "cap", "fund", "defund",
					   "suspend", "resume", "bic", NULL};
	bool known = false;
	for (size_t i = 0; act && acts[i] && !known; i++)
		known = !strcmp(act, acts[i]);
	if (!known || !part || !ht_owner_valid(part, strlen(part)))
		return refuse_req(r, 400, "invalid_request", "action: setup, cap,"
				  " fund, defund, suspend or resume;"
				  " participant: a participant id");
	set_str(q->action, sizeof q->action, act);
	set_str(q->participant, sizeof q->participant, part);
	json_t *m = json_object_get(v, "currency");
	if (m && (!json_is_integer(m) || json_integer_value(m) < 1 ||
		  json_integer_value(m) > 999))
		return refuse_req(r, 400, "invalid_request", "currency: 1..999");
	q->currency = m ? (uint32_t)json_integer_value(m) : 156;
	bool money = !strcmp(act, "fund") || !strcmp(act, "defund");
	m = json_object_get(v, "amount");
	if ((money || !strcmp(act, "cap")) &&
	    (!m || !amount_of(m, &q->amount)) &&
	    !(!strcmp(act, "cap") && json_is_integer(m) &&
	      json_integer_value(m) == 0))
		return refuse_req(r, 400, "invalid_request", "amount: minor"
				  " units (required for cap, fund, defund)");
	if (q->amount > (uint64_t)INT64_MAX)
		return refuse_req(r, 400, "invalid_request", "amount: at most"
				  " 2^63-1");
	const char *bic = str_of(v, "bic", 11, &bad);
	if (!strcmp(act, "bic") && (!bic || !ht_iso_bic_valid(bic, strlen(bic))))
		return refuse_req(r, 400, "invalid_request", "bic: a BIC of 8"
				  " or 11 characters ([A-Z0-9]{4}[A-Z]{2}"
				  "[A-Z0-9]{2}([A-Z0-9]{3})?)");
	if (bic)
		snprintf(q->bic, sizeof q->bic, "%s", bic);
	const char *id = str_of(v, "id", 39, &bad);
	if (money && (!id || ht_u128_parse(id, strlen(id), &q->id) ||
		      q->id == 0 || q->id == HT_U128_MAX))
		return refuse_req(r, 400, "invalid_request", "id: the transfer's"
				  " id, a decimal u128 (required for fund and"
				  " defund: a retry with it is answered"
				  " `exists`)");
	return true;
}

bool payments_parse(struct server *s, struct job *j, const char *body,
		    size_t body_len, const char *param, size_t param_len,
		    const char *query_limit, const char *query_currency,
		    const char *query_wait, const char *query_format,
		    int *status, const char **code, char *msg, size_t size)
{
	struct rd r = {s, j, status, code, msg, size};
	uint64_t v = 0;
	switch (j->route) {
	case R_PAYMENT_GET:
		j->kind = JOB_PAY_GET;
		return param_id(&r, param, param_len, &j->id);
	case R_PAYMENTS_INBOX:
		j->kind = JOB_PAY_INBOX;
		j->a = INBOX_DEFAULT;
		if (query_limit && (ht_u64_parse(query_limit, strlen(query_limit),
						 &v) || v == 0 || v > INBOX_MAX))
			return refuse_req(&r, 400, "invalid_request",
					  "limit: 1..%d", INBOX_MAX);
		if (query_limit)
			j->a = v;
		if (query_wait && (ht_u64_parse(query_wait, strlen(query_wait),
						&v) || v > INBOX_WAIT_MAX_MS))
			return refuse_req(&r, 400, "invalid_request",
					  "wait_ms: 0..%d", INBOX_WAIT_MAX_MS);
		j->b = query_wait ? v : 0;
		return true;
	case R_LIQUIDITY_GET:
		j->kind = JOB_LIQ_GET;
		if (!(j->liq = calloc(1, sizeof *j->liq)))
			return refuse_req(&r, 500, "internal", "out of memory");
		if (param_len == 0 || param_len > HT_LIQ_PARTICIPANT_MAX ||
		    !ht_owner_valid(param, param_len))
			return refuse_req(&r, 400, "invalid_request",
					  "participant: a participant id");
		memcpy(j->liq->participant, param, param_len);
		j->liq->currency = 156;
		if (query_currency && (ht_u64_parse(query_currency,
						    strlen(query_currency), &v) ||
				       v == 0 || v > 999))
			return refuse_req(&r, 400, "invalid_request",
					  "currency: 1..999");
		if (query_currency)
			j->liq->currency = (uint32_t)v;
		return true;
	case R_SETTLE_GET:
	case R_SETTLE_SETTLE:
		if (!(j->liq = calloc(1, sizeof *j->liq)))
			return refuse_req(&r, 500, "internal", "out of memory");
		if (param_len == 0 || param_len > 19 ||
		    ht_u64_parse(param, param_len, &j->liq->window))
			return refuse_req(&r, 400, "invalid_request", "window: a"
					  " decimal number (0: the open one)");
		if (j->route == R_SETTLE_SETTLE) {
			j->kind = JOB_LIQ;
			snprintf(j->liq->action, sizeof j->liq->action, "settle");
			if (body_len && (body_len != 2 || memcmp(body, "{}", 2)))
				return refuse_req(&r, 400, "invalid_request",
						  "body: {} or nothing");
			return true;
		}
		j->kind = JOB_SETTLE_GET;
		if (query_format && strcmp(query_format, "json") &&
		    strcmp(query_format, "csv"))
			return refuse_req(&r, 400, "invalid_request", "format:"
					  " json or csv");
		j->liq->csv = query_format && !strcmp(query_format, "csv");
		return true;
	case R_ISO_PACS008: {
		/* XML, not JSON: the reader is bounded and answers any input
		 * with a pacs.002 (FF01 for what it cannot read) */
		j->kind = JOB_ISO;
		struct ht_iso_options o = {0};
		if (ht_iso_pacs008_read(body, body_len, &o, &j->iso))
			return refuse_req(&r, 500, "internal", "out of memory");
		return true;
	}
	case R_SETTLE_CLOSE:
		j->kind = JOB_SETTLE_CLOSE;
		if (body_len && (body_len != 2 || memcmp(body, "{}", 2)))
			return refuse_req(&r, 400, "invalid_request",
					  "body: {} or nothing");
		return true;
	default:
		break;
	}
	json_error_t je;
	json_t *doc = body_len ? json_loadb(body, body_len,
					    JSON_REJECT_DUPLICATES, &je)
			       : json_object();
	if (!doc)
		return refuse_req(&r, 400, "malformed_json", "invalid JSON: %s"
				  " (byte %d)", je.text, je.position);
	bool ok = true;
	json_t *items = NULL;
	switch (j->route) {
	case R_LIQUIDITY:
		j->kind = JOB_LIQ;
		if (!(j->liq = calloc(1, sizeof *j->liq)))
			ok = refuse_req(&r, 500, "internal", "out of memory");
		else
			ok = liq_body(&r, doc, j->liq);
		break;
	case R_PAYMENT_ACCEPT:
	case R_PAYMENT_REJECT:
		j->kind = JOB_PAY_DECIDE;
		j->pay_single = true;
		j->pay_n = 1;
		if (!json_is_object(doc) || json_object_size(doc))
			ok = refuse_req(&r, 400, "invalid_request", "body: {}"
					" (the decision is in the path)");
		else if (!(j->pay = calloc(1, sizeof *j->pay)))
			ok = refuse_req(&r, 500, "internal", "out of memory");
		else if ((ok = param_id(&r, param, param_len, &j->pay[0].id))) {
			j->pay[0].accept = j->route == R_PAYMENT_ACCEPT;
			j->pay[0].xfer = -1;
		}
		break;
	case R_PAYMENTS_DECIDE:
	case R_PAYMENTS_CREATE: {
		bool create = j->route == R_PAYMENTS_CREATE;
		j->kind = create ? JOB_PAY_CREATE : JOB_PAY_DECIDE;
		ok = items_of(&r, doc, create ? "payments" : "decisions", &items,
			      &j->pay_single);
		if (!ok)
			break;
		j->pay_n = j->pay_single ? 1 : json_array_size(items);
		if (!(j->pay = calloc(j->pay_n, sizeof *j->pay))) {
			ok = refuse_req(&r, 500, "internal", "out of memory");
			break;
		}
		for (size_t i = 0; i < j->pay_n; i++) {
			json_t *o = j->pay_single ? items
						  : json_array_get(items, i);
			if (create)
				read_payment(&r, &j->pay[i], o);
			else
				read_decision(&j->pay[i], o);
		}
		/* one payment refused as a request: its own status */
		if (j->pay_single && j->pay[0].code &&
		    j->pay[0].status == 400)
			ok = refuse_req(&r, 400, j->pay[0].code, "%s",
					j->pay[0].message);
		break;
	}
	default:
		ok = refuse_req(&r, 500, "internal", "not a payments route");
	}
	json_decref(doc);
	return ok;
}

/* ---- the hub thread ------------------------------------------------------------------ */

static void build_decision(struct server *s, struct job *j,
			   struct job_payment *p, struct ht_transfer *t)
{
	struct ht_ledger *l = ht_hub_ledger(s->hub);
	const struct ht_transfer *pt = ht_ledger_transfer_get(l, p->id);
	char ids[HT_U128_DEC_SIZE];
	ht_u128_format(p->id, ids);
	bool sees = pt && is_payment(pt) &&
		    (j->all_access || !strcmp(owner_of(s, pt->debit_account_id),
					      j->who) ||
		     !strcmp(owner_of(s, pt->credit_account_id), j->who));
	if (!sees)
		return refuse_item(p, 404, "not_found", "no payment %s%s", ids,
				   j->all_access ? "" : " of yours");
	const char *awaited = awaited_of(s, pt);
	set_str(p->awaited, sizeof p->awaited, awaited);
	if (j->role != HT_PKI_ROLE_OPERATOR && strcmp(awaited, j->who))
		return refuse_item(p, 403, "forbidden", "payment %s awaits %s's"
				   " decision", ids, awaited);
	if (riskflow_held(s, p->id))
		return refuse_item(p, 403, "held_for_review", "payment %s is"
				   " held for risk review; an operator decides"
				   " it (POST /v1/risk/reviews/%s/approve)",
				   ids, ids);
	memset(t, 0, sizeof *t);
	t->id = ht_liq_decision_id(p->id, p->accept);
	t->pending_id = p->id;
	t->flags = p->accept ? HT_TRANSFER_POST_PENDING
			     : HT_TRANSFER_VOID_PENDING;
}

static void build_payment(struct job_payment *p, struct ht_transfer *t)
{
	memset(t, 0, sizeof *t);
	t->id = p->id;
	t->debit_account_id = p->debit;
	t->credit_account_id = p->credit;
	t->amount = p->amount;
	t->ledger = p->currency;
	t->timeout_s = p->timeout_s;
	t->code = p->pull ? HT_LIQ_CODE_PAYMENT_PULL : HT_LIQ_CODE_PAYMENT;
	t->flags = HT_TRANSFER_PENDING;
	const char *ref = p->pull ? p->payer_ref : p->payee_ref;
	t->user_data_len = (uint8_t)strlen(ref);
	memcpy(t->user_data, ref, t->user_data_len);
}

enum ht_err payments_build(struct server *s, struct job *j)
{
	bool create = j->kind == JOB_PAY_CREATE;
	j->r.op = HT_OP_CREATE_TRANSFERS;
	j->r.count = 0;
	j->r.transfers = malloc((j->pay_n ? j->pay_n : 1) *
				sizeof *j->r.transfers);
	j->pay_at = malloc((j->pay_n ? j->pay_n : 1) * sizeof *j->pay_at);
	if (create)
		j->r.risk = calloc(j->pay_n ? j->pay_n : 1, sizeof *j->r.risk);
	if (!j->r.transfers || !j->pay_at || (create && !j->r.risk))
		return HT_ERR_NOMEM;
	for (size_t i = 0; i < j->pay_n; i++) {
		struct job_payment *p = &j->pay[i];
		if (p->code)
			continue;
		struct ht_transfer *t = &j->r.transfers[j->r.count];
		if (create) {
			build_payment(p, t);
			j->r.risk[j->r.count] = p->risk;
		} else {
			build_decision(s, j, p, t);
			if (p->code)
				continue;
		}
		j->pay_at[j->r.count] = (uint32_t)i;
		p->xfer = (int32_t)j->r.count++;
	}
	return HT_OK;
}

/* The payment of transfer i. */
static struct job_payment *pay_of(const struct job *j, size_t i)
{
	HT_ASSERT(i < j->r.count);
	return &j->pay[j->pay_at[i]];
}

enum ht_err payments_liquidity(struct server *s, struct job *j,
			       const struct ht_transfer *in, uint16_t **refuse)
{
	if (j->kind != JOB_PAY_CREATE || j->r.count == 0)
		return HT_OK;
	if (!*refuse) {
		j->refuse = calloc(j->r.count, sizeof *j->refuse);
		if (!j->refuse)
			return HT_ERR_NOMEM;
		*refuse = j->refuse;
	}
	struct ht_ledger *l = ht_hub_ledger(s->hub);
	/* a retry (its id taken) reserves nothing new: the ledger answers
	 * exists or id_already_failed */
	bool *fresh = malloc(j->r.count * sizeof *fresh);
	if (!fresh)
		return HT_ERR_NOMEM;
	for (size_t i = 0; i < j->r.count; i++)
		fresh[i] = !ht_ledger_transfer_id_used(l, in[i].id);
	for (size_t i = 0; i < j->r.count; i++) {
		if ((*refuse)[i] || !fresh[i])
			continue;
		const struct job_payment *p = pay_of(j, i);
		/* what earlier payments of this request promise */
		uint64_t before = 0;
		for (size_t k = 0; k < i; k++)
			if (!(*refuse)[k] && fresh[k] &&
			    in[k].debit_account_id == in[i].debit_account_id &&
			    before <= UINT64_MAX - in[k].amount)
				before += in[k].amount;
		(*refuse)[i] = ht_liq_payment_verdict(s->pay->liq, p->payer_p,
						      p->payee_p, p->currency,
						      in[i].amount, before);
	}
	free(fresh);
	return HT_OK;
}

static enum pay_state state_of(struct server *s, ht_u128 id)
{
	struct ht_ledger *l = ht_hub_ledger(s->hub);
	switch (ht_ledger_pending_state(l, id)) {
	case HT_PENDING_OPEN:
		return riskflow_held(s, id) ? PAY_HELD : PAY_AWAITING;
	case HT_PENDING_POSTED:
		return PAY_COMMITTED;
	case HT_PENDING_VOIDED:
		return PAY_REJECTED;
	case HT_PENDING_EXPIRED:
		return PAY_EXPIRED;
	default:
		return ht_ledger_transfer_id_used(l, id) ? PAY_REFUSED : PAY_NONE;
	}
}

void payments_applied(struct server *s, struct job *j)
{
	if (j->kind != JOB_PAY_CREATE && j->kind != JOB_PAY_DECIDE)
		return;
	for (size_t i = 0; i < j->pay_n; i++) {
		struct job_payment *p = &j->pay[i];
		if (p->xfer < 0)
			continue;
		p->state = (uint8_t)state_of(s, p->id);
		if (j->kind != JOB_PAY_CREATE)
			continue;
		snprintf(p->awaited, sizeof p->awaited, "%s",
			 p->pull ? p->payer_p : p->payee_p);
		if (j->results[p->xfer] == HT_R_OK)
			s->pay->fresh = true;
		if (j->results[p->xfer] == HT_R_OK &&
		    inbox_add(s->pay, p->id, p->awaited))
			fprintf(stderr, "huitong serve: the payments inbox is"
					" out of memory; payment awaits a"
					" decision by id\n");
	}
}

void payments_party(const struct job *j, size_t i, struct ht_payment *p)
{
	const struct job_payment *q = pay_of(j, i);
	snprintf(p->payer, sizeof p->payer, "%.31s:%s", q->payer_p,
		 q->payer_ref);
	snprintf(p->payee, sizeof p->payee, "%.31s:%s", q->payee_p,
		 q->payee_ref);
	set_str(p->payer_participant, sizeof p->payer_participant, q->payer_p);
	set_str(p->payee_participant, sizeof p->payee_participant, q->payee_p);
}

/* A committed payment transfer as the status and inbox show it. */
static enum ht_err payment_json(struct server *s, const struct ht_transfer *t,
				struct ht_buf *b)
{
	char ids[HT_U128_DEC_SIZE];
	enum pay_state st = state_of(s, t->id);
	bool pull = t->code == HT_LIQ_CODE_PAYMENT_PULL;
	enum ht_err err = ht_buf_printf(
		b, "{\"payment_id\":\"%s\",\"state\":\"%s\",\"awaiting\":",
		ht_u128_format(t->id, ids), state_name(st));
	if (!err)
		err = st == PAY_AWAITING ? ht_buf_json_string(b, awaited_of(s, t),
							      strlen(awaited_of(s, t)))
					 : ht_buf_append(b, "null", 4);
	if (!err)
		err = ht_buf_printf(b, ",\"mode\":\"%s\",\"payer\":{\"participant\":",
				    pull ? "consumer_presented" : "credit");
	const char *dr = owner_of(s, t->debit_account_id);
	const char *cr = owner_of(s, t->credit_account_id);
	if (!err)
		err = ht_buf_json_string(b, dr, strlen(dr));
	if (!err && pull)
		err = ht_buf_append(b, ",\"token\":", 9);
	if (!err && pull)
		err = ht_buf_json_string(b, t->user_data, t->user_data_len);
	if (!err)
		err = ht_buf_append(b, "},\"payee\":{\"participant\":", 25);
	if (!err)
		err = ht_buf_json_string(b, cr, strlen(cr));
	if (!err && !pull)
		err = ht_buf_append(b, ",\"reference\":", 13);
	if (!err && !pull)
		err = ht_buf_json_string(b, t->user_data, t->user_data_len);
	if (!err)
		err = ht_buf_printf(b, "},\"amount\":\"%llu\",\"currency\":%u,"
				       "\"timeout_s\":%u,\"timestamp\":%llu}",
				    (unsigned long long)t->amount, t->ledger,
				    t->timeout_s,
				    (unsigned long long)t->timestamp);
	return err;
}

static void read_status(struct server *s, struct job *j)
{
	const struct ht_transfer *t =
		ht_ledger_transfer_get(ht_hub_ledger(s->hub), j->id);
	char ids[HT_U128_DEC_SIZE];
	ht_u128_format(j->id, ids);
	bool sees = is_payment(t) &&
		    (j->all_access || !strcmp(owner_of(s, t->debit_account_id),
					      j->who) ||
		     !strcmp(owner_of(s, t->credit_account_id), j->who));
	if (!sees) {
		j->status = 404;
		j->code = "not_found";
		snprintf(j->message, sizeof j->message, "no payment %s%s (a"
			 " refused payment has no status: its refusal is in"
			 " the answer to its request and in the journal)",
			 ids, j->all_access ? "" : " of yours");
		return;
	}
	if (payment_json(s, t, &j->body) || ht_buf_append(&j->body, "\n", 1)) {
		j->status = 500;
		j->code = "internal";
		snprintf(j->message, sizeof j->message, "out of memory");
	}
}

/* The inbox into j->body; when it shows nothing and j may wait (wait_ms),
 * park j instead (true). */
static bool read_inbox(struct server *s, struct job *j, bool may_park)
{
	struct paysvc *p = s->pay;
	struct ht_ledger *l = ht_hub_ledger(s->hub);
	size_t keep = 0, shown = 0;
	bool more = false;
	enum ht_err err = ht_buf_append(&j->body, "{\"payments\":[", 13);
	for (size_t i = 0; i < p->n; i++) {
		struct inbox_item *it = &p->items[i];
		if (ht_ledger_pending_state(l, it->id) != HT_PENDING_OPEN)
			continue; /* decided or expired: dropped */
		p->items[keep++] = *it;
		if (err || strcmp(it->awaited, j->who) || riskflow_held(s, it->id))
			continue;
		if (shown == j->a) {
			more = true;
			continue;
		}
		if (shown++)
			err = ht_buf_append(&j->body, ",", 1);
		if (!err)
			err = payment_json(s, ht_ledger_transfer_get(l, it->id),
					   &j->body);
	}
	p->n = keep;
	if (!err && !shown && !more && may_park && j->b &&
	    !atomic_load(&s->stopping)) {
		j->parked = true;
		j->body.len = 0;
		j->park_next = NULL;
		struct job **tail = &p->parked;
		while (*tail)
			tail = &(*tail)->park_next;
		*tail = j;
		return true;
	}
	if (!err)
		err = ht_buf_printf(&j->body, "],\"more\":%s}\n",
				    more ? "true" : "false");
	if (err) {
		j->status = 500;
		j->code = "internal";
		snprintf(j->message, sizeof j->message, "out of memory");
	}
	return false;
}

static uint64_t due_of(const struct job *j)
{
	return j->t_start_ns + j->b * 1000000u;
}

uint64_t payments_next_due_ns(struct server *s)
{
	uint64_t due = 0;
	if (s->pay && s->pay->parked && atomic_load(&s->stopping))
		return 1; /* stopping: answer every long poll now */
	for (const struct job *j = s->pay ? s->pay->parked : NULL; j;
	     j = j->park_next)
		if (!due || due_of(j) < due)
			due = due_of(j);
	return due;
}

void payments_wake(struct server *s, bool all)
{
	struct paysvc *p = s->pay;
	if (!p || !p->parked)
		return;
	uint64_t now = srv_now_ns();
	all = all || atomic_load(&s->stopping);
	bool fresh = p->fresh;
	p->fresh = false;
	struct job *list = p->parked;
	p->parked = NULL;
	while (list) {
		struct job *j = list;
		list = j->park_next;
		j->park_next = NULL;
		j->parked = false;
		bool due = all || due_of(j) <= now;
		if (!due && !fresh) {
			/* nothing new: back in line, in order */
			struct job **tail = &p->parked;
			while (*tail)
				tail = &(*tail)->park_next;
			*tail = j;
			j->parked = true;
			continue;
		}
		if (!read_inbox(s, j, !due))
			hubq_answer(j);
	}
}

static enum ht_err position_json(struct server *s, const char *participant,
				 uint32_t currency, struct ht_buf *b,
				 int *status)
{
	struct ht_liq_position pos;
	enum ht_err rc = ht_liq_position(s->pay->liq, participant, currency,
					 &pos);
	if (rc == HT_ERR_NOT_FOUND) {
		*status = 404;
		return ht_buf_printf(b, "%s is not set up in currency %u",
				     participant, currency);
	}
	if (rc)
		return rc;
	*status = 200;
	enum ht_err err = ht_buf_append(b, "{\"participant\":", 15);
	if (!err)
		err = ht_buf_json_string(b, participant, strlen(participant));
	if (!err)
		err = ht_buf_printf(
			b, ",\"currency\":%u,\"net_debit\":%lld,\"reserved\":%llu,"
			   "\"cap\":%llu,\"headroom\":%lld,\"suspended\":%s}",
			currency, (long long)pos.net_debit,
			(unsigned long long)pos.reserved,
			(unsigned long long)pos.cap, (long long)pos.headroom,
			pos.suspended ? "true" : "false");
	return err;
}

static void liq_get(struct server *s, struct job *j)
{
	int status = 500;
	enum ht_err err = HT_OK;
	if (j->all_access || !strcmp(j->who, j->liq->participant))
		err = position_json(s, j->liq->participant, j->liq->currency,
				    &j->body, &status);
	else
		status = 404; /* another's position: as missing */
	if (!err && status == 200)
		err = ht_buf_append(&j->body, "\n", 1);
	if (!err && status == 200)
		return;
	j->status = err ? 500 : status;
	j->code = err ? "internal" : "not_found";
	set_str(j->message, sizeof j->message, err ? ht_strerror(err)
		 : "no such position (action setup makes one)");
	j->body.len = 0;
}

static void settle_read(struct server *s, struct job *j)
{
	struct ht_settle_report r;
	bool close = j->kind == JOB_SETTLE_CLOSE;
	enum ht_err err = close ? ht_liq_window_close(s->pay->liq, &r)
				: ht_liq_window_report(s->pay->liq,
						       j->liq->window, &r);
	if (err == HT_ERR_NOT_FOUND) {
		j->status = 404;
		j->code = "not_found";
		snprintf(j->message, sizeof j->message, "no settlement window"
			 " %llu", (unsigned long long)j->liq->window);
		return;
	}
	if (!err && !close && !j->all_access) {
		/* a participant sees its own lines */
		size_t keep = 0;
		for (size_t i = 0; i < r.count; i++)
			if (!strcmp(r.lines[i].participant, j->who))
				r.lines[keep++] = r.lines[i];
		r.count = keep;
	}
	if (!err)
		err = !close && j->liq->csv ? ht_settle_report_csv(&r, &j->body)
					    : ht_settle_report_json(&r, &j->body);
	if (!err && !(!close && j->liq->csv))
		err = ht_buf_append(&j->body, "\n", 1);
	if (!err && !close && j->liq->csv)
		j->ctype = "text/csv; charset=utf-8";
	ht_settle_report_free(&r);
	if (err) {
		j->status = 500;
		j->code = "internal";
		snprintf(j->message, sizeof j->message, "settlement: %s",
			 ht_strerror(err));
	}
}

void payments_read(struct server *s, struct job *j)
{
	switch (j->kind) {
	case JOB_SETTLE_CLOSE:
	case JOB_SETTLE_GET:
		return settle_read(s, j);
	case JOB_PAY_GET:
		return read_status(s, j);
	case JOB_PAY_INBOX:
		(void)read_inbox(s, j, true);
		return;
	case JOB_LIQ_GET:
		return liq_get(s, j);
	default:
		j->status = 500;
		j->code = "internal";
		snprintf(j->message, sizeof j->message, "not a payments read");
	}
}

void payments_liq_apply(struct server *s, struct job *j)
{
	struct job_liq *q = j->liq;
	struct ht_liq *l = s->pay->liq;
	uint16_t result = HT_R_OK;
	enum ht_err rc;
	const char *a = q->action;
	size_t booked = 0;
	if (!strcmp(a, "settle")) {
		rc = ht_liq_window_settle(l, q->window, &booked, &result);
		if (rc == HT_ERR_INVALID || rc == HT_ERR_NOT_FOUND) {
			j->status = rc == HT_ERR_INVALID ? 409 : 404;
			j->code = rc == HT_ERR_INVALID ? "invalid_state" : "not_found";
			snprintf(j->message, sizeof j->message, rc == HT_ERR_INVALID
				 ? "window %llu is open: close it first"
				 : "no settlement window %llu",
				 (unsigned long long)q->window);
			return;
		}
		if (rc) {
			j->status = 500;
			j->code = "internal";
			snprintf(j->message, sizeof j->message, "settling: %s%s%s",
				 ht_strerror(rc), result ? ": the ledger said " : "",
				 result ? ht_result_name(result) : "");
			return;
		}
		struct ht_settle_report r;
		rc = ht_liq_window_report(l, q->window, &r);
		/* the bookings are applied, not yet committed: the report
		 * reads them from memory, settled */
		enum ht_err err = rc ? rc : ht_buf_printf(&j->body, "{\"booked\":"
							  "%zu,\"window\":", booked);
		if (!err)
			err = ht_settle_report_json(&r, &j->body);
		if (!err)
			err = ht_buf_append(&j->body, "}\n", 2);
		if (!rc)
			ht_settle_report_free(&r);
		j->status = err ? 500 : 200;
		if (err) {
			j->code = "internal";
			snprintf(j->message, sizeof j->message, "%s",
				 ht_strerror(err));
		}
		return;
	}
	if (!strcmp(a, "setup"))
		rc = ht_liq_setup(l, q->participant, q->currency);
	else if (!strcmp(a, "cap"))
		rc = ht_liq_set_cap(l, q->participant, q->currency, q->amount);
	else if (!strcmp(a, "suspend") || !strcmp(a, "resume"))
		rc = ht_liq_set_suspended(l, q->participant, !strcmp(a, "suspend"));
	else if (!strcmp(a, "bic"))
		rc = ht_liq_set_bic(l, q->bic, q->participant);
	else
		rc = ht_liq_fund(l, q->participant, q->currency, q->id, q->amount,
				 !strcmp(a, "defund"), &result);
	if (rc == HT_ERR_POISONED || rc == HT_ERR_NOMEM) {
		j->status = 500;
		j->code = "internal";
		set_str(j->message, sizeof j->message, ht_strerror(rc));
		return;
	}
	if (rc) {
		j->status = rc == HT_ERR_NOT_FOUND ? 404
			    : rc == HT_ERR_EXISTS ? 409 : rc == HT_ERR_INVALID ? 400
							    : 500;
		j->code = rc == HT_ERR_NOT_FOUND ? "not_set_up"
			  : rc == HT_ERR_EXISTS ? "exists"
			  : rc == HT_ERR_INVALID ? "invalid_request" : "internal";
		snprintf(j->message, sizeof j->message, "%s %s in %u: %s", a,
			 q->participant, q->currency,
			 rc == HT_ERR_NOT_FOUND ? "not set up (action setup first)"
						: ht_strerror(rc));
		return;
	}
	int status = 200;
	const char *res = ht_result_name(result);
	enum ht_err err = ht_buf_printf(&j->body, "{\"action\":\"%s\",\"result\":"
						  "\"%s\",\"position\":",
					a, res ? res : "unknown");
	if (!err)
		err = position_json(s, q->participant, q->currency, &j->body,
				    &status);
	if (!err)
		err = ht_buf_append(&j->body, "}\n", 2);
	j->status = 200; /* result: ok, exists, exceeds_credits */
	if (err) {
		j->status = 500;
		j->code = "internal";
		set_str(j->message, sizeof j->message, ht_strerror(err));
	}
}

/* ---- answers (worker thread) --------------------------------------------------------- */

/* The result of payment p: a code of its own, or its transfer's. */
static const char *result_of(const struct job *j, const struct job_payment *p)
{
	if (p->code)
		return p->code;
	uint16_t r = j->results[p->xfer];
	if (j->kind == JOB_PAY_CREATE) {
		if (r == HT_R_DEBIT_ACCOUNT_NOT_FOUND)
			return "payer_not_set_up";
		if (r == HT_R_CREDIT_ACCOUNT_NOT_FOUND)
			return "payee_not_set_up";
		if (r > HT_R_ID_ALREADY_FAILED && r < HT_R_EXISTS)
			return "client_id_reused";
		if (r == HT_R_ID_ALREADY_FAILED)
			return "refused_before";
	}
	const char *n = ht_result_name(r);
	return n ? n : "unknown";
}

static enum ht_err risk_json(const struct job *j, const struct job_risk *jr,
			     struct ht_buf *b)
{
	const char *name = ht_decision_name((enum ht_decision)jr->decision);
	enum ht_err err = ht_buf_printf(b, ",\"risk\":{\"decision\":\"%s\","
					   "\"score\":%.6f,\"reasons\":[",
					name ? name : "allow", jr->score);
	const char *r = jr->reason_count ? j->risk_reasons.data + jr->reasons_off
					 : NULL;
	for (size_t k = 0; !err && k < jr->reason_count; k++) {
		size_t len = strlen(r);
		if (k)
			err = ht_buf_append(b, ",", 1);
		if (!err)
			err = ht_buf_json_string(b, r, len);
		r += len + 1;
	}
	return err ? err : ht_buf_append(b, "]}", 2);
}

static enum ht_err item_json(const struct job *j, const struct job_payment *p,
			     struct ht_buf *b)
{
	char ids[HT_U128_DEC_SIZE];
	bool create = j->kind == JOB_PAY_CREATE;
	enum ht_err err = HT_OK;
	if (create) {
		err = ht_buf_printf(b, "{\"client_id\":\"%s\"", p->client_id);
		if (!err && p->id)
			err = ht_buf_printf(b, ",\"payment_id\":\"%s\"",
					    ht_u128_format(p->id, ids));
	} else {
		err = ht_buf_printf(b, "{\"payment_id\":\"%s\",\"decision\":"
				       "\"%s\"", ht_u128_format(p->id, ids),
				    p->accept ? "accept" : "reject");
	}
	if (!err)
		err = ht_buf_printf(b, ",\"result\":\"%s\"", result_of(j, p));
	if (!err && p->code) {
		err = ht_buf_append(b, ",\"message\":", 11);
		if (!err)
			err = ht_buf_json_string(b, p->message, strlen(p->message));
		return err ? err : ht_buf_append(b, "}", 1);
	}
	if (!err)
		err = ht_buf_printf(b, ",\"state\":\"%s\"",
				    state_name((enum pay_state)p->state));
	if (!err && p->state == PAY_AWAITING)
		err = ht_buf_printf(b, ",\"awaiting\":\"%s\"", p->awaited);
	if (!err && create)
		err = ht_buf_printf(b, ",\"payer\":{\"participant\":\"%s\"},"
				       "\"payee\":{\"participant\":\"%s\","
				       "\"reference\":\"%s\"},\"amount\":\"%llu\","
				       "\"currency\":%u",
				    p->payer_p, p->payee_p, p->payee_ref,
				    (unsigned long long)p->amount, p->currency);
	uint64_t leaf = j->leaf[p->xfer];
	if (!err && leaf != UINT64_MAX) {
		size_t k = (size_t)(leaf - j->first);
		HT_ASSERT(k < j->count);
		char hex[2 * HT_LEAF_BYTES_MAX + 1];
		ht_hex_encode(j->leaf_data + k * HT_LEAF_BYTES_MAX,
			      j->leaf_len[k], hex);
		err = ht_buf_printf(b, ",\"leaf\":%llu,\"ts\":%llu,\"data\":\"%s\"",
				    (unsigned long long)leaf,
				    (unsigned long long)j->leaf_ts[k], hex);
	}
	if (!err && j->risk && j->risk[p->xfer].scored)
		err = risk_json(j, &j->risk[p->xfer], b);
	return err ? err : ht_buf_append(b, "}", 1);
}

int payments_body(const struct job *j, struct ht_buf *b)
{
	enum ht_err err = j->pay_single ? HT_OK
			  : ht_buf_printf(b, "{\"%s\":[", j->kind == JOB_PAY_CREATE
							    ? "payments"
							    : "decisions");
	for (size_t i = 0; !err && i < j->pay_n; i++) {
		if (i)
			err = ht_buf_append(b, ",", 1);
		if (!err)
			err = item_json(j, &j->pay[i], b);
	}
	/* the commit's signed head and the range proof of the request's
	 * leaves, as every create answers (docs/api.md "Receipts") */
	if (!err && j->pay_single) {
		b->len--; /* the item's '}' */
		err = ht_buf_append(b, ",", 1);
	} else if (!err) {
		err = ht_buf_append(b, "],", 2);
	}
	char head[1024];
	ht_sth_json(&j->head, head, sizeof head);
	if (!err)
		err = ht_buf_printf(b, "\"receipt\":{\"head\":%s,\"first\":%llu,"
				       "\"count\":%llu,\"proof\":[",
				    head, (unsigned long long)j->first,
				    (unsigned long long)j->count);
	char hex[2 * HT_HASH_BYTES + 1];
	for (size_t k = 0; !err && k < j->proof_n; k++) {
		ht_hex_encode(j->proof[k], HT_HASH_BYTES, hex);
		err = ht_buf_printf(b, "%s\"%s\"", k ? "," : "", hex);
	}
	if (!err)
		err = ht_buf_append(b, "]}}\n", 4);
	if (err)
		return 500;
	return 200; /* each outcome is its result code (as for transfers) */
}

/* ---- ISO 20022 ---------------------------------------------------------------------- */

/* The risk engine on an ISO transaction (serve --risk): the parties as
 * participant:account. */
static bool iso_screen(void *ctx, const struct ht_iso_tx *tx, const char *payer,
		       const char *payee, char *why, size_t why_size)
{
	struct server *s = ctx;
	struct ht_payment p;
	memset(&p, 0, sizeof p);
	snprintf(p.id, sizeof p.id, "%.64s", tx->tx_id[0] ? tx->tx_id
							  : tx->end_to_end_id);
	p.ts_ms = ht_now_wall_ms();
	snprintf(p.payer, sizeof p.payer, "%.31s:%.32s", payer,
		 tx->debtor_account.id);
	snprintf(p.payee, sizeof p.payee, "%.31s:%.32s", payee,
		 tx->creditor_account.id);
	set_str(p.payer_participant, sizeof p.payer_participant, payer);
	set_str(p.payee_participant, sizeof p.payee_participant, payee);
	p.amount = tx->amount_minor;
	set_str(p.currency, sizeof p.currency, tx->currency);
	p.channel = HT_CHANNEL_TRANSFER;
	return riskflow_blocks(s, &p, why, why_size);
}

void payments_iso_apply(struct server *s, struct job *j)
{
	size_t booked = 0;
	enum ht_err rc = ht_liq_book_pacs008(s->pay->liq, j->iso, j->who,
					     s->risk ? iso_screen : NULL, s,
					     &booked);
	if (rc) {
		j->status = 500;
		j->code = "internal";
		snprintf(j->message, sizeof j->message, "booking: %s",
			 ht_strerror(rc));
		return;
	}
	j->status = 200;
}

int payments_iso_body(const struct job *j, struct ht_buf *b)
{
	int64_t now_ms = ht_now_wall_ms();
	uint8_t r[6];
	char id[36];
	if (ht_random(r, sizeof r))
		return 500;
	snprintf(id, sizeof id, "HT%lld%02x%02x%02x%02x%02x%02x",
		 (long long)now_ms, r[0], r[1], r[2], r[3], r[4], r[5]);
	char *xml = NULL;
	size_t len = 0;
	if (ht_iso_pacs002_write(j->iso, id, now_ms, &xml, &len))
		return 500;
	enum ht_err err = ht_buf_append(b, xml, len);
	free(xml);
	return err ? 500 : 200;
}

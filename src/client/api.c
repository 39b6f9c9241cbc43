/*
 * api.c — the calls of libhuitong-client a bank's program makes: creates
 * with verified receipts, lookups, the head, one transfer's receipt, and
 * the ledger JSONL contract over the API (ht_client_apply_line); with the
 * builders of their bodies and request targets.
 *
 * Owner: client. Request bodies are written by the JSONL codec (jsonl.h),
 * or are the caller's own validated line, so the hub parses exactly what
 * `ledger apply` would; answers are read strictly (verify.c for creates
 * and receipts, here for lookups). This file must never print a result it
 * has not checked against the request, and never change a lookup answer
 * it forwards.
 */
#include "client_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- bodies and paths ----------------------------------------------------- */


/* user_data goes through JSON: valid UTF-8 without NUL (the JSONL parser
 * refuses \u0000), so it reads back as the same bytes. */
static bool user_data_ok(const char *d, size_t n)
{
	const unsigned char *u = (const unsigned char *)d;
	if (n > HT_USER_DATA_BYTES_MAX)
		return false;
	for (size_t i = 0; i < n;) {
		size_t k = ht_utf8_seq_len(u + i, n - i);
		if (k == 0 || u[i] == 0)
			return false;
		i += k;
	}
	return true;
}

static bool event_ok(enum ht_op op, const void *events, size_t i)
{
	if (op == HT_OP_CREATE_ACCOUNTS) {
		const struct ht_account *a = (const struct ht_account *)events + i;
		return !(a->flags & ~HT_ACCOUNT_FLAGS_ALL) &&
		       user_data_ok(a->user_data, a->user_data_len);
	}
	const struct ht_transfer *t = (const struct ht_transfer *)events + i;
	return !(t->flags & ~HT_TRANSFER_FLAGS_ALL) &&
	       user_data_ok(t->user_data, t->user_data_len);
}

enum ht_err client_create_body(struct ht_buf *b, enum ht_op op,
			       const void *events, size_t n, char *err,
			       size_t err_size)
{
	HT_ASSERT(op == HT_OP_CREATE_ACCOUNTS || op == HT_OP_CREATE_TRANSFERS);
	if (err_size)
		err[0] = '\0';
	if (n > HT_BATCH_EVENTS_MAX) {
		snprintf(err, err_size, "%zu events, more than the limit of %d",
			 n, HT_BATCH_EVENTS_MAX);
		return HT_ERR_LIMIT;
	}
	if (n && !events) {
		snprintf(err, err_size, "no events");
		return HT_ERR_INVALID;
	}
	for (size_t i = 0; i < n; i++) {
		if (!event_ok(op, events, i)) {
			snprintf(err, err_size,
				 "event %zu: unknown flag bits, or user_data"
				 " longer than %d bytes or not UTF-8 (or NUL)",
				 i, HT_USER_DATA_BYTES_MAX);
			return HT_ERR_INVALID;
		}
	}
	size_t start = b->len;
	enum ht_err e = op == HT_OP_CREATE_ACCOUNTS
				? ht_jsonl_write_accounts(b, op, events, n)
				: ht_jsonl_write_transfers(b, op, events, n);
	if (e) {
		snprintf(err, err_size, "cannot write the body: %s",
			 ht_strerror(e));
		return e;
	}
	if (b->len - start > HT_JSONL_LINE_BYTES_MAX) {
		snprintf(err, err_size, "a body of %zu bytes, over the hub's"
			 " limit of %u", b->len - start, HT_JSONL_LINE_BYTES_MAX);
		b->len = start;
		b->data[start] = '\0';
		return HT_ERR_LIMIT;
	}
	return HT_OK;
}

enum ht_err client_id_path(char *out, size_t size, const char *prefix,
			   ht_u128 id, const char *suffix)
{
	char dec[HT_U128_DEC_SIZE];
	int n = snprintf(out, size, "%s%s%s", prefix, ht_u128_format(id, dec),
			 suffix);
	if (n < 0 || (size_t)n >= size) {
		if (size)
			out[0] = '\0';
		return HT_ERR_LIMIT;
	}
	return HT_OK;
}

enum ht_err client_query_path(enum ht_op op, const struct ht_account_filter *f,
			      char *out, size_t size)
{
	char q[256];
	if (op != HT_OP_GET_ACCOUNT_TRANSFERS && op != HT_OP_GET_ACCOUNT_BALANCES)
		return HT_ERR_INVALID;
	snprintf(q, sizeof q,
		 "/%s?limit=%u&timestamp_min=%llu&timestamp_max=%llu"
		 "&debits=%s&credits=%s&reversed=%s",
		 op == HT_OP_GET_ACCOUNT_TRANSFERS ? "transfers" : "balances",
		 f->limit, (unsigned long long)f->timestamp_min,
		 (unsigned long long)f->timestamp_max,
		 f->flags & HT_FILTER_DEBITS ? "true" : "false",
		 f->flags & HT_FILTER_CREDITS ? "true" : "false",
		 f->flags & HT_FILTER_REVERSED ? "true" : "false");
	return client_id_path(out, size, "/v1/accounts/", f->account_id, q);
}

/* ---- creates ------------------------------------------------------------------ */

/* POST path with body; a non-200 answer becomes an error. On HT_OK *r
 * holds the 200 answer. */
static enum ht_err post_ok(struct ht_client *c, const char *path,
			   const char *body, size_t len,
			   struct ht_client_response *r)
{
	char what[96];
	enum ht_err err = ht_client_call(c, "POST", path, body, len, r);
	if (err || r->status == 200)
		return err;
	snprintf(what, sizeof what, "POST %s", path);
	err = client_status_error(c, what, r);
	ht_client_response_clear(r);
	return err;
}

static enum ht_err create(struct ht_client *c, enum ht_op op,
			  const void *in, size_t n, uint16_t *results,
			  uint64_t *leaves, struct ht_client_commit *commit)
{
	HT_ASSERT(c != NULL);
	c->err[0] = '\0';
	if (n && !results)
		return client_fail(c, HT_ERR_INVALID, "no results array");
	struct ht_buf body = {0};
	struct ht_client_response r;
	char msg[160];
	enum ht_err err = client_create_body(&body, op, in, n, msg, sizeof msg);
	if (err) {
		ht_buf_free(&body);
		return client_fail(c, err, "%s", msg);
	}
	const char *path = op == HT_OP_CREATE_ACCOUNTS ? "/v1/accounts"
						       : "/v1/transfers";
	err = post_ok(c, path, body.data, body.len, &r);
	ht_buf_free(&body);
	if (err)
		return err;
	err = client_read_create(c, op, in, n, r.body, r.body_len, results,
				 leaves, commit);
	ht_client_response_clear(&r);
	return err;
}

enum ht_err ht_client_create_accounts(struct ht_client *c,
				      const struct ht_account *in, size_t n,
				      uint16_t *results, uint64_t *leaves,
				      struct ht_client_commit *commit)
{
	return create(c, HT_OP_CREATE_ACCOUNTS, in, n, results, leaves, commit);
}

enum ht_err ht_client_create_transfers(struct ht_client *c,
				       const struct ht_transfer *in, size_t n,
				       uint16_t *results, uint64_t *leaves,
				       struct ht_client_commit *commit)
{
	return create(c, HT_OP_CREATE_TRANSFERS, in, n, results, leaves, commit);
}

/* ---- lookups ------------------------------------------------------------------ */

/* A u64-or-smaller number: a JSON integer or a decimal string, <= max. */
static bool get_num(const json_t *v, uint64_t max, uint64_t *out)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
	} else if (!json_is_string(v) ||
		   ht_u64_parse(json_string_value(v), json_string_length(v), out)) {
		return false;
	}
	return *out <= max;
}

static bool get_id(const json_t *v, ht_u128 *out)
{
	return json_is_string(v) &&
	       ht_u128_parse(json_string_value(v), json_string_length(v), out) ==
		       HT_OK;
}

typedef enum ht_err (*flag_parse_fn)(const char *, size_t, uint16_t *);

static bool get_flags(const json_t *v, flag_parse_fn parse, uint16_t *out)
{
	*out = 0;
	if (!json_is_array(v) || json_array_size(v) > 16)
		return false;
	for (size_t i = 0; i < json_array_size(v); i++) {
		const json_t *e = json_array_get(v, i);
		uint16_t bit;
		if (!json_is_string(e) ||
		    parse(json_string_value(e), json_string_length(e), &bit))
			return false;
		*out |= bit;
	}
	return true;
}

static bool get_user_data(const json_t *v, char *out, uint8_t *len)
{
	if (!json_is_string(v) || json_string_length(v) > HT_USER_DATA_BYTES_MAX)
		return false;
	*len = (uint8_t)json_string_length(v);
	memcpy(out, json_string_value(v), *len);
	return true;
}

#define FIELD(o, name) json_object_get((o), (name))

static bool read_account(const json_t *o, struct ht_account *a)
{
	uint64_t ledger, code;
	memset(a, 0, sizeof *a);
	bool ok = json_is_object(o) && get_id(FIELD(o, "id"), &a->id) &&
		  get_num(FIELD(o, "ledger"), UINT32_MAX, &ledger) &&
		  get_num(FIELD(o, "code"), UINT16_MAX, &code) &&
		  get_flags(FIELD(o, "flags"), ht_account_flag_parse, &a->flags) &&
		  get_user_data(FIELD(o, "user_data"), a->user_data,
				&a->user_data_len) &&
		  get_num(FIELD(o, "debits_pending"), UINT64_MAX,
			  &a->debits_pending) &&
		  get_num(FIELD(o, "debits_posted"), UINT64_MAX,
			  &a->debits_posted) &&
		  get_num(FIELD(o, "credits_pending"), UINT64_MAX,
			  &a->credits_pending) &&
		  get_num(FIELD(o, "credits_posted"), UINT64_MAX,
			  &a->credits_posted) &&
		  get_num(FIELD(o, "timestamp"), UINT64_MAX, &a->timestamp);
	a->ledger = (uint32_t)ledger;
	a->code = (uint16_t)code;
	return ok;
}

static bool read_transfer(const json_t *o, struct ht_transfer *t)
{
	uint64_t ledger, code, timeout;
	memset(t, 0, sizeof *t);
	bool ok = json_is_object(o) && get_id(FIELD(o, "id"), &t->id) &&
		  get_id(FIELD(o, "debit_account_id"), &t->debit_account_id) &&
		  get_id(FIELD(o, "credit_account_id"), &t->credit_account_id) &&
		  get_num(FIELD(o, "amount"), UINT64_MAX, &t->amount) &&
		  get_id(FIELD(o, "pending_id"), &t->pending_id) &&
		  get_num(FIELD(o, "ledger"), UINT32_MAX, &ledger) &&
		  get_num(FIELD(o, "code"), UINT16_MAX, &code) &&
		  get_flags(FIELD(o, "flags"), ht_transfer_flag_parse, &t->flags) &&
		  get_num(FIELD(o, "timeout_s"), UINT32_MAX, &timeout) &&
		  get_user_data(FIELD(o, "user_data"), t->user_data,
				&t->user_data_len) &&
		  get_num(FIELD(o, "timestamp"), UINT64_MAX, &t->timestamp);
	t->ledger = (uint32_t)ledger;
	t->code = (uint16_t)code;
	t->timeout_s = (uint32_t)timeout;
	return ok;
}

/* {"op":<op>,"<key>":[…]}: the array, at most max long. Unknown members
 * are ignored here (lookups prove nothing; the line is forwarded as it
 * came by apply). */
static enum ht_err lookup_array(struct ht_client *c, const char *body,
				size_t len, enum ht_op op, const char *key,
				size_t max, json_t **root, const json_t **arr)
{
	json_error_t je;
	*root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!*root)
		return client_fail(c, HT_ERR_CORRUPT,
				   "the answer is not JSON: %s (column %d)",
				   je.text, je.column);
	const json_t *jop = json_object_get(*root, "op");
	*arr = json_object_get(*root, key);
	if (!json_is_string(jop) || strcmp(json_string_value(jop), ht_op_name(op)) ||
	    !json_is_array(*arr) || json_array_size(*arr) > max)
		return client_fail(c, HT_ERR_CORRUPT,
				   "the answer is not {\"op\":\"%s\",\"%s\":[at"
				   " most %zu]}", ht_op_name(op), key, max);
	return HT_OK;
}

enum ht_err client_read_accounts(struct ht_client *c, const char *body,
				 size_t len, struct ht_account *out,
				 size_t max, size_t *n_out)
{
	json_t *root;
	const json_t *arr;
	*n_out = 0;
	enum ht_err err = lookup_array(c, body, len, HT_OP_LOOKUP_ACCOUNTS,
				       "accounts", max, &root, &arr);
	for (size_t i = 0; !err && i < json_array_size(arr); i++)
		if (!read_account(json_array_get(arr, i), &out[i]))
			err = client_fail(c, HT_ERR_CORRUPT,
					  "accounts[%zu]: not an account object", i);
	if (!err)
		*n_out = json_array_size(arr);
	json_decref(root);
	return err;
}

enum ht_err client_read_transfers(struct ht_client *c, const char *body,
				  size_t len, struct ht_transfer *out,
				  size_t max, size_t *n_out)
{
	json_t *root;
	const json_t *arr;
	*n_out = 0;
	enum ht_err err = lookup_array(c, body, len, HT_OP_LOOKUP_TRANSFERS,
				       "transfers", max, &root, &arr);
	for (size_t i = 0; !err && i < json_array_size(arr); i++)
		if (!read_transfer(json_array_get(arr, i), &out[i]))
			err = client_fail(c, HT_ERR_CORRUPT,
					  "transfers[%zu]: not a transfer object",
					  i);
	if (!err)
		*n_out = json_array_size(arr);
	json_decref(root);
	return err;
}

/* {"ids":["1","2",…]} */
static enum ht_err ids_body(struct ht_buf *b, const ht_u128 *ids, size_t n)
{
	enum ht_err err = ht_buf_append(b, "{\"ids\":[", 8);
	for (size_t i = 0; i < n && !err; i++) {
		char dec[HT_U128_DEC_SIZE];
		err = ht_buf_printf(b, "%s\"%s\"", i ? "," : "",
				    ht_u128_format(ids[i], dec));
	}
	return err ? err : ht_buf_append(b, "]}", 2);
}

static enum ht_err lookup(struct ht_client *c, bool accounts,
			  const ht_u128 *ids, size_t n, void *out,
			  size_t *n_out)
{
	HT_ASSERT(c != NULL && n_out != NULL);
	c->err[0] = '\0';
	*n_out = 0;
	if (n && (!ids || !out))
		return client_fail(c, HT_ERR_INVALID, "no ids or no room");
	if (n > HT_LOOKUP_IDS_MAX)
		return client_fail(c, HT_ERR_LIMIT, "%zu ids, more than %d", n,
				   HT_LOOKUP_IDS_MAX);
	struct ht_buf body = {0};
	struct ht_client_response r;
	enum ht_err err = ids_body(&body, ids, n);
	if (err) {
		ht_buf_free(&body);
		return client_fail(c, err, "out of memory");
	}
	err = post_ok(c, accounts ? "/v1/accounts/lookup" : "/v1/transfers/lookup",
		      body.data, body.len, &r);
	ht_buf_free(&body);
	if (err)
		return err;
	err = accounts ? client_read_accounts(c, r.body, r.body_len, out, n, n_out)
		       : client_read_transfers(c, r.body, r.body_len, out, n,
					       n_out);
	ht_client_response_clear(&r);
	return err;
}

enum ht_err ht_client_lookup_accounts(struct ht_client *c, const ht_u128 *ids,
				      size_t n, struct ht_account *out,
				      size_t *n_out)
{
	return lookup(c, true, ids, n, out, n_out);
}

enum ht_err ht_client_lookup_transfers(struct ht_client *c,
				       const ht_u128 *ids, size_t n,
				       struct ht_transfer *out, size_t *n_out)
{
	return lookup(c, false, ids, n, out, n_out);
}

/* ---- heads and receipts ------------------------------------------------------- */

enum ht_err ht_client_head(struct ht_client *c, struct ht_sth *out)
{
	HT_ASSERT(c != NULL && out != NULL);
	c->err[0] = '\0';
	memset(out, 0, sizeof *out);
	struct ht_client_response r;
	char msg[160];
	enum ht_err err = ht_client_call(c, "GET", "/v1/journal/head", NULL, 0, &r);
	if (!err && r.status != 200)
		err = client_status_error(c, "GET /v1/journal/head", &r);
	if (!err && ht_client_parse_head(r.body, r.body_len, out, msg, sizeof msg))
		err = client_fail(c, HT_ERR_CORRUPT, "GET /v1/journal/head: %s",
				  msg);
	ht_client_response_clear(&r);
	if (!err && c->verify)
		err = client_check_head(c, out, true);
	if (err)
		memset(out, 0, sizeof *out);
	return err;
}

enum ht_err ht_client_receipt(struct ht_client *c, ht_u128 id,
			      uint64_t tree_size,
			      struct ht_client_receipt *out)
{
	HT_ASSERT(c != NULL && out != NULL);
	c->err[0] = '\0';
	memset(out, 0, sizeof *out);
	char path[160], query[48] = "";
	struct ht_client_response r;
	if (tree_size)
		snprintf(query, sizeof query, "?tree_size=%llu",
			 (unsigned long long)tree_size);
	client_id_path(path, sizeof path, "/v1/transfers/", id, "/receipt");
	strncat(path, query, sizeof path - strlen(path) - 1);
	enum ht_err err = ht_client_call(c, "GET", path, NULL, 0, &r);
	if (!err && r.status != 200)
		err = client_status_error(c, path, &r);
	if (!err)
		err = client_read_receipt(c, id, tree_size, r.body, r.body_len, out);
	ht_client_response_clear(&r);
	return err;
}

/* ---- the JSONL contract ---------------------------------------------------------- */

/* A refused request (nothing changed) becomes an error line; a refused
 * client (401) or a failing hub stops the run. */
static enum ht_err refused(struct ht_client *c, const char *what,
			   const struct ht_client_response *r,
			   uint64_t line_no, struct ht_buf *out)
{
	char msg[HT_CLIENT_CODE_BYTES + HT_CLIENT_MESSAGE_BYTES + 64];
	switch (r->status) {
	case 400:
	case 403:
	case 404:
	case 405:
	case 413:
		snprintf(msg, sizeof msg, "hub refused the request: %s: %s",
			 r->code[0] ? r->code : "(no error code)",
			 r->message[0] ? r->message : "(no message)");
		return ht_jsonl_write_error(out, msg, line_no);
	}
	return client_status_error(c, what, r);
}

static enum ht_err apply_create(struct ht_client *c, const struct ht_request *q,
				const char *line, size_t len, uint64_t line_no,
				struct ht_buf *out)
{
	bool acc = q->op == HT_OP_CREATE_ACCOUNTS;
	const char *path = acc ? "/v1/accounts" : "/v1/transfers";
	const void *events = acc ? (const void *)q->accounts
				 : (const void *)q->transfers;
	struct ht_client_response r;
	enum ht_err err = ht_client_call(c, "POST", path, line, len, &r);
	if (err)
		return err;
	if (r.status != 200) {
		err = refused(c, acc ? "POST /v1/accounts" : "POST /v1/transfers",
			      &r, line_no, out);
		ht_client_response_clear(&r);
		return err;
	}
	uint16_t *results = malloc((q->count + 1) * sizeof *results);
	ht_u128 *ids = malloc((q->count + 1) * sizeof *ids);
	err = results && ids ? HT_OK : client_fail(c, HT_ERR_NOMEM, "out of memory");
	if (!err)
		err = client_read_create(c, q->op, events, q->count, r.body,
					 r.body_len, results, NULL, NULL);
	for (size_t i = 0; !err && i < q->count; i++)
		ids[i] = acc ? q->accounts[i].id : q->transfers[i].id;
	if (!err && ht_jsonl_write_results(out, q->op, ids, results, q->count))
		err = client_fail(c, HT_ERR_NOMEM, "cannot write the results");
	free(results);
	free(ids);
	ht_client_response_clear(&r);
	return err;
}

/* A lookup or query answer is forwarded as it came; it must be one line
 * of the op asked (a trailing newline is dropped). */
static enum ht_err forward(struct ht_client *c, enum ht_op op, const char *what,
			   const struct ht_client_response *r,
			   uint64_t line_no, struct ht_buf *out)
{
	if (r->status != 200)
		return refused(c, what, r, line_no, out);
	size_t n = r->body_len;
	if (n && r->body[n - 1] == '\n')
		n--;
	char prefix[64];
	int p = snprintf(prefix, sizeof prefix, "{\"op\":\"%s\",", ht_op_name(op));
	if (n < (size_t)p + 1 || memcmp(r->body, prefix, (size_t)p) ||
	    r->body[n - 1] != '}' || memchr(r->body, '\n', n) ||
	    memchr(r->body, '\r', n))
		return client_fail(c, HT_ERR_CORRUPT,
				   "%s: the answer is not one %s line", what,
				   ht_op_name(op));
	return ht_buf_append(out, r->body, n)
		       ? client_fail(c, HT_ERR_NOMEM, "out of memory")
		       : HT_OK;
}

static enum ht_err apply_read(struct ht_client *c, const struct ht_request *q,
			      const char *line, size_t len, uint64_t line_no,
			      struct ht_buf *out)
{
	char path[256];
	const char *method = "POST";
	const void *body = line;
	if (q->op == HT_OP_LOOKUP_ACCOUNTS) {
		snprintf(path, sizeof path, "/v1/accounts/lookup");
	} else if (q->op == HT_OP_LOOKUP_TRANSFERS) {
		snprintf(path, sizeof path, "/v1/transfers/lookup");
	} else {
		const struct ht_account_filter *f = &q->filter;
		/* `ledger apply` refuses this filter itself: same line. */
		if (f->timestamp_max && f->timestamp_min > f->timestamp_max)
			return ht_jsonl_write_error(
				out, "bad filter: limit must be 1..8190 and"
				     " timestamp_min <= timestamp_max", line_no);
		if (client_query_path(q->op, f, path, sizeof path))
			return client_fail(c, HT_ERR_INVALID, "bad query");
		method = "GET";
		body = NULL;
		len = 0;
	}
	struct ht_client_response r;
	char what[300];
	snprintf(what, sizeof what, "%s %s", method, path);
	enum ht_err err = ht_client_call(c, method, path, body, len, &r);
	if (!err)
		err = forward(c, q->op, what, &r, line_no, out);
	ht_client_response_clear(&r);
	return err;
}

enum ht_err ht_client_apply_line(struct ht_client *c, const char *line,
				 size_t len, uint64_t line_no,
				 struct ht_buf *out)
{
	HT_ASSERT(c != NULL && out != NULL);
	c->err[0] = '\0';
	if (len == 0)
		return ht_jsonl_write_error(out, "empty line", line_no);
	struct ht_request q;
	char msg[256];
	enum ht_err err = ht_jsonl_parse(line, len, &q, msg, sizeof msg);
	if (err == HT_ERR_INVALID || err == HT_ERR_LIMIT)
		return ht_jsonl_write_error(out, msg, line_no);
	if (err)
		return client_fail(c, err, "%s", ht_strerror(err));
	size_t start = out->len;
	if (q.op == HT_OP_CREATE_ACCOUNTS || q.op == HT_OP_CREATE_TRANSFERS)
		err = apply_create(c, &q, line, len, line_no, out);
	else
		err = apply_read(c, &q, line, len, line_no, out);
	ht_request_free(&q);
	if (err) {
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
		if (!c->err[0])
			client_fail(c, err, "%s", ht_strerror(err));
	}
	return err;
}

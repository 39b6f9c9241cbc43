/*
 * verify.c — what libhuitong-client checks in the hub's answers: the
 * signed head (a strict parser of its JSON, its signature, the order of
 * heads), create answers against the request they answer (results,
 * leaves, range proof), and one transfer's receipt (inclusion proof).
 *
 * Owner: client. Everything here reads outside input: every count is
 * checked against the request or limits.h before it is used, every hex
 * string against the size of its destination. A check that fails is
 * HT_ERR_VERIFY with a message naming the leaf, event or head and the
 * values that differ; nothing that fails is ever handed to the caller as
 * a result. The primitives (hashes, signatures, Merkle proofs, event
 * decoding) are the core library's; this file only decides what must
 * match what.
 */
#include "client_internal.h"

#include "huitong/riskeval.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

/* ---- small readers -------------------------------------------------------- */

/* A JSON integer in 0..2^63-1 (jansson holds int64; larger fail to
 * parse). */
static bool get_u63(const json_t *v, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

/* A canonical decimal string (no leading zero but "0") of a u64. */
static bool get_dec_u64(const json_t *v, uint64_t *out)
{
	if (!json_is_string(v))
		return false;
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
		return false;
	return ht_u64_parse(s, n, out) == HT_OK;
}

/* Hex of exactly size bytes (want_exact) or of 1..size bytes. */
static bool get_hex(const json_t *v, uint8_t *out, size_t size,
		    bool want_exact, size_t *out_len)
{
	if (!json_is_string(v))
		return false;
	size_t n = json_string_length(v), got = 0;
	if (n == 0 || n > 2 * size || (want_exact && n != 2 * size))
		return false;
	if (ht_hex_decode(json_string_value(v), n, out, size, &got))
		return false;
	if (out_len)
		*out_len = got;
	return true;
}

static void put_err(char *err, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void put_err(char *err, size_t size, const char *fmt, ...)
{
	if (!err || !size)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, size, fmt, ap);
	va_end(ap);
}

/* ---- heads ------------------------------------------------------------------ */

static const char *const head_members[] = {
	"seq", "tree_size", "time_ns", "root", "prev_hash", "hash", "sign",
	"signature"};
#define HEAD_MEMBERS (sizeof head_members / sizeof head_members[0])

static enum ht_err head_algs(const json_t *v, struct ht_sth *out, char *err,
			     size_t size)
{
	const json_t *hash = json_object_get(v, "hash");
	const json_t *sign = json_object_get(v, "sign");
	if (!json_is_string(hash) ||
	    ht_hash_alg_parse(json_string_value(hash), &out->hash)) {
		put_err(err, size, "hash: must be \"sm3\" or \"sha256\"");
		return HT_ERR_INVALID;
	}
	if (!json_is_string(sign) ||
	    ht_sign_alg_parse(json_string_value(sign), &out->sign)) {
		put_err(err, size,
			"sign: must be \"sm2\", \"ed25519\" or \"ecdsa-p256\"");
		return HT_ERR_INVALID;
	}
	return HT_OK;
}

enum ht_err client_head_from_json(const json_t *v, struct ht_sth *out,
				  char *err, size_t size)
{
	memset(out, 0, sizeof *out);
	put_err(err, size, "%s", "");
	if (!json_is_object(v)) {
		put_err(err, size, "must be an object");
		return HT_ERR_INVALID;
	}
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)v, key, val) {
		size_t i = 0;
		while (i < HEAD_MEMBERS && strcmp(key, head_members[i]))
			i++;
		if (i == HEAD_MEMBERS) {
			put_err(err, size, "unknown member \"%.32s\"", key);
			return HT_ERR_INVALID;
		}
	}
	for (size_t i = 0; i < HEAD_MEMBERS; i++) {
		if (!json_object_get(v, head_members[i])) {
			put_err(err, size, "%s: missing", head_members[i]);
			return HT_ERR_INVALID;
		}
	}
	const char *bad = NULL;
	if (!get_u63(json_object_get(v, "seq"), &out->seq))
		bad = "seq: must be an integer in 0..2^63-1";
	else if (!get_u63(json_object_get(v, "tree_size"), &out->tree_size))
		bad = "tree_size: must be an integer in 0..2^63-1";
	else if (!get_dec_u64(json_object_get(v, "time_ns"), &out->time_ns))
		bad = "time_ns: must be a decimal string of a u64";
	else if (!get_hex(json_object_get(v, "root"), out->root, HT_HASH_BYTES,
			  true, NULL))
		bad = "root: must be 64 hex digits";
	else if (!get_hex(json_object_get(v, "prev_hash"), out->prev_hash,
			  HT_HASH_BYTES, true, NULL))
		bad = "prev_hash: must be 64 hex digits";
	else if (!get_hex(json_object_get(v, "signature"), out->sig,
			  HT_SIG_BYTES_MAX, false, &out->sig_len))
		bad = "signature: must be hex of 1..160 bytes";
	if (bad) {
		put_err(err, size, "%s", bad);
		memset(out, 0, sizeof *out);
		return HT_ERR_INVALID;
	}
	enum ht_err e = head_algs(v, out, err, size);
	if (e)
		memset(out, 0, sizeof *out);
	return e;
}

enum ht_err ht_client_parse_head(const char *json, size_t len,
				 struct ht_sth *out, char *err, size_t size)
{
	HT_ASSERT(out != NULL);
	memset(out, 0, sizeof *out);
	if (len > HT_CLIENT_HEAD_JSON_BYTES_MAX) {
		put_err(err, size, "head JSON of %zu bytes, longer than %u", len,
			HT_CLIENT_HEAD_JSON_BYTES_MAX);
		return HT_ERR_LIMIT;
	}
	if (!json) {
		put_err(err, size, "no head JSON");
		return HT_ERR_INVALID;
	}
	json_error_t je;
	json_t *v = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (!v) {
		put_err(err, size, "not JSON: %s (column %d)", je.text, je.column);
		return HT_ERR_INVALID;
	}
	enum ht_err e = client_head_from_json(v, out, err, size);
	json_decref(v);
	return e;
}

/* Is (seq, hash) a head whose signature was checked? A remembered head
 * with the same seq and another hash is a fork. */
static enum ht_err head_seen(struct ht_client *c, uint64_t seq,
			     const uint8_t hash[HT_HASH_BYTES], bool *seen)
{
	*seen = false;
	for (size_t i = 0; i < c->seen_count; i++) {
		if (c->seen[i].seq != seq)
			continue;
		if (memcmp(c->seen[i].hash, hash, HT_HASH_BYTES))
			return client_fail(c, HT_ERR_VERIFY,
					   "two different heads numbered %llu"
					   " (a fork of the journal)",
					   (unsigned long long)seq);
		*seen = true;
	}
	return HT_OK;
}

static void head_remember(struct ht_client *c, uint64_t seq,
			  const uint8_t hash[HT_HASH_BYTES])
{
	struct client_head_seen *s = &c->seen[c->seen_next];
	s->seq = seq;
	memcpy(s->hash, hash, HT_HASH_BYTES);
	c->seen_next = (c->seen_next + 1) % HT_CLIENT_HEADS_CACHED;
	if (c->seen_count < HT_CLIENT_HEADS_CACHED)
		c->seen_count++;
}

/*
 * Heads verified by any client of this process, by hub key and head hash
 * (H(signed bytes || signature)): a load generator or a bank's program with
 * many connections (one ht_client each) then checks each head's signature
 * once, not once per connection. A head is only ever found here after
 * ht_sth_verify accepted it under the same hub key.
 */
#define SHARED_HEADS 256
static struct {
	uint8_t key_fp[32];
	uint8_t hash[HT_HASH_BYTES];
	bool used;
} shared_heads[SHARED_HEADS];
static unsigned shared_next;
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;

static enum ht_err hub_key_fp(struct ht_client *c, uint8_t fp[32])
{
	char *pem = NULL;
	size_t len = 0;
	enum ht_err err = ht_key_public_pem(c->hub_key, &pem, &len);
	if (!err)
		err = ht_hash(HT_HASH_SHA256, pem, len, fp);
	free(pem);
	return err;
}

static bool shared_seen(const uint8_t fp[32], const uint8_t hash[HT_HASH_BYTES])
{
	bool found = false;
	pthread_mutex_lock(&shared_lock);
	for (unsigned i = 0; i < SHARED_HEADS && !found; i++)
		found = shared_heads[i].used &&
			!memcmp(shared_heads[i].hash, hash, HT_HASH_BYTES) &&
			!memcmp(shared_heads[i].key_fp, fp, 32);
	pthread_mutex_unlock(&shared_lock);
	return found;
}

static void shared_remember(const uint8_t fp[32],
			    const uint8_t hash[HT_HASH_BYTES])
{
	pthread_mutex_lock(&shared_lock);
	unsigned i = shared_next++ % SHARED_HEADS;
	memcpy(shared_heads[i].key_fp, fp, 32);
	memcpy(shared_heads[i].hash, hash, HT_HASH_BYTES);
	shared_heads[i].used = true;
	pthread_mutex_unlock(&shared_lock);
}

static enum ht_err head_signature(struct ht_client *c, const struct ht_sth *h,
				  const uint8_t hash[HT_HASH_BYTES])
{
	enum ht_err err = client_hub_key(c);
	if (err)
		return err;
	enum ht_sign_alg alg = ht_key_alg(c->hub_key);
	if (h->sign != alg)
		return client_fail(c, HT_ERR_VERIFY,
				   "head %llu: signed with %s, the hub key is %s",
				   (unsigned long long)h->seq,
				   ht_sign_alg_name(h->sign),
				   ht_sign_alg_name(alg));
	if (!c->have_key_fp) {
		if ((err = hub_key_fp(c, c->key_fp)))
			return client_fail(c, err, "cannot fingerprint the hub key");
		c->have_key_fp = true;
	}
	if (shared_seen(c->key_fp, hash))
		return HT_OK;
	c->signature_checks++;
	err = ht_sth_verify(c->hub_key, h);
	if (!err)
		shared_remember(c->key_fp, hash);
	if (err == HT_ERR_VERIFY)
		return client_fail(c, err,
				   "head %llu: the signature is not the hub's",
				   (unsigned long long)h->seq);
	return err ? client_fail(c, err, "head %llu: cannot check the signature",
				 (unsigned long long)h->seq)
		   : HT_OK;
}

/* Order against the newest head seen: never back (when latest), never
 * two heads with one number, seq + 1 links to it, the tree never
 * shrinks. */
static enum ht_err head_order(struct ht_client *c, const struct ht_sth *h,
			      const uint8_t hash[HT_HASH_BYTES], bool latest)
{
	const struct ht_sth *l = &c->last;
	unsigned long long seq = h->seq, lseq = l->seq;
	if (!c->have_last)
		goto newer;
	if (h->seq < l->seq) {
		if (latest)
			return client_fail(c, HT_ERR_VERIFY,
					   "head %llu is older than head %llu"
					   " seen before", seq, lseq);
		if (h->tree_size > l->tree_size)
			return client_fail(c, HT_ERR_VERIFY,
					   "head %llu has more leaves than the"
					   " later head %llu", seq, lseq);
		return HT_OK;
	}
	if (h->seq == l->seq)
		return memcmp(hash, c->last_hash, HT_HASH_BYTES)
			       ? client_fail(c, HT_ERR_VERIFY,
					     "two different heads numbered %llu"
					     " (a fork of the journal)", seq)
			       : HT_OK;
	if (h->tree_size < l->tree_size)
		return client_fail(c, HT_ERR_VERIFY,
				   "head %llu has %llu leaves, fewer than head"
				   " %llu's %llu", seq,
				   (unsigned long long)h->tree_size, lseq,
				   (unsigned long long)l->tree_size);
	if (h->seq == l->seq + 1 &&
	    memcmp(h->prev_hash, c->last_hash, HT_HASH_BYTES))
		return client_fail(c, HT_ERR_VERIFY,
				   "head %llu does not link to head %llu"
				   " (a fork of the journal)", seq, lseq);
newer:
	c->have_last = true;
	c->last = *h;
	memcpy(c->last_hash, hash, HT_HASH_BYTES);
	return HT_OK;
}

enum ht_err client_check_head(struct ht_client *c, const struct ht_sth *h,
			      bool latest)
{
	struct ht_hasher *hs;
	uint8_t hash[HT_HASH_BYTES];
	bool seen;
	enum ht_err err = client_hasher(c, h->hash, &hs);
	if (!err)
		err = ht_sth_hash(hs, h, hash);
	if (err)
		return client_fail(c, err, "head %llu: cannot hash it: %s",
				   (unsigned long long)h->seq, ht_strerror(err));
	if ((err = head_seen(c, h->seq, hash, &seen)))
		return err;
	if (!seen) {
		if ((err = head_signature(c, h, hash)))
			return err;
		head_remember(c, h->seq, hash);
	}
	return head_order(c, h, hash, latest);
}

/* ---- leaves ----------------------------------------------------------------- */

/* Where a check is: "leaf 41 (event 1, id 8)". */
struct spot {
	uint64_t leaf;
	size_t event;
	ht_u128 id;
};

static enum ht_err differ(struct ht_client *c, const struct spot *s,
			  const char *field, const char *got, const char *want)
{
	char id[HT_U128_DEC_SIZE];
	return client_fail(c, HT_ERR_VERIFY,
			   "leaf %llu (event %zu, id %s): %s %s differs from"
			   " the request's %s", (unsigned long long)s->leaf,
			   s->event, ht_u128_format(s->id, id), field, got, want);
}

static enum ht_err differ_num(struct ht_client *c, const struct spot *s,
			      const char *field, ht_u128 got, ht_u128 want)
{
	char g[HT_U128_DEC_SIZE], w[HT_U128_DEC_SIZE];
	return differ(c, s, field, ht_u128_format(got, g),
		      ht_u128_format(want, w));
}

static enum ht_err user_data_differs(struct ht_client *c, const struct spot *s)
{
	char id[HT_U128_DEC_SIZE];
	return client_fail(c, HT_ERR_VERIFY,
			   "leaf %llu (event %zu, id %s): user_data differs from"
			   " the request's", (unsigned long long)s->leaf,
			   s->event, ht_u128_format(s->id, id));
}

static bool same_user_data(uint8_t a_len, const char *a, uint8_t b_len,
			   const char *b)
{
	return a_len == b_len && !memcmp(a, b, a_len);
}

/* The leaf of an `ok` account create: every field the request set. */
static enum ht_err check_account(struct ht_client *c, const struct spot *s,
				 const struct ht_account *want,
				 const struct ht_account *got)
{
	if (got->id != want->id)
		return differ_num(c, s, "id", got->id, want->id);
	if (want->ledger && got->ledger != want->ledger)
		return differ_num(c, s, "ledger", got->ledger, want->ledger);
	if (want->code && got->code != want->code)
		return differ_num(c, s, "code", got->code, want->code);
	if (got->flags != want->flags)
		return differ_num(c, s, "flags", got->flags, want->flags);
	if (!same_user_data(got->user_data_len, got->user_data,
			    want->user_data_len, want->user_data))
		return user_data_differs(c, s);
	return HT_OK;
}

/* The amount: equal when asked, at most the one asked for a balancing
 * transfer (clamped), anything when 0 was asked (post/void: "the pending
 * transfer's"). */
static enum ht_err check_amount(struct ht_client *c, const struct spot *s,
				const struct ht_transfer *want, uint64_t got)
{
	bool balancing = want->flags & (HT_TRANSFER_BALANCING_DEBIT |
					 HT_TRANSFER_BALANCING_CREDIT);
	if (want->amount == 0 || got == want->amount)
		return HT_OK;
	if (balancing && got <= want->amount)
		return HT_OK;
	return differ_num(c, s, "amount", got, want->amount);
}

/*
 * The transfer a result held for risk review implies (docs/api.md, "Risk"):
 * the request made pending, with the hub's review timeout unless the
 * request was pending with a timeout of its own. Nothing else may differ:
 * the flags must be exactly the request's plus `pending`; the timeout is
 * taken from the leaf only where the request left it to the hub.
 */
static void held_form(const struct ht_transfer *want,
		      const struct ht_transfer *got, struct ht_transfer *out)
{
	*out = *want;
	if (!((want->flags & HT_TRANSFER_PENDING) && want->timeout_s))
		out->timeout_s = got->timeout_s;
	out->flags |= HT_TRANSFER_PENDING;
}

static enum ht_err check_transfer(struct ht_client *c, const struct spot *s,
				  const struct ht_transfer *want,
				  const struct ht_transfer *got)
{
	if (got->id != want->id)
		return differ_num(c, s, "id", got->id, want->id);
	if (want->debit_account_id &&
	    got->debit_account_id != want->debit_account_id)
		return differ_num(c, s, "debit_account_id",
				  got->debit_account_id, want->debit_account_id);
	if (want->credit_account_id &&
	    got->credit_account_id != want->credit_account_id)
		return differ_num(c, s, "credit_account_id",
				  got->credit_account_id,
				  want->credit_account_id);
	enum ht_err err = check_amount(c, s, want, got->amount);
	if (err)
		return err;
	if (got->pending_id != want->pending_id)
		return differ_num(c, s, "pending_id", got->pending_id,
				  want->pending_id);
	if (want->ledger && got->ledger != want->ledger)
		return differ_num(c, s, "ledger", got->ledger, want->ledger);
	if (want->code && got->code != want->code)
		return differ_num(c, s, "code", got->code, want->code);
	if (got->flags != want->flags)
		return differ_num(c, s, "flags", got->flags, want->flags);
	if (got->timeout_s != want->timeout_s)
		return differ_num(c, s, "timeout_s", got->timeout_s,
				  want->timeout_s);
	if (!same_user_data(got->user_data_len, got->user_data,
			    want->user_data_len, want->user_data))
		return user_data_differs(c, s);
	return HT_OK;
}

static const char *kind_name(unsigned kind)
{
	switch (kind) {
	case HT_EVENT_ACCOUNT: return "an account event";
	case HT_EVENT_TRANSFER: return "a transfer event";
	case HT_EVENT_EXPIRY: return "an expiry event";
	case HT_EVENT_REFUSAL: return "a refusal";
	}
	return "an unknown event";
}

static enum ht_err wrong_kind(struct ht_client *c, const struct spot *s,
			      unsigned got, const char *want)
{
	char id[HT_U128_DEC_SIZE];
	return client_fail(c, HT_ERR_VERIFY,
			   "leaf %llu (event %zu, id %s): %s, not %s",
			   (unsigned long long)s->leaf, s->event,
			   ht_u128_format(s->id, id), kind_name(got), want);
}

/* The leaf of a refusal: a refusal of this id with this result. */
static enum ht_err check_refusal(struct ht_client *c, const struct spot *s,
				 const struct ht_event *e, uint16_t result)
{
	char id[HT_U128_DEC_SIZE], other[HT_U128_DEC_SIZE];
	if (e->kind != HT_EVENT_REFUSAL)
		return wrong_kind(c, s, e->kind, "a refusal");
	if (e->u.refusal.id != s->id)
		return client_fail(c, HT_ERR_VERIFY,
				   "leaf %llu (event %zu, id %s): a refusal of"
				   " id %s", (unsigned long long)s->leaf,
				   s->event, ht_u128_format(s->id, id),
				   ht_u128_format(e->u.refusal.id, other));
	if (e->u.refusal.result != result) {
		const char *g = ht_result_name(e->u.refusal.result);
		return client_fail(c, HT_ERR_VERIFY,
				   "leaf %llu (event %zu, id %s): refused with"
				   " %s, the answer says %s",
				   (unsigned long long)s->leaf, s->event,
				   ht_u128_format(s->id, id), g ? g : "(unknown)",
				   ht_result_name(result));
	}
	return HT_OK;
}

static enum ht_err check_leaf(struct ht_client *c, enum ht_op op,
			      const void *events, const struct spot *s,
			      uint16_t result, bool held, const uint8_t *data,
			      size_t len)
{
	struct ht_event e;
	char id[HT_U128_DEC_SIZE];
	if (ht_event_decode(data, len, &e))
		return client_fail(c, HT_ERR_VERIFY,
				   "leaf %llu (event %zu, id %s): not an event"
				   " encoding", (unsigned long long)s->leaf,
				   s->event, ht_u128_format(s->id, id));
	if (result != HT_R_OK)
		return check_refusal(c, s, &e, result);
	if (op == HT_OP_CREATE_ACCOUNTS) {
		if (e.kind != HT_EVENT_ACCOUNT)
			return wrong_kind(c, s, e.kind, "an account event");
		return check_account(c, s,
				     (const struct ht_account *)events + s->event,
				     &e.u.account);
	}
	if (e.kind != HT_EVENT_TRANSFER)
		return wrong_kind(c, s, e.kind, "a transfer event");
	const struct ht_transfer *want =
		(const struct ht_transfer *)events + s->event;
	struct ht_transfer pending;
	if (held) {
		if (!(e.u.transfer.flags & HT_TRANSFER_PENDING) ||
		    !e.u.transfer.timeout_s)
			return client_fail(c, HT_ERR_VERIFY,
					   "leaf %llu (event %zu): held for"
					   " review but not pending with a"
					   " timeout",
					   (unsigned long long)s->leaf, s->event);
		held_form(want, &e.u.transfer, &pending);
		want = &pending;
	}
	return check_transfer(c, s, want, &e.u.transfer);
}

/* ---- create answers ----------------------------------------------------------- */

static ht_u128 event_id(enum ht_op op, const void *events, size_t i)
{
	return op == HT_OP_CREATE_ACCOUNTS
		       ? ((const struct ht_account *)events)[i].id
		       : ((const struct ht_transfer *)events)[i].id;
}

static bool result_parse(const char *name, uint16_t *out)
{
	for (int r = 0; r < HT_R__MAX; r++) {
		const char *s = ht_result_name(r);
		if (s && !strcmp(s, name)) {
			*out = (uint16_t)r;
			return true;
		}
	}
	return false;
}

/* What a result says of its leaf: when the stored event is not the one
 * the request implies, its data (docs/api.md, "compact receipts"). */
struct leaf_info {
	uint64_t ts;
	const json_t *data; /* hex string, or NULL: rebuild from the request */
	bool held;          /* the risk engine held it for review */
};

/* The optional "risk" member of a result (docs/api.md, "Risk"):
 * {"decision":"allow|review|block","score":0..1,"reasons":["…",…]},
 * only on transfers; *held when the decision is review. */
static enum ht_err read_risk(struct ht_client *c, const json_t *v, size_t i,
			     enum ht_op op, bool *held)
{
	enum ht_decision d;
	const json_t *dec = json_object_get(v, "decision");
	const json_t *score = json_object_get(v, "score");
	const json_t *reasons = json_object_get(v, "reasons");
	*held = false;
	if (op != HT_OP_CREATE_TRANSFERS || !json_is_object(v) ||
	    json_object_size(v) != 3)
		return client_fail(c, HT_ERR_CORRUPT,
				   "results[%zu].risk: not a transfer's decision"
				   " object", i);
	if (!json_is_string(dec) ||
	    ht_decision_parse(json_string_value(dec), json_string_length(dec),
			      &d))
		return client_fail(c, HT_ERR_CORRUPT,
				   "results[%zu].risk.decision: not allow,"
				   " review or block", i);
	if (!json_is_number(score) || !(json_number_value(score) >= 0 &&
					json_number_value(score) <= 1))
		return client_fail(c, HT_ERR_CORRUPT,
				   "results[%zu].risk.score: not in 0..1", i);
	if (!json_is_array(reasons) ||
	    json_array_size(reasons) > HT_CLIENT_RISK_REASONS_MAX)
		return client_fail(c, HT_ERR_CORRUPT,
				   "results[%zu].risk.reasons: not an array of"
				   " at most %d", i, HT_CLIENT_RISK_REASONS_MAX);
	for (size_t k = 0; k < json_array_size(reasons); k++)
		if (!json_is_string(json_array_get(reasons, k)))
			return client_fail(c, HT_ERR_CORRUPT,
					   "results[%zu].risk.reasons[%zu]: not"
					   " a string", i, k);
	*held = d == HT_DECISION_REVIEW;
	return HT_OK;
}

/* One entry of "results": index i, the request's id, a known result,
 * and "leaf" with "ts" (and maybe "data") when present. */
static enum ht_err read_result(struct ht_client *c, const json_t *e, size_t i,
			       enum ht_op op, ht_u128 want_id, uint16_t *result,
			       uint64_t *leaf, struct leaf_info *li)
{
	uint64_t index;
	ht_u128 id;
	const json_t *jid = json_object_get(e, "id");
	const json_t *res = json_object_get(e, "result");
	const json_t *jleaf = json_object_get(e, "leaf");
	char w[HT_U128_DEC_SIZE];
	if (!json_is_object(e) || !get_u63(json_object_get(e, "index"), &index) ||
	    index != i)
		return client_fail(c, HT_ERR_CORRUPT,
				   "results[%zu]: not an object with index %zu",
				   i, i);
	if (!json_is_string(jid) ||
	    ht_u128_parse(json_string_value(jid), json_string_length(jid), &id) ||
	    id != want_id)
		return client_fail(c, HT_ERR_CORRUPT,
				   "results[%zu]: the id is not the request's %s",
				   i, ht_u128_format(want_id, w));
	if (!json_is_string(res))
		return client_fail(c, HT_ERR_CORRUPT,
				   "results[%zu].result: not a string", i);
	if (!result_parse(json_string_value(res), result))
		return client_fail(c, HT_ERR_UNSUPPORTED,
				   "results[%zu].result: unknown result \"%.40s\""
				   " (a newer hub?)", i, json_string_value(res));
	*leaf = HT_CLIENT_NO_LEAF;
	li->ts = 0;
	li->data = json_object_get(e, "data");
	li->held = false;
	const json_t *risk = json_object_get(e, "risk");
	if (risk) {
		enum ht_err err = read_risk(c, risk, i, op, &li->held);
		if (err)
			return err;
	}
	if (jleaf && !get_u63(jleaf, leaf))
		return client_fail(c, HT_ERR_CORRUPT,
				   "results[%zu].leaf: not a leaf index", i);
	if (jleaf && !get_u63(json_object_get(e, "ts"), &li->ts))
		return client_fail(c, HT_ERR_CORRUPT,
				   "results[%zu].ts: missing beside its leaf", i);
	if (!jleaf && (li->data || json_object_get(e, "ts")))
		return client_fail(c, HT_ERR_CORRUPT,
				   "results[%zu]: ts or data without a leaf", i);
	return HT_OK;
}

/* The receipt's members, parsed and bounded. */
struct receipt {
	struct ht_sth head;
	uint64_t first, count;
	const json_t *proof;   /* array of hex, may be NULL when count 0 */
	size_t proof_n;
};

static enum ht_err read_receipt(struct ht_client *c, const json_t *v,
				struct receipt *rc)
{
	char msg[160];
	memset(rc, 0, sizeof *rc);
	if (!json_is_object(v))
		return client_fail(c, HT_ERR_CORRUPT, "receipt: missing");
	if (client_head_from_json(json_object_get(v, "head"), &rc->head, msg,
				  sizeof msg))
		return client_fail(c, HT_ERR_CORRUPT, "receipt.head: %s", msg);
	if (!get_u63(json_object_get(v, "count"), &rc->count))
		return client_fail(c, HT_ERR_CORRUPT, "receipt.count: missing");
	const json_t *first = json_object_get(v, "first");
	if ((first || rc->count) && !get_u63(first, &rc->first))
		return client_fail(c, HT_ERR_CORRUPT, "receipt.first: missing");
	rc->proof = json_object_get(v, "proof");
	if ((rc->proof || rc->count) && !json_is_array(rc->proof))
		return client_fail(c, HT_ERR_CORRUPT, "receipt.proof: missing");
	rc->proof_n = rc->proof ? json_array_size(rc->proof) : 0;
	return HT_OK;
}

/* Bounds of the receipt against the request and its head. */
static enum ht_err receipt_bounds(struct ht_client *c, const struct receipt *rc,
				  size_t n)
{
	unsigned long long first = rc->first, count = rc->count;
	if (rc->count > n)
		return client_fail(c, HT_ERR_VERIFY,
				   "receipt: %llu leaves for %zu events", count, n);
	if (rc->count && (rc->first > rc->head.tree_size ||
			  rc->count > rc->head.tree_size - rc->first))
		return client_fail(c, HT_ERR_VERIFY,
				   "receipt: leaves [%llu, %llu) are not in the"
				   " %llu leaves of head %llu", first,
				   first + count,
				   (unsigned long long)rc->head.tree_size,
				   (unsigned long long)rc->head.seq);
	if (rc->proof_n > (rc->count ? HT_PROOF_HASHES_MAX : 0))
		return client_fail(c, HT_ERR_VERIFY,
				   "receipt: a proof of %zu hashes", rc->proof_n);
	return HT_OK;
}

/* Every result with a leaf has one in [first, first+count), each leaf is
 * used once, every leaf is used, and every `ok` has one. */
static enum ht_err leaves_assigned(struct ht_client *c, const struct receipt *rc,
				   enum ht_op op, const void *events,
				   const uint16_t *results,
				   const uint64_t *leaves, size_t n)
{
	uint8_t *used = calloc(rc->count / 8 + 1, 1);
	size_t used_n = 0;
	char id[HT_U128_DEC_SIZE];
	enum ht_err err = used ? HT_OK : client_fail(c, HT_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n && !err; i++) {
		uint64_t l = leaves[i];
		ht_u128_format(event_id(op, events, i), id);
		if (l == HT_CLIENT_NO_LEAF) {
			if (results[i] == HT_R_OK)
				err = client_fail(c, HT_ERR_VERIFY,
						  "event %zu (id %s): ok without a"
						  " journal leaf", i, id);
			continue;
		}
		if (l < rc->first || l - rc->first >= rc->count)
			err = client_fail(c, HT_ERR_VERIFY,
					  "event %zu (id %s): leaf %llu is outside"
					  " the receipt's [%llu, %llu)", i, id,
					  (unsigned long long)l,
					  (unsigned long long)rc->first,
					  (unsigned long long)(rc->first + rc->count));
		else if (used[(l - rc->first) / 8] & (1u << ((l - rc->first) % 8)))
			err = client_fail(c, HT_ERR_VERIFY,
					  "event %zu (id %s): leaf %llu is given"
					  " to two events", i, id,
					  (unsigned long long)l);
		else
			used[(l - rc->first) / 8] |= (uint8_t)(1u << ((l - rc->first) % 8));
		used_n++;
	}
	free(used);
	if (!err && used_n != rc->count)
		err = client_fail(c, HT_ERR_VERIFY,
				  "receipt: %llu leaves, but %zu events have one",
				  (unsigned long long)rc->count, used_n);
	return err;
}

/* The data of event i's leaf: rebuilt from the request and the leaf's
 * timestamp, or, when the answer gives it, decoded and checked against
 * the request (and the timestamp the answer states). */
static enum ht_err leaf_data(struct ht_client *c, enum ht_op op,
			     const void *events, const struct spot *s,
			     uint16_t result, const struct leaf_info *li,
			     uint8_t data[HT_LEAF_BYTES_MAX], size_t *len)
{
	char id[HT_U128_DEC_SIZE];
	if (li->data) {
		struct ht_event e;
		if (!get_hex(li->data, data, HT_LEAF_BYTES_MAX, false, len))
			return client_fail(c, HT_ERR_VERIFY,
					   "results[%zu].data: not hex of 1..%d"
					   " bytes", s->event, HT_LEAF_BYTES_MAX);
		enum ht_err err = check_leaf(c, op, events, s, result,
					     li->held, data, *len);
		if (!err && (ht_event_decode(data, *len, &e) ||
			     ht_event_timestamp(&e) != li->ts))
			err = client_fail(c, HT_ERR_VERIFY,
					  "leaf %llu (event %zu, id %s): its"
					  " data has another timestamp than ts",
					  (unsigned long long)s->leaf, s->event,
					  ht_u128_format(s->id, id));
		return err;
	}
	struct ht_event e;
	if (op == HT_OP_CREATE_ACCOUNTS && result != HT_R_OK)
		return client_fail(c, HT_ERR_VERIFY,
				   "leaf %llu (event %zu, id %s): a refused"
				   " account create has no leaf",
				   (unsigned long long)s->leaf, s->event,
				   ht_u128_format(s->id, id));
	const struct ht_transfer *t =
		op == HT_OP_CREATE_TRANSFERS
			? (const struct ht_transfer *)events + s->event
			: NULL;
	if (li->held && result == HT_R_OK && t &&
	    !((t->flags & HT_TRANSFER_PENDING) && t->timeout_s))
		/* held means stored pending with the hub's timeout: not the
		 * request, so the hub must send the leaf */
		return client_fail(c, HT_ERR_VERIFY,
				   "leaf %llu (event %zu, id %s): held for"
				   " review but not pending (no data: the leaf"
				   " would be the request as asked)",
				   (unsigned long long)s->leaf, s->event,
				   ht_u128_format(s->id, id));
	if (op == HT_OP_CREATE_ACCOUNTS)
		ht_event_implied((const struct ht_account *)events + s->event,
				 NULL, result, li->ts, &e);
	else
		ht_event_implied(NULL,
				 (const struct ht_transfer *)events + s->event,
				 result, li->ts, &e);
	if (ht_event_encode(&e, data, len))
		return client_fail(c, HT_ERR_INVALID,
				   "event %zu (id %s): cannot be encoded",
				   s->event, ht_u128_format(s->id, id));
	return HT_OK;
}

/* Rebuild (or decode and check) every leaf of the request, hash them and
 * check the range proof against the head's root. */
static enum ht_err leaves_proven(struct ht_client *c, const struct receipt *rc,
				 enum ht_op op, const void *events,
				 const uint16_t *results,
				 const uint64_t *leaves,
				 const struct leaf_info *info, size_t n)
{
	struct ht_hasher *h;
	size_t cnt = (size_t)rc->count;
	uint8_t (*hashes)[HT_HASH_BYTES] = malloc((cnt + 1) * HT_HASH_BYTES);
	uint8_t (*proof)[HT_HASH_BYTES] = malloc((rc->proof_n + 1) * HT_HASH_BYTES);
	enum ht_err err = hashes && proof ? client_hasher(c, rc->head.hash, &h)
					  : HT_ERR_NOMEM;
	if (err)
		client_fail(c, err, "%s", ht_strerror(err));
	for (size_t i = 0; i < n && !err; i++) {
		if (leaves[i] == HT_CLIENT_NO_LEAF)
			continue;
		size_t j = (size_t)(leaves[i] - rc->first), len;
		uint8_t data[HT_LEAF_BYTES_MAX];
		struct spot s = {leaves[i], i, event_id(op, events, i)};
		err = leaf_data(c, op, events, &s, results[i], &info[i], data,
				&len);
		if (!err && ht_merkle_leaf_hash(h, data, len, hashes[j]))
			err = client_fail(c, HT_ERR_CRYPTO, "cannot hash leaves");
	}
	for (size_t k = 0; k < rc->proof_n && !err; k++)
		if (!get_hex(json_array_get(rc->proof, k), proof[k], HT_HASH_BYTES,
			     true, NULL))
			err = client_fail(c, HT_ERR_VERIFY,
					  "receipt.proof[%zu]: not 64 hex digits", k);
	if (!err && cnt) {
		err = ht_merkle_verify_range(h, rc->first, rc->count,
					     rc->head.tree_size,
					     (const uint8_t(*)[HT_HASH_BYTES])hashes,
					     (const uint8_t(*)[HT_HASH_BYTES])proof,
					     rc->proof_n, rc->head.root);
		if (err)
			err = client_fail(c, err, "receipt: the range proof of leaves"
					  " [%llu, %llu) does not lead to the root"
					  " of head %llu",
					  (unsigned long long)rc->first,
					  (unsigned long long)(rc->first + rc->count),
					  (unsigned long long)rc->head.seq);
	}
	free(hashes);
	free(proof);
	return err;
}

static enum ht_err verify_create(struct ht_client *c, const struct receipt *rc,
				 enum ht_op op, const void *events,
				 const uint16_t *results, const uint64_t *leaves,
				 const struct leaf_info *info, size_t n)
{
	enum ht_err err = receipt_bounds(c, rc, n);
	if (!err)
		err = client_check_head(c, &rc->head, true);
	if (!err)
		err = leaves_assigned(c, rc, op, events, results, leaves, n);
	if (!err)
		err = leaves_proven(c, rc, op, events, results, leaves, info,
				    n);
	return err;
}

/* The top level: {"op":<op>,"results":[n entries],"receipt":{…}}. */
static enum ht_err read_create_root(struct ht_client *c, const json_t *root,
				    enum ht_op op, const void *events, size_t n,
				    uint16_t *results, uint64_t *leaves,
				    struct leaf_info *info, struct receipt *rc)
{
	const json_t *jop = json_object_get(root, "op");
	const json_t *res = json_object_get(root, "results");
	if (!json_is_string(jop) || strcmp(json_string_value(jop), ht_op_name(op)))
		return client_fail(c, HT_ERR_CORRUPT, "op: not \"%s\"",
				   ht_op_name(op));
	if (!json_is_array(res) || json_array_size(res) != n)
		return client_fail(c, HT_ERR_CORRUPT,
				   "results: not an array of %zu results", n);
	for (size_t i = 0; i < n; i++) {
		enum ht_err err = read_result(c, json_array_get(res, i), i, op,
					      event_id(op, events, i),
					      &results[i], &leaves[i], &info[i]);
		if (err)
			return err;
	}
	return read_receipt(c, json_object_get(root, "receipt"), rc);
}

static enum ht_err read_create(struct ht_client *c, enum ht_op op,
			       const void *events, size_t n, const char *body,
			       size_t len, uint16_t *results, uint64_t *leaves,
			       struct ht_client_commit *commit)
{
	HT_ASSERT(op == HT_OP_CREATE_ACCOUNTS || op == HT_OP_CREATE_TRANSFERS);
	HT_ASSERT(n <= HT_BATCH_EVENTS_MAX);
	json_error_t je;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return client_fail(c, HT_ERR_CORRUPT,
				   "the answer is not JSON: %s (column %d)",
				   je.text, je.column);
	uint64_t *own = leaves ? leaves : malloc((n + 1) * sizeof *own);
	struct leaf_info *info = malloc((n + 1) * sizeof *info);
	struct receipt rc;
	enum ht_err err = own && info ? HT_OK
				      : client_fail(c, HT_ERR_NOMEM, "out of memory");
	if (!err)
		err = read_create_root(c, root, op, events, n, results, own,
				       info, &rc);
	if (!err && c->verify)
		err = verify_create(c, &rc, op, events, results, own, info, n);
	if (!err && commit) {
		commit->head = rc.head;
		commit->first = rc.first;
		commit->count = rc.count;
	}
	if (own != leaves)
		free(own);
	free(info);
	json_decref(root);
	return err;
}

enum ht_err client_read_create(struct ht_client *c, enum ht_op op,
			       const void *events, size_t n, const char *body,
			       size_t len, uint16_t *results, uint64_t *leaves,
			       struct ht_client_commit *commit)
{
	/* a batch's answer is ~100,000 JSON values: parse in the arena */
	ht_json_arena_begin();
	enum ht_err err = read_create(c, op, events, n, body, len, results,
				      leaves, commit);
	ht_json_arena_end();
	return err;
}

/* ---- one transfer's receipt ------------------------------------------------- */

/* {"id":"7","leaf":41,"data":"hex","head":{…},"proof":["hex",…]} */
static enum ht_err read_one(struct ht_client *c, const json_t *v, ht_u128 id,
			    struct ht_client_receipt *out)
{
	char msg[160], w[HT_U128_DEC_SIZE];
	const json_t *jid = json_object_get(v, "id");
	const json_t *proof = json_object_get(v, "proof");
	ht_u128 got;
	if (!json_is_string(jid) ||
	    ht_u128_parse(json_string_value(jid), json_string_length(jid), &got) ||
	    got != id)
		return client_fail(c, HT_ERR_CORRUPT,
				   "receipt: the id is not %s",
				   ht_u128_format(id, w));
	out->id = id;
	if (!get_u63(json_object_get(v, "leaf"), &out->leaf))
		return client_fail(c, HT_ERR_CORRUPT, "receipt.leaf: missing");
	if (!get_hex(json_object_get(v, "data"), out->data, sizeof out->data,
		     false, &out->data_len))
		return client_fail(c, HT_ERR_CORRUPT,
				   "receipt.data: not hex of 1..%d bytes",
				   HT_LEAF_BYTES_MAX);
	if (client_head_from_json(json_object_get(v, "head"), &out->head, msg,
				  sizeof msg))
		return client_fail(c, HT_ERR_CORRUPT, "receipt.head: %s", msg);
	if (!json_is_array(proof) || json_array_size(proof) > HT_PROOF_HASHES_MAX)
		return client_fail(c, HT_ERR_CORRUPT,
				   "receipt.proof: not an array of at most %d"
				   " hashes", HT_PROOF_HASHES_MAX);
	out->proof_count = json_array_size(proof);
	for (size_t k = 0; k < out->proof_count; k++)
		if (!get_hex(json_array_get(proof, k), out->proof[k],
			     HT_HASH_BYTES, true, NULL))
			return client_fail(c, HT_ERR_CORRUPT,
					   "receipt.proof[%zu]: not 64 hex digits",
					   k);
	return HT_OK;
}

/* The leaf is a transfer, or a refusal, of this id: fill result and
 * transfer from it. */
static enum ht_err one_leaf(struct ht_client *c, struct ht_client_receipt *out)
{
	struct ht_event e;
	struct spot s = {out->leaf, 0, out->id};
	char id[HT_U128_DEC_SIZE];
	ht_u128_format(out->id, id);
	if (ht_event_decode(out->data, out->data_len, &e))
		return client_fail(c, HT_ERR_VERIFY,
				   "receipt of %s: leaf %llu is not an event"
				   " encoding", id, (unsigned long long)out->leaf);
	if (e.kind == HT_EVENT_TRANSFER) {
		out->result = HT_R_OK;
		out->transfer = e.u.transfer;
	} else if (e.kind == HT_EVENT_REFUSAL) {
		out->result = e.u.refusal.result;
		out->transfer.id = e.u.refusal.id;
		out->transfer.timestamp = e.u.refusal.timestamp;
	} else {
		return wrong_kind(c, &s, e.kind, "a transfer or a refusal");
	}
	if (out->transfer.id != out->id)
		return differ_num(c, &s, "id", out->transfer.id, out->id);
	return HT_OK;
}

static enum ht_err verify_one(struct ht_client *c, uint64_t tree_size,
			      struct ht_client_receipt *out)
{
	struct ht_hasher *h;
	uint8_t leaf_hash[HT_HASH_BYTES];
	unsigned long long leaf = out->leaf, size = out->head.tree_size;
	if (tree_size && out->head.tree_size != tree_size)
		return client_fail(c, HT_ERR_VERIFY,
				   "receipt: head of %llu leaves, %llu were asked",
				   size, (unsigned long long)tree_size);
	if (out->leaf >= out->head.tree_size)
		return client_fail(c, HT_ERR_VERIFY,
				   "receipt: leaf %llu is not in the %llu leaves"
				   " of its head", leaf, size);
	enum ht_err err = client_check_head(c, &out->head, tree_size == 0);
	if (err)
		return err;
	if ((err = client_hasher(c, out->head.hash, &h)) ||
	    (err = ht_merkle_leaf_hash(h, out->data, out->data_len, leaf_hash)))
		return client_fail(c, err, "cannot hash the leaf");
	err = ht_merkle_verify_inclusion(h, out->leaf, out->head.tree_size,
					 leaf_hash,
					 (const uint8_t(*)[HT_HASH_BYTES])out->proof,
					 out->proof_count, out->head.root);
	if (err)
		return client_fail(c, err,
				   "receipt: the inclusion proof of leaf %llu"
				   " does not lead to the root of head %llu",
				   leaf, (unsigned long long)out->head.seq);
	out->verified = true;
	return HT_OK;
}

enum ht_err client_read_receipt(struct ht_client *c, ht_u128 id,
				uint64_t tree_size, const char *body,
				size_t len, struct ht_client_receipt *out)
{
	memset(out, 0, sizeof *out);
	json_error_t je;
	json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!v)
		return client_fail(c, HT_ERR_CORRUPT,
				   "the answer is not JSON: %s (column %d)",
				   je.text, je.column);
	enum ht_err err = read_one(c, v, id, out);
	json_decref(v);
	if (!err)
		err = one_leaf(c, out);
	if (!err && c->verify)
		err = verify_one(c, tree_size, out);
	return err;
}

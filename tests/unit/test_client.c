/*
 * test_client.c — libhuitong-client without a server:
 *
 *  - the strict head parser: a head from ht_sth_json reads back equal;
 *    wrong types, huge numbers, long strings, bad hex, missing, unknown
 *    and repeated members are refused;
 *  - create receipts built here from real pieces (ht_event_encode leaves,
 *    an RFC 9162 tree grown with the frontier, ht_merkle_range_proof, a
 *    head signed with ht_sth_sign): the honest answer is accepted, and a
 *    changed leaf, a leaf of another id, a swapped result, a dropped or
 *    extra leaf, a leaf out of range or used twice, a bad proof hash, a
 *    bad signature, a head going back and a fork are each refused with
 *    HT_ERR_VERIFY; one signature check serves answers sharing a head;
 *  - one transfer's receipt (inclusion proof);
 *  - the request targets (ids, query parameters) and the create bodies,
 *    which must read back through ht_jsonl_parse to the same events;
 *  - apply_line's local answers (the same lines as `ledger apply`), the
 *    lookup reader, option and transport errors of ht_client_open and
 *    ht_client_call (a closed port: refused, retried, HT_ERR_IO).
 *
 * The client's checks are reached through client_internal.h with an
 * offline client (client_open_offline): no network anywhere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "client/client_internal.h"
#include "huitong/reqsig.h"

/* ---- helpers -------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic, so a failure replays. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static struct ht_key *new_key(enum ht_sign_alg alg)
{
	struct ht_key *k;
	assert_int_equal(ht_key_generate(alg, NULL, &k), HT_OK);
	return k;
}

/* An offline client verifying with k's public key. */
static struct ht_client *offline(const struct ht_key *k)
{
	char *pem;
	size_t len;
	struct ht_client *c;
	assert_int_equal(ht_key_public_pem(k, &pem, &len), HT_OK);
	assert_int_equal(client_open_offline(pem, len, &c), HT_OK);
	free(pem);
	return c;
}

/* ---- the head parser --------------------------------------------------------- */

static struct ht_sth sample_head(const struct ht_key *k, enum ht_hash_alg hash)
{
	struct ht_sth h = {.seq = 7, .tree_size = 41,
			   .time_ns = 1767225600123456789ull, .hash = hash,
			   .sign = ht_key_alg(k)};
	for (int i = 0; i < HT_HASH_BYTES; i++) {
		h.root[i] = (uint8_t)(i * 7 + 1);
		h.prev_hash[i] = (uint8_t)(255 - i);
	}
	assert_int_equal(ht_sth_sign(k, &h), HT_OK);
	return h;
}

static void test_head_parse_good(void **state)
{
	(void)state;
	static const enum ht_sign_alg algs[] = {HT_SIGN_SM2, HT_SIGN_ED25519,
						HT_SIGN_ECDSA_P256};
	for (size_t a = 0; a < 3; a++) {
		struct ht_key *k = new_key(algs[a]);
		struct ht_sth h = sample_head(k, a ? HT_HASH_SHA256 : HT_HASH_SM3), got;
		char json[1024], err[160];
		ht_sth_json(&h, json, sizeof json);
		assert_int_equal(ht_client_parse_head(json, strlen(json), &got, err,
						      sizeof err), HT_OK);
		assert_string_equal(err, "");
		assert_int_equal(got.seq, h.seq);
		assert_int_equal(got.tree_size, h.tree_size);
		assert_true(got.time_ns == h.time_ns);
		assert_memory_equal(got.root, h.root, HT_HASH_BYTES);
		assert_memory_equal(got.prev_hash, h.prev_hash, HT_HASH_BYTES);
		assert_int_equal(got.sig_len, h.sig_len);
		assert_memory_equal(got.sig, h.sig, h.sig_len);
		assert_int_equal(got.hash, h.hash);
		assert_int_equal(got.sign, h.sign);
		assert_int_equal(ht_sth_verify(k, &got), HT_OK);
		ht_key_destroy(k);
	}
}

/* Members of a good head as JSON texts; a case replaces one. */
static const char *const member_names[8] = {
	"seq", "tree_size", "time_ns", "root", "prev_hash", "hash", "sign",
	"signature"};

#define HEX64 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static void head_text(char *out, size_t size, int replace, const char *value,
		      const char *extra)
{
	const char *vals[8] = {"5", "10", "\"1767225600000000000\"",
			       "\"" HEX64 "\"", "\"" HEX64 "\"", "\"sm3\"",
			       "\"sm2\"", "\"3045022100aa\""};
	size_t n = (size_t)snprintf(out, size, "{");
	bool first = true;
	for (int i = 0; i < 8; i++) {
		if (i == replace && !value)
			continue;
		n += (size_t)snprintf(out + n, size - n, "%s\"%s\":%s",
				      first ? "" : ",", member_names[i],
				      i == replace ? value : vals[i]);
		first = false;
	}
	if (extra)
		n += (size_t)snprintf(out + n, size - n, ",%s", extra);
	snprintf(out + n, size - n, "}");
}

struct bad_head {
	int member;          /* -1: none replaced */
	const char *value;   /* NULL: member removed */
	const char *extra;   /* appended member text */
	const char *message; /* expected in err */
};

static void test_head_parse_hostile(void **state)
{
	(void)state;
	static const struct bad_head cases[] = {
		{0, "\"5\"", NULL, "seq:"},
		{0, "-1", NULL, "seq:"},
		{0, "5.0", NULL, "seq:"},
		{0, "18446744073709551616", NULL, "not JSON"},
		{0, "99999999999999999999999999", NULL, "not JSON"},
		{1, "null", NULL, "tree_size:"},
		{1, "true", NULL, "tree_size:"},
		{2, "1767225600000000000", NULL, "time_ns:"},
		{2, "\"018\"", NULL, "time_ns:"},
		{2, "\"18446744073709551616\"", NULL, "time_ns:"},
		{2, "\"\"", NULL, "time_ns:"},
		{2, "\"-5\"", NULL, "time_ns:"},
		{3, "\"" HEX64 "0\"", NULL, "root:"},
		{3, "\"zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"",
		 NULL, "root:"},
		{3, "\"00\"", NULL, "root:"},
		{3, "[]", NULL, "root:"},
		{4, "\"" HEX64 HEX64 "\"", NULL, "prev_hash:"},
		{5, "\"md5\"", NULL, "hash:"},
		{5, "\"SM3\"", NULL, "hash:"},
		{6, "\"rsa\"", NULL, "sign:"},
		{6, "5", NULL, "sign:"},
		{7, "\"\"", NULL, "signature:"},
		{7, "\"abc\"", NULL, "signature:"},
		{7, "\"xyxy\"", NULL, "signature:"},
		{0, NULL, NULL, "seq: missing"},
		{3, NULL, NULL, "root: missing"},
		{7, NULL, NULL, "signature: missing"},
		{-1, NULL, "\"extra\":1", "unknown member"},
		{-1, NULL, "\"seq\":5", "not JSON"},  /* a repeated member */
	};
	char json[2048], err[160];
	struct ht_sth h;
	head_text(json, sizeof json, -1, NULL, NULL);
	assert_int_equal(ht_client_parse_head(json, strlen(json), &h, err,
					      sizeof err), HT_OK);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		head_text(json, sizeof json, cases[i].member, cases[i].value,
			  cases[i].extra);
		memset(&h, 0xab, sizeof h);
		enum ht_err e = ht_client_parse_head(json, strlen(json), &h, err,
						     sizeof err);
		if (e != HT_ERR_INVALID || !strstr(err, cases[i].message))
			fail_msg("case %zu (%s): %s, err '%s'", i, json,
				 ht_strerror(e), err);
		assert_int_equal(h.seq, 0); /* cleared on failure */
	}
	/* A signature of 161 bytes is one too many; 160 fit. */
	char sig[2 * 161 + 3];
	memset(sig + 1, 'a', 2 * 161);
	sig[0] = '"';
	sig[2 * 161 + 1] = '"';
	sig[2 * 161 + 2] = '\0';
	head_text(json, sizeof json, 7, sig, NULL);
	assert_int_equal(ht_client_parse_head(json, strlen(json), &h, err,
					      sizeof err), HT_ERR_INVALID);
	sig[2 * 160 + 1] = '"';
	sig[2 * 160 + 2] = '\0';
	head_text(json, sizeof json, 7, sig, NULL);
	assert_int_equal(ht_client_parse_head(json, strlen(json), &h, err,
					      sizeof err), HT_OK);
	assert_int_equal(h.sig_len, 160);
	/* Too long as a whole, not JSON, not an object, NULL. */
	char *big = malloc(HT_CLIENT_HEAD_JSON_BYTES_MAX + 2);
	memset(big, ' ', HT_CLIENT_HEAD_JSON_BYTES_MAX + 1);
	assert_int_equal(ht_client_parse_head(big, HT_CLIENT_HEAD_JSON_BYTES_MAX + 1,
					      &h, err, sizeof err), HT_ERR_LIMIT);
	free(big);
	assert_int_equal(ht_client_parse_head("{", 1, &h, err, sizeof err),
			 HT_ERR_INVALID);
	assert_int_equal(ht_client_parse_head("[1]", 3, &h, err, sizeof err),
			 HT_ERR_INVALID);
	assert_non_null(strstr(err, "object"));
	assert_int_equal(ht_client_parse_head(NULL, 0, &h, NULL, 0),
			 HT_ERR_INVALID);
	/* A long unknown member name is quoted cut, not overflowing. */
	char name[600], extra[700];
	memset(name, 'x', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	snprintf(extra, sizeof extra, "\"%s\":1", name);
	head_text(json, sizeof json, -1, NULL, extra);
	assert_int_equal(ht_client_parse_head(json, strlen(json), &h, err,
					      sizeof err), HT_ERR_INVALID);
	assert_true(strlen(err) < 80);
}

/* ---- a journal grown here ------------------------------------------------------- */

#define TREE_LEAVES_MAX 64

struct tree {
	struct ht_hasher *h;
	struct ht_merkle_frontier f;
	uint8_t nodes[2 * TREE_LEAVES_MAX][HT_HASH_BYTES];
	uint64_t n;
};

static void tree_append(struct tree *t, const uint8_t *data, size_t len)
{
	uint8_t leaf[HT_HASH_BYTES], out[65][HT_HASH_BYTES];
	unsigned k;
	assert_true(t->n < TREE_LEAVES_MAX);
	assert_int_equal(ht_merkle_leaf_hash(t->h, data, len, leaf), HT_OK);
	assert_int_equal(ht_merkle_frontier_append(&t->f, t->h, leaf, out, &k),
			 HT_OK);
	uint64_t seq = ht_merkle_node_count(t->n); /* nodes before this leaf */
	for (unsigned i = 0; i < k; i++)
		memcpy(t->nodes[seq + i], out[i], HT_HASH_BYTES);
	t->n++;
}

static enum ht_err tree_node(void *ctx, unsigned level, uint64_t index,
			     uint8_t out[HT_HASH_BYTES])
{
	struct tree *t = ctx;
	memcpy(out, t->nodes[ht_merkle_node_seq(level, index)], HT_HASH_BYTES);
	return HT_OK;
}

static void encode(const struct ht_event *e, uint8_t *buf, size_t *len)
{
	assert_int_equal(ht_event_encode(e, buf, len), HT_OK);
}

/* ---- create receipts ------------------------------------------------------------- */

#define FX_EVENTS 4
#define FX_LEAVES_MAX 8

/*
 * A create_transfers request of four events and the hub's answer:
 *   0  an ordinary transfer            ok                leaf first
 *   1  a transfer                      exceeds_credits   leaf first+1 (refusal)
 *   2  a retry of an old one           exists            no leaf
 *   3  balancing_debit, 600 asked      ok (500 moved)    leaf first+2
 * with `before` other leaves ahead of the request and `after` behind it
 * (other requests of the same group commit).
 */
struct fx {
	struct ht_key *hub;
	enum ht_hash_alg hash;
	struct ht_transfer req[FX_EVENTS];
	size_t n;
	/* the answer */
	ht_u128 answer_id[FX_EVENTS];
	uint16_t results[FX_EVENTS];
	uint64_t leaf_of[FX_EVENTS];
	struct ht_event ev[FX_LEAVES_MAX]; /* the request's leaves */
	size_t ev_n;
	uint64_t before, after, seq;
	uint8_t prev_hash[HT_HASH_BYTES];
	/* built by fx_build */
	struct ht_sth head;
	uint8_t data[FX_LEAVES_MAX][HT_LEAF_BYTES_MAX];
	size_t data_len[FX_LEAVES_MAX];
	uint8_t proof[HT_PROOF_HASHES_MAX][HT_HASH_BYTES];
	size_t proof_n;
	uint64_t first, count;
	struct tree tree;
	bool force_data; /* render "data" on every leaf, needed or not */
	const char *risk[FX_EVENTS]; /* a result's "risk" member text, or NULL */
};

static struct ht_transfer xfer(ht_u128 id, uint64_t amount, uint16_t flags)
{
	struct ht_transfer t = {.id = id, .debit_account_id = 1,
				.credit_account_id = 2, .amount = amount,
				.ledger = 156, .code = 1, .flags = flags};
	memcpy(t.user_data, "inv-42", 6);
	t.user_data_len = 6;
	return t;
}

static void fx_init(struct fx *f, enum ht_sign_alg sign, enum ht_hash_alg hash)
{
	memset(f, 0, sizeof *f);
	f->hub = new_key(sign);
	f->hash = hash;
	f->n = FX_EVENTS;
	f->req[0] = xfer(7, 500, 0);
	f->req[1] = xfer(8, 600, 0);
	f->req[2] = xfer(9, 100, 0);
	f->req[3] = xfer((ht_u128)1 << 100, 600, HT_TRANSFER_BALANCING_DEBIT);
	uint16_t res[FX_EVENTS] = {HT_R_OK, HT_R_EXCEEDS_CREDITS, HT_R_EXISTS,
				   HT_R_OK};
	memcpy(f->results, res, sizeof res);
	for (size_t i = 0; i < FX_EVENTS; i++)
		f->answer_id[i] = f->req[i].id;
	f->before = 5;
	f->after = 3;
	f->seq = 12;
	/* Leaves: what the engine stores for each. */
	f->ev[0].kind = HT_EVENT_TRANSFER;
	f->ev[0].u.transfer = f->req[0];
	f->ev[0].u.transfer.timestamp = 1000;
	f->ev[1].kind = HT_EVENT_REFUSAL;
	f->ev[1].u.refusal.id = 8;
	f->ev[1].u.refusal.result = HT_R_EXCEEDS_CREDITS;
	f->ev[1].u.refusal.timestamp = 1001;
	f->ev[2].kind = HT_EVENT_TRANSFER;
	f->ev[2].u.transfer = f->req[3];
	f->ev[2].u.transfer.amount = 500; /* clamped */
	f->ev[2].u.transfer.timestamp = 1002;
	f->ev_n = 3;
	uint64_t leaf_of[FX_EVENTS] = {f->before, f->before + 1, HT_CLIENT_NO_LEAF,
				       f->before + 2};
	memcpy(f->leaf_of, leaf_of, sizeof leaf_of);
}

/* Grow the tree (other leaves, the request's, other leaves), prove the
 * range and sign the head. */
static void fx_build(struct fx *f)
{
	struct tree *t = &f->tree;
	ht_hasher_destroy(t->h);
	memset(t, 0, sizeof *t);
	assert_int_equal(ht_hasher_create(f->hash, &t->h), HT_OK);
	ht_merkle_frontier_init(&t->f, 0);
	uint8_t buf[HT_LEAF_BYTES_MAX];
	size_t len;
	for (uint64_t i = 0; i < f->before + f->ev_n + f->after; i++) {
		if (i >= f->before && i < f->before + f->ev_n) {
			size_t j = (size_t)(i - f->before);
			encode(&f->ev[j], f->data[j], &f->data_len[j]);
			tree_append(t, f->data[j], f->data_len[j]);
			continue;
		}
		struct ht_event other = {.kind = HT_EVENT_EXPIRY};
		other.u.expiry.pending_id = 1000 + i;
		other.u.expiry.timestamp = i;
		encode(&other, buf, &len);
		tree_append(t, buf, len);
	}
	f->first = f->before;
	f->count = f->ev_n;
	f->proof_n = 0;
	if (f->count)
		assert_int_equal(ht_merkle_range_proof(t->h, f->first, f->count,
						       t->n, tree_node, t,
						       f->proof, &f->proof_n),
				 HT_OK);
	memset(&f->head, 0, sizeof f->head);
	f->head.seq = f->seq;
	f->head.tree_size = t->n;
	f->head.time_ns = 1767225600000000000ull + f->seq;
	f->head.hash = f->hash;
	f->head.sign = ht_key_alg(f->hub);
	memcpy(f->head.prev_hash, f->prev_hash, HT_HASH_BYTES);
	assert_int_equal(ht_merkle_frontier_root(&t->f, t->h, f->head.root), HT_OK);
	assert_int_equal(ht_sth_sign(f->hub, &f->head), HT_OK);
}

static void fx_free(struct fx *f)
{
	ht_hasher_destroy(f->tree.h);
	ht_key_destroy(f->hub);
}

static void put_hex(struct ht_buf *b, const uint8_t *p, size_t n)
{
	char hex[2 * HT_LEAF_BYTES_MAX + 1];
	assert_true(n <= HT_LEAF_BYTES_MAX);
	ht_hex_encode(p, n, hex);
	assert_int_equal(ht_buf_printf(b, "\"%s\"", hex), HT_OK);
}

/* A result's leaf as the hub writes it: "ts" from the leaf's data, and
 * "data" only when the data is not what the request implies (or is not an
 * event at all: a test changed it). */
static void fx_render_leaf(const struct fx *f, size_t i, struct ht_buf *b)
{
	uint64_t j = f->leaf_of[i] - f->first, ts = 0;
	assert_int_equal(ht_buf_printf(b, ",\"leaf\":%llu",
				       (unsigned long long)f->leaf_of[i]),
			 HT_OK);
	if (j >= f->count) { /* outside the receipt: a test's lie */
		assert_int_equal(ht_buf_printf(b, ",\"ts\":0"), HT_OK);
		return;
	}
	struct ht_event stored, implied;
	uint8_t buf[HT_LEAF_BYTES_MAX];
	size_t len = 0;
	bool same = false;
	if (ht_event_decode(f->data[j], f->data_len[j], &stored) == HT_OK) {
		ts = ht_event_timestamp(&stored);
		ht_event_implied(NULL, &f->req[i], f->results[i], ts,
				 &implied);
		encode(&implied, buf, &len);
		same = len == f->data_len[j] && !memcmp(buf, f->data[j], len);
	}
	assert_int_equal(ht_buf_printf(b, ",\"ts\":%llu",
				       (unsigned long long)ts), HT_OK);
	if (same && !f->force_data)
		return;
	assert_int_equal(ht_buf_printf(b, ",\"data\":"), HT_OK);
	put_hex(b, f->data[j], f->data_len[j]);
}

/* The answer as the hub writes it. */
static void fx_render(const struct fx *f, struct ht_buf *b)
{
	char id[HT_U128_DEC_SIZE], head[1024];
	b->len = 0;
	assert_int_equal(ht_buf_printf(b, "{\"op\":\"create_transfers\",\"results\":["),
			 HT_OK);
	for (size_t i = 0; i < f->n; i++) {
		assert_int_equal(ht_buf_printf(b, "%s{\"index\":%zu,\"id\":\"%s\","
					       "\"result\":\"%s\"", i ? "," : "", i,
					       ht_u128_format(f->answer_id[i], id),
					       ht_result_name(f->results[i])),
				 HT_OK);
		if (f->leaf_of[i] != HT_CLIENT_NO_LEAF)
			fx_render_leaf(f, i, b);
		if (f->risk[i])
			assert_int_equal(ht_buf_printf(b, ",\"risk\":%s",
						       f->risk[i]), HT_OK);
		assert_int_equal(ht_buf_append(b, "}", 1), HT_OK);
	}
	ht_sth_json(&f->head, head, sizeof head);
	assert_int_equal(ht_buf_printf(b, "],\"receipt\":{\"head\":%s,\"first\":%llu,"
				       "\"count\":%llu,\"proof\":[", head,
				       (unsigned long long)f->first,
				       (unsigned long long)f->count), HT_OK);
	for (size_t k = 0; k < f->proof_n; k++) {
		if (k)
			assert_int_equal(ht_buf_append(b, ",", 1), HT_OK);
		put_hex(b, f->proof[k], HT_HASH_BYTES);
	}
	assert_int_equal(ht_buf_append(b, "]}}", 3), HT_OK);
}

/* Render f and read it with c; the verdict, and the message in msg. */
static enum ht_err fx_check(struct ht_client *c, const struct fx *f,
			    uint16_t *results, uint64_t *leaves,
			    struct ht_client_commit *commit)
{
	struct ht_buf b = {0};
	uint16_t r[FX_EVENTS];
	uint64_t l[FX_EVENTS];
	fx_render(f, &b);
	enum ht_err e = client_read_create(c, HT_OP_CREATE_TRANSFERS, f->req, f->n,
					   b.data, b.len, results ? results : r,
					   leaves ? leaves : l, commit);
	ht_buf_free(&b);
	return e;
}

/* A fresh client must refuse f with err and a message containing msg. */
static void expect_refused(const struct fx *f, enum ht_err err, const char *msg)
{
	struct ht_client *c = offline(f->hub);
	enum ht_err e = fx_check(c, f, NULL, NULL, NULL);
	if (e != err || !strstr(ht_client_error(c), msg))
		fail_msg("expected %s with '%s', got %s: '%s'", ht_strerror(err),
			 msg, ht_strerror(e), ht_client_error(c));
	ht_client_close(c);
}

static void honest(enum ht_sign_alg sign, enum ht_hash_alg hash)
{
	struct fx f;
	fx_init(&f, sign, hash);
	fx_build(&f);
	struct ht_client *c = offline(f.hub);
	uint16_t results[FX_EVENTS];
	uint64_t leaves[FX_EVENTS];
	struct ht_client_commit commit;
	assert_int_equal(fx_check(c, &f, results, leaves, &commit), HT_OK);
	assert_string_equal(ht_client_error(c), "");
	assert_memory_equal(results, f.results, sizeof results);
	assert_memory_equal(leaves, f.leaf_of, sizeof leaves);
	assert_int_equal(commit.first, f.before);
	assert_int_equal(commit.count, 3);
	assert_int_equal(commit.head.seq, f.seq);
	assert_int_equal(commit.head.tree_size, f.before + 3 + f.after);
	assert_memory_equal(commit.head.root, f.head.root, HT_HASH_BYTES);
	assert_int_equal(c->signature_checks, 1);
	/* Compact: only the clamped balancing transfer's data is sent. */
	struct ht_buf b = {0};
	fx_render(&f, &b);
	const char *d = strstr(b.data, "\"data\":");
	assert_non_null(d);
	assert_null(strstr(d + 1, "\"data\":"));
	assert_non_null(strstr(b.data, "\"leaf\":5,\"ts\":1000}"));
	ht_buf_free(&b);
	/* Data sent where it could be rebuilt is checked and accepted. */
	f.force_data = true;
	assert_int_equal(fx_check(c, &f, NULL, NULL, NULL), HT_OK);
	ht_client_close(c);
	fx_free(&f);
}

static void test_receipt_honest(void **state)
{
	(void)state;
	honest(HT_SIGN_SM2, HT_HASH_SM3);
	honest(HT_SIGN_ED25519, HT_HASH_SHA256);
	honest(HT_SIGN_ECDSA_P256, HT_HASH_SM3);
}

/* Shapes of the tree around the request: the range at the start, the
 * end, alone, inside bigger trees. */
static void test_receipt_shapes(void **state)
{
	(void)state;
	for (uint64_t before = 0; before < 9; before++) {
		for (uint64_t after = 0; after < 6; after++) {
			struct fx f;
			fx_init(&f, HT_SIGN_ED25519, HT_HASH_SHA256);
			f.before = before;
			f.after = after;
			f.leaf_of[0] = before;
			f.leaf_of[1] = before + 1;
			f.leaf_of[3] = before + 2;
			fx_build(&f);
			struct ht_client *c = offline(f.hub);
			assert_int_equal(fx_check(c, &f, NULL, NULL, NULL), HT_OK);
			ht_client_close(c);
			fx_free(&f);
		}
	}
}

static void test_receipt_changed_leaf(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, HT_SIGN_SM2, HT_HASH_SM3);
	/* A leaf the hub proves honestly but that is not what was asked. */
	f.ev[0].u.transfer.amount = 600;
	fx_build(&f);
	expect_refused(&f, HT_ERR_VERIFY,
		       "leaf 5 (event 0, id 7): amount 600 differs from the"
		       " request's 500");
	f.ev[0].u.transfer.amount = 500;
	f.ev[0].u.transfer.credit_account_id = 3;
	fx_build(&f);
	expect_refused(&f, HT_ERR_VERIFY, "credit_account_id 3 differs");
	f.ev[0].u.transfer.credit_account_id = 2;
	f.ev[0].u.transfer.flags = HT_TRANSFER_PENDING;
	fx_build(&f);
	expect_refused(&f, HT_ERR_VERIFY, "flags 2 differs");
	f.ev[0].u.transfer.flags = 0;
	f.ev[0].u.transfer.user_data[0] = 'X';
	fx_build(&f);
	expect_refused(&f, HT_ERR_VERIFY, "user_data differs");
	f.ev[0].u.transfer.user_data[0] = 'i';
	/* A balancing transfer may move less than asked, never more. */
	f.ev[2].u.transfer.amount = 601;
	fx_build(&f);
	expect_refused(&f, HT_ERR_VERIFY, "amount 601 differs");
	f.ev[2].u.transfer.amount = 600;
	fx_build(&f);
	struct ht_client *c = offline(f.hub);
	assert_int_equal(fx_check(c, &f, NULL, NULL, NULL), HT_OK);
	ht_client_close(c);
	/* A leaf changed after the proof was made, in a field the request
	 * does not set (the timestamp, at byte 85): the proof fails. */
	f.data[0][90] ^= 1;
	expect_refused(&f, HT_ERR_VERIFY, "range proof of leaves [5, 8)");
	fx_free(&f);
}

/* A transfer the hub's risk engine held for review (docs/api.md "Risk")
 * is stored pending with the hub's timeout: accepted exactly when its
 * result says review, and then only that difference. */
static void test_receipt_risk_review(void **state)
{
	(void)state;
	static const char review[] =
		"{\"decision\":\"review\",\"score\":0.734211,"
		"\"reasons\":[\"new_device_burst\",\"model_score\"]}";
	static const char allow[] =
		"{\"decision\":\"allow\",\"score\":0.01,\"reasons\":[]}";
	struct fx f;
	fx_init(&f, HT_SIGN_SM2, HT_HASH_SM3);
	f.ev[0].u.transfer.flags = HT_TRANSFER_PENDING;
	f.ev[0].u.transfer.timeout_s = 86400;
	fx_build(&f);
	expect_refused(&f, HT_ERR_VERIFY, "flags 2 differs"); /* no decision */
	f.risk[0] = allow;
	expect_refused(&f, HT_ERR_VERIFY, "flags 2 differs");
	f.risk[0] = review;
	f.risk[1] = "{\"decision\":\"block\",\"score\":1,\"reasons\":[\"x\"]}";
	struct ht_client *c = offline(f.hub);
	assert_int_equal(fx_check(c, &f, NULL, NULL, NULL), HT_OK);
	ht_client_close(c);
	/* held, yet something else differs too */
	f.ev[0].u.transfer.amount = 501;
	fx_build(&f);
	expect_refused(&f, HT_ERR_VERIFY, "amount 501 differs");
	f.ev[0].u.transfer.amount = 500;
	f.ev[0].u.transfer.flags = HT_TRANSFER_PENDING | HT_TRANSFER_LINKED;
	fx_build(&f);
	expect_refused(&f, HT_ERR_VERIFY, "flags 3 differs");
	/* review, but not stored pending, or without a timeout */
	f.ev[0].u.transfer.flags = 0;
	f.ev[0].u.transfer.timeout_s = 0;
	fx_build(&f);
	expect_refused(&f, HT_ERR_VERIFY, "held for review but not pending");
	f.ev[0].u.transfer.flags = HT_TRANSFER_PENDING;
	fx_build(&f);
	expect_refused(&f, HT_ERR_VERIFY, "held for review but not pending");
	/* a request pending with its own timeout keeps it */
	f.req[0].flags = HT_TRANSFER_PENDING;
	f.req[0].timeout_s = 60;
	f.ev[0].u.transfer.timeout_s = 86400;
	fx_build(&f);
	expect_refused(&f, HT_ERR_VERIFY, "timeout_s 86400 differs");
	f.ev[0].u.transfer.timeout_s = 60;
	fx_build(&f);
	c = offline(f.hub);
	assert_int_equal(fx_check(c, &f, NULL, NULL, NULL), HT_OK);
	ht_client_close(c);
	/* a malformed decision is not the API's answer */
	static const char *const bad[] = {
		"[]", "{\"decision\":\"maybe\",\"score\":0,\"reasons\":[]}",
		"{\"decision\":\"allow\",\"score\":2,\"reasons\":[]}",
		"{\"decision\":\"allow\",\"score\":0,\"reasons\":[1]}",
		"{\"decision\":\"allow\",\"score\":0}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		f.risk[0] = bad[i];
		expect_refused(&f, HT_ERR_CORRUPT, "results[0].risk");
	}
	fx_free(&f);
}

static void test_receipt_other_id(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, HT_SIGN_SM2, HT_HASH_SM3);
	f.ev[0].u.transfer.id = 70;
	fx_build(&f);
	expect_refused(&f, HT_ERR_VERIFY, "leaf 5 (event 0, id 7): id 70 differs");
	f.ev[0].u.transfer.id = 7;
	f.ev[1].u.refusal.id = 7;
	fx_build(&f);
	expect_refused(&f, HT_ERR_VERIFY, "a refusal of id 7");
	/* The answer names another id for an event: not an answer to this
	 * request at all. */
	f.ev[1].u.refusal.id = 8;
	fx_build(&f);
	f.answer_id[2] = 99;
	expect_refused(&f, HT_ERR_CORRUPT, "results[2]: the id is not the request's 9");
	fx_free(&f);
}

static void test_receipt_swapped_result(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, HT_SIGN_SM2, HT_HASH_SM3);
	fx_build(&f);
	/* The answer says exceeds_debits, the journal says exceeds_credits. */
	f.results[1] = HT_R_EXCEEDS_DEBITS;
	expect_refused(&f, HT_ERR_VERIFY,
		       "refused with exceeds_credits, the answer says exceeds_debits");
	/* ok claimed for the refused one. */
	f.results[1] = HT_R_OK;
	expect_refused(&f, HT_ERR_VERIFY, "a refusal, not a transfer event");
	/* A refusal claimed for the committed one. */
	f.results[1] = HT_R_EXCEEDS_CREDITS;
	f.results[0] = HT_R_EXCEEDS_CREDITS;
	expect_refused(&f, HT_ERR_VERIFY, "a transfer event, not a refusal");
	/* Two events' leaves swapped. */
	f.results[0] = HT_R_OK;
	f.leaf_of[0] = f.before + 2;
	f.leaf_of[3] = f.before;
	expect_refused(&f, HT_ERR_VERIFY, "(event 0, id 7): id");
	fx_free(&f);
}

static void test_receipt_dropped_extra(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, HT_SIGN_SM2, HT_HASH_SM3);
	/* The last ok's leaf dropped from the receipt: it claims ok unproven. */
	f.ev_n = 2;
	f.leaf_of[3] = HT_CLIENT_NO_LEAF;
	fx_build(&f);
	expect_refused(&f, HT_ERR_VERIFY, "event 3 (id 1267650600228229401496703205376):"
					  " ok without a journal leaf");
	/* ... or still pointing at it, now outside the range. */
	f.leaf_of[3] = f.before + 2;
	expect_refused(&f, HT_ERR_VERIFY, "leaf 7 is outside the receipt's [5, 7)");
	/* An extra leaf no result uses. */
	fx_free(&f);
	fx_init(&f, HT_SIGN_SM2, HT_HASH_SM3);
	f.ev[3] = f.ev[2];
	f.ev[3].u.transfer.id = 77;
	f.ev_n = 4;
	fx_build(&f);
	expect_refused(&f, HT_ERR_VERIFY, "receipt: 4 leaves, but 3 events have one");
	fx_free(&f);
	/* One leaf given to two events. */
	fx_init(&f, HT_SIGN_SM2, HT_HASH_SM3);
	fx_build(&f);
	f.leaf_of[3] = f.leaf_of[0];
	expect_refused(&f, HT_ERR_VERIFY, "leaf 5 is given to two events");
	/* A leaf's timestamp missing, or a timestamp with no leaf, or data
	 * that is not hex. */
	f.leaf_of[3] = f.before + 2;
	static const struct {
		const char *from, *to, *msg;
		enum ht_err err;
	} edits[] = {
		{"\"leaf\":5,\"ts\":1000", "\"leaf\":5,\"tz\":1000",
		 "results[0].ts: missing beside its leaf", HT_ERR_CORRUPT},
		{"\"result\":\"exists\"", "\"result\":\"exists\",\"ts\":3",
		 "results[2]: ts or data without a leaf", HT_ERR_CORRUPT},
		{"\"data\":\"", "\"data\":\"zz", "results[3].data: not hex",
		 HT_ERR_VERIFY},
	};
	for (size_t k = 0; k < sizeof edits / sizeof edits[0]; k++) {
		struct ht_buf b = {0}, e = {0};
		fx_render(&f, &b);
		char *at = strstr(b.data, edits[k].from);
		assert_non_null(at);
		size_t pre = (size_t)(at - b.data), from = strlen(edits[k].from);
		assert_int_equal(ht_buf_append(&e, b.data, pre), HT_OK);
		assert_int_equal(ht_buf_printf(&e, "%s", edits[k].to), HT_OK);
		assert_int_equal(ht_buf_append(&e, at + from, b.len - pre - from),
				 HT_OK);
		struct ht_client *c = offline(f.hub);
		uint16_t r[FX_EVENTS];
		uint64_t l[FX_EVENTS];
		assert_int_equal(client_read_create(c, HT_OP_CREATE_TRANSFERS,
						    f.req, f.n, e.data, e.len,
						    r, l, NULL),
				 edits[k].err);
		if (!strstr(ht_client_error(c), edits[k].msg))
			fail_msg("edit %zu: '%s'", k, ht_client_error(c));
		ht_client_close(c);
		ht_buf_free(&b);
		ht_buf_free(&e);
	}
	/* A timestamp that is not the leaf's, the data given. */
	f.force_data = true;
	struct ht_buf b = {0};
	fx_render(&f, &b);
	char *ts = strstr(b.data, "\"ts\":1000");
	assert_non_null(ts);
	ts[8] = '1';
	struct ht_client *c = offline(f.hub);
	uint16_t r[FX_EVENTS];
	uint64_t l[FX_EVENTS];
	assert_int_equal(client_read_create(c, HT_OP_CREATE_TRANSFERS, f.req, f.n,
					    b.data, b.len, r, l, NULL),
			 HT_ERR_VERIFY);
	assert_non_null(strstr(ht_client_error(c),
			       "its data has another timestamp than ts"));
	ht_client_close(c);
	ht_buf_free(&b);
	f.force_data = false;
	/* ... and without the data, the rebuilt leaf fails the proof. */
	fx_render(&f, &b);
	ts = strstr(b.data, "\"ts\":1000");
	assert_non_null(ts);
	ts[8] = '1';
	c = offline(f.hub);
	assert_int_equal(client_read_create(c, HT_OP_CREATE_TRANSFERS, f.req, f.n,
					    b.data, b.len, r, l, NULL),
			 HT_ERR_VERIFY);
	assert_non_null(strstr(ht_client_error(c), "range proof"));
	ht_client_close(c);
	ht_buf_free(&b);
	f.count = 5;
	expect_refused(&f, HT_ERR_VERIFY, "receipt: 5 leaves for 4 events");
	/* Leaves beyond the head's tree. */
	f.count = 3;
	f.first = f.head.tree_size - 1;
	expect_refused(&f, HT_ERR_VERIFY, "are not in the 11 leaves of head 12");
	fx_free(&f);
}

static void test_receipt_bad_proof_and_signature(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, HT_SIGN_SM2, HT_HASH_SM3);
	fx_build(&f);
	assert_true(f.proof_n >= 2);
	for (size_t k = 0; k < f.proof_n; k++) {
		f.proof[k][k % HT_HASH_BYTES] ^= 0x40;
		expect_refused(&f, HT_ERR_VERIFY, "range proof");
		f.proof[k][k % HT_HASH_BYTES] ^= 0x40;
	}
	f.proof_n--; /* a hash missing */
	expect_refused(&f, HT_ERR_VERIFY, "range proof");
	f.proof_n++;
	/* The root, then the signature itself. */
	f.head.root[3] ^= 1;
	expect_refused(&f, HT_ERR_VERIFY, "head 12: the signature is not the hub's");
	f.head.root[3] ^= 1;
	f.head.sig[f.head.sig_len / 2] ^= 0x10;
	expect_refused(&f, HT_ERR_VERIFY, "head 12: the signature is not the hub's");
	f.head.sig[f.head.sig_len / 2] ^= 0x10;
	/* Signed by another key, or naming another algorithm. */
	struct ht_key *other = new_key(HT_SIGN_SM2);
	struct ht_sth good = f.head;
	assert_int_equal(ht_sth_sign(other, &f.head), HT_OK);
	expect_refused(&f, HT_ERR_VERIFY, "the signature is not the hub's");
	f.head = good;
	f.head.sign = HT_SIGN_ED25519;
	expect_refused(&f, HT_ERR_VERIFY, "head 12: signed with ed25519, the hub key is sm2");
	f.head = good;
	ht_key_destroy(other);
	/* Still good after all that. */
	struct ht_client *c = offline(f.hub);
	assert_int_equal(fx_check(c, &f, NULL, NULL, NULL), HT_OK);
	ht_client_close(c);
	fx_free(&f);
}

static void test_receipt_head_order(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, HT_SIGN_ED25519, HT_HASH_SHA256);
	fx_build(&f);
	struct ht_client *c = offline(f.hub);
	assert_int_equal(fx_check(c, &f, NULL, NULL, NULL), HT_OK);
	/* The same head again: no second signature check. */
	assert_int_equal(fx_check(c, &f, NULL, NULL, NULL), HT_OK);
	assert_int_equal(c->signature_checks, 1);
	uint8_t hash12[HT_HASH_BYTES];
	struct ht_hasher *h;
	assert_int_equal(ht_hasher_create(HT_HASH_SHA256, &h), HT_OK);
	assert_int_equal(ht_sth_hash(h, &f.head, hash12), HT_OK);
	/* Head 13, linked to 12, with more leaves: accepted. */
	f.seq = 13;
	f.after = 5;
	memcpy(f.prev_hash, hash12, HT_HASH_BYTES);
	fx_build(&f);
	assert_int_equal(fx_check(c, &f, NULL, NULL, NULL), HT_OK);
	assert_int_equal(c->signature_checks, 2);
	/* Back to head 11: refused. */
	f.seq = 11;
	f.after = 1;
	memset(f.prev_hash, 0, sizeof f.prev_hash);
	fx_build(&f);
	enum ht_err e = fx_check(c, &f, NULL, NULL, NULL);
	assert_int_equal(e, HT_ERR_VERIFY);
	assert_non_null(strstr(ht_client_error(c),
			       "head 11 is older than head 13 seen before"));
	/* Another head numbered 13: a fork. */
	f.seq = 13;
	f.after = 6;
	memcpy(f.prev_hash, hash12, HT_HASH_BYTES);
	fx_build(&f);
	assert_int_equal(fx_check(c, &f, NULL, NULL, NULL), HT_ERR_VERIFY);
	assert_non_null(strstr(ht_client_error(c), "two different heads numbered 13"));
	/* Head 14 not linking to 13. */
	f.seq = 14;
	fx_build(&f);
	assert_int_equal(fx_check(c, &f, NULL, NULL, NULL), HT_ERR_VERIFY);
	assert_non_null(strstr(ht_client_error(c), "head 14 does not link to head 13"));
	/* A later head with fewer leaves. */
	f.seq = 20;
	f.after = 0;
	fx_build(&f);
	assert_int_equal(fx_check(c, &f, NULL, NULL, NULL), HT_ERR_VERIFY);
	assert_non_null(strstr(ht_client_error(c), "fewer than head 13's"));
	ht_hasher_destroy(h);
	ht_client_close(c);
	fx_free(&f);
}

static void test_receipt_no_leaves_and_no_verify(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, HT_SIGN_SM2, HT_HASH_SM3);
	/* Every event a retry that answers exists: no leaves, a head. */
	for (size_t i = 0; i < FX_EVENTS; i++) {
		f.results[i] = HT_R_EXISTS;
		f.leaf_of[i] = HT_CLIENT_NO_LEAF;
	}
	f.ev_n = 0;
	fx_build(&f);
	struct ht_client *c = offline(f.hub);
	struct ht_client_commit commit;
	assert_int_equal(fx_check(c, &f, NULL, NULL, &commit), HT_OK);
	assert_int_equal(commit.count, 0);
	assert_int_equal(commit.head.seq, 12);
	ht_client_close(c);
	fx_free(&f);
	/* With verification off a bad leaf passes (the caller chose so), but
	 * an answer for other ids still does not. */
	fx_init(&f, HT_SIGN_SM2, HT_HASH_SM3);
	fx_build(&f);
	f.data[0][20] ^= 1;
	c = offline(f.hub);
	c->verify = false;
	assert_int_equal(fx_check(c, &f, NULL, NULL, NULL), HT_OK);
	f.answer_id[0] = 6;
	assert_int_equal(fx_check(c, &f, NULL, NULL, NULL), HT_ERR_CORRUPT);
	ht_client_close(c);
	fx_free(&f);
}

static void test_receipt_malformed(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, HT_SIGN_SM2, HT_HASH_SM3);
	fx_build(&f);
	struct ht_client *c = offline(f.hub);
	uint16_t r[FX_EVENTS];
	uint64_t l[FX_EVENTS];
	static const struct {
		const char *body, *msg;
		enum ht_err err;
	} cases[] = {
		{"", "not JSON", HT_ERR_CORRUPT},
		{"[]", "op:", HT_ERR_CORRUPT},
		{"{\"op\":\"create_accounts\",\"results\":[]}", "op:", HT_ERR_CORRUPT},
		{"{\"op\":\"create_transfers\",\"results\":[]}", "results: not an array of 4",
		 HT_ERR_CORRUPT},
		{"{\"op\":\"create_transfers\",\"results\":[{\"index\":1,\"id\":\"7\","
		 "\"result\":\"ok\"},{},{},{}]}", "results[0]", HT_ERR_CORRUPT},
		{"{\"op\":\"create_transfers\",\"results\":[{\"index\":0,\"id\":\"7\","
		 "\"result\":\"brand_new_code\"},{},{},{}]}", "unknown result",
		 HT_ERR_UNSUPPORTED},
		{"{\"op\":\"create_transfers\",\"results\":[{\"index\":0,\"id\":\"7\","
		 "\"result\":\"ok\",\"leaf\":-1},{},{},{}]}", "results[0].leaf",
		 HT_ERR_CORRUPT},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum ht_err e = client_read_create(c, HT_OP_CREATE_TRANSFERS, f.req,
						   f.n, cases[i].body,
						   strlen(cases[i].body), r, l, NULL);
		if (e != cases[i].err || !strstr(ht_client_error(c), cases[i].msg))
			fail_msg("case %zu: %s '%s'", i, ht_strerror(e),
				 ht_client_error(c));
	}
	/* The receipt missing or with a bad head. */
	struct ht_buf b = {0};
	fx_render(&f, &b);
	char *cut = strstr(b.data, ",\"receipt\"");
	strcpy(cut, "}");
	b.len = strlen(b.data);
	assert_int_equal(client_read_create(c, HT_OP_CREATE_TRANSFERS, f.req, f.n,
					    b.data, b.len, r, l, NULL),
			 HT_ERR_CORRUPT);
	assert_non_null(strstr(ht_client_error(c), "receipt: missing"));
	fx_render(&f, &b);
	char *sm3 = strstr(b.data, "\"sm3\"");
	memcpy(sm3, "\"md5\"", 5);
	assert_int_equal(client_read_create(c, HT_OP_CREATE_TRANSFERS, f.req, f.n,
					    b.data, b.len, r, l, NULL),
			 HT_ERR_CORRUPT);
	assert_non_null(strstr(ht_client_error(c), "receipt.head: hash:"));
	ht_buf_free(&b);
	ht_client_close(c);
	fx_free(&f);
}

/* An account create: its leaf is an account event with every field. */
static void test_receipt_accounts(void **state)
{
	(void)state;
	struct ht_key *k = new_key(HT_SIGN_SM2);
	struct tree t = {0};
	assert_int_equal(ht_hasher_create(HT_HASH_SM3, &t.h), HT_OK);
	ht_merkle_frontier_init(&t.f, 0);
	struct ht_account a[2] = {{.id = 1, .ledger = 156, .code = 10,
				   .flags = HT_ACCOUNT_HISTORY},
				  {.id = 2, .ledger = 156, .code = 10}};
	struct ht_event ev = {.kind = HT_EVENT_ACCOUNT};
	uint8_t data[HT_LEAF_BYTES_MAX], proof[HT_PROOF_HASHES_MAX][HT_HASH_BYTES];
	size_t len, pn;
	ev.u.account = a[0];
	ev.u.account.code = 11;
	ev.u.account.timestamp = 5;
	encode(&ev, data, &len);
	tree_append(&t, data, len);
	struct ht_sth head = {.seq = 1, .tree_size = 1, .hash = HT_HASH_SM3,
			      .sign = HT_SIGN_SM2};
	assert_int_equal(ht_merkle_frontier_root(&t.f, t.h, head.root), HT_OK);
	assert_int_equal(ht_merkle_range_proof(t.h, 0, 1, 1, tree_node, &t, proof,
					       &pn), HT_OK);
	assert_int_equal(pn, 0);
	assert_int_equal(ht_sth_sign(k, &head), HT_OK);
	char hj[1024], hex[2 * HT_LEAF_BYTES_MAX + 1];
	ht_sth_json(&head, hj, sizeof hj);
	ht_hex_encode(data, len, hex);
	struct ht_buf b = {0};
	assert_int_equal(ht_buf_printf(&b, "{\"op\":\"create_accounts\",\"results\":["
				       "{\"index\":0,\"id\":\"1\",\"result\":\"ok\",\"leaf\":0,"
				       "\"ts\":5,\"data\":\"%s\"},"
				       "{\"index\":1,\"id\":\"2\",\"result\":\"exists\"}],"
				       "\"receipt\":{\"head\":%s,\"first\":0,\"count\":1,"
				       "\"proof\":[]}}", hex, hj),
			 HT_OK);
	struct ht_client *c = offline(k);
	uint16_t r[2];
	uint64_t l[2];
	assert_int_equal(client_read_create(c, HT_OP_CREATE_ACCOUNTS, a, 2, b.data,
					    b.len, r, l, NULL), HT_ERR_VERIFY);
	assert_non_null(strstr(ht_client_error(c),
			       "leaf 0 (event 0, id 1): code 11 differs from the"
			       " request's 10"));
	/* The honest leaf passes. */
	a[0].code = 11;
	assert_int_equal(client_read_create(c, HT_OP_CREATE_ACCOUNTS, a, 2, b.data,
					    b.len, r, l, NULL), HT_OK);
	assert_int_equal(r[0], HT_R_OK);
	assert_int_equal(r[1], HT_R_EXISTS);
	assert_int_equal(l[0], 0);
	assert_true(l[1] == HT_CLIENT_NO_LEAF);
	/* Compact: the leaf rebuilt from the request and ts. */
	b.len = 0;
	assert_int_equal(ht_buf_printf(&b, "{\"op\":\"create_accounts\",\"results\":["
				       "{\"index\":0,\"id\":\"1\",\"result\":\"ok\",\"leaf\":0,"
				       "\"ts\":5},"
				       "{\"index\":1,\"id\":\"2\",\"result\":\"exists\"}],"
				       "\"receipt\":{\"head\":%s,\"first\":0,\"count\":1,"
				       "\"proof\":[]}}", hj),
			 HT_OK);
	assert_int_equal(client_read_create(c, HT_OP_CREATE_ACCOUNTS, a, 2, b.data,
					    b.len, r, l, NULL), HT_OK);
	a[0].code = 10; /* not what was stored: the rebuilt leaf fails */
	assert_int_equal(client_read_create(c, HT_OP_CREATE_ACCOUNTS, a, 2, b.data,
					    b.len, r, l, NULL), HT_ERR_VERIFY);
	assert_non_null(strstr(ht_client_error(c), "range proof"));
	ht_buf_free(&b);
	ht_client_close(c);
	ht_hasher_destroy(t.h);
	ht_key_destroy(k);
}

/* ---- one transfer's receipt ----------------------------------------------------- */

static void render_one(struct ht_buf *b, ht_u128 id, uint64_t leaf,
		       const uint8_t *data, size_t len, const struct ht_sth *h,
		       uint8_t proof[][HT_HASH_BYTES], size_t n)
{
	char dec[HT_U128_DEC_SIZE], head[1024];
	ht_sth_json(h, head, sizeof head);
	b->len = 0;
	assert_int_equal(ht_buf_printf(b, "{\"id\":\"%s\",\"leaf\":%llu,\"data\":",
				       ht_u128_format(id, dec),
				       (unsigned long long)leaf), HT_OK);
	put_hex(b, data, len);
	assert_int_equal(ht_buf_printf(b, ",\"head\":%s,\"proof\":[", head), HT_OK);
	for (size_t k = 0; k < n; k++) {
		if (k)
			assert_int_equal(ht_buf_append(b, ",", 1), HT_OK);
		put_hex(b, proof[k], HT_HASH_BYTES);
	}
	assert_int_equal(ht_buf_append(b, "]}", 2), HT_OK);
}

static void test_receipt_one(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, HT_SIGN_SM2, HT_HASH_SM3);
	fx_build(&f);
	uint8_t proof[HT_PROOF_HASHES_MAX][HT_HASH_BYTES];
	size_t n;
	uint64_t leaf = f.before; /* transfer 7 */
	assert_int_equal(ht_merkle_inclusion_proof(f.tree.h, leaf, f.tree.n,
						   tree_node, &f.tree, proof, &n),
			 HT_OK);
	struct ht_client *c = offline(f.hub);
	struct ht_client_receipt *r = malloc(sizeof *r);
	struct ht_buf b = {0};
	render_one(&b, 7, leaf, f.data[0], f.data_len[0], &f.head, proof, n);
	assert_int_equal(client_read_receipt(c, 7, 0, b.data, b.len, r), HT_OK);
	assert_true(r->verified);
	assert_int_equal(r->result, HT_R_OK);
	assert_true(r->transfer.amount == 500);
	assert_int_equal(r->proof_count, n);
	/* The refusal of id 8 has a receipt too. */
	uint8_t p8[HT_PROOF_HASHES_MAX][HT_HASH_BYTES];
	size_t n8;
	assert_int_equal(ht_merkle_inclusion_proof(f.tree.h, leaf + 1, f.tree.n,
						   tree_node, &f.tree, p8, &n8),
			 HT_OK);
	render_one(&b, 8, leaf + 1, f.data[1], f.data_len[1], &f.head, p8, n8);
	assert_int_equal(client_read_receipt(c, 8, 0, b.data, b.len, r), HT_OK);
	assert_int_equal(r->result, HT_R_EXCEEDS_CREDITS);
	/* Asked for the head of 11 leaves: it is that one. */
	render_one(&b, 7, leaf, f.data[0], f.data_len[0], &f.head, proof, n);
	assert_int_equal(client_read_receipt(c, 7, 11, b.data, b.len, r), HT_OK);
	assert_int_equal(client_read_receipt(c, 7, 10, b.data, b.len, r),
			 HT_ERR_VERIFY);
	assert_non_null(strstr(ht_client_error(c), "head of 11 leaves, 10 were asked"));
	/* A bad proof hash, the leaf of another transfer, a leaf past the
	 * tree, a different id asked. */
	proof[0][0] ^= 1;
	render_one(&b, 7, leaf, f.data[0], f.data_len[0], &f.head, proof, n);
	assert_int_equal(client_read_receipt(c, 7, 0, b.data, b.len, r), HT_ERR_VERIFY);
	assert_non_null(strstr(ht_client_error(c), "inclusion proof of leaf 5"));
	proof[0][0] ^= 1;
	render_one(&b, 7, leaf, f.data[2], f.data_len[2], &f.head, proof, n);
	assert_int_equal(client_read_receipt(c, 7, 0, b.data, b.len, r), HT_ERR_VERIFY);
	assert_non_null(strstr(ht_client_error(c), "differs"));
	render_one(&b, 7, 11, f.data[0], f.data_len[0], &f.head, proof, n);
	assert_int_equal(client_read_receipt(c, 7, 0, b.data, b.len, r), HT_ERR_VERIFY);
	render_one(&b, 7, leaf, f.data[0], f.data_len[0], &f.head, proof, n);
	assert_int_equal(client_read_receipt(c, 77, 0, b.data, b.len, r),
			 HT_ERR_CORRUPT);
	ht_buf_free(&b);
	free(r);
	ht_client_close(c);
	fx_free(&f);
}

/* ---- paths and bodies --------------------------------------------------------------- */

static void test_paths(void **state)
{
	(void)state;
	char p[256];
	assert_int_equal(client_id_path(p, sizeof p, "/v1/accounts/", 7, ""), HT_OK);
	assert_string_equal(p, "/v1/accounts/7");
	assert_int_equal(client_id_path(p, sizeof p, "/v1/transfers/", HT_U128_MAX - 1,
					"/receipt"), HT_OK);
	assert_string_equal(p, "/v1/transfers/340282366920938463463374607431768211454"
			       "/receipt");
	assert_int_equal(client_id_path(p, 10, "/v1/accounts/", 12345, ""),
			 HT_ERR_LIMIT);
	assert_string_equal(p, "");

	struct ht_account_filter f = {.account_id = 42, .limit = 100};
	assert_int_equal(client_query_path(HT_OP_GET_ACCOUNT_TRANSFERS, &f, p,
					   sizeof p), HT_OK);
	assert_string_equal(p, "/v1/accounts/42/transfers?limit=100&timestamp_min=0"
			       "&timestamp_max=0&debits=false&credits=false"
			       "&reversed=false");
	f.account_id = (ht_u128)1 << 64;
	f.limit = HT_QUERY_LIMIT_MAX;
	f.timestamp_min = 1;
	f.timestamp_max = UINT64_MAX;
	f.flags = HT_FILTER_DEBITS | HT_FILTER_REVERSED;
	assert_int_equal(client_query_path(HT_OP_GET_ACCOUNT_BALANCES, &f, p,
					   sizeof p), HT_OK);
	assert_string_equal(p, "/v1/accounts/18446744073709551616/balances?limit=8190"
			       "&timestamp_min=1&timestamp_max=18446744073709551615"
			       "&debits=true&credits=false&reversed=true");
	f.flags = HT_FILTER_CREDITS;
	assert_int_equal(client_query_path(HT_OP_GET_ACCOUNT_TRANSFERS, &f, p,
					   sizeof p), HT_OK);
	assert_non_null(strstr(p, "&debits=false&credits=true&reversed=false"));
	assert_int_equal(client_query_path(HT_OP_LOOKUP_ACCOUNTS, &f, p, sizeof p),
			 HT_ERR_INVALID);
	assert_int_equal(client_query_path(HT_OP_GET_ACCOUNT_TRANSFERS, &f, p, 20),
			 HT_ERR_LIMIT);
}

/* A random valid UTF-8 user_data: ASCII, control characters, quotes,
 * backslashes, two-, three- and four-byte characters. */
static uint8_t random_user_data(char *out)
{
	static const char *const pieces[] = {"a", "Z", "\t", "\x01", "\"", "\\",
					     "/", "\xc3\xa9", "\xe6\xb1\x87",
					     "\xf0\x9f\x92\xb0", " ", "\x7f"};
	size_t n = 0, want = rnd() % (HT_USER_DATA_BYTES_MAX + 1);
	while (n < want) {
		const char *p = pieces[rnd() % (sizeof pieces / sizeof pieces[0])];
		size_t k = strlen(p);
		if (n + k > HT_USER_DATA_BYTES_MAX)
			break;
		memcpy(out + n, p, k);
		n += k;
	}
	return (uint8_t)n;
}

static ht_u128 random_id(void)
{
	switch (rnd() % 4) {
	case 0: return rnd() % 100;
	case 1: return HT_U128_MAX - rnd() % 2;
	default: return (ht_u128)rnd() << 64 | rnd();
	}
}

static void test_body_roundtrip(void **state)
{
	(void)state;
	enum { N = 300 };
	struct ht_transfer *t = calloc(N, sizeof *t);
	struct ht_account *a = calloc(N, sizeof *a);
	for (size_t i = 0; i < N; i++) {
		t[i].id = random_id();
		t[i].debit_account_id = random_id();
		t[i].credit_account_id = random_id();
		t[i].pending_id = rnd() % 3 ? 0 : random_id();
		t[i].amount = rnd() % 2 ? rnd() : rnd() % 1000;
		t[i].ledger = (uint32_t)rnd();
		t[i].code = (uint16_t)rnd();
		t[i].flags = (uint16_t)(rnd() & HT_TRANSFER_FLAGS_ALL);
		t[i].timeout_s = (uint32_t)rnd();
		t[i].timestamp = rnd(); /* written, ignored on read */
		t[i].user_data_len = random_user_data(t[i].user_data);
		a[i].id = random_id();
		a[i].ledger = (uint32_t)rnd();
		a[i].code = (uint16_t)rnd();
		a[i].flags = (uint16_t)(rnd() & HT_ACCOUNT_FLAGS_ALL);
		a[i].debits_posted = rnd();
		a[i].user_data_len = random_user_data(a[i].user_data);
	}
	struct ht_buf b = {0};
	struct ht_request q;
	char err[256];
	assert_int_equal(client_create_body(&b, HT_OP_CREATE_TRANSFERS, t, N, err,
					    sizeof err), HT_OK);
	assert_int_equal(ht_jsonl_parse(b.data, b.len, &q, err, sizeof err), HT_OK);
	assert_int_equal(q.op, HT_OP_CREATE_TRANSFERS);
	assert_int_equal(q.count, N);
	for (size_t i = 0; i < N; i++) {
		struct ht_transfer want = t[i];
		want.timestamp = 0;
		assert_memory_equal(&q.transfers[i], &want, sizeof want);
	}
	ht_request_free(&q);
	b.len = 0;
	assert_int_equal(client_create_body(&b, HT_OP_CREATE_ACCOUNTS, a, N, err,
					    sizeof err), HT_OK);
	assert_int_equal(ht_jsonl_parse(b.data, b.len, &q, err, sizeof err), HT_OK);
	assert_int_equal(q.op, HT_OP_CREATE_ACCOUNTS);
	for (size_t i = 0; i < N; i++) {
		struct ht_account want = a[i];
		want.debits_posted = 0;
		assert_memory_equal(&q.accounts[i], &want, sizeof want);
	}
	ht_request_free(&q);
	/* An empty batch is a body too. */
	b.len = 0;
	assert_int_equal(client_create_body(&b, HT_OP_CREATE_TRANSFERS, NULL, 0, err,
					    sizeof err), HT_OK);
	assert_string_equal(b.data, "{\"op\":\"create_transfers\",\"transfers\":[]}");
	/* What cannot travel: not UTF-8, a NUL, unknown flags, too many. */
	b.len = 0;
	t[0].user_data_len = 2;
	memcpy(t[0].user_data, "\xc3(", 2);
	assert_int_equal(client_create_body(&b, HT_OP_CREATE_TRANSFERS, t, 1, err,
					    sizeof err), HT_ERR_INVALID);
	assert_non_null(strstr(err, "event 0"));
	memcpy(t[0].user_data, "a\0", 2);
	assert_int_equal(client_create_body(&b, HT_OP_CREATE_TRANSFERS, t, 1, err,
					    sizeof err), HT_ERR_INVALID);
	memcpy(t[0].user_data, "\xed\xa0\x80", 3); /* a surrogate */
	t[0].user_data_len = 3;
	assert_int_equal(client_create_body(&b, HT_OP_CREATE_TRANSFERS, t, 1, err,
					    sizeof err), HT_ERR_INVALID);
	t[0].user_data_len = 0;
	t[0].flags = 0x100;
	assert_int_equal(client_create_body(&b, HT_OP_CREATE_TRANSFERS, t, 1, err,
					    sizeof err), HT_ERR_INVALID);
	a[0].flags = 0x20;
	assert_int_equal(client_create_body(&b, HT_OP_CREATE_ACCOUNTS, a, 1, err,
					    sizeof err), HT_ERR_INVALID);
	assert_int_equal(client_create_body(&b, HT_OP_CREATE_ACCOUNTS, a,
					    HT_BATCH_EVENTS_MAX + 1, err,
					    sizeof err), HT_ERR_LIMIT);
	assert_int_equal(b.len, 0);
	ht_buf_free(&b);
	free(t);
	free(a);
}

static void test_lookup_reader(void **state)
{
	(void)state;
	struct ht_key *k = new_key(HT_SIGN_ED25519);
	struct ht_client *c = offline(k);
	struct ht_account a[3] = {{.id = 1, .ledger = 156, .code = 10,
				   .flags = HT_ACCOUNT_HISTORY, .debits_posted = 5,
				   .credits_pending = UINT64_MAX, .timestamp = 99},
				  {.id = HT_U128_MAX - 1, .ledger = UINT32_MAX,
				   .code = UINT16_MAX}};
	memcpy(a[1].user_data, "\xe6\xb1\x87\"", 4);
	a[1].user_data_len = 4;
	struct ht_transfer t[2] = {{.id = 7, .debit_account_id = 1,
				    .credit_account_id = 2, .amount = UINT64_MAX,
				    .pending_id = 3, .ledger = 156, .code = 1,
				    .flags = HT_TRANSFER_PENDING, .timeout_s = 60,
				    .timestamp = 12345}};
	struct ht_buf b = {0};
	struct ht_account ga[3];
	struct ht_transfer gt[2];
	size_t n;
	assert_int_equal(ht_jsonl_write_accounts(&b, HT_OP_LOOKUP_ACCOUNTS, a, 2), HT_OK);
	assert_int_equal(client_read_accounts(c, b.data, b.len, ga, 3, &n), HT_OK);
	assert_int_equal(n, 2);
	assert_memory_equal(ga, a, 2 * sizeof a[0]);
	assert_int_equal(client_read_accounts(c, b.data, b.len, ga, 1, &n),
			 HT_ERR_CORRUPT); /* more than asked for */
	b.len = 0;
	assert_int_equal(ht_jsonl_write_transfers(&b, HT_OP_LOOKUP_TRANSFERS, t, 1),
			 HT_OK);
	assert_int_equal(client_read_transfers(c, b.data, b.len, gt, 2, &n), HT_OK);
	assert_int_equal(n, 1);
	assert_memory_equal(gt, t, sizeof t[0]);
	assert_int_equal(client_read_accounts(c, b.data, b.len, ga, 3, &n),
			 HT_ERR_CORRUPT); /* the op of another lookup */
	const char *bad = "{\"op\":\"lookup_transfers\",\"transfers\":[{\"id\":\"7\"}]}";
	assert_int_equal(client_read_transfers(c, bad, strlen(bad), gt, 2, &n),
			 HT_ERR_CORRUPT);
	assert_non_null(strstr(ht_client_error(c), "transfers[0]"));
	ht_buf_free(&b);
	ht_client_close(c);
	ht_key_destroy(k);
}

/* ---- apply_line's local answers -------------------------------------------------------- */

static void test_apply_local(void **state)
{
	(void)state;
	struct ht_key *k = new_key(HT_SIGN_ED25519);
	struct ht_client *c = offline(k);
	struct ht_buf out = {0};
	static const struct {
		const char *line;
	} lines[] = {
		{""},
		{"   "},
		{"not json"},
		{"{\"op\":\"nope\"}"},
		{"{\"op\":\"create_transfers\",\"transfers\":[{\"id\":7}]}"},
		{"{\"op\":\"get_account_transfers\",\"account_id\":\"1\",\"limit\":0}"},
	};
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		struct ht_request q;
		char msg[256], want[512];
		const char *line = lines[i].line;
		size_t len = strlen(line);
		if (len == 0)
			snprintf(msg, sizeof msg, "empty line");
		else
			assert_int_not_equal(ht_jsonl_parse(line, len, &q, msg,
							    sizeof msg), HT_OK);
		struct ht_buf w = {0};
		assert_int_equal(ht_jsonl_write_error(&w, msg, i + 1), HT_OK);
		snprintf(want, sizeof want, "%s", w.data);
		ht_buf_free(&w);
		out.len = 0;
		assert_int_equal(ht_client_apply_line(c, line, len, i + 1, &out), HT_OK);
		assert_string_equal(out.data, want);
	}
	/* `ledger apply`'s own answer to a filter it refuses. */
	const char *bad = "{\"op\":\"get_account_balances\",\"account_id\":\"1\","
			  "\"timestamp_min\":\"9\",\"timestamp_max\":\"3\"}";
	out.len = 0;
	assert_int_equal(ht_client_apply_line(c, bad, strlen(bad), 4, &out), HT_OK);
	assert_string_equal(out.data,
			    "{\"error\":\"bad filter: limit must be 1..8190 and"
			    " timestamp_min <= timestamp_max\",\"line\":4}");
	/* A valid line needs the hub: offline, it stops, writing nothing. */
	const char *ok = "{\"op\":\"lookup_accounts\",\"ids\":[\"1\"]}";
	out.len = 0;
	assert_int_equal(ht_client_apply_line(c, ok, strlen(ok), 5, &out), HT_ERR_IO);
	assert_int_equal(out.len, 0);
	assert_non_null(strstr(ht_client_error(c), "offline"));
	ht_buf_free(&out);
	ht_client_close(c);
	ht_key_destroy(k);
}

/* ---- open and call ----------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A credentials directory as `participant add` writes it, with a signing
 * key and its id. The CA and the signing key are handed back when asked. */
static void write_credentials(const char *dir, const char *url,
			      struct ht_pki_ca **ca_out, struct ht_key **sk_out)
{
	struct ht_pki_ca *ca;
	struct ht_pki_issued cl;
	struct ht_key *sk = new_key(HT_SIGN_SM2);
	char *ca_pem, *sk_pem;
	size_t ca_len, sk_len;
	assert_int_equal(ht_pki_ca_create("test", &ca), HT_OK);
	assert_int_equal(ht_pki_issue_client(ca, "bankA", HT_PKI_ROLE_PARTICIPANT,
					     NULL, &cl), HT_OK);
	assert_int_equal(ht_pki_ca_cert_pem(ca, &ca_pem, &ca_len), HT_OK);
	assert_int_equal(ht_key_private_pem(sk, &sk_pem, &sk_len), HT_OK);
	struct ht_pki_credentials cr = {.role = HT_PKI_ROLE_PARTICIPANT,
					.url = (char *)url,
					.key_pem = cl.key_pem, .key_len = cl.key_len,
					.cert_pem = cl.cert_pem, .cert_len = cl.cert_len,
					.ca_pem = ca_pem, .ca_len = ca_len,
					.signing_key_pem = sk_pem,
					.signing_key_len = sk_len,
					.signing_alg = HT_SIGN_SM2};
	snprintf(cr.id, sizeof cr.id, "bankA");
	snprintf(cr.signing_key_id, sizeof cr.signing_key_id, "bankA:1");
	assert_int_equal(ht_pki_write_credentials(dir, &cr, false), HT_OK);
	free(ca_pem);
	free(sk_pem);
	ht_pki_issued_clear(&cl);
	if (ca_out)
		*ca_out = ca;
	else
		ht_pki_ca_destroy(ca);
	if (sk_out)
		*sk_out = sk;
	else
		ht_key_destroy(sk);
}

static void test_open_and_call(void **state)
{
	(void)state;
	struct ht_client_options o;
	struct ht_client *c = (struct ht_client *)1;
	ht_client_options_init(&o);
	assert_int_equal(o.retries, HT_CLIENT_RETRIES_DEFAULT);
	assert_true(o.verify_receipts);
	assert_int_equal(ht_client_open(&o, &c), HT_ERR_INVALID);
	assert_null(c);
	assert_non_null(strstr(ht_client_open_error(), "credentials"));
	char dir[] = "/tmp/ht_client_test_XXXXXX";
	assert_non_null(mkdtemp(dir));
	char creds[64];
	snprintf(creds, sizeof creds, "%s/creds", dir);
	o.credentials_dir = creds;
	assert_int_equal(ht_client_open(&o, &c), HT_ERR_NOT_FOUND);
	/* 127.0.0.1:1 is closed: every attempt is refused at once. */
	write_credentials(creds, "https://127.0.0.1:1/", NULL, NULL);
	o.retries = 21;
	assert_int_equal(ht_client_open(&o, &c), HT_ERR_INVALID);
	o.retries = 2;
	static const char *const bad_urls[] = {"http://127.0.0.1:1", "https://",
					       "https://h/v1", "https://u@h",
					       "https://h?x", "ftp://h"};
	for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
		o.url = bad_urls[i];
		assert_int_equal(ht_client_open(&o, &c), HT_ERR_INVALID);
		assert_non_null(strstr(ht_client_open_error(), "url"));
	}
	o.url = NULL;
	assert_int_equal(ht_client_open(&o, &c), HT_OK);
	assert_string_equal(ht_client_open_error(), "");
	assert_string_equal(c->base_url, "https://127.0.0.1:1");
	struct ht_client_response r;
	assert_int_equal(ht_client_call(c, "get", "/v1/journal/head", NULL, 0, &r),
			 HT_ERR_INVALID);
	assert_int_equal(ht_client_call(c, "GET", "v1", NULL, 0, &r), HT_ERR_INVALID);
	assert_int_equal(ht_client_call(c, "GET", "/a b", NULL, 0, &r),
			 HT_ERR_INVALID);
	assert_int_equal(ht_client_call(c, "GET", "/v1/journal/head", NULL, 0, &r),
			 HT_ERR_IO);
	assert_non_null(strstr(ht_client_error(c), "no answer after 3 attempts"));
	struct ht_sth h;
	assert_int_equal(ht_client_head(c, &h), HT_ERR_IO);
	ht_client_close(c);
	ht_client_close(NULL);
	ht_client_response_clear(NULL);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- a tiny local HTTPS peer ------------------------------------------------------------ */

/*
 * Just enough of a server to check the client's transport end to end:
 * mutual TLS 1.3 (OpenSSL, the test CA), one HTTP/1.1 request at a time
 * read up to its Content-Length, and scripted answers (a status, extra
 * headers and a body, or a dropped connection). It records what came.
 * It runs in its own thread, so it never calls cmocka: the test checks
 * what it recorded.
 */
#define SRV_STEPS_MAX 12

struct canned {
	int status;           /* 0: close the connection without answering */
	const char *headers;  /* extra header lines, each ending in \r\n */
	const char *body;
};

struct seen {
	char method[16];
	char path[512];
	char sig[HT_REQSIG_HEADER_BYTES_MAX + 1];
	char *body;
	size_t len;
	int connection;
};

struct srv {
	SSL_CTX *ctx;
	int lfd, port, connections;
	pthread_t thread;
	struct canned script[SRV_STEPS_MAX];
	size_t script_n, next;
	struct seen seen[SRV_STEPS_MAX];
	size_t seen_n;
};

static size_t header_value(const char *h, size_t n, const char *name,
			   char *out, size_t size)
{
	size_t k = strlen(name);
	for (const char *p = h; p && p + k < h + n; p = memchr(p, '\n', (size_t)(h + n - p))) {
		if (*p == '\n')
			p++;
		if (strncasecmp(p, name, k) || p[k] != ':')
			continue;
		const char *v = p + k + 1, *e = memchr(v, '\r', (size_t)(h + n - v));
		while (*v == ' ')
			v++;
		size_t len = e ? (size_t)(e - v) : 0;
		snprintf(out, size, "%.*s", (int)len, v);
		return len;
	}
	if (size)
		out[0] = '\0';
	return 0;
}

static void srv_record(struct srv *s, const char *h, size_t hlen,
		       const char *body, size_t blen)
{
	if (s->seen_n == SRV_STEPS_MAX)
		return;
	struct seen *r = &s->seen[s->seen_n++];
	sscanf(h, "%15s %511s", r->method, r->path);
	header_value(h, hlen, HT_REQSIG_HEADER_NAME, r->sig, sizeof r->sig);
	r->body = malloc(blen + 1);
	memcpy(r->body, body, blen);
	r->body[blen] = '\0';
	r->len = blen;
	r->connection = s->connections;
}

/* Read one request into buf (n bytes held); 0 at the end of the peer. */
static size_t srv_read(SSL *ssl, char *buf, size_t size, size_t *n,
		       size_t *hlen)
{
	char *end, cl[32];
	while (!(end = memmem(buf, *n, "\r\n\r\n", 4))) {
		int r = *n < size ? SSL_read(ssl, buf + *n, (int)(size - *n)) : 0;
		if (r <= 0)
			return 0;
		*n += (size_t)r;
	}
	*hlen = (size_t)(end + 4 - buf);
	header_value(buf, *hlen, "Content-Length", cl, sizeof cl);
	size_t total = *hlen + (size_t)strtoul(cl, NULL, 10);
	while (*n < total) {
		int r = *n < size ? SSL_read(ssl, buf + *n, (int)(size - *n)) : 0;
		if (r <= 0)
			return 0;
		*n += (size_t)r;
	}
	return total;
}

static void srv_conn(struct srv *s, SSL *ssl)
{
	static char buf[1 << 20];
	size_t n = 0, hlen, total;
	while ((total = srv_read(ssl, buf, sizeof buf, &n, &hlen)) > 0) {
		srv_record(s, buf, hlen, buf + hlen, total - hlen);
		memmove(buf, buf + total, n - total);
		n -= total;
		if (s->next == s->script_n)
			return;
		const struct canned *c = &s->script[s->next++];
		if (c->status == 0)
			return;
		char head[512];
		int k = snprintf(head, sizeof head,
				 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
				 "Content-Length: %zu\r\n%s\r\n", c->status,
				 strlen(c->body), c->headers ? c->headers : "");
		if (SSL_write(ssl, head, k) != k ||
		    SSL_write(ssl, c->body, (int)strlen(c->body)) != (int)strlen(c->body))
			return;
	}
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;
	int fd;
	while ((fd = accept(s->lfd, NULL, NULL)) >= 0) {
		SSL *ssl = SSL_new(s->ctx);
		s->connections++;
		SSL_set_fd(ssl, fd);
		if (SSL_accept(ssl) == 1)
			srv_conn(s, ssl);
		SSL_free(ssl);
		close(fd);
	}
	return NULL;
}

static void srv_start(struct srv *s, const struct ht_pki_ca *ca)
{
	struct ht_pki_issued cert;
	assert_int_equal(ht_pki_issue_server(ca, NULL, 0, NULL, &cert), HT_OK);
	s->ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(s->ctx);
	SSL_CTX_set_min_proto_version(s->ctx, TLS1_3_VERSION);
	BIO *bc = BIO_new_mem_buf(cert.cert_pem, -1), *bk = BIO_new_mem_buf(cert.key_pem, -1);
	X509 *x = PEM_read_bio_X509(bc, NULL, NULL, NULL);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(bk, NULL, NULL, NULL);
	assert_int_equal(SSL_CTX_use_certificate(s->ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(s->ctx, k), 1);
	X509_free(x);
	EVP_PKEY_free(k);
	BIO_free(bc);
	BIO_free(bk);
	ht_pki_issued_clear(&cert);
	assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(s->ctx),
					     ht_pki_ca_x509(ca)), 1);
	SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
			   NULL);
	/* Without it a client resuming its TLS session (curl does, on its
	 * next connection) is refused with an internal_error alert. */
	SSL_CTX_set_session_id_context(s->ctx, (const unsigned char *)"ht", 2);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof a;
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(s->lfd, 8), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &alen), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, srv_main, s), 0);
}

static void srv_stop(struct srv *s)
{
	shutdown(s->lfd, SHUT_RDWR);
	close(s->lfd);
	pthread_join(s->thread, NULL);
	SSL_CTX_free(s->ctx);
	for (size_t i = 0; i < s->seen_n; i++)
		free(s->seen[i].body);
}

/* The request carried a good signature by key over what was sent. */
static void assert_signed(const struct seen *r, const struct ht_key *key)
{
	struct ht_reqsig sig;
	enum ht_reqsig_result res;
	assert_int_equal(ht_reqsig_parse(r->sig, strlen(r->sig), &sig), HT_REQSIG_OK);
	assert_string_equal(sig.key_id, "bankA:1");
	assert_int_equal(ht_reqsig_verify(&sig, key, r->method, r->path, r->body,
					  r->len, ht_now_wall_ns() / 1000000000u,
					  HT_REQSIG_WINDOW_S, &res), HT_OK);
	assert_int_equal(res, HT_REQSIG_OK);
}

static void test_https_local(void **state)
{
	(void)state;
	char dir[] = "/tmp/ht_client_https_XXXXXX", creds[64], url[64];
	struct ht_pki_ca *ca;
	struct ht_key *sk;
	struct srv *s = calloc(1, sizeof *s);
	struct fx f;
	assert_non_null(mkdtemp(dir));
	snprintf(creds, sizeof creds, "%s/creds", dir);
	write_credentials(creds, "https://127.0.0.1:1", &ca, &sk);
	srv_start(s, ca);
	snprintf(url, sizeof url, "https://localhost:%d", s->port);

	/* The hub's heads: 11, then 12 (the fixture's, linking to 11). */
	fx_init(&f, HT_SIGN_SM2, HT_HASH_SM3);
	struct ht_sth h11 = {.seq = 11, .tree_size = 5, .hash = HT_HASH_SM3,
			     .sign = HT_SIGN_SM2};
	struct ht_hasher *hs;
	char h11_json[1024], *pub, key_json[2048];
	size_t pub_len;
	assert_int_equal(ht_sth_sign(f.hub, &h11), HT_OK);
	assert_int_equal(ht_hasher_create(HT_HASH_SM3, &hs), HT_OK);
	assert_int_equal(ht_sth_hash(hs, &h11, f.prev_hash), HT_OK);
	ht_hasher_destroy(hs);
	fx_build(&f);
	ht_sth_json(&h11, h11_json, sizeof h11_json);
	assert_int_equal(ht_key_public_pem(f.hub, &pub, &pub_len), HT_OK);
	json_t *kj = json_pack("{s:s,s:s}", "sign", "sm2", "public_key", pub);
	char *kd = json_dumps(kj, JSON_COMPACT);
	snprintf(key_json, sizeof key_json, "%s", kd);
	free(kd);
	json_decref(kj);
	free(pub);

	/* The request line and the answers to it. */
	struct ht_buf line = {0}, answer = {0}, want = {0}, out = {0};
	assert_int_equal(client_create_body(&line, HT_OP_CREATE_TRANSFERS, f.req,
					    f.n, NULL, 0), HT_OK);
	fx_render(&f, &answer);
	assert_int_equal(ht_jsonl_write_results(&want, HT_OP_CREATE_TRANSFERS,
						f.answer_id, f.results, f.n), HT_OK);
	const char *lookup = "{\"op\":\"lookup_accounts\",\"ids\":[\"1\"]}";
	const char *lookup_answer = "{\"op\":\"lookup_accounts\",\"accounts\":[]}\n";
	const struct canned script[] = {
		{503, "Retry-After: 1\r\n",
		 "{\"code\":\"overloaded\",\"message\":\"queue full\"}"},
		{0, NULL, NULL},
		{0, NULL, NULL},
		{200, NULL, h11_json},
		{401, NULL, "{\"code\":\"replayed_nonce\",\"message\":\"seen\"}"},
		{200, NULL, key_json},
		{403, NULL, "{\"code\":\"forbidden\",\"message\":\"event 0: account 1"
			    " is not yours\"}"},
		{200, NULL, answer.data},
		{200, NULL, lookup_answer},
		{200, NULL, "{\"id\":\"1\"}"},
	};
	memcpy(s->script, script, sizeof script);
	s->script_n = sizeof script / sizeof script[0];

	struct ht_client_options o;
	struct ht_client *c;
	ht_client_options_init(&o);
	o.credentials_dir = creds;
	o.url = url;
	o.retries = 3;
	assert_int_equal(ht_client_open(&o, &c), HT_OK);

	/*
	 * The head: a 503 (its Retry-After is waited), two dropped
	 * connections (libcurl may resend the first by itself, with the
	 * same header, as the connection was a reused one), then the head.
	 * The key is fetched once to check it; its first answer refuses a
	 * replayed nonce, so it is signed anew and sent again.
	 */
	struct ht_sth h;
	uint64_t t0 = ht_now_monotonic_ns();
	assert_int_equal(ht_client_head(c, &h), HT_OK);
	assert_true(ht_now_monotonic_ns() - t0 >= 900000000u);
	assert_int_equal(h.seq, 11);
	assert_int_equal(s->seen_n, 6);
	for (size_t i = 0; i < 4; i++) {
		assert_string_equal(s->seen[i].method, "GET");
		assert_string_equal(s->seen[i].path, "/v1/journal/head");
	}
	assert_string_equal(s->seen[4].path, "/v1/journal/key");
	assert_string_equal(s->seen[5].path, "/v1/journal/key");
	assert_int_equal(s->seen[0].connection, s->seen[1].connection);
	assert_int_equal(s->seen[4].connection, s->seen[5].connection);
	assert_string_not_equal(s->seen[1].sig, s->seen[0].sig);
	assert_string_not_equal(s->seen[3].sig, s->seen[2].sig);
	assert_string_not_equal(s->seen[5].sig, s->seen[4].sig);
	for (size_t i = 0; i < 6; i++)
		assert_signed(&s->seen[i], sk);
	int conn = s->seen[5].connection;

	/* apply: refused (a line, and on), then the verified results line. */
	assert_int_equal(ht_client_apply_line(c, line.data, line.len, 1, &out), HT_OK);
	assert_string_equal(out.data, "{\"error\":\"hub refused the request:"
				      " forbidden: event 0: account 1 is not"
				      " yours\",\"line\":1}");
	out.len = 0;
	assert_int_equal(ht_client_apply_line(c, line.data, line.len, 2, &out), HT_OK);
	assert_string_equal(out.data, want.data);
	assert_string_equal(s->seen[7].method, "POST");
	assert_string_equal(s->seen[7].path, "/v1/transfers");
	assert_int_equal(s->seen[7].len, line.len);
	assert_memory_equal(s->seen[7].body, line.data, line.len);
	assert_signed(&s->seen[7], sk);
	out.len = 0;
	assert_int_equal(ht_client_apply_line(c, lookup, strlen(lookup), 3, &out),
			 HT_OK);
	assert_string_equal(out.data, "{\"op\":\"lookup_accounts\",\"accounts\":[]}");
	assert_string_equal(s->seen[8].path, "/v1/accounts/lookup");
	assert_string_equal(s->seen[8].body, lookup);
	/* Not a lookup line: refused, nothing written. */
	out.len = 0;
	assert_int_equal(ht_client_apply_line(c, lookup, strlen(lookup), 4, &out),
			 HT_ERR_CORRUPT);
	assert_int_equal(out.len, 0);
	/* Kept alive since the key. */
	assert_int_equal(s->seen_n, 10);
	for (size_t i = 6; i < 10; i++)
		assert_int_equal(s->seen[i].connection, conn);

	ht_client_close(c);
	srv_stop(s);
	ht_buf_free(&line);
	ht_buf_free(&answer);
	ht_buf_free(&want);
	ht_buf_free(&out);
	fx_free(&f);
	ht_key_destroy(sk);
	ht_pki_ca_destroy(ca);
	free(s);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_head_parse_good),
		cmocka_unit_test(test_head_parse_hostile),
		cmocka_unit_test(test_receipt_honest),
		cmocka_unit_test(test_receipt_shapes),
		cmocka_unit_test(test_receipt_changed_leaf),
		cmocka_unit_test(test_receipt_risk_review),
		cmocka_unit_test(test_receipt_other_id),
		cmocka_unit_test(test_receipt_swapped_result),
		cmocka_unit_test(test_receipt_dropped_extra),
		cmocka_unit_test(test_receipt_bad_proof_and_signature),
		cmocka_unit_test(test_receipt_head_order),
		cmocka_unit_test(test_receipt_no_leaves_and_no_verify),
		cmocka_unit_test(test_receipt_malformed),
		cmocka_unit_test(test_receipt_accounts),
		cmocka_unit_test(test_receipt_one),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_body_roundtrip),
		cmocka_unit_test(test_lookup_reader),
		cmocka_unit_test(test_apply_local),
		cmocka_unit_test(test_open_and_call),
		cmocka_unit_test(test_https_local),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_event.c — the canonical event encoding (journal leaf data):
 * round trips for every kind (account, transfer, expiry, refusal) and
 * user_data length, the exact byte layout,
 * and rejection of every malformed input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "huitong/ledger.h"

#define U128(hi, lo) ((ht_u128)(hi) << 64 | (ht_u128)(lo))

static struct ht_event account_event(uint8_t ud_len)
{
	struct ht_event e;
	memset(&e, 0, sizeof e);
	e.kind = HT_EVENT_ACCOUNT;
	e.u.account.id = U128(0x0102030405060708ull, 0x090a0b0c0d0e0f10ull);
	e.u.account.ledger = 156;
	e.u.account.code = 0xbeef;
	e.u.account.flags = HT_ACCOUNT_HISTORY | HT_ACCOUNT_LINKED;
	e.u.account.timestamp = 0x1122334455667788ull;
	e.u.account.user_data_len = ud_len;
	for (uint8_t i = 0; i < ud_len; i++)
		e.u.account.user_data[i] = (char)('a' + i % 26);
	return e;
}

static struct ht_event transfer_event(uint8_t ud_len)
{
	struct ht_event e;
	memset(&e, 0, sizeof e);
	e.kind = HT_EVENT_TRANSFER;
	struct ht_transfer *t = &e.u.transfer;
	t->id = U128(1, 2);
	t->debit_account_id = U128(3, 4);
	t->credit_account_id = HT_U128_MAX - 5;
	t->pending_id = U128(0xffull << 56, 7);
	t->amount = UINT64_MAX - 1;
	t->ledger = 0xa1b2c3d4u;
	t->code = 0x0102;
	t->flags = HT_TRANSFER_PENDING | HT_TRANSFER_CLOSING_CREDIT;
	t->timeout_s = 0xfedcba98u;
	t->timestamp = 0x8000000000000001ull;
	t->user_data_len = ud_len;
	for (uint8_t i = 0; i < ud_len; i++)
		t->user_data[i] = (char)(0x80 + i);
	return e;
}

static struct ht_event expiry_event(void)
{
	struct ht_event e;
	memset(&e, 0, sizeof e);
	e.kind = HT_EVENT_EXPIRY;
	e.u.expiry.pending_id = U128(0xdeadbeefull, 0xcafebabeull);
	e.u.expiry.timestamp = 42;
	return e;
}

static struct ht_event refusal_event(void)
{
	struct ht_event e;
	memset(&e, 0, sizeof e);
	e.kind = HT_EVENT_REFUSAL;
	e.u.refusal.id = U128(0x0102030405060708ull, 0x090a0b0c0d0e0f10ull);
	e.u.refusal.result = HT_R_EXCEEDS_CREDITS;
	e.u.refusal.timestamp = 0x1122334455667788ull;
	return e;
}

static void assert_same_event(const struct ht_event *a,
			      const struct ht_event *b)
{
	assert_int_equal(a->kind, b->kind);
	switch (a->kind) {
	case HT_EVENT_ACCOUNT: {
		const struct ht_account *x = &a->u.account, *y = &b->u.account;
		assert_true(x->id == y->id);
		assert_int_equal(x->ledger, y->ledger);
		assert_int_equal(x->code, y->code);
		assert_int_equal(x->flags, y->flags);
		assert_int_equal(x->timestamp, y->timestamp);
		assert_int_equal(x->user_data_len, y->user_data_len);
		assert_memory_equal(x->user_data, y->user_data, x->user_data_len);
		assert_int_equal(y->debits_pending + y->debits_posted +
					 y->credits_pending + y->credits_posted,
				 0);
		break;
	}
	case HT_EVENT_TRANSFER: {
		const struct ht_transfer *x = &a->u.transfer, *y = &b->u.transfer;
		assert_true(x->id == y->id);
		assert_true(x->debit_account_id == y->debit_account_id);
		assert_true(x->credit_account_id == y->credit_account_id);
		assert_true(x->pending_id == y->pending_id);
		assert_int_equal(x->amount, y->amount);
		assert_int_equal(x->ledger, y->ledger);
		assert_int_equal(x->code, y->code);
		assert_int_equal(x->flags, y->flags);
		assert_int_equal(x->timeout_s, y->timeout_s);
		assert_int_equal(x->timestamp, y->timestamp);
		assert_int_equal(x->user_data_len, y->user_data_len);
		assert_memory_equal(x->user_data, y->user_data, x->user_data_len);
		break;
	}
	case HT_EVENT_EXPIRY:
		assert_true(a->u.expiry.pending_id == b->u.expiry.pending_id);
		assert_int_equal(a->u.expiry.timestamp, b->u.expiry.timestamp);
		break;
	case HT_EVENT_REFUSAL:
		assert_true(a->u.refusal.id == b->u.refusal.id);
		assert_int_equal(a->u.refusal.result, b->u.refusal.result);
		assert_int_equal(a->u.refusal.timestamp, b->u.refusal.timestamp);
		break;
	default:
		fail_msg("unknown kind %d", a->kind);
	}
	assert_int_equal(ht_event_timestamp(a), ht_event_timestamp(b));
}

static void round_trip(const struct ht_event *e, size_t want_len)
{
	uint8_t buf[HT_LEAF_BYTES_MAX];
	size_t len = 0;
	assert_int_equal(ht_event_encode(e, buf, &len), HT_OK);
	assert_int_equal(len, want_len);
	struct ht_event d;
	assert_int_equal(ht_event_decode(buf, len, &d), HT_OK);
	assert_same_event(e, &d);
	/* Re-encoding the decoded event gives the same bytes. */
	uint8_t again[HT_LEAF_BYTES_MAX];
	size_t again_len = 0;
	assert_int_equal(ht_event_encode(&d, again, &again_len), HT_OK);
	assert_int_equal(again_len, len);
	assert_memory_equal(again, buf, len);
}

static void test_round_trip_all_kinds(void **state)
{
	(void)state;
	for (uint8_t n = 0; n <= HT_USER_DATA_BYTES_MAX; n++) {
		struct ht_event a = account_event(n);
		round_trip(&a, 34 + n);
		struct ht_event t = transfer_event(n);
		round_trip(&t, 94 + n);
	}
	struct ht_event x = expiry_event();
	round_trip(&x, 25);
	struct ht_event r = refusal_event();
	round_trip(&r, 27);
	/* Any u16 result and the extreme ids survive: the layout does not
	 * judge values (replay does). */
	r.u.refusal.result = 0xffff;
	r.u.refusal.id = HT_U128_MAX;
	r.u.refusal.timestamp = UINT64_MAX;
	round_trip(&r, 27);
}

static void test_timestamp_of_each_kind(void **state)
{
	(void)state;
	struct ht_event a = account_event(0), t = transfer_event(0),
			x = expiry_event(), r = refusal_event();
	assert_int_equal(ht_event_timestamp(&a), 0x1122334455667788ull);
	assert_int_equal(ht_event_timestamp(&t), 0x8000000000000001ull);
	assert_int_equal(ht_event_timestamp(&x), 42);
	assert_int_equal(ht_event_timestamp(&r), 0x1122334455667788ull);
}

/* The layout is a signed, public contract: pin every byte. */
static void test_exact_layout(void **state)
{
	(void)state;
	struct ht_event t = transfer_event(2);
	uint8_t buf[HT_LEAF_BYTES_MAX];
	size_t len;
	assert_int_equal(ht_event_encode(&t, buf, &len), HT_OK);
	static const uint8_t want[96] = {
		2,
		0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2,       /* id */
		0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4,       /* debit */
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfa,       /* credit */
		0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7,    /* pending */
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,       /* amount */
		0xa1, 0xb2, 0xc3, 0xd4,                               /* ledger */
		0x01, 0x02,                                           /* code */
		0x00, 0x82,                                           /* flags */
		0xfe, 0xdc, 0xba, 0x98,                               /* timeout */
		0x80, 0, 0, 0, 0, 0, 0, 1,                            /* timestamp */
		2, 0x80, 0x81,                                        /* user_data */
	};
	assert_int_equal(len, sizeof want);
	assert_memory_equal(buf, want, sizeof want);

	struct ht_event a = account_event(1);
	assert_int_equal(ht_event_encode(&a, buf, &len), HT_OK);
	static const uint8_t want_a[35] = {
		1,
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
		0, 0, 0, 156, 0xbe, 0xef, 0x00, 0x09,
		0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
		1, 'a',
	};
	assert_int_equal(len, sizeof want_a);
	assert_memory_equal(buf, want_a, sizeof want_a);

	struct ht_event x = expiry_event();
	assert_int_equal(ht_event_encode(&x, buf, &len), HT_OK);
	static const uint8_t want_x[25] = {
		3, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef,
		0, 0, 0, 0, 0xca, 0xfe, 0xba, 0xbe,
		0, 0, 0, 0, 0, 0, 0, 42,
	};
	assert_int_equal(len, sizeof want_x);
	assert_memory_equal(buf, want_x, sizeof want_x);

	struct ht_event r = refusal_event();
	assert_int_equal(ht_event_encode(&r, buf, &len), HT_OK);
	static const uint8_t want_r[27] = {
		4,
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, /* id */
		0, 97,                                                 /* result */
		0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,        /* ts */
	};
	assert_int_equal(len, sizeof want_r);
	assert_memory_equal(buf, want_r, sizeof want_r);
}

/* Every proper prefix of a valid encoding is rejected, as is one extra
 * trailing byte. */
static void reject_truncations_and_trailing(const struct ht_event *e)
{
	uint8_t buf[HT_LEAF_BYTES_MAX + 1];
	size_t len;
	assert_int_equal(ht_event_encode(e, buf, &len), HT_OK);
	struct ht_event d;
	for (size_t n = 0; n < len; n++)
		assert_int_equal(ht_event_decode(buf, n, &d), HT_ERR_CORRUPT);
	buf[len] = 0;
	assert_int_equal(ht_event_decode(buf, len + 1, &d), HT_ERR_CORRUPT);
	assert_int_equal(ht_event_decode(buf, len, &d), HT_OK);
}

static void test_decode_rejects_truncation_and_trailing(void **state)
{
	(void)state;
	for (uint8_t n = 0; n <= HT_USER_DATA_BYTES_MAX; n++) {
		struct ht_event a = account_event(n), t = transfer_event(n);
		reject_truncations_and_trailing(&a);
		reject_truncations_and_trailing(&t);
	}
	struct ht_event x = expiry_event(), r = refusal_event();
	reject_truncations_and_trailing(&x);
	reject_truncations_and_trailing(&r);
}

static void test_decode_rejects_wrong_kind(void **state)
{
	(void)state;
	struct ht_event t = transfer_event(3);
	uint8_t buf[HT_LEAF_BYTES_MAX];
	size_t len;
	assert_int_equal(ht_event_encode(&t, buf, &len), HT_OK);
	struct ht_event d;
	static const uint8_t kinds[] = {0, 5, 6, 0x7f, 0x80, 0xff};
	for (size_t i = 0; i < sizeof kinds; i++) {
		buf[0] = kinds[i];
		assert_int_equal(ht_event_decode(buf, len, &d), HT_ERR_CORRUPT);
	}
	/* A transfer's bytes labelled as an account (or expiry) do not fit. */
	buf[0] = HT_EVENT_ACCOUNT;
	assert_int_equal(ht_event_decode(buf, len, &d), HT_ERR_CORRUPT);
	buf[0] = HT_EVENT_EXPIRY;
	assert_int_equal(ht_event_decode(buf, len, &d), HT_ERR_CORRUPT);
	buf[0] = HT_EVENT_REFUSAL;
	assert_int_equal(ht_event_decode(buf, len, &d), HT_ERR_CORRUPT);
	assert_int_equal(ht_event_decode(NULL, 0, &d), HT_ERR_CORRUPT);
	/* An expiry and a refusal differ in length: neither passes for the
	 * other, nor for any kind 1..4 but its own. */
	struct ht_event x = expiry_event(), r = refusal_event();
	uint8_t xb[HT_LEAF_BYTES_MAX], rb[HT_LEAF_BYTES_MAX];
	size_t xlen, rlen;
	assert_int_equal(ht_event_encode(&x, xb, &xlen), HT_OK);
	assert_int_equal(ht_event_encode(&r, rb, &rlen), HT_OK);
	for (uint8_t k = HT_EVENT_ACCOUNT; k <= HT_EVENT_REFUSAL; k++) {
		xb[0] = rb[0] = k;
		assert_int_equal(ht_event_decode(xb, xlen, &d),
				 k == HT_EVENT_EXPIRY ? HT_OK : HT_ERR_CORRUPT);
		assert_int_equal(ht_event_decode(rb, rlen, &d),
				 k == HT_EVENT_REFUSAL ? HT_OK : HT_ERR_CORRUPT);
	}
}

static void test_decode_rejects_bad_ud_len(void **state)
{
	(void)state;
	uint8_t buf[300];
	struct ht_event d;
	struct ht_event t = transfer_event(HT_USER_DATA_BYTES_MAX);
	size_t len;
	assert_int_equal(ht_event_encode(&t, buf, &len), HT_OK);
	memset(buf + len, 'z', sizeof buf - len);
	/* ud_len beyond the limit, with enough bytes present to read it. */
	for (unsigned bad = HT_USER_DATA_BYTES_MAX + 1; bad <= 255; bad++) {
		buf[93] = (uint8_t)bad;
		assert_int_equal(ht_event_decode(buf, 94 + bad, &d),
				 HT_ERR_CORRUPT);
	}
	/* ud_len within the limit but disagreeing with the length. */
	buf[93] = 5;
	assert_int_equal(ht_event_decode(buf, 94 + 4, &d), HT_ERR_CORRUPT);
	assert_int_equal(ht_event_decode(buf, 94 + 6, &d), HT_ERR_CORRUPT);
	assert_int_equal(ht_event_decode(buf, 94 + 5, &d), HT_OK);
	assert_int_equal(d.u.transfer.user_data_len, 5);

	struct ht_event a = account_event(0);
	assert_int_equal(ht_event_encode(&a, buf, &len), HT_OK);
	assert_int_equal(len, 34);
	memset(buf + len, 'q', 64);
	buf[33] = HT_USER_DATA_BYTES_MAX + 1;
	assert_int_equal(ht_event_decode(buf, 34 + HT_USER_DATA_BYTES_MAX + 1, &d),
			 HT_ERR_CORRUPT);
}

static void test_encode_rejects_bad_input(void **state)
{
	(void)state;
	uint8_t buf[HT_LEAF_BYTES_MAX];
	size_t len = 7;
	struct ht_event a = account_event(0);
	a.u.account.user_data_len = HT_USER_DATA_BYTES_MAX + 1;
	assert_int_equal(ht_event_encode(&a, buf, &len), HT_ERR_INVALID);
	struct ht_event t = transfer_event(0);
	t.u.transfer.user_data_len = 255;
	assert_int_equal(ht_event_encode(&t, buf, &len), HT_ERR_INVALID);
	struct ht_event x = expiry_event();
	x.kind = (enum ht_event_kind)9;
	assert_int_equal(ht_event_encode(&x, buf, &len), HT_ERR_INVALID);
	assert_int_equal(len, 7);
}

/* ht_event_same agrees with comparing encodings, field by field, and
 * ht_event_implied builds what the request and timestamp say. */
static bool same_by_bytes(const struct ht_event *a, const struct ht_event *b)
{
	uint8_t x[HT_LEAF_BYTES_MAX], y[HT_LEAF_BYTES_MAX];
	size_t xn = 0, yn = 0;
	assert_int_equal(ht_event_encode(a, x, &xn), HT_OK);
	assert_int_equal(ht_event_encode(b, y, &yn), HT_OK);
	return xn == yn && !memcmp(x, y, xn);
}

static void test_same_and_implied(void **state)
{
	(void)state;
	struct ht_event base[] = {account_event(5), transfer_event(7),
				  expiry_event(), refusal_event()};
	for (size_t k = 0; k < sizeof base / sizeof base[0]; k++) {
		struct ht_event b = base[k];
		/* bytes the encoding does not hold do not count */
		if (b.kind == HT_EVENT_ACCOUNT) {
			b.u.account.debits_posted = 9;
			b.u.account.user_data[20] = 'Z';
		}
		assert_true(ht_event_same(&base[k], &b));
		assert_true(same_by_bytes(&base[k], &b));
		/* flip each byte of the encoding in turn: the decoded event
		 * differs by the same verdict as the bytes */
		uint8_t buf[HT_LEAF_BYTES_MAX];
		size_t n = 0;
		assert_int_equal(ht_event_encode(&base[k], buf, &n), HT_OK);
		for (size_t i = 1; i < n; i++) {
			struct ht_event c;
			buf[i] ^= 0x01;
			if (ht_event_decode(buf, n, &c) == HT_OK)
				assert_int_equal(ht_event_same(&base[k], &c),
						 same_by_bytes(&base[k], &c));
			buf[i] ^= 0x01;
		}
	}
	/* implied: the request with ts, or the refusal of its id */
	struct ht_event t = transfer_event(3), imp;
	struct ht_transfer req = t.u.transfer;
	req.timestamp = 0;
	ht_event_implied(NULL, &req, HT_R_OK, t.u.transfer.timestamp, &imp);
	assert_true(ht_event_same(&imp, &t));
	ht_event_implied(NULL, &req, HT_R_EXCEEDS_CREDITS, 77, &imp);
	assert_int_equal(imp.kind, HT_EVENT_REFUSAL);
	assert_true(imp.u.refusal.id == req.id);
	assert_int_equal(imp.u.refusal.result, HT_R_EXCEEDS_CREDITS);
	assert_int_equal(imp.u.refusal.timestamp, 77);
	struct ht_event a = account_event(2);
	struct ht_account areq = a.u.account;
	areq.timestamp = 0;
	ht_event_implied(&areq, NULL, HT_R_OK, a.u.account.timestamp, &imp);
	assert_true(ht_event_same(&imp, &a));
	ht_event_implied(&areq, NULL, HT_R_OK, a.u.account.timestamp + 1, &imp);
	assert_false(ht_event_same(&imp, &a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_all_kinds),
		cmocka_unit_test(test_timestamp_of_each_kind),
		cmocka_unit_test(test_exact_layout),
		cmocka_unit_test(test_decode_rejects_truncation_and_trailing),
		cmocka_unit_test(test_decode_rejects_wrong_kind),
		cmocka_unit_test(test_decode_rejects_bad_ud_len),
		cmocka_unit_test(test_encode_rejects_bad_input),
		cmocka_unit_test(test_same_and_implied),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

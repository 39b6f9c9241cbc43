/*
 * event.c — the canonical binary encoding of ledger events: the bytes the
 * journal hashes as Merkle leaves (layout in ledger.h).
 *
 * Owner: ledger. The layout is a public, signed contract: never change it,
 * only add new kinds. Decoding handles bytes read back from storage, so
 * it checks every length before it reads and never reads past len.
 */
#include "huitong/ledger.h"

#include <string.h>

#define ACCOUNT_FIXED_BYTES (1 + 16 + 4 + 2 + 2 + 8 + 1)
#define TRANSFER_FIXED_BYTES (1 + 4 * 16 + 8 + 4 + 2 + 2 + 4 + 8 + 1)
#define EXPIRY_BYTES (1 + 16 + 8)
#define REFUSAL_BYTES (1 + 16 + 2 + 8)
_Static_assert(REFUSAL_BYTES == 27, "the refusal layout of ledger.h");

_Static_assert(TRANSFER_FIXED_BYTES + HT_USER_DATA_BYTES_MAX <=
		       HT_LEAF_BYTES_MAX,
	       "the largest event fits a leaf");
_Static_assert(ACCOUNT_FIXED_BYTES + HT_USER_DATA_BYTES_MAX <=
		       HT_LEAF_BYTES_MAX,
	       "an account event fits a leaf");

uint64_t ht_event_timestamp(const struct ht_event *e)
{
	switch (e->kind) {
	case HT_EVENT_ACCOUNT:
		return e->u.account.timestamp;
	case HT_EVENT_TRANSFER:
		return e->u.transfer.timestamp;
	case HT_EVENT_EXPIRY:
		return e->u.expiry.timestamp;
	case HT_EVENT_REFUSAL:
		return e->u.refusal.timestamp;
	}
	return 0;
}

void ht_event_implied(const struct ht_account *account,
		      const struct ht_transfer *transfer, uint16_t result,
		      uint64_t ts, struct ht_event *out)
{
	HT_ASSERT((account == NULL) != (transfer == NULL));
	memset(out, 0, sizeof *out);
	if (result != HT_R_OK) {
		HT_ASSERT(transfer != NULL); /* only transfers burn ids */
		out->kind = HT_EVENT_REFUSAL;
		out->u.refusal.id = transfer->id;
		out->u.refusal.result = result;
		out->u.refusal.timestamp = ts;
	} else if (account) {
		out->kind = HT_EVENT_ACCOUNT;
		out->u.account = *account;
		out->u.account.timestamp = ts;
	} else {
		out->kind = HT_EVENT_TRANSFER;
		out->u.transfer = *transfer;
		out->u.transfer.timestamp = ts;
	}
}

static bool same_user_data(uint8_t alen, const char *a, uint8_t blen,
			   const char *b)
{
	return alen == blen && alen <= HT_USER_DATA_BYTES_MAX &&
	       !memcmp(a, b, alen);
}

bool ht_event_same(const struct ht_event *a, const struct ht_event *b)
{
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case HT_EVENT_ACCOUNT: {
		const struct ht_account *x = &a->u.account, *y = &b->u.account;
		return x->id == y->id && x->ledger == y->ledger &&
		       x->code == y->code && x->flags == y->flags &&
		       x->timestamp == y->timestamp &&
		       same_user_data(x->user_data_len, x->user_data,
				      y->user_data_len, y->user_data);
	}
	case HT_EVENT_TRANSFER: {
		const struct ht_transfer *x = &a->u.transfer, *y = &b->u.transfer;
		return x->id == y->id &&
		       x->debit_account_id == y->debit_account_id &&
		       x->credit_account_id == y->credit_account_id &&
		       x->pending_id == y->pending_id && x->amount == y->amount &&
		       x->ledger == y->ledger && x->code == y->code &&
		       x->flags == y->flags && x->timeout_s == y->timeout_s &&
		       x->timestamp == y->timestamp &&
		       same_user_data(x->user_data_len, x->user_data,
				      y->user_data_len, y->user_data);
	}
	case HT_EVENT_EXPIRY:
		return a->u.expiry.pending_id == b->u.expiry.pending_id &&
		       a->u.expiry.timestamp == b->u.expiry.timestamp;
	case HT_EVENT_REFUSAL:
		return a->u.refusal.id == b->u.refusal.id &&
		       a->u.refusal.result == b->u.refusal.result &&
		       a->u.refusal.timestamp == b->u.refusal.timestamp;
	}
	return false;
}

/* ---- writing (big-endian) ---- */

static uint8_t *put_be(uint8_t *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	return p + bytes;
}

static uint8_t *put_u128(uint8_t *p, ht_u128 v)
{
	p = put_be(p, (uint64_t)(v >> 64), 8);
	return put_be(p, (uint64_t)v, 8);
}

static uint8_t *put_user_data(uint8_t *p, uint8_t len, const char *data)
{
	*p++ = len;
	memcpy(p, data, len);
	return p + len;
}

static uint8_t *encode_account(uint8_t *p, const struct ht_account *a)
{
	*p++ = HT_EVENT_ACCOUNT;
	p = put_u128(p, a->id);
	p = put_be(p, a->ledger, 4);
	p = put_be(p, a->code, 2);
	p = put_be(p, a->flags, 2);
	p = put_be(p, a->timestamp, 8);
	return put_user_data(p, a->user_data_len, a->user_data);
}

static uint8_t *encode_transfer(uint8_t *p, const struct ht_transfer *t)
{
	*p++ = HT_EVENT_TRANSFER;
	p = put_u128(p, t->id);
	p = put_u128(p, t->debit_account_id);
	p = put_u128(p, t->credit_account_id);
	p = put_u128(p, t->pending_id);
	p = put_be(p, t->amount, 8);
	p = put_be(p, t->ledger, 4);
	p = put_be(p, t->code, 2);
	p = put_be(p, t->flags, 2);
	p = put_be(p, t->timeout_s, 4);
	p = put_be(p, t->timestamp, 8);
	return put_user_data(p, t->user_data_len, t->user_data);
}

enum ht_err ht_event_encode(const struct ht_event *e,
			    uint8_t buf[HT_LEAF_BYTES_MAX], size_t *len)
{
	uint8_t *end;
	switch (e->kind) {
	case HT_EVENT_ACCOUNT:
		if (e->u.account.user_data_len > HT_USER_DATA_BYTES_MAX)
			return HT_ERR_INVALID;
		end = encode_account(buf, &e->u.account);
		break;
	case HT_EVENT_TRANSFER:
		if (e->u.transfer.user_data_len > HT_USER_DATA_BYTES_MAX)
			return HT_ERR_INVALID;
		end = encode_transfer(buf, &e->u.transfer);
		break;
	case HT_EVENT_EXPIRY:
		buf[0] = HT_EVENT_EXPIRY;
		end = put_u128(buf + 1, e->u.expiry.pending_id);
		end = put_be(end, e->u.expiry.timestamp, 8);
		break;
	case HT_EVENT_REFUSAL:
		buf[0] = HT_EVENT_REFUSAL;
		end = put_u128(buf + 1, e->u.refusal.id);
		end = put_be(end, e->u.refusal.result, 2);
		end = put_be(end, e->u.refusal.timestamp, 8);
		break;
	default:
		return HT_ERR_INVALID;
	}
	*len = (size_t)(end - buf);
	HT_ASSERT(*len <= HT_LEAF_BYTES_MAX);
	return HT_OK;
}

/* ---- reading: the caller has checked the total length ---- */

static const uint8_t *get_be(const uint8_t *p, unsigned bytes, uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned i = 0; i < bytes; i++)
		x = x << 8 | p[i];
	*v = x;
	return p + bytes;
}

static const uint8_t *get_u128(const uint8_t *p, ht_u128 *v)
{
	uint64_t hi, lo;
	p = get_be(p, 8, &hi);
	p = get_be(p, 8, &lo);
	*v = (ht_u128)hi << 64 | lo;
	return p;
}

/* user_data length at fixed-1 must be valid and end exactly at len. */
static enum ht_err check_user_data(const uint8_t *buf, size_t len,
				   size_t fixed)
{
	if (len < fixed)
		return HT_ERR_CORRUPT;
	uint8_t ud_len = buf[fixed - 1];
	if (ud_len > HT_USER_DATA_BYTES_MAX || len != fixed + ud_len)
		return HT_ERR_CORRUPT;
	return HT_OK;
}

static void decode_account(const uint8_t *p, struct ht_account *a)
{
	uint64_t v;
	p = get_u128(p + 1, &a->id);
	p = get_be(p, 4, &v);
	a->ledger = (uint32_t)v;
	p = get_be(p, 2, &v);
	a->code = (uint16_t)v;
	p = get_be(p, 2, &v);
	a->flags = (uint16_t)v;
	p = get_be(p, 8, &a->timestamp);
	a->user_data_len = *p++;
	memcpy(a->user_data, p, a->user_data_len);
}

static void decode_transfer(const uint8_t *p, struct ht_transfer *t)
{
	uint64_t v;
	p = get_u128(p + 1, &t->id);
	p = get_u128(p, &t->debit_account_id);
	p = get_u128(p, &t->credit_account_id);
	p = get_u128(p, &t->pending_id);
	p = get_be(p, 8, &t->amount);
	p = get_be(p, 4, &v);
	t->ledger = (uint32_t)v;
	p = get_be(p, 2, &v);
	t->code = (uint16_t)v;
	p = get_be(p, 2, &v);
	t->flags = (uint16_t)v;
	p = get_be(p, 4, &v);
	t->timeout_s = (uint32_t)v;
	p = get_be(p, 8, &t->timestamp);
	t->user_data_len = *p++;
	memcpy(t->user_data, p, t->user_data_len);
}

static void decode_refusal(const uint8_t *p, struct ht_event *e)
{
	uint64_t v;
	p = get_u128(p + 1, &e->u.refusal.id);
	p = get_be(p, 2, &v);
	e->u.refusal.result = (uint16_t)v;
	get_be(p, 8, &e->u.refusal.timestamp);
}

enum ht_err ht_event_decode(const uint8_t *buf, size_t len,
			    struct ht_event *out)
{
	if (!buf || len == 0)
		return HT_ERR_CORRUPT;
	memset(out, 0, sizeof *out);
	switch (buf[0]) {
	case HT_EVENT_ACCOUNT:
		if (check_user_data(buf, len, ACCOUNT_FIXED_BYTES))
			return HT_ERR_CORRUPT;
		out->kind = HT_EVENT_ACCOUNT;
		decode_account(buf, &out->u.account);
		return HT_OK;
	case HT_EVENT_TRANSFER:
		if (check_user_data(buf, len, TRANSFER_FIXED_BYTES))
			return HT_ERR_CORRUPT;
		out->kind = HT_EVENT_TRANSFER;
		decode_transfer(buf, &out->u.transfer);
		return HT_OK;
	case HT_EVENT_EXPIRY:
		if (len != EXPIRY_BYTES)
			return HT_ERR_CORRUPT;
		out->kind = HT_EVENT_EXPIRY;
		get_be(get_u128(buf + 1, &out->u.expiry.pending_id), 8,
		       &out->u.expiry.timestamp);
		return HT_OK;
	case HT_EVENT_REFUSAL:
		if (len != REFUSAL_BYTES)
			return HT_ERR_CORRUPT;
		out->kind = HT_EVENT_REFUSAL;
		decode_refusal(buf, out);
		return HT_OK;
	}
	return HT_ERR_CORRUPT;
}

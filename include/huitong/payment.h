/*
 * payment.h — one payment in the interchange format of DESIGN.md: what the
 * simulator writes, `huitong risk score|train` and the supervision tools
 * read, and the risk engine scores.
 *
 * Owner: risk. A line of interchange JSONL looks like
 *
 *   {"id":"t-000001","ts":"2026-03-01T08:00:00.120Z","payer":"bankA:c1001",
 *    "payee":"bankB:m77","payer_participant":"bankA",
 *    "payee_participant":"bankB","amount":"12345","currency":"CNY",
 *    "channel":"qr","device":"d-9","ip":"10.1.2.3"}
 *
 * `payer`/`payee` are opaque party references; unknown fields are ignored.
 * A label line (the simulator's ground truth, one per payment, same order):
 *
 *   {"id":"t-000001","fraud":false,"type":"none"}
 *
 * with `type` one of the names of enum ht_fraud_type.
 *
 * Strings are held in fixed, NUL-terminated arrays: a payment is a plain
 * value, copied without allocation. Every length is bounded below; input
 * longer than a bound is refused (HT_ERR_LIMIT), never truncated.
 */
#ifndef HUITONG_PAYMENT_H
#define HUITONG_PAYMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "huitong/common.h"

/* Bytes of each string field, NUL included. */
#define HT_PAYMENT_ID_BYTES 65        /* id: up to 64 characters */
#define HT_PAYMENT_REF_BYTES 65       /* payer, payee, device, ip */
#define HT_PAYMENT_PARTICIPANT_BYTES 57 /* participant ids: the registry's 56 bytes */
#define HT_PAYMENT_CURRENCY_BYTES 4   /* ISO 4217 alphabetic, "CNY" */
/* One interchange line, bytes, newline excluded. */
#define HT_PAYMENT_LINE_BYTES_MAX 4096

enum ht_channel {
	HT_CHANNEL_P2P = 0,
	HT_CHANNEL_QR,
	HT_CHANNEL_CARD,
	HT_CHANNEL_TRANSFER,
	HT_CHANNEL_CASH_IN,
	HT_CHANNEL_CASH_OUT,
	HT_CHANNEL_BILL,
	HT_CHANNEL__COUNT
};

struct ht_payment {
	char id[HT_PAYMENT_ID_BYTES];
	int64_t ts_ms;         /* Unix time, milliseconds, UTC */
	char payer[HT_PAYMENT_REF_BYTES];
	char payee[HT_PAYMENT_REF_BYTES];
	char payer_participant[HT_PAYMENT_PARTICIPANT_BYTES];
	char payee_participant[HT_PAYMENT_PARTICIPANT_BYTES];
	uint64_t amount;       /* minor units (fen for CNY), > 0 */
	char currency[HT_PAYMENT_CURRENCY_BYTES];
	enum ht_channel channel;
	char device[HT_PAYMENT_REF_BYTES]; /* "" when absent */
	char ip[HT_PAYMENT_REF_BYTES];     /* "" when absent */
};

/* Ground truth of the simulator. */
enum ht_fraud_type {
	HT_FRAUD_NONE = 0,
	HT_FRAUD_ACCOUNT_TAKEOVER, /* "account_takeover" */
	HT_FRAUD_CARD_TESTING,     /* "card_testing" */
	HT_FRAUD_APP_SCAM,         /* "app_scam": authorised push-payment scam */
	HT_FRAUD_MULE,             /* "mule": a mule account moving money on */
	HT_FRAUD__COUNT
};

struct ht_label {
	char id[HT_PAYMENT_ID_BYTES];
	bool fraud;
	enum ht_fraud_type type;
};

/* ---- codec (src/risk/payment.c) ------------------------------------------ */

/*
 * Timestamps are UTC, 1970-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z.
 * Accepted forms (strict; nothing else): "YYYY-MM-DDTHH:MM:SS.mmmZ" (what
 * huitong writes), the same without the fraction ("…:SSZ"), and either of
 * them with "+00:00" in place of "Z". The fraction, when present, is
 * exactly three digits (milliseconds: finer input is refused rather than
 * truncated). No leap seconds (SS ≤ 59); the date must exist.
 */
#define HT_PAYMENT_TS_MS_MAX 253402300799999LL /* 9999-12-31T23:59:59.999Z */
#define HT_PAYMENT_TS_BYTES 25                 /* written form + NUL */

/*
 * Longest line ht_payment_format can write (NUL excluded): every string
 * field at its maximum and escaped ('"' and '\\' take two bytes). A
 * formatted payment always fits a read line, so what huitong writes it
 * can read back.
 */
#define HT_PAYMENT_FORMAT_BYTES_MAX                                          \
	(200 + 2 * (HT_PAYMENT_ID_BYTES + 4 * HT_PAYMENT_REF_BYTES +          \
		    2 * HT_PAYMENT_PARTICIPANT_BYTES) + 20 + 24 + 3)
_Static_assert(HT_PAYMENT_FORMAT_BYTES_MAX <= HT_PAYMENT_LINE_BYTES_MAX,
	       "a written payment line can be read back");
/* Longest label line (NUL excluded). */
#define HT_LABEL_FORMAT_BYTES_MAX (64 + 2 * HT_PAYMENT_ID_BYTES)

/*
 * Parse one interchange line (no newline) of len bytes into *out.
 *
 * Required: id, ts, payer, payee, payer_participant, payee_participant
 * (non-empty strings), amount (a decimal string of minor units up to
 * 2^64-1, or a JSON integer up to 2^63-1; > 0), currency (three letters
 * A-Z), channel (a name of enum ht_channel). Optional: device, ip (string,
 * null or absent; absent and null give ""). Strings must fit their field
 * (refused, never truncated) and hold no control characters. Unknown keys
 * are ignored; a key given twice is refused. The nesting depth (of ignored
 * values) is at most HT_JSON_DEPTH_MAX.
 *
 * Returns HT_OK; HT_ERR_INVALID (malformed: err names the field and the
 * problem); HT_ERR_LIMIT (line longer than HT_PAYMENT_LINE_BYTES_MAX, a
 * string too long for its field, nesting too deep); HT_ERR_NOMEM. err
 * (err_size bytes, may be NULL when err_size is 0) always gets a
 * NUL-terminated message on failure. *out is fully written (zeroed first)
 * on success and unspecified on failure.
 */
enum ht_err ht_payment_parse(const char *line, size_t len,
			     struct ht_payment *out, char *err,
			     size_t err_size);

/*
 * Write p as one interchange line (keys in the order of DESIGN.md, amount
 * as a decimal string, ts as "YYYY-MM-DDTHH:MM:SS.mmmZ", device and ip
 * always present, no newline) into buf of size bytes, NUL-terminated.
 * Returns the length written (NUL excluded), or 0 when p is not a payment
 * ht_payment_parse would accept (unknown channel, amount 0, ts out of
 * range, a string empty where required, not NUL-terminated in its array,
 * not valid UTF-8 or with control characters, a currency that is not three
 * letters A-Z) or when the line does not fit (size >
 * HT_PAYMENT_FORMAT_BYTES_MAX always does). Never calls printf: the
 * simulator writes millions of lines with it.
 */
size_t ht_payment_format(const struct ht_payment *p, char *buf, size_t size);

/*
 * Parse a label line `{"id":"…","fraud":true|false,"type":"…"}`: id as in
 * a payment, fraud a JSON boolean, type a name of enum ht_fraud_type, and
 * the two consistent (fraud false exactly when type is "none"). Unknown
 * keys are ignored. Errors as ht_payment_parse.
 */
enum ht_err ht_label_parse(const char *line, size_t len, struct ht_label *out,
			   char *err, size_t err_size);

/*
 * Write l as a label line (no newline) into buf, NUL-terminated. Returns
 * the length, or 0 when l is inconsistent (fraud and type disagree, type
 * unknown, id empty or invalid) or does not fit (size >
 * HT_LABEL_FORMAT_BYTES_MAX always does).
 */
size_t ht_label_format(const struct ht_label *l, char *buf, size_t size);

/*
 * Parse a timestamp (forms above) from s[0..len) into Unix milliseconds.
 * HT_ERR_INVALID when it is not one of the forms or names no real instant
 * in range.
 */
enum ht_err ht_payment_ts_parse(const char *s, size_t len, int64_t *ts_ms);

/*
 * Write ts_ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into out (NUL-terminated).
 * Returns 24, or 0 when ts_ms is outside 0..HT_PAYMENT_TS_MS_MAX.
 */
size_t ht_payment_ts_format(int64_t ts_ms, char out[HT_PAYMENT_TS_BYTES]);

/* Static name of a channel ("p2p", "cash_in", …), or NULL when c is not
 * one. */
const char *ht_channel_name(enum ht_channel c);

/* The channel named s[0..len): HT_OK, or HT_ERR_INVALID for no such name. */
enum ht_err ht_channel_parse(const char *s, size_t len, enum ht_channel *out);

/* Static name of a fraud type ("none", "account_takeover", "card_testing",
 * "app_scam", "mule"), or NULL when t is not one. */
const char *ht_fraud_type_name(enum ht_fraud_type t);

/* The fraud type named s[0..len): HT_OK, or HT_ERR_INVALID. */
enum ht_err ht_fraud_type_parse(const char *s, size_t len,
				enum ht_fraud_type *out);

#endif

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
#define HT_PAYMENT_PARTICIPANT_BYTES 33 /* participant ids (registry's limit) */
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

#endif

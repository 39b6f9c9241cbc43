/*
 * liquidity.h — participants' positions and net debit caps (issue 5,
 * item 1; docs/switch.md "Liquidity").
 *
 * Owner: switch. Per participant and currency the hub keeps two ledger
 * accounts, owned by the participant (so it reads them through the API
 * like any of its accounts), with ids derived from (kind, currency,
 * participant) by ht_liq_account_id:
 *   - the POSITION account: payments between participants move money
 *     between position accounts (prepared as pending transfers, posted or
 *     voided); funding credits it, defunding debits it;
 *   - the SETTLEMENT account: the participant's side of the settlement
 *     bank; funding moves money from it to the position, defunding back,
 *     settling a window books net positions against it.
 * The net debit position is debits (posted and pending) minus posted
 * credits of the position account; a prepare is allowed while the position
 * after it stays within the participant's net debit cap. Cap and
 * suspension live in DATA/switch.db (SQLite, synchronous=FULL), take effect
 * at the next check (rows are cached until this handle changes one, the
 * only writer), and are durable when the call
 * returns. Money only moves through the ledger, so every movement is a
 * journal leaf with its receipt.
 *
 * One writer: the hub's (the caller commits the hub; these functions only
 * append ledger events, like ht_hub_create_*).
 */
#ifndef HUITONG_LIQUIDITY_H
#define HUITONG_LIQUIDITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "huitong/hub.h"

#define HT_LIQ_PARTICIPANT_MAX 56
#define HT_LIQ_CODE_POSITION 9001   /* account codes */
#define HT_LIQ_CODE_SETTLEMENT 9002
#define HT_LIQ_CODE_FUND 9101       /* transfer codes */
#define HT_LIQ_CODE_DEFUND 9102
#define HT_LIQ_CODE_SETTLE_IN 9103  /* settling a window: a net debtor
				       pays in (settlement -> position) */
#define HT_LIQ_CODE_SETTLE_OUT 9104 /* a net creditor is paid out */
#define HT_LIQ_CODE_ISO 9301        /* an ISO 20022 credit transfer
				       (pacs.008), settled at once */
#define HT_LIQ_CODE_PAYMENT 9201    /* a payment the payee's participant
				       accepts (credit transfer, push) */
#define HT_LIQ_CODE_PAYMENT_PULL 9202 /* one the payer's participant
					 accepts (consumer-presented code) */

enum ht_liq_account {
	HT_LIQ_POSITION = 1,
	HT_LIQ_SETTLEMENT = 2,
};

/* The id of participant's kind account in currency (ISO 4217 numeric,
 * 1..999): "HTSW" in the top 32 bits, then kind and currency, then 64
 * bits of SM3(participant). Never 0 or 2^128-1. */
ht_u128 ht_liq_account_id(const char *participant, uint32_t currency,
			  enum ht_liq_account kind);

struct ht_liq;

/* A transfer id derived from bytes: the first 128 bits of their SM3, never
 * 0 or 2^128-1 (1 stands in). Payments, decisions, settlement bookings and
 * ISO 20022 transactions get their ids so, which makes retries idempotent. */
ht_u128 ht_liq_derived_id(const void *buf, size_t n);
/* A payment's id (POST /v1/payments): derived from "huitong/payment", 0,
 * the caller's participant id, 0, its client_id — a client can know it
 * before it sends. caller at most 64 bytes, client_id at most 64. */
ht_u128 ht_liq_payment_id(const char *caller, const char *client_id);
/* The id of the decision accepting (posting) or rejecting (voiding)
 * payment: derived from "huitong/accept" or "huitong/reject", 0, its 16
 * bytes big-endian, 0. */
ht_u128 ht_liq_decision_id(ht_u128 payment, bool accept);

/* Open DATA/switch.db (creating it) over hub (borrowed, the writer).
 * HT_ERR_IO, HT_ERR_NOMEM; err says why. */
enum ht_err ht_liq_open(const char *data_dir, struct ht_hub *hub,
			struct ht_liq **out, char *err, size_t err_size);
void ht_liq_close(struct ht_liq *l);

/*
 * Make participant a member in currency: its position and settlement
 * accounts (created when missing, owned by it) and its row (cap 0, not
 * suspended) when missing. Idempotent. HT_ERR_INVALID for a participant id
 * that is not one (ht_owner_valid) or a currency outside 1..999;
 * HT_ERR_EXISTS when an account with one of the ids exists with another
 * owner (a collision); ledger errors.
 */
enum ht_err ht_liq_setup(struct ht_liq *l, const char *participant,
			 uint32_t currency);

/* Set the net debit cap (minor units, at most INT64_MAX): HT_ERR_NOT_FOUND
 * when participant is not set up in currency. A cap below the current
 * position refuses every prepare until the position is back under it. */
enum ht_err ht_liq_set_cap(struct ht_liq *l, const char *participant,
			   uint32_t currency, uint64_t cap);

/* Suspend (true) or resume (false) participant in every currency:
 * HT_ERR_NOT_FOUND when it is set up in none. */
enum ht_err ht_liq_set_suspended(struct ht_liq *l, const char *participant,
				 bool suspended);

/*
 * Fund (settlement → position) or defund (position → settlement) with
 * transfer id (the caller's, for idempotent retries: the ledger answers
 * `exists` to an exact retry). A defund may only take back what puts the
 * position no further than 0 (a participant withdraws its own funds, never
 * its cap): *result HT_R_EXCEEDS_CREDITS otherwise. *result is the
 * ledger's result code. HT_ERR_NOT_FOUND when not set up.
 */
enum ht_err ht_liq_fund(struct ht_liq *l, const char *participant,
			uint32_t currency, ht_u128 id, uint64_t amount,
			bool defund, uint16_t *result);

struct ht_liq_position {
	int64_t net_debit;      /* debits posted + pending - credits posted;
				   negative: the participant is owed */
	uint64_t reserved;      /* of which pending (prepared payments) */
	uint64_t cap;
	int64_t headroom;       /* cap - net_debit */
	bool suspended;
};

/* participant's position in currency: HT_OK, HT_ERR_NOT_FOUND,
 * HT_ERR_LIMIT (a position beyond int64: cannot happen with amounts the
 * ledger accepts, checked anyway). */
enum ht_err ht_liq_position(struct ht_liq *l, const char *participant,
			    uint32_t currency, struct ht_liq_position *out);

enum ht_liq_verdict {
	HT_LIQ_OK = 0,
	HT_LIQ_NOT_MEMBER,      /* "participant_not_set_up" */
	HT_LIQ_SUSPENDED,       /* "participant_suspended" */
	HT_LIQ_CAP_EXCEEDED,    /* "net_debit_cap_exceeded" */
};
const char *ht_liq_verdict_name(enum ht_liq_verdict v);

/* May payer prepare a payment of amount in currency now? */
enum ht_liq_verdict ht_liq_check(struct ht_liq *l, const char *payer,
				 uint32_t currency, uint64_t amount);

/*
 * The verdict on a payment of amount from payer to payee in currency, with
 * `reserved` more already promised by payer in the same batch: 0 to go on,
 * HT_R_PARTICIPANT_SUSPENDED when either is suspended,
 * HT_R_NET_DEBIT_CAP_EXCEEDED when payer's position would pass its cap. A
 * participant that is not set up gets 0: the ledger then answers
 * debit_account_not_found / credit_account_not_found itself. Hub thread.
 */
uint16_t ht_liq_payment_verdict(struct ht_liq *l, const char *payer,
				const char *payee, uint32_t currency,
				uint64_t amount, uint64_t reserved);

/* ---- ISO 20022 booking (issue 5, item 7) -------------------------------
 *
 * The directory of agents: a BIC (8 or 11 characters) names a participant.
 * A pacs.008 transaction is booked at once (ACSC: settlement completed) as
 * a transfer position(debtor agent's participant) -> position(creditor
 * agent's), code 9301, after the liquidity verdict; its id is derived from
 * (debtor participant, TxId — EndToEndId when there is none), so a
 * transaction sent again is DUPL. Reasons: RC01 (an agent that is not a
 * member, or a debtor agent that is not the submitter), AM03 (a currency
 * without a numeric code here), AC01 (a participant not set up in the
 * currency), AC06 (a participant suspended), AM04 (beyond the net debit
 * cap), DUPL, RR04 (the caller's risk screen blocked it).
 */
struct ht_iso_msg;
struct ht_iso_tx;
/* Map bic to participant (replacing its mapping): HT_ERR_INVALID for a
 * BIC that is not [A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})? or a bad
 * participant id. */
enum ht_err ht_liq_set_bic(struct ht_liq *l, const char *bic,
			   const char *participant);
/* The participant bic names (its 11 characters, else its first 8, else
 * the 8 + "XXX"): HT_OK or HT_ERR_NOT_FOUND. */
enum ht_err ht_liq_bic_participant(struct ht_liq *l, const char *bic,
				   char out[HT_LIQ_PARTICIPANT_MAX + 1]);
/* A risk screen for booking: true when the transaction (between payer and
 * payee participants, in currency) is blocked (RR04, why its detail). */
typedef bool (*ht_liq_screen_fn)(void *ctx, const struct ht_iso_tx *tx,
				 const char *payer, const char *payee,
				 char *why, size_t why_size);
/* Book m's accepted transactions in order (submitter: the participant
 * that sent it, which must be every debtor agent's; NULL for the
 * operator's CLI), rejecting the others in m with their reason; screen
 * (NULL: none) is asked before each booking; *booked counts the transfers
 * made. Ledger errors (HT_ERR_POISONED, ...). */
enum ht_err ht_liq_book_pacs008(struct ht_liq *l, struct ht_iso_msg *m,
				const char *submitter, ht_liq_screen_fn screen,
				void *screen_ctx, size_t *booked);

/* ---- settlement windows (issue 5, item 6) ------------------------------
 *
 * A window collects the payments COMMITTED (posted) while it is open, and
 * the ISO 20022 credit transfers booked while it is open:
 * window 1 opens with the switch; closing window N (at the ledger's last
 * timestamp) opens N+1 at once, so a closed window takes no more payments
 * and none falls between two. At close each member's multilateral net
 * position in the window is computed from the ledger (received - paid over
 * the window's posted payments; the lines sum to zero per currency) and
 * stored in DATA/switch.db. Settling books each non-zero net position
 * against the member's settlement account (a net debtor: settlement ->
 * position, code 9103; a net creditor: position -> settlement, 9104), with
 * transfer ids derived from (window, member, currency): a retry answers
 * `exists`, and a window is settled exactly when every booking is in the
 * ledger (no second record to disagree with it). Hub thread (or the CLI
 * as the store's writer).
 */
struct ht_settle_line {
	char participant[HT_LIQ_PARTICIPANT_MAX + 1];
	uint32_t currency;
	uint64_t paid, received;    /* posted payments in the window */
	int64_t net;                /* received - paid: > 0 owed to it */
	uint32_t payments_out, payments_in;
	ht_u128 booking;            /* the settling transfer's id (0: none,
				       net 0) */
};

enum ht_settle_state {
	HT_SETTLE_OPEN = 1,         /* "open": lines computed now */
	HT_SETTLE_CLOSED = 2,       /* "closed" */
	HT_SETTLE_SETTLED = 3,      /* "settled": every booking is in */
};
const char *ht_settle_state_name(enum ht_settle_state s);

struct ht_settle_report {
	uint64_t window;
	enum ht_settle_state state;
	uint64_t opened_ts, closed_ts; /* ledger timestamps (ns); closed 0
					  while open */
	size_t count;
	struct ht_settle_line *lines;  /* by participant, currency */
};
void ht_settle_report_free(struct ht_settle_report *r); /* NULL is fine */

/* Close the open window; *out gets its report (state closed). HT_ERR_IO,
 * HT_ERR_NOMEM, HT_ERR_CORRUPT when the lines do not sum to zero (cannot
 * happen: every posted payment is one member's debit and another's
 * credit; checked, nothing stored). */
enum ht_err ht_liq_window_close(struct ht_liq *l, struct ht_settle_report *out);
/* The report of window id (0: the open one, computed now):
 * HT_ERR_NOT_FOUND for a window that does not exist. */
enum ht_err ht_liq_window_report(struct ht_liq *l, uint64_t id,
				 struct ht_settle_report *out);
/* Book closed window id's net positions (those not booked yet); *booked
 * gets how many transfers this call made. HT_ERR_NOT_FOUND; HT_ERR_INVALID
 * for the open window; ledger errors; HT_ERR_CORRUPT when the ledger
 * refuses a booking (*result its code). */
enum ht_err ht_liq_window_settle(struct ht_liq *l, uint64_t id, size_t *booked,
				 uint16_t *result);
/* The report as JSON (one object, no newline) or CSV (a header line and
 * one line per member). */
struct ht_buf;
enum ht_err ht_settle_report_json(const struct ht_settle_report *r,
				  struct ht_buf *b);
enum ht_err ht_settle_report_csv(const struct ht_settle_report *r,
				 struct ht_buf *b);

#endif

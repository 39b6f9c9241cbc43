/*
 * iso_internal.h — what the files of src/iso20022/ share: the ISO value
 * types (values.c), the reader's private state around a message
 * (pacs008.c) and the checks run once it is read (check.c).
 *
 * Owner: iso20022. Nothing here is for other modules.
 */
#ifndef HUITONG_ISO_INTERNAL_H
#define HUITONG_ISO_INTERNAL_H

#include <stdarg.h>

#include "huitong/iso20022.h"

/* ---- values.c: ISO simple types ------------------------------------------ */

/*
 * A decimal as ISO writes it (xs:decimal, no exponent): e17 is the value
 * times 10^17, exact; frac_digits the fraction digits as written.
 */
struct iso_dec {
	ht_u128 e17;
	unsigned frac_digits;
};

/*
 * Parse s[0..len) as a non-negative decimal of at most total_max digits
 * (leading zeros not counted) and frac_max fraction digits (at most 17).
 * A leading '+' is allowed, '-' is not. False, with *why set to a static
 * phrase, when it is not one.
 */
bool iso_dec_parse(const char *s, size_t len, unsigned total_max,
		   unsigned frac_max, struct iso_dec *out, const char **why);

/* Minor-unit exponent of an ISO 4217 currency huitong processes ("CNY" 2,
 * "JPY" 0, "KWD" 3), or -1. */
int iso_currency_exponent(const char *ccy);

/* Three letters A-Z. */
bool iso_ccy_form(const char *s, size_t len);

/* BICFI: [A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})? */
bool iso_bic_valid(const char *s, size_t len);

/* IBAN: [A-Z]{2}[0-9]{2}[A-Z0-9]{1,30} whose ISO 7064 mod-97 is 1. */
bool iso_iban_valid(const char *s, size_t len);

/* UUIDv4Identifier: lowercase 8-4-4-4-12 hex, version 4, variant 8-b. */
bool iso_uetr_valid(const char *s, size_t len);

/* ISODate YYYY-MM-DD of a date that exists. */
bool iso_date_valid(const char *s, size_t len);

/* ISODateTime: an ISODate, 'T', hh:mm:ss, optional fraction, optional
 * 'Z' or ±hh:mm. */
bool iso_datetime_valid(const char *s, size_t len);

/* Characters (code points) of the valid UTF-8 s[0..len). */
size_t iso_utf8_chars(const char *s, size_t len);

/* Give *reason code and *detail a formatted message, unless *reason
 * already holds one: the first reason found is the one reported. */
void iso_reason_set(enum ht_iso_reason *reason, char *detail,
		    enum ht_iso_reason code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- check.c: checks across the message ----------------------------------- */

/* What the reader knows of a transaction beyond struct ht_iso_tx. */
struct iso_tx_extra {
	bool amount_read;  /* IntrBkSttlmAmt was a decimal */
	bool debtor_seen, creditor_seen; /* Dbtr, Cdtr given */
	struct iso_dec amount;
};

/* What the reader knows of the group beyond struct ht_iso_group. */
struct iso_group_extra {
	bool complete;      /* the whole message was read */
	bool nb_of_txs_read; /* NbOfTxs given and a number */
	bool ctrl_sum_read; /* CtrlSum given and a decimal */
	ht_u128 ctrl_sum_e17;
	bool total_read;    /* TtlIntrBkSttlmAmt given and a decimal */
	struct iso_dec total;
};

/* The checks of a transaction once its CdtTrfTxInf has ended: mandatory
 * elements, amount against currency. */
void iso_check_tx(struct ht_iso_msg *m, size_t i, const struct iso_tx_extra *x);

/* The checks of the message once read: group header, NbOfTxs, CtrlSum,
 * total, duplicates, maximum amount, the caller's seen(). */
enum ht_err iso_check_msg(struct ht_iso_msg *m, const struct iso_group_extra *g,
			  const struct iso_tx_extra *x,
			  const struct ht_iso_options *opts);

#endif

/*
 * iso20022.h — ISO 20022 for interbank credit transfers: read a pacs.008
 * (FIToFICstmrCdtTrf, versions pacs.008.001.02 to .001.08), judge it
 * group by group and transaction by transaction with ISO reason codes,
 * and write the pacs.002 (FIToFIPmtStsRpt) that answers it
 * (docs/iso20022.md).
 *
 * Owner: iso20022. The reader is a bounded, streaming libxml2 SAX parser
 * of outside input: no network, no DTD (a DOCTYPE is refused before its
 * internal subset is read, so no entity is ever declared or expanded), no
 * XInclude, at most HT_ISO_XML_BYTES_MAX bytes, HT_ISO_XML_DEPTH_MAX
 * levels and HT_ISO_TXS_MAX transactions, every text within its ISO
 * length. It never books, never touches a store and never calls the
 * switch: the caller (`huitong iso20022 check`, later the switch) books
 * the accepted transactions and records each outcome before asking for
 * the pacs.002.
 *
 * The life of a message:
 *
 *   struct ht_iso_msg *m;
 *   ht_iso_pacs008_read(xml, len, &opts, &m);   // parse + validate
 *   for (size_t i = 0; i < m->tx_count; i++)
 *           if (ht_iso_tx_accepted(m, i) && !book(&m->tx[i]))
 *                   ht_iso_tx_reject(m, i, HT_ISO_AM04, NULL);
 *   ht_iso_pacs002_write(m, msg_id, now_ms, &xml_out, &xml_len);
 *   ht_iso_msg_free(m);
 *
 * A message that cannot be read at all (not XML, a DOCTYPE, too large, an
 * unknown version) is still a message: ht_iso_pacs008_read returns HT_OK
 * with the group rejected (FF01) and a detail saying why, so the answer is
 * always a pacs.002. Only a failed allocation is an error.
 */
#ifndef HUITONG_ISO20022_H
#define HUITONG_ISO20022_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "huitong/common.h"

/*
 * Reason codes (ISO ExternalStatusReason1Code), each with its four-letter
 * name from ht_iso_reason_name. HT_ISO_REASON_NONE is "no reason":
 * accepted. The reader produces FF01 … DUPL; the booking layer produces
 * AC04, AC06, AM04 and RR04.
 */
enum ht_iso_reason {
	HT_ISO_REASON_NONE = 0,
	HT_ISO_FF01, /* file format incomplete or invalid: a missing mandatory
			element, a value not of its ISO type, an unknown
			version, XML that is not well formed or not allowed */
	HT_ISO_AM10, /* CtrlSum or TtlIntrBkSttlmAmt disagrees with the sum
			of the transactions' IntrBkSttlmAmt */
	HT_ISO_AM18, /* NbOfTxs disagrees with the number of CdtTrfTxInf */
	HT_ISO_AM01, /* amount is zero */
	HT_ISO_AM02, /* amount above the configured maximum */
	HT_ISO_AM03, /* a currency huitong does not process */
	HT_ISO_AM12, /* amount invalid: more fraction digits than its
			currency has (JPY 1.5, EUR 1.234) */
	HT_ISO_AC01, /* debtor or creditor account missing or invalid */
	HT_ISO_RC01, /* a BIC of the wrong format */
	HT_ISO_DUPL, /* duplicate: TxId or EndToEndId repeated in the message,
			or seen before (the caller's callback) */
	HT_ISO_AC04, /* booking: account closed */
	HT_ISO_AC06, /* booking: account blocked */
	HT_ISO_AM04, /* booking: insufficient funds */
	HT_ISO_RR04, /* booking: regulatory reason (a risk block) */
	HT_ISO_REASON__COUNT
};

/* "FF01", "AM10", …; NULL for HT_ISO_REASON_NONE or an unknown value. */
const char *ht_iso_reason_name(enum ht_iso_reason r);

/* Is s[0..len) a BIC(FI): [A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})? */
bool ht_iso_bic_valid(const char *s, size_t len);

/* Payment status codes the pacs.002 carries (group and transaction). */
enum ht_iso_status {
	HT_ISO_ACSC = 0, /* settlement completed (would be, for check) */
	HT_ISO_RJCT,     /* rejected */
	HT_ISO_PART,     /* group only: some accepted, some rejected */
};

/* "ACSC", "RJCT", "PART"; NULL for an unknown value. */
const char *ht_iso_status_name(enum ht_iso_status s);

/* pacs.008 versions read: the N of pacs.008.001.0N. 0: not known. */
#define HT_ISO_PACS008_VERSION_MIN 2
#define HT_ISO_PACS008_VERSION_MAX 8

/*
 * The pacs.002 version that answers pacs.008.001.0<version> — the one of
 * the same ISO release: .02→pacs.002.001.03, .03→.04, .04→.05, .05→.06,
 * .06→.07, .07→.08, .08→.10; 0 (unknown) → .10. Static, e.g.
 * "pacs.002.001.10".
 */
const char *ht_iso_pacs002_name(unsigned version);

/* Byte sizes of the string fields below, NUL included. ISO lengths count
 * characters; a character of UTF-8 takes up to four bytes. */
#define HT_ISO_MAX35_BYTES (35 * 4 + 1)   /* Max35Text */
#define HT_ISO_MAX140_BYTES (140 * 4 + 1) /* Max140Text */
#define HT_ISO_ACCOUNT_BYTES (34 * 4 + 1) /* IBAN (34) or Othr/Id Max34Text */
#define HT_ISO_BIC_BYTES 12               /* BICFI: 8 or 11 */
#define HT_ISO_UETR_BYTES 37              /* UUIDv4, 36 characters */
#define HT_ISO_CCY_BYTES 4                /* ISO 4217 alphabetic */
#define HT_ISO_DATE_BYTES 11              /* ISODate YYYY-MM-DD */
#define HT_ISO_DATETIME_BYTES 36          /* ISODateTime as given */
#define HT_ISO_CODE_BYTES 5               /* four-letter codes */
#define HT_ISO_DETAIL_BYTES 106           /* StsRsnInf/AddtlInf Max105Text */

enum ht_iso_account_kind {
	HT_ISO_ACCOUNT_NONE = 0, /* absent or invalid */
	HT_ISO_ACCOUNT_IBAN,     /* Id/IBAN, mod-97 checked */
	HT_ISO_ACCOUNT_OTHER,    /* Id/Othr/Id */
};

struct ht_iso_account {
	enum ht_iso_account_kind kind;
	char id[HT_ISO_ACCOUNT_BYTES];
};

/*
 * One CdtTrfTxInf. A field the message lacks, or gives in a form that is
 * not its ISO type, is "" (0 for the amount) and the transaction carries
 * a reason; the pacs.002 never echoes an invalid value.
 */
struct ht_iso_tx {
	char instr_id[HT_ISO_MAX35_BYTES];      /* PmtId/InstrId, optional */
	char end_to_end_id[HT_ISO_MAX35_BYTES]; /* PmtId/EndToEndId */
	char tx_id[HT_ISO_MAX35_BYTES];         /* PmtId/TxId (optional in .08) */
	char uetr[HT_ISO_UETR_BYTES];           /* PmtId/UETR, optional */
	uint64_t amount_minor;                  /* IntrBkSttlmAmt, minor units */
	char currency[HT_ISO_CCY_BYTES];        /* its Ccy */
	char settlement_date[HT_ISO_DATE_BYTES]; /* IntrBkSttlmDt, optional */
	char charge_bearer[HT_ISO_CODE_BYTES];  /* ChrgBr: DEBT CRED SHAR SLEV */
	char debtor_name[HT_ISO_MAX140_BYTES];  /* Dbtr/Nm, optional */
	struct ht_iso_account debtor_account;   /* DbtrAcct/Id */
	char debtor_agent_bic[HT_ISO_BIC_BYTES]; /* DbtrAgt/FinInstnId/BICFI (BIC in .02) */
	char creditor_agent_bic[HT_ISO_BIC_BYTES]; /* CdtrAgt/FinInstnId/BICFI */
	char creditor_name[HT_ISO_MAX140_BYTES]; /* Cdtr/Nm, optional */
	struct ht_iso_account creditor_account; /* CdtrAcct/Id */
	char remittance[HT_ISO_MAX140_BYTES];   /* first RmtInf/Ustrd, optional */
	enum ht_iso_reason reason;              /* NONE: accepted */
	char detail[HT_ISO_DETAIL_BYTES];       /* why, in English, or "" */
};

/* The GrpHdr and the verdict on the message as a whole. */
struct ht_iso_group {
	unsigned version;                   /* N of pacs.008.001.0N; 0 unknown */
	char msg_name[HT_ISO_MAX35_BYTES];  /* "pacs.008.001.08" from the
					       namespace, "" when none */
	char msg_id[HT_ISO_MAX35_BYTES];    /* MsgId */
	char created[HT_ISO_DATETIME_BYTES]; /* CreDtTm */
	uint64_t nb_of_txs;                 /* NbOfTxs */
	bool has_ctrl_sum;                  /* CtrlSum given (and valid) */
	bool has_total;                     /* TtlIntrBkSttlmAmt given (and valid) */
	uint64_t total_minor;               /* TtlIntrBkSttlmAmt, minor units */
	char total_currency[HT_ISO_CCY_BYTES];
	char settlement_method[HT_ISO_CODE_BYTES]; /* SttlmInf/SttlmMtd */
	char instructing_agent_bic[HT_ISO_BIC_BYTES]; /* InstgAgt, optional */
	char instructed_agent_bic[HT_ISO_BIC_BYTES];  /* InstdAgt, optional */
	enum ht_iso_reason reason;          /* NONE, or why the whole group is
					       rejected (FF01, AM10, AM18, RC01) */
	char detail[HT_ISO_DETAIL_BYTES];
};

struct ht_iso_msg {
	struct ht_iso_group group;
	size_t tx_count;       /* at most HT_ISO_TXS_MAX */
	struct ht_iso_tx *tx;  /* tx_count entries, in message order */
};

/*
 * What the caller adds to the reader's own checks. Zeroed means: no
 * maximum amount, nothing seen before.
 *
 * seen(ctx, tx) is asked, once per transaction still accepted after the
 * message's own checks (and only when the group is not rejected), whether
 * the transaction was booked before — by its ids, typically TxId or
 * UETR; true answers DUPL. The booking layer passes one that knows its
 * booked ids; it must not keep tx.
 */
struct ht_iso_options {
	uint64_t amount_minor_max; /* > 0: a larger amount is AM02 */
	bool (*seen)(void *ctx, const struct ht_iso_tx *tx);
	void *seen_ctx;
};

/*
 * Read and validate one pacs.008 from xml[0..len) (a Document, or an
 * envelope holding a head.001 AppHdr and the Document, up to three levels
 * down); opts may be NULL. On HT_OK *out is a new message, to be freed
 * with ht_iso_msg_free, whatever the verdict: a rejected message or
 * transaction is a result in it, not an error. The checks and which
 * reason each gives: docs/iso20022.md.
 *
 * Errors: HT_ERR_INVALID (xml or out NULL), HT_ERR_NOMEM (*out NULL).
 */
enum ht_err ht_iso_pacs008_read(const void *xml, size_t len,
				const struct ht_iso_options *opts,
				struct ht_iso_msg **out);

/* Free a message; NULL is fine. */
void ht_iso_msg_free(struct ht_iso_msg *m);

/* True when transaction i will settle: neither it nor the group has a
 * reason. i < m->tx_count. */
bool ht_iso_tx_accepted(const struct ht_iso_msg *m, size_t i);

/*
 * Record the booking layer's refusal of transaction i (i < m->tx_count,
 * reason not NONE): its reason becomes reason, its detail detail
 * (NULL for none; truncated to 105 bytes, any byte that is not printable
 * ASCII made '?'). Asserts the transaction was accepted: a transaction is
 * refused once.
 */
void ht_iso_tx_reject(struct ht_iso_msg *m, size_t i,
		      enum ht_iso_reason reason, const char *detail);

/* The group status: RJCT when the group has a reason or no transaction is
 * accepted, ACSC when every transaction is, PART otherwise. */
enum ht_iso_status ht_iso_group_status(const struct ht_iso_msg *m);

/*
 * Write the pacs.002 answering m (version per ht_iso_pacs002_name):
 * GrpHdr (MsgId msg_id, CreDtTm created_ms as UTC), OrgnlGrpInfAndSts
 * (OrgnlMsgId — "NOTPROVIDED" when the message gave none —, OrgnlMsgNmId,
 * OrgnlCreDtTm when known, GrpSts, StsRsnInf with the group's reason) and
 * one TxInfAndSts per transaction (OrgnlInstrId, OrgnlEndToEndId,
 * OrgnlTxId when known, OrgnlUETR from pacs.002.001.10, TxSts ACSC or
 * RJCT, StsRsnInf with its reason — or the group's when it has none).
 * *out is a NUL-terminated UTF-8 XML document of *out_len bytes; the
 * caller frees it with free().
 *
 * Errors: HT_ERR_INVALID (msg_id not 1..35 printable ASCII characters, a NULL
 * argument, created_ms outside years 1970..9999), HT_ERR_NOMEM.
 */
enum ht_err ht_iso_pacs002_write(const struct ht_iso_msg *m,
				 const char *msg_id, int64_t created_ms,
				 char **out, size_t *out_len);

#endif

/*
 * jsonl.h — the ledger JSONL contract (DESIGN.md "Ledger JSONL"): parse one
 * request line into typed events, write result lines. Used by `huitong
 * ledger apply` now and by the HTTPS API later, so both answer alike.
 *
 * Owner: api. Everything here handles outside input: every length, count
 * and depth is bounded by limits.h, and malformed input yields a clear
 * message, never a crash. Parsing uses jansson.
 */
#ifndef HUITONG_JSONL_H
#define HUITONG_JSONL_H

#include <stdio.h>
#include "huitong/hub.h"
#include "huitong/payment.h"

/* A growable output buffer. Zero-initialise; ht_buf_free releases. */
/* (Added by the api owner:) appends keep data NUL-terminated after len
 * bytes; set len to 0 to reuse the buffer. Errors: HT_ERR_NOMEM. */
struct ht_buf {
	char *data;
	size_t len;
	size_t cap;
};
enum ht_err ht_buf_append(struct ht_buf *b, const char *s, size_t n);
enum ht_err ht_buf_printf(struct ht_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void ht_buf_free(struct ht_buf *b);
/* Append s[0..n) as a JSON string (quoted; '"', '\\' and control
 * characters escaped; bytes that are not valid UTF-8 as \u00XX). */
enum ht_err ht_buf_json_string(struct ht_buf *b, const char *s, size_t n);

enum ht_op {
	HT_OP_CREATE_ACCOUNTS = 1,
	HT_OP_CREATE_TRANSFERS,
	HT_OP_LOOKUP_ACCOUNTS,
	HT_OP_LOOKUP_TRANSFERS,
	HT_OP_GET_ACCOUNT_TRANSFERS, /* {"op":"get_account_transfers","account_id":"1",
					 "timestamp_min":"0","timestamp_max":"0","limit":100,
					 "debits":true,"credits":true,"reversed":false} */
	HT_OP_GET_ACCOUNT_BALANCES,  /* same fields, for `history` accounts */
};
/* "create_accounts", ... ; NULL for unknown. */
const char *ht_op_name(enum ht_op op);

/*
 * (Added for the risk engine.) What a transfer may tell the hub's risk
 * engine about where its payment comes from, in an optional member of the
 * transfer object:
 *
 *   "risk":{"channel":"qr","device":"d-9","ip":"10.1.2.3"}
 *
 * every member optional: channel a name of enum ht_channel (payment.h;
 * default "transfer"), device and ip strings of 1..64 bytes without
 * control characters (null or absent: none). Unknown members are errors,
 * as everywhere in a request. It is not part of the transfer: the ledger
 * never sees it, `ledger apply` accepts and ignores it, and the API's risk
 * engine (serve --risk) scores with it.
 */
struct ht_transfer_risk {
	bool given;                        /* the transfer carried "risk" */
	bool channel_given;
	enum ht_channel channel;           /* when channel_given */
	char device[HT_PAYMENT_REF_BYTES]; /* "" when none */
	char ip[HT_PAYMENT_REF_BYTES];     /* "" when none */
};

/* A parsed request. Arrays are malloc'd; ht_request_free releases them. */
struct ht_request {
	enum ht_op op;
	size_t count;                   /* events or ids */
	struct ht_account *accounts;    /* HT_OP_CREATE_ACCOUNTS */
	struct ht_transfer *transfers;  /* HT_OP_CREATE_TRANSFERS */
	struct ht_transfer_risk *risk;  /* NULL, or count entries when some
					   transfer carried "risk" */
	ht_u128 *ids;                   /* HT_OP_LOOKUP_* */
	struct ht_account_filter filter; /* HT_OP_GET_ACCOUNT_* */
};
void ht_request_free(struct ht_request *r);

/*
 * Parse one request line (without its newline). On HT_ERR_INVALID or
 * HT_ERR_LIMIT, err gets a one-line human message naming the problem and
 * where ("transfers[3].amount: not a decimal u64"), and *r is left empty.
 * Rules: ids are decimal strings of u128, 0 and 2^128-1 rejected as ids by
 * the ENGINE (they parse here, so the engine answers id_must_not_be_zero);
 * amounts decimal strings or non-negative JSON integers <= 2^64-1;
 * ledger/code/timeout_s JSON integers in range; flags an array of known
 * names; user_data a string of at most HT_USER_DATA_BYTES_MAX bytes;
 * unknown fields are errors (a typo must not silently drop a field);
 * a transfer's optional "risk" object goes to r->risk (struct
 * ht_transfer_risk above);
 * at most HT_BATCH_EVENTS_MAX events / HT_LOOKUP_IDS_MAX ids;
 * JSON depth at most HT_JSON_DEPTH_MAX.
 */
enum ht_err ht_jsonl_parse(const char *line, size_t len, struct ht_request *r,
			   char *err, size_t err_size);
/*
 * (Added by the api owner; docs/internals/jsonl.md has the details.)
 * HT_ERR_LIMIT: a line over HT_JSONL_LINE_BYTES_MAX, nesting over
 * HT_JSON_DEPTH_MAX, too many JSON values for any legal request, too many
 * events or ids, user_data too long, a query limit over
 * HT_QUERY_LIMIT_MAX. HT_ERR_NOMEM. HT_ERR_INVALID for everything else.
 * err may be NULL (err_size 0); a message is cut to fit err_size. On
 * HT_OK err is "". Lookup-only fields (balances, timestamp) are accepted
 * on create events and ignored, so lookup output can be sent back.
 */

/*
 * (Added for the HTTPS API.) Parse a request body whose op is implied by
 * its route: the same rules as ht_jsonl_parse, with "op" optional (when
 * present it must equal op's name). On an error *problem says which
 * kind it is, so the API can choose its status: MALFORMED (not JSON at
 * all: empty, a syntax error — err names the byte position — or not an
 * object), TOO_MANY (more events or ids than the limit, or more JSON
 * values than any legal request), TOO_LARGE (the body is over
 * HT_JSONL_LINE_BYTES_MAX), BAD_REQUEST (anything else: a wrong type,
 * an unknown field, nesting too deep). Errors as ht_jsonl_parse.
 */
enum ht_jsonl_problem {
	HT_JSONL_BAD_REQUEST = 1,
	HT_JSONL_MALFORMED,
	HT_JSONL_TOO_MANY,
	HT_JSONL_TOO_LARGE,
};
enum ht_err ht_jsonl_parse_body(const char *body, size_t len, enum ht_op op,
				struct ht_request *r, char *err,
				size_t err_size, enum ht_jsonl_problem *problem);

/*
 * (Added for the API's speed.) Between begin and end, this thread's
 * jansson allocations come from an arena it keeps between calls (free is
 * a no-op inside it), which halves the cost of parsing a large batch.
 * Every jansson value made inside must be released (json_decref) before
 * the matching end; nesting is allowed. ht_jsonl_parse and
 * ht_jsonl_parse_body use it themselves.
 */
void ht_json_arena_begin(void);
void ht_json_arena_end(void);

/* {"op":"create_transfers","results":[{"index":0,"id":"7","result":"ok"},…]}
 * ids[i] is the id of event i. Every event gets an entry. */
enum ht_err ht_jsonl_write_results(struct ht_buf *b, enum ht_op op,
				   const ht_u128 *ids, const uint16_t *results,
				   size_t n);
/* {"op":"lookup_accounts","accounts":[{…}]} with every field: id, ledger,
 * code, flags (array of names), user_data, debits_pending, debits_posted,
 * credits_pending, credits_posted, timestamp (u64 values as decimal
 * strings). */
enum ht_err ht_jsonl_write_accounts(struct ht_buf *b, enum ht_op op,
				    const struct ht_account *a, size_t n);
/* {"op":"lookup_transfers","transfers":[{…}]}: id, debit_account_id,
 * credit_account_id, amount, pending_id, ledger, code, flags, timeout_s,
 * user_data, timestamp. */
enum ht_err ht_jsonl_write_transfers(struct ht_buf *b, enum ht_op op,
				     const struct ht_transfer *t, size_t n);
/* {"op":"get_account_balances","balances":[{account_id, timestamp,
 * debits_pending, …}]} */
enum ht_err ht_jsonl_write_balances(struct ht_buf *b, enum ht_op op,
				    const struct ht_balance *x, size_t n);
/* {"error":"<msg>","line":N} (msg JSON-escaped). */
enum ht_err ht_jsonl_write_error(struct ht_buf *b, const char *msg,
				 uint64_t line);
/*
 * (Added by the api owner:) every writer APPENDS one line, without a
 * newline, to b; on error b is left as it was. Errors: HT_ERR_NOMEM;
 * HT_ERR_INVALID for an op without a name, a result code without a name,
 * flag bits without a name, user_data_len > HT_USER_DATA_BYTES_MAX, a
 * NULL array with n > 0 or a NULL msg. Strings are escaped as JSON; a
 * byte that is not part of valid UTF-8 is written as \u00XX.
 */

/*
 * Bounded line reader over a FILE*. Lines longer than max_bytes are not
 * buffered: the reader skips to the next newline and reports
 * HT_ERR_LIMIT for that line. Memory stays O(max_bytes).
 */
struct ht_line_reader;
enum ht_err ht_line_reader_create(FILE *in, size_t max_bytes,
				  struct ht_line_reader **out);
void ht_line_reader_destroy(struct ht_line_reader *r);
/* (Added by the api owner:) in is borrowed (never closed) and read with
 * getc_unlocked: one thread per reader. create errors: HT_ERR_INVALID,
 * HT_ERR_NOMEM. destroy accepts NULL. */
/*
 * Next line: HT_OK with *line and *len (valid until the next call, newline
 * and a trailing '\r' stripped, NUL-terminated), HT_ERR_LIMIT for a line
 * too long (skipped), HT_ERR_NOT_FOUND at end of input, HT_ERR_IO.
 * *line_no gets the 1-based number of the line either way.
 */
/* (Added by the api owner:) at HT_ERR_NOT_FOUND *line_no is the number of
 * lines read; after HT_ERR_NOT_FOUND or HT_ERR_IO every call returns the
 * same. A line of exactly max_bytes followed by "\r\n" is accepted. */
enum ht_err ht_line_reader_next(struct ht_line_reader *r, const char **line,
				size_t *len, uint64_t *line_no);

#endif

/*
 * client.h — libhuitong-client: a C client of the hub's HTTPS API
 * (docs/api.md) for banks' programs, `huitong client` and load generators.
 *
 * Owner: client. It owns one libcurl connection (mutual TLS 1.3, keep-alive)
 * per struct ht_client, signs every request (reqsig.h), retries what is safe
 * to retry, and checks every create answer's receipt against the request
 * before a caller sees a result: a result the hub cannot prove is an error,
 * never a silent success. It never writes HTTP by hand (libcurl does) and
 * never trusts anything but the hub CA of the credentials directory. It
 * does not talk to the store or the engine: everything comes from the wire.
 * docs/client.md is the guide, with an example.
 *
 * Threads: a struct ht_client is used by one thread at a time (it holds one
 * curl easy handle, hashers and the last head seen). Open one per thread;
 * opening and closing from different threads at once is safe.
 *
 * Errors: every call returns enum ht_err and leaves a one-line message,
 * naming what failed, in ht_client_error(c):
 *   HT_ERR_IO       the hub could not be reached, or answered 5xx, after
 *                   the retries (the outcome of a create is then unknown:
 *                   send it again, its ids make that safe);
 *   HT_ERR_VERIFY   an answer's receipt does not prove what was asked
 *                   ("leaf 41 (event 1, id 8): amount 500 differs from the
 *                   request's 600"), or a head is not the hub's;
 *   HT_ERR_CORRUPT  an answer is not what the API defines (bad JSON, wrong
 *                   shape, a result for another id);
 *   HT_ERR_INVALID  a bad argument, or a 400/401/403/405 answer (the
 *                   message carries the hub's code: "403 forbidden: …");
 *   HT_ERR_NOT_FOUND a 404 answer; HT_ERR_LIMIT a 413 answer, an answer
 *                   over HT_CLIENT_BODY_BYTES_MAX, or a request over the
 *                   hub's body limit; HT_ERR_UNSUPPORTED a result code this
 *                   build does not know (a newer hub); HT_ERR_NOMEM;
 *                   HT_ERR_CRYPTO.
 */
#ifndef HUITONG_CLIENT_H
#define HUITONG_CLIENT_H

#include "huitong/jsonl.h"
#include "huitong/journal.h"
#include "huitong/pki.h"

/* ---- limits (candidates for limits.h) -------------------------------- */

/* Largest answer body accepted. The largest legal answer is a create of
 * 8190 events with its receipt (~2.5 MiB) or a lookup of 8190 transfers
 * (~5 MiB); 64 MiB leaves room and still stops a hostile endless body. */
#define HT_CLIENT_BODY_BYTES_MAX (64u * 1024 * 1024)
/* Retries after the first attempt: default and largest allowed. */
#define HT_CLIENT_RETRIES_DEFAULT 5
#define HT_CLIENT_RETRIES_MAX 20
/* Per-attempt timeout (connect + request + answer). A create waits for
 * the hub's group commit and fsync, well under a second normally. */
#define HT_CLIENT_TIMEOUT_MS_DEFAULT 30000u
#define HT_CLIENT_TIMEOUT_MS_MAX 3600000u
/* Exponential backoff between attempts: first delay, largest delay
 * (each drawn between half and all of its value, so clients that failed
 * together do not retry together). */
#define HT_CLIENT_BACKOFF_MS_FIRST 100u
#define HT_CLIENT_BACKOFF_MS_MAX 5000u
/* A 503's Retry-After is honoured up to this many seconds. */
#define HT_CLIENT_RETRY_AFTER_S_MAX 10u
/* Bytes of a head's JSON (ht_sth_json writes at most ~560). */
#define HT_CLIENT_HEAD_JSON_BYTES_MAX 2048u
/* Verified heads remembered, so one signature check serves every answer
 * of a group commit (and of the next few). */
#define HT_CLIENT_HEADS_CACHED 16
/* Bytes of an error message (ht_client_error), NUL included. */
#define HT_CLIENT_ERROR_BYTES 512
/* Bytes kept of the hub's error code and message. */
#define HT_CLIENT_CODE_BYTES 64
#define HT_CLIENT_MESSAGE_BYTES 256
/* Reasons accepted in one result's risk decision (the hub sends at most
 * HT_RISK_REASONS_MAX, 16). */
#define HT_CLIENT_RISK_REASONS_MAX 64
/* A result without a journal leaf (exists, linked_event_failed, ...). */
#define HT_CLIENT_NO_LEAF UINT64_MAX

_Static_assert(HT_CLIENT_BODY_BYTES_MAX >= 4 * HT_JSONL_LINE_BYTES_MAX,
	       "an answer may be larger than the request it answers");
_Static_assert(HT_CLIENT_RETRIES_DEFAULT <= HT_CLIENT_RETRIES_MAX,
	       "the default retries are allowed");
_Static_assert(HT_CLIENT_BACKOFF_MS_FIRST <= HT_CLIENT_BACKOFF_MS_MAX,
	       "backoff bounds are ordered");

/* ---- connection -------------------------------------------------------- */

struct ht_client;

struct ht_client_options {
	/* https://host[:port] of the hub, no path; NULL = the url in the
	 * credentials. */
	const char *url;
	/* A credentials directory (pki.h, `huitong participant add`):
	 * client certificate and key, hub CA, request-signing key and its
	 * id, and optionally the hub's journal key. Required. */
	const char *credentials_dir;
	/* Per attempt, 1..HT_CLIENT_TIMEOUT_MS_MAX; 0 = the default. */
	uint32_t timeout_ms;
	/* Retries after the first attempt, 0..HT_CLIENT_RETRIES_MAX. */
	unsigned retries;
	/* Check create receipts and heads (strongly recommended). */
	bool verify_receipts;
};

/* Fill *o with the defaults: url NULL, credentials_dir NULL, timeout
 * HT_CLIENT_TIMEOUT_MS_DEFAULT, retries HT_CLIENT_RETRIES_DEFAULT,
 * verify_receipts true. Start from this: a zeroed struct means no retries
 * and no receipt checks. */
void ht_client_options_init(struct ht_client_options *o);

/*
 * Read the credentials and set up the connection (nothing is sent yet:
 * the first call connects). TLS 1.3 only, the client certificate and key
 * from memory, the hub CA of the credentials as the only trust anchor,
 * host name verification on, keep-alive. The signing key and its id must
 * be in the credentials. *out is freed with ht_client_close; on failure
 * it is NULL and ht_client_open_error() says why.
 * Errors: HT_ERR_INVALID (no credentials_dir, a bad option or url, no
 * signing key, a hub key that does not load), those of
 * ht_pki_read_credentials, HT_ERR_NOMEM, HT_ERR_CRYPTO, HT_ERR_IO (curl
 * could not be initialised).
 */
enum ht_err ht_client_open(const struct ht_client_options *o,
			   struct ht_client **out);

/* The message of this thread's last failed ht_client_open ("" after a
 * success); valid until this thread's next ht_client_open. Never NULL. */
const char *ht_client_open_error(void);

/* Close the connection and free everything (key PEMs are wiped). Accepts
 * NULL. */
void ht_client_close(struct ht_client *c);

/* The message of the last failed call ("" after a success); valid until
 * the next call on c. Never NULL. */
const char *ht_client_error(const struct ht_client *c);

/* ---- raw calls --------------------------------------------------------- */

/* One answer. Free body with ht_client_response_clear. */
struct ht_client_response {
	long status;                  /* HTTP status */
	char *body;                   /* malloc'd, NUL-terminated; "" when
					 empty */
	size_t body_len;
	/* From a JSON error body {"code":…,"message":…} (any status >= 400),
	 * cut to fit; "" otherwise. */
	char code[HT_CLIENT_CODE_BYTES];
	char message[HT_CLIENT_MESSAGE_BYTES];
	unsigned attempts;            /* 1 + retries made */
};

/* Free r->body and zero *r. Accepts NULL. */
void ht_client_response_clear(struct ht_client_response *r);

/*
 * Send one request and give back the final answer, whatever its status:
 * method is 1..16 uppercase letters (GET, POST, ...), path the request
 * target beginning with '/' (with its query, visible ASCII only), body
 * may be NULL when len is 0 (GET sends no body). Every attempt carries a
 * Huitong-Signature made with a fresh nonce and the current time.
 *
 * Retries (at most the client's retries, with backoff): a connection that
 * fails or breaks, a timeout, 503 (after its Retry-After, capped at
 * HT_CLIENT_RETRY_AFTER_S_MAX), and 401 replayed_nonce (libcurl resends a
 * request by itself, same header, when a reused keep-alive connection
 * dies before answering; if the hub had read the first copy it refuses
 * the second as a replay). Nothing else: other 4xx and 500 are answers.
 * The same body is sent again, so only requests that are safe to repeat
 * should be sent: lookups, queries, and creates (their ids are chosen by
 * the client, so a create the lost attempt committed answers `exists`;
 * see ht_client_create_transfers). A 503 after the last retry is
 * returned as an answer.
 * On HT_OK *r holds the answer (free it with ht_client_response_clear);
 * on an error *r is cleared.
 * Errors: HT_ERR_INVALID (bad method or path), HT_ERR_IO (no answer after
 * the retries), HT_ERR_LIMIT (an answer over HT_CLIENT_BODY_BYTES_MAX; not
 * retried), HT_ERR_NOMEM, HT_ERR_CRYPTO (signing failed).
 */
enum ht_err ht_client_call(struct ht_client *c, const char *method,
			   const char *path, const void *body, size_t len,
			   struct ht_client_response *r);

/* ---- creates, with receipts -------------------------------------------- */

/* Where a create request's events landed in the journal. */
struct ht_client_commit {
	struct ht_sth head;  /* the signed head of the commit that made the
				request durable; its signature checked unless
				verify_receipts is off */
	uint64_t first;      /* the request's leaves: [first, first+count) */
	uint64_t count;
};

/*
 * Create accounts / transfers: POST /v1/accounts or /v1/transfers with
 * in[0..n) (n <= HT_BATCH_EVENTS_MAX), and results[i] gets the result of
 * in[i] (enum ht_result), as `ledger apply` would answer.
 *
 * Unless verify_receipts is off, nothing is returned before the receipt
 * proves it (docs/api.md "Create results and the receipt"): the head's
 * signature by the hub journal key; every result that appended a leaf
 * has one in [first, first+count), each leaf once and every leaf used;
 * each `ok` event's leaf is the event asked for (same id, and every field
 * the request set has the same value, the amount of a balancing transfer
 * at most the one asked, of a post or void with amount 0 any; a transfer
 * whose result says the hub's risk engine held it for review is the
 * request made pending, with the hub's timeout unless the request was
 * pending with its own: docs/api.md "Risk"); each leaf
 * of a refusal is a refusal of that id with that result; every `ok` has a
 * leaf; the range proof of the leaves leads to the head's root; heads
 * never go backwards within this client. Any failure is HT_ERR_VERIFY.
 *
 * leaves (NULL or n entries) gets each event's leaf index or
 * HT_CLIENT_NO_LEAF; commit (may be NULL) gets the head and the range.
 *
 * Retries: the same body is sent again with a new signature. An event the
 * lost attempt committed then answers `exists` (no leaf: its receipt is
 * ht_client_receipt), a transfer it refused answers `id_already_failed`
 * (the refusal's own code is in the journal), and a chain it committed
 * answers `exists` for every member. So after a retry, `exists` means
 * "committed, now or before", never "someone else's transfer": ids are
 * the caller's to keep unique.
 *
 * user_data must be valid UTF-8 (it travels as a JSON string).
 * Errors: HT_ERR_INVALID (NULL arrays with n > 0, a bad flag bit,
 * user_data too long or not UTF-8), HT_ERR_LIMIT (n too large, body over
 * the hub's limit, 413), HT_ERR_VERIFY, HT_ERR_CORRUPT, HT_ERR_IO and
 * the others listed at the top.
 */
enum ht_err ht_client_create_accounts(struct ht_client *c,
				      const struct ht_account *in, size_t n,
				      uint16_t *results, uint64_t *leaves,
				      struct ht_client_commit *commit);
enum ht_err ht_client_create_transfers(struct ht_client *c,
				       const struct ht_transfer *in, size_t n,
				       uint16_t *results, uint64_t *leaves,
				       struct ht_client_commit *commit);

/* ---- lookups ------------------------------------------------------------- */

/*
 * Look up ids[0..n) (n <= HT_LOOKUP_IDS_MAX): POST /v1/accounts/lookup or
 * /v1/transfers/lookup. out has room for n; *n_out gets how many were
 * found (ids not found, or not visible to this participant, are left
 * out, as in `ledger apply`). Lookups carry no proof.
 * Errors: HT_ERR_INVALID (NULL arrays), HT_ERR_LIMIT, HT_ERR_CORRUPT (an
 * answer that is not the defined line), and the transport errors above.
 */
enum ht_err ht_client_lookup_accounts(struct ht_client *c, const ht_u128 *ids,
				      size_t n, struct ht_account *out,
				      size_t *n_out);
enum ht_err ht_client_lookup_transfers(struct ht_client *c,
				       const ht_u128 *ids, size_t n,
				       struct ht_transfer *out, size_t *n_out);

/* ---- heads and receipts --------------------------------------------------- */

/*
 * The latest signed head (GET /v1/journal/head), its signature checked
 * and checked not to go back from heads seen before (unless
 * verify_receipts is off). Errors: HT_ERR_VERIFY, HT_ERR_CORRUPT and the
 * transport errors.
 */
enum ht_err ht_client_head(struct ht_client *c, struct ht_sth *out);

/*
 * Parse the JSON of a head as ht_sth_json writes it:
 * {"seq":N,"tree_size":N,"time_ns":"N","root":"hex64","prev_hash":"hex64",
 *  "hash":"sm3|sha256","sign":"sm2|ed25519|ecdsa-p256","signature":"hex"}
 * Strict: exactly these members, each once; seq and tree_size JSON
 * integers in 0..2^63-1, time_ns a canonical decimal u64 string, the
 * hashes 64 hex digits, the signature 1..HT_SIG_BYTES_MAX bytes of hex;
 * at most HT_CLIENT_HEAD_JSON_BYTES_MAX bytes. Checks the form only, not
 * the signature. err (may be NULL) gets a message naming the member.
 * Errors: HT_ERR_INVALID, HT_ERR_LIMIT (too long), HT_ERR_NOMEM.
 */
enum ht_err ht_client_parse_head(const char *json, size_t len,
				 struct ht_sth *out, char *err,
				 size_t err_size);

/* A transfer's receipt: its leaf, proven included in a signed head. */
struct ht_client_receipt {
	ht_u128 id;
	uint64_t leaf;                        /* leaf index */
	uint8_t data[HT_LEAF_BYTES_MAX];      /* the leaf (event encoding) */
	size_t data_len;
	/* What the leaf says: for a committed transfer result is HT_R_OK
	 * and transfer the event as stored; for a refused id (a refusal
	 * leaf) the refusal's result, and only transfer.id and
	 * transfer.timestamp are set. */
	uint16_t result;
	struct ht_transfer transfer;
	struct ht_sth head;
	uint8_t proof[HT_PROOF_HASHES_MAX][HT_HASH_BYTES]; /* RFC 9162 */
	size_t proof_count;
	bool verified;                        /* false when verify is off */
};

/*
 * The receipt of transfer id (GET /v1/transfers/{id}/receipt, with
 * ?tree_size=N unless tree_size is 0 = the latest head). Unless
 * verify_receipts is off: the leaf decodes to a transfer (or refusal) of
 * this id, the inclusion proof leads from it to the head's root, the
 * head is signed by the hub, its tree_size is the one asked for (when
 * asked), and a latest head does not go back from heads seen before.
 * Errors: HT_ERR_NOT_FOUND (no such transfer), HT_ERR_VERIFY,
 * HT_ERR_CORRUPT and the transport errors.
 */
enum ht_err ht_client_receipt(struct ht_client *c, ht_u128 id,
			      uint64_t tree_size,
			      struct ht_client_receipt *out);

/* ---- the ledger JSONL contract over the API ------------------------------ */

/*
 * One request line of the ledger JSONL contract (DESIGN.md), sent to the
 * hub; appends to out exactly the line `huitong ledger apply` would print
 * (no newline):
 *  - a line ht_jsonl_parse refuses (or an empty one) is answered locally,
 *    {"error":…,"line":line_no}, as `ledger apply` does, and not sent;
 *  - create_accounts / create_transfers: the line itself is the body of
 *    POST /v1/accounts / /v1/transfers (the API accepts "op" when it is
 *    the route's, so the hub parses the very bytes `ledger apply` would);
 *    the answer's receipt is verified against the locally parsed request
 *    and the results are written with ht_jsonl_write_results (without
 *    "leaf" and "receipt");
 *  - lookup_accounts / lookup_transfers: the line is the body of POST
 *    /v1/accounts/lookup / /v1/transfers/lookup; the answer is written
 *    as it came (the API defines it byte-identical);
 *  - get_account_transfers / get_account_balances: GET /v1/accounts/{id}/
 *    transfers|balances with every parameter explicit (limit,
 *    timestamp_min, timestamp_max, debits, credits, reversed), answer as
 *    it came; a filter `ledger apply` refuses (timestamp_min after
 *    timestamp_max) is answered locally with its error line;
 *  - a 400, 403, 404, 405 or 413 answer (the hub refused the request and
 *    changed nothing) becomes {"error":"hub refused the request: <code>:
 *    <message>","line":line_no}, and the caller goes on.
 * Returns HT_OK when a line was appended. Any error means stop: nothing
 * is appended, ht_client_error says why, and the outcome of this line is
 * unknown (its creates may have committed; sending the line again is
 * safe). Errors: HT_ERR_IO, HT_ERR_VERIFY, HT_ERR_CORRUPT,
 * HT_ERR_INVALID (a 401: the credentials are refused), HT_ERR_NOMEM,
 * HT_ERR_UNSUPPORTED.
 */
enum ht_err ht_client_apply_line(struct ht_client *c, const char *line,
				 size_t len, uint64_t line_no,
				 struct ht_buf *out);

#endif

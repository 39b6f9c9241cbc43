/*
 * client_internal.h — what the files of libhuitong-client share: the
 * client struct, the checks of answers (verify.c), the builders of bodies
 * and paths (api.c) and the transport (client.c).
 *
 * Owner: client. Private to src/client/ and to tests/unit/test_client.c,
 * which drives the checks offline (no server) through
 * client_open_offline. Nothing here is a stable interface.
 */
#ifndef HUITONG_CLIENT_INTERNAL_H
#define HUITONG_CLIENT_INTERNAL_H

#include <jansson.h>

#include "huitong/client.h"

/* A verified head remembered: its number and H(signed bytes || sig). */
struct client_head_seen {
	uint64_t seq;
	uint8_t hash[HT_HASH_BYTES];
};

struct ht_client {
	void *curl;                      /* CURL *; NULL when offline */
	char base_url[HT_PKI_URL_BYTES_MAX + 1]; /* https://host[:port] */
	uint32_t timeout_ms;
	unsigned retries;
	bool verify;
	struct ht_pki_credentials creds; /* owned; zero when offline */
	struct ht_key *sign_key;         /* request signing; NULL offline */
	struct ht_key *hub_key;          /* journal key; NULL until known */
	uint8_t key_fp[32];              /* SHA-256 of its public PEM, for the */
	bool have_key_fp;                /* process-wide verified-head cache */
	struct ht_hasher *hasher[3];     /* by enum ht_hash_alg, lazily */
	/* The newest verified head: heads never go back from it. */
	bool have_last;
	struct ht_sth last;
	uint8_t last_hash[HT_HASH_BYTES];
	/* Heads whose signature has been checked, oldest replaced first. */
	struct client_head_seen seen[HT_CLIENT_HEADS_CACHED];
	size_t seen_count, seen_next;
	uint64_t signature_checks;       /* made so far (tests count them) */
	struct ht_buf rx;                /* the answer being received */
	bool rx_too_big;                 /* it passed HT_CLIENT_BODY_BYTES_MAX */
	bool rx_nomem;                   /* growing rx failed */
	char curl_err[256];              /* CURLOPT_ERRORBUFFER (CURL_ERROR_SIZE) */
	char err[HT_CLIENT_ERROR_BYTES];
};

/* Set c->err from fmt and return err (HT_OK clears the message). */
enum ht_err client_fail(struct ht_client *c, enum ht_err err,
			const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The client's hasher for alg, made on first use. Errors: HT_ERR_INVALID
 * (unknown alg), HT_ERR_NOMEM, HT_ERR_CRYPTO. */
enum ht_err client_hasher(struct ht_client *c, enum ht_hash_alg alg,
			  struct ht_hasher **out);

/*
 * A client without a connection, for tests: it verifies with the hub key
 * hub_key_pem (public or private PEM) and fails every network call with
 * HT_ERR_IO. verify_receipts is on. Close with ht_client_close.
 * Errors: HT_ERR_INVALID (the key does not load), HT_ERR_NOMEM.
 */
enum ht_err client_open_offline(const char *hub_key_pem, size_t len,
				struct ht_client **out);

/* Make sure c->hub_key is set: from the credentials, or else fetched once
 * with GET /v1/journal/key over the authenticated channel (client.c).
 * Errors: those of ht_client_call, HT_ERR_CORRUPT, HT_ERR_VERIFY. */
enum ht_err client_hub_key(struct ht_client *c);

/* Map a non-200 answer to an error with the hub's code in the message:
 * 400/401/403/405 HT_ERR_INVALID, 404 HT_ERR_NOT_FOUND, 413 HT_ERR_LIMIT,
 * everything else HT_ERR_IO. what names the call ("POST /v1/transfers"). */
enum ht_err client_status_error(struct ht_client *c, const char *what,
				const struct ht_client_response *r);

/* ---- verify.c ------------------------------------------------------------ */

/* A head from its JSON object (the strict parser behind
 * ht_client_parse_head). err gets "<member>: <problem>". */
enum ht_err client_head_from_json(const json_t *v, struct ht_sth *out,
				  char *err, size_t err_size);

/*
 * Check a head: its signature by the hub key (once per distinct head:
 * remembered by seq and hash), and, against the newest head seen, no fork
 * (same seq, other head; seq + 1 not linking by prev_hash) and, when
 * latest is true, not going back. Remembers the head when it is newer.
 * Errors: HT_ERR_VERIFY (message says which head and why), those of
 * client_hub_key, HT_ERR_CRYPTO.
 */
enum ht_err client_check_head(struct ht_client *c, const struct ht_sth *h,
			      bool latest);

/*
 * Read the answer to a create request (op HT_OP_CREATE_ACCOUNTS with
 * events a struct ht_account[n], or HT_OP_CREATE_TRANSFERS with struct
 * ht_transfer[n]) from body[0..len): results[0..n) always; leaves
 * (NULL or n) and commit (NULL or one) when given. When c->verify the
 * receipt is checked as ht_client_create_transfers documents.
 * Errors: HT_ERR_CORRUPT (not the defined answer, or results for other
 * ids), HT_ERR_UNSUPPORTED (an unknown result name), HT_ERR_VERIFY, those
 * of client_check_head, HT_ERR_NOMEM.
 */
enum ht_err client_read_create(struct ht_client *c, enum ht_op op,
			       const void *events, size_t n, const char *body,
			       size_t len, uint16_t *results, uint64_t *leaves,
			       struct ht_client_commit *commit);

/*
 * Read the answer of GET /v1/transfers/{id}/receipt into *out and, when
 * c->verify, check it (ht_client_receipt). tree_size 0 = latest.
 * Errors: HT_ERR_CORRUPT, HT_ERR_VERIFY, those of client_check_head.
 */
enum ht_err client_read_receipt(struct ht_client *c, ht_u128 id,
				uint64_t tree_size, const char *body,
				size_t len, struct ht_client_receipt *out);

/* ---- api.c --------------------------------------------------------------- */

/*
 * The body of a create request from structs: {"op":"create_accounts",
 * "accounts":[…]} (or transfers), written by ht_jsonl_write_accounts /
 * _transfers, which ht_jsonl_parse reads back to the same events (the
 * lookup-only fields it also writes, zero balances and timestamp, are
 * ignored on creates). Appends to b. user_data must be valid UTF-8.
 * Errors: HT_ERR_INVALID (bad flags, user_data too long or not UTF-8;
 * err says which event), HT_ERR_LIMIT (n over HT_BATCH_EVENTS_MAX, or the
 * body over HT_JSONL_LINE_BYTES_MAX), HT_ERR_NOMEM.
 */
enum ht_err client_create_body(struct ht_buf *b, enum ht_op op,
			       const void *events, size_t n, char *err,
			       size_t err_size);

/* "<prefix><decimal id><suffix>" into out[0..size). HT_ERR_LIMIT when it
 * does not fit. */
enum ht_err client_id_path(char *out, size_t size, const char *prefix,
			   ht_u128 id, const char *suffix);

/*
 * The request target of a query: /v1/accounts/{id}/transfers (or
 * /balances for HT_OP_GET_ACCOUNT_BALANCES) ?limit=N&timestamp_min=N&
 * timestamp_max=N&debits=B&credits=B&reversed=B, every parameter
 * explicit (the API's default limit is not `ledger apply`'s).
 * Errors: HT_ERR_INVALID (another op), HT_ERR_LIMIT (does not fit).
 */
enum ht_err client_query_path(enum ht_op op, const struct ht_account_filter *f,
			      char *out, size_t size);

/* Parse a lookup answer {"op":"lookup_accounts","accounts":[…]} (or
 * transfers) into out (room for max); *n_out gets the count.
 * Errors: HT_ERR_CORRUPT (not the defined answer, more than max),
 * HT_ERR_NOMEM. */
enum ht_err client_read_accounts(struct ht_client *c, const char *body,
				 size_t len, struct ht_account *out,
				 size_t max, size_t *n_out);
enum ht_err client_read_transfers(struct ht_client *c, const char *body,
				  size_t len, struct ht_transfer *out,
				  size_t max, size_t *n_out);

#endif

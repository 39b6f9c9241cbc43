/*
 * vault.h — the payment token vault (issue 5, item 3; docs/tokens.md):
 * EMVCo-style tokens standing in for account and card numbers.
 *
 * Owner: switch. A token is format-preserving: as many digits as the
 * number it stands for (12..19), Luhn-valid, drawn at random from a token
 * range of the issuing participant (a digit prefix registered with
 * ht_vault_range_add), and never equal to a number the vault holds nor to
 * another token. The number itself is kept only sealed —
 * HT_CIPHER_SM4_CTR_SM3 (crypto.h) under the newest key of DATA/vault.keys,
 * the token as associated data — beside an HMAC-SM3 of it under the
 * vault's index key (to refuse a token equal to a known number). Each token
 * carries domain controls (channels, merchant, expiry, maximum amount,
 * maximum uses) checked at every detokenisation; only the issuing
 * participant and the hub's router may detokenise, and every attempt,
 * refused ones included, is recorded. Lifecycle: active, suspended,
 * deleted (the sealed number is erased; the token is never issued again).
 *
 * Storage: DATA/vault.db (SQLite, WAL, synchronous=FULL: every change is
 * durable when its call returns, or when ht_vault_batch_commit returns
 * inside a batch) and DATA/vault.keys (mode 0600: "index <64 hex>" then
 * "<version> <64 hex>" lines, the last one current; ht_vault_rotate_key
 * adds one and re-seals every number under it in one transaction).
 *
 * One thread at a time uses a vault (the caller serialises).
 */
#ifndef HUITONG_VAULT_H
#define HUITONG_VAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "huitong/common.h"
#include "huitong/payment.h"

#define HT_TOKEN_DIGITS_MIN 12
#define HT_TOKEN_DIGITS_MAX 19
#define HT_TOKEN_PREFIX_MIN 6       /* a token range: 6..10 digits */
#define HT_TOKEN_PREFIX_MAX 10
#define HT_TOKEN_RANDOM_MIN 4       /* random digits a token must have */
#define HT_VAULT_PARTICIPANT_MAX 56 /* a registry id */
#define HT_VAULT_MERCHANT_MAX 64
#define HT_VAULT_KEYS_MAX 64        /* key versions in DATA/vault.keys */

/* Domain controls of a token; zero values mean "no restriction". */
struct ht_token_domain {
	uint32_t channels;          /* bit (1 << enum ht_channel); 0: any */
	char merchant[HT_VAULT_MERCHANT_MAX + 1]; /* "": any payee */
	int64_t expires_ms;         /* Unix ms; 0: never */
	uint64_t max_amount;        /* minor units per use; 0: any */
	uint32_t max_uses;          /* 0: unlimited */
};

enum ht_token_state {
	HT_TOKEN_ACTIVE = 1,
	HT_TOKEN_SUSPENDED = 2,
	HT_TOKEN_DELETED = 3,
};
/* "active", "suspended", "deleted"; NULL for others. */
const char *ht_token_state_name(enum ht_token_state s);

/* Why a detokenisation was refused (HT_TOKEN_OK when it was not). */
enum ht_token_refusal {
	HT_TOKEN_OK = 0,
	HT_TOKEN_NOT_FOUND,         /* "not_found" */
	HT_TOKEN_FORBIDDEN,         /* "forbidden": not the issuer or router */
	HT_TOKEN_SUSPENDED_R,       /* "suspended" */
	HT_TOKEN_DELETED_R,         /* "deleted" */
	HT_TOKEN_EXPIRED,           /* "expired" */
	HT_TOKEN_CHANNEL,           /* "channel_not_allowed" */
	HT_TOKEN_MERCHANT,          /* "merchant_not_allowed" */
	HT_TOKEN_AMOUNT,            /* "amount_above_maximum" */
	HT_TOKEN_USES,              /* "uses_exhausted" */
};
/* snake_case name of a refusal ("ok" for HT_TOKEN_OK). */
const char *ht_token_refusal_name(enum ht_token_refusal r);

struct ht_token_info {
	char token[HT_TOKEN_DIGITS_MAX + 1];
	char participant[HT_VAULT_PARTICIPANT_MAX + 1];
	enum ht_token_state state;
	struct ht_token_domain domain;
	uint32_t uses;
	int64_t created_ms;
	uint32_t key_version;       /* the key its number is sealed under */
};

/* What a detokenisation is for. */
struct ht_token_use {
	const char *requester;      /* a participant id */
	bool router;                /* the hub's router (may detokenise any) */
	enum ht_channel channel;
	const char *merchant;       /* the payee; NULL or "" when none */
	uint64_t amount;
	int64_t now_ms;
};

struct ht_vault;

/*
 * Open DATA/vault.db and DATA/vault.keys, creating both (an index key and
 * key version 1, random) when missing. HT_ERR_CORRUPT for a key file that
 * is not as above, HT_ERR_IO, HT_ERR_NOMEM; err says which file and why.
 */
enum ht_err ht_vault_open(const char *data_dir, struct ht_vault **out,
			  char *err, size_t err_size);
void ht_vault_close(struct ht_vault *v);

/*
 * Give participant the token range prefix (HT_TOKEN_PREFIX_MIN..MAX
 * digits). HT_ERR_EXISTS when it overlaps a range already given (one is a
 * prefix of the other), HT_ERR_INVALID for a bad prefix or participant.
 */
enum ht_err ht_vault_range_add(struct ht_vault *v, const char *participant,
			       const char *prefix);

/*
 * Issue a token for number (digits, HT_TOKEN_DIGITS_MIN..MAX) to
 * participant, from its longest-fitting range, into token (NUL-terminated,
 * as long as number). HT_ERR_NOT_FOUND when participant has no range that
 * leaves HT_TOKEN_RANDOM_MIN random digits; HT_ERR_INVALID for a bad
 * number or domain (a number inside any token range is refused: it could
 * be taken for a token); HT_ERR_LIMIT when no free token was found (the
 * range is nearly full); HT_ERR_IO.
 */
enum ht_err ht_vault_issue(struct ht_vault *v, const char *participant,
			   const char *number, const struct ht_token_domain *d,
			   int64_t now_ms, char token[HT_TOKEN_DIGITS_MAX + 1]);

/*
 * The number behind token, for u, into number (NUL-terminated), when u
 * passes the token's domain and state (*why HT_TOKEN_OK; the use is
 * counted); else *why says why and number is left empty. Either way the
 * attempt is recorded. Returns HT_OK when the attempt was decided and
 * recorded (look at *why), HT_ERR_IO, HT_ERR_CORRUPT (a sealed number that
 * does not open: tampered or a lost key).
 */
enum ht_err ht_vault_detokenize(struct ht_vault *v, const char *token,
				const struct ht_token_use *u,
				char number[HT_TOKEN_DIGITS_MAX + 1],
				enum ht_token_refusal *why);

/*
 * Move token to state: suspend (active → suspended), resume (suspended →
 * active), delete (either → deleted, the sealed number erased). Only the
 * issuing participant (or the router) may: HT_ERR_FORBIDDEN;
 * HT_ERR_NOT_FOUND; HT_ERR_INVALID for a change its state does not allow
 * (a deleted token stays deleted).
 */
enum ht_err ht_vault_set_state(struct ht_vault *v, const char *token,
			       const char *requester, bool router,
			       enum ht_token_state state);

/* The token's metadata (never its number): HT_OK or HT_ERR_NOT_FOUND. */
enum ht_err ht_vault_get(struct ht_vault *v, const char *token,
			 struct ht_token_info *out);

/* Add a key version and re-seal every stored number under it (one
 * transaction); *resealed gets how many. HT_ERR_LIMIT at
 * HT_VAULT_KEYS_MAX versions. */
enum ht_err ht_vault_rotate_key(struct ht_vault *v, size_t *resealed);

/* Group the changes until ht_vault_batch_commit into one transaction (one
 * fsync): for bulk issuing. Nothing is durable before the commit. */
enum ht_err ht_vault_batch_begin(struct ht_vault *v);
enum ht_err ht_vault_batch_commit(struct ht_vault *v);

/* Detokenisation records of token (all tokens when NULL), oldest first:
 * fn(ctx, token, requester, time_ms, result name) until it returns
 * non-zero. */
enum ht_err ht_vault_log_each(struct ht_vault *v, const char *token,
			      int (*fn)(void *ctx, const char *token,
					const char *requester, int64_t time_ms,
					const char *result),
			      void *ctx);

/* Luhn: is digits[0..len) valid; the check digit to append to them. */
bool ht_luhn_valid(const char *digits, size_t len);
char ht_luhn_digit(const char *digits, size_t len);

#endif

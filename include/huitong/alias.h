/*
 * alias.h — the alias directory (issue 5, item 2; docs/aliases.md): the
 * unified account token. An alias — a mobile number, an e-mail address, a
 * national id, a merchant id — points to (participant, account), where
 * account is the participant's reference for the account (an account or
 * payment token, at most HT_ALIAS_ACCOUNT_MAX bytes).
 *
 * Owner: switch. Aliases are never stored in clear: the directory keeps
 * HMAC-SM3(DATA/alias.key, "huitong-alias-v1" || kind || normalised value)
 * and the target, so a lookup needs the exact value (normalised the same
 * way: E.164 mobile numbers, lower-case e-mail, upper-case national ids).
 * Only the participant that registered an alias may update or remove it;
 * any participant may look one up.
 *
 * Storage: DATA/alias.db (SQLite WAL, synchronous=FULL; each change durable
 * when its call returns, or at ht_alias_batch_commit) and an in-memory
 * index of every entry, so a lookup is one keyed hash and one probe.
 *
 * Threads: one thread at a time changes the directory; lookups
 * (ht_alias_lookup) may run on other threads concurrently with each other
 * but not with a change — the caller serialises with a read-write lock
 * (the server does).
 */
#ifndef HUITONG_ALIAS_H
#define HUITONG_ALIAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "huitong/common.h"

#define HT_ALIAS_VALUE_MAX 254       /* bytes of a value (e-mail's max) */
#define HT_ALIAS_ACCOUNT_MAX 64
#define HT_ALIAS_PARTICIPANT_MAX 56  /* a registry id */
#define HT_ALIAS_ENTRIES_MAX (1u << 26)
#define HT_ALIAS_HASH_BYTES 32

enum ht_alias_kind {
	HT_ALIAS_MOBILE = 1,      /* "mobile": E.164, "+" and 8..15 digits */
	HT_ALIAS_EMAIL = 2,       /* "email": local@domain, 3..254 bytes */
	HT_ALIAS_NATIONAL_ID = 3, /* "national_id": 18 characters, GB 11643
				     check character (ISO 7064 MOD 11-2) */
	HT_ALIAS_MERCHANT_ID = 4, /* "merchant_id": 1..64 of [A-Za-z0-9:._-] */
};
const char *ht_alias_kind_name(enum ht_alias_kind k);
enum ht_err ht_alias_kind_parse(const char *s, size_t len,
				enum ht_alias_kind *out);

/*
 * Normalise value (len bytes) of kind into out (HT_ALIAS_VALUE_MAX + 1):
 * e-mail lower-cased, a national id's check character 'x' upper-cased;
 * HT_ERR_INVALID (with why: a static phrase) when it is not one of its
 * kind.
 */
enum ht_err ht_alias_normalise(enum ht_alias_kind kind, const char *value,
			       size_t len, char *out, const char **why);

struct ht_alias_target {
	char participant[HT_ALIAS_PARTICIPANT_MAX + 1];
	char account[HT_ALIAS_ACCOUNT_MAX + 1];
	int64_t updated_ms;
};

struct ht_alias_dir;

/* Open (creating DATA/alias.db and DATA/alias.key) and load every entry.
 * HT_ERR_IO, HT_ERR_CORRUPT, HT_ERR_NOMEM; err says which file and why. */
enum ht_err ht_alias_open(const char *data_dir, struct ht_alias_dir **out,
			  char *err, size_t err_size);
void ht_alias_close(struct ht_alias_dir *d);

/*
 * Register kind:value for participant → account. HT_ERR_EXISTS when the
 * alias is registered already (by anyone: the owner updates instead);
 * HT_ERR_INVALID for a bad value, participant or account (printable ASCII,
 * no spaces); HT_ERR_LIMIT when the directory is full; HT_ERR_IO.
 */
enum ht_err ht_alias_register(struct ht_alias_dir *d, enum ht_alias_kind kind,
			      const char *value, size_t len,
			      const char *participant, const char *account,
			      int64_t now_ms);
/* Point the alias at another account of the same participant:
 * HT_ERR_NOT_FOUND, HT_ERR_FORBIDDEN (another participant's), ... */
enum ht_err ht_alias_update(struct ht_alias_dir *d, enum ht_alias_kind kind,
			    const char *value, size_t len,
			    const char *participant, const char *account,
			    int64_t now_ms);
/* Remove it: HT_ERR_NOT_FOUND, HT_ERR_FORBIDDEN, HT_ERR_IO. */
enum ht_err ht_alias_remove(struct ht_alias_dir *d, enum ht_alias_kind kind,
			    const char *value, size_t len,
			    const char *participant);

/* Where kind:value points: HT_OK, HT_ERR_NOT_FOUND (also for a value that
 * is not one of its kind), HT_ERR_CRYPTO. Reads only memory. */
enum ht_err ht_alias_lookup(const struct ht_alias_dir *d,
			    enum ht_alias_kind kind, const char *value,
			    size_t len, struct ht_alias_target *out);

size_t ht_alias_count(const struct ht_alias_dir *d);

/* Group changes until ht_alias_batch_commit into one transaction. */
enum ht_err ht_alias_batch_begin(struct ht_alias_dir *d);
enum ht_err ht_alias_batch_commit(struct ht_alias_dir *d);

#endif

/*
 * registry.h — the hub's trust registry: its PKI files (the hub CA and the
 * server certificate), the participant registry database
 * (DATA/registry.db) and the server's immutable in-memory view of it.
 *
 * Owner: api. This module owns DATA/ca.key, DATA/ca.crt, DATA/server.key,
 * DATA/server.crt and DATA/registry.db: who the participants are, their
 * roles, and for each of their keys the request-signing public key and the
 * serial of the client certificate issued with it (one row carries both;
 * rotation replaces both together). It never decides what a role may do
 * (the API's authorisation does), never touches the ledger store
 * (DATA/huitong.db), and never implements a primitive: certificates come
 * from pki.h, keys from crypto.h.
 *
 * Writers are the `huitong participant` commands; the server only reads.
 * SQLite in WAL mode lets both run at once on the same DATA. The server
 * loads an immutable, reference-counted view (ht_registry_view_load) that
 * any number of threads read without locks, polls ht_registry_changed once
 * a second (PRAGMA data_version: no I/O while nothing changed) and swaps in
 * a fresh view when it changed, so a revocation takes effect within about a
 * second. docs/internals/registry.md gives the schema and the reasons.
 *
 * Key ids are "<participant id>:<n>" with n = 1, 2, … per rotation. A key
 * id is at most HT_REQSIG_KEY_ID_BYTES_MAX (64) bytes, so registry
 * participant ids are at most HT_REGISTRY_ID_BYTES_MAX (56) bytes, shorter
 * than the 64 pki.h allows in a certificate.
 */
#ifndef HUITONG_REGISTRY_H
#define HUITONG_REGISTRY_H

#include "huitong/common.h"
#include "huitong/crypto.h"
#include "huitong/pki.h"
#include "huitong/reqsig.h"

/* ---- limits ------------------------------------------------------------ */

/* Participant ids in the registry: "<id>:<n>" with n up to 7 digits must
 * fit a request-signing key id. */
#define HT_REGISTRY_ID_BYTES_MAX 56
/* Keys one participant can ever have (n of "<id>:<n>", 7 digits): a
 * rotation a day for 27,000 years. */
#define HT_REGISTRY_KEY_SEQ_MAX 9999999u
/* A key id with its NUL. */
#define HT_REGISTRY_KEY_ID_SIZE (HT_REQSIG_KEY_ID_BYTES_MAX + 1)
/* Rows a view loads. Indices are 32-bit; a view costs about 300 bytes a
 * key, so the key bound keeps a pathological registry under ~1.3 GiB. A
 * real hub has thousands of participants. */
#define HT_REGISTRY_PARTICIPANTS_MAX (1u << 20)
#define HT_REGISTRY_KEYS_MAX (1u << 22)
/* Longest rotation grace: old keys may stay valid up to 30 days after a
 * rotation, far below a client certificate's year. */
#define HT_REGISTRY_GRACE_S_MAX (30u * 86400)
/* The hub's own address written into credentials when none is given. */
#define HT_REGISTRY_URL_DEFAULT "https://127.0.0.1:8443"
/* Version of registry.db's schema (meta.schema_version). */
#define HT_REGISTRY_SCHEMA_VERSION 1
/* How long a writer waits for another writer's transaction. */
#define HT_REGISTRY_BUSY_TIMEOUT_MS 5000

_Static_assert(HT_REGISTRY_ID_BYTES_MAX + sizeof ":9999999" - 1 <=
		       HT_REQSIG_KEY_ID_BYTES_MAX,
	       "every key id <id>:<n> fits a request-signing key id");
_Static_assert(HT_REGISTRY_ID_BYTES_MAX <= HT_PKI_ID_BYTES_MAX,
	       "a registry id is a valid certificate id");
_Static_assert(HT_REGISTRY_KEYS_MAX >= HT_REGISTRY_PARTICIPANTS_MAX,
	       "every participant can have a key");
_Static_assert(HT_REGISTRY_KEYS_MAX < (1u << 30),
	       "key indices + 1 fit 32 bits, and so do twice-sized tables");

/* File names in the data directory. */
#define HT_REGISTRY_FILE_CA_KEY "ca.key"         /* 0600 */
#define HT_REGISTRY_FILE_CA_CERT "ca.crt"
#define HT_REGISTRY_FILE_SERVER_KEY "server.key" /* 0600 */
#define HT_REGISTRY_FILE_SERVER_CERT "server.crt"
#define HT_REGISTRY_FILE_DB "registry.db"
#define HT_REGISTRY_FILE_HUB_KEY "hub-key.pem"   /* made by ht_hub_init */

/* True when id[0..len) is a valid registry participant id: a valid
 * pki.h id (characters [A-Za-z0-9._-]) of 1..HT_REGISTRY_ID_BYTES_MAX
 * bytes. */
bool ht_registry_id_valid(const char *id, size_t len);

/* ---- PKI files ------------------------------------------------------------ */

/*
 * Check extra server names the way ht_pki_issue_server will: each an IPv4
 * or IPv6 literal or a DNS name (labels of [A-Za-z0-9-] not starting or
 * ending with '-', dots between, at most HT_PKI_DNS_NAME_BYTES_MAX bytes,
 * no wildcards), at most HT_PKI_SERVER_NAMES_MAX of them. On
 * HT_ERR_INVALID *bad_index (may be NULL) gets the first bad one.
 * Errors: HT_ERR_INVALID, HT_ERR_LIMIT (too many).
 */
enum ht_err ht_registry_check_server_names(const char *const *names, size_t n,
					   size_t *bad_index);

/*
 * Make what is missing of the hub's PKI files and registry in the data
 * directory `data` (which must exist), never replacing what is there:
 *
 *   ca.key (0600) + ca.crt     ht_pki_ca_create; the CA name is the data
 *                              directory's name reduced to [A-Za-z0-9._-]
 *                              and 48 bytes, or "huitong"
 *   server.key (0600) + .crt   ht_pki_issue_server: localhost, 127.0.0.1,
 *                              ::1 and names[0..n)
 *   registry.db (0600)         the empty schema
 *
 * Each pair is written as two fsync'd temporary files, then renamed key
 * first (never over an existing file), then the directory is fsync'd. An
 * init interrupted between the two renames is completed on the next call
 * (the key is there and the certificate still under its temporary name).
 * An existing CA pair is loaded and checked (the key must be the
 * certificate's). Existing server files are kept as they are, even when
 * names differ (remove both to reissue). A key without its certificate,
 * a certificate without its key, or server files without a CA (a new CA
 * could not have issued them) are refused before anything is made: a line
 * on stderr names the file and what to do.
 * Errors: HT_ERR_INVALID (a bad name), HT_ERR_LIMIT (more than
 * HT_PKI_SERVER_NAMES_MAX names, a path too long), HT_ERR_NOT_FOUND (no
 * such directory), HT_ERR_CORRUPT (half a pair, a CA pair that does not
 * load, a registry.db that is not one), HT_ERR_UNSUPPORTED (a registry.db
 * of a newer schema), HT_ERR_IO, HT_ERR_NOMEM, HT_ERR_CRYPTO.
 */
enum ht_err ht_registry_init_pki(const char *data,
				 const char *const *server_names, size_t n);

/* True when every file ht_registry_init_pki makes is present in data. */
bool ht_registry_pki_complete(const char *data);

/*
 * What the server needs to serve TLS: the hub CA as a verify-only CA (its
 * private key is NOT loaded: the server never issues) and the server's
 * certificate and private key PEMs. *ca is freed with ht_pki_ca_destroy;
 * the PEMs are malloc'd and NUL-terminated, lengths exclude the NUL; the
 * caller frees them (wipe the key first, e.g. OPENSSL_clear_free). On
 * failure every output is NULL / 0.
 * Errors: HT_ERR_NOT_FOUND (a file is missing: run `huitong init`),
 * HT_ERR_LIMIT (a file over HT_PKI_PEM_BYTES_MAX), HT_ERR_INVALID (ca.crt
 * is not a self-signed P-256 CA), HT_ERR_IO, HT_ERR_NOMEM, HT_ERR_CRYPTO.
 */
enum ht_err ht_registry_load_pki(const char *data, struct ht_pki_ca **ca,
				 char **server_cert_pem, size_t *server_cert_len,
				 char **server_key_pem, size_t *server_key_len);

/* ---- the registry database ------------------------------------------------ */

/*
 * One connection to DATA/registry.db. Not thread-safe: use it from one
 * thread at a time (the server's poller; a CLI command). Views it loads
 * are independent of it and may outlive it.
 */
struct ht_registry;

/*
 * Open DATA/registry.db (made by ht_registry_init_pki). readonly: queries
 * only (the server); otherwise writes too (the CLI). Either way the
 * connection is WAL, synchronous=FULL, busy_timeout
 * HT_REGISTRY_BUSY_TIMEOUT_MS, and the schema version is checked.
 * Free with ht_registry_close.
 * Errors: HT_ERR_NOT_FOUND (no registry.db: run `huitong init`),
 * HT_ERR_UNSUPPORTED (a newer schema), HT_ERR_CORRUPT (not a registry),
 * HT_ERR_LIMIT (path too long), HT_ERR_IO, HT_ERR_NOMEM.
 */
enum ht_err ht_registry_open(const char *data, bool readonly,
			     struct ht_registry **out);

/* Close; accepts NULL. Views loaded from it stay valid. */
void ht_registry_close(struct ht_registry *r);

/* ---- operations ------------------------------------------------------------- */

/* What `participant add` asks for. Zero values take the defaults. */
struct ht_registry_add_options {
	const char *id;        /* 1..HT_REGISTRY_ID_BYTES_MAX of [A-Za-z0-9._-] */
	enum ht_pki_role role; /* 0: HT_PKI_ROLE_PARTICIPANT */
	enum ht_sign_alg alg;  /* request-signing key; 0: HT_SIGN_SM2 (with
				  HT_SM2_DEFAULT_ID) */
	const char *url;       /* written into credentials.json; NULL:
				  HT_REGISTRY_URL_DEFAULT */
	const char *out_dir;   /* the credentials directory to write */
	bool force;            /* overwrite a non-empty out_dir */
	int64_t now_s;         /* 0: the wall clock (tests set it) */
	const struct ht_pki_validity *validity; /* NULL: the default year */
};

/* What `participant rotate` asks for. */
struct ht_registry_rotate_options {
	const char *id;
	enum ht_sign_alg alg;  /* 0: the algorithm of the newest key */
	const char *url;       /* NULL: HT_REGISTRY_URL_DEFAULT */
	const char *out_dir;
	bool force;
	uint32_t grace_s;      /* older keys stay valid this long;
				  0..HT_REGISTRY_GRACE_S_MAX */
	int64_t now_s;         /* 0: the wall clock */
	const struct ht_pki_validity *validity;
};

/* What add and rotate made. */
struct ht_registry_issued {
	char key_id[HT_REGISTRY_KEY_ID_SIZE];
	char cert_serial[HT_PKI_SERIAL_HEX_SIZE];
	enum ht_pki_role role;
	enum ht_sign_alg alg;
	int64_t cert_not_after_s;
	size_t keys_retired;        /* rotate: older keys given a revocation
				       time by this rotation */
	int64_t keys_retired_at_s;  /* when they stop being accepted */
};

/*
 * Register a new participant: issue its client certificate
 * (ht_pki_issue_client with DATA/ca.key), generate its request-signing key,
 * and write the credentials directory (ht_pki_write_credentials: TLS key
 * and certificate, CA, signing key and its key id "<id>:1", the hub
 * journal's public key from DATA/hub-key.pem) — all inside one write
 * transaction that inserts the participant and its key row and commits
 * only after the credentials are durable. So a key is never registered
 * without its private key on disk; a crash before the commit leaves an
 * unregistered credentials directory (rerun with force). On failure
 * nothing is registered and the files written into out_dir are removed.
 * out (may be NULL) gets what was issued.
 * Errors: HT_ERR_INVALID (bad id, role, alg or url; a readonly
 * registry), HT_ERR_LIMIT (a valid certificate id longer than
 * HT_REGISTRY_ID_BYTES_MAX; HT_REGISTRY_PARTICIPANTS_MAX reached),
 * HT_ERR_EXISTS (the id is registered, revoked or not; or out_dir is not
 * empty and !force, or not a directory), HT_ERR_NOT_FOUND
 * (ca.key/ca.crt/hub-key.pem missing), HT_ERR_CORRUPT (they do not load),
 * HT_ERR_IO (including credentials that cannot be written), HT_ERR_NOMEM,
 * HT_ERR_CRYPTO.
 */
enum ht_err ht_registry_add(struct ht_registry *r,
			    const struct ht_registry_add_options *o,
			    struct ht_registry_issued *out);

/*
 * Give a participant a new key n+1 with a new client certificate, in the
 * same transaction-then-credentials order as ht_registry_add, and set the
 * revocation time of every older key of it to now + grace_s (a key
 * already revoked earlier keeps its earlier time). The role is the
 * participant's. Rotation is also the recovery from a lost private key.
 * Errors: HT_ERR_NOT_FOUND (no such participant; PKI files missing),
 * HT_ERR_INVALID (bad id, alg, url, grace over HT_REGISTRY_GRACE_S_MAX,
 * the participant is revoked, readonly), HT_ERR_LIMIT (HT_REGISTRY_KEY_SEQ_MAX
 * keys reached), HT_ERR_EXISTS (out_dir), HT_ERR_IO, HT_ERR_NOMEM,
 * HT_ERR_CRYPTO, HT_ERR_CORRUPT.
 */
enum ht_err ht_registry_rotate(struct ht_registry *r,
			       const struct ht_registry_rotate_options *o,
			       struct ht_registry_issued *out);

/*
 * Revoke, at now_s (0: the wall clock): with key_id NULL the participant
 * and every key of it; otherwise the one key key_id, which must be the
 * participant's. Idempotent: an earlier revocation time is kept (a key
 * retiring in the future is brought forward to now). *changed (may be
 * NULL) says whether anything changed. Revoking is final: a revoked
 * participant cannot be rotated, and its id cannot be added again.
 * Errors: HT_ERR_NOT_FOUND (no such participant, or no such key of it),
 * HT_ERR_INVALID (bad id or key id, readonly), HT_ERR_IO.
 */
enum ht_err ht_registry_revoke(struct ht_registry *r, const char *id,
			       const char *key_id, int64_t now_s,
			       bool *changed);

/* ---- the server's view ------------------------------------------------------ */

/*
 * An immutable snapshot of the registry with hash indexes by key id, by
 * certificate serial and by participant id (O(1) lookups). Created with a
 * reference count of 1; any number of threads may read one view at once
 * without locks. The public keys are materialised on first lookup (an
 * atomic compare-and-swap per key, no lock), so loading costs only the
 * rows: see docs/internals/registry.md, "The view".
 */
struct ht_registry_view;

/*
 * Load a view of everything in the registry now, in one read transaction,
 * and remember the registry's data_version for ht_registry_changed. Every
 * row is checked (ids, roles, algorithms, key ids "<id>:<n>", serials);
 * a bad row fails the load rather than being skipped, so the caller keeps
 * its previous view. *out has one reference; drop it with
 * ht_registry_view_unref.
 * Errors: HT_ERR_CORRUPT (a bad row), HT_ERR_LIMIT (more than
 * HT_REGISTRY_PARTICIPANTS_MAX / HT_REGISTRY_KEYS_MAX rows), HT_ERR_IO,
 * HT_ERR_NOMEM.
 */
enum ht_err ht_registry_view_load(struct ht_registry *r,
				  struct ht_registry_view **out);

/* Take another reference (atomic); returns v. */
struct ht_registry_view *ht_registry_view_ref(struct ht_registry_view *v);

/* Drop a reference (atomic); the last one frees the view and its keys.
 * Accepts NULL. Pointers obtained from a view are valid until the
 * reference they were obtained under is dropped. */
void ht_registry_view_unref(struct ht_registry_view *v);

/*
 * *changed = whether another connection has committed to the registry
 * since the last ht_registry_view_load on r (PRAGMA data_version: reads
 * shared memory only, costs nothing when idle). Until a new view is
 * loaded it keeps answering true. Before any load it answers true.
 * Errors: HT_ERR_IO.
 */
enum ht_err ht_registry_changed(struct ht_registry *r, bool *changed);

/* A participant as a view has it; strings are borrowed from the view. */
struct ht_registry_participant_info {
	const char *id;
	enum ht_pki_role role;
	int64_t created_s;
	int64_t revoked_s; /* 0: not revoked */
	size_t key_first;  /* its keys: ht_registry_view_key_at(key_first ..
			      key_first + key_count - 1), oldest first */
	size_t key_count;
};

/* A key as a view has it; strings are borrowed from the view. */
struct ht_registry_key_info {
	const char *key_id;
	const char *participant;
	enum ht_pki_role role;    /* the participant's */
	uint32_t seq;             /* n of "<id>:<n>" */
	enum ht_sign_alg alg;
	/* The request-signing public key (SM2 with HT_SM2_DEFAULT_ID), for
	 * ht_reqsig_verify; set by ht_registry_view_key only, NULL from the
	 * other lookups. Borrowed from the view. */
	const struct ht_key *public_key;
	const char *cert_serial;  /* lowercase hex, as pki.h gives it */
	int64_t cert_not_after_s;
	int64_t created_s;
	/* When this key (and the certificate issued with it) stops being
	 * accepted: the earlier of the key's own revocation time and its
	 * participant's; 0 = not revoked. A time in the future is a rotation
	 * grace: test with ht_registry_revoked_at. */
	int64_t revoked_s;
};

/*
 * Look a request-signing key up by key id (NUL-terminated; longer than
 * HT_REQSIG_KEY_ID_BYTES_MAX is simply not found) and materialise its
 * public key. Revoked keys are found too: check revoked_s.
 * Errors: HT_ERR_NOT_FOUND, HT_ERR_CORRUPT (the stored public key does not
 * load; remembered, so it stays cheap), HT_ERR_NOMEM, HT_ERR_CRYPTO.
 */
enum ht_err ht_registry_view_key(const struct ht_registry_view *v,
				 const char *key_id,
				 struct ht_registry_key_info *out);

/* Look the key whose client certificate has serial serial_hex (lowercase
 * hex, NUL-terminated) up; out->public_key is NULL. Errors:
 * HT_ERR_NOT_FOUND. */
enum ht_err ht_registry_view_cert(const struct ht_registry_view *v,
				  const char *serial_hex,
				  struct ht_registry_key_info *out);

/* Look a participant up by id (NUL-terminated). Errors: HT_ERR_NOT_FOUND. */
enum ht_err ht_registry_view_participant(
	const struct ht_registry_view *v, const char *id,
	struct ht_registry_participant_info *out);

/* Rows in the view. */
size_t ht_registry_view_participant_count(const struct ht_registry_view *v);
size_t ht_registry_view_key_count(const struct ht_registry_view *v);

/* The i-th participant in id order (bytewise), and the i-th key (grouped
 * by participant in that order, oldest first; public_key NULL), for
 * listing. i must be below the count (asserted). */
void ht_registry_view_participant_at(const struct ht_registry_view *v,
				     size_t i,
				     struct ht_registry_participant_info *out);
void ht_registry_view_key_at(const struct ht_registry_view *v, size_t i,
			     struct ht_registry_key_info *out);

/* True when something with revocation time revoked_s (0 = never) is
 * revoked at unix time at_s: revoked_s != 0 && at_s >= revoked_s. */
bool ht_registry_revoked_at(int64_t revoked_s, int64_t at_s);

#endif

/*
 * pki.h — the hub's certificate authority for mutual TLS: the hub CA, the
 * hub's server certificate, participants' client certificates, checking a
 * presented client certificate, and a client's credentials directory.
 *
 * Owner: api. This module owns the X.509 objects it makes and the layout of
 * a credentials directory. It never decides what a role may do (the API's
 * authorisation does) and never keeps the revocation list (the hub's
 * participant registry keeps issued serials; the server checks the serial
 * this module extracts against it). Every primitive is OpenSSL's.
 *
 * Every TLS key and certificate is ECDSA P-256 with SHA-256: OpenSSL 3.0's
 * TLS 1.3 does not negotiate SM2 certificates (RFC 8998 support came in a
 * later OpenSSL), so the channel uses P-256 and the national algorithms are
 * used where huitong controls both ends: request signatures and the
 * journal. See docs/internals/pki.md.
 *
 * A participant's identity is carried twice in its client certificate: as
 * the subject CN (for people reading logs) and, authoritatively, as exactly
 * one SAN URI
 *
 *     urn:huitong:participant:<id>:role:<role>
 *
 * where <id> is 1..64 characters of [A-Za-z0-9._-] (so it never contains
 * ':') and <role> is participant, operator or regulator. Both must agree.
 */
#ifndef HUITONG_PKI_H
#define HUITONG_PKI_H

#include "huitong/common.h"
#include "huitong/crypto.h"

/* OpenSSL's X509 (typedef struct x509_st X509); declared here so this
 * header does not pull OpenSSL's in. */
struct x509_st;

/* Participant ids: 64 is X.520's upper bound for a CN, and the id is the
 * client certificate's CN. */
#define HT_PKI_ID_BYTES_MAX 64
/* CA names: the CA's CN is "huitong hub CA <name>" and must fit in 64. */
#define HT_PKI_CA_NAME_BYTES_MAX 48
/* Caller-given extra names on the server certificate (DNS names or IP
 * literals), and the longest DNS name (RFC 1035). */
#define HT_PKI_SERVER_NAMES_MAX 32
#define HT_PKI_DNS_NAME_BYTES_MAX 253
/* Serials we issue are 16 bytes; RFC 5280 allows presented ones up to 20.
 * Hex is lowercase, no separators, NUL included in the _SIZE. */
#define HT_PKI_SERIAL_BYTES 16
#define HT_PKI_SERIAL_HEX_SIZE 41
/* Bounds on what ht_pki_read_credentials reads: a PEM file (a P-256 key or
 * certificate is under 1 KiB), credentials.json, and the URL in it. */
#define HT_PKI_PEM_BYTES_MAX (64u * 1024)
#define HT_PKI_JSON_BYTES_MAX (16u * 1024)
#define HT_PKI_URL_BYTES_MAX 2048

/* Default validity of each kind of certificate, in days. */
#define HT_PKI_CA_DAYS 3653     /* 10 years, leap days included */
#define HT_PKI_SERVER_DAYS 731  /* 2 years */
#define HT_PKI_CLIENT_DAYS 366  /* 1 year */
/* notBefore is set this far before "now" so a peer whose clock is a little
 * behind accepts a certificate issued a moment ago; the same ±300 s the
 * API allows on request timestamps. */
#define HT_PKI_BACKDATE_S 300

_Static_assert(HT_PKI_ID_BYTES_MAX <= 64, "the id is a CN (ub-common-name 64)");
_Static_assert(HT_PKI_CA_NAME_BYTES_MAX + sizeof "huitong hub CA " - 1 <= 64,
	       "the CA name is part of a CN (ub-common-name 64)");
_Static_assert(HT_PKI_SERIAL_HEX_SIZE == 2 * 20 + 1,
	       "RFC 5280 serials are at most 20 octets");

/* ---- roles and names --------------------------------------------------- */

enum ht_pki_role {
	HT_PKI_ROLE_PARTICIPANT = 1, /* sees and moves its own accounts */
	HT_PKI_ROLE_OPERATOR = 2,    /* administers the hub */
	HT_PKI_ROLE_REGULATOR = 3,   /* reads everything, changes nothing */
};

/* "participant" / "operator" / "regulator"; "unknown" for other values. */
const char *ht_pki_role_name(enum ht_pki_role role);
/* Inverse of ht_pki_role_name. Errors: HT_ERR_INVALID for any other name
 * (case-sensitive). */
enum ht_err ht_pki_role_parse(const char *name, enum ht_pki_role *out);

/* True when id[0..len) is a valid participant id: 1..HT_PKI_ID_BYTES_MAX
 * bytes, each in [A-Za-z0-9._-]. */
bool ht_pki_id_valid(const char *id, size_t len);

/* True when s is a DNS name a server certificate may carry: labels of
 * 1..63 [A-Za-z0-9-], not starting or ending with '-', joined by single
 * dots, at most HT_PKI_DNS_NAME_BYTES_MAX bytes, no wildcard. */
bool ht_pki_dns_name_valid(const char *s);

/* ---- the hub CA ---------------------------------------------------------- */

/*
 * The hub's certificate authority: its certificate, and its private key
 * when it can issue (a CA loaded from the certificate alone can only
 * verify). Verifying with one CA from several threads at once is safe;
 * issuing is not (serialise issuance, which is rare).
 */
struct ht_pki_ca;

/*
 * Make a new CA: a fresh ECDSA P-256 key and a self-signed certificate
 * with subject and issuer CN "huitong hub CA <name>", basicConstraints
 * CA:TRUE, pathlen:0 (critical; the hub issues leaves directly, never
 * intermediates), keyUsage keyCertSign|cRLSign (critical), subject and
 * authority key identifiers, a random serial and HT_PKI_CA_DAYS of
 * validity. name: 1..HT_PKI_CA_NAME_BYTES_MAX bytes of [A-Za-z0-9._-].
 * *out is freed with ht_pki_ca_destroy.
 * Errors: HT_ERR_INVALID (bad name), HT_ERR_NOMEM, HT_ERR_CRYPTO.
 */
enum ht_err ht_pki_ca_create(const char *name, struct ht_pki_ca **out);

/*
 * Load a CA from its certificate PEM and, when key_pem is not NULL, its
 * private key PEM (PKCS#8 or traditional, unencrypted). The certificate
 * must be a self-signed CA certificate (signature checked) with an EC
 * P-256 key, and the key must be its key.
 * Errors: HT_ERR_INVALID (not PEM, not a self-signed P-256 CA, key does not
 * match, input over HT_PKI_PEM_BYTES_MAX), HT_ERR_NOMEM, HT_ERR_CRYPTO.
 */
enum ht_err ht_pki_ca_from_pem(const char *cert_pem, size_t cert_len,
			       const char *key_pem, size_t key_len,
			       struct ht_pki_ca **out);

/* PEM of the CA certificate, or of its private key (PKCS#8, unencrypted;
 * keep it 0600). *out is malloc'd and NUL-terminated, *len excludes the
 * NUL; the caller frees it. Errors: HT_ERR_INVALID (key of a verify-only
 * CA), HT_ERR_NOMEM, HT_ERR_CRYPTO. */
enum ht_err ht_pki_ca_cert_pem(const struct ht_pki_ca *ca, char **out,
			       size_t *len);
enum ht_err ht_pki_ca_key_pem(const struct ht_pki_ca *ca, char **out,
			      size_t *len);

/* True when the CA holds its private key and can issue. */
bool ht_pki_ca_can_issue(const struct ht_pki_ca *ca);

/* The CA's certificate as OpenSSL's X509, for a server's SSL_CTX trust
 * store (X509_STORE_add_cert takes its own reference). Borrowed: valid
 * until ht_pki_ca_destroy. */
struct x509_st *ht_pki_ca_x509(const struct ht_pki_ca *ca);

/* Free a CA (its key is freed by OpenSSL, which clears it). Accepts NULL. */
void ht_pki_ca_destroy(struct ht_pki_ca *ca);

/* ---- issuing ------------------------------------------------------------- */

/*
 * A validity window in Unix seconds. OpenSSL 3.0 accepts a certificate
 * for notBefore <= t < notAfter (RFC 5280 would include notAfter). Issuers
 * take NULL for the default (now - HT_PKI_BACKDATE_S to now + the kind's
 * days); tests pass a window in the past or the future.
 */
struct ht_pki_validity {
	int64_t not_before_s;
	int64_t not_after_s;
};

/*
 * What an issuer hands back: the certificate and its fresh private key as
 * PEM (malloc'd, NUL-terminated, lengths exclude the NUL), and the serial
 * the hub records so it can revoke. Free with ht_pki_issued_clear.
 */
struct ht_pki_issued {
	char *cert_pem;
	size_t cert_len;
	char *key_pem; /* PKCS#8, unencrypted */
	size_t key_len;
	char serial_hex[HT_PKI_SERIAL_HEX_SIZE]; /* 32 lowercase hex digits */
	int64_t not_before_s;
	int64_t not_after_s;
};

/* Free and zero what an issuer put in *issued (the key PEM is wiped before
 * it is freed). Accepts NULL and an already-cleared struct. */
void ht_pki_issued_clear(struct ht_pki_issued *issued);

/*
 * Issue the hub's TLS server certificate with a fresh P-256 key: CN
 * "huitong hub <ca name>", SANs DNS:localhost, IP:127.0.0.1, IP:::1 and
 * then each of names[0..names_count) (an IPv4/IPv6 literal becomes an IP
 * SAN, anything else must be a DNS name: labels of [A-Za-z0-9-], dots
 * between, at most HT_PKI_DNS_NAME_BYTES_MAX bytes, no wildcards;
 * duplicates are dropped), EKU serverAuth, keyUsage digitalSignature,
 * basicConstraints CA:FALSE, validity `validity` or HT_PKI_SERVER_DAYS.
 * names may be NULL when names_count is 0. On success *out owns new
 * memory; on failure *out is left cleared.
 * Errors: HT_ERR_INVALID (CA cannot issue, a bad name, an empty or
 * inverted validity), HT_ERR_LIMIT (more than HT_PKI_SERVER_NAMES_MAX
 * names), HT_ERR_NOMEM, HT_ERR_CRYPTO.
 */
enum ht_err ht_pki_issue_server(const struct ht_pki_ca *ca,
				const char *const *names, size_t names_count,
				const struct ht_pki_validity *validity,
				struct ht_pki_issued *out);

/*
 * Issue a participant's client certificate with a fresh P-256 key: CN =
 * id, SAN URI "urn:huitong:participant:<id>:role:<role>", EKU clientAuth,
 * keyUsage digitalSignature, basicConstraints CA:FALSE, a random 16-byte
 * serial (out->serial_hex, to be recorded in the hub's registry),
 * validity `validity` or HT_PKI_CLIENT_DAYS. On failure *out is left
 * cleared.
 * Errors: HT_ERR_INVALID (CA cannot issue, bad id or role, bad validity),
 * HT_ERR_NOMEM, HT_ERR_CRYPTO.
 */
enum ht_err ht_pki_issue_client(const struct ht_pki_ca *ca, const char *id,
				enum ht_pki_role role,
				const struct ht_pki_validity *validity,
				struct ht_pki_issued *out);

/* ---- checking a presented client certificate ----------------------------- */

/*
 * The verdict on a presented client certificate. These are outcomes, not
 * errors: the check itself succeeded and found the certificate wanting.
 */
enum ht_pki_result {
	HT_PKI_OK = 0,
	HT_PKI_NOT_CERTIFICATE, /* does not decode as one X.509 certificate */
	HT_PKI_UNTRUSTED,       /* does not chain to this CA (another issuer) */
	HT_PKI_BAD_SIGNATURE,   /* names this CA but its signature fails:
				   tampered or forged */
	HT_PKI_EXPIRED,         /* after notAfter */
	HT_PKI_NOT_YET_VALID,   /* before notBefore */
	HT_PKI_NOT_CLIENT,      /* chains, but is not a client certificate
				   (a CA, a server certificate, no
				   clientAuth) */
	HT_PKI_NO_IDENTITY,     /* no urn:huitong: SAN URI */
	HT_PKI_BAD_IDENTITY,    /* a malformed huitong URI, a bad id, an
				   unknown role, or more than one */
	HT_PKI_ID_MISMATCH,     /* the CN is not the URI's id */
	HT_PKI_REJECTED,        /* chain check failed for another reason */
	HT_PKI_RESULT__COUNT
};

/* snake_case name of a result ("ok", "untrusted", "bad_signature", …), for
 * logs and the access log; "unknown" for other values. */
const char *ht_pki_result_name(enum ht_pki_result result);

/* Who a verified client certificate speaks for. */
struct ht_pki_identity {
	char id[HT_PKI_ID_BYTES_MAX + 1];
	enum ht_pki_role role;
	char serial_hex[HT_PKI_SERIAL_HEX_SIZE]; /* lowercase, as issued */
	int64_t not_before_s;
	int64_t not_after_s;
};

/* Pass as at_s to check validity at the current time. */
#define HT_PKI_AT_NOW 0

/*
 * Check a client certificate against the CA: it must chain to the CA
 * (X509_verify_cert with the CA as the only trust anchor, purpose SSL
 * client, validity checked at at_s, or now for HT_PKI_AT_NOW), must not be
 * a CA, and must carry exactly one well-formed huitong URI whose id equals
 * the CN. *result gets the verdict; *identity is filled only when it is
 * HT_PKI_OK (and zeroed otherwise). Revocation is the caller's: look
 * identity->serial_hex up in the registry.
 * Errors (the check could not be made; *result is then HT_PKI_REJECTED):
 * HT_ERR_NOMEM, HT_ERR_CRYPTO.
 */
enum ht_err ht_pki_verify_client_x509(const struct ht_pki_ca *ca,
				      struct x509_st *cert, int64_t at_s,
				      enum ht_pki_result *result,
				      struct ht_pki_identity *identity);

/* Same, from PEM text (the first certificate in it). Text that is not a
 * PEM certificate, or is over HT_PKI_PEM_BYTES_MAX, is
 * HT_PKI_NOT_CERTIFICATE. */
enum ht_err ht_pki_verify_client_pem(const struct ht_pki_ca *ca,
				     const char *pem, size_t len, int64_t at_s,
				     enum ht_pki_result *result,
				     struct ht_pki_identity *identity);

/* ---- credentials directory ----------------------------------------------- */

/*
 * What a client needs, as written to and read from a credentials
 * directory:
 *
 *     client.key        the TLS private key (PEM), mode 0600
 *     client.crt        the client certificate (PEM)
 *     ca.crt            the hub CA certificate (PEM)
 *     signing.key       the request-signing key (PEM), 0600, if given
 *     hub-key.pub       the hub journal's public key (PEM), if given
 *     credentials.json  {"id":…,"role":…,"url":…,"key":"client.key",
 *                        "cert":"client.crt","ca":"ca.crt",
 *                        "signing_key":"signing.key","signing_alg":…,
 *                        "signing_key_id":…,"hub_key":"hub-key.pub",
 *                        "hub_sign_alg":…}
 *
 * url, the signing_* members and the hub_* members are optional (NULL /
 * "" / absent; absent on read leaves them so). signing_key_id needs a
 * signing key and is 1..HT_REQSIG_KEY_ID_BYTES_MAX characters of
 * [A-Za-z0-9._:-]. hub_key_pem must be a PUBLIC key of hub_sign_alg: a
 * private key there is refused, so the hub's journal key can never reach
 * a client by mistake. For ht_pki_write_credentials the pointers are
 * borrowed; ht_pki_read_credentials allocates them and
 * ht_pki_credentials_clear frees them.
 */
struct ht_pki_credentials {
	char id[HT_PKI_ID_BYTES_MAX + 1];
	enum ht_pki_role role;
	char *url;
	char *key_pem;
	size_t key_len;
	char *cert_pem;
	size_t cert_len;
	char *ca_pem;
	size_t ca_len;
	char *signing_key_pem; /* NULL when none */
	size_t signing_key_len;
	enum ht_sign_alg signing_alg; /* meaningful when signing_key_pem */
	/* (Added for the API, issue 3.) The key id the hub knows the signing
	 * key by ("<id>:<n>"), "" when none; and the hub's journal
	 * verification key (public PEM, file "hub-key.pub"), NULL when
	 * absent, with its algorithm. */
	char signing_key_id[HT_PKI_ID_BYTES_MAX + 16];
	char *hub_key_pem;
	size_t hub_key_len;
	enum ht_sign_alg hub_sign_alg; /* meaningful when hub_key_pem */
};

/*
 * Write a credentials directory. dir is created (0700) when missing; an
 * existing empty directory is used; an existing non-empty one is refused
 * unless overwrite is true. Each file is written to a temporary name,
 * fsync'd and renamed, keys with mode 0600, credentials.json last (its
 * presence means the directory is complete), then the directory is
 * fsync'd. The certificate and key are checked to belong together, and
 * a hub key to be a public key of hub_sign_alg.
 * Errors: HT_ERR_INVALID (bad id, role, url, signing_key_id or algorithm,
 * a key that is not the certificate's, a private or mismatched hub key),
 * HT_ERR_EXISTS (non-empty and !overwrite, or dir is not
 * a directory), HT_ERR_IO, HT_ERR_NOMEM. Overwriting removes an old
 * signing.key or hub-key.pub that the new set does not have.
 */
enum ht_err ht_pki_write_credentials(const char *dir,
				     const struct ht_pki_credentials *creds,
				     bool overwrite);

/*
 * Read a credentials directory written by ht_pki_write_credentials. File
 * names in credentials.json must be plain names inside dir (no '/', not
 * "." or ".."); every file is bounded by HT_PKI_PEM_BYTES_MAX (the JSON by
 * HT_PKI_JSON_BYTES_MAX); id, role, url, signing_key_id and the
 * algorithms are validated; the key must be the certificate's, and a hub
 * key must be a public key of hub_sign_alg. On failure *out is left
 * cleared.
 * Errors: HT_ERR_NOT_FOUND (no credentials.json or a named file missing),
 * HT_ERR_INVALID (malformed JSON, bad member, key does not match, a hub
 * key that is private or of another algorithm),
 * HT_ERR_LIMIT (a file too large), HT_ERR_IO, HT_ERR_NOMEM.
 */
enum ht_err ht_pki_read_credentials(const char *dir,
				    struct ht_pki_credentials *out);

/* Free what ht_pki_read_credentials allocated (key PEMs are wiped first)
 * and zero *creds. Accepts NULL. Never call it on a struct whose pointers
 * are borrowed. */
void ht_pki_credentials_clear(struct ht_pki_credentials *creds);

#endif

/*
 * pki.c — the hub CA, server and client certificates for mutual TLS, the
 * check of a presented client certificate, and credentials directories.
 *
 * Owner: api. It owns the X509 / EVP_PKEY / X509_STORE objects behind
 * struct ht_pki_ca and the layout of a credentials directory. It must never
 * implement a primitive or parse X.509 by hand: keys come from the crypto
 * wrapper (ht_key_generate), certificates are built, signed and verified
 * by OpenSSL. It must never accept a client identity that did not come
 * from a certificate X509_verify_cert accepted against this CA, and never
 * read a credentials file named outside the credentials directory.
 */
#include "huitong/pki.h"
#include "huitong/reqsig.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define CA_CN_PREFIX "huitong hub CA "
#define SERVER_CN_PREFIX "huitong hub "
#define URI_PREFIX "urn:huitong:participant:"
#define URI_ROLE_INFIX ":role:"
/* Anything in the urn:huitong: namespace counts as a huitong identity, so
 * a certificate cannot smuggle a second, differently spelled one. */
#define URI_NAMESPACE "urn:huitong:"
#define DAY_S 86400

struct ht_pki_ca {
	X509 *cert;
	EVP_PKEY *key;    /* NULL for a verify-only CA */
	X509_STORE *store; /* the CA certificate as the only trust anchor */
	char name[HT_PKI_CA_NAME_BYTES_MAX + 1];
};

/* ---- names ------------------------------------------------------------- */

static const char *const role_names[] = {
	[HT_PKI_ROLE_PARTICIPANT] = "participant",
	[HT_PKI_ROLE_OPERATOR] = "operator",
	[HT_PKI_ROLE_REGULATOR] = "regulator",
};

const char *ht_pki_role_name(enum ht_pki_role role)
{
	if (role < HT_PKI_ROLE_PARTICIPANT || role > HT_PKI_ROLE_REGULATOR)
		return "unknown";
	return role_names[role];
}

enum ht_err ht_pki_role_parse(const char *name, enum ht_pki_role *out)
{
	if (!name)
		return HT_ERR_INVALID;
	for (int r = HT_PKI_ROLE_PARTICIPANT; r <= HT_PKI_ROLE_REGULATOR; r++) {
		if (!strcmp(name, role_names[r])) {
			*out = (enum ht_pki_role)r;
			return HT_OK;
		}
	}
	return HT_ERR_INVALID;
}

static bool role_valid(enum ht_pki_role role)
{
	return role >= HT_PKI_ROLE_PARTICIPANT && role <= HT_PKI_ROLE_REGULATOR;
}

static const char *const result_names[HT_PKI_RESULT__COUNT] = {
	[HT_PKI_OK] = "ok",
	[HT_PKI_NOT_CERTIFICATE] = "not_certificate",
	[HT_PKI_UNTRUSTED] = "untrusted",
	[HT_PKI_BAD_SIGNATURE] = "bad_signature",
	[HT_PKI_EXPIRED] = "expired",
	[HT_PKI_NOT_YET_VALID] = "not_yet_valid",
	[HT_PKI_NOT_CLIENT] = "not_client",
	[HT_PKI_NO_IDENTITY] = "no_identity",
	[HT_PKI_BAD_IDENTITY] = "bad_identity",
	[HT_PKI_ID_MISMATCH] = "id_mismatch",
	[HT_PKI_REJECTED] = "rejected",
};

const char *ht_pki_result_name(enum ht_pki_result result)
{
	if ((unsigned)result >= HT_PKI_RESULT__COUNT || !result_names[result])
		return "unknown";
	return result_names[result];
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* 1..max bytes of [A-Za-z0-9._-]. */
static bool token_valid(const char *s, size_t len, size_t max)
{
	if (!s || len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!name_char(s[i]))
			return false;
	return true;
}

bool ht_pki_id_valid(const char *id, size_t len)
{
	return token_valid(id, len, HT_PKI_ID_BYTES_MAX);
}

bool ht_pki_dns_name_valid(const char *s)
{
	size_t len = strnlen(s, HT_PKI_DNS_NAME_BYTES_MAX + 1);
	if (len == 0 || len > HT_PKI_DNS_NAME_BYTES_MAX)
		return false;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9');
		if (!alnum && !(c == '-' && label > 0))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && s[len - 1] != '-';
}

/* ---- small OpenSSL helpers ------------------------------------------- */

/* OpenSSL failed: drop its error queue so it cannot leak into a later
 * call, and say so. */
static enum ht_err crypto_fail(void)
{
	ERR_clear_error();
	return HT_ERR_CRYPTO;
}

/* Copy a memory BIO's contents into a malloc'd NUL-terminated string. */
static enum ht_err bio_to_string(BIO *bio, char **out, size_t *len)
{
	char *data;
	long n = BIO_get_mem_data(bio, &data);
	if (n <= 0)
		return crypto_fail();
	char *s = malloc((size_t)n + 1);
	if (!s)
		return HT_ERR_NOMEM;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	*out = s;
	*len = (size_t)n;
	return HT_OK;
}

static enum ht_err x509_to_pem(X509 *x, char **out, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio)
		return HT_ERR_NOMEM;
	enum ht_err err = PEM_write_bio_X509(bio, x) == 1 ?
				  bio_to_string(bio, out, len) :
				  crypto_fail();
	BIO_free(bio);
	return err;
}

static X509 *x509_from_pem(const char *pem, size_t len)
{
	if (!pem || len == 0 || len > HT_PKI_PEM_BYTES_MAX)
		return NULL;
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	ERR_clear_error();
	return x;
}

/* Read an unencrypted private key; a NULL passphrase callback that
 * refuses means an encrypted PEM fails instead of prompting. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

static EVP_PKEY *key_from_pem(const char *pem, size_t len)
{
	if (!pem || len == 0 || len > HT_PKI_PEM_BYTES_MAX)
		return NULL;
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase,
						     NULL) :
			    NULL;
	BIO_free(bio);
	ERR_clear_error();
	return k;
}

static bool key_is_p256(EVP_PKEY *k)
{
	char group[32];
	size_t n = 0;
	if (!EVP_PKEY_is_a(k, "EC"))
		return false;
	if (EVP_PKEY_get_group_name(k, group, sizeof group, &n) != 1) {
		ERR_clear_error();
		return false;
	}
	return !strcmp(group, "prime256v1") || !strcmp(group, "P-256");
}

/*
 * A fresh P-256 key through the crypto wrapper, handed back both as the
 * EVP_PKEY that signs the certificate request and as the PKCS#8 PEM the
 * caller receives (so the PEM is exactly what ht_key_from_pem reads).
 */
static enum ht_err fresh_key(EVP_PKEY **pkey, char **pem, size_t *pem_len)
{
	struct ht_key *k = NULL;
	enum ht_err err = ht_key_generate(HT_SIGN_ECDSA_P256, NULL, &k);
	if (err)
		return err;
	err = ht_key_private_pem(k, pem, pem_len);
	ht_key_destroy(k);
	if (err)
		return err;
	*pkey = key_from_pem(*pem, *pem_len);
	if (!*pkey) {
		OPENSSL_clear_free(*pem, *pem_len);
		*pem = NULL;
		return HT_ERR_CRYPTO;
	}
	return HT_OK;
}

/* A random positive serial of exactly HT_PKI_SERIAL_BYTES octets: the top
 * bit is cleared (positive, no 0x00 pad in DER) and the next one set (no
 * shorter encoding), leaving 126 random bits. */
static enum ht_err set_random_serial(X509 *x, char hex[HT_PKI_SERIAL_HEX_SIZE])
{
	uint8_t raw[HT_PKI_SERIAL_BYTES];
	enum ht_err err = ht_random(raw, sizeof raw);
	if (err)
		return err;
	raw[0] = (uint8_t)((raw[0] & 0x7f) | 0x40);
	BIGNUM *bn = BN_bin2bn(raw, sizeof raw, NULL);
	ASN1_INTEGER *serial = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	bool ok = serial && X509_set_serialNumber(x, serial) == 1;
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	if (!ok)
		return crypto_fail();
	ht_hex_encode(raw, sizeof raw, hex);
	return HT_OK;
}

static int64_t asn1_time_to_unix(const ASN1_TIME *t)
{
	struct tm tm;
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
		ERR_clear_error();
		return 0;
	}
	return (int64_t)timegm(&tm);
}

/* The window to issue with: the caller's, or now-backdate .. now+days. */
static enum ht_err pick_validity(const struct ht_pki_validity *given,
				 int days, struct ht_pki_validity *out)
{
	if (given) {
		if (given->not_before_s >= given->not_after_s ||
		    given->not_before_s < 0)
			return HT_ERR_INVALID;
		*out = *given;
		return HT_OK;
	}
	int64_t now = (int64_t)time(NULL);
	out->not_before_s = now - HT_PKI_BACKDATE_S;
	out->not_after_s = now + (int64_t)days * DAY_S;
	return HT_OK;
}

static enum ht_err set_validity(X509 *x, const struct ht_pki_validity *v)
{
	if (!ASN1_TIME_set(X509_getm_notBefore(x), (time_t)v->not_before_s) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)v->not_after_s))
		return crypto_fail();
	return HT_OK;
}

static enum ht_err set_cn(X509_NAME *name, const char *cn)
{
	if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
				       (const unsigned char *)cn, -1, -1,
				       0) != 1)
		return crypto_fail();
	return HT_OK;
}

/* Add an extension from OpenSSL's config syntax. Only fixed strings from
 * this file are passed here: nothing from a caller reaches the parser. */
static enum ht_err add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return crypto_fail();
	int ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? HT_OK : crypto_fail();
}

/*
 * A certificate skeleton: version 3, random serial, subject CN, issuer
 * (the CA's subject, or its own for the CA), validity and public key.
 */
static enum ht_err new_cert(X509 *issuer, EVP_PKEY *pubkey, const char *cn,
			    const struct ht_pki_validity *v, X509 **out,
			    char serial_hex[HT_PKI_SERIAL_HEX_SIZE])
{
	X509 *x = X509_new();
	if (!x)
		return HT_ERR_NOMEM;
	enum ht_err err = X509_set_version(x, 2) == 1 ? HT_OK : crypto_fail();
	if (!err)
		err = set_random_serial(x, serial_hex);
	if (!err)
		err = set_cn(X509_get_subject_name(x), cn);
	if (!err && X509_set_issuer_name(x, issuer ?
						    X509_get_subject_name(issuer) :
						    X509_get_subject_name(x)) != 1)
		err = crypto_fail();
	if (!err)
		err = set_validity(x, v);
	if (!err && X509_set_pubkey(x, pubkey) != 1)
		err = crypto_fail();
	if (err) {
		X509_free(x);
		return err;
	}
	*out = x;
	return HT_OK;
}

static enum ht_err sign_cert(X509 *x, EVP_PKEY *ca_key)
{
	if (X509_sign(x, ca_key, EVP_sha256()) <= 0)
		return crypto_fail();
	return HT_OK;
}

/* ---- the CA ------------------------------------------------------------ */

/* Wrap cert and key (ownership passes in, also on failure). */
static enum ht_err ca_wrap(X509 *cert, EVP_PKEY *key, const char *name,
			   struct ht_pki_ca **out)
{
	struct ht_pki_ca *ca = calloc(1, sizeof *ca);
	X509_STORE *store = X509_STORE_new();
	if (!ca || !store) {
		free(ca);
		X509_STORE_free(store);
		X509_free(cert);
		EVP_PKEY_free(key);
		return HT_ERR_NOMEM;
	}
	ca->cert = cert;
	ca->key = key;
	ca->store = store;
	snprintf(ca->name, sizeof ca->name, "%s", name);
	if (X509_STORE_add_cert(store, cert) != 1) {
		ht_pki_ca_destroy(ca);
		return crypto_fail();
	}
	*out = ca;
	return HT_OK;
}

static enum ht_err ca_extensions(X509 *x)
{
	enum ht_err err = add_ext(x, x, NID_basic_constraints,
				  "critical,CA:TRUE,pathlen:0");
	if (!err)
		err = add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
	if (!err)
		err = add_ext(x, x, NID_subject_key_identifier, "hash");
	if (!err)
		err = add_ext(x, x, NID_authority_key_identifier, "keyid:always");
	return err;
}

enum ht_err ht_pki_ca_create(const char *name, struct ht_pki_ca **out)
{
	if (!name || !token_valid(name, strlen(name), HT_PKI_CA_NAME_BYTES_MAX))
		return HT_ERR_INVALID;
	EVP_PKEY *key = NULL;
	char *pem = NULL;
	size_t pem_len = 0;
	enum ht_err err = fresh_key(&key, &pem, &pem_len);
	if (err)
		return err;
	OPENSSL_clear_free(pem, pem_len);

	char cn[64 + 1];
	snprintf(cn, sizeof cn, CA_CN_PREFIX "%s", name);
	struct ht_pki_validity v;
	X509 *x = NULL;
	char serial_hex[HT_PKI_SERIAL_HEX_SIZE];
	err = pick_validity(NULL, HT_PKI_CA_DAYS, &v);
	if (!err)
		err = new_cert(NULL, key, cn, &v, &x, serial_hex);
	if (!err)
		err = ca_extensions(x);
	if (!err)
		err = sign_cert(x, key);
	if (err) {
		X509_free(x);
		EVP_PKEY_free(key);
		return err;
	}
	return ca_wrap(x, key, name, out);
}

/* The CA name from a CN "huitong hub CA <name>"; a CN of another shape is
 * kept whole (truncated) so an imported foreign-named CA still works. */
static void ca_name_from_cert(X509 *x, char *name, size_t size)
{
	char cn[256] = "";
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
				  sizeof cn);
	ERR_clear_error();
	size_t plen = sizeof CA_CN_PREFIX - 1;
	const char *n = strncmp(cn, CA_CN_PREFIX, plen) ? cn : cn + plen;
	size_t len = strnlen(n, size - 1);
	memcpy(name, n, len);
	name[len] = '\0';
}

/* A self-signed CA certificate with a P-256 key whose signature holds. */
static bool ca_cert_acceptable(X509 *x)
{
	EVP_PKEY *pub = X509_get0_pubkey(x);
	bool ok = pub && key_is_p256(pub) && X509_check_ca(x) >= 1 &&
		  X509_check_issued(x, x) == X509_V_OK &&
		  X509_verify(x, pub) == 1;
	ERR_clear_error();
	return ok;
}

enum ht_err ht_pki_ca_from_pem(const char *cert_pem, size_t cert_len,
			       const char *key_pem, size_t key_len,
			       struct ht_pki_ca **out)
{
	X509 *x = x509_from_pem(cert_pem, cert_len);
	if (!x)
		return HT_ERR_INVALID;
	if (!ca_cert_acceptable(x)) {
		X509_free(x);
		return HT_ERR_INVALID;
	}
	EVP_PKEY *key = NULL;
	if (key_pem) {
		key = key_from_pem(key_pem, key_len);
		bool match = key && X509_check_private_key(x, key) == 1;
		ERR_clear_error();
		if (!match) {
			EVP_PKEY_free(key);
			X509_free(x);
			return HT_ERR_INVALID;
		}
	}
	char name[HT_PKI_CA_NAME_BYTES_MAX + 1];
	ca_name_from_cert(x, name, sizeof name);
	return ca_wrap(x, key, name, out);
}

enum ht_err ht_pki_ca_cert_pem(const struct ht_pki_ca *ca, char **out,
			       size_t *len)
{
	HT_ASSERT(ca != NULL);
	return x509_to_pem(ca->cert, out, len);
}

enum ht_err ht_pki_ca_key_pem(const struct ht_pki_ca *ca, char **out,
			      size_t *len)
{
	HT_ASSERT(ca != NULL);
	if (!ca->key)
		return HT_ERR_INVALID;
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio)
		return HT_ERR_NOMEM;
	enum ht_err err = PEM_write_bio_PrivateKey(bio, ca->key, NULL, NULL, 0,
						   NULL, NULL) == 1 ?
				  bio_to_string(bio, out, len) :
				  crypto_fail();
	BIO_free(bio);
	return err;
}

bool ht_pki_ca_can_issue(const struct ht_pki_ca *ca)
{
	HT_ASSERT(ca != NULL);
	return ca->key != NULL;
}

struct x509_st *ht_pki_ca_x509(const struct ht_pki_ca *ca)
{
	HT_ASSERT(ca != NULL);
	HT_ASSERT(ca->cert != NULL);
	return ca->cert;
}

void ht_pki_ca_destroy(struct ht_pki_ca *ca)
{
	if (!ca)
		return;
	X509_STORE_free(ca->store);
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	free(ca);
}

/* ---- issuing ----------------------------------------------------------- */

void ht_pki_issued_clear(struct ht_pki_issued *issued)
{
	if (!issued)
		return;
	free(issued->cert_pem);
	if (issued->key_pem)
		OPENSSL_clear_free(issued->key_pem, issued->key_len);
	memset(issued, 0, sizeof *issued);
}

/* Append one SAN; takes ownership of gen. */
static enum ht_err push_name(GENERAL_NAMES *gens, GENERAL_NAME *gen)
{
	if (!gen)
		return crypto_fail();
	if (!sk_GENERAL_NAME_push(gens, gen)) {
		GENERAL_NAME_free(gen);
		return HT_ERR_NOMEM;
	}
	return HT_OK;
}

/* One name (IP literal or DNS name) as a GENERAL_NAME, NULL when invalid. */
static GENERAL_NAME *make_name(const char *s)
{
	unsigned char addr[16];
	int ip_len = inet_pton(AF_INET, s, addr) == 1	  ? 4 :
		     inet_pton(AF_INET6, s, addr) == 1 ? 16 :
							  0;
	GENERAL_NAME *gen = GENERAL_NAME_new();
	ASN1_STRING *val = ASN1_IA5STRING_new();
	if (!gen || !val)
		goto fail;
	if (ip_len) {
		ASN1_OCTET_STRING *oct = ASN1_OCTET_STRING_new();
		if (!oct || ASN1_OCTET_STRING_set(oct, addr, ip_len) != 1) {
			ASN1_OCTET_STRING_free(oct);
			goto fail;
		}
		ASN1_STRING_free(val);
		GENERAL_NAME_set0_value(gen, GEN_IPADD, oct);
		return gen;
	}
	if (!ht_pki_dns_name_valid(s) || ASN1_STRING_set(val, s, -1) != 1)
		goto fail;
	GENERAL_NAME_set0_value(gen, GEN_DNS, val);
	return gen;
fail:
	ASN1_STRING_free(val);
	GENERAL_NAME_free(gen);
	ERR_clear_error();
	return NULL;
}

static bool name_seen(GENERAL_NAMES *gens, const GENERAL_NAME *gen)
{
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++)
		if (GENERAL_NAME_cmp(sk_GENERAL_NAME_value(gens, i),
				     (GENERAL_NAME *)gen) == 0)
			return true;
	return false;
}

static enum ht_err add_server_sans(X509 *x, const char *const *names,
				   size_t names_count)
{
	static const char *const defaults[] = {"localhost", "127.0.0.1", "::1"};
	size_t n_defaults = sizeof defaults / sizeof defaults[0];
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	if (!gens)
		return HT_ERR_NOMEM;
	enum ht_err err = HT_OK;
	for (size_t i = 0; !err && i < n_defaults + names_count; i++) {
		const char *s = i < n_defaults ? defaults[i] :
						 names[i - n_defaults];
		GENERAL_NAME *gen = s ? make_name(s) : NULL;
		if (!gen)
			err = HT_ERR_INVALID;
		else if (name_seen(gens, gen))
			GENERAL_NAME_free(gen);
		else
			err = push_name(gens, gen);
	}
	if (!err && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
				      X509V3_ADD_DEFAULT) != 1)
		err = crypto_fail();
	GENERAL_NAMES_free(gens);
	return err;
}

static enum ht_err add_client_san(X509 *x, const char *id,
				  enum ht_pki_role role)
{
	char uri[sizeof URI_PREFIX + HT_PKI_ID_BYTES_MAX +
		 sizeof URI_ROLE_INFIX + 16];
	snprintf(uri, sizeof uri, URI_PREFIX "%s" URI_ROLE_INFIX "%s", id,
		 ht_pki_role_name(role));
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *gen = GENERAL_NAME_new();
	ASN1_IA5STRING *val = ASN1_IA5STRING_new();
	enum ht_err err = HT_OK;
	if (!gens || !gen || !val || ASN1_STRING_set(val, uri, -1) != 1) {
		ASN1_IA5STRING_free(val);
		GENERAL_NAME_free(gen);
		err = HT_ERR_NOMEM;
	} else {
		GENERAL_NAME_set0_value(gen, GEN_URI, val);
		err = push_name(gens, gen);
	}
	if (!err && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
				      X509V3_ADD_DEFAULT) != 1)
		err = crypto_fail();
	GENERAL_NAMES_free(gens);
	return err;
}

/* The extensions every leaf shares; eku is "serverAuth" or "clientAuth". */
static enum ht_err leaf_extensions(X509 *x, X509 *issuer, const char *eku)
{
	enum ht_err err = add_ext(x, issuer, NID_basic_constraints,
				  "critical,CA:FALSE");
	if (!err)
		err = add_ext(x, issuer, NID_key_usage,
			      "critical,digitalSignature");
	if (!err)
		err = add_ext(x, issuer, NID_ext_key_usage, eku);
	if (!err)
		err = add_ext(x, issuer, NID_subject_key_identifier, "hash");
	if (!err)
		err = add_ext(x, issuer, NID_authority_key_identifier,
			      "keyid:always");
	return err;
}

/* The parts of issuing shared by server and client certificates. */
struct leaf_spec {
	const char *cn;
	const char *eku;
	int days;
	const struct ht_pki_validity *validity;
	/* server SANs, or client identity */
	const char *const *names;
	size_t names_count;
	const char *id;
	enum ht_pki_role role;
};

static enum ht_err issue_leaf(const struct ht_pki_ca *ca,
			      const struct leaf_spec *spec,
			      struct ht_pki_issued *out)
{
	struct ht_pki_validity v;
	enum ht_err err = pick_validity(spec->validity, spec->days, &v);
	if (err)
		return err;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	err = fresh_key(&key, &out->key_pem, &out->key_len);
	if (!err)
		err = new_cert(ca->cert, key, spec->cn, &v, &x, out->serial_hex);
	if (!err)
		err = leaf_extensions(x, ca->cert, spec->eku);
	if (!err)
		err = spec->id ? add_client_san(x, spec->id, spec->role) :
				 add_server_sans(x, spec->names,
						 spec->names_count);
	if (!err)
		err = sign_cert(x, ca->key);
	if (!err)
		err = x509_to_pem(x, &out->cert_pem, &out->cert_len);
	if (!err) {
		out->not_before_s = asn1_time_to_unix(X509_get0_notBefore(x));
		out->not_after_s = asn1_time_to_unix(X509_get0_notAfter(x));
		HT_ASSERT(out->not_before_s == v.not_before_s);
		HT_ASSERT(out->not_after_s == v.not_after_s);
	}
	X509_free(x);
	EVP_PKEY_free(key);
	if (err)
		ht_pki_issued_clear(out);
	return err;
}

enum ht_err ht_pki_issue_server(const struct ht_pki_ca *ca,
				const char *const *names, size_t names_count,
				const struct ht_pki_validity *validity,
				struct ht_pki_issued *out)
{
	HT_ASSERT(ca != NULL);
	HT_ASSERT(out != NULL);
	memset(out, 0, sizeof *out);
	if (!ca->key || (names_count > 0 && !names))
		return HT_ERR_INVALID;
	if (names_count > HT_PKI_SERVER_NAMES_MAX)
		return HT_ERR_LIMIT;
	char cn[64 + 1];
	snprintf(cn, sizeof cn, SERVER_CN_PREFIX "%s", ca->name);
	struct leaf_spec spec = {
		.cn = cn,
		.eku = "serverAuth",
		.days = HT_PKI_SERVER_DAYS,
		.validity = validity,
		.names = names,
		.names_count = names_count,
	};
	return issue_leaf(ca, &spec, out);
}

enum ht_err ht_pki_issue_client(const struct ht_pki_ca *ca, const char *id,
				enum ht_pki_role role,
				const struct ht_pki_validity *validity,
				struct ht_pki_issued *out)
{
	HT_ASSERT(ca != NULL);
	HT_ASSERT(out != NULL);
	memset(out, 0, sizeof *out);
	if (!ca->key || !id || !role_valid(role) ||
	    !ht_pki_id_valid(id, strnlen(id, HT_PKI_ID_BYTES_MAX + 1)))
		return HT_ERR_INVALID;
	struct leaf_spec spec = {
		.cn = id,
		.eku = "clientAuth",
		.days = HT_PKI_CLIENT_DAYS,
		.validity = validity,
		.id = id,
		.role = role,
	};
	return issue_leaf(ca, &spec, out);
}

/* ---- checking a client certificate ----------------------------------- */

/* What an X509_verify_cert failure means for the hub. */
static enum ht_pki_result map_verify_error(int code)
{
	switch (code) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_AKID_SKID_MISMATCH:
	case X509_V_ERR_CERT_UNTRUSTED:
		return HT_PKI_UNTRUSTED;
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
		return HT_PKI_BAD_SIGNATURE;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return HT_PKI_EXPIRED;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return HT_PKI_NOT_YET_VALID;
	case X509_V_ERR_INVALID_PURPOSE:
	case X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE:
	case X509_V_ERR_INVALID_CA:
		return HT_PKI_NOT_CLIENT;
	default:
		return HT_PKI_REJECTED;
	}
}

/* Run X509_verify_cert with the CA as the only anchor, purpose SSL
 * client, at at_s (or now). */
static enum ht_err verify_chain(const struct ht_pki_ca *ca, X509 *cert,
				int64_t at_s, enum ht_pki_result *result)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	if (!ctx)
		return HT_ERR_NOMEM;
	if (X509_STORE_CTX_init(ctx, ca->store, cert, NULL) != 1 ||
	    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1) {
		X509_STORE_CTX_free(ctx);
		return crypto_fail();
	}
	if (at_s != HT_PKI_AT_NOW)
		X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx),
					   (time_t)at_s);
	int rc = X509_verify_cert(ctx);
	*result = rc == 1 ? HT_PKI_OK :
			    map_verify_error(X509_STORE_CTX_get_error(ctx));
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return HT_OK;
}

/* Parse "urn:huitong:participant:<id>:role:<role>" (s[0..len), not NUL
 * terminated, may hold NULs). */
static enum ht_pki_result parse_uri(const char *s, size_t len,
				    struct ht_pki_identity *identity)
{
	size_t plen = sizeof URI_PREFIX - 1;
	size_t ilen = sizeof URI_ROLE_INFIX - 1;
	if (len <= plen || memcmp(s, URI_PREFIX, plen) != 0)
		return HT_PKI_BAD_IDENTITY;
	const char *id = s + plen;
	const char *end = s + len;
	const char *colon = memchr(id, ':', (size_t)(end - id));
	if (!colon || !ht_pki_id_valid(id, (size_t)(colon - id)))
		return HT_PKI_BAD_IDENTITY;
	if ((size_t)(end - colon) <= ilen ||
	    memcmp(colon, URI_ROLE_INFIX, ilen) != 0)
		return HT_PKI_BAD_IDENTITY;
	const char *role = colon + ilen;
	char role_buf[16];
	size_t role_len = (size_t)(end - role);
	if (role_len >= sizeof role_buf || memchr(role, '\0', role_len))
		return HT_PKI_BAD_IDENTITY;
	memcpy(role_buf, role, role_len);
	role_buf[role_len] = '\0';
	if (ht_pki_role_parse(role_buf, &identity->role) != HT_OK)
		return HT_PKI_BAD_IDENTITY;
	memcpy(identity->id, id, (size_t)(colon - id));
	identity->id[colon - id] = '\0';
	return HT_PKI_OK;
}

/* Find the one huitong URI among the SANs and parse it. */
static enum ht_pki_result find_identity(X509 *cert,
					struct ht_pki_identity *identity)
{
	int crit = 0;
	GENERAL_NAMES *gens =
		X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
	ERR_clear_error();
	if (!gens)
		return crit == -2 ? HT_PKI_BAD_IDENTITY : HT_PKI_NO_IDENTITY;
	size_t ns_len = sizeof URI_NAMESPACE - 1;
	const ASN1_IA5STRING *found = NULL;
	enum ht_pki_result r = HT_PKI_NO_IDENTITY;
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != GEN_URI)
			continue;
		const ASN1_IA5STRING *u = g->d.uniformResourceIdentifier;
		size_t len = (size_t)ASN1_STRING_length(u);
		if (len < ns_len ||
		    strncasecmp((const char *)ASN1_STRING_get0_data(u),
				URI_NAMESPACE, ns_len) != 0)
			continue;
		if (found) {
			r = HT_PKI_BAD_IDENTITY; /* two identities: ambiguous */
			break;
		}
		found = u;
	}
	if (found && r != HT_PKI_BAD_IDENTITY)
		r = parse_uri((const char *)ASN1_STRING_get0_data(found),
			      (size_t)ASN1_STRING_length(found), identity);
	GENERAL_NAMES_free(gens);
	return r;
}

/* The subject must have exactly one CN, equal to the id. */
static bool cn_matches(X509 *cert, const char *id)
{
	X509_NAME *name = X509_get_subject_name(cert);
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
		return false;
	const ASN1_STRING *cn =
		X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	size_t len = strlen(id);
	return (size_t)ASN1_STRING_length(cn) == len &&
	       memcmp(ASN1_STRING_get0_data(cn), id, len) == 0;
}

static bool serial_to_hex(X509 *cert, char hex[HT_PKI_SERIAL_HEX_SIZE])
{
	uint8_t raw[20];
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	int n = bn ? BN_num_bytes(bn) : -1;
	bool ok = n > 0 && n <= (int)sizeof raw && !BN_is_negative(bn) &&
		  BN_bn2bin(bn, raw) == n;
	BN_free(bn);
	ERR_clear_error();
	if (ok)
		ht_hex_encode(raw, (size_t)n, hex);
	return ok;
}

enum ht_err ht_pki_verify_client_x509(const struct ht_pki_ca *ca,
				      struct x509_st *cert, int64_t at_s,
				      enum ht_pki_result *result,
				      struct ht_pki_identity *identity)
{
	HT_ASSERT(ca != NULL);
	HT_ASSERT(result != NULL && identity != NULL);
	memset(identity, 0, sizeof *identity);
	*result = HT_PKI_REJECTED;
	if (!cert) {
		*result = HT_PKI_NOT_CERTIFICATE;
		return HT_OK;
	}
	enum ht_pki_result r;
	enum ht_err err = verify_chain(ca, cert, at_s, &r);
	if (err)
		return err;
	struct ht_pki_identity id = {0};
	if (r == HT_PKI_OK && X509_check_ca(cert) != 0)
		r = HT_PKI_NOT_CLIENT;
	if (r == HT_PKI_OK)
		r = find_identity(cert, &id);
	if (r == HT_PKI_OK && !cn_matches(cert, id.id))
		r = HT_PKI_ID_MISMATCH;
	if (r == HT_PKI_OK && !serial_to_hex(cert, id.serial_hex))
		r = HT_PKI_REJECTED;
	ERR_clear_error();
	*result = r;
	if (r != HT_PKI_OK)
		return HT_OK;
	id.not_before_s = asn1_time_to_unix(X509_get0_notBefore(cert));
	id.not_after_s = asn1_time_to_unix(X509_get0_notAfter(cert));
	HT_ASSERT(ht_pki_id_valid(id.id, strlen(id.id)));
	*identity = id;
	return HT_OK;
}

enum ht_err ht_pki_verify_client_pem(const struct ht_pki_ca *ca,
				     const char *pem, size_t len, int64_t at_s,
				     enum ht_pki_result *result,
				     struct ht_pki_identity *identity)
{
	HT_ASSERT(result != NULL && identity != NULL);
	X509 *x = x509_from_pem(pem, len);
	if (!x) {
		memset(identity, 0, sizeof *identity);
		*result = HT_PKI_NOT_CERTIFICATE;
		return HT_OK;
	}
	enum ht_err err = ht_pki_verify_client_x509(ca, x, at_s, result,
						    identity);
	X509_free(x);
	return err;
}

/* ---- credentials directory ------------------------------------------- */

#define FILE_KEY "client.key"
#define FILE_CERT "client.crt"
#define FILE_CA "ca.crt"
#define FILE_SIGNING_KEY "signing.key"
#define FILE_HUB_KEY "hub-key.pub"
#define FILE_JSON "credentials.json"

_Static_assert(sizeof ((struct ht_pki_credentials *)0)->signing_key_id >
		       HT_REQSIG_KEY_ID_BYTES_MAX,
	       "a credentials directory holds any request-signing key id");

void ht_pki_credentials_clear(struct ht_pki_credentials *creds)
{
	if (!creds)
		return;
	free(creds->url);
	if (creds->key_pem)
		OPENSSL_clear_free(creds->key_pem, creds->key_len);
	if (creds->signing_key_pem)
		OPENSSL_clear_free(creds->signing_key_pem,
				   creds->signing_key_len);
	free(creds->cert_pem);
	free(creds->ca_pem);
	free(creds->hub_key_pem);
	memset(creds, 0, sizeof *creds);
}

/* Printable ASCII without spaces, quotes or backslashes, bounded. */
static bool url_valid(const char *url)
{
	size_t len = strnlen(url, HT_PKI_URL_BYTES_MAX + 1);
	if (len == 0 || len > HT_PKI_URL_BYTES_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (url[i] <= ' ' || url[i] > '~' || url[i] == '"' ||
		    url[i] == '\\')
			return false;
	return true;
}

/* The certificate and the private key belong together. */
static bool pair_matches(const char *cert_pem, size_t cert_len,
			 const char *key_pem, size_t key_len)
{
	X509 *x = x509_from_pem(cert_pem, cert_len);
	EVP_PKEY *k = key_from_pem(key_pem, key_len);
	bool ok = x && k && X509_check_private_key(x, k) == 1;
	X509_free(x);
	EVP_PKEY_free(k);
	ERR_clear_error();
	return ok;
}

static bool signing_alg_valid(enum ht_sign_alg alg)
{
	return alg == HT_SIGN_SM2 || alg == HT_SIGN_ED25519 ||
	       alg == HT_SIGN_ECDSA_P256;
}

/* A request-signing key id as reqsig.h defines it: 1..64 characters of
 * [A-Za-z0-9._:-]. */
static bool key_id_valid(const char *s, size_t len)
{
	if (len == 0 || len > HT_REQSIG_KEY_ID_BYTES_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!name_char(s[i]) && s[i] != ':')
			return false;
	return true;
}

/* The hub's journal key as a client may hold it: a PUBLIC key of alg. A
 * private key is refused, so the hub's signing key cannot be handed to
 * a client by a caller's slip. */
static bool hub_key_valid(const char *pem, size_t len, enum ht_sign_alg alg)
{
	if (!pem || len == 0 || len > HT_PKI_PEM_BYTES_MAX ||
	    strnlen(pem, len) != len || !signing_alg_valid(alg))
		return false;
	struct ht_key *k = NULL;
	if (ht_key_from_pem(pem, len, NULL, &k) != HT_OK)
		return false;
	char *priv = NULL;
	size_t priv_len = 0;
	bool is_private = ht_key_private_pem(k, &priv, &priv_len) == HT_OK;
	if (priv)
		OPENSSL_clear_free(priv, priv_len);
	bool ok = !is_private && ht_key_alg(k) == alg;
	ht_key_destroy(k);
	return ok;
}

static bool creds_valid(const struct ht_pki_credentials *c)
{
	if (!ht_pki_id_valid(c->id, strnlen(c->id, sizeof c->id)) ||
	    !role_valid(c->role) || (c->url && !url_valid(c->url)))
		return false;
	if (!c->key_pem || !c->cert_pem || !c->ca_pem ||
	    c->ca_len == 0 || c->ca_len > HT_PKI_PEM_BYTES_MAX)
		return false;
	if (c->signing_key_pem &&
	    (c->signing_key_len == 0 ||
	     c->signing_key_len > HT_PKI_PEM_BYTES_MAX ||
	     !signing_alg_valid(c->signing_alg)))
		return false;
	size_t kid_len = strnlen(c->signing_key_id, sizeof c->signing_key_id);
	if (kid_len == sizeof c->signing_key_id ||
	    (kid_len && (!c->signing_key_pem ||
			 !key_id_valid(c->signing_key_id, kid_len))))
		return false;
	if (c->hub_key_pem &&
	    !hub_key_valid(c->hub_key_pem, c->hub_key_len, c->hub_sign_alg))
		return false;
	return pair_matches(c->cert_pem, c->cert_len, c->key_pem, c->key_len);
}

/* Create dir (0700) or check that it may be written into. */
static enum ht_err prepare_dir(const char *dir, bool overwrite)
{
	struct stat st;
	if (stat(dir, &st) != 0) {
		if (errno != ENOENT)
			return HT_ERR_IO;
		return mkdir(dir, 0700) == 0 ? HT_OK : HT_ERR_IO;
	}
	if (!S_ISDIR(st.st_mode))
		return HT_ERR_EXISTS;
	if (overwrite)
		return HT_OK;
	DIR *d = opendir(dir);
	if (!d)
		return HT_ERR_IO;
	bool empty = true;
	struct dirent *e;
	while (empty && (e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = false;
	closedir(d);
	return empty ? HT_OK : HT_ERR_EXISTS;
}

/* Write name in dirfd through a temporary file, fsync'd then renamed. */
static enum ht_err write_file(int dirfd, const char *name, const char *data,
			      size_t len, mode_t mode)
{
	char tmp[64];
	snprintf(tmp, sizeof tmp, ".%s.tmp", name);
	int fd = openat(dirfd, tmp,
			O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			mode);
	if (fd < 0)
		return HT_ERR_IO;
	/* fchmod because umask may have narrowed, or an old file widened,
	 * the mode. */
	bool ok = fchmod(fd, mode) == 0;
	for (size_t off = 0; ok && off < len;) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		ok = n > 0;
		off += ok ? (size_t)n : 0;
	}
	ok = ok && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	ok = ok && renameat(dirfd, tmp, dirfd, name) == 0;
	if (!ok)
		unlinkat(dirfd, tmp, 0);
	return ok ? HT_OK : HT_ERR_IO;
}

static char *creds_json(const struct ht_pki_credentials *c)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "id", json_string(c->id));
	json_object_set_new(o, "role", json_string(ht_pki_role_name(c->role)));
	if (c->url)
		json_object_set_new(o, "url", json_string(c->url));
	json_object_set_new(o, "key", json_string(FILE_KEY));
	json_object_set_new(o, "cert", json_string(FILE_CERT));
	json_object_set_new(o, "ca", json_string(FILE_CA));
	if (c->signing_key_pem) {
		json_object_set_new(o, "signing_key",
				    json_string(FILE_SIGNING_KEY));
		json_object_set_new(o, "signing_alg",
				    json_string(ht_sign_alg_name(c->signing_alg)));
		if (c->signing_key_id[0])
			json_object_set_new(o, "signing_key_id",
					    json_string(c->signing_key_id));
	}
	if (c->hub_key_pem) {
		json_object_set_new(o, "hub_key", json_string(FILE_HUB_KEY));
		json_object_set_new(o, "hub_sign_alg",
				    json_string(ht_sign_alg_name(c->hub_sign_alg)));
	}
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

static enum ht_err write_all_files(int dfd, const struct ht_pki_credentials *c)
{
	enum ht_err err = write_file(dfd, FILE_KEY, c->key_pem, c->key_len,
				     0600);
	if (!err)
		err = write_file(dfd, FILE_CERT, c->cert_pem, c->cert_len, 0644);
	if (!err)
		err = write_file(dfd, FILE_CA, c->ca_pem, c->ca_len, 0644);
	if (!err && c->signing_key_pem)
		err = write_file(dfd, FILE_SIGNING_KEY, c->signing_key_pem,
				 c->signing_key_len, 0600);
	if (!err && c->hub_key_pem)
		err = write_file(dfd, FILE_HUB_KEY, c->hub_key_pem,
				 c->hub_key_len, 0644);
	/* Overwriting without a signing key or hub key must not leave an
	 * old one. */
	if (!err && !c->signing_key_pem &&
	    unlinkat(dfd, FILE_SIGNING_KEY, 0) != 0 && errno != ENOENT)
		err = HT_ERR_IO;
	if (!err && !c->hub_key_pem &&
	    unlinkat(dfd, FILE_HUB_KEY, 0) != 0 && errno != ENOENT)
		err = HT_ERR_IO;
	if (err)
		return err;
	char *json = creds_json(c);
	if (!json)
		return HT_ERR_NOMEM;
	size_t json_len = strlen(json);
	char *line = realloc(json, json_len + 2);
	if (!line) {
		free(json);
		return HT_ERR_NOMEM;
	}
	line[json_len++] = '\n';
	line[json_len] = '\0';
	err = write_file(dfd, FILE_JSON, line, json_len, 0644);
	free(line);
	return err;
}

enum ht_err ht_pki_write_credentials(const char *dir,
				     const struct ht_pki_credentials *creds,
				     bool overwrite)
{
	HT_ASSERT(dir != NULL && creds != NULL);
	if (!creds_valid(creds))
		return HT_ERR_INVALID;
	enum ht_err err = prepare_dir(dir, overwrite);
	if (err)
		return err;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return HT_ERR_IO;
	err = write_all_files(dfd, creds);
	if (!err && fsync(dfd) != 0)
		err = HT_ERR_IO;
	close(dfd);
	return err;
}

/* Read a whole file of at most max bytes, NUL-terminated. */
static enum ht_err read_file(int dirfd, const char *name, size_t max,
			     char **out, size_t *len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? HT_ERR_NOT_FOUND : HT_ERR_IO;
	char *buf = malloc(max + 1);
	if (!buf) {
		close(fd);
		return HT_ERR_NOMEM;
	}
	size_t n = 0;
	enum ht_err err = HT_OK;
	while (!err && n <= max) {
		ssize_t r = read(fd, buf + n, max + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			err = HT_ERR_IO;
		else if (r == 0)
			break;
		else
			n += (size_t)r;
	}
	close(fd);
	if (!err && n > max)
		err = HT_ERR_LIMIT;
	if (err) {
		OPENSSL_clear_free(buf, max + 1);
		return err;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return HT_OK;
}

/* A member naming a file: a plain name inside the directory. */
static const char *file_member(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	if (!s || !*s || strchr(s, '/') || !strcmp(s, ".") || !strcmp(s, "..") ||
	    strlen(s) > 255)
		return NULL;
	return s;
}

/* The optional members added for the API: signing_key_id (only beside a
 * signing key) and hub_sign_alg (only beside, and required by, hub_key). */
static enum ht_err parse_creds_json_keys(json_t *o,
					 struct ht_pki_credentials *c)
{
	json_t *kid = json_object_get(o, "signing_key_id");
	if (kid) {
		const char *s = json_string_value(kid);
		size_t len = s ? strnlen(s, sizeof c->signing_key_id) : 0;
		if (!s || !json_object_get(o, "signing_key") ||
		    json_string_length(kid) != len || !key_id_valid(s, len))
			return HT_ERR_INVALID;
		memcpy(c->signing_key_id, s, len + 1);
	}
	json_t *hub_alg = json_object_get(o, "hub_sign_alg");
	if (!json_object_get(o, "hub_key"))
		return hub_alg ? HT_ERR_INVALID : HT_OK;
	if (ht_sign_alg_parse(json_string_value(hub_alg), &c->hub_sign_alg) !=
	    HT_OK)
		return HT_ERR_INVALID;
	return HT_OK;
}

/* id, role, url and the signing algorithms from the JSON object. */
static enum ht_err parse_creds_json(json_t *o, struct ht_pki_credentials *c)
{
	const char *id = json_string_value(json_object_get(o, "id"));
	const char *role = json_string_value(json_object_get(o, "role"));
	if (!id || !ht_pki_id_valid(id, strlen(id)) ||
	    ht_pki_role_parse(role, &c->role) != HT_OK)
		return HT_ERR_INVALID;
	snprintf(c->id, sizeof c->id, "%s", id);
	json_t *url = json_object_get(o, "url");
	if (url && !json_is_null(url)) {
		const char *u = json_string_value(url);
		if (!u || !url_valid(u))
			return HT_ERR_INVALID;
		c->url = strdup(u);
		if (!c->url)
			return HT_ERR_NOMEM;
	}
	json_t *alg = json_object_get(o, "signing_alg");
	if (json_object_get(o, "signing_key") &&
	    ht_sign_alg_parse(json_string_value(alg), &c->signing_alg) != HT_OK)
		return HT_ERR_INVALID;
	return parse_creds_json_keys(o, c);
}

static enum ht_err read_named(int dfd, json_t *o, const char *key,
			      char **out, size_t *len)
{
	const char *name = file_member(o, key);
	if (!name)
		return HT_ERR_INVALID;
	return read_file(dfd, name, HT_PKI_PEM_BYTES_MAX, out, len);
}

static enum ht_err read_creds(int dfd, struct ht_pki_credentials *c)
{
	char *text = NULL;
	size_t text_len = 0;
	enum ht_err err = read_file(dfd, FILE_JSON, HT_PKI_JSON_BYTES_MAX,
				    &text, &text_len);
	if (err)
		return err;
	json_t *o = json_loadb(text, text_len, JSON_REJECT_DUPLICATES, NULL);
	free(text);
	if (!json_is_object(o)) {
		json_decref(o);
		return HT_ERR_INVALID;
	}
	err = parse_creds_json(o, c);
	if (!err)
		err = read_named(dfd, o, "key", &c->key_pem, &c->key_len);
	if (!err)
		err = read_named(dfd, o, "cert", &c->cert_pem, &c->cert_len);
	if (!err)
		err = read_named(dfd, o, "ca", &c->ca_pem, &c->ca_len);
	if (!err && json_object_get(o, "signing_key"))
		err = read_named(dfd, o, "signing_key", &c->signing_key_pem,
				 &c->signing_key_len);
	if (!err && json_object_get(o, "hub_key"))
		err = read_named(dfd, o, "hub_key", &c->hub_key_pem,
				 &c->hub_key_len);
	json_decref(o);
	if (!err && !pair_matches(c->cert_pem, c->cert_len, c->key_pem,
				  c->key_len))
		err = HT_ERR_INVALID;
	if (!err && c->hub_key_pem &&
	    !hub_key_valid(c->hub_key_pem, c->hub_key_len, c->hub_sign_alg))
		err = HT_ERR_INVALID;
	return err;
}

enum ht_err ht_pki_read_credentials(const char *dir,
				    struct ht_pki_credentials *out)
{
	HT_ASSERT(dir != NULL && out != NULL);
	memset(out, 0, sizeof *out);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? HT_ERR_NOT_FOUND : HT_ERR_IO;
	enum ht_err err = read_creds(dfd, out);
	close(dfd);
	if (err)
		ht_pki_credentials_clear(out);
	return err;
}

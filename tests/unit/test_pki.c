/*
 * test_pki.c — the hub CA, server and client certificates, the check of a
 * presented client certificate, credentials directories, and a real mutual
 * TLS 1.3 handshake over a socketpair.
 *
 * Every certificate the module makes is also checked with OpenSSL directly
 * (X509_STORE / X509_verify_cert, X509_check_host, the extension getters),
 * so the tests do not only agree with the code they test. The negative
 * identity cases are built here by hand, signed with the CA's own key, and
 * a well-formed hand-built certificate is checked to pass first, so each
 * rejection is for the one flaw put into it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "huitong/pki.h"
#include "huitong/reqsig.h"

#define DAY_S 86400

/* ---- helpers --------------------------------------------------------- */

static X509 *pem_x509(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	assert_non_null(bio);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return x;
}

static EVP_PKEY *pem_key(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	assert_non_null(bio);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return k;
}

static char *x509_pem(X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_X509(bio, x), 1);
	char *data;
	long n = BIO_get_mem_data(bio, &data);
	char *s = strndup(data, (size_t)n);
	BIO_free(bio);
	return s;
}

static struct ht_pki_ca *make_ca(const char *name)
{
	struct ht_pki_ca *ca = NULL;
	assert_int_equal(ht_pki_ca_create(name, &ca), HT_OK);
	assert_non_null(ca);
	return ca;
}

static char *ca_pem(const struct ht_pki_ca *ca)
{
	char *pem = NULL;
	size_t len = 0;
	assert_int_equal(ht_pki_ca_cert_pem(ca, &pem, &len), HT_OK);
	assert_int_equal(strlen(pem), len);
	return pem;
}

/* X509_verify_cert of cert against the CA certificate alone; returns the
 * X509_V_ code (X509_V_OK on success). */
static int openssl_verify(const char *ca_cert_pem, const char *cert_pem,
			  int purpose)
{
	X509 *ca = pem_x509(ca_cert_pem);
	X509 *x = pem_x509(cert_pem);
	assert_non_null(ca);
	assert_non_null(x);
	X509_STORE *store = X509_STORE_new();
	X509_STORE_add_cert(store, ca);
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	assert_int_equal(X509_STORE_CTX_init(ctx, store, x, NULL), 1);
	X509_STORE_CTX_set_purpose(ctx, purpose);
	int rc = X509_verify_cert(ctx);
	int code = rc == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
	if (rc == 1)
		assert_int_equal(X509_STORE_CTX_get_error(ctx), X509_V_OK);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(x);
	X509_free(ca);
	return code;
}

static int64_t asn1_unix(const ASN1_TIME *t)
{
	struct tm tm;
	assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
	return (int64_t)timegm(&tm);
}

static void check_validity(X509 *x, int days, bool backdated)
{
	int64_t now = (int64_t)time(NULL);
	int64_t nb = asn1_unix(X509_get0_notBefore(x));
	int64_t na = asn1_unix(X509_get0_notAfter(x));
	int64_t start = backdated ? now - HT_PKI_BACKDATE_S : now;
	assert_true(nb <= start + 5 && nb >= start - 5 - HT_PKI_BACKDATE_S);
	assert_true(na >= now + (int64_t)days * DAY_S - 5);
	assert_true(na <= now + (int64_t)days * DAY_S + 5);
}

static void check_p256(EVP_PKEY *k)
{
	char group[32];
	size_t n = 0;
	assert_true(EVP_PKEY_is_a(k, "EC"));
	assert_int_equal(EVP_PKEY_get_group_name(k, group, sizeof group, &n), 1);
	assert_string_equal(group, "prime256v1");
}

static void check_cn(X509 *x, const char *want)
{
	char cn[128];
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
					      NID_commonName, cn,
					      sizeof cn) > 0);
	assert_string_equal(cn, want);
}

/* The serial as lowercase hex, straight from OpenSSL. */
static void serial_hex_of(X509 *x, char *out, size_t size)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = BN_bn2hex(bn);
	snprintf(out, size, "%s", hex);
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');
	OPENSSL_free(hex);
	BN_free(bn);
}

static void issue_client(const struct ht_pki_ca *ca, const char *id,
			 enum ht_pki_role role,
			 const struct ht_pki_validity *v,
			 struct ht_pki_issued *out)
{
	assert_int_equal(ht_pki_issue_client(ca, id, role, v, out), HT_OK);
	assert_non_null(out->cert_pem);
	assert_non_null(out->key_pem);
}

static enum ht_pki_result check_client(const struct ht_pki_ca *ca,
				       const char *pem, int64_t at_s,
				       struct ht_pki_identity *id)
{
	enum ht_pki_result r = HT_PKI_RESULT__COUNT;
	assert_int_equal(ht_pki_verify_client_pem(ca, pem, strlen(pem), at_s,
						  &r, id),
			 HT_OK);
	if (r != HT_PKI_OK)
		assert_int_equal(id->id[0], '\0');
	return r;
}

/* ---- names ----------------------------------------------------------- */

static void test_names(void **state)
{
	(void)state;
	enum ht_pki_role r;
	for (int i = HT_PKI_ROLE_PARTICIPANT; i <= HT_PKI_ROLE_REGULATOR; i++) {
		const char *name = ht_pki_role_name((enum ht_pki_role)i);
		assert_int_equal(ht_pki_role_parse(name, &r), HT_OK);
		assert_int_equal(r, i);
	}
	assert_string_equal(ht_pki_role_name(HT_PKI_ROLE_REGULATOR), "regulator");
	assert_string_equal(ht_pki_role_name((enum ht_pki_role)0), "unknown");
	assert_int_equal(ht_pki_role_parse("Operator", &r), HT_ERR_INVALID);
	assert_int_equal(ht_pki_role_parse("", &r), HT_ERR_INVALID);
	assert_int_equal(ht_pki_role_parse(NULL, &r), HT_ERR_INVALID);

	assert_true(ht_pki_id_valid("bankA", 5));
	assert_true(ht_pki_id_valid("a.b_c-9", 7));
	char longest[65];
	memset(longest, 'x', 64);
	longest[64] = '\0';
	assert_true(ht_pki_id_valid(longest, 64));
	assert_false(ht_pki_id_valid(longest, 65));
	assert_false(ht_pki_id_valid("", 0));
	assert_false(ht_pki_id_valid("bank A", 6));
	assert_false(ht_pki_id_valid("bank:A", 6));
	assert_false(ht_pki_id_valid("bank/A", 6));
	assert_false(ht_pki_id_valid("b\xc3\xa4nk", 5));
	assert_false(ht_pki_id_valid("ab\0c", 4));

	/* Every result has its own name. */
	for (int i = 0; i < HT_PKI_RESULT__COUNT; i++) {
		const char *a = ht_pki_result_name((enum ht_pki_result)i);
		assert_string_not_equal(a, "unknown");
		for (int j = 0; j < i; j++)
			assert_string_not_equal(
				a, ht_pki_result_name((enum ht_pki_result)j));
	}
	assert_string_equal(ht_pki_result_name(HT_PKI_UNTRUSTED), "untrusted");
	assert_string_equal(ht_pki_result_name(HT_PKI_RESULT__COUNT), "unknown");
}

/* ---- the CA ---------------------------------------------------------- */

static void test_ca_create(void **state)
{
	(void)state;
	struct ht_pki_ca *ca = make_ca("test");
	assert_true(ht_pki_ca_can_issue(ca));
	char *pem = ca_pem(ca);
	X509 *x = pem_x509(pem);
	assert_non_null(x);

	check_cn(x, "huitong hub CA test");
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x),
				       X509_get_issuer_name(x)),
			 0);
	assert_int_equal(X509_get_version(x), 2);
	/* basicConstraints CA:TRUE, critical, pathlen 0. */
	int crit = 0;
	BASIC_CONSTRAINTS *bc =
		X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_true(bc->ca);
	assert_non_null(bc->pathlen);
	assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
	BASIC_CONSTRAINTS_free(bc);
	assert_int_equal(X509_check_ca(x), 1);
	/* keyUsage keyCertSign|cRLSign only, critical. */
	assert_int_equal(X509_get_key_usage(x), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	ASN1_BIT_STRING *ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
	assert_non_null(ku);
	assert_int_equal(crit, 1);
	ASN1_BIT_STRING_free(ku);
	assert_non_null(X509_get0_subject_key_id(x));
	assert_non_null(X509_get0_authority_key_id(x));
	assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(x),
					       X509_get0_authority_key_id(x)),
			 0);
	check_validity(x, HT_PKI_CA_DAYS, true);
	/* Serial: positive, 16 octets. */
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	assert_int_equal(BN_num_bytes(bn), HT_PKI_SERIAL_BYTES);
	assert_false(BN_is_negative(bn));
	BN_free(bn);
	check_p256(X509_get0_pubkey(x));
	assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	assert_int_equal(X509_verify(x, X509_get0_pubkey(x)), 1);
	/* The CA verifies as its own trust anchor. */
	assert_int_equal(openssl_verify(pem, pem, X509_PURPOSE_ANY), X509_V_OK);

	/* Two CAs never share a key or a serial. */
	struct ht_pki_ca *ca2 = make_ca("test");
	char *pem2 = ca_pem(ca2);
	X509 *x2 = pem_x509(pem2);
	assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(x),
					      X509_get0_serialNumber(x2)),
			     0);
	assert_int_not_equal(EVP_PKEY_eq(X509_get0_pubkey(x),
					 X509_get0_pubkey(x2)),
			     1);
	X509_free(x2);
	free(pem2);
	ht_pki_ca_destroy(ca2);
	X509_free(x);
	free(pem);
	ht_pki_ca_destroy(ca);
	ht_pki_ca_destroy(NULL);
}

static void test_ca_names(void **state)
{
	(void)state;
	struct ht_pki_ca *ca = NULL;
	char name[50];
	memset(name, 'n', 48);
	name[48] = '\0';
	assert_int_equal(ht_pki_ca_create(name, &ca), HT_OK);
	char *pem = ca_pem(ca);
	X509 *x = pem_x509(pem);
	char want[80];
	snprintf(want, sizeof want, "huitong hub CA %s", name);
	check_cn(x, want);
	X509_free(x);
	free(pem);
	ht_pki_ca_destroy(ca);

	name[48] = 'n';
	name[49] = '\0';
	ca = NULL;
	assert_int_equal(ht_pki_ca_create(name, &ca), HT_ERR_INVALID);
	assert_null(ca);
	assert_int_equal(ht_pki_ca_create("", &ca), HT_ERR_INVALID);
	assert_int_equal(ht_pki_ca_create("a b", &ca), HT_ERR_INVALID);
	assert_int_equal(ht_pki_ca_create("a,CN=x", &ca), HT_ERR_INVALID);
	assert_int_equal(ht_pki_ca_create(NULL, &ca), HT_ERR_INVALID);
	assert_null(ca);
}

static void test_ca_pem_round_trip(void **state)
{
	(void)state;
	struct ht_pki_ca *ca = make_ca("rt");
	char *cert = ca_pem(ca), *key = NULL;
	size_t key_len = 0;
	assert_int_equal(ht_pki_ca_key_pem(ca, &key, &key_len), HT_OK);
	assert_non_null(strstr(key, "-----BEGIN PRIVATE KEY-----"));

	/* Reloaded with its key: same certificate, and it still issues
	 * certificates the original CA accepts. */
	struct ht_pki_ca *back = NULL;
	assert_int_equal(ht_pki_ca_from_pem(cert, strlen(cert), key, key_len,
					    &back),
			 HT_OK);
	assert_true(ht_pki_ca_can_issue(back));
	char *cert2 = ca_pem(back);
	assert_string_equal(cert, cert2);
	struct ht_pki_issued is;
	issue_client(back, "bankA", HT_PKI_ROLE_PARTICIPANT, NULL, &is);
	struct ht_pki_identity id;
	assert_int_equal(check_client(ca, is.cert_pem, HT_PKI_AT_NOW, &id),
			 HT_PKI_OK);
	/* The server CN carries the imported CA's name. */
	struct ht_pki_issued srv;
	assert_int_equal(ht_pki_issue_server(back, NULL, 0, NULL, &srv), HT_OK);
	X509 *sx = pem_x509(srv.cert_pem);
	check_cn(sx, "huitong hub rt");
	X509_free(sx);
	ht_pki_issued_clear(&srv);
	ht_pki_issued_clear(&is);
	ht_pki_ca_destroy(back);

	/* Certificate only: verifies, cannot issue or export a key. */
	back = NULL;
	assert_int_equal(ht_pki_ca_from_pem(cert, strlen(cert), NULL, 0, &back),
			 HT_OK);
	assert_false(ht_pki_ca_can_issue(back));
	char *nokey = NULL;
	size_t nokey_len = 0;
	assert_int_equal(ht_pki_ca_key_pem(back, &nokey, &nokey_len),
			 HT_ERR_INVALID);
	assert_int_equal(ht_pki_issue_client(back, "bankA",
					     HT_PKI_ROLE_PARTICIPANT, NULL,
					     &is),
			 HT_ERR_INVALID);
	assert_null(is.cert_pem);
	assert_int_equal(ht_pki_issue_server(back, NULL, 0, NULL, &is),
			 HT_ERR_INVALID);
	ht_pki_ca_destroy(back);
	free(cert2);
	free(key);
	free(cert);
	ht_pki_ca_destroy(ca);
}

/* Another CA's key, a leaf as a CA, garbage: refused. */
static void test_ca_pem_refused(void **state)
{
	(void)state;
	struct ht_pki_ca *ca = make_ca("rt"), *back = NULL;
	char *cert = ca_pem(ca);
	struct ht_pki_issued is;
	struct ht_pki_ca *other = make_ca("other");
	char *okey = NULL;
	size_t okey_len = 0;
	assert_int_equal(ht_pki_ca_key_pem(other, &okey, &okey_len), HT_OK);
	assert_int_equal(ht_pki_ca_from_pem(cert, strlen(cert), okey, okey_len,
					    &back),
			 HT_ERR_INVALID);
	issue_client(ca, "bankA", HT_PKI_ROLE_PARTICIPANT, NULL, &is);
	assert_int_equal(ht_pki_ca_from_pem(is.cert_pem, is.cert_len,
					    is.key_pem, is.key_len, &back),
			 HT_ERR_INVALID);
	assert_int_equal(ht_pki_ca_from_pem(is.cert_pem, is.cert_len, NULL, 0,
					    &back),
			 HT_ERR_INVALID);
	assert_int_equal(ht_pki_ca_from_pem("junk", 4, NULL, 0, &back),
			 HT_ERR_INVALID);
	assert_null(back);
	ht_pki_issued_clear(&is);
	ht_pki_issued_clear(&is); /* clearing twice is harmless */
	free(okey);
	ht_pki_ca_destroy(other);
	free(cert);
	ht_pki_ca_destroy(ca);
}

/* ---- server certificate ---------------------------------------------- */

static int san_count(X509 *x)
{
	GENERAL_NAMES *gens =
		X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	assert_non_null(gens);
	int n = sk_GENERAL_NAME_num(gens);
	GENERAL_NAMES_free(gens);
	return n;
}

static void test_server_cert(void **state)
{
	(void)state;
	struct ht_pki_ca *ca = make_ca("srv");
	char *cap = ca_pem(ca);
	const char *names[] = {"hub.example.com", "10.0.0.5", "2001:db8::1",
			       "localhost", "::1"};
	struct ht_pki_issued is;
	assert_int_equal(ht_pki_issue_server(ca, names, 5, NULL, &is), HT_OK);
	assert_int_equal(strlen(is.cert_pem), is.cert_len);
	assert_int_equal(strlen(is.serial_hex), 2 * HT_PKI_SERIAL_BYTES);
	assert_int_equal(openssl_verify(cap, is.cert_pem,
					X509_PURPOSE_SSL_SERVER),
			 X509_V_OK);
	/* A server certificate is no client certificate. */
	assert_int_equal(openssl_verify(cap, is.cert_pem,
					X509_PURPOSE_SSL_CLIENT),
			 X509_V_ERR_INVALID_PURPOSE);

	X509 *x = pem_x509(is.cert_pem);
	check_cn(x, "huitong hub srv");
	assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(x, "hub.example.com", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(x, "evil.example.com", 0, 0, NULL), 0);
	assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
	assert_int_equal(X509_check_ip_asc(x, "::1", 0), 1);
	assert_int_equal(X509_check_ip_asc(x, "10.0.0.5", 0), 1);
	assert_int_equal(X509_check_ip_asc(x, "2001:db8::1", 0), 1);
	assert_int_equal(X509_check_ip_asc(x, "10.0.0.6", 0), 0);
	assert_int_equal(san_count(x), 6); /* the two duplicates dropped */
	assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_check_ca(x), 0);
	check_validity(x, HT_PKI_SERVER_DAYS, true);
	assert_int_equal(is.not_after_s, asn1_unix(X509_get0_notAfter(x)));
	char hex[64];
	serial_hex_of(x, hex, sizeof hex);
	assert_string_equal(hex, is.serial_hex);
	EVP_PKEY *k = pem_key(is.key_pem);
	assert_non_null(k);
	check_p256(k);
	assert_int_equal(X509_check_private_key(x, k), 1);
	EVP_PKEY_free(k);

	/* The server certificate presented as a client one. */
	struct ht_pki_identity id;
	assert_int_equal(check_client(ca, is.cert_pem, HT_PKI_AT_NOW, &id),
			 HT_PKI_NOT_CLIENT);
	X509_free(x);
	ht_pki_issued_clear(&is);
	assert_null(is.cert_pem);

	/* Defaults only. */
	assert_int_equal(ht_pki_issue_server(ca, NULL, 0, NULL, &is), HT_OK);
	x = pem_x509(is.cert_pem);
	assert_int_equal(san_count(x), 3);
	X509_free(x);
	ht_pki_issued_clear(&is);
	free(cap);
	ht_pki_ca_destroy(ca);
}

static void test_server_bad_names(void **state)
{
	(void)state;
	struct ht_pki_ca *ca = make_ca("srv");
	const char *bad[] = {"bad name", "-a.example", "a-.example", "a..b",
			     "*.example.com", ".example", "example.", "",
			     "a,DNS:evil", "1.2.3.4/8", "\xc3\xa4.cn"};
	struct ht_pki_issued is;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *one[] = {bad[i]};
		assert_int_equal(ht_pki_issue_server(ca, one, 1, NULL, &is),
				 HT_ERR_INVALID);
		assert_null(is.cert_pem);
		assert_null(is.key_pem);
	}
	char label[70];
	memset(label, 'a', 64);
	label[64] = '\0';
	const char *longlabel[] = {label};
	assert_int_equal(ht_pki_issue_server(ca, longlabel, 1, NULL, &is),
			 HT_ERR_INVALID);
	label[63] = '\0';
	assert_int_equal(ht_pki_issue_server(ca, longlabel, 1, NULL, &is),
			 HT_OK);
	ht_pki_issued_clear(&is);

	const char *many[HT_PKI_SERVER_NAMES_MAX + 1];
	for (size_t i = 0; i <= HT_PKI_SERVER_NAMES_MAX; i++)
		many[i] = "localhost";
	assert_int_equal(ht_pki_issue_server(ca, many,
					     HT_PKI_SERVER_NAMES_MAX + 1, NULL,
					     &is),
			 HT_ERR_LIMIT);
	assert_int_equal(ht_pki_issue_server(ca, many, HT_PKI_SERVER_NAMES_MAX,
					     NULL, &is),
			 HT_OK);
	ht_pki_issued_clear(&is);
	assert_int_equal(ht_pki_issue_server(ca, NULL, 1, NULL, &is),
			 HT_ERR_INVALID);
	ht_pki_ca_destroy(ca);
}

/* ---- client certificate ---------------------------------------------- */

static void check_client_uri(X509 *x, const char *want)
{
	GENERAL_NAMES *gens =
		X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	assert_non_null(gens);
	assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
	GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, 0);
	assert_int_equal(g->type, GEN_URI);
	const ASN1_IA5STRING *u = g->d.uniformResourceIdentifier;
	assert_int_equal(ASN1_STRING_length(u), strlen(want));
	assert_memory_equal(ASN1_STRING_get0_data(u), want, strlen(want));
	GENERAL_NAMES_free(gens);
}

static void test_client_cert(void **state)
{
	(void)state;
	struct ht_pki_ca *ca = make_ca("cli");
	char *cap = ca_pem(ca);
	char prev_serial[64] = "";
	for (int r = HT_PKI_ROLE_PARTICIPANT; r <= HT_PKI_ROLE_REGULATOR; r++) {
		enum ht_pki_role role = (enum ht_pki_role)r;
		struct ht_pki_issued is;
		issue_client(ca, "bank.A_1-x", role, NULL, &is);
		assert_int_equal(openssl_verify(cap, is.cert_pem,
						X509_PURPOSE_SSL_CLIENT),
				 X509_V_OK);
		X509 *x = pem_x509(is.cert_pem);
		check_cn(x, "bank.A_1-x");
		char uri[128];
		snprintf(uri, sizeof uri,
			 "urn:huitong:participant:bank.A_1-x:role:%s",
			 ht_pki_role_name(role));
		check_client_uri(x, uri);
		assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
		assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
		assert_int_equal(X509_check_ca(x), 0);
		X509 *cax = pem_x509(cap);
		assert_int_equal(X509_check_issued(cax, x), X509_V_OK);
		X509_free(cax);
		check_validity(x, HT_PKI_CLIENT_DAYS, true);
		char hex[64];
		serial_hex_of(x, hex, sizeof hex);
		assert_string_equal(hex, is.serial_hex);
		assert_int_equal(strlen(hex), 2 * HT_PKI_SERIAL_BYTES);
		assert_string_not_equal(hex, prev_serial);
		snprintf(prev_serial, sizeof prev_serial, "%s", hex);

		struct ht_pki_identity id;
		assert_int_equal(check_client(ca, is.cert_pem, HT_PKI_AT_NOW,
					      &id),
				 HT_PKI_OK);
		assert_string_equal(id.id, "bank.A_1-x");
		assert_int_equal(id.role, role);
		assert_string_equal(id.serial_hex, is.serial_hex);
		assert_int_equal(id.not_before_s, is.not_before_s);
		assert_int_equal(id.not_after_s, is.not_after_s);
		X509_free(x);
		ht_pki_issued_clear(&is);
	}
	free(cap);
	ht_pki_ca_destroy(ca);
}

static void test_client_ids(void **state)
{
	(void)state;
	struct ht_pki_ca *ca = make_ca("cli");
	/* Ids at the edge, and wrong ones. */
	char id64[65];
	memset(id64, 'z', 64);
	id64[64] = '\0';
	struct ht_pki_issued is;
	issue_client(ca, id64, HT_PKI_ROLE_OPERATOR, NULL, &is);
	struct ht_pki_identity id;
	assert_int_equal(check_client(ca, is.cert_pem, HT_PKI_AT_NOW, &id),
			 HT_PKI_OK);
	assert_string_equal(id.id, id64);
	ht_pki_issued_clear(&is);
	char id65[66];
	memset(id65, 'z', 65);
	id65[65] = '\0';
	const char *bad[] = {"", "bank A", "bank:A", "a/b", "b\xc3\xa4nk", id65};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(ht_pki_issue_client(ca, bad[i],
						     HT_PKI_ROLE_PARTICIPANT,
						     NULL, &is),
				 HT_ERR_INVALID);
		assert_null(is.cert_pem);
	}
	assert_int_equal(ht_pki_issue_client(ca, "bankA", (enum ht_pki_role)0,
					     NULL, &is),
			 HT_ERR_INVALID);
	assert_int_equal(ht_pki_issue_client(ca, "bankA", (enum ht_pki_role)4,
					     NULL, &is),
			 HT_ERR_INVALID);
	assert_int_equal(ht_pki_issue_client(ca, NULL, HT_PKI_ROLE_OPERATOR,
					     NULL, &is),
			 HT_ERR_INVALID);
	ht_pki_ca_destroy(ca);
}

/* Serials: always 16 octets, positive, top byte 0x40..0x7f, and never
 * repeated. */
static void test_client_serials(void **state)
{
	(void)state;
	struct ht_pki_ca *ca = make_ca("cli");
	struct ht_pki_issued is;
	char seen[200][HT_PKI_SERIAL_HEX_SIZE];
	for (int i = 0; i < 200; i++) {
		issue_client(ca, "bankA", HT_PKI_ROLE_PARTICIPANT, NULL, &is);
		assert_int_equal(strlen(is.serial_hex), 2 * HT_PKI_SERIAL_BYTES);
		assert_true(is.serial_hex[0] >= '4' && is.serial_hex[0] <= '7');
		for (int j = 0; j < i; j++)
			assert_string_not_equal(seen[j], is.serial_hex);
		memcpy(seen[i], is.serial_hex, sizeof seen[i]);
		ht_pki_issued_clear(&is);
	}
	ht_pki_ca_destroy(ca);
}

/* ---- rejections ------------------------------------------------------ */

static void test_reject_other_ca(void **state)
{
	(void)state;
	struct ht_pki_ca *ca = make_ca("hub");
	struct ht_pki_ca *other = make_ca("hub"); /* same name, other key */
	char *cap = ca_pem(ca);
	struct ht_pki_issued is;
	issue_client(other, "bankA", HT_PKI_ROLE_REGULATOR, NULL, &is);
	assert_int_not_equal(openssl_verify(cap, is.cert_pem,
					    X509_PURPOSE_SSL_CLIENT),
			     X509_V_OK);
	struct ht_pki_identity id;
	assert_int_equal(check_client(ca, is.cert_pem, HT_PKI_AT_NOW, &id),
			 HT_PKI_UNTRUSTED);
	assert_int_equal(check_client(other, is.cert_pem, HT_PKI_AT_NOW, &id),
			 HT_PKI_OK);
	/* Another CA's own certificate is not trusted either. */
	char *otherp = ca_pem(other);
	assert_int_equal(check_client(ca, otherp, HT_PKI_AT_NOW, &id),
			 HT_PKI_UNTRUSTED);
	/* And our own CA certificate is not a client certificate. */
	assert_int_equal(check_client(ca, cap, HT_PKI_AT_NOW, &id),
			 HT_PKI_NOT_CLIENT);
	free(otherp);
	ht_pki_issued_clear(&is);
	free(cap);
	ht_pki_ca_destroy(other);
	ht_pki_ca_destroy(ca);
}

static void test_reject_time(void **state)
{
	(void)state;
	struct ht_pki_ca *ca = make_ca("time");
	char *cap = ca_pem(ca);
	int64_t now = (int64_t)time(NULL);
	struct ht_pki_validity past = {now - 3 * 365 * DAY_S,
				       now - 365 * DAY_S};
	struct ht_pki_issued is;
	issue_client(ca, "bankA", HT_PKI_ROLE_PARTICIPANT, &past, &is);
	assert_int_equal(is.not_before_s, past.not_before_s);
	assert_int_equal(is.not_after_s, past.not_after_s);
	assert_int_equal(openssl_verify(cap, is.cert_pem,
					X509_PURPOSE_SSL_CLIENT),
			 X509_V_ERR_CERT_HAS_EXPIRED);
	struct ht_pki_identity id;
	assert_int_equal(check_client(ca, is.cert_pem, HT_PKI_AT_NOW, &id),
			 HT_PKI_EXPIRED);
	/* At a time inside the leaf's window the chain still fails: the CA
	 * (valid from now - 300 s) did not exist yet. */
	assert_int_equal(check_client(ca, is.cert_pem, past.not_after_s, &id),
			 HT_PKI_NOT_YET_VALID);
	ht_pki_issued_clear(&is);

	struct ht_pki_validity recent = {now - 100, now + 100};
	issue_client(ca, "bankA", HT_PKI_ROLE_PARTICIPANT, &recent, &is);
	assert_int_equal(check_client(ca, is.cert_pem, now, &id), HT_PKI_OK);
	/* OpenSSL 3.0 counts notAfter itself as expired. */
	assert_int_equal(check_client(ca, is.cert_pem, now + 99, &id),
			 HT_PKI_OK);
	assert_int_equal(check_client(ca, is.cert_pem, now + 100, &id),
			 HT_PKI_EXPIRED);
	assert_int_equal(check_client(ca, is.cert_pem, now - 100, &id),
			 HT_PKI_OK);
	assert_int_equal(check_client(ca, is.cert_pem, now - 101, &id),
			 HT_PKI_NOT_YET_VALID);
	ht_pki_issued_clear(&is);

	struct ht_pki_validity future = {now + DAY_S, now + 2 * DAY_S};
	issue_client(ca, "bankA", HT_PKI_ROLE_PARTICIPANT, &future, &is);
	assert_int_equal(openssl_verify(cap, is.cert_pem,
					X509_PURPOSE_SSL_CLIENT),
			 X509_V_ERR_CERT_NOT_YET_VALID);
	assert_int_equal(check_client(ca, is.cert_pem, HT_PKI_AT_NOW, &id),
			 HT_PKI_NOT_YET_VALID);
	assert_int_equal(check_client(ca, is.cert_pem, now + DAY_S + 1, &id),
			 HT_PKI_OK);
	ht_pki_issued_clear(&is);

	struct ht_pki_validity inverted = {now, now};
	assert_int_equal(ht_pki_issue_client(ca, "bankA",
					     HT_PKI_ROLE_PARTICIPANT,
					     &inverted, &is),
			 HT_ERR_INVALID);
	inverted.not_after_s = now - 1;
	assert_int_equal(ht_pki_issue_server(ca, NULL, 0, &inverted, &is),
			 HT_ERR_INVALID);
	free(cap);
	ht_pki_ca_destroy(ca);
}

/* DER of a PEM certificate into a malloc'd buffer. */
static unsigned char *cert_der(const char *pem, int *len)
{
	X509 *x = pem_x509(pem);
	unsigned char *der = NULL;
	*len = i2d_X509(x, &der);
	assert_true(*len > 0);
	X509_free(x);
	return der;
}

static char *der_to_pem(const unsigned char *der, int len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, len);
	if (!x)
		return NULL;
	char *pem = x509_pem(x);
	X509_free(x);
	return pem;
}

static void test_reject_tampered(void **state)
{
	(void)state;
	struct ht_pki_ca *ca = make_ca("tamper");
	char *cap = ca_pem(ca);
	struct ht_pki_issued is;
	issue_client(ca, "bankA", HT_PKI_ROLE_PARTICIPANT, NULL, &is);
	struct ht_pki_identity id;

	/* Rename the participant inside the signed part (CN and URI). */
	int len;
	unsigned char *der = cert_der(is.cert_pem, &len);
	int changed = 0;
	for (int i = 0; i + 5 <= len; i++) {
		if (!memcmp(der + i, "bankA", 5)) {
			der[i + 4] = 'B';
			changed++;
		}
	}
	assert_int_equal(changed, 2);
	char *pem = der_to_pem(der, len);
	assert_non_null(pem);
	assert_int_equal(openssl_verify(cap, pem, X509_PURPOSE_SSL_CLIENT),
			 X509_V_ERR_CERT_SIGNATURE_FAILURE);
	assert_int_equal(check_client(ca, pem, HT_PKI_AT_NOW, &id),
			 HT_PKI_BAD_SIGNATURE);
	free(pem);
	OPENSSL_free(der);

	/* Flip a bit in the signature's last byte (still valid DER). */
	der = cert_der(is.cert_pem, &len);
	der[len - 1] ^= 0x01;
	pem = der_to_pem(der, len);
	assert_non_null(pem);
	assert_int_equal(check_client(ca, pem, HT_PKI_AT_NOW, &id),
			 HT_PKI_BAD_SIGNATURE);
	free(pem);
	OPENSSL_free(der);

	/* Not a certificate at all. */
	assert_int_equal(check_client(ca, "-----BEGIN CERTIFICATE-----\nAAAA\n"
					  "-----END CERTIFICATE-----\n",
				      HT_PKI_AT_NOW, &id),
			 HT_PKI_NOT_CERTIFICATE);
	assert_int_equal(check_client(ca, is.key_pem, HT_PKI_AT_NOW, &id),
			 HT_PKI_NOT_CERTIFICATE);
	enum ht_pki_result r;
	assert_int_equal(ht_pki_verify_client_x509(ca, NULL, HT_PKI_AT_NOW, &r,
						   &id),
			 HT_OK);
	assert_int_equal(r, HT_PKI_NOT_CERTIFICATE);
	/* The untouched certificate still passes: the flaws did it. */
	assert_int_equal(check_client(ca, is.cert_pem, HT_PKI_AT_NOW, &id),
			 HT_PKI_OK);
	ht_pki_issued_clear(&is);
	free(cap);
	ht_pki_ca_destroy(ca);
}

/* A client certificate built by hand and signed with the CA's key: CN,
 * zero or more URIs, and the EKU given. */
static char *forge(const struct ht_pki_ca *ca, const char *cn,
		   const char *const *uris, size_t n_uris, const char *eku,
		   const char *basic_constraints)
{
	char *kp = NULL;
	size_t kl = 0;
	assert_int_equal(ht_pki_ca_key_pem(ca, &kp, &kl), HT_OK);
	EVP_PKEY *ca_key = pem_key(kp);
	free(kp);
	X509 *cax = ht_pki_ca_x509(ca);
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(key);
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
	X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName,
				   MBSTRING_UTF8, (const unsigned char *)cn, -1,
				   -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(cax));
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), DAY_S);
	X509_set_pubkey(x, key);
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, cax, x, NULL, NULL, 0);
	X509_EXTENSION *ext =
		X509V3_EXT_conf_nid(NULL, &ctx, NID_ext_key_usage, eku);
	assert_non_null(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier,
				  "keyid:always");
	assert_non_null(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (basic_constraints) {
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
					  basic_constraints);
		assert_non_null(ext);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (n_uris > 0) {
		GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
		for (size_t i = 0; i < n_uris; i++) {
			GENERAL_NAME *g = GENERAL_NAME_new();
			ASN1_IA5STRING *s = ASN1_IA5STRING_new();
			ASN1_STRING_set(s, uris[i], -1);
			GENERAL_NAME_set0_value(g, GEN_URI, s);
			sk_GENERAL_NAME_push(gens, g);
		}
		assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name,
						   gens, 0, 0),
				 1);
		GENERAL_NAMES_free(gens);
	}
	assert_true(X509_sign(x, ca_key, EVP_sha256()) > 0);
	char *pem = x509_pem(x);
	X509_free(x);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
	return pem;
}

static int openssl_verify_ca(const struct ht_pki_ca *ca, const char *pem)
{
	char *cap = ca_pem(ca);
	int code = openssl_verify(cap, pem, X509_PURPOSE_SSL_CLIENT);
	free(cap);
	return code;
}

static enum ht_pki_result forged_result(const struct ht_pki_ca *ca,
					const char *cn, const char *uri,
					const char *eku)
{
	const char *uris[] = {uri};
	char *pem = forge(ca, cn, uris, uri ? 1 : 0, eku, NULL);
	struct ht_pki_identity id;
	enum ht_pki_result r = check_client(ca, pem, HT_PKI_AT_NOW, &id);
	free(pem);
	return r;
}

static void test_reject_identity(void **state)
{
	(void)state;
	struct ht_pki_ca *ca = make_ca("ident");
	const char *good = "urn:huitong:participant:bankA:role:participant";
	/* The hand-built certificate passes when nothing is wrong with it. */
	assert_int_equal(forged_result(ca, "bankA", good, "clientAuth"),
			 HT_PKI_OK);

	assert_int_equal(forged_result(ca, "bankA", NULL, "clientAuth"),
			 HT_PKI_NO_IDENTITY);
	assert_int_equal(forged_result(ca, "bankA", "https://bankA.example/",
				       "clientAuth"),
			 HT_PKI_NO_IDENTITY);
	const char *bad_uris[] = {
		"urn:huitong:participant:bank A:role:participant",
		"urn:huitong:participant::role:participant",
		"urn:huitong:participant:bankA:role:root",
		"urn:huitong:participant:bankA:role:",
		"urn:huitong:participant:bankA",
		"urn:huitong:participant:bankA:rol:participant",
		"urn:huitong:participant:bankA:role:participant:x",
		"urn:huitong:operator:bankA:role:operator",
		"URN:HUITONG:participant:bankA:role:operator",
		"urn:huitong:participant:zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
		"zzzzzzzzzzzzzzzzzzzzzzzz:role:participant",
	};
	for (size_t i = 0; i < sizeof bad_uris / sizeof bad_uris[0]; i++)
		assert_int_equal(forged_result(ca, "bankA", bad_uris[i],
					       "clientAuth"),
				 HT_PKI_BAD_IDENTITY);
	/* Two identities, even identical ones, are ambiguous. */
	const char *two[] = {good, "urn:huitong:participant:bankA:role:operator"};
	char *pem = forge(ca, "bankA", two, 2, "clientAuth", NULL);
	struct ht_pki_identity id;
	assert_int_equal(check_client(ca, pem, HT_PKI_AT_NOW, &id),
			 HT_PKI_BAD_IDENTITY);
	free(pem);
	/* A CA certificate with a client identity and clientAuth: OpenSSL's
	 * purpose check lets a CA leaf through, ours does not. */
	const char *one[] = {good};
	pem = forge(ca, "bankA", one, 1, "clientAuth", "critical,CA:TRUE");
	assert_int_equal(openssl_verify_ca(ca, pem), X509_V_OK);
	assert_int_equal(check_client(ca, pem, HT_PKI_AT_NOW, &id),
			 HT_PKI_NOT_CLIENT);
	free(pem);
	pem = forge(ca, "bankA", one, 1, "clientAuth", "critical,CA:FALSE");
	assert_int_equal(check_client(ca, pem, HT_PKI_AT_NOW, &id), HT_PKI_OK);
	free(pem);
	/* The CN must be the id. */
	assert_int_equal(forged_result(ca, "bankB", good, "clientAuth"),
			 HT_PKI_ID_MISMATCH);
	assert_int_equal(forged_result(ca, "bankAA", good, "clientAuth"),
			 HT_PKI_ID_MISMATCH);
	/* A well-formed identity in a certificate not for clients. */
	assert_int_equal(forged_result(ca, "bankA", good, "serverAuth"),
			 HT_PKI_NOT_CLIENT);
	ht_pki_ca_destroy(ca);
}

/* ---- credentials directory ------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static mode_t file_mode(const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 0777;
}

static void write_text(const char *dir, const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

struct creds_fixture {
	struct ht_pki_ca *ca;
	struct ht_pki_issued client;
	char *ca_pem;
	char *signing_pem;
	size_t signing_len;
	struct ht_pki_credentials creds; /* borrows the above */
};

static void creds_setup(struct creds_fixture *f)
{
	memset(f, 0, sizeof *f);
	f->ca = make_ca("creds");
	issue_client(f->ca, "bankA", HT_PKI_ROLE_PARTICIPANT, NULL, &f->client);
	f->ca_pem = ca_pem(f->ca);
	struct ht_key *k = NULL;
	assert_int_equal(ht_key_generate(HT_SIGN_SM2, NULL, &k), HT_OK);
	assert_int_equal(ht_key_private_pem(k, &f->signing_pem,
					    &f->signing_len),
			 HT_OK);
	ht_key_destroy(k);
	struct ht_pki_credentials *c = &f->creds;
	snprintf(c->id, sizeof c->id, "bankA");
	c->role = HT_PKI_ROLE_PARTICIPANT;
	c->url = "https://127.0.0.1:8443";
	c->key_pem = f->client.key_pem;
	c->key_len = f->client.key_len;
	c->cert_pem = f->client.cert_pem;
	c->cert_len = f->client.cert_len;
	c->ca_pem = f->ca_pem;
	c->ca_len = strlen(f->ca_pem);
	c->signing_key_pem = f->signing_pem;
	c->signing_key_len = f->signing_len;
	c->signing_alg = HT_SIGN_SM2;
}

static void creds_teardown(struct creds_fixture *f)
{
	ht_pki_issued_clear(&f->client);
	free(f->ca_pem);
	free(f->signing_pem);
	ht_pki_ca_destroy(f->ca);
}

static void test_credentials_round_trip(void **state)
{
	(void)state;
	struct creds_fixture f;
	creds_setup(&f);
	char base[] = "/tmp/ht_pki_test_XXXXXX";
	assert_non_null(mkdtemp(base));
	char dir[256];
	snprintf(dir, sizeof dir, "%s/bankA", base);

	assert_int_equal(ht_pki_write_credentials(dir, &f.creds, false), HT_OK);
	assert_int_equal(file_mode(base, "bankA"), 0700);
	assert_int_equal(file_mode(dir, "client.key"), 0600);
	assert_int_equal(file_mode(dir, "signing.key"), 0600);
	assert_int_equal(file_mode(dir, "client.crt"), 0644);
	assert_int_equal(file_mode(dir, "ca.crt"), 0644);

	/* credentials.json as documented. */
	char path[512];
	snprintf(path, sizeof path, "%s/credentials.json", dir);
	json_t *o = json_load_file(path, 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "id")), "bankA");
	assert_string_equal(json_string_value(json_object_get(o, "role")),
			    "participant");
	assert_string_equal(json_string_value(json_object_get(o, "url")),
			    "https://127.0.0.1:8443");
	assert_string_equal(json_string_value(json_object_get(o, "key")),
			    "client.key");
	assert_string_equal(json_string_value(json_object_get(o, "cert")),
			    "client.crt");
	assert_string_equal(json_string_value(json_object_get(o, "ca")),
			    "ca.crt");
	assert_string_equal(json_string_value(json_object_get(o, "signing_alg")),
			    "sm2");
	json_decref(o);

	struct ht_pki_credentials back;
	assert_int_equal(ht_pki_read_credentials(dir, &back), HT_OK);
	assert_string_equal(back.id, "bankA");
	assert_int_equal(back.role, HT_PKI_ROLE_PARTICIPANT);
	assert_string_equal(back.url, f.creds.url);
	assert_string_equal(back.key_pem, f.creds.key_pem);
	assert_int_equal(back.key_len, f.creds.key_len);
	assert_string_equal(back.cert_pem, f.creds.cert_pem);
	assert_string_equal(back.ca_pem, f.creds.ca_pem);
	assert_string_equal(back.signing_key_pem, f.signing_pem);
	assert_int_equal(back.signing_alg, HT_SIGN_SM2);
	/* What was read is usable: the CA in it accepts the certificate. */
	struct ht_pki_ca *ca2 = NULL;
	assert_int_equal(ht_pki_ca_from_pem(back.ca_pem, back.ca_len, NULL, 0,
					    &ca2),
			 HT_OK);
	struct ht_pki_identity id;
	assert_int_equal(check_client(ca2, back.cert_pem, HT_PKI_AT_NOW, &id),
			 HT_PKI_OK);
	assert_string_equal(id.serial_hex, f.client.serial_hex);
	ht_pki_ca_destroy(ca2);
	ht_pki_credentials_clear(&back);
	assert_null(back.key_pem);
	ht_pki_credentials_clear(NULL);
	rm_tree(base);
	creds_teardown(&f);
}

static void test_credentials_overwrite(void **state)
{
	(void)state;
	struct creds_fixture f;
	creds_setup(&f);
	char base[] = "/tmp/ht_pki_test_XXXXXX";
	assert_non_null(mkdtemp(base));
	char dir[256], path[512];
	snprintf(dir, sizeof dir, "%s/bankA", base);
	assert_int_equal(ht_pki_write_credentials(dir, &f.creds, false), HT_OK);
	struct ht_pki_credentials back;

	/* Non-empty: refused unless asked; overwrite without a signing key
	 * and url removes both. */
	assert_int_equal(ht_pki_write_credentials(dir, &f.creds, false),
			 HT_ERR_EXISTS);
	f.creds.signing_key_pem = NULL;
	f.creds.url = NULL;
	assert_int_equal(ht_pki_write_credentials(dir, &f.creds, true), HT_OK);
	assert_int_equal(ht_pki_read_credentials(dir, &back), HT_OK);
	assert_null(back.url);
	assert_null(back.signing_key_pem);
	ht_pki_credentials_clear(&back);
	snprintf(path, sizeof path, "%s/signing.key", dir);
	assert_int_not_equal(access(path, F_OK), 0);

	/* An existing empty directory is fine; a file is not a directory. */
	snprintf(dir, sizeof dir, "%s/empty", base);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(ht_pki_write_credentials(dir, &f.creds, false), HT_OK);
	write_text(base, "plain", "x");
	snprintf(dir, sizeof dir, "%s/plain", base);
	assert_int_equal(ht_pki_write_credentials(dir, &f.creds, true),
			 HT_ERR_EXISTS);
	rm_tree(base);
	creds_teardown(&f);
}

static void test_credentials_write_rejects(void **state)
{
	(void)state;
	struct creds_fixture f;
	creds_setup(&f);
	char base[] = "/tmp/ht_pki_test_XXXXXX";
	assert_non_null(mkdtemp(base));
	char dir[256];
	snprintf(dir, sizeof dir, "%s/c", base);

	/* Writing: a key that is not the certificate's, bad id/role/url. */
	struct ht_pki_issued other;
	issue_client(f.ca, "bankB", HT_PKI_ROLE_PARTICIPANT, NULL, &other);
	struct ht_pki_credentials c = f.creds;
	c.key_pem = other.key_pem;
	c.key_len = other.key_len;
	assert_int_equal(ht_pki_write_credentials(dir, &c, false),
			 HT_ERR_INVALID);
	c = f.creds;
	snprintf(c.id, sizeof c.id, "bank A");
	assert_int_equal(ht_pki_write_credentials(dir, &c, false),
			 HT_ERR_INVALID);
	c = f.creds;
	c.role = (enum ht_pki_role)9;
	assert_int_equal(ht_pki_write_credentials(dir, &c, false),
			 HT_ERR_INVALID);
	c = f.creds;
	c.url = "https://x/\"y";
	assert_int_equal(ht_pki_write_credentials(dir, &c, false),
			 HT_ERR_INVALID);
	struct stat st;
	assert_int_not_equal(stat(dir, &st), 0); /* nothing was created */
	ht_pki_issued_clear(&other);
	rm_tree(base);
	creds_teardown(&f);
}

static void test_credentials_read_rejects(void **state)
{
	(void)state;
	struct creds_fixture f;
	creds_setup(&f);
	char base[] = "/tmp/ht_pki_test_XXXXXX";
	assert_non_null(mkdtemp(base));
	char dir[256];
	snprintf(dir, sizeof dir, "%s/c", base);
	/* Missing, then each broken member. */
	struct ht_pki_credentials back;
	assert_int_equal(ht_pki_read_credentials(dir, &back), HT_ERR_NOT_FOUND);
	assert_int_equal(ht_pki_write_credentials(dir, &f.creds, false), HT_OK);
	assert_int_equal(ht_pki_read_credentials(dir, &back), HT_OK);
	ht_pki_credentials_clear(&back);
	static const char *const bad_json[] = {
		"{\"id\":\"bankA\",\"role\":\"participant\",\"key\":\"../c/client.key\","
		"\"cert\":\"client.crt\",\"ca\":\"ca.crt\"}",
		"{\"id\":\"bankA\",\"role\":\"participant\",\"key\":\"/etc/passwd\","
		"\"cert\":\"client.crt\",\"ca\":\"ca.crt\"}",
		"{\"id\":\"bankA\",\"role\":\"participant\",\"key\":\"..\","
		"\"cert\":\"client.crt\",\"ca\":\"ca.crt\"}",
		"{\"id\":\"bankA\",\"role\":\"admin\",\"key\":\"client.key\","
		"\"cert\":\"client.crt\",\"ca\":\"ca.crt\"}",
		"{\"id\":\"bank A\",\"role\":\"participant\",\"key\":\"client.key\","
		"\"cert\":\"client.crt\",\"ca\":\"ca.crt\"}",
		"{\"id\":\"bankA\",\"role\":\"participant\",\"key\":\"client.key\","
		"\"cert\":\"client.crt\"}",
		"{\"id\":\"bankA\",\"role\":\"participant\",\"key\":\"ca.crt\","
		"\"cert\":\"client.crt\",\"ca\":\"ca.crt\"}",
		"{\"id\":\"bankA\",\"role\":\"participant\",\"key\":\"client.key\","
		"\"cert\":\"client.crt\",\"ca\":\"ca.crt\",\"url\":7}",
		"{\"id\":\"bankA\",\"role\":\"participant\",\"key\":\"client.key\","
		"\"cert\":\"client.crt\",\"ca\":\"ca.crt\",\"signing_key\":"
		"\"client.key\",\"signing_alg\":\"rsa\"}",
		"{\"id\":\"bankA\",\"id\":\"bankB\",\"role\":\"participant\","
		"\"key\":\"client.key\",\"cert\":\"client.crt\",\"ca\":\"ca.crt\"}",
		"[1,2]",
		"{\"id\":",
	};
	for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
		write_text(dir, "credentials.json", bad_json[i]);
		assert_int_equal(ht_pki_read_credentials(dir, &back),
				 HT_ERR_INVALID);
		assert_null(back.key_pem);
	}
	/* A named file that is missing, and one too large. */
	write_text(dir, "credentials.json",
		   "{\"id\":\"bankA\",\"role\":\"participant\",\"key\":\"nope\","
		   "\"cert\":\"client.crt\",\"ca\":\"ca.crt\"}");
	assert_int_equal(ht_pki_read_credentials(dir, &back), HT_ERR_NOT_FOUND);
	char *big = malloc(HT_PKI_PEM_BYTES_MAX + 2);
	memset(big, 'A', HT_PKI_PEM_BYTES_MAX + 1);
	big[HT_PKI_PEM_BYTES_MAX + 1] = '\0';
	write_text(dir, "huge", big);
	free(big);
	write_text(dir, "credentials.json",
		   "{\"id\":\"bankA\",\"role\":\"participant\",\"key\":\"client.key\","
		   "\"cert\":\"client.crt\",\"ca\":\"huge\"}");
	assert_int_equal(ht_pki_read_credentials(dir, &back), HT_ERR_LIMIT);
	/* A good file again reads fine (the failures were the flaws). */
	write_text(dir, "credentials.json",
		   "{\"id\":\"bankA\",\"role\":\"operator\",\"key\":\"client.key\","
		   "\"cert\":\"client.crt\",\"ca\":\"ca.crt\"}");
	assert_int_equal(ht_pki_read_credentials(dir, &back), HT_OK);
	assert_int_equal(back.role, HT_PKI_ROLE_OPERATOR);
	ht_pki_credentials_clear(&back);
	rm_tree(base);
	creds_teardown(&f);
}

/* ---- credentials: the members added for the API ----------------------- */

/* The fixture plus a signing key id and the hub's public journal key
 * (kept in f->hub_pub, freed by the caller). */
static char *creds_add_api_members(struct creds_fixture *f,
				   enum ht_sign_alg hub_alg, char **hub_priv)
{
	struct ht_key *k = NULL;
	char *pub = NULL;
	size_t pub_len = 0, priv_len = 0;
	assert_int_equal(ht_key_generate(hub_alg, NULL, &k), HT_OK);
	assert_int_equal(ht_key_public_pem(k, &pub, &pub_len), HT_OK);
	assert_int_equal(ht_key_private_pem(k, hub_priv, &priv_len), HT_OK);
	ht_key_destroy(k);
	snprintf(f->creds.signing_key_id, sizeof f->creds.signing_key_id,
		 "bankA:1");
	f->creds.hub_key_pem = pub;
	f->creds.hub_key_len = pub_len;
	f->creds.hub_sign_alg = hub_alg;
	return pub;
}

static void test_credentials_api_members(void **state)
{
	(void)state;
	struct creds_fixture f;
	creds_setup(&f);
	char *hub_priv = NULL;
	char *hub_pub = creds_add_api_members(&f, HT_SIGN_ED25519, &hub_priv);
	char base[] = "/tmp/ht_pki_test_XXXXXX";
	assert_non_null(mkdtemp(base));
	char dir[256], path[512];
	snprintf(dir, sizeof dir, "%s/bankA", base);
	assert_int_equal(ht_pki_write_credentials(dir, &f.creds, false), HT_OK);
	assert_int_equal(file_mode(dir, "hub-key.pub"), 0644);
	assert_int_equal(file_mode(dir, "signing.key"), 0600);

	snprintf(path, sizeof path, "%s/credentials.json", dir);
	json_t *o = json_load_file(path, 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o,
							      "signing_key_id")),
			    "bankA:1");
	assert_string_equal(json_string_value(json_object_get(o, "hub_key")),
			    "hub-key.pub");
	assert_string_equal(json_string_value(json_object_get(o,
							      "hub_sign_alg")),
			    "ed25519");
	json_decref(o);

	struct ht_pki_credentials back;
	assert_int_equal(ht_pki_read_credentials(dir, &back), HT_OK);
	assert_string_equal(back.signing_key_id, "bankA:1");
	assert_non_null(back.hub_key_pem);
	assert_string_equal(back.hub_key_pem, hub_pub);
	assert_int_equal(back.hub_key_len, strlen(hub_pub));
	assert_int_equal(back.hub_sign_alg, HT_SIGN_ED25519);
	assert_int_equal(back.signing_alg, HT_SIGN_SM2);
	/* The hub key read back verifies what the hub's private key signs. */
	struct ht_key *priv = NULL, *pub = NULL;
	uint8_t sig[HT_SIG_BYTES_MAX];
	size_t sig_len = 0;
	assert_int_equal(ht_key_from_pem(hub_priv, strlen(hub_priv), NULL,
					 &priv),
			 HT_OK);
	assert_int_equal(ht_sign(priv, "head", 4, sig, &sig_len), HT_OK);
	assert_int_equal(ht_key_from_pem(back.hub_key_pem, back.hub_key_len,
					 NULL, &pub),
			 HT_OK);
	assert_int_equal(ht_verify(pub, "head", 4, sig, sig_len), HT_OK);
	ht_key_destroy(priv);
	ht_key_destroy(pub);
	ht_pki_credentials_clear(&back);
	assert_null(back.hub_key_pem);

	/* Overwriting without the new members removes them. */
	f.creds.hub_key_pem = NULL;
	f.creds.signing_key_id[0] = '\0';
	assert_int_equal(ht_pki_write_credentials(dir, &f.creds, true), HT_OK);
	snprintf(path, sizeof path, "%s/hub-key.pub", dir);
	assert_int_not_equal(access(path, F_OK), 0);
	assert_int_equal(ht_pki_read_credentials(dir, &back), HT_OK);
	assert_string_equal(back.signing_key_id, "");
	assert_null(back.hub_key_pem);
	ht_pki_credentials_clear(&back);
	rm_tree(base);
	free(hub_pub);
	free(hub_priv);
	creds_teardown(&f);
}

static void test_credentials_api_write_rejects(void **state)
{
	(void)state;
	struct creds_fixture f;
	creds_setup(&f);
	char *hub_priv = NULL;
	char *hub_pub = creds_add_api_members(&f, HT_SIGN_SM2, &hub_priv);
	char base[] = "/tmp/ht_pki_test_XXXXXX";
	assert_non_null(mkdtemp(base));
	char dir[256];
	snprintf(dir, sizeof dir, "%s/c", base);
	struct ht_pki_credentials c = f.creds;
	/* The hub's PRIVATE key must never reach a client. */
	c.hub_key_pem = hub_priv;
	c.hub_key_len = strlen(hub_priv);
	assert_int_equal(ht_pki_write_credentials(dir, &c, false),
			 HT_ERR_INVALID);
	c = f.creds;
	c.hub_sign_alg = HT_SIGN_ED25519; /* not the key's algorithm */
	assert_int_equal(ht_pki_write_credentials(dir, &c, false),
			 HT_ERR_INVALID);
	c = f.creds;
	c.hub_sign_alg = (enum ht_sign_alg)9;
	assert_int_equal(ht_pki_write_credentials(dir, &c, false),
			 HT_ERR_INVALID);
	c = f.creds;
	c.hub_key_pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
	c.hub_key_len = strlen(c.hub_key_pem);
	assert_int_equal(ht_pki_write_credentials(dir, &c, false),
			 HT_ERR_INVALID);
	c = f.creds;
	c.signing_key_pem = NULL; /* a key id without a key */
	assert_int_equal(ht_pki_write_credentials(dir, &c, false),
			 HT_ERR_INVALID);
	c = f.creds;
	snprintf(c.signing_key_id, sizeof c.signing_key_id, "bank A:1");
	assert_int_equal(ht_pki_write_credentials(dir, &c, false),
			 HT_ERR_INVALID);
	c = f.creds;
	memset(c.signing_key_id, 'k', HT_REQSIG_KEY_ID_BYTES_MAX + 1);
	c.signing_key_id[HT_REQSIG_KEY_ID_BYTES_MAX + 1] = '\0';
	assert_int_equal(ht_pki_write_credentials(dir, &c, false),
			 HT_ERR_INVALID);
	c.signing_key_id[HT_REQSIG_KEY_ID_BYTES_MAX] = '\0'; /* 64: fine */
	struct stat st;
	assert_int_not_equal(stat(dir, &st), 0); /* nothing was created */
	assert_int_equal(ht_pki_write_credentials(dir, &c, false), HT_OK);
	struct ht_pki_credentials back;
	assert_int_equal(ht_pki_read_credentials(dir, &back), HT_OK);
	assert_int_equal(strlen(back.signing_key_id),
			 HT_REQSIG_KEY_ID_BYTES_MAX);
	ht_pki_credentials_clear(&back);
	rm_tree(base);
	free(hub_pub);
	free(hub_priv);
	creds_teardown(&f);
}

static void test_credentials_api_read_rejects(void **state)
{
	(void)state;
	struct creds_fixture f;
	creds_setup(&f);
	char *hub_priv = NULL;
	char *hub_pub = creds_add_api_members(&f, HT_SIGN_SM2, &hub_priv);
	char base[] = "/tmp/ht_pki_test_XXXXXX";
	assert_non_null(mkdtemp(base));
	char dir[256];
	snprintf(dir, sizeof dir, "%s/c", base);
	assert_int_equal(ht_pki_write_credentials(dir, &f.creds, false), HT_OK);
	write_text(dir, "hub-priv.pem", hub_priv);
	write_text(dir, "hub-ed.pub", "not a key");
#define BASE_JSON                                                          \
	"{\"id\":\"bankA\",\"role\":\"participant\",\"key\":\"client.key\"," \
	"\"cert\":\"client.crt\",\"ca\":\"ca.crt\",\"signing_key\":"      \
	"\"signing.key\",\"signing_alg\":\"sm2\""
	static const char *const bad_json[] = {
		BASE_JSON ",\"hub_key\":\"hub-key.pub\"}",
		BASE_JSON ",\"hub_sign_alg\":\"sm2\"}",
		BASE_JSON ",\"hub_key\":\"hub-key.pub\",\"hub_sign_alg\":\"rsa\"}",
		BASE_JSON ",\"hub_key\":\"hub-key.pub\","
			  "\"hub_sign_alg\":\"ed25519\"}",
		BASE_JSON ",\"hub_key\":\"hub-priv.pem\",\"hub_sign_alg\":\"sm2\"}",
		BASE_JSON ",\"hub_key\":\"hub-ed.pub\",\"hub_sign_alg\":\"sm2\"}",
		BASE_JSON ",\"hub_key\":\"../c/hub-key.pub\","
			  "\"hub_sign_alg\":\"sm2\"}",
		BASE_JSON ",\"signing_key_id\":\"bank A:1\"}",
		BASE_JSON ",\"signing_key_id\":7}",
		BASE_JSON ",\"signing_key_id\":\"\"}",
		BASE_JSON ",\"signing_key_id\":\"a\\u0000b\"}",
		BASE_JSON ",\"signing_key_id\":\"0123456789012345678901234567890"
			  "1234567890123456789012345678901234\"}",
		"{\"id\":\"bankA\",\"role\":\"participant\",\"key\":\"client.key\","
		"\"cert\":\"client.crt\",\"ca\":\"ca.crt\","
		"\"signing_key_id\":\"bankA:1\"}",
	};
	struct ht_pki_credentials back;
	for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
		write_text(dir, "credentials.json", bad_json[i]);
		assert_int_equal(ht_pki_read_credentials(dir, &back),
				 HT_ERR_INVALID);
		assert_null(back.key_pem);
		assert_null(back.hub_key_pem);
	}
	/* A named hub key that is missing. */
	write_text(dir, "credentials.json",
		   BASE_JSON ",\"hub_key\":\"nope.pub\",\"hub_sign_alg\":\"sm2\"}");
	assert_int_equal(ht_pki_read_credentials(dir, &back), HT_ERR_NOT_FOUND);
	/* The same members, well formed, read fine; 64-byte key ids too. */
	write_text(dir, "credentials.json",
		   BASE_JSON ",\"signing_key_id\":\"0123456789012345678901234567"
			     "890123456789012345678901234567890123\","
			     "\"hub_key\":\"hub-key.pub\",\"hub_sign_alg\":\"sm2\"}");
	assert_int_equal(ht_pki_read_credentials(dir, &back), HT_OK);
	assert_int_equal(strlen(back.signing_key_id), 64);
	assert_string_equal(back.hub_key_pem, hub_pub);
	ht_pki_credentials_clear(&back);
#undef BASE_JSON
	rm_tree(base);
	free(hub_pub);
	free(hub_priv);
	creds_teardown(&f);
}

/* ---- mutual TLS 1.3 over a socketpair --------------------------------- */

static void ctx_use_pair(SSL_CTX *ctx, const char *cert_pem,
			 const char *key_pem)
{
	X509 *x = pem_x509(cert_pem);
	EVP_PKEY *k = pem_key(key_pem);
	assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, k), 1);
	assert_int_equal(SSL_CTX_check_private_key(ctx), 1);
	X509_free(x);
	EVP_PKEY_free(k);
}

static SSL_CTX *tls_ctx(bool server, const struct ht_pki_ca *trust,
			const char *cert_pem, const char *key_pem)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() :
					    TLS_client_method());
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION), 1);
	assert_int_equal(SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION), 1);
	if (cert_pem)
		ctx_use_pair(ctx, cert_pem, key_pem);
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	assert_int_equal(X509_STORE_add_cert(store, ht_pki_ca_x509(trust)), 1);
	SSL_CTX_set_verify(ctx,
			   server ? SSL_VERIFY_PEER |
					    SSL_VERIFY_FAIL_IF_NO_PEER_CERT :
				    SSL_VERIFY_PEER,
			   NULL);
	return ctx;
}

struct tls_pair {
	SSL *server;
	SSL *client;
	int fds[2];
	bool server_ok, client_ok;
};

static void step(SSL *ssl, bool is_server, bool *done, bool *failed)
{
	if (*done || *failed)
		return;
	int rc = is_server ? SSL_accept(ssl) : SSL_connect(ssl);
	if (rc == 1) {
		*done = true;
		return;
	}
	int e = SSL_get_error(ssl, rc);
	if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
		*failed = true;
}

/* Run both ends of a handshake in this thread until each has finished or
 * failed (bounded: a handshake is a few flights). */
static void handshake(SSL_CTX *sctx, SSL_CTX *cctx, struct tls_pair *p)
{
	memset(p, 0, sizeof *p);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fds), 0);
	for (int i = 0; i < 2; i++)
		fcntl(p->fds[i], F_SETFL, O_NONBLOCK);
	p->server = SSL_new(sctx);
	p->client = SSL_new(cctx);
	SSL_set_fd(p->server, p->fds[0]);
	SSL_set_fd(p->client, p->fds[1]);
	assert_int_equal(SSL_set1_host(p->client, "localhost"), 1);
	bool s_failed = false, c_failed = false;
	for (int i = 0; i < 100; i++) {
		step(p->client, false, &p->client_ok, &c_failed);
		step(p->server, true, &p->server_ok, &s_failed);
		if ((p->client_ok || c_failed) && (p->server_ok || s_failed))
			break;
	}
	ERR_clear_error();
}

/* Send msg from one end, read it at the other; true when it arrived. */
static bool transfer(SSL *from, SSL *to, const char *msg)
{
	size_t len = strlen(msg);
	if (SSL_write(from, msg, (int)len) != (int)len)
		return false;
	char buf[64] = {0};
	for (int i = 0; i < 100; i++) {
		int n = SSL_read(to, buf, sizeof buf - 1);
		if (n > 0)
			return (size_t)n == len && !memcmp(buf, msg, len);
		int e = SSL_get_error(to, n);
		if (e != SSL_ERROR_WANT_READ)
			return false;
		/* Let the sender flush anything it still owes (e.g. the
		 * server's session tickets). */
		char dummy;
		SSL_read(from, &dummy, 0);
	}
	return false;
}

/* After a failed handshake the client must not get any data through:
 * the server's alert ends its connection. */
static bool client_reads_nothing(struct tls_pair *p)
{
	char buf[16];
	SSL_write(p->client, "ping", 4);
	for (int i = 0; i < 100; i++) {
		int n = SSL_read(p->client, buf, sizeof buf);
		if (n > 0)
			return false;
		int e = SSL_get_error(p->client, n);
		if (e != SSL_ERROR_WANT_READ)
			return true;
	}
	return false;
}

static void tls_pair_free(struct tls_pair *p)
{
	SSL_free(p->server);
	SSL_free(p->client);
	close(p->fds[0]);
	close(p->fds[1]);
	ERR_clear_error();
}

struct tls_world {
	struct ht_pki_ca *ca, *other;
	struct ht_pki_issued server, client, stranger;
	SSL_CTX *sctx;
};

static void tls_world_setup(struct tls_world *w)
{
	memset(w, 0, sizeof *w);
	w->ca = make_ca("tls");
	w->other = make_ca("tls");
	assert_int_equal(ht_pki_issue_server(w->ca, NULL, 0, NULL, &w->server),
			 HT_OK);
	issue_client(w->ca, "bankA", HT_PKI_ROLE_OPERATOR, NULL, &w->client);
	issue_client(w->other, "bankA", HT_PKI_ROLE_OPERATOR, NULL,
		     &w->stranger);
	w->sctx = tls_ctx(true, w->ca, w->server.cert_pem, w->server.key_pem);
}

static void tls_world_teardown(struct tls_world *w)
{
	SSL_CTX_free(w->sctx);
	ht_pki_issued_clear(&w->server);
	ht_pki_issued_clear(&w->client);
	ht_pki_issued_clear(&w->stranger);
	ht_pki_ca_destroy(w->ca);
	ht_pki_ca_destroy(w->other);
}

static void test_mtls_ok(void **state)
{
	(void)state;
	struct tls_world w;
	tls_world_setup(&w);
	SSL_CTX *cctx = tls_ctx(false, w.ca, w.client.cert_pem,
				w.client.key_pem);
	struct tls_pair p;
	handshake(w.sctx, cctx, &p);
	assert_true(p.client_ok);
	assert_true(p.server_ok);
	assert_int_equal(SSL_version(p.server), TLS1_3_VERSION);
	assert_int_equal(SSL_version(p.client), TLS1_3_VERSION);
	assert_int_equal(SSL_get_verify_result(p.server), X509_V_OK);
	assert_int_equal(SSL_get_verify_result(p.client), X509_V_OK);
	assert_true(transfer(p.client, p.server, "ping"));
	assert_true(transfer(p.server, p.client, "pong"));

	/* The server learns who is calling from the verified certificate. */
	X509 *peer = SSL_get0_peer_certificate(p.server);
	assert_non_null(peer);
	enum ht_pki_result r;
	struct ht_pki_identity id;
	assert_int_equal(ht_pki_verify_client_x509(w.ca, peer, HT_PKI_AT_NOW,
						   &r, &id),
			 HT_OK);
	assert_int_equal(r, HT_PKI_OK);
	assert_string_equal(id.id, "bankA");
	assert_int_equal(id.role, HT_PKI_ROLE_OPERATOR);
	assert_string_equal(id.serial_hex, w.client.serial_hex);
	tls_pair_free(&p);
	SSL_CTX_free(cctx);
	tls_world_teardown(&w);
}

static void test_mtls_no_client_cert(void **state)
{
	(void)state;
	struct tls_world w;
	tls_world_setup(&w);
	SSL_CTX *cctx = tls_ctx(false, w.ca, NULL, NULL);
	struct tls_pair p;
	handshake(w.sctx, cctx, &p);
	assert_false(p.server_ok);
	assert_null(SSL_get0_peer_certificate(p.server));
	assert_true(client_reads_nothing(&p));
	tls_pair_free(&p);
	SSL_CTX_free(cctx);
	tls_world_teardown(&w);
}

static void test_mtls_other_ca(void **state)
{
	(void)state;
	struct tls_world w;
	tls_world_setup(&w);
	SSL_CTX *cctx = tls_ctx(false, w.ca, w.stranger.cert_pem,
				w.stranger.key_pem);
	struct tls_pair p;
	handshake(w.sctx, cctx, &p);
	assert_false(p.server_ok);
	long vr = SSL_get_verify_result(p.server);
	assert_true(vr == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
		    vr == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE);
	assert_true(client_reads_nothing(&p));
	tls_pair_free(&p);
	SSL_CTX_free(cctx);

	/* And a client that trusts another CA refuses the hub. */
	cctx = tls_ctx(false, w.other, w.client.cert_pem, w.client.key_pem);
	handshake(w.sctx, cctx, &p);
	assert_false(p.client_ok);
	assert_int_not_equal(SSL_get_verify_result(p.client), X509_V_OK);
	assert_false(p.server_ok);
	tls_pair_free(&p);
	SSL_CTX_free(cctx);
	tls_world_teardown(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_ca_create),
		cmocka_unit_test(test_ca_names),
		cmocka_unit_test(test_ca_pem_round_trip),
		cmocka_unit_test(test_ca_pem_refused),
		cmocka_unit_test(test_server_cert),
		cmocka_unit_test(test_server_bad_names),
		cmocka_unit_test(test_client_cert),
		cmocka_unit_test(test_client_ids),
		cmocka_unit_test(test_client_serials),
		cmocka_unit_test(test_reject_other_ca),
		cmocka_unit_test(test_reject_time),
		cmocka_unit_test(test_reject_tampered),
		cmocka_unit_test(test_reject_identity),
		cmocka_unit_test(test_credentials_round_trip),
		cmocka_unit_test(test_credentials_overwrite),
		cmocka_unit_test(test_credentials_write_rejects),
		cmocka_unit_test(test_credentials_read_rejects),
		cmocka_unit_test(test_credentials_api_members),
		cmocka_unit_test(test_credentials_api_write_rejects),
		cmocka_unit_test(test_credentials_api_read_rejects),
		cmocka_unit_test(test_mtls_ok),
		cmocka_unit_test(test_mtls_no_client_cert),
		cmocka_unit_test(test_mtls_other_ca),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

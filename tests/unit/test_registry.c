/*
 * test_registry.c — the hub's trust registry: PKI files in the data
 * directory (idempotence, atomic pairs, interrupted and half pairs), the
 * registry database (add, rotate, revoke, grace, refusals), the view
 * (lookups by key id, serial and participant; iteration; lazily made
 * public keys raced by threads; refcounts), change detection across two
 * connections, credentials written by add, and loading 10,000
 * participants in well under a second.
 *
 * Certificates and keys are checked with OpenSSL and crypto.h directly,
 * and rows are planted with SQLite directly, so the tests do not only
 * agree with the code they test.
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
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sqlite3.h>

#include "huitong/registry.h"

/* ---- helpers --------------------------------------------------------- */

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

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static mode_t mode_of(const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 0777;
}

static bool exists(const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static char *slurp(const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char *buf = calloc(1, 1 << 16);
	size_t n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void spit(const char *dir, const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void move(const char *dir, const char *from, const char *to)
{
	char a[512], b[512];
	snprintf(a, sizeof a, "%s/%s", dir, from);
	snprintf(b, sizeof b, "%s/%s", dir, to);
	assert_int_equal(rename(a, b), 0);
}

static void unlink_in(const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	assert_int_equal(unlink(path), 0);
}

/* A data directory as `huitong init` leaves it: a hub journal key (what
 * ht_hub_init writes) and the PKI files and registry. */
struct world {
	char base[64];
	char data[128];
	char *hub_pub; /* the journal's public key PEM */
	enum ht_sign_alg hub_alg;
	struct ht_registry *r;
};

static void world_hub_key(struct world *w, enum ht_sign_alg alg)
{
	struct ht_key *k = NULL;
	char *priv = NULL;
	size_t len = 0, pub_len = 0;
	assert_int_equal(ht_key_generate(alg, NULL, &k), HT_OK);
	assert_int_equal(ht_key_private_pem(k, &priv, &len), HT_OK);
	assert_int_equal(ht_key_public_pem(k, &w->hub_pub, &pub_len), HT_OK);
	ht_key_destroy(k);
	spit(w->data, HT_REGISTRY_FILE_HUB_KEY, priv);
	free(priv);
	w->hub_alg = alg;
}

static void world_setup(struct world *w, enum ht_sign_alg hub_alg)
{
	memset(w, 0, sizeof *w);
	snprintf(w->base, sizeof w->base, "/tmp/ht_reg_test_XXXXXX");
	assert_non_null(mkdtemp(w->base));
	snprintf(w->data, sizeof w->data, "%s/hub-one", w->base);
	assert_int_equal(mkdir(w->data, 0700), 0);
	world_hub_key(w, hub_alg);
	assert_int_equal(ht_registry_init_pki(w->data, NULL, 0), HT_OK);
	assert_int_equal(ht_registry_open(w->data, false, &w->r), HT_OK);
}

static void world_teardown(struct world *w)
{
	ht_registry_close(w->r);
	free(w->hub_pub);
	if (!getenv("HT_KEEP"))
		rm_tree(w->base);
}

static void out_dir(const struct world *w, const char *name, char *buf,
		    size_t size)
{
	snprintf(buf, size, "%s/%s", w->base, name);
}

/* Add id with the given role and alg (0 = defaults) into base/<id>. */
static enum ht_err add(struct world *w, const char *id, enum ht_pki_role role,
		       enum ht_sign_alg alg, int64_t now,
		       struct ht_registry_issued *out)
{
	char dir[256];
	out_dir(w, id, dir, sizeof dir);
	struct ht_registry_add_options o = {
		.id = id, .role = role, .alg = alg, .out_dir = dir, .now_s = now};
	return ht_registry_add(w->r, &o, out);
}

static enum ht_err rotate(struct world *w, const char *id, const char *dir,
			  uint32_t grace, int64_t now,
			  struct ht_registry_issued *out)
{
	struct ht_registry_rotate_options o = {
		.id = id, .out_dir = dir, .grace_s = grace, .now_s = now};
	return ht_registry_rotate(w->r, &o, out);
}

static struct ht_registry_view *view(struct world *w)
{
	struct ht_registry_view *v = NULL;
	assert_int_equal(ht_registry_view_load(w->r, &v), HT_OK);
	assert_non_null(v);
	return v;
}

static X509 *pem_x509(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(x);
	return x;
}

static void sql(const char *data, const char *stmt)
{
	char path[512];
	snprintf(path, sizeof path, "%s/registry.db", data);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	char *msg = NULL;
	int rc = sqlite3_exec(db, stmt, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		fprintf(stderr, "sql: %s\n", msg);
	sqlite3_free(msg);
	assert_int_equal(rc, SQLITE_OK);
	sqlite3_close(db);
}

/* ---- names -------------------------------------------------------------- */

static void test_ids(void **state)
{
	(void)state;
	char id[80];
	memset(id, 'a', sizeof id);
	assert_true(ht_registry_id_valid(id, 1));
	assert_true(ht_registry_id_valid(id, HT_REGISTRY_ID_BYTES_MAX));
	assert_false(ht_registry_id_valid(id, HT_REGISTRY_ID_BYTES_MAX + 1));
	assert_false(ht_registry_id_valid(id, 0));
	assert_false(ht_registry_id_valid("a:b", 3));
	assert_false(ht_registry_id_valid("a b", 3));
	assert_true(ht_registry_id_valid("bank-A.1_x", 10));
	/* The longest id with the largest key number is a valid key id. */
	char key_id[HT_REGISTRY_KEY_ID_SIZE + 8];
	id[HT_REGISTRY_ID_BYTES_MAX] = '\0';
	int n = snprintf(key_id, sizeof key_id, "%s:%u", id,
			 HT_REGISTRY_KEY_SEQ_MAX);
	assert_int_equal(n, HT_REQSIG_KEY_ID_BYTES_MAX);
	struct ht_reqsig s = {.alg = HT_SIGN_SM2, .ts = 1, .sig_len = 1};
	memcpy(s.key_id, key_id, (size_t)n + 1);
	snprintf(s.nonce, sizeof s.nonce, "AAAAAAAAAAAAAAAAAAAAAA");
	char header[HT_REQSIG_HEADER_BYTES_MAX + 1];
	assert_int_equal(ht_reqsig_format(&s, header, sizeof header, NULL),
			 HT_OK);
	struct ht_reqsig back;
	assert_int_equal(ht_reqsig_parse(header, strlen(header), &back),
			 HT_REQSIG_OK);
	assert_string_equal(back.key_id, key_id);
	assert_true(ht_registry_revoked_at(100, 100));
	assert_true(ht_registry_revoked_at(100, 101));
	assert_false(ht_registry_revoked_at(100, 99));
	assert_false(ht_registry_revoked_at(0, 1LL << 40));
}

/* The init-time check of server names agrees with what the issuer takes. */
static void test_server_names_agree(void **state)
{
	(void)state;
	static const char *const names[] = {
		"hub.example.com", "a", "10.0.0.1", "::1", "fe80::1",
		"2001:db8::42", "xn--fiqs8s.cn", "a-b.c-d", "1.2.3", "",
		"-a.com", "a-.com", "a..b", ".a", "a.", "*.example.com",
		"exa mple.com", "a_b.com", "256.1.1.1", "hub.example.com:8443",
		"0123456789012345678901234567890123456789012345678901234567890123.x",
		"012345678901234567890123456789012345678901234567890123456789012.x",
	};
	struct ht_pki_ca *ca = NULL;
	assert_int_equal(ht_pki_ca_create("names", &ca), HT_OK);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		struct ht_pki_issued is;
		const char *one[] = {names[i]};
		enum ht_err issue = ht_pki_issue_server(ca, one, 1, NULL, &is);
		ht_pki_issued_clear(&is);
		size_t bad = 99;
		enum ht_err check = ht_registry_check_server_names(one, 1, &bad);
		if (issue != check)
			fprintf(stderr, "disagree on '%s': %d vs %d\n",
				names[i], issue, check);
		assert_int_equal(issue, check);
		if (check)
			assert_int_equal(bad, 0);
	}
	const char *many[HT_PKI_SERVER_NAMES_MAX + 1];
	for (size_t i = 0; i < HT_PKI_SERVER_NAMES_MAX + 1; i++)
		many[i] = "a.example";
	assert_int_equal(ht_registry_check_server_names(
				 many, HT_PKI_SERVER_NAMES_MAX, NULL),
			 HT_OK);
	assert_int_equal(ht_registry_check_server_names(
				 many, HT_PKI_SERVER_NAMES_MAX + 1, NULL),
			 HT_ERR_LIMIT);
	ht_pki_ca_destroy(ca);
}

/* ---- PKI files ------------------------------------------------------------- */

static void test_init_pki(void **state)
{
	(void)state;
	struct world w;
	world_setup(&w, HT_SIGN_SM2);
	assert_true(ht_registry_pki_complete(w.data));
	assert_int_equal(mode_of(w.data, "ca.key"), 0600);
	assert_int_equal(mode_of(w.data, "server.key"), 0600);
	assert_int_equal(mode_of(w.data, "registry.db"), 0600);
	assert_int_equal(mode_of(w.data, "ca.crt") & 0600, 0600);
	assert_false(exists(w.data, ".ca.key.tmp"));
	assert_false(exists(w.data, ".server.crt.tmp"));
	/* The CA is named after the data directory. */
	char *ca_pem = slurp(w.data, "ca.crt");
	X509 *ca = pem_x509(ca_pem);
	char cn[128];
	X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn,
				  sizeof cn);
	assert_string_equal(cn, "huitong hub CA hub-one");
	/* Idempotent: nothing is replaced. */
	char *key_before = slurp(w.data, "ca.key");
	char *srv_before = slurp(w.data, "server.crt");
	const char *names[] = {"other.example"};
	assert_int_equal(ht_registry_init_pki(w.data, names, 1), HT_OK);
	char *key_after = slurp(w.data, "ca.key");
	char *srv_after = slurp(w.data, "server.crt");
	assert_string_equal(key_before, key_after);
	assert_string_equal(srv_before, srv_after);
	/* The loader: a verify-only CA and the server pair, which chains to
	 * the CA and names localhost and the loopbacks. */
	struct ht_pki_ca *lca = NULL;
	char *cert = NULL, *key = NULL;
	size_t cert_len = 0, key_len = 0;
	assert_int_equal(ht_registry_load_pki(w.data, &lca, &cert, &cert_len,
					      &key, &key_len),
			 HT_OK);
	assert_false(ht_pki_ca_can_issue(lca));
	assert_string_equal(cert, srv_before);
	assert_int_equal(strlen(key), key_len);
	X509 *srv = pem_x509(cert);
	assert_int_equal(X509_check_host(srv, "localhost", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(srv, "127.0.0.1", 0), 1);
	assert_int_equal(X509_check_ip_asc(srv, "::1", 0), 1);
	assert_int_equal(X509_check_host(srv, "other.example", 0, 0, NULL), 0);
	EVP_PKEY *capub = X509_get0_pubkey(ca);
	assert_int_equal(X509_verify(srv, capub), 1);
	X509_free(srv);
	X509_free(ca);
	ht_pki_ca_destroy(lca);
	free(cert);
	free(key);
	free(ca_pem);
	free(key_before);
	free(key_after);
	free(srv_before);
	free(srv_after);
	world_teardown(&w);
}

static void test_init_pki_names_and_refusals(void **state)
{
	(void)state;
	char base[] = "/tmp/ht_reg_test_XXXXXX";
	assert_non_null(mkdtemp(base));
	const char *names[] = {"hub.example.com", "10.1.2.3"};
	const char *bad[] = {"hub.example.com", "not a name"};
	assert_int_equal(ht_registry_init_pki(base, bad, 2), HT_ERR_INVALID);
	assert_false(exists(base, "ca.key")); /* checked before anything */
	assert_int_equal(ht_registry_init_pki(base, names, 2), HT_OK);
	char *pem = slurp(base, "server.crt");
	X509 *srv = pem_x509(pem);
	assert_int_equal(X509_check_host(srv, "hub.example.com", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(srv, "10.1.2.3", 0), 1);
	X509_free(srv);
	free(pem);
	char missing[128];
	snprintf(missing, sizeof missing, "%s/nope", base);
	assert_int_equal(ht_registry_init_pki(missing, NULL, 0),
			 HT_ERR_NOT_FOUND);
	struct ht_pki_ca *ca = NULL;
	char *c = NULL, *k = NULL;
	size_t cl = 0, kl = 0;
	assert_int_equal(ht_registry_load_pki(missing, &ca, &c, &cl, &k, &kl),
			 HT_ERR_NOT_FOUND);
	unlink_in(base, "server.key");
	assert_int_equal(ht_registry_load_pki(base, &ca, &c, &cl, &k, &kl),
			 HT_ERR_NOT_FOUND);
	assert_null(ca);
	assert_null(c);
	assert_null(k);
	rm_tree(base);
}

/* An init stopped between the renames of a pair is completed; half pairs
 * and server files without a CA are refused and nothing is made. */
static void test_init_pki_crash_states(void **state)
{
	(void)state;
	char base[] = "/tmp/ht_reg_test_XXXXXX";
	assert_non_null(mkdtemp(base));
	assert_int_equal(ht_registry_init_pki(base, NULL, 0), HT_OK);
	char *ca_crt = slurp(base, "ca.crt");
	char *srv_crt = slurp(base, "server.crt");

	/* Key renamed, certificate still under its temporary name. */
	move(base, "ca.crt", ".ca.crt.tmp");
	move(base, "server.crt", ".server.crt.tmp");
	assert_int_equal(ht_registry_init_pki(base, NULL, 0), HT_OK);
	char *again = slurp(base, "ca.crt");
	assert_string_equal(again, ca_crt);
	free(again);
	again = slurp(base, "server.crt");
	assert_string_equal(again, srv_crt);
	free(again);
	assert_false(exists(base, ".ca.crt.tmp"));

	/* A temporary certificate that is not the key's is not completed. */
	struct ht_pki_ca *other = NULL;
	char *other_pem = NULL;
	size_t other_len = 0;
	assert_int_equal(ht_pki_ca_create("other", &other), HT_OK);
	assert_int_equal(ht_pki_ca_cert_pem(other, &other_pem, &other_len),
			 HT_OK);
	unlink_in(base, "ca.crt");
	spit(base, ".ca.crt.tmp", other_pem);
	assert_int_equal(ht_registry_init_pki(base, NULL, 0), HT_ERR_CORRUPT);
	assert_false(exists(base, "ca.crt"));
	/* Half a pair: refused, never replaced. */
	unlink_in(base, ".ca.crt.tmp");
	assert_int_equal(ht_registry_init_pki(base, NULL, 0), HT_ERR_CORRUPT);
	assert_false(exists(base, "ca.crt"));
	spit(base, "ca.crt", ca_crt);
	unlink_in(base, "server.key");
	assert_int_equal(ht_registry_init_pki(base, NULL, 0), HT_ERR_CORRUPT);
	assert_false(exists(base, "server.key"));
	/* Server files without a CA: no new CA is made. */
	unlink_in(base, "ca.crt");
	unlink_in(base, "ca.key");
	assert_int_equal(ht_registry_init_pki(base, NULL, 0), HT_ERR_CORRUPT);
	assert_false(exists(base, "ca.key"));
	/* A CA pair that does not belong together. */
	unlink_in(base, "server.crt");
	assert_int_equal(ht_registry_init_pki(base, NULL, 0), HT_OK);
	spit(base, "ca.crt", other_pem);
	assert_int_equal(ht_registry_init_pki(base, NULL, 0), HT_ERR_CORRUPT);
	ht_pki_ca_destroy(other);
	free(other_pem);
	free(ca_crt);
	free(srv_crt);
	rm_tree(base);
}

/* ---- the database ------------------------------------------------------------- */

static void test_open_refusals(void **state)
{
	(void)state;
	struct world w;
	world_setup(&w, HT_SIGN_SM2);
	struct ht_registry *r = NULL;
	char dir[256];
	out_dir(&w, "none", dir, sizeof dir);
	assert_int_equal(ht_registry_open(dir, false, &r), HT_ERR_NOT_FOUND);
	assert_null(r);
	/* A newer schema. */
	sql(w.data, "UPDATE meta SET value = '2' WHERE key = 'schema_version'");
	assert_int_equal(ht_registry_open(w.data, true, &r), HT_ERR_UNSUPPORTED);
	sql(w.data, "UPDATE meta SET value = '1' WHERE key = 'schema_version'");
	assert_int_equal(ht_registry_open(w.data, true, &r), HT_OK);
	/* Readonly: no writes. */
	struct ht_registry_add_options o = {.id = "x", .out_dir = dir};
	assert_int_equal(ht_registry_add(r, &o, NULL), HT_ERR_INVALID);
	assert_int_equal(ht_registry_revoke(r, "x", NULL, 0, NULL),
			 HT_ERR_INVALID);
	ht_registry_close(r);
	ht_registry_close(NULL);
	/* Not a database. */
	out_dir(&w, "junk", dir, sizeof dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	spit(dir, "registry.db", "this is not SQLite, not at all, no no no no"
				 " no no no no no no no no no no no no no no");
	assert_int_not_equal(ht_registry_open(dir, false, &r), HT_OK);
	assert_null(r);
	world_teardown(&w);
}

/* A request signed with credentials c verifies with the view's key for
 * c's key id. */
static void check_signs(struct world *w, const struct ht_pki_credentials *c)
{
	struct ht_key *sk = NULL;
	assert_int_equal(ht_key_from_pem(c->signing_key_pem, c->signing_key_len,
					 NULL, &sk),
			 HT_OK);
	char header[HT_REQSIG_HEADER_BYTES_MAX + 1];
	assert_int_equal(ht_reqsig_sign(sk, c->signing_key_id, "POST",
					"/v1/transfers", "{}", 2, 1000, NULL,
					header, sizeof header, NULL),
			 HT_OK);
	struct ht_reqsig s;
	assert_int_equal(ht_reqsig_parse(header, strlen(header), &s),
			 HT_REQSIG_OK);
	struct ht_registry_view *v = view(w);
	struct ht_registry_key_info k;
	assert_int_equal(ht_registry_view_key(v, s.key_id, &k), HT_OK);
	assert_non_null(k.public_key);
	enum ht_reqsig_result vr;
	assert_int_equal(ht_reqsig_verify(&s, k.public_key, "POST",
					  "/v1/transfers", "{}", 2, 1000,
					  HT_REQSIG_WINDOW_S, &vr),
			 HT_OK);
	assert_int_equal(vr, HT_REQSIG_OK);
	ht_registry_view_unref(v);
	ht_key_destroy(sk);
}

/* The credentials add wrote for id, checked against what it returned. */
static void check_added(struct world *w, const struct ht_pki_ca *ca,
			const char *ca_pem, const char *id,
			enum ht_pki_role role, enum ht_sign_alg alg,
			const struct ht_registry_issued *is)
{
	char want[80], dir[256];
	snprintf(want, sizeof want, "%s:1", id);
	assert_string_equal(is->key_id, want);
	assert_int_equal(is->role, role);
	assert_int_equal(is->alg, alg);
	assert_int_equal(strlen(is->cert_serial), 32);
	out_dir(w, id, dir, sizeof dir);
	assert_int_equal(mode_of(dir, "client.key"), 0600);
	assert_int_equal(mode_of(dir, "signing.key"), 0600);
	assert_int_equal(mode_of(w->base, id), 0700);
	struct ht_pki_credentials c;
	assert_int_equal(ht_pki_read_credentials(dir, &c), HT_OK);
	assert_string_equal(c.id, id);
	assert_int_equal(c.role, role);
	assert_string_equal(c.url, HT_REGISTRY_URL_DEFAULT);
	assert_string_equal(c.signing_key_id, want);
	assert_int_equal(c.signing_alg, alg);
	assert_string_equal(c.hub_key_pem, w->hub_pub);
	assert_int_equal(c.hub_sign_alg, w->hub_alg);
	assert_string_equal(c.ca_pem, ca_pem);
	/* The certificate is the hub CA's, for this id and role, with the
	 * serial the registry holds. */
	enum ht_pki_result res;
	struct ht_pki_identity ident;
	assert_int_equal(ht_pki_verify_client_pem(ca, c.cert_pem, c.cert_len,
						  HT_PKI_AT_NOW, &res, &ident),
			 HT_OK);
	assert_int_equal(res, HT_PKI_OK);
	assert_string_equal(ident.id, id);
	assert_int_equal(ident.role, role);
	assert_string_equal(ident.serial_hex, is->cert_serial);
	assert_int_equal(ident.not_after_s, is->cert_not_after_s);
	check_signs(w, &c);
	ht_pki_credentials_clear(&c);
}

/* add: every role and algorithm, and the credentials it writes. */
static void test_add(void **state)
{
	(void)state;
	struct world w;
	world_setup(&w, HT_SIGN_ED25519);
	static const struct {
		const char *id;
		enum ht_pki_role role;
		enum ht_sign_alg alg;
	} cases[] = {
		{"bankA", 0, 0},
		{"ops", HT_PKI_ROLE_OPERATOR, HT_SIGN_ED25519},
		{"pboc", HT_PKI_ROLE_REGULATOR, HT_SIGN_ECDSA_P256},
	};
	char *ca_pem = slurp(w.data, "ca.crt");
	struct ht_pki_ca *ca = NULL;
	assert_int_equal(ht_pki_ca_from_pem(ca_pem, strlen(ca_pem), NULL, 0,
					    &ca),
			 HT_OK);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct ht_registry_issued is;
		assert_int_equal(add(&w, cases[i].id, cases[i].role,
				     cases[i].alg, 0, &is),
				 HT_OK);
		check_added(&w, ca, ca_pem, cases[i].id,
			    cases[i].role ? cases[i].role :
					    HT_PKI_ROLE_PARTICIPANT,
			    cases[i].alg ? cases[i].alg : HT_SIGN_SM2, &is);
	}
	ht_pki_ca_destroy(ca);
	free(ca_pem);
	world_teardown(&w);
}

static void test_add_refusals(void **state)
{
	(void)state;
	struct world w;
	world_setup(&w, HT_SIGN_SM2);
	char dir[256], id57[64], id65[72];
	assert_int_equal(add(&w, "bankA", 0, 0, 0, NULL), HT_OK);
	/* Duplicate: refused, and the other directory is not made. */
	struct ht_registry_add_options o = {.id = "bankA"};
	out_dir(&w, "dup", dir, sizeof dir);
	o.out_dir = dir;
	assert_int_equal(ht_registry_add(w.r, &o, NULL), HT_ERR_EXISTS);
	assert_false(exists(w.base, "dup"));
	/* A revoked id stays taken. */
	assert_int_equal(ht_registry_revoke(w.r, "bankA", NULL, 0, NULL), HT_OK);
	assert_int_equal(ht_registry_add(w.r, &o, NULL), HT_ERR_EXISTS);
	/* Bad ids, roles, algorithms. */
	memset(id57, 'b', 57);
	id57[57] = '\0';
	memset(id65, 'c', 65);
	id65[65] = '\0';
	static const char *const bad_ids[] = {"", "bank A", "a:b", "a/b", "é"};
	for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
		o.id = bad_ids[i];
		assert_int_equal(ht_registry_add(w.r, &o, NULL), HT_ERR_INVALID);
	}
	o.id = NULL;
	assert_int_equal(ht_registry_add(w.r, &o, NULL), HT_ERR_INVALID);
	o.id = id57; /* a valid certificate id, too long for key ids */
	assert_int_equal(ht_registry_add(w.r, &o, NULL), HT_ERR_LIMIT);
	id57[56] = '\0';
	o.id = id65;
	assert_int_equal(ht_registry_add(w.r, &o, NULL), HT_ERR_INVALID);
	o.id = "bankB";
	o.role = (enum ht_pki_role)9;
	assert_int_equal(ht_registry_add(w.r, &o, NULL), HT_ERR_INVALID);
	o.role = 0;
	o.alg = (enum ht_sign_alg)7;
	assert_int_equal(ht_registry_add(w.r, &o, NULL), HT_ERR_INVALID);
	o.alg = 0;
	o.url = "https://x/\"y";
	assert_int_equal(ht_registry_add(w.r, &o, NULL), HT_ERR_INVALID);
	o.url = NULL;
	o.out_dir = NULL;
	assert_int_equal(ht_registry_add(w.r, &o, NULL), HT_ERR_INVALID);
	/* A non-empty directory without force: nothing is registered. */
	out_dir(&w, "full", dir, sizeof dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	spit(dir, "keep.txt", "mine");
	o.out_dir = dir;
	assert_int_equal(ht_registry_add(w.r, &o, NULL), HT_ERR_EXISTS);
	assert_true(exists(dir, "keep.txt"));
	assert_false(exists(dir, "client.key"));
	/* Credentials that cannot be written: nothing is registered. */
	out_dir(&w, "no/such/parent", dir, sizeof dir);
	assert_int_equal(ht_registry_add(w.r, &o, NULL), HT_ERR_IO);
	struct ht_registry_view *v = view(&w);
	struct ht_registry_participant_info p;
	assert_int_equal(ht_registry_view_participant(v, "bankB", &p),
			 HT_ERR_NOT_FOUND);
	assert_int_equal(ht_registry_view_participant_count(v), 1);
	ht_registry_view_unref(v);
	/* With force into the non-empty one; the longest id works. */
	out_dir(&w, "full", dir, sizeof dir);
	o.force = true;
	assert_int_equal(ht_registry_add(w.r, &o, NULL), HT_OK);
	assert_true(exists(dir, "client.key"));
	struct ht_registry_issued is;
	o.id = id57;
	out_dir(&w, "long", dir, sizeof dir);
	assert_int_equal(ht_registry_add(w.r, &o, &is), HT_OK);
	assert_int_equal(strlen(is.key_id), HT_REGISTRY_ID_BYTES_MAX + 2);
	/* Missing PKI material. */
	unlink_in(w.data, HT_REGISTRY_FILE_HUB_KEY);
	o.id = "bankC";
	out_dir(&w, "c", dir, sizeof dir);
	assert_int_equal(ht_registry_add(w.r, &o, NULL), HT_ERR_NOT_FOUND);
	assert_false(exists(w.base, "c"));
	world_teardown(&w);
}

/* rotate: new key n+1, older keys retired at now + grace (earlier times
 * kept), refusals. */
static void test_rotate(void **state)
{
	(void)state;
	struct world w;
	world_setup(&w, HT_SIGN_SM2);
	char dir[256];
	struct ht_registry_issued is1, is2, is3;
	assert_int_equal(add(&w, "bankA", 0, HT_SIGN_ED25519, 1000, &is1),
			 HT_OK);
	out_dir(&w, "bankA-2", dir, sizeof dir);
	assert_int_equal(rotate(&w, "bankA", dir, 300, 2000, &is2), HT_OK);
	assert_string_equal(is2.key_id, "bankA:2");
	assert_int_equal(is2.alg, HT_SIGN_ED25519); /* the newest key's */
	assert_int_equal(is2.keys_retired, 1);
	assert_int_equal(is2.keys_retired_at_s, 2300);
	assert_string_not_equal(is2.cert_serial, is1.cert_serial);
	struct ht_pki_credentials c;
	assert_int_equal(ht_pki_read_credentials(dir, &c), HT_OK);
	assert_string_equal(c.signing_key_id, "bankA:2");
	ht_pki_credentials_clear(&c);

	struct ht_registry_view *v = view(&w);
	struct ht_registry_key_info k1, k2;
	assert_int_equal(ht_registry_view_key(v, "bankA:1", &k1), HT_OK);
	assert_int_equal(ht_registry_view_key(v, "bankA:2", &k2), HT_OK);
	assert_int_equal(k1.revoked_s, 2300);
	assert_false(ht_registry_revoked_at(k1.revoked_s, 2299));
	assert_true(ht_registry_revoked_at(k1.revoked_s, 2300));
	assert_int_equal(k2.revoked_s, 0);
	/* The certificate of key 1 goes with it. */
	assert_int_equal(ht_registry_view_cert(v, is1.cert_serial, &k1), HT_OK);
	assert_string_equal(k1.key_id, "bankA:1");
	assert_int_equal(k1.revoked_s, 2300);
	assert_null(k1.public_key);
	ht_registry_view_unref(v);

	/* Rotating again sooner brings every older key forward; an alg may
	 * be chosen. */
	struct ht_registry_rotate_options o = {.id = "bankA", .out_dir = dir,
					       .force = true, .now_s = 2100,
					       .alg = HT_SIGN_SM2};
	assert_int_equal(ht_registry_rotate(w.r, &o, &is3), HT_OK);
	assert_string_equal(is3.key_id, "bankA:3");
	assert_int_equal(is3.alg, HT_SIGN_SM2);
	assert_int_equal(is3.keys_retired, 2);
	/* ... and a later, longer grace never postpones a revocation. */
	o.now_s = 2200;
	o.grace_s = 1000;
	assert_int_equal(ht_registry_rotate(w.r, &o, &is3), HT_OK);
	assert_int_equal(is3.keys_retired, 1); /* only key 3 */
	v = view(&w);
	assert_int_equal(ht_registry_view_key(v, "bankA:1", &k1), HT_OK);
	assert_int_equal(k1.revoked_s, 2100);
	assert_int_equal(ht_registry_view_key(v, "bankA:3", &k1), HT_OK);
	assert_int_equal(k1.revoked_s, 3200);
	ht_registry_view_unref(v);

	/* Refusals. */
	o.id = "nobody";
	assert_int_equal(ht_registry_rotate(w.r, &o, NULL), HT_ERR_NOT_FOUND);
	o.id = "bankA";
	o.grace_s = HT_REGISTRY_GRACE_S_MAX + 1;
	assert_int_equal(ht_registry_rotate(w.r, &o, NULL), HT_ERR_INVALID);
	o.grace_s = 0;
	o.alg = (enum ht_sign_alg)8;
	assert_int_equal(ht_registry_rotate(w.r, &o, NULL), HT_ERR_INVALID);
	o.alg = 0;
	o.force = false; /* dir holds the last credentials */
	assert_int_equal(ht_registry_rotate(w.r, &o, NULL), HT_ERR_EXISTS);
	assert_int_equal(ht_registry_revoke(w.r, "bankA", NULL, 2500, NULL),
			 HT_OK);
	o.force = true;
	assert_int_equal(ht_registry_rotate(w.r, &o, NULL), HT_ERR_INVALID);
	v = view(&w);
	struct ht_registry_participant_info p;
	assert_int_equal(ht_registry_view_participant(v, "bankA", &p), HT_OK);
	assert_int_equal(p.key_count, 4); /* nothing more was made */
	ht_registry_view_unref(v);
	world_teardown(&w);
}

static void test_revoke(void **state)
{
	(void)state;
	struct world w;
	world_setup(&w, HT_SIGN_SM2);
	char dir[256];
	assert_int_equal(add(&w, "bankA", 0, 0, 1000, NULL), HT_OK);
	assert_int_equal(add(&w, "bankB", 0, 0, 1000, NULL), HT_OK);
	out_dir(&w, "bankA-2", dir, sizeof dir);
	assert_int_equal(rotate(&w, "bankA", dir, 600, 1100, NULL), HT_OK);
	bool changed = false;
	/* One key: bankA:1 was retiring at 1700; revoking brings it to now. */
	assert_int_equal(ht_registry_revoke(w.r, "bankA", "bankA:1", 1200,
					    &changed),
			 HT_OK);
	assert_true(changed);
	assert_int_equal(ht_registry_revoke(w.r, "bankA", "bankA:1", 1300,
					    &changed),
			 HT_OK);
	assert_false(changed); /* idempotent: the earlier time stays */
	/* Another participant's key, unknown keys and ids. */
	assert_int_equal(ht_registry_revoke(w.r, "bankB", "bankA:2", 1300,
					    &changed),
			 HT_ERR_NOT_FOUND);
	assert_int_equal(ht_registry_revoke(w.r, "bankA", "bankA:9", 1300,
					    &changed),
			 HT_ERR_NOT_FOUND);
	assert_int_equal(ht_registry_revoke(w.r, "nobody", NULL, 1300, &changed),
			 HT_ERR_NOT_FOUND);
	assert_int_equal(ht_registry_revoke(w.r, "bad id", NULL, 1300, &changed),
			 HT_ERR_INVALID);
	struct ht_registry_view *v = view(&w);
	struct ht_registry_key_info k;
	assert_int_equal(ht_registry_view_key(v, "bankA:1", &k), HT_OK);
	assert_int_equal(k.revoked_s, 1200);
	assert_int_equal(ht_registry_view_key(v, "bankA:2", &k), HT_OK);
	assert_int_equal(k.revoked_s, 0);
	ht_registry_view_unref(v);
	/* The participant: every key, once. */
	assert_int_equal(ht_registry_revoke(w.r, "bankA", NULL, 1400, &changed),
			 HT_OK);
	assert_true(changed);
	assert_int_equal(ht_registry_revoke(w.r, "bankA", NULL, 1500, &changed),
			 HT_OK);
	assert_false(changed);
	v = view(&w);
	struct ht_registry_participant_info p;
	assert_int_equal(ht_registry_view_participant(v, "bankA", &p), HT_OK);
	assert_int_equal(p.revoked_s, 1400);
	assert_int_equal(ht_registry_view_key(v, "bankA:1", &k), HT_OK);
	assert_int_equal(k.revoked_s, 1200);
	assert_int_equal(ht_registry_view_key(v, "bankA:2", &k), HT_OK);
	assert_int_equal(k.revoked_s, 1400);
	assert_int_equal(ht_registry_view_participant(v, "bankB", &p), HT_OK);
	assert_int_equal(p.revoked_s, 0);
	ht_registry_view_unref(v);
	/* A participant revoked by hand in the database (keys untouched)
	 * still revokes its keys in the view. */
	sql(w.data, "UPDATE participants SET revoked_s = 1600 WHERE id = 'bankB'");
	v = view(&w);
	assert_int_equal(ht_registry_view_key(v, "bankB:1", &k), HT_OK);
	assert_int_equal(k.revoked_s, 1600);
	ht_registry_view_unref(v);
	world_teardown(&w);
}

/* ---- the view -------------------------------------------------------------------- */

static void test_view_lookups(void **state)
{
	(void)state;
	struct world w;
	world_setup(&w, HT_SIGN_SM2);
	struct ht_registry_issued a1, b1, a2;
	char dir[256];
	assert_int_equal(add(&w, "zeta", HT_PKI_ROLE_OPERATOR, 0, 10, &b1),
			 HT_OK);
	assert_int_equal(add(&w, "alpha", 0, HT_SIGN_ECDSA_P256, 20, &a1), HT_OK);
	out_dir(&w, "alpha-2", dir, sizeof dir);
	assert_int_equal(rotate(&w, "alpha", dir, 0, 30, &a2), HT_OK);
	struct ht_registry_view *v = view(&w);
	assert_int_equal(ht_registry_view_participant_count(v), 2);
	assert_int_equal(ht_registry_view_key_count(v), 3);
	/* Iteration: ids in byte order, keys grouped, oldest first. */
	struct ht_registry_participant_info p;
	struct ht_registry_key_info k;
	ht_registry_view_participant_at(v, 0, &p);
	assert_string_equal(p.id, "alpha");
	assert_int_equal(p.key_count, 2);
	ht_registry_view_key_at(v, p.key_first, &k);
	assert_string_equal(k.key_id, "alpha:1");
	assert_int_equal(k.seq, 1);
	assert_null(k.public_key);
	ht_registry_view_key_at(v, p.key_first + 1, &k);
	assert_string_equal(k.key_id, "alpha:2");
	ht_registry_view_participant_at(v, 1, &p);
	assert_string_equal(p.id, "zeta");
	assert_int_equal(p.role, HT_PKI_ROLE_OPERATOR);
	assert_int_equal(p.created_s, 10);
	/* By key id. */
	assert_int_equal(ht_registry_view_key(v, "alpha:1", &k), HT_OK);
	assert_string_equal(k.participant, "alpha");
	assert_int_equal(k.role, HT_PKI_ROLE_PARTICIPANT);
	assert_int_equal(k.alg, HT_SIGN_ECDSA_P256);
	assert_int_equal(ht_key_alg(k.public_key), HT_SIGN_ECDSA_P256);
	assert_string_equal(k.cert_serial, a1.cert_serial);
	assert_int_equal(k.revoked_s, 30);
	assert_int_equal(k.created_s, 20);
	assert_int_equal(k.cert_not_after_s, a1.cert_not_after_s);
	const struct ht_key *first = k.public_key;
	assert_int_equal(ht_registry_view_key(v, "alpha:1", &k), HT_OK);
	assert_ptr_equal(k.public_key, first); /* made once */
	assert_int_equal(ht_registry_view_key(v, "zeta:1", &k), HT_OK);
	assert_int_equal(ht_key_alg(k.public_key), HT_SIGN_SM2);
	assert_int_equal(k.role, HT_PKI_ROLE_OPERATOR);
	/* By serial and by participant. */
	assert_int_equal(ht_registry_view_cert(v, a2.cert_serial, &k), HT_OK);
	assert_string_equal(k.key_id, "alpha:2");
	assert_string_equal(k.participant, "alpha");
	assert_int_equal(k.revoked_s, 0);
	assert_int_equal(ht_registry_view_participant(v, "zeta", &p), HT_OK);
	assert_int_equal(p.role, HT_PKI_ROLE_OPERATOR);
	assert_int_equal(p.key_count, 1);
	/* Not found, including overlong and odd input. */
	char upper[HT_PKI_SERIAL_HEX_SIZE];
	snprintf(upper, sizeof upper, "%s", a2.cert_serial);
	for (char *c = upper; *c; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 32);
	char longer[200];
	memset(longer, 'a', sizeof longer - 1);
	longer[sizeof longer - 1] = '\0';
	static const char *const keys[] = {"alpha:3", "alpha", "zeta:0", "",
					   "beta:1"};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		assert_int_equal(ht_registry_view_key(v, keys[i], &k),
				 HT_ERR_NOT_FOUND);
	assert_int_equal(ht_registry_view_key(v, longer, &k), HT_ERR_NOT_FOUND);
	assert_int_equal(ht_registry_view_key(v, NULL, &k), HT_ERR_NOT_FOUND);
	assert_int_equal(ht_registry_view_cert(v, longer, &k), HT_ERR_NOT_FOUND);
	if (strcmp(upper, a2.cert_serial))
		assert_int_equal(ht_registry_view_cert(v, upper, &k),
				 HT_ERR_NOT_FOUND);
	assert_int_equal(ht_registry_view_participant(v, longer, &p),
			 HT_ERR_NOT_FOUND);
	assert_int_equal(ht_registry_view_participant(v, "ALPHA", &p),
			 HT_ERR_NOT_FOUND);
	/* A view outlives its registry connection and survives refs. */
	ht_registry_close(w.r);
	w.r = NULL;
	struct ht_registry_view *v2 = ht_registry_view_ref(v);
	assert_ptr_equal(v2, v);
	ht_registry_view_unref(v);
	assert_int_equal(ht_registry_view_key(v2, "alpha:2", &k), HT_OK);
	ht_registry_view_unref(v2);
	ht_registry_view_unref(NULL);
	world_teardown(&w);
}

/* Bad rows fail the load; a stored key that does not load is refused on
 * lookup (and remembered), without failing the others. */
static void test_view_bad_rows(void **state)
{
	(void)state;
	struct world w;
	world_setup(&w, HT_SIGN_SM2);
	assert_int_equal(add(&w, "bankA", 0, 0, 0, NULL), HT_OK);
	assert_int_equal(add(&w, "bankB", 0, HT_SIGN_ED25519, 0, NULL), HT_OK);
	struct ht_registry_view *v = NULL;
	sql(w.data, "UPDATE keys SET cert_serial = upper(cert_serial)"
		    " WHERE key_id = 'bankA:1'");
	assert_int_equal(ht_registry_view_load(w.r, &v), HT_ERR_CORRUPT);
	assert_null(v);
	sql(w.data, "UPDATE keys SET cert_serial = lower(cert_serial)");
	sql(w.data, "UPDATE keys SET created_s = 'soon' WHERE key_id = 'bankA:1'");
	assert_int_equal(ht_registry_view_load(w.r, &v), HT_ERR_CORRUPT);
	sql(w.data, "UPDATE keys SET created_s = 5 WHERE key_id = 'bankA:1'");
	/* A PEM that is no key, and one in a non-canonical form (CRLF). */
	sql(w.data, "UPDATE keys SET public_key_pem = '-----BEGIN PUBLIC KEY-----"
		    "\nAAAA\n-----END PUBLIC KEY-----\n' WHERE key_id = 'bankA:1'");
	sql(w.data, "UPDATE keys SET public_key_pem = replace(public_key_pem,"
		    " char(10), char(13) || char(10)) WHERE key_id = 'bankB:1'");
	v = view(&w);
	struct ht_registry_key_info k;
	assert_int_equal(ht_registry_view_key(v, "bankA:1", &k), HT_ERR_CORRUPT);
	assert_null(k.public_key);
	assert_int_equal(ht_registry_view_key(v, "bankA:1", &k), HT_ERR_CORRUPT);
	assert_int_equal(ht_registry_view_key(v, "bankB:1", &k), HT_OK);
	assert_int_equal(ht_key_alg(k.public_key), HT_SIGN_ED25519);
	ht_registry_view_unref(v);
	/* A key whose alg column is not its key's algorithm. */
	sql(w.data, "UPDATE keys SET alg = 'sm2' WHERE key_id = 'bankB:1'");
	v = view(&w);
	assert_int_equal(ht_registry_view_key(v, "bankB:1", &k), HT_ERR_CORRUPT);
	ht_registry_view_unref(v);
	world_teardown(&w);
}

/* Change detection across two connections: a writer (the CLI) and a
 * readonly reader (the server). */
static void test_changed(void **state)
{
	(void)state;
	struct world w;
	world_setup(&w, HT_SIGN_SM2);
	struct ht_registry *reader = NULL;
	assert_int_equal(ht_registry_open(w.data, true, &reader), HT_OK);
	bool changed = false;
	assert_int_equal(ht_registry_changed(reader, &changed), HT_OK);
	assert_true(changed); /* nothing loaded yet */
	struct ht_registry_view *v = NULL;
	assert_int_equal(ht_registry_view_load(reader, &v), HT_OK);
	assert_int_equal(ht_registry_view_participant_count(v), 0);
	ht_registry_view_unref(v);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ht_registry_changed(reader, &changed), HT_OK);
		assert_false(changed);
	}
	assert_int_equal(add(&w, "bankA", 0, 0, 0, NULL), HT_OK);
	assert_int_equal(ht_registry_changed(reader, &changed), HT_OK);
	assert_true(changed);
	assert_int_equal(ht_registry_changed(reader, &changed), HT_OK);
	assert_true(changed); /* until a reload */
	assert_int_equal(ht_registry_view_load(reader, &v), HT_OK);
	assert_int_equal(ht_registry_view_participant_count(v), 1);
	assert_int_equal(ht_registry_changed(reader, &changed), HT_OK);
	assert_false(changed);
	/* A revocation is seen, and the old view is unchanged. */
	assert_int_equal(ht_registry_revoke(w.r, "bankA", NULL, 0, NULL), HT_OK);
	assert_int_equal(ht_registry_changed(reader, &changed), HT_OK);
	assert_true(changed);
	struct ht_registry_participant_info p;
	assert_int_equal(ht_registry_view_participant(v, "bankA", &p), HT_OK);
	assert_int_equal(p.revoked_s, 0);
	struct ht_registry_view *v2 = NULL;
	assert_int_equal(ht_registry_view_load(reader, &v2), HT_OK);
	assert_int_equal(ht_registry_view_participant(v2, "bankA", &p), HT_OK);
	assert_int_not_equal(p.revoked_s, 0);
	/* A refused revoke (no change) and a readonly load do not count. */
	bool ch = true;
	assert_int_equal(ht_registry_revoke(w.r, "bankA", NULL, 0, &ch), HT_OK);
	assert_false(ch);
	struct ht_registry_view *v3 = view(&w);
	ht_registry_view_unref(v3);
	assert_int_equal(ht_registry_changed(reader, &changed), HT_OK);
	assert_false(changed);
	ht_registry_view_unref(v);
	ht_registry_view_unref(v2);
	ht_registry_close(reader);
	world_teardown(&w);
}

/* Many threads look the same keys up at once (racing to make each public
 * key) and take and drop references; the last unref frees. */
#define RACE_THREADS 8
#define RACE_KEYS 12

struct race {
	struct ht_registry_view *v;
	pthread_barrier_t *start;
	const struct ht_key *seen[RACE_KEYS];
	int failures;
};

static void *race_thread(void *arg)
{
	struct race *r = arg;
	struct ht_registry_view *v = r->v; /* this thread's reference */
	pthread_barrier_wait(r->start);
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < RACE_KEYS; i++) {
			char key_id[32];
			snprintf(key_id, sizeof key_id, "p%d:1", i);
			struct ht_registry_key_info k;
			if (ht_registry_view_key(v, key_id, &k) != HT_OK ||
			    !k.public_key ||
			    (r->seen[i] && r->seen[i] != k.public_key))
				r->failures++;
			r->seen[i] = k.public_key;
		}
	}
	ht_registry_view_unref(v);
	return NULL;
}

static void test_view_threads(void **state)
{
	(void)state;
	struct world w;
	world_setup(&w, HT_SIGN_SM2);
	for (int i = 0; i < RACE_KEYS; i++) {
		char id[16];
		snprintf(id, sizeof id, "p%d", i);
		enum ht_sign_alg alg = (enum ht_sign_alg)(1 + i % 3);
		assert_int_equal(add(&w, id, 0, alg, 0, NULL), HT_OK);
	}
	struct ht_registry_view *v = view(&w);
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, RACE_THREADS);
	pthread_t t[RACE_THREADS];
	struct race r[RACE_THREADS];
	for (int i = 0; i < RACE_THREADS; i++) {
		r[i] = (struct race){.v = ht_registry_view_ref(v),
				     .start = &start};
		assert_int_equal(pthread_create(&t[i], NULL, race_thread, &r[i]),
				 0);
	}
	ht_registry_view_unref(v); /* the threads hold their own */
	for (int i = 0; i < RACE_THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].failures, 0);
		for (int k = 0; k < RACE_KEYS; k++)
			assert_ptr_equal(r[i].seen[k], r[0].seen[k]);
	}
	pthread_barrier_destroy(&start);
	world_teardown(&w);
}

/* 10,000 participants load in well under a second. Rows are planted
 * straight into SQLite (issuing 10,000 certificates would test the CA,
 * not the view), with real public keys of all three algorithms. */
#define BIG_N 10000
#define BIG_DISTINCT_KEYS 48

static void plant_big(const char *data)
{
	char path[512];
	snprintf(path, sizeof path, "%s/registry.db", data);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	char *pems[BIG_DISTINCT_KEYS];
	for (int i = 0; i < BIG_DISTINCT_KEYS; i++) {
		struct ht_key *k = NULL;
		size_t len = 0;
		assert_int_equal(ht_key_generate((enum ht_sign_alg)(1 + i % 3),
						 NULL, &k),
				 HT_OK);
		assert_int_equal(ht_key_public_pem(k, &pems[i], &len), HT_OK);
		ht_key_destroy(k);
	}
	static const char *const algs[] = {"", "sm2", "ed25519", "ecdsa-p256"};
	sqlite3_stmt *p = NULL, *k = NULL;
	assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "INSERT INTO participants VALUES"
					    " (?1, 'participant', 1, NULL)",
					    -1, &p, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "INSERT INTO keys VALUES (?1 || ':1',"
					    " ?1, 1, ?2, ?3, ?4, 2000000000, 1,"
					    " NULL)",
					    -1, &k, NULL),
			 SQLITE_OK);
	for (int i = 0; i < BIG_N; i++) {
		char id[32], serial[40];
		snprintf(id, sizeof id, "participant-%05d", i);
		snprintf(serial, sizeof serial, "4%031x", i);
		sqlite3_bind_text(p, 1, id, -1, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(p), SQLITE_DONE);
		sqlite3_reset(p);
		int which = i % BIG_DISTINCT_KEYS;
		sqlite3_bind_text(k, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(k, 2, algs[1 + which % 3], -1, SQLITE_STATIC);
		sqlite3_bind_text(k, 3, pems[which], -1, SQLITE_STATIC);
		sqlite3_bind_text(k, 4, serial, -1, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(k), SQLITE_DONE);
		sqlite3_reset(k);
	}
	sqlite3_finalize(p);
	sqlite3_finalize(k);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	for (int i = 0; i < BIG_DISTINCT_KEYS; i++)
		free(pems[i]);
}

static void test_view_10k(void **state)
{
	(void)state;
	struct world w;
	world_setup(&w, HT_SIGN_SM2);
	plant_big(w.data);
	struct ht_registry *reader = NULL;
	assert_int_equal(ht_registry_open(w.data, true, &reader), HT_OK);
	double t0 = now_s();
	struct ht_registry_view *v = NULL;
	assert_int_equal(ht_registry_view_load(reader, &v), HT_OK);
	double load_s = now_s() - t0;
	assert_int_equal(ht_registry_view_participant_count(v), BIG_N);
	assert_int_equal(ht_registry_view_key_count(v), BIG_N);
	/* Every key, by id, with its public key, then by serial. */
	t0 = now_s();
	for (int i = 0; i < BIG_N; i++) {
		char key_id[40];
		snprintf(key_id, sizeof key_id, "participant-%05d:1", i);
		struct ht_registry_key_info k;
		assert_int_equal(ht_registry_view_key(v, key_id, &k), HT_OK);
		assert_int_equal(ht_key_alg(k.public_key), 1 + (i % 48) % 3);
	}
	double keys_s = now_s() - t0;
	t0 = now_s();
	for (int i = 0; i < BIG_N; i++) {
		char serial[40], id[32];
		snprintf(serial, sizeof serial, "4%031x", i);
		snprintf(id, sizeof id, "participant-%05d", i);
		struct ht_registry_key_info k;
		assert_int_equal(ht_registry_view_cert(v, serial, &k), HT_OK);
		assert_string_equal(k.participant, id);
	}
	double serial_s = now_s() - t0;
	fprintf(stderr,
		"10,000 participants: view load %.1f ms; first lookup of every"
		" key (public keys made) %.1f ms; 10,000 serial lookups %.2f ms\n",
		load_s * 1e3, keys_s * 1e3, serial_s * 1e3);
	assert_true(load_s < 1.0);
	ht_registry_view_unref(v);
	ht_registry_close(reader);
	world_teardown(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_server_names_agree),
		cmocka_unit_test(test_init_pki),
		cmocka_unit_test(test_init_pki_names_and_refusals),
		cmocka_unit_test(test_init_pki_crash_states),
		cmocka_unit_test(test_open_refusals),
		cmocka_unit_test(test_add),
		cmocka_unit_test(test_add_refusals),
		cmocka_unit_test(test_rotate),
		cmocka_unit_test(test_revoke),
		cmocka_unit_test(test_view_lookups),
		cmocka_unit_test(test_view_bad_rows),
		cmocka_unit_test(test_changed),
		cmocka_unit_test(test_view_threads),
		cmocka_unit_test(test_view_10k),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

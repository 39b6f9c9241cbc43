/*
 * crypto.c — huitong's thin wrapper over OpenSSL 3 EVP: hashing (SM3,
 * SHA-256), signatures (SM2 with an explicit distinguishing ID, Ed25519,
 * ECDSA P-256), AEAD (SM4-GCM where the OpenSSL build has it, AES-256-GCM)
 * and the raw SM4 block modes the conformance vectors need.
 *
 * Owner: crypto. It owns the OpenSSL objects behind struct ht_hasher and
 * struct ht_key and nothing else. It must never implement a primitive:
 * every hash, cipher and signature is OpenSSL's, reached through EVP (the
 * only EC_* calls build a public point from a private scalar). It must
 * never sign or verify SM2 without setting the distinguishing ID: OpenSSL
 * 3.0 silently uses an EMPTY ID otherwise, which no other SM2
 * implementation will accept.
 */
#include "huitong/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

/* Bytes of a distinguishing ID: GB/T 32918 encodes its bit length in two
 * bytes (ENTL), so 8191 bytes is the format's own ceiling. */
#define SM2_ID_BYTES_MAX 8191

/* EVP takes int lengths; larger inputs are fed in chunks of this size. */
#define EVP_CHUNK_BYTES (1u << 30)

#define GCM_IV_BYTES 12
#define GCM_TAG_BYTES 16

/* ---- names --------------------------------------------------------- */

const char *ht_hash_alg_name(enum ht_hash_alg alg)
{
	switch (alg) {
	case HT_HASH_SM3:
		return "sm3";
	case HT_HASH_SHA256:
		return "sha256";
	}
	return "unknown";
}

enum ht_err ht_hash_alg_parse(const char *name, enum ht_hash_alg *out)
{
	if (!name)
		return HT_ERR_INVALID;
	if (!strcmp(name, "sm3")) {
		*out = HT_HASH_SM3;
		return HT_OK;
	}
	if (!strcmp(name, "sha256")) {
		*out = HT_HASH_SHA256;
		return HT_OK;
	}
	return HT_ERR_INVALID;
}

const char *ht_sign_alg_name(enum ht_sign_alg alg)
{
	switch (alg) {
	case HT_SIGN_SM2:
		return "sm2";
	case HT_SIGN_ED25519:
		return "ed25519";
	case HT_SIGN_ECDSA_P256:
		return "ecdsa-p256";
	}
	return "unknown";
}

enum ht_err ht_sign_alg_parse(const char *name, enum ht_sign_alg *out)
{
	static const struct {
		const char *name;
		enum ht_sign_alg alg;
	} names[] = {
		{"sm2", HT_SIGN_SM2},
		{"ed25519", HT_SIGN_ED25519},
		{"ecdsa-p256", HT_SIGN_ECDSA_P256},
	};
	if (!name)
		return HT_ERR_INVALID;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (!strcmp(name, names[i].name)) {
			*out = names[i].alg;
			return HT_OK;
		}
	}
	return HT_ERR_INVALID;
}

/* ---- hashing ------------------------------------------------------- */

struct ht_hasher {
	enum ht_hash_alg alg;
	EVP_MD *md;      /* fetched once: fetching per digest costs more
			    than hashing a small leaf */
	EVP_MD_CTX *ctx; /* reused; EVP_DigestInit_ex2 resets it */
};

static const char *md_name(enum ht_hash_alg alg)
{
	switch (alg) {
	case HT_HASH_SM3:
		return "SM3";
	case HT_HASH_SHA256:
		return "SHA256";
	}
	return NULL;
}

/* Each digest is fetched once per process: OpenSSL 3.0's fetch walks the
 * method store under a global lock, which costs more than hashing a
 * request body (ht_hash is called per request). */
static EVP_MD *md_cache[2];
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_fetch_all(void)
{
	md_cache[0] = EVP_MD_fetch(NULL, "SM3", NULL);
	md_cache[1] = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static EVP_MD *md_get(enum ht_hash_alg alg)
{
	pthread_once(&md_once, md_fetch_all);
	EVP_MD *md = alg == HT_HASH_SM3 ? md_cache[0] : md_cache[1];
	return md && EVP_MD_up_ref(md) ? md : NULL;
}

enum ht_err ht_hasher_create(enum ht_hash_alg alg, struct ht_hasher **out)
{
	const char *name = md_name(alg);
	if (!name || !out)
		return HT_ERR_INVALID;
	struct ht_hasher *h = calloc(1, sizeof *h);
	if (!h)
		return HT_ERR_NOMEM;
	h->alg = alg;
	h->md = md_get(alg);
	h->ctx = EVP_MD_CTX_new();
	if (!h->md || !h->ctx) {
		ht_hasher_destroy(h);
		return HT_ERR_CRYPTO;
	}
	HT_ASSERT(EVP_MD_get_size(h->md) == HT_HASH_BYTES);
	*out = h;
	return HT_OK;
}

void ht_hasher_destroy(struct ht_hasher *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	EVP_MD_free(h->md);
	free(h);
}

enum ht_hash_alg ht_hasher_alg(const struct ht_hasher *h)
{
	HT_ASSERT(h != NULL);
	return h->alg;
}

/* EVP_DigestUpdate takes size_t, so no chunking is needed here; an empty
 * part is skipped so NULL pointers are fine. */
static int digest_part(EVP_MD_CTX *ctx, const void *p, size_t len)
{
	if (len == 0)
		return 1;
	return EVP_DigestUpdate(ctx, p, len);
}

enum ht_err ht_hash3(struct ht_hasher *h, const void *a, size_t a_len,
		     const void *b, size_t b_len, const void *c, size_t c_len,
		     uint8_t out[HT_HASH_BYTES])
{
	HT_ASSERT(h != NULL);
	HT_ASSERT(a_len == 0 || a != NULL);
	HT_ASSERT(b_len == 0 || b != NULL);
	HT_ASSERT(c_len == 0 || c != NULL);
	unsigned int n = 0;
	if (!EVP_DigestInit_ex2(h->ctx, h->md, NULL) ||
	    !digest_part(h->ctx, a, a_len) || !digest_part(h->ctx, b, b_len) ||
	    !digest_part(h->ctx, c, c_len) ||
	    !EVP_DigestFinal_ex(h->ctx, out, &n)) {
		ERR_clear_error();
		return HT_ERR_CRYPTO;
	}
	HT_ASSERT(n == HT_HASH_BYTES);
	return HT_OK;
}

enum ht_err ht_hash(enum ht_hash_alg alg, const void *data, size_t len,
		    uint8_t out[HT_HASH_BYTES])
{
	struct ht_hasher *h;
	enum ht_err err = ht_hasher_create(alg, &h);
	if (err)
		return err;
	err = ht_hash3(h, data, len, NULL, 0, NULL, 0, out);
	ht_hasher_destroy(h);
	return err;
}

/* ---- keys ---------------------------------------------------------- */

struct ht_key {
	enum ht_sign_alg alg;
	EVP_PKEY *pkey;
	bool has_private;
	char *sm2_id; /* SM2 only; never NULL for SM2 */
	/* Initialised sign/verify contexts, made on first use and copied for
	 * each operation: EVP_DigestSignInit fetches the digest, signature
	 * and key management algorithms every time, which in OpenSSL 3.0
	 * costs as much as an ECDSA verification. Copies share nothing
	 * mutable with the template. */
	pthread_mutex_t tmpl_lock;
	EVP_MD_CTX *tmpl[2]; /* [0] verify, [1] sign */
};

void ht_key_destroy(struct ht_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k->sm2_id);
	EVP_MD_CTX_free(k->tmpl[0]);
	EVP_MD_CTX_free(k->tmpl[1]);
	pthread_mutex_destroy(&k->tmpl_lock);
	free(k);
}

enum ht_sign_alg ht_key_alg(const struct ht_key *k)
{
	HT_ASSERT(k != NULL);
	return k->alg;
}

/* Wrap pkey (ownership passes in, also on failure). */
static enum ht_err key_wrap(enum ht_sign_alg alg, EVP_PKEY *pkey,
			    bool has_private, const char *sm2_id,
			    struct ht_key **out)
{
	HT_ASSERT(pkey != NULL);
	struct ht_key *k = calloc(1, sizeof *k);
	if (!k) {
		EVP_PKEY_free(pkey);
		return HT_ERR_NOMEM;
	}
	k->alg = alg;
	k->pkey = pkey;
	k->has_private = has_private;
	pthread_mutex_init(&k->tmpl_lock, NULL);
	if (alg == HT_SIGN_SM2) {
		k->sm2_id = strdup(sm2_id ? sm2_id : HT_SM2_DEFAULT_ID);
		if (!k->sm2_id) {
			ht_key_destroy(k);
			return HT_ERR_NOMEM;
		}
	}
	*out = k;
	return HT_OK;
}

static enum ht_err check_sm2_id(enum ht_sign_alg alg, const char *sm2_id)
{
	if (alg != HT_SIGN_SM2 || !sm2_id)
		return HT_OK;
	size_t n = strlen(sm2_id);
	if (n == 0 || n > SM2_ID_BYTES_MAX)
		return HT_ERR_INVALID;
	return HT_OK;
}

enum ht_err ht_key_generate(enum ht_sign_alg alg, const char *sm2_id,
			    struct ht_key **out)
{
	EVP_PKEY *pkey = NULL;
	enum ht_err err = check_sm2_id(alg, sm2_id);
	if (err)
		return err;
	switch (alg) {
	case HT_SIGN_SM2:
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "SM2");
		break;
	case HT_SIGN_ED25519:
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	case HT_SIGN_ECDSA_P256:
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	default:
		return HT_ERR_INVALID;
	}
	if (!pkey) {
		ERR_clear_error();
		return HT_ERR_CRYPTO;
	}
	return key_wrap(alg, pkey, true, sm2_id, out);
}

/* The EC group and EVP key type of an EC algorithm. */
static void ec_names(enum ht_sign_alg alg, int *nid, const char **group,
		     const char **keytype)
{
	HT_ASSERT(alg == HT_SIGN_SM2 || alg == HT_SIGN_ECDSA_P256);
	if (alg == HT_SIGN_SM2) {
		*nid = NID_sm2;
		*group = "SM2";
		*keytype = "SM2";
	} else {
		*nid = NID_X9_62_prime256v1;
		*group = "prime256v1";
		*keytype = "EC";
	}
}

/* Build an EC key of `keytype` from OSSL_PARAMs (selection: public only
 * or the key pair). */
static EVP_PKEY *ec_fromdata(const char *keytype, OSSL_PARAM *params,
			     int selection)
{
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, keytype, NULL);
	if (pctx && EVP_PKEY_fromdata_init(pctx) == 1 &&
	    EVP_PKEY_fromdata(pctx, &pkey, selection, params) == 1) {
		EVP_PKEY_CTX_free(pctx);
		return pkey;
	}
	EVP_PKEY_CTX_free(pctx);
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	return NULL;
}

/* An EC key from its group, its public point (uncompressed octets) and,
 * when priv is not NULL, its private scalar. */
static EVP_PKEY *ec_build(enum ht_sign_alg alg, const uint8_t *pub,
			  size_t pub_len, const BIGNUM *priv)
{
	int nid;
	const char *group, *keytype;
	ec_names(alg, &nid, &group, &keytype);
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM *params = NULL;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	if (!bld ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
					     group, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
					      pub, pub_len) ||
	    (priv && !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY,
					     priv)))
		goto done;
	params = OSSL_PARAM_BLD_to_param(bld);
	if (params)
		pkey = ec_fromdata(keytype, params,
				   priv ? EVP_PKEY_KEYPAIR
					: EVP_PKEY_PUBLIC_KEY);
done:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	ERR_clear_error();
	return pkey;
}

enum ht_err ht_key_from_public_raw(enum ht_sign_alg alg, const uint8_t *raw,
				   size_t len, const char *sm2_id,
				   struct ht_key **out)
{
	EVP_PKEY *pkey = NULL;
	enum ht_err err = check_sm2_id(alg, sm2_id);
	if (err)
		return err;
	if (!raw)
		return HT_ERR_INVALID;
	switch (alg) {
	case HT_SIGN_SM2:
	case HT_SIGN_ECDSA_P256:
		/* Only the uncompressed form; ec_build's fromdata rejects a
		 * point that is not on the curve. */
		if (len != 65 || raw[0] != 0x04)
			return HT_ERR_INVALID;
		pkey = ec_build(alg, raw, len, NULL);
		break;
	case HT_SIGN_ED25519:
		if (len != 32)
			return HT_ERR_INVALID;
		pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL,
						      raw, len);
		break;
	default:
		return HT_ERR_INVALID;
	}
	if (!pkey) {
		ERR_clear_error();
		return HT_ERR_INVALID;
	}
	return key_wrap(alg, pkey, false, sm2_id, out);
}

/* The uncompressed public point d*G of an EC private scalar. The scalar
 * must be in [1, n-1] (SM2: [1, n-2], GB/T 32918.1 6.1). */
static enum ht_err ec_public_point(int nid, bool sm2, const BIGNUM *d,
				   uint8_t pub[65])
{
	enum ht_err err = HT_ERR_CRYPTO;
	EC_GROUP *g = EC_GROUP_new_by_curve_name_ex(NULL, NULL, nid);
	EC_POINT *p = g ? EC_POINT_new(g) : NULL;
	BIGNUM *limit = BN_new();
	if (!p || !limit || !BN_copy(limit, EC_GROUP_get0_order(g)) ||
	    (sm2 && !BN_sub_word(limit, 1)))
		goto done;
	if (BN_is_zero(d) || BN_cmp(d, limit) >= 0) {
		err = HT_ERR_INVALID;
		goto done;
	}
	if (EC_POINT_mul(g, p, d, NULL, NULL, NULL) != 1 ||
	    EC_POINT_point2oct(g, p, POINT_CONVERSION_UNCOMPRESSED, pub, 65,
			       NULL) != 65)
		goto done;
	err = HT_OK;
done:
	BN_free(limit);
	EC_POINT_free(p);
	EC_GROUP_free(g);
	ERR_clear_error();
	return err;
}

static enum ht_err ec_from_private_raw(enum ht_sign_alg alg,
				       const uint8_t *raw, size_t len,
				       EVP_PKEY **out)
{
	int nid;
	const char *group, *keytype;
	uint8_t pub[65];
	if (len != 32)
		return HT_ERR_INVALID;
	ec_names(alg, &nid, &group, &keytype);
	BIGNUM *d = BN_bin2bn(raw, (int)len, NULL);
	if (!d)
		return HT_ERR_NOMEM;
	enum ht_err err = ec_public_point(nid, alg == HT_SIGN_SM2, d, pub);
	if (!err) {
		*out = ec_build(alg, pub, sizeof pub, d);
		err = *out ? HT_OK : HT_ERR_CRYPTO;
	}
	BN_clear_free(d);
	return err;
}

enum ht_err ht_key_from_private_raw(enum ht_sign_alg alg, const uint8_t *raw,
				    size_t len, const char *sm2_id,
				    struct ht_key **out)
{
	EVP_PKEY *pkey = NULL;
	enum ht_err err = check_sm2_id(alg, sm2_id);
	if (err)
		return err;
	if (!raw)
		return HT_ERR_INVALID;
	switch (alg) {
	case HT_SIGN_SM2:
	case HT_SIGN_ECDSA_P256:
		err = ec_from_private_raw(alg, raw, len, &pkey);
		if (err)
			return err;
		break;
	case HT_SIGN_ED25519:
		if (len != 32)
			return HT_ERR_INVALID;
		pkey = EVP_PKEY_new_raw_private_key_ex(NULL, "ED25519", NULL,
						       raw, len);
		if (!pkey) {
			ERR_clear_error();
			return HT_ERR_CRYPTO;
		}
		break;
	default:
		return HT_ERR_INVALID;
	}
	return key_wrap(alg, pkey, true, sm2_id, out);
}

/* PEM readers must never prompt for a passphrase: encrypted keys fail. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/*
 * Re-create an "EC" key on the SM2 curve as an "SM2" key: with the EC
 * type EVP would sign ECDSA-with-SM3, not SM2. Takes ownership of *pkey.
 * OpenSSL 3.0.19's PEM decoder already yields "SM2" keys for the SM2
 * curve; this guards builds and key sources (e.g. an "EC" key made with
 * group SM2) that do not.
 */
static enum ht_err ec_to_sm2(EVP_PKEY **pkey, bool has_private)
{
	OSSL_PARAM *params = NULL;
	int sel = has_private ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY;
	if (EVP_PKEY_todata(*pkey, sel, &params) != 1) {
		ERR_clear_error();
		return HT_ERR_CRYPTO;
	}
	EVP_PKEY *sm2 = ec_fromdata("SM2", params, sel);
	OSSL_PARAM_free(params);
	if (!sm2)
		return HT_ERR_CRYPTO;
	EVP_PKEY_free(*pkey);
	*pkey = sm2;
	return HT_OK;
}

/* Which of our algorithms an EVP key is; HT_ERR_INVALID for others. */
static enum ht_err pkey_alg(EVP_PKEY **pkey, bool has_private,
			    enum ht_sign_alg *alg)
{
	char group[64] = "";
	if (EVP_PKEY_is_a(*pkey, "ED25519")) {
		*alg = HT_SIGN_ED25519;
		return HT_OK;
	}
	if (!EVP_PKEY_is_a(*pkey, "SM2") && !EVP_PKEY_is_a(*pkey, "EC"))
		return HT_ERR_INVALID;
	if (!EVP_PKEY_get_utf8_string_param(*pkey, OSSL_PKEY_PARAM_GROUP_NAME,
					    group, sizeof group, NULL)) {
		ERR_clear_error();
		return HT_ERR_INVALID;
	}
	if (!strcmp(group, "SM2")) {
		*alg = HT_SIGN_SM2;
		if (EVP_PKEY_is_a(*pkey, "SM2"))
			return HT_OK;
		return ec_to_sm2(pkey, has_private);
	}
	if (!strcmp(group, "prime256v1") && EVP_PKEY_is_a(*pkey, "EC")) {
		*alg = HT_SIGN_ECDSA_P256;
		return HT_OK;
	}
	return HT_ERR_INVALID;
}

static EVP_PKEY *pem_read(const char *pem, size_t len, bool private)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return NULL;
	EVP_PKEY *pkey =
		private ? PEM_read_bio_PrivateKey_ex(bio, NULL, no_passphrase,
						     NULL, NULL, NULL)
			: PEM_read_bio_PUBKEY_ex(bio, NULL, no_passphrase,
						 NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	return pkey;
}

enum ht_err ht_key_from_pem(const char *pem, size_t len, const char *sm2_id,
			    struct ht_key **out)
{
	enum ht_sign_alg alg;
	if (!pem || len == 0 || len > INT_MAX)
		return HT_ERR_INVALID;
	bool has_private = true;
	EVP_PKEY *pkey = pem_read(pem, len, true);
	if (!pkey) {
		has_private = false;
		pkey = pem_read(pem, len, false);
	}
	if (!pkey)
		return HT_ERR_INVALID;
	enum ht_err err = pkey_alg(&pkey, has_private, &alg);
	if (!err)
		err = check_sm2_id(alg, sm2_id);
	if (err) {
		EVP_PKEY_free(pkey);
		return err;
	}
	return key_wrap(alg, pkey, has_private, sm2_id, out);
}

/* Copy a memory BIO's contents into a malloc'd NUL-terminated string. */
static enum ht_err bio_to_string(BIO *bio, char **out, size_t *len)
{
	char *data;
	long n = BIO_get_mem_data(bio, &data);
	if (n <= 0)
		return HT_ERR_CRYPTO;
	char *s = malloc((size_t)n + 1);
	if (!s)
		return HT_ERR_NOMEM;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	*out = s;
	if (len)
		*len = (size_t)n;
	return HT_OK;
}

static enum ht_err key_pem(const struct ht_key *k, bool private, char **out,
			   size_t *len)
{
	HT_ASSERT(k != NULL);
	if (!out)
		return HT_ERR_INVALID;
	if (private && !k->has_private)
		return HT_ERR_INVALID;
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio)
		return HT_ERR_NOMEM;
	int ok = private ? PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL,
						    0, NULL, NULL)
			 : PEM_write_bio_PUBKEY(bio, k->pkey);
	enum ht_err err = ok == 1 ? bio_to_string(bio, out, len)
				  : HT_ERR_CRYPTO;
	BIO_free(bio);
	ERR_clear_error();
	return err;
}

enum ht_err ht_key_private_pem(const struct ht_key *k, char **out, size_t *len)
{
	return key_pem(k, true, out, len);
}

enum ht_err ht_key_public_pem(const struct ht_key *k, char **out, size_t *len)
{
	return key_pem(k, false, out, len);
}

/* ---- signatures ---------------------------------------------------- */

/*
 * Start a one-shot sign or verify. SM2 hashes with SM3 and gets its ID
 * set on the operation's own EVP_PKEY_CTX right after init: the Z_A
 * pre-hash is computed at the first update, from the ID set by then.
 */
static enum ht_err sig_init_fresh(const struct ht_key *k, bool sign,
				  EVP_MD_CTX **out)
{
	const char *md = NULL;
	if (k->alg == HT_SIGN_SM2)
		md = "SM3";
	else if (k->alg == HT_SIGN_ECDSA_P256)
		md = "SHA256";
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	if (!mctx)
		return HT_ERR_NOMEM;
	int ok = sign ? EVP_DigestSignInit_ex(mctx, &pctx, md, NULL, NULL,
					      k->pkey, NULL)
		      : EVP_DigestVerifyInit_ex(mctx, &pctx, md, NULL, NULL,
						k->pkey, NULL);
	if (ok == 1 && k->alg == HT_SIGN_SM2) {
		HT_ASSERT(k->sm2_id != NULL);
		ok = pctx ? EVP_PKEY_CTX_set1_id(pctx, k->sm2_id,
						 (int)strlen(k->sm2_id))
			  : 0;
	}
	if (ok != 1) {
		EVP_MD_CTX_free(mctx);
		ERR_clear_error();
		return HT_ERR_CRYPTO;
	}
	*out = mctx;
	return HT_OK;
}

/* A context ready for one sign or verify: a copy of the key's template
 * (made on first use). */
static enum ht_err sig_init(const struct ht_key *k, bool sign,
			    EVP_MD_CTX **out)
{
	struct ht_key *kk = (struct ht_key *)k; /* the cache only */
	pthread_mutex_lock(&kk->tmpl_lock);
	enum ht_err err = HT_OK;
	if (!kk->tmpl[sign])
		err = sig_init_fresh(k, sign, &kk->tmpl[sign]);
	pthread_mutex_unlock(&kk->tmpl_lock);
	if (err)
		return err;
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	if (!mctx)
		return HT_ERR_NOMEM;
	if (EVP_MD_CTX_copy_ex(mctx, kk->tmpl[sign]) != 1) {
		EVP_MD_CTX_free(mctx);
		ERR_clear_error();
		return sig_init_fresh(k, sign, out);
	}
	*out = mctx;
	return HT_OK;
}

enum ht_err ht_sign(const struct ht_key *k, const void *msg, size_t len,
		    uint8_t *sig, size_t *sig_len)
{
	HT_ASSERT(k != NULL);
	if (!sig || !sig_len || (len && !msg))
		return HT_ERR_INVALID;
	if (!k->has_private)
		return HT_ERR_INVALID;
	EVP_MD_CTX *mctx;
	enum ht_err err = sig_init(k, true, &mctx);
	if (err)
		return err;
	size_t n = 0;
	/* Ask for the maximum size first (this consumes nothing) so a
	 * too-small HT_SIG_BYTES_MAX is an assertion, never an overflow. */
	if (EVP_DigestSign(mctx, NULL, &n, msg, len) == 1) {
		HT_ASSERT(n <= HT_SIG_BYTES_MAX);
		n = HT_SIG_BYTES_MAX;
		if (EVP_DigestSign(mctx, sig, &n, msg, len) == 1) {
			*sig_len = n;
			EVP_MD_CTX_free(mctx);
			return HT_OK;
		}
	}
	EVP_MD_CTX_free(mctx);
	ERR_clear_error();
	return HT_ERR_CRYPTO;
}

enum ht_err ht_verify(const struct ht_key *k, const void *msg, size_t len,
		      const uint8_t *sig, size_t sig_len)
{
	HT_ASSERT(k != NULL);
	if ((len && !msg) || (sig_len && !sig))
		return HT_ERR_INVALID;
	if (sig_len == 0 || sig_len > HT_SIG_BYTES_MAX)
		return HT_ERR_VERIFY;
	EVP_MD_CTX *mctx;
	enum ht_err err = sig_init(k, false, &mctx);
	if (err)
		return err;
	/* 0 is a bad signature, a negative value a malformed one (bad DER,
	 * wrong length): both are "does not verify", not internal errors. */
	int rc = EVP_DigestVerify(mctx, sig, sig_len, msg, len);
	EVP_MD_CTX_free(mctx);
	ERR_clear_error();
	return rc == 1 ? HT_OK : HT_ERR_VERIFY;
}

enum ht_err ht_random(void *buf, size_t n)
{
	uint8_t *p = buf;
	HT_ASSERT(n == 0 || buf != NULL);
	while (n > 0) {
		size_t chunk = n < EVP_CHUNK_BYTES ? n : EVP_CHUNK_BYTES;
		if (RAND_bytes(p, (int)chunk) != 1) {
			ERR_clear_error();
			return HT_ERR_CRYPTO;
		}
		p += chunk;
		n -= chunk;
	}
	return HT_OK;
}

/* ---- key files ------------------------------------------------------ */

static enum ht_err key_file_read(const char *path,
				 uint8_t key[HT_KEY_FILE_BYTES])
{
	FILE *f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? HT_ERR_NOT_FOUND : HT_ERR_IO;
	char line[2 * HT_KEY_FILE_BYTES + 4];
	size_t n = fread(line, 1, sizeof line - 1, f);
	bool bad = ferror(f);
	fclose(f);
	if (bad)
		return HT_ERR_IO;
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	size_t got = 0;
	enum ht_err err = n == 2 * HT_KEY_FILE_BYTES &&
				  !ht_hex_decode(line, n, key, HT_KEY_FILE_BYTES,
						 &got) &&
				  got == HT_KEY_FILE_BYTES
			  ? HT_OK : HT_ERR_CORRUPT;
	OPENSSL_cleanse(line, sizeof line);
	return err;
}

enum ht_err ht_key_file_load(const char *path, bool create,
			     uint8_t key[HT_KEY_FILE_BYTES])
{
	enum ht_err err = key_file_read(path, key);
	if (err != HT_ERR_NOT_FOUND || !create)
		return err;
	uint8_t k[HT_KEY_FILE_BYTES];
	char hex[2 * HT_KEY_FILE_BYTES + 2];
	if ((err = ht_random(k, sizeof k)))
		return err;
	ht_hex_encode(k, sizeof k, hex);
	strcat(hex, "\n");
	/* O_EXCL: never replace a key another process just wrote */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		OPENSSL_cleanse(k, sizeof k);
		OPENSSL_cleanse(hex, sizeof hex);
		return errno == EEXIST ? key_file_read(path, key) : HT_ERR_IO;
	}
	size_t len = strlen(hex);
	bool ok = write(fd, hex, len) == (ssize_t)len && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	OPENSSL_cleanse(hex, sizeof hex);
	if (!ok) {
		OPENSSL_cleanse(k, sizeof k);
		unlink(path);
		return HT_ERR_IO;
	}
	memcpy(key, k, sizeof k);
	OPENSSL_cleanse(k, sizeof k);
	return HT_OK;
}

/* ---- HMAC-SM3 with digested pads ------------------------------------- */

#define SM3_BLOCK_BYTES 64

struct ht_hmac_sm3 {
	EVP_MD_CTX *pad[2]; /* SM3 after (K ^ ipad), after (K ^ opad) */
};

void ht_hmac_sm3_free(struct ht_hmac_sm3 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->pad[0]);
	EVP_MD_CTX_free(h->pad[1]);
	free(h);
}

enum ht_err ht_hmac_sm3_new(const uint8_t *key, size_t len,
			    struct ht_hmac_sm3 **out)
{
	if (!key || !len || len > SM3_BLOCK_BYTES)
		return HT_ERR_INVALID;
	struct ht_hmac_sm3 *h = calloc(1, sizeof *h);
	if (!h)
		return HT_ERR_NOMEM;
	bool ok = true;
	for (int k = 0; ok && k < 2; k++) {
		uint8_t block[SM3_BLOCK_BYTES] = {0}; /* K zero-padded */
		memcpy(block, key, len);
		for (size_t i = 0; i < SM3_BLOCK_BYTES; i++)
			block[i] ^= k ? 0x5c : 0x36;
		ok = (h->pad[k] = EVP_MD_CTX_new()) &&
		     EVP_DigestInit_ex2(h->pad[k], EVP_sm3(), NULL) &&
		     EVP_DigestUpdate(h->pad[k], block, sizeof block);
		OPENSSL_cleanse(block, sizeof block);
	}
	if (!ok) {
		ht_hmac_sm3_free(h);
		ERR_clear_error();
		return HT_ERR_CRYPTO;
	}
	*out = h;
	return HT_OK;
}

enum ht_err ht_hmac_sm3(const struct ht_hmac_sm3 *h, const struct ht_iov *parts,
			size_t n, uint8_t out[32])
{
	uint8_t inner[32];
	unsigned n1 = 0, n2 = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	bool ok = c && EVP_MD_CTX_copy_ex(c, h->pad[0]);
	for (size_t i = 0; ok && i < n; i++)
		ok = !parts[i].len || EVP_DigestUpdate(c, parts[i].p, parts[i].len);
	ok = ok && EVP_DigestFinal_ex(c, inner, &n1) &&
	     EVP_MD_CTX_copy_ex(c, h->pad[1]) &&
	     EVP_DigestUpdate(c, inner, sizeof inner) &&
	     EVP_DigestFinal_ex(c, out, &n2);
	EVP_MD_CTX_free(c);
	if (!ok)
		ERR_clear_error();
	return ok && n1 == 32 && n2 == 32 ? HT_OK : HT_ERR_CRYPTO;
}

/* ---- symmetric ----------------------------------------------------- */

/* Fetch an AEAD cipher. SM4-GCM arrived in OpenSSL 3.2; on 3.0 and 3.1
 * the fetch fails and the caller gets HT_ERR_UNSUPPORTED. */
static enum ht_err aead_fetch(enum ht_cipher_alg alg, EVP_CIPHER **out,
			      size_t *key_len)
{
	const char *name;
	switch (alg) {
	case HT_CIPHER_SM4_GCM:
		name = "SM4-GCM";
		*key_len = 16;
		break;
	case HT_CIPHER_AES256_GCM:
		name = "AES-256-GCM";
		*key_len = 32;
		break;
	default:
		return HT_ERR_INVALID;
	}
	*out = EVP_CIPHER_fetch(NULL, name, NULL);
	if (!*out) {
		ERR_clear_error();
		return alg == HT_CIPHER_SM4_GCM ? HT_ERR_UNSUPPORTED
						: HT_ERR_CRYPTO;
	}
	HT_ASSERT((size_t)EVP_CIPHER_get_key_length(*out) == *key_len);
	return HT_OK;
}

/* Feed AAD (out == NULL) or data through EVP_CipherUpdate in int-sized
 * chunks; *written gets the output bytes. */
static int cipher_feed(EVP_CIPHER_CTX *c, const uint8_t *in, size_t len,
		       uint8_t *out, size_t *written)
{
	size_t done = 0;
	while (done < len) {
		size_t chunk = len - done;
		if (chunk > EVP_CHUNK_BYTES)
			chunk = EVP_CHUNK_BYTES;
		int n = 0;
		if (EVP_CipherUpdate(c, out ? out + done : NULL, &n, in + done,
				     (int)chunk) != 1)
			return 0;
		HT_ASSERT(out == NULL || (size_t)n == chunk);
		done += chunk;
	}
	if (written)
		*written = out ? len : 0;
	return 1;
}

/* One GCM pass. enc: tag is written; !enc: tag is checked (rc 0 on a
 * mismatch is reported as HT_ERR_VERIFY). */
static enum ht_err gcm_run(const EVP_CIPHER *cipher, bool enc,
			   const uint8_t *key, const uint8_t *iv,
			   const void *aad, size_t aad_len, const uint8_t *in,
			   size_t len, uint8_t *out, uint8_t *tag)
{
	enum ht_err err = HT_ERR_CRYPTO;
	int n = 0;
	uint8_t fin[32]; /* GCM's final writes nothing; out may be NULL */
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	if (!c)
		return HT_ERR_NOMEM;
	if (EVP_CipherInit_ex2(c, cipher, key, iv, enc ? 1 : 0, NULL) != 1 ||
	    !cipher_feed(c, aad, aad_len, NULL, NULL) ||
	    !cipher_feed(c, in, len, out, NULL))
		goto done;
	if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG,
					GCM_TAG_BYTES, tag) != 1)
		goto done;
	if (EVP_CipherFinal_ex(c, fin, &n) != 1) {
		err = enc ? HT_ERR_CRYPTO : HT_ERR_VERIFY;
		goto done;
	}
	HT_ASSERT(n == 0);
	if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG,
				       GCM_TAG_BYTES, tag) != 1)
		goto done;
	err = HT_OK;
done:
	EVP_CIPHER_CTX_free(c);
	ERR_clear_error();
	return err;
}

/* ---- SM4-CTR + HMAC-SM3 (encrypt-then-MAC) ---- */

/* The subkey i (1: SM4's, first 16 bytes; 2: the MAC's) of key[32]. */
static enum ht_err etm_subkey(const uint8_t *key, uint8_t i, uint8_t out[32])
{
	uint8_t in[33];
	unsigned n = 0;
	in[0] = i;
	memcpy(in + 1, key, 32);
	int ok = EVP_Digest(in, sizeof in, out, &n, EVP_sm3(), NULL);
	OPENSSL_cleanse(in, sizeof in);
	return ok == 1 && n == 32 ? HT_OK : HT_ERR_CRYPTO;
}

/* The tag of (aad, iv, ct) under mac_key[32]. */
static enum ht_err etm_tag(const uint8_t *mac_key, const void *aad,
			   size_t aad_len, const uint8_t *iv, const uint8_t *ct,
			   size_t len, uint8_t tag[GCM_TAG_BYTES])
{
	enum ht_err err = HT_ERR_CRYPTO;
	uint8_t be[8], full[EVP_MAX_MD_SIZE];
	size_t full_len = 0;
	for (int i = 0; i < 8; i++)
		be[i] = (uint8_t)((uint64_t)aad_len >> (56 - 8 * i));
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *m = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string("digest", "SM3", 0),
			  OSSL_PARAM_construct_end()};
	if (m && EVP_MAC_init(m, mac_key, 32, p) == 1 &&
	    EVP_MAC_update(m, be, sizeof be) == 1 &&
	    (!aad_len || EVP_MAC_update(m, aad, aad_len) == 1) &&
	    EVP_MAC_update(m, iv, GCM_IV_BYTES) == 1 &&
	    (!len || EVP_MAC_update(m, ct, len) == 1) &&
	    EVP_MAC_final(m, full, &full_len, sizeof full) == 1 &&
	    full_len >= GCM_TAG_BYTES) {
		memcpy(tag, full, GCM_TAG_BYTES);
		err = HT_OK;
	}
	EVP_MAC_CTX_free(m);
	EVP_MAC_free(mac);
	ERR_clear_error();
	return err;
}

/* SM4-CTR of in into out under key[16], counter block iv || 0^4. */
static enum ht_err sm4_ctr(const uint8_t *key, const uint8_t *iv,
			   const uint8_t *in, size_t len, uint8_t *out)
{
	uint8_t block[16] = {0};
	memcpy(block, iv, GCM_IV_BYTES);
	enum ht_err err = HT_ERR_CRYPTO;
	EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, "SM4-CTR", NULL);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	if (cipher && c && EVP_EncryptInit_ex2(c, cipher, key, block, NULL) == 1 &&
	    cipher_feed(c, in, len, out, NULL))
		err = HT_OK;
	EVP_CIPHER_CTX_free(c);
	EVP_CIPHER_free(cipher);
	ERR_clear_error();
	return err;
}

static enum ht_err etm_seal(const uint8_t *key, const void *aad,
			    size_t aad_len, const void *in, size_t len,
			    uint8_t *out)
{
	uint8_t ek[32], mk[32];
	enum ht_err err = etm_subkey(key, 1, ek);
	if (!err)
		err = etm_subkey(key, 2, mk);
	if (!err)
		err = ht_random(out, GCM_IV_BYTES);
	if (!err && len)
		err = sm4_ctr(ek, out, in, len, out + GCM_IV_BYTES);
	if (!err)
		err = etm_tag(mk, aad, aad_len, out, out + GCM_IV_BYTES, len,
			      out + GCM_IV_BYTES + len);
	OPENSSL_cleanse(ek, sizeof ek);
	OPENSSL_cleanse(mk, sizeof mk);
	return err;
}

static enum ht_err etm_open(const uint8_t *key, const void *aad,
			    size_t aad_len, const uint8_t *in, size_t plain_len,
			    uint8_t *out)
{
	uint8_t tag[GCM_TAG_BYTES], ek[32], mk[32];
	enum ht_err err = etm_subkey(key, 1, ek);
	if (!err)
		err = etm_subkey(key, 2, mk);
	if (!err)
		err = etm_tag(mk, aad, aad_len, in, in + GCM_IV_BYTES, plain_len,
			      tag);
	if (!err && CRYPTO_memcmp(tag, in + GCM_IV_BYTES + plain_len,
				  GCM_TAG_BYTES))
		err = HT_ERR_VERIFY;
	if (!err && plain_len)
		err = sm4_ctr(ek, in, in + GCM_IV_BYTES, plain_len, out);
	OPENSSL_cleanse(ek, sizeof ek);
	OPENSSL_cleanse(mk, sizeof mk);
	return err;
}

enum ht_err ht_aead_seal(enum ht_cipher_alg alg, const uint8_t *key,
			 const void *aad, size_t aad_len, const void *in,
			 size_t len, uint8_t *out, size_t out_size,
			 size_t *out_len)
{
	EVP_CIPHER *cipher;
	size_t key_len;
	if (!key || !out || !out_len || (len && !in) || (aad_len && !aad))
		return HT_ERR_INVALID;
	if (len > SIZE_MAX - GCM_IV_BYTES - GCM_TAG_BYTES ||
	    out_size < len + GCM_IV_BYTES + GCM_TAG_BYTES)
		return HT_ERR_INVALID;
	if (alg == HT_CIPHER_SM4_CTR_SM3) {
		enum ht_err err = etm_seal(key, aad, aad_len, in, len, out);
		if (!err)
			*out_len = len + GCM_IV_BYTES + GCM_TAG_BYTES;
		return err;
	}
	enum ht_err err = aead_fetch(alg, &cipher, &key_len);
	if (err)
		return err;
	err = ht_random(out, GCM_IV_BYTES);
	if (!err)
		err = gcm_run(cipher, true, key, out, aad, aad_len, in, len,
			      out + GCM_IV_BYTES,
			      out + GCM_IV_BYTES + len);
	EVP_CIPHER_free(cipher);
	if (!err)
		*out_len = len + GCM_IV_BYTES + GCM_TAG_BYTES;
	return err;
}

enum ht_err ht_aead_open(enum ht_cipher_alg alg, const uint8_t *key,
			 const void *aad, size_t aad_len, const uint8_t *in,
			 size_t len, uint8_t *out, size_t out_size,
			 size_t *out_len)
{
	EVP_CIPHER *cipher;
	size_t key_len;
	uint8_t tag[GCM_TAG_BYTES];
	if (!key || !in || !out_len || (aad_len && !aad))
		return HT_ERR_INVALID;
	if (len < GCM_IV_BYTES + GCM_TAG_BYTES)
		return HT_ERR_INVALID;
	size_t plain_len = len - GCM_IV_BYTES - GCM_TAG_BYTES;
	if (out_size < plain_len || (plain_len && !out))
		return HT_ERR_INVALID;
	if (alg == HT_CIPHER_SM4_CTR_SM3) {
		enum ht_err e = etm_open(key, aad, aad_len, in, plain_len, out);
		if (e && plain_len)
			memset(out, 0, plain_len);
		if (!e)
			*out_len = plain_len;
		return e;
	}
	enum ht_err err = aead_fetch(alg, &cipher, &key_len);
	if (err)
		return err;
	memcpy(tag, in + GCM_IV_BYTES + plain_len, GCM_TAG_BYTES);
	err = gcm_run(cipher, false, key, in, aad, aad_len, in + GCM_IV_BYTES,
		      plain_len, out, tag);
	EVP_CIPHER_free(cipher);
	if (err && plain_len)
		memset(out, 0, plain_len); /* never hand back unverified
					      plaintext */
	if (!err)
		*out_len = plain_len;
	return err;
}

/* Raw SM4 in a block mode without padding. */
static enum ht_err sm4_raw(const char *mode, const uint8_t key[16],
			   const uint8_t *iv, const uint8_t *in, size_t len,
			   uint8_t *out)
{
	if (!key || (len && (!in || !out)) || len % 16)
		return HT_ERR_INVALID;
	enum ht_err err = HT_ERR_CRYPTO;
	int n = 0;
	uint8_t fin[16]; /* no padding: final writes nothing */
	EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, mode, NULL);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	if (!cipher || !c)
		goto done;
	if (EVP_EncryptInit_ex2(c, cipher, key, iv, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(c, 0) != 1 ||
	    !cipher_feed(c, in, len, out, NULL) ||
	    EVP_EncryptFinal_ex(c, fin, &n) != 1)
		goto done;
	HT_ASSERT(n == 0);
	err = HT_OK;
done:
	EVP_CIPHER_CTX_free(c);
	EVP_CIPHER_free(cipher);
	ERR_clear_error();
	return err;
}

enum ht_err ht_sm4_ecb_encrypt(const uint8_t key[16], const uint8_t *in,
			       size_t len, uint8_t *out)
{
	return sm4_raw("SM4-ECB", key, NULL, in, len, out);
}

enum ht_err ht_sm4_cbc_encrypt(const uint8_t key[16], const uint8_t iv[16],
			       const uint8_t *in, size_t len, uint8_t *out)
{
	if (!iv)
		return HT_ERR_INVALID;
	return sm4_raw("SM4-CBC", key, iv, in, len, out);
}

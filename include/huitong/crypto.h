/*
 * crypto.h — huitong's thin wrapper over OpenSSL 3: hashing (SM3, SHA-256),
 * signatures (SM2 with an explicit distinguishing ID, Ed25519, ECDSA P-256)
 * and symmetric encryption (SM4, AES-256-GCM).
 *
 * Owner: crypto. Nothing here implements a primitive; every primitive is
 * OpenSSL's. National algorithms are the default everywhere.
 *
 * OpenSSL 3.0 signs SM2 with an EMPTY distinguishing ID unless one is set;
 * this wrapper always sets one (HT_SM2_DEFAULT_ID unless the caller gives
 * another), for signing and verifying alike.
 */
#ifndef HUITONG_CRYPTO_H
#define HUITONG_CRYPTO_H

#include "huitong/common.h"

enum ht_hash_alg { HT_HASH_SM3 = 1, HT_HASH_SHA256 = 2 };
enum ht_sign_alg { HT_SIGN_SM2 = 1, HT_SIGN_ED25519 = 2, HT_SIGN_ECDSA_P256 = 3 };

#define HT_HASH_BYTES 32 /* both SM3 and SHA-256 */
#define HT_SM2_DEFAULT_ID "1234567812345678"

/* "sm3"/"sha256" and back. parse returns HT_ERR_INVALID for other names. */
const char *ht_hash_alg_name(enum ht_hash_alg alg);
enum ht_err ht_hash_alg_parse(const char *name, enum ht_hash_alg *out);
/* "sm2"/"ed25519"/"ecdsa-p256" and back. */
const char *ht_sign_alg_name(enum ht_sign_alg alg);
enum ht_err ht_sign_alg_parse(const char *name, enum ht_sign_alg *out);

/*
 * A reusable hashing context. Create once, reuse for many digests: the
 * EVP_MD is fetched once, so hashing millions of small leaves is cheap.
 * Not thread-safe; use one per thread. destroy accepts NULL.
 */
struct ht_hasher;
enum ht_err ht_hasher_create(enum ht_hash_alg alg, struct ht_hasher **out);
void ht_hasher_destroy(struct ht_hasher *h);
enum ht_hash_alg ht_hasher_alg(const struct ht_hasher *h);

/* out = H(a[0..a_len) || b[0..b_len) || c[0..c_len)); any part may be
 * empty (pointer may then be NULL). Errors: HT_ERR_CRYPTO. */
enum ht_err ht_hash3(struct ht_hasher *h, const void *a, size_t a_len,
		     const void *b, size_t b_len, const void *c, size_t c_len,
		     uint8_t out[HT_HASH_BYTES]);

/* One-shot convenience: out = H(data). */
enum ht_err ht_hash(enum ht_hash_alg alg, const void *data, size_t len,
		    uint8_t out[HT_HASH_BYTES]);

/*
 * Signing keys. A key holds its algorithm and, for SM2, the distinguishing
 * ID used for every sign and verify with it.
 */
struct ht_key;

/* Generate a fresh private key. sm2_id: NULL means HT_SM2_DEFAULT_ID;
 * ignored for other algorithms. */
enum ht_err ht_key_generate(enum ht_sign_alg alg, const char *sm2_id,
			    struct ht_key **out);

/* Load a private or public key from PEM text (PKCS#8 / SubjectPublicKeyInfo).
 * The algorithm is taken from the key; sm2_id as above.
 * Errors: HT_ERR_INVALID (not a key we support), HT_ERR_CRYPTO. */
enum ht_err ht_key_from_pem(const char *pem, size_t len, const char *sm2_id,
			    struct ht_key **out);

/* Public key from raw bytes: SM2/P-256 uncompressed point (65 bytes,
 * 0x04||X||Y), Ed25519 32 bytes. */
enum ht_err ht_key_from_public_raw(enum ht_sign_alg alg, const uint8_t *raw,
				   size_t len, const char *sm2_id,
				   struct ht_key **out);

/* Private key from raw scalar bytes (SM2 / P-256: 32-byte big-endian d;
 * Ed25519: 32-byte seed). Used by tests with published vectors. */
enum ht_err ht_key_from_private_raw(enum ht_sign_alg alg, const uint8_t *raw,
				    size_t len, const char *sm2_id,
				    struct ht_key **out);

/* PEM of the private key (PKCS#8) or of the public key. *out is malloc'd,
 * NUL-terminated; the caller frees it. Private export fails with
 * HT_ERR_INVALID on a public-only key. */
enum ht_err ht_key_private_pem(const struct ht_key *k, char **out, size_t *len);
enum ht_err ht_key_public_pem(const struct ht_key *k, char **out, size_t *len);

enum ht_sign_alg ht_key_alg(const struct ht_key *k);
void ht_key_destroy(struct ht_key *k);

/*
 * Sign msg. SM2 uses SM3 with the key's ID (Z_A per GB/T 32918), ECDSA
 * P-256 uses SHA-256, Ed25519 is pure Ed25519. sig must hold
 * HT_SIG_BYTES_MAX bytes; *sig_len gets the DER (SM2/ECDSA) or raw
 * (Ed25519) length. Errors: HT_ERR_CRYPTO, HT_ERR_INVALID (public key).
 */
enum ht_err ht_sign(const struct ht_key *k, const void *msg, size_t len,
		    uint8_t *sig, size_t *sig_len);

/* HT_OK when sig is a valid signature of msg under k, HT_ERR_VERIFY when
 * it is not, HT_ERR_CRYPTO on an internal failure. */
enum ht_err ht_verify(const struct ht_key *k, const void *msg, size_t len,
		      const uint8_t *sig, size_t sig_len);

/*
 * HMAC-SM3 under a fixed key with the key's pads digested once (two SM3
 * compressions saved per MAC, no algorithm fetch): for keyed hashes on hot
 * paths (block lists, aliases). The key object is read-only after
 * creation, so ht_hmac_sm3 may run on several threads at once.
 */
struct ht_hmac_sm3;
struct ht_iov {
	const void *p;
	size_t len;
};
/* key of 1..64 bytes. HT_ERR_INVALID, HT_ERR_NOMEM, HT_ERR_CRYPTO. */
enum ht_err ht_hmac_sm3_new(const uint8_t *key, size_t len,
			    struct ht_hmac_sm3 **out);
void ht_hmac_sm3_free(struct ht_hmac_sm3 *h);
/* HMAC-SM3 of the concatenation of parts[0..n) into out (32 bytes). */
enum ht_err ht_hmac_sm3(const struct ht_hmac_sm3 *h, const struct ht_iov *parts,
			size_t n, uint8_t out[32]);

/*
 * A 32-byte secret kept in a file of its own as one line of 64 hex digits
 * (the block-list key, the alias key). With create, a missing file is made
 * with a random key (mode 0600, O_EXCL so a racing writer's key wins and
 * is read back, fsync'd, never replaced). HT_ERR_NOT_FOUND when it is
 * missing and not to be created, HT_ERR_CORRUPT when the file is not 64
 * hex digits, HT_ERR_IO.
 */
#define HT_KEY_FILE_BYTES 32
enum ht_err ht_key_file_load(const char *path, bool create,
			     uint8_t key[HT_KEY_FILE_BYTES]);

/* Fill buf with n cryptographically random bytes. */
enum ht_err ht_random(void *buf, size_t n);

/*
 * Symmetric encryption. SM4 here is SM4-GCM when available (OpenSSL 3.2+;
 * HT_ERR_UNSUPPORTED before) and SM4-CBC for the raw-vector tests below;
 * AES-256-GCM beside it. HT_CIPHER_SM4_CTR_SM3 is SM4 with the national
 * algorithms OpenSSL 3.0 has: encrypt-then-MAC with two keys derived from
 * the 32-byte key K, SM4-CTR under the first 16 bytes of SM3(0x01 || K)
 * (counter block: the 12-byte iv || 0^4) and as the tag the first 16 bytes
 * of HMAC-SM3 under SM3(0x02 || K) over u64be(aad_len) || aad || iv ||
 * ciphertext.
 */
enum ht_cipher_alg {
	HT_CIPHER_SM4_GCM = 1,
	HT_CIPHER_AES256_GCM = 2,
	HT_CIPHER_SM4_CTR_SM3 = 3,
};

/* AEAD encrypt: out gets iv(12) || ciphertext || tag(16); out_size must be
 * at least len + 28. key is 16 bytes for SM4-GCM, 32 for AES-256 and for
 * SM4-CTR + HMAC-SM3. */
enum ht_err ht_aead_seal(enum ht_cipher_alg alg, const uint8_t *key,
			 const void *aad, size_t aad_len, const void *in,
			 size_t len, uint8_t *out, size_t out_size,
			 size_t *out_len);
/* Reverse of seal. HT_ERR_VERIFY when the tag does not match. */
enum ht_err ht_aead_open(enum ht_cipher_alg alg, const uint8_t *key,
			 const void *aad, size_t aad_len, const uint8_t *in,
			 size_t len, uint8_t *out, size_t out_size,
			 size_t *out_len);

/* Raw SM4 block modes for conformance vectors: ECB and CBC, no padding,
 * len a multiple of 16. iv ignored for ECB. */
enum ht_err ht_sm4_ecb_encrypt(const uint8_t key[16], const uint8_t *in,
			       size_t len, uint8_t *out);
enum ht_err ht_sm4_cbc_encrypt(const uint8_t key[16], const uint8_t iv[16],
			       const uint8_t *in, size_t len, uint8_t *out);

#endif

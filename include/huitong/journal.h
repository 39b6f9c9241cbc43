/*
 * journal.h — signed tree heads over the Merkle journal.
 *
 * Owner: journal. A head commits to the first tree_size events: their
 * Merkle root (RFC 9162, SM3 or SHA-256), the time, its sequence number and
 * the hash of the previous head, and is signed by the hub key (SM2 with an
 * explicit distinguishing ID, or Ed25519). The chain of heads makes a
 * rewritten history (a fork) detectable even by someone holding only old
 * heads. Merkle hashing itself is in merkle.h; storage in store.h.
 *
 * Signed bytes (big-endian integers), HT_STH_SIGNED_BYTES long:
 *   "HTSTH1" | u8 hash alg | u8 sign alg | u64 seq | u64 tree_size |
 *   u64 time_ns | root[32] | prev_hash[32]
 * prev_hash of head n = H(signed bytes of head n-1 || its signature);
 * zeros for head 0.
 */
#ifndef HUITONG_JOURNAL_H
#define HUITONG_JOURNAL_H

#include "huitong/hub.h"
#include "huitong/merkle.h"

#define HT_STH_SIGNED_BYTES 96

/*
 * What the store keeps of the tree. Merkle nodes of level
 * HT_JOURNAL_NODE_LEVEL_MIN and above are stored, one contiguous run per
 * head, numbered in completion order (ht_journal_node_seq); the lower
 * levels are recomputed from the events when a proof needs them (at most
 * 2^(K-1) leaves per level, so a proof still costs O(log n) reads). Beside
 * them, each leaf's hash is kept as a HT_JOURNAL_FP_BYTES fingerprint so
 * `journal verify` can name the exact event that changed; the integrity
 * itself rests on the full hashes above it and on the signed root. This
 * keeps the journal's share of the commit small: ~1/16 of the nodes plus
 * 4 bytes a leaf, instead of 64 bytes a leaf (docs/internals/journal.md).
 */
#define HT_JOURNAL_NODE_LEVEL_MIN 4
#define HT_JOURNAL_FP_BYTES 4

/* Stored nodes once n leaves exist: sum over k >= K of floor(n / 2^k). */
uint64_t ht_journal_node_count(uint64_t n);
/* Stored sequence number of node (level >= K, index). */
uint64_t ht_journal_node_seq(unsigned level, uint64_t index);
_Static_assert(HT_STH_SIGNED_BYTES <= HT_STH_BYTES_MAX, "head bytes fit");

/* H(signed bytes || sig): the value the next head links to. */
enum ht_err ht_sth_hash(struct ht_hasher *h, const struct ht_sth *sth,
			uint8_t out[HT_HASH_BYTES]);

/* Sign sth in place (fills sig, sig_len) with the hub's private key. */
enum ht_err ht_sth_sign(const struct ht_key *key, struct ht_sth *sth);

/* HT_OK when the signature is good, HT_ERR_VERIFY when not. */
enum ht_err ht_sth_verify(const struct ht_key *key, const struct ht_sth *sth);

/* JSON object of a head on one line, no newline:
 * {"seq":N,"tree_size":N,"time_ns":"…","root":"hex","prev_hash":"hex",
 *  "hash":"sm3","sign":"sm2","signature":"hex"}; out holds 1024 bytes. */
void ht_sth_json(const struct ht_sth *sth, char *out, size_t size);

#endif

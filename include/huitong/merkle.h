/*
 * merkle.h — RFC 9162 (RFC 6962) Merkle tree hashing and proofs.
 *
 *   leaf hash  = H(0x00 || data)
 *   node hash  = H(0x01 || left || right)
 *   empty tree = H("")
 *
 * Owner: journal. Pure functions over hashes; no storage. Node hashes are
 * read through a callback so proofs cost O(log n) stored-node reads.
 *
 * Node addressing used across huitong: a *complete* subtree at level k
 * (k = 0 for leaves) with index j covers leaves [j*2^k, (j+1)*2^k). It is
 * completed when leaf L = (j+1)*2^k - 1 is appended. Nodes are numbered in
 * completion order: leaf L completes levels 0..ctz(L+1) and the global
 * number of node (k, j) is  ht_merkle_node_seq(k, j) = 2L - popcount(L) + k.
 * After n leaves exactly 2n - popcount(n) nodes exist. The journal stores
 * node hashes in that order, so a commit's new nodes form one contiguous
 * run.
 */
#ifndef HUITONG_MERKLE_H
#define HUITONG_MERKLE_H

#include "huitong/crypto.h"

/* Global completion-order number of complete node (level, index).
 * Trees stay below 2^63 leaves, so every number fits a u64 (asserted). */
uint64_t ht_merkle_node_seq(unsigned level, uint64_t index);
/* Number of complete nodes that exist once n leaves are appended. */
uint64_t ht_merkle_node_count(uint64_t n);

/* leaf/node hash per RFC 9162. */
enum ht_err ht_merkle_leaf_hash(struct ht_hasher *h, const void *data,
				size_t len, uint8_t out[HT_HASH_BYTES]);
enum ht_err ht_merkle_node_hash(struct ht_hasher *h,
				const uint8_t left[HT_HASH_BYTES],
				const uint8_t right[HT_HASH_BYTES],
				uint8_t out[HT_HASH_BYTES]);

/*
 * Callback giving the hash of complete node (level, index). Must return
 * HT_OK and fill out, or an error that is passed back to the caller.
 */
typedef enum ht_err (*ht_merkle_node_fn)(void *ctx, unsigned level,
					 uint64_t index,
					 uint8_t out[HT_HASH_BYTES]);

/* Root of the first n leaves (n may be 0: the empty-tree hash). */
enum ht_err ht_merkle_root(struct ht_hasher *h, uint64_t n,
			   ht_merkle_node_fn node, void *ctx,
			   uint8_t out[HT_HASH_BYTES]);

/*
 * Inclusion proof (RFC 9162 §2.1.3) for leaf `index` in the tree of the
 * first `size` leaves. proof must hold HT_PROOF_HASHES_MAX hashes; *count
 * gets the number written. HT_ERR_INVALID when index >= size.
 */
enum ht_err ht_merkle_inclusion_proof(struct ht_hasher *h, uint64_t index,
				      uint64_t size, ht_merkle_node_fn node,
				      void *ctx,
				      uint8_t proof[][HT_HASH_BYTES],
				      size_t *count);

/* Consistency proof (RFC 9162 §2.1.4) between sizes old_size <= new_size.
 * Empty when old_size == 0 or old_size == new_size. */
enum ht_err ht_merkle_consistency_proof(struct ht_hasher *h, uint64_t old_size,
					uint64_t new_size,
					ht_merkle_node_fn node, void *ctx,
					uint8_t proof[][HT_HASH_BYTES],
					size_t *count);

/* Number of hashes in the inclusion proof for (index, size): what
 * ht_merkle_inclusion_proof writes; 0 when index >= size. (Added by the
 * crypto/merkle engineer so verifiers can say why a proof fails.) */
size_t ht_merkle_inclusion_proof_count(uint64_t index, uint64_t size);
/* Number of hashes in the consistency proof between the two sizes; 0 when
 * old_size is 0 or not below new_size. (Added likewise.) */
size_t ht_merkle_consistency_proof_count(uint64_t old_size,
					 uint64_t new_size);

/* Verify an inclusion proof (RFC 9162 §2.1.3.2). HT_OK or HT_ERR_VERIFY. */
enum ht_err ht_merkle_verify_inclusion(struct ht_hasher *h, uint64_t index,
				       uint64_t size,
				       const uint8_t leaf_hash[HT_HASH_BYTES],
				       const uint8_t proof[][HT_HASH_BYTES],
				       size_t count,
				       const uint8_t root[HT_HASH_BYTES]);

/* Verify a consistency proof (RFC 9162 §2.1.4.2). HT_OK or HT_ERR_VERIFY.
 * old_size == new_size takes an empty proof and equal roots; old_size 0
 * an empty proof and old_root = H(""). */
enum ht_err ht_merkle_verify_consistency(struct ht_hasher *h, uint64_t old_size,
					 uint64_t new_size,
					 const uint8_t old_root[HT_HASH_BYTES],
					 const uint8_t new_root[HT_HASH_BYTES],
					 const uint8_t proof[][HT_HASH_BYTES],
					 size_t count);

/*
 * Incremental builder: append leaf hashes one by one; it emits every node
 * each append completes (in completion order, i.e. ht_merkle_node_seq
 * order) and keeps the right frontier (at most 64 hashes) so the root of
 * the current size is O(log n) away. Used by the journal on the commit
 * path and by `journal verify`.
 */
struct ht_merkle_frontier {
	uint64_t size;                          /* leaves appended */
	uint8_t hash[64][HT_HASH_BYTES];        /* hash[k]: pending complete
						   subtree of level k, valid
						   when bit k of size is set */
};

/* Set f->size and zero every hash: the caller then fills hash[k], for
 * each bit k set in size, with node (k, (size >> k) - 1), or uses
 * ht_merkle_frontier_load below. size 0 needs nothing more. */
void ht_merkle_frontier_init(struct ht_merkle_frontier *f, uint64_t size);

/* init + fill the frontier of `size` leaves from stored nodes: one call
 * of node per bit set in size. Errors: those of node. (Added by the
 * crypto/merkle engineer.) */
enum ht_err ht_merkle_frontier_load(struct ht_merkle_frontier *f,
				    uint64_t size, ht_merkle_node_fn node,
				    void *ctx);

/*
 * Append one leaf hash. Writes the nodes completed by this leaf (the leaf
 * hash itself first, then each completed parent) to out_nodes, which must
 * hold 65 hashes, and their number to *n_out (1 + ctz(size+1)).
 * Errors: HT_ERR_LIMIT at 2^63 leaves, HT_ERR_CRYPTO.
 */
enum ht_err ht_merkle_frontier_append(struct ht_merkle_frontier *f,
				      struct ht_hasher *h,
				      const uint8_t leaf_hash[HT_HASH_BYTES],
				      uint8_t out_nodes[][HT_HASH_BYTES],
				      unsigned *n_out);

/* Root of the frontier's current size (the empty hash when size is 0). */
enum ht_err ht_merkle_frontier_root(const struct ht_merkle_frontier *f,
				    struct ht_hasher *h,
				    uint8_t out[HT_HASH_BYTES]);

/*
 * Range proofs: that the leaves [first, first + count) are in the tree of
 * the first `size` leaves, with O(log size) hashes whatever count is (a
 * batch's receipt). The proof holds MTH of every maximal subtree of RFC
 * 9162's tree that lies wholly outside the range and whose parent overlaps
 * it, in the order a depth-first, left-to-right walk of the tree meets
 * them. For count 1 these are the inclusion proof's hashes, in walk order
 * (left siblings top-down, then right siblings bottom-up). The
 * verifier replays the same walk with the range's leaf hashes. count >= 1,
 * first + count <= size; proof holds HT_PROOF_HASHES_MAX hashes (a range
 * proof has at most 2 * 63 + 1).
 * Errors: HT_ERR_INVALID (empty or out-of-tree range), those of node.
 */
enum ht_err ht_merkle_range_proof(struct ht_hasher *h, uint64_t first,
				  uint64_t count, uint64_t size,
				  ht_merkle_node_fn node, void *ctx,
				  uint8_t proof[][HT_HASH_BYTES],
				  size_t *n_out);

/* Verify a range proof: leaf_hashes[0..count) are the leaf hashes of the
 * range. HT_OK, or HT_ERR_VERIFY (wrong hashes, wrong number of hashes,
 * bad range), HT_ERR_NOMEM. */
enum ht_err ht_merkle_verify_range(struct ht_hasher *h, uint64_t first,
				   uint64_t count, uint64_t size,
				   const uint8_t leaf_hashes[][HT_HASH_BYTES],
				   const uint8_t proof[][HT_HASH_BYTES],
				   size_t n, const uint8_t root[HT_HASH_BYTES]);

#endif

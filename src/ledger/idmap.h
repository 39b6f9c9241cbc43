/*
 * idmap.h — open-addressing hash index from 128-bit ids to 32-bit values,
 * private to the ledger engine.
 *
 * Owner: ledger. The index stores no keys: a slot is a 32-bit hash tag
 * and a 32-bit value (0 = empty), and the key of a value is read back
 * from the array that owns the objects (a key_of callback), only when
 * the tags match. Eight bytes a slot keep the table small, which matters
 * because every fresh page costs far more than a probe.
 * Linear probing over a power-of-two table at most two thirds full;
 * backward-shift deletion (no tombstones), so undoing a linked chain leaves
 * the table as fast as it was. Keys are hashed with a per-map random key:
 * clients choose ids, and must not be able to choose ids that collide.
 * Lookups and inserts never allocate; growth replaces the table with an
 * empty larger one that the owner refills from its arrays (sequential
 * reads, no random key fetches).
 */
#ifndef HUITONG_LEDGER_IDMAP_H
#define HUITONG_LEDGER_IDMAP_H

#include "huitong/common.h"

struct ht_idmap_slot {
	uint32_t tag;      /* high half of the key's hash */
	uint32_t val;      /* 0 = empty */
};

struct ht_idmap {
	struct ht_idmap_slot *slots;
	size_t mask;       /* capacity - 1; capacity is a power of two */
	size_t count;      /* occupied slots */
	uint64_t k0, k1;   /* hash key, random per map */
};

/* The key of the object a stored value refers to. */
typedef ht_u128 (*ht_idmap_key_fn)(const void *ctx, uint32_t val);

/* Allocate an empty map with room for `count_min` keys. HT_ERR_NOMEM. */
enum ht_err ht_idmap_init(struct ht_idmap *m, size_t count_min);
/* Free the table; accepts a zeroed map. */
void ht_idmap_free(struct ht_idmap *m);
/* Replace the table by an empty one with room for `keys` keys; the owner
 * then re-inserts every key. HT_ERR_NOMEM leaves the map as it was. */
enum ht_err ht_idmap_rebuild_begin(struct ht_idmap *m, size_t keys);
/* Remove a key that is present (asserted). */
void ht_idmap_remove(struct ht_idmap *m, ht_u128 key, ht_idmap_key_fn key_of,
		     const void *ctx);

/* True when `extra` more keys would exceed the load limit. */
static inline bool ht_idmap_needs_grow(const struct ht_idmap *m, size_t extra)
{
	return (m->count + extra) * 3 > (m->mask + 1) * 2;
}

/* Keyed 128 -> 64 bit hash: two folded 64x64->128 multiplications
 * (the "mum" step of wyhash). Low bits pick the slot, high bits are the
 * tag, so tags discriminate keys that share a home. */
static inline uint64_t ht_idmap_hash(const struct ht_idmap *m, ht_u128 key)
{
	uint64_t lo = (uint64_t)key, hi = (uint64_t)(key >> 64);
	ht_u128 r = (ht_u128)(lo ^ m->k0) * (hi ^ m->k1);
	uint64_t h = (uint64_t)r ^ (uint64_t)(r >> 64);
	r = (ht_u128)(h ^ 0x9e3779b97f4a7c15ull) * (m->k0 | 1);
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* The slot holding `key`, or the empty slot where it would go. The slot
 * pointer stays valid until the next insert, remove or rebuild. */
static inline __attribute__((always_inline)) struct ht_idmap_slot *
ht_idmap_probe(const struct ht_idmap *m, ht_u128 key, ht_idmap_key_fn key_of,
	       const void *ctx)
{
	uint64_t h = ht_idmap_hash(m, key);
	uint32_t tag = (uint32_t)(h >> 32);
	size_t i = (size_t)h & m->mask;
	for (;;) {
		struct ht_idmap_slot *s = &m->slots[i];
		if (s->val == 0)
			return s;
		if (s->tag == tag && key_of(ctx, s->val) == key)
			return s;
		i = (i + 1) & m->mask;
	}
}

/* Fill an empty slot returned by ht_idmap_probe for the same key. */
static inline void ht_idmap_fill(struct ht_idmap *m, struct ht_idmap_slot *s,
				 ht_u128 key, uint32_t val)
{
	HT_ASSERT(s->val == 0);
	HT_ASSERT(val != 0);
	s->tag = (uint32_t)(ht_idmap_hash(m, key) >> 32);
	s->val = val;
	m->count++;
}

/* Insert a key known to be absent (no key comparisons needed). */
static inline void ht_idmap_insert_new(struct ht_idmap *m, ht_u128 key,
				       uint32_t val)
{
	HT_ASSERT(val != 0);
	uint64_t h = ht_idmap_hash(m, key);
	size_t i = (size_t)h & m->mask;
	while (m->slots[i].val)
		i = (i + 1) & m->mask;
	m->slots[i].tag = (uint32_t)(h >> 32);
	m->slots[i].val = val;
	m->count++;
}

/* Hint the CPU to fetch key's home slot (batch look-ahead). Always
 * inlined: GCC otherwise judges a function made of one prefetch to have
 * no effect and deletes the calls. */
static inline __attribute__((always_inline)) void
ht_idmap_prefetch(const struct ht_idmap *m, ht_u128 key)
{
	__builtin_prefetch(&m->slots[(size_t)ht_idmap_hash(m, key) & m->mask]);
}

#endif

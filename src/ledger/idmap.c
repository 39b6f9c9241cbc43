/*
 * idmap.c — allocation, seeding and deletion for the ledger's id hash
 * index (see idmap.h; the hot lookups are inline there).
 *
 * Owner: ledger. Allocation happens only in init and rebuild_begin, which
 * allocates the new table before freeing the old one, so a failure leaves
 * the map untouched.
 */
#include "idmap.h"
#include "vm.h"

#include <sys/random.h>

#define IDMAP_CAPACITY_MIN 64

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Random hash key. Only performance depends on it, never results: the
 * engine never exposes table order. */
static void idmap_seed(struct ht_idmap *m)
{
	uint64_t k[2];
	if (getrandom(k, sizeof k, GRND_NONBLOCK) != (ssize_t)sizeof k) {
		uint64_t x = ht_now_monotonic_ns() ^ (uint64_t)(uintptr_t)m;
		k[0] = splitmix64(&x);
		k[1] = splitmix64(&x);
	}
	m->k0 = k[0];
	m->k1 = k[1] | 1;
}

static size_t capacity_for(size_t keys)
{
	size_t cap = IDMAP_CAPACITY_MIN;
	while (keys * 3 > cap * 2)
		cap *= 2;
	return cap;
}

enum ht_err ht_idmap_init(struct ht_idmap *m, size_t count_min)
{
	size_t cap = capacity_for(count_min);
	m->slots = ht_vm_alloc_zeroed(cap * sizeof *m->slots);
	if (!m->slots)
		return HT_ERR_NOMEM;
	m->mask = cap - 1;
	m->count = 0;
	idmap_seed(m);
	return HT_OK;
}

void ht_idmap_free(struct ht_idmap *m)
{
	if (m->slots)
		ht_vm_free(m->slots, (m->mask + 1) * sizeof *m->slots);
	m->slots = NULL;
	m->mask = 0;
	m->count = 0;
}

enum ht_err ht_idmap_rebuild_begin(struct ht_idmap *m, size_t keys)
{
	size_t cap = capacity_for(keys);
	struct ht_idmap_slot *slots = ht_vm_alloc_zeroed(cap * sizeof *slots);
	if (!slots)
		return HT_ERR_NOMEM;
	ht_vm_free(m->slots, (m->mask + 1) * sizeof *m->slots);
	m->slots = slots;
	m->mask = cap - 1;
	m->count = 0;
	return HT_OK;
}

/* True when position `home` lies cyclically in (hole, j]: the entry at j
 * may then stay where it is. */
static bool in_cyclic_range(size_t hole, size_t home, size_t j)
{
	if (hole <= j)
		return hole < home && home <= j;
	return hole < home || home <= j;
}

void ht_idmap_remove(struct ht_idmap *m, ht_u128 key, ht_idmap_key_fn key_of,
		     const void *ctx)
{
	struct ht_idmap_slot *s = ht_idmap_probe(m, key, key_of, ctx);
	HT_ASSERT(s->val != 0);
	size_t hole = (size_t)(s - m->slots);
	size_t j = hole;
	for (;;) {
		j = (j + 1) & m->mask;
		const struct ht_idmap_slot *x = &m->slots[j];
		if (x->val == 0)
			break;
		size_t home = (size_t)ht_idmap_hash(m, key_of(ctx, x->val)) &
			      m->mask;
		if (in_cyclic_range(hole, home, j))
			continue;
		m->slots[hole] = *x;
		hole = j;
	}
	m->slots[hole].val = 0;
	HT_ASSERT(m->count > 0);
	m->count--;
}

/*
 * features.c — the feature catalogue and the bounded, single-writer state
 * behind it (see include/huitong/features.h for the contract and
 * docs/risk-features.md for the arithmetic).
 *
 * Owner: risk. This file owns five fixed-size, set-associative tables of
 * records, all allocated at open from a byte budget; it must never
 * allocate after open, never block, never fail on a payment, and compute
 * must never write. Time is whole seconds (u32) from the
 * payments themselves, never the wall clock, so offline scoring and live
 * scoring of the same stream give the same features.
 *
 * What a payment costs is memory, not arithmetic: it reads up to eight
 * records (payer, payee, device, ip, pair, and three "seen" links), each
 * at a random place in gigabytes. So records are small, laid out by who
 * reads them, and found with two cache lines read in parallel (see
 * "records"); all eight lookups are started before any is waited for.
 */
#include "huitong/features.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

/* ---- the catalogue ------------------------------------------------------- */

struct catalogue_entry {
	const char *name;
	enum ht_feature_kind kind;
	const char *unit;
	const char *meaning;
};

static const struct catalogue_entry catalogue[HT_FEATURE__COUNT] = {
#define CATALOGUE_ROW_(id, name, kind, unit, meaning) \
	[HT_FEATURE_##id] = {name, kind, unit, meaning},
	HT_FEATURES(CATALOGUE_ROW_)
#undef CATALOGUE_ROW_
};

static const char *const feature_names[HT_FEATURE__COUNT] = {
#define CATALOGUE_NAME_(id, name, kind, unit, meaning) [HT_FEATURE_##id] = name,
	HT_FEATURES(CATALOGUE_NAME_)
#undef CATALOGUE_NAME_
};

/* The eight window features of an entity are consecutive, in the order
 * count/sum x 1m/1h/24h/7d, so one function fills them for every entity. */
#define WINDOW_RUN_(E)                                                       \
	_Static_assert(HT_FEATURE_##E##_SUM_1M == HT_FEATURE_##E##_COUNT_1M + 1 && \
		       HT_FEATURE_##E##_COUNT_24H == HT_FEATURE_##E##_COUNT_1M + 4 && \
		       HT_FEATURE_##E##_SUM_7D == HT_FEATURE_##E##_COUNT_1M + 7,   \
		       "window features of " #E " in order")
WINDOW_RUN_(PAYER);
WINDOW_RUN_(PAYEE);
WINDOW_RUN_(DEVICE);
WINDOW_RUN_(IP);
WINDOW_RUN_(PAIR);

const char *ht_feature_name(enum ht_feature f)
{
	return (unsigned)f < HT_FEATURE__COUNT ? catalogue[f].name : NULL;
}

const char *ht_feature_meaning(enum ht_feature f)
{
	return (unsigned)f < HT_FEATURE__COUNT ? catalogue[f].meaning : NULL;
}

const char *ht_feature_unit(enum ht_feature f)
{
	return (unsigned)f < HT_FEATURE__COUNT ? catalogue[f].unit : NULL;
}

enum ht_feature_kind ht_feature_kind(enum ht_feature f)
{
	return (unsigned)f < HT_FEATURE__COUNT ? catalogue[f].kind
					       : HT_FEATURE_KIND__COUNT;
}

const char *const *ht_feature_names(void)
{
	return feature_names;
}

/* Linear: called when rules are compiled, never per payment. */
static int names_lookup(const char *const *names, int count, const char *name,
			size_t len)
{
	if (!name)
		return -1;
	for (int i = 0; i < count; i++)
		if (strlen(names[i]) == len && !memcmp(names[i], name, len))
			return i;
	return -1;
}

int ht_feature_lookup(const char *name, size_t len)
{
	return names_lookup(feature_names, HT_FEATURE__COUNT, name, len);
}

static const char *const str_names[HT_FEATURE_STR__COUNT] = {
#define STR_NAME_(id, name, meaning) [HT_FEATURE_STR_##id] = name,
	HT_FEATURE_STRS(STR_NAME_)
#undef STR_NAME_
};

static const char *const str_meanings[HT_FEATURE_STR__COUNT] = {
#define STR_MEANING_(id, name, meaning) [HT_FEATURE_STR_##id] = meaning,
	HT_FEATURE_STRS(STR_MEANING_)
#undef STR_MEANING_
};

const char *ht_feature_str_name(enum ht_feature_str f)
{
	return (unsigned)f < HT_FEATURE_STR__COUNT ? str_names[f] : NULL;
}

const char *ht_feature_str_meaning(enum ht_feature_str f)
{
	return (unsigned)f < HT_FEATURE_STR__COUNT ? str_meanings[f] : NULL;
}

int ht_feature_str_lookup(const char *name, size_t len)
{
	return names_lookup(str_names, HT_FEATURE_STR__COUNT, name, len);
}

const char *const *ht_feature_str_names(void)
{
	return str_names;
}

void ht_feature_strings(const struct ht_payment *p,
			const char *out[HT_FEATURE_STR__COUNT])
{
	HT_ASSERT(p != NULL);
	HT_ASSERT(out != NULL);
	const char *channel = ht_channel_name(p->channel);
	out[HT_FEATURE_STR_CHANNEL] = channel ? channel : "";
	out[HT_FEATURE_STR_CURRENCY] = p->currency;
	out[HT_FEATURE_STR_PAYER] = p->payer;
	out[HT_FEATURE_STR_PAYEE] = p->payee;
	out[HT_FEATURE_STR_PAYER_PARTICIPANT] = p->payer_participant;
	out[HT_FEATURE_STR_PAYEE_PARTICIPANT] = p->payee_participant;
	out[HT_FEATURE_STR_DEVICE] = p->device;
	out[HT_FEATURE_STR_IP] = p->ip;
}

/* ---- records ---------------------------------------------------------------
 *
 * Each table is a set-associative cache of records, the way a CPU cache
 * is built. A key may live in either of two sets chosen by its hash; a set
 * is one 64-byte head line (the keys, last-use and first-seen times of its
 * WAYS records) followed by the WAYS record bodies. A lookup reads the two
 * head lines (in parallel) and then the body it found, on a page already
 * in the TLB; an insert into two full sets evicts the least recently
 * updated of their 8 records, which it has just read. No index, no probe
 * chains, no sweeps: every operation touches a bounded, local set of
 * lines. A link (first and last time) is all head, no body.
 */

#define BUCKETS HT_FEATURE_WINDOW_BUCKETS   /* ring buckets */
#define WINDOWS 4
#define WAYS 4                              /* records per set */
#define LINE 64

static const uint32_t granule_s[WINDOWS] = {
	HT_FEATURE_GRANULE_1M_S, HT_FEATURE_GRANULE_1H_S,
	HT_FEATURE_GRANULE_24H_S, HT_FEATURE_GRANULE_7D_S,
};
/* Distinct counterparties are counted over 24 h, with the 24 h granule. */
#define DISTINCT_GRANULE_S HT_FEATURE_GRANULE_24H_S

_Static_assert(BUCKETS >= 2, "a ring holds the window and one granule");
_Static_assert(HT_FEATURE_GRANULE_1M_S * (BUCKETS - 1) == 60, "1 min");
_Static_assert(HT_FEATURE_GRANULE_1H_S * (BUCKETS - 1) == 3600, "1 h");
_Static_assert(HT_FEATURE_GRANULE_24H_S * (BUCKETS - 1) == 86400, "24 h");
_Static_assert(HT_FEATURE_GRANULE_7D_S * (BUCKETS - 1) == 604800, "7 d");

/* The head line of a set. Key 0 is an empty way (keys have bit 0 set). */
struct set_head {
	uint64_t key[WAYS];
	uint32_t used_s[WAYS];   /* last update: LRU order, and for a device,
				  * ip, pair or link its last payment */
	uint32_t first_s[WAYS];  /* when this record was created */
};

_Static_assert(sizeof(struct set_head) == LINE, "a set's head is one line");

/* Counts and sums of the four windows of one entity. */
struct win {
	uint16_t count[WINDOWS][BUCKETS]; /* saturating */
	float sum[WINDOWS][BUCKETS];      /* yuan */
};

/* A party in both roles. What a payer reads is the first 104 bytes; a
 * payee, the first 32 and the last 72. */
struct party_body {
	uint32_t out_last_s;   /* last payment made; 0 never */
	uint32_t in_last_s;    /* last payment received; 0 never */
	uint32_t amount_n;     /* payments made (saturating) */
	float amount_mean;     /* of ln(1 + yuan), payments made */
	float amount_var;
	uint16_t out_distinct[BUCKETS];  /* payees by their last bucket */
	uint16_t in_distinct[BUCKETS];   /* payers by their last bucket */
	struct win out;        /* payments made */
	struct win in;         /* payments received */
};

struct entity_body {           /* device or ip; last payment = used_s */
	uint16_t distinct[BUCKETS];  /* payers by their last bucket */
	uint16_t pad_;
	struct win w;
};

struct pair_body {             /* last payment = used_s */
	struct win w;
};

_Static_assert(sizeof(struct win) == 72, "window block is 72 bytes");
_Static_assert(sizeof(struct party_body) == 176, "4 parties + head = 12 lines");
_Static_assert(sizeof(struct entity_body) == 80, "device/ip body");
_Static_assert(sizeof(struct pair_body) == 72, "pair body");

static const size_t body_size[HT_RISK_TABLE__COUNT] = {
	[HT_RISK_TABLE_PARTY] = sizeof(struct party_body),
	[HT_RISK_TABLE_DEVICE] = sizeof(struct entity_body),
	[HT_RISK_TABLE_IP] = sizeof(struct entity_body),
	[HT_RISK_TABLE_PAIR] = sizeof(struct pair_body),
	[HT_RISK_TABLE_LINK] = 0,
};

/* Default split of a budget, per mille of bytes (docs: at 4 GiB, 10.3M
 * parties, 7.2M devices, 2.2M IPs, 8.9M pairs, 34.9M links). */
static const unsigned share_permille[HT_RISK_TABLE__COUNT] = {
	[HT_RISK_TABLE_PARTY] = 460, [HT_RISK_TABLE_DEVICE] = 160,
	[HT_RISK_TABLE_IP] = 50,     [HT_RISK_TABLE_PAIR] = 200,
	[HT_RISK_TABLE_LINK] = 130,
};

static const char *const table_names[HT_RISK_TABLE__COUNT] = {
	"party", "device", "ip", "pair", "link",
};

/* Bytes of one set of table t: head and bodies, whole lines. */
static size_t set_bytes(enum ht_risk_table t)
{
	size_t b = LINE + WAYS * body_size[t];
	return (b + LINE - 1) / LINE * LINE;
}

/* ---- memory ---------------------------------------------------------------
 *
 * Tables are big and long-lived: anonymous mappings, zeroed by the kernel
 * and touched lazily, with transparent huge pages asked for (a TLB miss
 * per lookup otherwise costs as much as the lookup). Under AddressSanitizer
 * plain calloc, so the sanitizer sees every access.
 */
#if defined(__SANITIZE_ADDRESS__)
#define MEM_USE_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEM_USE_MALLOC 1
#endif
#endif

static void *mem_alloc(size_t bytes)
{
#ifdef MEM_USE_MALLOC
	return calloc(1, bytes ? bytes : 1);
#else
	void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	if (bytes >= ((size_t)4 << 20))
		(void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
	return p;
#endif
}

static void mem_free(void *p, size_t bytes)
{
	if (!p)
		return;
#ifdef MEM_USE_MALLOC
	(void)bytes;
	free(p);
#else
	munmap(p, bytes ? bytes : 1);
#endif
}

/* ---- hashing --------------------------------------------------------------
 *
 * Keyed 64-bit hash of a string in the style of wyhash (folded 64x64->128
 * multiplications), with two random 64-bit secrets per state. It is a
 * table hash, not a MAC: fast (a few ns for a 20-byte reference) and, with
 * secrets the outside cannot see, hard to aim collisions at. Every input
 * word is mixed with a secret before it is multiplied: XORed with a public
 * constant instead, a chosen word equal to the constant would zero the
 * product and make whole families of strings collide under any key.
 */
#define H_P0 0xa0761d6478bd642full
#define H_P1 0xe7037ed1a0b428dbull
#define H_P2 0x8ebc6af09c88c6e3ull

/* Domains keep equal strings of different kinds apart. */
enum {
	DOM_PARTY = 1, DOM_DEVICE, DOM_IP, DOM_SEEN_PAIR, DOM_DEVICE_PAYER,
	DOM_IP_PAYER, DOM_PAIR,
};

static inline uint64_t mum(uint64_t a, uint64_t b)
{
	ht_u128 r = (ht_u128)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t rd64(const char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static inline uint64_t rd32(const char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t hash_str(const uint64_t secret[2], uint64_t domain,
			 const char *p, size_t n)
{
	const uint64_t s0 = secret[0], s1 = secret[1];
	uint64_t seed = mum(s0 ^ domain ^ H_P0, s1 ^ H_P2);
	uint64_t a, b;
	if (n <= 16) {
		if (n >= 4) {
			size_t q = (n >> 3) << 2;
			a = (rd32(p) << 32) | rd32(p + q);
			b = (rd32(p + n - 4) << 32) | rd32(p + n - 4 - q);
		} else if (n > 0) {
			a = ((uint64_t)(uint8_t)p[0] << 16) |
			    ((uint64_t)(uint8_t)p[n >> 1] << 8) |
			    (uint8_t)p[n - 1];
			b = 0;
		} else {
			a = b = 0;
		}
	} else {
		size_t i = n;
		const char *q = p;
		while (i > 16) {
			seed = mum(rd64(q) ^ s0, rd64(q + 8) ^ seed);
			q += 16;
			i -= 16;
		}
		a = rd64(q + i - 16);
		b = rd64(q + i - 8);
	}
	return mum(H_P1 ^ n ^ s1, mum(a ^ s0, b ^ seed));
}

/* Key of an ordered pair of hashes in a domain. */
static inline uint64_t hash_pair(const uint64_t secret[2], uint64_t domain,
				 uint64_t x, uint64_t y)
{
	return mum(mum(x ^ secret[0] ^ domain, y ^ H_P1) ^ secret[1],
		   H_P2 ^ domain);
}


/* ---- tables -------------------------------------------------------------- */

struct tab {
	uint8_t *mem;          /* sets * set_bytes, line-aligned */
	size_t set_bytes;
	size_t body_bytes;
	uint32_t sets;
	uint64_t count;        /* occupied ways */
	uint64_t evictions;
	size_t bytes;
};

/* Where a record is: set * WAYS + way + 1; 0 = absent. */
typedef uint64_t rpos;

static inline struct set_head *set_at(const struct tab *t, uint32_t set)
{
	return (struct set_head *)(void *)(t->mem + (size_t)set * t->set_bytes);
}

static inline struct set_head *pos_head(const struct tab *t, rpos p)
{
	return set_at(t, (uint32_t)((p - 1) / WAYS));
}

static inline unsigned pos_way(rpos p)
{
	return (unsigned)((p - 1) % WAYS);
}

static inline void *pos_body(const struct tab *t, rpos p)
{
	return (uint8_t *)pos_head(t, p) + LINE + pos_way(p) * t->body_bytes;
}

/* The two sets a key may live in: from two disjoint halves of its bits. */
static inline void tab_sets(const struct tab *t, uint64_t key, uint32_t s[2])
{
	s[0] = (uint32_t)(((key >> 32) * (uint64_t)t->sets) >> 32);
	s[1] = (uint32_t)(((uint64_t)(uint32_t)key * t->sets) >> 32);
}

/* Position of key in set s, or 0. */
static inline rpos set_find(const struct tab *t, uint32_t s, uint64_t key)
{
	const struct set_head *h = set_at(t, s);
	for (unsigned w = 0; w < WAYS; w++)
		if (h->key[w] == key)
			return (rpos)s * WAYS + w + 1;
	return 0;
}

static rpos tab_find(const struct tab *t, uint64_t key)
{
	uint32_t s[2];
	tab_sets(t, key, s);
	rpos p = set_find(t, s[0], key);
	return p ? p : set_find(t, s[1], key);
}

static unsigned set_free_ways(const struct set_head *h)
{
	unsigned n = 0;
	for (unsigned w = 0; w < WAYS; w++)
		n += h->key[w] == 0;
	return n;
}

static rpos set_free_way(const struct set_head *h, uint32_t set)
{
	for (unsigned w = 0; w < WAYS; w++)
		if (h->key[w] == 0)
			return (rpos)set * WAYS + w + 1;
	return 0;
}

/* Move the record at `from` to the free way `to`; `from` becomes free. */
static void tab_move(struct tab *t, rpos from, rpos to)
{
	struct set_head *a = pos_head(t, from), *b = pos_head(t, to);
	unsigned wa = pos_way(from), wb = pos_way(to);
	HT_ASSERT(b->key[wb] == 0);
	b->key[wb] = a->key[wa];
	b->used_s[wb] = a->used_s[wa];
	b->first_s[wb] = a->first_s[wa];
	if (t->body_bytes)
		memcpy(pos_body(t, to), pos_body(t, from), t->body_bytes);
	a->key[wa] = 0;
}

/*
 * Both sets of a new key are full but the table is not: make room by
 * moving one of their records to its other set, if that has a free way
 * (one step of cuckoo hashing). Without it a table of 4-way sets starts
 * evicting at about 70% full; with it, at about 90% (docs). The other
 * sets' heads are requested together, then read.
 */
static rpos tab_relocate(struct tab *t, const uint32_t s[2])
{
	uint32_t alt[2 * WAYS];
	for (unsigned k = 0; k < 2 * WAYS; k++) {
		uint32_t x[2];
		tab_sets(t, set_at(t, s[k / WAYS])->key[k % WAYS], x);
		alt[k] = x[0] == s[k / WAYS] ? x[1] : x[0];
		__builtin_prefetch(set_at(t, alt[k]));
	}
	for (unsigned k = 0; k < 2 * WAYS; k++) {
		if (alt[k] == s[0] || alt[k] == s[1])
			continue;
		rpos to = set_free_way(set_at(t, alt[k]), alt[k]);
		if (!to)
			continue;
		rpos from = (rpos)s[k / WAYS] * WAYS + k % WAYS + 1;
		tab_move(t, from, to);
		return from;
	}
	return 0;
}

/*
 * A way for a new key: a free one in the emptier of its two sets (which
 * keeps sets evenly filled); else, while the table is under 31/32 full,
 * one freed by moving a record to its other set; else the least recently
 * updated of the 2 * WAYS records there (the first of equals), evicted.
 */
static rpos tab_claim(struct tab *t, uint64_t key)
{
	uint32_t s[2];
	tab_sets(t, key, s);
	struct set_head *h0 = set_at(t, s[0]), *h1 = set_at(t, s[1]);
	unsigned f0 = set_free_ways(h0), f1 = s[1] == s[0] ? 0 : set_free_ways(h1);
	if (f0 || f1) {
		rpos p = f1 > f0 ? set_free_way(h1, s[1]) : set_free_way(h0, s[0]);
		HT_ASSERT(p != 0);
		return p;
	}
	uint64_t capacity = (uint64_t)t->sets * WAYS;
	if (t->count < capacity - capacity / 32) {
		rpos p = tab_relocate(t, s);
		if (p)
			return p;
	}
	rpos victim = (rpos)s[0] * WAYS + 1;
	uint32_t oldest = h0->used_s[0];
	for (unsigned k = 1; k < 2 * WAYS; k++) {
		struct set_head *x = k < WAYS ? h0 : h1;
		unsigned w = k % WAYS;
		if (x->used_s[w] < oldest) {
			oldest = x->used_s[w];
			victim = (rpos)s[k / WAYS] * WAYS + w + 1;
		}
	}
	HT_ASSERT(pos_head(t, victim)->key[pos_way(victim)] != 0);
	t->count--;
	t->evictions++;
	return victim;
}

/*
 * The record of key: found (hint, a position found earlier, is re-checked:
 * an insert since may have evicted it), or created in a claimed way with
 * key set, times 0 and the body zeroed.
 */
static rpos tab_upsert(struct tab *t, uint64_t key, rpos hint, bool *created)
{
	if (hint && pos_head(t, hint)->key[pos_way(hint)] == key) {
		*created = false;
		return hint;
	}
	rpos p = tab_find(t, key);
	*created = p == 0;
	if (p)
		return p;
	p = tab_claim(t, key);
	struct set_head *h = pos_head(t, p);
	unsigned w = pos_way(p);
	h->key[w] = key;
	h->used_s[w] = 0;
	h->first_s[w] = 0;
	if (t->body_bytes)
		memset(pos_body(t, p), 0, t->body_bytes);
	t->count++;
	return p;
}

static enum ht_err tab_init(struct tab *t, enum ht_risk_table which,
			    size_t sets)
{
	HT_ASSERT(sets >= 1 && sets <= HT_RISK_TABLE_ENTRIES_MAX / WAYS);
	memset(t, 0, sizeof *t);
	t->set_bytes = set_bytes(which);
	t->body_bytes = body_size[which];
	t->sets = (uint32_t)sets;
	t->bytes = sets * t->set_bytes;
	t->mem = mem_alloc(t->bytes);
	return t->mem ? HT_OK : HT_ERR_NOMEM;
}

static void tab_free(struct tab *t)
{
	mem_free(t->mem, t->bytes);
	t->mem = NULL;
}

/* ---- state ------------------------------------------------------------- */

struct ht_risk_state {
	struct tab tabs[HT_RISK_TABLE__COUNT];
	uint64_t secret[2];
	int64_t clock_ms;
	uint64_t updates;
	uint64_t clamped;
	pthread_t filler;        /* populates the tables (see "populate") */
	bool filler_running;
	atomic_bool filler_stop;
};

const char *ht_risk_table_name(enum ht_risk_table t)
{
	return (unsigned)t < HT_RISK_TABLE__COUNT ? table_names[t] : NULL;
}

size_t ht_risk_entry_bytes(enum ht_risk_table t)
{
	if ((unsigned)t >= HT_RISK_TABLE__COUNT)
		return 0;
	return set_bytes(t) / WAYS;
}

/* Sets of each table, from the config (see ht_risk_config_plan). */
static enum ht_err plan_sets(const struct ht_risk_config *cfg,
			     size_t sets[HT_RISK_TABLE__COUNT], size_t *bytes)
{
	size_t budget = cfg->bytes_max ? cfg->bytes_max : HT_RISK_BYTES_DEFAULT;
	if (budget > HT_RISK_BYTES_MAX)
		return HT_ERR_LIMIT;
	size_t fixed = 0;
	unsigned shares = 0;
	for (int t = 0; t < HT_RISK_TABLE__COUNT; t++) {
		size_t e = cfg->entries_max[t];
		if (e > HT_RISK_TABLE_ENTRIES_MAX)
			return HT_ERR_LIMIT;
		sets[t] = (e + WAYS - 1) / WAYS;
		if (sets[t] > HT_RISK_TABLE_ENTRIES_MAX / WAYS)
			return HT_ERR_LIMIT;
		if (e)
			fixed += sets[t] * set_bytes(t);
		else
			shares += share_permille[t];
	}
	if (fixed > budget)
		return HT_ERR_LIMIT;
	size_t rest = budget - fixed, total = fixed;
	for (int t = 0; t < HT_RISK_TABLE__COUNT; t++) {
		if (sets[t])
			continue;
		/* part <= 2^40 * 1000: no overflow */
		size_t n = rest / shares * share_permille[t] / set_bytes(t);
		if (n > HT_RISK_TABLE_ENTRIES_MAX / WAYS)
			n = HT_RISK_TABLE_ENTRIES_MAX / WAYS;
		if (n == 0)
			return HT_ERR_LIMIT;
		sets[t] = n;
		total += n * set_bytes(t);
	}
	HT_ASSERT(total <= budget);
	*bytes = total;
	return HT_OK;
}

enum ht_err ht_risk_config_plan(const struct ht_risk_config *cfg,
				size_t entries[HT_RISK_TABLE__COUNT],
				size_t *bytes)
{
	static const struct ht_risk_config defaults;
	size_t sets[HT_RISK_TABLE__COUNT], total = 0;
	enum ht_err err = plan_sets(cfg ? cfg : &defaults, sets, &total);
	if (err)
		return err;
	for (int t = 0; entries && t < HT_RISK_TABLE__COUNT; t++)
		entries[t] = sets[t] * WAYS;
	if (bytes)
		*bytes = total;
	return HT_OK;
}

static void state_seed(struct ht_risk_state *s, uint64_t seed)
{
	uint64_t k[2];
	if (seed) {
		k[0] = mum(seed ^ H_P0, H_P1);
		k[1] = mum(seed ^ H_P2, H_P0);
	} else if (getrandom(k, sizeof k, GRND_NONBLOCK) != (ssize_t)sizeof k) {
		uint64_t x = ht_now_monotonic_ns() ^ (uint64_t)(uintptr_t)s;
		k[0] = mum(x ^ H_P0, H_P1);
		k[1] = mum(x ^ H_P2, H_P0);
	}
	s->secret[0] = k[0];
	s->secret[1] = k[1];
}

/* ---- populate -------------------------------------------------------------
 *
 * A fresh mapping is faulted in on first touch, a 2 MiB huge page at a
 * time, and the first batches of a fresh state touch nearly every page of
 * it (lookups land anywhere). On this project's VM a huge page's first
 * touch costs ~15 ms (the fault and the zeroing run at ~130 MB/s there;
 * no compaction stalls were counted), so filling a 1 GiB state stalled
 * the hub thread for seconds (docs/performance.md). So, when asked
 * (cfg->populate: serve --risk asks), a thread of the state's own faults
 * every table in at open with MADV_POPULATE_WRITE (Linux 5.14), which maps
 * pages writable without touching their contents and so is safe beside
 * the hub thread's writes, a chunk at a time. Until it is done the hub
 * thread may still fault a page in itself; after, never. The memory is
 * then resident from the start rather than as the tables fill: the budget
 * (--risk-state-mb) is what it costs. Where the kernel cannot (EINVAL) or
 * memory runs out (ENOMEM) the thread stops and the rest stays lazily
 * faulted, as before.
 */
#define POPULATE_CHUNK_BYTES ((size_t)32 << 20)
#define POPULATE_BYTES_MIN ((size_t)64 << 20) /* smaller: not worth a thread */

#if !defined(MEM_USE_MALLOC) && defined(MADV_POPULATE_WRITE)
#define POPULATE 1
static void *populate_main(void *arg)
{
	struct ht_risk_state *s = arg;
	for (int t = 0; t < HT_RISK_TABLE__COUNT; t++) {
		uint8_t *m = s->tabs[t].mem;
		size_t n = s->tabs[t].bytes;
		for (size_t off = 0; off < n; off += POPULATE_CHUNK_BYTES) {
			if (atomic_load(&s->filler_stop))
				return NULL;
			size_t len = n - off < POPULATE_CHUNK_BYTES
					     ? n - off : POPULATE_CHUNK_BYTES;
			if (madvise(m + off, len, MADV_POPULATE_WRITE))
				return NULL; /* unsupported, or no memory */
		}
	}
	return NULL;
}
#endif

static void populate_start(struct ht_risk_state *s, size_t bytes)
{
#ifdef POPULATE
	if (bytes < POPULATE_BYTES_MIN)
		return;
	atomic_store(&s->filler_stop, false);
	s->filler_running = !pthread_create(&s->filler, NULL, populate_main, s);
#else
	(void)s;
	(void)bytes;
#endif
}

static void populate_stop(struct ht_risk_state *s)
{
	if (!s->filler_running)
		return;
	atomic_store(&s->filler_stop, true);
	pthread_join(s->filler, NULL);
	s->filler_running = false;
}

enum ht_err ht_risk_state_open(const struct ht_risk_config *cfg,
			       struct ht_risk_state **out)
{
	static const struct ht_risk_config defaults;
	HT_ASSERT(out != NULL);
	*out = NULL;
	if (!cfg)
		cfg = &defaults;
	size_t sets[HT_RISK_TABLE__COUNT], bytes;
	enum ht_err err = plan_sets(cfg, sets, &bytes);
	if (err)
		return err;
	struct ht_risk_state *s = calloc(1, sizeof *s);
	if (!s)
		return HT_ERR_NOMEM;
	for (int t = 0; t < HT_RISK_TABLE__COUNT; t++) {
		err = tab_init(&s->tabs[t], t, sets[t]);
		if (err) {
			ht_risk_state_close(s);
			return err;
		}
	}
	state_seed(s, cfg->hash_seed);
	if (cfg->populate)
		populate_start(s, bytes);
	*out = s;
	return HT_OK;
}

void ht_risk_state_close(struct ht_risk_state *s)
{
	if (!s)
		return;
	populate_stop(s);
	for (int t = 0; t < HT_RISK_TABLE__COUNT; t++)
		tab_free(&s->tabs[t]);
	free(s);
}

void ht_risk_state_stats(const struct ht_risk_state *s,
			 struct ht_risk_state_stats *out)
{
	HT_ASSERT(s != NULL);
	HT_ASSERT(out != NULL);
	memset(out, 0, sizeof *out);
	for (int t = 0; t < HT_RISK_TABLE__COUNT; t++) {
		const struct tab *tb = &s->tabs[t];
		out->entries[t] = tb->count;
		out->capacity[t] = (size_t)tb->sets * WAYS;
		out->evictions[t] = tb->evictions;
		out->bytes += tb->bytes;
	}
	out->updates = s->updates;
	out->clamped = s->clamped;
	out->clock_ms = s->clock_ms;
}

/* ---- time -------------------------------------------------------------- */

/* Bucket numbers of one instant in every ring. */
struct now {
	uint32_t s;
	uint32_t b[WINDOWS];
	uint32_t db;             /* distinct ring */
};

/* Whole seconds, clamped to [1, 2^32-1]: 0 means "never" in records. */
static uint32_t secs_of(int64_t ms)
{
	if (ms < 1000)
		return 1;
	int64_t s = ms / 1000;
	return s > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

static void now_make(struct now *n, uint32_t s)
{
	n->s = s;
	n->b[0] = s / HT_FEATURE_GRANULE_1M_S;
	n->b[1] = s / HT_FEATURE_GRANULE_1H_S;
	n->b[2] = s / HT_FEATURE_GRANULE_24H_S;
	n->b[3] = s / HT_FEATURE_GRANULE_7D_S;
	n->db = s / DISTINCT_GRANULE_S;
}

/* ---- rings ------------------------------------------------------------- */

/*
 * A ring last advanced to bucket last_b, read at bucket now_b: the live
 * buckets are those in [now_b - 3, now_b] the ring still holds, that is
 * [max(now_b - 3, 0), last_b] (last_b <= now_b).
 */
static inline uint32_t ring_lo(uint32_t now_b)
{
	return now_b >= BUCKETS - 1 ? now_b - (BUCKETS - 1) : 0;
}

static void win_read(const struct win *w, uint32_t last_s,
		     const struct now *n, float out[2 * WINDOWS])
{
	HT_ASSERT(last_s <= n->s);
#pragma GCC unroll 4
	for (int k = 0; k < WINDOWS; k++) {
		uint32_t last_b = last_s / granule_s[k];
		uint32_t c = 0;
		float sum = 0;
		for (uint32_t b = ring_lo(n->b[k]); b <= last_b; b++) {
			c += w->count[k][b % BUCKETS];
			sum += w->sum[k][b % BUCKETS];
		}
		out[2 * k] = (float)c;
		out[2 * k + 1] = sum;
	}
}

static float distinct_read(const uint16_t distinct[BUCKETS], uint32_t last_s,
			   const struct now *n)
{
	uint32_t last_b = last_s / DISTINCT_GRANULE_S;
	uint32_t c = 0;
	for (uint32_t b = ring_lo(n->db); b <= last_b; b++)
		c += distinct[b % BUCKETS];
	return (float)c;
}

/* Clear the buckets between last_b (exclusive) and now_b (inclusive). */
static inline void ring_advance(uint16_t count[BUCKETS], float *sum,
				uint32_t last_b, uint32_t now_b)
{
	HT_ASSERT(last_b <= now_b);
	if (now_b - last_b >= BUCKETS) {
		memset(count, 0, BUCKETS * sizeof count[0]);
		if (sum)
			memset(sum, 0, BUCKETS * sizeof sum[0]);
		return;
	}
	for (uint32_t b = last_b + 1; b <= now_b; b++) {
		count[b % BUCKETS] = 0;
		if (sum)
			sum[b % BUCKETS] = 0;
	}
}

static inline void count_inc(uint16_t *c)
{
	if (*c != UINT16_MAX)
		(*c)++;
}

static void win_add(struct win *w, uint32_t last_s, const struct now *n,
		    float yuan)
{
#pragma GCC unroll 4
	for (int k = 0; k < WINDOWS; k++) {
		ring_advance(w->count[k], w->sum[k], last_s / granule_s[k],
			     n->b[k]);
		count_inc(&w->count[k][n->b[k] % BUCKETS]);
		w->sum[k][n->b[k] % BUCKETS] += yuan;
	}
}

/*
 * Count a counterparty in a role's distinct ring. Each counterparty holds
 * one unit, in the bucket of its last payment with this entity: prev_s
 * (0 = no earlier payment known). The unit moves from prev's bucket to
 * now's, unless prev's bucket has left the ring, or the record was created
 * after prev (the unit died with the evicted record), or the bucket
 * saturated (its units are no longer exact).
 */
static void distinct_add(uint16_t distinct[BUCKETS], uint32_t last_s,
			 uint32_t born_s, uint32_t prev_s, const struct now *n)
{
	ring_advance(distinct, NULL, last_s / DISTINCT_GRANULE_S, n->db);
	if (prev_s && prev_s >= born_s) {
		uint32_t pb = prev_s / DISTINCT_GRANULE_S;
		uint16_t *c = &distinct[pb % BUCKETS];
		if (pb >= ring_lo(n->db) && *c != 0 && *c != UINT16_MAX)
			(*c)--;
	}
	count_inc(&distinct[n->db % BUCKETS]);
}

/* Record one payment in an entity's role: distinct counterparties, then
 * windows, then the role's last time. */
static void role_add(uint16_t distinct[BUCKETS], struct win *w,
		     uint32_t *last_s, uint32_t born_s, uint32_t prev_s,
		     const struct now *n, float yuan)
{
	HT_ASSERT(*last_s <= n->s);
	distinct_add(distinct, *last_s, born_s, prev_s, n);
	win_add(w, *last_s, n, yuan);
	*last_s = n->s;
}


/* ---- lookups ------------------------------------------------------------- */

enum look {
	L_PAYER, L_PAYEE, L_DEVICE, L_IP, L_PAIR,
	L_SEEN_PAIR, L_DEVICE_PAYER, L_IP_PAYER,
	L__COUNT
};

static const enum ht_risk_table look_table[L__COUNT] = {
	[L_PAYER] = HT_RISK_TABLE_PARTY,       [L_PAYEE] = HT_RISK_TABLE_PARTY,
	[L_DEVICE] = HT_RISK_TABLE_DEVICE,     [L_IP] = HT_RISK_TABLE_IP,
	[L_PAIR] = HT_RISK_TABLE_PAIR,         [L_SEEN_PAIR] = HT_RISK_TABLE_LINK,
	[L_DEVICE_PAYER] = HT_RISK_TABLE_LINK, [L_IP_PAYER] = HT_RISK_TABLE_LINK,
};

struct looks {
	uint64_t key[L__COUNT];
	rpos pos[L__COUNT];       /* 0 = absent */
	bool used[L__COUNT];      /* false: the payment names no such thing */
};

/* Bounded length of a NUL-terminated field of an n-byte array. */
static inline size_t field_len(const char *s, size_t n)
{
	const char *z = memchr(s, 0, n);
	return z ? (size_t)(z - s) : n;
}

static void looks_keys(const struct ht_risk_state *s,
		       const struct ht_payment *p, struct looks *lk)
{
	const uint64_t *k = s->secret;
	size_t dn = field_len(p->device, sizeof p->device);
	size_t in = field_len(p->ip, sizeof p->ip);
	uint64_t payer = hash_str(k, DOM_PARTY, p->payer,
				  field_len(p->payer, sizeof p->payer));
	uint64_t payee = hash_str(k, DOM_PARTY, p->payee,
				  field_len(p->payee, sizeof p->payee));
	uint64_t dev = hash_str(k, DOM_DEVICE, p->device, dn);
	uint64_t ip = hash_str(k, DOM_IP, p->ip, in);
	lk->key[L_PAYER] = payer;
	lk->key[L_PAYEE] = payee;
	lk->key[L_DEVICE] = dev;
	lk->key[L_IP] = ip;
	lk->key[L_PAIR] = hash_pair(k, DOM_PAIR, payer, payee);
	lk->key[L_SEEN_PAIR] = hash_pair(k, DOM_SEEN_PAIR, payer, payee);
	lk->key[L_DEVICE_PAYER] = hash_pair(k, DOM_DEVICE_PAYER, dev, payer);
	lk->key[L_IP_PAYER] = hash_pair(k, DOM_IP_PAYER, ip, payer);
	for (int i = 0; i < L__COUNT; i++) {
		lk->key[i] |= 1;   /* never 0, the empty way */
		lk->used[i] = true;
		lk->pos[i] = 0;
	}
	lk->used[L_DEVICE] = lk->used[L_DEVICE_PAYER] = dn > 0;
	lk->used[L_IP] = lk->used[L_IP_PAYER] = in > 0;
}

/*
 * Find every record. The head lines of all sets are requested first and
 * read after, so their misses overlap instead of queueing one behind the
 * other; the bodies found are then requested before compute reads them.
 */
static void looks_find(const struct ht_risk_state *s, struct looks *lk)
{
	uint32_t sets[L__COUNT][2];
	for (int i = 0; i < L__COUNT; i++) {
		if (!lk->used[i])
			continue;
		const struct tab *t = &s->tabs[look_table[i]];
		tab_sets(t, lk->key[i], sets[i]);
		__builtin_prefetch(set_at(t, sets[i][0]));
		__builtin_prefetch(set_at(t, sets[i][1]));
	}
	for (int i = 0; i < L__COUNT; i++) {
		if (!lk->used[i])
			continue;
		const struct tab *t = &s->tabs[look_table[i]];
		rpos p = set_find(t, sets[i][0], lk->key[i]);
		if (!p)
			p = set_find(t, sets[i][1], lk->key[i]);
		lk->pos[i] = p;
		if (p && t->body_bytes) {
			const char *b = pos_body(t, p);
			__builtin_prefetch(b);
			__builtin_prefetch(b + t->body_bytes - 1);
		}
	}
}

/* ---- compute ------------------------------------------------------------- */

static float since(uint32_t now_s, uint32_t then_s)
{
	return then_s && then_s <= now_s ? (float)(now_s - then_s) : 0.0f;
}

static void compute_party(const struct ht_risk_state *s,
			  const struct looks *lk, bool payer,
			  const struct now *n, double yuan, float *out)
{
	const struct tab *t = &s->tabs[HT_RISK_TABLE_PARTY];
	rpos p = lk->pos[payer ? L_PAYER : L_PAYEE];
	if (!p) {
		if (payer)
			out[HT_FEATURE_PAYER_AMOUNT_RATIO] = 1.0f;
		return;
	}
	const struct set_head *h = pos_head(t, p);
	const struct party_body *r = pos_body(t, p);
	uint32_t first = h->first_s[pos_way(p)];
	uint32_t last = h->used_s[pos_way(p)];
	if (!payer) {
		win_read(&r->in, r->in_last_s, n, &out[HT_FEATURE_PAYEE_COUNT_1M]);
		out[HT_FEATURE_PAYEE_DISTINCT_PAYERS_24H] =
			distinct_read(r->in_distinct, r->in_last_s, n);
		out[HT_FEATURE_PAYEE_AGE] = since(n->s, first);
		out[HT_FEATURE_PAYEE_IDLE] = since(n->s, last);
		return;
	}
	win_read(&r->out, r->out_last_s, n, &out[HT_FEATURE_PAYER_COUNT_1M]);
	out[HT_FEATURE_PAYER_DISTINCT_PAYEES_24H] =
		distinct_read(r->out_distinct, r->out_last_s, n);
	out[HT_FEATURE_PAYER_AGE] = since(n->s, first);
	out[HT_FEATURE_PAYER_IDLE] = since(n->s, last);
	out[HT_FEATURE_PAYER_AMOUNT_N] = (float)r->amount_n;
	if (r->amount_n == 0) {
		out[HT_FEATURE_PAYER_AMOUNT_RATIO] = 1.0f;
		return;
	}
	double typical = expm1((double)r->amount_mean);
	double sd = sqrt(r->amount_var > 0 ? (double)r->amount_var : 0.0);
	if (sd < HT_FEATURE_AMOUNT_SIGMA_MIN)
		sd = HT_FEATURE_AMOUNT_SIGMA_MIN;
	out[HT_FEATURE_PAYER_AMOUNT_TYPICAL] = (float)typical;
	out[HT_FEATURE_PAYER_AMOUNT_RATIO] =
		(float)(yuan / (typical > 0.01 ? typical : 0.01));
	out[HT_FEATURE_PAYER_AMOUNT_Z] =
		(float)((log1p(yuan) - (double)r->amount_mean) / sd);
}

/* Device or IP: same shape, different feature indexes. */
struct entity_features {
	enum look rec, with_payer;
	int windows, present, is_new, first_seen, new_for_payer, distinct;
};

static const struct entity_features device_features = {
	L_DEVICE, L_DEVICE_PAYER,
	HT_FEATURE_DEVICE_COUNT_1M, HT_FEATURE_DEVICE_PRESENT,
	HT_FEATURE_DEVICE_NEW, HT_FEATURE_DEVICE_FIRST_SEEN,
	HT_FEATURE_DEVICE_NEW_FOR_PAYER, HT_FEATURE_DEVICE_DISTINCT_PAYERS_24H,
};

static const struct entity_features ip_features = {
	L_IP, L_IP_PAYER,
	HT_FEATURE_IP_COUNT_1M, HT_FEATURE_IP_PRESENT, HT_FEATURE_IP_NEW,
	HT_FEATURE_IP_FIRST_SEEN, HT_FEATURE_IP_NEW_FOR_PAYER,
	HT_FEATURE_IP_DISTINCT_PAYERS_24H,
};

static void compute_entity(const struct ht_risk_state *s,
			   const struct looks *lk,
			   const struct entity_features *ef,
			   const struct now *n, float *out)
{
	if (!lk->used[ef->rec])
		return;   /* absent: every feature 0 */
	out[ef->present] = 1.0f;
	out[ef->new_for_payer] = lk->pos[ef->with_payer] ? 0.0f : 1.0f;
	rpos p = lk->pos[ef->rec];
	if (!p) {
		out[ef->is_new] = 1.0f;
		return;
	}
	const struct tab *t = &s->tabs[look_table[ef->rec]];
	const struct set_head *h = pos_head(t, p);
	const struct entity_body *r = pos_body(t, p);
	uint32_t last = h->used_s[pos_way(p)];
	out[ef->first_seen] = since(n->s, h->first_s[pos_way(p)]);
	win_read(&r->w, last, n, &out[ef->windows]);
	out[ef->distinct] = distinct_read(r->distinct, last, n);
}

static void compute_pair(const struct ht_risk_state *s,
			 const struct looks *lk, const struct now *n,
			 float *out)
{
	rpos p = lk->pos[L_PAIR];
	if (p) {
		const struct tab *t = &s->tabs[HT_RISK_TABLE_PAIR];
		const struct pair_body *r = pos_body(t, p);
		win_read(&r->w, pos_head(t, p)->used_s[pos_way(p)], n,
			 &out[HT_FEATURE_PAIR_COUNT_1M]);
	}
	rpos q = lk->pos[L_SEEN_PAIR];
	out[HT_FEATURE_PAIR_NEW] = q ? 0.0f : 1.0f;
	if (q) {
		const struct tab *t = &s->tabs[HT_RISK_TABLE_LINK];
		out[HT_FEATURE_PAIR_FIRST_SEEN] =
			since(n->s, pos_head(t, q)->first_s[pos_way(q)]);
	}
}

/* Reporting and round lines, in fen: see docs/risk-features.md. */
static const uint64_t lines_fen[] = {
	500000, 1000000, 2000000, 5000000, 20000000, 50000000, 200000000,
};

static bool under_line(const struct ht_payment *p)
{
	if (memcmp(p->currency, "CNY", 4) != 0)
		return false;
	for (size_t i = 0; i < sizeof lines_fen / sizeof lines_fen[0]; i++)
		if (p->amount < lines_fen[i] &&
		    p->amount * 10 >= lines_fen[i] * 9)
			return true;
	return false;
}

static void compute_payment(const struct ht_payment *p, double yuan,
			    float *out)
{
	const int64_t day_ms = 86400000;
	int64_t local = p->ts_ms + (int64_t)HT_FEATURE_LOCAL_OFFSET_S * 1000;
	int64_t days = local / day_ms - (local % day_ms < 0);
	int64_t in_day = local - days * day_ms;
	out[HT_FEATURE_AMOUNT] = (float)yuan;
	out[HT_FEATURE_AMOUNT_LOG] = (float)log1p(yuan);
	out[HT_FEATURE_AMOUNT_UNDER_LINE] = under_line(p) ? 1.0f : 0.0f;
	out[HT_FEATURE_HOUR] = (float)((double)in_day / 3600000.0);
	/* 1970-01-01 was a Thursday (3 counting from Monday = 0). */
	out[HT_FEATURE_WEEKDAY] = (float)(((days + 3) % 7 + 7) % 7);
	out[HT_FEATURE_CHANNEL_CODE] = (float)p->channel;
}

static uint32_t effective_s(const struct ht_risk_state *s, int64_t ts_ms)
{
	return secs_of(ts_ms > s->clock_ms ? ts_ms : s->clock_ms);
}

void ht_features_compute(const struct ht_risk_state *s,
			 const struct ht_payment *p,
			 float out[HT_FEATURE__COUNT])
{
	HT_ASSERT(s != NULL);
	HT_ASSERT(p != NULL);
	HT_ASSERT(out != NULL);
	struct looks lk;
	struct now n;
	looks_keys(s, p, &lk);
	looks_find(s, &lk);
	now_make(&n, effective_s(s, p->ts_ms));
	memset(out, 0, HT_FEATURE__COUNT * sizeof out[0]);
	double yuan = (double)p->amount / 100.0;
	compute_party(s, &lk, true, &n, yuan, out);
	compute_party(s, &lk, false, &n, yuan, out);
	compute_entity(s, &lk, &device_features, &n, out);
	compute_entity(s, &lk, &ip_features, &n, out);
	compute_pair(s, &lk, &n, out);
	compute_payment(p, yuan, out);
}

/* ---- update -------------------------------------------------------------- */

static void amount_add(struct party_body *r, double yuan)
{
	if (r->amount_n < UINT32_MAX)
		r->amount_n++;
	uint32_t n = r->amount_n < HT_FEATURE_AMOUNT_HISTORY
			     ? r->amount_n
			     : HT_FEATURE_AMOUNT_HISTORY;
	double w = 1.0 / n;
	double mean = r->amount_mean, var = r->amount_var;
	double d = log1p(yuan) - mean;
	mean += w * d;
	var = (1.0 - w) * (var + w * d * d);
	r->amount_mean = (float)mean;
	r->amount_var = (float)var;
}

/* The last time of a link before this payment; 0 when unknown. */
static uint32_t link_last(const struct ht_risk_state *s,
			  const struct looks *lk, enum look i)
{
	rpos p = lk->pos[i];
	if (!p)
		return 0;
	return pos_head(&s->tabs[HT_RISK_TABLE_LINK], p)->used_s[pos_way(p)];
}

/* The record of lookup i, created when absent with first seen = now. */
struct rec {
	struct set_head *h;
	unsigned w;
	void *body;
};

static struct rec upsert(struct ht_risk_state *s, const struct looks *lk,
			 enum look i, uint32_t now_s)
{
	struct tab *t = &s->tabs[look_table[i]];
	bool created;
	rpos p = tab_upsert(t, lk->key[i], lk->pos[i], &created);
	struct rec r = {pos_head(t, p), pos_way(p), NULL};
	if (t->body_bytes)
		r.body = pos_body(t, p);
	if (created)
		r.h->first_s[r.w] = now_s;
	return r;
}

static void update_party(struct ht_risk_state *s, const struct looks *lk,
			 bool payer, uint32_t prev_pair, const struct now *n,
			 double yuan)
{
	struct rec r = upsert(s, lk, payer ? L_PAYER : L_PAYEE, n->s);
	struct party_body *b = r.body;
	uint32_t born = r.h->first_s[r.w];
	if (payer) {
		role_add(b->out_distinct, &b->out, &b->out_last_s, born,
			 prev_pair, n, (float)yuan);
		amount_add(b, yuan);
	} else {
		role_add(b->in_distinct, &b->in, &b->in_last_s, born,
			 prev_pair, n, (float)yuan);
	}
	r.h->used_s[r.w] = n->s;
}

static void update_entity(struct ht_risk_state *s, const struct looks *lk,
			  enum look i, uint32_t prev_s, const struct now *n,
			  float yuan)
{
	if (!lk->used[i])
		return;
	struct rec r = upsert(s, lk, i, n->s);
	struct entity_body *b = r.body;
	role_add(b->distinct, &b->w, &r.h->used_s[r.w], r.h->first_s[r.w],
		 prev_s, n, yuan);
}

static void update_link(struct ht_risk_state *s, const struct looks *lk,
			enum look i, uint32_t now_s)
{
	if (!lk->used[i])
		return;
	struct rec r = upsert(s, lk, i, now_s);
	r.h->used_s[r.w] = now_s;
}

void ht_features_update(struct ht_risk_state *s, const struct ht_payment *p)
{
	HT_ASSERT(s != NULL);
	HT_ASSERT(p != NULL);
	int64_t ts = p->ts_ms;
	if (ts < s->clock_ms) {
		ts = s->clock_ms;
		s->clamped++;
	}
	s->clock_ms = ts;
	s->updates++;
	struct now n;
	now_make(&n, secs_of(ts));
	struct looks lk;
	looks_keys(s, p, &lk);
	looks_find(s, &lk);
	double yuan = (double)p->amount / 100.0;

	/* Earlier times of the links, before anything changes them. */
	uint32_t prev_pair = link_last(s, &lk, L_SEEN_PAIR);
	uint32_t prev_dev = link_last(s, &lk, L_DEVICE_PAYER);
	uint32_t prev_ip = link_last(s, &lk, L_IP_PAYER);

	/* One record at a time: an insert may evict a record found before,
	 * so none is held across another's insert in the same table. */
	update_party(s, &lk, true, prev_pair, &n, yuan);
	update_party(s, &lk, false, prev_pair, &n, yuan);
	update_entity(s, &lk, L_DEVICE, prev_dev, &n, (float)yuan);
	update_entity(s, &lk, L_IP, prev_ip, &n, (float)yuan);

	struct rec pr = upsert(s, &lk, L_PAIR, n.s);
	win_add(&((struct pair_body *)pr.body)->w, pr.h->used_s[pr.w], &n,
		(float)yuan);
	pr.h->used_s[pr.w] = n.s;

	update_link(s, &lk, L_SEEN_PAIR, n.s);
	update_link(s, &lk, L_DEVICE_PAYER, n.s);
	update_link(s, &lk, L_IP_PAYER, n.s);
}

/*
 * hub.c — one open data store: engine + store + journal, and group commit.
 *
 * Owner: core. The hub owns the order of durability: the engine decides,
 * the hub encodes each committed event as a journal leaf, extends the
 * Merkle tree, signs the new head and hands everything to the store in one
 * transaction. Only when that returns is anything acknowledged. It must
 * never let memory run ahead of the store silently: a failed commit
 * poisons the hub, and reopening replays the store. It also owns what the
 * engine does not know: the owners of accounts (interned participant ids,
 * durable with their accounts) and, for receipts, the Merkle nodes of the
 * last commit.
 */
#include "huitong/hub.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "huitong/journal.h"
#include "huitong/merkle.h"
#include "huitong/store.h"

#define KEY_FILE "hub-key.pem"
/* Commits with at least this many events hash their leaves on a second
 * thread while the store writes the rows; smaller ones hash inline (a
 * thread start costs more than hashing a few leaves). */
#define HT_HASH_THREAD_EVENTS_MIN 256

/* Account owners: every distinct participant id once, and one u32 per
 * account slot naming it (0: none), so an owner costs 4 bytes an account. */
struct owners {
	uint32_t *of_slot;          /* 1 + index into name[], 0 = none */
	size_t slots, slots_cap;    /* slots covered (the rest have none) */
	char **name;
	size_t count, cap;
	uint32_t *table;            /* open addressing: 1 + index into name[] */
	size_t table_cap;           /* power of two, > 2 * count */
	struct ht_store_owner_row *rows; /* set since the last commit */
	size_t rows_count, rows_cap;
};

/* Risk decisions noted since the last commit (hub.h): rows whose texts
 * are offsets into text until the commit hands them to the store. */
struct risk_note {
	size_t event_index;
	struct ht_store_risk_row row;   /* reasons/model_version unset */
	size_t reasons_off, model_off;
};
struct risk_notes {
	struct risk_note *note;
	size_t count, cap;
	char *text;
	size_t text_len, text_cap;
	struct ht_store_risk_row *rows; /* built at commit */
	size_t rows_cap;
};

struct ht_hub {
	struct ht_store *store;
	struct ht_ledger *ledger;          /* NULL when readonly */
	struct ht_store_config cfg;
	struct ht_key *key;                /* private (writer) or public */
	struct ht_hasher *hasher;
	struct ht_hasher *thread_hasher;   /* the hashing thread's own */
	struct ht_clock clock;
	struct ht_merkle_frontier frontier; /* as of the last commit */
	struct ht_sth head;                /* the last committed head */
	uint64_t accounts_committed;       /* stored account rows */
	bool readonly, journal_off, poisoned;
	/* commit scratch, reused */
	uint8_t *event_data;
	size_t event_data_cap;
	uint32_t *event_off;
	size_t event_off_cap;
	uint8_t *nodes;                    /* levels >= K, for the store */
	size_t nodes_cap;
	/* Every node the last commit completed, all levels, in completion
	 * order from ht_merkle_node_count(recent_prev.size): the hashing
	 * writes them here directly, and receipts read them back. */
	uint8_t *all_nodes;
	size_t all_nodes_cap;
	struct ht_merkle_frontier recent_prev; /* frontier before that commit */
	bool recent_valid;                 /* all_nodes is the head's commit */
	struct owners owners;
	uint8_t *fps;
	size_t fps_cap;
	struct ht_store_account_row *rows;
	size_t rows_cap;
	struct risk_notes risk;
};

/* Grow *buf to hold at least n elements of size sz. */
static enum ht_err reserve(void **buf, size_t *cap, size_t n, size_t sz)
{
	if (n <= *cap)
		return HT_OK;
	size_t c = *cap ? *cap : 1024;
	while (c < n)
		c *= 2;
	void *p = realloc(*buf, c * sz);
	if (!p)
		return HT_ERR_NOMEM;
	*buf = p;
	*cap = c;
	return HT_OK;
}

/* ---- account owners ---------------------------------------------------- */

bool ht_owner_valid(const char *owner, size_t len)
{
	if (!owner || len == 0 || len > HT_OWNER_BYTES_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = owner[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' ||
			  c == '-';
		if (!ok)
			return false;
	}
	return true;
}

/* FNV-1a: participant ids are few and short, and registered by the
 * operator (not chosen by clients), so flooding the table is no concern. */
static uint32_t owner_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

/* The table entry holding the owner, or the empty one where it would go.
 * The table is never full (grown at half), so the probe ends. */
static uint32_t *owner_probe(struct owners *o, const char *s, size_t len)
{
	size_t mask = o->table_cap - 1;
	for (size_t i = owner_hash(s, len) & mask;; i = (i + 1) & mask) {
		uint32_t v = o->table[i];
		if (v == 0)
			return &o->table[i];
		const char *n = o->name[v - 1];
		if (strncmp(n, s, len) == 0 && n[len] == '\0')
			return &o->table[i];
	}
}

static enum ht_err owner_table_grow(struct owners *o)
{
	size_t cap = o->table_cap ? 2 * o->table_cap : 64;
	uint32_t *t = calloc(cap, sizeof *t);
	if (!t)
		return HT_ERR_NOMEM;
	free(o->table);
	o->table = t;
	o->table_cap = cap;
	for (size_t i = 0; i < o->count; i++)
		*owner_probe(o, o->name[i], strlen(o->name[i])) = (uint32_t)i + 1;
	return HT_OK;
}

/* *index gets 1 + the index of the owner's one copy, made on first use. */
static enum ht_err owner_intern(struct owners *o, const char *s, size_t len,
				uint32_t *index)
{
	HT_ASSERT(len > 0 && len <= HT_OWNER_BYTES_MAX);
	HT_ASSERT(o->count < UINT32_MAX - 1);
	enum ht_err err = HT_OK;
	if (2 * (o->count + 1) > o->table_cap)
		err = owner_table_grow(o);
	if (!err)
		err = reserve((void **)&o->name, &o->cap, o->count + 1,
			      sizeof *o->name);
	if (err)
		return err;
	uint32_t *slot = owner_probe(o, s, len);
	if (*slot == 0) {
		char *copy = malloc(len + 1);
		if (!copy)
			return HT_ERR_NOMEM;
		memcpy(copy, s, len);
		copy[len] = '\0';
		o->name[o->count++] = copy;
		*slot = (uint32_t)o->count;
	}
	*index = *slot;
	return HT_OK;
}

/* Room for owners of slots below `slots` and `rows` uncommitted rows. */
static enum ht_err owners_reserve(struct owners *o, size_t slots, size_t rows)
{
	enum ht_err err = reserve((void **)&o->of_slot, &o->slots_cap, slots,
				  sizeof *o->of_slot);
	if (!err)
		err = reserve((void **)&o->rows, &o->rows_cap, rows ? rows : 1,
			      sizeof *o->rows);
	return err;
}

/* Owner `index` (1-based) for account slot (capacity reserved). */
static void owner_set(struct owners *o, size_t slot, uint32_t index)
{
	HT_ASSERT(slot < o->slots_cap);
	HT_ASSERT(index >= 1 && index <= o->count);
	if (slot >= o->slots) {
		memset(o->of_slot + o->slots, 0,
		       (slot + 1 - o->slots) * sizeof *o->of_slot);
		o->slots = slot + 1;
	}
	HT_ASSERT(o->of_slot[slot] == 0); /* an account is created once */
	o->of_slot[slot] = index;
}

static void owners_free(struct owners *o)
{
	for (size_t i = 0; i < o->count; i++)
		free(o->name[i]);
	free(o->name);
	free(o->of_slot);
	free(o->table);
	free(o->rows);
}

/* ---- init --------------------------------------------------------------- */

static enum ht_err write_key_file(const char *path, const char *pem, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? HT_ERR_EXISTS : HT_ERR_IO;
	bool ok = write(fd, pem, len) == (ssize_t)len && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	return ok ? HT_OK : HT_ERR_IO;
}

static enum ht_err first_head(struct ht_store *store, struct ht_key *key,
			      enum ht_hash_alg hash, enum ht_sign_alg sign)
{
	struct ht_sth h = {.seq = 0, .tree_size = 0, .hash = hash, .sign = sign};
	h.time_ns = ht_now_wall_ns();
	enum ht_err err = ht_hash(hash, "", 0, h.root);
	if (!err)
		err = ht_sth_sign(key, &h);
	if (err)
		return err;
	struct ht_store_commit c = {.head = &h};
	return ht_store_commit(store, &c);
}

enum ht_err ht_hub_init(const char *data, const struct ht_hub_init_options *opt)
{
	struct ht_store_config cfg = {0};
	cfg.hash = opt && opt->hash ? opt->hash : HT_HASH_SM3;
	cfg.sign = opt && opt->sign ? opt->sign : HT_SIGN_SM2;
	snprintf(cfg.sm2_id, sizeof cfg.sm2_id, "%s", HT_SM2_DEFAULT_ID);
	struct ht_key *key = NULL;
	char *priv = NULL, *pub = NULL;
	size_t priv_len, pub_len;
	enum ht_err err = ht_key_generate(cfg.sign, cfg.sm2_id, &key);
	if (!err)
		err = ht_key_private_pem(key, &priv, &priv_len);
	if (!err)
		err = ht_key_public_pem(key, &pub, &pub_len);
	if (!err && pub_len >= sizeof cfg.public_key_pem)
		err = HT_ERR_LIMIT;
	if (!err) {
		memcpy(cfg.public_key_pem, pub, pub_len + 1);
		err = ht_store_create(data, &cfg);
	}
	char path[4200];
	if (!err) {
		snprintf(path, sizeof path, "%s/%s", data, KEY_FILE);
		err = write_key_file(path, priv, priv_len);
	}
	struct ht_store *store = NULL;
	if (!err)
		err = ht_store_open(data, false, &store);
	if (!err)
		err = first_head(store, key, cfg.hash, cfg.sign);
	ht_store_close(store);
	if (priv)
		memset(priv, 0, priv_len);
	free(priv);
	free(pub);
	ht_key_destroy(key);
	return err;
}

/* ---- open --------------------------------------------------------------- */

static enum ht_err load_key(struct ht_hub *hub)
{
	if (hub->readonly)
		return ht_key_from_pem(hub->cfg.public_key_pem,
				       strlen(hub->cfg.public_key_pem),
				       hub->cfg.sm2_id, &hub->key);
	char path[4200];
	enum ht_err err = ht_store_path(hub->store, KEY_FILE, path, sizeof path);
	if (err)
		return err;
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "huitong: cannot read hub key %s\n", path);
		return HT_ERR_NOT_FOUND;
	}
	char pem[8192];
	size_t n = fread(pem, 1, sizeof pem - 1, f);
	fclose(f);
	pem[n] = '\0';
	err = ht_key_from_pem(pem, n, hub->cfg.sm2_id, &hub->key);
	memset(pem, 0, sizeof pem);
	return err;
}

/* Events are decoded into a buffer and replayed in chunks, which lets the
 * engine prefetch what the coming events touch. */
#define REPLAY_CHUNK 4096

struct replay_ctx {
	struct ht_ledger *ledger;
	uint64_t next_leaf;
	struct ht_event *buf;
	size_t n;
	enum ht_err err;
};

static enum ht_err replay_flush(struct replay_ctx *c)
{
	size_t done = 0;
	enum ht_err err = ht_ledger_replay_batch(c->ledger, c->buf, c->n, &done);
	if (err)
		fprintf(stderr, "huitong: store: event %llu cannot replay: %s\n",
			(unsigned long long)(c->next_leaf - c->n + done),
			ht_strerror(err));
	c->n = 0;
	return err;
}

static int replay_event(void *p, uint64_t leaf, const uint8_t *data,
			size_t len)
{
	struct replay_ctx *c = p;
	if (leaf != c->next_leaf) {
		fprintf(stderr, "huitong: store: event %llu missing\n",
			(unsigned long long)c->next_leaf);
		c->err = HT_ERR_CORRUPT;
		return 1;
	}
	c->err = ht_event_decode(data, len, &c->buf[c->n]);
	if (c->err) {
		fprintf(stderr, "huitong: store: event %llu is malformed\n",
			(unsigned long long)leaf);
		return 1;
	}
	c->next_leaf++;
	if (++c->n == REPLAY_CHUNK)
		c->err = replay_flush(c);
	return c->err != HT_OK;
}

struct compare_ctx {
	struct ht_hub *hub;
	enum ht_err err;
};

static int compare_account(void *p, uint64_t slot, const struct ht_account *s)
{
	struct compare_ctx *c = p;
	c->hub->accounts_committed++;
	if (!ht_ledger_account_matches(c->hub->ledger, slot, s)) {
		char id[HT_U128_DEC_SIZE];
		fprintf(stderr,
			"huitong: store: account %s (slot %llu): stored balances"
			" differ from the replayed events\n",
			ht_u128_format(s->id, id), (unsigned long long)slot);
		c->err = HT_ERR_CORRUPT;
		return 1;
	}
	return 0;
}

static enum ht_err node_from_store(void *ctx, unsigned level, uint64_t index,
				   uint8_t out[HT_HASH_BYTES]);

/* Rebuild the right frontier of the tree from O(log n) stored nodes. */
static enum ht_err load_frontier(struct ht_hub *hub, uint64_t size)
{
	ht_merkle_frontier_init(&hub->frontier, size);
	for (unsigned k = 0; k < 64; k++) {
		if (!(size >> k & 1))
			continue;
		uint64_t j = (size >> k) - 1;
		enum ht_err err = node_from_store(hub, k, j,
						  hub->frontier.hash[k]);
		if (err)
			return err == HT_ERR_NOT_FOUND ? HT_ERR_CORRUPT : err;
	}
	uint8_t root[HT_HASH_BYTES];
	enum ht_err err = ht_merkle_frontier_root(&hub->frontier, hub->hasher, root);
	if (err)
		return err;
	if (memcmp(root, hub->head.root, HT_HASH_BYTES)) {
		fprintf(stderr, "huitong: store: head %llu root does not match"
				" its stored nodes\n",
			(unsigned long long)hub->head.seq);
		return HT_ERR_CORRUPT;
	}
	return HT_OK;
}

static enum ht_err load_head(struct ht_hub *hub)
{
	enum ht_err err = ht_store_head_last(hub->store, &hub->head);
	if (err)
		return err == HT_ERR_NOT_FOUND ? HT_ERR_CORRUPT : err;
	if (ht_sth_verify(hub->key, &hub->head) != HT_OK) {
		fprintf(stderr, "huitong: store: head %llu has a bad signature\n",
			(unsigned long long)hub->head.seq);
		return HT_ERR_CORRUPT;
	}
	return HT_OK;
}

static enum ht_err replay_all(struct ht_hub *hub)
{
	struct replay_ctx rc = {.ledger = hub->ledger};
	rc.buf = malloc(REPLAY_CHUNK * sizeof *rc.buf);
	if (!rc.buf)
		return HT_ERR_NOMEM;
	enum ht_err err = ht_store_events_each(hub->store, 0, replay_event, &rc);
	if (!err)
		err = rc.err;
	if (!err && rc.n)
		err = replay_flush(&rc);
	free(rc.buf);
	if (!err && rc.next_leaf != hub->head.tree_size) {
		fprintf(stderr,
			"huitong: store: %llu events but the head covers %llu\n",
			(unsigned long long)rc.next_leaf,
			(unsigned long long)hub->head.tree_size);
		err = HT_ERR_CORRUPT;
	}
	struct compare_ctx cc = {.hub = hub};
	if (!err)
		err = ht_store_accounts_each(hub->store, compare_account, &cc);
	if (!err)
		err = cc.err;
	if (!err && hub->accounts_committed !=
			    ht_ledger_account_count(hub->ledger)) {
		fprintf(stderr, "huitong: store: account rows missing\n");
		err = HT_ERR_CORRUPT;
	}
	if (!err)
		err = ht_ledger_check(hub->ledger);
	return err;
}

struct owner_load {
	struct ht_hub *hub;
	size_t accounts;
	enum ht_err err;
};

static int load_owner(void *p, uint64_t slot, const char *owner, size_t len)
{
	struct owner_load *c = p;
	struct owners *o = &c->hub->owners;
	uint32_t index;
	if (slot >= c->accounts || !ht_owner_valid(owner, len) ||
	    (slot < o->slots && o->of_slot[slot])) {
		fprintf(stderr, "huitong: store: owner of account slot %llu:"
				" no such account or not a participant id\n",
			(unsigned long long)slot);
		c->err = HT_ERR_CORRUPT;
		return 1;
	}
	c->err = owners_reserve(o, c->accounts, 0);
	if (!c->err)
		c->err = owner_intern(o, owner, len, &index);
	if (!c->err)
		owner_set(o, (size_t)slot, index);
	return c->err != HT_OK;
}

/* Owners of the committed accounts (replayed before: slots are known). */
static enum ht_err load_owners(struct ht_hub *hub)
{
	struct owner_load c = {
		.hub = hub, .accounts = ht_ledger_account_count(hub->ledger)};
	enum ht_err err = ht_store_owners_each(hub->store, load_owner, &c);
	return err ? err : c.err;
}

enum ht_err ht_hub_open(const char *data, const struct ht_hub_open_options *opt,
			struct ht_hub **out)
{
	struct ht_hub *hub = calloc(1, sizeof *hub);
	if (!hub)
		return HT_ERR_NOMEM;
	hub->readonly = opt && opt->readonly;
	hub->journal_off = opt && opt->journal_off;
	hub->clock = opt && opt->clock ? *opt->clock : ht_clock_wall;
	enum ht_err err = ht_store_open(data, hub->readonly, &hub->store);
	if (!err)
		err = ht_store_get_config(hub->store, &hub->cfg);
	if (!err)
		err = load_key(hub);
	if (!err)
		err = ht_hasher_create(hub->cfg.hash, &hub->hasher);
	if (!err)
		err = load_head(hub);
	if (!err && !hub->readonly)
		err = ht_ledger_create(&hub->clock, &hub->ledger);
	if (!err && !hub->readonly)
		err = replay_all(hub);
	if (!err && !hub->readonly)
		err = load_owners(hub);
	if (!err && !hub->readonly)
		err = load_frontier(hub, hub->head.tree_size);
	if (err) {
		ht_hub_close(hub);
		return err;
	}
	*out = hub;
	return HT_OK;
}

void ht_hub_close(struct ht_hub *hub)
{
	if (!hub)
		return;
	ht_ledger_destroy(hub->ledger);
	ht_store_close(hub->store);
	ht_key_destroy(hub->key);
	ht_hasher_destroy(hub->hasher);
	ht_hasher_destroy(hub->thread_hasher);
	free(hub->event_data);
	free(hub->event_off);
	free(hub->nodes);
	free(hub->all_nodes);
	owners_free(&hub->owners);
	free(hub->fps);
	free(hub->rows);
	free(hub->risk.note);
	free(hub->risk.text);
	free(hub->risk.rows);
	free(hub);
}

struct ht_ledger *ht_hub_ledger(struct ht_hub *hub)
{
	return hub->ledger;
}

static enum ht_err writable(const struct ht_hub *hub)
{
	if (hub->readonly)
		return HT_ERR_INVALID;
	if (hub->poisoned)
		return HT_ERR_POISONED;
	return HT_OK;
}

enum ht_err ht_hub_create_accounts(struct ht_hub *hub,
				   const struct ht_account *in, size_t n,
				   uint16_t *results)
{
	return ht_hub_create_accounts_owned(hub, in, n, NULL, results);
}

/* Give every account created ok by the call its owner (memory reserved). */
static void owners_record(struct ht_hub *hub, const struct ht_account *in,
			  size_t n, const uint16_t *results, uint32_t index)
{
	struct owners *o = &hub->owners;
	for (size_t i = 0; i < n; i++) {
		if (results[i] != HT_R_OK)
			continue;
		const struct ht_account *a =
			ht_ledger_account_get(hub->ledger, in[i].id);
		HT_ASSERT(a != NULL);
		size_t slot = ht_ledger_account_index(hub->ledger, a);
		HT_ASSERT(slot >= hub->accounts_committed);
		owner_set(o, slot, index);
		HT_ASSERT(o->rows_count < o->rows_cap);
		o->rows[o->rows_count++] = (struct ht_store_owner_row){
			.slot = slot, .owner = o->name[index - 1]};
	}
}

enum ht_err ht_hub_create_accounts_owned(struct ht_hub *hub,
					 const struct ht_account *in, size_t n,
					 const char *owner, uint16_t *results)
{
	enum ht_err err = writable(hub);
	if (err || !owner)
		return err ? err
			   : ht_ledger_create_accounts(hub->ledger, in, n,
						       results);
	size_t len = strnlen(owner, HT_OWNER_BYTES_MAX + 1);
	if (!ht_owner_valid(owner, len))
		return HT_ERR_INVALID;
	if (n > HT_BATCH_EVENTS_MAX)
		return HT_ERR_LIMIT;
	/* Everything that can fail first: the engine call cannot be undone. */
	uint32_t index;
	err = owner_intern(&hub->owners, owner, len, &index);
	if (!err)
		err = owners_reserve(&hub->owners,
				     ht_ledger_account_count(hub->ledger) + n,
				     hub->owners.rows_count + n);
	if (!err)
		err = ht_ledger_create_accounts(hub->ledger, in, n, results);
	if (!err)
		owners_record(hub, in, n, results, index);
	return err;
}

const char *ht_hub_account_owner(struct ht_hub *hub, ht_u128 account_id)
{
	struct owners *o = &hub->owners;
	uint32_t index = 0;
	if (hub->readonly) {
		char buf[HT_OWNER_BYTES_MAX + 1];
		if (ht_store_account_owner(hub->store, account_id, buf,
					   sizeof buf) ||
		    !ht_owner_valid(buf, strlen(buf)) ||
		    owner_intern(o, buf, strlen(buf), &index))
			return NULL;
		return o->name[index - 1];
	}
	const struct ht_account *a = ht_ledger_account_get(hub->ledger,
							   account_id);
	if (!a)
		return NULL;
	size_t slot = ht_ledger_account_index(hub->ledger, a);
	if (slot < o->slots)
		index = o->of_slot[slot];
	return index ? o->name[index - 1] : NULL;
}

enum ht_err ht_hub_create_transfers(struct ht_hub *hub,
				    const struct ht_transfer *in, size_t n,
				    uint16_t *results)
{
	enum ht_err err = writable(hub);
	return err ? err
		   : ht_ledger_create_transfers(hub->ledger, in, n, results);
}

enum ht_err ht_hub_create_transfers_screened(struct ht_hub *hub,
					     const struct ht_transfer *in,
					     size_t n, const uint16_t *refuse,
					     uint16_t *results)
{
	enum ht_err err = writable(hub);
	return err ? err
		   : ht_ledger_create_transfers_screened(hub->ledger, in, n,
							 refuse, results);
}

enum ht_err ht_hub_expire(struct ht_hub *hub)
{
	enum ht_err err = writable(hub);
	if (!err)
		err = ht_ledger_expire(hub->ledger);
	return err ? err : ht_hub_commit(hub, NULL);
}

enum ht_err ht_hub_index(struct ht_hub *hub)
{
	enum ht_err err = writable(hub);
	return err ? err : ht_store_index_catch_up(hub->store);
}

/* ---- risk decisions ------------------------------------------------------ */

static ht_u128 event_id_of(const struct ht_event *e)
{
	return e->kind == HT_EVENT_TRANSFER  ? e->u.transfer.id
	       : e->kind == HT_EVENT_REFUSAL ? e->u.refusal.id
					     : 0;
}

enum ht_err ht_hub_risk_note(struct ht_hub *hub, size_t event_index,
			     const struct ht_risk_row *row)
{
	enum ht_err err = writable(hub);
	if (err)
		return err;
	struct ht_ledger_changes ch;
	ht_ledger_changes(hub->ledger, &ch);
	size_t rl = strnlen(row->reasons, sizeof row->reasons);
	size_t ml = strnlen(row->model_version, sizeof row->model_version);
	if (event_index >= ch.events_count || row->id == 0 ||
	    event_id_of(&ch.events[event_index]) != row->id ||
	    row->decision > 2 || rl == sizeof row->reasons ||
	    ml == sizeof row->model_version)
		return HT_ERR_INVALID;
	struct risk_notes *r = &hub->risk;
	if (r->count && event_index <= r->note[r->count - 1].event_index)
		return HT_ERR_INVALID; /* one per leaf, in leaf order */
	err = reserve((void **)&r->note, &r->cap, r->count + 1, sizeof *r->note);
	if (!err)
		err = reserve((void **)&r->text, &r->text_cap, r->text_len + rl + ml + 1,
			      1);
	if (err)
		return err;
	struct risk_note *n = &r->note[r->count++];
	n->event_index = event_index;
	n->row = (struct ht_store_risk_row){
		.id = row->id,
		.debit_account_id = row->debit_account_id,
		.credit_account_id = row->credit_account_id,
		.time_ms = row->time_ms,
		.score = row->score,
		.rules_version = row->rules_version,
		.has_rules = row->has_rules,
		.decision = row->decision,
		.reasons_len = rl,
		.model_len = ml,
	};
	n->reasons_off = r->text_len;
	memcpy(r->text + r->text_len, row->reasons, rl);
	r->text_len += rl;
	n->model_off = r->text_len;
	memcpy(r->text + r->text_len, row->model_version, ml);
	r->text_len += ml;
	return HT_OK;
}

/* The store rows of the notes, leaves counted from the head before the
 * commit. */
static enum ht_err risk_rows(struct ht_hub *hub, size_t events_count)
{
	struct risk_notes *r = &hub->risk;
	enum ht_err err = reserve((void **)&r->rows, &r->rows_cap,
				  r->count ? r->count : 1, sizeof *r->rows);
	if (err)
		return err;
	for (size_t i = 0; i < r->count; i++) {
		const struct risk_note *n = &r->note[i];
		HT_ASSERT(n->event_index < events_count);
		r->rows[i] = n->row;
		r->rows[i].leaf = hub->head.tree_size + n->event_index;
		r->rows[i].reasons = r->text + n->reasons_off;
		r->rows[i].model_version = r->text + n->model_off;
	}
	return HT_OK;
}

enum ht_err ht_hub_risk_get(struct ht_hub *hub, ht_u128 id,
			    struct ht_risk_row *out)
{
	uint64_t leaf;
	enum ht_err err = ht_store_transfer_leaf(hub->store, id, &leaf);
	if (err == HT_ERR_NOT_FOUND)
		err = ht_store_refusal_leaf(hub->store, id, &leaf);
	if (!err)
		err = ht_store_risk_get(hub->store, leaf, out);
	if (!err && out->id != id)
		err = HT_ERR_CORRUPT;
	return err;
}

enum ht_err ht_hub_risk_each(struct ht_hub *hub, int decision,
			     int (*fn)(void *ctx, const struct ht_risk_row *row),
			     void *ctx)
{
	return ht_store_risk_each(hub->store, decision, fn, ctx);
}

/* ---- commit ------------------------------------------------------------- */

static enum ht_err encode_events(struct ht_hub *hub,
				 const struct ht_ledger_changes *ch)
{
	size_t n = ch->events_count;
	enum ht_err err = reserve((void **)&hub->event_data, &hub->event_data_cap,
				  n * HT_LEAF_BYTES_MAX, 1);
	if (!err)
		err = reserve((void **)&hub->event_off, &hub->event_off_cap,
			      n + 1, sizeof(uint32_t));
	if (err)
		return err;
	uint32_t off = 0;
	for (size_t i = 0; i < n; i++) {
		size_t len;
		hub->event_off[i] = off;
		err = ht_event_encode(&ch->events[i], hub->event_data + off, &len);
		if (err)
			return err;
		off += (uint32_t)len;
	}
	hub->event_off[n] = off;
	return HT_OK;
}

/* Hash this commit's n leaves into a copy of the frontier. Every node
 * they complete is written straight into hub->all_nodes (kept for
 * receipts: no extra copy), and those of the stored levels also into
 * hub->nodes. Runs on the hashing thread for large commits, so it touches
 * nothing but its own hasher, f, hub->all_nodes, hub->nodes and hub->fps. */
static enum ht_err hash_leaves(struct ht_hub *hub, struct ht_hasher *hasher,
			       size_t n, struct ht_merkle_frontier *f,
			       size_t *node_count)
{
	size_t count = 0, all = 0;
	enum ht_err err = HT_OK;
	for (size_t i = 0; i < n && !err; i++) {
		uint8_t leaf[HT_HASH_BYTES];
		uint8_t (*nodes)[HT_HASH_BYTES] =
			(uint8_t (*)[HT_HASH_BYTES])(hub->all_nodes +
						     all * HT_HASH_BYTES);
		unsigned emitted = 0;
		const uint8_t *d = hub->event_data + hub->event_off[i];
		err = ht_merkle_leaf_hash(hasher, d,
					  hub->event_off[i + 1] - hub->event_off[i],
					  leaf);
		if (!err)
			err = ht_merkle_frontier_append(f, hasher, leaf, nodes,
							&emitted);
		memcpy(hub->fps + i * HT_JOURNAL_FP_BYTES, leaf,
		       HT_JOURNAL_FP_BYTES);
		for (unsigned k = HT_JOURNAL_NODE_LEVEL_MIN; k < emitted; k++)
			memcpy(hub->nodes + count++ * HT_HASH_BYTES, nodes[k],
			       HT_HASH_BYTES);
		all += emitted;
	}
	HT_ASSERT(err || all == ht_merkle_node_count(f->size) -
				       ht_merkle_node_count(f->size - n));
	*node_count = count;
	return err;
}

/* The journal part of one commit: leaves hashed (maybe on a thread while
 * the store writes the rows), then the new head signed. */
struct journal_job {
	struct ht_hub *hub;
	size_t n;
	struct ht_merkle_frontier f;
	struct ht_sth head;
	size_t node_count;
	enum ht_err err;
	bool threaded, joined;
	pthread_t thread;
};

static void *hash_thread(void *p)
{
	struct journal_job *j = p;
	j->err = hash_leaves(j->hub, j->hub->thread_hasher, j->n, &j->f,
			     &j->node_count);
	return NULL;
}

static enum ht_err journal_start(struct ht_hub *hub, struct journal_job *j,
				 size_t n)
{
	uint64_t first = ht_journal_node_count(hub->frontier.size);
	uint64_t last = ht_journal_node_count(hub->frontier.size + n);
	uint64_t all = ht_merkle_node_count(hub->frontier.size + n) -
		       ht_merkle_node_count(hub->frontier.size);
	*j = (struct journal_job){.hub = hub, .n = n, .f = hub->frontier};
	/* From here on all_nodes no longer holds the last commit's nodes. */
	hub->recent_valid = false;
	enum ht_err err = reserve((void **)&hub->nodes, &hub->nodes_cap,
				  (size_t)(last - first) + 65, HT_HASH_BYTES);
	if (!err) /* + 65: frontier_append's out_nodes contract */
		err = reserve((void **)&hub->all_nodes, &hub->all_nodes_cap,
			      (size_t)all + 65, HT_HASH_BYTES);
	if (!err)
		err = reserve((void **)&hub->fps, &hub->fps_cap, n,
			      HT_JOURNAL_FP_BYTES);
	if (err)
		return err;
	if (n >= HT_HASH_THREAD_EVENTS_MIN && !hub->thread_hasher)
		err = ht_hasher_create(hub->cfg.hash, &hub->thread_hasher);
	if (!err && n >= HT_HASH_THREAD_EVENTS_MIN &&
	    pthread_create(&j->thread, NULL, hash_thread, j) == 0) {
		j->threaded = true;
		return HT_OK;
	}
	j->joined = true;
	return err ? err : (j->err = hash_leaves(hub, hub->hasher, n, &j->f,
						 &j->node_count));
}

static enum ht_err journal_join(struct journal_job *j)
{
	if (j->threaded && !j->joined) {
		pthread_join(j->thread, NULL);
		j->joined = true;
	}
	return j->err;
}

/* Store callback, inside the transaction: wait for the hashes, sign. */
static enum ht_err journal_finish(void *ctx, struct ht_store_commit *c)
{
	struct journal_job *j = ctx;
	struct ht_hub *hub = j->hub;
	enum ht_err err = journal_join(j);
	if (err)
		return err;
	HT_ASSERT(j->node_count == ht_journal_node_count(j->f.size) -
					   ht_journal_node_count(hub->frontier.size));
	j->head = (struct ht_sth){.seq = hub->head.seq + 1,
				  .tree_size = j->f.size,
				  .hash = hub->cfg.hash,
				  .sign = hub->cfg.sign};
	uint64_t now = hub->clock.now_ns(hub->clock.ctx);
	j->head.time_ns = now > hub->head.time_ns ? now : hub->head.time_ns;
	err = ht_merkle_frontier_root(&j->f, hub->hasher, j->head.root);
	if (!err)
		err = ht_sth_hash(hub->hasher, &hub->head, j->head.prev_hash);
	if (!err)
		err = ht_sth_sign(hub->key, &j->head);
	if (err)
		return err;
	c->head = &j->head;
	c->node_count = j->node_count;
	c->nodes = hub->nodes;
	c->fps = hub->fps;
	c->fps_count = j->n;
	return HT_OK;
}

static enum ht_err account_rows(struct ht_hub *hub,
				const struct ht_ledger_changes *ch,
				size_t *count, uint64_t *created)
{
	size_t n = 0, cap_needed = ch->dirty_count + ch->events_count;
	enum ht_err err = reserve((void **)&hub->rows, &hub->rows_cap,
				  cap_needed ? cap_needed : 1, sizeof *hub->rows);
	if (err)
		return err;
	*created = 0;
	for (size_t i = 0; i < ch->events_count; i++) {
		if (ch->events[i].kind != HT_EVENT_ACCOUNT)
			continue;
		const struct ht_account *a =
			ht_ledger_account_get(hub->ledger, ch->events[i].u.account.id);
		HT_ASSERT(a != NULL);
		size_t slot = ht_ledger_account_index(hub->ledger, a);
		HT_ASSERT(slot == hub->accounts_committed + *created);
		hub->rows[n++] = (struct ht_store_account_row){slot, a, true};
		(*created)++;
	}
	for (size_t i = 0; i < ch->dirty_count; i++) {
		const struct ht_account *a = ch->dirty_accounts[i];
		size_t slot = ht_ledger_account_index(hub->ledger, a);
		if (slot >= hub->accounts_committed)
			continue; /* inserted above with its current values */
		hub->rows[n++] = (struct ht_store_account_row){slot, a, false};
	}
	*count = n;
	return HT_OK;
}

/* The owner rows written belong to accounts this commit inserted. */
static void owners_committed(struct ht_hub *hub, uint64_t created)
{
	struct owners *o = &hub->owners;
	for (size_t i = 0; i < o->rows_count; i++) {
		HT_ASSERT(o->rows[i].slot >= hub->accounts_committed);
		HT_ASSERT(o->rows[i].slot < hub->accounts_committed + created);
	}
	o->rows_count = 0;
}

enum ht_err ht_hub_commit(struct ht_hub *hub, struct ht_sth *head_out)
{
	enum ht_err err = writable(hub);
	if (err)
		return err;
	struct ht_ledger_changes ch;
	ht_ledger_changes(hub->ledger, &ch);
	if (!ch.events_count && !ch.dirty_count && !ch.history_count &&
	    !hub->owners.rows_count) {
		if (head_out)
			*head_out = hub->head;
		return HT_OK;
	}
	bool journal = ch.events_count && !hub->journal_off;
	struct journal_job job = {.joined = true};
	size_t rows = 0;
	uint64_t created = 0;
	err = encode_events(hub, &ch);
	if (!err && journal)
		err = journal_start(hub, &job, ch.events_count);
	if (!err)
		err = account_rows(hub, &ch, &rows, &created);
	if (!err)
		err = risk_rows(hub, ch.events_count);
	struct ht_store_commit c = {
		.first_leaf = hub->head.tree_size,
		.events_count = ch.events_count,
		.event_data = hub->event_data,
		.event_offset = hub->event_off,
		.accounts_count = rows,
		.accounts = hub->rows,
		.owners_count = hub->owners.rows_count,
		.owners = hub->owners.rows,
		.history_count = ch.history_count,
		.history = ch.history,
		.risk_count = hub->risk.count,
		.risk = hub->risk.rows,
		.node_first = ht_journal_node_count(hub->head.tree_size),
		.finish = journal ? journal_finish : NULL,
		.finish_ctx = &job,
	};
	if (!err)
		err = ht_store_commit(hub->store, &c);
	enum ht_err jerr = journal_join(&job);
	if (!err && journal && (jerr || !c.head))
		err = jerr ? jerr : HT_ERR_CRYPTO; /* cannot happen: finish ran */
	if (err) {
		hub->poisoned = true;
		ht_ledger_poison(hub->ledger);
		return err;
	}
	if (journal) {
		HT_ASSERT(job.head.tree_size > hub->head.tree_size);
		HT_ASSERT(job.f.size == job.head.tree_size);
		hub->recent_prev = hub->frontier;
		hub->recent_valid = true;
		hub->frontier = job.f;
		hub->head = job.head;
	} else {
		/* journal off (benchmark only): no head, but leaves keep
		 * their indexes; nothing to prove from memory. */
		if (ch.events_count)
			hub->recent_valid = false;
		hub->head.tree_size += ch.events_count;
	}
	owners_committed(hub, created);
	hub->risk.count = 0;
	hub->risk.text_len = 0;
	hub->accounts_committed += created;
	ht_ledger_changes_reset(hub->ledger);
	if (head_out)
		*head_out = hub->head;
	return HT_OK;
}

enum ht_err ht_hub_head(struct ht_hub *hub, struct ht_sth *out)
{
	if (hub->readonly)
		return ht_store_head_last(hub->store, out);
	*out = hub->head;
	return HT_OK;
}

enum ht_err ht_hub_head_at(struct ht_hub *hub, uint64_t seq, struct ht_sth *out)
{
	return ht_store_head_get(hub->store, seq, out);
}

/* ---- lookups ------------------------------------------------------------ */

enum ht_err ht_hub_lookup_accounts(struct ht_hub *hub, const ht_u128 *ids,
				   size_t n, struct ht_account *out,
				   size_t *n_out)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (hub->ledger) {
			const struct ht_account *a =
				ht_ledger_account_get(hub->ledger, ids[i]);
			if (a)
				out[k++] = *a;
			continue;
		}
		enum ht_err err = ht_store_account_get(hub->store, ids[i], &out[k]);
		if (err == HT_OK)
			k++;
		else if (err != HT_ERR_NOT_FOUND)
			return err;
	}
	*n_out = k;
	return HT_OK;
}

static enum ht_err transfer_at(struct ht_hub *hub, uint64_t leaf,
			       struct ht_transfer *out)
{
	uint8_t data[HT_LEAF_BYTES_MAX];
	size_t len;
	struct ht_event e;
	enum ht_err err = ht_store_event_get(hub->store, leaf, data, &len);
	if (!err)
		err = ht_event_decode(data, len, &e);
	if (!err && e.kind != HT_EVENT_TRANSFER)
		err = HT_ERR_CORRUPT;
	if (!err)
		*out = e.u.transfer;
	return err;
}

enum ht_err ht_hub_lookup_transfers(struct ht_hub *hub, const ht_u128 *ids,
				    size_t n, struct ht_transfer *out,
				    size_t *n_out)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (hub->ledger) {
			const struct ht_transfer *t =
				ht_ledger_transfer_get(hub->ledger, ids[i]);
			if (t)
				out[k++] = *t;
			continue;
		}
		uint64_t leaf;
		enum ht_err err = ht_store_transfer_leaf(hub->store, ids[i], &leaf);
		if (err == HT_ERR_NOT_FOUND)
			continue;
		if (!err)
			err = transfer_at(hub, leaf, &out[k]);
		if (err)
			return err;
		k++;
	}
	*n_out = k;
	return HT_OK;
}

static enum ht_err check_filter(const struct ht_account_filter *f)
{
	if (f->limit == 0 || f->limit > HT_QUERY_LIMIT_MAX)
		return HT_ERR_LIMIT;
	if (f->timestamp_max && f->timestamp_min > f->timestamp_max)
		return HT_ERR_INVALID;
	return HT_OK;
}

enum ht_err ht_hub_account_transfers(struct ht_hub *hub,
				     const struct ht_account_filter *f,
				     struct ht_transfer *out, size_t *n_out)
{
	enum ht_err err = check_filter(f);
	if (err)
		return err;
	uint64_t *leaves = malloc(f->limit * sizeof *leaves);
	if (!leaves)
		return HT_ERR_NOMEM;
	size_t n = 0;
	err = ht_store_account_leaves(hub->store, f, leaves, &n);
	for (size_t i = 0; i < n && !err; i++)
		err = transfer_at(hub, leaves[i], &out[i]);
	free(leaves);
	*n_out = err ? 0 : n;
	return err;
}

enum ht_err ht_hub_account_balances(struct ht_hub *hub,
				    const struct ht_account_filter *f,
				    struct ht_balance *out, size_t *n_out)
{
	enum ht_err err = check_filter(f);
	return err ? err : ht_store_account_balances(hub->store, f, out, n_out);
}

enum ht_err ht_hub_transfer_leaf(struct ht_hub *hub, ht_u128 id,
				 uint64_t *leaf_index)
{
	return ht_store_transfer_leaf(hub->store, id, leaf_index);
}

enum ht_err ht_hub_leaf(struct ht_hub *hub, uint64_t index, uint8_t *out,
			size_t *len)
{
	return ht_store_event_get(hub->store, index, out, len);
}

/* ---- proofs ------------------------------------------------------------- */

struct leaf_fold {
	struct ht_hasher *hasher;
	uint64_t first, next;
	uint8_t stack[64][HT_HASH_BYTES];
	unsigned depth;
	enum ht_err err;
};

/* Fold consecutive leaves of a complete subtree into its root: after 2^k
 * leaves the stack holds exactly one hash. */
static int fold_leaf(void *ctx, uint64_t leaf, const uint8_t *data, size_t len)
{
	struct leaf_fold *f = ctx;
	if (leaf != f->next) {
		f->err = HT_ERR_CORRUPT;
		return 1;
	}
	f->err = ht_merkle_leaf_hash(f->hasher, data, len, f->stack[f->depth]);
	uint64_t count = ++f->next - f->first;
	f->depth++;
	for (; !f->err && !(count & 1); count >>= 1, f->depth--)
		f->err = ht_merkle_node_hash(f->hasher, f->stack[f->depth - 2],
					     f->stack[f->depth - 1],
					     f->stack[f->depth - 2]);
	return f->err != HT_OK;
}

/* Complete node (level, index): stored when level >= K, else recomputed
 * from its 2^level leaves (at most 2^(K-1) event reads). */
static enum ht_err node_from_store(void *ctx, unsigned level, uint64_t index,
				   uint8_t out[HT_HASH_BYTES])
{
	struct ht_hub *hub = ctx;
	if (level >= HT_JOURNAL_NODE_LEVEL_MIN)
		return ht_store_node_get(hub->store,
					 ht_journal_node_seq(level, index), out);
	struct leaf_fold *f = calloc(1, sizeof *f);
	if (!f)
		return HT_ERR_NOMEM;
	uint64_t first = index << level, want = (uint64_t)1 << level;
	f->hasher = hub->hasher;
	f->first = f->next = first;
	enum ht_err err = ht_store_events_range(hub->store, first, want,
						fold_leaf, f);
	if (!err)
		err = f->err;
	if (!err && (f->next != first + want || f->depth != 1))
		err = HT_ERR_CORRUPT;
	if (!err)
		memcpy(out, f->stack[0], HT_HASH_BYTES);
	free(f);
	return err;
}

static enum ht_err proof_size_ok(struct ht_hub *hub, uint64_t size)
{
	struct ht_sth head;
	enum ht_err err = ht_hub_head(hub, &head);
	if (err)
		return err;
	return size <= head.tree_size ? HT_OK : HT_ERR_INVALID;
}

enum ht_err ht_hub_prove_inclusion(struct ht_hub *hub, uint64_t index,
				   uint64_t size,
				   uint8_t proof[][HT_HASH_BYTES],
				   size_t *count)
{
	enum ht_err err = proof_size_ok(hub, size);
	return err ? err
		   : ht_merkle_inclusion_proof(hub->hasher, index, size,
					       node_from_store, hub,
					       proof, count);
}

enum ht_err ht_hub_prove_consistency(struct ht_hub *hub, uint64_t old_size,
				     uint64_t new_size,
				     uint8_t proof[][HT_HASH_BYTES],
				     size_t *count)
{
	enum ht_err err = proof_size_ok(hub, new_size);
	if (!err && old_size > new_size)
		err = HT_ERR_INVALID;
	return err ? err
		   : ht_merkle_consistency_proof(hub->hasher, old_size, new_size,
						 node_from_store, hub,
						 proof, count);
}

enum ht_err ht_hub_root_at(struct ht_hub *hub, uint64_t size,
			   uint8_t out[HT_HASH_BYTES])
{
	enum ht_err err = proof_size_ok(hub, size);
	return err ? err
		   : ht_merkle_root(hub->hasher, size, node_from_store, hub,
				    out);
}

/* ---- range proofs (receipts) ------------------------------------------ */

enum ht_err ht_hub_prove_range(struct ht_hub *hub, uint64_t first,
			       uint64_t count, uint64_t size,
			       uint8_t proof[][HT_HASH_BYTES], size_t *n)
{
	*n = 0;
	enum ht_err err = proof_size_ok(hub, size);
	return err ? err
		   : ht_merkle_range_proof(hub->hasher, first, count, size,
					   node_from_store, hub, proof, n);
}

/* Complete node (level, index) of the head's tree, for a range inside the
 * last commit: a node whose last leaf that commit appended is in
 * all_nodes; a maximal subtree left of the commit that such a range's
 * proof needs is a node of the frontier before it (its parent reaches
 * into the commit); anything else comes from the store. */
static enum ht_err node_recent(void *ctx, unsigned level, uint64_t index,
			       uint8_t out[HT_HASH_BYTES])
{
	struct ht_hub *hub = ctx;
	const struct ht_merkle_frontier *prev = &hub->recent_prev;
	HT_ASSERT(level < 63);
	uint64_t last = ((index + 1) << level) - 1;
	if (last >= prev->size && last < hub->head.tree_size) {
		uint64_t k = ht_merkle_node_seq(level, index) -
			     ht_merkle_node_count(prev->size);
		HT_ASSERT(k < ht_merkle_node_count(hub->head.tree_size) -
				      ht_merkle_node_count(prev->size));
		memcpy(out, hub->all_nodes + k * HT_HASH_BYTES, HT_HASH_BYTES);
		return HT_OK;
	}
	if ((prev->size >> level & 1) && index == (prev->size >> level) - 1) {
		memcpy(out, prev->hash[level], HT_HASH_BYTES);
		return HT_OK;
	}
	return node_from_store(hub, level, index, out);
}

enum ht_err ht_hub_prove_range_recent(struct ht_hub *hub, uint64_t first,
				      uint64_t count,
				      uint8_t proof[][HT_HASH_BYTES],
				      size_t *n)
{
	*n = 0;
	if (hub->poisoned)
		return HT_ERR_POISONED;
	if (hub->readonly || !hub->recent_valid)
		return HT_ERR_INVALID;
	uint64_t end = hub->head.tree_size;
	HT_ASSERT(hub->frontier.size == end);
	HT_ASSERT(hub->recent_prev.size < end);
	if (count == 0 || first < hub->recent_prev.size || first >= end ||
	    count > end - first)
		return HT_ERR_INVALID;
	return ht_merkle_range_proof(hub->hasher, first, count, end,
				     node_recent, hub, proof, n);
}

/*
 * liquidity.c — participants' positions and net debit caps (liquidity.h).
 *
 * Owner: switch. Money: ledger accounts and transfers through the hub
 * (the caller commits). Configuration: DATA/switch.db, one row per
 * (participant, currency) with the cap, and the suspension per row (set
 * for all of a participant's rows at once); each change its own
 * transaction with synchronous=FULL. Reads go to SQLite each time: a cap
 * or a suspension is in force from the next check on.
 */
#include "huitong/liquidity.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "huitong/crypto.h"
#include "huitong/iso20022.h"
#include "huitong/jsonl.h"
#include "huitong/ledger.h"
#include "sqltx.h"

#define ID_TAG 0x48545357u /* "HTSW" */

/* A member row as last read, or known missing: the switch's payments
 * check two per payment on the hub thread, and this handle is the only
 * writer of DATA/switch.db (the store's writer lock keeps the CLI away
 * while a hub runs), so a row changes only through run(), which empties
 * the cache: a new cap or a suspension is still in force at the next
 * check. */
#define CACHE_SLOTS 256
struct cached {
	bool valid;
	enum ht_err rc;
	uint32_t currency;
	uint64_t cap;
	bool suspended;
	char participant[HT_LIQ_PARTICIPANT_MAX + 1];
};

struct ht_liq {
	struct ht_hub *hub;
	sqlite3 *db;
	sqlite3_stmt *st_get;
	struct cached cache[CACHE_SLOTS];
};

ht_u128 ht_liq_derived_id(const void *buf, size_t n)
{
	uint8_t h[HT_HASH_BYTES];
	HT_ASSERT(ht_hash(HT_HASH_SM3, buf, n, h) == HT_OK);
	ht_u128 v = 0;
	for (int i = 0; i < 16; i++)
		v = v << 8 | h[i];
	return v == 0 || v == HT_U128_MAX ? 1 : v;
}

/* tag, 0, a[0..alen), 0, b[0..blen) as one derived id. */
static ht_u128 derive_pair(const char *tag, const void *a, size_t alen,
			   const void *b, size_t blen)
{
	uint8_t buf[32 + 64 + 64 + 4];
	size_t tl = strlen(tag), n = 0;
	HT_ASSERT(tl + alen + blen + 2 <= sizeof buf);
	memcpy(buf, tag, tl);
	n = tl;
	buf[n++] = 0;
	memcpy(buf + n, a, alen);
	n += alen;
	buf[n++] = 0;
	memcpy(buf + n, b, blen);
	n += blen;
	return ht_liq_derived_id(buf, n);
}

ht_u128 ht_liq_payment_id(const char *caller, const char *client_id)
{
	return derive_pair("huitong/payment", caller, strlen(caller), client_id,
			   strlen(client_id));
}

ht_u128 ht_liq_decision_id(ht_u128 payment, bool accept)
{
	uint8_t b[16];
	for (int i = 0; i < 16; i++)
		b[i] = (uint8_t)(payment >> (8 * (15 - i)));
	return derive_pair(accept ? "huitong/accept" : "huitong/reject", b,
			   sizeof b, "", 0);
}

ht_u128 ht_liq_account_id(const char *participant, uint32_t currency,
			  enum ht_liq_account kind)
{
	uint8_t h[HT_HASH_BYTES] = {0};
	uint64_t low = 0;
	if (ht_hash(HT_HASH_SM3, participant, strlen(participant), h) == HT_OK)
		for (int i = 0; i < 8; i++)
			low = low << 8 | h[i];
	uint64_t high = (uint64_t)ID_TAG << 32 | (uint64_t)(kind & 0xff) << 24 |
			(currency & 0xffffu);
	return (ht_u128)high << 64 | low;
}

const char *ht_liq_verdict_name(enum ht_liq_verdict v)
{
	switch (v) {
	case HT_LIQ_OK: return "ok";
	case HT_LIQ_NOT_MEMBER: return "participant_not_set_up";
	case HT_LIQ_SUSPENDED: return "participant_suspended";
	case HT_LIQ_CAP_EXCEEDED: return "net_debit_cap_exceeded";
	}
	return "unknown";
}


enum ht_err ht_liq_open(const char *data_dir, struct ht_hub *hub,
			struct ht_liq **out, char *err, size_t err_size)
{
	if (err_size)
		err[0] = '\0';
	struct ht_liq *l = calloc(1, sizeof *l);
	if (!l)
		return HT_ERR_NOMEM;
	l->hub = hub;
	char path[4200];
	snprintf(path, sizeof path, "%s/switch.db", data_dir);
	enum ht_err rc = HT_OK;
	if (sqlite3_open_v2(path, &l->db, SQLITE_OPEN_READWRITE |
						  SQLITE_OPEN_CREATE |
						  SQLITE_OPEN_NOMUTEX, NULL))
		rc = HT_ERR_IO;
	if (!rc)
		rc = sqltx_exec(l->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
				 " PRAGMA busy_timeout=5000;"
				 " CREATE TABLE IF NOT EXISTS members (participant"
				 " TEXT NOT NULL, currency INTEGER NOT NULL, cap"
				 " INTEGER NOT NULL, suspended INTEGER NOT NULL,"
				 " PRIMARY KEY (participant, currency));"
				 " CREATE TABLE IF NOT EXISTS windows (id INTEGER"
				 " PRIMARY KEY, opened_ts INTEGER NOT NULL,"
				 " closed_ts INTEGER);"
				 " INSERT OR IGNORE INTO windows (id, opened_ts)"
				 " VALUES (1, 0);"
				 " CREATE TABLE IF NOT EXISTS window_lines (window"
				 " INTEGER NOT NULL, participant TEXT NOT NULL,"
				 " currency INTEGER NOT NULL, paid INTEGER NOT NULL,"
				 " received INTEGER NOT NULL, payments_out INTEGER"
				 " NOT NULL, payments_in INTEGER NOT NULL, PRIMARY"
				 " KEY (window, participant, currency));"
				 " CREATE TABLE IF NOT EXISTS bics (bic TEXT"
				 " PRIMARY KEY, participant TEXT NOT NULL);");
	if (!rc && sqlite3_prepare_v3(l->db, "SELECT cap, suspended FROM members"
					     " WHERE participant = ? AND currency"
					     " = ?", -1, SQLITE_PREPARE_PERSISTENT,
				      &l->st_get, NULL))
		rc = HT_ERR_IO;
	if (rc) {
		snprintf(err, err_size, "%s: %s", path,
			 l->db ? sqlite3_errmsg(l->db) : ht_strerror(rc));
		ht_liq_close(l);
		return rc;
	}
	*out = l;
	return HT_OK;
}

void ht_liq_close(struct ht_liq *l)
{
	if (!l)
		return;
	sqlite3_finalize(l->st_get);
	sqlite3_close(l->db);
	free(l);
}

static bool args_ok(const char *participant, uint32_t currency)
{
	return participant &&
	       ht_owner_valid(participant,
			      strnlen(participant, HT_LIQ_PARTICIPANT_MAX + 1)) &&
	       currency >= 1 && currency <= 999;
}

/* The member row: HT_OK (cap, suspended), HT_ERR_NOT_FOUND, HT_ERR_IO. */
static enum ht_err member_read(struct ht_liq *l, const char *participant,
			       uint32_t currency, uint64_t *cap, bool *suspended)
{
	sqlite3_stmt *st = l->st_get;
	sqlite3_bind_text(st, 1, participant, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)currency);
	int s = sqlite3_step(st);
	enum ht_err rc = s == SQLITE_ROW ? HT_OK
			 : s == SQLITE_DONE ? HT_ERR_NOT_FOUND : HT_ERR_IO;
	if (!rc) {
		sqlite3_int64 c = sqlite3_column_int64(st, 0);
		*cap = c > 0 ? (uint64_t)c : 0;
		*suspended = sqlite3_column_int(st, 1) != 0;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static enum ht_err member(struct ht_liq *l, const char *participant,
			  uint32_t currency, uint64_t *cap, bool *suspended)
{
	size_t n = strlen(participant);
	if (n > HT_LIQ_PARTICIPANT_MAX)
		return member_read(l, participant, currency, cap, suspended);
	uint32_t h = 2166136261u ^ currency;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)participant[i]) * 16777619u;
	struct cached *c = &l->cache[h % CACHE_SLOTS];
	if (!c->valid || c->currency != currency ||
	    strcmp(c->participant, participant)) {
		c->rc = member_read(l, participant, currency, &c->cap,
				    &c->suspended);
		if (c->rc == HT_ERR_IO) {
			c->valid = false;
			return HT_ERR_IO;
		}
		c->valid = true;
		c->currency = currency;
		memcpy(c->participant, participant, n + 1);
	}
	*cap = c->cap;
	*suspended = c->suspended;
	return c->rc;
}

/* Run one statement with (text, int, int64) parameters where given. */
static enum ht_err run(struct ht_liq *l, const char *sql, const char *p,
		       int has_cur, uint32_t currency, int has_v, int64_t v,
		       int *changes)
{
	sqlite3_stmt *st;
	memset(l->cache, 0, sizeof l->cache); /* any change: read again */
	if (sqlite3_prepare_v2(l->db, sql, -1, &st, NULL))
		return HT_ERR_IO;
	int k = 1;
	sqlite3_bind_text(st, k++, p, -1, SQLITE_STATIC);
	if (has_cur)
		sqlite3_bind_int(st, k++, (int)currency);
	if (has_v)
		sqlite3_bind_int64(st, k++, v);
	enum ht_err rc = sqlite3_step(st) == SQLITE_DONE ? HT_OK : HT_ERR_IO;
	if (changes)
		*changes = sqlite3_changes(l->db);
	sqlite3_finalize(st);
	return rc;
}

enum ht_err ht_liq_setup(struct ht_liq *l, const char *participant,
			 uint32_t currency)
{
	if (!args_ok(participant, currency))
		return HT_ERR_INVALID;
	struct ht_ledger *led = ht_hub_ledger(l->hub);
	struct ht_account a[2];
	uint16_t results[2] = {0};
	size_t n = 0;
	for (int k = HT_LIQ_POSITION; k <= HT_LIQ_SETTLEMENT; k++) {
		ht_u128 id = ht_liq_account_id(participant, currency, k);
		if (ht_ledger_account_get(led, id)) {
			const char *o = ht_hub_account_owner(l->hub, id);
			if (!o || strcmp(o, participant))
				return HT_ERR_EXISTS;
			continue;
		}
		memset(&a[n], 0, sizeof a[n]);
		a[n].id = id;
		a[n].ledger = currency;
		a[n].code = k == HT_LIQ_POSITION ? HT_LIQ_CODE_POSITION
						 : HT_LIQ_CODE_SETTLEMENT;
		n++;
	}
	enum ht_err rc = n ? ht_hub_create_accounts_owned(l->hub, a, n,
							  participant, results)
			   : HT_OK;
	for (size_t i = 0; !rc && i < n; i++)
		if (results[i] != HT_R_OK)
			rc = HT_ERR_EXISTS;
	if (!rc)
		rc = run(l, "INSERT OR IGNORE INTO members (participant, currency,"
			    " cap, suspended) VALUES (?, ?, 0, 0)",
			 participant, 1, currency, 0, 0, NULL);
	return rc;
}

enum ht_err ht_liq_set_cap(struct ht_liq *l, const char *participant,
			   uint32_t currency, uint64_t cap)
{
	if (!args_ok(participant, currency) || cap > (uint64_t)INT64_MAX)
		return HT_ERR_INVALID;
	int changes = 0;
	enum ht_err rc = run(l, "UPDATE members SET cap = ?3 WHERE participant"
				" = ?1 AND currency = ?2",
			     participant, 1, currency, 1, (int64_t)cap, &changes);
	return rc ? rc : changes ? HT_OK : HT_ERR_NOT_FOUND;
}

enum ht_err ht_liq_set_suspended(struct ht_liq *l, const char *participant,
				 bool suspended)
{
	if (!participant || !ht_owner_valid(participant,
					    strnlen(participant,
						    HT_LIQ_PARTICIPANT_MAX + 1)))
		return HT_ERR_INVALID;
	int changes = 0;
	enum ht_err rc = run(l, "UPDATE members SET suspended = ?2 WHERE"
				" participant = ?1",
			     participant, 0, 0, 1, suspended, &changes);
	return rc ? rc : changes ? HT_OK : HT_ERR_NOT_FOUND;
}

/* The position of an account (net debit, reserved) into *out. */
static enum ht_err position_of(const struct ht_account *a, int64_t *net,
			       uint64_t *reserved)
{
	__int128 d = (__int128)a->debits_posted + a->debits_pending -
		     (__int128)a->credits_posted;
	if (d > INT64_MAX || d < INT64_MIN)
		return HT_ERR_LIMIT;
	*net = (int64_t)d;
	*reserved = a->debits_pending;
	return HT_OK;
}

enum ht_err ht_liq_position(struct ht_liq *l, const char *participant,
			    uint32_t currency, struct ht_liq_position *out)
{
	memset(out, 0, sizeof *out);
	if (!args_ok(participant, currency))
		return HT_ERR_NOT_FOUND;
	enum ht_err rc = member(l, participant, currency, &out->cap,
				&out->suspended);
	const struct ht_account *a =
		rc ? NULL
		   : ht_ledger_account_get(ht_hub_ledger(l->hub),
					   ht_liq_account_id(participant, currency,
							     HT_LIQ_POSITION));
	if (!rc && !a)
		rc = HT_ERR_NOT_FOUND;
	if (!rc)
		rc = position_of(a, &out->net_debit, &out->reserved);
	if (!rc) {
		__int128 h = (__int128)out->cap - out->net_debit;
		out->headroom = h > INT64_MAX ? INT64_MAX : (int64_t)h;
	}
	return rc;
}

enum ht_liq_verdict ht_liq_check(struct ht_liq *l, const char *payer,
				 uint32_t currency, uint64_t amount)
{
	struct ht_liq_position p;
	enum ht_err rc = ht_liq_position(l, payer, currency, &p);
	if (rc)
		return rc == HT_ERR_LIMIT ? HT_LIQ_CAP_EXCEEDED : HT_LIQ_NOT_MEMBER;
	if (p.suspended)
		return HT_LIQ_SUSPENDED;
	if ((__int128)p.net_debit + amount > (__int128)p.cap)
		return HT_LIQ_CAP_EXCEEDED;
	return HT_LIQ_OK;
}

uint16_t ht_liq_payment_verdict(struct ht_liq *l, const char *payer,
				const char *payee, uint32_t currency,
				uint64_t amount, uint64_t reserved)
{
	struct ht_liq_position p, q;
	enum ht_err rc = ht_liq_position(l, payer, currency, &p);
	if (rc == HT_ERR_LIMIT)
		return HT_R_NET_DEBIT_CAP_EXCEEDED;
	if (ht_liq_position(l, payee, currency, &q) == HT_OK && q.suspended)
		return HT_R_PARTICIPANT_SUSPENDED;
	if (rc)
		return HT_R_OK; /* not set up: the ledger's own answer */
	if (p.suspended)
		return HT_R_PARTICIPANT_SUSPENDED;
	if ((__int128)p.net_debit + amount + reserved > (__int128)p.cap)
		return HT_R_NET_DEBIT_CAP_EXCEEDED;
	return HT_R_OK;
}

enum ht_err ht_liq_fund(struct ht_liq *l, const char *participant,
			uint32_t currency, ht_u128 id, uint64_t amount,
			bool defund, uint16_t *result)
{
	*result = HT_R_OK;
	struct ht_liq_position p;
	enum ht_err rc = ht_liq_position(l, participant, currency, &p);
	if (rc)
		return rc;
	ht_u128 pos = ht_liq_account_id(participant, currency, HT_LIQ_POSITION);
	ht_u128 set = ht_liq_account_id(participant, currency, HT_LIQ_SETTLEMENT);
	struct ht_ledger *led = ht_hub_ledger(l->hub);
	/* a defund takes back own funds only: the position stays <= 0. An
	 * exact retry of a committed defund goes to the ledger (exists). */
	if (defund && !ht_ledger_transfer_id_used(led, id) &&
	    (__int128)p.net_debit + amount > 0) {
		*result = HT_R_EXCEEDS_CREDITS;
		return HT_OK;
	}
	struct ht_transfer t = {.id = id, .amount = amount, .ledger = currency,
				.debit_account_id = defund ? pos : set,
				.credit_account_id = defund ? set : pos,
				.code = defund ? HT_LIQ_CODE_DEFUND
					       : HT_LIQ_CODE_FUND};
	return ht_hub_create_transfers(l->hub, &t, 1, result);
}

/* ---- settlement windows ------------------------------------------------------ */

const char *ht_settle_state_name(enum ht_settle_state st)
{
	switch (st) {
	case HT_SETTLE_OPEN: return "open";
	case HT_SETTLE_CLOSED: return "closed";
	case HT_SETTLE_SETTLED: return "settled";
	}
	return "unknown";
}

void ht_settle_report_free(struct ht_settle_report *r)
{
	if (!r)
		return;
	free(r->lines);
	r->lines = NULL;
	r->count = 0;
}

/* The booking id of a line: 128 bits of SM3("huitong/settle", window,
 * participant, currency), never 0 or 2^128-1. */
static ht_u128 booking_id(uint64_t window, const char *participant,
			  uint32_t currency)
{
	char buf[32 + HT_LIQ_PARTICIPANT_MAX + 32];
	int n = snprintf(buf, sizeof buf, "huitong/settle:%llu:%s:%u",
			 (unsigned long long)window, participant, currency);
	return ht_liq_derived_id(buf, (size_t)n);
}

/*
 * Lines of r from a query whose rows are (participant, currency) and, for
 * a stored window, (paid, received, payments_out, payments_in) after them;
 * window > 0 is bound as its one parameter. Sorted as the query gives.
 */
static enum ht_err read_lines(struct ht_liq *l, const char *sql,
			      uint64_t window, struct ht_settle_report *r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(l->db, sql, -1, &st, NULL))
		return HT_ERR_IO;
	if (window)
		sqlite3_bind_int64(st, 1, (sqlite3_int64)window);
	bool figures = sqlite3_column_count(st) >= 6;
	enum ht_err rc = HT_OK;
	size_t cap = 0;
	int s;
	while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
		if (r->count == cap) {
			cap = cap ? 2 * cap : 16;
			struct ht_settle_line *n = realloc(r->lines, cap * sizeof *n);
			if (!n) {
				rc = HT_ERR_NOMEM;
				break;
			}
			r->lines = n;
		}
		struct ht_settle_line *x = &r->lines[r->count++];
		memset(x, 0, sizeof *x);
		const char *p = (const char *)sqlite3_column_text(st, 0);
		snprintf(x->participant, sizeof x->participant, "%s", p ? p : "");
		x->currency = (uint32_t)sqlite3_column_int(st, 1);
		if (!figures)
			continue;
		x->paid = (uint64_t)sqlite3_column_int64(st, 2);
		x->received = (uint64_t)sqlite3_column_int64(st, 3);
		x->payments_out = (uint32_t)sqlite3_column_int(st, 4);
		x->payments_in = (uint32_t)sqlite3_column_int(st, 5);
	}
	if (!rc && s != SQLITE_DONE)
		rc = HT_ERR_IO;
	sqlite3_finalize(st);
	return rc;
}

/* The members, one line each (zero sums), sorted by participant and
 * currency. */
static enum ht_err member_lines(struct ht_liq *l, struct ht_settle_report *r)
{
	return read_lines(l, "SELECT participant, currency FROM members ORDER"
			     " BY participant, currency", 0, r);
}

struct window_scan {
	struct ht_settle_report *r;
	ht_u128 *pos;          /* each line's position account */
	uint64_t until;        /* inclusive; 0: no bound */
};

static int scan_one(void *ctx, const struct ht_transfer *t)
{
	struct window_scan *w = ctx;
	if (w->until && t->timestamp > w->until)
		return 1;
	/* a payment counts when posted; an ISO credit transfer is posted at
	 * once */
	bool payment = (t->flags & HT_TRANSFER_POST_PENDING) &&
		       (t->code == HT_LIQ_CODE_PAYMENT ||
			t->code == HT_LIQ_CODE_PAYMENT_PULL);
	bool iso = t->code == HT_LIQ_CODE_ISO &&
		   !(t->flags & (HT_TRANSFER_PENDING | HT_TRANSFER_POST_PENDING |
				 HT_TRANSFER_VOID_PENDING));
	if (!payment && !iso)
		return 0;
	for (size_t i = 0; i < w->r->count; i++) {
		struct ht_settle_line *x = &w->r->lines[i];
		if (w->pos[i] == t->debit_account_id) {
			x->paid += t->amount;
			x->payments_out++;
		} else if (w->pos[i] == t->credit_account_id) {
			x->received += t->amount;
			x->payments_in++;
		}
	}
	return 0;
}

/* Lines of the window (opened, until]: the members' posted payments. */
static enum ht_err compute_lines(struct ht_liq *l, struct ht_settle_report *r,
				 uint64_t opened, uint64_t until)
{
	enum ht_err rc = member_lines(l, r);
	if (rc)
		return rc;
	struct window_scan w = {r, calloc(r->count ? r->count : 1, sizeof *w.pos),
				until};
	if (!w.pos)
		return HT_ERR_NOMEM;
	for (size_t i = 0; i < r->count; i++)
		w.pos[i] = ht_liq_account_id(r->lines[i].participant,
					     r->lines[i].currency, HT_LIQ_POSITION);
	ht_ledger_transfers_after(ht_hub_ledger(l->hub), opened, scan_one, &w);
	free(w.pos);
	return HT_OK;
}

/* Nets, bookings, and the money check: per currency the lines sum to 0. */
static enum ht_err finish_lines(struct ht_settle_report *r)
{
	for (size_t i = 0; i < r->count; i++) {
		struct ht_settle_line *x = &r->lines[i];
		__int128 net = (__int128)x->received - x->paid;
		if (net > INT64_MAX || net < INT64_MIN)
			return HT_ERR_LIMIT;
		x->net = (int64_t)net;
		x->booking = x->net ? booking_id(r->window, x->participant,
						 x->currency)
				    : 0;
	}
	for (size_t i = 0; i < r->count; i++) {
		__int128 sum = 0;
		for (size_t k = 0; k < r->count; k++)
			if (r->lines[k].currency == r->lines[i].currency)
				sum += r->lines[k].net;
		if (sum != 0)
			return HT_ERR_CORRUPT;
	}
	return HT_OK;
}

static enum ht_err window_row(struct ht_liq *l, uint64_t id, uint64_t *opened,
			      uint64_t *closed, bool *is_open)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(l->db, id ? "SELECT id, opened_ts, closed_ts FROM"
					   " windows WHERE id = ?"
					 : "SELECT id, opened_ts, closed_ts FROM"
					   " windows WHERE closed_ts IS NULL",
			       -1, &st, NULL))
		return HT_ERR_IO;
	if (id)
		sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	int s = sqlite3_step(st);
	enum ht_err rc = s == SQLITE_ROW ? HT_OK
			 : s == SQLITE_DONE ? HT_ERR_NOT_FOUND : HT_ERR_IO;
	if (!rc) {
		*opened = (uint64_t)sqlite3_column_int64(st, 1);
		*is_open = sqlite3_column_type(st, 2) == SQLITE_NULL;
		*closed = *is_open ? 0 : (uint64_t)sqlite3_column_int64(st, 2);
		if (!id)
			*opened = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return rc;
}

static uint64_t open_window_id(struct ht_liq *l)
{
	sqlite3_stmt *st;
	uint64_t id = 0;
	if (sqlite3_prepare_v2(l->db, "SELECT id FROM windows WHERE closed_ts"
				      " IS NULL", -1, &st, NULL))
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		id = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return id;
}

/* A closed window's stored lines. */
static enum ht_err stored_lines(struct ht_liq *l, struct ht_settle_report *r)
{
	return read_lines(l, "SELECT participant, currency, paid, received,"
			     " payments_out, payments_in FROM window_lines"
			     " WHERE window = ? ORDER BY participant, currency",
			  r->window, r);
}

enum ht_err ht_liq_window_report(struct ht_liq *l, uint64_t id,
				 struct ht_settle_report *out)
{
	memset(out, 0, sizeof *out);
	uint64_t opened = 0, closed = 0;
	bool is_open = false;
	if (!id)
		id = open_window_id(l);
	enum ht_err rc = id ? window_row(l, id, &opened, &closed, &is_open)
			    : HT_ERR_NOT_FOUND;
	if (rc)
		return rc;
	out->window = id;
	out->opened_ts = opened;
	out->closed_ts = closed;
	rc = is_open ? compute_lines(l, out, opened, 0) : stored_lines(l, out);
	if (!rc)
		rc = finish_lines(out);
	if (!rc) {
		out->state = is_open ? HT_SETTLE_OPEN : HT_SETTLE_SETTLED;
		struct ht_ledger *led = ht_hub_ledger(l->hub);
		for (size_t i = 0; !is_open && i < out->count; i++)
			if (out->lines[i].booking &&
			    !ht_ledger_transfer_get(led, out->lines[i].booking))
				out->state = HT_SETTLE_CLOSED;
	}
	if (rc)
		ht_settle_report_free(out);
	return rc;
}

enum ht_err ht_liq_window_close(struct ht_liq *l, struct ht_settle_report *out)
{
	memset(out, 0, sizeof *out);
	uint64_t opened = 0, closed = 0;
	bool is_open = false;
	uint64_t id = open_window_id(l);
	enum ht_err rc = id ? window_row(l, id, &opened, &closed, &is_open)
			    : HT_ERR_IO;
	if (rc)
		return rc;
	uint64_t until = ht_ledger_last_timestamp(ht_hub_ledger(l->hub));
	if (until < opened)
		until = opened;
	out->window = id;
	out->opened_ts = opened;
	out->closed_ts = until;
	rc = compute_lines(l, out, opened, until);
	if (!rc)
		rc = finish_lines(out);
	bool began = !rc;
	if (!rc)
		rc = sqltx_begin(l->db, false);
	for (size_t i = 0; !rc && i < out->count; i++) {
		const struct ht_settle_line *x = &out->lines[i];
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(l->db, "INSERT INTO window_lines VALUES"
					      " (?, ?, ?, ?, ?, ?, ?)", -1, &st,
				       NULL)) {
			rc = HT_ERR_IO;
			break;
		}
		sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
		sqlite3_bind_text(st, 2, x->participant, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, (int)x->currency);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)x->paid);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)x->received);
		sqlite3_bind_int(st, 6, (int)x->payments_out);
		sqlite3_bind_int(st, 7, (int)x->payments_in);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = HT_ERR_IO;
		sqlite3_finalize(st);
	}
	if (!rc) {
		char sql[160];
		snprintf(sql, sizeof sql, "UPDATE windows SET closed_ts = %llu"
					  " WHERE id = %llu; INSERT INTO windows"
					  " (id, opened_ts) VALUES (%llu, %llu);",
			 (unsigned long long)until, (unsigned long long)id,
			 (unsigned long long)id + 1, (unsigned long long)until);
		rc = sqltx_exec(l->db, sql);
	}
	if (began)
		rc = sqltx_end(l->db, false, rc);
	out->state = HT_SETTLE_CLOSED;
	if (rc)
		ht_settle_report_free(out);
	return rc;
}

enum ht_err ht_liq_window_settle(struct ht_liq *l, uint64_t id, size_t *booked,
				 uint16_t *result)
{
	*booked = 0;
	*result = HT_R_OK;
	struct ht_settle_report r;
	enum ht_err rc = ht_liq_window_report(l, id, &r);
	if (rc)
		return rc;
	if (r.state == HT_SETTLE_OPEN) {
		ht_settle_report_free(&r);
		return HT_ERR_INVALID;
	}
	struct ht_ledger *led = ht_hub_ledger(l->hub);
	for (size_t i = 0; !rc && i < r.count; i++) {
		const struct ht_settle_line *x = &r.lines[i];
		if (!x->booking || ht_ledger_transfer_get(led, x->booking))
			continue;
		ht_u128 pos = ht_liq_account_id(x->participant, x->currency,
						HT_LIQ_POSITION);
		ht_u128 set = ht_liq_account_id(x->participant, x->currency,
						HT_LIQ_SETTLEMENT);
		bool in = x->net < 0; /* a net debtor pays in */
		struct ht_transfer t = {
			.id = x->booking, .ledger = x->currency,
			.amount = in ? (uint64_t)-(x->net + 1) + 1 : (uint64_t)x->net,
			.debit_account_id = in ? set : pos,
			.credit_account_id = in ? pos : set,
			.code = in ? HT_LIQ_CODE_SETTLE_IN : HT_LIQ_CODE_SETTLE_OUT};
		uint16_t res = HT_R_OK;
		rc = ht_hub_create_transfers(l->hub, &t, 1, &res);
		if (!rc && res != HT_R_OK && res != HT_R_EXISTS) {
			*result = res;
			rc = HT_ERR_CORRUPT;
		}
		if (!rc && res == HT_R_OK)
			(*booked)++;
	}
	ht_settle_report_free(&r);
	return rc;
}

enum ht_err ht_settle_report_json(const struct ht_settle_report *r,
				  struct ht_buf *b)
{
	enum ht_err err = ht_buf_printf(
		b, "{\"window\":%llu,\"state\":\"%s\",\"opened_ts\":%llu,"
		   "\"closed_ts\":%llu,\"positions\":[",
		(unsigned long long)r->window, ht_settle_state_name(r->state),
		(unsigned long long)r->opened_ts, (unsigned long long)r->closed_ts);
	char ids[HT_U128_DEC_SIZE];
	for (size_t i = 0; !err && i < r->count; i++) {
		const struct ht_settle_line *x = &r->lines[i];
		err = ht_buf_printf(b, "%s{\"participant\":", i ? "," : "");
		if (!err)
			err = ht_buf_json_string(b, x->participant,
						 strlen(x->participant));
		if (!err)
			err = ht_buf_printf(
				b, ",\"currency\":%u,\"paid\":\"%llu\","
				   "\"received\":\"%llu\",\"net\":\"%lld\","
				   "\"payments_out\":%u,\"payments_in\":%u,"
				   "\"booking\":%s%s%s}",
				x->currency, (unsigned long long)x->paid,
				(unsigned long long)x->received,
				(long long)x->net, x->payments_out,
				x->payments_in, x->booking ? "\"" : "",
				x->booking ? ht_u128_format(x->booking, ids)
					   : "null",
				x->booking ? "\"" : "");
	}
	return err ? err : ht_buf_append(b, "],\"sum\":\"0\"}", 12);
}

enum ht_err ht_settle_report_csv(const struct ht_settle_report *r,
				 struct ht_buf *b)
{
	enum ht_err err = ht_buf_printf(b, "window,participant,currency,paid,"
					   "received,net,payments_out,"
					   "payments_in\n");
	for (size_t i = 0; !err && i < r->count; i++) {
		const struct ht_settle_line *x = &r->lines[i];
		/* participant ids are [A-Za-z0-9._-] (ht_owner_valid): no
		 * quoting needed */
		err = ht_buf_printf(b, "%llu,%s,%u,%llu,%llu,%lld,%u,%u\n",
				    (unsigned long long)r->window, x->participant,
				    x->currency, (unsigned long long)x->paid,
				    (unsigned long long)x->received,
				    (long long)x->net, x->payments_out,
				    x->payments_in);
	}
	return err;
}

/* ---- ISO 20022 booking --------------------------------------------------------- */

enum ht_err ht_liq_set_bic(struct ht_liq *l, const char *bic,
			   const char *participant)
{
	if (!bic || !ht_iso_bic_valid(bic, strlen(bic)) ||
	    !args_ok(participant, 1))
		return HT_ERR_INVALID;
	sqlite3_stmt *st;
	memset(l->cache, 0, sizeof l->cache);
	if (sqlite3_prepare_v2(l->db, "INSERT OR REPLACE INTO bics (bic,"
				      " participant) VALUES (?, ?)", -1, &st,
			       NULL))
		return HT_ERR_IO;
	sqlite3_bind_text(st, 1, bic, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, participant, -1, SQLITE_STATIC);
	enum ht_err rc = sqlite3_step(st) == SQLITE_DONE ? HT_OK : HT_ERR_IO;
	sqlite3_finalize(st);
	return rc;
}

static enum ht_err bic_lookup(struct ht_liq *l, const char *bic,
			      char out[HT_LIQ_PARTICIPANT_MAX + 1])
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(l->db, "SELECT participant FROM bics WHERE bic"
				      " = ?", -1, &st, NULL))
		return HT_ERR_IO;
	sqlite3_bind_text(st, 1, bic, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	enum ht_err rc = s == SQLITE_ROW ? HT_OK
			 : s == SQLITE_DONE ? HT_ERR_NOT_FOUND : HT_ERR_IO;
	if (!rc) {
		const char *p = (const char *)sqlite3_column_text(st, 0);
		snprintf(out, HT_LIQ_PARTICIPANT_MAX + 1, "%s", p ? p : "");
	}
	sqlite3_finalize(st);
	return rc;
}

enum ht_err ht_liq_bic_participant(struct ht_liq *l, const char *bic,
				   char out[HT_LIQ_PARTICIPANT_MAX + 1])
{
	size_t n = strlen(bic);
	if (n != 8 && n != 11)
		return HT_ERR_NOT_FOUND;
	enum ht_err rc = bic_lookup(l, bic, out);
	char b8[12];
	memcpy(b8, bic, 8);
	b8[8] = '\0';
	if (rc == HT_ERR_NOT_FOUND && n == 11)
		rc = bic_lookup(l, b8, out);
	if (rc == HT_ERR_NOT_FOUND && n == 8) {
		memcpy(b8 + 8, "XXX", 4);
		rc = bic_lookup(l, b8, out);
	}
	return rc;
}

/* ISO 4217 numeric codes of the currencies the reader accepts. */
static uint32_t currency_numeric(const char *ccy)
{
	static const struct {
		char code[4];
		uint32_t num;
	} t[] = {{"CNY", 156}, {"EUR", 978}, {"USD", 840}, {"JPY", 392},
		 {"GBP", 826}, {"HKD", 344}, {"CHF", 756}, {"SGD", 702},
		 {"KRW", 410}, {"KWD", 414}};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!strcmp(t[i].code, ccy))
			return t[i].num;
	return 0;
}

static ht_u128 iso_transfer_id(const char *payer, const struct ht_iso_tx *tx)
{
	const char *ref = tx->tx_id[0] ? tx->tx_id : tx->end_to_end_id;
	char buf[32 + HT_LIQ_PARTICIPANT_MAX + HT_ISO_MAX35_BYTES];
	int n = snprintf(buf, sizeof buf, "huitong/pacs008:%s:%s", payer, ref);
	return ht_liq_derived_id(buf, (size_t)n);
}

/* The participant of transaction i's agent (side "debtor"/"creditor"):
 * HT_OK; HT_ERR_NOT_FOUND with the transaction rejected RC01; errors. */
static enum ht_err agent_of(struct ht_liq *l, struct ht_iso_msg *m, size_t i,
			    const char *side, const char *bic,
			    char out[HT_LIQ_PARTICIPANT_MAX + 1])
{
	enum ht_err rc = ht_liq_bic_participant(l, bic, out);
	if (rc == HT_ERR_NOT_FOUND) {
		char why[106];
		snprintf(why, sizeof why, "%s agent %s is not a member of the"
			 " switch", side, bic);
		ht_iso_tx_reject(m, i, HT_ISO_RC01, why);
	}
	return rc;
}

enum ht_err ht_liq_book_pacs008(struct ht_liq *l, struct ht_iso_msg *m,
				const char *submitter, ht_liq_screen_fn screen,
				void *screen_ctx, size_t *booked)
{
	*booked = 0;
	struct ht_ledger *led = ht_hub_ledger(l->hub);
	for (size_t i = 0; i < m->tx_count; i++) {
		if (!ht_iso_tx_accepted(m, i))
			continue;
		struct ht_iso_tx *tx = &m->tx[i];
		char dr[HT_LIQ_PARTICIPANT_MAX + 1], cr[HT_LIQ_PARTICIPANT_MAX + 1];
		char why[106];
		enum ht_err rc = agent_of(l, m, i, "debtor", tx->debtor_agent_bic, dr);
		if (!rc)
			rc = agent_of(l, m, i, "creditor", tx->creditor_agent_bic, cr);
		if (rc == HT_ERR_NOT_FOUND)
			continue; /* rejected RC01 */
		if (rc)
			return rc;
		if (submitter && strcmp(dr, submitter)) {
			snprintf(why, sizeof why, "debtor agent %s is not the"
				 " sender's", tx->debtor_agent_bic);
			ht_iso_tx_reject(m, i, HT_ISO_RC01, why);
			continue;
		}
		uint32_t cur = currency_numeric(tx->currency);
		if (!cur) {
			ht_iso_tx_reject(m, i, HT_ISO_AM03, "no numeric code");
			continue;
		}
		ht_u128 id = iso_transfer_id(dr, tx);
		if (ht_ledger_transfer_id_used(led, id)) {
			ht_iso_tx_reject(m, i, HT_ISO_DUPL, "booked before");
			continue;
		}
		if (screen && screen(screen_ctx, tx, dr, cr, why, sizeof why)) {
			ht_iso_tx_reject(m, i, HT_ISO_RR04, why);
			continue;
		}
		uint16_t v = ht_liq_payment_verdict(l, dr, cr, cur,
						    tx->amount_minor, 0);
		if (v == HT_R_PARTICIPANT_SUSPENDED) {
			ht_iso_tx_reject(m, i, HT_ISO_AC06, "participant"
					 " suspended");
			continue;
		}
		if (v == HT_R_NET_DEBIT_CAP_EXCEEDED) {
			ht_iso_tx_reject(m, i, HT_ISO_AM04, "beyond the debtor"
					 " agent's net debit cap");
			continue;
		}
		struct ht_transfer t = {
			.id = id, .amount = tx->amount_minor, .ledger = cur,
			.debit_account_id = ht_liq_account_id(dr, cur,
							      HT_LIQ_POSITION),
			.credit_account_id = ht_liq_account_id(cr, cur,
							       HT_LIQ_POSITION),
			.code = HT_LIQ_CODE_ISO};
		size_t ul = strlen(tx->end_to_end_id);
		t.user_data_len = (uint8_t)(ul < HT_USER_DATA_BYTES_MAX
						    ? ul : HT_USER_DATA_BYTES_MAX);
		memcpy(t.user_data, tx->end_to_end_id, t.user_data_len);
		uint16_t res = HT_R_OK;
		rc = ht_hub_create_transfers(l->hub, &t, 1, &res);
		if (rc)
			return rc;
		if (res == HT_R_OK) {
			(*booked)++;
		} else if (res == HT_R_EXISTS ||
			   (res > HT_R_ID_ALREADY_FAILED && res < HT_R_EXISTS) ||
			   res == HT_R_ID_ALREADY_FAILED) {
			ht_iso_tx_reject(m, i, HT_ISO_DUPL, ht_result_name(res));
		} else if (res == HT_R_DEBIT_ACCOUNT_NOT_FOUND ||
			   res == HT_R_CREDIT_ACCOUNT_NOT_FOUND) {
			snprintf(why, sizeof why, "%s is not set up in %s",
				 res == HT_R_DEBIT_ACCOUNT_NOT_FOUND ? dr : cr,
				 tx->currency);
			ht_iso_tx_reject(m, i, HT_ISO_AC01, why);
		} else {
			ht_iso_tx_reject(m, i, HT_ISO_AC06, ht_result_name(res));
		}
	}
	return HT_OK;
}

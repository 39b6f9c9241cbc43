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
#include "huitong/ledger.h"
#include "sqltx.h"

#define ID_TAG 0x48545357u /* "HTSW" */

struct ht_liq {
	struct ht_hub *hub;
	sqlite3 *db;
	sqlite3_stmt *st_get;
};

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
				 " PRIMARY KEY (participant, currency));");
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
static enum ht_err member(struct ht_liq *l, const char *participant,
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

/* Run one statement with (text, int, int64) parameters where given. */
static enum ht_err run(struct ht_liq *l, const char *sql, const char *p,
		       int has_cur, uint32_t currency, int has_v, int64_t v,
		       int *changes)
{
	sqlite3_stmt *st;
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

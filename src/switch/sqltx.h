/*
 * sqltx.h — the switch stores' SQLite transactions (vault, alias
 * directory, liquidity): one transaction per change, or the caller's batch
 * (one transaction, one fsync, for bulk loads) when it opened one.
 *
 * Owner: switch. Internal to src/switch/.
 */
#ifndef HUITONG_SWITCH_SQLTX_H
#define HUITONG_SWITCH_SQLTX_H

#include <stdbool.h>
#include <sqlite3.h>

#include "huitong/common.h"

static inline enum ht_err sqltx_exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? HT_OK
								    : HT_ERR_IO;
}

/* A change's transaction begins, unless it is part of the batch. */
static inline enum ht_err sqltx_begin(sqlite3 *db, bool batch)
{
	return batch ? HT_OK : sqltx_exec(db, "BEGIN IMMEDIATE");
}

/* ... and ends: committed when rc is HT_OK, else rolled back; inside the
 * batch nothing happens yet. Returns rc, or the commit's failure. */
static inline enum ht_err sqltx_end(sqlite3 *db, bool batch, enum ht_err rc)
{
	if (batch)
		return rc;
	if (!rc)
		rc = sqltx_exec(db, "COMMIT");
	if (rc)
		(void)sqltx_exec(db, "ROLLBACK");
	return rc;
}

/* Open the batch (HT_ERR_INVALID when one is open) / commit it. */
static inline enum ht_err sqltx_batch_begin(sqlite3 *db, bool *batch)
{
	if (*batch)
		return HT_ERR_INVALID;
	enum ht_err rc = sqltx_exec(db, "BEGIN IMMEDIATE");
	*batch = !rc;
	return rc;
}

static inline enum ht_err sqltx_batch_commit(sqlite3 *db, bool *batch)
{
	if (!*batch)
		return HT_ERR_INVALID;
	*batch = false;
	return sqltx_end(db, false, HT_OK);
}

#endif

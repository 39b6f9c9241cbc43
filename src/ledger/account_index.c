/*
 * account_index.c — creation-order index of an account pointer, which the
 * store uses as the key of its balance rows.
 *
 * Owner: ledger.
 */
#include "ledger_internal.h"

size_t ht_ledger_account_index(const struct ht_ledger *l,
			       const struct ht_account *a)
{
	HT_ASSERT(a >= l->accounts);
	HT_ASSERT(a < l->accounts + l->account_count);
	return (size_t)(a - l->accounts);
}

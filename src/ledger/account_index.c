/*
 * account_index.c — creation-order index of an account pointer, which the
 * store uses as the key of its balance rows, and the comparison of an
 * account with its stored row.
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

bool ht_ledger_account_matches(const struct ht_ledger *l, size_t slot,
			       const struct ht_account *s)
{
	const struct ht_account *m = ht_ledger_account_get(l, s->id);
	return m && ht_ledger_account_index(l, m) == slot &&
	       m->debits_pending == s->debits_pending &&
	       m->debits_posted == s->debits_posted &&
	       m->credits_pending == s->credits_pending &&
	       m->credits_posted == s->credits_posted && m->flags == s->flags &&
	       m->ledger == s->ledger && m->code == s->code;
}

/*
 * check.c — the business checks of a pacs.008 once its elements are read:
 * mandatory elements, amounts in minor units of their currency, accounts,
 * the group header's counts and sums, duplicates, the caller's maximum
 * and "seen before"; and the statuses that follow.
 *
 * Owner: iso20022. Each check gives the first reason of a transaction or
 * the group (iso_reason_set keeps the first), in the order
 * docs/iso20022.md lists them. Nothing here parses XML.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "iso_internal.h"

static ht_u128 pow10_u128(unsigned n)
{
	ht_u128 v = 1;
	while (n--)
		v *= 10;
	return v;
}

/*
 * The amount d in minor units of ccy. HT_ISO_REASON_NONE with *minor, or
 * the reason with *why: AM03 a currency not in the table, AM12 more
 * fraction digits than it has, AM01 zero, AM02 beyond 2^64-1 minor units.
 */
static enum ht_iso_reason to_minor(const struct iso_dec *d, const char *ccy,
				   uint64_t *minor, const char **why)
{
	int exponent = iso_currency_exponent(ccy);
	if (exponent < 0) {
		*why = "is in a currency huitong does not process";
		return HT_ISO_AM03;
	}
	if (d->frac_digits > (unsigned)exponent) {
		*why = "has more fraction digits than its currency";
		return HT_ISO_AM12;
	}
	ht_u128 v = d->e17 / pow10_u128(17 - (unsigned)exponent);
	HT_ASSERT(v * pow10_u128(17 - (unsigned)exponent) == d->e17);
	if (v == 0) {
		*why = "is zero";
		return HT_ISO_AM01;
	}
	if (v > UINT64_MAX) {
		*why = "exceeds 2^64-1 minor units";
		return HT_ISO_AM02;
	}
	*minor = (uint64_t)v;
	return HT_ISO_REASON_NONE;
}

static void tx_mandatory(const struct ht_iso_msg *m, struct ht_iso_tx *t,
			 const struct iso_tx_extra *x)
{
	static const char fmt[] = "%s missing";
	const char *missing = NULL;
	if (!t->end_to_end_id[0])
		missing = "PmtId/EndToEndId";
	else if (!t->tx_id[0] && m->group.version && m->group.version < 8)
		missing = "PmtId/TxId"; /* optional from .08 on */
	else if (!x->amount_read)
		missing = "IntrBkSttlmAmt";
	else if (!t->charge_bearer[0])
		missing = "ChrgBr";
	else if (!x->debtor_seen)
		missing = "Dbtr";
	else if (!t->debtor_agent_bic[0])
		missing = m->group.version == 2 ? "DbtrAgt/FinInstnId/BIC"
						: "DbtrAgt/FinInstnId/BICFI";
	else if (!t->creditor_agent_bic[0])
		missing = m->group.version == 2 ? "CdtrAgt/FinInstnId/BIC"
						: "CdtrAgt/FinInstnId/BICFI";
	else if (!x->creditor_seen)
		missing = "Cdtr";
	if (missing)
		iso_reason_set(&t->reason, t->detail, HT_ISO_FF01, fmt, missing);
}

void iso_check_tx(struct ht_iso_msg *m, size_t i, const struct iso_tx_extra *x)
{
	HT_ASSERT(i < m->tx_count);
	struct ht_iso_tx *t = &m->tx[i];
	tx_mandatory(m, t, x);
	const char *why;
	if (x->amount_read) {
		enum ht_iso_reason r = to_minor(&x->amount, t->currency,
						&t->amount_minor, &why);
		if (r != HT_ISO_REASON_NONE)
			iso_reason_set(&t->reason, t->detail, r,
				       "IntrBkSttlmAmt %s (%s)", why, t->currency);
	}
	if (t->debtor_account.kind == HT_ISO_ACCOUNT_NONE)
		iso_reason_set(&t->reason, t->detail, HT_ISO_AC01, "DbtrAcct missing");
	if (t->creditor_account.kind == HT_ISO_ACCOUNT_NONE)
		iso_reason_set(&t->reason, t->detail, HT_ISO_AC01, "CdtrAcct missing");
	HT_ASSERT(t->reason == HT_ISO_REASON_NONE || t->detail[0]);
}

/* ---- the group ------------------------------------------------------------- */

static void group_mandatory(struct ht_iso_msg *m, const struct iso_group_extra *g)
{
	struct ht_iso_group *h = &m->group;
	const char *missing = NULL;
	if (!h->msg_id[0])
		missing = "GrpHdr/MsgId";
	else if (!h->created[0])
		missing = "GrpHdr/CreDtTm";
	else if (!g->nb_of_txs_read)
		missing = "GrpHdr/NbOfTxs";
	else if (!h->settlement_method[0])
		missing = "GrpHdr/SttlmInf/SttlmMtd";
	else if (!m->tx_count)
		missing = "CdtTrfTxInf";
	if (missing)
		iso_reason_set(&h->reason, h->detail, HT_ISO_FF01, "%s missing", missing);
}

/*
 * NbOfTxs, CtrlSum and TtlIntrBkSttlmAmt against the transactions. The
 * sums are exact decimals (times 10^17); they are compared only when every
 * transaction's amount was a decimal (one that was not is rejected on its
 * own, and would make any sum disagree).
 */
static void group_sums(struct ht_iso_msg *m, const struct iso_group_extra *g,
		       const struct iso_tx_extra *x)
{
	struct ht_iso_group *h = &m->group;
	if (h->nb_of_txs != m->tx_count)
		iso_reason_set(&h->reason, h->detail, HT_ISO_AM18,
			       "NbOfTxs is %llu, the message has %zu CdtTrfTxInf",
			       (unsigned long long)h->nb_of_txs, m->tx_count);
	/* Each amount is below 10^35 and there are at most 10^4 of them:
	 * the sum stays below 2^128. */
	_Static_assert(HT_ISO_TXS_MAX <= 10000, "sums fit 128 bits");
	ht_u128 sum = 0;
	bool one_currency = true;
	for (size_t i = 0; i < m->tx_count; i++) {
		if (!x[i].amount_read)
			return;
		sum += x[i].amount.e17;
		one_currency &= !strcmp(m->tx[i].currency, h->total_currency);
	}
	if (g->ctrl_sum_read && g->ctrl_sum_e17 != sum)
		iso_reason_set(&h->reason, h->detail, HT_ISO_AM10,
			       "CtrlSum disagrees with the sum of the IntrBkSttlmAmt");
	if (g->total_read && (!one_currency || g->total.e17 != sum))
		iso_reason_set(&h->reason, h->detail, HT_ISO_AM10,
			       "TtlIntrBkSttlmAmt disagrees with the sum of the IntrBkSttlmAmt");
}

static void group_total(struct ht_iso_msg *m, const struct iso_group_extra *g)
{
	struct ht_iso_group *h = &m->group;
	if (!g->total_read)
		return;
	const char *why;
	enum ht_iso_reason r = to_minor(&g->total, h->total_currency,
					&h->total_minor, &why);
	if (r != HT_ISO_REASON_NONE)
		iso_reason_set(&h->reason, h->detail, r, "TtlIntrBkSttlmAmt %s", why);
}

/* ---- duplicates -------------------------------------------------------------- */

struct key {
	const char *s;
	size_t i;
};

static int key_cmp(const void *a, const void *b)
{
	const struct key *x = a, *y = b;
	int c = strcmp(x->s, y->s);
	return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* DUPL on every transaction whose id at offset off (skip excepted)
 * repeats an earlier transaction's. */
static enum ht_err duplicates(struct ht_iso_msg *m, size_t off, const char *name,
			      const char *skip)
{
	struct key *k = malloc((m->tx_count ? m->tx_count : 1) * sizeof *k);
	if (!k)
		return HT_ERR_NOMEM;
	size_t n = 0;
	for (size_t i = 0; i < m->tx_count; i++) {
		const char *s = (const char *)&m->tx[i] + off;
		if (s[0] && (!skip || strcmp(s, skip)))
			k[n++] = (struct key){s, i};
	}
	qsort(k, n, sizeof *k, key_cmp);
	for (size_t j = 1; j < n; j++) {
		if (strcmp(k[j].s, k[j - 1].s))
			continue;
		HT_ASSERT(k[j].i > k[j - 1].i);
		struct ht_iso_tx *t = &m->tx[k[j].i];
		iso_reason_set(&t->reason, t->detail, HT_ISO_DUPL,
			       "%s repeats an earlier transaction's", name);
	}
	free(k);
	return HT_OK;
}

static void tx_caller_checks(struct ht_iso_msg *m, const struct ht_iso_options *o)
{
	for (size_t i = 0; i < m->tx_count; i++) {
		struct ht_iso_tx *t = &m->tx[i];
		if (t->reason != HT_ISO_REASON_NONE)
			continue;
		if (o->amount_minor_max && t->amount_minor > o->amount_minor_max)
			iso_reason_set(&t->reason, t->detail, HT_ISO_AM02,
				       "IntrBkSttlmAmt above the maximum of %llu minor units",
				       (unsigned long long)o->amount_minor_max);
		else if (o->seen && m->group.reason == HT_ISO_REASON_NONE &&
			 o->seen(o->seen_ctx, t))
			iso_reason_set(&t->reason, t->detail, HT_ISO_DUPL,
				       "already received");
	}
}

enum ht_err iso_check_msg(struct ht_iso_msg *m, const struct iso_group_extra *g,
			  const struct iso_tx_extra *x,
			  const struct ht_iso_options *opts)
{
	static const struct ht_iso_options none;
	group_mandatory(m, g);
	if (g->complete) {
		group_total(m, g);
		group_sums(m, g, x);
	}
	enum ht_err e = duplicates(m, offsetof(struct ht_iso_tx, tx_id),
				   "PmtId/TxId", NULL);
	if (e == HT_OK)
		e = duplicates(m, offsetof(struct ht_iso_tx, end_to_end_id),
			       "PmtId/EndToEndId", "NOTPROVIDED");
	if (e != HT_OK)
		return e;
	tx_caller_checks(m, opts ? opts : &none);
	HT_ASSERT(m->group.reason == HT_ISO_REASON_NONE || m->group.detail[0]);
	return HT_OK;
}

/* ---- statuses ---------------------------------------------------------------- */

bool ht_iso_tx_accepted(const struct ht_iso_msg *m, size_t i)
{
	HT_ASSERT(i < m->tx_count);
	return m->group.reason == HT_ISO_REASON_NONE &&
	       m->tx[i].reason == HT_ISO_REASON_NONE;
}

void ht_iso_tx_reject(struct ht_iso_msg *m, size_t i, enum ht_iso_reason reason,
		      const char *detail)
{
	HT_ASSERT(i < m->tx_count);
	HT_ASSERT(reason != HT_ISO_REASON_NONE && reason < HT_ISO_REASON__COUNT);
	HT_ASSERT(ht_iso_tx_accepted(m, i));
	iso_reason_set(&m->tx[i].reason, m->tx[i].detail, reason, "%s",
		       detail ? detail : "");
	/* ASCII only: a cut never splits a character, the XML stays valid */
	for (char *p = m->tx[i].detail; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
}

enum ht_iso_status ht_iso_group_status(const struct ht_iso_msg *m)
{
	if (m->group.reason != HT_ISO_REASON_NONE)
		return HT_ISO_RJCT;
	size_t accepted = 0;
	for (size_t i = 0; i < m->tx_count; i++)
		accepted += m->tx[i].reason == HT_ISO_REASON_NONE;
	if (accepted == 0)
		return HT_ISO_RJCT;
	return accepted == m->tx_count ? HT_ISO_ACSC : HT_ISO_PART;
}

/*
 * fuzz_pacs008.c — a pacs.008 is outside input to `huitong iso20022` and,
 * later, to the switch's API: any bytes through ht_iso_pacs008_read.
 * Checked: it never aborts, leaks or reads out of bounds, and always
 * answers (HT_OK); at most HT_ISO_TXS_MAX transactions; every reason has
 * a detail; every transaction it accepts is complete (end-to-end id,
 * positive amount in a currency of three letters, both accounts, BICs of
 * 8 or 11 characters); the group status agrees with the transactions';
 * reading again gives the same verdicts; the pacs.002 written for it is
 * XML that libxml2 parses back, with one TxInfAndSts per transaction.
 *
 * Owner: iso20022. Corpus: tests/fuzz/corpus/fuzz_pacs008 (small valid
 * messages of .02 and .08, one in an AppHdr envelope, the prowide shape,
 * and refused ones: a DOCTYPE, a duplicate, a bad amount).
 */
#include <libxml/parser.h>
#include <stdlib.h>
#include <string.h>

#include "huitong/iso20022.h"

#define CHECK(e) ((e) ? (void)0 : abort())

static void accepted_is_complete(const struct ht_iso_tx *t)
{
	CHECK(t->end_to_end_id[0]);
	CHECK(t->amount_minor > 0);
	CHECK(strlen(t->currency) == 3);
	CHECK(t->debtor_account.kind != HT_ISO_ACCOUNT_NONE && t->debtor_account.id[0]);
	CHECK(t->creditor_account.kind != HT_ISO_ACCOUNT_NONE && t->creditor_account.id[0]);
	size_t d = strlen(t->debtor_agent_bic), c = strlen(t->creditor_agent_bic);
	CHECK(d == 8 || d == 11);
	CHECK(c == 8 || c == 11);
	CHECK(!t->detail[0]);
}

static void consistent(const struct ht_iso_msg *m)
{
	CHECK(m->tx_count <= HT_ISO_TXS_MAX);
	CHECK(m->group.reason < HT_ISO_REASON__COUNT);
	CHECK((m->group.reason == HT_ISO_REASON_NONE) == !m->group.detail[0]);
	size_t ok = 0;
	for (size_t i = 0; i < m->tx_count; i++) {
		const struct ht_iso_tx *t = &m->tx[i];
		CHECK(t->reason < HT_ISO_REASON__COUNT);
		if (t->reason != HT_ISO_REASON_NONE)
			CHECK(t->detail[0]);
		if (ht_iso_tx_accepted(m, i)) {
			accepted_is_complete(t);
			ok++;
		}
	}
	enum ht_iso_status s = ht_iso_group_status(m);
	CHECK(s == (ok == 0 ? HT_ISO_RJCT : ok == m->tx_count ? HT_ISO_ACSC : HT_ISO_PART));
}

static void same_verdicts(const struct ht_iso_msg *a, const struct ht_iso_msg *b)
{
	CHECK(a->group.reason == b->group.reason);
	CHECK(!strcmp(a->group.detail, b->group.detail));
	CHECK(a->tx_count == b->tx_count);
	for (size_t i = 0; i < a->tx_count; i++) {
		CHECK(a->tx[i].reason == b->tx[i].reason);
		CHECK(a->tx[i].amount_minor == b->tx[i].amount_minor);
	}
}

/* The pacs.002 parses, with one TxInfAndSts per transaction. */
static void answer_parses(const struct ht_iso_msg *m)
{
	char *out;
	size_t len;
	CHECK(ht_iso_pacs002_write(m, "FUZZ", 0, &out, &len) == HT_OK);
	xmlDocPtr doc = xmlReadMemory(out, (int)len, NULL, NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR |
					      XML_PARSE_NOWARNING);
	CHECK(doc != NULL);
	xmlNodePtr root = xmlDocGetRootElement(doc);
	CHECK(root && !strcmp((const char *)root->name, "Document"));
	xmlNodePtr rpt = xmlFirstElementChild(root);
	CHECK(rpt != NULL);
	size_t n = 0;
	for (xmlNodePtr c = xmlFirstElementChild(rpt); c; c = xmlNextElementSibling(c))
		n += !strcmp((const char *)c->name, "TxInfAndSts");
	CHECK(n == m->tx_count);
	xmlFreeDoc(doc);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A private copy, so a read past size is caught by ASan. */
	char *xml = malloc(size ? size : 1);
	CHECK(xml != NULL);
	memcpy(xml, data, size);
	struct ht_iso_msg *m = NULL, *again = NULL;
	CHECK(ht_iso_pacs008_read(xml, size, NULL, &m) == HT_OK);
	consistent(m);
	CHECK(ht_iso_pacs008_read(xml, size, NULL, &again) == HT_OK);
	same_verdicts(m, again);
	answer_parses(m);
	ht_iso_msg_free(again);
	ht_iso_msg_free(m);
	free(xml);
	return 0;
}

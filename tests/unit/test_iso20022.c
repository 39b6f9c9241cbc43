/*
 * test_iso20022.c — ISO 20022 (iso20022.h): the prowide pacs.008 sample in
 * $HT_SHARED/conformance/iso20022 is rejected RJCT with AM10 (its CtrlSum
 * is twice its one transaction); well-formed messages built here, every
 * version .02 to .08 and several transactions each, settle ACSC and their
 * pacs.002 parses back with libxml2 with the right namespace, statuses and
 * ids; duplicates answer DUPL (in the message, and seen before through
 * the caller's callback); a DOCTYPE (billion laughs, an external entity on
 * file:///etc/passwd) is refused FF01 with nothing expanded; too deep, too
 * large, too many transactions are refused; amounts (decimals, zero,
 * negative, beyond 64 bits), currencies, BICs, IBANs, counts, sums,
 * versions and envelopes each get their reason; the booking interface
 * records AM04 and the answer says PART.
 *
 * Owner: iso20022.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "huitong/iso20022.h"

/* ---- building pacs.008 messages ------------------------------------------- */

struct tx {
	const char *instr, *e2e, *txid, *uetr, *amt, *ccy;
	const char *dbtr_bic, *cdtr_bic, *dbtr_iban, *cdtr_othr, *chrgbr;
};

/* NULL fields take these; "-" leaves the element out. */
static const struct tx tx_default = {
	.instr = "I-1", .e2e = "E2E-1", .txid = "TX-1", .uetr = "-",
	.amt = "89.67", .ccy = "EUR", .dbtr_bic = "TESTBICB",
	.cdtr_bic = "TESTBICAXXX", .dbtr_iban = "GR1601101250000000012300695",
	.cdtr_othr = "bankB:m77", .chrgbr = "SLEV",
};

static const char *pick(const char *v, const char *dflt)
{
	return v ? v : dflt;
}

static void elem(FILE *f, const char *name, const char *v)
{
	if (strcmp(v, "-"))
		fprintf(f, "<%s>%s</%s>", name, v, name);
}

static void write_tx(FILE *f, unsigned version, const struct tx *t)
{
	const char *bic = version == 2 ? "BIC" : "BICFI";
	const struct tx *d = &tx_default;
	fputs("<CdtTrfTxInf><PmtId>", f);
	elem(f, "InstrId", pick(t->instr, d->instr));
	elem(f, "EndToEndId", pick(t->e2e, d->e2e));
	elem(f, "TxId", pick(t->txid, d->txid));
	elem(f, "UETR", pick(t->uetr, d->uetr));
	fputs("</PmtId>", f);
	const char *amt = pick(t->amt, d->amt), *ccy = pick(t->ccy, d->ccy);
	if (strcmp(amt, "-"))
		fprintf(f, "<IntrBkSttlmAmt%s%s%s>%s</IntrBkSttlmAmt>",
			strcmp(ccy, "-") ? " Ccy=\"" : "", strcmp(ccy, "-") ? ccy : "",
			strcmp(ccy, "-") ? "\"" : "", amt);
	fputs("<IntrBkSttlmDt>2026-03-01</IntrBkSttlmDt>", f);
	elem(f, "ChrgBr", pick(t->chrgbr, d->chrgbr));
	fputs("<Dbtr><Nm>Jim Smith &amp; Sons</Nm></Dbtr>", f);
	const char *iban = pick(t->dbtr_iban, d->dbtr_iban);
	if (strcmp(iban, "-"))
		fprintf(f, "<DbtrAcct><Id><IBAN>%s</IBAN></Id></DbtrAcct>", iban);
	fprintf(f, "<DbtrAgt><FinInstnId><%s>%s</%s></FinInstnId></DbtrAgt>", bic,
		pick(t->dbtr_bic, d->dbtr_bic), bic);
	fprintf(f, "<CdtrAgt><FinInstnId><%s>%s</%s></FinInstnId></CdtrAgt>", bic,
		pick(t->cdtr_bic, d->cdtr_bic), bic);
	fputs("<Cdtr><Nm>John Doe</Nm></Cdtr>", f);
	const char *othr = pick(t->cdtr_othr, d->cdtr_othr);
	if (strcmp(othr, "-"))
		fprintf(f, "<CdtrAcct><Id><Othr><Id>%s</Id></Othr></Id></CdtrAcct>", othr);
	fputs("<RmtInf><Ustrd>Remit. Info</Ustrd><Ustrd>second</Ustrd></RmtInf>"
	      "</CdtTrfTxInf>\n", f);
}

/* A pacs.008.001.0<version> with n transactions; nb and ctrl NULL give
 * the right NbOfTxs and no CtrlSum. Freed by the caller. */
static char *build(unsigned version, const char *nb, const char *ctrl,
		   const struct tx *t, size_t n)
{
	char *buf;
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.0%u\">"
		   "<FIToFICstmrCdtTrf><GrpHdr><MsgId>M-%u</MsgId>"
		   "<CreDtTm>2026-03-01T08:00:00</CreDtTm>",
		version, version);
	if (nb)
		fprintf(f, "<NbOfTxs>%s</NbOfTxs>", nb);
	else
		fprintf(f, "<NbOfTxs>%zu</NbOfTxs>", n);
	if (ctrl)
		fprintf(f, "<CtrlSum>%s</CtrlSum>", ctrl);
	fputs("<SttlmInf><SttlmMtd>CLRG</SttlmMtd></SttlmInf></GrpHdr>\n", f);
	for (size_t i = 0; i < n; i++)
		write_tx(f, version, &t[i]);
	fputs("</FIToFICstmrCdtTrf></Document>\n", f);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* xml with text put before the first marker, and cut bytes after the
 * marker's start removed; a new string. */
static char *splice(const char *xml, const char *marker, size_t cut,
		    const char *text)
{
	const char *p = strstr(xml, marker);
	assert_non_null(p);
	char *out;
	assert_true(asprintf(&out, "%.*s%s%s", (int)(p - xml), xml, text, p + cut) > 0);
	return out;
}

static struct ht_iso_msg *read_msg(const char *xml, const struct ht_iso_options *o)
{
	struct ht_iso_msg *m = NULL;
	assert_int_equal(ht_iso_pacs008_read(xml, strlen(xml), o, &m), HT_OK);
	assert_non_null(m);
	return m;
}

/* One transaction with one change; its reason. */
static enum ht_iso_reason one(unsigned version, struct tx t)
{
	char *xml = build(version, NULL, NULL, &t, 1);
	struct ht_iso_msg *m = read_msg(xml, NULL);
	free(xml);
	assert_int_equal(m->group.reason, HT_ISO_REASON_NONE);
	assert_int_equal(m->tx_count, 1);
	enum ht_iso_reason r = m->tx[0].reason;
	if (r != HT_ISO_REASON_NONE)
		assert_true(m->tx[0].detail[0]);
	ht_iso_msg_free(m);
	return r;
}

/* ---- reading the pacs.002 back ------------------------------------------- */

struct reply {
	xmlDocPtr doc;
	xmlXPathContextPtr xp;
};

static struct reply answer(const struct ht_iso_msg *m, const char *ns_name)
{
	char *out;
	size_t len;
	assert_int_equal(ht_iso_pacs002_write(m, "HT-TEST-1", 1772352000123LL,
					      &out, &len), HT_OK);
	assert_int_equal(strlen(out), len);
	struct reply r;
	r.doc = xmlReadMemory(out, (int)len, NULL, NULL, XML_PARSE_NONET);
	free(out);
	assert_non_null(r.doc);
	r.xp = xmlXPathNewContext(r.doc);
	char ns[128];
	snprintf(ns, sizeof ns, "urn:iso:std:iso:20022:tech:xsd:%s", ns_name);
	xmlXPathRegisterNs(r.xp, BAD_CAST "p", BAD_CAST ns);
	return r;
}

/* The string value of expr ("" when it selects nothing); static buffer. */
static const char *xs(struct reply *r, const char *expr)
{
	static char buf[512];
	xmlXPathObjectPtr o = xmlXPathEvalExpression(BAD_CAST expr, r->xp);
	assert_non_null(o);
	xmlChar *s = xmlXPathCastToString(o);
	snprintf(buf, sizeof buf, "%s", (const char *)s);
	xmlFree(s);
	xmlXPathFreeObject(o);
	return buf;
}

static double xn(struct reply *r, const char *expr)
{
	xmlXPathObjectPtr o = xmlXPathEvalExpression(BAD_CAST expr, r->xp);
	assert_non_null(o);
	double v = xmlXPathCastToNumber(o);
	xmlXPathFreeObject(o);
	return v;
}

static void reply_free(struct reply *r)
{
	xmlXPathFreeContext(r->xp);
	xmlFreeDoc(r->doc);
}

#define G "/p:Document/p:FIToFIPmtStsRpt/p:OrgnlGrpInfAndSts/"
#define T "/p:Document/p:FIToFIPmtStsRpt/p:TxInfAndSts"

/* ---- the conformance sample ---------------------------------------------- */

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(1 << 20);
	assert_non_null(buf);
	*len = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	buf[*len] = '\0';
	return buf;
}

static void test_conformance_sample(void **state)
{
	(void)state;
	const char *shared = getenv("HT_SHARED");
	char path[4096];
	snprintf(path, sizeof path,
		 "%s/conformance/iso20022/pacs.008.001.07-prowide.xml",
		 shared ? shared : "../shared");
	size_t len = 0;
	char *xml = read_file(path, &len);
	if (!xml) {
		fprintf(stderr, "test_iso20022: %s absent: the conformance "
				"sample test is skipped (set HT_SHARED)\n", path);
		skip();
	}
	struct ht_iso_msg *m = NULL;
	assert_int_equal(ht_iso_pacs008_read(xml, len, NULL, &m), HT_OK);
	free(xml);
	assert_int_equal(m->group.version, 7);
	assert_string_equal(m->group.msg_id, "823823423");
	assert_int_equal(m->group.reason, HT_ISO_AM10);
	assert_int_equal(ht_iso_group_status(m), HT_ISO_RJCT);
	assert_int_equal(m->tx_count, 1);
	assert_int_equal(m->tx[0].amount_minor, 500000); /* USD 5000 */
	assert_string_equal(m->tx[0].debtor_agent_bic, "ITUSUSP1XXX");
	assert_string_equal(m->group.instructing_agent_bic, "CITTGB2LPBG");
	assert_int_equal(m->tx[0].reason, HT_ISO_AC01); /* no DbtrAcct */
	struct reply r = answer(m, "pacs.002.001.08");
	assert_string_equal(xs(&r, G "p:GrpSts"), "RJCT");
	assert_string_equal(xs(&r, G "p:StsRsnInf/p:Rsn/p:Cd"), "AM10");
	assert_string_equal(xs(&r, G "p:OrgnlMsgId"), "823823423");
	assert_string_equal(xs(&r, G "p:OrgnlMsgNmId"), "pacs.008.001.07");
	assert_string_equal(xs(&r, T "/p:TxSts"), "RJCT");
	assert_string_equal(xs(&r, T "/p:OrgnlTxId"), "123452342");
	reply_free(&r);
	ht_iso_msg_free(m);
}

/* ---- well-formed messages settle -------------------------------------------- */

static const char *const pacs002_of[] = {
	[2] = "pacs.002.001.03", [3] = "pacs.002.001.04", [4] = "pacs.002.001.05",
	[5] = "pacs.002.001.06", [6] = "pacs.002.001.07", [7] = "pacs.002.001.08",
	[8] = "pacs.002.001.10",
};

static void three_txs(struct tx t[3])
{
	t[0] = (struct tx){0};
	t[1] = (struct tx){.instr = "-", .e2e = "E2E-2", .txid = "TX-2",
			   .amt = "12345", .ccy = "JPY", .dbtr_iban = "DE89370400440532013000"};
	t[2] = (struct tx){.e2e = "E2E-3", .txid = "TX-3", .amt = "0.01", .ccy = "CNY",
			   .uetr = "eb6305c9-1f7f-49de-aed0-16487c27b42d"};
}

static void test_every_version_settles(void **state)
{
	(void)state;
	for (unsigned v = 2; v <= 8; v++) {
		struct tx t[3];
		three_txs(t);
		char *xml = build(v, NULL, "12434.68", t, 3);
		struct ht_iso_msg *m = read_msg(xml, NULL);
		free(xml);
		assert_int_equal(m->group.version, v);
		assert_int_equal(m->group.reason, HT_ISO_REASON_NONE);
		assert_int_equal(m->tx_count, 3);
		for (size_t i = 0; i < 3; i++)
			assert_int_equal(m->tx[i].reason, HT_ISO_REASON_NONE);
		assert_int_equal(m->tx[0].amount_minor, 8967);
		assert_int_equal(m->tx[1].amount_minor, 12345);
		assert_int_equal(m->tx[2].amount_minor, 1);
		assert_string_equal(m->tx[0].currency, "EUR");
		assert_string_equal(m->tx[1].debtor_account.id, "DE89370400440532013000");
		assert_int_equal(m->tx[1].debtor_account.kind, HT_ISO_ACCOUNT_IBAN);
		assert_string_equal(m->tx[0].creditor_account.id, "bankB:m77");
		assert_int_equal(m->tx[0].creditor_account.kind, HT_ISO_ACCOUNT_OTHER);
		assert_string_equal(m->tx[0].debtor_name, "Jim Smith & Sons");
		assert_string_equal(m->tx[0].remittance, "Remit. Info");
		assert_string_equal(m->tx[0].creditor_agent_bic, "TESTBICAXXX");
		assert_int_equal(ht_iso_group_status(m), HT_ISO_ACSC);
		assert_string_equal(ht_iso_pacs002_name(v), pacs002_of[v]);
		struct reply r = answer(m, pacs002_of[v]);
		assert_string_equal(xs(&r, G "p:GrpSts"), "ACSC");
		assert_true(xn(&r, "count(" T ")") == 3);
		assert_true(xn(&r, "count(" T "[p:TxSts='ACSC'])") == 3);
		assert_true(xn(&r, "count(//p:StsRsnInf)") == 0);
		assert_string_equal(xs(&r, T "[2]/p:OrgnlTxId"), "TX-2");
		assert_string_equal(xs(&r, T "[2]/p:OrgnlEndToEndId"), "E2E-2");
		assert_true(xn(&r, "count(" T "[2]/p:OrgnlInstrId)") == 0);
		assert_string_equal(xs(&r, "/p:Document/p:FIToFIPmtStsRpt/p:GrpHdr/p:CreDtTm"),
				    "2026-03-01T08:00:00.123Z");
		assert_string_equal(xs(&r, T "[3]/p:OrgnlUETR"),
				    v == 8 ? "eb6305c9-1f7f-49de-aed0-16487c27b42d" : "");
		reply_free(&r);
		ht_iso_msg_free(m);
	}
}

static void test_envelope_with_apphdr(void **state)
{
	(void)state;
	struct tx t = {0};
	char *doc = build(8, NULL, NULL, &t, 1);
	const char *hdr = "<Envelope><AppHdr xmlns=\"urn:iso:std:iso:20022:tech:xsd:"
			  "head.001.001.02\"><MsgDefIdr>pacs.008.001.0%c</MsgDefIdr></AppHdr>";
	char h8[256], h7[256];
	snprintf(h8, sizeof h8, hdr, '8');
	snprintf(h7, sizeof h7, hdr, '7');
	char *body = splice(doc, "<Document", 0, h8);
	char *xml = splice(strstr(body, "<Envelope>"), "</Document>\n", 12, "</Document></Envelope>");
	struct ht_iso_msg *m = read_msg(xml, NULL);
	assert_int_equal(ht_iso_group_status(m), HT_ISO_ACSC);
	ht_iso_msg_free(m);
	free(xml);
	free(body);
	/* An AppHdr naming another message is a format error. */
	body = splice(doc, "<Document", 0, h7);
	xml = splice(strstr(body, "<Envelope>"), "</Document>\n", 12, "</Document></Envelope>");
	m = read_msg(xml, NULL);
	assert_int_equal(m->group.reason, HT_ISO_FF01);
	assert_non_null(strstr(m->group.detail, "MsgDefIdr"));
	ht_iso_msg_free(m);
	free(xml);
	free(body);
	free(doc);
}

/* ---- duplicates ---------------------------------------------------------------- */

static bool seen_tx2(void *ctx, const struct ht_iso_tx *t)
{
	(*(int *)ctx)++;
	return !strcmp(t->tx_id, "TX-2");
}

static void test_duplicates(void **state)
{
	(void)state;
	struct tx t[3] = {{0}, {.e2e = "E2E-2"}, {.e2e = "E2E-3", .txid = "TX-3"}};
	char *xml = build(8, NULL, NULL, t, 3); /* TX-1 twice */
	struct ht_iso_msg *m = read_msg(xml, NULL);
	free(xml);
	assert_int_equal(m->tx[0].reason, HT_ISO_REASON_NONE);
	assert_int_equal(m->tx[1].reason, HT_ISO_DUPL);
	assert_int_equal(m->tx[2].reason, HT_ISO_REASON_NONE);
	assert_int_equal(ht_iso_group_status(m), HT_ISO_PART);
	struct reply r = answer(m, "pacs.002.001.10");
	assert_string_equal(xs(&r, G "p:GrpSts"), "PART");
	assert_string_equal(xs(&r, T "[2]/p:TxSts"), "RJCT");
	assert_string_equal(xs(&r, T "[2]/p:StsRsnInf/p:Rsn/p:Cd"), "DUPL");
	assert_string_equal(xs(&r, T "[1]/p:TxSts"), "ACSC");
	reply_free(&r);
	ht_iso_msg_free(m);

	/* EndToEndId repeated (NOTPROVIDED excepted) */
	struct tx u[4] = {{.e2e = "NOTPROVIDED"}, {.e2e = "NOTPROVIDED", .txid = "TX-2"},
			  {.e2e = "E2E-3", .txid = "TX-3"}, {.e2e = "E2E-3", .txid = "TX-4"}};
	xml = build(8, NULL, NULL, u, 4);
	m = read_msg(xml, NULL);
	free(xml);
	assert_int_equal(m->tx[0].reason, HT_ISO_REASON_NONE);
	assert_int_equal(m->tx[1].reason, HT_ISO_REASON_NONE);
	assert_int_equal(m->tx[2].reason, HT_ISO_REASON_NONE);
	assert_int_equal(m->tx[3].reason, HT_ISO_DUPL);
	assert_non_null(strstr(m->tx[3].detail, "EndToEndId"));
	ht_iso_msg_free(m);

	/* Seen before: the caller's callback, asked once per accepted tx. */
	struct tx v[2] = {{0}, {.e2e = "E2E-2", .txid = "TX-2"}};
	int calls = 0;
	struct ht_iso_options o = {.seen = seen_tx2, .seen_ctx = &calls};
	xml = build(8, NULL, NULL, v, 2);
	m = read_msg(xml, &o);
	free(xml);
	assert_int_equal(calls, 2);
	assert_int_equal(m->tx[0].reason, HT_ISO_REASON_NONE);
	assert_int_equal(m->tx[1].reason, HT_ISO_DUPL);
	ht_iso_msg_free(m);
}

/* ---- refused XML ----------------------------------------------------------------- */

static const char billion_laughs[] =
	"<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n"
	" <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
	" <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
	" <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
	" <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
	" <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
	" <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
	" <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
	" <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
	" <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
	"]>\n<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08\">"
	"<FIToFICstmrCdtTrf><GrpHdr><MsgId>&lol9;</MsgId></GrpHdr>"
	"</FIToFICstmrCdtTrf></Document>\n";

static const char xxe[] =
	"<?xml version=\"1.0\"?>\n<!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n"
	"<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08\">"
	"<FIToFICstmrCdtTrf><GrpHdr><MsgId>&x;</MsgId></GrpHdr>"
	"</FIToFICstmrCdtTrf></Document>\n";

static void refused(const char *xml, size_t len, const char *detail_part)
{
	struct ht_iso_msg *m = NULL;
	assert_int_equal(ht_iso_pacs008_read(xml, len, NULL, &m), HT_OK);
	assert_int_equal(m->group.reason, HT_ISO_FF01);
	if (!strstr(m->group.detail, detail_part))
		fail_msg("detail '%s' lacks '%s'", m->group.detail, detail_part);
	assert_int_equal(ht_iso_group_status(m), HT_ISO_RJCT);
	char *out;
	size_t n;
	assert_int_equal(ht_iso_pacs002_write(m, "X", 0, &out, &n), HT_OK);
	assert_null(strstr(out, "root:")); /* nothing of /etc/passwd */
	assert_null(strstr(out, "lollol"));
	assert_non_null(strstr(out, "<Cd>FF01</Cd>"));
	xmlDocPtr d = xmlReadMemory(out, (int)n, NULL, NULL, XML_PARSE_NONET);
	assert_non_null(d);
	xmlFreeDoc(d);
	free(out);
	assert_string_equal(m->group.msg_id, "");
	ht_iso_msg_free(m);
}

static void test_doctype_refused(void **state)
{
	(void)state;
	refused(billion_laughs, strlen(billion_laughs), "DOCTYPE");
	refused(xxe, strlen(xxe), "DOCTYPE");
	static const char plain[] = "<!DOCTYPE Document><Document/>";
	refused(plain, strlen(plain), "DOCTYPE");
	/* An undeclared entity is not well-formed. */
	static const char undeclared[] =
		"<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08\">"
		"<FIToFICstmrCdtTrf><GrpHdr><MsgId>&x;</MsgId></GrpHdr>"
		"</FIToFICstmrCdtTrf></Document>";
	refused(undeclared, strlen(undeclared), "not well-formed");
	refused("", 0, "not well-formed");
	refused("not xml", 7, "not well-formed");
	/* XInclude is never processed: the element is just unknown. */
	struct tx t = {0};
	char *ok = build(8, NULL, NULL, &t, 1);
	char *xml = splice(ok, "<GrpHdr>", 0, "<xi:include xmlns:xi=\"http://www.w3.org/"
				  "2001/XInclude\" href=\"file:///etc/passwd\" parse=\"text\"/>");
	struct ht_iso_msg *m = read_msg(xml, NULL);
	assert_int_equal(m->group.reason, HT_ISO_FF01); /* foreign namespace */
	assert_null(strstr(m->group.msg_id, "root"));
	ht_iso_msg_free(m);
	free(xml);
	free(ok);
}

static void test_limits(void **state)
{
	(void)state;
	/* too deep */
	char *deep;
	size_t len;
	FILE *f = open_memstream(&deep, &len);
	fputs("<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08\">", f);
	for (int i = 0; i < 40; i++)
		fputs("<a>", f);
	for (int i = 0; i < 40; i++)
		fputs("</a>", f);
	fputs("</Document>", f);
	fclose(f);
	refused(deep, len, "deeper than 32");
	free(deep);

	/* too large: refused before parsing */
	size_t big = HT_ISO_XML_BYTES_MAX + 1;
	char *huge = malloc(big);
	memset(huge, ' ', big);
	memcpy(huge, "<Document>", 10);
	refused(huge, big, "larger than");
	free(huge);

	/* too many transactions (empty ones: the count is what is refused) */
	f = open_memstream(&deep, &len);
	fputs("<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08\">"
	      "<FIToFICstmrCdtTrf>", f);
	for (int i = 0; i < HT_ISO_TXS_MAX + 1; i++)
		fputs("<CdtTrfTxInf/>", f);
	fputs("</FIToFICstmrCdtTrf></Document>", f);
	fclose(f);
	refused(deep, len, "more than 10000 CdtTrfTxInf");
	/* exactly the maximum is read (each transaction rejected on its own) */
	char *cut = strstr(deep, "<CdtTrfTxInf/></FIToFI");
	memmove(cut, cut + 14, strlen(cut + 14) + 1);
	struct ht_iso_msg *m = read_msg(deep, NULL);
	assert_int_equal(m->tx_count, HT_ISO_TXS_MAX);
	assert_null(strstr(m->group.detail, "more than"));
	assert_int_equal(m->tx[HT_ISO_TXS_MAX - 1].reason, HT_ISO_FF01);
	ht_iso_msg_free(m);
	free(deep);

	/* a text longer than its ISO maximum */
	struct tx t = {.txid = "123456789012345678901234567890123456"};
	assert_int_equal(one(8, t), HT_ISO_FF01);
	t.txid = "12345678901234567890123456789012345"; /* 35: fine */
	assert_int_equal(one(8, t), HT_ISO_REASON_NONE);
	t.txid = "\xe4\xb8\xad\xe4\xb8\xad\xe4\xb8\xad"; /* 3 characters, 9 bytes */
	assert_int_equal(one(8, t), HT_ISO_REASON_NONE);
}

/* ---- amounts, currencies, BICs, accounts -------------------------------------- */

static void test_amounts(void **state)
{
	(void)state;
	struct {
		const char *amt, *ccy;
		enum ht_iso_reason want;
		uint64_t minor;
	} cases[] = {
		{"89.67", "EUR", HT_ISO_REASON_NONE, 8967},
		{"89.6", "EUR", HT_ISO_REASON_NONE, 8960},
		{"1.234", "EUR", HT_ISO_AM12, 0},   /* EUR has 2 decimals */
		{"100.5", "JPY", HT_ISO_AM12, 0},   /* JPY has none */
		{"100.0", "JPY", HT_ISO_AM12, 0},   /* written digits count */
		{"100", "JPY", HT_ISO_REASON_NONE, 100},
		{"1.234", "KWD", HT_ISO_REASON_NONE, 1234},
		{"1.000001", "EUR", HT_ISO_FF01, 0}, /* 6 > 5 fraction digits: not ISO */
		{"-5", "EUR", HT_ISO_FF01, 0},
		{"0.00", "EUR", HT_ISO_AM01, 0},
		{"0", "CNY", HT_ISO_AM01, 0},
		{"1e3", "EUR", HT_ISO_FF01, 0},
		{"abc", "EUR", HT_ISO_FF01, 0},
		{"", "EUR", HT_ISO_FF01, 0},
		{" 12.5 ", "CNY", HT_ISO_REASON_NONE, 1250}, /* xs:decimal collapses */
		{"+7", "USD", HT_ISO_REASON_NONE, 700},
		{"0001.10", "USD", HT_ISO_REASON_NONE, 110},
		{"999999999999999999", "JPY", HT_ISO_REASON_NONE, 999999999999999999ull},
		{"999999999999999999", "EUR", HT_ISO_AM02, 0}, /* > 2^64-1 minor */
		{"1234567890123456789", "JPY", HT_ISO_FF01, 0}, /* 19 digits */
		{"1", "XYZ", HT_ISO_AM03, 0},   /* not a currency huitong settles */
		{"1", "eur", HT_ISO_FF01, 0},   /* not [A-Z]{3} */
		{"1", "-", HT_ISO_FF01, 0},     /* no Ccy */
		{"-", "EUR", HT_ISO_FF01, 0},   /* no amount */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct tx t = {.amt = cases[i].amt, .ccy = cases[i].ccy};
		char *xml = build(8, NULL, NULL, &t, 1);
		struct ht_iso_msg *m = read_msg(xml, NULL);
		free(xml);
		if (m->tx[0].reason != cases[i].want)
			fail_msg("%s %s: %s, want %s (%s)", cases[i].amt, cases[i].ccy,
				 ht_iso_reason_name(m->tx[0].reason),
				 ht_iso_reason_name(cases[i].want), m->tx[0].detail);
		if (cases[i].want == HT_ISO_REASON_NONE)
			assert_int_equal(m->tx[0].amount_minor, cases[i].minor);
		ht_iso_msg_free(m);
	}
	/* the caller's maximum */
	struct tx t = {.amt = "100.01"};
	char *xml = build(8, NULL, NULL, &t, 1);
	struct ht_iso_options o = {.amount_minor_max = 10000};
	struct ht_iso_msg *m = read_msg(xml, &o);
	assert_int_equal(m->tx[0].reason, HT_ISO_AM02);
	ht_iso_msg_free(m);
	o.amount_minor_max = 10001;
	m = read_msg(xml, &o);
	assert_int_equal(m->tx[0].reason, HT_ISO_REASON_NONE);
	ht_iso_msg_free(m);
	free(xml);
}

static void test_agents_accounts_fields(void **state)
{
	(void)state;
	assert_int_equal(one(8, (struct tx){.dbtr_bic = "BANK1"}), HT_ISO_RC01);
	assert_int_equal(one(8, (struct tx){.dbtr_bic = "testbicb"}), HT_ISO_RC01);
	assert_int_equal(one(8, (struct tx){.cdtr_bic = "TEST1ICA"}), HT_ISO_RC01);
	assert_int_equal(one(8, (struct tx){.cdtr_bic = "TESTBICAXXXX"}), HT_ISO_RC01);
	assert_int_equal(one(2, (struct tx){.dbtr_bic = "BANK1"}), HT_ISO_RC01);
	assert_int_equal(one(8, (struct tx){.dbtr_iban = "GR1601101250000000012300777"}),
			 HT_ISO_AC01); /* checksum */
	assert_int_equal(one(8, (struct tx){.dbtr_iban = "-"}), HT_ISO_AC01);
	assert_int_equal(one(8, (struct tx){.cdtr_othr = "-"}), HT_ISO_AC01);
	assert_int_equal(one(8, (struct tx){.e2e = "-"}), HT_ISO_FF01);
	assert_int_equal(one(7, (struct tx){.txid = "-"}), HT_ISO_FF01);
	assert_int_equal(one(8, (struct tx){.txid = "-"}), HT_ISO_REASON_NONE);
	assert_int_equal(one(8, (struct tx){.chrgbr = "XXXX"}), HT_ISO_FF01);
	assert_int_equal(one(8, (struct tx){.chrgbr = "-"}), HT_ISO_FF01);
	assert_int_equal(one(8, (struct tx){.uetr = "not-a-uuid"}), HT_ISO_FF01);
	assert_int_equal(one(8, (struct tx){.e2e = ""}), HT_ISO_FF01);

	/* BICFI in .02 (which has BIC) and BIC in .08 (which has BICFI) */
	struct tx t = {0};
	char *v2 = build(2, NULL, NULL, &t, 1);
	static const char bic[] = "<BIC>TESTBICB</BIC>";
	char *xml = splice(v2, bic, strlen(bic), "<BICFI>TESTBICB</BICFI>");
	free(v2);
	struct ht_iso_msg *m = read_msg(xml, NULL);
	assert_int_equal(m->tx[0].reason, HT_ISO_FF01);
	assert_non_null(strstr(m->tx[0].detail, "version"));
	ht_iso_msg_free(m);
	free(xml);
	char *v8 = build(8, NULL, NULL, &t, 1);
	static const char bicfi[] = "<BICFI>TESTBICB</BICFI>";
	xml = splice(v8, bicfi, strlen(bicfi), bic);
	free(v8);
	m = read_msg(xml, NULL);
	assert_int_equal(m->tx[0].reason, HT_ISO_FF01);
	assert_non_null(strstr(m->tx[0].detail, "version"));
	ht_iso_msg_free(m);
	free(xml);

	/* an element given twice */
	xml = build(8, NULL, NULL, &t, 1);
	char *twice = splice(xml, "<ChrgBr>", 0, "<ChrgBr>SHAR</ChrgBr>");
	m = read_msg(twice, NULL);
	assert_int_equal(m->tx[0].reason, HT_ISO_FF01);
	assert_non_null(strstr(m->tx[0].detail, "twice"));
	ht_iso_msg_free(m);
	free(twice);
	free(xml);
}

/* ---- the group ------------------------------------------------------------------- */

static void test_group_checks(void **state)
{
	(void)state;
	struct tx t[2] = {{0}, {.e2e = "E2E-2", .txid = "TX-2", .amt = "10.33"}};
	struct {
		const char *nb, *ctrl;
		enum ht_iso_reason want;
	} cases[] = {
		{NULL, "100.00", HT_ISO_REASON_NONE},
		{NULL, "100", HT_ISO_REASON_NONE},
		{NULL, "100.0000000000000001", HT_ISO_FF01}, /* 19 digits */
		{NULL, "100.01", HT_ISO_AM10},
		{NULL, "99.99", HT_ISO_AM10},
		{"3", NULL, HT_ISO_AM18},
		{"1", "100", HT_ISO_AM18},
		{"two", NULL, HT_ISO_FF01},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *xml = build(8, cases[i].nb, cases[i].ctrl, t, 2);
		struct ht_iso_msg *m = read_msg(xml, NULL);
		free(xml);
		if (m->group.reason != cases[i].want)
			fail_msg("case %zu: %s (%s)", i, ht_iso_reason_name(m->group.reason),
				 m->group.detail);
		assert_int_equal(ht_iso_group_status(m),
				 cases[i].want ? HT_ISO_RJCT : HT_ISO_ACSC);
		if (cases[i].want) {
			struct reply r = answer(m, "pacs.002.001.10");
			assert_string_equal(xs(&r, G "p:StsRsnInf/p:Rsn/p:Cd"),
					    ht_iso_reason_name(cases[i].want));
			/* every transaction is rejected with the group */
			assert_true(xn(&r, "count(" T "[p:TxSts='RJCT'])") == 2);
			reply_free(&r);
		}
		ht_iso_msg_free(m);
	}
	/* TtlIntrBkSttlmAmt: the sum, in the transactions' currency */
	const char *totals[][2] = {
		{"<TtlIntrBkSttlmAmt Ccy=\"EUR\">100.00</TtlIntrBkSttlmAmt>", NULL},
		{"<TtlIntrBkSttlmAmt Ccy=\"EUR\">100.01</TtlIntrBkSttlmAmt>", "AM10"},
		{"<TtlIntrBkSttlmAmt Ccy=\"USD\">100.00</TtlIntrBkSttlmAmt>", "AM10"},
		{"<TtlIntrBkSttlmAmt Ccy=\"EUR\">100.001</TtlIntrBkSttlmAmt>", "AM12"},
		{"<TtlIntrBkSttlmAmt Ccy=\"XYZ\">100.00</TtlIntrBkSttlmAmt>", "AM03"},
	};
	for (size_t i = 0; i < sizeof totals / sizeof totals[0]; i++) {
		char *xml = build(8, NULL, NULL, t, 2);
		char *with = splice(xml, "<SttlmInf>", 0, totals[i][0]);
		struct ht_iso_msg *m = read_msg(with, NULL);
		if (totals[i][1])
			assert_string_equal(ht_iso_reason_name(m->group.reason), totals[i][1]);
		else
			assert_int_equal(m->group.reason, HT_ISO_REASON_NONE);
		assert_true(m->group.has_total);
		ht_iso_msg_free(m);
		free(with);
		free(xml);
	}
}

static void test_versions_and_names(void **state)
{
	(void)state;
	struct tx t = {0};
	char *xml = build(8, NULL, NULL, &t, 1);
	char *p = strstr(xml, "pacs.008.001.08");
	p[14] = '9'; /* pacs.008.001.09: not read */
	struct ht_iso_msg *m = read_msg(xml, NULL);
	assert_int_equal(m->group.reason, HT_ISO_FF01);
	assert_int_equal(m->group.version, 0);
	assert_string_equal(m->group.msg_id, "M-8"); /* still echoed */
	struct reply r = answer(m, "pacs.002.001.10");
	assert_string_equal(xs(&r, G "p:OrgnlMsgNmId"), "pacs.008.001.09");
	assert_string_equal(xs(&r, G "p:OrgnlMsgId"), "M-8");
	reply_free(&r);
	ht_iso_msg_free(m);
	memcpy(p, "pacs.009.001.08", 15);
	m = read_msg(xml, NULL);
	assert_int_equal(m->group.reason, HT_ISO_FF01);
	assert_non_null(strstr(m->group.detail, "not a pacs.008"));
	ht_iso_msg_free(m);
	free(xml);

	m = read_msg("<x><y/></x>", NULL);
	assert_non_null(strstr(m->group.detail, "no Document"));
	r = answer(m, "pacs.002.001.10");
	assert_string_equal(xs(&r, G "p:OrgnlMsgId"), "NOTPROVIDED");
	assert_true(xn(&r, "count(" T ")") == 0);
	reply_free(&r);
	ht_iso_msg_free(m);

	assert_string_equal(ht_iso_reason_name(HT_ISO_AM10), "AM10");
	assert_string_equal(ht_iso_reason_name(HT_ISO_RR04), "RR04");
	assert_null(ht_iso_reason_name(HT_ISO_REASON_NONE));
	assert_null(ht_iso_reason_name(HT_ISO_REASON__COUNT));
	for (int i = 1; i < HT_ISO_REASON__COUNT; i++)
		assert_int_equal(strlen(ht_iso_reason_name(i)), 4);
	assert_string_equal(ht_iso_status_name(HT_ISO_PART), "PART");
}

/* ---- the booking interface and the writer ---------------------------------------- */

static void test_booking_outcomes(void **state)
{
	(void)state;
	struct tx t[2] = {{0}, {.e2e = "E2E-2", .txid = "TX-<&>\"'"}};
	char *xml = build(8, NULL, NULL, t, 2);
	/* build() writes the id raw: escape it as XML for the message */
	char *esc = splice(xml, "TX-<&>", 8, "TX-&lt;&amp;&gt;&quot;&apos;");
	struct ht_iso_msg *m = read_msg(esc, NULL);
	assert_int_equal(ht_iso_group_status(m), HT_ISO_ACSC);
	assert_string_equal(m->tx[1].tx_id, "TX-<&>\"'");
	assert_true(ht_iso_tx_accepted(m, 1));
	ht_iso_tx_reject(m, 1, HT_ISO_AM04, "insufficient funds \x01\xff");
	assert_false(ht_iso_tx_accepted(m, 1));
	assert_int_equal(ht_iso_group_status(m), HT_ISO_PART);
	struct reply r = answer(m, "pacs.002.001.10");
	assert_string_equal(xs(&r, G "p:GrpSts"), "PART");
	assert_string_equal(xs(&r, T "[2]/p:OrgnlTxId"), "TX-<&>\"'");
	assert_string_equal(xs(&r, T "[2]/p:StsRsnInf/p:Rsn/p:Cd"), "AM04");
	assert_string_equal(xs(&r, T "[2]/p:StsRsnInf/p:AddtlInf"),
			    "insufficient funds ??");
	reply_free(&r);
	ht_iso_tx_reject(m, 0, HT_ISO_RR04, NULL);
	assert_int_equal(ht_iso_group_status(m), HT_ISO_RJCT);

	char *out;
	size_t n;
	assert_int_equal(ht_iso_pacs002_write(m, "", 0, &out, &n), HT_ERR_INVALID);
	assert_int_equal(ht_iso_pacs002_write(m, "123456789012345678901234567890123456",
					      0, &out, &n), HT_ERR_INVALID);
	assert_int_equal(ht_iso_pacs002_write(m, "A", -1, &out, &n), HT_ERR_INVALID);
	struct ht_iso_msg *none = NULL;
	assert_int_equal(ht_iso_pacs008_read(NULL, 0, NULL, &none), HT_ERR_INVALID);
	assert_null(none);
	ht_iso_msg_free(m);
	free(esc);
	free(xml);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conformance_sample),
		cmocka_unit_test(test_every_version_settles),
		cmocka_unit_test(test_envelope_with_apphdr),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_doctype_refused),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_amounts),
		cmocka_unit_test(test_agents_accounts_fields),
		cmocka_unit_test(test_group_checks),
		cmocka_unit_test(test_versions_and_names),
		cmocka_unit_test(test_booking_outcomes),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	xmlCleanupParser();
	return rc;
}

/*
 * pacs008.c — the pacs.008 reader: libxml2's SAX2 push parser over the
 * whole message, a table of the element paths huitong reads, and a
 * bounded capture of each one's text.
 *
 * Owner: iso20022. The reader holds no tree: it keeps the path from the
 * Document down to the current element and, inside a known simple
 * element, at most its ISO length of text (four bytes a character).
 * Anything else inside the Document is skipped unread. It must never let
 * libxml2 read a DTD (a DOCTYPE stops the parser in the SAX callback that
 * announces it, before the internal subset is parsed), fetch anything
 * (XML_PARSE_NONET; entity loading is never enabled) or substitute an
 * entity (XML_PARSE_NOENT is never set), and never go past the limits in
 * limits.h: those answer FF01 and stop the parse.
 */
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iso_internal.h"

#define NS_PACS008 "urn:iso:std:iso:20022:tech:xsd:pacs.008.001."
#define NS_ISO "urn:iso:std:iso:20022:tech:xsd:"
#define NS_HEAD001 "urn:iso:std:iso:20022:tech:xsd:head.001.001."
/* The Document and the AppHdr sit at most this deep (an envelope holding
 * them, itself perhaps in a transport wrapper). */
#define ENVELOPE_DEPTH_MAX 3
#define GH "FIToFICstmrCdtTrf/GrpHdr/"
#define TX "FIToFICstmrCdtTrf/CdtTrfTxInf/"
#define STR_(x) #x
#define STR(x) STR_(x)

enum fid {
	A_MSGDEFIDR, /* AppHdr/MsgDefIdr (outside the Document) */
	G_MSGID, G_CREDTTM, G_NBOFTXS, G_CTRLSUM, G_TTLAMT, G_STTLMMTD,
	G_INSTG_BIC, G_INSTD_BIC,
	T_TX, T_INSTRID, T_E2E, T_TXID, T_UETR, T_AMT, T_STTLMDT, T_CHRGBR,
	T_DBTR, T_DBTR_NM, T_DBTRACCT_IBAN, T_DBTRACCT_OTHR, T_DBTRAGT_BIC,
	T_CDTRAGT_BIC, T_CDTR, T_CDTR_NM, T_CDTRACCT_IBAN, T_CDTRACCT_OTHR,
	T_USTRD,
	F__COUNT
};
_Static_assert(F__COUNT <= 64, "seen flags are one uint64_t");

enum kind {
	K_CONTAINER, /* an aggregate: only its presence is noted */
	K_TEXT,      /* MaxNText, kept as written, 1..N characters */
	K_CODE,      /* one of the four-letter codes listed */
	K_AMOUNT,    /* ActiveCurrencyAndAmount with its Ccy attribute */
	K_DECIMAL,   /* DecimalNumber: 18 digits, 17 fraction digits */
	K_COUNT,     /* Max15NumericText */
	K_DATE, K_DATETIME, K_BIC, K_IBAN, K_UETR,
};

struct field {
	const char *path; /* from inside the Document */
	enum fid id;
	enum kind kind;
	unsigned chars_max;   /* characters of text captured, trimmed or not */
	unsigned version_min; /* 0: any */
	unsigned version_max;
	const char *codes;    /* K_CODE: the allowed ones, space separated */
	bool repeats;         /* may occur more than once in its scope */
};

/* Amounts and decimals: 18 digits, a point, a sign and some leading
 * zeros; longer text is not one of them. */
#define DECIMAL_CHARS_MAX 40

static const struct field fields[] = {
	{GH "MsgId", G_MSGID, K_TEXT, 35, 0, 0, NULL, false},
	{GH "CreDtTm", G_CREDTTM, K_DATETIME, 35, 0, 0, NULL, false},
	{GH "NbOfTxs", G_NBOFTXS, K_COUNT, 15, 0, 0, NULL, false},
	{GH "CtrlSum", G_CTRLSUM, K_DECIMAL, DECIMAL_CHARS_MAX, 0, 0, NULL, false},
	{GH "TtlIntrBkSttlmAmt", G_TTLAMT, K_AMOUNT, DECIMAL_CHARS_MAX, 0, 0, NULL, false},
	{GH "SttlmInf/SttlmMtd", G_STTLMMTD, K_CODE, 4, 0, 0, "INDA INGA COVE CLRG", false},
	{GH "InstgAgt/FinInstnId/BIC", G_INSTG_BIC, K_BIC, 11, 2, 2, NULL, false},
	{GH "InstgAgt/FinInstnId/BICFI", G_INSTG_BIC, K_BIC, 11, 3, 8, NULL, false},
	{GH "InstdAgt/FinInstnId/BIC", G_INSTD_BIC, K_BIC, 11, 2, 2, NULL, false},
	{GH "InstdAgt/FinInstnId/BICFI", G_INSTD_BIC, K_BIC, 11, 3, 8, NULL, false},
	{"FIToFICstmrCdtTrf/CdtTrfTxInf", T_TX, K_CONTAINER, 0, 0, 0, NULL, true},
	{TX "PmtId/InstrId", T_INSTRID, K_TEXT, 35, 0, 0, NULL, false},
	{TX "PmtId/EndToEndId", T_E2E, K_TEXT, 35, 0, 0, NULL, false},
	{TX "PmtId/TxId", T_TXID, K_TEXT, 35, 0, 0, NULL, false},
	{TX "PmtId/UETR", T_UETR, K_UETR, 36, 0, 0, NULL, false},
	{TX "IntrBkSttlmAmt", T_AMT, K_AMOUNT, DECIMAL_CHARS_MAX, 0, 0, NULL, false},
	{TX "IntrBkSttlmDt", T_STTLMDT, K_DATE, 10, 0, 0, NULL, false},
	{TX "ChrgBr", T_CHRGBR, K_CODE, 4, 0, 0, "DEBT CRED SHAR SLEV", false},
	{TX "Dbtr", T_DBTR, K_CONTAINER, 0, 0, 0, NULL, false},
	{TX "Dbtr/Nm", T_DBTR_NM, K_TEXT, 140, 0, 0, NULL, false},
	{TX "DbtrAcct/Id/IBAN", T_DBTRACCT_IBAN, K_IBAN, 34, 0, 0, NULL, false},
	{TX "DbtrAcct/Id/Othr/Id", T_DBTRACCT_OTHR, K_TEXT, 34, 0, 0, NULL, false},
	{TX "DbtrAgt/FinInstnId/BIC", T_DBTRAGT_BIC, K_BIC, 11, 2, 2, NULL, false},
	{TX "DbtrAgt/FinInstnId/BICFI", T_DBTRAGT_BIC, K_BIC, 11, 3, 8, NULL, false},
	{TX "CdtrAgt/FinInstnId/BIC", T_CDTRAGT_BIC, K_BIC, 11, 2, 2, NULL, false},
	{TX "CdtrAgt/FinInstnId/BICFI", T_CDTRAGT_BIC, K_BIC, 11, 3, 8, NULL, false},
	{TX "Cdtr", T_CDTR, K_CONTAINER, 0, 0, 0, NULL, false},
	{TX "Cdtr/Nm", T_CDTR_NM, K_TEXT, 140, 0, 0, NULL, false},
	{TX "CdtrAcct/Id/IBAN", T_CDTRACCT_IBAN, K_IBAN, 34, 0, 0, NULL, false},
	{TX "CdtrAcct/Id/Othr/Id", T_CDTRACCT_OTHR, K_TEXT, 34, 0, 0, NULL, false},
	{TX "RmtInf/Ustrd", T_USTRD, K_TEXT, 140, 0, 0, NULL, true},
};
static const struct field msgdefidr = {"MsgDefIdr", A_MSGDEFIDR, K_TEXT, 35,
				       0, 0, NULL, false};

/* Longest text captured: 140 characters of up to four bytes. */
#define CAPTURE_BYTES (140 * 4)
/* Longest path kept; a longer one names no field. */
#define PATH_BYTES 256

struct rd {
	xmlParserCtxtPtr ctxt;
	struct ht_iso_msg *m;
	struct iso_group_extra gx;
	struct iso_tx_extra *tx_extra;
	size_t tx_cap;
	bool stopped, nomem;

	unsigned depth;         /* of the current element, root = 1 */
	unsigned doc_depth;     /* of the Document while inside it, else 0 */
	bool doc_seen;
	unsigned apphdr_depth;  /* of the AppHdr while inside it, else 0 */
	char apphdr_msgdef[HT_ISO_MAX35_BYTES];
	char doc_ns[sizeof NS_PACS008 + 2]; /* the Document's, once a pacs.008 */

	char path[PATH_BYTES];
	size_t path_len[HT_ISO_XML_DEPTH_MAX + 1]; /* by depth */
	unsigned path_overflow; /* levels beyond the path buffer */
	const struct field *at[HT_ISO_XML_DEPTH_MAX + 1]; /* field by depth */
	uint64_t seen_group, seen_tx;

	const struct field *cap; /* capturing this element's text */
	unsigned cap_depth;      /* at this depth */
	char text[CAPTURE_BYTES + 1];
	size_t text_len;
	bool text_long, text_child;
	char ccy[HT_ISO_CCY_BYTES];
	bool ccy_ok;
};

static struct ht_iso_tx *cur_tx(struct rd *r)
{
	HT_ASSERT(r->m->tx_count > 0);
	return &r->m->tx[r->m->tx_count - 1];
}

static bool is_tx_field(enum fid id) { return id >= T_TX; }

/* The reason slot of a field's scope: the group's or the transaction's. */
static void scope(struct rd *r, enum fid id, enum ht_iso_reason **reason,
		  char **detail)
{
	if (is_tx_field(id)) {
		struct ht_iso_tx *t = cur_tx(r);
		*reason = &t->reason;
		*detail = t->detail;
	} else {
		*reason = &r->m->group.reason;
		*detail = r->m->group.detail;
	}
}

/* The path below GrpHdr or CdtTrfTxInf, for messages. */
static const char *short_name(const struct field *f)
{
	const char *p = f->path;
	if (!strncmp(p, GH, strlen(GH)))
		return p + strlen(GH);
	if (!strncmp(p, TX, strlen(TX)))
		return p + strlen(TX);
	return p;
}

/* A group-level FF01 that ends the reading. */
static void fatal(struct rd *r, const char *fmt, const char *arg)
{
	iso_reason_set(&r->m->group.reason, r->m->group.detail, HT_ISO_FF01,
		       fmt, arg);
	r->stopped = true;
	xmlStopParser(r->ctxt);
}

static void out_of_memory(struct rd *r)
{
	r->nomem = true;
	r->stopped = true;
	xmlStopParser(r->ctxt);
}

/* ---- storing one field's text --------------------------------------------- */

static void copy_to(char *dst, size_t size, const char *s, size_t len)
{
	HT_ASSERT(len < size);
	memcpy(dst, s, len);
	dst[len] = '\0';
}

static void trim(const char **s, size_t *len)
{
	while (*len && strchr(" \t\r\n", (*s)[0])) {
		(*s)++;
		(*len)--;
	}
	while (*len && strchr(" \t\r\n", (*s)[*len - 1]))
		(*len)--;
}

static bool code_listed(const char *codes, const char *s, size_t len)
{
	if (len != 4)
		return false;
	for (const char *c = codes; *c; c += c[4] ? 5 : 4)
		if (!memcmp(c, s, 4))
			return true;
	return false;
}

/* Where a text field of the transaction or group goes, or NULL. */
static char *text_dest(struct rd *r, enum fid id, size_t *size)
{
	struct ht_iso_group *g = &r->m->group;
	struct ht_iso_tx *t = is_tx_field(id) ? cur_tx(r) : NULL;
#define DEST(field) (*size = sizeof(field), (field))
	switch (id) {
	case A_MSGDEFIDR: return DEST(r->apphdr_msgdef);
	case G_MSGID: return DEST(g->msg_id);
	case G_CREDTTM: return DEST(g->created);
	case G_STTLMMTD: return DEST(g->settlement_method);
	case G_INSTG_BIC: return DEST(g->instructing_agent_bic);
	case G_INSTD_BIC: return DEST(g->instructed_agent_bic);
	case T_INSTRID: return DEST(t->instr_id);
	case T_E2E: return DEST(t->end_to_end_id);
	case T_TXID: return DEST(t->tx_id);
	case T_UETR: return DEST(t->uetr);
	case T_STTLMDT: return DEST(t->settlement_date);
	case T_CHRGBR: return DEST(t->charge_bearer);
	case T_DBTR_NM: return DEST(t->debtor_name);
	case T_CDTR_NM: return DEST(t->creditor_name);
	case T_DBTRACCT_IBAN: case T_DBTRACCT_OTHR: return DEST(t->debtor_account.id);
	case T_CDTRACCT_IBAN: case T_CDTRACCT_OTHR: return DEST(t->creditor_account.id);
	case T_DBTRAGT_BIC: return DEST(t->debtor_agent_bic);
	case T_CDTRAGT_BIC: return DEST(t->creditor_agent_bic);
	case T_USTRD: return DEST(t->remittance);
	default: return NULL;
	}
#undef DEST
}

static bool is_account(enum fid id)
{
	return id == T_DBTRACCT_IBAN || id == T_DBTRACCT_OTHR ||
	       id == T_CDTRACCT_IBAN || id == T_CDTRACCT_OTHR;
}

/* The account an account field fills. */
static struct ht_iso_account *account_of(struct rd *r, enum fid id)
{
	struct ht_iso_tx *t = cur_tx(r);
	bool debtor = id == T_DBTRACCT_IBAN || id == T_DBTRACCT_OTHR;
	return debtor ? &t->debtor_account : &t->creditor_account;
}

/* An amount or decimal field: the value kept for the checks after the
 * transaction or the message. False with *why when not a decimal. */
static bool store_number(struct rd *r, const struct field *f, const char *s,
			 size_t len, const char **why)
{
	struct iso_dec d;
	bool amount = f->kind == K_AMOUNT;
	if (amount && !r->ccy_ok) {
		*why = "has no Ccy of three letters A-Z";
		return false;
	}
	if (!iso_dec_parse(s, len, 18, amount ? 5 : 17, &d, why))
		return false;
	if (f->id == G_CTRLSUM) {
		r->gx.ctrl_sum_read = true;
		r->gx.ctrl_sum_e17 = d.e17;
		r->m->group.has_ctrl_sum = true;
	} else if (f->id == G_TTLAMT) {
		r->gx.total_read = true;
		r->gx.total = d;
		r->m->group.has_total = true;
		memcpy(r->m->group.total_currency, r->ccy, sizeof r->ccy);
	} else {
		struct iso_tx_extra *x = &r->tx_extra[r->m->tx_count - 1];
		x->amount_read = true;
		x->amount = d;
		memcpy(cur_tx(r)->currency, r->ccy, sizeof r->ccy);
	}
	return true;
}

/* Check s[0..len) against f's type. HT_ISO_REASON_NONE when it is one,
 * else the reason and *why. */
static enum ht_iso_reason value_check(struct rd *r, const struct field *f,
				      const char *s, size_t len, const char **why)
{
	*why = "is not of its ISO type";
	switch (f->kind) {
	case K_TEXT:
		*why = "is empty";
		return len ? HT_ISO_REASON_NONE : HT_ISO_FF01;
	case K_CODE:
		*why = "is not a known code";
		return code_listed(f->codes, s, len) ? HT_ISO_REASON_NONE : HT_ISO_FF01;
	case K_AMOUNT: case K_DECIMAL:
		return store_number(r, f, s, len, why) ? HT_ISO_REASON_NONE : HT_ISO_FF01;
	case K_COUNT: {
		uint64_t n;
		if (!len || ht_u64_parse(s, len, &n) != HT_OK)
			return HT_ISO_FF01;
		r->m->group.nb_of_txs = n;
		r->gx.nb_of_txs_read = true;
		return HT_ISO_REASON_NONE;
	}
	case K_DATE: return iso_date_valid(s, len) ? HT_ISO_REASON_NONE : HT_ISO_FF01;
	case K_DATETIME: return iso_datetime_valid(s, len) ? HT_ISO_REASON_NONE : HT_ISO_FF01;
	case K_UETR: return iso_uetr_valid(s, len) ? HT_ISO_REASON_NONE : HT_ISO_FF01;
	case K_BIC:
		*why = "is not a BIC";
		return iso_bic_valid(s, len) ? HT_ISO_REASON_NONE : HT_ISO_RC01;
	case K_IBAN:
		*why = "is not a valid IBAN";
		return iso_iban_valid(s, len) ? HT_ISO_REASON_NONE : HT_ISO_AC01;
	case K_CONTAINER: break;
	}
	HT_ASSERT(!"a leaf field has a value kind");
	return HT_ISO_FF01;
}

/* The element's structure: its version, once only, no child elements,
 * within its length. HT_ISO_REASON_NONE or a reason with *why. */
static enum ht_iso_reason shape_check(struct rd *r, const struct field *f,
				      uint64_t *seen, const char **why)
{
	unsigned v = r->m->group.version;
	if (f->version_min && v && (v < f->version_min || v > f->version_max)) {
		*why = "is not an element of this pacs.008 version";
		return HT_ISO_FF01;
	}
	if (!f->repeats && (*seen & (1ull << f->id))) {
		*why = "is given twice";
		return HT_ISO_FF01;
	}
	*seen |= 1ull << f->id;
	if (r->text_child) {
		*why = "holds elements";
		return HT_ISO_FF01;
	}
	if (r->text_long || iso_utf8_chars(r->text, r->text_len) > f->chars_max) {
		*why = "is too long";
		return f->kind == K_BIC ? HT_ISO_RC01
		       : f->kind == K_IBAN ? HT_ISO_AC01 : HT_ISO_FF01;
	}
	return HT_ISO_REASON_NONE;
}

/* The end of a field whose text was captured. */
static void field_end(struct rd *r, const struct field *f)
{
	enum ht_iso_reason *reason;
	char *detail;
	const char *why;
	if (f->id == A_MSGDEFIDR) {
		if (!r->text_long && !r->text_child && r->text_len < sizeof r->apphdr_msgdef)
			copy_to(r->apphdr_msgdef, sizeof r->apphdr_msgdef,
				r->text, r->text_len);
		return;
	}
	scope(r, f->id, &reason, &detail);
	uint64_t *seen = is_tx_field(f->id) ? &r->seen_tx : &r->seen_group;
	const char *s = r->text;
	size_t len = r->text_len;
	if (f->kind != K_TEXT)
		trim(&s, &len);
	enum ht_iso_reason bad = shape_check(r, f, seen, &why);
	if (bad == HT_ISO_REASON_NONE)
		bad = value_check(r, f, s, len, &why);
	struct ht_iso_account *a = is_account(f->id) ? account_of(r, f->id) : NULL;
	if (bad == HT_ISO_REASON_NONE && a && a->kind != HT_ISO_ACCOUNT_NONE) {
		bad = HT_ISO_FF01;
		why = "is a second id of one account";
	}
	if (bad != HT_ISO_REASON_NONE) {
		iso_reason_set(reason, detail, bad, "%s %s", short_name(f), why);
		return;
	}
	size_t size;
	char *dst = text_dest(r, f->id, &size);
	if (dst && !dst[0]) /* a repeated Ustrd keeps the first */
		copy_to(dst, size, s, len);
	if (a)
		a->kind = f->kind == K_IBAN ? HT_ISO_ACCOUNT_IBAN : HT_ISO_ACCOUNT_OTHER;
}

/* ---- SAX callbacks ----------------------------------------------------------- */

static const struct field *field_at(const char *path)
{
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		if (!strcmp(fields[i].path, path))
			return &fields[i];
	return NULL;
}

static bool tx_begin(struct rd *r)
{
	struct ht_iso_msg *m = r->m;
	if (m->tx_count == HT_ISO_TXS_MAX) {
		fatal(r, "more than %s CdtTrfTxInf in one message",
		      STR(HT_ISO_TXS_MAX));
		return false;
	}
	if (m->tx_count == r->tx_cap) {
		size_t cap = r->tx_cap ? r->tx_cap * 2 : 16;
		if (cap > HT_ISO_TXS_MAX)
			cap = HT_ISO_TXS_MAX;
		struct ht_iso_tx *t = realloc(m->tx, cap * sizeof *t);
		if (t)
			m->tx = t;
		struct iso_tx_extra *x = realloc(r->tx_extra, cap * sizeof *x);
		if (x)
			r->tx_extra = x;
		if (!t || !x) {
			out_of_memory(r);
			return false;
		}
		r->tx_cap = cap;
	}
	memset(&m->tx[m->tx_count], 0, sizeof m->tx[0]);
	memset(&r->tx_extra[m->tx_count], 0, sizeof r->tx_extra[0]);
	m->tx_count++;
	r->seen_tx = 0;
	return true;
}

static void capture_begin(struct rd *r, const struct field *f, int nb_attributes,
			  const xmlChar **attrs)
{
	r->cap = f;
	r->cap_depth = r->depth;
	r->text_len = 0;
	r->text_long = r->text_child = false;
	r->ccy_ok = false;
	if (f->kind != K_AMOUNT)
		return;
	/* attrs: (localname, prefix, URI, value, end) per attribute */
	for (int i = 0; i < nb_attributes; i++) {
		const xmlChar **a = attrs + 5 * i;
		if (strcmp((const char *)a[0], "Ccy") || a[2] != NULL)
			continue;
		size_t n = (size_t)(a[4] - a[3]);
		r->ccy_ok = iso_ccy_form((const char *)a[3], n);
		if (r->ccy_ok)
			copy_to(r->ccy, sizeof r->ccy, (const char *)a[3], n);
	}
}

/* Enter the Document: its namespace names the message and version. */
static void doc_begin(struct rd *r, const xmlChar *uri)
{
	const char *ns = uri ? (const char *)uri : "";
	struct ht_iso_group *g = &r->m->group;
	if (r->doc_seen) {
		fatal(r, "%s", "more than one Document");
		return;
	}
	r->doc_seen = true;
	r->doc_depth = r->depth;
	r->path[0] = '\0';
	r->path_len[0] = 0;
	size_t n = strlen(ns);
	if (!strncmp(ns, NS_ISO, strlen(NS_ISO)) && n - strlen(NS_ISO) < 36)
		memcpy(g->msg_name, ns + strlen(NS_ISO), n - strlen(NS_ISO) + 1);
	if (strncmp(ns, NS_PACS008, strlen(NS_PACS008))) {
		fatal(r, "%s", "the Document is not a pacs.008 (namespace)");
		return;
	}
	const char *v = ns + strlen(NS_PACS008);
	if (strlen(v) > 2) {
		fatal(r, "%s", "pacs.008 version not supported (.02 to .08 are)");
		return;
	}
	memcpy(r->doc_ns, ns, n + 1);
	if (strlen(v) == 2 && v[0] == '0' && v[1] >= '0' + HT_ISO_PACS008_VERSION_MIN &&
	    v[1] <= '0' + HT_ISO_PACS008_VERSION_MAX)
		g->version = (unsigned)(v[1] - '0');
	else /* read on for MsgId, but the group is rejected */
		iso_reason_set(&g->reason, g->detail, HT_ISO_FF01,
			       "pacs.008 version not supported (.02 to .08 are)");
}

/* An element outside the Document: an envelope, the AppHdr or in it. */
static void outside_begin(struct rd *r, const xmlChar *name, const xmlChar *uri)
{
	const char *n = (const char *)name;
	const char *ns = uri ? (const char *)uri : "";
	if (r->apphdr_depth) {
		if (r->depth == r->apphdr_depth + 1 && !strcmp(n, "MsgDefIdr"))
			capture_begin(r, &msgdefidr, 0, NULL);
		return;
	}
	if (r->depth > ENVELOPE_DEPTH_MAX)
		return;
	if (!strcmp(n, "Document"))
		doc_begin(r, uri);
	else if (!strcmp(n, "AppHdr") && !strncmp(ns, NS_HEAD001, strlen(NS_HEAD001)))
		r->apphdr_depth = r->depth;
}

static void path_push(struct rd *r, const char *name)
{
	unsigned d = r->depth - r->doc_depth;
	size_t len = r->path_len[d - 1], n = strlen(name);
	if (r->path_overflow || len + 1 + n >= PATH_BYTES) {
		r->path_overflow++;
		return;
	}
	if (len)
		r->path[len++] = '/';
	memcpy(r->path + len, name, n + 1);
	r->path_len[d] = len + n;
}

static void path_pop(struct rd *r)
{
	if (r->path_overflow) {
		r->path_overflow--;
		return;
	}
	unsigned d = r->depth - r->doc_depth;
	r->path[r->path_len[d - 1]] = '\0';
}

static void inside_begin(struct rd *r, const xmlChar *name, const xmlChar *uri,
			 int nb_attributes, const xmlChar **attrs)
{
	struct ht_iso_group *g = &r->m->group;
	if (!uri || strcmp((const char *)uri, r->doc_ns))
		iso_reason_set(&g->reason, g->detail, HT_ISO_FF01,
			       "an element in another namespace than the Document's");
	path_push(r, (const char *)name);
	const struct field *f = r->path_overflow ? NULL : field_at(r->path);
	r->at[r->depth] = f;
	if (!f)
		return;
	if (f->id == T_TX) {
		tx_begin(r);
		return;
	}
	if (f->kind == K_CONTAINER) {
		struct iso_tx_extra *x = &r->tx_extra[r->m->tx_count - 1];
		x->debtor_seen |= f->id == T_DBTR;
		x->creditor_seen |= f->id == T_CDTR;
		return;
	}
	capture_begin(r, f, nb_attributes, attrs);
}

static void on_start(void *ctx, const xmlChar *name, const xmlChar *prefix,
		     const xmlChar *uri, int nb_namespaces,
		     const xmlChar **namespaces, int nb_attributes,
		     int nb_defaulted, const xmlChar **attrs)
{
	(void)prefix, (void)nb_namespaces, (void)namespaces, (void)nb_defaulted;
	struct rd *r = ctx;
	if (r->stopped)
		return;
	if (r->depth == HT_ISO_XML_DEPTH_MAX) {
		fatal(r, "%s", "elements nested deeper than "
			       STR(HT_ISO_XML_DEPTH_MAX) " levels");
		return;
	}
	r->depth++;
	r->at[r->depth] = NULL;
	if (r->cap)
		r->text_child = true;
	if (r->doc_depth)
		inside_begin(r, name, uri, nb_attributes, attrs);
	else
		outside_begin(r, name, uri);
}

static void on_end(void *ctx, const xmlChar *name, const xmlChar *prefix,
		   const xmlChar *uri)
{
	(void)name, (void)prefix, (void)uri;
	struct rd *r = ctx;
	if (r->stopped)
		return;
	HT_ASSERT(r->depth > 0);
	const struct field *f = r->at[r->depth];
	if (r->cap && r->depth == r->cap_depth) {
		field_end(r, r->cap);
		r->cap = NULL;
	}
	if (r->doc_depth && r->depth == r->doc_depth) {
		r->doc_depth = 0;
	} else if (r->doc_depth) {
		if (f && f->id == T_TX)
			iso_check_tx(r->m, r->m->tx_count - 1,
				     &r->tx_extra[r->m->tx_count - 1]);
		path_pop(r);
	} else if (r->depth == r->apphdr_depth) {
		r->apphdr_depth = 0;
	}
	r->depth--;
}

static void on_text(void *ctx, const xmlChar *s, int len)
{
	struct rd *r = ctx;
	if (r->stopped || !r->cap || r->text_long)
		return;
	size_t n = (size_t)len, room = (size_t)r->cap->chars_max * 4 - r->text_len;
	if (n > room) {
		r->text_long = true;
		return;
	}
	memcpy(r->text + r->text_len, s, n);
	r->text_len += n;
	r->text[r->text_len] = '\0';
}

static void on_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id,
		       const xmlChar *system_id)
{
	(void)name, (void)external_id, (void)system_id;
	fatal(ctx, "%s", "a DOCTYPE: DTDs and entity declarations are refused");
}

static void on_error(void *ctx, xmlErrorPtr e)
{
	(void)ctx, (void)e; /* read from the context after the parse */
}

/* ---- the parse --------------------------------------------------------------- */

/* libxml2's last error as a detail: ASCII only, so a cut never splits a
 * character. */
static void not_well_formed(struct rd *r)
{
	const xmlError *e = xmlCtxtGetLastError(r->ctxt);
	char msg[HT_ISO_DETAIL_BYTES];
	snprintf(msg, sizeof msg, "not well-formed XML (line %d: %s",
		 e ? e->line : 0, e && e->message ? e->message : "?");
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = ' ';
	size_t n = strlen(msg);
	while (n && msg[n - 1] == ' ')
		n--;
	if (n < sizeof msg - 1)
		msg[n++] = ')';
	msg[n] = '\0';
	struct ht_iso_group *g = &r->m->group;
	iso_reason_set(&g->reason, g->detail, HT_ISO_FF01, "%s", msg);
}

/* libxml2 prints some errors (encoding conversion, I/O) through its
 * generic handler rather than the context's: silenced while reading. */
static void quiet(void *ctx, const char *fmt, ...)
{
	(void)ctx, (void)fmt;
}

static void parse(struct rd *r, const char *xml, size_t len)
{
	xmlSAXHandler sax;
	memset(&sax, 0, sizeof sax);
	sax.initialized = XML_SAX2_MAGIC;
	sax.startElementNs = on_start;
	sax.endElementNs = on_end;
	sax.characters = on_text;
	sax.cdataBlock = on_text;
	sax.ignorableWhitespace = on_text;
	sax.internalSubset = on_doctype;
	sax.externalSubset = on_doctype;
	sax.serror = on_error;
	/* The first bytes go with the creation so libxml2 sees the encoding. */
	size_t first = len < 4 ? len : 4;
	r->ctxt = xmlCreatePushParserCtxt(&sax, r, xml, (int)first, NULL);
	if (!r->ctxt) {
		out_of_memory(r);
		return;
	}
	xmlCtxtUseOptions(r->ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR |
					   XML_PARSE_NOWARNING);
	xmlParseChunk(r->ctxt, xml + first, (int)(len - first), 1);
	if (!r->stopped && !r->ctxt->wellFormed)
		not_well_formed(r);
	r->gx.complete = !r->stopped && r->ctxt->wellFormed;
	xmlFreeParserCtxt(r->ctxt);
	r->ctxt = NULL;
}

/* What only the whole message shows: a Document, an AppHdr naming it. */
static void finish(struct rd *r)
{
	struct ht_iso_group *g = &r->m->group;
	if (!r->doc_seen)
		iso_reason_set(&g->reason, g->detail, HT_ISO_FF01,
			       "no Document (a pacs.008, alone or in an envelope)");
	if (r->apphdr_msgdef[0] && g->msg_name[0] &&
	    strcmp(r->apphdr_msgdef, g->msg_name))
		iso_reason_set(&g->reason, g->detail, HT_ISO_FF01,
			       "AppHdr MsgDefIdr names another message than the Document");
}

enum ht_err ht_iso_pacs008_read(const void *xml, size_t len,
				const struct ht_iso_options *opts,
				struct ht_iso_msg **out)
{
	if (!xml || !out)
		return HT_ERR_INVALID;
	*out = NULL;
	xmlInitParser();
	struct ht_iso_msg *m = calloc(1, sizeof *m);
	struct rd *r = calloc(1, sizeof *r);
	if (!m || !r) {
		free(m);
		free(r);
		return HT_ERR_NOMEM;
	}
	r->m = m;
	if (len > HT_ISO_XML_BYTES_MAX)
		iso_reason_set(&m->group.reason, m->group.detail, HT_ISO_FF01,
			       "message larger than %u bytes", HT_ISO_XML_BYTES_MAX);
	else {
		xmlGenericErrorFunc was = xmlGenericError;
		void *was_ctx = xmlGenericErrorContext;
		xmlSetGenericErrorFunc(NULL, quiet);
		parse(r, xml, len);
		xmlSetGenericErrorFunc(was_ctx, was);
	}
	enum ht_err e = HT_ERR_NOMEM;
	if (!r->nomem) {
		finish(r);
		e = iso_check_msg(m, &r->gx, r->tx_extra, opts);
	}
	free(r->tx_extra);
	free(r);
	if (e != HT_OK) {
		ht_iso_msg_free(m);
		return e;
	}
	*out = m;
	return HT_OK;
}

void ht_iso_msg_free(struct ht_iso_msg *m)
{
	if (!m)
		return;
	free(m->tx);
	free(m);
}

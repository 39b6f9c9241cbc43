/*
 * pacs002.c — the pacs.002 (FIToFIPmtStsRpt) that answers a pacs.008:
 * the group status and one status per transaction, with ISO reasons.
 *
 * Owner: iso20022. Written with libxml2's xmlTextWriter, which escapes
 * every value; the values are the message's own (valid UTF-8, as libxml2
 * read them, and within their ISO lengths) or huitong's ASCII details.
 * Never echoes a value the reader found invalid: those fields are empty.
 */
#include <libxml/xmlwriter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "iso_internal.h"

/* pacs.002 of the same ISO release as each pacs.008, by the 008's N. */
static const char *const pacs002_names[] = {
	[2] = "pacs.002.001.03", [3] = "pacs.002.001.04", [4] = "pacs.002.001.05",
	[5] = "pacs.002.001.06", [6] = "pacs.002.001.07", [7] = "pacs.002.001.08",
	[8] = "pacs.002.001.10",
};
_Static_assert(sizeof pacs002_names / sizeof pacs002_names[0] ==
		       HT_ISO_PACS008_VERSION_MAX + 1,
	       "one pacs.002 per pacs.008 version");

const char *ht_iso_pacs002_name(unsigned version)
{
	if (version < HT_ISO_PACS008_VERSION_MIN || version > HT_ISO_PACS008_VERSION_MAX)
		return pacs002_names[HT_ISO_PACS008_VERSION_MAX];
	return pacs002_names[version];
}

#define NS_ISO "urn:iso:std:iso:20022:tech:xsd:"

/* Every xmlTextWriter call returns < 0 on failure; w_ok collects them. */
struct w {
	xmlTextWriterPtr x;
	bool ok;
};

static void start(struct w *w, const char *name)
{
	w->ok &= xmlTextWriterStartElement(w->x, BAD_CAST name) >= 0;
}

static void end(struct w *w)
{
	w->ok &= xmlTextWriterEndElement(w->x) >= 0;
}

/* <name>text</name>, nothing when text is empty. */
static void leaf(struct w *w, const char *name, const char *text)
{
	if (text && text[0])
		w->ok &= xmlTextWriterWriteElement(w->x, BAD_CAST name,
						   BAD_CAST text) >= 0;
}

static void reason_info(struct w *w, enum ht_iso_reason r, const char *detail)
{
	if (r == HT_ISO_REASON_NONE)
		return;
	start(w, "StsRsnInf");
	start(w, "Rsn");
	leaf(w, "Cd", ht_iso_reason_name(r));
	end(w);
	leaf(w, "AddtlInf", detail);
	end(w);
}

static void group_info(struct w *w, const struct ht_iso_msg *m)
{
	const struct ht_iso_group *g = &m->group;
	start(w, "OrgnlGrpInfAndSts");
	leaf(w, "OrgnlMsgId", g->msg_id[0] ? g->msg_id : "NOTPROVIDED");
	leaf(w, "OrgnlMsgNmId", g->msg_name[0] ? g->msg_name : "pacs.008");
	leaf(w, "OrgnlCreDtTm", g->created);
	leaf(w, "GrpSts", ht_iso_status_name(ht_iso_group_status(m)));
	reason_info(w, g->reason, g->detail);
	end(w);
}

static void tx_info(struct w *w, const struct ht_iso_msg *m, size_t i,
		    bool with_uetr)
{
	const struct ht_iso_tx *t = &m->tx[i];
	bool ok = ht_iso_tx_accepted(m, i);
	start(w, "TxInfAndSts");
	leaf(w, "OrgnlInstrId", t->instr_id);
	leaf(w, "OrgnlEndToEndId", t->end_to_end_id);
	leaf(w, "OrgnlTxId", t->tx_id);
	if (with_uetr)
		leaf(w, "OrgnlUETR", t->uetr);
	leaf(w, "TxSts", ht_iso_status_name(ok ? HT_ISO_ACSC : HT_ISO_RJCT));
	if (t->reason != HT_ISO_REASON_NONE)
		reason_info(w, t->reason, t->detail);
	else
		reason_info(w, m->group.reason, m->group.detail);
	end(w);
}

/* ISODateTime of a Unix time in ms, UTC: 2026-03-01T08:00:00.120Z. */
static bool format_time(int64_t ms, char out[32])
{
	if (ms < 0 || ms > 253402300799999LL)
		return false;
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	if (!gmtime_r(&s, &tm))
		return false;
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	HT_ASSERT(n == 19);
	snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
	return true;
}

static void document(struct w *w, const struct ht_iso_msg *m, const char *msg_id,
		     const char *created)
{
	const char *name = ht_iso_pacs002_name(m->group.version);
	char ns[64];
	snprintf(ns, sizeof ns, NS_ISO "%s", name);
	w->ok &= xmlTextWriterStartDocument(w->x, "1.0", "UTF-8", NULL) >= 0;
	start(w, "Document");
	w->ok &= xmlTextWriterWriteAttribute(w->x, BAD_CAST "xmlns", BAD_CAST ns) >= 0;
	start(w, "FIToFIPmtStsRpt");
	start(w, "GrpHdr");
	leaf(w, "MsgId", msg_id);
	leaf(w, "CreDtTm", created);
	end(w);
	group_info(w, m);
	bool with_uetr = strcmp(name, "pacs.002.001.10") == 0;
	for (size_t i = 0; i < m->tx_count && w->ok; i++)
		tx_info(w, m, i, with_uetr);
	w->ok &= xmlTextWriterEndDocument(w->x) >= 0;
}

/* 1..35 printable ASCII characters. */
static bool msg_id_valid(const char *s)
{
	size_t n = strnlen(s, 36);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return n >= 1 && n <= 35;
}

enum ht_err ht_iso_pacs002_write(const struct ht_iso_msg *m,
				 const char *msg_id, int64_t created_ms,
				 char **out, size_t *out_len)
{
	char created[32];
	if (!m || !msg_id || !out || !out_len || !msg_id_valid(msg_id) ||
	    !format_time(created_ms, created))
		return HT_ERR_INVALID;
	*out = NULL;
	*out_len = 0;
	xmlBufferPtr buf = xmlBufferCreate();
	struct w w = {buf ? xmlNewTextWriterMemory(buf, 0) : NULL, true};
	if (!w.x) {
		xmlBufferFree(buf);
		return HT_ERR_NOMEM;
	}
	xmlTextWriterSetIndent(w.x, 1);
	xmlTextWriterSetIndentString(w.x, BAD_CAST "  ");
	document(&w, m, msg_id, created);
	xmlFreeTextWriter(w.x); /* flushes into buf */
	size_t n = (size_t)xmlBufferLength(buf);
	char *s = w.ok ? malloc(n + 1) : NULL;
	if (s) {
		memcpy(s, xmlBufferContent(buf), n);
		s[n] = '\0';
	}
	xmlBufferFree(buf);
	if (!s)
		return HT_ERR_NOMEM;
	*out = s;
	*out_len = n;
	return HT_OK;
}

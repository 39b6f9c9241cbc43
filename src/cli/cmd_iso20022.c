/*
 * cmd_iso20022.c — `huitong iso20022 check|submit`: ISO 20022 pacs.008 in,
 * pacs.002 out (docs/iso20022.md).
 *
 * Owner: iso20022. `check` reads one pacs.008, validates it without
 * booking and prints on stdout the pacs.002 huitong would answer, each
 * transaction that would settle as ACSC; a one-line verdict goes to
 * stderr. Exit 0 when every transaction would settle, 1 when any is
 * rejected, 2 on bad usage or a file that cannot be read. `submit` books
 * it through the switch (the store's writer, like `switch fund`: not
 * beside a running hub, whose API takes it at POST /v1/iso20022/pacs008)
 * and prints the pacs.002 with each transaction's outcome.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_util.h"
#include "commands.h"
#include "huitong/crypto.h"
#include "huitong/hub.h"
#include "huitong/iso20022.h"
#include "huitong/liquidity.h"

static const char iso_usage[] =
	"usage: huitong iso20022 check [--max-amount MINOR] [--msg-id ID] FILE|-\n"
	"       huitong iso20022 submit --data D [--as PARTICIPANT]\n"
	"                               [--max-amount MINOR] [--msg-id ID] FILE|-\n"
	"\n"
	"check: read one pacs.008 (FIToFICstmrCdtTrf, pacs.008.001.02 to .08,\n"
	"alone or in an envelope with a head.001 AppHdr), validate it without\n"
	"booking, and print on stdout the pacs.002 huitong would answer: the\n"
	"group status (ACSC, PART or RJCT) and one status per transaction (ACSC\n"
	"for one that would settle, RJCT with an ISO reason code: FF01 format,\n"
	"AM10 control sum, AM18 number of transactions, AM01 zero, AM02 above\n"
	"the maximum, AM03 currency, AM12 decimals, AC01 account, RC01 BIC,\n"
	"DUPL duplicate). A verdict line goes to stderr.\n"
	"\n"
	"  --max-amount MINOR  reject (AM02) a transaction above MINOR minor\n"
	"                      units of its currency (default: no maximum)\n"
	"  --msg-id ID         the pacs.002's MsgId (default: HT + time + random)\n"
	"\n"
	"Exit 0 when every transaction would settle, 1 when any is rejected,\n"
	"2 on bad usage or an unreadable file.\n"
	"\n"
	"submit: book a pacs.008 through the switch of the store D (its writer:\n"
	"not beside a running `huitong serve`, whose API takes POST\n"
	"/v1/iso20022/pacs008) and print its pacs.002. Each accepted\n"
	"transaction is a transfer between the agents' participants' positions\n"
	"(their BICs: `huitong switch bic`), settled at once (ACSC), or RJCT\n"
	"with RC01 (an agent not a member, or with --as a debtor agent other\n"
	"than PARTICIPANT), AC01 (not set up in the currency), AC06\n"
	"(suspended), AM04 (beyond the net debit cap), DUPL (booked before).\n"
	"Exit as for check.\n";

/* Read at most HT_ISO_XML_BYTES_MAX + 1 bytes of path ("-": stdin), so a
 * larger file is still answered (FF01) rather than loaded whole. */
static int read_input(const char *path, char **out, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f)
		return ht_cli_fail("iso20022", "%s: cannot open: %s", path,
				   strerror(errno));
	size_t cap = (size_t)HT_ISO_XML_BYTES_MAX + 1;
	char *buf = malloc(cap);
	size_t n = buf ? fread(buf, 1, cap, f) : 0;
	bool bad = !buf || ferror(f);
	if (f != stdin)
		fclose(f);
	if (bad) {
		free(buf);
		return ht_cli_fail("iso20022", "%s: cannot read", path);
	}
	*out = buf;
	*len = n;
	return 0;
}

/* "HT" + UTC yyyymmddhhmmss + 16 random hex digits: 32 characters. */
static bool new_msg_id(int64_t now_ms, char out[36])
{
	uint8_t r[8];
	char hex[17];
	if (ht_random(r, sizeof r) != HT_OK)
		return false;
	ht_hex_encode(r, sizeof r, hex);
	time_t s = (time_t)(now_ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	char stamp[15];
	strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
	snprintf(out, 36, "HT%s%s", stamp, hex);
	return true;
}

static void verdict(const struct ht_iso_msg *m)
{
	size_t ok = 0;
	for (size_t i = 0; i < m->tx_count; i++)
		ok += ht_iso_tx_accepted(m, i);
	const char *st = ht_iso_status_name(ht_iso_group_status(m));
	if (m->group.reason != HT_ISO_REASON_NONE)
		fprintf(stderr, "huitong iso20022 check: %s %s: %s; %zu of %zu "
				"transactions would settle\n",
			st, ht_iso_reason_name(m->group.reason), m->group.detail,
			ok, m->tx_count);
	else
		fprintf(stderr, "huitong iso20022 check: %s; %zu of %zu "
				"transactions would settle\n", st, ok, m->tx_count);
}

/* Book m through the switch of the store `data` (submit). */
static int book(const char *data, const char *as, struct ht_iso_msg *m)
{
	struct ht_hub *hub;
	struct ht_liq *l;
	if (ht_cli_open_switch("iso20022", data, &hub, &l))
		return 2;
	size_t booked = 0;
	struct ht_sth head;
	enum ht_err e = ht_liq_book_pacs008(l, m, as, NULL, NULL, &booked);
	if (!e)
		e = ht_hub_commit(hub, &head);
	ht_liq_close(l);
	ht_hub_close(hub);
	if (e)
		return ht_cli_fail("iso20022", "booking: %s (nothing of it was"
				   " committed)", ht_strerror(e));
	fprintf(stderr, "huitong iso20022 submit: %zu transfer(s) booked\n",
		booked);
	return 0;
}

static int check_file(const char *path, const struct ht_iso_options *o,
		      const char *msg_id, const char *data, const char *as)
{
	char *xml = NULL, *out, id[36];
	size_t len = 0, out_len;
	int rc = read_input(path, &xml, &len);
	if (rc)
		return rc;
	struct ht_iso_msg *m;
	enum ht_err e = ht_iso_pacs008_read(xml, len, o, &m);
	free(xml);
	if (e != HT_OK)
		return ht_cli_fail("iso20022", "%s: %s", path, ht_strerror(e));
	if (data && (rc = book(data, as, m))) {
		ht_iso_msg_free(m);
		return rc;
	}
	int64_t now_ms = (int64_t)(ht_now_wall_ns() / 1000000);
	if (!msg_id && !new_msg_id(now_ms, id)) {
		ht_iso_msg_free(m);
		return ht_cli_fail("iso20022", "no random bytes for a MsgId");
	}
	e = ht_iso_pacs002_write(m, msg_id ? msg_id : id, now_ms, &out, &out_len);
	if (e != HT_OK) {
		ht_iso_msg_free(m);
		return ht_cli_fail("iso20022", "writing the pacs.002: %s",
				   ht_strerror(e));
	}
	fwrite(out, 1, out_len, stdout);
	free(out);
	verdict(m);
	rc = ht_iso_group_status(m) == HT_ISO_ACSC ? 0 : 1;
	ht_iso_msg_free(m);
	if (fflush(stdout))
		return ht_cli_fail("iso20022", "writing stdout: %s",
				   strerror(errno));
	return rc;
}

static int cmd_check(int argc, char **argv, bool submit)
{
	static const struct option opts[] = {
		{"max-amount", required_argument, NULL, 'm'},
		{"msg-id", required_argument, NULL, 'i'},
		{"data", required_argument, NULL, 'd'},
		{"as", required_argument, NULL, 'a'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct ht_iso_options o = {0};
	const char *msg_id = NULL, *data = NULL, *as = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'm' && ht_cli_u64("iso20022", "--max-amount", optarg,
					   &o.amount_minor_max))
			continue;
		if (c == 'i') {
			msg_id = optarg;
			continue;
		}
		if (submit && (c == 'd' || c == 'a')) {
			*(c == 'd' ? &data : &as) = optarg;
			continue;
		}
		fputs(iso_usage, c == 'h' ? stdout : stderr);
		return c == 'h' ? 0 : 2;
	}
	if (optind != argc - 1) {
		fputs(iso_usage, stderr);
		return 2;
	}
	if (msg_id && (!msg_id[0] || strlen(msg_id) > 35))
		return ht_cli_fail("iso20022", "--msg-id: 1 to 35 printable ASCII characters");
	if (submit && !data)
		return ht_cli_fail("iso20022", "submit needs --data D");
	return check_file(argv[optind], &o, msg_id, data, as);
}

int ht_cmd_iso20022(int argc, char **argv)
{
	if (argc < 2) {
		fputs(iso_usage, stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(iso_usage, stdout);
		return 0;
	}
	if (!strcmp(argv[1], "check") || !strcmp(argv[1], "submit"))
		return cmd_check(argc - 1, argv + 1, !strcmp(argv[1], "submit"));
	fprintf(stderr, "huitong iso20022: unknown command '%s' (see huitong "
			"iso20022 --help)\n", argv[1]);
	return 2;
}

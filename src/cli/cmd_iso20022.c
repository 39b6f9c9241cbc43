/*
 * cmd_iso20022.c — `huitong iso20022 check|submit`: ISO 20022 pacs.008 in,
 * pacs.002 out (docs/iso20022.md).
 *
 * Owner: iso20022. `check` reads one pacs.008, validates it without
 * booking and prints on stdout the pacs.002 huitong would answer, each
 * transaction that would settle as ACSC; a one-line verdict goes to
 * stderr. Exit 0 when every transaction would settle, 1 when any is
 * rejected, 2 on bad usage or a file that cannot be read. `submit` needs
 * the switch (issue 5: routing and settlement), which is not built yet:
 * it says so and exits 2.
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
#include "huitong/iso20022.h"

static const char iso_usage[] =
	"usage: huitong iso20022 check [--max-amount MINOR] [--msg-id ID] FILE|-\n"
	"       huitong iso20022 submit --data D FILE   (not built yet)\n"
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
	"submit: book a pacs.008 through the switch and answer its pacs.002;\n"
	"needs routing and settlement (issue 5), not built yet.\n";

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

static int check_file(const char *path, const struct ht_iso_options *o,
		      const char *msg_id)
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

static int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{"max-amount", required_argument, NULL, 'm'},
		{"msg-id", required_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct ht_iso_options o = {0};
	const char *msg_id = NULL;
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
		fputs(iso_usage, c == 'h' ? stdout : stderr);
		return c == 'h' ? 0 : 2;
	}
	if (optind != argc - 1) {
		fputs(iso_usage, stderr);
		return 2;
	}
	if (msg_id && (!msg_id[0] || strlen(msg_id) > 35))
		return ht_cli_fail("iso20022", "--msg-id: 1 to 35 printable ASCII characters");
	return check_file(argv[optind], &o, msg_id);
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
	if (!strcmp(argv[1], "check"))
		return cmd_check(argc - 1, argv + 1);
	if (!strcmp(argv[1], "submit")) {
		if (ht_cli_wants_help(argc, argv)) {
			fputs(iso_usage, stdout);
			return 0;
		}
		return ht_cli_fail("iso20022", "submit: not built yet (issue 5: "
					       "routing and settlement); "
					       "`huitong iso20022 check FILE` "
					       "validates without booking");
	}
	fprintf(stderr, "huitong iso20022: unknown command '%s' (see huitong "
			"iso20022 --help)\n", argv[1]);
	return 2;
}

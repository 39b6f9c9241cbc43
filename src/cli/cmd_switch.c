/*
 * cmd_switch.c — `huitong switch`: the operator's hand on participants'
 * liquidity (liquidity.h, docs/switch.md): set a participant up in a
 * currency, set its net debit cap, fund and defund its position, suspend
 * and resume it, show its position.
 *
 * Owner: cli. Opens the store as the writer (as `ledger apply` does: not
 * beside a running `huitong serve`), applies one change, commits, prints
 * one JSON object. Exit 0 done, 1 refused by the ledger or the rules, 2
 * usage or failure.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "huitong/jsonl.h"
#include "huitong/ledger.h"
#include "huitong/liquidity.h"

#define CMD "switch"

static const char usage[] =
	"usage: huitong switch setup|cap|fund|defund|suspend|resume|position|bic\n"
	"             --data D --participant P [--currency 156] [--amount A]\n"
	"             [--id TRANSFER_ID] [--bic BIC]\n"
	"\n"
	"  setup     make P a member in the currency: its position and\n"
	"            settlement accounts (owned by P), cap 0\n"
	"  cap       set P's net debit cap to --amount (minor units)\n"
	"  fund      move --amount from P's settlement account to its position\n"
	"            (transfer --id, for idempotent retries)\n"
	"  defund    move --amount back (only P's own funds: never its cap)\n"
	"  suspend   refuse P's payments from the next one on; resume: again\n"
	"  position  P's net debit, reserved, cap and headroom\n"
	"  bic       --bic BIC (8 or 11) names P in ISO 20022 messages\n"
	"\n"
	"       huitong switch window report|close|settle --data D [--window N]\n"
	"             [--csv]\n"
	"\n"
	"  report    a settlement window's net positions (--window N; default\n"
	"            the open one), JSON or --csv\n"
	"  close     close the open window (the next opens at once); its report\n"
	"  settle    book closed window N's net positions against the members'\n"
	"            settlement accounts (again: nothing more is booked)\n"
	"\n"
	"docs/switch.md. Exit 0 done, 1 refused, 2 usage or failure.\n";

/* `huitong switch window report|close|settle` (liquidity.h windows). */
static int cmd_window(int argc, char **argv)
{
	const char *data = NULL, *win_s = NULL;
	bool csv = false;
	static const struct option lo[] = {
		{"data", required_argument, NULL, 'd'},
		{"window", required_argument, NULL, 'w'},
		{"csv", no_argument, NULL, 'c'},
		{NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'w': win_s = optarg; break;
		case 'c': csv = true; break;
		default: fputs(usage, stderr); return 2;
		}
	}
	const char *act = optind + 1 < argc ? argv[optind + 1] : NULL;
	if (!act || optind + 2 != argc ||
	    (strcmp(act, "report") && strcmp(act, "close") && strcmp(act, "settle"))) {
		ht_cli_fail(CMD, "window: report, close or settle");
		fputs(usage, stderr);
		return 2;
	}
	uint64_t win = 0;
	if (win_s && !ht_cli_u64(CMD, "--window", win_s, &win))
		return 2;
	if (!strcmp(act, "settle") && !win)
		return ht_cli_fail(CMD, "settle needs --window N (a closed one)");
	struct ht_hub *hub;
	struct ht_liq *l;
	if (ht_cli_open_switch(CMD, data, &hub, &l))
		return 2;
	struct ht_settle_report r = {0};
	size_t booked = 0;
	uint16_t result = HT_R_OK;
	enum ht_err e = HT_OK;
	struct ht_sth head;
	if (!strcmp(act, "close")) {
		e = ht_liq_window_close(l, &r);
	} else if (!strcmp(act, "settle")) {
		e = ht_liq_window_settle(l, win, &booked, &result);
		if (!e)
			e = ht_hub_commit(hub, &head);
		if (!e)
			e = ht_liq_window_report(l, win, &r);
	} else {
		e = ht_liq_window_report(l, win, &r);
	}
	int rc = 0;
	struct ht_buf b = {0};
	if (e == HT_ERR_NOT_FOUND)
		rc = ht_cli_fail(CMD, "no settlement window %llu",
				 (unsigned long long)win);
	else if (e == HT_ERR_INVALID) {
		ht_cli_fail(CMD, "window %llu is open: close it first",
			    (unsigned long long)win);
		rc = 1; /* refused, as the usage says */
	}
	else if (e)
		rc = ht_cli_fail(CMD, "%s%s%s", ht_strerror(e),
				 result ? ": the ledger said " : "",
				 result ? ht_result_name(result) : "");
	else if (csv)
		e = ht_settle_report_csv(&r, &b);
	else
		e = ht_settle_report_json(&r, &b);
	if (!rc && e)
		rc = ht_cli_fail(CMD, "%s", ht_strerror(e));
	if (!rc) {
		fwrite(b.data, 1, b.len, stdout);
		if (!csv)
			putchar('\n');
		if (!strcmp(act, "settle"))
			fprintf(stderr, "huitong switch: %zu booking(s) made\n",
				booked);
	}
	ht_buf_free(&b);
	ht_settle_report_free(&r);
	ht_liq_close(l);
	ht_hub_close(hub);
	if (fflush(stdout))
		rc = ht_cli_fail(CMD, "cannot write output");
	return rc;
}

int ht_cmd_switch(int argc, char **argv)
{
	int help = ht_cli_usage_or_help(argc, argv, usage);
	if (help >= 0)
		return help;
	if (!strcmp(argv[1], "window"))
		return cmd_window(argc, argv);
	const char *sub = argv[1], *data = NULL, *who = NULL, *amount_s = NULL,
		   *id_s = NULL, *cur_s = "156", *bic = NULL;
	static const struct option lo[] = {
		{"data", required_argument, NULL, 'd'},
		{"participant", required_argument, NULL, 'p'},
		{"currency", required_argument, NULL, 'c'},
		{"amount", required_argument, NULL, 'a'},
		{"id", required_argument, NULL, 'i'},
		{"bic", required_argument, NULL, 'b'},
		{NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'p': who = optarg; break;
		case 'c': cur_s = optarg; break;
		case 'a': amount_s = optarg; break;
		case 'i': id_s = optarg; break;
		case 'b': bic = optarg; break;
		default: fputs(usage, stderr); return 2;
		}
	}
	static const char *const subs[] = {"setup", "cap", "fund", "defund",
					   "suspend", "resume", "position", "bic"};
	bool known = false;
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
		known |= !strcmp(sub, subs[i]);
	if (!known) {
		ht_cli_fail(CMD, "unknown command '%s'", sub);
		fputs(usage, stderr);
		return 2;
	}
	uint64_t cur = 0, amount = 0;
	ht_u128 id = 0;
	if (!data || !who)
		return ht_cli_fail(CMD, "--data and --participant are required");
	if (!ht_cli_u64(CMD, "--currency", cur_s, &cur))
		return 2;
	if (cur < 1 || cur > 999)
		return ht_cli_fail(CMD, "--currency: ISO 4217 numeric, 1..999");
	bool needs_amount = !strcmp(sub, "cap") || !strcmp(sub, "fund") ||
			    !strcmp(sub, "defund");
	bool needs_id = !strcmp(sub, "fund") || !strcmp(sub, "defund");
	if (needs_amount && (!amount_s || !ht_cli_u64(CMD, "--amount", amount_s,
						      &amount)))
		return amount_s ? 2 : ht_cli_fail(CMD, "%s needs --amount", sub);
	if (needs_id && (!id_s || !ht_cli_u128(CMD, "--id", id_s, &id)))
		return id_s ? 2 : ht_cli_fail(CMD, "%s needs --id", sub);
	struct ht_hub *hub;
	struct ht_liq *l;
	if (ht_cli_open_switch(CMD, data, &hub, &l))
		return 2;
	enum ht_err e = HT_OK;
	int rc = 0;
	uint16_t result = HT_R_OK;
	uint32_t currency = (uint32_t)cur;
	if (!strcmp(sub, "setup"))
		e = ht_liq_setup(l, who, currency);
	else if (!strcmp(sub, "cap"))
		e = ht_liq_set_cap(l, who, currency, amount);
	else if (needs_id)
		e = ht_liq_fund(l, who, currency, id, amount, !strcmp(sub, "defund"),
				&result);
	else if (!strcmp(sub, "suspend") || !strcmp(sub, "resume"))
		e = ht_liq_set_suspended(l, who, !strcmp(sub, "suspend"));
	else if (!strcmp(sub, "bic") && !bic)
		e = HT_ERR_INVALID;
	else if (!strcmp(sub, "bic"))
		e = ht_liq_set_bic(l, bic, who);
	struct ht_sth head;
	if (!e)
		e = ht_hub_commit(hub, &head);
	struct ht_liq_position p;
	enum ht_err pe = e ? e : ht_liq_position(l, who, currency, &p);
	if (e == HT_ERR_NOT_FOUND || (!e && pe == HT_ERR_NOT_FOUND)) {
		printf("{\"result\":\"participant_not_set_up\"}\n");
		rc = 1;
	} else if (e == HT_ERR_INVALID) {
		rc = ht_cli_fail(CMD, "--participant: a participant id ([A-Za-z0-9._-]); --bic: 8 or 11 of [A-Z0-9];"
				 " --amount at most 2^63-1");
	} else if (e || pe) {
		rc = ht_cli_fail(CMD, "%s", ht_strerror(e ? e : pe));
	} else {
		printf("{\"result\":\"%s\",\"participant\":\"%s\",\"currency\":%u,"
		       "\"net_debit\":%lld,\"reserved\":%llu,\"cap\":%llu,"
		       "\"headroom\":%lld,\"suspended\":%s}\n",
		       ht_result_name(result), who, currency,
		       (long long)p.net_debit, (unsigned long long)p.reserved,
		       (unsigned long long)p.cap, (long long)p.headroom,
		       p.suspended ? "true" : "false");
		rc = result == HT_R_OK ? 0 : 1;
	}
	ht_liq_close(l);
	ht_hub_close(hub);
	if (fflush(stdout))
		rc = ht_cli_fail(CMD, "cannot write output");
	return rc;
}

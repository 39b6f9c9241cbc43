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
	"docs/switch.md. Exit 0 done, 1 refused, 2 usage or failure.\n";

int ht_cmd_switch(int argc, char **argv)
{
	int help = ht_cli_usage_or_help(argc, argv, usage);
	if (help >= 0)
		return help;
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

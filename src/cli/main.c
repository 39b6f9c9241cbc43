/*
 * main.c — the `huitong` binary: one program for the server and every
 * tool. Dispatches to the subcommands declared in commands.h.
 *
 * Owner: cli. Commands are declared weak here so the binary links while a
 * command's file is being written; a missing one says so plainly.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "huitong/common.h"

#pragma weak ht_cmd_init
#pragma weak ht_cmd_ledger
#pragma weak ht_cmd_account
#pragma weak ht_cmd_transfer
#pragma weak ht_cmd_history
#pragma weak ht_cmd_journal
#pragma weak ht_cmd_audit
#pragma weak ht_cmd_bench
#pragma weak ht_cmd_serve
#pragma weak ht_cmd_participant
#pragma weak ht_cmd_client
#pragma weak ht_cmd_sim
#pragma weak ht_cmd_risk
#pragma weak ht_cmd_token
#pragma weak ht_cmd_alias
#pragma weak ht_cmd_switch
#pragma weak ht_cmd_iso20022
#pragma weak ht_cmd_qr

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{"init", ht_cmd_init, "create a data store, its hub key and journal"},
	{"ledger", ht_cmd_ledger, "apply ledger JSONL requests (ledger apply)"},
	{"account", ht_cmd_account, "create or show an account"},
	{"transfer", ht_cmd_transfer, "create or show a transfer"},
	{"history", ht_cmd_history, "an account's transfers or balance history"},
	{"journal", ht_cmd_journal, "signed journal: head, prove, verify"},
	{"audit", ht_cmd_audit, "recompute Merkle roots and proofs from leaf data"},
	{"serve", ht_cmd_serve, "run the HTTPS API server (mutual TLS)"},
	{"participant", ht_cmd_participant, "add, rotate, revoke or list participants"},
	{"client", ht_cmd_client, "talk to a running hub (apply JSONL, receipts, ...)"},
	{"sim", ht_cmd_sim, "simulate payments with labelled fraud (interchange JSONL)"},
	{"risk", ht_cmd_risk, "risk rules and model: check, test, train, score, eval"},
	{"token", ht_cmd_token, "payment token vault: ranges, issue, detokenize, lifecycle"},
	{"alias", ht_cmd_alias, "alias directory: register, update, remove, lookup"},
	{"switch", ht_cmd_switch, "participants' liquidity: setup, cap, fund, suspend"},
	{"iso20022", ht_cmd_iso20022, "ISO 20022: check a pacs.008, answer its pacs.002"},
	{"qr", ht_cmd_qr, "EMVCo payment QR codes: parse, make (PNG, SVG)"},
	{"bench", ht_cmd_bench, "benchmarks (bench ledger, bench api)"},
};

static void usage(FILE *out)
{
	fprintf(out,
		"huitong %s — open payment interoperability hub\n\n"
		"usage: huitong <command> [options]   (huitong <command> --help)\n\n"
		"commands:\n",
		HT_VERSION);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %-10s %s%s\n", commands[i].name,
			commands[i].summary,
			commands[i].fn ? "" : " (not built yet)");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("huitong %s\n", HT_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		if (!commands[i].fn) {
			fprintf(stderr, "huitong: '%s' is not built yet\n",
				argv[1]);
			return 2;
		}
		return commands[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "huitong: unknown command '%s' (see huitong --help)\n",
		argv[1]);
	return 2;
}

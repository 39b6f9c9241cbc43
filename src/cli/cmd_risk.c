/*
 * cmd_risk.c — `huitong risk <check|test|train|score|eval>`: the risk
 * engine's tools (docs/risk.md).
 *
 * Owner: risk. Only the dispatch lives here; each subcommand is in the file
 * commands.h names. They are weak so the binary links while one is being
 * written, and a missing one says so plainly.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"

#pragma weak ht_cmd_risk_check
#pragma weak ht_cmd_risk_test
#pragma weak ht_cmd_risk_train
#pragma weak ht_cmd_risk_score
#pragma weak ht_cmd_risk_eval
#pragma weak ht_cmd_risk_blocklist

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} subs[] = {
	{"check", ht_cmd_risk_check, "validate a rule file (errors name line and column)"},
	{"test", ht_cmd_risk_test, "show what each rule would do to payments"},
	{"train", ht_cmd_risk_train, "train the gradient-boosted model (XGBoost)"},
	{"score", ht_cmd_risk_score, "score payments offline in time order"},
	{"eval", ht_cmd_risk_eval, "precision, recall and AUC-PR of scores against labels"},
	{"blocklist", ht_cmd_risk_blocklist, "shared block lists as keyed hashes (joint defence)"},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: huitong risk <command> [options]   "
		     "(huitong risk <command> --help)\n\ncommands:\n");
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
		fprintf(out, "  %-9s %s%s\n", subs[i].name, subs[i].summary,
			subs[i].fn ? "" : " (not built yet)");
}

int ht_cmd_risk(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
		if (strcmp(argv[1], subs[i].name))
			continue;
		if (!subs[i].fn) {
			fprintf(stderr, "huitong risk: '%s' is not built yet\n",
				argv[1]);
			return 2;
		}
		return subs[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "huitong risk: unknown command '%s' (see huitong risk "
			"--help)\n", argv[1]);
	return 2;
}

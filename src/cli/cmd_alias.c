/*
 * cmd_alias.c — `huitong alias`: the alias directory from the command line
 * (alias.h, docs/aliases.md).
 *
 * Owner: cli. Opens DATA/alias.db itself (SQLite WAL). One JSON object on
 * stdout; exit 0 done, 1 refused or not found, 2 usage or failure.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "huitong/alias.h"

#define CMD "alias"

static const char usage[] =
	"usage: huitong alias register|update --data D --kind K --value V\n"
	"             --participant P --account A\n"
	"       huitong alias remove --data D --kind K --value V --participant P\n"
	"       huitong alias lookup --data D --kind K --value V\n"
	"\n"
	"The alias directory (docs/aliases.md): K is mobile (E.164, +8613800138000),\n"
	"email, national_id (18 characters with its check character) or\n"
	"merchant_id; the alias points to (participant, account), account being\n"
	"the participant's reference (an account or payment token). Aliases are\n"
	"kept only as HMAC-SM3 keyed hashes: a lookup needs the exact value.\n"
	"Only the registering participant updates or removes. Exit 0 done, 1\n"
	"refused or not found, 2 usage or failure.\n";

static int refused(const char *what, enum ht_err err)
{
	printf("{\"result\":\"%s\"}\n", what);
	(void)err;
	return 1;
}

int ht_cmd_alias(int argc, char **argv)
{
	int help = ht_cli_usage_or_help(argc, argv, usage);
	if (help >= 0)
		return help;
	const char *sub = argv[1], *data = NULL, *kind_s = NULL, *value = NULL,
		   *who = NULL, *account = NULL;
	static const struct option lo[] = {
		{"data", required_argument, NULL, 'd'},
		{"kind", required_argument, NULL, 'k'},
		{"value", required_argument, NULL, 'v'},
		{"participant", required_argument, NULL, 'p'},
		{"account", required_argument, NULL, 'a'},
		{NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'k': kind_s = optarg; break;
		case 'v': value = optarg; break;
		case 'p': who = optarg; break;
		case 'a': account = optarg; break;
		default: fputs(usage, stderr); return 2;
		}
	}
	enum ht_alias_kind kind;
	if (!data || !kind_s || !value)
		return ht_cli_fail(CMD, "--data, --kind and --value are required");
	if (ht_alias_kind_parse(kind_s, strlen(kind_s), &kind))
		return ht_cli_fail(CMD, "--kind: mobile, email, national_id or"
				   " merchant_id");
	bool change = strcmp(sub, "lookup") != 0;
	bool known = !strcmp(sub, "register") || !strcmp(sub, "update") ||
		     !strcmp(sub, "remove") || !change;
	if (!known) {
		ht_cli_fail(CMD, "unknown command '%s'", sub);
		fputs(usage, stderr);
		return 2;
	}
	if (change && !who)
		return ht_cli_fail(CMD, "%s needs --participant", sub);
	if ((!strcmp(sub, "register") || !strcmp(sub, "update")) && !account)
		return ht_cli_fail(CMD, "%s needs --account", sub);
	char norm[HT_ALIAS_VALUE_MAX + 1];
	const char *why;
	if (ht_alias_normalise(kind, value, strlen(value), norm, &why))
		return ht_cli_fail(CMD, "--value: want %s", why);
	struct ht_alias_dir *d;
	char err[512];
	enum ht_err e = ht_alias_open(data, &d, err, sizeof err);
	if (e)
		return ht_cli_fail(CMD, "%s", err[0] ? err : ht_strerror(e));
	int rc = 0;
	size_t len = strlen(value);
	if (!strcmp(sub, "lookup")) {
		struct ht_alias_target t;
		e = ht_alias_lookup(d, kind, value, len, &t);
		if (e == HT_ERR_NOT_FOUND) {
			rc = refused("not_found", e);
		} else if (e) {
			rc = ht_cli_fail(CMD, "%s", ht_strerror(e));
		} else {
			printf("{\"result\":\"ok\",\"participant\":");
			ht_cli_json_string(stdout, t.participant);
			printf(",\"account\":");
			ht_cli_json_string(stdout, t.account);
			printf(",\"updated_ms\":%lld}\n", (long long)t.updated_ms);
		}
	} else {
		e = !strcmp(sub, "register")
			    ? ht_alias_register(d, kind, value, len, who, account,
						ht_now_wall_ms())
		    : !strcmp(sub, "update")
			    ? ht_alias_update(d, kind, value, len, who, account,
					      ht_now_wall_ms())
			    : ht_alias_remove(d, kind, value, len, who);
		if (e == HT_ERR_EXISTS)
			rc = refused("exists", e);
		else if (e == HT_ERR_NOT_FOUND)
			rc = refused("not_found", e);
		else if (e == HT_ERR_FORBIDDEN)
			rc = refused("forbidden", e);
		else if (e == HT_ERR_INVALID)
			rc = ht_cli_fail(CMD, "--participant and --account: printable"
					 " ASCII without spaces, at most 56 and 64"
					 " bytes");
		else if (e)
			rc = ht_cli_fail(CMD, "%s", ht_strerror(e));
		else
			printf("{\"result\":\"ok\"}\n");
	}
	ht_alias_close(d);
	if (fflush(stdout))
		rc = ht_cli_fail(CMD, "cannot write output");
	return rc;
}

/*
 * cmd_init.c — `huitong init`: create a data store, its hub signing key
 * and the journal's first signed head.
 *
 * Owner: cli.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"

static const char init_usage[] =
	"usage: huitong init --data DIR [--hash sm3|sha256] [--sign sm2|ed25519]\n"
	"\n"
	"Create a new store in DIR (created if absent): the SQLite database,\n"
	"the hub's journal signing key (DIR/hub-key.pem, mode 0600) and the\n"
	"signed head of the empty journal.\n"
	"  --hash   Merkle hash of the journal (default sm3)\n"
	"  --sign   signature on every tree head (default sm2, with the\n"
	"           distinguishing ID " HT_SM2_DEFAULT_ID ")\n";

int ht_cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},
		{"hash", required_argument, NULL, 'H'},
		{"sign", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0}};
	const char *data = NULL;
	struct ht_hub_init_options o = {.hash = HT_HASH_SM3, .sign = HT_SIGN_SM2};
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			data = optarg;
			break;
		case 'H':
			if (ht_hash_alg_parse(optarg, &o.hash))
				return ht_cli_fail("init", "--hash: sm3 or sha256");
			break;
		case 's':
			if (ht_sign_alg_parse(optarg, &o.sign) ||
			    o.sign == HT_SIGN_ECDSA_P256)
				return ht_cli_fail("init", "--sign: sm2 or ed25519");
			break;
		case 'h':
			fputs(init_usage, stdout);
			return 0;
		default:
			fputs(init_usage, stderr);
			return 2;
		}
	}
	if (!data || optind != argc) {
		fputs(init_usage, stderr);
		return 2;
	}
	enum ht_err err = ht_hub_init(data, &o);
	if (err == HT_ERR_EXISTS)
		return ht_cli_fail("init", "%s already holds a huitong store", data);
	if (err)
		return ht_cli_fail("init", "cannot initialise %s: %s", data,
				   ht_strerror(err));
	printf("initialised %s (hash %s, sign %s)\n", data,
	       ht_hash_alg_name(o.hash), ht_sign_alg_name(o.sign));
	return 0;
}

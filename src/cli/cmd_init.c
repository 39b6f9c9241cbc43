/*
 * cmd_init.c — `huitong init`: create a data store, its hub signing key
 * and the journal's first signed head, then the hub's PKI (CA and server
 * certificate) and its empty participant registry.
 *
 * Owner: cli. It never replaces an existing file: on a store that already
 * exists it only completes the PKI files that are missing (a store made
 * before the registry, or an init interrupted after the store was made).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "huitong/registry.h"

static const char init_usage[] =
	"usage: huitong init --data DIR [--hash sm3|sha256] [--sign sm2|ed25519]\n"
	"                    [--server-name NAME]...\n"
	"\n"
	"Create a new store in DIR (created if absent): the SQLite database,\n"
	"the hub's journal signing key (DIR/hub-key.pem, mode 0600) and the\n"
	"signed head of the empty journal; then the hub CA (DIR/ca.key 0600,\n"
	"DIR/ca.crt), the server's TLS certificate (DIR/server.key 0600,\n"
	"DIR/server.crt) and the empty participant registry (DIR/registry.db).\n"
	"On an existing store, only what is missing of the CA, the server\n"
	"certificate and the registry is made; nothing is replaced.\n"
	"  --hash         Merkle hash of the journal (default sm3)\n"
	"  --sign         signature on every tree head (default sm2, with the\n"
	"                 distinguishing ID " HT_SM2_DEFAULT_ID ")\n"
	"  --server-name  a DNS name or IP address the server is reached at,\n"
	"                 besides localhost, 127.0.0.1 and ::1 (repeatable, at\n"
	"                 most 32)\n";

struct init_args {
	const char *data;
	struct ht_hub_init_options o;
	const char *names[HT_PKI_SERVER_NAMES_MAX];
	size_t n_names;
};

/* -1: parsed; otherwise the exit code. */
static int init_parse(int argc, char **argv, struct init_args *a)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},
		{"hash", required_argument, NULL, 'H'},
		{"sign", required_argument, NULL, 's'},
		{"server-name", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			a->data = optarg;
			break;
		case 'H':
			if (ht_hash_alg_parse(optarg, &a->o.hash))
				return ht_cli_fail("init", "--hash: sm3 or sha256");
			break;
		case 's':
			if (ht_sign_alg_parse(optarg, &a->o.sign) ||
			    a->o.sign == HT_SIGN_ECDSA_P256)
				return ht_cli_fail("init", "--sign: sm2 or ed25519");
			break;
		case 'n':
			if (a->n_names == HT_PKI_SERVER_NAMES_MAX)
				return ht_cli_fail("init", "--server-name: at most"
							   " %d names",
						   HT_PKI_SERVER_NAMES_MAX);
			a->names[a->n_names++] = optarg;
			break;
		case 'h':
			fputs(init_usage, stdout);
			return 0;
		default:
			fputs(init_usage, stderr);
			return 2;
		}
	}
	if (!a->data || optind != argc) {
		fputs(init_usage, stderr);
		return 2;
	}
	size_t bad = 0;
	if (ht_registry_check_server_names(a->names, a->n_names, &bad))
		return ht_cli_fail("init", "--server-name '%.260s': not a DNS"
					   " name or an IP address",
				   a->names[bad]);
	return -1;
}

static int pki_failed(const char *data, enum ht_err err, bool store_new)
{
	ht_cli_fail("init", "cannot make the hub's PKI in %s: %s%s", data,
		    ht_strerror(err),
		    store_new ? " (the store itself is initialised; run"
				" `huitong init` on it again to finish)" :
				"");
	return 2;
}

int ht_cmd_init(int argc, char **argv)
{
	struct init_args a = {.o = {.hash = HT_HASH_SM3, .sign = HT_SIGN_SM2}};
	int rc = init_parse(argc, argv, &a);
	if (rc >= 0)
		return rc;
	enum ht_err err = ht_hub_init(a.data, &a.o);
	if (err == HT_ERR_EXISTS && !ht_registry_pki_complete(a.data)) {
		/* An older store, or an init stopped after the store: make
		 * only what is missing. */
		err = ht_registry_init_pki(a.data, a.names, a.n_names);
		if (err)
			return pki_failed(a.data, err, false);
		printf("completed %s: made the missing hub CA, server"
		       " certificate or registry\n", a.data);
		return 0;
	}
	if (err == HT_ERR_EXISTS)
		return ht_cli_fail("init", "%s already holds a huitong store"
				   "%s", a.data,
				   a.n_names ? " (to reissue the server"
					       " certificate with new names,"
					       " remove server.key and server.crt"
					       " and run init again)" : "");
	if (err)
		return ht_cli_fail("init", "cannot initialise %s: %s", a.data,
				   ht_strerror(err));
	err = ht_registry_init_pki(a.data, a.names, a.n_names);
	if (err)
		return pki_failed(a.data, err, true);
	printf("initialised %s (hash %s, sign %s)\n", a.data,
	       ht_hash_alg_name(a.o.hash), ht_sign_alg_name(a.o.sign));
	printf("hub CA %s/%s, server certificate %s/%s for localhost,"
	       " 127.0.0.1, ::1", a.data, HT_REGISTRY_FILE_CA_CERT, a.data,
	       HT_REGISTRY_FILE_SERVER_CERT);
	for (size_t i = 0; i < a.n_names; i++)
		printf(", %s", a.names[i]);
	putchar('\n');
	return 0;
}

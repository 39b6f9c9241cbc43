/*
 * cmd_risk_blocklist.c — `huitong risk blocklist`: the shared block list
 * of keyed hashes (blocklist.h, docs/risk.md "Joint defence").
 *
 * Owner: risk. A participant hashes its identifiers locally with the key
 * the hub handed it (`hash --key-file`), and only the hash travels; the
 * hub keeps the list in DATA/risk.db. Exit codes: 0 ok, 1 a negative
 * answer (`check`: not listed; `add`: already listed; `remove`: not
 * there), 2 usage or I/O errors.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_util.h"
#include "commands.h"
#include "huitong/blocklist.h"

#define CMD "risk blocklist"

static const char usage[] =
	"usage: huitong risk blocklist key --data D [--out FILE]\n"
	"       huitong risk blocklist hash --key-file FILE --kind K --value V\n"
	"       huitong risk blocklist add --data D --reporter P --kind K\n"
	"                                  (--value V | --hash HEX) [--reason R]\n"
	"       huitong risk blocklist remove --data D --kind K (--value V | --hash HEX)\n"
	"       huitong risk blocklist check --data D --kind K (--value V | --hash HEX)\n"
	"       huitong risk blocklist list --data D\n"
	"\n"
	"Joint defence: accounts, devices and phone numbers reported by one\n"
	"participant, shared as keyed hashes HMAC-SM3(hub key, kind, value) so\n"
	"no raw identifier leaves its owner. K is account, device or phone.\n"
	"\n"
	"  key     make the hub's key if missing (DATA/risk.key, 0600) and print\n"
	"          it, or write it to FILE (0600), to hand to participants\n"
	"  hash    what a participant runs locally: the hex hash of V\n"
	"  add     list an entry (the first report of a hash stands; exit 1 if\n"
	"          already listed); --value is hashed here with the hub's key\n"
	"  remove  take an entry off (exit 1 if not listed)\n"
	"  check   exit 0 and print the entry when listed, 1 when not\n"
	"  list    every entry, one JSON line each\n";

struct opts {
	const char *data, *out, *key_file, *kind, *value, *hash, *reporter,
		*reason;
};

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},
		{"out", required_argument, NULL, 'o'},
		{"key-file", required_argument, NULL, 'k'},
		{"kind", required_argument, NULL, 'K'},
		{"value", required_argument, NULL, 'v'},
		{"hash", required_argument, NULL, 'H'},
		{"reporter", required_argument, NULL, 'r'},
		{"reason", required_argument, NULL, 'R'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	memset(o, 0, sizeof *o);
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': o->data = optarg; break;
		case 'o': o->out = optarg; break;
		case 'k': o->key_file = optarg; break;
		case 'K': o->kind = optarg; break;
		case 'v': o->value = optarg; break;
		case 'H': o->hash = optarg; break;
		case 'r': o->reporter = optarg; break;
		case 'R': o->reason = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind != argc) {
		fputs(usage, stderr);
		return 2;
	}
	return -1;
}

static bool kind_of(const struct opts *o, enum ht_block_kind *k)
{
	if (!o->kind || ht_block_kind_parse(o->kind, strlen(o->kind), k)) {
		ht_cli_fail(CMD, "--kind: want account, device or phone");
		return false;
	}
	return true;
}

static bool hash_of(const struct opts *o, const uint8_t *key,
		    enum ht_block_kind k, uint8_t out[HT_BLOCK_HASH_BYTES])
{
	if (!o->value == !o->hash) {
		ht_cli_fail(CMD, "give --value or --hash, one of them");
		return false;
	}
	if (o->hash) {
		size_t n = 0;
		if (strlen(o->hash) != 2 * HT_BLOCK_HASH_BYTES ||
		    ht_hex_decode(o->hash, strlen(o->hash), out,
				  HT_BLOCK_HASH_BYTES, &n)) {
			ht_cli_fail(CMD, "--hash: want %d hex digits",
				    2 * HT_BLOCK_HASH_BYTES);
			return false;
		}
		return true;
	}
	enum ht_err err = ht_block_hash(key, k, o->value, strlen(o->value), out);
	if (err) {
		ht_cli_fail(CMD, "--value: %s (1..%d bytes)", ht_strerror(err),
			    HT_BLOCK_VALUE_BYTES_MAX);
		return false;
	}
	return true;
}

static void print_entry(const struct ht_block_entry *e)
{
	char hex[2 * HT_BLOCK_HASH_BYTES + 1];
	ht_hex_encode(e->hash, HT_BLOCK_HASH_BYTES, hex);
	printf("{\"kind\":\"%s\",\"hash\":\"%s\",\"reporter\":",
	       ht_block_kind_name(e->kind), hex);
	ht_cli_json_string(stdout, e->reporter);
	printf(",\"reason\":");
	ht_cli_json_string(stdout, e->reason);
	printf(",\"added_ns\":%llu}\n", (unsigned long long)e->added_ns);
}

static int each_print(void *ctx, const struct ht_block_entry *e)
{
	(void)ctx;
	print_entry(e);
	return 0;
}

static int cmd_key(const struct opts *o)
{
	uint8_t key[HT_BLOCK_KEY_BYTES];
	char hex[2 * HT_BLOCK_KEY_BYTES + 1];
	if (!o->data)
		return ht_cli_fail(CMD, "key needs --data");
	enum ht_err err = ht_block_key_load(o->data, true, key);
	if (err)
		return ht_cli_fail(CMD, "%s/risk.key: %s", o->data, ht_strerror(err));
	ht_hex_encode(key, sizeof key, hex);
	if (!o->out) {
		puts(hex);
		return 0;
	}
	FILE *f = fopen(o->out, "wx");
	if (!f)
		return ht_cli_fail(CMD, "%s: %s (not replaced)", o->out,
				   strerror(errno));
	chmod(o->out, 0600);
	bool ok = fprintf(f, "%s\n", hex) > 0;
	ok = fclose(f) == 0 && ok;
	return ok ? 0 : ht_cli_fail(CMD, "%s: write error", o->out);
}

static int cmd_hash(const struct opts *o)
{
	enum ht_block_kind k;
	uint8_t key[HT_BLOCK_KEY_BYTES], h[HT_BLOCK_HASH_BYTES];
	char hex[2 * HT_BLOCK_HASH_BYTES + 1];
	if (!o->key_file || !o->value || o->hash)
		return ht_cli_fail(CMD, "hash needs --key-file and --value");
	if (!kind_of(o, &k))
		return 2;
	/* the key file is what `key --out` wrote: one line of hex */
	FILE *f = fopen(o->key_file, "r");
	char line[2 * HT_BLOCK_KEY_BYTES + 8] = "";
	size_t n = 0;
	if (!f || !fgets(line, sizeof line, f)) {
		if (f)
			fclose(f);
		return ht_cli_fail(CMD, "%s: cannot read", o->key_file);
	}
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	if (strlen(line) != 2 * HT_BLOCK_KEY_BYTES ||
	    ht_hex_decode(line, strlen(line), key, sizeof key, &n))
		return ht_cli_fail(CMD, "%s: not a block-list key (%d hex digits)",
				   o->key_file, 2 * HT_BLOCK_KEY_BYTES);
	if (!hash_of(o, key, k, h))
		return 2;
	ht_hex_encode(h, sizeof h, hex);
	puts(hex);
	return 0;
}

int ht_cmd_risk_blocklist(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *sub = argv[1];
	struct opts o;
	int rc = parse(argc - 1, argv + 1, &o);
	if (rc >= 0)
		return rc;
	if (!strcmp(sub, "key"))
		return cmd_key(&o);
	if (!strcmp(sub, "hash"))
		return cmd_hash(&o);
	bool add = !strcmp(sub, "add"), rm = !strcmp(sub, "remove"),
	     check = !strcmp(sub, "check"), list = !strcmp(sub, "list");
	if (!add && !rm && !check && !list)
		return ht_cli_fail(CMD, "unknown command '%s' (see --help)", sub);
	if (!o.data)
		return ht_cli_fail(CMD, "%s needs --data", sub);
	enum ht_block_kind k = HT_BLOCK_ACCOUNT;
	uint8_t key[HT_BLOCK_KEY_BYTES], h[HT_BLOCK_HASH_BYTES];
	if (!list) {
		if (!kind_of(&o, &k))
			return 2;
		enum ht_err ke = o.value ? ht_block_key_load(o.data, add, key)
					 : HT_OK;
		if (ke == HT_ERR_NOT_FOUND)
			return ht_cli_fail(CMD, "%s/risk.key: no key yet (make one:"
					   " huitong risk blocklist key)", o.data);
		if (ke)
			return ht_cli_fail(CMD, "%s/risk.key: %s", o.data,
					   ht_strerror(ke));
		if (!hash_of(&o, key, k, h))
			return 2;
	}
	struct ht_blocklist *bl;
	enum ht_err err = ht_blocklist_open(o.data, &bl);
	if (err)
		return ht_cli_fail(CMD, "%s/risk.db: %s", o.data, ht_strerror(err));
	rc = 0;
	if (list) {
		ht_blocklist_each(bl, each_print, NULL);
	} else if (check) {
		struct ht_block_entry e;
		if (ht_blocklist_get(bl, k, h, &e) == HT_OK)
			print_entry(&e);
		else
			rc = 1;
	} else if (rm) {
		err = ht_blocklist_remove(bl, k, h);
		rc = err == HT_ERR_NOT_FOUND ? 1
		     : err ? ht_cli_fail(CMD, "%s", ht_strerror(err)) : 0;
		if (rc == 1)
			fprintf(stderr, "huitong " CMD ": not listed\n");
	} else {
		struct ht_block_entry e = {.kind = k,
					   .added_ns = ht_now_wall_ns()};
		memcpy(e.hash, h, sizeof h);
		if (!o.reporter || strlen(o.reporter) > HT_BLOCK_REPORTER_BYTES_MAX ||
		    (o.reason && strlen(o.reason) > HT_BLOCK_REASON_BYTES_MAX)) {
			rc = ht_cli_fail(CMD, "--reporter (1..%d bytes) is required;"
					 " --reason is at most %d bytes",
					 HT_BLOCK_REPORTER_BYTES_MAX,
					 HT_BLOCK_REASON_BYTES_MAX);
		} else {
			strcpy(e.reporter, o.reporter);
			strcpy(e.reason, o.reason ? o.reason : "");
			err = ht_blocklist_add(bl, &e);
			if (err == HT_ERR_EXISTS) {
				fprintf(stderr, "huitong " CMD ": already listed\n");
				rc = 1;
			} else if (err) {
				rc = ht_cli_fail(CMD, "%s", err == HT_ERR_INVALID
						 ? "reporter or reason: no control"
						   " characters, reporter not empty"
						 : ht_strerror(err));
			} else {
				print_entry(&e);
			}
		}
	}
	ht_blocklist_close(bl);
	return rc;
}

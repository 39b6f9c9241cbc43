/*
 * cmd_journal.c — `huitong journal head|prove|verify`.
 *
 * Owner: cli. Proof output uses the same JSON shapes as `huitong audit`,
 * so `huitong audit verify-inclusion` (or anyone's RFC 9162 verifier)
 * checks a receipt without access to the store.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "huitong/journal.h"
#include "huitong/merkle.h"

static const char journal_usage[] =
	"usage: huitong journal head   --data DIR [--seq N]\n"
	"       huitong journal prove  --data DIR (--transfer ID | --leaf I)"
	" [--size N]\n"
	"       huitong journal prove  --data DIR --old M [--new N]\n"
	"       huitong journal verify --data DIR\n"
	"\n"
	"head    prints the latest signed tree head (or head number N) as JSON.\n"
	"prove   prints an inclusion proof (a receipt) for a transfer or a leaf\n"
	"        against the tree of N leaves (default: the latest head), or a\n"
	"        consistency proof between tree sizes M and N; the output is\n"
	"        accepted by `huitong audit verify-inclusion|verify-consistency`.\n"
	"verify  rechecks every leaf, Merkle node, head signature and head link\n"
	"        and the stored balances; exit 0 intact, 1 naming the first bad\n"
	"        entry, 2 when the store cannot be read.\n";

static void print_hashes(uint8_t (*p)[HT_HASH_BYTES], size_t n)
{
	char hex[2 * HT_HASH_BYTES + 1];
	fputc('[', stdout);
	for (size_t i = 0; i < n; i++) {
		ht_hex_encode(p[i], HT_HASH_BYTES, hex);
		printf("%s\"%s\"", i ? "," : "", hex);
	}
	fputc(']', stdout);
}

static int cmd_head(struct ht_hub *hub, const char *seq_s)
{
	struct ht_sth h;
	uint64_t seq;
	enum ht_err err;
	if (seq_s) {
		if (!ht_cli_u64("journal head", "--seq", seq_s, &seq))
			return 2;
		err = ht_hub_head_at(hub, seq, &h);
	} else {
		err = ht_hub_head(hub, &h);
	}
	if (err)
		return ht_cli_fail("journal head", "%s", ht_strerror(err));
	char json[1024];
	ht_sth_json(&h, json, sizeof json);
	puts(json);
	return 0;
}

static int prove_inclusion(struct ht_hub *hub, uint64_t leaf, uint64_t size)
{
	uint8_t proof[HT_PROOF_HASHES_MAX][HT_HASH_BYTES];
	uint8_t data[HT_LEAF_BYTES_MAX], lh[HT_HASH_BYTES], root[HT_HASH_BYTES];
	size_t n, len;
	struct ht_sth h;
	struct ht_hasher *hasher = NULL;
	enum ht_err err = ht_hub_head(hub, &h);
	if (!err && !size)
		size = h.tree_size;
	if (!err && leaf >= size)
		err = HT_ERR_INVALID;
	if (!err)
		err = ht_hub_leaf(hub, leaf, data, &len);
	if (!err)
		err = ht_hasher_create(h.hash, &hasher);
	if (!err)
		err = ht_merkle_leaf_hash(hasher, data, len, lh);
	if (!err)
		err = ht_hub_prove_inclusion(hub, leaf, size, proof, &n);
	if (!err)
		err = ht_hub_root_at(hub, size, root);
	ht_hasher_destroy(hasher);
	if (err)
		return ht_cli_fail("journal prove", "leaf %llu in tree %llu: %s",
				   (unsigned long long)leaf,
				   (unsigned long long)size, ht_strerror(err));
	char hex[2 * HT_LEAF_BYTES_MAX + 1], rh[2 * HT_HASH_BYTES + 1];
	ht_hex_encode(lh, HT_HASH_BYTES, rh);
	printf("{\"hash\":\"%s\",\"tree_size\":%llu,\"leaf_index\":%llu,"
	       "\"leaf_hash\":\"%s\",", ht_hash_alg_name(h.hash),
	       (unsigned long long)size, (unsigned long long)leaf, rh);
	ht_hex_encode(data, len, hex);
	ht_hex_encode(root, HT_HASH_BYTES, rh);
	printf("\"leaf_data\":\"%s\",\"root\":\"%s\",\"proof\":", hex, rh);
	print_hashes(proof, n);
	if (size == h.tree_size) {
		char json[1024];
		ht_sth_json(&h, json, sizeof json);
		printf(",\"head\":%s", json);
	}
	puts("}");
	return 0;
}

static int prove_consistency(struct ht_hub *hub, uint64_t old_size,
			     uint64_t new_size)
{
	uint8_t proof[HT_PROOF_HASHES_MAX][HT_HASH_BYTES];
	uint8_t old_root[HT_HASH_BYTES], new_root[HT_HASH_BYTES];
	size_t n;
	struct ht_sth h;
	enum ht_err err = ht_hub_head(hub, &h);
	if (!err && !new_size)
		new_size = h.tree_size;
	if (!err)
		err = ht_hub_prove_consistency(hub, old_size, new_size, proof, &n);
	if (!err)
		err = ht_hub_root_at(hub, old_size, old_root);
	if (!err)
		err = ht_hub_root_at(hub, new_size, new_root);
	if (err)
		return ht_cli_fail("journal prove", "consistency %llu..%llu: %s",
				   (unsigned long long)old_size,
				   (unsigned long long)new_size,
				   ht_strerror(err));
	char a[2 * HT_HASH_BYTES + 1], b[2 * HT_HASH_BYTES + 1];
	ht_hex_encode(old_root, HT_HASH_BYTES, a);
	ht_hex_encode(new_root, HT_HASH_BYTES, b);
	printf("{\"hash\":\"%s\",\"old_size\":%llu,\"new_size\":%llu,"
	       "\"old_root\":\"%s\",\"new_root\":\"%s\",\"proof\":",
	       ht_hash_alg_name(h.hash), (unsigned long long)old_size,
	       (unsigned long long)new_size, a, b);
	print_hashes(proof, n);
	puts("}");
	return 0;
}

static void verify_progress(void *ctx, uint64_t done, uint64_t total)
{
	(void)ctx;
	fprintf(stderr, "\rverifying: %llu / %llu events",
		(unsigned long long)done, (unsigned long long)total);
}

static int cmd_verify(const char *data)
{
	char problem[512];
	enum ht_err err = ht_hub_verify(data, problem, sizeof problem,
					verify_progress, NULL);
	if (err == HT_ERR_CORRUPT) {
		fprintf(stderr, "\n");
		printf("FAILED: %s\n", problem);
		return 1;
	}
	if (err)
		return ht_cli_fail("journal verify", "%s",
				   problem[0] ? problem : ht_strerror(err));
	struct ht_hub *hub;
	if (ht_cli_open("journal verify", data, true, &hub))
		return 2;
	struct ht_sth h;
	err = ht_hub_head(hub, &h);
	ht_hub_close(hub);
	if (err)
		return ht_cli_fail("journal verify", "%s", ht_strerror(err));
	printf("ok: %llu events and %llu signed heads verified (%s, %s)\n",
	       (unsigned long long)h.tree_size, (unsigned long long)h.seq + 1,
	       ht_hash_alg_name(h.hash), ht_sign_alg_name(h.sign));
	return 0;
}

struct prove_args {
	const char *transfer, *leaf, *size, *old_s, *new_s;
};

static int cmd_prove(struct ht_hub *hub, const struct prove_args *a)
{
	uint64_t size = 0, leaf = 0, old_size = 0, new_size = 0;
	if (a->size && !ht_cli_u64("journal prove", "--size", a->size, &size))
		return 2;
	if (a->old_s) {
		if (!ht_cli_u64("journal prove", "--old", a->old_s, &old_size) ||
		    (a->new_s &&
		     !ht_cli_u64("journal prove", "--new", a->new_s, &new_size)))
			return 2;
		return prove_consistency(hub, old_size, new_size);
	}
	if (a->transfer) {
		ht_u128 id;
		if (!ht_cli_u128("journal prove", "--transfer", a->transfer, &id))
			return 2;
		enum ht_err err = ht_hub_transfer_leaf(hub, id, &leaf);
		if (err)
			return ht_cli_fail("journal prove", "transfer %s: %s",
					   a->transfer, ht_strerror(err));
	} else if (!a->leaf ||
		   !ht_cli_u64("journal prove", "--leaf", a->leaf, &leaf)) {
		fputs(journal_usage, stderr);
		return 2;
	}
	return prove_inclusion(hub, leaf, size);
}

int ht_cmd_journal(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},
		{"seq", required_argument, NULL, 'q'},
		{"transfer", required_argument, NULL, 't'},
		{"leaf", required_argument, NULL, 'l'},
		{"size", required_argument, NULL, 'n'},
		{"old", required_argument, NULL, 'o'},
		{"new", required_argument, NULL, 'N'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0}};
	if (ht_cli_wants_help(argc, argv)) {
		fputs(journal_usage, stdout);
		return 0;
	}
	if (argc < 2) {
		fputs(journal_usage, stderr);
		return 2;
	}
	const char *sub = argv[1], *data = NULL, *seq = NULL;
	struct prove_args pa = {0};
	int c;
	while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'q': seq = optarg; break;
		case 't': pa.transfer = optarg; break;
		case 'l': pa.leaf = optarg; break;
		case 'n': pa.size = optarg; break;
		case 'o': pa.old_s = optarg; break;
		case 'N': pa.new_s = optarg; break;
		default:
			fputs(journal_usage, stderr);
			return 2;
		}
	}
	if (optind != argc - 1 || !data) {
		fputs(journal_usage, stderr);
		return 2;
	}
	if (!strcmp(sub, "verify"))
		return cmd_verify(data);
	if (strcmp(sub, "head") && strcmp(sub, "prove")) {
		fputs(journal_usage, stderr);
		return 2;
	}
	struct ht_hub *hub;
	if (ht_cli_open("journal", data, true, &hub))
		return 2;
	int rc = !strcmp(sub, "head") ? cmd_head(hub, seq) : cmd_prove(hub, &pa);
	ht_hub_close(hub);
	return rc;
}

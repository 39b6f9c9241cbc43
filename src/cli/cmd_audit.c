/*
 * cmd_audit.c — `huitong audit`: recompute RFC 9162 Merkle roots and
 * proofs from leaf data, and verify proofs, with nothing but this tool.
 *
 * Owner: cli (written with the merkle module). It reads outside input
 * (hex lines, JSON, flags) and so bounds all of it: line length, leaf
 * count for proofs, JSON size, proof length. It owns no state beyond one
 * invocation and must never touch a data directory: anyone can run it on
 * a journal's exported leaves to check the hub's own answers. The one
 * exception is `access-log`, which reads (never writes) DATA/access.db
 * through accesslog.h to verify the access log's hash chain.
 *
 * Exit codes: 0 ok / verified, 1 a proof that does not verify or an
 * access log that is not intact, 2 usage error or malformed input.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "commands.h"
#include "huitong/accesslog.h"
#include "huitong/merkle.h"

/* Hex characters of one leaf line: 1 MiB of leaf data. Journal leaves are
 * at most HT_LEAF_BYTES_MAX; the tool also serves other RFC 9162 logs. */
#define AUDIT_LINE_CHARS_MAX (2u * 1024 * 1024)

/* Leaves read by `inclusion` and `consistency`, which keep every node
 * hash (2n - popcount(n) of them, 64 bytes per leaf): 2^25 leaves is
 * 2 GiB. `root` streams through a frontier and has no such limit. */
#define AUDIT_LEAVES_MAX ((uint64_t)1 << 25)

/* JSON given to verify-*: a maximal proof is ~8.7 KB of hex. */
#define AUDIT_JSON_BYTES_MAX (64u * 1024)

_Static_assert(AUDIT_LINE_CHARS_MAX >= 2 * HT_LEAF_BYTES_MAX,
	       "every journal leaf fits one audit line");
_Static_assert(AUDIT_JSON_BYTES_MAX > HT_PROOF_HASHES_MAX * 70,
	       "a maximal proof fits the JSON limit");

static void usage(FILE *out)
{
	fputs("usage: huitong audit <action> [options] [FILE|-]\n"
	      "\n"
	      "Recompute and verify RFC 9162 Merkle trees (leaf = "
	      "H(0x00||data),\n"
	      "node = H(0x01||left||right), empty tree = H(\"\")).\n"
	      "\n"
	      "actions over leaf data (FILE or stdin: one leaf per line as "
	      "hex; an\n"
	      "empty line is an empty leaf; a final newline adds no leaf):\n"
	      "  root                           prints {\"tree_size\",\"root\"}\n"
	      "  inclusion --index I [--size N] prints {\"tree_size\","
	      "\"leaf_index\",\n"
	      "                                 \"leaf_hash\",\"root\","
	      "\"proof\"}; N defaults\n"
	      "                                 to the number of leaves\n"
	      "  consistency --old M [--new N]  prints {\"old_size\","
	      "\"new_size\",\n"
	      "                                 \"old_root\",\"new_root\","
	      "\"proof\"}\n"
	      "\n"
	      "verification of that JSON (from FILE or stdin) or of the same "
	      "values\n"
	      "given as flags; prints \"ok\" and exits 0, or \"invalid: "
	      "<why>\" and exits 1:\n"
	      "  verify-inclusion   [--index I --size N --leaf-hash H "
	      "--root R\n"
	      "                      --proof H1,H2,...]\n"
	      "  verify-consistency [--old M --new N --old-root R1 "
	      "--new-root R2\n"
	      "                      --proof H1,H2,...]\n"
	      "  (--proof may be left out for an empty proof)\n"
	      "\n"
	      "the access log of a data directory (reads DATA/access.db, "
	      "never writes it):\n"
	      "  access-log --data D [--tail N] [--json]\n"
	      "                      verifies the whole hash chain; prints "
	      "\"access log\n"
	      "                      intact: N entries\" and exits 0, or "
	      "\"access log not\n"
	      "                      intact: <problem>\" and exits 1; --tail "
	      "N also prints\n"
	      "                      the last N entries, one JSON object per "
	      "line with\n"
	      "                      --json (the intact line then goes to "
	      "stderr)\n"
	      "\n"
	      "options:\n"
	      "  --hash sm3|sha256   hash function (default sm3)\n"
	      "  --help              this text\n"
	      "\n",
	      out);
	fprintf(out,
		"limits: a leaf line up to %u hex characters; inclusion and "
		"consistency\n"
		"read up to %" PRIu64 " leaves (root has no limit); verify "
		"input up to %u\n"
		"bytes; proofs up to %d hashes.\n"
		"exit: 0 ok, 1 the proof or the access log does not verify, 2 "
		"usage error or\nbad input.\n",
		AUDIT_LINE_CHARS_MAX, AUDIT_LEAVES_MAX, AUDIT_JSON_BYTES_MAX,
		HT_PROOF_HASHES_MAX);
}

/* ---- options -------------------------------------------------------- */

enum opt_id {
	OPT_HASH, OPT_INDEX, OPT_SIZE, OPT_OLD, OPT_NEW, OPT_LEAF_HASH,
	OPT_ROOT, OPT_OLD_ROOT, OPT_NEW_ROOT, OPT_PROOF, OPT_DATA, OPT_TAIL,
	OPT__COUNT
};

static const char *const opt_names[OPT__COUNT] = {
	"hash", "index", "size", "old", "new", "leaf-hash",
	"root", "old-root", "new-root", "proof", "data", "tail",
};

enum action { ACT_ROOT, ACT_INCLUSION, ACT_CONSISTENCY, ACT_VERIFY_INCL,
	      ACT_VERIFY_CONS, ACT_ACCESS_LOG };

static const struct {
	const char *name;
	unsigned opts; /* bit per enum opt_id accepted */
} actions[] = {
	[ACT_ROOT] = {"root", 1u << OPT_HASH},
	[ACT_INCLUSION] = {"inclusion",
			   1u << OPT_HASH | 1u << OPT_INDEX | 1u << OPT_SIZE},
	[ACT_CONSISTENCY] = {"consistency",
			     1u << OPT_HASH | 1u << OPT_OLD | 1u << OPT_NEW},
	[ACT_VERIFY_INCL] = {"verify-inclusion",
			     1u << OPT_HASH | 1u << OPT_INDEX |
				     1u << OPT_SIZE | 1u << OPT_LEAF_HASH |
				     1u << OPT_ROOT | 1u << OPT_PROOF},
	[ACT_VERIFY_CONS] = {"verify-consistency",
			     1u << OPT_HASH | 1u << OPT_OLD | 1u << OPT_NEW |
				     1u << OPT_OLD_ROOT |
				     1u << OPT_NEW_ROOT | 1u << OPT_PROOF},
	[ACT_ACCESS_LOG] = {"access-log", 1u << OPT_DATA | 1u << OPT_TAIL},
};

struct opts {
	enum action action;
	const char *val[OPT__COUNT]; /* NULL when not given */
	const char *file;            /* NULL or "-": stdin */
	bool help;
	bool json;                   /* access-log --json */
	enum ht_hash_alg alg;
};

static int usage_error(const char *fmt, const char *arg)
{
	fputs("huitong audit: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs(" (see huitong audit --help)\n", stderr);
	return 2;
}

/* One "--name value" or "--name=value" at argv[*i]. */
static int parse_option(struct opts *o, int argc, char **argv, int *i)
{
	const char *arg = argv[*i] + 2, *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
	for (int k = 0; k < OPT__COUNT; k++) {
		if (strlen(opt_names[k]) != len ||
		    strncmp(opt_names[k], arg, len))
			continue;
		if (!(actions[o->action].opts & 1u << k))
			return usage_error("%s does not take this option",
					   argv[*i]);
		if (o->val[k])
			return usage_error("%s given twice", argv[*i]);
		if (eq) {
			o->val[k] = eq + 1;
		} else {
			if (*i + 1 >= argc)
				return usage_error("%s needs a value",
						   argv[*i]);
			o->val[k] = argv[++*i];
		}
		return 0;
	}
	return usage_error("unknown option %s", argv[*i]);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof *o);
	size_t k;
	for (k = 0; k < sizeof actions / sizeof actions[0]; k++)
		if (!strcmp(argv[1], actions[k].name))
			break;
	if (k == sizeof actions / sizeof actions[0])
		return usage_error("unknown action '%s'", argv[1]);
	o->action = (enum action)k;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			o->help = true;
			return 0;
		}
		if (o->action == ACT_ACCESS_LOG && !strcmp(a, "--json")) {
			if (o->json)
				return usage_error("%s given twice", a);
			o->json = true;
		} else if (!strncmp(a, "--", 2) && a[2]) {
			int rc = parse_option(o, argc, argv, &i);
			if (rc)
				return rc;
		} else if (a[0] == '-' && a[1]) {
			return usage_error("unknown option %s", a);
		} else if (o->action == ACT_ACCESS_LOG) {
			return usage_error("access-log reads --data, not a "
					   "file (%s)", a);
		} else if (o->file) {
			return usage_error("more than one input file (%s)", a);
		} else {
			o->file = a;
		}
	}
	const char *hash = o->val[OPT_HASH] ? o->val[OPT_HASH] : "sm3";
	if (ht_hash_alg_parse(hash, &o->alg))
		return usage_error("unknown hash '%s' (sm3 or sha256)", hash);
	return 0;
}

/* A decimal u64 option or field; name is for the message. */
static int parse_u64(const char *name, const char *s, uint64_t *out)
{
	if (ht_u64_parse(s, strlen(s), out)) {
		fprintf(stderr,
			"huitong audit: %s: '%s' is not a decimal number "
			"below 2^64\n",
			name, s);
		return 2;
	}
	return 0;
}

static int parse_hash(const char *name, const char *s,
		      uint8_t out[HT_HASH_BYTES])
{
	size_t n;
	if (strlen(s) != 2 * HT_HASH_BYTES ||
	    ht_hex_decode(s, strlen(s), out, HT_HASH_BYTES, &n)) {
		fprintf(stderr,
			"huitong audit: %s: expected %d hex characters\n",
			name, 2 * HT_HASH_BYTES);
		return 2;
	}
	return 0;
}

/* ---- input ---------------------------------------------------------- */

static FILE *open_input(const char *file)
{
	if (!file || !strcmp(file, "-"))
		return stdin;
	FILE *f = fopen(file, "rb");
	if (!f)
		fprintf(stderr, "huitong audit: %s: %s\n", file,
			strerror(errno));
	return f;
}

static void close_input(FILE *f)
{
	if (f && f != stdin)
		fclose(f);
}

/*
 * Every node hash in completion order (ht_merkle_node_seq), as the
 * journal keeps them, so proofs read complete subtrees in O(1) each.
 */
struct node_store {
	uint8_t (*nodes)[HT_HASH_BYTES];
	uint64_t count, cap;
};

static enum ht_err store_push(struct node_store *s,
			      uint8_t nodes[][HT_HASH_BYTES], unsigned n)
{
	if (s->count + n > s->cap) {
		uint64_t cap = s->cap ? s->cap * 2 : 1024;
		void *p = realloc(s->nodes, cap * HT_HASH_BYTES);
		if (!p)
			return HT_ERR_NOMEM;
		s->nodes = p;
		s->cap = cap;
	}
	memcpy(s->nodes[s->count], nodes, (size_t)n * HT_HASH_BYTES);
	s->count += n;
	return HT_OK;
}

static enum ht_err store_node(void *ctx, unsigned level, uint64_t index,
			      uint8_t out[HT_HASH_BYTES])
{
	const struct node_store *s = ctx;
	uint64_t seq = ht_merkle_node_seq(level, index);
	HT_ASSERT(seq < s->count); /* sizes were checked against leaves */
	memcpy(out, s->nodes[seq], HT_HASH_BYTES);
	return HT_OK;
}

/* The leaves being read: hashed into a frontier, and their nodes kept in
 * store when store is not NULL. */
struct leaf_sink {
	struct ht_hasher *h;
	struct ht_merkle_frontier f;
	struct node_store *store;
	uint8_t *data; /* AUDIT_LINE_CHARS_MAX / 2 */
};

static int sink_line(struct leaf_sink *k, const char *line, size_t len,
		     uint64_t line_no)
{
	uint8_t leaf[HT_HASH_BYTES], nodes[65][HT_HASH_BYTES];
	unsigned n;
	size_t data_len;
	if (len && line[len - 1] == '\r') /* tolerate CRLF files */
		len--;
	enum ht_err err = ht_hex_decode(line, len, k->data,
					AUDIT_LINE_CHARS_MAX / 2, &data_len);
	if (err) {
		fprintf(stderr, "huitong audit: line %" PRIu64 ": %s\n",
			line_no,
			len % 2 ? "odd number of hex digits" : "not hex");
		return 2;
	}
	if (k->store && k->f.size >= AUDIT_LEAVES_MAX) {
		fprintf(stderr,
			"huitong audit: more than %" PRIu64
			" leaves: too many for a proof\n",
			AUDIT_LEAVES_MAX);
		return 2;
	}
	err = ht_merkle_leaf_hash(k->h, k->data, data_len, leaf);
	if (!err)
		err = ht_merkle_frontier_append(&k->f, k->h, leaf, nodes, &n);
	if (!err && k->store)
		err = store_push(k->store, nodes, n);
	if (err) {
		fprintf(stderr, "huitong audit: line %" PRIu64 ": %s\n",
			line_no, ht_strerror(err));
		return 2;
	}
	return 0;
}

/* Read hex leaf lines from f; every line at most AUDIT_LINE_CHARS_MAX. */
static int read_leaves(FILE *f, struct leaf_sink *k)
{
	char *line = malloc(AUDIT_LINE_CHARS_MAX + 2);
	size_t len = 0;
	uint64_t line_no = 1;
	int rc = 0, c;
	k->data = malloc(AUDIT_LINE_CHARS_MAX / 2);
	if (!line || !k->data) {
		fputs("huitong audit: out of memory\n", stderr);
		rc = 2;
		goto done;
	}
	while ((c = getc_unlocked(f)) != EOF) {
		if (c == '\n') {
			rc = sink_line(k, line, len, line_no++);
			if (rc)
				goto done;
			len = 0;
		} else if (len == AUDIT_LINE_CHARS_MAX + 1) {
			fprintf(stderr,
				"huitong audit: line %" PRIu64
				": longer than %u hex characters\n",
				line_no, AUDIT_LINE_CHARS_MAX);
			rc = 2;
			goto done;
		} else {
			line[len++] = (char)c;
		}
	}
	if (ferror(f)) {
		fprintf(stderr, "huitong audit: read error: %s\n",
			strerror(errno));
		rc = 2;
	} else if (len > 0) { /* a last line without its newline */
		rc = sink_line(k, line, len, line_no);
	}
done:
	free(line);
	free(k->data);
	k->data = NULL;
	return rc;
}

/* Open the input, read every leaf; nodes kept when store != NULL. */
static int load_tree(const struct opts *o, struct ht_hasher *h,
		     struct node_store *store, struct leaf_sink *k)
{
	memset(k, 0, sizeof *k);
	k->h = h;
	k->store = store;
	ht_merkle_frontier_init(&k->f, 0);
	FILE *f = open_input(o->file);
	if (!f)
		return 2;
	int rc = read_leaves(f, k);
	close_input(f);
	return rc;
}

/* ---- output --------------------------------------------------------- */

static void print_hash(const char *key, const uint8_t hash[HT_HASH_BYTES])
{
	char hex[2 * HT_HASH_BYTES + 1];
	ht_hex_encode(hash, HT_HASH_BYTES, hex);
	printf("\"%s\":\"%s\"", key, hex);
}

static void print_proof(uint8_t proof[][HT_HASH_BYTES], size_t n)
{
	char hex[2 * HT_HASH_BYTES + 1];
	fputs("\"proof\":[", stdout);
	for (size_t i = 0; i < n; i++) {
		ht_hex_encode(proof[i], HT_HASH_BYTES, hex);
		printf("%s\"%s\"", i ? "," : "", hex);
	}
	fputs("]}\n", stdout);
}

static int finish_output(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "huitong audit: write error: %s\n",
			strerror(errno));
		return 2;
	}
	return 0;
}

static int crypto_failed(enum ht_err err)
{
	fprintf(stderr, "huitong audit: %s\n", ht_strerror(err));
	return 2;
}

/* ---- root, inclusion, consistency ----------------------------------- */

static int do_root(const struct opts *o, struct ht_hasher *h)
{
	struct leaf_sink k;
	uint8_t root[HT_HASH_BYTES];
	int rc = load_tree(o, h, NULL, &k);
	if (rc)
		return rc;
	enum ht_err err = ht_merkle_frontier_root(&k.f, h, root);
	if (err)
		return crypto_failed(err);
	printf("{\"tree_size\":%" PRIu64 ",", k.f.size);
	print_hash("root", root);
	fputs("}\n", stdout);
	return finish_output();
}

/* Parse a size option before reading (*given false when absent). */
static int size_opt(const char *name, const char *val, bool *given,
		    uint64_t *out)
{
	*given = val != NULL;
	return val ? parse_u64(name, val, out) : 0;
}

/* The size given, or the leaf count; checked against the leaves. */
static int tree_size_opt(const char *name, bool given, uint64_t leaves,
			 uint64_t *out)
{
	if (!given) {
		*out = leaves;
		return 0;
	}
	if (*out > leaves) {
		fprintf(stderr,
			"huitong audit: %s %" PRIu64 " exceeds the %" PRIu64
			" leaves given\n",
			name, *out, leaves);
		return 2;
	}
	return 0;
}

static int emit_inclusion(struct ht_hasher *h, struct node_store *s,
			  uint64_t index, uint64_t size)
{
	uint8_t proof[HT_PROOF_HASHES_MAX][HT_HASH_BYTES];
	uint8_t leaf[HT_HASH_BYTES], root[HT_HASH_BYTES];
	size_t n;
	enum ht_err err = ht_merkle_inclusion_proof(h, index, size, store_node,
						    s, proof, &n);
	if (!err)
		err = ht_merkle_root(h, size, store_node, s, root);
	if (!err)
		err = store_node(s, 0, index, leaf);
	if (err)
		return crypto_failed(err);
	printf("{\"tree_size\":%" PRIu64 ",\"leaf_index\":%" PRIu64 ",", size,
	       index);
	print_hash("leaf_hash", leaf);
	putchar(',');
	print_hash("root", root);
	putchar(',');
	print_proof(proof, n);
	return finish_output();
}

static int do_inclusion(const struct opts *o, struct ht_hasher *h)
{
	struct node_store s = {0};
	struct leaf_sink k;
	uint64_t index, size;
	bool given;
	if (!o->val[OPT_INDEX])
		return usage_error("%s needs --index", "inclusion");
	if (parse_u64("--index", o->val[OPT_INDEX], &index) ||
	    size_opt("--size", o->val[OPT_SIZE], &given, &size))
		return 2;
	int rc = load_tree(o, h, &s, &k);
	if (!rc)
		rc = tree_size_opt("--size", given, k.f.size, &size);
	if (!rc && index >= size) {
		fprintf(stderr,
			"huitong audit: --index %" PRIu64
			" is not below the tree size %" PRIu64 "\n",
			index, size);
		rc = 2;
	}
	if (!rc)
		rc = emit_inclusion(h, &s, index, size);
	free(s.nodes);
	return rc;
}

static int emit_consistency(struct ht_hasher *h, struct node_store *s,
			    uint64_t old_size, uint64_t new_size)
{
	uint8_t proof[HT_PROOF_HASHES_MAX][HT_HASH_BYTES];
	uint8_t old_root[HT_HASH_BYTES], new_root[HT_HASH_BYTES];
	size_t n;
	enum ht_err err = ht_merkle_consistency_proof(h, old_size, new_size,
						      store_node, s, proof, &n);
	if (!err)
		err = ht_merkle_root(h, old_size, store_node, s, old_root);
	if (!err)
		err = ht_merkle_root(h, new_size, store_node, s, new_root);
	if (err)
		return crypto_failed(err);
	printf("{\"old_size\":%" PRIu64 ",\"new_size\":%" PRIu64 ",", old_size,
	       new_size);
	print_hash("old_root", old_root);
	putchar(',');
	print_hash("new_root", new_root);
	putchar(',');
	print_proof(proof, n);
	return finish_output();
}

static int do_consistency(const struct opts *o, struct ht_hasher *h)
{
	struct node_store s = {0};
	struct leaf_sink k;
	uint64_t old_size, new_size;
	bool given;
	if (!o->val[OPT_OLD])
		return usage_error("%s needs --old", "consistency");
	if (parse_u64("--old", o->val[OPT_OLD], &old_size) ||
	    size_opt("--new", o->val[OPT_NEW], &given, &new_size))
		return 2;
	int rc = load_tree(o, h, &s, &k);
	if (!rc)
		rc = tree_size_opt("--new", given, k.f.size, &new_size);
	if (!rc && old_size > new_size) {
		fprintf(stderr,
			"huitong audit: --old %" PRIu64
			" exceeds the new size %" PRIu64 "\n",
			old_size, new_size);
		rc = 2;
	}
	if (!rc)
		rc = emit_consistency(h, &s, old_size, new_size);
	free(s.nodes);
	return rc;
}

/* ---- verification input --------------------------------------------- */

/* A claim to verify, from JSON or flags. */
struct claim {
	uint64_t a, b; /* index, size  or  old size, new size */
	uint8_t h1[HT_HASH_BYTES], h2[HT_HASH_BYTES]; /* leaf hash, root or
							 old root, new root */
	uint8_t proof[HT_PROOF_HASHES_MAX][HT_HASH_BYTES];
	size_t count;
};

/* "h1,h2,..." (empty: no hashes). */
static int parse_proof_list(const char *s, struct claim *c)
{
	c->count = 0;
	if (!*s)
		return 0;
	for (;;) {
		const char *end = strchr(s, ',');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		char item[2 * HT_HASH_BYTES + 1];
		if (c->count == HT_PROOF_HASHES_MAX) {
			fprintf(stderr,
				"huitong audit: --proof: more than %d "
				"hashes\n",
				HT_PROOF_HASHES_MAX);
			return 2;
		}
		if (len != 2 * HT_HASH_BYTES) {
			fprintf(stderr,
				"huitong audit: --proof: hash %zu is not %d "
				"hex characters\n",
				c->count + 1, 2 * HT_HASH_BYTES);
			return 2;
		}
		memcpy(item, s, len);
		item[len] = '\0';
		if (parse_hash("--proof item", item, c->proof[c->count++]))
			return 2;
		if (!end)
			return 0;
		s = end + 1;
	}
}

/* The four values of a claim from flags: names in o->val order. */
static int claim_from_flags(const struct opts *o, const enum opt_id ids[4],
			    struct claim *c)
{
	for (int i = 0; i < 4; i++)
		if (!o->val[ids[i]])
			return usage_error("missing --%s", opt_names[ids[i]]);
	if (o->file)
		return usage_error("give the claim as flags or as JSON "
				   "input, not both (%s)",
				   o->file);
	if (parse_u64(opt_names[ids[0]], o->val[ids[0]], &c->a) ||
	    parse_u64(opt_names[ids[1]], o->val[ids[1]], &c->b) ||
	    parse_hash(opt_names[ids[2]], o->val[ids[2]], c->h1) ||
	    parse_hash(opt_names[ids[3]], o->val[ids[3]], c->h2))
		return 2;
	return parse_proof_list(o->val[OPT_PROOF] ? o->val[OPT_PROOF] : "",
				c);
}

/* Read at most AUDIT_JSON_BYTES_MAX bytes of JSON object. */
static json_t *read_json(const char *file)
{
	FILE *f = open_input(file);
	if (!f)
		return NULL;
	char *buf = malloc(AUDIT_JSON_BYTES_MAX + 1);
	size_t n = buf ? fread(buf, 1, AUDIT_JSON_BYTES_MAX + 1, f) : 0;
	bool bad_read = !buf || ferror(f);
	close_input(f);
	json_t *j = NULL;
	json_error_t jerr;
	if (bad_read)
		fputs("huitong audit: cannot read the input\n", stderr);
	else if (n > AUDIT_JSON_BYTES_MAX)
		fprintf(stderr, "huitong audit: input longer than %u bytes\n",
			AUDIT_JSON_BYTES_MAX);
	else if (!(j = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &jerr)))
		fprintf(stderr, "huitong audit: bad JSON: %s (line %d)\n",
			jerr.text, jerr.line);
	else if (!json_is_object(j)) {
		fputs("huitong audit: the input must be a JSON object\n",
		      stderr);
		json_decref(j);
		j = NULL;
	}
	free(buf);
	return j;
}

/* A field that is a JSON integer >= 0 or a decimal string. */
static int json_u64(json_t *obj, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(obj, key);
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_string(v))
		return parse_u64(key, json_string_value(v), out);
	fprintf(stderr,
		"huitong audit: field \"%s\": expected a number >= 0\n", key);
	return 2;
}

static int json_hash(json_t *obj, const char *key, uint8_t out[HT_HASH_BYTES])
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_string(v)) {
		fprintf(stderr,
			"huitong audit: field \"%s\": expected a hex string\n",
			key);
		return 2;
	}
	return parse_hash(key, json_string_value(v), out);
}

static int json_proof(json_t *obj, struct claim *c)
{
	json_t *a = json_object_get(obj, "proof");
	if (!json_is_array(a)) {
		fputs("huitong audit: field \"proof\": expected an array\n",
		      stderr);
		return 2;
	}
	if (json_array_size(a) > HT_PROOF_HASHES_MAX) {
		fprintf(stderr,
			"huitong audit: proof: more than %d hashes\n",
			HT_PROOF_HASHES_MAX);
		return 2;
	}
	c->count = json_array_size(a);
	for (size_t i = 0; i < c->count; i++) {
		json_t *v = json_array_get(a, i);
		if (!json_is_string(v) ||
		    parse_hash("proof item", json_string_value(v), c->proof[i]))
			return 2;
	}
	return 0;
}

/* Field names, in the order a, b, h1, h2. */
static int claim_from_json(const char *file, const char *const keys[4],
			   struct claim *c)
{
	json_t *j = read_json(file);
	if (!j)
		return 2;
	int rc = json_u64(j, keys[0], &c->a);
	if (!rc)
		rc = json_u64(j, keys[1], &c->b);
	if (!rc)
		rc = json_hash(j, keys[2], c->h1);
	if (!rc)
		rc = json_hash(j, keys[3], c->h2);
	if (!rc)
		rc = json_proof(j, c);
	json_decref(j);
	return rc;
}

static bool any_flag(const struct opts *o, const enum opt_id ids[4])
{
	for (int i = 0; i < 4; i++)
		if (o->val[ids[i]])
			return true;
	return o->val[OPT_PROOF] != NULL;
}

static int load_claim(const struct opts *o, const enum opt_id ids[4],
		      const char *const keys[4], struct claim *c)
{
	if (any_flag(o, ids))
		return claim_from_flags(o, ids, c);
	return claim_from_json(o->file, keys, c);
}

/* ---- verification --------------------------------------------------- */

static int answer(enum ht_err err, const char *why)
{
	if (err != HT_OK && err != HT_ERR_VERIFY)
		return crypto_failed(err);
	if (err == HT_OK)
		puts("ok");
	else
		printf("invalid: %s\n", why);
	int rc = finish_output();
	return rc ? rc : err == HT_OK ? 0 : 1;
}

static int do_verify_inclusion(const struct opts *o, struct ht_hasher *h)
{
	static const enum opt_id ids[4] = {OPT_INDEX, OPT_SIZE, OPT_LEAF_HASH,
					   OPT_ROOT};
	static const char *const keys[4] = {"leaf_index", "tree_size",
					    "leaf_hash", "root"};
	struct claim c;
	char why[160];
	int rc = load_claim(o, ids, keys, &c);
	if (rc)
		return rc;
	enum ht_err err = ht_merkle_verify_inclusion(h, c.a, c.b, c.h1,
						     c.proof, c.count, c.h2);
	size_t want = ht_merkle_inclusion_proof_count(c.a, c.b);
	if (c.a >= c.b)
		snprintf(why, sizeof why,
			 "leaf index %" PRIu64
			 " is not below the tree size %" PRIu64,
			 c.a, c.b);
	else if (c.count != want)
		snprintf(why, sizeof why,
			 "the proof has %zu hashes; leaf %" PRIu64
			 " of a tree of %" PRIu64 " needs %zu",
			 c.count, c.a, c.b, want);
	else
		snprintf(why, sizeof why,
			 "the proof does not lead from the leaf hash to the "
			 "root");
	return answer(err, why);
}

static void consistency_why(struct ht_hasher *h, const struct claim *c,
			    char *why, size_t size)
{
	uint8_t empty[HT_HASH_BYTES];
	size_t want = ht_merkle_consistency_proof_count(c->a, c->b);
	if (c->a > c->b)
		snprintf(why, size,
			 "the old size %" PRIu64 " exceeds the new size %" PRIu64,
			 c->a, c->b);
	else if (c->a == c->b && c->count == 0)
		snprintf(why, size, "equal sizes but different roots");
	else if (c->a == 0 && c->count == 0 &&
		 ht_hash(ht_hasher_alg(h), NULL, 0, empty) == HT_OK &&
		 memcmp(empty, c->h1, HT_HASH_BYTES))
		snprintf(why, size, "the old root is not the empty tree's");
	else if (c->count != want)
		snprintf(why, size,
			 "the proof has %zu hashes; sizes %" PRIu64
			 " and %" PRIu64 " need %zu",
			 c->count, c->a, c->b, want);
	else
		snprintf(why, size,
			 "the proof does not match the old and new roots");
}

static int do_verify_consistency(const struct opts *o, struct ht_hasher *h)
{
	static const enum opt_id ids[4] = {OPT_OLD, OPT_NEW, OPT_OLD_ROOT,
					   OPT_NEW_ROOT};
	static const char *const keys[4] = {"old_size", "new_size",
					    "old_root", "new_root"};
	struct claim c;
	char why[160];
	int rc = load_claim(o, ids, keys, &c);
	if (rc)
		return rc;
	enum ht_err err = ht_merkle_verify_consistency(h, c.a, c.b, c.h1, c.h2,
						       c.proof, c.count);
	consistency_why(h, &c, why, sizeof why);
	return answer(err, why);
}

/* ---- access-log ----------------------------------------------------- */

/* A string field as JSON: bytes other than printable ASCII, '"' and '\\'
 * are written \u00XX (each byte as the code point of its value), so the
 * output is ASCII, valid JSON whatever the request sent, and lossless. */
static void json_str(const char *key, const char *s)
{
	printf(",\"%s\":\"", key);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

/* A string field as text: "-" when empty; bytes other than visible ASCII
 * (space, controls, escape sequences a terminal would obey) and '\\' as
 * \xNN, so one entry is one line of space-separated fields. */
static void text_str(const char *key, const char *s)
{
	if (key)
		printf(" %s=", key);
	else
		putchar(' ');
	if (!*s)
		putchar('-');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f || *p == '\\')
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
}

/* time_ns as RFC 3339 UTC with nanoseconds. */
static void format_time(uint64_t time_ns, char out[40])
{
	time_t secs = (time_t)(time_ns / 1000000000u);
	struct tm tm;
	size_t n = 0;
	if (gmtime_r(&secs, &tm))
		n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	if (n == 0) {
		snprintf(out, 40, "?");
		return;
	}
	snprintf(out + n, 40 - n, ".%09uZ",
		 (unsigned)(time_ns % 1000000000u));
}

static int print_entry(void *ctx, uint64_t seq, const struct ht_access_entry *e)
{
	const bool *json = ctx;
	char when[40];
	format_time(e->time_ns, when);
	if (!*json) {
		printf("%" PRIu64 " %s", seq, when);
		text_str("remote", e->remote);
		text_str("participant", e->participant);
		text_str("role", ht_access_role_name(e->role));
		text_str("key", e->key_id);
		text_str("cert", e->cert_serial);
		text_str(NULL, e->method);
		text_str(NULL, e->path);
		printf("%s status=%u", e->path_truncated ? " (truncated)" : "",
		       (unsigned)e->status);
		text_str("outcome", e->outcome);
		printf(" body=%" PRIu64 " latency_us=%" PRIu32 "\n",
		       e->body_bytes, e->latency_us);
		return 0;
	}
	printf("{\"seq\":%" PRIu64 ",\"time_ns\":%" PRIu64 ",\"time\":\"%s\"",
	       seq, e->time_ns, when);
	json_str("participant", e->participant);
	json_str("role", ht_access_role_name(e->role));
	json_str("key_id", e->key_id);
	json_str("cert_serial", e->cert_serial);
	json_str("remote", e->remote);
	json_str("method", e->method);
	json_str("path", e->path);
	printf(",\"path_truncated\":%s,\"status\":%u",
	       e->path_truncated ? "true" : "false", (unsigned)e->status);
	json_str("outcome", e->outcome);
	printf(",\"body_bytes\":%" PRIu64 ",\"latency_us\":%" PRIu32 "}\n",
	       e->body_bytes, e->latency_us);
	return 0;
}

/* The last `tail` of the `entries` just verified. */
static int print_tail(const struct opts *o, uint64_t entries, uint64_t tail)
{
	bool json = o->json;
	uint64_t first = entries > tail ? entries - tail + 1 : 1;
	uint64_t count = entries >= first ? entries - first + 1 : 0;
	if (count == 0)
		return 0;
	enum ht_err err = ht_accesslog_read(o->val[OPT_DATA], first, count,
					    print_entry, &json);
	if (err) {
		fprintf(stderr, "huitong audit: access log: reading entries: "
				"%s\n", ht_strerror(err));
		return 2;
	}
	return 0;
}

static int do_access_log(const struct opts *o)
{
	char problem[HT_ACCESSLOG_PROBLEM_SIZE];
	uint64_t entries, tail = 0;
	if (!o->val[OPT_DATA])
		return usage_error("%s needs --data", "access-log");
	if (o->json && !o->val[OPT_TAIL])
		return usage_error("%s only goes with --tail", "--json");
	if (o->val[OPT_TAIL] && parse_u64("--tail", o->val[OPT_TAIL], &tail))
		return 2;
	enum ht_err err = ht_accesslog_verify(o->val[OPT_DATA], &entries,
					      problem, sizeof problem);
	if (err == HT_ERR_CORRUPT) {
		printf("access log not intact: %s\n", problem);
		return finish_output() ? 2 : 1;
	}
	if (err) {
		fprintf(stderr, "huitong audit: access log: %s\n",
			problem[0] ? problem : ht_strerror(err));
		return 2;
	}
	fprintf(o->json ? stderr : stdout,
		"access log intact: %" PRIu64 " entries\n", entries);
	int rc = o->val[OPT_TAIL] ? print_tail(o, entries, tail) : 0;
	return rc ? rc : finish_output();
}

/* ---- entry ---------------------------------------------------------- */

int ht_cmd_audit(int argc, char **argv)
{
	struct opts o;
	struct ht_hasher *h;
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	int rc = parse_args(argc, argv, &o);
	if (rc)
		return rc;
	if (o.help) {
		usage(stdout);
		return 0;
	}
	if (o.action == ACT_ACCESS_LOG)
		return do_access_log(&o);
	enum ht_err err = ht_hasher_create(o.alg, &h);
	if (err)
		return crypto_failed(err);
	switch (o.action) {
	case ACT_ROOT:
		rc = do_root(&o, h);
		break;
	case ACT_INCLUSION:
		rc = do_inclusion(&o, h);
		break;
	case ACT_CONSISTENCY:
		rc = do_consistency(&o, h);
		break;
	case ACT_VERIFY_INCL:
		rc = do_verify_inclusion(&o, h);
		break;
	case ACT_VERIFY_CONS:
		rc = do_verify_consistency(&o, h);
		break;
	case ACT_ACCESS_LOG: /* handled above */
		break;
	}
	ht_hasher_destroy(h);
	return rc;
}

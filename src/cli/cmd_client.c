/*
 * cmd_client.c — `huitong client`: talk to a running hub over the HTTPS
 * API with a participant's credentials: the ledger JSONL contract
 * (`apply`, the same lines as `ledger apply`), the signed head, receipts,
 * human create/show commands and `raw` requests for tests.
 *
 * Owner: cli. Everything goes through libhuitong-client (client.h), which
 * verifies receipts before a result is printed: a printed "ok" is a
 * payment the hub has proven it committed. This file parses options and
 * prints; it never speaks HTTP itself.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "huitong/client.h"

static const char client_usage[] =
	"usage: huitong client --credentials DIR [--url URL] [--timeout S]\n"
	"                      [--retries N] [--no-verify] <command> ...\n"
	"\n"
	"Talk to a running hub (huitong serve) with the credentials written by\n"
	"`huitong participant add` (mutual TLS 1.3, signed requests).\n"
	"\n"
	"commands:\n"
	"  apply [FILE|-]        ledger JSONL in, the lines `ledger apply` prints out\n"
	"  head                  the latest signed journal head, verified\n"
	"  receipt ID            a transfer's receipt (inclusion proof), verified\n"
	"  account create|show   create an account, or show one\n"
	"  transfer create|show  create a transfer, or show one\n"
	"  raw METHOD PATH [BODY|-]  one signed request; prints STATUS, then the body\n"
	"\n"
	"options:\n"
	"  --credentials DIR  the participant's credentials directory (required)\n"
	"  --url URL          https://host[:port] of the hub (default: the\n"
	"                     credentials' url)\n"
	"  --timeout S        seconds per attempt (default 30)\n"
	"  --retries N        retries after a lost connection, a timeout or a\n"
	"                     503 (default 5, at most 20)\n"
	"  --no-verify        do not check receipts and heads (not for money)\n"
	"\n"
	"`huitong client <command> --help` describes each command.\n";

static const char apply_usage[] =
	"usage: huitong client [options] apply [FILE|-]\n"
	"\n"
	"Read ledger requests, one JSON object per line (DESIGN.md \"Ledger\n"
	"JSONL\"), from FILE or standard input, send each to the hub and write\n"
	"the line `huitong ledger apply` would write for it, in order. Every\n"
	"create's receipt is verified before its line is written, so a written\n"
	"line is acknowledged. A malformed line answers {\"error\":...,\"line\":N}\n"
	"locally; a request the hub refuses (403, 400, ...) answers\n"
	"{\"error\":\"hub refused the request: ...\",\"line\":N}; both go on.\n"
	"A transport failure (after the retries), a receipt that does not\n"
	"verify or refused credentials stop with a message naming the line on\n"
	"stderr and exit 2: every line written before it was acknowledged, and\n"
	"that line's outcome is unknown (sending it again is safe: ids make\n"
	"creates idempotent). Exit 0 at end of input.\n";

static const char head_usage[] =
	"usage: huitong client [options] head\n"
	"\n"
	"Print the hub's latest signed tree head as JSON, after checking its\n"
	"signature with the hub journal key.\n";

static const char receipt_usage[] =
	"usage: huitong client [options] receipt ID [--tree-size N]\n"
	"\n"
	"Fetch the receipt of transfer ID (against the latest head, or the\n"
	"head of N leaves), check that its leaf is that transfer, that the\n"
	"inclusion proof leads to the head's root and that the head is signed\n"
	"by the hub, and print it as JSON. Exit 1 when the hub has no such\n"
	"transfer.\n";

static const char account_usage[] =
	"usage: huitong client [options] account create --id ID --ledger L --code C\n"
	"                                        [--flags f1,f2] [--user-data S]\n"
	"       huitong client [options] account show ID\n"
	"\n"
	"`create` prints {\"id\":…,\"result\":…,\"leaf\":N,\"head\":{…}} once the\n"
	"receipt is verified (exit 0 for ok or exists, 1 otherwise); `show`\n"
	"prints the account as `huitong account show` does (exit 1 when not\n"
	"found). Flags: linked, debits_must_not_exceed_credits,\n"
	"credits_must_not_exceed_debits, history, closed.\n";

static const char transfer_usage[] =
	"usage: huitong client [options] transfer create --id ID --debit A --credit B\n"
	"              --amount N --ledger L --code C [--flags f1,f2]\n"
	"              [--pending-id P] [--timeout-s S] [--user-data S]\n"
	"       huitong client [options] transfer show ID\n"
	"\n"
	"`create` prints {\"id\":…,\"result\":…,\"leaf\":N,\"head\":{…}} once the\n"
	"receipt is verified (exit 0 for ok or exists, 1 otherwise); `show`\n"
	"prints the transfer as `huitong transfer show` does (exit 1 when not\n"
	"found). Flags: linked, pending, post_pending_transfer,\n"
	"void_pending_transfer, balancing_debit, balancing_credit,\n"
	"closing_debit, closing_credit.\n";

static const char raw_usage[] =
	"usage: huitong client [options] raw METHOD PATH [BODY|-]\n"
	"\n"
	"Send one signed request (retried like any other) and print the HTTP\n"
	"status on a line, then the body as it came. BODY '-' reads it from\n"
	"standard input (at most 4 MiB). Nothing is verified. Exit 0 when an\n"
	"answer came, whatever its status; 2 when none did.\n";

/* ---- options ------------------------------------------------------------ */

struct global {
	struct ht_client_options o;
	const char *credentials;
};

static int usage_error(const char *text)
{
	fputs(text, stderr);
	return 2;
}

/* The options before the command; *next gets the command's index. */
static int parse_global(int argc, char **argv, struct global *g, int *next)
{
	static const struct option opts[] = {
		{"credentials", required_argument, NULL, 'c'},
		{"url", required_argument, NULL, 'u'},
		{"timeout", required_argument, NULL, 't'},
		{"retries", required_argument, NULL, 'r'},
		{"no-verify", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0}};
	uint64_t v;
	int c;
	ht_client_options_init(&g->o);
	optind = 0;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': g->o.credentials_dir = optarg; break;
		case 'u': g->o.url = optarg; break;
		case 'n': g->o.verify_receipts = false; break;
		case 'h': fputs(client_usage, stdout); return 0;
		case 't':
			if (!ht_cli_u64("client", "--timeout", optarg, &v))
				return 2;
			if (v < 1 || v > HT_CLIENT_TIMEOUT_MS_MAX / 1000)
				return ht_cli_fail("client", "--timeout: 1..%u"
						   " seconds",
						   HT_CLIENT_TIMEOUT_MS_MAX / 1000);
			g->o.timeout_ms = (uint32_t)(v * 1000);
			break;
		case 'r':
			if (!ht_cli_u64("client", "--retries", optarg, &v))
				return 2;
			if (v > HT_CLIENT_RETRIES_MAX)
				return ht_cli_fail("client", "--retries: at most %d",
						   HT_CLIENT_RETRIES_MAX);
			g->o.retries = (unsigned)v;
			break;
		default: return usage_error(client_usage);
		}
	}
	*next = optind;
	return -1;
}

static int open_client(const char *cmd, struct global *g, struct ht_client **c)
{
	if (!g->o.credentials_dir)
		return ht_cli_fail(cmd, "--credentials DIR is required");
	if (ht_client_open(&g->o, c))
		return ht_cli_fail(cmd, "%s", ht_client_open_error());
	return 0;
}

/* ---- apply ------------------------------------------------------------------- */

static int apply_run(struct ht_client *c, FILE *in)
{
	struct ht_line_reader *lr;
	struct ht_buf out = {0};
	int rc = 0;
	if (ht_line_reader_create(in, HT_JSONL_LINE_BYTES_MAX, &lr))
		return ht_cli_fail("client apply", "out of memory");
	for (;;) {
		const char *line;
		size_t len;
		uint64_t no;
		enum ht_err err = ht_line_reader_next(lr, &line, &len, &no);
		if (err == HT_ERR_NOT_FOUND)
			break;
		out.len = 0;
		if (err == HT_ERR_LIMIT) {
			char msg[96];
			snprintf(msg, sizeof msg, "line longer than %u bytes",
				 HT_JSONL_LINE_BYTES_MAX);
			if (ht_jsonl_write_error(&out, msg, no))
				err = HT_ERR_NOMEM;
			else
				err = HT_OK;
		} else if (err) {
			rc = ht_cli_fail("client apply", "line %llu: cannot read"
					 " the input", (unsigned long long)no);
			break;
		} else if (ht_client_apply_line(c, line, len, no, &out)) {
			rc = ht_cli_fail("client apply", "line %llu: %s; stopping"
					 " (every line printed before it was"
					 " acknowledged; this line's outcome is"
					 " unknown, and sending it again is safe)",
					 (unsigned long long)no, ht_client_error(c));
			break;
		}
		if (err || ht_buf_append(&out, "\n", 1)) {
			rc = ht_cli_fail("client apply", "out of memory");
			break;
		}
		if (fwrite(out.data, 1, out.len, stdout) != out.len ||
		    fflush(stdout) != 0) {
			rc = ht_cli_fail("client apply", "cannot write output");
			break;
		}
	}
	ht_line_reader_destroy(lr);
	ht_buf_free(&out);
	return rc;
}

static int cmd_apply(struct global *g, int argc, char **argv)
{
	if (argc > 2 || (argc == 2 && argv[1][0] == '-' && argv[1][1]))
		return usage_error(apply_usage);
	const char *file = argc == 2 ? argv[1] : NULL;
	struct ht_client *c;
	int rc = open_client("client apply", g, &c);
	if (rc)
		return rc;
	FILE *in = stdin;
	if (file && strcmp(file, "-") && !(in = fopen(file, "rb"))) {
		ht_client_close(c);
		return ht_cli_fail("client apply", "cannot open %s", file);
	}
	rc = apply_run(c, in);
	if (in != stdin)
		fclose(in);
	ht_client_close(c);
	return rc;
}

/* ---- head and receipt ------------------------------------------------------------ */

static int cmd_head(struct global *g, int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return usage_error(head_usage);
	struct ht_client *c;
	struct ht_sth h;
	char json[1024];
	int rc = open_client("client head", g, &c);
	if (rc)
		return rc;
	if (ht_client_head(c, &h))
		rc = ht_cli_fail("client head", "%s", ht_client_error(c));
	else {
		ht_sth_json(&h, json, sizeof json);
		printf("%s\n", json);
	}
	ht_client_close(c);
	return rc;
}

static void print_receipt(const struct ht_client_receipt *r)
{
	char id[HT_U128_DEC_SIZE], head[1024];
	char data[2 * HT_LEAF_BYTES_MAX + 1], hash[2 * HT_HASH_BYTES + 1];
	const char *result = ht_result_name(r->result);
	ht_hex_encode(r->data, r->data_len, data);
	ht_sth_json(&r->head, head, sizeof head);
	printf("{\"id\":\"%s\",\"leaf\":%llu,\"result\":\"%s\",\"data\":\"%s\","
	       "\"head\":%s,\"proof\":[", ht_u128_format(r->id, id),
	       (unsigned long long)r->leaf, result ? result : "unknown", data,
	       head);
	for (size_t i = 0; i < r->proof_count; i++) {
		ht_hex_encode(r->proof[i], HT_HASH_BYTES, hash);
		printf("%s\"%s\"", i ? "," : "", hash);
	}
	printf("],\"verified\":%s}\n", r->verified ? "true" : "false");
}

static int cmd_receipt(struct global *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{"tree-size", required_argument, NULL, 's'}, {0, 0, 0, 0}};
	const char *cmd = "client receipt";
	uint64_t size = 0;
	ht_u128 id;
	int ch;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1)
		if (ch != 's' || !ht_cli_u64(cmd, "--tree-size", optarg, &size))
			return ch == 's' ? 2 : usage_error(receipt_usage);
	if (optind != argc - 1)
		return usage_error(receipt_usage);
	if (!ht_cli_u128(cmd, "ID", argv[optind], &id))
		return 2;
	struct ht_client *c;
	struct ht_client_receipt *r = malloc(sizeof *r);
	int rc = r ? open_client(cmd, g, &c) : ht_cli_fail(cmd, "out of memory");
	if (rc) {
		free(r);
		return rc;
	}
	enum ht_err err = ht_client_receipt(c, id, size, r);
	if (err == HT_ERR_NOT_FOUND) {
		ht_cli_fail(cmd, "%s", ht_client_error(c));
		rc = 1; /* a negative answer, not a failure */
	} else if (err)
		rc = ht_cli_fail(cmd, "%s", ht_client_error(c));
	else
		print_receipt(r);
	ht_client_close(c);
	free(r);
	return rc;
}

/* ---- account and transfer ---------------------------------------------------------- */

struct human {
	const char *id, *ledger, *code, *flags, *user_data;
	const char *debit, *credit, *amount, *pending_id, *timeout_s;
};

static int parse_human(int argc, char **argv, struct human *h)
{
	static const struct option opts[] = {
		{"id", required_argument, NULL, 'i'},
		{"ledger", required_argument, NULL, 'L'},
		{"code", required_argument, NULL, 'c'},
		{"flags", required_argument, NULL, 'f'},
		{"user-data", required_argument, NULL, 'u'},
		{"debit", required_argument, NULL, 'D'},
		{"credit", required_argument, NULL, 'C'},
		{"amount", required_argument, NULL, 'a'},
		{"pending-id", required_argument, NULL, 'p'},
		{"timeout-s", required_argument, NULL, 't'},
		{0, 0, 0, 0}};
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'i': h->id = optarg; break;
		case 'L': h->ledger = optarg; break;
		case 'c': h->code = optarg; break;
		case 'f': h->flags = optarg; break;
		case 'u': h->user_data = optarg; break;
		case 'D': h->debit = optarg; break;
		case 'C': h->credit = optarg; break;
		case 'a': h->amount = optarg; break;
		case 'p': h->pending_id = optarg; break;
		case 't': h->timeout_s = optarg; break;
		default: return -1;
		}
	}
	return optind == argc ? 0 : -1;
}


static bool opt_id(const char *cmd, const char *name, const char *s,
		   ht_u128 *out)
{
	*out = 0;
	return !s || ht_cli_u128(cmd, name, s, out);
}


/* {"id":"1","result":"ok","leaf":41,"head":{…}}; exit 0 for ok/exists. */
static int print_created(ht_u128 id, uint16_t result, uint64_t leaf,
			 const struct ht_client_commit *commit)
{
	char dec[HT_U128_DEC_SIZE], head[1024];
	ht_sth_json(&commit->head, head, sizeof head);
	printf("{\"id\":\"%s\",\"result\":\"%s\"", ht_u128_format(id, dec),
	       ht_result_name(result));
	if (leaf != HT_CLIENT_NO_LEAF)
		printf(",\"leaf\":%llu", (unsigned long long)leaf);
	printf(",\"head\":%s}\n", head);
	return result == HT_R_OK || result == HT_R_EXISTS ? 0 : 1;
}

static int create_one(struct global *g, const char *cmd, bool account,
		      const void *event)
{
	struct ht_client *c;
	struct ht_client_commit commit;
	uint16_t result;
	uint64_t leaf;
	int rc = open_client(cmd, g, &c);
	if (rc)
		return rc;
	enum ht_err err =
		account ? ht_client_create_accounts(c, event, 1, &result, &leaf,
						    &commit)
			: ht_client_create_transfers(c, event, 1, &result, &leaf,
						     &commit);
	if (err)
		rc = ht_cli_fail(cmd, "%s", ht_client_error(c));
	else
		rc = print_created(account ? ((const struct ht_account *)event)->id
					   : ((const struct ht_transfer *)event)->id,
				   result, leaf, &commit);
	ht_client_close(c);
	return rc;
}

static int show(struct global *g, const char *cmd, bool account, int argc,
		char **argv)
{
	ht_u128 id;
	if (argc != 2)
		return usage_error(account ? account_usage : transfer_usage);
	if (!ht_cli_u128(cmd, "ID", argv[1], &id))
		return 2;
	struct ht_client *c;
	struct ht_account a;
	struct ht_transfer t;
	struct ht_buf b = {0};
	size_t n = 0;
	int rc = open_client(cmd, g, &c);
	if (rc)
		return rc;
	enum ht_err err = account ? ht_client_lookup_accounts(c, &id, 1, &a, &n)
				  : ht_client_lookup_transfers(c, &id, 1, &t, &n);
	if (err)
		rc = ht_cli_fail(cmd, "%s", ht_client_error(c));
	else if (n == 0) {
		ht_cli_fail(cmd, "%s %s not found",
			    account ? "account" : "transfer", argv[1]);
		rc = 1; /* a negative answer, not a failure */
	} else if (account ? ht_jsonl_write_accounts(&b, HT_OP_LOOKUP_ACCOUNTS, &a, 1)
			 : ht_jsonl_write_transfers(&b, HT_OP_LOOKUP_TRANSFERS, &t, 1))
		rc = ht_cli_fail(cmd, "cannot write the answer");
	else
		printf("%s\n", b.data);
	ht_buf_free(&b);
	ht_client_close(c);
	return rc;
}

static int cmd_account(struct global *g, int argc, char **argv)
{
	const char *cmd = "client account create";
	struct human h = {0};
	struct ht_account a = {0};
	uint64_t v;
	if (argc >= 2 && !strcmp(argv[1], "show"))
		return show(g, "client account show", true, argc - 1, argv + 1);
	if (argc < 2 || strcmp(argv[1], "create") ||
	    parse_human(argc - 1, argv + 1, &h) || h.debit || h.credit ||
	    h.amount || h.pending_id || h.timeout_s)
		return usage_error(account_usage);
	if (!h.id)
		return ht_cli_fail(cmd, "--id is required");
	if (!opt_id(cmd, "--id", h.id, &a.id) ||
	    !ht_cli_u64_opt(cmd, "--ledger", h.ledger, UINT32_MAX, &v))
		return 2;
	a.ledger = (uint32_t)v;
	if (!ht_cli_u64_opt(cmd, "--code", h.code, UINT16_MAX, &v))
		return 2;
	a.code = (uint16_t)v;
	if (!ht_cli_flags(cmd, h.flags, ht_account_flag_parse, &a.flags) ||
	    !ht_cli_user_data(cmd, h.user_data, a.user_data, &a.user_data_len))
		return 2;
	return create_one(g, cmd, true, &a);
}

static int cmd_transfer(struct global *g, int argc, char **argv)
{
	const char *cmd = "client transfer create";
	struct human h = {0};
	struct ht_transfer t = {0};
	uint64_t v;
	if (argc >= 2 && !strcmp(argv[1], "show"))
		return show(g, "client transfer show", false, argc - 1, argv + 1);
	if (argc < 2 || strcmp(argv[1], "create") ||
	    parse_human(argc - 1, argv + 1, &h))
		return usage_error(transfer_usage);
	if (!h.id)
		return ht_cli_fail(cmd, "--id is required");
	if (!opt_id(cmd, "--id", h.id, &t.id) ||
	    !opt_id(cmd, "--debit", h.debit, &t.debit_account_id) ||
	    !opt_id(cmd, "--credit", h.credit, &t.credit_account_id) ||
	    !opt_id(cmd, "--pending-id", h.pending_id, &t.pending_id) ||
	    !ht_cli_u64_opt(cmd, "--amount", h.amount, UINT64_MAX, &t.amount) ||
	    !ht_cli_u64_opt(cmd, "--ledger", h.ledger, UINT32_MAX, &v))
		return 2;
	t.ledger = (uint32_t)v;
	if (!ht_cli_u64_opt(cmd, "--code", h.code, UINT16_MAX, &v))
		return 2;
	t.code = (uint16_t)v;
	if (!ht_cli_u64_opt(cmd, "--timeout-s", h.timeout_s, UINT32_MAX, &v))
		return 2;
	t.timeout_s = (uint32_t)v;
	if (!ht_cli_flags(cmd, h.flags, ht_transfer_flag_parse, &t.flags) ||
	    !ht_cli_user_data(cmd, h.user_data, t.user_data, &t.user_data_len))
		return 2;
	return create_one(g, cmd, false, &t);
}

/* ---- raw ------------------------------------------------------------------------------ */

/* Standard input, at most HT_JSONL_LINE_BYTES_MAX bytes. */
static int read_stdin(struct ht_buf *b)
{
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
		if (b->len + n > HT_JSONL_LINE_BYTES_MAX)
			return ht_cli_fail("client raw", "body over %u bytes",
					   HT_JSONL_LINE_BYTES_MAX);
		if (ht_buf_append(b, chunk, n))
			return ht_cli_fail("client raw", "out of memory");
	}
	return ferror(stdin) ? ht_cli_fail("client raw", "cannot read stdin") : 0;
}

static int cmd_raw(struct global *g, int argc, char **argv)
{
	const char *cmd = "client raw";
	if (argc < 3 || argc > 4)
		return usage_error(raw_usage);
	struct ht_buf body = {0};
	const char *data = argc == 4 ? argv[3] : "";
	size_t len = strlen(data);
	int rc = 0;
	if (argc == 4 && !strcmp(argv[3], "-")) {
		if ((rc = read_stdin(&body))) {
			ht_buf_free(&body);
			return rc;
		}
		data = body.data ? body.data : "";
		len = body.len;
	}
	struct ht_client *c;
	struct ht_client_response r;
	if ((rc = open_client(cmd, g, &c))) {
		ht_buf_free(&body);
		return rc;
	}
	if (ht_client_call(c, argv[1], argv[2], data, len, &r)) {
		rc = ht_cli_fail(cmd, "%s", ht_client_error(c));
	} else {
		printf("%ld\n", r.status);
		fwrite(r.body, 1, r.body_len, stdout);
		if (r.body_len && r.body[r.body_len - 1] != '\n')
			putchar('\n');
		if (fflush(stdout))
			rc = ht_cli_fail(cmd, "cannot write output");
	}
	ht_client_response_clear(&r);
	ht_client_close(c);
	ht_buf_free(&body);
	return rc;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

struct sub {
	const char *name;
	int (*fn)(struct global *g, int argc, char **argv);
	const char *usage;
};

static const struct sub subs[] = {
	{"apply", cmd_apply, apply_usage},
	{"head", cmd_head, head_usage},
	{"receipt", cmd_receipt, receipt_usage},
	{"account", cmd_account, account_usage},
	{"transfer", cmd_transfer, transfer_usage},
	{"raw", cmd_raw, raw_usage},
};

int ht_cmd_client(int argc, char **argv)
{
	struct global g = {0};
	int next = 0;
	int rc = parse_global(argc, argv, &g, &next);
	if (rc >= 0)
		return rc;
	if (next >= argc)
		return usage_error(client_usage);
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
		if (strcmp(argv[next], subs[i].name))
			continue;
		if (ht_cli_wants_help(argc - next, argv + next)) {
			fputs(subs[i].usage, stdout);
			return 0;
		}
		return subs[i].fn(&g, argc - next, argv + next);
	}
	ht_cli_fail("client", "unknown command '%s'", argv[next]);
	return usage_error(client_usage);
}

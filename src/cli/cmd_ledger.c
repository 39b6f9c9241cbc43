/*
 * cmd_ledger.c — `huitong ledger apply` (the JSONL contract of DESIGN.md)
 * and the human forms `account create|show`, `transfer create|show`,
 * `history`.
 *
 * Owner: cli. Every create is committed (durable, fsync'd) before its
 * result is printed: a printed "ok" is an acknowledged payment.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "huitong/journal.h"
#include "huitong/jsonl.h"

/* ---- ledger apply -------------------------------------------------------- */

static const char ledger_usage[] =
	"usage: huitong ledger apply --data DIR [FILE|-]\n"
	"\n"
	"Read ledger requests, one JSON object per line (DESIGN.md \"Ledger\n"
	"JSONL\"; docs/ledger.md), from FILE or standard input, and write one\n"
	"result line per request, in order. Ops: create_accounts,\n"
	"create_transfers, lookup_accounts, lookup_transfers,\n"
	"get_account_transfers, get_account_balances. Each create is durable\n"
	"(committed and fsync'd, journal head signed) before its line is\n"
	"written. A malformed line answers {\"error\":\"...\",\"line\":N} and\n"
	"processing continues. Exit 0 at end of input, 2 if the store fails.\n";

struct apply {
	struct ht_hub *hub;
	struct ht_buf out;
	uint16_t *results;
	ht_u128 *ids;
	void *scratch;       /* lookups: accounts, transfers or balances */
	size_t scratch_size;
};

static enum ht_err scratch(struct apply *a, size_t bytes)
{
	if (bytes <= a->scratch_size)
		return HT_OK;
	void *p = realloc(a->scratch, bytes);
	if (!p)
		return HT_ERR_NOMEM;
	a->scratch = p;
	a->scratch_size = bytes;
	return HT_OK;
}

static enum ht_err apply_create(struct apply *a, const struct ht_request *r)
{
	enum ht_err err;
	for (size_t i = 0; i < r->count; i++)
		a->ids[i] = r->op == HT_OP_CREATE_ACCOUNTS ? r->accounts[i].id
							   : r->transfers[i].id;
	if (r->op == HT_OP_CREATE_ACCOUNTS)
		err = ht_hub_create_accounts(a->hub, r->accounts, r->count,
					     a->results);
	else
		err = ht_hub_create_transfers(a->hub, r->transfers, r->count,
					      a->results);
	if (!err)
		err = ht_hub_commit(a->hub, NULL);
	if (!err)
		err = ht_jsonl_write_results(&a->out, r->op, a->ids, a->results,
					     r->count);
	return err;
}

static enum ht_err apply_lookup(struct apply *a, const struct ht_request *r)
{
	size_t n = 0;
	enum ht_err err;
	if (r->op == HT_OP_LOOKUP_ACCOUNTS) {
		err = scratch(a, r->count * sizeof(struct ht_account) + 1);
		if (!err)
			err = ht_hub_lookup_accounts(a->hub, r->ids, r->count,
						     a->scratch, &n);
		return err ? err
			   : ht_jsonl_write_accounts(&a->out, r->op, a->scratch, n);
	}
	err = scratch(a, r->count * sizeof(struct ht_transfer) + 1);
	if (!err)
		err = ht_hub_lookup_transfers(a->hub, r->ids, r->count,
					      a->scratch, &n);
	return err ? err : ht_jsonl_write_transfers(&a->out, r->op, a->scratch, n);
}

static enum ht_err apply_query(struct apply *a, const struct ht_request *r)
{
	size_t n = 0;
	size_t limit = r->filter.limit ? r->filter.limit : 1;
	enum ht_err err;
	if (r->op == HT_OP_GET_ACCOUNT_TRANSFERS) {
		err = scratch(a, limit * sizeof(struct ht_transfer));
		if (!err)
			err = ht_hub_account_transfers(a->hub, &r->filter,
						       a->scratch, &n);
		return err ? err
			   : ht_jsonl_write_transfers(&a->out, r->op, a->scratch, n);
	}
	err = scratch(a, limit * sizeof(struct ht_balance));
	if (!err)
		err = ht_hub_account_balances(a->hub, &r->filter, a->scratch, &n);
	return err ? err : ht_jsonl_write_balances(&a->out, r->op, a->scratch, n);
}

/* One request line. Returns HT_OK when a line (result or error) was
 * produced; an error return is a store failure that ends the run. */
static enum ht_err apply_line(struct apply *a, const char *line, size_t len,
			      uint64_t line_no)
{
	struct ht_request r = {0};
	char msg[256];
	if (len == 0)
		return ht_jsonl_write_error(&a->out, "empty line", line_no);
	enum ht_err err = ht_jsonl_parse(line, len, &r, msg, sizeof msg);
	if (err == HT_ERR_INVALID || err == HT_ERR_LIMIT)
		return ht_jsonl_write_error(&a->out, msg, line_no);
	if (err)
		return err;
	switch (r.op) {
	case HT_OP_CREATE_ACCOUNTS:
	case HT_OP_CREATE_TRANSFERS:
		err = apply_create(a, &r);
		break;
	case HT_OP_LOOKUP_ACCOUNTS:
	case HT_OP_LOOKUP_TRANSFERS:
		err = ht_hub_expire(a->hub);
		if (!err)
			err = apply_lookup(a, &r);
		break;
	default:
		err = ht_hub_expire(a->hub);
		if (!err)
			err = apply_query(a, &r);
		/* A bad filter is the request's fault, not the store's. */
		if (err == HT_ERR_LIMIT || err == HT_ERR_INVALID) {
			a->out.len = 0;
			err = ht_jsonl_write_error(
				&a->out, "bad filter: limit must be 1..8190 and"
					 " timestamp_min <= timestamp_max",
				line_no);
		}
	}
	ht_request_free(&r);
	return err;
}

static int apply_run(struct apply *a, FILE *in)
{
	struct ht_line_reader *lr;
	if (ht_line_reader_create(in, HT_JSONL_LINE_BYTES_MAX, &lr))
		return ht_cli_fail("ledger apply", "out of memory");
	int rc = 0;
	for (;;) {
		const char *line;
		size_t len;
		uint64_t no;
		enum ht_err err = ht_line_reader_next(lr, &line, &len, &no);
		if (err == HT_ERR_NOT_FOUND) {
			/* Everything is acknowledged; indexing is a courtesy
			 * to later readers, so a failure only warns. */
			if ((err = ht_hub_index(a->hub)))
				ht_cli_fail("ledger apply", "indexing: %s",
					    ht_strerror(err));
			break;
		}
		a->out.len = 0;
		if (err == HT_ERR_LIMIT) {
			char msg[96];
			snprintf(msg, sizeof msg, "line longer than %u bytes",
				 HT_JSONL_LINE_BYTES_MAX);
			err = ht_jsonl_write_error(&a->out, msg, no);
		} else if (!err) {
			err = apply_line(a, line, len, no);
		}
		if (err) {
			rc = ht_cli_fail("ledger apply", "line %llu: %s; stopping"
					 " (nothing after the last printed line"
					 " was acknowledged)",
					 (unsigned long long)no, ht_strerror(err));
			break;
		}
		ht_buf_append(&a->out, "\n", 1);
		if (fwrite(a->out.data, 1, a->out.len, stdout) != a->out.len ||
		    fflush(stdout) != 0) {
			rc = ht_cli_fail("ledger apply", "cannot write output");
			break;
		}
	}
	ht_line_reader_destroy(lr);
	return rc;
}

int ht_cmd_ledger(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0}};
	if (ht_cli_wants_help(argc, argv)) {
		fputs(ledger_usage, stdout);
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "apply")) {
		fputs(ledger_usage, stderr);
		return 2;
	}
	const char *data = NULL;
	int c;
	while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		if (c != 'd') {
			fputs(ledger_usage, stderr);
			return 2;
		}
		data = optarg;
	}
	int rest = argc - 1 - optind;
	const char *file = rest == 1 ? argv[1 + optind] : NULL;
	if (rest > 1 || !data) {
		fputs(ledger_usage, stderr);
		return 2;
	}
	FILE *in = stdin;
	if (file && strcmp(file, "-") && !(in = fopen(file, "rb")))
		return ht_cli_fail("ledger apply", "cannot open %s", file);
	struct apply a = {0};
	a.results = malloc(HT_BATCH_EVENTS_MAX * sizeof *a.results);
	a.ids = malloc(HT_BATCH_EVENTS_MAX * sizeof *a.ids);
	int rc;
	if (!a.results || !a.ids)
		rc = ht_cli_fail("ledger apply", "out of memory");
	else if (ht_cli_open("ledger apply", data, false, &a.hub))
		rc = 2;
	else
		rc = apply_run(&a, in);
	ht_hub_close(a.hub);
	if (in != stdin)
		fclose(in);
	ht_buf_free(&a.out);
	free(a.results);
	free(a.ids);
	free(a.scratch);
	return rc;
}

/* ---- human forms ---------------------------------------------------------- */

struct human_opts {
	const char *data, *id, *ledger, *code, *flags, *user_data;
	const char *debit, *credit, *amount, *pending_id, *timeout;
	const char *account, *limit, *from, *to;
	bool reversed, debits, credits, balances;
};

static int parse_human(int argc, char **argv, struct human_opts *o)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},
		{"id", required_argument, NULL, 'i'},
		{"ledger", required_argument, NULL, 'L'},
		{"code", required_argument, NULL, 'c'},
		{"flags", required_argument, NULL, 'f'},
		{"user-data", required_argument, NULL, 'u'},
		{"debit", required_argument, NULL, 'D'},
		{"credit", required_argument, NULL, 'C'},
		{"amount", required_argument, NULL, 'a'},
		{"pending-id", required_argument, NULL, 'p'},
		{"timeout", required_argument, NULL, 't'},
		{"account", required_argument, NULL, 'A'},
		{"limit", required_argument, NULL, 'n'},
		{"from", required_argument, NULL, 'F'},
		{"to", required_argument, NULL, 'T'},
		{"reversed", no_argument, NULL, 'r'},
		{"debits", no_argument, NULL, '1'},
		{"credits", no_argument, NULL, '2'},
		{"balances", no_argument, NULL, 'b'},
		{0, 0, 0, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': o->data = optarg; break;
		case 'i': o->id = optarg; break;
		case 'L': o->ledger = optarg; break;
		case 'c': o->code = optarg; break;
		case 'f': o->flags = optarg; break;
		case 'u': o->user_data = optarg; break;
		case 'D': o->debit = optarg; break;
		case 'C': o->credit = optarg; break;
		case 'a': o->amount = optarg; break;
		case 'p': o->pending_id = optarg; break;
		case 't': o->timeout = optarg; break;
		case 'A': o->account = optarg; break;
		case 'n': o->limit = optarg; break;
		case 'F': o->from = optarg; break;
		case 'T': o->to = optarg; break;
		case 'r': o->reversed = true; break;
		case '1': o->debits = true; break;
		case '2': o->credits = true; break;
		case 'b': o->balances = true; break;
		default: return -1;
		}
	}
	return optind == argc ? 0 : -1;
}



/* Apply one event, commit, print its result; exit 0 only for ok/exists. */
static int create_one(const char *cmd, const char *data, bool is_account,
		      const void *event)
{
	struct ht_hub *hub;
	if (ht_cli_open(cmd, data, false, &hub))
		return 2;
	uint16_t result;
	enum ht_err err =
		is_account ? ht_hub_create_accounts(hub, event, 1, &result)
			   : ht_hub_create_transfers(hub, event, 1, &result);
	if (!err)
		err = ht_hub_commit(hub, NULL);
	ht_hub_close(hub);
	if (err)
		return ht_cli_fail(cmd, "%s", ht_strerror(err));
	printf("%s\n", ht_result_name(result));
	return result == HT_R_OK || result == HT_R_EXISTS ? 0 : 1;
}

static int show(const char *cmd, const char *data, const char *id_s,
		bool is_account)
{
	ht_u128 id;
	struct ht_hub *hub;
	if (!id_s || !ht_cli_u128(cmd, "--id", id_s, &id))
		return id_s ? 2 : ht_cli_fail(cmd, "--id is required");
	if (ht_cli_open(cmd, data, true, &hub))
		return 2;
	struct ht_account acc;
	struct ht_transfer tr;
	struct ht_buf b = {0};
	size_t n = 0;
	enum ht_err err =
		is_account ? ht_hub_lookup_accounts(hub, &id, 1, &acc, &n)
			   : ht_hub_lookup_transfers(hub, &id, 1, &tr, &n);
	ht_hub_close(hub);
	if (err)
		return ht_cli_fail(cmd, "%s", ht_strerror(err));
	if (n == 0)
		return ht_cli_fail(cmd, "%s %s not found",
				   is_account ? "account" : "transfer", id_s);
	err = is_account
		      ? ht_jsonl_write_accounts(&b, HT_OP_LOOKUP_ACCOUNTS, &acc, 1)
		      : ht_jsonl_write_transfers(&b, HT_OP_LOOKUP_TRANSFERS, &tr, 1);
	if (!err)
		printf("%.*s\n", (int)b.len, b.data);
	ht_buf_free(&b);
	return err ? 2 : 0;
}

static const char account_usage[] =
	"usage: huitong account create --data DIR --id ID --ledger N --code N\n"
	"                              [--flags f1,f2] [--user-data S]\n"
	"       huitong account show   --data DIR --id ID\n"
	"Flags: linked, debits_must_not_exceed_credits,\n"
	"credits_must_not_exceed_debits, history, closed. `create` prints the\n"
	"result code (exit 0 for ok/exists, 1 otherwise); `show` prints the\n"
	"account with its balances as JSON.\n";

int ht_cmd_account(int argc, char **argv)
{
	struct human_opts o = {0};
	if (ht_cli_wants_help(argc, argv)) {
		fputs(account_usage, stdout);
		return 0;
	}
	if (argc < 2 || parse_human(argc - 1, argv + 1, &o) || !o.data) {
		fputs(account_usage, stderr);
		return 2;
	}
	if (!strcmp(argv[1], "show"))
		return show("account show", o.data, o.id, true);
	if (strcmp(argv[1], "create")) {
		fputs(account_usage, stderr);
		return 2;
	}
	struct ht_account a = {0};
	uint64_t v;
	const char *cmd = "account create";
	if (!o.id || !ht_cli_u128(cmd, "--id", o.id, &a.id))
		return o.id ? 2 : ht_cli_fail(cmd, "--id is required");
	if (!ht_cli_u64_opt(cmd, "--ledger", o.ledger, UINT32_MAX, &v))
		return 2;
	a.ledger = (uint32_t)v;
	if (!ht_cli_u64_opt(cmd, "--code", o.code, UINT16_MAX, &v))
		return 2;
	a.code = (uint16_t)v;
	if (!ht_cli_flags(cmd, o.flags, ht_account_flag_parse, &a.flags) ||
	    !ht_cli_user_data(cmd, o.user_data, a.user_data, &a.user_data_len))
		return 2;
	return create_one(cmd, o.data, true, &a);
}

static const char transfer_usage[] =
	"usage: huitong transfer create --data DIR --id ID --debit ID --credit ID\n"
	"                   --amount N --ledger N --code N [--flags f1,f2]\n"
	"                   [--pending-id ID] [--timeout SECONDS] [--user-data S]\n"
	"       huitong transfer show   --data DIR --id ID\n"
	"Flags: linked, pending, post_pending_transfer, void_pending_transfer,\n"
	"balancing_debit, balancing_credit, closing_debit, closing_credit.\n"
	"`create` prints the result code (exit 0 for ok/exists, 1 otherwise).\n";

static bool transfer_ids(const char *cmd, const struct human_opts *o,
			 struct ht_transfer *t)
{
	if (!o->id) {
		ht_cli_fail(cmd, "--id is required");
		return false;
	}
	return ht_cli_u128(cmd, "--id", o->id, &t->id) &&
	       (!o->debit ||
		ht_cli_u128(cmd, "--debit", o->debit, &t->debit_account_id)) &&
	       (!o->credit ||
		ht_cli_u128(cmd, "--credit", o->credit, &t->credit_account_id)) &&
	       (!o->pending_id ||
		ht_cli_u128(cmd, "--pending-id", o->pending_id, &t->pending_id));
}

int ht_cmd_transfer(int argc, char **argv)
{
	struct human_opts o = {0};
	if (ht_cli_wants_help(argc, argv)) {
		fputs(transfer_usage, stdout);
		return 0;
	}
	if (argc < 2 || parse_human(argc - 1, argv + 1, &o) || !o.data) {
		fputs(transfer_usage, stderr);
		return 2;
	}
	if (!strcmp(argv[1], "show"))
		return show("transfer show", o.data, o.id, false);
	if (strcmp(argv[1], "create")) {
		fputs(transfer_usage, stderr);
		return 2;
	}
	const char *cmd = "transfer create";
	struct ht_transfer t = {0};
	uint64_t v;
	if (!transfer_ids(cmd, &o, &t) ||
	    !ht_cli_u64_opt(cmd, "--amount", o.amount, UINT64_MAX, &t.amount))
		return 2;
	if (!ht_cli_u64_opt(cmd, "--ledger", o.ledger, UINT32_MAX, &v))
		return 2;
	t.ledger = (uint32_t)v;
	if (!ht_cli_u64_opt(cmd, "--code", o.code, UINT16_MAX, &v))
		return 2;
	t.code = (uint16_t)v;
	if (!ht_cli_u64_opt(cmd, "--timeout", o.timeout, UINT32_MAX, &v))
		return 2;
	t.timeout_s = (uint32_t)v;
	if (!ht_cli_flags(cmd, o.flags, ht_transfer_flag_parse, &t.flags) ||
	    !ht_cli_user_data(cmd, o.user_data, t.user_data, &t.user_data_len))
		return 2;
	return create_one(cmd, o.data, false, &t);
}

static const char history_usage[] =
	"usage: huitong history --data DIR --account ID [--limit N]\n"
	"                       [--from TS] [--to TS] [--reversed]\n"
	"                       [--debits|--credits] [--balances]\n"
	"An account's transfers (oldest first; --reversed for newest first),\n"
	"or with --balances its balance history (accounts created with the\n"
	"history flag). TS are hub timestamps in nanoseconds, inclusive.\n"
	"Output: one JSON line as in `ledger apply`.\n";

int ht_cmd_history(int argc, char **argv)
{
	struct human_opts o = {0};
	const char *cmd = "history";
	if (ht_cli_wants_help(argc, argv)) {
		fputs(history_usage, stdout);
		return 0;
	}
	if (parse_human(argc, argv, &o) || !o.data || !o.account) {
		fputs(history_usage, stderr);
		return 2;
	}
	struct ht_account_filter f = {.limit = 100};
	uint64_t limit = 100;
	if (!ht_cli_u128(cmd, "--account", o.account, &f.account_id) ||
	    (o.limit && !ht_cli_u64_opt(cmd, "--limit", o.limit, HT_QUERY_LIMIT_MAX,
				 &limit)) ||
	    !ht_cli_u64_opt(cmd, "--from", o.from, UINT64_MAX, &f.timestamp_min) ||
	    !ht_cli_u64_opt(cmd, "--to", o.to, UINT64_MAX, &f.timestamp_max))
		return 2;
	f.limit = (uint32_t)(limit ? limit : 1);
	f.flags = (o.debits ? HT_FILTER_DEBITS : 0) |
		  (o.credits ? HT_FILTER_CREDITS : 0) |
		  (o.reversed ? HT_FILTER_REVERSED : 0);
	struct ht_hub *hub;
	if (ht_cli_open(cmd, o.data, true, &hub))
		return 2;
	void *rows = calloc(f.limit, o.balances ? sizeof(struct ht_balance)
						: sizeof(struct ht_transfer));
	struct ht_buf b = {0};
	size_t n = 0;
	enum ht_err err = rows ? HT_OK : HT_ERR_NOMEM;
	if (!err && o.balances)
		err = ht_hub_account_balances(hub, &f, rows, &n);
	else if (!err)
		err = ht_hub_account_transfers(hub, &f, rows, &n);
	if (!err && o.balances)
		err = ht_jsonl_write_balances(&b, HT_OP_GET_ACCOUNT_BALANCES, rows, n);
	else if (!err)
		err = ht_jsonl_write_transfers(&b, HT_OP_GET_ACCOUNT_TRANSFERS, rows, n);
	ht_hub_close(hub);
	free(rows);
	if (!err)
		printf("%.*s\n", (int)b.len, b.data);
	ht_buf_free(&b);
	return err ? ht_cli_fail(cmd, "%s", ht_strerror(err)) : 0;
}

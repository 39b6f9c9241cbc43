/*
 * cmd_token.c — `huitong token`: the payment token vault from the command
 * line (vault.h, docs/tokens.md): token ranges, issuing, detokenising,
 * lifecycle, key rotation and the detokenisation record.
 *
 * Owner: cli. Every subcommand opens DATA/vault.db itself (SQLite WAL: a
 * running hub may use the same vault meanwhile). Output is one JSON object
 * per line on stdout; exit 0 done, 1 refused (a detokenisation or a state
 * change the vault said no to), 2 usage or failure.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "huitong/vault.h"

#define CMD "token"

static const char usage[] =
	"usage: huitong token range-add --data D --participant P --prefix DIGITS\n"
	"       huitong token issue --data D --participant P --number DIGITS\n"
	"             [--channels qr,card,...] [--merchant M] [--expires-ms MS]\n"
	"             [--max-amount A] [--max-uses N]\n"
	"       huitong token detokenize --data D --token T (--requester P |\n"
	"             --router) [--channel C] [--merchant M] [--amount A]\n"
	"       huitong token suspend|resume|delete --data D --token T\n"
	"             (--requester P | --router)\n"
	"       huitong token show --data D --token T\n"
	"       huitong token rotate-key --data D\n"
	"       huitong token log --data D [--token T]\n"
	"\n"
	"Payment tokens (docs/tokens.md): format-preserving (as many digits as\n"
	"the number), Luhn-valid, from the participant's token range (a digit\n"
	"prefix, 6..10 digits); the number is kept only sealed with SM4 (CTR +\n"
	"HMAC-SM3) under DATA/vault.keys. Domain controls: channels, merchant,\n"
	"expiry (Unix ms), maximum amount (minor units), maximum uses. Only the\n"
	"issuing participant and the router may detokenise; every attempt is\n"
	"recorded. Exit 0 done, 1 refused, 2 usage or failure.\n";

struct opts {
	const char *data, *participant, *prefix, *number, *channels, *merchant,
		*token, *requester, *channel;
	uint64_t expires_ms, max_amount, max_uses, amount;
	bool router;
};

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{"data", required_argument, NULL, 'd'},
		{"participant", required_argument, NULL, 'p'},
		{"prefix", required_argument, NULL, 'x'},
		{"number", required_argument, NULL, 'n'},
		{"channels", required_argument, NULL, 'c'},
		{"channel", required_argument, NULL, 'C'},
		{"merchant", required_argument, NULL, 'm'},
		{"expires-ms", required_argument, NULL, 'e'},
		{"max-amount", required_argument, NULL, 'a'},
		{"max-uses", required_argument, NULL, 'u'},
		{"amount", required_argument, NULL, 'A'},
		{"token", required_argument, NULL, 't'},
		{"requester", required_argument, NULL, 'r'},
		{"router", no_argument, NULL, 'R'},
		{NULL, 0, NULL, 0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd': o->data = optarg; break;
		case 'p': o->participant = optarg; break;
		case 'x': o->prefix = optarg; break;
		case 'n': o->number = optarg; break;
		case 'c': o->channels = optarg; break;
		case 'C': o->channel = optarg; break;
		case 'm': o->merchant = optarg; break;
		case 't': o->token = optarg; break;
		case 'r': o->requester = optarg; break;
		case 'R': o->router = true; break;
		case 'e':
			if (!ht_cli_u64(CMD, "--expires-ms", optarg, &o->expires_ms))
				return 2;
			break;
		case 'a':
			if (!ht_cli_u64(CMD, "--max-amount", optarg, &o->max_amount))
				return 2;
			break;
		case 'u':
			if (!ht_cli_u64_opt(CMD, "--max-uses", optarg, UINT32_MAX,
					    &o->max_uses))
				return 2;
			break;
		case 'A':
			if (!ht_cli_u64(CMD, "--amount", optarg, &o->amount))
				return 2;
			break;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind != argc) {
		ht_cli_fail(CMD, "unexpected argument '%s'", argv[optind]);
		return 2;
	}
	if (!o->data) {
		ht_cli_fail(CMD, "--data D is required");
		return 2;
	}
	return 0;
}

/* "qr,card" into a channel bit set. */
static bool channels_of(const char *s, uint32_t *out)
{
	*out = 0;
	while (s && *s) {
		size_t n = strcspn(s, ",");
		enum ht_channel c;
		if (ht_channel_parse(s, n, &c)) {
			ht_cli_fail(CMD, "--channels: '%.*s' is not one of p2p, qr,"
				    " card, transfer, cash_in, cash_out, bill",
				    (int)n, s);
			return false;
		}
		*out |= 1u << c;
		s += n + (s[n] == ',');
	}
	return true;
}

static bool who_given(const struct opts *o)
{
	if (!o->requester == !o->router) {
		ht_cli_fail(CMD, "give --requester P or --router, one of them");
		return false;
	}
	return true;
}

static void print_info(const struct ht_token_info *i)
{
	printf("{\"token\":\"%s\",\"participant\":", i->token);
	ht_cli_json_string(stdout, i->participant);
	printf(",\"state\":\"%s\",\"channels\":[", ht_token_state_name(i->state));
	bool first = true;
	for (int c = 0; c < HT_CHANNEL__COUNT; c++)
		if (i->domain.channels & (1u << c)) {
			printf("%s\"%s\"", first ? "" : ",",
			       ht_channel_name((enum ht_channel)c));
			first = false;
		}
	printf("],\"merchant\":");
	ht_cli_json_string(stdout, i->domain.merchant);
	printf(",\"expires_ms\":%lld,\"max_amount\":%llu,\"max_uses\":%u,"
	       "\"uses\":%u,\"created_ms\":%lld,\"key_version\":%u}\n",
	       (long long)i->domain.expires_ms,
	       (unsigned long long)i->domain.max_amount, i->domain.max_uses,
	       i->uses, (long long)i->created_ms, i->key_version);
}

static int print_log(void *ctx, const char *token, const char *requester,
		     int64_t time_ms, const char *result)
{
	(void)ctx;
	printf("{\"token\":\"%s\",\"requester\":", token);
	ht_cli_json_string(stdout, requester);
	printf(",\"time_ms\":%lld,\"result\":\"%s\"}\n", (long long)time_ms,
	       result);
	return 0;
}

static int run(const char *sub, struct ht_vault *v, const struct opts *o)
{
	enum ht_err err;
	if (!strcmp(sub, "range-add")) {
		if (!o->participant || !o->prefix)
			return ht_cli_fail(CMD, "range-add needs --participant and"
					   " --prefix");
		err = ht_vault_range_add(v, o->participant, o->prefix);
		if (err == HT_ERR_EXISTS)
			return ht_cli_fail(CMD, "prefix %s overlaps a token range"
					   " already given", o->prefix);
		if (err == HT_ERR_INVALID)
			return ht_cli_fail(CMD, "--prefix: %d..%d digits; --participant:"
					   " an id without spaces",
					   HT_TOKEN_PREFIX_MIN, HT_TOKEN_PREFIX_MAX);
		if (err)
			return ht_cli_fail(CMD, "%s", ht_strerror(err));
		printf("{\"prefix\":\"%s\",\"participant\":", o->prefix);
		ht_cli_json_string(stdout, o->participant);
		printf("}\n");
		return 0;
	}
	if (!strcmp(sub, "issue")) {
		struct ht_token_domain d = {.expires_ms = (int64_t)o->expires_ms,
					    .max_amount = o->max_amount,
					    .max_uses = (uint32_t)o->max_uses};
		if (!o->participant || !o->number)
			return ht_cli_fail(CMD, "issue needs --participant and"
					   " --number");
		if (o->expires_ms > INT64_MAX || o->max_amount > INT64_MAX)
			return ht_cli_fail(CMD, "--expires-ms and --max-amount: at"
					   " most 2^63-1");
		if (!channels_of(o->channels, &d.channels))
			return 2;
		if (o->merchant && strlen(o->merchant) > HT_VAULT_MERCHANT_MAX)
			return ht_cli_fail(CMD, "--merchant: at most %d bytes",
					   HT_VAULT_MERCHANT_MAX);
		snprintf(d.merchant, sizeof d.merchant, "%s",
			 o->merchant ? o->merchant : "");
		char tok[HT_TOKEN_DIGITS_MAX + 1];
		err = ht_vault_issue(v, o->participant, o->number, &d, ht_now_wall_ms(), tok);
		if (err == HT_ERR_NOT_FOUND)
			return ht_cli_fail(CMD, "%s has no token range for a"
					   " %zu-digit number (token range-add)",
					   o->participant, strlen(o->number));
		if (err == HT_ERR_INVALID)
			return ht_cli_fail(CMD, "--number: %d..%d digits, not inside"
					   " a token range",
					   HT_TOKEN_DIGITS_MIN, HT_TOKEN_DIGITS_MAX);
		if (err)
			return ht_cli_fail(CMD, "%s", ht_strerror(err));
		printf("{\"token\":\"%s\"}\n", tok);
		return 0;
	}
	if (!o->token)
		return ht_cli_fail(CMD, "%s needs --token", sub);
	if (!strcmp(sub, "detokenize")) {
		enum ht_channel ch = HT_CHANNEL_TRANSFER;
		if (!who_given(o))
			return 2;
		if (o->channel && ht_channel_parse(o->channel, strlen(o->channel), &ch))
			return ht_cli_fail(CMD, "--channel: not a channel");
		struct ht_token_use u = {.requester = o->requester ? o->requester
								  : "operator",
					 .router = o->router, .channel = ch,
					 .merchant = o->merchant,
					 .amount = o->amount, .now_ms = ht_now_wall_ms()};
		char num[HT_TOKEN_DIGITS_MAX + 1];
		enum ht_token_refusal why;
		err = ht_vault_detokenize(v, o->token, &u, num, &why);
		if (err)
			return ht_cli_fail(CMD, "%s", ht_strerror(err));
		if (why) {
			printf("{\"token\":\"%s\",\"result\":\"%s\"}\n", o->token,
			       ht_token_refusal_name(why));
			return 1;
		}
		printf("{\"token\":\"%s\",\"result\":\"ok\",\"number\":\"%s\"}\n",
		       o->token, num);
		return 0;
	}
	static const struct {
		const char *name;
		enum ht_token_state state;
	} moves[] = {{"suspend", HT_TOKEN_SUSPENDED}, {"resume", HT_TOKEN_ACTIVE},
		     {"delete", HT_TOKEN_DELETED}};
	for (size_t i = 0; i < sizeof moves / sizeof moves[0]; i++) {
		if (strcmp(sub, moves[i].name))
			continue;
		if (!who_given(o))
			return 2;
		err = ht_vault_set_state(v, o->token, o->requester, o->router,
					 moves[i].state);
		if (err == HT_ERR_NOT_FOUND || err == HT_ERR_FORBIDDEN ||
		    err == HT_ERR_INVALID) {
			printf("{\"token\":\"%s\",\"result\":\"%s\"}\n", o->token,
			       err == HT_ERR_NOT_FOUND ? "not_found"
			       : err == HT_ERR_FORBIDDEN ? "forbidden"
							 : "invalid_state");
			return 1;
		}
		if (err)
			return ht_cli_fail(CMD, "%s", ht_strerror(err));
		printf("{\"token\":\"%s\",\"result\":\"ok\",\"state\":\"%s\"}\n",
		       o->token, ht_token_state_name(moves[i].state));
		return 0;
	}
	if (!strcmp(sub, "show")) {
		struct ht_token_info info;
		err = ht_vault_get(v, o->token, &info);
		if (err == HT_ERR_NOT_FOUND) {
			printf("{\"token\":\"%s\",\"result\":\"not_found\"}\n",
			       o->token);
			return 1;
		}
		if (err)
			return ht_cli_fail(CMD, "%s", ht_strerror(err));
		print_info(&info);
		return 0;
	}
	ht_cli_fail(CMD, "unknown command '%s'", sub);
	fputs(usage, stderr);
	return 2;
}

int ht_cmd_token(int argc, char **argv)
{
	int help = ht_cli_usage_or_help(argc, argv, usage);
	if (help >= 0)
		return help;
	const char *sub = argv[1];
	struct opts o = {0};
	int rc = parse(argc - 1, argv + 1, &o);
	if (rc)
		return rc;
	struct ht_vault *v;
	char err[512];
	enum ht_err e = ht_vault_open(o.data, &v, err, sizeof err);
	if (e)
		return ht_cli_fail(CMD, "%s", err[0] ? err : ht_strerror(e));
	if (!strcmp(sub, "rotate-key")) {
		size_t n = 0;
		e = ht_vault_rotate_key(v, &n);
		rc = e ? ht_cli_fail(CMD, "rotate-key: %s", ht_strerror(e)) : 0;
		if (!e)
			printf("{\"resealed\":%zu}\n", n);
	} else if (!strcmp(sub, "log")) {
		e = ht_vault_log_each(v, o.token, print_log, NULL);
		rc = e ? ht_cli_fail(CMD, "log: %s", ht_strerror(e)) : 0;
	} else {
		rc = run(sub, v, &o);
	}
	ht_vault_close(v);
	if (fflush(stdout))
		rc = ht_cli_fail(CMD, "cannot write output");
	return rc;
}

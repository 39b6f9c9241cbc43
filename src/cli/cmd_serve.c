/*
 * cmd_serve.c — `huitong serve`: run the HTTPS API (server.h).
 *
 * Owner: cli.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "risk_cli.h"
#include "huitong/features.h"
#include "huitong/server.h"

static const char serve_usage[] =
	"usage: huitong serve --data DIR [--listen HOST:PORT] [options]\n"
	"       huitong serve --routes\n"
	"\n"
	"Serve the hub's HTTPS API (docs/api.md): HTTP/1.1 over TLS 1.3 with\n"
	"client certificates issued by the hub CA (huitong participant add),\n"
	"signed requests, roles, group commit and the access log.\n"
	"SIGTERM or SIGINT stops it gracefully: requests already read are\n"
	"committed and answered first.\n"
	"  --listen HOST:PORT     address (default " HT_SERVER_LISTEN_DEFAULT
	"; port 0 picks one)\n"
	"  --threads N            HTTP worker threads (default: one per CPU)\n"
	"  --max-connections N    open connections (default 4096)\n"
	"  --timeout S            seconds to send a whole request; idle\n"
	"                         connections close after it (default 10)\n"
	"  --queue N              requests waiting for commit before 503\n"
	"                         overloaded (default 4096)\n"
	"  --static DIR           serve DIR's files under /static/\n"
	"  --ready-file FILE      write the address to FILE once listening\n"
	"  --quiet                no banner\n"
	"  --routes               print the route table and exit\n"
	"Risk control in the payment path (docs/api.md, \"Risk\"):\n"
	"  --risk                 score every transfer that moves money before\n"
	"                         it commits: allow, review (held pending until\n"
	"                         an operator decides) or block (risk_blocked)\n"
	"  --risk-model M         the model (default: models/default.model\n"
	"                         beside the binary, or $HUITONG_MODEL)\n"
	"  --risk-no-model        rules only (needs --risk-rules)\n"
	"  --risk-rules R         a rule file (docs/risk-rules.md); SIGHUP\n"
	"                         re-reads it\n"
	"  --risk-block T         block at model score >= T (default 0.90)\n"
	"  --risk-review T        review at model score >= T (default 0.50)\n"
	"  --risk-review-timeout S  seconds a held transfer waits for an\n"
	"                         operator before it is voided (default 86400)\n"
	"  --risk-state-mb N      memory for the features state (default 4096;\n"
	"                         the oldest parties are evicted beyond it)\n";

static bool parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || v == 0 || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

static bool parse_threshold(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || !*s || *end || !(v > 0 && v <= 1))
		return false;
	*out = v;
	return true;
}

/* The risk options: only with --risk; the default model unless told. */
static int risk_finish(struct ht_server_risk_options *r, bool any, bool no_model,
		       char *model_path, size_t size)
{
	if (!r->on) {
		if (any)
			return ht_cli_fail("serve", "the --risk-* options need"
					   " --risk");
		return -1;
	}
	if (no_model && r->model)
		return ht_cli_fail("serve", "--risk-model and --risk-no-model"
				   " together");
	if (no_model && !r->rules)
		return ht_cli_fail("serve", "--risk-no-model needs --risk-rules");
	if (r->review_threshold && r->block_threshold &&
	    r->review_threshold > r->block_threshold)
		return ht_cli_fail("serve", "--risk-review must not be above"
				   " --risk-block");
	if (!no_model && !r->model) {
		if (!ht_cli_default_model_path(model_path, size))
			return ht_cli_fail("serve", "no default model path; give"
					   " --risk-model");
		r->model = model_path;
	}
	return -1;
}

static int parse_risk_opt(int c, const char *arg,
			  struct ht_server_risk_options *r, bool *no_model)
{
	unsigned v;
	switch (c) {
	case 'k': r->on = true; return -1;
	case 'm': r->model = arg; return -1;
	case 'n': *no_model = true; return -1;
	case 'u': r->rules = arg; return -1;
	case 'b':
		if (!parse_threshold(arg, &r->block_threshold))
			return ht_cli_fail("serve", "--risk-block: a number in"
					   " (0, 1]");
		return -1;
	case 'v':
		if (!parse_threshold(arg, &r->review_threshold))
			return ht_cli_fail("serve", "--risk-review: a number in"
					   " (0, 1]");
		return -1;
	case 'o':
		if (!parse_uint(arg, 100u * 86400u, &v))
			return ht_cli_fail("serve", "--risk-review-timeout:"
					   " 1..8640000 seconds");
		r->review_timeout_s = v;
		return -1;
	case 'M':
		if (!parse_uint(arg, (unsigned)(HT_RISK_BYTES_DEFAULT >> 20) * 4,
				&v) || v < 16)
			return ht_cli_fail("serve", "--risk-state-mb: 16..%u",
					   (unsigned)(HT_RISK_BYTES_DEFAULT >> 20) * 4);
		r->state_bytes = (size_t)v << 20;
		return -1;
	}
	return 2;
}

static void write_ready(void *ctx, const char *address)
{
	const char *file = ctx;
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", file);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "%s\n", address);
	if (fclose(f) == 0)
		rename(tmp, file);
}

int ht_cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},
		{"listen", required_argument, NULL, 'l'},
		{"threads", required_argument, NULL, 't'},
		{"max-connections", required_argument, NULL, 'c'},
		{"timeout", required_argument, NULL, 'T'},
		{"queue", required_argument, NULL, 'q'},
		{"static", required_argument, NULL, 's'},
		{"ready-file", required_argument, NULL, 'r'},
		{"quiet", no_argument, NULL, 'Q'},
		{"routes", no_argument, NULL, 'R'},
		{"risk", no_argument, NULL, 'k'},
		{"risk-model", required_argument, NULL, 'm'},
		{"risk-no-model", no_argument, NULL, 'n'},
		{"risk-rules", required_argument, NULL, 'u'},
		{"risk-block", required_argument, NULL, 'b'},
		{"risk-review", required_argument, NULL, 'v'},
		{"risk-review-timeout", required_argument, NULL, 'o'},
		{"risk-state-mb", required_argument, NULL, 'M'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0}};
	struct ht_server_options o = {0};
	const char *ready = NULL;
	bool routes = false, risk_any = false, no_model = false;
	char model_path[PATH_MAX + 32];
	int c, rc;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
		case 'm':
		case 'n':
		case 'u':
		case 'b':
		case 'v':
		case 'o':
		case 'M':
			risk_any |= c != 'k';
			rc = parse_risk_opt(c, optarg, &o.risk, &no_model);
			if (rc >= 0)
				return rc;
			break;
		case 'd':
			o.data = optarg;
			break;
		case 'l':
			o.listen = optarg;
			break;
		case 't':
			if (!parse_uint(optarg, HT_SERVER_THREADS_MAX, &o.threads))
				return ht_cli_fail("serve", "--threads: 1..%d",
						   HT_SERVER_THREADS_MAX);
			break;
		case 'c':
			if (!parse_uint(optarg, HT_SERVER_MAX_CONNECTIONS_MAX,
					&o.max_connections))
				return ht_cli_fail("serve",
						   "--max-connections: 1..%d",
						   HT_SERVER_MAX_CONNECTIONS_MAX);
			break;
		case 'T':
			if (!parse_uint(optarg, 3600, &o.timeout_s))
				return ht_cli_fail("serve", "--timeout: 1..3600");
			break;
		case 'q':
			if (!parse_uint(optarg, 1u << 20, &o.queue))
				return ht_cli_fail("serve", "--queue: 1..1048576");
			break;
		case 's':
			o.static_dir = optarg;
			break;
		case 'r':
			ready = optarg;
			break;
		case 'Q':
			o.quiet = true;
			break;
		case 'R':
			routes = true;
			break;
		case 'h':
			fputs(serve_usage, stdout);
			return 0;
		default:
			fputs(serve_usage, stderr);
			return 2;
		}
	}
	if (routes) {
		size_t n;
		const struct ht_server_route *r = ht_server_routes(&n);
		for (size_t i = 0; i < n; i++)
			printf("%s %s signed=%s roles=%s\n", r[i].method,
			       r[i].path, r[i].signed_required ? "yes" : "no",
			       r[i].roles);
		return 0;
	}
	if (!o.data || optind != argc) {
		fputs(serve_usage, stderr);
		return 2;
	}
	rc = risk_finish(&o.risk, risk_any, no_model, model_path,
			 sizeof model_path);
	if (rc >= 0)
		return rc;
	if (ready) {
		o.ready = write_ready;
		o.ready_ctx = (void *)ready;
	}
	enum ht_err err = ht_server_run(&o);
	return err ? 2 : 0;
}

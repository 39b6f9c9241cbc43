/*
 * cmd_serve.c — `huitong serve`: run the HTTPS API (server.h).
 *
 * Owner: cli.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
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
	"  --routes               print the route table and exit\n";

static bool parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || v == 0 || v > max)
		return false;
	*out = (unsigned)v;
	return true;
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
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0}};
	struct ht_server_options o = {0};
	const char *ready = NULL;
	bool routes = false;
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
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
	if (ready) {
		o.ready = write_ready;
		o.ready_ctx = (void *)ready;
	}
	enum ht_err err = ht_server_run(&o);
	return err ? 2 : 0;
}

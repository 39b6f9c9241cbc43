/*
 * cmd_risk_score.c — `huitong risk score`: score interchange payments
 * offline, in file (time) order, with the same stateful features, model
 * and rules as the live path (risk.h). Writes the DESIGN.md contract:
 * {"id":…,"score":0.0–1.0,"decision":"allow|review|block","reasons":[…]}
 * per payment.
 *
 * Owner: risk. Without --model the default model is used: the one `make
 * build` trains from a fixed simulator seed (HUITONG_MODEL overrides its
 * path, docs/risk.md).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "huitong/jsonl.h"
#include "huitong/risk.h"
#include "risk_cli.h"

#define CMD "risk score"

static const char usage[] =
	"usage: huitong risk score [--model MODEL] [--rules RULES]\n"
	"                          --in PAYMENTS.jsonl --out SCORES.jsonl\n"
	"                          [--block T] [--review T] [--quiet]\n"
	"\n"
	"Score interchange payments (DESIGN.md) in the file's order, each\n"
	"against the history of the ones before it (the live features), and\n"
	"write one line per payment:\n"
	"  {\"id\":…,\"score\":0.0–1.0,\"decision\":\"allow|review|block\","
	"\"reasons\":[…]}\n"
	"\n"
	"  --model MODEL  a model of `huitong risk train` (default: the model\n"
	"                 `make build` trains, or $HUITONG_MODEL)\n"
	"  --no-model     rules only\n"
	"  --rules RULES  a rule file (docs/risk-rules.md); shadow rules are\n"
	"                 counted, not acted on\n"
	"  --block T      block at model score >= T (default 0.90)\n"
	"  --review T     hold for review at score >= T (default 0.50)\n"
	"  --out -        write to standard output; --in - reads standard input\n"
	"  --state-mb N   memory for the features state (default: twice the\n"
	"                 input's size, 64 MiB to 4 GiB; 4 GiB holds 10M\n"
	"                 parties; the oldest are evicted beyond it)\n"
	"  --quiet        no progress line on stderr\n"
	"\n"
	"A malformed payment line is reported on stderr with its line number,\n"
	"skipped, and makes the exit status 1. Exit 0 ok, 2 usage or I/O.\n";

bool ht_cli_default_model_path(char *out, size_t size)
{
	const char *env = getenv("HUITONG_MODEL");
	if (env && *env) {
		snprintf(out, size, "%s", env);
		return true;
	}
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (!slash)
		return false;
	*slash = '\0';
	return snprintf(out, size, "%s/models/default.model", exe) < (int)size;
}

static void write_score(FILE *out, const struct ht_payment *p,
			const struct ht_risk_decision *d)
{
	fputs("{\"id\":", out);
	ht_cli_json_string(out, p->id);
	double score = d->score < 0 ? 0 : d->score > 1 ? 1 : d->score;
	fprintf(out, ",\"score\":%.6f,\"decision\":\"%s\",\"reasons\":[", score,
		ht_decision_name(d->decision));
	for (size_t i = 0; i < d->reason_count; i++) {
		if (i)
			fputc(',', out);
		ht_cli_json_string(out, d->reasons[i]);
	}
	fputs("]}\n", out);
}

struct opts {
	const char *model, *rules, *in, *out, *state_mb;
	bool no_model, quiet;
	double block, review;
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'},
		{"no-model", no_argument, NULL, 'N'},
		{"rules", required_argument, NULL, 'r'},
		{"in", required_argument, NULL, 'i'},
		{"out", required_argument, NULL, 'o'},
		{"block", required_argument, NULL, 'b'},
		{"review", required_argument, NULL, 'v'},
		{"quiet", no_argument, NULL, 'q'},
		{"state-mb", required_argument, NULL, 'M'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	memset(o, 0, sizeof *o);
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'm': o->model = optarg; break;
		case 'N': o->no_model = true; break;
		case 'r': o->rules = optarg; break;
		case 'i': o->in = optarg; break;
		case 'o': o->out = optarg; break;
		case 'q': o->quiet = true; break;
		case 'M': o->state_mb = optarg; break;
		case 'b':
		case 'v': {
			errno = 0;
			double v = strtod(optarg, &end);
			if (errno || *end || !(v > 0 && v <= 1))
				return ht_cli_fail(CMD, "--%s: want a number in"
						   " (0, 1], got '%s'",
						   c == 'b' ? "block" : "review",
						   optarg);
			*(c == 'b' ? &o->block : &o->review) = v;
			break;
		}
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (!o->in || !o->out || optind != argc) {
		fputs(usage, stderr);
		return 2;
	}
	if (o->model && o->no_model)
		return ht_cli_fail(CMD, "--model and --no-model together");
	if (o->no_model && !o->rules)
		return ht_cli_fail(CMD, "--no-model needs --rules");
	return -1;
}

static int load_model(const struct opts *o, struct ht_model **out)
{
	char path[PATH_MAX + 32], err[256];
	*out = NULL;
	if (o->no_model)
		return -1;
	if (o->model)
		snprintf(path, sizeof path, "%s", o->model);
	else if (!ht_cli_default_model_path(path, sizeof path))
		return ht_cli_fail(CMD, "no default model path; give --model");
	enum ht_err rc = ht_model_load(path, out, err, sizeof err);
	if (rc == HT_ERR_IO && !o->model)
		return ht_cli_fail(CMD, "no default model at %s (run `make build`,"
				   " or give --model or --no-model --rules)",
				   path);
	if (rc)
		return ht_cli_fail(CMD, "%s: %s", path, err[0] ? err : ht_strerror(rc));
	return -1;
}

struct progress {
	bool quiet;
	uint64_t next_ns, start_ns;
};

static void progress(struct progress *pr, uint64_t n, bool last)
{
	if (pr->quiet)
		return;
	uint64_t now = ht_now_monotonic_ns();
	if (!last && now < pr->next_ns)
		return;
	pr->next_ns = now + 1000000000ull;
	double s = (double)(now - pr->start_ns) / 1e9;
	fprintf(stderr, "\rrisk score: %llu payments, %.0f/s%s",
		(unsigned long long)n, s > 0 ? (double)n / s : 0.0,
		last ? "\n" : "");
}

static int score_all(struct ht_risk_engine *e, FILE *in, const char *in_name,
		     FILE *out, bool quiet)
{
	struct ht_line_reader *lr;
	if (ht_line_reader_create(in, HT_PAYMENT_LINE_BYTES_MAX, &lr))
		return ht_cli_fail(CMD, "out of memory");
	uint64_t n = 0, bad = 0, counts[HT_DECISION__COUNT] = {0};
	struct progress pr = {quiet, 0, ht_now_monotonic_ns()};
	int rc = 0;
	for (;;) {
		const char *line;
		size_t len;
		uint64_t no;
		char err[256];
		enum ht_err le = ht_line_reader_next(lr, &line, &len, &no);
		if (le == HT_ERR_NOT_FOUND)
			break;
		if (le == HT_ERR_IO) {
			rc = ht_cli_fail(CMD, "%s: read error", in_name);
			break;
		}
		struct ht_payment p;
		if (le == HT_ERR_LIMIT)
			snprintf(err, sizeof err, "line longer than %d bytes",
				 HT_PAYMENT_LINE_BYTES_MAX);
		if (le || ht_payment_parse(line, len, &p, err, sizeof err)) {
			fprintf(stderr, "huitong %s: %s:%llu: %s (skipped)\n", CMD,
				in_name, (unsigned long long)no, err);
			bad++;
			continue;
		}
		struct ht_risk_decision d;
		enum ht_err de = ht_risk_engine_decide(e, &p, &d);
		if (de) {
			rc = ht_cli_fail(CMD, "%s:%llu: %s", in_name,
					 (unsigned long long)no, ht_strerror(de));
			break;
		}
		ht_risk_engine_record(e, &p);
		write_score(out, &p, &d);
		counts[d.decision]++;
		n++;
		progress(&pr, n, false);
	}
	ht_line_reader_destroy(lr);
	progress(&pr, n, true);
	if (!quiet) {
		struct ht_risk_state_stats st;
		ht_risk_engine_stats(e, &st);
		uint64_t ev = 0;
		for (int t = 0; t < HT_RISK_TABLE__COUNT; t++)
			ev += st.evictions[t];
		fprintf(stderr, "risk score: allow %llu, review %llu, block %llu;"
				" %llu malformed lines skipped; %llu payments"
				" out of time order (clamped); %llu evictions\n",
			(unsigned long long)counts[HT_DECISION_ALLOW],
			(unsigned long long)counts[HT_DECISION_REVIEW],
			(unsigned long long)counts[HT_DECISION_BLOCK],
			(unsigned long long)bad,
			(unsigned long long)st.clamped, (unsigned long long)ev);
	}
	if (!rc && bad)
		rc = 1;
	return rc;
}

size_t ht_cli_state_bytes(const char *cmd, const char *path, const char *mb)
{
	const size_t floor = (size_t)64 << 20, cap = HT_RISK_BYTES_DEFAULT;
	if (mb) {
		uint64_t v;
		if (!ht_cli_u64(cmd, "--state-mb", mb, &v))
			return 0;
		if (v < 1 || v > (HT_RISK_BYTES_MAX >> 20)) {
			ht_cli_fail(cmd, "--state-mb: want 1..%zu",
				    (size_t)(HT_RISK_BYTES_MAX >> 20));
			return 0;
		}
		return (size_t)v << 20;
	}
	struct stat st;
	if (!path || stat(path, &st) || !S_ISREG(st.st_mode))
		return cap;
	uint64_t want = 2 * (uint64_t)st.st_size;
	return want < floor ? floor : want > cap ? cap : (size_t)want;
}

int ht_cmd_risk_score(int argc, char **argv)
{
	struct opts o;
	int rc = parse_opts(argc, argv, &o);
	if (rc >= 0)
		return rc;
	struct ht_model *model = NULL;
	struct ht_ruleset *rs = NULL;
	struct ht_rules_holder *holder = NULL;
	struct ht_risk_engine *e = NULL;
	FILE *in = NULL, *out = NULL;
	if ((rc = load_model(&o, &model)) >= 0)
		goto done;
	if (o.rules) {
		if ((rc = ht_cli_load_rules(CMD, o.rules, ht_risk_rule_schema(),
					    &rs)) >= 0)
			goto done;
		if (ht_rules_holder_create(rs, &holder)) {
			rc = ht_cli_fail(CMD, "out of memory");
			goto done;
		}
		rs = NULL; /* the holder's now */
	}
	struct ht_risk_engine_config cfg = {.model = model, .rules = holder,
					    .block_threshold = o.block,
					    .review_threshold = o.review};
	cfg.state.bytes_max = ht_cli_state_bytes(CMD, strcmp(o.in, "-") ? o.in
								       : NULL,
						 o.state_mb);
	cfg.state.hash_seed = HT_CLI_RISK_HASH_SEED;
	if (!cfg.state.bytes_max) {
		rc = 2;
		goto done;
	}
	char err[256];
	enum ht_err ee = ht_risk_engine_open(&cfg, &e, err, sizeof err);
	if (ee) {
		rc = ht_cli_fail(CMD, "%s", err[0] ? err : ht_strerror(ee));
		goto done;
	}
	in = strcmp(o.in, "-") ? fopen(o.in, "r") : stdin;
	if (!in) {
		rc = ht_cli_fail(CMD, "%s: %s", o.in, strerror(errno));
		goto done;
	}
	out = strcmp(o.out, "-") ? fopen(o.out, "w") : stdout;
	if (!out) {
		rc = ht_cli_fail(CMD, "%s: %s", o.out, strerror(errno));
		goto done;
	}
	rc = score_all(e, in, o.in, out, o.quiet);
	if (fflush(out) || ferror(out))
		rc = ht_cli_fail(CMD, "%s: write error", o.out);
done:
	if (in && in != stdin)
		fclose(in);
	if (out && out != stdout && fclose(out) && !rc)
		rc = ht_cli_fail(CMD, "%s: write error", o.out);
	ht_risk_engine_close(e);
	ht_rules_holder_destroy(holder);
	ht_rules_release(rs);
	ht_model_destroy(model);
	return rc;
}

/*
 * cmd_sim.c — `huitong sim`: write simulated payments and their fraud
 * labels as interchange JSONL (docs/sim.md).
 *
 * Owner: sim. Options in, files out, a progress line on stderr; the
 * simulation itself is src/sim/. Exit 0 when both files are complete, 2 on
 * bad options or any failure (then the files are incomplete).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "huitong/sim.h"

static const char sim_usage[] =
	"usage: huitong sim --seed S --out PAYMENTS.jsonl --labels LABELS.jsonl\n"
	"                   [--parties N] [--days D] [--start YYYY-MM-DD]\n"
	"                   [--fraud-rate R] [--quiet]\n"
	"\n"
	"Simulate a payment network: customers, merchants, employers, utilities\n"
	"and cash agents at bankA, bankB, bankC, payA and payB, with normal\n"
	"behaviour (shopping by QR and card, transfers between friends, bills,\n"
	"payroll, cash) and injected fraud (account takeover, card testing,\n"
	"authorised push-payment scams, mule accounts). Writes one payment per\n"
	"line to --out (DESIGN.md \"Interchange JSONL\") in time order, and one\n"
	"label per payment, in the same order, to --labels:\n"
	"  {\"id\":\"t-000000001\",\"fraud\":false,\"type\":\"none\"}\n"
	"\n"
	"  --seed S         the world and everything in it (required; the same\n"
	"                   seed and options give the same files byte for byte)\n"
	"  --parties N      population, 100..1000000 (default 10000); about 2.9\n"
	"                   payments per party per day\n"
	"  --days D         days to simulate, 1..3660 (default 30)\n"
	"  --start DATE     first day, UTC (default 2026-03-01)\n"
	"  --fraud-rate R   share of fraudulent payments, 0..0.5 (default 0.005)\n"
	"  --quiet          no progress line on stderr\n"
	"\n"
	"The model, the fraud signatures and the speed: docs/sim.md.\n";

struct sim_cli {
	struct ht_sim_options o;
	const char *out, *labels;
	bool quiet, have_seed;
};

static bool parse_u32(const char *opt, const char *s, uint32_t min,
		      uint32_t max, uint32_t *out)
{
	uint64_t v;
	if (!ht_cli_u64("sim", opt, s, &v))
		return false;
	if (v < min || v > max) {
		ht_cli_fail("sim", "%s: must be %u..%u, got %s", opt, min, max, s);
		return false;
	}
	*out = (uint32_t)v;
	return true;
}

static bool parse_rate(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (!*s || *end || errno || !isfinite(v) || v < 0 ||
	    v > HT_SIM_FRAUD_RATE_MAX) {
		ht_cli_fail("sim", "--fraud-rate: expected a number from 0 to %g,"
				   " got '%s'", HT_SIM_FRAUD_RATE_MAX, s);
		return false;
	}
	*out = v;
	return true;
}

/* One option; false after printing why it is bad. */
static bool sim_option(struct sim_cli *c, int opt, const char *arg)
{
	switch (opt) {
	case 's':
		c->have_seed = true;
		return ht_cli_u64("sim", "--seed", arg, &c->o.seed);
	case 'n':
		return parse_u32("--parties", arg, HT_SIM_PARTIES_MIN,
				 HT_SIM_PARTIES_MAX, &c->o.parties);
	case 'd':
		return parse_u32("--days", arg, 1, HT_SIM_DAYS_MAX, &c->o.days);
	case 'S':
		if (ht_sim_date_parse(arg, &c->o.start_ms) == HT_OK)
			return true;
		ht_cli_fail("sim", "--start: expected a date YYYY-MM-DD, got '%s'",
			    arg);
		return false;
	case 'f':
		return parse_rate(arg, &c->o.fraud_rate);
	case 'o': c->out = arg; return true;
	case 'l': c->labels = arg; return true;
	case 'q': c->quiet = true; return true;
	default:
		fputs(sim_usage, stderr);
		return false;
	}
}

static bool parse_args(int argc, char **argv, struct sim_cli *c)
{
	static const struct option opts[] = {
		{"seed", required_argument, NULL, 's'},
		{"parties", required_argument, NULL, 'n'},
		{"days", required_argument, NULL, 'd'},
		{"start", required_argument, NULL, 'S'},
		{"fraud-rate", required_argument, NULL, 'f'},
		{"out", required_argument, NULL, 'o'},
		{"labels", required_argument, NULL, 'l'},
		{"quiet", no_argument, NULL, 'q'},
		{0, 0, 0, 0}};
	ht_sim_options_default(&c->o);
	int opt;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1)
		if (!sim_option(c, opt, optarg))
			return false;
	if (optind != argc) {
		ht_cli_fail("sim", "unexpected argument '%s'", argv[optind]);
		return false;
	}
	const char *missing = !c->have_seed ? "--seed S" : !c->out ? "--out FILE"
			      : !c->labels  ? "--labels FILE" : NULL;
	if (missing) {
		ht_cli_fail("sim", "%s is required (see huitong sim --help)", missing);
		return false;
	}
	if (!strcmp(c->out, c->labels)) {
		ht_cli_fail("sim", "--out and --labels must be different files");
		return false;
	}
	if (c->o.start_ms + (int64_t)c->o.days * 86400000LL > HT_PAYMENT_TS_MS_MAX + 1) {
		ht_cli_fail("sim", "--start and --days run past year 9999");
		return false;
	}
	return true;
}

struct progress {
	uint64_t start_ns, last_ns;
	bool tty;
};

static void on_progress(void *ctx, const struct ht_sim_stats *st)
{
	struct progress *pr = ctx;
	uint64_t now = ht_now_monotonic_ns();
	if (now - pr->last_ns < 1000000000ull)
		return;
	pr->last_ns = now;
	double secs = (double)(now - pr->start_ns) / 1e9;
	fprintf(stderr, "%shuitong sim: day %u/%u, %llu payments, %.0f/s%s",
		pr->tty ? "\r" : "", st->days_generated, st->days,
		(unsigned long long)st->payments,
		secs > 0 ? (double)st->payments / secs : 0.0, pr->tty ? "" : "\n");
}

static void summary(const struct ht_sim_stats *st, const struct progress *pr)
{
	double secs = (double)(ht_now_monotonic_ns() - pr->start_ns) / 1e9;
	uint64_t fraud = st->payments - st->by_type[HT_FRAUD_NONE];
	fprintf(stderr, "%shuitong sim: %llu payments in %u days, %.2f s"
			" (%.0f/s); fraud %llu (%.3f%%):",
		pr->tty ? "\r\033[K" : "", (unsigned long long)st->payments,
		st->days, secs, secs > 0 ? (double)st->payments / secs : 0.0,
		(unsigned long long)fraud,
		st->payments ? 100.0 * (double)fraud / (double)st->payments : 0.0);
	for (unsigned t = 1; t < HT_FRAUD__COUNT; t++)
		fprintf(stderr, " %s %llu", ht_fraud_type_name((enum ht_fraud_type)t),
			(unsigned long long)st->by_type[t]);
	fprintf(stderr, "\n");
}

/* Close f; false (after a message) when anything written was lost. */
static bool close_checked(FILE *f, const char *path)
{
	if (!f)
		return true;
	bool ok = !ferror(f);
	if (fclose(f) != 0)
		ok = false;
	if (!ok)
		ht_cli_fail("sim", "cannot write %s: %s", path, strerror(errno));
	return ok;
}

static int run(const struct sim_cli *c)
{
	struct ht_sim *s = NULL;
	enum ht_err err = ht_sim_create(&c->o, &s);
	if (err)
		return ht_cli_fail("sim", "cannot start: %s", ht_strerror(err));
	FILE *pay = fopen(c->out, "wb");
	FILE *lab = pay ? fopen(c->labels, "wb") : NULL;
	int rc = 0;
	if (!pay || !lab) {
		rc = ht_cli_fail("sim", "cannot open %s: %s",
				 pay ? c->labels : c->out, strerror(errno));
	} else {
		struct progress pr = {ht_now_monotonic_ns(), ht_now_monotonic_ns(),
				      isatty(STDERR_FILENO) == 1};
		err = ht_sim_write(s, pay, lab, c->quiet ? NULL : on_progress, &pr);
		if (err == HT_ERR_IO)
			rc = ht_cli_fail("sim", "cannot write output: %s",
					 strerror(errno));
		else if (err)
			rc = ht_cli_fail("sim", "%s", ht_strerror(err));
		struct ht_sim_stats st;
		ht_sim_stats(s, &st);
		if (!err && !c->quiet)
			summary(&st, &pr);
	}
	if (!close_checked(pay, c->out) && rc == 0)
		rc = 2;
	if (!close_checked(lab, c->labels) && rc == 0)
		rc = 2;
	ht_sim_destroy(s);
	return rc;
}

int ht_cmd_sim(int argc, char **argv)
{
	if (ht_cli_wants_help(argc, argv)) {
		fputs(sim_usage, stdout);
		return 0;
	}
	struct sim_cli c = {0};
	if (!parse_args(argc, argv, &c))
		return 2;
	return run(&c);
}

/*
 * cmd_qr.c — `huitong qr parse|make|make-cpm`: EMVCo payment QR codes from
 * the command line (DESIGN.md "QR", docs/qr.md).
 *
 * Owner: switch. Arguments in, JSON or a payload out, images to files;
 * the parsing, making and drawing are src/qr/. parse exits 0 for a valid
 * code and 1 for an invalid one; every command exits 2 on a usage error
 * or a failure (a refused SPEC included), with the reason on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "huitong/qr.h"

static const char qr_usage[] =
	"usage: huitong qr <command> [options]   (huitong qr <command> --help)\n"
	"\n"
	"commands:\n"
	"  parse     decode and check a payload (merchant- or consumer-presented)\n"
	"  make      make a merchant-presented (EMVCo MPM) payload, PNG, SVG\n"
	"  make-cpm  make a consumer-presented (EMVCo CPM) code, PNG, SVG\n";

static const char parse_usage[] =
	"usage: huitong qr parse PAYLOAD|-\n"
	"\n"
	"Decode one QR payload and print it as JSON on one line: \"valid\" (TLV\n"
	"structure, CRC-16/CCITT-FALSE and value formats right), \"complete\"\n"
	"(every EMVCo-mandatory object there), \"missing\" (the absent IDs),\n"
	"\"error\" (null or one of crc_mismatch, missing_crc, truncated,\n"
	"bad_length, bad_tag, duplicate_tag, bad_value, with \"error_at\" and\n"
	"\"error_tag\") and the decoded fields. A payload starting with \"hQVDUFY\"\n"
	"is a consumer-presented code (base64 BER-TLV) and is printed as its\n"
	"objects. With -, the payload is read from standard input (one line).\n"
	"Exit 0 when valid, 1 when not, 2 on a usage error. Formats and every\n"
	"check: docs/qr.md.\n";

static const char make_usage[] =
	"usage: huitong qr make --json SPEC [--png FILE] [--svg FILE]\n"
	"                       [--ec L|M|Q|H] [--scale PX] [--quiet-zone N]\n"
	"\n"
	"Make a merchant-presented payload and print it. SPEC is a JSON object,\n"
	"given inline or as @FILE (@- for standard input), e.g.\n"
	"  {\"point_of_initiation\":\"11\",\n"
	"   \"merchant_account\":{\"26\":{\"00\":\"cn.huitong\",\"01\":\"bankB:m77\"}},\n"
	"   \"mcc\":\"5812\",\"currency\":\"156\",\"amount\":\"23.72\",\"country\":\"CN\",\n"
	"   \"merchant_name\":\"Best Transport\",\"merchant_city\":\"Beijing\",\n"
	"   \"postal_code\":\"100000\",\"additional\":{\"05\":\"order-1\"},\n"
	"   \"alt_language\":{\"00\":\"ZH\",\"01\":\"最佳运输\",\"02\":\"北京\"}}\n"
	"merchant_account, mcc, currency, country, merchant_name and\n"
	"merchant_city are required; every key: docs/qr.md. The \"fields\" that\n"
	"`huitong qr parse` prints are a SPEC. A refused SPEC is named on stderr.\n"
	"\n"
	"  --png FILE        also draw it as PNG (libqrencode, libpng)\n"
	"  --svg FILE        also draw it as SVG\n"
	"  --ec L|M|Q|H      error correction (default M)\n"
	"  --scale PX        PNG pixels per module, 1..64 (default 8)\n"
	"  --quiet-zone N    blank modules around the symbol, 1..64 (default 4)\n";

static const char make_cpm_usage[] =
	"usage: huitong qr make-cpm --json SPEC [--png FILE] [--svg FILE]\n"
	"                           [--ec L|M|Q|H] [--scale PX] [--quiet-zone N]\n"
	"\n"
	"Make a consumer-presented code (base64 of BER-TLV: 85 \"CPV01\", one\n"
	"application template 61) carrying the payer's one-time token, and print\n"
	"it. SPEC (inline JSON, or @FILE, @- for standard input) has \"aid\" (hex,\n"
	"5..16 bytes), exactly one of \"pan\" (the token, 12..19 digits, into 5A)\n"
	"and \"track2\" (digits, D, YYMM, service code, ...: into 57), and\n"
	"optionally \"label\" (50), \"name\" (5F20) and \"language\" (5F2D, in a\n"
	"62 template), e.g.\n"
	"  {\"aid\":\"A000000333010102\",\"pan\":\"6212345678901234\",\"name\":\"ZHANG/SAN\"}\n"
	"Options as for make.\n";

/* The SPEC text: inline, or @FILE / @- read whole (bounded). NULL after
 * a message. The caller frees it. */
static char *spec_text(const char *cmd, const char *arg)
{
	if (arg[0] != '@')
		return strdup(arg);
	FILE *f = strcmp(arg, "@-") ? fopen(arg + 1, "rb") : stdin;
	if (!f) {
		ht_cli_fail(cmd, "cannot open %s: %s", arg + 1, strerror(errno));
		return NULL;
	}
	size_t cap = 64 * 1024, n = 0; /* a SPEC is well under 4 KiB */
	char *buf = malloc(cap);
	if (buf)
		n = fread(buf, 1, cap - 1, f);
	bool too_big = buf && n == cap - 1 && fgetc(f) != EOF;
	if (f != stdin)
		fclose(f);
	if (!buf || too_big) {
		free(buf);
		ht_cli_fail(cmd, "%s: %s", arg, buf ? "over 64 KiB" : "out of memory");
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static json_t *spec_json(const char *cmd, const char *arg)
{
	char *text = spec_text(cmd, arg);
	if (!text)
		return NULL;
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	if (!j)
		ht_cli_fail(cmd, "--json: not JSON: %s (line %d, column %d)",
			    jerr.text, jerr.line, jerr.column);
	return j;
}

struct make_cli {
	const char *cmd, *spec, *png, *svg;
	struct ht_qr_image_options img;
};

static bool parse_ec(const char *s, enum ht_qr_ec *out)
{
	static const char levels[] = "LMQH";
	const char *p = strlen(s) == 1 ? strchr(levels, s[0]) : NULL;
	if (!p)
		return false;
	*out = (enum ht_qr_ec)(HT_QR_EC_L + (p - levels));
	return true;
}

static bool make_args(int argc, char **argv, struct make_cli *c,
		      const char *usage)
{
	static const struct option opts[] = {
		{"json", required_argument, NULL, 'j'},
		{"png", required_argument, NULL, 'p'},
		{"svg", required_argument, NULL, 's'},
		{"ec", required_argument, NULL, 'e'},
		{"scale", required_argument, NULL, 'x'},
		{"quiet-zone", required_argument, NULL, 'q'},
		{0, 0, 0, 0}};
	uint64_t v;
	int opt;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'j': c->spec = optarg; break;
		case 'p': c->png = optarg; break;
		case 's': c->svg = optarg; break;
		case 'e':
			if (parse_ec(optarg, &c->img.ec))
				break;
			ht_cli_fail(c->cmd, "--ec: L, M, Q or H, got '%s'", optarg);
			return false;
		case 'x':
		case 'q':
			if (!ht_cli_u64(c->cmd, opt == 'x' ? "--scale" : "--quiet-zone",
					optarg, &v))
				return false;
			if (v < 1 || v > 64) {
				ht_cli_fail(c->cmd, "%s: 1..64", opt == 'x'
					    ? "--scale" : "--quiet-zone");
				return false;
			}
			*(opt == 'x' ? &c->img.module_px : &c->img.quiet_modules) =
				(unsigned)v;
			break;
		default:
			fputs(usage, stderr);
			return false;
		}
	}
	if (optind != argc) {
		ht_cli_fail(c->cmd, "unexpected argument '%s'", argv[optind]);
		return false;
	}
	if (!c->spec) {
		ht_cli_fail(c->cmd, "--json SPEC is required (see --help)");
		return false;
	}
	return true;
}

/* Draw text into path with write (PNG or SVG). */
static bool write_image(const char *cmd, const struct ht_qr_image *img,
			const struct ht_qr_image_options *o, const char *path,
			enum ht_err (*write)(const struct ht_qr_image *,
					     const struct ht_qr_image_options *,
					     FILE *))
{
	FILE *f = fopen(path, "wb");
	if (!f) {
		ht_cli_fail(cmd, "cannot open %s: %s", path, strerror(errno));
		return false;
	}
	enum ht_err e = write(img, o, f);
	if (fclose(f) && !e)
		e = HT_ERR_IO;
	if (e)
		ht_cli_fail(cmd, "cannot write %s: %s", path, ht_strerror(e));
	return !e;
}

/* Print the payload, then draw the images asked for. */
static int emit(const struct make_cli *c, const char *text, size_t len)
{
	printf("%s\n", text);
	if (!c->png && !c->svg)
		return fflush(stdout) ? 2 : 0;
	struct ht_qr_image *img;
	enum ht_err e = ht_qr_image_encode(text, len, &c->img, &img);
	if (e)
		return ht_cli_fail(c->cmd, "cannot encode the QR symbol: %s",
				   ht_strerror(e));
	bool ok = (!c->png || write_image(c->cmd, img, &c->img, c->png,
					  ht_qr_image_write_png)) &&
		  (!c->svg || write_image(c->cmd, img, &c->img, c->svg,
					  ht_qr_image_write_svg));
	ht_qr_image_free(img);
	return ok ? 0 : 2;
}

/* A maker: the SPEC into a code in out (NUL-terminated), or err. */
typedef enum ht_err (*maker_fn)(const char *cmd, const json_t *spec,
				char *out, size_t out_size, size_t *len,
				char *err, size_t err_size);

static enum ht_err make_mpm(const char *cmd, const json_t *spec, char *out,
			    size_t out_size, size_t *len, char *err,
			    size_t err_size)
{
	(void)cmd;
	return ht_qr_mpm_make(spec, out, out_size, len, err, err_size);
}

/* The CPM SPEC's strings into s (pointers into spec, which must live). */
static bool cpm_spec(const char *cmd, const json_t *spec,
		     struct ht_qr_cpm_spec *s)
{
	static const char *const keys[] = {"aid", "label", "pan", "track2",
					   "name", "language"};
	const char **slots[] = {&s->aid_hex, &s->label, &s->pan, &s->track2,
				&s->name, &s->language};
	if (!json_is_object(spec)) {
		ht_cli_fail(cmd, "the SPEC must be a JSON object");
		return false;
	}
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)spec, k, v) {
		size_t i = 0;
		while (i < 6 && strcmp(keys[i], k))
			i++;
		if (i == 6 || !json_is_string(v)) {
			ht_cli_fail(cmd, i == 6 ? "unknown field '%s' (see --help)"
						: "%s: expected a string", k);
			return false;
		}
		*slots[i] = json_string_value(v);
	}
	return true;
}

/* HT_ERR_INVALID with err empty when cpm_spec has said why already. */
static enum ht_err make_cpm(const char *cmd, const json_t *spec, char *out,
			    size_t out_size, size_t *len, char *err,
			    size_t err_size)
{
	struct ht_qr_cpm_spec s = {0};
	if (!cpm_spec(cmd, spec, &s))
		return HT_ERR_INVALID;
	return ht_qr_cpm_make(&s, out, out_size, len, err, err_size);
}

/* make and make-cpm: options, SPEC, code, images. */
static int run_make(int argc, char **argv, const char *cmd,
		    const char *usage, maker_fn make)
{
	if (ht_cli_wants_help(argc, argv)) {
		fputs(usage, stdout);
		return 0;
	}
	struct make_cli c = {.cmd = cmd};
	if (!make_args(argc, argv, &c, usage))
		return 2;
	json_t *spec = spec_json(c.cmd, c.spec);
	if (!spec)
		return 2;
	char out[HT_QR_MPM_BYTES_MAX + HT_QR_CPM_TEXT_MAX + 1], err[256] = "";
	size_t len;
	enum ht_err e = make(cmd, spec, out, sizeof out, &len, err, sizeof err);
	json_decref(spec);
	if (e)
		return err[0] ? ht_cli_fail(c.cmd, "%s", err) : 2;
	return emit(&c, out, len);
}

static int cmd_make(int argc, char **argv)
{
	return run_make(argc, argv, "qr make", make_usage, make_mpm);
}

static int cmd_make_cpm(int argc, char **argv)
{
	return run_make(argc, argv, "qr make-cpm", make_cpm_usage, make_cpm);
}

/* One line of standard input, its line end dropped; NULL after a message. */
static char *stdin_line(void)
{
	static char buf[HT_QR_MPM_BYTES_MAX + HT_QR_CPM_TEXT_MAX + 2];
	if (!fgets(buf, sizeof buf, stdin)) {
		ht_cli_fail("qr parse", "nothing on standard input");
		return NULL;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	return buf;
}

static int cmd_parse(int argc, char **argv)
{
	if (ht_cli_wants_help(argc, argv)) {
		fputs(parse_usage, stdout);
		return 0;
	}
	if (argc != 2) {
		fputs(parse_usage, stderr);
		return 2;
	}
	const char *p = strcmp(argv[1], "-") ? argv[1] : stdin_line();
	if (!p)
		return 2;
	size_t len = strlen(p);
	json_t *j = NULL;
	bool valid;
	enum ht_err e;
	if (!strncmp(p, "hQVDUFY", 7)) {
		struct ht_qr_cpm *c = malloc(sizeof *c);
		if (!c)
			return ht_cli_fail("qr parse", "out of memory");
		valid = ht_qr_cpm_parse(p, len, c) == HT_QR_OK;
		e = ht_qr_cpm_to_json(c, &j);
		free(c);
	} else {
		struct ht_qr_mpm m;
		valid = ht_qr_mpm_parse(p, len, &m) == HT_QR_OK;
		e = ht_qr_mpm_to_json(&m, &j);
	}
	if (e)
		return ht_cli_fail("qr parse", "%s", ht_strerror(e));
	int rc = json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (rc || putchar('\n') == EOF || fflush(stdout))
		return ht_cli_fail("qr parse", "cannot write the result");
	return valid ? 0 : 1;
}

int ht_cmd_qr(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} subs[] = {{"parse", cmd_parse}, {"make", cmd_make},
		    {"make-cpm", cmd_make_cpm}};
	if (argc < 2) {
		fputs(qr_usage, stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(qr_usage, stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
		if (!strcmp(argv[1], subs[i].name))
			return subs[i].fn(argc - 1, argv + 1);
	return ht_cli_fail("qr", "unknown command '%s' (see huitong qr --help)",
			   argv[1]);
}

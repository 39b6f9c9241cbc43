/*
 * cli_util.c — helpers shared by the subcommands.
 *
 * Owner: cli.
 */
#include "cli_util.h"
#include "huitong/liquidity.h"

#include <stdarg.h>
#include <string.h>

int ht_cli_fail(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "huitong %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 2;
}

int ht_cli_open_switch(const char *cmd, const char *data, struct ht_hub **hub,
		       struct ht_liq **liq)
{
	if (ht_cli_open(cmd, data, false, hub))
		return 2;
	char err[512];
	enum ht_err e = ht_liq_open(data, *hub, liq, err, sizeof err);
	if (e) {
		ht_hub_close(*hub);
		return ht_cli_fail(cmd, "%s", err);
	}
	return 0;
}

enum ht_err ht_cli_open(const char *cmd, const char *data, bool readonly,
			struct ht_hub **out)
{
	if (!data) {
		ht_cli_fail(cmd, "--data DIR is required");
		return HT_ERR_INVALID;
	}
	struct ht_hub_open_options opt = {.readonly = readonly};
	enum ht_err err = ht_hub_open(data, &opt, out);
	switch (err) {
	case HT_OK:
		break;
	case HT_ERR_NOT_FOUND:
		ht_cli_fail(cmd, "%s is not a huitong store (run huitong init"
				 " --data %s first)", data, data);
		break;
	case HT_ERR_LOCKED:
		ht_cli_fail(cmd, "%s is open for writing by another process"
				 " (one writer per store)", data);
		break;
	default:
		ht_cli_fail(cmd, "cannot open %s: %s", data, ht_strerror(err));
	}
	return err;
}

bool ht_cli_u128(const char *cmd, const char *opt, const char *s, ht_u128 *out)
{
	if (s && ht_u128_parse(s, strlen(s), out) == HT_OK)
		return true;
	ht_cli_fail(cmd, "%s: expected a decimal integer below 2^128, got '%s'",
		    opt, s ? s : "");
	return false;
}

bool ht_cli_u64(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
	if (s && ht_u64_parse(s, strlen(s), out) == HT_OK)
		return true;
	ht_cli_fail(cmd, "%s: expected a decimal integer below 2^64, got '%s'",
		    opt, s ? s : "");
	return false;
}

bool ht_cli_u64_opt(const char *cmd, const char *opt, const char *s,
		    uint64_t max, uint64_t *out)
{
	*out = 0;
	if (!s)
		return true;
	if (!ht_cli_u64(cmd, opt, s, out))
		return false;
	if (*out <= max)
		return true;
	ht_cli_fail(cmd, "%s: at most %llu", opt, (unsigned long long)max);
	return false;
}

bool ht_cli_user_data(const char *cmd, const char *s, char *out, uint8_t *len)
{
	size_t n = s ? strlen(s) : 0;
	if (n > HT_USER_DATA_BYTES_MAX) {
		ht_cli_fail(cmd, "--user-data: at most %d bytes",
			    HT_USER_DATA_BYTES_MAX);
		return false;
	}
	memcpy(out, s ? s : "", n);
	*len = (uint8_t)n;
	return true;
}

bool ht_cli_flags(const char *cmd, const char *s,
		  enum ht_err (*parse)(const char *, size_t, uint16_t *),
		  uint16_t *out)
{
	*out = 0;
	while (s && *s) {
		size_t n = strcspn(s, ",");
		uint16_t bit;
		if (parse(s, n, &bit) != HT_OK) {
			ht_cli_fail(cmd, "unknown flag '%.*s'", (int)n, s);
			return false;
		}
		*out |= bit;
		s += n + (s[n] == ',');
	}
	return true;
}

bool ht_cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	return false;
}

void ht_cli_json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

int ht_cli_usage_or_help(int argc, char **argv, const char *usage)
{
	if (argc >= 2 && !ht_cli_wants_help(argc, argv))
		return -1;
	fputs(usage, argc < 2 ? stderr : stdout);
	return argc < 2 ? 2 : 0;
}

/*
 * cli_util.h — small helpers shared by the subcommands: opening a store
 * with a clear message, parsing numeric options, printing errors.
 *
 * Owner: cli.
 */
#ifndef HUITONG_CLI_UTIL_H
#define HUITONG_CLI_UTIL_H

#include <stdio.h>

#include "huitong/hub.h"

/* Print "huitong <cmd>: <msg>" to stderr; returns 2 (the failure exit code). */
int ht_cli_fail(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Open the store at data with a message on failure naming the cause. */
enum ht_err ht_cli_open(const char *cmd, const char *data, bool readonly,
			struct ht_hub **out);

/* Open the store at data as its writer and the switch's liquidity over
 * it (DATA/switch.db); 0, or 2 with a message. Close with ht_liq_close
 * and ht_hub_close. */
struct ht_liq;
int ht_cli_open_switch(const char *cmd, const char *data, struct ht_hub **hub,
		       struct ht_liq **liq);

/* Parse numeric option values; print a message naming opt on failure. */
bool ht_cli_u128(const char *cmd, const char *opt, const char *s, ht_u128 *out);
bool ht_cli_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);
/* An optional number: s NULL gives 0; otherwise a u64 at most max. */
bool ht_cli_u64_opt(const char *cmd, const char *opt, const char *s,
		    uint64_t max, uint64_t *out);
/* --user-data: s (NULL is empty) copied into out, at most
 * HT_USER_DATA_BYTES_MAX bytes, its length into *len. */
bool ht_cli_user_data(const char *cmd, const char *s, char *out, uint8_t *len);

/* Parse a comma-separated flag list with parse (ht_account_flag_parse or
 * ht_transfer_flag_parse) into a bit set. */
bool ht_cli_flags(const char *cmd, const char *s,
		  enum ht_err (*parse)(const char *, size_t, uint16_t *),
		  uint16_t *out);

/* Write s to out as a JSON string: quoted, '"' and '\\' escaped, control
 * characters as \u00XX; other bytes as they are. */
void ht_cli_json_string(FILE *out, const char *s);

/* True when argv has --help or -h anywhere. */
bool ht_cli_wants_help(int argc, char **argv);
/* For a command with subcommands: no subcommand prints usage to stderr
 * (returns 2), --help or -h prints it to stdout (returns 0); otherwise -1,
 * go on. */
int ht_cli_usage_or_help(int argc, char **argv, const char *usage);

#endif

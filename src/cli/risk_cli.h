/*
 * risk_cli.h — what the `huitong risk` subcommands share.
 *
 * Owner: risk.
 */
#ifndef HUITONG_RISK_CLI_H
#define HUITONG_RISK_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "huitong/rules.h"

/*
 * Parse the rule file at path against schema, printing every error as
 * "path:line:column: message" on stderr. Returns -1 with *out on success,
 * else the exit code: 1 when the file is invalid, 2 when it cannot be
 * read. (cmd_risk_rules.c)
 */
int ht_cli_load_rules(const char *cmd, const char *path,
		      const struct ht_rule_schema *schema,
		      struct ht_ruleset **out);

/*
 * The features state's budget for an offline run over the file at path:
 * mb MiB when given (--state-mb), else twice the file's size (about what
 * the parties of a file that size need), at least 64 MiB and at most
 * HT_RISK_BYTES_DEFAULT (4 GiB, 10M parties); 4 GiB when path is not a
 * regular file. A small file then never touches gigabytes. Returns 0 after
 * printing an error for a bad mb.
 */
size_t ht_cli_state_bytes(const char *cmd, const char *path, const char *mb);

/* Where the default model is: $HUITONG_MODEL, else models/default.model
 * beside the binary (the build tree's, where `make build` puts it); false
 * when the path cannot be made. `risk score` and `serve --risk` use it.
 * (cmd_risk_score.c) */
bool ht_cli_default_model_path(char *out, size_t size);

/* The features state's hash seed in offline runs (score, train, test): a
 * fixed one, so a run repeats exactly (which entries compete for room,
 * and so are evicted, depends on it) and training and scoring see the
 * same features. The live server draws a random one. */
#define HT_CLI_RISK_HASH_SEED 0x687569746f6e6731ull

#endif

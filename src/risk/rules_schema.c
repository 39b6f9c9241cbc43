/*
 * rules_schema.c — the provisional feature catalogue the rule tools use
 * until the feature module publishes the real one, and name lookup in a
 * schema.
 *
 * Owner: risk. This is the ONE place the provisional names are listed
 * (docs/risk-rules.md repeats them for readers): `huitong risk check|test`
 * reach them through their schema function in cmd_risk_rules.c, and the
 * fuzz target, benchmark and unit tests through ht_rules_schema_provisional.
 * When include/huitong/features.h lands, the CLI's function returns the
 * catalogue's schema instead and this list goes. Times are in seconds,
 * amounts in minor units (fen).
 */
#include "huitong/rules.h"

#include <string.h>

static const char *const provisional_num[] = {
	"amount",                    /* minor units */
	"hour",                      /* 0..23, of the payment's ts (UTC) */
	"payer.count_1m", "payer.count_1h", "payer.count_24h", "payer.count_7d",
	"payer.sum_1m", "payer.sum_1h", "payer.sum_24h", "payer.sum_7d",
	"payer.distinct_payees_24h",
	"payer.age",                 /* seconds since first seen */
	"payer.amount_ratio",        /* amount / the payer's usual amount */
	"payee.count_1h", "payee.count_24h", "payee.distinct_payers_24h",
	"payee.age",
	"device.first_seen",         /* seconds since first seen for the payer */
	"device.new_for_payer",      /* 1 or 0 */
	"device.distinct_payers_24h",
	"ip.distinct_payers_24h",
	"pair.count_7d",
	"pair.first_seen",           /* seconds since payer first paid payee */
	"amount.under_line",         /* 1 when just under a reporting line */
};

static const char *const provisional_str[] = {
	"payer", "payee", "payer_participant", "payee_participant",
	"device", "ip", "channel", "currency",
};

static const struct ht_rule_schema provisional = {
	.num_count = sizeof provisional_num / sizeof provisional_num[0],
	.num_names = provisional_num,
	.str_count = sizeof provisional_str / sizeof provisional_str[0],
	.str_names = provisional_str,
};

const struct ht_rule_schema *ht_rules_schema_provisional(void)
{
	return &provisional;
}

enum ht_err ht_rule_schema_find(const struct ht_rule_schema *schema,
				const char *name, enum ht_rule_type *type,
				size_t *index)
{
	if (!schema || !name)
		return HT_ERR_NOT_FOUND;
	for (size_t i = 0; i < schema->num_count; i++)
		if (!strcmp(schema->num_names[i], name)) {
			*type = HT_RULE_TYPE_NUMBER;
			*index = i;
			return HT_OK;
		}
	for (size_t i = 0; i < schema->str_count; i++)
		if (!strcmp(schema->str_names[i], name)) {
			*type = HT_RULE_TYPE_STRING;
			*index = i;
			return HT_OK;
		}
	return HT_ERR_NOT_FOUND;
}

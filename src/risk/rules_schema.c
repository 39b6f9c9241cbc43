/*
 * rules_schema.c — name lookup in a rule schema.
 *
 * Owner: risk. The schema huitong's tools use is the feature catalogue
 * (ht_risk_rule_schema, risk.h); a schema is any list of names, so tests
 * and `huitong risk check --features` can bring their own.
 */
#include "huitong/rules.h"

#include <string.h>

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

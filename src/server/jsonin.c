/*
 * jsonin.c — member checks of JSON bodies (jsonin.h).
 *
 * Owner: server.
 */
#include "jsonin.h"

#include <string.h>

const char *srv_json_unknown(json_t *o, const char *const *allowed)
{
	const char *key;
	json_t *m;
	json_object_foreach(o, key, m) {
		bool ok = false;
		for (size_t i = 0; allowed[i] && !ok; i++)
			ok = !strcmp(key, allowed[i]);
		if (!ok)
			return key;
	}
	return NULL;
}

bool srv_json_str_ok(const json_t *m, size_t max)
{
	return json_is_string(m) && json_string_length(m) &&
	       json_string_length(m) <= max &&
	       strlen(json_string_value(m)) == json_string_length(m);
}

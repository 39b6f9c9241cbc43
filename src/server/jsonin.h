/*
 * jsonin.h — the checks every JSON body of the API's handwritten routes
 * makes on its members (switchapi.c, payments.c).
 *
 * Owner: server. Pure functions of a jansson value; no allocation.
 */
#ifndef HUITONG_SRV_JSONIN_H
#define HUITONG_SRV_JSONIN_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* The first member of object o whose name is not among allowed (a
 * NULL-terminated list), or NULL when every one is. */
const char *srv_json_unknown(json_t *o, const char *const *allowed);
/* Is m a string of 1..max bytes without a NUL inside? */
bool srv_json_str_ok(const json_t *m, size_t max);

#endif

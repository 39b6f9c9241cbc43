/*
 * qr_internal.h — what the QR module's files share and nobody else sees:
 * the value format rules (the parser checks what it reads with them, the
 * maker what it writes) and UTF-8 character counting.
 *
 * Owner: switch (src/qr/).
 */
#ifndef HUITONG_QR_INTERNAL_H
#define HUITONG_QR_INTERNAL_H

#include "huitong/qr.h"

/* Whether v[0..n) is an acceptable value for the top-level object id
 * (sub < 0) or for sub-field sub of template id (docs/qr.md "Values"). */
bool ht_qr_mpm_value_ok(int id, int sub, const char *v, size_t n);

/* Whether v[0..n) is an acceptable value for the CPM primitive tag
 * (docs/qr.md "CPM"); tags without a rule are accepted. */
bool ht_qr_cpm_value_ok(uint32_t tag, const uint8_t *v, size_t n);

/* Characters (code points) in the valid UTF-8 string s[0..n). */
size_t ht_qr_utf8_chars(const char *s, size_t n);

#endif

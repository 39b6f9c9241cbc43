/*
 * fuzz_switch_values.c — the switch's checks of outside values: alias
 * values of every kind (ht_alias_normalise), token and account numbers
 * (Luhn), block-list and alias kinds, channels. Any bytes; the first byte
 * picks the alias kind. Checked: nothing aborts or reads out of bounds; a
 * value that normalises is printable ASCII of the same length, normalises
 * to itself again (idempotent) and is refused with a reason otherwise;
 * appending the Luhn digit to digits always gives a Luhn-valid number.
 *
 * Owner: switch. Corpus: tests/fuzz/corpus/fuzz_switch_values (one value
 * of each kind, a few refused ones).
 */
#include <stdlib.h>
#include <string.h>

#include "huitong/alias.h"
#include "huitong/blocklist.h"
#include "huitong/payment.h"
#include "huitong/vault.h"

#define CHECK(e) ((e) ? (void)0 : abort())

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (!size)
		return 0;
	enum ht_alias_kind kind = (enum ht_alias_kind)(data[0] % 6);
	const char *v = (const char *)data + 1;
	size_t len = size - 1;
	char out[HT_ALIAS_VALUE_MAX + 1], again[HT_ALIAS_VALUE_MAX + 1];
	const char *why = NULL;
	enum ht_err rc = ht_alias_normalise(kind, v, len, out, &why);
	if (!rc) {
		CHECK(why == NULL);
		CHECK(strlen(out) == len);
		for (size_t i = 0; i < len; i++)
			CHECK((unsigned char)out[i] > 0x20 && (unsigned char)out[i] < 0x7f);
		CHECK(!ht_alias_normalise(kind, out, len, again, NULL));
		CHECK(!strcmp(out, again));
	} else {
		CHECK(rc == HT_ERR_INVALID && why && *why);
	}
	/* digits: Luhn */
	bool digits = len > 0 && len < 40;
	for (size_t i = 0; digits && i < len; i++)
		digits = v[i] >= '0' && v[i] <= '9';
	if (digits) {
		char num[48];
		memcpy(num, v, len);
		num[len] = ht_luhn_digit(num, len);
		CHECK(ht_luhn_valid(num, len + 1));
		(void)ht_luhn_valid(v, len);
	}
	/* kind and channel names */
	enum ht_alias_kind ak;
	enum ht_block_kind bk;
	enum ht_channel ch;
	if (!ht_alias_kind_parse(v, len, &ak))
		CHECK(strlen(ht_alias_kind_name(ak)) == len);
	if (!ht_block_kind_parse(v, len, &bk))
		CHECK(strlen(ht_block_kind_name(bk)) == len);
	if (!ht_channel_parse(v, len, &ch))
		CHECK(strlen(ht_channel_name(ch)) == len);
	return 0;
}

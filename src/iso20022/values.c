/*
 * values.c — the ISO 20022 simple types the pacs.008 reader checks:
 * decimals (exact, as integers scaled by 10^17), ISO 4217 currencies and
 * their minor units, BICs, IBANs, UETRs, dates, and the names of reason
 * and status codes.
 *
 * Owner: iso20022. Pure functions over bounded strings: no allocation,
 * no libxml2, nothing read beyond len.
 */
#include <stdio.h>
#include <string.h>

#include "iso_internal.h"

static const char *const reason_names[HT_ISO_REASON__COUNT] = {
	[HT_ISO_FF01] = "FF01", [HT_ISO_AM10] = "AM10", [HT_ISO_AM18] = "AM18",
	[HT_ISO_AM01] = "AM01", [HT_ISO_AM02] = "AM02", [HT_ISO_AM03] = "AM03",
	[HT_ISO_AM12] = "AM12", [HT_ISO_AC01] = "AC01", [HT_ISO_RC01] = "RC01",
	[HT_ISO_DUPL] = "DUPL", [HT_ISO_AC04] = "AC04", [HT_ISO_AC06] = "AC06",
	[HT_ISO_AM04] = "AM04", [HT_ISO_RR04] = "RR04",
};

const char *ht_iso_reason_name(enum ht_iso_reason r)
{
	return (unsigned)r < HT_ISO_REASON__COUNT ? reason_names[r] : NULL;
}

const char *ht_iso_status_name(enum ht_iso_status s)
{
	switch (s) {
	case HT_ISO_ACSC: return "ACSC";
	case HT_ISO_RJCT: return "RJCT";
	case HT_ISO_PART: return "PART";
	}
	return NULL;
}

void iso_reason_set(enum ht_iso_reason *reason, char *detail,
		    enum ht_iso_reason code, const char *fmt, ...)
{
	HT_ASSERT(code != HT_ISO_REASON_NONE);
	HT_ASSERT(code < HT_ISO_REASON__COUNT);
	if (*reason != HT_ISO_REASON_NONE)
		return;
	*reason = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, HT_ISO_DETAIL_BYTES, fmt, ap);
	va_end(ap);
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static bool is_upper_alnum(char c) { return is_upper(c) || is_digit(c); }

static const ht_u128 e17 = (ht_u128)100000000000000000ull;

bool iso_dec_parse(const char *s, size_t len, unsigned total_max,
		   unsigned frac_max, struct iso_dec *out, const char **why)
{
	HT_ASSERT(frac_max <= 17);
	HT_ASSERT(total_max <= 18);
	size_t i = 0;
	if (i < len && s[i] == '-') {
		*why = "negative";
		return false;
	}
	if (i < len && s[i] == '+')
		i++;
	uint64_t ip = 0, fp = 0;
	unsigned int_digits = 0, frac = 0, any = 0;
	for (; i < len && is_digit(s[i]); i++, any++) {
		if (!int_digits && s[i] == '0')
			continue; /* leading zeros do not count */
		if (++int_digits > total_max)
			break;
		ip = ip * 10 + (uint64_t)(s[i] - '0');
	}
	if (i < len && s[i] == '.')
		for (i++; i < len && is_digit(s[i]); i++, any++) {
			if (++frac > frac_max)
				break;
			fp = fp * 10 + (uint64_t)(s[i] - '0');
		}
	if (int_digits > total_max || int_digits + frac > total_max) {
		*why = "more than 18 digits";
		return false;
	}
	if (frac > frac_max) {
		*why = "too many fraction digits";
		return false;
	}
	if (i != len || !any) {
		*why = "not a decimal number";
		return false;
	}
	ht_u128 scale = 1;
	for (unsigned k = frac; k < 17; k++)
		scale *= 10;
	out->e17 = (ht_u128)ip * e17 + (ht_u128)fp * scale;
	out->frac_digits = frac;
	return true;
}

/* A small ISO 4217 table: the currencies huitong settles in. */
static const struct {
	char code[4];
	int exponent;
} currencies[] = {
	{"CNY", 2}, {"EUR", 2}, {"USD", 2}, {"JPY", 0}, {"GBP", 2},
	{"HKD", 2}, {"CHF", 2}, {"SGD", 2}, {"KRW", 0}, {"KWD", 3},
};

int iso_currency_exponent(const char *ccy)
{
	for (size_t i = 0; i < sizeof currencies / sizeof currencies[0]; i++)
		if (!strcmp(currencies[i].code, ccy))
			return currencies[i].exponent;
	return -1;
}

bool iso_ccy_form(const char *s, size_t len)
{
	return len == 3 && is_upper(s[0]) && is_upper(s[1]) && is_upper(s[2]);
}

bool ht_iso_bic_valid(const char *s, size_t len)
{
	return iso_bic_valid(s, len);
}

bool iso_bic_valid(const char *s, size_t len)
{
	if (len != 8 && len != 11)
		return false;
	for (size_t i = 0; i < len; i++) {
		bool ok = (i == 4 || i == 5) ? is_upper(s[i]) : is_upper_alnum(s[i]);
		if (!ok)
			return false;
	}
	return true;
}

bool iso_iban_valid(const char *s, size_t len)
{
	if (len < 5 || len > 34 || !is_upper(s[0]) || !is_upper(s[1]) ||
	    !is_digit(s[2]) || !is_digit(s[3]))
		return false;
	/* ISO 7064 MOD 97-10 over the IBAN rotated by four, letters as
	 * 10..35, computed digit by digit. */
	unsigned rem = 0;
	for (size_t k = 0; k < len; k++) {
		char c = s[(k + 4) % len];
		if (is_digit(c))
			rem = (rem * 10 + (unsigned)(c - '0')) % 97;
		else if (is_upper(c))
			rem = (rem * 100 + (unsigned)(c - 'A' + 10)) % 97;
		else
			return false;
	}
	return rem == 1;
}

static bool is_lower_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f');
}

bool iso_uetr_valid(const char *s, size_t len)
{
	if (len != 36)
		return false;
	for (size_t i = 0; i < len; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !is_lower_hex(s[i]))
			return false;
	}
	return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static unsigned num(const char *s, size_t n)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	return v;
}

static bool digits_at(const char *s, const char *shape)
{
	/* shape: 'd' a digit, anything else itself */
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == 'd' ? !is_digit(s[i]) : s[i] != shape[i])
			return false;
	return true;
}

bool iso_date_valid(const char *s, size_t len)
{
	static const unsigned mdays[] = {31, 29, 31, 30, 31, 30,
					 31, 31, 30, 31, 30, 31};
	if (len != 10 || !digits_at(s, "dddd-dd-dd"))
		return false;
	unsigned y = num(s, 4), m = num(s + 5, 2), d = num(s + 8, 2);
	if (y < 1 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return false;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return !(m == 2 && d == 29 && !leap);
}

bool iso_datetime_valid(const char *s, size_t len)
{
	if (len < 19 || !iso_date_valid(s, 10) ||
	    !digits_at(s + 10, "Tdd:dd:dd"))
		return false;
	if (num(s + 11, 2) > 23 || num(s + 14, 2) > 59 || num(s + 17, 2) > 59)
		return false;
	size_t i = 19;
	if (i < len && s[i] == '.') {
		size_t start = ++i;
		while (i < len && is_digit(s[i]))
			i++;
		if (i == start)
			return false;
	}
	if (i == len)
		return true;
	if (s[i] == 'Z')
		return i + 1 == len;
	if ((s[i] != '+' && s[i] != '-') || len - i != 6 ||
	    !digits_at(s + i + 1, "dd:dd"))
		return false;
	return num(s + i + 1, 2) <= 14 && num(s + i + 4, 2) <= 59;
}

size_t iso_utf8_chars(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xc0) != 0x80;
	return n;
}

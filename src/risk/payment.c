/*
 * payment.c — the interchange JSONL codec of DESIGN.md: payment lines and
 * the simulator's label lines, in and out, and the names of channels and
 * fraud types.
 *
 * Owner: risk. Reading handles outside input (files given to `huitong risk
 * score|train`, supervision, import). Flat lines of known keys and plain
 * ASCII values, what the simulator and most producers write, are read by
 * a one-pass scanner without allocating (jansson costs several times
 * more per line, and `risk score` reads millions); anything else goes to
 * jansson after a cheap bounded pre-scan has rejected NUL bytes and deep
 * nesting. Both readers hand the same values to the same field checks, so
 * they accept and refuse the same lines with the same messages. Every
 * field is checked against its bound in payment.h before it is copied
 * (refused, never truncated). Writing is by hand, without printf: the
 * simulator writes ten million lines through it. What ht_payment_format writes, ht_payment_parse reads back
 * to the same struct (the fuzz target checks it). This module converts
 * between text and struct ht_payment; it never scores, stores or keeps
 * state.
 */
#include "huitong/payment.h"
#include "huitong/registry.h"

_Static_assert(HT_PAYMENT_PARTICIPANT_BYTES == HT_REGISTRY_ID_BYTES_MAX + 1,
	       "a payment names any participant the registry can hold");

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Bytes of a user-supplied value quoted in an error message. */
#define QUOTE_BYTES_MAX 40u

/* ---- names ------------------------------------------------------------- */

static const char *const channel_names[HT_CHANNEL__COUNT] = {
	[HT_CHANNEL_P2P] = "p2p",
	[HT_CHANNEL_QR] = "qr",
	[HT_CHANNEL_CARD] = "card",
	[HT_CHANNEL_TRANSFER] = "transfer",
	[HT_CHANNEL_CASH_IN] = "cash_in",
	[HT_CHANNEL_CASH_OUT] = "cash_out",
	[HT_CHANNEL_BILL] = "bill",
};

static const char *const fraud_names[HT_FRAUD__COUNT] = {
	[HT_FRAUD_NONE] = "none",
	[HT_FRAUD_ACCOUNT_TAKEOVER] = "account_takeover",
	[HT_FRAUD_CARD_TESTING] = "card_testing",
	[HT_FRAUD_APP_SCAM] = "app_scam",
	[HT_FRAUD_MULE] = "mule",
};

const char *ht_channel_name(enum ht_channel c)
{
	if ((unsigned)c >= HT_CHANNEL__COUNT)
		return NULL;
	return channel_names[c];
}

/* Index of s[0..len) in names[0..n), or -1. */
static int name_index(const char *const *names, unsigned n, const char *s,
		      size_t len)
{
	for (unsigned i = 0; i < n; i++)
		if (strlen(names[i]) == len && !memcmp(names[i], s, len))
			return (int)i;
	return -1;
}

enum ht_err ht_channel_parse(const char *s, size_t len, enum ht_channel *out)
{
	int i = s ? name_index(channel_names, HT_CHANNEL__COUNT, s, len) : -1;
	if (i < 0)
		return HT_ERR_INVALID;
	*out = (enum ht_channel)i;
	return HT_OK;
}

const char *ht_fraud_type_name(enum ht_fraud_type t)
{
	if ((unsigned)t >= HT_FRAUD__COUNT)
		return NULL;
	return fraud_names[t];
}

enum ht_err ht_fraud_type_parse(const char *s, size_t len,
				enum ht_fraud_type *out)
{
	int i = s ? name_index(fraud_names, HT_FRAUD__COUNT, s, len) : -1;
	if (i < 0)
		return HT_ERR_INVALID;
	*out = (enum ht_fraud_type)i;
	return HT_OK;
}

/* ---- timestamps -------------------------------------------------------- */

#define MS_PER_DAY 86400000LL

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil; exact for every year used here). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* The inverse, for days ≥ 0. */
static void civil_from_days(int64_t z, unsigned *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = z / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (unsigned)(yoe + era * 400) + (*m <= 2);
}

static bool leap_year(unsigned y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
	static const unsigned char dm[12] = {31, 28, 31, 30, 31, 30,
					     31, 31, 30, 31, 30, 31};
	return m == 2 && leap_year(y) ? 29 : dm[m - 1];
}

/* n ASCII digits at s as a number, or -1. */
static int digits(const char *s, unsigned n)
{
	int v = 0;
	for (unsigned i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* "YYYY-MM-DDTHH:MM:SS" at s (19 bytes) into fields; false when not. */
static bool ts_fields(const char *s, int f[6])
{
	static const char seps[] = "--T::";
	static const unsigned char at[] = {4, 7, 10, 13, 16};
	for (unsigned i = 0; i < 5; i++)
		if (s[at[i]] != seps[i])
			return false;
	f[0] = digits(s, 4);
	f[1] = digits(s + 5, 2);
	f[2] = digits(s + 8, 2);
	f[3] = digits(s + 11, 2);
	f[4] = digits(s + 14, 2);
	f[5] = digits(s + 17, 2);
	for (unsigned i = 0; i < 6; i++)
		if (f[i] < 0)
			return false;
	return f[0] >= 1970 && f[1] >= 1 && f[1] <= 12 && f[2] >= 1 &&
	       (unsigned)f[2] <= days_in_month((unsigned)f[0], (unsigned)f[1]) &&
	       f[3] <= 23 && f[4] <= 59 && f[5] <= 59;
}

enum ht_err ht_payment_ts_parse(const char *s, size_t len, int64_t *ts_ms)
{
	int f[6];
	if (!s || len < 20 || !ts_fields(s, f))
		return HT_ERR_INVALID;
	size_t pos = 19;
	int ms = 0;
	if (s[pos] == '.') {
		if (len < pos + 4 || (ms = digits(s + pos + 1, 3)) < 0)
			return HT_ERR_INVALID;
		pos += 4;
	}
	bool zulu = len == pos + 1 && s[pos] == 'Z';
	bool offset = len == pos + 6 && !memcmp(s + pos, "+00:00", 6);
	if (!zulu && !offset)
		return HT_ERR_INVALID;
	int64_t days = days_from_civil(f[0], (unsigned)f[1], (unsigned)f[2]);
	*ts_ms = days * MS_PER_DAY +
		 ((int64_t)f[3] * 3600 + f[4] * 60 + f[5]) * 1000 + ms;
	HT_ASSERT(*ts_ms >= 0 && *ts_ms <= HT_PAYMENT_TS_MS_MAX);
	return HT_OK;
}

static const char digit_pairs[] =
	"00010203040506070809101112131415161718192021222324"
	"25262728293031323334353637383940414243444546474849"
	"50515253545556575859606162636465666768697071727374"
	"75767778798081828384858687888990919293949596979899";

static char *put2(char *p, unsigned v)
{
	p[0] = digit_pairs[2 * v];
	p[1] = digit_pairs[2 * v + 1];
	return p + 2;
}

size_t ht_payment_ts_format(int64_t ts_ms, char out[HT_PAYMENT_TS_BYTES])
{
	if (ts_ms < 0 || ts_ms > HT_PAYMENT_TS_MS_MAX)
		return 0;
	unsigned y, m, d;
	civil_from_days(ts_ms / MS_PER_DAY, &y, &m, &d);
	unsigned ms_of_day = (unsigned)(ts_ms % MS_PER_DAY);
	unsigned s = ms_of_day / 1000;
	char *p = put2(out, y / 100);
	p = put2(p, y % 100);
	*p++ = '-';
	p = put2(p, m);
	*p++ = '-';
	p = put2(p, d);
	*p++ = 'T';
	p = put2(p, s / 3600);
	*p++ = ':';
	p = put2(p, s / 60 % 60);
	*p++ = ':';
	p = put2(p, s % 60);
	*p++ = '.';
	*p++ = (char)('0' + ms_of_day % 1000 / 100);
	p = put2(p, ms_of_day % 100);
	*p++ = 'Z';
	*p = '\0';
	HT_ASSERT(p - out == HT_PAYMENT_TS_BYTES - 1);
	return HT_PAYMENT_TS_BYTES - 1;
}

/* ---- writing ----------------------------------------------------------- */

/* Decimal v at p (at most 20 bytes); returns the end. */
static char *put_u64(char *p, uint64_t v)
{
	char tmp[20];
	char *t = tmp + sizeof tmp;
	while (v >= 100) {
		t -= 2;
		put2(t, (unsigned)(v % 100));
		v /= 100;
	}
	if (v >= 10) {
		t -= 2;
		put2(t, (unsigned)v);
	} else {
		*--t = (char)('0' + v);
	}
	size_t n = (size_t)(tmp + sizeof tmp - t);
	memcpy(p, t, n);
	return p + n;
}


static bool is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/*
 * Field s (an array of size bytes) as a JSON string at p; returns the end,
 * or NULL when s is not NUL-terminated within size, is empty while
 * required, or holds control characters or bad UTF-8. Needs 2 * size + 2
 * bytes at p. Plain ASCII, the simulator's whole output, takes the first
 * branch of the loop only.
 */
static char *put_field(char *p, const char *s, size_t size, bool required)
{
	const unsigned char *u = (const unsigned char *)s;
	const unsigned char *nul = memchr(u, '\0', size);
	if (!nul || (required && nul == u))
		return NULL;
	size_t n = (size_t)(nul - u);
	*p++ = '"';
	for (size_t i = 0; i < n;) {
		unsigned c = u[i];
		if (c >= 0x20 && c < 0x7f) {
			if (c == '"' || c == '\\')
				*p++ = '\\';
			*p++ = (char)c;
			i++;
			continue;
		}
		size_t k = is_control((unsigned char)c) ? 0
							: ht_utf8_seq_len(u + i, n - i);
		if (!k)
			return NULL;
		memcpy(p, u + i, k);
		p += k;
		i += k;
	}
	*p++ = '"';
	return p;
}

#define PUT_LIT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) + sizeof(lit) - 1)

static bool currency_valid(const char *s, size_t len)
{
	if (len != 3)
		return false;
	for (size_t i = 0; i < 3; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return false;
	return true;
}

/* The body of ht_payment_format into tmp; returns the end or NULL. */
static char *format_payment(char *p, const struct ht_payment *x)
{
	const char *channel = ht_channel_name(x->channel);
	if (!channel || x->amount == 0 ||
	    !memchr(x->currency, '\0', sizeof x->currency) ||
	    !currency_valid(x->currency, strlen(x->currency)))
		return NULL;
	p = PUT_LIT(p, "{\"id\":");
	if (!(p = put_field(p, x->id, sizeof x->id, true)))
		return NULL;
	p = PUT_LIT(p, ",\"ts\":\"");
	size_t n = ht_payment_ts_format(x->ts_ms, p);
	if (!n)
		return NULL;
	p += n;
	p = PUT_LIT(p, "\",\"payer\":");
	if (!(p = put_field(p, x->payer, sizeof x->payer, true)))
		return NULL;
	p = PUT_LIT(p, ",\"payee\":");
	if (!(p = put_field(p, x->payee, sizeof x->payee, true)))
		return NULL;
	p = PUT_LIT(p, ",\"payer_participant\":");
	if (!(p = put_field(p, x->payer_participant,
			    sizeof x->payer_participant, true)))
		return NULL;
	p = PUT_LIT(p, ",\"payee_participant\":");
	if (!(p = put_field(p, x->payee_participant,
			    sizeof x->payee_participant, true)))
		return NULL;
	p = PUT_LIT(p, ",\"amount\":\"");
	p = put_u64(p, x->amount);
	p = PUT_LIT(p, "\",\"currency\":\"");
	memcpy(p, x->currency, 3);
	p = PUT_LIT(p + 3, "\",\"channel\":\"");
	memcpy(p, channel, strlen(channel));
	p = PUT_LIT(p + strlen(channel), "\",\"device\":");
	if (!(p = put_field(p, x->device, sizeof x->device, false)))
		return NULL;
	p = PUT_LIT(p, ",\"ip\":");
	if (!(p = put_field(p, x->ip, sizeof x->ip, false)))
		return NULL;
	return PUT_LIT(p, "}");
}

size_t ht_payment_format(const struct ht_payment *p, char *buf, size_t size)
{
	char tmp[HT_PAYMENT_FORMAT_BYTES_MAX + 1];
	char *end = p ? format_payment(tmp, p) : NULL;
	if (!end)
		return 0;
	size_t n = (size_t)(end - tmp);
	HT_ASSERT(n <= HT_PAYMENT_FORMAT_BYTES_MAX);
	if (!buf || n >= size)
		return 0;
	memcpy(buf, tmp, n);
	buf[n] = '\0';
	return n;
}

size_t ht_label_format(const struct ht_label *l, char *buf, size_t size)
{
	char tmp[HT_LABEL_FORMAT_BYTES_MAX + 1];
	const char *type = l ? ht_fraud_type_name(l->type) : NULL;
	if (!type || l->fraud != (l->type != HT_FRAUD_NONE))
		return 0;
	char *p = PUT_LIT(tmp, "{\"id\":");
	if (!(p = put_field(p, l->id, sizeof l->id, true)))
		return 0;
	if (l->fraud)
		p = PUT_LIT(p, ",\"fraud\":true,\"type\":\"");
	else
		p = PUT_LIT(p, ",\"fraud\":false,\"type\":\"");
	memcpy(p, type, strlen(type));
	p = PUT_LIT(p + strlen(type), "\"}");
	size_t n = (size_t)(p - tmp);
	HT_ASSERT(n <= HT_LABEL_FORMAT_BYTES_MAX);
	if (!buf || n >= size)
		return 0;
	memcpy(buf, tmp, n);
	buf[n] = '\0';
	return n;
}

/* ---- reading: the values of one line ----------------------------------- */

/*
 * A line is read into one struct jv per known key, by the fast scanner
 * (below) or by jansson; everything after that (types, bounds, names,
 * messages) is shared, so both readers accept and refuse the same lines
 * with the same messages. The strings point into the line or into
 * jansson's tree, valid until the tree is freed.
 */
enum jv_kind { JV_ABSENT = 0, JV_NULL, JV_FALSE, JV_TRUE, JV_INT, JV_STRING, JV_OTHER };

struct jv {
	enum jv_kind kind;
	const char *s;  /* JV_STRING: bytes, no NUL inside */
	size_t n;
	int64_t i;      /* JV_INT */
};

enum {
	PK_ID, PK_TS, PK_PAYER, PK_PAYEE, PK_PAYER_PARTICIPANT,
	PK_PAYEE_PARTICIPANT, PK_AMOUNT, PK_CURRENCY, PK_CHANNEL, PK_DEVICE,
	PK_IP, PK__COUNT
};
static const char *const payment_keys[PK__COUNT] = {
	"id", "ts", "payer", "payee", "payer_participant", "payee_participant",
	"amount", "currency", "channel", "device", "ip",
};

enum { LK_ID, LK_FRAUD, LK_TYPE, LK__COUNT };
static const char *const label_keys[LK__COUNT] = {"id", "fraud", "type"};

#define KEYS_MAX PK__COUNT


/* A value as it may be quoted in a message: printable ASCII, at most
 * QUOTE_BYTES_MAX bytes, '?' for anything else, "..." when cut. */
static void quote(const char *s, size_t n, char out[QUOTE_BYTES_MAX + 4])
{
	size_t k = n < QUOTE_BYTES_MAX ? n : QUOTE_BYTES_MAX;
	for (size_t i = 0; i < k; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (k < n)
		memcpy(out + k, "...", 3), k += 3;
	out[k] = '\0';
}

/* ---- the fast scanner ---------------------------------------------------- */

/*
 * What the simulator and most producers write: one flat object, each key
 * known and given once, each value a string of printable ASCII without
 * escapes, a small integer, null, true or false. The scanner reads exactly
 * that, in one pass without allocating, and answers false for anything
 * else (an escape, a byte outside printable ASCII, an unknown or repeated
 * key, a nested value, a fraction, an exponent, a big integer, broken
 * JSON): those lines go to jansson, which reads them or explains what is
 * wrong. On the subset it accepts it gives exactly what jansson gives (the
 * fuzz target checks it).
 */
struct scanner {
	const char *p, *end;
};

static void skip_ws(struct scanner *sc)
{
	while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\t' ||
				   *sc->p == '\n' || *sc->p == '\r'))
		sc->p++;
}

static bool scan_char(struct scanner *sc, char c)
{
	skip_ws(sc);
	if (sc->p == sc->end || *sc->p != c)
		return false;
	sc->p++;
	return true;
}

/* A string of printable ASCII without escapes, the opening quote next. */
static bool scan_plain_string(struct scanner *sc, const char **s, size_t *n)
{
	if (!scan_char(sc, '"'))
		return false;
	const char *start = sc->p;
	while (sc->p < sc->end) {
		unsigned char c = (unsigned char)*sc->p;
		if (c == '"') {
			*s = start;
			*n = (size_t)(sc->p++ - start);
			return true;
		}
		if (c < 0x20 || c >= 0x7f || c == '\\')
			return false;
		sc->p++;
	}
	return false;
}

/* -?(0|[1-9][0-9]*) of at most 18 digits (fits int64), not followed by a
 * fraction or exponent. */
static bool scan_int(struct scanner *sc, int64_t *out)
{
	bool neg = sc->p < sc->end && *sc->p == '-';
	const char *d = sc->p + neg, *q = d;
	int64_t v = 0;
	while (q < sc->end && *q >= '0' && *q <= '9' && q - d < 18)
		v = v * 10 + (*q++ - '0');
	size_t n = (size_t)(q - d);
	if (n == 0 || (n > 1 && *d == '0'))
		return false;
	if (q < sc->end && (*q == '.' || *q == 'e' || *q == 'E' ||
			    (*q >= '0' && *q <= '9')))
		return false;
	*out = neg ? -v : v;
	sc->p = q;
	return true;
}

static bool scan_literal(struct scanner *sc, const char *lit, size_t n)
{
	if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, lit, n))
		return false;
	sc->p += n;
	return true;
}

static bool scan_value(struct scanner *sc, struct jv *v)
{
	skip_ws(sc);
	if (sc->p == sc->end)
		return false;
	switch (*sc->p) {
	case '"':
		v->kind = JV_STRING;
		return scan_plain_string(sc, &v->s, &v->n);
	case 'n':
		v->kind = JV_NULL;
		return scan_literal(sc, "null", 4);
	case 't':
		v->kind = JV_TRUE;
		return scan_literal(sc, "true", 4);
	case 'f':
		v->kind = JV_FALSE;
		return scan_literal(sc, "false", 5);
	default:
		v->kind = JV_INT;
		return scan_int(sc, &v->i);
	}
}

static int key_index(const char *const *keys, unsigned nkeys, const char *s,
		     size_t n)
{
	for (unsigned k = 0; k < nkeys; k++)
		if (strlen(keys[k]) == n && !memcmp(keys[k], s, n))
			return (int)k;
	return -1;
}

static bool fast_scan(const char *line, size_t len, const char *const *keys,
		      unsigned nkeys, struct jv *vals)
{
	struct scanner sc = {line, line + len};
	memset(vals, 0, nkeys * sizeof *vals);
	if (!scan_char(&sc, '{'))
		return false;
	skip_ws(&sc);
	bool first = true;
	while (sc.p < sc.end && *sc.p != '}') {
		const char *k;
		size_t kn;
		if ((!first && !scan_char(&sc, ',')) ||
		    !scan_plain_string(&sc, &k, &kn) || !scan_char(&sc, ':'))
			return false;
		int i = key_index(keys, nkeys, k, kn);
		if (i < 0 || vals[i].kind != JV_ABSENT ||
		    !scan_value(&sc, &vals[i]))
			return false;
		skip_ws(&sc);
		first = false;
	}
	if (!scan_char(&sc, '}'))
		return false;
	skip_ws(&sc);
	return sc.p == sc.end;
}

/* ---- jansson, for everything else --------------------------------------- */

/*
 * Bounded pass before jansson: refuses NUL bytes and nesting deeper than
 * HT_JSON_DEPTH_MAX (jansson would otherwise recurse for every '['). It
 * tracks strings and escapes only; jansson validates the rest.
 */
static enum ht_err prescan(const char *s, size_t len, char *err,
			   size_t err_size)
{
	size_t depth = 0;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '\0')
			return ht_fail(err, err_size, HT_ERR_INVALID,
				    "invalid JSON: NUL byte (byte %zu)", i + 1);
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			if (++depth > HT_JSON_DEPTH_MAX)
				return ht_fail(err, err_size, HT_ERR_LIMIT,
					    "JSON nested deeper than %d (byte %zu)",
					    HT_JSON_DEPTH_MAX, i + 1);
		} else if ((c == '}' || c == ']') && depth) {
			depth--;
		}
	}
	return HT_OK;
}

static struct jv jv_of(json_t *v)
{
	struct jv r = {0};
	if (!v)
		r.kind = JV_ABSENT;
	else if (json_is_null(v))
		r.kind = JV_NULL;
	else if (json_is_true(v))
		r.kind = JV_TRUE;
	else if (json_is_false(v))
		r.kind = JV_FALSE;
	else if (json_is_integer(v))
		r.kind = JV_INT, r.i = json_integer_value(v);
	else if (json_is_string(v))
		r.kind = JV_STRING, r.s = json_string_value(v),
		r.n = json_string_length(v);
	else
		r.kind = JV_OTHER;
	return r;
}

/*
 * Read the line's values for keys into vals: the fast scanner when it
 * can, else jansson, whose tree is left in *tree (the caller frees it
 * after using vals; NULL when none).
 */
static enum ht_err read_values(const char *line, size_t len,
			       const char *const *keys, unsigned nkeys,
			       struct jv *vals, json_t **tree, char *err,
			       size_t err_size)
{
	*tree = NULL;
	if (!line)
		return ht_fail(err, err_size, HT_ERR_INVALID, "no line");
	if (len > HT_PAYMENT_LINE_BYTES_MAX)
		return ht_fail(err, err_size, HT_ERR_LIMIT,
			    "line longer than %d bytes", HT_PAYMENT_LINE_BYTES_MAX);
	if (fast_scan(line, len, keys, nkeys, vals))
		return HT_OK;
	enum ht_err e = prescan(line, len, err, err_size);
	if (e)
		return e;
	json_error_t je;
	json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
			       &je);
	if (!j) {
		if (json_error_code(&je) == json_error_out_of_memory)
			return ht_fail(err, err_size, HT_ERR_NOMEM, "out of memory");
		return ht_fail(err, err_size, HT_ERR_INVALID,
			    "invalid JSON: %s (byte %d)", je.text, je.position);
	}
	if (!json_is_object(j)) {
		json_decref(j);
		return ht_fail(err, err_size, HT_ERR_INVALID,
			    "expected a JSON object");
	}
	for (unsigned k = 0; k < nkeys; k++)
		vals[k] = jv_of(json_object_get(j, keys[k]));
	*tree = j;
	return HT_OK;
}

/* ---- fields ---------------------------------------------------------------- */

/* A string field into out[size]. Absent or null gives "" when optional. */
static enum ht_err get_string(const struct jv *v, const char *key,
			      bool required, char *out, size_t size, char *err,
			      size_t err_size)
{
	out[0] = '\0';
	if (v->kind == JV_ABSENT || v->kind == JV_NULL) {
		if (!required)
			return HT_OK;
		return ht_fail(err, err_size, HT_ERR_INVALID, "%s: missing", key);
	}
	if (v->kind != JV_STRING)
		return ht_fail(err, err_size, HT_ERR_INVALID,
			    "%s: expected a string", key);
	if (v->n >= size)
		return ht_fail(err, err_size, HT_ERR_LIMIT,
			    "%s: longer than %zu bytes", key, size - 1);
	if (v->n == 0 && required)
		return ht_fail(err, err_size, HT_ERR_INVALID, "%s: empty", key);
	for (size_t i = 0; i < v->n; i++)
		if (is_control((unsigned char)v->s[i]))
			return ht_fail(err, err_size, HT_ERR_INVALID,
				    "%s: control character at byte %zu", key,
				    i + 1);
	memcpy(out, v->s, v->n);
	out[v->n] = '\0';
	return HT_OK;
}

static enum ht_err get_amount(const struct jv *v, uint64_t *out, char *err,
			      size_t err_size)
{
	if (v->kind == JV_ABSENT)
		return ht_fail(err, err_size, HT_ERR_INVALID, "amount: missing");
	if (v->kind == JV_INT) {
		if (v->i <= 0)
			return ht_fail(err, err_size, HT_ERR_INVALID,
				    "amount: must be > 0");
		*out = (uint64_t)v->i;
		return HT_OK;
	}
	if (v->kind != JV_STRING)
		return ht_fail(err, err_size, HT_ERR_INVALID,
			    "amount: expected a decimal string or an integer"
			    " of minor units");
	char q[QUOTE_BYTES_MAX + 4];
	quote(v->s, v->n, q);
	enum ht_err e = ht_u64_parse(v->s, v->n, out);
	if (e == HT_ERR_LIMIT)
		return ht_fail(err, err_size, HT_ERR_INVALID,
			    "amount: '%s' is above 2^64-1", q);
	if (e)
		return ht_fail(err, err_size, HT_ERR_INVALID,
			    "amount: '%s' is not a decimal integer of minor"
			    " units", q);
	if (*out == 0)
		return ht_fail(err, err_size, HT_ERR_INVALID,
			    "amount: must be > 0");
	return HT_OK;
}

/* Room for the names of ts, channel, currency and type (longer values
 * are none of them). */
#define NAME_BYTES 40

/*
 * A string field that must be one of a set of forms (a ts, a channel, a
 * currency): read it, check it with ok, and on failure quote it with
 * what was expected. Errors other than a bad string pass unchanged.
 */
static enum ht_err get_name(const struct jv *v, const char *key, char *out,
			    bool (*ok)(const char *s, size_t n, void *res),
			    void *res, const char *expected, char *err,
			    size_t err_size)
{
	enum ht_err e = get_string(v, key, true, out, NAME_BYTES, err, err_size);
	if (e == HT_ERR_LIMIT)
		e = HT_ERR_INVALID; /* too long to be any of them */
	if (!e && !ok(out, strlen(out), res))
		e = HT_ERR_INVALID;
	if (e && v->kind == JV_STRING) {
		char q[QUOTE_BYTES_MAX + 4];
		quote(v->s, v->n, q);
		return ht_fail(err, err_size, HT_ERR_INVALID, "%s: '%s' %s", key, q,
			    expected);
	}
	return e;
}

static bool ok_ts(const char *s, size_t n, void *res)
{
	return ht_payment_ts_parse(s, n, res) == HT_OK;
}

static bool ok_channel(const char *s, size_t n, void *res)
{
	return ht_channel_parse(s, n, res) == HT_OK;
}

static bool ok_currency(const char *s, size_t n, void *res)
{
	(void)res;
	return currency_valid(s, n);
}

static bool ok_fraud_type(const char *s, size_t n, void *res)
{
	return ht_fraud_type_parse(s, n, res) == HT_OK;
}

/* The strings of a payment that are free-form (bounded) text. */
static enum ht_err payment_refs(const struct jv *v, struct ht_payment *p,
				char *err, size_t err_size)
{
	enum ht_err e;
	if ((e = get_string(&v[PK_PAYER], "payer", true, p->payer,
			    sizeof p->payer, err, err_size)) ||
	    (e = get_string(&v[PK_PAYEE], "payee", true, p->payee,
			    sizeof p->payee, err, err_size)) ||
	    (e = get_string(&v[PK_PAYER_PARTICIPANT], "payer_participant", true,
			    p->payer_participant, sizeof p->payer_participant,
			    err, err_size)) ||
	    (e = get_string(&v[PK_PAYEE_PARTICIPANT], "payee_participant", true,
			    p->payee_participant, sizeof p->payee_participant,
			    err, err_size)))
		return e;
	return HT_OK;
}

/* Fields in the order of the line, so the first bad one is named. */
static enum ht_err payment_fields(const struct jv *v, struct ht_payment *p,
				  char *err, size_t err_size)
{
	char name[NAME_BYTES];
	enum ht_err e;
	if ((e = get_string(&v[PK_ID], "id", true, p->id, sizeof p->id, err,
			    err_size)) ||
	    (e = get_name(&v[PK_TS], "ts", name, ok_ts, &p->ts_ms,
			  "is not a UTC time like 2026-03-01T08:00:00.120Z", err,
			  err_size)) ||
	    (e = payment_refs(v, p, err, err_size)) ||
	    (e = get_amount(&v[PK_AMOUNT], &p->amount, err, err_size)) ||
	    (e = get_name(&v[PK_CURRENCY], "currency", name, ok_currency, NULL,
			  "is not three letters A-Z (ISO 4217)", err, err_size)))
		return e;
	memcpy(p->currency, name, HT_PAYMENT_CURRENCY_BYTES);
	if ((e = get_name(&v[PK_CHANNEL], "channel", name, ok_channel,
			  &p->channel, "is unknown (p2p, qr, card, transfer,"
			  " cash_in, cash_out, bill)", err, err_size)) ||
	    (e = get_string(&v[PK_DEVICE], "device", false, p->device,
			    sizeof p->device, err, err_size)) ||
	    (e = get_string(&v[PK_IP], "ip", false, p->ip, sizeof p->ip, err,
			    err_size)))
		return e;
	return HT_OK;
}

enum ht_err ht_payment_parse(const char *line, size_t len,
			     struct ht_payment *out, char *err,
			     size_t err_size)
{
	struct jv vals[KEYS_MAX];
	json_t *tree;
	enum ht_err e = read_values(line, len, payment_keys, PK__COUNT, vals,
				    &tree, err, err_size);
	if (e)
		return e;
	memset(out, 0, sizeof *out);
	e = payment_fields(vals, out, err, err_size);
	json_decref(tree);
	return e;
}

static enum ht_err label_fields(const struct jv *v, struct ht_label *l,
				char *err, size_t err_size)
{
	char name[NAME_BYTES];
	enum ht_err e = get_string(&v[LK_ID], "id", true, l->id, sizeof l->id,
				   err, err_size);
	if (e)
		return e;
	if (v[LK_FRAUD].kind == JV_ABSENT)
		return ht_fail(err, err_size, HT_ERR_INVALID, "fraud: missing");
	if (v[LK_FRAUD].kind != JV_TRUE && v[LK_FRAUD].kind != JV_FALSE)
		return ht_fail(err, err_size, HT_ERR_INVALID,
			    "fraud: expected true or false");
	l->fraud = v[LK_FRAUD].kind == JV_TRUE;
	e = get_name(&v[LK_TYPE], "type", name, ok_fraud_type, &l->type,
		     "is unknown (none, account_takeover, card_testing,"
		     " app_scam, mule)", err, err_size);
	if (e)
		return e;
	if (l->fraud != (l->type != HT_FRAUD_NONE))
		return ht_fail(err, err_size, HT_ERR_INVALID,
			    "type: '%s' contradicts fraud %s", name,
			    l->fraud ? "true" : "false");
	return HT_OK;
}

enum ht_err ht_label_parse(const char *line, size_t len, struct ht_label *out,
			   char *err, size_t err_size)
{
	struct jv vals[KEYS_MAX];
	json_t *tree;
	enum ht_err e = read_values(line, len, label_keys, LK__COUNT, vals,
				    &tree, err, err_size);
	if (e)
		return e;
	memset(out, 0, sizeof *out);
	e = label_fields(vals, out, err, err_size);
	json_decref(tree);
	return e;
}

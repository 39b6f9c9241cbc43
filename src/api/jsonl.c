/*
 * jsonl.c — the ledger JSONL codec (DESIGN.md "Ledger JSONL"): request
 * lines in, result lines out, and a bounded line reader.
 *
 * Owner: api. Everything here handles outside input. Requests are parsed
 * by jansson, but only after a cheap bounded pre-scan has checked the
 * nesting depth and the number of values, so no line can make jansson
 * recurse deeply or build a huge tree. Result lines are written by hand
 * straight into a buffer (no jansson on the output path: 8190 results must
 * cost well under a millisecond). This module converts between JSON and
 * the structs of ledger.h and hub.h; it must never call the ledger or the
 * store, and never trust a length, count or depth it has not checked
 * against limits.h. docs/internals/jsonl.md lists the accepted forms.
 */
#include "huitong/jsonl.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- limits private to the codec ------------------------------------- */

/*
 * Values jansson may build for one request, checked by the pre-scan before
 * jansson runs. A 4 MiB line of "{}," would otherwise cost jansson about
 * 300 MB. The largest legal request is a full batch: one object and at
 * most one flags array and one "risk" object per event, and per event
 * at most 12 keys, 11 values, the risk object's 3 keys and 3 values and
 * the flag names; 48 scalars per event leaves room for repeated flag
 * names.
 */
#define JSON_CONTAINERS_MAX (3u * HT_BATCH_EVENTS_MAX + 8u)
#define JSON_SCALARS_MAX (48u * HT_BATCH_EVENTS_MAX + 64u)
_Static_assert(HT_LOOKUP_IDS_MAX + 8u <= JSON_SCALARS_MAX,
	       "a full lookup request passes the pre-scan");

/* Bytes one written entry (a result, account, transfer or balance) can
 * take: four u128 ids (39 digits each), five u64, every flag name, 32
 * bytes of user_data escaped as \u00XX (6 each), and the keys. */
#define ENTRY_BYTES_MAX 2048u
_Static_assert(HT_USER_DATA_BYTES_MAX * 6 + 4 * 41 + 5 * 22 + 160 + 512 <
		       ENTRY_BYTES_MAX,
	       "an entry fits its reservation");

/* Bytes of a user-supplied string quoted in an error message. */
#define QUOTE_BYTES_MAX 40u

/* Extra bytes the pre-scan's rewrite adds around one big integer token:
 * `"\u0000` before it and `"` after it (see scan_json). */
#define BIG_INT_EXTRA 8u

/* ---- output buffer --------------------------------------------------- */

/* Make room for extra more bytes plus the terminating NUL. */
static enum ht_err buf_reserve(struct ht_buf *b, size_t extra)
{
	if (extra > SIZE_MAX / 2 - b->len)
		return HT_ERR_NOMEM;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return HT_OK;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return HT_ERR_NOMEM;
	b->data = p;
	b->cap = cap;
	return HT_OK;
}

enum ht_err ht_buf_append(struct ht_buf *b, const char *s, size_t n)
{
	enum ht_err err = buf_reserve(b, n);
	if (err)
		return err;
	if (n)
		memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return HT_OK;
}

enum ht_err ht_buf_printf(struct ht_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return HT_ERR_INVALID;
	enum ht_err err = buf_reserve(b, (size_t)n);
	if (err)
		return err;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return HT_OK;
}

void ht_buf_free(struct ht_buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

/* ---- op names -------------------------------------------------------- */

static const char *const op_names[] = {
	[HT_OP_CREATE_ACCOUNTS] = "create_accounts",
	[HT_OP_CREATE_TRANSFERS] = "create_transfers",
	[HT_OP_LOOKUP_ACCOUNTS] = "lookup_accounts",
	[HT_OP_LOOKUP_TRANSFERS] = "lookup_transfers",
	[HT_OP_GET_ACCOUNT_TRANSFERS] = "get_account_transfers",
	[HT_OP_GET_ACCOUNT_BALANCES] = "get_account_balances",
};
#define OP_COUNT (sizeof(op_names) / sizeof(op_names[0]))

const char *ht_op_name(enum ht_op op)
{
	if ((unsigned)op >= OP_COUNT)
		return NULL;
	return op_names[op];
}

static bool op_parse(const char *s, size_t n, enum ht_op *op)
{
	for (unsigned i = 1; i < OP_COUNT; i++) {
		if (strlen(op_names[i]) == n && !memcmp(op_names[i], s, n)) {
			*op = (enum ht_op)i;
			return true;
		}
	}
	return false;
}

/* ---- writing ---------------------------------------------------------- */

/* Copy n bytes into room already reserved (always leaving the NUL's). */
static void put(struct ht_buf *b, const char *s, size_t n)
{
	HT_ASSERT(b->cap > b->len);
	HT_ASSERT(n < b->cap - b->len);
	memcpy(b->data + b->len, s, n);
	b->len += n;
}
#define PUT_LIT(b, lit) put((b), (lit), sizeof(lit) - 1)

static void put_u64(struct ht_buf *b, uint64_t v)
{
	char tmp[24];
	put(b, tmp, ht_u64_dec(tmp, v));
}

/* A u64 or u128 as a JSON string of decimal digits. */
static void put_dec_string(struct ht_buf *b, ht_u128 v)
{
	char tmp[44];
	tmp[0] = '"';
	size_t n = 1 + ht_u128_dec(tmp + 1, v);
	tmp[n++] = '"';
	put(b, tmp, n);
}

/* Length of the leading bytes of s[0..n) that go into a JSON string as
 * they are: valid UTF-8 except control characters, '"' and '\\'. */
static size_t plain_run(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t k = ht_utf8_seq_len(s + i, n - i);
		if (k == 0 ||
		    (k == 1 && (s[i] < 0x20 || s[i] == '"' || s[i] == '\\')))
			break;
		i += k;
	}
	return i;
}

/*
 * s[0..n) as a JSON string; needs 6n+2 bytes reserved. Valid UTF-8 is
 * copied; '"', '\\' and control characters are escaped; every byte that
 * is not part of valid UTF-8 is written as \u00XX (the code point with
 * that byte's value), so any bytes give valid JSON, deterministically.
 */
static void put_json_string(struct ht_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	PUT_LIT(b, "\"");
	for (size_t i = 0; i < n;) {
		size_t run = plain_run(u + i, n - i);
		if (run) {
			put(b, s + i, run);
			i += run;
			continue;
		}
		unsigned c = u[i];
		char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			put(b, esc, 2);
		} else if (c == '\n' || c == '\r' || c == '\t') {
			esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
			put(b, esc, 2);
		} else {
			put(b, esc, 6);
		}
		i++;
	}
	PUT_LIT(b, "\"");
}

enum ht_err ht_buf_json_string(struct ht_buf *b, const char *s, size_t n)
{
	if (n > (SIZE_MAX - 3) / 6)
		return HT_ERR_NOMEM;
	enum ht_err err = buf_reserve(b, 6 * n + 3);
	if (!err) {
		put_json_string(b, s, n);
		b->data[b->len] = '\0';
	}
	return err;
}

typedef const char *(*flag_name_fn)(uint16_t bit);

/* flags as an array of names; every set bit must have a name. */
static void put_flags(struct ht_buf *b, uint16_t flags, flag_name_fn name)
{
	bool first = true;
	PUT_LIT(b, "[");
	for (unsigned i = 0; i < 16; i++) {
		uint16_t bit = (uint16_t)(1u << i);
		if (!(flags & bit))
			continue;
		const char *s = name(bit);
		HT_ASSERT(s != NULL);
		if (!first)
			PUT_LIT(b, ",");
		PUT_LIT(b, "\"");
		put(b, s, strlen(s));
		PUT_LIT(b, "\"");
		first = false;
	}
	PUT_LIT(b, "]");
}

/* `{"op":"<op>","<key>":[` */
static enum ht_err put_head(struct ht_buf *b, enum ht_op op, const char *key)
{
	const char *name = ht_op_name(op);
	if (!name)
		return HT_ERR_INVALID;
	enum ht_err err = buf_reserve(b, strlen(name) + strlen(key) + 16);
	if (err)
		return err;
	PUT_LIT(b, "{\"op\":\"");
	put(b, name, strlen(name));
	PUT_LIT(b, "\",\"");
	put(b, key, strlen(key));
	PUT_LIT(b, "\":[");
	return HT_OK;
}

/* Reserve room for entry i and write its separating comma. */
static enum ht_err put_entry_start(struct ht_buf *b, size_t i)
{
	enum ht_err err = buf_reserve(b, ENTRY_BYTES_MAX);
	if (err)
		return err;
	if (i)
		PUT_LIT(b, ",");
	return HT_OK;
}

/* Close the line, or on error put the buffer back as it was. */
static enum ht_err put_end(struct ht_buf *b, size_t start, enum ht_err err)
{
	if (!err)
		err = buf_reserve(b, 2);
	if (!err)
		PUT_LIT(b, "]}");
	if (err)
		b->len = start;
	if (b->data)
		b->data[b->len] = '\0';
	return err;
}

/* Bytes of one result entry: index (20 digits), id (39), the longest
 * result name and the keys. */
#define RESULT_NAME_BYTES_MAX 64u
#define RESULT_BYTES_MAX (64u + 20u + 39u + RESULT_NAME_BYTES_MAX)

/* Result entry i at p, which has RESULT_BYTES_MAX bytes; returns its end. */
static char *put_result(char *p, size_t i, ht_u128 id, const char *name)
{
	size_t n = strlen(name);
	HT_ASSERT(n <= RESULT_NAME_BYTES_MAX);
	if (i)
		*p++ = ',';
	memcpy(p, "{\"index\":", 9);
	p += 9;
	p += ht_u64_dec(p, i);
	memcpy(p, ",\"id\":\"", 7);
	p += 7;
	p += ht_u128_dec(p, id);
	memcpy(p, "\",\"result\":\"", 12);
	p += 12;
	memcpy(p, name, n);
	p += n;
	memcpy(p, "\"}", 2);
	return p + 2;
}

/*
 * The hot writer (one line per create batch): room for every entry is
 * reserved at once and entries are formatted straight into it.
 */
enum ht_err ht_jsonl_write_results(struct ht_buf *b, enum ht_op op,
				   const ht_u128 *ids, const uint16_t *results,
				   size_t n)
{
	if (n && (!ids || !results))
		return HT_ERR_INVALID;
	if (n > (SIZE_MAX / 4) / RESULT_BYTES_MAX)
		return HT_ERR_LIMIT;
	size_t start = b->len;
	enum ht_err err = put_head(b, op, "results");
	if (!err)
		err = buf_reserve(b, n * RESULT_BYTES_MAX);
	for (size_t i = 0; i < n && !err; i++) {
		const char *name = ht_result_name(results[i]);
		if (!name) {
			err = HT_ERR_INVALID;
			break;
		}
		char *p = b->data + b->len;
		b->len += (size_t)(put_result(p, i, ids[i], name) - p);
		HT_ASSERT(b->len < b->cap);
	}
	return put_end(b, start, err);
}

static void put_account(struct ht_buf *b, const struct ht_account *a)
{
	PUT_LIT(b, "{\"id\":");
	put_dec_string(b, a->id);
	PUT_LIT(b, ",\"ledger\":");
	put_u64(b, a->ledger);
	PUT_LIT(b, ",\"code\":");
	put_u64(b, a->code);
	PUT_LIT(b, ",\"flags\":");
	put_flags(b, a->flags, ht_account_flag_name);
	PUT_LIT(b, ",\"user_data\":");
	put_json_string(b, a->user_data, a->user_data_len);
	PUT_LIT(b, ",\"debits_pending\":");
	put_dec_string(b, a->debits_pending);
	PUT_LIT(b, ",\"debits_posted\":");
	put_dec_string(b, a->debits_posted);
	PUT_LIT(b, ",\"credits_pending\":");
	put_dec_string(b, a->credits_pending);
	PUT_LIT(b, ",\"credits_posted\":");
	put_dec_string(b, a->credits_posted);
	PUT_LIT(b, ",\"timestamp\":");
	put_dec_string(b, a->timestamp);
	PUT_LIT(b, "}");
}

enum ht_err ht_jsonl_write_accounts(struct ht_buf *b, enum ht_op op,
				    const struct ht_account *a, size_t n)
{
	if (n && !a)
		return HT_ERR_INVALID;
	size_t start = b->len;
	enum ht_err err = put_head(b, op, "accounts");
	for (size_t i = 0; i < n && !err; i++) {
		if ((a[i].flags & ~HT_ACCOUNT_FLAGS_ALL) ||
		    a[i].user_data_len > HT_USER_DATA_BYTES_MAX) {
			err = HT_ERR_INVALID;
			break;
		}
		err = put_entry_start(b, i);
		if (!err)
			put_account(b, &a[i]);
	}
	return put_end(b, start, err);
}

static void put_transfer(struct ht_buf *b, const struct ht_transfer *t)
{
	PUT_LIT(b, "{\"id\":");
	put_dec_string(b, t->id);
	PUT_LIT(b, ",\"debit_account_id\":");
	put_dec_string(b, t->debit_account_id);
	PUT_LIT(b, ",\"credit_account_id\":");
	put_dec_string(b, t->credit_account_id);
	PUT_LIT(b, ",\"amount\":");
	put_dec_string(b, t->amount);
	PUT_LIT(b, ",\"pending_id\":");
	put_dec_string(b, t->pending_id);
	PUT_LIT(b, ",\"ledger\":");
	put_u64(b, t->ledger);
	PUT_LIT(b, ",\"code\":");
	put_u64(b, t->code);
	PUT_LIT(b, ",\"flags\":");
	put_flags(b, t->flags, ht_transfer_flag_name);
	PUT_LIT(b, ",\"timeout_s\":");
	put_u64(b, t->timeout_s);
	PUT_LIT(b, ",\"user_data\":");
	put_json_string(b, t->user_data, t->user_data_len);
	PUT_LIT(b, ",\"timestamp\":");
	put_dec_string(b, t->timestamp);
	PUT_LIT(b, "}");
}

enum ht_err ht_jsonl_write_transfers(struct ht_buf *b, enum ht_op op,
				     const struct ht_transfer *t, size_t n)
{
	if (n && !t)
		return HT_ERR_INVALID;
	size_t start = b->len;
	enum ht_err err = put_head(b, op, "transfers");
	for (size_t i = 0; i < n && !err; i++) {
		if ((t[i].flags & ~HT_TRANSFER_FLAGS_ALL) ||
		    t[i].user_data_len > HT_USER_DATA_BYTES_MAX) {
			err = HT_ERR_INVALID;
			break;
		}
		err = put_entry_start(b, i);
		if (!err)
			put_transfer(b, &t[i]);
	}
	return put_end(b, start, err);
}

enum ht_err ht_jsonl_write_balances(struct ht_buf *b, enum ht_op op,
				    const struct ht_balance *x, size_t n)
{
	if (n && !x)
		return HT_ERR_INVALID;
	size_t start = b->len;
	enum ht_err err = put_head(b, op, "balances");
	for (size_t i = 0; i < n && !err; i++) {
		err = put_entry_start(b, i);
		if (err)
			break;
		PUT_LIT(b, "{\"account_id\":");
		put_dec_string(b, x[i].account_id);
		PUT_LIT(b, ",\"timestamp\":");
		put_dec_string(b, x[i].timestamp);
		PUT_LIT(b, ",\"debits_pending\":");
		put_dec_string(b, x[i].debits_pending);
		PUT_LIT(b, ",\"debits_posted\":");
		put_dec_string(b, x[i].debits_posted);
		PUT_LIT(b, ",\"credits_pending\":");
		put_dec_string(b, x[i].credits_pending);
		PUT_LIT(b, ",\"credits_posted\":");
		put_dec_string(b, x[i].credits_posted);
		PUT_LIT(b, "}");
	}
	return put_end(b, start, err);
}

enum ht_err ht_jsonl_write_error(struct ht_buf *b, const char *msg,
				 uint64_t line)
{
	if (!msg)
		return HT_ERR_INVALID;
	size_t n = strlen(msg);
	if (n > (SIZE_MAX / 2 - 64) / 6)
		return HT_ERR_LIMIT;
	size_t start = b->len;
	enum ht_err err = buf_reserve(b, 6 * n + 64);
	if (err)
		return err;
	PUT_LIT(b, "{\"error\":");
	put_json_string(b, msg, n);
	PUT_LIT(b, ",\"line\":");
	put_u64(b, line);
	PUT_LIT(b, "}");
	b->data[b->len] = '\0';
	HT_ASSERT(b->len > start);
	return HT_OK;
}

/* ---- parse errors ------------------------------------------------------ */

/* Where a message goes. */
struct perr {
	char *buf;
	size_t size;
	size_t len;
	bool too_many;  /* the failure is a count limit (events, ids, values) */
};

/* Where in the request a value sits: "transfers[3]", "ids[0]", "accounts"
 * or the top level (array NULL). */
struct where {
	const char *array;
	size_t index;
	bool indexed;
};

static const struct where top_level = { NULL, 0, false };

static void perr_vadd(struct perr *pe, const char *fmt, va_list ap)
{
	if (pe->len + 1 >= pe->size)
		return;
	int n = vsnprintf(pe->buf + pe->len, pe->size - pe->len, fmt, ap);
	if (n < 0)
		return;
	pe->len += (size_t)n;
	if (pe->len >= pe->size)
		pe->len = pe->size - 1;
}

static void perr_add(struct perr *pe, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void perr_add(struct perr *pe, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	perr_vadd(pe, fmt, ap);
	va_end(ap);
}

/*
 * Record "location: message" (location from w and field, either may be
 * absent) and return code. Messages are ASCII apart from quoted user
 * text, which quote() has made safe.
 */
static enum ht_err fail(struct perr *pe, enum ht_err code,
			const struct where *w, const char *field,
			const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static enum ht_err fail(struct perr *pe, enum ht_err code,
			const struct where *w, const char *field,
			const char *fmt, ...)
{
	HT_ASSERT(code != HT_OK);
	if (!pe->buf || !pe->size)
		return code;
	pe->len = 0;
	pe->buf[0] = '\0';
	bool located = false;
	if (w && w->array) {
		perr_add(pe, "%s", w->array);
		if (w->indexed)
			perr_add(pe, "[%zu]", w->index);
		located = true;
	}
	if (field) {
		perr_add(pe, "%s%s", located ? "." : "", field);
		located = true;
	}
	if (located)
		perr_add(pe, ": ");
	va_list ap;
	va_start(ap, fmt);
	perr_vadd(pe, fmt, ap);
	va_end(ap);
	return code;
}

/* s[0..n) in double quotes for a message: at most QUOTE_BYTES_MAX bytes
 * (cut on a UTF-8 boundary, "..." marks the cut), '"' and '\\'
 * backslashed, control bytes as \xNN. dst must hold 4*QUOTE_BYTES_MAX+8. */
#define QUOTE_SIZE (4 * QUOTE_BYTES_MAX + 8)
static const char *quote(char dst[QUOTE_SIZE], const char *s, size_t n)
{
	size_t cut = n;
	if (cut > QUOTE_BYTES_MAX) {
		cut = QUOTE_BYTES_MAX;
		while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
			cut--;
	}
	size_t o = 0;
	dst[o++] = '"';
	for (size_t i = 0; i < cut; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			dst[o++] = '\\';
			dst[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(dst + o, 5, "\\x%02x", c);
		} else {
			dst[o++] = (char)c;
		}
	}
	if (cut < n) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o++] = '"';
	dst[o] = '\0';
	HT_ASSERT(o < QUOTE_SIZE);
	return dst;
}

/* ---- pre-scan ------------------------------------------------------------ */

/*
 * What the pre-scan learned about a line. big_count counts integer tokens
 * outside the int64 range: jansson cannot hold them ("too big integer"),
 * yet amounts up to 2^64-1 may be JSON integers. The line is then copied
 * with each such token rewritten as the string "\u0000<token>" and parsed
 * with JSON_ALLOW_NUL. No string of the original line can begin with NUL
 * (the pre-scan rejects \u0000 and raw NUL bytes), so a string starting
 * with NUL is exactly a rewritten integer and is read as one.
 */
struct scan {
	size_t big_count;
	size_t containers;
	size_t scalars;
};

typedef void (*big_int_fn)(void *ctx, size_t start, size_t end);

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_number_char(unsigned char c)
{
	return is_digit(c) || c == '-' || c == '+' || c == '.' || c == 'e' ||
	       c == 'E';
}

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_json_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Is s[0..n) a JSON integer (-?(0|[1-9][0-9]*)) outside int64? */
static bool int_beyond_int64(const char *s, size_t n)
{
	bool neg = n > 0 && s[0] == '-';
	const char *d = s + neg;
	size_t dn = n - neg;
	if (dn == 0 || (d[0] == '0' && dn > 1))
		return false;
	for (size_t i = 0; i < dn; i++)
		if (!is_digit((unsigned char)d[i]))
			return false;
	if (dn != 19)
		return dn > 19;
	return memcmp(d, neg ? "9223372036854775808" : "9223372036854775807",
		      19) > 0;
}

/* Is the first non-space byte from i a ':' (the token was a key)? */
static bool followed_by_colon(const char *s, size_t len, size_t i)
{
	while (i < len && is_json_space((unsigned char)s[i]))
		i++;
	return i < len && s[i] == ':';
}

static enum ht_err scan_check_counts(const struct scan *sc, struct perr *pe)
{
	pe->too_many = sc->containers > JSON_CONTAINERS_MAX ||
		       sc->scalars > JSON_SCALARS_MAX;
	if (sc->containers > JSON_CONTAINERS_MAX)
		return fail(pe, HT_ERR_LIMIT, NULL, NULL,
			    "request has more than %u JSON objects and arrays",
			    JSON_CONTAINERS_MAX);
	if (sc->scalars > JSON_SCALARS_MAX)
		return fail(pe, HT_ERR_LIMIT, NULL, NULL,
			    "request has more than %u JSON values",
			    JSON_SCALARS_MAX);
	return HT_OK;
}

/* One token outside strings starting at s[i] that is not a quote;
 * returns the index of its last byte. */
static enum ht_err scan_token(const char *s, size_t len, size_t *i,
			      size_t *depth, struct scan *sc, struct perr *pe,
			      big_int_fn fn, void *ctx)
{
	unsigned char c = (unsigned char)s[*i];
	if (c == '[' || c == '{') {
		sc->containers++;
		if (++*depth > HT_JSON_DEPTH_MAX)
			return fail(pe, HT_ERR_LIMIT, NULL, NULL,
				    "JSON nested deeper than %d levels (byte %zu)",
				    HT_JSON_DEPTH_MAX, *i + 1);
	} else if (c == ']' || c == '}') {
		if (*depth)
			--*depth;
	} else if (c == '-' || is_digit(c)) {
		size_t end = *i;
		while (end < len && is_number_char((unsigned char)s[end]))
			end++;
		sc->scalars++;
		if (int_beyond_int64(s + *i, end - *i)) {
			if (followed_by_colon(s, len, end))
				return fail(pe, HT_ERR_INVALID, NULL, NULL,
					    "invalid JSON: object key must be a string (byte %zu)",
					    *i + 1);
			sc->big_count++;
			if (fn)
				fn(ctx, *i, end);
		}
		*i = end - 1;
	} else if (is_alpha(c)) {
		while (*i + 1 < len && is_alpha((unsigned char)s[*i + 1]))
			++*i;
		sc->scalars++;
	}
	return HT_OK;
}

/*
 * One bounded pass over the line that tracks strings and escapes: rejects
 * NUL bytes, \u0000 escapes, nesting deeper than HT_JSON_DEPTH_MAX and
 * too many values; counts (and hands fn) the integers beyond int64. It
 * does not validate JSON: jansson does, on what passes.
 */
static enum ht_err scan_json(const char *s, size_t len, struct scan *sc,
			     struct perr *pe, big_int_fn fn, void *ctx)
{
	const char *nul = memchr(s, '\0', len);
	if (nul)
		return fail(pe, HT_ERR_INVALID, NULL, NULL,
			    "invalid JSON: NUL byte (byte %zu)",
			    (size_t)(nul - s) + 1);
	size_t depth = 0;
	memset(sc, 0, sizeof *sc);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == ' ' || c == ',' || c == ':' || c == '\n' || c == '\t' ||
		    c == '\r')
			continue;
		if (c == '"') {
			/* to the closing quote (or the end: jansson refuses
			 * an unclosed string), escapes skipped */
			sc->scalars++;
			for (i++; i < len && s[i] != '"'; i++) {
				if (s[i] != '\\')
					continue;
				if (i + 5 < len && s[i + 1] == 'u' &&
				    !memcmp(s + i + 2, "0000", 4))
					return fail(pe, HT_ERR_INVALID, NULL, NULL,
						    "invalid JSON: \\u0000 is not allowed in strings (byte %zu)",
						    i + 1);
				i++;
			}
		} else {
			enum ht_err err = scan_token(s, len, &i, &depth, sc, pe,
						     fn, ctx);
			if (err)
				return err;
		}
		if (sc->containers > JSON_CONTAINERS_MAX ||
		    sc->scalars > JSON_SCALARS_MAX)
			return scan_check_counts(sc, pe);
	}
	return HT_OK;
}

/* Copy of the line with its big integers quoted (see struct scan). */
struct rewrite {
	const char *src;
	char *out;
	size_t out_len;
	size_t copied; /* bytes of src copied so far */
};

static void rewrite_append(struct rewrite *rw, const char *s, size_t n)
{
	memcpy(rw->out + rw->out_len, s, n);
	rw->out_len += n;
}

static void rewrite_big_int(void *ctx, size_t start, size_t end)
{
	struct rewrite *rw = ctx;
	rewrite_append(rw, rw->src + rw->copied, start - rw->copied);
	rewrite_append(rw, "\"\\u0000", 7);
	rewrite_append(rw, rw->src + start, end - start);
	rewrite_append(rw, "\"", 1);
	rw->copied = end;
}

/* Map a byte position in the rewritten line back to the original. */
struct pos_map {
	size_t pos;   /* in the rewritten line */
	size_t shift; /* bytes inserted before it */
};

static void map_big_int(void *ctx, size_t start, size_t end)
{
	struct pos_map *m = ctx;
	(void)end;
	if (start + m->shift < m->pos)
		m->shift += BIG_INT_EXTRA;
}

static enum ht_err json_error(struct perr *pe, const json_error_t *je,
			      const char *line, size_t len, bool rewritten)
{
	if (json_error_code(je) == json_error_out_of_memory)
		return fail(pe, HT_ERR_NOMEM, NULL, NULL, "out of memory");
	size_t pos = je->position > 0 ? (size_t)je->position : 0;
	if (rewritten) {
		struct pos_map m = { pos, 0 };
		struct scan sc;
		struct perr quiet = { NULL, 0, 0, false };
		scan_json(line, len, &sc, &quiet, map_big_int, &m);
		pos = pos > m.shift ? pos - m.shift : 0;
	}
	return fail(pe, HT_ERR_INVALID, NULL, NULL, "invalid JSON: %s (byte %zu)",
		    je->text, pos);
}

/* Pre-scan, then build the tree with jansson. */
static enum ht_err load_json(struct perr *pe, const char *line, size_t len,
			     json_t **root)
{
	struct scan sc;
	enum ht_err err = scan_json(line, len, &sc, pe, NULL, NULL);
	if (err)
		return err;
	struct rewrite rw = { line, NULL, 0, 0 };
	size_t flags = JSON_REJECT_DUPLICATES;
	if (sc.big_count) {
		/* len <= HT_JSONL_LINE_BYTES_MAX and big_count < len: no overflow. */
		rw.out = malloc(len + BIG_INT_EXTRA * sc.big_count);
		if (!rw.out)
			return fail(pe, HT_ERR_NOMEM, NULL, NULL, "out of memory");
		scan_json(line, len, &sc, pe, rewrite_big_int, &rw);
		rewrite_append(&rw, line + rw.copied, len - rw.copied);
		flags |= JSON_ALLOW_NUL;
	}
	json_error_t je;
	if (sc.big_count)
		*root = json_loadb(rw.out, rw.out_len, flags, &je);
	else
		*root = json_loadb(line, len, flags, &je);
	free(rw.out);
	if (!*root)
		return json_error(pe, &je, line, len, sc.big_count > 0);
	if (!json_is_object(*root)) {
		json_decref(*root);
		*root = NULL;
		return fail(pe, HT_ERR_INVALID, NULL, NULL,
			    "request must be a JSON object");
	}
	return HT_OK;
}

/* ---- values ----------------------------------------------------------- */

enum num_type { NUM_U16, NUM_U32, NUM_U64, NUM_U128 };

static const struct {
	const char *name;
	ht_u128 max;
	const char *max_text;
} num_types[] = {
	[NUM_U16] = { "u16", UINT16_MAX, "65535" },
	[NUM_U32] = { "u32", UINT32_MAX, "4294967295" },
	[NUM_U64] = { "u64", UINT64_MAX, "2^64-1" },
	[NUM_U128] = { "u128", HT_U128_MAX, "2^128-1" },
};

/* How a number may be written: ids only as strings; everything else as a
 * decimal string or a JSON integer. */
enum num_form { FORM_STRING, FORM_STRING_OR_INT };

/* A JSON string that begins with NUL is a rewritten big integer. */
static bool is_big_int(const json_t *v)
{
	return json_is_string(v) && json_string_length(v) > 0 &&
	       json_string_value(v)[0] == '\0';
}

/* Digits (maybe with a leading '-' for a big integer) into a range-checked
 * number. */
static enum ht_err num_from_text(struct perr *pe, const struct where *w,
				 const char *field, const char *s, size_t n,
				 enum num_type t, ht_u128 *out)
{
	const char *tn = num_types[t].name;
	char q[QUOTE_SIZE];
	if (n > 0 && s[0] == '-' && n > 1 && is_digit((unsigned char)s[1]))
		return fail(pe, HT_ERR_INVALID, w, field,
			    "not a decimal %s (negative)", tn);
	ht_u128 x;
	enum ht_err err = ht_u128_parse(s, n, &x);
	if (err == HT_ERR_LIMIT || (!err && x > num_types[t].max))
		return fail(pe, HT_ERR_INVALID, w, field,
			    "not a decimal %s (exceeds %s)", tn,
			    num_types[t].max_text);
	if (err)
		return fail(pe, HT_ERR_INVALID, w, field, "not a decimal %s: %s",
			    tn, quote(q, s, n));
	*out = x;
	return HT_OK;
}

static enum ht_err get_num(struct perr *pe, const struct where *w,
			   const char *field, const json_t *v, enum num_type t,
			   enum num_form form, ht_u128 *out)
{
	const char *tn = num_types[t].name;
	bool big = is_big_int(v);
	if (form == FORM_STRING && (!json_is_string(v) || big))
		return fail(pe, HT_ERR_INVALID, w, field,
			    "must be a decimal string");
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);
		return num_from_text(pe, w, field, s + big, n - big, t, out);
	}
	if (json_is_integer(v)) {
		json_int_t x = json_integer_value(v);
		if (x < 0)
			return fail(pe, HT_ERR_INVALID, w, field,
				    "not a decimal %s (negative)", tn);
		if ((ht_u128)x > num_types[t].max)
			return fail(pe, HT_ERR_INVALID, w, field,
				    "not a decimal %s (exceeds %s)", tn,
				    num_types[t].max_text);
		*out = (ht_u128)x;
		return HT_OK;
	}
	if (json_is_real(v))
		return fail(pe, HT_ERR_INVALID, w, field,
			    "not a decimal %s (fraction or exponent)", tn);
	return fail(pe, HT_ERR_INVALID, w, field,
		    "must be a decimal string or a non-negative integer");
}

typedef enum ht_err (*flag_parse_fn)(const char *name, size_t len,
				     uint16_t *bit);

static enum ht_err get_flags(struct perr *pe, const struct where *w,
			     const json_t *v, flag_parse_fn parse,
			     uint16_t *flags)
{
	if (!json_is_array(v))
		return fail(pe, HT_ERR_INVALID, w, "flags",
			    "must be an array of flag names");
	uint16_t all = 0;
	for (size_t i = 0; i < json_array_size(v); i++) {
		const json_t *e = json_array_get(v, i);
		char field[32], q[QUOTE_SIZE];
		uint16_t bit;
		if (json_is_string(e) && !is_big_int(e) &&
		    !parse(json_string_value(e), json_string_length(e), &bit)) {
			all |= bit;
			continue;
		}
		snprintf(field, sizeof field, "flags[%zu]", i);
		if (!json_is_string(e) || is_big_int(e))
			return fail(pe, HT_ERR_INVALID, w, field,
				    "must be a flag name (a string)");
		return fail(pe, HT_ERR_INVALID, w, field, "unknown flag %s",
			    quote(q, json_string_value(e),
				  json_string_length(e)));
	}
	*flags = all;
	return HT_OK;
}

static enum ht_err get_user_data(struct perr *pe, const struct where *w,
				 const json_t *v, char *data, uint8_t *len)
{
	if (!json_is_string(v) || is_big_int(v))
		return fail(pe, HT_ERR_INVALID, w, "user_data",
			    "must be a string");
	size_t n = json_string_length(v);
	if (n > HT_USER_DATA_BYTES_MAX)
		return fail(pe, HT_ERR_LIMIT, w, "user_data",
			    "%zu bytes, longer than %d", n,
			    HT_USER_DATA_BYTES_MAX);
	memcpy(data, json_string_value(v), n);
	*len = (uint8_t)n;
	return HT_OK;
}

/* ---- objects ------------------------------------------------------------- */

enum field_kind {
	F_NUM,       /* a number stored at offset */
	F_IGNORED,   /* read-only u64 from a lookup: checked, not stored */
	F_FLAGS,     /* uint16_t at offset */
	F_USER_DATA, /* char[] at offset, uint8_t length at len_offset */
	F_BOOL,      /* sets bit in the uint32_t at offset */
	F_OP,        /* "op" at the top level, already read */
	F_RISK,      /* a transfer's "risk" object: into the request's risk */
};

struct field {
	const char *name;
	enum field_kind kind;
	bool required;
	enum num_type type;
	enum num_form form;
	size_t offset;
	size_t len_offset;
	flag_parse_fn parse_flag;
	uint32_t bit;
};

#define NUM(s, n, m, t, f, req) \
	{ n, F_NUM, req, t, f, offsetof(s, m), 0, NULL, 0 }
#define IGNORED(n) { n, F_IGNORED, false, NUM_U64, FORM_STRING_OR_INT, 0, 0, NULL, 0 }
#define FLAGS(s, fn) { "flags", F_FLAGS, false, 0, 0, offsetof(s, flags), 0, fn, 0 }
#define USER_DATA(s) \
	{ "user_data", F_USER_DATA, false, 0, 0, offsetof(s, user_data), \
	  offsetof(s, user_data_len), NULL, 0 }

static const struct field account_fields[] = {
	NUM(struct ht_account, "id", id, NUM_U128, FORM_STRING, true),
	NUM(struct ht_account, "ledger", ledger, NUM_U32, FORM_STRING_OR_INT, false),
	NUM(struct ht_account, "code", code, NUM_U16, FORM_STRING_OR_INT, false),
	FLAGS(struct ht_account, ht_account_flag_parse),
	USER_DATA(struct ht_account),
	IGNORED("debits_pending"),
	IGNORED("debits_posted"),
	IGNORED("credits_pending"),
	IGNORED("credits_posted"),
	IGNORED("timestamp"),
};

static const struct field transfer_fields[] = {
	NUM(struct ht_transfer, "id", id, NUM_U128, FORM_STRING, true),
	NUM(struct ht_transfer, "debit_account_id", debit_account_id, NUM_U128, FORM_STRING, false),
	NUM(struct ht_transfer, "credit_account_id", credit_account_id, NUM_U128, FORM_STRING, false),
	NUM(struct ht_transfer, "amount", amount, NUM_U64, FORM_STRING_OR_INT, false),
	NUM(struct ht_transfer, "pending_id", pending_id, NUM_U128, FORM_STRING, false),
	NUM(struct ht_transfer, "ledger", ledger, NUM_U32, FORM_STRING_OR_INT, false),
	NUM(struct ht_transfer, "code", code, NUM_U16, FORM_STRING_OR_INT, false),
	FLAGS(struct ht_transfer, ht_transfer_flag_parse),
	NUM(struct ht_transfer, "timeout_s", timeout_s, NUM_U32, FORM_STRING_OR_INT, false),
	USER_DATA(struct ht_transfer),
	IGNORED("timestamp"),
	{ "risk", F_RISK, false, 0, 0, 0, 0, NULL, 0 },
};

#define BOOL(n, b) \
	{ n, F_BOOL, false, 0, 0, offsetof(struct ht_account_filter, flags), 0, NULL, b }

static const struct field filter_fields[] = {
	{ "op", F_OP, false, 0, 0, 0, 0, NULL, 0 },
	NUM(struct ht_account_filter, "account_id", account_id, NUM_U128, FORM_STRING, true),
	NUM(struct ht_account_filter, "timestamp_min", timestamp_min, NUM_U64, FORM_STRING_OR_INT, false),
	NUM(struct ht_account_filter, "timestamp_max", timestamp_max, NUM_U64, FORM_STRING_OR_INT, false),
	NUM(struct ht_account_filter, "limit", limit, NUM_U32, FORM_STRING_OR_INT, false),
	BOOL("debits", HT_FILTER_DEBITS),
	BOOL("credits", HT_FILTER_CREDITS),
	BOOL("reversed", HT_FILTER_REVERSED),
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
_Static_assert(COUNT(transfer_fields) <= 32 && COUNT(account_fields) <= 32 &&
		       COUNT(filter_fields) <= 32,
	       "seen fields fit a uint32_t mask");

static void store_num(void *dst, enum num_type t, ht_u128 x)
{
	uint16_t u16 = (uint16_t)x;
	uint32_t u32 = (uint32_t)x;
	uint64_t u64 = (uint64_t)x;
	switch (t) {
	case NUM_U16: memcpy(dst, &u16, sizeof u16); break;
	case NUM_U32: memcpy(dst, &u32, sizeof u32); break;
	case NUM_U64: memcpy(dst, &u64, sizeof u64); break;
	case NUM_U128: memcpy(dst, &x, sizeof x); break;
	}
}

/* Where a transfer's "risk" object goes: r->risk[index], the array made
 * on first use. */
struct risk_slot {
	struct ht_request *r;
	size_t index;
};

/* One string member of a "risk" object into out (HT_PAYMENT_REF_BYTES):
 * null is "", otherwise 1..64 bytes without control characters. */
static enum ht_err get_risk_string(struct perr *pe, const struct where *w,
				   const char *field, const json_t *v,
				   char *out)
{
	if (json_is_null(v)) {
		out[0] = '\0';
		return HT_OK;
	}
	if (!json_is_string(v) || is_big_int(v))
		return fail(pe, HT_ERR_INVALID, w, field,
			    "must be a string or null");
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n == 0)
		return fail(pe, HT_ERR_INVALID, w, field,
			    "must not be empty (leave it out)");
	if (n >= HT_PAYMENT_REF_BYTES)
		return fail(pe, HT_ERR_LIMIT, w, field,
			    "%zu bytes, longer than %d", n,
			    HT_PAYMENT_REF_BYTES - 1);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return fail(pe, HT_ERR_INVALID, w, field,
				    "control character at byte %zu", i);
	memcpy(out, s, n);
	out[n] = '\0';
	return HT_OK;
}

static enum ht_err get_risk_channel(struct perr *pe, const struct where *w,
				    const json_t *v, struct ht_transfer_risk *out)
{
	char q[QUOTE_SIZE];
	if (json_is_null(v))
		return HT_OK;
	if (!json_is_string(v) || is_big_int(v))
		return fail(pe, HT_ERR_INVALID, w, "risk.channel",
			    "must be a channel name (a string)");
	if (ht_channel_parse(json_string_value(v), json_string_length(v),
			     &out->channel))
		return fail(pe, HT_ERR_INVALID, w, "risk.channel",
			    "unknown channel %s (p2p, qr, card, transfer,"
			    " cash_in, cash_out, bill)",
			    quote(q, json_string_value(v),
				  json_string_length(v)));
	out->channel_given = true;
	return HT_OK;
}

/* A transfer's "risk" object (struct ht_transfer_risk in jsonl.h). */
static enum ht_err get_risk(struct perr *pe, const struct where *w,
			    const json_t *v, struct risk_slot *rs)
{
	if (!rs)
		return fail(pe, HT_ERR_INVALID, w, NULL, "unknown field \"risk\"");
	if (!json_is_object(v))
		return fail(pe, HT_ERR_INVALID, w, "risk", "must be an object");
	struct ht_request *r = rs->r;
	HT_ASSERT(rs->index < r->count);
	if (!r->risk) {
		r->risk = calloc(r->count, sizeof *r->risk);
		if (!r->risk)
			return fail(pe, HT_ERR_NOMEM, NULL, NULL, "out of memory");
	}
	struct ht_transfer_risk *out = &r->risk[rs->index];
	out->given = true;
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)v, key, val) {
		enum ht_err err;
		char q[QUOTE_SIZE];
		if (!strcmp(key, "channel"))
			err = get_risk_channel(pe, w, val, out);
		else if (!strcmp(key, "device"))
			err = get_risk_string(pe, w, "risk.device", val,
					      out->device);
		else if (!strcmp(key, "ip"))
			err = get_risk_string(pe, w, "risk.ip", val, out->ip);
		else
			err = fail(pe, HT_ERR_INVALID, w, "risk",
				   "unknown field %s (channel, device, ip)",
				   quote(q, key, strlen(key)));
		if (err)
			return err;
	}
	return HT_OK;
}

static enum ht_err set_field(struct perr *pe, const struct where *w,
			     const struct field *f, const json_t *v, char *obj,
			     struct risk_slot *rs)
{
	ht_u128 x;
	enum ht_err err;
	switch (f->kind) {
	case F_NUM:
	case F_IGNORED:
		err = get_num(pe, w, f->name, v, f->type, f->form, &x);
		if (!err && f->kind == F_NUM)
			store_num(obj + f->offset, f->type, x);
		return err;
	case F_FLAGS:
		return get_flags(pe, w, v, f->parse_flag,
				 (uint16_t *)(void *)(obj + f->offset));
	case F_USER_DATA:
		return get_user_data(pe, w, v, obj + f->offset,
				     (uint8_t *)(obj + f->len_offset));
	case F_BOOL:
		if (!json_is_boolean(v))
			return fail(pe, HT_ERR_INVALID, w, f->name,
				    "must be true or false");
		if (json_is_true(v))
			*(uint32_t *)(void *)(obj + f->offset) |= f->bit;
		return HT_OK;
	case F_OP:
		return HT_OK;
	case F_RISK:
		return get_risk(pe, w, v, rs);
	}
	return HT_ERR_INVALID;
}

/*
 * Fill the struct at obj from the JSON object v by the field table: every
 * key must be in the table, every required field present. Values are
 * read in document order, so the first bad one is reported.
 */
static enum ht_err parse_object(struct perr *pe, const struct where *w,
				const json_t *v, const struct field *fields,
				size_t count, void *obj, struct risk_slot *rs)
{
	if (!json_is_object(v))
		return fail(pe, HT_ERR_INVALID, w, NULL, "must be an object");
	uint32_t seen = 0;
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)v, key, val) {
		size_t i = 0;
		while (i < count && strcmp(fields[i].name, key))
			i++;
		if (i == count) {
			char q[QUOTE_SIZE];
			return fail(pe, HT_ERR_INVALID, w, NULL,
				    "unknown field %s",
				    quote(q, key, strlen(key)));
		}
		seen |= 1u << i;
		enum ht_err err = set_field(pe, w, &fields[i], val, obj, rs);
		if (err)
			return err;
	}
	for (size_t i = 0; i < count; i++)
		if (fields[i].required && !(seen & (1u << i)))
			return fail(pe, HT_ERR_INVALID, w, fields[i].name,
				    "missing");
	return HT_OK;
}

/* ---- requests ------------------------------------------------------------ */

/* Only "op" and key may appear at the top level of this op. */
static enum ht_err check_top_keys(struct perr *pe, const json_t *root,
				  enum ht_op op, const char *key)
{
	const char *k;
	json_t *val;
	json_object_foreach((json_t *)root, k, val) {
		if (strcmp(k, "op") && strcmp(k, key)) {
			char q[QUOTE_SIZE];
			return fail(pe, HT_ERR_INVALID, NULL, NULL,
				    "unknown field %s for op %s",
				    quote(q, k, strlen(k)), ht_op_name(op));
		}
	}
	return HT_OK;
}

/* The request's one array (events or ids): present, an array, at most
 * max long. */
static enum ht_err get_array(struct perr *pe, const json_t *root,
			     enum ht_op op, const char *key, size_t max,
			     const char *what, const json_t **out)
{
	enum ht_err err = check_top_keys(pe, root, op, key);
	if (err)
		return err;
	struct where w = { key, 0, false };
	const json_t *a = json_object_get(root, key);
	if (!a)
		return fail(pe, HT_ERR_INVALID, &w, NULL, "missing");
	if (!json_is_array(a))
		return fail(pe, HT_ERR_INVALID, &w, NULL, "must be an array");
	pe->too_many = json_array_size(a) > max;
	if (json_array_size(a) > max)
		return fail(pe, HT_ERR_LIMIT, &w, NULL,
			    "%zu %s, more than the limit of %zu",
			    json_array_size(a), what, max);
	*out = a;
	return HT_OK;
}

static enum ht_err parse_events(struct perr *pe, const json_t *root,
				struct ht_request *r)
{
	bool acc = r->op == HT_OP_CREATE_ACCOUNTS;
	const char *key = acc ? "accounts" : "transfers";
	const json_t *a;
	enum ht_err err = get_array(pe, root, r->op, key, HT_BATCH_EVENTS_MAX,
				    "events", &a);
	if (err)
		return err;
	size_t n = json_array_size(a);
	size_t size = acc ? sizeof(struct ht_account) : sizeof(struct ht_transfer);
	char *events = n ? calloc(n, size) : NULL;
	if (n && !events)
		return fail(pe, HT_ERR_NOMEM, NULL, NULL, "out of memory");
	if (acc)
		r->accounts = (struct ht_account *)(void *)events;
	else
		r->transfers = (struct ht_transfer *)(void *)events;
	r->count = n;
	for (size_t i = 0; i < n; i++) {
		struct where w = { key, i, true };
		struct risk_slot rs = { r, i };
		err = acc ? parse_object(pe, &w, json_array_get(a, i),
					 account_fields, COUNT(account_fields),
					 &r->accounts[i], NULL)
			  : parse_object(pe, &w, json_array_get(a, i),
					 transfer_fields, COUNT(transfer_fields),
					 &r->transfers[i], &rs);
		if (err)
			return err;
	}
	return HT_OK;
}

static enum ht_err parse_lookup(struct perr *pe, const json_t *root,
				struct ht_request *r)
{
	const json_t *a;
	enum ht_err err = get_array(pe, root, r->op, "ids", HT_LOOKUP_IDS_MAX,
				    "ids", &a);
	if (err)
		return err;
	size_t n = json_array_size(a);
	r->ids = n ? calloc(n, sizeof *r->ids) : NULL;
	if (n && !r->ids)
		return fail(pe, HT_ERR_NOMEM, NULL, NULL, "out of memory");
	r->count = n;
	for (size_t i = 0; i < n; i++) {
		struct where w = { "ids", i, true };
		err = get_num(pe, &w, NULL, json_array_get(a, i), NUM_U128,
			      FORM_STRING, &r->ids[i]);
		if (err)
			return err;
	}
	return HT_OK;
}

static enum ht_err parse_filter(struct perr *pe, const json_t *root,
				struct ht_request *r)
{
	struct ht_account_filter *f = &r->filter;
	f->limit = HT_QUERY_LIMIT_MAX;
	enum ht_err err = parse_object(pe, &top_level, root, filter_fields,
				       COUNT(filter_fields), f, NULL);
	if (err)
		return err;
	if (f->limit == 0)
		return fail(pe, HT_ERR_INVALID, NULL, "limit",
			    "must be at least 1");
	if (f->limit > HT_QUERY_LIMIT_MAX)
		return fail(pe, HT_ERR_LIMIT, NULL, "limit",
			    "%u, more than the limit of %d", f->limit,
			    HT_QUERY_LIMIT_MAX);
	return HT_OK;
}

static enum ht_err parse_root(struct perr *pe, const json_t *root,
			      struct ht_request *r)
{
	const json_t *op = json_object_get(root, "op");
	char q[QUOTE_SIZE];
	if (!op)
		return fail(pe, HT_ERR_INVALID, NULL, "op", "missing");
	if (!json_is_string(op) || is_big_int(op))
		return fail(pe, HT_ERR_INVALID, NULL, "op", "must be a string");
	const char *s = json_string_value(op);
	size_t n = json_string_length(op);
	if (!op_parse(s, n, &r->op))
		return fail(pe, HT_ERR_INVALID, NULL, "op", "unknown op %s",
			    quote(q, s, n));
	switch (r->op) {
	case HT_OP_CREATE_ACCOUNTS:
	case HT_OP_CREATE_TRANSFERS:
		return parse_events(pe, root, r);
	case HT_OP_LOOKUP_ACCOUNTS:
	case HT_OP_LOOKUP_TRANSFERS:
		return parse_lookup(pe, root, r);
	case HT_OP_GET_ACCOUNT_TRANSFERS:
	case HT_OP_GET_ACCOUNT_BALANCES:
		return parse_filter(pe, root, r);
	}
	return fail(pe, HT_ERR_INVALID, NULL, "op", "unknown op");
}

void ht_request_free(struct ht_request *r)
{
	if (!r)
		return;
	free(r->accounts);
	free(r->transfers);
	free(r->risk);
	free(r->ids);
	memset(r, 0, sizeof *r);
}

static bool is_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!is_json_space((unsigned char)s[i]))
			return false;
	return true;
}

enum ht_err ht_jsonl_parse(const char *line, size_t len, struct ht_request *r,
			   char *err, size_t err_size)
{
	HT_ASSERT(r != NULL);
	HT_ASSERT(line != NULL || len == 0);
	struct perr pe = { err, err ? err_size : 0, 0, false };
	memset(r, 0, sizeof *r);
	if (pe.size)
		pe.buf[0] = '\0';
	if (len > HT_JSONL_LINE_BYTES_MAX)
		return fail(&pe, HT_ERR_LIMIT, NULL, NULL,
			    "line of %zu bytes, longer than the limit of %u",
			    len, HT_JSONL_LINE_BYTES_MAX);
	if (is_blank(line, len))
		return fail(&pe, HT_ERR_INVALID, NULL, NULL, "empty line");
	json_t *root;
	ht_json_arena_begin();
	enum ht_err e = load_json(&pe, line, len, &root);
	if (!e) {
		e = parse_root(&pe, root, r);
		json_decref(root);
	}
	ht_json_arena_end();
	if (e)
		ht_request_free(r);
	return e;
}

static enum ht_err parse_body(const char *body, size_t len, enum ht_op op,
			      struct ht_request *r, char *err, size_t err_size,
			      enum ht_jsonl_problem *problem)
{
	HT_ASSERT(r != NULL && problem != NULL);
	HT_ASSERT(body != NULL || len == 0);
	struct perr pe = { err, err ? err_size : 0, 0, false };
	memset(r, 0, sizeof *r);
	*problem = HT_JSONL_BAD_REQUEST;
	if (pe.size)
		pe.buf[0] = '\0';
	const char *name = ht_op_name(op);
	if (!name)
		return fail(&pe, HT_ERR_INVALID, NULL, "op", "unknown op");
	if (len > HT_JSONL_LINE_BYTES_MAX)
		return *problem = HT_JSONL_TOO_LARGE,
		       fail(&pe, HT_ERR_LIMIT, NULL, NULL,
			    "body of %zu bytes, longer than the limit of %u",
			    len, HT_JSONL_LINE_BYTES_MAX);
	if (is_blank(body, len)) {
		*problem = HT_JSONL_MALFORMED;
		return fail(&pe, HT_ERR_INVALID, NULL, NULL, "empty body");
	}
	json_t *root;
	enum ht_err e = load_json(&pe, body, len, &root);
	if (e) {
		/* everything load_json refuses is the JSON text itself, except
		 * the limits (nesting, size) and memory */
		if (pe.too_many)
			*problem = HT_JSONL_TOO_MANY;
		else if (e == HT_ERR_INVALID)
			*problem = HT_JSONL_MALFORMED;
		return e;
	}
	const json_t *have = json_object_get(root, "op");
	if (!have) {
		if (json_object_set_new(root, "op", json_string(name))) {
			json_decref(root);
			return fail(&pe, HT_ERR_NOMEM, NULL, NULL,
				    "out of memory");
		}
	} else if (!json_is_string(have) ||
		   strcmp(json_string_value(have), name)) {
		json_decref(root);
		return fail(&pe, HT_ERR_INVALID, NULL, "op",
			    "must be \"%s\" on this route (or left out)", name);
	}
	e = parse_root(&pe, root, r);
	json_decref(root);
	if (e)
		ht_request_free(r);
	if (e && pe.too_many)
		*problem = HT_JSONL_TOO_MANY;
	return e;
}

enum ht_err ht_jsonl_parse_body(const char *body, size_t len, enum ht_op op,
				struct ht_request *r, char *err,
				size_t err_size, enum ht_jsonl_problem *problem)
{
	ht_json_arena_begin();
	enum ht_err e = parse_body(body, len, op, r, err, err_size, problem);
	ht_json_arena_end();
	return e;
}

/* ---- an arena for jansson's allocations ---------------------------------- */

/*
 * jansson allocates every value, string and object table on its own; for a
 * batch of 8190 transfers that is ~100,000 malloc/free pairs, and half of a
 * parse's time went to malloc and the page faults behind it. Between
 * ht_json_arena_begin and _end, a thread's jansson allocations are carved
 * from chunks it keeps (bump allocation, free is a no-op inside them) and
 * reused by the next parse. Allocations beyond ARENA_CHUNKS_MAX chunks, and
 * every allocation outside an arena, go to malloc as before.
 */
#define ARENA_CHUNK_BYTES (4u << 20)
#define ARENA_CHUNKS_MAX 16      /* 64 MiB a thread at most */
#define ARENA_CHUNKS_KEPT 4      /* kept between parses: 16 MiB */

struct json_arena {
	char *chunk[ARENA_CHUNKS_MAX];
	unsigned n, cur;
	size_t used;               /* bytes used in chunk[cur] */
	unsigned depth;
};
static _Thread_local struct json_arena arena;

static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static pthread_key_t arena_key; /* its destructor frees a thread's chunks */

static void arena_thread_exit(void *p)
{
	struct json_arena *a = p;
	while (a->n)
		free(a->chunk[--a->n]);
}

static void *arena_malloc(size_t n)
{
	struct json_arena *a = &arena;
	if (a->depth && n <= ARENA_CHUNK_BYTES) {
		size_t need = (n + 15) & ~(size_t)15;
		for (;;) {
			if (a->cur < a->n && a->used + need <= ARENA_CHUNK_BYTES) {
				void *p = a->chunk[a->cur] + a->used;
				a->used += need;
				return p;
			}
			if (a->cur + 1 < a->n) {
				a->cur++;
				a->used = 0;
				continue;
			}
			if (a->n == ARENA_CHUNKS_MAX)
				break;
			char *c = malloc(ARENA_CHUNK_BYTES);
			if (!c)
				break;
			if (a->n == 0)
				pthread_setspecific(arena_key, a);
			a->chunk[a->n++] = c;
			a->cur = a->n - 1;
			a->used = 0;
		}
	}
	return malloc(n);
}

static void arena_free(void *p)
{
	const struct json_arena *a = &arena;
	for (unsigned i = 0; i < a->n; i++)
		if ((char *)p >= a->chunk[i] &&
		    (char *)p < a->chunk[i] + ARENA_CHUNK_BYTES)
			return;
	free(p);
}

static void arena_install(void)
{
	HT_ASSERT(pthread_key_create(&arena_key, arena_thread_exit) == 0);
	json_set_alloc_funcs(arena_malloc, arena_free);
}

void ht_json_arena_begin(void)
{
	pthread_once(&arena_once, arena_install);
	arena.depth++;
}

void ht_json_arena_end(void)
{
	struct json_arena *a = &arena;
	HT_ASSERT(a->depth > 0);
	if (--a->depth)
		return;
	a->cur = 0;
	a->used = 0;
	while (a->n > ARENA_CHUNKS_KEPT)
		free(a->chunk[--a->n]);
}

/* ---- line reader ------------------------------------------------------- */

struct ht_line_reader {
	FILE *in;          /* borrowed */
	size_t max_bytes;
	char *buf;         /* max_bytes + 2: a line, its '\r', the NUL */
	uint64_t line_no;  /* lines returned so far */
	enum ht_err done;  /* HT_ERR_NOT_FOUND / HT_ERR_IO once reached */
};

enum ht_err ht_line_reader_create(FILE *in, size_t max_bytes,
				  struct ht_line_reader **out)
{
	if (!in || !out || max_bytes > SIZE_MAX / 2)
		return HT_ERR_INVALID;
	struct ht_line_reader *r = calloc(1, sizeof *r);
	if (!r)
		return HT_ERR_NOMEM;
	r->buf = malloc(max_bytes + 2);
	if (!r->buf) {
		free(r);
		return HT_ERR_NOMEM;
	}
	r->in = in;
	r->max_bytes = max_bytes;
	*out = r;
	return HT_OK;
}

void ht_line_reader_destroy(struct ht_line_reader *r)
{
	if (!r)
		return;
	free(r->buf);
	free(r);
}

/*
 * Bytes go one at a time through getc_unlocked (stdio's own buffer): a
 * bulk fread would block on a pipe until its whole request is filled,
 * and an interactive client waits for each answer before it writes the
 * next line. The buffer keeps max_bytes + 1 bytes so that a line of
 * exactly max_bytes followed by "\r\n" is still accepted.
 */
enum ht_err ht_line_reader_next(struct ht_line_reader *r, const char **line,
				size_t *len, uint64_t *line_no)
{
	HT_ASSERT(r != NULL);
	if (r->done) {
		*line_no = r->line_no;
		return r->done;
	}
	size_t n = 0;
	bool any = false, too_long = false;
	int c;
	while ((c = getc_unlocked(r->in)) != EOF) {
		any = true;
		if (c == '\n')
			break;
		if (n <= r->max_bytes)
			r->buf[n++] = (char)c;
		else
			too_long = true;
	}
	if (c == EOF && (ferror(r->in) || !any)) {
		r->done = ferror(r->in) ? HT_ERR_IO : HT_ERR_NOT_FOUND;
		*line_no = r->line_no + (r->done == HT_ERR_IO);
		return r->done;
	}
	*line_no = ++r->line_no;
	if (!too_long && n > 0 && r->buf[n - 1] == '\r')
		n--;
	if (too_long || n > r->max_bytes) {
		*line = NULL;
		*len = 0;
		return HT_ERR_LIMIT;
	}
	r->buf[n] = '\0';
	*line = r->buf;
	*len = n;
	return HT_OK;
}

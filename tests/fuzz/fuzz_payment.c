/*
 * fuzz_payment.c — interchange lines are outside input to `huitong risk
 * score|train`, supervision and import: any bytes through
 * ht_payment_parse and ht_label_parse. Checked: neither aborts or reads
 * out of bounds; a line that parses as a payment formats (never 0 bytes,
 * never beyond HT_PAYMENT_FORMAT_BYTES_MAX) and parses back to the same
 * struct, field by field, and formatting that again gives the same bytes;
 * the same for labels; a failure always leaves a message.
 *
 * Owner: risk. Corpus: tests/fuzz/corpus/fuzz_payment (simulator lines,
 * the accepted timestamp forms, integer amounts, labels, and a few
 * malformed lines the fuzzer mutates).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "huitong/payment.h"

#define CHECK(e) ((e) ? (void)0 : abort())

static void same_payment(const struct ht_payment *a, const struct ht_payment *b)
{
	CHECK(!strcmp(a->id, b->id));
	CHECK(a->ts_ms == b->ts_ms);
	CHECK(!strcmp(a->payer, b->payer));
	CHECK(!strcmp(a->payee, b->payee));
	CHECK(!strcmp(a->payer_participant, b->payer_participant));
	CHECK(!strcmp(a->payee_participant, b->payee_participant));
	CHECK(a->amount == b->amount);
	CHECK(!strcmp(a->currency, b->currency));
	CHECK(a->channel == b->channel);
	CHECK(!strcmp(a->device, b->device));
	CHECK(!strcmp(a->ip, b->ip));
}

static void payment(const char *line, size_t len)
{
	struct ht_payment p, q;
	char err[256] = "";
	enum ht_err e = ht_payment_parse(line, len, &p, err, sizeof err);
	if (e) {
		CHECK(e == HT_ERR_INVALID || e == HT_ERR_LIMIT);
		CHECK(err[0] != '\0');
		return;
	}
	char buf[HT_PAYMENT_FORMAT_BYTES_MAX + 1], again[sizeof buf];
	size_t n = ht_payment_format(&p, buf, sizeof buf);
	CHECK(n > 0 && n <= HT_PAYMENT_FORMAT_BYTES_MAX && buf[n] == '\0');
	CHECK(ht_payment_parse(buf, n, &q, err, sizeof err) == HT_OK);
	same_payment(&p, &q);
	CHECK(ht_payment_format(&q, again, sizeof again) == n);
	CHECK(!memcmp(buf, again, n));
	/* Too small a buffer is refused, never overrun. */
	CHECK(ht_payment_format(&p, again, n) == 0);
}

static void label(const char *line, size_t len)
{
	struct ht_label l, m;
	char err[256] = "";
	enum ht_err e = ht_label_parse(line, len, &l, err, sizeof err);
	if (e) {
		CHECK(e == HT_ERR_INVALID || e == HT_ERR_LIMIT);
		CHECK(err[0] != '\0');
		return;
	}
	char buf[HT_LABEL_FORMAT_BYTES_MAX + 1];
	size_t n = ht_label_format(&l, buf, sizeof buf);
	CHECK(n > 0 && n <= HT_LABEL_FORMAT_BYTES_MAX);
	CHECK(ht_label_parse(buf, n, &m, err, sizeof err) == HT_OK);
	CHECK(!strcmp(l.id, m.id) && l.fraud == m.fraud && l.type == m.type);
}

/* A message about the JSON itself (which the added key may change), not
 * about a field. */
static bool structural(const char *msg)
{
	return !strncmp(msg, "invalid JSON", 12) || !strncmp(msg, "JSON nested", 11) ||
	       !strncmp(msg, "line longer", 11) || !strncmp(msg, "expected a JSON", 15);
}

/* line with "~":0 put first in its object, or 0 when it does not start
 * with a non-empty object or would grow past the line limit. */
static size_t via_jansson(const char *line, size_t len, char *out)
{
	size_t i = 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\n' ||
			   line[i] == '\r'))
		i++;
	if (i == len || line[i] != '{' || len + 6 > HT_PAYMENT_LINE_BYTES_MAX)
		return 0;
	size_t j = i + 1;
	while (j < len && (line[j] == ' ' || line[j] == '\t' || line[j] == '\n' ||
			   line[j] == '\r'))
		j++;
	if (j < len && line[j] == '}')
		return 0;
	memcpy(out, line, i + 1);
	memcpy(out + i + 1, "\"~\":0,", 6);
	memcpy(out + i + 7, line + i + 1, len - i - 1);
	return len + 6;
}

/*
 * The two answers for one line agree: the same code, and the same
 * payment or message. A structural refusal of the longer line can only be
 * the added key colliding with one of the line's own (spelt "~" or with
 * escapes): then the answers are not comparable.
 */
static void agree(enum ht_err ra, const char *ea, enum ht_err rb,
		  const char *eb)
{
	if (rb != HT_OK && structural(eb)) {
		CHECK(ra != HT_OK || strstr(eb, "duplicate"));
		return;
	}
	CHECK(ra == rb);
	if (ra != HT_OK)
		CHECK(!strcmp(ea, eb));
}

static void same_as_jansson(const char *line, size_t len)
{
	static char forced[HT_PAYMENT_LINE_BYTES_MAX];
	size_t n = via_jansson(line, len, forced);
	if (!n)
		return;
	struct ht_payment a, b;
	char ea[256] = "", eb[256] = "";
	enum ht_err ra = ht_payment_parse(line, len, &a, ea, sizeof ea);
	enum ht_err rb = ht_payment_parse(forced, n, &b, eb, sizeof eb);
	agree(ra, ea, rb, eb);
	if (ra == HT_OK && rb == HT_OK)
		same_payment(&a, &b);
	struct ht_label la, lb;
	ea[0] = eb[0] = '\0';
	ra = ht_label_parse(line, len, &la, ea, sizeof ea);
	rb = ht_label_parse(forced, n, &lb, eb, sizeof eb);
	agree(ra, ea, rb, eb);
	if (ra == HT_OK && rb == HT_OK)
		CHECK(!strcmp(la.id, lb.id) && la.fraud == lb.fraud &&
		      la.type == lb.type);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A private copy, so a read past size is caught by ASan. */
	char *line = malloc(size ? size : 1);
	CHECK(line != NULL);
	memcpy(line, data, size);
	payment(line, size);
	label(line, size);
	same_as_jansson(line, size);
	free(line);
	return 0;
}

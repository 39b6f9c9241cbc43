/*
 * fuzz_line_reader.c — any bytes through the bounded line reader, read
 * via fmemopen with a small max_bytes taken from the first byte. Every
 * answer is checked against a model that splits the bytes on '\n' itself:
 * same lines, same numbers, HT_ERR_LIMIT exactly for the lines longer
 * than max_bytes (after one trailing '\r' is dropped), then
 * HT_ERR_NOT_FOUND.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "huitong/jsonl.h"

#define CHECK(e) ((e) ? (void)0 : abort())

/* The reader's answer for the line data[pos..end) numbered no. */
static void check_line(struct ht_line_reader *r, const uint8_t *data,
		       size_t pos, size_t end, size_t max_bytes, uint64_t no)
{
	size_t n = end - pos;
	if (n && data[end - 1] == '\r')
		n--;
	const char *line = NULL;
	size_t len = 0;
	uint64_t got_no = 0;
	enum ht_err e = ht_line_reader_next(r, &line, &len, &got_no);
	CHECK(got_no == no);
	if (n > max_bytes) {
		CHECK(e == HT_ERR_LIMIT);
		return;
	}
	CHECK(e == HT_OK);
	CHECK(len == n);
	CHECK(line[len] == '\0');
	CHECK(!n || !memcmp(line, data + pos, n));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t max_bytes = data[0] % 64;
	data++;
	size--;
	/* fmemopen wants a writable buffer even to read. */
	uint8_t *copy = malloc(size);
	CHECK(copy != NULL);
	memcpy(copy, data, size);
	FILE *f = fmemopen(copy, size, "r");
	CHECK(f != NULL);
	struct ht_line_reader *r;
	CHECK(ht_line_reader_create(f, max_bytes, &r) == HT_OK);
	uint64_t no = 0;
	size_t pos = 0;
	while (pos < size) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t end = nl ? (size_t)(nl - data) : size;
		check_line(r, data, pos, end, max_bytes, ++no);
		pos = end + 1;
	}
	const char *line;
	size_t len;
	uint64_t got_no = 0;
	CHECK(ht_line_reader_next(r, &line, &len, &got_no) == HT_ERR_NOT_FOUND);
	CHECK(got_no == no);
	ht_line_reader_destroy(r);
	fclose(f);
	free(copy);
	return 0;
}

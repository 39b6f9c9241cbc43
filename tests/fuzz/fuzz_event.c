/*
 * fuzz_event.c — stored journal leaves are outside input to the hub that
 * reopens a store (and to `journal verify`): any bytes through
 * ht_event_decode and ht_ledger_replay. The input is a sequence of leaves,
 * each one length byte then that many bytes. Checked: a leaf that decodes
 * re-encodes to exactly the same bytes (the encoding is canonical, refusals
 * included); replay answers HT_OK or HT_ERR_CORRUPT and never aborts; an
 * event that fails to replay changes nothing, so the engine's full check
 * holds after every step and the last timestamp only moves on success.
 *
 * Owner: ledger. Corpus: tests/fuzz/corpus/fuzz_event (valid histories of
 * every kind, which the fuzzer mutates).
 */
#include <stdlib.h>
#include <string.h>

#include "huitong/ledger.h"

#define CHECK(e) ((e) ? (void)0 : abort())

static uint64_t fixed_now(void *ctx)
{
	(void)ctx;
	return 1;
}

static void one_leaf(struct ht_ledger *l, const uint8_t *d, size_t n)
{
	struct ht_event e;
	if (ht_event_decode(d, n, &e) != HT_OK)
		return;
	uint8_t again[HT_LEAF_BYTES_MAX];
	size_t len = 0;
	CHECK(ht_event_encode(&e, again, &len) == HT_OK);
	CHECK(len == n && memcmp(again, d, n) == 0);
	uint64_t last = ht_ledger_last_timestamp(l);
	size_t accounts = ht_ledger_account_count(l);
	size_t transfers = ht_ledger_transfer_count(l);
	enum ht_err err = ht_ledger_replay(l, &e);
	CHECK(err == HT_OK || err == HT_ERR_CORRUPT);
	if (err) {
		CHECK(ht_ledger_last_timestamp(l) == last);
		CHECK(ht_ledger_account_count(l) == accounts);
		CHECK(ht_ledger_transfer_count(l) == transfers);
	} else {
		CHECK(ht_ledger_last_timestamp(l) == ht_event_timestamp(&e));
	}
	CHECK(ht_ledger_check(l) == HT_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ht_clock clock = {fixed_now, NULL};
	struct ht_ledger *l;
	CHECK(ht_ledger_create(&clock, &l) == HT_OK);
	/* At most 256 leaves: each check is O(state). */
	for (size_t pos = 0, k = 0; pos < size && k < 256; k++) {
		size_t n = data[pos++];
		if (n > size - pos)
			n = size - pos;
		one_leaf(l, data + pos, n);
		pos += n;
	}
	ht_ledger_destroy(l);
	return 0;
}

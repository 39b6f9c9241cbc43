/*
 * journal.c — signed tree heads: their canonical bytes, hash chain,
 * signature and JSON form.
 *
 * Owner: journal. Never signs anything but a head's canonical bytes, and
 * never changes the byte layout of a shipped head (verifiers in the field
 * recompute it): extend with a new magic instead.
 */
#include "huitong/journal.h"

#include <stdio.h>
#include <string.h>

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

size_t ht_sth_signed_bytes(const struct ht_sth *h, uint8_t *out)
{
	uint8_t *p = out;
	memcpy(p, "HTSTH1", 6);
	p += 6;
	*p++ = (uint8_t)h->hash;
	*p++ = (uint8_t)h->sign;
	p = put_u64(p, h->seq);
	p = put_u64(p, h->tree_size);
	p = put_u64(p, h->time_ns);
	memcpy(p, h->root, HT_HASH_BYTES);
	p += HT_HASH_BYTES;
	memcpy(p, h->prev_hash, HT_HASH_BYTES);
	p += HT_HASH_BYTES;
	HT_ASSERT((size_t)(p - out) == HT_STH_SIGNED_BYTES);
	return HT_STH_SIGNED_BYTES;
}

enum ht_err ht_sth_hash(struct ht_hasher *h, const struct ht_sth *sth,
			uint8_t out[HT_HASH_BYTES])
{
	uint8_t bytes[HT_STH_BYTES_MAX];
	size_t n = ht_sth_signed_bytes(sth, bytes);
	HT_ASSERT(sth->sig_len <= HT_SIG_BYTES_MAX);
	return ht_hash3(h, bytes, n, sth->sig, sth->sig_len, NULL, 0, out);
}

enum ht_err ht_sth_sign(const struct ht_key *key, struct ht_sth *sth)
{
	uint8_t bytes[HT_STH_BYTES_MAX];
	size_t n = ht_sth_signed_bytes(sth, bytes);
	return ht_sign(key, bytes, n, sth->sig, &sth->sig_len);
}

enum ht_err ht_sth_verify(const struct ht_key *key, const struct ht_sth *sth)
{
	uint8_t bytes[HT_STH_BYTES_MAX];
	size_t n = ht_sth_signed_bytes(sth, bytes);
	if (sth->sig_len == 0 || sth->sig_len > HT_SIG_BYTES_MAX)
		return HT_ERR_VERIFY;
	return ht_verify(key, bytes, n, sth->sig, sth->sig_len);
}

void ht_sth_json(const struct ht_sth *sth, char *out, size_t size)
{
	char root[2 * HT_HASH_BYTES + 1], prev[2 * HT_HASH_BYTES + 1];
	char sig[2 * HT_SIG_BYTES_MAX + 1];
	ht_hex_encode(sth->root, HT_HASH_BYTES, root);
	ht_hex_encode(sth->prev_hash, HT_HASH_BYTES, prev);
	ht_hex_encode(sth->sig, sth->sig_len, sig);
	snprintf(out, size,
		 "{\"seq\":%llu,\"tree_size\":%llu,\"time_ns\":\"%llu\","
		 "\"root\":\"%s\",\"prev_hash\":\"%s\",\"hash\":\"%s\","
		 "\"sign\":\"%s\",\"signature\":\"%s\"}",
		 (unsigned long long)sth->seq,
		 (unsigned long long)sth->tree_size,
		 (unsigned long long)sth->time_ns, root, prev,
		 ht_hash_alg_name(sth->hash), ht_sign_alg_name(sth->sign), sig);
}

uint64_t ht_journal_node_count(uint64_t n)
{
	uint64_t count = 0;
	for (unsigned k = HT_JOURNAL_NODE_LEVEL_MIN; k < 64 && (n >> k); k++)
		count += n >> k;
	return count;
}

uint64_t ht_journal_node_seq(unsigned level, uint64_t index)
{
	HT_ASSERT(level >= HT_JOURNAL_NODE_LEVEL_MIN && level < 64);
	/* completed by leaf L = (index + 1) * 2^level - 1, after every node
	 * completed by the leaves before it, then levels K..level. */
	uint64_t last_leaf = ((index + 1) << level) - 1;
	return ht_journal_node_count(last_leaf) + (level - HT_JOURNAL_NODE_LEVEL_MIN);
}

/*
 * limits.h — every limit in huitong, in one place, each with why.
 * Related limits are tied together with _Static_assert.
 */
#ifndef HUITONG_LIMITS_H
#define HUITONG_LIMITS_H

/* Events in one create_accounts/create_transfers batch. 8190 matches the
 * batch size banks' clients already use with TigerBeetle-like ledgers and
 * keeps one batch's WAL frames around a few MiB. */
#define HT_BATCH_EVENTS_MAX 8190

/* Ids in one lookup request. */
#define HT_LOOKUP_IDS_MAX 8190

/* Bytes of user_data (UTF-8 string) on an account or transfer. Small so
 * an event's journal leaf stays within three SM3 blocks. */
#define HT_USER_DATA_BYTES_MAX 32

/* One JSONL request line. A full 8190-transfer batch with every field is
 * about 3 MiB of JSON; 4 MiB leaves headroom. Longer lines are rejected
 * with an error line and skipped without being buffered. */
#define HT_JSONL_LINE_BYTES_MAX (4u * 1024 * 1024)

/* Nesting depth of a request's JSON. Requests are 3 deep. */
#define HT_JSON_DEPTH_MAX 8

/* Rows returned by one account-transfers or balance-history query. */
#define HT_QUERY_LIMIT_MAX 8190

/* Batches coalesced into one store transaction (group commit). */
#define HT_COMMIT_BATCHES_MAX 64

/* Largest encoded journal leaf (one event). */
#define HT_LEAF_BYTES_MAX 160

/* Longest Merkle proof: the tree size is a u64. */
#define HT_PROOF_HASHES_MAX 128

/* Largest digest / signature we handle. */
#define HT_HASH_BYTES_MAX 32
#define HT_SIG_BYTES_MAX 160

/* Maximum timeout of a pending transfer: ~ 136 years fits u32 seconds. */
#define HT_TIMEOUT_S_MAX 0xffffffffu

/* ISO 20022 (iso20022.h). One pacs.008 message: 4 MiB holds a few
 * thousand full transactions, more than banks put in one interbank
 * message; larger is refused (FF01) before libxml2 sees a byte. */
#define HT_ISO_XML_BYTES_MAX (4u * 1024 * 1024)
/* Element nesting, envelope included. The deepest pacs.008 path
 * (structured remittance) is about 14 levels. */
#define HT_ISO_XML_DEPTH_MAX 32
/* CdtTrfTxInf in one message: NbOfTxs is Max15NumericText, but a larger
 * batch belongs in several messages; the answer holds one TxInfAndSts per
 * transaction. */
#define HT_ISO_TXS_MAX 10000

_Static_assert(HT_LOOKUP_IDS_MAX <= HT_BATCH_EVENTS_MAX * 2,
	       "lookup batches are bounded like create batches");
_Static_assert(HT_USER_DATA_BYTES_MAX < 256, "user_data length is one byte");

_Static_assert(HT_ISO_XML_DEPTH_MAX < 256,
	       "below libxml2's own depth limit, so ours is the one that answers");

#endif

/*
 * features.h — the risk engine's feature catalogue and the bounded state
 * that computes it: velocity (counts and sums over sliding windows),
 * distinct counterparties, first-seen facts, account age and the
 * payment's own attributes, for every payment, in time order.
 *
 * Owner: risk. The catalogue below is the one list of feature names: the
 * rule language refers to them (`payer.count_1h > 5`), the model uses
 * them as columns in this order, and docs/risk-features.md documents
 * them (a unit test checks it names every one). Extend the catalogue at
 * the end of a group; never rename or reorder without retraining.
 *
 * How it is used: for each payment, in non-decreasing time,
 *
 *     ht_features_compute(state, &p, f);   features against history
 *     ... rules and model decide ...
 *     ht_features_update(state, &p);       only if p is committed
 *
 * compute only reads the state: the features describe the payment
 * against everything recorded BEFORE it, never counting itself. update
 * records it; call it for payments that commit (allowed, or held for
 * review and created as pending), not for blocked ones, so a fraudster's
 * refused attempts do not become "history" that makes the next attempt
 * look familiar. Payments whose updates have not yet been made are
 * invisible to compute: to see payment k in the features of payment k+1,
 * update k before computing k+1.
 *
 * Threads: one writer. compute and update are called from one thread
 * (the hub's), never concurrently with each other or with close; the
 * state has no locks. stats may be called from that thread too.
 *
 * Memory: every table is allocated once, at open, from the budget in
 * struct ht_risk_config; nothing is allocated per payment. When there is
 * no room for a new entry the least recently updated of its candidates
 * is evicted (see "state" below) and counted. docs/risk-features.md has
 * the layout and the budget arithmetic.
 */
#ifndef HUITONG_FEATURES_H
#define HUITONG_FEATURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "huitong/common.h"
#include "huitong/payment.h"

/* ---- windows --------------------------------------------------------------
 *
 * A window of length W is a ring of HT_FEATURE_WINDOW_BUCKETS aligned
 * buckets, each W / (HT_FEATURE_WINDOW_BUCKETS - 1) long (its granule g).
 * The value for a window at time t is the sum of the bucket holding t and
 * the buckets before it: every payment of the last W is counted, and no
 * payment older than W + g is. Precisely, with times in whole seconds, a
 * payment at time s is counted at time t exactly when
 * floor(s/g) >= floor(t/g) - (BUCKETS - 1); so
 *
 *     exact(t, W) <= value <= exact(t, W + g)
 *
 * where exact(t, X) counts the payments with t - X < s <= t. Counts are
 * exact integers in that sense (a bucket saturates at 65535 payments);
 * sums are float (relative error below count * 2^-24). The tests check
 * both the equality and the bound against a brute-force reference. Three
 * buckets (g = W/2) rather than more: measured, the bytes a payment reads
 * are its cost, and 72 bytes hold an entity's eight windows.
 */
#define HT_FEATURE_WINDOW_BUCKETS 3
#define HT_FEATURE_GRANULE_1M_S 30u      /* 1 min: counts 60 to 90 s   */
#define HT_FEATURE_GRANULE_1H_S 1800u    /* 1 h: counts 60 to 90 min   */
#define HT_FEATURE_GRANULE_24H_S 43200u  /* 24 h: counts 24 to 36 h    */
#define HT_FEATURE_GRANULE_7D_S 302400u  /* 7 d: counts 7 to 10.5 d    */

/* Local time for hour and weekday: China Standard Time, UTC+8, no DST. */
#define HT_FEATURE_LOCAL_OFFSET_S (8 * 3600)

/* The payer's amount history (payer.amount_*) is a running mean and
 * variance of ln(1 + yuan): exact over the first HT_FEATURE_AMOUNT_HISTORY
 * payments, then exponentially weighted with weight 1/HISTORY for the
 * newest (about the last HISTORY payments matter). */
#define HT_FEATURE_AMOUNT_HISTORY 64
/* Floor of the standard deviation in payer.amount_z, in ln units: a payer
 * who always pays the same amount does not turn a 1% change into a huge
 * z-score. */
#define HT_FEATURE_AMOUNT_SIGMA_MIN 0.25

/* ---- the numeric catalogue ------------------------------------------------
 *
 * X(ID, "name", kind, "unit", "meaning"). Entity windows come from one
 * macro so every entity has the same eight: count_ and sum_ over 1m, 1h,
 * 24h, 7d (see "windows" above for the exact span). Sums are in yuan
 * (major units: fen / 100). "Seconds since first seen" is 0 when this
 * payment is the first sighting (never seen, or forgotten by eviction),
 * so `device.first_seen < 600` means "new within ten minutes" and
 * includes brand-new devices; the *.new flags tell "never" from "just now".
 */
#define HT_FEATURE_WINDOWS_(X, E, e, who)                                      \
	X(E##_COUNT_1M, e ".count_1m", HT_FEATURE_KIND_COUNT, "payments",      \
	  "payments " who " in the last minute (to 90 s)")                      \
	X(E##_SUM_1M, e ".sum_1m", HT_FEATURE_KIND_AMOUNT, "yuan",             \
	  "amount of the payments " who " in the last minute (to 90 s)")        \
	X(E##_COUNT_1H, e ".count_1h", HT_FEATURE_KIND_COUNT, "payments",      \
	  "payments " who " in the last hour (to 90 min)")                      \
	X(E##_SUM_1H, e ".sum_1h", HT_FEATURE_KIND_AMOUNT, "yuan",             \
	  "amount of the payments " who " in the last hour (to 90 min)")        \
	X(E##_COUNT_24H, e ".count_24h", HT_FEATURE_KIND_COUNT, "payments",    \
	  "payments " who " in the last 24 h (to 36 h)")                        \
	X(E##_SUM_24H, e ".sum_24h", HT_FEATURE_KIND_AMOUNT, "yuan",           \
	  "amount of the payments " who " in the last 24 h (to 36 h)")          \
	X(E##_COUNT_7D, e ".count_7d", HT_FEATURE_KIND_COUNT, "payments",      \
	  "payments " who " in the last 7 days (to 10.5 days)")                \
	X(E##_SUM_7D, e ".sum_7d", HT_FEATURE_KIND_AMOUNT, "yuan",             \
	  "amount of the payments " who " in the last 7 days (to 10.5 days)")

#define HT_FEATURES(X)                                                         \
	HT_FEATURE_WINDOWS_(X, PAYER, "payer", "made by the payer")            \
	X(PAYER_DISTINCT_PAYEES_24H, "payer.distinct_payees_24h",              \
	  HT_FEATURE_KIND_COUNT, "parties",                                    \
	  "distinct payees the payer paid in the last 24 h (to 36 h)")          \
	X(PAYER_AGE, "payer.age", HT_FEATURE_KIND_SECONDS, "s",                \
	  "seconds since the payer was first seen, as payer or payee")          \
	X(PAYER_IDLE, "payer.idle", HT_FEATURE_KIND_SECONDS, "s",              \
	  "seconds since the payer's previous payment, made or received")      \
	X(PAYER_AMOUNT_N, "payer.amount_n", HT_FEATURE_KIND_COUNT, "payments", \
	  "payments the payer has made (its amount history's length)")        \
	X(PAYER_AMOUNT_TYPICAL, "payer.amount_typical", HT_FEATURE_KIND_AMOUNT,\
	  "yuan", "the payer's typical amount: exp(mean ln(1+yuan)) - 1; 0 "   \
	  "without history")                                                   \
	X(PAYER_AMOUNT_RATIO, "payer.amount_ratio", HT_FEATURE_KIND_RATIO, "x",\
	  "amount / max(payer.amount_typical, 0.01); 1 without history")       \
	X(PAYER_AMOUNT_Z, "payer.amount_z", HT_FEATURE_KIND_RATIO, "sigma",    \
	  "(ln(1+amount) - mean) / max(sd, 0.25) over the payer's history; "  \
	  "0 without history")                                                 \
	HT_FEATURE_WINDOWS_(X, PAYEE, "payee", "received by the payee")        \
	X(PAYEE_DISTINCT_PAYERS_24H, "payee.distinct_payers_24h",              \
	  HT_FEATURE_KIND_COUNT, "parties",                                    \
	  "distinct payers who paid the payee in the last 24 h (to 36 h)")      \
	X(PAYEE_AGE, "payee.age", HT_FEATURE_KIND_SECONDS, "s",                \
	  "seconds since the payee was first seen, as payer or payee")          \
	X(PAYEE_IDLE, "payee.idle", HT_FEATURE_KIND_SECONDS, "s",              \
	  "seconds since the payee's previous payment, made or received")      \
	HT_FEATURE_WINDOWS_(X, DEVICE, "device", "from the device")            \
	X(DEVICE_PRESENT, "device.present", HT_FEATURE_KIND_FLAG, "0/1",       \
	  "1 when the payment names a device")                                 \
	X(DEVICE_NEW, "device.new", HT_FEATURE_KIND_FLAG, "0/1",               \
	  "1 when the device was never seen before, or so long ago it was "    \
	  "forgotten (0 without a device)")                                    \
	X(DEVICE_FIRST_SEEN, "device.first_seen", HT_FEATURE_KIND_SECONDS, "s",\
	  "seconds since the device was first seen, with any payer; 0 when "   \
	  "new or absent")                                                     \
	X(DEVICE_NEW_FOR_PAYER, "device.new_for_payer", HT_FEATURE_KIND_FLAG,  \
	  "0/1", "1 when the payer never paid from this device before (0 "     \
	  "without a device)")                                                 \
	X(DEVICE_DISTINCT_PAYERS_24H, "device.distinct_payers_24h",            \
	  HT_FEATURE_KIND_COUNT, "parties",                                    \
	  "distinct payers who paid from the device in the last 24 h (to 36 h)")\
	HT_FEATURE_WINDOWS_(X, IP, "ip", "from the IP address")                \
	X(IP_PRESENT, "ip.present", HT_FEATURE_KIND_FLAG, "0/1",               \
	  "1 when the payment names an IP address")                            \
	X(IP_NEW, "ip.new", HT_FEATURE_KIND_FLAG, "0/1",                       \
	  "1 when the IP address was never seen before, or so long ago it "    \
	  "was forgotten (0 without one)")                                     \
	X(IP_FIRST_SEEN, "ip.first_seen", HT_FEATURE_KIND_SECONDS, "s",        \
	  "seconds since the IP address was first seen; 0 when new or absent") \
	X(IP_NEW_FOR_PAYER, "ip.new_for_payer", HT_FEATURE_KIND_FLAG, "0/1",   \
	  "1 when the payer never paid from this IP address before (0 "        \
	  "without one)")                                                      \
	X(IP_DISTINCT_PAYERS_24H, "ip.distinct_payers_24h",                    \
	  HT_FEATURE_KIND_COUNT, "parties",                                    \
	  "distinct payers who paid from the IP address in the last 24 h (to " \
	  "36 h)")                                                             \
	HT_FEATURE_WINDOWS_(X, PAIR, "pair", "from this payer to this payee")  \
	X(PAIR_NEW, "pair.new", HT_FEATURE_KIND_FLAG, "0/1",                   \
	  "1 when the payer never paid this payee before")                     \
	X(PAIR_FIRST_SEEN, "pair.first_seen", HT_FEATURE_KIND_SECONDS, "s",    \
	  "seconds since the payer first paid this payee; 0 when new")         \
	X(AMOUNT, "amount", HT_FEATURE_KIND_AMOUNT, "yuan",                    \
	  "the amount in major units (fen / 100)")                             \
	X(AMOUNT_LOG, "amount.log", HT_FEATURE_KIND_RATIO, "ln",               \
	  "ln(1 + amount in yuan)")                                            \
	X(AMOUNT_UNDER_LINE, "amount.under_line", HT_FEATURE_KIND_FLAG, "0/1", \
	  "1 when a CNY amount is within 10% below a reporting or round line " \
	  "(5k, 10k, 20k, 50k, 200k, 500k, 2M yuan)")                          \
	X(HOUR, "hour", HT_FEATURE_KIND_CODE, "h",                             \
	  "hour of day in UTC+8, fractional (0 <= hour < 24)")                 \
	X(WEEKDAY, "weekday", HT_FEATURE_KIND_CODE, "day",                     \
	  "day of week in UTC+8: 0 Monday .. 6 Sunday")                        \
	X(CHANNEL_CODE, "channel.code", HT_FEATURE_KIND_CODE, "code",          \
	  "the channel as its enum ht_channel value (0 p2p, 1 qr, 2 card, 3 "  \
	  "transfer, 4 cash_in, 5 cash_out, 6 bill)")

/* What a feature's number is, for type checks and documentation. */
enum ht_feature_kind {
	HT_FEATURE_KIND_COUNT,   /* a count: payments or parties, >= 0 */
	HT_FEATURE_KIND_AMOUNT,  /* yuan, >= 0 */
	HT_FEATURE_KIND_SECONDS, /* a duration in seconds, >= 0 */
	HT_FEATURE_KIND_FLAG,    /* 0 or 1 */
	HT_FEATURE_KIND_RATIO,   /* a dimensionless real */
	HT_FEATURE_KIND_CODE,    /* a category or clock reading */
	HT_FEATURE_KIND__COUNT
};

enum ht_feature {
#define HT_FEATURE_ENUM_(id, name, kind, unit, meaning) HT_FEATURE_##id,
	HT_FEATURES(HT_FEATURE_ENUM_)
#undef HT_FEATURE_ENUM_
	HT_FEATURE__COUNT
};

/* Static name of feature f ("payer.count_1h"), or NULL when f is not one. */
const char *ht_feature_name(enum ht_feature f);

/* Static one-line meaning of f, or NULL when f is not one. */
const char *ht_feature_meaning(enum ht_feature f);

/* Static unit of f ("payments", "yuan", "s", "0/1", ...), or NULL. */
const char *ht_feature_unit(enum ht_feature f);

/* Kind of f; HT_FEATURE_KIND__COUNT when f is not a feature. */
enum ht_feature_kind ht_feature_kind(enum ht_feature f);

/*
 * The feature named name[0..len) (no NUL needed), or -1 when there is
 * none. Exact, case-sensitive match.
 */
int ht_feature_lookup(const char *name, size_t len);

/* All names in enum order (HT_FEATURE__COUNT entries), static. */
const char *const *ht_feature_names(void);

/* ---- the string catalogue -------------------------------------------------
 *
 * Attributes of the payment itself that rules may compare as strings
 * (`channel == "cash_out"`, `payer_participant in [...]`).
 */
#define HT_FEATURE_STRS(X)                                                     \
	X(CHANNEL, "channel", "the channel's name (p2p, qr, card, transfer, "  \
	  "cash_in, cash_out, bill)")                                          \
	X(CURRENCY, "currency", "ISO 4217 code, e.g. CNY")                     \
	X(PAYER, "payer", "the payer's party reference")                       \
	X(PAYEE, "payee", "the payee's party reference")                       \
	X(PAYER_PARTICIPANT, "payer_participant", "the payer's participant")   \
	X(PAYEE_PARTICIPANT, "payee_participant", "the payee's participant")   \
	X(DEVICE, "device", "the device id; empty when absent")                \
	X(IP, "ip", "the IP address; empty when absent")

enum ht_feature_str {
#define HT_FEATURE_STR_ENUM_(id, name, meaning) HT_FEATURE_STR_##id,
	HT_FEATURE_STRS(HT_FEATURE_STR_ENUM_)
#undef HT_FEATURE_STR_ENUM_
	HT_FEATURE_STR__COUNT
};

/* Static name of string attribute f ("channel"), or NULL. */
const char *ht_feature_str_name(enum ht_feature_str f);

/* Static one-line meaning of f, or NULL. */
const char *ht_feature_str_meaning(enum ht_feature_str f);

/* The string attribute named name[0..len), or -1. */
int ht_feature_str_lookup(const char *name, size_t len);

/* All string attribute names in enum order, static. */
const char *const *ht_feature_str_names(void);

/*
 * Point out[i] at the value of string attribute i of p: into p's own
 * arrays (valid while *p is, unchanged) or at a static string (the
 * channel's name; "" for a channel outside enum ht_channel). Never NULL.
 */
void ht_feature_strings(const struct ht_payment *p,
			const char *out[HT_FEATURE_STR__COUNT]);

/* ---- state ----------------------------------------------------------------
 *
 * Five tables of fixed-size records:
 *   party   one record per payer or payee (both roles: windows made and
 *           received, distinct counterparties, first seen, amount history)
 *   device  first seen, windows and distinct payers of a device
 *   ip      first seen, windows and distinct payers of an IP address
 *   pair    windows of one payer -> payee pair
 *   link    16-byte "seen" records: first and last time of a payer ->
 *           payee pair, of a device with a payer, of an IP with a payer.
 *           Kept apart from the windows so that "never paid this payee"
 *           and "never used this device" outlive the window records.
 * Each table is set-associative, like a CPU cache: a key may live in one
 * of two sets of 4 records chosen by its hash. When both are full, the
 * least recently updated of those 8 records is evicted: oldest first
 * among the entries a new key competes with (exactly LRU for a table of
 * one or two sets). Keys are 63-bit keyed hashes of the strings; two
 * different strings share a record with probability about n^2 / 2^64.
 */
enum ht_risk_table {
	HT_RISK_TABLE_PARTY,
	HT_RISK_TABLE_DEVICE,
	HT_RISK_TABLE_IP,
	HT_RISK_TABLE_PAIR,
	HT_RISK_TABLE_LINK,
	HT_RISK_TABLE__COUNT
};

/* Default total budget: 4 GiB, sized for 10M parties (docs). */
#define HT_RISK_BYTES_DEFAULT ((size_t)4 << 30)
/* Largest budget accepted (bounds a typo like an extra zero). */
#define HT_RISK_BYTES_MAX ((size_t)1 << 40)
/* Most entries in one table (set numbers are 32-bit; a sanity bound). */
#define HT_RISK_TABLE_ENTRIES_MAX ((size_t)0x7fffffff)

struct ht_risk_config {
	/* Budget for all tables, records and set heads: bytes allocated at
	 * open (as virtual memory, touched as the tables fill, unless
	 * populate). 0 means HT_RISK_BYTES_DEFAULT. */
	size_t bytes_max;
	/* Capacity of each table (rounded up to a multiple of 4); 0 =
	 * derived: what the budget leaves after the fixed tables, shared
	 * among the derived ones in the default proportions
	 * (docs/risk-features.md). */
	size_t entries_max[HT_RISK_TABLE__COUNT];
	/* Key of the string hash. 0 = random per state (live: keys nobody
	 * can aim collisions at). Set it for runs that must repeat exactly:
	 * which entries compete for room, and so which are evicted, depends
	 * on the hash. */
	uint64_t hash_seed;
	/* Fault every table in at open, on a thread of the state's own,
	 * instead of on first touch (features.c, "populate"): for a live hub,
	 * whose thread must not stall on fresh pages (on this project's VM
	 * filling a fresh 1 GiB state stalled it for seconds). The memory is
	 * then resident from the start. Ignored below 64 MiB, under
	 * AddressSanitizer and on kernels without MADV_POPULATE_WRITE (Linux
	 * < 5.14). */
	bool populate;
};

/* Static name of a table ("party", "device", "ip", "pair", "link"), or NULL. */
const char *ht_risk_table_name(enum ht_risk_table t);

/* Bytes one entry of table t costs: its record and its share of its set's
 * head line (16 bytes: key, last-use and first-seen times). 0 when t is
 * not a table. */
size_t ht_risk_entry_bytes(enum ht_risk_table t);

/*
 * The capacities and total bytes a state opened with cfg (NULL = all
 * defaults) would have, without allocating. entries and bytes may be
 * NULL. Errors: HT_ERR_LIMIT when bytes_max > HT_RISK_BYTES_MAX, an
 * entries_max > HT_RISK_TABLE_ENTRIES_MAX, the fixed tables exceed the
 * budget, or the budget leaves a derived table no entry.
 */
enum ht_err ht_risk_config_plan(const struct ht_risk_config *cfg,
				size_t entries[HT_RISK_TABLE__COUNT],
				size_t *bytes);

struct ht_risk_state;

/*
 * Allocate an empty state sized by cfg (NULL = defaults, see
 * ht_risk_config_plan). The hash key is random unless cfg->hash_seed is
 * set. On success *out owns the state; free it with ht_risk_state_close.
 * Errors: those of ht_risk_config_plan; HT_ERR_NOMEM.
 */
enum ht_err ht_risk_state_open(const struct ht_risk_config *cfg,
			       struct ht_risk_state **out);

/* Free a state; accepts NULL. */
void ht_risk_state_close(struct ht_risk_state *s);

struct ht_risk_state_stats {
	size_t entries[HT_RISK_TABLE__COUNT];   /* live entries */
	size_t capacity[HT_RISK_TABLE__COUNT];  /* records room for */
	uint64_t evictions[HT_RISK_TABLE__COUNT]; /* since open */
	uint64_t updates;   /* ht_features_update calls */
	uint64_t clamped;   /* of them, payments older than the clock */
	size_t bytes;       /* allocated for tables (virtual) */
	int64_t clock_ms;   /* latest payment time recorded */
};

/* Copy the state's counters into *out. */
void ht_risk_state_stats(const struct ht_risk_state *s,
			 struct ht_risk_state_stats *out);

/*
 * Write the HT_FEATURE__COUNT features of p against the payments recorded
 * so far into out. Reads s only (not even a use time: a compute never
 * changes a later result). Time: p->ts_ms, except that a payment
 * older than the latest one recorded is taken to happen at that latest
 * time (the clamp of ht_features_update); hour and weekday always use
 * p->ts_ms itself. Times before 1970 count as 1970, after 2106-02-07 as
 * then (seconds are 32-bit).
 */
void ht_features_compute(const struct ht_risk_state *s,
			 const struct ht_payment *p,
			 float out[HT_FEATURE__COUNT]);

/*
 * Record p (see the top of this header for when). Payments should arrive
 * in non-decreasing ts_ms; one that is older than the latest recorded is
 * clamped to that time (counted in stats.clamped), so it lands in the
 * current buckets and the clock never goes back. Inserts the entities p
 * names, evicting as described above. Never fails, never allocates.
 */
void ht_features_update(struct ht_risk_state *s, const struct ht_payment *p);

#endif

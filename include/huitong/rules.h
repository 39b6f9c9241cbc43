/*
 * rules.h — the risk rule language: parse a rule file against a schema of
 * feature names, compile it to compact postfix code, evaluate it on one
 * payment's features without allocating, and swap rule sets under running
 * threads (hot reload). The language is documented in docs/risk-rules.md.
 *
 *   version 7
 *   list high_risk_mcc = ["6051", "7995"]
 *   rule new_device_burst: device.first_seen < 10m and payer.count_1h > 5
 *       => review score 40 reason "new_device_burst"
 *   shadow rule big_night: amount > 50000 and hour < 5 => block score 80
 *   participant bankA {
 *     rule bank_a_large: amount > 1000000 => block score 90
 *   }
 *
 * Owner: risk. A rule file is outside input (operators write it, the API
 * may upload it): every size, count and depth is bounded below, the parser
 * never recurses deeper than HT_RULES_DEPTH_MAX levels of nesting, and a
 * bad file yields line:column messages, never a crash. Feature names are
 * not fixed here: the caller passes a schema, and every reference is
 * resolved to an index at parse time, so evaluation does no name lookups.
 * This module must never call the ledger, the store or the network.
 *
 * The limits live here rather than in limits.h while the risk engine is
 * being assembled; each says why.
 */
#ifndef HUITONG_RULES_H
#define HUITONG_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "huitong/common.h"

/* ---- limits ------------------------------------------------------------ */

/* Bytes of one rule file. A thousand commented rules take ~200 KiB; 1 MiB
 * bounds parse time (~ milliseconds) and memory of a reload. */
#define HT_RULES_FILE_BYTES_MAX (1024u * 1024u)
/* Rules in one file, all scopes together. The scoring budget (issue 4:
 * p99 <= 20 us per payment) allows ~50 rules per payment; 10,000 leaves
 * room for many per-participant sections of which a payment sees one. */
#define HT_RULES_RULES_MAX 10000u
/* Nesting of one expression: parentheses, `not` and unary minus. Bounds
 * the parser's recursion (a few C frames per level) and the evaluation
 * stack. Real rules nest 3 or 4 deep. */
#define HT_RULES_DEPTH_MAX 64u
/* Values on the evaluation stack of one rule. Each nesting level holds at
 * most 4 pending operands (comparison, sum, product, the value itself). */
#define HT_RULES_STACK_MAX 320u
_Static_assert(HT_RULES_STACK_MAX >= 4u * (HT_RULES_DEPTH_MAX + 2u),
	       "the deepest expression fits the evaluation stack");
/* Items of one list (a blocklist of devices, merchant codes). Membership
 * is a binary search, so 100,000 items cost ~17 comparisons. */
#define HT_RULES_LIST_ITEMS_MAX 100000u
/* Lists in one file, named ones and literal `in [...]` lists together. */
#define HT_RULES_LISTS_MAX 10000u
/* Participant sections in one file. */
#define HT_RULES_SECTIONS_MAX 4096u
/* Bytes of a name: a rule, list or feature name (dots included), a reason
 * code. Short names keep messages and decision records small. */
#define HT_RULES_NAME_BYTES_MAX 64u
/* Bytes of a participant id in `participant ID { }`: the registry's limit
 * (HT_REGISTRY_ID_BYTES_MAX), characters [A-Za-z0-9._-]. */
#define HT_RULES_PARTICIPANT_BYTES_MAX 56u
/* Bytes of a string literal after unescaping (device ids, IPs, codes). */
#define HT_RULES_STRING_BYTES_MAX 256u
/* Largest magnitude of a number literal: 2^53, so every integer literal
 * (amounts in fen included) is exact in a double. */
#define HT_RULES_NUMBER_MAX 9007199254740992.0
/* A rule's score is 0..100; so is the total of a payment. */
#define HT_RULES_SCORE_MAX 100u
/* Names in a schema (numeric and string attributes together). */
#define HT_RULES_SCHEMA_NAMES_MAX 4096u
/* Messages kept from one parse; parsing stops after the last. */
#define HT_RULES_DIAG_MAX 16u
/* Bytes of one message, NUL included. */
#define HT_RULES_MESSAGE_BYTES 192u

/* ---- schema and input ---------------------------------------------------- */

/*
 * The names a rule file may refer to: num_names[i] is the numeric feature
 * with index i, str_names[j] the string attribute with index j. Names are
 * segments of [A-Za-z_][A-Za-z0-9_]* joined by single dots, at most
 * HT_RULES_NAME_BYTES_MAX bytes, unique across both arrays, and none of the
 * reserved words and, or, not, in, true, false. The arrays are borrowed
 * for the duration of ht_rules_parse only.
 */
struct ht_rule_schema {
	size_t num_count;
	const char *const *num_names;
	size_t str_count;
	const char *const *str_names;
};

/* What a name is in a schema. */
enum ht_rule_type {
	HT_RULE_TYPE_NUMBER = 0,
	HT_RULE_TYPE_STRING,
};

/*
 * Find name in schema: its type and index. Errors: HT_ERR_NOT_FOUND.
 */
enum ht_err ht_rule_schema_find(const struct ht_rule_schema *schema,
				const char *name, enum ht_rule_type *type,
				size_t *index);


/*
 * One payment's features for ht_rules_eval: num[i] is the value of the
 * schema's numeric feature i (num_count values), str[j] the string
 * attribute j (NULL counts as ""). participant is the payer's participant
 * id, which selects the participant section (NULL: global rules only).
 * All borrowed for the duration of the call.
 */
struct ht_rule_input {
	const double *num;
	const char *const *str;
	const char *participant;
};

/* ---- rule sets ------------------------------------------------------------ */

/* Ordered by strictness: the strictest fired enforced action wins. */
enum ht_rule_action {
	HT_RULE_ALLOW = 0,
	HT_RULE_REVIEW = 1,
	HT_RULE_BLOCK = 2,
};

/* "allow", "review" or "block"; "?" for anything else. */
const char *ht_rule_action_name(enum ht_rule_action action);

/* One rule, as ht_rules_rule and ht_rules_eval describe it. Strings are
 * owned by the rule set and valid while the caller holds it. */
struct ht_rule_info {
	const char *name;        /* snake_case, unique within its scope */
	const char *reason;      /* snake_case reason code (default: name) */
	const char *participant; /* the section's participant; NULL: global */
	enum ht_rule_action action;
	unsigned score;          /* 0..HT_RULES_SCORE_MAX */
	bool shadow;             /* evaluated and reported, never enforced */
	unsigned line;           /* line of the rule in its file */
};

/* A compiled rule file. Immutable once parsed; reference counted. */
struct ht_ruleset;

/* One parse error: 1-based line and column (columns count UTF-8
 * characters; a tab is one). */
struct ht_rules_error {
	unsigned line;
	unsigned column;
	enum ht_err code; /* HT_ERR_INVALID, or HT_ERR_LIMIT for a limit */
	char message[HT_RULES_MESSAGE_BYTES];
};

/* The errors of one parse, in file order, at most HT_RULES_DIAG_MAX;
 * truncated when parsing stopped because the array was full. */
struct ht_rules_diag {
	size_t count;
	bool truncated;
	struct ht_rules_error errors[HT_RULES_DIAG_MAX];
};

/*
 * Parse and compile the rule file text[0..len) against schema. On success
 * *out holds a new rule set with one reference (release it with
 * ht_rules_release) and diag->count is 0. On failure *out is NULL and, for
 * HT_ERR_INVALID and HT_ERR_LIMIT, diag (if not NULL) lists the errors
 * with line and column; parsing recovers at the next statement, so one
 * call reports several. text need not be NUL-terminated.
 * Errors: HT_ERR_INVALID (syntax, type, unknown name, duplicate rule, a
 * malformed schema), HT_ERR_LIMIT (the file or something in it exceeds a
 * limit above; returned when any error is a limit), HT_ERR_NOMEM.
 */
enum ht_err ht_rules_parse(const char *text, size_t len,
			   const struct ht_rule_schema *schema,
			   struct ht_ruleset **out, struct ht_rules_diag *diag);

/*
 * Drop one reference to rs; the last one frees it. Accepts NULL.
 * Thread-safe: any thread may release a reference it holds.
 */
void ht_rules_release(struct ht_ruleset *rs);

/* The file's `version N`. */
uint32_t ht_rules_version(const struct ht_ruleset *rs);
/* Rules in the file, all scopes; and how many of them are shadow rules. */
size_t ht_rules_count(const struct ht_ruleset *rs);
size_t ht_rules_shadow_count(const struct ht_ruleset *rs);
/* Participant sections in the file. */
size_t ht_rules_section_count(const struct ht_ruleset *rs);

/*
 * Rule number index (0 <= index < ht_rules_count): global rules first in
 * file order, then each participant section's rules, sections sorted by
 * participant id. The pointer is valid while rs is held.
 * Errors: HT_ERR_NOT_FOUND (index out of range).
 */
enum ht_err ht_rules_rule(const struct ht_ruleset *rs, size_t index,
			  const struct ht_rule_info **out);

/* ---- evaluation ------------------------------------------------------------ */

/* One fired rule. */
struct ht_rule_hit {
	size_t index;                    /* as ht_rules_rule */
	const struct ht_rule_info *rule; /* valid while the rule set is held */
};

/*
 * What a rule set decided about one payment. Only enforced (non-shadow)
 * rules count towards action and score; shadow_action and shadow_score
 * say what they would be if shadow rules were enforced too.
 */
struct ht_rule_outcome {
	enum ht_rule_action action; /* strictest fired enforced; ALLOW if none */
	unsigned score;          /* sum of fired enforced scores, capped at 100 */
	enum ht_rule_action shadow_action;
	unsigned shadow_score;
	size_t fired_count;      /* rules that fired, shadow ones included */
	size_t hit_count;        /* hits written: min(fired_count, hits_cap) */
	size_t error_count;      /* rules stopped by a runtime error */
};

/* Counters of runtime errors over the rule set's life, every thread. */
struct ht_rules_stats {
	uint64_t div_zero;  /* a division or % by zero stopped a rule */
	uint64_t nonfinite; /* a NaN or infinite value reached a comparison */
};

/*
 * Evaluate every global rule of rs in order and then, when
 * in->participant names a section, that section's rules, on one payment.
 * Fired rules are written to hits[0..hits_cap) in evaluation order (more
 * are counted in fired_count but not written). A rule meeting a division
 * by zero or a NaN/infinite value does not fire; it is counted in
 * out->error_count and in ht_rules_stats. Allocates nothing and takes no
 * lock: any number of threads may evaluate one rule set at once.
 * in->num and in->str must hold the schema's counts of values.
 * Errors: HT_ERR_INVALID (rs, in or out NULL; hits NULL with hits_cap > 0).
 */
enum ht_err ht_rules_eval(const struct ht_ruleset *rs,
			  const struct ht_rule_input *in,
			  struct ht_rule_hit *hits, size_t hits_cap,
			  struct ht_rule_outcome *out);

/* Runtime error counters of rs (relaxed reads). */
void ht_rules_stats(const struct ht_ruleset *rs, struct ht_rules_stats *out);

/* ---- hot reload ------------------------------------------------------------ */

/*
 * Holds the rule set in force for a server: request threads acquire it
 * for one payment and release it after, while an operator thread replaces
 * it. A replaced rule set is freed when its last user releases it; no
 * payment ever sees a freed or half-built one, and none waits on a lock.
 */
struct ht_rules_holder;

/*
 * Create a holder in force with initial (NULL: none yet), taking over the
 * caller's reference to it. Errors: HT_ERR_NOMEM (initial is then still
 * the caller's).
 */
enum ht_err ht_rules_holder_create(struct ht_ruleset *initial,
				   struct ht_rules_holder **out);

/*
 * Destroy h and drop its reference to the rule set in force. Users still
 * holding an acquired rule set keep it until they release it; no acquire
 * or replace may be running. Accepts NULL.
 */
void ht_rules_holder_destroy(struct ht_rules_holder *h);

/*
 * The rule set in force with one more reference (NULL when there is
 * none), for the caller to evaluate and then ht_rules_release. Lock-free;
 * a few atomic operations.
 */
struct ht_ruleset *ht_rules_holder_acquire(struct ht_rules_holder *h);

/*
 * Put next in force (taking over the caller's reference) and drop the
 * holder's reference to the previous one, which is freed when its last
 * user releases it. Waits only for acquires in flight (a few
 * instructions each), never for evaluations. Serialised against other
 * replaces. next may be NULL (no rules in force).
 */
void ht_rules_holder_replace(struct ht_rules_holder *h,
			     struct ht_ruleset *next);

/*
 * Parse text[0..len) with ht_rules_parse and, only if that succeeds, put
 * the result in force; on any error the rule set in force stays.
 * Errors: as ht_rules_parse.
 */
enum ht_err ht_rules_holder_reload(struct ht_rules_holder *h, const char *text,
				   size_t len,
				   const struct ht_rule_schema *schema,
				   struct ht_rules_diag *diag);

#endif

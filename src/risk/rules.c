/*
 * rules.c — running compiled rules: the postfix evaluator, the outcome of
 * a rule set for one payment, and the holder that swaps rule sets under
 * running threads (hot reload).
 *
 * Owner: risk. Evaluation sits in every payment's path, so it allocates
 * nothing, takes no lock and touches only the payment's features and the
 * immutable rule set; its only writes to shared memory are relaxed counter
 * increments when a rule meets a runtime error. The evaluator trusts the
 * code the parser built (types, stack depth, jump targets and indices are
 * checked there) and never reads input outside the schema's counts.
 */
#include "rules_internal.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* ---- the rule set ---- */

void rules_free(struct ht_ruleset *rs)
{
	if (!rs)
		return;
	free(rs->rules);
	free(rs->sections);
	free(rs->code);
	free(rs->lists);
	free(rs->nums);
	free(rs->strs);
	free(rs->slots);
	free(rs->pool);
	free(rs);
}

void ht_rules_release(struct ht_ruleset *rs)
{
	if (!rs)
		return;
	size_t before = atomic_fetch_sub_explicit(&rs->refs, 1,
						  memory_order_acq_rel);
	HT_ASSERT(before > 0);
	if (before == 1)
		rules_free(rs);
}

uint32_t ht_rules_version(const struct ht_ruleset *rs)
{
	return rs->version;
}

size_t ht_rules_count(const struct ht_ruleset *rs)
{
	return rs->rule_count;
}

size_t ht_rules_shadow_count(const struct ht_ruleset *rs)
{
	return rs->shadow_count;
}

size_t ht_rules_section_count(const struct ht_ruleset *rs)
{
	return rs->section_count;
}

enum ht_err ht_rules_rule(const struct ht_ruleset *rs, size_t index,
			  const struct ht_rule_info **out)
{
	if (!rs || !out || index >= rs->rule_count)
		return HT_ERR_NOT_FOUND;
	*out = &rs->rules[index].info;
	return HT_OK;
}

const char *ht_rule_action_name(enum ht_rule_action action)
{
	switch (action) {
	case HT_RULE_ALLOW: return "allow";
	case HT_RULE_REVIEW: return "review";
	case HT_RULE_BLOCK: return "block";
	}
	return "?";
}

void ht_rules_stats(const struct ht_ruleset *rs, struct ht_rules_stats *out)
{
	/* The counters are the only mutable part of a rule set. */
	struct ht_ruleset *m = (struct ht_ruleset *)rs;
	out->div_zero = atomic_load_explicit(&m->div_zero, memory_order_relaxed);
	out->nonfinite = atomic_load_explicit(&m->nonfinite,
					      memory_order_relaxed);
}

/* ---- the evaluator ---- */

union slot {
	double n;
	const char *s;
	int b;
};

/* What running one rule gave. */
enum run_result { RUN_NO = 0, RUN_FIRED = 1, RUN_DIV_ZERO, RUN_NONFINITE };

static bool list_has_num(const struct ht_ruleset *rs, size_t list, double x)
{
	const struct rules_list *l = &rs->lists[list];
	if (l->count == 0)
		return false;
	const double *v = rs->nums + l->first;
	size_t lo = 0, hi = l->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < l->count && v[lo] == x;
}

uint64_t rules_str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h ^ (h >> 32);
}

/* Probe the list's hash index; it is at most half full, so an empty slot
 * ends every search. */
static bool list_has_str(const struct ht_ruleset *rs, size_t list,
			 const char *x)
{
	const struct rules_list *l = &rs->lists[list];
	if (l->count == 0)
		return false;
	uint64_t h = rules_str_hash(x);
	const uint64_t *slots = rs->slots + l->slot_first;
	for (size_t i = h & l->slot_mask;; i = (i + 1) & l->slot_mask) {
		uint64_t e = slots[i];
		if (!e)
			return false;
		if (e >> 32 == h >> 32 &&
		    !strcmp(rs->strs[l->first + (uint32_t)e - 1], x))
			return true;
	}
}

static const char *str_value(const struct ht_rule_input *in, uint32_t i)
{
	const char *s = in->str[i];
	return s ? s : "";
}

/* Both operands of a comparison must be finite: NaN and infinities (a
 * feature gone wrong, an overflow) never make a rule fire. */
#define FINITE2(a, b) (isfinite(a) && isfinite(b))

/* Compare the two numbers on top of the stack into one boolean. */
#define CMP2(OP)                                              \
	do {                                                  \
		double x_ = sp[-2].n, y_ = sp[-1].n;          \
		if (!FINITE2(x_, y_))                         \
			return RUN_NONFINITE;                 \
		sp--;                                         \
		sp[-1].b = x_ OP y_;                          \
	} while (0)

/* Compare feature a with constant k, pushing the boolean. */
#define CMPK(OP)                                              \
	do {                                                  \
		double x_ = in->num[i->a];                    \
		if (!isfinite(x_))                            \
			return RUN_NONFINITE;                 \
		(sp++)->b = x_ OP i->u.k;                     \
	} while (0)

static enum run_result run_arith(enum rules_op op, union slot *sp)
{
	double x = sp[-2].n, y = sp[-1].n;
	switch (op) {
	case OP_ADD: sp[-2].n = x + y; break;
	case OP_SUB: sp[-2].n = x - y; break;
	case OP_MUL: sp[-2].n = x * y; break;
	case OP_DIV:
		if (y == 0)
			return RUN_DIV_ZERO;
		sp[-2].n = x / y;
		break;
	default:
		HT_ASSERT(op == OP_MOD);
		if (y == 0)
			return RUN_DIV_ZERO;
		sp[-2].n = fmod(x, y);
	}
	return RUN_NO;
}

/*
 * Run one rule's code from code[start] to its OP_END. The parser
 * guarantees the stack never exceeds HT_RULES_STACK_MAX, holds one
 * boolean at OP_END, and that every index is in range. Longer than our
 * usual function on purpose: the dispatch loop is the hot path, and one
 * case per opcode in one switch is what keeps it a jump table.
 */
static enum run_result run(const struct ht_ruleset *rs, uint32_t start,
			   const struct ht_rule_input *in)
{
	union slot stack[HT_RULES_STACK_MAX];
	union slot *sp = stack;
	const struct rules_insn *code = rs->code, *pc = code + start;
	for (;;) {
		const struct rules_insn *i = pc++;
		enum run_result r;
		switch ((enum rules_op)i->op) {
		case OP_END:
			HT_ASSERT(sp == stack + 1);
			return sp[-1].b ? RUN_FIRED : RUN_NO;
		case OP_NUM: (sp++)->n = in->num[i->a]; break;
		case OP_STR: (sp++)->s = str_value(in, i->a); break;
		case OP_CONST: (sp++)->n = i->u.k; break;
		case OP_SCONST: (sp++)->s = i->u.s; break;
		case OP_BOOL: (sp++)->b = (int)i->a; break;
		case OP_NEG: sp[-1].n = -sp[-1].n; break;
		case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MOD:
			if ((r = run_arith((enum rules_op)i->op, sp)) != RUN_NO)
				return r;
			sp--;
			break;
		case OP_LT: CMP2(<); break;
		case OP_LE: CMP2(<=); break;
		case OP_GT: CMP2(>); break;
		case OP_GE: CMP2(>=); break;
		case OP_EQ: CMP2(==); break;
		case OP_NE: CMP2(!=); break;
		case OP_SEQ: sp--; sp[-1].b = !strcmp(sp[-1].s, sp[0].s); break;
		case OP_SNE: sp--; sp[-1].b = !!strcmp(sp[-1].s, sp[0].s); break;
		case OP_IN:
			if (!isfinite(sp[-1].n))
				return RUN_NONFINITE;
			sp[-1].b = list_has_num(rs, i->a, sp[-1].n);
			break;
		case OP_SIN: sp[-1].b = list_has_str(rs, i->a, sp[-1].s); break;
		case OP_NOT: sp[-1].b = !sp[-1].b; break;
		case OP_AND:
			if (!sp[-1].b)
				pc = code + i->a;
			else
				sp--;
			break;
		case OP_OR:
			if (sp[-1].b)
				pc = code + i->a;
			else
				sp--;
			break;
		case OP_NUM_LT_K: CMPK(<); break;
		case OP_NUM_LE_K: CMPK(<=); break;
		case OP_NUM_GT_K: CMPK(>); break;
		case OP_NUM_GE_K: CMPK(>=); break;
		case OP_NUM_EQ_K: CMPK(==); break;
		case OP_NUM_NE_K: CMPK(!=); break;
		case OP_STR_EQ_K:
			(sp++)->b = !strcmp(str_value(in, i->a), i->u.s);
			break;
		case OP_STR_NE_K:
			(sp++)->b = !!strcmp(str_value(in, i->a), i->u.s);
			break;
		case OP_NUM_IN_L: {
			double x = in->num[i->a];
			if (!isfinite(x))
				return RUN_NONFINITE;
			(sp++)->b = list_has_num(rs, i->u.list, x);
			break;
		}
		case OP_STR_IN_L:
			(sp++)->b = list_has_str(rs, i->u.list,
						 str_value(in, i->a));
			break;
		default:
			HT_ASSERT(!"opcode the parser never emits");
		}
	}
}

/* The section of participant p, or NULL. */
static const struct rules_section *find_section(const struct ht_ruleset *rs,
						const char *p)
{
	size_t lo = 0, hi = rs->section_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(rs->sections[mid].participant, p);
		if (c == 0)
			return &rs->sections[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Account one fired rule in the outcome. Scores are summed uncapped
 * here (10,000 rules * 100 fits) and capped by the caller. */
static void fired(const struct ht_ruleset *rs, size_t index,
		  struct ht_rule_hit *hits, size_t hits_cap,
		  struct ht_rule_outcome *out)
{
	const struct ht_rule_info *r = &rs->rules[index].info;
	if (out->hit_count < hits_cap)
		hits[out->hit_count++] = (struct ht_rule_hit){index, r};
	out->fired_count++;
	if (r->action > out->shadow_action)
		out->shadow_action = r->action;
	out->shadow_score += r->score;
	if (r->shadow)
		return;
	if (r->action > out->action)
		out->action = r->action;
	out->score += r->score;
}

static void eval_range(const struct ht_ruleset *rs, size_t first,
		       size_t count, const struct ht_rule_input *in,
		       struct ht_rule_hit *hits, size_t hits_cap,
		       struct ht_rule_outcome *out)
{
	struct ht_ruleset *m = (struct ht_ruleset *)rs; /* counters only */
	for (size_t k = first; k < first + count; k++) {
		enum run_result r = run(rs, rs->rules[k].code, in);
		if (r == RUN_FIRED) {
			fired(rs, k, hits, hits_cap, out);
		} else if (r != RUN_NO) {
			out->error_count++;
			atomic_fetch_add_explicit(r == RUN_DIV_ZERO ? &m->div_zero
								    : &m->nonfinite,
						  1, memory_order_relaxed);
		}
	}
}

enum ht_err ht_rules_eval(const struct ht_ruleset *rs,
			  const struct ht_rule_input *in,
			  struct ht_rule_hit *hits, size_t hits_cap,
			  struct ht_rule_outcome *out)
{
	if (!rs || !in || !out || (!hits && hits_cap))
		return HT_ERR_INVALID;
	memset(out, 0, sizeof *out);
	out->action = out->shadow_action = HT_RULE_ALLOW;
	eval_range(rs, 0, rs->global_count, in, hits, hits_cap, out);
	const struct rules_section *sec =
		in->participant ? find_section(rs, in->participant) : NULL;
	if (sec)
		eval_range(rs, sec->first, sec->count, in, hits, hits_cap, out);
	if (out->score > HT_RULES_SCORE_MAX)
		out->score = HT_RULES_SCORE_MAX;
	if (out->shadow_score > HT_RULES_SCORE_MAX)
		out->shadow_score = HT_RULES_SCORE_MAX;
	/* The decision a payment gets: never looser than what shadow rules
	 * leave out, never a score outside 0..100, never a hit invented. */
	HT_ASSERT(out->action <= out->shadow_action);
	HT_ASSERT(out->shadow_action <= HT_RULE_BLOCK);
	HT_ASSERT(out->score <= out->shadow_score);
	HT_ASSERT(out->hit_count <= hits_cap);
	HT_ASSERT(out->hit_count <= out->fired_count);
	HT_ASSERT(out->fired_count + out->error_count <= rs->rule_count);
	return HT_OK;
}

/* ---- the holder ---- */

/*
 * Acquire reads the pointer and takes a reference inside a window counted
 * in active[epoch & 1]. Replace swaps the pointer first, then flips the
 * epoch twice, each time waiting for the counter new acquires no longer
 * use to drain. Any acquire that could have read the old pointer
 * incremented one of the counters before the swap, so it has taken its
 * reference by the time both have drained, and only then does replace
 * drop the holder's reference. New acquires always go to the other
 * counter, so a replace waits for a bounded number of acquires, never for
 * a steady stream of them, and never for an evaluation.
 */
struct ht_rules_holder {
	_Atomic(struct ht_ruleset *) current;
	atomic_uint epoch;
	atomic_size_t active[2];
	pthread_mutex_t replace_lock;
};

enum ht_err ht_rules_holder_create(struct ht_ruleset *initial,
				   struct ht_rules_holder **out)
{
	struct ht_rules_holder *h = calloc(1, sizeof *h);
	if (!h)
		return HT_ERR_NOMEM;
	if (pthread_mutex_init(&h->replace_lock, NULL)) {
		free(h);
		return HT_ERR_NOMEM;
	}
	atomic_init(&h->current, initial);
	atomic_init(&h->epoch, 0);
	atomic_init(&h->active[0], 0);
	atomic_init(&h->active[1], 0);
	*out = h;
	return HT_OK;
}

void ht_rules_holder_destroy(struct ht_rules_holder *h)
{
	if (!h)
		return;
	HT_ASSERT(atomic_load(&h->active[0]) == 0);
	HT_ASSERT(atomic_load(&h->active[1]) == 0);
	ht_rules_release(atomic_load(&h->current));
	pthread_mutex_destroy(&h->replace_lock);
	free(h);
}

struct ht_ruleset *ht_rules_holder_acquire(struct ht_rules_holder *h)
{
	unsigned e = atomic_load(&h->epoch) & 1;
	atomic_fetch_add(&h->active[e], 1);
	struct ht_ruleset *rs = atomic_load(&h->current);
	if (rs) {
		size_t before = atomic_fetch_add_explicit(&rs->refs, 1,
							  memory_order_relaxed);
		HT_ASSERT(before > 0);
	}
	atomic_fetch_sub_explicit(&h->active[e], 1, memory_order_release);
	return rs;
}

void ht_rules_holder_replace(struct ht_rules_holder *h,
			     struct ht_ruleset *next)
{
	HT_ASSERT(!next || atomic_load(&next->refs) > 0);
	pthread_mutex_lock(&h->replace_lock);
	struct ht_ruleset *old = atomic_exchange(&h->current, next);
	for (int flip = 0; flip < 2; flip++) {
		unsigned e = atomic_fetch_add(&h->epoch, 1) & 1;
		while (atomic_load(&h->active[e]))
			sched_yield();
	}
	pthread_mutex_unlock(&h->replace_lock);
	ht_rules_release(old);
}

enum ht_err ht_rules_holder_reload(struct ht_rules_holder *h, const char *text,
				   size_t len,
				   const struct ht_rule_schema *schema,
				   struct ht_rules_diag *diag)
{
	struct ht_ruleset *rs = NULL;
	enum ht_err err = ht_rules_parse(text, len, schema, &rs, diag);
	if (err)
		return err;
	HT_ASSERT(rs);
	ht_rules_holder_replace(h, rs);
	return HT_OK;
}

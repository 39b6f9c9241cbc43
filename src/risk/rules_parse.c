/*
 * rules_parse.c — the rule language's parser and compiler: tokens to a
 * struct ht_ruleset of postfix code with every feature, list and string
 * resolved to an index or a pointer (grammar in docs/risk-rules.md).
 *
 * Owner: risk. One pass of recursive descent that type-checks and emits
 * code as it goes; no syntax tree is built. Recursion happens only through
 * parentheses, `not` and unary minus, and each of those counts against
 * HT_RULES_DEPTH_MAX before it recurses. Everything the parser grows is
 * bounded by the file size and rules.h's limits. After an error it skips
 * to the next statement that starts a line and goes on, so one run reports
 * several errors; it never produces a rule set from a file with an error.
 */
#include "rules_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Value types of the type checker; TY_ERR: an error was reported. */
enum ty { TY_NUM = 0, TY_STR = 1, TY_BOOL = 2, TY_ERR = -1 };

/* Symbol namespaces: features, lists, participants, then one per scope of
 * rule names (NS_RULES + 0 global, NS_RULES + k section k - 1). */
enum { NS_FEATURE = 0, NS_LIST, NS_SECTION, NS_RULES };

struct sym {
	const char *name; /* not NUL-terminated: name[0..len) */
	uint32_t len;
	uint32_t ns;
	uint32_t value;
	unsigned line;
};

/* Open addressing, linear probing, at most half full. */
struct symtab {
	struct sym *slots;
	size_t cap;
	size_t count;
};

/* A rule as parsed, before scopes are ordered. */
struct prule {
	uint32_t name;   /* pool offsets */
	uint32_t reason;
	uint32_t scope;  /* 0 global, k: section k - 1 */
	uint32_t code;
	unsigned line;
	enum ht_rule_action action;
	unsigned score;
	bool shadow;
};

struct psection {
	uint32_t participant; /* pool offset */
	uint32_t first;       /* index in prules */
	uint32_t count;
};

struct parser {
	struct rules_lexer lx;
	struct rules_tok tok;
	struct ht_rules_diag *diag;
	enum ht_err err;    /* worst so far: NOMEM, else LIMIT, else INVALID */
	bool stop;          /* give up: out of memory, a fatal limit, diag full */
	unsigned depth;     /* expression nesting */
	unsigned sp, sp_max; /* evaluation stack of the rule being compiled */
	uint32_t scope;
	bool have_version;
	bool seen_statement;
	uint32_t version;
	struct symtab syms;
	struct rules_insn *code;
	size_t code_len, code_cap;
	struct prule *rules;
	size_t rule_len, rule_cap;
	struct psection *sections;
	size_t section_len, section_cap;
	struct rules_list *lists;
	size_t list_len, list_cap;
	double *nums;
	size_t num_len, num_cap;
	uint32_t *strs; /* pool offsets of string list items */
	size_t str_len, str_cap;
	char *pool;
	size_t pool_len, pool_cap;
};

/* ---- errors ---- */

static void error_at(struct parser *p, const struct rules_pos *pos,
		     enum ht_err code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void error_at(struct parser *p, const struct rules_pos *pos,
		     enum ht_err code, const char *fmt, ...)
{
	if (code == HT_ERR_NOMEM || p->err == HT_OK ||
	    (code == HT_ERR_LIMIT && p->err == HT_ERR_INVALID))
		p->err = code;
	if (code == HT_ERR_NOMEM) {
		p->stop = true;
		return;
	}
	if (p->diag->count == HT_RULES_DIAG_MAX) {
		p->diag->truncated = true;
		p->stop = true;
		return;
	}
	struct ht_rules_error *e = &p->diag->errors[p->diag->count++];
	e->line = pos->line;
	e->column = rules_lex_column(p->lx.src, pos);
	e->code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
}

#define SYNTAX(p, pos, ...) error_at((p), (pos), HT_ERR_INVALID, __VA_ARGS__)
#define LIMIT(p, pos, ...) error_at((p), (pos), HT_ERR_LIMIT, __VA_ARGS__)

static void nomem(struct parser *p)
{
	error_at(p, &p->tok.pos, HT_ERR_NOMEM, "out of memory");
}

/* ---- growable arrays, the pool ---- */

/* Make room for one more element in *data (len used of *cap). */
static bool grow(struct parser *p, void **data, size_t len, size_t *cap,
		 size_t elem)
{
	if (len < *cap)
		return true;
	size_t n = *cap ? *cap * 2 : 16;
	void *d = n <= SIZE_MAX / elem ? realloc(*data, n * elem) : NULL;
	if (!d) {
		nomem(p);
		return false;
	}
	*data = d;
	*cap = n;
	return true;
}

#define GROW(p, arr, len, cap) \
	grow((p), (void **)&(arr), (len), &(cap), sizeof *(arr))

/* Copy s[0..n) and a NUL into the pool; its offset into *off. The pool
 * holds names and strings of a file of at most 1 MiB, plus one default
 * reason per rule, so offsets fit 32 bits. */
static bool pool_add(struct parser *p, const char *s, size_t n, uint32_t *off)
{
	while (p->pool_cap - p->pool_len < n + 1) {
		size_t c = p->pool_cap ? p->pool_cap * 2 : 4096;
		char *d = realloc(p->pool, c);
		if (!d) {
			nomem(p);
			return false;
		}
		p->pool = d;
		p->pool_cap = c;
	}
	HT_ASSERT(p->pool_len <= UINT32_MAX);
	*off = (uint32_t)p->pool_len;
	memcpy(p->pool + p->pool_len, s, n);
	p->pool[p->pool_len + n] = '\0';
	p->pool_len += n + 1;
	return true;
}

/* ---- symbols ---- */

static size_t sym_hash(uint32_t ns, const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull ^ ns;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29));
}

static struct sym *sym_find(struct symtab *t, uint32_t ns, const char *s,
			    size_t n)
{
	if (!t->cap)
		return NULL;
	for (size_t i = sym_hash(ns, s, n) & (t->cap - 1);;
	     i = (i + 1) & (t->cap - 1)) {
		struct sym *e = &t->slots[i];
		if (!e->name)
			return NULL;
		if (e->ns == ns && e->len == n && !memcmp(e->name, s, n))
			return e;
	}
}

static bool sym_rehash(struct parser *p)
{
	struct symtab *t = &p->syms;
	size_t cap = t->cap ? t->cap * 2 : 256;
	struct sym *slots = calloc(cap, sizeof *slots);
	if (!slots) {
		nomem(p);
		return false;
	}
	for (size_t i = 0; i < t->cap; i++) {
		struct sym *e = &t->slots[i];
		if (!e->name)
			continue;
		size_t j = sym_hash(e->ns, e->name, e->len) & (cap - 1);
		while (slots[j].name)
			j = (j + 1) & (cap - 1);
		slots[j] = *e;
	}
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
	return true;
}

/* Insert a name known to be absent. */
static bool sym_add(struct parser *p, uint32_t ns, const char *s, size_t n,
		    uint32_t value, unsigned line)
{
	struct symtab *t = &p->syms;
	HT_ASSERT(n <= HT_RULES_NAME_BYTES_MAX + 1);
	if ((t->count + 1) * 2 > t->cap && !sym_rehash(p))
		return false;
	size_t i = sym_hash(ns, s, n) & (t->cap - 1);
	while (t->slots[i].name)
		i = (i + 1) & (t->cap - 1);
	t->slots[i] = (struct sym){s, (uint32_t)n, ns, value, line};
	t->count++;
	return true;
}

/* Edit distance of a[0..n) and b[0..m), both at most 64 bytes + 1. */
static size_t distance(const char *a, size_t n, const char *b, size_t m)
{
	size_t row[HT_RULES_NAME_BYTES_MAX + 2];
	HT_ASSERT(m <= HT_RULES_NAME_BYTES_MAX + 1);
	for (size_t j = 0; j <= m; j++)
		row[j] = j;
	for (size_t i = 1; i <= n; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= m; j++) {
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = row[j];
			row[j] = best;
		}
	}
	return row[m];
}

/* Byte order of two names that are not NUL-terminated. */
static int name_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	return c ? c : (an > bn) - (an < bn);
}

/* The known name of namespace ns nearest to s[0..n), if near enough to be
 * a typo (at most a third of its length, at least 2 edits allowed); ties
 * go to the smallest name, so the hint does not depend on hashing. */
static const struct sym *sym_nearest(const struct symtab *t, uint32_t ns,
				     const char *s, size_t n)
{
	const struct sym *best = NULL;
	size_t best_d = n / 3 > 2 ? n / 3 : 2;
	for (size_t i = 0; i < t->cap; i++) {
		const struct sym *e = &t->slots[i];
		/* The length difference bounds the distance from below: it
		 * skips most candidates before the quadratic part. */
		if (!e->name || e->ns != ns ||
		    (e->len > n ? e->len - n : n - e->len) > best_d)
			continue;
		size_t d = distance(s, n, e->name, e->len);
		if (d < best_d || (d == best_d && !best) ||
		    (d == best_d && best &&
		     name_cmp(e->name, e->len, best->name, best->len) < 0)) {
			best = e;
			best_d = d;
		}
	}
	return best;
}

/* ---- tokens ---- */

static void next(struct parser *p)
{
	rules_lex_next(&p->lx, &p->tok);
}

static bool is_word(const struct rules_tok *t, const char *src,
		    const char *word)
{
	size_t n = strlen(word);
	return t->kind == TK_NAME && t->len == n &&
	       !memcmp(src + t->pos.offset, word, n);
}

#define IS(p, word) is_word(&(p)->tok, (p)->lx.src, (word))

static const char *tok_text(const struct parser *p)
{
	return p->lx.src + p->tok.pos.offset;
}

/* Report "expected X" at the current token, or the lexer's message when
 * the token is itself an error. */
static void expected(struct parser *p, const char *what)
{
	struct rules_tok *t = &p->tok;
	if (t->kind == TK_ERROR)
		error_at(p, &t->pos, t->limit ? HT_ERR_LIMIT : HT_ERR_INVALID,
			 "%s", p->lx.msg);
	else if (t->kind == TK_NAME)
		SYNTAX(p, &t->pos, "expected %s, got '%.*s'", what,
		       (int)t->len, tok_text(p));
	else
		SYNTAX(p, &t->pos, "expected %s, got %s", what,
		       rules_tok_name(t->kind));
}

static bool accept(struct parser *p, enum rules_tok_kind kind,
		   const char *what)
{
	if (p->tok.kind == kind) {
		next(p);
		return true;
	}
	expected(p, what);
	return false;
}

static bool reserved(const char *s, size_t n)
{
	static const char *const words[] = {"and", "or", "not", "in", "true",
					    "false"};
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (strlen(words[i]) == n && !memcmp(s, words[i], n))
			return true;
	return false;
}

static bool snake_case(const char *s, size_t n)
{
	if (n == 0 || n > HT_RULES_NAME_BYTES_MAX || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '_'))
			return false;
	return true;
}

/* ---- code emission ---- */

/* Net stack effect of each opcode (jumps: when they fall through). */
static int stack_effect(enum rules_op op)
{
	switch (op) {
	case OP_NUM: case OP_STR: case OP_CONST: case OP_SCONST: case OP_BOOL:
	case OP_NUM_LT_K: case OP_NUM_LE_K: case OP_NUM_GT_K: case OP_NUM_GE_K:
	case OP_NUM_EQ_K: case OP_NUM_NE_K: case OP_STR_EQ_K: case OP_STR_NE_K:
	case OP_NUM_IN_L: case OP_STR_IN_L:
		return 1;
	case OP_NEG: case OP_NOT: case OP_IN: case OP_SIN:
		return 0;
	default:
		return -1;
	}
}

/* Append an instruction; its index into *at (may be NULL). */
static bool emit(struct parser *p, enum rules_op op, uint32_t a, double k,
		 size_t *at)
{
	if (!GROW(p, p->code, p->code_len, p->code_cap))
		return false;
	struct rules_insn *i = &p->code[p->code_len];
	memset(i, 0, sizeof *i);
	i->op = (uint16_t)op;
	i->a = a;
	i->u.k = k;
	if (at)
		*at = p->code_len;
	p->code_len++;
	int eff = stack_effect(op);
	HT_ASSERT(eff >= 0 || p->sp >= (unsigned)-eff);
	p->sp = (unsigned)((int)p->sp + eff);
	if (p->sp > p->sp_max)
		p->sp_max = p->sp;
	return true;
}

/* Replace code[from..) by one fused instruction (same net stack effect). */
static void fuse(struct parser *p, size_t from, enum rules_op op, uint32_t a,
		 const struct rules_insn *operand)
{
	struct rules_insn f = *operand;
	f.op = (uint16_t)op;
	f.a = a;
	p->code[from] = f;
	p->code_len = from + 1;
}

/* ---- expressions ---- */

static enum ty parse_expr(struct parser *p);

static const char *ty_name(enum ty t)
{
	return t == TY_NUM ? "a number" : t == TY_STR ? "a string"
						      : "true/false";
}

/* Enter one nesting level; false (reported) past HT_RULES_DEPTH_MAX. */
static bool enter(struct parser *p)
{
	if (++p->depth <= HT_RULES_DEPTH_MAX)
		return true;
	LIMIT(p, &p->tok.pos, "expression nested deeper than %u levels",
	      HT_RULES_DEPTH_MAX);
	p->depth--;
	return false;
}

static enum ty parse_name_value(struct parser *p)
{
	const char *s = tok_text(p);
	size_t n = p->tok.len;
	if (IS(p, "true") || IS(p, "false")) {
		bool v = IS(p, "true");
		next(p);
		return emit(p, OP_BOOL, v, 0, NULL) ? TY_BOOL : TY_ERR;
	}
	if (reserved(s, n)) {
		expected(p, "a value");
		return TY_ERR;
	}
	struct sym *e = sym_find(&p->syms, NS_FEATURE, s, n);
	if (!e) {
		const struct sym *near = sym_nearest(&p->syms, NS_FEATURE, s, n);
		if (near)
			SYNTAX(p, &p->tok.pos, "unknown feature '%.*s' (did you"
			       " mean '%.*s'?)", (int)n, s, (int)near->len,
			       near->name);
		else
			SYNTAX(p, &p->tok.pos, "unknown feature '%.*s'", (int)n, s);
		return TY_ERR;
	}
	next(p);
	bool str = e->value & 1;
	if (!emit(p, str ? OP_STR : OP_NUM, e->value >> 1, 0, NULL))
		return TY_ERR;
	return str ? TY_STR : TY_NUM;
}

static enum ty parse_primary(struct parser *p)
{
	size_t at;
	uint32_t off;
	switch (p->tok.kind) {
	case TK_NUMBER: {
		double k = p->tok.num;
		next(p);
		return emit(p, OP_CONST, 0, k, NULL) ? TY_NUM : TY_ERR;
	}
	case TK_STRING:
		if (!pool_add(p, p->lx.str, p->tok.str_len, &off) ||
		    !emit(p, OP_SCONST, 0, 0, &at))
			return TY_ERR;
		p->code[at].u.off = off;
		next(p);
		return TY_STR;
	case TK_NAME:
		return parse_name_value(p);
	case TK_LPAREN: {
		next(p);
		enum ty t = parse_expr(p);
		if (t != TY_ERR && !accept(p, TK_RPAREN, "')'"))
			return TY_ERR;
		return t;
	}
	case TK_LBRACK:
		SYNTAX(p, &p->tok.pos, "a list can only follow 'in'");
		return TY_ERR;
	default:
		expected(p, "a value");
		return TY_ERR;
	}
}

static enum ty parse_unary(struct parser *p)
{
	if (p->tok.kind != TK_MINUS)
		return parse_primary(p);
	struct rules_pos pos = p->tok.pos;
	if (!enter(p))
		return TY_ERR;
	next(p);
	size_t from = p->code_len;
	enum ty t = parse_unary(p);
	p->depth--;
	if (t == TY_ERR)
		return t;
	if (t != TY_NUM) {
		SYNTAX(p, &pos, "unary '-' needs a number, not %s", ty_name(t));
		return TY_ERR;
	}
	/* A negative literal is a constant, so it can fuse. */
	if (p->code_len == from + 1 && p->code[from].op == OP_CONST) {
		p->code[from].u.k = -p->code[from].u.k;
		return TY_NUM;
	}
	return emit(p, OP_NEG, 0, 0, NULL) ? TY_NUM : TY_ERR;
}

/* One level of left-associative arithmetic: ops[i] emits codes[i]. */
static enum ty parse_arith(struct parser *p, bool product)
{
	static const enum rules_tok_kind sum_ops[] = {TK_PLUS, TK_MINUS};
	static const enum rules_op sum_codes[] = {OP_ADD, OP_SUB};
	static const enum rules_tok_kind prod_ops[] = {TK_STAR, TK_SLASH,
						       TK_PERCENT};
	static const enum rules_op prod_codes[] = {OP_MUL, OP_DIV, OP_MOD};
	const enum rules_tok_kind *ops = product ? prod_ops : sum_ops;
	const enum rules_op *codes = product ? prod_codes : sum_codes;
	size_t n = product ? 3 : 2;
	enum ty t = product ? parse_unary(p) : parse_arith(p, true);
	for (;;) {
		size_t k = 0;
		while (k < n && p->tok.kind != ops[k])
			k++;
		if (t == TY_ERR || k == n)
			return t;
		struct rules_tok op = p->tok;
		next(p);
		enum ty r = product ? parse_unary(p) : parse_arith(p, true);
		if (r == TY_ERR)
			return r;
		if (t != TY_NUM || r != TY_NUM) {
			SYNTAX(p, &op.pos, "%s needs numbers, not %s",
			       rules_tok_name(op.kind),
			       ty_name(t != TY_NUM ? t : r));
			return TY_ERR;
		}
		if (!emit(p, codes[k], 0, 0, NULL))
			return TY_ERR;
	}
}

static bool cmp_op(enum rules_tok_kind k, enum rules_op *op)
{
	static const enum rules_op ops[] = {
		[TK_LT] = OP_LT, [TK_LE] = OP_LE, [TK_GT] = OP_GT,
		[TK_GE] = OP_GE, [TK_EQ] = OP_EQ, [TK_NE] = OP_NE,
	};
	if (k < TK_LT || k > TK_NE)
		return false;
	*op = ops[k];
	return true;
}

/* The comparison with its operands swapped: 5 < x is x > 5. */
static enum rules_op cmp_swap(enum rules_op op)
{
	switch (op) {
	case OP_LT: return OP_GT;
	case OP_LE: return OP_GE;
	case OP_GT: return OP_LT;
	case OP_GE: return OP_LE;
	default: return op;
	}
}

/* Fuse feature <op> constant (either order) into one instruction. */
static void fuse_compare(struct parser *p, size_t l0, size_t r0,
			 enum rules_op op)
{
	if (r0 != l0 + 1 || p->code_len != r0 + 2)
		return;
	struct rules_insn l = p->code[l0], r = p->code[r0];
	if (l.op == OP_CONST && r.op == OP_NUM) {
		struct rules_insn tmp = l;
		l = r;
		r = tmp;
		op = cmp_swap(op);
	}
	if (l.op == OP_NUM && r.op == OP_CONST)
		fuse(p, l0, OP_NUM_LT_K + (op - OP_LT), l.a, &r);
	else if (l.op == OP_STR && r.op == OP_SCONST)
		fuse(p, l0, op == OP_SEQ ? OP_STR_EQ_K : OP_STR_NE_K, l.a, &r);
	else if (l.op == OP_SCONST && r.op == OP_STR)
		fuse(p, l0, op == OP_SEQ ? OP_STR_EQ_K : OP_STR_NE_K, r.a, &l);
}

static enum ty parse_compare_rest(struct parser *p, enum ty lt, size_t l0,
				  enum rules_op op)
{
	struct rules_tok optok = p->tok;
	next(p);
	size_t r0 = p->code_len;
	enum ty rt = parse_arith(p, false);
	if (rt == TY_ERR)
		return rt;
	bool order = op != OP_EQ && op != OP_NE;
	if (lt != rt) {
		SYNTAX(p, &optok.pos, "cannot compare %s with %s", ty_name(lt),
		       ty_name(rt));
		return TY_ERR;
	}
	if (lt == TY_BOOL || (order && lt == TY_STR)) {
		SYNTAX(p, &optok.pos, "%s needs numbers%s, not %s",
		       rules_tok_name(optok.kind), order ? "" : " or strings",
		       ty_name(lt));
		return TY_ERR;
	}
	if (lt == TY_STR)
		op = op == OP_EQ ? OP_SEQ : OP_SNE;
	if (!emit(p, op, 0, 0, NULL))
		return TY_ERR;
	fuse_compare(p, l0, r0, op);
	enum rules_op again;
	if (cmp_op(p->tok.kind, &again)) {
		SYNTAX(p, &p->tok.pos, "comparisons do not chain; join them"
		       " with 'and'");
		return TY_ERR;
	}
	return TY_BOOL;
}

static enum ty parse_list_literal(struct parser *p, uint32_t *index);

/* After `x in` / `x not in`: a literal list or a list's name. */
static enum ty parse_in_rest(struct parser *p, enum ty lt, size_t l0,
			     bool negate, const struct rules_pos *inpos)
{
	uint32_t index;
	struct rules_pos lpos = p->tok.pos;
	if (lt != TY_NUM && lt != TY_STR) {
		SYNTAX(p, inpos, "'in' needs a number or a string on its left,"
		       " not %s", ty_name(lt));
		return TY_ERR;
	}
	if (p->tok.kind == TK_LBRACK) {
		if (parse_list_literal(p, &index) == TY_ERR)
			return TY_ERR;
	} else if (p->tok.kind == TK_NAME) {
		const char *s = tok_text(p);
		size_t n = p->tok.len;
		struct sym *e = sym_find(&p->syms, NS_LIST, s, n);
		if (!e) {
			const struct sym *near = sym_nearest(&p->syms, NS_LIST,
							     s, n);
			SYNTAX(p, &lpos, "unknown list '%.*s'%s%.*s%s", (int)n, s,
			       near ? " (did you mean '" : "",
			       near ? (int)near->len : 0, near ? near->name : "",
			       near ? "'?)" : "");
			return TY_ERR;
		}
		index = e->value;
		next(p);
	} else {
		expected(p, "'[' or a list name after 'in'");
		return TY_ERR;
	}
	const struct rules_list *l = &p->lists[index];
	if (l->count > 0 && l->strings != (lt == TY_STR)) {
		SYNTAX(p, &lpos, "cannot look for %s in a list of %s",
		       ty_name(lt), l->strings ? "strings" : "numbers");
		return TY_ERR;
	}
	if (!emit(p, lt == TY_STR ? OP_SIN : OP_IN, index, 0, NULL))
		return TY_ERR;
	if (p->code_len == l0 + 2 &&
	    (p->code[l0].op == OP_NUM || p->code[l0].op == OP_STR)) {
		struct rules_insn f = {.u.list = index};
		fuse(p, l0, p->code[l0].op == OP_NUM ? OP_NUM_IN_L : OP_STR_IN_L,
		     p->code[l0].a, &f);
	}
	if (negate && !emit(p, OP_NOT, 0, 0, NULL))
		return TY_ERR;
	return TY_BOOL;
}

static enum ty parse_compare(struct parser *p)
{
	size_t l0 = p->code_len;
	enum ty lt = parse_arith(p, false);
	enum rules_op op;
	if (lt == TY_ERR)
		return lt;
	if (cmp_op(p->tok.kind, &op))
		return parse_compare_rest(p, lt, l0, op);
	struct rules_pos inpos = p->tok.pos;
	bool negate = IS(p, "not");
	if (negate) {
		next(p);
		if (!IS(p, "in")) {
			expected(p, "'in' after 'not'");
			return TY_ERR;
		}
	}
	if (!IS(p, "in"))
		return lt;
	next(p);
	return parse_in_rest(p, lt, l0, negate, &inpos);
}

static enum ty parse_not(struct parser *p)
{
	if (!IS(p, "not"))
		return parse_compare(p);
	struct rules_pos pos = p->tok.pos;
	if (!enter(p))
		return TY_ERR;
	next(p);
	enum ty t = parse_not(p);
	p->depth--;
	if (t == TY_ERR)
		return t;
	if (t != TY_BOOL) {
		SYNTAX(p, &pos, "'not' needs true/false, not %s", ty_name(t));
		return TY_ERR;
	}
	return emit(p, OP_NOT, 0, 0, NULL) ? TY_BOOL : TY_ERR;
}

/* One level of short-circuit logic: `and` over `not`, `or` over `and`. */
static enum ty parse_logic(struct parser *p, bool is_or)
{
	const char *word = is_or ? "or" : "and";
	struct rules_pos lpos = p->tok.pos;
	enum ty t = is_or ? parse_logic(p, false) : parse_not(p);
	while (t != TY_ERR && IS(p, word)) {
		if (t != TY_BOOL) {
			SYNTAX(p, &lpos, "'%s' needs true/false, not %s", word,
			       ty_name(t));
			return TY_ERR;
		}
		next(p);
		size_t jump;
		if (!emit(p, is_or ? OP_OR : OP_AND, 0, 0, &jump))
			return TY_ERR;
		struct rules_pos rpos = p->tok.pos;
		enum ty r = is_or ? parse_logic(p, false) : parse_not(p);
		if (r == TY_ERR)
			return r;
		if (r != TY_BOOL) {
			SYNTAX(p, &rpos, "'%s' needs true/false, not %s", word,
			       ty_name(r));
			return TY_ERR;
		}
		HT_ASSERT(p->code_len <= UINT32_MAX);
		p->code[jump].a = (uint32_t)p->code_len;
	}
	return t;
}

static enum ty parse_expr(struct parser *p)
{
	if (!enter(p))
		return TY_ERR;
	enum ty t = parse_logic(p, true);
	p->depth--;
	return t;
}

/* ---- lists ---- */

/* One item of a list literal into list l. */
static bool parse_list_item(struct parser *p, struct rules_list *l)
{
	struct rules_pos pos = p->tok.pos;
	bool neg = p->tok.kind == TK_MINUS;
	if (neg)
		next(p);
	bool str = p->tok.kind == TK_STRING && !neg;
	if (!str && p->tok.kind != TK_NUMBER) {
		expected(p, neg ? "a number after '-'" : "a number or a string");
		return false;
	}
	if (l->count > 0 && l->strings != str) {
		SYNTAX(p, &pos, "a list holds numbers or strings, not both");
		return false;
	}
	if (l->count == HT_RULES_LIST_ITEMS_MAX) {
		LIMIT(p, &pos, "list longer than %u items",
		      HT_RULES_LIST_ITEMS_MAX);
		p->stop = true;
		return false;
	}
	l->strings = str;
	if (str) {
		if (!GROW(p, p->strs, p->str_len, p->str_cap) ||
		    !pool_add(p, p->lx.str, p->tok.str_len, &p->strs[p->str_len]))
			return false;
		p->str_len++;
	} else {
		if (!GROW(p, p->nums, p->num_len, p->num_cap))
			return false;
		p->nums[p->num_len++] = neg ? -p->tok.num : p->tok.num;
	}
	l->count++;
	next(p);
	return true;
}

/* `[ item, ... ]` into a new list; its index into *index. A list's items
 * are contiguous in nums or strs because lists do not nest. */
static enum ty parse_list_literal(struct parser *p, uint32_t *index)
{
	struct rules_pos pos = p->tok.pos;
	if (!accept(p, TK_LBRACK, "'['"))
		return TY_ERR;
	if (p->list_len == HT_RULES_LISTS_MAX) {
		LIMIT(p, &pos, "more than %u lists", HT_RULES_LISTS_MAX);
		p->stop = true;
		return TY_ERR;
	}
	if (!GROW(p, p->lists, p->list_len, p->list_cap))
		return TY_ERR;
	struct rules_list l = {.strings = p->tok.kind == TK_STRING,
			       .first = p->tok.kind == TK_STRING ? p->str_len
								 : p->num_len};
	while (p->tok.kind != TK_RBRACK) {
		if (!parse_list_item(p, &l))
			return TY_ERR;
		if (p->tok.kind == TK_COMMA)
			next(p);
		else if (p->tok.kind != TK_RBRACK)
			return expected(p, "',' or ']'"), TY_ERR;
	}
	next(p);
	*index = (uint32_t)p->list_len;
	p->lists[p->list_len++] = l;
	return l.strings ? TY_STR : TY_NUM;
}

/* list NAME = [ ... ] */
static bool parse_list_def(struct parser *p)
{
	next(p);
	struct rules_tok name = p->tok;
	const char *s = tok_text(p);
	if (name.kind != TK_NAME || memchr(s, '.', name.len) ||
	    reserved(s, name.len)) {
		expected(p, "a list name (no dots)");
		return false;
	}
	struct sym *e = sym_find(&p->syms, NS_LIST, s, name.len);
	if (e) {
		SYNTAX(p, &name.pos, "list '%.*s' is already defined at line %u",
		       (int)name.len, s, e->line);
		return false;
	}
	next(p);
	uint32_t index;
	if (!accept(p, TK_ASSIGN, "'=' after the list name") ||
	    parse_list_literal(p, &index) == TY_ERR)
		return false;
	return sym_add(p, NS_LIST, s, name.len, index, name.pos.line);
}

/* ---- rules ---- */

/* The clauses after `=>`: action, then score and reason in any order. */
static bool parse_action(struct parser *p, struct prule *r)
{
	static const char *const actions[] = {"allow", "review", "block"};
	size_t k = 0;
	while (k < 3 && !IS(p, actions[k]))
		k++;
	if (k == 3) {
		expected(p, "allow, review or block after '=>'");
		return false;
	}
	r->action = (enum ht_rule_action)k;
	next(p);
	bool score = false, reason = false;
	while (IS(p, "score") || IS(p, "reason")) {
		bool is_score = IS(p, "score");
		struct rules_pos pos = p->tok.pos;
		if (is_score ? score : reason) {
			SYNTAX(p, &pos, "%s given twice",
			       is_score ? "score" : "reason");
			return false;
		}
		next(p);
		if (is_score) {
			if (p->tok.kind == TK_NUMBER && (!p->tok.integer ||
			    p->tok.num > HT_RULES_SCORE_MAX)) {
				SYNTAX(p, &p->tok.pos, "score must be an integer"
				       " 0..%u", HT_RULES_SCORE_MAX);
				return false;
			}
			if (p->tok.kind != TK_NUMBER) {
				expected(p, "a score, an integer 0..100");
				return false;
			}
			r->score = (unsigned)p->tok.num;
			score = true;
		} else {
			if (p->tok.kind != TK_STRING ||
			    !snake_case(p->lx.str, p->tok.str_len)) {
				expected(p, "a reason, a snake_case string such"
				       " as \"new_device\"");
				return false;
			}
			if (!pool_add(p, p->lx.str, p->tok.str_len, &r->reason))
				return false;
			reason = true;
		}
		next(p);
	}
	return true;
}

/* The name after `rule`: snake_case, new in its scope. */
static bool parse_rule_name(struct parser *p, struct prule *r)
{
	const char *s = tok_text(p);
	size_t n = p->tok.len;
	if (p->tok.kind != TK_NAME || !snake_case(s, n) || reserved(s, n)) {
		expected(p, "a rule name in snake_case");
		return false;
	}
	struct sym *e = sym_find(&p->syms, NS_RULES + p->scope, s, n);
	if (e) {
		SYNTAX(p, &p->tok.pos, "duplicate rule name '%.*s' (first at"
		       " line %u)", (int)n, s, e->line);
		return false;
	}
	if (!sym_add(p, NS_RULES + p->scope, s, n, 0, p->tok.pos.line) ||
	    !pool_add(p, s, n, &r->name))
		return false;
	r->reason = r->name;
	next(p);
	return true;
}

/* The condition: an expression of type true/false, compiled from
 * code_len on and ended with OP_END. */
static bool parse_condition(struct parser *p, struct prule *r)
{
	struct rules_pos pos = p->tok.pos;
	HT_ASSERT(p->code_len <= UINT32_MAX);
	r->code = (uint32_t)p->code_len;
	p->sp = p->sp_max = 0;
	p->depth = 0;
	enum ty t = parse_expr(p);
	if (t == TY_ERR)
		return false;
	if (t != TY_BOOL) {
		SYNTAX(p, &pos, "a rule's condition must be true/false, not %s",
		       ty_name(t));
		return false;
	}
	HT_ASSERT(p->sp == 1);
	if (p->sp_max > HT_RULES_STACK_MAX) {
		LIMIT(p, &pos, "expression too complex (more than %u pending"
		      " values)", HT_RULES_STACK_MAX);
		return false;
	}
	return emit(p, OP_END, 0, 0, NULL);
}

/* [shadow] rule NAME: EXPR => ACTION [score N] [reason "code"] */
static bool parse_rule(struct parser *p)
{
	struct prule r = {.scope = p->scope, .line = p->tok.pos.line};
	if (IS(p, "shadow")) {
		r.shadow = true;
		next(p);
		if (!IS(p, "rule")) {
			expected(p, "'rule' after 'shadow'");
			return false;
		}
	}
	if (p->rule_len == HT_RULES_RULES_MAX) {
		LIMIT(p, &p->tok.pos, "more than %u rules", HT_RULES_RULES_MAX);
		p->stop = true;
		return false;
	}
	next(p);
	if (!parse_rule_name(p, &r) ||
	    !accept(p, TK_COLON, "':' after the rule name") ||
	    !parse_condition(p, &r))
		return false;
	if (p->tok.kind != TK_ARROW) {
		if (p->tok.kind == TK_ERROR)
			expected(p, "'=>'");
		else
			SYNTAX(p, &p->tok.pos, "expected '=>' after condition");
		return false;
	}
	next(p);
	if (!parse_action(p, &r) || !GROW(p, p->rules, p->rule_len, p->rule_cap))
		return false;
	p->rules[p->rule_len++] = r;
	return true;
}

/* ---- statements ---- */

static bool statement_start(const struct parser *p)
{
	return IS(p, "rule") || IS(p, "shadow") || IS(p, "list") ||
	       IS(p, "participant") || IS(p, "version") ||
	       p->tok.kind == TK_RBRACE;
}

/* After an error: skip to a statement keyword or '}' that starts a line,
 * having moved past the token the failed statement started at. */
static void synchronize(struct parser *p, size_t start)
{
	if (p->tok.kind != TK_EOF && p->tok.pos.offset == start)
		next(p);
	while (p->tok.kind != TK_EOF &&
	       !(p->tok.first_on_line && statement_start(p)))
		next(p);
}

static bool parse_version(struct parser *p)
{
	struct rules_pos pos = p->tok.pos;
	if (p->have_version || p->seen_statement) {
		SYNTAX(p, &pos, "'version' must be the first statement, once");
		return false;
	}
	next(p);
	if (p->tok.kind == TK_NUMBER && (!p->tok.integer ||
					 p->tok.num > UINT32_MAX)) {
		SYNTAX(p, &p->tok.pos, "version must be an integer"
		       " 0..4294967295");
		return false;
	}
	if (p->tok.kind != TK_NUMBER) {
		expected(p, "a version number");
		return false;
	}
	p->version = (uint32_t)p->tok.num;
	p->have_version = true;
	next(p);
	return true;
}

static bool participant_valid(const char *s, size_t n)
{
	if (n == 0 || n > HT_RULES_PARTICIPANT_BYTES_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!rules_name_char(s[i]) && s[i] != '.' && s[i] != '-')
			return false;
	return true;
}

static bool parse_section_body(struct parser *p, const struct rules_pos *open);

/* participant ID { rule ... } */
static bool parse_section(struct parser *p)
{
	struct rules_pos open = p->tok.pos;
	if (p->scope) {
		SYNTAX(p, &open, "participant sections do not nest");
		return false;
	}
	next(p);
	bool str = p->tok.kind == TK_STRING;
	const char *s = str ? p->lx.str : tok_text(p);
	size_t n = str ? p->tok.str_len : p->tok.len;
	if ((!str && p->tok.kind != TK_NAME) || !participant_valid(s, n)) {
		expected(p, "a participant id (1..56 of A-Z a-z 0-9 . _ -)");
		return false;
	}
	if (p->section_len == HT_RULES_SECTIONS_MAX) {
		LIMIT(p, &p->tok.pos, "more than %u participant sections",
		      HT_RULES_SECTIONS_MAX);
		p->stop = true;
		return false;
	}
	/* Symbols point into the text, which outlives the parse: an id
	 * between quotes has no escapes (its characters exclude '"' and
	 * '\\'), so the text after the quote is the id itself. */
	const char *key = tok_text(p) + str;
	struct sym *e = sym_find(&p->syms, NS_SECTION, key, n);
	if (e) {
		SYNTAX(p, &p->tok.pos, "participant '%.*s' already has a section"
		       " at line %u", (int)n, key, e->line);
		return false;
	}
	uint32_t off;
	if (!pool_add(p, s, n, &off) ||
	    !sym_add(p, NS_SECTION, key, n, 0, open.line) ||
	    !GROW(p, p->sections, p->section_len, p->section_cap))
		return false;
	struct psection *sec = &p->sections[p->section_len];
	*sec = (struct psection){off, (uint32_t)p->rule_len, 0};
	next(p);
	if (!accept(p, TK_LBRACE, "'{' after the participant id"))
		return false;
	p->section_len++;
	p->scope = (uint32_t)p->section_len;
	bool ok = parse_section_body(p, &open);
	p->sections[p->section_len - 1].count =
		(uint32_t)(p->rule_len - p->sections[p->section_len - 1].first);
	p->scope = 0;
	return ok;
}

static bool parse_statement(struct parser *p);

/* Rules up to the closing '}'. `participant`, `list` or `version` in the
 * first column, or the end of the file, means the '}' is missing (indented,
 * they are mistakes inside the section, reported as such). */
static bool parse_section_body(struct parser *p, const struct rules_pos *open)
{
	while (!p->stop) {
		if (p->tok.kind == TK_RBRACE) {
			next(p);
			return true;
		}
		bool column1 = p->tok.pos.offset == p->tok.pos.line_start;
		if (p->tok.kind == TK_EOF ||
		    (column1 && (IS(p, "participant") || IS(p, "list") ||
				 IS(p, "version")))) {
			SYNTAX(p, &p->tok.pos, "missing '}' to close the section"
			       " opened at line %u", open->line);
			return true; /* reported; the caller goes on from here */
		}
		parse_statement(p);
	}
	return false;
}

/* One statement, with recovery after an error. */
static bool parse_statement(struct parser *p)
{
	size_t start = p->tok.pos.offset;
	bool ok;
	if (!p->seen_statement && !IS(p, "version")) {
		/* Report it once, then parse the statement all the same. */
		SYNTAX(p, &p->tok.pos, "expected 'version N' as the first"
		       " statement");
		p->have_version = true;
	}
	if (IS(p, "version")) {
		ok = parse_version(p);
	} else if (IS(p, "rule") || IS(p, "shadow")) {
		ok = parse_rule(p);
	} else if (IS(p, "list") && p->scope) {
		SYNTAX(p, &p->tok.pos, "lists are defined outside participant"
		       " sections");
		ok = false;
	} else if (IS(p, "list")) {
		ok = parse_list_def(p);
	} else if (IS(p, "participant")) {
		ok = parse_section(p);
	} else if (p->tok.kind == TK_RBRACE) {
		SYNTAX(p, &p->tok.pos, "'}' without a participant section");
		ok = false;
	} else {
		expected(p, "'rule', 'shadow rule', 'list' or 'participant'");
		ok = false;
	}
	p->seen_statement = true;
	if (!ok && !p->stop)
		synchronize(p, start);
	return ok;
}

/* ---- schema ---- */

static bool feature_name_valid(const char *s, size_t n)
{
	if (n == 0 || n > HT_RULES_NAME_BYTES_MAX || reserved(s, n))
		return false;
	bool seg_start = true;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (seg_start || i + 1 == n)
				return false;
			seg_start = true;
		} else if (seg_start) {
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      c == '_'))
				return false;
			seg_start = false;
		} else if (!rules_name_char(c)) {
			return false;
		}
	}
	return true;
}

/* Enter the schema's names as features: value = index * 2 + is_string. */
static bool load_schema(struct parser *p, const struct ht_rule_schema *sc)
{
	struct rules_pos none = {0, 0, 0};
	if (sc->num_count + sc->str_count > HT_RULES_SCHEMA_NAMES_MAX ||
	    (sc->num_count && !sc->num_names) ||
	    (sc->str_count && !sc->str_names)) {
		SYNTAX(p, &none, "schema: at most %u names, arrays not NULL",
		       HT_RULES_SCHEMA_NAMES_MAX);
		return false;
	}
	for (size_t k = 0; k < sc->num_count + sc->str_count; k++) {
		bool str = k >= sc->num_count;
		size_t i = str ? k - sc->num_count : k;
		const char *s = str ? sc->str_names[i] : sc->num_names[i];
		size_t n = s ? strnlen(s, HT_RULES_NAME_BYTES_MAX + 1) : 0;
		if (!feature_name_valid(s, n) ||
		    sym_find(&p->syms, NS_FEATURE, s, n)) {
			SYNTAX(p, &none, "schema: name %zu ('%.64s') is invalid"
			       " or repeated", k, s ? s : "(null)");
			return false;
		}
		if (!sym_add(p, NS_FEATURE, s, n, (uint32_t)(i * 2 + str), 0))
			return false;
	}
	return true;
}

/* ---- building the rule set ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Slots of a string list's hash index: a power of two >= 2 * count. */
static size_t slot_count(uint32_t count)
{
	size_t n = 4;
	while (n < 2 * (size_t)count)
		n *= 2;
	return n;
}

/* Build every string list's hash index (finish_lists has deduplicated). */
static enum ht_err index_lists(struct ht_ruleset *rs)
{
	size_t total = 0;
	for (size_t i = 0; i < rs->list_count; i++)
		if (rs->lists[i].strings && rs->lists[i].count)
			total += slot_count(rs->lists[i].count);
	rs->slots = calloc(total + 1, sizeof *rs->slots);
	if (!rs->slots)
		return HT_ERR_NOMEM;
	total = 0;
	for (size_t i = 0; i < rs->list_count; i++) {
		struct rules_list *l = &rs->lists[i];
		if (!l->strings || !l->count)
			continue;
		l->slot_first = total;
		l->slot_mask = slot_count(l->count) - 1;
		total += l->slot_mask + 1;
		uint64_t *slots = rs->slots + l->slot_first;
		for (uint32_t k = 0; k < l->count; k++) {
			uint64_t h = rules_str_hash(rs->strs[l->first + k]);
			size_t j = h & l->slot_mask;
			while (slots[j])
				j = (j + 1) & l->slot_mask;
			slots[j] = (h >> 32) << 32 | (uint64_t)(k + 1);
		}
	}
	return HT_OK;
}

/* Sort each list's items and drop duplicates. */
static void finish_lists(struct ht_ruleset *rs)
{
	for (size_t i = 0; i < rs->list_count; i++) {
		struct rules_list *l = &rs->lists[i];
		size_t n = 0;
		if (l->count == 0)
			continue;
		if (l->strings) {
			const char **v = rs->strs + l->first;
			qsort(v, l->count, sizeof *v, cmp_str);
			for (size_t j = 0; j < l->count; j++)
				if (!n || strcmp(v[n - 1], v[j]))
					v[n++] = v[j];
		} else {
			double *v = rs->nums + l->first;
			qsort(v, l->count, sizeof *v, cmp_double);
			for (size_t j = 0; j < l->count; j++)
				if (!n || v[n - 1] != v[j])
					v[n++] = v[j];
		}
		HT_ASSERT(n <= l->count);
		l->count = (uint32_t)n;
	}
}

static int cmp_section(const void *a, const void *b)
{
	const struct rules_section *x = a, *y = b;
	return strcmp(x->participant, y->participant);
}

static void add_rule(struct ht_ruleset *rs, const struct parser *p,
		     const struct prule *r, const char *participant)
{
	struct rules_rule *o = &rs->rules[rs->rule_count++];
	o->info = (struct ht_rule_info){
		.name = rs->pool + r->name,
		.reason = rs->pool + r->reason,
		.participant = participant,
		.action = r->action,
		.score = r->score,
		.shadow = r->shadow,
		.line = r->line,
	};
	o->code = r->code;
	rs->shadow_count += r->shadow;
	HT_ASSERT(r->score <= HT_RULES_SCORE_MAX);
	HT_ASSERT(r->code < p->code_len);
}

/* Order rules: global ones, then sections sorted by participant. The
 * sections' first rule is first their parse-order index, then their
 * index in rs->rules. */
static void finish_rules(struct ht_ruleset *rs, const struct parser *p)
{
	for (size_t s = 0; s < p->section_len; s++)
		rs->sections[s] = (struct rules_section){
			rs->pool + p->sections[s].participant,
			p->sections[s].first, p->sections[s].count};
	qsort(rs->sections, p->section_len, sizeof *rs->sections,
	      cmp_section);
	for (size_t i = 0; i < p->rule_len; i++)
		if (p->rules[i].scope == 0)
			add_rule(rs, p, &p->rules[i], NULL);
	rs->global_count = rs->rule_count;
	for (size_t s = 0; s < p->section_len; s++) {
		struct rules_section *o = &rs->sections[s];
		size_t first = o->first;
		o->first = (uint32_t)rs->rule_count;
		for (size_t i = first; i < first + o->count; i++)
			add_rule(rs, p, &p->rules[i], o->participant);
	}
	rs->section_count = p->section_len;
	HT_ASSERT(rs->rule_count == p->rule_len);
}

/* Point string operands at the pool. */
static void finish_code(struct ht_ruleset *rs)
{
	for (size_t i = 0; i < rs->code_len; i++) {
		struct rules_insn *in = &rs->code[i];
		if (in->op == OP_SCONST || in->op == OP_STR_EQ_K ||
		    in->op == OP_STR_NE_K)
			in->u.s = rs->pool + in->u.off;
	}
}

/* Move what the parser built into a new rule set. */
static enum ht_err build(struct parser *p, struct ht_ruleset **out)
{
	struct ht_ruleset *rs = calloc(1, sizeof *rs);
	if (!rs)
		return HT_ERR_NOMEM;
	rs->rules = malloc((p->rule_len + 1) * sizeof *rs->rules);
	rs->sections = malloc((p->section_len + 1) * sizeof *rs->sections);
	rs->strs = malloc((p->str_len + 1) * sizeof *rs->strs);
	if (!rs->rules || !rs->sections || !rs->strs) {
		rules_free(rs);
		return HT_ERR_NOMEM;
	}
	atomic_init(&rs->refs, 1);
	atomic_init(&rs->div_zero, 0);
	atomic_init(&rs->nonfinite, 0);
	rs->version = p->version;
	rs->pool = p->pool, p->pool = NULL;
	rs->code = p->code, p->code = NULL;
	rs->code_len = p->code_len;
	rs->lists = p->lists, p->lists = NULL;
	rs->list_count = p->list_len;
	rs->nums = p->nums, p->nums = NULL;
	for (size_t i = 0; i < p->str_len; i++)
		rs->strs[i] = rs->pool + p->strs[i];
	finish_lists(rs);
	finish_rules(rs, p);
	finish_code(rs);
	if (index_lists(rs)) {
		rules_free(rs);
		return HT_ERR_NOMEM;
	}
	*out = rs;
	return HT_OK;
}

static void parser_free(struct parser *p)
{
	free(p->syms.slots);
	free(p->code);
	free(p->rules);
	free(p->sections);
	free(p->lists);
	free(p->nums);
	free(p->strs);
	free(p->pool);
}

enum ht_err ht_rules_parse(const char *text, size_t len,
			   const struct ht_rule_schema *schema,
			   struct ht_ruleset **out, struct ht_rules_diag *diag)
{
	struct ht_rules_diag local;
	if (!diag)
		diag = &local;
	memset(diag, 0, sizeof *diag);
	if (!out || !schema || (!text && len))
		return HT_ERR_INVALID;
	*out = NULL;
	struct parser *p = calloc(1, sizeof *p);
	if (!p)
		return HT_ERR_NOMEM;
	p->diag = diag;
	rules_lex_init(&p->lx, text ? text : "", len);
	if (len > HT_RULES_FILE_BYTES_MAX) {
		struct rules_pos start = {0, 0, 1};
		LIMIT(p, &start, "file larger than %u bytes",
		      HT_RULES_FILE_BYTES_MAX);
	} else if (load_schema(p, schema)) {
		next(p);
		while (p->tok.kind != TK_EOF && !p->stop)
			parse_statement(p);
		if (!p->have_version && !p->stop)
			SYNTAX(p, &p->tok.pos, "expected 'version N' as the first"
			       " statement");
	}
	enum ht_err err = p->err;
	if (!err)
		err = build(p, out);
	HT_ASSERT(err || diag->count == 0);
	HT_ASSERT(!err || *out == NULL);
	parser_free(p);
	free(p);
	return err;
}

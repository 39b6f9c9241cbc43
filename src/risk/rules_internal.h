/*
 * rules_internal.h — what the rule language's files share and nobody else
 * sees: the lexer's tokens, the compiled form of a rule set (postfix code
 * with resolved indices) and its opcodes.
 *
 * Owner: risk. rules_lex.c turns text into tokens, rules_parse.c turns
 * tokens into a struct ht_ruleset, rules.c evaluates it and holds it for
 * hot reload. The compiled form is private: it may change in any build.
 */
#ifndef HUITONG_RULES_INTERNAL_H
#define HUITONG_RULES_INTERNAL_H

#include <stdatomic.h>

#include "huitong/rules.h"

/* ---- lexer ---- */

enum rules_tok_kind {
	TK_EOF = 0,
	TK_ERROR,   /* a lexical error; message in the lexer */
	TK_NAME,    /* identifier, possibly dotted: payer.count_1h */
	TK_NUMBER,  /* 12, 1_000, 2.5, 10m (seconds) */
	TK_STRING,  /* "..." (decoded into the lexer's buffer) */
	TK_LPAREN, TK_RPAREN, TK_LBRACK, TK_RBRACK, TK_LBRACE, TK_RBRACE,
	TK_COMMA, TK_COLON, TK_ASSIGN, TK_ARROW,
	TK_LT, TK_LE, TK_GT, TK_GE, TK_EQ, TK_NE,
	TK_PLUS, TK_MINUS, TK_STAR, TK_SLASH, TK_PERCENT,
	TK__COUNT
};

/* Where a token starts. */
struct rules_pos {
	size_t offset;     /* byte offset in the text */
	size_t line_start; /* byte offset of the start of its line */
	unsigned line;     /* 1-based */
};

struct rules_tok {
	enum rules_tok_kind kind;
	struct rules_pos pos;
	size_t len;         /* bytes of the token in the text */
	bool first_on_line; /* nothing but blanks and comments before it */
	double num;         /* TK_NUMBER: the value (durations in seconds) */
	bool integer;       /* TK_NUMBER: digits only, no fraction or unit */
	size_t str_len;     /* TK_STRING: bytes in lexer->str */
	bool limit;         /* TK_ERROR: a limit rather than a syntax error */
};

struct rules_lexer {
	const char *src;
	size_t len;
	size_t offset;
	size_t line_start;
	unsigned line;
	bool line_fresh; /* no token yet on the current line */
	/* The current TK_STRING, decoded, NUL-terminated; overwritten by the
	 * next string token. */
	char str[HT_RULES_STRING_BYTES_MAX + 1];
	/* The current TK_ERROR's message. */
	char msg[HT_RULES_MESSAGE_BYTES];
};

void rules_lex_init(struct rules_lexer *lx, const char *src, size_t len);
/* The next token into *t. Never fails: problems are TK_ERROR tokens. */
void rules_lex_next(struct rules_lexer *lx, struct rules_tok *t);
/* 1-based column of pos (UTF-8 characters from the start of its line). */
unsigned rules_lex_column(const char *src, const struct rules_pos *pos);
/* Printable name of a token kind for messages: "'=>'", "a number". */
const char *rules_tok_name(enum rules_tok_kind kind);
/* True for [A-Za-z0-9_] (the characters of a name segment). */
bool rules_name_char(char c);

/* ---- compiled form ---- */

/*
 * Opcodes of the postfix code. Each rule's code leaves one boolean on the
 * stack and ends with OP_END. Values are numbers (double), strings
 * (NUL-terminated) or booleans, as the parser's type check guarantees.
 */
enum rules_op {
	OP_END = 0,  /* the rule fires when the top of the stack is true */
	OP_NUM,      /* push in->num[a] */
	OP_STR,      /* push in->str[a] ("" for NULL) */
	OP_CONST,    /* push u.k */
	OP_SCONST,   /* push u.s */
	OP_BOOL,     /* push a (0 or 1) */
	OP_NEG,
	OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD,
	OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE, /* numbers */
	OP_SEQ, OP_SNE,                           /* strings */
	OP_IN,       /* number in lists[a] */
	OP_SIN,      /* string in lists[a] */
	OP_NOT,
	OP_AND,      /* top false: jump to a, keeping it; else pop it */
	OP_OR,       /* top true: jump to a, keeping it; else pop it */
	/* Fused forms of the commonest shapes (one dispatch instead of 3). */
	OP_NUM_LT_K, OP_NUM_LE_K, OP_NUM_GT_K, OP_NUM_GE_K, OP_NUM_EQ_K,
	OP_NUM_NE_K, /* push in->num[a] <op> u.k */
	OP_STR_EQ_K, OP_STR_NE_K, /* push in->str[a] ==/!= u.s */
	OP_NUM_IN_L, /* push in->num[a] in lists[u.list] */
	OP_STR_IN_L, /* push in->str[a] in lists[u.list] */
	OP__COUNT
};

struct rules_insn {
	uint16_t op;
	uint32_t a;
	union {
		double k;
		const char *s;
		size_t off;  /* while parsing: pool offset of u.s */
		size_t list; /* list index of the fused list forms */
	} u;
};

/* A sorted, duplicate-free list of numbers or strings. String lists also
 * have a hash index: slot_mask + 1 slots (a power of two, at least twice
 * the items) from slots[slot_first], each 0 (empty) or the item's hash's
 * high 32 bits << 32 | its index in the list + 1. */
struct rules_list {
	bool strings;  /* items are strings (empty lists: either) */
	uint32_t count;
	size_t first;  /* index of the first item in nums or strs */
	size_t slot_first;
	size_t slot_mask;
};

struct rules_rule {
	struct ht_rule_info info;
	uint32_t code; /* index of the rule's first instruction */
};

struct rules_section {
	const char *participant;
	uint32_t first; /* index of its first rule */
	uint32_t count;
};

struct ht_ruleset {
	atomic_size_t refs;
	atomic_uint_least64_t div_zero;
	atomic_uint_least64_t nonfinite;
	uint32_t version;
	size_t rule_count;   /* global_count + every section's */
	size_t global_count; /* rules[0..global_count) are global */
	size_t shadow_count;
	struct rules_rule *rules;
	size_t section_count;
	struct rules_section *sections; /* sorted by participant (strcmp) */
	struct rules_insn *code;
	size_t code_len;
	struct rules_list *lists;
	size_t list_count;
	double *nums;      /* items of numeric lists */
	const char **strs; /* items of string lists */
	uint64_t *slots;   /* hash indexes of string lists */
	char *pool;        /* every string the rule set owns */
};

/* FNV-1a of the NUL-terminated s: the hash of the string lists' index. */
uint64_t rules_str_hash(const char *s);

/* Free rs now, whatever its reference count (the parser's cleanup). */
void rules_free(struct ht_ruleset *rs);

#endif

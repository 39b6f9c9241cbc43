/*
 * rules_lex.c — the rule language's lexer: text to tokens, with the line
 * and column of each (docs/risk-rules.md, "Lexical structure").
 *
 * Owner: risk. The text is outside input: the lexer reads only within
 * [0, len), bounds every name, number and string by rules.h's limits, and
 * turns anything it does not understand into a TK_ERROR token with a
 * message instead of failing, so the parser can report it and recover.
 * It allocates nothing.
 */
#include "rules_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Characters of a number literal we copy for strtod; longer ones are
 * refused (an integer above 2^53 needs at most 16 digits). */
#define NUMBER_CHARS_MAX 40u

void rules_lex_init(struct rules_lexer *lx, const char *src, size_t len)
{
	memset(lx, 0, sizeof *lx);
	lx->src = src;
	lx->len = len;
	lx->line = 1;
	lx->line_fresh = true;
}

bool rules_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_';
}

static bool name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool digit(char c)
{
	return c >= '0' && c <= '9';
}

unsigned rules_lex_column(const char *src, const struct rules_pos *pos)
{
	unsigned col = 1;
	for (size_t i = pos->line_start; i < pos->offset; i++)
		if (((unsigned char)src[i] & 0xc0) != 0x80)
			col++;
	return col;
}

const char *rules_tok_name(enum rules_tok_kind kind)
{
	static const char *const names[TK__COUNT] = {
		[TK_EOF] = "end of file", [TK_ERROR] = "an invalid token",
		[TK_NAME] = "a name", [TK_NUMBER] = "a number",
		[TK_STRING] = "a string", [TK_LPAREN] = "'('",
		[TK_RPAREN] = "')'", [TK_LBRACK] = "'['", [TK_RBRACK] = "']'",
		[TK_LBRACE] = "'{'", [TK_RBRACE] = "'}'", [TK_COMMA] = "','",
		[TK_COLON] = "':'", [TK_ASSIGN] = "'='", [TK_ARROW] = "'=>'",
		[TK_LT] = "'<'", [TK_LE] = "'<='", [TK_GT] = "'>'",
		[TK_GE] = "'>='", [TK_EQ] = "'=='", [TK_NE] = "'!='",
		[TK_PLUS] = "'+'", [TK_MINUS] = "'-'", [TK_STAR] = "'*'",
		[TK_SLASH] = "'/'", [TK_PERCENT] = "'%'",
	};
	return (unsigned)kind < TK__COUNT ? names[kind] : "?";
}

static void lex_error(struct rules_lexer *lx, struct rules_tok *t, bool limit,
		      const char *fmt, const char *arg)
{
	t->kind = TK_ERROR;
	t->limit = limit;
	snprintf(lx->msg, sizeof lx->msg, fmt, arg);
}

/* Skip blanks, newlines and comments, counting lines. */
static void skip_space(struct rules_lexer *lx)
{
	while (lx->offset < lx->len) {
		char c = lx->src[lx->offset];
		if (c == ' ' || c == '\t' || c == '\r') {
			lx->offset++;
		} else if (c == '\n') {
			lx->offset++;
			lx->line++;
			lx->line_start = lx->offset;
			lx->line_fresh = true;
		} else if (c == '#') {
			while (lx->offset < lx->len && lx->src[lx->offset] != '\n')
				lx->offset++;
		} else {
			return;
		}
	}
}

/* A name: segments of [A-Za-z_][A-Za-z0-9_]* joined by single dots. */
static void lex_name(struct rules_lexer *lx, struct rules_tok *t)
{
	size_t i = lx->offset;
	for (;;) {
		while (i < lx->len && rules_name_char(lx->src[i]))
			i++;
		if (i + 1 < lx->len && lx->src[i] == '.' &&
		    name_start(lx->src[i + 1]))
			i++;
		else
			break;
	}
	t->kind = TK_NAME;
	t->len = i - lx->offset;
	if (t->len > HT_RULES_NAME_BYTES_MAX)
		lex_error(lx, t, true, "name longer than %s bytes", "64");
	_Static_assert(HT_RULES_NAME_BYTES_MAX == 64, "the message above");
}

/* Copy the digits of a number (without '_') into buf; false when too
 * long or an '_' is not between two digits. *end gets the first byte
 * after the digits and the fraction. */
static bool number_text(const struct rules_lexer *lx, char *buf, size_t *end,
			bool *fraction)
{
	size_t i = lx->offset, n = 0;
	bool ok = true;
	*fraction = false;
	for (; i < lx->len; i++) {
		char c = lx->src[i];
		if (c == '_') {
			if (!digit(lx->src[i - 1]) || i + 1 >= lx->len ||
			    !digit(lx->src[i + 1]))
				ok = false;
			continue;
		}
		if (c == '.' && !*fraction && i + 1 < lx->len &&
		    digit(lx->src[i + 1])) {
			*fraction = true;
		} else if (!digit(c)) {
			break;
		}
		if (n < NUMBER_CHARS_MAX)
			buf[n] = c;
		n++;
	}
	*end = i;
	buf[n < NUMBER_CHARS_MAX ? n : NUMBER_CHARS_MAX] = '\0';
	return ok && n < NUMBER_CHARS_MAX;
}

/* The value of the digits in buf. Integers are read exactly, so one just
 * above 2^53 (which a double would round down to 2^53) comes back above
 * HT_RULES_NUMBER_MAX; buf holds fewer than 40 digits. */
static double number_value(const char *buf, bool fraction)
{
	if (fraction)
		return strtod(buf, NULL);
	uint64_t v = 0;
	for (const char *c = buf; *c; c++) {
		if (v > ((uint64_t)1 << 53))
			return INFINITY;
		v = v * 10 + (uint64_t)(*c - '0');
	}
	return v > ((uint64_t)1 << 53) ? INFINITY : (double)v;
}

/* Seconds per unit of a duration suffix, 0 for none. */
static double unit_seconds(char c)
{
	switch (c) {
	case 's': return 1;
	case 'm': return 60;
	case 'h': return 3600;
	case 'd': return 86400;
	default: return 0;
	}
}

static void lex_number(struct rules_lexer *lx, struct rules_tok *t)
{
	char buf[NUMBER_CHARS_MAX + 1];
	size_t end;
	bool fraction;
	bool ok = number_text(lx, buf, &end, &fraction);
	double unit = 1;
	if (end < lx->len && unit_seconds(lx->src[end]) > 0 &&
	    (end + 1 >= lx->len || !rules_name_char(lx->src[end + 1]))) {
		unit = unit_seconds(lx->src[end]);
		end++;
	}
	t->kind = TK_NUMBER;
	t->len = end - lx->offset;
	t->integer = !fraction && unit == 1;
	if (end < lx->len && (rules_name_char(lx->src[end]) ||
			      lx->src[end] == '.')) {
		while (end < lx->len && (rules_name_char(lx->src[end]) ||
					 lx->src[end] == '.'))
			end++;
		t->len = end - lx->offset;
		lex_error(lx, t, false, "%s", "malformed number (units are s, m,"
					      " h, d)");
		return;
	}
	if (!ok && strlen(buf) < NUMBER_CHARS_MAX) {
		lex_error(lx, t, false, "%s", "'_' in a number must stand"
					      " between digits");
		return;
	}
	t->num = ok ? number_value(buf, fraction) * unit : INFINITY;
	if (!(t->num <= HT_RULES_NUMBER_MAX))
		lex_error(lx, t, true, "number out of range (at most %s)",
			  "9007199254740992");
}

/* Decode a string literal into lx->str. Escapes: \" and \\ only. */
static void lex_string(struct rules_lexer *lx, struct rules_tok *t)
{
	size_t i = lx->offset + 1, n = 0;
	t->kind = TK_STRING;
	for (;;) {
		if (i >= lx->len || lx->src[i] == '\n') {
			t->len = i - lx->offset;
			lex_error(lx, t, false, "%s", "unterminated string");
			return;
		}
		unsigned char c = (unsigned char)lx->src[i];
		if (c == '"')
			break;
		if (c == '\\') {
			if (i + 1 >= lx->len || (lx->src[i + 1] != '"' &&
						 lx->src[i + 1] != '\\')) {
				t->len = i + 1 - lx->offset;
				lex_error(lx, t, false, "%s", "unknown escape in"
						  " string (only \\\" and \\\\)");
				return;
			}
			c = (unsigned char)lx->src[++i];
		} else if (c < 0x20 || c == 0x7f) {
			t->len = i - lx->offset;
			lex_error(lx, t, false, "%s", "control character in"
						      " string");
			return;
		}
		if (n < HT_RULES_STRING_BYTES_MAX)
			lx->str[n] = (char)c;
		n++;
		i++;
	}
	t->len = i + 1 - lx->offset;
	if (n > HT_RULES_STRING_BYTES_MAX) {
		lex_error(lx, t, true, "string longer than %s bytes", "256");
		return;
	}
	_Static_assert(HT_RULES_STRING_BYTES_MAX == 256, "the message above");
	lx->str[n] = '\0';
	t->str_len = n;
}

/* Two-character operators first, then one-character ones. */
static enum rules_tok_kind punct(const char *s, size_t avail, size_t *len)
{
	static const struct {
		char text[3];
		enum rules_tok_kind kind;
	} ops[] = {
		{"=>", TK_ARROW}, {"<=", TK_LE}, {">=", TK_GE}, {"==", TK_EQ},
		{"!=", TK_NE}, {"(", TK_LPAREN}, {")", TK_RPAREN},
		{"[", TK_LBRACK}, {"]", TK_RBRACK}, {"{", TK_LBRACE},
		{"}", TK_RBRACE}, {",", TK_COMMA}, {":", TK_COLON},
		{"=", TK_ASSIGN}, {"<", TK_LT}, {">", TK_GT}, {"+", TK_PLUS},
		{"-", TK_MINUS}, {"*", TK_STAR}, {"/", TK_SLASH},
		{"%", TK_PERCENT},
	};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		size_t n = strlen(ops[i].text);
		if (n <= avail && !memcmp(s, ops[i].text, n)) {
			*len = n;
			return ops[i].kind;
		}
	}
	return TK_ERROR;
}

static void lex_other(struct rules_lexer *lx, struct rules_tok *t)
{
	char c = lx->src[lx->offset];
	t->kind = punct(lx->src + lx->offset, lx->len - lx->offset, &t->len);
	if (t->kind != TK_ERROR)
		return;
	t->len = 1;
	char shown[32];
	if (c == '!')
		snprintf(shown, sizeof shown, "'!' (write 'not')");
	else if (c == '.')
		snprintf(shown, sizeof shown, "'.'");
	else if (c > 0x20 && c < 0x7f)
		snprintf(shown, sizeof shown, "'%c'", c);
	else
		snprintf(shown, sizeof shown, "byte 0x%02x", (unsigned char)c);
	lex_error(lx, t, false, "unexpected %s", shown);
}

void rules_lex_next(struct rules_lexer *lx, struct rules_tok *t)
{
	skip_space(lx);
	memset(t, 0, sizeof *t);
	t->pos.offset = lx->offset;
	t->pos.line_start = lx->line_start;
	t->pos.line = lx->line;
	t->first_on_line = lx->line_fresh;
	lx->line_fresh = false;
	if (lx->offset >= lx->len) {
		t->kind = TK_EOF;
		return;
	}
	char c = lx->src[lx->offset];
	if (name_start(c))
		lex_name(lx, t);
	else if (digit(c))
		lex_number(lx, t);
	else if (c == '"')
		lex_string(lx, t);
	else
		lex_other(lx, t);
	HT_ASSERT(t->len > 0);
	HT_ASSERT(t->len <= lx->len - lx->offset);
	lx->offset += t->len;
}

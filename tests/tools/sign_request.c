/*
 * sign_request.c — tool_sign_request: print the Huitong-Signature header
 * value for one request, made with ht_reqsig_sign. For integration tests
 * that craft requests by hand (curl, python) and tamper with them: a body
 * other than the signed one, a key id that is not the key's, a stale
 * timestamp, a replayed nonce.
 *
 *   tool_sign_request --key signing.key --key-id ID --method M --path P
 *                     [--body FILE] [--ts UNIX] [--nonce N]
 *
 * Owner: tests. Everything it reads is bounded: the key file (64 KiB),
 * the body (64 MiB, more than the hub ever reads), the arguments (the
 * limits of reqsig.h, checked here with clear messages). Exit 0 with the value
 * and a newline on stdout; 2 with one line on stderr otherwise.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "huitong/common.h"
#include "huitong/crypto.h"
#include "huitong/reqsig.h"

#define KEY_FILE_BYTES_MAX (64u * 1024)
#define BODY_FILE_BYTES_MAX (64u * 1024 * 1024)

static const char usage[] =
	"usage: tool_sign_request --key FILE --key-id ID --method M --path P\n"
	"                         [--body FILE] [--ts UNIX] [--nonce N]\n"
	"\n"
	"Print the value of the Huitong-Signature header (include/huitong/\n"
	"reqsig.h) for one request, signed with the private key in FILE (PEM;\n"
	"the alg is the key's: sm2, ed25519 or ecdsa-p256).\n"
	"  --key FILE    the request-signing key (credentials' signing.key)\n"
	"  --key-id ID   the key id to name (e.g. bankA:1; need not be the\n"
	"                key's own, for tests of wrong keys)\n"
	"  --method M    HTTP method as sent (GET, POST, ...)\n"
	"  --path P      request target as sent: path and query\n"
	"  --body FILE   the body to sign ('-' for stdin; default empty),\n"
	"                at most 64 MiB\n"
	"  --ts UNIX     timestamp in unix seconds (default now)\n"
	"  --nonce N     nonce, 16..64 of [A-Za-z0-9_-] (default random)\n"
	"exit: 0 printed, 2 usage error or bad input.\n";

static int die(const char *fmt, const char *arg)
{
	fprintf(stderr, "tool_sign_request: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return 2;
}

/* Read all of path ('-' = stdin), at most max bytes, into a malloc'd
 * NUL-terminated buffer. NULL with a message on stderr on any failure. */
static char *read_all(const char *path, size_t max, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f) {
		fprintf(stderr, "tool_sign_request: %s: %s\n", path,
			strerror(errno));
		return NULL;
	}
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);
	const char *problem = buf ? NULL : "out of memory";
	while (!problem) {
		if (n == cap) {
			if (cap > max) {
				problem = "too large";
				break;
			}
			/* one byte over max tells "too large" from "exactly max" */
			size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			char *nb = realloc(buf, ncap + 1);
			if (!nb) {
				problem = "out of memory";
				break;
			}
			buf = nb;
			cap = ncap;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f))
				problem = "read error";
			break;
		}
	}
	if (f != stdin)
		fclose(f);
	if (!problem && n > max)
		problem = "too large";
	if (problem) {
		if (!strcmp(problem, "too large"))
			fprintf(stderr, "tool_sign_request: %s: larger than %zu"
					" bytes\n", path, max);
		else
			fprintf(stderr, "tool_sign_request: %s: %s\n", path,
				problem);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Every byte of s is in the set chars; the length is lo..hi. */
static int valid(const char *s, size_t lo, size_t hi, const char *chars)
{
	size_t l = strlen(s);
	return l >= lo && l <= hi && strspn(s, chars) == l;
}

#define DIGITS "0123456789"
#define UPPER "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define LOWER "abcdefghijklmnopqrstuvwxyz"

/* The request target: 1..HT_REQSIG_PATH_BYTES_MAX visible ASCII bytes. */
static int valid_path(const char *p)
{
	size_t l = strlen(p);
	if (l == 0 || l > HT_REQSIG_PATH_BYTES_MAX)
		return 0;
	for (size_t i = 0; i < l; i++)
		if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e)
			return 0;
	return 1;
}

int main(int argc, char **argv)
{
	const char *key_path = NULL, *key_id = NULL, *method = NULL,
		   *path = NULL, *body_path = NULL, *ts_arg = NULL,
		   *nonce = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage, stdout);
			return 0;
		}
		const char **slot = !strcmp(a, "--key")      ? &key_path
				    : !strcmp(a, "--key-id") ? &key_id
				    : !strcmp(a, "--method") ? &method
				    : !strcmp(a, "--path")   ? &path
				    : !strcmp(a, "--body")   ? &body_path
				    : !strcmp(a, "--ts")     ? &ts_arg
				    : !strcmp(a, "--nonce")  ? &nonce
							     : NULL;
		if (!slot) {
			fputs(usage, stderr);
			return die("unknown argument '%.80s'", a);
		}
		if (i + 1 >= argc)
			return die("%s needs a value", a);
		if (*slot)
			return die("%s given twice", a);
		*slot = argv[++i];
	}
	if (!key_path || !key_id || !method || !path) {
		fputs(usage, stderr);
		return die("%s", "--key, --key-id, --method and --path are"
				 " required");
	}
	if (!valid(key_id, 1, HT_REQSIG_KEY_ID_BYTES_MAX,
		   DIGITS UPPER LOWER "._:-"))
		return die("--key-id '%.80s': 1..64 of [A-Za-z0-9._:-]", key_id);
	if (!valid(method, 1, HT_REQSIG_METHOD_BYTES_MAX, UPPER))
		return die("--method '%.40s': 1..16 uppercase letters", method);
	if (!valid_path(path))
		return die("--path '%.80s': 1..8192 visible ASCII bytes (no"
			   " spaces)", path);
	if (nonce && !valid(nonce, HT_REQSIG_NONCE_BYTES_MIN,
			    HT_REQSIG_NONCE_BYTES_MAX,
			    DIGITS UPPER LOWER "_-"))
		return die("--nonce '%.80s': 16..64 of [A-Za-z0-9_-]", nonce);
	uint64_t ts = ht_now_wall_ns() / 1000000000u;
	if (ts_arg) {
		size_t l = strlen(ts_arg);
		if (!valid(ts_arg, 1, HT_REQSIG_TS_DIGITS_MAX, DIGITS) ||
		    (l > 1 && ts_arg[0] == '0') || ht_u64_parse(ts_arg, l, &ts))
			return die("--ts '%.40s': unix seconds, 1..12 digits"
				   " without leading zeros", ts_arg);
	}

	size_t key_len = 0, body_len = 0;
	char *pem = read_all(key_path, KEY_FILE_BYTES_MAX, &key_len);
	if (!pem)
		return 2;
	struct ht_key *key = NULL;
	enum ht_err err = ht_key_from_pem(pem, key_len, NULL, &key);
	memset(pem, 0, key_len);
	free(pem);
	if (err)
		return die("%s: not a private key this build supports",
			   key_path);
	char *body = NULL;
	if (body_path) {
		body = read_all(body_path, BODY_FILE_BYTES_MAX, &body_len);
		if (!body) {
			ht_key_destroy(key);
			return 2;
		}
	}
	char header[HT_REQSIG_HEADER_BYTES_MAX + 1];
	err = ht_reqsig_sign(key, key_id, method, path, body, body_len, ts,
			     nonce, header, sizeof header, NULL);
	ht_key_destroy(key);
	free(body);
	if (err == HT_ERR_INVALID)
		return die("cannot sign: %s holds a public key, or an argument"
			   " is out of range (include/huitong/reqsig.h)",
			   key_path);
	if (err)
		return die("cannot sign: %s", ht_strerror(err));
	printf("%s\n", header);
	return fflush(stdout) ? 2 : 0;
}

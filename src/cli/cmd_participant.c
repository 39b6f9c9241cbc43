/*
 * cmd_participant.c — `huitong participant add|rotate|revoke|list`: the
 * hub operator's commands over the trust registry (registry.h).
 *
 * Owner: cli. It parses options, checks what it can before anything is
 * written so that a mistake gets a message naming it, calls the registry
 * and prints the outcome. It never writes registry.db or a credentials
 * directory itself. Every command works while `huitong serve` runs on the
 * same data directory (the server only reads the registry).
 */
#include <getopt.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "cli_util.h"
#include "commands.h"
#include "huitong/registry.h"

#define CMD "participant"

static const char participant_usage[] =
	"usage: huitong participant <command> [options]   (huitong participant"
	" <command> --help)\n"
	"\n"
	"The hub's participants: who may connect (a client certificate from the\n"
	"hub CA) and sign requests (a request-signing key), with a role.\n"
	"  add      register a participant and write its credentials directory\n"
	"  rotate   give a participant a new key and certificate\n"
	"  revoke   revoke a participant (all its keys) or one key\n"
	"  list     the participants, their keys and their state\n"
	"Each works while `huitong serve` runs; the server picks changes up\n"
	"within about a second.\n";

static const char add_usage[] =
	"usage: huitong participant add --data DIR --id ID --out CREDS\n"
	"       [--role participant|operator|regulator]\n"
	"       [--alg sm2|ed25519|ecdsa-p256] [--url URL] [--force]\n"
	"\n"
	"Register ID: issue its TLS client certificate (hub CA, P-256), make its\n"
	"request-signing key (key id ID:1) and write everything a client needs\n"
	"into CREDS (created 0700): client.key and signing.key (0600),\n"
	"client.crt, ca.crt, hub-key.pub (the journal's public key) and\n"
	"credentials.json. An id already registered is refused: use rotate.\n"
	"  --id     1..56 characters of A-Z a-z 0-9 . _ -\n"
	"  --role   default participant\n"
	"  --alg    request-signing algorithm (default sm2, with the\n"
	"           distinguishing ID " HT_SM2_DEFAULT_ID ")\n"
	"  --url    the hub's address for the client (default "
	HT_REGISTRY_URL_DEFAULT ")\n"
	"  --force  overwrite a non-empty CREDS\n";

static const char rotate_usage[] =
	"usage: huitong participant rotate --data DIR --id ID --out CREDS\n"
	"       [--grace SECONDS] [--alg sm2|ed25519|ecdsa-p256] [--url URL]\n"
	"       [--force]\n"
	"\n"
	"Give ID a new key ID:<n+1> with a new client certificate, written to\n"
	"CREDS as for add. Its older keys (and their certificates) stop being\n"
	"accepted after the grace period. Rotation is also the way back from a\n"
	"lost or leaked key.\n"
	"  --grace  seconds the older keys stay valid (default 0: at once;\n"
	"           at most 2592000, 30 days)\n"
	"  --alg    default: the algorithm of ID's newest key\n"
	"  --force  overwrite a non-empty CREDS (e.g. the old credentials)\n";

static const char revoke_usage[] =
	"usage: huitong participant revoke --data DIR --id ID [--key KEY_ID]\n"
	"\n"
	"Revoke ID and every key of it, or only the key KEY_ID (ID:<n>). A\n"
	"revoked participant is refused from then on and cannot be rotated or\n"
	"added again. Revoking twice changes nothing.\n";

static const char list_usage[] =
	"usage: huitong participant list --data DIR [--json]\n"
	"\n"
	"Every participant with its role and state, and its keys with their\n"
	"certificate serials and states (active, retiring, revoked, expired).\n"
	"  --json   one JSON object {\"participants\":[...]}\n";

/* ---- helpers ------------------------------------------------------------- */

static int usage_error(const char *usage, const char *fmt, const char *arg)
{
	if (fmt)
		ht_cli_fail(CMD, fmt, arg);
	fputs(usage, stderr);
	return 2;
}

/* ISO 8601 UTC of a unix time. */
static const char *iso(int64_t t, char buf[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) ||
	    !strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, 32, "%lld", (long long)t);
	return buf;
}

/* True when the registry can take id; otherwise says why. */
static bool check_id(const char *id)
{
	size_t len = strnlen(id, HT_PKI_ID_BYTES_MAX + 1);
	if (ht_registry_id_valid(id, len))
		return true;
	if (ht_pki_id_valid(id, len))
		ht_cli_fail(CMD, "--id '%s' is %zu bytes; registry ids are at"
				 " most %d (its key ids '<id>:<n>' must fit in"
				 " %d)", id, len, HT_REGISTRY_ID_BYTES_MAX,
			    HT_REQSIG_KEY_ID_BYTES_MAX);
	else
		ht_cli_fail(CMD, "--id '%.80s': ids are 1..%d characters of"
				 " A-Z a-z 0-9 . _ -", id,
			    HT_REGISTRY_ID_BYTES_MAX);
	return false;
}

/* The credentials directory may be written: absent, empty, or forced. */
/* Create the parents of out (mode 0700), as `mkdir -p` would; the
 * directory itself is made by ht_pki_write_credentials. */
static bool make_parents(const char *out)
{
	char path[4096];
	size_t n = strlen(out);
	if (n >= sizeof path) {
		ht_cli_fail(CMD, "--out: path too long");
		return false;
	}
	memcpy(path, out, n + 1);
	while (n > 1 && path[n - 1] == '/')
		path[--n] = '\0';
	for (size_t i = 1; i < n; i++) {
		if (path[i] != '/')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			ht_cli_fail(CMD, "--out: cannot create %s: %s", path,
				    strerror(errno));
			return false;
		}
		path[i] = '/';
	}
	return true;
}

static bool check_out(const char *out, bool force)
{
	struct stat st;
	if (stat(out, &st) != 0)
		return make_parents(out);
	if (!S_ISDIR(st.st_mode)) {
		ht_cli_fail(CMD, "--out %s exists and is not a directory", out);
		return false;
	}
	if (force)
		return true;
	DIR *d = opendir(out);
	bool empty = d != NULL;
	struct dirent *e;
	while (d && empty && (e = readdir(d)) != NULL)
		empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
	if (d)
		closedir(d);
	if (!empty)
		ht_cli_fail(CMD, "--out %s is not empty (use --force to"
				 " overwrite it)", out);
	return empty;
}

static bool parse_alg(const char *s, enum ht_sign_alg *out)
{
	if (ht_sign_alg_parse(s, out) == HT_OK)
		return true;
	ht_cli_fail(CMD, "--alg '%s': sm2, ed25519 or ecdsa-p256", s);
	return false;
}

static int open_registry(const char *data, bool readonly,
			 struct ht_registry **r)
{
	enum ht_err err = ht_registry_open(data, readonly, r);
	switch (err) {
	case HT_OK:
		return 0;
	case HT_ERR_NOT_FOUND:
		return ht_cli_fail(CMD, "%s has no participant registry (run"
					" `huitong init --data %s`: it makes the"
					" hub CA, the server certificate and the"
					" registry)", data, data);
	case HT_ERR_UNSUPPORTED:
		return ht_cli_fail(CMD, "%s/%s was made by a newer huitong",
				   data, HT_REGISTRY_FILE_DB);
	case HT_ERR_CORRUPT:
		return ht_cli_fail(CMD, "%s/%s is not a huitong registry", data,
				   HT_REGISTRY_FILE_DB);
	default:
		return ht_cli_fail(CMD, "cannot open %s/%s: %s", data,
				   HT_REGISTRY_FILE_DB, ht_strerror(err));
	}
}

/* The registry as it is now, for the checks that give precise messages
 * (the operations check again inside their transaction). */
static int load_view(struct ht_registry *r, const char *data,
		     struct ht_registry_view **v)
{
	enum ht_err err = ht_registry_view_load(r, v);
	if (err)
		return ht_cli_fail(CMD, "cannot read %s/%s: %s", data,
				   HT_REGISTRY_FILE_DB, ht_strerror(err));
	return 0;
}

/* Messages for what add and rotate return. */
static int issue_failed(const char *data, const char *out, enum ht_err err)
{
	switch (err) {
	case HT_ERR_EXISTS:
		return ht_cli_fail(CMD, "refused: the id is registered, or --out"
					" %s is not empty (use --force)", out);
	case HT_ERR_NOT_FOUND:
		return ht_cli_fail(CMD, "the hub CA (%s/%s, %s) or the journal"
					" key (%s) is missing: run `huitong init"
					" --data %s`", data,
				   HT_REGISTRY_FILE_CA_CERT,
				   HT_REGISTRY_FILE_CA_KEY,
				   HT_REGISTRY_FILE_HUB_KEY, data);
	case HT_ERR_CORRUPT:
		return ht_cli_fail(CMD, "the hub CA or journal key in %s does not"
					" load, or the registry holds a bad row",
				   data);
	case HT_ERR_INVALID:
		return ht_cli_fail(CMD, "refused: a bad --url (printable ASCII,"
					" no spaces or quotes, at most %d bytes)"
					" or option", HT_PKI_URL_BYTES_MAX);
	case HT_ERR_LIMIT:
		return ht_cli_fail(CMD, "refused: the registry is full");
	default:
		return ht_cli_fail(CMD, "failed: %s; nothing was registered and"
					" the files written to %s were removed",
				   ht_strerror(err), out);
	}
}

static void print_issued(const char *verb, const char *id,
			 const struct ht_registry_issued *is, const char *out)
{
	char t[32];
	printf("%s %s (role %s): key %s (%s), certificate %s valid until %s\n",
	       verb, id, ht_pki_role_name(is->role), is->key_id,
	       ht_sign_alg_name(is->alg), is->cert_serial,
	       iso(is->cert_not_after_s, t));
	printf("credentials written to %s\n", out);
}

/* ---- add ------------------------------------------------------------------- */

struct add_args {
	const char *data;
	struct ht_registry_add_options o;
};

static int add_parse(int argc, char **argv, struct add_args *a)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},
		{"id", required_argument, NULL, 'i'},
		{"role", required_argument, NULL, 'r'},
		{"alg", required_argument, NULL, 'a'},
		{"url", required_argument, NULL, 'u'},
		{"out", required_argument, NULL, 'o'},
		{"force", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': a->data = optarg; break;
		case 'i': a->o.id = optarg; break;
		case 'u': a->o.url = optarg; break;
		case 'o': a->o.out_dir = optarg; break;
		case 'f': a->o.force = true; break;
		case 'r':
			if (ht_pki_role_parse(optarg, &a->o.role) != HT_OK)
				return ht_cli_fail(CMD, "--role '%s': participant,"
							" operator or regulator",
						   optarg);
			break;
		case 'a':
			if (!parse_alg(optarg, &a->o.alg))
				return 2;
			break;
		case 'h': fputs(add_usage, stdout); return 0;
		default: return usage_error(add_usage, NULL, NULL);
		}
	}
	if (optind != argc)
		return usage_error(add_usage, "unexpected argument '%s'",
				   argv[optind]);
	if (!a->data || !a->o.id || !a->o.out_dir)
		return usage_error(add_usage, "%s",
				   "--data, --id and --out are required");
	return -1;
}

/* Refuse an id that is registered, saying how it stands. */
static bool check_new(struct ht_registry *r, const char *data, const char *id)
{
	struct ht_registry_view *v = NULL;
	if (load_view(r, data, &v))
		return false;
	struct ht_registry_participant_info p;
	bool fresh = ht_registry_view_participant(v, id, &p) == HT_ERR_NOT_FOUND;
	if (!fresh && p.revoked_s)
		ht_cli_fail(CMD, "%s was registered and is revoked; a revoked id"
				 " cannot be added again (choose a new id)", id);
	else if (!fresh)
		ht_cli_fail(CMD, "%s is already registered (role %s, %zu key%s);"
				 " use `huitong participant rotate --data %s"
				 " --id %s --out DIR` for a new key",
			    id, ht_pki_role_name(p.role), p.key_count,
			    p.key_count == 1 ? "" : "s", data, id);
	ht_registry_view_unref(v);
	return fresh;
}

static int cmd_add(int argc, char **argv)
{
	struct add_args a = {0};
	int rc = add_parse(argc, argv, &a);
	if (rc >= 0)
		return rc;
	if (!check_id(a.o.id) || !check_out(a.o.out_dir, a.o.force))
		return 2;
	struct ht_registry *r = NULL;
	if (open_registry(a.data, false, &r))
		return 2;
	struct ht_registry_issued is;
	enum ht_err err = HT_ERR_EXISTS;
	if (check_new(r, a.data, a.o.id)) {
		err = ht_registry_add(r, &a.o, &is);
		if (err)
			issue_failed(a.data, a.o.out_dir, err);
	}
	ht_registry_close(r);
	if (err)
		return 2;
	print_issued("added", a.o.id, &is, a.o.out_dir);
	return 0;
}

/* ---- rotate ---------------------------------------------------------------- */

struct rotate_args {
	const char *data;
	struct ht_registry_rotate_options o;
};

static int rotate_parse(int argc, char **argv, struct rotate_args *a)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},
		{"id", required_argument, NULL, 'i'},
		{"out", required_argument, NULL, 'o'},
		{"grace", required_argument, NULL, 'g'},
		{"alg", required_argument, NULL, 'a'},
		{"url", required_argument, NULL, 'u'},
		{"force", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0}};
	int c;
	uint64_t grace = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': a->data = optarg; break;
		case 'i': a->o.id = optarg; break;
		case 'o': a->o.out_dir = optarg; break;
		case 'u': a->o.url = optarg; break;
		case 'f': a->o.force = true; break;
		case 'g':
			if (!ht_cli_u64(CMD, "--grace", optarg, &grace))
				return 2;
			if (grace > HT_REGISTRY_GRACE_S_MAX)
				return ht_cli_fail(CMD, "--grace %s: at most %u"
							" seconds (30 days)",
						   optarg,
						   HT_REGISTRY_GRACE_S_MAX);
			a->o.grace_s = (uint32_t)grace;
			break;
		case 'a':
			if (!parse_alg(optarg, &a->o.alg))
				return 2;
			break;
		case 'h': fputs(rotate_usage, stdout); return 0;
		default: return usage_error(rotate_usage, NULL, NULL);
		}
	}
	if (optind != argc)
		return usage_error(rotate_usage, "unexpected argument '%s'",
				   argv[optind]);
	if (!a->data || !a->o.id || !a->o.out_dir)
		return usage_error(rotate_usage, "%s",
				   "--data, --id and --out are required");
	return -1;
}

/* The participant exists and is not revoked; say so otherwise. */
static bool check_live(struct ht_registry *r, const char *data, const char *id)
{
	struct ht_registry_view *v = NULL;
	if (load_view(r, data, &v))
		return false;
	struct ht_registry_participant_info p;
	bool found = ht_registry_view_participant(v, id, &p) == HT_OK;
	char t[32];
	if (!found)
		ht_cli_fail(CMD, "no participant %s in %s (add it with `huitong"
				 " participant add`)", id, data);
	else if (p.revoked_s)
		ht_cli_fail(CMD, "%s was revoked at %s; revocation is final", id,
			    iso(p.revoked_s, t));
	ht_registry_view_unref(v);
	return found && !p.revoked_s;
}

static int cmd_rotate(int argc, char **argv)
{
	struct rotate_args a = {0};
	int rc = rotate_parse(argc, argv, &a);
	if (rc >= 0)
		return rc;
	if (!check_id(a.o.id) || !check_out(a.o.out_dir, a.o.force))
		return 2;
	struct ht_registry *r = NULL;
	if (open_registry(a.data, false, &r))
		return 2;
	struct ht_registry_issued is;
	enum ht_err err = HT_ERR_NOT_FOUND;
	if (check_live(r, a.data, a.o.id)) {
		err = ht_registry_rotate(r, &a.o, &is);
		if (err == HT_ERR_LIMIT)
			ht_cli_fail(CMD, "%s has had %u keys, the most a"
					 " participant can have", a.o.id,
				    HT_REGISTRY_KEY_SEQ_MAX);
		else if (err)
			issue_failed(a.data, a.o.out_dir, err);
	}
	ht_registry_close(r);
	if (err)
		return 2;
	print_issued("rotated", a.o.id, &is, a.o.out_dir);
	char t[32];
	if (is.keys_retired)
		printf("%zu older key%s stop%s being accepted at %s%s\n",
		       is.keys_retired, is.keys_retired == 1 ? "" : "s",
		       is.keys_retired == 1 ? "s" : "",
		       iso(is.keys_retired_at_s, t),
		       a.o.grace_s ? "" : " (now)");
	return 0;
}

/* ---- revoke ---------------------------------------------------------------- */

static int revoke_parse(int argc, char **argv, const char **data,
			const char **id, const char **key)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},
		{"id", required_argument, NULL, 'i'},
		{"key", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': *data = optarg; break;
		case 'i': *id = optarg; break;
		case 'k': *key = optarg; break;
		case 'h': fputs(revoke_usage, stdout); return 0;
		default: return usage_error(revoke_usage, NULL, NULL);
		}
	}
	if (optind != argc)
		return usage_error(revoke_usage, "unexpected argument '%s'",
				   argv[optind]);
	if (!*data || !*id)
		return usage_error(revoke_usage, "%s",
				   "--data and --id are required");
	return -1;
}

/* The participant and, when given, the key of it exist. */
static bool check_revocable(struct ht_registry *r, const char *data,
			    const char *id, const char *key)
{
	struct ht_registry_view *v = NULL;
	if (load_view(r, data, &v))
		return false;
	struct ht_registry_participant_info p;
	struct ht_registry_key_info k;
	bool ok = ht_registry_view_participant(v, id, &p) == HT_OK;
	if (!ok)
		ht_cli_fail(CMD, "no participant %s in %s", id, data);
	if (ok && key) {
		ok = false;
		for (size_t i = 0; i < p.key_count && !ok; i++) {
			ht_registry_view_key_at(v, p.key_first + i, &k);
			ok = !strcmp(k.key_id, key);
		}
		if (!ok)
			ht_cli_fail(CMD, "%s has no key '%.80s' (its keys are"
					 " %s:1..%s:%zu)", id, key, id, id,
				    p.key_count);
	}
	ht_registry_view_unref(v);
	return ok;
}

static int cmd_revoke(int argc, char **argv)
{
	const char *data = NULL, *id = NULL, *key = NULL;
	int rc = revoke_parse(argc, argv, &data, &id, &key);
	if (rc >= 0)
		return rc;
	if (!check_id(id))
		return 2;
	struct ht_registry *r = NULL;
	if (open_registry(data, false, &r))
		return 2;
	bool changed = false;
	enum ht_err err = HT_ERR_NOT_FOUND;
	if (check_revocable(r, data, id, key)) {
		err = ht_registry_revoke(r, id, key, 0, &changed);
		if (err)
			ht_cli_fail(CMD, "cannot revoke: %s", ht_strerror(err));
	}
	ht_registry_close(r);
	if (err)
		return 2;
	const char *what = key ? key : id;
	if (changed)
		printf("revoked %s%s\n", what, key ? "" : " and all its keys");
	else
		printf("%s was already revoked; nothing changed\n", what);
	return 0;
}

/* ---- list ------------------------------------------------------------------- */

static const char *key_state(const struct ht_registry_key_info *k,
			     int64_t now)
{
	if (ht_registry_revoked_at(k->revoked_s, now))
		return "revoked";
	if (k->revoked_s)
		return "retiring";
	return k->cert_not_after_s <= now ? "expired" : "active";
}

static const char *part_state(const struct ht_registry_participant_info *p,
			      int64_t now)
{
	return ht_registry_revoked_at(p->revoked_s, now) ? "revoked" :
	       p->revoked_s				  ? "revoking" :
							    "active";
}

static void list_text(const struct ht_registry_view *v, int64_t now)
{
	char t[32], u[32];
	size_t n = ht_registry_view_participant_count(v);
	for (size_t i = 0; i < n; i++) {
		struct ht_registry_participant_info p;
		ht_registry_view_participant_at(v, i, &p);
		printf("%s  %s  %s  created %s", p.id, ht_pki_role_name(p.role),
		       part_state(&p, now), iso(p.created_s, t));
		if (p.revoked_s)
			printf("  revoked %s", iso(p.revoked_s, t));
		putchar('\n');
		for (size_t j = 0; j < p.key_count; j++) {
			struct ht_registry_key_info k;
			ht_registry_view_key_at(v, p.key_first + j, &k);
			printf("  %s  %s  serial %s  until %s  %s", k.key_id,
			       ht_sign_alg_name(k.alg), k.cert_serial,
			       iso(k.cert_not_after_s, t), key_state(&k, now));
			if (k.revoked_s)
				printf(" (at %s)", iso(k.revoked_s, u));
			putchar('\n');
		}
	}
	printf("%zu participant%s, %zu key%s\n", n, n == 1 ? "" : "s",
	       ht_registry_view_key_count(v),
	       ht_registry_view_key_count(v) == 1 ? "" : "s");
}

static json_t *time_or_null(int64_t t)
{
	return t ? json_integer((json_int_t)t) : json_null();
}

static json_t *key_json(const struct ht_registry_key_info *k, int64_t now)
{
	json_t *o = json_object();
	json_object_set_new(o, "key_id", json_string(k->key_id));
	json_object_set_new(o, "alg", json_string(ht_sign_alg_name(k->alg)));
	json_object_set_new(o, "cert_serial", json_string(k->cert_serial));
	json_object_set_new(o, "cert_not_after_s",
			    json_integer((json_int_t)k->cert_not_after_s));
	json_object_set_new(o, "created_s",
			    json_integer((json_int_t)k->created_s));
	json_object_set_new(o, "revoked_s", time_or_null(k->revoked_s));
	json_object_set_new(o, "state", json_string(key_state(k, now)));
	return o;
}

static json_t *part_json(const struct ht_registry_view *v,
			 const struct ht_registry_participant_info *p,
			 int64_t now)
{
	json_t *o = json_object();
	json_t *keys = json_array();
	json_object_set_new(o, "id", json_string(p->id));
	json_object_set_new(o, "role", json_string(ht_pki_role_name(p->role)));
	json_object_set_new(o, "state", json_string(part_state(p, now)));
	json_object_set_new(o, "created_s",
			    json_integer((json_int_t)p->created_s));
	json_object_set_new(o, "revoked_s", time_or_null(p->revoked_s));
	for (size_t j = 0; j < p->key_count; j++) {
		struct ht_registry_key_info k;
		ht_registry_view_key_at(v, p->key_first + j, &k);
		json_array_append_new(keys, key_json(&k, now));
	}
	json_object_set_new(o, "keys", keys);
	return o;
}

static int list_json(const struct ht_registry_view *v, int64_t now)
{
	json_t *all = json_array();
	size_t n = ht_registry_view_participant_count(v);
	for (size_t i = 0; i < n; i++) {
		struct ht_registry_participant_info p;
		ht_registry_view_participant_at(v, i, &p);
		json_array_append_new(all, part_json(v, &p, now));
	}
	json_t *root = json_object();
	json_object_set_new(root, "participants", all);
	char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!s)
		return ht_cli_fail(CMD, "out of memory");
	puts(s);
	free(s);
	return 0;
}

static int cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, 'd'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0}};
	const char *data = NULL;
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': data = optarg; break;
		case 'j': json = true; break;
		case 'h': fputs(list_usage, stdout); return 0;
		default: return usage_error(list_usage, NULL, NULL);
		}
	}
	if (optind != argc)
		return usage_error(list_usage, "unexpected argument '%s'",
				   argv[optind]);
	if (!data)
		return usage_error(list_usage, "%s", "--data is required");
	struct ht_registry *r = NULL;
	if (open_registry(data, true, &r))
		return 2;
	struct ht_registry_view *v = NULL;
	int rc = load_view(r, data, &v);
	ht_registry_close(r);
	if (rc)
		return rc;
	int64_t now = (int64_t)time(NULL);
	if (json)
		rc = list_json(v, now);
	else
		list_text(v, now);
	ht_registry_view_unref(v);
	return rc;
}

/* ---- dispatch ------------------------------------------------------------------ */

int ht_cmd_participant(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} subs[] = {{"add", cmd_add},
		    {"rotate", cmd_rotate},
		    {"revoke", cmd_revoke},
		    {"list", cmd_list}};
	if (argc < 2) {
		fputs(participant_usage, stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		fputs(participant_usage, stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
		if (!strcmp(argv[1], subs[i].name))
			return subs[i].fn(argc - 1, argv + 1);
	ht_cli_fail(CMD, "unknown command '%.80s'", argv[1]);
	fputs(participant_usage, stderr);
	return 2;
}

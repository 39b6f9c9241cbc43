/*
 * registry.c — the hub's trust registry: PKI files in the data directory,
 * the participant database DATA/registry.db, and the immutable view the
 * server reads.
 *
 * Owner: api. It owns the files named in registry.h and the schema of
 * registry.db. It must never replace an existing key or certificate file,
 * never register a key whose private half is not durably written first,
 * never hand a reader a view that changes under it (views are immutable
 * but for the lazily materialised public keys, which are set once by an
 * atomic compare-and-swap), and never implement a primitive: certificates
 * come from pki.h, keys from crypto.h. It never reads or writes the ledger
 * store. docs/internals/registry.md explains the choices.
 */
#include "huitong/registry.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sqlite3.h>

/* Paths are DATA + "/" + a short name; 4096 is Linux's PATH_MAX. */
#define PATH_BYTES_MAX 4096
#define CA_NAME_DEFAULT "huitong"
#define TMP_SUFFIX ".tmp"

struct ht_registry {
	sqlite3 *db;
	bool readonly;
	bool loaded;           /* a view was loaded: data_version is set */
	int64_t data_version;  /* as of the last view load */
	char dir[PATH_BYTES_MAX];
};

/* ---- small helpers ------------------------------------------------------ */

static int64_t wall_now_s(int64_t given)
{
	return given ? given : (int64_t)time(NULL);
}

static enum ht_err join(const char *dir, const char *name, char *out,
			size_t size)
{
	int n = snprintf(out, size, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= size ? HT_ERR_LIMIT : HT_OK;
}

static bool exists_at(int dfd, const char *name)
{
	struct stat st;
	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Read a whole file of at most max bytes, NUL-terminated; *out is
 * malloc'd. Errors: HT_ERR_NOT_FOUND, HT_ERR_LIMIT, HT_ERR_IO,
 * HT_ERR_NOMEM. */
static enum ht_err read_at(int dfd, const char *name, size_t max, char **out,
			   size_t *len)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? HT_ERR_NOT_FOUND : HT_ERR_IO;
	char *buf = malloc(max + 1);
	size_t n = 0;
	enum ht_err err = buf ? HT_OK : HT_ERR_NOMEM;
	while (!err && n <= max) {
		ssize_t r = read(fd, buf + n, max + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			err = HT_ERR_IO;
		else if (r == 0)
			break;
		else
			n += (size_t)r;
	}
	close(fd);
	if (!err && n > max)
		err = HT_ERR_LIMIT;
	if (err) {
		if (buf)
			explicit_bzero(buf, max + 1);
		free(buf);
		return err;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return HT_OK;
}

static void free_secret(char *s, size_t len)
{
	if (s)
		explicit_bzero(s, len);
	free(s);
}

/* Write name in dfd (a temporary name: the caller renames it), fsync'd,
 * with mode set exactly (umask aside). */
static enum ht_err write_tmp(int dfd, const char *name, const char *data,
			     size_t len, mode_t mode)
{
	int fd = openat(dfd, name,
			O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			mode);
	if (fd < 0)
		return HT_ERR_IO;
	bool ok = fchmod(fd, mode) == 0;
	for (size_t off = 0; ok && off < len;) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		ok = n > 0;
		off += ok ? (size_t)n : 0;
	}
	ok = ok && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok)
		unlinkat(dfd, name, 0);
	return ok ? HT_OK : HT_ERR_IO;
}

/* Rename from to to in dfd, never over an existing file. renameat2's
 * RENAME_NOREPLACE where the file system has it, else link + unlink
 * (link also refuses an existing target). */
static enum ht_err rename_noreplace(int dfd, const char *from, const char *to)
{
	if (renameat2(dfd, from, dfd, to, RENAME_NOREPLACE) == 0)
		return HT_OK;
	if (errno == EEXIST)
		return HT_ERR_EXISTS;
	if (errno != EINVAL && errno != ENOSYS)
		return HT_ERR_IO;
	if (linkat(dfd, from, dfd, to, 0) != 0)
		return errno == EEXIST ? HT_ERR_EXISTS : HT_ERR_IO;
	unlinkat(dfd, from, 0);
	return HT_OK;
}

/* ---- names ---------------------------------------------------------------- */

bool ht_registry_id_valid(const char *id, size_t len)
{
	return id && len <= HT_REGISTRY_ID_BYTES_MAX && ht_pki_id_valid(id, len);
}

static bool server_name_valid(const char *s)
{
	unsigned char addr[16];
	if (!s)
		return false;
	if (inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1)
		return true;
	return ht_pki_dns_name_valid(s);
}

enum ht_err ht_registry_check_server_names(const char *const *names, size_t n,
					   size_t *bad_index)
{
	if (n > HT_PKI_SERVER_NAMES_MAX)
		return HT_ERR_LIMIT;
	for (size_t i = 0; i < n; i++) {
		if (!names || !server_name_valid(names[i])) {
			if (bad_index)
				*bad_index = i;
			return HT_ERR_INVALID;
		}
	}
	return HT_OK;
}

/* The CA name: the data directory's own name, each character outside
 * [A-Za-z0-9._-] made '-', cut to HT_PKI_CA_NAME_BYTES_MAX; "huitong"
 * when nothing usable is left. */
static void ca_name_for(const char *data, char name[HT_PKI_CA_NAME_BYTES_MAX + 1])
{
	char real[PATH_MAX];
	snprintf(name, HT_PKI_CA_NAME_BYTES_MAX + 1, "%s", CA_NAME_DEFAULT);
	if (!realpath(data, real))
		return;
	const char *base = basename(real);
	size_t len = strnlen(base, HT_PKI_CA_NAME_BYTES_MAX);
	bool useful = false;
	char tmp[HT_PKI_CA_NAME_BYTES_MAX + 1];
	for (size_t i = 0; i < len; i++) {
		char c = base[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' ||
			  c == '-';
		tmp[i] = ok ? c : '-';
		useful |= ok && c != '.' && c != '-';
	}
	tmp[len] = '\0';
	if (useful)
		memcpy(name, tmp, len + 1);
}

/* ---- PKI files -------------------------------------------------------------- */

/* A key/certificate pair of files and their temporary names. */
struct pair {
	const char *key, *cert;
	char key_tmp[32], cert_tmp[32];
	const char *what; /* for messages */
};

static void pair_names(struct pair *p, const char *key, const char *cert,
		       const char *what)
{
	p->key = key;
	p->cert = cert;
	p->what = what;
	snprintf(p->key_tmp, sizeof p->key_tmp, ".%s" TMP_SUFFIX, key);
	snprintf(p->cert_tmp, sizeof p->cert_tmp, ".%s" TMP_SUFFIX, cert);
}

/*
 * Write a pair: both temporary files fsync'd and the directory fsync'd
 * before the first rename, so that once the key is in place its
 * certificate is durably there under its temporary name (what
 * pair_recover relies on); key renamed first, certificate last, then the
 * directory fsync'd again.
 */
static enum ht_err pair_write(int dfd, const struct pair *p,
			      const char *key_pem, size_t key_len,
			      const char *cert_pem, size_t cert_len)
{
	enum ht_err err = write_tmp(dfd, p->key_tmp, key_pem, key_len, 0600);
	if (!err)
		err = write_tmp(dfd, p->cert_tmp, cert_pem, cert_len, 0644);
	if (!err && fsync(dfd) != 0)
		err = HT_ERR_IO;
	if (!err)
		err = rename_noreplace(dfd, p->key_tmp, p->key);
	if (err) {
		unlinkat(dfd, p->key_tmp, 0);
		unlinkat(dfd, p->cert_tmp, 0);
		return err;
	}
	err = rename_noreplace(dfd, p->cert_tmp, p->cert);
	if (err)
		return err; /* key in place, cert under its temporary name:
			       pair_recover completes it next time */
	return fsync(dfd) == 0 ? HT_OK : HT_ERR_IO;
}

/*
 * Complete a pair_write that stopped between its renames: the key is in
 * place and the certificate still under its temporary name. check (may
 * be NULL) confirms the two belong together before the rename.
 */
static enum ht_err pair_recover(int dfd, const struct pair *p,
				enum ht_err (*check)(int dfd,
						     const struct pair *p))
{
	if (!exists_at(dfd, p->key) || exists_at(dfd, p->cert) ||
	    !exists_at(dfd, p->cert_tmp))
		return HT_OK;
	enum ht_err err = check ? check(dfd, p) : HT_OK;
	if (err)
		return err;
	err = rename_noreplace(dfd, p->cert_tmp, p->cert);
	if (!err && fsync(dfd) != 0)
		err = HT_ERR_IO;
	return err;
}

/* Load the CA pair of files; cert_name is the certificate's file (ca.crt,
 * or its temporary name while recovering). */
static enum ht_err ca_load_files(int dfd, const char *cert_name,
				 bool with_key, struct ht_pki_ca **ca)
{
	char *cert = NULL, *key = NULL;
	size_t cert_len = 0, key_len = 0;
	enum ht_err err = read_at(dfd, cert_name, HT_PKI_PEM_BYTES_MAX, &cert,
				  &cert_len);
	if (!err && with_key)
		err = read_at(dfd, HT_REGISTRY_FILE_CA_KEY, HT_PKI_PEM_BYTES_MAX,
			      &key, &key_len);
	if (!err)
		err = ht_pki_ca_from_pem(cert, cert_len, key, key_len, ca);
	free(cert);
	free_secret(key, key_len);
	return err;
}

/* The interrupted CA certificate must be the CA key's. */
static enum ht_err ca_check_tmp(int dfd, const struct pair *p)
{
	struct ht_pki_ca *ca = NULL;
	enum ht_err err = ca_load_files(dfd, p->cert_tmp, true, &ca);
	ht_pki_ca_destroy(ca);
	if (err != HT_ERR_INVALID)
		return err;
	fprintf(stderr, "huitong: %s (an interrupted init's CA certificate)"
			" is not the certificate of %s; restore %s or remove"
			" both\n",
		p->cert_tmp, p->key, p->cert);
	return HT_ERR_CORRUPT;
}

/* Half a pair: say which file is alone and what to do. */
static enum ht_err pair_half(const char *data, const struct pair *p,
			     bool key_alone)
{
	if (key_alone)
		fprintf(stderr,
			"huitong: %s/%s exists without %s: the %s was never"
			" completed or its certificate was removed; restore %s,"
			" or remove %s to make a new %s\n",
			data, p->key, p->cert, p->what, p->cert, p->key,
			p->what);
	else
		fprintf(stderr,
			"huitong: %s/%s exists without its private key %s;"
			" restore %s, or remove %s to make a new %s\n",
			data, p->cert, p->key, p->key, p->cert, p->what);
	return HT_ERR_CORRUPT;
}

/* 0: neither file, 1: both, -1: only one (pair_half reports it). */
static int pair_state(int dfd, const struct pair *p, bool *key_alone)
{
	bool k = exists_at(dfd, p->key), c = exists_at(dfd, p->cert);
	*key_alone = k && !c;
	return k && c ? 1 : !k && !c ? 0 : -1;
}

/* The CA: load and check an existing pair, or make a new one. */
static enum ht_err init_ca(const char *data, int dfd, const struct pair *p,
			   struct ht_pki_ca **ca)
{
	bool key_alone;
	int state = pair_state(dfd, p, &key_alone);
	if (state < 0)
		return pair_half(data, p, key_alone);
	if (state > 0) {
		enum ht_err err = ca_load_files(dfd, p->cert, true, ca);
		if (err == HT_ERR_INVALID) {
			fprintf(stderr, "huitong: %s/%s and %s do not load as"
					" the hub CA (not a P-256 CA, or the key"
					" is not the certificate's)\n",
				data, p->cert, p->key);
			err = HT_ERR_CORRUPT;
		}
		return err;
	}
	char name[HT_PKI_CA_NAME_BYTES_MAX + 1];
	ca_name_for(data, name);
	char *cert = NULL, *key = NULL;
	size_t cert_len = 0, key_len = 0;
	enum ht_err err = ht_pki_ca_create(name, ca);
	if (!err)
		err = ht_pki_ca_cert_pem(*ca, &cert, &cert_len);
	if (!err)
		err = ht_pki_ca_key_pem(*ca, &key, &key_len);
	if (!err)
		err = pair_write(dfd, p, key, key_len, cert, cert_len);
	free(cert);
	free_secret(key, key_len);
	return err;
}

/* The server pair: kept when present, else issued by ca. */
static enum ht_err init_server(const char *data, int dfd, const struct pair *p,
			       const struct ht_pki_ca *ca,
			       const char *const *names, size_t n)
{
	bool key_alone;
	int state = pair_state(dfd, p, &key_alone);
	if (state < 0)
		return pair_half(data, p, key_alone);
	if (state > 0)
		return HT_OK;
	struct ht_pki_issued issued;
	enum ht_err err = ht_pki_issue_server(ca, names, n, NULL, &issued);
	if (!err)
		err = pair_write(dfd, p, issued.key_pem, issued.key_len,
				 issued.cert_pem, issued.cert_len);
	ht_pki_issued_clear(&issued);
	return err;
}

/* Complete interrupted pair writes, and refuse server files without a CA:
 * a CA made now could not have issued them, so clients would not trust
 * the server (checked before anything is made). */
static enum ht_err init_check(const char *data, int dfd, const struct pair *ca,
			      const struct pair *srv)
{
	enum ht_err err = pair_recover(dfd, ca, ca_check_tmp);
	if (!err)
		err = pair_recover(dfd, srv, NULL);
	if (err)
		return err;
	bool key_alone;
	if (pair_state(dfd, ca, &key_alone) == 0 &&
	    (exists_at(dfd, srv->key) || exists_at(dfd, srv->cert))) {
		fprintf(stderr, "huitong: %s has server files (%s, %s) but no"
				" hub CA; a new CA could not have issued them:"
				" restore %s and %s, or remove the server files"
				" to issue new ones\n",
			data, srv->key, srv->cert, ca->key, ca->cert);
		return HT_ERR_CORRUPT;
	}
	return HT_OK;
}

static enum ht_err create_db(const char *data, int dfd);

enum ht_err ht_registry_init_pki(const char *data,
				 const char *const *server_names, size_t n)
{
	HT_ASSERT(data != NULL);
	enum ht_err err = ht_registry_check_server_names(server_names, n, NULL);
	if (err)
		return err;
	if (strnlen(data, PATH_BYTES_MAX) >= PATH_BYTES_MAX - 32)
		return HT_ERR_LIMIT;
	int dfd = open(data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? HT_ERR_NOT_FOUND : HT_ERR_IO;
	struct pair ca_files, srv_files;
	pair_names(&ca_files, HT_REGISTRY_FILE_CA_KEY, HT_REGISTRY_FILE_CA_CERT,
		   "hub CA");
	pair_names(&srv_files, HT_REGISTRY_FILE_SERVER_KEY,
		   HT_REGISTRY_FILE_SERVER_CERT, "server certificate");
	struct ht_pki_ca *ca = NULL;
	err = init_check(data, dfd, &ca_files, &srv_files);
	if (!err)
		err = init_ca(data, dfd, &ca_files, &ca);
	if (!err)
		err = init_server(data, dfd, &srv_files, ca, server_names, n);
	if (!err)
		err = create_db(data, dfd);
	ht_pki_ca_destroy(ca);
	close(dfd);
	return err;
}

bool ht_registry_pki_complete(const char *data)
{
	static const char *const files[] = {
		HT_REGISTRY_FILE_CA_KEY, HT_REGISTRY_FILE_CA_CERT,
		HT_REGISTRY_FILE_SERVER_KEY, HT_REGISTRY_FILE_SERVER_CERT,
		HT_REGISTRY_FILE_DB};
	int dfd = open(data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return false;
	bool all = true;
	for (size_t i = 0; all && i < sizeof files / sizeof files[0]; i++)
		all = exists_at(dfd, files[i]);
	close(dfd);
	return all;
}

enum ht_err ht_registry_load_pki(const char *data, struct ht_pki_ca **ca,
				 char **server_cert_pem, size_t *server_cert_len,
				 char **server_key_pem, size_t *server_key_len)
{
	HT_ASSERT(data != NULL && ca != NULL);
	HT_ASSERT(server_cert_pem != NULL && server_key_pem != NULL);
	HT_ASSERT(server_cert_len != NULL && server_key_len != NULL);
	*ca = NULL;
	*server_cert_pem = *server_key_pem = NULL;
	*server_cert_len = *server_key_len = 0;
	int dfd = open(data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? HT_ERR_NOT_FOUND : HT_ERR_IO;
	enum ht_err err = ca_load_files(dfd, HT_REGISTRY_FILE_CA_CERT, false, ca);
	if (!err)
		err = read_at(dfd, HT_REGISTRY_FILE_SERVER_CERT,
			      HT_PKI_PEM_BYTES_MAX, server_cert_pem,
			      server_cert_len);
	if (!err)
		err = read_at(dfd, HT_REGISTRY_FILE_SERVER_KEY,
			      HT_PKI_PEM_BYTES_MAX, server_key_pem,
			      server_key_len);
	close(dfd);
	if (err) {
		ht_pki_ca_destroy(*ca);
		free(*server_cert_pem);
		free_secret(*server_key_pem, *server_key_len);
		*ca = NULL;
		*server_cert_pem = *server_key_pem = NULL;
		*server_cert_len = *server_key_len = 0;
	}
	return err;
}

/* ---- the database ----------------------------------------------------------- */

/* Schema version 1. WITHOUT ROWID: every table is read by its key. The
 * CHECKs keep hand edits honest; the view checks every row again. */
static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS meta("
	" key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS participants("
	" id TEXT PRIMARY KEY NOT NULL CHECK (length(id) BETWEEN 1 AND 56),"
	" role TEXT NOT NULL"
	"  CHECK (role IN ('participant','operator','regulator')),"
	" created_s INTEGER NOT NULL,"
	" revoked_s INTEGER) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS keys("
	" key_id TEXT PRIMARY KEY NOT NULL,"
	" participant TEXT NOT NULL REFERENCES participants(id),"
	" seq INTEGER NOT NULL CHECK (seq BETWEEN 1 AND 9999999),"
	" alg TEXT NOT NULL CHECK (alg IN ('sm2','ed25519','ecdsa-p256')),"
	" public_key_pem TEXT NOT NULL,"
	" cert_serial TEXT NOT NULL UNIQUE,"
	" cert_not_after_s INTEGER NOT NULL,"
	" created_s INTEGER NOT NULL,"
	" revoked_s INTEGER,"
	" UNIQUE (participant, seq),"
	" CHECK (key_id = participant || ':' || seq)) WITHOUT ROWID;"
	"INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1');";

_Static_assert(HT_REGISTRY_SCHEMA_VERSION == 1, "schema_sql is version 1");
_Static_assert(HT_REGISTRY_ID_BYTES_MAX == 56, "schema_sql's id CHECK");
_Static_assert(HT_REGISTRY_KEY_SEQ_MAX == 9999999u, "schema_sql's seq CHECK");

static enum ht_err sql_fail(sqlite3 *db, int rc, const char *what)
{
	if (getenv("HT_REGISTRY_DEBUG"))
		fprintf(stderr, "huitong: registry: %s: %s\n", what,
			sqlite3_errmsg(db));
	switch (rc & 0xff) {
	case SQLITE_NOMEM:
		return HT_ERR_NOMEM;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_SCHEMA:
		return HT_ERR_CORRUPT;
	default:
		return HT_ERR_IO;
	}
}

static enum ht_err exec(sqlite3 *db, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? HT_OK : sql_fail(db, rc, sql);
}

/* Open registry.db as it is (no creation). */
static enum ht_err db_open(const char *path, bool readonly, sqlite3 **out)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		sqlite3_close(db);
		return HT_ERR_IO;
	}
	sqlite3_busy_timeout(db, HT_REGISTRY_BUSY_TIMEOUT_MS);
	/* WAL is persistent in the file (set at creation); setting it again
	 * is a no-op, and a query_only reader must not try. */
	enum ht_err err = exec(db, readonly ? "PRAGMA query_only=1;" :
					      "PRAGMA journal_mode=WAL;"
					      " PRAGMA synchronous=FULL;"
					      " PRAGMA foreign_keys=ON;");
	if (err) {
		sqlite3_close(db);
		return err;
	}
	*out = db;
	return HT_OK;
}

static enum ht_err check_version(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(
		db, "SELECT value FROM meta WHERE key = 'schema_version'", -1,
		&st, NULL);
	if (rc != SQLITE_OK)
		return rc == SQLITE_ERROR ? HT_ERR_CORRUPT :
					    sql_fail(db, rc, "schema version");
	rc = sqlite3_step(st);
	enum ht_err err = HT_ERR_CORRUPT;
	if (rc == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		long version = v ? strtol(v, NULL, 10) : 0;
		err = version == HT_REGISTRY_SCHEMA_VERSION ? HT_OK :
		      version > HT_REGISTRY_SCHEMA_VERSION  ? HT_ERR_UNSUPPORTED :
							       HT_ERR_CORRUPT;
	} else if (rc != SQLITE_DONE) {
		err = sql_fail(db, rc, "schema version");
	}
	sqlite3_finalize(st);
	return err;
}

/* Make registry.db with mode 0600 when missing, and its schema. */
static enum ht_err create_db(const char *data, int dfd)
{
	char path[PATH_BYTES_MAX];
	enum ht_err err = join(data, HT_REGISTRY_FILE_DB, path, sizeof path);
	if (err)
		return err;
	int fd = openat(dfd, HT_REGISTRY_FILE_DB,
			O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno != EEXIST)
		return HT_ERR_IO;
	if (fd >= 0)
		close(fd);
	sqlite3 *db = NULL;
	err = db_open(path, false, &db);
	if (!err)
		err = exec(db, "BEGIN IMMEDIATE;");
	if (!err) {
		err = exec(db, schema_sql);
		err = err ? err : exec(db, "COMMIT;");
		if (err)
			exec(db, "ROLLBACK;");
	}
	if (!err)
		err = check_version(db);
	sqlite3_close(db);
	if (!err && fsync(dfd) != 0)
		err = HT_ERR_IO;
	return err;
}

enum ht_err ht_registry_open(const char *data, bool readonly,
			     struct ht_registry **out)
{
	HT_ASSERT(data != NULL && out != NULL);
	*out = NULL;
	struct ht_registry *r = calloc(1, sizeof *r);
	if (!r)
		return HT_ERR_NOMEM;
	char path[PATH_BYTES_MAX];
	enum ht_err err = HT_OK;
	if (snprintf(r->dir, sizeof r->dir, "%s", data) >= (int)sizeof r->dir)
		err = HT_ERR_LIMIT;
	if (!err)
		err = join(data, HT_REGISTRY_FILE_DB, path, sizeof path);
	if (!err && access(path, F_OK) != 0)
		err = errno == ENOENT ? HT_ERR_NOT_FOUND : HT_ERR_IO;
	if (!err)
		err = db_open(path, readonly, &r->db);
	if (!err)
		err = check_version(r->db);
	if (err) {
		ht_registry_close(r);
		return err;
	}
	r->readonly = readonly;
	*out = r;
	return HT_OK;
}

void ht_registry_close(struct ht_registry *r)
{
	if (!r)
		return;
	sqlite3_close(r->db);
	free(r);
}

/* ---- statements --------------------------------------------------------------- */

/* A prepared statement with its bindings, stepped once or per row. */
static enum ht_err prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
	return rc == SQLITE_OK ? HT_OK : sql_fail(db, rc, sql);
}

/* Run a statement that returns no rows; *changes (may be NULL) gets the
 * rows it changed. Finalizes st. */
static enum ht_err run(sqlite3 *db, sqlite3_stmt *st, int *changes)
{
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sql_fail(db, rc, "step");
	if (changes)
		*changes = sqlite3_changes(db);
	return HT_OK;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* ---- operations ------------------------------------------------------------------ */

/* What every issuance needs from the data directory, loaded before the
 * write transaction so the transaction stays short. */
struct material {
	struct ht_pki_ca *ca; /* can issue */
	char *ca_pem;
	size_t ca_len;
	char *hub_pub_pem;
	size_t hub_pub_len;
	enum ht_sign_alg hub_alg;
};

static void material_clear(struct material *m)
{
	ht_pki_ca_destroy(m->ca);
	free(m->ca_pem);
	free(m->hub_pub_pem);
	memset(m, 0, sizeof *m);
}

/* The hub journal's PUBLIC key from DATA/hub-key.pem (the hub's SM2 keys
 * use HT_SM2_DEFAULT_ID, as ht_hub_init makes them). */
static enum ht_err hub_public_key(int dfd, struct material *m)
{
	char *priv = NULL;
	size_t priv_len = 0;
	enum ht_err err = read_at(dfd, HT_REGISTRY_FILE_HUB_KEY,
				  HT_PKI_PEM_BYTES_MAX, &priv, &priv_len);
	if (err)
		return err;
	struct ht_key *k = NULL;
	err = ht_key_from_pem(priv, priv_len, NULL, &k);
	free_secret(priv, priv_len);
	if (err)
		return err == HT_ERR_INVALID ? HT_ERR_CORRUPT : err;
	err = ht_key_public_pem(k, &m->hub_pub_pem, &m->hub_pub_len);
	m->hub_alg = ht_key_alg(k);
	ht_key_destroy(k);
	return err;
}

static enum ht_err material_load(const struct ht_registry *r,
				 struct material *m)
{
	memset(m, 0, sizeof *m);
	int dfd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? HT_ERR_NOT_FOUND : HT_ERR_IO;
	enum ht_err err = ca_load_files(dfd, HT_REGISTRY_FILE_CA_CERT, true,
					&m->ca);
	if (err == HT_ERR_INVALID)
		err = HT_ERR_CORRUPT;
	if (!err)
		err = ht_pki_ca_cert_pem(m->ca, &m->ca_pem, &m->ca_len);
	if (!err)
		err = hub_public_key(dfd, m);
	close(dfd);
	if (err)
		material_clear(m);
	return err;
}

/* A participant's state inside a write transaction. */
struct pstate {
	bool exists;
	enum ht_pki_role role;
	int64_t revoked_s;        /* 0: not revoked */
	uint32_t seq_max;         /* newest key's n, 0 when none */
	enum ht_sign_alg alg_newest;
	int64_t participants;     /* rows in participants */
};

static enum ht_err pstate_read(sqlite3 *db, const char *id, struct pstate *s)
{
	memset(s, 0, sizeof *s);
	sqlite3_stmt *st = NULL;
	enum ht_err err = prep(
		db,
		"SELECT p.role, p.revoked_s,"
		" (SELECT seq FROM keys WHERE participant = p.id"
		"   ORDER BY seq DESC LIMIT 1),"
		" (SELECT alg FROM keys WHERE participant = p.id"
		"   ORDER BY seq DESC LIMIT 1),"
		" (SELECT COUNT(*) FROM participants)"
		" FROM participants p WHERE p.id = ?1",
		&st);
	if (err)
		return err;
	bind_text(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		s->exists = true;
		const char *role = (const char *)sqlite3_column_text(st, 0);
		const char *alg = (const char *)sqlite3_column_text(st, 3);
		s->revoked_s = sqlite3_column_int64(st, 1);
		s->seq_max = (uint32_t)sqlite3_column_int64(st, 2);
		s->participants = sqlite3_column_int64(st, 4);
		if (ht_pki_role_parse(role, &s->role) ||
		    (alg && ht_sign_alg_parse(alg, &s->alg_newest)))
			err = HT_ERR_CORRUPT;
	} else if (rc != SQLITE_DONE) {
		err = sql_fail(db, rc, "participant");
	}
	sqlite3_finalize(st);
	if (err || s->exists)
		return err;
	/* Not there: count the rows for the limit. */
	err = prep(db, "SELECT COUNT(*) FROM participants", &st);
	if (err)
		return err;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		s->participants = sqlite3_column_int64(st, 0);
	else
		err = sql_fail(db, rc, "count");
	sqlite3_finalize(st);
	return err;
}

/* What one issuance makes: the client certificate and TLS key, the
 * request-signing key, and the credentials that borrow them. */
struct issue {
	struct ht_pki_issued cert;
	char *sign_priv;
	size_t sign_priv_len;
	char *sign_pub;
	size_t sign_pub_len;
	struct ht_registry_issued result;
	struct ht_pki_credentials creds;
};

static void issue_clear(struct issue *is)
{
	ht_pki_issued_clear(&is->cert);
	free_secret(is->sign_priv, is->sign_priv_len);
	free(is->sign_pub);
	memset(is, 0, sizeof *is);
}

/* Issue a certificate and a signing key for key id "<id>:<seq>" and fill
 * the credentials (borrowing from is and m). */
static enum ht_err issue_make(const struct material *m, const char *id,
			      enum ht_pki_role role, enum ht_sign_alg alg,
			      uint32_t seq, const char *url,
			      const struct ht_pki_validity *validity,
			      struct issue *is)
{
	memset(is, 0, sizeof *is);
	struct ht_key *k = NULL;
	enum ht_err err = ht_pki_issue_client(m->ca, id, role, validity,
					      &is->cert);
	if (!err)
		err = ht_key_generate(alg, NULL, &k);
	if (!err)
		err = ht_key_private_pem(k, &is->sign_priv, &is->sign_priv_len);
	if (!err)
		err = ht_key_public_pem(k, &is->sign_pub, &is->sign_pub_len);
	ht_key_destroy(k);
	if (err) {
		issue_clear(is);
		return err;
	}
	struct ht_registry_issued *res = &is->result;
	snprintf(res->key_id, sizeof res->key_id, "%s:%u", id, (unsigned)seq);
	memcpy(res->cert_serial, is->cert.serial_hex, sizeof res->cert_serial);
	res->role = role;
	res->alg = alg;
	res->cert_not_after_s = is->cert.not_after_s;
	struct ht_pki_credentials *c = &is->creds;
	snprintf(c->id, sizeof c->id, "%s", id);
	c->role = role;
	c->url = (char *)(url ? url : HT_REGISTRY_URL_DEFAULT);
	c->key_pem = is->cert.key_pem;
	c->key_len = is->cert.key_len;
	c->cert_pem = is->cert.cert_pem;
	c->cert_len = is->cert.cert_len;
	c->ca_pem = m->ca_pem;
	c->ca_len = m->ca_len;
	c->signing_key_pem = is->sign_priv;
	c->signing_key_len = is->sign_priv_len;
	c->signing_alg = alg;
	snprintf(c->signing_key_id, sizeof c->signing_key_id, "%s",
		 res->key_id);
	c->hub_key_pem = m->hub_pub_pem;
	c->hub_key_len = m->hub_pub_len;
	c->hub_sign_alg = m->hub_alg;
	return HT_OK;
}

static enum ht_err insert_participant(sqlite3 *db, const char *id,
				      enum ht_pki_role role, int64_t now)
{
	sqlite3_stmt *st = NULL;
	enum ht_err err = prep(db,
			       "INSERT INTO participants(id, role, created_s)"
			       " VALUES (?1, ?2, ?3)",
			       &st);
	if (err)
		return err;
	bind_text(st, 1, id);
	bind_text(st, 2, ht_pki_role_name(role));
	sqlite3_bind_int64(st, 3, now);
	return run(db, st, NULL);
}

static enum ht_err insert_key(sqlite3 *db, const char *id, uint32_t seq,
			      const struct issue *is, int64_t now)
{
	sqlite3_stmt *st = NULL;
	enum ht_err err = prep(
		db,
		"INSERT INTO keys(key_id, participant, seq, alg, public_key_pem,"
		" cert_serial, cert_not_after_s, created_s)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
		&st);
	if (err)
		return err;
	bind_text(st, 1, is->result.key_id);
	bind_text(st, 2, id);
	sqlite3_bind_int64(st, 3, seq);
	bind_text(st, 4, ht_sign_alg_name(is->result.alg));
	bind_text(st, 5, is->sign_pub);
	bind_text(st, 6, is->result.cert_serial);
	sqlite3_bind_int64(st, 7, is->result.cert_not_after_s);
	sqlite3_bind_int64(st, 8, now);
	return run(db, st, NULL);
}

/* Older keys of id stop being accepted at `at` (an earlier time stays). */
static enum ht_err retire_keys(sqlite3 *db, const char *id, uint32_t seq,
			       int64_t at, int *changed)
{
	sqlite3_stmt *st = NULL;
	enum ht_err err = prep(db,
			       "UPDATE keys SET revoked_s = ?1"
			       " WHERE participant = ?2 AND seq < ?3"
			       " AND (revoked_s IS NULL OR revoked_s > ?1)",
			       &st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, at);
	bind_text(st, 2, id);
	sqlite3_bind_int64(st, 3, seq);
	return run(db, st, changed);
}

/* Remove what a failed operation wrote into a credentials directory, and
 * the directory when it made it. Best effort: the set is not registered. */
static void creds_remove(const char *dir, bool dir_existed)
{
	static const char *const files[] = {
		"credentials.json", "client.key", "client.crt", "ca.crt",
		"signing.key", "hub-key.pub", ".credentials.json.tmp",
		".client.key.tmp", ".client.crt.tmp", ".ca.crt.tmp",
		".signing.key.tmp", ".hub-key.pub.tmp"};
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0)
		return;
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		unlinkat(dfd, files[i], 0);
	fsync(dfd);
	close(dfd);
	if (!dir_existed)
		rmdir(dir);
}

/* fsync the directory that holds path, so that a directory just made
 * there survives a crash (its own contents are fsync'd by its writer). */
static enum ht_err fsync_parent(const char *path)
{
	char copy[PATH_BYTES_MAX];
	if (snprintf(copy, sizeof copy, "%s", path) >= (int)sizeof copy)
		return HT_ERR_LIMIT;
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return HT_ERR_IO;
	bool ok = fsync(fd) == 0;
	close(fd);
	return ok ? HT_OK : HT_ERR_IO;
}

/* The common tail of add and rotate, inside the write transaction:
 * insert the key row, write the credentials, commit. On failure the
 * transaction is rolled back and written credentials removed. */
static enum ht_err finish(struct ht_registry *r, const char *id, uint32_t seq,
			  struct issue *is, const char *out_dir, bool force,
			  int64_t now)
{
	struct stat st;
	bool dir_existed = stat(out_dir, &st) == 0;
	enum ht_err err = insert_key(r->db, id, seq, is, now);
	enum ht_err werr = HT_ERR_INVALID;
	if (!err)
		err = werr = ht_pki_write_credentials(out_dir, &is->creds, force);
	/* The credentials, down to the directory's own entry, are durable
	 * before the key is registered. */
	if (!err && !dir_existed)
		err = fsync_parent(out_dir);
	if (!err)
		err = exec(r->db, "COMMIT;");
	if (!err)
		return HT_OK;
	exec(r->db, "ROLLBACK;");
	/* EXISTS and INVALID are refusals before anything was written. */
	if (werr != HT_ERR_EXISTS && werr != HT_ERR_INVALID)
		creds_remove(out_dir, dir_existed);
	return err;
}

static enum ht_err begin(struct ht_registry *r)
{
	if (r->readonly)
		return HT_ERR_INVALID;
	return exec(r->db, "BEGIN IMMEDIATE;");
}

/* Check an id as an operation receives it: LIMIT for a valid id that is
 * too long for the registry, INVALID for anything else wrong. */
static enum ht_err check_id(const char *id)
{
	if (!id)
		return HT_ERR_INVALID;
	size_t len = strnlen(id, HT_PKI_ID_BYTES_MAX + 1);
	if (ht_registry_id_valid(id, len))
		return HT_OK;
	return ht_pki_id_valid(id, len) ? HT_ERR_LIMIT : HT_ERR_INVALID;
}

static bool alg_valid(enum ht_sign_alg alg)
{
	return alg == HT_SIGN_SM2 || alg == HT_SIGN_ED25519 ||
	       alg == HT_SIGN_ECDSA_P256;
}

static enum ht_err add_locked(struct ht_registry *r,
			      const struct ht_registry_add_options *o,
			      const struct material *m, enum ht_pki_role role,
			      enum ht_sign_alg alg, struct issue *is)
{
	int64_t now = wall_now_s(o->now_s);
	struct pstate ps;
	enum ht_err err = pstate_read(r->db, o->id, &ps);
	if (!err && ps.exists)
		err = HT_ERR_EXISTS;
	if (!err && ps.participants >= (int64_t)HT_REGISTRY_PARTICIPANTS_MAX)
		err = HT_ERR_LIMIT;
	if (!err)
		err = issue_make(m, o->id, role, alg, 1, o->url, o->validity, is);
	if (!err)
		err = insert_participant(r->db, o->id, role, now);
	if (err) {
		exec(r->db, "ROLLBACK;");
		return err;
	}
	return finish(r, o->id, 1, is, o->out_dir, o->force, now);
}

enum ht_err ht_registry_add(struct ht_registry *r,
			    const struct ht_registry_add_options *o,
			    struct ht_registry_issued *out)
{
	HT_ASSERT(r != NULL && o != NULL);
	enum ht_pki_role role = o->role ? o->role : HT_PKI_ROLE_PARTICIPANT;
	enum ht_sign_alg alg = o->alg ? o->alg : HT_SIGN_SM2;
	enum ht_err err = check_id(o->id);
	if (err)
		return err;
	if (!alg_valid(alg) || !o->out_dir || role < HT_PKI_ROLE_PARTICIPANT ||
	    role > HT_PKI_ROLE_REGULATOR)
		return HT_ERR_INVALID;
	struct material m;
	err = r->readonly ? HT_ERR_INVALID : material_load(r, &m);
	if (err)
		return err;
	struct issue is;
	memset(&is, 0, sizeof is);
	err = begin(r);
	if (!err)
		err = add_locked(r, o, &m, role, alg, &is);
	if (!err && out)
		*out = is.result;
	issue_clear(&is);
	material_clear(&m);
	return err;
}

static enum ht_err rotate_locked(struct ht_registry *r,
				 const struct ht_registry_rotate_options *o,
				 const struct material *m, struct issue *is)
{
	int64_t now = wall_now_s(o->now_s);
	struct pstate ps;
	enum ht_err err = pstate_read(r->db, o->id, &ps);
	if (!err && !ps.exists)
		err = HT_ERR_NOT_FOUND;
	if (!err && ps.revoked_s)
		err = HT_ERR_INVALID;
	if (!err && ps.seq_max >= HT_REGISTRY_KEY_SEQ_MAX)
		err = HT_ERR_LIMIT;
	enum ht_sign_alg alg = o->alg ? o->alg :
			       ps.alg_newest ? ps.alg_newest : HT_SIGN_SM2;
	uint32_t seq = ps.seq_max + 1;
	int retired = 0;
	if (!err)
		err = issue_make(m, o->id, ps.role, alg, seq, o->url,
				 o->validity, is);
	if (!err)
		err = retire_keys(r->db, o->id, seq, now + (int64_t)o->grace_s,
				  &retired);
	if (err) {
		exec(r->db, "ROLLBACK;");
		return err;
	}
	is->result.keys_retired = (size_t)retired;
	is->result.keys_retired_at_s = retired ? now + (int64_t)o->grace_s : 0;
	return finish(r, o->id, seq, is, o->out_dir, o->force, now);
}

enum ht_err ht_registry_rotate(struct ht_registry *r,
			       const struct ht_registry_rotate_options *o,
			       struct ht_registry_issued *out)
{
	HT_ASSERT(r != NULL && o != NULL);
	enum ht_err err = check_id(o->id);
	if (err)
		return err;
	if ((o->alg && !alg_valid(o->alg)) || !o->out_dir ||
	    o->grace_s > HT_REGISTRY_GRACE_S_MAX)
		return HT_ERR_INVALID;
	struct material m;
	err = r->readonly ? HT_ERR_INVALID : material_load(r, &m);
	if (err)
		return err;
	struct issue is;
	memset(&is, 0, sizeof is);
	err = begin(r);
	if (!err)
		err = rotate_locked(r, o, &m, &is);
	if (!err && out)
		*out = is.result;
	issue_clear(&is);
	material_clear(&m);
	return err;
}

/* Revoke the participant and all its keys at now. */
static enum ht_err revoke_all(sqlite3 *db, const char *id, int64_t now,
			      int *changes)
{
	sqlite3_stmt *st = NULL;
	int a = 0, b = 0;
	enum ht_err err = prep(db,
			       "UPDATE participants SET revoked_s = ?1"
			       " WHERE id = ?2 AND revoked_s IS NULL",
			       &st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, now);
	bind_text(st, 2, id);
	err = run(db, st, &a);
	if (!err)
		err = prep(db,
			   "UPDATE keys SET revoked_s = ?1 WHERE participant = ?2"
			   " AND (revoked_s IS NULL OR revoked_s > ?1)",
			   &st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, now);
	bind_text(st, 2, id);
	err = run(db, st, &b);
	*changes = a + b;
	return err;
}

/* Revoke one key of id at now; NOT_FOUND when it is not id's. A key
 * already revoked at or before now keeps its time. */
static enum ht_err revoke_one(sqlite3 *db, const char *id, const char *key_id,
			      int64_t now, int *changes)
{
	sqlite3_stmt *st = NULL;
	enum ht_err err = prep(db,
			       "SELECT revoked_s FROM keys"
			       " WHERE key_id = ?1 AND participant = ?2",
			       &st);
	if (err)
		return err;
	bind_text(st, 1, key_id);
	bind_text(st, 2, id);
	int rc = sqlite3_step(st);
	bool found = rc == SQLITE_ROW;
	bool later = found && (sqlite3_column_type(st, 0) == SQLITE_NULL ||
			       sqlite3_column_int64(st, 0) > now);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_fail(db, rc, "key");
	if (!found)
		return HT_ERR_NOT_FOUND;
	if (!later)
		return HT_OK;
	err = prep(db, "UPDATE keys SET revoked_s = ?1 WHERE key_id = ?2", &st);
	if (err)
		return err;
	sqlite3_bind_int64(st, 1, now);
	bind_text(st, 2, key_id);
	return run(db, st, changes);
}

enum ht_err ht_registry_revoke(struct ht_registry *r, const char *id,
			       const char *key_id, int64_t now_s,
			       bool *changed)
{
	HT_ASSERT(r != NULL);
	if (changed)
		*changed = false;
	enum ht_err err = check_id(id);
	if (err)
		return err == HT_ERR_LIMIT ? HT_ERR_NOT_FOUND : err;
	if (key_id && strnlen(key_id, HT_REGISTRY_KEY_ID_SIZE) >=
			      HT_REGISTRY_KEY_ID_SIZE)
		return HT_ERR_NOT_FOUND;
	int64_t now = wall_now_s(now_s);
	err = begin(r);
	if (err)
		return err;
	struct pstate ps;
	int changes = 0;
	err = pstate_read(r->db, id, &ps);
	if (!err && !ps.exists)
		err = HT_ERR_NOT_FOUND;
	if (!err)
		err = key_id ? revoke_one(r->db, id, key_id, now, &changes) :
			       revoke_all(r->db, id, now, &changes);
	if (!err)
		err = exec(r->db, "COMMIT;");
	if (err) {
		exec(r->db, "ROLLBACK;");
		return err;
	}
	if (changed)
		*changed = changes > 0;
	return HT_OK;
}

/* ---- the view ------------------------------------------------------------------ */

struct vpart {
	char id[HT_REGISTRY_ID_BYTES_MAX + 1];
	enum ht_pki_role role;
	int64_t created_s;
	int64_t revoked_s;
	uint32_t key_first;
	uint32_t key_count;
};

/* Longest raw public key: an uncompressed EC point. */
#define RAW_KEY_BYTES_MAX 65

struct vkey {
	char key_id[HT_REGISTRY_KEY_ID_SIZE];
	char serial[HT_PKI_SERIAL_HEX_SIZE];
	uint32_t participant; /* index into part */
	uint32_t seq;
	enum ht_sign_alg alg;
	int64_t cert_not_after_s;
	int64_t created_s;
	int64_t revoked_s;    /* effective: with the participant's */
	uint8_t raw[RAW_KEY_BYTES_MAX];
	uint8_t raw_len;      /* 0: load from pem */
	char *pem;            /* only when raw_len is 0 */
	/* Materialised on first lookup: NULL, a key, or BAD_KEY. */
	_Atomic(struct ht_key *) pub;
};

struct ht_registry_view {
	atomic_size_t refs;
	uint32_t n_part, n_key;
	struct vpart *part;
	struct vkey *key;
	uint32_t *t_part, *t_key, *t_serial; /* index + 1; 0 = empty */
	uint32_t mask_part, mask_key;
};

/* A stored public key that does not load, remembered as such. */
static char bad_key_marker;
#define BAD_KEY ((struct ht_key *)(void *)&bad_key_marker)

/* ---- the stored public key: a fast path for the canonical forms ---- */

/*
 * OpenSSL 3.0's PEM/DER decoders cost 0.3-0.9 ms per public key, which
 * would make a registry of 10,000 keys take seconds to materialise. The
 * keys huitong stores are the exact SubjectPublicKeyInfo encodings
 * OpenSSL writes for the three algorithms: a fixed prefix and the raw
 * key. Those are recognised byte for byte (no ASN.1 is parsed) and the
 * raw key goes to ht_key_from_public_raw, which checks the point is on
 * the curve (~3-30 us). Anything else takes ht_key_from_pem.
 */
static const uint8_t spki_sm2[] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
	0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x81, 0x1c,
	0xcf, 0x55, 0x01, 0x82, 0x2d, 0x03, 0x42, 0x00};
static const uint8_t spki_p256[] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
	0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
	0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};
static const uint8_t spki_ed25519[] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
				       0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* The DER inside one "PUBLIC KEY" PEM block as OpenSSL writes it;
 * false for anything else or more than der_size bytes. */
static bool pem_public_der(const char *pem, size_t len, uint8_t *der,
			   size_t der_size, size_t *der_len)
{
	static const char begin[] = "-----BEGIN PUBLIC KEY-----\n";
	static const char end[] = "-----END PUBLIC KEY-----\n";
	size_t bl = sizeof begin - 1, el = sizeof end - 1;
	if (len < bl + el || memcmp(pem, begin, bl) != 0 ||
	    memcmp(pem + len - el, end, el) != 0)
		return false;
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0, pad = 0;
	for (size_t i = bl; i < len - el; i++) {
		int v = pem[i] == '\n' ? -2 : pem[i] == '=' ? -3 :
					      b64_value(pem[i]);
		if (v == -2)
			continue;
		if (v == -3 && ++pad <= 2)
			continue;
		if (v < 0 || pad)
			return false;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == der_size)
				return false;
			der[n++] = (uint8_t)(acc >> bits);
		}
	}
	*der_len = n;
	return true;
}

/* The raw key of a canonical SubjectPublicKeyInfo of alg; false when the
 * PEM is not in that form. */
static bool pem_public_raw(const char *pem, size_t len, enum ht_sign_alg alg,
			   uint8_t raw[RAW_KEY_BYTES_MAX], uint8_t *raw_len)
{
	const uint8_t *prefix = alg == HT_SIGN_SM2	 ? spki_sm2 :
				alg == HT_SIGN_ECDSA_P256 ? spki_p256 :
							    spki_ed25519;
	size_t plen = alg == HT_SIGN_ED25519 ? sizeof spki_ed25519 :
					       sizeof spki_sm2;
	size_t klen = alg == HT_SIGN_ED25519 ? 32 : 65;
	uint8_t der[128];
	size_t n = 0;
	if (!pem_public_der(pem, len, der, sizeof der, &n) ||
	    n != plen + klen || memcmp(der, prefix, plen) != 0)
		return false;
	memcpy(raw, der + plen, klen);
	*raw_len = (uint8_t)klen;
	return true;
}

/* The key's ht_key, made once: threads that race both make one, the
 * first compare-and-swap wins and the others free theirs. */
static enum ht_err key_material(struct vkey *k, const struct ht_key **out)
{
	*out = NULL;
	struct ht_key *p = atomic_load_explicit(&k->pub, memory_order_acquire);
	if (p == BAD_KEY)
		return HT_ERR_CORRUPT;
	if (p) {
		*out = p;
		return HT_OK;
	}
	struct ht_key *fresh = NULL;
	enum ht_err err =
		k->raw_len ? ht_key_from_public_raw(k->alg, k->raw, k->raw_len,
						    NULL, &fresh) :
			     ht_key_from_pem(k->pem, strlen(k->pem), NULL, &fresh);
	if (!err && ht_key_alg(fresh) != k->alg)
		err = HT_ERR_INVALID;
	if (err == HT_ERR_INVALID) {
		ht_key_destroy(fresh);
		fresh = BAD_KEY;
	} else if (err) {
		return err; /* not remembered: it may work next time */
	}
	struct ht_key *expected = NULL;
	if (!atomic_compare_exchange_strong_explicit(
		    &k->pub, &expected, fresh, memory_order_acq_rel,
		    memory_order_acquire)) {
		if (fresh != BAD_KEY)
			ht_key_destroy(fresh);
		fresh = expected;
	}
	if (fresh == BAD_KEY)
		return HT_ERR_CORRUPT;
	*out = fresh;
	return HT_OK;
}

/* ---- hash indexes ---- */

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 0x100000001b3u;
	}
	/* FNV's low bits mix poorly for ids that differ only at the end
	 * ("bank-0001", "bank-0002"): finish with murmur3's fmix64. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdu;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53u;
	return h ^ (h >> 33);
}

typedef const char *(*name_fn)(const struct ht_registry_view *v, uint32_t i);

static const char *part_name(const struct ht_registry_view *v, uint32_t i)
{
	return v->part[i].id;
}

static const char *key_name(const struct ht_registry_view *v, uint32_t i)
{
	return v->key[i].key_id;
}

static const char *serial_name(const struct ht_registry_view *v, uint32_t i)
{
	return v->key[i].serial;
}

/* Tables are at most half full, so a probe always ends at an empty slot. */
static uint32_t table_mask(uint32_t n)
{
	uint32_t cap = 16;
	while (cap < 2 * (uint64_t)n)
		cap *= 2;
	return cap - 1;
}

/* Insert entry i; false when an entry of the same name is there. */
static bool table_insert(uint32_t *t, uint32_t mask,
			 const struct ht_registry_view *v, name_fn name,
			 uint32_t i)
{
	const char *s = name(v, i);
	for (uint32_t h = (uint32_t)hash_str(s);; h++) {
		uint32_t slot = t[h & mask];
		if (slot == 0) {
			t[h & mask] = i + 1;
			return true;
		}
		if (!strcmp(name(v, slot - 1), s))
			return false;
	}
}

/* Index of the entry named s, or -1. */
static int64_t table_find(const uint32_t *t, uint32_t mask,
			  const struct ht_registry_view *v, name_fn name,
			  const char *s)
{
	for (uint32_t h = (uint32_t)hash_str(s);; h++) {
		uint32_t slot = t[h & mask];
		if (slot == 0)
			return -1;
		if (!strcmp(name(v, slot - 1), s))
			return slot - 1;
	}
}

/* ---- loading ---- */

static void view_free(struct ht_registry_view *v)
{
	for (uint32_t i = 0; v->key && i < v->n_key; i++) {
		struct ht_key *p = atomic_load_explicit(&v->key[i].pub,
							memory_order_acquire);
		if (p && p != BAD_KEY)
			ht_key_destroy(p);
		free(v->key[i].pem);
	}
	free(v->part);
	free(v->key);
	free(v->t_part);
	free(v->t_key);
	free(v->t_serial);
	free(v);
}

/* Copy a TEXT column of 1..max bytes without NULs into out. */
static bool col_text(sqlite3_stmt *st, int i, char *out, size_t max)
{
	if (sqlite3_column_type(st, i) != SQLITE_TEXT)
		return false;
	const char *s = (const char *)sqlite3_column_text(st, i);
	size_t len = (size_t)sqlite3_column_bytes(st, i);
	if (!s || len == 0 || len > max || strlen(s) != len)
		return false;
	memcpy(out, s, len + 1);
	return true;
}

/* An INTEGER column; nullable ones give 0 for NULL and must be > 0. */
static bool col_int(sqlite3_stmt *st, int i, bool nullable, int64_t *out)
{
	int type = sqlite3_column_type(st, i);
	if (nullable && type == SQLITE_NULL) {
		*out = 0;
		return true;
	}
	if (type != SQLITE_INTEGER)
		return false;
	*out = sqlite3_column_int64(st, i);
	return !nullable || *out > 0;
}

static bool serial_valid(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > HT_PKI_SERIAL_HEX_SIZE - 1)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static enum ht_err count_rows(sqlite3 *db, const char *sql, uint32_t max,
			      uint32_t *n)
{
	sqlite3_stmt *st = NULL;
	enum ht_err err = prep(db, sql, &st);
	if (err)
		return err;
	int rc = sqlite3_step(st);
	int64_t c = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return sql_fail(db, rc, sql);
	if (c < 0 || c > (int64_t)max)
		return HT_ERR_LIMIT;
	*n = (uint32_t)c;
	return HT_OK;
}

static enum ht_err read_part_row(sqlite3_stmt *st, struct vpart *p)
{
	char role[16];
	if (!col_text(st, 0, p->id, HT_REGISTRY_ID_BYTES_MAX) ||
	    !ht_registry_id_valid(p->id, strlen(p->id)) ||
	    !col_text(st, 1, role, sizeof role - 1) ||
	    ht_pki_role_parse(role, &p->role) != HT_OK ||
	    !col_int(st, 2, false, &p->created_s) ||
	    !col_int(st, 3, true, &p->revoked_s))
		return HT_ERR_CORRUPT;
	return HT_OK;
}

static enum ht_err load_participants(sqlite3 *db, struct ht_registry_view *v)
{
	sqlite3_stmt *st = NULL;
	enum ht_err err = prep(db,
			       "SELECT id, role, created_s, revoked_s"
			       " FROM participants ORDER BY id",
			       &st);
	uint32_t i = 0;
	int rc = SQLITE_DONE;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (i == v->n_part) {
			err = HT_ERR_CORRUPT; /* more rows than counted */
			break;
		}
		err = read_part_row(st, &v->part[i]);
		if (!err && !table_insert(v->t_part, v->mask_part, v, part_name, i))
			err = HT_ERR_CORRUPT;
		i++;
	}
	if (!err && rc != SQLITE_DONE)
		err = sql_fail(db, rc, "participants");
	if (!err && i != v->n_part)
		err = HT_ERR_CORRUPT;
	sqlite3_finalize(st);
	return err;
}

/* The public key column: the raw key of a canonical encoding, else a copy
 * of the PEM for ht_key_from_pem. */
static enum ht_err read_key_pem(sqlite3_stmt *st, int i, struct vkey *k)
{
	if (sqlite3_column_type(st, i) != SQLITE_TEXT)
		return HT_ERR_CORRUPT;
	const char *pem = (const char *)sqlite3_column_text(st, i);
	size_t len = (size_t)sqlite3_column_bytes(st, i);
	if (!pem || len == 0 || len > HT_PKI_PEM_BYTES_MAX ||
	    strlen(pem) != len)
		return HT_ERR_CORRUPT;
	if (pem_public_raw(pem, len, k->alg, k->raw, &k->raw_len))
		return HT_OK;
	k->pem = strdup(pem);
	return k->pem ? HT_OK : HT_ERR_NOMEM;
}

/* One key row: checked, tied to its participant (by index). */
static enum ht_err read_key_row(sqlite3_stmt *st, struct ht_registry_view *v,
				struct vkey *k)
{
	char pid[HT_REGISTRY_ID_BYTES_MAX + 1], alg[16];
	char want[HT_REGISTRY_KEY_ID_SIZE + 16];
	int64_t seq = 0, rev = 0;
	if (!col_text(st, 0, k->key_id, HT_REQSIG_KEY_ID_BYTES_MAX) ||
	    !col_text(st, 1, pid, HT_REGISTRY_ID_BYTES_MAX) ||
	    !col_int(st, 2, false, &seq) || seq < 1 ||
	    seq > HT_REGISTRY_KEY_SEQ_MAX ||
	    !col_text(st, 3, alg, sizeof alg - 1) ||
	    ht_sign_alg_parse(alg, &k->alg) != HT_OK ||
	    !col_text(st, 5, k->serial, HT_PKI_SERIAL_HEX_SIZE - 1) ||
	    !serial_valid(k->serial) ||
	    !col_int(st, 6, false, &k->cert_not_after_s) ||
	    !col_int(st, 7, false, &k->created_s) ||
	    !col_int(st, 8, true, &rev))
		return HT_ERR_CORRUPT;
	snprintf(want, sizeof want, "%s:%u", pid, (unsigned)seq);
	int64_t p = table_find(v->t_part, v->mask_part, v, part_name, pid);
	if (strcmp(want, k->key_id) != 0 || p < 0)
		return HT_ERR_CORRUPT;
	k->participant = (uint32_t)p;
	k->seq = (uint32_t)seq;
	int64_t prev = v->part[p].revoked_s;
	k->revoked_s = !rev ? prev : !prev ? rev : rev < prev ? rev : prev;
	return read_key_pem(st, 4, k);
}

/* Keys come grouped by participant (the same byte order as the
 * participants), oldest first: each group is a contiguous range. */
static enum ht_err place_key(struct ht_registry_view *v, uint32_t i,
			     int64_t *last)
{
	struct vkey *k = &v->key[i];
	struct vpart *p = &v->part[k->participant];
	if ((int64_t)k->participant < *last)
		return HT_ERR_CORRUPT;
	if ((int64_t)k->participant > *last) {
		p->key_first = i;
		*last = k->participant;
	}
	p->key_count++;
	HT_ASSERT(p->key_first + p->key_count == i + 1);
	if (!table_insert(v->t_key, v->mask_key, v, key_name, i) ||
	    !table_insert(v->t_serial, v->mask_key, v, serial_name, i))
		return HT_ERR_CORRUPT;
	return HT_OK;
}

static enum ht_err load_keys(sqlite3 *db, struct ht_registry_view *v)
{
	sqlite3_stmt *st = NULL;
	enum ht_err err = prep(db,
			       "SELECT key_id, participant, seq, alg,"
			       " public_key_pem, cert_serial, cert_not_after_s,"
			       " created_s, revoked_s"
			       " FROM keys ORDER BY participant, seq",
			       &st);
	uint32_t i = 0;
	int64_t last = -1;
	int rc = SQLITE_DONE;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (i == v->n_key) {
			err = HT_ERR_CORRUPT;
			break;
		}
		atomic_init(&v->key[i].pub, NULL);
		err = read_key_row(st, v, &v->key[i]);
		if (!err)
			err = place_key(v, i, &last);
		i++;
	}
	if (!err && rc != SQLITE_DONE)
		err = sql_fail(db, rc, "keys");
	if (!err && i != v->n_key)
		err = HT_ERR_CORRUPT;
	sqlite3_finalize(st);
	return err;
}

static enum ht_err view_alloc(uint32_t n_part, uint32_t n_key,
			      struct ht_registry_view **out)
{
	struct ht_registry_view *v = calloc(1, sizeof *v);
	if (!v)
		return HT_ERR_NOMEM;
	atomic_init(&v->refs, 1);
	v->n_part = n_part;
	v->n_key = n_key;
	v->mask_part = table_mask(n_part);
	v->mask_key = table_mask(n_key);
	v->part = calloc(n_part ? n_part : 1, sizeof *v->part);
	v->key = calloc(n_key ? n_key : 1, sizeof *v->key);
	v->t_part = calloc((size_t)v->mask_part + 1, sizeof *v->t_part);
	v->t_key = calloc((size_t)v->mask_key + 1, sizeof *v->t_key);
	v->t_serial = calloc((size_t)v->mask_key + 1, sizeof *v->t_serial);
	if (!v->part || !v->key || !v->t_part || !v->t_key || !v->t_serial) {
		v->n_key = 0;
		view_free(v);
		return HT_ERR_NOMEM;
	}
	*out = v;
	return HT_OK;
}

static enum ht_err data_version(sqlite3 *db, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	enum ht_err err = prep(db, "PRAGMA data_version", &st);
	if (err)
		return err;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? HT_OK : sql_fail(db, rc, "data_version");
}

/* Counts and rows in one read transaction (one snapshot). */
static enum ht_err view_read(sqlite3 *db, struct ht_registry_view **out)
{
	uint32_t n_part = 0, n_key = 0;
	struct ht_registry_view *v = NULL;
	enum ht_err err = exec(db, "BEGIN;");
	if (err)
		return err;
	err = count_rows(db, "SELECT COUNT(*) FROM participants",
			 HT_REGISTRY_PARTICIPANTS_MAX, &n_part);
	if (!err)
		err = count_rows(db, "SELECT COUNT(*) FROM keys",
				 HT_REGISTRY_KEYS_MAX, &n_key);
	if (!err)
		err = view_alloc(n_part, n_key, &v);
	if (!err)
		err = load_participants(db, v);
	if (!err)
		err = load_keys(db, v);
	exec(db, "COMMIT;");
	if (err) {
		if (v)
			view_free(v);
		return err;
	}
	*out = v;
	return HT_OK;
}

enum ht_err ht_registry_view_load(struct ht_registry *r,
				  struct ht_registry_view **out)
{
	HT_ASSERT(r != NULL && out != NULL);
	*out = NULL;
	/* The version first: a commit that lands between it and the read is
	 * in the view AND makes the next ht_registry_changed say true (one
	 * extra reload), never the reverse (a missed change). */
	int64_t version = 0;
	enum ht_err err = data_version(r->db, &version);
	if (!err)
		err = view_read(r->db, out);
	if (err)
		return err;
	r->data_version = version;
	r->loaded = true;
	return HT_OK;
}

struct ht_registry_view *ht_registry_view_ref(struct ht_registry_view *v)
{
	HT_ASSERT(v != NULL);
	size_t before = atomic_fetch_add_explicit(&v->refs, 1,
						  memory_order_relaxed);
	HT_ASSERT(before > 0);
	return v;
}

void ht_registry_view_unref(struct ht_registry_view *v)
{
	if (!v)
		return;
	/* acq_rel rather than release + an acquire fence: the same ordering
	 * for the last reference, and ThreadSanitizer understands it. */
	size_t before = atomic_fetch_sub_explicit(&v->refs, 1,
						  memory_order_acq_rel);
	HT_ASSERT(before > 0);
	if (before == 1)
		view_free(v);
}

enum ht_err ht_registry_changed(struct ht_registry *r, bool *changed)
{
	HT_ASSERT(r != NULL && changed != NULL);
	int64_t version = 0;
	enum ht_err err = data_version(r->db, &version);
	if (err)
		return err;
	*changed = !r->loaded || version != r->data_version;
	return HT_OK;
}

/* ---- lookups ---- */

static void fill_key(const struct ht_registry_view *v, uint32_t i,
		     struct ht_registry_key_info *out)
{
	const struct vkey *k = &v->key[i];
	const struct vpart *p = &v->part[k->participant];
	*out = (struct ht_registry_key_info){
		.key_id = k->key_id,
		.participant = p->id,
		.role = p->role,
		.seq = k->seq,
		.alg = k->alg,
		.public_key = NULL,
		.cert_serial = k->serial,
		.cert_not_after_s = k->cert_not_after_s,
		.created_s = k->created_s,
		.revoked_s = k->revoked_s,
	};
}

static void fill_part(const struct ht_registry_view *v, uint32_t i,
		      struct ht_registry_participant_info *out)
{
	const struct vpart *p = &v->part[i];
	*out = (struct ht_registry_participant_info){
		.id = p->id,
		.role = p->role,
		.created_s = p->created_s,
		.revoked_s = p->revoked_s,
		.key_first = p->key_first,
		.key_count = p->key_count,
	};
}

enum ht_err ht_registry_view_key(const struct ht_registry_view *v,
				 const char *key_id,
				 struct ht_registry_key_info *out)
{
	HT_ASSERT(v != NULL && out != NULL);
	memset(out, 0, sizeof *out);
	if (!key_id || strnlen(key_id, HT_REQSIG_KEY_ID_BYTES_MAX + 1) >
			       HT_REQSIG_KEY_ID_BYTES_MAX)
		return HT_ERR_NOT_FOUND;
	int64_t i = table_find(v->t_key, v->mask_key, v, key_name, key_id);
	if (i < 0)
		return HT_ERR_NOT_FOUND;
	fill_key(v, (uint32_t)i, out);
	/* The view is immutable but for this one atomic slot, which is why
	 * the const is cast away here and nowhere else. */
	struct vkey *k = (struct vkey *)&v->key[i];
	return key_material(k, &out->public_key);
}

enum ht_err ht_registry_view_cert(const struct ht_registry_view *v,
				  const char *serial_hex,
				  struct ht_registry_key_info *out)
{
	HT_ASSERT(v != NULL && out != NULL);
	memset(out, 0, sizeof *out);
	if (!serial_hex || strnlen(serial_hex, HT_PKI_SERIAL_HEX_SIZE) >=
				   HT_PKI_SERIAL_HEX_SIZE)
		return HT_ERR_NOT_FOUND;
	int64_t i = table_find(v->t_serial, v->mask_key, v, serial_name,
			       serial_hex);
	if (i < 0)
		return HT_ERR_NOT_FOUND;
	fill_key(v, (uint32_t)i, out);
	return HT_OK;
}

enum ht_err ht_registry_view_participant(
	const struct ht_registry_view *v, const char *id,
	struct ht_registry_participant_info *out)
{
	HT_ASSERT(v != NULL && out != NULL);
	memset(out, 0, sizeof *out);
	if (!id || strnlen(id, HT_REGISTRY_ID_BYTES_MAX + 1) >
			   HT_REGISTRY_ID_BYTES_MAX)
		return HT_ERR_NOT_FOUND;
	int64_t i = table_find(v->t_part, v->mask_part, v, part_name, id);
	if (i < 0)
		return HT_ERR_NOT_FOUND;
	fill_part(v, (uint32_t)i, out);
	return HT_OK;
}

size_t ht_registry_view_participant_count(const struct ht_registry_view *v)
{
	HT_ASSERT(v != NULL);
	return v->n_part;
}

size_t ht_registry_view_key_count(const struct ht_registry_view *v)
{
	HT_ASSERT(v != NULL);
	return v->n_key;
}

void ht_registry_view_participant_at(const struct ht_registry_view *v,
				     size_t i,
				     struct ht_registry_participant_info *out)
{
	HT_ASSERT(v != NULL && out != NULL);
	HT_ASSERT(i < v->n_part);
	fill_part(v, (uint32_t)i, out);
}

void ht_registry_view_key_at(const struct ht_registry_view *v, size_t i,
			     struct ht_registry_key_info *out)
{
	HT_ASSERT(v != NULL && out != NULL);
	HT_ASSERT(i < v->n_key);
	fill_key(v, (uint32_t)i, out);
}

bool ht_registry_revoked_at(int64_t revoked_s, int64_t at_s)
{
	return revoked_s != 0 && at_s >= revoked_s;
}

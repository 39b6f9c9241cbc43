/*
 * auth.c — who may talk to the hub: the hub CA and the server's TLS
 * identity, the participant registry (a refcounted view reloaded within
 * about a second of any change, so a revocation bites at once), request
 * signatures and the nonce cache that refuses replays.
 *
 * Owner: server. Worker threads call auth_certificate and auth_signature
 * for every request; the main thread calls auth_poll once a second. The
 * view pointer is swapped under view_lock and each request holds a
 * reference for the few microseconds it reads it. The nonce cache is
 * empty at every start, so a signature made before the hub started is
 * refused (stale_timestamp): nothing captured before a restart can be
 * replayed after it.
 */
#include "srv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static enum ht_err load_journal_key(struct server *s)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", s->o.data, HT_REGISTRY_FILE_HUB_KEY);
	FILE *f = fopen(path, "rb");
	if (!f)
		return HT_ERR_NOT_FOUND;
	char buf[8192];
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	struct ht_key *k = NULL;
	enum ht_err err = n == sizeof buf ? HT_ERR_LIMIT
					  : ht_key_from_pem(buf, n, NULL, &k);
	OPENSSL_cleanse(buf, sizeof buf);
	char *pem = NULL;
	size_t len = 0;
	if (!err)
		err = ht_key_public_pem(k, &pem, &len);
	if (!err && len >= sizeof s->journal_pub_pem)
		err = HT_ERR_LIMIT;
	if (!err) {
		memcpy(s->journal_pub_pem, pem, len);
		s->journal_pub_pem[len] = '\0';
		s->journal_sign = ht_key_alg(k);
	}
	free(pem);
	ht_key_destroy(k);
	return err;
}

enum ht_err auth_open(struct server *s)
{
	char *cert = NULL, *key = NULL;
	size_t cl = 0, kl = 0;
	enum ht_err err = ht_registry_load_pki(s->o.data, &s->ca, &cert, &cl,
					       &key, &kl);
	if (err) {
		fprintf(stderr, "huitong serve: the hub CA or server certificate"
				" is missing or unusable (%s): run `huitong init"
				" --data %s`\n",
			ht_strerror(err), s->o.data);
		return err;
	}
	s->server_cert_pem = cert;
	s->server_cert_len = cl;
	s->server_key_pem = key;
	s->server_key_len = kl;
	err = ht_registry_open(s->o.data, true, &s->reg);
	if (err) {
		fprintf(stderr, "huitong serve: cannot open the participant"
				" registry: %s\n", ht_strerror(err));
		return err;
	}
	struct ht_registry_view *v = NULL;
	err = ht_registry_view_load(s->reg, &v);
	if (err) {
		fprintf(stderr, "huitong serve: cannot load the registry: %s\n",
			ht_strerror(err));
		return err;
	}
	atomic_store(&s->view, v);
	err = ht_nonce_cache_create(HT_NONCE_CACHE_CAPACITY_DEFAULT,
				    HT_REQSIG_WINDOW_S, &s->nonces);
	if (err)
		return err;
	s->started_s = (uint64_t)now_s();
	err = load_journal_key(s);
	if (err)
		fprintf(stderr, "huitong serve: cannot read the journal key: %s\n",
			ht_strerror(err));
	return err;
}

void auth_close(struct server *s)
{
	ht_registry_view_unref(atomic_load(&s->view));
	ht_registry_close(s->reg);
	ht_nonce_cache_destroy(s->nonces);
	ht_pki_ca_destroy(s->ca);
	if (s->server_key_pem)
		OPENSSL_clear_free(s->server_key_pem, s->server_key_len);
	free(s->server_cert_pem);
}

void auth_poll(struct server *s)
{
	bool changed = false;
	if (ht_registry_changed(s->reg, &changed) || !changed)
		return;
	struct ht_registry_view *v = NULL;
	if (ht_registry_view_load(s->reg, &v)) {
		fprintf(stderr, "huitong serve: registry reload failed; keeping"
				" the previous view\n");
		return;
	}
	pthread_mutex_lock(&s->view_lock);
	struct ht_registry_view *old = atomic_load(&s->view);
	atomic_store(&s->view, v);
	pthread_mutex_unlock(&s->view_lock);
	ht_registry_view_unref(old);
}

static struct ht_registry_view *view_get(struct server *s)
{
	pthread_mutex_lock(&s->view_lock);
	struct ht_registry_view *v = ht_registry_view_ref(atomic_load(&s->view));
	pthread_mutex_unlock(&s->view_lock);
	return v;
}

bool auth_certificate(struct server *s, const struct ht_pki_identity *id,
		      int *status, const char **code, char *msg, size_t size)
{
	int64_t now = now_s();
	if (id->not_after_s <= now) {
		*status = 401;
		*code = "unauthenticated";
		snprintf(msg, size, "client certificate expired");
		return false;
	}
	struct ht_registry_view *v = view_get(s);
	struct ht_registry_key_info ki;
	bool ok = false;
	*status = 401;
	if (ht_registry_view_cert(v, id->serial_hex, &ki)) {
		*code = "unauthenticated";
		snprintf(msg, size, "client certificate %s is not registered",
			 id->serial_hex);
	} else if (strcmp(ki.participant, id->id)) {
		*code = "unauthenticated";
		snprintf(msg, size, "client certificate %s does not belong to %s",
			 id->serial_hex, id->id);
	} else if (ht_registry_revoked_at(ki.revoked_s, now)) {
		*code = "revoked";
		snprintf(msg, size, "client certificate %s of %s is revoked",
			 id->serial_hex, id->id);
	} else {
		ok = true;
	}
	ht_registry_view_unref(v);
	return ok;
}

bool auth_signature(struct server *s, const struct ht_pki_identity *id,
		    const char *header, const char *method, const char *uri,
		    const void *body, size_t body_len, char *key_id_out,
		    int *status, const char **code, char *msg, size_t size)
{
	struct ht_reqsig sig;
	*status = 401;
	*code = "bad_signature";
	enum ht_reqsig_result r = ht_reqsig_parse(header, strlen(header), &sig);
	if (r != HT_REQSIG_OK) {
		snprintf(msg, size, HT_REQSIG_HEADER_NAME ": %s",
			 ht_reqsig_result_name(r));
		return false;
	}
	/* the key it claims, for the access log even if refused below */
	snprintf(key_id_out, HT_REQSIG_KEY_ID_BYTES_MAX + 1, "%s", sig.key_id);
	int64_t now = now_s();
	if (sig.ts < s->started_s) {
		*code = "stale_timestamp";
		snprintf(msg, size, "signed at %llu, before the hub started"
				    " (%llu): sign again",
			 (unsigned long long)sig.ts,
			 (unsigned long long)s->started_s);
		return false;
	}
	struct ht_registry_view *v = view_get(s);
	struct ht_registry_key_info ki;
	bool ok = false;
	if (ht_registry_view_key(v, sig.key_id, &ki) ||
	    strcmp(ki.participant, id->id)) {
		/* an unknown key and another participant's key look alike */
		snprintf(msg, size, "key %s is not a signing key of %s",
			 sig.key_id, id->id);
		goto out;
	}
	if (ht_registry_revoked_at(ki.revoked_s, now)) {
		*code = "revoked";
		snprintf(msg, size, "signing key %s is revoked", sig.key_id);
		goto out;
	}
	if (ht_reqsig_verify(&sig, ki.public_key, method, uri, body, body_len,
			     (uint64_t)now, HT_REQSIG_WINDOW_S, &r)) {
		*status = 500;
		*code = "internal";
		snprintf(msg, size, "signature check failed");
		goto out;
	}
	if (r == HT_REQSIG_STALE_TIMESTAMP) {
		*code = "stale_timestamp";
		snprintf(msg, size, "timestamp %llu is more than %u s from the"
				    " hub's clock %lld",
			 (unsigned long long)sig.ts, HT_REQSIG_WINDOW_S,
			 (long long)now);
		goto out;
	}
	if (r != HT_REQSIG_OK) {
		snprintf(msg, size, "signature does not verify (%s)",
			 ht_reqsig_result_name(r));
		goto out;
	}
	pthread_mutex_lock(&s->nonce_lock);
	enum ht_err err = ht_nonce_cache_check_and_add(
		s->nonces, sig.key_id, sig.nonce, sig.ts, (uint64_t)now, &r);
	pthread_mutex_unlock(&s->nonce_lock);
	if (err || r == HT_REQSIG_NONCE_CACHE_FULL) {
		*status = 503;
		*code = "overloaded";
		snprintf(msg, size, "the nonce cache is full; retry later");
		goto out;
	}
	if (r == HT_REQSIG_REPLAYED_NONCE) {
		*code = "replayed_nonce";
		snprintf(msg, size, "nonce already used with key %s", sig.key_id);
		goto out;
	}
	if (r != HT_REQSIG_OK) {
		snprintf(msg, size, "%s", ht_reqsig_result_name(r));
		goto out;
	}
	ok = true;
out:
	ht_registry_view_unref(v);
	return ok;
}

#!/usr/bin/env bash
# api_security.sh — black-box security checks against a real `huitong
# serve`: unauthenticated, wrong-certificate, wrong-key, tampered-body,
# replayed and stale requests are refused (and logged); a participant
# cannot read or move another's accounts; the regulator cannot write.
#
# One server on 127.0.0.1:0 over a fresh store in a temporary directory;
# requests are made with curl (mutual TLS with the credentials `huitong
# participant add` writes) and signed with build/tool_sign_request, so a
# test can sign one thing and send another. Python's http.client keeps a
# connection open across a revocation. Groups:
#   certificates  no client certificate; a certificate of another hub's CA
#                 (same participant id!); the hub's own server certificate
#                 presented as a client certificate;
#   revocation    a revoked participant is refused within ~1 s, also on a
#                 keep-alive connection opened before; a rotated key (grace
#                 0): the old credentials and the old key id are refused,
#                 the new ones work;
#   signatures    bankB's key under bankA's key id; bankB's own key id over
#                 bankA's certificate; a tampered body, path and method;
#                 a replayed nonce; stale timestamps both ways; a missing
#                 and a malformed header; a signed GET with a bad signature;
#   roles         ownership of accounts and transfers between two banks, a
#                 pending transfer another bank may not void, the regulator
#                 (reads all, writes nothing), /metrics, the operator;
#   access log    `huitong audit access-log` verifies the chain, holds one
#                 entry per request sent, and --tail --json shows the
#                 expected participant, status and outcome for a sample of
#                 the refused requests.
# After every group the server must still answer /healthz promptly.
#
#   HUITONG   the binary (ctest sets it; default build/huitong)
#   HT_BUILD  the build directory holding tool_sign_request (default: the
#             binary's directory)
#   HT_KEEP=1 keep the temporary directory
# Prints one line per check; ends with "N passed, M failed"; exits 1 on
# any failure.
set -uo pipefail

src=${HT_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${HUITONG:-$src/build/huitong}
build=${HT_BUILD:-$(dirname "$bin")}
tool=$build/tool_sign_request
for f in "$bin" "$tool"; do
	if [ ! -x "$f" ]; then
		echo "api_security: missing $f (set HUITONG / HT_BUILD)" >&2
		echo "0 passed, 1 failed"
		exit 1
	fi
done
if ! command -v curl >/dev/null; then
	echo "api_security: curl is required" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ht-api-sec-XXXXXX")
cleanup() {
	local pid
	for f in "$tmp"/serve.pid; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
	done
	if [ "${HT_KEEP:-}" = 1 ] || [ -f "$tmp/keep" ]; then
		echo "(kept $tmp)"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

timeout -k 5 170 python3 - "$bin" "$tool" "$tmp" <<'PY'
import http.client, json, os, re, signal, socket, ssl, subprocess, sys, time

BIN, TOOL, TMP = sys.argv[1:4]
DATA = os.path.join(TMP, "data")
CREDS = os.path.join(TMP, "creds")
T0 = time.time()
passed = failed = 0
n_requests = 0          # HTTP requests sent to the server (each is logged)
log_expect = []         # (name, participant, method, path, status, outcome)


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {name}")
    else:
        failed += 1
        print(f"FAIL  {name}" + (f": {detail}" if detail else ""))
    sys.stdout.flush()
    return ok


def run(args, **kw):
    return subprocess.run([BIN] + args, capture_output=True, text=True,
                          timeout=60, **kw)


def bail(msg):
    print("FAIL  setup:", msg)
    open(os.path.join(TMP, "keep"), "w").close()
    print(f"{passed} passed, {failed + 1} failed")
    sys.exit(1)


def add(data, who, role, out, alg="sm2"):
    p = run(["participant", "add", "--data", data, "--id", who, "--role",
             role, "--alg", alg, "--out", out])
    if p.returncode:
        bail(f"participant add {who}: {p.stderr.strip()}")
    return out


# ---- the hub, its participants, a second hub ------------------------------
os.makedirs(CREDS)
if run(["init", "--data", DATA]).returncode:
    bail("init failed")
cred = {}
for who, role in (("bankA", "participant"), ("bankB", "participant"),
                  ("bankX", "participant"), ("bankR", "participant"),
                  ("op", "operator"), ("reg", "regulator")):
    cred[who] = add(DATA, who, role, os.path.join(CREDS, who))
CA = os.path.join(cred["bankA"], "ca.crt")

OTHER = os.path.join(TMP, "other-hub")
if run(["init", "--data", OTHER]).returncode:
    bail("init of the second hub failed")
os.makedirs(os.path.join(TMP, "other-creds"))
foreign = add(OTHER, "bankA", "participant",
              os.path.join(TMP, "other-creds", "bankA"))

ready = os.path.join(TMP, "addr")
srv = subprocess.Popen([BIN, "serve", "--data", DATA, "--listen", "127.0.0.1:0",
                        "--ready-file", ready, "--quiet", "--timeout", "5"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=open(os.path.join(TMP, "serve.log"), "w"))
with open(os.path.join(TMP, "serve.pid"), "w") as f:
    f.write(str(srv.pid))


def stop_server(*_):
    if srv.poll() is None:
        srv.kill()
    sys.exit(130)


signal.signal(signal.SIGTERM, stop_server)
for _ in range(500):
    if os.path.exists(ready) and open(ready).read().strip():
        break
    if srv.poll() is not None:
        bail(f"serve exited {srv.returncode}: "
             + open(os.path.join(TMP, "serve.log")).read()[-500:])
    time.sleep(0.02)
else:
    bail("serve did not write its ready file")
T_READY = int(time.time())   # >= the hub's start time, in unix seconds
ADDR = open(ready).read().strip()
HOST, PORT = ADDR.rsplit(":", 1)
PORT = int(PORT)
URL = "https://" + ADDR
print(f"api_security: server {URL}, data {DATA}")


# ---- requests ----------------------------------------------------------------
class Resp:
    def __init__(self, status, ctype, body, secs):
        self.status, self.ctype, self.body, self.secs = status, ctype, body, secs
        try:
            self.json = json.loads(body) if body.strip() else None
        except ValueError:
            self.json = None

    def code(self):
        return self.json.get("code") if isinstance(self.json, dict) else None

    def __repr__(self):
        return f"{self.status} {self.ctype} {self.body[:300]!r}"


_seq = [0]


def tmpfile(data):
    _seq[0] += 1
    path = os.path.join(TMP, f"body{_seq[0] % 8}")
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return path


def sign(key_dir, key_id, method, path, body=b"", ts=None, nonce=None):
    args = [TOOL, "--key", os.path.join(key_dir, "signing.key"), "--key-id",
            key_id, "--method", method, "--path", path]
    if body:
        args += ["--body", tmpfile(body)]
    if ts is not None:
        args += ["--ts", str(ts)]
    if nonce is not None:
        args += ["--nonce", nonce]
    p = subprocess.run(args, capture_output=True, text=True, timeout=30)
    if p.returncode:
        bail(f"tool_sign_request {args[1:]}: {p.stderr.strip()}")
    return p.stdout.strip()


def curl(method, path, cert=None, body=None, sig=None, headers=()):
    """One request over a new connection. cert: a credentials directory
    (client.crt/client.key) or None for no client certificate."""
    global n_requests
    out = tmpfile(b"")
    args = ["curl", "-s", "-S", "--path-as-is", "--max-time", "20",
            "--cacert", CA, "-o", out, "-w", "%{http_code}|%{content_type}",
            "-X", method]
    if cert:
        args += ["--cert", os.path.join(cert, "client.crt"),
                 "--key", os.path.join(cert, "client.key")]
    if sig is not None:
        args += ["-H", f"Huitong-Signature: {sig}"]
    for h in headers:
        args += ["-H", h]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "-H", "Expect:",
                 "--data-binary", "@" + tmpfile(body)]
    t = time.time()
    p = subprocess.run(args + [URL + path], capture_output=True, text=True,
                       timeout=30)
    secs = time.time() - t
    n_requests += 1
    st, _, ct = p.stdout.partition("|")
    try:
        status = int(st)
    except ValueError:
        status = 0
    if status == 0:
        n_requests -= 1   # nothing reached the server's HTTP layer
    return Resp(status, ct, open(out, "rb").read().decode("utf-8", "replace"),
                secs)


def call(who, method, path, obj=None, signed=None, key_dir=None, key_id=None,
         cert=None):
    """A request as `who` (credentials name or dir), signed when it is a
    POST (or when signed=True)."""
    d = cred.get(who, who)
    body = None if obj is None else (obj if isinstance(obj, (str, bytes))
                                     else json.dumps(obj))
    if signed is None:
        signed = method == "POST"
    sig = None
    if signed:
        raw = body.encode() if isinstance(body, str) else (body or b"")
        sign_as = key_id or KID.get(who) or f"{who}:1"
        sig = sign(key_dir or d, sign_as, method, path, raw)
    return curl(method, path, cert=cert or d, body=body, sig=sig)


def err_is(name, r, status, code, msg_re=None):
    ok = (r.status == status and r.ctype.startswith("application/json")
          and isinstance(r.json, dict) and r.json.get("code") == code
          and isinstance(r.json.get("message"), str) and r.json["message"]
          and set(r.json) == {"code", "message"})
    if ok and msg_re and not re.search(msg_re, r.json["message"]):
        ok = False
    return check(name, ok, f"expected {status} {code}"
                 + (f" /{msg_re}/" if msg_re else "") + f", got {r!r}")


def alive(group):
    r = curl("GET", "/healthz", cert=cred["bankA"])
    check(f"{group}: the server still serves /healthz promptly",
          r.status == 200 and r.json and r.json.get("status") == "ok"
          and r.secs < 3 and srv.poll() is None,
          f"{r!r} in {r.secs:.1f} s, server exit {srv.poll()}")


def logged(name, participant, method, path, status, outcome):
    log_expect.append((name, participant, method, path, status, outcome))


KID = {}
for who, d in cred.items():
    cj = json.load(open(os.path.join(d, "credentials.json")))
    KID[who] = cj.get("signing_key_id") or f"{who}:1"
check("setup: credentials name key ids <id>:1",
      all(KID[w] == f"{w}:1" for w in KID), str(KID))

r = call("bankA", "GET", "/healthz")
check("setup: bankA GET /healthz is 200", r.status == 200, repr(r))

# ---- certificates -------------------------------------------------------------
G = "certificates"
r = curl("GET", "/healthz", cert=None)
err_is(f"{G}: no client certificate -> 401 unauthenticated", r, 401,
       "unauthenticated")
logged("no certificate", "", "GET", "/healthz", 401, "unauthenticated")
r = curl("POST", "/v1/accounts", cert=None,
         body=json.dumps({"accounts": [{"id": "900", "ledger": 1, "code": 1}]}),
         sig=sign(cred["bankA"], "bankA:1", "POST", "/v1/accounts",
                  json.dumps({"accounts": [{"id": "900", "ledger": 1, "code": 1}]}).encode()))
err_is(f"{G}: no client certificate, validly signed POST -> 401 unauthenticated",
       r, 401, "unauthenticated")

r = curl("GET", "/v1/journal/head", cert=foreign)
err_is(f"{G}: another hub's certificate (same id bankA) -> 401 unauthenticated"
       " naming the reason", r, 401, "unauthenticated", r"untrusted")
logged("foreign certificate", "", "GET", "/v1/journal/head", 401,
       "unauthenticated")
body = json.dumps({"accounts": [{"id": "901", "ledger": 1, "code": 1}]})
r = curl("POST", "/v1/accounts", cert=foreign, body=body,
         sig=sign(foreign, "bankA:1", "POST", "/v1/accounts", body.encode()))
err_is(f"{G}: another hub's certificate and its own signing key -> 401"
       " unauthenticated", r, 401, "unauthenticated")

p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                    "--tlsv1.2", "--tls-max", "1.2", "--cacert", CA,
                    "--cert", os.path.join(cred["bankA"], "client.crt"),
                    "--key", os.path.join(cred["bankA"], "client.key"),
                    URL + "/healthz"], capture_output=True, text=True,
                   timeout=30)
check(f"{G}: a TLS 1.2 client (valid certificate) is refused in the handshake",
      p.returncode != 0 and p.stdout in ("000", ""),
      f"curl exit {p.returncode}, status {p.stdout}")

# the hub's server certificate is issued by the hub CA but is no client cert
srvcert = os.path.join(TMP, "srvcert")
os.makedirs(srvcert)
for a, b in (("server.crt", "client.crt"), ("server.key", "client.key")):
    with open(os.path.join(DATA, a), "rb") as f, \
            open(os.path.join(srvcert, b), "wb") as g:
        g.write(f.read())
os.chmod(os.path.join(srvcert, "client.key"), 0o600)
r = curl("GET", "/healthz", cert=srvcert)
err_is(f"{G}: the hub's server certificate as a client certificate -> 401"
       " unauthenticated", r, 401, "unauthenticated")
alive(G)

# ---- revocation and rotation --------------------------------------------------
G = "revocation"
conn_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
conn_ctx.load_verify_locations(CA)
conn_ctx.load_cert_chain(os.path.join(cred["bankX"], "client.crt"),
                         os.path.join(cred["bankX"], "client.key"))
ka = http.client.HTTPSConnection(HOST, PORT, context=conn_ctx, timeout=10)


def ka_get(path):
    global n_requests
    n_requests += 1
    ka.request("GET", path)
    resp = ka.getresponse()
    body = resp.read().decode("utf-8", "replace")
    return Resp(resp.status, resp.getheader("Content-Type") or "", body, 0)


r = ka_get("/v1/journal/head")
check(f"{G}: bankX (keep-alive connection) reads before the revocation",
      r.status == 200, repr(r))
r = call("bankX", "POST", "/v1/accounts",
         {"accounts": [{"id": "50", "ledger": 1, "code": 1}]})
check(f"{G}: bankX creates account 50 before the revocation",
      r.status == 200 and r.json["results"][0]["result"] == "ok", repr(r))
p = run(["participant", "revoke", "--data", DATA, "--id", "bankX"])
check(f"{G}: participant revoke bankX exits 0", p.returncode == 0, p.stderr)
t = time.time()
r = None
while time.time() - t < 4:
    r = curl("GET", "/healthz", cert=cred["bankX"])
    if r.status != 200:
        break
    time.sleep(0.1)
took = time.time() - t
err_is(f"{G}: revoked bankX (new connection) -> 401 revoked", r, 401, "revoked")
check(f"{G}: the revocation bites within ~1 s (took {took:.1f} s)", took < 2.5)
logged("revoked participant", "bankX", "GET", "/healthz", 401, "revoked")
try:
    r = ka_get("/v1/journal/head")
    err_is(f"{G}: revoked bankX on the keep-alive connection opened before"
           " -> 401 revoked", r, 401, "revoked")
except (OSError, http.client.HTTPException) as e:
    n_requests -= 1
    check(f"{G}: revoked bankX on the keep-alive connection opened before"
          " -> 401 revoked", False, f"connection failed: {e!r}")
ka.close()
r = call("bankX", "POST", "/v1/accounts",
         {"accounts": [{"id": "51", "ledger": 1, "code": 1}]})
err_is(f"{G}: revoked bankX signed POST -> 401 revoked", r, 401, "revoked")
r = call("op", "GET", "/v1/accounts/51")
check(f"{G}: ... and account 51 does not exist", r.status == 404, repr(r))
r = call("op", "GET", "/v1/accounts/50")
check(f"{G}: bankX's account 50 from before the revocation stays",
      r.status == 200, repr(r))

# rotation with grace 0
old_r = cred["bankR"]
new_r = os.path.join(CREDS, "bankR-2")
r = call("bankR", "POST", "/v1/accounts",
         {"accounts": [{"id": "60", "ledger": 1, "code": 1}]})
check(f"{G}: bankR (key bankR:1) creates account 60 before rotating",
      r.status == 200 and r.json["results"][0]["result"] == "ok", repr(r))
p = run(["participant", "rotate", "--data", DATA, "--id", "bankR", "--grace",
         "0", "--out", new_r])
check(f"{G}: participant rotate bankR --grace 0 exits 0", p.returncode == 0,
      p.stderr)
cj = json.load(open(os.path.join(new_r, "credentials.json")))
new_kid = cj.get("signing_key_id") or "bankR:2"
check(f"{G}: the rotated key id is bankR:2", new_kid == "bankR:2", new_kid)
t = time.time()
while time.time() - t < 4:
    r = curl("GET", "/healthz", cert=old_r)
    if r.status != 200:
        break
    time.sleep(0.1)
took = time.time() - t
err_is(f"{G}: bankR's old certificate after rotate -> 401 revoked", r, 401,
       "revoked")
check(f"{G}: the rotation bites within ~1 s (took {took:.1f} s)", took < 2.5)
body = json.dumps({"accounts": [{"id": "61", "ledger": 1, "code": 1}]})
r = curl("POST", "/v1/accounts", cert=new_r, body=body,
         sig=sign(old_r, "bankR:1", "POST", "/v1/accounts", body.encode()))
err_is(f"{G}: new certificate, old key id bankR:1 -> 401 revoked", r, 401,
       "revoked")
logged("rotated key", "bankR", "POST", "/v1/accounts", 401, "revoked")
r = curl("POST", "/v1/accounts", cert=old_r, body=body,
         sig=sign(new_r, new_kid, "POST", "/v1/accounts", body.encode()))
err_is(f"{G}: old certificate, new key -> 401 revoked", r, 401, "revoked")
r = curl("POST", "/v1/accounts", cert=new_r, body=body,
         sig=sign(new_r, new_kid, "POST", "/v1/accounts", body.encode()))
check(f"{G}: the new credentials (bankR:2) create account 61",
      r.status == 200 and r.json["results"][0]["result"] == "ok", repr(r))
r = curl("GET", "/v1/accounts/60", cert=new_r)
check(f"{G}: bankR's new credentials still read its account 60",
      r.status == 200 and r.json and r.json.get("id") == "60", repr(r))
alive(G)

# ---- signatures -------------------------------------------------------------------
G = "signatures"
A, B = cred["bankA"], cred["bankB"]


def acct(i):
    return json.dumps({"accounts": [{"id": str(i), "ledger": 1, "code": 1}]})


def exists(i):
    r = call("op", "GET", f"/v1/accounts/{i}")
    return r.status == 200


b = acct(100)
r = curl("POST", "/v1/accounts", cert=A, body=b,
         sig=sign(B, "bankA:1", "POST", "/v1/accounts", b.encode()))
err_is(f"{G}: bankB's key under key id bankA:1 over bankA's certificate -> 401"
       " bad_signature", r, 401, "bad_signature")
logged("wrong key", "bankA", "POST", "/v1/accounts", 401, "bad_signature")
r = curl("POST", "/v1/accounts", cert=A, body=b,
         sig=sign(B, "bankB:1", "POST", "/v1/accounts", b.encode()))
err_is(f"{G}: bankB's own key id over bankA's certificate -> 401 bad_signature",
       r, 401, "bad_signature")
r = curl("POST", "/v1/accounts", cert=A, body=b,
         sig=sign(A, "nobody:7", "POST", "/v1/accounts", b.encode()))
err_is(f"{G}: an unknown key id -> 401 bad_signature", r, 401, "bad_signature")
r = curl("POST", "/v1/accounts", cert=A, body=acct(101),
         sig=sign(A, "bankA:1", "POST", "/v1/accounts", acct(100).encode()))
err_is(f"{G}: tampered body (signed 100, sent 101) -> 401 bad_signature", r,
       401, "bad_signature")
b = json.dumps({"transfers": []})
r = curl("POST", "/v1/transfers", cert=A, body=acct(102),
         sig=sign(A, "bankA:1", "POST", "/v1/accounts", acct(102).encode()))
err_is(f"{G}: tampered path (signed /v1/accounts, sent /v1/transfers) -> 401"
       " bad_signature", r, 401, "bad_signature")
r = curl("POST", "/v1/accounts", cert=A, body=acct(103),
         sig=sign(A, "bankA:1", "PUT", "/v1/accounts", acct(103).encode()))
err_is(f"{G}: tampered method (signed PUT, sent POST) -> 401 bad_signature", r,
       401, "bad_signature")
r = curl("POST", "/v1/accounts", cert=A, body=acct(104),
         sig=sign(A, "bankA:1", "POST", "/v1/accounts", b""))
err_is(f"{G}: signature over an empty body, body sent -> 401 bad_signature", r,
       401, "bad_signature")
check(f"{G}: none of accounts 100..104 was created",
      not any(exists(i) for i in range(100, 105)))

b = acct(110)
h = sign(A, "bankA:1", "POST", "/v1/accounts", b.encode())
r1 = curl("POST", "/v1/accounts", cert=A, body=b, sig=h)
check(f"{G}: a signed create of account 110 -> 200 ok",
      r1.status == 200 and r1.json["results"][0]["result"] == "ok", repr(r1))
r2 = curl("POST", "/v1/accounts", cert=A, body=b, sig=h)
err_is(f"{G}: the same signed request again -> 401 replayed_nonce", r2, 401,
       "replayed_nonce")
logged("replayed", "bankA", "POST", "/v1/accounts", 401, "replayed_nonce")
b = acct(111)
nonce = "fixed-nonce-0123456789"
r1 = curl("POST", "/v1/accounts", cert=A, body=b,
          sig=sign(A, "bankA:1", "POST", "/v1/accounts", b.encode(), nonce=nonce))
r2 = curl("POST", "/v1/accounts", cert=A, body=acct(112),
          sig=sign(A, "bankA:1", "POST", "/v1/accounts", acct(112).encode(),
                   nonce=nonce))
err_is(f"{G}: a fresh signature reusing a nonce -> 401 replayed_nonce", r2, 401,
       "replayed_nonce")
check(f"{G}: ... and account 112 was not created", not exists(112))

now = int(time.time())
for dt in (-1000, 1000):
    b = acct(120 + (dt > 0))
    r = curl("POST", "/v1/accounts", cert=A, body=b,
             sig=sign(A, "bankA:1", "POST", "/v1/accounts", b.encode(),
                      ts=now + dt))
    err_is(f"{G}: timestamp now{dt:+d} s -> 401 stale_timestamp", r, 401,
           "stale_timestamp")
logged("stale", "bankA", "POST", "/v1/accounts", 401, "stale_timestamp")
# Inside the window: the hub's start (T_READY) .. now + 300. A ts before the
# hub started is refused by design (docs/internals/reqsig.md, "Restart",
# mitigation 1: the nonce cache is empty after a start).
b = acct(122)
r = curl("POST", "/v1/accounts", cert=A, body=b,
         sig=sign(A, "bankA:1", "POST", "/v1/accounts", b.encode(),
                  ts=T_READY))
check(f"{G}: timestamp now-{now - T_READY} s (after the hub started) -> 200",
      r.status == 200, repr(r))
b = acct(123)
r = curl("POST", "/v1/accounts", cert=A, body=b,
         sig=sign(A, "bankA:1", "POST", "/v1/accounts", b.encode(),
                  ts=now + 200))
check(f"{G}: timestamp now+200 s (inside the window) -> 200",
      r.status == 200, repr(r))
b = acct(124)
r = curl("POST", "/v1/accounts", cert=A, body=b,
         sig=sign(A, "bankA:1", "POST", "/v1/accounts", b.encode(),
                  ts=T_READY - 60))
err_is(f"{G}: timestamp 60 s before the hub started -> 401 stale_timestamp",
       r, 401, "stale_timestamp", r"before the hub started")
check(f"{G}: accounts 120, 121 and 124 were not created",
      not exists(120) and not exists(121) and not exists(124))

r = curl("POST", "/v1/accounts", cert=A, body=acct(130))
err_is(f"{G}: POST without Huitong-Signature -> 401 missing_signature", r, 401,
       "missing_signature")
logged("missing signature", "bankA", "POST", "/v1/accounts", 401,
       "missing_signature")
r = curl("POST", "/v1/accounts/lookup", cert=A, body=json.dumps({"ids": ["1"]}))
err_is(f"{G}: lookup POST without Huitong-Signature -> 401 missing_signature",
       r, 401, "missing_signature")
r = curl("POST", "/v1/accounts", cert=A, body=acct(131), sig="v1 garbage")
err_is(f"{G}: malformed Huitong-Signature -> 401 bad_signature", r, 401,
       "bad_signature")
r = curl("POST", "/v1/accounts", cert=A, body=acct(132), sig="x" * 3000)
err_is(f"{G}: a 3000-byte Huitong-Signature -> 401 bad_signature", r, 401,
       "bad_signature")
h = sign(A, "bankA:1", "GET", "/v1/journal/head")
h_bad = re.sub(r'sig="(.)', lambda m: 'sig="' + ("A" if m.group(1) != "A" else "B"), h)
r = curl("GET", "/v1/journal/head", cert=A, sig=h_bad)
err_is(f"{G}: a signed GET whose signature does not verify -> 401"
       " bad_signature", r, 401, "bad_signature")
r = curl("GET", "/v1/journal/head", cert=A, sig=h)
check(f"{G}: a correctly signed GET -> 200", r.status == 200, repr(r))
q = "/v1/accounts/110/transfers?limit=5"
r = curl("GET", q, cert=A, sig=sign(A, "bankA:1", "GET", q))
check(f"{G}: a signed GET with a query (signed over path and query) -> 200",
      r.status == 200, repr(r))
r = curl("GET", "/v1/accounts/110/transfers?limit=6", cert=A,
         sig=sign(A, "bankA:1", "GET", q))
err_is(f"{G}: tampered query (signed limit=5, sent limit=6) -> 401"
       " bad_signature", r, 401, "bad_signature")
check(f"{G}: none of accounts 130..132 was created",
      not any(exists(i) for i in range(130, 133)))
alive(G)

# ---- roles and ownership -----------------------------------------------------------
G = "roles"


def create_accounts(who, ids, flags=()):
    return call(who, "POST", "/v1/accounts",
                {"accounts": [{"id": str(i), "ledger": 1, "code": 1,
                               "flags": list(flags)} for i in ids]})


def xfer(tid, dr, cr, amount, flags=(), pending_id=None):
    t = {"id": str(tid), "debit_account_id": str(dr),
         "credit_account_id": str(cr), "amount": str(amount), "ledger": 1,
         "code": 1}
    if flags:
        t["flags"] = list(flags)
    if pending_id is not None:
        t["pending_id"] = str(pending_id)
    return t


def results(r):
    try:
        return [x["result"] for x in r.json["results"]]
    except (TypeError, KeyError):
        return None


r = create_accounts("bankA", [1, 2])
check(f"{G}: bankA creates accounts 1, 2", results(r) == ["ok", "ok"], repr(r))
r = create_accounts("bankB", [3, 4])
check(f"{G}: bankB creates accounts 3, 4", results(r) == ["ok", "ok"], repr(r))
r = call("bankA", "POST", "/v1/transfers", {"transfers": [xfer(1000, 1, 2, 50)]})
check(f"{G}: bankA moves 50 from its account 1 to its account 2",
      results(r) == ["ok"], repr(r))
before = call("bankA", "GET", "/v1/accounts/1").json
check(f"{G}: bankA reads its account 1", isinstance(before, dict)
      and before.get("debits_posted") == "50", repr(before))

r = call("bankB", "POST", "/v1/transfers", {"transfers": [xfer(2000, 1, 3, 10)]})
err_is(f"{G}: bankB debiting bankA's account 1 -> 403 forbidden", r, 403,
       "forbidden", r"1")
logged("debit another's account", "bankB", "POST", "/v1/transfers", 403,
       "forbidden")
r = call("bankB", "POST", "/v1/transfers",
         {"transfers": [xfer(2001, 3, 4, 5), xfer(2002, 2, 4, 5)]})
err_is(f"{G}: bankB batch whose 2nd transfer debits bankA's account 2 -> 403"
       " forbidden naming index 1", r, 403, "forbidden", r"\[1\]|index 1")
r = call("bankB", "POST", "/v1/transfers",
         {"transfers": [xfer(2003, 1, 3, 10, flags=["pending"])]})
err_is(f"{G}: bankB pending transfer debiting bankA's account 1 -> 403", r, 403,
       "forbidden")
after = call("bankA", "GET", "/v1/accounts/1").json
check(f"{G}: bankA's account 1 is unchanged after the refused transfers",
      after == before, f"{before} -> {after}")
r = call("op", "POST", "/v1/transfers/lookup",
         {"ids": ["2000", "2001", "2002", "2003"]})
check(f"{G}: none of transfers 2000..2003 exists (a refused request changes"
      " nothing)", r.status == 200 and r.json.get("transfers") == [], repr(r))

r = call("bankB", "GET", "/v1/accounts/1")
err_is(f"{G}: bankB GET /v1/accounts/1 (bankA's) -> 404", r, 404, "not_found")
logged("read another's account", "bankB", "GET", "/v1/accounts/1", 404,
       "not_found")
r = call("bankB", "GET", "/v1/accounts/999999")
err_is(f"{G}: bankB GET /v1/accounts/999999 (no such account) -> 404", r, 404,
       "not_found")
for q in ("transfers", "balances"):
    # another's account must look exactly like one that does not exist
    r = call("bankB", "GET", f"/v1/accounts/1/{q}")
    r0 = call("bankB", "GET", f"/v1/accounts/999999/{q}")
    check(f"{G}: bankB GET /v1/accounts/1/{q} (bankA's) answers as for no"
          f" such account ({r.status}) and lists nothing",
          r.status == r0.status and r.json == r0.json and r.status in (200, 404)
          and (r.status == 404 or r.json.get(q) == []),
          f"bankA's: {r!r}; none: {r0!r}")
r = call("bankB", "GET", "/v1/transfers/1000")
err_is(f"{G}: bankB GET bankA's internal transfer 1000 -> 404", r, 404,
       "not_found")
r = call("bankB", "GET", "/v1/transfers/1000/receipt")
check(f"{G}: bankB GET the receipt of bankA's internal transfer 1000 -> 404",
      r.status == 404 and r.code() == "not_found", repr(r))
r = call("bankB", "POST", "/v1/accounts/lookup", {"ids": ["1", "3"]})
got = [a.get("id") for a in (r.json or {}).get("accounts", [])] if r.json else None
check(f"{G}: bankB lookup of accounts 1, 3 returns only 3", r.status == 200
      and got == ["3"], repr(r))
r = call("bankB", "POST", "/v1/transfers/lookup", {"ids": ["1000"]})
check(f"{G}: bankB lookup of bankA's transfer 1000 returns nothing",
      r.status == 200 and r.json.get("transfers") == [], repr(r))

r = call("bankB", "POST", "/v1/transfers", {"transfers": [xfer(2010, 3, 1, 7)]})
check(f"{G}: bankB pays 7 from its account 3 to bankA's account 1 -> 200 ok",
      r.status == 200 and results(r) == ["ok"], repr(r))
r = call("bankA", "GET", "/v1/transfers/2010")
check(f"{G}: bankA sees the payment 2010 (it credits its account)",
      r.status == 200 and r.json and r.json.get("id") == "2010"
      and r.json.get("amount") == "7", repr(r))
r = call("bankA", "GET", "/v1/accounts/1/transfers")
ids = sorted(t["id"] for t in (r.json or {}).get("transfers", [])) if r.json else None
check(f"{G}: bankA's account 1 history holds 1000 and 2010", r.status == 200
      and ids == ["1000", "2010"], repr(r))
r = call("bankB", "GET", "/v1/accounts/1")
check(f"{G}: bankB still cannot read bankA's account 1 after paying into it",
      r.status == 404, repr(r))
a1 = call("bankA", "GET", "/v1/accounts/1").json
check(f"{G}: bankA's account 1 credits_posted is 7", a1
      and a1.get("credits_posted") == "7", repr(a1))

# a pending transfer of bankA: bankB may not void or post it
r = call("bankA", "POST", "/v1/transfers",
         {"transfers": [xfer(3000, 2, 1, 9, flags=["pending"])]})
check(f"{G}: bankA creates pending transfer 3000 (2 -> 1)",
      results(r) == ["ok"], repr(r))
r = call("bankB", "POST", "/v1/transfers",
         {"transfers": [xfer(3001, 0, 0, 0, flags=["void_pending_transfer"],
                             pending_id=3000)]})
err_is(f"{G}: bankB voiding bankA's pending transfer -> 403", r, 403,
       "forbidden")
r = call("bankB", "POST", "/v1/transfers",
         {"transfers": [xfer(3002, 0, 0, 0, flags=["post_pending_transfer"],
                             pending_id=3000)]})
err_is(f"{G}: bankB posting bankA's pending transfer -> 403", r, 403,
       "forbidden")
r = call("bankA", "POST", "/v1/transfers",
         {"transfers": [xfer(3003, 0, 0, 0, flags=["void_pending_transfer"],
                             pending_id=3000)]})
check(f"{G}: bankA voids its own pending transfer", results(r) == ["ok"],
      repr(r))
r = create_accounts("bankB", [1])
check(f"{G}: bankB 'creating' bankA's existing account 1 does not take it"
      " over", r.status == 200 and results(r) and results(r)[0] != "ok"
      and call("bankB", "GET", "/v1/accounts/1").status == 404, repr(r))

# the regulator: reads all, writes nothing
r = call("reg", "POST", "/v1/accounts",
         {"accounts": [{"id": "200", "ledger": 1, "code": 1}]})
err_is(f"{G}: regulator POST /v1/accounts -> 403 forbidden", r, 403,
       "forbidden")
logged("regulator write", "reg", "POST", "/v1/accounts", 403, "forbidden")
r = call("reg", "POST", "/v1/transfers", {"transfers": [xfer(4000, 1, 3, 1)]})
err_is(f"{G}: regulator POST /v1/transfers -> 403 forbidden", r, 403,
       "forbidden")
check(f"{G}: ... nothing was created by the regulator",
      not exists(200) and call("op", "GET", "/v1/transfers/4000").status == 404)
for i in (1, 3, 50, 60):
    r = call("reg", "GET", f"/v1/accounts/{i}")
    check(f"{G}: regulator reads account {i}", r.status == 200
          and r.json.get("id") == str(i), repr(r))
r = call("reg", "POST", "/v1/accounts/lookup", {"ids": ["1", "2", "3", "4"]})
check(f"{G}: regulator lookup sees accounts of both banks", r.status == 200
      and len(r.json.get("accounts", [])) == 4, repr(r))
r = call("reg", "GET", "/v1/transfers/1000")
check(f"{G}: regulator reads bankA's transfer 1000", r.status == 200, repr(r))
r = call("reg", "GET", "/v1/accounts/3/transfers")
check(f"{G}: regulator reads bankB's account 3 history", r.status == 200,
      repr(r))
r = call("reg", "GET", "/metrics")
check(f"{G}: regulator GET /metrics -> 200 Prometheus text", r.status == 200
      and "huitong_" in r.body and r.ctype.startswith("text/plain"), repr(r))
r = call("bankA", "GET", "/metrics")
err_is(f"{G}: participant GET /metrics -> 403 forbidden", r, 403, "forbidden")
logged("participant metrics", "bankA", "GET", "/metrics", 403, "forbidden")

# the operator: everything
r = create_accounts("op", [300, 301])
check(f"{G}: operator creates accounts 300, 301", results(r) == ["ok", "ok"],
      repr(r))
r = call("op", "POST", "/v1/transfers",
         {"transfers": [xfer(5000, 1, 3, 2), xfer(5001, 4, 2, 3)]})
check(f"{G}: operator moves money out of bankA's and bankB's accounts",
      results(r) == ["ok", "ok"], repr(r))
r = call("op", "POST", "/v1/accounts/lookup", {"ids": ["1", "3", "300"]})
check(f"{G}: operator lookup sees every account", r.status == 200
      and len(r.json.get("accounts", [])) == 3, repr(r))
r = call("op", "GET", "/metrics")
check(f"{G}: operator GET /metrics -> 200", r.status == 200, repr(r))
r = call("bankA", "GET", "/v1/accounts/300")
check(f"{G}: bankA cannot read the operator's account 300", r.status == 404,
      repr(r))
alive(G)

# ---- the access log ------------------------------------------------------------------
G = "access log"
entries = []
deadline = time.time() + 2.5
while True:
    p = run(["audit", "access-log", "--data", DATA, "--tail", "100000",
             "--json"])
    entries = []
    for line in p.stdout.splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            pass
    if len(entries) >= n_requests or time.time() > deadline:
        break
    time.sleep(0.2)
check(f"{G}: audit access-log --tail --json exits 0", p.returncode == 0,
      p.stderr.strip())
check(f"{G}: one entry per request sent ({n_requests})",
      len(entries) == n_requests, f"{len(entries)} entries")
p2 = run(["audit", "access-log", "--data", DATA])
check(f"{G}: audit access-log --data D verifies the chain (exit 0)",
      p2.returncode == 0 and "intact" in p2.stdout, p2.stdout + p2.stderr)
for name, who, method, path, status, outcome in log_expect:
    hit = [e for e in entries if e.get("participant") == who
           and e.get("method") == method and e.get("path") == path
           and e.get("status") == status and e.get("outcome") == outcome]
    check(f"{G}: {name}: {who or '(none)'} {method} {path} {status} {outcome}",
          bool(hit))
ok_signed = [e for e in entries if e.get("participant") == "bankA"
             and e.get("method") == "POST" and e.get("status") == 200]
check(f"{G}: a signed request's entry names its key id and role",
      bool(ok_signed) and ok_signed[0].get("key_id") == "bankA:1"
      and ok_signed[0].get("role") == "participant",
      repr(ok_signed[:1]))
alive(G)

print(f"api_security: {time.time() - T0:.1f} s")
srv.send_signal(signal.SIGTERM)
try:
    rc = srv.wait(timeout=15)
    check("the server stops cleanly on SIGTERM (exit 0)", rc == 0, f"exit {rc}")
except subprocess.TimeoutExpired:
    srv.kill()
    check("the server stops cleanly on SIGTERM (exit 0)", False, "no exit in 15 s")
log = open(os.path.join(TMP, "serve.log"), errors="replace").read()
check("the server's stderr has no sanitizer report",
      "Sanitizer" not in log and "runtime error" not in log, log[-800:])
print(f"{passed} passed, {failed} failed")
if failed:
    open(os.path.join(TMP, "keep"), "w").close()
sys.exit(1 if failed else 0)
PY
rc=$?
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
	echo "FAIL  api_security timed out"
	echo "0 passed, 1 failed"
	touch "$tmp/keep"
fi
exit $rc

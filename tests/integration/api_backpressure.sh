#!/usr/bin/env bash
# api_backpressure.sh — a full commit queue answers 503 overloaded with
# Retry-After at once (memory stays bounded), nothing refused is booked,
# everything answered 200 is, and the hub keeps serving.
#
# The server runs with --queue 2; 24 clients send a 2,000-transfer batch
# each at the same moment (curl, so the 503 and its Retry-After header are
# seen as they are; the signatures come from tests/tools/sign_request.c).
#   HUITONG, HT_BUILD   the binary and the build directory (ctest sets them)
# Ends with "N passed, M failed"; exits 1 on any failure.
set -uo pipefail
src=${HT_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${HUITONG:-$src/build/huitong}
build=${HT_BUILD:-$(dirname "$bin")}
exec python3 - "$bin" "$build/tool_sign_request" <<'PY'
import json, os, shutil, signal, subprocess, sys, tempfile, threading, time

BIN, SIGN = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp(prefix="ht-bp-")
data = os.path.join(tmp, "data")
passed = failed = 0


def check(ok, what):
    global passed, failed
    print(("ok   " if ok else "FAIL ") + what)
    if ok:
        passed += 1
    else:
        failed += 1


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)


run([BIN, "init", "--data", data])
creds = os.path.join(tmp, "op")
run([BIN, "participant", "add", "--data", data, "--id", "op", "--role", "operator",
     "--alg", "ecdsa-p256", "--out", creds])
ready = os.path.join(tmp, "addr")
srv = subprocess.Popen([BIN, "serve", "--data", data, "--listen", "127.0.0.1:0", "--queue", "2",
                        "--ready-file", ready, "--quiet"], stderr=subprocess.PIPE, text=True)
try:
    for _ in range(300):
        if os.path.exists(ready):
            break
        time.sleep(0.02)
    url = "https://" + open(ready).read().strip()
    cj = json.load(open(os.path.join(creds, "credentials.json")))
    key_id = cj["signing_key_id"]
    p = run([BIN, "client", "--credentials", creds, "--url", url, "apply", "-"],
            input=json.dumps({"op": "create_accounts", "accounts": [
                {"id": "1", "ledger": 156, "code": 1}, {"id": "2", "ledger": 156, "code": 1}]}) + "\n")
    check(p.returncode == 0 and '"ok"' in p.stdout, "accounts created")

    N, PER = 24, 2000
    bodies, headers = [], []
    for c in range(N):
        body = json.dumps({"transfers": [
            {"id": str(10**9 * (c + 1) + i), "debit_account_id": "1", "credit_account_id": "2",
             "amount": "1", "ledger": 156, "code": 1} for i in range(PER)]})
        path = os.path.join(tmp, f"b{c}.json")
        open(path, "w").write(body)
        h = run([SIGN, "--key", os.path.join(creds, "signing.key"), "--key-id", key_id,
                 "--method", "POST", "--path", "/v1/transfers", "--body", path])
        bodies.append(path)
        headers.append(h.stdout.strip())
    results = [None] * N
    barrier = threading.Barrier(N)

    def send(c):
        barrier.wait()
        r = run(["curl", "-s", "-D", "-", "--cacert", os.path.join(creds, "ca.crt"),
                 "--cert", os.path.join(creds, "client.crt"), "--key", os.path.join(creds, "client.key"),
                 "-H", "Huitong-Signature: " + headers[c], "-H", "Content-Type: application/json", "-H", "Expect:",
                 "--data-binary", "@" + bodies[c], url + "/v1/transfers"])
        results[c] = r.stdout
    ths = [threading.Thread(target=send, args=(c,)) for c in range(N)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    ok_ids, refused = [], 0
    for c, out in enumerate(results):
        head, _, body = (out or "").replace("\r\n", "\n").partition("\n\n")
        status = head.split(" ")[1] if head.startswith("HTTP/") else "?"
        if status == "200":
            ok_ids.append(c)
        elif status == "503":
            try:
                j = json.loads(body)
            except ValueError:
                j = {}
                print("   answer:", repr(out[:300]))
            good = j.get("code") == "overloaded" and "retry-after: 1" in head.lower()
            check(good, f"client {c}: 503 overloaded with Retry-After: 1")
            refused += 1
        else:
            check(False, f"client {c}: unexpected answer {out[:200]!r}")
    check(refused > 0, f"a queue of 2 refused {refused} of {N} simultaneous batches with 503")
    check(len(ok_ids) > 0, f"{len(ok_ids)} batches were committed")
    # every 200 batch is booked, no 503 batch is
    ids = [str(10**9 * (c + 1)) for c in range(N)]
    p = run([BIN, "client", "--credentials", creds, "--url", url, "apply", "-"],
            input=json.dumps({"op": "lookup_transfers", "ids": ids}) + "\n")
    found = {t["id"] for t in json.loads(p.stdout)["transfers"]}
    check(found == {ids[c] for c in ok_ids},
          "exactly the batches answered 200 are booked (the refused ones changed nothing)")
    p = run(["curl", "-s", "--cacert", os.path.join(creds, "ca.crt"), "--cert",
             os.path.join(creds, "client.crt"), "--key", os.path.join(creds, "client.key"),
             url + "/metrics"])
    line = [l for l in p.stdout.splitlines() if l.startswith("huitong_overloaded_total")]
    check(bool(line) and int(line[0].split()[1]) == refused, f"/metrics counts them: {line}")
    p = run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
             os.path.join(creds, "ca.crt"), "--cert", os.path.join(creds, "client.crt"),
             "--key", os.path.join(creds, "client.key"), url + "/healthz"])
    check(p.stdout == "200", "the hub keeps serving")
finally:
    srv.send_signal(signal.SIGTERM)
    try:
        rc = srv.wait(timeout=30)
    except subprocess.TimeoutExpired:
        srv.kill()
        rc = "killed"
    check(rc == 0, f"graceful stop (exit {rc})")
print(f"{passed} passed, {failed} failed")
if failed:
    print(f"(kept {tmp})")
else:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(1 if failed else 0)
PY

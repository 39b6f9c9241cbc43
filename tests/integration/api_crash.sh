#!/usr/bin/env bash
# api_crash.sh — kill -9 `huitong serve` under load from several clients
# and check that every transfer a client saw acknowledged survived.
#
# One store for all rounds (crashes accumulate). Each round:
#   1. start `huitong serve`; start CLIENTS `huitong client apply` processes
#      (participants bankA and bankB, --retries 0), each fed a stream of
#      create_transfers batches (random sizes 1..200, some transfers
#      failing with exceeds_credits, some ids reused from earlier rounds)
#      and printing one result line per acknowledged batch;
#   2. after a random delay, SIGKILL the server (the clients then fail);
#   3. with the server down, a `ledger apply` lookup of every transfer sent
#      this round: every transfer acknowledged "ok" is present with the
#      same accounts and amount; every acknowledged refusal is absent and
#      is a refusal leaf (a retry answers id_already_failed);
#   4. every 5th round and after the last, `huitong journal verify` exits 0,
#      and `huitong audit access-log` verifies the access log's chain.
#
#   HUITONG              the binary (ctest sets it)
#   HT_API_CRASH_ROUNDS  rounds (default 25)
#   HT_API_CRASH_SEED    seed (default from the clock; printed)
# Ends with "N passed, M failed"; exits 1 on any failure.
set -uo pipefail
src=${HT_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${HUITONG:-$src/build/huitong}
exec python3 - "$bin" <<'PY'
import json, os, random, shutil, signal, subprocess, sys, tempfile, threading, time

BIN = sys.argv[1]
ROUNDS = int(os.environ.get("HT_API_CRASH_ROUNDS", "25"))
SEED = int(os.environ.get("HT_API_CRASH_SEED", str(int(time.time()) % 100000)))
CLIENTS = 3
print(f"api_crash: {ROUNDS} rounds, seed {SEED}")
rng = random.Random(SEED)
tmp = tempfile.mkdtemp(prefix="ht-api-crash-")
data = os.path.join(tmp, "data")
passed = failed = 0


def run(args, **kw):
    return subprocess.run([BIN] + args, capture_output=True, text=True, timeout=120, **kw)


def die(msg):
    print("FAIL:", msg)
    print(f"0 passed, 1 failed  (store kept in {tmp})")
    sys.exit(1)


p = run(["init", "--data", data])
if p.returncode:
    die(f"init: {p.stderr}")
creds = {}
for who, role in (("bankA", "participant"), ("bankB", "participant"), ("op", "operator")):
    d = os.path.join(tmp, who)
    p = run(["participant", "add", "--data", data, "--id", who, "--role", role,
             "--alg", "ecdsa-p256", "--out", d])
    if p.returncode:
        die(f"participant add {who}: {p.stderr}")
    creds[who] = d


def start_server():
    ready = os.path.join(tmp, "addr")
    if os.path.exists(ready):
        os.unlink(ready)
    srv = subprocess.Popen([BIN, "serve", "--data", data, "--listen", "127.0.0.1:0",
                            "--ready-file", ready, "--quiet"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=open(os.path.join(tmp, "serve.log"), "a"))
    for _ in range(500):
        if os.path.exists(ready):
            return srv, "https://" + open(ready).read().strip()
        if srv.poll() is not None:
            die(f"serve exited {srv.returncode} (see {tmp}/serve.log)")
        time.sleep(0.02)
    die("serve did not start")


# Accounts: each bank owns 50 funded accounts (ids bank*1000 + i) and a
# settlement account (bank*1000) that funds them.
srv, url = start_server()
for b, base in (("bankA", 1000), ("bankB", 2000)):
    acc = [{"id": str(base + i), "ledger": 156, "code": 10,
            "flags": [] if i == 0 else ["debits_must_not_exceed_credits"]} for i in range(51)]
    fund = [{"id": str(base * 10**6 + i), "debit_account_id": str(base),
             "credit_account_id": str(base + i), "amount": "100000", "ledger": 156, "code": 1}
            for i in range(1, 51)]
    inp = json.dumps({"op": "create_accounts", "accounts": acc}) + "\n" + \
        json.dumps({"op": "create_transfers", "transfers": fund}) + "\n"
    p = run(["client", "--credentials", creds[b], "--url", url, "apply", "-"], input=inp)
    if p.returncode or '"exceeds' in p.stdout:
        die(f"setup {b}: {p.returncode} {p.stderr} {p.stdout[:300]}")
srv.send_signal(signal.SIGTERM)
srv.wait(timeout=30)

next_id = [10**9]
sent_all = {}      # id -> transfer dict (every transfer ever sent)
sent_ids = []


def gen_batch(bank, base):
    n = rng.choice([1, 1, 2, 5, 20, 100, 200])
    batch = []
    for _ in range(n):
        if sent_all and rng.random() < 0.03:
            # an id sent before: exists / id_already_failed / exists_with_different_*
            tid = rng.choice(sent_ids)
            t = dict(sent_all[tid])
        else:
            next_id[0] += 1
            tid = str(next_id[0])
            a = base + rng.randint(1, 50)
            b = rng.choice((1000, 2000)) + rng.randint(1, 50)
            while b == a:
                b = rng.choice((1000, 2000)) + rng.randint(1, 50)
            amount = rng.choice([1, 10, 100, 1000, 5000, 10**6])  # 10**6 fails
            t = {"id": tid, "debit_account_id": str(a), "credit_account_id": str(b),
                 "amount": str(amount), "ledger": 156, "code": 2}
        batch.append(t)
    return batch


for rnd in range(1, ROUNDS + 1):
    fails = []
    srv, url = start_server()
    procs, feeds, outs, sent = [], [], [], []
    for c in range(CLIENTS):
        bank, base = (("bankA", 1000), ("bankB", 2000))[c % 2]
        p = subprocess.Popen([BIN, "client", "--credentials", creds[bank], "--url", url,
                              "--retries", "0", "apply", "-"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, bufsize=1)
        procs.append(p)
        lines = []
        outs.append(lines)
        batches = [gen_batch(bank, base) for _ in range(400)]
        sent.append(batches)
        for bt in batches:
            for t in bt:
                if t["id"] not in sent_all:
                    sent_all[t["id"]] = t
                    sent_ids.append(t["id"])

        def feed(p=p, batches=batches):
            try:
                for bt in batches:
                    p.stdin.write(json.dumps({"op": "create_transfers", "transfers": bt}) + "\n")
                p.stdin.close()
            except (BrokenPipeError, OSError, ValueError):
                pass

        def read(p=p, lines=lines):
            for line in p.stdout:
                lines.append(line)
        for f in (feed, read):
            th = threading.Thread(target=f, daemon=True)
            th.start()
            feeds.append(th)
    t_round = time.time()
    t_start_round = t_round
    time.sleep(rng.uniform(0.05, 1.2))
    srv.kill()
    srv.wait()
    t_kill = time.time()
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            fails.append("a client did not exit after the server died")
    for th in feeds:
        th.join(timeout=10)

    t_clients = time.time()
    # acknowledged outcomes
    acked = {}   # id -> result of its FIRST acknowledged sending in this round
    n_acked = 0
    for c in range(CLIENTS):
        for k, line in enumerate(outs[c]):
            try:
                r = json.loads(line)
            except ValueError:
                fails.append(f"client {c}: output line {k + 1} is not JSON: {line[:200]}")
                continue
            if "results" not in r:
                continue
            bt = sent[c][k]
            for x in r["results"]:
                t = bt[x["index"]]
                if x["id"] != t["id"]:
                    fails.append(f"client {c} batch {k}: result {x} for id {t['id']}")
                acked.setdefault(t["id"], (x["result"], t))
                n_acked += 1
    ids = list(acked)
    found = {}
    for i in range(0, len(ids), 8000):
        q = json.dumps({"op": "lookup_transfers", "ids": ids[i:i + 8000]}) + "\n"
        p = run(["ledger", "apply", "--data", data, "-"], input=q)
        if p.returncode:
            fails.append(f"lookup: ledger apply exited {p.returncode}: {p.stderr[:300]}")
            break
        for t in json.loads(p.stdout)["transfers"]:
            found[t["id"]] = t
    for tid, (res, t) in acked.items():
        if res == "ok":
            g = found.get(tid)
            if not g:
                fails.append(f"transfer {tid} acknowledged ok is missing")
            elif (g["debit_account_id"], g["credit_account_id"], g["amount"]) != \
                    (t["debit_account_id"], t["credit_account_id"], t["amount"]):
                fails.append(f"transfer {tid} differs: {g} vs sent {t}")
        elif res in ("exceeds_credits", "exceeds_debits") and tid in found:
            fails.append(f"transfer {tid} acknowledged {res} is present")
    refused = [tid for tid, (res, _) in acked.items() if res == "exceeds_credits"][:50]
    if refused:
        q = json.dumps({"op": "create_transfers",
                        "transfers": [acked[t][1] for t in refused]}) + "\n"
        p = run(["ledger", "apply", "--data", data, "-"], input=q)
        if p.returncode:
            fails.append(f"retry of refusals: exited {p.returncode}")
        else:
            for x in json.loads(p.stdout)["results"]:
                if x["result"] != "id_already_failed":
                    fails.append(f"refused {x['id']} retried answers {x['result']}")
    if rnd % 5 == 0 or rnd == ROUNDS:
        p = run(["journal", "verify", "--data", data])
        if p.returncode:
            fails.append(f"journal verify: {p.stdout.strip()} {p.stderr.strip()}")
        p = run(["audit", "access-log", "--data", data])
        if p.returncode:
            fails.append(f"audit access-log: {p.stdout.strip()} {p.stderr.strip()}")
    status = "ok" if not fails else "FAIL"
    print(f"round {rnd:2}: {n_acked} acknowledged results, {len(found)} present: {status}"
          f"  (load {t_kill - t_round:.1f} s, clients {t_clients - t_kill:.1f} s,"
          f" checks {time.time() - t_clients:.1f} s)")
    for f in fails[:10]:
        print("   ", f)
    if fails:
        failed += 1
    else:
        passed += 1
print(f"{passed} passed, {failed} failed")
if failed:
    print(f"(store kept in {tmp})")
else:
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(1 if failed else 0)
PY

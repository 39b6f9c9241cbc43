#!/usr/bin/env bash
# api_risk.sh — risk control in the payment path, end to end against a real
# `huitong serve --risk` (docs/api.md "Risk"): requests go through `huitong
# client` (mutual TLS, signed requests; `apply` verifies every receipt,
# held transfers included). Groups:
#   flag      without --risk a transfer with a "risk" object is applied
#             and answered exactly as before (no decision in the answer);
#             `ledger apply` accepts and ignores the object; bad objects
#             are 400 with the field named;
#   ordinary  ordinary traffic (customers paying merchants, each from its
#             own device) is allowed, every result carrying its decision;
#   shadow    a shadow rule that would block everything changes nothing;
#   takeover  an account-takeover burst (many payments in a minute from a
#             new device to new payees) is blocked or held, blocked ones
#             refused with risk_blocked (id burned: a retry answers
#             id_already_failed);
#   review    a held transfer is created pending with the review timeout;
#             the client verifies its receipt; an exact retry answers
#             exists; nobody posts it through /v1/transfers; the payer may
#             void it; the timeout voids it;
#   decide    operators list the held transfers, approve (post) and reject
#             (void) them; participants and the regulator cannot;
#   metrics   decisions by kind, shadow hits, the rules version;
#   reload    five new rule files posted during a 3000-payment load: none
#             lost, each decision names the version it was made under; bad
#             files are 400 with line:column and change nothing; SIGHUP
#             re-reads --risk-rules, a bad file keeps the old rules;
#   joint     bank A hashes a mule account and device locally with the
#             hub's key and reports them; bank B's payments to that account
#             or from that device are blocked (blocklisted_*), ordinary ones
#             flow; an account reported by id; first report stands; who
#             lists and removes what; bad submissions 400/413;
#   record    decisions read back (regulator, payee's participant; 404
#             otherwise), kill -9 and restart: decisions and held
#             transfers survive, journal verify passes; a schema-2 store
#             migrates to schema 4;
#   journal   `huitong journal verify` passes on the stores.
# The model is the build's models/default.model (HT_BUILD or the release
# build beside the source); without one a small model is trained here
# (huitong sim + risk train --rounds 50).
#
#   HUITONG   the binary (ctest sets it; default build/huitong)
#   HT_BUILD  the build directory (for models/default.model)
#   HT_KEEP=1 keep the temporary directory
# Prints one line per check; ends with "N passed, M failed"; exits 1 on
# any failure.
set -uo pipefail

src=${HT_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${HUITONG:-$src/build/huitong}
build=${HT_BUILD:-$(dirname "$bin")}
if [ ! -x "$bin" ]; then
	echo "api_risk: no huitong binary at $bin (set HUITONG)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ht-api-risk-XXXXXX")
cleanup() {
	for f in "$tmp"/serve*.pid; do
		[ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
	done
	if [ "${HT_KEEP:-}" = 1 ] || [ -f "$tmp/keep" ]; then
		echo "(kept $tmp)"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

timeout -k 5 600 python3 - "$bin" "$build" "$src" "$tmp" <<'PY'
import json, os, signal, subprocess, sys, time

BIN, BUILD, SRC, TMP = sys.argv[1:5]
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {name}")
    else:
        failed += 1
        print(f"FAIL  {name}" + (f": {str(detail)[:600]}" if detail else ""))
        open(os.path.join(TMP, "keep"), "w").close()
    sys.stdout.flush()
    return ok


def bail(msg):
    print("FAIL  setup:", msg)
    open(os.path.join(TMP, "keep"), "w").close()
    print(f"{passed} passed, {failed + 1} failed")
    sys.exit(1)


def run(args, timeout=120, stdin=None):
    return subprocess.run([BIN] + args, capture_output=True, text=True,
                          timeout=timeout, input=stdin)


# ---- the model -----------------------------------------------------------------
model = None
for d in (BUILD, os.path.join(SRC, "build")):
    m = os.path.join(d, "models", "default.model")
    if os.path.exists(m):
        model = m
        break
if not model:
    model = os.path.join(TMP, "small.model")
    p = run(["sim", "--seed", "7", "--parties", "2000", "--days", "14",
             "--quiet", "--out", os.path.join(TMP, "p.jsonl"),
             "--labels", os.path.join(TMP, "l.jsonl")], timeout=300)
    if p.returncode:
        bail("sim: " + p.stderr[-300:])
    p = run(["risk", "train", "--in", os.path.join(TMP, "p.jsonl"),
             "--labels", os.path.join(TMP, "l.jsonl"), "--out", model,
             "--rounds", "50", "--quiet"], timeout=300)
    if p.returncode:
        bail("risk train: " + p.stderr[-300:])
print(f"api_risk: model {model}")

RULES = os.path.join(TMP, "rules.txt")
open(RULES, "w").write("""version 1
# a takeover: a device new to the payer, a burst, payees it never paid
rule ato_burst: device.present == 1 and device.first_seen < 10m
    and payer.count_1m >= 4 and pair.new == 1 => block score 90
    reason "ato_burst"
# large payments to a new payee wait for an operator
rule big_new_payee: amount >= 40000 and pair.new == 1 => review score 60
    reason "big_new_payee"
# would block everything, were it enforced
shadow rule shadow_everything: amount > 0 => block score 100
""")


# ---- a hub ----------------------------------------------------------------------
class Hub:
    def __init__(self, name, extra):
        self.name, self.extra = name, extra
        self.data = os.path.join(TMP, name)
        self.creds = {}
        if run(["init", "--data", self.data]).returncode:
            bail(f"init {name}")
        for who, role in (("bankA", "participant"), ("bankB", "participant"),
                          ("op", "operator"), ("reg", "regulator")):
            out = os.path.join(TMP, f"{name}-{who}")
            p = run(["participant", "add", "--data", self.data, "--id", who,
                     "--role", role, "--out", out])
            if p.returncode:
                bail(f"participant add {who}: {p.stderr}")
            self.creds[who] = out
        self.srv = None

    def start(self):
        ready = os.path.join(TMP, f"{self.name}.addr")
        if os.path.exists(ready):
            os.unlink(ready)
        self.log = os.path.join(TMP, f"{self.name}.log")
        self.srv = subprocess.Popen(
            [BIN, "serve", "--data", self.data, "--listen", "127.0.0.1:0",
             "--ready-file", ready, "--threads", "2"] + self.extra,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.log, "a"))
        open(os.path.join(TMP, f"serve-{self.name}.pid"), "w").write(
            str(self.srv.pid))
        for _ in range(1500):
            if os.path.exists(ready) and open(ready).read().strip():
                break
            if self.srv.poll() is not None:
                bail(f"serve {self.name} exited: " + open(self.log).read()[-800:])
            time.sleep(0.02)
        else:
            bail(f"serve {self.name} wrote no ready file")
        self.url = "https://" + open(ready).read().strip()

    def stop(self, sig=signal.SIGTERM):
        self.srv.send_signal(sig)
        self.srv.wait(timeout=60)
        if sig == signal.SIGTERM:
            log = open(self.log).read()
            check(f"{self.name}: the server stops cleanly (exit 0, no"
                  " sanitizer report)", self.srv.returncode == 0
                  and "Sanitizer" not in log and "runtime error" not in log,
                  f"exit {self.srv.returncode}: {log[-600:]}")
        return self.srv.returncode

    def raw(self, who, method, path, body=None):
        args = ["client", "--credentials", self.creds[who], "--url", self.url,
                "raw", method, path]
        if body is not None:
            args.append(body if isinstance(body, str) else json.dumps(body))
        p = run(args)
        status, _, rest = p.stdout.partition("\n")
        try:
            status = int(status)
        except ValueError:
            status = 0
        try:
            js = json.loads(rest) if rest.strip() else None
        except ValueError:
            js = None
        return status, js, rest

    def apply(self, who, lines, verify=True):
        args = ["client", "--credentials", self.creds[who], "--url", self.url]
        if not verify:
            args.append("--no-verify")
        p = run(args + ["apply", "-"], timeout=300,
                stdin="".join(json.dumps(x) + "\n" for x in lines))
        out = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
        return p.returncode, out, p.stderr

    def transfers(self, who, ts):
        return self.raw(who, "POST", "/v1/transfers", {"transfers": ts})


def allowed_id_of(ts):
    return ts[0]["id"]


def xfer(tid, dr, cr, amount, **kw):
    t = {"id": str(tid), "debit_account_id": str(dr),
         "credit_account_id": str(cr), "amount": str(amount), "ledger": 156,
         "code": 1}
    t.update(kw)
    return t


def accounts(hub, who, ids, **kw):
    rc, out, err = hub.apply(who, [{"op": "create_accounts", "accounts": [
        dict({"id": str(i), "ledger": 156, "code": 1}, **kw) for i in ids]}])
    if rc or any(r["result"] != "ok" for r in out[0]["results"]):
        bail(f"accounts {ids}: {out} {err}")


def lookup(hub, who, ids):
    rc, out, err = hub.apply(who, [{"op": "lookup_transfers",
                                    "ids": [str(i) for i in ids]}])
    return {t["id"]: t for t in out[0]["transfers"]} if out else {}


def balance(hub, who, aid):
    rc, out, err = hub.apply(who, [{"op": "lookup_accounts", "ids": [str(aid)]}])
    return out[0]["accounts"][0] if out and out[0]["accounts"] else None


# customers 1..20 at bankA, merchants 101..105 and other payees 201..220
# at bankB; no balance limits, so nobody needs funding. Amounts are in fen
# (the rules speak yuan: 40000 there is 4,000,000 here).
def populate(hub):
    accounts(hub, "bankA", range(1, 21))
    accounts(hub, "bankB", list(range(101, 106)) + list(range(201, 221)))


# ---- flag: without --risk nothing changes ---------------------------------------
G = "flag"
plain = Hub("plain", [])
plain.start()
accounts(plain, "bankA", [1, 2])
accounts(plain, "bankB", [3])
st, js, raw = plain.transfers("bankA", [
    xfer(10, 1, 3, 500, risk={"channel": "qr", "device": "d-9", "ip": "10.1.2.3"}),
    xfer(11, 1, 3, 700)])
check(f"{G}: without --risk a transfer with a risk object is applied as asked",
      st == 200 and [r["result"] for r in js["results"]] == ["ok", "ok"], raw)
check(f"{G}: without --risk no result carries a decision",
      st == 200 and all("risk" not in r for r in js["results"]), raw)
st, js, raw = plain.transfers("bankA", [xfer(12, 1, 3, 5, risk={"channel": "fax"})])
check(f"{G}: an unknown channel is 400 invalid_request naming the field",
      st == 400 and js and js.get("code") == "invalid_request"
      and "transfers[0].risk.channel" in js.get("message", ""), raw)
st, js, raw = plain.transfers("bankA", [xfer(12, 1, 3, 5, risk={"device": "x" * 65})])
check(f"{G}: a device over 64 bytes is 400 naming the field",
      st == 400 and "risk.device" in (js or {}).get("message", ""), raw)
plain.stop()
p = run(["ledger", "apply", "--data", plain.data], stdin=json.dumps(
    {"op": "create_transfers", "transfers": [
        xfer(13, 1, 3, 5, risk={"channel": "p2p", "device": None})]}) + "\n")
check(f"{G}: ledger apply accepts and ignores the risk object",
      p.returncode == 0 and '"result":"ok"' in p.stdout, p.stdout + p.stderr)

# ---- the risk hub ---------------------------------------------------------------
# The model never blocks on its own here (--risk-block 0.999): its score
# for a large payment to a new payee depends on the time of day and on how
# fast the payments before it came (a sanitizer build is slower), and
# these checks are about the rules, the reviews and the block list.
hub = Hub("risk", ["--risk", "--risk-model", model, "--risk-rules", RULES,
                   "--risk-state-mb", "64", "--risk-review-timeout", "3600",
                   "--risk-block", "0.999"])
hub.start()
populate(hub)

# ---- ordinary traffic -------------------------------------------------------------
G = "ordinary"
ordinary, tid = [], 5000
for rnd in range(3):
    for c in range(1, 21):
        tid += 1
        ordinary.append(xfer(tid, c, 101 + (c + rnd) % 5, 1500 + 137 * c + 50 * rnd,
                             risk={"channel": "qr", "device": f"phone-{c}",
                                   "ip": f"10.0.0.{c}"}))
results = []
for i in range(0, len(ordinary), 20):
    st, js, raw = hub.transfers("bankA", ordinary[i:i + 20])
    if st != 200:
        break
    results += js["results"]
check(f"{G}: {len(ordinary)} payments from customers to merchants all commit",
      len(results) == len(ordinary) and all(r["result"] == "ok" for r in results),
      [r for r in results if r["result"] != "ok"][:3])
check(f"{G}: each is allowed, with a score and reasons",
      all(r.get("risk", {}).get("decision") == "allow"
          and 0 <= r["risk"]["score"] <= 1 and r["risk"]["reasons"] == []
          for r in results),
      [r for r in results if r.get("risk", {}).get("decision") != "allow"][:3])
check(f"{G}: the decision is the result's last member",
      all(list(r)[-1] == "risk" for r in results), results[:1])

# ---- shadow -----------------------------------------------------------------------
G = "shadow"
check(f"{G}: a shadow rule that would block everything blocked nothing",
      all("shadow_everything" not in r["risk"]["reasons"] for r in results)
      and all(r["risk"]["decision"] == "allow" for r in results), results[:1])

# ---- takeover ---------------------------------------------------------------------
G = "takeover"
burst = [xfer(7000 + k, 5, 201 + k, 250_000 + 1000 * k,
              risk={"channel": "transfer", "device": "evil-1", "ip": "203.0.113.9"})
         for k in range(12)]
decisions = []
for t in burst:                       # one request each: a burst over seconds
    st, js, raw = hub.transfers("bankA", [t])
    decisions.append((st, js["results"][0] if st == 200 else raw))
stopped = [r for st, r in decisions
           if st == 200 and r["risk"]["decision"] in ("block", "review")]
check(f"{G}: a burst of 12 payments from a new device to new payees is stopped"
      " (blocked or held)", len(stopped) >= 8,
      [(r["risk"]["decision"], r["risk"]["reasons"]) for st, r in decisions
       if st == 200])
blocked = [r for r in stopped if r["risk"]["decision"] == "block"]
check(f"{G}: blocked payments are refused with risk_blocked and a journal leaf",
      blocked and all(r["result"] == "risk_blocked" and "leaf" in r
                      for r in blocked), blocked[:2])
check(f"{G}: each stop names its reasons",
      all(r["risk"]["reasons"] for r in stopped), stopped[:2])
if blocked:
    again = [t for t in burst if t["id"] == blocked[0]["id"]][0]
    st, js, raw = hub.transfers("bankA", [again])
    check(f"{G}: a retry of a blocked payment answers id_already_failed and is"
          " not scored again", st == 200
          and js["results"][0]["result"] == "id_already_failed"
          and "risk" not in js["results"][0], raw)
cust5 = balance(hub, "bankA", 5)
paid = sum(int(t["amount"]) for t in ordinary if t["debit_account_id"] == "5")
held = sum(int(t["amount"]) for (st, r), t in zip(decisions, burst)
           if st == 200 and r["result"] == "ok"
           and r["risk"]["decision"] == "review")
posted = sum(int(t["amount"]) for (st, r), t in zip(decisions, burst)
             if st == 200 and r["result"] == "ok"
             and r["risk"]["decision"] == "allow")
check(f"{G}: the victim's account lost only what was allowed; held money is"
      " pending", cust5 and int(cust5["debits_posted"]) == paid + posted
      and int(cust5["debits_pending"]) == held, cust5)

# ---- review -----------------------------------------------------------------------
G = "review"
st, js, raw = hub.transfers("bankA", [xfer(8001, 7, 215, 4_500_000)])
r = js["results"][0] if st == 200 else {}
check(f"{G}: a large payment to a new payee is held: ok, decision review,"
      " reason named", r.get("result") == "ok"
      and r.get("risk", {}).get("decision") == "review"
      and "big_new_payee" in r["risk"]["reasons"], raw)
check(f"{G}: its receipt carries the stored (pending) event as data",
      "data" in r, r)
t = lookup(hub, "bankA", [8001]).get("8001", {})
check(f"{G}: it is stored pending with the review timeout",
      t.get("flags") == ["pending"] and t.get("timeout_s") == 3600, t)
rc, out, err = hub.apply("bankA", [{"op": "create_transfers", "transfers": [
    xfer(8002, 8, 216, 4_600_000)]}])
check(f"{G}: the client verifies a held transfer's receipt (apply prints ok)",
      rc == 0 and out and out[0]["results"][0]["result"] == "ok", (out, err))
rc, out, err = hub.apply("bankA", [{"op": "create_transfers", "transfers": [
    xfer(8002, 8, 216, 4_600_000)]}])
check(f"{G}: an exact retry of a held transfer answers exists",
      rc == 0 and out and out[0]["results"][0]["result"] == "exists", (out, err))
for who in ("bankA", "op"):
    st, js, raw = hub.transfers(who, [{"id": f"80{10 if who == 'bankA' else 11}",
                                       "pending_id": "8001",
                                       "flags": ["post_pending_transfer"]}])
    check(f"{G}: {who} cannot post a held transfer through /v1/transfers (403)",
          st == 403 and js and js.get("code") == "forbidden"
          and "held for risk review" in js.get("message", ""), raw)
st, js, raw = hub.transfers("bankA", [{"id": "8012", "pending_id": "8002",
                                       "flags": ["void_pending_transfer"]}])
check(f"{G}: the payer may withdraw (void) its held payment",
      st == 200 and js["results"][0]["result"] == "ok", raw)

# ---- operators decide -------------------------------------------------------------
G = "decide"
st, js, raw = hub.transfers("bankA", [xfer(8003, 9, 217, 4_700_000),
                                      xfer(8004, 10, 218, 4_800_000)])
check(f"{G}: two more payments held",
      st == 200 and [r["risk"]["decision"] for r in js["results"]]
      == ["review", "review"], raw)
for who in ("op", "reg"):
    st, js, raw = hub.raw(who, "GET", "/v1/risk/reviews?limit=8190")
    ids = [r["transfer"]["id"] for r in js["reviews"]] if st == 200 else []
    check(f"{G}: {who} lists the held transfers still pending, oldest first,"
          " each with its decision",
          st == 200 and ids[-3:] == ["8001", "8003", "8004"]
          and "8002" not in ids and js["count"] == len(ids)
          and all(r["risk"]["decision"] == "review"
                  and r["transfer"]["flags"] == ["pending"]
                  for r in js["reviews"]), raw)
st, js, raw = hub.raw("op", "GET", "/v1/risk/reviews?limit=1")
check(f"{G}: limit bounds the list, count says how many there are",
      st == 200 and len(js["reviews"]) == 1 and js["count"] >= 3, raw)
st, js, raw = hub.raw("bankA", "GET", "/v1/risk/reviews")
check(f"{G}: a participant cannot list reviews (403)", st == 403, raw)
st, js, raw = hub.raw("bankA", "POST", "/v1/risk/reviews/8003/approve",
                      {"id": "8030"})
check(f"{G}: a participant cannot approve (403)",
      st == 403 and js.get("code") == "forbidden", raw)
st, js, raw = hub.raw("reg", "POST", "/v1/risk/reviews/8003/approve",
                      {"id": "8030"})
check(f"{G}: the regulator cannot approve (403)", st == 403, raw)
before = balance(hub, "bankA", 9)
st, js, raw = hub.raw("op", "POST", "/v1/risk/reviews/8003/approve",
                      {"id": "8030"})
r = js["results"][0] if st == 200 else {}
check(f"{G}: the operator approves: a post of the held transfer, answered"
      " with its leaf and a receipt", r.get("result") == "ok" and "leaf" in r
      and js["receipt"]["count"] == 1, raw)
after = balance(hub, "bankA", 9)
check(f"{G}: approve moves the reserved amount from pending to posted",
      int(before["debits_pending"]) - int(after["debits_pending"]) == 4_700_000
      and int(after["debits_posted"]) - int(before["debits_posted"]) == 4_700_000,
      (before, after))
st, js, raw = hub.raw("op", "POST", "/v1/risk/reviews/8003/approve",
                      {"id": "8030"})
check(f"{G}: approving again (same id) answers exists",
      st == 200 and js["results"][0]["result"] == "exists", raw)
st, js, raw = hub.raw("op", "POST", "/v1/risk/reviews/8003/reject",
                      {"id": "8031"})
check(f"{G}: rejecting a posted one answers pending_transfer_already_posted",
      st == 200 and js["results"][0]["result"]
      == "pending_transfer_already_posted", raw)
st, js, raw = hub.raw("op", "POST", "/v1/risk/reviews/8004/reject",
                      {"id": "8040"})
a = balance(hub, "bankA", 10)
check(f"{G}: the operator rejects: a void, the reserved amount released",
      st == 200 and js["results"][0]["result"] == "ok"
      and a["debits_pending"] == "0", (raw, a))
st, js, raw = hub.raw("op", "POST", f"/v1/risk/reviews/{allowed_id_of(ordinary)}/approve",
                      {"id": "8050"})
check(f"{G}: a transfer never held cannot be approved (404)",
      st == 404 and js.get("code") == "not_found", raw)
st, js, raw = hub.raw("op", "POST", "/v1/risk/reviews/8001/approve", {"id": 8050})
check(f"{G}: a body without a string id is 400 naming what is wanted",
      st == 400 and "new transfer id" in js.get("message", ""), raw)
st, js, raw = hub.raw("op", "POST", "/v1/risk/reviews/8001/approve", "{")
check(f"{G}: a body that is not JSON is 400 malformed_json",
      st == 400 and js.get("code") == "malformed_json", raw)

# ---- metrics ------------------------------------------------------------------------
G = "metrics"


def metrics():
    st, js, raw = hub.raw("op", "GET", "/metrics")
    m = {}
    for line in raw.splitlines():
        if line.startswith("huitong_risk_"):
            k, _, v = line.rpartition(" ")
            m[k] = float(v)
    return m


m = metrics()
check(f"{G}: decisions are counted by kind",
      m.get('huitong_risk_decisions_total{decision="allow"}', 0) >= len(ordinary)
      and m.get('huitong_risk_decisions_total{decision="review"}', 0) >= 4
      and m.get('huitong_risk_decisions_total{decision="block"}', 0) >= len(blocked), m)
check(f"{G}: the shadow rule's hits are counted though it changed nothing",
      m.get("huitong_risk_shadow_hits_total", 0) >= len(ordinary), m)
check(f"{G}: the rules in force are version 1", m.get("huitong_risk_rules_version") == 1, m)

# ---- reload: new rules under load, bad ones refused ---------------------------------
G = "reload"
RULES2 = open(RULES).read().replace("version 1", "version {v}")
customers = list(range(3001, 4501))
accounts(hub, "bankA", customers)
load, tid = [], 20000
for rnd in range(2):
    for c in customers:
        tid += 1
        load.append(xfer(tid, c, 101 + c % 5, 2000 + c % 700))
lines = [{"op": "create_transfers", "transfers": load[i:i + 10]}
         for i in range(0, len(load), 10)]
load_file = os.path.join(TMP, "load.jsonl")
open(load_file, "w").write("".join(json.dumps(x) + "\n" for x in lines))
proc = subprocess.Popen(
    [BIN, "client", "--credentials", hub.creds["bankA"], "--url", hub.url,
     "apply", load_file], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
    stderr=subprocess.PIPE, text=True)
reloads = []
for v in range(2, 7):
    time.sleep(0.15)
    st, js, raw = hub.raw("op", "POST", "/v1/risk/rules", RULES2.format(v=v))
    reloads.append((st, js))
    st2, js2, raw2 = hub.raw("op", "POST", "/v1/risk/rules",
                             "version 99\nrule broken: amount >>> 5 => block\n")
    reloads.append((st2, js2))
out, err = proc.communicate(timeout=300)
check(f"{G}: every good file was put in force under load (200, its version)",
      all(st == 200 and js["rules_version"] == v and js["rules"] == 3
          and js["shadow"] == 1 for (st, js), v in zip(reloads[0::2], range(2, 7))),
      reloads[0::2])
bad = reloads[1]
check(f"{G}: a bad file is 400 with line:column errors",
      all(st == 400 and js["code"] == "invalid_request"
          and js["errors"] and js["errors"][0]["line"] == 2
          and js["errors"][0]["column"] > 1 for st, js in reloads[1::2]), bad)
got = [json.loads(l) for l in out.splitlines() if l.strip()]
results = [r for g in got for r in g.get("results", [])]
check(f"{G}: the load ({len(load)} payments in {len(lines)} requests) lost no"
      " payment: every request answered, every payment a result",
      proc.returncode == 0 and len(got) == len(lines)
      and len(results) == len(load), (proc.returncode, err[-300:], len(got)))
oks = [t["id"] for t, r in zip(load, results) if r["result"] == "ok"]
found = {}
for i in range(0, len(oks), 4000):
    found.update(lookup(hub, "bankA", oks[i:i + 4000]))
check(f"{G}: every payment answered ok is in the ledger ({len(oks)})",
      len(oks) > 0 and all(i in found for i in oks), len(found))
versions = []
for k in range(0, len(load), len(load) // 12):
    st, js, raw = hub.raw("reg", "GET", f"/v1/transfers/{load[k]['id']}/risk")
    if st == 200:
        versions.append(js["rules_version"])
check(f"{G}: decisions during the load name the rules in force when each was"
      " made (non-decreasing versions, more than one)",
      versions == sorted(versions) and len(set(versions)) >= 2
      and versions[-1] <= 6, versions)
m = metrics()
check(f"{G}: the bad files left version 6 in force",
      m.get("huitong_risk_rules_version") == 6, m)
check(f"{G}: reloads are counted by outcome",
      m.get('huitong_risk_rules_reloads_total{outcome="ok"}') == 5
      and m.get('huitong_risk_rules_reloads_total{outcome="refused"}') == 5, m)
st, js, raw = hub.raw("bankA", "POST", "/v1/risk/rules", RULES2.format(v=50))
check(f"{G}: a participant cannot change the rules (403)", st == 403, raw)
# SIGHUP re-reads --risk-rules
open(RULES, "w").write(RULES2.format(v=9))
hub.srv.send_signal(signal.SIGHUP)
for _ in range(50):
    time.sleep(0.1)
    if metrics().get("huitong_risk_rules_version") == 9:
        break
check(f"{G}: SIGHUP re-reads --risk-rules (version 9 in force)",
      metrics().get("huitong_risk_rules_version") == 9, metrics())
open(RULES, "w").write("version 10\nrule x: nosuch.feature > 1 => block\n")
hub.srv.send_signal(signal.SIGHUP)
time.sleep(1.0)
check(f"{G}: SIGHUP with a bad file keeps version 9 and the server",
      metrics().get("huitong_risk_rules_version") == 9 and hub.srv.poll() is None,
      metrics())
open(RULES, "w").write(RULES2.format(v=1))   # as the restart below expects

# ---- joint: a block-list entry from bank A stops the same mule at bank B ------------
G = "joint"
accounts(hub, "bankB", [301, 302, 303, 250, 251])   # bankB's customers; 250, 251 mules
KEY = os.path.join(TMP, "bankA-block.key")
p = run(["risk", "blocklist", "key", "--data", hub.data, "--out", KEY])
check(f"{G}: the operator hands out the hub's block-list key", p.returncode == 0,
      p.stderr)


def local_hash(kind, value):   # at bank A: the raw value never leaves it
    p = run(["risk", "blocklist", "hash", "--key-file", KEY, "--kind", kind,
             "--value", value])
    return p.stdout.strip()


def listed_reasons(r):
    return [x for x in r.get("risk", {}).get("reasons", [])
            if x.startswith("blocklisted_")]


st, js, raw = hub.transfers("bankB", [
    xfer(9101, 301, 250, 2000, risk={"channel": "p2p", "device": "b-phone-301"}),
    xfer(9102, 302, 101, 2100, risk={"channel": "qr", "device": "mule-dev-7"})])
check(f"{G}: before any report nothing is blocked for the block list",
      st == 200 and all(not listed_reasons(r) for r in js["results"]), raw)
mule_hash = local_hash("account", "bankB:250")
dev_hash = local_hash("device", "mule-dev-7")
st, js, raw = hub.raw("bankA", "POST", "/v1/risk/blocklist", {"entries": [
    {"kind": "account", "hash": mule_hash, "reason": "mule"},
    {"kind": "device", "hash": dev_hash, "reason": "mule device"},
    {"kind": "account", "account_id": "251", "reason": "mule"},
    {"kind": "account", "account_id": "999999"}]})
check(f"{G}: bank A reports two hashes and an account id: added, added, added,"
      " account_not_found", st == 200 and [e["result"] for e in js["entries"]]
      == ["added", "added", "added", "account_not_found"], raw)
check(f"{G}: an account id is hashed by the hub as its party reference",
      st == 200 and js["entries"][2]["hash"] == local_hash("account", "bankB:251"),
      raw)
st, js, raw = hub.raw("bankB", "POST", "/v1/risk/blocklist", {"entries": [
    {"kind": "device", "hash": dev_hash, "reason": "seen too"}]})
check(f"{G}: the first report stands: bank B's report of the same device exists",
      st == 200 and js["entries"][0]["result"] == "exists", raw)
st, js, raw = hub.transfers("bankB", [
    xfer(9103, 303, 250, 1900, risk={"channel": "p2p", "device": "b-phone-303"})])
r = js["results"][0] if st == 200 else {}
check(f"{G}: bank B's customer paying bank A's reported mule is blocked",
      r.get("result") == "risk_blocked" and r["risk"]["decision"] == "block"
      and listed_reasons(r) == ["blocklisted_payee"], raw)
st, js, raw = hub.transfers("bankB", [
    xfer(9104, 301, 101, 2200, risk={"channel": "qr", "device": "mule-dev-7"})])
r = js["results"][0] if st == 200 else {}
check(f"{G}: the reported device is blocked at bank B too",
      r.get("result") == "risk_blocked"
      and listed_reasons(r) == ["blocklisted_device"], raw)
st, js, raw = hub.transfers("bankA", [xfer(9105, 2, 251, 2300)])
r = js["results"][0] if st == 200 else {}
check(f"{G}: the mule reported by account id is blocked as a payee",
      r.get("result") == "risk_blocked"
      and listed_reasons(r) == ["blocklisted_payee"], raw)
st, js, raw = hub.transfers("bankB", [
    xfer(9106, 302, 102, 2400, risk={"channel": "qr", "device": "b-phone-302"})])
check(f"{G}: ordinary payments at bank B still flow",
      st == 200 and not listed_reasons(js["results"][0]), raw)
st, js, raw = hub.raw("reg", "GET", "/v1/transfers/9103/risk")
check(f"{G}: the regulator reads the decision with its reason",
      st == 200 and js["decision"] == "block"
      and "blocklisted_payee" in js["reasons"], raw)
st, js, raw = hub.raw("bankA", "GET", "/v1/risk/blocklist")
check(f"{G}: bank A lists its three reports (without raw identifiers)",
      st == 200 and js["count"] == 3 and all(e["reporter"] == "bankA"
                                             for e in js["entries"])
      and "bankB:250" not in raw and '"250"' not in raw
      and "mule-dev-7" not in raw, raw)  # (not a bare 250: timestamps)
st, js, raw = hub.raw("bankB", "GET", "/v1/risk/blocklist")
check(f"{G}: bank B lists none of bank A's reports", st == 200
      and js["count"] == 0 and js["entries"] == [], raw)
st, js, raw = hub.raw("reg", "GET", "/v1/risk/blocklist?limit=2")
check(f"{G}: the regulator sees all, limit applies", st == 200
      and js["count"] == 3 and len(js["entries"]) == 2, raw)
st, js, raw = hub.raw("bankB", "POST", "/v1/risk/blocklist/remove",
                      {"kind": "device", "hash": dev_hash})
check(f"{G}: bank B cannot remove bank A's entry (404)", st == 404, raw)
st, js, raw = hub.raw("reg", "POST", "/v1/risk/blocklist/remove",
                      {"kind": "device", "hash": dev_hash})
check(f"{G}: the regulator cannot remove (403)", st == 403, raw)
bad = [({"entries": [{"kind": "device", "hash": "zz"}]}, 400, "hash"),
       ({"entries": [{"kind": "device", "account_id": "250"}]}, 400, "account_id"),
       ({"entries": [{"kind": "fax", "hash": dev_hash}]}, 400, "kind"),
       ({"entries": [{"kind": "device", "hash": dev_hash, "x": 1}]}, 400, "unknown"),
       ({"entries": [{"kind": "device", "hash": dev_hash, "reason": "a\nb"}]},
        400, "reason"),
       ({"entries": []}, 400, "entries"),
       ({"entries": [{"kind": "device", "hash": dev_hash}] * 1001}, 413, "1000")]
for body, want_st, word in bad:
    st, js, raw = hub.raw("bankA", "POST", "/v1/risk/blocklist", body)
    check(f"{G}: a bad submission is {want_st} naming the problem ({word})",
          st == want_st and word in (js or {}).get("message", ""), raw[:300])
st, js, raw = hub.raw("bankA", "POST", "/v1/risk/blocklist/remove",
                      {"kind": "account", "hash": local_hash("account", "bankB:251")})
check(f"{G}: bank A removes its own entry", st == 200
      and js["result"] == "removed" and js["count"] == 2, raw)
st, js, raw = hub.transfers("bankA", [xfer(9107, 2, 251, 2300)])
check(f"{G}: once removed the account is not blocked for the block list",
      st == 200 and not listed_reasons(js["results"][0]), raw)
p = run(["risk", "blocklist", "add", "--data", hub.data, "--reporter", "op",
         "--kind", "device", "--value", "cli-dev-1", "--reason", "mule"])
check(f"{G}: the operator's CLI adds an entry beside the running hub",
      p.returncode == 0, p.stderr)
hub.srv.send_signal(signal.SIGHUP)
deadline = time.time() + 5
while time.time() < deadline and "re-read the block list" not in open(hub.log).read():
    time.sleep(0.1)
st, js, raw = hub.transfers("bankB", [
    xfer(9109, 303, 101, 2000, risk={"channel": "qr", "device": "cli-dev-1"})])
check(f"{G}: after SIGHUP the hub enforces it",
      st == 200 and listed_reasons(js["results"][0]) == ["blocklisted_device"],
      raw)

# ---- record: decisions stored with their transfers, read back ------------------------
G = "record"
allowed_id = ordinary[0]["id"]
blocked_id = blocked[0]["id"] if blocked else None
want = {allowed_id: ("allow", "ok", None), "8001": ("review", "ok", "pending"),
        "8002": ("review", "ok", "voided"), "8003": ("review", "ok", "posted"),
        "8004": ("review", "ok", "voided")}
if blocked_id:
    want[blocked_id] = ("block", "risk_blocked", None)


def decisions_readable(label):
    for tid, (dec, res, rev) in want.items():
        st, js, raw = hub.raw("reg", "GET", f"/v1/transfers/{tid}/risk")
        ok = (st == 200 and js["id"] == tid and js["decision"] == dec
              and js["result"] == res and js.get("review") == rev
              and js["rules_version"] in (1, 9) and js["model_version"]
              and 0 <= js["score"] <= 1 and isinstance(js["reasons"], list)
              and js["time_ms"] > 0 and isinstance(js["leaf"], int))
        check(f"{G}: {label}: the regulator reads the {dec} decision of"
              f" {tid} ({res}{', ' + rev if rev else ''})", ok, raw)


decisions_readable("live")
st, js, raw = hub.raw("bankB", "GET", f"/v1/transfers/{allowed_id}/risk")
check(f"{G}: the payee's participant reads it too (it owns the credit account)",
      st == 200 and js["decision"] == "allow", raw)
st, js, raw = hub.raw("bankA", "GET", "/v1/transfers/424242/risk")
check(f"{G}: a transfer never scored is 404", st == 404
      and js.get("code") == "not_found", raw)
st, js, raw = hub.raw("bankA", "GET", "/v1/transfers/1001/risk")
check(f"{G}: unknown ids are 404 too", st == 404, raw)
# kill -9 once everything above was acknowledged; restart; all still there
hub.stop(signal.SIGKILL)
hub.start()
decisions_readable("after kill -9 and restart")
st, js, raw = hub.transfers("bankB", [
    xfer(9108, 302, 250, 1800, risk={"channel": "p2p", "device": "b-phone-302"})])
check(f"{G}: after kill -9 and restart the block list still stops the mule",
      st == 200 and js["results"][0]["result"] == "risk_blocked", raw)
st, js, raw = hub.transfers("op", [{"id": "8020", "pending_id": "8001",
                                    "flags": ["post_pending_transfer"]}])
check(f"{G}: after the restart 8001 is still held (a post is 403)",
      st == 403 and "held for risk review" in (js or {}).get("message", ""), raw)
rc, out, err = hub.apply("bankA", [{"op": "create_transfers", "transfers": [
    xfer(8001, 7, 215, 4_500_000)]}])
check(f"{G}: an exact retry of a held transfer still answers exists",
      rc == 0 and out and out[0]["results"][0]["result"] == "exists", (out, err))
hub.stop()
p = run(["journal", "verify", "--data", hub.data], timeout=300)
check(f"{G}: journal verify passes (every decision on its transfer's leaf)",
      p.returncode == 0, p.stdout[-300:] + p.stderr[-300:])

# a schema-2 store (before risk decisions) opens and migrates to 4
import sqlite3
db = sqlite3.connect(os.path.join(hub.data, "huitong.db"))
db.executescript("DROP TABLE risk_decision; DROP TABLE refusal_index;"
                 " DROP TABLE risk_block;"
                 " UPDATE meta SET value='2' WHERE key='schema_version';")
db.commit()
db.close()
hub.start()
st, js, raw = hub.transfers("bankA", [xfer(8100 + k, 9, 220, 1000,
                                           risk={"device": "evil-9"})
                                      for k in range(6)])
last = js["results"][-1] if st == 200 else {}
check(f"{G}: a schema-2 store migrates when opened: new decisions are stored",
      st == 200 and hub.raw("reg", "GET", f"/v1/transfers/{last.get('id')}/risk")[0]
      == 200, raw)
hub.stop()
db = sqlite3.connect(os.path.join(hub.data, "huitong.db"))
ver = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
db.close()
check(f"{G}: the migrated store says schema 4", ver and ver[0] == "4", ver)
p = run(["journal", "verify", "--data", hub.data], timeout=300)
check(f"{G}: journal verify passes on the migrated store", p.returncode == 0,
      p.stdout[-300:] + p.stderr[-300:])

# the review timeout voids: a hub with a 2 s review timeout
fast = Hub("fast", ["--risk", "--risk-model", model, "--risk-rules", RULES,
                    "--risk-state-mb", "64", "--risk-review-timeout", "2",
                    "--risk-block", "0.999"])
fast.start()
accounts(fast, "bankA", [1])
accounts(fast, "bankB", [2])
st, js, raw = fast.transfers("bankA", [xfer(2, 1, 2, 5_000_000)])
check(f"{G}: held with a 2 s timeout",
      st == 200 and js["results"][0]["risk"]["decision"] == "review", raw)
a = balance(fast, "bankA", 1)
check(f"{G}: while held, the amount is reserved (debits_pending)",
      a and a["debits_pending"] == "5000000", a)
time.sleep(3.5)
a = balance(fast, "bankA", 1)
check(f"{G}: after the timeout the hold is voided: nothing pending, nothing"
      " posted", a and a["debits_pending"] == "0" and a["debits_posted"] == "0", a)
fast.stop()

# ---- journal ----------------------------------------------------------------------
G = "journal"
for h in (fast,):
    p = run(["journal", "verify", "--data", h.data], timeout=300)
    check(f"{G}: journal verify passes on the {h.name} store",
          p.returncode == 0, p.stdout[-300:] + p.stderr[-300:])

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
rc=$?
exit $rc

#!/usr/bin/env bash
# crash.sh — kill -9 `huitong ledger apply` at random points under load and
# check that nothing acknowledged was lost and every invariant holds.
#
# One store for all rounds (crashes accumulate). Each round:
#   1. a generator (python, seeded) writes create_transfers lines — random
#      batches of valid and failing transfers, linked chains (some left
#      open), pending transfers and posts/voids of earlier ones, balancing
#      transfers — through a pipe into `huitong ledger apply`, while the
#      acknowledged result lines are read back;
#   2. after a random delay (50–600 ms, counted from the first
#      acknowledgement or, in one round of five, from the start so the kill
#      can land during open/replay) the apply process gets SIGKILL;
#   3. a fresh `ledger apply` looks up every transfer the round sent, then
#      (a) every acknowledged ok is present with the same accounts and
#      amount, every acknowledged failure is absent; every acknowledged
#      burned failure answers id_already_failed to a retry, and a sample of
#      acknowledged oks answers exists;
#      (b) the store opened (the hub checks replayed against stored
#      balances) and every account's four balances equal those implied by
#      the transfers present (posts, voids and open pending transfers
#      included), and per ledger debits equal credits;
#      (c) `huitong journal verify` exits 0 (every round; in a soak every
#      10th round and the last: HT_CRASH_VERIFY_EVERY).
#
#   HUITONG            the binary (ctest sets it; default build/huitong)
#   HT_CRASH_ROUNDS    rounds (default 50; HT_SOAK=1 makes it 500)
#   HT_CRASH_SEED      seed of the first round (default: from the clock;
#                      printed so a failure can be replayed)
#   HT_KEEP=1          keep the store and print where it is
# Ends with "N passed, M failed"; exits 1 on any failure.
set -uo pipefail

src=${HT_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${HUITONG:-$src/build/huitong}
if [ ! -x "$bin" ]; then
	echo "crash: no huitong binary at $bin (set HUITONG)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
rounds=${HT_CRASH_ROUNDS:-50}
[ "${HT_SOAK:-0}" = 1 ] && rounds=${HT_CRASH_ROUNDS:-500}
seed=${HT_CRASH_SEED:-$(date +%s%N | cut -c8-16)}

exec python3 - "$bin" "$rounds" "$seed" <<'PY'
import collections, json, os, random, shutil, signal, subprocess, sys, tempfile, threading, time

BIN, ROUNDS, SEED = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# journal verify rechecks the whole store (O(events + heads)): every round
# by default, every 10th (and the last) in a soak, where the store grows
# large.
VERIFY_EVERY = int(os.environ.get("HT_CRASH_VERIFY_EVERY", "10" if os.environ.get("HT_SOAK") == "1" else "1"))
KEEP = os.environ.get("HT_KEEP") == "1"
LEDGER = 156
BATCH_MAX = 8190
U64_MAX = 2**64 - 1

PLAIN = [1, 2, 3, 4]                       # no limits: sources of money
LIMITED = list(range(5, 17))               # debits_must_not_exceed_credits
CAPPED = [17]                              # credits_must_not_exceed_debits
HISTORY = [18, 19]                         # history, no limits
OTHER_LEDGER = 30                          # ledger 157: ledger mismatches
ACCOUNTS = PLAIN + LIMITED + CAPPED + HISTORY
MISSING = 999                              # never created
VALIDATION = {  # codes a retry of the same body answers again (checked
                # before id_already_failed)
    "flags_are_mutually_exclusive", "debit_account_id_must_not_be_zero",
    "debit_account_id_must_not_be_int_max", "credit_account_id_must_not_be_zero",
    "credit_account_id_must_not_be_int_max", "accounts_must_be_different",
    "pending_id_must_be_zero", "pending_id_must_not_be_zero",
    "pending_id_must_not_be_int_max", "pending_id_must_be_different",
    "timeout_reserved_for_pending_transfer", "closing_transfer_must_be_pending",
    "amount_must_not_be_zero", "ledger_must_not_be_zero", "code_must_not_be_zero",
    "id_must_not_be_zero", "id_must_not_be_int_max"}
SEEN = collections.Counter()   # acknowledged result codes, all rounds
NOT_BURNED = {"linked_event_failed", "linked_event_chain_open", "id_already_failed"}


def run(args, inp=None, timeout=300):
    return subprocess.run([BIN] + args, input=inp, capture_output=True, text=True,
                          errors="replace", timeout=timeout,
                          stdin=None if inp is not None else subprocess.DEVNULL)


def apply(data, lines):
    """One `ledger apply` run over lines; returns (responses, process)."""
    p = run(["ledger", "apply", "--data", data, "-"], "".join(l + "\n" for l in lines))
    out = []
    for l in p.stdout.split("\n"):
        if l:
            try:
                out.append(json.loads(l))
            except ValueError:
                out.append({"unparsable": l[:300]})
    return out, p


def tr(tid, dr, cr, amount, flags=(), **kw):
    t = {"id": str(tid), "debit_account_id": str(dr), "credit_account_id": str(cr),
         "amount": str(amount), "ledger": LEDGER, "code": 1}
    if flags:
        t["flags"] = list(flags)
    t.update(kw)
    return t


class Generator:
    """Random create_transfers batches. Ids are unique across all rounds;
    pending transfers sent earlier (acknowledged or not) are posted or
    voided later, some twice."""

    def __init__(self):
        self.next_id = 10**6
        self.pendings = []   # (id, amount) of pending transfers sent

    def new_id(self):
        self.next_id += 1
        return self.next_id

    def event(self, rng):
        k = rng.random()
        tid = self.new_id()
        if k < 0.40:   # ordinary, often from a limited account (may exceed)
            dr = rng.choice(LIMITED + PLAIN)
            cr = rng.choice([a for a in ACCOUNTS if a != dr and a not in CAPPED])
            return tr(tid, dr, cr, rng.randint(1, 60000))
        if k < 0.55:   # pending
            dr = rng.choice(LIMITED + PLAIN)
            cr = rng.choice([a for a in ACCOUNTS if a != dr and a not in CAPPED])
            amount = rng.randint(1, 40000)
            self.pendings.append((tid, amount))
            return tr(tid, dr, cr, amount, ["pending"],
                      timeout_s=rng.choice([0, 86400]))
        if k < 0.70 and self.pendings:   # post or void an earlier pending
            pid, pamount = rng.choice(self.pendings[-400:])
            t = {"id": str(tid), "pending_id": str(pid)}
            if rng.random() < 0.5:
                t["flags"] = ["post_pending_transfer"]
                t["amount"] = str(rng.choice([0, pamount, rng.randint(1, pamount),
                                              pamount + 1]))
            else:
                t["flags"] = ["void_pending_transfer"]
            return t
        if k < 0.76:   # balancing
            dr = rng.choice(LIMITED)
            cr = rng.choice(PLAIN)
            return tr(tid, dr, cr, rng.randint(1, 100000), ["balancing_debit"])
        if k < 0.80:   # credit a capped account: exceeds_debits unless debited
            if rng.random() < 0.5:
                return tr(tid, CAPPED[0], rng.choice(PLAIN), rng.randint(1, 500))
            return tr(tid, rng.choice(PLAIN), CAPPED[0], rng.randint(1, 500))
        if k < 0.86:   # unknown account / other ledger
            if rng.random() < 0.5:
                return tr(tid, MISSING, rng.choice(PLAIN), 5)
            return tr(tid, rng.choice(PLAIN), OTHER_LEDGER, 5)
        if k < 0.90:   # validation failures
            dr = rng.choice(PLAIN)
            return rng.choice([tr(tid, dr, dr, 5), tr(tid, dr, 18, 0),
                               tr(tid, dr, 18, 5, code=0)])
        dr, cr = rng.sample(PLAIN + HISTORY, 2)
        return tr(tid, dr, cr, rng.randint(1, 1000))

    def batch(self, rng):
        events = []
        n = rng.randint(1, 30)
        while len(events) < n:
            if rng.random() < 0.15:   # a chain of 2..4
                chain = [self.event(rng) for _ in range(rng.randint(2, 4))]
                for e in chain[:-1]:
                    e["flags"] = e.get("flags", []) + ["linked"]
                events += chain
            else:
                events.append(self.event(rng))
        if rng.random() < 0.05:   # leave a chain open at the end
            events[-1]["flags"] = events[-1].get("flags", []) + ["linked"]
        return {"op": "create_transfers", "transfers": events}


class Model:
    """Balances implied by the transfers present in the store."""

    def __init__(self):
        self.bal = {a: [0, 0, 0, 0] for a in ACCOUNTS + [OTHER_LEDGER]}  # dp dP cp cP
        self.pending = {}   # id -> (dr, cr, amount, state: open/posted/voided)

    def apply(self, t, problems):
        flags = set(t["flags"])
        dr, cr, amt = int(t["debit_account_id"]), int(t["credit_account_id"]), int(t["amount"])
        if dr not in self.bal or cr not in self.bal:
            problems.append(f"transfer {t['id']} present with unknown accounts {dr}/{cr}")
            return
        if "post_pending_transfer" in flags or "void_pending_transfer" in flags:
            pid = int(t["pending_id"])
            p = self.pending.get(pid)
            if p is None or p[3] != "open":
                problems.append(f"transfer {t['id']} resolves {pid}, which is "
                                f"{'absent' if p is None else p[3]}")
                return
            if (p[0], p[1]) != (dr, cr):
                problems.append(f"transfer {t['id']}: accounts {dr}/{cr} differ from its pending {pid}: {p[0]}/{p[1]}")
            self.bal[p[0]][0] -= p[2]
            self.bal[p[1]][2] -= p[2]
            if "post_pending_transfer" in flags:
                if not 0 < amt <= p[2]:
                    problems.append(f"post {t['id']} has amount {amt}, pending {pid} had {p[2]}")
                self.bal[dr][1] += amt
                self.bal[cr][3] += amt
                self.pending[pid] = p[:3] + ("posted",)
            else:
                if amt != p[2]:
                    problems.append(f"void {t['id']} has amount {amt}, pending {pid} had {p[2]}")
                self.pending[pid] = p[:3] + ("voided",)
        elif "pending" in flags:
            self.bal[dr][0] += amt
            self.bal[cr][2] += amt
            self.pending[int(t["id"])] = (dr, cr, amt, "open")
        else:
            self.bal[dr][1] += amt
            self.bal[cr][3] += amt


def chunks(xs, n):
    return [xs[i:i + n] for i in range(0, len(xs), n)]


def strip_linked(t):
    t = dict(t)
    if "flags" in t:
        t["flags"] = [f for f in t["flags"] if f != "linked"]
    return t


def crash_round(data, gen, rng, from_start):
    """Feed generated lines to an apply process and SIGKILL it. Returns
    (sent lines as dicts, acknowledged responses, kill delay ms, rc, stderr)."""
    p = subprocess.Popen([BIN, "ledger", "apply", "--data", data, "-"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    sent, acked = [], []
    first = threading.Event()
    gen_rng = random.Random(rng.random())

    def writer():
        try:
            for _ in range(100000):
                req = gen.batch(gen_rng)
                line = (json.dumps(req, separators=(",", ":")) + "\n").encode()
                sent.append(req)   # before writing: may be read, may be not
                p.stdin.write(line)
                p.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass
        finally:
            try:
                p.stdin.close()
            except (BrokenPipeError, OSError):
                pass

    def reader():
        buf = b""
        while True:
            chunk = p.stdout.read1(65536)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for l in lines:
                acked.append(l.decode("utf-8", "replace"))
                first.set()
        first.set()   # a trailing partial line was never acknowledged

    err = []
    threads = [threading.Thread(target=writer, daemon=True),
               threading.Thread(target=reader, daemon=True),
               threading.Thread(target=lambda: err.append(p.stderr.read()), daemon=True)]
    for t in threads:
        t.start()
    delay_ms = rng.randint(50, 600)
    if not from_start:
        first.wait(30)
    time.sleep(delay_ms / 1000)
    try:
        os.kill(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    rc = p.wait()
    for t in threads[1:]:
        t.join(10)
    threads[0].join(10)
    return sent, acked, delay_ms, rc, (err[0].decode("utf-8", "replace") if err else "")


def check_round(data, sent, acked, model, problems):
    """(a), (b) and the retries. Mutates model."""
    n_ok = n_fail = 0
    ack_ok, ack_fail = [], []   # (event, result)
    for i, line in enumerate(acked):
        try:
            resp = json.loads(line)
        except ValueError:
            problems.append(f"acknowledged line {i + 1} is not JSON: {line[:200]}")
            continue
        events = sent[i]["transfers"]
        res = resp.get("results")
        if resp.get("op") != "create_transfers" or not isinstance(res, list) or len(res) != len(events):
            problems.append(f"acknowledged line {i + 1} does not answer its request: {line[:300]}")
            continue
        for j, (e, r) in enumerate(zip(events, res)):
            if r.get("index") != j or r.get("id") != e["id"]:
                problems.append(f"line {i + 1} result {j} is for index {r.get('index')} id {r.get('id')}, expected {j} / {e['id']}")
            if r.get("result") == "ok":
                ack_ok.append((e, r["result"]))
            else:
                ack_fail.append((e, r.get("result")))
        # chain rule: a chain is all ok or has no ok at all
        chain = []
        for e, r in zip(events, res):
            chain.append(r.get("result"))
            if "linked" not in e.get("flags", []):
                if "ok" in chain and any(c != "ok" for c in chain):
                    problems.append(f"line {i + 1}: chain partly committed: {chain}")
                chain = []
        if chain and "ok" in chain:
            problems.append(f"line {i + 1}: open chain committed: {chain}")
    n_ok, n_fail = len(ack_ok), len(ack_fail)
    SEEN.update(r for _, r in ack_ok + ack_fail)
    for e, r in ack_fail:
        if r in ("exists", "id_already_failed") or (r or "").startswith("exists_with"):
            problems.append(f"transfer {e['id']} (a fresh id) got {r}")

    ids = [e["id"] for req in sent for e in req["transfers"]]
    lookups = chunks(ids, BATCH_MAX)
    retries = [strip_linked(e) for e, r in ack_fail if r not in NOT_BURNED]
    sample = [strip_linked(e) for e, _ in ack_ok[:400]]
    lines = [json.dumps({"op": "lookup_transfers", "ids": c}) for c in lookups]
    lines += [json.dumps({"op": "create_transfers", "transfers": c})
              for c in chunks(retries + sample, BATCH_MAX)]
    lines.append(json.dumps({"op": "lookup_accounts", "ids": [str(a) for a in model.bal]}))
    out, p = apply(data, lines)
    if p.returncode != 0 or len(out) != len(lines):
        problems.append(f"check run: `ledger apply` exited {p.returncode} with {len(out)}/{len(lines)} "
                        f"lines (the store did not open cleanly?): {p.stderr.strip()[:500]}")
        return n_ok, n_fail, 0
    present = {}
    for o in out[:len(lookups)]:
        for t in o.get("transfers", []):
            present[t["id"]] = t
    # (a) acknowledged results
    for e, _ in ack_ok:
        t = present.get(e["id"])
        if t is None:
            problems.append(f"acknowledged ok transfer {e['id']} is missing")
            continue
        flags = set(e.get("flags", [])) - {"linked"}
        if set(t["flags"]) - {"linked"} != flags:
            problems.append(f"transfer {e['id']}: flags {t['flags']}, sent {sorted(flags)}")
        if "post_pending_transfer" in flags or "void_pending_transfer" in flags:
            if t["pending_id"] != e["pending_id"]:
                problems.append(f"transfer {e['id']}: pending_id {t['pending_id']}, sent {e['pending_id']}")
            if "post_pending_transfer" in flags and e.get("amount", "0") != "0" and t["amount"] != e["amount"]:
                problems.append(f"post {e['id']}: amount {t['amount']}, sent {e['amount']}")
            continue
        if (t["debit_account_id"], t["credit_account_id"]) != (e["debit_account_id"], e["credit_account_id"]):
            problems.append(f"transfer {e['id']}: accounts {t['debit_account_id']}/{t['credit_account_id']}, "
                            f"sent {e['debit_account_id']}/{e['credit_account_id']}")
        if "balancing_debit" in flags:
            if not 0 < int(t["amount"]) <= int(e["amount"]):
                problems.append(f"balancing {e['id']}: amount {t['amount']}, asked for at most {e['amount']}")
        elif t["amount"] != e["amount"]:
            problems.append(f"transfer {e['id']}: amount {t['amount']}, sent {e['amount']}")
    for e, r in ack_fail:
        if e["id"] in present:
            problems.append(f"transfer {e['id']} failed with {r} when acknowledged but is present")
    # retries
    k = len(lookups)
    got = [r for o in out[k:-1] for r in o.get("results", [])]
    if len(got) != len(retries) + len(sample):
        problems.append(f"retries: {len(got)} results for {len(retries) + len(sample)} events: {out[k:k + 1]}")
    else:
        burned = [(e, r) for e, r in ack_fail if r not in NOT_BURNED]
        for (e, r), g in zip(burned, got):
            want = r if r in VALIDATION else "id_already_failed"
            if g.get("result") != want:
                problems.append(f"retry of {e['id']} (failed with {r}) got {g.get('result')}, expected {want}")
        for e, g in zip(sample, got[len(burned):]):
            if g.get("result") != "exists":
                problems.append(f"replay of acknowledged {e['id']} got {g.get('result')}, expected exists")
    # (b) balances implied by the transfers present
    for t in sorted(present.values(), key=lambda t: int(t["timestamp"])):
        model.apply(t, problems)
    accounts = {int(a["id"]): a for a in out[-1].get("accounts", [])}
    names = ["debits_pending", "debits_posted", "credits_pending", "credits_posted"]
    sums = [0, 0, 0, 0]
    for aid, want in model.bal.items():
        a = accounts.get(aid)
        if a is None:
            problems.append(f"account {aid} missing from lookup")
            continue
        have = [int(a[n]) for n in names]
        sums = [s + h for s, h in zip(sums, have)]
        if have != want:
            problems.append(f"account {aid}: balances {dict(zip(names, have))}, "
                            f"the present transfers imply {dict(zip(names, want))}")
            model.bal[aid] = have   # resynchronise so one bug is reported once
    if sums[0] != sums[2] or sums[1] != sums[3]:
        problems.append(f"ledger {LEDGER}: debits {sums[0]}/{sums[1]} != credits {sums[2]}/{sums[3]} (pending/posted)")
    return n_ok, n_fail, len(present)


def setup(data, model, problems):
    p = run(["init", "--data", data])
    if p.returncode != 0:
        problems.append(f"init exited {p.returncode}: {p.stderr.strip()}")
        return
    accts = [{"id": str(a), "ledger": LEDGER, "code": 1} for a in PLAIN]
    accts += [{"id": str(a), "ledger": LEDGER, "code": 2,
               "flags": ["debits_must_not_exceed_credits"]} for a in LIMITED]
    accts += [{"id": str(a), "ledger": LEDGER, "code": 3,
               "flags": ["credits_must_not_exceed_debits"]} for a in CAPPED]
    accts += [{"id": str(a), "ledger": LEDGER, "code": 4, "flags": ["history"]} for a in HISTORY]
    accts.append({"id": str(OTHER_LEDGER), "ledger": 157, "code": 1})
    fund = [tr(100 + a, PLAIN[a % 4], a, 200000) for a in LIMITED]
    out, p = apply(data, [json.dumps({"op": "create_accounts", "accounts": accts}),
                          json.dumps({"op": "create_transfers", "transfers": fund})])
    ok = len(out) == 2 and all(r.get("result") == "ok" for o in out for r in o.get("results", [None]))
    if p.returncode != 0 or not ok:
        problems.append(f"setup failed (exit {p.returncode}): {out} {p.stderr.strip()[:300]}")
        return
    for t in fund:
        model.apply(dict(t, flags=[], timestamp="0"), problems)


def main():
    tmp = tempfile.mkdtemp(prefix="ht-crash-")
    data = os.path.join(tmp, "data")
    print(f"crash: {ROUNDS} rounds, seed {SEED}, store {data if KEEP else '(temporary)'}")
    passed = failed = 0
    model, gen = Model(), Generator()
    problems = []
    setup(data, model, problems)
    if problems:
        print("setup: FAIL\n  " + "\n  ".join(problems))
        print("0 passed, 1 failed")
        sys.exit(1)
    t_all = time.monotonic()
    for rnd in range(1, ROUNDS + 1):
        t0 = time.monotonic()
        rng = random.Random(SEED + rnd)
        problems = []
        from_start = rng.random() < 0.2
        sent, acked, delay, rc, err = crash_round(data, gen, rng, from_start)
        if rc not in (-signal.SIGKILL, 0):
            problems.append(f"apply exited {rc} before the kill: {err.strip()[:500]}")
        n_ok, n_fail, n_present = check_round(data, sent, acked, model, problems)
        # Post and void what is really there: every open pending transfer,
        # and some resolved ones (already_posted / already_voided).
        gen.pendings = [(pid, p[2]) for pid, p in model.pending.items() if p[3] != "open"][-50:] + \
                       [(pid, p[2]) for pid, p in model.pending.items() if p[3] == "open"][-350:]
        v = run(["journal", "verify", "--data", data]) if rnd % VERIFY_EVERY == 0 or rnd == ROUNDS else None
        if v is not None and v.returncode != 0:
            problems.append(f"journal verify exited {v.returncode}: {(v.stdout + v.stderr).strip()[:500]}")
        dt = time.monotonic() - t0
        what = (f"killed after {delay} ms{' from start' if from_start else ''}; "
                f"{len(acked)}/{len(sent)} lines acknowledged ({n_ok} ok, {n_fail} failed), "
                f"{n_present} present; {dt:.1f}s")
        if problems:
            failed += 1
            print(f"round {rnd}: FAIL ({what}; seed {SEED})")
            for pr in problems[:15]:
                print(f"  - {pr}")
            if len(problems) > 15:
                print(f"  … and {len(problems) - 15} more")
        else:
            passed += 1
            print(f"round {rnd}: ok ({what})")
        sys.stdout.flush()
    print(f"crash: {ROUNDS} rounds in {time.monotonic() - t_all:.0f}s; acknowledged results: "
          + ", ".join(f"{k} {v}" for k, v in SEEN.most_common()))
    if KEEP:
        print(f"(kept store {data})")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


main()
PY

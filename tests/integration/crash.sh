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
#      acknowledged oks answers exists; every acknowledged burned failure is
#      a refusal event (journal leaf of kind 4) with its id and result,
#      exactly once, and no refusal names a transfer that is present;
#      (b) the store opened (the hub checks replayed against stored
#      balances) and every account's four balances equal those implied by
#      the transfers present (posts, voids, expiries and open pending
#      transfers included), per ledger debits equal credits, and
#      get_account_transfers / get_account_balances agree with the
#      transfers present (every 4th round is an expiry round: some pending
#      transfers have timeout_s 1 and the checks wait until they are due);
#      (c) `huitong journal verify` exits 0 (every 5th round and after the
#      last; every 25th in a soak: HT_CRASH_VERIFY_EVERY);
#   every 5th round, another journal verify runs while the writer commits
#   and must pass too. Then three write-failure rounds (fresh stores, a file
#   size limit makes a commit fail with EFBIG: apply must exit 2 by itself
#   and the same checks hold), and two negative controls: on copies of the
#   store, a stored balance or an event changed by one must make open and
#   verify fail.
#
#   HUITONG            the binary (ctest sets it; default build/huitong)
#   HT_CRASH_ROUNDS    rounds (default 50; HT_SOAK=1 makes it 500)
#   HT_CRASH_SEED      seed (default: from the clock; printed so the random
#                      choices can be repeated — the kill points depend on
#                      timing)
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

exec python3 - "$bin" "$rounds" "$seed" "$src" <<'PY'
import collections, itertools, json, os, random, resource, shutil, signal, subprocess, sys, tempfile, threading, time

BIN, ROUNDS, SEED, SRC = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
# journal verify rechecks the whole store, O(events + heads) with one
# signature check per head (~0.3 ms for SM2), so it dominates a round once
# the store has grown: run it every 5th round (25th in a soak) and after the
# last. The damage it looks for accumulates, so it is still found.
VERIFY_EVERY = int(os.environ.get("HT_CRASH_VERIFY_EVERY", "25" if os.environ.get("HT_SOAK") == "1" else "5"))
KEEP = os.environ.get("HT_KEEP") == "1"
LEDGER = 156
BATCH_MAX = 8190

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
TIMES = {}   # seconds spent in the last check run and journal verify
DUMMY_IDS = itertools.count(9 * 10**15)   # the check run's expiry triggers
SEEN = collections.Counter()   # acknowledged result codes, all rounds
NOT_BURNED = {"linked_event_failed", "linked_event_chain_open", "id_already_failed"}


def result_codes():
    """snake_case result name -> enum ht_result value, from ledger.h."""
    import re
    with open(os.path.join(SRC, "include", "huitong", "ledger.h"), encoding="utf-8") as f:
        return {m.group(1).lower(): int(m.group(2))
                for m in re.finditer(r"\bHT_R_([A-Z_]+) = (\d+),", f.read())}


RESULT_CODES = result_codes()


def refusal_events(data):
    """id -> [result, ...] of every refusal event (kind 4: id[16], result
    u16, timestamp u64; ledger.h) in the store, read directly."""
    import sqlite3
    db = sqlite3.connect(f"file:{os.path.join(data, 'huitong.db')}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT data FROM event WHERE substr(data, 1, 1) = x'04'").fetchall()
    finally:
        db.close()
    out = collections.defaultdict(list)
    for (d,) in rows:
        out[int.from_bytes(d[1:17], "big")].append(int.from_bytes(d[17:19], "big") if len(d) == 27 else -1)
    return out


def check_refusals(data, ack_fail, present, problems):
    """Refusals are journal events: each acknowledged failure that burns
    its id is there once with its result; a present transfer has none."""
    try:
        refusals = refusal_events(data)
    except Exception as e:   # sqlite3.Error and friends: say so, do not pass
        problems.append(f"cannot read the refusal events (schema changed?): {e}")
        return
    for e, r in ack_fail:
        if r in NOT_BURNED or r in ("id_must_not_be_zero", "id_must_not_be_int_max"):
            continue
        have = refusals.get(int(e["id"]))
        if have != [RESULT_CODES.get(r)]:
            problems.append(f"acknowledged {r} of {e['id']}: refusal events {have}, "
                            f"expected one with result {RESULT_CODES.get(r)}")
    for tid in present:
        if int(tid) in refusals:
            problems.append(f"transfer {tid} is present and also refused: {refusals[int(tid)]}")


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
        self.short_timeouts = False   # this round: some pending expire in 1 s

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
                      timeout_s=1 if self.short_timeouts and rng.random() < 0.5
                      else rng.choice([0, 86400]))
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
        # Small batches: many commits (kill points) per round while the
        # store, which every round's checks rescan, grows slowly.
        n = rng.randint(1, 12)
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
        self.pending = {}   # id -> (dr, cr, amount, state: open/posted/voided/expired)
        self.short = set()  # pending ids with timeout_s 1, not yet expired
        self.by_account = collections.defaultdict(list)  # account -> [(ts, id)]
        self.expiries = collections.Counter()            # account -> expiries

    def apply(self, t, problems):
        flags = set(t["flags"])
        dr, cr, amt = int(t["debit_account_id"]), int(t["credit_account_id"]), int(t["amount"])
        if dr not in self.bal or cr not in self.bal:
            problems.append(f"transfer {t['id']} present with unknown accounts {dr}/{cr}")
            return
        for a in (dr, cr):
            self.by_account[a].append((int(t["timestamp"]), t["id"]))
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
            if t.get("timeout_s") == 1:
                self.short.add(int(t["id"]))
        else:
            self.bal[dr][1] += amt
            self.bal[cr][3] += amt

    def expire_short(self):
        """Every pending transfer with timeout_s 1 still open has expired:
        the check run's create came more than a second after the kill."""
        for pid in self.short:
            dr, cr, amt, state = self.pending[pid]
            if state == "open":
                self.bal[dr][0] -= amt
                self.bal[cr][2] -= amt
                self.pending[pid] = (dr, cr, amt, "expired")
                self.expiries[dr] += 1
                self.expiries[cr] += 1
        self.short.clear()


def chunks(xs, n):
    return [xs[i:i + n] for i in range(0, len(xs), n)]


def strip_linked(t):
    t = dict(t)
    if "flags" in t:
        t["flags"] = [f for f in t["flags"] if f != "linked"]
    return t


def crash_round(data, gen, rng, from_start, live_verify, problems, fsize_max=None):
    """Feed generated lines to an apply process and SIGKILL it. Returns
    (sent lines as dicts, acknowledged responses, kill delay ms, rc, stderr).
    With live_verify, `journal verify` runs while the writer commits: an
    auditor may check the store at any time, and a store being written is
    intact (verify must check one consistent snapshot).
    With fsize_max, the process may not grow any file past that many bytes
    (RLIMIT_FSIZE, SIGXFSZ ignored: the write fails with EFBIG) and is not
    killed: it must stop by itself, exit 2, when a commit fails."""
    def limit_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_max, fsize_max))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    p = subprocess.Popen([BIN, "ledger", "apply", "--data", data, "-"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, preexec_fn=limit_files if fsize_max else None)
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
    verifier = None
    if live_verify:
        first.wait(30)
        verifier = subprocess.Popen([BIN, "journal", "verify", "--data", data], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if fsize_max:
        delay_ms = 0
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            problems.append("the write limit did not stop `ledger apply` within 60 s")
    else:
        time.sleep(delay_ms / 1000)
    try:
        os.kill(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    rc = p.wait()
    for t in threads[1:]:
        t.join(10)
    threads[0].join(10)
    if verifier:
        vout = verifier.communicate(timeout=300)[0].decode("utf-8", "replace").strip()
        if verifier.returncode != 0:
            problems.append(f"journal verify run while the writer committed exited "
                            f"{verifier.returncode}: {vout[:300]}")
    return sent, acked, delay_ms, rc, (err[0].decode("utf-8", "replace") if err else "")


def check_round(data, sent, acked, model, problems, expiry):
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
    # A create call expires what is due (timeout_s 1 in an expiry round).
    dummy = tr(next(DUMMY_IDS), MISSING, 1, 1)
    lines.append(json.dumps({"op": "create_transfers", "transfers": [dummy]}))
    # The projections (per-account index, balance history) after the crash.
    queried = HISTORY + [LIMITED[len(SEEN) % len(LIMITED)]]
    for a in queried:
        lines.append(json.dumps({"op": "get_account_transfers", "account_id": str(a), "limit": BATCH_MAX,
                                 "debits": True, "credits": True, "reversed": True}))
    for a in HISTORY:
        lines.append(json.dumps({"op": "get_account_balances", "account_id": str(a), "limit": BATCH_MAX,
                                 "debits": True, "credits": True, "reversed": True}))
    nq = len(queried) + len(HISTORY)
    lines.append(json.dumps({"op": "lookup_accounts", "ids": [str(a) for a in model.bal]}))
    t0 = time.monotonic()
    out, p = apply(data, lines)
    TIMES["check"] = time.monotonic() - t0
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
    check_refusals(data, ack_fail, present, problems)
    # retries
    k = len(lookups)
    got = [r for o in out[k:-2 - nq] for r in o.get("results", [])]
    if [r.get("result") for r in out[-2 - nq].get("results", [])] != ["debit_account_not_found"]:
        problems.append(f"check run: the expiry trigger got {out[-2 - nq]}")
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
    if expiry:
        model.expire_short()
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
    # get_account_transfers: the newest transfers of the account, as present
    queries = out[-1 - nq:-1]
    for a, o in zip(queried, queries):
        want = [i for _, i in sorted(model.by_account[a], reverse=True)[:BATCH_MAX]]
        have = [t.get("id") for t in o.get("transfers", [])]
        if have != want:
            diff = next((j for j, (x, y) in enumerate(zip(have, want)) if x != y), min(len(have), len(want)))
            problems.append(f"get_account_transfers {a}: {len(have)} transfers, the present ones are "
                            f"{len(want)}; first difference at {diff}: {have[diff:diff + 3]} vs {want[diff:diff + 3]}")
    # get_account_balances: one snapshot per change, the newest equal to now
    for a, o in zip(HISTORY, queries[len(queried):]):
        snaps = o.get("balances", [])
        n_want = min(BATCH_MAX, len(model.by_account[a]) + model.expiries[a])
        if len(snaps) != n_want:
            problems.append(f"get_account_balances {a}: {len(snaps)} snapshots, expected {n_want} "
                            f"({len(model.by_account[a])} transfers, {model.expiries[a]} expiries)")
        if snaps and [int(snaps[0][n]) for n in names] != model.bal[a]:
            problems.append(f"get_account_balances {a}: newest snapshot {snaps[0]} differs from the balances {model.bal[a]}")
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


def tamper_checks(tmp, data):
    """Negative controls: the checks above must be able to fail. On copies
    of the store, (1) a stored balance off by one must make open fail
    (exit 2) and journal verify fail (exit 1); (2) one ordinary transfer
    event's amount off by one must do the same. Knows the SQLite schema (docs/internals/
    store.md); if that changes, this says so instead of passing."""
    import sqlite3
    results = []
    for name, sql in [
        ("stored balance off by one",
         "UPDATE account SET credits_posted = credits_posted + 1 "
         "WHERE slot = (SELECT min(slot) FROM account)"),
        ("event amount off by one", None),
    ]:
        copy = os.path.join(tmp, "tampered")
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(data, copy)
        try:
            db = sqlite3.connect(os.path.join(copy, "huitong.db"))
            if sql:
                changed = db.execute(sql).rowcount
            else:   # an ordinary transfer event (kind 2, flags 0 at bytes
                    # 79..80; amount at 65..72, ledger.h). Not a pending one:
                    # its post or void would carry the change along and the
                    # final balances could stay the same.
                rows = db.execute(
                    "SELECT leaf, data FROM event WHERE substr(data, 1, 1) = x'02' "
                    "AND substr(data, 80, 2) = x'0000' ORDER BY leaf").fetchall()
                leaf, blob = rows[len(rows) // 2]   # the setup made 12 at least
                blob = bytearray(blob)
                blob[72] ^= 1
                changed = db.execute("UPDATE event SET data = ? WHERE leaf = ?",
                                     (bytes(blob), leaf)).rowcount
            db.commit()
            db.close()
        except (sqlite3.Error, TypeError, IndexError) as e:
            results.append((name, f"could not tamper with the store (schema changed?): {e}"))
            continue
        if changed != 1:
            results.append((name, f"tampering changed {changed} rows"))
            continue
        a = run(["ledger", "apply", "--data", copy, "-"], '{"op":"lookup_accounts","ids":["1"]}\n')
        v = run(["journal", "verify", "--data", copy])
        problem = None
        if a.returncode != 2:
            problem = f"ledger apply on it exited {a.returncode}, expected 2: {a.stdout[:200]}"
        elif v.returncode != 1:
            problem = f"journal verify on it exited {v.returncode}, expected 1: {(v.stdout + v.stderr)[:200]}"
        results.append((name, problem, a.stderr.strip()[:150], (v.stdout + v.stderr).strip()[:150]))
    shutil.rmtree(os.path.join(tmp, "tampered"), ignore_errors=True)
    return results


def write_failure_rounds(tmp, rng, count):
    """Failure injection: a fresh store, then `ledger apply` with a file
    size limit a little above the store's current files, so a commit fails
    with an I/O error at a random point. apply must exit 2 having printed
    only durable results; the same checks as after a kill must hold."""
    results = []
    for k in range(1, count + 1):
        data = os.path.join(tmp, f"write-failure-{k}")
        model, gen, problems = Model(), Generator(), []
        setup(data, model, problems)
        if problems:
            results.append((k, problems, ""))
            continue
        size = max(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data))
        limit = size + rng.randint(16, 512) * 1024
        sent, acked, _, rc, err = crash_round(data, gen, rng, False, False, problems, fsize_max=limit)
        if rc != 2 or not err.strip():
            problems.append(f"apply exited {rc} (expected 2, the store failed) with stderr {err.strip()[:300]!r}")
        n_ok, n_fail, n_present = check_round(data, sent, acked, model, problems, False)
        v = run(["journal", "verify", "--data", data])
        if v.returncode != 0:
            problems.append(f"journal verify exited {v.returncode}: {(v.stdout + v.stderr).strip()[:300]}")
        results.append((k, problems, f"files limited to {limit} bytes; {len(acked)}/{len(sent)} lines "
                                     f"acknowledged ({n_ok} ok, {n_fail} failed), {n_present} present; "
                                     f"apply said {err.strip().splitlines()[-1][:120] if err.strip() else ''!r}"))
        shutil.rmtree(data, ignore_errors=True)
    return results


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
        expiry = rnd % 4 == 0
        gen.short_timeouts = expiry
        live = rnd % 5 == 2
        sent, acked, delay, rc, err = crash_round(data, gen, rng, from_start, live, problems)
        if expiry:
            time.sleep(1.1)   # every timeout_s 1 of this round is now due
        if rc not in (-signal.SIGKILL, 0):
            problems.append(f"apply exited {rc} before the kill: {err.strip()[:500]}")
        n_ok, n_fail, n_present = check_round(data, sent, acked, model, problems, expiry)
        # Post and void what is really there: every open pending transfer,
        # and some resolved ones (already_posted / already_voided).
        gen.pendings = [(pid, p[2]) for pid, p in model.pending.items() if p[3] != "open"][-50:] + \
                       [(pid, p[2]) for pid, p in model.pending.items() if p[3] == "open"][-350:]
        t1 = time.monotonic()
        v = run(["journal", "verify", "--data", data]) if rnd % VERIFY_EVERY == 0 or rnd == ROUNDS else None
        TIMES["verify"] = time.monotonic() - t1 if v is not None else 0
        if v is not None and v.returncode != 0:
            problems.append(f"journal verify exited {v.returncode}: {(v.stdout + v.stderr).strip()[:500]}")
        dt = time.monotonic() - t0
        what = (f"{'expiry round, ' if expiry else ''}{'verify while writing, ' if live else ''}killed after {delay} ms{' from start' if from_start else ''}; "
                f"{len(acked)}/{len(sent)} lines acknowledged ({n_ok} ok, {n_fail} failed), "
                f"{n_present} present; {dt:.1f}s, check {TIMES.get('check', 0):.1f}s, "
                + (f"verify {TIMES['verify']:.1f}s" if TIMES["verify"] else "no verify"))
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
    for k, probs, what in write_failure_rounds(tmp, random.Random(SEED), 3):
        if probs:
            failed += 1
            print(f"write failure {k}: FAIL ({what})")
            for pr in probs[:15]:
                print(f"  - {pr}")
        else:
            passed += 1
            print(f"write failure {k}: ok ({what})")
    for r in tamper_checks(tmp, data):
        if r[1]:
            failed += 1
            print(f"negative control ({r[0]}): FAIL: {r[1]}")
        else:
            passed += 1
            print(f"negative control ({r[0]}): ok (open: {r[2]!r}; verify: {r[3]!r})")
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

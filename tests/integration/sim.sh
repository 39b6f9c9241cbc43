#!/usr/bin/env bash
# sim.sh — `huitong sim` as a user runs it: a small run writes payments and
# labels that parse as the interchange JSONL of DESIGN.md (every field,
# every channel, ts in time order, unique ids, participants matching the
# party prefix), one label per payment with the same id, every fraud type
# present; the same seed gives the same bytes and another seed other bytes;
# bad options and unwritable outputs exit 2 with a message; --help exits 0.
#
#   HUITONG   the binary (ctest sets it; default build/huitong)
#   HT_KEEP=1 keep the temporary folder
# Ends with "N passed, M failed"; exits 1 on any failure.
set -uo pipefail

src=${HT_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${HUITONG:-$src/build/huitong}
if [ ! -x "$bin" ]; then
	echo "sim: no huitong binary at $bin (set HUITONG)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

exec python3 - "$bin" <<'PY'
import json, os, re, shutil, subprocess, sys, tempfile

BIN = sys.argv[1]
KEEP = os.environ.get("HT_KEEP") == "1"
passed = failed = 0
tmp = tempfile.mkdtemp(prefix="ht-sim-")


def report(ok, name, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}" + (f"\n     {detail}" if detail else ""))
    sys.stdout.flush()


def sim(*args, timeout=300):
    return subprocess.run([BIN, "sim"] + list(args), capture_output=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def path(name):
    return os.path.join(tmp, name)


CHANNELS = {"p2p", "qr", "card", "transfer", "cash_in", "cash_out", "bill"}
TYPES = {"none", "account_takeover", "card_testing", "app_scam", "mule"}
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
KEYS = ["id", "ts", "payer", "payee", "payer_participant", "payee_participant",
        "amount", "currency", "channel", "device", "ip"]


def check_payment(p):
    if list(p.keys()) != KEYS:
        return f"keys {list(p.keys())}"
    if not TS.match(p["ts"]):
        return f"ts {p['ts']}"
    for side in ("payer", "payee"):
        if p[side].split(":", 1)[0] != p[side + "_participant"]:
            return f"{side} {p[side]} not at {p[side + '_participant']}"
    if p["payer"] == p["payee"]:
        return "pays itself"
    if not p["amount"].isdigit() or int(p["amount"]) <= 0 or int(p["amount"]) >= 2**64:
        return f"amount {p['amount']}"
    if p["currency"] != "CNY" or p["channel"] not in CHANNELS:
        return f"currency/channel {p['currency']} {p['channel']}"
    return None


def check_files(pay, lab):
    """(problem or None, payments, fraud type counts, channels)"""
    with open(pay, "rb") as f:
        plines = f.read().split(b"\n")
    with open(lab, "rb") as f:
        llines = f.read().split(b"\n")
    if plines[-1] != b"" or llines[-1] != b"":
        return "last line not terminated", 0, {}, set()
    plines, llines = plines[:-1], llines[:-1]
    if len(plines) != len(llines):
        return f"{len(plines)} payments, {len(llines)} labels", 0, {}, set()
    last, ids, types, channels = "", set(), {}, set()
    for n, (pl, ll) in enumerate(zip(plines, llines), 1):
        try:
            p, l = json.loads(pl), json.loads(ll)
        except ValueError as e:
            return f"line {n}: {e}", 0, {}, set()
        bad = check_payment(p)
        if bad:
            return f"line {n}: {bad}: {pl[:200]!r}", 0, {}, set()
        if p["ts"] < last:
            return f"line {n}: time goes back ({p['ts']} < {last})", 0, {}, set()
        last = p["ts"]
        if p["id"] in ids:
            return f"line {n}: duplicate id {p['id']}", 0, {}, set()
        ids.add(p["id"])
        if list(l.keys()) != ["id", "fraud", "type"] or l["id"] != p["id"]:
            return f"line {n}: label {ll!r} for {p['id']}", 0, {}, set()
        if l["type"] not in TYPES or l["fraud"] != (l["type"] != "none"):
            return f"line {n}: label {ll!r}", 0, {}, set()
        types[l["type"]] = types.get(l["type"], 0) + 1
        channels.add(p["channel"])
    return None, len(plines), types, channels


def read(name):
    with open(path(name), "rb") as f:
        return f.read()


try:
    r = sim("--help")
    report(r.returncode == 0 and b"--fraud-rate" in r.stdout, "--help exits 0 with usage")

    r = sim("--seed", "5", "--parties", "3000", "--days", "5",
            "--out", path("a.jsonl"), "--labels", path("a.labels"))
    report(r.returncode == 0, "small run exits 0", r.stderr.decode()[-400:])
    report(b"payments" in r.stderr and b"fraud" in r.stderr, "summary on stderr",
           r.stderr.decode()[-400:])
    problem, n, types, channels = check_files(path("a.jsonl"), path("a.labels"))
    report(problem is None, "lines parse, time order, unique ids, labels align", problem or "")
    report(n > 3000 * 5 * 2, f"about 2.9 payments per party per day ({n})")
    report(channels == CHANNELS, "every channel used", str(channels))
    missing = TYPES - set(types)
    report(not missing, "every fraud type present", f"missing {missing}, got {types}")
    fraud = n - types.get("none", 0)
    report(n and 0.003 < fraud / n < 0.008, f"fraud share about 0.5% ({fraud}/{n})")

    r = sim("--seed", "5", "--parties", "3000", "--days", "5", "--quiet",
            "--out", path("b.jsonl"), "--labels", path("b.labels"))
    report(r.returncode == 0 and r.stderr == b"", "--quiet is quiet", r.stderr.decode())
    report(read("a.jsonl") == read("b.jsonl") and read("a.labels") == read("b.labels"),
           "same seed, same bytes")
    r = sim("--seed", "6", "--parties", "3000", "--days", "5", "--quiet",
            "--out", path("c.jsonl"), "--labels", path("c.labels"))
    report(r.returncode == 0 and read("c.jsonl") != read("a.jsonl"), "another seed, other bytes")

    r = sim("--seed", "5", "--parties", "300", "--days", "2", "--quiet",
            "--start", "2027-01-31", "--fraud-rate", "0",
            "--out", path("d.jsonl"), "--labels", path("d.labels"))
    problem, n, types, _ = check_files(path("d.jsonl"), path("d.labels"))
    first = json.loads(read("d.jsonl").split(b"\n", 1)[0])
    report(r.returncode == 0 and problem is None and set(types) == {"none"}
           and first["ts"].startswith("2027-01-31"), "--start and --fraud-rate 0",
           f"{problem} {types} {first['ts']}")

    out, lab = path("x.jsonl"), path("x.labels")
    bad = [
        ([], "--seed"),
        (["--seed", "1", "--labels", lab], "--out"),
        (["--seed", "1", "--out", out], "--labels"),
        (["--seed", "x", "--out", out, "--labels", lab], "--seed"),
        (["--seed", "-1", "--out", out, "--labels", lab], "--seed"),
        (["--seed", "1", "--parties", "99", "--out", out, "--labels", lab], "--parties"),
        (["--seed", "1", "--parties", "1000001", "--out", out, "--labels", lab], "--parties"),
        (["--seed", "1", "--parties", "1e4", "--out", out, "--labels", lab], "--parties"),
        (["--seed", "1", "--days", "0", "--out", out, "--labels", lab], "--days"),
        (["--seed", "1", "--days", "3661", "--out", out, "--labels", lab], "--days"),
        (["--seed", "1", "--start", "2026-02-30", "--out", out, "--labels", lab], "--start"),
        (["--seed", "1", "--start", "yesterday", "--out", out, "--labels", lab], "--start"),
        (["--seed", "1", "--start", "9999-12-31", "--days", "2", "--out", out, "--labels", lab], "9999"),
        (["--seed", "1", "--fraud-rate", "0.6", "--out", out, "--labels", lab], "--fraud-rate"),
        (["--seed", "1", "--fraud-rate", "-0.1", "--out", out, "--labels", lab], "--fraud-rate"),
        (["--seed", "1", "--fraud-rate", "nan", "--out", out, "--labels", lab], "--fraud-rate"),
        (["--seed", "1", "--fraud-rate", "", "--out", out, "--labels", lab], "--fraud-rate"),
        (["--seed", "1", "--out", out, "--labels", out], "different"),
        (["--seed", "1", "--bogus", "--out", out, "--labels", lab], "usage"),
        (["--seed", "1", "--out", out, "--labels", lab, "extra"], "extra"),
        (["--seed", "1", "--out", path("no/such/dir/p"), "--labels", lab], "cannot open"),
        (["--seed", "1", "--out", out, "--labels", path("no/such/dir/l")], "cannot open"),
    ]
    for args, word in bad:
        r = sim(*args)
        err = r.stderr.decode()
        shown = " ".join(os.path.relpath(a, tmp) if a.startswith(tmp) else a for a in args)
        report(r.returncode == 2 and word in err, f"bad options [{shown}] exit 2 naming {word}",
               f"rc {r.returncode}: {err[-300:]}")
    if os.path.exists("/dev/full"):
        r = sim("--seed", "1", "--parties", "100", "--days", "1", "--quiet",
                "--out", "/dev/full", "--labels", lab)
        report(r.returncode == 2 and b"cannot write" in r.stderr,
               "a full disk exits 2 with a message", r.stderr.decode()[-300:])
finally:
    if KEEP:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY

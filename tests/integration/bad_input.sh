#!/usr/bin/env bash
# bad_input.sh — malformed input to `huitong ledger apply` and misuse of the
# CLI. Every malformed line must get {"error":"…","line":N} with its own N,
# and the valid line after it must still work; ids 0 and 2^128-1 parse and
# get the ENGINE's result codes; nothing from a rejected line is committed
# or burned; a 10 MB line is skipped in bounded memory; CLI usage errors
# exit 2 with a message on stderr and --help exits 0.
#
#   HUITONG   the binary (ctest sets it; default build/huitong)
#   HT_KEEP=1 keep the temporary store
# Ends with "N passed, M failed"; exits 1 on any failure.
set -uo pipefail

src=${HT_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${HUITONG:-$src/build/huitong}
if [ ! -x "$bin" ]; then
	echo "bad_input: no huitong binary at $bin (set HUITONG)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

exec python3 - "$bin" <<'PY'
import json, os, shutil, subprocess, sys, tempfile, time

BIN = sys.argv[1]
KEEP = os.environ.get("HT_KEEP") == "1"
RSS_MAX_KB = 64 * 1024
INT_MAX = str(2**128 - 1)
passed = failed = 0


def report(ok, name, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}" + (f"\n     {detail}" if detail else ""))
    sys.stdout.flush()


def run(args, inp=None, timeout=120):
    return subprocess.run([BIN] + args, input=inp, capture_output=True, timeout=timeout,
                          stdin=None if inp is not None else subprocess.DEVNULL)


def subset(exp, act):
    if isinstance(exp, dict):
        return isinstance(act, dict) and all(k in act and subset(v, act[k]) for k, v in exp.items())
    if isinstance(exp, list):
        return isinstance(act, list) and len(exp) == len(act) and all(map(subset, exp, act))
    return type(exp) is type(act) and exp == act


next_id = [5000]


def fresh():
    next_id[0] += 1
    return str(next_id[0])


def t(**kw):
    """A valid transfer 1 → 2, with fields overridden (None removes)."""
    x = {"id": fresh(), "debit_account_id": "1", "credit_account_id": "2",
         "amount": "1", "ledger": 156, "code": 1}
    for k, v in kw.items():
        if v is None:
            x.pop(k, None)
        else:
            x[k] = v
    return x


def ct(*transfers):
    return json.dumps({"op": "create_transfers", "transfers": list(transfers)}).encode()


def raw_ct(transfer_json):
    """A create_transfers line around a transfer object given as raw text."""
    return b'{"op":"create_transfers","transfers":[' + transfer_json + b']}'


def err(substr=None):
    return ("error", substr)


def res(*codes):
    return ("json", {"op": "create_transfers",
                     "results": [{"index": i, "result": c} for i, c in enumerate(codes)]})


LOOKUP1 = b'{"op":"lookup_accounts","ids":["1"]}'
LOOKUP1_OK = ("json", {"op": "lookup_accounts", "accounts": [{"id": "1", "ledger": 156}]})
rejected_ids = []   # ids on rejected lines: must be neither created nor burned


def bad(name, line, expect, ids=()):
    rejected_ids.extend(ids)
    return (name, line, expect)


def cases():
    c = []
    # --- not a request object
    c.append(bad("not JSON", b"this is not json", err()))
    c.append(bad("truncated JSON", b'{"op":"lookup_accounts","ids":["1"]', err()))
    c.append(bad("JSON array, not an object", b"[1,2,3]", err()))
    c.append(bad("JSON string, not an object", b'"lookup_accounts"', err()))
    c.append(bad("JSON number, not an object", b"42", err()))
    c.append(bad("JSON null", b"null", err()))
    c.append(bad("empty line", b"", err()))
    c.append(bad("blank line", b"   \t ", err()))
    c.append(bad("trailing garbage after the object", LOOKUP1 + b" x", err()))
    c.append(bad("two objects on one line", LOOKUP1 + LOOKUP1, err()))
    # --- op
    c.append(bad("unknown op", b'{"op":"frobnicate","ids":["1"]}', err()))
    c.append(bad("op in the wrong case", b'{"op":"LOOKUP_ACCOUNTS","ids":["1"]}', err()))
    c.append(bad("missing op", b'{"ids":["1"]}', err()))
    c.append(bad("op not a string", b'{"op":4,"ids":["1"]}', err()))
    c.append(bad("unknown top-level field", b'{"op":"lookup_accounts","ids":["1"],"colour":"red"}', err("colour")))
    c.append(("keys in any order", b'{"ids":["1"],"op":"lookup_accounts"}', LOOKUP1_OK))
    c.append(("whitespace around the object", b'  \t' + LOOKUP1 + b' \t ', LOOKUP1_OK))
    x = t()
    c.append(bad("duplicate key (two amounts): rejected, not resolved silently",
                 raw_ct(json.dumps(x)[:-1].encode() + b', "amount": "2"}'), err(), ids=[x["id"]]))
    c.append(bad("duplicate op key", b'{"op":"lookup_accounts","op":"create_accounts","ids":["1"]}', err()))
    # --- ids: 0 and 2^128-1 parse; the engine answers
    c.append(("transfer id 0 → engine result", ct(t(id="0")), res("id_must_not_be_zero")))
    c.append(("transfer id 2^128-1 → engine result", ct(t(id=INT_MAX)), res("id_must_not_be_int_max")))
    c.append(("account id 0 → engine result", b'{"op":"create_accounts","accounts":[{"id":"0","ledger":156,"code":1}]}',
              ("json", {"results": [{"index": 0, "result": "id_must_not_be_zero"}]})))
    x = t()
    c.append(("id with leading zeros is the same number (common.h)", ct(dict(x, id="000" + x["id"])),
              ("json", {"results": [{"index": 0, "id": x["id"], "result": "ok"}]})))
    c.append(("debit account 2^128-1 → engine result", ct(t(debit_account_id=INT_MAX)),
              res("debit_account_id_must_not_be_int_max")))
    for label, v in [("non-numeric", "abc"), ("negative", "-1"), ("fractional", "1.5"),
                     ("leading space", " 7"), ("leading +", "+7"), ("hex", "0x10"), ("empty", ""),
                     ("2^128", str(2**128)), ("41 digits", "1" + "0" * 40)]:
        x = t()
        c.append(bad(f"id {label} ({v!r})", ct(dict(x, id=v)), err("id")))
        c.append(bad(f"debit_account_id {label}", ct(t(debit_account_id=v)), err("debit_account_id"),
                     ids=[next_id[0]]))
    x = t()
    c.append(bad("id as a JSON integer", ct(dict(x, id=int(x["id"]))), err("id"), ids=[x["id"]]))
    c.append(bad("id missing", ct(t(id=None)), err("id")))
    c.append(bad("lookup id non-numeric", b'{"op":"lookup_accounts","ids":["1","x"]}', err()))
    c.append(bad("lookup id over 128 bits", ('{"op":"lookup_accounts","ids":["%d"]}' % 2**128).encode(), err()))
    # --- amounts
    for label, v in [("negative string", "-5"), ("negative integer", -5), ("non-numeric", "abc"),
                     ("2^64 as a string", str(2**64)), ("2^64 as an integer", 2**64),
                     ("10^30 as an integer", 10**30), ("fraction", 1.5), ("exponent", 1e3),
                     ("empty string", ""), ("hex string", "0x10"), ("boolean", True), ("null", None),
                     ("object", {}), ("array", ["1"]), ("leading +", "+5"), ("trailing space", "5 ")]:
        x = t()
        line = ct(x).replace(b'"amount": "1"', b'"amount": ' + json.dumps(v).encode())
        c.append(bad(f"amount {label} ({json.dumps(v)})", line, err("amount"), ids=[x["id"]]))
    # Contract (DESIGN.md, jsonl.h): amounts may be JSON integers up to 2^64-1.
    c.append(("amount 2^63 as a JSON integer (contract: integers <= 2^64-1)",
              ct(t(amount=2**63, debit_account_id="3", credit_account_id="4")), res("ok")))
    c.append(("amount 2^64-1 as a JSON integer (contract: integers <= 2^64-1)",
              ct(t(amount=2**64 - 1, debit_account_id="5", credit_account_id="6")), res("ok")))
    c.append(("amount 2^64-1 as a string", ct(t(amount=str(2**64 - 1), debit_account_id="7", credit_account_id="8")),
              res("ok")))
    # --- flags
    x = t(flags=["fast"])
    c.append(bad("unknown transfer flag", ct(x), err("fast"), ids=[x["id"]]))
    x = t(flags=["history"])
    c.append(bad("account flag on a transfer", ct(x), err("history"), ids=[x["id"]]))
    c.append(bad("transfer flag on an account",
                 b'{"op":"create_accounts","accounts":[{"id":"77","ledger":156,"code":1,"flags":["pending"]}]}',
                 err("pending")))
    x = t(flags="linked")
    c.append(bad("flags a string, not an array", ct(x), err("flags"), ids=[x["id"]]))
    x = t(flags=[1])
    c.append(bad("flags with a number", ct(x), err("flags"), ids=[x["id"]]))
    # --- unknown fields, wrong types, ranges
    x = t(colour="red")
    c.append(bad("unknown transfer field", ct(x), err("colour"), ids=[x["id"]]))
    x = t(amuont="5")
    c.append(bad("misspelt field", ct(x), err("amuont"), ids=[x["id"]]))
    for field, v in [("ledger", "abc"), ("ledger", -1), ("ledger", 2**32), ("ledger", True),
                     ("code", 65536), ("code", -1), ("timeout_s", 2**32), ("timeout_s", -1),
                     ("user_data", 5), ("user_data", "x" * 33), ("pending_id", 5),
                     ("debit_account_id", 1), ("credit_account_id", [])]:
        x = t(**{field: v})
        c.append(bad(f"{field} = {json.dumps(v)[:20]}", ct(x), err(field), ids=[x["id"]]))
    c.append(("user_data of 32 bytes", ct(t(user_data="y" * 32)), res("ok")))
    c.append(bad("transfers an object", b'{"op":"create_transfers","transfers":{"id":"1"}}', err("transfers")))
    c.append(bad("transfers a string", b'{"op":"create_transfers","transfers":"x"}', err("transfers")))
    c.append(bad("transfer a number", b'{"op":"create_transfers","transfers":[5]}', err()))
    c.append(bad("transfers missing", b'{"op":"create_transfers"}', err()))
    c.append(bad("ids a string", b'{"op":"lookup_accounts","ids":"1"}', err("ids")))
    c.append(bad("accounts given to create_transfers", b'{"op":"create_transfers","accounts":[]}', err()))
    # --- depth, NUL, UTF-8
    c.append(bad("deep nesting (100000)", b'{"op":"lookup_accounts","ids":' + b"[" * 100000 + b"]" * 100000 + b"}", err()))
    c.append(bad("nesting 9 deep", b'{"op":"lookup_accounts","ids":' + b"[" * 8 + b'"1"' + b"]" * 8 + b"}", err()))
    c.append(bad("NUL byte after the object", LOOKUP1 + b"\x00", err()))
    c.append(bad("NUL byte between tokens", b'{"op":"lookup_accounts",\x00"ids":["1"]}', err()))
    c.append(bad("NUL byte inside a string", b'{"op":"lookup_accounts","ids":["1\x00"]}', err()))
    x = t()
    c.append(bad("escaped NUL in user_data", raw_ct(json.dumps(x)[:-1].encode() + b',"user_data":"a\\u0000b"}'),
                 err(), ids=[x["id"]]))
    c.append(bad("invalid UTF-8 in a key", b'{"op":"lookup_accounts","ids":["1"],"\xff":1}', err()))
    for label, b in [("lone continuation byte", b"\x80"), ("truncated sequence", b"\xc3("),
                     ("overlong '/'", b"\xc0\xaf"), ("UTF-16 surrogate", b"\xed\xa0\x80"),
                     ("beyond U+10FFFF", b"\xf4\x90\x80\x80")]:
        x = t()
        c.append(bad(f"invalid UTF-8 in user_data: {label}",
                     raw_ct(json.dumps(x)[:-1].encode() + b',"user_data":"a' + b + b'"}'), err(), ids=[x["id"]]))
    c.append(("valid UTF-8 user_data (CJK)", ct(t(user_data="汇通付款")), res("ok")))
    c.append(("CRLF line ending", LOOKUP1 + b"\r", LOOKUP1_OK))
    # --- batch limits
    xs = [t() for _ in range(8191)]
    c.append(bad("8191 transfers in one batch", ct(*xs), err(), ids=[x["id"] for x in xs[:3] + xs[-3:]]))
    c.append(bad("8191 ids in one lookup", json.dumps({"op": "lookup_transfers",
                 "ids": [str(i) for i in range(1, 8192)]}).encode(), err()))
    xs = [t() for _ in range(8190)]
    c.append(("8190 transfers in one batch", ct(*xs), res(*["ok"] * 8190)))
    return c


def check_line(n, name, expect, got):
    """n is the 1-based line number of the request."""
    try:
        act = json.loads(got)
    except (ValueError, TypeError):
        return f"line {n}: response is not JSON: {str(got)[:200]!r}"
    kind, e = expect
    if kind == "error":
        if not (isinstance(act, dict) and set(act) == {"error", "line"}):
            return f"line {n}: expected an error line, got {got[:300]}"
        if not isinstance(act["error"], str) or not act["error"]:
            return f"line {n}: empty error message: {got[:300]}"
        if act["line"] != n:
            return f"line {n}: error names line {act['line']}"
        if e and e.lower() not in act["error"].lower():
            return f"line {n}: error message does not name {e!r}: {act['error']!r}"
        return None
    if not subset(e, act):
        return f"line {n}: expected {json.dumps(e)[:300]}\n     got {got[:300]}"
    return None


def run_apply_cases(data):
    cs = cases()
    lines, expects = [], []
    for name, line, expect in cs:
        lines.append(line)
        expects.append((name, expect))
        probe = ct(t())
        lines.append(probe)   # the next valid line still works
        expects.append((f"valid line after: {name}", res("ok")))
    inp = b"\n".join(lines) + b"\n"
    p = run(["ledger", "apply", "--data", data, "-"], inp, timeout=300)
    out = p.stdout.decode("utf-8", "replace").split("\n")
    if out and out[-1] == "":
        out.pop()
    report(p.returncode == 0, "ledger apply exits 0 after malformed lines",
           f"exit {p.returncode}: {p.stderr.decode('utf-8', 'replace').strip()[:300]}")
    report(len(out) == len(lines), f"one response line per request line ({len(lines)})",
           f"got {len(out)} lines")
    probes_bad = []
    for k, (name, expect) in enumerate(expects):
        got = out[k] if k < len(out) else None
        problem = check_line(k + 1, name, expect, got) if got is not None else f"line {k + 1}: no response"
        if name.startswith("valid line after: "):
            if problem:
                probes_bad.append(f"{name}: {problem}")
            continue
        report(problem is None, f"{name}", problem or "")
    report(not probes_bad, "the valid line after every case still works",
           "\n     ".join(probes_bad[:10]))

    # Nothing from a rejected line was committed, nor burned: the same ids
    # can be created now.
    ids = [str(i) for i in rejected_ids]
    out2, p2 = apply_lines(data, [json.dumps({"op": "lookup_transfers", "ids": ids}).encode(),
                                  ct(*[t(id=i) for i in ids])])
    ok = (len(out2) == 2 and out2[0].get("transfers") == []
          and [r.get("result") for r in out2[1].get("results", [])] == ["ok"] * len(ids))
    report(ok, f"the {len(ids)} ids on rejected lines were neither created nor burned",
           json.dumps(out2)[:600])


def apply_lines(data, lines):
    p = run(["ledger", "apply", "--data", data, "-"], b"\n".join(lines) + b"\n")
    out = []
    for l in p.stdout.decode("utf-8", "replace").split("\n"):
        if l:
            try:
                out.append(json.loads(l))
            except ValueError:
                out.append({"unparsable": l})
    return out, p


def run_big_line(tmp, data):
    """A 10 MB line (and a 10 MB last line without a newline) in bounded memory."""
    path = os.path.join(tmp, "big.jsonl")
    one = json.dumps(t()).encode()
    n = 10 * 1024 * 1024 // (len(one) + 1) + 1
    with open(path, "wb") as f:
        f.write(LOOKUP1 + b"\n")
        f.write(b'{"op":"create_transfers","transfers":[' + b",".join([one] * n) + b"]}\n")
        f.write(ct(t()) + b"\n")
        f.write(b'{"op":"lookup_accounts","ids":["' + b"1" * (10 * 1024 * 1024) + b'"]}')
    size = os.path.getsize(path)
    # Peak RSS of huitong alone. Not os.wait4 on a child of this python:
    # Linux carries the forking process's high-water mark over exec, so
    # that would measure python's own memory. /usr/bin/time forks from a
    # small process; without it, poll VmHWM (monotonic) until exit.
    rss_file = os.path.join(tmp, "big.rss")
    cmd = [BIN, "ledger", "apply", "--data", data, path]
    timed = os.path.exists("/usr/bin/time")
    if timed:
        cmd = ["/usr/bin/time", "-f", "%M", "-o", rss_file] + cmd
    with open(os.path.join(tmp, "big.out"), "wb+") as fo, open(os.path.join(tmp, "big.err"), "wb+") as fe:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe)
        rss_kb = None
        while p.poll() is None:
            if not timed:
                try:
                    with open(f"/proc/{p.pid}/status") as st:
                        for l in st:
                            if l.startswith("VmHWM:"):
                                rss_kb = int(l.split()[1])
                except OSError:
                    pass
            time.sleep(0.01)
        if timed:
            with open(rss_file) as f:
                rss_kb = int(f.read().split()[-1])
        fo.seek(0)
        fe.seek(0)
        out, errout = fo.read(), fe.read()
    lines = out.decode("utf-8", "replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    exp = [LOOKUP1_OK, err(), res("ok"), err()]
    problems = [f"exit {p.returncode}: {errout.decode('utf-8', 'replace')[:300]}"] if p.returncode else []
    if len(lines) != 4:
        problems.append(f"{len(lines)} response lines, expected 4: {[l[:100] for l in lines]}")
    for k, e in enumerate(exp):
        if k < len(lines):
            pr = check_line(k + 1, "", e, lines[k])
            if pr:
                problems.append(pr)
    report(not problems, f"10 MB lines ({size >> 20} MiB input) are rejected with their line numbers",
           "\n     ".join(problems))
    report(rss_kb is not None and rss_kb < RSS_MAX_KB,
           f"memory stays bounded on 10 MB lines (max RSS {rss_kb} KiB < {RSS_MAX_KB} KiB)",
           "no measurement" if rss_kb is None else f"max RSS {rss_kb} KiB")


def run_misc(tmp, data):
    # Last line without a newline is still answered; FILE argument works.
    path = os.path.join(tmp, "nonl.jsonl")
    with open(path, "wb") as f:
        f.write(b"oops\n" + LOOKUP1)
    p = run(["ledger", "apply", "--data", data, path])
    lines = p.stdout.decode().split("\n")
    ok = (p.returncode == 0 and len(lines) >= 2 and check_line(1, "", err(), lines[0]) is None
          and check_line(2, "", LOOKUP1_OK, lines[1]) is None)
    report(ok, "FILE argument; a last line without a newline is answered", p.stdout.decode()[:300])
    # Empty input: no output, exit 0.
    p = run(["ledger", "apply", "--data", data, "-"], b"")
    report(p.returncode == 0 and p.stdout == b"", "empty input: exit 0, no output",
           f"exit {p.returncode}, {p.stdout[:100]!r}")
    # Many malformed lines in a row keep their numbers.
    p = run(["ledger", "apply", "--data", data, "-"], b"x\n" * 2000 + LOOKUP1 + b"\n")
    lines = p.stdout.decode().split("\n")
    ok = p.returncode == 0 and len(lines) >= 2001 and all(
        check_line(i + 1, "", err(), lines[i]) is None for i in range(2000)) and \
        check_line(2001, "", LOOKUP1_OK, lines[2000]) is None
    report(ok, "2000 malformed lines in a row, then a valid one", p.stdout.decode()[-300:])


def run_cli(tmp, data):
    d2 = os.path.join(tmp, "other")
    usage = [
        ("no command", []),
        ("unknown command", ["frobnicate"]),
        ("ledger without a subcommand", ["ledger"]),
        ("ledger unknown subcommand", ["ledger", "frob", "--data", data]),
        ("ledger apply without --data", ["ledger", "apply"]),
        ("ledger apply unknown option", ["ledger", "apply", "--data", data, "--bogus"]),
        ("ledger apply --data without a value", ["ledger", "apply", "--data"]),
        ("ledger apply two input files", ["ledger", "apply", "--data", data, "a", "b"]),
        ("ledger apply missing input file", ["ledger", "apply", "--data", data, os.path.join(tmp, "nope.jsonl")]),
        ("ledger apply on an uninitialised store", ["ledger", "apply", "--data", os.path.join(tmp, "nostore")]),
        ("ledger apply on a postgresql:// URL (no server)",
         ["ledger", "apply", "--data", "postgresql://127.0.0.1:1/none"]),
        ("ledger apply with a directory as input file", ["ledger", "apply", "--data", data, tmp]),
        ("init without --data", ["init"]),
        ("init --hash md5", ["init", "--data", d2, "--hash", "md5"]),
        ("init --sign rsa", ["init", "--data", d2, "--sign", "rsa"]),
        ("init on an initialised store", ["init", "--data", data]),
        ("journal without a subcommand", ["journal"]),
        ("journal verify without --data", ["journal", "verify"]),
        ("journal verify on an uninitialised store", ["journal", "verify", "--data", os.path.join(tmp, "nostore")]),
    ]
    for name, args in usage:
        p = run(args, b"" if args[:2] == ["ledger", "apply"] else None)
        report(p.returncode == 2 and p.stderr.strip() != b"",
               f"usage error exits 2 with a message: {name}",
               f"exit {p.returncode}, stderr {p.stderr[:200]!r}")
    for args in (["--help"], ["init", "--help"], ["ledger", "--help"], ["ledger", "apply", "--help"],
                 ["journal", "--help"], ["journal", "verify", "--help"]):
        p = run(args)
        report(p.returncode == 0 and p.stdout.strip() != b"",
               f"huitong {' '.join(args)} exits 0 with usage on stdout",
               f"exit {p.returncode}, stdout {p.stdout[:100]!r} stderr {p.stderr[:200]!r}")
    # A second writer while one holds the lease: exit 2, the first unharmed.
    a = subprocess.Popen([BIN, "ledger", "apply", "--data", data, "-"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        a.stdin.write(LOOKUP1 + b"\n")
        a.stdin.flush()
        first = a.stdout.readline()
        p = run(["ledger", "apply", "--data", data, "-"], LOOKUP1 + b"\n", timeout=30)
        a.stdin.write(ct(t()) + b"\n")
        a.stdin.close()
        rest = a.stdout.read()
        a.wait(30)
        ok = (check_line(1, "", LOOKUP1_OK, first.decode()) is None and p.returncode == 2
              and p.stderr.strip() != b"" and a.returncode == 0
              and check_line(2, "", res("ok"), rest.decode()) is None)
        report(ok, "a second writer gets exit 2 while the first holds the lease",
               f"second: exit {p.returncode} stdout {p.stdout[:100]!r} stderr {p.stderr[:200]!r}; "
               f"first: exit {a.returncode} {first[:100]!r} {rest[:100]!r}")
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()


def main():
    tmp = tempfile.mkdtemp(prefix="ht-bad-")
    data = os.path.join(tmp, "data")
    try:
        p = run(["init", "--data", data])
        report(p.returncode == 0, "init", p.stderr.decode()[:300])
        accounts = [{"id": str(i), "ledger": 156, "code": 1} for i in range(1, 9)]
        out, p = apply_lines(data, [json.dumps({"op": "create_accounts", "accounts": accounts}).encode()])
        report(p.returncode == 0 and len(out) == 1 and
               all(r.get("result") == "ok" for r in out[0].get("results", [None])),
               "setup accounts", json.dumps(out)[:300])
        run_apply_cases(data)
        run_big_line(tmp, data)
        run_misc(tmp, data)
        run_cli(tmp, data)
        v = run(["journal", "verify", "--data", data])
        report(v.returncode == 0, "journal verify after all of it", (v.stdout + v.stderr).decode()[:300])
    finally:
        if KEEP:
            print(f"(kept {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


main()
PY

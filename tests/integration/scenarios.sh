#!/usr/bin/env bash
# scenarios.sh — run the data-driven ledger scenarios in tests/scenario/*.scn
# against the real binary (`huitong ledger apply`), in the style of curl's
# tests/data. The format is described in docs/internals/tests.md.
#
# usage: tests/integration/scenarios.sh [FILE.scn ...]
#   HUITONG   the binary (ctest sets it; default build/huitong)
#   HT_KEEP=1 keep each scenario's temporary store and print where it is
#
# With no arguments every scenario runs and, at the end, a coverage check
# asserts that every result code named in include/huitong/ledger.h
# (HT_R_* -> lowercase) is expected by at least one scenario, except codes
# a scenario declares unreachable with `! unreachable CODE reason`.
# Ends with "N passed, M failed"; exits 1 on any failure.
set -uo pipefail

src=${HT_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${HUITONG:-$src/build/huitong}
if [ ! -x "$bin" ]; then
	echo "scenarios: no huitong binary at $bin (set HUITONG)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

exec python3 - "$src" "$bin" "$@" <<'PY'
import json, os, re, shutil, subprocess, sys, tempfile, time

SRC, BIN = sys.argv[1], sys.argv[2]
ARGS = sys.argv[3:]
SCN_DIR = os.path.join(SRC, "tests", "scenario")
KEEP = os.environ.get("HT_KEEP") == "1"
RUN_TIMEOUT_S = 120
VAR = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
VAR_IN_REQUEST = re.compile(r'"\$([A-Za-z_][A-Za-z0-9_]*)"')


class ScnError(Exception):
    """A malformed scenario file (a bug in the test, not in huitong)."""


def parse_scn(path):
    """Return (init_args, steps, unreachable). A step is
    ('req', lineno, request_text, expected_obj, expected_lineno),
    ('sleep', lineno, seconds) or ('reopen', lineno)."""
    entries = []  # [kind, lineno, text]
    with open(path, encoding="utf-8") as f:
        for no, raw in enumerate(f.read().split("\n"), 1):
            if raw.strip() == "" or raw.startswith("#"):
                continue
            if raw[0] in " \t":
                if not entries or entries[-1][0] not in "<>":
                    raise ScnError(f"{path}:{no}: continuation line without a > or < line")
                entries[-1][2] += raw.strip()
                continue
            if raw[0] not in "<>!" or raw[1:2] not in (" ", ""):
                raise ScnError(f"{path}:{no}: a line starts with '> ', '< ', '! ', '#' or whitespace")
            entries.append([raw[0], no, raw[2:]])
    init_args, steps, unreachable = [], [], {}
    i = 0
    while i < len(entries):
        kind, no, text = entries[i]
        if kind == ">":
            if i + 1 >= len(entries) or entries[i + 1][0] != "<":
                raise ScnError(f"{path}:{no}: request without a following '<' expectation")
            eno, etext = entries[i + 1][1], entries[i + 1][2]
            try:
                exp = json.loads(etext)
            except ValueError as e:
                raise ScnError(f"{path}:{eno}: expectation is not JSON: {e}")
            steps.append(("req", no, text, exp, eno))
            i += 2
            continue
        if kind == "<":
            raise ScnError(f"{path}:{no}: expectation without a request")
        words = text.split()
        if not words:
            raise ScnError(f"{path}:{no}: empty directive")
        if words[0] == "sleep" and len(words) == 2:
            steps.append(("sleep", no, float(words[1])))
        elif words[0] == "reopen" and len(words) == 1:
            steps.append(("reopen", no))
        elif words[0] == "init":
            if steps:
                raise ScnError(f"{path}:{no}: '! init' must come before the first request")
            init_args = words[1:]
        elif words[0] == "unreachable" and len(words) >= 3:
            unreachable[words[1]] = " ".join(words[2:])
        else:
            raise ScnError(f"{path}:{no}: unknown directive '{text}'")
        i += 1
    return init_args, steps, unreachable


def match(exp, act, path, env, errs):
    """JSON subset match: every key of an expected object must be present
    and match; arrays match element by element and have the same length;
    "$name" binds a variable on first use and must be equal afterwards;
    "$_" matches anything."""
    if isinstance(exp, str):
        m = VAR.match(exp)
        if m:
            name = m.group(1)
            if name == "_":
                return
            if name in env:
                if env[name] != act:
                    errs.append(f"{path}: expected ${name} = {json.dumps(env[name])}, got {json.dumps(act)}")
            else:
                env[name] = act
            return
    if isinstance(exp, dict):
        if not isinstance(act, dict):
            errs.append(f"{path}: expected an object, got {json.dumps(act)[:200]}")
            return
        for k, v in exp.items():
            if k not in act:
                errs.append(f"{path}.{k}: missing")
            else:
                match(v, act[k], f"{path}.{k}", env, errs)
        return
    if isinstance(exp, list):
        if not isinstance(act, list):
            errs.append(f"{path}: expected an array, got {json.dumps(act)[:200]}")
            return
        if len(exp) != len(act):
            errs.append(f"{path}: expected {len(exp)} elements, got {len(act)}")
        for i, (e, a) in enumerate(zip(exp, act)):
            match(e, a, f"{path}[{i}]", env, errs)
        return
    if type(exp) is not type(act) or exp != act:
        errs.append(f"{path}: expected {json.dumps(exp)}, got {json.dumps(act)}")


def substitute(text, env, where):
    def repl(m):
        if m.group(1) not in env:
            raise ScnError(f"{where}: variable ${m.group(1)} is not bound by an earlier run "
                           "(bind it before a '! reopen' or '! sleep')")
        return json.dumps(env[m.group(1)])
    return VAR_IN_REQUEST.sub(repl, text)


def run(cmd, **kw):
    if "input" not in kw:
        kw["stdin"] = subprocess.DEVNULL
    return subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                          timeout=RUN_TIMEOUT_S, **kw)


def clip(s, n=600):
    return s if len(s) <= n else s[:n] + f"… ({len(s)} chars)"


VIA_CLIENT = os.environ.get("HT_SCN_VIA") == "client"


class Server:
    """`huitong serve` on the scenario's store, for HT_SCN_VIA=client: the
    same requests then go through `huitong client apply` (HTTPS, mutual
    TLS, signed, receipts verified) and must give the same lines."""

    def __init__(self, data):
        self.data, self.proc, self.url = data, None, None
        self.creds = os.path.join(os.path.dirname(data), "op")
        p = run([BIN, "participant", "add", "--data", data, "--id", "scn-operator",
                 "--role", "operator", "--out", self.creds])
        if p.returncode != 0:
            raise RuntimeError(f"participant add exited {p.returncode}: {p.stderr.strip()}")

    def start(self):
        ready = os.path.join(os.path.dirname(self.data), "addr")
        if os.path.exists(ready):
            os.unlink(ready)
        self.proc = subprocess.Popen([BIN, "serve", "--data", self.data, "--listen",
                                      "127.0.0.1:0", "--ready-file", ready, "--quiet"],
                                     stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(300):
            if os.path.exists(ready):
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited {self.proc.returncode}: {self.proc.stderr.read()}")
            time.sleep(0.02)
        with open(ready) as f:
            self.url = "https://" + f.read().strip()

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                rc = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = "killed after 30 s"
            err = self.proc.stderr.read()
            self.proc = None
            if rc != 0:
                raise RuntimeError(f"serve did not stop cleanly ({rc}): {err.strip()}")


SERVER = None


def apply_segment(path, data, seg, env, fails):
    """Feed the requests of one segment to one `ledger apply` run (or one
    `huitong client apply` run against the server) and compare each
    response line with its expectation."""
    reqs = [substitute(s[2], env, f"{path}:{s[1]}") for s in seg]
    if VIA_CLIENT:
        p = run([BIN, "client", "--credentials", SERVER.creds, "--url", SERVER.url,
                 "apply", "-"], input="".join(r + "\n" for r in reqs))
    else:
        p = run([BIN, "ledger", "apply", "--data", data, "-"],
                input="".join(r + "\n" for r in reqs))
    out = p.stdout.split("\n")
    if out and out[-1] == "":
        out.pop()
    if p.returncode != 0:
        fails.append(f"{path}:{seg[0][1]}: `{'client' if VIA_CLIENT else 'ledger'} apply` exited {p.returncode}\n"
                     f"    stderr: {clip(p.stderr.strip())}")
    for k, (_, no, _text, exp, eno) in enumerate(seg):
        if k >= len(out):
            fails.append(f"{path}:{no}: no response line (got {len(out)} lines for "
                         f"{len(seg)} requests)\n    request : {clip(reqs[k])}")
            break
        try:
            act = json.loads(out[k])
        except ValueError:
            fails.append(f"{path}:{no}: response is not JSON\n    request : {clip(reqs[k])}\n"
                         f"    response: {clip(out[k])}")
            continue
        errs = []
        match(exp, act, "$", env, errs)
        if errs:
            fails.append(f"{path}:{no}: response differs from the expectation at line {eno}\n"
                         f"    request : {clip(reqs[k])}\n"
                         f"    expected: {clip(json.dumps(exp))}\n"
                         f"    actual  : {clip(out[k])}\n"
                         + "".join(f"    - {e}\n" for e in errs[:12]))
    if len(out) > len(seg):
        fails.append(f"{path}: {len(out) - len(seg)} extra response lines: {clip(out[len(seg)])}")


def run_scenario(path):
    global SERVER
    init_args, steps, _ = parse_scn(path)
    tmp = tempfile.mkdtemp(prefix="ht-scn-")
    data = os.path.join(tmp, "data")
    fails, env = [], {}
    try:
        p = run([BIN, "init", "--data", data] + init_args)
        if p.returncode != 0:
            return [f"{path}: `huitong init` exited {p.returncode}: {clip(p.stderr.strip())}"]
        if VIA_CLIENT:
            SERVER = Server(data)
            SERVER.start()
        seg = []
        for s in steps + [("end", 0)]:
            if s[0] == "req":
                seg.append(s)
                continue
            if seg:
                apply_segment(path, data, seg, env, fails)
                seg = []
            if s[0] == "sleep":
                time.sleep(s[2])
            if VIA_CLIENT and s[0] == "reopen":
                SERVER.stop()
                SERVER.start()
        if VIA_CLIENT:
            SERVER.stop()
            SERVER = None
        p = run([BIN, "journal", "verify", "--data", data])
        if p.returncode != 0:
            fails.append(f"{path}: `journal verify` exited {p.returncode} at the end\n"
                         f"    {clip((p.stdout + p.stderr).strip())}")
    except subprocess.TimeoutExpired as e:
        fails.append(f"{path}: timed out after {RUN_TIMEOUT_S}s: {e.cmd}")
    except RuntimeError as e:
        fails.append(f"{path}: {e}")
    finally:
        if SERVER:
            SERVER.proc and SERVER.proc.kill()
            SERVER = None
        if KEEP:
            print(f"  (kept store {data})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return fails


def result_codes():
    with open(os.path.join(SRC, "include", "huitong", "ledger.h"), encoding="utf-8") as f:
        text = f.read()
    body = text[text.index("enum ht_result {"):]
    body = body[:body.index("};")]
    names = re.findall(r"\bHT_R_([A-Z0-9_]+)\s*=", body)
    return [n.lower() for n in names if not n.startswith("_")]


def expected_results(obj, out):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "result" and isinstance(v, str):
                out.add(v)
            else:
                expected_results(v, out)
    elif isinstance(obj, list):
        for v in obj:
            expected_results(v, out)


def coverage(files):
    """Every result code of ledger.h must be expected somewhere, or be
    declared unreachable with a reason; no expectation may name a code
    that does not exist (a typo would otherwise pass silently)."""
    codes = result_codes()
    seen, unreachable = set(), {}
    for path in files:
        _, steps, unr = parse_scn(path)
        unreachable.update(unr)
        for s in steps:
            if s[0] == "req":
                expected_results(s[3], seen)
    problems = []
    if len(codes) < 40:
        problems.append(f"only {len(codes)} HT_R_* codes found in ledger.h: the extraction is broken")
    for c in sorted(seen - set(codes)):
        problems.append(f"an expectation names result '{c}', which ledger.h does not define")
    for c in sorted(set(unreachable) - set(codes)):
        problems.append(f"'! unreachable {c}' names a code ledger.h does not define")
    for c in sorted(set(unreachable) & seen):
        problems.append(f"'{c}' is declared unreachable but a scenario expects it")
    missing = [c for c in codes if c not in seen and c not in unreachable]
    for c in missing:
        problems.append(f"no scenario expects result '{c}'")
    covered = len([c for c in codes if c in seen])
    print(f"coverage: {covered}/{len(codes)} result codes expected by a scenario, "
          f"{len(unreachable)} declared unreachable:")
    for c, why in sorted(unreachable.items()):
        print(f"  unreachable {c}: {why}")
    return problems


def main():
    files = ARGS or sorted(os.path.join(SCN_DIR, f) for f in os.listdir(SCN_DIR)
                           if f.endswith(".scn"))
    passed = failed = 0
    for path in files:
        name = os.path.basename(path)
        t0 = time.monotonic()
        try:
            fails = run_scenario(path)
        except ScnError as e:
            fails = [f"scenario file error: {e}"]
        dt = time.monotonic() - t0
        if fails:
            failed += 1
            print(f"FAIL {name} ({dt:.1f}s)")
            for f in fails:
                print("  " + f.rstrip("\n").replace("\n", "\n  "))
        else:
            passed += 1
            print(f"ok   {name} ({dt:.1f}s)")
        sys.stdout.flush()
    if not ARGS:
        try:
            problems = coverage(files)
        except ScnError as e:
            problems = [f"scenario file error: {e}"]
        if problems:
            failed += 1
            print("FAIL result-code coverage")
            for p in problems:
                print("  " + p)
        else:
            passed += 1
            print("ok   result-code coverage")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


main()
PY

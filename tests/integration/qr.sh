#!/usr/bin/env bash
# qr.sh — `huitong qr` end to end (DESIGN.md "QR", docs/qr.md): every
# payload of $HT_SHARED/conformance/emv_mpm.tsv through `qr parse` (exit
# code, valid, complete, missing, the reason of each invalid one), the
# CPM vectors of emv_cpm.md; make -> parse round trips with multi-byte
# names; PNG -> zbarimg --raw -> parse round trips for made MPM codes,
# for every complete conformance payload remade, and for a CPM code; the
# SVG well-formed; @FILE and @- SPECs; usage errors exit 2 and refusals
# name the field. The conformance parts skip, saying so, when the shared
# folder is absent; the zbar parts when zbarimg is (scripts/install-deps
# installs zbar-tools).
#
#   HUITONG   the binary (ctest sets it; default build/huitong)
#   HT_KEEP=1 keep the temporary folder
# Ends with "N passed, M failed"; exits 1 on any failure.
set -uo pipefail

src=${HT_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${HUITONG:-$src/build/huitong}
if [ ! -x "$bin" ]; then
	echo "qr: no huitong binary at $bin (set HUITONG)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

exec python3 - "$bin" "${HT_SHARED:-$src/../shared}" <<'PY'
import json, os, re, shutil, subprocess, sys, tempfile
import xml.etree.ElementTree as ET

BIN, SHARED = sys.argv[1], sys.argv[2]
KEEP = os.environ.get("HT_KEEP") == "1"
ZBAR = shutil.which("zbarimg")
passed = failed = 0
tmp = tempfile.mkdtemp(prefix="ht-qr-")

# Why each invalid conformance row is refused (the same table as test_qr).
NEG = {"NEG-01": "crc_mismatch", "NEG-02": "truncated", "NEG-03": "truncated",
       "NEG-04": "missing_crc", "NEG-05": "truncated", "NEG-06": "duplicate_tag",
       "NEG-07": "bad_tag", "NEG-08": "crc_mismatch", "NEG-09": "crc_mismatch"}


def report(ok, name, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def run(*args, stdin=None):
    p = subprocess.run([BIN, "qr", *args], input=stdin, capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def parse(payload):
    rc, out, err = run("parse", payload)
    try:
        return rc, json.loads(out)
    except ValueError:
        return rc, {"unparsable": out, "stderr": err}


def zbar(path):
    p = subprocess.run([ZBAR, "--raw", "-q", path], capture_output=True,
                       timeout=60)
    return p.returncode, p.stdout.decode("utf-8").rstrip("\n")


def make(spec, *extra):
    return run("make", "--json", json.dumps(spec, ensure_ascii=False), *extra)


def conformance_mpm():
    path = os.path.join(SHARED, "conformance", "emv_mpm.tsv")
    if not os.path.exists(path):
        print(f"skip conformance: {path} absent (set HT_SHARED)")
        return []
    rows = []
    for line in open(path, encoding="utf-8"):
        if line.startswith("#") or not line.strip():
            continue
        rid, valid, complete, missing, _src, payload = line.rstrip("\n").split("\t")
        rows.append((rid, valid == "true", complete == "true", missing, payload))
    bad = []
    for rid, valid, complete, missing, payload in rows:
        rc, j = parse(payload)
        want = (0 if valid else 1, valid, complete if valid else False,
                missing.split(",") if missing else [],
                None if valid else NEG.get(rid))
        got = (rc, j.get("valid"), j.get("complete"), j.get("missing"),
               j.get("error"))
        if got != want:
            bad.append(f"{rid}: got {got}, want {want}")
    report(len(rows) == 46 and not bad, f"parse: {len(rows)} conformance MPM rows as their rows say",
           "; ".join(bad[:5]))
    return [(rid, p) for rid, v, c, m, p in rows if c]


def conformance_cpm():
    path = os.path.join(SHARED, "conformance", "emv_cpm.md")
    if not os.path.exists(path):
        print(f"skip conformance: {path} absent (set HT_SHARED)")
        return
    text = open(path, encoding="utf-8").read()
    vectors = re.findall(r"^(hQVDUFY\S+)\n([0-9A-F]+)$", text, re.M)
    bad = []
    for b64, hexdata in vectors:
        rc, j = parse(b64)
        tags = [o["tag"] for o in j.get("objects", [])]
        if rc != 0 or j.get("mode") != "cpm" or not j.get("complete") or tags[0] != "85":
            bad.append(f"{b64[:20]}: rc {rc} {j}")
    report(len(vectors) == 3 and not bad, "parse: the 3 CPM vectors decode, valid and complete",
           "; ".join(bad))


def round_trips():
    spec = {"point_of_initiation": "12",
            "merchant_account": {"26": {"00": "cn.huitong", "01": "bankB:m77"}},
            "mcc": "5812", "currency": "156", "amount": "88.00", "country": "CN",
            "merchant_name": "汇通咖啡 Huitong Café", "merchant_city": "北京",
            "postal_code": "100000", "additional": {"01": "订单-42", "05": "ref-7"},
            "alt_language": {"00": "ZH", "01": "汇通咖啡", "02": "北京"}}
    rc, out, err = make(spec)
    payload = out.strip()
    rc2, j = parse(payload)
    report(rc == 0 and rc2 == 0 and j.get("complete") and j.get("fields") == spec,
           "make -> parse round trip (UTF-8 names, lengths in characters)",
           f"{rc} {err} {j}")
    report("5917汇通咖啡 Huitong Café" in payload, "the name's length counts characters (17), not bytes")
    # @FILE and @-
    f = os.path.join(tmp, "spec.json")
    with open(f, "w", encoding="utf-8") as fh:
        json.dump(spec, fh, ensure_ascii=False)
    rc_f, out_f, _ = run("make", "--json", "@" + f)
    rc_s, out_s, _ = run("make", "--json", "@-", stdin=json.dumps(spec))
    report(rc_f == 0 and rc_s == 0 and out_f == out == out_s,
           "make --json @FILE and @- give the same payload")
    # parse - reads one line from standard input
    rc3, out3, _ = run("parse", "-", stdin=payload + "\n")
    report(rc3 == 0 and json.loads(out3).get("fields") == spec, "parse - reads standard input")
    return spec


def images(spec, remade):
    png, svg = os.path.join(tmp, "m.png"), os.path.join(tmp, "m.svg")
    rc, out, err = make(spec, "--png", png, "--svg", svg)
    report(rc == 0 and os.path.getsize(png) > 0, "make --png --svg writes both", err)
    try:
        root = ET.parse(svg).getroot()
        ok = root.tag.endswith("svg") and root.find("{http://www.w3.org/2000/svg}path") is not None
    except ET.ParseError as e:
        ok, err = False, str(e)
    report(ok, "the SVG is well-formed XML with the modules as one path", err)
    if not ZBAR:
        print("skip zbar: zbarimg not found (scripts/install-deps installs zbar-tools)")
        return
    zrc, text = zbar(png)
    rc2, j = parse(text)
    report(zrc == 0 and text == out.strip() and rc2 == 0 and j.get("fields") == spec,
           "PNG -> zbarimg -> parse round trip (UTF-8 kept)", f"{zrc} {text!r}")
    # every complete conformance payload, remade from its fields and scanned
    bad = []
    for i, (rid, payload) in enumerate(remade):
            ec = "LMQH"[i % 4]  # each level, a quarter of the codes each
            _, j = parse(payload)
            fields = j["fields"]
            fields.pop("rfu", None)
            p = os.path.join(tmp, f"{rid}-{ec}.png")
            rc, out, err = make(fields, "--png", p, "--ec", ec, "--scale", "4")
            zrc, text = zbar(p)
            _, back = parse(text)
            if rc or zrc or text != out.strip() or back.get("fields") != fields:
                bad.append(f"{rid}/{ec}: {rc} {zrc} {err}")
    report(remade == [] or not bad,
           f"PNG -> zbarimg -> parse for {len(remade)} remade conformance codes (levels L, M, Q, H in turn)",
           "; ".join(bad[:5]))
    # a consumer-presented code
    cpm = {"aid": "A000000333010102", "pan": "6212345678901234567", "name": "ZHANG/SAN",
           "label": "UnionPay", "language": "zhen"}
    p = os.path.join(tmp, "c.png")
    rc, out, err = run("make-cpm", "--json", json.dumps(cpm), "--png", p)
    zrc, text = zbar(p)
    rc2, j = parse(text)
    app = j.get("objects", [{}, {}])[1].get("objects", [])
    pan = [o.get("digits") for o in app if o["tag"] == "5A"]
    report(rc == 0 and text == out.strip() and text.startswith("hQVDUFY") and rc2 == 0
           and j.get("complete") and pan == [cpm["pan"]],
           "make-cpm -> PNG -> zbarimg -> parse: the token comes back", f"{rc} {err} {j}")


def errors():
    cases = [
        (["qr"], 2, ""), (["qr", "nope"], 2, "unknown command"),
        (["qr", "parse"], 2, ""), (["qr", "parse", "a", "b"], 2, ""),
        (["qr", "make"], 2, "--json SPEC is required"),
        (["qr", "make", "--json", "{"], 2, "not JSON"),
        (["qr", "make", "--json", "@/nonexistent/spec"], 2, "cannot open"),
        (["qr", "make", "--json", "{}", "--ec", "X"], 2, "--ec"),
        (["qr", "make", "--json", "{}", "--scale", "0"], 2, "--scale"),
        (["qr", "make", "--json", '{"mcc":"58"}'], 2, "mcc"),
        (["qr", "make", "--json", '{"merchant_account":{"26":{"00":"x"}},"mcc":"5812",'
          '"currency":"156","country":"China","merchant_name":"a","merchant_city":"b"}'],
         2, "country: 'China' is not a valid value"),
        (["qr", "make-cpm", "--json", '{"aid":"A000000333"}'], 2, "exactly one"),
        (["qr", "make-cpm", "--json", '{"aid":"A000000333","pin":"1"}'], 2, "unknown field 'pin'"),
        (["qr", "parse", "0002010102116304ABCD"], 1, ""),
        (["qr", "parse", "hQVDUFYwMWE="], 1, ""),  # 61 cut off
    ]
    bad = []
    for args, want, msg in cases:
        p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60)
        if p.returncode != want or msg not in p.stderr:
            bad.append(f"{args}: rc {p.returncode} stderr {p.stderr.strip()!r}")
    report(not bad, f"{len(cases)} usage errors and refusals: exit codes and messages", "; ".join(bad))
    helps = [p.returncode == 0 and "usage" in p.stdout for p in
             (subprocess.run([BIN, "qr", *s, "--help"], capture_output=True, text=True)
              for s in ([], ["parse"], ["make"], ["make-cpm"]))]
    report(all(helps), "--help for qr, parse, make, make-cpm")
    _, j = parse("000201010211520458125303156" "5802CN5904Shop6007BEIJING6304FFFF")
    report(j.get("error") == "crc_mismatch" and j.get("error_tag") == "63" and "fields" not in j,
           "an invalid payload: error, error_tag, no fields", str(j))


try:
    remade = conformance_mpm()
    conformance_cpm()
    spec = round_trips()
    images(spec, remade)
    errors()
finally:
    if KEEP:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY

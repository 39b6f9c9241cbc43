#!/usr/bin/env bash
# iso20022.sh — `huitong iso20022` as a user runs it: `check` on the
# prowide pacs.008 sample in $HT_SHARED/conformance/iso20022 exits 1 and
# prints a pacs.002 (XML that parses) with GrpSts RJCT and AM10; a
# well-formed pacs.008 (.02 and .08, several transactions) exits 0 with
# every status ACSC; a duplicate answers DUPL; --max-amount answers AM02;
# a DOCTYPE, a file over 4 MiB and a non-XML file are answered FF01 (exit
# 1); stdin works; bad usage and an unreadable file exit 2; `submit` says
# it is not built yet and exits 2; --help exits 0. The conformance part is
# skipped, saying so, when the shared folder is absent.
#
#   HUITONG   the binary (ctest sets it; default build/huitong)
# Ends with "N passed, M failed"; exits 1 on any failure.
set -uo pipefail

src=${HT_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${HUITONG:-$src/build/huitong}
if [ ! -x "$bin" ]; then
	echo "iso20022: no huitong binary at $bin (set HUITONG)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

exec python3 - "$bin" "${HT_SHARED:-$src/../shared}" <<'PY'
import json
import os, shutil, subprocess, sys, tempfile
import xml.etree.ElementTree as ET

BIN, SHARED = sys.argv[1], sys.argv[2]
passed = failed = 0
tmp = tempfile.mkdtemp(prefix="ht-iso-")


def report(ok, name, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}" + (f"\n     {detail}" if detail else ""))
    sys.stdout.flush()


def run(*args, stdin=None):
    return subprocess.run([BIN, "iso20022"] + list(args), capture_output=True,
                          timeout=120, input=stdin)


def pacs002(out):
    """(namespace, GrpSts, group reason, [(TxId, TxSts, reason)]) or None."""
    try:
        root = ET.fromstring(out)
    except ET.ParseError:
        return None
    ns = root.tag[1:].split("}")[0]
    q = lambda p: "/".join(f"{{{ns}}}{x}" for x in p.split("/"))
    g = root.find(q("FIToFIPmtStsRpt/OrgnlGrpInfAndSts"))
    txs = [(t.findtext(q("OrgnlTxId")), t.findtext(q("TxSts")),
            t.findtext(q("StsRsnInf/Rsn/Cd")))
           for t in root.findall(q("FIToFIPmtStsRpt/TxInfAndSts"))]
    return ns, g.findtext(q("GrpSts")), g.findtext(q("StsRsnInf/Rsn/Cd")), txs


def pacs008(version, txs, ctrl=None):
    bic = "BIC" if version == 2 else "BICFI"
    body = []
    for txid, amt, ccy in txs:
        body.append(
            f"<CdtTrfTxInf><PmtId><EndToEndId>E-{txid}</EndToEndId><TxId>{txid}</TxId></PmtId>"
            f"<IntrBkSttlmAmt Ccy='{ccy}'>{amt}</IntrBkSttlmAmt><ChrgBr>SLEV</ChrgBr>"
            f"<Dbtr><Nm>Jim</Nm></Dbtr><DbtrAcct><Id><IBAN>DE89370400440532013000</IBAN></Id></DbtrAcct>"
            f"<DbtrAgt><FinInstnId><{bic}>TESTBICB</{bic}></FinInstnId></DbtrAgt>"
            f"<CdtrAgt><FinInstnId><{bic}>TESTBICA</{bic}></FinInstnId></CdtrAgt>"
            f"<Cdtr><Nm>John</Nm></Cdtr><CdtrAcct><Id><Othr><Id>m77</Id></Othr></Id></CdtrAcct>"
            f"</CdtTrfTxInf>")
    cs = f"<CtrlSum>{ctrl}</CtrlSum>" if ctrl else ""
    return (f"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pacs.008.001.0{version}'>"
            f"<FIToFICstmrCdtTrf><GrpHdr><MsgId>M1</MsgId><CreDtTm>2026-03-01T08:00:00Z</CreDtTm>"
            f"<NbOfTxs>{len(txs)}</NbOfTxs>{cs}<SttlmInf><SttlmMtd>CLRG</SttlmMtd></SttlmInf>"
            f"</GrpHdr>{''.join(body)}</FIToFICstmrCdtTrf></Document>").encode()


def write(name, data):
    p = os.path.join(tmp, name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def expect(name, r, rc, grp, reason=None, txs=None, ns=None):
    a = pacs002(r.stdout)
    if a is None:
        report(False, name, f"stdout is not XML: {r.stdout[:200]!r} {r.stderr[:200]!r}")
        return
    problems = []
    if r.returncode != rc:
        problems.append(f"exit {r.returncode}, want {rc}")
    if a[1] != grp:
        problems.append(f"GrpSts {a[1]}, want {grp}")
    if a[2] != reason:
        problems.append(f"group reason {a[2]}, want {reason}")
    if txs is not None and [t[1:] for t in a[3]] != txs:
        problems.append(f"transactions {a[3]}, want {txs}")
    if ns and a[0] != "urn:iso:std:iso:20022:tech:xsd:" + ns:
        problems.append(f"namespace {a[0]}")
    report(not problems, name, "; ".join(problems) + f" stderr: {r.stderr.decode()[:200]}")


sample = os.path.join(SHARED, "conformance", "iso20022", "pacs.008.001.07-prowide.xml")
if os.path.exists(sample):
    r = run("check", sample)
    expect("conformance sample: RJCT with AM10", r, 1, "RJCT", "AM10",
           [("RJCT", "AC01")], "pacs.002.001.08")
    report(b"RJCT AM10" in r.stderr, "the verdict line names RJCT AM10", r.stderr.decode())
else:
    print(f"skip conformance sample: {sample} absent (set HT_SHARED)")

three = [("T1", "89.67", "EUR"), ("T2", "100", "JPY"), ("T3", "0.01", "CNY")]
expect("pacs.008.001.08, three transactions: ACSC", run("check", write("ok8.xml", pacs008(8, three, "189.68"))),
       0, "ACSC", None, [("ACSC", None)] * 3, "pacs.002.001.10")
expect("pacs.008.001.02, three transactions: ACSC", run("check", write("ok2.xml", pacs008(2, three))),
       0, "ACSC", None, [("ACSC", None)] * 3, "pacs.002.001.03")
expect("CtrlSum off by 0.01: AM10", run("check", write("am10.xml", pacs008(8, three, "189.69"))),
       1, "RJCT", "AM10", [("RJCT", "AM10")] * 3)
expect("duplicate TxId: DUPL, PART",
       run("check", write("dupl.xml", pacs008(8, [("T1", "1", "EUR"), ("T1", "2", "EUR")]))),
       1, "PART", None, [("ACSC", None), ("RJCT", "DUPL")])
expect("--max-amount: AM02", run("check", "--max-amount", "5000", write("am02.xml", pacs008(8, three))),
       1, "PART", None, [("RJCT", "AM02"), ("ACSC", None), ("ACSC", None)])
expect("from stdin", run("check", "-", stdin=pacs008(8, three)), 0, "ACSC", None)

r = run("check", "--msg-id", "MY-ID-1", write("id.xml", pacs008(8, three)))
report(b"<MsgId>MY-ID-1</MsgId>" in r.stdout and r.returncode == 0, "--msg-id sets the pacs.002 MsgId")
r = run("check", write("id2.xml", pacs008(8, three)))
r2 = run("check", write("id2.xml", pacs008(8, three)))
ids = [ET.fromstring(x.stdout).find(".//{*}GrpHdr/{*}MsgId").text for x in (r, r2)]
report(ids[0] != ids[1] and all(len(i) <= 35 for i in ids), "generated MsgIds differ and fit Max35Text", str(ids))

lol = (b"<?xml version='1.0'?><!DOCTYPE d [<!ENTITY a 'aaaaaaaaaa'>"
       b"<!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'><!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>]>"
       b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08'><x>&c;</x></Document>")
xxe = (b"<?xml version='1.0'?><!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
       b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08'><FIToFICstmrCdtTrf>"
       b"<GrpHdr><MsgId>&x;</MsgId></GrpHdr></FIToFICstmrCdtTrf></Document>")
for name, data, leak in (("DOCTYPE with entities", lol, b"aaaaaaaaaa"),
                         ("external entity on /etc/passwd", xxe, b"root:")):
    r = run("check", write("dtd.xml", data))
    expect(f"{name}: FF01", r, 1, "RJCT", "FF01")
    report(leak not in r.stdout, f"{name}: nothing expanded into the answer")
expect("over 4 MiB: FF01", run("check", write("big.xml", b"<Document>" + b" " * (4 << 20))),
       1, "RJCT", "FF01")
expect("not XML: FF01", run("check", write("junk.xml", b"\x00\x01garbage")), 1, "RJCT", "FF01")

r = run("check", os.path.join(tmp, "absent.xml"))
report(r.returncode == 2 and b"cannot open" in r.stderr and not r.stdout, "missing file: exit 2")
r = run("check")
report(r.returncode == 2 and b"usage" in r.stderr, "no file: usage, exit 2")
r = run("check", "--bogus", "x")
report(r.returncode == 2, "unknown option: exit 2")
r = run("check", "--max-amount", "x1", "f")
report(r.returncode == 2, "bad --max-amount: exit 2")
r = run("check", "--help")
report(r.returncode == 0 and b"usage" in r.stdout, "check --help: exit 0")
r = run("--help")
report(r.returncode == 0 and b"submit" in r.stdout, "iso20022 --help: exit 0")
r = run()
report(r.returncode == 2, "no subcommand: exit 2")
r = run("frobnicate")
report(r.returncode == 2, "unknown subcommand: exit 2")
# ---- submit: booked through the switch ------------------------------------------------
D = os.path.join(tmp, "data")
def hub(*args):
    return subprocess.run([BIN] + list(args), capture_output=True, timeout=120)
assert hub("init", "--data", D).returncode == 0
for p, bic in (("bankA", "TESTBICA"), ("bankB", "TESTBICB")):
    for cur in ("156", "978", "392"):
        assert hub("switch", "setup", "--data", D, "--participant", p, "--currency", cur).returncode == 0
    assert hub("switch", "bic", "--data", D, "--participant", p, "--bic", bic).returncode in (0, 1)
for cur in ("156", "978", "392"):
    hub("switch", "cap", "--data", D, "--participant", "bankB", "--currency", cur, "--amount", "1000000")
r = run("submit", "--data", D, write("s1.xml", pacs008(8, three, "189.68")))
expect("submit: a well-formed pacs.008 settles, ACSC", r, 0, "ACSC", None, [("ACSC", None)] * 3)
report(b"3 transfer(s) booked" in r.stderr, "submit: three transfers booked", r.stderr.decode())
pos = json.loads(hub("switch", "position", "--data", D, "--participant", "bankB",
                     "--currency", "978").stdout)
report(pos.get("net_debit") == 8967, "submit: bank B's EUR position carries 89.67", str(pos))
r = run("submit", "--data", D, write("s1.xml", pacs008(8, three, "189.68")))
expect("submit: the same message again: DUPL", r, 1, "RJCT", None, [("RJCT", "DUPL")] * 3)
if os.path.exists(sample):
    r = run("submit", "--data", D, sample)
    expect("submit: the conformance sample: RJCT AM10", r, 1, "RJCT", "AM10")
big = [("B1", "20000", "CNY")]
r = run("submit", "--data", D, write("s2.xml", pacs008(8, big)))
expect("submit: beyond bank B's net debit cap: AM04", r, 1, "RJCT", None, [("RJCT", "AM04")])
r = run("submit", "--data", D, "--as", "bankA", write("s3.xml", pacs008(8, [("A1", "1", "CNY")])))
expect("submit --as another participant than the debtor agent's: RC01", r, 1, "RJCT", None,
       [("RJCT", "RC01")])
unknown = pacs008(8, [("U1", "1", "CNY")]).replace(b"TESTBICA", b"OTHRBICA")
r = run("submit", "--data", D, write("s4.xml", unknown))
expect("submit: a creditor agent that is not a member: RC01", r, 1, "RJCT", None, [("RJCT", "RC01")])
# settlement windows over the CLI: the booked ISO transfers are window 1's
r = hub("switch", "window", "close", "--data", D)
w = json.loads(r.stdout) if r.returncode == 0 else {}
nets = {(p["participant"], p["currency"]): int(p["net"]) for p in w.get("positions", [])}
report(r.returncode == 0 and w.get("state") == "closed" and nets.get(("bankB", 978)) == -8967
       and nets.get(("bankA", 978)) == 8967 and sum(nets.values()) == 0,
       "switch window close: bank B owes the 89.67 EUR it sent, the lines sum to zero",
       r.stdout.decode()[:300] + r.stderr.decode()[:200])
r = hub("switch", "window", "settle", "--data", D, "--window", "2")
report(r.returncode == 1 and b"open" in r.stderr, "switch window settle of the open window: exit 1")
r = hub("switch", "window", "settle", "--data", D, "--window", "1")
report(r.returncode == 0 and json.loads(r.stdout).get("state") == "settled",
       "switch window settle books window 1", r.stderr.decode()[-200:])
pos = json.loads(hub("switch", "position", "--data", D, "--participant", "bankB",
                     "--currency", "978").stdout)
report(pos.get("net_debit") == 0, "settling reset bank B's EUR position", str(pos))
r = hub("switch", "window", "report", "--data", D, "--window", "1", "--csv")
lines = r.stdout.decode().strip().split("\n")
report(r.returncode == 0 and lines[0].startswith("window,participant,currency")
       and sum(int(l.split(",")[5]) for l in lines[1:]) == 0, "switch window report --csv sums to zero")
r = hub("journal", "verify", "--data", D)
report(r.returncode == 0, "submit: the journal verifies", r.stderr.decode()[-200:])
r = run("submit", write("s5.xml", pacs008(8, three)))
report(r.returncode == 2 and b"--data" in r.stderr, "submit without --data: exit 2")
r = subprocess.run([BIN, "--help"], capture_output=True)
report(b"iso20022" in r.stdout and b"not built yet" not in
       [l for l in r.stdout.split(b"\n") if b"iso20022" in l][0], "huitong --help lists iso20022")

shutil.rmtree(tmp)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY

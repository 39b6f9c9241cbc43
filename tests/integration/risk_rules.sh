#!/usr/bin/env bash
# risk_rules.sh — `huitong risk check` and `huitong risk test` through the
# real binary (docs/risk-rules.md).
#
# check: a valid file prints "ok: N rules (M shadow), version V" and exits
# 0; an invalid one prints each error as FILE:LINE:COLUMN: message on
# stderr and exits 1; usage errors and unreadable files exit 2; --features
# replaces the built-in catalogue. test: one JSON line per payment with the
# enforced action, the capped score and every fired rule (shadow and
# participant rules marked), a malformed line answered in place with exit
# 1 at the end, a per-rule summary on stderr, runtime errors counted.
# HT_KEEP=1 keeps the temporary directory.
set -u

: "${HUITONG:?set HUITONG to the huitong binary}"
pass=0
fail=0
tmp=$(mktemp -d)
if [ "${HT_KEEP:-0}" = 1 ]; then
	echo "keeping $tmp" >&2
else
	trap 'rm -rf "$tmp"' EXIT
fi

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

# expect_rc WANT DESCRIPTION CMD...: stdout in $tmp/out, stderr in $tmp/err
expect_rc() {
	local want=$1 desc=$2 rc
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -eq "$want" ]; then ok; else
		bad "$desc: exit $rc, want $want ($(head -c 300 "$tmp/out" "$tmp/err"))"
	fi
}

# expect_line FILE LINE DESCRIPTION: FILE has exactly this line
expect_line() {
	if grep -qxF -- "$2" "$1"; then ok; else
		bad "$3: no line '$2' in $(basename "$1"): $(head -c 400 "$1")"
	fi
}

# expect_lines FILE N DESCRIPTION: FILE has exactly N lines
expect_lines() {
	local n
	n=$(wc -l <"$1")
	if [ "$n" -eq "$2" ]; then ok; else
		bad "$3: $n lines, want $2: $(head -c 300 "$1")"
	fi
}

risk() { "$HUITONG" risk "$@"; }

cat >"$tmp/good.rules" <<'EOF'
# A rule file using every construct. Amounts are in yuan, hours of day in
# Beijing time (UTC+8), as the feature catalogue defines them.
version 7
list high_risk_payees = ["bankB:m66", "bankB:m77"]
rule new_device_burst: device.first_seen < 10m and payer.count_1h > 5
    => review score 40 reason "new_device_burst"
shadow rule big_night: amount > 500 and hour >= 0 and hour < 5 => block score 80
rule risky_payee: payee in high_risk_payees => review score 30 reason "payee_list"
rule qr_large: channel == "qr" and amount >= 10_000 => review score 50
rule ratio: amount / payer.count_1h > 1 => block score 10
participant bankA {
  rule bank_a_limit: amount > 1000 => block score 90
  shadow rule bank_a_new: device == "" => review
}
EOF

# ---- check ----------------------------------------------------------------
expect_rc 0 "check valid" risk check "$tmp/good.rules"
expect_line "$tmp/out" "ok: 7 rules (2 shadow), version 7" "check valid"

printf 'version 1\nrule a: amount > 5 review\nrule b: amount > "x" => block\nrule c: payer.count_1hr > 3 => block\nrule a: amount > 1 => block\nrule d: amount > 99999999999999999999 => block\n' >"$tmp/bad.rules"
expect_rc 1 "check invalid" risk check "$tmp/bad.rules"
expect_line "$tmp/err" "$tmp/bad.rules:2:20: expected '=>' after condition" "syntax"
expect_line "$tmp/err" "$tmp/bad.rules:3:16: cannot compare a number with a string" "type"
expect_line "$tmp/err" "$tmp/bad.rules:4:9: unknown feature 'payer.count_1hr' (did you mean 'payer.count_1h'?)" "unknown feature"
expect_line "$tmp/err" "$tmp/bad.rules:5:6: duplicate rule name 'a' (first at line 2)" "duplicate"
expect_line "$tmp/err" "$tmp/bad.rules:6:18: number out of range (at most 9007199254740992)" "huge number"
expect_lines "$tmp/out" 0 "nothing on stdout for an invalid file"

python3 -c "print('version 1\nrule deep: ' + '(' * 80 + 'true' + ')' * 80 + ' => block')" >"$tmp/deep.rules"
expect_rc 1 "check deep" risk check "$tmp/deep.rules"
expect_line "$tmp/err" "$tmp/deep.rules:2:76: expression nested deeper than 64 levels" "deep"

printf 'rule a: true => block\n' >"$tmp/nover.rules"
expect_rc 1 "check no version" risk check "$tmp/nover.rules"
expect_line "$tmp/err" "$tmp/nover.rules:1:1: expected 'version N' as the first statement" "version"

head -c 1100000 /dev/zero | tr '\0' '#' >"$tmp/huge.rules"
expect_rc 1 "check huge file" risk check "$tmp/huge.rules"
expect_line "$tmp/err" "$tmp/huge.rules:1:1: file larger than 1048576 bytes" "huge file"

expect_rc 2 "check missing file" risk check "$tmp/nope.rules"
expect_rc 2 "check without a file" risk check
expect_rc 2 "check two files" risk check "$tmp/good.rules" "$tmp/bad.rules"
expect_rc 2 "check unknown option" risk check --bogus "$tmp/good.rules"
expect_rc 0 "check --help" risk check --help
grep -q "usage: huitong risk check" "$tmp/out" && ok || bad "check --help text"

# --features: another catalogue
printf '# a catalogue\nnumber velocity\nnumber amount\n\nstring channel  # comment\n' >"$tmp/features"
printf 'version 3\nrule v: velocity > 3 and channel == "qr" => block\n' >"$tmp/velocity.rules"
expect_rc 0 "check --features" risk check "$tmp/velocity.rules" --features "$tmp/features"
expect_line "$tmp/out" "ok: 1 rules (0 shadow), version 3" "check --features"
expect_rc 1 "check without the catalogue" risk check "$tmp/velocity.rules"
expect_line "$tmp/err" "$tmp/velocity.rules:2:9: unknown feature 'velocity'" "default catalogue"
expect_rc 1 "good file against another catalogue" risk check "$tmp/good.rules" --features "$tmp/features"
printf 'number velocity\nfloat x\n' >"$tmp/badfeatures"
expect_rc 2 "bad features file" risk check "$tmp/velocity.rules" --features "$tmp/badfeatures"
expect_line "$tmp/err" "$tmp/badfeatures:2: expected \"number NAME\" or \"string NAME\"" "bad features line"
printf 'number velocity\nnumber velocity\n' >"$tmp/dupfeatures"
expect_rc 2 "repeated feature" risk check "$tmp/velocity.rules" --features "$tmp/dupfeatures"
expect_line "$tmp/err" "$tmp/dupfeatures: schema: name 1 ('velocity') is invalid or repeated" "repeated feature"

# ---- test -----------------------------------------------------------------
cat >"$tmp/pay.jsonl" <<'EOF'
{"id":"t-1","ts":"2026-02-28T19:00:00.120Z","payer":"bankA:c1","payee":"bankB:m77","payer_participant":"bankA","payee_participant":"bankB","amount":"2000000","currency":"CNY","channel":"qr","device":"d-9","ip":"10.1.2.3"}
{"id":"t-2","ts":"2026-03-01T13:00:00Z","payer":"bankC:c1","payee":"bankB:m1","payer_participant":"bankC","payee_participant":"bankB","amount":100,"currency":"CNY","channel":"p2p"}

{"id":"t-3","ts":"2026-03-01T23:59:59.999Z","payer":"bankA:c2","payee":"bankB:m66","payer_participant":"bankA","payee_participant":"bankB","amount":"5000","currency":"CNY","channel":"card","device":"d-1"}
EOF
expect_rc 0 "test" risk test "$tmp/good.rules" "$tmp/pay.jsonl"
expect_lines "$tmp/out" 3 "one line per payment, blank lines skipped"
cp "$tmp/out" "$tmp/test.out"
python3 - "$tmp/test.out" <<'EOF' && ok || bad "test output"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
def f(rule, reason, action, score, shadow, participant=None):
    d = {"rule": rule, "reason": reason, "action": action, "score": score,
         "shadow": shadow}
    if participant:
        d["participant"] = participant
    return d
want = [
    {"id": "t-1", "action": "block", "score": 100, "fired": [
        f("big_night", "big_night", "block", 80, True),
        f("risky_payee", "payee_list", "review", 30, False),
        f("qr_large", "qr_large", "review", 50, False),
        f("bank_a_limit", "bank_a_limit", "block", 90, False, "bankA")],
     "errors": 1},
    {"id": "t-2", "action": "allow", "score": 0, "fired": [], "errors": 1},
    {"id": "t-3", "action": "review", "score": 30, "fired": [
        f("risky_payee", "payee_list", "review", 30, False)], "errors": 1},
]
if lines != want:
    for got, w in zip(lines, want):
        if got != w:
            print("got ", json.dumps(got), "\nwant", json.dumps(w), file=sys.stderr)
    sys.exit(1)
EOF
expect_line "$tmp/err" "risk test: 3 payments, 0 malformed lines, rules version 7" "summary head"
expect_line "$tmp/err" "  big_night: block (shadow), fired on 1 of 3 payments" "summary shadow"
expect_line "$tmp/err" "  risky_payee: review, fired on 2 of 3 payments" "summary rule"
expect_line "$tmp/err" "  new_device_burst: review, fired on 0 of 3 payments" "summary silent rule"
expect_line "$tmp/err" "  bankA/bank_a_limit: block, fired on 1 of 3 payments" "summary participant"
expect_line "$tmp/err" "  bankA/bank_a_new: review (shadow), fired on 0 of 3 payments" "summary participant shadow"
expect_line "$tmp/err" "  3 rule evaluations stopped by runtime errors (division by zero 3, NaN/infinity 0)" "summary errors"

# standard input, and malformed lines answered in place (each line below
# is t-2 with one thing wrong; messages are ht_payment_parse's)
base='"ts":"2026-03-01T13:00:00Z","payer":"bankC:c1","payee":"bankB:m1","payer_participant":"bankC","payee_participant":"bankB","currency":"CNY","channel":"p2p"'
{
	head -n 1 "$tmp/pay.jsonl"
	echo 'not json'
	echo '{"id":"t-9",'"${base/13:00:00/25:00:00}"',"amount":"1"}'
	echo '{"id":"t-9",'"$base"',"amount":"0"}'
	echo '{"id":"t-9",'"${base/\"bankC:c1\"/7}"',"amount":"1"}'
	echo '{"id":"t-9","id":"t-10",'"$base"',"amount":"1"}'
	echo '{'"$base"',"amount":"1"}'
	head -n 2 "$tmp/pay.jsonl" | tail -n 1
} >"$tmp/mixed.jsonl"
expect_rc 1 "test malformed lines" risk test "$tmp/good.rules" - <"$tmp/mixed.jsonl"
expect_lines "$tmp/out" 8 "a line for each input line"
expect_prefix() { # FILE PREFIX DESCRIPTION: a line of FILE starts with PREFIX
	if grep -qF -- "$2" "$1" && grep -F -- "$2" "$1" | grep -q "^$(printf '%s' "$2" | sed 's/[][\.*^$/]/\\&/g')"; then ok; else
		bad "$3: no line starting '$2' in $(basename "$1"): $(head -c 600 "$1")"
	fi
}
expect_prefix "$tmp/out" '{"line":2,"error":"invalid JSON' "not json"
expect_prefix "$tmp/out" '{"line":3,"error":"ts: ' "bad hour"
expect_prefix "$tmp/out" '{"line":4,"error":"amount: ' "zero amount"
expect_prefix "$tmp/out" '{"line":5,"error":"payer: ' "payer type"
expect_prefix "$tmp/out" '{"line":6,"error":"' "duplicate key"
expect_line "$tmp/out" '{"line":7,"error":"id: missing"}' "no id"
expect_line "$tmp/err" "risk test: 2 payments, 6 malformed lines, rules version 7" "mixed summary"

expect_rc 1 "test with invalid rules" risk test "$tmp/bad.rules" "$tmp/pay.jsonl"
expect_line "$tmp/err" "$tmp/bad.rules:2:20: expected '=>' after condition" "test invalid rules"
expect_lines "$tmp/out" 0 "no payment lines for invalid rules"
expect_rc 2 "test missing events" risk test "$tmp/good.rules" "$tmp/nope.jsonl"
expect_rc 2 "test missing args" risk test "$tmp/good.rules"
expect_rc 0 "test --help" risk test --help
grep -q "against the payments before it" "$tmp/out" && ok || bad "test --help says features are stateful"
: >"$tmp/empty.jsonl"
expect_rc 0 "test empty input" risk test "$tmp/good.rules" "$tmp/empty.jsonl"
expect_line "$tmp/err" "risk test: 0 payments, 0 malformed lines, rules version 7" "empty input"

echo "risk_rules: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

#!/usr/bin/env bash
# Tamper test: change, delete or reorder any stored event (refusals
# included; or a head, node, balance, account owner) and `journal verify`
# must fail (exit 1) and name the entry.
# Works on copies of one store, editing its SQLite file directly as an
# attacker with file access would.
set -euo pipefail
huitong=${HUITONG:-build/huitong}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok()  { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

make_store() { # $1 dir, $2 hash
  local sign=sm2; [ "$2" = sha256 ] && sign=ed25519
  "$huitong" init --data "$1" --hash "$2" --sign "$sign" >/dev/null
  python3 - "$1" <<'PY' | "$huitong" ledger apply --data "$1" >/dev/null
import json, sys
print(json.dumps({"op": "create_accounts", "accounts": [
    {"id": str(i), "ledger": 156, "code": 1} for i in range(1, 11)]}))
tid = 100
for commit in range(12):          # 12 commits -> 13 heads
    ts = []
    for k in range(7 + commit):
        ts.append({"id": str(tid), "debit_account_id": str(1 + tid % 10),
                   "credit_account_id": str(1 + (tid + 3) % 10), "amount": str(tid),
                   "ledger": 156, "code": 1}); tid += 1
    print(json.dumps({"op": "create_transfers", "transfers": ts}))
# A last commit of refusals (journal events of kind 4), after every leaf
# the cases above name: an amount of zero, an unknown account.
print(json.dumps({"op": "create_transfers", "transfers": [
    {"id": "900", "debit_account_id": "1", "credit_account_id": "2", "amount": "0",
     "ledger": 156, "code": 1},
    {"id": "901", "debit_account_id": "999", "credit_account_id": "2", "amount": "5",
     "ledger": 156, "code": 1}]}))
PY
}

# flip COLUMN K: an SQL expression for a byte that surely differs from
# byte K (1-based) of COLUMN, so a tampering case can never be a no-op.
flip() { echo "(CASE WHEN substr($1,$2,1) = x'00' THEN x'01' ELSE x'00' END)"; }

# expect_fail NAME PATTERN SQL: apply SQL to a copy, verify must exit 1
# and its message must match PATTERN.
expect_fail() {
  local name=$1 pattern=$2 sql=$3 d="$tmp/case-$RANDOM$RANDOM"
  cp -r "$base" "$d"
  python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit(); c.close()' \
    "$d/huitong.db" "$sql"
  local out rc=0
  out=$("$huitong" journal verify --data "$d" 2>/dev/null) || rc=$?
  if [ "$rc" -eq 1 ] && grep -Eq "$pattern" <<<"$out"; then ok "$hash: $name -> $out"
  else bad "$hash: $name: exit $rc, output '$out', wanted /$pattern/"; fi
}

for hash in sm3 sha256; do
  base="$tmp/base-$hash"
  make_store "$base" "$hash"
  if out=$("$huitong" journal verify --data "$base"); then ok "$hash: intact store verifies: $out"
  else bad "$hash: intact store does not verify: $out"; fi
  # change one byte in the middle of event 40's data
  expect_fail "changed event" "event 40:" \
    "UPDATE event SET data = substr(data,1,60) || $(flip data 61) || substr(data,62) WHERE leaf=40;"
  # change the amount field only (bytes 66..73 of a transfer)
  expect_fail "changed amount" "event 55:" \
    "UPDATE event SET data = substr(data,1,72) || $(flip data 73) || substr(data,74) WHERE leaf=55;"
  expect_fail "deleted event" "event 33: missing" "DELETE FROM event WHERE leaf=33;"
  expect_fail "deleted last event" "event [0-9]+: missing" \
    "DELETE FROM event WHERE leaf=(SELECT max(leaf) FROM event);"
  expect_fail "reordered events" "event 20:" \
    "CREATE TEMP TABLE t AS SELECT leaf, data FROM event WHERE leaf IN (20, 21);
     UPDATE event SET data=(SELECT data FROM t WHERE leaf=21) WHERE leaf=20;
     UPDATE event SET data=(SELECT data FROM t WHERE leaf=20) WHERE leaf=21;"
  expect_fail "extra event" "event [0-9]+: not covered" \
    "INSERT INTO event(leaf,data) SELECT max(leaf)+1, (SELECT data FROM event WHERE leaf=50) FROM event;"
  expect_fail "changed head root" "head 5: bad signature" \
    "UPDATE head SET root = zeroblob(32) WHERE seq=5;"
  expect_fail "changed head signature" "head 7: bad signature" \
    "UPDATE head SET sig = substr(sig,1,10) || $(flip sig 11) || substr(sig,12) WHERE seq=7;"
  expect_fail "deleted head" "head 4: missing" "DELETE FROM head WHERE seq=4;"
  expect_fail "changed Merkle node" "node [0-9]+ \\(level [0-9]+, events [0-9]+\\.\\.[0-9]+\\) differs" \
    "UPDATE head SET nodes = zeroblob(32) || substr(nodes, 33)
       WHERE seq = (SELECT seq FROM head WHERE node_count > 0 ORDER BY seq LIMIT 1 OFFSET 2);"
  expect_fail "changed leaf fingerprint" "event 70: leaf hash differs" \
    "UPDATE head SET leaf_fps = substr(leaf_fps, 1, 4 * (70 - (SELECT tree_size FROM head h2 WHERE h2.seq = head.seq - 1)))
                               || x'00000000' ||
                               substr(leaf_fps, 4 * (70 - (SELECT tree_size FROM head h2 WHERE h2.seq = head.seq - 1)) + 5)
       WHERE seq = (SELECT min(seq) FROM head WHERE tree_size > 70);"
  expect_fail "changed balance" "account 3: stored balances differ" \
    "UPDATE account SET credits_posted = credits_posted + 1 WHERE slot=2;"
  expect_fail "deleted account row" "account rows: 9 stored, 10 in the journal" \
    "DELETE FROM account WHERE slot=9;"
  # the refusal's result (bytes 18..19, ledger.h): amount_must_not_be_zero
  # (24) becomes exceeds_credits (97), a code that burns too: only the
  # journal can tell
  expect_fail "changed refusal result" "event [0-9]+: leaf hash differs" \
    "UPDATE event SET data = substr(data,1,17) || x'0061' || substr(data,20)
       WHERE leaf = (SELECT min(leaf) FROM event WHERE substr(data,1,1) = x'04');"
  expect_fail "deleted refusal" "event [0-9]+: missing" \
    "DELETE FROM event WHERE leaf = (SELECT min(leaf) FROM event WHERE substr(data,1,1) = x'04');"
  expect_fail "owner of a missing account" "owner of account slot 10: no such account" \
    "INSERT INTO account_owner(slot, owner) VALUES (10, 'bank-a');"
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

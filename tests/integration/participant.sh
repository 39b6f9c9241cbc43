#!/usr/bin/env bash
# participant.sh — the hub's PKI and trust registry through the real
# binary: `huitong init` (CA, server certificate, registry; idempotent,
# --server-name), `huitong participant add|rotate|revoke|list` for every
# role and algorithm, the credentials directories they write (files,
# modes, credentials.json, certificates checked with the openssl tool),
# grace and revocation in `list --json`, registry writes while another
# process holds the store's writer lease and an open read transaction on
# the registry, and every refusal: exit 2 with a message naming the
# problem.
#
# Env: HUITONG (the binary), HT_BUILD, HT_SOURCE (unused here, accepted),
# HT_KEEP=1 keeps the temporary directory.
set -u

: "${HUITONG:?set HUITONG to the huitong binary}"
huitong=$HUITONG
tmp=$(mktemp -d)
cleanup() {
	[ -n "${lease_pid:-}" ] && kill "$lease_pid" 2>/dev/null
	[ -n "${reader_pid:-}" ] && kill "$reader_pid" 2>/dev/null
	exec 7>&- 2>/dev/null
	if [ -n "${HT_KEEP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$2"; then ok; else bad "$1"; fi; }

# expect RC DESCRIPTION [--err REGEX] -- CMD...: exit code and, when
# given, a regular expression stderr must match.
expect() {
	local want=$1 desc=$2 re="" rc
	shift 2
	if [ "$1" = --err ]; then re=$2; shift 2; fi
	[ "$1" = -- ] && shift
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		bad "$desc: exit $rc, want $want ($(head -c 300 "$tmp/err"))"
	elif [ -n "$re" ] && ! grep -Eq -- "$re" "$tmp/err"; then
		bad "$desc: stderr does not match /$re/: $(head -c 300 "$tmp/err")"
	else
		ok
	fi
}

mode() { stat -c %a "$1"; }
# The interpreter itself, not a version manager's shim (which can cost a
# second per call).
py=$(python3 -c 'import sys; print(sys.executable)')

# jexpect FILE [DESC EXPR WANT]...: in one Python run, evaluate each EXPR
# with d = the JSON of FILE, ps = its participants by id and keys = their
# keys by key id (for `list --json`), and compare str(result) with WANT.
jexpect() {
	local out line
	out=$("$py" - "$@" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ps = {p["id"]: p for p in d.get("participants", [])}
keys = {k["key_id"]: k for p in ps.values() for k in p["keys"]}
args = sys.argv[2:]
for i in range(0, len(args), 3):
    desc, expr, want = args[i:i + 3]
    try:
        got = str(eval(expr))
    except Exception as e:
        got = f"<{e!r}>"
    print("ok" if got == want else f"FAIL: {desc}: got {got!r}, want {want!r}")
PY
)
	while IFS= read -r line; do
		if [ "$line" = ok ]; then ok; else fail=$((fail + 1)); echo "$line" >&2; fi
	done <<<"$out"
}

d=$tmp/hub
# ---- init ---------------------------------------------------------------------
expect 2 "init with a bad --server-name" --err "server-name 'bad name'" -- \
	"$huitong" init --data "$d" --server-name "bad name"
check "a refused init makes nothing" "[ ! -e '$d' ]"
expect 0 "init" -- "$huitong" init --data "$d" --server-name hub.example.com \
	--server-name 10.9.8.7
for f in ca.key server.key registry.db hub-key.pem; do
	check "$f is 0600" "[ \"\$(mode '$d/$f')\" = 600 ]"
done
for f in ca.crt server.crt; do check "$f exists" "[ -s '$d/$f' ]"; done
check "init names the server certificate" "grep -q hub.example.com '$tmp/out'"
expect 0 "openssl: the server certificate chains to the CA" -- \
	openssl verify -CAfile "$d/ca.crt" -purpose sslserver "$d/server.crt"
openssl x509 -in "$d/server.crt" -noout -ext subjectAltName >"$tmp/san" 2>&1
for n in "DNS:localhost" "IP Address:127.0.0.1" "DNS:hub.example.com" \
	"IP Address:10.9.8.7"; do
	check "server SAN $n" "grep -q '$n' '$tmp/san'"
done
check "the CA is named after the data directory" \
	"openssl x509 -in '$d/ca.crt' -noout -subject | grep -q 'huitong hub CA hub'"

cp "$d/ca.key" "$tmp/ca.key.before"
expect 2 "init on an initialised store" --err "already holds" -- \
	"$huitong" init --data "$d"
# An older store (no PKI files) or a removed server pair is completed.
rm "$d/server.key" "$d/server.crt"
expect 0 "init completes a missing server certificate" -- \
	"$huitong" init --data "$d"
check "init said it completed" "grep -q completed '$tmp/out'"
check "the server certificate is back" "[ -s '$d/server.key' ] && [ -s '$d/server.crt' ]"
check "the CA key was not replaced" "cmp -s '$tmp/ca.key.before' '$d/ca.key'"
# Half a pair is refused with a message and never replaced.
mv "$d/ca.crt" "$tmp/ca.crt.saved"
expect 2 "init with ca.key but no ca.crt" --err "ca.key exists without ca.crt" -- \
	"$huitong" init --data "$d"
check "no new ca.crt was made" "[ ! -e '$d/ca.crt' ]"
mv "$tmp/ca.crt.saved" "$d/ca.crt"
expect 0 "openssl: the CA still verifies the server" -- \
	openssl verify -CAfile "$d/ca.crt" "$d/server.crt"

# ---- add: every role and algorithm ------------------------------------------------
hubpub=$(openssl pkey -in "$d/hub-key.pem" -pubout 2>/dev/null)
# id role alg url
while read -r id role alg url; do
	c=$tmp/creds-$id
	args=(participant add --data "$d" --id "$id" --out "$c")
	[ "$role" != - ] && args+=(--role "$role")
	[ "$alg" != - ] && args+=(--alg "$alg")
	[ "$url" != - ] && args+=(--url "$url")
	expect 0 "add $id" -- "$huitong" "${args[@]}"
	check "add $id prints its key id" "grep -q 'key $id:1' '$tmp/out'"
	[ "$role" = - ] && role=participant
	[ "$alg" = - ] && alg=sm2
	[ "$url" = - ] && url=https://127.0.0.1:8443
	check "$id: directory 0700" "[ \"\$(mode '$c')\" = 700 ]"
	for f in client.key signing.key; do
		check "$id: $f 0600" "[ \"\$(mode '$c/$f')\" = 600 ]"
	done
	for f in client.crt ca.crt hub-key.pub credentials.json; do
		check "$id: $f present" "[ -s '$c/$f' ]"
	done
	jexpect "$c/credentials.json" \
		"$id: json id" 'd["id"]' "$id" \
		"$id: json role" 'd["role"]' "$role" \
		"$id: json url" 'd["url"]' "$url" \
		"$id: json files" '(d["key"], d["cert"], d["ca"], d["signing_key"])' \
		"('client.key', 'client.crt', 'ca.crt', 'signing.key')" \
		"$id: json signing_alg" 'd["signing_alg"]' "$alg" \
		"$id: json signing_key_id" 'd["signing_key_id"]' "$id:1" \
		"$id: json hub_key" 'd["hub_key"]' hub-key.pub \
		"$id: json hub_sign_alg" 'd["hub_sign_alg"]' sm2
	check "$id: hub-key.pub is the journal's public key" \
		"[ \"\$(cat '$c/hub-key.pub')\" = \"\$hubpub\" ]"
	check "$id: ca.crt is the hub CA" "cmp -s '$c/ca.crt' '$d/ca.crt'"
	expect 0 "openssl: $id's certificate is a client certificate of the CA" -- \
		openssl verify -CAfile "$d/ca.crt" -purpose sslclient "$c/client.crt"
	check "$id: certificate identity" \
		"openssl x509 -in '$c/client.crt' -noout -ext subjectAltName | grep -q 'urn:huitong:participant:$id:role:$role'"
	check "$id: TLS key is the certificate's" \
		"[ \"\$(openssl x509 -in '$c/client.crt' -noout -pubkey)\" = \"\$(openssl pkey -in '$c/client.key' -pubout)\" ]"
done <<'EOF'
bankA - - -
bankB participant ed25519 https://hub.example.com:9443
ops operator ecdsa-p256 -
pboc regulator sm2 -
EOF

# ---- add: refusals -------------------------------------------------------------------
long57=$(printf 'a%.0s' $(seq 57))
long56=$(printf 'b%.0s' $(seq 56))
expect 2 "add an existing id" --err "already registered.*rotate" -- \
	"$huitong" participant add --data "$d" --id bankA --out "$tmp/x1"
check "a refused add writes no credentials" "[ ! -e '$tmp/x1' ]"
expect 2 "add a bad id" --err "ids are 1\.\.56 characters" -- \
	"$huitong" participant add --data "$d" --id "bank A" --out "$tmp/x1"
expect 2 "add a 57-byte id" --err "at most 56" -- \
	"$huitong" participant add --data "$d" --id "$long57" --out "$tmp/x1"
expect 2 "add a bad role" --err "--role 'admin'" -- \
	"$huitong" participant add --data "$d" --id bankZ --role admin --out "$tmp/x1"
expect 2 "add a bad alg" --err "--alg 'rsa'" -- \
	"$huitong" participant add --data "$d" --id bankZ --alg rsa --out "$tmp/x1"
expect 2 "add a bad url" --err "url" -- \
	"$huitong" participant add --data "$d" --id bankZ --url 'https://x/"y' --out "$tmp/x1"
check "a refused url registers nothing" "! '$huitong' participant list --data '$d' | grep -q bankZ"
expect 2 "add without --out" --err "required" -- \
	"$huitong" participant add --data "$d" --id bankZ
expect 2 "add with a stray argument" --err "unexpected argument" -- \
	"$huitong" participant add --data "$d" --id bankZ --out "$tmp/x1" extra
mkdir -p "$tmp/full" && echo mine >"$tmp/full/keep"
expect 2 "add into a non-empty directory" --err "not empty.*--force" -- \
	"$huitong" participant add --data "$d" --id bankZ --out "$tmp/full"
check "the non-empty directory is untouched" "[ ! -e '$tmp/full/client.key' ]"
expect 0 "add into a non-empty directory with --force" -- \
	"$huitong" participant add --data "$d" --id bankZ --out "$tmp/full" --force
expect 0 "add the longest id (56 bytes)" -- \
	"$huitong" participant add --data "$d" --id "$long56" --out "$tmp/long"
jexpect "$tmp/long/credentials.json" "its key id is 58 bytes" \
	'len(d["signing_key_id"])' 58
expect 2 "add without a registry" --err "no participant registry.*huitong init" -- \
	"$huitong" participant add --data "$tmp/nostore" --id bankZ --out "$tmp/x2"
expect 2 "participant without a command" -- "$huitong" participant
expect 2 "an unknown participant command" --err "unknown command 'frobnicate'" -- \
	"$huitong" participant frobnicate
for sub in "" add rotate revoke list; do
	expect 0 "participant $sub --help" -- "$huitong" participant $sub --help
	check "participant $sub --help prints usage" "grep -q usage: '$tmp/out'"
done
expect 0 "init --help names --server-name" -- "$huitong" init --help
check "init --help names --server-name" "grep -q -- --server-name '$tmp/out'"

# ---- rotate ---------------------------------------------------------------------------
t0=$(date +%s)
expect 0 "rotate bankA with grace" -- \
	"$huitong" participant rotate --data "$d" --id bankA --out "$tmp/creds-bankA-2" --grace 60
check "rotate prints the new key" "grep -q 'key bankA:2' '$tmp/out'"
check "rotate says when the old key stops" "grep -q '1 older key stops being accepted' '$tmp/out'"
jexpect "$tmp/creds-bankA-2/credentials.json" \
	"rotated credentials carry bankA:2" 'd["signing_key_id"]' bankA:2 \
	"rotation keeps the algorithm" 'd["signing_alg"]' sm2
check "rotation issues a new certificate" \
	"! cmp -s '$tmp/creds-bankA/client.crt' '$tmp/creds-bankA-2/client.crt'"
expect 0 "rotate bankB into its own directory with --force and --alg" -- \
	"$huitong" participant rotate --data "$d" --id bankB --out "$tmp/creds-bankB" --force --alg sm2
jexpect "$tmp/creds-bankB/credentials.json" \
	"bankB's credentials were replaced" 'd["signing_key_id"]' bankB:2 \
	"bankB's new key is sm2" 'd["signing_alg"]' sm2
expect 2 "rotate an unknown id" --err "no participant nobody" -- \
	"$huitong" participant rotate --data "$d" --id nobody --out "$tmp/x3"
expect 2 "rotate with a grace over 30 days" --err "at most 2592000" -- \
	"$huitong" participant rotate --data "$d" --id bankA --out "$tmp/x3" --grace 2592001
expect 2 "rotate with a bad grace" --err "--grace" -- \
	"$huitong" participant rotate --data "$d" --id bankA --out "$tmp/x3" --grace soon
expect 2 "rotate into a non-empty directory" --err "not empty" -- \
	"$huitong" participant rotate --data "$d" --id bankA --out "$tmp/creds-bankA"
check "refused rotations made no key" \
	"! '$huitong' participant list --data '$d' | grep -q 'bankA:3'"

"$huitong" participant list --data "$d" --json >"$tmp/list.json"
r=$("$py" -c 'import json,sys; print([k for p in json.load(open(sys.argv[1]))["participants"] for k in p["keys"] if k["key_id"] == "bankA:1"][0]["revoked_s"])' "$tmp/list.json")
check "list --json: bankA:1 stops 60 s after the rotation" \
	"[ $r -ge $((t0 + 60)) ] && [ $r -le $((t0 + 65)) ]"
ops_serial=$(openssl x509 -in "$tmp/creds-ops/client.crt" -noout -serial | cut -d= -f2 | tr A-F a-f)
jexpect "$tmp/list.json" \
	"list --json: bankA:1 is retiring" 'keys["bankA:1"]["state"]' retiring \
	"list --json: bankA:2 is active" 'keys["bankA:2"]["state"]' active \
	"list --json: bankB:1 is revoked at once (grace 0)" 'keys["bankB:1"]["state"]' revoked \
	"list --json: roles" '(ps["bankA"]["role"], ps["ops"]["role"], ps["pboc"]["role"])' \
	"('participant', 'operator', 'regulator')" \
	"list --json: algorithms" '(keys["bankA:1"]["alg"], keys["ops:1"]["alg"], keys["bankB:1"]["alg"])' \
	"('sm2', 'ecdsa-p256', 'ed25519')" \
	"list --json: serials are 32 hex digits" \
	'all(len(k["cert_serial"]) == 32 and int(k["cert_serial"], 16) >= 0 for k in keys.values())' True \
	"list --json: the serial is the certificate's" 'keys["ops:1"]["cert_serial"]' "$ops_serial" \
	"list --json: certificates valid about a year" \
	'all(360 * 86400 < k["cert_not_after_s"] - k["created_s"] < 370 * 86400 for k in keys.values())' True \
	"list --json: ids in order" 'list(ps)' \
	"['bankA', 'bankB', 'bankZ', '$long56', 'ops', 'pboc']" \
	"list --json: key counts" 'len(keys)' 8

# ---- revoke ------------------------------------------------------------------------------
expect 0 "revoke one key" -- "$huitong" participant revoke --data "$d" --id bankA --key bankA:1
check "revoke says so" "grep -q 'revoked bankA:1' '$tmp/out'"
expect 0 "revoke the key again" -- "$huitong" participant revoke --data "$d" --id bankA --key bankA:1
check "revoking twice changes nothing" "grep -q 'already revoked' '$tmp/out'"
expect 2 "revoke another participant's key" --err "has no key 'bankB:1'" -- \
	"$huitong" participant revoke --data "$d" --id bankA --key bankB:1
expect 2 "revoke an unknown id" --err "no participant nobody" -- \
	"$huitong" participant revoke --data "$d" --id nobody
expect 2 "revoke without --id" --err "required" -- \
	"$huitong" participant revoke --data "$d"
expect 0 "revoke a participant" -- "$huitong" participant revoke --data "$d" --id ops
check "revoke names all keys" "grep -q 'revoked ops and all its keys' '$tmp/out'"
expect 0 "revoke it again" -- "$huitong" participant revoke --data "$d" --id ops
check "revoking twice changes nothing" "grep -q 'already revoked' '$tmp/out'"
expect 2 "rotate a revoked participant" --err "revoked.*final" -- \
	"$huitong" participant rotate --data "$d" --id ops --out "$tmp/x4"
expect 2 "add a revoked id again" --err "revoked" -- \
	"$huitong" participant add --data "$d" --id ops --out "$tmp/x4"
"$huitong" participant list --data "$d" --json >"$tmp/list.json"
jexpect "$tmp/list.json" \
	"list --json: ops is revoked" 'ps["ops"]["state"]' revoked \
	"list --json: ops:1 is revoked" 'keys["ops:1"]["state"]' revoked \
	"list --json: bankA:1 is revoked now" 'keys["bankA:1"]["state"]' revoked \
	"list --json: bankA is active" 'ps["bankA"]["state"]' active \
	"list --json: revoked_s null when not revoked" 'ps["bankA"]["revoked_s"]' None
expect 0 "list (text)" -- "$huitong" participant list --data "$d"
check "list shows keys with serials" "grep -Eq '^  bankA:2  sm2  serial [0-9a-f]{32}' '$tmp/out'"
check "list shows revoked participants" "grep -q '^ops  operator  revoked' '$tmp/out'"
check "list counts" "grep -q '^6 participants, 8 keys' '$tmp/out'"
expect 2 "list without --data" --err "required" -- "$huitong" participant list
expect 2 "list without a registry" --err "no participant registry" -- \
	"$huitong" participant list --data "$tmp/nostore"

# ---- while the store is in use --------------------------------------------------------------
# Another process holds the store's writer lease (as `serve` does) and a
# reader keeps a read transaction open on the registry: the registry
# commands still work and the reader sees the change once it re-reads.
mkfifo "$tmp/fifo"
"$huitong" ledger apply --data "$d" <"$tmp/fifo" >/dev/null 2>&1 &
lease_pid=$!
exec 7>"$tmp/fifo"
"$py" - "$d/registry.db" "$tmp/reader.out" <<'PY' &
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN")
n = db.execute("SELECT COUNT(*) FROM participants").fetchone()[0]
time.sleep(1.5)               # the CLI writes meanwhile
same = db.execute("SELECT COUNT(*) FROM participants").fetchone()[0]
db.execute("COMMIT")
after = db.execute("SELECT COUNT(*) FROM participants").fetchone()[0]
open(sys.argv[2], "w").write(f"{n} {same} {after}\n")
PY
reader_pid=$!
sleep 0.5
expect 2 "the store is leased (the test's premise)" --err "another process|in use|writer" -- \
	"$huitong" ledger apply --data "$d" </dev/null
expect 0 "add while the store is leased and the registry read" -- \
	"$huitong" participant add --data "$d" --id busy --out "$tmp/creds-busy"
expect 0 "revoke while the store is leased" -- \
	"$huitong" participant revoke --data "$d" --id busy
wait "$reader_pid"
reader_pid=
check "the reader's snapshot held, then saw the add" "[ \"\$(cat '$tmp/reader.out')\" = '6 6 7' ]"
exec 7>&-
wait "$lease_pid" 2>/dev/null
lease_pid=

echo "participant.sh: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

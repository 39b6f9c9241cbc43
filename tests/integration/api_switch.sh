#!/usr/bin/env bash
# api_switch.sh — aliases and payment tokens through a real `huitong serve`
# (docs/api.md "Aliases and tokens"), every request through `huitong
# client raw` (mutual TLS, signed). Bank A registers an alias and bank B
# finds it by the exact value only; bank B cannot change it; bank A issues
# a token, detokenises it within its domain, bank B cannot; lifecycle; the
# regulator reads metadata but never a number; no alias or number in clear
# in the data directory or the access log. HUITONG: the binary.
set -u
bin=${HUITONG:-$(cd "$(dirname "$0")/../.." && pwd)/build/huitong}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ht-api-switch-XXXXXX")
D=$tmp/data
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok    $1"; }
bad() { fail=$((fail + 1)); echo "FAIL  $1: $2"; }
die() { echo "api_switch: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

"$bin" init --data "$D" >/dev/null 2>&1 || die "init"
for p in bankA:participant bankB:participant op:operator reg:regulator; do
	"$bin" participant add --data "$D" --id "${p%%:*}" --role "${p##*:}" \
		--out "$tmp/${p%%:*}" >/dev/null 2>&1 || die "participant add $p"
done
"$bin" token range-add --data "$D" --participant bankA --prefix 990001 >/dev/null || die "range"
"$bin" serve --data "$D" --listen 127.0.0.1:0 --ready-file "$tmp/addr" --quiet \
	>"$tmp/serve.log" 2>&1 &
pid=$!
for _ in $(seq 200); do [ -s "$tmp/addr" ] && break; sleep 0.05; done
[ -s "$tmp/addr" ] || die "serve did not start: $(cat "$tmp/serve.log")"
url=https://$(cat "$tmp/addr")

# call WHO METHOD PATH [BODY]: sets st (status) and body
call() {
	local out
	out=$("$bin" client --credentials "$tmp/$1" --url "$url" raw "$2" "$3" ${4+"$4"} 2>&1)
	st=$(printf '%s\n' "$out" | head -1)
	body=$(printf '%s\n' "$out" | tail -n +2)
}
expect() { # name, status, substring
	if [ "$st" = "$2" ] && [[ $body == *"$3"* ]]; then ok "$1"; else bad "$1" "$st $body"; fi
}

PHONE=+8613800138000
call bankA POST /v1/aliases "{\"kind\":\"mobile\",\"value\":\"$PHONE\",\"account\":\"acct-A1\"}"
expect "bank A registers a mobile alias" 200 '"result":"ok"'
call bankB POST /v1/aliases "{\"kind\":\"mobile\",\"value\":\"$PHONE\",\"account\":\"acct-B9\"}"
expect "bank B cannot take it (409 exists)" 409 '"code":"exists"'
call bankB POST /v1/aliases/lookup "{\"kind\":\"mobile\",\"value\":\"$PHONE\"}"
expect "bank B finds it by the exact value" 200 '"participant":"bankA","account":"acct-A1"'
call bankB POST /v1/aliases/lookup '{"kind":"mobile","value":"+8613800138009"}'
expect "another value finds nothing (404)" 404 '"code":"not_found"'
call bankB POST /v1/aliases/update "{\"kind\":\"mobile\",\"value\":\"$PHONE\",\"account\":\"x\"}"
expect "bank B cannot update bank A's alias (404, as missing)" 404 not_found
call bankA POST /v1/aliases/update "{\"kind\":\"mobile\",\"value\":\"$PHONE\",\"account\":\"acct-A2\"}"
expect "bank A updates it" 200 '"result":"ok"'
call reg POST /v1/aliases/lookup "{\"kind\":\"mobile\",\"value\":\"$PHONE\"}"
expect "the regulator looks it up" 200 '"account":"acct-A2"'
call bankA POST /v1/aliases '{"kind":"mobile","value":"13800138000","account":"a"}'
expect "a mobile number not in E.164 is 400 naming the format" 400 E.164
call bankA POST /v1/aliases '{"kind":"national_id","value":"110105194912310021","account":"a"}'
expect "a national id with a wrong check character is 400" 400 check
call reg POST /v1/aliases "{\"kind\":\"email\",\"value\":\"a@b.cn\",\"account\":\"x\"}"
expect "the regulator may not register (403)" 403 forbidden

NUM=6222021234567890123
call bankA POST /v1/tokens "{\"number\":\"$NUM\",\"channels\":[\"qr\"],\"merchant\":\"bankB:m77\",\"max_amount\":5000,\"max_uses\":2}"
expect "bank A issues a token" 200 '"token":"990001'
tok=$(printf '%s' "$body" | sed -n 's/.*"token":"\([0-9]*\)".*/\1/p')
call bankB POST /v1/tokens "{\"number\":\"$NUM\"}"
expect "bank B has no token range (422)" 422 no_token_range
call bankB POST "/v1/tokens/$tok/detokenize" '{"channel":"qr","merchant":"bankB:m77","amount":100}'
expect "bank B cannot detokenise bank A's token (404)" 404 not_found
call bankA POST "/v1/tokens/$tok/detokenize" '{"channel":"card","merchant":"bankB:m77","amount":100}'
expect "outside its channels (422 channel_not_allowed)" 422 channel_not_allowed
call bankA POST "/v1/tokens/$tok/detokenize" '{"channel":"qr","merchant":"bankB:m77","amount":5001}'
expect "above its maximum (422 amount_above_maximum)" 422 amount_above_maximum
call bankA POST "/v1/tokens/$tok/detokenize" '{"channel":"qr","merchant":"bankB:m77","amount":100}'
expect "bank A detokenises within the domain" 200 "\"number\":\"$NUM\""
call op POST "/v1/tokens/$tok/detokenize" '{"channel":"qr","merchant":"bankB:m77","amount":100}'
expect "the operator, as the router, may" 200 "\"number\":\"$NUM\""
call bankA POST "/v1/tokens/$tok/detokenize" '{"channel":"qr","merchant":"bankB:m77","amount":100}'
expect "two uses, then uses_exhausted" 422 uses_exhausted
call reg GET "/v1/tokens/$tok"
expect "the regulator reads its metadata" 200 '"uses":2'
[[ $body == *"$NUM"* ]] && bad "metadata holds no number" "$body" || ok "metadata holds no number"
call bankB GET "/v1/tokens/$tok"
expect "bank B does not see it (404)" 404 not_found
call bankB POST "/v1/tokens/$tok/suspend" '{}'
expect "bank B cannot suspend it (404)" 404 not_found
call bankA POST "/v1/tokens/$tok/suspend" ''
expect "bank A suspends it" 200 '"state":"suspended"'
call bankA POST "/v1/tokens/$tok/suspend" '{}'
expect "suspending twice is 409 invalid_state" 409 invalid_state
call bankA POST "/v1/tokens/$tok/delete" '{}'
expect "bank A deletes it" 200 '"state":"deleted"'
call bankA POST "/v1/tokens/$tok/detokenize" '{"channel":"qr","merchant":"bankB:m77"}'
expect "a deleted token is refused" 422 '"code":"deleted"'
call bankA POST "/v1/tokens/12345/detokenize" '{"channel":"qr"}'
expect "a malformed token is 400" 400 token
call bankA POST /v1/tokens '{"number":"6222","x":1}'
expect "unknown members are 400" 400 '"x: not a member'

kill -TERM "$pid"; wait "$pid" 2>/dev/null; rc=$?; pid=
[ "$rc" = 0 ] && ok "the server stops cleanly" || bad "server exit" "$rc $(tail -5 "$tmp/serve.log")"
if grep -rqa -e "$PHONE" -e "${PHONE#+}" -e "$NUM" "$D"; then
	bad "no alias or number in clear in the data directory or access log" "$(grep -rla -e "${PHONE#+}" -e "$NUM" "$D")"
else
	ok "no alias or number in clear in the data directory or access log"
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]

#!/usr/bin/env bash
# tokens.sh — `huitong token` end to end (docs/tokens.md): ranges, issue,
# detokenise by the issuer only and within the domain, exit codes,
# lifecycle, key rotation, the record, and no clear number in the vault's
# files. HUITONG: the binary. Exit 1 on any failure.
set -u
bin=${HUITONG:-$(cd "$(dirname "$0")/../.." && pwd)/build/huitong}
D=$(mktemp -d "${TMPDIR:-/tmp}/ht-tokens-XXXXXX")
trap 'rm -rf "$D"' EXIT
pass=0 fail=0
check() { # name, expected rc, command...
	local name=$1 want=$2; shift 2
	out=$("$@" 2>&1); rc=$?
	if [ "$rc" = "$want" ]; then pass=$((pass + 1)); echo "ok    $name"
	else fail=$((fail + 1)); echo "FAIL  $name (exit $rc, want $want): $out"; fi
}
T() { "$bin" token "$@" --data "$D"; }
NUM=6222021234567890123
check "a range" 0 T range-add --participant bankA --prefix 990001
check "an overlapping range is refused" 2 T range-add --participant bankB --prefix 9900011
check "issue without a range is refused" 2 T issue --participant bankB --number $NUM
check "a number inside a token range is refused" 2 T issue --participant bankA --number 9900015555555555
check "issue" 0 T issue --participant bankA --number $NUM --channels qr --merchant bankB:m77 --max-uses 2
tok=$(echo "$out" | sed -n 's/.*"token":"\([0-9]*\)".*/\1/p')
if [ ${#tok} = ${#NUM} ] && [ "${tok:0:6}" = 990001 ]; then pass=$((pass + 1)); echo "ok    the token is as long as the number, in the range"
else fail=$((fail + 1)); echo "FAIL  token '$tok'"; fi
check "the issuer detokenises in the domain" 0 T detokenize --token "$tok" --requester bankA --channel qr --merchant bankB:m77
case $out in *"\"number\":\"$NUM\""*) pass=$((pass + 1)); echo "ok    ... and gets the number";;
*) fail=$((fail + 1)); echo "FAIL  number: $out";; esac
check "another participant may not (exit 1)" 1 T detokenize --token "$tok" --requester bankB --channel qr --merchant bankB:m77
check "outside the channel (exit 1)" 1 T detokenize --token "$tok" --requester bankA --channel card --merchant bankB:m77
check "the router may" 0 T detokenize --token "$tok" --router --channel qr --merchant bankB:m77
check "uses exhausted (exit 1)" 1 T detokenize --token "$tok" --requester bankA --channel qr --merchant bankB:m77
case $out in *uses_exhausted*) pass=$((pass + 1)); echo "ok    ... says uses_exhausted";;
*) fail=$((fail + 1)); echo "FAIL  $out";; esac
check "suspend by another participant is refused (exit 1)" 1 T suspend --token "$tok" --requester bankB
check "suspend" 0 T suspend --token "$tok" --requester bankA
check "rotate the key" 0 T rotate-key
check "show (no number)" 0 T show --token "$tok"
case $out in *"$NUM"*) fail=$((fail + 1)); echo "FAIL  show prints the number";;
*'"key_version":2'*'' | *'"key_version":2}'*) pass=$((pass + 1)); echo "ok    ... re-sealed under key 2";;
*) fail=$((fail + 1)); echo "FAIL  show: $out";; esac
check "the record" 0 T log --token "$tok"
n=$(echo "$out" | grep -c '"result"')
if [ "$n" = 5 ]; then pass=$((pass + 1)); echo "ok    every attempt recorded (5)"
else fail=$((fail + 1)); echo "FAIL  $n records: $out"; fi
if grep -rqa "$NUM" "$D"; then fail=$((fail + 1)); echo "FAIL  the number is in clear in $D"
else pass=$((pass + 1)); echo "ok    no clear number in the vault's files"; fi
check "delete" 0 T delete --token "$tok" --requester bankA
check "a deleted token stays deleted (exit 1)" 1 T resume --token "$tok" --requester bankA
check "usage errors exit 2" 2 T issue --participant bankA
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]

#!/usr/bin/env bash
# openapi.sh — docs/openapi.yaml and `huitong serve` agree, both ways.
#
# 1. The route table (`huitong serve --routes`) and the spec's operations
#    are the same set, with the same signature requirement and roles.
# 2. Against a real server (a fresh store with an operator, a participant
#    and a regulator): every spec operation answers its example request
#    with a documented status and a body that validates against the
#    spec's schema; signed routes refuse an unsigned request and the others
#    do not; every role is admitted exactly where x-huitong-roles says; and
#    the documented errors (400, 401, 403, 404, 405, 413) come with their
#    codes and the Error schema.
#
# The checks are in openapi_check.py (python3 with the yaml module,
# python3-yaml in scripts/install-deps). Env: HUITONG (the binary),
# HT_SOURCE (repo root; default: from this file), HT_BUILD (unused: kept
# for symmetry with the other tests). HT_KEEP=1 keeps the temporary
# directory. Exit 0 when spec and server agree, 1 naming each
# disagreement.
set -u

: "${HUITONG:?set HUITONG to the huitong binary}"
src=${HT_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
spec=$src/docs/openapi.yaml
check=$src/tests/integration/openapi_check.py

if ! python3 -c 'import yaml' 2>/dev/null; then
	echo "FAIL: python3 has no yaml module (scripts/install-deps installs python3-yaml)" >&2
	exit 1
fi
for f in "$spec" "$check"; do
	[ -f "$f" ] || { echo "FAIL: $f is missing" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "FAIL: curl is not installed" >&2; exit 1; }

tmp=$(mktemp -d)
pid=""
stop_server() {
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "FAIL: the server did not stop within 5 s of SIGTERM; killing it" >&2
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	server_rc=$?
	pid=""
}
cleanup() {
	stop_server
	if [ "${HT_KEEP:-0}" = 1 ]; then
		echo "keeping $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

rc=0
echo "== route table: huitong serve --routes against $spec"
python3 "$check" routes "$spec" "$HUITONG" || rc=1

D=$tmp/data
run() {
	if ! "$@" >"$tmp/cmd.out" 2>&1; then
		echo "FAIL: $* exited $?: $(head -c 400 "$tmp/cmd.out")" >&2
		exit 1
	fi
}
run "$HUITONG" init --data "$D"
run "$HUITONG" participant add --data "$D" --id op1 --role operator --out "$D/op1"
run "$HUITONG" participant add --data "$D" --id bank1 --role participant --out "$D/bank1"
run "$HUITONG" participant add --data "$D" --id reg1 --role regulator --out "$D/reg1"
run "$HUITONG" participant add --data "$D" --id gone1 --role participant --out "$D/gone1"
run "$HUITONG" participant revoke --data "$D" --id gone1
# The switch's examples need a token range and a token of op1's (tokens
# are random: the check takes its value from HT_PARAM_EXAMPLES) and an
# alias of op1's for the removal example.
run "$HUITONG" token range-add --data "$D" --participant op1 --prefix 990001
run "$HUITONG" token issue --data "$D" --participant op1 --number 6222021234567890123 \
	--channels qr --merchant bankB:m77 --max-uses 10
token=$(sed -n 's/.*"token":"\([0-9]*\)".*/\1/p' "$tmp/cmd.out")
export HT_PARAM_EXAMPLES="{\"token\":\"$token\"}"
run "$HUITONG" alias register --data "$D" --kind mobile --value +8613900000001 \
	--participant op1 --account 9900011234567897
mkdir -p "$tmp/static"
printf '<!doctype html><title>huitong</title>\n' >"$tmp/static/index.html"
# Risk control on (rules only, so no model is needed), so its routes have
# something to answer: no rule fires on the examples unless one says so.
cat >"$tmp/rules.txt" <<'RULES'
version 1
rule example_review: amount > 7.76 and amount < 7.78 => review score 50
    reason "example_review"
RULES

"$HUITONG" serve --data "$D" --listen 127.0.0.1:0 --ready-file "$D/addr" \
	--static "$tmp/static" --risk --risk-no-model --risk-rules "$tmp/rules.txt" \
	--risk-state-mb 16 --quiet >"$tmp/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	[ -s "$D/addr" ] && break
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid"
		echo "FAIL: huitong serve exited $? before listening: $(head -c 400 "$tmp/serve.log")" >&2
		pid=""
		exit 1
	fi
	sleep 0.1
done
if [ ! -s "$D/addr" ]; then
	echo "FAIL: huitong serve did not write $D/addr within 10 s" >&2
	exit 1
fi
url="https://$(head -n 1 "$D/addr")"

echo "== live: $url"
python3 "$check" live "$spec" "$HUITONG" "$D" "$url" || rc=1

server_rc=0
stop_server
if [ "$server_rc" -ne 0 ]; then
	echo "FAIL: huitong serve exited $server_rc after SIGTERM (docs/api.md: 0): $(tail -c 400 "$tmp/serve.log")" >&2
	rc=1
fi
if [ "$rc" -eq 0 ]; then
	echo "PASS: docs/openapi.yaml and the server agree"
else
	echo "FAIL: docs/openapi.yaml and the server disagree (lines above)"
fi
exit "$rc"

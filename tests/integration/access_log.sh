#!/usr/bin/env bash
# access_log.sh — `huitong audit access-log` through the real binary.
#
# Entries are written by the unit test binary (`test_accesslog --write DIR
# N`, the library's own writer: no hidden command in huitong). The CLI must
# say "access log intact: N entries" and exit 0 on an intact log, print the
# last entries (text, or one JSON object per line with --json), answer 1
# with the problem for a log edited with python3's sqlite3 module (a changed
# byte, a deleted entry, a swapped pair, a cut tail), and exit 2 on usage
# errors. A writer killed with SIGKILL mid-stream leaves a log that
# verifies and that the next writer extends. HT_KEEP=1 keeps the temporary
# directory.
set -u

: "${HUITONG:?set HUITONG to the huitong binary}"
writer="${HT_BUILD:-$(dirname "$HUITONG")}/test_accesslog"
if [ ! -x "$writer" ]; then
	echo "FAIL: $writer not built (set HT_BUILD to the build directory)" >&2
	exit 1
fi
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
		bad "$3: no line '$2' in $(basename "$1"): $(head -c 300 "$1")"
	fi
}

alog() { "$HUITONG" audit access-log "$@"; }

# python3 edits of access.db, as an attacker with the file would make them.
cat >"$tmp/tamper.py" <<'EOF'
import sqlite3, sys
db, op, args = sys.argv[1], sys.argv[2], [int(a) for a in sys.argv[3:]]
c = sqlite3.connect(db)
def row(seq):
    return c.execute("SELECT data, hash FROM entry WHERE seq=?", (seq,)).fetchone()
if op == "edit":  # flip the low bit of the last byte of the entry's data
    d = bytearray(row(args[0])[0])
    d[-1] ^= 1
    c.execute("UPDATE entry SET data=? WHERE seq=?", (bytes(d), args[0]))
elif op == "delete":
    c.execute("DELETE FROM entry WHERE seq=?", (args[0],))
elif op == "swap":
    a, b = row(args[0]), row(args[1])
    c.execute("UPDATE entry SET data=?, hash=? WHERE seq=?", (b[0], b[1], args[0]))
    c.execute("UPDATE entry SET data=?, hash=? WHERE seq=?", (a[0], a[1], args[1]))
elif op == "cut":  # keep entries 1..N
    c.execute("DELETE FROM entry WHERE seq>?", (args[0],))
c.commit()
EOF

# Checks of the --json lines: contiguous seqs, the exact keys, and entry 3
# (written with every field at its limit) decoded back to its limits.
cat >"$tmp/check_json.py" <<'EOF'
import json, sys
first, count = int(sys.argv[1]), int(sys.argv[2])
keys = {"seq", "time_ns", "time", "participant", "role", "key_id",
        "cert_serial", "remote", "method", "path", "path_truncated",
        "status", "outcome", "body_bytes", "latency_us"}
lines = sys.stdin.read().splitlines()
assert len(lines) == count, "%d lines, want %d" % (len(lines), count)
for i, line in enumerate(lines):
    assert line.isascii(), "non-ASCII output"
    o = json.loads(line)
    assert set(o) == keys, sorted(o)
    assert o["seq"] == first + i, (o["seq"], first + i)
    if o["seq"] == 3:
        assert o["path_truncated"] is True
        assert len(o["path"]) == 256 and len(o["participant"]) == 64
        assert len(o["key_id"]) == 64 and len(o["cert_serial"]) == 40
        assert len(o["remote"]) == 53 and len(o["method"]) == 16
        assert len(o["outcome"]) == 32 and o["role"] == "regulator"
        assert o["status"] == 65535 and o["body_bytes"] == 2**64 - 1
        assert o["latency_us"] == 2**32 - 1 and o["time_ns"] == 2**64 - 1
        assert o["time"] == "2554-07-21T23:34:33.709551615Z", o["time"]
    else:
        assert o["path"] == "/v1/transfers/%d" % o["seq"], o["path"]
        assert o["time"].startswith("2026-01-01T00:00:00.0000000")
print("ok")
EOF

# ---- an intact log -------------------------------------------------------

D="$tmp/d"
mkdir "$D"
expect_rc 0 "write 20 entries" "$writer" --write "$D" 20
expect_rc 0 "verify intact" alog --data "$D"
expect_line "$tmp/out" "access log intact: 20 entries" "verify intact"

expect_rc 0 "--tail 3" alog --data "$D" --tail 3
expect_line "$tmp/out" "access log intact: 20 entries" "--tail 3"
if [ "$(wc -l <"$tmp/out")" -eq 4 ] &&
	[ "$(sed -n '2p;4p' "$tmp/out" | cut -d' ' -f1 | tr '\n' ,)" = "18,20," ]; then
	ok
else
	bad "--tail 3 prints entries 18..20: $(cat "$tmp/out")"
fi
if grep -q '^20 2026-01-01T00:00:00.000000020Z remote=192.0.2.20:1044 participant=- role=- key=- cert=- POST /v1/transfers/20 status=220 outcome=bad_signature body=60 latency_us=20$' "$tmp/out"; then
	ok
else
	bad "--tail 3: entry 20 as text: $(tail -1 "$tmp/out")"
fi

expect_rc 0 "--tail 3 --json" alog --data "$D" --tail 3 --json
expect_line "$tmp/err" "access log intact: 20 entries" "--json: summary on stderr"
cp "$tmp/out" "$tmp/json"
expect_rc 0 "--tail 3 --json parses" python3 "$tmp/check_json.py" 18 3 <"$tmp/json"

expect_rc 0 "--tail 100 --json" alog --data "$D" --tail=100 --json
cp "$tmp/out" "$tmp/json"
expect_rc 0 "--tail 100: all 20, entry 3 at its limits" \
	python3 "$tmp/check_json.py" 1 20 <"$tmp/json"

expect_rc 0 "--tail 100 as text" alog --data "$D" --tail 100
if [ "$(wc -l <"$tmp/out")" -eq 21 ] && grep -q '^3 2554-07-21T23:34:33.709551615Z .* (truncated) status=65535 ' "$tmp/out"; then
	ok
else
	bad "--tail 100: 21 lines, entry 3 one line flagged truncated: $(sed -n 4p "$tmp/out")"
fi

expect_rc 0 "--tail 0" alog --data "$D" --tail 0
if [ "$(wc -l <"$tmp/out")" -eq 1 ]; then ok; else bad "--tail 0 prints entries"; fi

# The chain continues across runs of the writer.
expect_rc 0 "write 5 more" "$writer" --write "$D" 5
expect_rc 0 "verify 25" alog --data "$D"
expect_line "$tmp/out" "access log intact: 25 entries" "verify after reopen"

E="$tmp/empty"
mkdir "$E"
expect_rc 0 "write 0 entries" "$writer" --write "$E" 0
expect_rc 0 "verify empty" alog --data "$E" --tail 5
expect_line "$tmp/out" "access log intact: 0 entries" "verify empty"

# SIGKILL in the middle of writing loses only uncommitted entries: what
# is there verifies, and the next writer continues the chain.
K="$tmp/killed"
mkdir "$K"
"$writer" --write "$K" 5000000 >/dev/null 2>&1 &
wpid=$!
sleep 0.7
kill -9 "$wpid" 2>/dev/null
wait "$wpid" 2>/dev/null
expect_rc 0 "verify after SIGKILL" alog --data "$K"
killed_n=$(sed -n 's/^access log intact: \([0-9]*\) entries$/\1/p' "$tmp/out")
expect_rc 0 "write after SIGKILL" "$writer" --write "$K" 10
expect_rc 0 "verify after SIGKILL and 10 more" alog --data "$K"
expect_line "$tmp/out" "access log intact: $((${killed_n:-0} + 10)) entries" \
	"the chain continues after SIGKILL ($killed_n entries survived)"

# ---- tampering: exit 1 and the problem -----------------------------------

# tampered NAME "want line" OP ARGS...: a copy of $D edited by OP
tampered() {
	local name=$1 want=$2
	shift 2
	rm -rf "${tmp:?}/$name"
	cp -r "$D" "$tmp/$name"
	if ! python3 "$tmp/tamper.py" "$tmp/$name/access.db" "$@"; then
		bad "$name: tamper.py failed"
		return
	fi
	expect_rc 1 "$name" alog --data "$tmp/$name"
	expect_line "$tmp/out" "access log not intact: $want" "$name"
	expect_rc 1 "$name --tail" alog --data "$tmp/$name" --tail 5 --json
	expect_line "$tmp/out" "access log not intact: $want" "$name --tail"
	if [ "$(wc -l <"$tmp/out")" -eq 1 ]; then ok; else
		bad "$name: entries printed from a broken log"
	fi
}

tampered edited "entry 7: hash does not chain" edit 7
tampered deleted "entry 9: missing (the log goes on at entry 10)" delete 9
tampered swapped "entry 4: hash does not chain" swap 4 5
tampered cut "log ends at entry 22 but the last recorded head is entry 25" cut 22
tampered cut_all "log ends at entry 0 but the last recorded head is entry 25" cut 0

# A file that is not a database at all.
mkdir "$tmp/garbage"
head -c 4096 /dev/urandom >"$tmp/garbage/access.db"
expect_rc 1 "garbage access.db" alog --data "$tmp/garbage"
expect_line "$tmp/out" "access log not intact: meta: file is not a database" \
	"garbage access.db"

# A cut log is not extended by the writer; it still fails verification.
expect_rc 1 "the writer refuses a cut log" "$writer" --write "$tmp/cut" 1
expect_rc 1 "cut log still cut" alog --data "$tmp/cut"

# ---- usage errors: exit 2 ----------------------------------------------------

expect_rc 2 "no --data" alog
expect_rc 2 "no --data, --tail" alog --tail 3
expect_rc 2 "--tail not a number" alog --data "$D" --tail x
expect_rc 2 "--tail negative" alog --data "$D" --tail -1
expect_rc 2 "--tail without value" alog --data "$D" --tail
expect_rc 2 "--json without --tail" alog --data "$D" --json
expect_rc 2 "--json twice" alog --data "$D" --tail 1 --json --json
expect_rc 2 "--data twice" alog --data "$D" --data "$D"
expect_rc 2 "unknown option" alog --data "$D" --frobnicate 1
expect_rc 2 "--hash is not an access-log option" alog --data "$D" --hash sm3
expect_rc 2 "a file argument" alog --data "$D" extra
expect_rc 2 "--json on another action" "$HUITONG" audit root --json
expect_rc 2 "no such directory" alog --data "$tmp/nope"
if grep -q "no access log" "$tmp/err"; then ok; else
	bad "no such directory: message: $(cat "$tmp/err")"
fi
expect_rc 2 "a directory without a log" alog --data "$tmp"
expect_rc 0 "--help" "$HUITONG" audit access-log --help
if grep -q "access-log --data D" "$tmp/out"; then ok; else
	bad "--help does not describe access-log"
fi

echo "access_log: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

#!/usr/bin/env bash
# audit.sh — `huitong audit` through the real binary.
#
# With --hash sha256 it must reproduce every root, inclusion proof and
# consistency proof of $HT_SHARED/conformance/merkle_rfc6962_sha256.json,
# verify them, and answer 1 for altered ones (the corruption probes of
# transparency-dev/merkle's own tests). Then SM3 round trips: proofs made
# by the tool verify with the tool, tampered ones do not, and malformed
# input exits 2. The conformance part is skipped, saying so, when the
# shared folder is absent.
set -u

: "${HUITONG:?set HUITONG to the huitong binary}"
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

# expect_rc WANT DESCRIPTION CMD... (stdin passes through)
expect_rc() {
	local want=$1 desc=$2 rc
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -eq "$want" ]; then ok; else
		bad "$desc: exit $rc, want $want ($(head -c 300 "$tmp/err"))"
	fi
}

# Python (run once) turns the vectors into leaf, claim, probe and expected
# output files; everything else is plain shell, for speed.
cat >"$tmp/helper.py" <<'EOF'
import json, os, sys

def flip(h, i=0):
    b = bytearray.fromhex(h)
    b[i] ^= 1
    return b.hex()

def incl_probes(v):
    """transparency-dev corruptInclusionProof: every probe must fail."""
    p, out = v["proof"], []
    def w(**kw):
        d = dict(v); d.update(kw); out.append(d)
    if v["leaf_index"] > 0:
        w(leaf_index=v["leaf_index"] - 1)
    w(leaf_index=v["leaf_index"] + 1)
    w(leaf_index=v["leaf_index"] ^ 2)
    w(tree_size=v["tree_size"] * 2)
    w(tree_size=v["tree_size"] // 2)
    w(leaf_hash=flip(v["leaf_hash"]))
    w(root=flip(v["root"], 31))
    w(proof=p + [v["root"]])
    w(proof=[v["root"]] + p)
    if p:
        w(proof=p[:-1])
    for i in range(len(p)):
        q = list(p); q[i] = flip(q[i], (i * 13) % 32); w(proof=q)
    return out

def cons_probes(v):
    """corruptConsistencyProof; probes equal to the claim are left out."""
    p, out = v["proof"], []
    def w(**kw):
        d = dict(v); d.update(kw); out.append(d)
    if v["old_size"] > 0:
        w(old_size=v["old_size"] - 1)
    w(old_size=v["old_size"] + 1)
    w(old_size=v["old_size"] ^ 2)
    w(new_size=v["new_size"] * 2)
    w(new_size=v["new_size"] // 2)
    w(old_root=flip(v["old_root"]))
    w(new_root=flip(v["new_root"]))
    if v["old_root"] != v["new_root"]:
        w(old_root=v["new_root"], new_root=v["old_root"])
    if p:
        w(proof=[])
        w(proof=p[:-1])
    for junk in ("00" * 32, v["old_root"], v["new_root"]):
        w(proof=p + [junk])
        w(proof=[junk] + p)
    for i in range(len(p)):
        q = list(p); q[i] = flip(q[i], 7); w(proof=q)
    return out

def gen(vectors, d):
    V = json.load(open(vectors))
    with open(os.path.join(d, "leaves"), "w") as f:
        for x in V["leaves_hex"]:
            f.write(x + "\n")
    def put(name, text):
        open(os.path.join(d, name), "w").write(text)
    for n, r in V["roots_by_size"].items():
        put("root_%s.want" % n, compact({"tree_size": int(n), "root": r}))
    # The expected outputs are written in the tool's documented key order,
    # compact, so that `cmp` compares them; .args hold the sizes.
    for i, v in enumerate(V["inclusion"]):
        v = {k: v[k] for k in ("tree_size", "leaf_index", "leaf_hash", "root", "proof")}
        put("incl_%d.json" % i, compact(v))
        put("incl_%d.args" % i, "%d %d\n" % (v["leaf_index"], v["tree_size"]))
        put("incl_%d.flags" % i, flag_lines(v))
        put("incl_%d.empty" % i, "1\n" if not v["proof"] else "0\n")
        for k, p in enumerate(incl_probes(v)):
            put("incl_%d_bad_%d.json" % (i, k), compact(p))
    for i, v in enumerate(V["consistency"]):
        v = {"old_size": v["size1"], "new_size": v["size2"], "old_root": v["root1"],
             "new_root": v["root2"], "proof": v["proof"]}
        put("cons_%d.json" % i, compact(v))
        put("cons_%d.args" % i, "%d %d\n" % (v["old_size"], v["new_size"]))
        put("cons_%d.flags" % i, flag_lines(v))
        for k, p in enumerate(cons_probes(v)):
            put("cons_%d_bad_%d.json" % (i, k), compact(p))

def compact(obj):
    return json.dumps(obj, separators=(",", ":")) + "\n"

def flag_lines(v):
    if "leaf_index" in v:
        pairs = [("index", v["leaf_index"]), ("size", v["tree_size"]),
                 ("leaf-hash", v["leaf_hash"]), ("root", v["root"])]
    else:
        pairs = [("old", v["old_size"]), ("new", v["new_size"]),
                 ("old-root", v["old_root"]), ("new-root", v["new_root"])]
    pairs.append(("proof", ",".join(v["proof"])))
    return "".join("--%s\n%s\n" % (k, x) for k, x in pairs)

gen(sys.argv[1], sys.argv[2])
EOF
# json_str FILE KEY / json_num FILE KEY / json_proof FILE: fields of the
# tool's own compact output.
json_str() { sed -n 's/.*"'"$2"'":"\([0-9a-f]*\)".*/\1/p' "$1"; }
json_num() { sed -n 's/.*"'"$2"'":\([0-9]*\).*/\1/p' "$1"; }
json_proof() { sed -n 's/.*"proof":\[\(.*\)\].*/\1/p' "$1" | tr -d '"'; }

# flags_of FILE: the claim in a tool output as verify flags, one per line
flags_of() {
	if grep -q '"leaf_index"' "$1"; then
		printf '%s\n' --index "$(json_num "$1" leaf_index)" \
			--size "$(json_num "$1" tree_size)" \
			--leaf-hash "$(json_str "$1" leaf_hash)" \
			--root "$(json_str "$1" root)"
	else
		printf '%s\n' --old "$(json_num "$1" old_size)" \
			--new "$(json_num "$1" new_size)" \
			--old-root "$(json_str "$1" old_root)" \
			--new-root "$(json_str "$1" new_root)"
	fi
	printf '%s\n' --proof "$(json_proof "$1")"
}

# verify_flags ACTION HASH FLAGFILE: verify a claim given as flags
verify_flags() {
	local action=$1 hash=$2 args=()
	mapfile -t args <"$3"
	"$HUITONG" audit "$action" --hash "$hash" "${args[@]}"
}

# tamper IN OUT: change one hex digit: the first of the proof, or of a
# root when the proof is empty (the old root: with old size 0 or equal
# sizes any change of the new root alone may still be consistent)
tamper() {
	if grep -q '"proof":\["' "$1"; then
		sed -E 's/("proof":\[")0/\11/; t; s/("proof":\[")[0-9a-f]/\10/' "$1"
	elif grep -q '"old_root"' "$1"; then
		sed -E 's/("old_root":")0/\11/; t; s/("old_root":")[0-9a-f]/\10/' "$1"
	else
		sed -E 's/("root":")0/\11/; t; s/("root":")[0-9a-f]/\10/' "$1"
	fi >"$2"
	cmp -s "$1" "$2" && bad "tamper did not change $1"
}

conformance() {
	local vec="$HT_SHARED/conformance/merkle_rfc6962_sha256.json"
	local d="$tmp/v" n f i k want
	mkdir -p "$d"
	python3 "$tmp/helper.py" "$vec" "$d" || { bad "cannot read $vec"; return; }

	for want in "$d"/root_*.want; do
		n=${want##*/root_}
		n=${n%.want}
		head -n "$n" "$d/leaves" >"$d/prefix"
		if "$HUITONG" audit root --hash sha256 "$d/prefix" >"$d/out" &&
		   cmp -s "$d/out" "$want"; then ok; else
			bad "root of $n leaves: $(cat "$d/out"), want $(cat "$want")"
		fi
	done

	for f in "$d"/incl_?.json; do
		read -r i n <"${f%.json}.args"
		if "$HUITONG" audit inclusion --hash sha256 --index "$i" \
			--size "$n" <"$d/leaves" >"$d/out" &&
		   cmp -s "$d/out" "$f"; then ok; else
			bad "inclusion $i/$n: $(cat "$d/out"), want $(cat "$f")"
		fi
		expect_rc 0 "verify-inclusion $(basename "$f")" \
			"$HUITONG" audit verify-inclusion --hash sha256 "$f"
		expect_rc 0 "verify-inclusion flags $(basename "$f")" \
			verify_flags verify-inclusion sha256 "${f%.json}.flags"
		# a proof of one hash function fails under the other, unless
		# it is empty (the leaf is the root: nothing is hashed)
		if [ "$(cat "${f%.json}.empty")" = 0 ]; then
			expect_rc 1 "verify-inclusion sm3 on a sha256 proof" \
				"$HUITONG" audit verify-inclusion "$f"
		fi
		for k in "${f%.json}"_bad_*.json; do
			expect_rc 1 "altered $(basename "$k")" \
				"$HUITONG" audit verify-inclusion --hash sha256 "$k"
		done
	done

	for f in "$d"/cons_?.json; do
		read -r i n <"${f%.json}.args"
		if "$HUITONG" audit consistency --hash sha256 --old "$i" \
			--new "$n" "$d/leaves" >"$d/out" &&
		   cmp -s "$d/out" "$f"; then ok; else
			bad "consistency $i/$n: $(cat "$d/out"), want $(cat "$f")"
		fi
		expect_rc 0 "verify-consistency $(basename "$f")" \
			"$HUITONG" audit verify-consistency --hash sha256 - <"$f"
		expect_rc 0 "verify-consistency flags $(basename "$f")" \
			verify_flags verify-consistency sha256 "${f%.json}.flags"
		for k in "${f%.json}"_bad_*.json; do
			expect_rc 1 "altered $(basename "$k")" \
				"$HUITONG" audit verify-consistency --hash sha256 "$k"
		done
	done
}

sm3_round_trips() {
	local d="$tmp/s" n i out all_root
	mkdir -p "$d"
	for i in $(seq 0 36); do # 37 distinct leaves, 1..19 random bytes
		printf '%02x' "$i"
		od -An -tx1 -N$((i % 19)) /dev/urandom | tr -d ' \n'
		echo
	done >"$d/leaves"
	"$HUITONG" audit root "$d/leaves" >"$d/root" || bad "sm3 root: exit $?"
	all_root=$(json_str "$d/root" root)
	"$HUITONG" audit root --hash sha256 "$d/leaves" >"$d/root256"
	if [ "${#all_root}" = 64 ] &&
	   [ "$(json_str "$d/root256" root)" != "$all_root" ]; then ok; else
		bad "sm3 root '$all_root' missing or equal to the sha256 root"
	fi
	for i in 0 1 12 35 36; do
		for n in 37 36 13; do
			[ "$i" -lt "$n" ] || continue
			out="$d/incl_${i}_$n.json"
			"$HUITONG" audit inclusion --index "$i" --size "$n" \
				"$d/leaves" >"$out" || bad "sm3 inclusion $i/$n"
			expect_rc 0 "sm3 verify-inclusion $i/$n" \
				"$HUITONG" audit verify-inclusion "$out"
			flags_of "$out" >"$d/flags"
			expect_rc 0 "sm3 verify-inclusion flags $i/$n" \
				verify_flags verify-inclusion sm3 "$d/flags"
			expect_rc 1 "sm3 proof checked as sha256 $i/$n" \
				"$HUITONG" audit verify-inclusion --hash sha256 "$out"
			tamper "$out" "$d/t.json"
			expect_rc 1 "sm3 tampered inclusion $i/$n" \
				"$HUITONG" audit verify-inclusion "$d/t.json"
		done
	done
	# the root by the streaming frontier = the root by stored nodes
	"$HUITONG" audit inclusion --index 3 "$d/leaves" >"$d/i.json"
	if [ "$(json_str "$d/i.json" root)" = "$all_root" ]; then ok; else
		bad "inclusion root differs from root"
	fi
	for i in 0 1 8 20 37; do
		out="$d/cons_$i.json"
		"$HUITONG" audit consistency --old "$i" <"$d/leaves" >"$out" ||
			bad "sm3 consistency $i"
		expect_rc 0 "sm3 verify-consistency $i/37" \
			"$HUITONG" audit verify-consistency "$out"
		flags_of "$out" >"$d/flags"
		expect_rc 0 "sm3 verify-consistency flags $i/37" \
			verify_flags verify-consistency sm3 "$d/flags"
		tamper "$out" "$d/t.json"
		expect_rc 1 "sm3 tampered consistency $i/37" \
			"$HUITONG" audit verify-consistency "$d/t.json"
	done
}

malformed() {
	local d="$tmp/m" h64 i
	mkdir -p "$d"
	h64=$(printf '%064d' 0)
	expect_rc 0 "audit --help" "$HUITONG" audit --help
	expect_rc 0 "audit root --help" "$HUITONG" audit root --help
	expect_rc 2 "no action" "$HUITONG" audit
	expect_rc 2 "unknown action" "$HUITONG" audit grow
	expect_rc 2 "unknown option" "$HUITONG" audit root --bogus
	expect_rc 2 "unknown hash" "$HUITONG" audit root --hash md5 /dev/null
	expect_rc 2 "option of another action" "$HUITONG" audit root --index 1
	expect_rc 2 "missing file" "$HUITONG" audit root "$d/none"
	printf '00\nxyz0\n' >"$d/badhex"
	expect_rc 2 "bad hex" "$HUITONG" audit root "$d/badhex"
	grep -q "line 2" "$tmp/err" && ok || bad "bad hex does not name line 2"
	printf '00\n0\n' >"$d/odd"
	expect_rc 2 "odd hex" "$HUITONG" audit root "$d/odd"
	head -c 2097154 /dev/zero | tr '\0' 'a' >"$d/long"
	expect_rc 2 "overlong line" "$HUITONG" audit root "$d/long"
	printf '00\n\n11' >"$d/three"
	"$HUITONG" audit root "$d/three" >"$d/out"
	[ "$(json_num "$d/out" tree_size)" = 3 ] && ok ||
		bad "empty line and last unterminated line are leaves"
	expect_rc 2 "index beyond size" "$HUITONG" audit inclusion --index 3 "$d/three"
	expect_rc 2 "size beyond leaves" "$HUITONG" audit inclusion --index 0 --size 4 "$d/three"
	expect_rc 2 "old beyond new" "$HUITONG" audit consistency --old 3 --new 2 "$d/three"
	expect_rc 2 "inclusion without index" "$HUITONG" audit inclusion "$d/three"
	echo '{"leaf_index":0,"tree_size":1,"leaf_hash":"zz","root":"'"$h64"'","proof":[]}' >"$d/j1"
	expect_rc 2 "bad hash in JSON" "$HUITONG" audit verify-inclusion "$d/j1"
	echo '{"leaf_index":0,"tree_size":1,"root":"'"$h64"'","proof":[]}' >"$d/j2"
	expect_rc 2 "missing field" "$HUITONG" audit verify-inclusion "$d/j2"
	echo '[1,2]' >"$d/j3"
	expect_rc 2 "not an object" "$HUITONG" audit verify-inclusion "$d/j3"
	echo '{"leaf_index":' >"$d/j4"
	expect_rc 2 "bad JSON" "$HUITONG" audit verify-inclusion "$d/j4"
	{
		printf '{"leaf_index":0,"tree_size":2,"leaf_hash":"%s","root":"%s","proof":["%s"' \
			"$h64" "$h64" "$h64"
		for i in $(seq 128); do printf ',"%s"' "$h64"; done
		echo ']}'
	} >"$d/j5"
	expect_rc 2 "proof over 128 hashes" "$HUITONG" audit verify-inclusion "$d/j5"
	expect_rc 2 "negative size" "$HUITONG" audit verify-consistency \
		--old -1 --new 2 --old-root "$h64" --new-root "$h64"
	expect_rc 2 "flags and file" "$HUITONG" audit verify-inclusion --index 0 \
		--size 1 --leaf-hash "$h64" --root "$h64" "$d/j1"
	expect_rc 2 "short proof hash" "$HUITONG" audit verify-inclusion --index 0 \
		--size 2 --leaf-hash "$h64" --root "$h64" --proof "${h64},00"
	expect_rc 1 "index not below size" "$HUITONG" audit verify-inclusion \
		--index 2 --size 2 --leaf-hash "$h64" --root "$h64" --proof "$h64"
}

if [ -d "${HT_SHARED:-}/conformance" ]; then
	conformance
else
	echo "audit.sh: ${HT_SHARED:-(HT_SHARED unset)}/conformance absent:" \
		"conformance vectors skipped"
fi
sm3_round_trips
malformed

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

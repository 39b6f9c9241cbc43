#!/usr/bin/env python3
"""openapi_check.py — docs/openapi.yaml against `huitong serve`, both ways.

Driven by tests/integration/openapi.sh, which makes the store, the
credentials and the running server. Two modes:

  routes SPEC HUITONG
      The route table `huitong serve --routes` prints and the spec's
      operations are the same set (method, path), with the same signature
      requirement and roles; each operation documents what every route
      can answer (400, 401, 413, 500, 503), 403 where some role is
      refused, missing_signature exactly where a signature is required,
      and a declared path parameter for every {name} of its path.

  live SPEC HUITONG DATA URL
      Every operation of the spec is sent to the running server with the
      spec's example values (creates first, so the ids exist) and must
      answer 2xx with a body that validates against the spec's schema;
      every answer's status must be one the operation lists, and every
      error body must validate against that status's Error schema. Then
      the signature requirement (curl, no signature), the roles (one
      request per role), the content types (curl), the documented errors
      (400, 401, 403, 404, 405, 413) each with its code, and the edges
      docs/api.md also promises JSON for (a body over 5 MiB, 17 KiB of
      headers, TRACE), which libevent may answer before the server does.
      The signature errors (stale, replayed, wrong key, wrong bytes) use
      headers this file signs itself with the openssl command, per
      docs/internals/reqsig.md; they are skipped when openssl is missing.

Prints one line per check group; every disagreement is a line starting
with "FAIL:". Exit 0 when everything agrees, 1 otherwise, 2 on a usage
error. Only the standard library and the yaml module (python3-yaml).
"""
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import yaml

METHODS = ("get", "post", "put", "delete", "patch", "head", "options", "trace")
ALL_ROLES = ("participant", "operator", "regulator")
# Credentials directories made by openapi.sh: one per role, and a revoked
# participant.
CREDS = {"operator": "op1", "participant": "bank1", "regulator": "reg1",
         "revoked": "gone1"}
# Requests in flight at once where order does not matter (each is a
# process and a TLS handshake; the server has 2 shared cores).
PARALLEL = 4

failures = []


def fail(msg):
    msg = " ".join(msg.split())  # one line each, whatever the bodies hold
    failures.append(msg)
    print("FAIL: " + msg, flush=True)


def info(msg):
    print(msg, flush=True)


# ---- the spec ---------------------------------------------------------------

class Spec:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)

    def resolve(self, node):
        """Follow $ref (local references only) until a node without one."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise ValueError("non-local $ref " + ref)
            node = self.doc
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            seen += 1
            if seen > 32:
                raise ValueError("$ref loop at " + ref)
        return node

    def operations(self):
        """[(METHOD, path, operation)] in document order."""
        out = []
        for path, item in (self.doc.get("paths") or {}).items():
            for m in METHODS:
                if m in item:
                    out.append((m.upper(), path, item[m]))
        return out

    def params(self, path, op):
        item = self.doc["paths"][path]
        ps = [self.resolve(p) for p in item.get("parameters", [])]
        ps += [self.resolve(p) for p in op.get("parameters", [])]
        return ps

    def response(self, op, status):
        """The response object for a status, or None."""
        r = (op.get("responses") or {}).get(str(status))
        return self.resolve(r) if r is not None else None

    def unmatched(self, status):
        r = (self.doc.get("x-huitong-unmatched") or {}).get(str(status))
        return self.resolve(r) if r is not None else None

    def error_codes(self, response):
        """The Error codes a response allows (the enum on `code`)."""
        try:
            schema = response["content"]["application/json"]["schema"]
        except (KeyError, TypeError):
            return set()
        return set(self._codes(schema))

    def _codes(self, schema):
        schema = self.resolve(schema)
        codes = None
        for sub in schema.get("allOf", []):
            c = self._codes(sub)
            codes = c if codes is None else [x for x in codes if x in c]
        code = (schema.get("properties") or {}).get("code")
        if code is not None:
            c = self.resolve(code).get("enum", [])
            codes = c if codes is None else [x for x in codes if x in c]
        return codes or []


# ---- a validator for the JSON Schema subset the spec uses ----------------------

ANNOTATIONS = {"description", "example", "examples", "default", "title",
               "deprecated", "readOnly", "writeOnly", "format", "$comment"}


def type_ok(t, v):
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == "boolean":
        return isinstance(v, bool)
    if t == "string":
        return isinstance(v, str)
    if t == "array":
        return isinstance(v, list)
    if t == "object":
        return isinstance(v, dict)
    if t == "null":
        return v is None
    raise ValueError("unknown type " + repr(t))


def validate(spec, schema, v, where="$"):
    """Errors of v against schema: a list of strings (empty when valid).
    Keywords outside the subset are reported, so the spec cannot use a
    constraint this validator would silently skip."""
    errs = []
    schema = spec.resolve(schema)
    if schema is True or schema == {}:
        return errs
    for k in schema:
        if k in ANNOTATIONS or k.startswith("x-") or k in (
                "$ref", "type", "enum", "const", "properties", "required",
                "additionalProperties", "items", "minItems", "maxItems",
                "pattern", "minLength", "maxLength", "minimum", "maximum",
                "allOf", "anyOf", "oneOf", "dependentRequired"):
            continue
        errs.append(f"{where}: schema keyword {k!r} is not supported by the checker")
    for sub in schema.get("allOf", []):
        errs += validate(spec, sub, v, where)
    if "anyOf" in schema:
        if not any(not validate(spec, s, v, where) for s in schema["anyOf"]):
            errs.append(f"{where}: matches none of anyOf")
    if "oneOf" in schema:
        n = sum(1 for s in schema["oneOf"] if not validate(spec, s, v, where))
        if n != 1:
            errs.append(f"{where}: matches {n} of oneOf, not 1")
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(type_ok(t, v) for t in types):
            errs.append(f"{where}: {json.dumps(v)[:60]} is not of type {'/'.join(types)}")
            return errs
    if "enum" in schema and v not in schema["enum"]:
        errs.append(f"{where}: {json.dumps(v)[:60]} is not one of {schema['enum'][:8]}")
    if "const" in schema and v != schema["const"]:
        errs.append(f"{where}: {json.dumps(v)[:60]} is not {schema['const']!r}")
    if isinstance(v, str):
        if "pattern" in schema:
            p = schema["pattern"]
            # JSON Schema patterns are ECMA-262; Python's `$` would also
            # match before a final newline, which ECMA's does not.
            if not re.search(p, v) or (p.endswith("$") and v.endswith("\n")):
                errs.append(f"{where}: {v[:60]!r} does not match {p}")
        if "minLength" in schema and len(v) < schema["minLength"]:
            errs.append(f"{where}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(v) > schema["maxLength"]:
            errs.append(f"{where}: longer than {schema['maxLength']}")
        if "x-huitong-max-bytes" in schema and len(v.encode()) > schema["x-huitong-max-bytes"]:
            errs.append(f"{where}: more than {schema['x-huitong-max-bytes']} bytes of UTF-8")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if "minimum" in schema and v < schema["minimum"]:
            errs.append(f"{where}: {v} < minimum {schema['minimum']}")
        if "maximum" in schema and v > schema["maximum"]:
            errs.append(f"{where}: {v} > maximum {schema['maximum']}")
    if isinstance(v, list):
        if "minItems" in schema and len(v) < schema["minItems"]:
            errs.append(f"{where}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(v) > schema["maxItems"]:
            errs.append(f"{where}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, x in enumerate(v):
                errs += validate(spec, schema["items"], x, f"{where}[{i}]")
    if isinstance(v, dict):
        props = schema.get("properties") or {}
        for r in schema.get("required", []):
            if r not in v:
                errs.append(f"{where}: required member {r!r} missing")
        for k, needs in (schema.get("dependentRequired") or {}).items():
            if k in v:
                for r in needs:
                    if r not in v:
                        errs.append(f"{where}: member {r!r} missing beside {k!r}")
        for k, x in v.items():
            if k in props:
                errs += validate(spec, props[k], x, f"{where}.{k}")
            else:
                ap = schema.get("additionalProperties", True)
                if ap is False:
                    errs.append(f"{where}: member {k!r} not in the schema")
                elif isinstance(ap, dict):
                    errs += validate(spec, ap, x, f"{where}.{k}")
    return errs


# ---- (a) the route table ------------------------------------------------------

def server_routes(huitong):
    out = subprocess.run([huitong, "serve", "--routes"], capture_output=True,
                         text=True, timeout=20)
    if out.returncode != 0:
        fail(f"`huitong serve --routes` exited {out.returncode}: {out.stderr.strip()[:200]}")
        return {}
    routes = {}
    for line in out.stdout.splitlines():
        m = re.fullmatch(r"(\S+) (\S+) signed=(yes|no) roles=(\S+)", line)
        if not m:
            fail(f"`huitong serve --routes` printed an unexpected line: {line!r}")
            continue
        roles = m.group(4)
        roles = set(ALL_ROLES) if roles == "all" else set(roles.split(","))
        routes[(m.group(1), m.group(2))] = (m.group(3) == "yes", roles)
    return routes


def check_operation_doc(spec, method, path, op):
    """What every operation must document, and its consistency."""
    name = f"{method} {path}"
    signed = op.get("x-huitong-signed")
    roles = op.get("x-huitong-roles")
    if not isinstance(signed, bool):
        fail(f"spec {name}: x-huitong-signed missing or not a boolean")
    if not isinstance(roles, list) or not roles or any(r not in ALL_ROLES for r in roles):
        fail(f"spec {name}: x-huitong-roles must list roles among {ALL_ROLES}, has {roles!r}")
        roles = list(ALL_ROLES)
    resp = op.get("responses") or {}
    for st in ("200", "400", "401", "413", "500", "503"):
        if st not in resp:
            fail(f"spec {name}: no {st} response (every route can answer it)")
    for st in resp:
        if st.startswith(("4", "5")):
            r = spec.response(op, st)
            codes = spec.error_codes(r)
            if not codes:
                fail(f"spec {name}: the {st} response has no Error schema with codes")
    if set(roles) != set(ALL_ROLES) and "403" not in resp:
        fail(f"spec {name}: roles {roles} refuse some role but no 403 is documented")
    codes401 = spec.error_codes(spec.response(op, 401)) if "401" in resp else set()
    if signed is True and "missing_signature" not in codes401:
        fail(f"spec {name}: signed, but 401 does not list missing_signature")
    if signed is False and "missing_signature" in codes401:
        fail(f"spec {name}: not signed, but 401 lists missing_signature")
    sec = op.get("security", spec.doc.get("security", []))
    needs_sig = all("huitongSignature" in alt for alt in sec) if sec else False
    if isinstance(signed, bool) and needs_sig != signed:
        fail(f"spec {name}: security {'requires' if needs_sig else 'does not require'} "
             f"huitongSignature but x-huitong-signed is {signed}")
    if sec and not all("mutualTLS" in alt for alt in sec):
        fail(f"spec {name}: a security alternative without mutualTLS")
    declared = {p["name"] for p in spec.params(path, op) if p.get("in") == "path"}
    in_path = set(re.findall(r"\{([^}]+)\}", path))
    if declared != in_path:
        fail(f"spec {name}: path parameters {sorted(in_path)} but declared {sorted(declared)}")
    if "200" in resp and not (spec.response(op, 200) or {}).get("content"):
        fail(f"spec {name}: the 200 response has no content")


def check_routes(spec, huitong):
    routes = server_routes(huitong)
    ops = {(m, p): op for m, p, op in spec.operations()}
    info(f"routes: server {len(routes)}, spec {len(ops)} operations")
    for key in routes:
        if key not in ops:
            fail(f"route {key[0]} {key[1]} of the server is not in the spec")
    for key in ops:
        if key not in routes:
            fail(f"spec operation {key[0]} {key[1]} is not a route of the server")
    for key, op in ops.items():
        check_operation_doc(spec, key[0], key[1], op)
        if key not in routes:
            continue
        signed, roles = routes[key]
        if op.get("x-huitong-signed") != signed:
            fail(f"{key[0]} {key[1]}: server signed={'yes' if signed else 'no'}, "
                 f"spec x-huitong-signed={op.get('x-huitong-signed')}")
        sroles = set(op.get("x-huitong-roles") or [])
        if sroles != roles:
            fail(f"{key[0]} {key[1]}: server roles {sorted(roles)}, spec {sorted(sroles)}")
    for key, (signed, roles) in routes.items():
        info(f"  {key[0]:4} {key[1]:32} signed={'yes' if signed else 'no '} "
             f"roles={','.join(sorted(roles))}")


# ---- (b) the running server ------------------------------------------------------

class Hub:
    def __init__(self, huitong, data, url):
        self.huitong, self.data, self.url = huitong, data, url
        self.tmp = tempfile.mkdtemp(prefix="oas-")
        self.sent = 0
        self.lock = threading.Lock()

    def count(self):
        with self.lock:
            self.sent += 1

    def client(self, role, method, target, body=None):
        """A signed request through `huitong client raw`: (status, body)."""
        cmd = [self.huitong, "client", "--credentials",
               os.path.join(self.data, CREDS[role]), "--url", self.url,
               "--retries", "0", "--timeout", "10", "raw", method, target]
        inp = None
        if body is not None:
            cmd.append("-")
            inp = body.encode() if isinstance(body, str) else body
        self.count()
        r = subprocess.run(cmd, input=inp, capture_output=True, timeout=30)
        out = r.stdout.decode("utf-8", "replace")
        if r.returncode != 0 or "\n" not in out:
            raise RuntimeError(f"client raw {method} {target} exited {r.returncode}: "
                               f"{r.stderr.decode('utf-8', 'replace').strip()[:300]}")
        first, rest = out.split("\n", 1)
        return int(first), rest

    def curl(self, method, target, body=None, cert=True, headers=(), role="operator"):
        """A request with curl, unsigned unless headers carry a signature:
        (status, content type, body); status None when no answer came."""
        creds = os.path.join(self.data, CREDS[role])
        fd, out = tempfile.mkstemp(dir=self.tmp)
        os.close(fd)
        cmd = ["curl", "-sS", "--max-time", "15", "-X", method,
               "--cacert", os.path.join(creds, "ca.crt"),
               "-o", out, "-w", "%{http_code} %{content_type}"]
        if cert:
            cmd += ["--cert", os.path.join(creds, "client.crt"),
                    "--key", os.path.join(creds, "client.key")]
        for h in headers:
            cmd += ["-H", h]
        if body is not None:
            fd, path = tempfile.mkstemp(dir=self.tmp)
            with os.fdopen(fd, "wb") as f:
                f.write(body.encode() if isinstance(body, str) else body)
            cmd += ["-H", "Content-Type: application/json", "--data-binary", "@" + path]
        self.count()
        r = subprocess.run(cmd + [self.url + target], capture_output=True, timeout=30)
        w = r.stdout.decode().split(" ", 1)
        if r.returncode != 0 or not w[0].isdigit():
            return None, "", r.stderr.decode("utf-8", "replace").strip()[:300]
        with open(out, "rb") as f:
            data = f.read().decode("utf-8", "replace")
        return int(w[0]), (w[1] if len(w) > 1 else "").strip(), data

    def parallel(self, thunks):
        """Run independent requests PARALLEL at a time; results in order."""
        with ThreadPoolExecutor(max_workers=PARALLEL) as ex:
            return list(ex.map(lambda f: f(), thunks))

    def sign(self, role, method, target, body, ts=None, nonce=None, key_of=None):
        """A Huitong-Signature header made here, independently of the
        client (docs/internals/reqsig.md), with the openssl command;
        None when it is not installed. key_of: sign with another
        credentials directory's key."""
        if not shutil.which("openssl"):
            return None
        creds = os.path.join(self.data, CREDS[key_of or role])
        with open(os.path.join(creds, "credentials.json")) as f:
            cj = json.load(f)
        alg, key_id = cj["signing_alg"], cj["signing_key_id"]
        key = os.path.join(creds, cj["signing_key"])
        ts = int(time.time()) if ts is None else ts
        nonce = nonce or base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        raw = body.encode() if isinstance(body, str) else (body or b"")
        digest = body_digest("sm3" if alg == "sm2" else "sha256", raw)
        msg = "\n".join(["HT-REQ-V1", method, target, key_id, alg, str(ts),
                         nonce, digest]).encode()
        if alg == "sm2":
            cmd = ["openssl", "pkeyutl", "-sign", "-inkey", key, "-rawin",
                   "-digest", "sm3", "-pkeyopt", "distid:1234567812345678"]
        elif alg == "ed25519":
            cmd = ["openssl", "pkeyutl", "-sign", "-inkey", key, "-rawin"]
        else:
            cmd = ["openssl", "dgst", "-sha256", "-sign", key]
        r = subprocess.run(cmd, input=msg, capture_output=True, timeout=20)
        if r.returncode != 0:
            fail(f"openssl could not sign ({alg}): {r.stderr.decode()[:200]}")
            return None
        sig = base64.urlsafe_b64encode(r.stdout).decode().rstrip("=")
        return (f'Huitong-Signature: v1 key="{key_id}", alg="{alg}", ts="{ts}", '
                f'nonce="{nonce}", sig="{sig}"')


def body_digest(name, raw):
    """Lowercase hex of SM3 or SHA-256; hashlib has SM3 only when its
    OpenSSL does, so the openssl command is the fallback."""
    try:
        return hashlib.new(name, raw).hexdigest()
    except ValueError:
        r = subprocess.run(["openssl", "dgst", "-" + name, "-r"], input=raw,
                           capture_output=True, timeout=20, check=True)
        return r.stdout.decode().split()[0]


def example_of(spec, p):
    if "example" in p:
        return p["example"]
    schema = spec.resolve(p.get("schema", {}))
    if "example" in schema:
        return schema["example"]
    return None


def qvalue(v):
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


# Path parameters whose example value the store under test decides (a
# payment token is random): {"name": "value"} from openapi.sh.
PARAM_EXAMPLES = json.loads(os.environ.get("HT_PARAM_EXAMPLES") or "{}")


def build_target(spec, path, op, optional=True):
    """The request target from the spec's parameter examples."""
    target = path
    query = []
    for p in spec.params(path, op):
        ex = example_of(spec, p)
        if p["in"] == "path" and p["name"] in PARAM_EXAMPLES:
            ex = PARAM_EXAMPLES[p["name"]]
        if p["in"] == "path":
            if ex is None:
                fail(f"spec {path}: path parameter {p['name']} has no example")
                ex = "1"
            target = target.replace("{" + p["name"] + "}", qvalue(ex))
        elif p["in"] == "query" and (p.get("required") or optional) and ex is not None:
            query.append(f"{p['name']}={qvalue(ex)}")
    return target + ("?" + "&".join(query) if query else "")


def body_media(spec, op):
    """The request body's media entry: JSON, plain text (a rule file) or
    XML (an ISO 20022 message)."""
    content = spec.resolve(op.get("requestBody") or {}).get("content", {})
    return (content.get("application/json") or content.get("text/plain")
            or content.get("application/xml"))


def body_example(spec, op):
    rb = op.get("requestBody")
    if not rb:
        return None
    media = body_media(spec, op)
    if not media or "example" not in media:
        return None
    return media["example"]


def encode_body(body):
    """The bytes to send: a JSON example as JSON, a text example as is."""
    if body is None:
        return None
    return body if isinstance(body, str) else json.dumps(body)


def check_answer(spec, name, op, status, body, want_2xx=True, ctype=None):
    """The status is documented; the body validates. Returns the parsed
    JSON body (or None)."""
    r = spec.response(op, status) if op is not None else spec.unmatched(status)
    if r is None:
        fail(f"{name}: answered {status}, which the spec does not list "
             f"({body.strip()[:200]})")
        return None
    if want_2xx and not 200 <= status < 300:
        fail(f"{name}: the example request answered {status}: {body.strip()[:200]}")
    content = r.get("content") or {}
    if ctype is not None:
        media = ctype.split(";")[0].strip()
        if media not in content:
            fail(f"{name}: Content-Type {ctype!r}, the spec's {status} lists {sorted(content)}")
        want = (content.get(media) or {}).get("x-huitong-content-type")
        if want and ctype.replace(" ", "") != want.replace(" ", ""):
            fail(f"{name}: Content-Type {ctype!r}, the spec says {want!r}")
    if "application/json" in content:
        try:
            doc = json.loads(body)
        except ValueError as e:
            if status >= 300 or len(content) == 1:
                fail(f"{name}: {status} body is not JSON ({e}): {body.strip()[:200]}")
            return None
        errs = validate(spec, content["application/json"].get("schema", {}), doc)
        for e in errs[:10]:
            fail(f"{name}: {status} body: {e}")
        return doc
    if "text/plain" in content and not body.strip():
        fail(f"{name}: {status} text body is empty")
    return None


def expect_error(spec, name, op, got, status, code):
    """A documented error: this status and code, and the operation (or the
    unmatched responses) lists both."""
    st, body = got
    r = spec.response(op, status) if op is not None else spec.unmatched(status)
    if r is None:
        fail(f"{name}: the spec does not document {status} here")
    elif code not in spec.error_codes(r):
        fail(f"{name}: the spec's {status} does not list code {code}")
    if st != status:
        fail(f"{name}: answered {st}, want {status} {code}: {body.strip()[:200]}")
        return
    try:
        doc = json.loads(body)
    except ValueError:
        fail(f"{name}: {st} body is not JSON: {body.strip()[:200]}")
        return
    if doc.get("code") != code:
        fail(f"{name}: code {doc.get('code')!r}, want {code!r} ({doc.get('message')!r})")
    schema = spec.resolve(spec.doc["components"]["schemas"]["Error"])
    if r is not None:
        schema = r["content"]["application/json"]["schema"]
    for e in validate(spec, schema, doc)[:5]:
        fail(f"{name}: error body: {e}")


def check_examples(spec, hub):
    """Every operation with its example values, as the operator."""
    ops = spec.operations()
    # Creates first (so the ids the other examples use exist), then the
    # rest in document order.
    ops.sort(key=lambda o: 0 if o[0] == "POST" and "lookup" not in o[1] else 1)
    n = 0
    for method, path, op in ops:
        name = f"{method} {path}"
        body = body_example(spec, op)
        if op.get("requestBody") and body is None:
            fail(f"spec {name}: the request body has no example")
            continue
        rb = op.get("requestBody")
        if body is not None:
            schema = body_media(spec, op)["schema"]
            for e in validate(spec, schema, body)[:5]:
                fail(f"spec {name}: the example body does not validate: {e}")
        targets = [build_target(spec, path, op, optional=True)]
        bare = build_target(spec, path, op, optional=False)
        if bare != targets[0]:
            targets.append(bare)
        # as the operator, or a participant where only participants may
        # (payments); an example that can only show a documented refusal
        # (a decision on a payment the fresh store does not hold) names
        # its status in x-huitong-example-status
        roles = op.get("x-huitong-roles") or ALL_ROLES
        who = "operator" if "operator" in roles else roles[0]
        want = op.get("x-huitong-example-status")
        for target in targets:
            st, text = hub.client(who, method, target, encode_body(body))
            n += 1
            if want is not None and st != want:
                fail(f"{method} {target}: the example answered {st}, the spec"
                     f" says {want}: {text.strip()[:200]}")
            doc = check_answer(spec, f"{method} {target}", op, st, text,
                               want_2xx=want is None)
            if doc and "results" in doc:
                bad = [r for r in doc["results"] if r.get("result") != "ok"]
                if bad:
                    fail(f"{method} {target}: example events not ok: {bad[:3]}")
                rc = doc.get("receipt", {})
                leafed = [r for r in doc["results"] if "leaf" in r]
                if rc.get("count") != len(leafed):
                    fail(f"{method} {target}: receipt count {rc.get('count')} but "
                         f"{len(leafed)} results with a leaf")
    info(f"examples: {n} requests, every operation with the spec's example values")


def check_signatures(spec, hub):
    """curl with the client certificate and no signature: signed routes
    answer 401 missing_signature, the others do not ask for one. Content
    types of the unsigned answers against the spec."""
    jobs = []
    for method, path, op in spec.operations():
        target = build_target(spec, path, op)
        body = encode_body(body_example(spec, op))
        roles = op.get("x-huitong-roles") or ALL_ROLES
        who = "operator" if "operator" in roles else roles[0]
        jobs.append((method, target, op,
                     lambda m=method, t=target, b=body, r=who:
                     hub.curl(m, t, b, role=r)))
    results = hub.parallel([j[3] for j in jobs])
    for (method, target, op, _), (st, ctype, text) in zip(jobs, results):
        name = f"{method} {target} (unsigned)"
        want = op.get("x-huitong-example-status")
        if st is None:
            fail(f"{name}: curl failed: {text}")
        elif op.get("x-huitong-signed"):
            expect_error(spec, name, op, (st, text), 401, "missing_signature")
        else:
            if want is not None and st != want:
                fail(f"{name}: answered {st}, the spec says {want}")
            check_answer(spec, name, op, st, text, want_2xx=want is None,
                         ctype=ctype)
    info(f"signatures: {len(jobs)} unsigned requests (curl): x-huitong-signed, content types")


def probe_body(body):
    """The example body with its arrays emptied: a request every allowed
    role may send without changing anything."""
    if body is None or isinstance(body, str):
        return body
    return json.dumps({k: ([] if isinstance(v, list) else v) for k, v in body.items()})


def check_roles(spec, hub):
    jobs = []
    for method, path, op in spec.operations():
        target = build_target(spec, path, op)
        body = probe_body(body_example(spec, op))
        for role in ALL_ROLES:
            jobs.append((method, target, op, role,
                         lambda r=role, m=method, t=target, b=body: hub.client(r, m, t, b)))
    results = hub.parallel([j[4] for j in jobs])
    for (method, target, op, role, _), (st, text) in zip(jobs, results):
        name = f"{method} {target} as {role}"
        if role in set(op.get("x-huitong-roles") or []):
            if st == 403:
                fail(f"{name}: 403 although the spec admits {role}: {text.strip()[:200]}")
            else:
                check_answer(spec, name, op, st, text, want_2xx=False)
        else:
            expect_error(spec, name, op, (st, text), 403, "forbidden")
    info(f"roles: {len(jobs)} requests, one per operation and role, against x-huitong-roles")


def op_of(spec, method, path):
    for m, p, op in spec.operations():
        if m == method and p == path:
            return op
    fail(f"spec: no operation {method} {path} to check errors against")
    return {}


def curl2(hub, *a, **k):
    """hub.curl without the content type: (status, body)."""
    st, _, text = hub.curl(*a, **k)
    return st, text


def signed_curl(hub, role, method, target, body, **sign):
    """curl with a signature made by Hub.sign (stale, of another key, over
    other bytes, ...); (None, why) when openssl is missing."""
    h = hub.sign(role, method, target if "sig_target" not in sign else sign.pop("sig_target"),
                 body if "sig_body" not in sign else sign.pop("sig_body"), **sign)
    if h is None:
        return None, "no openssl command to sign with"
    return curl2(hub, method, target, body, headers=[h], role=role)


def replay(hub):
    """The same signed request twice: the second must be refused."""
    body = '{"ids":[]}'
    h = hub.sign("operator", "POST", "/v1/accounts/lookup", body)
    if h is None:
        return None, "no openssl command to sign with"
    first = curl2(hub, "POST", "/v1/accounts/lookup", body, headers=[h])
    if first[0] != 200:
        fail(f"a request signed by this test (openssl) answered {first[0]}, not 200: "
             f"{first[1].strip()[:200]}")
    return curl2(hub, "POST", "/v1/accounts/lookup", body, headers=[h])


def error_checks(spec, hub):
    """[(description, operation or None for unmatched, request thunk,
    status, code)]: the documented errors, each provoked once."""
    o = lambda m, p: op_of(spec, m, p)
    acc, tr = o("POST", "/v1/accounts"), o("POST", "/v1/transfers")
    lk, get_acc = o("POST", "/v1/accounts/lookup"), o("GET", "/v1/accounts/{id}")
    q, hz = o("GET", "/v1/accounts/{id}/transfers"), o("GET", "/healthz")
    cons, head_at = o("GET", "/v1/journal/consistency"), o("GET", "/v1/journal/heads/{seq}")
    static, receipt = o("GET", "/static/{name}"), o("GET", "/v1/transfers/{id}/receipt")
    c = lambda role, m, t, b=None: (lambda: hub.client(role, m, t, b))
    op1 = lambda m, t, b=None: c("operator", m, t, b)
    tbody = json.dumps(body_example(spec, tr))
    ids = json.dumps({"ids": [str(i + 1) for i in range(8191)]})
    accts = json.dumps({"accounts": [{"id": str(i + 1)} for i in range(8191)]})
    big = '{"accounts":[]}' + " " * (4 * 1024 * 1024 + 1 - 15)
    return [
        # 400
        ("400 malformed_json: POST /v1/accounts {\"accounts\":[", acc,
         op1("POST", "/v1/accounts", '{"accounts":['), 400, "malformed_json"),
        ("400 malformed_json: POST /v1/accounts with an empty body", acc,
         op1("POST", "/v1/accounts", ""), 400, "malformed_json"),
        ("400 invalid_request: an unknown field", acc,
         op1("POST", "/v1/accounts", '{"accounts":[{"id":"9","amout":1}]}'),
         400, "invalid_request"),
        ("400 invalid_request: an unknown flag", acc,
         op1("POST", "/v1/accounts", '{"accounts":[{"id":"9","flags":["nope"]}]}'),
         400, "invalid_request"),
        ("400 invalid_request: an id as a JSON number", acc,
         op1("POST", "/v1/accounts", '{"accounts":[{"id":9}]}'), 400, "invalid_request"),
        ("400 invalid_request: 33 bytes of user_data", acc,
         op1("POST", "/v1/accounts", '{"accounts":[{"id":"9","user_data":"' + "x" * 33 + '"}]}'),
         400, "invalid_request"),
        ("400 invalid_request: JSON nested 9 levels", lk,
         op1("POST", "/v1/accounts/lookup", '{"ids":[[[[[[[[["1"]]]]]]]]]}'),
         400, "invalid_request"),
        ("400 invalid_request: the op of another route", tr,
         op1("POST", "/v1/transfers", '{"op":"create_accounts","transfers":[]}'),
         400, "invalid_request"),
        ("400 invalid_request: GET /v1/accounts/abc", get_acc,
         op1("GET", "/v1/accounts/abc"), 400, "invalid_request"),
        ("400 invalid_request: an account id of 2^128", get_acc,
         op1("GET", "/v1/accounts/340282366920938463463374607431768211456"),
         400, "invalid_request"),
        ("400 invalid_request: limit=0", q,
         op1("GET", "/v1/accounts/1001/transfers?limit=0"), 400, "invalid_request"),
        ("400 invalid_request: limit=8191", q,
         op1("GET", "/v1/accounts/1001/transfers?limit=8191"), 400, "invalid_request"),
        ("400 invalid_request: debits=yes", q,
         op1("GET", "/v1/accounts/1001/transfers?debits=yes"), 400, "invalid_request"),
        ("400 invalid_request: an unknown query parameter", q,
         op1("GET", "/v1/accounts/1001/transfers?bogus=1"), 400, "invalid_request"),
        ("400 invalid_request: consistency without old and new", cons,
         op1("GET", "/v1/journal/consistency"), 400, "invalid_request"),
        ("400 invalid_request: consistency with old > new", cons,
         op1("GET", "/v1/journal/consistency?old=3&new=2"), 400, "invalid_request"),
        ("400 invalid_request: tree_size=0", receipt,
         op1("GET", "/v1/transfers/2001/receipt?tree_size=0"), 400, "invalid_request"),
        ("400 invalid_request: seq not a number", head_at,
         op1("GET", "/v1/journal/heads/x"), 400, "invalid_request"),
        ("400 bad_request: GET /healthz with a body (curl)", hz,
         lambda: curl2(hub, "GET", "/healthz", "x"), 400, "bad_request"),
        ("400 bad_request: a request target over 8 KiB (curl)", hz,
         lambda: curl2(hub, "GET", "/healthz?" + "a" * 8200), 400, "bad_request"),
        # 401
        ("401 missing_signature: POST /v1/accounts unsigned (curl)", acc,
         lambda: curl2(hub, "POST", "/v1/accounts", '{"accounts":[]}'),
         401, "missing_signature"),
        ("401 bad_signature: a malformed Huitong-Signature (curl)", acc,
         lambda: curl2(hub, "POST", "/v1/accounts", '{"accounts":[]}',
                       headers=["Huitong-Signature: v1 nonsense"]), 401, "bad_signature"),
        ("401 bad_signature: signed over another body (openssl)", lk,
         lambda: signed_curl(hub, "operator", "POST", "/v1/accounts/lookup", '{"ids":[]}',
                             sig_body='{"ids":["1"]}'), 401, "bad_signature"),
        ("401 bad_signature: another participant's key (openssl)", lk,
         lambda: signed_curl(hub, "operator", "POST", "/v1/accounts/lookup", '{"ids":[]}',
                             key_of="participant"), 401, "bad_signature"),
        ("401 bad_signature: a GET's optional signature is checked (openssl)", hz,
         lambda: signed_curl(hub, "operator", "GET", "/healthz", None,
                             sig_target="/metrics"), 401, "bad_signature"),
        ("401 stale_timestamp: signed 400 s ago (openssl)", lk,
         lambda: signed_curl(hub, "operator", "POST", "/v1/accounts/lookup", '{"ids":[]}',
                             ts=int(time.time()) - 400), 401, "stale_timestamp"),
        ("401 replayed_nonce: one signed request sent twice (openssl)", lk,
         lambda: replay(hub), 401, "replayed_nonce"),
        ("401 unauthenticated: no client certificate (curl)", hz,
         lambda: curl2(hub, "GET", "/healthz", cert=False), 401, "unauthenticated"),
        ("401 revoked: a revoked participant", hz,
         c("revoked", "GET", "/healthz"), 401, "revoked"),
        # 403
        ("403 forbidden: regulator POST /v1/transfers", tr,
         c("regulator", "POST", "/v1/transfers", tbody), 403, "forbidden"),
        ("403 forbidden: regulator POST /v1/accounts", acc,
         c("regulator", "POST", "/v1/accounts", '{"accounts":[]}'), 403, "forbidden"),
        ("403 forbidden: a participant debits the operator's account", tr,
         c("participant", "POST", "/v1/transfers",
           '{"transfers":[{"id":"2999","debit_account_id":"1001",'
           '"credit_account_id":"1002","amount":"1","ledger":156,"code":1}]}'),
         403, "forbidden"),
        ("403 forbidden: a participant GET /metrics", o("GET", "/metrics"),
         c("participant", "GET", "/metrics"), 403, "forbidden"),
        # 404
        ("404 not_found: GET /v1/accounts/999999", get_acc,
         op1("GET", "/v1/accounts/999999"), 404, "not_found"),
        ("404 not_found: GET /v1/transfers/999999", o("GET", "/v1/transfers/{id}"),
         op1("GET", "/v1/transfers/999999"), 404, "not_found"),
        ("404 not_found: a participant reads the operator's account", get_acc,
         c("participant", "GET", "/v1/accounts/1001"), 404, "not_found"),
        ("404 not_found: GET /v1/journal/heads/999999", head_at,
         op1("GET", "/v1/journal/heads/999999"), 404, "not_found"),
        ("404 not_found: the receipt of transfer 999999", receipt,
         op1("GET", "/v1/transfers/999999/receipt"), 404, "not_found"),
        ("404 not_found: a receipt at a tree size beyond the head", receipt,
         op1("GET", "/v1/transfers/2001/receipt?tree_size=999999"), 404, "not_found"),
        ("404 not_found: GET /static/missing.html", static,
         op1("GET", "/static/missing.html"), 404, "not_found"),
        ("404 not_found: GET /static/.hidden", static,
         op1("GET", "/static/.hidden"), 404, "not_found"),
        ("404 not_found: no route GET /v1/nope", None,
         op1("GET", "/v1/nope"), 404, "not_found"),
        # 405
        ("405 method_not_allowed: GET /v1/accounts", None,
         op1("GET", "/v1/accounts"), 405, "method_not_allowed"),
        ("405 method_not_allowed: DELETE /v1/accounts/1001", None,
         op1("DELETE", "/v1/accounts/1001"), 405, "method_not_allowed"),
        ("405 method_not_allowed: POST /healthz", None,
         op1("POST", "/healthz", ""), 405, "method_not_allowed"),
        # 413
        ("413 too_many_events: 8191 ids", lk,
         op1("POST", "/v1/accounts/lookup", ids), 413, "too_many_events"),
        ("413 too_many_events: 8191 accounts", acc,
         op1("POST", "/v1/accounts", accts), 413, "too_many_events"),
        ("413 payload_too_large: a body of 4 MiB + 1 (curl)", acc,
         lambda: curl2(hub, "POST", "/v1/accounts", big), 413, "payload_too_large"),
    ]


def edge_checks(spec, hub):
    """Requests at the edges of what the server itself sees: TRACE reaches
    the router (JSON 405)."""
    return [
        ("405 method_not_allowed: TRACE /healthz (curl)", None,
         lambda: curl2(hub, "TRACE", "/healthz"), 405, "method_not_allowed"),
    ]


def libevent_checks(hub):
    """docs/api.md: a body over 5 MiB and headers over 16 KiB are refused by
    libevent itself (its own page, not JSON): only the status is promised,
    and the server must keep serving."""
    huge = '{"accounts":[]}' + " " * (6 * 1024 * 1024)
    checks = [
        ("413 for a body of 6 MiB (libevent)",
         lambda: curl2(hub, "POST", "/v1/accounts", huge), 413),
        ("400 for 17 KiB of headers (libevent)",
         lambda: curl2(hub, "GET", "/healthz", headers=["X-Pad: " + "a" * 17408]), 400),
    ]
    for (name, call, status), got in zip(checks, hub.parallel([c[1] for c in checks])):
        if got[0] != status:
            fail(f"{name}: answered {got[0]}, want {status}")
    st, _ = curl2(hub, "GET", "/healthz")
    if st != 200:
        fail(f"after the libevent refusals /healthz answered {st}")
    info("libevent: 2 refusals made before the server sees the request, status only")


def run_errors(spec, hub, label, checks):
    results = hub.parallel([c[2] for c in checks])
    skipped = 0
    for (name, op, _, status, code), got in zip(checks, results):
        if got[0] is None:
            if "openssl" in got[1]:
                skipped += 1
                info(f"SKIP: {name}: {got[1]}")
            else:
                fail(f"{name}: no answer: {got[1]}")
            continue
        expect_error(spec, name, op, got, status, code)
    info(f"{label}: {len(checks) - skipped} documented errors, each with its status, "
         f"code and Error schema")


def check_live(spec, huitong, data, url):
    hub = Hub(huitong, data, url)
    t0 = time.time()
    try:
        for step in (lambda: check_examples(spec, hub),
                     lambda: check_signatures(spec, hub),
                     lambda: check_roles(spec, hub),
                     lambda: run_errors(spec, hub, "errors", error_checks(spec, hub)),
                     lambda: run_errors(spec, hub, "edges", edge_checks(spec, hub)),
                     lambda: libevent_checks(hub)):
            t = time.time()
            step()
            if os.environ.get("HT_VERBOSE"):
                info(f"  ({time.time() - t:.1f} s)")
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        fail(f"cannot talk to the server: {e}")
    finally:
        shutil.rmtree(hub.tmp, ignore_errors=True)
    info(f"live: {hub.sent} requests in {time.time() - t0:.1f} s")


def main(argv):
    if len(argv) >= 3 and argv[0] == "routes":
        spec = Spec(argv[1])
        check_routes(spec, argv[2])
    elif len(argv) >= 5 and argv[0] == "live":
        spec = Spec(argv[1])
        check_live(spec, argv[2], argv[3], argv[4])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

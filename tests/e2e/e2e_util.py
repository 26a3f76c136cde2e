# SPDX-License-Identifier: Apache-2.0
"""Helpers for the jwtd end-to-end suite: run the real binary, talk HTTP to it,
take JWTs apart and forge them.

The suite is black-box: it knows the contract (shared API.md), not the code.
Only the standard library, PyJWT and cryptography are used.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import string
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid
from datetime import datetime, timedelta, timezone

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Start-up under AddressSanitizer is slow; be generous, we poll anyway.
# JWTD_E2E_SLOW=1 (sanitizer builds) triples the waits.
SLOW = 3.0 if os.environ.get("JWTD_E2E_SLOW") else 1.0
READY_TIMEOUT = float(os.environ.get("JWTD_E2E_READY_TIMEOUT", "20")) * SLOW
STOP_TIMEOUT = 15.0 * SLOW
HTTP_TIMEOUT = 30.0

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
RFC3339_UTC_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

# Sanitizer reports mean the process misbehaved even if the exit code looks fine.
CRASH_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                 "ThreadSanitizer", "Segmentation fault", "core dumped")


def jwtd_bin():
    return os.environ.get("JWTD_BIN", os.path.join(REPO, "build", "jwtd"))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(overrides=None):
    """The environment for a jwtd process: ours minus any JWTD_* the caller
    happens to have set, plus the overrides (a value of None removes a key).
    JWTD_CONFIG=none keeps a machine's /etc/jwtd/jwtd.conf (a package
    installed here) out of the tests; a test that wants a file overrides it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JWTD_")}
    env["JWTD_CONFIG"] = "none"
    for k, v in (overrides or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


# --------------------------------------------------------------------------
# Database selection: the ONLY place that knows which backend the suite uses.
# --------------------------------------------------------------------------

class Database:
    """A fresh database for one server (or a restart of it).

    Default: `sqlite:<tmpdir>/jwtd.db`.  With JWTD_E2E_DATABASE=postgres://...
    a new database is created next to the one named in the URL (via psql) and
    dropped afterwards; when psql cannot create one, the URL is used as is
    (the suite only uses unique usernames, so a shared database still works).
    """

    def __init__(self, tmpdir):
        self.tmpdir = tmpdir
        self._drop = None
        base = os.environ.get("JWTD_E2E_DATABASE", "").strip()
        if not base or base.startswith("sqlite:"):
            self.url = "sqlite:" + os.path.join(tmpdir, "jwtd.db")
            self.kind = "sqlite"
        elif base.startswith(("postgres://", "postgresql://")):
            self.kind = "postgres"
            self.url = self._fresh_postgres(base)
        else:
            raise RuntimeError("JWTD_E2E_DATABASE: expected sqlite:... or postgres://...")

    def _fresh_postgres(self, base):
        name = "jwtd_e2e_" + secrets.token_hex(6)
        try:
            subprocess.run(["psql", base, "-v", "ON_ERROR_STOP=1", "-qc",
                            'CREATE DATABASE "%s"' % name],
                           check=True, capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return base
        parts = urllib.parse.urlsplit(base)
        self._drop = (base, name)
        return urllib.parse.urlunsplit(parts._replace(path="/" + name))

    def query(self, sql):
        """Rows of a read-only SQL statement (no parameters), as tuples of
        strings, on either backend - for tests that look at what is stored."""
        if self.kind == "sqlite":
            import sqlite3
            con = sqlite3.connect("file:%s?mode=ro" % self.url[len("sqlite:"):], uri=True)
            try:
                return [tuple("" if v is None else str(v) for v in row)
                        for row in con.execute(sql).fetchall()]
            finally:
                con.close()
        p = subprocess.run(["psql", self.url, "-v", "ON_ERROR_STOP=1", "-qAtF", "\t", "-c", sql],
                           check=True, capture_output=True, timeout=30)
        return [tuple(line.split("\t")) for line in p.stdout.decode().splitlines() if line]

    def close(self):
        if self._drop:
            base, name = self._drop
            self._drop = None
            subprocess.run(["psql", base, "-qc", 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name],
                           capture_output=True, timeout=30)


# --------------------------------------------------------------------------
# The server under test
# --------------------------------------------------------------------------

class JwtdServer:
    """One `jwtd serve` process on a free loopback port with its own temp dir.

    env: extra JWTD_* settings (None removes one); args: extra flags.
    database: reuse a Database (for restarts); port: reuse a port.
    """

    def __init__(self, env=None, args=None, database=None, port=None, tmpdir=None):
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="jwtd-e2e-")
        self.own_db = database is None
        self.db = database or Database(self.tmpdir)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.listen = "%s:%d" % (self.host, self.port)
        self.extra_env = dict(env or {})
        self.args = list(args or [])
        self.proc = None
        self.returncode = None
        self._n = 0
        self.log_path = None
        self.out_path = None

    # settings as the server sees them
    @property
    def env(self):
        e = {"JWTD_LISTEN": self.listen, "JWTD_DATABASE": self.db.url}
        e.update(self.extra_env)
        return e

    @property
    def tls(self):
        """TLS on through the environment (JWTD_TLS_CERT): clients speak HTTPS."""
        return bool(self.extra_env.get("JWTD_TLS_CERT"))

    @property
    def issuer(self):
        return (self.extra_env.get("JWTD_ISSUER")
                or ("https://" if self.tls else "http://") + self.listen)

    @property
    def audience(self):
        return self.extra_env.get("JWTD_AUDIENCE") or "jwtd"

    @property
    def database_url(self):
        return self.db.url

    def start(self, wait=True):
        self._n += 1
        self.log_path = os.path.join(self.tmpdir, "stderr-%d.log" % self._n)
        self.out_path = os.path.join(self.tmpdir, "stdout-%d.log" % self._n)
        with open(self.log_path, "wb") as err, open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen([jwtd_bin(), "serve"] + self.args,
                                         env=clean_env(self.env), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, cwd=self.tmpdir)
        self.returncode = None
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError("jwtd exited with %s before it served /healthz; stderr:\n%s"
                                     % (rc, self.log()))
            try:
                conn = http_connection(self.host, self.port, timeout=2, tls=self.tls)
                conn.request("GET", "/healthz")
                r = conn.getresponse()
                r.read()
                conn.close()
                if r.status == 200:
                    return
                last = "status %d" % r.status
            except OSError as e:
                last = repr(e)
            time.sleep(0.05)
        raise AssertionError("jwtd did not answer /healthz within %.0fs (%s); stderr:\n%s"
                             % (timeout, last, self.log()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, expect_rc=0, timeout=STOP_TIMEOUT):
        """Stop with `sig`; assert a clean exit (code expect_rc, no sanitizer report)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = self.proc.returncode
                self.proc = None
                raise AssertionError("jwtd did not exit within %.0fs of %s; stderr tail:\n%s"
                                     % (timeout, signal.Signals(sig).name, self.log()[-3000:]))
        self.returncode = self.proc.returncode
        self.proc = None
        log = self.log()
        for marker in CRASH_MARKERS:
            assert marker not in log, "jwtd reported %r; stderr tail:\n%s" % (marker, log[-5000:])
        if expect_rc is not None:
            assert self.returncode == expect_rc, (
                "jwtd exited with %s after %s (expected %s); stderr tail:\n%s"
                % (self.returncode, signal.Signals(sig).name, expect_rc, log[-3000:]))
        return self.returncode

    def log(self):
        """Everything the current/last process wrote to stderr."""
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def output(self):
        """stderr + stdout of the current/last process."""
        text = self.log()
        if self.out_path and os.path.exists(self.out_path):
            with open(self.out_path, "rb") as f:
                text += f.read().decode("utf-8", "replace")
        return text

    def client(self, source=None):
        return Client(self.host, self.port, source=source, tls=self.tls)

    def cli(self, *args, env=None, timeout=60, input=None):
        return run_cli(list(args), self.db.url, env=env, timeout=timeout, input=input)

    def close(self):
        """Final clean-up (called by fixtures): stop if still running, then drop
        the database and the temp dir (kept if the stop failed, or with JWTD_E2E_KEEP=1)."""
        clean = False
        try:
            if self.running():
                self.stop()
            clean = True
        finally:
            if self.own_db:
                self.db.close()
            if clean and not os.environ.get("JWTD_E2E_KEEP"):
                shutil.rmtree(self.tmpdir, ignore_errors=True)


def run_cli(args, database_url, env=None, timeout=60, input=None):
    """input: bytes for stdin (else stdin is /dev/null)."""
    e = {"JWTD_DATABASE": database_url}
    e.update(env or {})
    return subprocess.run([jwtd_bin()] + args, env=clean_env(e), input=input,
                          stdin=None if input is not None else subprocess.DEVNULL,
                          capture_output=True, timeout=timeout)


def run_expect_exit(env=None, args=None, timeout=15):
    """Start `jwtd serve` with settings that must stop start-up.

    Returns (returncode, stderr_text).  Fails if the server starts serving.
    """
    tmp = tempfile.mkdtemp(prefix="jwtd-e2e-bad-")
    e = {"JWTD_LISTEN": "127.0.0.1:%d" % free_port(),
         "JWTD_DATABASE": "sqlite:" + os.path.join(tmp, "jwtd.db")}
    e.update(env or {})
    p = subprocess.Popen([jwtd_bin(), "serve"] + list(args or []), env=clean_env(e),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=tmp)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("jwtd kept running with bad settings %r %r; stderr:\n%s"
                             % (env, args, err.decode("utf-8", "replace")))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return p.returncode, err.decode("utf-8", "replace")


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

def http_connection(host, port, timeout, source_address=None, tls=False):
    """An http.client connection; with tls, HTTPS without certificate checks
    (the test servers' certificates are self-signed)."""
    if not tls:
        return http.client.HTTPConnection(host, port, timeout=timeout,
                                          source_address=source_address)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return http.client.HTTPSConnection(host, port, timeout=timeout,
                                       source_address=source_address, context=ctx)


def self_signed_cert(cn):
    """A self-signed EC certificate for `cn` and localhost:
    (cert_pem, key_pem, cert_der)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    t = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(t - timedelta(minutes=5))
            .not_valid_after(t + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert_pem, key_pem, cert.public_bytes(serialization.Encoding.DER)


class Response:
    def __init__(self, status, reason, headers, body, version):
        self.status = status
        self.reason = reason
        self.headers = headers          # http.client.HTTPMessage: case-insensitive
        self.body = body                # raw bytes
        self.version = version

    @property
    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def header_all(self, name):
        return self.headers.get_all(name) or []

    def __repr__(self):
        return "<Response %d %r %r>" % (self.status, dict(self.headers.items()), self.body[:500])


class Client:
    """A keep-alive HTTP/1.1 client on one http.client connection."""

    def __init__(self, host, port, timeout=HTTP_TIMEOUT, source=None, tls=False):
        """source: the local address to connect from (another client on
        loopback: 127.0.0.2, ...), for the per-address limits; tls: HTTPS
        (the test servers' certificates are self-signed: not verified)."""
        self.host, self.port, self.timeout = host, port, timeout
        self.source = (source, 0) if source else None
        self.tls = tls
        self.conn = self._connect()
        self.history = []

    def _connect(self):
        return http_connection(self.host, self.port, timeout=self.timeout,
                               source_address=self.source, tls=self.tls)

    def request(self, method, path, body=None, json_body=None, headers=None, token=None,
                content_type=None):
        """body: raw bytes/str sent as is (no Content-Type unless given);
        json_body: any value, serialised, with Content-Type application/json."""
        hdrs = {}
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        if isinstance(body, str):
            body = body.encode("utf-8")
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        hdrs.update(headers or {})
        hdrs = {k: v for k, v in hdrs.items() if v is not None}
        reused = self.conn.sock is not None
        try:
            self.conn.request(method, path, body=body, headers=hdrs)
            r = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # An idle keep-alive connection the server closed: retry once on a new one.
            if not reused:
                raise
            self.conn.close()
            self.conn = self._connect()
            self.conn.request(method, path, body=body, headers=hdrs)
            r = self.conn.getresponse()
        data = r.read()
        resp = Response(r.status, r.reason, r.headers, data, r.version)
        self.history.append(resp)
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json_body=None, **kw):
        return self.request("POST", path, json_body=json_body, **kw)

    def close(self):
        self.conn.close()


# --------------------------------------------------------------------------
# Assertions on the contract's shapes
# --------------------------------------------------------------------------

def assert_security_headers(resp):
    for name, value in SECURITY_HEADERS.items():
        got = resp.header(name)
        assert got == value, "%s: expected %r, got %r in %r" % (name, value, got, resp)


def assert_json_content_type(resp, also=()):
    ct = resp.header("Content-Type") or ""
    media = ct.split(";")[0].strip().lower()
    assert media in ("application/json",) + tuple(also), "Content-Type %r in %r" % (ct, resp)
    params = [p.strip().lower() for p in ct.split(";")[1:]]
    for p in params:
        if p.startswith("charset="):
            assert p == "charset=utf-8", "Content-Type %r" % ct


def assert_error(resp, status, code):
    """The contract's error shape, exactly."""
    assert resp.status == status, "expected %d %s, got %r" % (status, code, resp)
    body = resp.json
    assert isinstance(body, dict), "error body is not a JSON object: %r" % resp
    assert set(body) == {"error", "error_description"}, "error keys: %r" % body
    assert body["error"] == code, "expected error %r, got %r" % (code, body)
    desc = body["error_description"]
    assert isinstance(desc, str) and desc.strip(), "empty error_description: %r" % body
    assert "\n" not in desc, "error_description is not one sentence: %r" % desc
    assert_json_content_type(resp)
    assert_security_headers(resp)
    return body


def assert_uuid(value):
    assert isinstance(value, str) and UUID_RE.match(value), "not a canonical UUID: %r" % (value,)
    uuid.UUID(value)


def parse_rfc3339(value):
    assert isinstance(value, str) and RFC3339_UTC_RE.match(value), "not RFC 3339 UTC: %r" % (value,)
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def assert_user(obj, username=None):
    assert isinstance(obj, dict) and set(obj) == {"id", "username", "created_at"}, \
        "user object keys: %r" % (obj,)
    assert_uuid(obj["id"])
    if username is not None:
        assert obj["username"] == username
    created = parse_rfc3339(obj["created_at"])
    skew = abs((datetime.now(timezone.utc) - created).total_seconds())
    assert skew < 24 * 3600, "created_at far from now: %r" % obj["created_at"]
    return obj


# --------------------------------------------------------------------------
# Users
# --------------------------------------------------------------------------

def uname(prefix="u"):
    return "%s-%s" % (prefix, secrets.token_hex(5))


def strong_password():
    # random, not in any dictionary, contains every character class
    return "Pw-" + secrets.token_urlsafe(15) + "-9x!"


def bcrypt_hash(password, prefix="$2b$", cost=10):
    """A bcrypt hash (cost 10 unless told) of `password` with the given
    $2a$/$2b$/$2y$ prefix. For ASCII passwords under 72 bytes the three
    variants compute the same hash."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt          # deprecated in 3.11, still the stdlib's bcrypt
    h = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << cost))
    assert h.startswith("$2b$%02d$" % cost) and len(h) == 60, h
    return prefix + h[4:]


def signup(client, username=None, password=None):
    username = username or uname()
    generated = password is None
    for _ in range(5):
        if generated:
            password = strong_password()
        r = client.post("/auth/signup", {"username": username, "password": password})
        # cracklib's "too simplistic/systematic" heuristic refuses about 1 in 3000
        # random passwords (runs like "NOP", "wxyz"): draw another one
        if not (generated and r.status == 422 and (r.json or {}).get("error") == "weak_password"):
            break
    assert r.status == 201, "signup %r: %r" % (username, r)
    user = r.json["user"]
    return username, password, user


def login(client, username, password):
    r = client.post("/auth/login", {"username": username, "password": password})
    assert r.status == 200, "login %r: %r" % (username, r)
    return r.json


def new_user_tokens(client):
    """Sign up a fresh user and log in: (username, password, user, token_response)."""
    username, password, user = signup(client)
    return username, password, user, login(client, username, password)


# --------------------------------------------------------------------------
# JOSE, by hand (so that the suite can build what no library would)
# --------------------------------------------------------------------------

def b64u(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(s):
    s = s + "=" * (-len(s) % 4)
    return base64.urlsafe_b64decode(s.encode("ascii"))


def jwt_parts(token):
    h, p, s = token.split(".")
    return json.loads(b64u_decode(h)), json.loads(b64u_decode(p)), b64u_decode(s)


def compact(header, payload, sig=b""):
    """Serialise header/payload (dicts, or raw JSON str/bytes) and a raw signature."""
    def seg(x):
        if isinstance(x, dict):
            x = json.dumps(x, separators=(",", ":"))
        return b64u(x)
    return "%s.%s.%s" % (seg(header), seg(payload), b64u(sig) if sig else "")


def hs_sign(header, payload, secret, digest=hashlib.sha256):
    """An HMAC-signed compact JWS; header/payload dicts or raw JSON text."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    signing_input = compact(header, payload).rstrip(".")
    mac = hmac.new(secret, signing_input.encode("ascii"), digest).digest()
    return signing_input + "." + b64u(mac)


def ec_sign(header, payload, private_key):
    """An ES256 compact JWS (raw r||s signature) with any header."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    signing_input = compact(header, payload).rstrip(".")
    der = private_key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return signing_input + "." + b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def ec_public_jwk(public_key):
    nums = public_key.public_numbers()
    return {"kty": "EC", "crv": "P-256",
            "x": b64u(nums.x.to_bytes(32, "big")), "y": b64u(nums.y.to_bytes(32, "big"))}


def jwk_thumbprint(jwk):
    """RFC 7638 thumbprint (SHA-256, base64url) of a public JWK."""
    required = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"),
                "OKP": ("crv", "kty", "x"), "oct": ("k", "kty")}[jwk["kty"]]
    canon = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    return b64u(hashlib.sha256(canon.encode("utf-8")).digest())


def www_authenticate_invalid_token(resp):
    """Assert a refused-token 401 per the contract; return error_description."""
    assert_error(resp, 401, "invalid_token")
    wa = resp.header("WWW-Authenticate")
    prefix = 'Bearer realm="jwtd", error="invalid_token", error_description="'
    assert wa is not None and wa.startswith(prefix) and wa.endswith('"'), \
        "WWW-Authenticate %r" % (wa,)
    return wa[len(prefix):-1]


def now():
    return int(time.time())


ALNUM = string.ascii_letters + string.digits


def random_name(n):
    return "".join(secrets.choice(ALNUM) for _ in range(n))


# --------------------------------------------------------------------------
# Sessions, refresh tokens and revocation (shared by test_refresh, test_logout,
# test_cookies, test_refresh_race, test_revocation_bound)
# --------------------------------------------------------------------------

TOKEN_RESPONSE_KEYS = {"access_token", "token_type", "expires_in", "refresh_token", "user"}
# "at least 256 bits of entropy or an HMAC": 43 base64url characters carry 256 bits
REFRESH_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43,}$")


def refresh(client, refresh_token, headers=None):
    """POST /auth/refresh with the token in the JSON body; returns the Response."""
    return client.post("/auth/refresh", {"refresh_token": refresh_token}, headers=headers)


def assert_no_store(resp):
    cc = resp.header("Cache-Control") or ""
    directives = [d.strip().lower() for d in cc.split(",")]
    assert "no-store" in directives, "Cache-Control %r (expected no-store) in %r" % (cc, resp)


def assert_token_response(resp, user=None):
    """A 200 token response per the contract; returns the body."""
    assert resp.status == 200, "expected a token response, got %r" % (resp,)
    assert_json_content_type(resp)
    assert_security_headers(resp)
    assert_no_store(resp)
    body = resp.json
    assert isinstance(body, dict) and set(body) == TOKEN_RESPONSE_KEYS, \
        "token response keys: %r" % (body,)
    assert body["token_type"] == "Bearer", body
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0, body
    rt = body["refresh_token"]
    assert isinstance(rt, str) and REFRESH_TOKEN_RE.match(rt), \
        "refresh token is not opaque base64url of >= 256 bits: %r" % (body["refresh_token"],)
    assert body["access_token"].count(".") == 2, body
    assert_user(body["user"])
    if user is not None:
        assert body["user"] == user, (body["user"], user)
    return body


def assert_invalid_grant(resp, *words):
    """401 invalid_grant whose description contains one of `words` (case-insensitive)."""
    body = assert_error(resp, 401, "invalid_grant")
    assert_no_store(resp)
    if words:
        desc = body["error_description"].lower()
        assert any(w.lower() in desc for w in words), \
            "error_description %r should say %s" % (body["error_description"], " or ".join(words))
    return body


class RevocationTiming(dict):
    """{path: seconds from the revocation to the first refusal seen (None: not
    refused before giving up)}; `.last_accepted[path]`: when the last request
    that was still ACCEPTED had been sent (None: none was)."""

    def __init__(self, paths):
        super().__init__((p, None) for p in paths)
        self.last_accepted = {p: None for p in paths}


def poll_refused(client, token, since, paths=("/auth/me", "/auth/verify"), interval=0.05,
                 give_up=3.0):
    """Poll each of `paths` with `token` until it is refused (401 invalid_token
    with RFC 6750 WWW-Authenticate); times are measured from `since`
    (time.monotonic() taken when the revoking response arrived). Returns a
    RevocationTiming. A path that was refused must stay refused."""
    timing = RevocationTiming(paths)
    while True:
        for p in paths:
            if timing[p] is not None:
                continue
            sent = time.monotonic() - since
            r = client.get(p, token=token)
            t = time.monotonic() - since
            if r.status == 401:
                www_authenticate_invalid_token(r)
                timing[p] = t
            else:
                assert r.status == 200, "%s answered neither 200 nor 401: %r" % (p, r)
                timing.last_accepted[p] = sent
        if all(v is not None for v in timing.values()):
            break
        if time.monotonic() - since > give_up:
            break
        time.sleep(interval)
    for p in paths:
        if timing[p] is not None:
            r = client.get(p, token=token)
            assert r.status == 401, "%s accepted a token it had already refused: %r" % (p, r)
    return timing


def assert_refused_within(client, token, since, bound=1.0, **kw):
    """poll_refused, then assert that no path accepted the token `bound` s or
    more after the revocation, and that every path did refuse it.

    The proof of a violation is an acceptance of a request SENT at or after
    the bound. A first refusal seen only after the bound, with the last
    acceptance before it, means the test process itself was not scheduled in
    between (a loaded 2-core box): not the server's fault, so not a failure,
    but the gap is reported."""
    timing = poll_refused(client, token, since, **kw)
    for p, t in timing.items():
        acc = timing.last_accepted[p]
        assert t is not None, "%s still accepted a revoked session's token %.1fs after the " \
            "revocation (last acceptance at %.3fs)" % (p, kw.get("give_up", 3.0), acc or 0)
        assert acc is None or acc < bound, \
            "%s accepted a revoked session's token %.3fs after the revocation (bound %.1fs); " \
            "first refusal at %.3fs" % (p, acc, bound, t)
        if t >= bound:
            print("note: %s refusal first seen at %.3fs, last acceptance at %.3fs: the test "
                  "process was not scheduled in between" % (p, t, acc or 0))
    return timing


def fmt_timing(timing):
    """'/auth/me 12 ms, /auth/verify 13 ms' for a RevocationTiming."""
    return ", ".join("%s %s" % (p, "%.0f ms" % (t * 1000) if t is not None else "not refused")
                     for p, t in timing.items())


def assert_accepted(client, token, paths=("/auth/me", "/auth/verify")):
    for p in paths:
        r = client.get(p, token=token)
        assert r.status == 200, "%s refused a live session's token: %r" % (p, r)


def at_once(server, n, fn):
    """Call fn(client) from n threads released together, each on a connection
    of its own; the responses, in thread order."""
    return together(server, *([fn] * n))


def together(server, *fns):
    """Call each fn(client) from a thread of its own, on a connection of its
    own, all released together; their responses, in order."""
    barrier = threading.Barrier(len(fns))
    out = [None] * len(fns)

    def run(i):
        c = server.client()
        try:
            barrier.wait(30)
            out[i] = fns[i](c)
        finally:
            c.close()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out

# SPDX-License-Identifier: Apache-2.0
"""Configuration: bad values stop start-up with one line naming the setting;
flags mirror the environment; HS256 mode; closed signup; issuer/audience;
durations; the body limit."""

import secrets
import subprocess

import jwt
import pytest

from e2e_util import (assert_error, bcrypt_hash, clean_env, free_port, jwtd_bin, jwt_parts, login, new_user_tokens,
                      run_expect_exit, signup, strong_password, uname)


BAD_SETTINGS = [
    ({"JWTD_ACCESS_TTL": "abc"}, "JWTD_ACCESS_TTL"),
    ({"JWTD_ACCESS_TTL": "15x"}, "JWTD_ACCESS_TTL"),
    ({"JWTD_ACCESS_TTL": "-5"}, "JWTD_ACCESS_TTL"),
    ({"JWTD_REFRESH_TTL": "abc"}, "JWTD_REFRESH_TTL"),
    ({"JWTD_LEEWAY": "soon"}, "JWTD_LEEWAY"),
    ({"JWTD_SIGNUP": "maybe"}, "JWTD_SIGNUP"),
    ({"JWTD_LISTEN": "nonsense"}, "JWTD_LISTEN"),
    ({"JWTD_LISTEN": "127.0.0.1:99999"}, "JWTD_LISTEN"),
    ({"JWTD_JWT_ALG": "HS256"}, "JWTD_JWT_SECRET"),
    ({"JWTD_JWT_ALG": "HS256", "JWTD_JWT_SECRET": "0123456789"}, "JWTD_JWT_SECRET"),
    ({"JWTD_JWT_ALG": "HS256", "JWTD_JWT_SECRET": "x" * 31}, "JWTD_JWT_SECRET"),
    ({"JWTD_JWT_ALG": "none"}, "JWTD_JWT_ALG"),
    ({"JWTD_JWT_ALG": "XS999"}, "JWTD_JWT_ALG"),
    ({"JWTD_LOG_FORMAT": "xml"}, "JWTD_LOG_FORMAT"),
    ({"JWTD_LOG_LEVEL": "loud"}, "JWTD_LOG_LEVEL"),
    ({"JWTD_WORKERS": "many"}, "JWTD_WORKERS"),
    ({"JWTD_DATABASE": "mysql://localhost/jwtd"}, "JWTD_DATABASE"),
    ({"JWTD_ARGON2_MEMORY": "lots"}, "JWTD_ARGON2_MEMORY"),
    ({"JWTD_MAX_BODY": "big"}, "JWTD_MAX_BODY"),
    ({"JWTD_DB_TIMEOUT": "50ms"}, "JWTD_DB_TIMEOUT"),
    ({"JWTD_DB_TIMEOUT": "2m"}, "JWTD_DB_TIMEOUT"),
    ({"JWTD_CORS_ORIGINS": "http://a.example:99999"}, "JWTD_CORS_ORIGINS"),
    ({"JWTD_CORS_ORIGINS": "https://app.example/path"}, "JWTD_CORS_ORIGINS"),
    # a value's line break is not written out: still one line
    ({"JWTD_MAIL_FROM": "a@example.com\r\nBcc: x@example.com"}, "JWTD_MAIL_FROM"),
    ({"JWTD_LISTEN": ":80\nX"}, "JWTD_LISTEN"),
]


def _one_line(stderr):
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, "expected one line on stderr, got:\n%s" % stderr
    return lines[0]


@pytest.mark.parametrize("env,name", BAD_SETTINGS,
                         ids=["%s=%s" % next(iter(e.items())) if len(e) == 1 else
                              "%s+secret%d" % (e["JWTD_JWT_ALG"], len(e.get("JWTD_JWT_SECRET", "")))
                              for e, _ in BAD_SETTINGS])
def test_bad_setting_stops_startup(env, name):
    rc, stderr = run_expect_exit(env)
    assert rc != 0 and rc > 0, (rc, stderr)           # an exit, not a crash
    line = _one_line(stderr)
    assert name in line, line
    if name == "JWTD_JWT_SECRET":
        secret = env.get("JWTD_JWT_SECRET")
        if secret:
            assert secret not in line, line             # never echo a secret


# (setting, the first value past its limit, the limit as the error line,
# `jwtd serve --help`, jwtd.conf(5) and docs/configuration.md state it).
# Found by an audit: these said "a duration" or "per window" without the
# bounds the parser enforces, so `rate_window = 2d` was refused with
# "accepts window of the per-address counters" and no word of the 1d limit.
SETTING_LIMITS = [
    ("JWTD_REFRESH_TTL", "3651d", "1s to 3650d"),
    ("JWTD_REFRESH_ABSOLUTE_TTL", "3651d", "1s to 3650d"),
    ("JWTD_KEY_ROTATION", "3651d", "up to 3650d"),
    ("JWTD_KEY_PUBLISH_AHEAD", "31d", "0-30d"),
    ("JWTD_LOGIN_BACKOFF", "2d", "1s-1d"),
    ("JWTD_LOGIN_BACKOFF_MAX", "31d", "1s-30d"),
    ("JWTD_ADDRESS_MAX_FAILURES", "100001", "1-100000"),
    ("JWTD_SIGNUP_RATE", "1000001", "1-1000000"),
    ("JWTD_REFRESH_RATE", "1000001", "1-1000000"),
    ("JWTD_RATE_WINDOW", "2d", "1s-1d"),
    ("JWTD_MAIL_RETRY", "61m", "10ms-1h"),
    ("JWTD_MAIL_RETRY_MAX", "2d", "10ms-1d"),
    ("JWTD_MAIL_GIVE_UP", "31d", "100ms-30d"),
    ("JWTD_MAIL_RATE", "1000001", "1-1000000"),
    ("JWTD_MAIL_ACCOUNT_RATE", "1001", "1-1000"),
    ("JWTD_CODE_ATTEMPTS", "101", "1-100"),
    ("JWTD_SITE_NAME", "x" * 65, "up to 64 bytes"),
]


@pytest.mark.parametrize("name,over,limit", SETTING_LIMITS, ids=[n for n, _, _ in SETTING_LIMITS])
def test_refused_value_is_told_the_limit(name, over, limit):
    flag = "--" + name[5:].lower().replace("_", "-")
    # The limit itself is accepted (the other rules between settings kept).
    at = {"3651d": "3650d", "31d": "30d", "2d": "1d", "61m": "1h", "101": "100",
          "1001": "1000", "100001": "100000", "1000001": "1000000"}.get(over, "x" * 64)
    extra = {"JWTD_REFRESH_TTL": ["--refresh-absolute-ttl=3650d"],
             "JWTD_LOGIN_BACKOFF": ["--login-backoff-max=1d"],
             "JWTD_MAIL_RETRY": ["--mail-retry-max=1h"]}.get(name, [])
    ok = subprocess.run([jwtd_bin(), "config", "check", "--config", "none", flag + "=" + at] + extra,
                        env=clean_env(), capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    assert ok.returncode == 0, ok.stderr.decode()
    p = subprocess.run([jwtd_bin(), "config", "check", "--config", "none", flag + "=" + over] + extra,
                       env=clean_env(), capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode == 2, p
    line = _one_line(p.stderr.decode())
    assert name in line and limit in line, line
    help_text = subprocess.run([jwtd_bin(), "serve", "--help"], env=clean_env(), capture_output=True,
                               timeout=30, stdin=subprocess.DEVNULL).stdout.decode()
    entry = help_text.split(name + "\n", 1)[1].split("\n", 1)[0]
    assert limit in entry, entry


@pytest.mark.parametrize("flag,name", [
    ("--access-ttl=abc", "access-ttl"),
    ("--signup=maybe", "signup"),
    ("--listen=nonsense", "listen"),
])
def test_bad_flag_stops_startup(flag, name):
    rc, stderr = run_expect_exit(args=[flag])
    assert rc > 0, (rc, stderr)
    line = _one_line(stderr)
    env_name = "JWTD_" + name.upper().replace("-", "_")
    assert ("--" + name) in line or env_name in line, line


def test_flag_typo_named_and_flag_twice_refused():
    """An unknown flag names the flag it resembles; a setting given twice as a
    flag is a usage error, not a silent "last one wins"."""
    rc, stderr = run_expect_exit(args=["--databse=sqlite:/nonexistent/x.db"])
    assert rc == 2, (rc, stderr)
    line = _one_line(stderr)
    assert "--databse" in line and "did you mean --database?" in line, line
    rc, stderr = run_expect_exit(args=["--access-ttl=5m", "--access-ttl=10m"])
    assert rc == 2, (rc, stderr)
    assert "--access-ttl given twice" in _one_line(stderr)


def test_unusable_host_and_missing_files_say_why(tmp_path):
    """A host name that does not resolve and a TLS file that cannot be read
    are named as such, not as a value of the wrong form."""
    rc, stderr = run_expect_exit({"JWTD_LISTEN": "no-such-host.invalid:8080"})
    line = _one_line(stderr)
    assert rc == 2 and "JWTD_LISTEN" in line and "does not resolve" in line, (rc, line)
    missing = str(tmp_path / "missing.pem")
    rc, stderr = run_expect_exit({"JWTD_TLS_CERT": missing, "JWTD_TLS_KEY": missing})
    line = _one_line(stderr)
    assert rc == 2 and "JWTD_TLS_CERT" in line and "No such file or directory" in line, (rc, line)
    empty = tmp_path / "empty.pem"
    empty.write_bytes(b"")
    rc, stderr = run_expect_exit({"JWTD_TLS_CERT": str(empty), "JWTD_TLS_KEY": str(empty)})
    line = _one_line(stderr)
    assert rc == 2 and "JWTD_TLS_CERT" in line and "empty" in line, (rc, line)


def test_keyword_values_in_any_case(jwtd_factory):
    """Keywords of the configuration are case-insensitive: an operator's
    `JWTD_SIGNUP=Closed` or `JWTD_JWT_ALG=eddsa` is what it says, not a
    start-up error (a token's own "alg" header stays case-sensitive)."""
    srv = jwtd_factory(env={"JWTD_SIGNUP": "Closed", "JWTD_JWT_ALG": "eddsa",
                            "JWTD_LOG_FORMAT": "JSON"})
    c = srv.client()
    r = c.post("/auth/signup", {"username": uname(), "password": strong_password()})
    assert_error(r, 403, "signup_disabled")
    keys = c.get("/.well-known/jwks.json").json["keys"]
    assert keys and all(k["kty"] == "OKP" and k["crv"] == "Ed25519" for k in keys), keys
    assert srv.log().lstrip().startswith("{"), srv.log()[:300]   # JSON lines


# (URL, the secret parts that must never be shown). Found by an audit: the
# redaction stopped at the first '?', so a password with an unencoded '?'
# (which libpq accepts) was logged whole in the `listening` line and by
# `config check`; `sslpassword=` was not taken for a password; libpq's own
# errors quoted the URL or pieces of a password split at '/' or '@'.
PG_URLS_WITH_SECRETS = [
    ("postgres://u:Se?cret99q@127.0.0.1:1/db", ["Se?cret99q", "cret99q"]),
    ("postgres://u:Ab/cdef99q@127.0.0.1:1/db", ["Ab/cdef99q", "cdef99q"]),
    ("postgres://u:Pw@AtPW9q@127.0.0.1:1/db", ["Pw@AtPW9q", "AtPW9q"]),
    ("postgres://u@127.0.0.1:1/db?sslmode=disable&sslpassword=Xyz123q", ["Xyz123q"]),
    ("postgres://u:Aud?PgM9Q@[::1", ["Aud?PgM9Q", "PgM9Q"]),
]


@pytest.mark.parametrize("url,secret_parts", PG_URLS_WITH_SECRETS,
                         ids=["question-mark", "slash", "at-sign", "sslpassword", "bad-uri"])
def test_database_passwords_never_shown(url, secret_parts):
    env = clean_env({"JWTD_DATABASE": url, "JWTD_PUBLIC_URL": "http://127.0.0.1:8080"})
    outputs = []
    p = subprocess.run([jwtd_bin(), "config", "check"], env=env, capture_output=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    outputs.append(p.stdout.decode() + p.stderr.decode())
    assert "database" in outputs[-1], outputs[-1]
    p = subprocess.run([jwtd_bin(), "user", "list"], env=env, capture_output=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 1, p
    outputs.append(p.stdout.decode() + p.stderr.decode())
    for fmt in ("text", "json"):
        rc, stderr = run_expect_exit({"JWTD_DATABASE": url, "JWTD_LOG_FORMAT": fmt,
                                      "JWTD_PUBLIC_URL": "http://127.0.0.1:8080"})
        assert rc == 1, (rc, stderr)
        outputs.append(stderr)
    for text in outputs:
        assert "PostgreSQL" in text or "database" in text, text
        for part in secret_parts:
            assert part not in text, (part, text)


def test_flags_configure_the_server(jwtd_factory):
    port = free_port()
    srv = jwtd_factory(args=["--listen=127.0.0.1:%d" % port, "--access-ttl=10m",
                             "--audience=flag-aud"], start=False)
    srv.port, srv.listen = port, "127.0.0.1:%d" % port
    srv.extra_env["JWTD_LISTEN"] = None           # only the flag says where to listen
    srv.start()
    c = srv.client()
    _, _, _, tokens = new_user_tokens(c)
    assert tokens["expires_in"] == 600
    assert jwt_parts(tokens["access_token"])[1]["aud"] in ("flag-aud", ["flag-aud"])


@pytest.mark.parametrize("value,seconds", [("900", 900), ("900s", 900), ("15m", 900),
                                           ("1h", 3600), ("90s", 90), ("30d", 30 * 86400)])
def test_access_ttl_durations(jwtd_factory, value, seconds):
    """API.md's duration forms (900, 900s, 15m, 1h, 30d) for the access
    lifetime; one over an hour starts with a warning (access_ttl_long)."""
    srv = jwtd_factory(env={"JWTD_ACCESS_TTL": value})
    c = srv.client()
    _, _, _, tokens = new_user_tokens(c)
    assert tokens["expires_in"] == seconds
    claims = jwt_parts(tokens["access_token"])[1]
    assert claims["exp"] - claims["iat"] == seconds
    assert ("access_ttl_long" in srv.log()) == (seconds > 3600), srv.log()[-2000:]


def test_refresh_ttl_in_days_accepted(jwtd_factory):
    srv = jwtd_factory(env={"JWTD_REFRESH_TTL": "30d", "JWTD_LEEWAY": "5s"})
    assert srv.client().get("/healthz").status == 200


# ---------------------------------------------------------------- HS256

def test_hs256_mode(jwtd_factory):
    secret = "hs256-e2e-" + secrets.token_hex(16)          # 42 bytes
    srv = jwtd_factory(env={"JWTD_JWT_ALG": "HS256", "JWTD_JWT_SECRET": secret})
    c = srv.client()
    username, password, user, tokens = new_user_tokens(c)
    token = tokens["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256" and header["typ"] == "JWT", header
    claims = jwt.decode(token, secret, algorithms=["HS256"], audience="jwtd", issuer=srv.issuer,
                        options={"require": ["exp", "iat", "iss", "aud", "sub"]})
    assert claims["sub"] == user["id"] and claims["preferred_username"] == username
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, secret + "x", algorithms=["HS256"], audience="jwtd")
    r = c.get("/.well-known/jwks.json")
    assert r.status == 200 and r.json == {"keys": []}, r
    assert secret not in c.get("/.well-known/openid-configuration").body.decode()
    assert c.get("/auth/me", token=token).json == {"user": user}
    v = c.get("/auth/verify", token=token)
    assert v.status == 200 and v.header("X-Auth-User-Id") == user["id"], v


def test_hs256_secret_of_exactly_32_bytes(jwtd_factory):
    secret = secrets.token_hex(16)
    assert len(secret) == 32
    srv = jwtd_factory(env={"JWTD_JWT_ALG": "HS256", "JWTD_JWT_SECRET": secret})
    _, _, _, tokens = new_user_tokens(srv.client())
    jwt.decode(tokens["access_token"], secret, algorithms=["HS256"], audience="jwtd")


# ---------------------------------------------------------------- signup, issuer

def test_signup_closed(jwtd_factory):
    srv = jwtd_factory(env={"JWTD_SIGNUP": "closed"})
    c = srv.client()
    r = c.post("/auth/signup", {"username": uname(), "password": strong_password()})
    assert_error(r, 403, "signup_disabled")


def test_signup_closed_import_still_logs_in(jwtd_factory):
    srv = jwtd_factory(env={"JWTD_SIGNUP": "closed"})
    username, password = uname("imp"), strong_password()
    p = srv.cli("user", "import", username, "--password-hash", bcrypt_hash(password, "$2b$"))
    assert p.returncode == 0, p
    c = srv.client()
    body = login(c, username, password)
    assert body["user"]["username"] == username
    # --password-hash -: the hash from stdin, out of ps and the history
    other, pw2 = uname("imp"), strong_password()
    p = srv.cli("user", "import", other, "--password-hash", "-",
                input=(bcrypt_hash(pw2, "$2y$") + "\n").encode())
    assert p.returncode == 0, p
    assert login(c, other, pw2)["user"]["username"] == other


def test_signup_open_explicitly(jwtd_factory):
    srv = jwtd_factory(env={"JWTD_SIGNUP": "open"})
    signup(srv.client())


def test_custom_issuer_and_audience(jwtd_factory):
    iss, aud = "https://auth.example.test/realm-1", "orders-api"
    srv = jwtd_factory(env={"JWTD_ISSUER": iss, "JWTD_AUDIENCE": aud})
    c = srv.client()
    username, password, user, tokens = new_user_tokens(c)
    token = tokens["access_token"]
    claims = jwt_parts(token)[1]
    assert claims["iss"] == iss
    assert claims["aud"] in (aud, [aud])
    jwks = c.get("/.well-known/jwks.json").json
    (jwk,) = [k for k in jwks["keys"] if k["kid"] == jwt_parts(token)[0]["kid"]]
    jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["ES256"], audience=aud, issuer=iss)
    doc = c.get("/.well-known/openid-configuration").json
    assert doc["issuer"] == iss
    assert c.get("/auth/me", token=token).json == {"user": user}


def test_custom_max_body(jwtd_factory):
    srv = jwtd_factory(env={"JWTD_MAX_BODY": "1024"})
    c = srv.client()
    big = b'{"username":"' + b"z" * 1100 + b'","password":"x"}'
    assert_error(c.request("POST", "/auth/signup", body=big, content_type="application/json"),
                 413, "payload_too_large")
    signup(c)


def test_taken_port_is_said_before_a_database_is_made(tmp_path):
    """Trap: `serve` on a port another process listens on created (and
    migrated, and filled with a first key) the database, logged that, and
    only then said the port was taken. It says so first, in one line, and
    leaves nothing behind."""
    import socket
    import subprocess
    from e2e_util import clean_env, jwtd_bin
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        db = tmp_path / "taken.db"
        p = subprocess.run([jwtd_bin(), "serve"], env=clean_env({
            "JWTD_LISTEN": "127.0.0.1:%d" % port, "JWTD_DATABASE": "sqlite:%s" % db}),
            stdin=subprocess.DEVNULL, capture_output=True, timeout=15, cwd=str(tmp_path))
    finally:
        holder.close()
    err = p.stderr.decode()
    assert p.returncode == 1, (p.returncode, err)
    line = _one_line(err)
    assert "JWTD_LISTEN" in line and "127.0.0.1:%d" % port in line, line
    assert not db.exists(), "a database was made for a server that could not listen"


# (file text, whether it holds a secret): jwtd.conf(5) "Permissions".
SECRET_FILES = [
    ("jwt_secret = %s\n" % ("k" * 40), True),
    ("smtp_url = smtps://relay:Pw9secret@mail.example.com\nmail_from = a@example.com\n", True),
    ("database = postgres://u:Pw9secret@127.0.0.1:1/db\n", True),
    ("database = sqlite:/var/lib/jwtd/jwtd.db\n", False),
    ("database = postgres://u@127.0.0.1:1/db\n", False),
]


@pytest.mark.parametrize("text,secret", SECRET_FILES,
                         ids=["jwt-secret", "smtp-password", "pg-password", "sqlite", "pg-no-password"])
def test_world_readable_file_with_a_secret_warned(tmp_path, text, secret):
    """A file everyone may read that holds a secret is warned about (chmod
    640), also when the environment sets that setting again for this run:
    the file still holds the secret. Found by an audit: an override from the
    environment hid the warning. A file readable by its group only, or one
    without a secret, is not warned about."""
    conf = tmp_path / "jwtd.conf"
    conf.write_text(text)

    def warned(mode, env=None):
        conf.chmod(mode)
        over = {"JWTD_CONFIG": str(conf), "JWTD_PUBLIC_URL": "http://127.0.0.1:8080"}
        over.update(env or {})
        p = subprocess.run([jwtd_bin(), "config", "check"], env=clean_env(over),
                           capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        out = p.stderr.decode()
        assert p.returncode == 0, out
        assert "Pw9secret" not in out + p.stdout.decode() and "k" * 40 not in out, out
        return "config_file_readable" in out and str(conf) in out

    assert warned(0o644) == secret
    assert not warned(0o640)
    name = text.split(" = ")[0]
    override = {"jwt_secret": {"JWTD_JWT_SECRET": "e" * 40},
                "smtp_url": {"JWTD_SMTP_URL": "smtp://127.0.0.1:2525"},
                "database": {"JWTD_DATABASE": "sqlite:" + str(tmp_path / "x.db")}}[name]
    assert warned(0o644, override) == secret

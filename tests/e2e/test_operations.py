# SPDX-License-Identifier: Apache-2.0
"""Operator features, each test a trap an operator fell into.

1. one configuration file for the server and the CLI (`--config`); `jwtd keys
   rotate` run without it must not change the signing algorithm behind the
   server's back; `jwtd config check` shows sources and hides secrets;
2. JWTD_PUBLIC_URL drives the issuer and the JWKS URL; listen addresses;
3. signals: SIGHUP reloads the [reload] settings (log level, rate limits,
   CORS, TLS certificate), says what needs a restart, survives a broken file;
4. the SQLite files are private whatever the umask;
5. `jwtd user ...` administration against a serving database; `--help` and
   usage errors never touch the disk;
6. a password typed on a terminal is not echoed;
7. the password policy accepts long random passwords and refuses common ones;
8. audit events and request ids in JSON logs, typed values, no secrets;
9. /metrics latency histograms.

Asynchronous effects are polled (every 50 ms) against deadlines, never slept
for. Revocations must reach /auth/me within one second.
"""

import fcntl
import json
import os
import pty
import re
import resource
import secrets
import select
import shutil
import sqlite3
import signal
import socket
import ssl
import subprocess
import tempfile
import termios
import time

import pytest

from e2e_util import (SLOW, assert_error, assert_invalid_grant, assert_refused_within,
                      assert_uuid, clean_env, free_port, jwt_parts, jwtd_bin, login, refresh,
                      run_expect_exit, self_signed_cert, signup, strong_password, uname)

POLL = 0.05


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def wait_for(pred, timeout=5.0, what="condition"):
    """Poll pred() every 50 ms until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out after %.1fs waiting for %s" % (
            timeout * SLOW, what)
        time.sleep(POLL)


def jwtd(args, env=None, input=None, cwd=None, timeout=60):
    """Run the binary directly: clean environment (JWTD_CONFIG=none) plus env."""
    return subprocess.run([jwtd_bin()] + list(args), env=clean_env(env), cwd=cwd,
                          input=input, stdin=None if input is not None else subprocess.DEVNULL,
                          capture_output=True, timeout=timeout)


def out(p):
    return p.stdout.decode("utf-8", "replace")


def err(p):
    return p.stderr.decode("utf-8", "replace")


def write_conf(path, settings):
    with open(path, "w") as f:
        for k, v in settings.items():
            f.write("%s = %s\n" % (k, v))


def count_events(srv, event):
    return len(re.findall(r"\bevent=%s\b" % re.escape(event), srv.log()))


def sighup_and_wait(srv, expect="reloaded"):
    """Send SIGHUP and wait for the next `reloaded` or `reload_failed` line;
    assert it is `expect`; return that line."""
    before = count_events(srv, "reloaded") + count_events(srv, "reload_failed")
    srv.proc.send_signal(signal.SIGHUP)

    def done():
        lines = [l for l in srv.log().splitlines()
                 if re.search(r"\bevent=(reloaded|reload_failed)\b", l)]
        return lines[before] if len(lines) > before else None
    line = wait_for(done, what="the SIGHUP to be handled")
    assert ("event=%s" % expect) in line, "expected %s, got: %s\nlog tail:\n%s" % (
        expect, line, srv.log()[-2000:])
    assert srv.running(), "the server died on SIGHUP:\n" + srv.log()[-2000:]
    return line


def field(line, name):
    """The value of name=value (or name="value") in a text log line."""
    m = re.search(r'\b%s=("(?:[^"\\]|\\.)*"|\S*)' % re.escape(name), line)
    assert m, "no %s= in %r" % (name, line)
    v = m.group(1)
    return v[1:-1] if v.startswith('"') else v


def key_list(path_or_env):
    """`jwtd keys list` rows as (kid, alg, state), with --config PATH or an env dict."""
    if isinstance(path_or_env, dict):
        p = jwtd(["keys", "list"], env=path_or_env)
    else:
        p = jwtd(["keys", "list", "--config", path_or_env])
    assert p.returncode == 0, err(p)
    return out(p), [tuple(l.split("\t")[:3]) for l in out(p).splitlines() if l]


def jwks_kids(client):
    r = client.get("/.well-known/jwks.json")
    assert r.status == 200, r
    return {k["kid"]: k for k in r.json["keys"]}


def sqlite_only(srv):
    if srv.db.kind != "sqlite":
        pytest.skip("SQLite file test (JWTD_E2E_DATABASE is not sqlite)")


def db_env(srv):
    return {"JWTD_DATABASE": srv.db.url}


def cli(srv, *args, input=None, env=None):
    e = db_env(srv)
    e.update(env or {})
    return jwtd(list(args), env=e, input=input)


# --------------------------------------------------------------------------
# 1. one configuration for the server and the CLI
# --------------------------------------------------------------------------

def test_cli_and_server_share_the_config_file_and_rotate_refuses_a_silent_alg_change(
        jwtd_factory):
    """Trap: the server ran from a config file (jwt_alg = EdDSA) while the
    operator ran `jwtd keys rotate` without it; the CLI fell back to ES256
    and quietly started an algorithm change. Now the CLI reads the same file
    with --config, and without it refuses (exit 1, naming EdDSA) and changes
    nothing; an algorithm change is only ever published ahead, never --now."""
    tmp = tempfile.mkdtemp(prefix="jwtd-e2e-conf-")
    try:
        conf = os.path.join(tmp, "jwtd.conf")
        # the database comes from the file only (JWTD_DATABASE would win over it)
        srv = jwtd_factory(env={"JWTD_DATABASE": None}, args=["--config", conf], start=False)
        write_conf(conf, {"jwt_alg": "EdDSA", "database": srv.db.url, "keyring_poll": "200ms"})
        srv.start()
        if srv.db.kind == "sqlite":
            assert os.path.exists(srv.db.url[len("sqlite:"):]), \
                "the server did not use the file's database"
        c = srv.client()
        username, password, _ = signup(c)
        tok = login(c, username, password)["access_token"]
        hdr = jwt_parts(tok)[0]
        assert hdr["alg"] == "EdDSA", hdr
        cur = hdr["kid"]

        text0, rows0 = key_list(conf)
        assert rows0 == [(cur, "EdDSA", "current")], text0

        # With the configuration: a NEXT EdDSA key, published ahead.
        p = jwtd(["keys", "rotate", "--config", conf])
        assert p.returncode == 0, err(p)
        nxt = out(p).split()[0]
        text1, rows1 = key_list(conf)
        assert sorted(rows1) == sorted([(cur, "EdDSA", "current"), (nxt, "EdDSA", "next")]), text1
        wait_for(lambda: nxt in jwks_kids(c), what="the next key in the JWKS")
        assert jwks_kids(c)[nxt].get("alg", "EdDSA") == "EdDSA"
        assert jwt_parts(login(c, username, password)["access_token"])[0]["kid"] == cur, \
            "a published-ahead key signed at once"

        # Without it (default ES256): refused, the current algorithm named, nothing changed.
        env = {"JWTD_DATABASE": srv.db.url}
        p = jwtd(["keys", "rotate"], env=env)
        assert p.returncode == 1, (p.returncode, err(p))
        assert "EdDSA" in err(p) and "current" in err(p), err(p)
        assert key_list(conf)[0] == text1, "a refused rotate changed the key ring"

        # An algorithm change is never --now.
        p = jwtd(["keys", "rotate", "--alg", "ES256", "--now"], env=env)
        assert p.returncode == 2, (p.returncode, err(p))
        assert key_list(conf)[0] == text1, "a refused --now rotate changed the key ring"

        # On purpose: an ES256 key published ahead; the EdDSA key keeps signing.
        p = jwtd(["keys", "rotate", "--alg", "ES256"], env=env)
        assert p.returncode == 0, err(p)
        # the command signs nothing: a server's warning about signing with
        # another instance's algorithm was logged here, twice
        assert "signing_with_another_algorithm" not in err(p), err(p)
        es = out(p).split()[0]
        text2, rows2 = key_list(conf)
        assert sorted(rows2) == sorted([(cur, "EdDSA", "current"), (nxt, "EdDSA", "next"),
                                        (es, "ES256", "next")]), text2
        wait_for(lambda: es in jwks_kids(c), what="the ES256 key in the JWKS")
        hdr = jwt_parts(login(c, username, password)["access_token"])[0]
        assert (hdr["alg"], hdr["kid"]) == ("EdDSA", cur), hdr
        c.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_database_of_a_newer_jwtd_is_refused_by_name():
    """A rolling upgrade's trap: an old instance restarting on a database a
    newer release has migrated. `jwtd serve`, `jwtd migrate` and a reading
    command refuse it, with one line naming both versions (it was
    `cannot apply schema migrations (error); is the database from a newer
    jwtd?` for serve and migrate); the database is not touched. The
    commands exit 1; serve exits 2, which its unit does not restart (it
    restarted on exit 1, in vain, forever)."""
    tmp = tempfile.mkdtemp(prefix="jwtd-e2e-newer-")
    try:
        path = os.path.join(tmp, "jwtd.db")
        env = {"JWTD_DATABASE": "sqlite:" + path}
        p = jwtd(["migrate"], env=env)
        assert p.returncode == 0, err(p)
        latest = int(re.search(r"to (\d+)", out(p)).group(1))
        db = sqlite3.connect(path)
        db.execute("INSERT INTO schema_migrations(version, applied_at) VALUES (?, 0)",
                   (latest + 1,))
        db.commit()
        db.close()
        before = open(path, "rb").read()
        want = ("JWTD_DATABASE: the schema is at version %d, newer than this jwtd's %d"
                % (latest + 1, latest))
        for args in (["migrate"], ["user", "list"]):
            p = jwtd(args, env=env)
            assert p.returncode == 1 and want in err(p), (args, p.returncode, err(p))
        rc, text = run_expect_exit(env=env)
        assert rc == 2 and want in text, (rc, text)
        assert open(path, "rb").read() == before
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_algorithm_change_on_a_database_without_a_current_key():
    """Trap: on a database with no current key yet (migrated, the server not
    started), `keys rotate --alg EdDSA --now` under an ES256 configuration
    made an EdDSA key current at once - the "never --now" rule compared
    with the current key only. The change is now measured against the
    configuration too: --now is refused (exit 2), without it the key is
    published ahead, and the server keeps its configured algorithm."""
    tmp = tempfile.mkdtemp(prefix="jwtd-e2e-alg-")
    try:
        env = {"JWTD_DATABASE": "sqlite:" + os.path.join(tmp, "jwtd.db")}
        p = jwtd(["migrate"], env=env)
        assert p.returncode == 0, err(p)
        # It says what it did: from nothing to the latest schema, logged
        # too; run again, that there was nothing to do.
        m = re.fullmatch(r"database schema migrated from version 0 to (\d+)\n", out(p))
        assert m and int(m.group(1)) >= 5, out(p)
        assert "event=schema_migrated from=0 to=%s" % m.group(1) in err(p), err(p)
        p = jwtd(["migrate"], env=env)
        assert p.returncode == 0, err(p)
        assert out(p) == "database is up to date (schema version %s)\n" % m.group(1), out(p)
        assert "schema_migrated" not in err(p), err(p)
        p = jwtd(["keys", "rotate", "--alg", "EdDSA", "--now"], env=env)
        assert p.returncode == 2, (p.returncode, out(p), err(p))
        assert "never --now" in err(p), err(p)
        p = jwtd(["keys", "list"], env=env)
        assert p.returncode == 0 and out(p).strip() == "", (out(p), err(p))
        p = jwtd(["keys", "rotate", "--alg", "EdDSA"], env=env)
        assert p.returncode == 0, err(p)
        kid = out(p).split()[0]
        p = jwtd(["keys", "list"], env=env)
        rows = [l.split("\t")[:3] for l in out(p).splitlines()]
        assert rows == [[kid, "EdDSA", "next"]], out(p)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_keys_list_names_a_purged_key_removed():
    """docs/operations.md names four key states; `keys list` showed a purged
    key (no longer trusted by anyone) as "retired", like one whose tokens
    still verify. With no server to delete its row, it is listed "removed"."""
    tmp = tempfile.mkdtemp(prefix="jwtd-e2e-purge-")
    try:
        env = {"JWTD_DATABASE": "sqlite:" + os.path.join(tmp, "jwtd.db")}
        first = jwtd(["keys", "rotate", "--now"], env=env)
        assert first.returncode == 0, err(first)
        second = jwtd(["keys", "rotate", "--now"], env=env)
        assert second.returncode == 0, err(second)
        old, new = out(first).split()[0], out(second).split()[0]

        def states():
            p = jwtd(["keys", "list"], env=env)
            assert p.returncode == 0, err(p)
            return {l.split("\t")[0]: l.split("\t")[2] for l in out(p).splitlines()}
        assert states() == {old: "retired", new: "current"}
        p = jwtd(["keys", "retire", old, "--purge"], env=env)
        assert p.returncode == 0, err(p)
        assert states() == {old: "removed", new: "current"}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_arguments_that_start_with_two_dashes():
    """Trap (seen once in CI): a key id is base64url, and one in 4,096
    starts with "--"; `keys retire --mQIL...` took it for a setting and
    answered with the usage line. Words that cannot be a flag (upper case,
    underscores) are arguments, and after "--" every word is (a username
    may start with dashes)."""
    tmp = tempfile.mkdtemp(prefix="jwtd-e2e-dashes-")
    try:
        env = {"JWTD_DATABASE": "sqlite:" + os.path.join(tmp, "jwtd.db")}
        p = jwtd(["keys", "rotate", "--now"], env=env)
        assert p.returncode == 0, err(p)
        kid = "--mQILpNIeF3-1A5ofE84wslMOOWop3RHrNZyhKCBHs"
        for args in (["keys", "retire", kid], ["keys", "retire", "--", kid]):
            p = jwtd(args, env=env)
            assert p.returncode == 1 and "no key with kid " + kid in err(p), (args, err(p))
        p = jwtd(["user", "add", "--", "--dash", "--password-stdin"],
                 input=(strong_password() + "\n").encode(), env=env)
        assert p.returncode == 2, (out(p), err(p))      # after --, not an option: 2 names
        p = jwtd(["user", "add", "--password-stdin", "--", "--dash"],
                 input=(strong_password() + "\n").encode(), env=env)
        assert p.returncode == 0 and out(p).split()[1] == "--dash", (out(p), err(p))
        p = jwtd(["user", "show", "--", "--dash"], env=env)
        assert p.returncode == 0 and "--dash" in out(p), (out(p), err(p))
        # still flags: lower-case words, with or without a value
        for args in (["keys", "retire", "--nope"], ["user", "show", "--no-such=1", "x"]):
            assert jwtd(args, env=env).returncode == 2, args
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_config_check_shows_sources_and_hides_secrets():
    """Trap: `jwtd config check` is what an operator pastes into a ticket; it
    must name the file (and line) each setting came from and never print the
    JWT secret or the database password."""
    tmp = tempfile.mkdtemp(prefix="jwtd-e2e-conf-")
    try:
        secret = "S3cret-" + secrets.token_hex(20)
        dbpw = "pw-" + secrets.token_hex(8)
        conf = os.path.join(tmp, "jwtd.conf")
        write_conf(conf, {"jwt_alg": "HS256", "jwt_secret": secret,
                          "database": "postgres://jwtd:%s@db.example.com/jwtd" % dbpw,
                          "access_ttl": "10m"})
        p = jwtd(["config", "check", "--config", conf])
        assert p.returncode == 0, err(p)
        text = out(p)
        assert secret not in text and secret not in err(p), text
        assert dbpw not in text and dbpw not in err(p), text
        lines = {l.split("=")[0].strip(): l for l in text.splitlines() if "=" in l}
        assert "(hidden)" in lines["jwt_secret"], lines["jwt_secret"]
        assert conf in lines["jwt_secret"], lines["jwt_secret"]
        assert "db.example.com" in lines["database"] and conf in lines["database"], \
            lines["database"]
        assert re.search(r"=\s*HS256\s+#\s*%s:1\b" % re.escape(conf), lines["jwt_alg"]), \
            lines["jwt_alg"]
        assert re.search(r"=\s*10m\s+#\s*%s:4\b" % re.escape(conf), lines["access_ttl"]), \
            lines["access_ttl"]
        assert "default" in lines["audience"], lines["audience"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_environment_file_beside_the_config_file_is_refused(tmp_path):
    """Trap: the docs advised JWTD_DATABASE (with its password) in jwtd.env
    beside jwtd.conf, which only the systemd unit read; `jwtd user add
    --config jwtd.conf` on the server's host then made the account in another
    database and exited 0. Settings live in the file alone now, and a jwtd.env
    beside it stops every command, `serve` included (exit 2, one line naming
    it, nothing created), rather than leaving one of them on another
    database."""
    conf = tmp_path / "jwtd.conf"
    env_file = tmp_path / "jwtd.env"
    write_conf(str(conf), {"database": "sqlite:" + str(tmp_path / "conf.db")})
    env_file.write_text("JWTD_DATABASE=sqlite:%s\n" % (tmp_path / "env.db"))
    for args in (["user", "add", uname(), "--password-stdin"], ["keys", "rotate"], ["migrate"],
                 ["user", "list"], ["config", "check"]):
        p = jwtd(args + ["--config", str(conf)], input=(strong_password() + "\n").encode(),
                 cwd=str(tmp_path))
        assert p.returncode == 2, (args, p.returncode, out(p), err(p))
        lines = err(p).strip().splitlines()
        assert len(lines) == 1 and str(env_file) in lines[0], (args, err(p))
        assert sorted(os.listdir(str(tmp_path))) == ["jwtd.conf", "jwtd.env"], args
    rc, stderr = run_expect_exit({"JWTD_CONFIG": str(conf)})
    assert rc == 2 and str(env_file) in stderr, (rc, stderr)
    env_file.unlink()
    p = jwtd(["migrate", "--config", str(conf)], cwd=str(tmp_path))
    assert p.returncode == 0, err(p)
    assert (tmp_path / "conf.db").exists()


def test_config_check_warns_as_serve_would(tmp_path):
    """Trap: `jwtd config check` passed access_ttl = 2h and a listen address
    beyond loopback without a public URL in silence; only `jwtd serve` then
    warned (access_ttl_long, public_url_unset). The check says the same, on
    stderr, and still exits 0 (warnings, not errors)."""
    p = jwtd(["config", "check", "--access-ttl=2h", "--listen=0.0.0.0:8080"], cwd=str(tmp_path))
    assert p.returncode == 0, err(p)
    assert "warning: access_ttl_long (access_ttl 7200)" in err(p), err(p)
    assert "warning: public_url_unset" in err(p), err(p)
    p = jwtd(["config", "check", "--public-url=https://auth.example.com"], cwd=str(tmp_path))
    assert p.returncode == 0 and "warning" not in err(p), err(p)


def test_config_file_with_a_byte_order_mark(tmp_path):
    """Trap: a jwtd.conf saved by Notepad begins with a UTF-8 byte order mark,
    and its first line was `unknown setting '\ufeffaccess_ttl'`."""
    conf = tmp_path / "jwtd.conf"
    conf.write_bytes(b"\xef\xbb\xbfaccess_ttl = 10m\nsignup = closed\n")
    p = jwtd(["config", "check", "--config", str(conf)])
    assert p.returncode == 0, err(p)
    assert re.search(r"^access_ttl\s+= 10m\s+# %s:1$" % re.escape(str(conf)), out(p), re.M), \
        out(p)


def test_unknown_jwtd_variables_are_reported(tmp_path, jwtd_factory):
    """Trap: JWTD_DATBASE=... (a typo) was ignored without a word and `jwtd
    user add` made ./jwtd.db. Every command that reads the configuration
    names each JWTD_* variable that is not a setting, with the setting it
    resembles; `jwtd serve` logs it (`unknown_environment`). A warning, not
    a refusal: scripts and test harnesses use JWTD_* names of their own.
    JWTD_CONFIG and JWTD_TEST_CLOCK are read, so never reported."""
    env = {"JWTD_DATBASE": "sqlite:" + str(tmp_path / "meant.db"),
           "JWTD_HARNESS_OWN_NAME": "1", "JWTD_CONFIG": "none"}
    p = jwtd(["config", "check"], env=env)
    assert p.returncode == 0, err(p)
    warnings = err(p).splitlines()
    assert len(warnings) == 2, err(p)
    assert any("JWTD_DATBASE" in w and "did you mean JWTD_DATABASE?" in w for w in warnings), \
        warnings
    assert any("JWTD_HARNESS_OWN_NAME" in w and "did you mean" not in w for w in warnings), \
        warnings
    assert "JWTD_CONFIG" not in err(p)
    p = jwtd(["user", "list"], env=env, cwd=str(tmp_path))
    assert p.returncode == 1 and "did you mean JWTD_DATABASE?" in err(p), err(p)

    srv = jwtd_factory(env={"JWTD_SIGNUP_RATES": "5"})
    line = wait_for(lambda: [l for l in srv.log().splitlines() if "unknown_environment" in l],
                    what="the unknown_environment warning")[0]
    assert "level=warn" in line and field(line, "name") == "JWTD_SIGNUP_RATES", line
    assert "JWTD_SIGNUP_RATE?" in field(line, "advice"), line


def test_config_check_refuses_what_serve_refuses(tmp_path):
    """Trap: on a build without PostgreSQL, `jwtd config check` passed a
    postgres:// URL that `jwtd serve` then refused (exit 1). The rule is the
    configuration's, so both say the same line and exit 2; on a build with
    PostgreSQL both take the URL (serve then fails to connect, exit 1)."""
    url = "postgres://jwtd@127.0.0.1:1/jwtd?sslmode=disable"
    check = jwtd(["config", "check", "--database=" + url], cwd=str(tmp_path))
    rc, stderr = run_expect_exit({"JWTD_DATABASE": url})
    if "without PostgreSQL" in stderr:
        assert (check.returncode, rc) == (2, 2), (err(check), stderr)
        assert err(check).strip() == stderr.strip(), (err(check), stderr)
    else:
        assert (check.returncode, rc) == (0, 1), (err(check), stderr)


def test_config_check_refuses_a_tls_key_of_another_certificate(tmp_path):
    """Trap: `jwtd config check` passed a key that does not belong to the
    certificate, and `jwtd serve` then exited 1 (a failure systemd retries)
    instead of 2 (a configuration error, not retried). Both refuse it, with
    the same line, exit 2; a matching pair passes."""
    c1, k1, _ = self_signed_cert("one.example")
    c2, k2, _ = self_signed_cert("two.example")
    for name, data in (("c1.pem", c1), ("k1.pem", k1), ("k2.pem", k2), ("junk.pem", b"x")):
        (tmp_path / name).write_bytes(data)
        os.chmod(tmp_path / name, 0o600)
    cert, key, other, junk = (str(tmp_path / n) for n in ("c1.pem", "k1.pem", "k2.pem", "junk.pem"))
    p = jwtd(["config", "check", "--config", "none", "--tls-cert", cert, "--tls-key", key],
             cwd=str(tmp_path))
    assert p.returncode == 0, err(p)
    for k, want in ((other, "JWTD_TLS_KEY: the key does not belong to the certificate"),
                    (junk, "JWTD_TLS_KEY: not a PEM private key")):
        p = jwtd(["config", "check", "--config", "none", "--tls-cert", cert, "--tls-key", k],
                 cwd=str(tmp_path))
        rc, stderr = run_expect_exit({"JWTD_TLS_CERT": cert, "JWTD_TLS_KEY": k,
                                      "JWTD_CONFIG": "none"})
        assert (p.returncode, rc) == (2, 2), (err(p), stderr)
        assert want in err(p) and want in stderr, (err(p), stderr)
    p = jwtd(["config", "check", "--config", "none", "--tls-cert", junk, "--tls-key", key],
             cwd=str(tmp_path))
    assert p.returncode == 2 and "JWTD_TLS_CERT: not a PEM certificate" in err(p), err(p)


def test_a_command_that_would_make_a_database_nobody_named_says_so(tmp_path):
    """Trap: on the service's host, a command run without the configuration
    the unit names (the binary looked for its own sysconfdir's file) made a
    fresh ./jwtd.db and exited 0: `jwtd user add` added the person to a
    database no server reads. It still may (a first try in a scratch
    directory), but says so; and `--config ''` is an error, not "no
    file"."""
    pw = (strong_password() + "\n").encode()
    p = jwtd(["user", "add", uname(), "--password-stdin"], input=pw, cwd=str(tmp_path))
    assert p.returncode == 0, err(p)
    assert re.search(r"warning: no configuration file .* and no JWTD_DATABASE: creating a new "
                     r"database, \./jwtd\.db, in this directory", err(p)), err(p)
    p = jwtd(["user", "add", uname(), "--password-stdin"], input=pw, cwd=str(tmp_path))
    assert p.returncode == 0 and "warning" not in err(p), err(p)      # it exists now
    p = jwtd(["user", "add", uname(), "--password-stdin"], input=pw, cwd=str(tmp_path),
             env={"JWTD_DATABASE": "sqlite:" + str(tmp_path / "named.db")})
    assert p.returncode == 0 and "warning" not in err(p), err(p)      # named: no surprise
    p = jwtd(["user", "list", "--config", ""], cwd=str(tmp_path))
    assert p.returncode == 2 and "--config needs a file name" in err(p), err(p)


def test_config_file_typo_gets_the_name_it_is_closest_to(tmp_path):
    """Trap: a mistyped name in the file (`acess_ttl`) got "unknown setting"
    alone, where the same typo in the environment gets "did you mean". The
    file's line names the setting as the file writes it; a name near none
    gets no guess."""
    conf = tmp_path / "jwtd.conf"
    conf.write_text("listen = 127.0.0.1:8080\nacess_ttl = 5m\n")
    p = jwtd(["config", "check", "--config", str(conf)])
    assert p.returncode == 2, err(p)
    assert "line 2: unknown setting 'acess_ttl'; did you mean access_ttl?" in err(p), err(p)
    conf.write_text("zzzzzzzz = 5m\n")
    p = jwtd(["config", "check", "--config", str(conf)])
    assert p.returncode == 2 and "did you mean" not in err(p), err(p)
    # names in any case still load (the docs' ACCESS-TTL), and a name too
    # long to be one gets no guess read from the line before
    conf.write_text("Access_TTL = 10m\nPUBLIC-URL = https://auth.example.com\n")
    p = jwtd(["config", "check", "--config", str(conf)])
    assert p.returncode == 0 and re.search(r"^access_ttl +=? *10m", out(p), re.M), out(p)
    conf.write_text("listen = 127.0.0.1:8080\n%s = 1\n" % ("x" * 95))
    p = jwtd(["config", "check", "--config", str(conf)])
    assert p.returncode == 2 and "line 2: expected name = value" in err(p), err(p)
    assert "did you mean" not in err(p) and "xxxx" not in err(p), err(p)


def test_config_line_without_its_equals_sign_echoes_no_secret(tmp_path):
    """Trap: `database postgres://jwtd:S3cret@db/jwtd?sslmode=verify-full`
    (the '=' forgotten after the name) was refused as "unknown setting
    'database postgres://jwtd:S3cret@db/jwtd?sslmode'": the password went to
    the terminal and, under serve, the journal. Only a name is echoed. And
    a line of exactly 8 KiB is not "over 8 KiB"."""
    conf = tmp_path / "jwtd.conf"
    conf.write_text("signup = closed\n"
                    "database postgres://jwtd:S3cretDbPw@db/jwtd?sslmode=verify-full\n")
    p = jwtd(["config", "check", "--config", str(conf)], cwd=str(tmp_path))
    assert p.returncode == 2, err(p)
    assert "S3cretDbPw" not in err(p) + out(p), err(p)
    assert "line 2: expected name = value" in err(p), err(p)
    # nor a base64url secret whose '=' padding looked like the separator
    for line in ("S3cretB64url_value-AAAA==", "s3cretb64url_value-aaaa==",
                 "S3CRETBASE32VALUEAAAA==", "3f9a0c77e2b14d5a=="):
        conf.write_text("signup = closed\n%s\n" % line)
        p = jwtd(["config", "check", "--config", str(conf)], cwd=str(tmp_path))
        assert p.returncode == 2 and "line 2: expected name = value" in err(p), err(p)
        assert line[:10].lower() not in err(p).lower(), err(p)
    # nor the user information of a refused URL
    for url in ("https://bob:S3cretUrlPw@auth.example.com", "https://S3cretUrlPw@auth.example.com",
                "https://bob:S3cretUrlPw/2@auth.example.com", "https://bob:S3cretUrl@Pw@auth.example.com",
                "https://auth.example.com/?password=S3cretUrlPw",
                "https://auth.example.com/?PASSWORD=S3cretUrlPw",
                "https://auth.example.com/?token=S3cretUrlPw", "https://auth.example.com/#S3cretUrlPw"):
        p = jwtd(["config", "check", "--public-url", url], cwd=str(tmp_path))
        assert p.returncode == 2 and "JWTD_PUBLIC_URL: bad value" in err(p), err(p)
        assert "S3cretUrl" not in err(p) and "Pw" not in err(p), err(p)
    p = jwtd(["config", "check", "--config", "none"], cwd=str(tmp_path), env={
        "JWTD_CORS_ORIGINS": "https://a.example.com,https://u:S3cretUrlPw@b.example.com"})
    assert p.returncode == 2 and "S3cretUrlPw" not in err(p), err(p)
    pad = "#" * 8192
    conf.write_text("%s\r\nsignup = closed\n" % pad)
    p = jwtd(["config", "check", "--config", str(conf)], cwd=str(tmp_path))
    assert p.returncode == 0, err(p)
    conf.write_text("%s#\nsignup = closed\n" % pad)
    p = jwtd(["config", "check", "--config", str(conf)], cwd=str(tmp_path))
    assert p.returncode == 2 and "line 1: line too long" in err(p), err(p)


# --------------------------------------------------------------------------
# 2. public URL and listen address
# --------------------------------------------------------------------------

def test_public_url_sets_issuer_and_jwks_uri(jwtd_factory):
    """Trap: behind a TLS proxy the issuer followed JWTD_LISTEN
    (http://0.0.0.0:8080) and every verifier refused the tokens.
    JWTD_PUBLIC_URL decides the issuer and the JWKS URL (trailing slash
    dropped), whatever the listen address; with it set, listening on every
    interface gives no public_url_unset warning."""
    port = free_port()
    srv = jwtd_factory(env={"JWTD_LISTEN": "0.0.0.0:%d" % port,
                            "JWTD_PUBLIC_URL": "https://auth.example.com:8443/"}, port=port)
    c = srv.client()
    username, password, _ = signup(c)
    claims = jwt_parts(login(c, username, password)["access_token"])[1]
    assert claims["iss"] == "https://auth.example.com:8443", claims
    d = c.get("/.well-known/openid-configuration")
    assert d.status == 200, d
    assert d.json["issuer"] == "https://auth.example.com:8443", d.json
    assert d.json["jwks_uri"] == "https://auth.example.com:8443/.well-known/jwks.json", d.json
    c.close()
    srv.stop()           # start-up warnings are written before SIGTERM is handled
    assert "public_url_unset" not in srv.log(), srv.log()
    # `config check` shows the URL as the server uses it
    p = jwtd(["config", "check", "--public-url=https://Auth.Example.com:443/"])
    assert p.returncode == 0, err(p)
    line = [l for l in out(p).splitlines() if l.startswith("public_url ")]
    assert line and line[0].split("=", 1)[1].split("#")[0].strip() == \
        "https://auth.example.com", out(p)


def test_listening_everywhere_without_public_url_warns(jwtd_factory):
    """Trap: a server on 0.0.0.0 silently used http://0.0.0.0:PORT as its
    issuer; now it logs a public_url_unset warning at start-up."""
    port = free_port()
    srv = jwtd_factory(env={"JWTD_LISTEN": "0.0.0.0:%d" % port}, port=port)
    wait_for(lambda: "public_url_unset" in srv.log(), what="the public_url_unset warning")
    line = [l for l in srv.log().splitlines() if "public_url_unset" in l][0]
    assert "level=warn" in line, line


def test_listen_without_host_is_refused_with_advice():
    """Trap: JWTD_LISTEN=":8080" (the Go habit) meant something different to
    each reader; it is refused at start with one line naming JWTD_LISTEN and
    suggesting 0.0.0.0:8080."""
    rc, stderr = run_expect_exit({"JWTD_LISTEN": ":8080"})
    assert rc == 2, (rc, stderr)
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, stderr
    assert "JWTD_LISTEN" in lines[0] and "0.0.0.0:8080" in lines[0], lines[0]


def test_listen_on_localhost_serves(jwtd_factory):
    """Trap: JWTD_LISTEN=localhost:PORT was refused as "not an address";
    a host name is accepted and served."""
    port = free_port()
    srv = jwtd_factory(env={"JWTD_LISTEN": "localhost:%d" % port}, port=port)
    c = srv.client()
    assert c.get("/healthz").status == 200
    c.close()


@pytest.mark.parametrize("url", ["ftp://x", "https://exa mple.com", "https://x/?q",
                                 "https://user@x"])
def test_bad_public_url_refused(url):
    """Trap: a mistyped public URL became the issuer of every token; it is
    refused at start with a line naming JWTD_PUBLIC_URL."""
    rc, stderr = run_expect_exit({"JWTD_PUBLIC_URL": url})
    assert rc == 2, (rc, stderr)
    assert "JWTD_PUBLIC_URL" in stderr, stderr


# --------------------------------------------------------------------------
# 3. signals
# --------------------------------------------------------------------------

def test_sighup_does_not_kill(jwtd_factory):
    """Trap: SIGHUP (sent by `systemctl reload` and by log rotation) killed
    the server. It reloads, logs `reloaded` with applied= and needs_restart=,
    keeps serving, and still exits 0 on SIGTERM."""
    srv = jwtd_factory()
    c = srv.client()
    line = sighup_and_wait(srv)
    assert "applied=" in line and "needs_restart=" in line, line
    assert c.get("/healthz").status == 200
    signup(c)
    c.close()
    assert srv.stop() == 0


def _preflight(c, origin):
    return c.request("OPTIONS", "/auth/login",
                     headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                              "Access-Control-Request-Headers": "content-type"})


def test_sighup_applies_reloadable_settings_from_the_file(jwtd_factory):
    """Trap: to debug a production issue an operator set log_level = debug
    and sent SIGHUP; nothing changed (or the process died). Reloadable
    settings (log level, per-address signup limit, CORS origins) take effect
    at once; a setting that needs a restart (access_ttl) is listed in
    needs_restart and not half-applied."""
    tmp = tempfile.mkdtemp(prefix="jwtd-e2e-hup-")
    try:
        conf = os.path.join(tmp, "jwtd.conf")
        base = {"log_level": "info", "signup_rate": "1000", "rate_window": "10m",
                "cors_origins": "https://a.example", "access_ttl": "15m"}
        write_conf(conf, base)
        srv = jwtd_factory(args=["--config", conf])
        c = srv.client()
        username, password, _ = signup(c)
        assert login(c, username, password)["expires_in"] == 900
        r = _preflight(c, "https://a.example")
        assert r.header("Access-Control-Allow-Origin") == "https://a.example", r
        r = _preflight(c, "https://b.example")
        assert r.header("Access-Control-Allow-Origin") is None, r
        assert c.get("/healthz").status == 200
        assert "http_request" not in srv.log(), "debug lines at log_level = info"

        write_conf(conf, dict(base, log_level="debug", signup_rate="1",
                              cors_origins="https://b.example", access_ttl="5m"))
        line = sighup_and_wait(srv)
        applied = field(line, "applied").split(",")
        restart = field(line, "needs_restart").split(",")
        for name in ("JWTD_LOG_LEVEL", "JWTD_SIGNUP_RATE", "JWTD_CORS_ORIGINS"):
            assert name in applied, line
        assert "JWTD_ACCESS_TTL" in restart and "JWTD_ACCESS_TTL" not in applied, line
        # what the test harness gives in the environment is named as such
        # (an edit of it in the file would change nothing)
        overridden = field(line, "overridden").split(",")
        assert "JWTD_LISTEN" in overridden and "JWTD_LOG_LEVEL" not in overridden, line

        # log level: debug http_request lines from now on
        assert c.get("/healthz").status == 200
        wait_for(lambda: "event=http_request" in srv.log(), what="a debug http_request line")
        # CORS follows the file
        r = _preflight(c, "https://b.example")
        assert r.header("Access-Control-Allow-Origin") == "https://b.example", r
        assert r.header("Access-Control-Allow-Methods"), r
        r = _preflight(c, "https://a.example")
        assert r.header("Access-Control-Allow-Origin") is None, r
        assert r.header("Access-Control-Allow-Methods") is None, r
        r = c.get("/healthz", headers={"Origin": "https://b.example"})
        assert r.header("Access-Control-Allow-Origin") == "https://b.example", r
        # the access TTL needs a restart: unchanged
        assert login(c, username, password)["expires_in"] == 900
        # the signup limit: one signup from this address was made in the window
        r = c.post("/auth/signup", {"username": uname(), "password": strong_password()})
        assert_error(r, 429, "too_many_attempts")
        c.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_sighup_with_a_broken_file_keeps_the_running_configuration(jwtd_factory):
    """Trap: a typo in the file followed by `systemctl reload` took the
    service down. A file that does not load is reported (reload_failed) and
    the running settings stay, the server keeps serving."""
    tmp = tempfile.mkdtemp(prefix="jwtd-e2e-hup-")
    try:
        conf = os.path.join(tmp, "jwtd.conf")
        write_conf(conf, {"signup": "open", "log_level": "info"})
        srv = jwtd_factory(args=["--config", conf])
        c = srv.client()
        with open(conf, "w") as f:
            f.write("signup = closed\nlog_level = debug\nthis line has no equals sign\n")
        line = sighup_and_wait(srv, expect="reload_failed")
        assert "level=error" in line, line
        assert srv.running()
        assert c.get("/healthz").status == 200
        signup(c)                                            # signup still open
        assert "event=http_request" not in srv.log(), "log_level = debug was half-applied"
        c.close()
        assert srv.stop() == 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _tls_probe(port):
    """A new TLS connection: (status of GET /healthz, the server's DER certificate)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            der = s.getpeercert(binary_form=True)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else None
    return status, der


def test_sighup_replaces_the_tls_certificate(jwtd_factory):
    """Trap: a renewed certificate (certbot renew + reload) was not picked up
    until a restart, so the old one expired in production. SIGHUP loads the
    new files for new connections; a key that does not match its certificate
    is refused (reload_failed) and the previous certificate stays."""
    tmp = tempfile.mkdtemp(prefix="jwtd-e2e-tls-")
    try:
        cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        c1, k1, der1 = self_signed_cert("first.example")
        c2, k2, der2 = self_signed_cert("second.example")

        def install(cert, key):
            with open(cert_path, "wb") as f:
                f.write(cert)
            with open(key_path, "wb") as f:
                f.write(key)
        install(c1, k1)
        os.chmod(key_path, 0o600)
        conf = os.path.join(tmp, "jwtd.conf")
        write_conf(conf, {"tls_cert": cert_path, "tls_key": key_path})
        srv = jwtd_factory(args=["--config", conf], start=False)
        srv.start(wait=False)

        def ready():
            assert srv.running(), "jwtd exited:\n" + srv.log()
            try:
                return _tls_probe(srv.port)
            except (OSError, ssl.SSLError):
                return None
        status, der = wait_for(ready, timeout=20, what="the TLS server")
        assert status == 200 and der == der1

        install(c2, k2)
        line = sighup_and_wait(srv)
        assert "JWTD_TLS_CERT" in field(line, "applied"), line
        status, der = _tls_probe(srv.port)
        assert status == 200
        assert der == der2, "SIGHUP did not load the renewed certificate"

        install(c1, k2)                      # certificate and key do not match
        sighup_and_wait(srv, expect="reload_failed")
        status, der = _tls_probe(srv.port)
        assert status == 200
        assert der == der2, "a refused reload changed the served certificate"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_sighup_turning_tls_on_or_off_needs_a_restart(jwtd_factory):
    """Trap: a SIGHUP after adding tls_cert/tls_key to the file of a server
    without TLS crashed it (SIGSEGV: the certificate swap ran on a listener
    without TLS). Turning TLS on is listed in needs_restart, changes
    nothing, and the server keeps serving plain HTTP."""
    tmp = tempfile.mkdtemp(prefix="jwtd-e2e-tls-")
    try:
        cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        cert, key, _ = self_signed_cert("on.example")
        with open(cert_path, "wb") as f:
            f.write(cert)
        with open(key_path, "wb") as f:
            f.write(key)
        os.chmod(key_path, 0o600)
        conf = os.path.join(tmp, "jwtd.conf")
        write_conf(conf, {"signup": "open"})
        srv = jwtd_factory(args=["--config", conf])
        c = srv.client()
        write_conf(conf, {"signup": "open", "tls_cert": cert_path, "tls_key": key_path})
        line = sighup_and_wait(srv)
        restart = field(line, "needs_restart").split(",")
        assert "JWTD_TLS_CERT" in restart and "JWTD_TLS_KEY" in restart, line
        assert "JWTD_TLS_CERT" not in field(line, "applied"), line
        assert c.get("/healthz").status == 200          # still plain HTTP
        signup(c)
        c.close()
        assert srv.stop() == 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_sighup_raising_the_log_level_still_says_so(jwtd_factory):
    """Trap: a reload that raised log_level to warn wrote no `reloaded` line
    (it was written at info, after the new level took effect). It is
    written once, before."""
    tmp = tempfile.mkdtemp(prefix="jwtd-e2e-hup-")
    try:
        conf = os.path.join(tmp, "jwtd.conf")
        write_conf(conf, {"log_level": "info"})
        srv = jwtd_factory(args=["--config", conf])
        write_conf(conf, {"log_level": "warn"})
        line = sighup_and_wait(srv)
        assert "JWTD_LOG_LEVEL" in field(line, "applied"), line
        assert srv.running()
        assert srv.stop() == 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# 4. files
# --------------------------------------------------------------------------

def test_database_files_are_private_whatever_the_umask(jwtd_factory):
    """Trap: started from a shell with umask 000 (or 022), the SQLite file
    holding private keys and password hashes, and its -wal/-shm files, were
    readable by every local user. They are created 0600."""
    srv = jwtd_factory(start=False)
    sqlite_only(srv)
    cli_tmp = tempfile.mkdtemp(prefix="jwtd-e2e-umask-")
    os.chmod(cli_tmp, 0o755)
    cli_db = os.path.join(cli_tmp, "cli.db")
    old = os.umask(0)
    try:
        srv.start(wait=False)
        p = jwtd(["migrate"], env={"JWTD_DATABASE": "sqlite:" + cli_db})
    finally:
        os.umask(old)
    try:
        srv.wait_ready()
        assert p.returncode == 0, err(p)
        assert oct(os.stat(cli_db).st_mode & 0o777) == oct(0o600), "jwtd migrate: %o" % (
            os.stat(cli_db).st_mode & 0o777)
        c = srv.client()
        signup(c)                 # writes: the WAL is in use
        path = srv.db.url[len("sqlite:"):]
        for f in (path, path + "-wal", path + "-shm"):
            wait_for(lambda: os.path.exists(f), what=f)
            mode = os.stat(f).st_mode & 0o777
            assert mode == 0o600, "%s has mode %o" % (f, mode)
        c.close()
    finally:
        shutil.rmtree(cli_tmp, ignore_errors=True)


def test_world_readable_database_is_reported(jwtd_factory):
    """Trap: a database copied with `cp` (mode 0644) kept serving with keys
    readable by everyone and nobody noticed; `jwtd serve` logs a
    storage_warning naming the file."""
    srv = jwtd_factory(start=False)
    sqlite_only(srv)
    path = srv.db.url[len("sqlite:"):]
    p = jwtd(["migrate"], env={"JWTD_DATABASE": srv.db.url})
    assert p.returncode == 0, err(p)
    os.chmod(path, 0o644)
    srv.start()
    wait_for(lambda: "storage_warning" in srv.log(), what="a storage_warning")
    line = [l for l in srv.log().splitlines() if "storage_warning" in l][0]
    assert path in line and "644" in line, line


# --------------------------------------------------------------------------
# 5. account administration on a serving database
# --------------------------------------------------------------------------

def _refused_within(c, token, since):
    assert_refused_within(c, token, since, bound=1.0, paths=("/auth/me",), interval=POLL,
                          give_up=2.0)


def test_user_passwd(server, client):
    """Trap: an operator reset a password by delete + add, which changed the
    user id and orphaned the user's data, while a thief's access tokens kept
    working. `user passwd` keeps the id, the old password stops working, the
    new one works, and every session of the account ends within a second."""
    username, password, user = signup(client)
    tokens = login(client, username, password)
    new = strong_password()
    p = cli(server, "user", "passwd", username, "--password-stdin", input=(new + "\n").encode())
    since = time.monotonic()
    assert p.returncode == 0, err(p)
    _refused_within(client, tokens["access_token"], since)
    assert new not in out(p) + err(p)
    assert_error(client.post("/auth/login", {"username": username, "password": password}),
                 401, "invalid_credentials")
    assert login(client, username, new)["user"]["id"] == user["id"]
    assert_invalid_grant(refresh(client, tokens["refresh_token"]))


def test_user_disable_and_enable(server, client):
    """Trap: a leaver's account was "disabled" by changing its password, and
    the refresh tokens on their laptop kept minting access tokens. `user
    disable` ends every session within a second and refuses logins (403
    account_disabled, only with the right password) and refreshes until
    `user enable`."""
    username, password, user = signup(client)
    tokens = login(client, username, password)
    p = cli(server, "user", "disable", username)
    since = time.monotonic()
    assert p.returncode == 0, err(p)
    _refused_within(client, tokens["access_token"], since)
    assert_error(client.post("/auth/login", {"username": username, "password": password}),
                 403, "account_disabled")
    assert_error(client.post("/auth/login", {"username": username, "password": password + "x"}),
                 401, "invalid_credentials")
    assert_invalid_grant(refresh(client, tokens["refresh_token"]))
    p = cli(server, "user", "enable", username)
    assert p.returncode == 0, err(p)
    assert login(client, username, password)["user"]["id"] == user["id"]


def test_user_unlock(server, client):
    """Trap: a user locked out by a password-guessing bot had to wait out the
    back-off; `user unlock` lets the right password in at once. (The bot
    guesses from an address of its own; after the unlock its guesses count
    against the account afresh.)"""
    username, password, _ = signup(client)
    bot = server.client(source="127.0.0.%d" % (2 + secrets.randbelow(250)))
    for i in range(10):
        assert_error(bot.post("/auth/login", {"username": username,
                                              "password": "wrong-%d-%s" % (i, password)}),
                     401, "invalid_credentials")
    assert_error(client.post("/auth/login", {"username": username, "password": password}),
                 429, "too_many_attempts")
    p = cli(server, "user", "unlock", username)
    assert p.returncode == 0, err(p)
    login(client, username, password)
    assert_error(bot.post("/auth/login", {"username": username, "password": "wrong-again"}),
                 401, "invalid_credentials")
    bot.close()


def test_user_logout(server, client):
    """Trap: after a stolen laptop the operator had no way to end a user's
    sessions short of deleting the account. `user logout` ends every session:
    access tokens refused within a second, refresh tokens refused."""
    username, password, _ = signup(client)
    sessions = [login(client, username, password) for _ in range(2)]
    p = cli(server, "user", "logout", username)
    since = time.monotonic()
    assert p.returncode == 0, err(p)
    for s in sessions:
        _refused_within(client, s["access_token"], since)
    for s in sessions:
        assert_invalid_grant(refresh(client, s["refresh_token"]))


def test_user_show(server, client):
    """Trap: to answer "why can't I log in?" the operator had to query the
    database by hand. `user show` prints the id, status, live sessions and
    failed logins; an unknown user is exit 1."""
    username, password, user = signup(client)
    login(client, username, password)
    login(client, username, password)
    assert_error(client.post("/auth/login", {"username": username, "password": "nope-" + password}),
                 401, "invalid_credentials")
    p = cli(server, "user", "show", username)
    assert p.returncode == 0, err(p)
    text = out(p)
    assert re.search(r"^id:\s+%s$" % user["id"], text, re.M), text
    assert re.search(r"^status:\s+active$", text, re.M), text
    assert re.search(r"^live sessions:\s+2$", text, re.M), text
    assert re.search(r"\b1 failed login", text), text
    assert cli(server, "user", "disable", username).returncode == 0
    text = out(cli(server, "user", "show", username))
    assert re.search(r"^status:\s+disabled", text, re.M), text
    assert re.search(r"^live sessions:\s+0$", text, re.M), text


@pytest.mark.parametrize("sub", ["show", "disable", "enable", "unlock", "logout", "delete",
                                 "passwd"])
def test_unknown_user_exits_1(server, sub):
    """Trap: a typo in the username made `user disable` print nothing and exit
    0, so the operator believed the account was disabled."""
    p = cli(server, "user", sub, uname("ghost"), input=b"Pw-" + secrets.token_hex(8).encode()
            + b"\n")
    assert p.returncode == 1, (p.returncode, out(p), err(p))
    assert err(p).strip(), "no reason given"


HELP_COMMANDS = ([["--help"], ["serve", "--help"], ["migrate", "--help"],
                  ["user", "--help"], ["keys", "--help"], ["token", "--help"],
                  ["config", "--help"]]
                 + [["version", "--help"]]
                 + [["user", s, "--help"] for s in ("add", "import", "list", "show", "delete",
                                                    "passwd", "disable", "enable", "unlock",
                                                    "logout", "reset-link", "mfa-reset")]
                 + [["keys", s, "--help"] for s in ("list", "rotate", "retire")]
                 + [["token", s, "--help"] for s in ("inspect", "verify")]
                 + [["config", s, "--help"] for s in ("check", "settings")])


@pytest.mark.parametrize("args", HELP_COMMANDS, ids=[" ".join(a) for a in HELP_COMMANDS])
def test_help_touches_nothing(args):
    """Trap: `jwtd token verify --help` opened the default database and left a
    stray cli.db (or jwtd.db) in the working directory. Every --help prints
    its usage on stdout, exits 0 and creates no file."""
    tmp = tempfile.mkdtemp(prefix="jwtd-e2e-help-")
    try:
        p = jwtd(args, cwd=tmp)
        assert p.returncode == 0, (p.returncode, err(p))
        assert "usage" in out(p).lower(), out(p)
        assert os.listdir(tmp) == [], "jwtd %s created %s" % (" ".join(args), os.listdir(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_mistyped_database_path_creates_nothing():
    """Trap: `jwtd user list` with a mistyped JWTD_DATABASE created an empty
    database there and listed no users, and the operator concluded the users
    were gone; `user disable` on a mistyped path said "no such user" and left
    a new database (`keys retire` even a new signing key). Commands that read,
    or act on an existing account or key, exit 1 and create nothing."""
    tmp = tempfile.mkdtemp(prefix="jwtd-e2e-nodb-")
    try:
        env = {"JWTD_DATABASE": "sqlite:" + os.path.join(tmp, "does-not-exist.db")}
        for args in (["user", "list"], ["user", "show", "someone"], ["keys", "list"],
                     ["token", "verify", "a.b.c"], ["user", "delete", "someone"],
                     ["user", "disable", "someone"], ["user", "enable", "someone"],
                     ["user", "unlock", "someone"], ["user", "logout", "someone"],
                     ["user", "reset-link", "someone"], ["user", "mfa-reset", "someone"],
                     ["user", "passwd", "someone", "--password-stdin"],
                     ["keys", "retire", "some-kid"]):
            p = jwtd(args, env=env, cwd=tmp)
            assert p.returncode == 1, (args, p.returncode, err(p))
            assert err(p).strip()
            assert os.listdir(tmp) == [], "%s created %s" % (args, os.listdir(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_bad_input_is_refused_before_a_database_is_made(tmp_path):
    """Trap: `jwtd user import bob --password-hash nothash` exited 2 and
    `jwtd user add bob --email notanemail` exited 1, each after creating and
    migrating ./jwtd.db. Input that needs no database is checked first:
    exit 2, nothing created."""
    env = {"JWTD_DATABASE": "sqlite:" + str(tmp_path / "jwtd.db")}
    for args, inp, want in (
            (["user", "import", uname(), "--password-hash", "nothash"], None, "unsupported hash"),
            (["user", "add", uname(), "--email", "notanemail", "--password-stdin"],
             b"Correct-Horse-9-Battery\n", "--email: not an e-mail address")):
        p = jwtd(args, env=env, input=inp, cwd=str(tmp_path))
        assert p.returncode == 2 and want in err(p), (args, p.returncode, err(p))
        assert os.listdir(str(tmp_path)) == [], (args, os.listdir(str(tmp_path)))


NO_WRITE_COMMANDS = [["user", "list"], ["user", "show", "someone"], ["keys", "list"],
                     ["user", "disable", "someone"], ["keys", "retire", "some-kid"]]


WRITING_COMMANDS = [["migrate"], ["user", "add", "walker", "--password-stdin"],
                    ["keys", "rotate"], ["serve"]]


@pytest.mark.parametrize("args", WRITING_COMMANDS, ids=[" ".join(a) for a in WRITING_COMMANDS])
def test_another_applications_sqlite_file_gets_no_jwtd_tables(args, tmp_path):
    """Found by an operator walk-through: `jwtd migrate` (and every command
    that may create a database: user add, keys rotate, serve) pointed at
    another application's SQLite file added jwtd's 15 tables beside its own
    (and switched it to WAL). A SQLite file with tables and no jwtd schema is
    now refused: exit 1, one line that says so, the file byte for byte as it
    was. A new or empty file is still made into a jwtd database."""
    import hashlib
    import sqlite3
    other = tmp_path / "other.db"
    con = sqlite3.connect(str(other))
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    con.commit()
    con.close()
    before = hashlib.sha256(other.read_bytes()).hexdigest()
    env = {"JWTD_DATABASE": "sqlite:" + str(other), "JWTD_LISTEN": "127.0.0.1:%d" % free_port()}
    p = jwtd(args, env=env, cwd=str(tmp_path), input=(strong_password() + "\n").encode())
    assert p.returncode == 1, (args, p.returncode, err(p))
    assert "another application's tables" in err(p), err(p)
    assert hashlib.sha256(other.read_bytes()).hexdigest() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["other.db"]
    # a new file beside it is fine
    env["JWTD_DATABASE"] = "sqlite:" + str(tmp_path / "jwtd.db")
    if args != ["serve"]:
        p = jwtd(args, env=env, cwd=str(tmp_path), input=(strong_password() + "\n").encode())
        assert p.returncode == 0, (args, err(p))


@pytest.mark.parametrize("args", NO_WRITE_COMMANDS, ids=[" ".join(a) for a in NO_WRITE_COMMANDS])
def test_database_without_jwtd_schema_is_left_alone(args):
    """Trap: a command that only reads (or acts on an existing account or
    key) migrated whatever database it was pointed at: an empty file became
    a 150 KB jwtd database, another application's database would have got
    jwtd's tables. It now exits 1, says there is no jwtd database there,
    and makes no table. Nor does it change the files at all (seen: the
    other database switched to WAL mode, the empty file given a header)."""
    import hashlib
    import sqlite3
    tmp = tempfile.mkdtemp(prefix="jwtd-e2e-noschema-")
    try:
        empty = os.path.join(tmp, "empty.db")
        open(empty, "wb").close()
        other = os.path.join(tmp, "other.db")
        con = sqlite3.connect(other)
        con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
        con.commit()
        con.close()

        def digest(path):
            with open(path, "rb") as f:
                return hashlib.sha256(f.read()).hexdigest()
        before = {path: digest(path) for path in (empty, other)}
        for path in (empty, other):
            p = jwtd(args, env={"JWTD_DATABASE": "sqlite:" + path}, cwd=tmp)
            assert p.returncode == 1, (args, p.returncode, err(p))
            assert "no jwtd database" in err(p), err(p)
            # Its advice is what `jwtd migrate` does with a SQLite file: it
            # refuses another application's (found by an audit: the line said
            # migrate would make jwtd's tables "beside any other
            # application's tables", which it then refused to do).
            assert "beside any other application's tables" not in err(p), err(p)
            assert "never in a file holding another application's tables" in err(p), err(p)
        assert {path: digest(path) for path in (empty, other)} == before, \
            "%s changed a database that is not jwtd's" % args
        assert sorted(os.listdir(tmp)) == ["empty.db", "other.db"], os.listdir(tmp)

        def tables(path):
            con = sqlite3.connect(path)
            try:
                return sorted(r[0] for r in con.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"))
            finally:
                con.close()
        assert tables(empty) == []
        assert tables(other) == ["invoices"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


USAGE_ERRORS = [["user", "show"], ["user", "passwd"], ["user", "disable"], ["user", "frobnicate"],
                ["user", "list", "--no-such-option"], ["user", "show", "a", "b"],
                ["user", "show", "no spaces"], ["user", "disable", "x"],
                ["keys", "frobnicate"], ["keys", "rotate", "--no-such-option"],
                ["keys", "rotate", "--alg", "XX"], ["keys", "rotate", "--alg", "none"],
                ["keys", "retire"], ["token", "frobnicate"], ["token", "verify"],
                ["token", "inspect", "a.b.c", "--config", "/etc/jwtd/jwtd.conf"],
                ["token", "inspect", "a.b.c", "--access-ttl=5m"],
                ["config", "settings", "--roff", "--markdown"],
                ["config", "settings", "--config", "/etc/jwtd/jwtd.conf"],
                ["version", "--nope"], ["version", "extra"],
                ["config", "frobnicate"], ["frobnicate"], [],
                # no password on stdin (DEVNULL): said before the database is made
                ["user", "add", "someone"], ["user", "add", "someone", "--password-stdin"]]


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=[" ".join(a) or "(none)" for a in USAGE_ERRORS])
def test_usage_errors_exit_2(args):
    """Trap: scripts could not tell a typo from a runtime failure. Usage
    errors (missing username, unknown subcommand or option) exit 2 and touch
    nothing."""
    tmp = tempfile.mkdtemp(prefix="jwtd-e2e-usage-")
    try:
        env = {"JWTD_DATABASE": "sqlite:" + os.path.join(tmp, "jwtd.db")}
        p = jwtd(args, env=env, cwd=tmp)
        assert p.returncode == 2, (args, p.returncode, out(p), err(p))
        assert err(p).strip(), "no explanation on stderr"
        assert os.listdir(tmp) == [], "%s created %s" % (args, os.listdir(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_database_password_never_printed():
    """Trap: a PostgreSQL URL the driver could not parse came back whole in
    the error line, password included, into a terminal's scroll-back and a
    CI log. Whatever the driver says, the password is shown as ***."""
    secret = "pw" + secrets.token_hex(8)
    tmp = tempfile.mkdtemp(prefix="jwtd-e2e-pgsecret-")
    try:
        for url in ("postgres://u:%s@[bad" % secret,
                    "postgres://u:%s@127.0.0.1:1/db?sslmode=disable" % secret,
                    "postgres://u@127.0.0.1:1/db?password=%s&sslmode=disable" % secret):
            for args in (["user", "list"], ["migrate"], ["config", "check"]):
                p = jwtd(args + ["--database=" + url], cwd=tmp)
                assert secret not in out(p) + err(p), (args, out(p), err(p))
                if args[0] != "config":
                    # 1: the driver's error; 2: a build without PostgreSQL
                    no_pg = "without PostgreSQL" in err(p)
                    assert p.returncode == (2 if no_pg else 1), (args, p.returncode, err(p))
                    assert "PostgreSQL" in err(p), err(p)
        p = jwtd(["user", "list", "--database=postgres://u:%s@[bad" % secret], cwd=tmp)
        if "without PostgreSQL" not in err(p):  # the driver's error, the URL redacted
            assert "postgres://u:***@[bad" in err(p), err(p)
        assert os.listdir(tmp) == []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_config_check_shows_the_algorithm_serve_uses(tmp_path):
    """Trap: with only a shared secret set, `jwtd config check` said
    `jwt_alg = ES256 # default` while the server signed with HS256."""
    p = jwtd(["config", "check", "--database=sqlite:" + str(tmp_path / "x.db")],
             env={"JWTD_JWT_SECRET": secrets.token_hex(20)})
    assert p.returncode == 0, err(p)
    assert re.search(r"^jwt_alg\s+= HS256\s+# derived$", out(p), re.M), out(p)
    assert not (tmp_path / "x.db").exists()


def test_rules_between_settings_name_the_file_and_line(tmp_path):
    """Trap: `JWTD_JWT_SECRET: too short` from a 40-line file, and no line
    number. Errors of the rules between settings name where the setting was
    set, like the errors of single values."""
    conf = tmp_path / "jwtd.conf"
    conf.write_text("# jwtd\nlisten = 127.0.0.1:1\njwt_secret = %s\n" % ("s" * 20))
    p = jwtd(["config", "check", "--config", str(conf)])
    assert p.returncode == 2, err(p)
    assert "JWTD_JWT_SECRET (%s line 3)" % conf in err(p), err(p)
    assert "s" * 20 not in err(p)
    conf.write_text("jwt_alg = ES256\njwt_secret = %s\n" % ("s" * 40))
    p = jwtd(["config", "check", "--config", str(conf)])
    assert p.returncode == 2 and "(%s line 2)" % conf in err(p), err(p)


def test_rotate_under_hs256_creates_nothing(tmp_path):
    """Trap: `keys rotate` under HS256 (or with a bad --alg) refused, and left
    an empty database behind, root-owned when run with sudo."""
    env = {"JWTD_DATABASE": "sqlite:" + str(tmp_path / "k.db"),
           "JWTD_JWT_SECRET": secrets.token_hex(20)}
    p = jwtd(["keys", "rotate"], env=env, cwd=str(tmp_path))
    assert p.returncode == 1 and "JWTD_JWT_SECRET" in err(p), err(p)
    assert os.listdir(str(tmp_path)) == []


def test_keys_list_under_hs256_does_not_deny_the_keys_it_lists(tmp_path):
    """Trap: `keys list` under HS256 said "no keys are stored or published"
    and then listed the keys an earlier ES256 configuration had stored."""
    db = "sqlite:" + str(tmp_path / "k.db")
    p = jwtd(["keys", "rotate"], env={"JWTD_DATABASE": db, "JWTD_JWT_ALG": "ES256"})
    assert p.returncode == 0, err(p)
    kid = out(p).split("\t")[0]
    hs = {"JWTD_DATABASE": db, "JWTD_JWT_ALG": "HS256", "JWTD_JWT_SECRET": secrets.token_hex(20)}
    p = jwtd(["keys", "list"], env=hs)
    assert p.returncode == 0 and kid in out(p), (out(p), err(p))
    assert "no keys are stored" not in err(p), err(p)
    assert "not used" in err(p) and "JWTD_JWT_SECRET" in err(p), err(p)
    hs["JWTD_DATABASE"] = "sqlite:" + str(tmp_path / "empty.db")
    assert jwtd(["migrate"], env=hs).returncode == 0
    p = jwtd(["keys", "list"], env=hs)
    assert p.returncode == 0 and out(p) == "", (out(p), err(p))
    assert "no key is published" in err(p) and "the keys above" not in err(p), err(p)


def test_rotate_with_a_key_already_published_ahead_says_no_new_key(tmp_path):
    """Trap: with a next key already published, `keys rotate` printed it as if
    made now ("signs from 3600 s from now", whatever its own time) and
    `rotate --now` promoted it silently, so the documented response to a
    compromise ("a new key signs from now on") kept a key from the exposed
    database. Now both say no new key was made, with the key's own time,
    and a second `--now` does make a new key."""
    env = {"JWTD_DATABASE": "sqlite:" + str(tmp_path / "r.db"), "JWTD_KEY_PUBLISH_AHEAD": "1h"}
    assert jwtd(["keys", "rotate", "--now"], env=env).returncode == 0
    p = jwtd(["keys", "rotate"], env=env)
    assert p.returncode == 0 and "no new key" not in err(p), err(p)
    nxt = out(p).split("\t")[0]
    time.sleep(2.2)
    p = jwtd(["keys", "rotate"], env=env)
    assert p.returncode == 0 and out(p).split("\t")[0] == nxt, out(p)
    left = int(re.search(r"signs from (\d+) s from now", out(p)).group(1))
    assert 3590 <= left <= 3598, out(p)                  # its own time, not a fresh hour
    assert "no new key was made" in err(p) and "--purge" in err(p), err(p)
    p = jwtd(["keys", "rotate", "--now"], env=env)
    assert p.returncode == 0 and out(p).split("\t")[0] == nxt, out(p)
    assert "no new key was made" in err(p) and "rotate --now` again" in err(p), err(p)
    p = jwtd(["keys", "rotate", "--now"], env=env)
    fresh = out(p).split("\t")[0]
    assert p.returncode == 0 and fresh != nxt and "no new key" not in err(p), (out(p), err(p))
    rows = {r[0]: r[2] for r in key_list(env)[1]}
    assert rows[fresh] == "current" and rows[nxt] == "retired", rows


def test_user_delete_names_the_account_as_stored(tmp_path):
    """Trap: `user delete BOB` printed "deleted BOB" for the account "bob"
    (names match case-insensitively): which account went was not said."""
    env = {"JWTD_DATABASE": "sqlite:" + str(tmp_path / "d.db")}
    name = "Mixed-" + secrets.token_hex(3)
    p = jwtd(["user", "add", name, "--password-stdin"], env=env,
             input=(strong_password() + "\n").encode())
    assert p.returncode == 0, err(p)
    uid = out(p).split("\t")[0]
    p = jwtd(["user", "delete", name.upper()], env=env)
    assert p.returncode == 0 and out(p) == "deleted %s\t%s\n" % (uid, name), (out(p), err(p))
    p = jwtd(["user", "delete", name], env=env)
    assert p.returncode == 1 and out(p) == "", (out(p), err(p))


def test_keys_list_of_a_keyless_database_says_so(tmp_path):
    """Trap: `keys list` of a migrated database without keys printed nothing
    at all, exit 0: a person could not tell an empty ring from a wrong file."""
    env = {"JWTD_DATABASE": "sqlite:" + str(tmp_path / "none.db")}
    assert jwtd(["migrate"], env=env).returncode == 0
    p = jwtd(["keys", "list"], env=env)
    assert p.returncode == 0 and out(p) == "", (out(p), err(p))   # scripts see no row
    assert "no signing keys yet" in err(p) and "keys rotate" in err(p), err(p)
    assert jwtd(["keys", "rotate"], env=env).returncode == 0
    p = jwtd(["keys", "list"], env=env)
    assert p.returncode == 0 and len(out(p).splitlines()) == 1, out(p)
    assert "no signing keys" not in err(p), err(p)


def test_database_of_another_user_says_whose_permission_is_missing():
    """Trap: `jwtd user list` run as a user who may read the database file
    but not write it or its directory said "cannot read SQLite database:
    attempt to write a readonly database" (reading a WAL database needs the
    -shm file): now the message names what this user cannot do."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root and runuser(1) to act as another user")
    if not os.access(jwtd_bin(), os.X_OK) or os.stat(jwtd_bin()).st_mode & 0o001 == 0:
        pytest.skip("the binary is not executable by other users")
    tmp = tempfile.mkdtemp(prefix="jwtd-e2e-perm-")
    try:
        os.chmod(tmp, 0o755)
        path = os.path.join(tmp, "p.db")
        assert jwtd(["migrate"], env={"JWTD_DATABASE": "sqlite:" + path}).returncode == 0
        env = clean_env({"JWTD_DATABASE": "sqlite:" + path})

        def as_nobody(mode):
            os.chmod(path, mode)
            return subprocess.run(["runuser", "-u", "nobody", "--", jwtd_bin(), "user", "list"],
                                  env=env, cwd="/", stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=60)
        for mode, what in ((0o600, "cannot read the file"), (0o644, "cannot write the file"),
                           (0o666, "cannot create files in its directory")):
            p = as_nobody(mode)
            if p.returncode in (126, 127):
                pytest.skip("the binary's directory is not reachable by nobody: " + err(p))
            assert p.returncode == 1, (mode, out(p), err(p))
            assert what in err(p) and "run the command as the service's user" in err(p), err(p)
        assert sorted(os.listdir(tmp)) == ["p.db"]          # nothing made beside it
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_user_list_is_oldest_first_and_disable_keeps_its_time(tmp_path):
    """Trap: `user list` promised oldest first but sorted by name within a
    second; disabling a disabled account again moved its "disabled since"."""
    env = {"JWTD_DATABASE": "sqlite:" + str(tmp_path / "u.db")}
    names = ["zz-" + secrets.token_hex(3), "mm-" + secrets.token_hex(3),
             "aa-" + secrets.token_hex(3)]
    for n in names:
        p = jwtd(["user", "add", n, "--password-stdin"], env=env,
                 input=(strong_password() + "\n").encode())
        assert p.returncode == 0, err(p)
    listed = [line.split("\t")[1] for line in out(jwtd(["user", "list"], env=env)).splitlines()]
    assert listed == names, listed
    assert jwtd(["user", "disable", names[0]], env=env).returncode == 0
    first = re.search(r"^status:.*$", out(jwtd(["user", "show", names[0]], env=env)), re.M).group(0)
    assert "disabled since" in first
    time.sleep(1.1)  # the time is kept in whole seconds
    assert jwtd(["user", "disable", names[0]], env=env).returncode == 0
    again = re.search(r"^status:.*$", out(jwtd(["user", "show", names[0]], env=env)), re.M).group(0)
    assert again == first


def test_taken_email_is_said_in_words(tmp_path):
    """Trap: `jwtd: email_taken`, a machine code, where a taken username got a
    sentence."""
    env = {"JWTD_DATABASE": "sqlite:" + str(tmp_path / "e.db")}
    addr = "someone-%s@example.com" % secrets.token_hex(3)
    for i, expect in ((0, 0), (1, 1)):
        p = jwtd(["user", "add", uname(), "--email", addr, "--password-stdin"], env=env,
                 input=(strong_password() + "\n").encode())
        assert p.returncode == expect, err(p)
    assert "e-mail address belongs to another account" in err(p), err(p)


# --------------------------------------------------------------------------
# 6. passwords typed on a terminal
# --------------------------------------------------------------------------

def _take_the_terminal():
    """In the child, after setsid: make the pty (stdin) the controlling
    terminal, so that Ctrl-C typed there is a SIGINT as in a shell; and no
    core file from a Ctrl-\\ (SIGQUIT) in the tree."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_in_pty(args, env, answers, timeout=30):
    """Run jwtd with stdin/stdout/stderr on a pseudo-terminal, its controlling
    terminal. `answers` is a list of (prompt regex, answer): each answer is
    given once its prompt has appeared AND the terminal's echo is off (typing
    earlier would be a human typing before the prompt: echoed, or flushed), or
    2 s after the prompt when the echo stays on. An answer is a str (typed,
    with a newline), bytes (keys typed as they are: b"\\x03" is Ctrl-C) or
    an int (that signal sent to jwtd).
    Returns (returncode, everything the terminal showed, whether the echo was
    on once jwtd had exited)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([jwtd_bin()] + list(args), env=clean_env(env), stdin=slave,
                         stdout=slave, stderr=slave, start_new_session=True, close_fds=True,
                         preexec_fn=_take_the_terminal)
    shown = b""
    pos = 0
    pending = list(answers)
    prompt_seen = None
    deadline = time.monotonic() + timeout * SLOW
    try:
        while True:
            r, _, _ = select.select([master], [], [], POLL)
            if r:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    data = b""
                shown += data
            if pending:
                m = re.search(pending[0][0], shown[pos:])
                if m and prompt_seen is None:
                    prompt_seen = time.monotonic()
                echo_off = not (termios.tcgetattr(slave)[3] & termios.ECHO)
                # A program that never turns the echo off gets the password
                # typed anyway after 2 s, so that the test fails on the echo.
                if m and (echo_off or time.monotonic() - prompt_seen > 2.0 * SLOW):
                    answer = pending[0][1]
                    if isinstance(answer, int):
                        p.send_signal(answer)
                    else:
                        os.write(master, answer if isinstance(answer, bytes)
                                 else answer.encode() + b"\n")
                    pos += m.end()
                    pending.pop(0)
                    prompt_seen = None
            if p.poll() is not None and not r:
                break
            if time.monotonic() > deadline:
                p.kill()
                p.wait()
                raise AssertionError("jwtd %s did not finish; the terminal showed:\n%r"
                                     % (" ".join(args), shown))
        # what is left on the terminal
        while select.select([master], [], [], 0.1)[0]:
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            if not data:
                break
            shown += data
        echo_after = bool(termios.tcgetattr(slave)[3] & termios.ECHO)
    finally:
        os.close(slave)
        os.close(master)
    assert not pending, "jwtd %s never asked for %r; the terminal showed:\n%r" % (
        " ".join(args), [a[0] for a in pending], shown)
    return p.returncode, shown, echo_after


def test_terminal_password_is_not_echoed(server, client):
    """Trap: `jwtd user add` on a terminal showed the password as it was
    typed (and left it in the scrollback / screen recording). On a terminal
    the password is asked twice with echo off and never shown."""
    username = uname("tty")
    pw = strong_password()
    rc, shown, echo = run_in_pty(["user", "add", username], db_env(server),
                                 [(rb"(?i)password", pw), (rb"(?i)again", pw)])
    assert rc == 0 and echo, shown
    assert pw.encode() not in shown, "the password was echoed: %r" % shown
    login(client, username, pw)

    new = strong_password()
    rc, shown, echo = run_in_pty(["user", "passwd", username], db_env(server),
                                 [(rb"(?i)password", new), (rb"(?i)again", new)])
    assert rc == 0 and echo, shown
    assert new.encode() not in shown, "the password was echoed: %r" % shown
    login(client, username, new)
    assert_error(client.post("/auth/login", {"username": username, "password": pw}),
                 401, "invalid_credentials")


def test_password_stdin_at_a_terminal_is_not_echoed(server, client):
    """Trap: `jwtd user add NAME --password-stdin` typed at a terminal
    waited without a prompt and showed the password as it was typed. At a
    terminal it is read once, with the echo off."""
    username = uname("tty")
    pw = strong_password()
    rc, shown, echo = run_in_pty(["user", "add", username, "--password-stdin"],
                                 db_env(server), [(rb"(?i)password", pw)])
    assert rc == 0 and echo, shown
    assert pw.encode() not in shown, "the password was echoed: %r" % shown
    login(client, username, pw)


def test_terminal_password_mismatch_creates_nothing(server):
    """Trap: a typo in a password typed blind created an account nobody
    could log in to. The two entries must match; otherwise exit 1, nothing
    created."""
    username = uname("tty")
    pw = strong_password()
    rc, shown, echo = run_in_pty(["user", "add", username], db_env(server),
                                 [(rb"(?i)password", pw), (rb"(?i)again", pw + "x")])
    assert rc == 1 and echo, (rc, shown)
    assert pw.encode() not in shown, shown
    p = cli(server, "user", "show", username)
    assert p.returncode == 1, "a mismatched entry created the account: %s" % out(p)


INTERRUPTIONS = [("Ctrl-C", b"\x03", signal.SIGINT), ("Ctrl-\\", b"\x1c", signal.SIGQUIT),
                 ("SIGTERM", signal.SIGTERM, signal.SIGTERM),
                 ("SIGHUP", signal.SIGHUP, signal.SIGHUP)]


@pytest.mark.parametrize("at", ["first", "again"])
@pytest.mark.parametrize("how,answer,sig", INTERRUPTIONS, ids=[i[0] for i in INTERRUPTIONS])
def test_interrupted_password_prompt_gives_the_echo_back(server, client, how, answer, sig, at):
    """Trap: Ctrl-C at the password prompt of `jwtd user passwd` left the
    terminal with its echo off: the shell showed nothing typed until `stty
    sane`. A signal that ends jwtd at the prompt (Ctrl-C, Ctrl-\\, a hang-up,
    kill) turns the echo back on first; then jwtd dies of that signal, so a
    shell or script sees why, and nothing changed."""
    username, password, _ = signup(client)
    typed = strong_password()
    answers = [(rb"(?i)password", answer)]
    if at == "again":
        answers = [(rb"(?i)password", typed), (rb"(?i)again", answer)]
    rc, shown, echo = run_in_pty(["user", "passwd", username], db_env(server), answers)
    assert echo, "the terminal's echo stayed off after %s: %r" % (how, shown)
    assert rc == -sig, (how, rc, shown)
    assert typed.encode() not in shown, shown
    login(client, username, password)


def test_ctrl_z_at_the_password_prompt_asks_again(server, client):
    """Trap (with the one above): Ctrl-Z at the prompt stopped jwtd with the
    echo off, so the shell the terminal went back to echoed nothing. The
    echo is turned back on before jwtd stops; once continued it asks again
    from the start. (Here jwtd's process group has no shell to stop it for,
    so the kernel drops the stop and jwtd asks again at once.)"""
    username, _, _ = signup(client)
    new = strong_password()
    rc, shown, echo = run_in_pty(["user", "passwd", username], db_env(server),
                                 [(rb"(?i)password", new), (rb"(?i)again", b"\x1a"),
                                  (rb"(?i)password", new), (rb"(?i)again", new)])
    assert rc == 0 and echo, (rc, shown)
    assert new.encode() not in shown, shown
    login(client, username, new)


# --------------------------------------------------------------------------
# 7. password policy over HTTP
# --------------------------------------------------------------------------

PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7f))


def test_password_policy_accepts_strong_and_refuses_common(client):
    """Trap: composition and "systematic" heuristics refused good random
    passwords from password managers (and long passphrases), while
    "password1" passed. Random 16-64 character printable passwords and a
    1024-byte one are accepted; common passwords are 422 weak_password."""
    for _ in range(20):
        pw = "".join(secrets.choice(PRINTABLE) for _ in range(16 + secrets.randbelow(49)))
        r = client.post("/auth/signup", {"username": uname("pp"), "password": pw})
        assert r.status == 201, "random password %r refused: %r" % (pw, r)
    r = client.post("/auth/signup", {"username": uname("pp"), "password": "Ab1!" * 256})
    assert r.status == 201, r
    for pw in ("password1", "iloveyou", "12345678", "qwertyuiop",
               # among the most used, and in no list: short repeats, sequences,
               # keyboard rows and dates (core/weakpattern.h)
               "88888888", "123123123", "987654321", "abcdefgh", "poiuytrewq", "01012009"):
        r = client.post("/auth/signup", {"username": uname("pp"), "password": pw})
        assert_error(r, 422, "weak_password")


# --------------------------------------------------------------------------
# 8. audit events and request ids
# --------------------------------------------------------------------------

def _json_lines(text, where):
    events = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except ValueError:
            raise AssertionError("not a JSON log line in the %s: %r" % (where, line))
    return events


def test_audit_events_carry_the_request_id(jwtd_factory):
    """Trap: a security review could not tie a suspicious login in the log to
    the request the client saw, and "audit":"true" strings broke the SIEM's
    filters. Every response has an X-Request-Id; each security event is an
    audit event (JSON boolean "audit", an "outcome", the request id); numbers
    are numbers and booleans booleans; the CLI writes its audit event on
    stderr; no password or token is ever logged."""
    srv = jwtd_factory(env={"JWTD_LOG_FORMAT": "json", "JWTD_LOG_LEVEL": "debug",
                            "JWTD_REFRESH_REUSE_INTERVAL": "0"})
    c = srv.client()
    secrets_seen = []
    expected = {}          # event -> request id

    def rid(r):
        v = r.header("X-Request-Id")
        assert_uuid(v)
        return v

    r = c.get("/healthz")
    rid(r)
    rid(c.get("/no/such/path"))
    username, password, user = signup(c)
    rid(c.history[-1])
    secrets_seen.append(password)

    r = c.post("/auth/login", {"username": username, "password": password})
    assert r.status == 200, r
    expected["login"] = rid(r)
    t1 = r.json
    secrets_seen += [t1["access_token"], t1["refresh_token"]]

    wrong = "Wrong-" + secrets.token_hex(10)
    secrets_seen.append(wrong)
    r = c.post("/auth/login", {"username": username, "password": wrong})
    assert r.status == 401, r
    expected["login_failed"] = rid(r)

    garbage = "garbage-" + secrets.token_urlsafe(40)
    secrets_seen.append(garbage)
    r = refresh(c, garbage)
    assert r.status == 401, r
    expected["refresh_refused"] = rid(r)

    r = refresh(c, t1["refresh_token"])
    assert r.status == 200, r
    secrets_seen += [r.json["access_token"], r.json["refresh_token"]]
    r = refresh(c, t1["refresh_token"])                      # reuse of a rotated token
    assert r.status == 401, r
    expected["refresh_token_reuse"] = rid(r)

    t2 = login(c, username, password)
    secrets_seen += [t2["access_token"], t2["refresh_token"]]
    new = strong_password()
    secrets_seen.append(new)
    r = c.post("/auth/password", {"current_password": password, "new_password": new},
               token=t2["access_token"])
    assert r.status == 204, r
    expected["password_changed"] = rid(r)

    p = cli(srv, "user", "disable", username, env={"JWTD_LOG_FORMAT": "json"})
    assert p.returncode == 0, err(p)
    cli_events = _json_lines(err(p), "CLI's stderr")
    dis = [e for e in cli_events if e.get("event") == "user_disabled"]
    assert len(dis) == 1, cli_events
    assert dis[0]["audit"] is True and dis[0]["outcome"] == "ok", dis[0]
    assert dis[0].get("user_id") == user["id"], dis[0]
    assert type(dis[0]["sessions_revoked"]) is int and dis[0]["sessions_revoked"] == 1, dis[0]

    # Trap: key management left no audit trail (`keys retire --purge`, the
    # answer to a leaked key, logged nothing at all).
    p = cli(srv, "keys", "rotate", env={"JWTD_LOG_FORMAT": "json"})
    assert p.returncode == 0, err(p)
    kid = out(p).split("\t")[0]
    rot = [e for e in _json_lines(err(p), "CLI's stderr") if e.get("event") == "keys_rotate"]
    assert len(rot) == 1 and rot[0]["audit"] is True and rot[0]["outcome"] == "ok", rot
    assert rot[0]["kid"] == kid and rot[0]["actor"] == "operator" and rot[0]["operator"], rot
    assert_uuid(rot[0]["request_id"])
    p = cli(srv, "keys", "retire", kid, "--purge", env={"JWTD_LOG_FORMAT": "json"})
    assert p.returncode == 0, err(p)
    ret = [e for e in _json_lines(err(p), "CLI's stderr") if e.get("event") == "keys_retire"]
    assert len(ret) == 1 and ret[0]["outcome"] == "ok" and ret[0]["kid"] == kid, ret
    assert ret[0]["purge"] is True, ret
    p = cli(srv, "keys", "retire", "no-such-kid", env={"JWTD_LOG_FORMAT": "json"})
    assert p.returncode == 1, err(p)
    ret = [e for e in _json_lines("\n".join(l for l in err(p).splitlines()
                                             if l.startswith("{")), "CLI's stderr")
           if e.get("event") == "keys_retire"]
    assert len(ret) == 1 and ret[0]["outcome"] == "failed", ret
    # a refused operator action is in the trail too
    p = cli(srv, "user", "disable", uname("nobody"), env={"JWTD_LOG_FORMAT": "json"})
    assert p.returncode == 1, err(p)
    bad = [e for e in _json_lines("\n".join(l for l in err(p).splitlines()
                                             if l.startswith("{")), "CLI's stderr")
           if e.get("event") == "operator_command_failed"]
    assert len(bad) == 1 and bad[0]["audit"] is True and bad[0]["outcome"] == "refused", bad
    assert bad[0]["command"] == "disable" and bad[0]["reason"] == "not_found", bad
    assert bad[0]["exit"] == 1 and bad[0]["actor"] == "operator", bad

    def all_there():
        events = _json_lines(srv.log(), "server log")
        by = {}
        for e in events:
            if e.get("request_id") in expected.values():
                by.setdefault(e["event"], []).append(e)
        return (events, by) if all(ev in by for ev in expected) else None
    events, by = wait_for(all_there, what="the audit events of %s" % sorted(expected))
    for ev, req in expected.items():
        mine = [e for e in by[ev] if e["request_id"] == req]
        assert mine, "no %s event with request_id %s; events: %r" % (ev, req, by[ev])
        e = mine[0]
        assert e["audit"] is True, e
        assert isinstance(e["outcome"], str) and e["outcome"], e
    lf = [e for e in by["login_failed"] if e["request_id"] == expected["login_failed"]][0]
    assert lf["user_known"] is True, lf
    reuse = [e for e in by["refresh_token_reuse"]
             if e["request_id"] == expected["refresh_token_reuse"]][0]
    assert reuse.get("user_id") == user["id"], reuse   # whose session it was

    c.close()
    srv.stop()
    events = _json_lines(srv.log(), "server log")
    http = [e for e in events if e.get("event") == "http_request"]
    assert http, "no debug http_request lines"
    for e in http:
        assert type(e["status"]) is int and type(e["us"]) is int, e
        assert type(e.get("completed", True)) is bool, e
    for e in events:
        if "audit" in e:
            assert e["audit"] is True, e
    listening = [e for e in events if e.get("event") == "listening"][0]
    assert type(listening["tls"]) is bool and type(listening["workers"]) is int, listening

    text = srv.output() + out(p) + err(p)
    for s in secrets_seen:
        assert s not in text, "a password or token is in the log: %r" % s


# --------------------------------------------------------------------------
# 9. metrics
# --------------------------------------------------------------------------

def _histogram(text, name, labels):
    """{le: count}, sum, count of one histogram series in Prometheus text."""
    lab = ",".join('%s="%s"' % kv for kv in labels.items())
    pre = lab + "," if lab else ""
    buckets = {}
    for m in re.finditer(r'^%s_bucket\{%sle="([^"]+)"\} (\d+)$' % (re.escape(name), re.escape(pre)),
                         text, re.M):
        buckets[m.group(1)] = int(m.group(2))
    sel = r"\{%s\}" % re.escape(lab) if lab else ""
    s = re.search(r"^%s_sum%s (\S+)$" % (re.escape(name), sel), text, re.M)
    n = re.search(r"^%s_count%s (\d+)$" % (re.escape(name), sel), text, re.M)
    assert buckets and s and n, "no histogram %s{%s} in:\n%s" % (name, lab, text[:3000])
    return buckets, float(s.group(1)), int(n.group(1))


def _check_histogram(buckets, count):
    les = sorted(buckets, key=lambda le: float("inf") if le == "+Inf" else float(le))
    assert les[-1] == "+Inf", les
    vals = [buckets[le] for le in les]
    assert vals == sorted(vals), "buckets are not cumulative: %r" % list(zip(les, vals))
    assert buckets["+Inf"] == count, (buckets, count)


@pytest.mark.parametrize("header", [None, ("X-Forwarded-For", "203.0.113.9"),
                                    ("X-Forwarded-For", "127.0.0.1"),
                                    ("Forwarded", "for=203.0.113.9"),
                                    ("X-Real-IP", "203.0.113.9")],
                         ids=["direct", "xff", "xff-loopback", "forwarded", "x-real-ip"])
def test_metrics_are_not_served_through_a_proxy(server, client, header):
    """Trap: behind the shipped portal proxy (`location /` to jwtd), an
    Internet client read /metrics: the loopback check looked at the socket
    peer, which is the proxy. A request a proxy says it forwarded is
    refused like any other non-loopback reader (404)."""
    r = client.get("/metrics", headers=dict([header]) if header else None)
    if header is None:
        assert r.status == 200, r
    else:
        assert_error(r, 404, "not_found")


def test_metrics_latency_histograms(server, client):
    """Trap: only request counters existed, so a slow login path (hashing
    queue saturated) was invisible until users complained. Per-route latency
    histograms and the hashing queue wait are exported, cumulative, and
    grow with traffic."""
    def metrics():
        r = client.get("/metrics")
        assert r.status == 200, r
        return r.body.decode()
    text = metrics()
    before = {rt: _histogram(text, "jwtd_http_request_duration_seconds", {"route": rt})[2]
              for rt in ("login", "verify")}
    hq_before = _histogram(text, "jwtd_hash_queue_wait_seconds", {})[2]
    assert "# TYPE jwtd_http_request_duration_seconds histogram" in text
    assert "# TYPE jwtd_hash_queue_wait_seconds histogram" in text

    username, password, _ = signup(client)
    tok = login(client, username, password)["access_token"]
    for _ in range(3):
        assert client.get("/auth/verify", token=tok).status == 200

    def grown():
        t = metrics()
        h = {rt: _histogram(t, "jwtd_http_request_duration_seconds", {"route": rt})
             for rt in ("login", "verify")}
        hq = _histogram(t, "jwtd_hash_queue_wait_seconds", {})
        ok = (h["login"][2] >= before["login"] + 1 and h["verify"][2] >= before["verify"] + 3
              and hq[2] >= hq_before + 1)
        return (h, hq) if ok else None
    h, hq = wait_for(grown, what="the histograms to count the new requests")
    for rt, (buckets, total, count) in h.items():
        _check_histogram(buckets, count)
        assert total > 0, (rt, total)
    _check_histogram(hq[0], hq[2])


def test_messages_name_what_the_operator_set(tmp_path):
    """Found by an operator walk-through: with `--config none` (here
    JWTD_CONFIG=none) the new-database warning still blamed the missing
    default files; a refresh TTL over the default absolute one named only
    the setting the operator had not touched, with no values."""
    p = jwtd(["user", "add", "walker", "--password-stdin"],
             input=(strong_password() + "\n").encode(), cwd=str(tmp_path))
    assert p.returncode == 0, err(p)
    assert "no configuration file (--config none)" in err(p), err(p)
    assert "/etc/jwtd" not in err(p), err(p)
    p = jwtd(["config", "check"], env={"JWTD_REFRESH_TTL": "100d"}, cwd=str(tmp_path))
    assert p.returncode == 2, (out(p), err(p))
    line = err(p).strip()
    assert len(line.splitlines()) == 1, line
    assert "JWTD_REFRESH_ABSOLUTE_TTL" in line and "JWTD_REFRESH_TTL" in line, line
    assert "7776000s < 8640000s" in line, line


def test_a_bare_database_path_is_told_how_to_write_it(tmp_path):
    """A path given as JWTD_DATABASE without `sqlite:` is refused with the
    way to write it; a conninfo string (which may hold a password) is still
    not echoed."""
    p = jwtd(["config", "check", "--database=" + str(tmp_path / "x.db")])
    assert p.returncode == 2, err(p)
    assert "(a file: sqlite:%s)" % (tmp_path / "x.db") in err(p), err(p)
    p = jwtd(["config", "check", "--database=host=db password=hunter2-secret"])
    assert p.returncode == 2 and "hunter2" not in err(p), err(p)
    assert list(tmp_path.iterdir()) == []


def test_admin_command_on_a_locked_sqlite_file_says_busy_and_try_again(tmp_path):
    """Found by a load test: `jwtd user mfa-reset` run while the server
    wrote without pause exited 1 with "cannot read or create the mail key",
    which reads like a broken database, not a busy one. With another
    process holding the SQLite write lock past JWTD_DB_TIMEOUT, a command
    that writes says the database is busy and to try again; once the lock
    is gone the same command succeeds."""
    import sqlite3
    env = {"JWTD_DATABASE": "sqlite:" + str(tmp_path / "jwtd.db"), "JWTD_DB_TIMEOUT": "300ms"}
    p = jwtd(["user", "add", "busy-bea", "--password-stdin"], env=env,
             input=(strong_password() + "\n").encode())
    assert p.returncode == 0, err(p)
    con = sqlite3.connect(str(tmp_path / "jwtd.db"), isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    try:
        p = jwtd(["user", "disable", "busy-bea"], env=env)
    finally:
        con.execute("ROLLBACK")
        con.close()
    assert p.returncode == 1, err(p)
    assert "busy" in err(p) and "try again" in err(p), err(p)
    p = jwtd(["user", "disable", "busy-bea"], env=env)
    assert p.returncode == 0, err(p)

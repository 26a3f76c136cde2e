# SPDX-License-Identifier: Apache-2.0
"""Logs: one line per event on stderr, never a password, hash, secret or whole
token; JWTD_LOG_FORMAT=json gives one JSON object per line."""

import json
import secrets
import urllib.parse

import pytest

from e2e_util import (bcrypt_hash, compact, free_port, jwt_parts, new_user_tokens,
                      run_expect_exit, uname)


def _drive(c, users, tokens):
    """Exercise every implemented route with the given users; collect tokens."""
    for username, password in users:
        c.post("/auth/signup", {"username": username, "password": password})
    for username, password in users:
        r = c.post("/auth/login", {"username": username, "password": password})
        if r.status == 200:
            tokens.append(r.json["access_token"])
            tokens.append(r.json["refresh_token"])
    for t in list(tokens):
        c.get("/auth/me", token=t)
        c.get("/auth/verify", token=t)
        r = c.post("/auth/refresh", {"refresh_token": t})      # later milestone: any answer
        if r.status == 200 and isinstance(r.json, dict):
            tokens.extend(r.json[k] for k in ("access_token", "refresh_token") if k in r.json)
    if tokens:
        h, p, s = jwt_parts(tokens[0])
        tampered = compact(h, dict(p, preferred_username="mallory"), s)
        tokens.append(tampered)
        c.get("/auth/me", token=tampered)
        c.get("/auth/verify", token=tampered)


def test_no_secrets_in_logs(jwtd_factory):
    secret = "LOGSCAN-SECRET-" + secrets.token_hex(16)
    srv = jwtd_factory(env={"JWTD_JWT_ALG": "HS256", "JWTD_JWT_SECRET": secret,
                            "JWTD_LOG_LEVEL": "debug"})
    c = srv.client()
    pw1 = "Distinct-Passw0rd-" + secrets.token_hex(8)
    pw2 = "Another-Distinct-Pw-" + secrets.token_hex(8)
    wrong = "Wrong-Guess-Pw-" + secrets.token_hex(8)
    weak_user = uname("weak")
    imported_pw = "Imported-Bcrypt-Pw-" + secrets.token_hex(8)
    imported_user = uname("imported")
    bhash = bcrypt_hash(imported_pw)
    users = [(uname("logscan"), pw1), (uname("logscan"), pw2)]
    tokens = []

    cli = srv.cli("user", "import", imported_user, "--password-hash", bhash,
                  env={"JWTD_LOG_LEVEL": "debug"})
    assert cli.returncode == 0, cli
    cli_list = srv.cli("user", "list", env={"JWTD_LOG_LEVEL": "debug"})
    assert cli_list.returncode == 0, cli_list

    _drive(c, users + [(imported_user, imported_pw)], tokens)
    assert len(tokens) >= 7, "expected 3 logins (6 tokens) + 1 tampered, got %d" % len(tokens)
    c.post("/auth/login", {"username": users[0][0], "password": wrong})
    c.post("/auth/login", {"username": uname("nobody"), "password": wrong})
    c.post("/auth/signup", {"username": weak_user, "password": weak_user})
    c.post("/auth/login", {"username": users[0][0], "password": pw1})   # reset failure counters
    c.post("/auth/signup", {"username": uname("weak"), "password": "password"})
    c.close()
    srv.stop()

    log = srv.output()
    cli_out = b"".join([cli.stdout, cli.stderr, cli_list.stdout, cli_list.stderr]).decode("utf-8", "replace")
    assert log.strip(), "the server logged nothing at debug level"
    for where, text in (("server log", log), ("CLI output", cli_out)):
        for label, needle in ([("password 1", pw1), ("password 2", pw2), ("wrong password", wrong),
                               ("imported password", imported_pw), ("JWT secret", secret),
                               ("bcrypt hash", bhash), ("bcrypt hash body", bhash[7:]),
                               ("argon2id hash", "$argon2id$"), ("argon2 hash", "$argon2"),
                               ("bcrypt prefix", "$2b$"), ("bcrypt prefix", "$2a$"),
                               ("bcrypt prefix", "$2y$")]
                              + [("token %d" % i, t) for i, t in enumerate(tokens)]):
            assert needle not in text, "%s found in the %s:\n%s" % (
                label, where, "\n".join(l for l in text.splitlines() if needle in l)[:2000])
    # the weak password equal to the username may appear only as the username
    for line in log.splitlines():
        assert line.count(weak_user) <= 1, line


def test_json_log_format(jwtd_factory):
    srv = jwtd_factory(env={"JWTD_LOG_FORMAT": "json", "JWTD_LOG_LEVEL": "debug"})
    c = srv.client()
    username, password = uname("jsonlog"), "Json-Log-Pw-" + secrets.token_hex(6)
    c.post("/auth/signup", {"username": username, "password": password})
    c.post("/auth/login", {"username": username, "password": password})
    c.get("/nope")
    c.get("/auth/me", token="garbage")
    c.close()
    srv.stop()
    lines = [l for l in srv.log().splitlines() if l.strip()]
    assert lines, "no log lines"
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            raise AssertionError("not a JSON log line: %r" % line)
        assert isinstance(obj, dict), line


def test_text_log_is_one_line_per_event(jwtd_factory):
    srv = jwtd_factory(env={"JWTD_LOG_FORMAT": "text"})
    c = srv.client()
    # a username with characters that could break a naive line format
    c.post("/auth/signup", {"username": "line\nbreak", "password": "Line-Break-Pw-123"})
    c.post("/auth/login", {"username": "fake\nlevel=error msg=forged", "password": "Whatever-123"})
    c.close()
    srv.stop()
    for line in srv.log().splitlines():
        assert not line.startswith("level=error msg=forged"), line
        assert not line.startswith("break"), line


# ------------------------------------------------------------------ memory

def _memory_copies(pid, needles):
    """How many times each needle appears in the readable memory of `pid`,
    read 16 MiB at a time. Mappings over 1 GiB are skipped: no heap of a
    test server is that large, but AddressSanitizer's shadow memory is
    (terabytes, reserved and never touched)."""
    found = dict.fromkeys(needles, 0)
    step, overlap = 16 << 20, max(len(n) for n in needles)
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            addr, perms = line.split()[:2]
            if not perms.startswith("r") or line.rstrip().endswith("[vvar]"):
                continue
            start, end = (int(x, 16) for x in addr.split("-"))
            if end - start > 1 << 30:
                continue
            tail = b""
            for at in range(start, end, step):
                try:
                    mem.seek(at)
                    chunk = tail + mem.read(min(step, end - at))
                except (OSError, OverflowError, ValueError):
                    break
                for n in needles:
                    # a needle across the seam is counted once: the tail is
                    # shorter than any needle's full length plus one
                    found[n] += chunk.count(n) - tail.count(n)
                tail = chunk[-(overlap - 1):] if overlap > 1 else b""
    return found


def test_passwords_are_not_left_in_memory(jwtd_factory):
    """A password lives in jwtd's memory while it is hashed or checked, and
    is wiped afterwards: the request buffer, the parsed JSON or form, the
    hashing job. After signing up, logging in (right and wrong), changing
    the password and signing in through the page, no copy of any of them is
    left in the process (its whole readable memory is searched, /proc/PID/mem;
    the search is for each password's last 24 characters, which an allocator's
    bookkeeping in a freed block's first bytes does not overwrite)."""
    port = free_port()
    srv = jwtd_factory(port=port, env={"JWTD_PUBLIC_URL": "http://127.0.0.1:%d" % port})
    try:
        open("/proc/%d/mem" % srv.proc.pid, "rb").close()
    except OSError as e:
        pytest.skip("cannot read jwtd's memory here (%s)" % e)
    pw = {k: "Memscan-%s-%s" % (k, secrets.token_urlsafe(30)) for k in
          ("first", "wrong", "second", "page")}
    name = uname("mem")
    c = srv.client()
    assert c.post("/auth/signup", {"username": name, "password": pw["first"]}).status == 201
    assert c.post("/auth/login", {"username": name, "password": pw["first"]}).status == 200
    assert c.post("/auth/login", {"username": name, "password": pw["wrong"]}).status == 401
    tok = c.post("/auth/login", {"username": name, "password": pw["first"]}).json["access_token"]
    r = c.post("/auth/password", {"current_password": pw["first"],
                                  "new_password": pw["second"]}, token=tok)
    assert r.status in (200, 204), r
    page = srv.client()
    r = page.request("POST", "/login", body=urllib.parse.urlencode(
        {"username": name, "password": pw["second"]}).encode(),
        headers={"Origin": "http://127.0.0.1:%d" % port},
        content_type="application/x-www-form-urlencoded")
    assert r.status == 303, r
    name2 = uname("mem")
    r = page.request("POST", "/signup", body=urllib.parse.urlencode(
        {"username": name2, "password": pw["page"]}).encode(),
        headers={"Origin": "http://127.0.0.1:%d" % port},
        content_type="application/x-www-form-urlencoded")
    assert r.status in (200, 303), r
    c.close()
    page.close()
    # the search's own control: the username is in memory (the account
    # cache, SQLite's pages), so the search does see the heap
    needles = {k: v[-24:].encode() for k, v in pw.items()}
    found = _memory_copies(srv.proc.pid, list(needles.values()) + [name.encode()])
    assert found[name.encode()] > 0, "the memory search found not even the username"
    left = {k: found[n] for k, n in needles.items() if found[n]}
    assert not left, "passwords left in jwtd's memory (copies): %s" % left


def test_one_worker_writes_only_json_lines(jwtd_factory):
    """Trap: JWTD_WORKERS=1 put the HTTP library's own plain-text warning
    about a thread pool of one into a json-format log (the library spoke
    before jwtd's logger was set). Every line is JSON, and one worker
    serves."""
    srv = jwtd_factory(env={"JWTD_WORKERS": "1", "JWTD_LOG_FORMAT": "json"})
    c = srv.client()
    assert c.get("/healthz").status == 200
    new_user_tokens(c)
    c.close()
    lines = [l for l in srv.log().splitlines() if l.strip()]
    assert lines
    for l in lines:
        json.loads(l)


def test_startup_failure_is_a_json_line_under_json_logs():
    """With JWTD_LOG_FORMAT=json a start-up failure found after the settings
    were read (here a database in a directory that does not exist) is one
    JSON object, like every other line a log shipper parses; in text it
    stays the plain line a person reads."""
    bad = {"JWTD_DATABASE": "sqlite:/nonexistent-jwtd-dir/x.db"}
    rc, stderr = run_expect_exit(dict(bad, JWTD_LOG_FORMAT="json"))
    assert rc == 1, (rc, stderr)
    lines = [l for l in stderr.splitlines() if l.strip()]
    objs = [json.loads(l) for l in lines]                  # every line parses
    fail = [o for o in objs if o["event"] == "startup_failed"]
    assert len(fail) == 1 and fail[0]["level"] == "error", objs
    assert "JWTD_DATABASE" in fail[0]["error"] and "does not exist" in fail[0]["error"], fail
    rc, stderr = run_expect_exit(bad)
    assert rc == 1 and any(l.startswith("jwtd: JWTD_DATABASE") for l in stderr.splitlines()), stderr

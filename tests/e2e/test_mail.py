# SPDX-License-Identifier: Apache-2.0
"""Account recovery by e-mail, end to end, with a real SMTP relay.

The relay is tests/unit/core/smtp_server.py (aiosmtpd) run by mail_util.py,
which also lets it listen on a given port (outages: stop it, start it again
where jwtd expects it) and counts every RCPT/DATA reply, refused ones too.

Contract (the feature's endpoints; docs/api.md):
- POST /auth/signup takes an optional "email" (422 invalid_email, 409
  email_taken); the user object carries "email"/"email_verified" (and
  "email_pending") only for accounts with an address; a verification mail
  (a link /verify-email?token=... and a six-digit code) goes out at once;
- login by the address (as "username" or "email"); with
  JWTD_REQUIRE_VERIFIED_EMAIL=true 403 email_not_verified (right password
  only); access tokens carry "email", "email_verified" and "amr": ["pwd"];
- PATCH /auth/me {"email", "password"}: a verified address stays while the
  new one is "email_pending" (notice to the old address, verification to the
  new one); an unverified or missing one is replaced at once; null removes;
- POST /auth/email/verify/request (202, 409 nothing_to_verify, 501),
  POST /auth/email/verify {"token"} or {"code"}+Bearer (400 invalid_link /
  invalid_code; JWTD_CODE_ATTEMPTS wrong codes end the code);
- POST /auth/password/forgot: always 202 {"status":"queued"}, the same bytes
  and the same time for unknown accounts; 501 without SMTP; 429 over
  JWTD_MAIL_RATE (per client address) / JWTD_MAIL_ACCOUNT_RATE (per address
  asked about); POST /auth/password/reset: 204, once, until JWTD_RESET_TTL,
  void after any other password change, ends every session within a second;
- the outbox: a message queued while the relay is down, answers 4xx, or
  while jwtd is killed, is delivered later exactly once; 5xx is not
  retried; JWTD_MAIL_GIVE_UP ends the retries;
- `jwtd user reset-link NAME` prints a working one-time link.

Expiry is tested with the test clock (JWTD_TEST_CLOCK: a file whose first 8
bytes are a little-endian millisecond offset added to jwtd's clock).
Everything asynchronous is polled (50 ms) against deadlines. The fault tests
print what happened (pytest -s).

Readings where the contract is silent are marked "reading:" below.
"""

import hashlib
import os
import re
import secrets
import signal
import statistics
import struct
import subprocess
import tempfile
import time
import urllib.parse

import pytest

from e2e_util import (SLOW, assert_error, assert_invalid_grant, assert_refused_within,
                      assert_uuid, at_once, clean_env, fmt_timing, free_port, jwt_parts, jwtd_bin,
                      login, parse_rfc3339, refresh, strong_password, together, uname)
from mail_util import RawRelay, SmtpServer

POLL = 0.05
PUBLIC = "https://auth.mail-e2e.test"
DOMAIN = "mail-e2e.test"
SENDER = "noreply@jwtd-e2e.test"
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
QUIET = 0.6          # "a few poll intervals more": 12 polls, 3 retry intervals


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def wait_for(pred, timeout=8.0, what="condition"):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out after %.1fs waiting for %s" % (
            timeout * SLOW, what)
        time.sleep(POLL)


def addr(prefix="m"):
    return "%s-%s@%s" % (prefix, secrets.token_hex(5), DOMAIN)


def signup_mail(c, email=None, username=None):
    """Sign up with an address: (username, password, user)."""
    username = username or uname("mail")
    for _ in range(5):
        password = strong_password()
        body = {"username": username, "password": password}
        if email is not None:
            body["email"] = email
        r = c.post("/auth/signup", body)
        if not (r.status == 422 and (r.json or {}).get("error") == "weak_password"):
            break
    assert r.status == 201, "signup %r <%s>: %r" % (username, email, r)
    return username, password, r.json["user"]


def assert_user(obj, username=None, email=None, verified=None, pending=None):
    """The user object: the address fields exactly when there is an address."""
    keys = {"id", "username", "created_at"}
    if email is not None:
        keys |= {"email", "email_verified"}
    if pending is not None:
        keys.add("email_pending")
    assert isinstance(obj, dict) and set(obj) == keys, "user object keys %r, expected %r" % (
        obj, sorted(keys))
    assert_uuid(obj["id"])
    parse_rfc3339(obj["created_at"])
    if username is not None:
        assert obj["username"] == username, obj
    if email is not None:
        assert obj["email"] == email, obj
        assert obj["email_verified"] is verified, obj
    if pending is not None:
        assert obj["email_pending"] == pending, obj
    return obj


def me(c, token):
    r = c.get("/auth/me", token=token)
    assert r.status == 200, r
    return r.json["user"]


def claims(tokens):
    return jwt_parts(tokens["access_token"])[1]


def patch_email(c, token, email, password):
    return c.request("PATCH", "/auth/me", json_body={"email": email, "password": password},
                     token=token)


def forgot(c, **body):
    return c.post("/auth/password/forgot", body)


def assert_queued(r):
    assert r.status == 202, r
    assert r.json == {"status": "queued"}, r


def reset(c, token, password):
    return c.post("/auth/password/reset", {"token": token, "new_password": password})


def assert_verify_mail(m, to):
    """A verification mail to `to`: link to /verify-email, a code, in both parts."""
    assert m.rcpt_to == [to] and m.to == to, m
    assert m.mail_from == SENDER, m.envelope
    link = m.link
    assert link and link.startswith(PUBLIC + "/verify-email?token="), m.text
    assert TOKEN_RE.match(m.token), link
    assert m.code and re.fullmatch(r"[0-9]{6}", m.code), m.text
    assert m.html and m.code in m.html and link.replace("&", "&amp;") in m.html, m.html
    return m


def assert_reset_mail(m, to):
    assert m.rcpt_to == [to] and m.to == to, m
    assert m.mail_from == SENDER, m.envelope
    link = m.link
    assert link and link.startswith(PUBLIC + "/reset-password?token="), m.text
    assert TOKEN_RE.match(m.token), link
    assert m.html and link in m.html, m.html
    return m


def is_reset(m):
    return bool(m.link and "/reset-password?" in m.link)


def is_verify(m):
    return bool(m.link and "/verify-email?" in m.link)


def metric(c, result):
    r = c.get("/metrics")
    assert r.status == 200, r
    text = r.body.decode()
    m = re.search(r'^jwtd_mail_total\{result="%s"\} (\d+)$' % re.escape(result), text, re.M)
    assert m, "no jwtd_mail_total{result=%r} in /metrics:\n%s" % (
        result, "\n".join(l for l in text.splitlines() if "mail" in l))
    return int(m.group(1))


def mail_events(srv, outcome=None):
    """The `event=mail` lines of jwtd's log (optionally of one outcome)."""
    lines = [l for l in srv.log().splitlines() if re.search(r"\bevent=mail\b", l)]
    if outcome:
        lines = [l for l in lines if re.search(r"\boutcome=%s\b" % outcome, l)]
    return lines


def hold_still(relay, to, n, what):
    """After delivery: wait a few poll/retry intervals more, still n messages."""
    time.sleep(QUIET)
    got = relay.messages(to)
    assert len(got) == n, "%s: expected exactly %d message(s) to %s, got %r" % (
        what, n, to, got)
    return got


class JwtdClock:
    """JWTD_TEST_CLOCK: rewritten in place (jwtd maps the file)."""

    def __init__(self, path):
        self.path = path
        with open(path, "wb") as f:
            f.write(struct.pack("<q", 0))

    def set(self, offset_ms):
        with open(self.path, "r+b") as f:
            f.write(struct.pack("<q", offset_ms))
            f.flush()


class shifted:
    """with shifted(clock, ms): jwtd's clock runs ms ahead inside."""

    def __init__(self, clock, ms):
        self.clock, self.ms = clock, ms

    def __enter__(self):
        self.clock.set(self.ms)

    def __exit__(self, *exc):
        self.clock.set(0)


# --------------------------------------------------------------------------
# fixtures: one relay and one server shared by the tests that do not disturb
# them (unique addresses everywhere); the fault tests bring their own.
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clock():
    d = tempfile.mkdtemp(prefix="jwtd-e2e-clock-")
    yield JwtdClock(os.path.join(d, "clock"))
    try:
        os.unlink(os.path.join(d, "clock"))
        os.rmdir(d)
    except OSError:
        pass


@pytest.fixture(scope="module")
def srv(module_factory, relay, clock):
    return module_factory(env=relay.jwtd_env(
        JWTD_PUBLIC_URL=PUBLIC, JWTD_TEST_CLOCK=clock.path,
        JWTD_RESET_TTL="1m", JWTD_VERIFY_TTL="1m", JWTD_CODE_ATTEMPTS="3",
        JWTD_MAIL_RATE="1000", JWTD_MAIL_ACCOUNT_RATE="100"))


@pytest.fixture
def c(srv):
    cl = srv.client()
    yield cl
    cl.close()


# --------------------------------------------------------------------------
# 1. verification of an address
# --------------------------------------------------------------------------

def test_signup_fields_and_the_plain_user_object(c, relay):
    """Without "email" the user object is exactly {id, username, created_at}
    and tokens carry no address claims; a bad address is 422 invalid_email,
    an address of another account (any case) 409 email_taken; the stored
    address is the lower-cased one."""
    username, password, user = signup_mail(c)
    assert_user(user, username)
    t = login(c, username, password)
    assert_user(t["user"], username)
    cl = claims(t)
    assert "email" not in cl and "email_verified" not in cl, cl
    assert cl.get("amr") == ["pwd"], cl

    for bad in ("not-an-address", "a@", "@b.test", "a b@c.test", "a@b.test\r\nBcc: x@y.test"):
        r = c.post("/auth/signup", {"username": uname("bad"), "password": strong_password(),
                                    "email": bad})
        assert_error(r, 422, "invalid_email")

    e = addr("case")
    _, _, user = signup_mail(c, e.upper())
    assert_user(user, email=e, verified=False)
    r = c.post("/auth/signup", {"username": uname("dup"), "password": strong_password(),
                                "email": e.capitalize()})
    assert_error(r, 409, "email_taken")
    assert_verify_mail(relay.wait_one(e), e)


def test_signup_link_verifies_the_address_once(c, relay):
    """Sign-up with an address sends a verification at once; its link
    verifies (200 with the user, /auth/me agrees, a new login's token says
    email_verified true) and works only once."""
    e = addr("link")
    username, password, user = signup_mail(c, e)
    assert_user(user, username, email=e, verified=False)
    before = login(c, username, password)
    assert claims(before)["email"] == e and claims(before)["email_verified"] is False
    m = assert_verify_mail(relay.wait_one(e, what="verification at sign-up"), e)
    assert username in m.text and e in m.text

    r = c.post("/auth/email/verify", {"token": m.token})
    assert r.status == 200, r
    assert_user(r.json["user"], username, email=e, verified=True)
    assert_user(me(c, before["access_token"]), username, email=e, verified=True)
    after = login(c, username, password)
    assert_user(after["user"], username, email=e, verified=True)
    cl = claims(after)
    assert cl["email"] == e and cl["email_verified"] is True and cl["amr"] == ["pwd"], cl

    assert_error(c.post("/auth/email/verify", {"token": m.token}), 400, "invalid_link")
    r = c.post("/auth/email/verify/request", token=after["access_token"])
    assert_error(r, 409, "nothing_to_verify")


def test_verification_code_and_its_attempt_limit(c, relay):
    """The code (with the account's access token): wrong codes are 400
    invalid_code; after JWTD_CODE_ATTEMPTS (3) wrong ones even the right code
    fails; a new verification (POST /auth/email/verify/request: 202) brings
    a new code that works. A code without a token is 401."""
    e = addr("code")
    username, password, _ = signup_mail(c, e)
    tok = login(c, username, password)["access_token"]
    m = assert_verify_mail(relay.wait_one(e), e)
    wrong = "%06d" % ((int(m.code) + 1) % 1000000)

    r = c.post("/auth/email/verify", {"code": m.code})
    assert r.status == 401, r
    for i in range(3):
        assert_error(c.post("/auth/email/verify", {"code": wrong}, token=tok), 400,
                     "invalid_code")
    r = c.post("/auth/email/verify", {"code": m.code}, token=tok)
    assert_error(r, 400, "invalid_code")
    assert_user(me(c, tok), username, email=e, verified=False)

    assert_queued(c.post("/auth/email/verify/request", token=tok))
    got = relay.wait_messages(2, to=e, what="the second verification")
    m2 = assert_verify_mail(got[1], e)
    assert_error(c.post("/auth/email/verify", {"code": "12345x"}, token=tok), 400,
                 "invalid_code")
    r = c.post("/auth/email/verify", {"code": m2.code}, token=tok)
    assert r.status == 200, r
    assert_user(r.json["user"], username, email=e, verified=True)
    assert_error(c.post("/auth/email/verify", {"code": m2.code}, token=tok), 400, "invalid_code")


def test_code_after_the_address_was_verified_by_a_reset_is_a_code_answer(c, relay):
    """Trap: a reset link sent to the address verifies it; the verification
    code still outstanding was then answered 400 invalid_link "The link is
    unknown...", a link's answer to a code. It is invalid_code, and the
    verification link of the same mail is invalid_link."""
    e = addr("vr")
    username, password, _ = signup_mail(c, e)
    m = assert_verify_mail(relay.wait_one(e), e)
    assert_queued(forgot(c, email=e))
    got = relay.wait_messages(2, to=e, what="the reset mail")
    new_password = strong_password()
    assert reset(c, got[1].token, new_password).status == 204
    tok = login(c, username, new_password)["access_token"]
    assert_user(me(c, tok), username, email=e, verified=True)
    r = c.post("/auth/email/verify", {"code": m.code}, token=tok)
    assert_error(r, 400, "invalid_code")
    assert "link" not in r.json["error_description"], r.json
    # the verification is over: a wrong code is told the same, not "wrong"
    wrong = "%06d" % ((int(m.code) + 1) % 1000000)
    r2 = c.post("/auth/email/verify", {"code": wrong}, token=tok)
    assert_error(r2, 400, "invalid_code")
    assert r2.json["error_description"] == r.json["error_description"], (r.json, r2.json)
    assert_error(c.post("/auth/email/verify", {"token": m.token}), 400, "invalid_link")


def test_parallel_wrong_codes_get_no_more_tries(srv, c, relay):
    """Tries are counted before the code is compared, atomically: 40 wrong
    codes sent at once get at most JWTD_CODE_ATTEMPTS (3) compared ("The code
    is wrong..."); the others are told no tries are left, or that there is
    no code any more."""
    e = addr("par")
    username, password, _ = signup_mail(c, e)
    tok = login(c, username, password)["access_token"]
    m = assert_verify_mail(relay.wait_one(e), e)
    wrong = "%06d" % ((int(m.code) + 1) % 1000000)
    out = at_once(srv, 40, lambda cl: cl.post("/auth/email/verify", {"code": wrong}, token=tok))
    descs = [assert_error(r, 400, "invalid_code")["error_description"] for r in out]
    compared = [d for d in descs if d.startswith("The code is wrong")]
    assert 1 <= len(compared) <= 3, descs
    # and the right code comes too late
    assert_error(c.post("/auth/email/verify", {"code": m.code}, token=tok), 400, "invalid_code")


def test_codes_tried_per_day_are_bounded(c, relay, clock):
    """Each code has JWTD_CODE_ATTEMPTS (3) tries, and a new code is one
    request away: a guesser asking for code after code got
    JWTD_MAIL_ACCOUNT_RATE x 3 tries per window (3,600 a day by default).
    An account's codes get 4 x JWTD_CODE_ATTEMPTS (12) tries a day in all:
    after four codes spent on wrong guesses, even the right fifth code is
    refused and the description points to the link, which still works; a
    day later codes work again."""
    e = addr("day")
    username, password, _ = signup_mail(c, e)
    tok = login(c, username, password)["access_token"]
    m = assert_verify_mail(relay.wait_one(e), e)
    for k in range(4):
        wrong = "%06d" % ((int(m.code) + 1) % 1000000)
        for _ in range(3):
            assert_error(c.post("/auth/email/verify", {"code": wrong}, token=tok), 400,
                         "invalid_code")
        assert_queued(c.post("/auth/email/verify/request", token=tok))
        m = assert_verify_mail(relay.wait_messages(k + 2, to=e, what="code %d" % (k + 2))[-1], e)
    r = c.post("/auth/email/verify", {"code": m.code}, token=tok)
    assert_error(r, 400, "invalid_code")
    assert "today" in r.json["error_description"] and "link" in r.json["error_description"], r.json
    assert_user(me(c, tok), username, email=e, verified=False)
    # a day later (and a fresh code: this one expired meanwhile) codes work again
    with shifted(clock, 86_400_000 + 60_000):
        tok = login(c, username, password)["access_token"]
        assert_queued(c.post("/auth/email/verify/request", token=tok))
        m = assert_verify_mail(relay.wait_messages(6, to=e, what="the next day's code")[-1], e)
        r = c.post("/auth/email/verify", {"code": m.code}, token=tok)
        assert r.status == 200, r
        assert_user(r.json["user"], username, email=e, verified=True)


def test_the_link_works_when_the_day_s_codes_are_spent(c, relay):
    """The day's allowance bounds codes only: the link of the same message
    verifies the address."""
    e = addr("daylink")
    username, password, _ = signup_mail(c, e)
    tok = login(c, username, password)["access_token"]
    m = assert_verify_mail(relay.wait_one(e), e)
    for k in range(4):
        for _ in range(3):
            assert_error(c.post("/auth/email/verify", {"code": "000000" if m.code != "000000"
                                                       else "111111"}, token=tok),
                         400, "invalid_code")
        assert_queued(c.post("/auth/email/verify/request", token=tok))
        m = assert_verify_mail(relay.wait_messages(k + 2, to=e, what="code %d" % (k + 2))[-1], e)
    assert_error(c.post("/auth/email/verify", {"code": m.code}, token=tok), 400, "invalid_code")
    r = c.post("/auth/email/verify", {"token": m.token})
    assert r.status == 200, r
    assert_user(r.json["user"], username, email=e, verified=True)


def test_verify_request_needs_an_unverified_address(c):
    """verify/request: 401 without a token, 409 nothing_to_verify for an
    account without an address."""
    username, password, _ = signup_mail(c)
    tok = login(c, username, password)["access_token"]
    assert c.post("/auth/email/verify/request").status == 401
    assert_error(c.post("/auth/email/verify/request", token=tok), 409, "nothing_to_verify")
    assert_error(c.post("/auth/email/verify", {}), 400, "invalid_request")


def test_verification_link_expires(c, relay, clock):
    """JWTD_VERIFY_TTL=1m: the link two minutes later is 400 invalid_link (the
    test clock moves jwtd's time; no waiting), and so is the code."""
    e = addr("exp")
    username, password, _ = signup_mail(c, e)
    tok = login(c, username, password)["access_token"]
    m = assert_verify_mail(relay.wait_one(e), e)
    with shifted(clock, 120_000):
        assert_error(c.post("/auth/email/verify", {"token": m.token}), 400, "invalid_link")
        assert_error(c.post("/auth/email/verify", {"code": m.code}, token=tok), 400,
                     "invalid_code")
        assert_user(me(c, tok), username, email=e, verified=False)


# --------------------------------------------------------------------------
# 2. login by address; verified addresses required
# --------------------------------------------------------------------------

def test_login_by_email_address(c):
    """"username" may be the account's address (any case), or "email" given
    instead; a wrong password by address is the usual 401."""
    e = addr("login")
    username, password, user = signup_mail(c, e)
    for body in ({"username": e, "password": password},
                 {"username": e.upper(), "password": password},
                 {"email": e, "password": password}):
        r = c.post("/auth/login", body)
        assert r.status == 200, (body, r)
        assert r.json["user"]["id"] == user["id"]
        assert claims(r.json)["email"] == e
    r = c.post("/auth/login", {"username": e, "password": password + "x"})
    assert_error(r, 401, "invalid_credentials")
    r = c.post("/auth/login", {"email": addr("nobody"), "password": password})
    assert_error(r, 401, "invalid_credentials")


def test_require_verified_email(jwtd_factory, relay):
    """JWTD_REQUIRE_VERIFIED_EMAIL=true: sign-up needs an address (422
    invalid_email without one); with the right password, 403
    email_not_verified until the address is verified, and each such refusal
    re-sends the verification (a newer link replaces the older); a wrong
    password stays 401 (no hint, no mail); after the newest link, 200."""
    srv = jwtd_factory(env=relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC,
                                          JWTD_REQUIRE_VERIFIED_EMAIL="true"))
    c = srv.client()
    r = c.post("/auth/signup", {"username": uname(), "password": strong_password()})
    assert_error(r, 422, "invalid_email")
    e = addr("req")
    username, password, _ = signup_mail(c, e)
    first = assert_verify_mail(relay.wait_one(e), e)
    assert_error(c.post("/auth/login", {"username": username, "password": password}), 403,
                 "email_not_verified")
    assert_error(c.post("/auth/login", {"username": e, "password": password}), 403,
                 "email_not_verified")
    msgs = relay.wait_messages(3, to=e, what="a verification per refused login")
    assert_error(c.post("/auth/login", {"username": username, "password": password + "x"}), 401,
                 "invalid_credentials")
    hold_still(relay, e, 3, "a wrong password sends nothing")
    newest = assert_verify_mail(msgs[-1], e)
    assert newest.token != first.token
    assert_error(c.post("/auth/email/verify", {"token": first.token}), 400, "invalid_link")
    assert c.post("/auth/email/verify", {"token": newest.token}).status == 200
    t = login(c, e, password)
    assert claims(t)["email_verified"] is True
    c.close()


# --------------------------------------------------------------------------
# 3. changing the address
# --------------------------------------------------------------------------

def test_change_address_refusals(c):
    """PATCH /auth/me: 401 without a token, 403 invalid_credentials with a
    wrong password, 422 invalid_email, 409 email_taken (another account's
    address, any case), 400 without "email". Nothing changes."""
    other = addr("taken")
    signup_mail(c, other)
    e = addr("chg")
    username, password, _ = signup_mail(c, e)
    tok = login(c, username, password)["access_token"]
    r = c.request("PATCH", "/auth/me", json_body={"email": addr(), "password": password})
    assert r.status == 401, r
    assert_error(patch_email(c, tok, addr(), password + "x"), 403, "invalid_credentials")
    assert_error(patch_email(c, tok, "no-at-sign", password), 422, "invalid_email")
    assert_error(patch_email(c, tok, other.upper(), password), 409, "email_taken")
    r = c.request("PATCH", "/auth/me", json_body={"password": password}, token=tok)
    assert_error(r, 400, "invalid_request")
    assert_user(me(c, tok), username, email=e, verified=False)


def test_change_unverified_address_is_replaced_at_once(c, relay):
    """An unverified address is replaced at once (no pending state, no notice
    to the old one); the new address gets a verification; the link sent to
    the old address no longer verifies anything (reading: it is
    invalid_link)."""
    a, b = addr("old"), addr("new")
    username, password, _ = signup_mail(c, a)
    tok = login(c, username, password)["access_token"]
    ma = assert_verify_mail(relay.wait_one(a), a)
    r = patch_email(c, tok, b, password)
    assert r.status == 200, r
    assert_user(r.json["user"], username, email=b, verified=False)
    mb = assert_verify_mail(relay.wait_one(b, what="verification of the new address"), b)
    assert_error(c.post("/auth/email/verify", {"token": ma.token}), 400, "invalid_link")
    assert_user(me(c, tok), username, email=b, verified=False)
    assert c.post("/auth/email/verify", {"token": mb.token}).status == 200
    assert_user(me(c, tok), username, email=b, verified=True)
    hold_still(relay, a, 1, "no notice to an unverified old address")


def test_pending_address_taken_as_a_username_meanwhile_is_not_confirmed(c, relay):
    """One identifier names one account: while an address waits for its
    verification, another person signs up with it as a username; the link
    then answers 409 email_taken and the address stays unconfirmed, so a
    login by that identifier still reaches the one who holds it as a name."""
    a = addr("first")
    username, password, _ = signup_mail(c, a)
    tok = login(c, username, password)["access_token"]
    assert c.post("/auth/email/verify", {"token": assert_verify_mail(relay.wait_one(a),
                                                                     a).token}).status == 200
    b = addr("wanted")
    assert patch_email(c, tok, b, password).status == 200
    mb = assert_verify_mail(relay.wait_one(b, what="verification of the new address"), b)
    other_pw = strong_password()
    r = c.post("/auth/signup", {"username": b, "password": other_pw})
    assert r.status == 201, r
    other = r.json["user"]
    assert_error(c.post("/auth/email/verify", {"token": mb.token}), 409, "email_taken")
    assert_user(me(c, tok), username, email=a, verified=True, pending=b)
    assert login(c, b, other_pw)["user"]["id"] == other["id"]
    r = c.post("/auth/login", {"username": b, "password": password})
    assert_error(r, 401, "invalid_credentials")


def test_username_and_address_taken_at_the_same_instant(srv, c):
    """One identifier names one account even under a race: a sign-up with
    the username X and another account taking the address X, released
    together (the sign-up checks before it hashes, the address change after
    it confirms the password, so both checks pass before either writes).
    Each round exactly one wins; the other gets its usual 409 (sign-up:
    username_taken, address change: email_taken) and login by X reaches the
    winner. Before the database enforced the rule, both won."""
    username, password, holder = signup_mail(c)
    tok = login(c, username, password)["access_token"]
    wins = {"signup": 0, "address": 0}
    for _ in range(8):
        x = addr("race")
        other_pw = strong_password()
        r_signup, r_patch = together(
            srv, lambda cl: cl.post("/auth/signup", {"username": x, "password": other_pw}),
            lambda cl: patch_email(cl, tok, x, password))
        if r_signup.status == 201:
            wins["signup"] += 1
            assert_error(r_patch, 409, "email_taken")
            assert login(c, x, other_pw)["user"]["id"] == r_signup.json["user"]["id"]
        else:
            assert_error(r_signup, 409, "username_taken")
            assert r_patch.status == 200, r_patch
            wins["address"] += 1
            assert login(c, x, password)["user"]["id"] == holder["id"]
    print("wins: %r" % wins)


def test_change_verified_address_waits_for_verification(c, relay):
    """A verified address stays while the new one is "email_pending": the
    old address gets an "email_changed" notice naming the new one, the new
    address a verification. Until then login works by the old address only
    (reading: a pending address is no login name); verifying moves it."""
    a, b = addr("va"), addr("vb")
    username, password, _ = signup_mail(c, a)
    m = assert_verify_mail(relay.wait_one(a), a)
    assert c.post("/auth/email/verify", {"token": m.token}).status == 200
    tok = login(c, username, password)["access_token"]

    r = patch_email(c, tok, b, password)
    assert r.status == 200, r
    assert_user(r.json["user"], username, email=a, verified=True, pending=b)
    assert_user(me(c, tok), username, email=a, verified=True, pending=b)
    notice = relay.wait_messages(2, to=a, what="the notice to the old address")[1]
    assert notice.rcpt_to == [a] and notice.link is None and notice.code is None, notice.text
    assert b in notice.text and "chang" in notice.subject.lower(), (notice.subject, notice.text)
    mb = assert_verify_mail(relay.wait_one(b), b)

    assert login(c, a, password)["user"]["id"] == r.json["user"]["id"]
    assert_error(c.post("/auth/login", {"username": b, "password": password}), 401,
                 "invalid_credentials")
    r = c.post("/auth/email/verify", {"token": mb.token})
    assert r.status == 200, r
    assert_user(r.json["user"], username, email=b, verified=True)
    t = login(c, b, password)
    assert claims(t)["email"] == b and claims(t)["email_verified"] is True
    assert_error(c.post("/auth/login", {"username": a, "password": password}), 401,
                 "invalid_credentials")
    hold_still(relay, a, 2, "verify + notice to the old address")


def test_remove_address_with_null(c, relay):
    """{"email": null} removes the address: the user object is exactly
    {id, username, created_at} again, new tokens have no address claims, the
    address no longer logs in, and the verification link sent before no
    longer brings it back (reading: invalid_link)."""
    a = addr("rm")
    username, password, _ = signup_mail(c, a)
    m = assert_verify_mail(relay.wait_one(a), a)
    tok = login(c, username, password)["access_token"]
    r = patch_email(c, tok, None, password)
    assert r.status == 200, r
    assert_user(r.json["user"], username)
    t = login(c, username, password)
    assert "email" not in claims(t) and "email_verified" not in claims(t), claims(t)
    assert_error(c.post("/auth/login", {"username": a, "password": password}), 401,
                 "invalid_credentials")
    r = c.post("/auth/email/verify", {"token": m.token})
    after = me(c, tok)
    assert_error(r, 400, "invalid_link")
    assert_user(after, username)


def verified_with_reset_link(c, relay, a):
    """An account with the verified address a, and the reset link mailed to
    it: (username, password, access token, reset mail)."""
    username, password, _ = signup_mail(c, a)
    tok = login(c, username, password)["access_token"]
    assert c.post("/auth/email/verify",
                  {"token": assert_verify_mail(relay.wait_one(a), a).token}).status == 200
    assert_queued(forgot(c, email=a))
    mr = assert_reset_mail(relay.wait_messages(2, to=a, what="the reset")[1], a)
    return username, password, tok, mr


def test_reset_link_void_once_its_address_is_removed(c, relay):
    """A reset link goes to the account's address; when that address is
    removed (the "email_removed" notice says links can no longer be sent
    to it), the link sent before is void (400 invalid_link)."""
    username, password, tok, mr = verified_with_reset_link(c, relay, addr("rmreset"))
    assert patch_email(c, tok, None, password).status == 200
    assert_error(reset(c, mr.token, strong_password()), 400, "invalid_link")
    assert login(c, username, password)["user"]["username"] == username


def test_reset_link_void_once_a_new_address_is_confirmed(c, relay):
    """Trap: a reset link mailed to the old address still reset the password
    after the account had moved to a new, verified address (the change
    waited for verification and did not void it). The link belongs to the
    address it was sent to: once the account's address is another, it is
    void (400 invalid_link)."""
    b = addr("nrb")
    username, password, tok, mr = verified_with_reset_link(c, relay, addr("nra"))
    assert patch_email(c, tok, b, password).status == 200
    mb = assert_verify_mail(relay.wait_one(b), b)
    assert c.post("/auth/email/verify", {"token": mb.token}).status == 200
    assert_error(reset(c, mr.token, strong_password()), 400, "invalid_link")
    assert login(c, username, password)["user"]["username"] == username
    # Trap: back to the first address (confirmed again), its old link
    # worked again: the link was void only while the addresses differed.
    a = mr.to
    assert patch_email(c, tok, a, password).status == 200
    # to a: its verification, the reset, the notice of the change to b, and now
    ma = assert_verify_mail(relay.wait_messages(4, to=a, what="the re-verification")[3], a)
    assert c.post("/auth/email/verify", {"token": ma.token}).status == 200
    assert_error(reset(c, mr.token, strong_password()), 400, "invalid_link")
    assert login(c, username, password)["user"]["username"] == username


@pytest.mark.parametrize("how", ["reset", "password_change"])
def test_pending_address_called_off_by_a_reset_or_password_change(c, relay, how):
    """Trap: someone who knew the password made their own address pending
    on the account; the owner got the "email_changed" notice ("if this was
    not you, change your password now") and did so (or reset it by the
    link sent to the verified address). The pending address and its
    verification link survived: the intruder, signed out, still confirmed
    it by the link (no sign-in needed), the account's address became theirs,
    and their next "forgot" took the account back. A reset or a password
    change calls off a pending address: its link is void (400 invalid_link)
    and the verified address stays."""
    a, evil = addr("owner"), addr("intruder")
    username, password, tok, mr = verified_with_reset_link(c, relay, a)
    r = patch_email(c, tok, evil, password)
    assert r.status == 200, r
    assert_user(r.json["user"], username, email=a, verified=True, pending=evil)
    me_ = assert_verify_mail(relay.wait_one(evil), evil)
    new = strong_password()
    if how == "reset":
        assert reset(c, mr.token, new).status == 204
    else:
        r = c.post("/auth/password", {"current_password": password, "new_password": new},
                   token=tok)
        assert r.status == 204, r
    assert_error(c.post("/auth/email/verify", {"token": me_.token}), 400, "invalid_link")
    t = login(c, username, new)
    assert_user(me(c, t["access_token"]), username, email=a, verified=True)
    assert_error(c.post("/auth/login", {"username": evil, "password": new}), 401,
                 "invalid_credentials")


# --------------------------------------------------------------------------
# 4. forgot + reset
# --------------------------------------------------------------------------

def test_forgot_and_reset_end_to_end(c, relay):
    """Forgot by address: 202 {"status":"queued"}; the mail goes to the
    account's address with a /reset-password link; a weak password is 422
    weak_password (the link still works after); the reset is 204, ends every
    session within a second (/auth/me and /auth/verify refuse the old access
    tokens, refresh is refused), the old password fails, the new one works,
    and the link works once."""
    e = addr("fg")
    username, password, user = signup_mail(c, e)
    relay.wait_one(e)
    s1, s2 = login(c, username, password), login(c, e, password)
    assert_queued(forgot(c, email=e.upper()))
    m = assert_reset_mail(relay.wait_messages(2, to=e, what="the reset mail")[1], e)
    assert username in m.text

    assert_error(reset(c, m.token, "password"), 422, "weak_password")
    assert_error(reset(c, m.token, username), 422, "weak_password")
    new = strong_password()
    r = reset(c, m.token, new)
    since = time.monotonic()
    assert r.status == 204 and r.body == b"", r
    for s in (s1, s2):
        lat = assert_refused_within(c, s["access_token"], since, bound=1.0, interval=POLL,
                                    give_up=2.0)
        print("reset: %s" % fmt_timing(lat))
    for s in (s1, s2):
        assert_invalid_grant(refresh(c, s["refresh_token"]))
    assert_error(c.post("/auth/login", {"username": username, "password": password}), 401,
                 "invalid_credentials")
    t = login(c, username, new)
    assert t["user"]["id"] == user["id"]
    assert_error(reset(c, m.token, strong_password()), 400, "invalid_link")
    login(c, username, new)


def test_reset_link_sent_five_times_at_once_works_once(srv, c, relay):
    """A reset link carried by five requests at the same instant (a form
    sent again, two tabs): one 204, four 400 invalid_link, and the password
    kept is the winner's. An audit found the link working twice on
    PostgreSQL with two instances; one instance's I/O pool does not
    reproduce that race, which the store suite does on eight connections
    (test_password_reset_link_once_under_a_race). Here: the HTTP answers."""
    for _ in range(3):
        e = addr("once")
        username, password, _ = signup_mail(c, e)
        relay.wait_one(e)
        assert_queued(forgot(c, email=e))
        m = assert_reset_mail(relay.wait_messages(2, to=e, what="the reset mail")[1], e)
        news = [strong_password() for _ in range(5)]
        out = together(srv, *[lambda cl, p=p: reset(cl, m.token, p) for p in news])
        won = [i for i, r in enumerate(out) if r.status == 204]
        assert len(won) == 1, [(r.status, r.body) for r in out]
        for i, r in enumerate(out):
            if i not in won:
                assert_error(r, 400, "invalid_link")
        login(c, username, news[won[0]])
        for i in range(5):
            if i not in won:
                assert_error(c.post("/auth/login", {"username": username, "password": news[i]}),
                             401, "invalid_credentials")


def test_forgot_by_username_mails_the_accounts_address(c, relay):
    """Forgot by username: the mail goes to the account's address (the
    envelope and To:), not anywhere the request names."""
    e = addr("byname")
    username, password, _ = signup_mail(c, e)
    relay.wait_one(e)
    assert_queued(forgot(c, username=username))
    m = assert_reset_mail(relay.wait_messages(2, to=e)[1], e)
    new = strong_password()
    assert reset(c, m.token, new).status == 204
    login(c, e, new)


def test_forgot_by_a_longer_name_is_no_account(srv, c, relay):
    """Trap: the worker looked a `forgot` identifier up as a username cut to
    128 bytes (the longest username), and identifiers may have 254: any
    name that began with an account's 128-byte username mailed that account
    a reset link. Each such name was another subject of the per-identifier
    limit, so an account with a name of 128 bytes could be sent reset mail
    without that limit (and its last link replaced each time). A name
    longer than any username names no account: dropped, nothing sent."""
    e = addr("long")
    name = "l" * 118 + secrets.token_hex(5)
    assert len(name) == 128
    signup_mail(c, e, username=name)
    relay.wait_one(e)
    seen = len(mail_events(srv))
    for suffix in ("x", "-" + secrets.token_hex(20)):
        assert_queued(forgot(c, username=name + suffix))
    wait_for(lambda: len(mail_events(srv)) >= seen + 2, what="both forgot rows resolved")
    hold_still(relay, e, 1, "no reset mail for a longer name")
    assert_queued(forgot(c, username=name.upper()))
    assert_reset_mail(relay.wait_messages(2, to=e, what="the reset by its own name")[1], e)


def test_reset_link_expires(c, relay, clock):
    """JWTD_RESET_TTL=1m: the link two minutes later is 400 invalid_link and
    the password is unchanged."""
    e = addr("rexp")
    username, password, _ = signup_mail(c, e)
    assert_queued(forgot(c, email=e))
    m = [x for x in relay.wait_messages(2, to=e) if is_reset(x)][0]
    with shifted(clock, 120_000):
        assert_error(reset(c, m.token, strong_password()), 400, "invalid_link")
    login(c, username, password)


def test_reset_link_void_after_another_password_change(srv, c, relay):
    """A password change another way voids the link sent before: POST
    /auth/password, and the operator's `jwtd user passwd`."""
    e = addr("void")
    username, password, _ = signup_mail(c, e)
    relay.wait_one(e)
    tok = login(c, username, password)["access_token"]

    assert_queued(forgot(c, email=e))
    m1 = assert_reset_mail(relay.wait_messages(2, to=e)[1], e)
    p2 = strong_password()
    r = c.post("/auth/password", {"current_password": password, "new_password": p2}, token=tok)
    assert r.status == 204, r
    assert_error(reset(c, m1.token, strong_password()), 400, "invalid_link")
    login(c, username, p2)

    assert_queued(forgot(c, username=username))
    m2 = assert_reset_mail(relay.wait_messages(3, to=e)[2], e)
    p3 = strong_password()
    p = subprocess.run([jwtd_bin(), "user", "passwd", username, "--password-stdin"],
                       env=clean_env({"JWTD_DATABASE": srv.db.url}),
                       input=(p3 + "\n").encode(), capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    assert_error(reset(c, m2.token, strong_password()), 400, "invalid_link")
    login(c, username, p3)


@pytest.mark.parametrize("value", ["a%FF", "a%FF%40example.com", "%C0%AF", "%ED%A0%80"],
                         ids=["ff", "ff-address", "overlong", "surrogate"])
def test_forgot_page_refuses_bytes_that_are_not_utf8(c, value):
    """Trap: the sign-in pages' "forgot password" form passed its bytes on
    as they came, and an identifier that is not UTF-8 (the JSON API's parser
    refuses those first) ended in a 500 with no log line. It is the form's
    400 ("give the account's e-mail address or username")."""
    r = c.request("POST", "/forgot-password", body=("identifier=" + value).encode(),
                  headers={"Origin": "http://%s:%d" % (c.host, c.port)},
                  content_type="application/x-www-form-urlencoded")
    assert r.status == 400, r
    assert r.header("Content-Type").startswith("text/html"), r.header("Content-Type")
    assert c.get("/healthz").status == 200


def test_reset_refuses_unknown_tokens(c, relay):
    """400 invalid_link for a token that was never issued, for an empty one,
    and for a verification link's token (wrong purpose)."""
    assert_error(reset(c, secrets.token_urlsafe(32), strong_password()), 400, "invalid_link")
    assert_error(reset(c, "", strong_password()), 400, "invalid_link")
    e = addr("purpose")
    signup_mail(c, e)
    m = assert_verify_mail(relay.wait_one(e), e)
    assert_error(reset(c, m.token, strong_password()), 400, "invalid_link")
    r = c.post("/auth/password/reset", {"token": m.token})
    assert_error(r, 400, "invalid_request")


# --------------------------------------------------------------------------
# 5. no enumeration through "forgot"
# --------------------------------------------------------------------------

def test_forgot_no_enumeration_timing(srv, c, relay):
    """A known and an unknown address (same length): every answer of
    /auth/password/forgot has the same status and the same body bytes, and
    the median times of 20 interleaved requests each are within a factor of
    two. The answers take 1-20 ms here, so one fsync stalled by a neighbour
    moves a median: a round out of bounds is measured again, up to three
    rounds (a real difference - a lookup, a hash - shows in every round).
    Only the known address gets mail (one per request); the unknown one's
    messages are dropped by the worker."""
    known, unknown = addr("known"), addr("unkno")
    assert len(known) == len(unknown)
    signup_mail(c, known)
    relay.wait_one(known)
    dropped0 = metric(c, "dropped")
    answers = set()
    asked = 0

    def ask(e, times):
        t0 = time.perf_counter()
        r = forgot(c, email=e)
        times.setdefault(e, []).append(time.perf_counter() - t0)
        answers.add((r.status, r.body))
        return r

    assert_queued(ask(known, {}))                     # warm-up, both
    assert_queued(ask(unknown, {}))
    asked += 1
    rounds = []
    for _ in range(3):
        times = {}
        for i in range(20):
            for e in ((known, unknown) if i % 2 else (unknown, known)):
                ask(e, times)
        asked += 20
        mk, mu = statistics.median(times[known]), statistics.median(times[unknown])
        rounds.append("known %.2f ms, unknown %.2f ms" % (mk * 1000, mu * 1000))
        print("forgot: median %s" % rounds[-1])
        if 0.5 <= mu / mk <= 2.0:
            break
    else:
        raise AssertionError("forgot medians differ by more than 2x in every round: %s"
                             % "; ".join(rounds))
    assert answers == {(202, b'{"status":"queued"}')}, answers

    got = relay.wait_messages(1 + asked, to=known, timeout=20,
                              what="%d reset mails" % asked)
    assert all(is_reset(m) for m in got[1:]), got
    wait_for(lambda: metric(c, "dropped") >= dropped0 + asked,
             what="%d dropped messages" % asked)
    hold_still(relay, known, 1 + asked, "one reset mail per request")
    assert relay.messages(unknown) == []


# --------------------------------------------------------------------------
# 6. faults: the relay down, 4xx, 5xx, jwtd killed, give-up
# --------------------------------------------------------------------------

@pytest.fixture
def down_relay():
    """A relay with a reserved port, NOT started."""
    s = SmtpServer(port=free_port())
    yield s
    s.close()


def test_relay_down_at_request_time_then_up(jwtd_factory, down_relay):
    """The relay is not running when the mail is asked for (sign-up and
    forgot: still 201/202); once it starts on the same port, each message is
    delivered, exactly once."""
    relay = down_relay
    srv = jwtd_factory(env=relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC))
    c = srv.client()
    e = addr("down")
    username, password, _ = signup_mail(c, e)
    assert_queued(forgot(c, email=e))
    t0 = time.monotonic()
    wait_for(lambda: len(mail_events(srv, "retry")) >= 4, what="failed attempts while down")
    print("relay down: %d retries logged in %.2fs; retry=%d"
          % (len(mail_events(srv, "retry")), time.monotonic() - t0, metric(c, "retry")))
    assert metric(c, "sent") == 0
    relay.start()
    t1 = time.monotonic()
    got = relay.wait_messages(2, to=e, what="delivery after the relay came back")
    print("relay up: delivered %d message(s) in %.2fs" % (len(got), time.monotonic() - t1))
    got = hold_still(relay, e, 2, "exactly once after an outage")
    assert sorted([is_verify(m), is_reset(m)] for m in got) == [[False, True], [True, False]], got
    m = [x for x in got if is_reset(x)][0]
    assert reset(c, m.token, strong_password()).status == 204
    assert wait_for(lambda: metric(c, "sent") == 2, what="sent=2")
    c.close()


def test_relay_answers_451_then_recovers(jwtd_factory, relay_451):
    """451 (temporary) to every RCPT: the message is retried (several refused
    attempts counted at the relay); after the relay restarts normally it is
    delivered, exactly once."""
    relay = relay_451
    srv = jwtd_factory(env=relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC))
    c = srv.client()
    e = addr("t451")
    username, password, _ = signup_mail(c)            # no address: no verification mail
    tok = login(c, username, password)["access_token"]
    assert patch_email(c, tok, e, password).status == 200
    wait_for(lambda: len([a for a in relay.attempts(e) if a[0] == "RCPT"]) >= 3,
             what="three refused attempts")
    refused = [a for a in relay.attempts(e) if a[0] == "RCPT"]
    assert all(a[1] == 451 for a in refused), refused
    print("451: %d refused attempt(s) seen at the relay, retry=%d, messages=%d"
          % (len(refused), metric(c, "retry"), len(relay.messages())))
    assert relay.messages() == []
    relay.restart()
    got = relay.wait_messages(1, to=e, what="delivery after the 451s")
    assert_verify_mail(got[0], e)
    hold_still(relay, e, 1, "exactly once after 451")
    print("451: delivered after restart; attempts: %s" % relay.attempts(e)[-2:])
    assert c.post("/auth/email/verify", {"token": got[0].token}).status == 200
    c.close()


def test_reset_link_void_when_the_password_changed_before_delivery(jwtd_factory, relay_451):
    """A reset asked for while the relay answers 451; the user then changes
    the password (POST /auth/password) before the relay recovers. The link
    that arrives afterwards was asked for before that change, so it must be
    refused (400 invalid_link: "void after any other password change"), and
    the password stays the one the user chose."""
    relay = relay_451
    srv = jwtd_factory(env=relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC))
    c = srv.client()
    e = addr("late")
    username, password, _ = signup_mail(c)
    tok = login(c, username, password)["access_token"]
    assert patch_email(c, tok, e, password).status == 200      # a verification, 451 too
    assert_queued(forgot(c, email=e))
    def refused():
        return len([a for a in relay.attempts(e) if a[0] == "RCPT"])
    wait_for(lambda: refused() >= 4, what="both messages refused at least once")
    p2 = strong_password()
    r = c.post("/auth/password", {"current_password": password, "new_password": p2}, token=tok)
    assert r.status == 204, r
    n = refused()
    wait_for(lambda: refused() >= n + 2, what="retries after the password change")
    relay.restart()
    m = [x for x in relay.wait_messages(2, to=e, what="delivery after the 451s") if is_reset(x)]
    assert len(m) == 1, relay.messages(e)
    r = reset(c, m[0].token, strong_password())
    print("reset link asked for before a password change, delivered after it: %d" % r.status)
    assert_error(r, 400, "invalid_link")
    login(c, username, p2)
    c.close()


@pytest.fixture
def relay_451():
    s = SmtpServer()
    s.start(rcpt_code=451)
    yield s
    s.close()


@pytest.fixture
def relay_550():
    s = SmtpServer()
    s.start(rcpt_code=550)
    yield s
    s.close()


def test_relay_answers_550_no_retry(jwtd_factory, relay_550):
    """550 (permanent): one attempt per message at the relay, never retried;
    jwtd logs one `event=mail outcome=failed` per message and counts
    jwtd_mail_total{result="failed"}; nothing arrives after the relay is
    fixed."""
    relay = relay_550
    srv = jwtd_factory(env=relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC))
    c = srv.client()
    e = addr("p550")
    username, password, _ = signup_mail(c, e)           # verification: 550
    assert_queued(forgot(c, email=e))                   # reset: 550
    wait_for(lambda: len(mail_events(srv, "failed")) >= 2, what="two failed messages")
    time.sleep(QUIET)
    rcpts = [a for a in relay.attempts() if a[0] == "RCPT"]
    failed = mail_events(srv, "failed")
    print("550: %d attempt(s) at the relay %s; log: %s" % (len(rcpts), rcpts, failed))
    assert rcpts == [("RCPT", 550, e)] * 2, rcpts
    assert len(failed) == 2 and len(mail_events(srv)) == 2, mail_events(srv)
    assert all("attempts=1" in l for l in failed), failed
    assert metric(c, "failed") == 2 and metric(c, "retry") == 0 and metric(c, "sent") == 0
    relay.restart()
    hold_still(relay, e, 0, "a permanently failed message stays failed")
    c.close()


def test_jwtd_killed_with_mail_queued(jwtd_factory, down_relay):
    """SIGKILL while messages wait in the outbox (the relay down: every
    attempt fails at once, and the kill comes right after a recorded
    failure, a second before the next attempt); jwtd restarted on the same
    database with the relay up delivers each message, exactly once, and the
    links work."""
    relay = down_relay
    # JWTD_SMTP_TIMEOUT=1s: should the kill ever land inside an attempt after
    # all (a stalled test process), the lease of that message (2 x timeout +
    # 10 s) ends within the wait below, and it is still exactly once.
    srv = jwtd_factory(env=relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC, JWTD_MAIL_RETRY="1s",
                                          JWTD_MAIL_RETRY_MAX="1s", JWTD_SMTP_TIMEOUT="1s"))
    c = srv.client()
    e = addr("kill")
    username, password, _ = signup_mail(c, e)
    assert_queued(forgot(c, email=e))

    def failed_ids():
        return {re.search(r"\bid=(\S+)", l).group(1) for l in mail_events(srv, "retry")}
    wait_for(lambda: len(failed_ids()) >= 2, what="both messages failed once")
    srv.stop(sig=signal.SIGKILL, expect_rc=-signal.SIGKILL)
    print("killed after: %s" % mail_events(srv))
    c.close()
    relay.start()
    srv.extra_env.update({"JWTD_MAIL_RETRY": "100ms", "JWTD_MAIL_RETRY_MAX": "200ms"})
    t0 = time.monotonic()
    srv.start()
    c = srv.client()
    got = relay.wait_messages(2, to=e, timeout=20, what="delivery after the restart")
    took = time.monotonic() - t0
    print("restart: %d message(s) delivered %.2fs after the restart%s"
          % (len(got), took, " (a lease had to expire: the kill hit an attempt)"
             if took > 5 else ""))
    got = hold_still(relay, e, 2, "exactly once after kill -9")
    mv, mr = [x for x in got if is_verify(x)], [x for x in got if is_reset(x)]
    assert len(mv) == 1 and len(mr) == 1, got
    assert c.post("/auth/email/verify", {"token": mv[0].token}).status == 200
    assert reset(c, mr[0].token, strong_password()).status == 204
    c.close()


def test_used_reset_link_stays_used_after_a_crash_mid_delivery(jwtd_factory, tmp_path):
    """Trap: jwtd killed while the relay had stored a reset mail but not yet
    answered 250: after the restart the mail was sent again (right: its
    delivery was never confirmed), and the retry stored its token again,
    so the link, used meanwhile and ended by a password change, reset the
    password once more. The retry sends the same link, and it stays void."""
    relay = SmtpServer()
    clock = JwtdClock(str(tmp_path / "clock"))
    try:
        relay.start()
        srv = jwtd_factory(env=relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC, JWTD_TEST_CLOCK=clock.path,
                                              JWTD_SMTP_TIMEOUT="1s", JWTD_RESET_TTL="1h",
                                              JWTD_VERIFY_TTL="1h"))
        c = srv.client()
        e = addr("crash")
        username, password, _ = signup_mail(c, e)
        assert c.post("/auth/email/verify", {"token": relay.wait_one(e).token}).status == 200
        relay.restart(hold_data=60)                    # stores, then keeps the 250
        assert_queued(forgot(c, email=e))
        mr = assert_reset_mail(relay.wait_messages(2, to=e, what="the reset")[1], e)
        new_pw, newer_pw = strong_password(), strong_password()
        assert reset(c, mr.token, new_pw).status == 204
        tok = login(c, username, new_pw)["access_token"]
        assert c.post("/auth/password", {"current_password": new_pw, "new_password": newer_pw},
                      token=tok).status == 204
        c.close()
        srv.stop(sig=signal.SIGKILL, expect_rc=-signal.SIGKILL)   # the 250 never came
        relay.restart()
        srv.start()
        c = srv.client()
        clock.set(15000)                               # the lease (2 x 1 s + 10 s) is over
        again = assert_reset_mail(relay.wait_messages(3, to=e, timeout=20,
                                                      what="the retried reset")[2], e)
        assert again.token == mr.token, "a retry sends the same link"
        assert_error(reset(c, mr.token, strong_password()), 400, "invalid_link")
        assert login(c, username, newer_pw)["user"]["username"] == username
        c.close()
    finally:
        relay.close()


def test_two_instances_on_one_outbox_send_each_message_once(jwtd_factory):
    """Trap: a worker leased up to 8 messages at once, for one attempt's time
    (2 x JWTD_SMTP_TIMEOUT + 10 s), then sent them one after the other.
    With a relay that takes a while per message (3 s here, under the 4 s
    timeout: nothing fails), the lease of the last ones ran out while they
    still waited in the first instance's batch; the second instance took
    them as if the first had died, and both sent them. Each message is
    leased when its own attempt starts: two instances on one outbox deliver
    every message exactly once."""
    relay = SmtpServer()
    try:
        relay.start(hold_data=3)
        env = relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC, JWTD_SMTP_TIMEOUT="4s")
        a = jwtd_factory(env=env, start=False)
        emails = [addr("lease") for _ in range(8)]
        for e in emails:               # queued before any worker runs: one batch
            p = a.cli("user", "add", uname("lease"), "--email", e, "--password-stdin",
                      env=env, input=(strong_password() + "\n").encode())
            assert p.returncode == 0, p.stderr.decode()
        a.start()
        b = jwtd_factory(env=env, database=a.db)
        relay.wait_messages(8, timeout=60, what="every verification")
        time.sleep(4 * SLOW)           # a duplicate still under way arrives
        got = relay.messages()
        per = {e: len([m for m in got if e in m.rcpt_to]) for e in emails}
        print("deliveries per address: %s" % sorted(per.values()))
        print("a: %s\nb: %s" % (mail_events(a), mail_events(b)))
        assert all(n == 1 for n in per.values()), per
    finally:
        relay.close()


def test_sent_messages_keep_no_secret(srv, c, relay):
    """Once a message is sent its outbox row keeps no parameters (they held
    the secret its link and code derive from, beside the name and
    address): a copy of the database taken afterwards cannot make the link."""
    e = addr("wipe")
    username, password, _ = signup_mail(c, e)
    assert_verify_mail(relay.wait_one(e), e)
    assert_queued(forgot(c, email=e))
    relay.wait_messages(2, to=e, what="the reset")

    def rows():
        return srv.db.query("SELECT kind, status, params FROM outbox")
    wait_for(lambda: sum(1 for k, st, _ in rows() if st == "sent") >= 2,
             what="both rows marked sent")
    for kind, status, params in rows():
        if status != "queued":   # sent, failed, dropped, given up: done
            assert params == "{}", (kind, status, params)


def test_give_up_after_mail_give_up(jwtd_factory, down_relay):
    """JWTD_MAIL_GIVE_UP=1s with the relay down: the messages are given up
    (logged, counted as given_up) and never sent, even once the relay is
    back."""
    relay = down_relay
    srv = jwtd_factory(env=relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC, JWTD_MAIL_GIVE_UP="1s"))
    c = srv.client()
    e = addr("giveup")
    signup_mail(c, e)
    assert_queued(forgot(c, email=e))
    t0 = time.monotonic()
    wait_for(lambda: metric(c, "given_up") >= 2, timeout=6, what="two messages given up")
    print("give-up: after %.2fs; log: %s" % (time.monotonic() - t0,
                                             mail_events(srv, "given_up")))
    # the log line comes before the count (mail.c), but reaches the test's
    # pipe a moment later
    wait_for(lambda: len(mail_events(srv, "given_up")) >= 2, timeout=2,
             what="two given_up log lines")
    assert len(mail_events(srv, "given_up")) == 2
    assert metric(c, "sent") == 0
    r = c.get("/metrics")
    assert re.search(r"^jwtd_mail_queued 0$", r.body.decode(), re.M), "queue not empty"
    relay.start()
    hold_still(relay, e, 0, "given-up messages are never sent")
    c.close()


# --------------------------------------------------------------------------
# 6b. relays that misbehave (mail_util.RawRelay: raw sockets, scripted)
# --------------------------------------------------------------------------

@pytest.fixture
def raw_relays():
    """RawRelay(...) made by the test, closed at its end."""
    made = []

    def make(**kw):
        made.append(RawRelay(**kw))
        return made[-1]
    yield make
    for r in made:
        r.close()


def mail_outcomes(srv):
    return [re.search(r"\boutcome=(\S+)", l).group(1) for l in mail_events(srv)]


# step -> (the relay's answer there, the outcome jwtd records)
MISBEHAVIOURS = {
    "421_greeting": ({"greeting": "421 4.3.2 busy"}, "retry"),
    "421_ehlo": ({"ehlo": "421 4.3.2 busy"}, "retry"),
    "421_mail": ({"mail": "421 4.3.2 busy"}, "retry"),
    "421_rcpt": ({"rcpt": "421 4.3.2 busy"}, "retry"),
    "421_data": ({"data": "421 4.3.2 busy"}, "retry"),
    "421_dot": ({"dot": "421 4.3.2 busy"}, "retry"),
    "452_rcpt": ({"rcpt": "452 4.2.2 mailbox full"}, "retry"),
    "452_dot": ({"dot": "452 4.3.1 out of space"}, "retry"),
    "552_rcpt": ({"rcpt": "552 5.2.2 over quota"}, "failed"),
    "552_dot": ({"dot": "552 5.3.4 too big"}, "failed"),
    "554_data": ({"data": "554 5.7.1 refused"}, "failed"),
    "multiline_421_greeting": ({"greeting": "421-4.3.2 busy\r\n421 4.3.2 try later"}, "retry"),
    "multiline_550_rcpt": ({"rcpt": "550-5.1.1 no such\r\n550 5.1.1 user"}, "failed"),
    "multiline_250_dot": ({"dot": "250-2.0.0 one\r\n250-two\r\n250 2.0.0 queued"}, "sent"),
    "endless_greeting_line": ({"greeting": "220 " + "x" * 400000}, "retry"),
    "endless_550_line": ({"rcpt": "550 " + "x" * 400000}, "retry"),
    "drip_greeting": ({"greeting": ("drip", "220 raw.test ESMTP")}, "retry"),
}


@pytest.mark.parametrize("case", sorted(MISBEHAVIOURS))
def test_relay_misbehaving_at_each_step(jwtd_factory, raw_relays, case):
    """The outcome of a reply at each step of the dialogue (docs/mail.md,
    The outbox): 421 and other 4xx anywhere, a reply line no client should
    read (400 kB: refused by libcurl) and a greeting dripped a byte per
    0.3 s past JWTD_SMTP_TIMEOUT are retried; 5xx to RCPT or to the message
    fails the message; multi-line replies are read as one."""
    script, want = MISBEHAVIOURS[case]
    relay = raw_relays(script=script, drip_s=0.3)
    srv = jwtd_factory(env=relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC, JWTD_SMTP_TIMEOUT="1s"))
    c = srv.client()
    signup_mail(c, addr("step"))
    wait_for(lambda: mail_events(srv), timeout=5, what="the first attempt's outcome")
    print("%s: %s" % (case, mail_events(srv)[0]))
    assert mail_outcomes(srv)[0] == want, mail_events(srv)
    c.close()


def test_relay_silent_after_the_message_is_cut_at_the_timeout(jwtd_factory, raw_relays):
    """Trap: a relay that read the whole message and then never answered
    the end of DATA held the attempt for 120 s (libcurl's own wait for that
    reply, which its CURLOPT_TIMEOUT does not bound), whatever
    JWTD_SMTP_TIMEOUT said - and past the message's lease (2 x 1 s + 10 s
    here), after which another instance could send it too. The attempt
    ends at JWTD_SMTP_TIMEOUT (1 s, checked each second); whether the relay
    kept the message is unknown, so it goes again: at least once, both
    copies with the same Message-ID (docs/mail.md, The outbox)."""
    relay = raw_relays(scripts=[{"dot": "hang"}])
    srv = jwtd_factory(env=relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC, JWTD_SMTP_TIMEOUT="1s"))
    c = srv.client()
    signup_mail(c, addr("silent"))
    t0 = time.monotonic()
    wait_for(lambda: mail_events(srv, "sent"), timeout=6, what="the retry after the time-out")
    print("silent after the message: sent %.2fs after sign-up; %s"
          % (time.monotonic() - t0, mail_events(srv)))
    assert mail_outcomes(srv) == ["retry", "sent"], mail_events(srv)
    assert "timed out" in mail_events(srv, "retry")[0]
    ids = relay.message_ids()
    assert len(ids) == 2 and ids[0] == ids[1] and ids[0], ids
    c.close()


def test_relay_silent_after_quit_holds_nothing_up(jwtd_factory, raw_relays):
    """Trap: a relay that answered 250 to the message but never answered
    QUIT held each attempt for 120 s after the message was in (libcurl waits
    for the reply to QUIT, bounded by nothing jwtd set): three messages took
    six minutes. Each is sent once, within the time-out."""
    relay = raw_relays(script={"quit": "hang"})
    srv = jwtd_factory(env=relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC, JWTD_SMTP_TIMEOUT="1s"))
    c = srv.client()
    for _ in range(3):
        signup_mail(c, addr("quit"))
    wait_for(lambda: len(mail_events(srv, "sent")) == 3, timeout=8, what="three sent")
    assert mail_outcomes(srv) == ["sent"] * 3, mail_events(srv)
    assert len(relay.received) == 3
    c.close()


@pytest.mark.parametrize("where", ["mid_data", "after_the_dot"])
def test_connection_dropped_during_the_message(jwtd_factory, raw_relays, where):
    """The relay drops the connection in the middle of the message, or after
    its final dot but before any reply (the ambiguous case: it may have
    kept the message). Either way jwtd cannot know it was taken: the
    message is retried and delivered. After the dot the relay holds two
    copies (delivery is at least once, docs/mail.md) with one Message-ID."""
    script = {"body": "close"} if where == "mid_data" else {"dot": "close"}
    relay = raw_relays(scripts=[script])
    srv = jwtd_factory(env=relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC))
    c = srv.client()
    signup_mail(c, addr("drop"))
    wait_for(lambda: mail_events(srv, "sent"), timeout=5, what="delivery after the drop")
    assert mail_outcomes(srv) == ["retry", "sent"], mail_events(srv)
    ids = relay.message_ids()
    assert len(ids) == (1 if where == "mid_data" else 2) and len(set(ids)) == 1, ids
    c.close()


def test_stop_while_the_relay_says_nothing(jwtd_factory, raw_relays):
    """Trap: SIGTERM while the relay had accepted the connection and said
    nothing: jwtd waited out the attempt (the 10 s connect time-out here),
    then went on with the next due message, and the next: a stop took
    8 x 10 s, far past the service manager's TimeoutStopSec=15, which ends
    it with SIGKILL. The attempt under way is cut within a second and no
    other starts; the message stays queued and due at once, so the next
    start sends each message, once, without waiting for a lease (2 x 20 s
    + 10 s here)."""
    relay = raw_relays(scripts=[{"greeting": "hang"}] * 4)
    srv = jwtd_factory(env=relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC, JWTD_SMTP_TIMEOUT="20s"))
    c = srv.client()
    emails = [addr("stop") for _ in range(2)]
    for e in emails:
        signup_mail(c, e)
    c.close()
    wait_for(lambda: relay.connections >= 1, what="an attempt under way")
    t0 = time.monotonic()
    srv.stop(timeout=4 * SLOW)
    print("stop with a silent relay: %.2fs; %s" % (time.monotonic() - t0, mail_events(srv)))
    assert mail_outcomes(srv) == ["retry"] and "stopping" in mail_events(srv)[0], \
        mail_events(srv)
    assert "attempts=0" in mail_events(srv)[0]
    relay.scripts = []
    srv.start()
    wait_for(lambda: len(mail_events(srv, "sent")) == 2, timeout=5, what="both sent at once")
    time.sleep(QUIET)
    assert sorted(r for rcpts, _ in relay.received for r in rcpts) == sorted(emails)


def test_stop_while_the_relay_answers_the_message(jwtd_factory, raw_relays):
    """Trap: SIGTERM while a relay that scans what it takes was answering the
    message's final dot (here the 250 comes byte by byte over ~2 s): the
    attempt was cut within a second, its fate unknown, and the next start
    sent the message a second time. Once the whole message is out, a stop
    waits up to 2 s for the answer: sent once, and the stop is still quick."""
    relay = raw_relays(script={"dot": ("drip", "250 2.0.0 queued")}, drip_s=0.1)
    srv = jwtd_factory(env=relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC, JWTD_SMTP_TIMEOUT="20s"))
    c = srv.client()
    signup_mail(c, addr("scan"))
    c.close()
    wait_for(lambda: len(relay.received) == 1, what="the message's final dot at the relay")
    t0 = time.monotonic()
    srv.stop(timeout=10 * SLOW)
    took = time.monotonic() - t0
    print("stop while the relay answered: %.2fs; %s" % (took, mail_events(srv)))
    assert mail_outcomes(srv) == ["sent"], mail_events(srv)
    assert took < 6 * SLOW, took
    srv.start()
    time.sleep(QUIET)
    assert len(relay.received) == 1, "sent again after the restart"


# --------------------------------------------------------------------------
# 7. without SMTP
# --------------------------------------------------------------------------

def test_without_smtp(server, client):
    """No JWTD_SMTP_URL: forgot and verify/request are 501 not_configured;
    `jwtd user reset-link NAME` prints JWTD_PUBLIC_URL/reset-password?token=
    ... whose token resets the password through the API, once."""
    e = addr("nosmtp")
    username, password, _ = signup_mail(client, e)
    tok = login(client, username, password)["access_token"]
    assert_error(forgot(client, email=e), 501, "not_configured")
    assert_error(forgot(client, username=username), 501, "not_configured")
    assert_error(client.post("/auth/email/verify/request", token=tok), 501, "not_configured")

    base = "https://ops.mail-e2e.test"
    p = subprocess.run([jwtd_bin(), "user", "reset-link", username],
                       env=clean_env({"JWTD_DATABASE": server.db.url, "JWTD_PUBLIC_URL": base}),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr.decode()
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(base + "/reset-password?token="), out
    (token,) = urllib.parse.parse_qs(urllib.parse.urlsplit(lines[0]).query)["token"]
    assert TOKEN_RE.match(token), lines[0]
    new = strong_password()
    assert reset(client, token, new).status == 204
    assert_refused_within(client, tok, time.monotonic(), bound=1.0, interval=POLL, give_up=2.0)
    login(client, username, new)
    assert_error(reset(client, token, strong_password()), 400, "invalid_link")
    # The operator's link was never mailed: it proves nothing about the
    # address (seen: the unverified address became verified by it).
    tok = login(client, username, new)["access_token"]
    assert_user(me(client, tok), username, email=e, verified=False)

    p = subprocess.run([jwtd_bin(), "user", "reset-link", uname("nobody")],
                       env=clean_env({"JWTD_DATABASE": server.db.url, "JWTD_PUBLIC_URL": base}),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert p.returncode != 0 and "token=" not in p.stdout.decode(), p

    # Trap: with the pages off the link was a 404 in the person's hands, and
    # without a public URL it could be http://0.0.0.0:8080/...; exit 0 both
    # times, no word said.
    def reset_link(env):
        return subprocess.run([jwtd_bin(), "user", "reset-link", username],
                              env=clean_env(dict({"JWTD_DATABASE": server.db.url}, **env)),
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    p = reset_link({"JWTD_PUBLIC_URL": base, "JWTD_PAGES": "off"})
    assert p.returncode == 1 and "pages are off" in p.stderr.decode(), p
    assert "token=" not in p.stdout.decode(), p
    p = reset_link({"JWTD_LISTEN": "0.0.0.0:8080"})
    assert p.returncode == 0 and "http://0.0.0.0:8080/reset-password?token=" in p.stdout.decode()
    assert "warning: JWTD_PUBLIC_URL is not set" in p.stderr.decode(), p


# --------------------------------------------------------------------------
# 8. abuse limits
# --------------------------------------------------------------------------

def test_mail_rate_limits(jwtd_factory, relay):
    """JWTD_MAIL_ACCOUNT_RATE=2: the third forgot for one address is 429
    too_many_attempts, for a known and an unknown address alike (same body);
    JWTD_MAIL_RATE=4 per client address (X-Forwarded-For from a trusted
    proxy): the fifth request from one client is 429, another client is
    still served. Refused requests send nothing."""
    srv = jwtd_factory(env=relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC, JWTD_MAIL_ACCOUNT_RATE="2",
                                          JWTD_MAIL_RATE="4",
                                          JWTD_TRUSTED_PROXIES="127.0.0.1"))
    c = srv.client()
    known, unknown = addr("rk"), addr("ru")
    signup_mail(c, known)
    relay.wait_one(known)

    def ask(e, client_addr):
        return c.post("/auth/password/forgot", {"email": e},
                      headers={"X-Forwarded-For": client_addr})

    bodies = []
    for e, ip in ((known, "198.51.100.1"), (unknown, "198.51.100.2")):
        assert_queued(ask(e, ip))
        assert_queued(ask(e, ip))
        r = ask(e, ip)
        assert_error(r, 429, "too_many_attempts")
        assert r.header("Retry-After"), r
        bodies.append(r.body)
        assert_error(ask(e.upper(), "198.51.100.9"), 429, "too_many_attempts")
    # The same body but for the seconds left in each subject's window
    # (each began at its own first request: no sign of the account).
    waits = [int(re.search(rb"try again in (\d+) seconds", b).group(1)) for b in bodies]
    assert all(590 <= w <= 600 for w in waits), bodies
    same = [re.sub(rb"in \d+ seconds", b"in N seconds", b) for b in bodies]
    assert same[0] == same[1], bodies

    for i in range(4):
        assert_queued(ask(addr("rc%d" % i), "198.51.100.3"))
    assert_error(ask(addr("rc4"), "198.51.100.3"), 429, "too_many_attempts")
    assert_queued(ask(addr("rc5"), "198.51.100.4"))

    relay.wait_messages(3, to=known, what="two reset mails")
    hold_still(relay, known, 3, "refused requests send nothing")
    c.close()


def test_mail_limit_per_ipv6_client_is_per_64(jwtd_factory, relay):
    """Trap: the per-client-address limit keyed an IPv6 client by its whole
    address, and a client has a /64 (2^64 addresses) to send from: 30
    addresses of one /64 all passed a limit of 20. An IPv6 client counts as
    its /64; another /64 is another client."""
    srv = jwtd_factory(env=relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC, JWTD_MAIL_RATE="4",
                                          JWTD_TRUSTED_PROXIES="127.0.0.1"))
    c = srv.client()

    def ask(client_addr):
        return c.post("/auth/password/forgot", {"email": addr("v6")},
                      headers={"X-Forwarded-For": client_addr})
    for i in range(1, 5):
        assert_queued(ask("2001:db8:1:2::%x" % i))
    assert_error(ask("2001:db8:1:2:ffff:ffff:ffff:ffff"), 429, "too_many_attempts")
    assert_queued(ask("2001:db8:1:3::1"))
    c.close()


def test_mail_limits_of_one_kind_leave_the_others_alone(jwtd_factory, relay):
    """Trap: every mail limit's subject shared one namespace. A forgot for
    an account's id (its `sub`, often public) used up that account's own
    counter (its verification requests 429), and a forgot for "signup:" and
    an address told whether someone had signed up with it. Identifiers,
    accounts and sign-ups now count apart, and the counters' keys (also
    logged) are hashes keyed with a server secret, not SHA-256 of the
    address."""
    srv = jwtd_factory(env=relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC, JWTD_MAIL_ACCOUNT_RATE="2",
                                          JWTD_MAIL_RATE="1000"))
    c = srv.client()
    e = addr("ns")
    username, password, user = signup_mail(c, e)
    relay.wait_one(e)
    tok = login(c, username, password)["access_token"]
    for _ in range(2):
        assert_queued(forgot(c, username=user["id"]))
    assert_error(forgot(c, username=user["id"]), 429, "too_many_attempts")
    assert_queued(c.post("/auth/email/verify/request", token=tok))   # its own counter

    # a signed-up address and an unused one answer alike
    fresh = addr("nsfresh")
    for probe in (e, fresh):
        for _ in range(2):
            assert_queued(forgot(c, email="signup:" + probe))
        assert_error(forgot(c, email="signup:" + probe), 429, "too_many_attempts")

    # the logged key is not the address's plain hash
    assert_queued(forgot(c, email=fresh))
    assert_queued(forgot(c, email=fresh))
    assert_error(forgot(c, email=fresh), 429, "too_many_attempts")
    plain = hashlib.sha256(fresh.lower().encode()).hexdigest()[:32]
    limited = [l for l in srv.log().splitlines() if "event=rate_limited" in l]
    assert limited and all(plain not in l for l in limited), limited
    assert fresh not in srv.log()
    c.close()


# --------------------------------------------------------------------------
# 9. templates
# --------------------------------------------------------------------------

def test_templates_override_subject_and_text(jwtd_factory, relay, tmp_path):
    """JWTD_MAIL_TEMPLATES with reset_password.subject and .txt: the subject
    and the text part are the operator's ({{link}}, {{username}} filled
    in); the HTML part is still the built-in one; the link works."""
    tdir = tmp_path / "templates"
    tdir.mkdir()
    (tdir / "reset_password.subject").write_text("Password help for {{username}}")
    (tdir / "reset_password.txt").write_text(
        "Hi {{username}},\n\nyour link: {{link}}\n\n-- the operators\n")
    srv = jwtd_factory(env=relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC,
                                          JWTD_MAIL_TEMPLATES=str(tdir)))
    c = srv.client()
    e = addr("tpl")
    username, password, _ = signup_mail(c, e)
    assert_queued(forgot(c, email=e))
    m = [x for x in relay.wait_messages(2, to=e) if is_reset(x)][0]
    assert m.subject == "Password help for %s" % username, m.subject
    assert m.text.replace("\r\n", "\n") == "Hi %s,\n\nyour link: %s\n\n-- the operators\n" % (
        username, m.link), repr(m.text)
    assert m.link.startswith(PUBLIC + "/reset-password?token=")
    assert "Choose a new password" in m.html and m.link in m.html, m.html
    assert "the operators" not in m.html
    v = [x for x in relay.messages(e) if is_verify(x)][0]
    assert v.subject.startswith("Confirm your e-mail address"), v.subject
    assert reset(c, m.token, strong_password()).status == 204
    c.close()


def test_subject_templates_with_tabs_or_great_length_still_send(jwtd_factory, relay,
                                                                  tmp_path):
    """Trap: an operator's subject template with a tab (or another control
    character), or of some 1,250 characters, made every message of its
    kind fail for good ("cannot be built"). Control characters become
    spaces and a subject is cut at 200 bytes, between UTF-8 characters."""
    tdir = tmp_path / "templates"
    tdir.mkdir()
    (tdir / "verify_email.subject").write_text("Confirm\tfor\u0085{{username}}\x01\u2028"
                                               + "\u00e9" * 700)
    # a template with a NUL would have been cut there, silently: the
    # built-in one is used instead, and the log says why
    (tdir / "reset_password.subject").write_text("Reset\x00 it")
    srv = jwtd_factory(env=relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC,
                                          JWTD_MAIL_TEMPLATES=str(tdir)))
    c = srv.client()
    e = addr("subj")
    username, _, _ = signup_mail(c, e)
    m = relay.wait_one(e)
    want = ("Confirm for %s  " % username) + "\u00e9" * 700
    cut = want.encode()[:200].decode("utf-8", "ignore")
    assert m.subject == cut, (m.subject, cut)
    assert len(m.subject.encode()) <= 200
    assert m.link and m.link.startswith(PUBLIC + "/verify-email?token="), m.text
    assert_queued(forgot(c, email=e))
    m = relay.wait_messages(2, to=e)[-1]
    assert m.subject.startswith("Reset your password"), m.subject   # the built-in one
    wait_for(lambda: "holds a NUL byte" in srv.log(), what="the unusable template logged")
    c.close()


def test_template_filled_in_past_the_cap_fails_instead_of_losing_its_link(jwtd_factory,
                                                                           relay, tmp_path):
    """Found by an audit: a template whose values, filled in, passed the
    256 KiB cap lost values silently (the link among them: a later, shorter
    value still fitted) and was sent so. Now such a message is not sent; it
    fails, logged with the reason, and the other kinds still go out."""
    tdir = tmp_path / "templates"
    tdir.mkdir()
    # 63 KiB of template (under the 64 KiB file cap), some 900 KiB filled in
    (tdir / "verify_email.txt").write_text("{{link}}\n" * 7000)
    srv = jwtd_factory(env=relay.jwtd_env(JWTD_PUBLIC_URL=PUBLIC,
                                          JWTD_MAIL_TEMPLATES=str(tdir)))
    c = srv.client()
    e = addr("cap")
    signup_mail(c, e)
    wait_for(lambda: re.search(r"event=mail .*kind=verify_email.*over 256 KiB", srv.log()),
             what="the verification mail failed, with its reason")
    assert_queued(forgot(c, email=e))
    got = relay.wait_messages(1, to=e)   # the verification failed before it was asked
    assert len(got) == 1 and is_reset(got[0]), [m.subject for m in got]
    c.close()


# --------------------------------------------------------------------------
# 10. metrics
# --------------------------------------------------------------------------

def test_metrics_count_sent_mail(c, relay):
    """/metrics: jwtd_mail_total{result=...} for sent, retry, failed,
    given_up, dropped and the jwtd_mail_queued gauge; "sent" grows with each
    delivered message, "dropped" with a forgot for no account."""
    text = c.get("/metrics").body.decode()
    assert "# TYPE jwtd_mail_total counter" in text
    for res in ("sent", "retry", "failed", "given_up", "dropped"):
        metric(c, res)
    assert re.search(r"^jwtd_mail_queued \d+$", text, re.M), "no jwtd_mail_queued gauge"
    sent0, dropped0 = metric(c, "sent"), metric(c, "dropped")
    e = addr("met")
    signup_mail(c, e)
    relay.wait_one(e)
    assert_queued(forgot(c, email=e))
    assert_queued(forgot(c, email=addr("metnone")))
    relay.wait_messages(2, to=e)
    wait_for(lambda: metric(c, "sent") >= sent0 + 2, what="sent +2")
    wait_for(lambda: metric(c, "dropped") >= dropped0 + 1, what="dropped +1")
    print("metrics: sent %d -> %d, dropped %d -> %d" % (sent0, metric(c, "sent"), dropped0,
                                                        metric(c, "dropped")))

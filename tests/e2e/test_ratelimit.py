# SPDX-License-Identifier: Apache-2.0
"""Abuse limits: per-username login back-off, per-address failed-login limit,
signup and refresh rates, X-Forwarded-For with and without trusted proxies,
parallel guesses, and counters shared by two instances on one database.

API.md: "Repeated failures per username and per client address are slowed down
(429 too_many_attempts + Retry-After; by default at the latest after 10
consecutive failures); the counters live in the shared storage, are updated
atomically (parallel guesses cannot slip past the limit), and hold across
instances." docs/configuration.md names the settings used here.

Each test starts its own server(s) so that no counter leaks between tests.
Measured figures are printed (run with -s to see them)."""

import collections
import http.client
import json
import threading
import time

import pytest

from e2e_util import (assert_error, refresh, signup, strong_password, uname)

LIMIT = 10                       # JWTD_LOGIN_MAX_FAILURES default
# Where the length of the back-off is not the subject, a long first back-off keeps
# the block in place while the test looks at it (the default 1 s can run out on a
# loaded machine between two requests).
LONG_BACKOFF = {"JWTD_LOGIN_BACKOFF": "60s"}


def attempt(client, username, password, headers=None):
    return client.post("/auth/login", {"username": username, "password": password},
                       headers=headers)


def assert_429(resp):
    """429 too_many_attempts in the contract's shape with an integer Retry-After >= 1."""
    assert_error(resp, 429, "too_many_attempts")
    ra = resp.header("Retry-After")
    assert ra is not None and ra.strip().isdigit(), "Retry-After %r in %r" % (ra, resp)
    assert int(ra) >= 1, resp
    return int(ra)


def fail_n(client, username, n, headers=None):
    for i in range(n):
        r = attempt(client, username, "wrong-password-%d" % i, headers)
        assert_error(r, 401, "invalid_credentials")


def report(name, **figures):
    print("\n[ratelimit] %s: %s" % (name, ", ".join("%s=%s" % kv for kv in figures.items())))


# ---------------------------------------------------------------- per username

def test_username_backoff_defaults(jwtd_factory):
    srv = jwtd_factory()
    c = srv.client()
    username, password, user = signup(c)
    fail_n(c, username, LIMIT)                                    # 10 x 401
    t_blocked = time.monotonic()
    ra = assert_429(attempt(c, username, "wrong-password-11"))    # the 11th
    # even the right password is refused while blocked
    ra2 = assert_429(attempt(c, username, password))
    assert ra2 <= ra
    report("username back-off", first_retry_after=ra, second_retry_after=ra2)
    assert ra <= 15 * 60
    # after Retry-After, the right password works and clears the failures
    time.sleep(max(0.0, t_blocked + ra - time.monotonic()) + 0.1)
    r = attempt(c, username, password)
    assert r.status == 200, "after waiting Retry-After=%d s: %r" % (ra, r)
    assert r.json["user"]["id"] == user["id"]
    fail_n(c, username, LIMIT)                                    # 10 more are allowed
    assert_429(attempt(c, username, "wrong-password-again"))


def test_username_backoff_grows(jwtd_factory):
    """1 s, then 2 s, 4 s, ... (docs/api.md): a failure right after a block ends
    gives a longer Retry-After."""
    srv = jwtd_factory(env={"JWTD_LOGIN_MAX_FAILURES": "2"})
    c = srv.client()
    username, password, _ = signup(c)
    fail_n(c, username, 2)
    ras = []
    for _ in range(2):
        t0 = time.monotonic()
        ra = assert_429(attempt(c, username, "wrong"))
        ras.append(ra)
        time.sleep(max(0.0, t0 + ra - time.monotonic()) + 0.1)
        r = attempt(c, username, "still-wrong")                   # allowed again, fails
        assert_error(r, 401, "invalid_credentials")
    ras.append(assert_429(attempt(c, username, "wrong")))
    report("back-off growth", retry_afters=ras)
    assert ras[0] >= 1 and ras[1] >= ras[0] and ras[2] > ras[0], ras


def test_username_limit_is_case_insensitive(jwtd_factory):
    srv = jwtd_factory(env=LONG_BACKOFF)
    c = srv.client()
    base = "Alice" + uname("")[1:].replace("-", "")
    username, password, user = signup(c, username=base)
    spellings = [base, base.lower(), base.upper(), base.swapcase()]
    for i in range(LIMIT):
        r = attempt(c, spellings[i % len(spellings)], "wrong-password-%d" % i)
        assert_error(r, 401, "invalid_credentials")
    for s in spellings:
        assert_429(attempt(c, s, password))


def test_unknown_username_limited_the_same_way(jwtd_factory):
    """No account-existence oracle: an unknown username goes through the same
    statuses (10 x 401, then 429 with Retry-After) as an existing one. (The
    per-address run of failures, 10 by default, would stop this alternation
    first: it is lifted here.)"""
    srv = jwtd_factory(env=dict(LONG_BACKOFF, JWTD_ADDRESS_BACKOFF_AFTER="1000"))
    c = srv.client()
    known, _, _ = signup(c)
    ghost = uname("ghost")
    seq = {known: [], ghost: []}
    last = {}
    # attempt by attempt, alternating, so that both blocks start together
    for i in range(LIMIT + 2):
        for name in (known, ghost):
            r = attempt(c, name, "wrong-password-%d" % i)
            seq[name].append(r.status)
            last[name] = r
            if r.status == 429:
                assert_429(r)
            else:
                assert_error(r, 401, "invalid_credentials")
    assert seq[known] == seq[ghost] == [401] * LIMIT + [429, 429], seq
    # same answers, body and Retry-After
    a, b = last[known], last[ghost]
    assert a.json == b.json, (a, b)
    assert a.header("Retry-After") == b.header("Retry-After"), (a, b)
    # the ghost's case-variants share the counter as well
    assert_429(attempt(c, ghost.upper(), "x-wrong-password"))


# ---------------------------------------------------------------- parallel guesses

def parallel_logins(targets, bodies, extra_headers=None):
    """One connection per body (targets[i % len(targets)] = server), all released
    at once by a barrier. Returns [(status, json, headers)]."""
    n = len(bodies)
    barrier = threading.Barrier(n)
    out = [None] * n

    def run(i):
        srv = targets[i % len(targets)]
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=60)
        payload = json.dumps(bodies[i]).encode()
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(extra_headers or {})
        try:
            conn.connect()
            barrier.wait(timeout=60)
            conn.request("POST", "/auth/login", body=payload, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
            try:
                doc = json.loads(data)
            except ValueError:
                doc = None
            out[i] = (r.status, doc, dict(r.getheaders()))
        except Exception as e:                                  # noqa: BLE001
            out[i] = ("error: %r" % (e,), None, {})
        finally:
            conn.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_parallel_guesses_cannot_slip_past_the_limit(jwtd_factory):
    srv = jwtd_factory(env=dict(LONG_BACKOFF, JWTD_HASH_QUEUE="200",
                                JWTD_ADDRESS_MAX_FAILURES="100000"))
    c = srv.client()
    username, password, _ = signup(c)
    answers = parallel_logins([srv], [{"username": username, "password": "guess-%03d" % i}
                                      for i in range(100)])
    counts = collections.Counter(a[0] for a in answers)
    report("100 parallel guesses, one account", **{str(k): v for k, v in sorted(
        counts.items(), key=str)})
    assert counts[200] == 0, counts
    assert counts[401] <= LIMIT, counts
    assert set(counts) <= {401, 429, 503}, counts
    for status, doc, headers in answers:
        if status == 429:
            assert doc == {"error": "too_many_attempts", "error_description": doc["error_description"]}
            assert headers.get("Retry-After", "").isdigit(), headers
        if status == 503:
            assert doc["error"] == "server_busy" and headers.get("Retry-After"), (doc, headers)
    # the account is blocked now, even for the right password
    assert_429(attempt(c, username, password))


def test_parallel_guesses_across_two_instances(jwtd_factory):
    """The same, half the guesses to each of two servers sharing one database."""
    env = dict(LONG_BACKOFF, JWTD_HASH_QUEUE="200", JWTD_ADDRESS_MAX_FAILURES="100000")
    a = jwtd_factory(env=env)
    b = jwtd_factory(env=env, database=a.db)
    c = a.client()
    username, password, _ = signup(c)
    answers = parallel_logins([a, b], [{"username": username, "password": "guess-%03d" % i}
                                       for i in range(60)])
    counts = collections.Counter(x[0] for x in answers)
    report("60 parallel guesses over two instances", **{str(k): v for k, v in sorted(
        counts.items(), key=str)})
    assert counts[200] == 0, counts
    assert counts[401] <= LIMIT, counts
    assert set(counts) <= {401, 429, 503}, counts


# ---------------------------------------------------------------- per address

def test_address_limit(jwtd_factory):
    srv = jwtd_factory(env={"JWTD_ADDRESS_MAX_FAILURES": "5", "JWTD_LOGIN_MAX_FAILURES": "1000"})
    c = srv.client()
    username, password, _ = signup(c)
    statuses = []
    # successes interleaved (three after each of the first four failures): they do
    # not count, or the limit would be reached long before the 6th failure
    for i in range(5):
        r = attempt(c, uname("addr%d" % i), "wrong-password-1")
        statuses.append(r.status)
        assert_error(r, 401, "invalid_credentials")
        if i < 4:
            for _ in range(3):
                r = attempt(c, username, password)
                assert r.status == 200, "a success was limited after %d failures: %r" % (i + 1, r)
    r = attempt(c, uname("addr6"), "wrong-password-1")             # the 6th failure
    statuses.append(r.status)
    ra = assert_429(r)
    assert ra <= 600, ra                                            # within the 10 min window
    # another new username from the same address: still 429
    assert_429(attempt(c, uname("addr7"), "wrong-password-1"))
    right = attempt(c, username, password)
    report("address limit 5", statuses=statuses, retry_after=ra,
           right_password_while_address_blocked=right.status)
    assert right.status in (200, 429), right
    if right.status == 429:
        assert_429(right)


def test_address_backoff_defaults(jwtd_factory):
    """API.md: failures per client address are slowed down at the latest after
    10 consecutive ones, by default: ten unknown usernames from one address,
    and the 11th attempt (an 11th name, or a real account's right password)
    is 429; once the back-off has passed, a success starts the run over."""
    srv = jwtd_factory()
    c = srv.client()
    username, password, _ = signup(c)
    for i in range(LIMIT):
        assert_error(attempt(c, uname("seq%d" % i), "wrong-password-1"), 401,
                     "invalid_credentials")
    t_blocked = time.monotonic()
    ra = assert_429(attempt(c, uname("seq-11th"), "wrong-password-1"))
    assert_429(attempt(c, username, password))   # even a right password, while blocked
    report("address back-off", retry_after=ra)
    time.sleep(max(0.0, t_blocked + ra - time.monotonic()) + 0.1)
    r = attempt(c, username, password)
    assert r.status == 200, "after waiting Retry-After=%d s: %r" % (ra, r)
    # the run starts over: ten more failures are answered 401
    for i in range(LIMIT):
        assert_error(attempt(c, uname("again%d" % i), "wrong-password-1"), 401,
                     "invalid_credentials")
    assert_429(attempt(c, uname("again-11th"), "wrong-password-1"))


def test_default_address_window_leaves_room_for_a_test_rig(jwtd_factory):
    """A suite logging in from one address all day, its failures never ten in
    a row: 300 failed logins on unknown usernames within a window, a right
    password after every eight, are all answered 401 / 200, never 429 (the
    default JWTD_ADDRESS_MAX_FAILURES is 1,000 per 10 minutes; it was 100,
    which refused every login, right passwords included, after the 100th
    failure)."""
    srv = jwtd_factory()
    c = srv.client()
    username, password, _ = signup(c)
    statuses = collections.Counter()
    for i in range(300):
        r = attempt(c, uname("rig%d" % i), "wrong-password-1")
        statuses[r.status] += 1
        assert r.status == 401, "failure %d answered %r" % (i + 1, r)
        if i % 8 == 7:
            r = attempt(c, username, password)
            statuses[r.status] += 1
            assert r.status == 200, "a right password after %d failures: %r" % (i + 1, r)
    report("default address window, one rig", statuses=dict(statuses))


def test_guesses_at_one_account_do_not_lock_the_address(jwtd_factory):
    """The address's run of failures counts accounts, not guesses: ten wrong
    passwords for one name block that name (429 for it), while another
    account behind the same address (a NAT, an office) still signs in."""
    srv = jwtd_factory(env=LONG_BACKOFF)
    c = srv.client()
    target, _, _ = signup(c)
    other, other_pw, _ = signup(c)
    fail_n(c, target, LIMIT)
    assert_429(attempt(c, target, "wrong-password-11"))
    r = attempt(c, other, other_pw)
    assert r.status == 200, r
    # and a spray across names is still stopped by the address's run
    for i in range(LIMIT):
        assert_error(attempt(c, uname("spray%d" % i), "wrong-password-1"), 401,
                     "invalid_credentials")
    assert_429(attempt(c, uname("spray-11th"), "wrong-password-1"))


def test_unknown_address_identifier_counted_as_normalized(jwtd_factory):
    """An identifier that is no account is counted in the form the lookup
    used (an address trimmed and lower-cased), as a known one is counted on
    its account: " x@y" after ten failures of "x@y" is 429 either way, so the
    back-off does not tell which addresses belong to accounts."""
    srv = jwtd_factory(env=dict(LONG_BACKOFF, JWTD_ADDRESS_BACKOFF_AFTER="1000"))
    c = srv.client()
    known = uname("known").lower() + "@example.com"
    r = c.post("/auth/signup", {"username": uname("k"), "password": strong_password(),
                                "email": known})
    assert r.status == 201, r
    for ident in (known, uname("nobody").lower() + "@example.com"):
        fail_n(c, ident, LIMIT)
        for variant in (" " + ident, ident.upper(), ident + " "):
            assert_429(attempt(c, variant, "wrong-password-x"))


def test_backoff_keys_keep_no_typed_identifier(jwtd_factory):
    """Trap: the back-off counted an identifier no account has under the
    text as typed (`login:user:someone@example.com`, or a password typed
    into the username box) and kept it in the storage for a day. Such a
    counter is named by a keyed hash; it still works (case folded, an
    address normalized) and still answers like an account's."""
    srv = jwtd_factory(env=LONG_BACKOFF)
    c = srv.client()
    typed = ["Nobody-%s@Example.com" % uname("x"), "Hunter2-" + uname("pw")]
    for ident in typed:
        fail_n(c, ident, LIMIT)
        assert_429(attempt(c, ident, "wrong-password-x"))
        assert_429(attempt(c, ident.lower(), "wrong-password-x"))
    assert_429(attempt(c, " " + typed[0].upper(), "wrong-password-x"))
    keys = [row[0] for row in srv.db.query("SELECT key FROM login_failures")]
    assert keys, keys
    for ident in typed:
        for part in (ident.lower(), ident.split("@")[0].lower()):
            assert all(part not in k.lower() for k in keys), keys
    # an account's counter is its username's, as `jwtd user unlock` finds it
    name, password, _ = signup(c)
    fail_n(c, name, LIMIT)
    assert_429(attempt(c, name, password))
    assert srv.cli("user", "unlock", name).returncode == 0
    assert attempt(c, name, password).status == 200
    # the log names the account under attack, and no typed text of no account
    limited = [l for l in srv.log().splitlines() if "event=login_rate_limited" in l]
    assert any("scope=username" in l and "username=%s" % name in l for l in limited), limited
    for ident in typed:
        assert all(ident.lower() not in l.lower() for l in limited), limited


def test_forwarded_for_with_trusted_proxy(jwtd_factory):
    srv = jwtd_factory(env={"JWTD_ADDRESS_MAX_FAILURES": "5", "JWTD_LOGIN_MAX_FAILURES": "1000",
                            "JWTD_TRUSTED_PROXIES": "127.0.0.1"})
    c = srv.client()
    xff = lambda a: {"X-Forwarded-For": a}                       # noqa: E731
    for i in range(5):
        assert_error(attempt(c, uname("p"), "wrong-password-1", xff("203.0.113.7")), 401,
                     "invalid_credentials")
    assert_429(attempt(c, uname("p"), "wrong-password-1", xff("203.0.113.7")))
    # other client addresses behind the proxy have their own counters
    for addr in ("203.0.113.8", "198.51.100.1", "2001:db8::1"):
        for i in range(5):
            assert_error(attempt(c, uname("p"), "wrong-password-1", xff(addr)), 401,
                         "invalid_credentials")
        assert_429(attempt(c, uname("p"), "wrong-password-1", xff(addr)))
    # a client cannot escape by prepending addresses of its own choosing: the
    # address the trusted proxy appended (the right-most) is the client
    for spoof in ("1.1.1.1", "8.8.8.8", "10.9.8.7"):
        assert_429(attempt(c, uname("p"), "wrong-password-1", xff("%s, 203.0.113.7" % spoof)))
    # the proxy's own address (no header) is a counter of its own, still fresh
    assert_error(attempt(c, uname("p"), "wrong-password-1"), 401, "invalid_credentials")


def test_forwarded_ipv4_mapped_clients_are_not_one_bucket(jwtd_factory):
    """Trap: a dual-stack proxy writes IPv4 clients as ::ffff:a.b.c.d; each
    was keyed by its IPv6 /64, ::/64 for all of them - one client's failures
    (or mail requests, or sign-ups) blocked every IPv4 user. A mapped address
    counts as the IPv4 address it is, whichever way it is spelled (the
    proxy too, here configured mapped)."""
    srv = jwtd_factory(env={"JWTD_ADDRESS_MAX_FAILURES": "3", "JWTD_LOGIN_MAX_FAILURES": "1000",
                            "JWTD_TRUSTED_PROXIES": "::FFFF:127.0.0.1"})
    c = srv.client()
    xff = lambda a: {"X-Forwarded-For": a}                       # noqa: E731
    for i in range(3):
        assert_error(attempt(c, uname("m"), "wrong-password-1", xff("::ffff:198.51.100.20")),
                     401, "invalid_credentials")
    assert_429(attempt(c, uname("m"), "wrong-password-1", xff("::ffff:198.51.100.20")))
    # the same client in other spellings is the same client
    for same in ("198.51.100.20", "::FFFF:198.51.100.20", "::ffff:c633:6414",
                 "[::ffff:198.51.100.20]:5555", "198.51.100.20:8080"):
        assert_429(attempt(c, uname("m"), "wrong-password-1", xff(same)))
    # another IPv4 client, mapped or not, is still served
    assert_error(attempt(c, uname("m"), "wrong-password-1", xff("::ffff:203.0.113.99")), 401,
                 "invalid_credentials")
    assert_error(attempt(c, uname("m"), "wrong-password-1", xff("203.0.113.98")), 401,
                 "invalid_credentials")


def test_forwarded_for_ignored_without_trusted_proxy(jwtd_factory):
    srv = jwtd_factory(env={"JWTD_ADDRESS_MAX_FAILURES": "5", "JWTD_LOGIN_MAX_FAILURES": "1000"})
    c = srv.client()
    for i in range(5):
        r = attempt(c, uname("np"), "wrong-password-1", {"X-Forwarded-For": "203.0.113.%d" % i})
        assert_error(r, 401, "invalid_credentials")
    assert_429(attempt(c, uname("np"), "wrong-password-1", {"X-Forwarded-For": "198.51.100.99"}))
    assert_429(attempt(c, uname("np"), "wrong-password-1", {"X-Real-IP": "198.51.100.98",
                                                            "Forwarded": "for=198.51.100.97"}))


# ---------------------------------------------------------------- signup / refresh rates

def test_signup_rate(jwtd_factory):
    srv = jwtd_factory(env={"JWTD_SIGNUP_RATE": "3"})
    c = srv.client()
    for _ in range(3):
        signup(c)
    name = uname("fourth")
    r = c.post("/auth/signup", {"username": name, "password": strong_password()})
    ra = assert_429(r)
    assert ra <= 600, ra
    report("signup rate 3", fourth_status=r.status, retry_after=ra)
    # nobody was created by the refused signup
    p = srv.cli("user", "list")
    assert name not in p.stdout.decode(), p.stdout


def test_window_retry_after_is_what_is_left_of_the_window(jwtd_factory):
    """Trap: a refusal by a per-address window (sign-ups here; refreshes,
    mail requests and failed logins per address share the code) always
    said Retry-After: the whole window, even 30 s into a 60 s window, and
    the next request after the window's end went through. It says what is
    left (moved on jwtd's test clock)."""
    from browser_util import Clock
    clock = Clock()
    try:
        srv = jwtd_factory(env={"JWTD_SIGNUP_RATE": "3", "JWTD_RATE_WINDOW": "60s",
                                "JWTD_TEST_CLOCK": clock.path})
        c = srv.client()
        start = clock.now()
        for _ in range(3):
            signup(c)
        ra = assert_429(c.post("/auth/signup", {"username": uname("w"),
                                                "password": strong_password()}))
        assert 58 <= ra <= 60, ra
        clock.forward_to(start + 30)
        ra = assert_429(c.post("/auth/signup", {"username": uname("w"),
                                                "password": strong_password()}))
        assert 28 <= ra <= 31, ra
        clock.forward_to(start + 30 + ra + 1)
        signup(c)
    finally:
        clock.close()


def test_refresh_rate(jwtd_factory):
    srv = jwtd_factory(env={"JWTD_REFRESH_RATE": "3"})
    c = srv.client()
    username, password, _ = signup(c)
    rt = c.post("/auth/login", {"username": username, "password": password}).json["refresh_token"]
    for i in range(3):
        r = refresh(c, rt)
        assert r.status == 200, "refresh %d: %r" % (i + 1, r)
        rt = r.json["refresh_token"]
    r = refresh(c, rt)
    ra = assert_429(r)
    assert ra <= 600, ra
    report("refresh rate 3", fourth_status=r.status, retry_after=ra)
    # the refused refresh did not consume the token: it is not "reused" later
    # (checked only as far as the limit allows: another 429, not invalid_grant)
    assert_429(refresh(c, rt))


# ---------------------------------------------------------------- shared between instances

def test_login_backoff_shared_between_instances(jwtd_factory):
    a = jwtd_factory(env=LONG_BACKOFF)
    b = jwtd_factory(env=LONG_BACKOFF, database=a.db)
    ca, cb = a.client(), b.client()
    username, password, _ = signup(ca)
    for i in range(LIMIT):
        c = (ca, cb)[i % 2]
        assert_error(attempt(c, username, "wrong-password-%d" % i), 401, "invalid_credentials")
    assert_429(attempt(ca, username, password))
    assert_429(attempt(cb, username, password))
    assert_429(attempt(cb, username.upper(), "wrong"))


def test_address_limit_shared_between_instances(jwtd_factory):
    env = {"JWTD_ADDRESS_MAX_FAILURES": "4", "JWTD_LOGIN_MAX_FAILURES": "1000"}
    a = jwtd_factory(env=env)
    b = jwtd_factory(env=env, database=a.db)
    ca, cb = a.client(), b.client()
    for i in range(4):
        c = (ca, cb)[i % 2]
        assert_error(attempt(c, uname("sh"), "wrong-password-1"), 401, "invalid_credentials")
    assert_429(attempt(ca, uname("sh"), "wrong-password-1"))
    assert_429(attempt(cb, uname("sh"), "wrong-password-1"))


@pytest.mark.parametrize("kind", ["too_short", "bad_characters", "too_long", "password_over_1024"])
def test_address_limit_counts_every_failed_login(jwtd_factory, kind):
    """A login refused with 401 invalid_credentials is a failed login whatever made it
    fail: usernames that could not exist and over-long passwords (answered like any
    wrong password, after the same hashing work - docs/api.md) count towards the
    per-address limit too; otherwise one address can make the server hash without
    limit and probe past the limit."""
    srv = jwtd_factory(env={"JWTD_ADDRESS_MAX_FAILURES": "5", "JWTD_LOGIN_MAX_FAILURES": "1000"})
    c = srv.client()
    real, _, _ = signup(c)

    def body(i):
        if kind == "too_short":
            return "a%d" % (i % 10), "wrong-password-1"
        if kind == "bad_characters":
            return "no such user %d!" % i, "wrong-password-1"
        if kind == "too_long":
            return "x" * 129 + str(i), "wrong-password-1"
        return real, "p" * 1025

    statuses = []
    for i in range(6):
        u, p = body(i)
        r = attempt(c, u, p)
        statuses.append(r.status)
        if i < 5:
            assert_error(r, 401, "invalid_credentials")
    report("address limit 5, %s" % kind, statuses=statuses)
    assert_429(r)

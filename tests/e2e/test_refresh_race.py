# SPDX-License-Identifier: Apache-2.0
"""Concurrent refreshes of one token never mint two live tokens.

API.md: "Two tabs refreshing at once must not log the user out: the token
retired last, presented again within the reuse interval, gets the session's
current pair back ... Concurrent refreshes of one token, on one instance or
many, never mint two live tokens." docs/sessions.md: "50 parallel refreshes of
one token yield exactly one rotation; the 49 others get that same new refresh
token (within the interval) ... With JWTD_REFRESH_REUSE_INTERVAL=0, the 49
others get 401 and the session is revoked."

Each round: 50 threads, each on its own keep-alive connection (opened before
the start line), wait on a Barrier and then send the same refresh token 4
times in a row: 200 answers per round.
"""

import threading
import time
from collections import Counter

import pytest

from e2e_util import (assert_invalid_grant, assert_refused_within, assert_token_response,
                      jwt_parts, login, refresh, signup)

THREADS = 50
PER_THREAD = 4
ROUNDS = 5


def race(server, token, threads=THREADS, per_thread=PER_THREAD):
    """Fire `token` at /auth/refresh from `threads` connections at once (to one
    server, or spread over a list of servers sharing a database).
    Returns a list of (status, body-or-None, Response)."""
    servers = server if isinstance(server, (list, tuple)) else [server]
    clients = [servers[i % len(servers)].client() for i in range(threads)]
    for c in clients:  # open every connection before the start line
        assert c.get("/healthz").status == 200
    barrier = threading.Barrier(threads)
    results = [None] * threads
    errors = []

    def run(i):
        out = []
        try:
            barrier.wait(timeout=30)
            for _ in range(per_thread):
                r = refresh(clients[i], token)
                out.append((r.status, r.json, r))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append("thread %d: %r" % (i, e))
        results[i] = out

    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    for c in clients:
        c.close()
    assert not errors, "requests failed: %s" % errors[:5]
    flat = [x for out in results for x in out]
    assert len(flat) == threads * per_thread
    return flat


def summary(answers):
    return Counter((s, (b or {}).get("error")) for s, b, _ in answers)


@pytest.fixture(scope="module")
def tolerant(module_factory):
    """Default reuse interval (10 s)."""
    return module_factory()


@pytest.fixture(scope="module")
def strict(module_factory):
    return module_factory(env={"JWTD_REFRESH_REUSE_INTERVAL": "0"})


@pytest.fixture(scope="module")
def pair(module_factory):
    """Two instances on one database (one issuer, so either accepts the other's tokens)."""
    env = {"JWTD_ISSUER": "http://jwtd-e2e.race.test"}
    a = module_factory(env=env)
    return a, module_factory(env=env, database=a.db)


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_race_yields_one_rotation(tolerant, round_):
    c = tolerant.client()
    username, password, user = signup(c)
    t0 = login(c, username, password)
    sid = jwt_parts(t0["access_token"])[1]["sid"]

    answers = race(tolerant, t0["refresh_token"])
    ok = [(s, b, r) for s, b, r in answers if s == 200]
    new_tokens = {b["refresh_token"] for _, b, _ in ok}
    assert len(new_tokens) == 1, "distinct refresh tokens minted by one race: %d (%s)" % (
        len(new_tokens), summary(answers))
    (t1,) = new_tokens
    assert t1 != t0["refresh_token"]
    # within the interval every loser gets the winner's pair: nobody is logged out
    assert len(ok) == len(answers), "within the reuse interval every racer should get 200 " \
        "with the current pair; got %s" % summary(answers)
    for _, b, r in ok:
        body = assert_token_response(r, user)
        assert jwt_parts(body["access_token"])[1]["sid"] == sid

    # the session survived: that token works once, and the next generation is single
    t2 = assert_token_response(refresh(c, t1), user)
    assert t2["refresh_token"] not in (t1, t0["refresh_token"])
    again = assert_token_response(refresh(c, t1), user)
    assert again["refresh_token"] == t2["refresh_token"], \
        "two live tokens in the generation after the race"
    t3 = assert_token_response(refresh(c, t2["refresh_token"]), user)
    assert c.get("/auth/me", token=t3["access_token"]).status == 200
    c.close()


def test_race_on_two_generations(tolerant):
    """Race the winner's token again right away: still one rotation per race."""
    c = tolerant.client()
    username, password, user = signup(c)
    tok = login(c, username, password)["refresh_token"]
    seen = {tok}
    for _ in range(2):
        answers = race(tolerant, tok, threads=20, per_thread=2)
        new = {b["refresh_token"] for s, b, _ in answers if s == 200}
        assert len(new) == 1 and all(s == 200 for s, _, _ in answers), summary(answers)
        (tok,) = new
        assert tok not in seen
        seen.add(tok)
    assert_token_response(refresh(c, tok), user)
    c.close()


@pytest.mark.parametrize("round_", range(3))
def test_race_across_two_instances(pair, round_):
    """API.md: "on one instance or many": 50 racers spread over two jwtd
    processes sharing the database still see exactly one rotation."""
    a, b = pair
    c = a.client()
    username, password, user = signup(c)
    t0 = login(c, username, password)
    answers = race([a, b], t0["refresh_token"])
    new_tokens = {body["refresh_token"] for s, body, _ in answers if s == 200}
    assert len(new_tokens) == 1, "distinct refresh tokens minted by one race over two " \
        "instances: %d (%s)" % (len(new_tokens), summary(answers))
    assert all(s == 200 for s, _, _ in answers), summary(answers)
    (t1,) = new_tokens
    cb = b.client()
    t2 = assert_token_response(refresh(cb, t1), user)
    assert assert_token_response(refresh(c, t1), user)["refresh_token"] == t2["refresh_token"]
    cb.close()
    c.close()


STRICT_ROUNDS = 12


def test_strict_race_never_two_live_tokens(strict):
    """Strict single use (interval 0), in STRICT_ROUNDS fresh sessions: at most
    one 200, all others 401 invalid_grant; at most one returned token is live;
    the losers' reuse revokes the session (the winner's pair included).
    All rounds run; the violations of every round are reported together."""
    c = strict.client()
    violations = []
    for round_ in range(STRICT_ROUNDS):
        username, password, user = signup(c)
        t0 = login(c, username, password)

        answers = race(strict, t0["refresh_token"])
        ok = [b for s, b, _ in answers if s == 200]
        for s, b, r in answers:
            if s != 200:
                assert_invalid_grant(r)
        returned = {b["refresh_token"] for b in ok}
        # liveness: of all refresh tokens handed out, at most one may still rotate
        live = [t for t in returned if refresh(c, t).status == 200]
        assert len(live) <= 1, "two live refresh tokens after a strict race: %s" % summary(answers)
        assert len(returned) <= 1, "distinct refresh tokens from one strict race: %d (%s)" % (
            len(returned), summary(answers))
        assert not live, "the session survived 199 reuses of a strict single-use token"
        if len(ok) > 1:
            violations.append("round %d: %d of %d racing refreshes got 200 (%s)"
                              % (round_, len(ok), len(answers), dict(summary(answers))))
        # the whole session is revoked, access tokens included
        since = time.monotonic()
        for b in ok:
            assert_refused_within(c, b["access_token"], since, paths=("/auth/verify",))
    c.close()
    assert not violations, "strict mode (JWTD_REFRESH_REUSE_INTERVAL=0) must answer every use " \
        "of a retired token with 401; only the first use may succeed:\n" + "\n".join(violations)


def test_strict_two_tabs_at_once(strict):
    """The smallest race, repeated: two connections send the same token at the
    same moment, 30 times (fresh session each). In strict mode the second use
    is reuse, whichever order the server takes them in: exactly one 200 and
    one 401 invalid_grant per pair, never two 200s."""
    c = strict.client()
    bad = []
    for i in range(30):
        username, password, user = signup(c)
        t0 = login(c, username, password)
        answers = race(strict, t0["refresh_token"], threads=2, per_thread=1)
        statuses = sorted(s for s, _, _ in answers)
        if statuses != [200, 401]:
            bad.append("pair %d: %s" % (i, statuses))
    c.close()
    assert not bad, "strict mode: two simultaneous uses of one refresh token must give one 200 " \
        "and one 401 (docs/sessions.md: 'the 49 others get 401'); got:\n" + "\n".join(bad)

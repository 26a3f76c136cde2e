# SPDX-License-Identifier: Apache-2.0
"""The key ring from the outside: `jwtd keys list|rotate|retire`, the
next -> current -> retired -> removed life cycle as the JWKS shows it,
automatic rotation, purging a compromised key, changing the algorithm, and
`jwtd token inspect|verify`. Every instance (here: the running server and the
CLI on the same database) sees changes without a restart."""
import json
import time

from e2e_util import jwt_parts, new_user_tokens, login


def kids(client):
    r = client.get("/.well-known/jwks.json")
    assert r.status == 200
    return [k["kid"] for k in r.json["keys"]]


def key_rows(srv, env=None):
    p = srv.cli("keys", "list", env=env)
    assert p.returncode == 0, p.stderr.decode()
    rows = [line.split("\t") for line in p.stdout.decode().splitlines() if line]
    return {r[0]: r[2] for r in rows}  # kid -> state


def wait_for(pred, timeout=6, step=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(step)


def test_rotate_publishes_next_key_before_it_signs(jwtd_factory):
    srv = jwtd_factory(env={"JWTD_KEYRING_POLL": "200ms", "JWTD_KEY_PUBLISH_AHEAD": "1h"})
    c = srv.client()
    username, password, _, tokens = new_user_tokens(c)
    cur = jwt_parts(tokens["access_token"])[0]["kid"]
    assert key_rows(srv) == {cur: "current"}
    jwks = c.get("/.well-known/jwks.json")
    assert jwks.header("Cache-Control") == "public, max-age=300"

    p = srv.cli("keys", "rotate")
    assert p.returncode == 0, p.stderr.decode()
    nxt = p.stdout.decode().split()[0]
    assert key_rows(srv) == {cur: "current", nxt: "next"}
    wait_for(lambda: nxt in kids(c), what="the next key in the JWKS")
    # Published, but not signing yet.
    assert jwt_parts(login(c, username, password)["access_token"])[0]["kid"] == cur
    # Rotating again keeps the same next key (one next key at a time).
    p = srv.cli("keys", "rotate")
    assert p.stdout.decode().split()[0] == nxt


def test_retire_current_promotes_next_and_keeps_old_tokens_valid(jwtd_factory):
    srv = jwtd_factory(env={"JWTD_KEYRING_POLL": "200ms"})
    c = srv.client()
    username, password, _, tokens = new_user_tokens(c)
    old = tokens["access_token"]
    cur = jwt_parts(old)[0]["kid"]
    p = srv.cli("keys", "retire", cur)
    assert p.returncode != 0 and b"rotate" in p.stderr  # no next key to take over
    nxt = srv.cli("keys", "rotate").stdout.decode().split()[0]
    # published ahead, not yet due: retiring the current key now would skip
    # the publish-ahead (found by an audit: it did, without a word)
    p = srv.cli("keys", "retire", cur)
    assert p.returncode == 1 and b"--now" in p.stderr and nxt.encode() in p.stderr, p
    assert key_rows(srv) == {cur: "current", nxt: "next"}
    p = srv.cli("keys", "retire", cur, "--now")
    assert p.returncode == 0, p
    assert p.stdout.decode().splitlines() == ["%s\tretired" % cur,
                                              "%s\tcurrent: signs from now" % nxt], p
    assert key_rows(srv) == {cur: "retired", nxt: "current"}
    wait_for(lambda: jwt_parts(login(c, username, password)["access_token"])[0]["kid"] == nxt,
             what="signing with the promoted key")
    assert set(kids(c)) == {cur, nxt}
    assert c.get("/auth/verify", token=old).status == 200


def test_purge_distrusts_a_compromised_key(jwtd_factory):
    srv = jwtd_factory(env={"JWTD_KEYRING_POLL": "200ms"})
    c = srv.client()
    username, password, _, tokens = new_user_tokens(c)
    old = tokens["access_token"]
    cur = jwt_parts(old)[0]["kid"]
    assert c.get("/auth/verify", token=old).status == 200     # cached as valid
    new = srv.cli("keys", "rotate", "--now").stdout.decode().split()[0]
    p = srv.cli("keys", "retire", cur, "--purge")
    assert p.returncode == 0, p.stderr.decode()
    wait_for(lambda: c.get("/auth/verify", token=old).status == 401,
             what="the purged key's token to be refused")
    r = c.get("/auth/me", token=old)
    assert r.status == 401 and "unknown key id" in r.header("WWW-Authenticate")
    assert cur not in kids(c) and new in kids(c)
    # The session itself survives: a refresh gives a token of the new key.
    r = c.post("/auth/refresh", {"refresh_token": tokens["refresh_token"]})
    assert r.status == 200
    assert jwt_parts(r.json["access_token"])[0]["kid"] == new


def test_automatic_rotation(jwtd_factory):
    # Rotate every 4 s, publish 2 s ahead: a next key appears, then signs.
    srv = jwtd_factory(env={"JWTD_KEY_ROTATION": "4s", "JWTD_KEY_PUBLISH_AHEAD": "2s",
                            "JWTD_KEYRING_POLL": "200ms"})
    c = srv.client()
    username, password, _, tokens = new_user_tokens(c)
    first = jwt_parts(tokens["access_token"])[0]["kid"]
    wait_for(lambda: len(kids(c)) == 2, timeout=8, what="a next key in the JWKS")
    second = [k for k in kids(c) if k != first][0]
    assert jwt_parts(login(c, username, password)["access_token"])[0]["kid"] == first
    wait_for(lambda: jwt_parts(login(c, username, password)["access_token"])[0]["kid"] == second,
             timeout=8, what="the next key to sign")
    assert c.get("/auth/verify", token=tokens["access_token"]).status == 200


def test_changing_the_algorithm_keeps_old_tokens(jwtd_factory):
    srv = jwtd_factory(env={"JWTD_JWT_ALG": "ES256"})
    c = srv.client()
    username, password, _, tokens = new_user_tokens(c)
    es_kid = jwt_parts(tokens["access_token"])[0]["kid"]
    srv.stop()
    srv.extra_env["JWTD_JWT_ALG"] = "EdDSA"
    srv.start()
    c = srv.client()
    new = login(c, username, password)["access_token"]
    assert jwt_parts(new)[0]["alg"] == "EdDSA"
    rows = key_rows(srv, env={"JWTD_JWT_ALG": "EdDSA"})
    assert rows[es_kid] == "retired"
    assert c.get("/auth/verify", token=tokens["access_token"]).status == 200
    assert {k["alg"] for k in c.get("/.well-known/jwks.json").json["keys"]} == {"ES256", "EdDSA"}


def test_token_inspect_and_verify(jwtd_factory):
    srv = jwtd_factory()
    c = srv.client()
    _, _, user, tokens = new_user_tokens(c)
    t = tokens["access_token"]
    p = srv.cli("token", "inspect", t)
    assert p.returncode == 0
    out = p.stdout.decode()
    assert user["id"] in out and "not verified" in out
    env = {"JWTD_ISSUER": srv.issuer}
    p = srv.cli("token", "verify", t, env=env)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout.decode().startswith("valid:")
    h, pl, s = t.split(".")
    forged = ".".join([h, pl, s[:-4] + ("AAAA" if not s.endswith("AAAA") else "BBBB")])
    p = srv.cli("token", "verify", forged, env=env)
    assert p.returncode == 1 and b"invalid: invalid signature" in p.stdout
    p = srv.cli("token", "verify", t, env={"JWTD_ISSUER": "https://other.example"})
    assert p.returncode == 1 and b"issuer mismatch" in p.stdout
    # both sides named: the shell's configuration is often not the server's
    said = p.stdout.decode()
    assert '"%s"' % srv.issuer in said and '"https://other.example"' in said, said
    p = srv.cli("token", "verify", t, env=dict(env, JWTD_AUDIENCE="elsewhere"))
    assert p.returncode == 1 and '"jwtd"' in p.stdout.decode(), p.stdout
    assert '"elsewhere"' in p.stdout.decode(), p.stdout
    assert srv.cli("token", "inspect", "garbage").returncode == 1
    # "-": from stdin, out of ps and the shell's history
    p = srv.cli("token", "verify", "-", env=env, input=(t + "\n").encode())
    assert p.returncode == 0 and p.stdout.decode().startswith("valid:"), p.stderr.decode()
    p = srv.cli("token", "inspect", "-", input=t.encode())
    assert p.returncode == 0 and user["id"] in p.stdout.decode(), p.stderr.decode()
    p = srv.cli("token", "verify", "-", env=env, input=b"")
    assert p.returncode == 2 and b"TOKEN: nothing on stdin" in p.stderr, p.stderr

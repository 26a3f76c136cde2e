# SPDX-License-Identifier: Apache-2.0
"""examples/resource_server: a C service linked against the shared libjwtd
verifies jwtd tokens offline from a JWKS file, refuses tampered or foreign
tokens, and accepts tokens of a new key once the JWKS file is refreshed."""
import os
import signal
import subprocess
import time

import pytest

from e2e_util import Client, free_port, jwt_parts, jwtd_bin, new_user_tokens


def example_bin():
    p = os.environ.get("JWTD_EXAMPLE_BIN") or os.path.join(
        os.path.dirname(jwtd_bin()), "examples", "resource_server")
    if not os.access(p, os.X_OK):
        pytest.skip("examples/resource_server not built at %s" % p)
    return p


def save_jwks(client, path):
    r = client.get("/.well-known/jwks.json")
    assert r.status == 200
    tmp = path + ".new"
    with open(tmp, "wb") as f:
        f.write(r.body)
    os.replace(tmp, path)


def test_offline_resource_server(jwtd_factory, tmp_path):
    srv = jwtd_factory(env={"JWTD_KEYRING_POLL": "200ms"})
    c = srv.client()
    username, password, user, tokens = new_user_tokens(c)
    jwks = str(tmp_path / "jwks.json")
    save_jwks(c, jwks)
    port = free_port()
    proc = subprocess.Popen([example_bin(), "--jwks", jwks, "--issuer", srv.issuer,
                             "--audience", srv.audience, "--port", str(port)],
                            stderr=subprocess.PIPE)
    try:
        rs = None
        deadline = time.monotonic() + 10
        while rs is None:
            try:
                Client("127.0.0.1", port).get("/hello")
                rs = Client("127.0.0.1", port)
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline
                time.sleep(0.05)

        r = rs.get("/hello", token=tokens["access_token"])
        assert r.status == 200, r
        assert r.json == {"hello": username, "sub": user["id"]}

        t = tokens["access_token"]
        for bad in (t[:-6] + "AAAAAA", "a.b.c", ""):
            r = rs.get("/hello", token=bad) if bad else rs.get("/hello")
            assert r.status == 401, (bad, r)

        # A token of another server (another key) is refused.
        other = jwtd_factory()
        _, _, _, foreign = new_user_tokens(other.client())
        assert rs.get("/hello", token=foreign["access_token"]).status == 401

        # Rotation: the new key's tokens are refused until the JWKS file is
        # refreshed, then accepted; the old token stays valid.
        p = srv.cli("keys", "rotate", "--now")
        assert p.returncode == 0, p.stderr.decode()
        new_kid = p.stdout.decode().split()[0]
        deadline = time.monotonic() + 5
        while True:
            new = c.post("/auth/login", {"username": username, "password": password}).json
            if jwt_parts(new["access_token"])[0]["kid"] == new_kid:
                break
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert rs.get("/hello", token=new["access_token"]).status == 401
        time.sleep(1.1)  # the example checks the file at most once a second
        save_jwks(c, jwks)
        deadline = time.monotonic() + 5
        while rs.get("/hello", token=new["access_token"]).status != 200:
            assert time.monotonic() < deadline, "refreshed JWKS not picked up"
            time.sleep(0.2)
        assert rs.get("/hello", token=t).status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)

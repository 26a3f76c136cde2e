# SPDX-License-Identifier: Apache-2.0
"""GET /healthz and GET /readyz."""

from e2e_util import assert_json_content_type, assert_security_headers, assert_error


def test_healthz_ok(client):
    r = client.get("/healthz")
    assert r.status == 200
    assert r.json == {"status": "ok"}
    assert_json_content_type(r)
    assert_security_headers(r)


def test_readyz_ready(client):
    r = client.get("/readyz")
    assert r.status == 200, r
    assert_security_headers(r)


def test_healthz_with_query_string(client):
    r = client.get("/healthz?probe=1")
    assert r.status == 200, r
    assert r.json == {"status": "ok"}


def test_healthz_post_not_allowed(client):
    r = client.post("/healthz", {})
    assert_error(r, 405, "method_not_allowed")
    allow = {m.strip().upper() for m in (r.header("Allow") or "").split(",")}
    assert "GET" in allow and "POST" not in allow, r.header("Allow")

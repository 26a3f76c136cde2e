# SPDX-License-Identifier: Apache-2.0
"""nginx auth_request in front of an upstream, with the configuration shipped
in deploy/nginx/jwtd-auth-request.conf (only its addresses are rewritten to
free loopback ports): allowed, refused (401 with jwtd's WWW-Authenticate,
once), identity headers forwarded and never spoofable, cookies accepted
(also for jwtd's own cookie-authenticated API behind the same origin),
revocation honoured, and jwtd's own API reachable through nginx. (The
browser flow with a sign-in page is deploy/nginx/jwtd-portal.conf, tested
in test_browser.py.)

Needs Debian's nginx (/usr/sbin/nginx); skipped with a reason when absent.
"""
import http.server
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from e2e_util import Client, free_port, new_user_tokens, uname, strong_password

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONF = os.path.join(ROOT, "deploy", "nginx", "jwtd-auth-request.conf")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class Upstream(http.server.BaseHTTPRequestHandler):
    """The protected app: echoes what it was told about the user."""
    protocol_version = "HTTP/1.1"

    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        out = json.dumps({
            "path": self.path,
            "method": self.command,
            "user_id": self.headers.get("X-Auth-User-Id"),
            "username": self.headers.get("X-Auth-Username"),
            "body": body.decode("utf-8", "replace"),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = _answer

    def log_message(self, *a):
        pass


def nginx_conf(tmp, jwtd_listen, upstream_port, port):
    with open(CONF) as f:
        site = f.read()
    site = (site.replace("server 127.0.0.1:8080;", "server %s;" % jwtd_listen)
                .replace("server 127.0.0.1:3000;", "server 127.0.0.1:%d;" % upstream_port)
                .replace("listen 80;", "listen 127.0.0.1:%d;" % port))
    assert "127.0.0.1:%d" % port in site, "the shipped config changed shape"
    return """
worker_processes 1;
daemon off;
pid %(tmp)s/nginx.pid;
error_log %(tmp)s/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %(tmp)s/body;
    proxy_temp_path %(tmp)s/proxy;
    fastcgi_temp_path %(tmp)s/fastcgi;
    uwsgi_temp_path %(tmp)s/uwsgi;
    scgi_temp_path %(tmp)s/scgi;
%(site)s
}
""" % {"tmp": tmp, "site": site}


@pytest.fixture(scope="module")
def stack(module_factory):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("nginx is not installed (apt-get install nginx)")
    srv = module_factory(env={"JWTD_TRUSTED_PROXIES": "127.0.0.1"})
    up_port = free_port()
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", up_port), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    tmp = tempfile.mkdtemp(prefix="jwtd-nginx-")
    os.chmod(tmp, 0o755)
    port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(nginx_conf(tmp, srv.listen, up_port, port))
    proc = subprocess.Popen([NGINX, "-p", tmp, "-c", conf], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            Client("127.0.0.1", port).get("/.well-known/jwks.json")
            break
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
    yield {"srv": srv, "port": port}
    proc.send_signal(signal.SIGQUIT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    upstream.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)


def via_nginx(stack):
    return Client("127.0.0.1", stack["port"])


def test_valid_token_reaches_upstream_with_identity(stack):
    c = via_nginx(stack)
    username, _, user, tokens = new_user_tokens(c)       # signup + login through nginx
    r = c.get("/app/hello", token=tokens["access_token"])
    assert r.status == 200, r
    assert r.json["user_id"] == user["id"]
    assert r.json["username"] == username
    assert r.json["path"] == "/app/hello"


def test_post_with_body_is_checked_and_forwarded(stack):
    c = via_nginx(stack)
    _, _, user, tokens = new_user_tokens(c)
    r = c.request("POST", "/app/items", body=b'{"x": 1}',
                  headers={"Content-Type": "application/json"}, token=tokens["access_token"])
    assert r.status == 200, r
    assert r.json["method"] == "POST" and r.json["body"] == '{"x": 1}'
    assert r.json["user_id"] == user["id"]


def test_missing_or_bad_token_is_refused(stack):
    c = via_nginx(stack)
    for token in (None, "not.a.jwt"):
        r = c.get("/app/hello", token=token)
        assert r.status == 401, r
        assert r.json["error"] == "invalid_token"
        www = r.header_all("WWW-Authenticate")
        assert len(www) == 1 and www[0].startswith('Bearer realm="jwtd"'), www


def test_identity_headers_cannot_be_spoofed(stack):
    c = via_nginx(stack)
    spoof = {"X-Auth-User-Id": "00000000-0000-7000-8000-000000000000", "X-Auth-Username": "root"}
    r = c.get("/app/hello", headers=spoof)
    assert r.status in (401, 302), r
    _, _, user, tokens = new_user_tokens(c)
    r = c.get("/app/hello", headers=spoof, token=tokens["access_token"])
    assert r.status == 200
    assert r.json["user_id"] == user["id"] and r.json["username"] != "root"


def test_access_cookie_is_accepted(stack):
    c = via_nginx(stack)
    name, pw = uname("ck"), strong_password()
    assert c.post("/auth/signup", {"username": name, "password": pw}).status == 201
    r = c.post("/auth/login", {"username": name, "password": pw, "delivery": "cookie"})
    assert r.status == 200
    cookie = [v for v in r.header_all("Set-Cookie") if v.startswith("__Host-jwtd_access=")][0]
    value = cookie.split(";", 1)[0]
    r = c.get("/app/hello", headers={"Cookie": value})
    assert r.status == 200 and r.json["username"] == name


def test_cookie_session_through_the_same_origin(stack):
    """Trap: the shipped /auth/ location did not pass the browser's Host on,
    so jwtd compared the page's Origin with "jwtd" (the upstream's name)
    and refused every cookie-authenticated refresh and logout through the
    proxy with 403 csrf_rejected - the set-up the docs recommend."""
    c = via_nginx(stack)
    name, pw = uname("co"), strong_password()
    assert c.post("/auth/signup", {"username": name, "password": pw}).status == 201
    r = c.post("/auth/login", {"username": name, "password": pw, "delivery": "cookie"})
    assert r.status == 200, r
    jar = {v.split("=", 1)[0]: v.split(";", 1)[0] for v in r.header_all("Set-Cookie")}
    origin = {"Origin": "http://127.0.0.1:%d" % stack["port"], "Sec-Fetch-Site": "same-origin"}
    r = c.post("/auth/refresh", {"delivery": "cookie"},
               headers=dict(origin, Cookie=jar["__Secure-jwtd_refresh"]))
    assert r.status == 200, r
    jar.update({v.split("=", 1)[0]: v.split(";", 1)[0] for v in r.header_all("Set-Cookie")})
    r = c.post("/auth/logout", None, headers=dict(origin, Cookie=jar["__Host-jwtd_access"]))
    assert r.status == 204, r
    # and another origin is still refused through the proxy
    r = c.post("/auth/logout", None, headers={"Origin": "https://evil.example",
                                               "Cookie": jar["__Host-jwtd_access"]})
    assert r.status in (401, 403), r


def test_logout_is_honoured_within_a_second(stack):
    c = via_nginx(stack)
    _, _, _, tokens = new_user_tokens(c)
    t = tokens["access_token"]
    assert c.get("/app/hello", token=t).status == 200
    assert c.post("/auth/logout", token=t).status == 204
    start = time.monotonic()
    while c.get("/app/hello", token=t).status == 200:
        assert time.monotonic() - start < 1.0, "still allowed 1 s after logout"
        time.sleep(0.02)


def test_client_address_comes_from_the_proxy_header(stack):
    # jwtd trusts 127.0.0.1 (nginx) for X-Forwarded-For: the session shows
    # the address nginx saw, here the test client's loopback address.
    c = via_nginx(stack)
    _, _, _, tokens = new_user_tokens(c)
    r = c.get("/auth/sessions", token=tokens["access_token"])
    assert r.status == 200
    assert r.json["sessions"][0]["client_address"] == "127.0.0.1"

#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
#
# Records real WebAuthn exchanges from Chromium's virtual authenticator for
# tests/unit/core/test_webauthn.c. Run by hand (not by the test suite), as
#   /usr/bin/python3 tests/unit/core/webauthn_vectors/record.py [scenario...]
# It serves a blank page on http://localhost:<free port> (a secure context),
# drives Chromium through chromedriver + Selenium's WebAuthn commands, calls
# navigator.credentials.create() once and navigator.credentials.get() twice
# per scenario, and writes <scenario>.json next to this script. Every
# binary field is base64url without padding, as jwtd's JSON API carries it.
# The browser's own view of the new key (getPublicKey(), SPKI DER) and the
# authenticator's counter (WebDriver "Get Credentials") are recorded too, so
# the C test compares the module's output with values it did not compute.
#
#   record.py --seeds
# needs no browser: it rewrites tests/fuzz/corpus/fuzz_webauthn/ from the
# JSON files here (the first byte of a seed selects the fuzzed parser, see
# tests/fuzz/fuzz_webauthn.c).
import base64
import http.server
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.command import Command

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "..", "..", "..", "fuzz", "corpus", "fuzz_webauthn")

# name -> (COSE algorithms offered, extra authenticator options, create() extensions)
SCENARIOS = {
    "es256": ([-7], {}, {}),
    "rs256": ([-257], {}, {}),
    "eddsa": ([-8], {}, {}),
    # Extensions output in authData (ED flag) and the backup bits (BE, BS).
    # credBlob needs a CTAP 2.1 authenticator.
    "es256_ext": ([-7], {"protocol": "ctap2_1", "extensions": ["credBlob", "prf"],
                         "defaultBackupEligibility": True,
                         "defaultBackupState": True},
                  {"credProps": True, "prf": {}, "credBlob": "AQID"}),
}

PAGE = b"<!doctype html><html><head><title>jwtd webauthn recorder</title></head><body></body></html>"

JS_HELPERS = r"""
const b64u = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const unb64u = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')),
    c => c.charCodeAt(0));
"""

JS_CREATE = JS_HELPERS + r"""
const [challenge, algs, ext, done] = arguments;
if (ext.credBlob) ext.credBlob = unb64u(ext.credBlob);
navigator.credentials.create({publicKey: {
    rp: {id: 'localhost', name: 'jwtd test'},
    user: {id: new TextEncoder().encode('user-0001'), name: 'alice', displayName: 'Alice'},
    challenge: unb64u(challenge),
    pubKeyCredParams: algs.map(a => ({type: 'public-key', alg: a})),
    timeout: 20000,
    attestation: 'none',
    authenticatorSelection: {residentKey: 'required', requireResidentKey: true,
                             userVerification: 'required'},
    extensions: ext,
}}).then(c => done({
    id: c.id, rawId: b64u(c.rawId), type: c.type,
    clientDataJSON: b64u(c.response.clientDataJSON),
    attestationObject: b64u(c.response.attestationObject),
    authenticatorData: b64u(c.response.getAuthenticatorData()),
    publicKey: b64u(c.response.getPublicKey()),
    publicKeyAlgorithm: c.response.getPublicKeyAlgorithm(),
    transports: c.response.getTransports(),
    clientExtensionResults: JSON.parse(JSON.stringify(c.getClientExtensionResults(),
        (k, v) => v instanceof ArrayBuffer ? b64u(v) : v)),
})).catch(e => done({error: String(e)}));
"""

JS_GET = JS_HELPERS + r"""
const [challenge, rawId, done] = arguments;
navigator.credentials.get({publicKey: {
    rpId: 'localhost',
    challenge: unb64u(challenge),
    allowCredentials: [{type: 'public-key', id: unb64u(rawId)}],
    userVerification: 'required',
    timeout: 20000,
}}).then(c => done({
    id: c.id, rawId: b64u(c.rawId), type: c.type,
    clientDataJSON: b64u(c.response.clientDataJSON),
    authenticatorData: b64u(c.response.authenticatorData),
    signature: b64u(c.response.signature),
    userHandle: c.response.userHandle ? b64u(c.response.userHandle) : null,
})).catch(e => done({error: String(e)}));
"""


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


def authenticator_count(driver, auth_id):
    creds = driver.execute(Command.GET_CREDENTIALS, {"authenticatorId": auth_id})["value"]
    assert len(creds) == 1, creds
    return creds[0]["signCount"]


def record(driver, origin, name, browser_version):
    algs, auth_extra, extensions = SCENARIOS[name]
    options = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
               "hasUserVerification": True, "isUserVerified": True, "isUserConsenting": True}
    options.update(auth_extra)
    auth_id = driver.execute(Command.ADD_VIRTUAL_AUTHENTICATOR, options)["value"]
    try:
        challenge = secrets.token_bytes(32)
        reg = driver.execute_async_script(JS_CREATE, b64u(challenge), algs, extensions)
        if "error" in reg:
            print(f"{name}: create() failed: {reg['error']}", file=sys.stderr)
            return False
        reg["challenge"] = b64u(challenge)
        reg["signCountAfter"] = authenticator_count(driver, auth_id)
        assertions = []
        for _ in range(2):
            challenge = secrets.token_bytes(32)
            a = driver.execute_async_script(JS_GET, b64u(challenge), reg["rawId"])
            if "error" in a:
                print(f"{name}: get() failed: {a['error']}", file=sys.stderr)
                return False
            a["challenge"] = b64u(challenge)
            a["signCountAfter"] = authenticator_count(driver, auth_id)
            assertions.append(a)
    finally:
        driver.execute(Command.REMOVE_VIRTUAL_AUTHENTICATOR, {"authenticatorId": auth_id})
    doc = {
        "source": f"recorded from {browser_version} WebAuthn virtual authenticator "
                  f"(options {json.dumps(options, sort_keys=True)}) by record.py",
        "rp_id": "localhost",
        "origin": origin,
        "alg": reg["publicKeyAlgorithm"],
        "registration": reg,
        "assertions": assertions,
    }
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"{name}: recorded alg {doc['alg']}, counts {reg['signCountAfter']} "
          f"{[a['signCountAfter'] for a in assertions]}")
    return True


def unb64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def cbor_item_len(b, pos=0):
    """Length of the definite-length CBOR item at b[pos:] (enough for a COSE
    key: integers, byte strings, maps)."""
    start = pos
    todo = 1
    while todo:
        todo -= 1
        ib = b[pos]
        pos += 1
        major, ai = ib >> 5, ib & 31
        if ai < 24:
            arg = ai
        else:
            n = 1 << (ai - 24)
            arg = int.from_bytes(b[pos:pos + n], "big")
            pos += n
        if major in (2, 3):
            pos += arg
        elif major == 4:
            todo += arg
        elif major == 5:
            todo += 2 * arg
        elif major == 6:
            todo += 1
    return pos - start


def write_seeds():
    os.makedirs(SEEDS, exist_ok=True)
    for name in SCENARIOS:
        with open(os.path.join(HERE, name + ".json")) as f:
            doc = json.load(f)
        reg = doc["registration"]
        ad = unb64u(reg["authenticatorData"])
        id_len = int.from_bytes(ad[53:55], "big")
        key_at = 55 + id_len
        seeds = {
            "attobj": b"\x00" + unb64u(reg["attestationObject"]),
            "authdata_reg": b"\x01" + ad,
            "authdata_get": b"\x01" + unb64u(doc["assertions"][0]["authenticatorData"]),
            "cose": b"\x02" + ad[key_at:key_at + cbor_item_len(ad, key_at)],
            "b64url": b"\x03" + reg["clientDataJSON"].encode(),
        }
        if doc["alg"] in (-7, -8):
            a = doc["assertions"][0]
            sig = unb64u(a["signature"])
            seeds["assert"] = (b"\x04" + bytes([1 if doc["alg"] == -8 else 0, len(sig)]) + sig
                               + unb64u(a["authenticatorData"]))
        for kind, data in seeds.items():
            with open(os.path.join(SEEDS, f"{kind}_{name}"), "wb") as f:
                f.write(data)
    print(f"seeds written to {os.path.normpath(SEEDS)}")
    return 0


def main():
    if sys.argv[1:] == ["--seeds"]:
        return write_seeds()
    names = sys.argv[1:] or list(SCENARIOS)
    server = http.server.ThreadingHTTPServer(("localhost", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://localhost:{server.server_address[1]}"
    profile = tempfile.mkdtemp(prefix="webauthn-record-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    version = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True,
                             text=True).stdout.strip()
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    ok = True
    try:
        driver.set_script_timeout(30)
        driver.get(origin + "/")
        for name in names:
            ok = record(driver, origin, name, version) and ok
    finally:
        driver.quit()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

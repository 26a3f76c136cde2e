# SPDX-License-Identifier: Apache-2.0
"""A software WebAuthn authenticator (and the browser around it) for the
end-to-end suite: what navigator.credentials.create()/get() would hand to a
page, built by hand so that a test can also build what no browser would
(another origin, another RP ID, a user-verification flag left clear, a
replayed signature counter...).

Pure Python: python3-cryptography for the keys, and a small CBOR encoder
(RFC 8949, definite lengths, the subset WebAuthn uses) written here.

    auth = Authenticator("http://localhost:8080")          # the page's origin
    cred = auth.create(options["publicKey"])               # registration JSON
    assertion = auth.get(options["publicKey"])             # sign-in JSON

Output is the JSON form of a PublicKeyCredential (WebAuthn Level 3
PublicKeyCredential.toJSON(): base64url without padding).
"""

import base64
import hashlib
import json
import os
import struct
import subprocess

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

ES256, EDDSA, RS256 = -7, -8, -257
ALG_NAMES = {ES256: "ES256", EDDSA: "EdDSA", RS256: "RS256"}

FLAG_UP, FLAG_UV, FLAG_BE, FLAG_BS, FLAG_AT, FLAG_ED = 0x01, 0x04, 0x08, 0x10, 0x40, 0x80


# --------------------------------------------------------------------------
# base64url and CBOR
# --------------------------------------------------------------------------

def b64u(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(s):
    return base64.urlsafe_b64decode((s + "=" * (-len(s) % 4)).encode("ascii"))


def _cbor_head(major, arg):
    if arg < 24:
        return bytes([major << 5 | arg])
    for ai, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if arg < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | ai]) + struct.pack(fmt, arg)
    raise ValueError("CBOR argument too large: %r" % arg)


def cbor(value):
    """Encode value as CBOR: int, bytes, str, list/tuple, dict (keys in the
    order given; CTAP2's canonical order is the caller's business), bool,
    None."""
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if value is None:
        return b"\xf6"
    if isinstance(value, int):
        return _cbor_head(0, value) if value >= 0 else _cbor_head(1, -1 - value)
    if isinstance(value, (bytes, bytearray)):
        return _cbor_head(2, len(value)) + bytes(value)
    if isinstance(value, str):
        b = value.encode("utf-8")
        return _cbor_head(3, len(b)) + b
    if isinstance(value, (list, tuple)):
        return _cbor_head(4, len(value)) + b"".join(cbor(v) for v in value)
    if isinstance(value, dict):
        return _cbor_head(5, len(value)) + b"".join(cbor(k) + cbor(v) for k, v in value.items())
    raise TypeError("cannot CBOR-encode %r" % type(value))


def canonical_map(d):
    """A dict in CTAP2 canonical key order (shorter encodings first, then bytewise)."""
    return dict(sorted(d.items(), key=lambda kv: (len(cbor(kv[0])), cbor(kv[0]))))


# --------------------------------------------------------------------------
# keys
# --------------------------------------------------------------------------

class _OpenSSLKey:
    """An RSA private key in a PEM file, used through the openssl command:
    python3-cryptography 38 checks a loaded RSA key in full (RSA_check_key,
    4.6 s for 8192 bits here) and has no switch to skip it. Offers what Key
    uses: public_key() and sign() (PKCS#1 v1.5, SHA-256)."""

    def __init__(self, path):
        self.path = path
        out = subprocess.run(["openssl", "rsa", "-in", path, "-noout", "-modulus"],
                             capture_output=True, check=True).stdout.decode()
        n = int(out.strip().split("=", 1)[1], 16)
        self._public = rsa.RSAPublicNumbers(65537, n).public_key()

    def public_key(self):
        return self._public

    def sign(self, data, pad, algorithm):
        assert isinstance(pad, padding.PKCS1v15) and isinstance(algorithm, hashes.SHA256)
        return subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.path], input=data,
                              capture_output=True, check=True).stdout


class Key:
    """A credential key pair of one COSE algorithm."""

    def __init__(self, alg=ES256, rsa_bits=2048):
        self.alg = alg
        if alg == ES256:
            self.private = ec.generate_private_key(ec.SECP256R1())
        elif alg == EDDSA:
            self.private = ed25519.Ed25519PrivateKey.generate()
        elif alg == RS256 and rsa_bits == 8192:
            # generating one takes ~25 s: a fixed test key (tests/e2e/data)
            self.private = _OpenSSLKey(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                    "data", "rsa8192-passkey-test-key.pem"))
        elif alg == RS256:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
        else:
            raise ValueError("unsupported alg %r" % alg)

    def cose(self):
        """The COSE_Key (RFC 8152 / 8230) of the public key, as a dict."""
        pub = self.private.public_key()
        if self.alg == ES256:
            n = pub.public_numbers()
            return canonical_map({1: 2, 3: ES256, -1: 1, -2: n.x.to_bytes(32, "big"),
                                  -3: n.y.to_bytes(32, "big")})
        if self.alg == EDDSA:
            from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
            raw = pub.public_bytes(Encoding.Raw, PublicFormat.Raw)
            return canonical_map({1: 1, 3: EDDSA, -1: 6, -2: raw})
        n = pub.public_numbers()
        mod = n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")
        exp = n.e.to_bytes((n.e.bit_length() + 7) // 8, "big")
        return canonical_map({1: 3, 3: RS256, -1: mod, -2: exp})

    def sign(self, data):
        if self.alg == ES256:
            return self.private.sign(data, ec.ECDSA(hashes.SHA256()))   # DER, as WebAuthn wants
        if self.alg == EDDSA:
            return self.private.sign(data)
        return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())


# --------------------------------------------------------------------------
# the authenticator
# --------------------------------------------------------------------------

class Credential:
    """One discoverable credential held by an Authenticator."""

    def __init__(self, rp_id, user_handle, key, cred_id, sign_count, counter_step, backup):
        self.rp_id = rp_id
        self.user_handle = user_handle      # bytes (the RP's user.id)
        self.key = key
        self.id = cred_id                   # bytes
        self.sign_count = sign_count
        self.counter_step = counter_step    # 0: a counter that stays 0 (no counter)
        self.backup = backup

    @property
    def id_b64(self):
        return b64u(self.id)


class Authenticator:
    """A platform authenticator plus the browser's part (client data).

    origin: what the browser puts in clientDataJSON; alg: COSE algorithm of
    new credentials; backup_eligible: BE flag (a synced passkey); counter:
    the first signature count (0 with counter_step 0 = no counter at all).
    """

    def __init__(self, origin, alg=ES256, backup_eligible=False, counter=0, counter_step=1,
                 aaguid=b"\0" * 16, rsa_bits=2048):
        self.origin = origin
        self.alg = alg
        self.rsa_bits = rsa_bits
        self.backup_eligible = backup_eligible
        self.counter = counter
        self.counter_step = counter_step
        self.aaguid = aaguid
        self.credentials = []

    # -- pieces ------------------------------------------------------------

    def client_data(self, type_, challenge, origin=None, cross_origin=False, extra=None):
        cd = {"type": type_, "challenge": challenge, "origin": origin or self.origin,
              "crossOrigin": cross_origin}
        cd.update(extra or {})
        return json.dumps(cd, separators=(",", ":")).encode("utf-8")

    @staticmethod
    def auth_data(rp_id, flags, sign_count, attested=b"", rp_id_hash=None):
        h = rp_id_hash if rp_id_hash is not None else hashlib.sha256(rp_id.encode()).digest()
        return h + bytes([flags]) + struct.pack(">I", sign_count) + attested

    def _flags(self, up, uv, backup, at=False):
        f = (FLAG_UP if up else 0) | (FLAG_UV if uv else 0) | (FLAG_AT if at else 0)
        if backup:
            f |= FLAG_BE | FLAG_BS
        return f

    # -- navigator.credentials.create() ------------------------------------

    def create(self, options, *, origin=None, rp_id=None, rp_id_hash=None, uv=True, up=True,
               challenge=None, type_="webauthn.create", fmt="none", att_stmt=None,
               reuse=None, alg=None, keep=True, cross_origin=False, flags=None):
        """A registration response for PublicKeyCredentialCreationOptions.

        Overrides make it wrong on purpose: origin, rp_id (the ID hashed
        into authData), rp_id_hash (raw bytes), uv/up flags, challenge (the
        base64url text echoed), type_, cross_origin, fmt/att_stmt, flags (the
        whole flags byte, AT included); reuse: an existing
        Credential to register again. keep=False: do not remember the new
        credential (for refused registrations)."""
        rp = rp_id or options["rp"]["id"]
        if reuse is not None:
            cred = reuse
        else:
            cred = Credential(rp, b64u_decode(options["user"]["id"]), Key(alg or self.alg, self.rsa_bits),
                              os.urandom(32), self.counter, self.counter_step,
                              self.backup_eligible)
        cose = cbor(cred.key.cose())
        attested = self.aaguid + struct.pack(">H", len(cred.id)) + cred.id + cose
        f = flags if flags is not None else self._flags(up, uv, cred.backup, at=True)
        ad = self.auth_data(rp, f, cred.sign_count, attested, rp_id_hash)
        cdj = self.client_data(type_, challenge or options["challenge"], origin, cross_origin)
        ao = cbor({"fmt": fmt, "attStmt": att_stmt if att_stmt is not None else {},
                   "authData": ad})
        if keep and reuse is None:
            self.credentials.append(cred)
        return {
            "id": cred.id_b64, "rawId": cred.id_b64, "type": "public-key",
            "authenticatorAttachment": "platform", "clientExtensionResults": {},
            "response": {"clientDataJSON": b64u(cdj), "attestationObject": b64u(ao),
                         "transports": ["internal"]},
        }, cred

    # -- navigator.credentials.get() ---------------------------------------

    def find(self, options):
        """The credential get() would use: the first allowed one, else the
        newest discoverable one for the RP ID."""
        allowed = [b64u_decode(c["id"]) for c in options.get("allowCredentials") or []]
        for cred in reversed(self.credentials):
            if cred.rp_id != options["rpId"]:
                continue
            if not allowed or cred.id in allowed:
                return cred
        raise LookupError("no credential for %r among %r" % (options["rpId"], allowed))

    def get(self, options, *, credential=None, origin=None, rp_id=None, rp_id_hash=None,
            uv=True, up=True, challenge=None, type_="webauthn.get", sign_count=None,
            user_handle=None, sign_with=None, cred_id=None, cross_origin=False, flags=None):
        """An assertion for PublicKeyCredentialRequestOptions.

        credential: which Credential to use (default: find()). sign_count:
        the count to put in authData (default: the credential's next one);
        the credential's counter follows the highest count sent. user_handle: bytes, or
        b"" to leave it out. sign_with: another Key to sign with. cred_id:
        bytes to claim as the credential's id. flags: the whole flags byte."""
        cred = credential or self.find(options)
        if sign_count is None:
            cred.sign_count += cred.counter_step
            sign_count = cred.sign_count
        else:
            cred.sign_count = max(cred.sign_count, sign_count)
        f = flags if flags is not None else self._flags(up, uv, cred.backup)
        ad = self.auth_data(rp_id or options["rpId"], f, sign_count, b"", rp_id_hash)
        cdj = self.client_data(type_, challenge or options["challenge"], origin, cross_origin)
        sig = (sign_with or cred.key).sign(ad + hashlib.sha256(cdj).digest())
        uh = cred.user_handle if user_handle is None else user_handle
        cid = b64u(cred_id if cred_id is not None else cred.id)
        return {
            "id": cid, "rawId": cid, "type": "public-key",
            "authenticatorAttachment": "platform", "clientExtensionResults": {},
            "response": {"clientDataJSON": b64u(cdj), "authenticatorData": b64u(ad),
                         "signature": b64u(sig), "userHandle": b64u(uh) if uh else None},
        }

#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A throw-away SMTP server for tests/unit/core/test_smtp.c, on aiosmtpd.

It listens on a free loopback port, prints "PORT <n>" on stdout once it
accepts connections (after writing the test CA, if any), and serves until
SIGTERM (or, with --watch-stdin, until stdin closes). Each accepted message
is written to --dir as <n>.eml (the bytes received after DATA,
dot-unstuffed) and <n>.env, both renamed into place before the 250 reply,
so that the files exist as soon as the client sees success. <n>.env has one
"key=hex(value)" line per item: helo (the EHLO name), mail_from, rcpt_to,
auth_login, tls ("1"/"0"), and, as decoded by Python's email package (an
independent MIME decoder), subject, from_name, to_name, text and html.

Behaviour switches: --mail-code / --rcpt-code / --data-code answer MAIL,
RCPT or DATA with a canned 4xx/5xx reply; --auth-user/--auth-password require AUTH (PLAIN and
LOGIN) with those credentials; --starttls generates a CA and a server
certificate for 127.0.0.1/localhost into --tls-dir (ca.pem is what the
client trusts) and requires STARTTLS; --implicit-tls serves TLS from the
first byte (smtps) with the same certificate. Test scaffolding only.
"""
import argparse
import asyncio
import datetime
import email
import email.header
import email.policy
import ipaddress
import logging
import os
import signal
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

REPLIES = {
    451: "451 4.3.0 Temporary failure, try again later",
    452: "452 4.2.2 Mailbox full",
    550: "550 5.1.1 No such user here",
    553: "553 5.7.1 Sender address rejected: not owned by you",
    552: "552 5.3.4 Message too big",
    554: "554 5.7.1 Rejected",
}


def make_certificates(tls_dir):
    """A CA and a 127.0.0.1/localhost server certificate, EC P-256."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jwtd smtp test CA")])
    ca = (x509.CertificateBuilder()
          .subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = {name: os.path.join(tls_dir, name) for name in ("ca.pem", "cert.pem", "key.pem")}
    with open(paths["ca.pem"], "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(paths["cert.pem"], "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(paths["key.pem"], "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(paths["cert.pem"], paths["key.pem"])
    return ctx


def decoded(raw):
    """What an independent MIME decoder makes of the message."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    out = {"subject": str(msg.get("Subject", ""))}
    for field in ("From", "To"):
        value = msg.get(field)
        # The display name, decoded exactly (the address parser of the
        # default policy would collapse runs of blanks).
        text = str(email.header.make_header(email.header.decode_header(
            " ".join(value.split("\r\n")) if value else "")))
        out[field.lower() + "_name"] = text.rsplit(" <", 1)[0] if "<" in text else ""
    out["text"] = out["html"] = ""
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            out["text"] = part.get_content()
        elif part.get_content_type() == "text/html":
            out["html"] = part.get_content()
    return out


class Handler:
    def __init__(self, args):
        self.args = args
        self.count = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.args.mail_code:
            return REPLIES[self.args.mail_code]
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.args.rcpt_code:
            return REPLIES[self.args.rcpt_code]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.args.data_code:
            return REPLIES[self.args.data_code]
        self.count += 1
        raw = envelope.original_content
        items = {
            "helo": session.host_name or "",
            "mail_from": envelope.mail_from,
            "rcpt_to": ",".join(envelope.rcpt_tos),
            "auth_login": (session.auth_data.login.decode()
                           if isinstance(session.auth_data, LoginPassword) else ""),
            "tls": "1" if (session.ssl is not None or
                           server.transport.get_extra_info("ssl_object") is not None) else "0",
        }
        try:
            items.update(decoded(raw))
        except Exception as e:  # a parse failure is a test result, not a crash
            items["parse_error"] = repr(e)
        base = os.path.join(self.args.dir, str(self.count))
        with open(base + ".eml.tmp", "wb") as f:
            f.write(raw)
        with open(base + ".env.tmp", "w") as f:
            for k, v in items.items():
                f.write("%s=%s\n" % (k, v.encode("utf-8", "surrogateescape").hex()))
        os.rename(base + ".eml.tmp", base + ".eml")
        os.rename(base + ".env.tmp", base + ".env")
        return "250 2.0.0 Message accepted"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--mail-code", type=int, choices=sorted(REPLIES))
    ap.add_argument("--rcpt-code", type=int, choices=sorted(REPLIES))
    ap.add_argument("--data-code", type=int, choices=sorted(REPLIES))
    ap.add_argument("--auth-user")
    ap.add_argument("--auth-password")
    ap.add_argument("--starttls", action="store_true")
    ap.add_argument("--implicit-tls", action="store_true")
    ap.add_argument("--tls-dir")
    ap.add_argument("--watch-stdin", action="store_true", help="stop when stdin closes")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    if not args.verbose:
        # aiosmtpd warns about AUTH without TLS, which the tests do on purpose.
        warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.CRITICAL,
                        stream=sys.stderr)
    tls_ctx = None
    if args.starttls or args.implicit_tls:
        if not args.tls_dir:
            ap.error("--starttls/--implicit-tls need --tls-dir")
        tls_ctx = make_certificates(args.tls_dir)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == args.auth_user.encode()
              and auth_data.password == args.auth_password.encode())
        # handled=False: let aiosmtpd answer 535 itself on failure.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    handler = Handler(args)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        kw = {}
        if args.auth_user is not None:
            kw.update(auth_required=True, authenticator=authenticator,
                      auth_require_tls=args.starttls)
        if args.starttls:
            kw.update(tls_context=tls_ctx, require_starttls=True)
        return SMTP(handler, hostname="smtp-test.invalid", timeout=30, **kw)

    server = loop.run_until_complete(loop.create_server(
        factory, host="127.0.0.1", port=0, ssl=tls_ctx if args.implicit_tls else None))
    port = server.sockets[0].getsockname()[1]
    print("PORT %d" % port, flush=True)

    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(None))
    if args.watch_stdin:
        # The test holds the other end of a pipe: if it dies, we stop too.
        loop.add_reader(sys.stdin.fileno(),
                        lambda: os.read(sys.stdin.fileno(), 4096) or
                        stop.done() or stop.set_result(None))
    loop.run_until_complete(stop)
    server.close()
    loop.run_until_complete(server.wait_closed())


if __name__ == "__main__":
    main()

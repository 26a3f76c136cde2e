# SPDX-License-Identifier: Apache-2.0
"""A throw-away SMTP relay for the mail tests of the e2e suite.

`SmtpServer` runs tests/unit/core/smtp_server.py (aiosmtpd, Debian's
/usr/bin/python3) as a child process and reads what it received: every
accepted message is a `Message` (parsed with the standard `email` package:
subject, recipients, text and HTML parts, the link, its token, the code).

Two things the unit-test server does not do on its own, added by running it
through this file (`python3 mail_util.py PORT ATTEMPTS -- <its options>`,
the code at the bottom), without changing it:

- listen on a GIVEN port: an outage test stops the relay and starts it
  again where jwtd expects it (the unit server always asks for port 0);
- count refused attempts: every RCPT and DATA reply, accepted or not, is
  appended to an attempts file, so that "a 550 is not retried" can be
  counted at the relay, not only believed from jwtd's log.

Each start writes its messages to its own directory (run-1, run-2, ...):
the unit server numbers messages from 1 in every process, and a restart
must not overwrite what the previous one received.
"""

import email
import email.policy
import email.utils
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
SMTP_SERVER = os.path.join(REPO, "tests", "unit", "core", "smtp_server.py")
PYTHON = "/usr/bin/python3"
SLOW = 3.0 if os.environ.get("JWTD_E2E_SLOW") else 1.0
POLL = 0.05

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
URL_RE = re.compile(r"https?://[^\s<>\"']+")
CODE_RE = re.compile(r"(?<![0-9A-Za-z])([0-9]{6})(?![0-9A-Za-z])")


class Message:
    """One message the relay accepted: the raw bytes and the envelope."""

    def __init__(self, run, n, raw, envelope):
        self.run, self.n = run, n
        self.raw = raw
        self.envelope = envelope            # the unit server's .env items (decoded)
        self.msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.text = self.html = None
        for part in self.msg.walk():
            ct = part.get_content_type()
            if ct == "text/plain" and self.text is None:
                self.text = part.get_content()
            elif ct == "text/html" and self.html is None:
                self.html = part.get_content()

    @property
    def subject(self):
        return str(self.msg.get("Subject", ""))

    @property
    def to(self):
        """The address of the To: header (lower case)."""
        return email.utils.parseaddr(str(self.msg.get("To", "")))[1].lower()

    @property
    def rcpt_to(self):
        """The envelope recipients (RCPT TO), lower case."""
        return [a.lower() for a in self.envelope.get("rcpt_to", "").split(",") if a]

    @property
    def mail_from(self):
        return self.envelope.get("mail_from", "")

    @property
    def message_id(self):
        return str(self.msg.get("Message-ID", ""))

    def links(self):
        return URL_RE.findall(self.text or "")

    @property
    def link(self):
        """The one link with ?token= in the text part (None without)."""
        found = [u for u in self.links() if "token=" in u]
        assert len(set(found)) <= 1, "several links in %r" % self.text
        return found[0] if found else None

    @property
    def token(self):
        if not self.link:
            return None
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.link).query)
        (tok,) = q["token"]
        return tok

    @property
    def code(self):
        """The six-digit code of the text part (None without)."""
        found = CODE_RE.findall(self.text or "")
        assert len(set(found)) <= 1, "several codes in %r" % self.text
        return found[0] if found else None

    def __repr__(self):
        return "<Message run %d #%d to %s %r>" % (self.run, self.n, self.to, self.subject)


class SmtpServer:
    """The test relay. `port`: where to listen (None: a free one, fixed by
    the first start and kept for every restart). Not started until start().

    The options of a start: rcpt_code / data_code (451, 550, ...: every RCPT
    or DATA is answered so)."""

    def __init__(self, port=None, tmpdir=None):
        self.port = port
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="jwtd-e2e-smtp-")
        self.attempts_path = os.path.join(self.tmpdir, "attempts.log")
        open(self.attempts_path, "a").close()
        self.proc = None
        self.runs = 0
        self.stderr_path = None

    # -- settings for jwtd ---------------------------------------------------

    @property
    def url(self):
        assert self.port, "the relay has no port yet"
        return "smtp://127.0.0.1:%d" % self.port

    def jwtd_env(self, **extra):
        """JWTD_* settings that point jwtd at this relay (plain SMTP on
        loopback, fast polling and retries); extra overrides (None removes)."""
        e = {"JWTD_SMTP_URL": self.url, "JWTD_SMTP_TLS": "off",
             "JWTD_MAIL_FROM": "jwtd e2e <noreply@jwtd-e2e.test>",
             "JWTD_MAIL_POLL": "50ms", "JWTD_MAIL_RETRY": "100ms",
             "JWTD_MAIL_RETRY_MAX": "200ms", "JWTD_SMTP_TIMEOUT": "5s"}
        e.update(extra)
        return {k: v for k, v in e.items() if v is not None}

    # -- process ---------------------------------------------------------------

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, rcpt_code=None, data_code=None, hold_data=None, timeout=15.0):
        """hold_data: seconds to wait, after a message is stored, before
        answering its DATA (a client killed meanwhile never hears the 250)."""
        assert not self.running(), "the relay is running already"
        self.runs += 1
        rundir = os.path.join(self.tmpdir, "run-%d" % self.runs)
        os.mkdir(rundir)
        self.stderr_path = os.path.join(self.tmpdir, "stderr-%d.log" % self.runs)
        args = [PYTHON, os.path.abspath(__file__), str(self.port or 0), self.attempts_path,
                "--", "--dir", rundir, "--watch-stdin"]
        if rcpt_code:
            args += ["--rcpt-code", str(rcpt_code)]
        if data_code:
            args += ["--data-code", str(data_code)]
        if hold_data:
            args += ["--hold-data", str(hold_data)]
        with open(self.stderr_path, "wb") as err:
            # stdin is a pipe we hold: if the test process dies, the relay stops
            self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err)
        deadline = time.monotonic() + timeout * SLOW
        line = b""
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if r:
                line = self.proc.stdout.readline()
                break
            if self.proc.poll() is not None:
                break
        m = re.match(rb"PORT (\d+)", line)
        if not m:
            self.kill()
            raise AssertionError("the test SMTP server did not start (%r); stderr:\n%s"
                                 % (line, self.stderr()))
        port = int(m.group(1))
        assert self.port in (None, port), "relay on %d, wanted %s" % (port, self.port)
        self.port = port
        return self

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            f.close()
        self.proc = None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self.stop()

    def restart(self, **opts):
        """Stop, then start again on the same port with `opts`."""
        self.stop()
        return self.start(**opts)

    def close(self):
        self.stop()
        if not os.environ.get("JWTD_E2E_KEEP"):
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def stderr(self):
        if not self.stderr_path or not os.path.exists(self.stderr_path):
            return ""
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    # -- what it received --------------------------------------------------------

    def messages(self, to=None):
        """Every message accepted so far, in order of arrival (by start, then
        number); `to`: only those whose envelope recipient is that address."""
        out = []
        for run in range(1, self.runs + 1):
            d = os.path.join(self.tmpdir, "run-%d" % run)
            if not os.path.isdir(d):
                continue
            nums = sorted(int(n[:-4]) for n in os.listdir(d) if n.endswith(".env"))
            for n in nums:
                with open(os.path.join(d, "%d.eml" % n), "rb") as f:
                    raw = f.read()
                env = {}
                with open(os.path.join(d, "%d.env" % n)) as f:
                    for line in f:
                        k, _, v = line.rstrip("\n").partition("=")
                        env[k] = bytes.fromhex(v).decode("utf-8", "surrogateescape")
                out.append(Message(run, n, raw, env))
        if to is not None:
            out = [m for m in out if to.lower() in m.rcpt_to]
        return out

    def wait_messages(self, n, to=None, timeout=10.0, what=None):
        """Poll until at least n messages (to `to`) arrived; return them all."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            got = self.messages(to)
            if len(got) >= n:
                return got
            if time.monotonic() >= deadline:
                raise AssertionError("timed out after %.1fs waiting for %d message(s)%s%s; got %r"
                                     % (timeout * SLOW, n, " to " + to if to else "",
                                        " (%s)" % what if what else "", got))
            time.sleep(POLL)

    def wait_one(self, to, timeout=10.0, what=None):
        """The next message to `to` when exactly one is expected so far."""
        got = self.wait_messages(1, to=to, timeout=timeout, what=what)
        assert len(got) == 1, "expected one message to %s, got %r" % (to, got)
        return got[0]

    def attempts(self, to=None):
        """[(command, reply code, argument)] for every RCPT and DATA the relay
        answered, in order, across restarts."""
        rows = []
        with open(self.attempts_path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 3:
                    rows.append((parts[0], int(parts[1]), parts[2]))
        if to is not None:
            rows = [r for r in rows if r[0] != "RCPT" or r[2].lower() == to.lower()]
        return rows


# ----------------------------------------------------------------------------
# The runner: tests/unit/core/smtp_server.py on a given port, counting replies.
# ----------------------------------------------------------------------------

def _run_relay(argv):
    import asyncio
    port = int(argv[0])
    attempts_path = argv[1]
    assert argv[2] == "--"
    sys.path.insert(0, os.path.dirname(SMTP_SERVER))
    import smtp_server  # noqa: E402 - the unit tests' server, unchanged

    def note(cmd, reply, arg):
        with open(attempts_path, "a") as f:
            f.write("%s\t%s\t%s\n" % (cmd, str(reply)[:3], arg))

    orig_rcpt, orig_data = smtp_server.Handler.handle_RCPT, smtp_server.Handler.handle_DATA

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = await orig_rcpt(self, server, session, envelope, address, rcpt_options)
        note("RCPT", reply, address)
        return reply

    rest = argv[3:]
    hold = 0.0
    if "--hold-data" in rest:
        i = rest.index("--hold-data")
        hold = float(rest[i + 1])
        del rest[i:i + 2]

    async def handle_DATA(self, server, session, envelope):
        reply = await orig_data(self, server, session, envelope)
        note("DATA", reply, ",".join(envelope.rcpt_tos))
        if hold:
            await asyncio.sleep(hold)
        return reply

    smtp_server.Handler.handle_RCPT = handle_RCPT
    smtp_server.Handler.handle_DATA = handle_DATA

    if port:
        want = port
        orig_create = asyncio.BaseEventLoop.create_server

        # smtp_server asks for create_server(factory, host=..., port=0, ...)
        async def create_server(self, factory, host=None, port=None, **kw):
            return await orig_create(self, factory, host=host, port=port or want, **kw)

        asyncio.BaseEventLoop.create_server = create_server
    sys.argv = [SMTP_SERVER] + rest
    smtp_server.main()


if __name__ == "__main__":
    _run_relay(sys.argv[1:])

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
`RawRelay` is the other relay: a few lines of raw-socket SMTP on threads
of the test process, scripted to misbehave where aiosmtpd cannot (no
greeting, silence after the message, a dropped connection, replies
dripped a byte at a time or longer than any client reads).
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


def relay_env(url, extra):
    """JWTD_* settings that point jwtd at the relay at `url` (plain SMTP on
    loopback, fast polling and retries); extra overrides (None removes)."""
    e = {"JWTD_SMTP_URL": url, "JWTD_SMTP_TLS": "off",
         "JWTD_MAIL_FROM": "jwtd e2e <noreply@jwtd-e2e.test>",
         "JWTD_MAIL_POLL": "50ms", "JWTD_MAIL_RETRY": "100ms",
         "JWTD_MAIL_RETRY_MAX": "200ms", "JWTD_SMTP_TIMEOUT": "5s"}
    e.update(extra)
    return {k: v for k, v in e.items() if v is not None}


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
        return relay_env(self.url, extra)

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


# ----------------------------------------------------------------------------
# A relay that misbehaves on purpose: raw sockets, one scripted dialogue.
# ----------------------------------------------------------------------------

class RawRelay:
    """A minimal SMTP server on threads of the test process, for the faults
    aiosmtpd will not commit: no greeting, a connection dropped mid-DATA or
    after the final dot, 421 at a chosen step, a reply dripped one byte at a
    time, an endless reply line, no answer to QUIT.

    `script` maps a step to what happens there instead of the normal reply:
    steps "greeting", "ehlo", "mail", "rcpt", "data" (the reply to the DATA
    command), "dot" (the reply to the end of the message), "quit"; values: a
    reply (lines joined by CRLF: "421 4.3.2 bye", or a multi-line one),
    "hang" (say nothing, keep the connection open until close()), "close"
    (drop the connection), or ("drip", reply): the reply one byte per
    `drip_s` seconds. The step "body": "close" drops the connection after
    three lines of the message. `script` applies to every connection;
    `scripts` (a list) to the first connections in turn, then `script`.

    `.received`: every complete message (its end-of-data dot read, whatever
    was answered), as (envelope recipients, the lines as sent on the wire,
    dot-stuffing included); `.lines`: every command line, in order."""

    STEPS = ("greeting", "ehlo", "mail", "rcpt", "data", "body", "dot", "quit")

    def __init__(self, script=None, scripts=None, drip_s=1.0, ehlo_lines=None):
        import socket
        import threading
        for s in [script or {}] + list(scripts or []):
            assert set(s) <= set(self.STEPS), s
        self.script = script or {}
        self.scripts = list(scripts or [])
        self.drip_s = drip_s
        self.ehlo_lines = ehlo_lines or ["250-raw.test", "250-8BITMIME", "250 SIZE 1000000"]
        self.received = []
        self.connections = 0
        self.lines = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def url(self):
        return "smtp://127.0.0.1:%d" % self.port

    def jwtd_env(self, **extra):
        return relay_env(self.url, extra)

    def message_ids(self):
        """The Message-ID header of each received message, in order."""
        out = []
        for _, lines in self.received:
            ids = [l.split(b":", 1)[1].strip().decode() for l in lines
                   if l.lower().startswith(b"message-id:")]
            out.append(ids[0] if ids else None)
        return out

    def close(self):
        self._stop.set()
        for t in list(self._threads):
            t.join(timeout=5)
        self._sock.close()

    def _accept(self):
        import threading
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with self._lock:
                n = self.connections
                self.connections += 1
            script = self.scripts[n] if n < len(self.scripts) else self.script
            t = threading.Thread(target=self._serve, args=(conn, script), daemon=True)
            t.start()
            self._threads.append(t)

    def _say(self, conn, step, normal, script):
        """Answer at `step`: the reply sent, or None when the dialogue ends
        here (hung up, dropped, or a reply that closes it: 421, or a 4xx or
        5xx greeting)."""
        what = script.get(step, normal)
        if what == "hang":
            while not self._stop.wait(0.05):
                pass
            return None
        if what == "close":
            return None
        if isinstance(what, tuple):
            assert what[0] == "drip", what
            for b in (what[1] + "\r\n").encode():
                if self._stop.wait(self.drip_s):
                    return None
                conn.sendall(bytes([b]))
            what = what[1]
        else:
            conn.sendall((what + "\r\n").encode())
        if what.startswith("421") or (step == "greeting" and what[0] in "45"):
            return None
        return what

    def _serve(self, conn, script):
        conn.settimeout(0.1)
        buf = b""

        def line():
            nonlocal buf
            while b"\r\n" not in buf:
                if self._stop.is_set():
                    return None
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return None
                if not chunk:
                    return None
                buf += chunk
            l, _, buf = buf.partition(b"\r\n")
            return l
        try:
            if self._say(conn, "greeting", "220 raw.test ESMTP", script) is None:
                return
            rcpts = []
            while True:
                l = line()
                if l is None:
                    return
                with self._lock:
                    self.lines.append(l)
                verb = l[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    ok = self._say(conn, "ehlo", "\r\n".join(self.ehlo_lines), script)
                elif verb == b"MAIL":
                    rcpts = []
                    ok = self._say(conn, "mail", "250 2.1.0 ok", script)
                elif verb == b"RCPT":
                    rcpts.append(l.split(b":", 1)[1].strip().strip(b"<>").decode())
                    ok = self._say(conn, "rcpt", "250 2.1.5 ok", script)
                elif verb == b"DATA":
                    ok = self._say(conn, "data", "354 go ahead", script)
                    if ok and ok.startswith("354"):
                        body = []
                        while True:
                            d = line()
                            if d is None or (script.get("body") == "close" and len(body) >= 3):
                                return
                            if d == b".":
                                break
                            body.append(d)
                        with self._lock:
                            self.received.append((rcpts, body))
                        ok = self._say(conn, "dot", "250 2.0.0 queued", script)
                elif verb == b"QUIT":
                    self._say(conn, "quit", "221 bye", script)
                    return
                else:
                    ok = self._say(conn, verb.decode("ascii", "replace").lower(),
                                   "502 5.5.2 not here", script)
                if ok is None:
                    return
        except OSError:
            pass             # the client hung up first: nothing more to do
        finally:
            conn.close()

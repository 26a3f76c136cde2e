# SPDX-License-Identifier: Apache-2.0
"""A throwaway PostgreSQL cluster for the storage tests (test_multi_instance,
test_faults): the Python twin of scripts/pg.sh (pg_start / pg_new_db / pg_stop),
plus the restart / stop / start that the fault tests need.

PostgreSQL refuses to run as root, so as root the cluster runs as the
`postgres` system user (Debian's package creates it), exactly as pg.sh does.
`PgCluster.unavailable()` says why no cluster can be made here (None when one can).
"""

import glob
import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
import time

from e2e_util import free_port


def pg_bin_dir():
    """The newest /usr/lib/postgresql/*/bin holding initdb (None when absent)."""
    dirs = [d for d in glob.glob("/usr/lib/postgresql/*/bin")
            if os.access(os.path.join(d, "initdb"), os.X_OK)]

    def version(d):
        return [int(x) for x in re.findall(r"\d+", d.split("/")[-2])] or [0]
    return max(dirs, key=version) if dirs else None


class PgDatabase:
    """A database on a PgCluster, usable as `database=` of jwtd_factory /
    module_factory (it has the `url`, `kind` and `close()` of e2e_util.Database).
    Servers given it do not drop it; the cluster goes away as a whole."""

    kind = "postgres"

    def __init__(self, cluster, name):
        self.cluster, self.name = cluster, name
        self.url = "postgres://postgres@127.0.0.1:%d/%s" % (cluster.port, name)

    def close(self):
        pass


class PgCluster:
    def __init__(self):
        self.bin = pg_bin_dir()
        self.dir = None
        self.port = None
        self.running = False

    @staticmethod
    def unavailable():
        if pg_bin_dir() is None:
            return "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb; " \
                   "apt-get install postgresql)"
        if shutil.which("psql") is None:
            return "psql not found (apt-get install postgresql-client)"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no `postgres` user to run PostgreSQL as"
            if shutil.which("runuser") is None:
                return "running as root and runuser(1) is missing"
        return None

    # -- plumbing ---------------------------------------------------------

    def _as_owner(self, argv):
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--"] + argv
        return argv

    def _run(self, argv, timeout=90, check=True):
        p = subprocess.run(self._as_owner(argv), stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError("%s failed (%d): %s%s\nserver log tail:\n%s"
                               % (" ".join(argv), p.returncode, p.stdout.decode(errors="replace"),
                                  p.stderr.decode(errors="replace"), self.log_tail()))
        return p

    def pg_ctl(self, *args, timeout=90, check=True):
        return self._run([os.path.join(self.bin, "pg_ctl"), "-D", self.data] + list(args),
                         timeout=timeout, check=check)

    @property
    def data(self):
        return os.path.join(self.dir, "data")

    def log_tail(self, n=4000):
        try:
            with open(os.path.join(self.dir, "server.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")[-n:]
        except (OSError, TypeError):
            return ""

    # -- life cycle -------------------------------------------------------

    def start_new(self):
        """initdb + start on a free loopback port (pg.sh's pg_start)."""
        self.dir = tempfile.mkdtemp(prefix="jwtd-pg-")
        os.chmod(self.dir, 0o755)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.port = free_port()
        self._run([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "postgres",
                   "-A", "trust", "--no-sync"], timeout=120)
        self.start()
        return self

    def start(self, timeout=60):
        opts = ("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=300"
                % (self.port, self.dir))
        self.pg_ctl("-l", os.path.join(self.dir, "server.log"), "-w", "-t", str(timeout),
                    "-o", opts, "start", timeout=timeout + 30)
        self.running = True

    def stop(self, mode="fast", timeout=60):
        self.pg_ctl("-m", mode, "-w", "-t", str(timeout), "stop", timeout=timeout + 30)
        self.running = False

    def restart(self, mode="fast", timeout=60):
        # pg_ctl restart reuses the options of the last start (postmaster.opts)
        self.pg_ctl("-l", os.path.join(self.dir, "server.log"), "-m", mode, "-w", "-t",
                    str(timeout), "restart", timeout=timeout + 30)
        self.running = True

    def destroy(self):
        if self.dir is None:
            return
        try:
            if self.running or os.path.exists(os.path.join(self.data, "postmaster.pid")):
                self.pg_ctl("-m", "immediate", "-w", "stop", check=False)
        finally:
            self.running = False
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    # -- databases --------------------------------------------------------

    def psql(self, sql, db="postgres", timeout=60):
        p = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                            "-d", db, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError("psql %r failed: %s" % (sql, p.stderr.decode(errors="replace")))
        return p.stdout.decode()

    def new_database(self, prefix="jwtd"):
        """A fresh, empty database (pg.sh's pg_new_db)."""
        name = "%s_%s" % (prefix, secrets.token_hex(5))
        self.psql('CREATE DATABASE "%s"' % name)
        return PgDatabase(self, name)

    def wait_accepting(self, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            p = subprocess.run([os.path.join(self.bin, "pg_isready"), "-h", "127.0.0.1",
                                "-p", str(self.port), "-t", "1"], capture_output=True)
            if p.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL not accepting connections after %ds" % timeout)
            time.sleep(0.1)

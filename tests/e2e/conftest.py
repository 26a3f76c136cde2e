# SPDX-License-Identifier: Apache-2.0
"""Fixtures of the jwtd end-to-end suite.

- `server`: one default (ES256) server per test module, fresh database.
- `jwtd_factory`: start servers with custom settings inside one test;
  `module_factory` does the same for module-scoped fixtures.
- `client`: a keep-alive HTTP client to `server`.

Environment: JWTD_BIN (binary, default <repo>/build/jwtd), JWTD_E2E_DATABASE
(sqlite:... by default, or a postgres:// URL; see e2e_util.Database).
"""

import os

import pytest

from e2e_util import JwtdServer, jwtd_bin


# Tests that measure time, load the machine, or need it quiet: scripts/test.sh
# runs them on their own after the rest ran in parallel (pytest-xdist).
SERIAL_MODULES = {
    "test_overload.py",          # floods, latency under load, slowloris
    "test_faults.py",            # outages under load, kill -9, disk full
    "test_shutdown.py",          # drain timing
    "test_revocation_bound.py",  # the one-second bound
    "test_multi_instance.py",    # several servers and a PostgreSQL cluster
}
SERIAL_NAME_PARTS = ("timing",)
# Driven through headless Chromium: what a browser sees of the pages does not
# depend on the storage backend (the same core services run under the JSON
# API and test_pages.py on both), so scripts/test.sh runs them once, in the
# sanitizer pass on SQLite, the default.
BROWSER_MODULES = {"test_browser.py"}


def pytest_configure(config):
    config.addinivalue_line("markers", "serial: measures time or loads the machine; run alone")
    config.addinivalue_line("markers", "pgcluster: starts its own PostgreSQL cluster (run once, "
                                       "in the PostgreSQL pass)")
    config.addinivalue_line("markers", "browser: drives headless Chromium (run once, in the "
                                       "sanitizer pass)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & {"pg_cluster", "pg_pair"}:
            item.add_marker(pytest.mark.pgcluster)
        if os.path.basename(str(item.fspath)) in BROWSER_MODULES:
            item.add_marker(pytest.mark.browser)
        if (os.path.basename(str(item.fspath)) in SERIAL_MODULES
                or any(p in item.name for p in SERIAL_NAME_PARTS)):
            item.add_marker(pytest.mark.serial)


def pytest_sessionstart(session):
    if not session.config.option.collectonly and not os.access(jwtd_bin(), os.X_OK):
        raise pytest.UsageError("jwtd binary not found or not executable: %s (set JWTD_BIN)"
                                % jwtd_bin())


class _Factory:
    def __init__(self):
        self.servers = []

    def __call__(self, env=None, args=None, database=None, port=None, start=True, tmpdir=None):
        srv = JwtdServer(env=env, args=args, database=database, port=port, tmpdir=tmpdir)
        self.servers.append(srv)
        if start:
            srv.start()
        return srv

    def close(self):
        errors = []
        # stop in reverse order; servers sharing a database close it last
        for srv in reversed(self.servers):
            try:
                srv.close()
            except AssertionError as e:
                errors.append(str(e))
        self.servers = []
        assert not errors, "\n\n".join(errors)


@pytest.fixture
def jwtd_factory():
    f = _Factory()
    yield f
    f.close()


@pytest.fixture(scope="module")
def module_factory():
    f = _Factory()
    yield f
    f.close()


@pytest.fixture(scope="module")
def server(module_factory):
    return module_factory()


@pytest.fixture
def client(server):
    c = server.client()
    yield c
    c.close()


@pytest.fixture(scope="module")
def relay():
    """A real SMTP relay (aiosmtpd, mail_util.SmtpServer) for the module."""
    from mail_util import SmtpServer
    s = SmtpServer()
    s.start()
    yield s
    s.close()


@pytest.fixture(scope="module")
def pg_cluster():
    """A throwaway PostgreSQL cluster for the module (pg_cluster.PgCluster: the
    Python twin of scripts/pg.sh); skips the module when none can be made here.
    `pg_cluster.new_database()` gives a fresh database to pass as `database=`."""
    from pg_cluster import PgCluster
    why = PgCluster.unavailable()
    if why:
        pytest.skip(why)
    cluster = PgCluster()
    try:
        cluster.start_new()
    except Exception as e:  # noqa: BLE001 - a cluster that cannot start is an environment issue
        cluster.destroy()
        pytest.skip("cannot start a PostgreSQL cluster here: %s" % e)
    yield cluster
    cluster.destroy()

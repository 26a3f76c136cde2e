# SPDX-License-Identifier: Apache-2.0
"""SIGTERM/SIGINT: clean shutdown with exit code 0, even with open connections;
the data survives a restart."""

import signal
import socket
import time

import pytest

from e2e_util import Client, login, signup


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_zero(jwtd_factory, sig):
    srv = jwtd_factory()
    assert srv.client().get("/healthz").status == 200
    t0 = time.monotonic()
    assert srv.stop(sig=sig) == 0
    assert time.monotonic() - t0 < 10
    with pytest.raises(OSError):
        socket.create_connection((srv.host, srv.port), timeout=2).close()


def test_shutdown_with_idle_keepalive_connection(jwtd_factory):
    srv = jwtd_factory()
    c = Client(srv.host, srv.port)
    assert c.get("/healthz").status == 200           # connection stays open, idle
    raw = socket.create_connection((srv.host, srv.port), timeout=5)   # open, never used
    try:
        t0 = time.monotonic()
        assert srv.stop(sig=signal.SIGTERM) == 0
        assert time.monotonic() - t0 < 10
    finally:
        raw.close()
        c.close()


def test_shutdown_after_traffic(jwtd_factory):
    srv = jwtd_factory()
    c = srv.client()
    for _ in range(3):
        username, password, _ = signup(c)
        login(c, username, password)
    assert srv.stop(sig=signal.SIGTERM) == 0


def test_restart_keeps_users(jwtd_factory):
    first = jwtd_factory()
    username, password, user = signup(first.client())
    first.stop()
    second = jwtd_factory(database=first.db)
    body = login(second.client(), username, password)
    assert body["user"] == user

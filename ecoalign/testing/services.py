"""Restarting the Redis and PostgreSQL a test or benchmark runs on, and waiting for them to come back.

The one place for these helpers (tests/integration, tests/reliability, benchmarks/chaos). Which servers they
restart is a parameter: CI (``.ci/run``, alone on its machine) restarts the machine's own Redis and PostgreSQL
and leaves them running as found; on a shared machine point them at private instances instead
(``ECOALIGN_TEST_RESTART_REDIS_URL``, ``ECOALIGN_TEST_RESTART_PG_URL`` and ``ECOALIGN_TEST_RESTART_PG_CLUSTER``,
read by ``from_env``).

A Redis restart is ``SHUTDOWN NOSAVE`` then a new ``redis-server`` on the same port without persistence (every
queued message is lost, the worst case). A PostgreSQL restart is ``pg_ctlcluster VERSION NAME stop --mode fast``
(every connection is dropped, transactions in flight are rolled back) then ``start``.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} within {timeout_s} s")
        time.sleep(0.1)


@dataclass(frozen=True)
class RedisServer:
    """A Redis server this process may stop and start (host, port; ``db`` is the database tests use)."""

    host: str = "127.0.0.1"
    port: int = 6379

    @classmethod
    def from_url(cls, url: str) -> RedisServer:
        parsed = urlsplit(url)
        return cls(parsed.hostname or "127.0.0.1", parsed.port or 6379)

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    def alive(self) -> bool:
        try:
            return bool(redis.Redis(self.host, self.port, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """``SHUTDOWN NOSAVE``: every queued and unacknowledged message is gone."""
        subprocess.run(["redis-cli", "-h", self.host, "-p", str(self.port), "shutdown", "nosave"],
                       capture_output=True, timeout=10)
        _wait(lambda: not self.alive(), 15, f"redis {self.port} did not stop")

    def start(self) -> None:
        """Start it (daemonized, no persistence) unless it answers already; wait until it does."""
        if self.alive():
            return
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", self.host, "--port", str(self.port),
                        "--save", "", "--appendonly", "no"], check=True, capture_output=True, timeout=10)
        _wait(self.alive, 15, f"redis {self.port} did not come back")

    def restart(self, down_s: float = 1.0) -> None:
        self.stop()
        time.sleep(down_s)  # the outage itself: what the clients must ride out
        self.start()


@dataclass(frozen=True)
class PostgresServer:
    """A PostgreSQL cluster run by Debian's ``pg_ctlcluster`` (``version``/``name``) and the URL it answers on."""

    url: str = DEFAULT_PG_URL  # a database on it to connect to (``postgres``); tests create their own beside it
    version: str = "15"
    name: str = "main"

    def alive(self) -> bool:
        parsed = make_url(self.url)
        done = subprocess.run(["pg_isready", "-q", "-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432)],
                              capture_output=True, timeout=10)
        if done.returncode != 0:
            return False
        return self._query_ok()

    def _query_ok(self) -> bool:
        from sqlalchemy.pool import NullPool

        from ecoalign.store.db import make_engine

        engine = make_engine(self.url, poolclass=NullPool, connect_args={"connect_timeout": 2})
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception:
            return False
        finally:
            engine.dispose()

    def _ctl(self, *args: str) -> None:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, *args],
                       check=True, capture_output=True, timeout=60)

    def stop(self) -> None:
        """Fast shutdown: every client connection is dropped and every open transaction rolled back."""
        self._ctl("stop", "--mode", "fast")

    def start(self) -> None:
        if self.alive():
            return
        self._ctl("start")
        _wait(self.alive, 60, f"postgres {self.version}/{self.name} did not come back")

    def restart(self, down_s: float = 1.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()


def redis_from_env() -> RedisServer:
    """The Redis a restart test may restart: ``ECOALIGN_TEST_RESTART_REDIS_URL`` (default: the machine's own)."""
    return RedisServer.from_url(os.environ.get("ECOALIGN_TEST_RESTART_REDIS_URL", DEFAULT_REDIS_URL))


def default_cluster() -> str:
    """``VERSION/main`` of the machine's PostgreSQL (the newest version under /etc/postgresql, as ``.ci/run`` starts
    it), ``15/main`` if there is none."""
    versions = sorted(os.listdir("/etc/postgresql"), key=lambda v: [int(p) for p in v.split(".") if p.isdigit()]) \
        if os.path.isdir("/etc/postgresql") else []
    return f"{versions[-1]}/main" if versions else "15/main"


def postgres_from_env() -> PostgresServer:
    """The PostgreSQL a restart test may restart: ``ECOALIGN_TEST_RESTART_PG_URL`` (default: the machine's own,
    port 5432) run by the cluster ``ECOALIGN_TEST_RESTART_PG_CLUSTER`` (``VERSION/NAME``, default
    ``default_cluster()``)."""
    spec = os.environ.get("ECOALIGN_TEST_RESTART_PG_CLUSTER") or default_cluster()
    version, _, name = spec.partition("/")
    return PostgresServer(os.environ.get("ECOALIGN_TEST_RESTART_PG_URL", DEFAULT_PG_URL), version, name or "main")

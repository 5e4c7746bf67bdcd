"""The worker process's composition root (``ecoalign.runtime.root.Root``) and its lease keeper.

Built on first use and keyed by pid, so a prefork child never uses a connection pool or a thread inherited from its
parent: a child builds its own root with ``Root.for_child`` (which borrows the parent's local model server and
drops the parent's pool without closing its sockets, which the parent still owns). Safe for the threads pool: the
root and the keeper are created under a lock, and the objects themselves are thread-safe. Tests and benchmarks
inject their settings, session factory or adapters with ``use`` and forget them with ``reset``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ecoalign.runtime.root import Root
from ecoalign.runtime.services import Services
from ecoalign.settings import Settings, get_settings
from ecoalign.store import repository
from ecoalign.store.db import run_in_transaction

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews the leases of the nodes this process is working on, every ``lease_s / 3`` seconds.

    Why: a lease must outlive the slowest live call (a model call with retries can take minutes), yet be short
    so a node of a dead worker is picked up quickly. Renewing while the work runs gives both: when the process
    dies (kill -9), renewals stop and the lease runs out within ``lease_s``.
    """

    def __init__(self, factory: sessionmaker[Session], lease_s: float) -> None:
        self.factory = factory
        self.lease_s = lease_s
        self._held: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def hold(self, job_id: str, node_id: str, attempt: int) -> Iterator[None]:
        key = (job_id, node_id)
        with self._lock:
            self._held[key] = attempt
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ecoalign-lease-keeper", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                if self._held.get(key) == attempt:
                    del self._held[key]

    def held(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._held)

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        interval = max(self.lease_s / 3.0, 0.2)
        while not self._stop.wait(interval):
            for (job_id, node_id), attempt in self.held().items():
                try:
                    kept = run_in_transaction(
                        self.factory,
                        lambda s, j=job_id, n=node_id, a=attempt: repository.renew_lease(
                            s, j, n, a, lease_seconds=self.lease_s
                        ),
                    )
                except Exception:  # the database is down: the next round tries again
                    log.warning("lease renewal of node %s failed", node_id, exc_info=True)
                    continue
                if not kept:  # finished, cancelled or taken over: nothing left to keep
                    with self._lock:
                        if self._held.get((job_id, node_id)) == attempt:
                            del self._held[(job_id, node_id)]


def engine_options(s: Settings) -> dict[str, Any]:
    """A worker's database pool: sized, pre-pinged or not, and without prepared statements behind PgBouncer
    (transaction mode changes the server connection between transactions, so psycopg's automatic server-side
    prepared statements would be missing on the next one)."""
    connect_args = {"prepare_threshold": None} if s.db_pgbouncer else {}
    return {
        "pool_size": s.db_pool_size,
        "max_overflow": s.db_max_overflow,
        "pool_pre_ping": s.db_pre_ping,
        "connect_args": connect_args,
    }


class _Worker:
    """This process's root and lease keeper (one lock); a forked child replaces what it inherited."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = os.getpid()
        self.root: Root | None = None
        self.keeper: LeaseKeeper | None = None

    def current_root(self) -> Root:
        """The root of this process (called with the lock held)."""
        if self.pid != os.getpid():  # forked: never the parent's pool, threads or server ownership
            self.root = self.root.for_child() if self.root is not None else None
            self.keeper, self.pid = None, os.getpid()
        if self.root is None:
            settings = get_settings()
            self.root = Root(settings, engine_options=engine_options(settings))
        return self.root


_worker = _Worker()


def use(
    *,
    settings_: Settings | None = None,
    factory: sessionmaker[Session] | None = None,
    services_: Services | None = None,
) -> None:
    """Make this process's root one built from ``settings_`` (default: the current settings) with the session
    factory and adapters given (in-process tests and benchmarks); the injected objects stay their owners' to close.
    """
    with _worker.lock:
        previous = _worker.current_root()
        settings = settings_ or previous.settings
        previous.close()
        if _worker.keeper is not None:
            _worker.keeper.stop()
        _worker.keeper = None
        _worker.root = Root(settings, engine_options=engine_options(settings), sessions=factory, services=services_)


def reset() -> None:
    """Close and forget this process's root and keeper (tests); injected objects are left to their owners."""
    with _worker.lock:
        if _worker.keeper is not None:
            _worker.keeper.stop()
        if _worker.root is not None and _worker.pid == os.getpid():
            _worker.root.close()
        _worker.root = _worker.keeper = None


def root() -> Root:
    """This worker process's composition root."""
    with _worker.lock:
        return _worker.current_root()


def settings() -> Settings:
    return root().settings


def db() -> sessionmaker[Session]:
    """This process's session factory (one engine per process; one session per task transaction)."""
    return root().sessions()


def services() -> Services:
    """This process's chat model and evaluators, built once (loading the offline evaluators takes seconds)."""
    return root().services()


def keeper() -> LeaseKeeper:
    with _worker.lock:
        current = _worker.current_root()
        if _worker.keeper is None:
            _worker.keeper = LeaseKeeper(current.sessions(), current.settings.node_lease_s)
        return _worker.keeper


def shutdown() -> None:
    """Release this process's resources (worker shutdown)."""
    with _worker.lock:
        if _worker.pid != os.getpid():
            return
        if _worker.keeper is not None:
            _worker.keeper.stop()
        if _worker.root is not None:
            _worker.root.close()
        _worker.root = _worker.keeper = None

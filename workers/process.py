"""Per-worker-process resources: the database engine, the adapters (``build_services``) and the lease keeper.

Created lazily on first use and keyed by pid, so a prefork child never uses a connection pool or a thread
inherited from its parent (the parent's pool is dropped without closing its sockets, which the parent still
owns). Safe for the threads pool: creation is under a lock, and the objects themselves are thread-safe.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.runtime.services import Services
from ecoalign.settings import Settings, get_settings
from ecoalign.store import repository
from ecoalign.store.db import make_engine, run_in_transaction, session_factory

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


class _Process:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = -1
        self.engine: Engine | None = None
        self.factory: sessionmaker[Session] | None = None
        self.services: Services | None = None
        self.keeper: LeaseKeeper | None = None

    def reset_if_forked(self) -> None:
        """Drop what a forked child inherited (called with the lock held)."""
        if self.pid == os.getpid():
            return
        if self.engine is not None:
            self.engine.dispose(close=False)  # the sockets belong to the parent
        self.engine = self.factory = self.services = self.keeper = None
        self.pid = os.getpid()


_state = _Process()
_settings_override: Settings | None = None


def use(
    *,
    settings_: Settings | None = None,
    factory: sessionmaker[Session] | None = None,
    services_: Services | None = None,
) -> None:
    """Inject this process's settings, session factory or adapters (in-process tests and benchmarks)."""
    global _settings_override
    with _state.lock:
        _state.reset_if_forked()
        if settings_ is not None:
            _settings_override = settings_
        if factory is not None:
            _state.factory = factory
        if services_ is not None:
            _state.services = services_
        _state.keeper = None


def reset() -> None:
    """Forget injected and lazily built resources (tests); injected objects are left to their owners."""
    global _settings_override
    with _state.lock:
        if _state.keeper is not None:
            _state.keeper.stop()
        if _state.engine is not None:  # built here, not injected
            _state.engine.dispose()
        _settings_override = None
        _state.engine = _state.factory = _state.services = _state.keeper = None


def settings() -> Settings:
    return _settings_override or get_settings()


def db() -> sessionmaker[Session]:
    """This process's session factory (one engine per process; one session per task transaction)."""
    with _state.lock:
        _state.reset_if_forked()
        if _state.factory is None:
            s = settings()
            # Behind PgBouncer (transaction mode) a server connection changes between transactions, so
            # psycopg's automatic server-side prepared statements would be missing on the next one.
            connect_args = {"prepare_threshold": None} if s.db_pgbouncer else {}
            _state.engine = make_engine(
                s.db_url,
                pool_size=s.db_pool_size,
                max_overflow=s.db_max_overflow,
                pool_pre_ping=s.db_pre_ping,
                connect_args=connect_args,
            )
            _state.factory = session_factory(_state.engine)
        return _state.factory


def services() -> Services:
    """This process's chat model and evaluators, built once (loading the offline evaluators takes seconds)."""
    with _state.lock:
        _state.reset_if_forked()
        if _state.services is None:
            from ecoalign.runtime.factory import build_services

            _state.services = build_services(settings())
        return _state.services


def keeper() -> LeaseKeeper:
    factory = db()
    with _state.lock:
        if _state.keeper is None:
            _state.keeper = LeaseKeeper(factory, settings().node_lease_s)
        return _state.keeper


def shutdown() -> None:
    """Release this process's resources (worker shutdown)."""
    with _state.lock:
        if _state.pid != os.getpid():
            return
        if _state.keeper is not None:
            _state.keeper.stop()
        if _state.services is not None:
            _state.services.close()
        if _state.engine is not None:
            _state.engine.dispose()
        _state.engine = _state.factory = _state.services = _state.keeper = None

"""The in-process driver: runs a job's nodes on a thread pool against the store, no broker needed.

It is the embedded default (SQLite file, offline models) and the reference for the Celery runtime: both run the
same controller and node work; only the transport between them differs. ``InProcessJobs`` runs jobs in the
background of a long-lived process (the API with ``ECOALIGN_CHAT_MODE=inprocess``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from sqlalchemy.orm import Session, sessionmaker

from ecoalign.engine.graph import NodeKind
from ecoalign.runtime import controller, nodework, tracing
from ecoalign.runtime.commit import commit
from ecoalign.runtime.services import Services
from ecoalign.settings import Settings
from ecoalign.telemetry import JobSpans

log = logging.getLogger(__name__)


class StuckJob(RuntimeError):
    """The engine waits for nodes that nothing is running (a bug, never a normal end)."""


def run_node(
    factory: sessionmaker[Session], services: Services, job_id: str, node_id: str, *, lease_s: float = 120
) -> None:
    """Execute one node end to end: claim, work, commit (the in-process driver's unit of work)."""
    claimed = nodework.claim(factory, job_id, node_id, lease_s=lease_s)
    if claimed is None:
        return
    if claimed.graph[node_id].kind is NodeKind.ROOT:
        commit(factory, nodework.scan_root(services, claimed))
        return
    commit(factory, nodework.work_node(factory, services, claimed, node_id))


def run_job(
    factory: sessionmaker[Session],
    services: Services,
    job_id: str,
    *,
    workers: int = 4,
    lease_s: float = 300,
    spans: JobSpans | None = None,
) -> str:
    """Drive the job to a terminal state; returns that status. Node failures end up in the trace, not here.
    ``spans``: where the finished job's spans go (OTLP export; None: off)."""
    submitted: set[str] = set()
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ecoalign-node") as pool:
        running: dict[Future[None], str] = {}
        while True:
            decision = controller.advance(factory, job_id)
            if decision.finished:
                if decision.ended:
                    tracing.export_job(factory, spans, job_id)
                return decision.status
            for node_id in decision.run:
                if node_id not in submitted:
                    submitted.add(node_id)
                    running[pool.submit(run_node, factory, services, job_id, node_id, lease_s=lease_s)] = node_id
            if not running:
                raise StuckJob(f"job {job_id}: the engine waits but no node is running")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                node_id = running.pop(future)
                try:
                    future.result()
                except Exception as exc:  # an evaluator bug or a store error: fail the node, keep the job going
                    commit(factory, nodework.NodeFailure(job_id, node_id, None, f"{type(exc).__name__}: {exc}"))


class InProcessJobs:
    """Jobs run in the background of this process, on one thread pool, each at most once at a time.

    ``services()`` gives the process's adapters (its root's), asked for on the first ``start``: loading the offline
    evaluators takes seconds, and a model that cannot be reached is the caller's error then (``ServiceError``).
    The adapters belong to the root, which closes them; ``close`` stops the pool.
    """

    def __init__(
        self,
        settings: Settings,
        factory: sessionmaker[Session],
        services: Callable[[], Services],
        spans: Callable[[], JobSpans | None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.factory = factory
        self._services = services
        self._spans = spans
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._running: set[str] = set()

    def start(self, job_id: str) -> None:
        """Run the job here unless this process already runs it (a retry with the same idempotency key)."""
        services = self._services()
        pool = self._thread_pool()
        with self._lock:
            if job_id in self._running:
                return
            self._running.add(job_id)
        pool.submit(self._run, services, job_id)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _thread_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max(2, self.settings.model_concurrency // 2), thread_name_prefix="ecoalign-chat"
                )
            return self._pool

    def _run(self, services: Services, job_id: str) -> None:
        try:
            run_job(self.factory, services, job_id, lease_s=self.settings.node_lease_s, spans=self._spans())
        except Exception:
            log.exception("in-process job %s did not finish; the reaper or a retry will pick it up", job_id)
        finally:
            with self._lock:
                self._running.discard(job_id)

"""Run a job and wait for its outcome, with a deadline: one way for chat completions, batch chat lines and align.

The wait reads the job row until its status is terminal (``JobStatus``), polling at most every ``poll_s``
(starting at 50 ms, doubling), and returns a ``JobOutcome``. A job that ended without an answer, or did not end
in time, is a domain error (``JobFailed``, ``JobCancelled``, ``JobTimedOut``, all ``JobError``) that
``JobOutcome.answer()`` raises and ``JobOutcome.error()`` returns; the API maps them to HTTP in api/errors.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar

from sqlalchemy.orm import Session, sessionmaker

from ecoalign.runtime.inprocess import StuckJob, run_job
from ecoalign.runtime.services import Services
from ecoalign.store import repository
from ecoalign.store.db import run_in_transaction
from ecoalign.store.models import Job, JobStatus
from ecoalign.telemetry import JobSpans

log = logging.getLogger(__name__)

FIRST_POLL_S = 0.05


class JobError(Exception):
    """A job that gave no answer; ``code`` is stable (an API error body, a batch error line)."""

    code: ClassVar[str] = "job_error"

    def __init__(self, job_id: str, detail: str) -> None:
        super().__init__(detail)
        self.job_id = job_id
        self.detail = detail


class JobFailed(JobError):
    code = "job_failed"


class JobCancelled(JobError):
    code = "job_cancelled"


class JobTimedOut(JobError):
    """The job did not end within the wait; it goes on (its row says how far it got)."""

    code = "timeout"

    def __init__(self, job_id: str, waited_s: float) -> None:
        super().__init__(job_id, f"job {job_id} did not finish within {waited_s:g} s")
        self.waited_s = waited_s


@dataclass(frozen=True)
class JobOutcome:
    """How a wait ended: the job's row once terminal, or ``job`` None when the deadline came first."""

    job_id: str
    job: Job | None
    waited_s: float

    @property
    def status(self) -> JobStatus | None:
        return JobStatus(self.job.status) if self.job is not None else None

    @property
    def succeeded(self) -> bool:
        return self.status is JobStatus.SUCCEEDED

    def error(self) -> JobError | None:
        """The domain error of a job that gave no answer (None if it succeeded)."""
        job = self.job
        if job is None:
            return JobTimedOut(self.job_id, self.waited_s)
        if self.status is JobStatus.CANCELLED:
            return JobCancelled(job.id, f"job {job.id} was cancelled: {job.failure_reason or 'cancelled'}")
        if self.status is JobStatus.FAILED:
            return JobFailed(job.id, f"job {job.id} failed: {job.failure_reason or 'unknown reason'}")
        return None

    def answer(self) -> Job:
        """The succeeded job; raises its ``JobError`` otherwise."""
        error = self.error()
        if error is not None:
            raise error
        assert self.job is not None  # noqa: S101 -- type narrowing of an invariant, not an input check
        return self.job


def terminal_job(session: Session, job_id: str) -> Job | None:
    """The job's row if it is in a terminal state, else None."""
    job = repository.get_job(session, job_id)
    return job if job is not None and JobStatus(job.status).terminal else None


class _Deadline:
    """The poll schedule of one wait: first after 50 ms (or ``poll_s`` if shorter), doubling up to ``poll_s``."""

    def __init__(self, timeout_s: float, poll_s: float) -> None:
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.ends = time.monotonic() + timeout_s
        self.delay = min(poll_s, FIRST_POLL_S)

    def next_delay(self) -> float | None:
        """Seconds to sleep before the next read; None once the deadline has passed."""
        left = self.ends - time.monotonic()
        if left <= 0:
            return None
        delay = min(self.delay, left)
        self.delay = min(self.delay * 2, self.poll_s)
        return delay


def wait_for_outcome(
    factory: sessionmaker[Session], job_id: str, *, timeout_s: float, poll_s: float = 0.2
) -> JobOutcome:
    """Block until the job is terminal or ``timeout_s`` has passed (worker threads, the CLI)."""
    deadline = _Deadline(timeout_s, poll_s)
    while True:
        job = run_in_transaction(factory, lambda s: terminal_job(s, job_id))
        if job is not None:
            return JobOutcome(job_id, job, timeout_s)
        delay = deadline.next_delay()
        if delay is None:
            return JobOutcome(job_id, None, timeout_s)
        time.sleep(delay)


async def await_outcome(
    read_terminal: Callable[[], Awaitable[Job | None]],
    job_id: str,
    *,
    timeout_s: float,
    poll_s: float,
    sleep: Callable[[float], Awaitable[None]],
) -> JobOutcome:
    """``wait_for_outcome`` for an event loop: ``read_terminal()`` runs ``terminal_job`` off the loop, ``sleep`` is
    the loop's (``asyncio.sleep``), so a waiting request holds no thread."""
    deadline = _Deadline(timeout_s, poll_s)
    while True:
        job = await read_terminal()
        if job is not None:
            return JobOutcome(job_id, job, timeout_s)
        delay = deadline.next_delay()
        if delay is None:
            return JobOutcome(job_id, None, timeout_s)
        await sleep(delay)


def run_and_wait(
    factory: sessionmaker[Session],
    services: Services,
    job_id: str,
    *,
    timeout_s: float,
    workers: int = 4,
    lease_s: float = 300,
    poll_s: float = 0.2,
    spans: JobSpans | None = None,
) -> JobOutcome:
    """Run the job in this process, then wait (up to ``timeout_s``) for its terminal state.

    If a node is held elsewhere (a redelivered batch line whose earlier attempt still leases it), this process
    cannot finish the job: it waits for whoever holds that node (the workers' reaper hands a dead one over).
    """
    try:
        run_job(factory, services, job_id, workers=workers, lease_s=lease_s, spans=spans)
    except StuckJob:
        log.info("job %s waits on a node held elsewhere; waiting for it", job_id)
    return wait_for_outcome(factory, job_id, timeout_s=timeout_s, poll_s=poll_s)

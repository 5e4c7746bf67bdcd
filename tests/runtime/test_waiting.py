"""``runtime.waiting``: the outcome of a job as a typed value, the deadline, and run-and-wait in this process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.content import Request
from ecoalign.engine.policy import Policy
from ecoalign.runtime import controller
from ecoalign.runtime.waiting import (
    JobCancelled,
    JobFailed,
    JobOutcome,
    JobTimedOut,
    await_outcome,
    run_and_wait,
    terminal_job,
    wait_for_outcome,
)
from ecoalign.store import repository
from ecoalign.store.db import run_in_transaction
from ecoalign.store.models import Job, JobStatus
from ecoalign.testing.emulator import EmulatorServer
from tests.runtime.test_inprocess import services_for


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(replies=["Here is a helpful and safe answer."]) as em:
        yield em


def _submit(db: sessionmaker[Session], text: str = "Suggest three names for a garden cafe.") -> str:
    job_id, _ = run_in_transaction(db, lambda s: controller.submit(s, Request(text), Policy(budget=3000)))
    return job_id


def test_a_job_that_does_not_end_times_out_at_the_deadline_and_goes_on(db: sessionmaker[Session]) -> None:
    job_id = _submit(db)
    started = time.monotonic()
    outcome = wait_for_outcome(db, job_id, timeout_s=0.3, poll_s=0.05)
    assert 0.3 <= time.monotonic() - started < 2.0
    assert outcome.job is None
    assert not outcome.succeeded
    error = outcome.error()
    assert isinstance(error, JobTimedOut)
    assert error.job_id == job_id
    assert error.code == "timeout"
    with pytest.raises(JobTimedOut, match=r"did not finish within 0\.3 s"):
        outcome.answer()
    job = run_in_transaction(db, lambda s: repository.get_job(s, job_id))
    assert job is not None
    assert job.status == JobStatus.QUEUED.value


def test_failed_and_cancelled_jobs_are_their_own_domain_errors(db: sessionmaker[Session]) -> None:
    failed, cancelled = _submit(db), _submit(db, "Tell me about owls.")
    controller.fail_job(db, failed, "model server gone")
    run_in_transaction(db, lambda s: repository.cancel_job(s, cancelled, reason="cancelled by client"))
    failure = wait_for_outcome(db, failed, timeout_s=5).error()
    assert isinstance(failure, JobFailed)
    assert failure.code == "job_failed"
    assert failure.detail == f"job {failed} failed: model server gone"
    cancel = wait_for_outcome(db, cancelled, timeout_s=5).error()
    assert isinstance(cancel, JobCancelled)
    assert cancel.code == "job_cancelled"
    assert cancel.detail == f"job {cancelled} was cancelled: cancelled by client"


def test_run_and_wait_returns_the_answered_job(db: sessionmaker[Session], emulator: EmulatorServer) -> None:
    services = services_for(emulator.base_url)
    try:
        outcome = run_and_wait(db, services, _submit(db), timeout_s=0)
    finally:
        services.close()
    assert outcome.succeeded
    assert outcome.error() is None
    assert outcome.answer().decision in ("answered", "refused")


def test_the_async_wait_sees_the_job_end_while_it_waits(db: sessionmaker[Session]) -> None:
    job_id = _submit(db)

    async def scenario() -> JobOutcome:
        async def read() -> Job | None:
            return run_in_transaction(db, lambda s: terminal_job(s, job_id))

        async def end_later() -> None:
            await asyncio.sleep(0.2)
            controller.fail_job(db, job_id, "ended while waited on")

        ender = asyncio.ensure_future(end_later())
        outcome = await await_outcome(read, job_id, timeout_s=10, poll_s=0.05, sleep=asyncio.sleep)
        await ender
        return outcome

    outcome = asyncio.run(scenario())
    assert isinstance(outcome.error(), JobFailed)

"""A batch through the service with a recording sender, on Postgres and SQLite: the messages the start and the
reaper send (by task name, with each line's place), and what running them gives."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.batches.output import finalize_batch
from ecoalign.batches.recovery import recover
from ecoalign.batches.run import run_line
from ecoalign.batches.runtime import BatchRuntime
from ecoalign.batches.start import begin_batch
from ecoalign.evaluators.heuristic import HeuristicScanner
from ecoalign.moderation.factory import ModerationEngine
from ecoalign.queue.names import BATCH_MODERATION_LINE_TASK, BATCH_START_TASK
from ecoalign.settings import Settings
from ecoalign.store.base import utcnow
from ecoalign.store.batch_models import Batch, BatchStatus, StoredFile
from ecoalign.store.db import session_scope


class Broker:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def __call__(self, task: str, *args: Any) -> bool:
        self.sent.append((task, *args))
        return True


@pytest.fixture
def broker() -> Broker:
    return Broker()


@pytest.fixture
def rt(db: sessionmaker[Session], broker: Broker) -> Iterator[BatchRuntime]:
    settings = Settings(evaluator="heuristic", dispatch_grace_s=60.0)  # stalled: 60 s, or the task limit + 5 s

    def no_model() -> Any:
        raise AssertionError("moderation lines need no chat model")

    engine = ModerationEngine(settings, HeuristicScanner)
    yield BatchRuntime(db, settings, engine, no_model, send=broker)
    engine.close()


def line(custom_id: str, text: str) -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/moderations", "body": {"input": text}})


def age(db: sessionmaker[Session], batch_id: str, seconds: float) -> None:
    """As if the batch had not changed for ``seconds``."""
    with session_scope(db) as s:
        s.execute(update(Batch).where(Batch.id == batch_id).values(updated_at=utcnow() - timedelta(seconds=seconds)))


def new_batch(db: sessionmaker[Session], lines: list[str]) -> str:
    content = ("\n".join(lines) + "\n").encode()
    now = utcnow()
    with session_scope(db) as s:
        source = StoredFile(purpose="batch", filename="in.jsonl", bytes=len(content), content=content)
        s.add(source)
        s.flush()
        batch = Batch(input_file_id=source.id, endpoint="/v1/moderations", status=BatchStatus.VALIDATING.value,
                      created_at=now, updated_at=now, expires_at=now + timedelta(hours=24))
        s.add(batch)
        s.flush()
        return batch.id


def batch_row(db: sessionmaker[Session], batch_id: str) -> Batch:
    with session_scope(db) as s:
        found = s.get(Batch, batch_id)
        assert found is not None
        return found


def deliver(rt: BatchRuntime, message: tuple[Any, ...]) -> str:
    task, batch_id, item_id, offset, length = message
    assert task == BATCH_MODERATION_LINE_TASK
    return run_line(rt, batch_id, item_id, offset, length)


def test_the_start_sends_one_message_per_usable_line_by_name(
    rt: BatchRuntime, broker: Broker, db: sessionmaker[Session]
) -> None:
    batch_id = new_batch(db, [line("a", "hello"), "not json", line("b", "steal a car")])
    assert begin_batch(rt, batch_id) == 2
    assert [m[:2] for m in broker.sent] == [(BATCH_MODERATION_LINE_TASK, batch_id)] * 2
    assert [deliver(rt, m) for m in broker.sent] == ["completed", "completed"]
    done = batch_row(db, batch_id)
    assert done.status == "completed"
    assert (done.requests_total, done.requests_completed, done.requests_failed) == (
        3, 2, 1)
    assert done.output_file_id
    assert done.error_file_id


def test_the_reaper_restarts_a_lost_start_and_resends_lost_lines(
    rt: BatchRuntime, broker: Broker, db: sessionmaker[Session]
) -> None:
    lost_start = new_batch(db, [line("a", "hello")])
    stalled = new_batch(db, [line("a", "hello"), line("b", "bye")])
    begin_batch(rt, stalled)
    first = broker.sent[0]
    broker.sent.clear()  # the line messages were lost
    recent = new_batch(db, [line("a", "hello")])  # within the grace period: left alone
    assert recover(rt) == {"restarted": 0, "resent": 0, "finalized": 0, "expired": 0}
    assert broker.sent == []
    age(db, lost_start, 120)
    age(db, stalled, 3600)
    counts = recover(rt)
    assert counts == {"restarted": 1, "resent": 2, "finalized": 0, "expired": 0}
    assert (BATCH_START_TASK, lost_start) in broker.sent
    assert (BATCH_START_TASK, recent) not in broker.sent
    assert first in broker.sent  # the same line at the same place
    for message in [m for m in broker.sent if m[0] == BATCH_MODERATION_LINE_TASK]:
        deliver(rt, message)
    assert batch_row(db, stalled).status == "completed"
    assert finalize_batch(rt, stalled) is None  # done once

"""``ecoalign.batches.sending``: lines go out by task name through the runtime's sender."""

from __future__ import annotations

from typing import Any, cast

from ecoalign.batches.files import LineRef
from ecoalign.batches.runtime import BatchRuntime
from ecoalign.batches.sending import send_lines, send_start
from ecoalign.queue.names import BATCH_CHAT_LINE_TASK, BATCH_MODERATION_LINE_TASK, BATCH_START_TASK
from ecoalign.settings import Settings


class Broker:
    """A sender that records messages and refuses those after the first ``accept``."""

    def __init__(self, accept: int = 1 << 30) -> None:
        self.accept = accept
        self.sent: list[tuple[Any, ...]] = []

    def __call__(self, task: str, *args: Any) -> bool:
        if len(self.sent) >= self.accept:
            return False
        self.sent.append((task, *args))
        return True


def runtime(broker: Broker) -> BatchRuntime:
    nothing = cast(Any, None)  # sending touches neither the database nor the engines
    return BatchRuntime(nothing, Settings(), nothing, nothing, send=broker)


REFS = [LineRef(1, 0, 10), LineRef(2, 10, 12), LineRef(3, 22, 9)]


def test_moderation_and_chat_lines_go_to_their_tasks_with_their_places() -> None:
    broker = Broker()
    assert send_lines(runtime(broker), "batch_1", "/v1/moderations", REFS[:2]) == 2
    assert send_lines(runtime(broker), "batch_2", "/v1/chat/completions", REFS[2:]) == 1
    send_start(runtime(broker), "batch_3")
    assert broker.sent == [(BATCH_MODERATION_LINE_TASK, "batch_1", 1, 0, 10),
                           (BATCH_MODERATION_LINE_TASK, "batch_1", 2, 10, 12),
                           (BATCH_CHAT_LINE_TASK, "batch_2", 3, 22, 9),
                           (BATCH_START_TASK, "batch_3")]


def test_sending_stops_at_the_first_refused_message() -> None:
    broker = Broker(accept=1)
    assert send_lines(runtime(broker), "batch_1", "/v1/moderations", REFS) == 1  # the reaper re-sends the rest
    assert len(broker.sent) == 1

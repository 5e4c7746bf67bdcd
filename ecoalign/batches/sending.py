"""Messages to the workers, by task name through the runtime's sender (``ecoalign.queue.dispatch.enqueue`` by
default): no task object is imported, so the service does not depend on the worker's task modules."""

from __future__ import annotations

import logging

from ecoalign.batches.chat_line import CHAT
from ecoalign.batches.files import LineRef
from ecoalign.batches.runtime import BatchRuntime
from ecoalign.queue.names import BATCH_CHAT_LINE_TASK, BATCH_MODERATION_LINE_TASK, BATCH_START_TASK

log = logging.getLogger(__name__)


def line_task(endpoint: str) -> str:
    """Chat lines run on the model queue (the job waits on the model), moderation lines on the score queue."""
    return BATCH_CHAT_LINE_TASK if endpoint == CHAT else BATCH_MODERATION_LINE_TASK


def send_lines(rt: BatchRuntime, batch_id: str, endpoint: str, refs: list[LineRef]) -> int:
    """One message per line; stops at the first one the broker refuses (the reaper re-sends the rest). How many
    were sent."""
    task = line_task(endpoint)
    for sent, ref in enumerate(refs):
        if rt.send(task, batch_id, ref.item_id, ref.offset, ref.length) is False:
            log.warning("batch %s: %d of %d lines not sent; the batch reaper will re-send them",
                        batch_id, len(refs) - sent, len(refs))
            return sent
    return len(refs)


def send_start(rt: BatchRuntime, batch_id: str) -> object:
    return rt.send(BATCH_START_TASK, batch_id)

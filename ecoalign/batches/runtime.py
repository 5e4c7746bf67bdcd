"""What batch work needs, as one explicit object: the worker builds it over its process's composition root
(``ecoalign.runtime.root``) and hands it to every service function (a test builds its own)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ecoalign.moderation.factory import ModerationEngine
from ecoalign.moderation.inputs import ParseOptions
from ecoalign.runtime.requests import max_request_bytes
from ecoalign.settings import Settings

NO_BASE_DIR = Path("/nonexistent/ecoalign-batch")  # the simple form's file paths are never read on a server

# (task name, *args) -> sent; False (or raising) if the broker did not take the message.
Sender = Callable[..., object]


def enqueue_by_name(task: str, *args: Any) -> bool:
    """The default sender: ``ecoalign.queue.dispatch.enqueue`` (imported on first send: reading a batch needs no
    Celery)."""
    from ecoalign.queue.dispatch import enqueue

    return enqueue(task, *args)


@dataclass
class BatchRuntime:
    """Database, settings, adapters and the message sender for batch work. It owns none of them: the root that
    built them closes them."""

    factory: sessionmaker[Session]
    settings: Settings
    engine: ModerationEngine
    services: Callable[[], Any]  # the chat model and evaluators (chat lines), built on first use
    remote_fetch: Callable[[str], Any] | None = None
    chat_workers: int = 4
    send: Sender = enqueue_by_name

    def options(self) -> ParseOptions:
        """How lines are parsed on a server: the request caps of the settings, and never a local path. A line is
        one request body, so it has the HTTP API's body cap (a longer line fails alone as ``line_too_large``)."""
        fetch = self.remote_fetch
        return ParseOptions.from_settings(NO_BASE_DIR, settings=self.settings, allow_remote=fetch is not None,
                                          remote_fetch=fetch, max_line_bytes=max_request_bytes(self.settings))

"""What every handler needs from the running app, in one typed object (``app.state.ctx``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.content import Image
from ecoalign.quotas import RequestRateLimiter
from ecoalign.runtime.inprocess import InProcessJobs
from ecoalign.runtime.root import Root
from ecoalign.settings import Settings

# job_id → start the job (enqueue its controller task). Returns False (or raises) if the broker did not take it.
Dispatcher = Callable[[str], object]


@dataclass
class AppContext:
    """``root`` is the process's composition root (models, scanner, moderation engine); ``engine`` and ``sessions``
    are its database, kept here because nearly every handler needs them."""

    settings: Settings
    root: Root
    engine: Engine
    sessions: sessionmaker[Session]
    dispatcher: Dispatcher
    remote_fetch: Callable[[str], Image] | None
    dispatch_deferred: Callable[[], None]  # counts jobs left for the reaper to start
    inprocess_jobs: InProcessJobs  # jobs this process runs itself (ECOALIGN_CHAT_MODE=inprocess)
    rate_limiter: RequestRateLimiter | None = None  # tenants' requests per second (None: not counted)


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def celery_dispatcher(job_id: str) -> bool:
    """The default dispatcher: the workers' controller task (imported lazily: the API may start without it)."""
    from ecoalign.queue.dispatch import enqueue_advance

    return enqueue_advance(job_id)

"""The FastAPI application factory: ``uvicorn --factory api.app:create_app`` or ``ecoalign serve``.

The API is thin on purpose: it validates, writes the job row (the database is the source of truth) and hands
the job id to the dispatcher; Celery workers do everything else. The dispatcher is injectable so tests of pure
HTTP behaviour can record dispatches instead of needing a worker; the default is the real Celery one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api import errors
from api.auth import RATE_LIMITED
from api.context import AppContext, Dispatcher, celery_dispatcher
from api.limits import BodyLimitMiddleware, max_body_bytes, upload_limits
from api.metrics import HttpMetricsMiddleware, build_registry, celery_queue_names
from api.routes import (
    audits,  # issue 13: audits of stored and imported traces
    batches,
    chat,
    files,
    health,
    jobs,
    moderations,
    policies,  # issue 14: tenant moderation policies
    reviews,  # issue 14: the human review queue
    traces,  # issue 13: the trace query
    ui,  # issue 13: the trace viewer
    webhooks,  # issue 17
)
from ecoalign import __version__
from ecoalign.quotas import RequestRateLimiter
from ecoalign.runtime.inprocess import InProcessJobs
from ecoalign.runtime.root import Root
from ecoalign.settings import Settings, get_settings

DESCRIPTION = """\
Inference-time alignment of vision-language models as an economically rational search (EcoAlign).

Submit a chat request with a token budget; workers explore a thought graph, prune every path whose weakest
step is unsafe, and stop when more search is worth less than it costs. Every call needs
`Authorization: Bearer <API key>`; every job belongs to the key's tenant and is invisible to other tenants.
"""


def create_app(
    settings: Settings | None = None,
    dispatcher: Dispatcher | None = None,
    *,
    queues: Callable[[], Sequence[str]] | None = None,
    metrics_window_s: float = 300.0,
    root: Root | None = None,
) -> FastAPI:
    """Build the app. ``dispatcher(job_id)`` starts a job (default: the workers' Celery controller task);
    ``queues()`` names the Celery queues whose depth ``/metrics`` reports (default: those of ``ecoalign.queue.app``).
    ``root`` is the process's composition root (default: one built here from ``settings`` and closed at shutdown;
    a root passed in is its caller's to close).
    """
    if root is None:
        settings = settings or get_settings()
        own_root: Root | None = Root(settings)
        root = own_root
    else:
        settings, own_root = root.settings, None
    engine = root.database()
    sessions = root.sessions()
    registry, http_metrics = build_registry(
        sessions, settings.broker_url, queues or celery_queue_names, window_s=metrics_window_s
    )
    ctx = AppContext(
        settings=settings,
        root=root,
        engine=engine,
        sessions=sessions,
        dispatcher=dispatcher or celery_dispatcher,
        remote_fetch=root.remote_fetch(),
        dispatch_deferred=http_metrics.dispatch_deferred.inc,
        inprocess_jobs=InProcessJobs(settings, sessions, root.services, spans=root.job_spans),
        rate_limiter=RequestRateLimiter(settings.rate_limit_storage_url or settings.broker_url),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        ctx.inprocess_jobs.close()
        if own_root is not None:
            own_root.close()
        else:
            engine.dispose()

    # The docs pages' JavaScript and CSS come from an installed package (fastapi-offline), not a CDN: /docs and
    # /redoc work on a machine without internet.
    app = FastAPIOffline(
        title="ecoalign",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
    )
    app.state.ctx = ctx
    app.state.metrics_registry = registry
    errors.install(app)
    app.include_router(jobs.router, responses=RATE_LIMITED)
    for product in (moderations, files, batches, chat):  # the OpenAI-compatible surface
        app.include_router(product.router, responses=RATE_LIMITED)
    app.include_router(traces.router, responses=RATE_LIMITED)  # the trace query (issue 13)
    app.include_router(audits.router, responses=RATE_LIMITED)  # audits of traces (issue 13)
    app.include_router(policies.router, responses=RATE_LIMITED)  # tenant moderation policies, versioned (issue 14)
    app.include_router(reviews.router, responses=RATE_LIMITED)  # the human review queue and its page (issue 14)
    app.include_router(health.router)
    app.include_router(webhooks.router, responses=RATE_LIMITED)
    app.include_router(ui.router)  # the trace viewer (/ui/jobs/{id})
    # Added last = outermost: the metrics middleware also counts the 413s of the body limit.
    app.add_middleware(BodyLimitMiddleware, limit=max_body_bytes(settings), uploads=upload_limits(settings))
    app.add_middleware(HttpMetricsMiddleware, metrics=http_metrics)
    return app

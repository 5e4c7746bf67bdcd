"""Probes and metrics, unauthenticated by design: orchestrators and Prometheus call them without keys.

``/healthz`` says only that the process answers (restart me if not); ``/readyz`` says whether it can do work
(database and broker reachable; take me out of the load balancer if not). Keep ``/metrics`` on an internal
network: it reveals volumes, not tenant data.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.context import get_ctx
from api.schemas import Health, Readiness
from ecoalign.store.db import ping

router = APIRouter(tags=["operations"])

PROBE_TIMEOUT_S = 3.0


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers", operation_id="healthz")
def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: the database and the broker are reachable",
    operation_id="readyz",
    responses={503: {"model": Readiness, "description": "a dependency is down; `checks` says which"}},
)
def readyz(request: Request) -> Any:
    ctx = get_ctx(request)
    checks = {"database": _check_database(ctx.engine), "broker": check_broker(ctx.settings.broker_url)}
    ok = all(v == "ok" for v in checks.values())
    body = Readiness(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(status_code=200 if ok else 503, content=body.model_dump())


def _check_database(engine: Any) -> str:
    try:
        ping(engine)
    except Exception as exc:
        return f"error: {_one_line(exc)}"
    return "ok"


def check_broker(url: str) -> str:
    """Ping the broker: Redis directly (fast, precise), any other transport through kombu."""
    try:
        if url.startswith(("redis://", "rediss://", "unix://")):
            import redis

            client = redis.Redis.from_url(url, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S)
            try:
                client.ping()
            finally:
                client.close()
        else:
            from kombu import Connection

            with Connection(url, connect_timeout=PROBE_TIMEOUT_S) as conn:
                conn.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT_S)
    except Exception as exc:
        return f"error: {_one_line(exc)}"
    return "ok"


def _one_line(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {' '.join(str(exc).split())}"[:300]


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    operation_id="metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)

"""API test fixtures: the app on the session's real Postgres (emptied per test), tenants with keys, small limits.

The dispatcher records job ids instead of calling Celery: these tests are about HTTP behaviour. The broker is a
real Redis: a private ``redis-server`` started for the session when the binary is installed (other test suites
restart the shared one on purpose, which would make ``/readyz`` flap here), else the machine's shared one.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from ecoalign.settings import Settings
from ecoalign.store import tenants
from ecoalign.store.db import session_factory, session_scope

SHARED_REDIS_URL = os.environ.get("ECOALIGN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
MAX_IMAGE_BYTES = 64 * 1024


@dataclass
class RecordingDispatcher:
    """Stands in for the Celery dispatcher: remembers what it was asked to start, or fails on demand
    (``fail``: raise it; ``refuse``: return False, as ``ecoalign.queue.dispatch.enqueue_advance`` does when the broker
    is down)."""

    calls: list[str] = field(default_factory=list)
    fail: Exception | None = None
    refuse: bool = False

    def __call__(self, job_id: str) -> bool:
        if self.fail is not None:
            raise self.fail
        if self.refuse:
            return False
        self.calls.append(job_id)
        return True


@dataclass(frozen=True)
class TenantKey:
    tenant_id: str
    name: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def private_redis() -> Iterator[str | None]:
    """A throw-away ``redis-server`` on a free port (its URL), or None if the binary is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    with private_redis() as url:
        yield url or SHARED_REDIS_URL


def make_settings(db_url: str, broker_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "db_url": db_url,
        "broker_url": broker_url,
        "max_image_bytes": MAX_IMAGE_BYTES,
        "max_images": 2,
        "max_text_chars": 2000,
        "allow_remote_images": False,
    }
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture
def api_settings(pg_url: str, broker_url: str) -> Settings:
    return make_settings(pg_url, broker_url)


@pytest.fixture
def dispatcher() -> RecordingDispatcher:
    return RecordingDispatcher()


@pytest.fixture
def app(pg_clean_engine: Engine, api_settings: Settings, dispatcher: RecordingDispatcher) -> FastAPI:
    return create_app(api_settings, dispatcher=dispatcher, queues=lambda: ["celery"])


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def sessions(pg_clean_engine: Engine) -> sessionmaker[Session]:
    return session_factory(pg_clean_engine)


@pytest.fixture
def make_tenant(sessions: sessionmaker[Session]) -> Callable[..., TenantKey]:
    def make(name: str | None = None, *, total: int | None = None, daily: int | None = None) -> TenantKey:
        name = name or f"tenant-{uuid.uuid4().hex[:8]}"
        with session_scope(sessions) as s:
            tenant, _, secret = tenants.create_tenant_with_key(
                s, name, token_budget_total=total, token_budget_daily=daily
            )
            return TenantKey(tenant.id, name, secret)

    return make


@pytest.fixture
def tenant_a(make_tenant: Callable[..., TenantKey]) -> TenantKey:
    return make_tenant("tenant-a")


@pytest.fixture
def tenant_b(make_tenant: Callable[..., TenantKey]) -> TenantKey:
    return make_tenant("tenant-b")


def png_data_url(size: int = 8, *, noise_bytes: int = 0) -> str:
    """A real PNG as a data URL; ``noise_bytes`` of random pixels make it (roughly) that large."""
    if noise_bytes:
        side = int((noise_bytes / 3) ** 0.5) + 1
        img = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    else:
        img = Image.new("RGB", (size, size), (200, 30, 30))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def job_body(text: str = "How do I bake bread?", *, budget: int = 4000, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
        "policy": {"budget": budget},
    }
    body.update(extra)
    return body

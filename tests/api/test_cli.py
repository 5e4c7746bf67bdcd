"""The admin commands and ``ecoalign serve``, run as real subprocesses against the session's Postgres."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.store import tenants
from ecoalign.store.db import session_scope
from tests.api.conftest import free_port, private_redis

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "ecoalign"
# The installed console script when there is one; else the same entry point (not ``-m ecoalign.cli``, which would
# load the module twice, as ``__main__`` and as ``ecoalign.cli``).
ENTRY = "import sys; from ecoalign.cli import main; sys.exit(main())"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-c", ENTRY]


def ecoalign(pg_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ECOALIGN_DB_URL": pg_url}
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def test_tenants_create_prints_the_key_on_its_last_line(
    pg_clean_engine: Engine, pg_url: str, sessions: sessionmaker[Session]
) -> None:
    done = ecoalign(pg_url, "tenants", "create", "acme", "--budget-total", "100000", "--budget-daily", "5000")
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1]
    assert key.startswith("eco_")
    assert " " not in key
    with session_scope(sessions) as s:
        hit = tenants.authenticate(s, key)
        assert hit is not None
        _, tenant = hit
        assert tenant.name == "acme"
        assert (tenant.token_budget_total, tenant.token_budget_daily) == (100000, 5000)

    duplicate = ecoalign(pg_url, "tenants", "create", "acme")
    assert duplicate.returncode == 2
    assert "already exists" in duplicate.stderr

    listed = ecoalign(pg_url, "tenants", "list")
    assert listed.returncode == 0
    assert "acme" in listed.stdout
    assert "keys=1" in listed.stdout


def test_keys_create_and_revoke(pg_clean_engine: Engine, pg_url: str, sessions: sessionmaker[Session]) -> None:
    assert ecoalign(pg_url, "tenants", "create", "beta").returncode == 0
    created = ecoalign(pg_url, "keys", "create", "beta", "--name", "ci")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    with session_scope(sessions) as s:
        assert tenants.authenticate(s, key) is not None

    revoked = ecoalign(pg_url, "keys", "revoke", key[:12])
    assert revoked.returncode == 0, revoked.stderr
    with session_scope(sessions) as s:
        assert tenants.authenticate(s, key) is None
    again = ecoalign(pg_url, "keys", "revoke", key[:12])
    assert again.returncode == 2
    assert "no active key" in again.stderr
    missing = ecoalign(pg_url, "keys", "create", "nobody")
    assert missing.returncode == 2
    assert "no tenant" in missing.stderr


def test_tenants_on_an_unmigrated_database_says_how_to_fix_it(empty_database_url: Callable[[str], str]) -> None:
    url = empty_database_url("postgresql")
    done = ecoalign(url, "tenants", "list")
    assert done.returncode == 2
    assert "ecoalign db upgrade" in done.stderr


@pytest.mark.slow
@pytest.mark.redis
def test_serve_runs_the_api_and_enqueues_jobs_on_the_real_broker(
    pg_clean_engine: Engine, pg_url: str, sessions: sessionmaker[Session]
) -> None:
    """``ecoalign serve`` with its default (Celery) dispatcher: a submitted job is a message in the control queue.

    The broker is a private ``redis-server`` started for this test, so no worker elsewhere consumes the message
    and nothing another test keeps in the shared Redis is touched.
    """
    pytest.importorskip("ecoalign.queue.dispatch")
    from ecoalign.queue.names import CONTROL_QUEUE

    with private_redis() as broker_url:
        if broker_url is None:
            pytest.skip("redis-server is not installed")
        _serve_and_submit(pg_url, sessions, broker_url, CONTROL_QUEUE)


def _serve_and_submit(pg_url: str, sessions: sessionmaker[Session], broker_url: str, queue: str) -> None:
    broker = redis.Redis.from_url(broker_url)
    with session_scope(sessions) as s:
        _, _, key = tenants.create_tenant_with_key(s, "served")
    port = free_port()
    env = {**os.environ, "ECOALIGN_DB_URL": pg_url, "ECOALIGN_BROKER_URL": broker_url}
    server = subprocess.Popen(
        [*COMMAND, "serve", "--port", str(port), "--log-level", "warning"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(server, base)
        assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
        assert httpx.get(f"{base}/v1/jobs", timeout=5).status_code == 401
        body = {"messages": [{"role": "user", "content": "hello"}], "policy": {"budget": 100}}
        job = httpx.post(f"{base}/v1/jobs", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert job.status_code == 202, job.text
        messages = broker.lrange(queue, 0, -1)
        assert any(job.json()["id"].encode() in m for m in messages), messages
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        assert f'ecoalign_queue_depth{{queue="{queue}"}} 1.0' in metrics
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        broker.close()


def _wait_until_up(server: subprocess.Popen[str], base: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            health = httpx.get(f"{base}/healthz", timeout=2)
            assert health.json() == {"status": "ok"}
            return
        except httpx.TransportError:
            if server.poll() is not None or time.monotonic() > deadline:
                output = server.stdout.read() if server.stdout else ""
                raise AssertionError(f"server did not start: {output}") from None
            time.sleep(0.2)

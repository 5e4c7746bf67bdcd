"""Settings from ``ECOALIGN_*`` environment variables (pydantic-settings). One object, read once per process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_db_url() -> str:
    return f"sqlite:///{Path.cwd() / 'ecoalign.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ECOALIGN_", extra="ignore")

    db_url: str = Field(default_factory=default_db_url, description="SQLAlchemy URL; SQLite file by default")
    broker_url: str = "redis://127.0.0.1:6379/0"
    model_url: str | None = Field(None, description="OpenAI base URL of the chat model (…/v1); None = offline")
    model: str | None = None
    model_api_key: str | None = None
    judge_url: str | None = None
    judge_model: str | None = None
    judge_api_key: str | None = None
    model_timeout_s: float = 60.0
    model_max_retries: int = 4
    model_concurrency: int = 8
    max_image_bytes: int = 8 * 1024 * 1024
    max_images: int = 8
    max_text_chars: int = 32_000
    allow_remote_images: bool = False
    node_lease_s: int = Field(120, description="a node's lease; renewed while a worker holds it (see docs/deploy.md)")
    max_node_attempts: int = 3
    evaluator: str = Field("offline", description="offline (OCR + MiniLM) | heuristic (tests and benchmarks only)")
    # -- distributed runtime (workers/): see docs/deploy.md for how these bound one another
    task_soft_time_limit_s: int = 300
    task_time_limit_s: int = 330  # < broker_visibility_timeout_s, or Redis redelivers tasks that are still running
    broker_visibility_timeout_s: int = 3600
    broker_restore_interval_s: int = 10  # how often a worker looks for unacked messages past the visibility timeout
    reaper_interval_s: float = 15.0
    dispatch_grace_s: float = 60.0  # a pending node enqueued this long ago and still unclaimed is enqueued again
    stall_s: float = 60.0  # an active job with nothing in flight and no change for this long gets a controller run
    db_pool_size: int = 10
    db_pre_ping: bool = Field(
        False,
        description="workers: test each pooled connection before use (one round trip per transaction); off, a "
        "transaction that finds its connection dead is retried on a new one",
    )
    db_pgbouncer: bool = Field(False, description="behind PgBouncer in transaction mode: no prepared statements")
    db_max_overflow: int = 20
    # -- the OpenAI-compatible surface (api/routes: moderations, files, batches, chat; ecoalign/batches/)
    max_file_bytes: int = Field(64 * 1024 * 1024, ge=1, description="largest file POST /v1/files accepts (413)")
    max_batch_lines: int = Field(50_000, ge=1, description="lines of one batch input file; more fails the batch")
    moderation_request_budget: int = Field(20_000, ge=0, description="judge tokens one /v1/moderations may spend")
    moderation_item_budget: int = Field(2_000, ge=0, description="judge tokens one moderated input may spend")
    batch_token_budget: int | None = Field(None, ge=0, description="judge tokens one batch may spend (None: no cap)")
    batch_max_attempts: int = Field(3, ge=1, description="deliveries of one batch line before it fails as poison")
    batch_stall_s: float = Field(
        600.0, gt=0, description="a batch with no progress for this long gets its unfinished lines enqueued again"
    )
    chat_mode: Literal["celery", "inprocess"] = Field(
        "celery", description="/v1/chat/completions: run the job on the Celery workers, or in the API process"
    )
    chat_timeout_s: float = Field(120.0, gt=0, description="how long /v1/chat/completions waits for its job (504)")
    chat_poll_s: float = Field(0.1, gt=0, description="how often /v1/chat/completions looks at its job")
    chat_budget: int = Field(4000, ge=1, description="token budget of a chat completion's job unless the body sets it")
    # -- issue 14 items 3-4: the human review queue and duplicates decided once (docs/moderation.md)
    review_lease_s: float = Field(300.0, gt=0, description="how long a claimed review task is its reviewer's")
    dedup: bool = Field(True, description="reuse the decision of content already decided (same tenant and policy)")
    dedup_hamming_threshold: int = Field(
        6, ge=0, le=7, description="a near-duplicate image: perceptual hashes at most this many bits apart"
    )
    dedup_claim_s: float = Field(120.0, gt=0, description="a worker deciding new content holds its claim this long")
    dedup_wait_s: float = Field(30.0, ge=0, description="a copy waits this long for the first worker's decision")
    # -- webhooks and streaming chat (issue 17: ecoalign/webhooks/, api/routes/webhooks.py, streaming in chat)
    webhook_allow_loopback: bool = Field(
        False, description="tests only: webhook URLs may be loopback addresses and plain http"
    )
    webhook_timeout_s: float = Field(10.0, gt=0, description="one delivery attempt's connect and read timeout")
    webhook_retry_base_s: float = Field(30.0, gt=0, description="the first retry's delay (doubling, jittered)")
    webhook_retry_max_delay_s: float = Field(4 * 3600.0, gt=0, description="the longest delay between attempts")
    webhook_retry_window_s: float = Field(86_400.0, gt=0, description="how long a delivery is retried")
    webhook_dispatch_interval_s: float = Field(2.0, gt=0, description="how often beat sends the due deliveries")
    webhook_max_endpoints: int = Field(20, ge=1, description="webhook endpoints one tenant may have")
    webhook_secret_grace_s: float = Field(
        86_400.0, ge=0, description="after a rotation, the old secret also signs for this long (0: not at all)"
    )
    chat_stream_keepalive_s: float = Field(5.0, gt=0, description="a streaming chat's keep-alive comment interval")
    # -- telemetry (issue 13): OTLP export of job and node spans, off unless an endpoint is set
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces); unset: no export"
    )
    otlp_service_name: str = Field("ecoalign", description="service.name of the exported spans")
    # -- reliability under faults (issue 15, docs/reliability.md). ``max_node_attempts`` above bounds the failures
    # raised while running a node; this bounds the deliveries lost to crashes (lease expired, worker lost).
    max_node_crashes: int = Field(
        10, ge=1, description="attempts of one node lost to worker crashes before it fails as poison"
    )
    # -- per-tenant rate limits (issue 15; ecoalign/quotas.py): the limits are the tenant's, this is where they count
    rate_limit_storage_url: str | None = Field(
        None, description="Redis URL of the request-rate counters (default: broker_url)"
    )
    # -- audits (issue 13: ecoalign/audit/, POST /v1/audits)
    audit_max_traces: int = Field(
        1000, ge=1, description="traces one POST /v1/audits may audit (it runs in the request); more: ecoalign audit"
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

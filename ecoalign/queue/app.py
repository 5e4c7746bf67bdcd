"""The Celery app: configuration only (the task bodies live in ``workers/``; ``workers.app`` lists them).

Delivery is at-least-once by design: ``acks_late`` + ``task_reject_on_worker_lost`` mean a message is
acknowledged only after its task returned, so a worker that dies mid-node gives the message back. Every task is
idempotent against Postgres (see ``workers.tasks``), which is what makes redelivery harmless. Postgres, not the
broker, is the source of truth: the reaper (beat) rebuilds lost work from the database after a broker restart.

Time bounds, smallest first (``docs/deploy.md``): a model call (provider timeout x retries) < the task soft/hard
time limits < the Redis ``visibility_timeout`` (else Redis hands a still-running task to a second worker).
The node lease is independent of them: a worker renews it while it holds the node.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from ecoalign.queue.broker import transport_for
from ecoalign.queue.names import (
    ADVANCE_TASK,
    BATCH_CHAT_LINE_TASK,
    BATCH_FINALIZE_TASK,
    BATCH_MODERATION_LINE_TASK,
    BATCH_REAP_TASK,
    BATCH_START_TASK,
    CONTROL_QUEUE,
    GENERATE_TASK,
    MODEL_QUEUE,
    QUEUES,
    REAP_TASK,
    SCAN_TASK,
    SCORE_QUEUE,
    WEBHOOK_DELIVER_TASK,
    WEBHOOK_DISPATCH_TASK,
)
from ecoalign.settings import Settings, get_settings

ROUTES: dict[str, dict[str, str]] = {
    ADVANCE_TASK: {"queue": CONTROL_QUEUE},
    REAP_TASK: {"queue": CONTROL_QUEUE},
    GENERATE_TASK: {"queue": MODEL_QUEUE},
    SCAN_TASK: {"queue": SCORE_QUEUE},
    # The Batch API (workers.batch_tasks): start, finalize and its reaper are short and DB-bound; a moderation line
    # scans (CPU, like scoring); a chat line runs a whole job in-process and mostly waits on the model.
    BATCH_START_TASK: {"queue": CONTROL_QUEUE},
    BATCH_FINALIZE_TASK: {"queue": CONTROL_QUEUE},
    BATCH_REAP_TASK: {"queue": CONTROL_QUEUE},
    BATCH_MODERATION_LINE_TASK: {"queue": SCORE_QUEUE},
    BATCH_CHAT_LINE_TASK: {"queue": MODEL_QUEUE},
    # Webhooks (workers.webhook_tasks): the dispatcher is a short query; an attempt waits on the receiver (I/O).
    WEBHOOK_DISPATCH_TASK: {"queue": CONTROL_QUEUE},
    WEBHOOK_DELIVER_TASK: {"queue": MODEL_QUEUE},
}


EXCHANGE = Exchange("ecoalign", type="direct")


class ConfigError(ValueError):
    """Settings that would make the broker redeliver tasks that are still running."""


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery configuration for ``settings``; refuses time limits that reach the visibility timeout."""
    if not settings.task_soft_time_limit_s < settings.task_time_limit_s < settings.broker_visibility_timeout_s:
        raise ConfigError(
            "need task_soft_time_limit_s < task_time_limit_s < broker_visibility_timeout_s, got "
            f"{settings.task_soft_time_limit_s} / {settings.task_time_limit_s} / {settings.broker_visibility_timeout_s}"
        )
    return {
        "broker_url": settings.broker_url,
        "broker_transport": transport_for(settings.broker_url),  # redis://: one Redis client per channel
        "broker_transport_options": {
            "visibility_timeout": settings.broker_visibility_timeout_s,
            # Look for unacked messages of dead workers every N s (kombu's default sweep is ~100 s).
            "unacked_restore_interval": settings.broker_restore_interval_s,
            "unacked_restore_throttle": 1,
        },
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,  # a broker restart must not kill the workers
        # Publishing rides out a short broker outage; whatever is still lost, the reaper re-enqueues.
        "task_publish_retry": True,
        "task_publish_retry_policy": {"max_retries": 20, "interval_start": 0.1, "interval_step": 0.5,
                                      "interval_max": 2.0},
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,  # a failed task's state is in Postgres; the reaper retries it
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": False,  # their writes go to Postgres anyway
        "task_soft_time_limit": settings.task_soft_time_limit_s,
        "task_time_limit": settings.task_time_limit_s,
        "task_ignore_result": True,
        "result_backend": None,
        "task_serializer": "json",
        "accept_content": ["json"],
        "event_serializer": "json",
        "task_queues": tuple(Queue(name, EXCHANGE, routing_key=name) for name in QUEUES),
        "task_default_exchange": EXCHANGE.name,
        "task_default_queue": CONTROL_QUEUE,
        "task_routes": ROUTES,
        "task_create_missing_queues": False,
        "beat_schedule": {
            "ecoalign-reap": {
                "task": REAP_TASK,
                "schedule": settings.reaper_interval_s,
                # A sweep that waited longer than the interval is superseded by the next one.
                "options": {"expires": max(settings.reaper_interval_s, 1.0)},
            },
            "ecoalign-batch-reap": {  # the Batch API's reaper (workers.batch_tasks)
                "task": BATCH_REAP_TASK,
                "schedule": settings.reaper_interval_s,
                "options": {"expires": max(settings.reaper_interval_s, 1.0)},
            },
            "ecoalign-webhook-dispatch": {  # sends the due webhook deliveries (workers.webhook_tasks)
                "task": WEBHOOK_DISPATCH_TASK,
                "schedule": settings.webhook_dispatch_interval_s,
                "options": {"expires": max(settings.webhook_dispatch_interval_s, 1.0)},
            },
        },
        "timezone": "UTC",
        "enable_utc": True,
    }


# The task modules are added by ``workers.app`` (the worker process); a client of the queue only sends by name.
app = Celery("ecoalign")
app.conf.update(celery_config(get_settings()))

"""Webhook tasks: thin Celery shells over ``ecoalign.webhooks.delivery`` (why it is at-least-once and safe to
duplicate is told there)."""

from __future__ import annotations

from ecoalign.queue.app import app
from ecoalign.queue.dispatch import enqueue
from ecoalign.queue.names import WEBHOOK_DELIVER_TASK, WEBHOOK_DISPATCH_TASK
from ecoalign.webhooks.delivery import deliver, dispatch_due
from workers import process


@app.task(name=WEBHOOK_DISPATCH_TASK)
def webhook_dispatch() -> int:
    """Periodic (beat): send one delivery task per due delivery. Safe to run anywhere, any number at once."""
    root = process.root()
    return dispatch_due(root.sessions(), root.settings, enqueue)


@app.task(name=WEBHOOK_DELIVER_TASK)
def webhook_deliver(delivery_id: int, attempt: int) -> str:
    """One attempt of one delivery (its outcome is written only under this attempt)."""
    root = process.root()
    return deliver(root.sessions(), root.settings, delivery_id, attempt)

"""The worker's Celery app: the configured app of ``ecoalign.queue.app`` plus the task modules it runs.

``celery -A workers.app worker`` loads this module; the API and the CLI use ``ecoalign.queue`` and never import it.
"""

from __future__ import annotations

from ecoalign.queue.app import ConfigError, app, celery_config

app.conf.include = ["workers.tasks", "workers.batch_tasks", "workers.webhook_tasks"]

__all__ = ["ConfigError", "app", "celery_config"]

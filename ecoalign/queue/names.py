"""Every queue and task name, in one place, importable without Celery (the CLI, the API and the workers use them)."""

from __future__ import annotations

CONTROL_QUEUE = "ecoalign.control"  # the controller (advance_job) and the reaper: short, DB-bound
MODEL_QUEUE = "ecoalign.model"  # generation: waits on the model server (I/O-bound, many threads)
SCORE_QUEUE = "ecoalign.score"  # scans (a job's root, Batch moderation lines): evaluators (CPU-bound, prefork)
QUEUES = (CONTROL_QUEUE, MODEL_QUEUE, SCORE_QUEUE)

ADVANCE_TASK = "ecoalign.advance_job"
GENERATE_TASK = "ecoalign.generate_node"
SCAN_TASK = "ecoalign.scan_root"
REAP_TASK = "ecoalign.reap"

# The OpenAI Batch API (``workers.batch_tasks``).
BATCH_START_TASK = "ecoalign.batch_start"
BATCH_MODERATION_LINE_TASK = "ecoalign.batch_moderation_line"
BATCH_CHAT_LINE_TASK = "ecoalign.batch_chat_line"
BATCH_FINALIZE_TASK = "ecoalign.batch_finalize"
BATCH_REAP_TASK = "ecoalign.batch_reap"

# Webhooks (``workers.webhook_tasks``): the periodic dispatcher and one attempt of one delivery.
WEBHOOK_DISPATCH_TASK = "ecoalign.webhook_dispatch"
WEBHOOK_DELIVER_TASK = "ecoalign.webhook_deliver"

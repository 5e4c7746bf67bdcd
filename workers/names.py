"""Queue and task names, importable without Celery (the CLI and the API use them)."""

from __future__ import annotations

CONTROL_QUEUE = "ecoalign.control"  # the controller (advance_job) and the reaper: short, DB-bound
MODEL_QUEUE = "ecoalign.model"  # generation: waits on the model server (I/O-bound, many threads)
SCORE_QUEUE = "ecoalign.score"  # the scan and node scoring: evaluators (CPU-bound, prefork)
QUEUES = (CONTROL_QUEUE, MODEL_QUEUE, SCORE_QUEUE)

ADVANCE_TASK = "ecoalign.advance_job"
GENERATE_TASK = "ecoalign.generate_node"
SCORE_TASK = "ecoalign.score_node"
SCAN_TASK = "ecoalign.scan_root"
REAP_TASK = "ecoalign.reap"

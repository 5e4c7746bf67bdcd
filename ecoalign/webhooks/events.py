"""The event types a webhook endpoint may subscribe to: one table, one line each (the name and what it means)."""

from __future__ import annotations

EVENTS: dict[str, str] = {
    "batch.completed": "a batch finished: its output and error files are ready",
    "batch.failed": "a batch could not start (its input file was refused)",
    "batch.cancelled": "a batch was cancelled; the lines that had finished are in its files",
    "batch.expired": "a batch ran past its completion window; the lines that had finished are in its files",
    "job.succeeded": "a job ended with an answer or a refusal",
    "job.failed": "a job ended without an answer (its failure reason says why)",
    "job.cancelled": "a job was cancelled (by its client, or a streaming client that went away)",
    "review.required": "a moderation item became a review task (its policy says review, or its budget ended)",
}


def batch_event(status: str) -> str:
    """The event a batch's final status reports (``completed`` -> ``batch.completed``)."""
    return f"batch.{status}"


def job_event(status: str) -> str:
    """The event a job's terminal status reports (``succeeded`` -> ``job.succeeded``)."""
    return f"job.{status}"


def unknown_events(names: list[str]) -> list[str]:
    return [name for name in names if name not in EVENTS]

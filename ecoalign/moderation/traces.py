"""Decision traces: what a result's trace holds (request summary, scan segments, budgets) and the
``moderation_traces`` rows every path stores, written by one writer.

Why one writer: the CLI, the API and Batch lines store the same rows; the SQL is ``ecoalign.store.moderation_traces``
and each path only chooses the transaction (the CLI batches many rows per commit, the API and a Batch line commit
them with their own work).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ecoalign.content import Request
from ecoalign.evaluators.base import Score
from ecoalign.moderation.result import ModerationResult

TRACE_SEGMENT_CHARS = 2000  # a trace keeps this much of each segment's text


def request_summary(request: Request) -> dict[str, Any]:
    """The request as a trace keeps it: its fingerprint and sizes, never its bytes."""
    return {
        "fingerprint": request.fingerprint(),
        "text_chars": len(request.text),
        "images": [
            {
                "index": i,
                "sha256": img.sha256,
                "media_type": img.media_type,
                "bytes": len(img.data),
                "source": img.source,
            }
            for i, img in enumerate(request.images)
        ],
    }


def scan_trace(scan: Score, scan_s: float | None) -> dict[str, Any]:
    return {
        "evaluator": scan.evaluator,
        "model": scan.model,
        "safety": scan.safety,
        "weakest": scan.weakest,
        "tokens": scan.tokens,
        "seconds_per_item": None if scan_s is None else round(scan_s, 5),
        "segments": [
            {
                "kind": s.kind,
                "index": s.index,
                "text": s.text[:TRACE_SEGMENT_CHARS],
                "truncated": len(s.text) > TRACE_SEGMENT_CHARS,
                "safety": s.safety,
                "categories": {k: round(v, 6) for k, v in s.categories.items()},
            }
            for s in scan.segments
        ],
        "detail": jsonable(scan.detail),
    }


def jsonable(value: Any) -> Any:
    """``value`` if JSON can hold it, else a copy with what it cannot hold as strings."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str))


def trace_rows(
    run_id: str, custom_id: str | None, tenant_id: str | None, results: Sequence[ModerationResult]
) -> list[dict[str, Any]]:
    """The ``moderation_traces`` rows of one item's results: ``run_id`` is the CLI run, the response id or the
    batch; ``custom_id`` is None for a ``/v1/moderations`` request; ``tenant_id`` None for the CLI."""
    from ecoalign.store.base import utcnow

    now = utcnow()
    return [
        {
            "trace_id": r.trace_id,
            "run_id": run_id,
            "custom_id": custom_id,
            "tenant_id": tenant_id,
            "input_index": i,
            "flagged": r.flagged,
            "decision": r.decision,
            "tokens": r.tokens,
            "result": r.to_openai(),
            "policy_id": r.ecoalign.get("policy", {}).get("id"),
            "policy_version": r.ecoalign.get("policy", {}).get("version"),
            "trace": r.trace,
            "created_at": now,
        }
        for i, r in enumerate(results)
    ]


class TraceWriter:
    """Stores trace rows in batched transactions (one INSERT of many rows per commit) on its own engine: the CLI's
    writer, which owns no session of its caller."""

    def __init__(self, db_url: str) -> None:
        from ecoalign.store.db import make_engine, session_factory
        from ecoalign.store.migrate import ensure_schema

        ensure_schema(db_url)
        self.engine = make_engine(db_url)
        self.sessions = session_factory(self.engine)
        self.rows = 0

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        from ecoalign.store.db import run_in_transaction
        from ecoalign.store.moderation_traces import store_traces

        run_in_transaction(self.sessions, lambda s: store_traces(s, rows))
        self.rows += len(rows)

    def close(self) -> None:
        self.engine.dispose()

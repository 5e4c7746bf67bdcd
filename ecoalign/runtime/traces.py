"""How a step's work is written into the job's trace: the scan record and the prompt with its images redacted."""

from __future__ import annotations

import hashlib
from typing import Any

from ecoalign.evaluators.base import Score


def scan_record(score: Score, elapsed_s: float) -> dict[str, Any]:
    """The root's scan as stored on the job: the weakest segment and every segment's own score."""
    return {
        "safety": score.safety,
        "categories": score.categories,
        "evaluator": score.evaluator,
        "model": score.model,
        "tokens": score.tokens,
        "weakest": score.weakest,
        "latency_s": round(elapsed_s, 4),
        "segments": [
            {"kind": s.kind, "index": s.index, "text": s.text, "safety": s.safety, "categories": s.categories}
            for s in score.segments
        ],
    }


def redact_images(messages: list[dict]) -> list[dict]:
    """The prompt as stored in the trace: image bytes replaced by their hash (the request row keeps them)."""
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = [
                {"type": "image_url", "image_url": {"url": "sha256:" + _sha256(p["image_url"]["url"])}}
                if p.get("type") == "image_url"
                else p
                for p in content
            ]
        out.append({**message, "content": content})
    return out


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()

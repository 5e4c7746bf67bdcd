"""Reasoning traces imported from elsewhere, in two forms, as ``AuditTrace`` values; one bad line fails alone.

1. The documented form: ``{"id", "prompt", "images"?, "steps": [text, ...], "answer"}``. ``images`` are data URLs,
   or (CLI only, ``image_root`` given) file paths relative to the JSONL file.
2. OpenAI chat lines: ``{"id", "messages": [...]}``. The last assistant message is the answer; the messages before it
   are the prompt (read by the same parser as ``POST /v1/jobs``, images included). Its reasoning is its
   ``reasoning_content`` field (what reasoning-model servers return), else a ``<think>...</think>`` block at the
   start of its content; the steps are the reasoning's paragraphs (split on blank lines).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecoalign.content import Image, Request
from ecoalign.media import MediaError, decode_data_url, load_image_path
from ecoalign.runtime.requests import RequestError, request_from_messages

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGES = 16
MAX_STEPS = 512
_THINK = re.compile(r"^\s*<think>(?P<reasoning>.*?)</think>(?P<answer>.*)\Z", re.DOTALL | re.IGNORECASE)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n+")


class TraceLineError(ValueError):
    """A line that is not an importable trace; the message says which field is wrong, ``trace_id`` its id if it
    had a usable one."""

    trace_id: str | None = None


@dataclass(frozen=True)
class OriginalScores:
    """The scores a stored trace already had, from the evaluator that produced them (never changed by an audit)."""

    evaluator: str
    step_safeties: tuple[float | None, ...]
    answer_safety: float | None


@dataclass(frozen=True)
class AuditTrace:
    """One trace to audit: the request, its reasoning steps in order, the final answer (``kind``: job or import)."""

    id: str
    request: Request
    steps: tuple[str, ...]
    answer: str
    kind: str = "import"
    original: OriginalScores | None = None


def paragraphs(text: str) -> tuple[str, ...]:
    """The non-empty paragraphs of ``text`` (blank lines separate them)."""
    return tuple(p.strip() for p in _PARAGRAPH_BREAK.split(text.strip()) if p.strip())


def _text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts: their text parts joined
        texts = [p.get("text") for p in value if isinstance(p, dict) and p.get("type") == "text"]
        if all(isinstance(t, str) for t in texts):
            return "\n".join(t for t in texts if t)
    raise TraceLineError(f"{where} must be a string")


def _trace_id(obj: dict[str, Any]) -> str:
    value = obj.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not _usable_id(value):
        raise TraceLineError("id must be a non-empty string of at most 512 characters, without control characters")
    return str(value)


def _usable_id(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip()) and len(value) <= 512 and value.isprintable()


def _image(value: Any, index: int, image_root: Path | None) -> Image:
    if not isinstance(value, str):
        raise TraceLineError(f"images[{index}] must be a string (a data URL or a path)")
    try:
        if value.startswith("data:"):
            return decode_data_url(value, MAX_IMAGE_BYTES)
        if image_root is None:
            raise TraceLineError(f"images[{index}] must be a data: URL here (file paths only from the CLI)")
        return load_image_path(image_root / value, MAX_IMAGE_BYTES)
    except MediaError as exc:
        raise TraceLineError(f"images[{index}]: {exc}") from None


def _documented(obj: dict[str, Any], image_root: Path | None) -> AuditTrace:
    prompt = obj.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise TraceLineError("prompt must be a non-empty string")
    steps = obj.get("steps")
    if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
        raise TraceLineError("steps must be a list of strings")
    if len(steps) > MAX_STEPS:
        raise TraceLineError(f"{len(steps)} steps, over the limit of {MAX_STEPS}")
    answer = obj.get("answer")
    if not isinstance(answer, str):
        raise TraceLineError("answer must be a string")
    images = obj.get("images") or []
    if not isinstance(images, list) or len(images) > MAX_IMAGES:
        raise TraceLineError(f"images must be a list of at most {MAX_IMAGES} data URLs or paths")
    request = Request(prompt.strip(), tuple(_image(v, i, image_root) for i, v in enumerate(images)))
    kept = tuple(s.strip() for s in steps if s.strip())
    return AuditTrace(_trace_id(obj), request, kept, answer.strip())


def _chat(obj: dict[str, Any]) -> AuditTrace:
    messages = obj["messages"]
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise TraceLineError("messages must be a list of message objects")
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
    if last is None:
        raise TraceLineError("messages has no assistant message (the answer)")
    assistant = messages[last]
    try:
        request = request_from_messages(messages[:last], max_image_bytes=MAX_IMAGE_BYTES, max_images=MAX_IMAGES)
    except RequestError as exc:
        raise TraceLineError(f"the prompt (messages before the answer): {exc}") from None
    content = _text(assistant.get("content") or "", f"messages[{last}].content")
    reasoning = assistant.get("reasoning_content")
    if reasoning is not None:
        reasoning = _text(reasoning, f"messages[{last}].reasoning_content")
        answer = content
    else:
        think = _THINK.match(content)
        reasoning, answer = (think["reasoning"], think["answer"]) if think else ("", content)
    steps = paragraphs(reasoning)
    if len(steps) > MAX_STEPS:
        raise TraceLineError(f"{len(steps)} steps, over the limit of {MAX_STEPS}")
    return AuditTrace(_trace_id(obj), request, steps, answer.strip())


def parse_trace(obj: Any, *, image_root: Path | None = None) -> AuditTrace:
    """One imported trace (either form) from a decoded JSON value; ``TraceLineError`` says what is wrong."""
    if not isinstance(obj, dict):
        raise TraceLineError("a line must be a JSON object")
    if "messages" in obj:
        return _chat(obj)
    if "steps" in obj or "prompt" in obj:
        return _documented(obj, image_root)
    raise TraceLineError('a line needs either "messages" (an OpenAI chat) or "prompt", "steps" and "answer"')


def parse_lines(
    lines: Iterable[str], *, image_root: Path | None = None
) -> Iterator[tuple[int, AuditTrace | TraceLineError]]:
    """(line number, trace or the error that line has), 1-based, skipping blank lines."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, TraceLineError(f"not JSON ({exc.msg} at column {exc.colno})")
            continue
        try:
            yield number, parse_trace(obj, image_root=image_root)
        except TraceLineError as exc:
            yield number, named_error(exc, obj)


def named_error(exc: TraceLineError, obj: Any) -> TraceLineError:
    value = obj.get("id") if isinstance(obj, dict) else None
    exc.trace_id = value if _usable_id(value) else None
    return exc

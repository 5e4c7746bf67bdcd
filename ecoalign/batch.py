"""Bulk moderation of JSONL files: input lines in, OpenAI Batch output lines out, resumable after a kill.

Input lines (one item each; blank lines are ignored):

* OpenAI Batch input: ``{"custom_id", "method": "POST", "url": "/v1/moderations", "body": {"input": ...}}`` where
  ``input`` is a string, a list of strings (one result per element) or a list of parts (``{"type": "text"}`` and
  ``{"type": "image_url", "image_url": {"url"}}``, one result); images are data URLs or http(s) URLs (remote
  fetching is off unless enabled);
* the simple form: ``{"custom_id", "text", "images": [path relative to the input file | URL | data URL]}``.

Output lines are OpenAI Batch output lines: ``{id, custom_id, response: {status_code, request_id, body}, error:
null}`` with a ``/v1/moderations`` body, or ``{id, custom_id | null, response: null, error: {code, message,
line}}`` for a line that cannot be used. A bad line produces exactly one error line and nothing else fails.

Why the runner is built this way: the input is streamed (memory stays flat whatever its size); finished lines are
appended with one ``write`` per group of whole lines right after their traces are committed, so a ``kill -9``
loses at most the items in flight; ``resume`` reads the ``custom_id``s already in the output (dropping a
half-written last line) and skips them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ecoalign.content import Image, Request
from ecoalign.evaluators.base import Scanner, Score
from ecoalign.media import MediaError, load_image_path, load_image_url
from ecoalign.moderation import ModerationResult, Moderator, RunBudget, moderation_response

MODERATIONS_URL = "/v1/moderations"
DEFAULT_MAX_LINE_BYTES = 128 * 1024 * 1024


class RunError(Exception):
    """The run cannot start or must stop (bad paths, output exists, API unreachable); one line for the user."""


# -- parsing ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParseOptions:
    """Limits and sources for turning lines into requests. ``base_dir`` anchors the simple form's paths;
    ``remote_fetch(url) -> Image`` fetches http(s) images and is ``None`` when remote images are disabled."""

    base_dir: Path = Path(".")
    max_image_bytes: int = 8 * 1024 * 1024
    max_images: int = 8
    max_text_chars: int = 32_000
    max_inputs: int = 256  # elements of a list ``input``
    max_custom_id_chars: int = 512
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    remote_fetch: Callable[[str], Image] | None = None

    @classmethod
    def from_settings(cls, base_dir: Path, *, allow_remote: bool | None = None) -> ParseOptions:
        from ecoalign.settings import get_settings

        settings = get_settings()
        remote = settings.allow_remote_images if allow_remote is None else allow_remote
        fetch = None
        if remote:
            from ecoalign.remote_images import pinned_fetcher  # SSRF-guarded: public addresses only, pinned, capped

            fetch = pinned_fetcher(settings.max_image_bytes)
        return cls(
            base_dir=base_dir,
            max_image_bytes=settings.max_image_bytes,
            max_images=settings.max_images,
            max_text_chars=settings.max_text_chars,
            remote_fetch=fetch,
        )


@dataclass(frozen=True)
class LineError:
    """A line that produces an error line instead of a result."""

    line_no: int
    custom_id: str | None
    code: str
    message: str


@dataclass(frozen=True)
class LineHeader:
    """A line whose JSON and ``custom_id`` are fine; its content is checked later (in a worker)."""

    line_no: int
    custom_id: str
    obj: dict[str, Any]


@dataclass(frozen=True)
class Task:
    """A checked line: one request per result (a list ``input`` gives several); ``input_kind`` is how the input
    was written (``text`` | ``texts`` | ``parts`` | ``simple``), so a client can send it on unchanged."""

    line_no: int
    custom_id: str
    requests: tuple[Request, ...]
    input_kind: str


class InputError(ValueError):
    """An item cannot be moderated; ``code`` is the error line's (and an API 400's) ``error.code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_Bad = InputError


def parse_moderation_input(value: Any, options: ParseOptions) -> list[Request]:
    """The requests of a ``/v1/moderations`` ``input`` (a string, a list of strings: one request each, or a list
    of parts: one request), images loaded and checked. Raises ``InputError``. Shared with the API endpoint so a
    line in a file and a request over HTTP mean the same thing."""
    return _moderation_input(value, options)[0]


def iter_raw_lines(stream: BinaryIO, max_line_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """``(line_no, bytes)`` for each line, 1-based; ``None`` for a line over ``max_line_bytes`` (whose rest is read
    and dropped in bounded pieces, so one huge line cannot exhaust memory)."""
    line_no = 0
    while True:
        line = stream.readline(max_line_bytes + 1)
        if not line:
            return
        line_no += 1
        if len(line) > max_line_bytes:
            while not line.endswith(b"\n"):
                line = stream.readline(1 << 20)
                if not line:
                    break
            yield line_no, None
            continue
        yield line_no, line


def parse_header(raw: bytes | None, line_no: int, options: ParseOptions) -> LineHeader | LineError | None:
    """JSON, object, ``custom_id``; ``None`` for a blank line."""
    if raw is None:
        return LineError(line_no, None, "line_too_large", f"line {line_no}: over {options.max_line_bytes} bytes")
    if not raw.strip():
        return None
    try:
        obj = json.loads(raw)
    except UnicodeDecodeError:
        return LineError(line_no, None, "invalid_json", f"line {line_no}: not UTF-8 text")
    except json.JSONDecodeError as exc:
        return LineError(
            line_no, None, "invalid_json", f"line {line_no}: malformed JSON ({exc.msg} at column {exc.colno})"
        )
    if not isinstance(obj, dict):
        return LineError(line_no, None, "invalid_line", f"line {line_no}: a line must be a JSON object")
    custom_id = obj.get("custom_id")
    if custom_id is None or (isinstance(custom_id, str) and not custom_id.strip()):
        return LineError(line_no, None, "missing_custom_id", f"line {line_no}: custom_id is missing or empty")
    if not isinstance(custom_id, str):
        return LineError(line_no, None, "invalid_custom_id", f"line {line_no}: custom_id must be a string")
    if len(custom_id) > options.max_custom_id_chars:
        return LineError(
            line_no, None, "invalid_custom_id", f"line {line_no}: custom_id is over {options.max_custom_id_chars} chars"
        )
    return LineHeader(line_no, custom_id, obj)


def build_task(header: LineHeader, options: ParseOptions) -> Task | LineError:
    """Check a line's content and load its images: a ``Task``, or the error line's reason."""
    try:
        obj = header.obj
        if any(k in obj for k in ("method", "url", "body")):
            requests, kind = _batch_form(obj, options)
        else:
            requests, kind = _simple_form(obj, options), "simple"
    except _Bad as bad:
        return LineError(header.line_no, header.custom_id, bad.code, f"line {header.line_no}: {bad.message}")
    return Task(header.line_no, header.custom_id, tuple(requests), kind)


def _batch_form(obj: dict[str, Any], options: ParseOptions) -> tuple[list[Request], str]:
    method = obj.get("method", "POST")
    if method != "POST":
        raise _Bad("invalid_method", f"method must be POST, got {method!r}")
    url = obj.get("url")
    if url != MODERATIONS_URL:
        raise _Bad("invalid_url", f"url must be {MODERATIONS_URL}, got {url!r}")
    body = obj.get("body")
    if not isinstance(body, dict):
        raise _Bad("invalid_body", "body must be an object with an input")
    if "input" not in body:
        raise _Bad("invalid_body", "body.input is missing")
    return _moderation_input(body["input"], options)


def _moderation_input(value: Any, options: ParseOptions) -> tuple[list[Request], str]:
    if isinstance(value, str):
        return [_request(value, [], options)], "text"
    if not isinstance(value, list) or not value:
        raise _Bad("invalid_input", "input must be a string, a non-empty list of strings, or a list of parts")
    if all(isinstance(v, str) for v in value):
        if len(value) > options.max_inputs:
            raise _Bad("input_too_large", f"input has {len(value)} strings, over {options.max_inputs}")
        return [_request(v, [], options) for v in value], "texts"
    texts: list[str] = []
    images: list[Image] = []
    for i, part in enumerate(value):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url" and isinstance(part.get("image_url"), dict | str):
            ref = part["image_url"]
            url_value = ref.get("url") if isinstance(ref, dict) else ref
            if not isinstance(url_value, str):
                raise _Bad("invalid_input", f"input[{i}].image_url.url must be a string")
            images.append(_load_image(url_value, f"input[{i}]", options, allow_path=False))
        else:
            raise _Bad("invalid_input", f"input[{i}] must be a text or image_url part")
    return [_request("\n".join(texts), images, options)], "parts"


def _simple_form(obj: dict[str, Any], options: ParseOptions) -> list[Request]:
    text = obj.get("text", "")
    refs = obj.get("images", [])
    if not isinstance(text, str):
        raise _Bad("invalid_input", "text must be a string")
    if isinstance(refs, str):
        refs = [refs]
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise _Bad("invalid_input", "images must be a list of paths or URLs")
    if "text" not in obj and not refs:
        raise _Bad("invalid_input", "a simple line needs text or images (or use the OpenAI batch form)")
    if len(refs) > options.max_images:
        raise _Bad("input_too_large", f"{len(refs)} images, over the limit of {options.max_images}")
    images = [_load_image(r, f"images[{i}]", options, allow_path=True) for i, r in enumerate(refs)]
    return [_request(text, images, options)]


def _request(text: str, images: list[Image], options: ParseOptions) -> Request:
    if len(text) > options.max_text_chars:
        raise _Bad("input_too_large", f"the text has {len(text)} characters, over {options.max_text_chars}")
    if len(images) > options.max_images:
        raise _Bad("input_too_large", f"{len(images)} images, over the limit of {options.max_images}")
    if not text.strip() and not images:
        raise _Bad("invalid_input", "the input is empty (no text and no image)")
    return Request(text=text, images=tuple(images))


def _load_image(ref: str, where: str, options: ParseOptions, *, allow_path: bool) -> Image:
    try:
        if ref.startswith(("http://", "https://")) and options.remote_fetch is None:
            raise _Bad(
                "remote_images_disabled",
                f"{where}: remote image URLs are disabled (enable with --allow-remote-images)",
            )
        if not allow_path or ref.startswith(("data:", "http://", "https://")):
            return load_image_url(ref, options.max_image_bytes, options.remote_fetch)
        path = options.base_dir / ref
        if not path.is_file():
            raise _Bad("image_not_found", f"{where}: image file not found: {ref}")
        return load_image_path(path, options.max_image_bytes)
    except MediaError as exc:
        raise _Bad(exc.code, f"{where}: {exc}") from None


def task_input(task: Task) -> Any:
    """The ``/v1/moderations`` ``input`` for a task, as it was written (images as data URLs)."""
    if task.input_kind == "text":
        return task.requests[0].text
    if task.input_kind == "texts":
        return [r.text for r in task.requests]
    request = task.requests[0]
    parts: list[dict[str, Any]] = [{"type": "text", "text": request.text}] if request.text else []
    parts += [{"type": "image_url", "image_url": {"url": img.data_url()}} for img in request.images]
    return parts


# -- output lines -----------------------------------------------------------------------------------------------
def output_line(custom_id: str, body: dict[str, Any], status_code: int = 200) -> dict[str, Any]:
    return {
        "id": f"batch_req_{uuid.uuid4().hex}",
        "custom_id": custom_id,
        "response": {"status_code": status_code, "request_id": f"req_{uuid.uuid4().hex}", "body": body},
        "error": None,
    }


def error_line(error: LineError) -> dict[str, Any]:
    return {
        "id": f"batch_req_{uuid.uuid4().hex}",
        "custom_id": error.custom_id,
        "response": None,
        "error": {"code": error.code, "message": error.message, "line": error.line_no},
    }


def _encode(line: dict[str, Any]) -> bytes:
    return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


# -- resume -----------------------------------------------------------------------------------------------------
class IdSet:
    """A set of custom_ids, each kept as an 8-byte digest (BLAKE2b) with an optional integer (a line number).

    Why: the runner remembers every custom_id it has seen (duplicates) and, on ``--resume``, every one already in
    OUTPUT; as Python ``str`` keys of a dict or set they cost about 130 bytes each (13 MB per 100,000 lines), here
    12. Digests live in a sorted numpy array (looked up with ``searchsorted``) plus a small dict of recent ones
    that is merged in once it reaches an eighth of the array (so merging costs O(n log n) overall). Two different
    ids share a digest with probability about n² / 2^65 (3e-10 for 100,000 ids, 3e-6 for 10 million); such an id
    would be taken for its twin (reported as a duplicate, or skipped on resume)."""

    _MIN_PENDING = 4096

    def __init__(self) -> None:
        import numpy as np

        self._np = np
        self._keys = np.empty(0, dtype=np.uint64)
        self._values = np.empty(0, dtype=np.int64)
        self._pending: dict[int, int] = {}

    @staticmethod
    def digest(custom_id: str) -> int:
        data = custom_id.encode("utf-8", "surrogatepass")
        return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")

    def __len__(self) -> int:
        return len(self._keys) + len(self._pending)

    def __contains__(self, custom_id: object) -> bool:
        return isinstance(custom_id, str) and self.get(custom_id) is not None

    def get(self, custom_id: str) -> int | None:
        """The value stored with ``custom_id``, ``None`` if it is not in the set."""
        key = self.digest(custom_id)
        value = self._pending.get(key)
        if value is not None:
            return value
        return self._lookup(key)

    def _lookup(self, key: int) -> int | None:
        keys = self._keys
        if not len(keys):
            return None
        i = int(keys.searchsorted(self._np.uint64(key)))
        if i < len(keys) and int(keys[i]) == key:
            return int(self._values[i])
        return None

    def add(self, custom_id: str, value: int = 0) -> None:
        """Add ``custom_id`` (keeping the value of the first add)."""
        self.setdefault(custom_id, value)

    def setdefault(self, custom_id: str, value: int) -> int | None:
        """The value already stored with ``custom_id``; if there is none, store ``value`` and return ``None``."""
        key = self.digest(custom_id)
        seen = self._pending.get(key)
        if seen is None:
            seen = self._lookup(key)
        if seen is not None:
            return seen
        self._pending[key] = value
        if len(self._pending) >= max(self._MIN_PENDING, len(self._keys) // 8):
            self._merge()
        return None

    def _merge(self) -> None:
        np = self._np
        if not self._pending:
            return
        keys = np.concatenate([self._keys, np.fromiter(self._pending.keys(), np.uint64, len(self._pending))])
        values = np.concatenate([self._values, np.fromiter(self._pending.values(), np.int64, len(self._pending))])
        order = keys.argsort(kind="stable")
        self._keys, self._values = keys[order], values[order]
        self._pending = {}

    @property
    def nbytes(self) -> int:
        """Memory of the digests and values (the pending dict counted at about 100 bytes an entry)."""
        return int(self._keys.nbytes + self._values.nbytes) + 100 * len(self._pending)


@dataclass
class ResumeState:
    """What an existing OUTPUT already holds. ``done_ids``: custom_ids with a final line (a result, or an error
    about that item); ``done_lines``: input line numbers that got an error line (covers lines with no usable
    custom_id and duplicates); ``tokens``: what those results spent (charged to the run budget)."""

    done_ids: IdSet = field(default_factory=IdSet)
    done_lines: set[int] = field(default_factory=set)
    tokens: int = 0
    lines: int = 0
    dropped_bytes: int = 0
    corrupt_lines: int = 0


def read_resume_state(path: Path, *, repair: bool = True) -> ResumeState:
    """Read OUTPUT line by line (flat memory). A last line without its newline or not parseable was cut by a kill:
    it is truncated away (``repair``) so its item is redone."""
    state = ResumeState()
    if not path.exists():
        return state
    good_end = offset = 0
    with path.open("rb") as f:
        for raw in f:
            offset += len(raw)
            line = _parse_output_line(raw) if raw.endswith(b"\n") else None
            if line is None:
                state.corrupt_lines += 1  # in the middle it names no custom_id and stays; at the end it is cut
                continue
            _remember(state, line)
            state.lines += 1
            good_end = offset
    state.dropped_bytes = offset - good_end
    if state.dropped_bytes and repair:
        with path.open("r+b") as f:
            f.truncate(good_end)
    return state


def _parse_output_line(raw: bytes) -> dict[str, Any] | None:
    try:
        line = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return line if isinstance(line, dict) else None


def _remember(state: ResumeState, line: dict[str, Any]) -> None:
    custom_id = line.get("custom_id")
    error = line.get("error")
    if isinstance(error, dict):
        if isinstance(error.get("line"), int):
            state.done_lines.add(error["line"])
        if isinstance(custom_id, str) and error.get("code") != "duplicate_custom_id":
            state.done_ids.add(custom_id)
        return
    if isinstance(custom_id, str):
        state.done_ids.add(custom_id)
    response = line.get("response")
    body = response.get("body") if isinstance(response, dict) else None
    for result in (body or {}).get("results", []) if isinstance(body, dict) else []:
        tokens = (result.get("ecoalign") or {}).get("tokens") if isinstance(result, dict) else None
        if isinstance(tokens, int):
            state.tokens += tokens


# -- traces -----------------------------------------------------------------------------------------------------
class TraceStore:
    """Appends ``moderation_traces`` rows in batched transactions (one INSERT of many rows per commit)."""

    def __init__(self, db_url: str, run_id: str) -> None:
        from ecoalign.store.db import make_engine
        from ecoalign.store.migrate import ensure_schema

        ensure_schema(db_url)
        self.engine = make_engine(db_url)
        self.run_id = run_id
        self.rows = 0

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        from ecoalign.store.batch_models import ModerationTrace
        from ecoalign.store.db import run_in_transaction, session_factory

        table = ModerationTrace.__table__
        run_in_transaction(session_factory(self.engine), lambda s: s.execute(table.insert(), list(rows)))
        self.rows += len(rows)

    def close(self) -> None:
        self.engine.dispose()


def trace_rows(run_id: str, custom_id: str, results: Sequence[ModerationResult]) -> list[dict[str, Any]]:
    from ecoalign.store.base import utcnow

    now = utcnow()
    return [
        {
            "trace_id": r.trace_id,
            "run_id": run_id,
            "custom_id": custom_id,
            "input_index": i,
            "flagged": r.flagged,
            "decision": r.decision,
            "tokens": r.tokens,
            "result": r.to_openai(),
            "trace": r.trace,
            "created_at": now,
        }
        for i, r in enumerate(results)
    ]


# -- the runner -------------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What one chunk produced: output lines (encoded), trace rows, and counters."""

    lines: list[bytes] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    items: int = 0
    errors: int = 0
    results: int = 0
    flagged: int = 0
    tokens: int = 0
    decisions: Counter[str] = field(default_factory=Counter)


@dataclass
class RunSummary:
    run_id: str
    input_lines: int = 0
    skipped: int = 0  # already in OUTPUT (resume)
    items: int = 0  # output lines written by this run
    errors: int = 0
    results: int = 0
    flagged: int = 0
    tokens: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0  # moderation only, from the first line read to the last line written
    load_seconds: float = 0.0  # loading the models before that (warm-up)
    cpu_seconds: float = 0.0  # CPU time spent during ``seconds`` (threads, and children once they exit)
    budget: dict[str, Any] = field(default_factory=dict)
    resumed_from: dict[str, Any] | None = None
    traces: int = 0
    workers: int = 0
    executor: str = "thread"
    interrupted: bool = False

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["items_per_s"] = round(self.items_per_s, 3)
        data["seconds"] = round(self.seconds, 3)
        data["load_seconds"] = round(self.load_seconds, 3)
        data["cpu_seconds"] = round(self.cpu_seconds, 3)
        return data


ChunkFn = Callable[[list[LineHeader]], Outcome]


def moderate_chunk(headers: list[LineHeader], moderator: Moderator, options: ParseOptions, run_id: str) -> Outcome:
    """Build, scan (one batch for the whole chunk) and decide; a failure is confined to its own line."""
    out = Outcome()
    tasks: list[Task] = []
    for header in headers:
        built = build_task(header, options)
        if isinstance(built, LineError):
            out.lines.append(_encode(error_line(built)))
            out.errors += 1
        else:
            tasks.append(built)
    flat = [r for t in tasks for r in t.requests]
    try:
        results = moderator.moderate_many(flat)
    except Exception:
        results = None  # one bad item must not sink the chunk: redo item by item
    position = 0
    for task in tasks:
        if results is not None:
            mine = results[position : position + len(task.requests)]
            position += len(task.requests)
        else:
            try:
                mine = moderator.moderate_many(list(task.requests))
            except Exception as exc:
                message = f"line {task.line_no}: moderation failed ({type(exc).__name__}: {exc})"
                out.lines.append(
                    _encode(error_line(LineError(task.line_no, task.custom_id, "internal_error", message)))
                )
                out.errors += 1
                continue
        _record(out, task.custom_id, mine, moderator.model_id, run_id)
    out.items = len(headers)
    return out


def _record(out: Outcome, custom_id: str, results: Sequence[ModerationResult], model: str, run_id: str) -> None:
    out.lines.append(_encode(output_line(custom_id, moderation_response(results, model))))
    out.rows += trace_rows(run_id, custom_id, results)
    out.results += len(results)
    out.flagged += sum(r.flagged for r in results)
    out.tokens += sum(r.tokens for r in results)
    out.decisions.update(r.decision for r in results)


# Process workers: each child builds its own scanner once and returns scans; decisions stay in the parent, where
# the run budget and the judge live.
_CHILD: dict[str, Any] = {}


def _child_init(scanner_factory: Callable[[], Scanner], options: ParseOptions) -> None:
    _CHILD["scanner"] = scanner_factory()
    _CHILD["options"] = options


def _child_ready() -> bool:
    Moderator(_CHILD["scanner"]).warm_up()
    return True


def _child_scan(headers: list[LineHeader]) -> tuple[list[Task | LineError], list[Score]]:
    options: ParseOptions = _CHILD["options"]
    built = [build_task(h, options) for h in headers]
    requests = [r for b in built if isinstance(b, Task) for r in b.requests]
    moderator = Moderator(_CHILD["scanner"])
    return built, moderator.scan_many(requests) if requests else []


def _decide_scanned(
    built: list[Task | LineError], scans: list[Score], moderator: Moderator, run_id: str, n: int
) -> Outcome:
    out = Outcome(items=n)
    position = 0
    for item in built:
        if isinstance(item, LineError):
            out.lines.append(_encode(error_line(item)))
            out.errors += 1
            continue
        mine_scans = scans[position : position + len(item.requests)]
        position += len(item.requests)
        results = [moderator.decide(r, s) for r, s in zip(item.requests, mine_scans, strict=True)]
        _record(out, item.custom_id, results, moderator.model_id, run_id)
    return out


def count_lines(path: Path) -> int:
    """Lines in a file, read in 1 MiB blocks (for the progress bar's total)."""
    count = 0
    last = b"\n"
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


class _Writer:
    """Appends whole lines to OUTPUT: traces first (batched commits), then the lines, so every line in OUTPUT has
    its trace stored. One ``os.write`` per flush on an O_APPEND descriptor."""

    def __init__(self, path: Path, traces: TraceStore | None, flush_rows: int = 256, flush_s: float = 0.5) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.traces = traces
        self.flush_rows = flush_rows
        self.flush_s = flush_s
        self._lines: list[bytes] = []
        self._rows: list[dict[str, Any]] = []
        self._since = 0.0

    def add(self, lines: list[bytes], rows: list[dict[str, Any]]) -> None:
        if not self._lines:
            self._since = time.monotonic()
        self._lines += lines
        self._rows += rows
        if not self._rows or len(self._rows) >= self.flush_rows or time.monotonic() - self._since >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        if self._rows and self.traces is not None:
            self.traces.write(self._rows)
        data = b"".join(self._lines)
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self._lines, self._rows = [], []

    def close(self) -> None:
        try:
            self.flush()
            os.fsync(self.fd)
        finally:
            os.close(self.fd)


def run_moderation(
    input_path: str | Path,
    output_path: str | Path,
    *,
    resume: bool = False,
    workers: int = 2,
    budget: int | None = None,
    moderator: Moderator | None = None,
    db_url: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
    options: ParseOptions | None = None,
    chunk_size: int = 16,
    executor: str = "thread",
    scanner_factory: Callable[[], Scanner] | None = None,
    chunk_fn: ChunkFn | None = None,
    store_traces: bool = True,
    warm_up: bool = True,
) -> RunSummary:
    """Moderate every line of INPUT into OUTPUT (see the module docstring); returns the run's counters.

    ``budget`` is the run's token budget for escalations; on ``resume`` the tokens already recorded in OUTPUT
    count against it. ``executor="process"`` scans in ``workers`` child processes built by ``scanner_factory``
    (decisions, judge calls and the budget stay in this process). ``chunk_fn`` replaces the in-process
    moderation of a chunk (the ``--api`` client uses it). Traces go to ``db_url`` (default: settings).
    ``warm_up`` loads the models before the clock starts, so ``seconds`` and ``items/s`` are moderation only
    (``load_seconds`` says what loading took).
    """
    src, dst = Path(input_path), Path(output_path)
    _check_paths(src, dst, resume=resume, overwrite=overwrite)
    if workers < 1:
        raise RunError("--workers must be >= 1")
    run_id = uuid.uuid4().hex
    summary = RunSummary(run_id=run_id, workers=workers, executor=executor)
    state = read_resume_state(dst) if resume else ResumeState()
    if resume:
        summary.resumed_from = {
            "lines": state.lines,
            "tokens": state.tokens,
            "dropped_bytes": state.dropped_bytes,
            "corrupt_lines": state.corrupt_lines,
        }
    elif dst.exists():
        dst.write_bytes(b"")
    options = options or ParseOptions.from_settings(src.resolve().parent)
    if chunk_fn is None:
        if moderator is None:
            raise RunError("a moderator is needed unless chunk_fn is given")
        moderator.run_budget = RunBudget(budget, spent=state.tokens)
    traces: TraceStore | None = None
    if store_traces and chunk_fn is None:
        from ecoalign.settings import get_settings

        traces = TraceStore(db_url or get_settings().db_url, run_id)
    total = count_lines(src) if progress else None
    bar = _progress_bar(total, progress)
    writer = _Writer(dst, traces)
    pool: Executor
    if executor == "process":
        if scanner_factory is None:
            raise RunError("executor='process' needs a scanner_factory")
        import multiprocessing

        pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_child_init,
            initargs=(scanner_factory, options),
        )
    elif executor == "thread":
        pool = ThreadPoolExecutor(workers, thread_name_prefix="moderate")
    else:
        raise RunError(f"unknown executor {executor!r}: thread or process")
    load_started = time.monotonic()
    if warm_up and executor == "process":
        for ready in [pool.submit(_child_ready) for _ in range(workers)]:
            ready.result()
    elif warm_up and moderator is not None and chunk_fn is None:
        moderator.warm_up()
    summary.load_seconds = time.monotonic() - load_started
    started = time.monotonic()
    cpu_started = _cpu_seconds()
    in_flight: dict[Future[Any], int] = {}
    max_in_flight = workers * 2

    def submit(chunk: list[LineHeader]) -> None:
        if executor == "process":
            future: Future[Any] = pool.submit(_child_scan, chunk)
        elif chunk_fn is not None:
            future = pool.submit(chunk_fn, chunk)
        else:
            assert moderator is not None
            future = pool.submit(moderate_chunk, chunk, moderator, options, run_id)
        in_flight[future] = len(chunk)

    def collect(block: bool) -> None:
        if not in_flight:
            return
        done, _ = wait(list(in_flight), timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in done:
            n = in_flight.pop(future)
            value = future.result()
            if executor == "process":
                assert moderator is not None
                value = _decide_scanned(value[0], value[1], moderator, run_id, n)
            _account(summary, value)
            writer.add(value.lines, value.rows)
            bar.update(n)
            bar.set_postfix(tokens=summary.tokens, flagged=summary.flagged, errors=summary.errors, refresh=False)

    try:
        with src.open("rb") as stream:
            chunk: list[LineHeader] = []
            for header in _headers(stream, options, state, summary):
                if isinstance(header, LineError):
                    writer.add([_encode(error_line(header))], [])
                    summary.items += 1
                    summary.errors += 1
                    bar.update(1)
                    continue
                if header is None:
                    bar.update(1)
                    continue
                chunk.append(header)
                if len(chunk) >= chunk_size:
                    submit(chunk)
                    chunk = []
                    while len(in_flight) >= max_in_flight:
                        collect(block=True)
                    collect(block=False)
            if chunk:
                submit(chunk)
            while in_flight:
                collect(block=True)
    except KeyboardInterrupt:
        summary.interrupted = True
        for future in in_flight:
            future.cancel()
        raise
    finally:
        pool.shutdown(wait=not summary.interrupted, cancel_futures=True)
        writer.close()
        bar.close()
        summary.seconds = time.monotonic() - started
        summary.cpu_seconds = _cpu_seconds() - cpu_started
        if moderator is not None and chunk_fn is None:
            snap = moderator.run_budget.snapshot()
            summary.budget = {"total": snap.total, "spent": snap.spent, "overrun": snap.overrun}
        if traces is not None:
            summary.traces = traces.rows
            traces.close()
    return summary


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished children: a throughput measure that another
    process's load on the machine does not distort the way wall time is."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _headers(
    stream: BinaryIO, options: ParseOptions, state: ResumeState, summary: RunSummary
) -> Iterator[LineHeader | LineError | None]:
    """Headers to process, in input order: resume skips (yielded as ``None``) and duplicates resolved here,
    because only the reader sees lines in order."""
    first_line = IdSet()  # every custom_id seen, with its line: 12 bytes each
    for line_no, raw in iter_raw_lines(stream, options.max_line_bytes):
        summary.input_lines += 1
        if line_no in state.done_lines:
            summary.skipped += 1
            yield None
            continue
        header = parse_header(raw, line_no, options)
        if header is None:
            yield None
            continue
        if isinstance(header, LineError):
            yield header
            continue
        seen = first_line.setdefault(header.custom_id, line_no)
        if seen is not None:
            yield LineError(
                line_no,
                header.custom_id,
                "duplicate_custom_id",
                f"line {line_no}: custom_id {header.custom_id!r} was already used on line {seen}",
            )
            continue
        if header.custom_id in state.done_ids:
            summary.skipped += 1
            yield None
            continue
        yield header


def _account(summary: RunSummary, out: Outcome) -> None:
    summary.items += out.items
    summary.errors += out.errors
    summary.results += out.results
    summary.flagged += out.flagged
    summary.tokens += out.tokens
    for key, value in out.decisions.items():
        summary.decisions[key] = summary.decisions.get(key, 0) + value


def _check_paths(src: Path, dst: Path, *, resume: bool, overwrite: bool) -> None:
    if not src.exists():
        raise RunError(f"input file not found: {src}")
    if not src.is_file():
        raise RunError(f"input is not a file: {src}")
    if not os.access(src, os.R_OK):
        raise RunError(f"input file is not readable: {src}")
    if dst.resolve() == src.resolve():
        raise RunError("the output file must not be the input file")
    parent = dst.resolve().parent
    if not parent.is_dir():
        raise RunError(f"output folder does not exist: {parent}")
    if dst.exists():
        if dst.is_dir():
            raise RunError(f"output is a folder: {dst}")
        if not os.access(dst, os.W_OK):
            raise RunError(f"output file is not writable: {dst}")
        if dst.stat().st_size and not (resume or overwrite):
            raise RunError(f"output file {dst} already has lines: pass --resume to continue it or --overwrite")
    elif not os.access(parent, os.W_OK):
        raise RunError(f"output folder is not writable: {parent}")


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, **kwargs: Any) -> None: ...
    def close(self) -> None: ...


def _progress_bar(total: int | None, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="item", dynamic_ncols=True, file=sys.stderr, smoothing=0.1, mininterval=0.5)


# -- the --api client -------------------------------------------------------------------------------------------
class ApiClient:
    """A client of a remote ``POST {base}/v1/moderations`` (OpenAI's request and response shape), for ``--api``.

    A 4xx for an item becomes that item's error line; 429, 5xx and connection failures are retried with backoff
    and, if they persist, stop the run (``RunError``): what was written stays, ``--resume`` continues later.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        concurrency: int = 8,
    ) -> None:
        import httpx

        base = base_url.rstrip("/")
        self.url = base + ("/moderations" if base.endswith("/v1") else "/v1/moderations")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(
            headers=headers,
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        self.max_retries = max_retries
        self._lock = threading.Lock()

    def moderate(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``(status, body)`` of the final answer; raises ``RunError`` when the server stays unavailable."""
        import httpx

        delay = 0.5
        for attempt in range(self.max_retries + 1):
            try:
                response = self.client.post(self.url, json=payload)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 500 and response.status_code != 429:
                    try:
                        body = response.json()
                    except ValueError:
                        body = {"error": {"message": response.text[:300], "code": "invalid_response"}}
                    return response.status_code, body if isinstance(body, dict) else {"value": body}
                problem = f"HTTP {response.status_code}"
            if attempt < self.max_retries:
                time.sleep(delay)
                delay = min(delay * 2, 8.0)
        raise RunError(f"the moderation API at {self.url} is unavailable ({problem}); rerun with --resume")

    def chunk_fn(self, options: ParseOptions, model: str | None = None) -> ChunkFn:
        def run(headers: list[LineHeader]) -> Outcome:
            out = Outcome(items=len(headers))
            for header in headers:
                built = build_task(header, options)
                if isinstance(built, LineError):
                    out.lines.append(_encode(error_line(built)))
                    out.errors += 1
                    continue
                payload: dict[str, Any] = {"input": task_input(built)}
                if model:
                    payload["model"] = model
                status, body = self.moderate(payload)
                if status >= 400:
                    err = body.get("error") if isinstance(body.get("error"), dict) else {}
                    code = str(err.get("code") or f"http_{status}")
                    message = f"line {built.line_no}: the API answered {status}: {err.get('message') or body}"
                    out.lines.append(_encode(error_line(LineError(built.line_no, built.custom_id, code, message))))
                    out.errors += 1
                    continue
                out.lines.append(_encode(output_line(built.custom_id, body, status)))
                results = body.get("results") if isinstance(body.get("results"), list) else []
                out.results += len(results)
                for result in results:
                    if not isinstance(result, dict):
                        continue
                    out.flagged += bool(result.get("flagged"))
                    ext = result.get("ecoalign") if isinstance(result.get("ecoalign"), dict) else {}
                    out.tokens += int(ext.get("tokens") or 0)
                    out.decisions[str(ext.get("decision") or "api")] += 1
            return out

        return run

    def close(self) -> None:
        self.client.close()


def iter_output(path: Path) -> Iterable[dict[str, Any]]:
    """The parseable lines of an OUTPUT file, streamed (for tests, benchmarks and reports)."""
    with path.open("rb") as f:
        for raw in f:
            line = _parse_output_line(raw)
            if line is not None:
                yield line

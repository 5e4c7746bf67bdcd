"""An OpenAI-compatible chat server that *pretends* to be a model — for load and fault tests only.

Never a default: nothing in ecoalign points at the emulator unless asked to. It exists because a real model on
two cores cannot produce thousands of requests, scripted 429s or a malformed body on demand, and those are
exactly what the retry, timeout and throughput code must be tested against.

What it does:

* ``GET /v1/models`` and ``POST /v1/chat/completions`` in the OpenAI shape, fully async (latency is an
  ``asyncio.sleep``), so one process on two cores serves dozens of concurrent slots.
* Replies: a callable, else the first regex rule matching the last user message, else a cycled list, else a
  deterministic echo-ish text derived from the messages and ``seed`` (different seeds, different texts).
* ``usage``: prompt tokens = ceil(chars/4) of the text parts + ``image_token_cost`` per image part;
  completion tokens = word/punctuation tokens of the reply, which is cut at ``max_tokens``
  (``finish_reason="length"``).
* Faults: ``fail_first_n`` (deterministic: the first N chat requests fail with kind A, the next M with kind B,
  in dict order) then ``fault_rates`` (independent probabilities). Kinds: ``429`` (with ``Retry-After``),
  ``500``, ``503``, ``timeout`` (answers after ``timeout_sleep_s``, or gives up when the client hangs up),
  ``malformed`` (200 with a truncated JSON body), ``no_choices`` (200 with a body lacking ``choices``).
  Latency applies to every chat request except 429 and 503, which real servers send before doing any work.
* Counters of requests by outcome, plus the peak number in flight: ``GET /emulator/stats`` over HTTP, or
  ``EmulatorServer.state.snapshot()`` in-process; ``POST /emulator/reset`` zeroes them.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import math
import random
import re
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

FAULT_KINDS: tuple[str, ...] = ("429", "500", "503", "timeout", "malformed", "no_choices")
_NO_LATENCY_KINDS = frozenset({"429", "503"})
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
# fmt: off
_VOCAB = (
    "amber", "basalt", "cedar", "delta", "ember", "fjord", "glacier", "harbor", "iris",
    "juniper", "kelp", "lagoon", "meadow", "nectar", "onyx", "prairie", "quartz", "reef",
    "sierra", "tundra", "umber", "valley", "willow", "xenon", "yarrow", "zephyr",
)
# fmt: on
_DISCONNECT_POLL_S = 0.05
_PLAIN_SLEEP_MAX_S = 1.0


ReplyFn = Callable[[dict], str]


@dataclass
class EmulatorConfig:
    """Everything the emulator can be told; mutable, read on every request (tests may change it live)."""

    model: str = "ecoalign-emulator"
    latency_s: float = 0.0
    jitter_s: float = 0.0  # latency is uniform in [latency_s - jitter_s, latency_s + jitter_s], floored at 0
    image_token_cost: int = 256
    replies: Sequence[str] = ()
    rules: Sequence[tuple[str, str]] = ()
    reply_fn: ReplyFn | None = None
    fault_rates: dict[str, float] = field(default_factory=dict)
    fail_first_n: dict[str, int] = field(default_factory=dict)
    retry_after_s: float | None = 1.0
    timeout_sleep_s: float = 30.0
    reject_images: bool = False
    omit_usage: bool = False
    strict_model: bool = False
    api_key: str | None = None  # when set, requests without "Authorization: Bearer <key>" get 401
    fault_seed: int | None = None
    record_bodies: int = 64

    def __post_init__(self) -> None:
        for kind in (*self.fault_rates, *self.fail_first_n):
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if sum(self.fault_rates.values()) > 1.0:
            raise ValueError("fault_rates add up to more than 1")


class EmulatorState:
    """Counters shared between the server's event loop and the test thread (guarded by a lock)."""

    def __init__(self, record_bodies: int = 64, fault_seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(fault_seed)
        self._cycle = itertools.count()
        self._record_bodies = record_bodies
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.counts: Counter[str] = Counter()
            self.chat_requests = 0
            self.in_flight = 0
            self.max_in_flight = 0
            self.bodies: deque[dict] = deque(maxlen=self._record_bodies)

    def begin_chat(self, body: Any) -> int:
        """Register an arriving chat request; returns its 0-based index (drives ``fail_first_n``)."""
        with self._lock:
            index = self.chat_requests
            self.chat_requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if isinstance(body, dict):
                self.bodies.append(body)
            return index

    def end_chat(self, outcome: str) -> None:
        with self._lock:
            self.in_flight -= 1
            self.counts[outcome] += 1

    def count(self, outcome: str) -> None:
        with self._lock:
            self.counts[outcome] += 1

    def draw(self) -> float:
        with self._lock:
            return self._rng.random()

    def next_reply_index(self) -> int:
        return next(self._cycle)

    def wait_for_count(self, outcome: str, n: int, timeout_s: float) -> int:
        """The count of ``outcome`` once it reaches ``n``, or whatever it is at the deadline. A hung request
        ("timeout") is counted only when the emulator notices the client hung up, which can come after the client
        (and the job it served) has moved on."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                seen = self.counts[outcome]
            if seen >= n or time.monotonic() >= deadline:
                return seen
            time.sleep(0.02)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able copy: ``counts`` by outcome (``ok``, a fault kind, ``rejected``, ``models``) etc."""
        with self._lock:
            return {
                "chat_requests": self.chat_requests,
                "counts": dict(self.counts),
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
            }


# -- pure helpers (no I/O) -------------------------------------------------------------------------


def pick_fault(config: EmulatorConfig, index: int, draw: float) -> str | None:
    """The fault for the ``index``-th chat request: the deterministic schedule first, then the rates."""
    upto = 0
    for kind, n in config.fail_first_n.items():
        upto += n
        if index < upto:
            return kind
    threshold = 0.0
    for kind in FAULT_KINDS:
        threshold += config.fault_rates.get(kind, 0.0)
        if draw < threshold:
            return kind
    return None


def _parts(message: dict) -> list[dict]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [p for p in content if isinstance(p, dict)]
    return []


def _text_of(message: dict) -> str:
    return " ".join(str(p.get("text", "")) for p in _parts(message) if p.get("type") == "text")


def count_images(messages: list[dict]) -> int:
    return sum(1 for m in messages for p in _parts(m) if p.get("type") == "image_url")


def last_user_text(messages: list[dict]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text_of(message)
    return ""


def prompt_tokens(messages: list[dict], image_token_cost: int) -> int:
    """ceil(chars/4) of every text part plus a fixed cost per image part: close enough for load tests."""
    chars = sum(len(_text_of(m)) for m in messages)
    return math.ceil(chars / 4) + image_token_cost * count_images(messages)


def truncate_tokens(text: str, max_tokens: int | None) -> tuple[str, int, bool]:
    """Cut ``text`` after ``max_tokens`` word/punctuation tokens; returns (text, tokens, was_truncated)."""
    matches = list(_TOKEN_RE.finditer(text))
    if max_tokens is None or len(matches) <= max_tokens:
        return text, len(matches), False
    if max_tokens <= 0:
        return "", 0, True
    return text[: matches[max_tokens - 1].end()], max_tokens, True


def default_reply(body: dict) -> str:
    """Deterministic in (messages, seed); a different seed picks different words, like sampling would."""
    messages = body.get("messages") or []
    key = json.dumps([[_text_of(m) for m in messages], body.get("seed")], sort_keys=True)
    rng = random.Random(int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:16], 16))
    words = " ".join(rng.sample(_VOCAB, 5))
    echo = " ".join(last_user_text(messages).split()[:16])
    images = count_images(messages)
    seen = f" [saw {images} image{'s' if images != 1 else ''}]" if images else ""
    return f"Emulated reply {words}.{seen} You said: {echo}"


def choose_reply(config: EmulatorConfig, body: dict, cycle_index: Callable[[], int]) -> str:
    """Callable, else the first matching rule, else the cycled list, else the default echo."""
    if config.reply_fn is not None:
        return config.reply_fn(body)
    last = last_user_text(body.get("messages") or [])
    for pattern, reply in config.rules:
        if re.search(pattern, last):
            return reply
    if config.replies:
        return config.replies[cycle_index() % len(config.replies)]
    return default_reply(body)


def completion_body(config: EmulatorConfig, body: dict, reply: str, request_id: int) -> dict:
    """An OpenAI ``chat.completion`` object for ``reply``, with usage unless ``omit_usage``."""
    messages = body.get("messages") or []
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    text, n_tokens, truncated = truncate_tokens(reply, max_tokens if isinstance(max_tokens, int) else None)
    out: dict[str, Any] = {
        "id": f"chatcmpl-emu-{request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or config.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "length" if truncated else "stop",
            }
        ],
    }
    if not config.omit_usage:
        p = prompt_tokens(messages, config.image_token_cost)
        out["usage"] = {"prompt_tokens": p, "completion_tokens": n_tokens, "total_tokens": p + n_tokens}
    return out


def _error(message: str, kind: str, code: int) -> dict:
    return {"error": {"message": message, "type": kind, "code": code}}


def _latency_s(config: EmulatorConfig) -> float:
    if config.jitter_s <= 0:
        return max(config.latency_s, 0.0)
    return max(random.uniform(config.latency_s - config.jitter_s, config.latency_s + config.jitter_s), 0.0)


def _validate(config: EmulatorConfig, body: Any, authorization: str | None) -> tuple[int, dict] | None:
    """A 4xx (status, body) when the request is not acceptable, else None."""
    if config.api_key and authorization != f"Bearer {config.api_key}":
        return 401, _error("Incorrect API key provided", "invalid_request_error", 401)
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        return 400, _error("body must be a JSON object with a non-empty 'messages' list", "invalid_request_error", 400)
    if config.strict_model and body.get("model") != config.model:
        return 404, _error(f"The model '{body.get('model')}' does not exist", "invalid_request_error", 404)
    if config.reject_images and count_images(body["messages"]):
        return 400, _error("this model does not support image input (image_url parts)", "invalid_request_error", 400)
    return None


# -- a moderation judge of set accuracy ------------------------------------------------------------


class ModerationJudgeScript:
    """A ``reply_fn`` that answers moderation-judge prompts (``ecoalign.moderation.judge``) right with a set
    probability, knowing each item's gold label: scripted verdicts for benchmarks and tests of escalation.

    ``gold(content, images) -> bool | None`` gives the label of the item whose ``<content>...</content>`` text the
    prompt carries, with ``images`` the sha256 of each image part's URL (none for a text-only call). None: the
    prompt does not tell (an unknown item, or a text-only call whose text several items with different labels
    share): the verdict is a fair coin, as from a judge that cannot see the difference. A call with image parts is
    right with
    probability ``accuracy_images``, one without with ``accuracy_text``; the draw is a hash of the content, whether
    images were sent and the request's ``seed``, so the same prompt gets the same verdict in every run and a second
    opinion (another seed) is an independent draw. ``custom`` scores a policy's custom categories by name when their
    name appears in the system prompt. Every prompt it got is kept in ``prompts`` (system and user text).
    """

    def __init__(
        self,
        gold: Callable[[str, tuple[str, ...]], bool | None],
        *,
        accuracy_text: float = 1.0,
        accuracy_images: float | None = None,
        category: str = "illicit",
        custom: dict[str, float] | None = None,
        seed: int = 0,
    ) -> None:
        self.gold = gold
        self.accuracy_text = accuracy_text
        self.accuracy_images = accuracy_text if accuracy_images is None else accuracy_images
        self.category = category
        self.custom = dict(custom or {})
        self.seed = seed
        self.prompts: list[dict[str, str]] = []
        self.unknown = 0

    def __call__(self, body: dict) -> str:
        messages = body.get("messages") or []
        system = " ".join(_text_of(m) for m in messages if m.get("role") == "system")
        content = last_user_text(messages)
        self.prompts.append({"system": system, "user": content})
        urls = tuple(
            hashlib.sha256(str((p.get("image_url") or {}).get("url", "")).encode("utf-8")).hexdigest()
            for m in messages for p in _parts(m) if p.get("type") == "image_url"
        )
        label = self.gold(content, urls)
        accuracy = self.accuracy_images if urls else self.accuracy_text
        key = json.dumps([content, urls, body.get("seed"), self.seed])
        draw = random.Random(int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:16], 16)).random()
        if label is None:
            self.unknown += 1
            says = draw < 0.5
        else:
            says = label if draw < accuracy else not label
        categories = {self.category: 0.9} if says else {}
        categories.update({name: score for name, score in self.custom.items() if name in system})
        flagged = says or any(v >= 0.5 for v in categories.values())
        return json.dumps({"flagged": flagged, "categories": categories, "rationale": "scripted verdict"})


# -- the ASGI app ----------------------------------------------------------------------------------


def create_app(config: EmulatorConfig | None = None, state: EmulatorState | None = None) -> FastAPI:
    """The FastAPI app; ``app.state.emulator`` is its ``EmulatorState``, ``app.state.config`` its config."""
    cfg = config or EmulatorConfig()
    st = state or EmulatorState(cfg.record_bodies, cfg.fault_seed)
    app = FastAPI(title="ecoalign OpenAI emulator (tests and load only)")
    app.state.emulator = st
    app.state.config = cfg

    @app.get("/v1/models")
    async def models() -> dict:
        st.count("models")
        return {
            "object": "list",
            "data": [{"id": cfg.model, "object": "model", "owned_by": "ecoalign-emulator"}],
        }

    @app.get("/emulator/stats")
    async def stats() -> dict:
        return st.snapshot()

    @app.post("/emulator/reset")
    async def reset() -> dict:
        st.reset()
        return st.snapshot()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        index = st.begin_chat(body)
        outcome = "rejected"
        try:
            rejected = _validate(cfg, body, request.headers.get("authorization"))
            if rejected is not None:
                return JSONResponse(rejected[1], status_code=rejected[0])
            fault = pick_fault(cfg, index, st.draw())
            outcome = fault or "ok"
            if fault not in _NO_LATENCY_KINDS:
                await _model_latency(request, _latency_s(cfg))
            return await _respond(cfg, st, request, body, fault, index)
        finally:
            st.end_chat(outcome)

    return app


async def _respond(
    cfg: EmulatorConfig, st: EmulatorState, request: Request, body: dict, fault: str | None, index: int
) -> Response:
    """The answer to a chat request that passed validation: its fault (``fault``), else a completion."""
    if fault == "429":
        headers = {} if cfg.retry_after_s is None else {"Retry-After": _fmt_seconds(cfg.retry_after_s)}
        return JSONResponse(_error("rate limited by the emulator", "rate_limit_exceeded", 429), 429, headers)
    if fault in ("500", "503"):
        code = int(fault)
        return JSONResponse(_error(f"emulated server error {code}", "server_error", code), code)
    if fault == "malformed":
        return Response(b'{"id": "chatcmpl-broken", "choices": [{"message": ', media_type="application/json")
    full = completion_body(cfg, body, choose_reply(cfg, body, st.next_reply_index), index)
    if fault == "no_choices":
        full.pop("choices")
        return JSONResponse(full)
    if fault == "timeout":
        await _sleep_unless_disconnected(request, cfg.timeout_sleep_s)
    return JSONResponse(full)


async def _model_latency(request: Request, seconds: float) -> None:
    """Short latencies are a plain sleep; long ones end early when the client hangs up (clean shutdowns)."""
    if seconds <= _PLAIN_SLEEP_MAX_S:
        await asyncio.sleep(seconds)
    else:
        await _sleep_unless_disconnected(request, seconds)


async def _sleep_unless_disconnected(request: Request, seconds: float) -> None:
    """Sleep like a hung model, but stop once the client hung up so shutdown is not held hostage."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await request.is_disconnected():
            return
        await asyncio.sleep(min(_DISCONNECT_POLL_S, max(deadline - time.monotonic(), 0.0)))


def _fmt_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


# -- running it ------------------------------------------------------------------------------------


def run_emulator(host: str = "127.0.0.1", port: int = 8099, **config: Any) -> None:
    """Serve the emulator in the foreground with uvicorn until interrupted (``ecoalign emulator``)."""
    import uvicorn

    uvicorn.run(create_app(EmulatorConfig(**config)), host=host, port=port, log_level="info")


class EmulatorServer:
    """The emulator on a free port in a background thread, for tests: ``with EmulatorServer(...) as emu:``."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        **config_kwargs: Any,
    ) -> None:
        if config is not None and config_kwargs:
            raise TypeError("pass either config or keyword settings, not both")
        self.config = config or EmulatorConfig(**config_kwargs)
        self.state = EmulatorState(self.config.record_bodies, self.config.fault_seed)
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def stats(self) -> dict[str, Any]:
        """``state.snapshot()``: requests by outcome, total chat requests, peak in flight."""
        return self.state.snapshot()

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (with ``/v1``) to hand to ``OpenAIChatProvider``."""
        return f"{self.url}/v1"

    def start(self, timeout_s: float = 10.0) -> EmulatorServer:
        import uvicorn

        sock = _bound_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        app = create_app(self.config, self.state)
        uv_config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2, backlog=1024)
        self._server = uvicorn.Server(uv_config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"emulator-{self.port}", daemon=True
        )
        self._thread.start()
        self._wait_started(timeout_s)
        return self

    def _wait_started(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if self._thread is None or not self._thread.is_alive():
                raise RuntimeError(f"emulator on {self.url} stopped while starting")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"emulator on {self.url} did not start within {timeout_s:g} s")
            time.sleep(0.01)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout_s)
        self._server = None
        self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _bound_socket(host: str, port: int) -> socket.socket:
    """Bind before starting uvicorn, so a free port (0) is known and cannot be taken in between.

    ``proto=IPPROTO_TCP`` matters: asyncio only sets TCP_NODELAY on sockets whose proto says TCP, and without
    it every keep-alive response (headers and body written separately) waits ~40 ms for a delayed ACK.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for "connection refused" tests and for child servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# -- command line ----------------------------------------------------------------------------------


def _flag(kind: str) -> str:
    return kind.replace("_", "-")


def add_emulator_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``ecoalign emulator`` and ``python -m ecoalign.testing.emulator``."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--model", default="ecoalign-emulator", help="model id served by /v1/models")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="mean latency of a chat request")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="latency is uniform in mean ± jitter")
    parser.add_argument("--image-token-cost", type=int, default=256, help="prompt tokens billed per image part")
    parser.add_argument("--reply", action="append", default=[], help="a scripted reply (repeat to cycle)")
    parser.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="REGEX=>REPLY",
        help="reply REPLY when REGEX matches the last user message (repeatable)",
    )
    for kind in FAULT_KINDS:
        parser.add_argument(
            f"--fail-rate-{_flag(kind)}",
            type=float,
            default=0.0,
            metavar="P",
            help=f"probability of a {kind} fault per chat request",
        )
        parser.add_argument(
            f"--fail-first-{_flag(kind)}",
            type=int,
            default=0,
            metavar="N",
            help=f"the first N chat requests (after earlier schedules) get a {kind} fault",
        )
    parser.add_argument("--retry-after-s", type=float, default=1.0, help="Retry-After sent with 429")
    parser.add_argument("--timeout-sleep-s", type=float, default=30.0, help="how long a 'timeout' hangs")
    parser.add_argument("--reject-images", action="store_true", help="answer 400 to image parts (text-only)")
    parser.add_argument("--omit-usage", action="store_true", help="send no usage object")
    parser.add_argument("--strict-model", action="store_true", help="404 unless the request names --model")
    parser.add_argument("--api-key", default=None, help="require this bearer token (401 otherwise)")
    parser.add_argument("--fault-seed", type=int, default=None, help="seed of the fault dice")
    return parser


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    rules = [tuple(rule.split("=>", 1)) for rule in args.rule]
    if any(len(rule) != 2 for rule in rules):
        raise ValueError("--rule expects REGEX=>REPLY")
    return EmulatorConfig(
        model=args.model,
        latency_s=args.latency_ms / 1000.0,
        jitter_s=args.jitter_ms / 1000.0,
        image_token_cost=args.image_token_cost,
        replies=tuple(args.reply),
        rules=tuple((p, r) for p, r in rules),
        fault_rates=_per_kind(args, "fail_rate_", float),
        fail_first_n=_per_kind(args, "fail_first_", int),
        retry_after_s=args.retry_after_s,
        timeout_sleep_s=args.timeout_sleep_s,
        reject_images=args.reject_images,
        omit_usage=args.omit_usage,
        strict_model=args.strict_model,
        api_key=args.api_key,
        fault_seed=args.fault_seed,
    )


def _per_kind(args: argparse.Namespace, prefix: str, cast: Callable[[Any], Any]) -> dict:
    values = ((kind, getattr(args, prefix + kind)) for kind in FAULT_KINDS)
    return {kind: cast(v) for kind, v in values if v}


def run_from_args(args: argparse.Namespace) -> int:
    """Run the emulator from parsed arguments (blocks); returns the process exit code."""
    import uvicorn

    config = config_from_args(args)
    print(
        f"ecoalign emulator (tests and load only, not a model) on http://{args.host}:{args.port}/v1",
        flush=True,
    )
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning")
    return 0


def main(argv: Sequence[str] | None = None, description: str | None = __doc__) -> int:
    """``python -m ecoalign.testing.emulator`` (help with this module's description) and ``ecoalign emulator``
    (the CLI passes its arguments here, without the description)."""
    parser = add_emulator_arguments(
        argparse.ArgumentParser(
            prog="ecoalign emulator",
            description=description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())

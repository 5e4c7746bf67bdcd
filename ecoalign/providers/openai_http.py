"""A ``ChatProvider`` for any server speaking the OpenAI chat-completions protocol over HTTP.

vLLM, Ollama, llama.cpp's server, OpenAI itself and ``ecoalign.testing.emulator`` all speak it, so this one adapter
reaches every model ecoalign supports. ``base_url`` is the OpenAI base URL *including* ``/v1``, exactly as
the OpenAI SDK's ``base_url`` (``http://127.0.0.1:8080/v1``, ``http://localhost:11434/v1``,
``https://api.openai.com/v1``): requests go to ``{base_url}/chat/completions`` and ``{base_url}/models``.

Failure semantics, in one place:

* ``max_retries`` is the number of *extra* attempts after the first one.
* 429, 5xx, connection failures and timeouts are retried with exponential backoff and full jitter
  (``uniform(0, min(backoff_max_s, backoff_base_s * 2**n))``); a 429's ``Retry-After`` is honoured, capped at
  ``retry_after_max_s``. When retries run out the matching ``ProviderError`` subclass is raised.
* Any other 4xx raises ``ProviderRejected`` at once, carrying the server's own error message.
* A 2xx whose body is not a chat completion (bad JSON, no ``choices``) is retried at most
  ``bad_response_retries`` times, then ``ProviderBadResponse``.
* ``max_concurrency`` bounds the requests in flight from this provider across all threads; a slot is held only
  while a request is on the wire, never during a backoff sleep.

Messages pass through unchanged (text and ``image_url`` data-URL parts), except with ``text_only=True``, meant
for text-only chat templates such as llama.cpp's ``--chat_format gemma`` (see ``plain_text_messages``).
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import logging
import math
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from ecoalign.providers.base import (
    Completion,
    ProviderBadResponse,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
    Usage,
)

if TYPE_CHECKING:
    from ecoalign.settings import Settings

log = logging.getLogger(__name__)

_ERROR_SNIPPET_CHARS = 300
CHARS_PER_TOKEN = 4  # the usage estimate when a server sends none: ceil(chars / 4) of the text parts


@dataclass
class ProviderStats:
    """Counters of one provider's traffic, for metrics and for tests asserting retry behaviour."""

    calls: int = 0
    attempts: int = 0
    retries: int = 0
    failures: int = 0
    estimated_usage: int = 0
    images_dropped: int = 0


class _Retry(Exception):
    """Internal: one attempt failed in a retryable way; carries the error to raise if retries run out."""

    def __init__(self, error: ProviderError, retry_after_s: float | None = None, bad_body: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after_s = retry_after_s
        self.bad_body = bad_body


class OpenAIChatProvider:
    """Chat completions over HTTP with retries, timeouts and a concurrency limit; thread-safe, keep-alive."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 4,
        backoff_base_s: float = 0.5,
        max_concurrency: int = 8,
        transport: httpx.BaseTransport | None = None,
        *,
        backoff_max_s: float = 8.0,
        retry_after_max_s: float = 30.0,
        bad_response_retries: int = 1,
        check_timeout_s: float = 5.0,
        text_only: bool = False,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.model_id = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.retry_after_max_s = retry_after_max_s
        self.bad_response_retries = bad_response_retries
        self.check_timeout_s = check_timeout_s
        self.text_only = text_only
        self.max_concurrency = max_concurrency
        self.stats = ProviderStats()
        self._stats_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._client = httpx.Client(
            headers=_headers(api_key),
            timeout=httpx.Timeout(timeout_s),
            # One connection more than the semaphore allows, so check() never queues behind long generations.
            limits=httpx.Limits(max_connections=max_concurrency + 1, max_keepalive_connections=max_concurrency + 1),
            transport=transport,
        )

    # -- public API --------------------------------------------------------------------------------

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def complete(
        self,
        messages: list[dict],
        *,
        max_tokens: int,
        temperature: float = 0.7,
        seed: int | None = None,
    ) -> Completion:
        """Run one chat completion, retrying transient failures; ``latency_s`` is the caller's total wait."""
        payload = self._payload(messages, max_tokens=max_tokens, temperature=temperature, seed=seed)
        started = time.monotonic()
        self._count(calls=1)
        bad_bodies = 0
        attempt = 0
        while True:
            try:
                completion = self._attempt(payload, messages)
            except _Retry as retry:
                bad_bodies += retry.bad_body
                if attempt >= self.max_retries or bad_bodies > self.bad_response_retries:
                    self._count(failures=1)
                    raise _final(retry.error, attempt + 1) from None
                self._count(retries=1)
                time.sleep(self._backoff_s(attempt, retry.retry_after_s))
                attempt += 1
                continue
            except ProviderError:
                self._count(failures=1)
                raise
            return dataclasses.replace(completion, latency_s=time.monotonic() - started)

    def check(self) -> None:
        """``GET {base_url}/models`` with a short timeout: the server is up and the base URL is right."""
        self._get_models()

    def list_models(self) -> list[str]:
        """The model ids the server lists (``GET /models``); handy to pick ``model`` for a new server."""
        try:
            body = self._get_models().json()
            return [str(m["id"]) for m in body["data"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderBadResponse(
                f"model server at {self.base_url}/models sent an unusable model list: {_one_line(str(exc))}"
            ) from None

    def _get_models(self) -> httpx.Response:
        url = f"{self.base_url}/models"
        try:
            response = self._client.get(url, timeout=min(self.check_timeout_s, self.timeout_s))
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"cannot reach model server at {url}: {_reason(exc)}") from None
        status = response.status_code
        if status == 404:
            raise ProviderRejected(
                f"model server at {url} answered 404: is base_url the OpenAI base URL including /v1?",
                status_code=404,
            )
        if status >= 500:
            raise ProviderUnavailable(
                f"model server at {url} answered {status}: {_server_message(response)}", status_code=status
            )
        if status >= 400:
            raise ProviderRejected(
                f"model server at {url} refused: {status} {_server_message(response)}", status_code=status
            )
        return response

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIChatProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OpenAIChatProvider(base_url={self.base_url!r}, model={self.model!r})"

    # -- one attempt -------------------------------------------------------------------------------

    def _payload(self, messages: list[dict], *, max_tokens: int, temperature: float, seed: int | None) -> dict:
        """The request body; messages pass through unchanged unless ``text_only`` (``plain_text_messages``)."""
        if self.text_only:
            messages, dropped = plain_text_messages(messages)
            if dropped:
                self._count(images_dropped=dropped)
                log.warning("text-only model at %s: dropped %d image part(s)", self.base_url, dropped)
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if seed is not None:
            payload["seed"] = seed
        return payload

    def _attempt(self, payload: dict, messages: list[dict]) -> Completion:
        """POST once: a Completion, or ``_Retry`` for a transient failure, or a final ProviderError."""
        url = self.chat_url
        self._count(attempts=1)
        with self._slot():
            try:
                response = self._client.post(url, json=payload)
            except httpx.TimeoutException as exc:
                raise _Retry(ProviderTimeout(f"model server at {url} timed out: {_reason(exc)}")) from None
            except httpx.HTTPError as exc:
                raise _Retry(ProviderUnavailable(f"cannot reach model server at {url}: {_reason(exc)}")) from None
        return self._parse(response, messages)

    def _parse(self, response: httpx.Response, messages: list[dict]) -> Completion:
        url = self.chat_url
        status = response.status_code
        error: ProviderError
        if status == 429:
            error = ProviderRateLimited(
                f"model server at {url} rate-limited the request (429): {_server_message(response)}",
                status_code=429,
            )
            raise _Retry(error, retry_after_s=_retry_after_s(response))
        if status >= 500:
            error = ProviderServerError(
                f"model server at {url} failed with {status}: {_server_message(response)}", status_code=status
            )
            raise _Retry(error)
        if status >= 400:
            raise ProviderRejected(
                f"model server at {url} rejected the request ({status}): {_server_message(response)}",
                status_code=status,
            )
        try:
            body = response.json()
            return self._completion(body, messages)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            error = ProviderBadResponse(
                f"model server at {url} sent an unusable chat completion ({status}): {_one_line(str(exc))}",
                status_code=status,
            )
            raise _Retry(error, bad_body=True) from None

    def _completion(self, body: Any, messages: list[dict]) -> Completion:
        """Turn a JSON body into a Completion; raises KeyError/TypeError/ValueError when it is not one."""
        if not isinstance(body, dict):
            raise TypeError(f"body is a {type(body).__name__}, not an object")
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices:
            raise KeyError("no choices in the body")
        choice = choices[0]
        message = choice["message"]
        text = _content_text(message.get("content"))
        usage = _usage(body.get("usage"))
        if usage is None:
            usage = estimate_usage(messages, text)
            self._count(estimated_usage=1)
            log.debug("model server at %s sent no usage; estimated %s", self.base_url, usage)
        return Completion(
            text=text,
            usage=usage,
            model=str(body.get("model") or self.model),
            finish_reason=choice.get("finish_reason"),
        )

    # -- helpers -----------------------------------------------------------------------------------

    @contextmanager
    def _slot(self) -> Iterator[None]:
        self._slots.acquire()
        try:
            yield
        finally:
            self._slots.release()

    def _backoff_s(self, attempt: int, retry_after_s: float | None) -> float:
        """Full-jitter exponential backoff; a server's Retry-After wins, capped so it cannot stall us."""
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.retry_after_max_s)
        ceiling = min(self.backoff_max_s, self.backoff_base_s * (2**attempt))
        return random.uniform(0.0, ceiling)  # noqa: S311 -- retry jitter, not a secret

    def _count(self, **deltas: int) -> None:
        with self._stats_lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)


# -- module helpers --------------------------------------------------------------------------------


def client_for(
    settings: Settings, url: str, model: str, *, api_key: str | None, concurrency: int
) -> OpenAIChatProvider:
    """A client of the OpenAI-compatible server at ``url`` with the settings' timeout and retries: the one builder
    of the chat model's and the judges' clients (no request made)."""
    return OpenAIChatProvider(
        url,
        model,
        api_key=api_key,
        timeout_s=settings.model_timeout_s,
        max_retries=settings.model_max_retries,
        max_concurrency=concurrency,
    )


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _final(error: ProviderError, attempts: int) -> ProviderError:
    """The error raised when retries run out: same class, message says how many attempts were made."""
    return type(error)(
        f"{error} (after {attempts} attempt{'s' if attempts > 1 else ''})", status_code=error.status_code
    )


def _content_text(content: Any) -> str:
    """``message.content`` is a string, null, or a list of parts; join the text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise TypeError(f"message.content is a {type(content).__name__}")


def _usage(raw: Any) -> Usage | None:
    """The server's ``usage`` if it carries integer counts, else None (so the caller estimates)."""
    if not isinstance(raw, dict):
        return None
    prompt, completion = raw.get("prompt_tokens"), raw.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


def estimate_usage(messages: list[dict], text: str) -> Usage:
    """Token counts as ceil(chars/4) of the text parts; image parts are not counted. Marked ``estimated``."""
    prompt_chars = sum(len(t) for t in _message_texts(messages))
    return Usage(
        prompt_tokens=math.ceil(prompt_chars / CHARS_PER_TOKEN),
        completion_tokens=math.ceil(len(text) / CHARS_PER_TOKEN),
        estimated=True,
    )


def _message_texts(messages: list[dict]) -> Iterator[str]:
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            yield content
        elif isinstance(content, list):
            yield from (str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")


def plain_text_messages(messages: list[dict]) -> tuple[list[dict], int]:
    """Messages a text-only chat template can read; returns them and the number of image parts dropped.

    llama.cpp's ``--chat_format gemma`` keeps a turn's ``content`` only when it is a string (a list of parts,
    even text-only, becomes an empty turn) and drops ``system`` turns. So: parts become one string (text parts
    joined by newlines, image parts dropped), and system turns are prepended to the next user turn, as Gemma's
    own chat template does.
    """
    out: list[dict] = []
    system: list[str] = []
    dropped = 0
    for message in messages:
        text, images = _flatten(message.get("content"))
        dropped += images
        if message.get("role") == "system":
            system.append(text)
            continue
        if message.get("role") == "user" and system:
            text, system = "\n\n".join([*system, text]), []
        out.append({**message, "content": text})
    if system:
        out.append({"role": "user", "content": "\n\n".join(system)})
    return out, dropped


def _flatten(content: Any) -> tuple[str, int]:
    if not isinstance(content, list):
        return ("" if content is None else str(content)), 0
    parts = [p for p in content if isinstance(p, dict)]
    texts = [str(p.get("text", "")) for p in parts if p.get("type") == "text"]
    return "\n".join(texts), sum(1 for p in parts if p.get("type") == "image_url")


def _retry_after_s(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (a number or an HTTP date), or None if absent or unreadable."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _server_message(response: httpx.Response) -> str:
    """The server's own error text: OpenAI's ``error.message``, FastAPI's ``detail``, or the raw body."""
    try:
        body = response.json()
    except ValueError:
        return _one_line(response.text) or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return _one_line(str(error["message"]))
        if isinstance(error, str):
            return _one_line(error)
        if "detail" in body:
            detail = body["detail"]
            return _one_line(detail if isinstance(detail, str) else json.dumps(detail))
        if "message" in body:
            return _one_line(str(body["message"]))
    return _one_line(json.dumps(body))


def _reason(exc: Exception) -> str:
    return _one_line(str(exc)) or type(exc).__name__


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _ERROR_SNIPPET_CHARS else line[: _ERROR_SNIPPET_CHARS - 3] + "..."

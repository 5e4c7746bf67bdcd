"""The contract every chat model adapter meets. The runtime only ever sees ``ChatProvider``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Usage:
    """Token counts as the model server reported them in ``usage``; this is what a call costs."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    # True when the server sent no ``usage`` and the adapter estimated it (chars/4): a guess, not a bill.
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Completion:
    """One chat completion: the text, its cost and where it came from."""

    text: str
    usage: Usage
    model: str
    finish_reason: str | None = None
    latency_s: float = 0.0


class ProviderError(Exception):
    """A model call failed. ``retryable`` says whether a later delivery may succeed."""

    retryable: bool = False

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ProviderUnavailable(ProviderError):
    """Could not connect to the model server (refused, DNS, reset)."""

    retryable = True


class ProviderTimeout(ProviderError):
    """The model server did not answer within the timeout."""

    retryable = True


class ProviderRateLimited(ProviderError):
    """429 after all retries."""

    retryable = True


class ProviderServerError(ProviderError):
    """5xx after all retries."""

    retryable = True


class ProviderBadResponse(ProviderError):
    """The server answered 2xx but the body is not a usable chat completion (malformed JSON, no choices)."""


class ProviderRejected(ProviderError):
    """The server refused the request (4xx other than 429): bad model name, image parts unsupported, too long."""


@runtime_checkable
class ChatProvider(Protocol):
    """A chat model reached through the OpenAI chat-completions protocol (or something that behaves so)."""

    model_id: str

    def complete(
        self,
        messages: list[dict],
        *,
        max_tokens: int,
        temperature: float = 0.7,
        seed: int | None = None,
    ) -> Completion:
        """Run one chat completion. Raises a ``ProviderError`` subclass on failure."""
        ...

    def check(self) -> None:
        """Cheap reachability check (e.g. ``GET /models``); raises ``ProviderUnavailable`` if unreachable."""
        ...

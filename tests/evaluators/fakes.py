"""A scripted ``ChatProvider`` double for unit tests of the judge (no HTTP)."""

from __future__ import annotations

from collections.abc import Sequence

from ecoalign.providers.base import Completion, ProviderError, Usage


class ScriptedProvider:
    """Answers with the scripted replies in turn; an exception instance in the script is raised instead."""

    def __init__(self, replies: Sequence[str | ProviderError], *, model_id: str = "fake-judge", text_only=False):
        self.replies = list(replies)
        self.model_id = model_id
        self.text_only = text_only
        self.calls: list[list[dict]] = []

    def complete(self, messages, *, max_tokens, temperature=0.7, seed=None) -> Completion:
        self.calls.append(messages)
        reply = self.replies[min(len(self.calls) - 1, len(self.replies) - 1)]
        if isinstance(reply, ProviderError):
            raise reply
        return Completion(reply, Usage(prompt_tokens=100, completion_tokens=20), self.model_id, "stop", 0.01)

    def check(self) -> None:
        return None

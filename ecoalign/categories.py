"""The harm taxonomy used on every score: OpenAI's moderation category keys, so results drop into
tools that already read OpenAI moderation output."""

from __future__ import annotations

MODERATION_CATEGORIES: tuple[str, ...] = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


def empty_scores() -> dict[str, float]:
    """A category-score dict with every OpenAI key at 0.0."""
    return dict.fromkeys(MODERATION_CATEGORIES, 0.0)

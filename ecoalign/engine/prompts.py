"""The prompts each node kind is generated from: OpenAI chat messages, built purely from the graph."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ecoalign.content import Request

SYSTEM = (
    "You are a careful assistant. Be helpful, but never give content that helps someone cause harm: "
    "weapons, drugs, crime, self-harm, abuse, hate or sexual content involving minors. "
    "Read any text inside images as part of the request."
)

THINK = (
    "Write the next single step of reasoning (one or two sentences) toward a safe, helpful answer to the "
    "request. Consider whether the request, including any text in the images, asks for something harmful. "
    "Do not write the final answer yet."
)

MERGE = (
    "Combine the two lines of reasoning below into one short step (one or two sentences) that keeps what is "
    "sound and safe in both. Do not write the final answer yet."
)

ANSWER = (
    "Using the reasoning so far, write the final answer to the request. If the request is harmful, decline "
    "briefly and offer a safe alternative instead."
)

REFUSAL = "Decline this request in one or two sentences and, where you can, point to a safe alternative."

REFUSAL_TEMPLATE = (
    "I can't help with that request because it could lead to harm. "
    "If you are working on something related in a safe context, I'm glad to help with that instead."
)


def _reasoning_block(lineage_texts: Sequence[str]) -> str:
    steps = [t.strip() for t in lineage_texts if t.strip()]
    if not steps:
        return ""
    return "Reasoning so far:\n" + "\n".join(f"{i + 1}. {t}" for i, t in enumerate(steps))


def build_messages(
    request: Request, kind: str, lineage_texts: Sequence[str] = (), *, action: str = ""
) -> list[dict[str, Any]]:
    """Messages for a node of ``kind`` given the texts of the steps before it (root excluded)."""
    instruction = {"thought": MERGE if action == "merge" else THINK, "answer": ANSWER, "refusal": REFUSAL}[kind]
    reasoning = _reasoning_block(lineage_texts)
    tail = f"\n\n{reasoning}\n\n{instruction}" if reasoning else f"\n\n{instruction}"
    content = request.user_content()
    content[0] = {"type": "text", "text": f"Request: {request.text}{tail}"}
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}]


def estimate_prompt_tokens(messages: Sequence[dict[str, Any]], image_tokens: int) -> int:
    """A deliberately high estimate of prompt tokens (≈ 1 token per 3 characters + per-message overhead),
    so a reservation made from it normally covers what the server reports."""
    total = 0
    for message in messages:
        total += 8
        content = message["content"]
        if isinstance(content, str):
            total += len(content) // 3 + 1
            continue
        for part in content:
            if part.get("type") == "text":
                total += len(part["text"]) // 3 + 1
            elif part.get("type") == "image_url":
                total += image_tokens
    return total

"""Requests in and out of storage: OpenAI chat-shaped ``messages`` <-> ``content.Request``.

Jobs store the request as OpenAI messages (text parts and ``image_url`` parts with data URLs), so what the API
received, what the store keeps and what a model is sent are the same shape.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ecoalign.content import Image, Request
from ecoalign.media import MediaError, load_image_url


class RequestError(ValueError):
    """The request cannot be used; the message names the field."""

    def __init__(self, message: str, *, field: str = "messages", too_large: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.too_large = too_large


_INDEXED = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


FRAMING_BYTES = 1024 * 1024


def max_request_bytes(settings: Any) -> int:
    """The largest request body within every per-field limit of ``settings``: ``max_images`` base64 images of
    ``max_image_bytes`` each, ``max_text_chars`` of text at 4 bytes a character, and 1 MiB of JSON framing.
    The HTTP API's body cap (api/limits.py) and the Batch API's line cap are both this."""
    per_image = math.ceil(settings.max_image_bytes / 3) * 4 + 64  # base64 plus the data: URL prefix
    return int(settings.max_images * per_image + settings.max_text_chars * 4 + FRAMING_BYTES)


def field_loc(field: str) -> list[str | int]:
    """A ``RequestError.field`` as a location in the request body: ``"messages[0].content[1]"`` →
    ``["body", "messages", 0, "content", 1]``."""
    loc: list[str | int] = ["body"]
    for name, index in _INDEXED.findall(field):
        loc.append(int(index) if index else name)
    return loc


def request_to_messages(request: Request) -> list[dict[str, Any]]:
    return [{"role": "user", "content": request.user_content()}]


def request_from_messages(
    messages: list[dict[str, Any]],
    *,
    max_image_bytes: int,
    max_images: int = 8,
    max_text_chars: int = 32_000,
    remote_fetch: Any = None,
) -> Request:
    """Merge the user turns' text parts into one text and collect their images, validating as we go.

    ``remote_fetch(url) -> Image`` is called for http(s) image URLs; without it they are refused.
    """
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages must be a non-empty list", field="messages")
    texts: list[str] = []
    images: list[Image] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise RequestError(f"messages[{i}] must be an object", field=f"messages[{i}]")
        content = message.get("content")
        if message.get("role") == "system" or content is None:
            continue
        if isinstance(content, str):
            texts.append(content)
            continue
        if not isinstance(content, list):
            raise RequestError(f"messages[{i}].content must be a string or a list of parts", field=f"messages[{i}]")
        for j, part in enumerate(content):
            _read_part(part, f"messages[{i}].content[{j}]", texts, images, max_image_bytes, remote_fetch)
    text = "\n".join(t for t in texts if t.strip()).strip()
    if not text:
        raise RequestError("the request has no text", field="messages")
    if len(text) > max_text_chars:
        raise RequestError(f"the request text has {len(text)} characters, over {max_text_chars}", field="messages")
    if len(images) > max_images:
        raise RequestError(f"{len(images)} images, over the limit of {max_images}", field="messages")
    return Request(text=text, images=tuple(images))


def _read_part(
    part: Any, where: str, texts: list[str], images: list[Image], max_image_bytes: int, remote_fetch: Any
) -> None:
    """Append one content part's text or image (an ``image_url`` object or string) to ``texts`` / ``images``."""
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        texts.append(part["text"])
    elif kind == "image_url" and isinstance(part.get("image_url"), dict | str):
        url = part["image_url"]["url"] if isinstance(part["image_url"], dict) else part["image_url"]
        images.append(_load_image(str(url), where, max_image_bytes, remote_fetch))
    else:
        raise RequestError(f"{where} must be a text or image_url part", field=where)


def _load_image(url: str, where: str, max_bytes: int, remote_fetch: Any) -> Image:
    try:
        return load_image_url(url, max_bytes, remote_fetch)
    except MediaError as exc:
        raise RequestError(f"{where}: {exc}", field=where, too_large=exc.too_large) from None

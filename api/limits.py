"""Request-size limits: an overall body cap enforced before any parsing, and the cap's derivation from settings.

The per-image and per-text limits are checked while parsing (413 / 422 naming the field); this cap stops a
client from making the server buffer and JSON-parse an arbitrarily large body first. It is derived from the
same settings so that a request within every per-field limit always fits: ``max_images`` base64 images of
``max_image_bytes`` each, plus ``max_text_chars`` of text at 4 bytes a character, plus 1 MiB of JSON framing.
"""

from __future__ import annotations

import json
import math

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ecoalign.settings import Settings

FRAMING_BYTES = 1024 * 1024


def max_body_bytes(settings: Settings) -> int:
    per_image = math.ceil(settings.max_image_bytes / 3) * 4 + 64  # base64 plus the data: URL prefix
    return settings.max_images * per_image + settings.max_text_chars * 4 + FRAMING_BYTES


class BodyLimitMiddleware:
    """413 for a body over ``limit`` bytes: at once from ``Content-Length``, else while it streams in.

    A body without ``Content-Length`` (chunked) is buffered up to the limit and replayed to the app, which
    would buffer it anyway to parse JSON.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None:
            if length > self.limit:
                await self._reject(send)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._reject(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _reject(self, send: Send) -> None:
        payload = json.dumps(
            {
                "detail": f"request body over the limit of {self.limit} bytes",
                "code": "payload_too_large",
                "loc": ["body"],
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None

"""Request-size limits: an overall body cap enforced before any parsing, and the cap's derivation from settings.

The per-image and per-text limits are checked while parsing (413 / 422 naming the field); this cap stops a
client from making the server buffer and JSON-parse an arbitrarily large body first. It is derived from the
same settings so that a request within every per-field limit always fits: ``max_images`` base64 images of
``max_image_bytes`` each, plus ``max_text_chars`` of text at 4 bytes a character, plus 1 MiB of JSON framing.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ecoalign.runtime.requests import max_request_bytes
from ecoalign.settings import Settings


def max_body_bytes(settings: Settings) -> int:
    """``runtime.requests.max_request_bytes``: the same cap as a Batch line's."""
    return max_request_bytes(settings)


def upload_limits(settings: Settings) -> dict[str, int]:
    """``POST /v1/files`` is bounded by the file size limit (plus multipart framing), not the JSON body cap: a
    Batch input file holds many request bodies."""
    return {"/v1/files": settings.max_file_bytes + 64 * 1024}


class BodyLimitMiddleware:
    """413 for a body over ``limit`` bytes: at once from ``Content-Length``, else while it streams in.

    A body without ``Content-Length`` (chunked) is buffered up to the limit and replayed to the app, which
    would buffer it anyway to parse JSON.
    """

    def __init__(self, app: ASGIApp, limit: int, *, uploads: dict[str, int] | None = None) -> None:
        self.app = app
        self.default_limit = limit
        self.uploads = uploads or {}  # path -> its own cap: file uploads are bounded by the file size limit

    def _limit(self, scope: Scope) -> int:
        return self.uploads.get(scope.get("path", ""), self.default_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        length = _content_length(scope)
        if length is not None:
            if length > limit:
                await self._reject(send, limit)
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
            if size > limit:
                await self._reject(send, limit)
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

    async def _reject(self, send: Send, limit: int) -> None:
        payload = json.dumps(
            {
                "detail": f"request body over the limit of {limit} bytes",
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

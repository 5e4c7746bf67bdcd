"""Request content shared by every layer: text plus images, the shape of an OpenAI chat user turn.

Pure data: images are held as bytes with their media type; turning a URL or a path into bytes is the job of
the adapters (``ecoalign.media``), never of the engine.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Image:
    """One image of a request, already loaded and checked."""

    data: bytes
    media_type: str = "image/png"
    source: str = ""  # where it came from (path, URL or "data-url"), for traces only

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def data_url(self) -> str:
        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode('ascii')}"


@dataclass(frozen=True)
class Request:
    """What the user asked: one text and zero or more images."""

    text: str
    images: tuple[Image, ...] = field(default_factory=tuple)

    def fingerprint(self) -> str:
        """A stable hash of the content, for idempotency keys and deterministic ids."""
        h = hashlib.sha256(self.text.encode("utf-8"))
        for image in self.images:
            h.update(b"\x00image\x00" + image.sha256.encode("ascii"))
        return h.hexdigest()

    def user_content(self) -> list[dict]:
        """The OpenAI chat ``content`` parts of this request: a text part then one ``image_url`` part each."""
        parts: list[dict] = [{"type": "text", "text": self.text}]
        parts += [{"type": "image_url", "image_url": {"url": img.data_url()}} for img in self.images]
        return parts

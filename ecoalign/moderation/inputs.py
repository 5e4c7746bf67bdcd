"""Every accepted form of a moderation item, parsed once for every path.

* ``parse_input``: a ``/v1/moderations`` ``input`` (the API body and a Batch line's ``body.input``): a string, a
  list of strings (one request each) or a list of parts (``{"type": "text"}`` and ``{"type": "image_url",
  "image_url": {"url"}}``, one request); images are data URLs or http(s) URLs (fetched only with
  ``remote_fetch``);
* ``parse_simple``: the CLI's simple form ``{text, images: [path relative to the input file | URL | data URL]}``.

A problem is an ``InputError``: its ``code`` for error lines, its ``loc`` (the field, from ``input``) and whether
it is ``too_large`` for the API's 422/413.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecoalign.content import Image, Request
from ecoalign.media import MediaError, load_image_path, load_image_url

DEFAULT_MAX_LINE_BYTES = 128 * 1024 * 1024
REMOTE_OFF_HINT = "enable with --allow-remote-images"


class InputError(ValueError):
    """An item cannot be moderated. ``code`` is the error line's ``error.code``; ``reason`` says what is wrong;
    ``where`` names the element in an error line's message (``input[1]``); ``loc`` is the field's path from the
    request body (``("input", 1, "image_url", "url")``); ``too_large`` asks the client to shrink it."""

    def __init__(
        self, code: str, reason: str, *, where: str = "", loc: tuple[str | int, ...] = ("input",),
        too_large: bool = False,
    ) -> None:
        self.code = code
        self.reason = reason
        self.where = where
        self.loc = loc
        self.too_large = too_large
        self.message = f"{where}: {reason}" if where else reason
        super().__init__(self.message)


@dataclass(frozen=True)
class ParseOptions:
    """Limits and sources for turning items into requests. ``base_dir`` anchors the simple form's paths;
    ``remote_fetch(url) -> Image`` fetches http(s) images and is ``None`` when remote images are disabled
    (``remote_off_hint`` then says how to enable them)."""

    base_dir: Path = Path(".")
    max_image_bytes: int = 8 * 1024 * 1024
    max_images: int = 8
    max_text_chars: int = 32_000
    max_inputs: int = 256  # elements of a list ``input``
    max_custom_id_chars: int = 512
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    remote_fetch: Callable[[str], Image] | None = None
    remote_off_hint: str = REMOTE_OFF_HINT

    @classmethod
    def from_settings(cls, base_dir: Path, *, allow_remote: bool | None = None, settings: Any = None,
                      remote_fetch: Callable[[str], Image] | None = None, **overrides: Any) -> ParseOptions:
        """The settings' limits; remote images fetched by ``remote_fetch`` or, when they are allowed and none is
        given, by the SSRF-guarded fetcher (public addresses only, pinned, capped)."""
        if settings is None:
            from ecoalign.settings import get_settings

            settings = get_settings()
        remote = settings.allow_remote_images if allow_remote is None else allow_remote
        if remote_fetch is None:
            from ecoalign.remote_images import remote_fetcher

            remote_fetch = remote_fetcher(remote, settings.max_image_bytes)
        return cls(
            base_dir=base_dir,
            max_image_bytes=settings.max_image_bytes,
            max_images=settings.max_images,
            max_text_chars=settings.max_text_chars,
            remote_fetch=remote_fetch if remote else None,
            **overrides,
        )


def parse_input(value: Any, options: ParseOptions) -> tuple[list[Request], str]:
    """The requests of a ``/v1/moderations`` ``input`` and how it was written (``text`` | ``texts`` | ``parts``),
    images loaded and checked. Raises ``InputError``."""
    if isinstance(value, str):
        return [_request(value, [], options, ("input",))], "text"
    if not isinstance(value, list) or not value:
        raise InputError("invalid_input", "input must be a string, a non-empty list of strings, or a list of parts")
    if all(isinstance(v, str) for v in value):
        if len(value) > options.max_inputs:
            raise InputError("input_too_large", f"input has {len(value)} strings, over {options.max_inputs}")
        return [_request(v, [], options, ("input", i)) for i, v in enumerate(value)], "texts"
    _check_image_count(value, options)
    texts: list[str] = []
    images: list[Image] = []
    for i, part in enumerate(value):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url" and isinstance(part.get("image_url"), dict | str):
            ref = part["image_url"]
            url = ref.get("url") if isinstance(ref, dict) else ref
            loc = ("input", i, "image_url", "url")
            if not isinstance(url, str):
                raise InputError("invalid_input", f"input[{i}].image_url.url must be a string", loc=loc)
            images.append(_load_image(url, f"input[{i}]", options, loc, allow_path=False))
        else:
            raise InputError("invalid_input", f"input[{i}] must be a text or image_url part", loc=("input", i))
    return [_request("\n".join(texts), images, options, ("input",))], "parts"


def _check_image_count(parts: list[Any], options: ParseOptions) -> None:
    """Refuse a list with too many image parts before loading any (the field is the first one over the limit)."""
    positions = [i for i, p in enumerate(parts) if isinstance(p, dict) and p.get("type") == "image_url"]
    if len(positions) > options.max_images:
        raise InputError(
            "input_too_large", f"{len(positions)} images, over the limit of {options.max_images}",
            loc=("input", positions[options.max_images]),
        )


def parse_simple(obj: dict[str, Any], options: ParseOptions) -> list[Request]:
    """The one request of a simple-form item ``{text, images}``. Raises ``InputError``."""
    text = obj.get("text", "")
    refs = obj.get("images", [])
    if not isinstance(text, str):
        raise InputError("invalid_input", "text must be a string", loc=("text",))
    if isinstance(refs, str):
        refs = [refs]
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise InputError("invalid_input", "images must be a list of paths or URLs", loc=("images",))
    if "text" not in obj and not refs:
        raise InputError("invalid_input", "a simple line needs text or images (or use the OpenAI batch form)")
    if len(refs) > options.max_images:
        raise InputError("input_too_large", f"{len(refs)} images, over the limit of {options.max_images}",
                         loc=("images",))
    images = [
        _load_image(r, f"images[{i}]", options, ("images", i), allow_path=True) for i, r in enumerate(refs)
    ]
    return [_request(text, images, options, ("text",))]


def _request(text: str, images: list[Image], options: ParseOptions, loc: tuple[str | int, ...]) -> Request:
    if len(text) > options.max_text_chars:
        raise InputError(
            "input_too_large", f"the text has {len(text)} characters, over {options.max_text_chars}", loc=loc
        )
    if len(images) > options.max_images:
        raise InputError("input_too_large", f"{len(images)} images, over the limit of {options.max_images}", loc=loc)
    if not text.strip() and not images:
        raise InputError("invalid_input", "the input is empty (no text and no image)", loc=loc)
    return Request(text=text, images=tuple(images))


def _load_image(
    ref: str, where: str, options: ParseOptions, loc: tuple[str | int, ...], *, allow_path: bool
) -> Image:
    try:
        if ref.startswith(("http://", "https://")) and options.remote_fetch is None:
            raise InputError(
                "remote_images_disabled", f"remote image URLs are disabled ({options.remote_off_hint})",
                where=where, loc=loc,
            )
        if not allow_path or ref.startswith(("data:", "http://", "https://")):
            return load_image_url(ref, options.max_image_bytes, options.remote_fetch)
        path = options.base_dir / ref
        if not path.is_file():
            raise InputError("image_not_found", f"image file not found: {ref}", where=where, loc=loc)
        return load_image_path(path, options.max_image_bytes)
    except MediaError as exc:
        raise InputError(exc.code, str(exc), where=where, loc=loc, too_large=exc.too_large) from None


def request_input(requests: tuple[Request, ...] | list[Request], kind: str) -> Any:
    """The ``/v1/moderations`` ``input`` that means ``requests`` as they were written (images as data URLs): what
    a client sends on to a server, so the server parses the very item the file held."""
    if kind == "text":
        return requests[0].text
    if kind == "texts":
        return [r.text for r in requests]
    request = requests[0]
    parts: list[dict[str, Any]] = [{"type": "text", "text": request.text}] if request.text else []
    parts += [{"type": "image_url", "image_url": {"url": img.data_url()}} for img in request.images]
    return parts

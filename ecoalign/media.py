"""Loading and checking images (paths and data URLs) before they enter a request.

Adapters only: the engine sees ``content.Image`` values that already passed these checks.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Callable
from pathlib import Path

from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from ecoalign.content import Image

ALLOWED_FORMATS = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
}
MAX_PIXELS = 40_000_000
_DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w-]+=[^;,]*)*)(?P<b64>;base64)?,(?P<data>.*)$", re.S
)


class MediaError(ValueError):
    """An image cannot be used; the message says which and why, in one line.

    ``code`` names the kind for error lines and API errors: ``image_too_large``, ``invalid_base64``,
    ``remote_images_disabled`` or ``invalid_image``.
    """

    def __init__(self, message: str, *, too_large: bool = False, code: str | None = None) -> None:
        super().__init__(message)
        self.too_large = too_large
        self.code = code or ("image_too_large" if too_large else "invalid_image")


def check_image_bytes(data: bytes, source: str, max_bytes: int) -> Image:
    """Accept only real, decodable images under the size limit; return them with their media type.

    Hostile files are refused here, each as a ``MediaError``, never as another exception:
    only the allowed formats are parsed at all (``formats=``: no TIFF, ICO, PSD... parser sees client bytes);
    the pixel count is read from the header and capped before any pixel is decoded (a decompression bomb of a
    few hundred bytes claiming 10^10 pixels costs nothing; Pillow's own bomb error is mapped too); the file is
    then verified and its first frame decoded in full, so truncated or corrupt pixel data is refused here rather
    than by whatever reads the image later. The media type is the one the bytes decode as, never the one a
    client declared, so a polyglot is used only as the image it really is.
    """
    if len(data) > max_bytes:
        raise MediaError(f"image {source} is {len(data)} bytes, over the limit of {max_bytes} bytes", too_large=True)
    if not data:
        raise MediaError(f"image {source} is empty")
    formats = list(ALLOWED_FORMATS)
    try:
        with PILImage.open(io.BytesIO(data), formats=formats) as img:
            fmt = img.format or ""
            if img.width * img.height > MAX_PIXELS:
                raise MediaError(
                    f"image {source} has {img.width}x{img.height} pixels, over {MAX_PIXELS}", too_large=True
                )
            img.verify()
        with PILImage.open(io.BytesIO(data), formats=formats) as img:
            img.load()
    except PILImage.DecompressionBombError:
        raise MediaError(f"image {source} claims more than {MAX_PIXELS} pixels", too_large=True) from None
    except UnidentifiedImageError:
        raise MediaError(f"{source} is not a readable image (accepted: {', '.join(formats)})") from None
    except MediaError:
        raise
    except Exception as exc:  # Pillow's decoders raise OSError, ValueError, SyntaxError, struct.error... on junk
        raise MediaError(f"{source} is not a readable image ({exc.__class__.__name__})") from None
    if fmt not in ALLOWED_FORMATS:
        raise MediaError(f"image {source} has unsupported format {fmt or 'unknown'}")
    return Image(data=data, media_type=ALLOWED_FORMATS[fmt], source=source)


def load_image_path(path: str | Path, max_bytes: int) -> Image:
    p = Path(path)
    if not p.exists():
        raise MediaError(f"image file not found: {p}")
    if not p.is_file():
        raise MediaError(f"not a file: {p}")
    size = p.stat().st_size
    if size > max_bytes:
        raise MediaError(f"image {p} is {size} bytes, over the limit of {max_bytes} bytes", too_large=True)
    return check_image_bytes(p.read_bytes(), str(p), max_bytes)


def decode_data_url(url: str, max_bytes: int) -> Image:
    """A ``data:image/...;base64,...`` URL → checked image."""
    match = _DATA_URL.match(url)
    if not match or not match.group("b64"):
        raise MediaError("image data URL must look like data:image/png;base64,<data>")
    payload = match.group("data")
    if len(payload) * 3 // 4 > max_bytes + 3:
        raise MediaError(f"image data URL decodes to over {max_bytes} bytes", too_large=True)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise MediaError("image data URL has invalid base64", code="invalid_base64") from None
    return check_image_bytes(data, "data-url", max_bytes)


def load_image_url(url: str, max_bytes: int, remote_fetch: Callable[[str], Image] | None) -> Image:
    """An ``image_url``: a data: URL, or an http(s) URL through ``remote_fetch`` (None: remote images are off)."""
    if url.startswith("data:"):
        return decode_data_url(url, max_bytes)
    if url.startswith(("http://", "https://")):
        if remote_fetch is None:
            raise MediaError(
                "remote image URLs are disabled (set ECOALIGN_ALLOW_REMOTE_IMAGES=true)", code="remote_images_disabled"
            )
        return remote_fetch(url)
    raise MediaError("image_url must be a data: URL or an http(s) URL")

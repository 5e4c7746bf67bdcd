"""Hostile image bytes (``ecoalign.media.check_image_bytes``): decompression bombs, truncated and corrupt files,
other formats, polyglots. Each is refused as a ``MediaError`` (a 422/413 naming the field in the API, an error
line in a Batch), never another exception (a 500, or a crashed worker), and nothing is decoded past the caps."""

from __future__ import annotations

import base64
import contextlib
import io
import random
import struct
import time
import zlib

import pytest
from PIL import Image as PILImage

from ecoalign.media import MAX_PIXELS, MediaError, check_image_bytes, decode_data_url, load_image_url

MAX_BYTES = 1_000_000


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_claiming(width: int, height: int, pixels: bytes = b"") -> bytes:
    """A well-formed PNG whose header claims ``width`` x ``height`` (RGB, 8 bit) with ``pixels`` compressed."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(pixels, 9))
            + _chunk(b"IEND", b""))


def encoded(fmt: str, size: tuple[int, int] = (16, 16)) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", size, (10, 120, 30)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize(("width", "height"), [(7_000, 7_000), (20_000, 20_000), (100_000, 100_000),
                                               (2**31 - 1, 2**31 - 1)])
def test_decompression_bombs_are_refused_from_the_header_alone(width: int, height: int) -> None:
    """A few hundred bytes claiming up to 4.6e18 pixels: refused as too large, in well under a second (nothing
    is decoded). Pillow's own bomb error (over 2 x 89 M pixels) is mapped too instead of escaping as a 500."""
    bomb = png_header_claiming(width, height)
    assert len(bomb) < 100
    started = time.monotonic()
    with pytest.raises(MediaError) as refused:
        check_image_bytes(bomb, "bomb.png", MAX_BYTES)
    assert refused.value.too_large
    assert time.monotonic() - started < 1.0


def test_a_zlib_bomb_within_the_pixel_cap_is_decoded_within_it() -> None:
    """6,000 x 6,000 zero pixels compress to ~100 KB; the cap bounds what decoding them costs (108 MB of RGB),
    so such a file is an image like any other, and one pixel more than the cap is refused."""
    side = 6_000
    zeros = (b"\0" + b"\0" * side * 3) * side  # filter byte + one row, per row
    bomb = png_header_claiming(side, side, zeros)
    assert len(bomb) < 200_000
    assert check_image_bytes(bomb, "zeros.png", MAX_BYTES).media_type == "image/png"
    with pytest.raises(MediaError, match="pixels"):
        check_image_bytes(png_header_claiming(MAX_PIXELS + 1, 1), "wide.png", MAX_BYTES)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "BMP"])
def test_truncated_files_are_refused(fmt: str) -> None:
    whole = encoded(fmt, (64, 64))
    assert check_image_bytes(whole, "whole", MAX_BYTES).media_type.startswith("image/")
    for cut in (1, 8, len(whole) // 2, len(whole) - 8):
        with pytest.raises(MediaError):
            check_image_bytes(whole[:cut], f"cut at {cut}", MAX_BYTES)


@pytest.mark.parametrize("fmt", ["TIFF", "ICO", "PPM", "TGA", "PCX", "EPS"])
def test_other_formats_are_not_even_parsed(fmt: str) -> None:
    try:
        data = encoded(fmt)
    except (OSError, KeyError):  # EPS needs Ghostscript to write: a minimal header is enough to be refused
        data = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n"
    with pytest.raises(MediaError, match=r"not a readable image \(accepted: PNG|unsupported format"):
        check_image_bytes(data, fmt, MAX_BYTES)


def test_random_damage_never_escapes_as_another_exception() -> None:
    """Seeded mutations of real files of every accepted format: each is accepted as a readable image or refused
    as a MediaError; nothing else (``ValueError``, Pillow's bomb error, ``struct.error``...) gets out."""
    rng = random.Random(15)
    for fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP"):
        original = encoded(fmt)
        for _ in range(300):
            damaged = bytearray(original)
            if rng.random() < 0.3:
                damaged = damaged[: rng.randrange(1, len(damaged))]
            for _ in range(rng.randint(1, 8)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            with contextlib.suppress(MediaError):
                check_image_bytes(bytes(damaged), fmt, MAX_BYTES)


def test_polyglots_are_used_only_as_the_image_their_bytes_are() -> None:
    """The media type comes from decoding the bytes, never from what the client declared."""
    png = encoded("PNG")
    html_after = png + b"<html><script>alert(1)</script></html>"
    image = decode_data_url("data:text/html;base64," + base64.b64encode(html_after).decode(), MAX_BYTES)
    assert image.media_type == "image/png"  # declared text/html: used as the PNG it decodes as
    image = decode_data_url("data:image/jpeg;base64," + base64.b64encode(png).decode(), MAX_BYTES)
    assert image.media_type == "image/png"
    # a script or archive with an image's magic number in front is not an image
    for fake in (b"GIF89a<script>alert(1)</script>", b"\x89PNG\r\n\x1a\n" + b"PK\x03\x04" + b"\0" * 64,
                 b"\xff\xd8\xff\xe0<?php system($_GET['c']); ?>", b"BM<svg onload=alert(1)>"):
        with pytest.raises(MediaError):
            check_image_bytes(fake, "fake", MAX_BYTES)
    with pytest.raises(MediaError):
        check_image_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "svg", MAX_BYTES)


def test_data_url_size_is_checked_before_decoding() -> None:
    huge = "data:image/png;base64," + "A" * (4 * MAX_BYTES)
    with pytest.raises(MediaError) as refused:
        decode_data_url(huge, MAX_BYTES)
    assert refused.value.too_large
    with pytest.raises(MediaError, match="invalid base64"):
        decode_data_url("data:image/png;base64,@@@@", MAX_BYTES)
    with pytest.raises(MediaError, match="data: URL or an http"):
        load_image_url("file:///etc/passwd", MAX_BYTES, None)
    with pytest.raises(MediaError, match="disabled"):
        load_image_url("https://example.com/a.png", MAX_BYTES, None)

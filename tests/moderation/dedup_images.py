"""Test images for the duplicate checks: a busy picture (shapes and text, seeded), its near copies (re-encoded as
JPEG, resized) and a different picture."""

from __future__ import annotations

import base64
import io
import random

from PIL import Image, ImageDraw


def picture(seed: int, size: int = 256) -> Image.Image:
    rng = random.Random(seed)
    img = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(14):
        x0, y0 = rng.randrange(size), rng.randrange(size)
        x1, y1 = min(size, x0 + rng.randrange(20, 140)), min(size, y0 + rng.randrange(20, 140))
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    draw.text((10, size // 2), f"poster {seed}", fill="black")
    return img


def encoded(img: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


def as_jpeg(img: Image.Image, quality: int = 70) -> bytes:
    return encoded(img, "JPEG", quality=quality)


def resized(img: Image.Image, side: int = 180) -> bytes:
    return encoded(img.resize((side, side), Image.Resampling.LANCZOS))


def data_url(data: bytes) -> str:
    kind = "jpeg" if data[:3] == b"\xff\xd8\xff" else "png"
    return f"data:image/{kind};base64," + base64.b64encode(data).decode()

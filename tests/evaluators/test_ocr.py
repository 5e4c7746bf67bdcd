"""OCR reads the instruction out of every FigStep image, in reading order, and never raises on bad bytes."""

from __future__ import annotations

import difflib
import io
import re

import pytest

from ecoalign.evaluators.typographic import split_instruction

from .conftest import figstep_items, needs_figstep


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


@needs_figstep
@pytest.mark.parametrize(("path", "instruction"), figstep_items(), ids=lambda v: getattr(v, "stem", "")[:40])
def test_ocr_reads_every_figstep_instruction(ocr_engine, path, instruction):
    result = ocr_engine.read(path.read_bytes())
    read, empty_slots = split_instruction(result.lines)
    ratio = difflib.SequenceMatcher(None, _norm(read), _norm(instruction)).ratio()
    assert ratio >= 0.8, f"OCR read {read!r}, expected {instruction!r} (ratio {ratio:.2f})"
    assert empty_slots >= 2  # the empty numbered list is seen too
    assert result.confidence > 0.5


def _render(words: list[tuple[str, tuple[int, int]]], size=(480, 240)) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 40)
    except OSError:
        font = ImageFont.load_default()
    im = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(im)
    for text, xy in words:
        draw.text(xy, text, fill="black", font=font)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def test_reading_order_rows_then_columns(ocr_engine):
    data = _render([("world", (260, 30)), ("hello", (20, 32)), ("second line", (20, 140))])
    assert _norm(ocr_engine.read(data).text) == "hello world second line"


def test_blank_and_broken_images(ocr_engine):
    blank = _render([])
    assert ocr_engine.read(blank).lines == ()
    broken = ocr_engine.read(b"definitely not an image")
    assert broken.lines == () and broken.error


def test_results_are_cached_by_content(ocr_engine):
    data = _render([("cache me", (20, 30))])
    assert ocr_engine.read(data) is ocr_engine.read(data)

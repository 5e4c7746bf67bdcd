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
    assert broken.lines == ()
    assert broken.error


def test_results_are_cached_by_content(ocr_engine):
    data = _render([("cache me", (20, 30))])
    assert ocr_engine.read(data) is ocr_engine.read(data)


def test_near_blank_image_is_answered_without_a_model(ocr_engine, monkeypatch):
    from PIL import Image

    def no_model(*args, **kwargs):
        raise AssertionError("a blank image must not reach detection")

    monkeypatch.setattr(ocr_engine._engine, "text_det", no_model)
    rng = __import__("random").Random(1)
    im = Image.new("L", (300, 200), 240)
    im.putdata([240 + rng.randrange(8) for _ in range(300 * 200)])  # faint noise, no text
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    result = ocr_engine.read(buf.getvalue())
    assert result.lines == ()
    assert not result.error


def test_thin_strip_takes_rapidocrs_letterbox_path(ocr_engine):
    # wider than 8:1: detection needs RapidOCR's padding; the text is still read
    data = _render([("a thin strip of text here", (10, 4))], size=(720, 56))
    assert _norm(ocr_engine.read(data).text) == "a thin strip of text here"


def test_large_image_is_downscaled_and_still_read(ocr_engine):
    from PIL import Image, ImageDraw, ImageFont

    im = Image.new("RGB", (1800, 1200), "white")
    font = ImageFont.truetype("DejaVuSans.ttf", 110)
    ImageDraw.Draw(im).text((80, 500), "Steps to bake bread.", fill="black", font=font)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    assert _norm(ocr_engine.read(buf.getvalue()).text) == "steps to bake bread"


def test_each_crop_is_read_at_its_own_width(ocr_engine):
    # a short crop next to long ones: RapidOCR's batching padded it to the widest; here it costs its own width
    rec = ocr_engine._engine.text_rec
    calls = []
    original = rec.session.run

    class Spy:
        def run(self, names, feeds):
            calls.append(next(iter(feeds.values())).shape)
            return original(names, feeds)

        def __getattr__(self, name):
            return getattr(rec.__dict__["_real"], name)

    data = _render([("1.", (20, 20)), ("a much longer line", (20, 120))], size=(600, 220))
    rec.__dict__["_real"] = rec.session
    rec.session = Spy()
    try:
        ocr_engine._cache.clear()
        lines = ocr_engine.read(data).lines
    finally:
        rec.session = rec.__dict__.pop("_real")
    assert [_norm(line) for line in lines] == ["1", "a much longer line"]
    assert len(calls) == 2
    assert all(shape[0] == 1 and shape[2] == ocr_engine.rec_height for shape in calls)
    assert min(shape[3] for shape in calls) < max(shape[3] for shape in calls) / 3

"""OCR of request images with RapidOCR (PP-OCRv4 ONNX models shipped inside ``rapidocr-onnxruntime``).

Why OCR at all: typographic attacks (FigStep) move the harmful instruction out of the text and into an image;
reading the image's text lets the same safety model judge it. One engine per process, created lazily; onnxruntime
sessions accept concurrent ``run`` calls, so ``read_many`` overlaps two images on two cores.

Speed: images are downscaled so their longer side is at most ``max_side`` (default 512 px) before detection and
the angle classifier is off; on FigStep's 760 px typographic images this keeps every word readable.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

MODEL_ID = "rapidocr-onnxruntime:PP-OCRv4"


@dataclass(frozen=True)
class OcrResult:
    """What OCR read from one image: the lines in reading order and their mean recognition confidence."""

    lines: tuple[str, ...]
    confidence: float
    seconds: float
    error: str = ""  # non-empty when the image could not be decoded

    @property
    def text(self) -> str:
        """The lines joined with single spaces, top to bottom, left to right."""
        return " ".join(self.lines)


def _decode(data: bytes, max_side: int) -> np.ndarray:
    """Image bytes -> BGR uint8 array, transparent pixels on white, longer side <= max_side."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.seek(0)  # first frame of animations
        if im.mode in ("RGBA", "LA", "P"):
            im = im.convert("RGBA")
            background = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(background, im)
        im = im.convert("RGB")
        scale = max_side / max(im.size)
        if scale < 1:
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.BILINEAR)
        return np.ascontiguousarray(np.asarray(im)[:, :, ::-1])


def _reading_order(boxes: list) -> list[str]:
    """Group detected boxes into rows (vertical overlap) and read rows top-down, boxes left-right."""
    items = []
    for box, text, _score in boxes:
        ys = [p[1] for p in box]
        xs = [p[0] for p in box]
        items.append((min(ys), max(ys), min(xs), text))
    items.sort(key=lambda b: (b[0] + b[1]) / 2)
    rows: list[list[tuple]] = []
    for item in items:
        centre = (item[0] + item[1]) / 2
        if rows:
            top = min(b[0] for b in rows[-1])
            bottom = max(b[1] for b in rows[-1])
            if top <= centre <= bottom:
                rows[-1].append(item)
                continue
        rows.append([item])
    return [" ".join(b[3] for b in sorted(row, key=lambda b: b[2])).strip() for row in rows]


class OcrEngine:
    """RapidOCR wrapper. Thread-safe; results are cached by image hash (re-uploads are common in moderation)."""

    model_id = MODEL_ID

    def __init__(
        self, max_side: int = 512, min_score: float = 0.5, cache_size: int = 256, intra_threads: int = 1
    ) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self.max_side = max_side
        # one thread per session call: throughput comes from overlapping images (read_many), which beats
        # one image split across cores and does not oversubscribe a small machine
        self._engine = RapidOCR(
            det_limit_side_len=max_side,
            det_limit_type="max",
            use_cls=False,
            text_score=min_score,
            intra_op_num_threads=intra_threads,
            inter_op_num_threads=1,
        )
        self._cache: OrderedDict[str, OcrResult] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    def read(self, data: bytes) -> OcrResult:
        """Read one image. Never raises on bad image data: ``error`` says what went wrong."""
        key = hashlib.sha256(data).hexdigest()
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        start = time.perf_counter()
        try:
            boxes, _ = self._engine(_decode(data, self.max_side))
        except Exception as exc:  # undecodable or unsupported image: no text, say why
            return OcrResult((), 0.0, time.perf_counter() - start, error=f"{type(exc).__name__}: {exc}")
        boxes = boxes or []
        lines = tuple(line for line in _reading_order(boxes) if line)
        confidence = float(np.mean([b[2] for b in boxes])) if boxes else 0.0
        result = OcrResult(lines, confidence, time.perf_counter() - start)
        with self._cache_lock:
            self._cache[key] = result
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return result

    def read_many(self, images: Sequence[bytes], workers: int = 2) -> list[OcrResult]:
        """Read several images, overlapping them on ``workers`` threads (onnxruntime releases the GIL)."""
        if len(images) <= 1 or workers <= 1:
            return [self.read(d) for d in images]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(self.read, images))


_lock = threading.Lock()
_instance: OcrEngine | None = None


def get_ocr() -> OcrEngine:
    """The process-wide OCR engine (lazy: loading the ONNX sessions takes a fraction of a second)."""
    global _instance
    if _instance is None:
        with _lock:
            if _instance is None:
                _instance = OcrEngine()
    return _instance


def ocr_text(data: bytes) -> str:
    """Convenience: the text of one image, lines joined in reading order."""
    return get_ocr().read(data).text


def main(argv: list[str] | None = None) -> None:
    """``python -m ecoalign.evaluators.ocr IMAGE...``: read each image, print its text and the timings."""
    import argparse
    import os
    import statistics

    parser = argparse.ArgumentParser(description="OCR images and time it")
    parser.add_argument("images", nargs="+")
    parser.add_argument("--max-side", type=int, default=512)
    parser.add_argument("--workers", type=int, default=1, help="images read concurrently")
    parser.add_argument("--quiet", action="store_true", help="timings only")
    args = parser.parse_args(argv)
    engine = OcrEngine(max_side=args.max_side, cache_size=0)
    datas = [open(p, "rb").read() for p in args.images]  # noqa: SIM115
    engine.read(datas[0])  # warm-up: first call initialises the sessions
    cpu, wall = time.process_time(), time.perf_counter()
    results = engine.read_many(datas, workers=args.workers)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if not args.quiet:
        for path, r in zip(args.images, results, strict=True):
            print(f"{r.seconds:6.3f}s  {os.path.basename(path)}  {r.text}")
    per = [r.seconds for r in results]
    print(
        f"{len(datas)} images, workers={args.workers}, max_side={args.max_side}: "
        f"wall {wall / len(datas):.3f} s/image ({len(datas) / wall:.2f} images/s), "
        f"per-image median {statistics.median(per):.3f} s, max {max(per):.3f} s, "
        f"CPU {cpu / len(datas):.3f} s/image, load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()

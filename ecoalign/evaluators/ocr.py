"""OCR of request images with RapidOCR (PP-OCRv4 ONNX models shipped inside ``rapidocr-onnxruntime``).

Why OCR at all: typographic attacks (FigStep) move the harmful instruction out of the text and into an image;
reading the image's text lets the same safety model judge it. One engine per process (the process's composition
root, ``ecoalign.runtime.root``, builds it on first use and hands it to the scanner); onnxruntime
sessions accept concurrent ``run`` calls, so ``read_many`` overlaps two images on two cores.

Speed (OCR dominates the cost of an image item), measured on FigStep's 760 px typographic images, see
docs/moderation.md:

* the image is decoded and downscaled so its longer side is at most ``max_side`` (512 px): the crops that are
  recognised come from this image;
* detection (DBNet) runs on a further downscaled copy, longer side ``det_side`` (320 px): finding a line of text
  needs far fewer pixels than reading it; the boxes are scaled back to the ``max_side`` image. Its box threshold
  is 0.4 instead of 0.5 so a lone short mark (the "1." of an empty list) is still found at that size;
* recognition runs **one crop per call at the crop's own width**, at height ``rec_height`` (40 px). RapidOCR's
  own recogniser batches six crops padded to the widest of them (and to at least 320 px at height 48), so short
  crops such as the list numbers "1." cost as much as the longest line; one crop per call costs only its own
  width, and the padding no longer changes what is read;
* no angle classifier; an image of (near) uniform colour is answered without running a model.

Together about 0.13 CPU-s per FigStep image instead of 0.39, with every FigStep instruction still read exactly
(``python -m ecoalign.evaluators.ocr IMAGE... --quiet`` prints the CPU-s per image; ``--det-side 512
--rec-height 48`` is close to the old settings, without the padding).
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
_BLANK_RANGE = 16  # max - min pixel value below which an image is treated as blank
_MIN_SIDE = 30  # RapidOCR's own thresholds for images it letterboxes before detection
_MAX_ASPECT = 8


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

    with Image.open(io.BytesIO(data)) as opened:
        opened.seek(0)  # first frame of animations
        im: Image.Image = opened
        if im.mode in ("RGBA", "LA", "P"):
            im = im.convert("RGBA")
            background = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(background, im)
        im = im.convert("RGB")
        scale = max_side / max(im.size)
        if scale < 1:
            size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
            im = im.resize(size, Image.Resampling.BILINEAR)
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


class _Recogniser:
    """Recognise each crop alone, at height ``height`` and its own width (no padding to a batch's widest crop).

    Called like RapidOCR's ``TextRecognizer`` (``(img_list, return_word_box) -> (results, seconds)``), so it also
    serves RapidOCR's own pipeline on the odd-shaped images that take that path."""

    def __init__(self, text_rec: object, height: int) -> None:
        self.session = text_rec.session.session  # type: ignore[attr-defined]
        self.input_name = self.session.get_inputs()[0].name
        self.decode = text_rec.postprocess_op  # type: ignore[attr-defined]
        self.height = height

    def one(self, crop: np.ndarray) -> tuple[str, float]:
        import cv2

        h, w = crop.shape[:2]
        if h < 1 or w < 1:
            return "", 0.0
        width = max(8, int(np.ceil(self.height * w / h)))
        x = cv2.resize(crop, (width, self.height)).astype(np.float32)
        x = (x * (2.0 / 255.0) - 1.0).transpose(2, 0, 1)[np.newaxis]
        preds = self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0]
        text, score = self.decode(preds)[0][:2]
        return str(text), float(score)

    def __call__(self, img_list: Sequence[np.ndarray], return_word_box: bool = False) -> tuple[list, float]:
        start = time.perf_counter()
        return [self.one(c) for c in img_list], time.perf_counter() - start


class OcrEngine:
    """RapidOCR wrapper. Thread-safe; results are cached by image hash (re-uploads are common in moderation)."""

    model_id = MODEL_ID

    def __init__(
        self,
        max_side: int = 512,
        min_score: float = 0.5,
        cache_size: int = 256,
        intra_threads: int = 1,
        *,
        det_side: int = 320,
        rec_height: int = 40,
        det_box_thresh: float = 0.4,
    ) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self.max_side = max_side
        self.det_side = min(det_side, max_side)
        self.rec_height = rec_height
        self.min_score = min_score
        # one thread per session call: throughput comes from overlapping images (read_many), which beats
        # one image split across cores and does not oversubscribe a small machine. (RapidOCR already creates
        # its sessions without the CPU memory arena.)
        self._engine = RapidOCR(
            det_limit_side_len=self.det_side,
            det_limit_type="max",
            use_cls=False,
            text_score=min_score,
            intra_op_num_threads=intra_threads,
            inter_op_num_threads=1,
        )
        self._engine.text_rec = _Recogniser(self._engine.text_rec, rec_height)
        # a box's mean text probability; 0.5 in RapidOCR. At det_side 320 a lone short mark ("1." of an empty
        # list in a wide image) scores 0.4-0.5; a box of noise that gets through is dropped by ``min_score``
        self._engine.text_det.postprocess_op.box_thresh = det_box_thresh
        self._cache: OrderedDict[str, OcrResult] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    def _boxes(self, data: bytes) -> list:
        """``[(box, text, score), ...]`` of the lines read with at least ``min_score``."""
        import cv2

        img = _decode(data, self.max_side)
        h, w = img.shape[:2]
        if int(img.max()) - int(img.min()) < _BLANK_RANGE:  # one colour (or nearly): nothing to read
            return []
        if min(h, w) <= _MIN_SIDE or max(h, w) > _MAX_ASPECT * min(h, w):
            # a thin strip: RapidOCR's own pipeline pads it (letterbox) before detection
            boxes, _ = self._engine(img)
            return boxes or []
        scale = self.det_side / max(h, w)
        small = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        found, _ = self._engine.text_det(small)
        if found is None or len(found) == 0:
            return []
        boxes = [b.astype(np.float32) for b in self._engine.sorted_boxes(found)]
        fx, fy = w / small.shape[1], h / small.shape[0]
        for box in boxes:
            box[:, 0] = np.clip(box[:, 0] * fx, 0, w - 1)
            box[:, 1] = np.clip(box[:, 1] * fy, 0, h - 1)
        crops = self._engine.get_crop_img_list(img, boxes)
        read = self._engine.text_rec(crops)[0]
        return [
            (box.tolist(), text, score)
            for box, (text, score) in zip(boxes, read, strict=True)
            if score >= self.min_score
        ]

    def read(self, data: bytes) -> OcrResult:
        """Read one image. Never raises on bad image data: ``error`` says what went wrong."""
        key = hashlib.sha256(data).hexdigest()
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        start = time.perf_counter()
        try:
            boxes = self._boxes(data)
        except Exception as exc:  # undecodable or unsupported image: no text, say why
            return OcrResult((), 0.0, time.perf_counter() - start, error=f"{type(exc).__name__}: {exc}")
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


def main(argv: list[str] | None = None) -> None:
    """``python -m ecoalign.evaluators.ocr IMAGE...``: read each image, print its text and the timings."""
    import argparse
    import os
    import statistics

    parser = argparse.ArgumentParser(description="OCR images and time it")
    parser.add_argument("images", nargs="+")
    parser.add_argument("--max-side", type=int, default=512, help="longer side of the image the crops come from")
    parser.add_argument("--det-side", type=int, default=320, help="longer side of the image detection runs on")
    parser.add_argument("--rec-height", type=int, default=40, help="height crops are recognised at")
    parser.add_argument("--workers", type=int, default=1, help="images read concurrently")
    parser.add_argument("--quiet", action="store_true", help="timings only")
    args = parser.parse_args(argv)
    engine = OcrEngine(max_side=args.max_side, cache_size=0, det_side=args.det_side, rec_height=args.rec_height)
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
        f"{len(datas)} images, workers={args.workers}, max_side={args.max_side}, det_side={engine.det_side}, "
        f"rec_height={args.rec_height}: "
        f"wall {wall / len(datas):.3f} s/image ({len(datas) / wall:.2f} images/s), "
        f"per-image median {statistics.median(per):.3f} s, max {max(per):.3f} s, "
        f"CPU {cpu / len(datas):.3f} s/image, load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()

"""Seeded damage to real image files through ``ecoalign.media.check_image_bytes``: how many are accepted, refused
as a ``MediaError``, or escape as another exception (a 500 in the API, a crashed Batch line).

    python -m benchmarks.hostile_images [--per-format 3000] [--seed 15] [--media PATH]

``--media PATH`` loads another copy of the module (e.g. an older revision: ``git show REV:ecoalign/media.py``).
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import io
import random
import warnings
from types import ModuleType

from PIL import Image

FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP")


def load(path: str | None) -> ModuleType:
    if path is None:
        import ecoalign.media

        return ecoalign.media
    spec = importlib.util.spec_from_file_location("media_under_test", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-format", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--media", default=None, help="path of the media module to test (default: this checkout's)")
    args = parser.parse_args()
    media = load(args.media)
    warnings.simplefilter("ignore")  # Pillow warns on every damaged TIFF-like header; the counts are the point
    rng = random.Random(args.seed)
    escaped: collections.Counter[str] = collections.Counter()
    accepted = refused = 0
    for fmt in FORMATS:
        buf = io.BytesIO()
        Image.new("RGB", (16, 16), (10, 120, 30)).save(buf, format=fmt)
        original = buf.getvalue()
        for _ in range(args.per_format):
            damaged = bytearray(original)
            if rng.random() < 0.3:
                damaged = damaged[: rng.randrange(1, len(damaged))]
            for _ in range(rng.randint(1, 8)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            try:
                media.check_image_bytes(bytes(damaged), "damaged", 10**6)
                accepted += 1
            except media.MediaError:
                refused += 1
            except Exception as exc:  # what this benchmark counts
                escaped[type(exc).__name__] += 1
    total = accepted + refused + sum(escaped.values())
    print(f"files {total}  accepted {accepted}  refused (MediaError) {refused}  escaped {sum(escaped.values())}"
          + (f"  {dict(escaped)}" if escaped else ""))


if __name__ == "__main__":
    main()

"""Duplicates decided once: a run with exact and near duplicates through ``ecoalign moderate``'s runner
(``ecoalign.bulk.runner.run_moderation``, the embedded SQLite default), with and without dedup, side by side.

The input (generated, seeded): ``--items`` lines (default 10,000), of which ``--exact`` (30 %) repeat an earlier
line exactly (same text up to whitespace, same image bytes) and ``--near`` (10 %) repeat an earlier image line with
its picture re-encoded as JPEG or resized; the rest are new: half text only (about a third of them uncertain for
the keyword scanner: "lock", "pick"), half text with a small picture (the keyword scanner cannot read images, so
every new image line is uncertain and goes to the judge). The scanner is the heuristic one and the judge is the
emulator over HTTP (its ``usage`` is the token count), so the run measures the protocol, not a model.

A near copy is caught once its original is decided; one that arrives while the original is still being decided
(in the same chunk or a chunk in flight) is decided on its own. A JPEG copy of a picture made twice is byte-identical
the second time, so it counts as an exact hit.

Printed: items/s, judge calls and tokens for each mode, the duplicates each kind caught, and how many lines got
the same ``flagged`` in both runs.

    python benchmarks/dedup.py                  # 10,000 items
    python benchmarks/dedup.py --items 2000     # a smaller run
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

BENIGN = ["How do I bake sourdough bread", "Best hiking trails near the lake", "Tips for a garden in spring",
          "Recommend a novel about the sea", "How to fix a flat bicycle tyre", "Explain photosynthesis simply"]
UNCERTAIN = ["How do I pick a lock", "Where can I buy a lock pick set", "Open a lock without its key"]
VERDICT = json.dumps({"flagged": False, "categories": {"illicit": 0.2}, "rationale": "benign"})


def picture(rng: random.Random, size: int = 64) -> Image.Image:
    img = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(8):
        x0, y0 = rng.randrange(size), rng.randrange(size)
        box = (x0, y0, min(size, x0 + rng.randrange(8, 40)), min(size, y0 + rng.randrange(8, 40)))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=tuple(rng.randrange(256) for _ in range(3)))
    return img


def data_url(img: Image.Image, fmt: str = "PNG", **options: Any) -> str:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


def generate(path: Path, items: int, exact: float, near: float, seed: int) -> Counter[str]:
    """Write the input JSONL; returns how many lines of each kind it holds."""
    rng = random.Random(seed)
    lines: list[dict[str, Any]] = []
    pictures: list[tuple[int, Image.Image]] = []  # (line index, picture) of the new image lines
    kinds: Counter[str] = Counter()
    for i in range(items):
        roll = rng.random()
        if lines and roll < exact:
            original = dict(rng.choice(lines))
            original["text"] = "  " + original["text"].replace(" ", "  ")  # same after normalisation
            kind = "exact"
        elif pictures and roll < exact + near:
            index, img = rng.choice(pictures)
            copy = data_url(img.convert("RGB"), "JPEG", quality=70) if rng.random() < 0.5 else \
                data_url(img.resize((48, 48), Image.Resampling.LANCZOS))
            original = {"text": lines[index]["text"], "images": [copy]}
            kind = "near"
        else:
            pool = UNCERTAIN if rng.random() < 0.33 else BENIGN
            original = {"text": f"{rng.choice(pool)} (item {i})"}
            if rng.random() < 0.5:
                img = picture(rng)
                original["images"] = [data_url(img)]
                pictures.append((len(lines), img))
            kind = "new"
        kinds[kind] += 1
        lines.append(original)
    with path.open("w") as f:
        for i, line in enumerate(lines):
            f.write(json.dumps({"custom_id": f"c{i}", **line}) + "\n")
    return kinds


def run(src: Path, workdir: Path, judge_url: str, *, dedup: bool, workers: int) -> tuple[Any, Path]:
    from ecoalign.bulk.runner import run_moderation
    from ecoalign.evaluators.heuristic import HeuristicScanner
    from ecoalign.moderation.dedup import Deduplicator, scope_key
    from ecoalign.moderation.judge import ChatModerationJudge
    from ecoalign.moderation.moderator import Moderator
    from ecoalign.providers.openai_http import OpenAIChatProvider
    from ecoalign.store.db import make_engine, session_factory
    from ecoalign.store.migrate import ensure_schema

    name = "dedup" if dedup else "plain"
    db_url = f"sqlite:///{workdir / (name + '.db')}"
    ensure_schema(db_url)
    provider = OpenAIChatProvider(judge_url, "judge-emu", timeout_s=30, max_retries=0, max_concurrency=8)
    moderator = Moderator(HeuristicScanner(), ChatModerationJudge(provider))
    engine = make_engine(db_url)
    if dedup:
        scope = scope_key(None, None, None, moderator.policy.to_dict(), moderator.model_id)
        moderator.dedup = Deduplicator(session_factory(engine), scope=scope)
    out = workdir / f"{name}.jsonl"
    try:
        summary = run_moderation(src, out, moderator=moderator, db_url=db_url, progress=False, workers=workers,
                                 chunk_size=16)
    finally:
        provider.close()
        engine.dispose()
    return summary, out


def outputs(path: Path) -> dict[str, dict[str, Any]]:
    rows = {}
    for line in path.read_text().splitlines():
        obj = json.loads(line)
        rows[obj["custom_id"]] = obj["response"]["body"]["results"][0]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--exact", type=float, default=0.30, help="share of exact duplicates")
    parser.add_argument("--near", type=float, default=0.10, help="share of near duplicates (images)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--judge-latency-ms", type=float, default=100.0,
                        help="the emulator judge's latency per call (a real LLM judge takes 0.3-2 s)")
    args = parser.parse_args(argv)
    from ecoalign.testing.emulator import EmulatorServer

    with tempfile.TemporaryDirectory(prefix="ecoalign-dedup-") as tmp, EmulatorServer(
        rules=[(r".", VERDICT)], model="judge-emu", latency_s=args.judge_latency_ms / 1000
    ) as emu:
        workdir = Path(tmp)
        src = workdir / "input.jsonl"
        kinds = generate(src, args.items, args.exact, args.near, args.seed)
        print(f"input: {args.items} lines: {kinds['new']} new, {kinds['exact']} exact copies, "
              f"{kinds['near']} near copies"
              f" (JPEG or resized); {src.stat().st_size / 1e6:.1f} MB; judge latency {args.judge_latency_ms:.0f} ms",
              file=sys.stderr)
        rows = []
        for dedup in (False, True):
            before = emu.stats["chat_requests"]
            started = time.monotonic()
            summary, out = run(src, workdir, emu.base_url, dedup=dedup, workers=args.workers)
            wall = time.monotonic() - started
            results = outputs(out)
            caught = Counter(r["ecoalign"].get("duplicate", {}).get("match", "-") for r in results.values())
            rows.append(("with dedup" if dedup else "without dedup", summary, emu.stats["chat_requests"] - before,
                         wall, caught, results))
        print(f"{'mode':<14} {'items':>6} {'items/s':>8} {'judge calls':>11} {'tokens':>9} {'tokens/item':>11} "
              f"{'exact hits':>10} {'near hits':>9}")
        for mode, summary, calls, _, caught, _ in rows:
            print(f"{mode:<14} {summary.items:>6} {summary.items_per_s:>8.1f} {calls:>11} {summary.tokens:>9} "
                  f"{summary.tokens / max(1, summary.items):>11.1f} {caught['exact']:>10} {caught['near']:>9}")
        plain, deduped = rows[0][5], rows[1][5]
        same = sum(plain[k]["flagged"] == deduped[k]["flagged"] for k in plain)
        saved = 1 - rows[1][1].tokens / max(1, rows[0][1].tokens)
        print(f"same flagged in both runs: {same}/{len(plain)}; tokens saved: {saved:.1%}; "
              f"speed-up: {rows[1][1].items_per_s / max(1e-9, rows[0][1].items_per_s):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

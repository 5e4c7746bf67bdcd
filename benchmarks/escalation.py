"""Escalation benchmark: the fixed band against escalation by expected value of information, side by side, on the
shared dev data with the emulator as the judge (scripted verdicts of set accuracy).

The 500 items of ``benchmarks/moderation.py`` (FigStep-tiny, XSTest-dev as text, XSTest-dev as typographic images)
are scanned once by the real scanner (``--evaluator offline``: OCR + MiniLM, the default; or ``heuristic``); every
mode then decides the same scans through the real ``Moderator`` and a real HTTP judge: the emulator serving
``ecoalign.testing.emulator.ModerationJudgeScript``, which knows each item's gold label (a lookup this script builds
from the judge's own prompt text) and answers right with probability ``--accuracy-text`` for a call without image
parts and ``--accuracy-images`` for one with them, the draw being a hash of the prompt and the seed (the same
prompt gets the same verdict in every mode; a second opinion is an independent draw). Image parts are billed at
``--image-tokens`` (765: what a 760 px image costs on gpt-4o at high detail); text at the emulator's chars/4.

Each band runs twice: with a judge that sees the images, and (``text``) with a text-only judge (text and OCR
text), so the saving of not sending images is not credited to the value rule. Printed per mode: judge calls,
calls with images, tokens per item, unsafe recall, safe pass rate and balanced accuracy, and how well the scan's
probability (``1 - safety``) is calibrated (expected calibration error).
The value mode's accuracy model is the policy's ``evidence_accuracy`` (defaults 0.85 text, 0.9 images, 0.85 second
judge), set before any run and not fitted to these items; ``--assumed-*`` changes what the policy believes while the
emulator keeps its own rate.

    python benchmarks/escalation.py                              # offline scanner, prices 0.02..0.5
    python benchmarks/escalation.py --scan-cache /tmp/scans.pkl --accuracy-text 0.75   # a worse judge than assumed
    python benchmarks/escalation.py --evaluator heuristic        # fast, the keyword scanner
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.moderation import (  # noqa: E402
    DEFAULT_DATA,
    Item,
    figstep_items,
    xstest_image_items,
    xstest_text_items,
)


@dataclass
class Row:
    mode: str
    items: int = 0
    unsafe: int = 0
    safe: int = 0
    caught: int = 0
    passed: int = 0
    tokens: int = 0
    calls: int = 0
    image_calls: int = 0

    @property
    def recall(self) -> float:
        return self.caught / self.unsafe if self.unsafe else 0.0

    @property
    def pass_rate(self) -> float:
        return self.passed / self.safe if self.safe else 0.0

    @property
    def balanced(self) -> float:
        return (self.recall + self.pass_rate) / 2


class GoldLookup:
    """Each item's label by what a judge's prompt shows of it: the text (with OCR text) and, for a call with image
    parts, the images. A text-only prompt that items with different labels share tells nothing (None: the emulator
    answers it with a fair coin), as when OCR read nothing of an image."""

    def __init__(self) -> None:
        self.by_text: dict[str, set[bool]] = {}
        self.by_images: dict[tuple[str, tuple[str, ...]], bool] = {}

    def add(self, text: str, images: tuple[str, ...], unsafe: bool) -> None:
        self.by_text.setdefault(text, set()).add(unsafe)
        self.by_images[(text, images)] = unsafe

    def __call__(self, text: str, images: tuple[str, ...]) -> bool | None:
        if images:
            return self.by_images.get((text, images))
        labels = self.by_text.get(text, set())
        return next(iter(labels)) if len(labels) == 1 else None

    def ambiguous(self) -> int:
        return sum(len(v) > 1 for v in self.by_text.values())


def load(data: Path, folder: Path) -> list[tuple[Item, Any]]:
    """Every item with its parsed request (images loaded), in a fixed order."""
    from ecoalign.moderation.inputs import ParseOptions, parse_simple
    from ecoalign.settings import Settings

    options = ParseOptions.from_settings(folder, settings=Settings(), allow_remote=False)
    items = [*figstep_items(data), *xstest_text_items(data), *xstest_image_items(data, folder)]
    return [(item, parse_simple(item.line, options)[0]) for item in items]


def ece(probabilities: list[float], labels: list[bool], bins: int = 10) -> float:
    """Expected calibration error of P(unsafe) against the labels, equal-width bins."""
    total, n = 0.0, len(labels)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [
            (p, y) for p, y in zip(probabilities, labels, strict=True) if lo <= p < hi or (b == bins - 1 and p == 1)
        ]
        if inside:
            mean_p = sum(p for p, _ in inside) / len(inside)
            rate = sum(y for _, y in inside) / len(inside)
            total += len(inside) / n * abs(mean_p - rate)
    return total


def scan_all(scanner: Any, requests: list[Any], args: argparse.Namespace) -> list[Any]:
    """Every item's scan, from ``--scan-cache`` when it holds them."""
    from ecoalign.moderation.moderator import Moderator

    cache = Path(args.scan_cache) if args.scan_cache else None
    if cache is not None and cache.exists():
        scans: list[Any] = pickle.loads(cache.read_bytes())  # noqa: S301 - the benchmark's own cache file
        print(f"read {len(scans)} scans from {cache}", file=sys.stderr)
    else:
        started = time.monotonic()
        scans = Moderator(scanner).scan_many(requests)
        print(f"scanned {len(scans)} items with {args.evaluator} in {time.monotonic() - started:.1f} s",
              file=sys.stderr)
        if cache is not None:
            cache.write_bytes(pickle.dumps(scans))
    if len(scans) != len(requests):
        raise SystemExit(f"{cache} holds {len(scans)} scans for {len(requests)} items: delete it")
    return scans


def tally(name: str, results: list[Any], labels: list[bool]) -> Row:
    """One mode's counts: judge calls (with images), tokens, and the confusion against the labels."""
    row = Row(name)
    for result, unsafe in zip(results, labels, strict=True):
        row.items += 1
        row.tokens += result.tokens
        calls = result.trace.get("escalation", {}).get("calls")
        if calls is not None:
            done = [c for c in calls if "spent" in c]
            row.calls += len(done)
            row.image_calls += sum(bool(c["images"]) for c in done)
        elif result.decision == "judge":
            row.calls += 1
            parts = result.trace["escalation"]["prompt"][1]["content"]
            row.image_calls += any(part.get("type") == "image_url" for part in parts)
        if unsafe:
            row.unsafe += 1
            row.caught += result.flagged
        else:
            row.safe += 1
            row.passed += not result.flagged
    return row


def run(args: argparse.Namespace) -> int:
    from ecoalign.moderation.judge import ChatModerationJudge
    from ecoalign.moderation.moderator import Moderator
    from ecoalign.moderation.policy import DEFAULT_EVIDENCE_ACCURACY, ModerationPolicy
    from ecoalign.providers.openai_http import OpenAIChatProvider
    from ecoalign.runtime.root import Root
    from ecoalign.settings import Settings
    from ecoalign.testing.emulator import EmulatorServer, ModerationJudgeScript

    with tempfile.TemporaryDirectory(prefix="ecoalign-escalation-") as tmp:
        loaded = load(Path(args.data), Path(tmp))
        root = Root(Settings(evaluator=args.evaluator))
        scanner = root.scanner()
        scans = scan_all(scanner, [r for _, r in loaded], args)

    labels = [item.unsafe for item, _ in loaded]
    gold = GoldLookup()
    key_judge = ChatModerationJudge(OpenAIChatProvider("http://127.0.0.1:9/v1", "none"), send_images=False)
    for (item, request), scan in zip(loaded, scans, strict=True):
        text = key_judge.messages(request, scan, images=False)[1]["content"][0]["text"]
        urls = tuple(hashlib.sha256(img.data_url().encode("utf-8")).hexdigest() for img in request.images)
        gold.add(text, urls, item.unsafe)
    script = ModerationJudgeScript(gold, accuracy_text=args.accuracy_text, accuracy_images=args.accuracy_images)
    assumed = {
        "judge_text": args.assumed_text or DEFAULT_EVIDENCE_ACCURACY["judge_text"],
        "judge_images": args.assumed_images or DEFAULT_EVIDENCE_ACCURACY["judge_images"],
        "second_judge": args.assumed_text or DEFAULT_EVIDENCE_ACCURACY["second_judge"],
    }
    modes: list[tuple[str, ModerationPolicy]] = [("scan only", ModerationPolicy())]
    for band in args.bands:
        lo, hi = (float(x) for x in band.split("-"))
        modes.append((f"band {lo:g}-{hi:g}", ModerationPolicy(escalation="band", lo=lo, hi=hi)))
        modes.append((f"band {lo:g}-{hi:g} text", ModerationPolicy(escalation="band", lo=lo, hi=hi)))
    for price in args.prices:
        policy = ModerationPolicy(escalation="value", token_price=price, evidence_accuracy=assumed)
        modes.append((f"value @{price:g}/1k", policy))

    rows: list[Row] = []
    with EmulatorServer(reply_fn=script, model="judge-emu", image_token_cost=args.image_tokens) as emu:
        provider = OpenAIChatProvider(emu.base_url, "judge-emu", max_retries=0, timeout_s=30.0)
        judge = ChatModerationJudge(provider)
        text_judge = ChatModerationJudge(provider, send_images=False)  # the band with a text-only judge
        for name, policy in modes:
            chosen = None if name == "scan only" else text_judge if name.endswith(" text") else judge
            moderator = Moderator(scanner, judge=chosen, policy=policy)
            before = emu.stats["chat_requests"]
            row = tally(name, [moderator.decide(r, s) for (_, r), s in zip(loaded, scans, strict=True)], labels)
            assert emu.stats["chat_requests"] - before == row.calls, (name, row.calls)
            rows.append(row)
        provider.close()

    probabilities = [1.0 - s.safety for s in scans]
    print(
        f"\nescalation benchmark: evaluator={args.evaluator} items={len(loaded)} judge=emulator "
        f"accuracy text={args.accuracy_text} images={args.accuracy_images} image tokens={args.image_tokens}; "
        f"value policy assumes {assumed}; text prompts shared by safe and unsafe items={gold.ambiguous()}, "
        f"coin-flip verdicts={script.unknown}; cpus={os.cpu_count()} "
        f"load(1m)={os.getloadavg()[0]:.2f}"
    )
    print(f"scan calibration: ECE of p = 1 - safety over {len(labels)} items = {ece(probabilities, labels):.3f}")
    header = f"{'mode':<22}{'calls':>7}{'w/ img':>7}{'tok/item':>10}{'recall':>8}{'safe-pass':>10}{'balanced':>10}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.mode:<22}{r.calls:>7}{r.image_calls:>7}{r.tokens / r.items:>10.1f}{r.recall:>8.3f}"
            f"{r.pass_rate:>10.3f}{r.balanced:>10.3f}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--evaluator", default="offline", choices=["offline", "heuristic"])
    p.add_argument("--accuracy-text", type=float, default=0.85, help="the emulator judge's accuracy without images")
    p.add_argument("--accuracy-images", type=float, default=0.9, help="its accuracy with the image parts")
    p.add_argument("--assumed-text", type=float, default=None, help="what the value policy assumes (default 0.85)")
    p.add_argument("--assumed-images", type=float, default=None, help="what the value policy assumes (default 0.9)")
    p.add_argument("--image-tokens", type=int, default=765, help="prompt tokens the emulator bills per image part")
    p.add_argument("--bands", nargs="+", default=["0.1-0.9", "0.2-0.8", "0.3-0.7"],
                   help="the fixed bands LO-HI to run (0.1-0.9 is the default policy's)")
    p.add_argument("--scan-cache", metavar="PATH", help="keep the scans in this pickle and reuse them (same data)")
    p.add_argument("--prices", type=float, nargs="+", default=[0.02, 0.05, 0.1, 0.2, 0.5],
                   help="the value policy's token prices to run (cost units per 1000 tokens)")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())

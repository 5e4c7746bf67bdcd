"""Whole-family cross-validation of the offline safety head on the project's own corpus (no dev or held-out item).

Why: the dev sets (``../shared/data``) were looked at while the corpus grew, so their figures are optimistic; a
measure that leaves *whole families* out says how the recipe does on phrasings and topics it never saw. Three axes,
each item held out exactly once per axis:

* ``topic``: the corpus ``group`` (the activity, person, concept or case an item was built from), 5 folds by hash;
* ``template``: the phrasing template (``template``, derived from the generator's format strings), 5 folds by hash:
  every "How do I {a}?" item is unseen together, whatever its topic;
* ``source``: the family function that generated the item (``source``), one fold per family (leave one out).

For each fold the head is retrained on the rest (the shipped recipe, ``--members`` members) and scores the held-out
items as text (P(unsafe) >= 0.5 flags) and, for a seeded subsample per fold (OCR costs ~0.14 s an image), as
typographic images rendered like ``moderation_quality.py``'s ``xstest-image`` set and read through the real scanner
(OCR, the typographic rule, the joint text). Borderline items (soft target) are left out of the scores. Confidence
intervals: Wilson 95 % for recall and safe pass; for balanced accuracy a 95 % bootstrap that resamples the axis's
family units (groups / templates / sources), since items of one family are not independent.

Usage: ``python benchmarks/family_cv.py [--axes topic,template,source] [--images-per-fold 40] [--json out.json]``
(also run by ``moderation_quality.py --family-cv``). Embeddings are cached under /tmp (``train_safety``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecoalign.content import Image, Request
from ecoalign.evaluators.embedder import load_minilm
from ecoalign.evaluators.ocr import OcrEngine
from ecoalign.evaluators.safety_model import SafetyModel
from ecoalign.evaluators.scanner import OfflineScanner
from training.safety_corpus import CORPUS_PATH, load_corpus
from training.train_safety import EPOCHS, MEMBERS, WEIGHT_DECAY, cached_embeddings, predict, save_head, targets, train

AXES = ("topic", "template", "source")
HASH_FOLDS = 5
Z95 = 1.959964


def _hash_fold(key: str, folds: int = HASH_FOLDS) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % folds


def unit_of(row: dict, axis: str) -> str:
    """The family an item belongs to on ``axis`` (what the bootstrap resamples)."""
    return {"topic": row["group"], "template": row["template"], "source": row["source"]}[axis]


def fold_of(row: dict, axis: str) -> str:
    unit = unit_of(row, axis)
    return unit if axis == "source" else f"{axis}-{_hash_fold(unit)}"


def wilson(k: int, n: int) -> tuple[float, float]:
    """95 % Wilson interval of a proportion k/n."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    den = 1 + Z95**2 / n
    mid = (p + Z95**2 / (2 * n)) / den
    half = Z95 * np.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / den
    return (mid - half, mid + half)


def balanced(flagged: np.ndarray, unsafe: np.ndarray) -> float:
    parts = [
        flagged[unsafe].mean() if unsafe.any() else np.nan,
        (~flagged[~unsafe]).mean() if (~unsafe).any() else np.nan,
    ]
    return float(np.nanmean(parts))


def cluster_bootstrap(
    flagged: np.ndarray, unsafe: np.ndarray, units: list[str], n_boot: int = 1000
) -> tuple[float, float]:
    """95 % percentile interval of balanced accuracy, resampling whole family units with replacement."""
    names = sorted(set(units))
    index = {u: i for i, u in enumerate(names)}
    uid = np.array([index[u] for u in units])
    # per unit: flagged-unsafe, unsafe, passed-safe, safe counts
    counts = np.zeros((len(names), 4))
    np.add.at(counts[:, 0], uid, flagged & unsafe)
    np.add.at(counts[:, 1], uid, unsafe)
    np.add.at(counts[:, 2], uid, ~flagged & ~unsafe)
    np.add.at(counts[:, 3], uid, ~unsafe)
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(names), size=(n_boot, len(names)))
    tot = counts[draws].sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        bal = np.nanmean(np.stack([tot[:, 0] / tot[:, 1], tot[:, 2] / tot[:, 3]]), axis=0)
    lo, hi = np.nanpercentile(bal, [2.5, 97.5])
    return float(lo), float(hi)


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean P| over equal-width bins of P, weighted by the bin's share of items."""
    which = np.minimum((p * bins).astype(int), bins - 1)
    return float(sum(abs(y[which == b].mean() - p[which == b].mean()) * (which == b).mean() for b in set(which)))


def fit_temperature(p: np.ndarray, y: np.ndarray) -> float:
    """The temperature T minimising the log loss of sigmoid(logit(p) / T) (no bias: the 0.5 decisions stay)."""
    logit = np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1))
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 200))
    losses = []
    for t in grid:
        q = np.clip(1 / (1 + np.exp(-logit / t)), 1e-9, 1 - 1e-9)
        losses.append(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))
    return float(grid[int(np.argmin(losses))])


def calibration(p: np.ndarray, y: np.ndarray) -> dict:
    """How far out-of-fold P(unsafe) is from a probability, and the temperature that would bring it closer."""
    t = fit_temperature(p, y)
    logit = np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1))
    scaled = 1 / (1 + np.exp(-logit / t))
    return {
        "ece": expected_calibration_error(p, y),
        "temperature": t,
        "ece_scaled": expected_calibration_error(scaled, y),
        "flagged_at_0.01": float((p >= 0.01).mean()),
        "safe_above_0.01": float((p[~y] >= 0.01).mean()),
    }


@dataclass
class Scores:
    """Flags and labels of the scored items of one axis and modality, with their family units and folds."""

    flagged: list[bool] = field(default_factory=list)
    unsafe: list[bool] = field(default_factory=list)
    units: list[str] = field(default_factory=list)
    folds: list[str] = field(default_factory=list)

    def add(self, flagged: bool, unsafe: bool, unit: str, fold: str) -> None:
        self.flagged.append(bool(flagged))
        self.unsafe.append(bool(unsafe))
        self.units.append(unit)
        self.folds.append(fold)

    def summary(self, mask: np.ndarray | None = None, ci: bool = False) -> dict:
        f, u = np.array(self.flagged, dtype=bool), np.array(self.unsafe, dtype=bool)
        units = self.units
        if mask is not None:
            f, u, units = f[mask], u[mask], [x for x, m in zip(units, mask, strict=True) if m]
        k_r, n_r, k_s, n_s = int((f & u).sum()), int(u.sum()), int((~f & ~u).sum()), int((~u).sum())
        out = {
            "n": len(f),
            "n_unsafe": n_r,
            "unsafe_recall": k_r / n_r if n_r else None,
            "recall_ci": wilson(k_r, n_r),
            "safe_pass": k_s / n_s if n_s else None,
            "safe_pass_ci": wilson(k_s, n_s),
            "balanced_accuracy": balanced(f, u) if len(f) else None,
        }
        if (mask is None or ci) and len(set(units)) > 1:
            out["balanced_ci"] = cluster_bootstrap(f, u, units)
        return out


def image_sample(rows: list[dict], axis: str, per_fold: int, seed: int = 0) -> list[int]:
    """Up to ``per_fold`` labelled items per fold of ``axis``, half unsafe and half safe where the fold allows."""
    rng = np.random.default_rng(seed)
    by_fold: dict[str, dict[bool, list[int]]] = {}
    for i, r in enumerate(rows):
        if r["label"] != "borderline":
            by_fold.setdefault(fold_of(r, axis), {True: [], False: []})[r["label"] == "unsafe"].append(i)
    chosen: list[int] = []
    for fold in sorted(by_fold):
        sides = by_fold[fold]
        want_unsafe = min(len(sides[True]), max(per_fold // 2, per_fold - len(sides[False])))
        want_safe = min(len(sides[False]), per_fold - want_unsafe)
        for side, want in ((True, want_unsafe), (False, want_safe)):
            if want:
                chosen += sorted(rng.choice(sides[side], size=want, replace=False).tolist())
    return chosen


def run(
    axes: tuple[str, ...] = AXES,
    members: int = MEMBERS,
    epochs: int = EPOCHS,
    weight_decay: float = WEIGHT_DECAY,
    images_per_fold: dict[str, int] | None = None,
    corpus: Path = CORPUS_PATH,
    log: bool = True,
) -> dict:
    """Cross-validate on every axis; returns per axis the text and image summaries and per-fold rows."""
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    from benchmarks.moderation_quality import IMAGE_PROMPT, find_font, render

    images_per_fold = images_per_fold or {"topic": 40, "template": 40, "source": 10}
    rows = load_corpus(corpus)
    encoder = load_minilm()
    t0 = time.perf_counter()
    x = cached_embeddings(encoder, [r["text"] for r in rows])
    y, cat = targets(rows)
    labelled = np.array([r["label"] != "borderline" for r in rows])
    is_unsafe = np.array([r["label"] == "unsafe" for r in rows])
    font = find_font()
    ocr = OcrEngine(cache_size=8192)  # each sampled image is OCR'd once, whichever fold's head scores it
    rendered: dict[int, bytes] = {}
    results: dict = {
        "members": members,
        "epochs": epochs,
        "weight_decay": weight_decay,
        "corpus_items": len(rows),
        "axes": {},
    }
    with tempfile.TemporaryDirectory(prefix="ecoalign-family-cv-") as tmp:
        for axis in axes:
            folds = [fold_of(r, axis) for r in rows]
            sample = set(image_sample(rows, axis, images_per_fold.get(axis, 0))) if images_per_fold.get(axis) else set()
            text, image = Scores(), Scores()
            text_p: list[float] = []  # out-of-fold P(unsafe), in the order of ``text``
            ocr_s = 0.0
            for fold in sorted(set(folds)):
                test = np.array([f == fold for f in folds])
                fold_members = [
                    train(x[~test], y[~test], cat[~test], seed, epochs, weight_decay=weight_decay)
                    for seed in range(members)
                ]
                held = np.flatnonzero(test & labelled)
                p = predict(fold_members, x[held])
                for i, pi in zip(held.tolist(), p.tolist(), strict=True):
                    text.add(pi >= 0.5, is_unsafe[i], unit_of(rows[i], axis), fold)
                    text_p.append(pi)
                chosen: list[int] = [i for i in held.tolist() if i in sample]
                if chosen:
                    head = Path(tmp) / f"{axis}-{hashlib.sha256(fold.encode()).hexdigest()[:8]}.npz"
                    save_head(fold_members, head, "family-cv", int((~test).sum()))
                    scanner = OfflineScanner(SafetyModel(encoder, head), ocr)
                    for i in chosen:
                        if i not in rendered:
                            rendered[i] = render(rows[i]["text"], font)
                    start = time.perf_counter()
                    scores = []
                    for b in range(0, len(chosen), 16):
                        batch = chosen[b : b + 16]
                        scores += scanner.scan_many([Request(IMAGE_PROMPT, (Image(rendered[i]),)) for i in batch])
                    ocr_s += time.perf_counter() - start
                    for i, s in zip(chosen, scores, strict=True):
                        image.add(s.safety < 0.5, is_unsafe[i], unit_of(rows[i], axis), fold)
                if log:
                    print(
                        f"  [{axis}] {fold[:40]:40s} held {len(held):4d}  images {len(chosen):3d}  "
                        f"{time.perf_counter() - t0:6.0f}s",
                        file=sys.stderr,
                        flush=True,
                    )
            per_fold = {}
            for fold in sorted(set(folds)):
                tm = np.array([f == fold for f in text.folds])
                im = np.array([f == fold for f in image.folds])
                per_fold[fold] = {"text": text.summary(tm), "image": image.summary(im) if im.any() else None}
            results["axes"][axis] = {
                "text": text.summary(),
                "calibration": calibration(np.array(text_p), np.array(text.unsafe, dtype=bool)),
                "image": image.summary() if image.flagged else None,
                "units": len(set(text.units)),
                "folds": per_fold,
                "image_scan_s": ocr_s,
            }
    results["seconds"] = time.perf_counter() - t0
    return results


def _f(v: float | None) -> str:
    return "  n/a" if v is None or v != v else f"{v:5.3f}"


def _ci(ci: tuple[float, float] | None) -> str:
    return "" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def print_report(results: dict, per_fold: bool = True) -> None:
    print(
        f"\nwhole-family cross-validation: {results['corpus_items']} corpus items, {results['members']}-member "
        f"heads ({results['epochs']} epochs, weight decay "
        f"{results['weight_decay']}) retrained per fold, {results['seconds']:.0f}s"
    )
    print(
        f"{'axis':9s} {'kind':13s} {'n':>5s} {'recall':>6s} {'(95% Wilson)':16s} {'safe':>6s} {'(95% Wilson)':16s} "
        f"{'bal.acc':>7s} (95% family bootstrap)"
    )
    for axis, r in results["axes"].items():
        for kind in ("text", "image"):
            s = r.get(kind)
            if not s:
                continue
            print(
                f"{axis:9s} {kind:13s} {s['n']:5d} {_f(s['unsafe_recall']):>6s} {_ci(s['recall_ci']):16s} "
                f"{_f(s['safe_pass']):>6s} {_ci(s['safe_pass_ci']):16s} {_f(s['balanced_accuracy']):>7s} "
                f"{_ci(s.get('balanced_ci'))}"
            )
    for axis, r in results["axes"].items():
        c = r["calibration"]
        print(
            f"calibration ({axis}, text, out of fold): ECE {c['ece']:.3f}; temperature {c['temperature']:.2f} "
            f"would give ECE {c['ece_scaled']:.3f}; safe items at P >= 0.01 (flagged as a FigStep heading): "
            f"{c['safe_above_0.01']:.3f}"
        )
    if not per_fold:
        return
    for axis, r in results["axes"].items():
        print(f"\nper held-out fold, axis {axis} ({r['units']} families)")
        print(
            f"{'held-out fold':34s} {'n':>5s} {'unsafe':>6s} {'recall':>6s} {'safe':>6s} {'bal':>6s} | "
            f"{'img n':>5s} {'recall':>6s} {'safe':>6s} {'bal':>6s}"
        )
        for fold, fr in r["folds"].items():
            t, im = fr["text"], fr["image"]
            img = (
                (
                    f"{im['n']:5d} {_f(im['unsafe_recall']):>6s} {_f(im['safe_pass']):>6s} "
                    f"{_f(im['balanced_accuracy']):>6s}"
                )
                if im
                else f"{'':5s}"
            )
            print(
                f"{fold[:34]:34s} {t['n']:5d} {t['n_unsafe']:6d} {_f(t['unsafe_recall']):>6s} "
                f"{_f(t['safe_pass']):>6s} {_f(t['balanced_accuracy']):>6s} | {img}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--axes", default=",".join(AXES))
    parser.add_argument("--members", type=int, default=MEMBERS, help="ensemble members per fold's head")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--weight-decay", type=float, default=WEIGHT_DECAY)
    parser.add_argument(
        "--images-per-fold",
        type=int,
        help="typographic images scored per fold (default 40 for the 5-fold axes, 10 per source family)",
    )
    parser.add_argument("--corpus", type=Path, default=CORPUS_PATH, help="another corpus file (an earlier round)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    axes = tuple(a for a in args.axes.split(",") if a)
    per = None if args.images_per_fold is None else dict.fromkeys(axes, args.images_per_fold)
    results = run(axes, args.members, args.epochs, args.weight_decay, per, args.corpus)
    print_report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

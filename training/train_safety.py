"""Rebuild the offline safety head: ``python -m training.train_safety``.

``--holdout`` measures generalisation instead: whole topic groups of the corpus (every item built from one
activity, person, concept, case…, 1 in 5 groups by hash) are left out of training and scored, per item type;
nothing is written. Restricted-advice items (unsafe, no moderation category) train the unsafe output only.

Deterministic: the corpus is generated from a fixed seed, torch runs single-threaded with deterministic kernels
and fixed seeds, so the same code and packages give the same head. The head is a small ensemble of one-hidden-layer
MLPs on frozen MiniLM sentence embeddings (an ensemble, because single nets trained on ~3k items disagree on the
hard contrasts; averaging them is cheap and steadier). Output 0 is the unsafe logit; outputs 1..13 are the
category logits (trained on unsafe items only).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ecoalign.categories import MODERATION_CATEGORIES
from ecoalign.evaluators.safety_model import HEAD_PATH, HEAD_VERSION
from training.safety_corpus import CORPUS_PATH, load_corpus

if TYPE_CHECKING:
    from ecoalign.evaluators.embedder import MiniLM

HIDDEN = 128
MEMBERS = 5
EPOCHS = 300
BATCH = 128
LR = 2e-3
WEIGHT_DECAY = 1e-4
CATEGORY_WEIGHT = 0.2
# target P(unsafe) of "borderline" items (generic how-tos in the restricted-advice areas: medical, financial,
# legal): below the flag threshold 0.5 as a plain request, above 0.2, where the typographic-attack pattern's
# likelihood ratio of 4 (``typographic.py``) tips them over
BORDERLINE_TARGET = 0.35
TARGETS = {"safe": 0.0, "borderline": BORDERLINE_TARGET, "unsafe": 1.0}


def train(
    x: np.ndarray,
    y: np.ndarray,
    cat: np.ndarray,
    seed: int,
    epochs: int = EPOCHS,
    batch: int = BATCH,
    weight_decay: float = WEIGHT_DECAY,
) -> dict[str, np.ndarray]:
    """One ensemble member. ``cat`` is -1 for safe items."""
    import torch

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 1 + len(MODERATION_CATEGORIES))
    )
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=weight_decay)
    xt, yt, ct = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(cat)
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), batch):
            idx = order[start : start + batch]
            out = net(xt[idx])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(out[:, 0], yt[idx])
            has_cat = ct[idx] >= 0
            if has_cat.any():
                loss = loss + CATEGORY_WEIGHT * torch.nn.functional.cross_entropy(out[has_cat, 1:], ct[idx][has_cat])
            opt.zero_grad()
            loss.backward()
            opt.step()
    w1, b1, w2, b2 = (p.detach().numpy().copy() for p in net.parameters())
    return {"w1": w1.T, "b1": b1, "w2": w2.T, "b2": b2}


def targets(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Training targets: P(unsafe) per item and the category index (-1: no category / not unsafe)."""
    y = np.array([TARGETS[r["label"]] for r in rows], dtype=np.float32)
    index = {c: i for i, c in enumerate(MODERATION_CATEGORIES)}
    cat = np.array([index.get(r["category"], -1) if r["label"] == "unsafe" else -1 for r in rows], dtype=np.int64)
    return y, cat


def save_head(members: list[dict[str, np.ndarray]], out: Path | str, corpus_sha256: str, items: int) -> None:
    """The head file ``SafetyModel`` loads: the members stacked as float16 and the provenance."""
    stacked = {k: np.stack([m[k] for m in members]).astype(np.float16) for k in members[0]}
    meta = {
        "version": HEAD_VERSION,
        "encoder": "sentence-transformers/all-MiniLM-L6-v2",
        "categories": list(MODERATION_CATEGORIES),
        "corpus_sha256": corpus_sha256,
        "items": items,
        "hidden": HIDDEN,
        "members": len(members),
    }
    np.savez_compressed(out, meta=np.array(json.dumps(meta)), **stacked)


def is_held_out(group: str, folds: int = 5) -> bool:
    """The same 1-in-``folds`` split of topic groups on every run (by hash, not by position)."""
    return int(hashlib.sha256(group.encode()).hexdigest()[:8], 16) % folds == 0


def predict(members: list[dict[str, np.ndarray]], x: np.ndarray) -> np.ndarray:
    """P(unsafe) of the ensemble for embeddings ``x`` (the same arithmetic as ``SafetyModel``)."""
    ps = []
    for m in members:
        hidden = np.maximum(x @ m["w1"] + m["b1"], 0.0)
        ps.append(1.0 / (1.0 + np.exp(-(hidden @ m["w2"] + m["b2"])[:, 0])))
    return np.mean(ps, axis=0)


def report_holdout(rows: list[dict], p_unsafe: np.ndarray, thresholds: tuple[float, ...] = (0.5, 0.2, 0.01)) -> None:
    """Per item type and overall: accuracy on the held-out groups at each flag threshold on P(unsafe): 0.5 is a
    plain request, 0.2 and 0.01 what the scanner's likelihood ratios (4 and 100, ``typographic.py``) amount to
    when the text is shown as a question / as a heading in the FigStep layout."""
    by_type: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_type.setdefault(f"{r['type']} ({r['label']})", []).append(i)
    y = np.array([r["label"] == "unsafe" for r in rows])
    head = " ".join(f"acc@{t:<4}" for t in thresholds)
    print(f"{'held-out type':40s} {'n':>5s} {head}  (borderline: share passing at 0.5 / flagged at 0.2)")
    for name, idx in sorted(by_type.items()):
        if name.endswith("(borderline)"):
            p = p_unsafe[idx]
            print(f"{name:40s} {len(idx):5d} {np.mean(p < 0.5):8.3f} {np.mean(p >= 0.2):8.3f}")
            continue
        accs = " ".join(f"{np.mean((p_unsafe[idx] >= t) == y[idx]):8.3f}" for t in thresholds)
        print(f"{name:40s} {len(idx):5d} {accs}")
    known = np.array([r["label"] != "borderline" for r in rows])
    for t in thresholds:
        flagged = p_unsafe >= t
        recall, safe_pass = flagged[y].mean(), (~flagged[~y & known]).mean()
        print(
            f"threshold {t}: unsafe recall {recall:.3f}  safe pass {safe_pass:.3f}  "
            f"balanced {(recall + safe_pass) / 2:.3f}  (n={int(known.sum())}, {int(y.sum())} unsafe)"
        )


EMBEDDING_CACHE = Path(tempfile.gettempdir()) / "ecoalign-corpus-minilm"


def cached_embeddings(encoder: MiniLM, texts: list[str]) -> np.ndarray:
    """The encoder's embeddings of ``texts`` (float32), cached under /tmp by the SHA-256 of the texts and the
    encoder id: retraining and the family cross-validation then skip the ~minute-long encoder pass."""
    key = hashlib.sha256("\n".join([encoder.model_id, *texts]).encode()).hexdigest()[:20]
    path = EMBEDDING_CACHE / f"{key}.npy"
    if path.exists():
        return np.load(path)
    x = encoder.embed(texts).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, x)
    tmp.replace(path)
    return x


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(CORPUS_PATH))
    parser.add_argument("--out", default=str(HEAD_PATH))
    parser.add_argument("--holdout", action="store_true", help="train on 4/5 of the topic groups, score the rest")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    from ecoalign.evaluators.embedder import load_minilm

    rows = load_corpus(Path(args.corpus))
    t0 = time.perf_counter()
    x = cached_embeddings(load_minilm(), [r["text"] for r in rows])
    y, cat = targets(rows)
    if args.holdout:
        test = np.array([is_held_out(r.get("group", r["text"])) for r in rows])
        members = [train(x[~test], y[~test], cat[~test], seed) for seed in range(MEMBERS)]
        held = [r for r, t in zip(rows, test, strict=True) if t]
        report_holdout(held, predict(members, x[test]))
        print(f"trained on {int((~test).sum())} items, held out {int(test.sum())} in {time.perf_counter() - t0:.1f}s")
        return
    members = [train(x, y, cat, seed) for seed in range(MEMBERS)]
    save_head(members, args.out, hashlib.sha256(Path(args.corpus).read_bytes()).hexdigest(), len(rows))
    print(f"trained {MEMBERS} members on {len(rows)} items in {time.perf_counter() - t0:.1f}s -> {args.out}")


if __name__ == "__main__":
    main()

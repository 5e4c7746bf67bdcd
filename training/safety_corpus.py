"""The project's own labelled training corpus for the offline safety head (``data/safety_corpus.jsonl``).

Why templates: XSTest-like safe prompts look unsafe on the surface (homonyms, figurative language, safe targets,
safe contexts, definitions, history, nonsense groups, public or fictional people). A classifier only learns that
the *object* or *context* decides, not the verb or the frame ("Steps to…", "How do I…"), if the same verbs and
frames appear on both sides. So every harmful activity has benign twins built from the same words, and every
request frame is shared by safe and unsafe items. Nothing here is taken from any benchmark.

Labels: ``safe``, ``unsafe`` and ``borderline`` (generic medical/financial/legal procedures, trained at a soft
target, see ``train_safety.py``); restricted advice for one's own case is ``unsafe`` with no category, while asking
how to get help with it, how to stay safe or protect someone, where to find support or what one's rights are is
``safe`` (the ``help_*`` types: victims, parents, friends, tenants, patients; their unsafe twins ask to do the harm,
retaliate or get away with it). ``group`` is the topic an item was built from, for held-out splits
(``train_safety --holdout``).

The templates are data (``data/safety_templates.json``), the families that combine them are
``corpus_families.py``; ``python -m training.safety_corpus`` rewrites ``data/safety_corpus.jsonl`` (deterministic:
fixed seeds, so the same templates give the same bytes).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from training.corpus_families import MAIN_FAMILIES, TWIN_FAMILIES, Item, Items
from training.phrasing import PhrasingTemplates
from training.safety_templates import TEMPLATES_PATH, load_templates

CORPUS_PATH = Path(__file__).parent / "data" / "safety_corpus.jsonl"
MAIN_SEED = 20240611
# the round-2 twins draw from a generator of their own, so adding them left every earlier item unchanged
TWIN_SEED = 20240612


def candidate_items(templates_path: Path = TEMPLATES_PATH) -> list[tuple[Item, str]]:
    """Every candidate item as ((text, label, category, type, group), source) before de-duplication, family by
    family; ``source`` is the name of the family function that generated it."""
    tpl = load_templates(templates_path)
    out = Items()
    sources: list[str] = []
    for seed, families in ((MAIN_SEED, MAIN_FAMILIES), (TWIN_SEED, TWIN_FAMILIES)):
        rng = random.Random(seed)
        for family in families:
            out.group = None
            family(out, rng, tpl)
            sources += [family.__name__] * (len(out.rows) - len(sources))
    return list(zip(out.rows, sources, strict=True))


def build_corpus(templates_path: Path = TEMPLATES_PATH) -> list[dict[str, str]]:
    """The corpus as JSON-ready rows, de-duplicated (ignoring case and surrounding spaces), in a stable order.

    ``template`` is the phrasing template an item's text was formatted from (derived by matching the generator's
    own format strings, ``training/phrasing.py``) and ``source`` the family function that built it: with ``group``
    they are the three whole-family axes of ``benchmarks/family_cv.py``."""
    phrasing = PhrasingTemplates.from_generator(templates_path)
    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    for (text, label, category, kind, group), source in candidate_items(templates_path):
        key = text.strip().lower()
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            {
                "text": text,
                "label": label,
                "category": category,
                "type": kind,
                "group": group,
                "template": phrasing.template_of(text),
                "source": source,
            }
        )
    return rows


def load_corpus(path: Path = CORPUS_PATH) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_corpus(rows: list[dict[str, str]], path: Path = CORPUS_PATH) -> None:
    """One JSON object a line, non-ASCII kept as is: the bytes the head's ``corpus_sha256`` is taken over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    rows = build_corpus()
    write_corpus(rows)
    n_unsafe = sum(r["label"] == "unsafe" for r in rows)
    print(f"wrote {len(rows)} items ({n_unsafe} unsafe) to {CORPUS_PATH}")


if __name__ == "__main__":
    main()

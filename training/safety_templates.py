"""The templates the safety corpus is built from, as data (``data/safety_templates.json``).

Each entry of the JSON file is a named list (frames, verbs, people, activities with their category, …) with
optional ``section`` / ``notes`` / ``about`` texts that say what the list is for; ``corpus_families.py`` combines
them. Lists load as tuples (nested lists too) so the generator cannot change them by accident.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

TEMPLATES_PATH = Path(__file__).parent / "data" / "safety_templates.json"


class Templates(SimpleNamespace):
    """The template lists by name (``tpl.frames``, ``tpl.harm_verbs``, …): the JSON file's ``items``."""


def _frozen(value: Any) -> Any:
    """JSON lists as tuples, recursively (dicts keep their keys, their values are frozen too)."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


def load_templates(path: Path = TEMPLATES_PATH) -> Templates:
    with path.open(encoding="utf-8") as fh:
        entries: dict[str, dict[str, Any]] = json.load(fh)
    return Templates(**{name: _frozen(entry["items"]) for name, entry in entries.items()})

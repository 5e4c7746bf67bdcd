"""Which phrasing template a corpus item was written from, derived from the generator's own format strings.

Why derived rather than recorded: the families format their frames in many places (``rng.choice(tpl.frames)
.format(a=…)``, inline tuples of frames), and threading an id through every call would change the generator. The
templates are all ``str.format`` strings, either in ``data/safety_templates.json`` or as literals in
``corpus_families.py``; an item's template is the one whose fixed words match its whole text, the most specific
(most fixed characters) when several do. An item that matches none (a fixed text from a list, a caption, noise)
gets ``open:<its first two words>``, its opening frame, so the leave-one-template-out split still keeps items that
open alike on one side.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.safety_templates import TEMPLATES_PATH

FAMILIES_SOURCE = Path(__file__).parent / "corpus_families.py"
_FIELD = re.compile(r"\{[a-z_0-9]*\}")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def generator_format_strings(templates_path: Path = TEMPLATES_PATH) -> list[str]:
    """Every ``str.format`` template the generator uses: the JSON lists' strings with a field, and the string
    literals with a field in ``corpus_families.py`` (not its f-strings, which fill slots rather than frame)."""
    entries = json.loads(templates_path.read_text(encoding="utf-8"))
    found = {s for entry in entries.values() for s in _strings(entry["items"]) if _FIELD.search(s)}
    tree = ast.parse(FAMILIES_SOURCE.read_text(encoding="utf-8"))
    fstring_parts = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in fstring_parts:
            continue
        text = node.value
        if _FIELD.search(text) and not text.lstrip().startswith(("A ", "The ")):  # not a docstring
            found.add(text)
    return sorted(found)


@dataclass(frozen=True)
class _Pattern:
    template: str
    regex: re.Pattern[str]
    fixed: int  # characters outside the fields: the more, the more specific the match


class PhrasingTemplates:
    """Matches texts to the generator's templates (``template_of``)."""

    def __init__(self, templates: list[str]) -> None:
        patterns = []
        for t in templates:
            parts = _FIELD.split(t)
            fixed = sum(len(p.strip()) for p in parts)
            if fixed < 4:  # "{a}" alone or "{a} {b}" says nothing about phrasing
                continue
            regex = re.compile(
                "".join(re.escape(p) if i == 0 else "(.+?)" + re.escape(p) for i, p in enumerate(parts)),
                re.IGNORECASE | re.DOTALL,
            )
            patterns.append(_Pattern(t, regex, fixed))
        self._patterns = sorted(patterns, key=lambda p: (-p.fixed, p.template))

    @classmethod
    def from_generator(cls, templates_path: Path = TEMPLATES_PATH) -> PhrasingTemplates:
        return cls(generator_format_strings(templates_path))

    def template_of(self, text: str) -> str:
        """The most specific template whose fixed words match all of ``text``, else ``open:<first two words>``."""
        stripped = text.strip()
        for p in self._patterns:
            if p.regex.fullmatch(stripped):
                return p.template
        return "open:" + " ".join(re.findall(r"[a-z']+", stripped.lower())[:2])

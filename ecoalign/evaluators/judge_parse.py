"""Lenient parsing of an LLM judge's verdict.

Why lenient: small and local models wrap JSON in code fences, add prose after it, use single quotes or trailing
commas, write numbers as strings, grade on 0..10 or 0..100 scales, or drop keys. Each of those is recoverable;
only a reply with no usable safety signal at all is "unparseable" (the judge then falls back, see ``judge.py``).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field

from ecoalign.categories import MODERATION_CATEGORIES

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_WORDS = {
    "safe": 1.0,
    "unsafe": 0.0,
    "harmful": 0.0,
    "harmless": 1.0,
    "high": 1.0,
    "low": 0.0,
    "medium": 0.5,
    "yes": 1.0,
    "no": 0.0,
    "true": 1.0,
    "false": 0.0,
    "none": 0.0,
}


class UnparseableVerdict(ValueError):
    """The reply holds no usable safety signal."""


@dataclass(frozen=True)
class Verdict:
    safety: float
    utility: float | None
    categories: dict[str, float]
    rationale: str
    notes: tuple[str, ...] = field(default=())  # what had to be repaired or defaulted


def to_unit(value: object) -> float | None:
    """A 0..1 number from what judges write: 0.8, "0.8", "80%", 8 (of 10), 80 (of 100), "safe", True."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _WORDS:
            return _WORDS[text]
        match = _NUMBER.search(text)
        if not match:
            return None
        number = float(match.group(0))
        if "%" in text:
            number /= 100.0
        elif "/" in text:  # "7/10"
            tail = _NUMBER.findall(text[match.end() :])
            if tail and float(tail[0]) > 0:
                number /= float(tail[0])
        value = number
    if isinstance(value, int | float):
        number = float(value)
        if number != number:  # NaN
            return None
        if number > 1.0:
            number = number / 10.0 if number <= 10.0 else number / 100.0
        return min(1.0, max(0.0, number))
    return None


def _balanced_object(text: str) -> str | None:
    """The first {...} span with balanced braces (ignoring braces inside strings)."""
    start = text.find("{")
    while start != -1:
        depth, quote, escape = 0, "", False
        for i in range(start, len(text)):
            ch = text[i]
            if quote:
                if escape:
                    escape = False
                elif ch == "\\":
                    escape = True
                elif ch == quote:
                    quote = ""
            elif ch in "\"'":
                quote = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return text[start : i + 1]
        start = text.find("{", start + 1)
    if "{" in text:  # unterminated: close it
        return text[text.find("{") :].rstrip().rstrip(",") + "}"
    return None


def _load(blob: str, notes: list[str]) -> dict | None:
    """json, then repaired json, then a Python literal (single quotes, True/None)."""
    try:
        data = json.loads(blob)
        return data if isinstance(data, dict) else None
    except json.JSONDecodeError:
        pass
    repaired = re.sub(r",\s*([}\]])", r"\1", blob)  # trailing commas
    repaired = re.sub(r"([{,]\s*)([A-Za-z_][\w/-]*)\s*:", r'\1"\2":', repaired)  # bare keys
    try:
        data = json.loads(repaired)
        notes.append("repaired-json")
        return data if isinstance(data, dict) else None
    except json.JSONDecodeError:
        pass
    literal = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", re.sub(r"\bnull\b", "None", blob)))
    literal = re.sub(r",\s*([}\]])", r"\1", literal)
    try:
        data = ast.literal_eval(literal)
        notes.append("python-literal")
        return data if isinstance(data, dict) else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def _get(data: dict, *names: str) -> object:
    lowered = {str(k).strip().lower(): v for k, v in data.items()}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def _categories(raw: object, extra: tuple[str, ...] = ()) -> dict[str, float]:
    scores = dict.fromkeys((*MODERATION_CATEGORIES, *extra), 0.0)
    if isinstance(raw, list):
        raw = dict.fromkeys((c for c in raw if isinstance(c, str)), 1.0)
    if isinstance(raw, dict):
        for key, value in raw.items():
            name = str(key).strip().lower().replace("_", "-").replace(" ", "-")
            if name not in extra:  # a custom category's name is taken as written
                name = name.replace("-threatening", "/threatening").replace("-violent", "/violent")
                name = name.replace("-intent", "/intent").replace("-instructions", "/instructions")
                name = name.replace("-minors", "/minors").replace("-graphic", "/graphic")
            unit = to_unit(value)
            if name in scores and unit is not None:
                scores[name] = unit
    return scores


def _from_prose(text: str) -> dict | None:
    """Last resort: "safety: 0.2, utility: 0.7" written as prose."""
    found = {}
    for key in ("safety", "utility"):
        match = re.search(rf"{key}\W{{0,4}}([\"']?[\w.%/]+)", text, re.IGNORECASE)
        if match:
            found[key] = match.group(1).strip("\"'")
    return found or None


def parse_verdict(text: str, extra_categories: tuple[str, ...] = ()) -> Verdict:
    """A ``Verdict`` from a judge reply, or ``UnparseableVerdict`` if no safety signal can be recovered;
    ``extra_categories`` are read too (a moderation policy's custom categories)."""
    notes: list[str] = []
    body = text or ""
    fenced = _FENCE.search(body)
    if fenced:
        body = fenced.group(1)
        notes.append("code-fence")
    blob = _balanced_object(body)
    data = _load(blob, notes) if blob else None
    if data is None:
        data = _from_prose(body)
        if data is None:
            raise UnparseableVerdict("no JSON object and no 'safety' in the reply")
        notes.append("prose")
    categories = _categories(_get(data, "categories", "category_scores", "category"), extra_categories)
    safety = to_unit(_get(data, "safety", "safety_score", "safe", "is_safe", "score"))
    if safety is None:
        unsafe = to_unit(_get(data, "unsafe", "flagged", "harmful", "risk", "harm"))
        if unsafe is not None:
            safety = 1.0 - unsafe
            notes.append("safety-from-risk")
        elif any(categories.values()):
            safety = 1.0 - max(categories.values())
            notes.append("safety-from-categories")
        else:
            raise UnparseableVerdict("no safety value in the reply")
    utility = to_unit(_get(data, "utility", "usefulness", "helpfulness", "quality"))
    if utility is None:
        notes.append("utility-missing")
    rationale = _get(data, "rationale", "reason", "explanation", "reasoning")
    return Verdict(safety, utility, categories, str(rationale or ""), tuple(notes))

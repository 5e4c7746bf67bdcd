"""Recognise the typographic-instruction pattern (FigStep and kin) from the OCR text and the request text.

Why a structural rule next to the content model: FigStep's image holds a task heading ("Steps to …", "Methods
to …", "List of …") over an *empty* numbered list, and the text only says "fill in the items". The text is
benign on purpose and some headings name restricted-advice topics (legal, financial, medical) that no harm
category covers, so content scoring alone misses part of the attack. Delivering the task through an image with
empty slots and asking for it to be completed is itself the jailbreak signature; the scanner caps such an image
segment's safety (see ``OfflineScanner``). The rule needs all three: an instruction in the image, at least two
empty enumerators, and a request text that hands the task over to the image ("generate content for each item").
It does not fire on an image that merely shows a question, a heading or a filled list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ENUMERATOR = re.compile(r"^\s*(?:\(?\d{1,2}\s*[.):]?|[•\-*])\s*$")
_TRAILING_ENUMS = re.compile(r"(?:\s*\(?\b\d{1,2}\b\s*[.):]?)+\s*$")
_HEADING = re.compile(
    r"^\s*(?:steps?|methods?|ways?|list|lists|instructions?|guide|tips?|procedures?|techniques?|strategies|"
    r"how)\b.{0,20}?\b(?:to|for|of)\b",
    re.IGNORECASE,
)
_IMAGE_WORDS = re.compile(r"\b(?:image|picture|photo|figure|screenshot|list|items?|text above|shown)\b", re.I)
_FILL_WORDS = re.compile(
    r"\b(?:generate|fill|complete|write|provide|elaborate|expand|continue|detail(?:ed)?|content|answer|"
    r"follow|carry out|do what)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class TypographicSignal:
    """What the rule saw: the instruction read from the image and whether the attack pattern is present."""

    instruction: str  # the image text without its trailing empty enumerators
    empty_slots: int  # how many bare enumerators ("1.", "2", "3 .") the image has
    heading: bool  # the instruction starts like a task heading
    handover: bool  # the request text asks the model to produce what the image lists
    attack: bool  # instruction + empty slots + handover: the FigStep-style pattern


def split_instruction(lines: tuple[str, ...]) -> tuple[str, int]:
    """The image's instruction text and the number of empty enumerator lines."""
    words: list[str] = []
    empty = 0
    for line in lines:
        if _ENUMERATOR.match(line):
            empty += 1
        else:
            words.append(line)
    text = " ".join(words)
    trailing = _TRAILING_ENUMS.search(text)
    if trailing and trailing.start() > 0:
        empty += len(re.findall(r"\d{1,2}", trailing.group(0)))
        text = text[: trailing.start()]
    return text.strip(), empty


def detect(lines: tuple[str, ...], request_text: str) -> TypographicSignal:
    """Apply the rule to one image's OCR lines in the context of the request's text."""
    instruction, empty = split_instruction(lines)
    heading = bool(_HEADING.match(instruction))
    handover = bool(_IMAGE_WORDS.search(request_text) and _FILL_WORDS.search(request_text))
    attack = bool(instruction) and empty >= 2 and handover
    return TypographicSignal(instruction, empty, heading, handover, attack)

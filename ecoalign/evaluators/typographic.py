"""Recognise the typographic-instruction pattern (FigStep and kin) from the OCR text and the request text.

Why a structural rule next to the content model: FigStep's image holds a task heading ("Steps to …", "Methods
to …", "List of …") over an *empty* numbered list, and the text only says "fill in the items". The text is
benign on purpose, so the request's own text says nothing; the instruction in the image does. The rule needs all
three: an instruction in the image, at least two empty enumerators, and a request text that hands the task over
to the image ("generate content for each item"). It does not fire on an image that merely shows a question, a
heading or a filled list.

The pattern is **evidence, not a verdict**: a benign instruction in that layout ("Steps to kill a Python
process. 1. 2. 3.") is still benign. ``with_pattern_evidence`` applies it as a likelihood ratio on the content
model's odds of harm (Bayes' rule in odds form: posterior odds = prior odds × LR), so the layout tips uncertain
instructions over the flag threshold without overruling a confident content score, and caps the result at the
review ceiling so the item lands in the escalation band where an LLM judge, when configured, decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ENUMERATOR = re.compile(r"^\s*(?:\(?\d{1,2}\s*[.):]?|[•\-*])\s*$")
_TRAILING_ENUMS = re.compile(r"(?:\s*\(?\b\d{1,2}\b\s*[.):]?)+\s*$")
# a task heading in statement form ("Steps to …", "List of …", "Methods for …"): FigStep rewrites each question
# into one; a question ("How do I …?") is not a heading
_HEADING = re.compile(
    r"^\s*(?:steps?|methods?|ways?|list|lists|instructions?|guide|tips?|procedures?|techniques?|strategies)\b"
    r".{0,20}?\b(?:to|for|of)\b",
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
    heading: bool  # the instruction is a task heading in statement form (not a question)
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
    heading = bool(_HEADING.match(instruction)) and not instruction.rstrip().endswith("?")
    handover = bool(_IMAGE_WORDS.search(request_text) and _FILL_WORDS.search(request_text))
    attack = bool(instruction) and empty >= 2 and handover
    return TypographicSignal(instruction, empty, heading, handover, attack)


# Likelihood ratios P(evidence | harmful request) / P(evidence | benign request). Chosen, not fitted (there is no
# benign traffic in this layout to fit them on):
# * an instruction over empty slots with a text that hands the task over: 4 (hiding the task in an image and
#   asking for it to be completed is what a jailbreak does, and uncommon otherwise) -> flagged when the content
#   model puts the instruction at >= 20 % harm;
# * the complete FigStep construction, the instruction rewritten as a statement heading ("Steps to …", "List
#   of …", "Methods to …") over the empty list, with the hand-over: 100 -> flagged at >= 1 % harm. A plainly
#   benign heading ("Steps to bake sourdough bread.", well under 1 %) still passes.
PATTERN_LIKELIHOOD_RATIO = 4.0
SIGNATURE_LIKELIHOOD_RATIO = 100.0
# The highest safety an image in the pattern may keep: inside the moderation escalation band (hi = 0.9), so a
# judge that is configured looks at every such item; without a judge the item still passes (0.85 >= tau).
PATTERN_REVIEW_CEILING = 0.85


def likelihood_ratio(
    signal: TypographicSignal,
    pattern: float = PATTERN_LIKELIHOOD_RATIO,
    signature: float = SIGNATURE_LIKELIHOOD_RATIO,
) -> float:
    """The evidence the layout carries: 1 without the pattern, ``signature`` for a heading, else ``pattern``."""
    if not signal.attack:
        return 1.0
    return signature if signal.heading else pattern


def with_pattern_evidence(safety: float, likelihood_ratio: float, ceiling: float = PATTERN_REVIEW_CEILING) -> float:
    """The segment's safety once the layout is taken into account: 1 - P(harm | content, layout), Bayes' rule in
    odds form (posterior odds = the content model's odds × the likelihood ratio), at most ``ceiling``."""
    p = min(max(1.0 - safety, 1e-6), 1.0 - 1e-6)
    odds = p / (1.0 - p) * likelihood_ratio
    return min(1.0 - odds / (1.0 + odds), ceiling)

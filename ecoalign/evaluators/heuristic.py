"""A keyword-lexicon scanner and node evaluator for **tests and benchmarks of the pipeline only**.

Why it exists: the offline evaluators (OCR + MiniLM) take seconds to load in every worker process and tens of
milliseconds per node on two cores; tests that start many Celery worker processes and benchmarks that measure
orchestration overhead need an evaluator whose cost is negligible and whose scores are deterministic.
Select it with ``ECOALIGN_EVALUATOR=heuristic``; it is never a default.

What it is, honestly: safety is ``1 - risk``, where risk is the strongest hit of a short hand-written list of
harm terms (whole words, case-insensitive) per OpenAI moderation category; refusal phrasing lowers a node's
risk. Utility is the share of the request's content words the text covers, plus a length term, minus a large
penalty for refusals. It cannot read images (no OCR): an image segment scores ``image_safety`` (uncertain by
default), so multimodal requests always reach the search. It is easy to fool (paraphrase, misspelling,
figurative language) and must never be used to judge the quality of an alignment run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ecoalign.categories import empty_scores
from ecoalign.content import Request
from ecoalign.evaluators.base import NodeToScore, Score, Segment
from ecoalign.evaluators.stance import Stance, step_stance

EVALUATOR_ID = "heuristic-lexicon@1"
NODE_EVALUATOR_ID = f"{EVALUATOR_ID}+stance-v1"  # the node scorer reads the step's stance (``stance``)

# (category, risk) per term. Risk is the safety cost of one hit; the strongest hit of a text wins.
_LEXICON: dict[str, tuple[str, float]] = {
    # violence / weapons
    "kill": ("violence", 0.8), "murder": ("violence", 0.9), "stab": ("violence", 0.8),
    "strangle": ("violence", 0.9), "bomb": ("illicit/violent", 0.95), "explosive": ("illicit/violent", 0.9),
    "gun": ("illicit/violent", 0.45), "weapon": ("illicit/violent", 0.5), "shoot": ("violence", 0.6),
    "attack": ("violence", 0.35), "hurt": ("violence", 0.4), "poison": ("violence", 0.7),
    # illicit
    "drug": ("illicit", 0.45), "drugs": ("illicit", 0.45), "meth": ("illicit", 0.9),
    "cocaine": ("illicit", 0.8), "steal": ("illicit", 0.55), "hack": ("illicit", 0.4),
    "lock": ("illicit", 0.3), "pick": ("illicit", 0.15), "launder": ("illicit", 0.8),
    "counterfeit": ("illicit", 0.75), "illegal": ("illicit", 0.6), "fraud": ("illicit", 0.7),
    # self-harm
    "suicide": ("self-harm", 0.85), "overdose": ("self-harm/instructions", 0.75),
    "cut myself": ("self-harm/intent", 0.9),
    # hate / harassment
    "slur": ("hate", 0.7), "inferior": ("hate", 0.4), "threaten": ("harassment/threatening", 0.7),
    "stalk": ("harassment", 0.7),
    # sexual
    "nude": ("sexual", 0.6), "explicit": ("sexual", 0.35), "minor": ("sexual/minors", 0.3),
}
_REFUSAL_RE = re.compile(
    r"\b(i can(?:no|')t help|i won't|i will not|cannot assist|can't assist|decline|not able to help|"
    r"i can't provide|safe alternative)\b",
    re.IGNORECASE,
)
_WORD_RE = re.compile(r"[a-z0-9']+")
_STOP_WORDS = (
    "a an the and or of to in on for with how do i you me my can is are what be it this that please your at by "
    "as from give tell explain write step steps way ways"
)
_STOP = frozenset(_STOP_WORDS.split())
_TERMS = sorted(_LEXICON, key=len, reverse=True)
_TERM_RE = re.compile(r"\b(" + "|".join(re.escape(t) for t in _TERMS) + r")\b", re.IGNORECASE)


def text_risk(text: str) -> tuple[float, dict[str, float]]:
    """The strongest lexicon hit of ``text`` (0 when none) and the per-category scores."""
    categories = empty_scores()
    risk = 0.0
    for match in _TERM_RE.finditer(text):
        category, weight = _LEXICON[match.group(1).lower()]
        categories[category] = max(categories[category], weight)
        risk = max(risk, weight)
    return risk, categories


def content_words(text: str) -> set[str]:
    return {w for w in _WORD_RE.findall(text.lower()) if w not in _STOP and len(w) > 2}


@dataclass
class HeuristicScanner:
    """Scores the request's text; images are ``image_safety`` (no OCR here). Weakest segment wins."""

    image_safety: float = 0.5
    benign_safety: float = 0.98  # a text with no hit; above the default tau_easy, so it takes the direct path
    evaluator_id: str = EVALUATOR_ID

    def scan(self, request: Request) -> Score:
        risk, categories = text_risk(request.text)
        segments = [Segment("text", 0, request.text, self._safety(risk), categories)]
        segments += [Segment("image", i, "", self.image_safety, empty_scores()) for i in range(len(request.images))]
        weakest = min(range(len(segments)), key=lambda i: segments[i].safety)
        return Score(
            safety=segments[weakest].safety,
            utility=0.0,
            categories=segments[weakest].categories,
            evaluator=self.evaluator_id,
            segments=tuple(segments),
            weakest=weakest,
        )

    def _safety(self, risk: float) -> float:
        return round(min(self.benign_safety, 1.0 - risk), 4)


@dataclass
class HeuristicNodeEvaluator:
    """Safety from the lexicon (a refusal is safe), utility from coverage of the request and length.

    Stance (``stance``): a step that declines is a refusal; a step that commits to what the request asks carries the
    request's own lexicon risk (what it commits to), whatever words it uses itself."""

    evaluator_id: str = NODE_EVALUATOR_ID

    def score_node(self, node: NodeToScore) -> Score:
        stance = step_stance(node.text)
        refusal = node.kind == "refusal" or stance is Stance.DECLINE or bool(_REFUSAL_RE.search(node.text))
        risk, categories = text_risk(node.text)
        if refusal:
            risk *= 0.2  # naming the harm while declining it is not harmful
        elif stance is Stance.COMPLY:
            request_risk, request_categories = text_risk(node.request.text)
            risk = max(risk, request_risk)
            categories = {c: max(v, request_categories[c]) for c, v in categories.items()}
        wanted = content_words(node.request.text)
        got = content_words(node.text)
        coverage = len(wanted & got) / len(wanted) if wanted else 0.5
        length = min(len(node.text.split()) / 40.0, 1.0)
        utility = 0.6 * coverage + 0.4 * length
        if refusal:
            utility = min(utility, 0.1)
        return Score(
            safety=round(1.0 - risk, 4),
            utility=round(utility, 4),
            categories=categories,
            evaluator=self.evaluator_id,
        )

"""The offline global scanner: the request's text and each image (read by OCR) are scored as separate segments,
and the request's risk is the weakest segment (the method's "weakest link", applied before any generation).

Why segments rather than one concatenated text: a harmful instruction hidden in an image next to a benign text
(FigStep) is diluted in a joint embedding; scored alone it stands out, and ``Score.weakest`` says where it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ecoalign.categories import MODERATION_CATEGORIES, empty_scores
from ecoalign.content import Request
from ecoalign.evaluators.base import Score, Segment
from ecoalign.evaluators.ocr import OcrEngine, OcrResult
from ecoalign.evaluators.safety_model import HEAD_VERSION, SafetyModel, TextSafety
from ecoalign.evaluators.typographic import (
    PATTERN_LIKELIHOOD_RATIO,
    PATTERN_REVIEW_CEILING,
    SIGNATURE_LIKELIHOOD_RATIO,
    TypographicSignal,
    detect,
    likelihood_ratio,
    with_pattern_evidence,
)

EVALUATOR_ID = f"scanner:{HEAD_VERSION}+rapidocr"


@dataclass(frozen=True)
class _ImagePlan:
    ocr: OcrResult
    signal: TypographicSignal
    own: int | None  # index into the batch of texts to score, None if nothing readable
    joint: int | None  # the request text + image instruction, when the text hands the task to the image


class OfflineScanner:
    """``Scanner`` from MiniLM + the trained safety head + RapidOCR; no network, no tokens.

    ``blank_image_safety``: what an image with no readable text scores. The scanner cannot see pictures, so it is
    *neutral-safe*: above the flag threshold, but inside the moderation escalation band so a judge that can see
    images gets to look. An image segment showing the FigStep pattern (instruction + empty numbered list + a text
    that hands the task over, see ``typographic.py``) is scored on its instruction, then the pattern is applied as
    evidence: the content's odds of harm are multiplied by ``pattern_likelihood_ratio`` (by
    ``signature_likelihood_ratio`` when the instruction is a "Steps to …"/"List of …" heading, FigStep's own
    construction) and the safety is kept at most ``pattern_review_ceiling`` (inside the escalation band). The
    layout alone never flags a plainly benign instruction; ``pattern_likelihood_ratio=1.0,
    signature_likelihood_ratio=1.0, pattern_review_ceiling=1.0`` switches it off (content only).

    ``model`` and ``ocr`` are the objects themselves or zero-argument loaders called on first use (the composition
    root's getters): a process that scores only text, such as a model worker, then never loads the OCR engine.
    """

    evaluator_id = EVALUATOR_ID

    def __init__(
        self,
        model: SafetyModel | Callable[[], SafetyModel],
        ocr: OcrEngine | Callable[[], OcrEngine],
        *,
        blank_image_safety: float = 0.85,
        pattern_likelihood_ratio: float = PATTERN_LIKELIHOOD_RATIO,
        signature_likelihood_ratio: float = SIGNATURE_LIKELIHOOD_RATIO,
        pattern_review_ceiling: float = PATTERN_REVIEW_CEILING,
        ocr_workers: int = 2,
    ) -> None:
        self._model = model
        self._ocr = ocr
        self.blank_image_safety = blank_image_safety
        self.pattern_likelihood_ratio = pattern_likelihood_ratio
        self.signature_likelihood_ratio = signature_likelihood_ratio
        self.pattern_review_ceiling = pattern_review_ceiling
        self.ocr_workers = ocr_workers

    @property
    def model(self) -> SafetyModel:
        if not isinstance(self._model, SafetyModel):
            self._model = self._model()  # a loader: the same object on every call, so a race only repeats the call
        return self._model

    @property
    def ocr(self) -> OcrEngine:
        if not isinstance(self._ocr, OcrEngine):
            self._ocr = self._ocr()
        return self._ocr

    @property
    def model_id(self) -> str:
        return f"{self.model.model_id}+{self.ocr.model_id}"

    def scan(self, request: Request) -> Score:
        return self.scan_many([request])[0]

    def scan_many(self, requests: Sequence[Request]) -> list[Score]:
        """Scan a batch: all images are OCR'd concurrently, all texts go through the encoder in one pass."""
        images = [img.data for req in requests for img in req.images]
        ocr_results = iter(self.ocr.read_many(images, workers=self.ocr_workers)) if images else iter(())
        texts: list[str] = []

        def queue(text: str) -> int:
            texts.append(text)
            return len(texts) - 1

        plans: list[tuple[int | None, list[_ImagePlan]]] = []
        for req in requests:
            text_slot = queue(req.text) if req.text.strip() else None
            image_plans = []
            for _ in req.images:
                ocr = next(ocr_results)
                signal = detect(ocr.lines, req.text)
                own = queue(signal.instruction) if signal.instruction else None
                joint = queue(f"{req.text} {signal.instruction}") if own is not None and signal.handover else None
                image_plans.append(_ImagePlan(ocr, signal, own, joint))
            plans.append((text_slot, image_plans))
        scores = self.model.score(texts)
        return [self._assemble(req, slot, ims, scores) for req, (slot, ims) in zip(requests, plans, strict=True)]

    def _assemble(
        self, request: Request, text_slot: int | None, images: list[_ImagePlan], scores: list[TextSafety]
    ) -> Score:
        segments: list[Segment] = []
        text_score = scores[text_slot] if text_slot is not None else TextSafety(1.0, empty_scores())
        segments.append(Segment("text", 0, request.text, text_score.safety, dict(text_score.categories)))
        image_detail = []
        for index, plan in enumerate(images):
            info: dict = {
                "index": index,
                "ocr_chars": len(plan.ocr.text),
                "ocr_confidence": round(plan.ocr.confidence, 4),
                "ocr_s": round(plan.ocr.seconds, 4),
                "readable": plan.own is not None,
            }
            if plan.ocr.error:
                info["ocr_error"] = plan.ocr.error
            if plan.own is None:
                safety, cats = self.blank_image_safety, empty_scores()
                info["basis"] = "no-readable-text:neutral-safe"
            else:
                own = scores[plan.own]
                safety, cats = own.safety, dict(own.categories)
                info["basis"] = "ocr-text"
                if plan.joint is not None:
                    joint = scores[plan.joint]
                    info["joint_safety"] = round(joint.safety, 4)
                    # in the FigStep pattern the hand-over is the pattern's evidence (below), not a second score
                    if not plan.signal.attack:
                        if joint.safety < safety:
                            safety, info["basis"] = joint.safety, "ocr-text+request-text"
                        cats = {c: max(cats[c], joint.categories[c]) for c in MODERATION_CATEGORIES}
                if plan.signal.attack:
                    info["typographic_attack"] = True
                    info["content_safety"] = round(safety, 4)
                    lr = likelihood_ratio(plan.signal, self.pattern_likelihood_ratio, self.signature_likelihood_ratio)
                    info["heading"] = plan.signal.heading
                    info["likelihood_ratio"] = lr
                    adjusted = with_pattern_evidence(safety, lr, self.pattern_review_ceiling)
                    if adjusted < safety:
                        scale = (1.0 - adjusted) / max(1.0 - safety, 1e-6)
                        cats = {c: min(1.0, v * scale) for c, v in cats.items()}
                        safety = adjusted
                        info["basis"] = f"{info['basis']}+typographic-instruction-pattern"
                info["empty_slots"] = plan.signal.empty_slots
            segments.append(Segment("image", index, plan.ocr.text, safety, cats))
            image_detail.append(info)
        weakest = min(range(len(segments)), key=lambda i: segments[i].safety)
        categories = {c: max(s.categories.get(c, 0.0) for s in segments) for c in MODERATION_CATEGORIES}
        return Score(
            safety=segments[weakest].safety,
            utility=0.0,  # a scan judges risk only; utility belongs to generated nodes
            categories=categories,
            tokens=0,
            evaluator=self.evaluator_id,
            model=self.model_id,
            segments=tuple(segments),
            weakest=weakest,
            detail={"images": image_detail, "weakest_kind": segments[weakest].kind},
        )

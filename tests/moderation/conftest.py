"""Moderation test fixtures: a scanner with scripted safety, tiny real images, and a judge served over HTTP by the
real emulator (``EmulatorServer``) with a scripted JSON verdict."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from PIL import Image as PILImage

from ecoalign.categories import empty_scores
from ecoalign.content import Request
from ecoalign.evaluators.base import Score, Segment
from ecoalign.moderation.judge import ChatModerationJudge
from ecoalign.providers.openai_http import OpenAIChatProvider
from ecoalign.testing.emulator import EmulatorServer, last_user_text

# Words in a text that script the scan: SAFE → 0.99, UNSAFE → 0.02, MAYBE → 0.5 (uncertain), else 0.97.
_SCRIPT = {"UNSAFE": 0.02, "MAYBE": 0.5, "SAFE": 0.99}


def scripted_safety(text: str) -> float:
    for word, safety in _SCRIPT.items():
        if re.search(rf"\b{word}\b", text):
            return safety
    return 0.97


@dataclass
class ScriptedScanner:
    """Safety from marker words in the text; each image is a segment whose "OCR text" is its size; counts calls."""

    evaluator_id: str = "scripted@1"
    image_safety: float = 0.97
    calls: int = 0

    def scan(self, request: Request) -> Score:
        return self.scan_many([request])[0]

    def scan_many(self, requests: list[Request]) -> list[Score]:
        self.calls += 1
        out = []
        for request in requests:
            safety = scripted_safety(request.text)
            cats = empty_scores()
            cats["violence"] = round(1.0 - safety, 4)
            segments = [Segment("text", 0, request.text, safety, cats)]
            segments += [
                Segment("image", i, f"{len(img.data)} bytes", self.image_safety, empty_scores())
                for i, img in enumerate(request.images)
            ]
            weakest = min(range(len(segments)), key=lambda i: segments[i].safety)
            out.append(
                Score(
                    safety=segments[weakest].safety,
                    utility=0.0,
                    categories=segments[weakest].categories,
                    evaluator=self.evaluator_id,
                    segments=tuple(segments),
                    weakest=weakest,
                )
            )
        return out


def png_bytes(size: tuple[int, int] = (24, 16), color: str = "white") -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def judge_reply(body: dict) -> str:
    """The emulator's scripted judge: flags content whose text says HARMFUL, else clears it."""
    text = last_user_text(body.get("messages") or [])
    if "HARMFUL" in text:
        return json.dumps({"flagged": True, "categories": {"illicit": 0.9}, "rationale": "asks for harm"})
    return json.dumps({"flagged": False, "categories": {}, "rationale": "benign"})


@pytest.fixture
def scanner() -> ScriptedScanner:
    return ScriptedScanner()


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(reply_fn=judge_reply, model="judge-emu") as server:
        yield server


@pytest.fixture
def judge(emulator: EmulatorServer) -> Iterator[ChatModerationJudge]:
    provider = OpenAIChatProvider(emulator.base_url, "judge-emu", max_retries=0, timeout_s=10)
    yield ChatModerationJudge(provider)
    provider.close()

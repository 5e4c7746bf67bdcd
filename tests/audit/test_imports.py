"""The two import forms, read into the same trace; each bad line is named and fails alone."""

from __future__ import annotations

import json

import pytest

from ecoalign.audit.imports import TraceLineError, paragraphs, parse_lines, parse_trace
from ecoalign.audit.scoring import verdict
from tests.api.conftest import png_data_url
from tests.audit import traces as t

STEPS = ["First paragraph of reasoning.", "Second one,\nover two lines.", "Third."]


@pytest.mark.parametrize("form", [t.documented, t.chat_think, t.chat_reasoning])
def test_every_form_gives_the_same_prompt_steps_and_answer(form) -> None:
    trace = parse_trace(form("x1", STEPS, "The answer."))
    assert trace.id == "x1"
    assert trace.request.text == t.HARMFUL_PROMPT  # a system message is not the prompt
    assert trace.steps == tuple(STEPS)
    assert trace.answer == "The answer."


def test_paragraphs_split_on_blank_lines_only() -> None:
    assert paragraphs("a\nb\n\n  \n\nc\n\n") == ("a\nb", "c")


def test_a_chat_answer_without_reasoning_has_no_steps_and_images_come_from_the_parts() -> None:
    line = {"id": "c", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "What is in this picture?"},
                                     {"type": "image_url", "image_url": {"url": png_data_url()}}]},
        {"role": "assistant", "content": "A red square."},
    ]}
    trace = parse_trace(line)
    assert trace.steps == ()
    assert trace.answer == "A red square."
    assert len(trace.request.images) == 1


def test_documented_images_are_data_urls_and_paths_only_from_a_file(tmp_path) -> None:
    line = {**t.documented("d", STEPS, "ok"), "images": [png_data_url()]}
    assert len(parse_trace(line).request.images) == 1
    with pytest.raises(TraceLineError, match="data: URL here"):
        parse_trace({**line, "images": ["picture.png"]})
    with pytest.raises(TraceLineError, match="not found"):
        parse_trace({**line, "images": ["picture.png"]}, image_root=tmp_path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[1, 2]", "a line must be a JSON object"),
        ('{"id": "a"}', 'either "messages"'),
        ('{"id": "", "prompt": "p", "steps": [], "answer": "a"}', "id must be a non-empty string"),
        ('{"id": "a", "prompt": "p", "steps": "one", "answer": "a"}', "steps must be a list of strings"),
        ('{"id": "a", "messages": [{"role": "user", "content": "hi"}]}', "no assistant message"),
        ('{"id": "a", "messages": [{"role": "assistant", "content": "x"}]}', "the prompt"),
        ("{oops", "not JSON"),
    ],
)
def test_a_bad_line_is_named_and_the_others_still_parse(line: str, message: str) -> None:
    good = json.dumps(t.documented("ok", STEPS, "fine"))
    parsed = list(parse_lines([good, "", line, good]))
    assert [n for n, _ in parsed] == [1, 3, 4]
    assert isinstance(parsed[1][1], TraceLineError)
    assert message in str(parsed[1][1])
    assert not isinstance(parsed[0][1], TraceLineError)
    assert not isinstance(parsed[2][1], TraceLineError)


def test_process_blind_is_a_safe_answer_on_a_path_below_tau_and_mean_hides_it() -> None:
    steps = [0.9, 0.95, 0.1, 0.9, 0.92]
    weakest = verdict(steps, 0.97, tau=0.5, aggregate="min")
    assert weakest.process_blind
    assert weakest.weakest_step == 2
    assert weakest.path_safety == 0.1
    mean = verdict(steps, 0.97, tau=0.5, aggregate="mean")
    assert not mean.process_blind
    assert mean.weakest_step == 2
    assert verdict([0.9, 0.8], 0.97, tau=0.5, aggregate="min").weakest_step is None
    assert not verdict([0.1], 0.2, tau=0.5, aggregate="min").process_blind  # an unsafe answer is not blind

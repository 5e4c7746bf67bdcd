"""Input lines → output lines: both input forms, OpenAI's list semantics, and one error line per bad line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ecoalign.bulk.errors import RunError
from ecoalign.bulk.output import iter_output
from ecoalign.bulk.runner import run_moderation
from ecoalign.categories import MODERATION_CATEGORIES
from ecoalign.moderation.inputs import ParseOptions
from ecoalign.moderation.moderator import Moderator
from tests.moderation.conftest import ScriptedScanner, data_url, png_bytes


def _run(tmp_path: Path, lines: list[Any], **kwargs: Any) -> tuple[list[dict], Any]:
    src = tmp_path / "in.jsonl"
    with src.open("wb") as f:
        for line in lines:
            f.write((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n")
    dst = tmp_path / "out.jsonl"
    options = kwargs.pop("options", ParseOptions(base_dir=tmp_path))
    summary = run_moderation(
        src,
        dst,
        moderator=Moderator(ScriptedScanner()),
        db_url=f"sqlite:///{tmp_path / 'traces.db'}",
        progress=False,
        options=options,
        **kwargs,
    )
    return list(iter_output(dst)), summary


def _batch(custom_id: str | None, value: Any, url: str = "/v1/moderations", method: str = "POST") -> dict:
    line: dict[str, Any] = {"method": method, "url": url, "body": {"input": value}}
    if custom_id is not None:
        line["custom_id"] = custom_id
    return line


def test_both_forms_and_openai_list_semantics(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(png_bytes())
    lines = [
        _batch("str", "UNSAFE words"),
        _batch("list", ["SAFE one", "UNSAFE two", "MAYBE three"]),
        _batch(
            "parts",
            [{"type": "text", "text": "hello"}, {"type": "image_url", "image_url": {"url": data_url(png_bytes())}}],
        ),
        {"custom_id": "simple", "text": "a caption", "images": ["imgs/a.png", data_url(png_bytes((8, 8)))]},
        {"custom_id": "image-only", "images": ["imgs/a.png"]},
    ]
    out, summary = _run(tmp_path, lines)
    by_id = {line["custom_id"]: line for line in out}
    assert set(by_id) == {"str", "list", "parts", "simple", "image-only"}
    for line in out:
        assert set(line) == {"id", "custom_id", "response", "error"}
        assert line["error"] is None
        assert line["id"].startswith("batch_req_")
        assert line["response"]["status_code"] == 200
        assert line["response"]["request_id"].startswith("req_")
        body = line["response"]["body"]
        assert body["id"].startswith("modr-")
        assert body["model"] == "ecoalign-moderation:scripted@1"
        for result in body["results"]:
            assert list(result["category_scores"]) == list(MODERATION_CATEGORIES)
    flags = [r["flagged"] for r in by_id["list"]["response"]["body"]["results"]]
    assert flags == [False, True, False]  # one result per element, in order
    assert len(by_id["parts"]["response"]["body"]["results"]) == 1
    simple = by_id["simple"]["response"]["body"]["results"][0]
    assert simple["ecoalign"]["weakest_segment"]["kind"] in {"text", "image"}
    assert summary.results == 7
    assert summary.errors == 0
    assert summary.traces == 7


BAD_LINES: list[tuple[str, Any]] = [
    ("invalid_json", b'{"custom_id": "x", "text": '),
    ("invalid_json", b"\xff\xfe not utf-8"),
    ("invalid_line", b"[1, 2]"),
    ("missing_custom_id", {"text": "no id"}),
    ("missing_custom_id", _batch(None, "no id either")),
    ("invalid_custom_id", {"custom_id": 7, "text": "number"}),
    ("duplicate_custom_id", {"custom_id": "good-1", "text": "again"}),
    ("invalid_url", _batch("bad-url", "x", url="/v1/embeddings")),
    ("invalid_method", _batch("bad-method", "x", method="GET")),
    ("invalid_body", {"custom_id": "no-body", "method": "POST", "url": "/v1/moderations"}),
    ("invalid_input", _batch("empty-list", [])),
    ("invalid_input", _batch("bad-part", [{"type": "audio"}])),
    ("invalid_base64", _batch("bad-b64", [{"type": "image_url", "image_url": {"url": "data:image/png;base64,!!!"}}])),
    (
        "invalid_image",
        _batch("not-image", [{"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}}]),
    ),
    ("invalid_image", _batch("path-in-batch", [{"type": "image_url", "image_url": {"url": "imgs/a.png"}}])),
    ("image_not_found", {"custom_id": "missing-file", "text": "t", "images": ["nope/missing.png"]}),
    ("image_too_large", {"custom_id": "big-file", "text": "t", "images": ["big.png"]}),
    ("image_too_large", _batch("big-data-url", [{"type": "image_url", "image_url": {"url": "BIG"}}])),
    ("remote_images_disabled", {"custom_id": "remote", "text": "t", "images": ["https://example.com/a.png"]}),
    ("input_too_large", {"custom_id": "long", "text": "x" * 5000}),
]


def test_every_bad_line_gives_exactly_one_error_line(tmp_path: Path) -> None:
    big = png_bytes((900, 900), "red")
    (tmp_path / "big.png").write_bytes(big)
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(png_bytes())
    options = ParseOptions(base_dir=tmp_path, max_image_bytes=len(big) - 1, max_text_chars=4000)
    good = [{"custom_id": f"good-{i}", "text": f"SAFE {i}"} for i in range(1, 4)]
    lines: list[Any] = [good[0]]
    for _code, line in BAD_LINES:
        if line == _batch("big-data-url", [{"type": "image_url", "image_url": {"url": "BIG"}}]):
            line = _batch("big-data-url", [{"type": "image_url", "image_url": {"url": data_url(big)}}])
        lines.append(line)
        lines.append(b"   ")  # blank lines are ignored
    lines += good[1:]
    out, summary = _run(tmp_path, lines, options=options)
    errors = [line for line in out if line["error"] is not None]
    results = [line for line in out if line["error"] is None]
    assert sorted(r["custom_id"] for r in results) == ["good-1", "good-2", "good-3"]
    assert len(errors) == len(BAD_LINES) == summary.errors
    by_line = {e["error"]["line"]: e for e in errors}
    for position, (code, _) in enumerate(BAD_LINES):
        line_no = 2 + 2 * position
        error = by_line[line_no]
        assert error["error"]["code"] == code, (line_no, error)
        assert error["error"]["message"].startswith(f"line {line_no}: ")
        assert error["response"] is None
    assert by_line[14]["custom_id"] == "good-1"  # the duplicate names its custom_id
    assert by_line[2]["custom_id"] is None


def test_existing_output_needs_resume_or_overwrite(tmp_path: Path) -> None:
    _run(tmp_path, [{"custom_id": "a", "text": "SAFE"}])
    with pytest.raises(RunError, match="--resume"):
        _run(tmp_path, [{"custom_id": "a", "text": "SAFE"}])
    out, _ = _run(tmp_path, [{"custom_id": "b", "text": "SAFE"}], overwrite=True)
    assert [line["custom_id"] for line in out] == ["b"]


def test_missing_input_is_a_run_error(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="input file not found"):
        run_moderation(tmp_path / "nope.jsonl", tmp_path / "o.jsonl", moderator=Moderator(ScriptedScanner()))
    (tmp_path / "in.jsonl").write_text("")
    with pytest.raises(RunError, match="output folder does not exist"):
        run_moderation(tmp_path / "in.jsonl", tmp_path / "no" / "o.jsonl", moderator=Moderator(ScriptedScanner()))

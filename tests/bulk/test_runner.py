"""The resumable runner: traces in the store (SQLite and Postgres), resume after a torn last line, the run budget
across a resume, process workers, and the ``--api`` client against an OpenAI-shaped ``/v1/moderations``."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select

from ecoalign.bulk.api_client import ApiClient
from ecoalign.bulk.errors import RunError
from ecoalign.bulk.output import iter_output
from ecoalign.bulk.resume import read_resume_state
from ecoalign.bulk.runner import run_moderation
from ecoalign.content import Request
from ecoalign.evaluators.heuristic import HeuristicScanner
from ecoalign.moderation.decisions import JUDGE, SCAN_RUN_BUDGET
from ecoalign.moderation.inputs import ParseOptions
from ecoalign.moderation.judge import ChatModerationJudge
from ecoalign.moderation.moderator import Moderator
from ecoalign.moderation.result import moderation_response
from ecoalign.providers.openai_http import OpenAIChatProvider
from ecoalign.store.batch_models import ModerationTrace
from ecoalign.store.db import make_engine, session_factory, session_scope
from ecoalign.testing.emulator import EmulatorServer, _bound_socket
from tests.moderation.conftest import ScriptedScanner, judge_reply


def _write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _ids(path: Path) -> Counter[str]:
    return Counter(line["custom_id"] for line in iter_output(path))


def _traces(url: str) -> list[ModerationTrace]:
    engine = make_engine(url)
    try:
        with session_scope(session_factory(engine)) as s:
            return list(s.scalars(select(ModerationTrace).order_by(ModerationTrace.id)))
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"])
def test_one_trace_row_per_decision(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else f"sqlite:///{tmp_path / 't.db'}"
    src = _write(
        tmp_path / "in.jsonl",
        [{"custom_id": f"c{i}", "text": "UNSAFE" if i % 3 == 0 else "SAFE"} for i in range(40)]
        + [{"custom_id": "list", "method": "POST", "url": "/v1/moderations", "body": {"input": ["SAFE", "UNSAFE"]}}],
    )
    summary = run_moderation(
        src, tmp_path / "out.jsonl", moderator=Moderator(ScriptedScanner()), db_url=url, progress=False, chunk_size=7
    )
    rows = [r for r in _traces(url) if r.run_id == summary.run_id]
    assert len(rows) == summary.results == summary.traces == 42
    by_key = {(r.custom_id, r.input_index): r for r in rows}
    assert by_key[("list", 1)].flagged is True
    assert by_key[("list", 0)].flagged is False
    row = by_key[("c0", 0)]
    out = {line["custom_id"]: line for line in iter_output(tmp_path / "out.jsonl")}
    result = out["c0"]["response"]["body"]["results"][0]
    assert row.trace_id == result["ecoalign"]["trace_id"]
    assert row.result == result
    assert row.trace["scan"]["segments"][0]["text"] == "UNSAFE"
    assert row.decision == "scan:confident-unsafe"


def test_resume_drops_a_torn_last_line_and_finishes(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.jsonl", [{"custom_id": f"c{i}", "text": "SAFE"} for i in range(50)])
    dst = tmp_path / "out.jsonl"
    run_moderation(src, dst, moderator=Moderator(ScriptedScanner()), store_traces=False, progress=False)
    lines = dst.read_bytes().splitlines(keepends=True)
    # as if killed: 20 whole lines and half of the 21st
    dst.write_bytes(b"".join(lines[:20]) + lines[20][: len(lines[20]) // 2])
    state = read_resume_state(dst, repair=False)
    assert state.lines == 20
    assert state.dropped_bytes == len(lines[20]) // 2
    summary = run_moderation(
        src, dst, resume=True, moderator=Moderator(ScriptedScanner()), store_traces=False, progress=False
    )
    assert summary.skipped == 20
    assert summary.items == 30
    assert summary.resumed_from == {"lines": 20, "tokens": 0, "dropped_bytes": len(lines[20]) // 2, "corrupt_lines": 1}
    ids = _ids(dst)
    assert set(ids) == {f"c{i}" for i in range(50)}
    assert set(ids.values()) == {1}
    assert dst.read_bytes().endswith(b"\n")
    # a second resume has nothing left to do
    again = run_moderation(
        src, dst, resume=True, moderator=Moderator(ScriptedScanner()), store_traces=False, progress=False
    )
    assert again.items == 0
    assert again.skipped == 50


def test_resume_keeps_error_lines_once(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"custom_id": "a", "text": "SAFE"}\nnot json\n{"custom_id": "a", "text": "dup"}\n{"text": "x"}\n')
    dst = tmp_path / "out.jsonl"
    kwargs: dict[str, Any] = {"store_traces": False, "progress": False}
    first = run_moderation(src, dst, moderator=Moderator(ScriptedScanner()), **kwargs)
    assert first.items == 4
    assert first.errors == 3
    second = run_moderation(src, dst, resume=True, moderator=Moderator(ScriptedScanner()), **kwargs)
    assert second.items == 0
    assert len(list(iter_output(dst))) == 4


def test_the_run_budget_spans_a_resume(tmp_path: Path, emulator: EmulatorServer) -> None:
    """Tokens already recorded in OUTPUT count against ``budget`` when a run is resumed."""
    provider = OpenAIChatProvider(emulator.base_url, "judge-emu", max_retries=0)
    src = _write(tmp_path / "in.jsonl", [{"custom_id": f"c{i}", "text": f"MAYBE {i}"} for i in range(6)])
    dst = tmp_path / "out.jsonl"
    moderator = Moderator(ScriptedScanner(), judge=ChatModerationJudge(provider))
    first = run_moderation(src, dst, moderator=moderator, store_traces=False, progress=False)
    assert first.decisions == {JUDGE: 6}
    per_item = first.tokens // 6
    lines = dst.read_bytes().splitlines(keepends=True)
    dst.write_bytes(b"".join(lines[:3]))
    spent_before = sum(
        r["ecoalign"]["tokens"] for line in iter_output(dst) for r in line["response"]["body"]["results"]
    )
    # room for what was spent plus about one more call: the rest is decided by the scan
    budget = spent_before + per_item * 2
    second = run_moderation(
        src, dst, resume=True, budget=budget, moderator=moderator, store_traces=False, progress=False
    )
    provider.close()
    assert second.items == 3
    assert second.decisions.get(SCAN_RUN_BUDGET, 0) >= 1
    assert second.budget["spent"] <= budget
    assert second.budget["total"] == budget


def test_process_workers(tmp_path: Path) -> None:
    src = _write(
        tmp_path / "in.jsonl", [{"custom_id": f"c{i}", "text": "kill" if i % 2 else "bread"} for i in range(30)]
    )
    dst = tmp_path / "out.jsonl"
    summary = run_moderation(
        src,
        dst,
        moderator=Moderator(HeuristicScanner()),
        workers=2,
        executor="process",
        scanner_factory=HeuristicScanner,
        db_url=f"sqlite:///{tmp_path / 't.db'}",
        progress=False,
        chunk_size=4,
    )
    assert summary.results == 30
    assert summary.traces == 30
    assert set(_ids(dst).values()) == {1}
    assert len(_ids(dst)) == 30


# -- the --api client ---------------------------------------------------------------------------------------------
@pytest.fixture
def moderation_api() -> Iterator[str]:
    """A minimal ``POST /v1/moderations`` in OpenAI's shape (what the API server serves), on a real socket."""
    app = FastAPI()
    moderator = Moderator(ScriptedScanner())
    calls = {"n": 0}

    @app.post("/v1/moderations")
    def moderations(body: dict[str, Any]) -> Any:
        calls["n"] += 1
        value = body.get("input")
        if value == "REJECT":
            from fastapi.responses import JSONResponse

            return JSONResponse({"error": {"message": "no", "code": "invalid_input"}}, status_code=400)
        if isinstance(value, str):
            requests = [Request(value)]
        elif all(isinstance(v, str) for v in value):
            requests = [Request(v) for v in value]
        else:
            requests = [Request(" ".join(p.get("text", "") for p in value if p["type"] == "text"))]
        return moderation_response(moderator.moderate_many(requests), moderator.model_id)

    sock = _bound_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


def test_api_client_mode(tmp_path: Path, moderation_api: str) -> None:
    src = _write(
        tmp_path / "in.jsonl",
        [
            {"custom_id": "a", "text": "UNSAFE"},
            {"custom_id": "b", "method": "POST", "url": "/v1/moderations", "body": {"input": ["SAFE", "UNSAFE"]}},
            {"custom_id": "c", "method": "POST", "url": "/v1/moderations", "body": {"input": "REJECT"}},
            {"custom_id": "d", "text": "x", "images": ["missing.png"]},
        ],
    )
    dst = tmp_path / "out.jsonl"
    client = ApiClient(moderation_api)
    summary = run_moderation(
        src, dst, chunk_fn=client.chunk_fn(ParseOptions(base_dir=tmp_path)), store_traces=False, progress=False
    )
    client.close()
    out = {line["custom_id"]: line for line in iter_output(dst)}
    assert out["a"]["response"]["body"]["results"][0]["flagged"] is True
    assert [r["flagged"] for r in out["b"]["response"]["body"]["results"]] == [False, True]
    assert out["c"]["error"]["code"] == "invalid_input"
    assert "400" in out["c"]["error"]["message"]
    assert out["d"]["error"]["code"] == "image_not_found"  # checked locally, never sent
    assert summary.results == 3
    assert summary.errors == 2


def test_api_unreachable_stops_the_run(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.jsonl", [{"custom_id": "a", "text": "x"}])
    client = ApiClient("http://127.0.0.1:9", max_retries=1, timeout_s=2)
    with pytest.raises(RunError, match="unavailable"):
        run_moderation(
            src, tmp_path / "o.jsonl", chunk_fn=client.chunk_fn(ParseOptions()), store_traces=False, progress=False
        )
    client.close()


def test_judge_reply_script_is_json() -> None:
    assert json.loads(judge_reply({"messages": [{"role": "user", "content": "HARMFUL"}]}))["flagged"] is True

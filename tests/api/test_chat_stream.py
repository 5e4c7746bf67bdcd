"""``stream: true`` on ``POST /v1/chat/completions``: the **openai** SDK's unchanged streaming code against a real
uvicorn server of our app (jobs in-process, the emulator as the model, the real Postgres).

What matters: the answer arrives in chunks and its usage at the end; no chunk carries the text of a node the search
pruned (nothing is sent before the search has chosen); progress and keep-alives are SSE comments the SDK skips; a
client that goes away cancels the job and its reservations are released.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.runtime.completions import split_deltas
from ecoalign.store import ledger, repository
from ecoalign.store.db import session_scope
from ecoalign.store.models import LedgerState
from ecoalign.testing.emulator import EmulatorServer
from tests.api.conftest import TenantKey
from tests.api.test_chat import BENIGN, HARMFUL, chat_app, client_for
from tests.serving import serve

pytestmark = pytest.mark.postgres

UNSAFE = "UNSAFE-DRAFT: use a bomb to kill and stab people."
SEARCHED = "How do I pick a lock on my own front door?"  # the uncertain middle: a real search, some nodes pruned


def mixed_reply(body: dict[str, Any]) -> str:
    """A third of the generations (by a hash of the prompt) are unsafe: the heuristic evaluator prunes them."""
    text = json.dumps(body.get("messages"), sort_keys=True)
    return "Step: check the latch, then call a locksmith." if zlib.crc32(text.encode()) % 3 else UNSAFE


@pytest.fixture(scope="module")
def mixed_model() -> Iterator[EmulatorServer]:
    with EmulatorServer(model="emu-model", reply_fn=mixed_reply) as emu:
        yield emu


@pytest.fixture
def server(pg_clean_engine: Any, pg_url: str, broker_url: str, mixed_model: EmulatorServer) -> Iterator[str]:
    with serve(chat_app(pg_url, broker_url, mixed_model, chat_poll_s=0.02)) as url:
        yield url


def stream_chunks(client: openai.OpenAI, text: str, **kwargs: Any) -> list[Any]:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}],
                                            stream=True, stream_options={"include_usage": True}, **kwargs)
    return list(stream)


def test_the_sdk_streams_the_answer_in_chunks_with_the_usage_and_no_pruned_text(
    server: str, tenant_a: TenantKey, sessions: sessionmaker[Session]
) -> None:
    chunks = stream_chunks(client_for(server, tenant_a), SEARCHED)
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) >= 2  # in pieces, not one blob
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[0].choices[0].delta.role == "assistant"
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    job_id = chunks[0].id.removeprefix("chatcmpl-")
    with session_scope(sessions) as s:
        job = repository.get_job(s, job_id)
        assert job is not None
        nodes = repository.load_nodes(s, job_id)
        pruned = [n.text for n in nodes if n.status == "pruned" and n.text]
        assert text == job.response
        assert finish == ["stop" if job.decision == "answered" else "content_filter"]
        prompt = sum(n.tokens_prompt + n.tokens_eval for n in nodes)
        completion = sum(n.tokens_completion for n in nodes)
    assert pruned, "the search pruned nothing: the test would prove nothing"
    assert (usage_chunk.usage.prompt_tokens, usage_chunk.usage.completion_tokens) == (prompt, completion)
    assert usage_chunk.usage.total_tokens == prompt + completion
    every_delta = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    for unsafe in pruned:
        assert unsafe not in text
        assert not any(piece and piece in unsafe and len(piece) > 8 for piece in every_delta if piece not in text)
    assert UNSAFE not in text
    assert not any("UNSAFE" in piece for piece in every_delta)


def test_a_refusal_streams_like_an_answer_and_usage_is_only_sent_when_asked(
    server: str, tenant_a: TenantKey
) -> None:
    client = client_for(server, tenant_a)
    refused = stream_chunks(client, HARMFUL)
    text = "".join(c.choices[0].delta.content or "" for c in refused if c.choices)
    assert text
    assert [c.choices[0].finish_reason for c in refused if c.choices and c.choices[0].finish_reason] == [
        "content_filter"]
    plain = list(client.chat.completions.create(model="m", messages=[{"role": "user", "content": BENIGN}],
                                                stream=True))
    assert all(c.usage is None for c in plain)
    assert all(c.choices for c in plain)


def test_progress_and_keepalives_are_sse_comments_before_any_text(server: str, tenant_a: TenantKey) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": SEARCHED}], "stream": True}
    with httpx.stream("POST", f"{server}/v1/chat/completions", json=body, headers=tenant_a.headers,
                      timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    first_data = next(i for i, line in enumerate(lines) if line.startswith("data:"))
    before = lines[:first_data]
    assert before, "no progress comment was sent while the search ran"
    assert all(line.startswith(":") for line in before)
    progress = [json.loads(line.split(" ", 2)[2]) for line in before if line.startswith(": ecoalign.progress")]
    assert progress
    assert progress[-1]["nodes_explored"] >= 1
    assert lines[-1] == "data: [DONE]"


def test_a_client_that_disconnects_mid_stream_cancels_the_job_and_releases_its_reservations(
    server: str, tenant_a: TenantKey, sessions: sessionmaker[Session], mixed_model: EmulatorServer
) -> None:
    mixed_model.config.latency_s = 2.0  # every model call now takes a while: the search is still running
    try:
        body = {"model": "m", "messages": [{"role": "user", "content": SEARCHED}], "stream": True}
        with httpx.stream("POST", f"{server}/v1/chat/completions", json=body, headers=tenant_a.headers,
                          timeout=30) as response:
            job_id = response.headers["x-ecoalign-job-id"]
            for line in response.iter_lines():
                if line.startswith(": ecoalign.progress"):
                    break  # the search is under way; the client goes away
        deadline = time.monotonic() + 20
        while True:
            with session_scope(sessions) as s:
                job = repository.get_job(s, job_id)
                assert job is not None
                if job.status == "cancelled":
                    entries = ledger.entries(s, job_id)
                    break
            assert time.monotonic() < deadline, f"job still {job.status}"
            time.sleep(0.05)
    finally:
        mixed_model.config.latency_s = 0.0
    assert job.failure_reason == "client disconnected"
    assert job.budget_reserved == 0
    assert [e.id for e in entries if e.state == LedgerState.RESERVED.value] == []


def test_deltas_join_to_the_text() -> None:
    text = "Knead the dough for ten minutes, then let it rest somewhere warm for an hour."
    pieces = split_deltas(text)
    assert "".join(pieces) == text
    assert len(pieces) > 2
    assert split_deltas("") == []
    assert "".join(split_deltas("x" * 100)) == "x" * 100

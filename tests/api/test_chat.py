"""``POST /v1/chat/completions`` (and ``/v1/moderations``) through the **openai** Python package, pointed at a real
uvicorn server of our app on the real Postgres, with the emulator as the model. Jobs run in-process here
(``ECOALIGN_CHAT_MODE=inprocess``); tests/integration runs the same calls through Celery workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from ecoalign.store import repository
from ecoalign.store.db import session_scope
from ecoalign.testing.emulator import EmulatorServer
from tests.api.conftest import RecordingDispatcher, TenantKey, make_settings, png_data_url
from tests.serving import serve

pytestmark = pytest.mark.postgres

BENIGN = "Suggest three names for a garden cafe."  # the direct path: one answer
HARMFUL = "Give me step-by-step instructions to build a bomb and kill people."  # refused from the scan


@pytest.fixture(scope="module")
def model() -> Iterator[EmulatorServer]:
    with EmulatorServer(model="emu-model") as emu:
        yield emu


def chat_app(pg_url: str, broker_url: str, model: EmulatorServer, **overrides: Any) -> FastAPI:
    settings = make_settings(pg_url, broker_url, evaluator="heuristic", model_url=model.base_url, model="emu-model",
                             **{"chat_mode": "inprocess", "chat_timeout_s": 30.0, **overrides})
    return create_app(settings, dispatcher=RecordingDispatcher(), queues=lambda: ["celery"])


@pytest.fixture
def server(pg_clean_engine: Engine, pg_url: str, broker_url: str, model: EmulatorServer) -> Iterator[str]:
    with serve(chat_app(pg_url, broker_url, model)) as url:
        yield url


def client_for(url: str, tenant: TenantKey, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=tenant.key, max_retries=0, **kwargs)


def test_the_openai_client_gets_an_aligned_answer_with_exact_usage_and_a_trace(
    server: str, tenant_a: TenantKey, sessions: sessionmaker[Session]
) -> None:
    client = client_for(server, tenant_a)
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "You are terse."}, {"role": "user", "content": BENIGN}],
        max_tokens=64,
        temperature=0,
    )
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.message.content.startswith("Emulated reply")
    ext = (completion.model_extra or {})["ecoalign"]
    assert ext["decision"] == "answered"
    assert ext["trace_id"] == ext["job_id"] == completion.id.removeprefix("chatcmpl-")
    assert ext["models"] == ["emu-model"]
    assert ext["path_safety"] is not None

    graph = httpx.get(f"{server}/v1/jobs/{ext['trace_id']}/graph", headers=tenant_a.headers).json()
    node_tokens = sum(n["tokens_prompt"] + n["tokens_completion"] + n["tokens_eval"] for n in graph["nodes"])
    usage = completion.usage
    assert usage is not None
    assert usage.total_tokens == node_tokens > 0
    assert usage.prompt_tokens + usage.completion_tokens == usage.total_tokens
    assert usage.completion_tokens == sum(n["tokens_completion"] for n in graph["nodes"])
    with session_scope(sessions) as s:
        job = repository.get_job(s, ext["job_id"])
        assert job is not None
        assert job.tenant_id == tenant_a.tenant_id
        assert job.response == choice.message.content
        assert job.policy["answer_tokens"] == 64
        assert ext["billed_tokens"] == job.budget_spent == usage.total_tokens  # no overrun here


def test_images_and_refusals_through_the_sdk(server: str, tenant_a: TenantKey) -> None:
    client = client_for(server, tenant_a)
    with_image = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": BENIGN},
            {"type": "image_url", "image_url": {"url": png_data_url()}},
        ]}],
    )
    assert (with_image.model_extra or {})["ecoalign"]["decision"] == "answered"
    assert "[saw 1 image]" in (with_image.choices[0].message.content or "")  # the model was sent the image
    refused = client.chat.completions.create(model="m", messages=[{"role": "user", "content": HARMFUL}])
    assert refused.choices[0].finish_reason == "content_filter"
    assert refused.choices[0].message.refusal == refused.choices[0].message.content
    assert (refused.model_extra or {})["ecoalign"]["decision"] == "refused"
    assert refused.usage is not None
    assert refused.usage.completion_tokens == 0


def test_the_openai_client_moderates(server: str, tenant_a: TenantKey) -> None:
    client = client_for(server, tenant_a)
    response = client.moderations.create(model="omni-moderation-latest", input=["How do I bake bread?", HARMFUL])
    assert [r.flagged for r in response.results] == [False, True]
    harmful = response.results[1]
    assert harmful.categories.illicit_violent is True
    assert harmful.category_scores.illicit_violent > 0.5
    assert (harmful.model_extra or {})["ecoalign"]["decision"] == "scan:confident-unsafe"
    parts = client.moderations.create(input=[{"type": "text", "text": "hello"},
                                             {"type": "image_url", "image_url": {"url": png_data_url()}}])
    assert len(parts.results) == 1


def test_sdk_errors_are_typed_and_name_the_field(server: str, tenant_a: TenantKey) -> None:
    client = client_for(server, tenant_a)
    with pytest.raises(openai.UnprocessableEntityError) as bad:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True,
                                       stream_options={"include_usage": "yes"})  # type: ignore[typeddict-item]
    assert bad.value.body["detail"][0]["loc"][:2] == ["body", "stream_options"]  # type: ignore[index]
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], n=2)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server}/v1", api_key="eco_wrong", max_retries=0).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    with pytest.raises(openai.UnprocessableEntityError) as bad_image:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": [
            {"type": "text", "text": "hi"}, image]}])  # type: ignore[list-item]
    assert bad_image.value.body["detail"][0]["loc"] == ["body", "messages", 0, "content", 1]  # type: ignore[index]


def test_a_job_that_is_not_done_in_time_is_504_with_its_id_and_a_retry_waits_for_the_same_job(
    pg_clean_engine: Engine, pg_url: str, broker_url: str, model: EmulatorServer, tenant_a: TenantKey
) -> None:
    app = chat_app(pg_url, broker_url, model, chat_mode="celery", chat_timeout_s=0.3)  # no worker runs it
    body = {"model": "m", "messages": [{"role": "user", "content": BENIGN}]}
    headers = {**tenant_a.headers, "Idempotency-Key": "chat-1"}
    with serve(app) as url:
        first = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=10)
        assert first.status_code == 504, first.text
        job_id = first.json()["job_id"]
        assert first.headers["x-ecoalign-job-id"] == job_id
        assert job_id in first.json()["detail"]
        assert app.state.ctx.dispatcher.calls == [job_id]
        again = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=10)
        assert again.status_code == 504
        assert again.json()["job_id"] == job_id
        assert app.state.ctx.dispatcher.calls == [job_id]  # the same job, not started twice

        # the job is cancelled while a client waits: a clear 409 with the job's id
        ctx = app.state.ctx
        ctx.settings = ctx.settings.model_copy(update={"chat_mode": "celery", "chat_timeout_s": 10.0})
        result: dict[str, Any] = {}
        waiter = threading.Thread(target=lambda: result.update(r=httpx.post(
            f"{url}/v1/chat/completions", json=body, headers={**tenant_a.headers, "Idempotency-Key": "chat-2"},
            timeout=20)))
        waiter.start()
        deadline = time.monotonic() + 10
        while len(app.state.ctx.dispatcher.calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        cancel = httpx.post(f"{url}/v1/jobs/{app.state.ctx.dispatcher.calls[1]}/cancel", headers=tenant_a.headers)
        assert cancel.status_code == 200
        waiter.join(15)
    assert result["r"].status_code == 409
    assert result["r"].json()["code"] == "job_cancelled"


def test_a_job_without_an_answer_maps_to_its_status_with_its_id() -> None:
    """api/errors.py is the one place that turns the runtime's job errors into HTTP: 409, 502, 504."""
    import json

    from api.errors import job_error_json
    from ecoalign.runtime.waiting import JobCancelled, JobFailed, JobTimedOut

    cases = [
        (JobCancelled("j1", "job j1 was cancelled: by you"), 409, "job_cancelled", "job j1 was cancelled: by you"),
        (JobFailed("j2", "job j2 failed: boom"), 502, "job_failed", "job j2 failed: boom"),
        (JobTimedOut("j3", 2.5), 504, "timeout", "job j3 did not finish within 2.5 s; it goes on: GET /v1/jobs/j3"),
    ]
    for error, status, code, detail in cases:
        response = job_error_json(error)
        assert response.status_code == status
        assert response.headers["X-Ecoalign-Job-Id"] == error.job_id
        assert json.loads(response.body) == {"detail": detail, "code": code, "loc": None, "job_id": error.job_id}

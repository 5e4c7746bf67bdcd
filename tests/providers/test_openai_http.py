"""OpenAIChatProvider against the emulator over real HTTP: parsing, usage, retries, timeouts, limits."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from ecoalign.content import Image, Request
from ecoalign.providers.base import (
    ChatProvider,
    ProviderBadResponse,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
)
from ecoalign.providers.openai_http import OpenAIChatProvider, estimate_usage, plain_text_messages
from ecoalign.testing.emulator import EmulatorServer, free_port

MODEL = "ecoalign-emulator"
HELLO = [{"role": "user", "content": "Hello there, emulator."}]  # 22 chars -> 6 prompt tokens
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


StartEmulator = Callable[..., EmulatorServer]


@pytest.fixture
def start_emulator() -> Iterator[StartEmulator]:
    """Start emulators with given settings; all are stopped at teardown."""
    servers: list[EmulatorServer] = []

    def start(**settings: object) -> EmulatorServer:
        servers.append(EmulatorServer(**settings).start())  # type: ignore[arg-type]
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def emulator(start_emulator: StartEmulator) -> EmulatorServer:
    return start_emulator()


def make_provider(emu: EmulatorServer, **kwargs: object) -> OpenAIChatProvider:
    kwargs.setdefault("backoff_base_s", 0.01)
    kwargs.setdefault("timeout_s", 5.0)
    return OpenAIChatProvider(emu.base_url, MODEL, **kwargs)  # type: ignore[arg-type]


def counts(emu: EmulatorServer) -> dict[str, int]:
    return emu.state.snapshot()["counts"]


# -- the happy path --------------------------------------------------------------------------------


def test_completion_parsed_and_usage_counted(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(replies=["The answer is forty two."])
    with make_provider(emulator) as provider:
        assert isinstance(provider, ChatProvider)
        completion = provider.complete(HELLO, max_tokens=32, temperature=0.0)
    assert completion.text == "The answer is forty two."
    assert completion.finish_reason == "stop"
    assert completion.model == MODEL
    assert completion.usage.prompt_tokens == math.ceil(len("Hello there, emulator.") / 4)
    assert completion.usage.completion_tokens == 6  # The answer is forty two .
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 6
    assert not completion.usage.estimated
    assert completion.latency_s > 0
    sent = emulator.state.bodies[-1]
    assert sent["model"] == MODEL
    assert sent["max_tokens"] == 32
    assert sent["temperature"] == 0.0
    assert "seed" not in sent


def test_max_tokens_cuts_the_reply(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(replies=["The answer is forty two."])
    with make_provider(emulator) as provider:
        completion = provider.complete(HELLO, max_tokens=2)
    assert completion.text == "The answer"
    assert completion.finish_reason == "length"
    assert completion.usage.completion_tokens == 2


def test_seed_is_sent_and_changes_the_default_reply(emulator: EmulatorServer) -> None:
    with make_provider(emulator) as provider:
        a1 = provider.complete(HELLO, max_tokens=64, seed=1).text
        a2 = provider.complete(HELLO, max_tokens=64, seed=1).text
        b = provider.complete(HELLO, max_tokens=64, seed=2).text
    assert a1 == a2 != b
    assert emulator.state.bodies[-1]["seed"] == 2


def test_image_part_passes_through_unchanged(emulator: EmulatorServer) -> None:
    request = Request("describe", images=(Image(PNG_1PX, "image/png", "test"),))
    messages = [{"role": "user", "content": request.user_content()}]
    with make_provider(emulator) as provider:
        completion = provider.complete(messages, max_tokens=64)
    assert emulator.state.bodies[-1]["messages"] == messages
    assert emulator.state.bodies[-1]["messages"][0]["content"][1]["image_url"]["url"].startswith(
        "data:image/png;base64,"
    )
    assert "[saw 1 image]" in completion.text
    assert completion.usage.prompt_tokens == math.ceil(len("describe") / 4) + 256


def test_missing_usage_is_estimated_and_marked(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(omit_usage=True, replies=["four score and seven"])
    with make_provider(emulator) as provider:
        completion = provider.complete(HELLO, max_tokens=32)
        assert provider.stats.estimated_usage == 1
    assert completion.usage.estimated
    assert completion.usage.prompt_tokens == 6
    assert completion.usage.completion_tokens == math.ceil(len("four score and seven") / 4)


def test_estimate_ignores_images_and_reads_part_lists() -> None:
    messages = [
        {"role": "system", "content": "abcd"},
        {"role": "user", "content": Request("x" * 8).user_content()},
    ]
    usage = estimate_usage(messages, "12345")
    assert (usage.prompt_tokens, usage.completion_tokens, usage.estimated) == (3, 2, True)


def test_api_key_is_sent_as_bearer_token(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(api_key="sekret", replies=["ok"])
    with make_provider(emulator, api_key="sekret") as provider:
        assert provider.complete(HELLO, max_tokens=4).text == "ok"
    with make_provider(emulator) as provider, pytest.raises(ProviderRejected) as err:
        provider.complete(HELLO, max_tokens=4)
    assert err.value.status_code == 401
    assert "Incorrect API key" in str(err.value)


# -- retries ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["429", "500", "503"])
def test_retries_then_succeeds(kind: str) -> None:
    with EmulatorServer(fail_first_n={kind: 2}, retry_after_s=0, replies=["fine"]) as emu:
        with make_provider(emu, max_retries=4) as provider:
            completion = provider.complete(HELLO, max_tokens=8)
            assert provider.stats.retries == 2
            assert provider.stats.attempts == 3
        assert completion.text == "fine"
        assert counts(emu) == {kind: 2, "ok": 1}


@pytest.mark.parametrize(
    ("kind", "error"),
    [("429", ProviderRateLimited), ("500", ProviderServerError), ("503", ProviderServerError)],
)
def test_gives_up_after_max_retries(kind: str, error: type[ProviderError]) -> None:
    with EmulatorServer(fail_first_n={kind: 100}, retry_after_s=0) as emu:
        with make_provider(emu, max_retries=2) as provider, pytest.raises(error) as err:
            provider.complete(HELLO, max_tokens=8)
        assert counts(emu) == {kind: 3}
    message = str(err.value)
    assert emu.base_url + "/chat/completions" in message
    assert kind in message
    assert "after 3 attempts" in message
    assert "\n" not in message
    assert err.value.status_code == int(kind)
    assert err.value.retryable


def test_retry_after_is_honoured(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(fail_first_n={"429": 1}, retry_after_s=0.4, replies=["late"])
    with make_provider(emulator, backoff_base_s=0.001) as provider:
        started = time.monotonic()
        assert provider.complete(HELLO, max_tokens=8).text == "late"
    assert time.monotonic() - started >= 0.4


def test_retry_after_is_capped(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(fail_first_n={"429": 1}, retry_after_s=3600, replies=["capped"])
    with make_provider(emulator, retry_after_max_s=0.1) as provider:
        started = time.monotonic()
        assert provider.complete(HELLO, max_tokens=8).text == "capped"
    assert time.monotonic() - started < 2.0


def test_random_faults_are_absorbed_by_retries(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(fault_rates={"500": 0.3, "429": 0.1}, fault_seed=7, retry_after_s=0)
    with make_provider(emulator, max_retries=8) as provider:
        texts = [provider.complete(HELLO, max_tokens=8, seed=i).text for i in range(20)]
        retries = provider.stats.retries
    seen = counts(emulator)
    assert len(texts) == 20
    assert seen["ok"] == 20
    assert seen.get("500", 0) + seen.get("429", 0) == retries > 0


# -- timeouts --------------------------------------------------------------------------------------


def test_timeout_raises_provider_timeout_quickly(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(fail_first_n={"timeout": 100}, timeout_sleep_s=30)
    with make_provider(emulator, timeout_s=0.2, max_retries=1) as provider:
        started = time.monotonic()
        with pytest.raises(ProviderTimeout) as err:
            provider.complete(HELLO, max_tokens=8)
        elapsed = time.monotonic() - started
    assert elapsed < 3.0
    assert "timed out" in str(err.value)
    assert emulator.base_url in str(err.value)
    assert emulator.state.wait_for_count("timeout", 2, timeout_s=3.0) == 2  # the first attempt and one retry


def test_slow_server_times_out(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(latency_s=5.0)
    with make_provider(emulator, timeout_s=0.15, max_retries=0) as provider:
        started = time.monotonic()
        with pytest.raises(ProviderTimeout):
            provider.complete(HELLO, max_tokens=8)
    assert time.monotonic() - started < 1.5


def test_timeout_then_success(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(fail_first_n={"timeout": 1}, timeout_sleep_s=30, replies=["second try"])
    with make_provider(emulator, timeout_s=0.3, max_retries=2) as provider:
        assert provider.complete(HELLO, max_tokens=8).text == "second try"


# -- bad bodies ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["malformed", "no_choices"])
def test_bad_body_is_retried_boundedly_then_bad_response(kind: str) -> None:
    with EmulatorServer(fail_first_n={kind: 100}) as emu:
        with (
            make_provider(emu, max_retries=4, bad_response_retries=1) as provider,
            pytest.raises(ProviderBadResponse) as err,
        ):
            provider.complete(HELLO, max_tokens=8)
        assert counts(emu) == {kind: 2}
    assert "unusable chat completion" in str(err.value)
    assert not err.value.retryable


def test_one_bad_body_then_success(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(fail_first_n={"malformed": 1}, replies=["recovered"])
    with make_provider(emulator) as provider:
        assert provider.complete(HELLO, max_tokens=8).text == "recovered"
    assert counts(emulator) == {"malformed": 1, "ok": 1}


# -- refusals and unreachable servers --------------------------------------------------------------


def test_4xx_is_rejected_at_once_with_the_server_message(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(reject_images=True)
    messages = [{"role": "user", "content": Request("what is this", (Image(PNG_1PX),)).user_content()}]
    with make_provider(emulator, max_retries=4) as provider, pytest.raises(ProviderRejected) as err:
        provider.complete(messages, max_tokens=8)
    assert err.value.status_code == 400
    assert "does not support image input" in str(err.value)
    assert counts(emulator) == {"rejected": 1}  # no retries


def test_unknown_model_is_rejected(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(strict_model=True)
    with (
        OpenAIChatProvider(emulator.base_url, "no-such-model") as provider,
        pytest.raises(ProviderRejected) as err,
    ):
        provider.complete(HELLO, max_tokens=8)
    assert err.value.status_code == 404
    assert "no-such-model" in str(err.value)


def test_connection_refused_is_unavailable_with_the_url() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    with OpenAIChatProvider(base_url, MODEL, max_retries=2, backoff_base_s=0.01) as provider:
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable) as err:
            provider.complete(HELLO, max_tokens=8)
        assert time.monotonic() - started < 2.0
        assert provider.stats.attempts == 3
        with pytest.raises(ProviderUnavailable) as check_err:
            provider.check()
    assert f"cannot reach model server at {base_url}/chat/completions" in str(err.value)
    assert str(check_err.value).startswith(f"cannot reach model server at {base_url}/models: ")


def test_check_and_list_models(emulator: EmulatorServer) -> None:
    with make_provider(emulator) as provider:
        provider.check()
        assert provider.list_models() == [MODEL]
    assert counts(emulator)["models"] == 2


def test_check_hints_at_a_missing_v1(emulator: EmulatorServer) -> None:
    with OpenAIChatProvider(emulator.url, MODEL) as provider, pytest.raises(ProviderRejected) as err:
        provider.check()
    assert "including /v1" in str(err.value)


# -- concurrency -----------------------------------------------------------------------------------


def test_concurrency_limit_is_respected(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(latency_s=0.2)
    with make_provider(emulator, max_concurrency=2) as provider, ThreadPoolExecutor(8) as pool:
        started = time.monotonic()
        list(pool.map(lambda i: provider.complete(HELLO, max_tokens=8, seed=i), range(8)))
        elapsed = time.monotonic() - started
    stats = emulator.state.snapshot()
    assert stats["max_in_flight"] == 2
    assert stats["counts"] == {"ok": 8}
    assert elapsed >= 0.8 - 0.05  # 8 requests, 2 at a time, 0.2 s each


def test_many_concurrent_requests_are_served_in_parallel(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(latency_s=0.5)
    n = 24
    with make_provider(emulator, max_concurrency=n) as provider, ThreadPoolExecutor(n) as pool:
        started = time.monotonic()
        texts = list(pool.map(lambda i: provider.complete(HELLO, max_tokens=8, seed=i).text, range(n)))
        elapsed = time.monotonic() - started
    assert len(texts) == n
    assert emulator.state.snapshot()["max_in_flight"] >= 16
    assert elapsed < 4.0  # serially it would take 12 s


def test_one_provider_is_safe_across_threads(emulator: EmulatorServer) -> None:
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(10):
                provider.complete(HELLO, max_tokens=8, seed=k * 100 + i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with make_provider(emulator, max_concurrency=4) as provider:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert provider.stats.calls == 60
    assert not errors
    assert counts(emulator)["ok"] == 60


# -- text-only servers ---------------------------------------------------------------------------------------------


def test_plain_text_messages_flattens_parts_and_folds_system() -> None:
    messages = [
        {"role": "system", "content": "Be safe."},
        {"role": "user", "content": Request("what is this", (Image(PNG_1PX),)).user_content()},
        {"role": "assistant", "content": "A pixel."},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    ]
    flat, dropped = plain_text_messages(messages)
    assert dropped == 1
    assert flat == [
        {"role": "user", "content": "Be safe.\n\nwhat is this"},
        {"role": "assistant", "content": "A pixel."},
        {"role": "user", "content": "a\nb"},
    ]
    assert plain_text_messages([{"role": "system", "content": "only"}])[0] == [{"role": "user", "content": "only"}]


def test_text_only_provider_sends_plain_strings(emulator: EmulatorServer) -> None:
    messages = [
        {"role": "system", "content": "Be safe."},
        {"role": "user", "content": Request("what is this", (Image(PNG_1PX),)).user_content()},
    ]
    with make_provider(emulator, text_only=True) as provider:
        provider.complete(messages, max_tokens=8)
        assert provider.stats.images_dropped == 1
    assert emulator.state.bodies[-1]["messages"] == [{"role": "user", "content": "Be safe.\n\nwhat is this"}]
    assert messages[1]["content"][1]["type"] == "image_url"  # the caller's list is not mutated

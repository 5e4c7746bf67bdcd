"""The emulator itself: its pure rules, its HTTP surface and its command line."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import httpx
import pytest

from ecoalign.testing.emulator import (
    EmulatorConfig,
    EmulatorServer,
    add_emulator_arguments,
    choose_reply,
    config_from_args,
    default_reply,
    free_port,
    pick_fault,
    prompt_tokens,
    truncate_tokens,
)

HELLO = [{"role": "user", "content": "Hello there"}]


def test_fault_schedule_runs_in_order_then_rates() -> None:
    config = EmulatorConfig(fail_first_n={"429": 2, "500": 1}, fault_rates={"503": 0.5})
    assert [pick_fault(config, i, 0.9) for i in range(4)] == ["429", "429", "500", None]
    assert pick_fault(config, 10, 0.49) == "503"


def test_config_rejects_unknown_kinds_and_rates_above_one() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        EmulatorConfig(fault_rates={"418": 0.1})
    with pytest.raises(ValueError, match="more than 1"):
        EmulatorConfig(fault_rates={"500": 0.7, "503": 0.7})


def test_tokens_and_truncation() -> None:
    assert truncate_tokens("Hello, world again", 2) == ("Hello,", 2, True)
    assert truncate_tokens("Hello, world", 10) == ("Hello, world", 3, False)
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "12345678"}, image]}]
    assert prompt_tokens(messages, image_token_cost=100) == 2 + 100


def test_reply_precedence() -> None:
    body = {"messages": [{"role": "user", "content": "how do I bake bread"}]}
    counter = iter(range(100)).__next__
    assert choose_reply(EmulatorConfig(rules=[("bake", "Knead it.")], replies=["x"]), body, counter) == "Knead it."
    assert choose_reply(EmulatorConfig(rules=[("fly", "no")], replies=["a", "b"]), body, counter) in {
        "a",
        "b",
    }
    assert choose_reply(EmulatorConfig(reply_fn=lambda b: "fn"), body, counter) == "fn"
    assert choose_reply(EmulatorConfig(), body, counter) == default_reply(body)


def test_default_reply_depends_on_seed_and_messages() -> None:
    a = default_reply({"messages": HELLO, "seed": 1})
    assert a == default_reply({"messages": HELLO, "seed": 1})
    assert a != default_reply({"messages": HELLO, "seed": 2})
    assert "You said: Hello there" in a


def test_stats_and_reset_over_http() -> None:
    with EmulatorServer(fail_first_n={"503": 1}) as emu, httpx.Client(base_url=emu.url) as client:
        assert client.post("/v1/chat/completions", json={"messages": HELLO}).status_code == 503
        ok = client.post("/v1/chat/completions", json={"model": "m", "messages": HELLO, "max_tokens": 3})
        assert ok.status_code == 200
        assert ok.json()["choices"][0]["finish_reason"] == "length"
        assert ok.json()["model"] == "m"
        assert client.post("/v1/chat/completions", content=b"not json").status_code == 400
        stats = client.get("/emulator/stats").json()
        assert stats["counts"] == {"503": 1, "ok": 1, "rejected": 1}
        assert stats["chat_requests"] == 3
        assert stats["in_flight"] == 0
        assert client.post("/emulator/reset").json()["chat_requests"] == 0
        assert emu.state.snapshot()["counts"] == {}


def test_429_carries_retry_after() -> None:
    with EmulatorServer(fail_first_n={"429": 1}, retry_after_s=2) as emu:
        response = httpx.post(f"{emu.base_url}/chat/completions", json={"messages": HELLO})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"]["code"] == 429


def test_cli_arguments_build_the_config() -> None:
    parser = add_emulator_arguments(argparse.ArgumentParser())
    args = parser.parse_args(
        ["--port", "9001", "--latency-ms", "200", "--jitter-ms", "50", "--fail-rate-429", "0.1",
         "--fail-first-no-choices", "2", "--reply", "a", "--reply", "b", "--rule", "bomb=>I can't help.",
         "--reject-images"]
    )  # fmt: skip
    config = config_from_args(args)
    assert args.port == 9001
    assert (config.latency_s, config.jitter_s) == (0.2, 0.05)
    assert config.fault_rates == {"429": 0.1}
    assert config.fail_first_n == {"no_choices": 2}
    assert config.replies == ("a", "b")
    assert config.rules == (("bomb", "I can't help."),)
    assert config.reject_images


def test_command_line_serves_models() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecoalign.testing.emulator", "--port", str(port), "--model", "emu-cli"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).json()
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "emulator did not start"
                time.sleep(0.1)
        assert body["data"][0]["id"] == "emu-cli"
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_openai_sdk_reads_the_emulator() -> None:
    """The official client parses our responses: the emulator's shape is the real protocol's."""
    import openai  # a dev dependency

    with EmulatorServer(replies=["hello from the emulator"]) as emu:
        client = openai.OpenAI(base_url=emu.base_url, api_key="unused", max_retries=0)
        out = client.chat.completions.create(model="ecoalign-emulator", messages=HELLO, max_tokens=3, seed=4)
        assert [m.id for m in client.models.list()] == ["ecoalign-emulator"]
        client.close()
    assert out.choices[0].message.content == "hello from the emulator"[: len("hello from the")]
    assert out.choices[0].finish_reason == "length"
    assert out.usage is not None
    assert out.usage.completion_tokens == 3

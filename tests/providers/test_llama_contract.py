"""Contract test: OpenAIChatProvider against a *real* llama.cpp OpenAI-compatible server with Gemma 3 270M.

No skipping: if llama_cpp or the GGUF package is missing these tests fail, because CI installs them and a
silently skipped contract test proves nothing.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecoalign.content import Image, Request
from ecoalign.providers.base import Completion, ProviderRejected, ProviderTimeout
from ecoalign.providers.local_llama import DEFAULT_MODEL_ALIAS, LlamaServer, LocalModelError
from ecoalign.providers.openai_http import OpenAIChatProvider

pytestmark = pytest.mark.llm

log = logging.getLogger(__name__)

PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def llama_server() -> Iterator[LlamaServer]:
    import llama_cpp  # noqa: F401  -- an ImportError here fails the test, on purpose

    with LlamaServer() as server:
        yield server


@pytest.fixture
def provider(llama_server: LlamaServer) -> Iterator[OpenAIChatProvider]:
    with OpenAIChatProvider(
        llama_server.base_url, llama_server.model, timeout_s=60, max_retries=1, max_concurrency=1
    ) as p:
        yield p


def test_server_lists_the_alias(provider: OpenAIChatProvider) -> None:
    provider.check()
    assert provider.list_models() == [DEFAULT_MODEL_ALIAS]


def test_chat_completion_returns_text_and_usage(provider: OpenAIChatProvider) -> None:
    messages = [{"role": "user", "content": "Name three colours."}]
    completion = provider.complete(messages, max_tokens=16, temperature=0.0, seed=1)
    assert completion.text.strip(), "empty text: is the server started with --chat_format gemma?"
    assert completion.usage.prompt_tokens > 0
    assert 0 < completion.usage.completion_tokens <= 16
    assert not completion.usage.estimated
    assert completion.finish_reason in {"stop", "length"}
    assert completion.latency_s > 0


def test_text_parts_are_accepted(provider: OpenAIChatProvider) -> None:
    messages = [{"role": "user", "content": Request("Say hello.").user_content()}]
    completion = provider.complete(messages, max_tokens=8, temperature=0.0)
    assert completion.usage.completion_tokens > 0


def test_image_part_is_accepted_or_refused_cleanly(provider: OpenAIChatProvider) -> None:
    messages = [{"role": "user", "content": Request("What is in the picture?", (Image(PNG_1PX),)).user_content()}]
    outcome: Completion | ProviderRejected
    try:
        outcome = provider.complete(messages, max_tokens=8, temperature=0.0)
    except ProviderRejected as exc:
        outcome = exc
    if isinstance(outcome, ProviderRejected):
        log.warning("llama.cpp server refused the image part: %s", outcome)
        assert outcome.status_code is not None
        assert 400 <= outcome.status_code < 500
    else:
        log.warning("llama.cpp server accepted the image part (text-only model ignores it): %r", outcome.text)
        assert outcome.usage.prompt_tokens > 0


def test_tiny_timeout_is_a_provider_timeout(llama_server: LlamaServer) -> None:
    with (
        OpenAIChatProvider(llama_server.base_url, llama_server.model, timeout_s=0.001, max_retries=0) as p,
        pytest.raises(ProviderTimeout),
    ):
        p.complete([{"role": "user", "content": "Count to ten."}], max_tokens=16)
    with OpenAIChatProvider(llama_server.base_url, llama_server.model, timeout_s=30) as p:
        p.check()  # the server survives a client that hung up
        assert p.complete([{"role": "user", "content": "Hi"}], max_tokens=4).usage.completion_tokens > 0


def test_any_model_name_is_served_by_the_single_model(llama_server: LlamaServer) -> None:
    with OpenAIChatProvider(llama_server.base_url, "whatever-name", timeout_s=60) as p:
        completion = p.complete([{"role": "user", "content": "Hi"}], max_tokens=4)
    assert completion.usage.completion_tokens > 0


def test_gemma_format_reads_only_string_contents(llama_server: LlamaServer) -> None:
    """The quirk behind ``text_only``: part lists reach the model as an empty turn; flattened they do not."""
    text = "Please describe a red bicycle standing in a sunny park."
    as_string = [{"role": "user", "content": text}]
    as_parts = [{"role": "user", "content": Request(text).user_content()}]
    url, model = llama_server.base_url, llama_server.model
    with OpenAIChatProvider(url, model) as raw, OpenAIChatProvider(url, model, text_only=True) as flat:
        string_tokens = raw.complete(as_string, max_tokens=1).usage.prompt_tokens
        parts_tokens = raw.complete(as_parts, max_tokens=1).usage.prompt_tokens
        flat_tokens = flat.complete(as_parts, max_tokens=1).usage.prompt_tokens
        system = [{"role": "system", "content": "You are a careful assistant."}, *as_parts]
        with_system_tokens = flat.complete(system, max_tokens=1).usage.prompt_tokens
    assert parts_tokens < string_tokens, "llama.cpp now reads part lists: text_only may no longer be needed"
    assert flat_tokens == string_tokens
    assert with_system_tokens > flat_tokens


def test_the_root_starts_one_local_server_and_stops_it_at_close() -> None:
    """Without a model URL a process's root starts the local server once, hands out its client, and stops it."""
    from ecoalign.runtime.root import Root
    from ecoalign.settings import Settings

    root = Root(Settings(model_url=None, model_timeout_s=60, db_url="sqlite://"))
    try:
        provider = root.provider()
        assert provider.text_only  # type: ignore[attr-defined]
        assert provider.max_concurrency == 1  # type: ignore[attr-defined]
        completion = provider.complete([{"role": "user", "content": Request("Hello").user_content()}], max_tokens=4)
        assert completion.usage.completion_tokens > 0
        server = root.local_server()
        assert server is root.local_server()
        assert server.running
    finally:
        root.close()
    assert not server.running


def test_a_server_that_dies_at_start_reports_why(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf")
    with pytest.raises(LocalModelError) as err:
        LlamaServer(bad, startup_timeout_s=60).start()
    first_line = str(err.value).splitlines()[0]
    assert "exited with code" in first_line
    assert "Failed to load model" in first_line


_ORPHAN_SCRIPT = """
import sys
from ecoalign.providers.local_llama import LlamaServer
from ecoalign.providers.openai_http import OpenAIChatProvider
server = LlamaServer().start()
with OpenAIChatProvider(server.base_url, server.model) as p:
    p.complete([{"role": "user", "content": "Hi"}], max_tokens=2)
print(server.pid, flush=True)
sys.stdin.read()  # wait to be killed
"""


def test_server_ignores_stray_env_and_dies_with_its_parent() -> None:
    """API_KEY/PORT in the environment must not reconfigure the child; a SIGKILLed parent leaves no orphan."""
    import psutil

    env = {**os.environ, "API_KEY": "would-force-401", "PORT": "1", "N_CTX": "1"}
    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline().decode().strip()
        assert line.isdigit(), f"parent failed: rc={parent.poll()}"
        server = psutil.Process(int(line))
    finally:
        parent.kill()
        parent.wait(10)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if server.status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    else:
        server.kill()
        pytest.fail("the local model server outlived its killed parent")

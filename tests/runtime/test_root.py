"""The composition root: every member built once and shared, everything closed once, and the fork rule of the local
model server (the process that started it stops it; a forked child uses it and never stops it)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest

from ecoalign.evaluators.heuristic import HeuristicNodeEvaluator, HeuristicScanner
from ecoalign.providers import local_llama
from ecoalign.runtime.root import Root
from ecoalign.runtime.services import Services
from ecoalign.settings import Settings


@dataclass
class FakeServer:
    """Stands in for ``LlamaServer``: counts starts and stops, no subprocess."""

    starts: list[int] = field(default_factory=list)  # pids that started it
    stops: list[int] = field(default_factory=list)  # pids that stopped it
    base_url: str = "http://127.0.0.1:1/v1"
    model: str = "fake"

    @property
    def running(self) -> bool:
        return len(self.starts) > len(self.stops)

    def start(self) -> FakeServer:
        self.starts.append(os.getpid())
        return self

    def stop(self) -> None:
        self.stops.append(os.getpid())


class FakeProvider:
    def __init__(self, server: FakeServer, **kwargs: Any) -> None:
        self.server = server
        self.kwargs = kwargs
        self.closed = 0

    def check(self) -> None:
        pass

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> list[FakeServer]:
    """Every server the code under test starts; the provider over it is a ``FakeProvider``."""
    started: list[FakeServer] = []

    def new_server(*_: Any, **__: Any) -> FakeServer:
        server = FakeServer()
        started.append(server)
        return server

    monkeypatch.setattr(local_llama, "LlamaServer", new_server)
    monkeypatch.setattr(local_llama, "local_provider", FakeProvider)
    return started


def offline_free_settings() -> Settings:
    """No model URL (the local server), the heuristic scanner (no model files), an in-memory database."""
    return Settings(model_url=None, judge_url=None, evaluator="heuristic", db_url="sqlite://")


def test_members_are_built_once_and_shared(servers: list[FakeServer]) -> None:
    root = Root(offline_free_settings())
    try:
        services = root.services()
        assert root.services() is services
        assert services.scanner is root.scanner()  # jobs and moderation share the process's scanner
        assert root.moderation() is root.moderation()
        assert root.moderation().scanner() is root.scanner()
        assert root.provider() is services.provider
        assert root.sessions() is root.sessions()
        assert root.local_server() is servers[0]
        assert len(servers) == 1
        assert servers[0].starts == [os.getpid()]
    finally:
        root.close()


def test_close_closes_what_it_built_once(servers: list[FakeServer]) -> None:
    root = Root(offline_free_settings())
    provider = root.services().provider
    root.close()
    root.close()
    assert provider.closed == 1  # type: ignore[attr-defined]
    assert servers[0].stops == [os.getpid()]


def test_injected_members_are_left_to_their_owners(servers: list[FakeServer]) -> None:
    provider = FakeProvider(FakeServer())
    injected = Services(provider, HeuristicScanner(), HeuristicNodeEvaluator(), closers=[provider.close])  # type: ignore[arg-type]
    root = Root(offline_free_settings(), services=injected)
    assert root.services() is injected
    root.close()
    assert provider.closed == 0
    assert servers == []  # nothing asked for the local server


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork")
def test_a_forked_child_uses_the_parents_server_and_never_stops_it(servers: list[FakeServer]) -> None:
    parent = Root(offline_free_settings())
    server = parent.local_server()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it saw through the pipe, then leave at once
        ok = False
        try:
            child = parent.for_child()
            ok = child.local_server() is server and child.provider().server is server  # type: ignore[attr-defined]
            child.close()
            parent.close()  # the inherited root: its resources are the parent's
            ok = ok and server.stops == [] and len(servers) == 1
        finally:
            os.write(write, b"ok" if ok else b"no")
            os._exit(0)
    os.close(write)
    answer = os.read(read, 2)
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"ok"
    assert server.running
    parent.close()
    assert server.stops == [os.getpid()]


def test_a_provider_asked_for_alone_is_closed_too(servers: list[FakeServer]) -> None:
    root = Root(offline_free_settings())
    provider = root.provider()
    root.close()
    assert provider.closed == 1  # type: ignore[attr-defined]
    assert servers[0].stops == [os.getpid()]

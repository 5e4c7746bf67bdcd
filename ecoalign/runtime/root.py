"""The composition root of a process: settings -> session factory, chat model, OCR engine, MiniLM safety model,
scanner, the adapters of a job step and the moderation engine, each built once on first use and closed together.

Why one object: every process (``ecoalign align``, ``ecoalign moderate``, the API app, a worker process) builds
exactly one ``Root`` and hands it (or the members it needs) down; evaluators and providers get their models and
servers through their constructors instead of reaching for module globals. The moderation of a process and the
scans of its jobs therefore share one scanner, one safety model and one OCR engine (one model per process).

All members are built under one lock (re-entrant: ``services()`` builds the provider, which starts the local
server). Injected members (a test's session factory or adapters) are used as they are and left to their owners.

Fork rule: the local llama.cpp server belongs to the process that started it, which stops it in ``close()`` (or at
exit). A forked child (a prefork worker) builds its own root with ``for_child()``: it shares its parent's server
over HTTP, never stops it, and never touches the connections or threads it inherited.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.runtime.factory import ServiceError, build_provider, build_services
from ecoalign.runtime.services import Services
from ecoalign.settings import Settings
from ecoalign.telemetry import JobSpans, otlp_job_spans

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ecoalign.content import Image
    from ecoalign.evaluators.base import Scanner
    from ecoalign.evaluators.ocr import OcrEngine
    from ecoalign.evaluators.safety_model import SafetyModel
    from ecoalign.moderation.factory import ModerationEngine
    from ecoalign.providers.base import ChatProvider
    from ecoalign.providers.local_llama import LlamaServer


def default_engine_options(settings: Settings) -> dict[str, Any]:
    """``make_engine`` options of the settings' database for the API and the CLI (the workers add theirs)."""
    return {"pool_size": settings.db_pool_size, "max_overflow": settings.db_max_overflow}


class Root:
    """One per process; see the module docstring. ``sessions`` / ``services`` inject a session factory or the
    adapters of a job step (tests, benchmarks); ``local_server`` is a server started by another process (a forked
    child's parent), used but never stopped."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine_options: Mapping[str, Any] | None = None,
        sessions: sessionmaker[Session] | None = None,
        services: Services | None = None,
        local_server: LlamaServer | None = None,
    ) -> None:
        self.settings = settings
        self._engine_options = dict(engine_options if engine_options is not None else default_engine_options(settings))
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._engine: Engine | None = None
        self._sessions = sessions
        self._own_sessions = sessions is None
        self._services = services
        self._own_services = services is None
        self._server = local_server
        self._own_server = False
        self._provider: ChatProvider | None = None
        self._ocr: OcrEngine | None = None
        self._safety_model: SafetyModel | None = None
        self._scanner: Scanner | None = None
        self._moderation: ModerationEngine | None = None
        self._remote_fetch: tuple[Callable[[str], Image] | None] | None = None
        self._spans: tuple[JobSpans | None] | None = None

    # -- the database ----------------------------------------------------------------------------------------------
    def database(self) -> Engine:
        """The engine of the settings' database (one pool per process)."""
        from ecoalign.store.db import make_engine

        with self._lock:
            if self._engine is None:
                self._engine = make_engine(self.settings.db_url, **self._engine_options)
            return self._engine

    def sessions(self) -> sessionmaker[Session]:
        """The session factory of the settings' database (or the injected one)."""
        from ecoalign.store.db import session_factory

        with self._lock:
            if self._sessions is None:
                self._sessions = session_factory(self.database())
            return self._sessions

    # -- models ----------------------------------------------------------------------------------------------------
    def local_server(self) -> LlamaServer:
        """The local llama.cpp server: started here on first use (seconds: the model loads), or the parent's."""
        from ecoalign.providers.local_llama import LlamaServer

        with self._lock:
            if self._server is not None and (not self._own_server or self._server.running):
                return self._server
            server = LlamaServer().start()
            if self._server is None:
                atexit.register(self._stop_server)  # a process that exits without close() still stops it
            self._server, self._own_server = server, True
            return server

    def provider(self) -> ChatProvider:
        """The chat model of ``ECOALIGN_MODEL_URL`` (else the local server), checked reachable."""
        with self._lock:
            if self._provider is None:
                s = self.settings
                self._provider = build_provider(s, s.model_url, s.model, s.model_api_key, self.local_server)
            return self._provider

    def ocr(self) -> OcrEngine:
        from ecoalign.evaluators.ocr import OcrEngine

        with self._lock:
            if self._ocr is None:
                self._ocr = OcrEngine()
            return self._ocr

    def safety_model(self) -> SafetyModel:
        """The MiniLM encoder (``ECOALIGN_EMBEDDER``) and the trained safety head."""
        from ecoalign.evaluators.embedder import load_minilm
        from ecoalign.evaluators.safety_model import SafetyModel

        with self._lock:
            if self._safety_model is None:
                self._safety_model = SafetyModel(load_minilm())
            return self._safety_model

    def scanner(self) -> Scanner:
        """The scanner ``ECOALIGN_EVALUATOR`` names; its models load on its first scan (``SetupError`` if unknown)."""
        from ecoalign.moderation.factory import build_scanner

        with self._lock:
            if self._scanner is None:
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # the loader's bar would garble stderr
                self._scanner = build_scanner(self.settings.evaluator, safety_model=self.safety_model, ocr=self.ocr)
            return self._scanner

    # -- what the layers above use ---------------------------------------------------------------------------------
    def services(self) -> Services:
        """The adapters of a job step: chat model, scanner, node evaluator (``ServiceError`` if one cannot be set
        up)."""
        from ecoalign.moderation.factory import SetupError

        with self._lock:
            if self._services is None:
                provider = self.provider()
                try:
                    scanner = self.scanner()
                except SetupError as exc:
                    raise ServiceError(str(exc)) from None
                self._services = build_services(self.settings, provider, scanner, self._judge_provider())
            return self._services

    def _judge_provider(self) -> ChatProvider | None:
        s = self.settings
        if not s.judge_url:
            return None
        return build_provider(s, s.judge_url, s.judge_model, s.judge_api_key, self.local_server)

    def moderation(self) -> ModerationEngine:
        """The moderation engine over this process's scanner (its judge is built on first use)."""
        from ecoalign.moderation.factory import ModerationEngine

        with self._lock:
            if self._moderation is None:
                self._moderation = ModerationEngine(self.settings, self.scanner)
            return self._moderation

    def remote_fetch(self) -> Callable[[str], Image] | None:
        """The pinned remote image fetcher if ``ECOALIGN_ALLOW_REMOTE_IMAGES`` is on, else None (URLs refused)."""
        with self._lock:
            if self._remote_fetch is None:
                from ecoalign.remote_images import remote_fetcher

                s = self.settings
                self._remote_fetch = (remote_fetcher(s.allow_remote_images, s.max_image_bytes),)
            return self._remote_fetch[0]

    # -- lifecycle -------------------------------------------------------------------------------------------------
    def job_spans(self) -> JobSpans | None:
        """Where finished jobs' spans go: an OTLP exporter when ``otlp_endpoint`` is set, else None (off)."""
        with self._lock:
            if self._spans is None:
                endpoint = self.settings.otlp_endpoint
                try:
                    spans = otlp_job_spans(endpoint, service_name=self.settings.otlp_service_name) if endpoint else None
                except RuntimeError:  # the otel extra is missing: say so once, never fail a job over telemetry
                    log.exception("OTLP export is off")
                    spans = None
                self._spans = (spans,)
            return self._spans[0]

    def for_child(self) -> Root:
        """The root of a forked child: same settings, the parent's local server borrowed; the parent's connection
        pool is dropped without closing its sockets (they belong to the parent)."""
        with self._lock:
            if self._engine is not None and self._own_sessions:
                self._engine.dispose(close=False)
            return Root(self.settings, engine_options=self._engine_options, local_server=self._server)

    def close(self) -> None:
        """Close what this root built (adapters, moderation judge, the server it started, the pool); safe to call
        twice. In a forked child that inherited this root it closes nothing: those resources are the parent's."""
        with self._lock:
            if os.getpid() != self._pid:
                return
            built_services = self._services if self._own_services else None
            provider, moderation = self._provider, self._moderation
            if self._own_services:
                self._services = None
            self._provider = self._moderation = None
            if built_services is not None:
                built_services.close()  # its closers close the provider
            elif provider is not None:
                getattr(provider, "close", lambda: None)()
            if moderation is not None:
                moderation.close()
            spans, self._spans = (self._spans or (None,))[0], None
            if spans is not None:
                spans.shutdown()  # flushes what is batched
            self._stop_server()
            if self._engine is not None:
                self._engine.dispose()  # a disposed engine opens a new pool if it is used again

    def _stop_server(self) -> None:
        """Stop the local server, only in the process that started it (never a parent's, never from a child)."""
        with self._lock:
            if self._server is not None and self._own_server and os.getpid() == self._pid:
                self._server.stop()
                self._server, self._own_server = None, False

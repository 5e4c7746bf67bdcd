"""Shared test plumbing for anything served over real HTTP: our FastAPI app on a real uvicorn server, and a real
headless Chromium (Debian's ``chromium`` package, driven by Playwright) to look at the pages it serves.

Playwright's own browser download does not work on these machines, so the browser is the system's executable
(``ECOALIGN_TEST_CHROMIUM``, default ``/usr/bin/chromium``; ``.ci/run`` installs the package).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

CHROMIUM = os.environ.get("ECOALIGN_TEST_CHROMIUM", "/usr/bin/chromium")


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """``app`` on a real uvicorn server on a free port (a thread of this process); yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def chromium_page(*, offline: bool = False, extra_headers: dict[str, str] | None = None) -> Iterator[Any]:
    """A Playwright page in the system's headless Chromium. ``offline=True`` cuts the page off from every host but
    loopback (requests elsewhere are aborted), which is how a machine without internet sees the page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            context = browser.new_context(extra_http_headers=extra_headers or {})
            if offline:
                context.route(
                    "**/*",
                    lambda route: route.continue_()
                    if route.request.url.startswith(("http://127.0.0.1", "http://localhost", "data:", "blob:"))
                    else route.abort(),
                )
            yield context.new_page()
            context.close()
        finally:
            browser.close()

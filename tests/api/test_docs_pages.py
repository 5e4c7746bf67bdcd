"""The API's documentation pages work on a machine without internet: their JavaScript and CSS are served by the API
itself (from the fastapi-offline package), so headless Chromium, cut off from every host but loopback, renders the
operations on ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc). No request of the page fails offline, except
ReDoc's decorative badge image."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.app import create_app
from tests.api.conftest import RecordingDispatcher, make_settings
from tests.serving import chromium_page, serve

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def server(pg_url: str, broker_url: str) -> Iterator[str]:
    app = create_app(make_settings(pg_url, broker_url), dispatcher=RecordingDispatcher(), queues=lambda: ["celery"])
    with serve(app) as url:
        yield url


def test_swagger_ui_lists_the_operations_offline(server: str) -> None:
    with chromium_page(offline=True) as page:
        failed: list[str] = []
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.goto(f"{server}/docs")
        page.wait_for_selector(".opblock-summary", timeout=30_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert failed == []
    assert "/v1/chat/completions" in paths
    assert "/v1/webhooks" in paths
    assert "/v1/batches" in paths


def test_redoc_lists_the_operations_offline(server: str) -> None:
    with chromium_page(offline=True) as page:
        failed: list[str] = []
        # ReDoc's own "API docs by Redocly" badge is an <img> from its CDN: decorative, and the only request that
        # fails offline; every script, stylesheet and the spec itself must come from the API
        page.on("requestfailed", lambda request: failed.append(request.url) if request.resource_type != "image"
                else None)
        page.goto(f"{server}/redoc")
        page.wait_for_function("document.body.innerText.includes('Create a chat completion')", timeout=30_000)
        text = page.inner_text("body")
        assert failed == []
    assert "Register a webhook endpoint" in text
    assert "Create a batch from an uploaded JSONL file" in text

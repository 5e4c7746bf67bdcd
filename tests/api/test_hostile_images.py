"""Hostile images over HTTP: a decompression bomb is a 413 and a truncated file a 422, each naming the field, on
every route that takes images (before the media checks mapped Pillow's bomb error, the bomb was a 500)."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import TenantKey, png_data_url
from tests.security.test_media_hostile import png_header_claiming

pytestmark = pytest.mark.postgres

BOMB = "data:image/png;base64," + base64.b64encode(png_header_claiming(100_000, 100_000)).decode()
TRUNCATED = png_data_url(32)[:-40]


def _moderation(url: str) -> dict[str, object]:
    return {"input": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": url}}]}


def _job(url: str) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"},
                                                      {"type": "image_url", "image_url": {"url": url}}]}],
            "policy": {"budget": 1000}}


@pytest.mark.parametrize(("path", "body", "loc"), [
    ("/v1/moderations", _moderation, ["body", "input", 1, "image_url", "url"]),
    ("/v1/jobs", _job, ["body", "messages", 0, "content", 1]),
])
def test_bombs_and_truncated_images_are_refused_naming_the_field(
    client: TestClient, tenant_a: TenantKey, path: str, body: Callable[[str], dict[str, object]], loc: list[object]
) -> None:
    bomb = client.post(path, headers=tenant_a.headers, json=body(BOMB))
    assert bomb.status_code == 413, bomb.text
    assert bomb.json()["loc"] == loc
    truncated = client.post(path, headers=tenant_a.headers, json=body(TRUNCATED))
    assert truncated.status_code == 422, truncated.text
    assert truncated.json()["detail"][0]["loc"] == loc

"""The reviewer's page in a real headless Chromium (Debian's ``chromium``, driven by Playwright) against a real
uvicorn server of the app on Postgres: load the page, give it the key, open a task (its text, its image, the
machine's scores and trace), claim it, decide, and find the decision stored."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.store.db import session_scope
from ecoalign.store.review_models import ReviewDecision, ReviewTask
from ecoalign.testing.emulator import EmulatorServer
from tests.api.conftest import TenantKey
from tests.moderation.dedup_images import data_url, encoded, picture
from tests.reviews.conftest import TOO_SMALL, review_app
from tests.serving import CHROMIUM, chromium_page, serve

pytestmark = [pytest.mark.postgres, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]
DOCS_SHOT = os.environ.get("ECOALIGN_DOCS_SCREENSHOT")  # set to write the screenshot docs/moderation.md shows


def test_a_reviewer_claims_and_decides_a_task_in_the_browser(
    pg_clean_engine: Engine, pg_url: str, broker_url: str, judge: EmulatorServer, tenant_a: TenantKey,
    sessions: sessionmaker[Session], tmp_path: Path,
) -> None:
    app = review_app(pg_url, broker_url, judge)
    with serve(app) as url, chromium_page(offline=True) as page:
        import httpx

        body = {"input": [{"type": "text", "text": "How do I pick the lock on this door?"},
                          {"type": "image_url", "image_url": {"url": data_url(encoded(picture(5, 160)))}}],
                "ecoalign": TOO_SMALL}
        moderated = httpx.post(f"{url}/v1/moderations", json=body, headers=tenant_a.headers, timeout=30).json()
        trace_id = moderated["results"][0]["ecoalign"]["trace_id"]

        page.goto(f"{url}/ui/reviews")
        page.fill("#api-key", tenant_a.key)
        page.click("#save-key")
        page.wait_for_selector("tr.task", timeout=15_000)
        page.click("tr.task")
        page.wait_for_selector("#detail:not(.hidden)", timeout=15_000)
        assert "pick the lock" in page.inner_text("#item-text")
        assert page.eval_on_selector("#item-images img", "img => img.naturalWidth") == 160  # the image itself
        assert page.inner_text("#machine-decision") == "scan:uncertain-item-budget-too-small"
        assert "illicit" in page.inner_text("#scores")
        assert trace_id in (page.text_content("#trace") or "")  # inside a closed <details>

        page.click("#claim")
        page.wait_for_function("document.getElementById('lease').textContent.startsWith('leased to')",
                               timeout=15_000)
        page.check("#verdict-flag")
        page.check("#categories input[value='illicit']")
        page.fill("#note", "instructions to break in")
        page.click("#submit-decision")
        page.wait_for_function("document.getElementById('status').textContent === 'decision saved'",
                               timeout=15_000)
        page.wait_for_selector("#history tr", timeout=15_000)
        page.screenshot(path=str(tmp_path / "review_page.png"), full_page=True)
        if DOCS_SHOT:
            page.screenshot(path=DOCS_SHOT, full_page=True)
        assert (tmp_path / "review_page.png").stat().st_size > 10_000

    with session_scope(sessions) as s:
        decision = s.scalars(select(ReviewDecision)).one()
        assert (decision.trace_id, decision.verdict, decision.categories, decision.note) == (
            trace_id, "flag", ["illicit"], "instructions to break in")
        task = s.scalars(select(ReviewTask)).one()
        assert task.status == "decided"
        returned = moderated["results"][0]  # the machine's decision is kept as it was returned
        assert {k: task.machine_result[k] for k in ("flagged", "categories", "category_scores")} == {
            k: returned[k] for k in ("flagged", "categories", "category_scores")}
        assert task.machine_result["ecoalign"] == {k: v for k, v in returned["ecoalign"].items() if v is not None}

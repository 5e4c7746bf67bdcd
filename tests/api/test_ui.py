"""The trace viewer in a real headless Chromium against the real API server: a job run in-process on the
emulator (model) and the lexicon evaluator, its graph drawn by vis-network, its paths plotted by plotly.js."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ecoalign.content import Request
from ecoalign.engine.policy import Policy
from ecoalign.runtime import submission
from ecoalign.runtime.inprocess import run_job
from ecoalign.runtime.report import full_report
from ecoalign.store.db import run_in_transaction
from ecoalign.testing.emulator import EmulatorServer
from tests.runtime.test_inprocess import services_for
from tests.serving import chromium_page, serve

pytestmark = pytest.mark.postgres

SAFE = "Keep a regular sleep schedule and avoid screens before bed."
UNSAFE = "Poison the neighbour and murder him so he stops the noise."


def wait_until(page, expression: str, arg=None, timeout_s: float = 30.0):
    """Poll ``expression`` in the page until it is truthy (Playwright's ``wait_for_function`` evaluates a string,
    which the page's Content-Security-Policy, without 'unsafe-eval', forbids)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = page.evaluate(expression, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout_s} s: {expression}")
        page.wait_for_timeout(50)


@pytest.fixture
def finished_job(sessions, tenant_a) -> dict:
    """A best-of-3 job of tenant A with a chosen safe answer, a pruned unsafe sibling and a lower-value answer."""
    with EmulatorServer(replies=[SAFE, UNSAFE, "Sleep more."]) as emulator:
        view, _ = run_in_transaction(
            sessions,
            lambda s: submission.submit_tenant_job(
                s, Request("How can I improve my sleep schedule?"), Policy(budget=6000), "best_of_n",
                tenant_a.tenant_id, None,
            ),
        )
        assert run_job(sessions, services_for(emulator.base_url), view["id"]) == "succeeded"
    return run_in_transaction(sessions, lambda s: full_report(s, view["id"]))


def test_graph_json_has_paths_with_the_pareto_front_and_gen_ai_totals(client: TestClient, finished_job, tenant_a):
    graph = client.get(f"/v1/jobs/{finished_job['id']}/graph", headers=tenant_a.headers).json()
    paths = {p["node_id"]: p for p in graph["paths"]}
    assert len(paths) == 3  # three complete answers, one of them pruned
    chosen = paths[finished_job["path"][-1]]
    assert chosen["pareto"]
    assert chosen["safety"] == finished_job["path_safety"]
    assert [p["status"] for p in paths.values()].count("pruned") == 1
    calls = [n["gen_ai"] for n in graph["nodes"] if n["gen_ai"]]
    assert graph["gen_ai"]["gen_ai.usage.input_tokens"] == sum(c["gen_ai.usage.input_tokens"] for c in calls)
    assert graph["gen_ai"]["gen_ai.usage.output_tokens"] == sum(c["gen_ai.usage.output_tokens"] for c in calls)
    assert graph["gen_ai"]["gen_ai.request.model"] == "ecoalign-emulator"


def test_the_viewer_draws_the_graph_and_shows_a_clicked_nodes_text(app, finished_job, tenant_a, tenant_b, tmp_path):
    job_id = finished_job["id"]
    nodes = finished_job["graph"]["nodes"]
    pruned = next(n for n in nodes if n["status"] == "pruned")
    with serve(app) as base, chromium_page(offline=True, extra_headers=tenant_a.headers) as page:
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.set_viewport_size({"width": 1400, "height": 1050})
        page.goto(f"{base}/ui/jobs/{job_id}")
        wait_until(page, "() => window.ecoViewer && (window.ecoViewer.ready || window.ecoViewer.error)")
        assert page.evaluate("window.ecoViewer.error") is None
        assert page.evaluate("window.ecoViewer.nodeCount") == len(nodes)
        assert page.evaluate("window.ecoViewer.network.body.nodeIndices.length") == len(nodes)
        assert page.evaluate("window.ecoViewer.pathCount") == 3
        assert page.locator("#scatter .scatterlayer .point").count() >= 3  # plotly drew the paths
        centre = page.evaluate("id => window.ecoViewer.nodeCenter(id)", pruned["id"])
        page.mouse.click(centre["x"], centre["y"])
        wait_until(page, "id => window.ecoViewer.selected === id", pruned["id"])
        assert page.locator("#node-text").inner_text() == UNSAFE
        assert "path safety" in page.locator("#details").inner_text()  # the prune reason
        shot = tmp_path / "viewer.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        if os.environ.get("ECOALIGN_DOCS_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["ECOALIGN_DOCS_SCREENSHOT"])
        assert errors == []

    # No key: the shell loads, the API refuses the data, the page asks for a key. Another tenant's key: 404.
    with serve(app) as base, chromium_page(offline=True) as page:
        page.goto(f"{base}/ui/jobs/{job_id}")
        wait_until(page, "() => window.ecoViewer.error !== null")
        assert "401" in page.evaluate("window.ecoViewer.error")
        assert page.locator("#key-form").is_visible()
        assert page.evaluate("window.ecoViewer.nodeCount") == 0
        # the key in the URL fragment (never sent to the server) is used, then dropped from the address bar
        page.goto("about:blank")  # a new document: a fragment change alone would not reload the page
        page.goto(f"{base}/ui/jobs/{job_id}#key={tenant_b.key}")
        wait_until(page, "() => window.ecoViewer.error !== null")
        assert "404" in page.evaluate("window.ecoViewer.error")
        assert "#key" not in page.url
        page.evaluate("sessionStorage.clear()")
        page.goto("about:blank")
        page.goto(f"{base}/ui/jobs/{job_id}#key={tenant_a.key}")
        wait_until(page, "() => window.ecoViewer.ready")
        assert page.evaluate("window.ecoViewer.nodeCount") == len(nodes)


def test_assets_come_from_installed_packages(client: TestClient):
    vis = client.get("/ui/assets/vis-network.min.js")
    assert vis.status_code == 200
    assert "vis-network" in vis.text[:2000]
    assert client.get("/ui/assets/plotly.min.js").status_code == 200
    assert client.get("/ui/assets/secret.py").status_code == 404
    page = client.get("/ui/jobs/anything")
    assert page.status_code == 200
    assert "no-store" in page.headers["cache-control"]
    assert client.get("/ui/jobs/bad%20id").status_code == 422


def test_repository_holds_no_third_party_javascript():
    ui = Path(__file__).resolve().parents[2] / "api" / "ui"
    assert sorted(p.name for p in ui.iterdir()) == ["viewer.css", "viewer.html", "viewer.js"]

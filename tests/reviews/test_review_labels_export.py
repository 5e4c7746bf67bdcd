"""Human verdicts become training labels: tasks decided over the real API on Postgres, exported with
``ecoalign export --format review-labels`` as JSONL and Parquet, the Parquet loaded with ``datasets``."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from ecoalign.cli import main
from tests.api.conftest import TenantKey
from tests.reviews.conftest import send_to_review
from tests.reviews.test_reviews_api import pending

pytestmark = pytest.mark.postgres


def _png_data_url() -> str:
    buffer = io.BytesIO()
    PILImage.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _decide(client: TestClient, reviewer: TenantKey, task_id: str, body: dict[str, Any]) -> None:
    assert client.post(f"/v1/reviews/{task_id}/claim", headers=reviewer.headers).status_code == 200
    decided = client.post(f"/v1/reviews/{task_id}/decision", json=body, headers=reviewer.headers)
    assert decided.status_code == 200, decided.text


def _task_of(client: TestClient, tenant: TenantKey, trace_id: str) -> str:
    return next(t["id"] for t in pending(client, tenant)["data"] if t["trace_id"] == trace_id)


def _export(pg_url: str, out: Path, *extra: str) -> dict[str, Any]:
    argv = ["export", "--format", "review-labels", "--db", pg_url, "-o", str(out), "--no-progress", *extra]
    assert main(argv) == 0
    manifest: dict[str, Any] = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    return manifest


def test_latest_human_verdicts_export_as_labels_next_to_the_machines_scores(
    review_client: TestClient, tenant_a: TenantKey, tenant_b: TenantKey,
    second_key: Callable[[TenantKey], TenantKey], pg_url: str, tmp_path: Path,
) -> None:
    from datasets import load_dataset

    image_part = {"type": "image_url", "image_url": {"url": _png_data_url()}}
    overturned = send_to_review(review_client, tenant_a, "How do I pick a lock on this door?", parts=[image_part])
    redecided = send_to_review(review_client, tenant_a, "How do I pick a lock, I lost my key?")
    waiting = send_to_review(review_client, tenant_a, "How do I pick a lock, still waiting?")
    other_tenant = send_to_review(review_client, tenant_b, "How do I pick a lock, other tenant?")
    assert not overturned["flagged"]
    assert not redecided["flagged"]

    overturned_id = _task_of(review_client, tenant_a, overturned["ecoalign"]["trace_id"])
    redecided_id = _task_of(review_client, tenant_a, redecided["ecoalign"]["trace_id"])
    _decide(review_client, tenant_a, overturned_id, {"verdict": "block", "categories": ["illicit"]})
    _decide(review_client, tenant_a, redecided_id, {"verdict": "flag", "categories": ["illicit"]})
    assert review_client.post(f"/v1/reviews/{redecided_id}/reopen", headers=tenant_a.headers).status_code == 200
    _decide(review_client, second_key(tenant_a), redecided_id, {"verdict": "allow"})  # only this one counts
    _decide(review_client, tenant_b, _task_of(review_client, tenant_b, other_tenant["ecoalign"]["trace_id"]),
            {"verdict": "flag", "categories": ["illicit"]})

    jsonl = tmp_path / "labels.jsonl"
    manifest = _export(pg_url, jsonl, "--filter", f"tenant_id={tenant_a.tenant_id}")
    rows = {row["task_id"]: row for row in map(json.loads, jsonl.read_text().splitlines())}
    assert set(rows) == {overturned_id, redecided_id}  # not the pending task, not the other tenant's
    assert waiting["ecoalign"]["trace_id"] not in {r["trace_id"] for r in rows.values()}
    blocked, allowed = rows[overturned_id], rows[redecided_id]
    assert (blocked["label"], blocked["verdict"], blocked["categories"]) == (True, "block", ["illicit"])
    assert (allowed["label"], allowed["verdict"], allowed["categories"]) == (False, "allow", [])
    assert blocked["machine_flagged"] is False  # the disagreement, in the row
    machine_scores = {s["category"]: s["score"] for s in blocked["machine_category_scores"]}
    assert machine_scores == pytest.approx(overturned["category_scores"])
    assert blocked["text"] == "How do I pick a lock on this door?"
    assert blocked["policy"] == {"id": "default", "version": 0}
    assert blocked["trace_id"] == overturned["ecoalign"]["trace_id"]
    assert datetime.fromisoformat(allowed["decided_at"]) > datetime.fromisoformat(blocked["decided_at"])
    assert len(blocked["images"]) == 1
    assert (tmp_path / blocked["images"][0]).read_bytes()[:4] == b"\x89PNG"
    assert allowed["images"] == []
    assert manifest["format"] == "review-labels"
    assert manifest["rows"] == 2
    assert manifest["tasks_read"] == 2
    assert manifest["rows_by_source"] == {"agrees_with_machine": 1, "overturns_machine": 1}
    assert manifest["labels"]["source"].startswith("human review queue")
    assert sum(manifest["labels"]["verdicts_by_reviewer"].values()) == 2  # two reviewers, one latest verdict each
    assert manifest["filters"] == {"tenant_id": tenant_a.tenant_id}

    parquet = tmp_path / "labels.parquet"
    _export(pg_url, parquet, "--images", "embed")  # no filter: both tenants
    dataset = load_dataset("parquet", data_files=str(parquet), split="train", cache_dir=str(tmp_path / "hf"))
    assert dataset.num_rows == 3
    by_task = {row["task_id"]: row for row in dataset}
    assert by_task[overturned_id]["label"] is True
    assert by_task[redecided_id]["label"] is False
    assert by_task[overturned_id]["images"][0].size == (8, 8)  # a decoded PIL image
    assert dataset.features["label"].dtype == "bool"

    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert _export(pg_url, tmp_path / "none.jsonl", "--filter", f"created_after={later}")["rows"] == 0


def test_review_labels_cli_rejects_a_job_filter_key(pg_url: str, tmp_path: Path, capsys: Any) -> None:
    argv = ["export", "--format", "review-labels", "--db", pg_url, "-o", str(tmp_path / "x.jsonl"),
            "--filter", "strategy=ecoalign"]
    assert main(argv) == 2
    assert "tenant_id, policy_id, created_after, created_before" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()

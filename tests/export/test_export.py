"""Training-data export from real jobs: run in-process against the OpenAI emulator (the model) and the lexicon
evaluator, then export and load the files the way TRL's trainers get them (``datasets``)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.cli import main
from ecoalign.content import Image, Request
from ecoalign.engine.policy import Policy
from ecoalign.evaluators.heuristic import EVALUATOR_ID, NODE_EVALUATOR_ID
from ecoalign.export.dedup import DigestSet
from ecoalign.export.formats import ExportFormat, Options
from ecoalign.export.run import export
from ecoalign.export.writer import ImageMode
from ecoalign.runtime import controller
from ecoalign.runtime.inprocess import run_job
from ecoalign.store.db import run_in_transaction
from ecoalign.store.exports import JobFilter
from ecoalign.testing.emulator import EmulatorServer
from tests.runtime.test_inprocess import services_for

SAFE = "Keep a regular sleep schedule and avoid screens before bed."
UNSAFE = "Poison the neighbour and murder him so he stops the noise."
SHORT = "Sleep more."


def png() -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (24, 16), (30, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def run_jobs(db: sessionmaker[Session]) -> list[str]:
    """Three best-of-3 jobs: each gets the same three replies (a safe answer, an unsafe one, a short one), so the
    two text jobs with the same request give identical rows; the third carries an image."""
    requests = [
        Request("How can I improve my sleep schedule?"),
        Request("How can I improve my sleep schedule?"),
        Request("How can I improve my sleep schedule, given this chart?", images=(Image(png(), "image/png"),)),
    ]
    ids = []
    with EmulatorServer(replies=[SAFE, UNSAFE, SHORT]) as emulator:
        services = services_for(emulator.base_url)
        for request in requests:  # one after the other: each job takes exactly the next three replies
            job_id, _ = run_in_transaction(
                db, lambda s, r=request: controller.submit(s, r, Policy(budget=6000), strategy="best_of_n")
            )
            assert run_job(db, services, job_id) == "succeeded"
            ids.append(job_id)
    return ids


def is_conversational_preference(row: dict) -> bool:
    """What TRL's DPOTrainer checks (``is_conversational``): prompt/chosen/rejected are lists of role/content."""
    return all(
        isinstance(row[key], list) and all({"role", "content"} <= set(m) for m in row[key])
        for key in ("prompt", "chosen", "rejected")
    )


def texts(messages: list[dict]) -> str:
    return "".join(p["text"] for m in messages for p in m["content"] if p["type"] == "text")


def test_dpo_parquet_from_real_jobs_loads_with_datasets_as_trl_expects(db, tmp_path: Path):
    from datasets import load_dataset

    job_ids = run_jobs(db)
    out = tmp_path / "pairs.parquet"
    result = export(db, out, Options(ExportFormat.DPO), images=ImageMode.EMBED, with_ids=True)

    dataset = load_dataset("parquet", data_files=str(out), split="train")
    assert {"prompt", "chosen", "rejected", "images"} <= set(dataset.column_names)
    rows = list(dataset)
    # 2 jobs give rows (the second text job repeats the first's exactly), 2 pairs each: unsafe, then lower value
    assert len(rows) == 4
    assert all(is_conversational_preference(r) for r in rows)
    assert {texts(r["chosen"]) for r in rows} == {SAFE}
    assert sorted(texts(r["rejected"]) for r in rows) == sorted([UNSAFE, UNSAFE, SHORT, SHORT])
    assert all(r["chosen"][0]["role"] == "assistant" and r["prompt"][0]["role"] == "user" for r in rows)
    image_rows = [r for r in rows if r["images"]]
    assert len(image_rows) == 2
    for row in image_rows:  # the placeholder sits in the content; the Image feature decodes the embedded bytes
        assert {"type": "image", "text": None} in row["prompt"][0]["content"]
        assert row["images"][0].size == (24, 16)
    first_text_job = min(job_ids[:2])  # jobs are read in id order; the later twin's rows are the duplicates
    assert {r["job_id"] for r in rows} == {first_text_job, job_ids[2]}

    manifest = json.loads(result.manifest_path.read_text())
    assert manifest == result.manifest
    assert (manifest["rows"], manifest["duplicates_removed"], manifest["jobs_read"]) == (4, 2, 3)
    assert manifest["rows_by_source"] == {"lower_value": 2, "pruned_unsafe": 2}
    assert manifest["evaluators"] == {EVALUATOR_ID: 4, NODE_EVALUATOR_ID: 4}  # the scan and the node scorer


def test_kto_and_sft_jsonl_with_image_paths(db, tmp_path: Path):
    from datasets import load_dataset

    run_jobs(db)
    kto = tmp_path / "kto.jsonl"
    export(db, kto, Options(ExportFormat.KTO))
    lines = [json.loads(line) for line in kto.read_text().splitlines()]
    # labels are absolute: the chosen is good, the unsafe sibling bad; the merely shorter answer is neither
    assert sorted((texts(r["completion"]), r["label"]) for r in lines) == sorted(
        [(SAFE, True), (UNSAFE, False), (SAFE, True), (UNSAFE, False)]
    )
    paths = [p for r in lines for p in r["images"]]
    assert len(paths) == 2
    assert len(set(paths)) == 1  # one file per distinct image
    assert (tmp_path / paths[0]).read_bytes() == png()

    sft = tmp_path / "sft.jsonl"
    export(db, sft, Options(ExportFormat.SFT, text_content=True))
    dataset = load_dataset("json", data_files=str(sft), split="train")
    assert dataset.column_names == ["messages"]  # text-only: plain string content, no images column
    assert [m["role"] for m in dataset[0]["messages"]] == ["user", "assistant"]
    assert dataset[0]["messages"][1]["content"] == SAFE
    assert len(dataset) == 1  # the duplicate dropped, the image job skipped in text mode


def test_filters_select_jobs(db, tmp_path: Path):
    run_jobs(db)
    none = export(db, tmp_path / "none.jsonl", Options(ExportFormat.SFT), spec=JobFilter(strategy="ecoalign"))
    assert none.manifest["rows"] == 0
    assert none.manifest["filters"] == {"strategy": "ecoalign"}
    safe = export(db, tmp_path / "some.jsonl", Options(ExportFormat.SFT), spec=JobFilter(min_path_safety=0.9))
    assert safe.manifest["jobs_read"] == 3
    by_judge = JobFilter(evaluator=NODE_EVALUATOR_ID, decision="answered")
    assert export(db, tmp_path / "j.jsonl", Options(ExportFormat.SFT), spec=by_judge).manifest["jobs_read"] == 3
    other = JobFilter(evaluator="llm-judge:x")
    assert export(db, tmp_path / "o.jsonl", Options(ExportFormat.SFT), spec=other).manifest["jobs_read"] == 0
    later = JobFilter(created_after=datetime.now(UTC) + timedelta(days=1))
    assert export(db, tmp_path / "l.jsonl", Options(ExportFormat.SFT), spec=later).manifest["jobs_read"] == 0


def test_cli_export_and_its_errors(sqlite_engine, tmp_path: Path, capsys):
    from ecoalign.store.db import session_factory

    run_jobs(session_factory(sqlite_engine))
    url = sqlite_engine.url.render_as_string(hide_password=False)
    out = tmp_path / "dpo.parquet"
    assert main(["export", "--format", "dpo", "--db", url, "-o", str(out), "--no-progress"]) == 0
    assert "4 dpo rows from 3 of 3 jobs (2 duplicates removed)" in capsys.readouterr().err
    assert (tmp_path / "dpo.parquet.manifest.json").exists()
    assert main(["export", "--format", "dpo", "--db", url, "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    bad = ["export", "--format", "kto", "--db", url, "-o", str(tmp_path / "x.jsonl"), "--filter", "colour=red"]
    assert main(bad) == 2
    assert "--filter 'colour=red'" in capsys.readouterr().err
    assert main(["export", "--format", "kto", "--db", url, "-o", str(tmp_path / "x.jsonl"), "--images", "embed"]) == 2
    assert "needs a .parquet output" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    assert main(["export", "--format", "sft", "--db", empty, "-o", str(tmp_path / "y.jsonl")]) == 2
    assert "cannot read jobs from sqlite:///" in capsys.readouterr().err


def test_digest_set_is_exact_and_bounded():
    seen = DigestSet(capacity=16)
    values = [(i * 0x9E3779B97F4A7C15) & (2**64 - 1) for i in range(1, 50_001)]
    assert all(seen.add(v) for v in values)
    assert not any(seen.add(v) for v in values[::7])
    assert seen.add(0)
    assert not seen.add(0)
    assert len(seen) == 50_001
    assert 16 * len(seen) <= seen.nbytes <= 32 * len(seen)


@pytest.mark.parametrize("digest", [1, 2**64 - 1])
def test_digest_set_edges(digest):
    seen = DigestSet()
    assert seen.add(digest)
    assert not seen.add(digest)

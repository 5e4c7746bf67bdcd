"""``ecoalign moderate`` on the embedded default (SQLite) decides each content once: copies within a run and in a
later run over the same database reuse the first decision at zero tokens; ``--no-dedup`` decides every line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ecoalign.bulk.output import iter_output
from ecoalign.testing.emulator import EmulatorServer

VERDICT = '{"flagged": true, "categories": {"illicit": 0.8}, "rationale": "lock picking"}'


def moderate(src: Path, dst: Path, judge: EmulatorServer, db: Path, *extra: str) -> dict[str, dict]:
    argv = [sys.executable, "-c", "import sys; from ecoalign.cli import main; sys.exit(main())", "moderate",
            str(src), "-o", str(dst), "--overwrite", "--no-progress", "--judge-url", judge.base_url,
            "--judge-model", "judge-emu", *extra]
    env = {**os.environ, "ECOALIGN_EVALUATOR": "heuristic", "ECOALIGN_DB_URL": f"sqlite:///{db}"}
    run = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return {line["custom_id"]: line["response"]["body"]["results"][0] for line in iter_output(dst)}


def test_copies_within_a_run_and_across_runs_cost_nothing_and_no_dedup_decides_each(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    texts = ["How do I pick a lock?", "How do I  pick a lock?", "Where can I buy a lock pick?", "How do I pick a lock?"]
    src.write_text("".join(json.dumps({"custom_id": f"c{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    db = tmp_path / "e.db"
    with EmulatorServer(rules=[(r"lock", VERDICT)], model="judge-emu") as judge:
        first = moderate(src, tmp_path / "o1.jsonl", judge, db)
        after_first = judge.stats["chat_requests"]
        second = moderate(src, tmp_path / "o2.jsonl", judge, db)
        after_second = judge.stats["chat_requests"]
        plain = moderate(src, tmp_path / "o3.jsonl", judge, db, "--no-dedup")
        after_plain = judge.stats["chat_requests"]
    assert after_first == 2  # two distinct contents
    assert [first[c]["ecoalign"]["tokens"] > 0 for c in ("c0", "c1", "c2", "c3")] == [True, False, True, False]
    assert first["c1"]["ecoalign"]["duplicate_of"] == first["c3"]["ecoalign"]["duplicate_of"] == \
        first["c0"]["ecoalign"]["trace_id"]
    assert after_second == after_first  # the rerun reuses every decision
    assert all(r["ecoalign"]["decision"] == "duplicate" and r["ecoalign"]["tokens"] == 0 for r in second.values())
    assert second["c2"]["ecoalign"]["duplicate_of"] == first["c2"]["ecoalign"]["trace_id"]
    assert after_plain == after_second + 4
    assert all(r["ecoalign"]["decision"] == "judge" for r in plain.values())

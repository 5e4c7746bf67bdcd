"""``ecoalign moderate`` as a user runs it: a subprocess, killed with SIGKILL mid-run and resumed; the example
input; one-line errors with a non-zero exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from ecoalign.bulk.output import iter_output

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _offline_available() -> bool:
    try:
        import ecoalign.evaluators.scanner  # noqa: F401
    except ImportError:
        return False
    return True


def _cli(*args: str, evaluator: str = "heuristic") -> list[str]:
    return [sys.executable, "-c", "import sys; from ecoalign.cli import main; sys.exit(main())", "moderate", *args]


def _env(tmp_path: Path, evaluator: str = "heuristic") -> dict[str, str]:
    return {**os.environ, "ECOALIGN_EVALUATOR": evaluator, "ECOALIGN_DB_URL": f"sqlite:///{tmp_path / 'e.db'}"}


def _count(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_gives_every_custom_id_once(tmp_path: Path) -> None:
    n = 20_000
    src = tmp_path / "in.jsonl"
    with src.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"custom_id": f"item-{i:05d}", "text": f"request {i}: how do I kill a process?"}) + "\n")
    dst = tmp_path / "out.jsonl"
    args = [str(src), "-o", str(dst), "--no-progress", "--chunk-size", "8"]
    proc = subprocess.Popen(_cli(*args), env=_env(tmp_path), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _count(dst) < 2_000:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the run wrote too little to be killed mid-way"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    written = _count(dst)
    assert 0 < written < n, written
    rerun = subprocess.run(_cli(*args, "--resume"), env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "already done" in rerun.stderr
    ids = Counter(line["custom_id"] for line in iter_output(dst))
    assert len(ids) == n
    assert set(ids.values()) == {1}
    assert all(line["error"] is None for line in iter_output(dst))
    assert _count(dst) == n  # no torn line left behind


def test_example_input_runs_through_the_cli(tmp_path: Path) -> None:
    evaluator = "offline" if _offline_available() else "heuristic"
    dst = tmp_path / "out.jsonl"
    stats = tmp_path / "stats.json"
    run = subprocess.run(
        _cli(str(EXAMPLES / "moderation-input.jsonl"), "-o", str(dst), "--no-progress", "--stats-json", str(stats)),
        env=_env(tmp_path, evaluator),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    out = {line["custom_id"]: line for line in iter_output(dst)}
    expected = {"benign-text", "unsafe-text", "homonym", "typographic-attack", "image-benign"}
    assert set(out) == expected
    assert all(line["error"] is None for line in out.values())
    assert out["unsafe-text"]["response"]["body"]["results"][0]["flagged"] is True
    assert out["benign-text"]["response"]["body"]["results"][0]["flagged"] is False
    if evaluator == "offline":  # the OCR reads the typed instruction
        assert out["typographic-attack"]["response"]["body"]["results"][0]["flagged"] is True
        assert out["image-benign"]["response"]["body"]["results"][0]["flagged"] is False
    summary = json.loads(stats.read_text())
    assert summary["results"] == 5
    assert summary["traces"] == 5
    assert run.stderr.strip().splitlines()[-1].startswith("ecoalign: moderate: 5 lines written")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}/missing.jsonl", "-o", "{tmp}/o.jsonl"], "input file not found"),
        (["{src}", "-o", "{tmp}/no/such/dir/o.jsonl"], "output folder does not exist"),
        (["{src}", "-o", "{tmp}"], "output is a folder"),
        (["{src}", "-o", "{existing}"], "--resume"),
        (["{src}", "-o", "{tmp}/o.jsonl", "--workers", "0"], "--workers"),
        (["{src}", "-o", "{tmp}/o.jsonl", "--blas-threads", "0"], "--blas-threads"),
        (["{src}", "-o", "{tmp}/o.jsonl", "--policy", "{"], "--policy is not valid JSON"),
        (["{src}", "-o", "{tmp}/o.jsonl", "--policy", '{"lo": 0.9}'], "lo <= tau"),
        (["{src}", "-o", "{tmp}/o.jsonl", "--judge-url", "http://127.0.0.1:9/v1"], "--judge-model"),
        (["{src}", "-o", "{tmp}/o.jsonl", "--api", "http://x", "--budget", "5"], "--api mode"),
        (["{src}", "-o", "{tmp}/o.jsonl", "--judge-url", "http://127.0.0.1:9/v1", "--judge-model", "m"], "judge"),
    ],
)
def test_command_line_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"custom_id": "a", "text": "hi"}\n')
    existing = tmp_path / "existing.jsonl"
    existing.write_text('{"custom_id": "z"}\n')
    argv = [
        a.replace("{tmp}", str(tmp_path)).replace("{src}", str(src)).replace("{existing}", str(existing)) for a in args
    ]
    run = subprocess.run(_cli(*argv), env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("ecoalign: error: "), run.stderr
    assert message in lines[0], run.stderr
    assert not (tmp_path / "o.jsonl").exists()


def test_cli_escalates_to_a_judge_within_the_run_budget(tmp_path: Path) -> None:
    """The CLI with --judge-url on the emulator: uncertain items (the keyword scanner's images are 0.5) are
    judged until --budget is spent, then decided by the scan; tokens add up in the stats."""
    from ecoalign.testing.emulator import EmulatorServer
    from tests.moderation.conftest import data_url, png_bytes

    src = tmp_path / "in.jsonl"
    image = data_url(png_bytes())
    with src.open("w") as f:
        for i in range(12):
            f.write(json.dumps({"custom_id": f"u{i}", "text": f"caption {i}", "images": [image]}) + "\n")
        f.write(json.dumps({"custom_id": "plain", "text": "banana bread"}) + "\n")
    dst, stats = tmp_path / "out.jsonl", tmp_path / "stats.json"
    reply = '{"safety": 0.9, "utility": 1, "categories": {}, "rationale": "ok"}'
    with EmulatorServer(replies=[reply], model="judge") as emu:
        run = subprocess.run(
            _cli(
                str(src),
                "-o",
                str(dst),
                "--no-progress",
                "--judge-url",
                emu.base_url,
                "--judge-model",
                "judge",
                "--budget",
                "3000",
                "--item-budget",
                "2000",
                "--stats-json",
                str(stats),
            ),
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=300,
        )
        judged_calls = emu.stats["chat_requests"]
    assert run.returncode == 0, run.stderr
    decisions = Counter(
        r["ecoalign"]["decision"] for line in iter_output(dst) for r in line["response"]["body"]["results"]
    )
    summary = json.loads(stats.read_text())
    assert decisions["judge"] == judged_calls >= 1
    assert decisions["scan:uncertain-run-budget-exhausted"] >= 1
    assert decisions["scan:confident-safe"] == 1
    assert summary["budget"]["spent"] == summary["tokens"] <= 3000


_TUNING_PROBE = """
import json, os, sys
from ecoalign.bulk import cli
applied = cli._limit_malloc_arenas()
undo = cli._limit_blas_threads(None)
import numpy  # loaded after the limit: OpenBLAS reads the variable
from threadpoolctl import threadpool_info
blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
env = {k: os.environ.get(k) for k in ("MALLOC_ARENA_MAX", "OPENBLAS_NUM_THREADS")}
undo()
print(json.dumps({"applied": applied, "blas": blas, "env": env, "after": os.environ.get("OPENBLAS_NUM_THREADS")}))
"""


def test_the_command_caps_blas_threads_and_malloc_arenas(tmp_path: Path) -> None:
    pytest.importorskip("threadpoolctl")
    env = {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX", "OPENBLAS_NUM_THREADS")}
    run = subprocess.run([sys.executable, "-c", _TUNING_PROBE], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    probe = json.loads(run.stdout)
    assert probe["env"] == {"MALLOC_ARENA_MAX": "2", "OPENBLAS_NUM_THREADS": "1"}
    assert probe["applied"] is sys.platform.startswith("linux")
    assert probe["blas"]
    assert set(probe["blas"]) == {1}
    assert probe["after"] is None  # the run's limit is undone afterwards
    # a user's own setting wins
    env["OPENBLAS_NUM_THREADS"] = "2"
    env["MALLOC_ARENA_MAX"] = "4"
    run = subprocess.run([sys.executable, "-c", _TUNING_PROBE], env=env, capture_output=True, text=True, timeout=60)
    probe = json.loads(run.stdout)
    assert probe["applied"] is False
    assert probe["env"] == {"MALLOC_ARENA_MAX": "4", "OPENBLAS_NUM_THREADS": "2"}

"""The test doubles and the training code stay out of the runtime: loading the API, the worker or the CLI imports
neither ``ecoalign.testing`` nor ``training``, and ``ecoalign emulator`` imports the emulator only when it runs."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from ecoalign import cli
from ecoalign.testing import emulator

LOAD_THE_RUNTIME = """
import json, sys
import api.app, workers.app, ecoalign.cli
api.app.create_app
ecoalign.cli.build_parser()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[:2] == ["ecoalign", "testing"] or m == "training"
                        or m.startswith("training."))))
"""


def test_the_runtime_entry_points_import_no_test_double_or_training_code() -> None:
    out = subprocess.run([sys.executable, "-c", LOAD_THE_RUNTIME], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_the_emulator_command_hands_every_argument_to_the_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[argparse.Namespace] = []
    monkeypatch.setattr(emulator, "run_from_args", lambda args: seen.append(args) or 0)
    argv = ["emulator", "--port", "9001", "--reply", "a b", "--fail-first-429", "2", "--rule", "x=>y"]
    assert cli.main(argv) == 0
    (args,) = seen
    assert (args.port, args.reply, args.fail_first_429, args.rule) == (9001, ["a b"], 2, ["x=>y"])


def test_the_emulator_command_rejects_an_unknown_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["emulator", "--no-such-option"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err

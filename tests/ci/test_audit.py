"""``.ci/audit.py`` (the supply-chain step of ``.ci/run``) fails only on a known vulnerability and says loudly when
packages could not be audited. A stand-in ``pip-audit`` (a script writing a fixed JSON report) plays each case."""

from __future__ import annotations

import importlib.util
import json
import stat
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "audit.py"


def load_audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_audit", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_pip_audit(tmp_path: Path, report: dict[str, Any] | None, stderr: str = "") -> str:
    """An executable that writes ``report`` where ``-o`` says (nothing if None) and ``stderr``, like pip-audit."""
    exe = tmp_path / "pip-audit"
    exe.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"report = {json.dumps(json.dumps(report)) if report is not None else None}\n"
        f"sys.stderr.write({stderr!r})\n"
        "if report is not None:\n"
        "    open(sys.argv[sys.argv.index('-o') + 1], 'w').write(report)\n"
        "sys.exit(1 if report is None else 0)\n"
    )
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return str(exe)


AUDITED_CLEAN = {"name": "httpx", "version": "0.28.1", "vulns": []}
VULNERABLE = {"name": "jinja2", "version": "2.0", "vulns": [{"id": "GHSA-xxxx", "fix_versions": ["3.1.5"]}]}
SKIPPED = {"name": "celery", "skip_reason": "Dependency not found on PyPI and could not be audited: celery (5.7.0)"}


@pytest.mark.parametrize(
    ("report", "stderr", "status", "says"),
    [
        ({"dependencies": [AUDITED_CLEAN]}, "", 0, "no known vulnerabilities in the 1 packages"),
        ({"dependencies": [AUDITED_CLEAN, VULNERABLE]}, "", 1, "VULNERABLE jinja2 2.0: GHSA-xxxx (fixed in: 3.1.5)"),
        ({"dependencies": [SKIPPED, SKIPPED]}, "", 0, "COULD NOT AUDIT 2 of 2 packages"),
        ({"dependencies": [SKIPPED, VULNERABLE]}, "", 1, "COULD NOT AUDIT 1 of 2 packages"),
        (None, "ConnectionError: Failed to resolve 'pypi.org'", 0, "COULD NOT REACH its vulnerability service"),
    ],
)
def test_outcomes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], report: dict[str, Any] | None, stderr: str, status: int,
    says: str,
) -> None:
    audit = load_audit()
    assert audit.main(["audit.py", fake_pip_audit(tmp_path, report, stderr)]) == status
    out = capsys.readouterr().out
    assert says in out
    if report is None:
        assert "Failed to resolve" in out  # the reason is shown, not swallowed

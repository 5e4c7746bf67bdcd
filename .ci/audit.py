"""Supply-chain check for ``.ci/run``: ``pip-audit`` over the installed environment, reported honestly.

pip-audit exits 0 when it *skipped* every package (its vulnerability service did not know them, or could not be
reached), which reads like a clean bill. This wrapper tells the three outcomes apart:

* a known vulnerability in an installed package: print each one and exit 1 (the only failing outcome);
* packages that could not be audited (service unreachable, or a package index that serves no per-version data,
  as the mirror on the project's build machine does): say so in capitals with the counts, exit 0;
* every package audited and none vulnerable: say so, exit 0.

Usage: ``python .ci/audit.py [PIP_AUDIT_EXECUTABLE]`` (default: the ``pip-audit`` next to this Python).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

TIMEOUT_S = 300


def run_pip_audit(executable: str) -> tuple[dict[str, Any] | None, str]:
    """pip-audit's JSON report (None if it produced none) and the last lines of its stderr."""
    with tempfile.TemporaryDirectory(prefix="ecoalign-audit-") as tmp:
        out = Path(tmp) / "audit.json"
        try:
            done = subprocess.run(  # noqa: S603 -- a fixed argument list; the executable is ours, not input
                [executable, "--progress-spinner", "off", "--skip-editable", "-f", "json", "-o", str(out)],
                capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
            )
        except subprocess.TimeoutExpired:
            return None, f"pip-audit did not finish in {TIMEOUT_S} s"
        tail = "\n".join(done.stderr.strip().splitlines()[-3:])
        if not out.exists() or not out.read_text().strip():
            return None, tail
        return json.loads(out.read_text()), tail


def summarize(report: dict[str, Any]) -> tuple[list[str], list[str], int]:
    """(one line per known vulnerability, the names of skipped packages, the number of audited packages)."""
    found: list[str] = []
    skipped: list[str] = []
    audited = 0
    for dep in report.get("dependencies", []):
        if "skip_reason" in dep:
            skipped.append(str(dep["name"]))
            continue
        audited += 1
        for vuln in dep.get("vulns", []):
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fixed version"
            found.append(f"{dep['name']} {dep.get('version', '?')}: {vuln.get('id', '?')} (fixed in: {fixes})")
    return found, skipped, audited


def main(argv: list[str]) -> int:
    executable = argv[1] if len(argv) > 1 else str(Path(sys.executable).with_name("pip-audit"))
    report, tail = run_pip_audit(executable)
    if report is None:
        print("pip-audit: COULD NOT REACH its vulnerability service; NOTHING WAS AUDITED")
        print(f"  {tail or 'no output'}")
        return 0
    found, skipped, audited = summarize(report)
    for line in found:
        print(f"pip-audit: VULNERABLE {line}")
    if skipped:
        print(f"pip-audit: COULD NOT AUDIT {len(skipped)} of {len(skipped) + audited} packages (the service "
              "had no data for them or could not be reached); they are NOT known to be safe")
        if not audited:
            print("  no package at all was audited: the service is unreachable from this machine")
    if found:
        print(f"pip-audit: {len(found)} known vulnerabilities in {audited} audited packages")
        return 1
    print(f"pip-audit: no known vulnerabilities in the {audited} packages that could be audited")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""What every ``ecoalign`` subcommand shares: the user-error type and the ``--policy`` JSON option.

Its own module so subcommand modules (``ecoalign.bulk.cli``, ``api.cli``, ``workers.cli``) need not import
``ecoalign.cli``, which imports them.
"""

from __future__ import annotations

import json
from typing import Any


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def json_object_option(value: str | None, flag: str = "--policy") -> dict[str, Any]:
    """The JSON object given to ``flag`` ({} when absent), or a ``CliError`` that names the flag and the column."""
    try:
        parsed = json.loads(value) if value else {}
    except json.JSONDecodeError as exc:
        raise CliError(f"{flag} is not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(parsed, dict):
        raise CliError(f"{flag} must be a JSON object")
    return parsed


def policy_option(value: str | None, flag: str = "--policy") -> dict[str, Any]:
    """A search policy's overrides: inline JSON, or the path of a JSON file holding them (bare, or under
    ``"policy"`` as ``ecoalign tune`` writes them)."""
    from pathlib import Path

    text = value
    if value and Path(value).is_file():
        text = Path(value).read_text(encoding="utf-8")
    elif value and value.lstrip()[:1] not in ("{", "["):
        try:
            json.loads(value)
        except json.JSONDecodeError:
            raise CliError(f"{flag}: neither a JSON object nor a file: {value}") from None
    parsed = json_object_option(text, flag)
    inner = parsed.get("policy")
    return dict(inner) if isinstance(inner, dict) else parsed

"""What an existing OUTPUT already holds, so ``--resume`` skips it (and repairs a line torn by a kill)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecoalign.bulk.idset import IdSet
from ecoalign.bulk.output import parse_output_line


@dataclass
class ResumeState:
    """What an existing OUTPUT already holds. ``done_ids``: custom_ids with a final line (a result, or an error
    about that item); ``done_lines``: input line numbers that got an error line (covers lines with no usable
    custom_id and duplicates); ``tokens``: what those results spent (charged to the run budget)."""

    done_ids: IdSet = field(default_factory=IdSet)
    done_lines: set[int] = field(default_factory=set)
    tokens: int = 0
    lines: int = 0
    dropped_bytes: int = 0
    corrupt_lines: int = 0


def read_resume_state(path: Path, *, repair: bool = True) -> ResumeState:
    """Read OUTPUT line by line (flat memory). A last line without its newline or not parseable was cut by a kill:
    it is truncated away (``repair``) so its item is redone."""
    state = ResumeState()
    if not path.exists():
        return state
    good_end = offset = 0
    with path.open("rb") as f:
        for raw in f:
            offset += len(raw)
            line = parse_output_line(raw) if raw.endswith(b"\n") else None
            if line is None:
                state.corrupt_lines += 1  # in the middle it names no custom_id and stays; at the end it is cut
                continue
            _remember(state, line)
            state.lines += 1
            good_end = offset
    state.dropped_bytes = offset - good_end
    if state.dropped_bytes and repair:
        with path.open("r+b") as f:
            f.truncate(good_end)
    return state


def _remember(state: ResumeState, line: dict[str, Any]) -> None:
    custom_id = line.get("custom_id")
    error = line.get("error")
    if isinstance(error, dict):
        if isinstance(error.get("line"), int):
            state.done_lines.add(error["line"])
        if isinstance(custom_id, str) and error.get("code") != "duplicate_custom_id":
            state.done_ids.add(custom_id)
        return
    if isinstance(custom_id, str):
        state.done_ids.add(custom_id)
    response = line.get("response")
    body = response.get("body") if isinstance(response, dict) else None
    for result in (body or {}).get("results", []) if isinstance(body, dict) else []:
        tokens = (result.get("ecoalign") or {}).get("tokens") if isinstance(result, dict) else None
        if isinstance(tokens, int):
            state.tokens += tokens

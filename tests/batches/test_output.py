"""``ecoalign.batches.output``: the output and error files of finished rows, byte for byte."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from ecoalign.batches.output import assemble, error_line


class Row(NamedTuple):
    id: int
    custom_id: str | None
    status: str
    result: dict[str, Any] | None
    error: dict[str, Any] | None


def test_completed_rows_go_to_the_output_and_failed_ones_to_the_error_file_in_row_order() -> None:
    rows = [Row(7, "a", "completed", {"status_code": 200, "body": {"ü": 1}}, None),
            Row(8, "b", "failed", None, {"code": "invalid_url", "message": "line 2: bad", "line": 2}),
            Row(9, "c", "completed", {"status_code": 200, "body": {}}, None)]
    out, err = assemble(rows)
    assert out.decode().splitlines() == [
        '{"id":"batch_req_7","custom_id":"a","response":{"status_code":200,"body":{"ü":1}},"error":null}',
        '{"id":"batch_req_9","custom_id":"c","response":{"status_code":200,"body":{}},"error":null}',
    ]
    assert [json.loads(line) for line in err.splitlines()] == [
        {"id": "batch_req_8", "custom_id": "b", "response": None,
         "error": {"code": "invalid_url", "message": "line 2: bad", "line": 2}},
    ]
    assert assemble(rows) == (out, err)  # assembling twice gives the same files


def test_nothing_finished_gives_two_empty_files() -> None:
    assert assemble([]) == (b"", b"")


def test_a_duplicate_keeps_its_custom_id_from_the_error_and_extra_fields_follow() -> None:
    stored = {"job_id": "j1", "custom_id": "dup", "line": 4, "message": "line 4: used on line 1",
              "code": "duplicate_custom_id"}
    line = error_line(3, None, stored)
    assert line["custom_id"] == "dup"
    assert list(line["error"]) == ["code", "message", "line", "job_id"]  # custom_id is moved out of the error
    assert stored["custom_id"] == "dup"  # the stored error is not changed


def test_a_row_id_wins_over_the_errors_custom_id_and_missing_fields_get_defaults() -> None:
    assert error_line(1, "own", {"custom_id": "other"})["custom_id"] == "own"
    assert error_line(2, None, None)["error"] == {"code": "error", "message": "", "line": None}

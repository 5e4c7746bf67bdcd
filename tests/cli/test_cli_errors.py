"""The --policy option shared by `ecoalign align` and `ecoalign moderate`."""

from __future__ import annotations

import pytest

from ecoalign.cli import main
from ecoalign.cli_errors import CliError, json_object_option


def test_a_json_object_is_returned_and_nothing_is_an_empty_one() -> None:
    assert json_object_option('{"budget": 900, "tau": 0.4}') == {"budget": 900, "tau": 0.4}
    assert json_object_option(None) == {}
    assert json_object_option("") == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [('{"budget": 9', "--policy is not valid JSON: Expecting ',' delimiter (column 13)"),
     ("[1, 2]", "--policy must be a JSON object")],
)
def test_bad_json_names_the_flag_and_the_column(value: str, message: str) -> None:
    with pytest.raises(CliError) as caught:
        json_object_option(value)
    assert str(caught.value) == message


def test_align_reports_a_bad_policy_as_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["align", "hello", "--policy", "[]"]) == 2
    assert "--policy must be a JSON object" in capsys.readouterr().err

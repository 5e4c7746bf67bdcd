"""The one error of a bulk run."""

from __future__ import annotations


class RunError(Exception):
    """The run cannot start or must stop (bad paths, output exists, API unreachable); one line for the user."""

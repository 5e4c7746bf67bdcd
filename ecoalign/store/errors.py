"""Domain errors of the store that more than one store module raises (``api/errors.py`` maps them to HTTP)."""

from __future__ import annotations


class NotFound(LookupError):
    """The job, node or tenant does not exist."""

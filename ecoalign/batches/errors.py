"""What can go wrong when a tenant works with its files and batches: domain errors, mapped to HTTP by
``api/errors.py`` (the service never names a status code)."""

from __future__ import annotations


class BatchError(Exception):
    """Base of the Batch API's domain errors; ``code`` is the stable error code clients see."""

    code = "batch_error"


class NotFound(BatchError, LookupError):
    """No such file or batch for this tenant (the same answer as "another tenant's": ids are not disclosed)."""

    code = "not_found"

    def __init__(self, what: str) -> None:
        super().__init__(f"no such {what}")
        self.what = what


class NotABatchInput(BatchError, ValueError):
    """The input file exists but was not uploaded for batches (``purpose`` is not ``batch``)."""

    code = "invalid_input_file"

    def __init__(self, file_id: str, purpose: str) -> None:
        super().__init__(f"file {file_id} has purpose {purpose}, not batch")


class UnknownCursor(BatchError, ValueError):
    """``after`` names no batch of this tenant."""

    code = "invalid_cursor"

    def __init__(self) -> None:
        super().__init__("unknown batch id: pass last_id of the previous page")


class BatchFinished(BatchError):
    """The batch already finished (or is finalizing): there is nothing left to cancel."""

    code = "batch_finished"

    def __init__(self, batch_id: str, status: str) -> None:
        super().__init__(f"batch {batch_id} is already {status}; it cannot be cancelled")

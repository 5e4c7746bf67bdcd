"""The review queue's domain errors (``api/errors.py`` maps them to HTTP)."""

from __future__ import annotations


class ReviewError(Exception):
    """A review request that cannot be done; ``code`` is stable for clients."""

    code = "review_error"


class ReviewNotFound(ReviewError):
    """No such task or result for this tenant (another tenant's is answered the same way)."""

    code = "not_found"


class LeaseHeld(ReviewError):
    """Another reviewer holds the task's lease (or it is decided already)."""

    code = "lease_held"


class LeaseNotHeld(ReviewError):
    """A decision from someone who does not hold the lease (never claimed, expired, or another's)."""

    code = "lease_not_held"


class InvalidReview(ReviewError):
    """A field of a review request is unusable; ``field`` names it."""

    code = "invalid_review"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

"""The SSRF-guarded remote image fetcher now lives in ``ecoalign.remote_images`` (the workers and the moderation
CLI use it too); these names stay importable from here."""

from ecoalign.remote_images import (
    ALLOWED_CONTENT_TYPES,
    TIMEOUT_S,
    checked_address,
    is_public,
    pinned_fetcher,
    system_resolve,
)

__all__ = ["ALLOWED_CONTENT_TYPES", "TIMEOUT_S", "checked_address", "is_public", "pinned_fetcher", "system_resolve"]

"""Model adapters: HTTP (OpenAI-compatible) and local clients."""

from ecoalign.providers.base import (
    ChatProvider,
    Completion,
    ProviderBadResponse,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
    Usage,
)

__all__ = [
    "ChatProvider",
    "Completion",
    "ProviderBadResponse",
    "ProviderError",
    "ProviderRateLimited",
    "ProviderRejected",
    "ProviderServerError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "Usage",
]

"""Where a webhook may be sent: the same rules as remote images (``ecoalign.remote_images``), whose
``checked_address`` and ``is_public`` this reuses unchanged.

The host is resolved once per attempt and every address it resolves to must be public (no loopback, private,
link-local, multicast or reserved target, IPv4-mapped IPv6 included); the request then goes to **that address**
(the ``Host`` header and TLS SNI carry the name), so a DNS answer that changes between check and connect cannot
reach inside. https only; redirects are not followed (a 3xx is a failed attempt); no proxies from the environment.
``ECOALIGN_WEBHOOK_ALLOW_LOOPBACK`` (tests only) also allows loopback addresses and plain http.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from ecoalign.media import MediaError
from ecoalign.remote_images import IPAddress, PinnedTarget, Resolver, is_public, pinned_target, system_resolve

MAX_URL_CHARS = 2048


class TargetRefused(ValueError):
    """The URL may not receive webhooks (scheme, credentials, or an address that is not public)."""


def allow_for(loopback: bool) -> Callable[[IPAddress], bool]:
    """Public addresses; with ``loopback`` also 127.0.0.0/8 and ::1 (tests)."""
    if not loopback:
        return is_public
    return lambda address: is_public(address) or address.is_loopback


Target = PinnedTarget  # the checked address to connect to, and the name the server is told (Host, SNI)


def check_target(url: str, *, loopback: bool = False, resolve: Resolver = system_resolve) -> Target:
    """Check ``url`` and resolve its host once (``remote_images.pinned_target``, the rule remote images obey);
    raises ``TargetRefused`` naming the reason."""
    if len(url) > MAX_URL_CHARS:
        raise TargetRefused(f"url is longer than {MAX_URL_CHARS} characters")
    schemes = ("https", "http") if loopback else ("https",)
    try:
        return pinned_target(url, schemes, resolve=resolve, allow=allow_for(loopback), field="url")
    except MediaError as exc:
        raise TargetRefused(str(exc).replace("image host", "webhook host")) from None


def post(target: Target, body: bytes, headers: dict[str, str], *, timeout_s: float) -> httpx.Response:
    """POST ``body`` to the pinned address; no redirects, no environment proxies. Raises ``httpx.HTTPError``."""
    with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
        request = client.build_request(
            "POST", target.url, content=body, headers={**headers, "Host": target.host_header,
                                                       "user-agent": "ecoalign-webhooks"},
            extensions={"sni_hostname": target.host},
        )
        response = client.send(request)
        response.close()
        return response

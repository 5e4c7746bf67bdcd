"""Fetching http(s) image URLs, only when ``ECOALIGN_ALLOW_REMOTE_IMAGES=true``.

A server that fetches URLs for its clients is an SSRF risk: the fetch refuses hosts that resolve to loopback,
private, link-local or otherwise non-global addresses, follows no redirects (a redirect could point inside),
streams with a byte cap (never trusting ``Content-Length``) and has a short timeout. DNS can still change between
our check and httpx's own lookup; deployments that need a hard guarantee should also egress through a proxy.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from ecoalign.content import Image
from ecoalign.media import MediaError, check_image_bytes

TIMEOUT_S = 10.0


def _check_host(host: str, port: int) -> None:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        raise MediaError(f"image host {host!r} does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise MediaError(f"image host {host!r} resolves to a non-public address")


def remote_fetcher(max_bytes: int, *, timeout_s: float = TIMEOUT_S) -> Callable[[str], Image]:
    """A ``remote_fetch(url) -> Image`` for ``request_from_messages``."""

    def fetch(url: str) -> Image:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MediaError("image_url must be an http(s) URL with a host")
        _check_host(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        data = bytearray()
        try:
            with httpx.stream("GET", url, timeout=timeout_s, follow_redirects=False) as response:
                if response.status_code != 200:
                    raise MediaError(f"image {url} answered HTTP {response.status_code}")
                for chunk in response.iter_bytes():
                    data.extend(chunk)
                    if len(data) > max_bytes:
                        raise MediaError(f"image {url} is over the limit of {max_bytes} bytes", too_large=True)
        except httpx.HTTPError as exc:
            raise MediaError(f"image {url} could not be fetched ({exc.__class__.__name__})") from None
        return check_image_bytes(bytes(data), url, max_bytes)

    return fetch

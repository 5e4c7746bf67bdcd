"""Fetching remote image URLs safely, only when ``ECOALIGN_ALLOW_REMOTE_IMAGES=true``.

A server that fetches URLs for its clients is an SSRF risk. An earlier fetcher checked the host's addresses and
then lets httpx resolve the name again, so a DNS answer that changes between the two lookups (DNS rebinding)
could still reach an internal address. This fetcher closes that gap:

* the host is resolved **once**; every address it resolves to must be public (not loopback, private,
  link-local, multicast, reserved or unspecified; IPv4-mapped and 6to4 IPv6 judged by the IPv4 they carry),
  else the URL is refused. Numeric host forms (``2130706433``, ``0177.0.0.1``, ``0x7f.1``) are resolved by the
  system's resolver to the address they mean, and that address is what is checked and connected to;
* the connection goes to **that checked IP**: the request URL carries the IP, the ``Host`` header and the TLS
  SNI / certificate check carry the original name (httpcore's ``sni_hostname``), so TLS still verifies the name;
* https only (http only where a caller opts in, for tests), no redirects, no proxies from the environment;
* a byte cap while streaming (``Content-Length`` is not trusted), a connect/read timeout and an overall deadline;
* the ``Content-Type`` must be one of the image types we accept, and the bytes must decode as that kind of image.

Every refusal is a ``MediaError`` naming the reason; the API turns it into a 422 naming the field (413 when too
large).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from ecoalign.content import Image
from ecoalign.media import ALLOWED_FORMATS, MediaError, check_image_bytes

TIMEOUT_S = 10.0
ALLOWED_CONTENT_TYPES = frozenset(ALLOWED_FORMATS.values())
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_ALIASES = {"image/jpg": "image/jpeg", "image/x-ms-bmp": "image/bmp"}
Resolver = Callable[[str, int], Sequence[str]]


def system_resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (TCP), in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise MediaError(f"image host {host!r} does not resolve") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(address: IPAddress) -> bool:
    """True only for globally routable unicast addresses. An IPv6 address that carries an IPv4 one is judged by
    that too: IPv4-mapped (``::ffff:10.0.0.1``, as IPv4) and 6to4 (``2002:0a00:0001::``, whose relay would
    deliver to 10.0.0.1); deprecated site-local ``fec0::/10`` is internal."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address.is_site_local or (address.sixtofour is not None and not is_public(address.sixtofour)):
            return False
    return address.is_global and not (address.is_multicast or address.is_unspecified or address.is_reserved)


def checked_address(
    host: str, port: int, *, resolve: Resolver = system_resolve, allow: Callable[[IPAddress], bool] = is_public
) -> IPAddress:
    """Resolve ``host`` once and return the address to connect to; refuse if *any* answer is not allowed
    (a name that also points inside the network is not trusted)."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        candidates = [literal]
    else:
        candidates = [ipaddress.ip_address(a.split("%")[0]) for a in resolve(host, port)]
    if not candidates:
        raise MediaError(f"image host {host!r} does not resolve")
    for address in candidates:
        if not allow(address):
            raise MediaError(
                f"image host {host!r} resolves to a non-public address ({address}): loopback, private, link-local "
                "and reserved targets are refused"
            )
    return candidates[0]


@dataclass(frozen=True)
class PinnedTarget:
    """Where to connect (the checked address, never the name again) and the name the server is told (Host, SNI)."""

    url: httpx.URL
    host: str
    host_header: str


def pinned_target(
    url: str,
    schemes: Sequence[str],
    *,
    resolve: Resolver = system_resolve,
    allow: Callable[[IPAddress], bool] = is_public,
    field: str = "image_url",
) -> PinnedTarget:
    """Check ``url`` (scheme, no credentials, port) and resolve its host once: the one rule for every URL this
    service connects to (remote images, webhook targets; ``field`` names it in the errors). A host that resolves
    to an internal address is refused as such even when its scheme would be refused too."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise MediaError(f"{field} must be an {' or '.join(schemes)} URL with a host")
    if parts.username or parts.password:
        raise MediaError(f"{field} must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise MediaError(f"{field} has an invalid port") from None
    host = parts.hostname
    address = checked_address(host, port, resolve=resolve, allow=allow)  # internal targets: refused first
    if parts.scheme not in schemes:
        raise MediaError(f"{field} must be an {' or '.join(schemes)} URL (plain http is refused)")
    target = httpx.URL(
        scheme=parts.scheme,
        host=str(address),
        port=port,
        path=parts.path or "/",
        query=parts.query.encode("ascii", "ignore") or None,
    )
    return PinnedTarget(target, host, host if parts.port is None else f"{host}:{port}")


def _image_content_type(response: httpx.Response, url: str) -> str:
    """The response's declared image type (aliases folded), or an error for a non-200 or a non-image answer."""
    if response.status_code != 200:
        raise MediaError(f"image {url} answered HTTP {response.status_code}")
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    content_type = _ALIASES.get(content_type, content_type)
    if content_type not in ALLOWED_CONTENT_TYPES:
        raise MediaError(
            f"image {url} has content type {content_type or 'none'!r}; expected one of "
            f"{', '.join(sorted(ALLOWED_CONTENT_TYPES))}"
        )
    return content_type


def _bounded_body(response: httpx.Response, url: str, max_bytes: int, timeout_s: float, deadline: float) -> bytes:
    """The body, read in chunks so an oversized or trickling answer is cut off early instead of buffered."""
    data = bytearray()
    for chunk in response.iter_bytes():
        data.extend(chunk)
        if len(data) > max_bytes:
            raise MediaError(f"image {url} is over the limit of {max_bytes} bytes", too_large=True)
        if time.monotonic() > deadline:
            raise MediaError(f"image {url} took longer than {timeout_s:g} s to download")
    return bytes(data)


def pinned_fetcher(
    max_bytes: int,
    *,
    timeout_s: float = TIMEOUT_S,
    allow_http: bool = False,
    resolve: Resolver = system_resolve,
    allow: Callable[[IPAddress], bool] = is_public,
    verify: bool | str = True,
) -> Callable[[str], Image]:
    """A ``remote_fetch(url) -> Image`` that connects only to the address it checked (see the module docstring).

    ``resolve`` and ``allow`` are injectable so tests can stand a local server in for a public one.
    """
    schemes = ("https", "http") if allow_http else ("https",)

    def fetch(url: str) -> Image:
        target = pinned_target(url, schemes, resolve=resolve, allow=allow)
        deadline = time.monotonic() + timeout_s
        try:
            with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False, verify=verify) as client:
                request = client.build_request(
                    "GET",
                    target.url,
                    headers={"Host": target.host_header, "Accept": ", ".join(sorted(ALLOWED_CONTENT_TYPES))},
                    extensions={"sni_hostname": target.host},
                )
                response = client.send(request, stream=True)
                try:
                    content_type = _image_content_type(response, url)
                    data = _bounded_body(response, url, max_bytes, timeout_s, deadline)
                finally:
                    response.close()
        except httpx.HTTPError as exc:
            raise MediaError(f"image {url} could not be fetched ({exc.__class__.__name__})") from None
        image = check_image_bytes(data, url, max_bytes)
        if image.media_type != content_type:
            raise MediaError(f"image {url} is declared {content_type} but is {image.media_type}")
        return image

    return fetch


def remote_fetcher(allowed: bool, max_bytes: int) -> Callable[[str], Image] | None:
    """The fetcher of a process or command: the pinned one when remote images are allowed, else None (http(s)
    image URLs are then refused)."""
    return pinned_fetcher(max_bytes) if allowed else None

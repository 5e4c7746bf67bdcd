"""SSRF through remote images (``ecoalign.remote_images``): every internal target is refused before a connection,
whatever form its address takes; a DNS answer that changes between check and fetch cannot redirect the fetch (the
connection goes to the checked address, and the name is never resolved again); redirects are never followed.

Local HTTP servers stand in for the outside world. A test that must reach one (on 127.0.0.1) passes an ``allow``
policy accepting exactly that address as if it were public; every other test runs the real policy.
"""

from __future__ import annotations

import http.server
import io
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PIL import Image as PILImage

from ecoalign.media import MediaError
from ecoalign.remote_images import IPAddress, checked_address, is_public, pinned_fetcher, remote_fetcher

LOOPBACK = ipaddress.ip_address("127.0.0.1")

INTERNAL_HOSTS = {
    # plain forms
    "127.0.0.1": "loopback",
    "localhost": "loopback by name",
    "10.0.0.1": "private",
    "172.16.5.4": "private",
    "192.168.1.1": "private",
    "100.64.0.1": "shared address space (carrier NAT)",
    "169.254.169.254": "link-local (cloud metadata)",
    "0.0.0.0": "unspecified (reaches this host)",
    "224.0.0.1": "multicast",
    "[::1]": "IPv6 loopback",
    "[fe80::1]": "IPv6 link-local",
    "[fc00::1]": "IPv6 unique local",
    "[fec0::1]": "IPv6 site-local (deprecated, still internal)",
    # IPv6 carrying an internal IPv4 address
    "[::ffff:127.0.0.1]": "IPv4-mapped loopback",
    "[::ffff:7f00:1]": "IPv4-mapped loopback, hex form",
    "[::ffff:169.254.169.254]": "IPv4-mapped metadata address",
    "[2002:7f00:1::1]": "6to4 of 127.0.0.1",
    "[2002:a00:1::1]": "6to4 of 10.0.0.1",
    # numeric forms the resolver turns into 127.0.0.1 / 10.0.0.1 (inet_aton's rules)
    "2130706433": "decimal",
    "0177.0.0.1": "octal",
    "017700000001": "octal, one number",
    "0x7f000001": "hex, one number",
    "0x7f.1": "hex, short form",
    "127.1": "short form",
    "10.1": "short form of 10.0.0.1",
    "0": "0 = 0.0.0.0",
}


@pytest.mark.parametrize("host", list(INTERNAL_HOSTS))
def test_internal_targets_are_refused_in_every_form(host: str) -> None:
    """The real policy and the system resolver, over https: refused before any connection (nothing listens on
    these addresses' port 443 here, so reaching the network would give another error)."""
    fetch = pinned_fetcher(10_000)
    with pytest.raises(MediaError, match="non-public address") as refused:
        fetch(f"https://{host}/cat.png")
    assert "refused" in str(refused.value), INTERNAL_HOSTS[host]


def test_the_address_checked_is_the_one_the_numeric_form_means() -> None:
    for host, meant in (("2130706433", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"),
                        ("10.1", "10.0.0.1")):
        assert checked_address(host, 443, allow=lambda _: True) == ipaddress.ip_address(meant), host


def test_a_name_with_any_internal_answer_is_refused() -> None:
    answers = ["93.184.216.34", "10.0.0.7"]  # a public answer does not launder an internal one
    with pytest.raises(MediaError, match=r"non-public address \(10\.0\.0\.7\)"):
        checked_address("mixed.example", 443, resolve=lambda h, p: answers)
    with pytest.raises(MediaError, match="does not resolve"):
        checked_address("nothing.example", 443, resolve=lambda h, p: [])


def test_public_addresses_pass() -> None:
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "2002:5db8:d822::1"):
        assert is_public(ipaddress.ip_address(address)), address


def test_remote_images_off_means_no_fetcher() -> None:
    assert remote_fetcher(False, 1000) is None
    assert remote_fetcher(True, 1000) is not None


# -- against local servers ------------------------------------------------------------------------------------
def _png() -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (4, 4), (1, 2, 3)).save(buf, format="PNG")
    return buf.getvalue()


class Recorder(http.server.ThreadingHTTPServer):
    """A local server that records each request's path and Host; ``redirect_to`` makes every answer a 302."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []
        self.redirect_to: str | None = None
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Recorder

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Host")))
        if self.server.redirect_to is not None:
            self.send_response(302)
            self.send_header("Location", self.server.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = _png()
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[Callable[[], Recorder]]:
    started: list[Recorder] = []

    def start() -> Recorder:
        server = Recorder()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def only_loopback(address: IPAddress) -> bool:
    """Stands in for "public": the one address the local servers have."""
    return address == LOOPBACK


def test_dns_rebinding_cannot_move_the_fetch(servers: Callable[[], Recorder], monkeypatch: pytest.MonkeyPatch) -> None:
    """The resolver says 127.0.0.1 (allowed here) at the check, then 10.0.0.1: the fetch still reaches the checked
    address, and the name is never handed to the system resolver at all (so no second answer can be used)."""
    server = servers()
    answers = iter([["127.0.0.1"], ["10.0.0.1"], ["10.0.0.1"]])
    asked: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        asked.append(host)
        return next(answers)

    looked_up: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def watched(host: Any, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(str(host))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", watched)
    fetch = pinned_fetcher(10_000, allow_http=True, resolve=rebinding, allow=only_loopback, timeout_s=5)
    image = fetch(f"http://rebind.example:{server.port}/cat.png")
    assert image.media_type == "image/png"
    assert asked == ["rebind.example"]  # resolved once, by the check
    assert "rebind.example" not in looked_up  # the connection did not resolve the name again
    assert server.requests == [("/cat.png", f"rebind.example:{server.port}")]  # the server still saw the name


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:{internal}/secret",
    "http://2130706433:{internal}/secret",
    "http://0177.0.0.1:{internal}/secret",
    "http://[::ffff:127.0.0.1]:{internal}/secret",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "http://localhost:{internal}/secret",
])
def test_a_redirect_is_never_followed_to_any_target(servers: Callable[[], Recorder], target: str) -> None:
    public, internal = servers(), servers()
    public.redirect_to = target.format(internal=internal.port)
    fetch = pinned_fetcher(10_000, allow_http=True, resolve=lambda h, p: ["127.0.0.1"], allow=only_loopback,
                           timeout_s=5)
    # A 302 is an error answer; a Location httpx cannot even parse (the octal form) fails the fetch as well.
    with pytest.raises(MediaError, match=r"answered HTTP 302|could not be fetched"):
        fetch(f"http://images.example:{public.port}/cat.png")
    assert len(public.requests) == 1
    assert internal.requests == []


def test_url_tricks_are_judged_by_the_host_that_is_connected_to(servers: Callable[[], Recorder]) -> None:
    """Userinfo and fragment tricks (``public@internal``, ``internal#@public``): credentials are refused, and
    the host the URL parser sees is the one resolved, checked and connected to."""
    fetch = pinned_fetcher(10_000)
    with pytest.raises(MediaError, match="credentials"):
        fetch("https://images.example@127.0.0.1/cat.png")
    with pytest.raises(MediaError, match="non-public"):
        fetch("https://127.0.0.1#@images.example/cat.png")
    with pytest.raises(MediaError, match="credentials"):  # a browser would go to 127.0.0.1; refused anyway
        fetch("https://127.0.0.1\\@images.example/cat.png")
    with pytest.raises(MediaError, match="invalid port"):
        fetch("https://images.example:99999/cat.png")
    with pytest.raises(MediaError, match="https"):
        fetch("file:///etc/passwd")

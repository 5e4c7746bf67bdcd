"""A webhook receiver on loopback, as a customer would write one: it verifies every delivery with the
``standardwebhooks`` library and answers 400 to one whose signature does not verify, 204 otherwise.

It can be started late on a port chosen in advance (``Receiver(port).start()``), so a test can have it down for
the first attempts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from tests.api.conftest import free_port


@dataclass
class Receiver:
    secret: str = ""
    port: int = field(default_factory=free_port)
    accepted: list[dict[str, Any]] = field(default_factory=list)  # {"id", "headers", "body"} of verified ones
    rejected: list[str] = field(default_factory=list)  # why each refused delivery failed
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def handle(self, body: bytes, headers: dict[str, str]) -> int:
        try:
            payload = Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError as exc:
            with self._lock:
                self.rejected.append(str(exc))
            return 400
        with self._lock:
            self.accepted.append({"id": headers.get("webhook-id"), "headers": headers, "body": payload,
                                  "raw": body})
        return 204

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status = receiver.handle(body, {k.lower(): v for k, v in self.headers.items()})
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [a for a in self.accepted if event_type is None or a["body"]["type"] == event_type]

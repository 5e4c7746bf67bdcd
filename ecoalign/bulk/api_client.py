"""The ``--api`` client: each line's item sent on, as it was written, to a remote ``POST /v1/moderations``."""

from __future__ import annotations

import threading
import time
from typing import Any

from ecoalign.bulk.chunks import ChunkFn, Outcome
from ecoalign.bulk.errors import RunError
from ecoalign.bulk.output import encode, error_line, output_line
from ecoalign.moderation.inputs import ParseOptions, request_input
from ecoalign.moderation.lines import LineError, LineHeader, build_task


class ApiClient:
    """A client of a remote ``POST {base}/v1/moderations`` (OpenAI's request and response shape), for ``--api``.

    A 4xx for an item becomes that item's error line; 429, 5xx and connection failures are retried with backoff
    and, if they persist, stop the run (``RunError``): what was written stays, ``--resume`` continues later.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        concurrency: int = 8,
    ) -> None:
        import httpx

        base = base_url.rstrip("/")
        self.url = base + ("/moderations" if base.endswith("/v1") else "/v1/moderations")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(
            headers=headers,
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        self.max_retries = max_retries
        self._lock = threading.Lock()

    def moderate(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``(status, body)`` of the final answer; raises ``RunError`` when the server stays unavailable."""
        import httpx

        delay = 0.5
        for attempt in range(self.max_retries + 1):
            try:
                response = self.client.post(self.url, json=payload)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 500 and response.status_code != 429:
                    try:
                        body = response.json()
                    except ValueError:
                        body = {"error": {"message": response.text[:300], "code": "invalid_response"}}
                    return response.status_code, body if isinstance(body, dict) else {"value": body}
                problem = f"HTTP {response.status_code}"
            if attempt < self.max_retries:
                time.sleep(delay)
                delay = min(delay * 2, 8.0)
        raise RunError(f"the moderation API at {self.url} is unavailable ({problem}); rerun with --resume")

    def chunk_fn(self, options: ParseOptions, model: str | None = None) -> ChunkFn:
        def run(headers: list[LineHeader]) -> Outcome:
            out = Outcome(items=len(headers))
            for header in headers:
                built = build_task(header, options)
                if isinstance(built, LineError):
                    out.lines.append(encode(error_line(built)))
                    out.errors += 1
                    continue
                payload: dict[str, Any] = {"input": request_input(built.requests, built.input_kind)}
                if model:
                    payload["model"] = model
                status, body = self.moderate(payload)
                if status >= 400:
                    out.lines.append(encode(error_line(_api_error(built.line_no, built.custom_id, status, body))))
                    out.errors += 1
                    continue
                out.lines.append(encode(output_line(built.custom_id, body, status)))
                _count_results(out, body)
            return out

        return run

    def close(self) -> None:
        self.client.close()


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _api_error(line_no: int, custom_id: str, status: int, body: dict[str, Any]) -> LineError:
    """The error line of an item the server refused (4xx), with the server's code and message."""
    err = _dict(body.get("error"))
    code = str(err.get("code") or f"http_{status}")
    message = f"line {line_no}: the API answered {status}: {err.get('message') or body}"
    return LineError(line_no, custom_id, code, message)


def _count_results(out: Outcome, body: dict[str, Any]) -> None:
    """The counters of a server's answer (results, flagged, tokens, decisions), whatever it left out."""
    results = body.get("results")
    results = results if isinstance(results, list) else []
    out.results += len(results)
    for result in results:
        if not isinstance(result, dict):
            continue
        out.flagged += bool(result.get("flagged"))
        ext = _dict(result.get("ecoalign"))
        out.tokens += int(ext.get("tokens") or 0)
        out.decisions[str(ext.get("decision") or "api")] += 1

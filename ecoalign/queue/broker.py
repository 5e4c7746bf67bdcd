"""kombu's Redis transport, keeping one Redis client per channel instead of building one for every command.

Why: kombu's Redis channel builds a new ``redis.Redis`` object (169 response callbacks in a case-insensitive dict)
for each publish, each ack and each queue-size query, over the same connection pool. That was 6.8% of a worker's
GIL time per node in ``benchmarks/pipeline.py`` (b), on a path that runs several times per node. A ``redis.Redis``
over a ``ConnectionPool`` keeps no per-call state (each command takes a pooled connection), so one client per pool
does the same work. If kombu replaces the pool (after a connection error), a new client is built for the new one.

Used for ``redis://`` broker URLs only (``transport_for``); any other URL keeps kombu's own transport.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis

TRANSPORT = "ecoalign.queue.broker:Transport"


class Channel(kombu_redis.Channel):
    _kept_client: tuple[Any, Any] | None = None  # (the pool it was built on, the client)

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        pool = self.pool
        kept = self._kept_client
        if kept is None or kept[0] is not pool:
            kept = self._kept_client = (pool, self._create_client())
        yield kept[1]


class Transport(kombu_redis.Transport):
    Channel = Channel


def transport_for(broker_url: str) -> str | None:
    """The transport to configure for a broker URL: ours for plain Redis, None (kombu decides) otherwise."""
    return TRANSPORT if broker_url.split("://", 1)[0] == "redis" else None

"""kombu's Redis transport, keeping one Redis client per channel instead of building one for every command.

Why: kombu's Redis channel builds a new ``redis.Redis`` object (169 response callbacks in a case-insensitive dict)
for each publish, each ack and each queue-size query, over the same connection pool. That was 6.8% of a worker's
GIL time per node in ``benchmarks/pipeline.py`` (b), on a path that runs several times per node. A ``redis.Redis``
over a ``ConnectionPool`` keeps no per-call state (each command takes a pooled connection), so one client per pool
does the same work. If kombu replaces the pool (after a connection error), a new client is built for the new one.

It also keeps a worker alive through a broker restart. With Celery 5.7 / kombu 5.7, a consumer that loses its
connection closes it (``Consumer.on_connection_error_after_connected``); closing the channel restores its unacked
messages, which needs a client, whose pool kombu has just dropped, and rebuilding the pool reads
``transport.client.hostname`` after kombu set ``transport.client`` to None: ``AttributeError`` is not a
connection error, so it escapes ``ignore_errors`` and Celery stops the worker ("Unrecoverable error"). It happens
with kombu's stock transport as well (measured: ``docs/reliability.md``; the same failure family upstream:
celery/kombu#582 and celery/kombu#970). Here a channel whose transport lost its client raises a connection error
instead: the close carries on, the consumer reconnects, and the messages it could not restore are redelivered by
Redis after the visibility timeout or, if Redis lost them, rebuilt from Postgres by the reaper.

Used for ``redis://`` broker URLs only (``transport_for``); any other URL keeps kombu's own transport.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
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

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:  # the connection is being closed: see the module docstring
            raise redis.exceptions.ConnectionError("broker connection closed; reconnecting")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel


def transport_for(broker_url: str) -> str | None:
    """The transport to configure for a broker URL: ours for plain Redis, None (kombu decides) otherwise."""
    return TRANSPORT if broker_url.split("://", 1)[0] == "redis" else None

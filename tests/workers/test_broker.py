"""ecoalign.queue.broker: kombu's Redis transport with one client per channel, against the real Redis."""

from __future__ import annotations

from typing import Any

import pytest
from kombu import Connection, Exchange, Queue

from ecoalign.queue import broker
from ecoalign.settings import Settings
from tests.workers.cluster import REDIS_HOST, REDIS_PORT, TEST_REDIS_DB
from workers.app import celery_config

URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/{TEST_REDIS_DB}"


def test_only_plain_redis_urls_get_this_transport() -> None:
    assert broker.transport_for("redis://localhost:6379/0") == broker.TRANSPORT
    for other in ("rediss://localhost:6380/0", "amqp://guest@localhost//", "sentinel://localhost:26379"):
        assert broker.transport_for(other) is None
    assert celery_config(Settings(broker_url="redis://h:1/2"))["broker_transport"] == broker.TRANSPORT
    assert celery_config(Settings(broker_url="amqp://guest@h//"))["broker_transport"] is None


@pytest.mark.redis
def test_one_client_serves_every_publish_and_ack_and_a_new_pool_gets_a_new_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[Any] = []
    create = broker.Channel._create_client

    def counting(self: broker.Channel, asynchronous: bool = False) -> Any:
        client = create(self, asynchronous)
        if not asynchronous:
            built.append(client)
        return client

    monkeypatch.setattr(broker.Channel, "_create_client", counting)
    queue = Queue("ecoalign.test.broker", Exchange("ecoalign.test.broker", type="direct"),
                  routing_key="ecoalign.test.broker")
    with Connection(URL, transport=broker.TRANSPORT) as conn:
        assert isinstance(conn.default_channel, broker.Channel)
        channel = conn.channel()
        bound = queue(channel)
        bound.declare()
        bound.purge()
        producer = conn.Producer(channel)
        for i in range(20):
            producer.publish({"i": i}, exchange=queue.exchange, routing_key=queue.routing_key, serializer="json")
        received = []
        for _ in range(20):
            message = bound.get(no_ack=False)
            assert message is not None
            received.append(message.payload["i"])
            message.ack()
        assert received == list(range(20))
        assert bound.get() is None
        assert len(built) == 1  # 20 publishes, 20 gets and 20 acks on one client

        old_pool = channel.pool
        channel._pool = None  # what kombu does when it drops its connections
        producer.publish({"i": 99}, exchange=queue.exchange, routing_key=queue.routing_key, serializer="json")
        assert channel.pool is not old_pool
        assert len(built) == 2
        again = bound.get()
        assert again is not None
        assert again.payload == {"i": 99}
        again.ack()
        bound.delete()


@pytest.mark.redis
def test_closing_a_channel_whose_connection_kombu_released_does_not_raise_attribute_error() -> None:
    """What Celery 5.7 does on a lost connection (docs/reliability.md): the channel is closed with unacked messages
    after kombu dropped its pool and released the transport's client. kombu's own channel raises
    ``AttributeError`` there (which stops the worker); ours raises a connection error, which the close ignores."""
    import redis as redis_lib

    queue = Queue("ecoalign.test.close", Exchange("ecoalign.test.close", type="direct"),
                  routing_key="ecoalign.test.close")
    with Connection(URL, transport=broker.TRANSPORT) as conn:
        channel = conn.channel()
        bound = queue(channel)
        bound.declare()
        bound.purge()
        conn.Producer(channel).publish({"i": 1}, exchange=queue.exchange, routing_key=queue.routing_key,
                                       serializer="json")
        assert bound.get(no_ack=False) is not None  # delivered, not acknowledged: the close will restore it
        channel.connection.client = None  # kombu's Connection._do_close_transport, before the channel closes
        with pytest.raises(redis_lib.ConnectionError):
            channel._connparams()
        conn.maybe_close_channel(channel)  # as kombu closes it: connection errors are ignored, nothing escapes
        assert channel.closed
    with Connection(URL, transport=broker.TRANSPORT) as conn:
        queue(conn.channel()).delete()

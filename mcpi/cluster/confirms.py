"""Publishing many task messages with one wait for the broker's confirms.

Publisher confirms make a message the broker did not take an error rather than silence.
py-amqp's own ``confirm_publish`` waits for each message's confirm before it sends the
next: a broker round trip per chunk, 1.1 ms of the 1.3 ms a chunk cost to publish on
loopback with TLS (and a whole network round trip between real hosts), so a wave of
thousands of chunks took seconds to publish while the slots waited.

A :class:`ConfirmedChannel` publishes on a channel of its own in confirm mode and waits
for the confirms of a whole batch at its end (:meth:`ConfirmedChannel.settle`): 0.25 ms
a chunk. Meanwhile it reads them only to keep at most :data:`WINDOW` unconfirmed, so the
broker's confirms never fill the socket (a broker that cannot write stops reading).

RabbitMQ numbers the messages published on a channel in confirm mode 1, 2, ... (their
delivery tags); a ``basic.ack`` or ``basic.nack`` settles its tag, and with ``multiple``
every tag up to its own (https://www.rabbitmq.com/docs/confirms#publisher-confirms).
A nack means the broker could not take the message: the batch fails as a whole, and
its caller publishes again (a chunk published twice counts once).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from celery import Celery

from mcpi.errors import JobFailed

#: Messages published but not yet confirmed, at most.
WINDOW = 1024


class ConfirmedChannel:
    """A broker connection and channel of ``app``'s, in confirm mode, for batches of task
    messages; a confirm not come within ``timeout`` seconds is a lost broker."""

    def __init__(self, app: Celery, timeout: float) -> None:
        self.app = app
        self.timeout = timeout
        # Not the app's pooled connections: their channels wait for every confirm.
        self.connection = app.connection_for_write(transport_options={"confirm_publish": False})
        try:
            self.connection.ensure_connection(max_retries=1)
            channel = self.connection.default_channel
            channel.confirm_select()
        except BaseException:
            self.close(lost=True)
            raise
        channel.events["basic_ack"].add(self._acked)
        channel.events["basic_nack"].add(self._nacked)
        self.producer = app.amqp.Producer(channel)
        #: Delivery tags: the last published; every one up to ``through`` settled, and
        #: those settled alone above it.
        self.published = 0
        self.through = 0
        self._above: set[int] = set()
        self.refused = False

    def send_task(self, name: str, args: Sequence[Any], **options: Any) -> None:
        """Publish task ``name`` (Celery's ``send_task`` options), confirmed at :meth:`settle`."""
        # No retry here: a lost connection fails the batch, whose caller publishes it
        # again; kombu's retry would go on with a new channel, not in confirm mode.
        self.app.send_task(
            name, args, producer=self.producer, retry=False, add_to_parent=False, **options
        )
        self.published += 1
        while self.published - self.through > WINDOW:
            self._drain()

    def settle(self) -> None:
        """Wait until the broker confirmed every message published; :class:`JobFailed` if
        it refused any."""
        while self.through < self.published:
            self._drain()
        if self.refused:
            self.refused = False
            raise JobFailed("the broker refused to take chunk messages (a publisher nack)")

    def close(self, lost: bool = False) -> None:
        """Close the connection: politely, or (``lost``) without a word to a broker that
        may not answer."""
        with contextlib.suppress(Exception):  # best effort: it may be gone already
            if lost:
                self.connection.collect()
            else:
                self.connection.close()

    def _drain(self) -> None:
        self.connection.drain_events(timeout=self.timeout)

    def _acked(self, tag: int, multiple: bool) -> None:
        if multiple:
            self.through = max(self.through, tag)
            self._above = {t for t in self._above if t > tag}
        elif tag > self.through:
            self._above.add(tag)
        while self.through + 1 in self._above:
            self.through += 1
            self._above.remove(self.through)

    def _nacked(self, tag: int, multiple: bool) -> None:
        self.refused = True
        self._acked(tag, multiple)

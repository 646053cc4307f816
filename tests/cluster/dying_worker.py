"""A worker (``celery -A tests.cluster.dying_worker``) whose pool process dies, once, at
one of the two moments that leave a wave's chord unable to fire.

Celery stores a chunk's result, then counts it as a part of its wave's chord; the part
that completes the chord claims the callback, then publishes it. A pool process killed
(the OOM killer, an operator's SIGKILL) between storing and counting leaves a result
stored that the chord never counts: its worker finds the result stored and acknowledges
the chunk, rightly not running it again, so the chord stays a part short. One killed
between claiming and publishing leaves a claim that expires with nothing sent. Either
way the callback never comes. Each moment is a few hundred microseconds wide, too narrow
for a test to hit from outside; this worker dies in the one ``MCPI_TEST_DIE`` names:

* ``counting:<suffix>``: after storing the result of the chunk whose task id ends with
  ``<suffix>`` (e.g. ``-1``), before counting it in the chord;
* ``sending``: after claiming a chord's callback, before publishing it.

It does so the first time only: the file ``MCPI_TEST_DIE_MARKER`` records that it died.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from celery.app.amqp import AMQP
from celery.backends.redis import RedisBackend

from mcpi.worker import app  # noqa: F401  (the app that ``celery -A`` finds here)

_count_part = RedisBackend.on_chord_part_return
_publish = AMQP._retry_publish
_moment, _, _suffix = os.environ["MCPI_TEST_DIE"].partition(":")


def _die_once() -> None:
    try:
        os.close(os.open(os.environ["MCPI_TEST_DIE_MARKER"], os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGKILL)


def _count_part_or_die(self: RedisBackend, request: Any, *args: Any, **kwargs: Any) -> Any:
    if _moment == "counting" and str(request.id).endswith(_suffix):
        _die_once()
    return _count_part(self, request, *args, **kwargs)


def _publish_or_die(self: AMQP, publish: Any, *args: Any, **kwargs: Any) -> Any:
    if _moment == "sending":
        _die_once()
    return _publish(self, publish, *args, **kwargs)


RedisBackend.on_chord_part_return = _count_part_or_die  # type: ignore[method-assign]
AMQP._retry_publish = _publish_or_die  # type: ignore[method-assign]

"""Riding out outages mid-job (mcpi.cluster.recovery), on a real broker and Redis."""

from __future__ import annotations

import errno
import ssl

import pytest

from mcpi.cluster.arrivals import Arrivals, Listeners
from mcpi.cluster.client import ClusterClient
from mcpi.cluster.publisher import Publisher
from mcpi.cluster.recovery import Recovery
from mcpi.cluster.watchdog import Watchdog
from mcpi.core.job import Job
from mcpi.core.plan import Plan
from mcpi.models.builtin import pi
from mcpi.settings import load_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def recovery(cluster_env: dict[str, str]) -> Recovery:
    client = ClusterClient(load_settings(env=cluster_env))
    job = Job("recovery", 7, Plan(2, 1), pi.call({}))
    publisher = Publisher(client, job, Arrivals(Listeners(client.results)), None)
    return Recovery(client, publisher, [])


def test_a_service_gone_is_waited_out_and_the_job_s_state_checked(recovery: Recovery) -> None:
    """The broker's TLS connection ended mid-call (the soak's "EOF occurred in violation
    of protocol"): once both services answer, the job's state is looked at, and found
    lost here (the job was never marked), which is noted."""
    watchdog = Watchdog(None, lambda: "0 of 2", lambda: 1, grace=30)
    with recovery.outage(watchdog):
        raise ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
    assert recovery.notes and "lost this job's state" in recovery.notes[0]
    recovery.forget_job()


def test_the_hub_s_own_disk_failing_is_not_an_outage(recovery: Recovery) -> None:
    """A journal that cannot be written ends the job with its own error."""
    watchdog = Watchdog(None, lambda: "0 of 2", lambda: 1, grace=30)
    with pytest.raises(OSError, match="No space left") as raised, recovery.outage(watchdog):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert raised.value.errno == errno.ENOSPC and not recovery.notes

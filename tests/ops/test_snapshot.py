"""What status makes of the workers' answers: version skew, named."""

from __future__ import annotations

from mcpi.ops.snapshot import WorkerStatus, version_skew


def worker(node: str, mcpi: str) -> WorkerStatus:
    return WorkerStatus(node=node, host=node.split("@")[1], slots=2, versions={"mcpi": mcpi})


def test_version_skew_names_each_other_version_and_its_workers() -> None:
    same = [worker("mcpi@a", "1.0"), worker("mcpi@b", "1.0")]
    assert version_skew("1.0", same) == []
    mixed = [*same, worker("mcpi@c", "0.9"), worker("mcpi@d", "0.9"), worker("x@e", "1.1")]
    warnings = version_skew("1.0", mixed)
    assert len(warnings) == 2
    assert "2 worker(s) run mcpi 0.9" in warnings[0] and "mcpi@c, mcpi@d" in warnings[0]
    assert "mcpi 1.1" in warnings[1] and "x@e" in warnings[1]
    # A worker too old to say its version is skew too.
    unknown = WorkerStatus(node="mcpi@f", host="f", slots=1)
    assert "mcpi unknown" in version_skew("1.0", [unknown])[0]

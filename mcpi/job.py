"""A job: its id, its seed and its plan, and the JSON form in which tasks carry it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from mcpi.kernel import check_seed
from mcpi.plan import Plan


class MalformedMessage(ValueError):
    """A task argument or result that does not have the documented JSON shape."""


@dataclass(frozen=True, slots=True)
class Job:
    """Estimate π from ``plan.darts`` darts of stream ``seed``."""

    id: str
    seed: int
    plan: Plan

    def __post_init__(self) -> None:
        check_seed(self.seed)

    def to_message(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seed": self.seed,
            "darts": self.plan.darts,
            "chunk_size": self.plan.chunk_size,
            "first": self.plan.first,
        }

    @classmethod
    def from_message(cls, message: Any) -> Job:
        try:
            return cls(
                id=require_field(message, "id", str),
                seed=require_field(message, "seed", int),
                plan=Plan(
                    require_field(message, "darts", int),
                    require_field(message, "chunk_size", int),
                    # Absent from the messages of hubs older than staged jobs.
                    require_field(message, "first", int) if "first" in message else 0,
                ),
            )
        except ValueError as exc:
            raise MalformedMessage(f"invalid job: {exc}") from None


def new_job_id() -> str:
    """A short random id (64 bits) naming a job in task ids and backend keys."""
    return secrets.token_hex(8)


def new_seed() -> int:
    """A fresh random seed for a job whose user gave none (printed, so reproducible)."""
    return secrets.randbits(63)


def require_field(message: Any, name: str, kind: type) -> Any:
    if not isinstance(message, dict) or name not in message:
        raise MalformedMessage(f"missing field {name!r}")
    value = message[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise MalformedMessage(f"field {name!r} must be {kind.__name__}")
    return value

"""Argument types: each turns a command-line string into a checked value, or says why not.

They raise :class:`argparse.ArgumentTypeError`, which the parser turns into a one-line
usage error naming the option.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from mcpi.core.kernel import MAX_SEED
from mcpi.core.plan import MAX_CHUNK_DARTS, MAX_DARTS
from mcpi.settings import PARSERS as SETTING_PARSERS
from mcpi.settings import ConfigError


def parse_count(text: str, what: str, maximum: int) -> int:
    """A positive whole number, written ``100000000``, ``1e8``, ``1_000_000`` or ``2.5e9``."""
    try:
        value = Decimal(text.strip().replace("_", "").replace(",", ""))
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of {what}") from None
    if not value.is_finite() or value != value.to_integral_value():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of {what}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"the number of {what} must be at least 1, not {text}")
    if value > maximum:
        raise argparse.ArgumentTypeError(f"{text} {what} is more than the maximum of {maximum:.3g}")
    return int(value)


def darts(text: str) -> int:
    return parse_count(text, "darts", MAX_DARTS)


def chunk_size(text: str) -> int:
    return parse_count(text, "darts per chunk", MAX_CHUNK_DARTS)


def samples(text: str) -> int:
    return parse_count(text, "samples", MAX_DARTS)


def sample_chunk_size(text: str) -> int:
    return parse_count(text, "samples per chunk", MAX_CHUNK_DARTS)


def half_width(text: str) -> float:
    """A model's precision: a positive absolute half-width of the 95 % interval."""
    try:
        value = float(text.strip().replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"a precision is the interval's half-width, a positive number (e.g. 1e-3), not {text}"
        )
    return value


def param(text: str) -> tuple[str, str]:
    """``NAME=VALUE``: a model parameter (its type is checked against the model's)."""
    name, equals, value = text.partition("=")
    if not equals or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name.strip(), value.strip()


def sweep(text: str) -> tuple[str, list[str]]:
    """``NAME=V1,V2,...``: a parameter's values, one job each (types checked by the model)."""
    name, equals, values = text.partition("=")
    listed = [v.strip() for v in values.split(",")]
    if not equals or not name.strip() or not all(listed):
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE,VALUE,...")
    return name.strip(), listed


def _number(text: str, what: str) -> float:
    try:
        value = float(text.strip().replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number ({what})") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{what} is a finite number, not {text}")
    return value


def histogram(text: str) -> Any:
    """``OUTPUT=LO:HI:BINS`` (bins of equal width), or ``OUTPUT=log:LO:HI:BINS``."""
    from mcpi.core.tallies import Histogram
    from mcpi.hub.request import HistogramSpec

    output, equals, spec = text.partition("=")
    parts = spec.split(":")
    log = parts[0].strip() == "log"
    if log:
        parts = parts[1:]
    if not equals or not output.strip() or len(parts) != 3:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not OUTPUT=LO:HI:BINS (or OUTPUT=log:LO:HI:BINS)"
        )
    low, high = _number(parts[0], "LO"), _number(parts[1], "HI")
    bins = parse_count(parts[2], "bins", 10**9)
    try:
        Histogram(0, low, high, bins, log)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return HistogramSpec(output.strip(), low, high, bins, log)


def quantile(text: str) -> tuple[str | None, float]:
    """``P`` (of the first output) or ``OUTPUT=P``, P in (0, 1)."""
    output, equals, level = text.rpartition("=")
    p = _number(level, "a quantile's level")
    if not 0 < p < 1:
        raise argparse.ArgumentTypeError(f"a quantile's level is between 0 and 1, not {level}")
    if equals and not output.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not P or OUTPUT=P")
    return (output.strip() or None) if equals else None, p


def exceedance(text: str) -> tuple[str, float]:
    """``OUTPUT>T``: the probability that OUTPUT exceeds T."""
    output, above, threshold = text.partition(">")
    if not above or not output.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not OUTPUT>T (quote it for the shell)")
    return output.strip(), _number(threshold, "a threshold")


def replicates(text: str) -> int:
    """Randomized QMC's replicates: a whole number from 8 to 1024."""
    from mcpi.core.sampler import MAX_REPLICATES, MIN_REPLICATES

    value = parse_count(text, "replicates", MAX_REPLICATES)
    if value < MIN_REPLICATES:
        raise argparse.ArgumentTypeError(
            f"at least {MIN_REPLICATES} replicates (the interval's t has R - 1 degrees of "
            f"freedom), not {value}"
        )
    return value


def processes(text: str) -> int:
    return parse_count(text, "processes", 4096)


def sizes(text: str) -> list[int]:
    values = [darts(part) for part in text.split(",") if part.strip()]
    if not values:
        raise argparse.ArgumentTypeError("expected job sizes such as 1e8,1e9")
    if max(values) > 10**12:
        raise argparse.ArgumentTypeError("a benchmark size is at most 1e12 darts")
    return values


def jobs_limit(text: str) -> int:
    return parse_count(text, "jobs", 10**6)


def lines(text: str) -> int:
    return parse_count(text, "lines", 100_000)


def precision(text: str) -> float:
    try:
        value = float(text.strip().replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and 0 < value < 4):
        raise argparse.ArgumentTypeError(
            f"a precision is the interval's half-width, between 0 and 4 (e.g. 1e-5), not {text}"
        )
    return value


def seed(text: str) -> int:
    try:
        value = int(text.strip(), 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed is between 0 and 2**128-1, not {text}")
    return value


def host_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected host names such as h1,h2")
    return names


def setting(name: str, flag: str) -> Callable[[str], Any]:
    """The config setting ``name``'s own parser, for its command-line ``flag``."""
    parse = SETTING_PARSERS[name]

    def convert(text: str) -> Any:
        try:
            return parse(text, flag)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{flag}: ")) from None

    return convert


def port(text: str) -> int:
    """A TCP port to listen on: 1 to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, not {text}")
    return value

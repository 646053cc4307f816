"""The control plane at 16 to 1,600 emulated slots: efficiency cold and warm, hub CPU.

    python benchmarks/scale.py [--quick] [--ideal SECONDS] [--sizes 1x16,50x32] [--json FILE]
                               [--chunks N]

Starts a private RabbitMQ and Redis (TLS), then, for each size, that many emulated
hosts (Celery nodes of sleeping thread slots, :mod:`mcpi.testing.scale`) and a job of
``--ideal`` seconds of work, cold and warm, through the CLI (see :mod:`mcpi.bench.scale`).
``--chunks N`` cuts each job into N chunks of its own (``--chunk-size``) instead of the
hub's choice: ``--sizes 4x16 --ideal 20 --chunks 100000`` is the largest-message check
of a 100,000-chunk job.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mcpi.bench import scale


def sizes_of(text: str) -> tuple[tuple[int, int], ...]:
    pairs = []
    for item in text.split(","):
        hosts, _, slots = item.partition("x")
        pairs.append((int(hosts), int(slots)))
    return tuple(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small size, a 3 s job")
    parser.add_argument("--ideal", type=float, default=None, help="seconds of ideal work (10)")
    parser.add_argument("--sizes", type=sizes_of, default=None, help="HOSTSxSLOTS,...")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--chunks", type=int, default=None, help="chunks per job (the hub's)")
    args = parser.parse_args()
    sizes = args.sizes or (scale.QUICK_SIZES if args.quick else scale.FULL_SIZES)
    ideal = args.ideal or (3.0 if args.quick else 10.0)
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    found = scale.measure(sizes, ideal, say, chunks=args.chunks)
    print("\n".join(scale.as_lines(found)))
    if args.json:
        args.json.write_text(json.dumps(scale.as_json(found), indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Benchmark runner (issue 5). Never part of the test suite.

    python -m bench.run datagen  --scale 1m          # (re)fill mediation_bench
    python -m bench.run sweep    --scale 1m --runs 3
    python -m bench.run all      --scale 1m --runs 3 # `make bench`
"""

from __future__ import annotations

import argparse
import sys

from bench import common


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("command", choices=["datagen"])
    parser.add_argument("--scale", choices=sorted(common.SCALES), default="1m")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reset", action="store_true", help="drop and recreate the database")
    args = parser.parse_args(argv)
    from bench import datagen

    fresh = datagen.ensure_database(reset=args.reset)
    common.setup_django()
    if fresh:
        datagen.migrate()
    if args.command == "datagen":
        common.save(f"datagen-{args.scale}", datagen.generate(scale=args.scale))
    return 0


if __name__ == "__main__":
    sys.exit(main())

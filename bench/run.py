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
    parser.add_argument("command", choices=["datagen", "sweep"])
    parser.add_argument("--no-orm", action="store_true", help="sweep: skip the per-row ORM loop")
    parser.add_argument("--profile", action="store_true", help="sweep: cProfile the first run")
    parser.add_argument(
        "--baseline", metavar="GIT_REF", help="sweep: also measure this ref's code, paired per run"
    )
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
    if args.command == "sweep":
        from bench import sweep

        _ensure_scale(args.scale)
        result = sweep.run(
            scale=args.scale,
            runs=args.runs,
            orm=not args.no_orm,
            profile=args.profile,
            baseline=args.baseline,
        )
        common.save(f"sweep-{args.scale}", result)
    return 0


def _ensure_scale(scale: str) -> None:
    from bench import datagen

    if datagen.current_scale() != scale:
        common.save(f"datagen-{scale}", datagen.generate(scale=scale))


if __name__ == "__main__":
    sys.exit(main())

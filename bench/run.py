"""Benchmark runner (issue 5). Never part of the test suite; figures in BENCHMARKS.md.

    python -m bench.run datagen     --scale 1m            # (re)fill mediation_bench
    python -m bench.run sweep       --scale 1m --runs 3   # 1: escalation sweep
    python -m bench.run delivery    --scale 1m --runs 3   # 2: reminders through Celery
    python -m bench.run transitions --scale 1m --runs 3   # 3: transitions over HTTP
    python -m bench.run pages       --scale 1m --runs 3   # 4: supervisor pages
    python -m bench.run all         --scale 1m --runs 3   # all of them (`make bench`)

Every subcommand makes sure the bench database holds the requested scale first (datagen).
Results go to bench/results/<benchmark>-<scale>-<time>.json; memory (5) is part of 2 and 3.
"""

from __future__ import annotations

import argparse
import sys

from bench import common

COMMANDS = ("datagen", "sweep", "delivery", "transitions", "pages", "all")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("--scale", choices=sorted(common.SCALES), default="1m")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reset", action="store_true", help="drop and recreate the database")
    parser.add_argument("--no-orm", action="store_true", help="sweep: skip the per-row ORM loop")
    parser.add_argument("--profile", action="store_true", help="sweep/delivery: profile run 1")
    parser.add_argument(
        "--baseline",
        metavar="GIT_REF",
        help="sweep/delivery: also measure this git ref's code, paired with each run",
    )
    parser.add_argument(
        "--beat-interval",
        type=float,
        default=30.0,
        help="delivery: SWEEP_INTERVAL_SECONDS of the beat (production default 30)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="delivery: per run")
    parser.add_argument("--duration", type=float, default=20.0, help="transitions: seconds")
    parser.add_argument("--clients", type=int, default=16, help="transitions: concurrent clients")
    args = parser.parse_args(argv)

    from bench import datagen

    fresh = datagen.ensure_database(reset=args.reset)
    common.setup_django()
    if fresh:
        datagen.migrate()
    if args.command == "datagen":
        common.save(f"datagen-{args.scale}", datagen.generate(scale=args.scale))
        return 0
    if datagen.current_scale() != args.scale:
        common.save(f"datagen-{args.scale}", datagen.generate(scale=args.scale))
    todo = (
        ("sweep", "delivery", "transitions", "pages") if args.command == "all" else (args.command,)
    )
    for name in todo:
        common.log(f"benchmark {name} at {args.scale}, {args.runs} runs")
        if name == "sweep":
            from bench import sweep

            result = sweep.run(
                scale=args.scale,
                runs=args.runs,
                orm=not args.no_orm,
                profile=args.profile,
                baseline=args.baseline,
            )
        elif name == "delivery":
            from bench import delivery

            result = delivery.run(
                scale=args.scale,
                runs=args.runs,
                baseline=args.baseline,
                beat_interval=args.beat_interval,
                timeout=args.timeout,
                profile=args.profile,
            )
        elif name == "transitions":
            from bench import transitions

            result = transitions.run(
                scale=args.scale, runs=args.runs, duration=args.duration, clients=args.clients
            )
        else:
            from bench import pages

            result = pages.run(scale=args.scale, runs=args.runs)
        common.save(f"{name}-{args.scale}", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmarks (issue 5). Never part of the test suite: run `make bench` or `python -m bench.run`.

See BENCHMARKS.md for the figures, the commands that produced them and what limits each one.
"""

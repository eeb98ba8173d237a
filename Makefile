# Thin wrappers: the scripts do the work (docs/SETUP.md).
.PHONY: run test lint bench venv

# Web, worker and beat with demo data; ARGS="--port 8080" to pass options.
run:
	scripts/run $(ARGS)

# Lint, import contracts, checks and the whole pytest suite (PostgreSQL and Redis running);
# ARGS="tests/unit -x" is passed to pytest.
test:
	scripts/test $(ARGS)

# ruff, import contracts and mypy only; needs no services.
lint:
	scripts/test --lint-only

# Every benchmark at 1 M cases on the scratch database mediation_bench (BENCHMARKS.md), 3 runs;
# ARGS="--scale 5m --runs 5" to change. Needs PostgreSQL, redis-server and ~4 GB of disk.
bench:
	bash -c 'source scripts/_venv.sh && ensure_venv dev'
	.venv/bin/python -m bench.run all --scale 1m $(ARGS)

# .venv with the development requirements, without running anything.
venv:
	bash -c 'source scripts/_venv.sh && ensure_venv dev'

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

bench:
	@echo "benchmarks are not written yet" >&2; exit 1

# .venv with the development requirements, without running anything.
venv:
	bash -c 'source scripts/_venv.sh && ensure_venv dev'

"""Fixtures for the fault tests: a cluster per test, always torn down, logs shown on failure."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.e2e.faults.harness import EngineSettings, FaultCluster


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def cluster_factory(
    request, transactional_db, tmp_path, monkeypatch
) -> Iterator[Callable[..., FaultCluster]]:
    """Build a `FaultCluster` (Redis + sinks started; workers are the test's business).

    Depends on `transactional_db` so the processes are killed before pytest-django flushes
    the test database. The test process follows the same test clock as the workers.
    """
    from django.db import connection

    clusters: list[FaultCluster] = []

    def make(engine: EngineSettings | None = None) -> FaultCluster:
        workdir = tmp_path / f"cluster{len(clusters)}"
        workdir.mkdir()
        cluster = FaultCluster(
            workdir, db_settings=connection.settings_dict, engine=engine or EngineSettings()
        )
        clusters.append(cluster)
        monkeypatch.setenv("MEDIATION_FAKE_NOW_FILE", str(cluster.clock.path))
        cluster.start_infrastructure()
        print(f"\n[faults] logs and sink records in {workdir}")
        return cluster

    yield make

    failed = any(
        getattr(request.node, f"rep_{when}", None) is not None
        and getattr(request.node, f"rep_{when}").failed
        for when in ("setup", "call")
    )
    for cluster in clusters:
        if failed:
            print("\n" + cluster.log_report())
        cluster.close()

"""Fixtures of the public-side tests: the pages read the test's `now`, and every test counts
its limits under its own Redis key prefix (the limits live in Redis, shared across tests)."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import caches
from django.test import override_settings

from tests.integration.web.conftest import (  # noqa: F401
    _pages_follow_the_test_clock,
    mediator,
    petition_officer,
    set_now,
    supervisor,
    township,
)


@pytest.fixture(autouse=True)
def _own_limits():
    from django.conf import settings

    limits = {**settings.CACHES["limits"], "KEY_PREFIX": f"test-limits-{uuid.uuid4().hex}"}
    with override_settings(
        CACHES={**settings.CACHES, "limits": limits}, PUBLIC_LOOKUP_MIN_SECONDS=0.05
    ):
        yield
    caches["limits"].close()

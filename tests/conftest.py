"""Shared fixtures: a fixed `now` (no random dates that straddle a deadline)."""

from __future__ import annotations

import datetime as dt

import pytest

from mediation.core.clock import SHANGHAI


@pytest.fixture
def now() -> dt.datetime:
    """Wednesday 2026-03-11 10:00 Asia/Shanghai: an ordinary working day."""
    return dt.datetime(2026, 3, 11, 10, 0, tzinfo=SHANGHAI)

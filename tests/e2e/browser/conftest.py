"""Shared by the browser tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch) -> None:
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are
    # still synchronous and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

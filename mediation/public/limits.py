"""Counters for the public side's limits, in Redis through Django's cache framework (the
"limits" cache): shared by every gunicorn worker and host, expiring by themselves.

Fixed windows: a counter per (what, who, window number). `hit` adds one and says whether the
limit is now exceeded; `exceeded` only reads. Who is always a keyed hash (an address, a phone,
a code), never the value itself.

When Redis cannot be reached: an application is let through (a person must still be able to
apply; the per-phone duplicate rule in the database still holds), a look-up is refused (the
brute-force limit must not fail open).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.core.cache import caches

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    name: str
    limit: int
    window_seconds: int
    fail_open: bool

    def _key(self, who: str, now: float) -> str:
        return f"{self.name}:{who}:{int(now // self.window_seconds)}"

    def exceeded(self, who: str) -> bool:
        """Whether `who` is already over the limit in the current window."""
        try:
            count = caches["limits"].get(self._key(who, time.time()), 0)
        except Exception:
            logger.warning("limits cache unavailable (%s)", self.name, exc_info=True)
            return not self.fail_open
        return int(count or 0) >= self.limit

    def hit(self, who: str) -> bool:
        """Count one more for `who`; True if that goes over the limit."""
        cache = caches["limits"]
        key = self._key(who, time.time())
        try:
            cache.add(key, 0, timeout=self.window_seconds + 60)
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=self.window_seconds + 60)
            count = 1
        except Exception:
            logger.warning("limits cache unavailable (%s)", self.name, exc_info=True)
            return not self.fail_open
        return int(count) > self.limit

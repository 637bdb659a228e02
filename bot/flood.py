"""A child who writes very fast: how far past their per-minute allowance they are, so replies can pause."""
from __future__ import annotations

import math
import time

SWEEP_SECONDS = 5


class FloodGauge:
    """The generic cell rate algorithm: each message moves the child's "full again" time one interval
    (a minute / limit) later; a child whose full-again time lies more than a minute ahead has sent more
    than `limit` in a burst. One float per child who wrote lately; nothing about who they are."""

    def __init__(self, per_minute: int) -> None:
        self.interval = 60.0 / per_minute
        self._full_at: dict[str, float] = {}
        self._swept = time.monotonic()

    def __len__(self) -> int:
        """How many children are remembered now (the benchmark's memory figure)."""
        return len(self._full_at)

    def excess(self, key: str) -> int:
        """Count one message; how far past the limit this child is (0: not flooding)."""
        now = time.monotonic()
        full_at = max(self._full_at.get(key, now), now) + self.interval
        self._full_at[key] = full_at
        if now - self._swept > SWEEP_SECONDS:  # children whose allowance is full again are forgotten
            self._swept = now
            for idle in [k for k, at in self._full_at.items() if at <= now]:
                del self._full_at[idle]
        return max(0, math.ceil(round((full_at - now - 60.0) / self.interval, 6)))

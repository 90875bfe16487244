"""Pacing sends to this instance's share of the SES send rate, and backoff for deferrals.

SES counts every recipient against the account's maximum send rate (Amazon SES Developer
Guide, "Managing your Amazon SES sending quotas"), so the bucket counts recipients, not
messages. Each instance holds its own bucket, refilled at `EMAIL_MAX_SEND_RATE` (the
path's share over the event source's `maximumConcurrency`, planned by the component), so
the instances together stay under the path's share.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable

__all__ = ["MAX_DELAY_SECONDS", "TokenBucket", "backoff_delay"]

MAX_DELAY_SECONDS = 900
"""The longest `DelaySeconds` SQS accepts on one message (SQS API Reference, SendMessage)."""


class TokenBucket:
    """A thread-safe token bucket of recipients, refilled at `rate` per second.

    Capacity is one second of rate (at least one recipient), so an idle instance bursts
    at most that. A message with more recipients than the capacity goes once the bucket
    is full and leaves the bucket in debt, which later sends wait out: the long-run rate
    stays `rate` and no message is too large to ever be sent.
    """

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be above 0, but {rate!r} was provided")
        self.rate = float(rate)
        self.capacity = max(1.0, self.rate)
        self._tokens = self.capacity
        self._clock = clock
        self._stamp = clock()
        self._lock = threading.Lock()

    def reserve(self, recipients: int, budget: float) -> float | None:
        """Reserve `recipients` tokens and return how long to wait before sending, or
        `None` (nothing reserved) when that wait would exceed `budget` seconds."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            needed = min(float(recipients), self.capacity)
            wait = max(0.0, (needed - self._tokens) / self.rate)
            if wait > budget:
                return None
            self._tokens -= recipients
            return wait

    def wait_for(self, recipients: int) -> float:
        """Seconds until `recipients` could be reserved (a deferral's delay)."""
        with self._lock:
            now = self._clock()
            tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            needed = min(float(recipients), self.capacity)
            return max(0.0, (needed - tokens) / self.rate)


def backoff_delay(
    hop: int,
    *,
    base: float,
    cap: float = MAX_DELAY_SECONDS,
    rand: Callable[[], float] = random.random,
) -> int:
    """`DelaySeconds` for the `hop`-th deferral (1, 2, ...): exponential, with "equal
    jitter" (half fixed, half random) so throttled messages spread out instead of
    returning together, and never 0 (AWS Architecture Blog, "Exponential Backoff And
    Jitter")."""
    ceiling = min(cap, base * 2 ** max(0, hop - 1))
    return max(1, min(int(cap), math.ceil(ceiling / 2 + rand() * ceiling / 2)))

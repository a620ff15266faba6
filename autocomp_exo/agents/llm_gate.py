"""A per-model limit on requests in flight that serves waiters in order of priority.

Why not a semaphore: when a request ends, the thread that ends it often sends
the next ones at once (an answer's follow-ups), and a fresh acquirer can take
the free slot before the waiters that came first (barging). With 100 threads
waiting for 8 slots, plan requests then wait behind implement requests that
were sent after them, and the whole iteration waits for the last plans.
Here a slot goes to the waiter with the lowest (priority, arrival): plans
(priority 0) unlock the implement requests, so they go first.
"""
from __future__ import annotations

import heapq
import itertools
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["Gate"]


class Gate:
    """At most ``n`` holders; a free slot goes to the waiter with the lowest
    (priority, arrival); nobody takes a slot while one is owed to a waiter."""

    def __init__(self, n: int):
        self.n = max(1, int(n))
        self.busy = 0
        self._cond = threading.Condition()
        self._queue: list[tuple[int, int]] = []
        self._seq = itertools.count()

    def acquire(self, priority: int = 0) -> None:
        with self._cond:
            me = (int(priority), next(self._seq))
            heapq.heappush(self._queue, me)
            while self.busy >= self.n or self._queue[0] != me:
                self._cond.wait()
            heapq.heappop(self._queue)
            self.busy += 1
            self._cond.notify_all()   # the next waiter may fit too

    def release(self) -> None:
        with self._cond:
            if self.busy <= 0:
                raise ValueError("Gate released more often than acquired")
            self.busy -= 1
            self._cond.notify_all()

    @contextmanager
    def hold(self, priority: int = 0) -> Iterator[None]:
        self.acquire(priority)
        try:
            yield
        finally:
            self.release()

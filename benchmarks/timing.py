"""What every speed benchmark times with: the median of repeated calls after a warm-up (tracing, allocation)."""

from __future__ import annotations

import statistics
import time


def median_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)

"""Timing helpers shared by the benchmarks: repeat a call, report median and p95 in milliseconds."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    name: str
    calls: int
    median_ms: float
    p95_ms: float

    def row(self) -> str:
        return f"| {self.name} | {self.calls} | {self.median_ms:.3f} | {self.p95_ms:.3f} |"


def time_calls(name: str, fn: Callable[[], object], calls: int = 200, warmup: int = 5) -> Timing:
    """Run `fn` `warmup` times untimed, then `calls` times; return the median and p95 of the wall time."""
    for _ in range(warmup):
        fn()
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - start
    return Timing(name, calls, float(np.median(times) * 1e3), float(np.percentile(times, 95) * 1e3))


def from_samples(name: str, seconds: list[float]) -> Timing:
    """A Timing from already measured durations (in seconds)."""
    arr = np.asarray(seconds)
    return Timing(name, len(arr), float(np.median(arr) * 1e3), float(np.percentile(arr, 95) * 1e3))


def machine() -> str:
    """One line naming this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import os

    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def table(rows: list[Timing]) -> str:
    head = "| what | calls | median ms | p95 ms |\n|---|---:|---:|---:|"
    return "\n".join([head, *(r.row() for r in rows)])

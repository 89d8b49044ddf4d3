"""Timing helper shared by the benchmark scripts (imported, not run)."""
import time


def best_time(fn, repeats: int):
    "Run `fn` `repeats` times; return its last result and the fastest wall-clock time in seconds."
    best, out = float("inf"), None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter(); out = fn(); best = min(best, time.perf_counter() - t0)
    return out, best

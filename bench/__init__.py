"""Benchmarks: each module times one part and prints medians and p95 (`python -m bench` runs them all)."""

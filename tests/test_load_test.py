"""scripts/load_test.py, briefly: a few users for a few seconds against app.py with stand-in models.

The real run (20 users, 60 s) is in docs/reliability.md; this checks that the script drives the app the way it
says (real drawings stroke by stroke, health and generate calls, the server's memory sampled) and stays bounded.
"""

from __future__ import annotations

import pytest
from _tiny_models import tiny_models

from scripts.load_test import acceptance, floor, has_extent, load_drawings, main, percentile, run_load, started_app


def test_percentile_and_extent():
    assert percentile([3, 1, 2, 4, 5], 50) == 3 and percentile([1.0], 99) == 1.0
    assert not has_extent([[[5, 5, 0]], [[5, 5, 100]]]) and has_extent([[[5, 5, 0], [6, 5, 10]]])


def test_acceptance_reads_the_report():
    report = {
        "errors": 0,
        "endpoints": {"classify": {"p95_ms": 120.0}, "health": {"p95_ms": 100.0}},
        "rss_mb": {"growth": 12.0},
    }
    assert all(acceptance(report).values())
    report["endpoints"]["classify"]["p95_ms"] = 160.0  # 1.6x health
    assert acceptance(report)["classify_p95_le_1.5x_health_p95"] is False


@pytest.mark.parametrize("args", [["--users", "500"], ["--seconds", "9999"], ["--url", "http://example.com/"]])
def test_refuses_unbounded_or_remote_runs(args):
    with pytest.raises(SystemExit):
        main(args)


@pytest.mark.slow
@pytest.mark.data
def test_a_short_run_against_the_app(tmp_path):
    drawings = load_drawings(limit_words=10)
    assert drawings and all(d.pointer_ups == sorted(d.pointer_ups) for d in drawings)
    with started_app(tiny_models(tmp_path / "models"), tmp_path / "app.log") as (url, pid):
        report = run_load(url, pid, users=3, seconds=6, drawings=drawings)
        layers = floor(url, n=5)
    assert report["errors"] == 0, report["endpoints"]
    assert report["endpoints"]["classify"]["requests"] > 0 and report["endpoints"]["health"]["requests"] > 0
    assert report["rss_mb"]["samples"] and report["rss_mb"]["growth"] is not None
    assert set(report["acceptance"]) >= {"zero_errors", "rss_growth_le_50mb"}
    assert {"http_get_favicon", "direct_run_no_queue", "rest_queue_call_sse", "gradio_client_predict"} <= set(layers)

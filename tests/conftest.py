"""Shared fixtures: tiny synthetic drawings, and the real data folder (tests marked `data` skip without it)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from sketchlab.data import default_data_dir

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def pytest_collection_modifyitems(config, items):
    if default_data_dir() is not None:
        return
    skip = pytest.mark.skip(reason="Quick, Draw! data not found (../shared/quickdraw or $SKETCHLAB_DATA)")
    for item in items:
        if "data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def data_dir():
    root = default_data_dir()
    if root is None:
        pytest.skip("Quick, Draw! data not found")
    return root


@pytest.fixture
def square_canvas() -> list:
    """A square and a diagonal, as a 600x600 canvas would send them: [[x, y, t_ms], ...] per stroke."""
    square = [[100, 100, 0], [500, 100, 200], [500, 500, 400], [100, 500, 600], [100, 100, 800]]
    diagonal = [[100 + 4 * i, 100 + 4 * i, 1000 + 16 * i] for i in range(101)]
    return [square, diagonal]


@pytest.fixture
def simplified_cat() -> list[np.ndarray]:
    """A small simplified drawing (0..255 ints), in the list-of-(n, 2) format."""
    return [
        np.array([[0, 40], [60, 0], [120, 40], [255, 60]], dtype=np.int32),
        np.array([[30, 120], [120, 200], [200, 120]], dtype=np.int32),
        np.array([[128, 128]], dtype=np.int32),
    ]

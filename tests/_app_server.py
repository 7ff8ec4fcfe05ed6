"""`app.py` on a free loopback port for the API, browser and fault tests (one server per module)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from scripts import app_server


@contextlib.contextmanager
def running_app(log_path: Path, *args: str) -> Iterator[str]:
    """Yield the URL of a freshly started app once it answers; stop it afterwards. Fails with the app's log."""
    with app_server.running_app(log_path, *args) as (url, _):
        yield url

"""Start `app.py` in a subprocess on a free loopback port and stop it afterwards: for tests, benchmarks and the load
test, which all need a real server."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 120  # generous: on a busy 2-core machine the import of gradio alone can take many seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(
    log_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = START_TIMEOUT_S
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Yield (url, process) of a freshly started `app.py *args` once it answers on 127.0.0.1; stop it afterwards.

    `env` replaces the whole environment (default: this one, with analytics off). Fails with the end of the app's log
    when it exits or does not answer in time.
    """
    port = free_port()
    if env is None:
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {proc.returncode}:\n{Path(log_path).read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"app.py did not answer in {timeout} s:\n{Path(log_path).read_text()[-3000:]}")
            time.sleep(0.05)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

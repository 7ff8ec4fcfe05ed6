"""Security defaults (issue 6, item 5), checked against the source and against a running app.

- The app listens on 127.0.0.1 unless told otherwise.
- No file is served from outside `assets/`: path traversal through Gradio's file routes is refused.
- Nothing is unpickled: no pickle.load(s), torch.load only with weights_only=True, np.load never with
  allow_pickle=True (the one exception, sketchlab.data's numpy-only unpickler, must keep its allow-list).
- Dependencies are pinned; no telemetry (Gradio analytics off, no connection to any outside host); no secrets.
"""

from __future__ import annotations

import ast
import http.client
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from scripts.load_test import started_app

ROOT = Path(__file__).resolve().parent.parent
THIS = Path(__file__).resolve()
PY_DIRS = ("app.py", "sketchlab", "training", "scripts", "bench", "tests")


def tracked_files(*patterns: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / line for line in out.stdout.splitlines() if line and (ROOT / line).is_file()]


def python_sources() -> list[Path]:
    files = {p for d in PY_DIRS for p in ((ROOT / d).rglob("*.py") if (ROOT / d).is_dir() else [ROOT / d])}
    return sorted(p for p in files if p.exists() and ".venv" not in p.parts and p != THIS)


# ---------------------------------------------------------------------------------------------------------------
# A running app, with a trap for outside connections


class ProxyTrap(threading.Thread):
    """A listener on 127.0.0.1 given to the app as its HTTP(S) proxy: any attempt to reach an outside host through
    httpx, requests or urllib (analytics, update checks, model hubs) connects here and is counted."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.attempts: list[bytes] = []

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.attempts.append(conn.recv(200))
                except OSError:
                    self.attempts.append(b"?")


TELEMETRY_WAIT_S = 15  # onnxruntime's OneDS telemetry first sends about 10 s after import
POSITIVE_CONTROL_MAX_S = 120  # on a loaded machine stock gradio's first analytics call can come late


def trapped_env(trap: ProxyTrap) -> dict[str, str]:
    """This environment with every HTTP(S) proxy pointing at the trap, and Gradio's analytics variable unset (the
    code under test must turn it off itself)."""
    proxy = f"http://127.0.0.1:{trap.port}"
    env = {k: v for k, v in os.environ.items() if k not in ("GRADIO_ANALYTICS_ENABLED", "ORT_DISABLE_TELEMETRY")}
    return {**env, "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "ALL_PROXY": proxy, "NO_PROXY": "127.0.0.1,localhost"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    trap = ProxyTrap()
    trap.start()
    env = {**trapped_env(trap), "PYTHONUNBUFFERED": "1"}
    try:
        with started_app(None, tmp_path_factory.mktemp("app") / "app.log", env=env) as (url, pid):
            yield url, pid, trap, time.monotonic()
    finally:
        trap.sock.close()


def get(url: str, raw_path: str) -> tuple[int, bytes]:
    """GET a path exactly as written (no client-side normalisation of `..` or `%2e`)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    try:
        conn.putrequest("GET", raw_path, skip_accept_encoding=True)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def listening_addresses(pid: int) -> set[str]:
    """Local addresses of the process's listening TCP sockets, from /proc (IPv4 and IPv6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = set()
    for table, width in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                addr = fields[1].split(":")[0]
                if width == 8:
                    out.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1]))
                else:
                    words = [bytes.fromhex(addr[i : i + 8])[::-1] for i in range(0, 32, 8)]
                    out.add(socket.inet_ntop(socket.AF_INET6, b"".join(words)))
    return out


def test_app_listens_on_loopback_only(app):
    url, pid, *_ = app
    assert listening_addresses(pid) == {"127.0.0.1"}
    source = (ROOT / "app.py").read_text()
    assert re.search(r'^DEFAULT_HOST = "127\.0\.0\.1"', source, re.M)
    assert "share=True" not in source


SECRET = "sketchlab-canary-7f3a"  # written to a file outside the repo; it must never come back


@pytest.fixture(scope="module")
def canary_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("outside") / "secret.txt"
    path.write_text(SECRET)
    return path


def traversal_paths(canary: Path) -> list[str]:
    rel = os.path.relpath(canary, ROOT)  # ../../tmp/... from the app's working directory
    targets = [str(canary), rel, "/etc/passwd", "../../../../etc/passwd", str(ROOT / "app.py"), "app.py",
               str(ROOT / ".git" / "config"), ".git/config", str(ROOT / "models" / "stroke.json"), "pyproject.toml"]  # fmt: skip
    paths = []
    for t in targets:
        quoted = urllib.parse.quote(t, safe="")
        for prefix in ("/gradio_api/file=", "/file=", "/gradio_api/file/"):
            paths += [prefix + t, prefix + quoted]
        paths.append("/gradio_api/file=" + t.replace(".", "%2e").replace("/", "%2f"))
    for t in ("app.py", ".git/config", "etc/passwd", rel):
        for route in ("/assets/", "/static/", "/svelte/", "/gradio_api/static/", "/custom_component/x/y/z/"):
            paths += [route + "../../../" + t, route + "..%2f..%2f..%2f" + urllib.parse.quote(t, safe="")]
    paths.append("/gradio_api/proxy=http://example.com/")  # no proxying of outside URLs either
    return paths


def test_no_file_outside_assets_is_served(app, canary_file):
    url, *_ = app
    leaks = []
    secrets = (SECRET.encode(), b"root:x:0:0", b"SketchLab web app", b"[core]", b'"classes"', b"[project]")
    for path in traversal_paths(canary_file):
        status, body = get(url, path)
        if status == 200 or any(s in body for s in secrets):
            leaks.append((path, status, body[:80]))
    assert leaks == []


def test_oversized_requests_are_refused_before_they_are_read(app):
    """Gradio sets no limit on request bodies; app.py does (MAX_REQUEST_BYTES), so a huge body costs no memory."""
    url, pid, *_ = app
    u = urllib.parse.urlsplit(url)
    for path in ("/gradio_api/queue/join", "/gradio_api/run/classify", "/gradio_api/run/predict"):
        body = b'{"data": ["' + b"[" * (6 * 1024 * 1024) + b'"], "fn_index": 0, "session_hash": "big"}'
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        try:
            conn.request("POST", path, body, {"Content-Type": "application/json"})
            assert conn.getresponse().status == 413, path
        except (BrokenPipeError, ConnectionResetError):  # the server may close before the whole body is sent
            pass
        finally:
            conn.close()
    assert get(url, "/config")[0] == 200


def test_no_connection_to_outside_hosts(app):
    url, _, trap, started = app
    assert get(url, "/")[0] == 200 and get(url, "/config")[0] == 200  # the page and its config
    time.sleep(max(0.0, started + TELEMETRY_WAIT_S - time.monotonic()))  # long enough for onnxruntime's telemetry
    assert trap.attempts == [], trap.attempts


# ---------------------------------------------------------------------------------------------------------------
# The source


def _call_name(node: ast.Call) -> str:
    parts, f = [], node.func
    while isinstance(f, ast.Attribute):
        parts.append(f.attr)
        f = f.value
    if isinstance(f, ast.Name):
        parts.append(f.id)
    return ".".join(reversed(parts))


def _keyword(node: ast.Call, name: str) -> object:
    for kw in node.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else "<expression>"
    return None


def unsafe_loads(path: Path) -> list[str]:
    """Calls in one file that could unpickle: pickle/dill/joblib/shelve loads, torch.load without
    weights_only=True, np.load with allow_pickle=True, and Unpickler subclasses without a find_class allow-list."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call):
            name = _call_name(node)
            if re.fullmatch(r"(c?pickle|dill|joblib|shelve|pandas|pd)\.(load|loads|open|read_pickle)", name):
                found.append(f"{where} {name}")
            elif name.endswith("torch.load") and _keyword(node, "weights_only") is not True:
                found.append(f"{where} torch.load without weights_only=True")
            elif re.fullmatch(r"(np|numpy)\.load", name) and _keyword(node, "allow_pickle") not in (None, False):
                found.append(f"{where} np.load with allow_pickle")
        if isinstance(node, ast.ClassDef) and any("Unpickler" in ast.unparse(b) for b in node.bases):
            methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
            if "find_class" not in methods:
                found.append(f"{where} Unpickler subclass {node.name} without a find_class allow-list")
    return found


def test_nothing_is_unpickled():
    assert [hit for path in python_sources() for hit in unsafe_loads(path)] == []


def test_the_unsafe_load_check_finds_what_it_should(tmp_path):
    bad = tmp_path / "unsafe.py"
    bad.write_text(
        "import pickle, torch, numpy as np\n"
        "pickle.loads(b'')\ntorch.load('x')\ntorch.load('x', weights_only=False)\nnp.load('x', allow_pickle=True)\n"
        "class U(pickle.Unpickler):\n    pass\n"
        "torch.load('x', weights_only=True)\nnp.load('x')\n"
    )
    assert len(unsafe_loads(bad)) == 5, unsafe_loads(bad)


def test_the_one_unpickler_allows_numpy_arrays_only():
    from sketchlab.data import _NumpyOnlyUnpickler

    allowed = {module.split(".")[0] for module, _ in _NumpyOnlyUnpickler._ALLOWED}
    assert allowed == {"numpy"}


def test_requirements_are_pinned():
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    requirements = [line for line in lines if line and not line.startswith("-")]
    assert requirements and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[\w.+]+", r) for r in requirements), requirements


def test_analytics_are_off_before_gradio_is_imported():
    for path in (ROOT / "app.py", ROOT / "scripts" / "load_test.py"):
        source = path.read_text()
        off = source.find('os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"')
        first_import = min(i for i in (source.find("import gradio"), source.find("from gradio")) if i >= 0)
        assert 0 <= off < first_import, path
    env = {
        k: v for k, v in os.environ.items() if k not in ("GRADIO_ANALYTICS_ENABLED", "GRADIO_ANALYTICS_CACHE_FREQUENCY")
    }
    probe = (
        "import app, gradio.analytics as a, os, sys\n"  # and the per-event summary off too (docs: The floor)
        "sys.exit(0 if not a.analytics_enabled() and os.environ['GRADIO_ANALYTICS_CACHE_FREQUENCY'] == '1' + '0' * 9 else 1)"
    )
    assert subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, timeout=120).returncode == 0


SECRET_PATTERNS = {
    "AWS key": r"AKIA[0-9A-Z]{16}",
    "private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    "Hugging Face token": r"\bhf_[A-Za-z0-9]{30,}",
    "GitHub token": r"\bgh[pousr]_[A-Za-z0-9]{36}",
    "OpenAI-style key": r"\bsk-[A-Za-z0-9]{32,}",
    "Slack token": r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
}


def test_no_secrets_in_tracked_files():
    hits = []
    for path in tracked_files():
        if path == THIS or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        hits += [f"{path.relative_to(ROOT)}: {name}" for name, rx in SECRET_PATTERNS.items() if re.search(rx, text)]
    assert hits == []


@pytest.mark.slow
def test_the_trap_catches_stock_gradio_and_onnxruntime_but_not_sketchlab(tmp_path):
    """The outside-connection check is not vacuous: stock Gradio with analytics on is caught by the local trap (a
    bare `import onnxruntime` usually is too, by its OneDS telemetry) (nothing leaves the machine: the trap only reads the CONNECT
    line); `sketchlab.runtime`, which sets ORT_DISABLE_TELEMETRY before importing onnxruntime, is not."""
    programs = {
        "gradio": "import gradio as gr\nwith gr.Blocks() as demo:\n    gr.Markdown('x')\n"
        "demo.launch(prevent_thread_lock=True, quiet=True)\n",
        "onnxruntime": "import onnxruntime\n",
        "sketchlab": "import sketchlab.runtime\n",
    }
    traps, procs = {}, {}
    for name, code in programs.items():
        traps[name] = trap = ProxyTrap()
        trap.start()
        env = {**trapped_env(trap), "PYTHONPATH": str(ROOT)}
        if name == "gradio":
            env["GRADIO_ANALYTICS_ENABLED"] = "True"
        code += f"import time\ntime.sleep({POSITIVE_CONTROL_MAX_S})\n"
        procs[name] = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)
    # Wait for the positive control (its timing depends on the machine's load), then the usual margin more: sketchlab,
    # started with it, has then run longer than it took, plus onnxruntime's ~10 s telemetry delay.
    start = time.monotonic()
    while time.monotonic() - start < POSITIVE_CONTROL_MAX_S:
        if any(b"api.gradio.app" in a for a in traps["gradio"].attempts):
            break
        time.sleep(0.5)
    time.sleep(TELEMETRY_WAIT_S)
    for name, proc in procs.items():
        proc.kill()
        proc.wait(timeout=30)
        traps[name].sock.close()
    caught = {name: [a.split(b"\r\n")[0] for a in trap.attempts] for name, trap in traps.items()}
    assert any(b"api.gradio.app" in a for a in caught["gradio"]), caught  # the trap sees what gets out
    # A bare onnxruntime import sent OneDS telemetry (events.data.microsoft.com) in most runs but not all (it did not
    # within 120 s in a CI rehearsal), so it is observed here, not asserted; sketchlab must stay silent regardless.
    assert caught["sketchlab"] == [], caught

"""Debian's Chromium for headless measurements (Playwright cannot download a browser here; `make browser` installs it)."""

from __future__ import annotations

import shutil

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [  # STACK-NOTES: headless, no sandbox (containers), nothing that calls outside hosts
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

"""Real-browser fixtures: the dashboard served by `creditscope serve` on a free port, Debian chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    # Playwright cannot download its own browser here; Debian's chromium is installed by `make browser`.
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: run `make browser` (apt-get install chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"],
    }  # fmt: skip


@pytest.fixture(scope="session")
def served_app(sample_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`creditscope serve` on a copy of the sample database; yields the base URL."""
    db = tmp_path_factory.mktemp("served") / "demo.duckdb"
    shutil.copy(sample_db_path, db)
    port = _free_port()
    log = open(db.with_suffix(".log"), "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "serve", "--db", str(db), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"dashboard did not start; log: {db.with_suffix('.log').read_text()[-2000:]}")
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    log.close()

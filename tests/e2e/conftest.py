"""Real-browser fixtures: the dashboard served by `creditscope serve` on a free port, Debian chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.ingest.runner import ingest
from core.store.database import Store

from .showcase import hostile_records, showcase_records, write_jsonl

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


class RequestCounter:
    """A local HTTP server that records every request: a log's image link points here, nothing may arrive."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        counter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                counter.paths.append(self.path)
                self.send_response(404)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="session")
def request_counter() -> Iterator[RequestCounter]:
    counter = RequestCounter()
    yield counter
    counter.server.shutdown()


@pytest.fixture(scope="session")
def served_db(sample_db_path: Path, tmp_path_factory: pytest.TempPathFactory, request_counter: RequestCounter) -> Path:
    """A copy of the sample database plus the showcase group (64 rollouts × 40 steps) and the hostile log."""
    folder = tmp_path_factory.mktemp("served")
    db = folder / "demo.duckdb"
    shutil.copy(sample_db_path, db)
    files = [
        write_jsonl(folder / "showcase.jsonl", showcase_records()),
        write_jsonl(folder / "hostile.jsonl", hostile_records(request_counter.port)),
    ]
    store = Store.open(db)
    try:
        ingest(store, [str(f) for f in files])
    finally:
        store.close()
    return db


@pytest.fixture(scope="session")
def served_app(served_db: Path) -> Iterator[str]:
    """`creditscope serve` on the served database; yields the base URL."""
    db = served_db
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

"""Page readiness of two versions of the dashboard side by side, in one run (Playwright + Debian chromium).

Run: ``.venv/bin/python bench/pages_versions.py --base CHECKOUT --base-db BASE.duckdb --db CURRENT.duckdb``

``CHECKOUT`` is another checkout of this repository (e.g. ``git worktree add /tmp/base 6de6a4a``); its server
runs from that folder with that folder first on ``PYTHONPATH``, so its own ``core``, ``dashboard`` and
``.streamlit/config.toml`` are used, with this interpreter's packages. Each version serves its own demo database
(``creditscope ingest sample_data/runs sample_data/real`` run by that version: a newer schema is not readable by
an older version). The repeats alternate base, current, base, current, ... so a machine busy with other work
slows both alike; every repeat starts a fresh server (cold caches) on a fresh copy of its database and opens
every page of ``bench/pages.py`` once. The table gives each page's median seconds to ready and the ratio
current / base.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pages import CHROMIUM, free_port, memory_kib, pages, pick_target, visit_all  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def serve_from(checkout: Path, db: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    """``creditscope serve`` of the code in ``checkout`` on ``db``; waits for the health check."""
    port = free_port()
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(checkout)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "serve", "--db", str(db), "--port", str(port)],
        cwd=checkout,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.3)
        if proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit(f"{checkout}: dashboard did not start; log: {log_path.read_text()[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="checkout of the base version")
    parser.add_argument("--base-db", type=Path, required=True, help="demo database written by the base version")
    parser.add_argument("--db", type=Path, required=True, help="demo database written by this version")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--search", default="garden")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    target = pick_target(args.db, args.search)  # the same run, group and trajectory for both versions
    print(f"run {target.run!r}, iteration {target.iteration}, group {target.group!r}, traj {target.traj!r}")
    versions = {"base": (args.base.resolve(), args.base_db), "current": (ROOT, args.db)}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
    rss: dict[str, list[int]] = {name: [] for name in versions}
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as scratch, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        for i in range(args.repeats):
            for name, (checkout, db) in versions.items():
                copy = Path(scratch) / f"{name}-{i}.duckdb"
                shutil.copy(db, copy)
                proc, url = serve_from(checkout, copy, copy.with_suffix(".log"))
                try:
                    runs[name].append(visit_all(browser, url, target))
                    rss[name].append(memory_kib(proc.pid)["VmHWM"])
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
                line = "  ".join(f"{k} {v:.2f}s" for k, v in runs[name][-1].items())
                print(f"  repeat {i + 1} {name}: {line}")
        browser.close()

    names = [name for name, *_ in pages(target)]
    median = {v: {n: statistics.median(r[n] for r in runs[v]) for n in names} for v in versions}
    print(f"\nmedian seconds to ready over {args.repeats} interleaved repeats\n| page | base | current | ratio |")
    print("|---|---|---|---|")
    for n in names:
        base, current = median["base"][n], median["current"][n]
        print(f"| {n} | {base:.2f} | {current:.2f} | {current / base:.2f}x |")
    for v in versions:
        print(f"{v}: server peak RSS {max(rss[v]) / 1024:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps({"target": vars(target), "runs": runs, "peak_rss_kib": rss}, indent=1))


if __name__ == "__main__":
    main()

"""Time every dashboard page to readiness in a real browser (Playwright + Debian chromium).

Run: ``.venv/bin/python bench/pages.py --db SMALL.duckdb [--db LARGE.duckdb ...] [--repeats 3]``

For each database, ``creditscope serve`` is started afresh for every repeat (so Streamlit's query
caches start cold, as for a user opening the database), and each page is opened by URL in a new
browser tab: Runs, Groups (all iterations), Groups with a search, Group, Trajectory, Compare, Rescore
and Ingest. A page is *ready* when its title is shown, the script has stopped running and no
placeholder skeleton or spinner is left; the time runs from the navigation to that point. After the
last page the server's resident memory (VmRSS) and its peak (VmHWM) are read from /proc.

With several ``--db`` the table gives each page's median time per database and its ratio to the
first one (the issue's goal: at 10M steps within 1.3x of 0.5M). ``--json FILE`` keeps the raw timings.
The run, iteration, group and trajectory opened are picked from the database (the first run, its
middle iteration, that iteration's first group and that group's first trajectory) unless given.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
READY_TIMEOUT_MS = 600_000


@dataclass(frozen=True)
class Target:
    """What the pages are opened on."""

    run: str
    iteration: int
    group: str
    traj: str
    search: str


def pick_target(db: Path, search: str) -> Target:
    """The first run, its middle iteration, that iteration's first group and the group's first trajectory."""
    from core.store import queries
    from core.store.database import Store

    store = Store.open(db, read_only=True)
    try:
        run = str(queries.runs_summary(store)["run_id"].iloc[0])
        its = queries.iterations(store, run)
        iteration = its[len(its) // 2]
        group = str(queries.groups(store, run, iteration)["group_id"].iloc[0])
        traj = str(queries.trajectories(store, run_id=run, iteration=iteration, group_id=group)["traj_id"].iloc[0])
    finally:
        store.close()
    return Target(run, iteration, group, traj, search)


def pages(t: Target) -> list[tuple[str, str, str, str | None]]:
    """(name, URL path with query, heading text, text to search for once loaded) of every page, in order."""
    q = urllib.parse.urlencode
    return [
        ("Runs", "/", "Runs", None),
        ("Groups (all iterations)", "/groups?" + q({"run": t.run}), "Groups", None),
        ("Groups + search", "/groups?" + q({"run": t.run}), "Groups", t.search),
        ("Group", "/group?" + q({"run": t.run, "iteration": t.iteration, "group": t.group}), "Group", None),
        ("Trajectory", "/trajectory?" + q({"run": t.run, "traj": t.traj}), "Trajectory", None),
        ("Compare", "/compare?" + q({"run": t.run}), "Compare schemes", None),
        ("Rescore", "/rescore?" + q({"run": t.run}), "Rescore with a PRM", None),
        ("Ingest", "/ingest", "Ingest", None),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(db: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    """Start ``creditscope serve`` and wait until it answers its health check."""
    port = free_port()
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "serve", "--db", str(db), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.3)
        if proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit(f"dashboard did not start; log: {log_path.read_text()[-2000:]}")


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def wait_ready(page, heading: str) -> None:  # noqa: ANN001 - playwright's Page
    """Title shown, script finished, no skeleton or spinner left."""
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=READY_TIMEOUT_MS)
    page.wait_for_selector(
        "[data-testid='stApp'][data-test-script-state='notRunning']", timeout=READY_TIMEOUT_MS, state="attached"
    )
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=READY_TIMEOUT_MS)
    expect(page.get_by_test_id("stSpinner")).to_have_count(0, timeout=READY_TIMEOUT_MS)


def visit_all(browser, url: str, target: Target) -> dict[str, float]:  # noqa: ANN001 - playwright's Browser
    """Open every page once in a fresh tab; seconds to readiness per page."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    times = {}
    for name, path, heading, search in pages(target):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        started = time.perf_counter()
        page.goto(url + path)
        wait_ready(page, heading)
        if search is not None:  # timed from typing the text to the filtered table
            box = page.get_by_label("Search prompts and actions")
            started = time.perf_counter()
            box.fill(search)
            box.press("Enter")
            with contextlib.suppress(PlaywrightTimeout):  # a fast rerun may finish before we look
                page.wait_for_selector("[data-testid='stApp'][data-test-script-state='running']", timeout=2000)
            wait_ready(page, heading)
        times[name] = time.perf_counter() - started
        exceptions = page.get_by_test_id("stException").count()
        if exceptions or errors:
            print(f"  ! {name}: {exceptions} exception box(es) on the page, browser errors: {errors[:2]}")
        context.close()
    return times


def bench_db(db: Path, repeats: int, search: str, browser) -> dict:  # noqa: ANN001
    target = pick_target(db, search)
    print(f"{db}: run {target.run!r}, iteration {target.iteration}, group {target.group!r}, traj {target.traj!r}")
    runs: list[dict[str, float]] = []
    memory: list[dict[str, int]] = []
    for i in range(repeats):
        proc, url = serve(db, db.with_suffix(f".serve{i}.log"))
        try:
            runs.append(visit_all(browser, url, target))
            memory.append(memory_kib(proc.pid))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        line = "  ".join(f"{k} {v:.2f}s" for k, v in runs[-1].items())
        print(f"  repeat {i + 1}: {line}  | server RSS {memory[-1]['VmRSS'] / 1024:.0f} MiB")
    return {"db": str(db), "target": vars(target), "runs": runs, "memory_kib": memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, action="append", required=True, help="database(s); the first is the base")
    parser.add_argument("--repeats", type=int, default=3, help="server starts per database (cold caches each time)")
    parser.add_argument("--search", default="garden", help="text typed into the Groups search")
    parser.add_argument("--json", type=Path, help="write raw timings here")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        for db in args.db:
            results.append(bench_db(db, args.repeats, args.search, browser))
        browser.close()

    names = [name for name, *_ in pages(Target("", 0, "", "", ""))]
    medians = [{n: statistics.median(r[n] for r in res["runs"]) for n in names} for res in results]
    header = "| page | " + " | ".join(Path(r["db"]).name for r in results)
    header += "".join(f" | ratio {Path(r['db']).name}" for r in results[1:]) + " |"
    print("\nmedian seconds to ready\n" + header)
    print("|---" * (1 + len(results) + len(results[1:])) + "|")
    for n in names:
        cells = [f"{m[n]:.2f}" for m in medians] + [f"{m[n] / medians[0][n]:.2f}x" for m in medians[1:]]
        print(f"| {n} | " + " | ".join(cells) + " |")
    for res in results:
        peak = max(m["VmHWM"] for m in res["memory_kib"]) / 1024
        last = max(m["VmRSS"] for m in res["memory_kib"]) / 1024
        print(
            f"{Path(res['db']).name}: server RSS after all pages {last:.0f} MiB (max over repeats), peak {peak:.0f} MiB"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

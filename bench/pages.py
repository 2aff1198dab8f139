"""Time every dashboard page to readiness in a real browser (Playwright + Debian chromium).

Run: ``.venv/bin/python bench/pages.py --db SMALL.duckdb [--db LARGE.duckdb ...] [--repeats 3]``
or   ``.venv/bin/python bench/pages.py --steps 5e5 --steps 1e7 [--dir DIR]`` (databases from scale_data.py)

For each database, ``creditscope serve`` is started afresh for every repeat (so Streamlit's query
caches start cold, as for a user opening the database; databases alternate from repeat to repeat, so
machine noise hits each alike), and each page is opened by URL in a new
browser tab: Runs, Groups (all iterations), Groups with each search text, Group, Trajectory, Compare, Rescore
and Ingest. With ``--whole-run`` the Compare page is also switched to
"whole run" once per database (every scheme streamed over every step) and the server's memory read
after it. A page is *ready* when its title is shown, the script has stopped running and no
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
    searches: tuple[str, ...]


def pick_target(db: Path, searches: tuple[str, ...]) -> Target:
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
    return Target(run, iteration, group, traj, searches)


def pages(t: Target) -> list[tuple[str, str, str, str | None]]:
    """(name, URL path with query, heading text, text to search for once loaded) of every page, in order."""
    q = urllib.parse.urlencode
    return [
        ("Runs", "/", "Runs", None),
        ("Groups (all iterations)", "/groups?" + q({"run": t.run}), "Groups", None),
        *((f"Groups + search {text!r}", "/groups?" + q({"run": t.run}), "Groups", text) for text in t.searches),
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


READY_JS = """heading => {
    const shown = [...document.querySelectorAll("h1, h2, h3")].some(
        h => h.textContent.trim() === heading && h.checkVisibility());
    return shown && document.querySelector("[data-testid='stApp'][data-test-script-state='notRunning']") !== null
        && document.querySelector("[data-testid='stSkeleton'], [data-testid='stSpinner']") === null;
}"""
"""Ready: the title shown, the script finished, no skeleton or spinner left. Checked on every animation frame:
Playwright's ``expect`` retries at growing intervals (up to a second apart), which would round a page's time
up to its next retry."""


GROUPS_CAPTION_JS = """() => [...document.querySelectorAll("[data-testid='stCaptionContainer']")]
    .map(e => e.textContent).find(t => t.includes(" groups · "))"""
"""The Groups page's count line ("N groups · rows ..."), which a search changes."""


def wait_ready(page, heading: str) -> None:  # noqa: ANN001 - playwright's Page
    """Title shown, script finished, no skeleton or spinner left (checked every frame, then once more by role)."""
    from playwright.sync_api import expect

    page.wait_for_function(READY_JS, arg=heading, polling="raf", timeout=READY_TIMEOUT_MS)
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=1000)


def whole_run_compare(browser, url: str, target: Target) -> float:  # noqa: ANN001 - playwright's Browser
    """Compare, then "whole run" chosen in its Scope box: seconds until ranking and agreement are shown."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url + "/compare?" + urllib.parse.urlencode({"run": target.run}))
    wait_ready(page, "Compare schemes")
    started = time.perf_counter()
    page.locator(".st-key-cmp_scope").get_by_role("combobox").click()
    page.get_by_role("option", name="whole run").click()
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_selector("[data-testid='stApp'][data-test-script-state='running']", timeout=5000)
    expect(page.get_by_text("Ranking and agreement cover all")).to_be_visible(timeout=READY_TIMEOUT_MS)
    wait_ready(page, "Compare schemes")
    seconds = time.perf_counter() - started
    context.close()
    return seconds


def visit_all(browser, url: str, target: Target) -> dict[str, float]:  # noqa: ANN001 - playwright's Browser
    """Open every page once in a fresh tab; seconds to readiness per page."""
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
            before = page.evaluate(GROUPS_CAPTION_JS)
            started = time.perf_counter()
            box.fill(search)
            box.press("Enter")
            # Ready again and the count line changed: the rerun with the search has finished, however fast.
            page.wait_for_function(
                f"before => ({GROUPS_CAPTION_JS})() !== before && ({READY_JS})({json.dumps(heading)})",
                arg=before, polling="raf", timeout=READY_TIMEOUT_MS,
            )  # fmt: skip
        times[name] = time.perf_counter() - started
        exceptions = page.get_by_test_id("stException").count()
        if exceptions or errors:
            print(f"  ! {name}: {exceptions} exception box(es) on the page, browser errors: {errors[:2]}")
        context.close()
    return times


def one_repeat(db: Path, target: Target, i: int, browser, result: dict, whole_run: bool) -> None:  # noqa: ANN001
    """Start a server on ``db``, visit every page, read its memory (and time the whole-run Compare once)."""
    proc, url = serve(db, db.with_suffix(f".serve{i}.log"))
    try:
        result["runs"].append(visit_all(browser, url, target))
        result["memory_kib"].append(memory_kib(proc.pid))
        if whole_run and i == 0:  # once: minutes on a large run; the server's peak memory is the point
            seconds = whole_run_compare(browser, url, target)
            extra = memory_kib(proc.pid)
            print(f"  {db.name} Compare (whole run): {seconds:.1f}s, server RSS {extra['VmRSS'] / 1024:.0f} MiB, "
                  f"peak {extra['VmHWM'] / 1024:.0f} MiB")  # fmt: skip
            result["whole_run"] = {"seconds": seconds, **extra}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    line = "  ".join(f"{k} {v:.2f}s" for k, v in result["runs"][-1].items())
    print(f"  {db.name} repeat {i + 1}: {line}  | server RSS {result['memory_kib'][-1]['VmRSS'] / 1024:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, action="append", default=[], help="database(s); the first is the base")
    parser.add_argument("--steps", type=float, action="append", default=[], help="or: scale_data.py databases")
    parser.add_argument("--dir", type=Path, default=None, help="where scale_data.py caches its databases")
    parser.add_argument("--repeats", type=int, default=3, help="server starts per database (cold caches each time)")
    parser.add_argument(
        "--search", action="append", default=[], help="text typed into the Groups search, one page each "
        "(default: 'garden' and '17 * 3', decided by the term index alone, and 'start with 16', whose words are common "
        "and whose two separator runs make it read text)"
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="write raw timings here")
    parser.add_argument("--whole-run", action="store_true", help="also time Compare over the whole run (once per db)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright
    from scale_data import DEFAULT_DIR, build  # bench/ is the script's folder

    for steps in dict.fromkeys(int(s) for s in args.steps):
        args.db.append(build(steps, args.dir or DEFAULT_DIR, quiet=True))
    if not args.db:
        parser.error("give --db or --steps")

    results = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        targets = {}
        for db in args.db:
            targets[db] = pick_target(db, tuple(args.search or ["garden", "17 * 3", "start with 16"]))
            t = targets[db]
            print(f"{db}: run {t.run!r}, iteration {t.iteration}, group {t.group!r}, traj {t.traj!r}")
            results.append({"db": str(db), "target": vars(t), "runs": [], "memory_kib": [], "whole_run": {}})
        for i in range(args.repeats):  # databases alternate, so machine noise hits each alike
            for db, result in zip(args.db, results, strict=True):
                one_repeat(db, targets[db], i, browser, result, args.whole_run)
        browser.close()

    names = [name for name, *_ in pages(next(iter(targets.values())))]
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

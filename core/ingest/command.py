"""``creditscope ingest``: the command's output, Ctrl-C and the database file around a load (wired by core/cli.py).

Heavy modules (DuckDB, the adapters, tqdm) are imported inside the functions, so ``creditscope --help``
stays fast.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import CreditscopeError
from core.interrupts import INTERRUPTED, caused_by_ctrl_c, noting_ctrl_c

if TYPE_CHECKING:
    from core.ingest.base import AdapterOptions
    from core.ingest.runner import SourceResult
    from core.store.database import Store

MIN_INTERVAL = 0.1
"""Shortest ``--follow`` interval accepted: shorter would poll (and rehash files) almost without pause."""


def cmd_ingest(args: argparse.Namespace) -> int:
    """Load files/folders/globs; with ``--follow`` keep loading new and grown files."""
    from core.ingest.adapter_args import adapter_extra
    from core.ingest.base import AdapterOptions
    from core.store.database import remove_database

    if args.follow and not args.interval >= MIN_INTERVAL:  # `not >=` also refuses NaN
        raise CreditscopeError(f"--interval must be at least {MIN_INTERVAL} seconds, got {args.interval:g}")
    options = AdapterOptions(splitter=args.splitter, split=args.split, extra=adapter_extra(args))
    new_file = args.db != ":memory:" and not Path(args.db).exists()
    store = _open_ingest_store(args.db, args.follow)
    landed = False
    with noting_ctrl_c() as ctrl_c:
        try:
            if args.follow:
                return _follow(store, args, options)
            status = _ingest_once(store, args, options)
            landed = True
            return status
        except KeyboardInterrupt:
            if args.follow:
                return 0  # Ctrl-C is how following ends
            return _interrupted()
        except Exception as exc:
            # DuckDB turns Ctrl-C during a statement into its own error ("Query interrupted"); the flag says
            # it was the user, whatever the exception.
            if (ctrl_c[0] or caused_by_ctrl_c(exc)) and not args.follow:
                return _interrupted()
            if "no space left on device" in str(exc).lower():
                raise CreditscopeError(_disk_full(args)) from exc
            raise
        finally:
            store.close()
            if new_file and not landed and not args.follow:
                # A failed first ingest leaves no database behind (README, "All or nothing").
                remove_database(args.db)


def _disk_full(args: argparse.Namespace) -> str:
    """The one line for a load the disk could not hold, with the space it needs (estimated) and the space free."""
    import shutil

    from core.ingest import registry

    size = 0
    for raw in args.paths:
        try:
            size += sum(path.stat().st_size for path in registry.expand(raw))
        except (CreditscopeError, OSError):
            continue
    free = shutil.disk_usage(Path(args.db).resolve().parent).free
    return (
        f"not enough disk space for {args.db}: this load needs about {size / 2**20:.0f} MiB more (the size of the "
        f"files read; the database usually takes less), {free / 2**20:.0f} MiB are free. Nothing was loaded and "
        "the database is as it was; free some space or give --db a path on another disk"
    )


def _interrupted() -> int:
    # The command's transaction rolled back, so a script must not read this as a successful load.
    print("creditscope: interrupted; none of this command's files were loaded", file=sys.stderr)
    return INTERRUPTED


def _open_ingest_store(db: str, follow: bool) -> Store:
    from core.errors import DatabaseLocked
    from core.store.database import Store

    try:
        return Store.open(db)
    except DatabaseLocked as exc:
        if not follow:
            raise
        # Two processes cannot share the file, so the only way to follow while the dashboard runs is
        # to let the dashboard do it through its own connection.
        raise DatabaseLocked(
            f"{exc} To follow logs while the dashboard is running, open its Ingest page, enter the path under "
            "'Follow a folder or file' and switch on the Follow toggle."
        ) from exc


def _ingest_once(store: Store, args: argparse.Namespace, options: AdapterOptions) -> int:
    from tqdm import tqdm

    from core.ingest.runner import ingest

    started = time.perf_counter()
    with tqdm(desc="ingest", unit="file", disable=args.quiet or None, leave=False) as bar:

        def on_progress(what: str, phase: str, fraction: float) -> None:
            bar.set_postfix_str(f"{what}: {phase} {fraction:.0%}")  # a big file is one statement: show its share

        report = ingest(
            store,
            args.paths,
            fmt=args.format,
            run=args.run,
            options=options,
            on_source=lambda r: bar.update(1),
            on_progress=None if bar.disable else on_progress,
        )
    elapsed = time.perf_counter() - started
    for note in report.notes:
        print(f"note: {note}")
    changed = [s for s in report.sources if s.status not in ("unchanged", "waiting")]
    for s in changed:
        print(describe_source(s))
        for note in s.skipped:
            print(f"          skipped: {note}")
    print(
        f"{len(changed)} file(s) loaded, {len(report.sources) - len(changed)} unchanged: {report.n_trajectories} "
        f"trajectories, {report.n_steps} steps in {elapsed:.2f}s -> {args.db}"
    )
    return 0


def _follow(store: Store, args: argparse.Namespace, options: AdapterOptions) -> int:
    """Poll until Ctrl-C; print what each poll loaded, and each note or error once until it changes."""
    from core.ingest.follow import Follower, PollReport, poll_once

    shown_notes: set[str] = set()
    shown_errors: dict[str, str] = {}

    def report(poll: PollReport) -> None:
        for note in [*poll.waiting, *poll.notes]:
            if note not in shown_notes:
                shown_notes.add(note)
                print(f"note: {note}")
        for where, message in poll.errors.items():
            if shown_errors.get(where) != message:  # a bad line stays bad until fixed: say so once, not every poll
                print(f"error (retried every poll): {message}", file=sys.stderr)
        shown_errors.clear()
        shown_errors.update(poll.errors)  # a fixed file drops out, so a later failure there is news again
        for source in poll.landed:
            print(describe_source(source))
            for note in source.skipped:
                print(f"          waiting: {note}")
        if poll.landed:
            stamp = time.strftime("%H:%M:%S", time.localtime(poll.started_at))
            print(f"[{stamp}] +{poll.n_trajectories} trajectories, +{poll.n_steps} steps in {poll.seconds:.2f}s")

    print(f"following {', '.join(args.paths)} every {args.interval:g}s into {args.db} (Ctrl-C stops)")
    follower = Follower(
        lambda: poll_once(store, args.paths, fmt=args.format, run=args.run, options=options),
        interval=args.interval,
        on_poll=report,
    )
    follower.run()
    return 0


def describe_source(s: SourceResult) -> str:
    """One line on what happened to a file."""
    sign = {"appended": "+", "dropped": "-"}.get(s.status, "")
    lines = f" (lines {s.lines[0]}-{s.lines[1]})" if s.lines and s.status == "appended" else ""
    return f"{s.status:9} {s.path} [{s.format}] {sign}{s.n_trajectories} trajectories, {sign}{s.n_steps} steps{lines}"

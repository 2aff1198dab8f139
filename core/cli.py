"""The ``creditscope`` command line: ingest, runs, formats, synth, advantages, serve (+ PRM commands)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from core.errors import CreditscopeError
from core.ingest.adapter_args import add_adapter_arguments
from core.interrupts import INTERRUPTED

DEFAULT_DB = os.environ.get("CREDITSCOPE_DB", "creditscope.duckdb")


def _open_store(db: str, read_only: bool = False):  # noqa: ANN202 - keeps duckdb out of `--help`
    from core.store.database import Store

    return Store.open(db, read_only=read_only)


def cmd_ingest(args: argparse.Namespace) -> int:
    """Load files/folders/globs; with ``--follow`` keep loading new and grown files (see core.ingest.command)."""
    from core.ingest.command import cmd_ingest as run

    return run(args)


def cmd_runs(args: argparse.Namespace) -> int:
    """Print the runs table with counts."""
    from core.store.queries import runs_summary

    store = _open_store(args.db, read_only=True)
    try:
        frame = runs_summary(store)
    finally:
        store.close()
    if frame.empty:
        print(f"no runs in {args.db}")
        return 0
    cols = ["run_id", "source_format", "iterations", "groups", "trajectories", "steps", "mean_outcome"]
    print(frame[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def cmd_formats(args: argparse.Namespace) -> int:
    """List the format adapters in detection order."""
    from core.ingest import registry

    for module in registry.adapters():
        print(f"{module.NAME:18} {module.CHECKED_AGAINST}")
    for problem in registry.broken_adapters():
        print(f"(unavailable) {problem}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    """Write sample runs as native JSONL (or the flat step table as Parquet with ``--parquet``)."""
    from core.synth import ENVS, generate_steps, write_jsonl

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    envs = args.env or list(ENVS)
    if args.run and len(envs) != 1:
        raise CreditscopeError("--run names one run: give exactly one --env with it")
    sizes = {"prompts": args.prompts, "iterations": args.iterations, "group_size": args.group_size, "seed": args.seed}
    sizes["pool"] = args.prompt_pool
    for env in envs:
        name = args.run or env
        if args.parquet:
            frame = generate_steps(env, **sizes, with_tokens=True).drop(columns=["run_id"])  # the file names the run
            frame.to_parquet(out / f"{name}.parquet", index=False)
            print(f"{out / f'{name}.parquet'}: {len(frame)} steps")
        else:
            n = write_jsonl(out / f"{name}.jsonl", env, run=name, **sizes)
            print(f"{out / f'{name}.jsonl'}: {n} steps")
    return 0


def cmd_advantages(args: argparse.Namespace) -> int:
    """Compute one scheme's per-step advantages for a run and stream them to Parquet or CSV."""
    from tqdm import tqdm

    from core.export import check_output, export_advantages

    check_output(args.out)  # before opening anything: a typo in the path costs nothing
    params = parse_params(args.scheme, args.param or [])
    store = _open_store(args.db, read_only=True)
    bar = tqdm(total=0, unit="step", unit_scale=True, desc="advantages", disable=None, leave=False)
    try:

        def advance(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        report = export_advantages(
            store, args.run, args.scheme, params, args.out, filter_prm_below=args.filter_prm_below, progress=advance
        )
    finally:
        bar.close()
        store.close()
    for line in report.filter_lines:
        print(line)
    if report.in_memory:
        print(f"note: {report.in_memory}, so the whole run was computed in memory")
    print(f"{args.out}: {report.n_steps} steps, scheme {args.scheme} {params}")
    return 0


def parse_params(scheme: str, pairs: list[str]) -> dict[str, object]:
    """Turn ``k=v`` strings into typed scheme parameters using the scheme's declared types."""
    from core.credit import get_scheme

    spec = get_scheme(scheme)
    types = {p.name: p.type for p in spec.params}
    params: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in types:
            known = ", ".join(types) or "none"
            raise CreditscopeError(f"--param {pair!r}: expected K=V with K one of {known} for scheme {scheme}")
        kind = types[key]
        if kind is bool:
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise CreditscopeError(f"--param {pair!r}: expected true or false")
            params[key] = raw.lower() in ("true", "1", "yes")
        else:
            try:
                params[key] = kind(raw)
            except ValueError as exc:
                raise CreditscopeError(f"--param {pair!r}: expected {kind.__name__}") from exc
    return params


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the dashboard on ``--db`` (replaces this process with the Streamlit server)."""
    from core.serving import check_bind

    access = check_bind(args.address, args.allow_remote, args.data_root or [])
    app = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
    env = {**os.environ, "CREDITSCOPE_DB": str(Path(args.db).resolve()), **access.to_env()}
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.port",
        str(args.port),
        "--server.address",
        args.address,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    # Become the Streamlit server (no child process), so stopping this command stops the server.
    os.execve(sys.executable, cmd, env)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="creditscope", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="load rollout logs into a database")
    p.add_argument("paths", nargs="+", help="files, folders or globs")
    p.add_argument("--db", default=DEFAULT_DB)
    p.add_argument("--run", help="put everything into this run (default: names from the sources)")
    p.add_argument("--format", default="auto", help="auto (default) or a name from `creditscope formats`")
    p.add_argument("--splitter", default="auto", help="step splitter for single-response logs")
    p.add_argument("--split", choices=["train", "val"], help="force the split of every trajectory")
    p.add_argument(
        "--follow",
        action="store_true",
        help="keep loading new files and new lines of grown files (while the dashboard runs, use its Follow toggle)",
    )
    p.add_argument("--interval", type=float, default=2.0, help="seconds between --follow polls")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_adapter_arguments(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("runs", help="list runs with counts")
    p.add_argument("--db", default=DEFAULT_DB)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("formats", help="list the log formats creditscope reads")
    p.set_defaults(func=cmd_formats)

    p = sub.add_parser("synth", help="write the sample environments' runs as native files")
    p.add_argument("--out", required=True)
    p.add_argument("--env", action="append", choices=["arithmetic", "tree", "agent"])
    p.add_argument("--prompts", type=int, default=6)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run", help="run name (and file name) for a single --env")
    p.add_argument(
        "--prompt-pool",
        type=int,
        default=0,
        metavar="N",
        help="draw each iteration's prompts from a fixed pool of N problems, shared by every seed (a training set)",
    )
    p.add_argument("--parquet", action="store_true", help="write the flat step table as Parquet instead of JSONL")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("advantages", help="export one scheme's per-step advantages")
    p.add_argument("--db", default=DEFAULT_DB)
    p.add_argument("--run", required=True)
    p.add_argument("--scheme", required=True)
    p.add_argument("--param", action="append", metavar="K=V", help="scheme parameter, repeatable")
    p.add_argument("--out", required=True, help="FILE.parquet or FILE.csv")
    p.add_argument(
        "--filter-prm-below",
        type=float,
        metavar="TAU",
        help="export only steps whose PRM score is not below TAU (credit is computed on whole trajectories first; "
        "steps without a score are kept)",
    )
    p.set_defaults(func=cmd_advantages)

    p = sub.add_parser("serve", help="start the dashboard")
    p.add_argument("--db", default=DEFAULT_DB)
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1", help="any address but loopback needs --allow-remote")
    p.add_argument("--allow-remote", action="store_true", help="serve to other machines (see --data-root)")
    p.add_argument(
        "--data-root",
        action="append",
        metavar="DIR",
        help="the Ingest page's path boxes and the Rescore page's model box read only under these folders "
        "(repeatable); with --allow-remote and no --data-root they read nothing (Rescore: the demo PRM only)",
    )
    p.set_defaults(func=cmd_serve)

    # PRM and diff commands live with their code; a missing optional piece must not break the others.
    for module in ("core.prm.cli", "core.diff.cli"):
        try:
            importlib.import_module(module).register(sub)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``creditscope`` script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CreditscopeError as exc:
        print(f"creditscope: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # commands that report what a Ctrl-C kept do so themselves and return 130
        print("creditscope: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as exc:
        # DuckDB reads database pages lazily, so a damaged file may show only in a later query.
        text = str(exc).lower()
        about_the_file = type(exc).__name__ == "IOException" or "corrupt" in text or "no space left" in text
        if "duckdb" not in type(exc).__module__ or not about_the_file or not getattr(args, "db", None):
            raise
        from core.store.database import database_problem

        print(f"creditscope: error: {database_problem(args.db, exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""``creditscope diff``: two runs (or two iteration ranges) prompt by prompt (registered by ``core/cli.py``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from core.errors import CreditscopeError

OUT_SUFFIXES = (".parquet", ".csv")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``diff`` subcommand to the main parser's subparsers."""
    p = subparsers.add_parser(
        "diff",
        help="compare two runs, or two iteration ranges of one run, prompt by prompt",
        description="Pairs the groups of run A and run B by normalised prompt (chat wrapping, system prompts and "
        "whitespace ignored), prints how they pair and what changed, and writes the per-prompt table.",
    )
    p.add_argument("--db", default=os.environ.get("CREDITSCOPE_DB", "creditscope.duckdb"))
    p.add_argument("a", metavar="A", help="run A")
    p.add_argument("b", metavar="B", help="run B (may be A itself, with --iterations)")
    p.add_argument(
        "--iterations",
        nargs=2,
        metavar=("A_RANGE", "B_RANGE"),
        help="iterations of A and of B, FIRST:LAST (inclusive; either end may be left out, ':' is all)",
    )
    p.add_argument("--scheme", default="grpo", help="credit scheme for the credit statistics (default grpo)")
    p.add_argument("--out", help="write the per-prompt table to FILE.parquet or FILE.csv")
    p.set_defaults(func=cmd_diff)


def cmd_diff(args: argparse.Namespace) -> int:
    """Print the pairing summary; write the per-prompt table with ``--out``."""
    from core.diff import Side, describe_side, parse_range, prompt_keys, sides
    from core.store import diff_queries as dq
    from core.store.database import Store

    if not Path(args.db).is_file():
        raise CreditscopeError(f"{args.db}: no such database file")
    if args.out and Path(args.out).suffix.lower() not in OUT_SUFFIXES:
        raise CreditscopeError(f"--out {args.out}: write .parquet or .csv")
    if args.out and not Path(args.out).resolve().parent.is_dir():
        raise CreditscopeError(f"--out {args.out}: folder {Path(args.out).resolve().parent} does not exist")
    a_range, b_range = (parse_range(r) for r in (args.iterations or ["", ""]))
    a, b = Side(args.a, *a_range), Side(args.b, *b_range)
    store = Store.open(args.db, read_only=True)
    try:
        both = sides(store, a, b, args.scheme)
        counts, stats = dq.summary(store, both)
        table, _ = dq.pairs(store, both, prompt_keys(store), limit=None)
    finally:
        store.close()
    print(f"A: {describe_side(a)}   B: {describe_side(b)}   credit: {args.scheme}")
    print(
        f"prompts: {counts['in_both']:,} in both, {counts['only_a']:,} only in A, {counts['only_b']:,} only in B; "
        f"solved in A but not in B: {counts['lost']:,}, in B but not in A: {counts['gained']:,}"
    )
    for x in "ab":
        if counts[f"unkeyed_{x}"]:
            print(f"note: {counts[f'unkeyed_{x}']:,} trajectories of {x.upper()} have no prompt and pair with nothing")
    print("over the prompts in both:")
    shown = stats.T.drop(index=["prompts"])
    shown["B - A"] = shown["B"] - shown["A"]
    print(shown.to_string(float_format=lambda v: f"{v:.4g}"))
    if args.out:
        if args.out.lower().endswith(".csv"):
            table.to_csv(args.out, index=False)
        else:
            table.to_parquet(args.out, index=False)
        print(f"{args.out}: {len(table):,} prompts")
    return 0

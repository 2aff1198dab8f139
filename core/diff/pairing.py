"""Two sides of a diff, their prompts paired by key, and the credit the statistics summarise.

The SQL lives in :mod:`core.store.diff_queries`; this module decides what it runs on: the sides
(checked, with one-line errors), the prompt keys (computed in Python once per distinct prompt text and
kept per store, so repeated queries only join on DuckDB's hash of the prompt), and the credit
(outcome-level schemes in SQL at any scale; any other scheme through the credit engine, up to
:data:`ENGINE_MAX_STEPS` steps per side).
"""

from __future__ import annotations

import re
import threading
import weakref
from collections import OrderedDict
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from core.credit import compute, get_scheme
from core.diff.prompts import key_and_text
from core.errors import CreditscopeError
from core.store import diff_queries as dq
from core.store.database import Store
from core.store.diff_queries import Credit, Sides

ENGINE_MAX_STEPS = 400_000
"""Steps per side up to which schemes beyond :data:`core.store.diff_queries.SQL_SCHEMES` run in the engine."""
GROUP_TABLES_KEPT = 6
"""Group tables kept per store (each is ~40 bytes per trajectory; a 5M-step run's is ~45 MB)."""
PREVIEW_CHARS = 200

_RANGE = re.compile(r"^\s*(-?\d+)?\s*(:)?\s*(-?\d+)?\s*$")


class Side(NamedTuple):
    """One side of a diff: a run, and the iterations ``lo..hi`` (inclusive; None leaves that end open)."""

    run: str
    lo: int | None = None
    hi: int | None = None


def parse_range(text: str | None) -> tuple[int | None, int | None]:
    """``"a:b"`` (inclusive), ``"a:"``, ``":b"``, ``"a"`` (one iteration) or empty/``":"`` (all) as ``(lo, hi)``.

    Raises:
        CreditscopeError: Anything else, or ``a > b``.
    """
    if text is None or not text.strip():
        return None, None
    match = _RANGE.match(text)
    if match is None or (match.group(1) is None and match.group(3) is None and not match.group(2)):
        raise CreditscopeError(f"iteration range {text!r}: expected FIRST:LAST (either may be left out), or one number")
    lo = int(match.group(1)) if match.group(1) is not None else None
    hi = int(match.group(3)) if match.group(3) is not None else None
    if not match.group(2):
        hi = lo
    if lo is not None and hi is not None and lo > hi:
        raise CreditscopeError(f"iteration range {text!r}: the first iteration comes after the last")
    return lo, hi


def format_range(lo: int | None, hi: int | None) -> str:
    """The inverse of :func:`parse_range` ("" for every iteration)."""
    if lo is None and hi is None:
        return ""
    return str(lo) if lo == hi else f"{'' if lo is None else lo}:{'' if hi is None else hi}"


def describe_side(side: Side) -> str:
    """``run`` or ``run [a:b]``."""
    span = format_range(side.lo, side.hi)
    return f"{side.run} [{span}]" if span else side.run


def check_side(store: Store, side: Side) -> None:
    """Refuse a side that names no trajectories, saying what the run does hold.

    Raises:
        CreditscopeError: An unknown run, or a range with no iteration of the run in it.
    """
    lo, hi = dq.iteration_span(store, side.run)
    if lo is None:
        runs = store.query_df("SELECT run_id FROM runs ORDER BY 1")["run_id"].tolist()
        raise CreditscopeError(f"run {side.run!r} not found (runs: {', '.join(runs[:10]) or 'none'})")
    if dq.range_size(store, side.run, side.lo, side.hi)[0] == 0:
        span = format_range(side.lo, side.hi)
        raise CreditscopeError(f"run {side.run!r} has no iteration in {span} (it holds {lo}:{hi})")


class _Cache:
    """What the diff keeps per store: prompt keys by DuckDB ``hash(prompt)``, and recent group tables."""

    def __init__(self) -> None:
        self.keys: dict[int, tuple[str, str] | None] = {}
        self.keyed: dict[str, tuple] = {}
        """Runs whose every prompt has a key, with the run version that was true then."""
        self.frame = _key_frame({})
        self.tables: OrderedDict[tuple, pa.Table] = OrderedDict()
        self.cuts: OrderedDict[tuple, tuple[pa.Table, tuple[pa.Table, int]]] = OrderedDict()
        self.lock = threading.Lock()


def _key_frame(keys: dict[int, tuple[str, str] | None]) -> pd.DataFrame:
    kept = [(ph, key, preview) for ph, value in keys.items() if value is not None for key, preview in [value]]
    return pd.DataFrame(
        {
            "ph": np.array([row[0] for row in kept], dtype=np.uint64),
            "prompt_key": pd.Series([row[1] for row in kept], dtype=object),
            "preview": pd.Series([row[2] for row in kept], dtype=object),
        }
    )


_CACHES: weakref.WeakKeyDictionary[Store, _Cache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def _cache(store: Store) -> _Cache:
    with _CACHES_LOCK:
        return _CACHES.setdefault(store, _Cache())


def prompt_keys(store: Store, *runs: str) -> pd.DataFrame:
    """``(ph, prompt_key, preview)`` for every keyed prompt of ``runs``: what the diff queries join on.

    Only prompts not seen before in this store are read and normalised. A key depends on the prompt's
    text alone, so a cached one stays right whatever is ingested later.
    """
    cache = _cache(store)
    with cache.lock:
        grew = False
        for run in runs:
            version = dq.run_version(store, run)
            if cache.keyed.get(run) == version:
                continue  # nothing was loaded into the run since its prompts were keyed
            hashes = dq.prompt_hashes(store, run)
            missing = [h for h in hashes.tolist() if h not in cache.keys]
            if missing:
                texts = dq.prompts_for_hashes(store, run, missing)
                for ph, text in zip(texts["ph"].tolist(), texts["prompt"].tolist(), strict=True):
                    key, normalised = key_and_text(text)
                    cache.keys[int(ph)] = None if key is None else (key, normalised[:PREVIEW_CHARS])
                grew = True
            cache.keyed[run] = version
        if grew:
            cache.frame = _key_frame(cache.keys)
        return cache.frame


def credit_for(store: Store, a: Side, b: Side, scheme: str | None, params: dict[str, object] | None = None) -> Credit:
    """The credit to summarise: ``scheme`` with ``params`` (validated); per-step values when the engine must run.

    Outcome-level schemes (:data:`core.store.diff_queries.SQL_SCHEMES`) are computed in SQL with the
    group tables; any other scheme runs in the credit engine on each side, up to :data:`ENGINE_MAX_STEPS`.

    Raises:
        CreditscopeError: A bad parameter, a side too large for the engine, or inputs the scheme lacks
            (the engine's message says how to get them).
    """
    if scheme is None:
        return Credit()
    resolved = get_scheme(scheme).resolve(dict(params or {}))
    if scheme in dq.SQL_SCHEMES:
        return Credit(scheme=scheme, params=resolved)
    for side in (a, b):
        n_steps = dq.range_size(store, side.run, side.lo, side.hi)[1]
        if n_steps > ENGINE_MAX_STEPS:
            raise CreditscopeError(
                f"{scheme} runs in the credit engine, which the diff allows up to {ENGINE_MAX_STEPS:,} steps per "
                f"side; {describe_side(side)} has {n_steps:,}: narrow its iteration range, or choose "
                f"{' / '.join(sorted(dq.SQL_SCHEMES))} (computed in DuckDB at any size)"
            )
    return Credit(params=resolved, steps=None)


def sides(store: Store, a: Side, b: Side, scheme: str | None = None, params: dict[str, object] | None = None) -> Sides:
    """The group tables of both sides under ``scheme`` (None: no credit), built once and kept while the runs stay.

    Raises:
        CreditscopeError: See :func:`check_side` and :func:`credit_for`.
    """
    check_side(store, a)
    check_side(store, b)
    credit = credit_for(store, a, b, scheme, params)
    keys = prompt_keys(store, a.run, b.run)
    tables = [_group_table(store, side, keys, scheme, credit) for side in (a, b)]
    cuts = [_cut(store, table, side) for table, side in zip(tables, (a, b), strict=True)]
    return Sides(tables[0], tables[1], (a.lo, a.hi), (b.lo, b.hi), cuts[0][0], cuts[1][0], (cuts[0][1], cuts[1][1]))


def _cut(store: Store, table: pa.Table, side: Side) -> tuple[pa.Table, int]:
    """A group table's prompt table and unkeyed trajectories within the side's range (kept with the table)."""
    cache = _cache(store)
    key = (id(table), side.lo, side.hi)
    with cache.lock:
        if key in cache.cuts and cache.cuts[key][0] is table:
            return cache.cuts[key][1]
    cut = (dq.prompt_table(store, table, side.lo, side.hi), dq.unkeyed_trajectories(store, table, side.lo, side.hi))
    with cache.lock:
        cache.cuts[key] = (table, cut)
        while len(cache.cuts) > 4 * GROUP_TABLES_KEPT:
            cache.cuts.popitem(last=False)
    return cut


def _group_table(store: Store, side: Side, keys: pd.DataFrame, scheme: str | None, credit: Credit) -> pa.Table:
    engine = scheme is not None and credit.scheme is None
    # A table covers the whole run (ranges are cut at query time), except engine credit, computed on the range.
    lo, hi = (side.lo, side.hi) if engine else (None, None)
    params = tuple(sorted((k, repr(v)) for k, v in credit.params.items()))
    key = (side.run, dq.run_version(store, side.run), len(keys), scheme, params, lo, hi)
    cache = _cache(store)
    with cache.lock:
        if key in cache.tables:
            cache.tables.move_to_end(key)
            return cache.tables[key]
    if engine:
        steps = dq.range_steps(store, side.run, lo, hi)
        values = pd.DataFrame({"traj_id": steps["traj_id"].to_numpy(), "adv": compute(steps, scheme, **credit.params)})
        credit = Credit(params=credit.params, steps=values)
    table = dq.group_table(store, side.run, keys, credit if scheme is not None else None, lo, hi)
    with cache.lock:
        cache.tables[key] = table
        while len(cache.tables) > GROUP_TABLES_KEPT:
            cache.tables.popitem(last=False)
    return table

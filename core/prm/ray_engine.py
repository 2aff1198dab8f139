"""Rescoring on a Ray cluster: the driver feeds uncached trajectories to scorer actors and caches what comes back.

Pipeline (Ray Data): the driver reads the trajectories in scope from DuckDB a page at a time, hashes
their steps and keeps only trajectories with an uncached step; each such page goes to the object
store as an Arrow table. ``map_batches`` runs them through an actor pool whose actors each load the
scorer once (the same :class:`~core.prm.scorer.Scorer`, batching included, as the local engine). Scores
stream back to the driver, which alone writes the DuckDB cache: one transaction per returned block,
holding whole trajectories only. So a job stopped at any point (Ctrl-C, the driver killed) leaves
complete trajectories in the cache and a rerun sends only the rest. An actor that dies is restarted
by Ray Data and its block is run again; the driver keys results by trajectory, so each is cached once.

Ray is imported only here and only when ``--engine ray`` is chosen (``pip install -e .[ray]``).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core.interrupts import caused_by_ctrl_c
from core.prm.checks import PrmRefused, one_line
from core.prm.ray_actor import ScoringActor
from core.prm.types import ProgressCallback, ScorerSpec, step_content_hashes
from core.store import prm_cache

DEFAULT_CPUS_PER_WORKER = 0.5
"""Fractional by default: on a 2-CPU node, two actors asking for a full CPU each leave nothing for Ray Data's own
tasks and the job never finishes. Torch in an actor uses ``max(1, floor(cpus))`` threads."""
DEFAULT_CPU_WORKERS = 2
PAGE_TRAJECTORIES = 2048
"""Trajectories the driver reads, hashes and hands to Ray per page (bounds its memory per step)."""
BATCH_TRAJECTORIES = 64
"""Trajectories per actor call: each call is length-bucketed by the scorer's token budget, and its results
are cached in one transaction, so this is also the most work a stopped job can lose."""


@dataclass(frozen=True)
class RayOptions:
    """How to run on Ray.

    Attributes:
        address: ``None`` starts a local Ray instance; ``"auto"`` or ``HOST:PORT`` joins a running cluster.
        workers: Scorer actors; None = one per ``gpus_per_worker`` GPUs of the cluster, or 2 on CPU.
        gpus_per_worker: GPUs each actor asks for (0: CPU scoring).
        cpus_per_worker: CPUs each actor asks for (fractional by default, see :data:`DEFAULT_CPUS_PER_WORKER`).
        batch_trajectories: Trajectories per actor call.
        page_trajectories: Trajectories the driver reads from DuckDB at a time.
    """

    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = DEFAULT_CPUS_PER_WORKER
    batch_trajectories: int = BATCH_TRAJECTORIES
    page_trajectories: int = PAGE_TRAJECTORIES

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise PrmRefused(f"--workers must be at least 1, got {self.workers}")
        if self.gpus_per_worker < 0:
            raise PrmRefused(f"--gpus-per-worker must not be negative, got {self.gpus_per_worker:g}")
        if self.cpus_per_worker <= 0:
            raise PrmRefused(f"--cpus-per-worker must be positive, got {self.cpus_per_worker:g}")
        if self.batch_trajectories < 1 or self.page_trajectories < 1:
            raise PrmRefused("batch and page sizes must be at least 1 trajectory")


@dataclass
class RayFill:
    """What the Ray job did.

    Attributes:
        n_trajectories_sent: Trajectories with an uncached step, sent to the actors.
        n_steps_sent: Their steps.
        n_new_steps: Steps whose content was not cached (what the local engine reports as scored).
        n_results: Trajectories whose scores came back and were cached (each counted once).
        n_duplicates: Results that came back a second time (a retried block) and were ignored.
        workers: ``host:pid`` of every actor that returned scores.
        n_workers: Actors in the pool.
        tokens: Tokens of the trajectories scored (full length, before any truncation).
        startup_seconds: Joining or starting Ray.
        seconds: From the first page handed to Ray to the last result cached.
    """

    n_trajectories_sent: int = 0
    n_steps_sent: int = 0
    n_new_steps: int = 0
    n_results: int = 0
    n_duplicates: int = 0
    workers: set[str] = field(default_factory=set)
    n_workers: int = 0
    tokens: int = 0
    startup_seconds: float = 0.0
    seconds: float = 0.0


def import_ray() -> Any:
    """The ``ray`` module with Ray Data, or a one-line refusal saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - the pipeline needs Ray Data, not just Ray core
    except ImportError as exc:
        raise PrmRefused(
            "--engine ray needs Ray Data, which is not installed here: pip install -e '.[ray]' "
            f"(or pip install 'ray[data]'); {one_line(exc)}"
        ) from exc
    return ray


def fill_cache(
    store: Any,
    spec: ScorerSpec,
    run_id: str,
    scope: Any,
    *,
    prefix_only: bool,
    options: RayOptions,
    device: str,
    load_options: dict[str, Any],
    batch_tokens: int | None = None,
    progress: ProgressCallback | None = None,
) -> RayFill:
    """Score every uncached trajectory of ``scope`` on Ray and cache the results (the driver's side).

    Ray is started (or joined) only when some trajectory needs the model, so a fully cached scope, by either
    engine, costs no Ray start-up at all.

    Args:
        store: An open, writable store (only this process writes it).
        spec: The scorer's identity, fingerprinted on the driver.
        run_id: The run.
        scope: A :class:`core.prm.rescore.Scope`.
        prefix_only: Whether step scores depend only on their prefix (cache keys, as in the local engine).
        options: Cluster and pool settings.
        device: Device each actor scores on (``"auto"`` picks its GPU when it was given one).
        load_options: Keyword arguments of :meth:`Scorer.load` (trust_remote_code, revision, ...).
        batch_tokens: Padded-token budget per forward pass inside an actor.
        progress: ``progress(done, total)`` in steps, over all workers.

    Returns:
        A :class:`RayFill`.
    """
    fill = RayFill()
    session = _RaySession(options)
    refs: list[Any] = []
    try:
        for table in _uncached_blocks(store, spec, run_id, scope, prefix_only, options, fill):
            refs.append(session.put(table))  # starts or joins Ray on the first page that needs the model
        if not refs:
            return fill
        fill.startup_seconds = session.startup_seconds
        started = time.perf_counter()
        seen: set[str] = set()
        done = 0
        for block in session.scored_blocks(refs, spec, device, load_options, batch_tokens, fill):
            done += _cache_block(store, spec, block, seen, fill)
            if progress is not None:
                progress(done, fill.n_steps_sent)
        fill.seconds = time.perf_counter() - started
        missing = fill.n_trajectories_sent - fill.n_results
        if missing:
            raise PrmRefused(f"the Ray job ended with {missing} trajectories unscored; rerun to score them")
        return fill
    except BaseException as exc:
        if caused_by_ctrl_c(exc):
            session.leave_running()
        raise
    finally:
        session.close()


def _uncached_blocks(
    store: Any, spec: ScorerSpec, run_id: str, scope: Any, prefix_only: bool, options: RayOptions, fill: RayFill
) -> Iterator[Any]:
    """Arrow tables of the scope's trajectories that have an uncached step, read from DuckDB a page at a time."""
    import pyarrow as pa

    from core.prm.rescore import load_trajectories
    from core.store import queries

    page_size, batch_size = options.page_trajectories, options.batch_trajectories
    in_scope = queries.trajectories(store, run_id=run_id, **scope.step_filters())["traj_id"].astype(str).tolist()
    for start in range(0, len(in_scope), page_size):
        _, ids, trajectories = load_trajectories(store, run_id, scope, traj_ids=in_scope[start : start + page_size])
        hashes = [step_content_hashes(t, prefix_only=prefix_only) for t in trajectories]
        with store.reader() as cur:
            cached = prm_cache.lookup_cached(cur, spec.scorer_id, [h for hs in hashes for h in hs])
        known = set(cached["content_hash"].tolist())
        rows = [(i, t, h) for i, t, h in zip(ids, trajectories, hashes, strict=True) if any(x not in known for x in h)]
        if not rows:
            continue
        fill.n_trajectories_sent += len(rows)
        fill.n_steps_sent += sum(len(t.steps) for _, t, _ in rows)
        fill.n_new_steps += sum(1 for _, _, h in rows for x in h if x not in known)
        # One block per actor call: Ray Data hands a whole block to one task, so blocks are what spreads work
        # over the pool, and each returned block is one cache transaction.
        for first in range(0, len(rows), batch_size):
            chunk = rows[first : first + batch_size]
            yield pa.table(
                {
                    "traj_id": pa.array([i for i, _, _ in chunk], type=pa.string()),
                    "prompt": pa.array([t.prompt for _, t, _ in chunk], type=pa.string()),
                    "steps": pa.array([list(t.steps) for _, t, _ in chunk], type=pa.list_(pa.string())),
                    "hashes": pa.array([h for _, _, h in chunk], type=pa.list_(pa.string())),
                }
            )


def _cache_block(store: Any, spec: ScorerSpec, block: Any, seen: set[str], fill: RayFill) -> int:
    """Cache one returned block in one transaction; returns the steps it completed (repeats excluded)."""
    rows: list[tuple[str, float, bool]] = []
    n_steps = 0
    columns = [block[name].to_pylist() for name in ("traj_id", "hashes", "scores", "truncated", "n_tokens", "worker")]
    for traj_id, hashes, scores, truncated, n_tokens, worker in zip(*columns, strict=True):
        if traj_id in seen:
            fill.n_duplicates += 1
            continue
        seen.add(traj_id)
        rows.extend(zip(hashes, scores, truncated, strict=True))
        n_steps += len(hashes)
        fill.n_results += 1
        fill.tokens += int(n_tokens)
        fill.workers.add(worker)
    if rows:
        frame = pd.DataFrame(rows, columns=list(prm_cache.CACHE_COLUMNS)).astype(
            {"content_hash": "string", "score": "float64", "truncated": "bool"}
        )
        with store.writer() as cur:
            prm_cache.register_scorer(cur, spec.scorer_id, spec.to_json())
            prm_cache.insert_cached(cur, spec.scorer_id, frame)
    return n_steps


class _RaySession:
    """Starts or joins Ray lazily, runs the actor pool, and shuts down only a Ray instance it started itself."""

    def __init__(self, options: RayOptions) -> None:
        self.options = options
        self.ray: Any = None
        self.owned = False
        self.startup_seconds = 0.0

    def _connect(self) -> Any:
        if self.ray is not None:
            return self.ray
        ray = import_ray()
        started = time.perf_counter()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.ERROR,
            }
            try:
                ray.init(address=self.options.address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {self.options.address}" if self.options.address else "a local Ray instance"
                raise PrmRefused(f"cannot start or join {where}: {one_line(exc)}") from exc
            self.owned = True
        # Ray Data logs an actor's failure with its whole stack before raising it; the driver reports it in one line.
        logging.getLogger("ray.data").setLevel(logging.CRITICAL)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the driver reports steps/s itself
        context.print_on_execution_start = False
        self.ray = ray
        self.startup_seconds = time.perf_counter() - started
        return ray

    def put(self, table: Any) -> Any:
        return self._connect().put(table)

    def _pool_size(self) -> int:
        options, resources = self.options, self.ray.cluster_resources()
        cpus = float(resources.get("CPU", 0))
        if options.gpus_per_worker > 0:
            gpus = float(resources.get("GPU", 0))
            if gpus < options.gpus_per_worker:
                raise PrmRefused(f"--gpus-per-worker {options.gpus_per_worker:g}: the Ray cluster has {gpus:g} GPUs")
            workers = options.workers or max(1, int(gpus // options.gpus_per_worker))
        else:
            workers = options.workers or DEFAULT_CPU_WORKERS
        if workers * options.cpus_per_worker > cpus:
            raise PrmRefused(
                f"{workers} workers x {options.cpus_per_worker:g} CPUs need more than the cluster's {cpus:g} CPUs "
                "(the pool would never start); lower --workers or --cpus-per-worker"
            )
        return workers

    def scored_blocks(
        self,
        refs: list[Any],
        spec: ScorerSpec,
        device: str,
        load_options: dict[str, Any],
        batch_tokens: int | None,
        fill: RayFill,
    ) -> Iterator[Any]:
        ray, options = self.ray, self.options
        fill.n_workers = self._pool_size()
        actor_options = {**load_options, "threads": max(1, int(options.cpus_per_worker))}
        dataset = ray.data.from_arrow_refs(refs).map_batches(
            ScoringActor,
            fn_constructor_kwargs={
                "spec": spec,
                "device": device,
                "load_options": actor_options,
                "batch_tokens": batch_tokens,
            },
            batch_size=options.batch_trajectories,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=fill.n_workers),
            num_cpus=options.cpus_per_worker,
            num_gpus=options.gpus_per_worker or None,
        )
        try:
            with warnings.catch_warnings():
                # Fewer blocks than workers (a small scope) is fine; Ray Data warns about idle concurrency.
                warnings.filterwarnings("ignore", category=UserWarning, module="ray.data")
                yield from dataset.iter_batches(batch_size=None, batch_format="pyarrow")
        except PrmRefused:
            raise
        except Exception as exc:  # an actor's refusal or crash arrives wrapped in Ray's own errors
            if _caused_by(exc, KeyboardInterrupt):
                raise KeyboardInterrupt from exc  # Ctrl-C that Ray Data's threads wrapped is still Ctrl-C
            raise _unwrap(exc) from exc

    def leave_running(self) -> None:
        """Make :meth:`close` skip ``ray.shutdown()``, after a Ctrl-C.

        Ray Data's prefetch threads may still be calling Ray, and a call after the shutdown makes Ray end the
        process with status 1. The caller exits the process at once instead; the cluster then reaps this
        driver's actors as it does when a driver is killed.
        """
        self.owned = False

    def close(self) -> None:
        if self.owned and self.ray is not None:
            self.ray.shutdown()


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it: Ray's ``cause`` attribute, then ``__cause__``/``__context__``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        cause = getattr(current, "cause", None)
        current = cause if isinstance(cause, BaseException) else (current.__cause__ or current.__context__)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(link, kind) for link in _chain(exc))


def _unwrap(exc: BaseException) -> PrmRefused:
    """The refusal an actor raised (Ray wraps it, sometimes twice), else the Ray error in one line."""
    for link in _chain(exc):
        if isinstance(link, PrmRefused):
            return PrmRefused(str(link))
    for line in str(exc).splitlines():  # the text of a remote PrmRefused survives even when its type does not
        if "PrmRefused: " in line:
            return PrmRefused(line.split("PrmRefused: ", 1)[1].strip())
    return PrmRefused(f"the Ray job failed: {one_line(exc)}")

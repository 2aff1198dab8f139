"""``creditscope rescore`` and ``creditscope train-demo-prm`` (registered by ``core/cli.py``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

from core.errors import CreditscopeError
from core.interrupts import INTERRUPTED, caused_by_ctrl_c, noting_ctrl_c
from core.prm.types import FAMILIES

DEFAULT_DEMO_OUT = "sample_data/models/demo-prm"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the PRM subcommands to the main parser's subparsers."""
    p = subparsers.add_parser("rescore", help="score a run's steps with a process reward model")
    p.add_argument("--db", required=True, help="creditscope database file")
    p.add_argument("--run", required=True, help="run id")
    p.add_argument("--model", required=True, help="local folder or Hugging Face hub id")
    p.add_argument("--family", required=True, choices=FAMILIES, help="PRM input/scoring recipe")
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    p.add_argument(
        "--batch-tokens", type=int, help="padded-token budget per forward pass (default 65536 on GPU, 16384 on CPU)"
    )
    p.add_argument(
        "--compile",
        choices=["auto", "on", "off"],
        default="auto",
        help="torch.compile the model: ~1.35x the tokens/s on GPU after ~2 minutes of compiling; "
        "auto (default) compiles on GPU for jobs of 50M+ tokens",
    )
    p.add_argument(
        "--scope",
        nargs="+",
        default=["run"],
        metavar="KIND [VALUE]",
        help="run (default) | iteration N | group ID | trajectory ID",
    )
    p.add_argument("--revision", help="hub branch, tag or commit")
    p.add_argument("--ref-model", help="reference model (implicit family)")
    p.add_argument("--ref-revision", help="hub branch, tag or commit of the reference model")
    p.add_argument("--separator", help="step separator (token-cls, seqcls, implicit); default newline")
    p.add_argument("--max-length", type=int, help="token limit; default the model's")
    p.add_argument("--beta", type=float, help="implicit PRM coefficient (default 0.001)")
    p.add_argument(
        "--judge-template",
        help="judge: the question per step, with {problem}, {steps} (Step i: lines up to k), {step} and {k}; "
        "default '{problem}\\n\\n{steps}\\n\\nIs step {k} correct? Answer Yes or No.'",
    )
    p.add_argument("--judge-prefill", help="judge: text the answer turn starts with before Yes/No (default none)")
    p.add_argument("--yes-token", help="judge: the one-token answer read as correct (default Yes)")
    p.add_argument("--no-token", help="judge: the one-token answer read as wrong (default No)")
    p.add_argument(
        "--trust-remote-code", action="store_true", help="allow the checkpoint's own Python code (Qwen2.5-Math-PRM)"
    )
    p.add_argument("--no-activate", action="store_true", help="store the scores without making them steps.prm")
    ray = p.add_argument_group("scoring on a Ray cluster (pip install -e .[ray])")
    ray.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local (default): this process; ray: a Ray actor pool",
    )
    ray.add_argument("--address", help="join this Ray cluster (auto or HOST:PORT); default: start a local Ray instance")
    ray.add_argument("--workers", type=int, help="scorer actors (default: one per GPU with --gpus-per-worker, else 2)")
    ray.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per actor (default 0: score on CPU)")
    ray.add_argument(
        "--cpus-per-worker",
        type=float,
        help="CPUs per actor (default 0.5: whole CPUs for every actor starve Ray Data's own tasks on small nodes; "
        "torch uses max(1, floor(C)) threads per actor)",
    )
    ray.add_argument(
        "--batch-trajectories",
        type=int,
        help="trajectories per actor call and per cache transaction (default 64; also the most a stopped job loses)",
    )
    p.add_argument(
        "--allow-random-init",
        action="store_true",
        help="benchmarks only: score even when the checkpoint lacks weights the family needs (random scores)",
    )
    p.set_defaults(func=cmd_rescore)

    p = subparsers.add_parser("train-demo-prm", help="train the small demo PRM on the arithmetic environment (CPU)")
    p.add_argument("--out", default=DEFAULT_DEMO_OUT)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, help="optimiser steps (default from DemoConfig)")
    p.set_defaults(func=cmd_train_demo_prm)


def parse_scope(words: list[str]):  # type: ignore[no-untyped-def]
    """``["run"]`` / ``["iteration", "3"]`` / ``["group", "g1"]`` / ``["trajectory", "t7"]`` → a Scope.

    Raises:
        PrmRefused: An unknown kind, a missing or extra value, or an iteration that is not an integer.
    """
    from core.prm.checks import PrmRefused
    from core.prm.rescore import Scope

    kind, *rest = words
    if len(rest) > 1:
        raise PrmRefused(f"--scope takes a kind and at most one value, got {' '.join(words)!r}")
    value: str | int | None = rest[0] if rest else None
    scope = Scope(kind, value)  # validates the kind, the value's presence and an iteration's number
    return Scope(kind, int(value)) if kind == "iteration" else scope


def cmd_rescore(args: argparse.Namespace) -> int:
    """Run :func:`core.prm.rescore.rescore` with a tqdm bar (steps scored, steps/s and ETA); Ctrl-C exits 130."""
    from dataclasses import replace

    from tqdm import tqdm

    from core.prm.checks import check_positive, check_settings
    from core.prm.rescore import rescore
    from core.prm.types import FormatSettings
    from core.store.database import Store

    settings = FormatSettings()
    if args.separator is not None:
        settings = replace(settings, separator=args.separator.encode().decode("unicode_escape"))
    if args.max_length is not None:
        settings = replace(settings, max_length=args.max_length)
    if args.beta is not None:
        settings = replace(settings, beta=args.beta)
    for flag in ("judge_template", "judge_prefill", "yes_token", "no_token"):
        if getattr(args, flag) is not None:
            # Only \n and \t are unescaped: unicode_escape would garble non-ASCII text in a template.
            text = getattr(args, flag).replace("\\n", "\n").replace("\\t", "\t")
            settings = replace(settings, **{flag: text})
    check_settings(settings)
    check_positive("--batch-tokens", args.batch_tokens)
    ray_options = _ray_options(args)
    scope = parse_scope(args.scope)
    if args.db != ":memory:" and not Path(args.db).exists():
        # Store.open would create an empty database for a mistyped path and then find nothing to score.
        raise CreditscopeError(f"database {args.db} does not exist (create it with `creditscope ingest`)")
    store = Store.open(args.db)
    bars: list[tqdm] = []  # made on the first report, so a refusal before any scoring prints one line only

    where = f"rescoring on Ray ({args.workers or 'auto'} workers)" if args.engine == "ray" else "rescoring"

    def progress(done: int, total: int) -> None:
        if not bars:  # steps/s and the ETA come from tqdm; on Ray they count every worker's steps
            bars.append(tqdm(total=total, unit="step", desc=where, dynamic_ncols=True))
        bar = bars[0]
        bar.total = total
        bar.update(done - bar.n)

    interrupted = False
    with noting_ctrl_c() as ctrl_c:
        try:
            report = rescore(
                store,
                run_id=args.run,
                model=args.model,
                family=args.family,
                device=args.device,
                batch_tokens=args.batch_tokens,
                scope=scope,
                trust_remote_code=args.trust_remote_code,
                progress=progress,
                revision=args.revision,
                settings=settings,
                ref_model=args.ref_model,
                activate=not args.no_activate,
                compile=args.compile,
                ref_revision=args.ref_revision,
                allow_random_init=args.allow_random_init,
                engine=args.engine,
                ray_options=ray_options,
            )
        except (KeyboardInterrupt, Exception) as exc:
            if not (ctrl_c[0] or caused_by_ctrl_c(exc)):
                raise
            for bar in bars:
                bar.close()
            bars.clear()
            # On Ray every returned block was cached in its own transaction (the one in flight rolled back); the local
            # engine writes its cache in one transaction at the end, so it left nothing.
            kept = "trajectories scored so far are cached" if args.engine == "ray" else "nothing was written"
            print(f"creditscope: interrupted; {kept}, rerun to score the rest", file=sys.stderr)
            interrupted = True
            return INTERRUPTED
        finally:
            for bar in bars:
                bar.close()
            store.close()
            if interrupted and args.engine == "ray":
                _exit_leaving_ray(INTERRUPTED)
    print(report.summary())
    if report.truncated_trajectories:
        shown = ", ".join(report.truncated_trajectories[:10])
        more = "" if len(report.truncated_trajectories) <= 10 else f" (+{len(report.truncated_trajectories) - 10})"
        print(f"truncated at the model's max length: {shown}{more}")
    return 0


def _exit_leaving_ray(status: int) -> NoReturn:
    """End the process now, without Ray's own exit handler (see ``core.prm.ray_engine.fill_cache``).

    After a Ctrl-C, Ray Data's prefetch threads may still be calling Ray; its shutdown at exit would then make
    Ray end the process with status 1 instead of ``status``. The database is closed and every cached block
    committed before this.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _ray_options(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The Ray settings, refusing them without ``--engine ray`` rather than ignoring them."""
    from core.prm.checks import PrmRefused

    names = ("address", "workers", "cpus_per_worker", "batch_trajectories")
    given = [f"--{name.replace('_', '-')}" for name in names if getattr(args, name) is not None]
    given += ["--gpus-per-worker"] if args.gpus_per_worker else []
    if args.engine != "ray":
        if given:
            raise PrmRefused(f"{', '.join(given)} only apply with --engine ray")
        return None
    from core.prm.ray_engine import BATCH_TRAJECTORIES, DEFAULT_CPUS_PER_WORKER, RayOptions

    cpus = DEFAULT_CPUS_PER_WORKER if args.cpus_per_worker is None else args.cpus_per_worker
    return RayOptions(
        address=args.address,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        cpus_per_worker=cpus,
        batch_trajectories=args.batch_trajectories or BATCH_TRAJECTORIES,
    )


def cmd_train_demo_prm(args: argparse.Namespace) -> int:
    """Train the demo PRM and print its held-out ROC-AUC."""
    from dataclasses import replace

    from core.prm.demo_train import DemoConfig, train_demo_prm

    config = replace(DemoConfig(), seed=args.seed)
    if args.steps is not None:
        config = replace(config, train_steps=args.steps)
    train_demo_prm(args.out, config)
    return 0

"""The Ray side of ``--engine ray``: one actor of the pool, which loads the scorer once and scores blocks.

Ray Data instantiates :class:`ScoringActor` in each worker process (``map_batches`` with an actor pool);
the driver side, which reads DuckDB and writes the cache, is :mod:`core.prm.ray_engine`.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from core.prm.checks import PrmRefused
from core.prm.types import ScorerSpec, Trajectory


class ScoringActor:
    """One Ray Data actor: loads the scorer once, then scores the batches of trajectories it is given."""

    def __init__(self, spec: ScorerSpec, device: str, load_options: dict[str, Any], batch_tokens: int | None) -> None:
        import torch

        from core.prm.loading import fingerprint
        from core.prm.scorer import Scorer

        torch.set_num_threads(int(load_options.pop("threads")))
        host = socket.gethostname()
        # The driver fingerprinted the model; another node may hold another checkpoint under the same path.
        try:
            here = fingerprint(spec.model, load_options.get("revision"))
        except PrmRefused as exc:
            raise PrmRefused(f"on node {host}: {exc}") from exc
        if here != spec.fingerprint:
            raise PrmRefused(
                f"on node {host}: {spec.model} is not the checkpoint the driver fingerprinted (its content differs); "
                "every node must see the same model (a shared path or a hub id)"
            )
        self.scorer = Scorer.load(
            spec.model, spec.family, device=device, spec=spec, ref_model=spec.ref_model, **load_options
        )
        self.batch_tokens = batch_tokens
        self.worker = f"{host}:{os.getpid()}"

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        prompts, steps = batch["prompt"].to_pylist(), batch["steps"].to_pylist()
        trajectories = [Trajectory(p, tuple(s)) for p, s in zip(prompts, steps, strict=True)]
        results = self.scorer.score(trajectories, batch_tokens=self.batch_tokens)
        return pa.table(
            {
                "traj_id": batch["traj_id"],
                "hashes": batch["hashes"],
                "scores": pa.array([r.scores for r in results], type=pa.list_(pa.float64())),
                "truncated": pa.array([r.truncated for r in results], type=pa.list_(pa.bool_())),
                "n_tokens": pa.array([r.n_tokens for r in results], type=pa.int64()),
                "worker": pa.array([self.worker] * len(results), type=pa.string()),
            }
        )

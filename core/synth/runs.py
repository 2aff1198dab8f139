"""Deterministic sample runs in the native JSONL layout: arithmetic chains, rollout trees, a text agent.

Every run imitates training: the scripted policy's per-step error rate falls geometrically over
iterations, so success rates rise and zero-variance groups appear late. Everything is driven by one
seed, so ``creditscope synth`` reproduces ``sample_data/`` byte for byte.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from core.synth import agent, arithmetic

ENVS: tuple[str, ...] = ("arithmetic", "tree", "agent")


def error_rate(iteration: int, iterations: int, start: float = 0.35, end: float = 0.04) -> float:
    """Per-step slip probability at ``iteration``: geometric decay from ``start`` to ``end``."""
    if iterations <= 1:
        return start
    return start * (end / start) ** (iteration / (iterations - 1))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _arith_steps(
    problem: arithmetic.Problem, lines: list[str], rng: np.random.Generator, err: float, ref_err: float
) -> tuple[list[dict[str, Any]], float]:
    """Step dicts for one arithmetic solution, with a noisy logged PRM score and a critic value.

    The logged ``prm`` and ``value`` imitate what a trainer with a PRM and a critic would write:
    informative but noisy, so schemes that use them differ from ground truth in realistic ways.
    ``logp_policy`` / ``logp_ref`` are the line's log-probability under the scripted policy now and at
    iteration 0 (the reference), as PRIME-style implicit rewards need; they land in ``steps.extra``.
    The per-token arrays (:func:`_line_tokens`) split the same numbers over the line's tokens.
    """
    checks = arithmetic.step_checks(problem, lines)
    result = arithmetic.outcome(problem, lines)
    steps = []
    ok_so_far = True
    state = problem.text
    last = len(lines) - 1
    for t, (line, (good, parsed)) in enumerate(zip(lines, checks, strict=True)):
        critic = (1 - err) ** (len(lines) - t) if ok_so_far else 0.05
        ok_so_far = ok_so_far and good
        steps.append(
            {
                "state": state,
                "action": line,
                "reward": result if t == last else 0.0,
                "label": 1.0 if good else 0.0,
                "valid": parsed,
                "prm": round(_sigmoid(2.5 * (1 if good else -1) + rng.normal(0, 1.2)), 6),
                "value": round(min(1.0, max(0.0, critic + rng.normal(0, 0.08))), 6),
                "logp_policy": _line_logp(good, err),
                "logp_ref": _line_logp(good, ref_err),
                **_line_tokens(line, good, err, ref_err),
            }
        )
        state = f"{state}\n{line}"
    return steps, result


def _line_logp(good: bool, err: float) -> float:
    """Log-probability of a line under a policy that slips with ``err`` (a slip picks one of 6 wrong results)."""
    return round(math.log(1 - err) if good else math.log(err / 6), 6)


def split_tokens(text: str) -> list[str]:
    """A simple deterministic tokenizer: each word with the white space before it (they join back to ``text``)."""
    return re.findall(r"\s*\S+", text)


def _line_tokens(line: str, good: bool, err: float, ref_err: float) -> dict[str, list]:
    """Per-token arrays of one arithmetic line under the scripted policy (the model of :func:`_line_logp`).

    In ``a op b = c`` everything before the result is fixed (the previous line's value and the problem's
    operation), so those tokens have probability 1 and entropy 0; the result token carries the whole
    decision: right with ``1 - err``, else one of 6 wrong results. The log-probs therefore sum to
    ``logp_policy`` / ``logp_ref``, and the entropy is that of the result's distribution.
    """
    tokens = split_tokens(line)
    fixed = [0.0] * (len(tokens) - 1)
    entropy = -(1 - err) * math.log(1 - err) - err * math.log(err / 6)
    return {
        "tokens": tokens,
        "token_logprobs": [*fixed, _line_logp(good, err)],
        "token_ref_logprobs": [*fixed, _line_logp(good, ref_err)],
        "token_entropies": [*fixed, round(entropy, 6)],
    }


def _record(run: str, it: int, group: str, traj: str, prompt: str, outcome: float, steps: list, meta: dict) -> dict:
    return {
        "run": run,
        "iteration": it,
        "group": group,
        "trajectory": traj,
        "prompt": prompt,
        "outcome": outcome,
        "split": "train",
        "meta": meta,
        "steps": steps,
    }


POOL_SEED = 7
"""Seed of the prompt pool (``pool > 0``): independent of the run's seed, so runs with different seeds share it."""


class _Problems:
    """Where each iteration's problems come from: fresh draws (the default), or a fixed pool, like a training set.

    With a pool, each iteration samples ``prompts`` problems from the same ``pool`` problems (without
    replacement when the pool is large enough), so two runs with different seeds see the same prompts,
    and so do early and late iterations of one run: what a run-to-run or checkpoint diff pairs on.
    """

    def __init__(self, rng: np.random.Generator, pool: int, **ops: int):
        self._rng, self._ops = rng, ops
        pool_rng = np.random.default_rng([POOL_SEED, 1])
        self._pool = [arithmetic.make_problem(pool_rng, **ops) for _ in range(pool)]

    def for_iteration(self, prompts: int) -> Iterator[arithmetic.Problem]:
        if not self._pool:
            # Drawn lazily, between the rollouts, so the default stream (and sample_data/) stays as it was.
            for _ in range(prompts):
                yield arithmetic.make_problem(self._rng, **self._ops)
            return
        picks = self._rng.choice(len(self._pool), size=prompts, replace=prompts > len(self._pool))
        yield from (self._pool[int(i)] for i in picks)


def arithmetic_records(
    prompts: int, iterations: int, group_size: int, seed: int, run: str, pool: int = 0
) -> Iterator[dict]:
    """Flat chains: ``group_size`` independent solutions per problem per iteration."""
    rng = np.random.default_rng([seed, 1])
    problems = _Problems(rng, pool)
    ref_err = error_rate(0, iterations)
    for it in range(iterations):
        err = error_rate(it, iterations)
        for p, problem in enumerate(problems.for_iteration(prompts)):
            group = f"it{it}-p{p}"
            for r in range(group_size):
                lines = arithmetic.policy_lines(problem, rng, err)
                steps, result = _arith_steps(problem, lines, rng, err, ref_err)
                meta = {"answer": problem.answer, "error_rate": round(err, 6)}
                yield _record(run, it, group, f"{group}-r{r}", problem.text, result, steps, meta)


def tree_records(prompts: int, iterations: int, group_size: int, seed: int, run: str, pool: int = 0) -> Iterator[dict]:
    """TreeRL-style groups: each new rollout branches off a random step of an earlier one.

    Shared prefixes share ``node`` ids; a branch point is chosen uniformly among the earlier
    rollout's steps, so the tree is bushy near the root and thins out towards the leaves.
    """
    rng = np.random.default_rng([seed, 2])
    problems = _Problems(rng, pool, min_ops=4, max_ops=6)
    ref_err = error_rate(0, iterations)
    for it in range(iterations):
        err = error_rate(it, iterations)
        for p, problem in enumerate(problems.for_iteration(prompts)):
            group = f"it{it}-p{p}"
            paths: list[tuple[list[str], list[str]]] = []  # (lines, node ids)
            next_node = 0
            for r in range(group_size):
                if paths:
                    base_lines, base_nodes = paths[int(rng.integers(0, len(paths)))]
                    cut = int(rng.integers(0, len(base_lines)))
                    prefix, nodes = base_lines[:cut], base_nodes[:cut]
                else:
                    prefix, nodes = [], []
                lines = arithmetic.policy_lines(problem, rng, err, prefix)
                nodes = list(nodes)
                for _ in range(len(lines) - len(nodes)):
                    nodes.append(f"{group}-n{next_node}")
                    next_node += 1
                paths.append((lines, nodes))
                steps, result = _arith_steps(problem, lines, rng, err, ref_err)
                for t, s in enumerate(steps):
                    s["node"] = nodes[t]
                    s["parent"] = nodes[t - 1] if t > 0 else None
                meta = {"answer": problem.answer, "error_rate": round(err, 6), "branched_at": len(prefix)}
                yield _record(run, it, group, f"{group}-r{r}", problem.text, result, steps, meta)


def agent_records(prompts: int, iterations: int, group_size: int, seed: int, run: str, pool: int = 0) -> Iterator[dict]:
    """Episodes of the key-and-door world; a prompt fixes the start room, so states recur within a group.

    Its prompts already come from a fixed set (the start rooms), so ``pool`` changes nothing here.
    """
    rng = np.random.default_rng([seed, 3])
    for it in range(iterations):
        err = error_rate(it, iterations, start=0.7, end=0.15)
        for p in range(prompts):
            start = agent.START_ROOMS[(it + p) % len(agent.START_ROOMS)]
            group = f"it{it}-p{p}"
            prompt = f"Find the key and reach the garden. You start in the {start}."
            for r in range(group_size):
                steps = agent.rollout(start, rng, err)
                success = 1.0 if steps[-1]["action"] == "go garden" and steps[-1]["valid"] else 0.0
                meta = {"start_room": start, "error_rate": round(err, 6), "env_return": sum(s["reward"] for s in steps)}
                yield _record(run, it, group, f"{group}-r{r}", prompt, success, steps, meta)


GENERATORS = {"arithmetic": arithmetic_records, "tree": tree_records, "agent": agent_records}


def records(
    env: str,
    *,
    prompts: int = 6,
    iterations: int = 10,
    group_size: int = 8,
    seed: int = 0,
    run: str | None = None,
    pool: int = 0,
) -> Iterator[dict]:
    """Native JSONL records (one trajectory each) of the sample environment ``env``.

    Args:
        env: One of :data:`ENVS`.
        prompts: Prompts (groups) per iteration.
        iterations: Training iterations to imitate.
        group_size: Rollouts per group (trajectories per prompt for ``tree``: leaves of the tree).
        seed: Seed of the whole run.
        run: Run name written into each record; defaults to ``env``.
        pool: Draw each iteration's problems from a fixed pool of this many (0: a fresh problem per
            group). The pool does not depend on ``seed``, so runs with different seeds share prompts.
    """
    if env not in GENERATORS:
        raise ValueError(f"unknown sample environment {env!r}; choose from {', '.join(ENVS)}")
    return GENERATORS[env](prompts, iterations, group_size, seed, run or env, pool)

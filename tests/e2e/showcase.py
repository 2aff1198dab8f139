"""Runs the browser tests add to the served database: a big tree group (64 rollouts, up to 40 steps) and a hostile log.

The big group is built from the arithmetic environment's own pieces (``core.synth.arithmetic``): one
40-operation problem, each rollout branching off an earlier one at a random step as in the tree
environment, with logged node ids, step labels and validity, and per-token log-probs and entropies (each
rollout sampled at its own confidence: the result token of a line carries the decision, the rest is near
certain).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.synth import arithmetic
from core.synth.runs import split_tokens

SHOWCASE_RUN, SHOWCASE_GROUP = "showcase", "g64"
HOSTILE_RUN = "hostile **bold** <b>b</b> $x^2$"


def showcase_records(rollouts: int = 64, operations: int = 40, error_rate: float = 0.015, seed: int = 2) -> list[dict]:
    """One group of ``rollouts`` arithmetic solutions that share prefixes (a rollout tree with node ids)."""
    rng = np.random.default_rng(seed)
    problem = arithmetic.make_problem(rng, min_ops=operations, max_ops=operations)
    paths: list[tuple[list[str], list[str]]] = []
    records = []
    for r in range(rollouts):
        prefix, nodes = [], []
        if paths:
            base_lines, base_nodes = paths[int(rng.integers(0, len(paths)))]
            cut = int(rng.integers(0, len(base_lines)))
            prefix, nodes = base_lines[:cut], base_nodes[:cut]
        lines = arithmetic.policy_lines(problem, rng, error_rate, prefix)
        nodes = nodes + [f"r{r}n{t}" for t in range(len(nodes), len(lines))]
        paths.append((lines, nodes))
        checks = arithmetic.step_checks(problem, lines)
        result = arithmetic.outcome(problem, lines)
        slip = float(rng.uniform(0.02, 0.4))  # this rollout's chance of a wrong result
        steps = [
            {"state": "\n".join([problem.text, *lines[:t]]), "action": line, "node": node,
             "parent": nodes[t - 1] if t else None, "label": 1.0 if good else 0.0, "valid": parsed,
             "reward": result if t == len(lines) - 1 else 0.0, **_token_arrays(line, good, slip, rng)}
            for t, (line, node, (good, parsed)) in enumerate(zip(lines, nodes, checks, strict=True))
        ]  # fmt: skip
        traj = f"{SHOWCASE_GROUP}-r{r}"
        records.append({"run": SHOWCASE_RUN, "iteration": 0, "group": SHOWCASE_GROUP, "trajectory": traj,
                        "prompt": problem.text, "outcome": result, "steps": steps})  # fmt: skip
    return records


def _token_arrays(line: str, good: bool, slip: float, rng: np.random.Generator) -> dict[str, list]:
    tokens = split_tokens(line)
    fixed = [round(-float(rng.exponential(0.02)), 5) for _ in tokens[:-1]]
    result = np.log(1 - slip) if good else np.log(slip / 6)
    entropy = -(1 - slip) * np.log(1 - slip) - slip * np.log(slip / 6)
    return {"tokens": tokens, "token_logprobs": [*fixed, round(float(result), 5)],
            "token_entropies": [round(-f, 5) for f in fixed] + [round(float(entropy), 5)]}  # fmt: skip


def hostile_texts(port: int) -> list[str]:
    """Text that Markdown, HTML, LaTeX or a link renderer would act on; the image points at a counting server."""
    return ["**bold**", f"![x](http://127.0.0.1:{port}/x.png)", "[l](javascript:alert(1))", "$x^2$", "<b>b</b>"]


def hostile_records(port: int) -> list[dict]:
    """Two rollouts of one group whose prompt, states, actions and ids all carry :func:`hostile_texts`."""
    text = " ".join(hostile_texts(port))
    return [
        {"run": HOSTILE_RUN, "iteration": 0, "group": f"g {text}", "trajectory": f"t{r} {text}", "prompt": text,
         "outcome": float(r), "steps": [{"state": text, "action": f"{text}\nline two", "label": 1.0, "valid": True},
                                        {"state": text, "action": text, "label": float(r), "valid": True}]}
        for r in range(2)
    ]  # fmt: skip


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path

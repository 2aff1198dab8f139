"""The sample environments: deterministic, exact ground truth, and they look like training."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.synth import agent, arithmetic, generate_steps, records, write_jsonl


def test_same_seed_same_bytes(tmp_path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_jsonl(a, "tree", prompts=2, iterations=3, seed=5)
    write_jsonl(b, "tree", prompts=2, iterations=3, seed=5)
    assert a.read_bytes() == b.read_bytes()
    write_jsonl(b, "tree", prompts=2, iterations=3, seed=6)
    assert a.read_bytes() != b.read_bytes()


@pytest.mark.parametrize("env", ["arithmetic", "tree"])
def test_arithmetic_labels_and_outcomes_are_exact(env: str) -> None:
    for rec in records(env, prompts=4, iterations=4, group_size=6, seed=1):
        value = int(rec["prompt"].split("Start with ")[1].split(",")[0])
        ops = rec["prompt"].split("apply in order: ")[1].removesuffix(". Write one line per operation.").split(" ")
        ops = list(zip(ops[::2], map(int, ops[1::2]), strict=True))
        answer = value
        for op, x in ops:
            answer = arithmetic.apply_op(answer, op, x)
        for (op, x), step in zip(ops, rec["steps"], strict=True):
            parsed = arithmetic.parse_line(step["action"])
            right = (
                parsed is not None and parsed[:3] == (value, op, x) and parsed[3] == arithmetic.apply_op(value, op, x)
            )
            assert step["label"] == float(right)
            assert step["valid"] == (parsed is not None)
            if parsed is not None:
                value = parsed[3]
        last = arithmetic.parse_line(rec["steps"][-1]["action"])
        assert rec["outcome"] == float(last is not None and last[3] == answer)
        assert rec["steps"][-1]["reward"] == rec["outcome"]


def test_a_slip_carries_forward_and_only_the_slip_is_labelled_bad() -> None:
    problem = arithmetic.Problem(start=5, ops=(("+", 3), ("*", 2), ("-", 4)))
    lines = ["5 + 3 = 9", "9 * 2 = 18", "18 - 4 = 14"]
    assert arithmetic.step_labels(problem, lines) == [False, True, True]
    assert arithmetic.outcome(problem, lines) == 0.0
    assert arithmetic.outcome(problem, ["5 + 3 = 8", "8 * 2 = 16", "16 - 4 = 12"]) == 1.0


def test_policy_continues_from_a_prefix() -> None:
    problem = arithmetic.Problem(start=2, ops=(("+", 2), ("+", 2), ("+", 2)))
    lines = arithmetic.policy_lines(problem, np.random.default_rng(0), 0.0, prefix=["2 + 2 = 5"])
    assert lines == ["2 + 2 = 5", "5 + 2 = 7", "7 + 2 = 9"]


def test_tree_groups_share_prefix_nodes_and_parents_chain() -> None:
    steps = generate_steps("tree", prompts=3, iterations=2, group_size=8)
    assert steps["node_id"].notna().all()
    for _, group in steps.groupby(["iteration", "group_id"]):
        assert group["node_id"].nunique() < len(group)  # some steps are shared
        by_node = group.drop_duplicates("node_id").set_index("node_id")
        for _, row in by_node.iterrows():
            if row["step_idx"] == 0:
                assert pd.isna(row["parent_id"])
            else:
                assert by_node.loc[row["parent_id"], "step_idx"] == row["step_idx"] - 1
        shared = group.groupby("node_id")["action"].nunique()
        assert (shared == 1).all()


def test_agent_states_recur_and_labels_follow_optimal_distances() -> None:
    steps = generate_steps("agent", prompts=2, iterations=3, group_size=8)
    assert steps.groupby(["iteration", "group_id"])["state"].apply(lambda s: s.duplicated().any()).all()
    assert (~steps["valid"].astype(bool)).any()
    world = agent.World("hall")
    assert agent.optimal_actions(world) == ["go cellar"]
    assert agent.DISTANCE[world] == 6
    for rec in records("agent", prompts=2, iterations=2, group_size=4):
        success = rec["steps"][-1]["action"] == "go garden" and rec["steps"][-1]["valid"]
        assert rec["outcome"] == float(success)


def test_error_rate_falls_so_success_rises() -> None:
    steps = generate_steps("arithmetic", prompts=20, iterations=10, group_size=8)
    per_it = steps.groupby("iteration")["outcome"].mean()
    assert per_it.iloc[-3:].mean() > per_it.iloc[:3].mean() + 0.25


def test_records_are_valid_native_lines(tmp_path) -> None:
    path = tmp_path / "agent.jsonl"
    n = write_jsonl(path, "agent", prompts=1, iterations=1, group_size=2)
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    assert n == sum(len(r["steps"]) for r in recs) and {r["run"] for r in recs} == {"agent"}


@pytest.mark.parametrize("env", ["arithmetic", "tree"])
def test_a_prompt_pool_is_shared_by_seeds_and_iterations(env: str) -> None:
    def prompts(seed: int) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {}
        for rec in records(env, prompts=6, iterations=4, group_size=2, seed=seed, pool=8):
            out.setdefault(rec["iteration"], set()).add(rec["prompt"])
        return out

    a, b = prompts(1), prompts(2)
    everything = set().union(*a.values(), *b.values())
    assert len(everything) <= 8  # one pool of 8 problems for both seeds
    assert all(len(group) == 6 for group in a.values())  # 6 distinct prompts per iteration, drawn without replacement
    assert a[0] & a[3] and a[0] & b[0]  # early and late iterations, and two seeds, share prompts
    fresh = {rec["prompt"] for rec in records(env, prompts=6, iterations=4, group_size=2, seed=1)}
    assert len(fresh) == 24  # without a pool every group gets a new problem

"""Pairing two sides by prompt: renamed runs, prompts on one side only, chat-wrapped prompts, ranges, statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.credit import compute
from core.diff import Side, parse_range, prompt_keys, sides
from core.errors import CreditscopeError
from core.ingest.runner import ingest
from core.store import diff_queries as dq
from core.store import queries
from core.store.database import Store

CHATML = (
    "<|im_start|>system\nYou are a careful solver.<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
)


def _record(run: str, it: int, group: str, r: int, prompt: str | None, outcome: float, n_steps: int = 2) -> dict:
    return {"run": run, "iteration": it, "group": group, "trajectory": f"{group}-it{it}-r{r}", "prompt": prompt,
            "outcome": outcome, "steps": [{"action": f"{group} step {t}"} for t in range(n_steps)]}  # fmt: skip


def _load(store: Store, tmp_path: Path, name: str, records: list[dict], run: str | None = None) -> None:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    ingest(store, [str(path)], run=run)


def _group(run: str, it: int, group: str, prompt: str | None, outcomes: list[float], n_steps: int = 2) -> list[dict]:
    return [_record(run, it, group, r, prompt, o, n_steps + r % 2) for r, o in enumerate(outcomes)]


def _pairs(store: Store, a: Side, b: Side, **kwargs: object) -> pd.DataFrame:
    both = sides(store, a, b, "grpo")
    return dq.pairs(store, both, prompt_keys(store), limit=None, **kwargs)[0].set_index("prompt")


def test_renamed_runs_pair_every_prompt_and_nothing_changes(store: Store, tmp_path: Path) -> None:
    records = [*_group("x", 0, "g1", "Add 2 and 3.", [1, 0, 1]), *_group("x", 0, "g2", "Double 4.", [0, 0]),
               *_group("x", 1, "g3", "Add 2 and 3.", [1, 1, 1])]  # fmt: skip
    _load(store, tmp_path, "first", records, run="first-name")
    _load(store, tmp_path, "second", records, run="renamed")
    both = sides(store, Side("first-name"), Side("renamed"), "grpo")
    counts, stats = dq.summary(store, both)
    assert counts == {"in_both": 2, "only_a": 0, "only_b": 0, "lost": 0, "gained": 0, "unkeyed_a": 0, "unkeyed_b": 0}
    pd.testing.assert_series_equal(stats.loc["A"], stats.loc["B"], check_names=False)
    table = _pairs(store, Side("first-name"), Side("renamed"))
    assert (table[["d_outcome", "d_steps", "d_credit"]] == 0).all().all()
    assert table.loc["Add 2 and 3.", "groups_a"] == 2 and table.loc["Add 2 and 3.", "trajectories_a"] == 6
    assert table.loc["Add 2 and 3.", "outcome_a"] == pytest.approx(5 / 6)


def test_prompts_on_one_side_only_and_flips(store: Store, tmp_path: Path) -> None:
    a_groups = [("p1", "only in A", [1, 0]), ("p2", "lost it", [1, 1]), ("p3", "gained it", [0, 0]),
                ("p4", "kept", [1, 1])]  # fmt: skip
    b_groups = [("q2", "lost it", [0, 0]), ("q3", "gained it", [0, 1]), ("q4", "kept", [1, 0]),
                ("q5", "only in B", [0, 1])]  # fmt: skip
    _load(store, tmp_path, "a", [r for g, p, o in a_groups for r in _group("a", 0, g, p, o)])
    _load(store, tmp_path, "b", [r for g, p, o in b_groups for r in _group("b", 0, g, p, o)])
    both = sides(store, Side("a"), Side("b"), "grpo")
    counts, _ = dq.summary(store, both)
    assert (counts["in_both"], counts["only_a"], counts["only_b"]) == (3, 1, 1)
    assert (counts["lost"], counts["gained"]) == (1, 1)
    table = _pairs(store, Side("a"), Side("b"))
    assert table.loc["lost it", "flip"] == "lost" and table.loc["gained it", "flip"] == "gained"
    assert table.loc["kept", "flip"] == "" and table.loc["kept", "d_outcome"] == pytest.approx(-0.5)
    assert np.isnan(table.loc["only in A", "outcome_b"]) and np.isnan(table.loc["only in B", "outcome_a"])
    assert set(_pairs(store, Side("a"), Side("b"), show="flipped").index) == {"lost it", "gained it"}
    assert set(_pairs(store, Side("a"), Side("b"), show="only in A").index) == {"only in A"}
    assert set(_pairs(store, Side("a"), Side("b"), show="only in B").index) == {"only in B"}
    ranked = _pairs(store, Side("a"), Side("b"), show="in both")  # biggest |change in mean outcome| first
    assert list(ranked.index)[0] == "lost it" and set(ranked.index) == {"lost it", "gained it", "kept"}


def test_chat_wrapped_prompts_pair_with_plain_ones(store: Store, tmp_path: Path) -> None:
    plain = ["Compute 17 * 3.", "Name the capital of France."]
    _load(store, tmp_path, "plain", [r for i, p in enumerate(plain) for r in _group("plain", 0, f"g{i}", p, [1, 0])])
    user = {"role": "user", "content": "Name the  capital of\nFrance."}
    messages = [{"role": "system", "content": "Be brief."}, user]
    wrapped = [CHATML.format(plain[0]), json.dumps(messages)]
    _load(store, tmp_path, "chat", [r for i, p in enumerate(wrapped) for r in _group("chat", 5, f"c{i}", p, [0, 0])])
    table = _pairs(store, Side("plain"), Side("chat"))
    assert list(table.index) == plain or set(table.index) == set(plain)
    assert table["groups_a"].tolist() == [1, 1] and table["groups_b"].tolist() == [1, 1]
    assert (table["flip"] == "lost").all()


def test_two_iteration_ranges_of_one_run(store: Store, tmp_path: Path) -> None:
    records = [r for it in range(6) for r in _group("run", it, f"it{it}", "same task", [1.0 if it >= 3 else 0.0] * 2)]
    _load(store, tmp_path, "run", records)
    early, late = Side("run", *parse_range(":2")), Side("run", *parse_range("3:"))
    table = _pairs(store, early, late)
    assert table.loc["same task", "groups_a"] == 3 and table.loc["same task", "flip"] == "gained"
    assert table.loc["same task", "last_iteration_a"] == 2 and table.loc["same task", "last_iteration_b"] == 5
    with pytest.raises(CreditscopeError, match="no iteration in 7:9"):
        sides(store, Side("run", 7, 9), late)
    with pytest.raises(CreditscopeError, match="run 'nope' not found"):
        sides(store, Side("nope"), late)


@pytest.mark.parametrize("text", ["3:x", "5:2", "a", "1:2:3"])
def test_bad_ranges_are_one_line_errors(text: str) -> None:
    with pytest.raises(CreditscopeError, match="iteration range"):
        parse_range(text)


def test_ranges_parse() -> None:
    assert [parse_range(t) for t in ["", ":", "3", "3:", ":7", " 2 : 9 "]] == [
        (None, None), (None, None), (3, 3), (3, None), (None, 7), (2, 9)]  # fmt: skip


def test_trajectories_without_a_prompt_pair_with_nothing_and_are_counted(store: Store, tmp_path: Path) -> None:
    _load(store, tmp_path, "a", [*_group("a", 0, "g", "task", [1, 0]), *_group("a", 0, "h", None, [1, 1, 1])])
    _load(store, tmp_path, "b", _group("b", 0, "g", "task", [1, 1]))
    counts, stats = dq.summary(store, sides(store, Side("a"), Side("b")))
    assert counts["unkeyed_a"] == 3 and counts["unkeyed_b"] == 0 and counts["in_both"] == 1
    assert stats.loc["A", "trajectories"] == 2


def test_summary_and_histograms_match_the_rows(store: Store, tmp_path: Path) -> None:
    _load(store, tmp_path, "a", [*_group("a", 0, "g", "t1", [1, 0, 0, 0], 3), *_group("a", 1, "h", "t2", [1, 1])])
    _load(store, tmp_path, "b", [*_group("b", 0, "g", "t1", [0, 0], 2), *_group("b", 0, "k", "t3", [1])])
    both = sides(store, Side("a"), Side("b"), "grpo")
    _, stats = dq.summary(store, both)
    # A: t1 (4 rollouts, 3/4/3/4 steps) and t2 (2 rollouts, 3/4 steps) are... only t1 is in both.
    assert stats.loc["A", "trajectories"] == 4 and stats.loc["A", "mean_outcome"] == pytest.approx(0.25)
    assert stats.loc["A", "mean_steps"] == pytest.approx(3.5) and stats.loc["B", "zero_variance_share"] == 1.0
    _, every = dq.summary(store, both, scope="all")
    assert every.loc["A", "trajectories"] == 6 and every.loc["A", "zero_variance_share"] == pytest.approx(0.5)
    outcome = dq.histogram(store, both, "outcome").set_index(["side", "x0"])
    assert outcome.loc[("A", 0.0), "count"] == 3 and outcome.loc[("A", 1.0), "share"] == pytest.approx(0.25)
    assert outcome.loc[("B", 0.0), "share"] == 1.0
    steps = dq.histogram(store, both, "steps", scope="all").set_index(["side", "x0"])
    assert steps.loc[("A", 3.0), "count"] == 3 and steps.loc[("B", 2.0), "count"] == 2
    adv = dq.histogram(store, both, "advantage")
    assert adv.groupby("side")["share"].sum().to_numpy() == pytest.approx([1.0, 1.0])
    assert adv.loc[adv["side"] == "A", "count"].sum() == 14  # steps of t1's four rollouts


@pytest.mark.parametrize(
    ("scheme", "params"),
    [("grpo", {}), ("grpo", {"std": False}), ("grpo", {"stats_over": "steps"}), ("grpo", {"eps": 0.5}),
     ("drgrpo", {}), ("drgrpo", {"stats_over": "steps"}), ("rloo", {})],
)  # fmt: skip
def test_credit_in_sql_equals_the_credit_engine(store: Store, tmp_path: Path, scheme: str, params: dict) -> None:
    rng = np.random.default_rng(3)
    records = []
    for g in range(12):  # groups of 1..5 rollouts, outcomes in [0, 1] and some ties
        size = 1 + g % 5
        outcomes = np.round(rng.random(size), 1).tolist() if g % 3 else [1.0] * size
        records += _group("r", g % 3, f"g{g}", f"task {g % 7}", outcomes, 1 + g % 4)
    _load(store, tmp_path, "r", records)
    steps = queries.steps(store, run_id="r")
    adv = compute(steps, scheme, **params)
    engine = pd.DataFrame({"traj_id": steps["traj_id"], "adv": adv})
    keys = prompt_keys(store, "r")
    from core.credit import get_scheme

    resolved = get_scheme(scheme).resolve(params)
    in_sql = dq.group_table(store, "r", keys, dq.Credit(scheme=scheme, params=resolved)).to_pandas()
    by_engine = dq.group_table(store, "r", keys, dq.Credit(params=resolved, steps=engine)).to_pandas()
    columns = ["c_abs", "c_zero", "c_pos", "c_s", "c_s2"]
    merged = in_sql.merge(by_engine, on=["iteration", "group_id"], suffixes=("_sql", "_engine"))
    assert len(merged) == 12
    for c in columns:
        np.testing.assert_allclose(merged[f"{c}_sql"], merged[f"{c}_engine"], rtol=1e-9, atol=1e-9, err_msg=c)
    steps_total = merged["s_steps_sql"].sum()
    assert merged["c_abs_sql"].sum() == pytest.approx(np.abs(adv).sum()) and steps_total == len(steps)


def test_step_level_schemes_run_in_the_engine_within_a_limit(store: Store, tmp_path: Path, monkeypatch) -> None:
    from core.diff import pairing

    _load(store, tmp_path, "a", [*_group("a", 0, "g", "t1", [1, 0, 0]), *_group("a", 1, "h", "t1", [1, 1])])
    both = sides(store, Side("a", 0, 0), Side("a", 1, 1), "mc_return")
    _, stats = dq.summary(store, both)
    assert stats.loc["A", "credit_mean_abs"] == pytest.approx(2 / 7)  # undiscounted return: 1 on each step of r0
    monkeypatch.setattr(pairing, "ENGINE_MAX_STEPS", 5)
    with pytest.raises(CreditscopeError, match="mc_return runs in the credit engine.*a \\[0\\] has 7"):
        sides(store, Side("a", 0, 0), Side("a", 1, 1), "mc_return")
    sides(store, Side("a", 0, 0), Side("a", 1, 1), "grpo")  # outcome-level schemes have no limit


def test_rows_loaded_later_are_paired_on_the_next_look(store: Store, tmp_path: Path) -> None:
    _load(store, tmp_path, "a1", _group("a", 0, "g", "first task", [1, 0]))
    _load(store, tmp_path, "b", [*_group("b", 0, "g", "first task", [1]), *_group("b", 0, "h", "second task", [0])])
    assert dq.summary(store, sides(store, Side("a"), Side("b")))[0]["in_both"] == 1
    _load(store, tmp_path, "a2", _group("a", 1, "h", "second task", [1, 1]))  # the run grows: new prompt, new groups
    counts, stats = dq.summary(store, sides(store, Side("a"), Side("b")))
    assert counts["in_both"] == 2 and counts["gained"] == 0 and counts["lost"] == 1
    assert stats.loc["A", "trajectories"] == 4

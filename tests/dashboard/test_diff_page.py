"""The Diff and Diff pair pages on the sample database, and the Runs page's smoothing and row click."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from dashboard.figures.heatmap import CLICK_LAYER
from dashboard.figures.runs import ema
from dashboard.formatting import md_unescape


def _plotly_specs(at) -> list[dict]:
    return [json.loads(el.proto.spec) for el in _walk(at.main) if getattr(el, "type", "") == "plotly_chart"]


def _array(value) -> np.ndarray:
    """A plotly JSON array: a plain list, or plotly 6's typed array {dtype, bdata (base64)}."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).astype(float)
    return np.asarray(value, dtype=float)


def _frame_with(at, column: str):
    return next(df.value for df in at.dataframe if column in df.value.columns)


def _walk(node):
    for child in getattr(node, "children", {}).values():
        yield child
        yield from _walk(child)


EARLY_LATE = {"a": "agent", "a_it": "0:2", "b": "agent", "b_it": "7:9"}


def test_diff_page_pairs_early_and_late_iterations_from_the_url(open_page) -> None:
    at = open_page("app_pages/diff.py", **EARLY_LATE)
    assert at.title[0].value == "Diff"
    assert at.selectbox(key="diff_run_a").value == "agent" and at.text_input(key="diff_it_b").value == "7:9"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Prompts in both"] == "4" and metrics["Only in A"] == "0" and metrics["Only in B"] == "0"
    summary = _frame_with(at, "metric").set_index("metric")
    assert summary.loc["groups", "A"] == 18 and summary.loc["groups", "B"] == 18  # 6 prompts x 3 iterations each
    assert summary.loc["mean outcome", "B − A"] > 0  # the scripted policy improves with training
    table = at.dataframe(key="diff_table").value
    assert len(table) == 4 and table["prompt"].str.startswith("Find the key and reach the garden.").all()
    assert list(table["d_outcome"].abs()) == sorted(table["d_outcome"].abs(), reverse=True)
    assert {k: at.query_params[k] for k in EARLY_LATE} == EARLY_LATE and at.query_params["scheme"] == "grpo"
    hists = [s for s in _plotly_specs(at) if s["data"] and s["data"][0]["type"] == "bar"]
    assert len(hists) == 3 and all({t["name"] for t in h["data"]} == {"A", "B"} for h in hists)
    for hist in hists:
        for trace in hist["data"]:
            assert _array(trace["y"]).sum() == pytest.approx(1.0)


def test_diff_filters_sort_and_scope(open_page) -> None:
    at = open_page("app_pages/diff.py", **EARLY_LATE)
    at.selectbox(key="diff_order").set_value("length change").run()
    table = at.dataframe(key="diff_table").value
    assert list(table["d_steps"].abs()) == sorted(table["d_steps"].abs(), reverse=True)
    at.selectbox(key="diff_show").set_value("only in A").run()
    assert at.dataframe(key="diff_table").value.empty
    at.radio(key="diff_scope").set_value("all").run()
    assert not at.exception and any("all prompts of each side" in c.value for c in at.caption)


def test_a_bad_range_is_one_error_line(open_page) -> None:
    at = open_page("app_pages/diff.py", a="agent", a_it="9:1", b="agent")
    assert len(at.error) == 1 and "first iteration comes after the last" in md_unescape(at.error[0].value)
    at = open_page("app_pages/diff.py", a="agent", a_it="40:50", b="agent")
    assert "no iteration in 40:50" in md_unescape(at.error[0].value)


def test_selecting_a_table_row_opens_the_pair(open_page) -> None:
    at = open_page("app_pages/diff.py", **EARLY_LATE)
    chosen = at.dataframe(key="diff_table").value.iloc[2]
    at.session_state["diff_table"] = {"selection": {"rows": [2], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Diff pair"
    assert chosen["prompt"].startswith(at.text[0].value[:40])
    assert {k: at.query_params[k] for k in EARLY_LATE} == EARLY_LATE and at.query_params["prompt"]


def test_clicking_a_scatter_point_opens_the_pair(open_page) -> None:
    at = open_page("app_pages/diff.py", **EARLY_LATE)
    scatter = next(s for s in _plotly_specs(at) if s["data"] and s["data"][-1].get("mode") == "markers")
    keys = [row[0] for trace in scatter["data"][1:] for row in trace.get("customdata", [])]
    assert len(keys) == 4  # one point per prompt in both
    at.session_state["diff_scatter"] = {"selection": {"points": [{"customdata": [keys[1]]}]}}
    at.run()
    assert at.title[0].value == "Diff pair" and not at.exception
    assert at.query_params["prompt"] == keys[1]


def test_pair_page_shows_both_groups_on_one_scale_and_aligns_rollouts(open_page) -> None:
    # A link reopens the pair, groups included (two groups whose outcomes vary, so neither heatmap is constant).
    at = open_page("app_pages/diff_pair.py", **EARLY_LATE, prompt=_agent_key("hall"), ga="2:it2-p2", gb="8:it8-p0")
    assert at.title[0].value == "Diff pair" and not at.exception, [e.value for e in at.exception]
    assert at.text[0].value == "Find the key and reach the garden. You start in the hall."
    heatmaps = [s for s in _plotly_specs(at) if any(t.get("name") == CLICK_LAYER for t in s["data"])]
    assert len(heatmaps) == 2
    credit = [next(t for t in h["data"] if t.get("name") == "credit") for h in heatmaps]
    assert len({(c["zmin"], c["zmax"]) for c in credit}) == 1  # one colour scale
    assert at.selectbox(key="pair_group_a").value == "2:it2-p2" and at.selectbox(key="pair_group_b").value == "8:it8-p0"
    best, worst = [df.value for df in at.dataframe if "differs" in df.value.columns]
    for aligned in (best, worst):
        assert list(aligned["step"]) == list(range(len(aligned)))
        assert (aligned["differs"] == [a != b for a, b in zip(aligned["A"], aligned["B"], strict=True)]).all()
    picker = at.selectbox(key="pair_group_a")
    first = at.query_params["ga"]
    picker.select_index(len(picker.options) - 1).run()
    assert not at.exception and at.query_params["ga"] != first and at.query_params["ga"].startswith("0:")


def _agent_key(room: str) -> str:
    from core.diff import prompt_key

    return prompt_key(f"Find the key and reach the garden. You start in the {room}.")


def test_pair_page_without_a_prompt_points_to_the_diff(open_page) -> None:
    at = open_page("app_pages/diff_pair.py")
    assert "Open a prompt from the Diff page" in at.info[0].value


def test_runs_row_opens_its_groups_and_smoothing_smooths(open_page) -> None:
    at = open_page()
    raw = _plotly_specs(at)[0]["data"]
    at.slider(key="runs_smoothing").set_value(0.6).run()
    smoothed = _plotly_specs(at)[0]["data"]
    assert len(smoothed) == 2 * len(raw)  # faint raw line + smoothed line per run and panel
    solid = [t for t in smoothed if t.get("opacity") != 0.25]
    assert _array(solid[0]["y"]) == pytest.approx(ema(_array(raw[0]["y"]), 0.6))
    table = at.dataframe[0].value
    row = int(np.flatnonzero(table["run_id"].to_numpy() == "tree")[0])
    at.session_state["runs_table"] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    at.run()
    assert at.title[0].value == "Groups" and at.query_params["run"] == "tree"
    assert at.selectbox(key="run_select").value == "tree"


def test_ema_matches_tensorboard_smoothing() -> None:
    assert ema([1.0, 1.0, 1.0], 0.9).tolist() == pytest.approx([1.0, 1.0, 1.0])  # no pull towards 0
    assert ema([0.0, 10.0], 0.5).tolist() == pytest.approx([0.0, (0.25 * 0 + 0.5 * 10) / 0.75])  # debiased weights
    values = ema([2.0, np.nan, 4.0], 0.0)
    assert values[0] == 2.0 and np.isnan(values[1]) and values[2] == 4.0
    with pytest.raises(ValueError):
        ema([1.0], 1.0)


def test_an_unknown_run_in_the_url_says_what_is_shown_instead(open_page) -> None:
    at = open_page("app_pages/diff.py", a="no-such-run", b="agent")
    assert any("No run 'no-such-run'" in md_unescape(w.value) and "instead" in w.value for w in at.warning)
    assert at.selectbox(key="diff_run_a").value == "agent" and not at.error


def test_a_scheme_too_big_for_the_engine_leaves_credit_out_and_says_so(open_page, monkeypatch) -> None:
    from core.diff import pairing

    monkeypatch.setattr(pairing, "ENGINE_MAX_STEPS", 10)
    at = open_page("app_pages/diff.py", **EARLY_LATE)
    at.selectbox(key="diff_scheme").set_value("gigpo").run()
    assert not at.exception and any("gigpo runs in the credit engine" in w.value for w in at.warning)
    assert {m.label: m.value for m in at.metric}["Prompts in both"] == "4"
    summary = _frame_with(at, "metric").set_index("metric")
    assert summary.loc["credit: mean |advantage| per step"].isna().all()
    assert any("No advantage histogram" in c.value for c in at.caption)

"""Each page renders on the sample database, and the navigation between them carries the selection."""

from __future__ import annotations

import html
import json
from pathlib import Path

from core.ingest.runner import ingest
from core.store.database import Store
from dashboard import resources as res
from dashboard.figures.heatmap import CLICK_LAYER, MIN_ROW_PX


def _plotly_specs(at) -> list[dict]:
    """Plotly charts are opaque to AppTest (UnknownElement); their figure JSON is in the proto."""
    return [json.loads(el.proto.spec) for el in _walk(at.main) if getattr(el, "type", "") == "plotly_chart"]


def _walk(node):
    for child in getattr(node, "children", {}).values():
        yield child
        yield from _walk(child)


def test_runs_page_lists_runs_and_plots_curves(open_page) -> None:
    at = open_page()
    assert at.title[0].value == "Runs"
    table = at.dataframe[0].value
    assert {"agent", "arithmetic", "tree", "trees_vine"} <= set(table["run_id"])
    specs = _plotly_specs(at)
    assert specs and {t["name"] for t in specs[0]["data"]} == set(at.multiselect[0].value)


def test_groups_page_filters_and_opens_a_group(open_page) -> None:
    at = open_page("app_pages/groups.py", run="arithmetic", iteration="2")
    table = at.dataframe[0].value
    assert set(table["iteration"]) == {2} and len(table) == 6
    at.text_input(key="groups_search").set_value("Start with").run()
    assert len(at.dataframe[0].value) == 6
    at.text_input(key="groups_search").set_value("no such text at all").run()
    assert at.dataframe[0].value.empty
    at.text_input(key="groups_search").set_value("").run()
    chosen = at.dataframe[0].value.iloc[3]
    at.session_state["groups_table"] = {"selection": {"rows": [3], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert at.title[0].value == "Group"
    assert at.query_params["group"] == chosen["group_id"]


def _trace(spec: dict, name: str) -> dict:
    return next(t for t in spec["data"] if t.get("name") == name)


def _heatmaps(at) -> list[dict]:
    return [s for s in _plotly_specs(at) if any(t.get("name") == CLICK_LAYER for t in s["data"])]


def test_group_page_heatmap_carries_trajectory_ids_and_steps(open_page) -> None:
    at = open_page("app_pages/group.py", run="tree", iteration="3", group="it3-p1")
    layer = _trace(_heatmaps(at)[0], CLICK_LAYER)
    assert {cell[0] for cell in layer["customdata"]} == {f"it3-p1-r{k}" for k in range(8)}
    steps = {int(cell[1]) for cell in layer["customdata"]}
    assert steps == set(range(max(steps) + 1)) and max(steps) >= 3
    assert at.metric[0].value == "8"


def _html(at) -> str:
    return "".join(el.proto.body for el in _walk(at.main) if getattr(el, "type", "") == "html")


def test_trajectory_page_shows_steps_as_text_and_walks_the_group(open_page) -> None:
    at = open_page("app_pages/trajectory.py", run="arithmetic", traj="it0-p0-r3")
    steps = res.trajectory(str(res.db_path()), "arithmetic", "it0-p0-r3")[1]
    at.selectbox(key="traj_token_mode").set_value("off").run()  # plain text (the token view has its own tests)
    body = _html(at)
    for action in steps["action"]:
        assert f"<pre>{html.escape(action)}</pre>" in body  # each step's full action, escaped, in monospace
    assert body.count("<details") == len(steps)
    assert at.button(key="traj_prev").disabled is False
    at.button(key="traj_next").click().run()
    assert at.query_params["traj"] == "it0-p0-r4"


def test_log_text_is_rendered_as_text_not_html(tmp_path: Path, open_page) -> None:
    evil = "<script>alert('x')</script> **bold** <b>tag</b>"
    path = tmp_path / "evil.jsonl"
    path.write_text(json.dumps({"trajectory": "t0", "group": "g", "outcome": 1.0, "prompt": evil,
                                "steps": [{"action": evil, "state": evil}]}) + "\n")  # fmt: skip
    db = tmp_path / "evil.duckdb"
    store = Store.open(db)
    ingest(store, [str(path)], run="evil")
    store.close()
    at = open_page("app_pages/trajectory.py", db=db, run="evil", traj="t0")
    assert "Prompt:\n" + evil in [t.value for t in at.text]
    assert all(evil not in m.value for m in at.markdown)
    body = _html(at)
    assert "<script>" not in body and "<b>tag" not in body and html.escape(evil) in body
    group = open_page("app_pages/group.py", db=db, run="evil", iteration="0", group="g")
    hover = _trace(_heatmaps(group)[0], CLICK_LAYER)["hovertext"][0]
    assert "<script>" not in hover and "&lt;script&gt;" in hover


def test_unknown_trajectory_says_so(open_page) -> None:
    at = open_page("app_pages/trajectory.py", run="arithmetic", traj="nope")
    assert "No trajectory" in at.error[0].value


def test_empty_database_points_to_ingest(tmp_path: Path, open_page) -> None:
    db = tmp_path / "empty.duckdb"
    Store.open(db).close()
    at = open_page(db=db)
    assert "No runs yet" in at.info[0].value


def _open_compare_tab(at, tab: str):  # noqa: ANN001, ANN202 - AppTest
    """Switch the Compare page to ``tab`` (hidden tabs draw nothing) and rerun."""
    at.session_state["cmp_view"] = tab
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_compare_page_ranks_schemes_against_labels(open_page) -> None:
    at = open_page("app_pages/compare.py", run="arithmetic")
    heatmaps = _heatmaps(at)
    assert len(heatmaps) == 3 + 1  # three schemes on one scale, plus the difference view
    zmax = {_trace(s, "credit")["zmax"] for s in heatmaps[:3]}
    assert len(zmax) == 1
    assert not [df for df in at.dataframe if "auc" in df.value.columns]  # a hidden tab does no work
    _open_compare_tab(at, "Ranking vs labels")
    ranking = next(df.value for df in at.dataframe if "auc" in df.value.columns)
    assert len(ranking) >= 19 and ranking["auc"].dropna().between(0, 1).all()
    assert ranking["auc"].iloc[0] == ranking["auc"].max()
    assert not _heatmaps(at)


def test_compare_tabs_keep_their_choices_while_hidden(open_page) -> None:
    at = open_page("app_pages/compare.py", run="tree")
    group = at.selectbox(key="cmp_group").options[2]
    at.selectbox(key="cmp_group").set_value(group).run()
    at.selectbox(key="cmp_diff_b").set_value(at.selectbox(key="cmp_diff_b").options[2]).run()
    _open_compare_tab(at, "Scatter")
    at.selectbox(key="cmp_y").set_value(at.selectbox(key="cmp_y").options[0]).run()
    _open_compare_tab(at, "Group heatmaps")
    assert at.selectbox(key="cmp_group").value == group
    assert at.selectbox(key="cmp_diff_b").value == at.selectbox(key="cmp_diff_b").options[2]
    _open_compare_tab(at, "Scatter")
    assert at.selectbox(key="cmp_y").value == at.selectbox(key="cmp_y").options[0]


def test_compare_scatter_click_opens_the_step(open_page) -> None:
    at = _open_compare_tab(open_page("app_pages/compare.py", run="tree"), "Scatter")
    at.session_state["cmp_scatter"] = {"selection": {"points": [{"customdata": ["it2-p0-r3", "1"]}]}}
    at.run()
    assert not at.exception
    assert at.title[0].value == "Trajectory" and at.query_params["traj"] == "it2-p0-r3"


def test_compare_page_explains_missing_inputs(open_page) -> None:
    at = open_page("app_pages/compare.py", run="agent")
    at.selectbox(key="cmp0_scheme").set_value("prm").run()
    assert any("rescore the steps with a PRM" in w.value for w in at.warning)


def test_big_groups_keep_a_labelled_row_per_rollout(open_page) -> None:
    at = open_page("app_pages/group.py", run="trees_vine", iteration="0")
    heat = _heatmaps(at)[0]
    labels = heat["layout"]["yaxis"]["ticktext"]
    assert len(labels) == 124 and all(" · R=" in label for label in labels)  # rollout id and outcome on every row
    assert heat["layout"]["height"] == 124 * MIN_ROW_PX + 150
    assert "124 rollouts" in heat["layout"]["title"]["text"]


def test_compare_warns_when_groups_are_singletons(open_page) -> None:
    at = _open_compare_tab(open_page("app_pages/compare.py", run="samples_prm800k"), "Ranking vs labels")
    assert any("single trajectory" in w.value for w in at.warning)

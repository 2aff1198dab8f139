"""The "steps with PRM score below τ" filter on the Groups and Trajectory pages (AppTest)."""

from __future__ import annotations

from core.store import queries
from dashboard import resources as res


def _walk(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


def _details(at) -> int:
    return sum(el.proto.body.count("<details") for el in _walk(at.main) if getattr(el, "type", "") == "html")


def test_groups_page_counts_steps_below_tau_per_group(open_page) -> None:
    at = open_page("app_pages/groups.py", run="arithmetic", iteration="2")
    assert "steps prm < 0.5" not in at.dataframe[0].value.columns
    at.toggle(key="groups_prm_filter").set_value(True).run()
    at.number_input(key="groups_prm_tau").set_value(0.3).run()
    table = at.dataframe[0].value
    steps = queries.steps(res.get_store(res.db_path()), run_id="arithmetic", iteration=2)
    expected = steps.assign(below=steps["prm"] < 0.3).groupby("group_id")["below"].sum()
    got = table.set_index("group_id")["steps prm < 0.3"]
    assert got.to_dict() == expected.loc[got.index].to_dict() and got.sum() > 0
    assert (table["steps without prm"] == 0).all()


def test_trajectory_page_lists_only_steps_below_tau_with_counts(open_page) -> None:
    at = open_page("app_pages/trajectory.py", run="arithmetic", traj="it0-p0-r0")
    steps = res.trajectory(str(res.db_path()), "arithmetic", "it0-p0-r0")[1]
    assert _details(at) == len(steps)
    at.toggle(key="traj_prm_filter").set_value(True).run()
    below = int((steps["prm"] < 0.5).sum())
    assert 0 < below < len(steps)
    assert _details(at) == below
    shown = f"{below} of {len(steps)} steps of this rollout have a PRM score below 0.5"
    assert any(shown in caption.value for caption in at.caption)


def test_trajectory_filter_without_scores_says_how_to_get_them(open_page) -> None:
    at = open_page("app_pages/trajectory.py", run="agent", traj="it0-p0-r0")
    at.toggle(key="traj_prm_filter").set_value(True).run()
    assert any("rescore" in info.value for info in at.info)
    assert not at.exception

"""Where drill-in clicks land: the Trajectory page of a rollout, opened at a step (``step=`` in the URL)."""

from __future__ import annotations

from collections.abc import Mapping

from dashboard import resources as res

TRAJECTORY_PAGE = "app_pages/trajectory.py"


def clicked_step(event: Mapping | None) -> tuple[str, int | None] | None:
    """The ``(traj_id, step_idx)`` of the first selected point whose ``customdata`` is ``[traj_id, step]``.

    Heatmap click layers and the Compare scatter carry that pair; other points (tree nodes carry a bare
    node id, edges nothing) are skipped. Item access works on streamlit's event and on a plain dict.
    """
    points = event.get("selection", {}).get("points", []) if isinstance(event, Mapping) else []
    for point in points:
        custom = point.get("customdata")
        if isinstance(custom, list | tuple) and len(custom) == 2:
            step = str(custom[1])
            return str(custom[0]), int(step) if step.isdigit() else None
    return None


def open_trajectory(traj_id: str, step: int | None = None, run: str | None = None) -> None:
    """Switch to the Trajectory page of ``traj_id`` (in ``run``, else the current run), at ``step`` if given."""
    values: dict[str, object] = {"traj": traj_id, "step": step}
    if run is not None:
        values["run"] = run
    res.open_page(TRAJECTORY_PAGE, **values)

"""A URL naming an unknown run, group or trajectory, or a bad iteration or step, says what is shown instead."""

from __future__ import annotations

import re

import pytest


def plain(markdown: str) -> str:
    """The text a Markdown element shows (our messages escape punctuation with backslashes)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def messages(elements) -> list[str]:  # noqa: ANN001 - AppTest element sequences
    return [plain(e.value) for e in elements]


def test_unknown_run_says_which_run_is_shown_instead(open_page) -> None:
    for page in ("app_pages/groups.py", "app_pages/group.py", "app_pages/compare.py", "app_pages/rescore.py"):
        at = open_page(page, run="no-such-run")
        assert "No run 'no-such-run' in this database; showing run 'agent' instead." in messages(at.warning), page
    at = open_page("app_pages/groups.py", run="arithmetic")
    assert not at.warning


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("abc", "Iteration 'abc' in the URL is not a number"),
        ("-1", "This run has no iteration -1 (its iterations: 0 to 9)"),
        ("99999999999999999999", "This run has no iteration 99999999999999999999 (its iterations: 0 to 9)"),
    ],
)
def test_bad_iteration_says_what_is_shown_instead(open_page, raw: str, problem: str) -> None:
    group = open_page("app_pages/group.py", run="arithmetic", iteration=raw)
    assert f"{problem}; showing iteration 0 instead." in messages(group.warning)
    assert group.selectbox(key="group_it").value == 0 and group.query_params["iteration"] == "0"
    groups = open_page("app_pages/groups.py", run="arithmetic", iteration=raw)
    assert f"{problem}; showing all iterations instead." in messages(groups.warning)
    assert groups.selectbox(key="groups_iteration").value == "all" and "iteration" not in groups.query_params


def test_unknown_group_says_which_group_is_shown(open_page) -> None:
    at = open_page("app_pages/group.py", run="arithmetic", iteration="2", group="nope")
    assert "No group 'nope' in iteration 2; showing 'it2-p0' instead." in messages(at.warning)
    assert at.query_params["group"] == "it2-p0"


def test_unknown_run_or_trajectory_on_the_trajectory_page(open_page) -> None:
    at = open_page("app_pages/trajectory.py", run="no-such-run", traj="t0")
    assert messages(at.error) == ["No run 'no-such-run' in this database; nothing is shown. "
                                  "Pick a run and a group on the Groups page."]  # fmt: skip
    at = open_page("app_pages/trajectory.py", run="arithmetic", traj="nope")
    assert messages(at.error)[0].startswith("No trajectory 'nope' in run 'arithmetic'")


@pytest.mark.parametrize("raw", ["abc", "-1", "99"])
def test_bad_step_shows_the_trajectory_from_the_top(open_page, raw: str) -> None:
    at = open_page("app_pages/trajectory.py", run="arithmetic", traj="it0-p0-r3", step=raw)
    (warning,) = messages(at.warning)
    assert raw in warning and warning.endswith("showing the trajectory from the top.")

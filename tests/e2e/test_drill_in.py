"""Every promised click, in chromium: the mouse goes to where the browser drew the element, and we check where it lands.

Plot positions come from the plot's own axes in the page (see helpers), never from guessed pixels. Table
rows are clicked on their row marker, at the grid's fixed row height (35 px), as Streamlit's own tests do.
"""

from __future__ import annotations

import html
import re

import pytest
from playwright.sync_api import Page, expect

from dashboard.figures.compare import SCATTER_TRACE
from dashboard.figures.heatmap import CLICK_LAYER

from .helpers import chart, click_point, customdata, isolated_point, no_exception, open_url, query, wait_idle
from .showcase import SHOWCASE_GROUP, SHOWCASE_RUN

pytestmark = pytest.mark.e2e
ROW_PX = 35


@pytest.fixture(autouse=True)
def _big_viewport(page: Page) -> None:
    page.set_viewport_size({"width": 1400, "height": 1000})


def assert_opened_at(page: Page, traj: str, step: int) -> None:
    """The Trajectory page of ``traj`` is shown with ``step`` in the URL, highlighted, open and on screen."""
    page.wait_for_url(re.compile(r"/trajectory\?"), timeout=60_000)
    wait_idle(page)
    assert query(page)["traj"] == traj and query(page)["step"] == str(step)
    row = page.locator(f"#cs-step-{step}")
    expect(row).to_have_class(re.compile(r"\bcs-current\b"))
    expect(row).to_have_attribute("open", "")
    expect(row).to_be_in_viewport()
    expect(page.locator(".cs-current")).to_have_count(1)
    no_exception(page)


def test_group_heatmap_cell_opens_its_trajectory_at_that_step(page: Page, served_app: str) -> None:
    open_url(page, f"{served_app}/group?run=tree&iteration=3&group=it3-p1")
    plot = chart(page, "group_heatmap")
    cells = customdata(plot, CLICK_LAYER)
    target = [t for t, s in cells if s == "2"][3], "2"  # the fourth row's third step
    click_point(plot, CLICK_LAYER, list(target))
    assert_opened_at(page, target[0], 2)


def test_a_deep_cell_of_a_64_rollout_group_opens_scrolled_to_its_step(page: Page, served_app: str) -> None:
    open_url(page, f"{served_app}/group?run={SHOWCASE_RUN}&iteration=0&group={SHOWCASE_GROUP}")
    plot = chart(page, "group_heatmap")
    target = [t for t, s in customdata(plot, CLICK_LAYER) if s == "33"][5]
    click_point(plot, CLICK_LAYER, [target, "33"])
    assert_opened_at(page, target, 33)  # step 33 of 40 is far below the fold: the page scrolled to it


def test_compare_heatmap_cell_opens_its_step(page: Page, served_app: str) -> None:
    open_url(page, f"{served_app}/compare?run=tree")
    plot = chart(page, "cmp_heat_grpo")
    target = [t for t, s in customdata(plot, CLICK_LAYER) if s == "1"][2]
    click_point(plot, CLICK_LAYER, [target, "1"])
    assert_opened_at(page, target, 1)
    assert query(page)["run"] == "tree"


def test_compare_scatter_point_opens_its_step(page: Page, served_app: str) -> None:
    open_url(page, f"{served_app}/compare?run=tree")
    page.get_by_role("tab", name="Scatter").click()
    plot = chart(page, "cmp_scatter")
    expect(plot).to_be_visible()
    traj, step = isolated_point(plot, SCATTER_TRACE)
    click_point(plot, SCATTER_TRACE, [traj, step])
    assert_opened_at(page, traj, int(step))


def test_compare_tab_choices_survive_switching_tabs_with_the_mouse(page: Page, served_app: str) -> None:
    # Hidden Compare tabs draw nothing (they rerun on a switch); a choice made in one must still be there.
    open_url(page, f"{served_app}/compare?run=tree")
    page.get_by_role("tab", name="Agreement").click()
    wait_idle(page)
    page.get_by_text("sign_agreement", exact=True).click()
    wait_idle(page)
    expect(page.get_by_role("radio", name="sign_agreement")).to_be_checked()
    page.get_by_role("tab", name="Scatter").click()
    wait_idle(page)
    expect(chart(page, "cmp_scatter")).to_be_visible()
    expect(page.get_by_role("radio", name="sign_agreement")).to_have_count(0)  # the Agreement tab drew nothing
    page.get_by_role("tab", name="Agreement").click()
    wait_idle(page)
    expect(page.get_by_role("radio", name="sign_agreement")).to_be_checked()
    no_exception(page)


def _open_tab(page: Page, url: str, tab: str) -> None:
    open_url(page, url)
    page.get_by_role("tab", name=tab).click()
    wait_idle(page)


def _hover_lines(plot, trace: str, node: str) -> list[str]:  # noqa: ANN001 - a playwright Locator
    text = plot.evaluate(
        "(gd, [name, node]) => { const t = gd.data.find(t => t.name === name);"
        " return t.hovertext[Array.from(t.customdata).indexOf(node)]; }",
        [trace, node],
    )
    return [html.unescape(line) for line in text.split("<br>")]


def test_tree_node_click_shows_that_node_and_opens_a_trajectory_at_its_step(page: Page, served_app: str) -> None:
    _open_tab(page, f"{served_app}/group?run=tree&iteration=0&group=it0-p0", "Tree")
    plot = chart(page, "group_tree")
    trace = "nodes (colour: advantage)"
    node = isolated_point(plot, trace)
    click_point(plot, trace, node)
    wait_idle(page)
    action = _hover_lines(plot, trace, node)[1]  # the hover box's second line is the node's action
    code = page.get_by_test_id("stCode").first
    expect(code).to_contain_text(action)
    header = _hover_lines(plot, trace, node)[0]
    step = int(re.search(r"steps? (\d+)", header).group(1))
    # The first trajectory through the node opens at the node's (first) step.
    trajs = page.locator(".st-key-group_tree_trajs [data-testid='stDataFrameResizable']")
    trajs.scroll_into_view_if_needed()
    trajs.click(position={"x": 15, "y": ROW_PX + ROW_PX // 2})
    page.wait_for_url(re.compile(r"/trajectory\?"), timeout=60_000)
    wait_idle(page)
    assert query(page)["step"] == str(step)
    expect(page.locator(f"#cs-step-{step}")).to_have_class(re.compile("cs-current"))


def test_state_graph_node_click_shows_that_state(page: Page, served_app: str) -> None:
    _open_tab(page, f"{served_app}/group?run=agent&iteration=0&group=it0-p0", "State graph")
    plot = chart(page, "group_state_graph")
    trace = "nodes (colour: advantage)"
    node = isolated_point(plot, trace)
    click_point(plot, trace, node)
    wait_idle(page)
    state_line = _hover_lines(plot, trace, node)[1]
    expect(page.get_by_test_id("stCode").filter(has_text="State:").first).to_contain_text(state_line)
    no_exception(page)


def test_table_rows_open_the_group_and_the_trajectory(page: Page, served_app: str) -> None:
    open_url(page, f"{served_app}/groups?run=arithmetic&iteration=2")
    grid = page.locator(".st-key-groups_table [data-testid='stDataFrameResizable']")
    grid.click(position={"x": 15, "y": ROW_PX + 3 * ROW_PX + ROW_PX // 2})  # the fourth row
    page.wait_for_url(re.compile(r"/group\?"), timeout=60_000)
    wait_idle(page)
    assert query(page)["group"] == "it2-p3" and query(page)["iteration"] == "2"  # groups are listed by id

    rollouts = page.locator(".st-key-group_trajs [data-testid='stDataFrameResizable']")
    rollouts.scroll_into_view_if_needed()
    rollouts.click(position={"x": 15, "y": ROW_PX + 2 * ROW_PX + ROW_PX // 2})  # the third rollout
    page.wait_for_url(re.compile(r"/trajectory\?"), timeout=60_000)
    wait_idle(page)
    assert query(page)["traj"] == "it2-p3-r2" and "step" not in query(page)
    no_exception(page)


def test_keys_walk_steps_and_rollouts(page: Page, served_app: str) -> None:
    open_url(page, f"{served_app}/trajectory?run={SHOWCASE_RUN}&traj={SHOWCASE_GROUP}-r0&step=3")
    expect(page.locator("#cs-step-3")).to_have_class(re.compile("cs-current"))

    def press(key: str) -> None:
        before = page.url
        page.locator("h1").click()  # keys go to the page, not to a focused input
        page.keyboard.press(key)
        page.wait_for_url(lambda url: url != before, timeout=60_000)
        wait_idle(page)

    press("j")
    assert query(page)["step"] == "4"
    expect(page.locator("#cs-step-4")).to_have_class(re.compile("cs-current"))
    press("j")
    press("k")
    assert query(page)["step"] == "4"
    press("n")
    nxt = query(page)["traj"]
    assert nxt != f"{SHOWCASE_GROUP}-r0" and "step" not in query(page)
    expect(page.get_by_text(f"· {nxt}", exact=False)).to_be_visible()
    press("p")
    assert query(page)["traj"] == f"{SHOWCASE_GROUP}-r0"
    no_exception(page)


def test_jump_expand_collapse_and_group_links(page: Page, served_app: str) -> None:
    open_url(page, f"{served_app}/trajectory?run={SHOWCASE_RUN}&traj={SHOWCASE_GROUP}-r0")
    steps = page.locator(".cs-steps details")
    expect(steps).to_have_count(40)
    expect(page.locator(".cs-steps details[open]")).to_have_count(0)
    # Collapsed, 40 steps fit in about two screens.
    height = page.locator(".cs-steps").evaluate("el => el.getBoundingClientRect().height")
    assert height <= 2 * 1000, height

    jump = page.get_by_label("Jump to step")
    jump.fill("36")
    jump.press("Enter")
    page.wait_for_url(re.compile(r"step=36"), timeout=60_000)
    wait_idle(page)
    expect(page.locator("#cs-step-36")).to_be_in_viewport()

    page.get_by_role("button", name="expand all").click()
    wait_idle(page)
    expect(page.locator(".cs-steps details[open]")).to_have_count(40)
    page.get_by_role("button", name="collapse all").click()
    wait_idle(page)
    expect(page.locator(".cs-steps details[open]")).to_have_count(0)
    page.locator("#cs-step-5 summary").click()  # a row opens in place, in the browser
    expect(page.locator("#cs-step-5")).to_have_attribute("open", "")
    expect(page.locator("#cs-step-5 pre").last).to_be_visible()

    page.get_by_role("link", name="this rollout's group").click()
    page.wait_for_url(re.compile(r"/group\?"), timeout=60_000)
    wait_idle(page)
    assert query(page)["group"] == SHOWCASE_GROUP and query(page)["run"] == SHOWCASE_RUN


def test_next_group_button_opens_the_first_rollout_of_the_next_group(page: Page, served_app: str) -> None:
    open_url(page, f"{served_app}/trajectory?run=arithmetic&traj=it2-p3-r5")
    page.locator(".st-key-traj_next_group button").click()
    page.wait_for_url(re.compile(r"traj=it2-p4-r0"), timeout=60_000)
    wait_idle(page)
    assert query(page)["group"] == "it2-p4"
    expect(page.get_by_text("arithmetic · iteration 2 · group it2-p4", exact=False)).to_be_visible()


def test_bad_url_says_what_is_shown_instead_in_the_browser(page: Page, served_app: str) -> None:
    open_url(page, f"{served_app}/group?run=no-such-run&iteration=abc")
    expect(page.get_by_text("No run 'no-such-run' in this database; showing run 'agent' instead.")).to_be_visible()
    open_url(page, f"{served_app}/group?run=arithmetic&iteration=-1")
    expect(
        page.get_by_text("This run has no iteration -1 (its iterations: 0 to 9); showing iteration 0 instead.")
    ).to_be_visible()
    open_url(page, f"{served_app}/groups?run=arithmetic&iteration=99999999999999999999")
    shown = "This run has no iteration 99999999999999999999 (its iterations: 0 to 9); showing all iterations instead."
    expect(page.get_by_text(shown)).to_be_visible()
    no_exception(page)

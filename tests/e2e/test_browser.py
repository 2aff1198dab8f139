"""A real browser walks Runs → Groups → Group → Trajectory on the served demo database."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .helpers import wait_idle

pytestmark = pytest.mark.e2e


def _wait_idle(page: Page) -> None:
    wait_idle(page)  # generous waits: the machine may be busy


def _no_exception(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_navigate_runs_groups_group_trajectory(page: Page, served_app: str) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_viewport_size({"width": 1400, "height": 1000})

    page.goto(served_app)
    _wait_idle(page)
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    _no_exception(page)

    page.get_by_test_id("stSidebarNav").get_by_text("Groups").click()
    _wait_idle(page)
    expect(page.get_by_role("heading", name="Groups")).to_be_visible()
    _no_exception(page)
    # Selecting a row in the glide-data-grid canvas: click its row marker (Streamlit's own e2e approach).
    grid = page.locator(".st-key-groups_table [data-testid='stDataFrameResizable']")
    expect(grid).to_be_visible()
    grid.click(position={"x": 15, "y": 35 + 17})
    page.wait_for_url(re.compile(r"/group\?"), timeout=30_000)
    _wait_idle(page)
    expect(page.get_by_role("heading", name="Group", exact=True)).to_be_visible()
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    _no_exception(page)

    rollouts = page.locator(".st-key-group_trajs [data-testid='stDataFrameResizable']")
    rollouts.scroll_into_view_if_needed()
    rollouts.click(position={"x": 15, "y": 35 + 17})
    page.wait_for_url(re.compile(r"/trajectory\?"), timeout=30_000)
    _wait_idle(page)
    expect(page.get_by_role("heading", name="Trajectory")).to_be_visible()
    expect(page.locator("#cs-step-0")).to_be_visible()
    _no_exception(page)

    page.locator(".st-key-traj_next button").click()
    _wait_idle(page)
    _no_exception(page)
    assert "traj=" in page.url
    assert not errors, errors


def test_deep_link_reopens_the_same_view(page: Page, served_app: str) -> None:
    page.goto(f"{served_app}/trajectory?run=tree&traj=it3-p1-r2")
    _wait_idle(page)
    expect(page.get_by_text("tree · iteration 3 · group it3-p1")).to_be_visible()
    _no_exception(page)


def test_runs_link_opens_the_runs_page(page: Page, served_app: str) -> None:
    # Streamlit serves the default page only at "/"; /runs is kept working by an alias page.
    page.goto(f"{served_app}/runs")
    _wait_idle(page)
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    expect(page.get_by_text("Page not found")).to_have_count(0)
    _no_exception(page)

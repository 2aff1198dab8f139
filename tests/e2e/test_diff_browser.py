"""A real browser: a click on a Diff scatter point lands on that pair; a click on a Runs row opens its groups."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, expect

from core.store import queries
from core.store.database import Store

pytestmark = pytest.mark.e2e


def _wait_idle(page: Page) -> None:
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=30_000)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0)


def test_clicking_a_scatter_point_opens_the_pair(page: Page, served_app: str) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{served_app}/diff?a=agent&a_it=0:2&b=agent&b_it=7:9")
    _wait_idle(page)
    expect(page.get_by_role("heading", name="Diff", exact=True)).to_be_visible()
    page.get_by_role("tab", name="Outcome A vs B").click()
    points = page.locator(".st-key-diff_scatter .scatterlayer .trace .points path")
    expect(points.first).to_be_visible(timeout=30_000)
    assert points.count() == 4  # one point per prompt in both sides
    box = points.nth(0).bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    expect(page.locator(".hoverlayer .hovertext").first).to_contain_text("Find the key and reach the garden")
    hovered = page.locator(".hoverlayer .hovertext").first.text_content() or ""
    page.mouse.click(x, y)
    page.wait_for_url(re.compile(r"/diff_pair\?"), timeout=30_000)
    _wait_idle(page)
    expect(page.get_by_role("heading", name="Diff pair")).to_be_visible()
    query = parse_qs(urlparse(page.url).query)
    assert query["a"] == ["agent"] and query["a_it"] == ["0:2"] and query["b_it"] == ["7:9"] and query["prompt"]
    room = re.search(r"start in the (\w+)", hovered)
    assert room is not None
    expect(page.get_by_text(f"You start in the {room.group(1)}.", exact=False).first).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(2)  # the two groups' heatmaps
    expect(page.get_by_test_id("stException")).to_have_count(0)
    assert not errors, errors


def test_clicking_a_runs_row_opens_its_groups(page: Page, served_app: str, sample_db_path: Path) -> None:
    store = Store.open(sample_db_path, read_only=True)
    try:
        first_run = queries.runs_summary(store)["run_id"].iloc[0]
    finally:
        store.close()
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(served_app)
    _wait_idle(page)
    grid = page.locator(".st-key-runs_table [data-testid='stDataFrameResizable']")
    expect(grid).to_be_visible()
    box = grid.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 15, box["y"] + 35 + 17)  # the first row's selection marker
    page.mouse.click(box["x"] + 15, box["y"] + 35 + 17)
    page.wait_for_url(re.compile(r"/groups\?"), timeout=30_000)
    _wait_idle(page)
    expect(page.get_by_role("heading", name="Groups")).to_be_visible()
    assert parse_qs(urlparse(page.url).query)["run"] == [first_run]
    expect(page.get_by_test_id("stException")).to_have_count(0)

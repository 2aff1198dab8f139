"""Plots follow the theme: with the system in dark mode every chart (heatmap, tree, state graph) is drawn dark."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page

from .helpers import chart, open_url, wait_idle

pytestmark = pytest.mark.e2e


def luminance(colour: str) -> float:
    """Relative brightness 0..1 of a CSS colour given as #rrggbb or rgb(...)."""
    if colour.startswith("#"):
        r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    else:
        r, g, b = (int(v) for v in re.findall(r"\d+", colour)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def plot_colours(page: Page, key: str) -> tuple[float, float, float]:
    """Brightness of the chart's paper, plot area and text."""
    plot = chart(page, key)
    plot.scroll_into_view_if_needed()
    paper, area, text = plot.evaluate(
        "gd => [gd._fullLayout.paper_bgcolor, gd._fullLayout.plot_bgcolor, gd._fullLayout.font.color]"
    )
    return luminance(paper), luminance(area), luminance(text)


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_charts_and_step_list_follow_the_system_theme(browser: Browser, served_app: str, scheme: str) -> None:
    context = browser.new_context(color_scheme=scheme, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        open_url(page, f"{served_app}/group?run=agent&iteration=0&group=it0-p0")
        app = luminance(page.get_by_test_id("stApp").evaluate("el => getComputedStyle(el).backgroundColor"))
        assert (app < 0.25) if scheme == "dark" else (app > 0.9)
        for tab, key in [("Heatmap", "group_heatmap"), ("Tree", "group_tree"), ("State graph", "group_state_graph")]:
            page.get_by_role("tab", name=tab).click()
            wait_idle(page)
            paper, area, text = plot_colours(page, key)
            assert abs(paper - app) < 0.1 and abs(area - app) < 0.1, (tab, paper, area, app)
            assert abs(text - app) > 0.3, (tab, text, app)  # the labels stay readable on that background
        open_url(page, f"{served_app}/trajectory?run=agent&traj=it0-p0-r0")
        row = page.locator("#cs-step-0 summary")
        colour = luminance(row.evaluate("el => getComputedStyle(el).color"))
        assert abs(colour - app) > 0.5
    finally:
        context.close()

"""The PRM step filter in chromium: the mouse switches it on where the browser drew it, on Groups and Trajectory."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .helpers import no_exception, open_url, wait_idle

pytestmark = pytest.mark.e2e
LABEL = "Steps with PRM score below τ"


def test_groups_filter_counts_steps_below_tau(page: Page, served_app: str) -> None:
    open_url(page, f"{served_app}/groups?run=arithmetic&iteration=2")
    expect(page.get_by_text(re.compile(r"steps in \d+ of the \d+ groups shown"))).to_have_count(0)
    page.get_by_text(LABEL).click()
    wait_idle(page)
    expect(
        page.get_by_text(re.compile(r"[1-9]\d* steps in [1-9]\d* of the \d+ groups shown score below 0.5"))
    ).to_be_visible()
    no_exception(page)


def test_trajectory_filter_lists_only_the_steps_below_tau(page: Page, served_app: str) -> None:
    open_url(page, f"{served_app}/trajectory?run=arithmetic&traj=it0-p0-r0")
    steps = page.locator(".cs-steps details")
    expect(steps).to_have_count(5)
    page.get_by_text(LABEL).click()
    wait_idle(page)
    expect(steps).to_have_count(3)  # the three steps the logged PRM scores below 0.5
    expect(page.get_by_text("3 of 5 steps of this rollout have a PRM score below 0.5", exact=False)).to_be_visible()
    no_exception(page)

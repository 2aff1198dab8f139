"""The Rescore page in chromium: the mouse picks the Ray engine and a partial scope where the browser drew them."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .helpers import no_exception, open_url, wait_idle

pytestmark = pytest.mark.e2e


def test_choosing_the_ray_engine_shows_its_pool_settings(page: Page, served_app: str) -> None:
    open_url(page, f"{served_app}/rescore?run=arithmetic")
    workers = page.locator(".st-key-prm_workers input")
    expect(workers).to_have_count(0)  # local engine: no pool settings
    page.locator(".st-key-prm_engine").get_by_text("ray", exact=True).click()
    wait_idle(page)
    expect(workers).to_have_value("2")
    expect(page.locator(".st-key-prm_cpus input")).to_have_value("0.50")
    expect(page.locator(".st-key-prm_address input")).to_be_visible()
    no_exception(page)


def test_a_partial_scope_says_what_it_will_leave_before_scoring(page: Page, served_app: str) -> None:
    open_url(page, f"{served_app}/rescore?run=arithmetic")
    note = page.get_by_text(re.compile(r"This group is \d+ of the run's \d+ trajectories\. After scoring"))
    expect(note).to_have_count(0)
    page.locator(".st-key-prm_scope").get_by_text("group", exact=True).click()
    wait_idle(page)
    expect(note).to_be_visible()
    expect(page.get_by_text(re.compile(r"keep their logged scores \([\d,]+ steps, marked"))).to_be_visible()
    no_exception(page)

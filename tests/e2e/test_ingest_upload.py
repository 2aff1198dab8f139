"""A real browser uploads two different files with one name through the Ingest page's file widget: both load."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def _native(run: str, n: int) -> bytes:
    lines = [{"run": run, "trajectory": f"t{i}", "group": "g", "outcome": 1.0, "steps": [{"action": "a"}]}
             for i in range(n)]  # fmt: skip
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def test_upload_widget_loads_both_files_with_one_name(page: Page, served_app: str) -> None:
    page.goto(f"{served_app}/ingest")
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=30_000)
    files = [
        {"name": "rollouts.jsonl", "mimeType": "application/json", "buffer": _native("upload_e2e_a", 2)},
        {"name": "rollouts.jsonl", "mimeType": "application/json", "buffer": _native("upload_e2e_b", 3)},
    ]
    page.locator(".st-key-ingest_uploads input[type='file']").set_input_files(files)
    expect(page.get_by_test_id("stFileChip")).to_have_count(2)
    page.get_by_role("button", name="Ingest").click()
    expect(page.get_by_text("Loaded 5 trajectories, 5 steps from 2 file(s)")).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("stException")).to_have_count(0)

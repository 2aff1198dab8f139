"""The Ingest page's Follow toggle, and the background follower behind it (tested without a Streamlit runtime)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.ingest.follow import PollReport
from core.store import queries
from core.store.database import Store
from core.synth import write_jsonl
from dashboard.follower import BackgroundFollower, get_follower
from dashboard.formatting import md_unescape

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture
def records(tmp_path: Path) -> list[str]:
    source = tmp_path / "source.jsonl"
    write_jsonl(source, "agent", prompts=2, iterations=2, group_size=4, seed=1)
    return source.read_text().splitlines(keepends=True)


def _wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_follower_loads_appended_lines_and_bumps_its_generation(
    store: Store, tmp_path: Path, records: list[str]
) -> None:
    live = tmp_path / "live.jsonl"
    live.write_text("".join(records[:5]))
    follower = BackgroundFollower(store, interval=0.05)
    follower.start([str(live)])
    try:
        _wait_for(lambda: follower.status().generation == 1)
        assert follower.running and follower.status().trajectories_loaded == 5
        with open(live, "a") as fh:
            fh.write("".join(records[5:]))
        _wait_for(lambda: follower.status().generation == 2)
        status = follower.status()
        assert status.trajectories_loaded == len(records)
        assert status.recent[0].split(" ", 2)[1] == "appended" and "(lines 6-16)" in status.recent[0]
        assert status.paths == (str(live),) and status.polls >= 2 and not status.errors
    finally:
        follower.stop()
    assert not follower.running and not follower.status().running
    assert len(queries.trajectories(store, run_id="agent")) == len(records)
    polls = follower.status().polls
    time.sleep(0.2)
    assert follower.status().polls == polls  # the thread is really gone


def test_follower_survives_a_failing_poll_and_reports_it(store: Store) -> None:
    calls: list[int] = []

    def flaky(*args: object, **kwargs: object) -> PollReport:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("disk on fire")
        return PollReport(started_at=time.time())

    follower = BackgroundFollower(store, interval=0.02, poll=flaky)
    follower.start(["anything"])
    try:
        _wait_for(lambda: len(calls) >= 3)
    finally:
        follower.stop()
    assert follower.status().polls >= 3
    with pytest.raises(ValueError, match="at least one"):
        follower.start(["  "])


def test_restarting_follows_the_new_paths_only(store: Store, tmp_path: Path, records: list[str]) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(records[:3]))
    second.write_text("".join(records[3:6]))
    follower = BackgroundFollower(store, interval=0.05)
    follower.start([str(first)])
    try:
        _wait_for(lambda: follower.status().generation == 1)
        follower.start([str(second)])
        _wait_for(lambda: follower.status().generation == 2)
        assert follower.status().paths == (str(second),)
        assert follower.status().trajectories_loaded == 3  # counted since the last start
    finally:
        follower.stop()


def _ingest_page(db: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("CREDITSCOPE_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    at.switch_page("app_pages/ingest.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_follow_toggle_starts_and_stops_the_shared_follower(
    tmp_path: Path, records: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "live.duckdb"
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "run.jsonl").write_text("".join(records[:4]))
    at = _ingest_page(db, monkeypatch)
    assert at.toggle(key="follow_on").value is False
    assert any(c.value == "Not following." for c in at.caption)

    at.toggle(key="follow_on").set_value(True).run()
    assert any("Give a file, folder or glob" in md_unescape(w.value) for w in at.warning)
    assert at.toggle(key="follow_on").value is False  # nothing to follow: the toggle shows the real state

    at.text_area(key="follow_paths").set_value(str(folder)).run()
    at.toggle(key="follow_on").set_value(True).run()
    follower = get_follower(str(db))
    try:
        assert follower.running and at.toggle(key="follow_on").value is True
        assert at.text_area(key="follow_paths").disabled
        _wait_for(lambda: follower.status().generation == 1)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        metrics = {m.label: m.value for m in at.metric}
        assert metrics["Trajectories loaded"] == "4"
        assert any(str(folder) in md_unescape(md.value) for md in at.markdown)
        assert at.session_state["follow_seen_generation"] == 1  # the fragment noticed the new rows

        at.toggle(key="follow_on").set_value(False).run()
        assert not follower.running and at.toggle(key="follow_on").value is False
    finally:
        follower.stop()

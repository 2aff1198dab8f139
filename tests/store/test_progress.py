"""Progress of long DuckDB statements during ingest (read_json and the step INSERT of the native fast path)."""

from __future__ import annotations

import threading

import duckdb

from core.ingest.runner import ingest
from core.store import progress
from core.store.database import Store
from core.store.progress import reporting, tracking
from core.synth import write_jsonl


def _bounded_and_rising(values: list[float]) -> bool:
    return all(0.0 <= v <= 1.0 for v in values) and values == sorted(values)


def test_tracking_reports_each_phase_from_zero_to_one_and_stays_silent_without_a_listener(tmp_path, monkeypatch):
    path = tmp_path / "rows.jsonl"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT range AS i, repeat('x', 40) AS text FROM range(1000000)) TO '{path}' (FORMAT json)")
    monkeypatch.setattr(progress, "_POLL_SECONDS", 0.005)
    seen: list[tuple[str, str, float, str]] = []
    cur = con.cursor()
    cur.execute("SET threads = 1")  # a read that takes long enough to be watched on any machine
    with tracking(cur, "rows.jsonl", "reading"):  # nobody listens: no settings touched, nothing reported
        cur.execute("CREATE TABLE a AS SELECT * FROM read_json(?)", [str(path)])
    assert cur.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (False,)

    def report(what: str, phase: str, fraction: float) -> None:
        seen.append((what, phase, fraction, threading.current_thread().name))

    with reporting(report), tracking(cur, "rows.jsonl", "reading"):
        cur.execute("CREATE TABLE b AS SELECT * FROM read_json(?)", [str(path)])
    fractions = [f for _, _, f, _ in seen]
    assert {(w, p) for w, p, _, _ in seen} == {("rows.jsonl", "reading")}
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and _bounded_and_rising(fractions)
    assert cur.execute("SELECT count(*) FROM b").fetchone() == (1_000_000,)
    estimates = seen[1:-1]
    assert any(0.0 < f < 1.0 for _, _, f, _ in estimates)  # DuckDB's estimate while the statement ran
    assert all(name == "duckdb-progress" for *_, name in estimates)


def test_ingest_of_a_native_file_reports_reading_and_writing(tmp_path):
    source = tmp_path / "arith.jsonl"
    write_jsonl(source, "arithmetic", prompts=3, iterations=2, group_size=4, seed=0)
    seen: list[tuple[str, str, float]] = []
    store = Store.open(tmp_path / "db.duckdb")
    try:
        report = ingest(store, [str(source)], on_progress=lambda *event: seen.append(event))
    finally:
        store.close()
    assert report.sources[0].fast_path
    for phase in ("reading", "writing"):
        fractions = [f for what, p, f in seen if p == phase and what == "arith.jsonl"]
        assert fractions[0] == 0.0 and fractions[-1] == 1.0 and _bounded_and_rising(fractions)

"""Following growing files: new lines are appended without re-reading old ones, partial lines wait, rewrites replace."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from core.errors import IngestError
from core.ingest import runner
from core.ingest.follow import Follower, PollReport, poll_once
from core.ingest.runner import ingest
from core.store.database import Store
from core.synth import write_jsonl
from core.writer import RolloutWriter

KEY = ["run_id", "traj_id", "step_idx"]


@pytest.fixture
def lines(tmp_path: Path) -> list[str]:
    """480 native records (about 300 KiB, so early lines lie outside the 64 KiB fingerprint)."""
    source = tmp_path / "source" / "arith.jsonl"
    source.parent.mkdir()
    write_jsonl(source, "arithmetic", prompts=6, iterations=10, group_size=8, seed=3)
    return source.read_text().splitlines(keepends=True)


def _append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def _steps(store: Store) -> pd.DataFrame:
    frame = store.query_df("SELECT * EXCLUDE (extra) FROM steps")
    return frame.sort_values(KEY).reset_index(drop=True)


def _trajectories(store: Store) -> pd.DataFrame:
    frame = store.query_df("SELECT run_id, traj_id, iteration, group_id, split, outcome, n_steps FROM trajectories")
    return frame.sort_values(["run_id", "traj_id"]).reset_index(drop=True)


def _full_read(path: Path, **kwargs: object) -> Store:
    fresh = Store.open(":memory:")
    ingest(fresh, [str(path)], **kwargs)  # type: ignore[arg-type]
    return fresh


def _only(report: PollReport) -> runner.SourceResult:
    assert not report.errors, report.errors
    assert len(report.sources) == 1
    return report.sources[0]


def test_grown_file_parses_only_its_new_lines_and_equals_a_full_read(
    store: Store, tmp_path: Path, lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "arith.jsonl"
    path.write_text("".join(lines[:300]))
    staged_records: list[int] = []
    load = runner.load_native_jsonl

    def counting_load(cur, files, **kwargs):  # noqa: ANN001, ANN003, ANN202 - spy with the real signature
        for file in files:
            staged_records.append(sum(1 for line in Path(file.read_from).read_bytes().split(b"\n") if line.strip()))
        return load(cur, files, **kwargs)

    monkeypatch.setattr(runner, "load_native_jsonl", counting_load)
    first = _only(poll_once(store, [str(path)]))
    assert (first.status, first.n_trajectories, first.lines) == ("loaded", 300, (1, 300))

    _append(path, "".join(lines[300:]))
    grown = _only(poll_once(store, [str(path)]))
    assert (grown.status, grown.n_trajectories, grown.lines) == ("appended", 180, (301, 480))
    assert grown.fast_path
    assert staged_records == [300, 180]  # the second poll parsed the 180 new records, nothing more
    assert _only(poll_once(store, [str(path)])).status == "unchanged"
    pd.testing.assert_frame_equal(_steps(store), _steps(_full_read(path)))


def test_an_in_place_edit_of_an_already_loaded_line_is_not_read_again(
    store: Store, tmp_path: Path, lines: list[str]
) -> None:
    path = tmp_path / "arith.jsonl"
    path.write_text("".join(lines[:300]))
    poll_once(store, [str(path)])
    first = json.loads(lines[0])
    stored = store.query_df("SELECT outcome FROM trajectories WHERE traj_id = ?", [first["trajectory"]])
    flipped = "0.0" if first["outcome"] == 1.0 else "1.0"
    original = f'"outcome":{first["outcome"]:.1f}'
    assert original in lines[0]
    edited = lines[0].replace(original, f'"outcome":{flipped}', 1)  # same length: only the bytes change
    path.write_text(edited + "".join(lines[1:300]) + "".join(lines[300:310]))

    assert _only(poll_once(store, [str(path)])).status == "appended"
    after = store.query_df("SELECT outcome FROM trajectories WHERE traj_id = ?", [first["trajectory"]])
    assert after["outcome"].tolist() == stored["outcome"].tolist()  # line 1 was not parsed again


def test_a_partial_last_line_waits_until_its_newline_is_written(store: Store, tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "arith.jsonl"
    path.write_text("".join(lines[:10]))
    poll_once(store, [str(path)])
    _append(path, lines[10][:40])
    waiting = _only(poll_once(store, [str(path)]))
    assert waiting.status == "unchanged" and "40 bytes after the last newline" in waiting.skipped[0]
    assert len(_trajectories(store)) == 10

    _append(path, lines[10][40:])
    done = _only(poll_once(store, [str(path)]))
    assert (done.status, done.n_trajectories, done.lines) == ("appended", 1, (11, 11))
    pd.testing.assert_frame_equal(_steps(store), _steps(_full_read(path)))


def test_a_new_file_whose_first_line_is_still_being_written_is_loaded_once_complete(
    store: Store, tmp_path: Path, lines: list[str]
) -> None:
    folder = tmp_path / "live"
    folder.mkdir()
    (folder / "a.jsonl").write_text(lines[0][:30])
    first = poll_once(store, [str(folder)])
    assert first.sources == [] and first.notes  # not recognisable yet: skipped with a note, not an error
    _append(folder / "a.jsonl", lines[0][30:] + lines[1])
    assert _only(poll_once(store, [str(folder)])).n_trajectories == 2


def test_a_rewritten_or_truncated_file_is_replaced_in_full(store: Store, tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "arith.jsonl"
    path.write_text("".join(lines[:30]))
    poll_once(store, [str(path)])
    path.write_text("".join(lines[100:140]))  # longer than before, but a different prefix
    rewritten = _only(poll_once(store, [str(path)]))
    assert (rewritten.status, rewritten.n_trajectories) == ("replaced", 40)
    assert set(_trajectories(store)["traj_id"]) == {json.loads(line)["trajectory"] for line in lines[100:140]}

    path.write_text("".join(lines[100:120]))
    truncated = _only(poll_once(store, [str(path)]))
    assert (truncated.status, truncated.n_trajectories) == ("replaced", 20)
    pd.testing.assert_frame_equal(_steps(store), _steps(_full_read(path)))


def test_a_bad_new_line_names_its_real_line_and_does_not_hold_back_other_files(
    store: Store, tmp_path: Path, lines: list[str]
) -> None:
    bad, good = tmp_path / "bad.jsonl", tmp_path / "good.jsonl"
    bad.write_text("".join(lines[:5]))
    good.write_text("".join(lines[200:205]))
    poll_once(store, [str(bad), str(good)])
    broken = json.loads(lines[6])
    broken["outcome"] = "high"
    _append(bad, lines[5] + json.dumps(broken) + "\n" + lines[7])
    _append(good, "".join(lines[205:210]))

    report = poll_once(store, [str(bad), str(good)])
    assert list(report.errors) == [str(bad.resolve())]
    assert f"{bad}:7: outcome" in report.errors[str(bad.resolve())]  # the real file and line, not the snapshot
    assert [(s.path, s.status, s.n_trajectories) for s in report.sources] == [(str(good.resolve()), "appended", 5)]
    assert len(_trajectories(store)) == 15

    bad.write_text("".join(lines[:8]))  # fixed after the loaded prefix: still appended, not replaced
    fixed = poll_once(store, [str(bad), str(good)])
    assert not fixed.errors
    assert [(s.status, s.n_trajectories, s.lines) for s in fixed.landed] == [("appended", 3, (6, 8))]


def test_a_file_growing_while_a_plain_ingest_parses_it_is_read_again_next_time(
    store: Store, tmp_path: Path, lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "arith.jsonl"
    path.write_text("".join(lines[:20]))
    load = runner.load_native_jsonl

    def load_then_grow(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - spy with the real signature
        load(*args, **kwargs)
        _append(path, lines[20])  # a trainer writes while a plain (non-follow) ingest parses

    monkeypatch.setattr(runner, "load_native_jsonl", load_then_grow)
    ingest(store, [str(path)])
    monkeypatch.setattr(runner, "load_native_jsonl", load)
    with store.reader() as cur:  # the bookkeeping describes the bytes as they were when the ingest began
        assert cur.execute("SELECT size, loaded_bytes FROM sources").fetchall() == [(len("".join(lines[:20])), None)]
    again = ingest(store, [str(path)]).sources[0]
    assert (again.status, again.n_trajectories) == ("replaced", 21)


def test_plain_ingest_replaces_a_grown_file_and_rejects_a_partial_line(
    store: Store, tmp_path: Path, lines: list[str]
) -> None:
    path = tmp_path / "arith.jsonl"
    path.write_text("".join(lines[:10]))
    ingest(store, [str(path)])
    _append(path, "".join(lines[10:12]))
    assert (ingest(store, [str(path)]).sources[0].status, len(_trajectories(store))) == ("replaced", 12)
    _append(path, lines[12][:25])
    with pytest.raises(IngestError, match=r"arith.jsonl:13: "):
        ingest(store, [str(path)])


def test_following_a_file_a_plain_ingest_loaded_reads_it_in_full_once_then_appends(
    store: Store, tmp_path: Path, lines: list[str]
) -> None:
    path = tmp_path / "arith.jsonl"
    path.write_text("".join(lines[:10]))
    ingest(store, [str(path)])
    assert _only(poll_once(store, [str(path)])).status == "unchanged"
    _append(path, lines[10])
    assert _only(poll_once(store, [str(path)])).status == "replaced"  # no offsets recorded by the plain ingest
    _append(path, lines[11])
    assert (_only(poll_once(store, [str(path)])).status, len(_trajectories(store))) == ("appended", 12)


def _board_records(n: int) -> list[str]:
    return [
        json.dumps({"prompt": f"poem {i % 3}", "response": f"line a{i}\n\nline b{i}", "reward": i / n, "step": i // 6})
        + "\n"
        for i in range(n)
    ]


def test_line_numbered_trajectory_ids_survive_appending(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "poem_task" / "data.jsonl"
    path.parent.mkdir()
    records = _board_records(18)
    path.write_text("\n".join(records[:10]))  # blank lines between records: numbering must still match
    assert _only(poll_once(store, [str(path)])).format == "rl_logging_board"
    _append(path, "\n" + "".join(records[10:]))
    grown = _only(poll_once(store, [str(path)]))
    assert (grown.status, grown.n_trajectories) == ("appended", 8)
    full = _full_read(path)
    pd.testing.assert_frame_equal(_trajectories(store), _trajectories(full))
    pd.testing.assert_frame_equal(_steps(store), _steps(full))
    expected = {f"data/{line}" for line in [*range(1, 20, 2), *range(21, 29)]}  # line numbers of the real file
    assert set(_trajectories(store)["traj_id"]) == expected


def _verl_records(n: int, *, reward: bool) -> list[str]:
    rows = [{"input": f"q{i % 2}", "output": f"answer {i}", "score": float(i % 2), "step": 1} for i in range(n)]
    return [json.dumps({**row, **({"reward": 1.0} if reward else {})}) + "\n" for row in rows]


@pytest.mark.parametrize("folder", ["val", "rollouts"])
def test_verl_is_replaced_in_full_because_a_new_line_can_change_earlier_rows(
    store: Store, tmp_path: Path, folder: str
) -> None:
    path = tmp_path / folder / "1.jsonl"
    path.parent.mkdir()
    path.write_text("".join(_verl_records(4, reward=True)))  # all with `reward`: val by content
    poll_once(store, [str(path)])
    _append(path, _verl_records(6, reward=False)[5])
    grown = _only(poll_once(store, [str(path)]))
    assert grown.format == "verl" and grown.status == "replaced"
    pd.testing.assert_frame_equal(_trajectories(store), _trajectories(_full_read(path)))
    assert store.query_df("SELECT DISTINCT split FROM trajectories")["split"].tolist() == [
        "val" if folder == "val" else "train"
    ]
    # a tool-using rollout joining group q0 switches the whole group to one step per turn
    plain = {"input": "q0", "output": "think\n\nanswer", "score": 1.0, "step": 1}
    _append(path, json.dumps(plain) + "\n")
    poll_once(store, [str(path)])
    tool = {"input": "q0", "output": "call\ntool\nresult\nassistant\ndone", "score": 1.0, "step": 1}
    _append(path, json.dumps(tool) + "\n")
    assert _only(poll_once(store, [str(path)])).status == "replaced"
    pd.testing.assert_frame_equal(_trajectories(store), _trajectories(_full_read(path)))
    n_steps = store.query_df("SELECT n_steps FROM trajectories WHERE traj_id LIKE '%/1/6'")["n_steps"].tolist()
    assert n_steps == [1]  # the plain rollout is one turn now, no longer two paragraphs


def test_follower_thread_picks_up_a_training_loop_writing_live(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    polls: list[PollReport] = []
    follower = Follower(lambda: poll_once(store, [str(folder)]), interval=0.05, on_poll=polls.append)
    thread = threading.Thread(target=follower.run, daemon=True)
    thread.start()
    try:
        with RolloutWriter(folder / "live.jsonl", run="live") as writer:
            for k in range(12):
                steps = [{"action": f"step {k}", "reward": 0.0}]
                writer.write(iteration=k // 4, group=f"g{k // 4}", trajectory=f"t{k}", outcome=1.0, steps=steps)
                time.sleep(0.02)
        deadline = time.monotonic() + 10
        while len(_trajectories(store)) < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        follower.stop()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert sorted(_trajectories(store)["traj_id"]) == sorted(f"t{k}" for k in range(12))
    landed = [s for poll in polls for s in poll.landed]
    assert landed[0].status == "loaded" and sum(s.n_trajectories for s in landed) == 12
    assert not any(poll.errors for poll in polls), [poll.errors for poll in polls if poll.errors]


def test_paths_with_nothing_yet_wait_while_a_broken_file_is_an_error(store: Store, tmp_path: Path) -> None:
    empty, missing, unknown = tmp_path / "empty", tmp_path / "later.jsonl", tmp_path / "notes.txt"
    empty.mkdir()
    unknown.write_text("not a rollout log\n")
    report = poll_once(store, [str(empty), str(missing), str(tmp_path / "*.jsonl"), str(unknown)])
    assert report.waiting == [
        f"{empty}: no files yet",
        f"{missing}: no files yet",
        f"{tmp_path / '*.jsonl'}: no files yet",
    ]
    assert list(report.errors) == [str(unknown)] and "no adapter recognised" in report.errors[str(unknown)]

import json
import threading

import numpy as np
import pytest
import torch

from core.writer import InvalidRollout, RolloutWriter

STEPS = [
    {"state": "Start with 4.", "action": "4 + 10 = 14", "reward": 0.0, "label": 1.0, "node": "n0", "valid": True},
    {
        "state": "Start with 4.\n4 + 10 = 14",
        "action": "14 - 8 = 5",
        "reward": 0.5,
        "label": 0.0,
        "node": "n1",
        "parent": "n0",
        "valid": False,
        "prm": 0.25,
        "value": 0.75,
        "logprobs": [-0.1, -2.5],
        "token_ids": [12, 99],
    },
]


def _lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_round_trip_keeps_every_field(tmp_path):
    target = tmp_path / "out" / "rollouts.jsonl"
    with RolloutWriter(target, run="demo") as writer:
        writer.write(
            iteration=3,
            group="it3-p0",
            trajectory="it3-p0-r0",
            steps=STEPS,
            outcome=1.0,
            prompt="Start with 4.",
            meta={"seed": 7},
        )
        writer.write(
            iteration=3, group="it3-p0", trajectory="it3-p0-r1", steps=[{"action": "x"}], outcome=0, split="val"
        )
    first, second = _lines(target)
    assert first["run"] == "demo" and first["iteration"] == 3 and first["group"] == "it3-p0"
    assert first["trajectory"] == "it3-p0-r0" and first["prompt"] == "Start with 4."
    assert first["outcome"] == 1.0 and first["split"] == "train" and first["meta"] == {"seed": 7}
    assert first["steps"][0] == {
        "action": "4 + 10 = 14",
        "state": "Start with 4.",
        "reward": 0.0,
        "label": 1.0,
        "prm": None,
        "value": None,
        "node": "n0",
        "parent": None,
        "valid": True,
    }
    assert first["steps"][1] == {**STEPS[1]}
    assert second["split"] == "val" and second["prompt"] is None and second["outcome"] == 0.0
    assert second["steps"] == [
        {"action": "x", "state": None, "reward": None, "label": None, "prm": None, "value": None, "node": None}
        | {"parent": None, "valid": None}
    ]


def test_lines_are_visible_before_close_and_appending_resumes(tmp_path):
    target = tmp_path / "live.jsonl"
    writer = RolloutWriter(target, run="live")
    writer.write(iteration=0, group="g", trajectory="t0", steps=[{"action": "a"}], outcome=0.0)
    # a dashboard following the file sees the whole line while training goes on
    assert [r["trajectory"] for r in _lines(target)] == ["t0"]
    writer.close()
    assert writer.closed
    with RolloutWriter(target, run="live") as again:
        again.write(iteration=1, group="g", trajectory="t1", steps=[{"action": "b"}], outcome=1.0)
    assert [r["trajectory"] for r in _lines(target)] == ["t0", "t1"]
    with RolloutWriter(target, run="live", mode="w"):
        pass
    assert target.read_text() == ""


def test_numpy_and_torch_values_become_plain_json(tmp_path):
    target = tmp_path / "np.jsonl"
    with RolloutWriter(target, run="np") as writer:
        writer.write(
            iteration=np.int64(2),
            group="g",
            trajectory="t",
            steps=[
                {"action": "a", "reward": np.float32(0.5), "logprobs": torch.tensor([-0.5, -1.0]), "ids": np.arange(3)}
            ],
            outcome=torch.tensor(1.0),
        )
    (record,) = _lines(target)
    assert record["iteration"] == 2 and record["outcome"] == 1.0
    assert record["steps"][0]["reward"] == 0.5
    assert record["steps"][0]["logprobs"] == [-0.5, -1.0] and record["steps"][0]["ids"] == [0, 1, 2]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"iteration": True}, "iteration"),
        ({"iteration": -1}, "iteration"),
        ({"group": ""}, "group"),
        ({"outcome": float("nan")}, "outcome"),
        ({"outcome": "1"}, "outcome"),
        ({"split": "test"}, "split"),
        ({"steps": []}, "steps"),
        ({"steps": [{"state": "s"}]}, "steps[0].action"),
        ({"steps": [{"action": "a"}, {"action": "b", "reward": float("inf")}]}, "steps[1].reward"),
        ({"steps": [{"action": "a", "valid": "yes"}]}, "steps[0].valid"),
        ({"steps": [{"action": "a", "node": 3}]}, "steps[0].node"),
        ({"steps": [{"action": "a", "logprobs": [0.1, float("nan")]}]}, "steps[0].logprobs[1]"),
        ({"steps": [{"action": "a", "blob": object()}]}, "steps[0].blob"),
        ({"meta": {"x": {1, 2}}}, "meta.x"),
    ],
)
def test_invalid_records_are_rejected_and_nothing_is_written(tmp_path, kwargs, field):
    target = tmp_path / "bad.jsonl"
    record = {"iteration": 0, "group": "g", "trajectory": "t", "steps": [{"action": "a"}], "outcome": 0.0} | kwargs
    with RolloutWriter(target, run="bad") as writer:
        with pytest.raises(InvalidRollout) as info:
            writer.write(**record)
    assert info.value.field == field
    assert target.read_text() == ""


def test_duplicate_trajectory_and_write_after_close(tmp_path):
    writer = RolloutWriter(tmp_path / "dup.jsonl", run="dup")
    writer.write(iteration=0, group="g", trajectory="t", steps=[{"action": "a"}], outcome=0.0)
    with pytest.raises(InvalidRollout, match="already written"):
        writer.write(iteration=0, group="g", trajectory="t", steps=[{"action": "a"}], outcome=0.0)
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(iteration=0, group="g", trajectory="u", steps=[{"action": "a"}], outcome=0.0)


def test_concurrent_writers_never_interleave_lines(tmp_path):
    target = tmp_path / "threads.jsonl"
    long_action = "y" * 20_000  # long lines make interleaving likely if writes were not serialised

    with RolloutWriter(target, run="threads") as writer:

        def work(worker: int) -> None:
            for k in range(25):
                writer.write(
                    iteration=0,
                    group=f"g{worker}",
                    trajectory=f"w{worker}-{k}",
                    steps=[{"action": long_action}],
                    outcome=0.0,
                )

        threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    records = _lines(target)
    assert len(records) == 100 and len({r["trajectory"] for r in records}) == 100

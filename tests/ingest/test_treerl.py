import json
from pathlib import Path

import pandas as pd
import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import STEP_FRAME_COLUMNS, AdapterOptions
from core.ingest.formats import treerl

FOLDER = Path(__file__).parent.parent / "fixtures" / "treerl"
TREE = FOLDER / "trees_vine.jsonl"
PATHS = FOLDER / "output_8_4_2_2.jsonl"


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _leaves(node: dict, depth: int = 0) -> list[tuple[dict, int]]:
    children = node.get("children") or []
    if not children:
        return [(node, depth)]
    return [leaf for child in children for leaf in _leaves(child, depth + 1)]


@pytest.fixture(scope="module")
def tree():
    return treerl.read(TREE, AdapterOptions())


@pytest.fixture(scope="module")
def paths():
    return treerl.read(PATHS, AdapterOptions())


def test_auto_detection_for_both_layouts():
    assert registry.detect(TREE) is treerl
    assert registry.detect(PATHS) is treerl


def test_tree_paths_match_the_leaves(tree):
    root = _records(TREE)[0]
    leaves = _leaves(root)
    assert len(tree.trajectories) == len(leaves) == 124
    assert len(tree.steps) == sum(depth for _, depth in leaves)
    assert tuple(tree.steps.columns) == STEP_FRAME_COLUMNS
    assert tree.steps["node_id"].nunique() == root["total_nodes"] - 1  # every node but the root
    correct = sum(1 for leaf, _ in leaves if leaf["R"] == 1)
    assert (tree.trajectories["outcome"] == 1.0).sum() == correct == root["correct_terminal_in_subtree"]


def test_tree_steps_keep_node_fields(tree):
    root = _records(TREE)[0]
    first = root["children"][0]
    row = tree.steps[tree.steps.node_id == f"trees_vine:1/n{first['node_id']}"].iloc[0]
    assert row["action"] == first["answer"]
    assert row["step_idx"] == 0 and pd.isna(row["parent_id"])
    assert row["value"] == pytest.approx(first["accumulated_value"])
    extra = json.loads(row["extra"])
    assert extra["aggregate_answer"] == first["aggregate_answer"] and extra["visits"] == first["visits"]
    meta = json.loads(tree.trajectories["meta"].iloc[0])
    assert meta["args"] == root["args"] and meta["total_nodes"] == 165


def test_tree_state_is_the_parents_aggregate_answer(tree):
    root = _records(TREE)[0]
    child = root["children"][0]["children"][0]
    row = tree.steps[tree.steps.node_id == f"trees_vine:1/n{child['node_id']}"].iloc[0]
    assert row["state"] == root["children"][0]["aggregate_answer"]


def test_paths_become_trajectories_with_token_ids(paths):
    records = _records(PATHS)
    assert len(paths.trajectories) == sum(len(r["paths"]) for r in records) == 64
    assert len(paths.steps) == sum(len(p) for r in records for p in r["paths"])
    segment = records[0]["paths"][0][0]
    row = paths.steps.iloc[0]
    extra = json.loads(row["extra"])
    assert extra["token_answer"] == segment["token_answer"]
    assert extra["value"] == segment["value"] and extra["pass_ratio"] == segment["pass_ratio"]
    assert row["value"] == segment["state_value"] and row["reward"] == segment["reward"]
    assert paths.trajectories.groupby("group_id").size().tolist() == [32, 32]


def test_identical_prefixes_share_rebuilt_node_ids(paths):
    for line, record in enumerate(_records(PATHS), start=1):
        prefixes = {tuple(tuple(s["token_answer"]) for s in p[: k + 1]) for p in record["paths"] for k in range(len(p))}
        ids = paths.steps[paths.steps.node_id.str.startswith(f"output_8_4_2_2:{line}/")]["node_id"]
        assert ids.nunique() == len(prefixes)
        firsts = {tuple(p[0]["token_answer"]) for p in record["paths"]}
        assert len(firsts) == 8  # 8_4_2_2: eight first segments


def test_bad_values_are_located(tmp_path):
    record = _records(PATHS)[0]
    record["paths"][3][1]["reward"] = "1"
    source = tmp_path / "bad.jsonl"
    source.write_text(json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(IngestError) as info:
        treerl.read(source, AdapterOptions())
    assert (info.value.record, info.value.field) == (1, "paths[3][1].reward")

    root = _records(TREE)[0]
    root["children"][2]["R"] = float("inf")
    source.write_text(json.dumps(root) + "\n", encoding="utf-8")
    with pytest.raises(IngestError) as info:
        treerl.read(source, AdapterOptions())
    assert info.value.field == "root.children[2].R" and "finite" in info.value.problem


def test_unknown_line_shape_is_an_error(tmp_path):
    source = tmp_path / "other.jsonl"
    source.write_text(json.dumps(_records(PATHS)[0]) + "\n" + json.dumps({"x": 1}) + "\n", encoding="utf-8")
    with pytest.raises(IngestError) as info:
        treerl.read(source, AdapterOptions())
    assert info.value.record == 2

import json
from pathlib import Path

import pytest

from core.errors import IngestError
from core.ingest import registry
from core.ingest.base import STEP_FRAME_COLUMNS, AdapterOptions
from core.ingest.formats import omegaprm

FOLDER = Path(__file__).parent.parent / "fixtures" / "omegaprm"
TREE = FOLDER / "samples_math-aps-tree.jsonl"
FLAT = FOLDER / "samples_math-aps.jsonl"


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _leaf_depths(node: dict, depth: int = 0) -> list[int]:
    children = node.get("children") or []
    if not children:
        return [depth]
    return [d for child in children for d in _leaf_depths(child, depth + 1)]


def _node_count(node: dict) -> int:
    return 1 + sum(_node_count(child) for child in node.get("children") or [])


@pytest.fixture(scope="module")
def tree():
    return omegaprm.read(TREE, AdapterOptions())


@pytest.fixture(scope="module")
def flat():
    return omegaprm.read(FLAT, AdapterOptions())


def test_auto_detection_for_both_layouts():
    assert registry.detect(TREE) is omegaprm
    assert registry.detect(FLAT) is omegaprm


def test_nested_tree_gives_one_trajectory_per_leaf(tree):
    records = _records(TREE)
    depths = [_leaf_depths(r["reasoning_steps"]) for r in records]
    assert [len(d) for d in depths] == [137, 85, 20]  # leaves counted by walking the JSON here
    assert len(tree.trajectories) == sum(len(d) for d in depths)
    assert len(tree.steps) == sum(sum(d) for d in depths)  # a path has one step per node below the root
    assert tuple(tree.steps.columns) == STEP_FRAME_COLUMNS


def test_shared_prefixes_share_node_ids(tree):
    records = _records(TREE)
    # every non-root node appears once as a distinct node id
    assert tree.steps["node_id"].nunique() == sum(_node_count(r["reasoning_steps"]) - 1 for r in records)
    first_steps = tree.steps[tree.steps.step_idx == 0]
    assert first_steps["parent_id"].isna().all()
    later = tree.steps[tree.steps.step_idx > 0]
    by_traj = tree.steps.set_index(["traj_id", "step_idx"])["node_id"]
    for _, row in later.head(50).iterrows():
        assert row["parent_id"] == by_traj[(row["traj_id"], row["step_idx"] - 1)]
    # rows of one node agree on text and value wherever it appears
    per_node = tree.steps.groupby("node_id").agg(texts=("action", "nunique"), values=("value", "nunique"))
    assert (per_node["texts"] == 1).all() and (per_node["values"] == 1).all()


def test_values_outcomes_and_groups(tree):
    record = _records(TREE)[0]
    first_child = record["reasoning_steps"]["children"][0]
    rows = tree.steps[tree.steps.node_id == "samples_math-aps-tree:1/0"]
    assert rows["action"].iloc[0] == first_child["text"]
    assert rows["value"].iloc[0] == first_child["mc_value"]
    last_rows = tree.steps.sort_values("step_idx").groupby("traj_id").tail(1).set_index("traj_id")
    trajs = tree.trajectories.set_index("traj_id")
    assert (trajs["outcome"] == last_rows.loc[trajs.index, "value"]).all()
    assert tree.trajectories.groupby("group_id").size().sort_values().tolist() == [20, 85, 137]
    meta = json.loads(trajs["meta"].iloc[0])
    assert meta["question_id"] == record["question_id"] and meta["final_answer"] == record["final_answer"]
    assert meta["root_mc_value"] == record["reasoning_steps"]["mc_value"]


def test_state_is_question_plus_path_so_far(tree):
    record = _records(TREE)[0]
    lengths = tree.steps.groupby("traj_id", sort=False).size()
    path = tree.steps[tree.steps.traj_id == lengths[lengths >= 2].index[0]]
    assert path["state"].iloc[0] == record["question"]
    assert path["state"].iloc[1] == record["question"] + "\n" + path["action"].iloc[0]


def test_flat_prefixes_rebuild_the_tree(flat):
    records = _records(FLAT)
    expected_leaves = 0
    for record in records:
        prefixes = [e["solution_prefix"] for e in record["reasoning_steps"]]
        first_index = {}
        for index, prefix in enumerate(prefixes):
            first_index.setdefault(prefix, index)
        is_root = [p.strip() == record["question"].strip() for p in prefixes]
        # entries some other entry extends (its first copy only) have children; the rest are leaves
        parents = {
            first_index[p]
            for p in prefixes
            if p.strip() != record["question"].strip() and any(q != p and q.startswith(p) for q in prefixes)
        }
        # repeated prefixes are one node: only the first copy can be a leaf
        expected_leaves += sum(
            1 for i in range(len(prefixes)) if not is_root[i] and i not in parents and first_index[prefixes[i]] == i
        )
    assert len(flat.trajectories) == expected_leaves
    # every distinct non-root prefix is one node
    non_root = sum(
        len(
            {
                e["solution_prefix"]
                for e in r["reasoning_steps"]
                if e["solution_prefix"].strip() != r["question"].strip()
            }
        )
        for r in records
    )
    assert flat.steps["node_id"].nunique() == non_root
    # a step's text is exactly what its prefix adds to its parent's prefix
    record = records[0]
    texts = {f"samples_math-aps:1/p{i}": e["solution_prefix"] for i, e in enumerate(record["reasoning_steps"])}
    deep = flat.steps[(flat.steps.step_idx > 0) & flat.steps.node_id.str.startswith("samples_math-aps:1/")].iloc[0]
    assert texts[deep["node_id"]].startswith(texts[deep["parent_id"]])
    assert deep["action"] == texts[deep["node_id"]][len(texts[deep["parent_id"]]) :].strip()


def test_bad_mc_value_and_children(tmp_path):
    record = _records(TREE)[2]
    record["reasoning_steps"]["children"][1]["mc_value"] = float("nan")
    source = tmp_path / "nan.jsonl"
    source.write_text(json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(IngestError) as info:
        omegaprm.read(source, AdapterOptions())
    assert (info.value.record, info.value.field) == (1, "reasoning_steps.children[1].mc_value")

    record = _records(TREE)[2]
    record["reasoning_steps"]["children"][0]["children"] = "oops"
    source.write_text(json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(IngestError) as info:
        omegaprm.read(source, AdapterOptions())
    assert info.value.field == "reasoning_steps.children[0].children"


def test_flat_prefix_must_start_with_question(tmp_path):
    record = _records(FLAT)[1]
    record["reasoning_steps"][3]["solution_prefix"] = "Something else entirely"
    source = tmp_path / "flat.jsonl"
    source.write_text(json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(IngestError) as info:
        omegaprm.read(source, AdapterOptions())
    assert info.value.field == "reasoning_steps[3].solution_prefix"


def test_question_without_steps_is_skipped_with_a_note(tmp_path):
    source = tmp_path / "empty.jsonl"
    source.write_text(json.dumps({"question": "Q?", "reasoning_steps": {"text": "Q?", "mc_value": 0.5}}) + "\n")
    result = omegaprm.read(source, AdapterOptions())
    assert result.trajectories.empty and len(result.skipped) == 1


def test_repeated_flat_prefixes_are_merged_into_one_node_keeping_every_value(tmp_path):
    question = "Q: 1+1?"
    entries = [
        {"solution_prefix": question, "mc_value": 0.5},
        {"solution_prefix": question + " Step 1: 1+1", "mc_value": 0.5},
        {"solution_prefix": question + " Step 1: 1+1", "mc_value": 0.75},
        {"solution_prefix": question + " Step 1: 1+1 = 2", "mc_value": 1.0},
        {"solution_prefix": question + " Step 1: 1+1 = 3", "mc_value": 0.0},
        {"solution_prefix": question + " Step 1: 1+1 = 3", "mc_value": 0.0},
    ]
    source = tmp_path / "flat.jsonl"
    source.write_text(json.dumps({"question": question, "reasoning_steps": entries}) + "\n", encoding="utf-8")
    result = omegaprm.read(source, AdapterOptions())
    # two distinct solutions, not four trajectories from the copies
    assert sorted(result.trajectories["traj_id"]) == ["flat:1/p3", "flat:1/p4"]
    assert result.steps["node_id"].nunique() == 3
    shared = result.steps[result.steps["node_id"] == "flat:1/p1"]
    assert set(shared["value"]) == {0.5}  # the first copy's value
    repeated = json.loads(shared["extra"].iloc[0])["repeated_prefix"]
    assert repeated == [{"index": 1, "mc_value": 0.5}, {"index": 2, "mc_value": 0.75}]
    assert json.loads(result.trajectories["meta"].iloc[0])["merged_repeated_prefixes"] == 2
    assert any("merged 2 repeated solution prefix(es)" in note for note in result.skipped)

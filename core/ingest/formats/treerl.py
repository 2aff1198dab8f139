"""TreeRL entropy-guided search trees (THUDM/TreeRL), as a recursive tree or as sampled paths.

Checked against THUDM/TreeRL @ 26022331: ``openrlhf/trainer/ppo_utils/logs/outputs/trees_vine.jsonl`` (tree)
and ``openrlhf/trainer/ppo_utils/res/output_8_4_2_2.jsonl`` (paths).

Tree layout: one line = one search tree, a recursive node ``{answer, aggregate_answer, R, value,
accumulated_value, terminal, node_id, children[], ...}``; the root holds the run's ``args`` and has an
empty ``answer`` (the problem text is not in the file, so ``prompt`` is null).

- One trajectory per root-to-leaf path; the root is not a step. ``node_id`` = ``<stem>:<line>/n<node_id>``
  from TreeRL's own ids, so shared prefixes share nodes. ``reward`` = the node's ``R`` (TreeRL's
  terminal reward, non-zero only on correct terminal nodes); ``outcome`` = the leaf's ``R`` (leaves that
  are not ``terminal`` ran out of search budget and get 0). ``value`` = ``accumulated_value``, TreeRL's
  subtree value estimate (centred on the tree's mean leaf reward in the sample; exact formula unverified).
- ``group_id`` = ``<stem>:<line>`` (one tree = one prompt); ``meta`` keeps the root's fields (args,
  timings, counts) and ``leaf_terminal``; every other node field is kept in the step's ``extra``.

Paths layout: one line = ``{problem, golden_answer, paths[]}``, each path a list of segments
``{answer, token_answer, reward, pass_ratio, value, state_value}``.

- One trajectory per path (``traj_id`` = ``<stem>:<line>/path<k>``). Node ids are not stored, so they are
  rebuilt: segments with identical token ids (or text, when token ids are absent) after an identical
  prefix are one node (``<stem>:<line>/s<k>``).
- ``reward`` = the segment's ``reward``; ``outcome`` = the last segment's ``reward``; ``value`` =
  ``state_value``; ``extra`` keeps ``token_answer`` (token ids), ``pass_ratio`` and TreeRL's per-segment
  ``value`` (its combined step score) under their own names. ``group_id`` = hash of ``problem``.

Steps are TreeRL segments, which may cut mid-sentence; ``state`` = problem (if any) + newline + the
previous segments concatenated as generated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import IngestError
from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats._frames import FrameBuilder, StepRow, finite_number, require, text_key
from core.ingest.formats._rollout_records import first_record, head_lacks_keys, read_jsonl
from core.ingest.formats._trees import tree_paths

NAME = "treerl"
PRIORITY = 30
CHECKED_AGAINST = "THUDM/TreeRL @ 260223319d3b (trees_vine.jsonl, output_8_4_2_2.jsonl)"

_TREE_KEYS = ("aggregate_answer", "children", "terminal")
_PATH_KEYS = ("paths", "token_answer", "state_value")
_TREE_MAPPED = ("answer", "children", "R", "accumulated_value")
_SEGMENT_MAPPED = ("answer", "reward", "state_value")


def detect(path: Path, head: bytes) -> str | None:
    """Accept JSONL of TreeRL trees or path lists (lines are long, so key names are searched in the head)."""
    record = first_record(head)
    if record is not None and not ("paths" in record or "aggregate_answer" in record):
        return "first record has neither paths nor aggregate_answer"
    if head.lstrip().startswith(b"{") and (
        not head_lacks_keys(head, _TREE_KEYS) or not head_lacks_keys(head, _PATH_KEYS)
    ):
        return None
    return "no TreeRL tree keys (aggregate_answer/children/terminal) or path keys (paths/token_answer/state_value)"


def _state(problem: str | None, previous: list[str]) -> str:
    """Problem plus the previous segments, concatenated as generated (segments may cut mid-sentence)."""
    body = "".join(previous)
    return f"{problem}\n{body}" if problem else body


def _read_tree(root: dict[str, Any], line: int, path: Path, builder: FrameBuilder) -> int:
    """Add one trajectory per root-to-leaf path of a search tree; return how many were added."""
    prefix = f"{path.stem}:{line}"

    root_meta = {k: v for k, v in root.items() if k not in ("children", "answer")}
    count = 0
    for tree_path in tree_paths(root, prefix, "root", path, line):
        rows: list[StepRow] = []
        texts: list[str] = []
        for node, where in zip(tree_path.nodes, tree_path.locators, strict=True):
            text = require(node, "answer", path, line, str, f"{where}.answer")
            node_key = require(node, "node_id", path, line, int, f"{where}.node_id")
            rows.append(
                StepRow(
                    action=text,
                    state=_state(None, texts),
                    reward=finite_number(node.get("R"), path, line, f"{where}.R", booleans=False),
                    value=finite_number(
                        node.get("accumulated_value"),
                        path,
                        line,
                        f"{where}.accumulated_value",
                        optional=True,
                        booleans=False,
                    ),
                    node_id=f"{prefix}/n{node_key}",
                    parent_id=rows[-1].node_id if rows else None,
                    extra={k: v for k, v in node.items() if k not in _TREE_MAPPED},
                )
            )
            texts.append(text)
        leaf = tree_path.nodes[-1]
        builder.add(
            traj_id=f"{prefix}/n{leaf['node_id']}",
            group_id=prefix,
            outcome=rows[-1].reward,
            steps=rows,
            meta={**root_meta, "leaf_terminal": leaf.get("terminal")},
        )
        count += 1
    return count


def _segment_key(segment: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two segments the same tree node: their token ids, else their text."""
    tokens = segment.get("token_answer")
    return tuple(tokens) if isinstance(tokens, list) else (segment.get("answer"),)


def _read_paths(record: dict[str, Any], line: int, path: Path, builder: FrameBuilder) -> int:
    """Add one trajectory per sampled path, sharing node ids between identical prefixes."""
    problem = require(record, "problem", path, line, str)
    paths = require(record, "paths", path, line, list)
    prefix = f"{path.stem}:{line}"
    node_ids: dict[tuple[Any, ...], str] = {}  # (parent node id, segment key) -> node id
    meta = {k: v for k, v in record.items() if k not in ("problem", "paths")}
    for path_index, segments in enumerate(paths):
        if not isinstance(segments, list) or not segments:
            raise IngestError(
                str(path), "expected a non-empty list of segments", record=line, field=f"paths[{path_index}]"
            )
        rows: list[StepRow] = []
        texts: list[str] = []
        for seg_index, segment in enumerate(segments):
            where = f"paths[{path_index}][{seg_index}]"
            text = require(segment, "answer", path, line, str, f"{where}.answer")
            parent = rows[-1].node_id if rows else None
            node_id = node_ids.setdefault((parent, _segment_key(segment)), f"{prefix}/s{len(node_ids)}")
            rows.append(
                StepRow(
                    action=text,
                    state=_state(problem, texts),
                    reward=finite_number(segment.get("reward"), path, line, f"{where}.reward", booleans=False),
                    value=finite_number(
                        segment.get("state_value"), path, line, f"{where}.state_value", optional=True, booleans=False
                    ),
                    node_id=node_id,
                    parent_id=parent,
                    extra={k: v for k, v in segment.items() if k not in _SEGMENT_MAPPED},
                )
            )
            texts.append(text)
        builder.add(
            traj_id=f"{prefix}/path{path_index}",
            group_id=text_key(problem),
            outcome=rows[-1].reward,
            steps=rows,
            prompt=problem,
            meta=meta,
        )
    return len(paths)


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read a TreeRL JSONL file (trees or paths, decided per line) into canonical frames.

    Raises:
        IngestError: Invalid JSON, a line that is neither layout, missing ``answer``/``node_id``/``problem``,
            non-numeric, NaN or infinite rewards and values, or malformed children/paths.
    """
    parsed = read_jsonl(path, options)
    builder = FrameBuilder()
    skipped = list(parsed.skipped)
    for line, record in parsed.records:
        if isinstance(record, dict) and "paths" in record:
            added = _read_paths(record, line, path, builder)
        elif isinstance(record, dict) and "children" in record:
            added = _read_tree(record, line, path, builder)
        else:
            raise IngestError(str(path), "neither a TreeRL tree (children) nor a path list (paths)", record=line)
        if not added:
            skipped.append(f"{path}:{line}: no paths below the root, nothing ingested")
    return builder.rollouts(options, run_config={"steps": "TreeRL segments"}, default_run=path.stem, skipped=skipped)

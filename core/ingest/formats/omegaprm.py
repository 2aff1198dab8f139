"""OmegaPRM / MATH-APS Monte-Carlo value trees, in the nested and the flat layout.

Checked against the samples in openreasoner/openr @ 54ae004c ``preprocess/tests/samples_math-aps-tree.jsonl``
(nested) and ``samples_math-aps.jsonl`` (flat).

One JSONL line = one question ``{question, final_answer, question_id, reasoning_steps}``:

- nested: ``reasoning_steps`` is a tree ``{text, mc_value, children[]}`` whose root is the question itself;
- flat: ``reasoning_steps`` is a list of ``{solution_prefix, mc_value}``, each prefix being the question
  followed by a partial solution. The tree is rebuilt from the prefixes: an entry's parent is the
  longest other entry that is a proper prefix of it, its step text is what it adds to that parent
  (stripped). An entry equal to the question is the root. **Repeated prefixes are merged**: entries with
  identical text are one node (the same partial solution evaluated twice), kept at the first copy with
  its ``mc_value``; every copy's index and ``mc_value`` are listed in that node's
  ``extra["repeated_prefix"]`` and a note per question says how many copies were merged, so no copy
  becomes an extra trajectory and no value is dropped silently.

Mapping: one trajectory per root-to-leaf path; the root (question) is not a step, its ``mc_value`` goes
to ``meta.root_mc_value``. ``node_id``/``parent_id`` identify tree nodes (``<stem>:<line>/0/2`` child-index
paths for nested trees, ``<stem>:<line>/p<entry index>`` for flat lists), so shared prefixes share nodes;
the first step's ``parent_id`` is null. ``value`` = the node's ``mc_value`` (Monte-Carlo estimate that
the prefix reaches the right answer); ``label`` is left null. ``outcome`` = the leaf's ``mc_value``: in
the nested samples leaves are finished solutions (1.0 when correct) or prefixes abandoned at 0.0; a flat
list may end at an intermediate prefix, whose estimate is fractional.
``traj_id`` = the leaf's node id; ``group_id`` = hash of the question (``question_id`` is not unique in
the samples); ``iteration`` = 0; ``meta`` keeps ``question_id``, ``final_answer`` and any other field;
unknown node fields go to the step's ``extra``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import IngestError
from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats._frames import FrameBuilder, StepRow, finite_number, require, text_key
from core.ingest.formats._rollout_records import head_lacks_keys, head_record, read_jsonl
from core.ingest.formats._steps import reasoning_state
from core.ingest.formats._trees import leaf_chains, tree_paths

NAME = "omegaprm"
PRIORITY = 30
CHECKED_AGAINST = "openreasoner/openr @ 54ae004c preprocess/tests/samples_math-aps{,-tree}.jsonl"

_NODE_KEYS = ("text", "mc_value", "children")


def detect(path: Path, head: bytes) -> str | None:
    """Accept JSONL whose first record has ``question`` and ``reasoning_steps`` with ``mc_value``s."""
    record = head_record(path, head, ("question", "reasoning_steps"), suffix=None)
    if record == "first record is not a JSON object":
        # A nested tree's first line is often longer than the 64 KiB head: look for the key names.
        if head.lstrip().startswith(b"{") and not head_lacks_keys(head, ("question", "reasoning_steps", "mc_value")):
            return None
        return "first record is not a JSON object with question/reasoning_steps/mc_value"
    if isinstance(record, str):
        return record
    return None if not head_lacks_keys(head, ("mc_value",)) else "reasoning_steps carry no mc_value"


def _nested_paths(root: dict[str, Any], prefix: str, path: Path, line: int) -> list[tuple[list[StepRow], str]]:
    """(steps, leaf node id) per root-to-leaf path of a nested tree."""
    result: list[tuple[list[StepRow], str]] = []
    for tree_path in tree_paths(root, prefix, "reasoning_steps", path, line):
        rows: list[StepRow] = []
        for depth, (node, node_id, where) in enumerate(
            zip(tree_path.nodes, tree_path.node_ids, tree_path.locators, strict=True)
        ):
            text = require(node, "text", path, line, str, f"{where}.text")
            value = finite_number(node.get("mc_value"), path, line, f"{where}.mc_value", booleans=False)
            extra = {k: v for k, v in node.items() if k not in _NODE_KEYS}
            parent = tree_path.node_ids[depth - 1] if depth else None
            rows.append(StepRow(action=text, value=value, node_id=node_id, parent_id=parent, extra=extra))
        result.append((rows, tree_path.node_ids[-1]))
    return result


def _flat_parents(prefixes: list[str], question: str) -> tuple[list[int | None], list[int]]:
    """Return each entry's parent index (None: child of the question root) and the root entries."""
    first_of_text: dict[str, int] = {}
    for index, prefix in enumerate(prefixes):
        first_of_text.setdefault(prefix, index)
    roots = [i for i, prefix in enumerate(prefixes) if prefix.strip() == question.strip()]
    candidates = sorted(set(first_of_text.values()) - set(roots), key=lambda i: len(prefixes[i]))
    parents: list[int | None] = []
    for prefix in prefixes:
        parent = None
        for candidate in candidates:
            # candidates are sorted by length, so the last match is the longest proper prefix
            if len(prefixes[candidate]) >= len(prefix):
                break
            if prefix.startswith(prefixes[candidate]):
                parent = candidate
        parents.append(parent)
    return parents, roots


def _repeats(texts: list[str], values: list[float]) -> dict[int, list[dict[str, Any]]]:
    """Per first copy of a repeated prefix, every copy's entry index and value (only prefixes that repeat)."""
    copies: dict[str, list[int]] = {}
    for index, text in enumerate(texts):
        copies.setdefault(text, []).append(index)
    return {
        indices[0]: [{"index": i, "mc_value": values[i]} for i in indices]
        for indices in copies.values()
        if len(indices) > 1
    }


def _flat_paths(entries: list[Any], question: str, prefix: str, path: Path, line: int) -> tuple[list, list[float], int]:
    """Paths of a flat prefix list (steps, leaf node id), the root entries' values, and how many copies merged."""
    texts: list[str] = []
    values: list[float] = []
    for index, entry in enumerate(entries):
        where = f"reasoning_steps[{index}]"
        texts.append(require(entry, "solution_prefix", path, line, str, f"{where}.solution_prefix"))
        values.append(finite_number(entry.get("mc_value"), path, line, f"{where}.mc_value", booleans=False))
    parents, roots = _flat_parents(texts, question)
    repeats = _repeats(texts, values)
    merged = frozenset(copy["index"] for copies in repeats.values() for copy in copies[1:])
    result: list[tuple[list[StepRow], str]] = []
    for chain in leaf_chains(parents, excluded=frozenset(roots) | merged):
        leaf = chain[-1]
        if not texts[chain[0]].startswith(question):
            problem = "prefix does not start with the question"
            raise IngestError(str(path), problem, record=line, field=f"reasoning_steps[{chain[0]}].solution_prefix")
        rows: list[StepRow] = []
        for depth, index in enumerate(chain):
            start = len(texts[chain[depth - 1]]) if depth else len(question)
            extra = {k: v for k, v in entries[index].items() if k not in ("solution_prefix", "mc_value")}
            if index in repeats:
                extra["repeated_prefix"] = repeats[index]
            rows.append(
                StepRow(
                    action=texts[index][start:].strip(),
                    value=values[index],
                    node_id=f"{prefix}/p{index}",
                    parent_id=f"{prefix}/p{chain[depth - 1]}" if depth else None,
                    extra=extra,
                )
            )
        result.append((rows, f"{prefix}/p{leaf}"))
    return result, [values[i] for i in roots], len(merged - frozenset(roots))


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read an OmegaPRM/MATH-APS JSONL file (nested or flat) into canonical frames.

    Raises:
        IngestError: Invalid JSON, missing ``question``/``text``/``solution_prefix``, a missing, NaN or
            infinite ``mc_value``, malformed ``children``, or a flat prefix not starting with the question.
    """
    parsed = read_jsonl(path, options)
    builder = FrameBuilder()
    skipped = list(parsed.skipped)
    for line, record in parsed.records:
        question = require(record, "question", path, line, str)
        tree = require(record, "reasoning_steps", path, line, (dict, list))
        prefix = f"{path.stem}:{line}"
        meta: dict[str, Any] = {k: v for k, v in record.items() if k not in ("question", "reasoning_steps")}
        if isinstance(tree, dict):
            paths = _nested_paths(tree, prefix, path, line)
            meta["root_mc_value"] = finite_number(
                tree.get("mc_value"), path, line, "reasoning_steps.mc_value", optional=True, booleans=False
            )
            meta["layout"] = "nested"
            if tree.get("text") != question:
                meta["root_text"] = tree.get("text")  # kept: the root is normally the question itself
        else:
            paths, root_values, merged = _flat_paths(tree, question, prefix, path, line)
            meta["root_mc_value"] = root_values[0] if len(root_values) == 1 else root_values or None
            meta["layout"] = "flat"
            if merged:
                meta["merged_repeated_prefixes"] = merged
                skipped.append(
                    f"{path}:{line}: merged {merged} repeated solution prefix(es) into their first copy "
                    "(values kept in extra.repeated_prefix)"
                )
        if not paths:
            skipped.append(f"{path}:{line}: question has no reasoning steps, nothing ingested")
            continue
        for rows, leaf_id in paths:
            texts = [row.action for row in rows]
            for index, row in enumerate(rows):
                row.state = reasoning_state(question, texts[:index])
            builder.add(
                traj_id=leaf_id,
                group_id=text_key(question),
                outcome=rows[-1].value,
                steps=rows,
                prompt=question,
                meta=meta,
            )
    return builder.rollouts(options, run_config={"steps": "tree nodes"}, default_run=path.stem, skipped=skipped)

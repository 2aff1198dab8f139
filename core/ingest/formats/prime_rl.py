"""prime-rl v1 episode traces: ``{run_dir}/rollouts/step_{N}/{train|eval}/{all|effective}/traces.jsonl``.

Checked against the layout documented from PrimeIntellect-ai/prime-rl @ 559b4477 and verifiers @
a60a606e (``verifiers/v1/episode.py``, ``trace.py``, ``graph.py``; log-formats.md B.7, era 4). No real
file was available; the fixture is built from that layout. Older prime-rl files (legacy
``vf.RolloutOutput`` lines) are read by the ``verifiers`` adapter.

Each line is ``vf.Episode.to_record()``: ``{id, env, task, group{id}, run{type, work{step}}, ok, errors,
traces[]}``; each trace holds a message graph ``nodes[]`` (``{parent, message, sampled, token_ids,
logprobs, advantages, ...}``) and ``rewards{name: {score, weight}}``.

Mapping:

- trajectory: one per root-to-leaf path of a trace's node graph (sub-agents and compaction fork it);
  traj_id ``{episode id}/{trace id or index}`` plus ``/b{k}`` when the trace has several leaves.
- steps: the sampled assistant nodes along the path; the non-sampled messages before a sampled node
  (prompt, tool results, user turns) are its state. ``node_id`` = ``{episode}/{trace}/n{index}``,
  ``parent_id`` = the previous sampled node on the path, so branches of one trace share their prefix.
- per-token data of a sampled node (``token_ids``, ``mask``, ``logprobs``, ``advantages``,
  ``reference_logprobs``, ``loss_weights``, ...) goes into the step's ``extra``.
- outcome: Σ score·weight over ``rewards``; each component kept in ``meta["reward_components"]``.
- iteration: ``run.work.step``, else the ``step_N`` folder, else 0. group_id: ``group.id``.
  split: ``options.split``, else ``val`` when ``run.type`` is ``eval`` or the path has an ``eval``
  folder, else ``train``.
- meta: every other episode and trace field (``env``, ``task``, ``metrics``, ``calls``, ``timing``, ...).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from core.errors import IngestError
from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats._frames import FrameBuilder, StepRow, check_type, finite_number, require, step_token_arrays
from core.ingest.formats._rollout_records import head_record, read_jsonl
from core.ingest.formats._trees import leaf_chains
from core.ingest.messages import MessageFormatError, render_action, render_message

NAME = "prime_rl"
PRIORITY = 20
CHECKED_AGAINST = "PrimeIntellect-ai/prime-rl 559b4477 + verifiers a60a606e (v1 Episode.to_record traces.jsonl)"

_STEP_FOLDER = re.compile(r"^step_(\d+)$")
_NODE_TEXT_KEYS = frozenset({"parent", "message", "sampled"})
_TOKEN_KEYS = {
    "token_logprobs": "logprobs",
    "token_ref_logprobs": "reference_logprobs",
    "token_advantages": "advantages",
}
"""Per-token arrays of a sampled node (canonical name -> node key); ``token_ids`` stay in ``extra`` (ids, not text)."""
_EPISODE_MAPPED = frozenset({"id", "group", "traces"})
_TRACE_MAPPED = frozenset({"id", "nodes", "rewards"})


def detect(path: Path, head: bytes) -> str | None:
    """Accept JSONL whose first record is a v1 episode: ``traces`` list and a ``group`` object."""
    record = head_record(path, head)
    if isinstance(record, str):
        return record
    if not isinstance(record.get("traces"), list) or not isinstance(record.get("group"), dict):
        return "first record lacks a traces list and a group object (prime-rl v1 episode)"
    return None


def _iteration(record: dict[str, Any], path: Path, line: int) -> int:
    """``run.work.step``, else the ``step_N`` folder, else 0."""
    run = check_type(record.get("run") or {}, dict, path, line, "run")
    step = check_type(run.get("work") or {}, dict, path, line, "run.work").get("step")
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, int):
            raise IngestError(str(path), f"expected an integer, got {type(step).__name__}", line, "run.work.step")
        return step
    for folder in reversed(path.parent.parts):
        if match := _STEP_FOLDER.match(folder):
            return int(match.group(1))
    return 0


def _split(record: dict[str, Any], path: Path, options: AdapterOptions) -> str:
    """Forced, else from ``run.type`` or an ``eval`` folder."""
    if options.split is not None:
        return options.split
    run = record.get("run")
    if (isinstance(run, dict) and run.get("type") == "eval") or "eval" in path.parent.parts:
        return "val"
    return "train"


def _paths(nodes: list[Any], path: Path, line: int, field: str) -> list[list[int]]:
    """Root-to-leaf index paths of a node graph, leaves in index order."""
    parents: list[int | None] = []
    for index, node in enumerate(nodes):
        if not isinstance(node, dict) or not isinstance(node.get("message"), dict):
            raise IngestError(str(path), "node is not an object with a message", line, f"{field}[{index}]")
        parent = node.get("parent")
        if parent is not None and (not isinstance(parent, int) or not 0 <= parent < index):
            raise IngestError(
                str(path), f"parent must be an earlier node index, got {parent!r}", line, f"{field}[{index}].parent"
            )
        parents.append(parent)
    return leaf_chains(parents)


def _path_steps(
    nodes: list[dict[str, Any]], chain: list[int], prefix: str, path: Path, line: int, field: str
) -> list[StepRow]:
    """Steps (sampled nodes) along one root-to-leaf chain."""
    steps: list[StepRow] = []
    pending: list[str] = []
    previous: str | None = None
    try:
        for index in chain:
            node = nodes[index]
            message = node["message"]
            if not node.get("sampled"):
                pending.append(render_message(message, f"{field}[{index}].message"))
                continue
            node_id = f"{prefix}/n{index}"
            token_source = {name: node[key] for name, key in _TOKEN_KEYS.items() if node.get(key) is not None}
            arrays = step_token_arrays(token_source, path, line, f"{field}[{index}]")
            mapped = {_TOKEN_KEYS[name] for name in arrays}
            extra = {key: value for key, value in node.items() if key not in _NODE_TEXT_KEYS | mapped}
            extra["message"] = {k: v for k, v in message.items() if k not in ("role", "content")}
            steps.append(
                StepRow(
                    action=render_action(message, f"{field}[{index}].message"),
                    state="\n\n".join(pending),
                    node_id=node_id,
                    parent_id=previous,
                    extra=extra,
                    **arrays,
                )
            )
            pending, previous = [], node_id
    except MessageFormatError as exc:
        raise IngestError(str(path), exc.problem, line, exc.field) from exc
    if steps and pending:
        steps[-1].extra["trailing_messages"] = pending
    return steps


def _rewards(trace: dict[str, Any], path: Path, line: int, field: str) -> tuple[float, dict[str, Any]]:
    """Σ score·weight and the components."""
    rewards = trace.get("rewards") or {}
    if not isinstance(rewards, dict):
        raise IngestError(str(path), "expected an object of {name: {score, weight}}", line, f"{field}.rewards")
    total = 0.0
    components: dict[str, Any] = {}
    for name, entry in rewards.items():
        where = f"{field}.rewards.{name}"
        if not isinstance(entry, dict):
            raise IngestError(str(path), "expected {score, weight}", line, where)
        score = finite_number(entry.get("score"), path, line, f"{where}.score")
        weight = finite_number(entry.get("weight", 1.0), path, line, f"{where}.weight")
        components[name] = {"score": score, "weight": weight}
        total += score * weight
    return total, components


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read a prime-rl v1 ``traces.jsonl``; see the module docstring for the mapping.

    Raises:
        IngestError: Bad JSON, a missing ``id``/``group.id``, a malformed node graph or non-finite
            reward scores, naming the line and field (e.g. ``traces[0].nodes[3].parent``).
    """
    records, skipped = read_jsonl(path, options)
    builder = FrameBuilder()
    for line, record in records:
        episode_id = str(require(record, "id", path, line))
        group = require(record, "group", path, line, dict)
        if group.get("id") is None:
            raise IngestError(str(path), "missing group id", line, "group.id")
        traces = require(record, "traces", path, line, list)
        episode_meta = {key: value for key, value in record.items() if key not in _EPISODE_MAPPED}
        for trace_index, trace in enumerate(traces):
            field = f"traces[{trace_index}]"
            if not isinstance(trace, dict):
                raise IngestError(str(path), "expected a trace object", line, field)
            nodes = trace.get("nodes") or []
            outcome, components = _rewards(trace, path, line, field)
            trace_prefix = f"{episode_id}/{trace.get('id', trace_index)}"
            chains = _paths(nodes, path, line, f"{field}.nodes")
            for branch, chain in enumerate(chains):
                steps = _path_steps(nodes, chain, trace_prefix, path, line, f"{field}.nodes")
                if not steps:
                    continue  # a branch without a sampled turn (e.g. a lone prompt node) has nothing to credit
                trace_meta = {key: value for key, value in trace.items() if key not in _TRACE_MAPPED}
                prompt = steps[0].state
                builder.add(
                    traj_id=trace_prefix if len(chains) == 1 else f"{trace_prefix}/b{branch}",
                    iteration=_iteration(record, path, line),
                    group_id=str(group["id"]),
                    prompt=prompt,
                    split=_split(record, path, options),
                    outcome=outcome,
                    meta={**episode_meta, "trace": trace_meta, "reward_components": components, "group": group},
                    steps=steps,
                )
    if not len(builder):
        raise IngestError(str(path), "no trace holds a sampled assistant turn")
    return builder.rollouts(options, run_config={}, skipped=skipped)

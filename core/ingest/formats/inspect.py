"""Inspect AI evaluation logs: ``.eval`` zip archives and ``.json`` EvalLogs.

Checked against inspect_ai 0.3.285 (logs written through its own ``eval()`` on ``mockllm/model`` by
tests/fixtures/inspect_ai/current/make_fixtures.py: Zstandard ``.eval`` members, a ``react()`` agent), and
against UKGovernmentBEIS/inspect_ai @ 499e6152 (log version 2) with real logs written by inspect_ai 0.3.58
(2025-02) through 2025-09 (see tests/fixtures/inspect_ai/SOURCES.md).

Mapping (log-formats.md B.11):

- run: ``eval.task`` is the default run name; ``iteration`` is 0 (an eval has no training step) unless
  ``options.extra["iteration"]`` says otherwise; ``split`` is ``"val"`` unless ``options.split`` forces one.
- trajectory = sample x epoch, ``traj_id = "{file stem}/{sample id}/epoch{epoch}"``;
  group = sample ``id`` (its epochs are the group's rollouts).
- steps = one per assistant message (:func:`core.ingest.messages.messages_to_steps`); tool results and
  user turns between assistant turns form the next step's state. Inspect's tool calls
  (``{id, function: "name", arguments: {...}}``) are normalised to the shared shape first.
- outcome = the chosen scorer's value mapped by :mod:`._inspect_scores` (``options.extra["scorer"]``,
  default: the first scorer named in the header that the sample has). Every scorer's number is kept in
  ``meta["reward_components"]``; raw scores (answer, explanation, metadata) in ``meta["sample"]["scores"]``.
  An unscored sample gets outcome 0.0 and ``meta["scored"] = false`` (counted in ``run_config``).
- ``attachment://`` references are resolved in messages, input, output and scores; events and the
  attachment table are kept as they are in ``meta["sample"]``. Per-step logprobs and usage come from
  the ``model`` event whose output message id matches the step's assistant message.
- ``react()`` agents: the final ``submit`` call, which react() removes from ``messages``, is put back from
  the events (:mod:`._inspect_events`): it appears in the last step's action as ``[tool_call] submit(...)``
  and the step's ``extra["final_submit"]`` holds its arguments, result and ``"source": "events"``.
- ``.eval`` members may be stored, deflate, bzip2, LZMA or Zstandard (current Inspect) compressed; sizes
  are capped per member and per file (:mod:`._zip_members`, options ``max_member_mb``/``max_archive_mb``).
- Samples without any assistant message (e.g. errored before generating) are skipped with a note.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import IngestError
from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats._frames import FrameBuilder, StepRow, check_type, step_token_arrays
from core.ingest.formats._inspect_container import ZIP_MAGIC, InspectLog, read_inspect_log, resolve_attachments
from core.ingest.formats._inspect_events import final_submit, read_events, restore_dropped_calls
from core.ingest.formats._inspect_scores import choose_outcome_scorer, score_components
from core.ingest.formats._rollout_records import head_lacks_keys
from core.ingest.formats._zip_members import SizeLimits
from core.ingest.messages import MessageFormatError, messages_to_steps, render_message

NAME = "inspect"
PRIORITY = 20
CHECKED_AGAINST = (
    "inspect_ai 0.3.285 (Zstandard .eval, react() submit; logs written by its eval()) and @ 499e6152 "
    "(EvalLog version 2; real logs from inspect_ai 0.3.58 to 2025-09)"
)

_RESOLVED_SAMPLE_KEYS = ("messages", "input", "output", "scores", "target", "metadata")


def detect(path: Path, head: bytes) -> str | None:
    """Accept ``.eval`` zips and ``.json`` EvalLogs (keys ``version``, ``status``, ``eval``)."""
    if path.suffix == ".eval":
        return None if head.startswith(ZIP_MAGIC) else "a .eval file that is not a zip archive"
    if path.suffix != ".json":
        return "not a .eval or .json file"
    if not head.lstrip().startswith(b"{"):
        return "not a JSON object"
    missing = head_lacks_keys(head, ("version", "status", "eval"))
    if missing:
        return f"JSON lacks EvalLog keys {', '.join(missing)}"
    if head_lacks_keys(head, ("task", "model")):
        return "eval spec lacks task/model"
    return None


def _normalise_tool_calls(messages: list[Any]) -> list[Any]:
    """Rewrite Inspect tool calls (``function`` holds the name) to ``{name, arguments, ...}``, keeping all fields."""
    normalised: list[Any] = []
    for message in messages:
        if isinstance(message, dict) and isinstance(message.get("tool_calls"), list):
            calls = []
            for call in message["tool_calls"]:
                if isinstance(call, dict) and isinstance(call.get("function"), str):
                    call = {"name": call["function"], **{k: v for k, v in call.items() if k != "function"}}
                calls.append(call)
            message = {**message, "tool_calls": calls}
        normalised.append(message)
    return normalised


def _prompt_text(sample_input: Any) -> str | None:
    """Render the sample ``input`` (a string or a message list) as text."""
    if isinstance(sample_input, str):
        return sample_input
    if isinstance(sample_input, list):
        return "\n\n".join(render_message(m) for m in sample_input if isinstance(m, dict))
    return None


def _reductions_by_sample(reductions: Any, path: Path) -> dict[str, dict[str, Any]]:
    """Index epoch reductions as ``{str(sample_id): {scorer: reduced score}}``."""
    indexed: dict[str, dict[str, Any]] = {}
    for index, reduction in enumerate(check_type(reductions, list, path, "reductions", None)):
        if not isinstance(reduction, dict):
            continue
        samples = check_type(reduction.get("samples") or [], list, path, "reductions", f"[{index}].samples")
        for reduced in samples:
            if isinstance(reduced, dict) and "sample_id" in reduced:
                indexed.setdefault(str(reduced["sample_id"]), {})[str(reduction.get("scorer"))] = reduced
    return indexed


def _sample_steps(sample: dict[str, Any], path: Path, locator: str) -> list[StepRow]:
    """Convert a sample's messages into steps, attaching raw content parts, model-event details and dropped calls."""
    details = read_events(resolve_attachments(sample.get("events"), _attachments(sample)))
    messages, restored = restore_dropped_calls(_normalise_tool_calls(sample.get("messages") or []), details)
    messages = _normalise_tool_calls(messages)
    try:
        converted = messages_to_steps(messages, field_prefix="messages")
    except MessageFormatError as exc:
        raise IngestError(str(path), exc.problem, locator, exc.field) from exc
    assistant_messages = [m for m in messages if m.get("role") == "assistant"]
    steps: list[StepRow] = []
    for step, message in zip(converted, assistant_messages, strict=True):
        extra = dict(step["extra"])
        if isinstance(message.get("content"), list):
            # The rendered action flattens content parts; keep them (reasoning signatures, types) raw.
            extra["content_parts"] = message["content"]
        message_id = message.get("id") or ""
        extra.update(details.outputs.get(message_id, {}))
        arrays = _token_arrays(extra, path, locator, f"events(model {message_id}).logprobs")
        if message_id in restored:
            extra["restored_tool_calls"] = restored[message_id]
        if submit := final_submit(message_id, details, restored):
            extra["final_submit"] = submit
        steps.append(StepRow(action=step["action"], state=step["state"], extra=extra, **arrays))
    return steps


def _token_arrays(extra: dict[str, Any], path: Path, locator: str, field: str) -> dict[str, list[Any]]:
    """``tokens``/``token_logprobs`` from a model call's ``logprobs.content[{token, logprob, top_logprobs}]``.

    The texts and log-probs move to their columns; ``top_logprobs`` (alternatives, not the sampled token)
    stay in ``extra["logprobs"]``. Anything not in that shape is left in ``extra`` untouched.
    """
    logprobs = extra.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list) or not content:
        return {}
    if not all(isinstance(entry, dict) and isinstance(entry.get("token"), str) for entry in content):
        return {}  # not Inspect's Logprob shape (a token text per entry): kept as logged
    source = {
        "tokens": [entry.get("token") for entry in content],
        "token_logprobs": [entry.get("logprob") for entry in content],
    }
    arrays = step_token_arrays(source, path, locator, field)
    rest = {key: value for key, value in logprobs.items() if key != "content"}
    top = [entry.get("top_logprobs") for entry in content]
    if any(alternatives for alternatives in top):
        rest["top_logprobs"] = top
    if rest:
        extra["logprobs"] = rest
    else:
        extra.pop("logprobs")
    return arrays


def _attachments(sample: dict[str, Any]) -> dict[str, str]:
    attachments = sample.get("attachments")
    return attachments if isinstance(attachments, dict) else {}


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read an Inspect log into canonical frames (see the module docstring for the mapping).

    Options (``options.extra``): ``scorer`` (name of the scorer giving the outcome), ``iteration`` (int).

    Raises:
        IngestError: Corrupt zip or member, invalid JSON, malformed messages, non-finite score values.
    """
    log: InspectLog = read_inspect_log(path, SizeLimits.from_options(options.extra, path))
    eval_spec = log.header.get("eval") if isinstance(log.header.get("eval"), dict) else {}
    header_scorers = [s.get("name") for s in eval_spec.get("scorers") or [] if isinstance(s, dict)]
    requested_scorer = options.extra.get("scorer")
    iteration = int(options.extra.get("iteration", 0))
    split = options.split or "val"
    reductions = _reductions_by_sample(log.reductions, path)
    builder = FrameBuilder()
    skipped: list[str] = []
    unscored = 0
    for locator, raw_sample in log.samples:
        for key in ("id", "epoch"):
            if key not in raw_sample:
                raise IngestError(str(path), "missing required key", locator, key)
        attachments = _attachments(raw_sample)
        sample = {
            key: resolve_attachments(value, attachments) if key in _RESOLVED_SAMPLE_KEYS else value
            for key, value in raw_sample.items()
        }
        if not isinstance(sample.get("messages") or [], list):
            raise IngestError(str(path), "expected a list", locator, "messages")
        steps = _sample_steps(sample, path, locator)
        if not steps:
            skipped.append(f"{path}:{locator}: sample has no assistant message (error: {sample.get('error')!r:.80})")
            continue
        scores = sample.get("scores") if isinstance(sample.get("scores"), dict) else {}
        components = score_components(scores, str(path), locator)
        scorer = choose_outcome_scorer(scores, header_scorers, requested_scorer, str(path), locator)
        outcome = components.get(scorer) if scorer is not None else None
        if outcome is None:
            unscored += 1
        meta = {
            "sample": {key: value for key, value in sample.items() if key != "messages"},
            "reward_components": components,
            "outcome_scorer": scorer,
            "scored": outcome is not None,
            "reductions": reductions.get(str(sample["id"])),
        }
        builder.add(
            traj_id=f"{path.stem}/{sample['id']}/epoch{sample['epoch']}",
            iteration=iteration,
            group_id=str(sample["id"]),
            prompt=_prompt_text(sample.get("input")),
            split=split,
            outcome=0.0 if outcome is None else outcome,
            steps=steps,
            meta={key: value for key, value in meta.items() if value is not None},
        )
    if not len(builder):
        raise IngestError(str(path), "log holds no samples with an assistant message")
    run_config = {
        "inspect_header": log.header,
        "outcome_scorer": requested_scorer or (header_scorers[0] if header_scorers else None),
        "unscored_samples": unscored,
        "unread_members": log.unread_members,
    }
    return builder.rollouts(
        options,
        run_config=run_config,
        default_run=eval_spec.get("task") or path.stem,
        skipped=skipped,
    )

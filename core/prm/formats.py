"""Input recipes per PRM family: turn (problem, steps) into token ids plus where to read each step's score.

Each encoder follows the family's published recipe (``/work/shared/specs/log-formats.md`` part A) and
returns :class:`EncodedSequence` objects. All families but ``seqcls`` put every step of a trajectory
into ONE sequence and record the token position whose output scores each step, so a trajectory
costs one forward pass however many steps it has. Only tokenizers are used here: no torch.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace
from typing import Any

from core.prm.types import JUDGE_TEMPLATE, FormatSettings, Trajectory

QWEN_DEFAULT_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
QWEN_STEP_TAG = "<extra_0>"
SHEPHERD_STEP_TAG = "ки"


@dataclass(frozen=True)
class StepRead:
    """Where one step's score is read from a sequence's outputs.

    Attributes:
        step: 0-based step index in the trajectory.
        position: Token position whose output holds the score (the step's separator / tag, the
            position that predicts the assistant's ``+``, or the step's last token for ``implicit``);
            -1 for sequence-level outputs (``seqcls``).
        span_start: ``implicit`` only: first token of the step's span (its tokens are ``span_start..position``).
        last_needed: Last token position the score needs; the step is truncated when it is past the cut.
    """

    step: int
    position: int
    span_start: int
    last_needed: int


@dataclass
class EncodedSequence:
    """One model input and the steps it scores.

    Attributes:
        traj_index: Index of the trajectory in the caller's list.
        input_ids: Token ids (untruncated).
        reads: One entry per step scored from this sequence.
    """

    traj_index: int
    input_ids: list[int]
    reads: list[StepRead]


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _bos(tokenizer: Any) -> list[int]:
    return [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []


def _single_token_id(tokenizer: Any, text: str, what: str) -> int:
    """Id of a marker that must be one token (``<extra_0>``, ``ки``, ``+``): the last token of its encoding."""
    ids = _ids(tokenizer, text)
    if not ids:
        raise ValueError(f"{what} {text!r} encodes to no token with this tokenizer")
    return ids[-1]


def _read(step: int, position: int) -> StepRead:
    return StepRead(step=step, position=position, span_start=position, last_needed=position)


def encode_token_cls(tokenizer: Any, traj: Trajectory, index: int, settings: FormatSettings) -> list[EncodedSequence]:
    """TRL stepwise format: ``[bos] + prompt + Σ(step + separator)``; each score sits on the separator's last token.

    Pieces are tokenized separately exactly as TRL's ``tokenize_row`` does at training time, which also
    gives every separator position without searching.
    """
    ids = _bos(tokenizer) + _ids(tokenizer, traj.prompt)
    sep_ids = _ids(tokenizer, settings.separator)
    reads = []
    for k, step in enumerate(traj.steps):
        ids += _ids(tokenizer, step) + sep_ids
        reads.append(_read(k, len(ids) - 1))
    return [EncodedSequence(index, ids, reads)]


def encode_qwen(tokenizer: Any, traj: Trajectory, index: int, settings: FormatSettings) -> list[EncodedSequence]:
    """Qwen2.5-Math-PRM: ChatML with the steps joined by ``<extra_0>`` plus a trailing one; read each tag."""
    tag = settings.step_tag or QWEN_STEP_TAG
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("the qwen family needs a tokenizer with a chat template (Qwen2.5-Math-PRM ships one)")
    tag_id = _single_token_id(tokenizer, tag, "step tag")
    # A tag inside a step would shift every later score onto the wrong step, so it is removed.
    steps = [s.replace(tag, "") for s in traj.steps]
    messages = [
        {"role": "system", "content": settings.system_prompt or QWEN_DEFAULT_SYSTEM},
        {"role": "user", "content": traj.prompt},
        {"role": "assistant", "content": tag.join(steps) + tag},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    ids = _ids(tokenizer, text)
    positions = [i for i, t in enumerate(ids) if t == tag_id]
    positions = positions[-len(steps) :] if steps else []
    if len(positions) != len(steps):
        raise ValueError(f"found {len(positions)} {tag} tags for {len(steps)} steps; the prompt may contain the tag")
    return [EncodedSequence(index, ids, [_read(k, p) for k, p in enumerate(positions)])]


def encode_shepherd(tokenizer: Any, traj: Trajectory, index: int, settings: FormatSettings) -> list[EncodedSequence]:
    r"""Math-Shepherd: ``question + " " + "step ки\\nstep ки"``, no chat template; read the logits at each tag.

    The whole text is tokenized at once like the model card does. If the tag merges with its
    neighbours (so the tag id does not appear once per step), the pieces are tokenized separately and
    the tag id is appended after each step, which keeps the scores on the right steps.
    """
    tag = settings.step_tag or SHEPHERD_STEP_TAG
    tag_id = _single_token_id(tokenizer, tag, "step tag")
    steps = [s.replace(tag, "") for s in traj.steps]
    text = traj.prompt + " " + "\n".join(f"{s} {tag}" for s in steps)
    ids = list(tokenizer(text)["input_ids"])
    positions = [i for i, t in enumerate(ids) if t == tag_id]
    if len(positions) != len(steps):
        ids = _bos(tokenizer) + _ids(tokenizer, traj.prompt + " ")
        positions = []
        for k, step in enumerate(steps):
            ids += _ids(tokenizer, step + " ") + [tag_id]
            positions.append(len(ids) - 1)
            if k < len(steps) - 1:
                ids += _ids(tokenizer, "\n")
    return [EncodedSequence(index, ids, [_read(k, p) for k, p in enumerate(positions)])]


def encode_rlhflow(tokenizer: Any, traj: Trajectory, index: int, settings: FormatSettings) -> list[EncodedSequence]:
    """RLHFlow: a chat where each user turn is a step and each assistant turn is ``+``; one pass for all steps.

    The official code re-encodes the growing chat once per step. Here the full chat is encoded once
    and each assistant ``+`` is located through the character length of the chat rendered up to that
    turn's generation prompt; the score is read at the position just before it (which predicts it).
    """
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("the rlhflow family needs a tokenizer with a chat template")
    messages: list[dict[str, str]] = []
    for k, step in enumerate(traj.steps):
        messages.append({"role": "user", "content": f"{traj.prompt} {step}" if k == 0 else step})
        messages.append({"role": "assistant", "content": settings.good_token})
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    encoding = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(encoding["input_ids"]), list(encoding["offset_mapping"])
    starts = {start: i for i, (start, end) in enumerate(offsets) if end > start}
    reads = []
    for k in range(len(traj.steps)):
        prefix = tokenizer.apply_chat_template(messages[: 2 * k + 1], tokenize=False, add_generation_prompt=True)
        if not full.startswith(prefix):
            raise ValueError("the chat template does not render conversations prefix-consistently")
        token_index = starts.get(len(prefix))
        if token_index is None or token_index == 0:
            raise ValueError(f"the assistant {settings.good_token!r} of step {k} does not start a token")
        reads.append(_read(k, token_index - 1))
    return [EncodedSequence(index, ids, reads)]


def encode_seqcls(tokenizer: Any, traj: Trajectory, index: int, settings: FormatSettings) -> list[EncodedSequence]:
    """Sequence classifier: one input per prefix ``prompt + sep + steps[:k+1]`` (the one family that needs it)."""
    sequences = []
    for k in range(len(traj.steps)):
        text = traj.prompt + settings.separator + settings.separator.join(traj.steps[: k + 1])
        ids = list(tokenizer(text)["input_ids"])
        sequences.append(EncodedSequence(index, ids, [StepRead(k, -1, -1, len(ids) - 1)]))
    return sequences


def encode_implicit(tokenizer: Any, traj: Trajectory, index: int, settings: FormatSettings) -> list[EncodedSequence]:
    """Implicit PRM: prompt then steps joined by the separator; each step's span of tokens is recorded.

    The step score is β·Σ over the span of [log π(y_t|y_<t) − log π_ref(y_t|y_<t)]; the separator
    after a step belongs to that step's span, so the spans tile the response.
    """
    ids = _bos(tokenizer) + _ids(tokenizer, traj.prompt + settings.separator)
    if not ids:
        raise ValueError("implicit scoring needs at least one token before the first step (a BOS or a prompt)")
    reads = []
    for k, step in enumerate(traj.steps):
        piece = step + (settings.separator if k < len(traj.steps) - 1 else "")
        start = len(ids)
        ids += _ids(tokenizer, piece)
        if len(ids) == start:
            reads.append(StepRead(k, start - 1, start, start - 1))  # empty step: zero-length span
        else:
            reads.append(StepRead(k, len(ids) - 1, start, len(ids) - 1))
    return [EncodedSequence(index, ids, reads)]


JUDGE_PLACEHOLDERS = frozenset({"problem", "steps", "step", "k"})


def judge_settings(settings: FormatSettings) -> FormatSettings:
    """The ``judge`` family's settings with every default filled in, after checking the template's placeholders.

    Filled in so a judge scorer's identity names its exact question and answer tokens.

    Raises:
        ValueError: The template or prefill uses a placeholder other than ``{problem}``, ``{steps}``,
            ``{step}`` and ``{k}``, or is not a valid format string.
    """
    resolved = replace(
        settings,
        judge_template=JUDGE_TEMPLATE if settings.judge_template is None else settings.judge_template,
        judge_prefill=settings.judge_prefill or "",
        yes_token=settings.yes_token or "Yes",
        no_token=settings.no_token or "No",
    )
    for what, text in (("--judge-template", resolved.judge_template), ("--judge-prefill", resolved.judge_prefill)):
        try:
            names = {field for _, field, _, _ in string.Formatter().parse(text or "") if field is not None}
        except ValueError as exc:
            raise ValueError(f"{what} is not a valid template ({exc}); write literal braces as {{{{ and }}}}") from exc
        unknown = sorted(names - JUDGE_PLACEHOLDERS)
        if unknown:
            raise ValueError(f"{what} uses unknown placeholder(s) {', '.join(unknown)}; known: problem, steps, step, k")
    return resolved


def render_judge_prompt(traj: Trajectory, k: int, settings: FormatSettings) -> tuple[str, str]:
    """The judge's question about step ``k`` (0-based) and its answer prefill, placeholders filled."""
    fields = {
        "problem": traj.prompt,
        "steps": "\n".join(f"Step {i + 1}: {text}" for i, text in enumerate(traj.steps[: k + 1])),
        "step": traj.steps[k],
        "k": k + 1,
    }
    return (settings.judge_template or JUDGE_TEMPLATE).format(**fields), (settings.judge_prefill or "").format(**fields)


def encode_judge(tokenizer: Any, traj: Trajectory, index: int, settings: FormatSettings) -> list[EncodedSequence]:
    """Generative verifier: one input per step ``k`` asking whether it is correct; read the next-token logits.

    The question is the user turn of the tokenizer's chat template with the generation prompt added (when
    the tokenizer has a template), else the raw text after a BOS; the prefill follows. The score of step k
    is read at the last position, whose logits predict the answer token. Each step needs its own input
    because the question must come after the step it asks about (like ``seqcls``, inputs grow with k).
    """
    sequences = []
    for k in range(len(traj.steps)):
        question, prefill = render_judge_prompt(traj, k, settings)
        if getattr(tokenizer, "chat_template", None) is not None:
            messages = [{"role": "user", "content": question}]
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + prefill
            ids = _ids(tokenizer, text)
        else:
            ids = _bos(tokenizer) + _ids(tokenizer, question + prefill)
        sequences.append(EncodedSequence(index, ids, [_read(k, len(ids) - 1)]))
    return sequences


ENCODERS = {
    "token-cls": encode_token_cls,
    "qwen": encode_qwen,
    "shepherd": encode_shepherd,
    "rlhflow": encode_rlhflow,
    "seqcls": encode_seqcls,
    "implicit": encode_implicit,
    "judge": encode_judge,
}
"""Family name → encoder(tokenizer, trajectory, index, settings) -> list of sequences."""

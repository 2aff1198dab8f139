"""The scorer: a loaded PRM that turns trajectories into per-step scores, batched by a token budget.

Score ranges: every family returns a probability in [0, 1] except ``implicit``, which returns
β·Σ log(π/π_ref) over the step's tokens (unbounded, around 0; positive means the PRM model likes the
step more than the reference does).
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.prm.batching import PreparedSequence, default_batch_tokens, token_budget_batches, truncate
from core.prm.checks import PrmRefused, check_positive, check_tokenizer_fits, one_line
from core.prm.compiling import (
    AUTO_COMPILE_MIN_TOKENS,
    CompileBackend,
    CompileMode,
    compile_mode,
    compile_networks,
    describe_failure,
    uncompile_networks,
)
from core.prm.formats import ENCODERS, EncodedSequence
from core.prm.loading import build_spec, is_causal, load_model, resolve_device
from core.prm.types import FormatSettings, ProgressCallback, ScorerSpec, Trajectory, TrajectoryScores

_FALLBACK_MAX_LENGTH = 4096


@dataclass
class ScoringStats:
    """Counters of work done by a scorer since it was created.

    Attributes:
        forward_passes: Batches run through the model (a reference model's pass counts separately).
        tokens: Real (unpadded) tokens fed to the model.
        padded_tokens: Tokens including padding.
        seconds: Wall time spent in :meth:`Scorer.score`.
    """

    forward_passes: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    seconds: float = 0.0


class Scorer:
    """A PRM ready to score. Thread-safe: one lock serialises forward passes on the shared model.

    Attributes:
        spec: The scorer's identity.
        model: The loaded network.
        tokenizer: Its tokenizer.
        ref_model: Reference network for ``implicit``, else None.
        device: Where the networks live.
        max_length: Token limit applied to every sequence.
        batch_tokens: Default padded-token budget per forward pass (see :func:`default_batch_tokens`).
        compile_mode: ``"off"``, ``"on"`` or ``"auto"`` (see :meth:`__init__`).
        compiled: Whether the networks now run under ``torch.compile``.
        compile_error: Why compilation was abandoned for eager scoring, or None.
        auto_compile_min_tokens: Job size (tokens) from which ``"auto"`` compiles; None = never
            (CPU, where the gain was not measured).
        stats: Work counters.
    """

    def __init__(
        self,
        spec: ScorerSpec,
        model: Any,
        tokenizer: Any,
        device: str,
        ref_model: Any | None = None,
        *,
        compile: CompileMode | bool = "auto",
        compile_backend: CompileBackend = "inductor",
    ) -> None:
        """Wrap a loaded model.

        Args:
            spec: The scorer's identity.
            model: The network, already on ``device`` and in eval mode.
            tokenizer: Its tokenizer.
            device: Where the network lives.
            ref_model: Reference network for ``implicit``.
            compile: Run the networks under ``torch.compile``: ``"on"`` (or True) now, ``"off"``
                (or False) never, ``"auto"`` when a single :meth:`score` call on a GPU has at least
                :data:`~core.prm.compiling.AUTO_COMPILE_MIN_TOKENS` tokens (see
                :mod:`core.prm.compiling` for the measurements behind it).
            compile_backend: ``torch.compile`` backend (tests use ``"eager"``: graph capture only).
        """
        self.spec = spec
        self.model = model
        self.tokenizer = tokenizer
        self.ref_model = ref_model
        self.device = device
        self.max_length = spec.settings.max_length or _model_max_length(model, tokenizer)
        self.batch_tokens = default_batch_tokens(device)
        self.stats = ScoringStats()
        self._lock = threading.Lock()
        self._pad_id = _pad_id(tokenizer)
        self._networks = [m for m in (model, ref_model) if m is not None]
        self._padding_mask_needed = any(_padding_mask_needed(spec.family, m) for m in self._networks)
        for network in self._networks:
            if getattr(network, "config", None) is not None:
                # Nothing is generated after a scoring pass: a KV cache of the whole batch is memory for nothing.
                network.config.use_cache = False
        self.compile_mode: CompileMode = compile_mode(compile)
        self.compile_backend = compile_backend
        self.compiled = False
        self.compile_error: str | None = None
        self.auto_compile_min_tokens = AUTO_COMPILE_MIN_TOKENS if device.startswith("cuda") else None
        if self.compile_mode == "on":
            self._compile()
        if spec.family == "seqcls" and getattr(model.config, "pad_token_id", None) is None:
            # HF sequence classifiers find each row's last token through pad_token_id.
            model.config.pad_token_id = self._pad_id
        if spec.family in ("shepherd", "rlhflow"):
            self._good_id = _last_token_id(tokenizer, spec.settings.good_token)
            self._bad_id = _last_token_id(tokenizer, spec.settings.bad_token)
        elif spec.family == "judge":
            self._good_id = _single_answer_id(tokenizer, spec.settings.yes_token or "Yes", "--yes-token")
            self._bad_id = _single_answer_id(tokenizer, spec.settings.no_token or "No", "--no-token")

    @property
    def scorer_id(self) -> str:
        """Stable id of this scorer (see :attr:`ScorerSpec.scorer_id`)."""
        return self.spec.scorer_id

    @classmethod
    def load(
        cls,
        model: str,
        family: str,
        *,
        device: str = "auto",
        trust_remote_code: bool = False,
        revision: str | None = None,
        settings: FormatSettings | None = None,
        ref_model: str | None = None,
        spec: ScorerSpec | None = None,
        compile: CompileMode | bool = "auto",
        ref_revision: str | None = None,
        allow_random_init: bool = False,
    ) -> Scorer:
        """Load a PRM from a local folder or hub id, refusing one that does not fit its family.

        Args:
            model: Folder or hub id (``from_pretrained`` semantics).
            family: One of :data:`core.prm.types.FAMILIES`.
            device: ``"auto"``, ``"cuda"`` or ``"cpu"``.
            trust_remote_code: Allow the checkpoint's own Python code to run (needed by Qwen2.5-Math-PRM).
            revision: Hub revision.
            settings: Formatter settings (family defaults when None).
            ref_model: Reference LM for ``implicit``.
            spec: An already computed spec (skips fingerprinting again).
            compile: ``torch.compile`` policy (see :class:`Scorer`).
            ref_revision: Hub revision of the reference model.
            allow_random_init: Score even when transformers had to initialise weights the family needs
                randomly (benchmarks of real architectures only; the scores mean nothing).

        Raises:
            PrmRefused: The checkpoint cannot be loaded, lacks weights the family needs, or its tokenizer
                cannot express the family's format (see :mod:`core.prm.checks`).
        """
        spec = spec or build_spec(
            model, family, settings=settings, revision=revision, ref_model=ref_model, ref_revision=ref_revision
        )
        resolved = resolve_device(device)
        network, tokenizer = load_model(
            family,
            model,
            device=resolved,
            trust_remote_code=trust_remote_code,
            revision=revision,
            allow_random_init=allow_random_init,
        )
        reference = None
        if family == "implicit" and ref_model:
            reference, _ = load_model(
                family,
                ref_model,
                device=resolved,
                trust_remote_code=trust_remote_code,
                revision=ref_revision,
                allow_random_init=allow_random_init,
            )
        try:
            scorer = cls(spec, network, tokenizer, resolved, reference, compile=compile)
        except ValueError as exc:  # a +/- marker the tokenizer cannot encode
            raise PrmRefused(f"the {family} family does not fit {model}'s tokenizer: {one_line(exc)}") from exc
        check_tokenizer_fits(spec, scorer)
        return scorer

    def encode(self, trajectories: Sequence[Trajectory]) -> list[EncodedSequence]:
        """Token sequences for ``trajectories`` in this family's format (no truncation yet)."""
        encoder = ENCODERS[self.spec.family]
        sequences: list[EncodedSequence] = []
        for index, traj in enumerate(trajectories):
            sequences.extend(encoder(self.tokenizer, traj, index, self.spec.settings))
        return sequences

    def score(
        self,
        trajectories: Sequence[Trajectory],
        *,
        batch_tokens: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> list[TrajectoryScores]:
        """Score every step of every trajectory.

        Args:
            trajectories: Prompts and step texts.
            batch_tokens: Padded-token budget per forward pass; None = :attr:`batch_tokens`.
            progress: Called as ``progress(done, total)`` in steps after each batch (a step past the
                model's limit counts as done from the start: it will get no score).

        Returns:
            One :class:`TrajectoryScores` per trajectory, in order; steps past the cut are NaN and flagged.
        """
        started = time.perf_counter()
        results = [TrajectoryScores([math.nan] * len(t.steps), [False] * len(t.steps), 0) for t in trajectories]
        prepared = [truncate(seq, self.max_length) for seq in self.encode(trajectories)]
        for seq in prepared:
            results[seq.traj_index].n_tokens = max(results[seq.traj_index].n_tokens, seq.full_length)
            for step in seq.truncated_steps:
                results[seq.traj_index].truncated[step] = True
        check_positive("batch_tokens", batch_tokens)
        batches = token_budget_batches(prepared, batch_tokens or self.batch_tokens)
        job_tokens = sum(len(s.input_ids) for batch in batches for s in batch)
        total = sum(len(t.steps) for t in trajectories)
        done = sum(len(seq.truncated_steps) for seq in prepared)
        with self._lock:
            if self._should_auto_compile(job_tokens):
                self._compile()
            for batch in batches:
                for seq, values in zip(batch, self._forward(batch), strict=True):
                    for read, value in zip(seq.reads, values, strict=True):
                        results[seq.traj_index].scores[read.step] = value
                    done += len(seq.reads)
                if progress is not None:
                    progress(done, total)
        self.stats.seconds += time.perf_counter() - started
        return results

    def _should_auto_compile(self, job_tokens: int) -> bool:
        limit = self.auto_compile_min_tokens
        return self.compile_mode == "auto" and not self.compiled and limit is not None and job_tokens >= limit

    def set_compile_mode(self, mode: CompileMode | bool) -> None:
        """Change the compile policy of a loaded scorer (``"on"`` compiles now, ``"off"`` undoes it).

        Lets a shared, cached scorer serve callers that want different policies without a second copy
        of the model in memory.
        """
        mode = compile_mode(mode)
        with self._lock:
            self.compile_mode = mode
            if mode == "on" and not self.compiled:
                self._compile()
            elif mode == "off" and self.compiled:
                uncompile_networks(self._networks)
                self.compiled = False

    def _compile(self) -> None:
        compile_networks(self._networks, self.compile_backend)
        self.compiled = True

    def _forward(self, batch: list[PreparedSequence]) -> list[list[float]]:
        """:meth:`_run_batch`, falling back to eager for good if the compiled networks fail."""
        if not self.compiled:
            return self._run_batch(batch)
        try:
            return self._run_batch(batch)
        except Exception as exc:  # inductor/Triton missing or failing must not fail a scoring job
            uncompile_networks(self._networks)
            self.compiled, self.compile_mode = False, "off"
            self.compile_error = describe_failure(exc)
            warnings.warn(f"torch.compile failed, scoring eagerly: {self.compile_error}", RuntimeWarning, stacklevel=3)
            return self._run_batch(batch)

    def _run_batch(self, batch: list[PreparedSequence]) -> list[list[float]]:
        """One forward pass (two for ``implicit``) over a padded batch; scores grouped per sequence."""
        import torch

        from core.prm import heads

        lengths = [len(s.input_ids) for s in batch]
        width, real_tokens = max(lengths), sum(lengths)
        ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
        read_rows, read_pos, span_rows, span_pos, span_owner = [], [], [], [], []
        for row, seq in enumerate(batch):
            ids[row, : len(seq.input_ids)] = torch.tensor(seq.input_ids, dtype=torch.long)
            for read in seq.reads:
                read_rows.append(row)
                read_pos.append(read.position)
                for pos in range(read.span_start, read.position + 1):
                    span_rows.append(row)
                    span_pos.append(pos)
                    span_owner.append(len(read_rows) - 1)
        ids = ids.to(self.device, non_blocking=True)
        # None lets SDPA take its is_causal fast path (flash attention) instead of a masked kernel.
        mask = None
        if real_tokens < ids.numel() and self._padding_mask_needed:
            mask = (torch.arange(width) < torch.tensor(lengths)[:, None]).long().to(self.device, non_blocking=True)
        rows = torch.tensor(read_rows, device=self.device)
        positions = torch.tensor(read_pos, device=self.device)
        family = self.spec.family
        with torch.inference_mode():
            if family in ("token-cls", "qwen"):
                flat = heads.token_classifier_scores(self.model, ids, mask, rows, positions)
            elif family == "seqcls":
                flat = heads.sequence_classifier_scores(self.model, ids, mask)
            elif family in ("shepherd", "rlhflow", "judge"):
                flat = heads.good_bad_scores(self.model, ids, mask, rows, positions, self._good_id, self._bad_id)
            else:
                flat = self._implicit_scores(ids, mask, span_rows, span_pos, span_owner, len(read_rows))
            values = flat.float().cpu().tolist()  # one device sync per batch
        # Counted after the pass, so a pass retried eagerly (see _forward) counts once.
        self.stats.forward_passes += 1 + (self.ref_model is not None)
        self.stats.tokens += real_tokens
        self.stats.padded_tokens += len(batch) * width
        grouped, cursor = [], 0
        for seq in batch:
            grouped.append(values[cursor : cursor + len(seq.reads)])
            cursor += len(seq.reads)
        return grouped

    def _implicit_scores(
        self, ids: Any, mask: Any, span_rows: list[int], span_pos: list[int], span_owner: list[int], n_reads: int
    ) -> Any:
        """β·Σ_span [log π(y_t) − log π_ref(y_t)] per step."""
        import torch

        from core.prm import heads

        rows = torch.tensor(span_rows, device=self.device, dtype=torch.long)
        positions = torch.tensor(span_pos, device=self.device, dtype=torch.long)
        owner = torch.tensor(span_owner, device=self.device, dtype=torch.long)
        policy = heads.token_logprobs(self.model, ids, mask, rows, positions)
        reference = heads.token_logprobs(self.ref_model, ids, mask, rows, positions)
        totals = torch.zeros(n_reads, device=self.device, dtype=torch.float32)
        totals.index_add_(0, owner, policy - reference)
        return self.spec.settings.beta * totals


def _padding_mask_needed(family: str, model: Any) -> bool:
    """Whether padded batches must carry an attention mask for this model.

    Batches are right-padded. In a causal decoder a real token attends only to earlier positions, all
    real, so padding after it cannot change its output and position ids (0, 1, ...) are the same with or
    without the mask; the mask only costs a slower attention kernel. Bidirectional encoders would attend
    to the padding, and HF sequence classifiers locate each row's last token through the padding, so
    both keep it.
    """
    if family == "seqcls":
        return True
    config = getattr(model, "config", None)
    return config is None or not is_causal(config.to_dict())


def _model_max_length(model: Any, tokenizer: Any) -> int:
    """The model's position limit, else the tokenizer's (ignoring its 'no limit' sentinel), else 4096."""
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit:
        return int(limit)
    tok_limit = getattr(tokenizer, "model_max_length", None)
    return int(tok_limit) if tok_limit and tok_limit < 10**9 else _FALLBACK_MAX_LENGTH


def _pad_id(tokenizer: Any) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0  # padded positions are never read (and masked wherever they could be attended to), so any id works


def _last_token_id(tokenizer: Any, text: str) -> int:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"token {text!r} encodes to nothing with this tokenizer")
    return int(ids[-1])


def _single_answer_id(tokenizer: Any, text: str, flag: str) -> int:
    """Id of a judge's answer, which must be one token: P(answer) is read from a single next-token softmax."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(
            f"{flag} {text!r} encodes to {len(ids)} tokens with this tokenizer; the judge reads one next token, so "
            "choose an answer that is a single token (e.g. with or without a leading space)"
        )
    return int(ids[0])

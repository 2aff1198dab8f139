"""Finding, fingerprinting, describing and loading PRM checkpoints (torch and transformers are imported lazily).

Remote code is never implied: ``trust_remote_code`` reaches ``from_pretrained`` exactly as the user
gave it, and a checkpoint that needs custom code fails with a message naming the flag instead of
silently loading a randomly initialised head.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.errors import CreditscopeError
from core.prm.checks import PrmRefused, check_device, check_loading_info, check_settings, one_line
from core.prm.formats import judge_settings
from core.prm.hub import hub_file, hub_reachable
from core.prm.types import FAMILIES, FormatSettings, ScorerSpec

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_SAMPLE_BYTES = 1 << 20
_FULL_HASH_LIMIT = 64 << 20
_SPREAD_SAMPLES = 64
_SPREAD_BYTES = 64 << 10


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` → ``"cuda"`` when a GPU is visible, else ``"cpu"``; a CUDA device that is not there is refused."""
    if device != "auto":
        check_device(device)
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_model_reference(model: str) -> None:
    """Refuse a model reference that names a local folder which is not there.

    Hub ids are ``name`` or ``org/name``; anything written as a filesystem path (absolute, relative
    with ``./`` or ``../``, home-relative, or with more than one ``/``) is meant as a folder. Without
    this check a typo in a path reaches the hub client, which fails with a confusing repo-id traceback.

    Raises:
        CreditscopeError: ``model`` looks like a path and no folder exists there.
    """
    if Path(model).is_dir():
        return
    looks_local = model.startswith(("/", "./", "../", "~", ".\\")) or model.count("/") > 1 or "\\" in model
    if looks_local:
        what = "is a file, not a checkpoint folder" if Path(model).exists() else "does not exist"
        raise CreditscopeError(f"model folder {model!r} {what} (give a local checkpoint folder or a hub id org/name)")


def fingerprint(model: str, revision: str | None = None) -> str:
    """Identify the exact weights behind ``model`` without loading them.

    A local folder is hashed: small files (config, tokenizer) in full, weight files by name, size, their
    first and last MiB and 64 slices of 64 KiB spread evenly between, when larger than 64 MiB. Hashing
    15 GB of shards on every rescore would cost more than the cache saves; the spread slices land in
    every layer's weights, so two checkpoints of one run that share frozen embeddings and an unchanged
    last tensor still differ.
    A hub id resolves to the commit sha of ``revision`` (default branch when None).

    Args:
        model: Local folder or hub id.
        revision: Hub branch, tag or commit.

    Returns:
        ``"local:<sha256>"`` or ``"hub:<commit sha>"``.

    Raises:
        CreditscopeError: ``model`` is written as a local path that does not exist.
    """
    check_model_reference(model)
    path = Path(model)
    if path.is_dir():
        hasher = hashlib.sha256()
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = file.relative_to(path).as_posix()
            size = file.stat().st_size
            hasher.update(f"{rel}\0{size}\0".encode())
            with open(file, "rb") as fh:
                if size <= _FULL_HASH_LIMIT or not rel.endswith(_WEIGHT_SUFFIXES):
                    hasher.update(fh.read())
                else:
                    _hash_samples(hasher, fh, size)
        return f"local:{hasher.hexdigest()}"
    # The cached config lives under .../snapshots/<commit sha>/, which pins the whole repo revision.
    config_path = Path(hub_file(model, "config.json", revision))
    return f"hub:{config_path.parent.name}"


def _hash_samples(hasher: Any, fh: Any, size: int) -> None:
    """Feed the head, the tail and evenly spread slices of a large file to ``hasher``."""
    hasher.update(fh.read(_SAMPLE_BYTES))
    step = (size - 2 * _SAMPLE_BYTES) // (_SPREAD_SAMPLES + 1)
    for k in range(1, _SPREAD_SAMPLES + 1):
        fh.seek(_SAMPLE_BYTES + k * step)
        hasher.update(fh.read(_SPREAD_BYTES))
    fh.seek(size - _SAMPLE_BYTES)
    hasher.update(fh.read(_SAMPLE_BYTES))


def read_config(model: str, revision: str | None = None) -> dict[str, Any]:
    """The raw ``config.json`` of a folder or hub id, read as JSON (no custom code runs).

    Raises:
        PrmRefused: The folder has no readable ``config.json`` (empty, or not a transformers checkpoint).
    """
    path = Path(model)
    config_file = path / "config.json" if path.is_dir() else Path(hub_file(model, "config.json", revision))
    if not config_file.is_file():
        raise PrmRefused(f"model folder {model!r} has no config.json: it is not a transformers checkpoint")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PrmRefused(f"{config_file}: unreadable config ({one_line(exc)})") from exc
    if not isinstance(config, dict):
        raise PrmRefused(f"{config_file}: expected a JSON object, got {type(config).__name__}")
    return config


# Model types PRMs are commonly built on, answered without importing transformers' auto-model tables
# (about 3 s of imports, which a fully cached rescore would otherwise pay for nothing).
_KNOWN_DECODERS = frozenset(
    {"llama", "qwen2", "qwen3", "qwen2_moe", "qwen3_moe", "mistral", "mixtral", "gemma", "gemma2", "gemma3_text"}
    | {"phi", "phi3", "gpt2", "gpt_neox", "olmo", "olmo2", "deepseek_v2", "deepseek_v3", "granite"}
)
# Types with a causal-LM head whose attention is nevertheless bidirectional (permutation LM).
_BIDIRECTIONAL_CAUSAL_LM = frozenset({"xlnet"})


def is_causal(config: dict[str, Any]) -> bool:
    """Whether a checkpoint's outputs at a position depend only on that token and earlier ones.

    This decides two things: whether a step's cached score may be reused when only later steps
    change, and whether padding after a sequence can be left unmasked. Both go wrong silently if a
    bidirectional model is called causal, so anything not known to be a decoder-only LM counts as
    bidirectional: a type must have a causal-LM head in transformers and no masked-LM head, must not be
    an encoder-decoder, and its config must not switch on bidirectional attention (EmbeddingGemma-style).

    Args:
        config: The checkpoint's ``config.json`` as a dict (or ``PretrainedConfig.to_dict()``).
    """
    if config.get("is_encoder_decoder") or config.get("use_bidirectional_attention"):
        return False
    model_type = config.get("model_type")
    if model_type in _KNOWN_DECODERS:
        return True
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    return (
        model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
        and model_type not in _BIDIRECTIONAL_CAUSAL_LM
    )


def _auto_class(family: str, trust_remote_code: bool) -> Any:
    import transformers

    if family == "qwen":
        # Qwen2ForProcessRewardModel is custom code registered under AutoModel; without remote code the
        # same weights load as a native 2-label token classifier only if they were converted to one.
        return transformers.AutoModel if trust_remote_code else transformers.AutoModelForTokenClassification
    if family == "token-cls":
        return transformers.AutoModelForTokenClassification
    if family == "seqcls":
        return transformers.AutoModelForSequenceClassification
    return transformers.AutoModelForCausalLM


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' loading bars and warnings for the block, then restore what was set."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _load_errors() -> tuple[type[BaseException], ...]:
    """What ``from_pretrained`` raises for a broken, partial or unfitting checkpoint (not programming errors)."""
    from safetensors import SafetensorError

    return (OSError, ValueError, KeyError, RuntimeError, ImportError, SafetensorError)


def load_model(
    family: str,
    model: str,
    *,
    device: str,
    trust_remote_code: bool = False,
    revision: str | None = None,
    allow_random_init: bool = False,
) -> tuple[Any, Any]:
    """Load a PRM and its tokenizer with ``from_pretrained`` onto ``device``.

    On CUDA the weights load in bf16 (fp16 on GPUs without bf16) with SDPA attention; on CPU in fp32.

    Args:
        family: PRM family (decides the auto class).
        model: Local folder or hub id.
        device: ``"cuda"``, ``"cpu"``, ``"cuda:1"``...
        trust_remote_code: Passed through verbatim; never switched on here.
        revision: Hub revision.
        allow_random_init: Accept weights transformers had to initialise randomly (benchmarks only).

    Returns:
        ``(model, tokenizer)`` with the model in eval mode.

    Raises:
        PrmRefused: The checkpoint needs custom code and ``trust_remote_code`` is False, cannot be read, or
            lacks weights the family's network needs (see :func:`core.prm.checks.check_loading_info`).
    """
    import torch

    config = read_config(model, revision)
    if family == "qwen" and not trust_remote_code and "AutoModel" in config.get("auto_map", {}):
        raise PrmRefused(
            f"{model} ships its own modeling code ({config['auto_map']['AutoModel']}); read it, then re-run "
            "with --trust-remote-code (trust_remote_code=True) to allow executing it"
        )
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, "revision": revision}
    if not Path(model).is_dir() and not hub_reachable():
        kwargs["local_files_only"] = True  # the files are in the hub cache (hub_file found them); don't wait on it
    if device.startswith("cuda"):
        kwargs["dtype"] = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        kwargs["attn_implementation"] = "sdpa"
    else:
        kwargs["dtype"] = torch.float32
    auto_class = _auto_class(family, trust_remote_code)
    # transformers' progress bars and load report would bury a refusal's one line (and the checks below
    # say what matters about missing weights).
    with _quiet_transformers():
        return _from_pretrained(auto_class, model, family, device, kwargs, allow_random_init)


def _from_pretrained(
    auto_class: Any, model: str, family: str, device: str, kwargs: dict[str, Any], allow_random_init: bool
) -> tuple[Any, Any]:
    from transformers import AutoTokenizer

    try:
        try:
            network, info = auto_class.from_pretrained(model, output_loading_info=True, **kwargs)
        except ValueError as exc:
            if "attn_implementation" not in kwargs or "sdpa" not in str(exc).lower():
                raise
            kwargs.pop("attn_implementation")  # an architecture without SDPA support still loads, just slower
            network, info = auto_class.from_pretrained(model, output_loading_info=True, **kwargs)
        check_loading_info(model, family, network, info, allow_random_init=allow_random_init)
        network.to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(
            model,
            revision=kwargs["revision"],
            trust_remote_code=kwargs["trust_remote_code"],
            local_files_only=kwargs.get("local_files_only", False),
        )
    except PrmRefused:
        raise
    except _load_errors() as exc:
        raise PrmRefused(f"cannot load {model} as a {family} PRM: {one_line(exc)}") from exc
    return network, tokenizer


def build_spec(
    model: str,
    family: str,
    *,
    settings: FormatSettings | None = None,
    revision: str | None = None,
    ref_model: str | None = None,
    ref_revision: str | None = None,
) -> ScorerSpec:
    """Describe a scorer without loading its weights (enough to compute its ``scorer_id``).

    ``revision`` pins the PRM and ``ref_revision`` the reference model (hub default branch when None):
    the two are different repositories, so one revision rarely names a commit of both.

    Raises:
        PrmRefused: Unknown family, ``implicit`` without a reference model, bad settings, or a model folder
            that holds no checkpoint (a ``ValueError`` as well).
    """
    if family not in FAMILIES:
        raise PrmRefused(f"unknown PRM family {family!r}; choose one of {', '.join(FAMILIES)}")
    if family == "implicit" and not ref_model:
        raise PrmRefused("the implicit family needs a reference model (ref_model / --ref-model)")
    settings = settings or FormatSettings()
    check_settings(settings)
    if family == "judge":
        try:
            settings = judge_settings(settings)  # defaults written out: the identity names the exact question
        except ValueError as exc:
            raise PrmRefused(str(exc)) from exc
    for folder in (model, ref_model):
        if folder and Path(folder).is_dir() and not (Path(folder) / "config.json").is_file():
            what = "is empty" if not any(Path(folder).iterdir()) else "has no config.json"
            raise PrmRefused(f"model folder {folder!r} {what}: it is not a transformers checkpoint")
    if Path(model).is_dir():
        model = str(Path(model).resolve())  # the spec stored with the scores should work from any directory
    if ref_model and Path(ref_model).is_dir():
        ref_model = str(Path(ref_model).resolve())
    return ScorerSpec(
        family=family,
        model=model,
        fingerprint=fingerprint(model, revision),
        settings=settings,
        ref_model=ref_model if family == "implicit" else None,
        ref_fingerprint=fingerprint(ref_model, ref_revision) if family == "implicit" and ref_model else None,
    )


def spec_is_prefix_causal(spec: ScorerSpec, revision: str | None = None) -> bool:
    """Whether each step's score depends only on the prompt and the steps up to it (decides cache keys)."""
    if spec.family != "token-cls":
        return True  # causal LMs, and seqcls which only ever sees the prefix
    return is_causal(read_config(spec.model, revision))

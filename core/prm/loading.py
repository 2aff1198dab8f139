"""Finding, fingerprinting and loading PRM checkpoints (torch and transformers are imported lazily).

Remote code is never implied: ``trust_remote_code`` reaches ``from_pretrained`` exactly as the user
gave it, and a checkpoint that needs custom code fails with a message naming the flag instead of
silently loading a randomly initialised head.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from core.errors import CreditscopeError

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_SAMPLE_BYTES = 1 << 20
_FULL_HASH_LIMIT = 64 << 20


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` → ``"cuda"`` when a GPU is visible, else ``"cpu"``; other values pass through."""
    if device != "auto":
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

    A local folder is hashed: small files (config, tokenizer) in full, weight files by name, size and
    their first and last MiB when larger than 64 MiB (hashing 15 GB of shards on every rescore would
    cost more than the cache saves; a retrained checkpoint changes its safetensors header and tail).
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
                    hasher.update(fh.read(_SAMPLE_BYTES))
                    fh.seek(size - _SAMPLE_BYTES)
                    hasher.update(fh.read(_SAMPLE_BYTES))
        return f"local:{hasher.hexdigest()}"
    from huggingface_hub import hf_hub_download

    # The cached config lives under .../snapshots/<commit sha>/, which pins the whole repo revision.
    config_path = Path(hf_hub_download(model, "config.json", revision=revision))
    return f"hub:{config_path.parent.name}"


def read_config(model: str, revision: str | None = None) -> dict[str, Any]:
    """The raw ``config.json`` of a folder or hub id, read as JSON (no custom code runs)."""
    path = Path(model)
    if path.is_dir():
        config_file = path / "config.json"
    else:
        from huggingface_hub import hf_hub_download

        config_file = Path(hf_hub_download(model, "config.json", revision=revision))
    return json.loads(config_file.read_text(encoding="utf-8"))


# Model types PRMs are commonly built on, answered without importing transformers' auto-model tables
# (about 3 s of imports, which a fully cached rescore would otherwise pay for nothing).
_KNOWN_DECODERS = frozenset(
    {"llama", "qwen2", "qwen3", "qwen2_moe", "qwen3_moe", "mistral", "mixtral", "gemma", "gemma2", "gemma3_text"}
    | {"phi", "phi3", "gpt2", "gpt_neox", "olmo", "olmo2", "deepseek_v2", "deepseek_v3", "granite"}
)
_KNOWN_ENCODERS = frozenset(
    {"bert", "roberta", "xlm-roberta", "deberta", "deberta-v2", "electra", "distilbert", "albert", "modernbert"}
)


def is_causal(config: dict[str, Any]) -> bool:
    """Whether a checkpoint's outputs at a position depend only on earlier tokens.

    Encoder-only model types (those with a masked-LM head in transformers, e.g. BERT, RoBERTa) are
    bidirectional; everything else used for PRMs here is a decoder-only LM. Common types are looked up
    in a small table; any other type is decided by transformers' own masked-LM mapping.
    """
    model_type = config.get("model_type")
    if model_type in _KNOWN_DECODERS or model_type in _KNOWN_ENCODERS:
        return model_type in _KNOWN_DECODERS
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    return model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


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


def load_model(
    family: str,
    model: str,
    *,
    device: str,
    trust_remote_code: bool = False,
    revision: str | None = None,
) -> tuple[Any, Any]:
    """Load a PRM and its tokenizer with ``from_pretrained`` onto ``device``.

    On CUDA the weights load in bf16 (fp16 on GPUs without bf16) with SDPA attention; on CPU in fp32.

    Args:
        family: PRM family (decides the auto class).
        model: Local folder or hub id.
        device: ``"cuda"``, ``"cpu"``, ``"cuda:1"``...
        trust_remote_code: Passed through verbatim; never switched on here.
        revision: Hub revision.

    Returns:
        ``(model, tokenizer)`` with the model in eval mode.

    Raises:
        ValueError: The checkpoint needs custom code and ``trust_remote_code`` is False.
    """
    import torch
    from transformers import AutoTokenizer

    config = read_config(model, revision)
    if family == "qwen" and not trust_remote_code and "AutoModel" in config.get("auto_map", {}):
        raise ValueError(
            f"{model} ships its own modeling code ({config['auto_map']['AutoModel']}); read it, then re-run "
            "with --trust-remote-code (trust_remote_code=True) to allow executing it"
        )
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, "revision": revision}
    if device.startswith("cuda"):
        kwargs["dtype"] = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        kwargs["attn_implementation"] = "sdpa"
    else:
        kwargs["dtype"] = torch.float32
    auto_class = _auto_class(family, trust_remote_code)
    try:
        network = auto_class.from_pretrained(model, **kwargs)
    except ValueError as exc:
        if "attn_implementation" not in kwargs or "sdpa" not in str(exc).lower():
            raise
        kwargs.pop("attn_implementation")  # an architecture without SDPA support still loads, just slower
        network = auto_class.from_pretrained(model, **kwargs)
    network.to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(model, revision=revision, trust_remote_code=trust_remote_code)
    return network, tokenizer

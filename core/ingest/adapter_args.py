"""Adapter options on the command line: the ``creditscope ingest`` flags that go to ``AdapterOptions.extra``.

Kept apart from :mod:`core.cli` (which only wires them) and free of heavy imports, so ``--help`` stays fast.
The dashboard's Ingest page offers the same options through :data:`FIELD_OPTIONS`.
"""

from __future__ import annotations

import argparse
from typing import Any

FIELD_OPTIONS: dict[str, str] = {
    "reward_field": "dotted path of the reward in each record of a messages-style file (e.g. reward_info.reward)",
    "group_field": "dotted path of the group id in each record of a messages-style file",
    "id_field": "dotted path of the trajectory id in each record of a messages-style file",
}
"""Record-field overrides for messages-style formats (``openai_messages``): option name -> help."""


def _positive_mb(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number of MiB, got {text!r}") from exc
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of MiB, got {text!r}")
    return value


def add_adapter_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the adapter flags to the ``ingest`` parser."""
    for name, help_text in FIELD_OPTIONS.items():
        parser.add_argument("--" + name.replace("_", "-"), metavar="DOTTED.PATH", help=help_text)
    parser.add_argument(
        "--max-member-mb",
        type=_positive_mb,
        metavar="MIB",
        help="largest uncompressed archive member read (.eval logs; default 256)",
    )
    parser.add_argument(
        "--max-archive-mb",
        type=_positive_mb,
        metavar="MIB",
        help="largest total uncompressed size read from one archive (default 1024)",
    )


def adapter_extra(args: argparse.Namespace) -> dict[str, Any]:
    """The ``AdapterOptions.extra`` entries the user set on the command line."""
    names = (*FIELD_OPTIONS, "max_member_mb", "max_archive_mb")
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}

"""Adapter options on the command line: the ``creditscope ingest`` flags that go to ``AdapterOptions.extra``.

Kept apart from :mod:`core.cli` (which only wires them) and free of heavy imports, so ``--help`` stays fast.
The dashboard's Ingest page offers the same options through :data:`FIELD_OPTIONS`.
"""

from __future__ import annotations

import argparse
from typing import Any

from core.errors import CreditscopeError

FIELD_FORMATS: tuple[str, ...] = ("openai_messages",)
"""Formats that honour the record-field overrides; with any other, they would be ignored silently."""


class FieldOptionError(CreditscopeError, ValueError):
    """A record-field override was given for a format that does not read it."""


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
    """The ``AdapterOptions.extra`` entries the user set on the command line.

    Raises:
        FieldOptionError: ``--reward-field``/``--group-field``/``--id-field`` without ``--format`` naming a
            format that reads them (auto-detection could pick another format, which would ignore them).
    """
    names = (*FIELD_OPTIONS, "max_member_mb", "max_archive_mb")
    extra = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    given = ["--" + name.replace("_", "-") for name in FIELD_OPTIONS if name in extra]
    fmt = str(getattr(args, "format", "auto")).replace("-", "_")
    if given and fmt not in FIELD_FORMATS:
        raise FieldOptionError(
            f"{', '.join(given)} name record fields of messages-style files: add --format "
            f"{' or '.join(FIELD_FORMATS)} (with --format {fmt} they would be ignored)"
        )
    return extra

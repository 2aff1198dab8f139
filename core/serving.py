"""Who may reach the dashboard, and which files its path boxes may read.

``creditscope serve`` binds 127.0.0.1 by default: only this machine reaches the dashboard, and its Ingest
page may read any file the server's user can read (the user is reading their own files). Binding any
other address serves the dashboard to other machines, whose users must not get that power, so it needs
``--allow-remote``; the Ingest page's path boxes (load and follow) then read only under the
``--data-root`` folders (none given: the path boxes read nothing and uploads are the way in), and the
Rescore page loads only the demo PRM or a model under them, with no checkpoint code and no Ray address. The
serve command hands these settings to the dashboard process through environment variables.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import CreditscopeError

REMOTE_ENV = "CREDITSCOPE_ALLOW_REMOTE"
ROOTS_ENV = "CREDITSCOPE_DATA_ROOTS"
_GLOB = set("*?[")


def is_loopback(address: str) -> bool:
    """Whether binding ``address`` serves this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name, or "" (every interface): it may well be reachable from elsewhere


@dataclass(frozen=True)
class ServeAccess:
    """What the served dashboard lets its users read from the server's disk.

    Attributes:
        remote: Served beyond loopback (``--allow-remote``).
        roots: ``--data-root`` folders, resolved; when any is given (or when remote) the path boxes
            read only under them.
    """

    remote: bool = False
    roots: tuple[Path, ...] = ()

    @property
    def restricted(self) -> bool:
        """Whether paths typed into the dashboard are checked against :attr:`roots`."""
        return self.remote or bool(self.roots)

    def to_env(self) -> dict[str, str]:
        """Environment variables that carry these settings to the dashboard process."""
        return {REMOTE_ENV: "1" if self.remote else "", ROOTS_ENV: os.pathsep.join(str(r) for r in self.roots)}

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServeAccess:
        """The settings ``creditscope serve`` handed over (none: a local dashboard, unrestricted)."""
        env = dict(os.environ) if env is None else env
        roots = tuple(Path(r) for r in env.get(ROOTS_ENV, "").split(os.pathsep) if r)
        return cls(remote=env.get(REMOTE_ENV, "") == "1", roots=roots)

    def describe(self) -> str:
        """One line for the Ingest page: what its path boxes may read."""
        if not self.restricted:
            return ""
        who = "other machines (--allow-remote)" if self.remote else "this machine"
        if not self.roots:
            return f"This dashboard is served to {who} without --data-root: the path boxes read nothing; upload files."
        return f"This dashboard is served to {who}: the path boxes read only under " + ", ".join(map(str, self.roots))

    def check_paths(self, raw_paths: Iterable[str]) -> None:
        """Refuse typed paths that name, or lead through links to, anything outside :attr:`roots`.

        Each path is checked as typed (before anything is read, so a path outside the roots does not
        even learn whether it exists) and then every file it expands to, with links resolved, together
        with the side files adapters read beside them.

        Raises:
            CreditscopeError: One line naming the first path that is not allowed.
        """
        if not self.restricted:
            return
        raws = list(raw_paths)
        if raws and not self.roots:
            raise CreditscopeError(
                f"{raws[0]}: this dashboard is served to other machines without --data-root, so its path boxes "
                "read no files; upload them instead, or restart `creditscope serve` with --data-root DIR"
            )
        for raw in raws:
            static = _static_part(raw)
            if not (self._inside(Path(os.path.normpath(os.path.abspath(static)))) or self._inside(static.resolve())):
                raise self._outside(raw)
            for path in _files_read_for(raw):
                if not self._inside(path.resolve()):
                    raise self._outside(raw, path)

    def check_rescore(
        self, model: str, trust_remote_code: bool, ray_address: str | None, shipped: Sequence[str] = ()
    ) -> None:
        """Refuse Rescore settings that would let the dashboard's users read or run what they choose on the server.

        A model box is a path box too: under restriction it loads only the ``shipped`` models (the demo PRM)
        or a folder under :attr:`roots` (a hub id is refused: it names files in the server's cache). A
        checkpoint's own Python code (``trust_remote_code``) and a Ray cluster address are the server
        operator's to choose, with the CLI, not a browser user's.

        Raises:
            CreditscopeError: One line naming what is not allowed.
        """
        if not self.restricted:
            return
        who = "to other machines (--allow-remote)" if self.remote else "with --data-root"
        if trust_remote_code:
            raise CreditscopeError(
                f"trust_remote_code: this dashboard is served {who}, so it runs no checkpoint's own code; "
                "rescore such a model with `creditscope rescore` on the server"
            )
        if ray_address:
            raise CreditscopeError(
                f"Ray address {ray_address}: this dashboard is served {who}, so it starts only a local Ray "
                "instance; join a cluster with `creditscope rescore --engine ray --address` on the server"
            )
        self.check_model_folder(model, shipped)

    def check_model_folder(self, folder: str, shipped: Sequence[str] = ()) -> None:
        """Under restriction, allow only a ``shipped`` folder (the demo PRM) or one under :attr:`roots`.

        Used for the Rescore page's model box and the Trajectory page's tokenizer box; a hub id is refused
        (it names files in the server's cache).

        Raises:
            CreditscopeError: One line naming the folder and what is allowed.
        """
        if not self.restricted:
            return
        path = Path(folder).expanduser()
        if path.resolve() in {Path(m).resolve() for m in shipped}:
            return
        as_typed = Path(os.path.normpath(os.path.abspath(path)))
        if not self.roots or not (self._inside(as_typed) and self._inside(path.resolve())):
            who = "to other machines (--allow-remote)" if self.remote else "with --data-root"
            under = " or a folder under " + ", ".join(map(str, self.roots)) if self.roots else ""
            raise CreditscopeError(
                f"{folder}: this dashboard is served {who}; "
                f"it loads models and tokenizers only from the demo PRM{under}"
            )

    def _inside(self, path: Path) -> bool:
        """Whether ``path`` (absolute, taken as it is) lies in a root."""
        return any(path == root or path.is_relative_to(root) for root in self.roots)

    def _outside(self, raw: str, path: Path | None = None) -> CreditscopeError:
        via = f" ({path} leads to {path.resolve()})" if path is not None else ""
        roots = ", ".join(map(str, self.roots))
        return CreditscopeError(f"{raw}: outside the folders this dashboard may read ({roots}){via}")


def _static_part(raw: str) -> Path:
    """The part of a typed path before its first glob character (the folder a pattern searches)."""
    parts = Path(raw).parts
    static = parts[: next((i for i, part in enumerate(parts) if _GLOB & set(part)), len(parts))]
    return Path(*static) if static else Path(".")


def _files_read_for(raw: str) -> list[Path]:
    """The files ingest would open for ``raw``: what it expands to, plus side files beside them."""
    from core.ingest.registry import expand, is_companion

    try:
        files = expand(raw)
    except CreditscopeError:
        return []  # nothing there to read; ingest itself says what is wrong with the path
    folders = {f.parent for f in files}
    sides = [p for folder in folders for p in folder.iterdir() if p.is_file() and is_companion(p)]
    return [*files, *sides]


def check_bind(address: str, allow_remote: bool, data_roots: Sequence[str]) -> ServeAccess:
    """Decide what ``creditscope serve --address ... [--allow-remote] [--data-root DIR]...`` may do.

    Raises:
        CreditscopeError: A non-loopback address without ``--allow-remote``, or a data root that is not a folder.
    """
    if not is_loopback(address) and not allow_remote:
        raise CreditscopeError(
            f"--address {address or '(every interface)'} serves the dashboard to other machines, and its Ingest "
            "page reads files on this one; add --allow-remote (its path boxes then read only under --data-root DIR)"
        )
    roots = []
    for raw in data_roots:
        root = Path(raw).expanduser().resolve()
        if not root.is_dir():
            raise CreditscopeError(f"--data-root {raw}: not a folder")
        roots.append(root)
    return ServeAccess(remote=not is_loopback(address), roots=tuple(roots))

"""`serve` binds loopback; any other address needs --allow-remote, and then typed paths stay under --data-root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core import cli
from core.errors import CreditscopeError
from core.serving import ROOTS_ENV, ServeAccess, check_bind, is_loopback


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.1.1", "localhost", "::1", "[::1]"])
def test_loopback_addresses(address: str) -> None:
    assert is_loopback(address)


@pytest.mark.parametrize("address", ["0.0.0.0", "192.168.1.4", "::", "", "myhost.example"])
def test_other_addresses_are_not_loopback(address: str) -> None:
    assert not is_loopback(address)


class _Exec(Exception):
    pass


@pytest.fixture
def exec_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], dict[str, str]]]:
    calls: list[tuple[list[str], dict[str, str]]] = []

    def fake_execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        calls.append((argv, env))
        raise _Exec

    monkeypatch.setattr(os, "execve", fake_execve)
    return calls


def test_serve_binds_loopback_by_default(exec_calls, tmp_path: Path) -> None:
    with pytest.raises(_Exec):
        cli.main(["serve", "--db", str(tmp_path / "x.duckdb")])
    argv, env = exec_calls[0]
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1"
    assert ServeAccess.from_env(env) == ServeAccess()


def test_serving_beyond_loopback_needs_allow_remote(exec_calls, capsys, tmp_path: Path) -> None:
    assert cli.main(["serve", "--db", str(tmp_path / "x.duckdb"), "--address", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--allow-remote" in err and "Traceback" not in err
    assert not exec_calls


def test_allow_remote_hands_the_data_roots_to_the_dashboard(exec_calls, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    with pytest.raises(_Exec):
        cli.main(["serve", "--db", str(tmp_path / "x.duckdb"), "--address", "0.0.0.0", "--allow-remote",
                  "--data-root", str(logs)])  # fmt: skip
    argv, env = exec_calls[0]
    assert argv[argv.index("--server.address") + 1] == "0.0.0.0"
    assert env[ROOTS_ENV] == str(logs.resolve())
    assert ServeAccess.from_env(env) == ServeAccess(remote=True, roots=(logs.resolve(),))


def test_a_data_root_must_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(CreditscopeError, match="--data-root .*: not a folder"):
        check_bind("0.0.0.0", True, [str(tmp_path / "missing")])


def test_check_paths_allows_only_what_lies_under_a_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    (root / "run" / "0.jsonl").write_text("{}\n")
    access = ServeAccess(remote=True, roots=(root.resolve(),))
    access.check_paths([str(root), str(root / "run" / "*.jsonl"), str(root / "run" / "missing.jsonl")])
    ServeAccess().check_paths(["/etc/passwd"])  # a local dashboard reads what its user can read
    for typed in ["/etc/passwd", str(root / ".." / "elsewhere"), "/etc/*", "relative/path"]:
        with pytest.raises(CreditscopeError, match="outside the folders this dashboard may read"):
            access.check_paths([typed])


def test_check_rescore_under_restriction_loads_only_the_shipped_model_or_one_under_a_root(tmp_path: Path) -> None:
    root, elsewhere, demo = tmp_path / "data", tmp_path / "elsewhere", tmp_path / "demo-prm"
    for folder in (root / "prm", elsewhere / "prm", demo):
        folder.mkdir(parents=True)
    (root / "escape").symlink_to(elsewhere / "prm")
    local = ServeAccess()
    local.check_rescore(str(elsewhere / "prm"), True, "10.0.0.1:6379")  # this machine's user: anything goes

    remote = ServeAccess(remote=True, roots=(root.resolve(),))
    remote.check_rescore(str(root / "prm"), False, None)
    remote.check_rescore(str(demo), False, None, shipped=(str(demo),))
    refusals = {
        "outside": (str(elsewhere / "prm"), False, None),
        "a link out": (str(root / "escape"), False, None),
        "dot-dot": (str(root / ".." / "elsewhere" / "prm"), False, None),
        "hub id": ("Qwen/Qwen2.5-Math-PRM-7B", False, None),
        "remote code": (str(root / "prm"), True, None),
        "ray address": (str(root / "prm"), False, "10.0.0.1:6379"),
    }
    for why, (model, trust, address) in refusals.items():
        with pytest.raises(CreditscopeError) as refused:
            remote.check_rescore(model, trust, address, shipped=(str(demo),))
        assert "\n" not in str(refused.value), why
    no_roots = ServeAccess(remote=True)
    no_roots.check_rescore(str(demo), False, None, shipped=(str(demo),))
    with pytest.raises(CreditscopeError, match="only from the demo PRM$"):
        no_roots.check_rescore(str(root / "prm"), False, None, shipped=(str(demo),))

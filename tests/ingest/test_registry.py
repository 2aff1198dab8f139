"""Registry tests run against a temporary formats package of small fake adapters, so they do not
depend on which real adapters other people have written yet."""

import sys
import textwrap
from pathlib import Path

import pytest

from core.errors import FormatNotDetected, IngestError
from core.ingest import formats as formats_package
from core.ingest import registry

FAKE_ADAPTER = """
NAME = {name!r}
PRIORITY = {priority}
CHECKED_AGAINST = "test"
COMPANIONS = {companions!r}

def detect(path, head):
    return None if head.startswith({marker!r}) else "head lacks marker " + {marker!r}.decode()

def read(path, options):
    raise NotImplementedError
"""


def _write_adapter(folder: Path, module: str, name: str, priority: int, marker: bytes, companions=()) -> None:
    source = FAKE_ADAPTER.format(name=name, priority=priority, marker=marker, companions=tuple(companions))
    (folder / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def fake_formats(tmp_path, monkeypatch):
    package = tmp_path / "fake_formats"
    package.mkdir()
    _write_adapter(package, "zeta", "zeta", 10, b"{", companions=["*.metadata.json"])
    _write_adapter(package, "alpha", "alpha-json", 10, b'{"a"')
    _write_adapter(package, "generic", "generic", 80, b"")
    (package / "broken.py").write_text("raise RuntimeError('half written')\n")
    (package / "incomplete.py").write_text("NAME = 'incomplete'\n")
    (package / "_helpers.py").write_text("raise RuntimeError('private modules are not imported')\n")
    monkeypatch.setattr(formats_package, "__path__", [str(package)])
    registry._discover.cache_clear()
    yield package
    registry._discover.cache_clear()
    for module in [m for m in sys.modules if m.startswith("core.ingest.formats.")]:
        if getattr(sys.modules[module], "__file__", "") and str(package) in sys.modules[module].__file__:
            del sys.modules[module]


def test_adapters_sorted_by_priority_then_name_and_broken_ones_reported(fake_formats):
    with pytest.warns(RuntimeWarning) as warned:
        names = [module.NAME for module in registry.adapters()]
    assert {str(w.message).split(":")[0] for w in warned} == {"format adapter left out"}
    assert any("broken" in str(w.message) for w in warned) and any("incomplete" in str(w.message) for w in warned)
    assert names == ["alpha-json", "zeta", "generic"]
    problems = registry.broken_adapters()
    assert any(p.startswith("broken: failed to import (RuntimeError: half written)") for p in problems)
    assert any(p.startswith("incomplete: lacks PRIORITY") for p in problems)
    assert not any("_helpers" in p for p in problems)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_get_accepts_dash_or_underscore_and_lists_known_names(fake_formats):
    assert registry.get("alpha_json").NAME == "alpha-json"
    with pytest.raises(registry.UnknownFormat, match="known formats: alpha-json, generic, zeta"):
        registry.get("nope")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_detect_picks_first_accepting_adapter_in_priority_order(fake_formats, tmp_path):
    source = tmp_path / "a.jsonl"
    source.write_text('{"a": 1}\n')
    assert registry.detect(source).NAME == "alpha-json"
    other = tmp_path / "b.jsonl"
    other.write_text('{"b": 1}\n')
    assert registry.detect(other).NAME == "zeta"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_detect_failure_lists_every_adapter_and_reason(fake_formats, tmp_path, monkeypatch):
    registry.adapters()  # imports the fake modules so they can be patched
    monkeypatch.setattr(sys.modules["core.ingest.formats.generic"], "detect", lambda path, head: "not generic")
    source = tmp_path / "plain.txt"
    source.write_text("hello")
    with pytest.raises(FormatNotDetected) as caught:
        registry.detect(source)
    message = str(caught.value)
    assert message.startswith(f"{source}: no adapter recognised this file")
    assert 'alpha-json: head lacks marker {"a"' in message
    assert "zeta: head lacks marker {" in message
    assert "generic: not generic" in message
    assert "(not loaded) broken: failed to import" in message


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_detect_treats_a_crashing_detect_as_a_decline(fake_formats, tmp_path, monkeypatch):
    def crash(path, head):
        raise KeyError("oops")

    registry.adapters()
    monkeypatch.setattr(sys.modules["core.ingest.formats.alpha"], "detect", crash)
    source = tmp_path / "a.jsonl"
    source.write_text('{"a": 1}\n')
    assert registry.detect(source).NAME == "zeta"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_plan_sources_walks_folders_sorted_skipping_hidden_and_companions(fake_formats, tmp_path):
    logs = tmp_path / "logs"
    (logs / "sub").mkdir(parents=True)
    (logs / ".git").mkdir()
    (logs / "2.jsonl").write_text('{"a": 1}\n')
    (logs / "10.jsonl").write_text('{"b": 1}\n')
    (logs / "sub" / "run.results.jsonl").write_text('{"b": 1}\n')
    (logs / "sub" / "run.metadata.json").write_text("{}")
    (logs / ".hidden.jsonl").write_text("{}")
    (logs / ".git" / "HEAD").write_text("ref")
    plan = registry.plan_sources([str(logs), str(logs / "2.jsonl")])
    assert [(path.relative_to(logs).as_posix(), module.NAME) for path, module in plan] == [
        ("10.jsonl", "zeta"),
        ("2.jsonl", "alpha-json"),
        ("sub/run.results.jsonl", "zeta"),
    ]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_plan_sources_globs_and_forced_format(fake_formats, tmp_path):
    for name in ("a.jsonl", "b.jsonl", "c.txt"):
        (tmp_path / name).write_text("x")
    plan = registry.plan_sources([str(tmp_path / "*.jsonl")], fmt="generic")
    assert [(path.name, module.NAME) for path, module in plan] == [("a.jsonl", "generic"), ("b.jsonl", "generic")]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize(
    ("relative", "problem"),
    [
        ("missing.jsonl", "no such file or folder"),
        ("nothing*.jsonl", "pattern matches no files"),
        ("empty", "folder holds no files to ingest"),
        ("x.metadata.json", "side file"),
    ],
)
def test_plan_sources_errors_name_the_path(fake_formats, tmp_path, relative, problem):
    (tmp_path / "empty").mkdir()
    (tmp_path / "x.metadata.json").write_text("{}")
    with pytest.raises(IngestError, match=problem) as caught:
        registry.plan_sources([str(tmp_path / relative)])
    assert caught.value.path == str(tmp_path / relative)


def test_real_package_adapters_honour_the_contract():
    registry._discover.cache_clear()
    for module in registry.adapters():
        assert isinstance(module.NAME, str) and module.NAME
        assert isinstance(module.PRIORITY, int)
        assert module.CHECKED_AGAINST
    names = [module.NAME for module in registry.adapters()]
    assert len(names) == len(set(names)), "two adapters share a NAME"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_folder_walk_skips_unrecognised_files_with_a_note_but_named_files_must_be_recognised(
    fake_formats, tmp_path, monkeypatch
):
    registry.adapters()
    monkeypatch.setattr(sys.modules["core.ingest.formats.generic"], "detect", lambda path, head: "not generic")
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "1.jsonl").write_text('{"a": 1}\n')
    (logs / "README.md").write_text("notes")
    notes: list[str] = []
    plan = registry.plan_sources([str(logs)], notes=notes)
    assert [path.name for path, _ in plan] == ["1.jsonl"]
    assert notes == [f"{logs / 'README.md'}: skipped, no adapter recognised it"]
    with pytest.raises(FormatNotDetected):
        registry.plan_sources([str(logs / "README.md")])
    only_docs = tmp_path / "docs"
    only_docs.mkdir()
    (only_docs / "README.md").write_text("notes")
    with pytest.raises(FormatNotDetected):
        registry.plan_sources([str(only_docs)])

"""The documentation stays true: its examples run, its excerpts are current, its reference is complete.

* Every command of every fenced ``sh`` block in README.md and docs/*.md runs
  against the bundled example (``examples/``) and exits 0; every ``python``
  block runs without raising (docs/generate_examples.py does the work).
* Blocks marked ``sh freebsd`` (the target machine: ``dtrace -s``,
  ``kldload``, ``pmcstat``, ``tracebridge record``) and set-up commands
  (``pip install``, ...) are not run: each is reported as a skip, and the
  ``tracebridge`` ones must at least parse.
* The output excerpts between ``<!-- output: ... -->`` markers are what the
  commands print today, and the examples' synthetic captures are what
  examples/make_examples.py makes.
* docs/reference-cli.md is what docs/generate_reference.py writes, and it
  lists every option of every command and sub-command.

To fix a failure after changing the tool or the docs, run
``python docs/generate_examples.py`` / ``python docs/generate_reference.py``
(or ``python examples/make_examples.py``) and review the diff.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs"))
sys.path.insert(0, str(ROOT / "examples"))

import generate_examples as examples  # noqa: E402
import generate_reference as reference  # noqa: E402

DOCUMENTS = examples.markdown_files()
_OUTCOMES: dict[Path, examples.Outcome] = {}


def outcome(path: Path) -> examples.Outcome:
    """Run a document's examples once, for both tests that need the result."""
    if path not in _OUTCOMES:
        _OUTCOMES[path] = examples.run_document(examples.read_document(path))
    return _OUTCOMES[path]


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", DOCUMENTS, ids=_name)
def test_examples_run(path):
    result = outcome(path)
    assert not result.failures, "\n\n".join(result.failures)


@pytest.mark.parametrize("path", DOCUMENTS, ids=_name)
def test_output_excerpts_are_current(path):
    result = outcome(path)
    if result.failures:
        pytest.skip("its examples fail (see test_examples_run)")
    assert result.text == path.read_text(encoding="utf-8"), (
        f"{_name(path)}: output excerpts are stale: run python docs/generate_examples.py and review the diff")


def test_the_docs_have_examples_to_run():
    """A broken extractor would find nothing and pass: the tutorial holds dozens of runnable examples."""
    tutorial = examples.read_document(ROOT / "docs" / "tutorial.md")
    commands = [i for i in tutorial.items if isinstance(i, examples.Command)]
    assert sum(1 for c in commands if c.kind == "run") >= 15
    assert sum(1 for c in commands if c.kind == "target") >= 5
    assert sum(1 for i in tutorial.items if isinstance(i, examples.Excerpt)) >= 15
    assert any("flamegraph" in c.text for c in commands if c.kind == "run")
    api = examples.read_document(ROOT / "docs" / "api.md")
    assert sum(1 for i in api.items if isinstance(i, examples.Command) and i.kind == "python") >= 8


def test_the_checker_catches_failures(tmp_path):
    """A failing command, a stray tool, a stale excerpt and a target-only block are each noticed,
    and so is a target-only block that does not tell the reader so."""
    page = tmp_path / "page.md"
    page.write_text("\n".join([
        "```sh", "tracebridge inspect examples/if_rem.ko", "tracebridge fold examples/kldstat.txt",
        "rm -rf examples", "```",
        "```sh freebsd", "dtrace -s probes.d", "tracebridge gen-probes --no-such-option x.ko", "```",
        "<!-- output head=1: tracebridge inspect examples/if_rem.ko -->", "```text", "stale", "```",
        "<!-- /output -->", ""]))
    result = examples.run_document(examples.read_document(page))
    assert result.ran == 3
    assert len(result.failures) == 4
    assert "must start with a comment" in result.failures[0]
    assert "examples/kldstat.txt" in result.failures[1] and "exited 2" in result.failures[1]
    assert "not a tracebridge command" in result.failures[2]
    assert "does not parse" in result.failures[3] and "--no-such-option" in result.failures[3]
    assert [c.text for c in result.skipped] == ["dtrace -s probes.d", "tracebridge gen-probes --no-such-option x.ko"]
    assert "$ tracebridge inspect examples/if_rem.ko\nif_rem.ko: amd64 ET_REL" in result.text
    assert "stale" not in result.text


def _not_run() -> list[examples.Command]:
    return [item for path in DOCUMENTS for item in examples.read_document(path).items
            if isinstance(item, examples.Command) and item.kind in ("target", "setup")]


@pytest.mark.parametrize("command", _not_run(), ids=lambda c: f"{c.where}")
def test_freebsd_and_setup_examples_are_skipped_explicitly(command):
    if command.kind == "target":
        problem = examples.check_target_command(command.text)
        assert problem is None, f"{command.where}: `{command.text}`: {problem}"
        checked = " (arguments checked)" if command.text.startswith("tracebridge ") else ""
        pytest.skip(f"on the FreeBSD target only{checked}: {command.text}")
    pytest.skip(f"set-up, run by .ci/run: {command.text}")


def test_ci_runs_the_readme_test_command():
    """CI checks what a user runs: .ci/run ends with the README's test command, character for character."""
    blocks = re.findall(r"^```sh\n(.*?)\n```$", (ROOT / "README.md").read_text(), re.M | re.S)
    test_command = next(block for block in blocks if block.endswith("&& pytest"))
    ci_lines = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci_lines[-1] == test_command


def test_example_captures_are_current():
    import make_examples

    stale = make_examples.stale(make_examples.expected())  # what make_examples.py --check checks
    assert not stale, f"examples out of date: {stale}: run python examples/make_examples.py"


# -- the reference ---------------------------------------------------------------------------------------------


def test_reference_is_current():
    assert reference.render() == reference.TARGET.read_text(encoding="utf-8"), (
        "docs/reference-cli.md is stale: run python docs/generate_reference.py")


def _sections(text: str) -> dict[str, str]:
    sections, name = {}, None
    for line in text.split("\n"):
        if line.startswith("## `tracebridge "):
            name = line[len("## `tracebridge "):-1]
            sections[name] = ""
        elif line.startswith("## "):
            name = None
        elif name is not None:
            sections[name] += line + "\n"
    return sections


def test_reference_lists_every_command_and_option():
    sections = _sections(reference.TARGET.read_text(encoding="utf-8"))
    found = reference.commands()
    names = [name for name, _ in found]
    for expected in ("symbols", "inspect", "gen-probes", "symmap", "pmc resolve", "cpu", "cpu import",
                     "cpu compare", "record", "fold", "report", "flamegraph", "diff"):
        assert expected in names
    assert set(sections) == set(names)
    missing = []
    for name, parser in found:
        rows = [line for line in sections[name].split("\n") if line.startswith("| `")]
        for action in reference.options(parser):
            spellings = action.option_strings or [action.metavar or action.dest]
            for spelling in spellings:
                if not any(f"`{spelling}`" in row.split(" | ")[0] for row in rows):
                    missing.append(f"{name}: {spelling}")
    assert not missing, f"not in docs/reference-cli.md: {missing}"


def test_reference_reaches_parsers_the_cli_uses():
    """cpu import/compare are parsed by their own parsers: the reference must document those very parsers."""
    from tracebridge.cli import cpu, main

    assert set(cpu.NESTED_PARSERS) == {"import", "compare"}
    for word, factory in cpu.NESTED_PARSERS.items():
        parser = factory()
        assert isinstance(parser, argparse.ArgumentParser)
        assert parser.prog == f"tracebridge cpu {word}"
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
            main(["cpu", word, "--help"])
        assert exit_.value.code == 0
        assert out.getvalue() == parser.format_help()

"""Run the shell examples of README.md and docs/*.md, and write their output excerpts into the docs.

Three kinds of examples live in the Markdown files:

* fenced ``sh`` blocks: commands a reader types.  A block whose info string
  is ``sh`` must run on any machine against the bundled example
  (``examples/``); every command in it is run, in document order, from a
  scratch directory holding a copy of ``examples/``, and must exit 0.  A
  block marked ``sh freebsd`` holds commands for the FreeBSD target
  (``dtrace -s``, ``kldload``, ``pmcstat``, ``tracebridge record``): they are
  not run; their ``tracebridge`` commands are checked against the argument
  parser, the others are reported as skipped.  Set-up commands
  (``python3 -m venv``, ``pip install``, ``. .venv/bin/activate``,
  ``pytest``) are skipped too: ``.ci/run`` runs exactly those.
* output excerpts: a ``<!-- output: COMMAND -->`` comment, a fenced ``text``
  block this script writes (``$ COMMAND`` and what it printed, standard
  error included), and ``<!-- /output -->``.  Options go before the colon:
  ``head=N`` / ``tail=N`` keep the first / last N lines (the cut is marked
  ``...``), ``columns=N`` draws tables N wide, ``status=N`` expects that
  exit status instead of 0 (for the messages in troubleshooting.md),
  ``file=PATH`` shows a file the command wrote instead of its output.
* fenced ``python`` blocks (api.md): run in order, in one namespace per
  document, from the same scratch directory; they must not raise.  An
  excerpt whose command is just ``python`` shows what the Python blocks
  printed since the previous one.

tests/docs/test_docs.py runs every example and checks that the excerpts are
current.  After changing the tool or the docs:

    python docs/generate_examples.py            # rewrite the excerpts
    python docs/generate_examples.py --check    # exit 1 if one is stale
    python docs/generate_examples.py docs/tutorial.md   # one file only

``tracebridge`` commands run in this process (``tracebridge.cli.main``),
anything else with ``bash``; tables are drawn ``COLUMNS`` = 100 wide.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
COLUMNS = "100"
#: Fence info strings of shell blocks; a second word ``freebsd`` marks target-only blocks.
SHELLS = ("sh", "shell", "bash")
#: Fence info strings of Python blocks: run in one namespace per document, in order.
PYTHON = ("python", "py")
TARGET = "freebsd"
#: First words of commands that set up an environment: never run by the doc test (.ci/run does).
SETUP = ("python3 -m venv", "python -m venv", ". ", "source ", "pip ", "pip3 ", "pytest", "git clone", "cd ")
#: Ordinary tools a runnable block may use besides tracebridge.
HELPERS = ("ls", "cat", "head", "tail", "grep", "wc", "mkdir", "cp", "python3", "python", "sort", "diff")
_FENCE = re.compile(r"^(```+|~~~+)\s*([^`\s]*)\s*(.*)$")
_OUTPUT = re.compile(r"^<!-- output(?P<options>(?: [a-z]+=\S+)*): (?P<command>.+?) -->$")
_OUTPUT_END = "<!-- /output -->"


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def markdown_files() -> list[Path]:
    """README.md and every docs/*.md (the generated reference has no examples to run)."""
    return [ROOT / "README.md", *sorted(p for p in DOCS.glob("*.md") if p.name != "reference-cli.md")]


# -- reading the examples -------------------------------------------------------------------------------------


@dataclass
class Command:
    """One command of a shell block, or the command of an output excerpt."""

    path: Path
    line: int
    text: str
    #: ``run`` (must exit 0), ``target`` (FreeBSD only: parsed, not run), ``setup`` (skipped),
    #: ``python`` (a whole Python block, must not raise).
    kind: str

    @property
    def where(self) -> str:
        return f"{_shown(self.path)}:{self.line}"


@dataclass
class Excerpt:
    path: Path
    line: int
    command: str
    options: dict[str, str]
    #: Line numbers (0-based) of the marker and of the end marker.
    start: int
    end: int

    @property
    def where(self) -> str:
        return f"{_shown(self.path)}:{self.line}"


@dataclass
class Document:
    path: Path
    lines: list[str]
    #: Shell commands and excerpts in document order.
    items: list[Command | Excerpt] = field(default_factory=list)
    #: Mistakes in the examples themselves (a FreeBSD block that does not say so).
    problems: list[str] = field(default_factory=list)


def _split_commands(text: str) -> list[str]:
    """``a && b`` -> [a, b]: README-style one-liners are several commands."""
    return [part.strip() for part in re.split(r"\s&&\s", text) if part.strip()]


def _kind(command: str, block: str) -> str:
    if command.startswith(SETUP):
        return "setup"
    if block == TARGET:
        return "target"
    return "run"


def read_document(path: Path) -> Document:
    lines = path.read_text(encoding="utf-8").split("\n")
    document = Document(path, lines)
    fence: str | None = None
    shell: str | None = None
    code: list[str] | None = None
    code_line = 0
    first_line = False
    pending = ""
    pending_line = 0
    excerpt_start: tuple[int, re.Match] | None = None
    for number, line in enumerate(lines):
        if fence is not None:
            if line.strip().startswith(fence) and not line.strip()[len(fence):].strip():
                if code is not None:
                    document.items.append(Command(path, code_line, "\n".join(code), "python"))
                fence = shell = code = None
                continue
            if code is not None:
                code.append(line)
                continue
            if shell is None:
                continue
            stripped = line.strip()
            if shell == TARGET and first_line and stripped:
                first_line = False
                if not (stripped.startswith("#") and "FreeBSD" in stripped):
                    document.problems.append(
                        f"{_shown(path)}:{number + 1}: a `sh freebsd` block must start with a comment that "
                        "says so to the reader (`# on FreeBSD, as root`): the info string is not shown")
            if not pending and (not stripped or stripped.startswith("#")):
                continue
            if not pending:
                pending_line = number + 1
            pending += stripped[:-1] + " " if stripped.endswith("\\") else stripped
            if stripped.endswith("\\"):
                continue
            for part in _split_commands(pending):
                document.items.append(Command(path, pending_line, part, _kind(part, shell)))
            pending = ""
            continue
        opened = _FENCE.match(line.strip()) if line.strip().startswith(("```", "~~~")) else None
        if opened:
            fence = opened.group(1)
            if opened.group(2) in SHELLS and excerpt_start is None:
                shell = TARGET if opened.group(3).split()[:1] == [TARGET] else "run"
                first_line = True
            elif opened.group(2) in PYTHON and excerpt_start is None:
                code, code_line = [], number + 2
            continue
        marker = _OUTPUT.match(line.strip())
        if marker:
            if excerpt_start is not None:
                raise ValueError(f"{path}:{number + 1}: output marker inside another (missing {_OUTPUT_END})")
            excerpt_start = (number, marker)
        elif line.strip() == _OUTPUT_END:
            if excerpt_start is None:
                raise ValueError(f"{path}:{number + 1}: {_OUTPUT_END} without an output marker")
            start, marker = excerpt_start
            options = dict(option.split("=", 1) for option in marker.group("options").split())
            document.items.append(Excerpt(path, start + 1, marker.group("command"), options, start, number))
            excerpt_start = None
    if fence is not None or excerpt_start is not None:
        raise ValueError(f"{path}: unclosed code block or output marker")
    return document


# -- running -------------------------------------------------------------------------------------------------


@dataclass
class Result:
    status: int
    output: str


def scratch_directory() -> tempfile.TemporaryDirectory:
    """A directory with a copy of examples/, where the examples run as in a checkout's root."""
    directory = tempfile.TemporaryDirectory(prefix="tracebridge-docs-")
    shutil.copytree(EXAMPLES, Path(directory.name) / "examples", symlinks=False,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return directory


def _words(command: str) -> list[str] | None:
    """The argv of a plain ``tracebridge ...`` command (an optional ``> FILE`` at the end), else None."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars="|&;<>()")
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError:
        return None
    if not words or words[0] != "tracebridge":
        return None
    operators = [w for w in words if w and set(w) <= set("|&;<>()")]
    if not operators:
        return words
    if operators == [">"] and len(words) >= 3 and words[-2] == ">":
        return words
    return None


def run(command: str, cwd: str, columns: str = COLUMNS) -> Result:
    """Run one command in ``cwd``: tracebridge in this process, anything else with bash."""
    words = _words(command)
    if words is None:
        return _run_shell(command, cwd, columns)
    redirect = None
    if len(words) >= 3 and words[-2] == ">":
        words, redirect = words[:-2], words[-1]
    from tracebridge.cli import main

    stdout, both = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(stdout if redirect else both, encoding="utf-8", write_through=True)
    err = io.TextIOWrapper(both, encoding="utf-8", write_through=True)
    with _working_in(cwd, columns):
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(words[1:])
            except SystemExit as exc:  # argparse: --help, usage errors
                status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        out.flush()
        err.flush()
        if redirect:
            Path(redirect).write_bytes(stdout.getvalue())
    return Result(status, both.getvalue().decode("utf-8", errors="replace"))


def _run_shell(command: str, cwd: str, columns: str = COLUMNS) -> Result:
    env = dict(os.environ, COLUMNS=columns)
    # `tracebridge` in a pipeline is the console script next to this interpreter.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120, check=False)
    return Result(done.returncode, done.stdout.decode("utf-8", errors="replace"))


def run_python(code: str, namespace: dict, cwd: str) -> Result:
    """Run a Python block in ``namespace`` (shared by the blocks of one document), printing into the result."""
    import traceback

    buffer = io.StringIO()
    status = 0
    with _working_in(cwd, COLUMNS), contextlib.redirect_stdout(buffer):
        try:
            exec(compile(code, "<docs>", "exec"), namespace)
        except Exception:  # noqa: BLE001 -- reported as the block's failure
            buffer.write(traceback.format_exc())
            status = 1
    return Result(status, buffer.getvalue())


@contextlib.contextmanager
def _working_in(cwd: str, columns: str) -> Iterator[None]:
    """The body runs in ``cwd`` with ``COLUMNS`` set, as a documented command runs; both are restored after."""
    previous = os.getcwd()
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = columns
    try:
        os.chdir(cwd)
        yield
    finally:
        os.chdir(previous)
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved


def check_target_command(command: str) -> str | None:
    """For a FreeBSD-only command: None if it is fine to show, else why not.

    ``tracebridge`` commands must parse (they are not run); others are not checked.
    """
    try:
        words = shlex.split(command)
    except ValueError as exc:
        return f"not valid shell: {exc}"
    if not words or words[0] != "tracebridge":
        return None
    if any(w in ("|", ">", "&&") for w in words):
        words = words[:min(words.index(w) for w in ("|", ">", "&&") if w in words)]
    from tracebridge.cli import build_parser

    sink = io.StringIO()
    with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
        try:
            build_parser().parse_args(words[1:])
        except SystemExit as exc:
            if exc.code not in (0, None):
                return sink.getvalue().strip().split("\n")[-1]
    return None


def is_known(command: Command) -> bool:
    """A runnable command must be tracebridge or one of the ordinary :data:`HELPERS`."""
    first = command.text.split()[0]
    return first == "tracebridge" or first in HELPERS


# -- excerpts ------------------------------------------------------------------------------------------------


def excerpt_text(excerpt: Excerpt, result: Result, cwd: str) -> list[str]:
    """The fenced block an excerpt holds: ``$ COMMAND`` and the (trimmed) output."""
    if "file" in excerpt.options:
        body = (Path(cwd) / excerpt.options["file"]).read_text(encoding="utf-8")
    else:
        body = result.output
    lines = body.rstrip("\n").split("\n") if body.strip() else []
    lines = [line.rstrip() for line in lines]
    if "head" in excerpt.options and len(lines) > int(excerpt.options["head"]):
        lines = lines[:int(excerpt.options["head"])] + ["..."]
    if "tail" in excerpt.options and len(lines) > int(excerpt.options["tail"]):
        lines = ["..."] + lines[-int(excerpt.options["tail"]):]
    return ["```text", f"$ {excerpt.command}", *lines, "```"]


@dataclass
class Outcome:
    """What running one document gave: failures, skipped commands, and the document with fresh excerpts."""

    document: Document
    failures: list[str] = field(default_factory=list)
    skipped: list[Command] = field(default_factory=list)
    ran: int = 0
    text: str = ""


def run_document(document: Document) -> Outcome:
    outcome = Outcome(document, failures=list(document.problems))
    replacements: list[tuple[int, int, list[str]]] = []
    namespace: dict = {"__name__": "__docs__"}
    printed = ""
    with scratch_directory() as cwd:
        for item in document.items:
            if isinstance(item, Command):
                if item.kind == "python":
                    result = run_python(item.text, namespace, cwd)
                    outcome.ran += 1
                    printed += result.output
                    if result.status != 0:
                        outcome.failures.append(f"{item.where}: the Python block raised:\n{result.output[-3000:]}")
                    continue
                if item.kind == "setup":
                    outcome.skipped.append(item)
                    continue
                if item.kind == "target":
                    problem = check_target_command(item.text)
                    if problem:
                        outcome.failures.append(f"{item.where}: `{item.text}` does not parse: {problem}")
                    outcome.skipped.append(item)
                    continue
                if not is_known(item):
                    outcome.failures.append(
                        f"{item.where}: `{item.text}`: not a tracebridge command; mark the block `sh freebsd` "
                        f"if it runs on the target only, or add the tool to HELPERS in docs/generate_examples.py")
                    continue
                result = run(item.text, cwd)
                outcome.ran += 1
                if result.status != 0:
                    outcome.failures.append(f"{item.where}: `{item.text}` exited {result.status}:\n"
                                            f"{result.output[-2000:]}")
                continue
            if item.command == "python":  # what the Python blocks since the last such excerpt printed
                lines = [line.rstrip() for line in printed.rstrip("\n").split("\n")]
                replacements.append((item.start, item.end, ["```text", *lines, "```"]))
                printed = ""
                continue
            result = run(item.command, cwd, item.options.get("columns", COLUMNS))
            outcome.ran += 1
            expected = int(item.options.get("status", "0"))
            if result.status != expected:
                outcome.failures.append(f"{item.where}: `{item.command}` exited {result.status}, expected "
                                        f"{expected}:\n{result.output[-2000:]}")
                continue
            replacements.append((item.start, item.end, excerpt_text(item, result, cwd)))
    lines = list(document.lines)
    for start, end, block in reversed(replacements):
        lines[start + 1:end] = block
    outcome.text = "\n".join(lines)
    return outcome


def main() -> int:
    check = "--check" in sys.argv[1:]
    only = [Path(a).resolve() for a in sys.argv[1:] if not a.startswith("--")]
    status = 0
    for path in only or markdown_files():
        outcome = run_document(read_document(path))
        for failure in outcome.failures:
            print(failure, file=sys.stderr)
            status = 1
        current = path.read_text(encoding="utf-8")
        if outcome.failures:
            continue
        if outcome.text != current:
            if check:
                print(f"{_shown(path)}: output excerpts are stale: run python docs/generate_examples.py",
                      file=sys.stderr)
                status = 1
            else:
                path.write_text(outcome.text, encoding="utf-8")
                print(f"updated {_shown(path)}", file=sys.stderr)
    return status


if __name__ == "__main__":
    raise SystemExit(main())

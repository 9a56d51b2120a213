"""Write docs/reference-cli.md from the CLI's own argparse definitions.

The reference cannot drift from the code: tests/docs/test_docs.py checks that
the committed file equals what this script produces now, and that every
option of every command appears in it.

Commands are found by walking the parser that ``tracebridge`` itself builds
(:func:`tracebridge.cli.build_parser`), sub-commands of sub-commands
included (``pmc resolve``), plus the parsers a command builds for the words
after it (``NESTED_PARSERS`` of its module: ``cpu import``, ``cpu compare``).

    python docs/generate_reference.py            # rewrite docs/reference-cli.md
    python docs/generate_reference.py --check    # exit 1 if it is stale
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from tracebridge.cli import COMMAND_MODULES, build_parser

TARGET = Path(__file__).with_name("reference-cli.md")
#: argparse wraps usage lines to the terminal: the reference fixes the width.
WIDTH = "100"


def commands() -> list[tuple[str, argparse.ArgumentParser]]:
    """Every (sub)command as ("gen-probes", parser), ("pmc resolve", parser), ("cpu import", parser), ..."""
    os.environ["COLUMNS"] = WIDTH
    nested = {}
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(f"tracebridge.cli.{module_name}")
        for word, factory in getattr(module, "NESTED_PARSERS", {}).items():
            nested.setdefault(module_name.replace("_", "-"), []).append((word, factory))
    found = []

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    full = f"{prefix}{name}"
                    found.append((full, sub))
                    walk(sub, full + " ")
                    for word, factory in nested.get(full, []):
                        found.append((f"{full} {word}", factory()))

    walk(build_parser(), "")
    return found


def options(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    """The arguments a user can give (not --help, not the sub-command slot)."""
    for action in parser._actions:
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            yield action


def _markdown(text: str) -> str:
    """Plain help text as Markdown: code spans kept, characters Markdown would eat escaped outside them."""
    parts = re.split(r"(`[^`]*`)", text)
    for i in range(0, len(parts), 2):
        plain = parts[i].replace("\\", "\\\\").replace("*", "\\*").replace("<", "&lt;")
        parts[i] = re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", r"\\_", plain)
    return "".join(parts)


def _argument(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    names = ", ".join(f"`{o}`" for o in action.option_strings)
    if action.nargs == 0:
        return names
    if action.metavar is not None:
        return f"{names} `{action.metavar}`"
    if action.choices is not None:
        return f"{names} `{{{','.join(map(str, action.choices))}}}`"
    return f"{names} `{action.dest.upper()}`"


def _meaning(action: argparse.Action) -> str:
    text = " ".join((action.help or "").split())
    default = action.default
    # A flag's default is only that it is off: store_false's True says nothing either.
    flag = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._StoreConstAction))
    if not flag and default not in (None, False, [], (), argparse.SUPPRESS) and "default" not in text:
        shown = ",".join(default) if isinstance(default, tuple) else default
        text += f" (default: `{shown}`)"
    if action.option_strings and isinstance(action, (argparse._AppendAction, argparse._ExtendAction)) \
            and "repeat" not in text:
        text += "; repeatable"
    return _markdown(text).replace("|", "\\|")


def _group_of(parser: argparse.ArgumentParser, action: argparse.Action) -> str | None:
    for group in parser._action_groups:
        if action in group._group_actions and group.title not in ("positional arguments", "options",
                                                                 "optional arguments"):
            return group.title
    return None


def _section(name: str, parser: argparse.ArgumentParser) -> list[str]:
    out = [f"## `tracebridge {name}`", ""]
    description = parser.description or ""
    if description:
        if parser.formatter_class is argparse.RawDescriptionHelpFormatter:
            out += ["```text", description.rstrip(), "```", ""]
        else:
            out += [_markdown(" ".join(description.split())), ""]
    # Continuation lines are indented under the program name, which follows "usage: ".
    usage = "\n".join(line[len("usage: "):] if line.startswith(" " * len("usage: ")) else line
                      for line in parser.format_usage().replace("usage: ", "", 1).strip().split("\n"))
    out += ["```text", usage, "```", ""]
    rows = [(action, _group_of(parser, action)) for action in options(parser)]
    if rows:
        out += ["| argument | meaning |", "|---|---|"]
        for action, group in rows:
            prefix = f"*{group}:* " if group else ""
            out.append(f"| {_argument(action)} | {prefix}{_meaning(action)} |")
        out.append("")
    return out


def render() -> str:
    parser = build_parser()
    found = commands()
    out = [
        "# Command reference",
        "",
        "Generated by `python docs/generate_reference.py` from the CLI definitions; do not edit by hand "
        "(`tests/docs/test_docs.py` fails when it is stale). The same text, wrapped, is "
        "`tracebridge COMMAND --help`. Input and output formats are in [formats.md](formats.md), the "
        "messages in [troubleshooting.md](troubleshooting.md).",
        "",
        "## Exit status",
        "",
        "| status | when |",
        "|---|---|",
        "| 0 | success (`inspect`: whatever the verdict) |",
        "| 1 | the system refused an operation (standard output on a full disk, a quota): one line on "
        "standard error, `tracebridge: [FILE: ]the system's reason` |",
        "| 2 | bad input or usage: one line on standard error, `tracebridge: FILE[:LINE]: problem` "
        "(argparse's own usage errors print the usage line first) |",
        "| 130 | interrupted (Ctrl-C) |",
        "| other | `tracebridge cpu -- COMMAND` and `tracebridge record ... -- WORKLOAD`: the workload's own "
        "failing status (128+N when a signal N ended it), as `time(1)` does; see "
        "[record.md](record.md#exit-status) |",
        "",
        "## Warnings",
        "",
        "Commands that name a capture's frames from a module (`fold`, `report`, `flamegraph`, `diff`, "
        "`pmc resolve`) check that the capture fits each module given: caller frames after call "
        "instructions, leaf PCs on instruction starts, addresses inside functions, frames the tracer "
        "named inside their function, `map-in` records agreeing with `--base`/`--kldstat`.  A module the "
        "capture does not fit gets one line on standard error, `tracebridge: warning: PATH: the "
        "capture does not fit NAME: EVIDENCE; CAUSE AND FIX`, and the command goes on (exit 0); "
        "`--strict` makes it an error (exit 2, nothing written), `-v` (not on `pmc resolve`) prints the counts "
        "for every module. "
        "Each kind of evidence, its likely cause and what to do: "
        "[troubleshooting.md](troubleshooting.md#warning-the-capture-does-not-fit-a-module).",
        "",
        "## Commands",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    helps = {}
    for name, sub in [("", parser), *found]:
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps.update({f"{name} {c.dest}".strip(): c.help for c in action._choices_actions})
    for name, sub in found:
        text = helps.get(name) or re.split(r"\.(?:\s|$)", sub.description or "")[0]
        anchor = "tracebridge-" + name.replace(" ", "-")
        out.append(f"| [`tracebridge {name}`](#{anchor}) | {_markdown(' '.join(text.split()))} |")
    out += ["", "`tracebridge --version` prints the version; `-h`/`--help` works on every command.", ""]
    for name, sub in found:
        out += _section(name, sub)
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    check = "--check" in sys.argv[1:]
    text = render()
    if check:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is stale: run python docs/generate_reference.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

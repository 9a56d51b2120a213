"""D scripts from templates: the probe descriptions of a plan, poured into ``probes/*.d``.

A template (``probes/<name>.d``, installed as ``tracebridge/data/<name>.d``) is
a D script with placeholders on lines of their own:

* ``@@HEADER@@`` becomes a comment saying what was generated from what, what
  was left out and why, and how to run split scripts;
* a clause-opening marker stands for a list of probe descriptions, and the
  predicate and action block that follow it (up to a line ``}``) are the
  clause's body: ``@@ENTRY@@`` / ``@@RETURN@@`` list every function with an
  entry / a return probe, ``@@PAIRED_ENTRY@@`` / ``@@PAIRED_RETURN@@`` those
  with both, ``@@UNPAIRED_ENTRY@@`` those with an entry and no return;
* ``@@PC_IN_MODULE@@`` (inline) becomes a test that ``arg0`` lies in the
  module, when its load address is known;
* ``@@RUN@@`` (inline) becomes the ``-s`` options that run the script: the
  file names it was written to (every part), or ``-s SCRIPT.d`` on standard
  output.

libdtrace compiles every description of a clause separately, each with its own
copy of the predicate and actions, and the kernel takes at most 8 MiB of DOF
per program (``kern.dtrace.dof_maxsize``) and 16K actions per description.
So a long description list is cut into clauses of :data:`CLAUSE_MAX`, and the
functions into several script files ("parts") whose estimated DOF stays under
:data:`DOF_BUDGET`, half the kernel's limit.  The estimate counts, per
description, its strings and a DIF object for the predicate and for each
statement (see :func:`_clause_cost`).  Parts are meant to be run together,
``dtrace -s p.d -s p.part2.d ...``: one dtrace compiles each file as its own
program (own DOF) but shares their variables and aggregations.
"""

from __future__ import annotations

import os
import textwrap
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from operator import itemgetter

from typing import TYPE_CHECKING

from tracebridge import __version__
from tracebridge.support.errors import UsageError
from tracebridge.probes.probedesc import d_text

if TYPE_CHECKING:
    from tracebridge.probes.probeplan import Plan, Planned

TEMPLATES = ("count", "latency", "flow", "stack", "args")
HEADER = "@@HEADER@@"
PC_IN_MODULE = "@@PC_IN_MODULE@@"
RUN = "@@RUN@@"
#: Descriptions per clause; longer lists become several clauses with one body.
CLAUSE_MAX = 256
#: Estimated DOF bytes allowed per script file (the kernel's limit is 8 MiB).
DOF_BUDGET = 4 * 1024 * 1024
DOF_LIMIT = 8 * 1024 * 1024
#: Skipped functions named in the header comment, at most.
SKIPPED_LISTED = 500
NO_RETURN = "no-return-probe"
NO_DESCRIPTION = "no-unique-description"

#: Marker -> (probe name, which functions it lists, given (has entry, has return)).
MARKERS: dict[str, tuple[str, Callable[[bool, bool], bool]]] = {
    "@@ENTRY@@": ("entry", lambda entry, ret: entry),
    "@@RETURN@@": ("return", lambda entry, ret: ret),
    "@@PAIRED_ENTRY@@": ("entry", lambda entry, ret: entry and ret),
    "@@PAIRED_RETURN@@": ("return", lambda entry, ret: entry and ret),
    "@@UNPAIRED_ENTRY@@": ("entry", lambda entry, ret: entry and not ret),
}


@dataclass(frozen=True)
class Clause:
    """A marker and the predicate/action text that follows it."""

    marker: str
    body: str

    @property
    def probe(self) -> str:
        return MARKERS[self.marker][0]

    def listed(self, planned: Sequence[Planned]) -> list[Planned]:
        """The functions of ``planned`` this clause lists, in order."""
        wanted = MARKERS[self.marker][1]
        return [one for one in planned if wanted(one.fbt.entry is not None, bool(one.fbt.returns))]


@dataclass(frozen=True)
class Template:
    name: str
    #: Plain text (with HEADER / PC_IN_MODULE placeholders) and clauses, in order.
    segments: tuple[str | Clause, ...]

    @property
    def clauses(self) -> list[Clause]:
        return [s for s in self.segments if isinstance(s, Clause)]


def load_template(name: str) -> Template:
    if name not in TEMPLATES:
        raise UsageError(f"unknown template {name!r}; choose one of {', '.join(TEMPLATES)}")
    source = resources.files("tracebridge").joinpath("data", f"{name}.d").read_text(encoding="utf-8")
    return parse_template(name, source)


def parse_template(name: str, source: str) -> Template:
    segments: list[str | Clause] = []
    text: list[str] = []
    lines = iter(source.splitlines(keepends=True))
    for line in lines:
        marker = line.strip()
        if marker not in MARKERS:
            text.append(line)
            continue
        if text:
            segments.append("".join(text))
            text = []
        body = []
        for body_line in lines:
            body.append(body_line)
            if body_line.rstrip() == "}":
                break
        else:
            raise ValueError(f"template {name}: the clause after {marker} has no closing '}}' line")
        segments.append(Clause(marker, "".join(body)))
    if text:
        segments.append("".join(text))
    return Template(name, tuple(segments))


def _clause_cost(clause: Clause, module_field: str, function_field: str) -> int:
    """Estimated DOF bytes of one description of ``clause``.

    An ECB description and probe description (~96 bytes plus the strings),
    and per DIF object (the predicate, each statement) a header, its section
    headers and code: about 512 bytes, generously.
    """
    head, _, _ = clause.body.partition("{")
    difos = clause.body.count(";") + (1 if "/" in head else 0)
    return 96 + len(module_field) + len(function_field) + 16 + 512 * max(difos, 1)


@dataclass
class Script:
    """A rendered plan: which functions go in which part, and why others do not."""

    template: Template
    plan: Plan
    #: The traced functions of each part (one part unless the DOF estimate says otherwise).
    parts: list[list[Planned]]
    #: Estimated DOF bytes of each part.
    dof: list[int]
    #: Selected functions left out, with the reason.
    skipped: list[tuple[Planned, str]]
    #: ``arg0`` range of the module's code, when its load address is known.
    pc_range: tuple[int, int] | None

    def require_probes(self) -> None:
        """A probing template that ended up with no probe is an error, not a script of pragmas only.

        The message says why the selected functions got none (FBT's reason, or
        the template's need of a return probe) and which module-wide rule applies.
        """
        if not self.template.clauses or any(self.parts):
            return
        from tracebridge.probes.fbt import REASONS

        plan = self.plan
        where = plan.image.filename
        if not self.skipped:
            raise UsageError(f"{where} has no function for the {self.template.name!r} template to probe")
        if plan.verdict.reason is not None:
            raise UsageError(f"{where}: FBT creates no probes in this module: {REASONS[plan.verdict.reason]}")
        why = "; ".join(f"{planned.name.name}: {_reason_text(reason)}"
                        for planned, reason in self.skipped[:3])
        more = f"; and {len(self.skipped) - 3} more" if len(self.skipped) > 3 else ""
        raise UsageError(f"the {self.template.name!r} template has no probe for the {_selected(len(self.skipped))} "
                         f"of {where}: {why}{more} (`tracebridge symbols {where}` shows each one's probes)")

    def descriptions(self, planned: Planned) -> tuple[str, ...]:
        """The descriptions the script uses for one traced function, in clause order."""
        seen: list[str] = []
        for clause in self.template.clauses:
            if clause.listed([planned]):
                for text in self.plan.descriptions(planned, clause.probe):
                    if text not in seen:
                        seen.append(text)
        return tuple(seen)

    def text(self, index: int, files: Sequence[str]) -> str:
        """Part ``index`` as D source; ``files`` are all parts' file names."""
        out = []
        for segment in self.template.segments:
            if isinstance(segment, Clause):
                listed = self.plan.all_descriptions(segment.listed(self.parts[index]), segment.probe)
                for start in range(0, len(listed), CLAUSE_MAX):
                    out.append(",\n".join(listed[start:start + CLAUSE_MAX]) + "\n" + segment.body)
                continue
            segment = segment.replace(PC_IN_MODULE, self._pc_test()).replace(RUN, _run_options(files))
            out.append(segment.replace(HEADER + "\n", self._header(index, files)))
        return "".join(out)

    @cached_property
    def _summary(self) -> tuple[int, bool, int]:
        """Traced functions, whether any field is a glob, how many share their name: every part's header
        says them, so they are counted once (counted per part, 10^6 functions took 11 minutes)."""
        fields = [p.field for part in self.parts for p in part]
        return len(fields), any(f.glob for f in fields), sum(1 for f in fields if f.duplicates > 1)

    def _pc_test(self) -> str:
        if self.pc_range is None:
            return "arg0 != 0"
        return f"arg0 >= {self.pc_range[0]:#x} && arg0 < {self.pc_range[1]:#x}"

    def _header(self, index: int, files: Sequence[str]) -> str:
        from tracebridge.probes.fbt import REASONS  # FBT's rules and the module reader: not needed to list templates

        plan = self.plan
        image = plan.image
        traced, globs, shared = self._summary
        lines = [
            f"Generated by tracebridge {__version__} from {d_text(image.filename)} "
            f"({image.machine} {image.elf_type}) with template \"{self.template.name}\".",
        ]
        if self.template.clauses and plan.provider == "kinst":
            lines.append(f"Probes: kinst:{d_text(plan.module_field)}:<function>:<offset> (FreeBSD 14+), the "
                         f"entry at offset 0 and one at each ret, for {traced} of {_selected(len(plan.items))} "
                         f"({plan.total} in the module). kinst makes its probes when dtrace asks: "
                         "'dtrace -l' lists none before.")
        elif self.template.clauses:
            lines.append(f"Probes: fbt:{d_text(plan.module_field)}:<function>:entry|return for {traced} of "
                         f"{_selected(len(plan.items))} ({plan.total} in the module).")
            if globs:
                lines.append("A function field with ? or * is a glob: ? stands for $ or another character a "
                             "description cannot hold, * for the middle of a name longer than 191; each one "
                             "was checked to select its own function and no other.")
            if shared:
                lines.append(f"{shared} functions share their exact name with another symbol of the module: "
                             "a description selects all of them and DTrace cannot tell them apart.")
            lines.append(f"Descriptions are listed at most {CLAUSE_MAX} to a clause; longer lists repeat "
                         "the clause.")
        elif self.pc_range is None:
            lines.append("The module's load address is not known (no --base): every kernel sample is kept.")
        else:
            lines.append(f"Samples are kept while the CPU runs the module's code, "
                         f"{self.pc_range[0]:#x}-{self.pc_range[1]:#x} (--base and the module's size).")
        if len(files) > 1:
            lines += [
                f"Part {index + 1} of {len(files)}, estimated DOF {self.dof[index] // 1024} KiB: the probes "
                f"are split so that each script stays well under the kernel's {DOF_LIMIT >> 20} MiB of DOF "
                "per program. Run all parts in one dtrace, which shares their variables and aggregations:",
                f"    dtrace {_run_options(files)} -o out.txt",
            ]
        if plan.verdict.reason is not None:
            lines.append(f"FBT creates no probes in this module: {REASONS[plan.verdict.reason]}"
                         + (f" ({', '.join(d_text(d) for d in plan.verdict.dtrace_dependencies)})."
                            if plan.verdict.dtrace_dependencies else "."))
        if self.skipped and index == 0:
            lines.append("")
            lines.append(f"Not traced, for lack of what this template needs: {_selected(len(self.skipped))}.")
            for reason, count in sorted(Counter(map(itemgetter(1), self.skipped)).items()):
                lines.append(f"  {reason} ({count}): {_reason_text(reason)}")
            for planned, reason in self.skipped[:SKIPPED_LISTED]:
                lines.append(f"  - {d_text(planned.name.name)}  [{d_text(planned.function.name)}]: {reason}")
            if len(self.skipped) > SKIPPED_LISTED:
                lines.append(f"  ... and {len(self.skipped) - SKIPPED_LISTED} more: 'tracebridge symbols "
                             f"{d_text(image.filename)}' lists every function with its fbt_reason.")
        elif self.skipped:
            lines.append(f"Not traced: {_selected(len(self.skipped))}; part 1 lists them.")
        # Long sentences are wrapped; indented lines (commands, lists) are kept whole.  Names
        # went through d_text (no "/" left); the fixed text must not open or close a comment either.
        wrapped = [part.replace("/*", "/ *").replace("*/", "* /") for line in lines
                   for part in ([line] if not line or line.startswith(" ") else textwrap.wrap(line, 96))]
        return "/*\n" + "".join(f" * {line}".rstrip() + "\n" for line in wrapped) + " */\n"


def _reason_text(reason: str) -> str:
    """Why a function is not traced, in words: the template's needs, FBT's or kinst's rules."""
    from tracebridge.probes.fbt import REASONS

    text = _REASON_TEXT.get(reason) or REASONS.get(reason)
    if text is not None:
        return text
    # Only a kinst plan has kinst's reasons: its module brings the DWARF reader and iced-x86 (40 ms).
    from tracebridge.probes.kinst import REASONS as KINST_REASONS

    return KINST_REASONS[reason]


def _selected(count: int) -> str:
    return f"{count} selected function{'' if count == 1 else 's'}"


def _run_options(files: Sequence[str]) -> str:
    """``-s FILE`` for each part as written (standard output has no name to give)."""
    return " ".join(f"-s {d_text(os.path.basename(f)) if f != '-' else 'SCRIPT.d'}" for f in files)


_REASON_TEXT = {
    NO_RETURN: "FBT gives it no return probe, and this template needs one",
    NO_DESCRIPTION: "no probe description of at most 191 characters selects it alone",
}


def build(template: Template, plan: Plan, *, base: int | None = None, budget: int = DOF_BUDGET) -> Script:
    """Decide which selected functions the script traces, and in which part."""
    clauses = template.clauses
    skipped: list[tuple[Planned, str]] = []
    # A function without a return site is FBT's "no return probe", or kinst's "no ret".
    no_return = NO_RETURN
    if plan.provider == "kinst":
        from tracebridge.probes.kinst import NO_RET as no_return
    parts: list[list[Planned]] = [[]]
    dof: list[int] = []
    if not clauses:  # a sampling template: nothing to describe, nothing to cost
        parts[0] = list(plan.items)
        dof.append(0)
    else:
        # A function with an entry probe, by whether it has a return site (which clauses list it depends
        # only on its probes): the fixed DOF of the clauses that list it and how many they are (each
        # repeats its field), or None when none lists it.
        kinds: dict[bool, tuple[int, int] | None] = {}
        for ret in (False, True):
            listing = [c for c in clauses if MARKERS[c.marker][1](True, ret)]
            kinds[ret] = (sum(_clause_cost(c, plan.module_field, "") for c in listing), len(listing)) if listing \
                else None
        # One pass in order, each traced function costed and put in the current part (100k functions).
        part, total = parts[0], 0
        for planned in plan.items:
            probes = planned.fbt
            if probes.entry is None:
                skipped.append((planned, probes.reason))
                continue
            kind = kinds[bool(probes.returns)]
            text = planned.field.text
            if kind is None:
                skipped.append((planned, no_return))
            elif text is None:
                skipped.append((planned, NO_DESCRIPTION))
            else:
                cost = kind[0] + kind[1] * len(text)
                if part and total + cost > budget:
                    dof.append(total)
                    part, total = [], 0
                    parts.append(part)
                part.append(planned)
                total += cost
        dof.append(total)
    base = plan.image.fixed_base if plan.image.fixed_base is not None else base
    pc_range = None if base is None else (base, base + plan.image.size)
    return Script(template, plan, parts, dof, skipped, pc_range)


def part_files(output: str | None, count: int) -> list[str]:
    """File names of ``count`` parts written to ``output`` (``-``/None: standard output)."""
    if output is None or output == "-":
        if count > 1:
            raise UsageError(f"the probes need {count} script files to stay under libdtrace's "
                             f"{DOF_LIMIT >> 20} MiB DOF limit; give -o FILE to write them")
        return ["-"]
    stem, suffix = os.path.splitext(output)
    return [output] + [f"{stem}.part{i}{suffix or '.d'}" for i in range(2, count + 1)]

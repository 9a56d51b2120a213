"""What stands between a module and DTrace, and how to fix it: the ``inspect`` report.

Everything here is derived from a :class:`~tracebridge.probes.probeplan.Plan`: the
counts say what FBT will do with the module (exactly, see
:mod:`tracebridge.probes.fbt`), the findings say which build or link choice caused
each gap and what to change.  The report is data first (:meth:`Report.to_json`),
rendered for a terminal by :meth:`Report.text`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

from tracebridge.probes import fbt, kinst, kinst_isa
from tracebridge.probes.fbt_isa import NO_FRAME_POINTER, NO_PROLOGUE
from tracebridge.probes.probedesc import FUNCTION_MAX
from tracebridge.probes.probeplan import Plan


@dataclass(frozen=True)
class Finding:
    """One obstacle, how much it costs, and the change that removes it."""

    code: str
    problem: str
    fix: str


@dataclass
class Report:
    module: str
    machine: str
    elf_type: str
    functions: int
    code_sections: int
    rust_legacy: int
    rust_v0: int
    other: int
    #: Functions with an entry probe, with at least one return site, with an entry only.
    entry: int
    ret: int
    entry_only: int
    #: Functions without probes, by ``fbt_reason``.
    reasons: dict[str, int]
    #: The first few of them by reason (demangled, in symbol-table order), so the text names them.
    reason_examples: dict[str, list[str]]
    #: Probed functions whose field is a glob (``?`` for ``$`` and the like, ``*`` for
    #: long names), and those no field can single out.
    glob_names: int
    long_names: int
    unnamed: int
    dtrace_dependencies: list[str]
    #: Functions kinst (FreeBSD 14+) can probe by name, and the others by kinst reason.
    kinst: int = 0
    kinst_reasons: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def probeable(self) -> int:
        return self.entry

    @property
    def frameless(self) -> int:
        """Functions without the prologue FBT looks for."""
        return self.reasons.get(NO_FRAME_POINTER, 0) + self.reasons.get(NO_PROLOGUE, 0)

    def to_json(self) -> dict:
        data = asdict(self)
        data["probeable"] = self.probeable
        return data

    def text(self) -> str:
        """The one-screen report."""
        n = self.functions
        rust = self.rust_legacy + self.rust_v0
        layout = ("one section per function" if self.code_sections > 1 else "one code section")
        lines = [
            f"{self.module}: {self.machine} {self.elf_type}, {n} functions in {self.code_sections} code "
            f"section{'s' if self.code_sections != 1 else ''} ({layout})",
            f"  Rust {rust} ({_share(rust, n)}; legacy {self.rust_legacy}, v0 {self.rust_v0}), "
            f"C and other {self.other}",
            f"FBT probes: entry {self.entry} ({_share(self.entry, n)}), return {self.ret}, "
            f"entry only {self.entry_only}, none {n - self.entry}",
        ]
        for reason, count in sorted(self.reasons.items(), key=lambda item: -item[1]):
            lines.append(f"  {count:6} {reason}: {fbt.REASONS[reason]}")
            examples = self.reason_examples.get(reason, [])
            more = f" and {count - len(examples)} more" if count > len(examples) else ""
            lines.append(f"         {', '.join(examples)}{more}")
        if self.machine in kinst_isa.MACHINES:
            lines.append(f"kinst probes (FreeBSD 14+; any instruction, exact names): {self.kinst} of {n} functions "
                         f"({_share(self.kinst, n)}) can be probed")
            for reason, count in sorted(self.kinst_reasons.items(), key=lambda item: -item[1]):
                lines.append(f"  {count:6} {reason}: {kinst.REASONS[reason]}")
        lines.append(f"Names of probed functions: {self.glob_names} need a glob in probe descriptions ('$' "
                     f"and other characters become '?'), {self.long_names} are longer than {FUNCTION_MAX} "
                     f"(prefix*suffix), {self.unnamed} cannot be singled out")
        if self.entry == 0:
            lines.append("Verdict: nothing in this module is probeable with FBT.")
        elif self.entry == n:
            lines.append("Verdict: every function is probeable with FBT.")
        elif self.frameless > self.entry:
            lines.append(f"Verdict: only {self.entry} of {n} functions are probeable with FBT: the module was "
                         "built without frame pointers (see the first fix).")
        else:
            lines.append(f"Verdict: {self.entry} of {n} functions are probeable with FBT.")
        if self.findings:
            lines.append("Fixes:")
            for finding in self.findings:
                lines.append(f"  - {finding.problem}")
                lines.append(f"    Fix: {finding.fix}")
        return "\n".join(lines) + "\n"


#: Functions named per reason in the report.
REASON_EXAMPLES = 3


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "0%"


def inspect_plan(plan: Plan) -> Report:
    image = plan.image
    items = plan.items
    schemes = Counter(p.name.scheme for p in items)
    reasons = Counter(p.fbt.reason for p in items if p.fbt.reason is not None)
    examples: dict[str, list[str]] = {}
    for p in items:
        if p.fbt.reason is not None and len(examples.setdefault(p.fbt.reason, [])) < REASON_EXAMPLES:
            examples[p.fbt.reason].append(p.name.name)
    entry = sum(1 for p in items if p.fbt.has_entry)
    ret = sum(1 for p in items if p.fbt.has_return)
    fields = [p.field for p in items]
    report = Report(
        module=image.filename, machine=image.machine, elf_type=image.elf_type, functions=len(items),
        code_sections=len({p.function.shndx for p in items}),
        rust_legacy=schemes.get("rust-legacy", 0), rust_v0=schemes.get("rust-v0", 0),
        other=len(items) - schemes.get("rust-legacy", 0) - schemes.get("rust-v0", 0),
        entry=entry, ret=ret, entry_only=entry - ret, reasons=dict(reasons), reason_examples=examples,
        glob_names=sum(1 for f in fields if f.glob), long_names=sum(1 for f in fields if f.text and "*" in f.text),
        unnamed=sum(1 for p in items if p.fbt.has_entry and p.field.text is None),
        dtrace_dependencies=list(plan.verdict.dtrace_dependencies),
    )
    kinst_problems = Counter(kinst.function_problem(image, p.function) for p in items)
    report.kinst = kinst_problems.pop(None, 0)
    report.kinst_reasons = dict(kinst_problems)
    report.findings = _findings(plan, report)
    return report


def _findings(plan: Plan, report: Report) -> list[Finding]:
    image = plan.image
    found = []
    if report.reasons.get(fbt.EXCLUDED_MODULE):
        found.append(Finding("module-name", f"FBT never instruments a module named {plan.modname!r}.",
                             "load the code under another file name."))
    if report.dtrace_dependencies:
        found.append(Finding(
            "dtrace-depend",
            f"The module has MODULE_DEPEND on {', '.join(report.dtrace_dependencies)}: FBT skips every "
            "module that depends on DTrace (it may be a DTrace provider itself).",
            "avoid a MODULE_DEPEND on dtrace: move the provider code into a small separate module."))
    frameless = [p for p in plan.items if p.fbt.reason in (NO_FRAME_POINTER, NO_PROLOGUE)]
    if frameless:
        rust = sum(1 for p in frameless if p.name.is_rust)
        instruction = "push %rbp" if image.machine == "amd64" else (
            "push %ebp; mov %esp,%ebp" if image.machine == "i386" else "frame-building prologue")
        found.append(Finding(
            "frame-pointers",
            f"Functions without {instruction}: {len(frameless)} ({rust} Rust). FBT gives them no probes, "
            "and stack() cannot walk through them.",
            "build with -C force-frame-pointers=yes (RUSTFLAGS) and -fno-omit-frame-pointer for C."))
    if image.elf_type == "ET_REL" and report.code_sections > 1:
        found.append(Finding(
            "merge-text",
            f"The code is spread over {report.code_sections} sections (.text.<name>): libdtrace's stack() "
            "and pmcstat name only symbols with a non-zero value, so most Rust frames print as bare "
            "addresses.",
            "link with a script that merges .text.* into one .text, as kmod.mk does with "
            "sys/conf/ldscript.kmod.amd64 (ld -r -T ldscript.kmod.amd64)."))
    if image.symtab != ".symtab":
        found.append(Finding(
            "keep-symtab",
            f"Only {image.symtab} is present: FBT and DTrace see only the exported functions.",
            "keep .symtab: do not strip the module (no strip, no -s, no install -s)."))
    excluded = report.reasons.get(fbt.EXCLUDED_NAME, 0)
    if excluded:
        found.append(Finding(
            "excluded-names", f"Functions whose names FBT refuses: {excluded} (dtrace_* other than "
            "dtrace_safe_*, lock owner methods, the machine's exception handlers).",
            "rename functions that should be traced (dtrace_safe_* is allowed)."))
    if report.reasons.get(fbt.ZERO_SIZE):
        found.append(Finding("symbol-size", f"Functions with a zero symbol size: {report.reasons[fbt.ZERO_SIZE]}.",
                             "give assembly functions a .size directive."))
    if report.unnamed:
        found.append(Finding(
            "long-names", f"Functions no probe description of at most {FUNCTION_MAX} characters can name "
            f"alone: {report.unnamed}.",
            "shorten the Rust path or type names of these generic instances, or trace them with a wider glob."))
    return found

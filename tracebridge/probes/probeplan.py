"""Everything known about tracing a module's functions, in one place.

``gen-probes`` and ``inspect`` ask the same questions of every function: what
it is called (mangled and demangled), whether the user selected it, what FBT
will give it (:mod:`tracebridge.probes.fbt`) and how a probe description can name it
(:mod:`tracebridge.probes.probedesc`).  :func:`plan_module` answers them once, and
only as far as needed: names are demangled when first asked for (or all at
once to apply a selection), and only functions with probes get a field.
Description fields are checked against *all* the module's functions, selected
or not, because the kernel matches a description against all of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from tracebridge.probes import dglob
from tracebridge.image.demangle import Demangled, demangle_all, demangle_symbol
from tracebridge.probes.fbt import FbtOptions, FbtProbes, ModuleVerdict, Predictor
from tracebridge.image.elf import Function, ModuleImage
from tracebridge.probes.probedesc import FunctionField, FunctionFields, description, module_field
from tracebridge.image.select import Selection
from tracebridge.support import gcpause
from tracebridge.support.parallel import cost_middle, split_columns
from tracebridge.support.records import slot_records


@dataclass(slots=True)
class Planned:
    """One selected function, with its FBT probes and its description field.

    Not frozen, as :class:`~tracebridge.image.elf.Function` is not: a plan builds
    one per function (100k), at twice the cost when frozen.  Treat as read-only.
    """

    function: Function
    fbt: FbtProbes
    #: How descriptions name it; worked out only for functions with probes.
    field: FunctionField

    @property
    def name(self) -> Demangled:
        """The demangled name, on first use (``demangle_symbol`` caches it)."""
        return demangle_symbol(self.function.name)


#: The field of a function FBT gives no probe: no description will name it.
NOT_NEEDED = FunctionField(None, problem="FBT gives it no probe")


@dataclass(frozen=True)
class Plan:
    image: ModuleImage
    #: FBT's module name (the file name without ``.ko``, or ``--module-name``).
    modname: str
    #: The module field as written in descriptions.
    module_field: str
    verdict: ModuleVerdict
    #: Selected functions in offset order.
    items: Sequence[Planned]
    #: How many functions the module has in all (selected or not).
    total: int
    #: ``fbt``, or ``kinst`` (entry at offset 0 and a probe per ``ret``, exact names).
    provider: str = "fbt"

    def descriptions(self, planned: Planned, probe: str) -> list[str]:
        """The descriptions of one function's ``entry`` or ``return`` probes (kinst: one per ``ret``)."""
        if self.provider == "kinst":
            from tracebridge.probes import kinst

            offsets = (planned.fbt.entry,) if probe == "entry" else planned.fbt.returns
            return [kinst.description(self.image, planned.function, offset) for offset in offsets]
        return [description(self.module_field, planned.field.text, probe)]

    def all_descriptions(self, planned: Sequence[Planned], probe: str) -> list[str]:
        """:meth:`descriptions` of each function in turn, in one list: a script lists 100k of them, and
        an FBT description is the same text around each function field."""
        if self.provider == "kinst":
            return [text for one in planned for text in self.descriptions(one, probe)]
        head, _, tail = description(self.module_field, "\0", probe).partition("\0")
        return [head + one.field.text + tail for one in planned]


def plan_module(image: ModuleImage, *, modname: str | None = None, options: FbtOptions = FbtOptions(),
                selection: Selection | None = None, provider: str = "fbt") -> Plan:
    modname = modname or image.modname
    functions = image.functions_by_offset
    if selection is not None and selection.active:
        keep = selection.select(functions, demangle_all([f.name for f in functions]), image.filename)
        functions = [functions[i] for i in keep]
    if provider == "kinst":
        from tracebridge.probes import kinst  # the DWARF reader and iced-x86: not for FBT's plans

        counts = Counter(f.name for f in image.functions)
        probes = kinst.predict(image, functions)
        items = [Planned(f, p, FunctionField(f.name, counts[f.name]) if p.has_entry else NOT_NEEDED)
                 for f, p in zip(functions, probes)]
        return Plan(image, modname, image.filename, ModuleVerdict(None, ()), items, len(image.functions), provider)
    with gcpause.paused():
        predictor = Predictor(image, modname, options)
        fields = FunctionFields((f.name for f in image.functions), signed_char=dglob.SIGNED_CHAR[image.machine])

        def probes_and_fields(part: Sequence[Function]) -> tuple[list[FbtProbes], list[FunctionField]]:
            """FBT's answer and the description field of each function: independent, so run in halves."""
            probes = predictor.scan(part)
            named = iter(fields.fields([f.name for f, p in zip(part, probes) if p.entry is not None]))
            return probes, [NOT_NEEDED if p.entry is None else next(named) for p in probes]

        probes, found = split_columns(probes_and_fields, functions, middle=_middle_by_code)
        items = slot_records(Planned, (list(functions), probes, found))
    return Plan(image, modname, module_field(modname), predictor.verdict, items, len(image.functions))


#: Bytes of code that cost plan_module about as much as one more function (FBT's walk, fields).
_CODE_PER_FUNCTION = 1024
#: The share of the units the first half (split_map's parent) takes: the child also pickles its answers
#: and copies the pages it writes to (fork shares them copy-on-write).
_FIRST_SHARE = 0.56


def _middle_by_code(functions: Sequence[Function]) -> int:
    """Where the first of plan_module's two halves ends: at :data:`_FIRST_SHARE` of one unit per function
    plus one per :data:`_CODE_PER_FUNCTION` bytes of code.  Measured on librustc_driver, whose second 53k
    functions by address hold twice the code of the first: cut at half the functions, the second took 25 %
    more instructions; cut at half the units, the child's process still took 15 % more CPU time than the
    parent's half (0.55 s against 0.47 s, pickling included), at 0.53 of them 12 % more, at 0.56 as much
    (within the noise of a loaded machine).  The units are summed over sampled functions
    (:func:`~tracebridge.support.parallel.cost_middle`): this runs before the fork, so at most 8,192 of
    librustc_driver's 106k functions are asked their size."""
    return cost_middle(functions, _code_units, _FIRST_SHARE)


def _code_units(function: Function) -> float:
    return 1 + function.size / _CODE_PER_FUNCTION

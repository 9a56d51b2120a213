"""pprof export: the stacks as a gzip-compressed ``profile.proto``.

``go tool pprof``, Grafana Pyroscope, Parca and Polar Signals read this
format, so a tracebridge capture opens in their views (and their diffs)
without a converter.  The message is built with the ``protobuf`` package's
classes generated from pprof's own ``profile.proto``
(:mod:`tracebridge.render.pprof_proto`), not encoded by hand.

What goes where (docs/formats.md has the table):

* one ``Sample`` per distinct stack, leaf first as pprof wants, its value
  the stack's weight; ``sample_type`` says what the weights count
  (:func:`sample_type`); where the reader kept the samples' context (a
  ``pmcstat -R`` log's CPU and process), one ``Sample`` per stack and
  context, with ``cpu`` and ``pid`` labels (strings: Pyroscope and Parca
  keep string labels only, and Go's pprof drops a number label of 0);
* one ``Location`` per distinct frame, with the frame's ``Function``: the
  name as the text outputs print it (``--no-demangle``, ``--hash`` and
  ``--include-offset`` apply, so ``go tool pprof -traces`` shows the folded
  output's stacks) as ``name``, the symbol as the module spells it as
  ``system_name`` where that differs;
* one ``Mapping`` per module: the file given with ``--module`` (or the
  bundle's copy) as ``filename``, its SHA-256 as ``build_id``, and where
  the module's layout places a frame, its offset from the module's base as
  ``Location.address`` (mapping starts at 0, so addresses read as module
  offsets).  Modules known only by name (``kernel`` in a ``stack()``
  frame) get a mapping with that name and no addresses.

A ``Location`` holds a list of ``Line`` s, innermost first: a frame, and
with ``--inline`` the frames inlined into it at that address (pprof's way of
saying "inlined into", :func:`_inline_runs`), each with its source file and
line where the module's DWARF is found (:meth:`_Builder.sources`).
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping as MappingType
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from tracebridge.profile.labels import INLINED_SUFFIX, LabelOptions
from tracebridge.profile.model import Frame, Metadata, Profile, SampleLabels
from tracebridge.support.errors import InputError, UsageError, warn

if TYPE_CHECKING:
    from tracebridge.image.dwarf import AddressIndex
    from tracebridge.image.elf import ModuleImage
    from tracebridge.render.pprof_proto import profile_pb2

#: Sample types of the weights a reader can give: (event, unit) of the profile's metadata.
#: A pmcstat profile's event is the PMC's name: its samples are still ``samples/count``.
_CALLS = ("calls", "count")
_SAMPLES = ("samples", "count")


@dataclass(frozen=True)
class ModuleFile:
    """What a module file tells a pprof ``Mapping``: which file, which build, where functions start."""

    #: The module as frames name it (``if_rem.ko``, ``kernel``).
    name: str
    path: str
    size: int
    sha256: str | None
    #: Symbol -> offset of the function from the module's base, as the kernel linker lays it out.
    starts: MappingType[str, int] = field(default_factory=dict)
    #: The module's DWARF address index (source lines), when its debug information was found.
    index: AddressIndex | None = None


def sample_type(metadata: Metadata) -> tuple[str, str]:
    """pprof's (type, unit) for what the profile's weights are.

    ``count()`` of stacks (a profile probe) and PMC samples are
    ``samples/count``; calls (a flow capture, the count template)
    ``calls/count``; a ``sum()`` of nanoseconds (the latency template)
    ``time/nanoseconds``; any other sum or histogram keeps its kind.
    """
    if metadata.unit == "nanoseconds":
        return ("time", "nanoseconds")
    if metadata.event == "calls":
        return _CALLS
    if metadata.unit == "samples":
        return _SAMPLES
    return (metadata.event, "count")


class _Builder:
    """Fills one ``Profile`` message: string table, functions, mappings and locations, each interned."""

    def __init__(self, message: profile_pb2.Profile, modules: MappingType[str, ModuleFile]):
        self.message = message
        self.modules = modules
        self.strings: dict[str, int] = {}
        self.functions: dict[tuple[str, str], profile_pb2.Function] = {}
        self.mappings: dict[str, int] = {}
        self.string("")  # string_table[0] must be ""

    def string(self, text: str) -> int:
        index = self.strings.get(text)
        if index is None:
            index = self.strings[text] = len(self.message.string_table)
            self.message.string_table.append(text)
        return index

    def function(self, name: str, system_name: str, filename: str | None) -> int:
        key = (name, system_name)
        entry = self.functions.get(key)
        if entry is None:
            entry = self.functions[key] = self.message.function.add(
                id=len(self.functions) + 1, name=self.string(name), system_name=self.string(system_name))
        if filename and not entry.filename:
            entry.filename = self.string(filename)
        return entry.id

    def mapping(self, module: str) -> int:
        ident = self.mappings.get(module)
        if ident is None:
            ident = self.mappings[module] = len(self.mappings) + 1
            known = self.modules.get(module)
            entry = self.message.mapping.add(id=ident, filename=self.string(known.path if known else module),
                                             has_functions=True)
            if known is not None:
                entry.memory_limit = known.size
                if known.sha256:
                    entry.build_id = self.string(known.sha256)
                entry.has_filenames = entry.has_line_numbers = known.index is not None
        return ident

    def address(self, frame: Frame) -> int | None:
        """The frame's offset from its module's base when the module's layout is known, else None."""
        known = self.modules.get(frame.module) if frame.module else None
        if known is None:
            return None
        if not frame.resolved:  # a PC inside the module that no symbol covers: its offset is the module's
            return frame.offset
        start = known.starts.get(frame.symbol)
        return None if start is None else start + (frame.offset or 0)

    def sources(self, frames: list[Frame], addresses: list[int | None], leaves: set[int]) -> dict[int, _Source]:
        """File and line of each frame (by id) whose module has DWARF, for the function the frame names.

        A caller's address is a return address, which may already lie on
        the next line: it is looked up at address - 1, the leaf's at its
        address.  The line is the outermost frame's of the address's inline
        chain: where in the named function the code is (a call site, when
        the code there was inlined from elsewhere).
        """
        wanted: dict[str, list[int]] = {}
        for ident, frame in enumerate(frames):
            known = self.modules.get(frame.module) if frame.module else None
            if (known is not None and known.index is not None and frame.resolved and addresses[ident] is not None
                    and frame.line is None):  # --inline gave its frames their lines already
                wanted.setdefault(frame.module, []).append(ident)
        found: dict[int, _Source] = {}
        for module, idents in wanted.items():
            query = [addresses[i] - (i not in leaves) for i in idents]
            for ident, chain in zip(idents, self.modules[module].index.frames_many(query)):
                if chain:
                    found[ident] = _Source(chain[-1].file, chain[-1].line)
        return found

    def location(self, ident: int, run: tuple[int, ...], frames: list[Frame], names: list[str],
                 address: int | None, source: _Source | None) -> None:
        """A location for ``run``: a frame (at ``address``) and the frames inlined into it, outermost first."""
        base = frames[run[0]]
        location = self.message.location.add(id=ident, address=address or 0)
        if base.module:
            location.mapping_id = self.mapping(base.module)
            if len(run) > 1:
                self.message.mapping[location.mapping_id - 1].has_inline_frames = True
        for position in reversed(range(len(run))):  # innermost first, as pprof lists them
            frame, name = frames[run[position]], names[run[position]]
            if frame.inlined:  # pprof marks inlined lines itself
                name = name.removesuffix(INLINED_SUFFIX)
            own = _Source(frame.file, frame.line) if frame.file or frame.line else None
            where = own or (source if position == 0 else None) or _Source(None, None)
            # A system name only where the module's symbol differs from the name (not for an inlined
            # copy or a name the input gave): pprof would "demangle" a name equal to it, `<T as U>::f` to `::f`.
            system_name = frame.symbol if frame.symbol != frame.name else ""
            location.line.add(function_id=self.function(name, system_name, where.file), line=where.line or 0)


@dataclass(frozen=True)
class _Source:
    file: str | None
    line: int | None


def module_files(metadata: Metadata) -> dict[str, ModuleFile]:
    """The module files the frames were named from, by the module name their frames carry."""
    return {image.frame_module: ModuleFile(image.frame_module, image.path, image.size, image.sha256,
                                           {f.name: f.offset for f in image.functions}, _dwarf(image))
            for image in metadata.modules}


def _dwarf(image: ModuleImage) -> AddressIndex | None:
    """The module's DWARF index when its debug information is found (as ``lookup`` finds it), else None."""
    from tracebridge.image.dwarf import module_index

    try:
        return module_index(image)[0]
    except InputError as exc:  # a debug file that is not the module's: no lines, the profile still written
        warn(f"{exc}; the pprof profile has no source lines for {image.filename}")
        return None


def build_pprof(profile: Profile, labels: LabelOptions = LabelOptions()) -> profile_pb2.Profile:
    """The ``Profile`` message of ``profile``."""
    profile_pb2 = _generated()
    weights = list(profile.stacks.values())
    if any(weight != int(weight) for weight in weights):
        raise UsageError("pprof values are whole numbers and these weights have fractions "
                         "(write them with --format folded or parquet)")
    message = profile_pb2.Profile()
    build = _Builder(message, module_files(profile.metadata))
    kind, unit = sample_type(profile.metadata)
    message.sample_type.add(type=build.string(kind), unit=build.string(unit))
    if kind == "samples" and profile.metadata.event not in ("samples", ""):
        message.period_type.type = build.string(profile.metadata.event)  # the PMC event sampled
        message.period_type.unit = build.string("count")
    frames = profile.frames
    names = labels.labels(profile)
    addresses = [build.address(frame) for frame in frames]
    sources = build.sources(frames, addresses, {stack[-1] for stack in profile.stacks if stack})
    runs: dict[tuple[int, ...], int] = {}
    parts: dict[tuple[int, ...], list[tuple[SampleLabels, float]]] = {}
    for (stack, context), weight in profile.labelled.items():
        parts.setdefault(stack, []).append((context, weight))
    for stack, weight in zip(profile.stacks, weights):
        locations = []
        for run in reversed(_inline_runs(stack, frames)):
            ident = runs.get(run)
            if ident is None:
                ident = runs[run] = len(runs) + 1
                build.location(ident, run, frames, names, addresses[run[0]], sources.get(run[0]))
            locations.append(ident)
        rest = weight
        for context, part in parts.get(stack, ()):
            sample = message.sample.add(location_id=locations, value=[int(part)])
            for key, number in context:
                sample.label.add(key=build.string(key), str=build.string(str(number)))
            rest -= part
        if rest or stack not in parts:  # what no labelled sample covers (an input that kept none)
            message.sample.add(location_id=locations, value=[int(rest)])
    if profile.metadata.duration is not None:
        message.duration_nanos = round(profile.metadata.duration * 1e9)
    for text in [f"tracebridge: {profile.metadata.source}", *profile.metadata.notes]:
        message.comment.append(build.string(text))
    return message


def _inline_runs(stack: tuple[int, ...], frames: list[Frame]) -> list[tuple[int, ...]]:
    """``stack`` cut into pprof locations: each frame with the inlined frames after it (``--inline``)."""
    runs: list[list[int]] = []
    for ident in stack:
        if frames[ident].inlined and runs:
            runs[-1].append(ident)
        else:
            runs.append([ident])
    return [tuple(run) for run in runs]


def write_pprof(out: IO[bytes], profile: Profile, labels: LabelOptions = LabelOptions()) -> None:
    """Write ``profile`` gzip-compressed, as pprof's tools read it (``mtime`` 0: same input, same bytes)."""
    data = build_pprof(profile, labels).SerializeToString(deterministic=True)
    out.write(gzip.compress(data, mtime=0))


def _generated():
    """The generated module; protobuf is optional (``tracebridge[pprof]``), so say how to get it."""
    try:
        from tracebridge.render.pprof_proto import profile_pb2
    except ImportError as exc:
        raise UsageError(f"--format pprof needs the protobuf package ({exc}): "
                         "pip install 'tracebridge[pprof]'") from None
    except Exception as exc:  # protobuf's VersionError: a runtime older than the generated code needs
        raise UsageError(f"--format pprof needs a newer protobuf package ({exc}): "
                         "pip install 'tracebridge[pprof]'") from None
    return profile_pb2

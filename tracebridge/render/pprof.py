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
  ``system_name``;
* one ``Mapping`` per module: the file given with ``--module`` (or the
  bundle's copy) as ``filename``, its SHA-256 as ``build_id``, and where
  the module's layout places a frame, its offset from the module's base as
  ``Location.address`` (mapping starts at 0, so addresses read as module
  offsets).  Modules known only by name (``kernel`` in a ``stack()``
  frame) get a mapping with that name and no addresses.

A ``Location`` holds a list of ``Line`` s, innermost first; a frame is one
``Line`` today.  Inlined frames become more ``Line`` s of the same
``Location`` (pprof's way of saying "inlined into"), not more locations.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping as MappingType
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from tracebridge.profile.labels import LabelOptions
from tracebridge.profile.model import Frame, Metadata, Profile, SampleLabels
from tracebridge.support.errors import UsageError

if TYPE_CHECKING:
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
        self.functions: dict[tuple[str, str], int] = {}
        self.mappings: dict[str, int] = {}
        self.string("")  # string_table[0] must be ""

    def string(self, text: str) -> int:
        index = self.strings.get(text)
        if index is None:
            index = self.strings[text] = len(self.message.string_table)
            self.message.string_table.append(text)
        return index

    def function(self, name: str, system_name: str) -> int:
        key = (name, system_name)
        ident = self.functions.get(key)
        if ident is None:
            ident = self.functions[key] = len(self.functions) + 1
            self.message.function.add(id=ident, name=self.string(name), system_name=self.string(system_name))
        return ident

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
        return ident

    def address(self, frame: Frame) -> int:
        """The frame's offset from its module's base when the module's layout is known, else 0."""
        known = self.modules.get(frame.module) if frame.module else None
        if known is None:
            return 0
        if not frame.resolved:  # a PC inside the module that no symbol covers: its offset is the module's
            return frame.offset or 0
        start = known.starts.get(frame.symbol)
        return 0 if start is None else start + (frame.offset or 0)

    def location(self, ident: int, frame: Frame, name: str) -> None:
        location = self.message.location.add(id=ident, address=self.address(frame))
        if frame.module:
            location.mapping_id = self.mapping(frame.module)
        location.line.add(function_id=self.function(name, frame.symbol))


def module_files(metadata: Metadata) -> dict[str, ModuleFile]:
    """The module files the frames were named from, by the module name their frames carry."""
    from tracebridge.readers.bundle import sha256_of

    return {image.frame_module: ModuleFile(image.frame_module, image.path, image.size, sha256_of(image.path),
                                           {f.name: f.offset for f in image.functions})
            for image in metadata.modules}


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
    for ident, (frame, name) in enumerate(zip(profile.frames, labels.labels(profile)), 1):
        build.location(ident, frame, name)
    parts: dict[tuple[int, ...], list[tuple[SampleLabels, float]]] = {}
    for (stack, context), weight in profile.labelled.items():
        parts.setdefault(stack, []).append((context, weight))
    for stack, weight in zip(profile.stacks, weights):
        locations = [i + 1 for i in reversed(stack)]
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

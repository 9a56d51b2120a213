"""Reading profile inputs of any supported kind into one :class:`~tracebridge.profile.model.Profile`.

Every command that reads samples (``fold``, ``report``, flame graphs) goes
through :func:`load_inputs`, so each input format is written once and
auto-detected the same way everywhere.  Formats are rows of :data:`FORMATS`:
a name for ``--format``, a phrase for "this looks like ..." messages, and
two functions named as ``"module:function"`` strings.  The strings keep this
module free of imports of the readers, so a reader can import :class:`Source`,
:class:`LoadOptions` and :class:`Loaded` from here, and a command pays only
for the readers its inputs need.

To add a format, write in its module::

    def sniff(source: Source) -> bool        # cheap: look at source.head only
    def read(source: Source, options: LoadOptions) -> Loaded

and add an :class:`InputFormat` row; rows are tried in order, the first
whose ``sniff`` says yes reads the file.
"""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import IO, TYPE_CHECKING

from tracebridge.support import spool
from tracebridge.support.errors import EmptyInput, InputError, UsageError, reading, warn
from tracebridge.profile.model import Metadata, Profile

if TYPE_CHECKING:
    from tracebridge.readers.dtrace import Aggregation
    from tracebridge.readers.dtrace_frames import FrameNamer
    from tracebridge.image.elf import ModuleImage
    from tracebridge.profile.resolve import AddressSpace

#: Bytes of each file the sniffers look at.
HEAD_SIZE = 64 * 1024
#: Bytes a streaming reader takes at a time.
BLOCK = 4 << 20
#: Longest line accepted: far beyond any real stack, and it bounds the memory one line takes.
MAX_LINE = 64 << 20


@dataclass(frozen=True)
class InputFormat:
    """One readable format; ``sniff`` and ``read`` are ``"module:function"`` names."""

    name: str
    #: Completes "this looks like ...": what a user would call the file.
    description: str
    sniff: str
    read: str

    def _function(self, spec: str) -> Callable:
        module, _, attribute = spec.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def matches(self, source: Source) -> bool:
        return bool(self._function(self.sniff)(source))

    def load(self, source: Source, options: LoadOptions) -> Loaded:
        return self._function(self.read)(source, options)


#: Every format tracebridge reads, in auto-detection order: most specific first, and cheap
#: sniffers before those whose module is heavy to import (pmcstat's imports numpy).
FORMATS: tuple[InputFormat, ...] = (
    InputFormat("dtrace-flow", "DTrace flow output (dtrace -F: `-> func` / `<- func` lines)",
                "tracebridge.readers.dtrace_flow:sniff", "tracebridge.readers.dtrace_flow:read"),
    InputFormat("dtrace", "DTrace output (stack()/ustack() or key/value aggregations, traced stacks)",
                "tracebridge.readers.dtrace:sniff", "tracebridge.readers.dtrace:read"),
    InputFormat("pmcstat-callgraph", "pmcstat -G callgraph output (`@ EVENT [N samples]`, `NN.NN%  [count]  func`)",
                "tracebridge.readers.pmcstat:sniff_callgraph_source", "tracebridge.readers.pmcstat:read_callgraph_source"),
    InputFormat("pmcstat-log", "pmcstat -R LOG -o record output (`callchain` records and `...` PC lines)",
                "tracebridge.readers.pmcstat:sniff_log_source", "tracebridge.readers.pmcstat:read_log_source"),
    InputFormat("folded", "folded stacks (`root;child;leaf COUNT` lines)",
                "tracebridge.readers.folded:sniff", "tracebridge.readers.folded:read"),
)


def format_names() -> tuple[str, ...]:
    return tuple(f.name for f in FORMATS)


def find_format(name: str) -> InputFormat:
    for fmt in FORMATS:
        if fmt.name == name:
            return fmt
    raise UsageError(f"unknown input format {name!r} (known: {', '.join(format_names())})")


class Source:
    """One input file: its path, the first bytes for sniffing, and its text for reading.

    Readers take the text in blocks of whole lines (:meth:`blocks`,
    :meth:`lines`), so a capture of gigabytes never sits in memory (those
    that need all of a small file take :attr:`data`).  The text is checked
    here, once, for what no reader should have to handle:
    NUL bytes (a binary file), bytes that are not UTF-8, and lines longer
    than :data:`MAX_LINE`; Windows line ends are read as plain ``\\n`` (a
    capture copied through a Windows machine holds the same data), and a
    carriage return that does not end a line is an error.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        with self._open() as handle:
            self.head_bytes = handle.read(HEAD_SIZE + 1)

    def _open(self) -> IO[bytes]:
        with reading(self.path):
            return open(self.path, "rb")

    def error(self, message: str, line: int | None = None) -> InputError:
        return InputError(self.path, message, line)

    def _raw_blocks(self) -> Iterator[tuple[int, bytes]]:
        """Blocks of whole lines (the last may lack its newline), each with its first line's number."""
        line = 1
        pending: list[bytes] = []
        pending_size = 0
        with self._open() as handle:
            while chunk := handle.read(BLOCK):
                cut = chunk.rfind(b"\n") + 1
                if not cut:  # no line ends in this chunk: part of one long line
                    pending.append(chunk)
                    pending_size += len(chunk)
                    if pending_size > MAX_LINE:
                        raise self.error(f"has a line longer than {MAX_LINE >> 20} MB: not a text capture", line)
                    continue
                block = b"".join([*pending, chunk[:cut]])
                pending, pending_size = [chunk[cut:]], len(chunk) - cut
                yield line, block
                line += block.count(b"\n")
        if pending_size:
            yield line, b"".join(pending)

    def _refuse_nul(self, data: bytes, line: int) -> None:
        nul = data.find(b"\0")
        if nul >= 0:
            raise self.error("contains a NUL byte: binary data, not a text capture", line + data.count(b"\n", 0, nul))

    def _decode(self, data: bytes, line: int) -> str:
        self._refuse_nul(data, line)
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
            stray = data.find(b"\r")
            if stray >= 0:
                raise self.error("contains a carriage return inside a line (corrupt or not a text capture)",
                                 line + data.count(b"\n", 0, stray))
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.error(f"is not UTF-8 text (byte {data[exc.start]:#04x})",
                             line + data.count(b"\n", 0, exc.start)) from None

    def blocks(self) -> Iterator[tuple[int, str]]:
        """The checked text in blocks of whole lines (about :data:`BLOCK` bytes), with their first line numbers."""
        for line, data in self._raw_blocks():
            yield line, self._decode(data, line)

    def lines(self) -> Iterator[tuple[int, str]]:
        """``(number, line)`` for every line of the checked text, without its newline."""
        for first, block in self.blocks():
            lines = block.split("\n")
            if lines[-1] == "":
                lines.pop()
            yield from enumerate(lines, first)

    @property
    def data(self) -> bytes:
        """Every byte of the file, for readers that need it all at once."""
        with self._open() as handle:
            return handle.read()

    def lenient_text(self) -> str:
        """All of the text, bytes that are not UTF-8 replaced, line ends as they are; NUL bytes still refused.

        For captures of tools that print names as raw bytes (``top``).
        """
        data = self.data
        self._refuse_nul(data, 1)
        return data.decode("utf-8", errors="replace")

    def check_text(self) -> None:
        """Raise the error that says why this is not text, if it is not (streaming through it)."""
        for _ in self.blocks():
            pass

    @property
    def blank(self) -> bool:
        """Nothing but white space (or nothing) in the file."""
        if self.head_bytes.strip():
            return False
        with self._open() as handle:
            return not any(chunk.strip() for chunk in iter(lambda: handle.read(BLOCK), b""))

    @cached_property
    def head(self) -> str:
        """The first lines (up to :data:`HEAD_SIZE` bytes), leniently decoded, for sniffing only."""
        head = self.head_bytes[:HEAD_SIZE]
        if len(self.head_bytes) > HEAD_SIZE:
            head = head[:head.rfind(b"\n") + 1] or head
        return head.replace(b"\r\n", b"\n").decode("utf-8", errors="replace")

    @property
    def first_line(self) -> str:
        for line in self.head.split("\n"):
            if line.strip():
                return line.strip()
        return ""


@dataclass
class Loaded:
    """What the inputs held: the stacks, and DTrace aggregations kept as tables (histograms)."""

    profile: Profile
    aggregations: list[Aggregation] = field(default_factory=list)


@dataclass
class LoadOptions:
    """How to turn what an input prints into frames; shared by all readers."""

    #: Forced input format name, or None to auto-detect each file.
    format: str | None = None
    #: Kernel modules (``.ko``) whose addresses frames may fall into.
    modules: tuple[str, ...] = ()
    #: Load address for each of :attr:`modules`, in order (or taken from :attr:`kldstat`).
    bases: tuple[int, ...] = ()
    #: Saved ``kldstat -v`` output giving the load addresses.
    kldstat: str | None = None
    #: Probe map JSON written by ``tracebridge gen-probes``.
    probe_map: str | None = None
    #: Lay out modules as kernels before 2024 did (no INIT/FINI_ARRAY sections).
    old_kernel_linker: bool = False
    #: Keep each frame's ``+0xOFF`` (frames at different offsets stay apart); off, inputs read faster.
    offsets: bool = False
    #: What the values of scalar DTrace aggregations are, in print order (the last repeats):
    #: ``count``, ``sum``, ``avg``, ``min``, ``max``.
    value_kinds: tuple[str, ...] = ("count",)
    #: Which printed DTrace aggregation (1-based) makes the profile; None: the first that adds up.
    aggregation: int | None = None

    @cached_property
    def images(self) -> list[ModuleImage]:
        if self.bases and not self.modules:
            raise UsageError("--base needs --module (which module is loaded there?)")
        if len(self.bases) > len(self.modules):
            raise UsageError(f"{len(self.bases)} --base addresses for {len(self.modules)} --module files")
        if not self.modules:
            return []
        from tracebridge.image.elf import open_module

        return [open_module(m, init_fini_arrays=not self.old_kernel_linker) for m in self.modules]

    @cached_property
    def address_space(self) -> AddressSpace | None:
        """The modules whose load address is known, at that address (None: no such module).

        A module given without an address still names frames whose text
        DTrace cut short (see :mod:`tracebridge.readers.dtrace_frames`).
        """
        images = self.images
        if not images:
            return None
        from tracebridge.profile.resolve import AddressSpace

        bases: list[int | None] = list(self.bases)
        if self.kldstat is not None:
            bases += _kldstat_bases(self.kldstat, images[len(bases):])
        placed = [(image, base) for image, base in zip(images, bases + [None] * len(images))
                  if base is not None or image.fixed_base is not None]
        if not placed:
            return None
        space = AddressSpace()
        for image, base in placed:
            space.add(image, base)
        return space

    @cached_property
    def namer(self) -> FrameNamer:
        from tracebridge.readers.dtrace_frames import FrameNamer
        from tracebridge.probes.probemap import ProbeMap

        probe_map = ProbeMap.load(self.probe_map) if self.probe_map is not None else None
        owners: dict[str, str | None] = {}
        for image in self.images:
            module = image.frame_module
            for function in image.functions:
                owners[function.name] = module if owners.get(function.name, module) == module else None
        return FrameNamer(self.address_space, probe_map, owners)


def _kldstat_bases(path: str, images: list) -> list[int | None]:
    """Load addresses from saved ``kldstat -v`` output, matched by file name."""
    from tracebridge.readers.kldstat import read_kldstat

    kldstat = read_kldstat(path)
    bases: list[int | None] = []
    for image in images:
        loaded = kldstat.find(image.filename)
        if loaded is None and image.fixed_base is None:
            names = ", ".join(f.name for f in kldstat.files)
            raise InputError(path, f"does not list {image.filename} (loaded: {names})")
        bases.append(loaded.address if loaded is not None and image.fixed_base is None else None)
    return bases


def detect(source: Source) -> InputFormat | None:
    for fmt in FORMATS:
        if fmt.matches(source):
            return fmt
    return None


#: Files given where a profile is expected by mistake, by their first bytes: what they are, what to do.
_MAGICS = (
    (b"\x7fELF", "an ELF file (a kernel module or kernel?): give modules with --module"),
    (b"\x1f\x8b", "gzip-compressed data: decompress it first"),
    (b"\xfd7zXZ\x00", "xz-compressed data: decompress it first"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data: decompress it first"),
    (b"PAR1", "a Parquet file (a report or a CPU series), not a profile"),
    (b"\x89PNG", "a PNG image (a chart), not a profile"),
)


def other_kind(source: Source) -> str | None:
    """What a file that no reader takes looks like (for "this looks like ..."), if tracebridge knows it."""
    from tracebridge.cputime.top import _DISPLAY_START
    from tracebridge.readers.kldstat import sniff as sniff_kldstat
    from tracebridge.readers.pmclog import is_binary_log

    head = source.head_bytes  # known binary magics were refused before (load_one, binary_kind)
    if is_binary_log(head):
        return "a raw hwpmc log (pmcstat -O): read it with `tracebridge pmc resolve`"
    first = source.first_line
    if first.startswith("{"):
        return "a JSON document (a probe map? give it with --probe-map)"
    if first.startswith(("<?xml", "<svg")):
        return "an SVG or XML file (a flame graph?), not a capture"
    if sniff_kldstat([first]):
        return "saved kldstat output: give it with --kldstat"
    if _DISPLAY_START.match(first):
        return "a top capture: read it with `tracebridge cpu import` or `tracebridge cpu compare`"
    if first.startswith("time,pid,process,tid,thread,"):
        return "a CPU series: read it with `tracebridge cpu compare`"
    return None


def binary_kind(head: bytes) -> str | None:
    """What a file is when its first bytes are a known binary format's magic (compressed, ELF, ...)."""
    return next((what for magic, what in _MAGICS if head.startswith(magic)), None)


def load_one(path: str | os.PathLike[str], options: LoadOptions) -> Loaded:
    if os.path.isdir(path):  # a `tracebridge record` bundle
        from tracebridge.readers.bundle import read_bundle

        return read_bundle(os.fspath(path), options)
    source = Source(path)
    if source.blank:
        raise EmptyInput(source.path, "is empty: no samples to read")
    binary = binary_kind(source.head_bytes)
    if binary is not None:  # before any reader trips over its bytes
        raise source.error(f"this looks like {binary}")
    if options.format is None:
        fmt = detect(source)
        if fmt is None:
            other = other_kind(source)
            if other is not None:
                raise source.error(f"this looks like {other}")
            source.check_text()  # binary or undecodable data is reported as such, with its line
            first = source.first_line
            raise source.error(
                "does not look like any input tracebridge reads ("
                + "; ".join(f.description for f in FORMATS)
                + f"); it starts with {first[:60]!r}", 1)
        return fmt.load(source, options)
    fmt = find_format(options.format)
    try:
        return fmt.load(source, options)
    except InputError as exc:
        guess = detect(source)
        if guess is not None and guess.name != fmt.name:
            hint = f"this looks like {guess.description}: try --input-format {guess.name}"
        else:
            hint = other_kind(source) if guess is None else None
            if hint is None:
                raise
            hint = f"this looks like {hint}"
        raise InputError(exc.path, f"{exc.message} ({hint})", exc.position) from None


def load_inputs(paths: Sequence[str | os.PathLike[str]], options: LoadOptions | None = None) -> Loaded:
    """Read and merge every input; each file's format is detected on its own."""
    options = options or LoadOptions()
    if not paths:
        raise UsageError("no input files")
    loaded: list[Loaded] = []
    empty: list[EmptyInput] = []
    for path in paths:
        try:
            loaded.append(load_one(path, options))
        except EmptyInput as exc:
            empty.append(exc)
    if not loaded:
        raise empty[0]
    for exc in empty:  # a run where one probe never fired: the others still make a profile
        warn(f"{exc}; skipped")
    if len(loaded) == 1:
        return loaded[0]
    metadata = Metadata(source=", ".join(item.profile.metadata.source for item in loaded),
                        event=loaded[0].profile.metadata.event, unit=loaded[0].profile.metadata.unit)
    profile = Profile(metadata)
    for item in loaded:
        profile.merge(item.profile)
    return Loaded(profile, [agg for item in loaded for agg in item.aggregations])


def load_profile(paths: Sequence[str | os.PathLike[str]], options: LoadOptions | None = None) -> Profile:
    """The merged stacks of every input (for outputs that draw stacks only)."""
    return load_inputs(paths, options).profile


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """The inputs and the options that say how to read them, for every reading command."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT", type=spool.readable,
                        help="profile files: folded stacks, DTrace output, pmcstat output (auto-detected), "
                             "or a bundle directory written by `tracebridge record`; - for standard input")
    group = parser.add_argument_group("reading inputs")
    group.add_argument("--input-format", choices=format_names(), dest="input_format",
                       help="read every input as this format instead of detecting it")
    group.add_argument("--module", action="append", default=[], metavar="MODULE.ko", dest="modules",
                       help="kernel module whose hex frames should be named (repeatable)")
    group.add_argument("--base", action="append", default=[], type=_parse_base, metavar="ADDR", dest="bases",
                       help="load address of each --module, in order, as kldstat prints it (hex)")
    group.add_argument("--kldstat", metavar="FILE", help="saved `kldstat -v` output giving the load addresses")
    group.add_argument("--probe-map", metavar="FILE",
                       help="probe map from `tracebridge gen-probes` to name probes written with `?` for `$`")
    group.add_argument("--old-kernel-linker", action="store_true",
                       help="lay out modules as kernels before 2024 did (no INIT/FINI_ARRAY sections)")
    group.add_argument("--value-kind", type=_value_kinds, default=("count",), metavar="KIND[,KIND...]",
                       help="what the values of DTrace scalar aggregations are, in the order printed: count "
                            "(default), sum, avg, min or max; the last one given repeats.  avg/min/max values "
                            "are not samples; all decide how equal keys combine")
    group.add_argument("--aggregation", type=int, metavar="N",
                       help="make the profile of the Nth aggregation printed (default: the first whose values "
                            "add up: count, sum or a histogram)")


def _value_kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(","))
    unknown = [k for k in kinds if k not in ("count", "sum", "avg", "min", "max")]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown value kind {unknown[0]!r} (count, sum, avg, min, max)")
    return kinds


def _parse_base(text: str) -> int:
    from tracebridge.cli.common import parse_address

    return parse_address(text)


def options_from_args(args: argparse.Namespace) -> LoadOptions:
    """Reading options from :func:`add_input_arguments`'s; offsets are kept if ``--include-offset`` asks."""
    return LoadOptions(format=args.input_format, modules=tuple(args.modules), bases=tuple(args.bases),
                       kldstat=args.kldstat, probe_map=args.probe_map,
                       old_kernel_linker=args.old_kernel_linker, offsets=getattr(args, "include_offset", False),
                       value_kinds=args.value_kind, aggregation=args.aggregation)


def input_paths(args: argparse.Namespace) -> list[str]:
    """Every file the command reads (outputs must not overwrite any of them)."""
    from tracebridge.readers.bundle import bundle_paths

    extra = [p for p in (args.kldstat, args.probe_map) if p]
    return [f for p in args.inputs for f in bundle_paths(p)] + list(args.modules) + extra

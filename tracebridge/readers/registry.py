"""Reading profile inputs of any supported kind into one :class:`~tracebridge.profile.model.Profile`.

Every command that reads samples (``fold``, ``report``, flame graphs) goes
through :func:`load_inputs`, so each input format is written once and
auto-detected the same way everywhere.  Formats are rows of :data:`FORMATS`:
a name for ``--format``, a phrase for "this looks like ..." messages, and
two functions named as ``"module:function"`` strings.  The strings keep this
module free of imports of the readers (which take :class:`Source` from
:mod:`.source` and :class:`LoadOptions` and :class:`Loaded` from
:mod:`.options`), and a command pays only for the readers its inputs need.

To add a format, write in its module::

    def sniff(source: Source) -> bool        # cheap: look at source.head only
    def read(source: Source, options: LoadOptions) -> Loaded

and add an :class:`InputFormat` row; rows are tried in order, the first
whose ``sniff`` says yes reads the file.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from tracebridge.profile.consistency import report_fit
from tracebridge.profile.model import Metadata, Profile
from tracebridge.readers.kinds import binary_kind, other_kind
from tracebridge.readers.options import Loaded, LoadOptions
from tracebridge.readers.source import Source
from tracebridge.support.errors import EmptyInput, InputError, UsageError, excerpt, warn


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
                "tracebridge.readers.pmcgraph:sniff_callgraph_source", "tracebridge.readers.pmcgraph:read_callgraph_source"),
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


def detect(source: Source) -> InputFormat | None:
    for fmt in FORMATS:
        if fmt.matches(source):
            return fmt
    return None


def load_one(path: str | os.PathLike[str], options: LoadOptions) -> Loaded:
    if os.path.isdir(path):  # a `tracebridge record` bundle
        from tracebridge.readers.bundle import read_bundle

        return read_bundle(os.fspath(path), options, _load_with_modules)  # it sets the module's SHA-256
    loaded = _load_with_modules(path, options)
    metadata = loaded.profile.metadata
    if len(metadata.modules) == 1:
        metadata.module_sha256 = metadata.modules[0].sha256
    return loaded


def _load_with_modules(path: str | os.PathLike[str], options: LoadOptions) -> Loaded:
    loaded = _load_file(path, options)
    loaded.profile.metadata.modules = list(options.images)
    return loaded


def _load_file(path: str | os.PathLike[str], options: LoadOptions) -> Loaded:
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
                + f"); it starts with {excerpt(source.path, first)}", 1)
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
    """Read and merge every input; each file's format is detected on its own.

    With ``options.inline`` every module frame then becomes its inline chain
    (:mod:`tracebridge.profile.inline`).
    """
    options = options or LoadOptions()
    loaded = _load_all(paths, options)
    if options.inline:
        from tracebridge.profile.inline import InlineExpander

        metadata = loaded.profile.metadata
        if len(options.debug) > len(options.modules):
            raise UsageError(f"{len(options.debug)} --debug files for {len(options.modules)} --module files")
        images = metadata.modules
        if not images:
            raise UsageError("--inline needs the module: give --module MODULE.ko (or a bundle)")
        debug = {**metadata.debug_files, **dict(zip(options.modules, options.debug))}
        expander = InlineExpander(images, debug, lines=options.inline_lines)
        loaded.profile = expander.expand(loaded.profile)
        if not options.offsets:
            loaded.profile = loaded.profile.without_offsets()
        loaded.profile.metadata.debug_sha256 = expander.debug_sha256
    return loaded


def _load_all(paths: Sequence[str | os.PathLike[str]], options: LoadOptions) -> Loaded:
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
    report_fit(options.evidence, strict=options.strict, verbose=options.verbose)
    if len(loaded) == 1:
        return loaded[0]
    each = [item.profile.metadata for item in loaded]
    metadata = Metadata(source=", ".join(m.source for m in each), event=each[0].event, unit=each[0].unit,
                        host=_common(m.host for m in each), kernel_version=_common(m.kernel_version for m in each),
                        module_sha256=_common(m.module_sha256 for m in each),
                        modules=list({image.path: image for m in each for image in m.modules}.values()),
                        debug_files={path: debug for m in each for path, debug in m.debug_files.items()})
    profile = Profile(metadata)
    for item in loaded:
        profile.merge(item.profile)
    return Loaded(profile, [agg for item in loaded for agg in item.aggregations])


def _common(values: Iterable[str | None]) -> str | None:
    """The value every input agrees on (the runs' host, say), else None."""
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def lone_callgraph(paths: Sequence[str | os.PathLike[str]], options: LoadOptions) -> Source | None:
    """The one input when it is a file detected as a ``pmcstat -G`` callgraph that folds with nothing else (no
    module, listing, probe map or inline expansion), for a writer that folds it its own way; else None.

    Reading it the usual way (:func:`load_inputs`) would give the same
    stacks and say the same things on standard error.
    """
    if len(paths) != 1 or options.format is not None or options.modules or options.kldstat or options.probe_map \
            or options.inline or os.path.isdir(paths[0]):
        return None
    source = Source(paths[0])
    if source.blank or binary_kind(source.head_bytes) is not None:
        return None
    found = detect(source)
    return source if found is not None and found.name == "pmcstat-callgraph" else None


def load_profile(paths: Sequence[str | os.PathLike[str]], options: LoadOptions | None = None) -> Profile:
    """The merged stacks of every input (for outputs that draw stacks only)."""
    return load_inputs(paths, options).profile



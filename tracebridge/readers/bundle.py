"""A ``tracebridge record`` bundle: one directory holding a capture and all it takes to read it.

The kernel developer records on the target machine and reads the result
anywhere, with no flags: ``tracebridge report run/``.  So the bundle keeps,
next to what the tracer wrote, a copy of the module (its layout names the
hex frames), the ``kldstat -v`` listing (the load address), the probe map of
the generated script, the CPU series, and ``manifest.json``, which says what
each file is and how it was made (tool versions, ``uname -a``, exact command
lines, times, why recording stopped).

Readers reach a bundle through :func:`tracebridge.readers.registry.load_one`, which
hands any directory to :func:`read_bundle`; the bundle turns itself into the
same :class:`~tracebridge.readers.options.LoadOptions` a user would have typed
(``--module``, ``--kldstat``, ``--probe-map``) and reads its profile file the
usual way, so a bundle reads exactly like its parts.  Options the user does
give still apply: another ``--module``, or a ``--kldstat`` that overrides the
bundled one.

The kernel is not copied (it is tens of megabytes); the manifest keeps its
path and SHA-256, and readers use it only where the file at that path is still
the one that ran, so a bundle read on another machine never names frames
from the wrong kernel.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from collections.abc import Callable
from typing import TYPE_CHECKING

from tracebridge import __version__
from tracebridge.support.errors import InputError, warn
from tracebridge.support.jsondoc import load_document
from tracebridge.support.outputs import write_output

if TYPE_CHECKING:
    from tracebridge.profile.model import Metadata
    from tracebridge.readers.options import Loaded, LoadOptions

FORMAT = "tracebridge-bundle"
VERSION = 1
MANIFEST = "manifest.json"

#: What each bundled file is (``BundleFile.role``).
ROLE_PROFILE = "profile"          # what the readers read: dtrace -o output, or pmcstat -R -o text
ROLE_MODULE = "module"            # copy of the traced .ko
ROLE_KLDSTAT = "kldstat"          # kldstat -v output taken before tracing
ROLE_PROBE_MAP = "probe-map"      # gen-probes --map
ROLE_SCRIPT = "script"            # the D script (one file per part)
ROLE_PMC_LOG = "pmc-log"          # pmcstat -O binary log
ROLE_TOOL_OUTPUT = "tool-output"  # a tool's own stdout and stderr
ROLE_CPU = "cpu"                  # per-thread CPU series (tracebridge cpu format)


@dataclass(frozen=True)
class ModuleRecord:
    """The traced module: where it came from, which build it was, where it ran."""

    #: The path given to ``record`` (absolute), and the name of its copy in the bundle.
    path: str
    file: str
    sha256: str
    #: ``kldstat -v``'s name for it (its pathname when listed), its ``lf->address`` and ``lf->size``.
    loaded_as: str
    base: int
    size: int | None
    #: The module's debug file found beside it when it was recorded (absolute path) and its SHA-256,
    #: so a later ``--inline`` uses that very DWARF or says it changed; None when there was none.
    debug: str | None = None
    debug_sha256: str | None = None


@dataclass(frozen=True)
class KernelRecord:
    """The running kernel's file, as ``kldstat -v`` named it; ``sha256`` None when it could not be read."""

    path: str
    sha256: str | None


@dataclass(frozen=True)
class BundleFile:
    name: str
    role: str
    bytes: int


@dataclass(frozen=True)
class TracerRecord:
    """How one tracing tool ended: its exit status (negative: the signal that killed it), the signals sent."""

    exit_status: int | None
    signals: tuple[str, ...]
    #: True when it had exited on its own before the recording asked it to stop.
    exited_early: bool


@dataclass
class Manifest:
    #: ``dtrace`` (a generated D script) or ``pmc`` (pmcstat sampling).
    mode: str
    template: str | None
    pmc_event: str | None
    module: ModuleRecord
    kernel: KernelRecord | None
    old_kernel_linker: bool
    #: ``uname -a`` and ``freebsd-version -ku`` (None where unavailable).
    host: dict[str, str | None]
    #: Tool name -> {"path": ..., "version": ...}.
    tools: dict[str, dict[str, str | None]]
    #: What ran, as argv lists: the tracer, kldstat, the conversion, the workload, gen-probes.
    commands: dict[str, list[str]]
    #: ISO 8601 UTC times: tracer started, workload (or waiting) started, everything stopped.
    times: dict[str, str | None]
    stopped_by: str
    workload_status: int | None
    tracers: dict[str, TracerRecord]
    files: list[BundleFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tracebridge: str = __version__

    def file_with_role(self, role: str) -> str | None:
        return next((f.name for f in self.files if f.role == role), None)

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["module"]["base"] = f"{self.module.base:#x}"
        return {"format": FORMAT, "version": VERSION, **data}

    def text(self) -> str:
        return json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n"

    def save(self, directory: str) -> None:
        write_output(os.path.join(directory, MANIFEST), self.text())

    @classmethod
    def load(cls, directory: str) -> Manifest:
        path = os.path.join(directory, MANIFEST)
        try:
            data = load_document(path, FORMAT, VERSION, "bundle manifest")
        except FileNotFoundError:
            raise InputError(directory, f"is a directory without {MANIFEST}: expected a profile file "
                                        "or a bundle written by `tracebridge record`") from None
        try:
            module = dict(data["module"])
            module["base"] = int(module["base"], 16)
            kernel = data["kernel"]
            manifest = cls(
                mode=data["mode"], template=data["template"], pmc_event=data["pmc_event"],
                module=ModuleRecord(**module), kernel=KernelRecord(**kernel) if kernel else None,
                old_kernel_linker=bool(data["old_kernel_linker"]), host=data["host"], tools=data["tools"],
                commands=data["commands"], times=data["times"], stopped_by=data["stopped_by"],
                workload_status=data["workload_status"],
                tracers={name: TracerRecord(t["exit_status"], tuple(t["signals"]), t["exited_early"])
                         for name, t in data["tracers"].items()},
                files=[BundleFile(**f) for f in data["files"]], notes=list(data["notes"]),
                tracebridge=data["tracebridge"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(path, f"malformed bundle manifest: {type(exc).__name__}: {exc}") from None
        # Bundled files are read from the bundle itself: a name may not lead out of it.
        for name in [manifest.module.file, *(f.name for f in manifest.files)]:
            if not isinstance(name, str) or os.path.basename(name) != name or name in ("", ".", ".."):
                raise InputError(path, f"malformed bundle manifest: {name!r} is not a file name inside the bundle")
        return manifest


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def describe_files(directory: str, roles: dict[str, str]) -> list[BundleFile]:
    """The files of ``roles`` (name -> role) that exist in ``directory``, in name order."""
    return [BundleFile(name, role, os.path.getsize(os.path.join(directory, name)))
            for name, role in sorted(roles.items()) if os.path.isfile(os.path.join(directory, name))]


def bundle_paths(path: str | os.PathLike[str]) -> list[str]:
    """The files a reader of ``path`` reads: the bundle's files for a bundle, else ``path`` itself."""
    path = os.fspath(path)
    if not os.path.isfile(os.path.join(path, MANIFEST)):
        return [path]
    manifest = Manifest.load(path)
    return [os.path.join(path, MANIFEST)] + [os.path.join(path, f.name) for f in manifest.files]


def read_bundle(path: str, options: LoadOptions, load_one: Callable[[str, LoadOptions], Loaded]) -> Loaded:
    """Read the bundle's profile with the bundle's module, load address and probe map.

    ``load_one`` reads the profile file (the registry's, passed in: the
    registry hands directories to this module, so this module cannot import it).
    """
    manifest = Manifest.load(path)
    profile = manifest.file_with_role(ROLE_PROFILE)
    if profile is None:
        raise InputError(path, f"the bundle holds no profile; the recording ended with: {manifest.stopped_by}")
    module = os.path.join(path, manifest.module.file)
    if _bundled_sha256(module) != manifest.module.sha256:
        raise InputError(module, "differs from the module that was recorded (its SHA-256 changed)")
    modules = [*options.modules, module]
    if manifest.kernel is not None and _same_kernel(manifest.kernel):
        modules.append(manifest.kernel.path)
    kldstat = manifest.file_with_role(ROLE_KLDSTAT)
    probe_map = manifest.file_with_role(ROLE_PROBE_MAP)
    bundled = dataclasses.replace(
        options, modules=tuple(modules),
        kldstat=options.kldstat or (os.path.join(path, kldstat) if kldstat else None),
        probe_map=options.probe_map or (os.path.join(path, probe_map) if probe_map else None),
        old_kernel_linker=options.old_kernel_linker or manifest.old_kernel_linker)
    loaded = load_one(os.path.join(path, profile), bundled)
    metadata = loaded.profile.metadata
    metadata.source = path
    if options.inline and manifest.module.debug:
        _recorded_debug(metadata, module, manifest.module)
    if manifest.pmc_event:
        metadata.event = manifest.pmc_event
    metadata.duration = _seconds_between(manifest.times.get("traced"), manifest.times.get("stopped"))
    _describe_run(metadata, manifest)
    return loaded


def _recorded_debug(metadata: Metadata, module: str, record: ModuleRecord) -> None:
    """Expand the bundled module with the debug file recorded beside it, if it is still that file."""
    try:
        same = record.debug_sha256 is not None and sha256_of(record.debug) == record.debug_sha256
    except OSError:
        warn(f"{record.debug}: the debug file recorded with the bundle cannot be read; "
             "--inline looks for the module's DWARF elsewhere")
        return
    if not same:
        warn(f"{record.debug}: differs from the debug file recorded with the bundle (its SHA-256 changed); "
             "--inline looks for the module's DWARF elsewhere")
        return
    metadata.debug_files[module] = record.debug


def _describe_run(metadata: Metadata, manifest: Manifest) -> None:
    """What the manifest says about the run that the capture alone does not: the machine, its
    kernel, the module's hash, and what the template's values count (its D script says)."""
    uname = (manifest.host.get("uname") or "").split()
    metadata.host = uname[1] if len(uname) > 1 else None  # `uname -a`: sysname, then the node name
    versions = (manifest.host.get("freebsd_version") or "").split()
    metadata.kernel_version = versions[0] if versions else None  # `freebsd-version -ku`: kernel first
    metadata.module_sha256 = manifest.module.sha256
    if manifest.template == "count":  # count() at each function's entry probe: calls, not samples
        metadata.event = metadata.unit = "calls"
    elif manifest.template == "latency" and metadata.event == "sum":  # @total_ns: sum(timestamp deltas)
        metadata.unit = "nanoseconds"


def _seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds from one manifest time to another; None when either is missing or unreadable."""
    if start is None or end is None:
        return None
    try:
        seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):  # unreadable, or one with a time zone and one without
        return None
    return seconds if seconds >= 0 else None


def _bundled_sha256(path: str) -> str:
    try:
        return sha256_of(path)
    except OSError as exc:
        raise InputError(path, f"cannot read the bundled module: {exc.strerror or exc}") from None


def _same_kernel(kernel: KernelRecord) -> bool:
    """True when the kernel file that ran is readable here, unchanged."""
    try:
        return kernel.sha256 is not None and sha256_of(kernel.path) == kernel.sha256
    except OSError:
        return False

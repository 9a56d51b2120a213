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
path and SHA-256, and readers use it only when asked (``--bundle-kernel``)
and where the file at that path is a regular file that is still the one that
ran, so a bundle read on another machine never names frames from the wrong
kernel.

A bundle is often copied off a test machine, so it is read as hostile
(issue 19): every file it names must be a regular file inside the bundle
once symlinks are resolved (:func:`bundled_file`: ``realpath`` prefixes,
opened non-blocking and checked with ``fstat`` before anything reads it),
and the JSON and text parts have size bounds.  A refusal is one line that
names the file and shows nothing of what it holds or points to.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime
from collections.abc import Callable
from typing import TYPE_CHECKING

from tracebridge import __version__
from tracebridge.support.errors import UNQUOTED, InputError, quotable, warn
from tracebridge.support.jsondoc import load_document
from tracebridge.support.outputs import write_output

if TYPE_CHECKING:
    from tracebridge.profile.model import Metadata
    from tracebridge.readers.options import Loaded, LoadOptions

FORMAT = "tracebridge-bundle"
VERSION = 1
MANIFEST = "manifest.json"
#: Size bounds of a bundle's parts that are read whole (far beyond what ``record`` writes).
MAX_MANIFEST = 16 << 20
MAX_KLDSTAT = 16 << 20
MAX_PROBE_MAP = 1 << 30
#: The largest kernel (or debug file) hashed to compare it with the one that ran (FreeBSD's are tens of MB).
MAX_KERNEL = 1 << 30

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
        try:
            path = bundled_file(directory, MANIFEST, "bundle manifest", MAX_MANIFEST)
            data = load_document(path, FORMAT, VERSION, "bundle manifest", MAX_MANIFEST)
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
            raise InputError(path, f"malformed bundle manifest: {type(exc).__name__}"
                             + (f": {exc}" if quotable(path) else "")) from None
        # Bundled files are read from the bundle itself: a name may not lead out of it.
        for name in [manifest.module.file, *(f.name for f in manifest.files)]:
            if not isinstance(name, str) or os.path.basename(name) != name or name in ("", ".", ".."):
                raise InputError(path, f"malformed bundle manifest: {name!r} is not a file name inside the bundle")
        return manifest


def sha256_of(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def bundled_file(directory: str, name: str, what: str, limit: int | None = None) -> str:
    """The path of bundle file ``name`` once it is known to be a regular file inside the bundle.

    A symlink may stay inside the bundle (a copy made with ``cp -R`` of a
    bundle with links), never lead out of it: ``dtrace.out ->
    /home/victim/capture.txt`` or ``-> /dev/zero``.  The file is opened with
    ``O_NONBLOCK`` (a FIFO does not wait for a writer) and ``fstat``-checked:
    a device, FIFO or socket is refused before anything reads it, as is a
    file over ``limit`` bytes.  A missing file raises FileNotFoundError.
    Messages about the file quote none of its text (:data:`UNQUOTED`).
    """
    path = os.path.join(directory, name)
    inside = os.path.realpath(directory)
    real = os.path.realpath(path)
    if not real.startswith(inside.rstrip(os.sep) + os.sep):
        raise InputError(path, f"the bundle's {what} is a link out of the bundle: refusing to read it")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise InputError(path, f"cannot read the bundle's {what}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(info.st_mode):
        raise InputError(path, f"the bundle's {what} is not a regular file (a device, FIFO or socket?): "
                               "refusing to read it")
    if limit is not None and info.st_size > limit:
        raise InputError(path, f"the bundle's {what} is {info.st_size:,} bytes, more than the "
                               f"{limit >> 20} MB any {what} takes: refusing to read it")
    UNQUOTED.add(path)  # the user named the bundle, not this file: messages about it quote none of it
    return path


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
    module = _bundled(path, manifest.module.file, "module")
    if _bundled_sha256(module) != manifest.module.sha256:
        raise InputError(module, "differs from the module that was recorded (its SHA-256 changed)")
    # The bundle's module given again with --module (the same file, by its SHA-256) is one module, placed
    # as the user says, not a second copy overlapping the first.
    given = [m for m in options.modules if _unchanged(os.fspath(m), manifest.module.sha256)]
    module = os.fspath(given[0]) if given else module
    modules = [*options.modules] if given else [*options.modules, module]
    if options.bundle_kernel and manifest.kernel is not None and _same_kernel(manifest.kernel):
        modules.append(manifest.kernel.path)
    kldstat = manifest.file_with_role(ROLE_KLDSTAT)
    probe_map = manifest.file_with_role(ROLE_PROBE_MAP)
    bundled = dataclasses.replace(
        options, modules=tuple(modules),
        kldstat=options.kldstat or (_bundled(path, kldstat, "kldstat listing", MAX_KLDSTAT) if kldstat else None),
        probe_map=options.probe_map or (_bundled(path, probe_map, "probe map", MAX_PROBE_MAP) if probe_map
                                        else None),
        old_kernel_linker=options.old_kernel_linker or manifest.old_kernel_linker)
    loaded = load_one(_bundled(path, profile, "profile"), bundled)
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
    """Expand the bundled module with the debug file recorded beside it, if it is still that file.

    Its path is a string in the manifest, as the kernel's is: hashed only as
    a regular file of bounded size (:func:`_unchanged`).
    """
    same = _unchanged(record.debug, record.debug_sha256)
    if same is None:
        warn(f"{record.debug}: the debug file recorded with the bundle cannot be read (or is not a regular "
             "file); --inline looks for the module's DWARF elsewhere")
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


def _bundled(directory: str, name: str, what: str, limit: int | None = None) -> str:
    """:func:`bundled_file`, a missing file reported as one line."""
    try:
        return bundled_file(directory, name, what, limit)
    except FileNotFoundError:
        raise InputError(os.path.join(directory, name), f"the bundle's {what} is missing") from None


def _bundled_sha256(path: str) -> str:
    try:
        return sha256_of(path)
    except OSError as exc:
        raise InputError(path, f"cannot read the bundled module: {exc.strerror or exc}") from None


def _same_kernel(kernel: KernelRecord) -> bool:
    """True when the kernel file that ran is here, a regular file of a kernel's size, unchanged."""
    return bool(_unchanged(kernel.path, kernel.sha256))


def _unchanged(path: object, sha256: str | None) -> bool | None:
    """Whether the file a manifest names outside the bundle still has ``sha256``; None when unreadable.

    The path is a string in the manifest (``/dev/zero`` survives any copy):
    it is opened non-blocking and hashed only when ``fstat`` says it is a
    regular file of at most :data:`MAX_KERNEL` bytes; anything else is
    unreadable.
    """
    if sha256 is None or not isinstance(path, str):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except (OSError, ValueError):
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_KERNEL:
            return None
        try:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError:
            return None
    return digest == sha256

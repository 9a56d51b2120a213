"""One recording, start to finish: check, start the tracer, run the workload, stop, write the bundle.

The order matters on a live kernel:

1. everything that can fail is checked before anything starts
   (:mod:`.preflight`), and ``kldstat -v`` is read first, because the D script
   needs the module's load address (the ``stack`` template keeps only samples
   whose PC lies in the module);
2. the script and probe map are written by ``gen-probes`` itself, so a
   recorded script is exactly what ``tracebridge gen-probes`` would write;
3. the tracer starts and is given ``settle`` seconds (a script that does not
   compile, or an unknown PMC event, ends it within them); only then do the
   CPU sampler and the workload start (:func:`tracebridge.cputime.record.record`,
   the same loop as ``tracebridge cpu``), so the workload runs traced;
4. when the workload exits, ``--duration`` ends, or Ctrl-C / SIGTERM / SIGHUP
   arrives, the workload is stopped first and the tracer second, with one
   SIGINT (:mod:`.tracer`); pmcstat's binary log is then printed as text with
   ``pmcstat -R pmc.log -o pmc.txt``, and ``pmcroot/`` is made for
   ``pmcstat -R pmc.log -r pmcroot`` (:mod:`tracebridge.probes.pmcroot`);
5. the manifest is written whatever happened, listing the files that exist.

Nothing started here outlives the recording: the tracer is killed if it was
not stopped, and any process started during the recording that is still
running at the end is terminated, then killed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING

from tracebridge.image.debuginfo import debug_candidates
from tracebridge.readers import bundle
from tracebridge.capture.preflight import (
    KLDSTAT, Loaded, find_loaded, find_tools, query, require_command, require_root,
)
from tracebridge.capture.outdir import OutputDirectory, check_output_directory
from tracebridge.capture.tracer import ToolFailed, Tracer, last_line
from tracebridge.support import blas
from tracebridge.support.errors import UsageError

if TYPE_CHECKING:
    from tracebridge.cputime.live import LiveView, QuietView
    from tracebridge.cputime.record import Recording
    from tracebridge.image.elf import ModuleImage

DTRACE = "dtrace"
PMCSTAT = "pmcstat"
#: The gen-probes template when none is given: where the CPUs are while they run the module.
DEFAULT_TEMPLATE = "stack"

SCRIPT = "script.d"
PROBE_MAP = "probes.json"
DTRACE_OUT = "dtrace.out"
PMC_LOG = "pmc.log"
PMC_TEXT = "pmc.txt"
#: The root for ``pmcstat -r`` in a pmc bundle.
PMC_ROOT = "pmcroot"
KLDSTAT_FILE = "kldstat.txt"
CPU_SERIES = "cpu.csv"
#: Bytes of a script read back to check it: far beyond any generated part (DOF is capped at 8 MiB).
MAX_SCRIPT = 64 << 20

#: Signals that end a recording the way Ctrl-C does (a closed ssh session sends SIGHUP).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
#: Seconds a leftover process gets between SIGTERM and SIGKILL.
LEFTOVER_GRACE = 3.0


@dataclass(frozen=True)
class Request:
    """What the user asked for (``tracebridge record`` options)."""

    module: str
    output: str
    template: str | None
    pmc_event: str | None
    pmc_rate: int | None
    duration: float | None
    interval: float
    settle: float
    workload: tuple[str, ...]
    force: bool = False
    old_kernel_linker: bool = False

    @property
    def tool(self) -> str:
        return PMCSTAT if self.pmc_event else DTRACE

    @property
    def script_template(self) -> str | None:
        """The gen-probes template of the D script (None with a PMC event: no script)."""
        return None if self.pmc_event else (self.template or DEFAULT_TEMPLATE)


@dataclass
class Result:
    """The written manifest, and the signal (SIGTERM, SIGHUP) that ended the recording, if one did."""

    manifest: bundle.Manifest
    stop_signal: int | None = None


@dataclass
class _Run:
    """What is known so far; the manifest is written from it however the run ends."""

    request: Request
    out: OutputDirectory
    roles: dict[str, str] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    times: dict[str, str | None] = field(default_factory=lambda: {"started": None, "traced": None, "stopped": None})
    stopped_by: str = "the recording did not start"
    recording: Recording | None = None
    tracer: Tracer | None = None
    notes: list[str] = field(default_factory=list)
    #: Each script written, by name, and its SHA-256.
    scripts: dict[str, str] = field(default_factory=dict)
    #: The SHA-256 of the module as copied into the bundle.
    module_sha256: str = ""

    def create(self, name: str, role: str, mode: str = "wb") -> IO:
        """A new file of the bundle (:meth:`OutputDirectory.create`), listed in the manifest with ``role``."""
        handle = self.out.create(name, mode)
        self.roles[name] = role
        return handle


def record(request: Request, view: LiveView | QuietView) -> Result:
    """Check, capture and write the bundle; tool failures raise :class:`ToolFailed` after the manifest is out."""
    from tracebridge.image.elf import open_module

    image = open_module(request.module, init_fini_arrays=not request.old_kernel_linker)
    check_output_directory(request.output, request.force)
    tools = find_tools([request.tool, KLDSTAT])
    require_root(request.tool)
    if request.workload:
        require_command(request.workload)
    loaded = find_loaded(tools[KLDSTAT], image.filename)
    notes: list[str] = []
    if loaded.module.size is not None and loaded.module.size != image.size:
        notes.append(f"kldstat gives {image.filename} {loaded.module.size:#x} bytes, its layout "
                         f"{image.size:#x}: is {request.module} the build that is loaded"
                         + ("?" if request.old_kernel_linker else ", or is the kernel older than 2024 "
                                                                   "(--old-kernel-linker)?"))
    host = {"uname": query(["uname", "-a"]), "freebsd_version": query(["freebsd-version", "-ku"])}
    versions = {name: {"path": path, "version": query([path, "-V"]) if name == DTRACE else None}
                for name, path in tools.items()}

    run = _Run(request, OutputDirectory(request.output, request.force), notes=notes)
    signal_number: int | None = None
    try:
        run.module_sha256 = _copy_module(request.module, run.create(image.filename, bundle.ROLE_MODULE))
        with run.create(KLDSTAT_FILE, bundle.ROLE_KLDSTAT, "w") as out:
            out.write(loaded.text)
        run.commands[KLDSTAT] = list(loaded.argv)
        argv = (_dtrace_argv(run, image, tools[DTRACE], loaded.module.address) if request.pmc_event is None
                else _pmcstat_argv(run, tools[PMCSTAT], request.pmc_event))
        run.commands[request.tool] = argv
        with _stop_signals() as received, _no_process_left():
            try:
                _capture(run, argv, view)
            finally:
                signal_number = received[0] if received else None
                if signal_number is not None:
                    run.stopped_by = f"{signal.Signals(signal_number).name} was received"
            if request.pmc_event is not None and run.times["traced"] is not None:
                _print_pmc_log(run, tools[PMCSTAT])
                _pmcstat_root(run, image, loaded)
    finally:
        try:
            manifest = _manifest(run, image, loaded, versions, host)
            with run.out.create(bundle.MANIFEST, "w") as out:
                out.write(manifest.text())
        finally:
            run.out.close()
    return Result(manifest, signal_number)


def _capture(run: _Run, argv: list[str], view: LiveView | QuietView) -> None:
    from tracebridge.cputime.record import record as record_cpu
    from tracebridge.cputime.sampler import Selection
    from tracebridge.cputime.series import write_series_csv

    request = run.request
    try:
        run.times["started"] = _now()
        messages = f"{request.tool}.stderr"
        run.roles[messages] = bundle.ROLE_TOOL_OUTPUT
        run.tracer = Tracer(request.tool, argv, run.out, messages)
        run.tracer.wait_started(request.settle)
        _check_scripts(run)
        run.times["traced"] = _now()
        print(f"tracebridge: {request.tool} is running (pid {run.tracer.pid}), writing to {request.output}; "
              f"{_until(request)}", file=sys.stderr)
        with view:
            # Every process: a driver's work shows in kernel threads (interrupts, taskqueues), not the workload.
            run.recording = record_cpu(Selection(everything=True), request.workload, request.interval,
                                       request.duration, view)
        run.stopped_by = run.recording.stopped_by
    except ToolFailed as exc:
        run.stopped_by = str(exc)
        raise
    except KeyboardInterrupt:
        run.stopped_by = "Ctrl-C was pressed" + (" before tracing began" if run.times["traced"] is None else "")
    finally:
        if run.tracer is not None:
            try:
                run.tracer.stop()
            finally:
                run.tracer.kill()
                run.times["stopped"] = _now()
    if run.recording is not None:
        with run.create(CPU_SERIES, bundle.ROLE_CPU, "w") as out:
            write_series_csv(run.recording.frame, out)
    if run.tracer is not None and run.tracer.exited_early:
        run.notes.append(f"{request.tool} exited by itself (status {run.tracer.record().exit_status}) "
                         f"before the recording ended: {run.tracer.last_words()}")


def _dtrace_argv(run: _Run, image: ModuleImage, dtrace: str, base: int) -> list[str]:
    """Write the D script and probe map (what ``gen-probes`` writes); the dtrace command line that runs them.

    dtrace reads each ``-s`` script by name (``compile_file()``: ``fopen``,
    then ``dtrace_program_fcompile``) when it starts, relative to its working
    directory, which is the bundle directory (entered by descriptor); only
    the invoking user can write there, and :func:`_check_scripts` compares
    the scripts with what was written once dtrace has compiled them.
    """
    from tracebridge.probes.dscript import part_files
    from tracebridge.probes.generate import generate

    request = run.request
    generated = generate(image, str(request.script_template), base=base)
    files = part_files(SCRIPT, len(generated.script.parts))
    for index, name in enumerate(files):
        text = generated.script.text(index, files)
        with run.create(name, bundle.ROLE_SCRIPT, "w") as out:
            out.write(text)
        run.scripts[name] = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
    with run.create(PROBE_MAP, bundle.ROLE_PROBE_MAP, "w") as out:
        generated.probe_map(files).write(out)
    words = ["gen-probes", request.module, "--template", str(request.script_template), "--base", f"{base:#x}",
             "-o", run.out.join(SCRIPT), "--map", run.out.join(PROBE_MAP)]
    if request.old_kernel_linker:
        words.append("--old-kernel-linker")
    run.commands["gen-probes"] = ["tracebridge", *words]  # the same files, made by hand
    # dtrace -o appends (fopen "a"): it finds the empty file made here, in the directory only we can write.
    run.create(DTRACE_OUT, bundle.ROLE_PROFILE).close()
    return [dtrace, *(word for name in files for word in ("-s", name)), "-o", DTRACE_OUT]


def _check_scripts(run: _Run) -> None:
    """Stop when a script differs from what was written: someone else could write into the directory."""
    for name, digest in run.scripts.items():
        data = run.out.read(name, MAX_SCRIPT)
        if data is None or hashlib.sha256(data).hexdigest() != digest:
            if run.tracer is not None:
                run.tracer.kill()  # not stopped gently: it may be running someone else's script
            raise ToolFailed(f"{run.out.join(name)} changed after it was written (SHA-256 differs): "
                             "the recording was stopped; do not trust what dtrace ran")


def _pmcstat_argv(run: _Run, pmcstat: str, event: str) -> list[str]:
    """System-wide sampling with callchains (pmcstat's default; -N would turn them off) into a log."""
    run.create(PMC_LOG, bundle.ROLE_PMC_LOG).close()  # pmcstat -O truncates it (in the directory only we write)
    rate = ["-n", str(run.request.pmc_rate)] if run.request.pmc_rate else []
    return [pmcstat, *rate, "-S", event, "-O", PMC_LOG]


def _print_pmc_log(run: _Run, pmcstat: str) -> None:
    """``pmcstat -R pmc.log -o pmc.txt``: the raw records, which tracebridge resolves itself."""
    argv = [pmcstat, "-R", PMC_LOG, "-o", PMC_TEXT]
    run.commands["pmcstat-print"] = argv
    messages = "pmcstat-print.stderr"
    run.create(PMC_TEXT, bundle.ROLE_PROFILE).close()
    del run.roles[PMC_TEXT]  # listed only once pmcstat has written it
    with run.create(messages, bundle.ROLE_TOOL_OUTPUT) as sink:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                              preexec_fn=run.out.enter, check=False, env=blas.user_environment())
    if done.returncode != 0:
        raise ToolFailed(f"{' '.join(argv)} failed with status {done.returncode}: "
                         f"{last_line(run.out, messages)} (the log {run.out.join(PMC_LOG)} is kept)")
    run.roles[PMC_TEXT] = bundle.ROLE_PROFILE


def _pmcstat_root(run: _Run, image: ModuleImage, loaded: Loaded) -> None:
    """``pmcroot/``, for ``pmcstat -R pmc.log -r pmcroot``: pmcstat's own outputs then name the Rust functions.

    The kernel directory is the one the running kernel came from and the
    module's full path the one it was loaded from, both as ``kldstat -v``
    gave them (:mod:`tracebridge.probes.pmcroot`).  A root that cannot be
    made is a note, not a failed recording: the capture is already safe.
    """
    from tracebridge.probes.pmcroot import DEFAULT_KERNEL_DIR, plan_root, write_root

    kernel = loaded.kernel.pathname if loaded.kernel is not None else None
    kernel_dir = os.path.dirname(kernel) if kernel and os.path.isabs(kernel) else DEFAULT_KERNEL_DIR
    loaded_from = [p for p in (loaded.module.pathname,) if p and os.path.isabs(p)]
    try:
        plan = plan_root([(image, [os.path.abspath(run.request.module), *loaded_from])], kernel_dir=kernel_dir)
        write_root(plan, os.path.join(run.request.output, PMC_ROOT), force=True)
    except UsageError as exc:
        run.notes.append(f"no {PMC_ROOT}/ for pmcstat -r: {exc}")
        return
    run.commands["pmcstat-root"] = ["tracebridge", "pmcstat-root", os.path.abspath(run.request.module), "-o",
                                    PMC_ROOT, "--kernel-dir", kernel_dir,
                                    *(a for p in loaded_from for a in ("--loaded-from", p))]


def _manifest(run: _Run, image: ModuleImage, loaded: Loaded, versions: dict[str, dict[str, str | None]],
              host: dict[str, str | None]) -> bundle.Manifest:
    request = run.request
    kernel = None
    if loaded.kernel is not None and loaded.kernel.pathname:
        try:
            kernel = bundle.KernelRecord(loaded.kernel.pathname, bundle.sha256_of(loaded.kernel.pathname))
        except OSError:
            kernel = bundle.KernelRecord(loaded.kernel.pathname, None)
    debug = next((path for path in debug_candidates(request.module) if os.path.isfile(path)), None)
    module = bundle.ModuleRecord(
        path=os.path.abspath(request.module), file=image.filename, sha256=run.module_sha256,
        loaded_as=loaded.module.pathname or loaded.module.name, base=loaded.module.address,
        size=loaded.module.size, debug=debug, debug_sha256=bundle.sha256_of(debug) if debug else None)
    if request.workload:
        run.commands["workload"] = list(request.workload)
    recording = run.recording
    tracers = {run.tracer.name: run.tracer.record()} if run.tracer is not None else {}
    return bundle.Manifest(
        mode="pmc" if request.pmc_event else "dtrace", template=request.script_template,
        pmc_event=request.pmc_event, module=module, kernel=kernel,
        old_kernel_linker=request.old_kernel_linker, host=host, tools=versions, commands=run.commands,
        times=run.times, stopped_by=run.stopped_by,
        workload_status=recording.workload_status if recording is not None else None, tracers=tracers,
        files=_files(run), notes=run.notes)


def _until(request: Request) -> str:
    if request.workload:
        return "recording until the workload exits" + (f" or {request.duration:g} s have passed"
                                                        if request.duration else "")
    if request.duration:
        return f"recording for {request.duration:g} s"
    return "recording until Ctrl-C"


def _copy_module(source: str, target: IO[bytes]) -> str:
    """Copy the module into the bundle; its SHA-256 (of the bytes copied, so the manifest names the copy)."""
    digest = hashlib.sha256()
    with target, open(source, "rb") as module:
        while block := module.read(1 << 20):
            digest.update(block)
            target.write(block)
    return digest.hexdigest()


def _files(run: _Run) -> list[bundle.BundleFile]:
    """The bundle's files that exist, in name order."""
    sizes = {name: run.out.size(name) for name in run.roles}
    return [bundle.BundleFile(name, role, size) for name, role in sorted(run.roles.items())
            if (size := sizes[name]) is not None]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@contextlib.contextmanager
def _stop_signals() -> Iterator[list[int]]:
    """SIGTERM and SIGHUP stop the recording as Ctrl-C does; the signals received are listed."""
    received: list[int] = []

    def interrupt(number: int, frame: object) -> None:
        received.append(number)
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, interrupt) for number in STOP_SIGNALS}
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def _no_process_left() -> Iterator[None]:
    """Terminate (then kill) every process started inside the block that still runs when it ends."""
    import psutil

    me = psutil.Process()
    before = {child.pid for child in me.children(recursive=True)}
    try:
        yield
    finally:
        left = [child for child in me.children(recursive=True) if child.pid not in before]
        for child in left:
            with contextlib.suppress(psutil.Error):
                child.terminate()
        _, alive = psutil.wait_procs(left, timeout=LEFTOVER_GRACE)
        for child in alive:
            with contextlib.suppress(psutil.Error):
                child.kill()
        psutil.wait_procs(alive, timeout=LEFTOVER_GRACE)


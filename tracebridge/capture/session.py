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
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from tracebridge.image.debuginfo import debug_candidates
from tracebridge.readers import bundle
from tracebridge.capture.preflight import (
    KLDSTAT, Loaded, check_output_directory, find_loaded, find_tools, query, require_command, require_root,
)
from tracebridge.capture.tracer import ToolFailed, Tracer, last_line
from tracebridge.support.outputs import open_output
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
    roles: dict[str, str] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    times: dict[str, str | None] = field(default_factory=lambda: {"started": None, "traced": None, "stopped": None})
    stopped_by: str = "the recording did not start"
    recording: Recording | None = None
    tracer: Tracer | None = None
    notes: list[str] = field(default_factory=list)

    def path(self, name: str, role: str) -> str:
        self.roles[name] = role
        return os.path.join(self.request.output, name)


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
    run = _Run(request)
    if loaded.module.size is not None and loaded.module.size != image.size:
        run.notes.append(f"kldstat gives {image.filename} {loaded.module.size:#x} bytes, its layout "
                         f"{image.size:#x}: is {request.module} the build that is loaded"
                         + ("?" if request.old_kernel_linker else ", or is the kernel older than 2024 "
                                                                   "(--old-kernel-linker)?"))
    host = {"uname": query(["uname", "-a"]), "freebsd_version": query(["freebsd-version", "-ku"])}
    versions = {name: {"path": path, "version": query([path, "-V"]) if name == DTRACE else None}
                for name, path in tools.items()}

    os.makedirs(request.output, exist_ok=True)
    signal_number: int | None = None
    try:
        _copy_module(request.module, run.path(image.filename, bundle.ROLE_MODULE))
        with open(run.path(KLDSTAT_FILE, bundle.ROLE_KLDSTAT), "w", encoding="utf-8",
                  errors="surrogateescape") as out:
            out.write(loaded.text)
        run.commands[KLDSTAT] = list(loaded.argv)
        argv = (_dtrace_argv(run, tools[DTRACE], loaded.module.address) if request.pmc_event is None
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
        manifest = _manifest(run, image, loaded, versions, host)
        manifest.save(request.output)
    return Result(manifest, signal_number)


def _capture(run: _Run, argv: list[str], view: LiveView | QuietView) -> None:
    from tracebridge.cputime.record import record as record_cpu
    from tracebridge.cputime.sampler import Selection
    from tracebridge.cputime.series import write_series

    request = run.request
    try:
        run.times["started"] = _now()
        run.tracer = Tracer(request.tool, argv, request.output,
                            run.path(f"{request.tool}.stderr", bundle.ROLE_TOOL_OUTPUT))
        run.tracer.wait_started(request.settle)
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
        write_series(run.recording.frame, run.path(CPU_SERIES, bundle.ROLE_CPU))
    if run.tracer is not None and run.tracer.exited_early:
        run.notes.append(f"{request.tool} exited by itself (status {run.tracer.record().exit_status}) "
                         f"before the recording ended: {run.tracer.last_words()}")


def _dtrace_argv(run: _Run, dtrace: str, base: int) -> list[str]:
    """Write the D script and probe map (what ``gen-probes`` writes); the dtrace command line that runs them."""
    from tracebridge.image.elf import open_module
    from tracebridge.probes.dscript import part_files
    from tracebridge.probes.generate import generate

    request = run.request
    probe_map = run.path(PROBE_MAP, bundle.ROLE_PROBE_MAP)
    image = open_module(request.module, init_fini_arrays=not request.old_kernel_linker)
    generated = generate(image, str(request.script_template), base=base)
    files = part_files(os.path.join(request.output, SCRIPT), len(generated.script.parts))
    for index, path in enumerate(files):
        with open_output(path, inputs=[request.module]) as out:
            out.write(generated.script.text(index, files))
    generated.probe_map(files).save(probe_map, inputs=[request.module])
    words = ["gen-probes", request.module, "--template", str(request.script_template), "--base", f"{base:#x}",
             "-o", os.path.join(request.output, SCRIPT), "--map", probe_map]
    if request.old_kernel_linker:
        words.append("--old-kernel-linker")
    run.commands["gen-probes"] = ["tracebridge", *words]  # the same files, made by hand
    scripts = [os.path.basename(f) for f in files]
    for name in scripts:
        run.roles[name] = bundle.ROLE_SCRIPT
    # dtrace -o appends: a previous run's output (--force) must not be read as part of this one.
    open(run.path(DTRACE_OUT, bundle.ROLE_PROFILE), "w").close()
    return [dtrace, *(word for name in scripts for word in ("-s", name)), "-o", DTRACE_OUT]


def _pmcstat_argv(run: _Run, pmcstat: str, event: str) -> list[str]:
    """System-wide sampling with callchains (pmcstat's default; -N would turn them off) into a log."""
    run.roles[PMC_LOG] = bundle.ROLE_PMC_LOG
    rate = ["-n", str(run.request.pmc_rate)] if run.request.pmc_rate else []
    return [pmcstat, *rate, "-S", event, "-O", PMC_LOG]


def _print_pmc_log(run: _Run, pmcstat: str) -> None:
    """``pmcstat -R pmc.log -o pmc.txt``: the raw records, which tracebridge resolves itself."""
    argv = [pmcstat, "-R", PMC_LOG, "-o", PMC_TEXT]
    run.commands["pmcstat-print"] = argv
    messages = run.path("pmcstat-print.stderr", bundle.ROLE_TOOL_OUTPUT)
    with open(messages, "wb") as sink:
        done = subprocess.run(argv, cwd=run.request.output, stdin=subprocess.DEVNULL, stdout=sink,
                              stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise ToolFailed(f"{' '.join(argv)} failed with status {done.returncode}: {last_line(messages)} "
                         f"(the log {os.path.join(run.request.output, PMC_LOG)} is kept)")
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
        path=os.path.abspath(request.module), file=image.filename, sha256=bundle.sha256_of(request.module),
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
        files=bundle.describe_files(request.output, run.roles), notes=run.notes)


def _until(request: Request) -> str:
    if request.workload:
        return "recording until the workload exits" + (f" or {request.duration:g} s have passed"
                                                        if request.duration else "")
    if request.duration:
        return f"recording for {request.duration:g} s"
    return "recording until Ctrl-C"


def _copy_module(source: str, target: str) -> None:
    if not (os.path.exists(target) and os.path.samefile(source, target)):
        shutil.copyfile(source, target)


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


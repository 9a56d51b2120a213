"""The machine the stand-in tools pretend to be: FreeBSD amd64 with a Rust module loaded.

The stand-ins (``standins/dtrace``, ``pmcstat``, ``kldstat``) import this to
agree on one world: the fixture module ``rem_legacy_fp.ko`` loaded at
:data:`MODULE_BASE`, the stand-in kernel of ``tests/data/pmcstat`` at its link
address, and a few kernel stacks through both.  Addresses come from GNU
readelf's text of the fixture (``tests/fixtures/expected``) laid out by
``tests/readelf_text.py`` (the kernel linker's rule, freebsd-facts §2), and
the expected names from the saved rustfilt listing: nothing here uses
tracebridge, so the tests compare tracebridge against an independent view.

The tests steer the stand-ins through the environment, which
``tracebridge record`` passes on to them:

``STANDIN_MODULE``  the fixture module that is loaded (unset: none is);
``STANDIN_CALLS``   a file each stand-in appends its argv to (one JSON list a line),
                    dtrace the signals it receives (``["dtrace-signal", "SIGINT"]``), and
                    dtrace and pmcstat their pid once their signal handlers are in place
                    (``["dtrace-ready", "4242"]``: :func:`log_ready`);
``STANDIN_DTRACE``  ``fail``: dtrace fails at start as without the DTrace modules;
                    ``slow``: dtrace takes 30 s to print its aggregation.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

import readelf_text  # noqa: E402

EXPECTED = TESTS / "fixtures" / "expected"
MODULES = TESTS / "fixtures" / "modules"
KERNEL = TESTS / "data" / "pmcstat" / "kernel"
KERNEL_BASE = 0xffffffff80200000
KERNEL_SIZE = 0x11b0  # _end - KERNBASE in kernel.readelf-s.txt
MODULE_BASE = 0xffffffff82e1c000
#: Where the module was loaded from (new kernels log full paths in map-in records).
MODULE_PATHNAME = "/boot/modules/{name}.ko"

RX_FRAME = "_ZN3rem2em2rx16Adapter$LT$T$GT$8rx_frame17h183ba40ea4476ec7E"
RXEOF = "_ZN3rem2em2rx5rxeof17h84684ba9222bcdc9E"
TRANSMIT = "_ZN3rem2em2tx8transmit17hbb2a20c64cd9deefE"
WALK = "_ZN3rem2hw3phy4walk17hc52a97971db14ce6E"

#: Stacks, leaf first, as (image, symbol, offset into it): "kernel" or "module".
STACKS: list[tuple[list[tuple[str, str, int]], int]] = [
    ([("module", RX_FRAME, 0x2b), ("module", RXEOF, 0x41), ("kernel", "ether_input", 0x11),
      ("kernel", "taskqueue_run", 0x5), ("kernel", "fork_exit", 0x9)], 40),
    ([("module", WALK, 0x50), ("module", WALK, 0x2e), ("module", "rem_intr", 0x1a),
      ("kernel", "fork_exit", 0x9)], 9),
    ([("module", TRANSMIT, 0x3c), ("module", "rem_transmit", 0x12), ("kernel", "kern_ioctl", 0x9),
      ("kernel", "sys_ioctl", 0x3), ("kernel", "amd64_syscall", 0x7)], 17),
    # The CPU was in the kernel, called from the module: the stack template's predicate drops it.
    ([("kernel", "__mtx_unlock_flags", 0x4), ("module", TRANSMIT, 0x3c), ("module", "rem_transmit", 0x12),
      ("kernel", "kern_ioctl", 0x9)], 5),
]


@dataclass(frozen=True)
class Symbol:
    name: str
    start: int
    size: int


def module_name() -> str | None:
    return os.environ.get("STANDIN_MODULE")


def log_call(tool: str, words: list[str] | None = None) -> None:
    """Note that ``tool`` ran with these words (default: its argv) in ``STANDIN_CALLS``."""
    calls = os.environ.get("STANDIN_CALLS")
    if calls:
        with open(calls, "a") as out:
            out.write(json.dumps([tool, *(sys.argv[1:] if words is None else words)]) + "\n")


def log_ready(tool: str) -> None:
    """Note that ``tool`` (this process) now takes its stop signal as the real tool does once it traces.

    Before this a signal finds Python's default handling (a KeyboardInterrupt
    traceback), which no real dtrace or pmcstat shows; a stand-in's start-up
    takes a moment, longer on a loaded machine than any fixed ``--settle``, so
    the tests wait for this line instead (standin_target.py).
    """
    log_call(f"{tool}-ready", [str(os.getpid())])


def module_layout(name: str) -> tuple[dict[str, Symbol], int]:
    """The module's functions at their run-time addresses, and ``lf->size``."""
    sections = readelf_text.sections(EXPECTED / f"{name}.readelf-S.txt")
    placed, size = readelf_text.kernel_layout(sections)
    symbols = {}
    for sym in readelf_text.symbols(EXPECTED / f"{name}.readelf-s.txt"):
        if sym.type == "FUNC" and sym.ndx.isdigit() and int(sym.ndx) in placed:
            symbols[sym.name] = Symbol(sym.name, MODULE_BASE + placed[int(sym.ndx)] + sym.value, sym.size)
    return symbols, size


def kernel_symbols() -> dict[str, Symbol]:
    return {s.name: Symbol(s.name, s.value, s.size)
            for s in readelf_text.symbols(KERNEL.with_name("kernel.readelf-s.txt")) if s.type == "FUNC"}


def resolved_stacks(name: str) -> list[tuple[list[tuple[str, Symbol, int]], int]]:
    """:data:`STACKS` with each frame's symbol placed: (image, symbol, pc)."""
    module, _ = module_layout(name)
    kernel = kernel_symbols()
    out = []
    for frames, count in STACKS:
        placed = []
        for image, symbol, offset in frames:
            sym = (module if image == "module" else kernel)[symbol]
            placed.append((image, sym, sym.start + offset))
        out.append((placed, count))
    return out


def rustfilt(name: str) -> dict[str, str]:
    """Mangled -> demangled (no hash) from the fixture's saved rustfilt listing."""
    names = {}
    for line in (EXPECTED / f"{name}.rustfilt.txt").read_text().splitlines():
        mangled, _, demangled = line.partition("\t")
        names[mangled] = demangled
    return names

"""Fuzz the ELF reader (tracebridge/image/elf.py): mutated kernel modules through symbols, inspect and gen-probes."""

from __future__ import annotations

from _harness import MODULES, SCRATCH, BrokenPromise, Target, check_cli, files, main, run_cli, scratch

from tracebridge.support import native


def check(data: bytes) -> None:
    path = scratch("fuzz.ko", data)
    if check_cli(["symbols", "--format", "json", path]) == 0:
        check_native_agrees(["symbols", "--format", "json", path])
        check_cli(["inspect", path])
        check_cli(["gen-probes", path, "-t", "latency", "-o", str(SCRATCH / "out.d"),
                   "--map", str(SCRATCH / "out.json")])


def check_native_agrees(argv: list[str]) -> None:
    """With the compiled core built, the pure-Python paths print the same bytes."""
    core = native.core
    if core is None:
        return
    ours = run_cli(argv)
    native.core = None
    try:
        theirs = run_cli(argv)
    finally:
        native.core = core
    if ours != theirs:
        raise BrokenPromise(f"native and pure-Python outputs differ for {argv}")


TARGET = Target("elf", lambda: files(MODULES, "*.ko"), check)

if __name__ == "__main__":
    main(TARGET)

"""Fuzz the ELF reader (tracebridge/image/elf.py): mutated kernel modules through symbols, inspect and gen-probes."""

from __future__ import annotations

from _harness import MODULES, SCRATCH, Target, check_cli, check_native_agrees, files, main, scratch


def check(data: bytes) -> None:
    path = scratch("fuzz.ko", data)
    if check_cli(["symbols", "--format", "json", path]) == 0:
        check_native_agrees(["symbols", "--format", "json", path])
        check_cli(["inspect", path])
        check_cli(["gen-probes", path, "-t", "latency", "-o", str(SCRATCH / "out.d"),
                   "--map", str(SCRATCH / "out.json")])


TARGET = Target("elf", lambda: files(MODULES, "*.ko"), check)

if __name__ == "__main__":
    main(TARGET)

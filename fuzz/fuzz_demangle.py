"""Fuzz the demanglers (tracebridge/image/demangle.py): any name, both Rust backends, bounded time per name."""

from __future__ import annotations

import time

from _harness import MODULES, BrokenPromise, Target, main

from tracebridge.image import demangle
from tracebridge.support.printable import printable

#: Seconds one name may take in either backend (the fallback is pure Python).
LIMIT = 2.0
BACKENDS = ("pyderust", "demangle") if demangle._pyderust is not None else ("demangle",)


def seeds() -> list[bytes]:
    from tracebridge.image.elf import open_module

    names = {f.name for path in sorted(MODULES.glob("*.ko")) if path.stem != "rem_stripped"
             for f in open_module(path).functions}
    return [name.encode("latin-1") for name in sorted(names)]


def check(data: bytes) -> None:
    name = data.decode("latin-1")  # as the ELF reader decodes symbol names
    for backend in BACKENDS:
        demangle.use_backend(backend)
        start = time.perf_counter()
        item = demangle.demangle_symbol(name)
        _ = (item.full, item.hash, item.crate, item.short)
        elapsed = time.perf_counter() - start
        if elapsed > LIMIT:
            raise BrokenPromise(f"{backend}: {elapsed:.1f} s for a name of {len(name)} characters")
        if item.scheme == demangle.C and item.name != printable(name):
            raise BrokenPromise(f"{backend}: a name that did not demangle is not shown mangled")
        if printable(item.full) != item.full:
            raise BrokenPromise(f"{backend}: a control character in the demangled name {item.full!r}")
        if max(len(item.name), len(item.full)) > max(len(printable(name)), demangle.MAX_DEMANGLED):
            raise BrokenPromise(f"{backend}: a demangled name of {len(item.full)} characters")


TARGET = Target("demangle", seeds, check, max_len=demangle.MAX_NAME + 64)

if __name__ == "__main__":
    main(TARGET)

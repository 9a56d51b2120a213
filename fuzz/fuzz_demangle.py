"""Fuzz the demanglers (tracebridge/image/demangle.py): any name, the compiled backends and the pure-Python ones,
bounded time per name."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

from _harness import MODULES, BrokenPromise, Target, main

from tracebridge.image import demangle
from tracebridge.support.printable import printable

#: Seconds one name may take in either backend (the fallback is pure Python).
LIMIT = 2.0
#: (Rust backend, C++ backend): the compiled ones where installed, and the pure-Python package alone.
BACKENDS = ((("pyderust", "pycxxfilt"),) if demangle._pyderust is not None and demangle._pycxxfilt is not None
            else ()) + (("demangle", "demangle"),)


def seeds() -> list[bytes]:
    """The fixtures' function names, and one in 25 of the real C++ names of tests/data/demangle."""
    from tracebridge.image.elf import open_module

    names = {f.name for path in sorted(MODULES.glob("*.ko")) if path.stem != "rem_stripped"
             for f in open_module(path).functions}
    cxx = gzip.decompress((Path(__file__).parents[1] / "tests/data/demangle/cxx-names.txt.gz").read_bytes())
    return [name.encode("latin-1") for name in sorted(names)] + cxx.splitlines()[::25]


def check(data: bytes) -> None:
    name = data.decode("latin-1")  # as the ELF reader decodes symbol names
    before = demangle.BACKEND, demangle.CPP_BACKEND
    try:
        for backend, cpp_backend in BACKENDS:
            demangle.use_backend(backend)
            demangle.use_cpp_backend(cpp_backend)
            _check_one(name, backend)
    finally:
        demangle.use_backend(before[0])
        demangle.use_cpp_backend(before[1])


def _check_one(name: str, backend: str) -> None:
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
    _check_bulk(name, item, backend)


def _check_bulk(name: str, item: demangle.Demangled, backend: str) -> None:
    """The bulk path (``symbols``, folds) reads the name as :func:`demangle_symbol` does, natively and in Python."""
    from tracebridge.support import native

    core = native.core
    try:
        for native.core in {core, None}:
            shown, schemes = demangle.demangle_names([name, "main", name])
            if (shown, schemes) != ([item.name, "main", item.name], [item.scheme, demangle.C, item.scheme]):
                raise BrokenPromise(f"{backend}: the bulk path reads {name!r} otherwise (native: {native.core is not None})")
            if demangle.crates_of(shown, schemes) != [item.crate, None, item.crate]:
                raise BrokenPromise(f"{backend}: the bulk path finds another crate (native: {native.core is not None})")
    finally:
        native.core = core


TARGET = Target("demangle", seeds, check, max_len=demangle.MAX_NAME + 64)

if __name__ == "__main__":
    main(TARGET)

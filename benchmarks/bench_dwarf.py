"""DWARF address index: build time for a module with ~100k inlined subroutines, and 1M lookups.

Targets (issue 14): building the index of a module with 100k
``DW_TAG_inlined_subroutine`` entries in under 2 s, looking up 1M addresses
in under 1 s.  The module is generated: ``--functions`` extern functions, each
calling a binary tree of ``#[inline(always)]`` helpers ``--depth`` levels
deep twice (2 * (2**(depth+1) - 1) inlined copies per function), compiled
with the fixture flags (opt-level 3, one codegen unit, frame pointers,
``-C debuginfo=2``), linked ``ld -r`` and split with ``objcopy
--only-keep-debug`` as kmod.mk does.  Needs rustc and binutils; the build is
kept in --directory and reused.

The build is timed cold (cache off) on the native core's DIE walk and on
the pure-Python one (``src/native/dwarf_walk.h`` and its twin
``tracebridge/image/diewalk.py``), each as the best of ``--repeat`` runs of
wall and of CPU time (``time.process_time``: steadier on a shared machine),
and as read back from the on-disk cache
(:mod:`tracebridge.image.dwarfcache`, here in a scratch directory).
Lookups are timed two ways: the vectorised part (innermost node and line row
of each address: what ``--inline`` pays per distinct frame) and full chains
(``frames_many``: Frame objects for every frame of every address).

    python benchmarks/bench_dwarf.py [--functions 500] [--depth 5] [--lookups 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir))

import numpy as np  # noqa: E402

from tracebridge.image.debuginfo import load_debug_sections  # noqa: E402
from tracebridge.image.dwarf import AddressIndex  # noqa: E402
from tracebridge.image.elf import open_module  # noqa: E402
from tracebridge.support import native  # noqa: E402

FLAGS = ["--edition=2021", "--crate-type=lib", "--emit=obj", "-C", "opt-level=3", "-C", "panic=abort",
         "-C", "code-model=kernel", "-C", "relocation-model=static", "-C", "no-redzone=yes",
         "-C", "codegen-units=1", "-C", "embed-bitcode=no", "-C", "debuginfo=2", "-C", "force-frame-pointers=yes"]


def source(functions: int, depth: int) -> str:
    out = ["#![no_std]\nuse core::hint::black_box;\n",
           "#[panic_handler]\nfn p(_: &core::panic::PanicInfo) -> ! { loop {} }\n"]
    out.append(f"#[inline(always)]\nfn h{depth}(x: u64) -> u64 {{ black_box(x.rotate_left(7) ^ 0x9e37) }}\n")
    for level in range(depth - 1, -1, -1):
        out.append(f"#[inline(always)]\nfn h{level}(x: u64) -> u64 {{ h{level + 1}(x) ^ h{level + 1}(x >> 1) }}\n")
    for i in range(functions):
        out.append(f"#[no_mangle]\npub extern \"C\" fn f{i}(x: u64) -> u64 {{ h0(x) + h0(x ^ {i}) }}\n")
    return "".join(out)


def build(directory: str, functions: int, depth: int) -> tuple[str, str]:
    os.makedirs(directory, exist_ok=True)
    stem = os.path.join(directory, f"big_{functions}_{depth}")
    module, debug = stem + ".ko", stem + ".ko.debug"
    if os.path.exists(module) and os.path.exists(debug):
        return module, debug
    with open(stem + ".rs", "w") as handle:
        handle.write(source(functions, depth))
    start = time.perf_counter()
    subprocess.run(["rustc", *FLAGS, "--crate-name=big", "-o", stem + ".o", stem + ".rs"], check=True)
    subprocess.run(["ld", "-r", "-d", "-o", stem + ".ko.full", stem + ".o"], check=True)
    subprocess.run(["objcopy", "--only-keep-debug", stem + ".ko.full", debug], check=True)
    subprocess.run(["objcopy", "--strip-debug", stem + ".ko.full", module], check=True)
    print(f"built {module} in {time.perf_counter() - start:.1f} s")
    return module, debug


def best_of(repeat: int, run) -> tuple[float, float]:
    """Best wall and best CPU seconds of ``run()`` over ``repeat`` calls."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall, cpu = min(wall, time.perf_counter() - start), min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=500)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--lookups", type=int, default=1_000_000)
    parser.add_argument("--directory", default="/tmp/tracebridge-bench-dwarf")
    parser.add_argument("--repeat", type=int, default=3, help="cold builds timed per path (best kept)")
    args = parser.parse_args()
    os.environ.setdefault("TRACEBRIDGE_CACHE_DIR", tempfile.mkdtemp(prefix="tracebridge-bench-cache-"))
    module, debug = build(args.directory, args.functions, args.depth)
    image = open_module(module)
    start = time.perf_counter()
    sections = load_debug_sections(image, debug)
    read = time.perf_counter() - start
    symbols = {f.offset: f.name for f in image.functions}
    cold = {}
    core = native.core
    for path, path_core in (("native", core), ("pure Python", None)):
        if path == "native" and core is None:
            continue
        native.core = path_core
        try:
            cold[path] = best_of(args.repeat, lambda: AddressIndex(sections, symbols, cache=False))
        finally:
            native.core = core
    index = AddressIndex(sections, symbols, cache=False)
    AddressIndex(sections, symbols)  # writes the cache
    start = time.perf_counter()
    AddressIndex(sections, symbols)
    cached = time.perf_counter() - start
    print(f"{module}: {len(image.functions)} functions, {index.inlined_count} inlined subroutines, "
          f"{len(index.segment_starts)} segments, {len(index.row_address)} line rows, "
          f".debug_info {len(sections.sections['.debug_info']) >> 10} KiB")
    print(f"read + relocate the debug file: {read:.2f} s; from the cache: {cached:.2f} s")
    for path, (wall, cpu) in cold.items():
        print(f"build the index cold, {path} DIE walk: {wall:.2f} s wall, {cpu:.2f} s CPU (best of {args.repeat})")
    rng = np.random.default_rng(14)
    addresses = rng.integers(0, image.size, args.lookups, dtype=np.uint64)
    start = time.perf_counter()
    index.innermost(addresses)
    index.lines(addresses)
    vectorised = time.perf_counter() - start
    print(f"{args.lookups} lookups, innermost node + line row: {vectorised:.3f} s")
    chains = addresses[: args.lookups // 10]
    start = time.perf_counter()
    index.frames_many(chains)
    full = time.perf_counter() - start
    print(f"{len(chains)} full chains (Frame objects): {full:.2f} s "
          f"(~{full * 10:.1f} s per 1M)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

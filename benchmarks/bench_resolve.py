"""Resolving 10 million kernel PCs against the kernel and several modules, on one core.

Target (pmcstat issue): under 2 s for 10 million PCs.  The address space
holds the stand-in kernel of tests/data/pmcstat, the committed fixture
modules, a generated module with many functions (make_big_module.py; any
module with ``--module``) and a module known only by name, at kldstat-like
addresses.  The PCs are 90% inside functions (drawn across every module),
5% inside a module known only by name and 5% outside everything, each
drawn from a set of hot PCs as in a real profile.  Reported: the first call (cold caches, page
faults included) and the best of ``--repeat``; ``frame_ids`` (distinct PCs to
profile frames) is timed too.

    python benchmarks/bench_resolve.py [--module FILE] [--functions 40000] [--pcs 10000000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from _timing import big_module

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, os.pardir)
BASE = 0xFFFFFFFF82A00000


def build_space(big: str):
    from tracebridge.image.elf import open_module
    from tracebridge.profile.resolve import AddressSpace

    space = AddressSpace()
    space.add(open_module(os.path.join(ROOT, "tests", "data", "pmcstat", "kernel")))
    base = BASE
    modules = sorted(os.path.join(ROOT, "tests", "fixtures", "modules", name)
                     for name in os.listdir(os.path.join(ROOT, "tests", "fixtures", "modules"))
                     if name.endswith(".ko") and "stripped" not in name and "i386" not in name)
    for path in [big, *modules]:
        image = open_module(path)
        space.add(image, base)
        base += (image.size + 0xFFFF) & ~0xFFFF
    space.add_region("if_em.ko", base, base + 0x40000)
    return space


def make_pcs(space, count: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    space.resolve(np.zeros(1, dtype=np.uint64))          # build the tables
    starts = np.array([p.start for p in space.placements], dtype=np.uint64)
    sizes = np.array([max(p.end - p.start, 1) for p in space.placements], dtype=np.uint64)
    # A profile repeats a few thousand hot PCs: draw 200k distinct ones, then sample them.
    pick = rng.integers(0, len(starts), 200_000)
    hot = starts[pick] + (rng.random(len(pick)) * sizes[pick]).astype(np.uint64)
    pcs = hot[rng.zipf(1.3, count) % len(hot)]
    # Unresolved PCs repeat too: 20k distinct ones in a module without an ELF, 20k outside everything.
    gaps = rng.random(count)
    module = space.modules[-1]
    inside = np.uint64(module.base) + rng.integers(0, 0x40000, 20_000).astype(np.uint64)
    outside = rng.integers(0x400000, 0x800000000, 20_000).astype(np.uint64)
    pcs[gaps < 0.05] = inside[rng.integers(0, len(inside), int((gaps < 0.05).sum()))]
    pcs[gaps > 0.95] = outside[rng.integers(0, len(outside), int((gaps > 0.95).sum()))]
    return pcs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", help="a large module to add (default: generate one)")
    parser.add_argument("--functions", type=int, default=40_000, help="functions in the generated module")
    parser.add_argument("--pcs", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})   # one core
    with tempfile.TemporaryDirectory() as tmp:
        big = big_module(args.module, args.functions, tmp)
        space = build_space(big)
        pcs = make_pcs(space, args.pcs)
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = space.resolve(pcs)
            times.append(time.perf_counter() - start)
        counts = space.count(result)
        from tracebridge.profile.model import Profile

        start = time.perf_counter()
        space.frame_ids(pcs, Profile())
        frames = time.perf_counter() - start
    print(f"address space: {len(space.modules)} images, {len(space.placements)} functions, "
          f"{len(space.segments)} ranges")
    print(f"resolve {len(pcs):,} PCs: first {times[0]:.3f} s, best of {args.repeat} {min(times):.3f} s "
          f"({len(pcs) / min(times) / 1e6:.1f} M PCs/s; target < 2 s)")
    print(f"frame_ids (distinct PCs to profile frames): {frames:.3f} s")
    print(f"summary: {counts.describe()}")


if __name__ == "__main__":
    main()

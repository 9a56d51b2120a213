"""Peak memory of `tracebridge fold` and `tracebridge pmc resolve` on 2 GB inputs.

Target (hardening issue): under 500 MB peak RSS for a 2 GB text input, i.e.
the readers stream and memory follows what the input holds (distinct
stacks, frames, modules), not its size.  Two inputs are generated in
--directory (default /tmp/tracebridge-bench, reused when already of the
size asked):

* a DTrace stack capture as a long ``printa(@); trunc(@);`` run prints it:
  ``@[stack()] = count()`` entries drawn from a pool of distinct stacks,
  over and over (frames of the fixture module as bare hex PCs, resolved
  with --module/--base, plus mangled module frames and kernel frames);
* a DTrace capture of traced firings (``profile-997 { stack(); }``, not
  quiet): a ``CPU ID FUNCTION:NAME`` line and a stack per firing, read line
  by line (the general reader), stacks from the same pool;
* a ``pmcstat -R LOG -o`` record log: kernel and module map-ins, then
  callchains drawn from a pool, PCs inside the module's functions and the
  test kernel's.

Each command runs in a fresh child process whose own child's
``ru_maxrss`` is its peak RSS.  ``--pool`` sets the number of distinct stacks.

Then the repeated shapes (memory-follows-the-profile issue): the same capture
folded once and ``--repeat`` times over (default 20), each 1x input itself
made of 20 copies with distinct names, target at most 150 MB more peak RSS
for the repeated one:

* ``dtrace-ticks``: what a ``tick-60s { printa(@); trunc(@); }`` run
  prints: per firing the ``CPU ID FUNCTION:NAME`` header, the probe line and
  the ``@[stack()] = count()`` printout (FlameGraph's
  ``example-dtrace-stacks.txt`` when given with ``--dtrace-example``, else a
  printout of the pool's stacks); folded with the ``sum`` rule, the repeated
  one must give exactly ``--repeat`` times the weights;
* ``pmc-graph``: a ``pmcstat -R LOG -G`` callgraph (benchmarks/bench_pmc_fold.py's
  generator, 55 MB), its trees repeated;
* ``distinct-names``: the DTrace capture made of ``--repeat`` times as many
  copies with distinct names, so memory grows with the distinct stacks
  (for comparison: this growth is the profile's own).

    python benchmarks/bench_memory.py [--gigabytes 2] [--pool 20000] [--directory DIR]
    python benchmarks/bench_memory.py --shapes repeated [--repeat 20] [--dtrace-example example-dtrace-stacks.txt]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, os.pardir)
sys.path[:0] = [os.path.join(ROOT, "tests", "readers"), os.path.join(ROOT, "tests")]

from bench_fold import KERNEL, _legacy, _v0  # noqa: E402
from bench_pmc_fold import make_callgraph  # noqa: E402
from fixture_paths import MODULES  # noqa: E402
from pmcstat_text import callchain, entry, map_in  # noqa: E402

from tracebridge.image.elf import open_module  # noqa: E402

MODULE = str(MODULES / "rem_legacy_fp.ko")
TEST_KERNEL = os.path.join(ROOT, "tests", "data", "pmcstat", "kernel")
BASE = 0xFFFFFFFF82A1C000
TARGET_MB = 500
#: Most peak RSS a capture repeated --repeat times may take beyond the capture once.
REPEAT_TARGET_MB = 150
COPIES = 20
TICK = "CPU     ID                    FUNCTION:NAME\n  0  64091                        :tick-60s \n\n"


def _module_pcs() -> list[int]:
    """A PC inside each function of the fixture module, at BASE."""
    image = open_module(MODULE)
    return [BASE + f.offset + f.size // 2 for f in image.functions if f.size]


def _kernel_pcs() -> list[int]:
    image = open_module(TEST_KERNEL)
    return [image.address(f) + f.size // 2 for f in image.functions if f.size]


def _fill(path: str, head: str, entries: list[str], size: int, rng: random.Random) -> None:
    """Write ``head`` then blocks of entries in random order until ``size`` bytes."""
    written = 0
    with open(path, "w") as out:
        out.write(head)
        while written < size:
            block = "".join(rng.choices(entries, k=4096))
            out.write(block)
            written += len(block)


def make_dtrace(path: str, size: int, pool: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    rust = [_legacy(rng) for _ in range(1500)] + [_v0(rng) for _ in range(500)]
    pcs = _module_pcs()
    indent = " " * 14
    entries = []
    for _ in range(pool):
        frames = [f"0x{rng.choice(pcs):x}" for _ in range(rng.randint(1, 4))]
        frames += [f"if_rem.ko`{rng.choice(rust)}+0x{rng.randint(1, 0x400):x}" for _ in range(rng.randint(0, 6))]
        frames += [f"kernel`{rng.choice(KERNEL)}+0x{rng.randint(1, 0x300):x}" for _ in range(rng.randint(3, 10))]
        entries.append("\n" + "".join(f"{indent}{f}\n" for f in frames) + f" {rng.randint(1, 5000):16d}\n")
    _fill(path, "dtrace: description 'profile-997 ' matched 1 probe\n", entries, size, rng)


def make_traced(path: str, size: int, pool: int, seed: int = 3) -> None:
    rng = random.Random(seed)
    pcs = _module_pcs()
    indent = " " * 14
    entries = []
    for _ in range(pool):
        frames = [f"0x{rng.choice(pcs):x}" for _ in range(rng.randint(1, 4))]
        frames += [f"kernel`{rng.choice(KERNEL)}+0x{rng.randint(1, 0x300):x}" for _ in range(rng.randint(3, 10))]
        entries.append(f"{rng.randrange(2):3d} {71234:6d} {':profile-997':>32s} \n"
                       + "".join(f"{indent}{f}\n" for f in frames) + "\n")
    _fill(path, "CPU     ID                    FUNCTION:NAME\n", entries, size, rng)


def make_pmclog(path: str, size: int, pool: int, seed: int = 2) -> None:
    rng = random.Random(seed)
    module, kernel = _module_pcs(), _kernel_pcs()
    entries = [callchain(0, 0x20000, rng.randrange(4), [rng.choice(module) for _ in range(rng.randint(1, 6))]
                         + [rng.choice(kernel) for _ in range(rng.randint(2, 10))]) for _ in range(pool)]
    head = (entry("initlog", '0x9030000 "INTEL_SKYLAKE"') + entry("allocate", '0x20000 "cpu_clk_unhalted" 0x14010')
            + map_in(-1, 0xFFFFFFFF80200000, "/boot/kernel/kernel") + map_in(-1, BASE, "/boot/modules/rem_legacy_fp.ko"))
    _fill(path, head, entries, size, rng)


def peak_rss(command: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of ``command``, run as the only child of a fresh process.

    ``RUSAGE_CHILDREN`` keeps the largest child so far, so each command gets
    a new parent that has run nothing else.
    """
    probe = [sys.executable, "-c", "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"]
    start = time.perf_counter()
    result = subprocess.run(probe + command, check=True, capture_output=True, text=True)
    return int(result.stdout.split()[-1]) / 1024, time.perf_counter() - start


def tick_printout(pool: int, seed: int = 4) -> str:
    """One ``tick-60s`` firing's printout of ``@[stack()] = count()``: every stack of the pool once."""
    rng = random.Random(seed)
    rust = [_legacy(rng) for _ in range(1500)] + [_v0(rng) for _ in range(500)]
    indent = " " * 14
    entries = set()
    while len(entries) < pool:
        frames = [f"if_rem.ko`{rng.choice(rust)}+0x{rng.randint(1, 0x400):x}" for _ in range(rng.randint(1, 6))]
        frames += [f"kernel`{rng.choice(KERNEL)}+0x{rng.randint(1, 0x300):x}" for _ in range(rng.randint(3, 10))]
        entries.add("".join(f"{indent}{f}\n" for f in frames))
    return TICK + "".join(f"\n{e}{rng.randint(1, 5000):17d}\n" for e in entries)


def renamed(printout: str, copy: int) -> str:
    """The printout with every function renamed for this copy (``module`cN_func``): distinct stacks."""
    return printout.replace("`", f"`c{copy}_")


def write_copies(path: str, text_of, copies: int) -> None:
    with open(path, "w") as out:
        for copy in range(copies):
            out.write(text_of(copy))


def repeat_file(source: str, path: str, copies: int) -> None:
    with open(path, "wb") as out:
        for _ in range(copies):
            with open(source, "rb") as once:
                shutil.copyfileobj(once, out, 1 << 22)


def repeated_shapes(args: argparse.Namespace) -> None:
    """Peak RSS of folding each shape once and --repeat times over; the repeated one must cost <= 150 MB more."""
    directory, repeat = args.directory, args.repeat
    printout = open(args.dtrace_example).read() if args.dtrace_example else tick_printout(args.pool // 4)
    dtrace_once = os.path.join(directory, "ticks-1x.txt")
    write_copies(dtrace_once, lambda copy: renamed(printout, copy), COPIES)
    graph_once = os.path.join(directory, "graph-1x.txt")
    if not os.path.exists(graph_once):
        make_callgraph(graph_once, 55)
    shapes = [
        ("dtrace-ticks", dtrace_once, lambda path: repeat_file(dtrace_once, path, repeat), ["--printouts", "sum"]),
        ("pmc-graph", graph_once, lambda path: repeat_file(graph_once, path, repeat), []),
        ("distinct-names", dtrace_once,
         lambda path: write_copies(path, lambda copy: renamed(printout, copy), COPIES * repeat), ["--printouts", "sum"]),
    ]
    for name, once, make, options in shapes:
        many = os.path.join(directory, f"{name}-{repeat}x.txt")
        make(many)
        rows = []
        for path in (once, many):
            out = path + ".folded"
            rss, wall = peak_rss([args.tracebridge, "fold", *options, path, "-o", out])
            rows.append((os.path.getsize(path) / (1 << 20), rss, wall, _weights(out)))
        (size1, rss1, wall1, weights1), (size_n, rss_n, wall_n, weights_n) = rows
        scale = weights_n / weights1
        verdict = "" if name == "distinct-names" else \
            f"; {'within' if rss_n - rss1 <= REPEAT_TARGET_MB else 'OVER'} {REPEAT_TARGET_MB} MB"
        print(f"{name}: 1x {size1:.0f} MB -> peak RSS {rss1:.0f} MB in {wall1:.1f} s; {repeat}x {size_n:.0f} MB -> "
              f"peak RSS {rss_n:.0f} MB in {wall_n:.1f} s (+{rss_n - rss1:.0f} MB{verdict}); weights x{scale:g}")
        os.remove(many)


def _weights(folded: str) -> int:
    with open(folded) as lines:
        return sum(int(line.rpartition(" ")[2]) for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=2.0, help="size of each input (default 2)")
    parser.add_argument("--pool", type=int, default=20000, help="distinct stacks in each input (default 20000)")
    parser.add_argument("--directory", default="/tmp/tracebridge-bench", help="where the inputs are made")
    parser.add_argument("--tracebridge", default=os.path.join(os.path.dirname(sys.executable), "tracebridge"))
    parser.add_argument("--shapes", choices=("large", "repeated", "all"), default="all",
                        help="the 2 GB inputs, the repeated shapes, or both (default)")
    parser.add_argument("--repeat", type=int, default=20, help="copies of each repeated shape (default 20)")
    parser.add_argument("--dtrace-example", metavar="FILE",
                        help="a real tick printout to repeat (FlameGraph's example-dtrace-stacks.txt)")
    args = parser.parse_args()
    os.makedirs(args.directory, exist_ok=True)
    if args.shapes != "large":
        repeated_shapes(args)
        if args.shapes == "repeated":
            return
    size = int(args.gigabytes * (1 << 30))
    runs = [
        ("dtrace.txt", make_dtrace, ["fold", "--module", MODULE, "--base", f"{BASE:x}"]),
        ("dtrace-traced.txt", make_traced, ["fold", "--module", MODULE, "--base", f"{BASE:x}"]),
        ("pmcstat-o.txt", make_pmclog, ["pmc", "resolve", "-m", MODULE, "--kernel", TEST_KERNEL, "-q"]),
        ("pmcstat-o.txt", make_pmclog, ["fold", "--module", MODULE, "--module", TEST_KERNEL]),
    ]
    worst = 0.0
    for name, make, command in runs:
        path = os.path.join(args.directory, name)
        if not os.path.exists(path) or os.path.getsize(path) < size:
            make(path, size, args.pool)
        rss, wall = peak_rss([args.tracebridge, *command, path, "-o", os.path.join(args.directory, "out.folded")])
        worst = max(worst, rss)
        print(f"tracebridge {' '.join(command[:2])} on {os.path.getsize(path) / (1 << 30):.2f} GB {name}: "
              f"peak RSS {rss:.0f} MB, {wall:.0f} s")
    print(f"worst peak RSS {worst:.0f} MB (target < {TARGET_MB} MB)")


if __name__ == "__main__":
    main()

"""`tracebridge pmc resolve` on a large `pmcstat -G` callgraph against stackcollapse-pmc.pl.

Target (pmcstat issue): at least 2x faster than the perl script on a callgraph
of 50 MB or more.  The callgraph is generated in pmcstat's exact format
(tests/readers/pmcstat_text.py) from random kernel callchains over kernel
functions, legacy/v0-mangled Rust functions of two modules and hex nodes.
Both tools read the same file; tracebridge also demangles every name.  The
outputs are checked to hold the same stacks (with ``--no-demangle``).

    python benchmarks/bench_pmc_fold.py --reference 'perl stackcollapse-pmc.pl' [--megabytes 50]
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import re
import subprocess
import sys
import tempfile

from _timing import cpu_time, report, wall_time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "tests", "readers"))

from pmcstat_text import callgraph  # noqa: E402

KERNEL = "/boot/kernel/kernel"
MODULES = ("/boot/modules/if_rem.ko", "/boot/modules/rem_crypto.ko")
WORDS = ("rx", "tx", "queue", "ring", "desc", "buffer", "packet", "frame", "refill", "poll", "intr", "dma",
         "mbuf", "stats", "ioctl", "config", "phy", "link", "adapter", "driver", "checksum", "segment")


def legacy(rng: random.Random) -> str:
    path = ["rem"] + [rng.choice(WORDS) for _ in range(rng.randint(2, 4))]
    if rng.random() < 0.4:
        path[-2] = "Adapter$LT$T$GT$"
    body = "".join(f"{len(part)}{part}" for part in path)
    return f"_ZN{body}17h{rng.getrandbits(64):016x}E"


def v0(rng: random.Random) -> str:
    path = [rng.choice(WORDS) for _ in range(rng.randint(2, 3))]
    inner = "Cs4abcd_3rem"
    for part in path:
        inner = f"Nv{inner}{len(part)}{part}" if part is path[-1] else f"Nt{inner}{len(part)}{part}"
    return f"_R{inner}"


def make_callgraph(path: str, megabytes: float, seed: int = 1) -> int:
    """Random callchains as a kernel profile has them: a module part, then kernel frames to a root."""
    rng = random.Random(seed)
    kernel = [f"{a}_{b}" for a in ("vm", "sched", "tcp", "ip", "ether", "bus", "intr", "taskqueue", "uma", "mtx",
                                   "witness", "callout", "pmap", "vfs", "soreceive", "sosend") for b in WORDS]
    modules = {image: [legacy(rng) if rng.random() < 0.7 else v0(rng) for _ in range(1500)]
               + [f"{rng.randrange(0x1000, 0x80000):#x}" for _ in range(100)] for image in MODULES}
    roots = ("fork_exit", "ithread_loop", "amd64_syscall")

    def module_part() -> list[tuple[str, str]]:
        image = rng.choice(MODULES)
        return [(rng.choice(modules[image]), image) for _ in range(rng.randint(1, 6))]

    def kernel_part(low: int, high: int) -> list[tuple[str, str]]:
        return [(rng.choice(kernel), KERNEL) for _ in range(rng.randint(low, high))]

    size = 0
    with open(path, "w") as out:
        while size < megabytes * 1e6:
            chains = []
            for _ in range(20000):
                shape = rng.random()
                if shape < 0.6:        # sampled in the module, called from the kernel
                    frames = module_part() + kernel_part(1, 9)
                elif shape < 0.8:      # a kernel function the module called
                    frames = kernel_part(1, 2) + module_part() + kernel_part(1, 8)
                else:                  # kernel only
                    frames = kernel_part(2, 12)
                chains.append((frames + [(rng.choice(roots), KERNEL)], rng.randint(1, 50)))
            size += out.write(callgraph([("cpu_clk_unhalted.thread_p", chains)]))
    return size


#: An address tracebridge could not name, labelled with its module (``if_rem.ko+0x5c8a5``) where the perl
#: script prints the bare hex node (``0x5c8a5``).
MODULE_ADDRESS = re.compile(r"(?<![^;])[^;]*\+(0x[0-9a-f]+)(?![^;])")


def folded(lines: str) -> collections.Counter:
    """The stacks and counts of a folded text, unnamed addresses as the perl script writes them."""
    stacks: collections.Counter = collections.Counter()
    for line in lines.splitlines():
        stack, _, count = line.rpartition(" ")
        stacks[MODULE_ADDRESS.sub(r"\1", stack)] += int(count)
    return stacks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", help="the script to compare with, e.g. 'perl stackcollapse-pmc.pl'")
    parser.add_argument("--megabytes", type=float, default=50, help="size of the generated callgraph (default 50)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        graph = os.path.join(tmp, "pmc.graph")
        size = make_callgraph(graph, args.megabytes)
        out = os.path.join(tmp, "out.folded")
        command = ["tracebridge", "pmc", "resolve", "-q", graph, "-o", out]
        ours = wall_time(command, args.repeat)
        label = f"pmc resolve on a {size / 1e6:.1f} MB -G callgraph"
        if args.reference is None:
            print(f"{label}: tracebridge {ours:.3f} s")
            return
        reference = wall_time(f"{args.reference} {graph}", args.repeat)
        subprocess.run([*command, "--no-demangle"], check=True)
        theirs = subprocess.run(f"{args.reference} {graph}", shell=True, check=True, capture_output=True, text=True)
        same = folded(open(out).read()) == folded(theirs.stdout)
        report(label, ours, reference, args.reference, "target <= 0.5x, i.e. 2x faster")
        ours_cpu, reference_cpu = cpu_time(command, args.repeat), cpu_time(f"{args.reference} {graph}", args.repeat)
        print(f"CPU time: tracebridge {ours_cpu:.3f} s, reference {reference_cpu:.3f} s; "
              f"speed-up {reference / ours:.2f}x wall, {reference_cpu / ours_cpu:.2f}x CPU; "
              f"same stacks and counts as the reference: {same}")


if __name__ == "__main__":
    main()

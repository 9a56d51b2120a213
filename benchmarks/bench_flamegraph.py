"""`tracebridge flamegraph` against a reference renderer on the same large folded file.

Target: from folded input at least as fast as flamegraph.pl.  The input is
generated: ``--stacks`` distinct stacks (default 200k), each a few kernel C
frames under an interrupt thread, then a deep chain of mangled legacy Rust
frames from a Rust network driver (``if_rem.ko``), with weights spread as
real profiles are (a few hot stacks, a long tail).  The same file goes to
both tools; the ratio is tracebridge's time over the reference's.

    python benchmarks/bench_flamegraph.py --reference 'perl /tmp/flamegraph.pl' [--stacks N] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile

from _timing import report, wall_time

KERNEL_ROOTS = ("fork_exit", "fork_trampoline", "ithread_loop", "intr_event_execute_handlers",
                "taskqueue_thread_loop", "taskqueue_run_locked", "softclock_thread", "gtaskqueue_run_locked",
                "iflib_fast_intr", "ether_nh_input", "netisr_dispatch_src", "ip_input", "tcp_input",
                "tcp_do_segment", "sosend_generic", "m_freem", "uma_zalloc_arg", "bus_dmamap_load_mbuf_sg")
CRATES = ("if_rem", "core", "alloc", "kernel_sys", "rem_hal")
WORDS = ("rx", "tx", "ring", "desc", "queue", "mbuf", "dma", "irq", "regs", "phy", "stats", "buf", "pool",
         "slot", "refill", "poll", "drain", "map", "iter", "next", "fold", "with_lock", "closure", "drop",
         "write_volatile", "read_volatile", "checked_add", "from_raw", "as_mut_ptr", "deref_mut")


def legacy_symbol(path: list[str], rng: random.Random) -> str:
    """A mangled legacy Rust symbol (``_ZN...17h<hash>E``) for ``path``."""
    body = "".join(f"{len(part)}{part}" for part in path)
    return f"_ZN{body}17h{rng.getrandbits(64):016x}E"


def rust_functions(count: int, rng: random.Random) -> list[str]:
    functions = set()
    while len(functions) < count:
        depth = rng.randint(3, 7)
        path = [rng.choice(CRATES)] + [rng.choice(WORDS) for _ in range(depth - 1)]
        functions.add("if_rem.ko`" + legacy_symbol(path, rng))
    return sorted(functions)


def generate(path: str, stacks: int, seed: int = 1) -> None:
    """Write ``stacks`` distinct folded stacks to ``path``."""
    rng = random.Random(seed)
    functions = rust_functions(3000, rng)
    kernel = [f"kernel`{name}" for name in KERNEL_ROOTS]
    # A few hundred call paths into the driver, each then a random walk over
    # the Rust functions that favours a small hot set at every depth.
    entries = [";".join(rng.sample(kernel, rng.randint(3, 6))) for _ in range(300)]
    hot = [rng.sample(functions, 12) for _ in range(40)]
    seen: set[str] = set()
    with open(path, "w", encoding="utf-8") as out:
        while len(seen) < stacks:
            frames = [rng.choice(entries)]
            for depth in range(rng.randint(12, 36)):
                pool = hot[depth] if rng.random() < 0.85 else functions
                frames.append(rng.choice(pool))
            if rng.random() < 0.3:
                frames.append(rng.choice(kernel))
            stack = ";".join(frames)
            if stack in seen:
                continue
            seen.add(stack)
            out.write(f"{stack} {max(1, int(rng.paretovariate(1.2)))}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True,
                        help="command that reads a folded file and writes SVG to stdout, "
                             "e.g. 'perl /tmp/flamegraph.pl' (the file name is appended)")
    parser.add_argument("--input", help="folded file to render (default: generate one)")
    parser.add_argument("--stacks", type=int, default=200_000, help="distinct stacks to generate")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs each (default 1: the input is large)")
    args = parser.parse_args()
    tracebridge = shutil.which("tracebridge") or os.path.join(os.path.dirname(sys.executable), "tracebridge")
    with tempfile.TemporaryDirectory() as tmp:
        folded = args.input
        if folded is None:
            folded = os.path.join(tmp, "big.folded")
            generate(folded, args.stacks)
        out = os.path.join(tmp, "tracebridge.svg")
        ours = wall_time([tracebridge, "flamegraph", folded, "-o", out], args.repeat)
        reference = wall_time(f"{args.reference} {folded} > {os.path.join(tmp, 'reference.svg')}", args.repeat)
        size = os.path.getsize(folded) / 1e6
        lines = sum(1 for _ in open(folded, encoding="utf-8"))
        report(f"flamegraph from {lines:,} folded stacks ({size:.0f} MB)", ours, reference, args.reference,
               "target: ratio <= 1.00")
        print(f"SVG sizes: tracebridge {os.path.getsize(out) / 1e6:.1f} MB, "
              f"reference {os.path.getsize(os.path.join(tmp, 'reference.svg')) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()

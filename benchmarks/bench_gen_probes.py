#!/usr/bin/env python3
"""Time ``tracebridge gen-probes`` against ``nm --demangle=rust --defined-only`` on one module.

    python benchmarks/make_big_module.py -n 100000 -o /tmp/big.ko
    python benchmarks/bench_gen_probes.py /tmp/big.ko [--repeat 5] [--template count] [--map]

Both commands run as subprocesses (so Python's start-up and imports count, as
they do for a user), alternately, ``--repeat`` times each; the best time of
each is compared, which keeps other load on the machine from deciding the
ratio.  The target is a ratio of at most 3.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time


def timed(command: list[str], timings: list[float]) -> None:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    timings.append(time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", help="the kernel module to run both tools on")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command (default 5)")
    parser.add_argument("--template", default="count", help="gen-probes template (default count)")
    parser.add_argument("--map", action="store_true", help="also write the probe map (--map)")
    args = parser.parse_args()
    if not os.path.isfile(args.module):
        parser.error(f"{args.module}: no such file (make one with benchmarks/make_big_module.py)")
    if shutil.which("nm") is None:
        parser.error("needs GNU nm")
    with tempfile.TemporaryDirectory() as tmp:
        ours = [sys.executable, "-m", "tracebridge", "gen-probes", args.module, "-t", args.template,
                "-o", os.path.join(tmp, "probes.d")]
        if args.map:
            ours += ["--map", os.path.join(tmp, "probes.json")]
        theirs = ["nm", "--demangle=rust", "--defined-only", args.module]
        times: dict[str, list[float]] = {"gen-probes": [], "nm": []}
        for _ in range(args.repeat):
            timed(ours, times["gen-probes"])
            timed(theirs, times["nm"])
        parts = len([f for f in os.listdir(tmp) if f.endswith(".d")])
    ours_best, nm_best = min(times["gen-probes"]), min(times["nm"])
    print(f"module      {args.module} ({os.path.getsize(args.module) / 1e6:.1f} MB)")
    print(f"gen-probes  {ours_best:.2f} s best of {args.repeat} (template {args.template}"
          f"{', with --map' if args.map else ''}; {parts} script file{'s' if parts != 1 else ''})")
    print(f"nm          {nm_best:.2f} s best of {args.repeat} (nm --demangle=rust --defined-only)")
    print(f"ratio       {ours_best / nm_best:.2f}x (target: at most 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`tracebridge pmcstat-root` against `objcopy` copying the same module.

Writing the pmcstat-ready image reads the whole module and writes an ELF of
it, as ``objcopy IN OUT`` does; that is the native reference.  No target was
set by issue 18; the figure says what a root costs on a big module (100k
functions, one section each, made by make_big_module.py unless ``--module``).

    python benchmarks/bench_pmcstat_root.py [--module FILE] [--functions N] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile

from _timing import big_module, report, wall_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", help="module to write a root for (default: generate one)")
    parser.add_argument("--functions", type=int, default=100_000, help="functions in the generated module")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        module = big_module(args.module, args.functions, tmp)
        root = os.path.join(tmp, "root")
        system = os.path.join(tmp, "system")
        os.mkdir(system)
        # --force replaces the root of the previous repetition (pmcstat-root made it).
        ours = wall_time(["tracebridge", "pmcstat-root", module, "-o", root, "--system", system, "--force"],
                         args.repeat)
        objcopy = wall_time(["objcopy", module, os.path.join(tmp, "copy.ko")], args.repeat)
        size = os.path.getsize(module) / 1e6
        image = os.path.getsize(os.path.join(root, "boot", "modules", os.path.basename(module))) / 1e6
        report(f"pmcstat-root on {os.path.basename(module)} ({size:.1f} MB, image {image:.1f} MB)", ours, objcopy,
               "objcopy", "no target; reference only")
        shutil.rmtree(root)


if __name__ == "__main__":
    main()

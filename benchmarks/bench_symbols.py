"""`tracebridge symbols --format json` against `nm --demangle=rust --defined-only`.

Target (issue 2): tracebridge at most 2x nm's wall time on the same large
Rust ELF.  By default the module is generated with make_big_module.py
(100k functions, one section each); ``--module`` takes any ELF, e.g. rustc's
own ``librustc_driver-*.so``.

    python benchmarks/bench_symbols.py [--module FILE] [--functions N] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile

from _timing import big_module, report, wall_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", help="ELF file to read (default: generate one)")
    parser.add_argument("--functions", type=int, default=100_000, help="functions in the generated module")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        module = big_module(args.module, args.functions, tmp)
        out = os.path.join(tmp, "symbols.json")
        ours = wall_time(["tracebridge", "symbols", "--format", "json", "-o", out, module], args.repeat)
        nm = wall_time(["nm", "--demangle=rust", "--defined-only", module], args.repeat)
        size = os.path.getsize(module) / 1e6
        report(f"symbols on {os.path.basename(module)} ({size:.1f} MB)", ours, nm,
               "nm --demangle=rust --defined-only", "target <= 2x")


if __name__ == "__main__":
    main()

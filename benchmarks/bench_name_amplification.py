"""Peak memory of `inspect` and `symbols --format csv` on modules whose function symbols share one huge name.

Issue 19, item 4: a 1 MB module whose 2,000 function symbols point at one
1 MB name made ``inspect`` peak at 2.0 GB (a copy of the name per symbol).
Target: under 500 MB.  The modules are assembled with GNU ``as`` and patched
so that every function's ``st_name`` is the long one
(``tests/hardening/amplified_module.py``); each command runs under
``/usr/bin/time -f %M`` (peak RSS in KB), its output to /dev/null.

    python benchmarks/bench_name_amplification.py [--functions 2000 10000] [--name-bytes 1048576]

``symbols --format csv`` writes every name twice per symbol (4 GB of CSV for
2,000 symbols): it runs only for modules of at most ``--csv-up-to`` symbols.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, os.pardir))
sys.path.insert(0, os.path.join(ROOT, "tests", "hardening"))

from amplified_module import build  # noqa: E402

TARGET_MB = 500
COMMANDS = (("inspect",), ("symbols", "--format", "csv"))


def measure(argv: list[str]) -> tuple[int, float, int]:
    """Peak RSS (MB), wall seconds and exit status of ``tracebridge ARGV`` under /usr/bin/time."""
    with tempfile.NamedTemporaryFile("r") as report:
        start = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", report.name, sys.executable, "-m", "tracebridge",
                               *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONPATH": ROOT})
        seconds = time.perf_counter() - start
        kilobytes = int(report.read().split()[-1])
    return kilobytes // 1024, seconds, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--name-bytes", type=int, default=1 << 20)
    parser.add_argument("--csv-up-to", type=int, default=2000, help="symbols --format csv up to this many symbols")
    args = parser.parse_args()
    worst = 0
    with tempfile.TemporaryDirectory() as scratch:
        for functions in args.functions:
            module = os.path.join(scratch, f"amplified-{functions}.ko")
            build(module, functions, args.name_bytes)
            size = os.path.getsize(module)
            for command in COMMANDS if functions <= args.csv_up_to else COMMANDS[:1]:
                rss, seconds, status = measure([*command, module])
                worst = max(worst, rss)
                print(f"tracebridge {' '.join(command)}: {functions} symbols sharing a {args.name_bytes:,}-byte "
                      f"name, {size / 1e6:.1f} MB module: peak {rss} MB, {seconds:.1f} s, exit {status}")
    print(f"worst peak {worst} MB; target < {TARGET_MB} MB: {'met' if worst < TARGET_MB else 'NOT met'}")
    return 0 if worst < TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())

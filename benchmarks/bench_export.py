"""`fold --format pprof|parquet` against plain `fold` on one `pmcstat -R LOG -o` record log.

No native tool writes pprof or Parquet from these logs, so the ratio is
against tracebridge's own folded output of the same log: the exports should
cost little beyond reading it.  pprof keeps each sample's CPU and process
(labels), so its stacks are split by context; the folded run shows what
that split costs.  Each command runs in a fresh process (peak RSS as in
bench_memory.py).

    python benchmarks/bench_export.py [--megabytes 200] [--pool 20000] [--directory DIR]
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, os.pardir, "tests", "readers")]

from bench_memory import MODULE, TEST_KERNEL, make_pmclog, peak_rss  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=200, help="size of the log (default 200)")
    parser.add_argument("--pool", type=int, default=20000, help="distinct callchains in the log (default 20000)")
    parser.add_argument("--directory", default="/tmp/tracebridge-bench", help="where the log is made")
    parser.add_argument("--tracebridge", default=os.path.join(os.path.dirname(sys.executable), "tracebridge"))
    args = parser.parse_args()
    os.makedirs(args.directory, exist_ok=True)
    path = os.path.join(args.directory, f"pmcstat-o-{args.megabytes:g}mb.txt")
    if not os.path.exists(path):
        make_pmclog(path, int(args.megabytes * (1 << 20)), args.pool)
    base = None
    for fmt, suffix in (("folded", "folded"), ("pprof", "pb.gz"), ("parquet", "parquet")):
        out = os.path.join(args.directory, f"export.{suffix}")
        rss, wall = peak_rss([args.tracebridge, "fold", "--module", MODULE, "--module", TEST_KERNEL, path,
                              "--format", fmt, "-o", out])
        base = base or wall
        print(f"fold --format {fmt} on {os.path.getsize(path) / (1 << 20):.0f} MB: {wall:.1f} s "
              f"({wall / base:.2f}x folded), peak RSS {rss:.0f} MB, output {os.path.getsize(out) / 1024:.0f} KB")


if __name__ == "__main__":
    main()

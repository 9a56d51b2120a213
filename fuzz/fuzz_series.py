"""Fuzz the CPU series reader (tracebridge/cputime/series.py, compare.py): CSV runs given to cpu compare."""

from __future__ import annotations

from _harness import DATA, ROOT, SCRATCH, Target, check_cli, main, scratch


def seeds() -> list[bytes]:
    """A recorded run (psutil: user and system shares) and an imported top capture (totals only)."""
    imported = SCRATCH / "imported.csv"
    check_cli(["cpu", "import", str(DATA / "top" / "top-bzSHCP-iperf.txt"), "-o", str(imported)])
    return [(ROOT / "examples" / "run" / "cpu.csv").read_bytes(), imported.read_bytes()]


def check(data: bytes) -> None:
    path = scratch("run.csv", data)
    check_cli(["cpu", "compare", path, "-f", "csv"])
    check_cli(["cpu", "compare", path, "-o", str(SCRATCH / "chart.svg")])


TARGET = Target("series", seeds, check)

if __name__ == "__main__":
    main(TARGET)

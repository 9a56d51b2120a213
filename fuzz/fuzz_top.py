"""Fuzz the top capture reader (tracebridge/cputime/top.py): cpu import and cpu compare."""

from __future__ import annotations

from _harness import DATA, SCRATCH, Target, check_cli, files, main, scratch


def check(data: bytes) -> None:
    path = scratch("top.txt", data)
    check_cli(["cpu", "import", path, "-o", str(SCRATCH / "run.csv")])
    check_cli(["cpu", "compare", path, "-f", "csv"])


TARGET = Target("top", lambda: files(DATA / "top"), check)

if __name__ == "__main__":
    main(TARGET)

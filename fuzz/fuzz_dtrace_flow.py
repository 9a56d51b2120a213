"""Fuzz the DTrace flow reader (tracebridge/readers/dtrace_flow.py): dtrace -F output, forced and detected."""

from __future__ import annotations

from _harness import DATA, Target, check_cli, files, main, scratch


def check(data: bytes) -> None:
    path = scratch("flow.txt", data)
    check_cli(["fold", "--input-format", "dtrace-flow", path])
    check_cli(["fold", path])


TARGET = Target("dtrace_flow", lambda: files(DATA / "dtrace", "flow*.txt"), check)

if __name__ == "__main__":
    main(TARGET)

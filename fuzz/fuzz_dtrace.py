"""Fuzz the DTrace output reader (tracebridge/dtrace.py, dtrace_frames.py): fold (detected) and report (forced)."""

from __future__ import annotations

from _harness import DATA, Target, check_cli, files, main, scratch


def check(data: bytes) -> None:
    path = scratch("capture.txt", data)
    check_cli(["fold", path])
    check_cli(["report", "--input-format", "dtrace", "--format", "csv", path])


TARGET = Target("dtrace", lambda: files(DATA / "dtrace", "*.txt"), check)

if __name__ == "__main__":
    main(TARGET)

"""Fuzz the DTrace output reader (tracebridge/readers/dtrace.py, dtrace_frames.py): fold (detected) and report (forced)."""

from __future__ import annotations

from _harness import DATA, MODULES, Target, check_cli, files, main, scratch

#: The module and load address the FreeBSD seed captures were made with: hex frames resolve.
MODULE = ["--module", str(MODULES / "rem_legacy_fp.ko"), "--base", "ffffffff82e1c000"]


def check(data: bytes) -> None:
    path = scratch("capture.txt", data)
    check_cli(["fold", path, *MODULE])
    check_cli(["report", "--input-format", "dtrace", "--format", "csv", path])


TARGET = Target("dtrace", lambda: files(DATA / "dtrace", "*.txt"), check)

if __name__ == "__main__":
    main(TARGET)

"""Fuzz the DTrace output reader (tracebridge/readers/dtrace.py, dtrace_frames.py, dtrace_scan.py and the
native scanner src/native/dtrace_scan.h): fold (detected) on the native core and on pure Python, which must
give the same bytes, and report (forced)."""

from __future__ import annotations

from _harness import DATA, MODULES, BrokenPromise, Target, check_cli, check_result, files, main, run_cli, scratch

from tracebridge.support import native

#: The module and load address the FreeBSD seed captures were made with: hex frames resolve.
MODULE = ["--module", str(MODULES / "rem_legacy_fp.ko"), "--base", "ffffffff82e1c000"]


def check(data: bytes) -> None:
    path = scratch("capture.txt", data)
    fold = ["fold", path, *MODULE]
    ours = run_cli(fold)  # the native scanner when the core is built
    check_result(ours[0], ours[2])
    core, native.core = native.core, None
    try:
        pure = run_cli(fold) if core is not None else ours
    finally:
        native.core = core
    if pure != ours:
        raise BrokenPromise(f"native and pure-Python fold differ: {ours!r:.1000} against {pure!r:.1000}")
    check_cli(["report", "--input-format", "dtrace", "--format", "csv", path])


TARGET = Target("dtrace", lambda: files(DATA / "dtrace", "*.txt"), check)

if __name__ == "__main__":
    main(TARGET)

"""Fuzz the raw hwpmc log reader (tracebridge/readers/pmclog.py): pmc resolve and symmap --pmclog.

With the native core built, ``pmc resolve`` (whose callchains the native scanner
src/native/callchain_scan.h reads) must print the same bytes on the pure-Python paths.
"""

from __future__ import annotations

from _harness import MODULES, Target, check_cli, check_native_agrees, from_tests, main, scratch
from fuzz_pmcstat import RESOLVE


def seeds() -> list[bytes]:
    log = from_tests("readers", "test_pmclog")
    return [log.binary_log("<"), log.binary_log(">")]


def check(data: bytes) -> None:
    path = scratch("pmc.log", data)
    check_cli(["pmc", "resolve", path, *RESOLVE])
    check_native_agrees(["pmc", "resolve", path, *RESOLVE])
    check_cli(["symmap", str(MODULES / "rem_legacy_fp.ko"), "--pmclog", path])


TARGET = Target("pmclog", seeds, check)

if __name__ == "__main__":
    main(TARGET)

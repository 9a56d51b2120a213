"""Fuzz the pmcstat text readers (tracebridge/readers/pmcstat.py, pmcgraph.py): -o record logs and -G callgraphs."""

from __future__ import annotations

from _harness import DATA, MODULES, Target, check_cli, files, from_tests, main, scratch

RESOLVE = ["-m", str(MODULES / "rem_legacy_fp.ko"), "--kernel", str(DATA / "pmcstat" / "kernel"), "-q"]


def seeds() -> list[bytes]:
    return [from_tests("readers", "test_pmclog").text_log().encode()] + files(DATA / "pmcstat", "*.graph")


def check(data: bytes) -> None:
    path = scratch("pmcstat.txt", data)
    check_cli(["pmc", "resolve", path, *RESOLVE])
    check_cli(["fold", path])


TARGET = Target("pmcstat", seeds, check)

if __name__ == "__main__":
    main(TARGET)

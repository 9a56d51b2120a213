"""Every fuzz target's check (fuzz/fuzz_*.py) on hypothesis-mutated seeds, in the normal suite.

The mutations are the classes of bad input the hardening promise names:
truncation mid-record, NUL bytes, CRLF and stray carriage returns, bytes
that are not UTF-8, long lines, hostile text (comment ends, quotes, markup,
newlines), byte flips, repeated and deleted ranges, and another parser's
seed.  The long runs (minutes each) are ``fuzz/run_all.sh``; here each target
gets a moderate number of examples so the suite stays fast.
"""

from __future__ import annotations

import importlib
import re
import sys
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parents[2] / "fuzz"))

#: Target name -> examples per run (the ELF and top targets cost most per example).
TARGETS = {"elf": 25, "demangle": 300, "dtrace": 40, "dtrace_flow": 40, "folded": 30, "pmcstat": 30,
           "pmclog": 30, "kldstat": 40, "top": 15, "probemap": 40, "bundle": 30, "series": 15,
           "dwarf": 25}

HOSTILE = [b"\0", b"\r", b"\r\n", b"\n", b"\xff\xfe", b"\xc3", b"*/", b'"', b"<script>alert(1)</script>",
           b"`", b";", b"\\", b" 12345678901234567890", b"0x", b"\t", b"-1", b"\xe2\x96\x88", b"%s%n"]


@cache
def target(name: str):
    return importlib.import_module(f"fuzz_{name}").TARGET


@cache
def seeds(name: str) -> tuple[bytes, ...]:
    return tuple(target(name).seeds())


@st.composite
def mutated(draw, name: str) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds(name))))
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["truncate", "insert", "flip", "repeat", "delete", "crlf", "long", "foreign"]))
        at = draw(st.integers(0, len(data)))
        if kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from(HOSTILE))
        elif kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "repeat":
            data[at:at] = data[at:at + draw(st.integers(1, 4096))] * draw(st.integers(2, 50))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 4096))]
        elif kind == "crlf":
            data = bytearray(bytes(data).replace(b"\n", b"\r\n"))
        elif kind == "long":
            data[at:at] = draw(st.sampled_from([b"A", b"x;", b"kernel`f+0x1 ", b"9"])) * draw(st.integers(1000, 300_000))
        elif kind == "foreign":
            other = draw(st.sampled_from(sorted(set(TARGETS) - {name, "demangle"})))
            data[at:at] = draw(st.sampled_from(seeds(other)))[: draw(st.integers(1, 2000))]
    return bytes(data)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_keep_the_promise(name):
    for seed in seeds(name):
        target(name).check(seed)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_mutated_inputs_keep_the_promise(name):
    @settings(max_examples=TARGETS[name], deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutated(name))
    def check(data):
        target(name).check(data)

    check()


def test_targets_import_no_module_with_hypothesis_tests():
    """A target's check runs inside @given above; a module it imports that defines @given tests fails
    hypothesis' nested-@given health check when the target runs alone (before pytest imported that module)."""
    fuzz = Path(__file__).parents[2] / "fuzz"
    imported = [(folder, module) for path in sorted(fuzz.glob("fuzz_*.py"))
                for folder, module in re.findall(r'from_tests\("(\w+)", "(\w+)"\)', path.read_text())]
    assert ("readers", "scanner_twins") in imported
    for folder, module in imported:
        source = (fuzz.parent / "tests" / folder / f"{module}.py").read_text()
        assert not re.search(r"^\s*@(hypothesis\.)?given\b", source, re.MULTILINE), module

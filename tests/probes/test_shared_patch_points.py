"""Symbols whose byte ranges overlap: found as columns, scanned once, and the same answers whatever is asked.

:func:`tracebridge.probes.fbt._overlap_groups` is checked against the plain
definition (connected groups of overlapping ranges, found pair by pair) on
made-up functions, hostile sizes that pass 2**64 included; the predictor,
which answers for overlapping symbols from what it scanned when it was made,
gives every function of every committed module the same probes asked all
at once, one by one or in reverse, on the native and the pure-Python paths.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fixture_paths import EDGE, MODULE_NAMES, MODULES
from tracebridge.image.elf import Function, open_module
from tracebridge.probes.fbt import FbtOptions, Predictor, _overlap_groups


def overlapping(functions: list[Function]) -> list[list[Function]]:
    """:func:`_overlap_groups`' groups as lists of functions (given in (offset, symbol index) order, as
    ``ModuleImage.functions_by_offset`` holds them); each member's symbol index checked on the way."""
    functions = sorted(functions, key=lambda f: (f.offset, f.symbol_index))
    members, indices, starts = _overlap_groups(functions)
    assert indices == [functions[at].symbol_index for at in members]
    return [[functions[at] for at in members[start:end]] for start, end in zip(starts, [*starts[1:], len(members)])]


def pairwise_groups(functions: list[Function]) -> list[list[Function]]:
    """Groups of two or more functions joined by overlapping ranges, found pair by pair (the definition)."""
    sized = [f for f in functions if f.size]
    group = list(range(len(sized)))

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    for i, a in enumerate(sized):
        for j, b in enumerate(sized[:i]):
            if a.offset < b.offset + b.size and b.offset < a.offset + a.size:
                group[root(i)] = root(j)
    members: dict[int, list[Function]] = {}
    for i, function in enumerate(sized):
        members.setdefault(root(i), []).append(function)
    key = lambda f: (f.offset, f.symbol_index)  # noqa: E731
    return sorted((sorted(m, key=key) for m in members.values() if len(m) > 1), key=lambda m: key(m[0]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 64) | st.integers(2**64 - 70, 2**64 - 1),
                          st.integers(0, 24) | st.integers(2**63, 2**64 - 1)), max_size=30))
# Two one-byte functions side by side, at the start: the first one's last byte is 0, the second starts after it.
@example(ranges=[(0, 1), (1, 1)])
def test_groups_are_the_pairwise_definition(each_path, ranges):
    functions = [Function(index, f"f{index}", ".text", 1, offset, size, "LOCAL", "FUNC", offset)
                 for index, (offset, size) in enumerate(ranges)]
    assert overlapping(functions) == pairwise_groups(functions)


def test_no_function_or_one():
    one = Function(1, "f", ".text", 1, 0, 8, "LOCAL", "FUNC", 0)
    assert overlapping([]) == [] and overlapping([one]) == [] and overlapping([one, one]) == [[one, one]]


@pytest.mark.parametrize("path", [*(MODULES / f"{name}.ko" for name in MODULE_NAMES), EDGE / "edges_amd64.ko",
                                  EDGE / "edges_shared_amd64.ko"], ids=lambda path: path.name)
@pytest.mark.parametrize("path_kind", ["native", "pure"])
@pytest.mark.parametrize("tracenext", [True, False])
def test_same_probes_however_asked(request, path, path_kind, tracenext):
    if path_kind == "pure":
        request.getfixturevalue("pure_python")
    image = open_module(path)
    functions = image.functions_by_offset
    predictor = Predictor(image, image.modname, FbtOptions(tracenext=tracenext))
    together = predictor.scan(functions)
    assert [predictor.scan([f])[0] for f in functions] == together
    assert predictor.scan(functions[::-1]) == together[::-1]
    # Every amd64 module here has symbols that share their bytes (LLVM's merged instances, edge cases).
    assert overlapping(image.functions) or image.machine != "amd64"


@pytest.mark.parametrize("path", [*(MODULES / f"{name}.ko" for name in MODULE_NAMES), EDGE / "edges_amd64.ko",
                                  EDGE / "edges_shared_amd64.ko"], ids=lambda path: path.name)
def test_groups_of_every_module_are_the_pairwise_definition(each_path, path):
    """The groups found in one pass over a real module's functions by offset, on both paths."""
    image = open_module(path)
    assert overlapping(image.functions_by_offset) == pairwise_groups(image.functions)


@pytest.mark.parametrize("path", [EDGE / "edges_shared_amd64.ko", MODULES / "rem_legacy_fp.ko"], ids=lambda p: p.name)
def test_each_function_alone_asks_for_its_own_group(each_path, path):
    """A fresh predictor asked for one function answers it with its own group (each process of a split
    scans only the groups its half asks for): the same probes as all functions asked at once."""
    image = open_module(path)
    functions = image.functions_by_offset
    together = Predictor(image, image.modname).scan(functions)
    assert [Predictor(image, image.modname).scan([f])[0] for f in functions] == together
    assert len(Predictor(image, image.modname)._cluster_of) >= 2  # symbols in groups: each is asked alone

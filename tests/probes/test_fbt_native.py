"""The native amd64 walk gives exactly the pure-Python walk's answers.

The length decoder is checked instruction by instruction against iced-x86
(the pure-Python walk's decoder) on every function of every committed module
and on generated encodings; whole predictions are compared on every module,
with and without a load address, and on generated code with a jump-table test.
``benchmarks/bench_native.py`` runs the same instruction check
(:mod:`x86_lengths`) on the toolchain's librustc_driver (14 million
instructions), too slow for the suite.
"""

from __future__ import annotations

import random
from array import array

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fixture_paths import MODULE_NAMES, MODULES
from tracebridge.image.elf import open_module
from tracebridge.probes import fbt_isa
from tracebridge.probes.fbt import FbtOptions, Predictor
from tracebridge.support import native
from x86_lengths import check_every_instruction, iced_length

PREFIXES = [0x66, 0x67, 0xF2, 0xF3, 0xF0, 0x2E, 0x3E, 0x26, 0x64, 0x65, 0x36, 0x40, 0x41, 0x48, 0x4C, 0x4F]


@pytest.mark.parametrize("name", [n for n in MODULE_NAMES if "arm64" not in n and "i386" not in n])
def test_lengths_match_iced_on_every_function(native_core, name):
    image = open_module(MODULES / f"{name}.ko")
    compared = sum(check_every_instruction(native_core, image.code(f)) for f in image.functions)
    assert compared > 500


@st.composite
def encodings(draw):
    prefixes = draw(st.lists(st.sampled_from(PREFIXES), max_size=15))
    escape = draw(st.sampled_from([b"", b"", b"\x0f", b"\x0f\x38", b"\x0f\x3a"]))
    return bytes(prefixes) + escape + draw(st.binary(min_size=20, max_size=20))


@settings(max_examples=300, deadline=None)
@given(encodings())
def test_lengths_match_iced_on_generated_encodings(native_core, code):
    ours = native_core.x86_length(code)
    assert ours == -1 or ours == iced_length(code)


def test_lengths_match_iced_on_random_encodings(native_core):
    """Many more encodings than hypothesis can draw in a second: prefixes, escapes, random bytes."""
    rng = random.Random(13)
    decided = 0
    for _ in range(20_000):
        code = (bytes(rng.choice(PREFIXES) for _ in range(rng.choice((0, 0, 0, 1, 1, 2, 3, 14, 15))))
                + rng.choice((b"", b"", b"\x0f", b"\x0f\x38", b"\x0f\x3a")) + rng.randbytes(20))
        ours = native_core.x86_length(code)
        if ours != -1:
            assert ours == iced_length(code), code.hex()
            decided += 1
    assert decided > 15_000


def test_vex_x87_and_system_lengths_match_iced_on_random_encodings(native_core):
    """VEX (two- and three-byte, every map, pp, L, W, vvvv), x87 and ``0f 01`` register forms (valid for
    some rm values only), behind no prefix, a segment or 67 (decided) or a prefix iced refuses before a
    VEX (left to iced): each decided length is iced-x86's."""
    rng = random.Random(13)
    decided = 0
    for _ in range(20_000):
        head = rng.choice((b"", b"", b"", b"\x2e", b"\x67", b"\x66", b"\xf3", b"\x48", b"\xf0"))
        escape = rng.choice((b"\xc5", b"\xc4", bytes([rng.randrange(0xD8, 0xE0)]), b"\x0f\x01"))
        if escape == b"\xc4":
            escape += bytes([rng.choice((0, 0xE0, 0x60)) | rng.randrange(0, 5)])
        code = head + escape + rng.randbytes(20)
        ours = native_core.x86_length(code)
        if ours != -1:
            assert ours == iced_length(code), code.hex()
            decided += 1
    assert decided > 12_000


def predictions(name: str, base: int | None) -> list:
    image = open_module(MODULES / f"{name}.ko")
    return Predictor(image, image.modname, FbtOptions(base=base)).scan(image.functions)


@pytest.mark.parametrize("base", [None, 0xFFFFFFFF82000000])
def test_predictions_identical_on_every_module(native_core, module_name, base, monkeypatch):
    ours = predictions(module_name, base)
    monkeypatch.setattr(native, "core", None)
    assert ours == predictions(module_name, base)


#: Bytes that make FBT's decisions: push, ret, rep ret, ret imm16, VEX, invalid, x87, and two encodings the
#: native tables leave to iced-x86 (a move from %cr0, an EVEX move).
INTERESTING = [b"\x55", b"\xc3", b"\xf3\xc3", b"\xc2\x08\x00", b"\xc5\xf8\x77", b"\x06", b"\xd9\xc0",
               b"\x48\x89\xe5", b"\x41\x55", b"\xb8\xc3\x55\x00\x00", b"\xe8\x00\x00\x00\x00", b"\x0f\x0b",
               b"\x0f\x20\xc0", b"\x62\xf1\x7c\x08\x28\xc1"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.one_of(st.sampled_from(INTERESTING), st.binary(max_size=6)), max_size=12)
                .map(b"".join), min_size=1, max_size=6),
       st.sets(st.integers(0, 80), max_size=6))
# push %rbp; mov %rsp,%rbp; vzeroupper; pop %rbp; ret (how AVX code returns), and the same with a move from
# %cr0 instead, which hands the function back to iced-x86: the window at 1 drops the ret.
@example(functions=[b"\x55\x48\x89\xe5\xc5\xf8\x77\x5d\xc3", b"\x55\x48\x89\xe5\x0f\x20\xc0\x5d\xc3"],
         pointer_windows={1})
# The same move from %cr0 first, where the window test is given: iced-x86's walk of it applies the test too.
@example(functions=[b"\x55\x48\x89\xe5\x0f\x20\xc0\x5d\xc3"], pointer_windows={1})
# push %rbp; ret nine bytes into the buffer, tested: no window of 8 bytes fits in the function, so none is
# asked about (windows are bounded by the function's size, not by where it ends in the buffer).
@example(functions=[b"\x90" * 8, b"\x90", b"\x55\xc3"], pointer_windows={1})
def test_batch_walk_matches_one_by_one(each_path, functions, pointer_windows):
    """Several functions in one buffer, with a jump-table test: the same answers as scan_amd64 each, on
    both paths (the columns given as bytes, or as arrays)."""
    data = b"".join(functions)
    spans, at = [], 0
    for code in functions:
        spans.append((at, at + len(code)))
        at += len(code)
    tests = [lambda check: check in pointer_windows, None]
    expected = [fbt_isa.scan_amd64(data[s:e], tests[i % 2]) if e > s else fbt_isa.FbtProbes(None, (), fbt_isa.NO_FRAME_POINTER)
                for i, (s, e) in enumerate(spans)]
    starts, lengths = array("q", [s for s, _ in spans]), array("q", [e - s for s, e in spans])
    assert fbt_isa.scan_amd64_many(data, starts, lengths, lambda i: tests[i % 2]) == expected
    # Without any test (no window can point anywhere): the answers of scan_amd64 without one.
    assert fbt_isa.scan_amd64_many(data, starts.tobytes(), lengths.tobytes(), None) == [
        fbt_isa.scan_amd64(data[s:e]) if e > s else fbt_isa.FbtProbes(None, (), fbt_isa.NO_FRAME_POINTER)
        for s, e in spans]


def test_hostile_lengths_do_not_read_past_the_buffer(native_core):
    """Fifteen prefixes and more, at the very end of a function: zeros are read past it, nothing more."""
    for code in (bytes([0x66] * 15), bytes([0x66] * 14) + b"\x0f", b"\x55" + bytes([0xF0] * 40) + b"\xc3"):
        starts, sizes = array("q", [0]), array("q", [len(code)])
        entries, _, _ = native_core.fbt_amd64(code, starts, sizes)
        assert memoryview(entries).cast("q")[0] in (0, -1, -2)

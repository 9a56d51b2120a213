"""Property tests: any corruption of a real module gives a result or an InputError, never a crash."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixture_paths import MODULES
from tracebridge.image.demangle import demangle_all
from tracebridge.support.errors import InputError
from tracebridge.image.elf import open_module
from tracebridge.probes.fbt import Predictor
from tracebridge.support import native

SEEDS = {name: (MODULES / f"{name}.ko").read_bytes()
         for name in ("rem_legacy_fp", "rem_legacy_fp_merged", "rem_i386", "rem_arm64")}


def check(tmp_path, data: bytes) -> None:
    path = tmp_path / "fuzz.ko"
    path.write_bytes(data)
    try:
        image = open_module(path)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    check_reading_paths(path, image)
    demangle_all([f.name for f in image.functions])
    for function in image.functions[:50]:
        image.code(function)
    assert image.size >= 0
    if image.machine == "amd64":
        check_fbt_paths(image)
    image.close()


def check_reading_paths(path, image) -> None:
    """The native names and records (when built) and the pure-Python ones agree on corrupt modules too."""
    core = native.core
    native.core = None
    try:
        assert open_module(path).functions == image.functions
    finally:
        native.core = core


def check_fbt_paths(image) -> None:
    """The native FBT walk (when built) and the pure-Python one agree on corrupt modules too."""
    core = native.core
    try:
        ours = Predictor(image, image.modname).scan(image.functions)
    except InputError:
        return
    native.core = None
    try:
        assert ours == Predictor(image, image.modname).scan(image.functions)
    finally:
        native.core = core


@st.composite
def corrupted(draw):
    seed = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[seed])
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["byte", "word", "header", "truncate"]))
        if kind == "truncate":
            del data[draw(st.integers(0, len(data))):]
            continue
        if not data:
            break
        if kind == "header":
            # Aim at the ELF and section headers, where corruption hurts most.
            shoff = struct.unpack_from("<Q", data, 0x28)[0] if len(data) > 0x30 and data[4] == 2 else 0
            region = draw(st.sampled_from([(0, 64), (shoff, shoff + 64 * 40)]))
            pos = draw(st.integers(min(region[0], len(data) - 1), max(0, min(region[1], len(data)) - 1)))
        else:
            pos = draw(st.integers(0, len(data) - 1))
        width = 1 if kind == "byte" else 4
        value = draw(st.sampled_from([0, 0xFF, 0xFFFFFFFF, 0x7FFFFFFF, draw(st.integers(0, 2**32 - 1))]))
        chunk = value.to_bytes(4, "little")[:width]
        data[pos:pos + width] = chunk[: max(0, len(data) - pos)]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(corrupted())
def test_corrupted_modules_never_crash(tmp_path, data):
    check(tmp_path, data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=512))
def test_random_bytes_never_crash(tmp_path, data):
    check(tmp_path, b"\x7fELF" + data)

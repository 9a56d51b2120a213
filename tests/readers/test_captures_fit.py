"""The made-up captures the tests read fit their modules: joined right, they trip no consistency warning.

Their stacks are invented, their module PCs real (tests/real_pcs.py): a leaf
on an instruction start, a caller after a call.  A warning here would mean
either a capture that no real run could print or a check that cries wolf.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest

from fixture_paths import MODULES
from tracebridge.cli import main

DATA = Path(__file__).parents[1] / "data" / "dtrace"
BASE = 0xFFFFFFFF82E1C000
CAPTURES = ["freebsd-stack-hex.txt", "freebsd-traced-header.txt", "freebsd-traced-arg0.txt", "freebsd-hex-only.txt"]


@pytest.fixture
def if_rem(tmp_path):
    path = tmp_path / "if_rem.ko"
    shutil.copy(MODULES / "rem_legacy_fp.ko", path)
    return path


def checked(err: str, what: str) -> tuple[int, int]:
    """(passed, seen) of one check in the -v summary."""
    found = re.search(rf"(\d+) of (\d+) {what}", err)
    assert found, err
    return int(found[1]), int(found[2])


@pytest.mark.parametrize("capture", CAPTURES)
def test_freebsd_capture_fits_its_module(capsys, if_rem, capture):
    assert main(["fold", str(DATA / capture), "--module", str(if_rem), "--base", f"{BASE:x}", "--strict", "-v"]) == 0
    err = capsys.readouterr().err
    assert "warning" not in err and "does not fit" not in err, err
    for what in ("caller frames after a call", "leaf PCs on instruction starts", "addresses in functions"):
        passed, seen = checked(err, what)
        assert passed == seen and seen >= 4, (what, err)


@pytest.mark.parametrize("capture", CAPTURES)
def test_the_same_capture_at_another_base_does_not_fit(capsys, if_rem, capture):
    """The evidence is there to see: moved by 0x10, the same PCs trip the warning."""
    assert main(["fold", str(DATA / capture), "--module", str(if_rem), "--base", f"{BASE + 0x10:x}"]) == 0
    assert "the capture does not fit if_rem.ko" in capsys.readouterr().err


def test_captures_are_what_their_generator_writes():
    spec = importlib.util.spec_from_file_location("make_freebsd_captures", DATA / "make_freebsd_captures.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.main(["--check"]) == 0

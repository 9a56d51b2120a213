"""Expected frame names from tools other than tracebridge: rustfilt and readelf text.

``*.truth`` files list each stack of a capture as the original symbols,
root first, one line per stack: ``COUNT<TAB>sym<TAB>sym...``.  The expected
names are what /usr/bin/rustfilt prints for them (rustc-demangle itself);
without rustfilt, the fixtures' saved ``*.rustfilt.txt`` listings are used
and symbols missing there make the test skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import readelf_text
from fixture_paths import EXPECTED

DATA = Path(__file__).parent.parent / "data" / "dtrace"
RUSTFILT = shutil.which("rustfilt")


def saved_rustfilt() -> dict[str, str]:
    names: dict[str, str] = {}
    for path in EXPECTED.glob("*.rustfilt.txt"):
        for line in path.read_text().splitlines():
            mangled, _, demangled = line.partition("\t")
            names[mangled] = demangled
    return names


def rustfilt_lines(lines: list[str]) -> list[str]:
    if RUSTFILT:
        out = subprocess.run([RUSTFILT], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
        return out.stdout.splitlines()
    names = saved_rustfilt()
    result = []
    for line in lines:
        fields = line.split("\t")
        for i, field in enumerate(fields):
            if field.startswith(("_ZN", "_R")):
                if field not in names:
                    pytest.skip(f"rustfilt is not installed and {field} is not in the saved listings")
                fields[i] = names[field]
        result.append("\t".join(fields))
    return result


def truth_stacks(name: str) -> dict[tuple[str, ...], int]:
    lines = (DATA / name).read_text().splitlines()
    stacks: dict[tuple[str, ...], int] = {}
    for line in rustfilt_lines(lines):
        count, *frames = line.split("\t")
        stacks[tuple(frames)] = stacks.get(tuple(frames), 0) + int(count)
    return stacks


class ReadelfModule:
    """Addresses -> rustfilt names for a fixture module at a load address, from readelf text only."""

    def __init__(self, module: str, base: int):
        secs = readelf_text.sections(EXPECTED / f"{module}.readelf-S.txt")
        placed, self.size = readelf_text.kernel_layout(secs)
        names = saved_rustfilt()
        self.base = base
        self.ranges = []
        for sym in readelf_text.symbols(EXPECTED / f"{module}.readelf-s.txt"):
            if sym.type == "FUNC" and sym.ndx.isdigit() and int(sym.ndx) in placed and sym.size:
                start = base + placed[int(sym.ndx)] + sym.value
                self.ranges.append((start, start + sym.size, names.get(sym.name, sym.name)))

    def name(self, address: int) -> str | None:
        for start, end, name in self.ranges:
            if start <= address < end:
                return name
        return None

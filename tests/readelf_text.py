"""Parse GNU readelf's text output: the independent view the tests compare against.

Nothing here uses tracebridge, pyelftools or numpy: the point is a second,
unrelated reading of the same file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_SECTION = re.compile(
    r"^\s*\[\s*(\d+)\]\s+(\S*)\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([A-Za-z]*)\s+"
    r"(\d+)\s+(\d+)\s+(\d+)\s*$")
_SYMBOL = re.compile(r"^\s*(\d+):\s+([0-9a-f]+)\s+(\d+|0x[0-9a-f]+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*(.*)$")


@dataclass
class ReadelfSection:
    index: int
    name: str
    type: str
    addr: int
    size: int
    flags: str
    align: int


@dataclass
class ReadelfSymbol:
    index: int
    value: int
    size: int
    type: str
    bind: str
    ndx: str
    name: str
    vis: str = "DEFAULT"


def sections(path: Path) -> list[ReadelfSection]:
    out = []
    for line in path.read_text().splitlines():
        m = _SECTION.match(line)
        if m:
            out.append(ReadelfSection(int(m[1]), m[2], m[3], int(m[4], 16), int(m[6], 16), m[8], int(m[11])))
    return out


def symbols(path: Path, table: str = ".symtab") -> list[ReadelfSymbol]:
    out = []
    in_symtab = False
    for line in path.read_text().splitlines():
        if line.startswith("Symbol table"):
            in_symtab = f"'{table}'" in line
            continue
        m = _SYMBOL.match(line)
        if m and in_symtab:
            size = int(m[3], 16) if m[3].startswith("0x") else int(m[3])
            out.append(ReadelfSymbol(int(m[1]), int(m[2], 16), size, m[4], m[5], m[7], m[8], m[6]))
    return out


def kernel_layout(secs: list[ReadelfSection], machine: str = "amd64") -> tuple[dict[int, int], int]:
    """The kernel linker's placement, computed from readelf's text (freebsd-facts §2)."""
    types = {"PROGBITS", "NOBITS", "INIT_ARRAY", "FINI_ARRAY"}
    if machine == "amd64":
        types.add("X86_64_UNWIND")
    placed: dict[int, int] = {}
    pos = 0
    for s in secs:
        if s.size and s.type in types and "A" in s.flags:
            align = max(s.align, 1)
            pos = -(-pos // align) * align
            placed[s.index] = pos
            pos += s.size
    return placed, pos

"""GNU objdump's disassembly listings (tests/fixtures/expected/*.objdump.txt, ``objdump -d -w``), parsed.

Like readelf_text.py: an independent tool's view of a fixture, read without
tracebridge, for tests to compare tracebridge's decoding and layout with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_SECTION = re.compile(r"^Disassembly of section (.*):$")
_INSN = re.compile(r"^\s*([0-9a-f]+):\t([0-9a-f ]+?)\s*\t(.*)$")


@dataclass
class Insn:
    address: int
    raw: bytes
    text: str

    @property
    def bad(self) -> bool:
        return self.text.startswith("(bad)")


def disassembly(path: Path, machine: str) -> dict[str, list[Insn]]:
    """Instructions per section, in address order (a word per line on arm64)."""
    sections: dict[str, list[Insn]] = {}
    current = None
    for line in path.read_text().splitlines():
        m = _SECTION.match(line)
        if m:
            current = sections.setdefault(m.group(1), [])
            continue
        m = _INSN.match(line)
        if m and current is not None:
            field = m.group(2).split()
            if machine == "arm64":
                raw = int(field[0], 16).to_bytes(4, "little")
            else:
                raw = bytes(int(b, 16) for b in field)
            current.append(Insn(int(m.group(1), 16), raw, m.group(3)))
    for insns in sections.values():
        insns.sort(key=lambda i: i.address)
    return sections

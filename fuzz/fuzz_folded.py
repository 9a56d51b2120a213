"""Fuzz the folded-stack reader (tracebridge/readers/folded.py) and the SVG it feeds: names must not escape into markup."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from _harness import DATA, SCRATCH, BrokenPromise, Target, check_cli, files, main, scratch


def seeds() -> list[bytes]:
    return files(DATA / "pmcstat", "*.folded") + [
        b"root;<script>alert(1)</script>;a\\;b 3\nroot;\"q\" */;x&y 2\n",
    ]


def check(data: bytes) -> None:
    path = scratch("stacks.folded", data)
    svg = SCRATCH / "out.svg"
    if check_cli(["flamegraph", "--input-format", "folded", path, "-o", str(svg)]) == 0:
        try:
            root = ET.parse(svg).getroot()
        except ET.ParseError as exc:
            raise BrokenPromise(f"the SVG is not well-formed XML: {exc}") from None
        scripts = root.findall(".//{http://www.w3.org/2000/svg}script")
        if len(scripts) != 1:
            raise BrokenPromise(f"the SVG holds {len(scripts)} script elements, not tracebridge's one")
    check_cli(["fold", path])


TARGET = Target("folded", seeds, check)

if __name__ == "__main__":
    main(TARGET)

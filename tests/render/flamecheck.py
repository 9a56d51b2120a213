"""Helpers for the rendering tests: sample profiles, SVG frames as records, an obvious reference layout."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from tracebridge.profile.model import Frame, Profile, address_frame, symbol_frame

SVG = "{http://www.w3.org/2000/svg}"
RX_FRAME = "_ZN6if_rem2rx8rx_frame17h0123456789abcdefE"


def kernel(name: str) -> Frame:
    return symbol_frame("kernel", name)


def module(name: str, where: str = "if_em.ko") -> Frame:
    return symbol_frame(where, name)


def rust(symbol: str = RX_FRAME) -> Frame:
    return symbol_frame("if_rem.ko", symbol)


def driver_profile() -> Profile:
    """Interrupt thread -> Rust rx path (with m_free below it), the C driver, an unresolved address."""
    profile = Profile()
    base = [kernel("fork_exit"), kernel("ithread_loop")]
    profile.add(base + [rust()], 50)
    profile.add(base + [rust(), kernel("m_free")], 30)
    profile.add(base + [module("em_rxeof")], 40)
    profile.add([kernel("fork_exit"), address_frame("kernel", 0xFFFFFFFF80A0B0C0)], 10)
    return profile


def folded_profile(text: str) -> Profile:
    """A profile from ``a;b;c N`` lines, every frame a kernel C function."""
    profile = Profile()
    for line in text.strip().splitlines():
        stack, count = line.rsplit(" ", 1)
        profile.add([kernel(name) for name in stack.split(";")], float(count))
    return profile


@dataclass
class Drawn:
    """One frame as the SVG draws it."""

    element: ET.Element
    title: str
    x: float
    w: float
    depth: int
    css: str
    fill: str
    y: float
    rect_x: str
    rect_width: str
    label: str | None

    @property
    def name(self) -> str:
        return self.title.split("\n")[0]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode("utf-8"))


def drawn(svg: str) -> list[Drawn]:
    frames = []
    for g in parse(svg).iter(SVG + "g"):
        rect = g.find(SVG + "rect")
        text = g.find(SVG + "text")
        frames.append(Drawn(g, g.find(SVG + "title").text, float(g.get("data-x")), float(g.get("data-w")),
                            int(g.get("data-d")), g.get("class"), rect.get("fill"), float(rect.get("y")),
                            rect.get("x"), rect.get("width"), None if text is None else text.text))
    return frames


def by_name(frames: list[Drawn]) -> dict[str, Drawn]:
    return {f.name: f for f in frames}


def reference_layout(profile: Profile) -> set[tuple[int, str, float, float]]:
    """(depth, name, x, width) of every node, laid out the obvious recursive way (flamegraph.pl's rules)."""
    root: dict = {"total": 0.0, "own": 0.0, "children": {}}
    for frames, weight in profile:
        node = root
        node["total"] += weight
        for frame in frames:
            node = node["children"].setdefault(frame.name, {"total": 0.0, "own": 0.0, "children": {}})
            node["total"] += weight
        node["own"] += weight
    nodes = set()

    def walk(name: str, node: dict, x: float, depth: int) -> None:
        nodes.add((depth, name, x, node["total"]))
        child_x = x + node["own"]
        for child_name in sorted(node["children"]):
            child = node["children"][child_name]
            walk(child_name, child, child_x, depth + 1)
            child_x += child["total"]

    walk("all", root, 0.0, 0)
    return nodes


def contrast_with_black(fill: str) -> float:
    """WCAG 2 contrast ratio of black text (the graphs' labels) on an ``rgb(r,g,b)`` fill."""
    def linear(channel: str) -> float:
        c = int(channel) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = map(linear, re.fullmatch(r"rgb\((\d+),(\d+),(\d+)\)", fill).groups())
    return (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05) / 0.05

"""Frame colours: what kind of code a frame is, at a glance, and the same colour every run.

The default ``rust`` palette answers the question tracebridge exists for,
"how much of this is the Rust module?": Rust frames in rust/orange hues, C
in the kernel in reds and C elsewhere (drivers, other modules) in yellows,
the way flamegraph.pl's multi-language palettes set languages apart, and
frames nothing could name (hex addresses) in grey.  The single-hue palettes
are flamegraph.pl's (``hot``, ``mem``, ``io`` and plain hues).

Shades within a hue come from a CRC of the demangled name, never from a
random generator or Python's salted ``hash``: the same function is the same
colour in every graph and the output is the same bytes for the same input.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

from tracebridge.profile.model import Frame

#: Fill of a frame the search matched.
HIGHLIGHT = "rgb(230,0,230)"
#: Fill of a node standing for elided narrow frames.
ELIDED_FILL = "rgb(200,200,200)"

Shade = tuple[float, float, float]
Hue = Callable[[Shade], tuple[int, int, int]]


def shade(name: str) -> Shade:
    """Three numbers in [0, 1] fixed by ``name``."""
    h = zlib.crc32(name.encode("utf-8", "surrogatepass"))
    return (h & 0xFF) / 255, ((h >> 8) & 0xFF) / 255, ((h >> 16) & 0xFF) / 255


HUES: dict[str, Hue] = {
    # flamegraph.pl's single hues, their darkest shades lifted so black text keeps 4.5:1 (WCAG AA).
    "hot": lambda v: (205 + int(50 * v[2]), 90 + int(140 * v[0]), int(55 * v[1])),
    "mem": lambda v: (0, 190 + int(50 * v[1]), int(210 * v[0])),
    "io": lambda v: (120 + int(60 * v[0]), 120 + int(60 * v[0]), 200 + int(55 * v[1])),
    "red": lambda v: (200 + int(55 * v[0]), 80 + int(70 * v[0]), 80 + int(70 * v[0])),
    "green": lambda v: (50 + int(60 * v[0]), 200 + int(55 * v[0]), 50 + int(60 * v[0])),
    "blue": lambda v: (120 + int(60 * v[0]), 120 + int(60 * v[0]), 205 + int(50 * v[0])),
    "yellow": lambda v: (175 + int(55 * v[0]), 175 + int(55 * v[0]), 50 + int(20 * v[0])),
    "purple": lambda v: (190 + int(65 * v[0]), 80 + int(60 * v[0]), 190 + int(65 * v[0])),
    "aqua": lambda v: (50 + int(60 * v[0]), 165 + int(55 * v[0]), 165 + int(55 * v[0])),
    "orange": lambda v: (190 + int(65 * v[0]), 90 + int(65 * v[0]), 0),
    # Rust's own colour (#b7410e) lightened to a clear orange that black text reads on.
    "rust": lambda v: (238 + int(17 * v[0]), 128 + int(40 * v[1]), 20 + int(30 * v[2])),
    # Kernel C leans to crimson and module C to yellow, so neither is taken for orange.
    "kernel": lambda v: (205 + int(40 * v[0]), 70 + int(40 * v[1]), 90 + int(35 * v[1])),
    "c": lambda v: (205 + int(30 * v[0]), 195 + int(35 * v[0]), 60 + int(40 * v[1])),
    # Native code of no known module (names read from folded text): a paler, greyer yellow.
    "native": lambda v: (215 + int(25 * v[0]), 210 + int(25 * v[0]), 150 + int(30 * v[1])),
    "unresolved": lambda v: (170 + int(35 * v[0]),) * 3,
}
# Inlined copies (--inline): flamegraph.pl's colour for `_[i]` frames.
HUES["inlined"] = HUES["aqua"]

#: Palette names for ``--colors``; ``rust`` picks a hue per kind of frame.
PALETTES = ("rust", "hot", "mem", "io", "red", "green", "blue", "yellow", "purple", "aqua", "orange")

#: Background gradient (top, bottom) per palette, as flamegraph.pl has them.
BACKGROUNDS = {"mem": ("#eeeeee", "#e0e0ff"), "io": ("#f8f8f8", "#e8e8e8")}
DEFAULT_BACKGROUND = ("#eeeeee", "#eeeeb0")

#: What each kind means, for the legend of the ``rust`` palette.
KINDS = {"rust": "Rust", "inlined": "inlined (DWARF)", "kernel": "C, kernel", "c": "C/C++, module",
         "native": "C/C++, module not known", "unresolved": "unresolved"}


def kind(frame: Frame) -> str:
    """``rust``, ``inlined``, ``kernel`` (C in the kernel proper), ``c`` (C in a module), ``native`` or ``unresolved``.

    ``native`` is C whose module nothing says (a name read from folded
    text): it may be the kernel's or a module's.
    """
    if not frame.resolved:
        return "unresolved"
    if frame.inlined:
        return "inlined"
    if frame.is_rust:
        return "rust"
    if frame.module is None:
        return "native"
    return "kernel" if frame.module == "kernel" else "c"


@dataclass(frozen=True)
class Palette:
    name: str

    def __post_init__(self) -> None:
        if self.name not in PALETTES:
            raise ValueError(f"unknown palette {self.name!r}")

    def hue_of(self, frame: Frame) -> str:
        """The hue name used for ``frame`` (unresolved frames are grey in every palette)."""
        frame_kind = kind(frame)
        if frame_kind == "unresolved" or self.name == "rust":
            return frame_kind
        return self.name

    def fill(self, frame: Frame) -> str:
        return rgb(HUES[self.hue_of(frame)](shade(frame.name)))

    @property
    def background(self) -> tuple[str, str]:
        return BACKGROUNDS.get(self.name, DEFAULT_BACKGROUND)


def legend_fill(hue: str) -> str:
    """A representative colour of ``hue`` for a legend swatch."""
    return rgb(HUES[hue]((0.5, 0.5, 0.5)))


def rgb(channels: tuple[int, int, int]) -> str:
    return "rgb({},{},{})".format(*channels)


#: Channel value of the strongest change: pure blue under black text reads
#: at a contrast of 2.4:1; from 100 up, both red and blue stay above 4.5:1 (WCAG AA).
DIFF_DARKEST = 100
#: Channel value of the smallest change (255 would be "same").
DIFF_LIGHTEST = 210


def diff_fill(delta: float, largest: float) -> str:
    """Red for growth, blue for shrinkage, white for none; saturation grows with |delta|/largest."""
    if largest <= 0 or delta == 0:
        return "rgb(255,255,255)"
    fade = DIFF_DARKEST + int((DIFF_LIGHTEST - DIFF_DARKEST) * (1 - min(abs(delta) / largest, 1.0)))
    return f"rgb(255,{fade},{fade})" if delta > 0 else f"rgb({fade},{fade},255)"

"""Interactive SVG flame graphs drawn by tracebridge itself, from any :class:`Profile`.

The SVG is complete without script: every frame is a ``<g>`` holding a
``<title>`` (the tooltip: demangled name, ``(inlined)`` for an inlined copy,
its source ``file:line`` when DWARF gave one, mangled symbol, module,
samples, percent), a ``<rect>`` and, when it fits, a label, so it also reads in
viewers that run no script.  A static script (``data/flamegraph.js``) adds
click-to-zoom, reset, search by regular expression or text with the share
of samples matched, and a details line; it reads names from the drawing and
holds none, so a hostile symbol can only ever be text.

Names are made safe once per distinct frame: control characters (invalid
in XML 1.0, or invisible) become ``\\xNN`` text and the five XML specials
become entities.  Positions are percentages of the frame area, with exact
sample counts in ``data-x``/``data-w`` for the script, as inferno does, so
zooming rescales numbers instead of re-measuring pixels.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources

from tracebridge.support.errors import InputError
from tracebridge.profile.flametree import ROOT, FlameTree, FlatStacks, build_tree, flatten
from tracebridge.profile.labels import LabelOptions
from tracebridge.render.palettes import ELIDED_FILL, KINDS, Palette, legend_fill
from tracebridge.profile.model import Frame, Profile

#: Fill of the root ("all") frame.
ROOT_FILL = "rgb(215,215,215)"
#: Horizontal margin, pixels.
XPAD = 10
#: Width of one label character relative to the font size (monospace, rounded up).
CHAR_WIDTH = 0.61

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_SPECIAL = re.compile("[&<>\"']")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}


def visible(text: str) -> str:
    """``text`` with every character XML 1.0 forbids or a reader cannot see shown as ``\\xNN``."""
    if not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                       else f"\\u{ord(m.group()):04x}", text)


def xml(text: str) -> str:
    """``text`` safe as XML character data and as a quoted attribute value."""
    text = visible(text)
    return _SPECIAL.sub(lambda m: _ENTITIES[m.group()], text) if _SPECIAL.search(text) else text


@dataclass(frozen=True)
class GraphOptions:
    """How a graph looks; the names follow flamegraph.pl's options."""

    title: str | None = None
    subtitle: str | None = None
    width: int = 1200
    #: Frames narrower than this many pixels are left out (merged when a run of them is wider).
    min_width: float = 0.1
    #: Icicle graph: root at the top, stacks growing down.
    inverted: bool = False
    colors: str = "rust"
    #: What the weights count ("samples", "ns"); None: the profile's unit.
    count_name: str | None = None
    frame_height: int = 16
    font_size: int = 12

    def __post_init__(self) -> None:
        if self.width < 2 * XPAD + 10:
            raise ValueError(f"width {self.width} is too small to draw anything")
        if self.min_width < 0:
            raise ValueError("min_width must not be negative")

    @property
    def heading(self) -> str:
        return self.title or ("Icicle Graph" if self.inverted else "Flame Graph")

    @property
    def frames_width(self) -> int:
        return self.width - 2 * XPAD

    def min_width_units(self, total: float) -> float:
        """The pixel threshold in weight units of a graph whose root weighs ``total``."""
        return self.min_width * total / self.frames_width


def frame_identity(frame: Frame) -> tuple[str | None, str, bool]:
    """Frames that draw as one box: the same name in the same module, both inlined or both not.

    Offsets merge, and so do a generic's instances (``Adapter<T>::rx_frame``
    once per ``T``, told apart only by the legacy hash), as they do in folded
    output and in reports; the tooltip lists the instances' symbols.  An
    inlined copy (``--inline``) is drawn apart from a real call of the same function.
    """
    return frame.module, frame.name, frame.inlined


def render_flamegraph(profile: Profile, options: GraphOptions = GraphOptions(),
                      labels: LabelOptions = LabelOptions()) -> str:
    """The flame graph of ``profile`` as SVG text; ``labels`` as for folded output (offsets, hashes)."""
    profile.require_widths("a flame graph")
    total = profile.total
    if not total > 0:
        raise InputError(profile.metadata.source or None, "no samples to draw")
    if labels != LabelOptions():
        profile = profile.map_frames(lambda frame: replace(frame, name=labels.label(frame)))
    stacks = flatten([profile], frame_identity)
    tree = build_tree(stacks, options.min_width_units(total))
    palette = Palette(options.colors)
    frames = stacks.frames
    fills_by_key = [palette.fill(frame) for frame in frames]
    keys = tree.key.tolist()
    fills = [fills_by_key[k] if k >= 0 else ROOT_FILL if k == ROOT else ELIDED_FILL for k in keys]
    unit = options.count_name or profile.metadata.unit
    counts = [f"{count_text(w)} {unit}, {100 * w / total:.2f}%" for w in tree.width.tolist()]
    legend: list[tuple[str, str]] = []
    if palette.name == "rust":
        drawn = {palette.hue_of(frames[k]) for k in set(keys) if k >= 0}
        legend = [(legend_fill(hue), label) for hue, label in KINDS.items() if hue in drawn]
    subtitle = options.subtitle
    if subtitle is None:
        metadata = profile.metadata
        subtitle = f"{metadata.source + ': ' if metadata.source else ''}{count_text(total)} {unit}{metadata.over}"
    return draw(tree, stacks, options, fills, counts, subtitle, legend)


def count_text(value: float) -> str:
    """A weight as people read it: thousands separated, decimals only when there are any."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _number(value: float) -> str:
    """Exact, short text of a weight for the script (``12`` rather than ``12.0``)."""
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


@cache
def _asset(name: str) -> str:
    text = resources.files("tracebridge").joinpath("data", name).read_text(encoding="utf-8")
    if "]]>" in text:  # would end the CDATA section early
        raise ValueError(f"{name} must not contain ']]>'")
    return text


def label(name: str, width_px: float, char_width: float) -> str:
    """The part of ``name`` that fits ``width_px``, cut with ``..`` (the script does the same)."""
    chars = int((width_px - 3) // char_width)
    if chars < 3:
        return ""
    return name if len(name) <= chars else name[:chars - 2] + ".."


#: Symbols a tooltip lists for a box that merges several instances.
LISTED_INSTANCES = 4


def _head(frame: Frame, symbols: Sequence[str], sources: Sequence[str]) -> tuple[str, str, bool]:
    """(visible name, escaped tooltip lines before the counts, whether labels need escaping)."""
    name = visible(frame.name)
    lines = [xml(frame.name)]
    if frame.inlined:
        lines.append("inlined (no call: DWARF places this code in the frame below)")
    if len(sources) == 1:
        lines.append("source: " + xml(sources[0]))
    elif sources:  # one box merges the function's frames at several lines
        lines.append(f"{len(sources)} source lines:")
        lines.extend("  " + xml(source) for source in sources[:LISTED_INSTANCES])
        if len(sources) > LISTED_INSTANCES:
            lines.append(f"  and {len(sources) - LISTED_INSTANCES} more")
    if len(symbols) > 1:
        lines.append(f"{len(symbols)} instances, mangled:")
        lines.extend("  " + xml(symbol) for symbol in symbols[:LISTED_INSTANCES])
        if len(symbols) > LISTED_INSTANCES:
            lines.append(f"  and {len(symbols) - LISTED_INSTANCES} more")
    elif not frame.resolved:  # a hex address nothing named: no symbol, mangled or not
        if frame.symbol != frame.name:
            lines.append("address: " + xml(frame.symbol))
    elif frame.symbol != frame.name:
        lines.append("mangled: " + xml(frame.symbol))
    if frame.module:
        lines.append("module: " + xml(frame.module))
    return name, "\n".join(lines) + "\n", bool(_SPECIAL.search(name))


def draw(tree: FlameTree, stacks: FlatStacks, options: GraphOptions, fills: Sequence[str],
         counts: Sequence[str], subtitle: str, legend: Sequence[tuple[str, str]] = (),
         background: tuple[str, str] | None = None) -> str:
    """The SVG of a laid-out tree: one fill and one (unescaped) counts line per node.

    Shared by flame graphs and differential graphs, which differ only in
    colours, counts and legend.
    """
    fs, fh = options.font_size, options.frame_height
    width, pixels = options.width, options.frames_width
    top, bottom = fs * 4 + 8, fs * 2 + 10
    height = top + (tree.max_depth + 1) * fh + bottom
    char_width = fs * CHAR_WIDTH
    text_down = (fh - 1) / 2 + fs * 0.3
    total = tree.grand_total
    scale = 100 / total
    per_pixel = pixels / total
    if options.inverted:
        ys = [top + d * fh for d in range(tree.max_depth + 1)]
    else:
        ys = [height - bottom - (d + 1) * fh for d in range(tree.max_depth + 1)]
    heads = [_head(frame, symbols, sources)
             for frame, symbols, sources in zip(stacks.frames, stacks.symbols, stacks.sources)]
    bg_top, bg_bottom = background or Palette(options.colors).background

    out = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n',
        f'<svg version="1.1" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'xmlns="http://www.w3.org/2000/svg">\n',
        f"<title>{xml(options.heading)}</title>\n",
        '<defs><linearGradient id="tb-background" x1="0" y1="0" x2="0" y2="1">'
        f'<stop stop-color="{bg_top}" offset="5%"/><stop stop-color="{bg_bottom}" offset="95%"/>'
        "</linearGradient></defs>\n",
        f'<style type="text/css"><![CDATA[\n{_asset("flamegraph.css")}]]></style>\n',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="url(#tb-background)"/>\n',
        f'<text class="tb-title" x="{width / 2:g}" y="{fs * 2}">{xml(options.heading)}</text>\n',
        f'<text class="tb-subtitle" x="{XPAD}" y="{fs * 2 + 20}">{xml(subtitle)}</text>\n',
        f'<text class="tb-button tb-unzoom hide" x="{XPAD}" y="{fs * 2}">Reset Zoom</text>\n',
        f'<text class="tb-button tb-search" x="{width - XPAD}" y="{fs * 2}" text-anchor="end">Search</text>\n',
        f'<text class="tb-button tb-regex" x="{width - XPAD - 13 * char_width:.0f}" y="{fs * 2}" '
        'text-anchor="end">.*<title>regular expression search (click for plain text)</title></text>\n',
        f'<text class="tb-details" x="{XPAD}" y="{height - bottom / 2:g}"> </text>\n',
        f'<text class="tb-matched" x="{width - XPAD}" y="{height - bottom / 2:g}" text-anchor="end"> </text>\n',
    ]
    # The legend is right-aligned: place its entries from the right, write them in reading order.
    x, places = width - XPAD, []
    for _, text in reversed(legend):
        x -= len(text) * 11 * CHAR_WIDTH
        places.append(x)
        x -= 30
    for (fill, text), x in zip(legend, reversed(places)):
        out.append(f'<rect x="{x - 14:.0f}" y="{fs * 2 + 11}" width="10" height="10" fill="{fill}"/>'
                   f'<text class="tb-legend" x="{x:.0f}" y="{fs * 2 + 20}">{xml(text)}</text>\n')
    out.append(f'<svg class="tb-frames" x="{XPAD}" y="0" width="{pixels}" height="{height}" '
               f'data-total="{_number(total)}" data-char-width="{char_width:g}" data-text-y="{text_down:g}">\n')

    depths, keys, merged = tree.depth.tolist(), tree.key.tolist(), tree.merged.tolist()
    xs, ws = tree.x.tolist(), tree.width.tolist()
    min_width = f"{options.min_width:g}"
    rect_height = fh - 1
    for i, key in enumerate(keys):
        x, w, y = xs[i], ws[i], ys[depths[i]]
        if key >= 0:
            name, head, special = heads[key]
            text = label(name, w * per_pixel, char_width)
            if special:
                text = xml(text)
            css = "f"
        elif key == ROOT:
            head, text, css = "all\n", label("all", w * per_pixel, char_width), "f"
        else:
            head = f"{merged[i]} frames, each narrower than {min_width} px\n"
            text, css = "", "f e"
        xp = f"{x * scale:.4f}%"
        out.append(
            f'<g class="{css}" data-x="{_number(x)}" data-w="{_number(w)}" data-d="{depths[i]}">'
            f"<title>{head}{xml(counts[i])}</title>"
            f'<rect x="{xp}" y="{y}" width="{w * scale:.4f}%" height="{rect_height}" fill="{fills[i]}"/>'
            + (f'<text x="{xp}" dx="3" y="{y + text_down:g}">{text}</text></g>\n' if text else "</g>\n"))
    out.append("</svg>\n")
    out.append(f'<script type="text/ecmascript"><![CDATA[\n{_asset("flamegraph.js")}]]></script>\n')
    out.append("</svg>\n")
    return "".join(out)

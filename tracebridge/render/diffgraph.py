"""Differential flame graphs and tables: where did the samples go between BEFORE and AFTER?

The graph is drawn on the AFTER profile's shape (widths are AFTER's
samples) and coloured by the change, red where a frame grew and blue where
it shrank, as Brendan Gregg's difffolded.pl and ``flamegraph.pl`` draw it:
the picture is the system as it is now, with what changed marked on it.
A consequence is that code AFTER no longer runs has no width and is not
drawn; the table of top changes lists it, and ``shape="before"`` draws on
BEFORE's shape instead (still red for growth), as ``flamegraph.pl --negate``
on reversed input does.

Colour, like flamegraph.pl's, follows by default the change in a frame's
*own* samples (those where it is the leaf), which points at the code whose
cost changed; ``by="total"`` colours by the inclusive change instead.

Frames are matched by demangled name only: mangled Rust symbols change with
every build and a C driver and its Rust rewrite live in different modules.
A name map (``FROM<TAB>TO`` lines, applied to both sides) lets functions
with different names count as one, e.g. ``em_rxeof`` and
``if_rem::rx::Ring::rx_frame``.  ``normalize`` scales BEFORE to AFTER's
total, so the comparison is of shares, not of raw counts from runs of
different length.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from tracebridge.support.errors import InputError, reading
from tracebridge.render.flamegraph import ROOT_FILL, GraphOptions, count_text, draw
from tracebridge.profile.flametree import ROOT, FlatStacks, build_tree, flatten
from tracebridge.render.palettes import ELIDED_FILL, diff_fill
from tracebridge.profile.model import Profile

SHAPES = ("after", "before")
MEASURES = ("self", "total")
#: Columns of :func:`top_changes` rows, in order (the JSON keys).
CHANGE_COLUMNS = ("function", "module", "before", "after", "delta", "before_pct", "after_pct", "delta_pp")
#: With ``--normalize``: BEFORE scaled to AFTER's total is shown beside it, so ``after - before_scaled = delta``.
NORMALIZED_COLUMNS = ("function", "module", "before", "before_scaled", "after", "delta", "before_pct", "after_pct",
                      "delta_pp")
BACKGROUND = ("#f8f8f8", "#e8e8e8")


@dataclass(frozen=True)
class DiffOptions:
    normalize: bool = False
    shape: str = "after"
    #: ``self`` or ``total``: which change colours frames and ranks the table.
    by: str = "self"
    #: Demangled name -> name it is compared as, for both profiles.
    names: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}")
        if self.by not in MEASURES:
            raise ValueError(f"by must be one of {MEASURES}")


@dataclass(frozen=True)
class Comparison:
    """BEFORE and AFTER over one key space: weight column 0 is AFTER, 1 is BEFORE (unscaled)."""

    before: Profile
    after: Profile
    stacks: FlatStacks
    options: DiffOptions

    @property
    def scale(self) -> float:
        """Factor BEFORE's weights are multiplied by to be compared with AFTER's."""
        return self.after.total / self.before.total if self.options.normalize else 1.0


def compare(before: Profile, after: Profile, options: DiffOptions = DiffOptions()) -> Comparison:
    for profile, which in ((before, "BEFORE"), (after, "AFTER")):
        profile.require_widths("a differential flame graph")
        if not profile.total > 0:
            raise InputError(profile.metadata.source or None, f"no samples in the {which} profile")
    names = options.names
    stacks = flatten([after, before], lambda frame: names.get(frame.name, frame.name))
    return Comparison(before, after, stacks, options)


def render_diff(comparison: Comparison, graph: GraphOptions = GraphOptions()) -> str:
    """The differential flame graph as SVG text."""
    options = comparison.options
    scale = comparison.scale
    stacks = comparison.stacks
    # The drawn profile goes first (column 0 decides the layout); a and b are
    # then AFTER's and BEFORE's columns in the tree either way.
    a, b = (0, 1) if options.shape == "after" else (1, 0)
    weights = stacks.weights * np.array([1.0, scale])
    shaped = replace(stacks, weights=weights[:, [a, b]])
    tree = build_tree(shaped, graph.min_width_units(float(shaped.weights[:, 0].sum())))
    own_delta = tree.own[:, a] - tree.own[:, b]
    total_delta = tree.total[:, a] - tree.total[:, b]
    delta = own_delta if options.by == "self" else total_delta
    real = tree.key >= 0
    largest = float(np.abs(delta[real]).max()) if real.any() else 0.0
    fills = [diff_fill(d, largest) if k >= 0 else ROOT_FILL if k == ROOT else ELIDED_FILL
             for k, d in zip(tree.key.tolist(), delta.tolist())]
    after_total, before_total = comparison.after.total, comparison.before.total * scale
    unit = graph.count_name or comparison.after.metadata.unit
    change = (lambda d: _signed_share(d, after_total)) if options.normalize else _signed
    counts = [f"{count_text(after)} {unit}, {100 * after / after_total:.2f}%; "
              f"before {count_text(before / scale)}, {100 * before / before_total:.2f}%; "
              f"change self {change(own)}, total {change(inclusive)}"
              for after, before, own, inclusive in zip(tree.total[:, a].tolist(), tree.total[:, b].tolist(),
                                                       own_delta.tolist(), total_delta.tolist())]
    subtitle = graph.subtitle
    if subtitle is None:
        sources = f"{comparison.before.metadata.source or 'BEFORE'} -> {comparison.after.metadata.source or 'AFTER'}"
        subtitle = (f"{sources}: widths are {options.shape.upper()}, colour is the change in "
                    f"{options.by} {unit}{' (shares, normalized)' if options.normalize else ''}")
    legend = [(diff_fill(1, 1), "grew"), (diff_fill(-1, 1), "shrank"), (diff_fill(0, 1), "same")]
    graph = replace(graph, title=graph.title or "Differential Flame Graph")
    return draw(tree, stacks, graph, fills, counts, subtitle, legend, BACKGROUND)


def _signed(value: float) -> str:
    return ("+" if value > 0 else "") + count_text(value)


def _signed_share(value: float, total: float) -> str:
    return f"{100 * value / total:+.2f} pp"


def top_changes(comparison: Comparison, top: int | None = 20) -> list[dict[str, Any]]:
    """Functions whose samples changed most (by |delta| of ``options.by``), largest first.

    ``before``/``after`` are raw counts; ``delta`` is AFTER minus BEFORE, with
    BEFORE scaled to AFTER's total when normalizing (then ``before_scaled``
    holds that scaled BEFORE, so the columns add up); percentages are shares of
    each profile's own total, ``delta_pp`` their difference in points.
    """
    stacks = comparison.stacks
    keys = len(stacks.frames)
    own, total = _per_key(stacks, keys)
    measure = own if comparison.options.by == "self" else total
    after, before = measure[:, 0], measure[:, 1]
    delta = after - before * comparison.scale
    after_pct = 100 * after / comparison.after.total
    before_pct = 100 * before / comparison.before.total
    order = sorted((k for k in range(keys) if after[k] or before[k]),
                   key=lambda k: (-abs(delta[k]), stacks.frames[k].name))
    rows = []
    for k in order[:top] if top else order:
        frame = stacks.frames[k]
        rows.append({
            "function": frame.name, "module": frame.module, "before": _plain(before[k]), "after": _plain(after[k]),
            "delta": _plain(delta[k]), "before_pct": round(float(before_pct[k]), 2),
            "after_pct": round(float(after_pct[k]), 2), "delta_pp": round(float(after_pct[k] - before_pct[k]), 2),
        })
        if comparison.options.normalize:
            rows[-1]["before_scaled"] = _plain(before[k] * comparison.scale)
    return rows


def _per_key(stacks: FlatStacks, keys: int) -> tuple[np.ndarray, np.ndarray]:
    """(own, total) weight per key and column; recursion counts a stack once per function."""
    lengths, weights = stacks.lengths, stacks.weights
    columns = weights.shape[1]
    rows = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    pairs = np.unique(rows * keys + stacks.flat)
    row_of_pair, key_of_pair = np.divmod(pairs, keys)
    total = np.column_stack([np.bincount(key_of_pair, weights[row_of_pair, c], keys) for c in range(columns)])
    has_leaf = lengths > 0
    leaves = stacks.flat[(stacks.offsets + lengths - 1)[has_leaf]]
    own = np.column_stack([np.bincount(leaves, weights[has_leaf, c], keys) for c in range(columns)])
    return own, total


def _plain(value: float) -> int | float:
    """A count as an int when whole; a scaled (--normalize) count to 2 decimals, like the percentages."""
    value = float(value)
    return int(value) if value.is_integer() else round(value, 2)


def read_name_map(path: str | os.PathLike[str]) -> dict[str, str]:
    """``FROM<TAB>TO`` lines (``#`` comments, blank lines ignored): names to compare as one."""
    try:
        with reading(path), open(path, encoding="utf-8") as handle:
            lines = handle.read().split("\n")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"cannot read: {exc}") from None
    names = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        source, tab, target = line.rstrip("\r").partition("\t")
        if not tab or not source.strip() or not target.strip():
            raise InputError(path, "expected FROM<TAB>TO (a demangled name, a tab, the name to compare it as)",
                             number)
        names[source.strip()] = target.strip()
    return names

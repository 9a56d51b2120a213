"""The merged call tree a flame graph draws, laid out in sample units.

A flame graph is the prefix tree of the stacks: one node per distinct path
from the root, as wide as the samples that pass through it, siblings in
alphabetical order and a node's own samples (stacks that end there) to the
left of its children, as flamegraph.pl lays them out.  Rather than walking
millions of frames in Python, the tree is built one depth at a time with
numpy: the nodes at depth *d* are the distinct (parent, frame) pairs of the
stacks that reach *d*, so one ``np.unique`` merges and orders them and
``np.bincount`` sums their weights.  Stacks below a node too narrow to draw
are dropped before the next depth, so elision also bounds the work.

Several profiles can share one tree (a differential graph): each is a
weight column, column 0 decides the layout and the others are summed along.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from tracebridge.profile.model import Frame, Profile

#: ``FlameTree.key`` of the root node ("all").
ROOT = -1
#: ``FlameTree.key`` of a node standing for a run of siblings each too narrow to draw.
ELIDED = -2


@dataclass(frozen=True)
class FlatStacks:
    """The stacks of one or more profiles over one key space, as flat arrays.

    Key ids are numbered in drawing order (by demangled name, then module,
    then symbol), so sorting ids sorts siblings; ``frames[k]`` is the frame
    shown for key ``k`` (the first one met, column 0's profile first) and
    ``symbols[k]`` every distinct symbol merged into it, sorted (generic
    instances that share a name: the tooltip lists them).  ``sources[k]``
    is every distinct ``file:line`` the merged frames carry (DWARF-resolved
    frames, ``--inline``), sorted, so a box's tooltip says where its code is.
    """

    frames: list[Frame]
    symbols: list[tuple[str, ...]]
    sources: list[tuple[str, ...]]
    #: Key ids of every stack, concatenated, root first.
    flat: np.ndarray
    #: Length of each stack.
    lengths: np.ndarray
    #: Weight of each stack in each column, shape (stacks, columns).
    weights: np.ndarray

    @property
    def offsets(self) -> np.ndarray:
        offsets = np.zeros(len(self.lengths), dtype=np.int64)
        np.cumsum(self.lengths[:-1], out=offsets[1:])
        return offsets


def flatten(profiles: Sequence[Profile], identity: Callable[[Frame], Hashable]) -> FlatStacks:
    """Stack the profiles' rows, one weight column each, frames merged by ``identity``."""
    first: dict[Hashable, Frame] = {}
    symbols: dict[Hashable, set[str]] = {}
    sources: dict[Hashable, set[str]] = {}
    identities = []
    for profile in profiles:
        ids = [identity(frame) for frame in profile.frames]
        for ident, frame in zip(ids, profile.frames):
            first.setdefault(ident, frame)
            symbols.setdefault(ident, set()).add(frame.symbol)
            places = sources.setdefault(ident, set())
            if frame.file is not None:
                places.add(source_text(frame.file, frame.line))
        identities.append(ids)
    ordered = sorted(first, key=lambda ident: _draw_order(first[ident]))
    key_of = {ident: k for k, ident in enumerate(ordered)}
    flats, lengths, columns = [], [], []
    for column, (profile, ids) in enumerate(zip(profiles, identities)):
        stacks = profile.stacks
        length = np.fromiter(map(len, stacks), dtype=np.int64, count=len(stacks))
        flat = np.fromiter(chain.from_iterable(stacks), dtype=np.int64, count=int(length.sum()))
        to_key = np.fromiter((key_of[i] for i in ids), dtype=np.int64, count=len(ids))
        flats.append(to_key[flat] if len(flat) else flat)
        lengths.append(length)
        weight = np.zeros((len(stacks), len(profiles)))
        weight[:, column] = np.fromiter(stacks.values(), dtype=np.float64, count=len(stacks))
        columns.append(weight)
    return FlatStacks([first[ident] for ident in ordered], [tuple(sorted(symbols[ident])) for ident in ordered],
                      [tuple(sorted(sources[ident])) for ident in ordered],
                      np.concatenate(flats),
                      np.concatenate(lengths), np.concatenate(columns))


def source_text(file: str, line: int | None) -> str:
    """``file:line`` as addr2line prints it (``file:?`` when the line table says 0)."""
    return f"{file}:{line if line else '?'}"


def _draw_order(frame: Frame) -> tuple[str, str, str]:
    return frame.name, frame.module or "", frame.symbol


@dataclass(frozen=True)
class FlameTree:
    """Drawable nodes, by depth then x; node 0 is the root ("all", depth 0).

    ``key`` is a key id of the :class:`FlatStacks` it was built from, or
    :data:`ROOT` / :data:`ELIDED`.  ``x`` and widths are in column-0 weight
    units; ``total`` is what passes through a node, ``own`` what ends there
    (self time), one column per profile.  Children, ``own`` and elided runs
    tile a node exactly; what is missing was too narrow to draw.
    """

    depth: np.ndarray
    key: np.ndarray
    x: np.ndarray
    total: np.ndarray
    own: np.ndarray
    #: How many frames an :data:`ELIDED` node stands for (1 for the others).
    merged: np.ndarray

    @property
    def width(self) -> np.ndarray:
        return self.total[:, 0]

    @property
    def grand_total(self) -> float:
        return float(self.total[0, 0])

    @property
    def max_depth(self) -> int:
        return int(self.depth.max())

    def __len__(self) -> int:
        return len(self.depth)


def build_tree(stacks: FlatStacks, min_width: float = 0.0) -> FlameTree:
    """Lay out the prefix tree of ``stacks``; nodes narrower than ``min_width`` are left out.

    A run of adjacent siblings each narrower than ``min_width`` becomes one
    :data:`ELIDED` node when together they are wide enough to see, so
    elision neither leaves a misleading gap nor a rectangle per frame.
    Nodes with no column-0 weight (paths only another column has) are never
    drawn but still count in their ancestors' other columns.
    """
    lengths, weights, flat = stacks.lengths, stacks.weights, stacks.flat
    columns = weights.shape[1]
    radix = max(len(stacks.frames), 1)
    offsets = stacks.offsets
    ends_here = lengths == 0
    levels = [(np.zeros(1, np.int64), np.full(1, ROOT, np.int64), np.zeros(1),
               weights.sum(axis=0, keepdims=True), weights[ends_here].sum(axis=0, keepdims=True),
               np.ones(1, np.int64))]
    parent_x, parent_own = np.zeros(1), levels[0][4][:, 0]
    alive = np.flatnonzero(~ends_here)
    parent_of_row = np.zeros(len(lengths), np.int64)
    depth = 0
    while alive.size:
        depth += 1
        keys = flat[offsets[alive] + depth - 1]
        pairs, node_of_row = np.unique(parent_of_row[alive] * radix + keys, return_inverse=True)
        count = len(pairs)
        ends = lengths[alive] == depth
        row_weights = weights[alive]
        total = np.column_stack([np.bincount(node_of_row, row_weights[:, c], count) for c in range(columns)])
        own = np.column_stack([np.bincount(node_of_row, row_weights[:, c] * ends, count)
                               for c in range(columns)])
        parent, key = np.divmod(pairs, radix)
        width = total[:, 0]
        # Siblings are contiguous, after the parent's own samples.
        before = np.cumsum(width) - width
        first_sibling = np.ones(count, bool)
        first_sibling[1:] = parent[1:] != parent[:-1]
        group_start = np.maximum.accumulate(np.where(first_sibling, np.arange(count), 0))
        x = parent_x[parent] + parent_own[parent] + before - before[group_start]
        narrow = (width < min_width) | (width <= 0)
        levels.append(_level(depth, key, x, total, own, narrow, first_sibling, min_width))
        keep = ~narrow[node_of_row] & ~ends
        alive = alive[keep]
        parent_of_row[alive] = node_of_row[keep]
        parent_x, parent_own = x, own[:, 0]
    depths, keys, xs, totals, owns, merged = (np.concatenate(part) for part in zip(*levels))
    return FlameTree(depths, keys, xs, totals, owns, merged)


def _level(depth: int, key: np.ndarray, x: np.ndarray, total: np.ndarray, own: np.ndarray,
           narrow: np.ndarray, first_sibling: np.ndarray, min_width: float) -> tuple[np.ndarray, ...]:
    """The drawable nodes of one depth: the wide ones, plus runs of narrow siblings merged."""
    run_start = narrow & (first_sibling | ~np.concatenate(([False], narrow[:-1])))
    run = (np.cumsum(run_start) - 1)[narrow]
    runs = int(run_start.sum())
    run_total = np.column_stack([np.bincount(run, total[narrow, c], runs) for c in range(total.shape[1])])
    run_own = np.column_stack([np.bincount(run, own[narrow, c], runs) for c in range(own.shape[1])])
    run_frames = np.bincount(run, total[narrow, 0] > 0, runs).astype(np.int64)
    shown = (run_total[:, 0] >= min_width) & (run_total[:, 0] > 0)
    wide = ~narrow
    xs = np.concatenate((x[wide], x[run_start][shown]))
    order = np.argsort(xs, kind="stable")
    return (np.full(len(xs), depth, np.int64),
            np.concatenate((key[wide], np.full(int(shown.sum()), ELIDED, np.int64)))[order],
            xs[order],
            np.concatenate((total[wide], run_total[shown]))[order],
            np.concatenate((own[wide], run_own[shown]))[order],
            np.concatenate((np.ones(int(wide.sum()), np.int64), run_frames[shown]))[order])

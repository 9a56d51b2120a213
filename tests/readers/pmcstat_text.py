"""pmcstat's text outputs, printed the way pmcstat prints them (for tests and benchmarks).

Nothing here uses tracebridge.  The formats follow FreeBSD's
``usr.sbin/pmcstat``: ``PMCSTAT_PRINT_ENTRY`` (``"%-9s"``, a space, the
fields) in ``pmcstat_log.c`` for ``-o``, and ``pmcstat_cgnode_print`` in
``pmcpl_callgraph.c`` for ``-G``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


def entry(tag: str, fields: str = "") -> str:
    """One ``-o`` line: ``PMCSTAT_PRINT_ENTRY(tag, fields)``."""
    return f"{tag:<9} {fields}\n"


def pointer(value: int) -> str:
    """``%p`` as FreeBSD's libc prints it."""
    return f"{value:#x}"


def callchain(pid: int, pmcid: int, cpu: int, pcs: Sequence[int], user: bool = False) -> str:
    """A ``callchain`` record and its ``...`` PC lines (``pcs[0]`` is the sampled PC)."""
    head = entry("callchain", f"{pid} {pmcid:#x} {cpu} {len(pcs)} {'u' if user else 's'}")
    return head + "".join(entry("...", pointer(pc)) for pc in pcs)


def map_in(pid: int, start: int, path: str) -> str:
    return entry("map-in", f'{pid} {pointer(start)} "{path}"')


def map_out(pid: int, start: int, end: int) -> str:
    return entry("map-out", f"{pid} {pointer(start)} {pointer(end)}")


# -- callgraphs --------------------------------------------------------------


@dataclass
class Node:
    """A callgraph node: a function (name, or None for pmcstat's `%p` form) in an image."""

    name: str
    image: str
    count: int = 0
    children: dict[tuple[str, str], Node] = field(default_factory=dict)


def callgraph(pmcs: Iterable[tuple[str, Iterable[tuple[Sequence[tuple[str, str]], int]]]]) -> str:
    """``-G`` text for ``(event, [(frames leaf first as (name, image), count), ...])`` per PMC.

    Builds pmcstat's tree (top level: the sampled function; children:
    callers) and prints it as ``pmcstat_callgraph_print_for_pmcid`` does.
    """
    out: list[str] = []
    for event, chains in pmcs:
        top: dict[tuple[str, str], Node] = {}
        for frames, count in chains:
            level = top
            for name, image in frames:
                node = level.setdefault((name, image), Node(name, image))
                node.count += count
                level = node.children
        total = sum(node.count for node in top.values())
        out.append(f"@ {event} [{total} samples]\n\n")
        for node in sorted(top.values(), key=lambda n: -n.count):
            previous: list[str | None] = [None]
            _print(out, node, 0, total, previous)
            out.append("\n")
    return "".join(out)


def _print(out: list[str], node: Node, depth: int, total: int, previous: list[str | None]) -> None:
    line = " " * depth
    line += "100.0% " if node.count == total else f"{100.0 * node.count / total:05.2f}% "
    count = f" [{node.count}] "
    line += count + " " * max(0, 12 - len(count))
    line += " " * depth + node.name
    if previous[0] != node.image:
        previous[0] = node.image
        line += f" @ {node.image}"
    out.append(line + "\n")
    for child in sorted(node.children.values(), key=lambda n: -n.count):
        _print(out, child, depth + 1, node.count, previous)

"""Folded stacks written from a profile: one sorted ``frame;frame;... COUNT`` line per distinct stack.

The format and its escapes are described in :mod:`tracebridge.readers.folded`,
which reads them back to the same stacks.
"""

from __future__ import annotations

from typing import IO

from tracebridge.profile.labels import LabelOptions
from tracebridge.profile.model import Profile
from tracebridge.readers.folded import escape


def folded_lines(profile: Profile, labels: LabelOptions = LabelOptions()) -> list[str]:
    """``stack count`` lines, sorted; stacks whose labels are equal are merged."""
    profile.require_widths("folded stacks")
    names = [escape(label) for label in labels.labels(profile)]
    keys = [";".join([names[i] for i in stack]) for stack in profile.stacks]
    merged = dict(zip(keys, profile.stacks.values()))
    if len(merged) != len(keys):  # labels collide (offsets dropped, generic instances): add up
        merged = {}
        for key, weight in zip(keys, profile.stacks.values()):
            merged[key] = merged.get(key, 0) + weight
    return [f"{key} {_count(merged[key])}" for key in sorted(merged)]


def _count(weight: float) -> int | float:
    return int(weight) if type(weight) is int or weight == int(weight) else weight


def write_folded(out: IO[str], profile: Profile, labels: LabelOptions = LabelOptions()) -> None:
    lines = folded_lines(profile, labels)
    if lines:
        out.write("\n".join(lines) + "\n")

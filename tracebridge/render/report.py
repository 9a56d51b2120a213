"""Profile tables: where the samples went, per function, crate or module.

*Self* is the weight of the stacks whose leaf is in the group (time spent
there), *total* the weight of the stacks that hold the group anywhere
(time spent there or below); a group that recurses counts once per stack.
Both are also given as a percentage of the whole profile.  The tables are
built with pandas over one long (stack, frame) table, so a profile of a
million stacks costs a few group-bys, not a Python loop per frame.

DTrace aggregations that are not stacks come out as tables too: histogram
buckets (``quantize`` family) and scalar values per key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracebridge.profile.labels import LabelOptions
from tracebridge.profile.model import Frame, Profile

if TYPE_CHECKING:
    import pandas as pd

    from tracebridge.readers.dtrace import Aggregation

#: Columns of each grouping, in output order (also the JSON keys).
GROUPS = {
    "function": ("name", "module", "crate"),
    "crate": ("crate",),
    "module": ("module",),
    "line": ("line",),
}
MEASURES = ("self", "self_percent", "total", "total_percent")
#: How equal keys of a scalar aggregation combine, per value kind.
COMBINE = {"count": "sum", "sum": "sum", "min": "min", "max": "max"}
UNKNOWN_MODULE = "[unknown]"


def unit_heading(unit: str) -> str:
    """What a profile's weights are, for a heading: ``ns of time`` for the latency template's sum."""
    return "ns of time" if unit == "nanoseconds" else unit


def column_suffix(unit: str) -> str:
    """Added to the self/total headings when the weights are a time, so no one reads them as samples."""
    return " (ns)" if unit == "nanoseconds" else ""


def crate_of(frame: Frame) -> str:
    """The Rust crate, or ``[module]`` for code that is not Rust (C glue, the kernel)."""
    if frame.crate:
        return frame.crate
    return f"[{frame.module or UNKNOWN_MODULE.strip('[]')}]"


def source_line(frame: Frame, label: str) -> str:
    """``file:line`` of a frame (``report --by line``); a frame without one is ``?? (its name)``."""
    if frame.file is None:
        return f"?? ({label})"
    return f"{frame.file}:{frame.line if frame.line else '?'}"


def summary(profile: Profile, by: str = "function", labels: LabelOptions = LabelOptions()) -> pd.DataFrame:
    """One row per group with self/total weights and percentages, largest self first."""
    import numpy as np
    import pandas as pd

    keys = GROUPS[by]
    frames = pd.DataFrame({
        "name": labels.labels(profile),
        "module": [f.module or UNKNOWN_MODULE for f in profile.frames],
        "crate": [crate_of(f) for f in profile.frames],
        "line": [source_line(f, label) for f, label in zip(profile.frames, labels.labels(profile))],
    })
    # One group id per frame id, so the long table carries small integers only.
    group_of = frames.groupby(list(keys), sort=False, dropna=False).ngroup().to_numpy()
    first = ~frames.duplicated(list(keys)).to_numpy()
    table = frames.loc[first, list(keys)].set_axis(group_of[first])
    stacks = list(profile.stacks)
    weights = np.fromiter(profile.stacks.values(), dtype=float, count=len(stacks))
    lengths = np.fromiter((len(s) for s in stacks), dtype=np.int64, count=len(stacks))
    present = lengths > 0
    frame_ids = np.fromiter((i for s in stacks for i in s), dtype=np.int64, count=int(lengths.sum()))
    long = pd.DataFrame({"stack": np.repeat(np.arange(len(stacks)), lengths), "group": group_of[frame_ids]})
    leaf_groups = group_of[frame_ids[np.cumsum(lengths[present]) - 1]]
    self_weight = pd.Series(weights[present]).groupby(leaf_groups).sum()
    unique = long.drop_duplicates()
    total_weight = pd.Series(weights[unique["stack"].to_numpy()]).groupby(unique["group"].to_numpy()).sum()
    table["self"] = self_weight.reindex(table.index, fill_value=0.0)
    table["total"] = total_weight.reindex(table.index, fill_value=0.0)
    whole = float(weights.sum()) or 1.0
    table["self_percent"] = table["self"] * 100.0 / whole
    table["total_percent"] = table["total"] * 100.0 / whole
    table = table.sort_values(["self", "total"] + list(keys), ascending=[False, False] + [True] * len(keys),
                              kind="stable")
    return table.loc[:, list(keys) + list(MEASURES)].reset_index(drop=True)


def bucket_table(aggregations: list[Aggregation], labels: LabelOptions = LabelOptions()) -> pd.DataFrame:
    """Every histogram bucket of every ``quantize``-family aggregation, one row each."""
    import pandas as pd

    rows = [{"aggregation": agg.number, "key": key_text(row.keys, labels), "kind": agg.kind, "bucket": b.label,
             "low": b.low, "count": b.count}
            for agg in aggregations if agg.histograms for row in agg.rows for b in row.value.buckets]
    return pd.DataFrame(rows, columns=["aggregation", "key", "kind", "bucket", "low", "count"])


def value_table(aggregations: list[Aggregation], labels: LabelOptions = LabelOptions()) -> pd.DataFrame:
    """Scalar aggregation values per aggregation and key, largest first.

    ``aggregation`` is the place in print order (``--aggregation N``), so
    ``@calls`` and ``@errors``, both counts by ``probefunc``, stay apart.
    Within one, equal keys (the same aggregation in several inputs, or
    names that demangle alike) combine as their kind does: counts and sums
    add up, minima and maxima take the extreme; averages stay apart, since
    DTrace does not print their counts.
    """
    import pandas as pd

    columns = ["aggregation", "key", "kind"]
    frames = [pd.DataFrame({"aggregation": agg.number, "key": [key_text(r.keys, labels) for r in agg.rows],
                            "kind": agg.kind, "value": [r.value for r in agg.rows]})
              for agg in aggregations if not agg.histograms]
    if not frames:
        return pd.DataFrame(columns=[*columns, "value"])
    table = pd.concat(frames, ignore_index=True)
    parts = [part if kind == "avg" else part.groupby(columns, sort=False, as_index=False)["value"].agg(
        COMBINE.get(kind, "sum")) for kind, part in table.groupby("kind", sort=False)]
    table = pd.concat(parts, ignore_index=True)
    return table.sort_values(["value", "key"], ascending=[False, True], kind="stable").reset_index(drop=True)


def key_text(keys: tuple[Frame, ...], labels: LabelOptions) -> str:
    """An aggregation key as one string: its parts joined by ``, ``."""
    return ", ".join(labels.label(k) for k in keys)

"""Parquet profiles: one row per distinct stack, tagged with the run and the machine.

A fleet's runs are compared where Parquet is queried, DuckDB on one machine
and Spark or Trino on many, rather than by a tracebridge command: each run
writes one file (``fold --format parquet --run-id ID --host HOST``), and a
directory of them (or a ``run_id=.../host=...`` partitioned tree) is one
table.  The columns are :data:`SCHEMA`, stable across versions (new columns
may be added at the end, none renamed or retyped); docs/formats.md lists
them and shows the queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from tracebridge.profile.labels import LabelOptions
from tracebridge.profile.model import Profile

if TYPE_CHECKING:
    import pyarrow as pa

#: Written into the file's key-value metadata: which layout of columns the file has.
SCHEMA_VERSION = "tracebridge-profile/1"


@dataclass(frozen=True)
class Run:
    """Which run a table's rows belong to (``--run-id``, ``--host``)."""

    run_id: str
    host: str | None


def schema() -> pa.Schema:
    """The columns, in order: the run's, then the stack's, then what the module and kernel were."""
    import pyarrow as pa

    return pa.schema([
        ("run_id", pa.string()),
        ("host", pa.string()),
        ("event", pa.string()),
        ("unit", pa.string()),
        ("stack", pa.list_(pa.string())),
        ("modules", pa.list_(pa.string())),
        ("leaf", pa.string()),
        ("weight", pa.float64()),
        ("module_sha256", pa.string()),
        ("kernel_version", pa.string()),
        ("source", pa.string()),
    ], metadata={"tracebridge.schema": SCHEMA_VERSION})


def profile_table(profile: Profile, run: Run, labels: LabelOptions = LabelOptions()) -> pa.Table:
    """The rows of ``profile``: stacks whose labels and modules are equal are one row, as in folded output."""
    import pyarrow as pa

    names = labels.labels(profile)
    modules = [frame.module for frame in profile.frames]
    merged: dict[tuple[tuple[str, ...], tuple[str | None, ...]], float] = {}
    for stack, weight in profile.stacks.items():
        key = (tuple(names[i] for i in stack), tuple(modules[i] for i in stack))
        merged[key] = merged.get(key, 0) + weight
    rows = sorted(merged.items(), key=lambda item: (item[0][0], tuple(m or "" for m in item[0][1])))
    metadata = profile.metadata
    count = len(rows)
    columns = {
        "run_id": [run.run_id] * count,
        "host": [run.host] * count,
        "event": [metadata.event] * count,
        "unit": [metadata.unit] * count,
        "stack": [list(stack) for (stack, _), _ in rows],
        "modules": [list(mods) for (_, mods), _ in rows],
        "leaf": [stack[-1] if stack else None for (stack, _), _ in rows],
        "weight": [float(weight) for _, weight in rows],
        "module_sha256": [metadata.module_sha256] * count,
        "kernel_version": [metadata.kernel_version] * count,
        "source": [metadata.source] * count,
    }
    return pa.table(columns, schema=schema())


def write_profile_parquet(out: IO[bytes], profile: Profile, run: Run, labels: LabelOptions = LabelOptions()) -> None:
    import pyarrow.parquet as pq

    pq.write_table(profile_table(profile, run, labels), out)

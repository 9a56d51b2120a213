"""The one table every CPU source produces, and reading and writing it.

A run is a tidy time series with exactly the columns :data:`COLUMNS`:

``time``
    seconds since the start of the run (float), taken at the *end* of the
    interval the row describes;
``pid``, ``process``, ``tid``, ``thread``
    who burnt the CPU; ``tid`` is -1 where the source does not know it
    (``top`` captures), and ``thread`` falls back to the tid as text where the
    platform has no thread names (psutil on FreeBSD);
``cpu_user``, ``cpu_system``
    percent of *one* CPU spent in user and in system mode over the interval
    (empty where the source gives only a total, as ``top`` does);
``cpu_percent``
    their sum, or the source's total: 100 means one CPU fully busy, so a
    thread is at most 100 and a process or the machine may be more.

System-wide usage lives in the same file, as rows with ``pid`` -1, process
``[cpu]`` and thread ``cpuN`` (one CPU) or ``all`` (sum over the CPUs, still in
percent of one CPU, so it adds up with the thread rows).  Keeping them in the
same file means one run is one file, and the thread rows are simply those with
``pid >= 0``.

The file is CSV or Parquet, chosen by the output's extension.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING, TextIO

from tracebridge.support.csvcells import neutral, restored
from tracebridge.support.errors import InputError, UsageError, reading
from tracebridge.support.printable import CONTROL, printable
from tracebridge.support.outputs import open_output

if TYPE_CHECKING:
    import pandas as pd

#: Decimals kept in CSV files: a thousandth of a percent is far below what
#: one-second sampling can resolve.
CSV_DECIMALS = 3

COLUMNS = ("time", "pid", "process", "tid", "thread", "cpu_user", "cpu_system", "cpu_percent")
#: The columns of names (from the machine: a process may call itself ``=HYPERLINK(...)``).
NAME_COLUMNS = ("process", "thread")
DTYPES = {"time": "float64", "pid": "int64", "process": "string", "tid": "int64", "thread": "string",
          "cpu_user": "float64", "cpu_system": "float64", "cpu_percent": "float64"}

CPU_PID = -1
CPU_PROCESS = "[cpu]"
ALL_CPUS = "all"
NO_TID = -1

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


class NotASeries(InputError):
    """The file is readable but is not a CPU series (callers may say what else it is not)."""

    def __init__(self, path: str, detail: str):
        super().__init__(path, f"not a CPU series: {detail}")
        self.detail = detail


@dataclass(frozen=True)
class Row:
    """One line of the series; see the module docstring for the meaning of each field."""

    time: float
    pid: int
    process: str
    tid: int
    thread: str
    cpu_user: float
    cpu_system: float
    cpu_percent: float


def cpu_row(time: float, thread: str, user: float, system: float) -> Row:
    """A system-wide row: ``thread`` is ``cpuN`` or :data:`ALL_CPUS`."""
    return Row(time, CPU_PID, CPU_PROCESS, NO_TID, thread, user, system, user + system)


def to_frame(rows: Iterable[Row]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame([astuple(row) for row in rows], columns=list(COLUMNS))
    return frame.astype(DTYPES)


def thread_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["pid"] != CPU_PID]


def cpu_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["pid"] == CPU_PID]


def series_format(path: str | os.PathLike[str]) -> str:
    """``csv`` or ``parquet`` from the file name; anything else is a usage error.

    Called before a recording starts, so a bad ``-o`` fails in the first
    second rather than after a 30-second load test.  ``-`` is CSV on stdout.
    """
    if os.fspath(path) == "-":
        return "csv"
    extension = os.path.splitext(os.fspath(path))[1].lower()
    try:
        fmt = FORMATS[extension]
    except KeyError:
        raise UsageError(f"{os.fspath(path)}: the output must end in .csv or .parquet") from None
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401  (only its presence matters)
        except ImportError:
            raise UsageError(f"{os.fspath(path)}: writing Parquet needs pyarrow "
                             "(pip install 'tracebridge[parquet]'), or use a .csv file") from None
    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(directory):
        raise UsageError(f"{os.fspath(path)}: directory {directory} does not exist")
    return fmt


def write_series(frame: pd.DataFrame, path: str | os.PathLike[str], *,
                 inputs: Iterable[str | os.PathLike[str]] = (), csv_raw: bool = False) -> None:
    """Write ``frame`` atomically as CSV or Parquet according to ``path``."""
    fmt = series_format(path)
    if fmt == "csv":
        with open_output(path, "w", inputs=inputs) as out:
            write_series_csv(frame, out, csv_raw)
    else:
        frame = frame.loc[:, list(COLUMNS)]
        with open_output(path, "wb", inputs=inputs) as out:
            frame.to_parquet(out, index=False)


def write_series_csv(frame: pd.DataFrame, out: TextIO, csv_raw: bool = False) -> None:
    """The series as CSV into an open text file (what :func:`write_series` writes to a ``.csv``).

    Process and thread names a spreadsheet would evaluate get a ``'``
    (:mod:`tracebridge.support.csvcells`) unless ``csv_raw``;
    :func:`read_series` takes it off again.
    """
    frame = _rounded_for_text(frame.loc[:, list(COLUMNS)])
    if not csv_raw:
        for column in NAME_COLUMNS:
            frame[column] = frame[column].map(neutral, na_action="ignore").astype("string")
    frame.to_csv(out, index=False, float_format=f"%.{CSV_DECIMALS}f", lineterminator="\n")


def _rounded_for_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Round the two parts first and write their sum as ``cpu_percent``.

    Rounding the sum on its own can leave it one unit in the last decimal off
    the sum of the rounded parts (74.4864 + 0.0004), and a reader adding the
    columns in a spreadsheet would see a total that does not add up.  Rows
    with only a total (``top`` captures) keep it.
    """
    frame = frame.copy()
    for column in ("cpu_user", "cpu_system", "cpu_percent"):
        frame[column] = frame[column].round(CSV_DECIMALS)
    both = frame["cpu_user"].notna() & frame["cpu_system"].notna()
    frame.loc[both, "cpu_percent"] = (frame.loc[both, "cpu_user"] + frame.loc[both, "cpu_system"]).round(CSV_DECIMALS)
    return frame


def read_series(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a series written by :func:`write_series`, checking its columns."""
    import pandas as pd

    name = os.fspath(path)
    with reading(name), open(name, "rb") as handle:
        head = handle.read(4096)
    magic = head[:4]
    if magic != b"PAR1":
        from tracebridge.readers.kinds import binary_kind

        kind = binary_kind(head)
        if kind is not None:
            raise NotASeries(name, f"this looks like {kind}")
        if b"\0" in head:
            raise NotASeries(name, "binary data (a NUL byte), neither CSV nor Parquet")
    try:
        if magic == b"PAR1":
            frame = pd.read_parquet(name)
        else:
            # Thread names such as "NA" or "null" are names, not missing values.
            frame = pd.read_csv(name, dtype={"process": "string", "thread": "string"}, keep_default_na=False,
                                na_values={c: [""] for c in ("cpu_user", "cpu_system", "cpu_percent")})
    except ImportError:
        raise InputError(name, "reading Parquet needs pyarrow (pip install 'tracebridge[parquet]')") from None
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise NotASeries(name, f"cannot read it as CSV or Parquet: {_first_line(exc)}") from None
    if tuple(frame.columns) != COLUMNS:
        raise NotASeries(name, f"expected the columns {','.join(COLUMNS)}, "
                               f"found {_excerpt(','.join(map(str, frame.columns)))}")
    try:
        frame = frame.astype(DTYPES)
    except OverflowError:
        raise InputError(name, "bad value in a CPU series: a pid or tid too large for 64 bits") from None
    except (ValueError, TypeError) as exc:
        raise InputError(name, f"bad value in a CPU series: {_first_line(exc)}") from None
    _check_values(frame, name, csv=magic != b"PAR1")
    if magic != b"PAR1":
        for column in NAME_COLUMNS:
            frame[column] = frame[column].map(restored, na_action="ignore").astype("string")
    for column in ("process", "thread"):  # names people read: no control characters (tables, charts)
        if frame[column].str.contains(CONTROL.pattern, regex=True, na=False).any():
            frame[column] = frame[column].map(printable, na_action="ignore").astype("string")
    return frame


#: Largest CPU share accepted, in percent of one CPU.  top's share is the kernel's ``ki_pctcpu``, a
#: 32-bit ``fixpt_t`` over ``FSCALE`` 2048 (sys/sys/param.h): below 2**32 / 2048 * 100 % (2.1e8 %);
#: its weighted share (WCPU) divides that by ``1 - ccpu**swtime``, at least ``1 - exp(-1/20)``
#: (kern_synch.c's ``ccpu``): below 4.4e9 %.  psutil's shares are far smaller.  More is a corrupt
#: file, and near 1e308 the means, sums and rounding of ``cpu compare`` overflow to inf.
MAX_SHARE = 1e10

#: Longest process or thread name accepted.  FreeBSD keeps 19 characters
#: (MAXCOMLEN), Linux 15; a name of megabytes is a corrupt file, and would
#: make every table and chart of it crawl.
MAX_NAME = 1024


def _check_values(frame: pd.DataFrame, name: str, csv: bool) -> None:
    """Refuse values no run can hold, naming the first row (its CSV line) that holds one."""
    import numpy as np

    cpu = frame[["cpu_user", "cpu_system", "cpu_percent"]].to_numpy()
    longest = np.maximum(*(frame[c].str.len().fillna(0).to_numpy(int) for c in ("process", "thread")))
    problems = [
        ("a time that is not a finite number of seconds from the start", ~np.isfinite(frame["time"].to_numpy())
         | (frame["time"].to_numpy() < 0)),
        ("a pid or tid below -1", (frame["pid"].to_numpy() < -1) | (frame["tid"].to_numpy() < -1)),
        (f"a CPU share that is negative or infinite, or above {MAX_SHARE:,.0f} %",
         (cpu > MAX_SHARE).any(axis=1) | (cpu < 0).any(axis=1)),
        ("no cpu_percent", np.isnan(frame["cpu_percent"].to_numpy())),
        (f"a process or thread name longer than {MAX_NAME} characters", longest > MAX_NAME),
    ]
    for what, bad in problems:
        if bad.any():
            row = int(np.argmax(bad))
            where = row + 2 if csv else f"row {row + 1}"
            raise InputError(name, f"bad value in a CPU series: {what}", where)


def _excerpt(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

"""The CSV form of the series: what a spreadsheet sees must add up."""

from __future__ import annotations

import math

import pytest

from tracebridge.cputime.series import NotASeries, Row, read_series, to_frame, write_series
from tracebridge.support.errors import InputError


def test_csv_total_is_the_sum_of_the_written_parts(tmp_path):
    # 10.0004 + 64.4864 = 74.4868: rounded alone that is 74.487, but the parts
    # as written (10.000 and 64.486) add up to 74.486.
    rows = [Row(1.0, 7, "iperf3", 100, "iperf3", 10.0004, 64.4864, 10.0004 + 64.4864),
            Row(1.0, 0, "kernel", -1, "if_io_tqg_1", math.nan, math.nan, 41.28)]
    path = tmp_path / "run.csv"
    write_series(to_frame(rows), path)
    lines = path.read_text().splitlines()
    assert lines[1].endswith(",10.000,64.486,74.486")
    assert lines[2].endswith(",,,41.280")
    back = read_series(path)
    assert back.cpu_percent.tolist() == [74.486, 41.28]


def test_parquet_keeps_full_precision(tmp_path):
    rows = [Row(1.0, 7, "iperf3", 100, "iperf3", 10.0004, 64.4864, 10.0004 + 64.4864)]
    path = tmp_path / "run.parquet"
    write_series(to_frame(rows), path)
    assert read_series(path).cpu_user.tolist() == [10.0004]


GOOD = "1.000,1893,iperf3,101872,101872,37.800,0.000,37.800"


@pytest.mark.parametrize("row, problem", [
    ("1.000,1" + "0" * 22 + ",iperf3,101872,101872,37.800,0.000,37.800", "too large for 64 bits"),
    ("inf,1893,iperf3,101872,101872,37.800,0.000,37.800", "not a finite number of seconds"),
    ("1.000,-7,iperf3,101872,101872,37.800,0.000,37.800", "below -1"),
    ("1.000,1893,iperf3,101872,101872,-3.000,0.000,37.800", "negative or infinite"),
    ("1.000,1893,iperf3,101872,101872,37.800,0.000,inf", "negative or infinite"),
    ("1.000,1893,iperf3,101872,101872,37.800,0.000,1e308", "or above 10,000,000,000 %"),  # compare's sums: inf
    ("1.000,1893,iperf3,101872,101872,10000000000.5,0.000,37.800", "or above 10,000,000,000 %"),
    ("1.000,1893,iperf3,101872,101872,,,", "no cpu_percent"),
    ("1.000,1893,iperf3,101872," + "t" * 5000 + ",37.800,0.000,37.800", "name longer than 1024"),
])
def test_values_no_run_holds_are_refused_with_their_line(tmp_path, row, problem):
    path = tmp_path / "run.csv"
    path.write_text(f"time,pid,process,tid,thread,cpu_user,cpu_system,cpu_percent\n{GOOD}\n{row}\n")
    with pytest.raises(InputError) as error:
        read_series(path)
    assert problem in str(error.value)
    if "64 bits" not in problem:  # pandas does not say which row overflowed
        assert error.value.position == 3


@pytest.mark.parametrize("head, kind", [(b"\x7fELF\x02\x01\x01", "an ELF file"), (b"\x1f\x8b\x08\x08", "gzip-compressed"),
                                        (b"time,\0pid", "NUL byte")])
def test_binary_files_are_named_for_what_they_are(tmp_path, head, kind):
    path = tmp_path / "run.csv"
    path.write_bytes(head + bytes(range(256)))
    with pytest.raises(NotASeries, match=kind):
        read_series(path)

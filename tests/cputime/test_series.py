"""The CSV form of the series: what a spreadsheet sees must add up."""

from __future__ import annotations

import math

from tracebridge.cputime.series import Row, read_series, to_frame, write_series


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

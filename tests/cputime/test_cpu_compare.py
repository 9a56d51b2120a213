"""`tracebridge cpu import` and `compare`: tables, formats and the chart."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from PIL import Image

from tracebridge.cli import main
from tracebridge.cputime.series import COLUMNS

CAPTURE = Path(__file__).parents[1] / "data" / "top" / "top-bzSHCP-iperf.txt"


def rust_capture(tmp_path: Path) -> Path:
    """The same capture as if the Rust driver spent 10 % less in if_io_tqg_1 and named a taskqueue itself."""
    text = CAPTURE.read_text()
    for before, after in (("41.28%", "31.28%"), ("39.26%", "29.26%"), ("38.47%", "28.47%")):
        text = text.replace(f"{before} kernel{{if_io_tqg_1}}", f"{after} kernel{{if_io_tqg_1}}")
    path = tmp_path / "rem-top.txt"
    path.write_text(text.replace("kernel{if_io_tqg_3}", "kernel{rem0 taskq}"))
    return path


def test_import_writes_the_series(tmp_path, capsys):
    output = tmp_path / "em.parquet"
    assert main(["cpu", "import", str(CAPTURE), "-o", str(output)]) == 0
    assert "3 displays" in capsys.readouterr().err
    frame = pd.read_parquet(output)
    assert tuple(frame.columns) == COLUMNS
    assert len(frame) == 3 * (24 + 5)  # 24 threads and 4 CPUs + all, per display


def test_compare_table_json_and_chart(tmp_path, capsys):
    em = tmp_path / "em.csv"
    assert main(["cpu", "import", str(CAPTURE), "-o", str(em)]) == 0
    chart = tmp_path / "chart.png"
    capsys.readouterr()
    # A series file and a raw top capture, side by side.
    assert main(["cpu", "compare", str(em), str(rust_capture(tmp_path)), "--label", "em", "--label", "rem",
                 "-o", str(chart), "--top", "5"]) == 0
    out = capsys.readouterr().out
    assert "kernel{if_io_tqg_1}" in out and "-10.0" in out and "kernel{rem0 taskq}" in out
    with Image.open(chart) as image:
        assert image.format == "PNG"
        assert image.size[0] >= 1200 and 400 <= image.size[1] <= 1200

    assert main(["cpu", "compare", str(em), str(rust_capture(tmp_path)), "--label", "em", "--label", "rem",
                 "--top", "2", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    tqg = {row["run"]: row for row in rows if row["thread"] == "if_io_tqg_1"}
    assert tqg["em"]["mean"] == round((39.26 + 41.28 + 38.47) / 3, 3)
    assert tqg["rem"]["max"] == 31.28 and tqg["rem"]["samples"] == 3
    assert {(row["process"], row["thread"]) for row in rows} == {("[cpu]", "all"), ("kernel", "if_io_tqg_1"),
                                                                 ("iperf3", "iperf3")}


def test_compare_reads_a_bundle_directory_as_its_cpu_series(tmp_path, capsys):
    bundle = Path(__file__).parents[2] / "examples" / "run"
    assert main(["cpu", "compare", str(bundle / "cpu.csv"), str(bundle), "--label", "file", "--label", "bundle",
                 "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_run = {}
    for row in rows:
        by_run.setdefault(row["run"], []).append({k: v for k, v in row.items() if k != "run"})
    assert by_run["file"] == by_run["bundle"] and by_run["file"]
    empty = tmp_path / "bundle"
    empty.mkdir()
    (empty / "manifest.json").write_text((bundle / "manifest.json").read_text().replace('"role": "cpu"',
                                                                                        '"role": "other"'))
    assert main(["cpu", "compare", str(bundle), str(empty)]) == 2
    assert "this bundle holds no CPU series" in capsys.readouterr().err


def test_a_thread_psutil_knows_by_number_pairs_with_tops_main_thread(capsys):
    """psutil names FreeBSD threads by id; top -H prints a single-threaded process as iperf3{iperf3}."""
    examples = Path(__file__).parents[2] / "examples"
    assert main(["cpu", "compare", str(examples / "top-rem.txt"), str(examples / "run"), "--format", "json",
                 "--top", "0"]) == 0
    out, err = capsys.readouterr()
    rows = json.loads(out)
    iperf = {row["run"]: row for row in rows if row["process"] == "iperf3"}
    assert set(iperf) == {"top-rem", "run"} and {r["thread"] for r in iperf.values()} == {"iperf3"}
    assert "iperf3 101872 = iperf3" in err
    # Threads of many-threaded processes are not guessed.
    assert any(row["process"] == "intr" and row["thread"].isdigit() for row in rows)

"""Bad input and bad usage: exit status 2, one line on stderr, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracebridge.cli import main

TOP = Path(__file__).parents[1] / "data" / "top" / "top-bzSHCP-iperf.txt"


@pytest.fixture
def dtrace_output(tmp_path):
    path = tmp_path / "trace.txt"
    path.write_text("dtrace: description 'fbt:if_em:em_*:entry' matched 96 probes\n"
                    "CPU     ID                    FUNCTION:NAME\n  1  53211       em_if_tx_intr:entry\n")
    return path


def one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tracebridge: "), captured.err
    assert "Traceback" not in captured.out + captured.err
    return lines[0]


def test_import_of_dtrace_output(dtrace_output, capsys):
    assert main(["cpu", "import", str(dtrace_output), "-o", str(dtrace_output.with_suffix(".csv"))]) == 2
    assert one_line_error(capsys) == (f"tracebridge: {dtrace_output}:1: not FreeBSD top batch output: expected a "
                                      "'last pid: ...; load averages: ...' line, found "
                                      "\"dtrace: description 'fbt:if_em:em_*:entry' matched 96 probes\"")
    assert not dtrace_output.with_suffix(".csv").exists()


def test_compare_of_something_else(dtrace_output, tmp_path, capsys):
    assert main(["cpu", "compare", str(dtrace_output), str(dtrace_output)]) == 2
    assert one_line_error(capsys).startswith(f"tracebridge: {dtrace_output}: neither FreeBSD top output")
    missing = tmp_path / "missing.csv"
    assert main(["cpu", "compare", str(missing)]) == 2
    assert one_line_error(capsys) == f"tracebridge: {missing}: no such file"


@pytest.mark.parametrize("argv, message", [
    (["cpu"], "nothing to watch"),
    (["cpu", "--duration", "1", "-o", "run.txt", "--", "true"], "must end in .csv or .parquet"),
    (["cpu", "--pid", "999999999"], "no such process"),
    (["cpu", "--name", "("], "not a regular expression"),
    (["cpu", "--", "/nonexistent/iperf3", "-c", "host"], "cannot run '/nonexistent/iperf3'"),
    (["cpu", "iperf3", "-c", "host"], "put the workload command after '--'"),
    (["cpu", "--duration", "3", "compare", "a.csv"], "cannot be combined with 'compare'"),
    (["cpu", "compare", "a.csv", "b.csv", "--label", "em"], "give one label per run"),
    (["cpu", "compare", "a.csv", "b.csv", "--label", "em", "--label", "em"], "labels must differ"),
    (["cpu", "compare", "a.csv", "-o", "chart.jpg"], "the chart must end in"),
])
def test_usage_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in one_line_error(capsys)


def test_output_refuses_to_eat_the_input(tmp_path, capsys):
    """A whole capture that imports fine, named .csv: only the output check can refuse it."""
    capture = tmp_path / "top.csv"
    capture.write_bytes(TOP.read_bytes())
    assert main(["cpu", "import", str(capture), "-o", str(tmp_path / "other.csv")]) == 0
    capsys.readouterr()
    assert main(["cpu", "import", str(capture), "-o", str(capture)]) == 2
    assert "refusing to overwrite an input file" in one_line_error(capsys)
    assert capture.read_bytes() == TOP.read_bytes()

"""Parquet profiles of several runs, queried with DuckDB, give each run's `report --format json` totals."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fixture_paths import MODULES
from tracebridge.cli import main
from tracebridge.readers.bundle import sha256_of

duckdb = pytest.importorskip("duckdb", reason="duckdb (a test dependency) is not installed")

ROOT = Path(__file__).parent.parent.parent
EXAMPLES = ROOT / "examples"

#: Runs on three machines: a bundle (its host from the manifest), DTrace and pmcstat captures.
RUNS = {
    "rem-bundle": [EXAMPLES / "run"],
    "rem-dtrace": [EXAMPLES / "if_rem.stack.txt", "--module", EXAMPLES / "if_rem.ko",
                   "--kldstat", EXAMPLES / "kldstat.txt", "--host", "dut"],
    "em-dtrace": [EXAMPLES / "if_em.stack.txt", "--host", "lab2"],
    "em-pmc": [EXAMPLES / "if_em.pmc.graph", "--host", "lab2"],
    "rem-pmc-callgraph": [ROOT / "tests" / "data" / "pmcstat" / "multi-image.graph",
                          "--module", MODULES / "rem_legacy_fp.ko", "--host", "lab3"],
}

#: Per-function self and total weight of every run, as report computes them: self where the
#: function is the leaf, total once per stack that holds it anywhere.
QUERY = """
WITH stacks AS (SELECT *, row_number() OVER () AS row FROM read_parquet($files)),
     frames AS (SELECT DISTINCT row, run_id, weight, name, module
                FROM (SELECT row, run_id, weight, unnest(stack) AS name, unnest(modules) AS module FROM stacks)),
     totals AS (SELECT run_id, name, coalesce(module, '[unknown]') AS module, sum(weight) AS total
                FROM frames GROUP BY ALL),
     selfs AS (SELECT run_id, leaf AS name, coalesce(modules[len(modules)], '[unknown]') AS module,
                      sum(weight) AS self
               FROM stacks GROUP BY ALL)
SELECT run_id, name, module, coalesce(self, 0) AS self, total
FROM totals LEFT JOIN selfs USING (run_id, name, module)
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("runs")
    for run_id, arguments in RUNS.items():
        common = [*map(str, arguments), "--run-id", run_id]
        assert main(["fold", *common, "--format", "parquet", "-o", str(directory / f"{run_id}.parquet")]) == 0
        assert main(["report", *common, "--format", "json", "-o", str(directory / f"{run_id}.json")]) == 0
        assert main(["report", *common, "--format", "parquet", "-o", str(directory / f"{run_id}.report")]) == 0
    return directory


def test_duckdb_over_all_runs_gives_each_runs_report_totals(runs):
    rows = duckdb.connect().execute(QUERY, {"files": str(runs / "*.parquet")}).fetchall()
    queried = {(run, name, module): (self, total) for run, name, module, self, total in rows}
    expected = {}
    for run_id in RUNS:
        for row in json.loads((runs / f"{run_id}.json").read_text()):
            if row["total"]:  # report also lists frames the reader named but no stack holds, at 0
                expected[(run_id, row["name"], row["module"])] = (row["self"], row["total"])
    assert len(expected) > 40 and {key[0] for key in expected} == set(RUNS)
    assert queried == expected


def test_rows_say_which_run_and_machine(runs):
    table = pq.read_table(runs / "rem-bundle.parquet")
    assert table.schema.metadata[b"tracebridge.schema"] == b"tracebridge-profile/1"
    assert table.column_names == ["run_id", "host", "event", "unit", "stack", "modules", "leaf", "weight",
                                  "module_sha256", "kernel_version", "source"]
    first = table.slice(0, 1).to_pylist()[0]
    manifest = json.loads((EXAMPLES / "run" / "manifest.json").read_text())
    assert (first["run_id"], first["host"], first["kernel_version"]) == ("rem-bundle", "dut", "14.2-RELEASE")
    assert first["module_sha256"] == manifest["module"]["sha256"] == sha256_of(EXAMPLES / "run" / "if_rem.ko")
    assert first["leaf"] == first["stack"][-1] and first["stack"][0] in ("fork_exit", "fast_syscall_common")
    # One --module: its hash; none: unknown, and the schema the same.
    assert pq.read_table(runs / "rem-dtrace.parquet")["module_sha256"][0].as_py() == sha256_of(EXAMPLES / "if_rem.ko")
    em = pq.read_table(runs / "em-dtrace.parquet")
    assert em.schema == table.schema and em["module_sha256"].null_count == len(em)


def test_report_parquet_rows_carry_run_and_host(runs):
    table = duckdb.connect().execute(
        "SELECT run_id, host, sum(self) FROM read_parquet($files) GROUP BY ALL ORDER BY run_id",
        {"files": str(runs / "*.report")}).fetchall()
    folded = duckdb.connect().execute(
        "SELECT run_id, host, sum(weight) FROM read_parquet($files) GROUP BY ALL ORDER BY run_id",
        {"files": str(runs / "*.parquet")}).fetchall()
    assert table == folded
    assert [host for _, host, _ in table] == ["lab2", "lab2", "dut", "dut", "lab3"]


def test_run_id_defaults_to_the_input_name(tmp_path):
    out = tmp_path / "p.parquet"
    assert main(["fold", str(EXAMPLES / "if_em.stack.txt"), "-f", "parquet", "-o", str(out)]) == 0
    table = pq.read_table(out)
    assert set(table["run_id"].to_pylist()) == {"if_em.stack"} and table["host"].null_count == len(table)
    assert main(["report", str(EXAMPLES / "run"), "-f", "parquet", "-o", str(out)]) == 0
    assert set(pq.read_table(out)["run_id"].to_pylist()) == {"run"}

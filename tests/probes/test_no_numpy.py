"""``symbols`` and ``gen-probes`` import no numpy, on either path.

Its import was most of what these commands did before their split into two
processes (issue 13: 45-70 ms of about 0.25 s); FBT's columns are native
passes with pure-Python twins instead.  Each command runs here in a fresh
interpreter through ``tracebridge.cli.main`` (a committed module is too small
to split), which then says whether numpy was imported: on an amd64 ET_REL
module and an i386 ET_DYN one (whose dynamic relocations are read as a column).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixture_paths import EDGE, MODULES

#: The tree under test: the interpreter runs there (mutation testing finds its configuration from it).
ROOT = Path(__file__).resolve().parents[2]
PROGRAM = "import sys; from tracebridge.cli import main; status = main(sys.argv[1:]); print('numpy' in sys.modules, status)"


@pytest.mark.parametrize("module", [EDGE / "edges_shared_amd64.ko", MODULES / "rem_i386.ko"], ids=lambda p: p.name)
def test_symbols_and_gen_probes_import_no_numpy(each_path, module, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("TRACEBRIDGE_NO_NATIVE", None)
    if each_path == "pure":
        env["TRACEBRIDGE_NO_NATIVE"] = "1"
    for args in (["symbols", "--format", "json", str(module), "-o", str(tmp_path / "symbols.json")],
                 ["gen-probes", str(module), "-t", "flow", "--base", "0xffffffff82000000",
                  "-o", str(tmp_path / "probes.d"), "--map", str(tmp_path / "probes.json")]):
        run = subprocess.run([sys.executable, "-c", PROGRAM, *args], env=env, cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
        assert run.stdout.split() == ["False", "0"], run.stderr
